# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Defender mode: JIT through Defender for Cloud's `jitNetworkAccessPolicies` API (2020-01-01).

What the API gives and what it lacks, and how each gap is closed here:
- One policy per resource group and region (the portal names it `default`) holds many VMs, and a PUT
  replaces the whole policy. `enable`/`disable` read it, change only their VM's entry, write it back,
  and read it again: if another writer's PUT replaced ours in between (the API has no ETag), they merge
  again and retry. Every other VM's entry is written back exactly as read.
- Requests go through `initiate`; Defender writes the NSG rules and expires them.
- There is no revoke. `revoke` deletes Defender's own Allow rule for the request from the NSG, which
  closes the port at once, and records the revocation in the VM's tags so `list` shows the request as
  revoked. Defender does not recreate a rule it created for a request once that rule is gone; the
  request's own entry stays `Initiated` in Defender's records until its end time, which is why the
  record in the VM's tags is needed. (Re-initiating with an end time of "now" was rejected: it opens
  the port again until Defender's expiry job runs.)
"""
import datetime as dt
import re

from azure.mgmt.core.tools import parse_resource_id

from azext_jit.access_requests import ACTIVE, EXPIRED, REVOKED, AccessRequest, RequestPort, derived_request_id
from azext_jit.addresses import comparable_prefix
from azext_jit.changes import Change, rule_change
from azext_jit.durations import parse_duration, to_iso8601
from azext_jit.errors import AzureFailed, NotPossible, error_code
from azext_jit.modes.base import JitMode
from azext_jit.nsg import client as nsg_client
from azext_jit.nsg.rules import destination_prefixes, is_allow, rule_covers_port, rules_of, source_prefixes
from azext_jit.policy import JitPolicy, PortPolicy
from azext_jit.revocations import revoked_requests
from azext_jit.times import parse_time, stamp
from azext_jit.wire import wire

DEFAULT_POLICY = 'default'
INITIATE_ACTION = 'microsoft.security/locations/jitnetworkaccesspolicies/initiate/action'
MAX_NAME = 56           # policy name + VM name, a Defender limit
WRITE_ATTEMPTS = 4
LOG_MARGIN_MINUTES = 5  # Activity Log window starts this long before the oldest request it must explain
LOG_MAX_DAYS = 89       # the Activity Log keeps 90 days

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
        pricing = wire(azure.security.pricings.get('VirtualMachines'))
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


class DefenderMode(JitMode):
    name = 'defender'
    title = 'Defender'
    expires_access_itself = True          # Defender removes its allow rules at their end time
    closes_access_before_disable = True   # ... and keeps them after the VM leaves the policy
    matches_sources_exactly = True        # initiate accepts only one of the allowed prefixes exactly
    finds_caller_ip = True                # initiate without a source opens from the caller's address

    def __init__(self, azure):
        super().__init__(azure)
        self._policies = {}   # (resource group, location) -> [policy wire JSON]
        self._listed = set()  # resource groups (lower case; '*' for all) whose policies were all listed at once
        self._callers = {}    # resource group -> (covered since, [(time, caller, resource id)] of initiate events)
        self._plan = None     # whether the subscription has Defender for Servers Plan 2 (asked once)

    # -- who can be served ---------------------------------------------------------------------------
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
        if self._plan is None:
            self._plan = defender_plan_enabled(self.azure)
        return self._plan

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
            pages = self.ops.list_by_resource_group_and_region(resource_group, location)
            self._policies[key] = [wire(p) for p in pages]
        return self._policies[key]

    def all_policies(self, resource_group=None):
        pages = self.ops.list_by_resource_group(resource_group) if resource_group else self.ops.list()
        policies = [wire(p) for p in pages]
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

    def policy_of(self, target):
        _, entry = self.policy_holding(target)
        return entry_to_policy(entry) if entry else None

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
        policy, entry = self.policy_holding(target)
        if policy is None:
            return []
        now = self.azure.now()
        revoked = revoked_requests(target, self.name)
        revoked_ids = {r.id: r for r in revoked}
        out = []
        for raw in (policy.get('properties') or {}).get('requests') or []:
            for vm in raw.get('virtualMachines') or []:
                if not _same_vm(vm['id'], target.id):
                    continue
                rid = derived_request_id(target.id, raw.get('startTimeUtc'))
                ports = []
                for port in vm.get('ports') or []:
                    end = parse_time(port['endTimeUtc']) if port.get('endTimeUtc') else None
                    status, reason = _port_status(port, end, now)
                    if rid in revoked_ids and status == ACTIVE and port['number'] in [
                            p.number for p in revoked_ids[rid].ports]:
                        status, reason = REVOKED, 'UserRequested'
                    ports.append(RequestPort(int(port['number']), self._protocol_of(target, port['number']),
                                             port.get('allowedSourceAddressPrefix') or
                                             ','.join(port.get('allowedSourceAddressPrefixes') or []),
                                             end, status, reason, port.get('mappedPort')))
                out.append(AccessRequest(rid, target.id, target.name, target.resource_group, self.name,
                                         raw.get('requestor') or (self._requestor_of(policy, raw)
                                                                  if requestors else None),
                                         parse_time(raw['startTimeUtc']) if raw.get('startTimeUtc') else None,
                                         ports, raw.get('justification'), entry.get('publicIpAddress')))
        return sorted(out, key=lambda r: r.start_time or now, reverse=True)

    def _protocol_of(self, target, number):
        policy = self.policy_of(target)
        port = policy and policy.port(int(number))
        return port.protocol if port else '*'

    def _requestor_of(self, policy, raw):
        """Who initiated a request, from the Activity Log, when Defender's answer leaves `requestor` empty (as it
        does for service principals in the recorded sessions). One Activity Log query per resource group per
        command, narrowed to Microsoft.Security events since the oldest request that needs explaining; an entry
        not (yet) in the log leaves the requestor unknown."""
        from azure.core.exceptions import HttpResponseError
        if not raw.get('startTimeUtc'):
            return None
        start = parse_time(raw['startTimeUtc'])
        group = parse_resource_id(policy['id'])['resource_group']
        reach, _ = self._callers.get(group.lower(), (None, None))
        if reach is None or start - dt.timedelta(minutes=2) < reach:
            floor = self.azure.now() - dt.timedelta(days=LOG_MAX_DAYS)
            since = max(self._oldest_unnamed(group, policy) - dt.timedelta(minutes=LOG_MARGIN_MINUTES), floor)
            query = (f"eventTimestamp ge '{stamp(since)}' and resourceGroupName eq '{group}' and resourceProvider eq "
                     "'Microsoft.Security'")
            try:
                events = [wire(e) for e in self.azure.monitor.activity_logs.list(
                    filter=query, select='eventTimestamp,caller,operationName,resourceId,status')]
            except HttpResponseError:
                events = []
            # Older than the floor is beyond the log's reach: asking again would find nothing more.
            reach = since if since > floor else dt.datetime.min.replace(tzinfo=dt.timezone.utc)
            self._callers[group.lower()] = (reach, [
                (parse_time(e['eventTimestamp']), e.get('caller'), (e.get('resourceId') or '').lower())
                for e in events if (e.get('operationName') or {}).get('value', '').lower() == INITIATE_ACTION
                and (e.get('status') or {}).get('value', 'Succeeded') == 'Succeeded'])
        near = [(abs((when - start).total_seconds()), caller) for when, caller, rid in self._callers[group.lower()][1]
                if rid.startswith(policy['id'].lower()) and caller]
        near = [n for n in near if n[0] <= 120]
        return min(near)[1] if near else None

    def _oldest_unnamed(self, group, policy):
        """The start of the oldest request without a requestor in the group's policies read so far."""
        policies = [p for key, held in self._policies.items() if key[0] == group.lower() for p in held]
        starts = [parse_time(r['startTimeUtc']) for p in policies + [policy]
                  for r in (p.get('properties') or {}).get('requests') or []
                  if r.get('startTimeUtc') and not r.get('requestor')]
        return min(starts)

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
            changes += self._write_entries(group, entries, dry_run)
        return changes

    def disable(self, target, dry_run=False):
        return self._write_entries([target], {target.id: None}, dry_run)

    def _write_entries(self, group, entries, dry_run):
        """Set (or with None, remove) VM entries in the group's policy: read, merge, write, re-read."""
        first = group[0]
        if not _merge(_vms_of(_holder(self.policies(first.resource_group, first.location), entries)), entries,
                      group)[1]:
            return []   # already as wanted (checked on the copy read for mode detection): nothing to write
        changes = []
        for _ in range(WRITE_ATTEMPTS):
            # A PUT replaces the whole list: write back a copy read just now, not the one read for mode detection
            # before the NSG reads and a confirmation prompt, which may miss a VM someone added since.
            policies = self.policies(first.resource_group, first.location, refresh=True)
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
            body = {'kind': (holder or {}).get('kind') or 'Basic',
                    'properties': {'virtualMachines': merged,
                                   'requests': (holder or {}).get('properties', {}).get('requests') or []}}
            self.ops.create_or_update(first.resource_group, first.location, name, _policy_model(body))
            reread = wire(self.ops.get(first.resource_group, first.location, name))
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
        answer = wire(self.ops.initiate(target.resource_group, location, holder['name'], _initiate_model(body)))
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

        Sources are compared normalised (Defender may write `1.2.3.4/32` for a request from `1.2.3.4`). When a port
        still has a Defender allow rule of this VM but none matches the request, nothing is deleted and the
        command fails naming the rules: reporting "revoked" while the port stays open would be worse."""
        wanted = {(p.number, comparable_prefix(p.source)) for r in requests for p in r.ports
                  if p.status == ACTIVE and (not ports or p.number in ports)}
        allows = [r for r in self.protecting_rules(target) if is_allow(r)]
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


def _policy_model(body):
    from azure.mgmt.security.v2020_01_01.models import JitNetworkAccessPolicy
    return JitNetworkAccessPolicy.deserialize(body)


def _initiate_model(body):
    from azure.mgmt.security.v2020_01_01.models import JitNetworkAccessPolicyInitiateRequest
    return JitNetworkAccessPolicyInitiateRequest.deserialize(body)


def _first_line(ex):
    from azext_jit.errors import error_message
    return error_message(ex).split('\n')[0][:160]
