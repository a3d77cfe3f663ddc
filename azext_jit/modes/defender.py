# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Defender mode: JIT through Defender for Cloud's `jitNetworkAccessPolicies` API (2020-01-01).

What the API gives and what it lacks, and how each gap is closed here:
- One policy per resource group and region (the portal names it `default`) holds many VMs, and a PUT
  replaces the whole policy. `enable`/`disable` read it, change only their VM's entry, write it back,
  and read it again: if another writer's PUT replaced ours in between (the API has no ETag), they merge
  again and retry. Every other VM's entry is written back exactly as read, with its requests; a VM leaving
  the policy takes its requests along (Defender's answer would not carry them).
- A PUT that lands after our re-read can still drop our entry (a lost update nobody sees at write time): `enable`
  therefore tags the VM (`azvmjit-defender`), and a VM with that tag but no entry is reported by `show`/`list`
  (not protected; run `enable` again) and refused by `request`.
- Requests go through `initiate`; Defender writes the NSG rules and expires them. It writes a request's allow
  rule after answering (`Initiating`), so within APPLY_WINDOW of its start a missing rule may still come:
  `revoke` and `disable` wait for it (bounded, saying so) before deleting it.
- There is no revoke. `revoke` deletes Defender's own Allow rule for the request from the NSG, which
  closes the port at once, and records the revocation in the VM's tags so `list` shows the request as
  revoked. Defender does not recreate a rule it created for a request once that rule is gone; the
  request's own entry stays `Initiated` in Defender's records until its end time. What decides whether a
  request is open is the allow rule in the NSG: a revocation record (which anyone who may write the VM's tags
  can forge) counts only while the rule is absent. (Re-initiating with an end time of "now" was rejected: it
  opens the port again until Defender's expiry job runs.)
- Defender leaves `requestor` empty for service principals: who made a request comes from the Activity Log,
  queried by the policy's resource id (the log accepts one scope per query) and read late (events arrive
  minutes after the fact: until then the requestor is unknown).
- Defender places its deny rules itself (seen at 1000, 4095, 4096) and may renumber other rules: rules are
  found by name and description, never by priority.
"""
import datetime as dt
import re
import time

from azure.mgmt.core.tools import parse_resource_id

from azext_jit.access_requests import ACTIVE, EXPIRED, REVOKED, AccessRequest, RequestPort, derived_request_id
from azext_jit.addresses import comparable_prefix
from azext_jit.changes import Change, rule_change
from azext_jit.durations import parse_duration, to_iso8601
from azext_jit.errors import AzureFailed, NotPossible, error_code
from azext_jit.log import get_logger
from azext_jit.modes.base import JitMode
from azext_jit.nsg import client as nsg_client
from azext_jit.nsg.rules import destination_prefixes, is_allow, rule_covers_port, rules_of, source_prefixes
from azext_jit.policy import JitPolicy, PortPolicy
from azext_jit import activity_log, vm_records
from azext_jit.pim import roles
from azext_jit.revocations import revoked_requests
from azext_jit.times import parse_time, stamp

logger = get_logger(__name__)

DEFAULT_POLICY = 'default'
INITIATE_ACTION = 'microsoft.security/locations/jitnetworkaccesspolicies/initiate/action'
MAX_NAME = 56           # policy name + VM name, a Defender limit
WRITE_ATTEMPTS = 4
FRESH_SECONDS = 0.25  # a policy read this recent, with no ARM call after it, is what a PUT may write back
LOG_MARGIN_MINUTES = 5  # Activity Log window starts this long before the oldest request it must explain
LOG_MAX_DAYS = 89       # the Activity Log keeps 90 days
# Defender writes a request's allow rule after answering the initiate (seconds later, by reports): until this long
# after the request began, a missing rule may still come, so `revoke` waits for it rather than calling it closed.
APPLY_WINDOW = dt.timedelta(minutes=2)
AWAITING_RULE = 'AwaitingDefenderRule'   # statusReason of an open port whose allow rule Defender has not written yet
MARKER = f'{vm_records.PREFIX}defender'  # VM tag: this VM was enabled in Defender mode (value: the policy's id)

# Defender's rule names: deny `SecurityCenter-JITRule_<int>_<32 hex>`, allow `SecurityCenter-JITRule-<int>-<32 hex>`;
# the int is signed (`_-123_`); Microsoft's self-help guide also shows the mixed `_-123-` form, so separators are free.
_RULE_NAME_RE = re.compile(r"^SecurityCenter-JITRule[_-]-?[0-9]+[_-][0-9a-f]{32}$", re.I | re.A)


def is_defender_rule(rule):
    """True for a rule Defender for Cloud's JIT wrote (by its name), for any VM."""
    return bool(_RULE_NAME_RE.match(str(rule.get('name') or '').strip()))


def _for_vm(rule, vm_name):
    """Defender's descriptions end with "... of VM '<name>'." (its only record of which VM a rule is for)."""
    return f"of VM '{vm_name}'." in ((rule.get('properties') or {}).get('description') or '')


def is_unavailable(ex):
    """A refusal from Microsoft.Security that means "no JIT API here" (plan missing, provider not registered, feature
    refused): 400 and 409, and a 403 that is not an authorization failure. A 401, a 404 ("no such policy"), a
    403 AuthorizationFailed ("you may not"), throttling and server errors are errors, not a reason to switch
    modes."""
    status = getattr(ex, 'status_code', None)
    if status == 403:
        return error_code(ex) != 'AuthorizationFailed'
    return status in (400, 409)


def defender_plan_enabled(azure):
    """True when the subscription has Defender for Servers Plan 2 (Standard tier, sub-plan P2 or none).

    Only an answer that says so counts as "no plan": a caller who may not read the pricing gets that error
    (and can choose with --mode) rather than a silent fall-back to NSG mode."""
    from azure.core.exceptions import HttpResponseError
    try:
        pricing = azure.security.pricings.get('VirtualMachines') or {}
    except HttpResponseError as ex:
        if getattr(ex, 'status_code', None) == 404 or is_unavailable(ex):
            return False
        raise
    props = pricing.get('properties') or {}
    return props.get('pricingTier') == 'Standard' and props.get('subPlan') in (None, '', 'P2')


def entry_to_policy(entry):
    """A Defender VM entry (wire JSON) as a JitPolicy."""
    ports = []
    for port in entry.get('ports') or []:
        sources = port.get('allowedSourceAddressPrefixes') or [port.get('allowedSourceAddressPrefix') or '*']
        ports.append(PortPolicy(int(port['number']), port.get('protocol') or '*',
                                parse_duration(port['maxRequestAccessDuration']), tuple(sources)))
    return JitPolicy(tuple(ports))


def policy_to_entry(vm_id, policy):
    """A JitPolicy as a Defender VM entry: one prefix as `allowedSourceAddressPrefix`, several as the list."""
    ports = []
    for port in policy.ports:
        item = {'number': port.number, 'protocol': port.protocol,
                'maxRequestAccessDuration': to_iso8601(port.max_duration)}
        if len(port.allowed_sources) == 1:
            item['allowedSourceAddressPrefix'] = port.allowed_sources[0]
        else:
            item['allowedSourceAddressPrefixes'] = list(port.allowed_sources)
        ports.append(item)
    return {'id': vm_id, 'ports': ports}


def _same_vm(a, b):
    return a.lower() == b.lower()


class DefenderMode(JitMode):  # pylint: disable=too-many-public-methods  # the interface is what a mode can do
    name = 'defender'
    title = 'Defender'
    expires_access_itself = True          # Defender removes its allow rules at their end time
    closes_access_before_disable = True   # ... and keeps them after the VM leaves the policy
    matches_sources_exactly = True        # initiate accepts only one of the allowed prefixes exactly
    finds_caller_ip = True                # initiate without a source opens from the caller's address
    opening_action = INITIATE_ACTION      # checked over the JIT policy resource (`approval_scope`)

    def __init__(self, azure):
        super().__init__(azure)
        self._policies = {}   # (resource group, location) -> [policy wire JSON]
        self._listed = set()  # resource groups (lower case; '*' for all) whose policies were all listed at once
        self._callers = {}    # policy id (lower) -> (covered since, [(time, caller)] of its initiate events)
        self._plan = None     # whether the subscription has Defender for Servers Plan 2 (asked once)
        self._read_when = {}  # (resource group, location) -> (ARM calls made before, monotonic time) of its read

    # -- who can be served ---------------------------------------------------------------------------
    def trail(self, event):
        return trail_of_event(event, self.title)

    def gate_for(self, scope, target):
        """A JIT policy of the VM's resource group (Defender keeps one per group and region)."""
        return bool(re.match(rf'^/subscriptions/[^/]+/resourcegroups/{re.escape(target.resource_group.lower())}/'
                             r'providers/microsoft\.security/locations/[^/]+/jitnetworkaccesspolicies/[^/]+$',
                             scope.rstrip('/').lower()))

    def _refused(self, ex):
        self.unavailable_because = f"Defender for Cloud's JIT API is not available here ({_first_line(ex)})"

    def available(self, target):
        from azure.core.exceptions import HttpResponseError
        if self.unavailable_because:
            return False
        try:
            self.policies(target.resource_group, target.location)
            return True
        except HttpResponseError as ex:
            if not is_unavailable(ex):
                raise
            self._refused(ex)
            return False

    def prefetch(self, resource_group=None, required=False):
        from azure.core.exceptions import HttpResponseError
        try:
            self.all_policies(resource_group)
            return True
        except HttpResponseError as ex:
            if required or not is_unavailable(ex):
                raise
            self._refused(ex)
            return False

    def can_serve_new_vms(self):
        """Whether the subscription has Defender for Servers Plan 2 (asked once; not asked once Defender's JIT API
        refused this command)."""
        if self._plan is None:
            self._plan = not self.unavailable_because and defender_plan_enabled(self.azure)
            if not self._plan and not self.unavailable_because:
                self.not_serving_because = 'Defender for Servers Plan 2 is not on in this subscription'
        return self._plan

    def claimed_by_vm(self, target):
        return bool(vm_records.tag_value(target.tags, MARKER))

    def cannot_hold(self, target):
        """Why Defender cannot take this VM, or None."""
        # The limit counts the name of the policy the VM would join, which need not be `default`.
        holder = _holder(self.policies(target.resource_group, target.location), {target.id: None})
        if len((holder or {}).get('name') or DEFAULT_POLICY) + len(target.name) > MAX_NAME:
            return ("the name is too long for Defender for Cloud JIT (policy name and VM name together may not exceed "
                    f"{MAX_NAME} characters)")
        return None

    @property
    def ops(self):
        return self.azure.security.jit_network_access_policies

    # -- reading -------------------------------------------------------------------------------------
    def policies(self, resource_group, location, refresh=False):
        """The policies of a resource group and region, read once per command unless `refresh`."""
        key = (resource_group.lower(), location.lower())
        if not refresh and key not in self._policies and ({'*', key[0]} & self._listed):
            return []
        if refresh or key not in self._policies:
            self._policies[key] = self.ops.list_by_resource_group_and_region(resource_group, location)
            self._read_when[key] = (self.azure.rest.calls, time.monotonic())
        return self._policies[key]

    def _read_just_now(self, resource_group, location):
        """Whether the group's policies were read by the last ARM call of this command, less than FRESH_SECONDS ago:
        nothing (an NSG read, a confirmation prompt, approval's set-up) came between that read and now."""
        calls, when = self._read_when.get((resource_group.lower(), location.lower()), (None, 0.0))
        return calls == self.azure.rest.calls and time.monotonic() - when < FRESH_SECONDS

    def all_policies(self, resource_group=None):
        policies = self.ops.list_by_resource_group(resource_group) if resource_group else self.ops.list()
        self._listed.add(resource_group.lower() if resource_group else '*')
        for policy in policies:
            parts = parse_resource_id(policy['id'])
            key = (parts['resource_group'].lower(), parts['name'].lower())
            self._policies.setdefault(key, [])
            if all(p['id'].lower() != policy['id'].lower() for p in self._policies[key]):
                self._policies[key].append(policy)
        return policies

    def policy_holding(self, target, refresh=False):
        """(policy wire JSON, the VM's entry) of the policy that lists the VM, or (None, None)."""
        for policy in self.policies(target.resource_group, target.location, refresh):
            for entry in (policy.get('properties') or {}).get('virtualMachines') or []:
                if _same_vm(entry['id'], target.id):
                    return policy, entry
        return None, None

    def holds(self, target):
        """A VM listed in a Defender policy, or one this extension enabled in Defender mode (its tag says so) whose
        entry has since vanished (another writer's PUT replaced the policy): `show` and `list` must say so rather
        than call it unprotected and say nothing."""
        return self.policy_holding(target)[1] is not None or bool(vm_records.tag_value(target.tags, MARKER))

    def policy_of(self, target):
        _, entry = self.policy_holding(target)
        if entry:
            return entry_to_policy(entry)
        if vm_records.tag_value(target.tags, MARKER):
            raise NotPossible(
                f"{target.describe()} was enabled in Defender mode, but Defender's JIT policy no longer lists it: "
                "another writer's update of the policy replaced it (or it was removed outside this extension), "
                "so its ports are not protected.",
                f'Run `az vm jit enable -g {target.resource_group} -n {target.name}` again (or `az vm jit disable -g '
                f'{target.resource_group} -n {target.name}` to forget it).')
        return None

    def approval_scope(self, target):
        """The JIT policy that lists the VM: ARM checks `…/jitNetworkAccessPolicies/initiate/action` over the
        policy resource itself (an `initiate` is a POST to it)."""
        policy, _ = self.policy_holding(target)
        return policy['id'] if policy else None

    approval_actions = (roles.INITIATE,)

    def planned_approval_scope(self, target):
        """The policy `enable` writes the VM into: the one listing it, else the group and region's (`_holder`)."""
        holder = _holder(self.policies(target.resource_group, target.location), {target.id: None})
        name = (holder or {}).get('name') or DEFAULT_POLICY
        return (f'/subscriptions/{self.azure.subscription_id}/resourceGroups/{target.resource_group}/providers/'
                f'Microsoft.Security/locations/{target.location}/jitNetworkAccessPolicies/{name}')

    def protecting_rules(self, target):
        return [r for r in rules_of(nsg_client.read_nsg(self.azure, target.nsg_id))
                if is_defender_rule(r) and _for_vm(r, target.name) and target.private_ip in destination_prefixes(r)]

    def leftover_rules(self, target):
        """Defender's rules for a VM that no reachable Defender policy lists: left behind when a subscription lost
        the plan (or the policy was deleted outside JIT). Reported, never removed: Defender wrote them."""
        if not target.nsg_id:
            return []
        return [r for r in rules_of(nsg_client.read_nsg(self.azure, target.nsg_id))
                if is_defender_rule(r) and _for_vm(r, target.name)]

    leftover_view_key = 'orphanedDefenderRules'

    def leftover_warning(self, target, rules):
        names = ', '.join(r['name'] for r in rules)
        return (f"{target.describe()} has Defender for Cloud JIT rules in its NSG ({names}) but no Defender JIT policy "
                "this subscription can reach: Defender no longer manages them. To keep JIT, run "
                f"`az vm jit enable -g {target.resource_group} -n {target.name} --mode nsg` "
                "(its rules take precedence); see the README on moving between modes.")

    def owns_rule(self, rule):
        return is_defender_rule(rule)

    def guards_other_vm(self, rule, target):
        return is_defender_rule(rule) and not is_allow(rule) and not _for_vm(rule, target.name)

    def requests_of(self, target, requestors=False):
        """The VM's requests as Defender records them, each open port checked against the NSG.

        A port Defender still reports open (`Initiating`/`Initiated`, before its end time) is active while its allow
        rule is in the NSG, and while Defender may not have written that rule yet (it writes it after answering the
        initiate: within APPLY_WINDOW of the request's start). Otherwise it is closed: revoked by us when a
        revocation record in the VM's tags says so, else its rule was removed by someone (`AllowRuleRemoved`). A
        revocation record never closes a port whose rule is in the NSG: anyone who may write the VM's tags can
        write one (and ids are predictable), so there it only earns a warning."""
        policy, entry = self.policy_holding(target)
        if policy is None:
            return []
        now = self.azure.now()
        revoked_ids = {r.id: r for r in revoked_requests(target, self.name)}
        out = []
        for raw in (policy.get('properties') or {}).get('requests') or []:
            for vm in raw.get('virtualMachines') or []:
                if not _same_vm(vm['id'], target.id):
                    continue
                rid = derived_request_id(target.id, raw.get('startTimeUtc'))
                start = parse_time(raw['startTimeUtc']) if raw.get('startTimeUtc') else None
                ports = []
                for port in vm.get('ports') or []:
                    end = parse_time(port['endTimeUtc']) if port.get('endTimeUtc') else None
                    source = (port.get('allowedSourceAddressPrefix') or
                              ','.join(port.get('allowedSourceAddressPrefixes') or []))
                    status, reason = _port_status(port, end, now)
                    if status == ACTIVE:
                        status, reason = self._open_or_closed(target, rid, start, int(port['number']), source,
                                                              revoked_ids.get(rid), reason, now)
                    ports.append(RequestPort(int(port['number']), self._protocol_of(target, port['number']),
                                             source, end, status, reason, port.get('mappedPort')))
                out.append(AccessRequest(rid, target.id, target.name, target.resource_group, self.name,
                                         raw.get('requestor') or (self._requestor_of(policy, raw)
                                                                  if requestors else None),
                                         start, ports, raw.get('justification'), entry.get('publicIpAddress')))
        return sorted(out, key=lambda r: r.start_time or now, reverse=True)

    def _open_or_closed(self, target, rid, start, number, source, record, reason, now):
        """(status, reason) of a port Defender reports open, by what the NSG holds (see `requests_of`)."""
        allows = self._allow_rules(target)
        if allows is None:   # no NSG to look at (Defender writes no rule then): Defender's word stands
            return ACTIVE, reason
        rule = next((r for r in allows if _rule_matches(r, number, source)), None)
        recorded = record is not None and number in [p.number for p in record.ports]
        if rule is not None:
            if recorded:
                logger.warning("A revocation record on %s says request %s (port %s) was closed, but Defender's allow "
                               "rule %s for it is in the NSG: the port is open, and the request is shown as active. "
                               "Close it with `az vm jit revoke -g %s -n %s --request-id %s`.", target.describe(), rid,
                               number, rule['name'], target.resource_group, target.name, rid)
            return ACTIVE, reason
        if any(rule_covers_port(r, number, '*') for r in allows):
            return ACTIVE, reason   # a rule for the port from another source: `revoke` names it rather than guess
        if recorded:
            return REVOKED, 'UserRequested'
        if start is not None and now < start + APPLY_WINDOW:
            return ACTIVE, AWAITING_RULE
        return REVOKED, 'AllowRuleRemoved'

    def _allow_rules(self, target, fresh=False):
        """Defender's allow rules for the VM in its NSG, or None when the VM has no NSG. Finds the VM's network
        first when the target was built without it (`list`): one NIC read, only for VMs with open requests."""
        if not target.nsg_id and not target.private_ip and target.nic_id and not getattr(target, 'network_read', 0):
            from azext_jit.targets import target_from_vm
            found = target_from_vm(self.azure, {
                'id': target.id, 'name': target.name, 'location': target.location, 'tags': target.tags,
                'properties': {'networkProfile': {'networkInterfaces': [{'id': target.nic_id,
                                                                         'properties': {'primary': True}}]}}})
            for key in ('private_ip', 'public_ip', 'subnet_id', 'nsg_id', 'nsg_scope', 'asg_ids', 'subnet_read'):
                setattr(target, key, getattr(found, key))
            target.network_read = True
        if not target.nsg_id:
            return None
        nsg = nsg_client.read_nsg(self.azure, target.nsg_id, fresh=fresh)
        return [r for r in rules_of(nsg) if is_defender_rule(r) and is_allow(r) and _for_vm(r, target.name)
                and target.private_ip in destination_prefixes(r)]

    def _protocol_of(self, target, number):
        policy = self.policy_of(target)
        port = policy and policy.port(int(number))
        return port.protocol if port else '*'

    def _requestor_of(self, policy, raw):
        """Who initiated a request, from the Activity Log, when Defender's answer leaves `requestor` empty (as it
        does for service principals in the recorded sessions).

        The Activity Log accepts one scope per query (resource group, resource, provider or correlation id, beside
        the time range): this asks for the policy's own events (`resourceUri`), once per policy per command, from
        shortly before the oldest request that needs explaining, and keeps the successful initiates client-side.
        Events reach the log minutes late: a request not (yet) in it has no known requestor, which `revoke` treats
        as nobody's."""
        from azure.core.exceptions import HttpResponseError
        if not raw.get('startTimeUtc'):
            return None
        start = parse_time(raw['startTimeUtc'])
        key = policy['id'].lower()
        reach, _ = self._callers.get(key, (None, None))
        if reach is None or start - dt.timedelta(minutes=2) < reach:
            floor = self.azure.now() - dt.timedelta(days=LOG_MAX_DAYS)
            since = max(self._oldest_unnamed(policy) - dt.timedelta(minutes=LOG_MARGIN_MINUTES), floor)
            try:
                events = activity_log.events(self.azure, since, 'resourceUri', policy['id'],
                                             'eventTimestamp,caller,operationName,resourceId,status')
            except HttpResponseError:
                events = []
            # Older than the floor is beyond the log's reach: asking again would find nothing more.
            reach = since if since > floor else dt.datetime.min.replace(tzinfo=dt.timezone.utc)
            self._callers[key] = (reach, [
                (parse_time(e['eventTimestamp']), e.get('caller'))
                for e in events if (e.get('operationName') or {}).get('value', '').lower() == INITIATE_ACTION
                and (e.get('status') or {}).get('value', 'Succeeded') in ('Succeeded', 'Accepted')
                and (e.get('resourceId') or '').lower().startswith(key)])
        near = [(abs((when - start).total_seconds()), caller) for when, caller in self._callers[key][1] if caller]
        near = [n for n in near if n[0] <= 120]
        return min(near)[1] if near else None

    @staticmethod
    def _oldest_unnamed(policy):
        """The start of the oldest request without a requestor in the policy."""
        return min(parse_time(r['startTimeUtc']) for r in (policy.get('properties') or {}).get('requests') or []
                   if r.get('startTimeUtc') and not r.get('requestor'))

    # -- writing -------------------------------------------------------------------------------------
    def enable(self, targets, policy, dry_run=False):
        changes = []
        groups = {}
        for target in targets:
            reason = self.cannot_hold(target)
            if reason:
                raise NotPossible(f'{target.describe()}: {reason}.', 'Use --mode nsg for this VM.')
            groups.setdefault((target.resource_group.lower(), target.location.lower()), []).append(target)
        for group in groups.values():
            entries = {t.id: policy_to_entry(t.id, policy) for t in group}
            written = self._write_entries(group, entries, dry_run)
            changes += written + self._mark(group, written[0].target if written else None, dry_run)
        return changes

    def disable(self, target, dry_run=False):
        changes = self._write_entries([target], {target.id: None}, dry_run)
        if vm_records.tag_value(target.tags, MARKER):
            changes.append(Change('delete', 'tags', target.id, target.name, {'record': [MARKER]}, target.id))
            if not dry_run:
                vm_records.delete_tags(self.azure, target.id, target.tags, [MARKER])
        return changes

    def _mark(self, group, policy_id, dry_run):
        """Note on each VM that it is in Defender mode, so a later command notices when its policy entry vanishes
        (the API has no ETag: a concurrent writer's PUT can replace it after our own check succeeded)."""
        changes = []
        for target in group:
            value = policy_id or (self.policy_holding(target)[0] or {}).get('id') or DEFAULT_POLICY
            if vm_records.tag_value(target.tags, MARKER) == value:
                continue
            changes.append(Change('update', 'tags', target.id, target.name, {'record': [MARKER]}, target.id))
            if not dry_run:
                vm_records.merge_tags(self.azure, target.id, target.tags, {MARKER: value})
        return changes

    def _write_entries(self, group, entries, dry_run):
        """Set (or with None, remove) VM entries in the group's policy: read, merge, write, re-read."""
        first = group[0]
        if not _merge(_vms_of(_holder(self.policies(first.resource_group, first.location), entries)), entries,
                      group)[1]:
            return []   # already as wanted (checked on the copy read for mode detection): nothing to write
        changes = []
        for attempt in range(WRITE_ATTEMPTS):
            # A PUT replaces the whole list: write back a copy read just now. The one read for the mode choice is
            # that copy when it was the command's last call (enable reads NSGs and the plan before it); after
            # anything else (a confirmation prompt, approval's set-up, a lost update), read again.
            fresh = attempt == 0 and self._read_just_now(first.resource_group, first.location)
            policies = self.policies(first.resource_group, first.location, refresh=not fresh)
            holder = _holder(policies, entries)
            name = holder['name'] if holder else DEFAULT_POLICY
            current = _vms_of(holder)
            merged, changes = _merge(current, entries, group)
            if not changes:
                return []
            policy_id = (f'/subscriptions/{self.azure.subscription_id}/resourceGroups/{first.resource_group}'
                         f'/providers/Microsoft.Security/locations/{first.location}/jitNetworkAccessPolicies/{name}')
            for change in changes:
                change.target = policy_id
            if dry_run:
                return changes
            if not merged:
                self.ops.delete(first.resource_group, first.location, name)
                self._policies.pop((first.resource_group.lower(), first.location.lower()), None)
                return changes + [Change('delete', 'policy', policy_id, None, {'reason': 'no VM left in it'})]
            # The requests of VMs still in the policy go back as read; a VM's requests leave with it (Defender's
            # answer would not carry them anyway).
            kept = {e['id'].lower() for e in merged}
            requests = [r for r in (holder or {}).get('properties', {}).get('requests') or []
                        if all(vm['id'].lower() in kept for vm in r.get('virtualMachines') or [])]
            body = {'kind': (holder or {}).get('kind') or 'Basic',
                    'properties': {'virtualMachines': merged, 'requests': requests}}
            self.ops.create_or_update(first.resource_group, first.location, name, writable_body(body))
            reread = self.ops.get(first.resource_group, first.location, name) or {}
            stored = reread.get('properties', {}).get('virtualMachines') or []
            if _entries_hold(stored, entries):
                self._policies.pop((first.resource_group.lower(), first.location.lower()), None)
                return changes
            # Another writer replaced the policy between our read and our write: merge again.
        raise AzureFailed(f'The JIT policy of resource group {first.resource_group} kept changing under us '
                          f'({WRITE_ATTEMPTS} attempts); another writer is updating it.',
                          'Run the command again; it is safe to repeat.')

    def open_access(self, target, policy, grants, source, justification, requestor, dry_run=False):
        holder, entry = self.policy_holding(target)
        now = self.azure.now()
        ports = []
        for port, duration in grants:
            item = {'number': port.number, 'endTimeUtc': stamp(now + duration)}
            if source:
                item['allowedSourceAddressPrefix'] = source
            ports.append(item)
        body = {'virtualMachines': [{'id': target.id, 'ports': ports}]}
        if justification:
            body['justification'] = justification
        policy_id = holder['id']
        change = Change('initiate', 'policy', policy_id, target.name, {
            'ports': ','.join(str(p['number']) for p in ports),
            'source': source or '(your public IP, as Azure sees it)',
            'endTime': ports[0]['endTimeUtc'] if ports else None})
        if dry_run:
            request = AccessRequest(None, target.id, target.name, target.resource_group, self.name, requestor, now,
                                    [RequestPort(p.number, p.protocol, source, now + d, 'planned')
                                     for p, d in grants], justification, entry.get('publicIpAddress'))
            return request, [change]
        location = parse_resource_id(policy_id)['name']
        answer = self.ops.initiate(target.resource_group, location, holder['name'], body)
        start = parse_time(answer['startTimeUtc']) if answer.get('startTimeUtc') else now
        rid = derived_request_id(target.id, answer.get('startTimeUtc'))
        out_ports = []
        for vm in answer.get('virtualMachines') or []:
            for port in vm.get('ports') or []:
                out_ports.append(RequestPort(int(port['number']), self._protocol_of(target, port['number']),
                                             port.get('allowedSourceAddressPrefix'), parse_time(port['endTimeUtc']),
                                             ACTIVE, port.get('statusReason'), port.get('mappedPort')))
        request = AccessRequest(rid, target.id, target.name, target.resource_group, self.name,
                                answer.get('requestor') or requestor, start, out_ports,
                                answer.get('justification') or justification, entry.get('publicIpAddress'))
        return request, [change]

    def close_access(self, target, requests, ports=None, dry_run=False):
        """Delete Defender's Allow rules of these requests (matched by VM, port and source).

        Sources are compared normalised (Defender may write `1.2.3.4/32` for a request from `1.2.3.4`). Defender
        writes a request's allow rule after answering the initiate: for a port whose rule is not there yet
        (`AWAITING_RULE`), this waits, bounded by APPLY_WINDOW from the request's start and saying so, for the rule
        to appear and then deletes it; deleting nothing would leave the port to open a moment later. When a port
        still has a Defender allow rule of this VM but none matches the request, nothing is deleted and the
        command fails naming the rules: reporting "revoked" while the port stays open would be worse."""
        chosen = [(r, p) for r in requests for p in r.ports if p.status == ACTIVE and (not ports or p.number in ports)]
        wanted = {(p.number, comparable_prefix(p.source)) for _, p in chosen}
        allows = self._allow_rules(target) or []
        awaited = {(p.number, p.source): r for r, p in chosen if p.reason == AWAITING_RULE
                   and not any(rule_covers_port(rule, p.number, '*') for rule in allows)}
        if awaited and not dry_run:
            allows = self._await_rules(target, awaited)
        matched, closed = [], set()
        for rule in allows:
            sources = {comparable_prefix(s) for s in source_prefixes(rule)}
            hits = {n for n, s in wanted if s in sources and rule_covers_port(rule, n, '*')}
            if hits:
                matched.append(rule)
                closed |= hits
        # A port with no allow rule left at all is already closed (expired, or deleted by hand): fine.
        stuck = {n: [r for r in allows if rule_covers_port(r, n, '*')] for n, _ in wanted if n not in closed}
        stuck = {n: found for n, found in stuck.items() if found}
        if stuck:
            nsg = parse_resource_id(target.nsg_id)
            ports_text = ', '.join(str(n) for n in sorted(stuck))
            rules_text = '; '.join(f"{r['name']} (source {','.join(source_prefixes(r))})"
                                   for n in sorted(stuck) for r in stuck[n])
            raise NotPossible(
                f'{target.describe()}: Defender allow rule(s) for port(s) {ports_text} do not match the source of the '
                f'request being revoked: {rules_text}. Nothing was changed.',
                f'Check those rules in NSG {target.nsg_id}; if they belong to this access, delete them with '
                f"`az network nsg rule delete -g {nsg['resource_group']} --nsg-name {nsg['name']} -n <rule name>`.")
        changes = []
        for rule in matched:
            changes.append(rule_change('delete', target.nsg_id, rule, target.name))
            if not dry_run:
                nsg_client.delete_rule(self.azure, target.nsg_id, rule['name'])
        return changes

    def _await_rules(self, target, awaited):
        """Re-read the NSG until Defender's allow rule is there for every awaited (port, source), or until
        APPLY_WINDOW after the latest of those requests began (then a rule still missing counts as removed, with a
        warning); returns the VM's allow rules as last read. Nothing is deleted before the wait ends."""
        deadline = max(r.start_time for r in awaited.values()) + APPLY_WINDOW
        what = ', '.join(f'port {n} of request {r.id}' for (n, _), r in sorted(awaited.items(), key=str))
        logger.warning('Defender has not yet written the allow rule for %s on %s; waiting for it (at most until '
                       '%s) so that it can be closed.', what, target.describe(), stamp(deadline))
        pause, said = 1.0, time.monotonic()
        while True:
            time.sleep(max(0.0, min(pause, (deadline - self.azure.now()).total_seconds())))
            allows = self._allow_rules(target, fresh=True) or []
            missing = [key for key in awaited if not any(_rule_matches(rule, *key) for rule in allows)]
            if not missing:
                return allows
            if self.azure.now() >= deadline:
                ids = sorted({awaited[key].id for key in missing})
                logger.warning(
                    "Defender wrote no allow rule for %s of request(s) %s within %d seconds of the request: counted as "
                    "closed (its rule was removed, or never written). Should Defender still write it, `az vm jit show "
                    "-g %s -n %s` shows the request as active again and `az vm jit revoke` closes it.",
                    ', '.join(f'port {n}' for n, _ in sorted(missing)), ', '.join(ids),
                    int(APPLY_WINDOW.total_seconds()), target.resource_group, target.name)
                return allows
            if time.monotonic() - said >= 15:
                logger.warning('Still waiting for Defender to write the allow rule for %s...', what)
                said = time.monotonic()
            pause = min(pause * 2, 5.0)


def _rule_matches(rule, number, source):
    """Whether one of Defender's allow rules is the one for this request port (port and source)."""
    return (comparable_prefix(source) in {comparable_prefix(s) for s in source_prefixes(rule)}
            and rule_covers_port(rule, number, '*'))


def _holder(policies, entries):
    """The policy to write `entries` into: one already listing one of the VMs; else the one named `default` (ARM
    names are case-insensitive); else any policy of the group and region, so no second policy appears beside it."""
    for policy in policies:
        if any(_same_vm(e['id'], vm_id) for e in (policy.get('properties') or {}).get('virtualMachines') or []
               for vm_id in entries):
            return policy
    named = next((p for p in policies if (p.get('name') or '').lower() == DEFAULT_POLICY), None)
    return named or (policies[0] if policies else None)


def _port_status(port, end, now):
    status = (port.get('status') or '').lower()
    reason = port.get('statusReason')
    if status == 'revoked':
        return (EXPIRED, reason) if (reason or '').lower() == 'expired' else (REVOKED, reason)
    if end is not None and end <= now:
        return EXPIRED, 'Expired'
    return ACTIVE, reason


def _vms_of(policy):
    return list((policy or {}).get('properties', {}).get('virtualMachines') or [])


def _merge(current, entries, group):
    """The policy's VM list with `entries` set (None: removed); and the Changes that makes."""
    names = {t.id.lower(): t.name for t in group}
    merged, changes, seen = [], [], set()
    for entry in current:
        key = entry['id'].lower()
        match = next((vm_id for vm_id in entries if vm_id.lower() == key), None)
        if match is None:
            merged.append(entry)                 # another VM's entry: written back exactly as read
            continue
        seen.add(match)
        wanted = entries[match]
        if wanted is None:
            changes.append(Change('delete', 'policy', '', names[key], {'vmEntry': entry}, entry['id']))
        elif _comparable(entry) != _comparable(wanted):
            merged.append(dict(entry, **wanted))
            changes.append(Change('update', 'policy', '', names[key], {'vmEntry': wanted}, entry['id']))
        else:
            merged.append(entry)
    for vm_id, wanted in entries.items():
        if vm_id not in seen and wanted is not None:
            merged.append(wanted)
            changes.append(Change('create', 'policy', '', names[vm_id.lower()], {'vmEntry': wanted}, vm_id))
    return merged, changes


def _comparable(entry):
    try:
        return entry_to_policy(entry)
    except Exception:  # pylint: disable=broad-except
        return entry


def _entries_hold(stored, entries):
    by_id = {e['id'].lower(): e for e in stored}
    for vm_id, wanted in entries.items():
        found = by_id.get(vm_id.lower())
        if wanted is None and found is not None:
            return False
        if wanted is not None and (found is None or _comparable(found) != _comparable(wanted)):
            return False
    return True


# The fields a JIT policy PUT may carry, level by level (2020-01-01's writable properties; each names the level of
# its value, None for a plain value): what was read goes back through `writable_body`, so a read-only field, or one
# Azure adds to its answers later, is never sent.
_POLICY_FIELDS = {
    'policy': {'kind': None, 'properties': 'properties'},
    'properties': {'virtualMachines': 'vm', 'requests': 'request'},
    'vm': {'id': None, 'ports': 'port', 'publicIpAddress': None},
    'port': dict.fromkeys(('number', 'protocol', 'allowedSourceAddressPrefix', 'allowedSourceAddressPrefixes',
                           'maxRequestAccessDuration')),
    'request': {'virtualMachines': 'request vm', 'startTimeUtc': None, 'requestor': None, 'justification': None},
    'request vm': {'id': None, 'ports': 'request port'},
    'request port': dict.fromkeys(('number', 'allowedSourceAddressPrefix', 'allowedSourceAddressPrefixes',
                                   'endTimeUtc', 'status', 'statusReason', 'mappedPort')),
}


def writable_body(value, level='policy'):
    """A policy body (or a part of one, a list of parts) with only the fields a PUT takes, and none that is None."""
    if isinstance(value, list):
        return [writable_body(item, level) for item in value]
    if not isinstance(value, dict):
        return value
    fields = _POLICY_FIELDS[level]
    return {key: writable_body(value[key], fields[key]) if fields[key] else value[key]
            for key in fields if value.get(key) is not None}


def _first_line(ex):
    from azext_jit.errors import error_message
    return error_message(ex).split('\n')[0][:160]


POLICY_WRITE = 'microsoft.security/locations/jitnetworkaccesspolicies/write'
POLICY_DELETE = 'microsoft.security/locations/jitnetworkaccesspolicies/delete'
RULE_WRITE = 'microsoft.network/networksecuritygroups/securityrules/write'
RULE_DELETE = 'microsoft.network/networksecuritygroups/securityrules/delete'
_FOR_VM_RE = re.compile(r"of VM '([^']{1,80})'\.")
MAX_TRAIL_VMS = 1000    # a policy body listing more VMs than this is not read (a policy holds far fewer)


def _body_vms(body):
    """[(vm id, [port dicts])] of a policy or initiate body, bounded; [] when it has none we can read."""
    props = body.get('properties') if isinstance(body.get('properties'), dict) else body
    vms = props.get('virtualMachines') if isinstance(props, dict) else None
    if not isinstance(vms, list) or len(vms) > MAX_TRAIL_VMS:
        return []
    found = []
    for vm in vms:
        if isinstance(vm, dict) and isinstance(vm.get('id'), str) and '/virtualmachines/' in vm['id'].lower():
            ports = [p for p in (vm.get('ports') or [])[:64] if isinstance(p, dict)] \
                if isinstance(vm.get('ports'), list) else []
            found.append((vm['id'].rstrip('/'), ports))
    return found


def _port_text(port, protocol=None):
    try:
        number = int(port.get('number'))
    except (TypeError, ValueError, OverflowError):
        return None
    if not 0 < number <= 65535:
        return None
    protocol = protocol or port.get('protocol')
    return f"{number}/{str(protocol).upper()}" if protocol else str(number)


def _settings(ports):
    """What a VM's policy entry allows, to compare two writes: each port with its sources and maximum duration."""
    from azext_jit.audit.happenings import one_line
    keys = ('number', 'protocol', 'allowedSourceAddressPrefix', 'allowedSourceAddressPrefixes',
            'maxRequestAccessDuration')
    return tuple(sorted(one_line(' '.join(str(p.get(k)) for k in keys), 300) for p in ports))


def _end_of(ports):
    ends = []
    for port in ports:
        try:
            ends.append(parse_time(str(port.get('endTimeUtc'))))
        except (ValueError, OverflowError):
            continue
    return max(ends) if ends else None


def _source_of(ports):
    from azext_jit.addresses import normalize_if_valid
    from azext_jit.audit.happenings import one_line
    sources = {str(p.get('allowedSourceAddressPrefix'))[:100] for p in ports if p.get('allowedSourceAddressPrefix')}
    return one_line(normalize_if_valid(sources.pop()), 64) if len(sources) == 1 else None


def trail_of_event(event, title):
    """Happenings of Defender's JIT: a policy written (its VMs and ports, when the event keeps the body) or
    deleted; an `initiate` (a request: who, ports, source, end, justification; a failed one was refused); and
    Defender's own NSG rules written and deleted (by its first-party application: `actor` Defender for Cloud)."""
    from azext_jit.audit import happenings as h
    from azext_jit.pim.client import last_segment
    from azext_jit.pim.asks import split_link
    op = h.operation(event)
    if not h.ended(event):
        return []
    rid = h.resource_id(event)
    body = h.body(event) or {}
    if op in (POLICY_WRITE, POLICY_DELETE):
        vms = {vm_id.lower(): (vm_id, tuple(t for t in (_port_text(p) for p in ports) if t), _settings(ports))
               for vm_id, ports in _body_vms(body)} if body else None
        return [h.base(event, 'policy' if op == POLICY_WRITE else 'policy-deleted', mode=title,
                       extra={'policy': rid.lower(), 'vms': vms})]
    if op == INITIATE_ACTION:
        link, words = split_link(body.get('justification'))
        return [h.base(event, 'ask', mode=title, vm_id=vm_id,
                       key=('defender', str(event.get('eventDataId') or rid), vm_id.lower()),
                       ports=tuple(t for t in (_port_text(p) for p in ports) if t), source=_source_of(ports),
                       end=_end_of(ports), justification=h.one_line(words) or None, link=link,
                       extra={'policy': rid.lower()})
                for vm_id, ports in _body_vms(body)] or \
            [h.base(event, 'ask', mode=title, extra={'policy': rid.lower()})]
    if op not in (RULE_WRITE, RULE_DELETE) or not _RULE_NAME_RE.match(last_segment(rid)):
        return []
    allow = last_segment(rid).lower().startswith('securitycenter-jitrule-')
    props = (body.get('properties') if isinstance(body.get('properties'), dict) else body) if op == RULE_WRITE \
        else {}
    named = _FOR_VM_RE.search(str(props.get('description') or ''))
    port = str(props.get('destinationPortRange') or '')
    port = port if port.isascii() and port.isdigit() and len(port) <= 5 else ''
    protocol = h.one_line(props.get('protocol') or '*', 8).upper()
    action = ('open' if op == RULE_WRITE else 'close') if allow else ('protect' if op == RULE_WRITE else 'unprotect')
    source, destination = props.get('sourceAddressPrefix'), props.get('destinationAddressPrefix')
    return [h.base(event, action, mode=title, rule=rid,
                   ports=(f'{int(port)}/{protocol}',) if port.isdigit() and 0 < int(port) <= 65535 else (),
                   source=h.one_line(source, 64) if isinstance(source, str) else None,
                   extra={'vmName': named.group(1) if named else None, 'expiresItself': True,
                          'destination': destination.strip() if isinstance(destination, str) else None})]
