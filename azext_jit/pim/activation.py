# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""`request` on a VM under approval: straight through for whoever Azure lets open access, otherwise a PIM
activation of the requester role at the VM's gate scope, which opens access once an approver says yes.

- Whether the caller may open access directly is Azure's answer (the permissions API at the gate scope), never
  ours: the VM's approval note only tells `request` to ask.
- What was asked travels in the activation's justification (`asks.py`). Read back (`--wait`, `--request-id`) it
  is a claim like user input: checked again against the VM's current policy before anything opens, and opened
  only for what remains of the activation.
- Access opened for an approved request is linked to it: its justification starts with `[approval <first 8 hex of
  the PIM request's name>]`, so a second `request --request-id` finds it already open and `revoke` knows whose
  activation to end. In NSG mode the justification shares the rule description's 140 characters: the link comes
  first so that shortening never cuts it, but a requestor name of more than about 90 characters leaves no room.
"""
import datetime as dt
import os
import time

from azext_jit.errors import BadInput, JitError, NotAllowed, NotFound, NotPossible, error_code, explain_http_error
from azext_jit.log import get_logger
from azext_jit.pim import client, roles
from azext_jit.pim.gate import covers
from azext_jit.pim.asks import Ask, format_ask, parse_ask, split_link

logger = get_logger(__name__)

#: Seconds between two reads of a request awaiting its decision (`--wait`); tests make it short.
POLL_ENV = 'AZURE_JIT_POLL_SECONDS'
DEFAULT_POLL_SECONDS = 5.0
#: How long `--wait` waits, after approval, for Azure to honour the new activation (role assignments take a
#: moment to apply in ARM; *unconfirmed* how long: two minutes by default).
ROLE_WAIT_ENV = 'AZURE_JIT_ROLE_WAIT_SECONDS'
DEFAULT_ROLE_WAIT_SECONDS = 120.0
DEFAULT_TIMEOUT = dt.timedelta(hours=1)

_DENIED = ('Denied', 'AdminDenied')


# -- identities, scopes, links ------------------------------------------------------------------------
def my_object_id(cmd):
    """The signed-in principal's Entra object id (the `oid` claim of its ARM token), or None."""
    from azure.cli.core._profile import Profile
    from azext_jit.caller import token_claims
    try:
        token = Profile(cli_ctx=cmd.cli_ctx).get_raw_token()[0][1]
    except Exception:  # pylint: disable=broad-except
        return None
    oid = token_claims(token).get('oid')
    return str(oid).lower() if oid else None


def gate_scope(jit_mode, target):
    scope = jit_mode.approval_scope(target)
    if not scope:
        raise NotPossible(f'{target.describe()} is under approval, but where Azure checks the permission that opens '
                          f'its ports cannot be found (no network security group, or no JIT policy lists it).',
                          f'Ask an administrator to run `az vm jit enable -g {target.resource_group} -n {target.name} '
                          '--require-approval ...` again.')
    return scope.rstrip('/')


def short_id(name):
    return client.last_segment(name).lower()[:8]


def linked_justification(name, reason):
    """The justification of access opened for approved request `name`: the link first, then the user's words."""
    words = ' '.join(str(reason or '').split())
    return f'[approval {short_id(name)}] {words}'.strip()


def linked_id(justification):
    """The short id of the approved request that access was opened for, or None."""
    return split_link(justification)[0]


def links_to(request, pim_name):
    """Whether JIT access (`AccessRequest`) was opened for PIM request `pim_name`."""
    return linked_id(request.justification) == short_id(pim_name)


def poll_seconds():
    try:
        return max(0.05, float(os.environ.get(POLL_ENV) or DEFAULT_POLL_SECONDS))
    except ValueError:
        return DEFAULT_POLL_SECONDS


def _role_wait_seconds():
    try:
        return max(0.0, float(os.environ.get(ROLE_WAIT_ENV) or DEFAULT_ROLE_WAIT_SECONDS))
    except ValueError:
        return DEFAULT_ROLE_WAIT_SECONDS


_props = client.properties_of


def _same_id(a, b):
    return str(a or '').rstrip('/').lower() == str(b or '').rstrip('/').lower()


# -- may the caller open directly, or through which eligibility ----------------------------------------
def may_open_directly(azure, scope, action):
    """Azure's answer: do the caller's active role assignments at or above `scope` grant `action`?"""
    return roles.grants(client.my_permissions(azure, scope), action)


def find_eligibility(azure, scope, action):
    """The caller's eligibility (schedule instance) for a role that grants `action`, at or above `scope`; the
    requester role first. None when there is none."""
    from azure.core.exceptions import HttpResponseError
    try:
        found = client.eligibility_instances(azure, scope, mine=True)
    except HttpResponseError as ex:
        raise refused(ex) from None
    found = [e for e in found if covers(_props(e).get('scope'), scope)]
    found.sort(key=lambda e: len(str(_props(e).get('scope') or '')), reverse=True)   # the narrowest first

    def role_name(item):
        return ((_props(item).get('expandedProperties') or {}).get('roleDefinition') or {}).get('displayName')
    named = [e for e in found if str(role_name(e) or '').lower() == roles.REQUESTER_ROLE.lower()]
    if named:
        return named[0]
    for item in found:
        try:
            definition = client.role_definition(azure, _props(item).get('roleDefinitionId'))
        except Exception:  # pylint: disable=broad-except
            continue   # a role we cannot read: not the one to activate
        if roles.grants(_props(definition).get('permissions'), action):
            return item
    return None


def not_eligible(target, scope):
    return NotAllowed(
        f'{target.describe()} is under approval, and you may neither open its ports directly nor ask for approval: '
        f'you are not eligible for the role "{roles.REQUESTER_ROLE}" at {scope} or above it.',
        f'Ask a JIT administrator to make you a requester: az vm jit enable -g {target.resource_group} -n '
        f'{target.name} --require-approval --approvers ... --requesters <your object id>')


# -- filing --------------------------------------------------------------------------------------------
def ask_of(target, grants, source, justification):
    """The Ask for what `check_request` granted: the longest of the ports' durations (each port is cut to its own
    maximum again when it opens)."""
    return Ask(target.id, tuple((p.number, p.protocol) for p, _ in grants), source,
               max(d for _, d in grants), ' '.join(str(justification or '').split()))


def same_ask(a, b):
    return a is not None and b is not None and _same_id(a.vm_id, b.vm_id) and a.ports == b.ports and \
        a.source == b.source and a.duration == b.duration


def file_activation(azure, scope, principal_id, eligibility, ask):
    """File the SelfActivate for `ask`; returns the schedule request. A pending request of the caller for the same
    role and scope that asks the same thing is returned instead (safe to run twice); one that asks something
    else is refused, naming it."""
    from azure.core.exceptions import HttpResponseError
    from azext_jit.durations import to_iso8601
    from azext_jit.times import stamp
    props = _props(eligibility)
    role_id = props.get('roleDefinitionId')
    try:
        return client.activate(azure, scope, principal_id, role_id, format_ask(ask), stamp(azure.now()),
                               to_iso8601(ask.duration), props.get('roleEligibilityScheduleId'))
    except HttpResponseError as ex:
        if error_code(ex) != 'PendingRoleAssignmentRequest':
            raise refused(ex) from None
    pending = [r for r in client.schedule_requests(azure, scope, 'asRequestor()')
               if _props(r).get('status') == client.PENDING and _same_id(_props(r).get('scope'), scope)
               and client.last_segment(_props(r).get('roleDefinitionId')).lower() ==
               client.last_segment(role_id).lower()]
    for item in pending:
        if same_ask(parse_ask(_props(item).get('justification')), ask):
            return item
    name = pending[0]['name'] if pending else '(unknown)'
    theirs = parse_ask(_props(pending[0]).get('justification')) if pending else None
    raise NotPossible(
        f"You already have a request waiting for approval at {scope}: {name}"
        f"{f' ({theirs.describe()})' if theirs else ''}. PIM takes one pending request per person, role and scope.",
        f'Wait for its decision (az vm jit request ... --request-id {name} --wait), or ask an approver to deny it '
        f'(az vm jit deny --request-id {name} --reason ...), then ask again.')


def refused(ex):
    """PIM's refusal of an activation in the extension's words (one line each)."""
    code = error_code(ex)
    err = explain_http_error(ex)
    if code == 'RoleAssignmentDoesNotExist':
        return NotAllowed('PIM refused the activation: you are not eligible for the requester role at this scope.',
                          'Ask a JIT administrator to make you a requester (az vm jit enable ... --requesters).')
    if code == 'RoleAssignmentRequestPolicyValidationFailed':
        return NotPossible(f'PIM refused the activation: {err.message}',
                           'The role management policy of the requester role disagrees with the JIT policy; ask an '
                           'administrator to run `az vm jit enable ... --require-approval` again.')
    if code == 'RoleAssignmentExists':
        return NotPossible('You already hold an active activation of the requester role here, but Azure does not let '
                           'you open access with it yet (a new activation takes a moment to apply).',
                           'Run the same command again in a minute.')
    if code == 'AadPremiumLicenseRequired':
        return NotPossible('PIM did not answer: the tenant needs a Microsoft Entra ID P2 (AAD Premium 2) licence for '
                           'approval.', 'Ask an administrator to license the tenant, or to take the VM out of '
                           'approval.')
    return err


# -- reading back a request -------------------------------------------------------------------------------
def activation_end(item):
    """When the activation of schedule request `item` ends: its start plus its duration (None: cannot tell)."""
    from azext_jit.durations import parse_duration
    from azext_jit.times import parse_time
    info = _props(item).get('scheduleInfo') or {}
    expiration = info.get('expiration') or {}
    try:
        if expiration.get('endDateTime'):
            return parse_time(expiration['endDateTime'])
        return parse_time(info['startDateTime']) + parse_duration(expiration['duration'])
    except (KeyError, TypeError, ValueError, BadInput, JitError):
        return None


def decision_reason(azure, item):
    """The approver's words on a denied request (from the approval's step), or ''."""
    approval_id = _props(item).get('approvalId')
    if not approval_id:
        return ''
    try:
        steps = _props(client.approval(azure, approval_id)).get('steps') or []
    except Exception:  # pylint: disable=broad-except
        return ''
    denied = [s for s in steps if str(_props(s).get('reviewResult') or s.get('reviewResult') or '') == 'Deny']
    for step in denied or steps:
        props = _props(step) or step
        if props.get('justification'):
            by = props.get('reviewedBy') or {}
            who = by.get('displayName') or by.get('userPrincipalName') or by.get('principalName')
            return f"{props['justification']}{f' ({who})' if who else ''}"
    return ''


def refuse_unless_approved(azure, item, target):
    """Raise (exit 1) unless the request's activation is provisioned: pending, denied, expired or cancelled."""
    status = _props(item).get('status')
    name = item.get('name')
    where = f'-g {target.resource_group} -n {target.name}'
    if status == client.PROVISIONED:
        return
    if status in _DENIED:
        reason = decision_reason(azure, item)
        raise NotPossible(f"Request {name} was denied{f': {reason}' if reason else ''}. Nothing was opened.",
                          'Talk to the approver, then ask again with `az vm jit request` if that is agreed.')
    if status == client.TIMED_OUT:
        raise NotPossible(f'Request {name} expired before anyone decided on it. Nothing was opened.',
                          f'Ask again: az vm jit request {where}')
    if status == client.CANCELED:
        raise NotPossible(f'Request {name} was cancelled. Nothing was opened.',
                          f'Ask again: az vm jit request {where}')
    if status in client.FINAL:
        raise NotPossible(f'Request {name} ended {status}. Nothing was opened.',
                          f'Ask again: az vm jit request {where}')
    raise NotPossible(f'Request {name} is still waiting for approval ({status}). Nothing was opened.',
                      f'Run `az vm jit request {where} --request-id {name}` once it is approved, or add --wait.')


def read_own_request(azure, scope, name, me, target):
    """The caller's schedule request `name` at the VM's gate scope and the Ask it carries; input refused (exit 2)
    when it is not the caller's, not for this VM, or not an ask of ours."""
    from azure.core.exceptions import HttpResponseError
    try:
        item = client.schedule_request(azure, scope, name)
    except HttpResponseError as ex:
        err = explain_http_error(ex)
        if isinstance(err, NotFound):
            raise NotFound(f"There is no approval request '{name}' for {target.describe()} (none at its gate scope "
                           f"{scope}).", 'Take the id that `az vm jit request` printed for this VM, or see yours with '
                           '`az vm jit list --status pending`.') from None
        raise err from None
    props = _props(item)
    if not me:
        raise NotPossible('Your Microsoft Entra object id cannot be read from your sign-in, so whether this approval '
                          'request is yours cannot be told.', 'Sign in again with `az login`, then run it again.')
    if str(props.get('principalId') or '').lower() != me:
        raise NotAllowed(f"Approval request '{name}' is not yours: only its requester can open what it asked.",
                         'Ask for access yourself with `az vm jit request`.')
    ask = parse_ask(props.get('justification'))
    if ask is None:
        raise BadInput(f"Approval request '{name}' was not filed by `az vm jit request`: its justification does not "
                       'say what to open.', 'Ask for access with `az vm jit request`.')
    if not _same_id(ask.vm_id, target.id):
        raise BadInput(f"Approval request '{name}' asks for access to {ask.vm_id.rsplit('/', 1)[-1]}, not to "
                       f'{target.describe()}.', 'Run it with the -g and -n of the VM it asks for.')
    return item, ask


# -- waiting --------------------------------------------------------------------------------------------
def wait_for_decision(cmd, azure, scope, item, timeout, target):
    """Re-read the schedule request every few seconds until it is decided (returns it) or `timeout` passes
    (NotPossible, exit 1, with the command that opens it later). A progress indicator runs on stderr."""
    name = item['name']
    deadline = time.monotonic() + (timeout or DEFAULT_TIMEOUT).total_seconds()
    progress = cmd.cli_ctx.get_progress_controller()
    progress.begin()
    try:
        while _props(item).get('status') not in client.FINAL:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NotPossible(
                    f'Request {name} is still waiting for approval after {_spell(timeout or DEFAULT_TIMEOUT)}. '
                    'Nothing was opened.',
                    f'Once it is approved, open it with: az vm jit request -g {target.resource_group} -n {target.name}'
                    f' --request-id {name}')
            progress.add(message=f'Waiting for an approver to decide on request {name}')
            time.sleep(min(poll_seconds(), left))
            item = client.schedule_request(azure, scope, name)
    finally:
        progress.end()
    return item


def _spell(td):
    from azext_jit.durations import describe
    return describe(td)


def await_permission(azure, scope, action, until):
    """After approval, wait (at most until `until`) for Azure to honour the activation. Refuses (exit 1) when the
    caller still may not open access: the activation ended early (a revoke), or Azure has not applied it yet."""
    while True:
        if may_open_directly(azure, scope, action):
            return
        if time.monotonic() >= until:
            raise NotAllowed('The request was approved, but Azure does not let you open access now: its activation '
                             'has ended (revoked, or its time is up), or Azure has not applied it yet.',
                             'Try again in a minute; if it still fails, ask for access again with `az vm jit request`.')
        time.sleep(poll_seconds())


# -- opening what was approved ------------------------------------------------------------------------------
def approved_grants(jit_mode, target, policy, ask, remaining):
    """What opens for an approved Ask: checked against the VM's current policy like user input (ports, source,
    duration), each port for the shortest of its policy maximum, the asked duration and what remains of the
    activation."""
    from azext_jit.durations import MIN_DURATION, describe
    from azext_jit.policy import check_request
    from azext_jit.ports import PortSpec
    if ask.source is None and not jit_mode.finds_caller_ip:
        raise BadInput('The approved request names no source, and in this mode JIT must name one.',
                       'Ask again with `az vm jit request`: the source is filled in when the request is filed.')
    specs = [PortSpec(number, protocol) for number, protocol in ask.ports]
    grants = check_request(policy, specs, None, ask.source, exact_source_match=jit_mode.matches_sources_exactly,
                           vm_address=target.private_ip)
    longest = max(d for _, d in grants)
    if ask.duration > longest or ask.duration < MIN_DURATION:
        raise BadInput(f'The approved request asks for {describe(ask.duration)}, which the VM\'s JIT policy does not '
                       f'allow now (from {describe(MIN_DURATION)} to {describe(longest)}). Nothing was opened.',
                       'Ask again with `az vm jit request`.')
    return [(port, min(duration, ask.duration, remaining)) for port, duration in grants]


def open_approved(cmd, azure, jit_mode, target, item, ask, waited=False):
    """Open what approved request `item` asked, with the caller's own identity, for what remains of the activation;
    return the request view. Opened already (an earlier run): that access, with nothing written."""
    from azext_jit import caller, views
    from azext_jit.access_requests import ACTIVE, check_room
    name = item['name']
    end = activation_end(item)
    now = azure.now()
    if end is None or end <= now:
        raise NotPossible(f'Request {name} was approved, but its time is over'
                          f"{f' (it ended at {end:%Y-%m-%dT%H:%M:%SZ})' if end else ''}. Nothing was opened.",
                          f'Ask again: az vm jit request -g {target.resource_group} -n {target.name}')
    from azext_jit.access_requests import same_person
    requests = jit_mode.requests_of(target, requestors=True)   # who opened each (Defender: from the Activity Log)
    me = caller.whoami(cmd)
    # a link is text anyone opening access can write: only the caller's own access counts as opened for it
    opened = [r for r in requests if links_to(r, name) and r.status == ACTIVE and same_person(r.requestor, me)]
    if opened:
        return with_link(views.request_view(target, opened[0], [], False), name)
    scope = gate_scope(jit_mode, target)
    wait = _role_wait_seconds() if waited else 0.0
    await_permission(azure, scope, jit_mode.opening_action, time.monotonic() + min(wait, (end - now).total_seconds()))
    policy = jit_mode.policy_of(target)
    now = azure.now()
    grants = approved_grants(jit_mode, target, policy, ask, end - now)
    check_room(target, requests, me, len(grants))
    changes = jit_mode.remove_expired(target)
    request, written = jit_mode.open_access(target, policy, grants, ask.source,
                                            linked_justification(name, ask.reason), me)
    return with_link(views.request_view(target, request, changes + written, False), name)


def with_link(view, name):
    view['approvalRequestId'] = name
    return view


# -- views ----------------------------------------------------------------------------------------------------
def pending_view(target, item, ask, dry_run=False, changes=()):
    """What `request` returns when an approver must decide first (exit 0)."""
    from azext_jit.durations import to_iso8601
    name = item.get('name') if item else None
    where = f'-g {target.resource_group} -n {target.name}'
    view = {'vm': target.name, 'resourceGroup': target.resource_group, 'id': name, 'requestId': name,
            'status': 'planned' if dry_run else 'pending', 'approvalRequired': True,
            'scope': _props(item).get('scope') if item else None,
            'ports': [{'port': n, 'protocol': p, 'source': ask.source, 'status': 'pending'} for n, p in ask.ports],
            'source': ask.source, 'duration': to_iso8601(ask.duration), 'justification': ask.reason or None,
            'dryRun': dry_run, 'changes': [c.to_dict() for c in changes]}
    if name:
        view['next'] = {'approver': f'az vm jit approve --request-id {name}',
                        'requester': f'az vm jit request {where} --request-id {name}'}
        logger.warning('Request %s waits for an approver (az vm jit approve --request-id %s). Once approved, open it '
                       'with: az vm jit request %s --request-id %s', name, name, where, name)
    return view


def activation_change(scope, target, ask, principal_id):
    from azext_jit.changes import Change
    from azext_jit.durations import to_iso8601
    return Change('activate', 'roleActivation', scope, target.name,
                  {'role': roles.REQUESTER_ROLE, 'principalId': principal_id, 'duration': to_iso8601(ask.duration),
                   'justification': format_ask(ask)}, target.id)


# -- the request command's approval path -----------------------------------------------------------------------
def plain_request(cmd, azure, jit_mode, target, grants, source, justification, options):
    """`request` without --request-id on a VM under approval. None when the caller may open access on a right of
    their own (straight through, as without approval); otherwise what the approval path returns: a PIM activation
    filed (pending), or a refusal when the caller's right comes only from an approved activation, which opens only
    what was approved (with --request-id), not anything else on any VM under the same gate scope."""
    scope = gate_scope(jit_mode, target)
    if not may_open_directly(azure, scope, jit_mode.opening_action):
        return request_with_approval(cmd, azure, jit_mode, target, grants, source, justification, options)
    held = approval_behind(cmd, azure, scope, jit_mode.opening_action)
    if held is None:
        return None
    name = held.get('name') or '(unknown)'
    approved = parse_ask(_props(held).get('justification'))
    raise NotAllowed(
        f'Your right to open access on {target.describe()} comes only from approved request {name}'
        f"{f' ({approved.describe()})' if approved else ''}, which opens what was approved and nothing else.",
        f'Open it with `az vm jit request -g <its VM\'s group> -n <its VM> --request-id {name}`; anything else '
        f"needs its own approval once that activation has ended ({_end_text(held)}).")


def approval_behind(cmd, azure, scope, action):
    """When the caller may open access at `scope` only through an approved activation there (no standing assignment
    at or above it whose role grants `action`): that approval's schedule request (the newest; {} if it cannot be
    found), else None. One call for a caller without an activation there; three with one."""
    mine = client.assignment_instances(azure, scope, mine=True)
    activated = [i for i in mine if _props(i).get('assignmentType') == 'Activated'
                 and _same_id(_props(i).get('scope'), scope)]
    if not activated:
        return None
    standing = [i for i in mine if _props(i).get('assignmentType') != 'Activated'
                and covers(_props(i).get('scope'), scope)]
    if standing:
        subscription = '/' + '/'.join(scope.strip('/').split('/')[:2])
        definitions = {client.last_segment(d.get('id')).lower(): d
                       for d in client.role_definitions(azure, subscription)}
        for item in standing:   # a role that cannot be read does not count as a right of one's own
            role = definitions.get(client.last_segment(_props(item).get('roleDefinitionId')).lower())
            if role and roles.grants(_props(role).get('permissions'), action):
                return None
    me = my_object_id(cmd)
    found = [r for r in client.schedule_requests(azure, scope, 'asRequestor()')
             if _props(r).get('requestType') == 'SelfActivate' and _props(r).get('status') == client.PROVISIONED
             and _same_id(_props(r).get('scope'), scope) and str(_props(r).get('principalId') or '').lower() == me]
    found.sort(key=lambda r: str(_props(r).get('createdOn') or ''), reverse=True)
    return found[0] if found else {}


def request_with_approval(cmd, azure, jit_mode, target, grants, source, justification, options):
    """`request` for a caller who may not open access directly on a VM under approval. `options`: dry_run, wait,
    timeout. Returns the pending view, or (approved at once, or `--wait`) the opened request."""
    scope = gate_scope(jit_mode, target)
    eligibility = find_eligibility(azure, scope, jit_mode.opening_action)
    if eligibility is None:
        raise not_eligible(target, scope)
    me = my_object_id(cmd)
    if not me:
        raise NotPossible('Your Microsoft Entra object id cannot be read from your sign-in, and PIM needs it to file '
                          'the activation.', 'Sign in again with `az login`, then run the command again.')
    ask = ask_of(target, grants, source, justification)
    if options.get('dry_run'):
        return pending_view(target, None, ask, True, [activation_change(scope, target, ask, me)])
    item = file_activation(azure, scope, me, eligibility, ask)
    if options.get('wait') and _props(item).get('status') not in client.FINAL:
        item = wait_for_decision(cmd, azure, scope, item, options.get('timeout'), target)
    if _props(item).get('status') == client.PROVISIONED:
        return open_approved(cmd, azure, jit_mode, target, item, ask, waited=True)
    if _props(item).get('status') in client.FINAL:
        refuse_unless_approved(azure, item, target)
    return pending_view(target, item, ask)


def request_later(cmd, azure, jit_mode, target, name, options):
    """`request --request-id`: open what the caller's approved request asked (after `--wait`, if given)."""
    scope = gate_scope(jit_mode, target)
    item, ask = read_own_request(azure, scope, name, my_object_id(cmd), target)
    if options.get('wait') and _props(item).get('status') not in client.FINAL:
        item = wait_for_decision(cmd, azure, scope, item, options.get('timeout'), target)
    refuse_unless_approved(azure, item, target)
    return open_approved(cmd, azure, jit_mode, target, item, ask, waited=bool(options.get('wait')))


# -- revoke: ending activations -------------------------------------------------------------------------------
def end_activations(cmd, azure, jit_mode, target, closed, pim_name=None,  # pylint: disable=too-many-arguments
                    dry_run=False, every_approval=False):
    """End the PIM activations behind the closed requests (those opened for an approved request), the one of
    approval request `pim_name` (its full name), and with `every_approval` (`revoke --all`) every approved
    activation that asked for this VM, opened or not, so their requesters cannot reopen within the approved window:
    the caller's own with SelfDeactivate, others' with AdminRemove. Returns Changes; a failure to end one is a
    warning (the access itself is closed already)."""
    from azure.core.exceptions import HttpResponseError
    from azext_jit.changes import Change
    wanted = {linked_id(r.justification) for r in closed} - {None}
    exact = client.last_segment(pim_name).lower() if pim_name else None
    if not wanted and not exact and not every_approval:
        return []
    scope = gate_scope(jit_mode, target)
    me = my_object_id(cmd)
    try:
        items = client.schedule_requests(azure, scope)
    except HttpResponseError as ex:
        logger.warning('Could not read the approval requests at %s to end their activations (%s): an approved '
                       'requester may reopen access until the activation ends.', scope, explain_http_error(ex).message)
        return []
    ended, changes = set(), []
    for item in items:
        if not _to_end(item, target, wanted, exact, every_approval):
            continue
        props = _props(item)
        who, role = str(props.get('principalId') or '').lower(), props.get('roleDefinitionId')
        if (who, role) in ended:
            continue
        ended.add((who, role))
        own = who == me
        changes.append(Change('deactivate', 'roleActivation', scope, target.name,
                              {'principalId': who, 'requestId': item.get('name'),
                               'requestType': 'SelfDeactivate' if own else 'AdminRemove'}, target.id))
        if dry_run:
            continue
        try:
            client.deactivate(azure, scope, who, role, f'az vm jit revoke: access to {target.id} closed',
                              admin=not own)
        except HttpResponseError as ex:
            changes.pop()
            if error_code(ex) == 'RoleAssignmentDoesNotExist':
                continue   # nothing active to end (expired, or ended already)
            if error_code(ex) == 'ActiveDurationTooShort':   # PIM ends no activation in its first five minutes
                logger.warning('Access is closed, but PIM does not end an activation in its first five minutes: the '
                               'activation of request %s stays until then, and its requester could reopen access. '
                               'Run `az vm jit revoke -g %s -n %s --request-id %s` again in five minutes.',
                               item.get('name'), target.resource_group, target.name, item.get('name'))
                continue
            logger.warning('Access is closed, but the activation of request %s could not be ended (%s): its requester '
                           'may reopen access until it ends at %s.', item.get('name'),
                           explain_http_error(ex).message, _end_text(item))
    return changes


def _to_end(item, target, wanted, exact, every_approval):
    """Whether `revoke` ends this schedule request's activation: an approved SelfActivate linked to closed access
    (`wanted` short ids), named by its full name (`exact`) or, with `every_approval`, any; the last two only when it
    asked for this VM."""
    props = _props(item)
    if props.get('requestType') != 'SelfActivate' or props.get('status') != client.PROVISIONED:
        return False
    ask = parse_ask(props.get('justification'))
    for_this_vm = ask is not None and _same_id(ask.vm_id, target.id)
    name = str(item.get('name') or '').lower()
    return short_id(name) in wanted or (for_this_vm and (name == exact or every_approval))


def _end_text(item):
    end = activation_end(item)
    return f'{end:%Y-%m-%dT%H:%M:%SZ}' if end else 'its end'
