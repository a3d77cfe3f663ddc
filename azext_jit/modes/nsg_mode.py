# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""NSG mode: the extension does Defender's job itself, on the VM's network security group.

Its storage format (rule names, descriptions, the policy tag) is in `nsg_mode_records.py`.
- The policy lives in the VM's tags (`azvmjit-policy`), so any machine can read it.
- `enable` writes one Deny rule per protocol for the VM's private IP at priority 1000 or the nearest free
  one, named `AzVmJit-Deny-<vm key>-<protocol>` (never Defender's `SecurityCenter-JITRule...`).
- A request writes one Allow rule per port from the source to the private IP at the lowest free priority
  from 100 upward (always ahead of the deny rule), named `AzVmJit-Allow-<vm key>-<request id>-<port>-<protocol>`.
  Its description carries the end time, the requestor and the request id: that is all `list` and
  `cleanup` need, from any machine.
- Nothing but the extension removes these rules when time runs out: `cleanup` does, and every command
  that touches a VM first removes that VM's expired rules. Until then such a rule still lets traffic in,
  so its port shows as expired with the reason `ExpiredNotRemoved`.
- An allow rule whose end time cannot be trusted (its description unreadable, or naming an end further ahead than
  any policy allows) counts as open: its port shows as active with no end time and the reason
  `UnreadableEndTime` or `EndTimeBeyondMaximum`, `revoke` closes it, and `cleanup` removes it with a warning.
- A VM whose NSG was detached after `enable` (`target.nsg_id` is None) has no rules to read or remove:
  it keeps its policy and revocation records, and `disable` still removes them.
"""
import datetime as dt
import random
import re

from azext_jit import activity_log, vm_records
from azext_jit.access_requests import (ACTIVE, CONFIRMED, EXPIRED, MISMATCH, UNKNOWN, AccessRequest, RequestPort,
                                       same_person)
from azext_jit.changes import Change, rule_change
from azext_jit.durations import MAX_DURATION, describe
from azext_jit.errors import NotPossible, explain_http_error
from azext_jit.log import get_logger
from azext_jit.modes import nsg_mode_records as records
from azext_jit.modes.base import JitMode
from azext_jit.nsg import client as nsg_client
from azext_jit.nsg.conflicts import classify_conflicts
from azext_jit.pim import roles
from azext_jit.nsg.priorities import DEFAULT_DENY_PRIORITY, MAX_PRIORITY, choose_allow_priorities, \
    choose_deny_priority, used_priorities
from azext_jit.nsg.rules import (destination_prefixes, group_ports_by_protocol, is_allow, is_inbound,
                                 prefix_contains_ip, priority_of, rule_allows_any_source, rule_covers_port,
                                 rules_equivalent, rules_of, source_prefixes)
from azext_jit.policy import JitPolicy
from azext_jit.revocations import revoked_requests
from azext_jit.times import parse_time, stamp

logger = get_logger(__name__)

RULE_WRITE_ACTION = 'microsoft.network/networksecuritygroups/securityrules/write'
LOG_MAX_DAYS = 89   # the Activity Log keeps 90 days


class NsgMode(JitMode):  # pylint: disable=too-many-public-methods  # the interface is what a mode can do
    name = 'nsg'
    title = 'NSG'
    policy_on_vm = True            # the policy is in the VM's tags
    requests_need_network = True   # requests are the allow rules in the VM's NSG
    opening_action = 'Microsoft.Network/networkSecurityGroups/securityRules/write'   # over the rule, in the NSG

    def trail(self, event):
        return trail_of_rule_event(event, self.title) or trail_of_policy_tag(event, self.title)

    def __init__(self, azure):
        super().__init__(azure)
        self._deleted = set()   # (nsg, rule) deleted or, in a dry run, planned: one command lists each once

    def _delete(self, target, rule, dry_run):
        """The Change for deleting one rule of the VM, or [] when this command already deleted it."""
        key = (target.nsg_id.lower(), rule['name'].lower())
        if key in self._deleted:
            return []
        self._deleted.add(key)
        if not dry_run:
            nsg_client.delete_rule(self.azure, target.nsg_id, rule['name'])
        return [rule_change('delete', target.nsg_id, rule, target.name, target.id)]

    # -- reading -------------------------------------------------------------------------------------
    def holds(self, target):
        return vm_records.present(target.tags, records.POLICY_TAG)

    def policy_of(self, target):
        if not self.holds(target):
            return None
        data = vm_records.read(target.tags, records.POLICY_TAG)
        try:
            if data is None:
                raise ValueError('the tag is not valid JSON (a part may be missing)')
            return JitPolicy.from_dict(data)
        except ValueError as ex:
            raise NotPossible(
                f"The JIT policy stored in the tags of {target.describe()} cannot be read ({ex}).",
                f"Write it again with `az vm jit enable -g {target.resource_group} -n {target.name} --mode nsg` "
                f"(and your --ports, --max-duration, --allowed-sources), or take the VM out of JIT with "
                f"`az vm jit disable -g {target.resource_group} -n {target.name}`.") from None

    def approval_scope(self, target):
        """The VM's NSG: ARM checks `…/networkSecurityGroups/securityRules/write` over the rule, and the NSG is the
        narrowest scope a role can be assigned at that covers every rule JIT may write there."""
        from azext_jit.targets import with_subnet_nsg
        with_subnet_nsg(self.azure, target)
        return target.nsg_id

    approval_actions = (roles.RULE_WRITE,)

    def gate_for(self, scope, target):
        return bool(target.nsg_id) and scope.rstrip('/').lower() == target.nsg_id.rstrip('/').lower()

    def _nsg(self, target):
        """The VM's NSG (wire JSON, read once per command), or None when it has none (any more)."""
        from azext_jit.targets import with_subnet_nsg
        with_subnet_nsg(self.azure, target)   # a VM read without its network (request) may be governed by its subnet
        return nsg_client.read_nsg(self.azure, target.nsg_id)

    def protecting_rules(self, target):
        return self._rules_in(self._nsg(target), target)

    @staticmethod
    def _rules_in(nsg, target):
        """Every rule of ours for this VM (by VM key in the name), deny and allow; none without an NSG."""
        key = records.vm_key(target.id)
        return [r for r in rules_of(nsg) if getattr(records.parse_rule_name(r['name']), 'vmkey', None) == key]

    def leftover_rules(self, target):
        """This VM's rules still in its NSG although it has no NSG-mode policy: what a disable cut short (or a
        policy tag removed by hand) left behind. `disable(target)` removes them. [] while the policy exists."""
        if vm_records.present(target.tags, records.POLICY_TAG) or not target.nsg_id:
            return []
        return self.protecting_rules(target)

    def owns_rule(self, rule):
        return records.is_ours(rule.get('name'))

    def guards_other_vm(self, rule, target):
        parsed = records.parse_rule_name(rule.get('name'))
        return bool(parsed) and parsed.kind == 'deny' and parsed.vmkey != records.vm_key(target.id)

    def deny_priority(self, target, rules):
        return records.deny_ceiling(rules, target.id) or choose_deny_priority(used_priorities(rules))

    def requests_of(self, target, requestors=False):  # the allow rule's description names the requestor
        rules = self.protecting_rules(target)   # none when the NSG was detached: revocation records only
        now = self.azure.now()
        by_id = {}
        for rule in rules:
            name = records.parse_rule_name(rule['name'])
            if name.kind != 'allow':
                continue
            props = rule['properties']
            info = records.parse_allow_description(props.get('description') or '')
            doubt = records.untrusted_end(info, now)
            if doubt:   # an end time we cannot trust means open: the rule lets traffic in until someone removes it
                until, status, reason = None, ACTIVE, doubt
            elif info.until > now:
                until, status, reason = info.until, ACTIVE, None
            else:       # expired but still in the NSG: it still lets traffic in until someone removes it, so say so
                until, status, reason = info.until, EXPIRED, 'ExpiredNotRemoved'
            port = RequestPort(name.port, name.protocol, ','.join(source_prefixes(rule)), until, status, reason)
            req = by_id.setdefault(name.request_id, AccessRequest(
                name.request_id, target.id, target.name, target.resource_group, self.name,
                info.requestor if info else None, None, [], info.justification if info else None))
            req.ports.append(port)
        requests = list(by_id.values())
        # Ports closed early: a request revoked in parts (`revoke --ports`, or twice) has one record per part,
        # and may still hold open ports; show each request once, with every port in its own state.
        for entry in revoked_requests(target, self.name):
            same = by_id.get(entry.id)
            if same is None:
                by_id[entry.id] = entry
                requests.append(entry)
                continue
            have = {p.number for p in same.ports}
            same.ports.extend(p for p in entry.ports if p.number not in have)
        return sorted(requests, key=lambda r: r.end_time or now, reverse=True)

    def check_requestors(self, target, requests):
        """The requestor in an allow rule's description is whatever its writer put there, and anyone who may write
        rules can write one: set beside it the caller Azure's Activity Log names for the rule's last write.

        One Activity Log query (the NSG's resource group, since the earliest start any of the rules can have), the
        only filter beside eventTimestamp, as Azure takes one of resourceGroupName, resourceUri, resourceProvider
        and correlationId at a time. A rule whose write the log does not (yet) show, or a log the caller may not
        read, leaves the request UNKNOWN, never MISMATCH."""
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.core.tools import parse_resource_id
        rules = {}
        for rule in self.protecting_rules(target):
            name = records.parse_rule_name(rule['name'])
            if name.kind == 'allow' and rule.get('id'):
                rules.setdefault(name.request_id, []).append(rule)
        checked = [r for r in requests if r.id in rules]
        if not checked:
            return
        since = _earliest_write(rules.values(), self.azure.now())
        group = parse_resource_id(target.nsg_id)['resource_group']
        try:
            events = activity_log.events(self.azure, since, 'resourceGroupName', group,
                                         'eventTimestamp,caller,claims,operationName,resourceId,status')
        except HttpResponseError as ex:
            logger.info('The Activity Log could not be read (%s): requestors are not checked.',
                        explain_http_error(ex).message)
            events = []
        writers = _last_writers(events)
        for request in checked:
            names = [_comparable_writer(request.requestor, writers.get(r['id'].lower(), (None, None))[1])
                     for r in rules[request.id]]
            strangers = sorted({n for n in names if n and not same_person(request.requestor, n)})
            if strangers:
                request.requestor_check, request.logged_requestor = MISMATCH, ', '.join(strangers)
            elif names and all(names):
                request.requestor_check, request.logged_requestor = CONFIRMED, names[0]
            else:
                request.requestor_check, request.logged_requestor = UNKNOWN, None

    def remove_expired(self, target, dry_run=False):
        nsg = self._nsg(target)
        if nsg is None:
            return []
        mine = {r['name'] for r in self._rules_in(nsg, target)}
        changes = []
        for rule, doubt in self._rules_to_remove(nsg, self.azure.now()):
            if rule['name'] in mine:
                if doubt:
                    _warn_untrusted(rule, doubt, nsg, dry_run)
                changes += self._delete(target, rule, dry_run)
        return changes

    expiring_rule_marker = records.NAME_PREFIX + 'Allow-'

    def cleanup(self, resource_group=None, dry_run=False):
        """Delete every expired allow rule of ours in the scope's NSGs, and every one whose end cannot be trusted.

        Safe beside other commands and other cleanups: it deletes only allow rules of ours whose own description
        says their time is up, or cannot say when it is (unreadable, or further ahead than any policy allows: a
        rule nobody can account for must not stay open, and a warning names it); a rule deleted twice is not an
        error, and it never writes anything else.
        """
        nsgs = nsg_client.list_nsgs(self.azure, resource_group)
        # Azure's clock is known only once an answer has come back (its Date header): read it after listing,
        # or expiry would be judged by this machine's clock.
        now = self.azure.now()
        removed, failed = [], []
        for nsg in nsgs:
            gone, problems = self.cleanup_nsg(nsg, now, dry_run)
            removed += gone
            failed += problems
        return removed, failed

    def rules_due(self, nsg, now):
        return [rule for rule, _ in self._rules_to_remove(nsg, now)]

    def cleanup_nsg(self, nsg, now, dry_run=False):
        """`cleanup` on one NSG as read (`cleanup` and fleet cleanup, which reads it fresh from ARM first)."""
        from azure.core.exceptions import AzureError
        removed, failed = [], []
        for rule, doubt in self._rules_to_remove(nsg, now):
            if doubt:
                _warn_untrusted(rule, doubt, nsg, dry_run)
            if not dry_run:
                try:
                    nsg_client.delete_rule(self.azure, nsg['id'], rule['name'])
                except AzureError as ex:   # an error answer, a Failed operation or a lost connection
                    failed.append(f"{rule['name']} in {nsg_client.describe_nsg(nsg['id'])}: "
                                  f"{explain_http_error(ex).message}")
                    continue
            removed.append(rule_change('delete', nsg['id'], rule))
        return removed, failed

    @staticmethod
    def _rules_to_remove(nsg, now):
        """`(rule, doubt)` for each allow rule of ours in `nsg` whose time is up (doubt None) or whose end time
        cannot be trusted (doubt says why: `records.untrusted_end`)."""
        found = []
        for rule in rules_of(nsg):
            name = records.parse_rule_name(rule['name'])
            if not name or name.kind != 'allow':
                continue
            if not is_allow(rule) or not is_inbound(rule):   # JIT writes only inbound allow rules by this name
                _warn_look_alike(rule, nsg)
                continue
            info = records.parse_allow_description((rule.get('properties') or {}).get('description') or '')
            doubt = records.untrusted_end(info, now)
            if doubt or info.until <= now:
                found.append((rule, doubt))
        return found

    # -- writing -------------------------------------------------------------------------------------
    def enable(self, targets, policy, dry_run=False):
        changes = []
        for target in targets:
            # The policy first: writing it needs the administrator's permission (tags), so a caller without it
            # is stopped before any rule is written; if a rule write fails afterwards, the next run adds it.
            merge, delete = vm_records.changes_for(target.tags, records.POLICY_TAG, policy.to_dict())
            stored = vm_records.present(target.tags, records.POLICY_TAG)
            earlier = vm_records.read(target.tags, records.POLICY_TAG) if stored else None
            written = any(vm_records.tag_value(target.tags, k) != v for k, v in merge.items()) or delete
            if written:
                changes.append(Change('update' if stored else 'create', 'policy',
                                      target.id, target.name, {'policy': policy.to_dict(), 'storedIn': 'VM tags'},
                                      target.id))
                if not dry_run:
                    vm_records.write(self.azure, target.id, target.tags, records.POLICY_TAG, policy.to_dict())
            if not target.nsg_id:
                continue
            try:
                # Expired allow rules still let traffic in: re-enabling is a good moment to close them.
                changes += self.remove_expired(target, dry_run)
                changes += self._write_deny_rules(target, policy, dry_run)
            except Exception:
                if written and not dry_run:   # never leave a policy that says "protected" without its deny rule
                    self._put_back_policy(target, earlier)
                raise
        return changes

    def _put_back_policy(self, target, earlier):
        """Best effort: the policy tag as it was before this enable (none for a VM that had none)."""
        try:
            vm_records.write(self.azure, target.id, target.tags, records.POLICY_TAG, earlier)
        except Exception:  # pylint: disable=broad-except
            logger.warning('%s: the JIT policy written before the failure could not be taken back; `az vm jit show` '
                           'reports the VM as not protected until `az vm jit enable` succeeds.', target.describe())

    def unprotected_ports(self, target, policy):
        """Ports of the policy that no deny rule of ours closes: from any source, to the VM's private IP."""
        denies = [r for r in self.protecting_rules(target) if records.parse_rule_name(r['name']).kind == 'deny'
                  and not is_allow(r) and rule_allows_any_source(r)
                  and any(prefix_contains_ip(d, target.private_ip) for d in destination_prefixes(r))]
        rules = rules_of(self._nsg(target))
        missing = []
        for port in policy.ports:
            closing = [priority_of(r) for r in denies if rule_covers_port(r, port.number, port.protocol)]
            # An allow-any rule ahead of the deny rule opens the port whatever its name (one named like ours
            # included: anyone with rule write permission can name a rule so).
            if not closing or classify_conflicts(
                    [r for r in rules if (priority_of(r) or MAX_PRIORITY + 1) < min(closing)],
                    [(port.number, port.protocol)], target.private_ip, min(closing), target.asg_ids).remove:
                missing.append((port.number, port.protocol))
        return sorted(missing)

    def _write_deny_rules(self, target, policy, dry_run):
        ports = [(p.number, p.protocol) for p in policy.ports]
        current = self._nsg(target)
        before = {r['name'].lower(): r for r in self._rules_in(current, target)
                  if records.parse_rule_name(r['name']).kind == 'deny'}

        def build(nsg, attempt):  # pylint: disable=unused-argument
            # From the NSG as it is now: after losing a priority to another VM's enable, the next free one.
            mine = {r['name'].lower(): r for r in self._rules_in(nsg, target)}
            wanted = records.build_deny_rules(target.id, target.name, target.private_ip, ports, rules_of(nsg))
            return [r for r in wanted if not (r['name'].lower() in mine
                                              and rules_equivalent(mine[r['name'].lower()], r))]

        if dry_run:
            written = build(current, 0)
        else:
            written = nsg_client.add_rules(self.azure, target.nsg_id, build)
        changes = [rule_change('update' if r['name'].lower() in before else 'create', target.nsg_id, r, target.name,
                               target.id) for r in written]
        wanted_names = {records.deny_rule_name(target.id, protocol).lower()
                        for protocol in group_ports_by_protocol(ports)}
        for name, stale in before.items():  # a protocol no longer in the policy
            if name in wanted_names:
                continue
            changes += self._delete(target, stale, dry_run)
        return changes

    def open_access(self, target, policy, grants, source, justification, requestor, dry_run=False):
        nsg = self._nsg(target)
        if nsg is None:
            raise NotPossible(
                f"{target.describe()} has no network security group on its primary NIC or its subnet any more, so JIT "
                "cannot open access through one.",
                f"Attach its NSG again (`az network nic update -g {target.resource_group} --name <nic> "
                "--network-security-group <nsg>`), or take the VM out of JIT with "
                f"`az vm jit disable -g {target.resource_group} -n {target.name}`.")
        request_id = records.new_request_id()
        justification = _kept_justification(requestor, justification)
        now = self.azure.now()
        ends = {port.number: now + duration for port, duration in grants}

        def build(nsg, attempt):
            rules = rules_of(nsg)
            ceiling = records.deny_ceiling(rules, target.id) or DEFAULT_DENY_PRIORITY
            priorities = choose_allow_priorities(used_priorities(rules), len(grants), ceiling)
            if attempt > 1:  # spread out contenders so that twenty concurrent requests settle quickly
                free = choose_allow_priorities(used_priorities(rules), min(len(grants) + attempt, ceiling - 100),
                                               ceiling)
                priorities = sorted(random.sample(free, len(grants)))
            return [records.build_allow_rule(target.id, request_id, port.number, port.protocol, source,
                                             target.private_ip, priority, ends[port.number], requestor, justification)
                    for (port, _), priority in zip(grants, priorities)]

        if dry_run:
            rules = build(nsg, 0)
        else:
            rules = nsg_client.add_rules(self.azure, target.nsg_id, build, nsg)
        changes = [rule_change('create', target.nsg_id, r, target.name) for r in rules]
        ports = [RequestPort(port.number, port.protocol, source, ends[port.number], ACTIVE) for port, _ in grants]
        request = AccessRequest(request_id, target.id, target.name, target.resource_group, self.name, requestor, now,
                                ports, justification)
        return request, changes

    def close_access(self, target, requests, ports=None, dry_run=False):
        ids = {r.id for r in requests}
        changes = []
        for rule in self.protecting_rules(target):   # none when the NSG was detached: nothing left to close
            name = records.parse_rule_name(rule['name'])
            if name.kind == 'allow' and name.request_id in ids and (not ports or name.port in ports):
                changes += self._delete(target, rule, dry_run)
        return changes

    def disable(self, target, dry_run=False):
        """Remove the policy, then every rule of the VM (by VM key), whether or not the policy tag still exists.

        The policy goes first: it needs tags permission, which a requester lacks, so such a caller is stopped
        before any rule is touched instead of leaving the VM unprotected but still marked enabled. Rules left by
        an earlier disable cut short between the two steps are removed all the same.
        """
        changes = []
        if vm_records.present(target.tags, records.POLICY_TAG):
            changes.append(Change('delete', 'policy', target.id, target.name, {'storedIn': 'VM tags'}, target.id))
            if not dry_run:
                vm_records.write(self.azure, target.id, target.tags, records.POLICY_TAG, None)
        for rule in self.protecting_rules(target):   # none when detached: only the tag to remove
            changes += self._delete(target, rule, dry_run)
        return changes


def _earliest_write(rule_groups, now):
    """The earliest time any of these allow rules can have been written: its end time less the longest access a
    policy allows, or as far back as the Activity Log goes for a rule whose end time cannot be trusted."""
    floor = now - dt.timedelta(days=LOG_MAX_DAYS)
    starts = []
    for rule in (r for group in rule_groups for r in group):
        info = records.parse_allow_description((rule.get('properties') or {}).get('description') or '')
        starts.append(floor if records.untrusted_end(info, now) else info.until - MAX_DURATION - records.CLOCK_LEEWAY)
    return max(min(starts), floor)


def _last_writers(events):
    """{rule id (lower): (time, caller as JIT names it)} of each rule's last write that succeeded."""
    from azext_jit.caller import caller_name
    writers = {}
    for event in events:
        if (event.get('operationName') or {}).get('value', '').lower() != RULE_WRITE_ACTION or \
                (event.get('status') or {}).get('value', '').lower() != 'succeeded':
            continue    # a write that started (the Started phase), failed or is unknown wrote nothing
        key = (event.get('resourceId') or '').lower()
        when = parse_time(event['eventTimestamp'])
        if key not in writers or when > writers[key][0]:
            writers[key] = (when, caller_name(event.get('caller'), event.get('claims')))
    return writers


def _comparable_writer(claimed, writer):
    """The writer, or None when it cannot be compared with the claimed requestor: a managed identity's name
    (``<group>/<type>/<name>``, see `caller.caller_name`) against a log entry that named its caller only by an id
    (no `xms_mirid` claim) may be the same identity, so that is unknown rather than a mismatch."""
    if writer and '/' in (claimed or '') and '/' not in writer and '@' not in writer:
        return None
    return writer


def _kept_justification(requestor, justification):
    """The justification as the allow rules' descriptions keep it (Azure allows 140 characters, shared with the end
    time, the requestor and the request id); a warning says when it had to be shortened."""
    if not justification or not justification.strip():
        return None
    kept = records.stored_justification(requestor, justification)
    if kept != ' '.join(justification.split()):
        logger.warning('The justification was shortened to %d characters to fit the NSG rule\'s description (Azure '
                       'allows 140 characters for the end time, requestor, request id and justification): %r.',
                       records.justification_room(requestor), kept)
    return kept


_WARNED_LOOK_ALIKES = set()


def _warn_look_alike(rule, nsg):
    """A rule named like a JIT allow rule that is not one (a deny rule, or outbound): someone changed it or named it
    so. Removing it could open a port: it stays, named once per command."""
    key = (str(nsg.get('id')).lower(), rule['name'].lower())
    if key not in _WARNED_LOOK_ALIKES:
        _WARNED_LOOK_ALIKES.add(key)
        props = rule.get('properties') or {}
        logger.warning("Rule %s in %s is named like a JIT allow rule but is %s %s: JIT never writes it so, and "
                       "leaves it in place.", rule['name'], nsg_client.describe_nsg(nsg['id']),
                       props.get('direction') or 'of no direction', props.get('access') or 'of no access')


def _warn_untrusted(rule, doubt, nsg, dry_run):
    """Say which rule is removed although its time may not be up, and why."""
    description = (rule.get('properties') or {}).get('description')
    if doubt == records.END_TIME_BEYOND_MAXIMUM:
        why = (f"says it stays open until {stamp(records.parse_allow_description(description).until)}, further "
               f"ahead than the longest access any JIT policy allows ({describe(MAX_DURATION)})")
    elif description:
        why = f"has a description JIT cannot read ({description!r}), so its end time is unknown"
    else:
        why = "has no description, so its end time is unknown"
    logger.warning("JIT allow rule '%s' in network security group '%s' %s. Access that JIT cannot account for must "
                   "not stay open: %s.", rule['name'], nsg.get('name') or nsg.get('id'), why,
                   'it would be removed' if dry_run else 'removing it')


RULE_DELETE_ACTION = 'microsoft.network/networksecuritygroups/securityrules/delete'


TAGS_WRITE = 'microsoft.resources/tags/write'


def trail_of_policy_tag(event, title):
    """NSG mode's policy lives in the VM's tags: a Tags API write that sets its policy tag configured the VM (its
    ports, sources or longest access), one that deletes it disabled the VM. Other tag writes are not JIT's."""
    from azext_jit.audit import happenings as h
    if h.operation(event) != TAGS_WRITE or not h.ended(event):
        return []
    scope = re.sub(r'/providers/Microsoft\.Resources/tags/default$', '', h.resource_id(event), flags=re.I)
    if not re.fullmatch(r'/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/virtualMachines/'
                        r'[^/]+', scope, re.I):
        return []
    body = h.body(event) or {}
    props = body.get('properties') if isinstance(body.get('properties'), dict) else {}
    tags = props.get('tags') if isinstance(props.get('tags'), dict) else {}
    if not any(str(k).lower() == records.POLICY_TAG for k in tags):
        return []
    deleting = str(body.get('operation') or '').lower() == 'delete'
    return [h.base(event, 'disable' if deleting else 'configure', mode=title, vm_id=scope)]


def _guarded(read, props):
    """A rule field as `read` gives it, or [] when what the caller sent has the wrong shape (a body in the log is
    whatever was sent: Azure refused it if it was malformed, but the event still holds it)."""
    try:
        return list(read(props))[:64]
    except (TypeError, ValueError, AttributeError):
        return []


def trail_of_rule_event(event, title):
    """Happenings of a write or delete of one of NSG mode's rules (by its name): a deny rule written is the VM
    configured, deleted is it disabled; an allow rule written is access opened for request `<id>` (one rule per
    port), deleted is that port closed. What the caller sent (source, end, requester, justification in the
    description) is read with bounds."""
    from azext_jit.audit import happenings as h
    from azext_jit.pim.client import last_segment
    from azext_jit.addresses import normalize_if_valid
    from azext_jit.nsg.rules import port_ranges, rule_properties
    from azext_jit.pim.asks import split_link
    op = h.operation(event)
    if op not in (RULE_WRITE_ACTION, RULE_DELETE_ACTION) or not h.ended(event):
        return []
    rid = h.resource_id(event)
    name = records.parse_rule_name(last_segment(rid))
    if name is None:
        return []
    writing = op == RULE_WRITE_ACTION
    props = rule_properties(h.body(event) or {}) if writing else {}
    props = props if isinstance(props, dict) else {}
    if name.kind == 'deny':
        ports = tuple(f'{low}/{name.protocol}' for low, high in _guarded(port_ranges, props) if low == high)[:32]
        return [h.base(event, 'configure' if writing else 'disable', mode=title, vm_key=name.vmkey, rule=rid,
                       ports=ports)]
    info = records.parse_allow_description(props.get('description')) if writing else None
    link, words = split_link(info.justification if info else None)
    sources = _guarded(source_prefixes, props) if writing else []
    return [h.base(event, 'open' if writing else 'close', mode=title, vm_key=name.vmkey,
                   key=('nsg', name.vmkey, name.request_id), ports=(f'{name.port}/{name.protocol}',),
                   source=h.one_line(normalize_if_valid(sources[0]), 64) if len(sources) == 1 else None,
                   end=info.until if info else None, justification=h.one_line(words) or None, link=link, rule=rid,
                   extra={'requestId': name.request_id})]
