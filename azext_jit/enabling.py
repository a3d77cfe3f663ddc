# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""`enable`'s steps once the policy and the VMs are known: each VM's mode, the rules it removes and the doors it
cannot close (`plan_enable`, reads only), then the writes (`enable_chosen`). `az vm jit enable` and `az vm jit
exposure --protect` both run them."""
from azext_jit.log import get_logger
from azext_jit.modes import AUTO

logger = get_logger(__name__)


def plan_enable(azure, modes, targets, policy, mode, one_vm):
    """([(target, mode)], {vm id: conflicts plan}) for `enable`: each VM's mode, the rules it removes, and only the
    VMs it can protect (one VM: refused with the reason; several: skipped and named). Reads only."""
    from azext_jit import protection
    from azext_jit.nsg import client as nsg_client
    for target in targets:   # NSGs and which modes serve new VMs first: a mode's own reads (Defender's policies)
        nsg_client.read_ahead(azure, target.nsg_id)   # come last, next to its write
        if mode == AUTO:
            modes.not_serving(target)
    chosen = [(target, modes.for_enable(target, mode)) for target in targets]
    if mode != AUTO and not one_vm:   # a group in a mode asked for by name: skip what it cannot take, name it
        chosen = [(target, jit_mode) for target, jit_mode in chosen if _can_hold(jit_mode, target)]
    plans = {target.id: protection.plan_conflicts(azure, target, policy, jit_mode, modes.each())
             for target, jit_mode in chosen}
    return _with_closed_doors(azure, chosen, policy, plans, one_vm), plans


def enable_chosen(azure, chosen, policy, plans, dry_run):
    """Each mode writes its VMs' policy (one write per mode, not one per VM), then each VM's conflicting rules go."""
    from azext_jit import protection
    from azext_jit.pim import record
    changes = []
    for jit_mode in {id(m): m for _, m in chosen}.values():
        changes += jit_mode.enable([t for t, m in chosen if m is jit_mode], policy, dry_run)
    results = []
    for target, jit_mode in chosen:
        mine = [c for c in changes if c.concerns(target)]
        mine += protection.remove_conflicts(azure, target, plans[target.id], dry_run)
        results.append(protection.summary(target, jit_mode, policy, mine, plans[target.id], dry_run))
        results[-1]['policy']['requireApproval'] = record.required(target)   # approval set up earlier stays
    return results


def protectable(targets, check=None):
    from azext_jit.errors import NotPossible
    from azext_jit.targets import require_protectable
    kept = []
    for target in targets:
        try:
            (check or require_protectable)(target)
            kept.append(target)
        except NotPossible as err:
            logger.warning('Skipped: %s', err.message)
    return kept


def _with_closed_doors(azure, chosen, policy, plans, one_vm):
    """Refuse a VM that another public door (NIC or IP configuration) leaves open to any source on a protected port,
    once enable's removals are done; name its other public doors in a warning. In a group, skip and name it."""
    from azext_jit.targets import require_closed_doors

    def check(target):
        require_closed_doors(azure, target, policy, plans[target.id].remove, plans[target.id].nsg_id)
    if one_vm:
        for target, _ in chosen:
            check(target)
        return chosen
    kept = {t.id for t in protectable([t for t, _ in chosen], check)}
    return [(t, m) for t, m in chosen if t.id in kept]


def _can_hold(jit_mode, target):
    reason = jit_mode.cannot_hold(target)
    if reason:
        logger.warning('Skipped %s: %s.', target.describe(), reason)
    return reason is None
