"""NSG mode: the extension does Defender's job itself, on the VM's network security group.

- The policy lives in the VM's tags (`azvmjit-policy`, see vm_records.py), so any machine can read it.
- `enable` writes one Deny rule per protocol for the VM's private IP at priority 1000 or the nearest free
  one, named `AzVmJit-Deny-<vm key>-<protocol>` (never Defender's `SecurityCenter-JITRule...`).
- A request writes one Allow rule per port from the source to the private IP at the lowest free priority
  from 100 upward (always ahead of the deny rule), named `AzVmJit-Allow-<vm key>-<request id>-<port>-<protocol>`.
  Its description carries the end time, the requestor and the request id: that is all `list` and
  `cleanup` need, from any machine.
- Nothing but the extension removes these rules when time runs out: `cleanup` does, and every command
  that touches a VM first removes that VM's expired rules.
"""
from azext_jit import nsg_ops, nsg_rules, vm_records
from azext_jit.backends.base import (ACTIVE, EXPIRED, REVOKED, AccessRequest, Change, JitBackend, RequestPort,
                                     parse_time, rule_change)
from azext_jit.policy import JitPolicy


class NsgBackend(JitBackend):
    mode = 'nsg'

    # -- reading -------------------------------------------------------------------------------------
    def policy_of(self, target):
        data = vm_records.read(target.tags, vm_records.POLICY)
        return JitPolicy.from_dict(data) if data else None

    def protecting_rules(self, target, nsg):
        key = nsg_rules.vm_key(target.id)
        return [r for r in nsg_ops.rules_of(nsg)
                if (nsg_rules.parse_rule_name(r['name']) or nsg_rules.RuleName(None, None, None, None, None)).vmkey
                == key]

    def requests_of(self, target, requestors=False):  # the allow rule's description names the requestor
        nsg = nsg_ops.read_nsg(self.azure, target.nsg_id)
        now = self.azure.now()
        by_id = {}
        for rule in self.protecting_rules(target, nsg):
            name = nsg_rules.parse_rule_name(rule['name'])
            if name.kind != 'allow':
                continue
            props = rule['properties']
            info = nsg_rules.parse_allow_description(props.get('description') or '')
            until = info.until if info else None
            status = ACTIVE if until and until > now else EXPIRED
            port = RequestPort(name.port, name.protocol, ','.join(nsg_rules.source_prefixes(rule)), until, status,
                               'Expired' if status == EXPIRED else None)
            req = by_id.setdefault(name.request_id, AccessRequest(
                name.request_id, target.id, target.name, target.resource_group, self.mode,
                info.requestor if info else None, None, []))
            req.ports.append(port)
        requests = list(by_id.values())
        # Ports closed early: a request revoked in parts (`revoke --ports`, or twice) has one record per part,
        # and may still hold open ports; show each request once, with every port in its own state.
        for entry in revoked_requests(target, self.mode):
            same = by_id.get(entry.id)
            if same is None:
                by_id[entry.id] = entry
                requests.append(entry)
                continue
            have = {p.number for p in same.ports}
            same.ports.extend(p for p in entry.ports if p.number not in have)
        return sorted(requests, key=lambda r: r.end_time or now, reverse=True)

    def remove_expired(self, target, dry_run=False):
        if not target.nsg_id:
            return []
        nsg = nsg_ops.read_nsg(self.azure, target.nsg_id)
        mine = {r['name'] for r in self.protecting_rules(target, nsg)}
        changes = []
        for rule in self.expired_rules(nsg):
            if rule['name'] in mine:
                changes.append(rule_change('delete', target.nsg_id, rule, target.name))
                if not dry_run:
                    nsg_ops.delete_rule(self.azure, target.nsg_id, rule['name'])
        return changes

    def expired_rules(self, nsg, now=None):
        now = now or self.azure.now()
        found = []
        for rule in nsg_ops.rules_of(nsg):
            name = nsg_rules.parse_rule_name(rule['name'])
            if not name or name.kind != 'allow':
                continue
            info = nsg_rules.parse_allow_description((rule.get('properties') or {}).get('description') or '')
            if info and info.until <= now:
                found.append(rule)
        return found

    # -- writing -------------------------------------------------------------------------------------
    def enable(self, targets, policy, dry_run=False):
        changes = []
        for target in targets:
            # The policy first: writing it needs the administrator's permission (tags), so a caller without it
            # is stopped before any rule is written; if a rule write fails afterwards, the next run adds it.
            merge, delete = vm_records.changes_for(target.tags, vm_records.POLICY, policy.to_dict())
            if any(target.tags.get(k) != v for k, v in merge.items()) or delete:
                changes.append(Change('update' if vm_records.POLICY in target.tags else 'create', 'policy',
                                      target.id, target.name, {'policy': policy.to_dict(), 'storedIn': 'VM tags'},
                                      target.id))
                if not dry_run:
                    vm_records.write(self.azure, target.id, target.tags, vm_records.POLICY, policy.to_dict())
            nsg = nsg_ops.read_nsg(self.azure, target.nsg_id)
            changes += self._write_deny_rules(target, policy, nsg, dry_run)
        return changes

    def _write_deny_rules(self, target, policy, nsg, dry_run):
        rules = nsg_ops.rules_of(nsg)
        ports = [(p.number, p.protocol) for p in policy.ports]
        wanted = nsg_rules.build_deny_rules(target.id, target.name, target.private_ip, ports, rules)
        existing = {r['name'].lower(): r for r in self.protecting_rules(target, nsg)
                    if nsg_rules.parse_rule_name(r['name']).kind == 'deny'}
        changes = []
        for rule in wanted:
            current = existing.pop(rule['name'].lower(), None)
            if current is not None and nsg_rules.rules_equivalent(current, rule):
                continue
            changes.append(rule_change('update' if current else 'create', target.nsg_id, rule, target.name, target.id))
            if not dry_run:
                nsg_ops.put_rule(self.azure, target.nsg_id, rule)
        for stale in existing.values():  # a protocol no longer in the policy
            changes.append(rule_change('delete', target.nsg_id, stale, target.name, target.id))
            if not dry_run:
                nsg_ops.delete_rule(self.azure, target.nsg_id, stale['name'])
        return changes

    def open_access(self, target, policy, grants, source, justification, requestor, dry_run=False):
        request_id = nsg_rules.new_request_id()
        now = self.azure.now()
        ends = {port.number: now + duration for port, duration in grants}

        def build(nsg, attempt):
            rules = nsg_ops.rules_of(nsg)
            ceiling = nsg_rules.deny_ceiling(rules, target.id) or nsg_rules.DEFAULT_DENY_PRIORITY
            priorities = nsg_rules.choose_allow_priorities(nsg_rules.used_priorities(rules), len(grants), ceiling)
            if attempt > 1:  # spread out contenders so that twenty concurrent requests settle quickly
                import random
                free = nsg_rules.choose_allow_priorities(nsg_rules.used_priorities(rules),
                                                         min(len(grants) + attempt, ceiling - 100), ceiling)
                priorities = sorted(random.sample(free, len(grants)))
            return [nsg_rules.build_allow_rule(target.id, request_id, port.number, port.protocol, source,
                                               target.private_ip, priority, ends[port.number], requestor)
                    for (port, _), priority in zip(grants, priorities)]

        nsg = nsg_ops.read_nsg(self.azure, target.nsg_id)
        if dry_run:
            rules = build(nsg, 0)
        else:
            rules = nsg_ops.add_rules(self.azure, target.nsg_id, build, nsg)
        changes = [rule_change('create', target.nsg_id, r, target.name) for r in rules]
        ports = [RequestPort(port.number, port.protocol, source, ends[port.number], ACTIVE) for port, _ in grants]
        request = AccessRequest(request_id, target.id, target.name, target.resource_group, self.mode, requestor, now,
                                ports, justification)
        return request, changes

    def close_access(self, target, requests, ports=None, dry_run=False, nsg=None):
        nsg = nsg or nsg_ops.read_nsg(self.azure, target.nsg_id)
        ids = {r.id for r in requests}
        changes = []
        for rule in self.protecting_rules(target, nsg):
            name = nsg_rules.parse_rule_name(rule['name'])
            if name.kind == 'allow' and name.request_id in ids and (not ports or name.port in ports):
                changes.append(rule_change('delete', target.nsg_id, rule, target.name))
                if not dry_run:
                    nsg_ops.delete_rule(self.azure, target.nsg_id, rule['name'])
        return changes

    def disable(self, target, dry_run=False):
        nsg = nsg_ops.read_nsg(self.azure, target.nsg_id) if target.nsg_id else None
        changes = []
        for rule in self.protecting_rules(target, nsg) if nsg else []:
            changes.append(rule_change('delete', target.nsg_id, rule, target.name))
            if not dry_run:
                nsg_ops.delete_rule(self.azure, target.nsg_id, rule['name'])
        if vm_records.POLICY in target.tags:
            changes.append(Change('delete', 'policy', target.id, target.name, {'storedIn': 'VM tags'}))
            if not dry_run:
                vm_records.write(self.azure, target.id, target.tags, vm_records.POLICY, None)
        return changes


def revoked_requests(target, mode, exclude=()):
    """Requests closed early, as recorded in the VM's tags (`azvmjit-revoked-<id>`)."""
    out = []
    for rid, entry in sorted(vm_records.revocations(target.tags).items()):
        if rid in exclude:
            continue
        entry = dict(entry, id=rid)
        end = parse_time(entry['end']) if entry.get('end') else None
        ports = [RequestPort(p, entry.get('protocol', 'TCP'), entry.get('src'), end, REVOKED, 'UserRequested')
                 for p in entry.get('ports', [])]
        out.append(AccessRequest(entry['id'], target.id, target.name, target.resource_group, mode, entry.get('req'),
                                 parse_time(entry['at']) if entry.get('at') else None, ports))
    return out
