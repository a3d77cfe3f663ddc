# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Happenings joined into the entries `az vm jit log` prints, oldest first.

One entry per configuration change (a VM configured or disabled, approval set up) and one per request. A
request's happenings are joined by what Azure's records share, and only where Azure's own facts agree:
- NSG mode: the request id in its rule names, written by the same caller (a rule someone else wrote with that id
  is an entry of its own, with a note);
- approval: the PIM request whose name's first 8 hex the opening carries (`[approval <8 hex>]`), only when the
  opening's caller is the one who asked, for the VM asked about, within the ports asked;
- Defender: its `initiate` event and the rules Defender then wrote for that VM, port and source (each rule joins
  the oldest request still waiting for it);
- a rule's removal joins the request that wrote that rule.
A reader sees "asked by X, approved by Y, opened, closed at T" as one entry. What the log does not hold (events
older than the range, or not arrived yet) is missing, never guessed: a closing whose end time is unknown is
`close`, not `revoke` or `expire`.
"""
import datetime as dt

from azext_jit.audit.happenings import DEFENDER
from azext_jit.times import stamp

MERGE_WITHIN = dt.timedelta(minutes=2)     # one enable writes several rules: one configure entry
DEFENDER_WRITES_WITHIN = dt.timedelta(minutes=15)   # Defender writes a request's rule seconds to minutes later
END_LEEWAY = dt.timedelta(minutes=1)       # a removal this close to the end is the expiry (Azure's clocks differ)
_EARLIEST = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
# A PIM request's status as a fate, for a reader PIM does not show the decision to (its approval's reader sees more).
_PIM_FATES = {'PendingApproval': 'pending', 'PendingApprovalProvisioning': 'pending', 'PendingEvaluation': 'pending',
              'Denied': 'denied', 'AdminDenied': 'denied', 'Canceled': 'canceled', 'TimedOut': 'timed-out',
              'Failed': 'refused', 'FailedAsResourceIsLocked': 'refused', 'Invalid': 'refused'}
_PIM_GRANTED = ('Provisioned', 'Granted', 'PendingProvisioning', 'Accepted', 'Revoked', 'AdminApproved',
                'PendingRevocation', 'ScheduleCreated', 'PendingScheduleCreation')


class Scope:  # pylint: disable=too-few-public-methods
    """Which VMs the log is about: `targets` (VmTargets) by id, NSG mode's key and name. With `group`, a resource
    group's log: also VMs that are gone (events name them by id or key only), for events of the group itself."""

    def __init__(self, targets, group=None):
        from azext_jit.modes.nsg_mode_records import vm_key
        self.by_id = {t.id.lower(): t for t in targets}
        self.by_key = {vm_key(t.id): t for t in targets}
        self.by_name = {t.name.lower(): t for t in targets}
        self.group = group.lower() if group else None

    def _as_recorded(self, vm_id):
        return vm_id, vm_id.rstrip('/').rsplit('/', 1)[-1]

    def vm_of(self, happening, home):
        """(vm id, vm name) the happening is about, (None, None) when it names no VM, or False when it is outside
        the scope. `home`: the event came from the log of the scope's own resource group. A PIM request at one of
        the VMs' gates (`at_gate`) that names no VM belongs (the permission it asks for covers them); one that names
        another VM is that VM's."""
        extra = happening.extra or {}
        if happening.vm_id:
            return self._by_id(happening.vm_id)
        if happening.vm_key or extra.get('vmName'):
            found = self.by_key.get(happening.vm_key) if happening.vm_key else self._by_name(extra)
            if found:
                return found.id, found.name
            if found is False or not (self.group and home):
                return False
            return (None, None) if happening.vm_key else (None, extra['vmName'])
        return (None, None) if extra.get('at_gate') or (self.group and home) else False

    def _by_id(self, vm_id):
        found = self.by_id.get(vm_id.lower())
        if found:
            return found.id, found.name
        in_group = self.group and f'/resourcegroups/{self.group}/' in vm_id.lower()
        return (vm_id, vm_id.rstrip('/').rsplit('/', 1)[-1]) if in_group else False

    def _by_name(self, extra):
        """The target Defender's description names, None when none of them, False when one of that name is not at
        the rule's address (a VM of the same name elsewhere: descriptions name VMs by name only)."""
        found = self.by_name.get(extra['vmName'].lower())
        destination = extra.get('destination')
        if found and destination and found.private_ip and destination != found.private_ip:
            return False
        return found


class Entry:  # pylint: disable=too-many-instance-attributes  # one field per column of the log
    def __init__(self, happening, action, vm):
        self.time = happening.time
        self.action = action
        self.vm_id, self.vm = vm
        self.mode = happening.mode
        self.caller = happening.caller if happening.actor != DEFENDER else None
        self.ports = []
        self.asked = None         # the ports a request asked for, when its ask is known
        self.source = happening.source
        self.end = happening.end if happening.result == 'Succeeded' else None
        self.justification = happening.justification
        self.approver = None
        self.approver_name = None
        self.approver_visible = None
        self.decision_reason = None
        self.request_id = (happening.extra or {}).get('requestId')
        self.correlation_id = happening.correlation_id
        self.pim_status = None
        self.expires_itself = bool((happening.extra or {}).get('expiresItself'))
        self.notes = []
        self.flags = set()
        self.rules = {}           # rule id (lower) -> None while open, else how it closed
        self.rule_ports = {}      # rule id (lower) -> the ports it opened
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

    def fill_from(self, happening):
        """Facts a later happening of the same request knows and the entry does not yet."""
        self.add_ports(happening.ports)
        self.source = self.source or happening.source
        self.justification = self.justification or happening.justification
        self.mode = self.mode or happening.mode
        if self.caller is None and happening.actor != DEFENDER:
            self.caller = happening.caller

    def note(self, text):
        if text not in self.notes:
            self.notes.append(text)

    def result(self, now):
        """What became of it: see `_opened_fate` and `_unopened_fate` for requests."""
        if self.action != 'request':
            return 'failed' if 'failed' in self.flags else 'succeeded'
        ended = self.end is not None and self.end <= now
        if 'opened' in self.flags or 'initiated' in self.flags:
            return self._opened_fate(ended)
        return self._unopened_fate(ended)

    def _opened_fate(self, ended):
        """`open` while a rule of it is in place and its time is not up; `expired-not-removed` when its time is up
        but a rule NSG mode must remove is still there (or its removal is not in the log yet); else how its rules
        closed: `revoked` if any was revoked, `expired`, or `closed`."""
        if not self.rules or None in self.rules.values():
            if not ended:
                return 'open'
            return 'expired' if self.expires_itself else 'expired-not-removed'
        closings = set(self.rules.values())
        return next((word for flag, word in (('revoke', 'revoked'), ('expire', 'expired')) if flag in closings),
                    'closed')

    def _unopened_fate(self, ended):
        """A request that never opened: its decision, else PIM's status."""
        flag = next((f for f in ('denied', 'canceled', 'refused') if f in self.flags), None)
        if flag:
            return flag
        if self.pim_status in _PIM_FATES:
            return _PIM_FATES[self.pim_status]
        if 'approved' in self.flags or self.pim_status in _PIM_GRANTED:
            return 'not-opened' if ended else 'approved'
        return 'unknown'

    def to_dict(self, now):
        return {'time': stamp(self.time), 'vm': self.vm, 'vmId': self.vm_id, 'mode': self.mode,
                'action': self.action, 'caller': self.caller, 'ports': list(self.ports), 'source': self.source,
                'endTime': stamp(self.end), 'result': self.result(now), 'justification': self.justification,
                'approver': self.approver, 'approverName': self.approver_name,
                'approverVisible': self.approver_visible,
                'decisionReason': self.decision_reason, 'requestId': self.request_id,
                'correlationId': self.correlation_id, 'notes': list(self.notes), 'events': self.events}


class Story:  # pylint: disable=too-few-public-methods  # fed by `tell`, read through `entries`
    """Builds the entries from happenings fed in time order (`tell`)."""

    def __init__(self, scope):
        self.scope = scope
        self.entries = []
        self.requests = {}    # request key (with its opener) -> Entry
        self.links = {}       # first 8 hex of a PIM request's name -> Entry
        self.rules = {}       # rule id (lower) -> Entry that wrote it
        self.asks = []        # [Entry, vm id lower, vm name lower, {port number: waiting}, source, time] (Defender)
        self.policies = {}    # Defender policy id -> {vm id lower: (vm id, ports)} as last written successfully

    def _new(self, happening, action, vm):
        entry = Entry(happening, action, vm)
        self.entries.append(entry)
        return entry

    def _config(self, happening, action, vm, note=None):
        """A configure/disable entry; the writes of one command (the VM's latest entry: same action and caller,
        minutes apart) are one."""
        latest = next((e for e in reversed(self.entries) if (e.vm_id, e.vm) == tuple(vm)), None)
        if latest is not None and latest.action == action and latest.caller == happening.caller and \
                happening.time - latest.time <= MERGE_WITHIN:
            entry = latest
            entry.add_ports(happening.ports)
        else:
            entry = self._new(happening, action, vm)
        entry.record(happening, action)
        if note:
            entry.note(note)
        return entry

    def tell(self, happening, home=True):
        action = happening.action
        if action in ('policy', 'policy-deleted'):
            self._policy(happening, home)
            return
        if action in ('approve', 'deny', 'cancel'):    # they join their request by its key, wherever it is
            self._decision(happening, action)
            return
        if action == 'close' and (happening.rule or '').lower() in self.rules:   # a removal names no VM: its rule does
            self._close(happening)
            return
        if action == 'close':
            self._unexplained_close(happening, home)
            return
        vm = self.scope.vm_of(happening, home)
        if vm is False:
            return
        handler = {'configure': self._config, 'disable': self._config, 'approval-setup': self._config,
                   'protect': self._defender_rule, 'unprotect': self._defender_rule,
                   'ask': self._ask, 'open': self._open}.get(action)
        if handler:
            handler(happening, action, vm)

    # -- configuration -------------------------------------------------------------------------------------
    def _policy(self, happening, home):
        """A Defender policy written or deleted: which VMs it configured (new, or ports changed) or dropped,
        against the policy as last written successfully in the range. A failed write changes nothing."""
        pid = happening.extra['policy']
        written = {} if happening.action == 'policy-deleted' else happening.extra.get('vms')
        before = self.policies.get(pid)
        if written is None:     # the event kept no body: the policy changed, for VMs unknown
            vm = self.scope.vm_of(happening, home)
            if vm is not False:
                self._config(happening, 'configure', vm, 'the Activity Log kept no body: which VMs is unknown')
            return
        changes = [('configure', vm_id, ports) for key, (vm_id, ports, settings) in written.items()
                   if before is None or key not in before or before[key][2] != settings]
        changes += [('disable', vm_id, ports) for key, (vm_id, ports, _) in (before or {}).items()
                    if key not in written]
        if happening.result == 'Succeeded':
            self.policies[pid] = written
        note = 'the first write of this policy read (the range and the 48 hours before it): what it held before is ' \
            'not known' \
            if before is None and happening.action == 'policy' else None
        for action, vm_id, ports in changes:
            one = type(happening)(**{**happening.__dict__, 'vm_id': vm_id, 'ports': ports})
            vm = self.scope.vm_of(one, home)
            if vm is not False:
                self._config(one, action, vm, note)

    def _defender_rule(self, happening, action, vm):
        """A VM's deny rule: Defender writing (removing) it is part of the VM's latest configure (disable) entry;
        anyone else writing or removing Defender's deny rule changed the VM's protection by hand."""
        want = 'configure' if action == 'protect' else 'disable'
        if happening.actor != DEFENDER:
            self._config(happening, want, vm, "Defender's deny rule was changed by someone other than Defender")
            return
        for entry in reversed(self.entries):
            if entry.action == want and entry.vm == vm[1] and \
                    happening.time - entry.time <= DEFENDER_WRITES_WITHIN:
                entry.record(happening, want)
                return

    # -- requests ------------------------------------------------------------------------------------------
    def _request(self, happening, vm, key=None):
        entry = self._new(happening, 'request', vm)
        if key:
            self.requests[key] = entry
        return entry

    def _ask(self, happening, action, vm):  # pylint: disable=unused-argument
        if happening.key and happening.key[0] == 'pim':
            entry = self._request(happening, vm, happening.key)
            entry.request_id = happening.key[1]
            entry.asked = set(happening.ports)
            self.links[happening.key[1][:8]] = entry
            facts = happening.extra or {}
            entry.pim_status = facts.get('status')
            entry.approver_visible = facts.get('approverVisible')
            if facts.get('note'):
                entry.note(facts['note'])
            entry.record(happening, 'ask')
            if happening.result != 'Succeeded':
                entry.flags.add('refused')    # PIM refused to file it
            return
        happening = self._with_protocols(happening, vm)
        linked = self._linked(happening, vm)
        entry = linked or self._request(happening, vm, happening.key)
        if linked:
            self.requests[happening.key] = linked
            linked.fill_from(happening)
        entry.record(happening, 'open' if linked else 'ask')
        if happening.result != 'Succeeded':
            if not linked:
                entry.flags.add('refused')
            return
        entry.flags.add('initiated')
        entry.expires_itself = True
        entry.end = happening.end or entry.end
        numbers = {p.split('/')[0]: True for p in happening.ports}
        self.asks.append([entry, (vm[0] or '').lower(), (vm[1] or '').lower(), numbers, happening.source,
                          happening.time])

    def _with_protocols(self, happening, vm):
        """An initiate names port numbers only: the policy as last written says their protocols."""
        policy = str((happening.extra or {}).get('policy') or '')
        held = self.policies.get(policy.rsplit('/initiate', 1)[0]) or {}
        known = {p.split('/')[0]: p for p in (held.get((vm[0] or '').lower()) or (None, (), ()))[1]}
        if not known:
            return happening
        return type(happening)(**{**happening.__dict__, 'ports': tuple(known.get(p, p) for p in happening.ports)})

    def _linked(self, happening, vm):
        """The approved request an opening claims (`[approval <8 hex>]`), when Azure's facts agree: same caller as
        the ask, same VM, ports within those asked. Otherwise None, and the opening says what it claimed."""
        entry = self.links.get(happening.link) if happening.link else None
        if entry is None:
            return None
        same_vm = entry.vm_id is None or (vm[0] or '').lower() == entry.vm_id.lower()
        within = entry.asked is None or set(happening.ports) <= entry.asked or \
            {p.split('/')[0] for p in happening.ports} <= {p.split('/')[0] for p in entry.asked}
        if happening.result == 'Succeeded' and happening.caller == entry.caller and same_vm and within:
            return entry
        return None

    def _defender_opening(self, happening, vm):
        """The request a rule Defender wrote belongs to: the oldest initiate for that VM, port and source that is
        still waiting for its rule, at most DEFENDER_WRITES_WITHIN before it."""
        number = happening.ports[0].split('/')[0] if happening.ports else None
        for ask in self.asks:
            entry, vm_id, name, numbers, source, time = ask
            same_vm = (vm_id and vm_id == (vm[0] or '').lower()) or (name and name == (vm[1] or '').lower())
            same_source = source is None or happening.source is None or source == happening.source
            if same_vm and numbers.get(number) and same_source and \
                    time - END_LEEWAY <= happening.time <= time + DEFENDER_WRITES_WITHIN:
                numbers[number] = False
                return entry
        return None

    def _open(self, happening, action, vm):
        key = happening.key + (happening.caller,) if happening.key else None
        entry = self.requests.get(key) if key else None
        if entry is None and happening.actor == DEFENDER and happening.result == 'Succeeded':
            entry = self._defender_opening(happening, vm)
        if entry is None:
            entry = self._linked(happening, vm)
            if entry is not None:
                self.requests[key] = entry
        if entry is None:
            entry = self._request(happening, vm, key)
            if happening.link:
                entry.note(f'claims approval {happening.link}, which no request in the range and the 48 hours read '
                           'before it matches')
            if happening.key and any(k[:3] == happening.key and k != key for k in self.requests if len(k) > 3):
                entry.note('reuses the request id of access someone else opened')
        entry.record(happening, action)
        if happening.result != 'Succeeded':
            entry.flags.add('refused')    # Azure refused the write; a later one that succeeds makes it opened
            return
        entry.fill_from(happening)
        entry.end = happening.end or entry.end     # what was opened ends when its rule says, not when it was asked
        entry.flags.add('opened')
        entry.expires_itself = entry.expires_itself or bool((happening.extra or {}).get('expiresItself'))
        if happening.rule:
            self.rules[happening.rule.lower()] = entry
            entry.rules[happening.rule.lower()] = None
            entry.rule_ports[happening.rule.lower()] = happening.ports

    def _unexplained_close(self, happening, home):
        """A JIT rule removed whose opening is not in what was read (written long before): its own entry, when the
        rule names a VM of the log (NSG mode's names do)."""
        vm = self.scope.vm_of(happening, home)
        if vm is False or (vm == (None, None) and not happening.vm_key):
            return
        entry = self._request(happening, vm)
        entry.caller = None
        entry.note('opened before the range and the 48 hours read before it')
        entry.record(happening, 'close')
        if happening.result == 'Succeeded':
            entry.flags.add('opened')
            entry.rules[(happening.rule or '').lower()] = 'close'

    def _close(self, happening):
        """A rule's removal, told in the request that wrote it (a rule opened before the query's reach, or not by
        JIT, has no request here: its removal is not told)."""
        rule = (happening.rule or '').lower()
        entry = self.rules[rule]
        happening = type(happening)(**{**happening.__dict__, 'ports': entry.rule_ports.get(rule, ())})
        if entry.end is not None and happening.time >= entry.end - END_LEEWAY:
            word = 'expire'     # removed when its time was up: Defender's expiry, or cleanup after the end
        elif entry.end is not None and happening.actor != DEFENDER:
            word = 'revoke'
        else:
            word = 'close'      # Defender closed it early (a newer request, a policy change), or the end is unknown
        entry.record(happening, word)
        if happening.result == 'Succeeded' and rule in entry.rules:
            entry.rules[rule] = word

    def _decision(self, happening, action):
        entry = self.requests.get(happening.key) if happening.key else None
        if entry is None:
            return
        entry.record(happening)
        if happening.result != 'Succeeded':
            return
        if action in ('approve', 'deny'):
            entry.approver = happening.caller
            entry.approver_name = (happening.extra or {}).get('approverName')
            entry.approver_visible = True
            entry.decision_reason = (happening.extra or {}).get('reason')
            entry.flags.add('approved' if action == 'approve' else 'denied')
        elif action == 'cancel':
            entry.flags.add('canceled')


def timeline(happenings, scope, now, since=None, until=None):
    """The entries (dicts, oldest first) told by `happenings`: [(Happening, home)] in any order. Only entries with
    an event between `since` and `until` are shown; the others were read only to explain them (what came before an
    entry, and what became of it since)."""
    story = Story(scope)
    dated = [(h, home) for h, home in happenings if h.time is not None]
    for happening, home in sorted(dated, key=lambda pair: pair[0].time):
        story.tell(happening, home)
    low, high = stamp(since) if since else '', stamp(until) if until else '~'
    shown = [e for e in story.entries if any(low <= x['time'] <= high for x in e.events)]
    return [entry.to_dict(now) for entry in sorted(shown, key=lambda e: e.time or _EARLIEST)]
