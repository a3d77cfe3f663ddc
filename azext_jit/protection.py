# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Rules that would defeat JIT, in both modes: found and removed by `enable`, put back by `disable`.

An Allow rule that lets any source (`*`, `Internet`, `0.0.0.0/0`) reach a protected port of the VM makes
the JIT deny rule pointless, so `enable` removes it, after asking (`--yes` for scripts), and records the
whole rule in the VM's tags (`azvmjit-restore`) so `disable` can restore it exactly. Narrower Allow rules
and any rule whose priority beats the deny rule are only named in a warning: JIT does not override them.
Every other rule is left alone.

The record is read back from tags that people outside JIT can write, so `disable` writes back only what `enable`
itself would have removed from that VM (`plan_restore`): into the VM's own NSG, an inbound Allow rule letting any
source reach a port the VM's policy protects at its address, with only the fields `enable` records, and only when no
rule of that name exists. Entries failing a check are named in a warning with their definition and dropped; entries
that cannot be checked (the VM's policy cannot be read and no deny rule of its own says which ports it protected)
stay in the record with a warning. The confirmation lists every rule it will write; with `--yes`, a warning does.
A rule shared with another VM that JIT still protects stays removed, and its record moves to that VM.
"""
import json
import re
import threading
from dataclasses import dataclass, field

from azure.mgmt.core.tools import parse_resource_id

from azext_jit import activity_log, vm_records
from azext_jit.changes import Change, rule_change, rule_summary
from azext_jit.errors import BadInput, NotPossible, UsageError
from azext_jit.log import get_logger
from azext_jit.nsg import client as nsg_client
from azext_jit.nsg.conflicts import classify_conflicts, is_only_address
from azext_jit.nsg.priorities import MAX_PRIORITY, MIN_PRIORITY, choose_deny_priority, used_priorities
from azext_jit.nsg.rules import (MAX_DESCRIPTION_LENGTH, destination_prefixes, format_pairs, is_allow, port_pairs,
                                 port_ranges, rule_allows_any_source, rule_properties, rules_equivalent, rules_of)
from azext_jit.ports import normalize_protocol

logger = get_logger(__name__)

RESTORED_FIELDS = ('description', 'protocol', 'sourcePortRange', 'sourcePortRanges', 'destinationPortRange',
                   'destinationPortRanges', 'sourceAddressPrefix', 'sourceAddressPrefixes',
                   'destinationAddressPrefix', 'destinationAddressPrefixes', 'access', 'priority', 'direction',
                   'sourceApplicationSecurityGroups', 'destinationApplicationSecurityGroups')


def plan_conflicts(azure, target, policy, mode, jit_modes):
    """The rules of the VM's NSG that `enable` in `mode` removes or warns about (`nsg.conflicts.Conflicts`).
    Rules any of `jit_modes` wrote are never conflicts; the deny priority is where `mode` puts its deny rule."""
    rules = rules_of(nsg_client.read_nsg(azure, target.nsg_id))
    conflicts = classify_conflicts(rules, [(p.number, p.protocol) for p in policy.ports], target.private_ip,
                                   mode.deny_priority(target, rules), target.asg_ids,
                                   is_jit_rule=lambda rule: _jit_rule(rule, jit_modes),
                                   nsg_id=target.nsg_id)
    for warning in conflicts.warnings:
        logger.warning('%s: %s', target.name, warning)
    return conflicts


def _jit_rule(rule, jit_modes):
    """A rule a JIT mode wrote, which is never a conflict. A JIT mode never writes an allow rule from any source, so one
    named like a JIT rule is someone else's (anyone with rule write permission can name a rule so) and is judged
    like any other rule."""
    return any(m.owns_rule(rule) for m in jit_modes) and not (is_allow(rule) and rule_allows_any_source(rule))


def confirm_removals(plans, yes):
    """Ask once, for every VM, before removing rules that let any source in (`--yes` answers for scripts)."""
    rules = [r for plan in plans for r in plan.remove]
    if not rules or yes:
        return
    from knack.prompting import NoTTYException, prompt_y_n
    names = ', '.join(f"'{r['name']}'" for r in rules)
    question = ('These rules let any source reach a protected port and will be removed (disable restores them): '
                f'{names}. Continue?')
    try:
        if not prompt_y_n(question, default='n'):
            raise UsageError('Nothing was changed.', 'Run again and answer y, or pass --yes.')
    except NoTTYException:
        raise UsageError(f'Enabling JIT would remove rules that let any source reach a protected port ({names}), '
                         'and there is no terminal to ask on.',
                         'Pass --yes to remove them (az vm jit disable restores them), or --dry-run to see '
                         'every change first.') from None


def _saved(rule, nsg_id):
    props = rule.get('properties') or {}
    return {'nsg': nsg_id, 'name': rule['name'],
            'properties': {k: props[k] for k in RESTORED_FIELDS if props.get(k) not in (None, [], '')}}


def saved_entries(tags):
    """The entries of the VM's restore record as stored (a record that is not a list reads as none)."""
    saved = vm_records.read(tags, vm_records.RESTORE)
    return saved if isinstance(saved, list) else []


def remove_conflicts(azure, target, plan, dry_run):
    """Record the rules first (so a failure half-way still lets `disable` restore them), then delete them. Written
    here, once the mode's policy is in place, never earlier: a record says the rules were removed, and `disable` would
    write back one that a failed `enable` never removed even after someone deleted it by hand."""
    if not plan.remove:
        return []
    changes = [rule_change('delete', plan.nsg_id, r, target.name) for r in plan.remove]
    for change in changes:
        change.details['reason'] = plan.remove_reasons.get(change.details['name'])
    if dry_run:
        return changes
    saved = saved_entries(target.tags)
    known = {_entry_key(s) for s in saved}
    saved += [_saved(r, plan.nsg_id) for r in plan.remove if (plan.nsg_id.lower(), r['name'].lower()) not in known]
    vm_records.write(azure, target.id, target.tags, vm_records.RESTORE, saved)
    for rule in plan.remove:
        nsg_client.delete_rule(azure, plan.nsg_id, rule['name'])
    return changes


def has_removed_rules(target):
    """Whether the VM keeps a record of removed rules, readable or not (`disable` deals with either)."""
    return vm_records.present(target.tags, vm_records.RESTORE)


# -- what `disable` may write back ------------------------------------------------------------------------------
# The restore record is read back from the VM's tags, which people outside JIT can write (Tag Contributor, Virtual
# Machine Contributor). So an entry is a claim, and `disable` writes it only when it is something `enable` itself
# would have removed from this VM: a rule definition of the fields `enable` records, for the VM's own NSG, an
# inbound Allow rule that lets any source reach a port the VM's policy protects at the VM's address, and no rule of
# that name in the NSG now. Anything else is named in a warning with its definition and dropped from the record.

MAX_RESTORE_ENTRIES = 20   # more than the record's tag budget (12 x 250 characters) holds of real rules
MAX_LIST_ITEMS = 100       # items of one plural field (ports, prefixes) an entry may carry
_RULE_NAME = re.compile(r'[A-Za-z0-9](?:[A-Za-z0-9._-]{0,78}[A-Za-z0-9_])?\Z', re.A)     # Azure's rule names
_PORT_RANGE = re.compile(r'(?:\*|[0-9]{1,5}(?:-[0-9]{1,5})?)\Z', re.A)
_PREFIX = re.compile(r'[A-Za-z0-9.:/*_-]{1,100}\Z', re.A)     # an address, a range or a service tag
_ASG_ID = re.compile(r'/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/'
                     r'applicationSecurityGroups/[^/]+\Z', re.I | re.A)
_NSG_PROTOCOLS = ('tcp', 'udp', 'icmp', 'esp', 'ah', '*')


def _text(pattern, what):
    return lambda v: None if isinstance(v, str) and pattern.match(v) else f'is not {what}'


def _texts(pattern, what):
    def check(value):
        if not isinstance(value, list) or not 0 < len(value) <= MAX_LIST_ITEMS:
            return f'is not a list of 1 to {MAX_LIST_ITEMS} items'
        return next((f'holds an item that is not {what}' for v in value
                     if not (isinstance(v, str) and pattern.match(v))), None)
    return check


def _asgs(value):
    if not isinstance(value, list) or not 0 < len(value) <= 10:
        return 'is not a list of 1 to 10 application security groups'
    if any(not isinstance(a, dict) or set(a) != {'id'} or not isinstance(a['id'], str) or not _ASG_ID.match(a['id'])
           for a in value):
        return 'holds an item that is not an application security group id'
    return None


def _priority(value):
    if isinstance(value, int) and not isinstance(value, bool) and MIN_PRIORITY <= value <= MAX_PRIORITY:
        return None
    return f'is not a whole number from {MIN_PRIORITY} to {MAX_PRIORITY}'


_FIELD_CHECKS = {
    'description': lambda v: None if isinstance(v, str) and len(v) <= MAX_DESCRIPTION_LENGTH
    else f'is not a text of at most {MAX_DESCRIPTION_LENGTH} characters',
    'protocol': lambda v: None if isinstance(v, str) and v.lower() in _NSG_PROTOCOLS
    else 'is not one of Tcp, Udp, Icmp, Esp, Ah, *',
    'sourcePortRange': _text(_PORT_RANGE, 'a port or port range'),
    'destinationPortRange': _text(_PORT_RANGE, 'a port or port range'),
    'sourcePortRanges': _texts(_PORT_RANGE, 'a port or port range'),
    'destinationPortRanges': _texts(_PORT_RANGE, 'a port or port range'),
    'sourceAddressPrefix': _text(_PREFIX, 'an address prefix'),
    'destinationAddressPrefix': _text(_PREFIX, 'an address prefix'),
    'sourceAddressPrefixes': _texts(_PREFIX, 'an address prefix'),
    'destinationAddressPrefixes': _texts(_PREFIX, 'an address prefix'),
    'access': lambda v: None if isinstance(v, str) and v.lower() == 'allow' else 'is not Allow',
    'direction': lambda v: None if isinstance(v, str) and v.lower() == 'inbound' else 'is not Inbound',
    'priority': _priority,
    'sourceApplicationSecurityGroups': _asgs,
    'destinationApplicationSecurityGroups': _asgs,
}
assert set(_FIELD_CHECKS) == set(RESTORED_FIELDS)


def entry_problem(item):
    """Why a restore record entry is not a rule definition `enable` could have recorded (its shape, the fields
    `enable` keeps, their types and lengths), or None."""
    if not isinstance(item, dict):
        return 'it is not a rule definition'
    return (_unknown_fields(item, ('nsg', 'name', 'properties'))
            or (None if isinstance(item.get('name'), str) and _RULE_NAME.match(item['name'])
                else 'its name is not a valid rule name')
            or (None if isinstance(item.get('nsg'), str) and 0 < len(item['nsg']) <= 1000
                else 'it names no network security group')
            or _properties_problem(item.get('properties')))


def _unknown_fields(mapping, known):
    extra = sorted(str(k) for k in set(mapping) - set(known))
    return f"it carries fields enable never records ({', '.join(extra)})" if extra else None


def _properties_problem(props):
    if not isinstance(props, dict):
        return "its properties are not a rule's"
    missing = [k for k in ('access', 'direction', 'priority', 'protocol') if k not in props]
    return (_unknown_fields(props, RESTORED_FIELDS)
            or (f'it has no {missing[0]}' if missing else None)
            or next((f'its {key} {problem}' for key, value in props.items()
                     for problem in [_FIELD_CHECKS[key](value)] if problem), None))


def reach_problem(rule, ports, target):
    """Why `rule` is not one `enable` removes for `target` given its protected `ports` [(number, protocol)], or
    None: it must let any source reach one of those ports at the VM's private IP (or its application security
    groups), as `nsg.conflicts.classify_conflicts` decides for `enable`."""
    found = classify_conflicts([rule], ports, target.private_ip, MAX_PRIORITY, target.asg_ids)
    if found.remove:
        return None
    protected = format_pairs(port_pairs(ports)) or 'none'
    return (f"it is not a rule enable removes for this VM: it does not let any source reach a port JIT protects "
            f"there ({protected}) at the VM's address {target.private_ip}")


def _entry_key(item):
    if not isinstance(item, dict):
        return None
    return (str(item.get('nsg') or '').lower(), str(item.get('name') or '').lower())


def _definition(item):
    try:
        return json.dumps(item, sort_keys=True)[:2000]
    except (TypeError, ValueError):
        return repr(item)[:2000]


def _label(item):
    name = item.get('name') if isinstance(item, dict) else None
    return f"'{name}'" if isinstance(name, str) else 'an entry'


def _nsg_name(nsg_id):
    return str(nsg_id or '').rstrip('/').rsplit('/', 1)[-1] or 'none'


@dataclass
class RestorePlan:
    """What `disable` writes back for a VM, decided before anything is written (the confirmation lists it).

    `restore`: (NSG id, rule) to write; `handover`: other VM id -> (its VmTarget, entries that move to its record);
    `keep`: entries that stay in this VM's record; `saved`: the record as read (rewritten only when `keep` differs)."""
    restore: list = field(default_factory=list)
    handover: dict = field(default_factory=dict)
    keep: list = field(default_factory=list)
    saved: object = None
    unproven: list = field(default_factory=list)


def protected_ports(target, held, jit_modes):
    """The ports [(number, protocol)] JIT protects on the VM, as read before `disable` changes anything: the
    policies of the modes that hold it; when none can be read, the ports its own JIT deny rules still close (they
    are what `enable` wrote). None when neither says: no restore can be checked."""
    ports, unknown = [], not held
    for mode in held:
        try:
            policy = mode.policy_of(target)
        except NotPossible:
            policy = None
        if policy is None:
            unknown = True
            continue
        ports += [(p.number, p.protocol) for p in policy.ports]
    if not unknown:
        return port_pairs(ports)
    if not target.nsg_id or not target.private_ip:
        return port_pairs(ports) or None
    for mode in jit_modes:
        for rule in mode.protecting_rules(target) + mode.leftover_rules(target):
            if is_allow(rule) or not any(is_only_address(p, target.private_ip) for p in destination_prefixes(rule)):
                continue
            try:
                protocol = normalize_protocol(rule_properties(rule).get('protocol') or '*')
            except BadInput:
                continue
            ports += [(low, protocol) for low, high in port_ranges(rule) if low == high]
    return port_pairs(ports) or None


def plan_restore(azure, target, held, jit_modes):
    """Check every entry of the VM's restore record (reads only) and decide what `disable` writes back.

    `held`: the modes that hold the VM (their policies say which ports it protects). Each entry that fails a check
    is named in a warning with the reason and its definition, and dropped from the record; entries that cannot be
    checked because the VM's policy cannot be read are held back (kept, with a warning); a rule that would defeat
    another VM's JIT deny rule moves to that VM's record (see `_hand_over`).
    """
    plan = RestorePlan()
    if not has_removed_rules(target):
        return plan
    saved = plan.saved = vm_records.read(target.tags, vm_records.RESTORE)
    if not isinstance(saved, list):
        logger.warning("The record of rules enable removed, in the tags of %s, cannot be read: nothing is restored "
                       "from it and it is removed. What it held: %s", target.describe(),
                       (vm_records.raw(target.tags, vm_records.RESTORE) or '')[:2000])
        return plan
    ports = protected_ports(target, held, jit_modes)
    nsg = nsg_client.read_nsg(azure, target.nsg_id)
    current = {r['name'].lower(): r for r in rules_of(nsg)}
    seen, found = set(), {}
    for index, item in enumerate(saved):
        problem = (f'the record holds {len(saved)} rules, more than the {MAX_RESTORE_ENTRIES} enable can record'
                   if index >= MAX_RESTORE_ENTRIES else entry_problem(item))
        if problem is None and _entry_key(item) in seen:
            problem = 'the record lists it twice'
        if problem is None and not target.nsg_id:
            _hold_back(target, item, 'the VM has no network security group now')
            plan.keep.append(item)
            continue
        if problem is None and item['nsg'].lower() != target.nsg_id.lower():
            problem = (f"the record names NSG '{_nsg_name(item['nsg'])}' ({item['nsg']}), not this VM's NSG "
                       f"'{_nsg_name(target.nsg_id)}' ({target.nsg_id})")
        rule = {'name': item['name'], 'properties': dict(item['properties'])} if problem is None else None
        if problem is None and item['name'].lower() in current:
            if rules_equivalent(current[item['name'].lower()], rule):
                logger.info("Rule '%s' is in NSG '%s' already.", item['name'], _nsg_name(target.nsg_id))
                continue
            problem = f"a rule named '{item['name']}' exists in NSG '{_nsg_name(target.nsg_id)}' now"
        if problem is None and ports is None:
            _hold_back(target, item, "the VM's JIT policy cannot be read, so JIT cannot check that enable removed it "
                                     "from this VM")
            plan.keep.append(item)
            seen.add(_entry_key(item))
            continue
        if problem is None and any(m.owns_rule(rule) for m in jit_modes):
            problem = "its name is one JIT gives its own rules, and enable never removes JIT's own rules"
        reach = None if problem else reach_problem(rule, ports, target)
        if reach:   # kept, not dropped: the policy's ports may have changed since enable removed it
            _hold_back(target, item, reach)
            plan.keep.append(item)
            seen.add(_entry_key(item))
            continue
        if problem is None and beyond_vm(rule, ports, target):
            plan.unproven.append((item, beyond_vm(rule, ports, target)))
            seen.add(_entry_key(item))
            continue
        if problem:
            logger.warning("Rule %s in the record of rules enable removed from %s is not restored: %s. It is dropped "
                           "from the record. Its definition: %s", _label(item), target.describe(), problem,
                           _definition(item))
            continue
        seen.add(_entry_key(item))
        _place(azure, nsg, target, item, rule, plan, found, jit_modes)
    _prove_removals(azure, nsg, target, plan, found, jit_modes)
    return plan


def _place(azure, nsg, target, item, rule, plan, found, jit_modes):
    """A checked entry: written back, or handed over to the VM whose JIT it would defeat."""
    guarded = still_protected_by(nsg, rule, target, jit_modes)
    if guarded:
        _hand_over(azure, nsg, target, item, guarded, plan, found)
    else:
        plan.restore.append((target.nsg_id, rule))


def beyond_vm(rule, ports, target):
    """What `rule` opens beyond the VM's protected ports at its own address, as a short text, or None.

    A record entry that opens only protected ports of the VM's own address can do no more than the VM's ports
    did before JIT; one that opens more (other ports, other addresses) is restored only with evidence that the
    rule really was removed from this NSG (`_prove_removals`): anyone who can write the VM's tags can write a
    record."""
    numbers = {n for n, _ in port_pairs(ports)}
    extra = []
    if any(low != high or low not in numbers for low, high in port_ranges(rule)):
        extra.append('other ports')
    props = rule_properties(rule)
    if [p for p in destination_prefixes(rule) if not is_only_address(p, target.private_ip)] or \
            props.get('destinationApplicationSecurityGroups'):
        extra.append('other addresses')
    return ' and '.join(extra) or None


def _prove_removals(azure, nsg, target, plan, found, jit_modes):
    """Restore the wide entries that Azure's Activity Log shows were deleted from this NSG (within its 90 days);
    hold back the rest with their definitions."""
    if not plan.unproven:
        return
    deleted = deleted_rules(azure, target.nsg_id)
    for item, extra in plan.unproven:
        if item['name'].lower() in deleted:
            rule = {'name': item['name'], 'properties': dict(item['properties'])}
            _place(azure, nsg, target, item, rule, plan, found, jit_modes)
            continue
        _hold_back(target, item, f"it opens {extra} than the VM's protected ports at its address, and the Activity "
                                 "Log shows no deletion of it from this NSG in the last 90 days, so JIT cannot tell it "
                                 "from a record written by someone else")
        plan.keep.append(item)
    plan.unproven = []


def deleted_rules(azure, nsg_id):
    """Lower-case names of the rules the Activity Log shows deleted from `nsg_id` in its 90 days (one query, scoped
    by the NSG's resource group, the one filter Azure accepts with the time range); empty when unreadable."""
    import datetime as dt
    from azure.core.exceptions import HttpResponseError
    group = parse_resource_id(nsg_id)['resource_group']
    since = azure.now() - dt.timedelta(days=89, hours=23)
    prefix = f"{nsg_id.lower().rstrip('/')}/securityrules/"
    try:
        events = activity_log.events(azure, since, 'resourceGroupName', group, 'operationName,resourceId,status')
    except HttpResponseError as ex:
        logger.warning('The Activity Log could not be read (%s): wide rules in the restore record stay held back.',
                       getattr(ex, 'reason', None) or ex.__class__.__name__)
        return set()
    return {(e.get('resourceId') or '').lower()[len(prefix):] for e in events
            if (e.get('resourceId') or '').lower().startswith(prefix)
            and (e.get('operationName') or {}).get('value', '').lower() ==
            'microsoft.network/networksecuritygroups/securityrules/delete'
            and (e.get('status') or {}).get('value') == 'Succeeded'}


def _hold_back(target, item, why):
    logger.warning("Rule %s stays removed and stays in the record of %s: %s. Enable JIT on the VM again with its "
                   "ports and disable it to restore the rule, or create it by hand. Its definition: %s",
                   _label(item), target.describe(), why, _definition(item))


def _hand_over(azure, nsg, target, item, guarded, plan, found):
    """A rule shared with another VM that JIT still protects stays removed; its record moves to that VM (the one whose
    deny rule it would defeat: the deny rule's address -> its NIC in this NSG -> the NIC's VM), so that disabling
    JIT there restores it. When no such VM can be found, the record stays with this VM."""
    reach = ', '.join(f'{ip} ({deny})' for ip, deny in guarded)
    for ip, _ in guarded:
        other = _vm_at(azure, nsg, ip, target, found)
        if other is not None:
            plan.handover.setdefault(other.id.lower(), (other, []))[1].append(item)
            logger.warning("Rule '%s' stays removed: it would let any source reach %s, which JIT still protects on "
                           "%s. Its record moves from VM '%s' to VM '%s', so disabling JIT on '%s' restores it. "
                           "Its definition: %s", item['name'], reach, other.describe(), target.name, other.name,
                           other.name, _definition(item['properties']))
            return
    plan.keep.append(item)
    logger.warning("Rule '%s' stays removed: it would let any source reach %s, which JIT still protects, but the VM "
                   "behind that address could not be found, so its record stays with %s (disabling JIT there again "
                   "restores it once nothing it would defeat is protected). Its definition: %s", item['name'], reach,
                   target.describe(), _definition(item['properties']))


def _vm_at(azure, nsg, ip, leaving, found):
    """The VM (a VmTarget without network) whose NIC in `nsg`'s reach has private IP `ip`, other than `leaving`;
    None when none can be found. NICs the NSG is attached to are read first, then those of its subnets; `found`
    caches the reads of one command."""
    from azure.core.exceptions import HttpResponseError
    from azext_jit.targets import target_without_network
    key = ip.split('/')[0].lower()
    if key in found:
        return found[key]
    found[key] = None
    props = (nsg or {}).get('properties') or {}
    try:
        nic_ids = [n['id'] for n in props.get('networkInterfaces') or [] if n.get('id')]
        vm_id = _vm_of_nics(azure, nic_ids, ip, leaving, found)
        for subnet in props.get('subnets') or []:
            if vm_id or not subnet.get('id'):
                break
            sp = parse_resource_id(subnet['id'])
            wired = azure.network.subnets.get(sp['resource_group'], sp['name'], sp['child_name_1'])
            configs = (wired.get('properties') or {}).get('ipConfigurations') or []
            vm_id = _vm_of_nics(azure, [c['id'].split('/ipConfigurations/')[0] for c in configs
                                        if '/networkinterfaces/' in str(c.get('id')).lower()], ip, leaving, found)
        if vm_id and vm_id.lower() != leaving.id.lower():
            vp = parse_resource_id(vm_id)
            found[key] = target_without_network(azure.compute.virtual_machines.get(vp['resource_group'], vp['name']))
    except HttpResponseError as ex:
        logger.info('Could not find the VM at %s: %s', ip, ex)
    return found[key]


def _vm_of_nics(azure, nic_ids, ip, leaving, found):
    seen = found.setdefault('nics', {})
    for nic_id in dict.fromkeys(nic_ids):
        if nic_id.lower() == str(leaving.nic_id or '').lower():
            continue
        if nic_id.lower() not in seen:
            np = parse_resource_id(nic_id)
            seen[nic_id.lower()] = azure.network.network_interfaces.get(np['resource_group'], np['name'])
        nic = (seen[nic_id.lower()].get('properties') or {})
        if any(is_only_address(ip, (c.get('properties') or {}).get('privateIPAddress'))
               for c in nic.get('ipConfigurations') or []):
            return (nic.get('virtualMachine') or {}).get('id')
    return None


def describe_restore(plan):
    """One line per rule `disable` will write back: name, NSG, priority, source, ports."""
    lines = []
    for nsg_id, rule in plan.restore:
        summary_ = rule_summary(rule)
        lines.append(f"'{summary_['name']}' into NSG '{_nsg_name(nsg_id)}': priority {summary_['priority']}, "
                     f"{summary_['access']} {summary_['protocol']} from {summary_['source'] or 'an ASG'} to "
                     f"{summary_['destination'] or 'an ASG'} port {summary_['ports']}")
    return lines


_PROMPT_LOCK = threading.Lock()


def confirm_disable(target, plan, ask, still):
    """Ask before `disable` writes anything, listing each rule it will write back (`ask` False: `--yes` or a dry
    run answered; the rules are then named in a warning, so they are seen all the same)."""
    lines = describe_restore(plan) if plan else []
    if not ask:
        for line in lines:
            logger.warning('%s: restoring rule %s.', target.describe(), line)
        return
    if still:
        comes_back = ' The rules enable removed stay removed: another mode still protects the VM.'
    elif lines:
        comes_back = ' These rules enable removed come back:\n' + '\n'.join(f'  {line}' for line in lines) + '\n'
    else:
        comes_back = ' No rule comes back.'
    from knack.prompting import NoTTYException, prompt_y_n
    try:
        with _PROMPT_LOCK:   # `--ids` runs one handler per VM in parallel: one question at a time
            agreed = prompt_y_n(f"Take {target.describe()} out of JIT? Its protecting rules go.{comes_back}")
    except NoTTYException:
        raise UsageError(f'Disabling JIT on {target.describe()} needs a confirmation, and there is no terminal to '
                         'ask on.', 'Pass --yes, or --dry-run to see every change first.') from None
    if not agreed:
        raise UsageError('Nothing was changed.', 'Run again and answer y, or pass --yes.')


def restore_removed(azure, target, plan, dry_run):
    """Carry out a RestorePlan: hand records over, write the rules back (a priority taken since then moves to the
    nearest free one), then store what stays in the VM's record. Returns the Changes."""
    changes = []
    for other, items in plan.handover.values():
        held = {_entry_key(s) for s in saved_entries(other.tags)}
        names = [i['name'] for i in items if _entry_key(i) not in held]
        if names:
            changes.append(Change('update', 'tags', other.id, other.name,
                                  {'record': vm_records.RESTORE, 'rules': names, 'from': target.name}, other.id))
        if names and not dry_run and not _merge_into(azure, other, items):
            plan.keep += items
    for nsg_id, rule in plan.restore:
        changes.append(rule_change('restore', nsg_id, rule, target.name))
        if not dry_run:
            nsg_client.add_rules(azure, nsg_id, _restorer(rule))
    if has_removed_rules(target) and plan.keep != plan.saved and not dry_run:
        vm_records.write(azure, target.id, target.tags, vm_records.RESTORE, plan.keep or None)
    return changes


def _merge_into(azure, other, items):
    """Add entries to another VM's restore record (those it holds already are not added twice)."""
    saved = saved_entries(other.tags)
    known = {_entry_key(s) for s in saved}
    merged = saved + [i for i in items if _entry_key(i) not in known]
    from azure.core.exceptions import HttpResponseError
    try:
        vm_records.write(azure, other.id, other.tags, vm_records.RESTORE, merged)
    except (NotPossible, HttpResponseError) as ex:
        logger.warning("The record of %s could not move to %s (%s): it stays with this VM.",
                       ', '.join(f"'{i['name']}'" for i in items), other.describe(), getattr(ex, 'message', ex))
        return False
    return True


def _restorer(rule):
    """The `build` of `add_rules` that puts `rule` back, on the nearest free priority if its own is taken."""
    def build(nsg, _attempt):
        current = {r['name'].lower(): r for r in rules_of(nsg)}
        if rule['name'].lower() in current:
            return []
        used = used_priorities(rules_of(nsg), rule['properties'].get('direction', 'Inbound'))
        if rule['properties'].get('priority') in used:
            rule['properties']['priority'] = choose_deny_priority(used, rule['properties']['priority'])
        return [rule]
    return build


def still_protected_by(nsg, rule, leaving, jit_modes):
    """The other VMs' JIT deny rules in `nsg` (of any mode) that `rule` would defeat: [(address, deny rule name)]."""
    found = []
    for deny in rules_of(nsg):
        if not any(m.guards_other_vm(deny, leaving) for m in jit_modes):
            continue
        props = deny.get('properties') or {}
        ports = [(low, normalize_protocol(props.get('protocol') or '*')) for low, high in port_ranges(deny)
                 if low == high]
        for ip in destination_prefixes(deny):
            if classify_conflicts([rule], ports, ip, props.get('priority') or 4096).remove:
                found.append((ip, deny['name']))
    return found


def summary(target, mode, policy, changes, plan, dry_run):
    return {'vm': target.name, 'resourceGroup': target.resource_group, 'mode': mode.name, 'dryRun': dry_run,
            'policy': policy.to_dict(), 'changes': [c.to_dict() for c in changes],
            'warnings': plan.warnings}
