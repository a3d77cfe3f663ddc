# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""`az vm jit exposure --protect`: `enable` on the exposed VMs that have no JIT, across subscriptions.

Resource Graph's answer is a few seconds to minutes old, so nothing is written from it: each VM is read fresh from
ARM (VM, NIC, and its subnet when the NIC has no NSG), and a VM that JIT holds by now (someone enabled it since) is
left as it is. Then `enable` plans every VM as it would for a resource group (its mode, the rules it removes, the
doors it cannot close: such a VM is skipped and named), asks once for every removal (as `enable` does, `--yes` for
scripts; a dry run asks nothing), and writes per subscription. A VM that fails does not stop the others: it is
named in `skipped` with why.
"""
from azext_jit.log import get_logger

logger = get_logger(__name__)


def _vm_parts(vm_id):
    from azure.mgmt.core.tools import parse_resource_id
    parts = parse_resource_id(vm_id)
    return parts['subscription'], parts['resource_group'], parts['name']


def protect_exposed(azure, rows, policy, mode, dry_run, yes, progress=None):  # pylint: disable=too-many-arguments
    """Enable JIT on the VMs of exposure `rows` that have none; returns {'protected': [enable results], 'skipped':
    [{'id', 'vm', 'reason'}], 'dryRun'}."""
    from azext_jit import protection
    from azext_jit.custom import enable_chosen
    wanted = list(dict.fromkeys(r['id'] for r in rows if not r['jit']['enabled']))
    for vm_id in dict.fromkeys(r['id'] for r in rows if r['jit']['enabled']):
        _, group, name = _vm_parts(vm_id)
        logger.warning("VM '%s' in resource group '%s' has JIT but its management ports are still reachable: see "
                       "`az vm jit show -g %s -n %s`.", name, group, group, name)
    skipped = []
    batches = _plan(azure, wanted, policy, mode, skipped, progress)
    protection.confirm_removals([plan for _, _, plans in batches for plan in plans.values()], yes or dry_run)
    protected = []
    for index, (sub_azure, chosen, plans) in enumerate(batches):
        try:
            protected += enable_chosen(sub_azure, chosen, policy, plans, dry_run)
        except Exception as ex:  # pylint: disable=broad-except  # one subscription's failure does not stop the rest
            reason = _reason(ex)
            skipped += [{'id': t.id, 'vm': t.name, 'resourceGroup': t.resource_group, 'reason': reason}
                        for t, _ in chosen]
            logger.warning('Could not enable JIT in subscription %s: %s', sub_azure.subscription_id, reason)
        if progress:
            progress('Enabling JIT', index + 1, len(batches))
    return {'dryRun': dry_run, 'protected': protected, 'skipped': skipped}


def _plan(azure, vm_ids, policy, mode, skipped, progress):
    """[(azure of the subscription, chosen, plans)] from fresh ARM reads, one entry per subscription."""
    from azext_jit.custom import plan_enable
    from azext_jit.errors import JitError
    from azext_jit.modes.chooser import Modes
    from azext_jit.targets import require_protectable, resolve_vm
    by_sub = {}
    for vm_id in vm_ids:
        by_sub.setdefault(_vm_parts(vm_id)[0].lower(), []).append(vm_id)
    batches, done = [], 0
    for sub_ids in by_sub.values():
        sub_azure = azure.for_subscription(_vm_parts(sub_ids[0])[0])
        modes = Modes(sub_azure, announce=True)
        chosen, plans = [], {}
        for vm_id in sub_ids:
            _, group, name = _vm_parts(vm_id)
            try:
                target = resolve_vm(sub_azure, group, name)
                if modes.of(target) is not None:
                    raise _Skip('JIT was enabled on it after Resource Graph read it')
                require_protectable(target)
                picked, planned = plan_enable(sub_azure, modes, [target], policy, mode, one_vm=False)
                chosen += picked
                plans.update(planned)
                if not picked:
                    raise _Skip('enable cannot protect it (see the warning above)')
            except (JitError, _Skip) as ex:
                skipped.append({'id': vm_id, 'vm': name, 'resourceGroup': group, 'reason': _reason(ex)})
            done += 1
            if progress:
                progress('Reading VMs to protect', done, len(vm_ids))
        if chosen:
            batches.append((sub_azure, chosen, plans))
    return batches


class _Skip(Exception):
    """A VM --protect leaves alone, and why."""


def _reason(ex):
    from azext_jit.errors import JitError, explain_http_error
    if isinstance(ex, (JitError, _Skip)):
        return getattr(ex, 'message', None) or str(ex)
    try:
        return explain_http_error(ex).message
    except Exception:  # pylint: disable=broad-except
        return ' '.join(str(ex).split()) or type(ex).__name__
