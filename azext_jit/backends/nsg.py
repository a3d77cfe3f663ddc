"""NSG mode: the extension does Defender's job itself, on the VM's network security group.

- The policy lives in the VM's tags (`azvmjit-policy`, see vm_records.py), so any machine can read it.
- `enable` writes one Deny rule per protocol for the VM's private IP at priority 1000 or the nearest free
  one, named `AzVmJit-Deny-<vm key>-<protocol>` (never Defender's `SecurityCenter-JITRule...`).
- A request writes one Allow rule per port from the source to the private IP at the lowest free priority
  from 100 upward (always ahead of the deny rule), named `AzVmJit-Allow-<vm key>-<request id>-<port>-<protocol>`.
  Its description carries the end time, the requestor and the request id: that is all `list` and
  `cleanup` need, from any machine.
- Nothing but the extension removes these rules when time runs out: `cleanup` does, and every command
  that touches a VM first removes that VM's expired rules. Until then such a rule still lets traffic in,
  so its port shows as expired with the reason `ExpiredNotRemoved`.
- A VM whose NSG was detached after `enable` (`target.nsg_id` is None) has no rules to read or remove:
  it keeps its policy and revocation records, and `disable` still removes them.
"""
from azure.cli.core.azclierror import ValidationError

from azext_jit import nsg_ops, nsg_rules, vm_records
from azext_jit.backends.base import (ACTIVE, EXPIRED, REVOKED, AccessRequest, Change, JitBackend, RequestPort,
                                     parse_time, rule_change)
from azext_jit.policy import JitPolicy


class NsgBackend(JitBackend):
    mode = 'nsg'

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
            nsg_ops.delete_rule(self.azure, target.nsg_id, rule['name'])
        return [rule_change('delete', target.nsg_id, rule, target.name, target.id)]

    # -- reading -------------------------------------------------------------------------------------
    def policy_of(self, target):
        data = vm_records.read(target.tags, vm_records.POLICY)
        return JitPolicy.from_dict(data) if data else None

    def protecting_rules(self, target, nsg):
        """Every rule of ours for this VM (by VM key in the name), deny and allow; none without an NSG."""
        key = nsg_rules.vm_key(target.id)
        return [r for r in nsg_ops.rules_of(nsg)
                if (nsg_rules.parse_rule_name(r['name']) or nsg_rules.RuleName(None, None, None, None, None)).vmkey
                == key]

    def leftover_rules(self, target):
        """This VM's rules still in its NSG although it has no NSG-mode policy: what a disable cut short (or a
        policy tag removed by hand) left behind. `disable(target)` removes them. [] while the policy exists."""
        if vm_records.POLICY in (target.tags or {}) or not target.nsg_id:
            return []
        return self.protecting_rules(target, nsg_ops.read_nsg(self.azure, target.nsg_id))

    def requests_of(self, target, requestors=False):  # the allow rule's description names the requestor
        nsg = nsg_ops.read_nsg(self.azure, target.nsg_id)   # None when the NSG was detached: records only
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
            # Expired but still in the NSG: it still lets traffic in until someone removes it, so say so.
            port = RequestPort(name.port, name.protocol, ','.join(nsg_rules.source_prefixes(rule)), until, status,
                               'ExpiredNotRemoved' if status == EXPIRED else None)
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
                changes += self._delete(target, rule, dry_run)
        return changes

    def expired_rules(self, nsg, now=None):
        if not nsg:
            return []
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
            if not target.nsg_id:
                continue
            # Expired allow rules still let traffic in: re-enabling is a good moment to close them.
            changes += self.remove_expired(target, dry_run)
            changes += self._write_deny_rules(target, policy, dry_run)
        return changes

    def _write_deny_rules(self, target, policy, dry_run):
        ports = [(p.number, p.protocol) for p in policy.ports]
        current = nsg_ops.read_nsg(self.azure, target.nsg_id)
        before = {r['name'].lower(): r for r in self.protecting_rules(target, current)
                  if nsg_rules.parse_rule_name(r['name']).kind == 'deny'}

        def build(nsg, attempt):  # pylint: disable=unused-argument
            # From the NSG as it is now: after losing a priority to another VM's enable, the next free one.
            mine = {r['name'].lower(): r for r in self.protecting_rules(target, nsg)}
            wanted = nsg_rules.build_deny_rules(target.id, target.name, target.private_ip, ports,
                                                nsg_ops.rules_of(nsg))
            return [r for r in wanted if not (r['name'].lower() in mine
                                              and nsg_rules.rules_equivalent(mine[r['name'].lower()], r))]

        if dry_run:
            written = build(current, 0)
        else:
            written = nsg_ops.add_rules(self.azure, target.nsg_id, build)
        changes = [rule_change('update' if r['name'].lower() in before else 'create', target.nsg_id, r, target.name,
                               target.id) for r in written]
        wanted_names = {nsg_rules.deny_rule_name(target.id, protocol).lower()
                        for protocol in nsg_rules.group_ports_by_protocol(ports)}
        for name, stale in before.items():  # a protocol no longer in the policy
            if name in wanted_names:
                continue
            changes += self._delete(target, stale, dry_run)
        return changes

    def open_access(self, target, policy, grants, source, justification, requestor, dry_run=False):
        if not target.nsg_id:
            raise ValidationError(
                "{} has no network security group on its primary NIC or its subnet any more, so JIT cannot open "
                "access through one.".format(target.describe()),
                "Attach its NSG again (`az network nic update -g {} --name <nic> --network-security-group <nsg>`), "
                "or take the VM out of JIT with `az vm jit disable -g {} -n {}`.".format(
                    target.resource_group, target.resource_group, target.name))
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
        if not nsg:   # NSG detached: no rule is left to close
            return []
        ids = {r.id for r in requests}
        changes = []
        for rule in self.protecting_rules(target, nsg):
            name = nsg_rules.parse_rule_name(rule['name'])
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
        if vm_records.POLICY in target.tags:
            changes.append(Change('delete', 'policy', target.id, target.name, {'storedIn': 'VM tags'}, target.id))
            if not dry_run:
                vm_records.write(self.azure, target.id, target.tags, vm_records.POLICY, None)
        nsg = nsg_ops.read_nsg(self.azure, target.nsg_id)   # None when detached: only the tag to remove
        for rule in self.protecting_rules(target, nsg):
            changes += self._delete(target, rule, dry_run)
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
