"""Happenings joined into the entries `az vm jit log` prints, oldest first.

One entry per configuration change (a VM configured or disabled, approval set up) and one per request. A
request's happenings are joined by what Azure's records share: NSG mode's request id (in its rule names), the PIM
request's name (and the `[approval <8 hex>]` link the opening carries), Defender's `initiate` event and the rules
Defender then wrote and deleted for that VM and port (a delete joins the write of the same rule). A reader sees
"asked by X, approved by Y, opened, closed at T" as one entry; what the log does not hold (events older than the
window, or not arrived yet) is simply missing from it, never guessed.
"""
import datetime as dt

from azext_jit.audit.happenings import DEFENDER
from azext_jit.times import stamp

MERGE_WITHIN = dt.timedelta(minutes=2)     # one enable writes several rules: one configure entry
DEFENDER_WRITES_WITHIN = dt.timedelta(minutes=15)   # Defender writes a request's rule seconds to minutes later
_EARLIEST = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
# A PIM request's status as a fate, for a reader PIM does not show the decision to (its approval's reader sees more).
_PIM_FATES = {'PendingApproval': 'pending', 'PendingApprovalProvisioning': 'pending', 'PendingEvaluation': 'pending',
              'Denied': 'denied', 'AdminDenied': 'denied', 'Canceled': 'canceled', 'TimedOut': 'expired',
              'Failed': 'refused', 'FailedAsResourceIsLocked': 'refused', 'Invalid': 'refused'}
_PIM_GRANTED = ('Provisioned', 'Granted', 'PendingProvisioning', 'Accepted', 'Revoked', 'AdminApproved',
                'PendingRevocation', 'ScheduleCreated', 'PendingScheduleCreation')


class Scope:  # pylint: disable=too-few-public-methods
    """Which VMs the log is about: `targets` (VmTargets) by id, NSG mode's key and name. `group_wide`: also VMs
    that are gone (events name them by id or key only), for events of the resource group itself."""

    def __init__(self, targets, group=None):
        from azext_jit.modes.nsg_mode_records import vm_key
        self.by_id = {t.id.lower(): t for t in targets}
        self.by_key = {vm_key(t.id): t for t in targets}
        self.by_name = {t.name.lower(): t for t in targets}
        self.group = group.lower() if group else None

    def vm_of(self, happening, home):
        """(vm id, vm name) the happening is about; (None, None) when it names no VM; False when it is outside
        the scope. `home`: the event came from the log of the scope's own resource group."""
        if happening.vm_id:
            found = self.by_id.get(happening.vm_id.lower())
            if found:
                return found.id, found.name
            in_group = self.group and f'/resourcegroups/{self.group}/' in happening.vm_id.lower()
            return (happening.vm_id, happening.vm_id.rsplit('/', 1)[-1]) if in_group else False
        if happening.vm_key:
            found = self.by_key.get(happening.vm_key)
            return (found.id, found.name) if found else ((None, None) if self.group and home else False)
        name = (happening.extra or {}).get('vmName')
        if name:
            found = self.by_name.get(name.lower())
            return (found.id, found.name) if found else ((None, name) if self.group and home else False)
        return None, None


class Entry:  # pylint: disable=too-many-instance-attributes  # one field per column of the log
    def __init__(self, happening, action, vm):
        self.time = happening.time
        self.action = action
        self.vm_id, self.vm = vm
        self.mode = happening.mode
        self.caller = happening.caller if happening.actor != DEFENDER else None
        self.ports = []
        self.source = happening.source
        self.end = happening.end
        self.justification = happening.justification
        self.approver = None
        self.approver_visible = None
        self.decision_reason = None
        self.request_id = (happening.extra or {}).get('requestId')
        self.correlation_id = happening.correlation_id
        self.pim_status = None
        self.flags = set()
        self.events = []
        self.add_ports(happening.ports)

    def add_ports(self, ports):
        """Ports as `22/TCP`; a port an event names without its protocol (`22`) yields to one that names it."""
        for port in ports or ():
            number = port.split('/')[0]
            if port in self.ports or (port == number and any(p.split('/')[0] == number for p in self.ports)):
                continue
            if number in self.ports:
                self.ports[self.ports.index(number)] = port
            else:
                self.ports.append(port)

    def record(self, happening, action=None):
        self.events.append({'time': stamp(happening.time), 'action': action or happening.action,
                            'caller': happening.caller, 'actor': happening.actor, 'result': happening.result,
                            'ports': list(happening.ports)})
        if happening.result != 'Succeeded':
            self.flags.add('failed')

    def fill(self, happening):
        """Facts a later happening knows and this entry does not yet."""
        self.add_ports(happening.ports)
        self.source = self.source or happening.source
        self.end = self.end or happening.end
        self.justification = self.justification or happening.justification
        self.vm_id = self.vm_id or None
        if self.caller is None and happening.actor != DEFENDER:
            self.caller = happening.caller

    def result(self, now):
        """What became of it: a request's fate (the first that applies, in this order), else whether it worked."""
        if self.action != 'request':
            return 'failed' if 'failed' in self.flags else 'succeeded'
        ended = self.end is not None and self.end <= now
        fates = [('denied' in self.flags, 'denied'), ('canceled' in self.flags, 'canceled'),
                 ('revoked' in self.flags, 'revoked'), ('expired' in self.flags, 'expired'),
                 ('opened' in self.flags, 'expired' if ended else 'open'), ('refused' in self.flags, 'refused'),
                 (self.pim_status in _PIM_FATES, _PIM_FATES.get(self.pim_status)),
                 ('approved' in self.flags or self.pim_status in _PIM_GRANTED, 'expired' if ended else 'approved')]
        return next((word for applies, word in fates if applies), 'unknown')

    def to_dict(self, now):
        return {'time': stamp(self.time), 'vm': self.vm, 'vmId': self.vm_id, 'mode': self.mode,
                'action': self.action, 'caller': self.caller, 'ports': list(self.ports), 'source': self.source,
                'endTime': stamp(self.end), 'result': self.result(now), 'justification': self.justification,
                'approver': self.approver, 'approverVisible': self.approver_visible,
                'decisionReason': self.decision_reason, 'requestId': self.request_id,
                'correlationId': self.correlation_id, 'events': self.events}


class Story:  # pylint: disable=too-few-public-methods  # fed by `tell`, read through `entries`
    """Builds the entries from happenings fed in time order (`tell`)."""

    def __init__(self, scope):
        self.scope = scope
        self.entries = []
        self.requests = {}    # request key -> Entry
        self.links = {}       # first 8 hex of a PIM request's name -> Entry
        self.rules = {}       # rule id (lower) -> Entry
        self.asks = []        # (Entry, vm id lower, vm name lower, port numbers, time) of Defender initiates
        self.policies = {}    # Defender policy id -> {vm id lower: (vm id, ports)} as last written

    def _new(self, happening, action, vm):
        entry = Entry(happening, action, vm)
        self.entries.append(entry)
        return entry

    def _config(self, happening, action, vm):
        """A configure/disable entry; the writes of one command (same VM, caller, action, minutes apart) are one."""
        for entry in reversed(self.entries[-8:]):
            if entry.action == action and entry.vm_id == vm[0] and entry.vm == vm[1] and \
                    entry.caller == happening.caller and happening.time - entry.time <= MERGE_WITHIN:
                entry.add_ports(happening.ports)
                entry.record(happening, action)
                return entry
        entry = self._new(happening, action, vm)
        entry.record(happening, action)
        return entry

    def tell(self, happening, home=True):
        action = happening.action
        if action in ('policy', 'policy-deleted'):
            self._policy(happening, home)
            return
        vm = self.scope.vm_of(happening, home)
        if vm is False:
            return
        handler = {'configure': self._config, 'disable': self._config, 'approval-setup': self._config,
                   'protect': self._defender_rule, 'unprotect': self._defender_rule,
                   'ask': self._ask, 'open': self._open, 'close': self._close,
                   'approve': self._decision, 'deny': self._decision, 'cancel': self._decision,
                   'end-approval': self._decision}.get(action)
        if handler:
            handler(happening, action, vm)

    # -- configuration -------------------------------------------------------------------------------------
    def _policy(self, happening, home):
        """A Defender policy written or deleted: which VMs it configured (new, or ports changed) or dropped,
        against the policy as last written in the window (unknown before: every VM it lists counts)."""
        pid = happening.extra['policy']
        written = happening.extra.get('vms')
        before = self.policies.get(pid)
        if happening.action == 'policy-deleted':
            written = {}
        if written is None:     # the event kept no body: the policy changed, for VMs unknown
            self._config(happening, 'configure', (None, None))
            return
        self.policies[pid] = written
        changes = [('configure', vm_id, ports) for key, (vm_id, ports) in written.items()
                   if before is None or key not in before or before[key][1] != ports]
        changes += [('disable', vm_id, ports) for key, (vm_id, ports) in (before or {}).items() if key not in written]
        if happening.action == 'policy-deleted' and before is None:
            changes.append(('disable', None, ()))
        for action, vm_id, ports in changes:
            one = type(happening)(**{**happening.__dict__, 'vm_id': vm_id, 'ports': ports})
            vm = self.scope.vm_of(one, home)
            if vm is not False:
                self._config(one, action, vm)

    def _defender_rule(self, happening, action, vm):
        """Defender writing (or removing) a VM's deny rule: part of the VM's latest configure (disable) entry."""
        want = 'configure' if action == 'protect' else 'disable'
        for entry in reversed(self.entries):
            if entry.action == want and entry.vm == vm[1] and \
                    happening.time - entry.time <= DEFENDER_WRITES_WITHIN:
                entry.record(happening, 'configure' if action == 'protect' else 'disable')
                return

    # -- requests ------------------------------------------------------------------------------------------
    def _request(self, happening, vm):
        entry = self._new(happening, 'request', vm)
        if happening.key:
            self.requests[happening.key] = entry
        return entry

    def _ask(self, happening, action, vm):  # pylint: disable=unused-argument
        linked = self.links.get(happening.link) if happening.link else None
        if happening.key and happening.key[0] == 'pim':
            entry = self._request(happening, vm)
            entry.request_id = happening.key[1]
            self.links[happening.key[1][:8]] = entry
            facts = happening.extra or {}
            entry.pim_status = facts.get('status')
            entry.approver_visible = facts.get('approverVisible')
            entry.record(happening, 'ask')
            return
        entry = linked or self._request(happening, vm)
        if linked:
            self.requests[happening.key] = linked
            linked.fill(happening)
        entry.record(happening, 'open' if linked else 'ask')
        if happening.result != 'Succeeded':
            entry.flags.add('refused')
        numbers = {p.split('/')[0] for p in happening.ports}
        self.asks.append((entry, (vm[0] or '').lower(), (vm[1] or '').lower(), numbers, happening.time))

    def _defender_opening(self, happening, vm):
        """The request a rule Defender wrote belongs to: the latest initiate for that VM and port before it."""
        number = happening.ports[0].split('/')[0] if happening.ports else None
        for entry, vm_id, name, numbers, time in reversed(self.asks):
            if (vm_id and vm_id == (vm[0] or '').lower() or name == (vm[1] or '').lower()) and \
                    number in numbers and time <= happening.time <= time + DEFENDER_WRITES_WITHIN:
                return entry
        return None

    def _open(self, happening, action, vm):
        entry = self.requests.get(happening.key) if happening.key else None
        if entry is None and happening.actor == DEFENDER:
            entry = self._defender_opening(happening, vm)
        if entry is None and happening.link in self.links:
            entry = self.links[happening.link]
            self.requests[happening.key] = entry
        if entry is None:
            entry = self._request(happening, vm)
        entry.fill(happening)
        entry.end = happening.end or entry.end     # what was opened ends when its rule says, not when it was asked
        if happening.rule:
            self.rules[happening.rule.lower()] = entry
        entry.record(happening, action)
        if happening.result == 'Succeeded':
            entry.flags.add('opened')

    def _close(self, happening, action, vm):  # pylint: disable=unused-argument
        entry = self.rules.get((happening.rule or '').lower()) or \
            (self.requests.get(happening.key) if happening.key else None)
        if entry is None:
            entry = self._request(happening, vm)
            entry.caller = None
        if happening.actor == DEFENDER or (entry.end is not None and happening.time >= entry.end):
            word = 'expire'     # Defender ends access when its time is up; a removal after the end is cleanup
        else:
            word = 'revoke'
        entry.record(happening, word)
        if happening.result == 'Succeeded':
            entry.flags.add('expired' if word == 'expire' else 'revoked')

    def _decision(self, happening, action, vm):  # pylint: disable=unused-argument
        entry = self.requests.get(happening.key) if happening.key else None
        if entry is None:
            return
        entry.record(happening)
        if happening.result != 'Succeeded':
            return
        if action in ('approve', 'deny'):
            entry.approver = happening.caller
            entry.approver_visible = True
            entry.decision_reason = (happening.extra or {}).get('reason')
            entry.flags.add('approved' if action == 'approve' else 'denied')
        elif action == 'cancel':
            entry.flags.add('canceled')


def timeline(happenings, scope, now):
    """The entries (dicts, oldest first) told by `happenings`: [(Happening, home)] in any order."""
    story = Story(scope)
    dated = [(h, home) for h, home in happenings if h.time is not None]
    for happening, home in sorted(dated, key=lambda pair: pair[0].time):
        story.tell(happening, home)
    return [entry.to_dict(now) for entry in sorted(story.entries, key=lambda e: e.time or _EARLIEST)]
