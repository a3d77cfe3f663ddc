"""Command handlers: each reads like the steps a user would name; the work is in the modules they call."""
from knack.log import get_logger

logger = get_logger(__name__)


def _session(cmd, announce=False):
    """Azure clients and the mode finder; `announce` warns when Defender is unavailable (commands that choose a
    mode for a VM), otherwise that only goes to --verbose."""
    from azext_jit.arm import Azure
    from azext_jit.modes import Modes
    azure = Azure.from_cli(cmd)
    return azure, Modes(azure, announce)


def _target(azure, resource_group_name, vm_name, need_nsg=True):
    from azext_jit.targets import resolve_vm
    from azure.cli.core.azclierror import RequiredArgumentMissingError
    if not resource_group_name or not vm_name:
        raise RequiredArgumentMissingError('Name the VM with -g/--resource-group and -n/--name, or with --ids.')
    return resolve_vm(azure, resource_group_name, vm_name, need_nsg)


def _enabled_backend(modes, target, mode):
    from azext_jit.errors import not_enabled
    backend = modes.of(target, mode)
    if backend is None:
        raise not_enabled(target)
    return backend


# -- show / list --------------------------------------------------------------------------------------
def show_jit(cmd, resource_group_name, vm_name, mode='auto'):
    from azext_jit import views
    azure, modes = _session(cmd)
    target = _target(azure, resource_group_name, vm_name)
    backends = modes.all_of(target) if mode == 'auto' else [b for b in [modes.of(target, mode)] if b]
    if not backends:
        logger.warning("JIT is not enabled on %s. Enable it with: az vm jit enable -g %s -n %s",
                       target.describe(), target.resource_group, target.name)
    return views.vm_view(azure, target, backends)


def list_jit(cmd, resource_group_name=None, status='all', mode='auto'):
    """One VM list (for the NSG-mode policies in VM tags) and one Defender policy list per page; NICs and NSGs
    are read only for NSG-mode VMs, whose requests live in their NSG."""
    from azext_jit import views, vm_records
    from azext_jit.targets import list_vms, target_from_vm, target_without_network
    azure, modes = _session(cmd)
    vms = list_vms(azure, resource_group_name)
    if mode in ('auto', 'defender'):
        modes.list_defender_policies(resource_group_name, required=mode == 'defender')
    out = []
    for vm in vms:
        target = target_without_network(vm)
        backends = modes.all_of(target) if mode == 'auto' else [b for b in [modes.of(target, mode)] if b]
        if not backends:
            continue
        if vm_records.POLICY in target.tags:
            target = target_from_vm(azure, vm)
        out.append(views.vm_view(azure, target, backends, status=status, rules=False))
    return out


# -- enable / disable ---------------------------------------------------------------------------------
def enable_jit(cmd, resource_group_name=None, vm_name=None, ports=None, max_duration=None, allowed_sources=None,
               all_vms=False, mode='auto', dry_run=False, yes=False):
    from azext_jit import protection
    from azext_jit.policy import build_policy
    from azext_jit.targets import list_vms, require_protectable, target_from_vm
    from azure.cli.core.azclierror import RequiredArgumentMissingError
    azure, modes = _session(cmd, announce=True)
    if all_vms:  # --all means every VM: configured defaults (az configure --defaults vm=/group=) do not narrow it
        vm_name = None
        if getattr(resource_group_name, 'is_default', False):
            resource_group_name = None
    policy = build_policy(ports or _default_ports(), max_duration or _default_max_duration(),
                          allowed_sources or ['*'])
    if vm_name:
        targets = [_target(azure, resource_group_name, vm_name)]
    elif resource_group_name or all_vms:
        targets = [target_from_vm(azure, vm) for vm in list_vms(azure, resource_group_name)]
    else:
        raise RequiredArgumentMissingError('Say which VMs to protect: -g/--resource-group with -n/--name (one VM), '
                                           '-g alone (every VM of the group) or --all (the whole subscription).')
    if vm_name:
        require_protectable(targets[0])
    else:  # a group or the subscription: enable what can be protected, name what cannot
        targets = _protectable(targets)
    chosen = [(target, modes.for_enable(target, mode)) for target in targets]
    if mode == 'defender' and not vm_name:   # a group: skip what Defender cannot take, name it
        for target, backend in list(chosen):
            reason = backend.cannot_hold(target)
            if reason:
                logger.warning('Skipped %s: %s.', target.describe(), reason)
                chosen.remove((target, backend))
    plans = {target.id: protection.plan_conflicts(azure, target, policy, backend.mode) for target, backend in chosen}
    protection.confirm_removals(list(plans.values()), yes or dry_run)
    changes = []
    for backend in {id(b): b for _, b in chosen}.values():   # one policy write per mode, not one per VM
        changes += backend.enable([t for t, b in chosen if b is backend], policy, dry_run)
    results = []
    for target, backend in chosen:
        mine = [c for c in changes if c.concerns(target)]
        mine += protection.remove_conflicts(azure, target, plans[target.id], dry_run)
        results.append(protection.summary(target, backend.mode, policy, mine, plans[target.id], dry_run))
    return results[0] if vm_name else results


def _protectable(targets):
    from azure.cli.core.azclierror import ValidationError
    from azext_jit.targets import require_protectable
    kept = []
    for target in targets:
        try:
            require_protectable(target)
            kept.append(target)
        except ValidationError as err:
            logger.warning('Skipped: %s', err.error_msg)
    return kept


def disable_jit(cmd, resource_group_name, vm_name, mode='auto', dry_run=False):
    from azext_jit import access, protection
    azure, modes = _session(cmd)
    target = _target(azure, resource_group_name, vm_name)
    backends = modes.all_of(target) if mode == 'auto' else [b for b in [modes.of(target, mode)] if b]
    if not backends and mode in ('auto', 'nsg') and modes.backend('nsg').leftover_rules(target):
        backends = [modes.backend('nsg')]     # an earlier disable stopped half-way: finish it
    if not backends and (mode != 'auto' or not protection.has_removed_rules(target)):
        logger.warning('JIT is not enabled on %s%s: nothing to disable.', target.describe(),
                       '' if mode == 'auto' else ' in {} mode'.format(mode))
        return {'vm': target.name, 'resourceGroup': target.resource_group, 'changes': [], 'dryRun': dry_run}
    changes = []
    for backend in backends:
        if backend.mode == 'defender':  # Defender keeps its allow rules until they end: close them first
            active = [r for r in backend.requests_of(target) if r.status == 'active']
            if active:
                changes += backend.close_access(target, active, dry_run=dry_run)
        changes += backend.disable(target, dry_run)   # (NSG mode: the policy first, then every rule of the VM)
    still = [b.mode for b in modes.all_of(target) if b not in backends]
    if still:
        # Another mode still protects the VM: the rules enable removed would defeat it, so they stay removed.
        logger.warning('%s is still protected in %s mode; the rules enable removed stay removed until that is '
                       'disabled too.', target.describe(), ' and '.join(still))
    else:
        changes += protection.restore_removed(azure, target, dry_run)
        changes += access.forget_revocations(azure, target, dry_run)
    return {'vm': target.name, 'resourceGroup': target.resource_group,
            'modes': [b.mode for b in backends], 'dryRun': dry_run, 'changes': [c.to_dict() for c in changes]}


# -- request / revoke ---------------------------------------------------------------------------------
def request_access(cmd, resource_group_name, vm_name, ports=None, duration=None, source=None, justification=None,
                   mode='auto', dry_run=False):
    from azext_jit import access, views
    from azext_jit.policy import check_request
    from azext_jit.targets import with_subnet_nsg
    azure, modes = _session(cmd)
    target = _target(azure, resource_group_name, vm_name, need_nsg=False)
    backend = _enabled_backend(modes, target, mode)
    policy = backend.policy_of(target)
    defender = backend.mode == 'defender'
    grants = check_request(policy, ports, duration, source, exact_source_match=defender)
    if not defender:
        with_subnet_nsg(azure, target)
        if source is None:  # Defender finds the caller's IP itself; here we ask the IP-echo service
            source = access.my_public_ip(cmd)
            grants = check_request(policy, ports, duration, source)
    changes = backend.remove_expired(target, dry_run)
    request, opened = backend.open_access(target, policy, list(grants), source, justification, access.whoami(cmd),
                                          dry_run)
    return views.request_view(target, request, changes + opened, dry_run)


def revoke_access(cmd, resource_group_name, vm_name, ports=None, request_id=None, mode='auto', dry_run=False):
    from azext_jit import access
    azure, modes = _session(cmd)
    target = _target(azure, resource_group_name, vm_name)
    backend = _enabled_backend(modes, target, mode)
    numbers = [p.number for p in ports] if ports else None
    return access.revoke(cmd, azure, backend, target, request_id, numbers, dry_run)


# -- cleanup ------------------------------------------------------------------------------------------
def cleanup_jit(cmd, resource_group_name=None, dry_run=False, mode='auto'):
    from azext_jit import access
    azure, modes = _session(cmd)
    if mode == 'defender':  # Defender removes its own rules at their end time
        return {'dryRun': dry_run, 'scope': str(resource_group_name or azure.subscription_id), 'removed': [],
                'count': 0, 'failed': []}
    result = access.cleanup(azure, modes.backend('nsg'), resource_group_name and str(resource_group_name), dry_run)
    if result['failed']:
        from azure.cli.core.azclierror import AzureResponseError
        raise AzureResponseError('Removed {} expired rule(s), but {} could not be removed: {}'.format(
            result['count'], len(result['failed']), result['failed'][0]),
            'Fix the cause and run the command again; it is safe to repeat.')
    return result


def _default_ports():
    from azext_jit.ports import PortSpec
    return [PortSpec(22, 'TCP'), PortSpec(3389, 'TCP')]


def _default_max_duration():
    import datetime
    return datetime.timedelta(hours=3)
