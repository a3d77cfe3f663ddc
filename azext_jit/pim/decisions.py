# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""`approve`, `deny` and `list --status pending`: an approver's side of a request under approval.

Every decision goes through PIM's approval API (`roleAssignmentApprovals` and their steps): PIM, not the
extension, decides who may approve (a designated approver, directly or through a group, never the requester) and
refuses a decision on a request already decided or expired. The extension only finds the request among those
waiting for the caller (`asApprover()`), shows what it asks, asks for confirmation, and puts PIM's refusals in
one line each.
"""
from azext_jit.errors import BadInput, NotAllowed, NotFound, NotPossible, UsageError, error_code, explain_http_error
from azext_jit.log import get_logger
from azext_jit.pim import client
from azext_jit.pim.asks import parse_ask

logger = get_logger(__name__)

APPROVE, DENY = 'Approve', 'Deny'
_OPEN_STEP = ('NotStarted', 'InProgress', 'Initializing', 'Escalating', None, '')


_props = client.properties_of


def subscription_scope(azure):
    return f'/subscriptions/{azure.subscription_id}'


def matches(item, wanted):
    """Whether schedule request `item` is the one named `wanted` (its name, or its approval's id)."""
    wanted = client.last_segment(wanted).strip().lower()
    return bool(wanted) and wanted in (str(item.get('name') or '').lower(),
                                       client.last_segment(_props(item).get('approvalId')).lower())


def requestor_of(item):
    principal = (_props(item).get('expandedProperties') or {}).get('principal') or {}
    return principal.get('email') or principal.get('displayName') or _props(item).get('principalId')


def summary(item):
    """What a request asks, as an approver reads it (the fields of `approve`/`deny`/`list --status pending`)."""
    from azext_jit.durations import to_iso8601
    props = _props(item)
    ask = parse_ask(props.get('justification'))
    expiration = (props.get('scheduleInfo') or {}).get('expiration') or {}
    out = {'requestId': item.get('name'), 'approvalId': client.last_segment(props.get('approvalId')) or None,
           'requestor': requestor_of(item), 'scope': props.get('scope'), 'createdOn': props.get('createdOn'),
           'status': props.get('status'),
           # what approving really grants: the requester role at this scope for this long, whatever the text says
           'activation': {'scope': props.get('scope'),
                          'duration': expiration.get('duration') or expiration.get('endDateTime')}}
    if ask is None:   # not filed by `az vm jit request`: show PIM's own words
        out.update({'vm': None, 'resourceGroup': None, 'ports': None, 'source': None, 'duration': None,
                    'justification': props.get('justification')})
        return out
    parts = ask.vm_id.rstrip('/').split('/')
    out.update({'vm': parts[-1], 'resourceGroup': parts[4] if len(parts) > 4 else None, 'vmId': ask.vm_id,
                'ports': [f'{n}/{p}' for n, p in ask.ports], 'source': ask.source or 'the requester’s own IP',
                'duration': to_iso8601(ask.duration), 'justification': ask.reason or None})
    if not _lasts(expiration, ask.duration):
        out['mismatch'] = (f"the PIM activation itself lasts {out['activation']['duration']}, not the "
                           f"{out['duration']} its justification says")
    return out


def _lasts(expiration, duration):
    """Whether the activation's own duration is the one the justification claims (an end date cannot be compared:
    taken as a mismatch)."""
    from azext_jit.durations import parse_duration
    from azext_jit.errors import JitError
    try:
        return parse_duration(expiration.get('duration')) == duration
    except (JitError, ValueError, TypeError):
        return False


def describe(info):
    granted = info.get('activation') or {}
    grants = (f"; approving activates the requester role at {granted.get('scope')} for {granted.get('duration')}"
              f"{' (WARNING: ' + info['mismatch'] + ')' if info.get('mismatch') else ''}")
    if info.get('vm'):
        return (f"{', '.join(info['ports'])} from {info['source']} for {info['duration']} on VM {info['vm']} "
                f"(resource group {info['resourceGroup']}), asked by {info['requestor']}"
                f"{'; reason: ' + info['justification'] if info.get('justification') else ''}{grants}")
    return (f"{info.get('justification') or '(no justification)'} at {info.get('scope')}, asked by "
            f"{info['requestor']}{grants}")


def find_waiting(azure, request_id):
    """The schedule request `request_id` among those the caller is an approver of, or else among the caller's own
    (PIM itself refuses a requester's decision on their own request: the extension does not judge it)."""
    scope = subscription_scope(azure)
    for filter_ in ('asApprover()', 'asRequestor()'):
        for item in client.schedule_requests(azure, scope, filter_):
            if matches(item, request_id):
                return item
    raise NotFound(f"No request '{request_id}' waits for your decision: it does not exist, or you are not one of its "
                   'approvers.', 'See the requests waiting for you with `az vm jit list --status pending`.')


def confirm(verb, info, yes):
    if yes:
        return
    from knack.prompting import NoTTYException, prompt_y_n
    try:
        agreed = prompt_y_n(f'{verb} request {info["requestId"]}: {describe(info)}?')
    except NoTTYException:
        raise UsageError(f'{verb} needs a confirmation, and there is no terminal to ask on.',
                         f'Pass --yes to {verb.lower()} request {info["requestId"]} without asking.') from None
    if not agreed:
        raise UsageError('Nothing was decided.', 'Run again and answer y, or pass --yes.')


def my_step(approval):
    """The approval's step to decide: the one waiting for the caller's review, else any step still open (PIM then
    says why the caller may not decide it), else None (decided or expired)."""
    steps = _props(approval).get('steps') or []
    still_open = [s for s in steps if str(_step(s).get('reviewResult') or 'NotReviewed') == 'NotReviewed'
                  and _step(s).get('status') in _OPEN_STEP]
    return next((s for s in still_open if _step(s).get('assignedToMe')), still_open[0] if still_open else None)


def _step(step):
    """A step's fields, whether wrapped in `properties` (as the API answers) or not."""
    return (step or {}).get('properties') or step or {}


_REFUSALS = {
    'SelfApprovalNotAllowed': (NotAllowed, 'you asked for it yourself, and PIM never lets a requester approve or deny '
                                           'their own request', 'One of its designated approvers must decide on it.'),
    'ApproverNotAuthorized': (NotAllowed, 'you are not one of its designated approvers (directly or through a group)',
                              'One of its designated approvers must decide on it.'),
    'ApprovalAlreadyCompleted': (NotPossible, 'it has already been decided (by another approver, or cancelled)',
                                 'See `az vm jit list --status pending` for the requests still waiting.'),
    'ApprovalExpired': (NotPossible, 'it expired before anyone decided on it (its window passed, or 24 hours went by)',
                        'The requester must ask again with `az vm jit request`.'),
    'JustificationRequired': (BadInput, 'the approval policy needs your reason', 'Pass --reason "<why>".'),
}


def refused(ex, name):
    """PIM's refusal of a decision, in one line."""
    code, err = error_code(ex), explain_http_error(ex)
    if code in _REFUSALS:
        kind, why, fix = _REFUSALS[code]
        return kind(f'PIM refused your decision on request {name}: {why}.', fix)
    return type(err)(f'PIM refused your decision on request {name}: {err.message}',
                     err.recommendation or 'See `az vm jit list --status pending`.')


def decide(cmd, request_id, approve, reason, yes):
    """`approve` / `deny`: find the request, show it, confirm, then record the decision on the caller's step."""
    from azure.core.exceptions import HttpResponseError
    from azext_jit.arm import Azure
    if request_id is None or not request_id.strip():
        raise BadInput('--request-id is empty: name the request to decide on.',
                       'See the requests waiting for you with `az vm jit list --status pending`.')
    reason = ' '.join(str(reason or '').split())
    if not approve and not reason:
        raise BadInput('--reason is empty: a denial tells the requester why.', 'Pass --reason "<why>".')
    verb = APPROVE if approve else DENY
    azure = Azure.from_cli(cmd)
    item = find_waiting(azure, request_id.strip())
    info = summary(item)
    name = item.get('name')
    approval_id = _props(item).get('approvalId')
    if not approval_id or _props(item).get('status') != client.PENDING:
        raise NotPossible(f'Request {name} is not waiting for approval (status {_props(item).get("status")}).',
                          'See the requests waiting for you with `az vm jit list --status pending`.')
    if info.get('mismatch'):
        logger.warning('Request %s: %s. Approving grants what PIM holds, not what the text says.', name,
                       info['mismatch'])
    confirm(verb, info, yes)
    try:
        step = my_step(client.approval(azure, approval_id))
        if step is None:
            raise NotPossible(f'Request {name} cannot be decided any more: it was already decided, or has expired '
                              f'(status {_props(item).get("status")}).', 'See `az vm jit list --status pending`.')
        client.decide(azure, approval_id, step.get('name') or step.get('id', '').rsplit('/', 1)[-1], approve,
                      reason or f'Approved with az vm jit by {requestor_name(cmd)}')
    except HttpResponseError as ex:
        raise refused(ex, name) from None
    info.pop('status', None)
    info.update({'decision': verb, 'reason': reason or None})
    return info


def requestor_name(cmd):
    from azext_jit.caller import whoami
    return whoami(cmd)


# -- list --status pending ---------------------------------------------------------------------------------
def pending_by_vm(azure):
    """Requests under approval still pending that wait for the caller's decision or are the caller's own, as
    `list` rows, by VM id (lower case). Two calls, whatever the number of VMs."""
    from azure.core.exceptions import HttpResponseError
    scope = subscription_scope(azure)
    rows = {}
    for filter_, waiting in (('asApprover()', 'you'), ('asRequestor()', 'approver')):
        try:
            found = client.schedule_requests(azure, scope, filter_)
        except HttpResponseError as ex:   # no PIM here (no licence), or not readable: the other requests still show
            logger.warning('Requests under approval are not listed: PIM did not answer (%s).',
                           explain_http_error(ex).message)
            return rows
        for item in found:
            props = _props(item)
            ask = parse_ask(props.get('justification'))
            if props.get('status') != client.PENDING or ask is None:
                continue
            key = ask.vm_id.rstrip('/').lower()
            if any(r['id'] == item.get('name') for r in rows.get(key, [])):
                continue
            rows.setdefault(key, []).append(pending_row(item, ask, waiting))
    return rows


def pending_row(item, ask, waiting):
    from azext_jit.durations import to_iso8601
    parts = ask.vm_id.rstrip('/').split('/')
    return {'id': item.get('name'), 'requestId': item.get('name'), 'vm': parts[-1],
            'resourceGroup': parts[4] if len(parts) > 4 else None, 'status': 'pending',
            'requestor': requestor_of(item), 'justification': ask.reason or None,
            'startTime': _props(item).get('createdOn'), 'endTime': None, 'duration': to_iso8601(ask.duration),
            'waitingFor': waiting,
            'ports': [{'port': n, 'protocol': p, 'source': ask.source, 'endTime': None, 'status': 'pending',
                       'statusReason': 'PendingApproval', 'mappedPort': None} for n, p in ask.ports]}
