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
"""
import json

from azext_jit import vm_records
from azext_jit.changes import rule_change
from azext_jit.errors import UsageError
from azext_jit.log import get_logger
from azext_jit.nsg import client as nsg_client
from azext_jit.nsg.conflicts import classify_conflicts
from azext_jit.nsg.priorities import choose_deny_priority, used_priorities
from azext_jit.nsg.rules import destination_prefixes, port_ranges, rules_of

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
                                   is_jit_rule=lambda rule: any(m.owns_rule(rule) for m in jit_modes),
                                   nsg_id=target.nsg_id)
    for warning in conflicts.warnings:
        logger.warning('%s: %s', target.name, warning)
    return conflicts


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


def remove_conflicts(azure, target, plan, dry_run):
    """Record the rules first (so a failure half-way still lets `disable` restore them), then delete them."""
    if not plan.remove:
        return []
    changes = [rule_change('delete', plan.nsg_id, r, target.name) for r in plan.remove]
    for change in changes:
        change.details['reason'] = plan.remove_reasons.get(change.details['name'])
    if dry_run:
        return changes
    saved = vm_records.read(target.tags, vm_records.RESTORE) or []
    known = {(s['nsg'].lower(), s['name'].lower()) for s in saved}
    saved += [_saved(r, plan.nsg_id) for r in plan.remove if (plan.nsg_id.lower(), r['name'].lower()) not in known]
    vm_records.write(azure, target.id, target.tags, vm_records.RESTORE, saved)
    for rule in plan.remove:
        nsg_client.delete_rule(azure, plan.nsg_id, rule['name'])
    return changes


def has_removed_rules(target):
    return bool(vm_records.read(target.tags, vm_records.RESTORE))


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


def restore_removed(azure, target, dry_run, jit_modes):
    """Put back what `enable` removed. A priority taken since then moves to the nearest free one.

    A rule that would now defeat JIT on another VM of the same NSG (an allow-any rule shared by several VMs)
    stays removed: the warning gives its definition so an admin can decide.
    """
    saved = vm_records.read(target.tags, vm_records.RESTORE) or []
    changes = []
    for item in saved:
        rule = {'name': item['name'], 'properties': dict(item['properties'])}
        guarded = still_protected_by(nsg_client.read_nsg(azure, item['nsg']), rule, target, jit_modes)
        if guarded:
            logger.warning("Rule '%s' stays removed: it would let any source reach %s, which JIT still protects. "
                           "Its definition: %s", rule['name'], ', '.join(guarded),
                           json.dumps(rule['properties'], sort_keys=True))
            continue
        changes.append(rule_change('restore', item['nsg'], rule, target.name))
        if dry_run:
            continue
        nsg_client.add_rules(azure, item['nsg'], _restorer(rule))
    if saved and not dry_run:
        vm_records.write(azure, target.id, target.tags, vm_records.RESTORE, None)
    return changes


def still_protected_by(nsg, rule, leaving, jit_modes):
    """The other VMs' JIT deny rules in `nsg` (of any mode) that `rule` would defeat, as short texts."""
    from azext_jit.ports import normalize_protocol
    found = []
    for deny in rules_of(nsg):
        if not any(m.guards_other_vm(deny, leaving) for m in jit_modes):
            continue
        props = deny.get('properties') or {}
        ports = [(low, normalize_protocol(props.get('protocol') or '*')) for low, high in port_ranges(deny)
                 if low == high]
        for ip in destination_prefixes(deny):
            if classify_conflicts([rule], ports, ip, props.get('priority') or 4096).remove:
                found.append(f"{ip} ({deny['name']})")
    return found


def summary(target, mode, policy, changes, plan, dry_run):
    return {'vm': target.name, 'resourceGroup': target.resource_group, 'mode': mode.name, 'dryRun': dry_run,
            'policy': policy.to_dict(), 'changes': [c.to_dict() for c in changes],
            'warnings': plan.warnings}
