# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""`az vm jit exposure --protect`: `enable` on the exposed VMs that have no JIT, across subscriptions.

Resource Graph's answer is a few seconds to minutes old, so nothing is written from it: each VM is read fresh from
ARM (VM, NIC, and its subnet when the NIC has no NSG), and a VM that JIT holds by now (someone enabled it since) is
left as it is. Then `enable` plans every VM as it would for a resource group (its mode, the rules it removes, the
doors it cannot close: such a VM is skipped and named), asks once for every removal (as `enable` does, `--yes` for
scripts; a dry run asks nothing), and writes VM by VM. A VM that fails does not stop the others: it is named in
`skipped` with why.
"""
from azext_jit.log import get_logger

logger = get_logger(__name__)


def _vm_parts(vm_id):
    from azure.mgmt.core.tools import parse_resource_id
    parts = parse_resource_id(vm_id)
    return parts['subscription'], parts['resource_group'], parts['name']


def protect_exposed(azure, rows, policy, mode, dry_run, yes, progress=None):  # pylint: disable=too-many-arguments
    """Enable JIT on the VMs of exposure `rows` (status open) that have none; returns {'protected': [enable results],
    'skipped': [{'id', 'vm', 'resourceGroup', 'reason'}], 'dryRun'}. Each VM is planned, and written, on its own:
    one that fails is named in `skipped` and the others go on."""
    from azext_jit import protection
    from azext_jit.enabling import enable_chosen
    rows = [r for r in rows if r.get('status', 'open') == 'open']   # unknown doors: named, not acted on
    skipped = []
    for vm_id in dict.fromkeys(r['id'] for r in rows if r['jit']['enabled']):
        _, group, name = _vm_parts(vm_id)
        skipped.append({'id': vm_id, 'vm': name, 'resourceGroup': group,
                        'reason': 'JIT protects it, but a port is still reachable through another rule or door: see '
                                  f'`az vm jit show -g {group} -n {name}`'})
    planned = _plan(azure, list(dict.fromkeys(r['id'] for r in rows if not r['jit']['enabled'])), policy, mode,
                    skipped, progress)
    protection.confirm_removals([plan for _, _, _, plan in planned], yes or dry_run)
    protected = []
    for index, (sub_azure, target, jit_mode, plan) in enumerate(planned):
        try:
            protected += enable_chosen(sub_azure, [(target, jit_mode)], policy, {target.id: plan}, dry_run)
        except Exception as ex:  # pylint: disable=broad-except  # one VM's failure does not stop the rest
            skipped.append({'id': target.id, 'vm': target.name, 'resourceGroup': target.resource_group,
                            'reason': _reason(ex)})
            logger.warning('Could not enable JIT on %s: %s', target.describe(), skipped[-1]['reason'])
        if progress:
            progress('Enabling JIT', index + 1, len(planned))
    return {'dryRun': dry_run, 'protected': protected, 'skipped': skipped}


def _plan(azure, vm_ids, policy, mode, skipped, progress):
    """[(azure of its subscription, target, mode, conflicts plan)] per VM enable can protect, from fresh ARM reads;
    every other VM goes to `skipped` with why."""
    from azext_jit.enabling import plan_enable
    from azext_jit.modes.chooser import Modes
    from azext_jit.targets import require_protectable, resolve_vm
    planned, modes_of = [], {}
    for done, vm_id in enumerate(vm_ids, start=1):
        sub, group, name = _vm_parts(vm_id)
        sub_azure = azure.for_subscription(sub)
        modes = modes_of.setdefault(sub.lower(), Modes(sub_azure, announce=True))
        try:
            target = resolve_vm(sub_azure, group, name)
            held = modes.of(target)
            if held is not None:
                raise _Skip(f'JIT holds it in {held.title} mode by now (Resource Graph had not caught up), or holds it '
                            f'without closing its ports: see `az vm jit show -g {group} -n {name}`')
            require_protectable(target)
            picked, plans = plan_enable(sub_azure, modes, [target], policy, mode, one_vm=False)
            if not picked:
                raise _Skip('enable cannot protect it (see the warning above)')
            planned += [(sub_azure, t, m, plans[t.id]) for t, m in picked]
        except Exception as ex:  # pylint: disable=broad-except  # a VM that cannot be read or planned is named
            skipped.append({'id': vm_id, 'vm': name, 'resourceGroup': group, 'reason': _reason(ex)})
        if progress:
            progress('Reading VMs to protect', done, len(vm_ids))
    return planned


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
