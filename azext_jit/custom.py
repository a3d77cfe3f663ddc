# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Command handlers: each reads like the steps a user would name; the work is in the modules they call.

Handlers never test a mode's name: they ask the mode what it does (`modes/base.py`)."""
import contextlib

from azext_jit.enabling import enable_chosen, plan_enable, protectable
from azext_jit.log import get_logger
from azext_jit.modes import AUTO

logger = get_logger(__name__)


def _session(cmd, announce=False):
    """Azure clients and the modes; `announce` warns when a mode is unavailable (commands that choose a mode for a
    VM), otherwise that only goes to --verbose."""
    from azext_jit.arm import Azure
    from azext_jit.modes.chooser import Modes
    azure = Azure.from_cli(cmd)
    return azure, Modes(azure, announce)


def _target(azure, resource_group_name, vm_name, need_nsg=True):
    from azext_jit.errors import MissingInput
    from azext_jit.targets import resolve_vm
    if not resource_group_name or not vm_name:
        raise MissingInput('Name the VM with -g/--resource-group and -n/--name, or with --ids.')
    return resolve_vm(azure, resource_group_name, vm_name, need_nsg)


def _enabled_mode(modes, target, mode):
    from azext_jit.errors import not_enabled
    held = modes.of(target, mode)
    if held is None:
        raise not_enabled(target)
    return held


# -- show / list --------------------------------------------------------------------------------------
def show_jit(cmd, resource_group_name=None, vm_name=None, mode=AUTO):
    from azext_jit import views
    azure, modes = _session(cmd)
    target = _target(azure, resource_group_name, vm_name)
    held = modes.holding(target, mode)
    if not held:
        logger.warning("JIT is not enabled on %s. Enable it with: az vm jit enable -g %s -n %s",
                       target.describe(), target.resource_group, target.name)
    # rules any mode left behind, whatever --mode says; public doors JIT does not guard
    view = views.vm_view(target, held, modes.each(), azure=azure)
    _show_approval(azure, target, held, view)
    return view


def _show_approval(azure, target, held, view):
    """The `approval` section, read from PIM, for a VM whose note says access goes through approval."""
    from azext_jit.pim import overview, record
    if held and record.required(target):
        view['approval'] = overview.approval_view(azure, target, held[0])
        if view.get('policy'):
            view['policy']['requireApproval'] = True


def list_jit(cmd, resource_group_name=None, status='all', mode=AUTO,  # pylint: disable=too-many-arguments
             subscriptions=None, all_subscriptions=False):
    """One VM list and, per mode, the fewest calls that read every policy of the scope; a VM's network is read only
    when its mode keeps requests there. Across subscriptions: through Resource Graph (`fleet.survey`)."""
    from azext_jit import views
    from azext_jit.targets import list_vms, target_from_vm, target_without_network
    if subscriptions or all_subscriptions:
        return _fleet_list(cmd, resource_group_name, status, mode, subscriptions, all_subscriptions)
    azure, modes = _session(cmd)
    vms = list_vms(azure, resource_group_name)
    modes.prefetch(resource_group_name, mode)
    out = []
    for vm in vms:
        target = target_without_network(vm)
        held = modes.holding(target, mode)
        if not held:
            continue
        if any(m.requests_need_network for m in held):
            target = target_from_vm(azure, vm)
        out.append(views.vm_view(target, held, status=status, rules=False))
    if status == 'pending':   # and the requests under approval waiting for your decision, or your own
        from azext_jit.pim.decisions import pending_by_vm
        waiting = pending_by_vm(azure)
        for view in out:
            view['requests'] += waiting.get(view['id'].rstrip('/').lower(), [])
    return out


def _fleet_list(cmd, resource_group_name, status, mode, subscriptions, all_subscriptions):
    from azext_jit.fleet.survey import fleet_list
    azure = _azure(cmd)
    scope = _fleet_scope(cmd, azure, subscriptions, all_subscriptions, None, resource_group_name)
    with _progress(cmd) as progress:
        return fleet_list(azure, scope, status, mode, progress)


def _azure(cmd):
    from azext_jit.arm import Azure
    return Azure.from_cli(cmd)


def _fleet_scope(cmd, azure, subscriptions, all_subscriptions, management_groups, resource_group_name):
    """Which subscriptions (or management groups) a fleet command reads: those named (ids or names, as
    --subscription takes them), every one `az account list` shows (--all-subscriptions), or the current one. A
    configured default group does not narrow it."""
    from azext_jit.fleet import scope
    if getattr(resource_group_name, 'is_default', False):
        resource_group_name = None
    group = resource_group_name and str(resource_group_name)
    if management_groups:
        return scope.Scope(management_groups=management_groups, resource_group=group)
    return scope.Scope(subscriptions=scope.subscriptions_of(cmd, azure, all_subscriptions, named=subscriptions),
                       resource_group=group)


@contextlib.contextmanager
def _progress(cmd):
    from azext_jit.fleet.progress import Progress
    progress = Progress(cmd.cli_ctx)
    try:
        yield progress
    finally:
        progress.end()


# -- exposure -----------------------------------------------------------------------------------------
def exposure_jit(cmd, subscriptions=None, all_subscriptions=False,  # pylint: disable=too-many-arguments
                 management_groups=None, resource_group_name=None, ports=None, protect=False, dry_run=False,
                 yes=False, mode=AUTO):
    """Every VM whose management ports the internet reaches, across subscriptions, from Resource Graph; with
    --protect, `enable` on those without JIT."""
    from azext_jit.errors import UsageError
    from azext_jit.fleet import exposure
    from azext_jit.fleet.survey import Survey
    for flag, given in (('--dry-run', dry_run), ('--yes', yes), ('--mode', mode != AUTO)):
        if given and not protect:
            raise UsageError(f'{flag} goes with --protect.', f'Add --protect to enable JIT on what is found, or drop '
                                                             f'{flag}.')
    numbers = [(p.number, p.protocol) for p in ports or _default_ports()]
    azure = _azure(cmd)
    scope = _fleet_scope(cmd, azure, subscriptions, all_subscriptions, management_groups, resource_group_name)
    with _progress(cmd) as progress:
        survey = Survey(azure, scope, progress=progress)
        rows = exposure.exposed(survey.estate, numbers, survey.jit_mode)
        _warn_unknown([r for r in rows if r['status'] != 'open'])
        logger.warning('%s', exposure.summary(rows, len(survey.vms()), len(survey.estate.subscriptions())))
        if not protect:
            return rows
        from azext_jit.fleet.protect import protect_exposed
        policy = _enable_policy(ports, None, None)
        return dict(protect_exposed(azure, rows, policy, mode, dry_run, yes, progress), exposed=rows)


def _warn_unknown(unknown):
    """Doors Resource Graph did not show enough of to judge (an NSG, subnet, NIC or public IP outside the scope or
    not readable): rows of status `unknown`, named here too, never counted as open or closed."""
    vms = list(dict.fromkeys((u['resourceGroup'], u['vm']) for u in unknown))
    if vms:
        more = f' and {len(vms) - 5} more' if len(vms) > 5 else ''
        shown = ', '.join(f'{vm} ({group})' for group, vm in vms[:5]) + more
        logger.warning('Could not judge every public door of %d VM(s): %s (rows with status "unknown"). First: %s.',
                       len(vms), shown, unknown[0]['reason'])


# -- enable / disable ---------------------------------------------------------------------------------
def enable_jit(cmd, resource_group_name=None, vm_name=None, ports=None, max_duration=None, allowed_sources=None,
               all_vms=False, mode=AUTO, dry_run=False, yes=False, require_approval=False, approvers=None,
               approver_groups=None, requesters=None):
    from azext_jit import protection
    from azext_jit.pim import gate
    approval = gate.settings(require_approval, approvers, approver_groups, requesters)   # bad input: nothing read
    _check_all_or_name(all_vms, vm_name)
    azure, modes = _session(cmd, announce=True)
    if all_vms:  # --all means every VM: configured defaults (az configure --defaults vm=/group=) do not narrow it
        vm_name = None
        if getattr(resource_group_name, 'is_default', False):
            resource_group_name = None
    policy = _enable_policy(ports, max_duration, allowed_sources)
    targets = _enable_targets(azure, resource_group_name, vm_name, all_vms)
    chosen, plans = plan_enable(azure, modes, targets, policy, mode, one_vm=bool(vm_name))
    approval_gate = gate.Gate(azure, approval, gate.longest_access(policy)) if approval else None
    if approval_gate:   # PIM, the role and the caller's permissions are checked before anything is written
        approval_gate.prepare(chosen)
    protection.confirm_removals(list(plans.values()), yes or dry_run)
    results = enable_chosen(azure, chosen, policy, plans, dry_run)
    if approval_gate:
        _gate_results(approval_gate, chosen, results, dry_run)
    return results[0] if vm_name else results


def _enable_policy(ports, max_duration, allowed_sources):
    from azext_jit.policy import build_policy
    return build_policy(ports or _default_ports(), max_duration or _default_max_duration(), allowed_sources or ['*'])


def _check_all_or_name(all_vms, vm_name):
    if all_vms and vm_name and not getattr(vm_name, 'is_default', False):
        from azext_jit.errors import BadInput
        raise BadInput('--all and --name cannot be used together.',
                       'Name one VM with -g and -n, or protect every VM with --all (with -g: every VM of that group).')


def _gate_results(approval_gate, chosen, results, dry_run):
    """Set up approval for the enabled VMs, and add its changes and settings to each VM's result."""
    from azext_jit.durations import to_iso8601
    changes = approval_gate.apply(chosen, dry_run)
    approval = approval_gate.approval
    for (target, _), result in zip(chosen, results):
        result['changes'] += [c.to_dict() for c in changes[target.id]]
        result['policy']['requireApproval'] = True
        result['approval'] = {'required': True, 'role': approval_gate.role_name, 'approvers': list(approval.approvers),
                              'approverGroups': list(approval.groups), 'requesters': list(approval.requesters),
                              'maximumActivation': to_iso8601(approval_gate.max_activation)}


def _enable_targets(azure, resource_group_name, vm_name, all_vms):
    """The VMs `enable` protects: the one named, or what can be protected in a group or the subscription."""
    from azext_jit.errors import MissingInput
    from azext_jit.targets import list_vms, require_protectable, target_from_vm
    if vm_name:
        target = _target(azure, resource_group_name, vm_name)
        require_protectable(target)
        return [target]
    if resource_group_name or all_vms:   # a group or the subscription: enable what can be protected, name the rest
        return protectable([target_from_vm(azure, vm) for vm in list_vms(azure, resource_group_name)])
    raise MissingInput('Say which VMs to protect: -g/--resource-group with -n/--name (one VM), -g alone (every '
                       'VM of the group) or --all (the whole subscription).')


def disable_jit(cmd, resource_group_name=None, vm_name=None, mode=AUTO, dry_run=False):
    from azext_jit import protection, revocations
    from azext_jit.access_requests import ACTIVE
    from azext_jit.commands import CONFIRM_IN_HANDLER
    from azext_jit.nsg import client as nsg_client
    from azext_jit.pim import record
    azure, modes = _session(cmd)
    target = _target(azure, resource_group_name, vm_name)
    nsg_client.read_ahead(azure, target.nsg_id)   # so a mode's own reads (Defender's policies) come last
    held = modes.holding(target, mode)
    if not held:   # an earlier disable stopped half-way: finish it
        held = [m for m in modes.each(mode) if m.removes_leftovers() and m.leftover_rules(target)]
    if not held and (mode != AUTO or not protection.has_removed_rules(target)):
        logger.warning('JIT is not enabled on %s%s: nothing to disable.', target.describe(),
                       '' if mode == AUTO else f' in {mode} mode')
        changes = record.forget(azure, target, dry_run) if mode == AUTO else []   # a disable cut short
        _forgotten(azure, target, changes)
        return {'vm': target.name, 'resourceGroup': target.resource_group, 'dryRun': dry_run,
                'changes': [c.to_dict() for c in changes]}
    # Everything is read and checked before the first write, so the confirmation can list what comes back.
    still = [m.name for m in modes.holding(target) if m not in held]
    plan = None if still else protection.plan_restore(azure, target, held, modes.each())
    if not dry_run:   # a dry run lists the same rules in its changes
        protection.confirm_disable(target, plan, cmd.cli_ctx.data.get(CONFIRM_IN_HANDLER), still)
    changes = []
    if still:
        # Another mode still protects the VM: the rules enable removed would defeat it, so they stay removed.
        logger.warning('%s is still protected in %s mode; the rules enable removed stay removed until that is '
                       'disabled too.', target.describe(), ' and '.join(still))
    else:
        # Restored first, while the policy still says which ports the record may hold: if a later step fails,
        # the next disable finds the VM still enabled and the rules already back, and finishes.
        changes += protection.restore_removed(azure, target, plan, dry_run)
    # Records with nothing left to explain: removed with the mode's own tag deletion (one call), or just after it.
    approval = [] if still else record.forget(azure, target, dry_run)   # the note; PIM's own settings stay
    forgotten = ([] if still else revocations.forget_revocations(azure, target, dry_run)) + approval
    for jit_mode in held:
        if jit_mode.closes_access_before_disable:
            active = [r for r in jit_mode.requests_of(target) if r.status == ACTIVE]
            if active:
                changes += jit_mode.close_access(target, active, dry_run=dry_run)
        changes += jit_mode.disable(target, dry_run)
    changes += forgotten
    _forgotten(azure, target, approval)
    return {'vm': target.name, 'resourceGroup': target.resource_group,
            'modes': [m.name for m in held], 'dryRun': dry_run, 'changes': [c.to_dict() for c in changes]}


def _forgotten(azure, target, approval_changes):
    """Remove the records staged for deletion (unless the mode's own tag deletion carried them), then say that the
    approval note is gone."""
    from azext_jit import vm_records
    vm_records.flush(azure, target.id, target.tags)
    if approval_changes:
        logger.warning("%s no longer notes that access needs approval. The requester role's eligibilities and PIM "
                       "settings stay where they are (other VMs may share that scope: a Defender JIT policy covers "
                       "its resource group's VMs); remove them in PIM when nothing needs them.", target.describe())


# -- request / revoke ---------------------------------------------------------------------------------
def request_access(cmd, resource_group_name=None, vm_name=None, ports=None, duration=None, source=None,
                   justification=None, mode=AUTO, dry_run=False, request_id=None, wait=False, timeout=None):
    """Open access; on a VM under approval, a caller whom Azure does not let open it directly files a PIM
    activation instead (pending until an approver decides; `--wait` waits and opens), and `--request-id` opens an
    approved request later."""
    from azext_jit import views
    _check_request_options(request_id, ports, duration, source, justification, dry_run, wait, timeout)
    azure, modes = _session(cmd)
    target = _target(azure, resource_group_name, vm_name, need_nsg=False)
    jit_mode = _enabled_mode(modes, target, mode)
    if request_id:
        from azext_jit.pim import activation
        return activation.request_later(cmd, azure, jit_mode, target, request_id.strip(),
                                        {'wait': wait, 'timeout': timeout})
    policy, grants, source, me = _checked_request(cmd, jit_mode, target, ports, duration, source)
    if _under_approval(target):
        from azext_jit.pim import activation
        routed = activation.plain_request(cmd, azure, jit_mode, target, list(grants), source, justification,
                                          {'dry_run': dry_run, 'wait': wait, 'timeout': timeout})
        if routed is not None:
            return routed
    changes = jit_mode.remove_expired(target, dry_run)
    request, opened = jit_mode.open_access(target, policy, list(grants), source, justification, me, dry_run)
    return views.request_view(target, request, changes + opened, dry_run)


def _checked_request(cmd, jit_mode, target, ports, duration, source):
    """(policy, what it grants, source, the caller) for a request, checked before anything is written; NSG mode's
    source is the caller's public IP when none is given (asked from the IP-echo service, then checked too)."""
    from azext_jit import caller
    from azext_jit.access_requests import check_room
    from azext_jit.policy import check_request
    policy = jit_mode.policy_of(target)
    exact = jit_mode.matches_sources_exactly
    grants = check_request(policy, ports, duration, source, exact_source_match=exact, vm_address=target.private_ip)
    if source is None and not jit_mode.finds_caller_ip:   # ask the IP-echo service, then check that address too
        source = caller.my_public_ip(cmd)
        grants = check_request(policy, ports, duration, source, exact_source_match=exact,
                               vm_address=target.private_ip)
    me = caller.whoami(cmd)
    check_room(target, jit_mode.requests_of(target), me, len(grants))   # before anything is written
    return policy, grants, source, me


def _under_approval(target):
    from azext_jit.pim import record
    return record.required(target)


def _check_request_options(request_id, ports, duration, source, justification, dry_run, wait, timeout):
    """--request-id opens what an approved request asked: nothing else may be asked beside it."""
    from azext_jit.errors import BadInput
    if request_id is not None and not request_id.strip():
        raise BadInput('--request-id is empty: name the approved request to open.',
                       'Take its id from the output of `az vm jit request`, or from `az vm jit list --status pending`.')
    given = [name for name, value in (('--ports', ports), ('--duration', duration), ('--source', source),
                                      ('--justification', justification), ('--dry-run', dry_run)) if value]
    if request_id and given:
        raise BadInput(f"{', '.join(given)} cannot be used with --request-id: it opens exactly what the approved "
                       'request asked.', 'Leave them out, or file a new request without --request-id.')
    if timeout is not None and not wait:
        raise BadInput('--timeout needs --wait.', 'Add --wait, or leave out --timeout.')


def revoke_access(cmd, resource_group_name=None, vm_name=None, ports=None, request_id=None, all_requests=False,
                  mode=AUTO, dry_run=False):
    """Close access now: by default the caller's own requests, `--request-id` one request, `--all` everyone's.
    Already expired or revoked access is not an error: there is just nothing to do."""
    from azext_jit import caller, revocations
    from azext_jit.access_requests import ACTIVE
    from azext_jit.errors import BadInput
    if request_id is not None and not request_id.strip():   # an unset shell variable must not mean "everyone's"
        raise BadInput('--request-id is empty: name the request to close.',
                       'Take its id from `az vm jit show`; leave --request-id out to close your own access, '
                       "or use --all to close everyone's.")
    if request_id and all_requests:
        raise BadInput('--request-id and --all cannot be used together.',
                       "Name one request with --request-id, or close everyone's access with --all.")
    azure, modes = _session(cmd)
    target = _target(azure, resource_group_name, vm_name)
    jit_mode = _enabled_mode(modes, target, mode)
    numbers = [p.number for p in ports] if ports else None
    me = caller.whoami(cmd)
    own_only = not request_id and not all_requests
    requests, pim_name = _chosen_requests(jit_mode, target, request_id, own_only)
    active = [r for r in requests if r.status == ACTIVE]
    active, others = revocations.own_and_others(active, me) if own_only else (active, [])
    changes = jit_mode.remove_expired(target, dry_run)
    if not active and others:
        revocations.warn_none_of_yours(target, others, me)
    elif not active:
        logger.warning('No open access on %s: nothing to revoke.', target.describe())
    else:
        try:
            changes += jit_mode.close_access(target, active, numbers, dry_run=dry_run)
        except Exception as ex:
            if not _end_approvals(cmd, azure, jit_mode, target, active, None, True, dry_run):
                raise
            raise _closed_only_the_approval(ex, target, active) from None
        changes += revocations.record_revocations(azure, target, active, numbers, me, dry_run)
    # under approval the approved window ends with the access (any of its ports): no reopening within it; --all also
    # ends approvals not opened yet
    changes += _end_approvals(cmd, azure, jit_mode, target, active, pim_name, bool(requests), dry_run,
                              every_approval=all_requests)
    return {'vm': target.name, 'resourceGroup': target.resource_group, 'mode': jit_mode.name, 'dryRun': dry_run,
            'revoked': [r.id for r in active], 'changes': [c.to_dict() for c in changes]}


def _closed_only_the_approval(ex, target, active):
    """A requester under approval may not close the access (in Defender mode the approved role covers the JIT policy,
    not the NSG), but its activation was ended: say both."""
    from azext_jit.errors import JitError, explain_http_error
    from azext_jit.times import stamp
    err = ex if isinstance(ex, JitError) else explain_http_error(ex)
    ends = max((r.end_time for r in active if r.end_time), default=None)
    return type(err)(f'{err.message} The approved activation behind it was ended, so it cannot be reopened, but the '
                     f"access stays open until {stamp(ends) or 'it expires'}.",
                     f'An administrator can close it now: az vm jit revoke -g {target.resource_group} -n {target.name} '
                     f'--request-id {active[0].id}')


def _end_approvals(cmd, azure, jit_mode, target, closed, pim_name,  # pylint: disable=too-many-arguments
                   matched, dry_run, every_approval=False):
    """On a VM under approval, end the PIM activations behind the closed access, and the one of approval request
    `pim_name` (--request-id) even when none of its access is open (`matched`: some access was opened for it)."""
    from azext_jit.errors import NotFound
    from azext_jit.pim import activation, record
    if not record.required(target):
        return []
    ended = activation.end_activations(cmd, azure, jit_mode, target, closed, pim_name, dry_run, every_approval)
    if pim_name and not matched and not ended:
        raise NotFound(f"No request '{pim_name}' on {target.describe()}, and no active approval of that id.",
                       f'See its requests with: az vm jit show -g {target.resource_group} -n {target.name}')
    return ended


def _chosen_requests(jit_mode, target, request_id, own_only):
    """(the VM's requests `revoke` is about, the approval request named by --request-id or None): one JIT request
    by its id, or, on a VM under approval, those opened for an approval request (its PIM id)."""
    from azext_jit.errors import NotFound
    from azext_jit.pim import activation, record
    requests = jit_mode.requests_of(target, requestors=own_only)
    if not request_id:
        return requests, None
    wanted = request_id.strip().lower()
    pim_name = wanted if record.required(target) and len(wanted) > 8 else None
    requests = [r for r in requests if r.id == wanted or (pim_name and activation.links_to(r, pim_name))]
    if not requests and not pim_name:
        raise NotFound(f"No request '{request_id}' on {target.describe()}.",
                       f'See its requests with: az vm jit show -g {target.resource_group} -n {target.name}')
    return requests, pim_name


# -- approve / deny -----------------------------------------------------------------------------------
def approve_request(cmd, request_id=None, reason=None, yes=False):
    """Approve a request under approval, as one of its designated approvers (through PIM)."""
    from azext_jit.pim.decisions import decide
    return decide(cmd, request_id, True, reason, yes)


def deny_request(cmd, request_id=None, reason=None, yes=False):
    """Deny a request under approval, saying why (through PIM)."""
    from azext_jit.pim.decisions import decide
    return decide(cmd, request_id, False, reason, yes)


# -- cleanup ------------------------------------------------------------------------------------------
def cleanup_jit(cmd, resource_group_name=None, dry_run=False, mode=AUTO,  # pylint: disable=too-many-arguments
                subscriptions=None, all_subscriptions=False):
    from azext_jit.cleanup import cleanup
    from azext_jit.errors import AzureFailed
    azure = _azure(cmd)
    if subscriptions or all_subscriptions:   # Resource Graph finds the rules; each NSG is read fresh before a write
        from azext_jit.fleet.cleanup import fleet_cleanup
        scope = _fleet_scope(cmd, azure, subscriptions, all_subscriptions, None, resource_group_name)
        with _progress(cmd) as progress:
            result = fleet_cleanup(azure, scope, dry_run, mode, progress)
    else:
        result = cleanup(azure, resource_group_name and str(resource_group_name), dry_run, mode)
    if result['failed']:
        raise AzureFailed(
            f"Removed {result['count']} expired rule(s), but {len(result['failed'])} could not be removed: "
            f"{result['failed'][0]}",
            'Fix the cause and run the command again; it is safe to repeat.')
    return result


# -- log ----------------------------------------------------------------------------------------------
def log_jit(cmd, resource_group_name=None, vm_name=None, vm_ids=None, offset=None, start_time=None,
            end_time=None):
    """The JIT story of VMs or a resource group, from the Activity Log and PIM's records: one timeline."""
    import datetime as dt
    from azext_jit.audit import reading, window
    from azext_jit.errors import BadInput
    subscription, group, names = _log_targets(resource_group_name, vm_name, vm_ids)
    span = {'offset': offset, 'start_time': start_time, 'end_time': end_time}
    window.window(dt.datetime.now(dt.timezone.utc), **span)   # bad input refused before anything is read
    azure, modes = _session(cmd)
    if subscription and subscription.lower() != azure.subscription_id.lower():
        raise BadInput(f'--ids names VMs of subscription {subscription}, not of the current one.',
                       f'Add --subscription {subscription}.')
    return reading.log(azure, modes, group, names, span)


def _log_targets(resource_group_name, vm_name, vm_ids):
    """(subscription or None, resource group, [VM names] or None for the whole group) from -g/-n or --ids (VMs of
    one resource group)."""
    import re
    from azext_jit.errors import BadInput, MissingInput, UsageError
    if vm_ids:
        if resource_group_name or vm_name:
            raise UsageError('Use either --ids or -g/-n, not both.', 'Drop -g and -n when you give --ids.')
        parsed = []
        for text in vm_ids:
            match = re.fullmatch(r'/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Compute/'
                                 r'virtualMachines/([^/]+)/?', str(text).strip(), re.I)
            if not match:
                raise BadInput(f"'{text}' is not a VM's resource id.",
                               'Give ids like /subscriptions/<id>/resourceGroups/<group>/providers/'
                               'Microsoft.Compute/virtualMachines/<name> (`az vm list --query [].id`).')
            parsed.append(match.groups())
        if len({(sub.lower(), group.lower()) for sub, group, _ in parsed}) > 1:
            raise BadInput('--ids names VMs of several resource groups; one log covers one group.',
                           'Run the command once per resource group, or use -g RG for a whole group.')
        return parsed[0][0], parsed[0][1], list(dict.fromkeys(name for _, _, name in parsed))
    if not resource_group_name:
        raise MissingInput('Name the resource group with -g/--resource-group (and a VM with -n, or use --ids).')
    return None, resource_group_name, [vm_name] if vm_name else None


def _default_ports():
    from azext_jit.ports import PortSpec
    return [PortSpec(22, 'TCP'), PortSpec(3389, 'TCP')]


def _default_max_duration():
    import datetime
    return datetime.timedelta(hours=3)
