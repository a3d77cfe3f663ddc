# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""PIM's part of the audit trail: requests under approval, their decisions, and approval set-up.

The Activity Log says who filed a PIM request at a gate scope, and when (`roleAssignmentScheduleRequests/write`);
PIM's own records say what it asked (the justification `az vm jit: ...`, see asks.py), its status and its
approval. PIM shows an approval (who decided, when, why) only to its approvers and its requester: for anyone else
the decision is known only as the request's status, and `approverVisible` says so.
"""
import datetime as dt
import re

from azext_jit.audit import happenings as h
from azext_jit.durations import MAX_DURATION
from azext_jit.log import get_logger
from azext_jit.pim import client
from azext_jit.pim.asks import parse_ask

logger = get_logger(__name__)

REQUEST_WRITE = 'microsoft.authorization/roleassignmentschedulerequests/write'
REQUEST_CANCEL = 'microsoft.authorization/roleassignmentschedulerequests/cancel/action'
SETUP = ('microsoft.authorization/rolemanagementpolicies/write',
         'microsoft.authorization/roleeligibilityschedulerequests/write')
_REQUEST_RE = re.compile(r'^(?P<scope>/.+?)/providers/Microsoft\.Authorization/roleAssignmentScheduleRequests/'
                         r'(?P<name>[0-9a-f-]{36})(?:/.*)?$', re.I)
_SETUP_RE = re.compile(r'^(?P<scope>/.+?)/providers/Microsoft\.Authorization/', re.I)
MAX_APPROVALS = 200    # approvals read per command (one call each); more are shown by status only


def trail(event):
    """Happenings of PIM's events at any scope (reading.py keeps those at the scope's gates)."""
    op = h.operation(event)
    if not h.ended(event):
        return []
    rid = h.resource_id(event)
    if op in (REQUEST_WRITE, REQUEST_CANCEL):
        match = _REQUEST_RE.match(rid)
        if not match:
            return []
        name = match.group('name').lower()
        return [h.base(event, 'pim-request' if op == REQUEST_WRITE else 'cancel', key=('pim', name),
                       extra={'name': name, 'scope': match.group('scope')})]
    if op in SETUP:
        match = _SETUP_RE.match(rid)
        return [h.base(event, 'approval-setup', extra={'scope': match.group('scope')})] if match else []
    return []


def _reviewer(step):
    """How the log names who decided: a user by UPN (as the Activity Log names users); anyone else by object id,
    which PIM gives and which is unique (a display name is not: anyone may name an application "approver")."""
    who = step.get('reviewedBy') or {}
    return h.one_line(who.get('userPrincipalName') or who.get('principalId') or who.get('principalName'), 256)


def decisions(azure, approval_id, name):
    """The decisions PIM shows the caller on one approval: [Happening], or None when PIM does not show it."""
    from azure.core.exceptions import HttpResponseError
    try:
        approval = client.approval(azure, approval_id)
    except HttpResponseError as ex:
        if ex.status_code in (403, 404):
            return None
        raise
    found = []
    for step in (client.properties_of(approval).get('steps') or [])[:16]:
        props = client.properties_of(step)
        result = props.get('reviewResult')
        if result not in ('Approve', 'Deny') or not props.get('reviewedDateTime'):
            continue
        try:
            from azext_jit.times import parse_time
            at = parse_time(str(props['reviewedDateTime']))
        except (ValueError, OverflowError):
            continue
        found.append(h.Happening(time=at, action='approve' if result == 'Approve' else 'deny',
                                 caller=_reviewer(props), key=('pim', name),
                                 extra={'reason': h.one_line(props.get('justification')) or None,
                                        'approverName': h.one_line((props.get('reviewedBy') or {}).get(
                                            'principalName'), 256)}))
    return found


def _asked(happening, record, mode):
    """The `ask` happening of a PIM request, with what its record says (when PIM shows the record)."""
    from azext_jit.times import parse_time
    props = client.properties_of(record) if record else {}
    ask = parse_ask(props.get('justification')) if props.get('requestType') == 'SelfActivate' else None
    start = None
    try:
        start = parse_time(str((props.get('scheduleInfo') or {}).get('startDateTime')))
    except (ValueError, OverflowError):
        pass
    if ask and not dt.timedelta(0) < ask.duration <= MAX_DURATION or start and start.year > 9000:
        start = None    # no end to show: nothing JIT files asks for longer than any policy allows, or that late
    return h.Happening(time=happening.time, action='ask', caller=happening.caller, mode=mode,
                       result=happening.result,
                       vm_id=ask.vm_id if ask else None, key=happening.key,
                       ports=tuple(f'{n}/{p}' for n, p in ask.ports) if ask else (),
                       source=h.one_line(ask.source, 64) if ask and ask.source else None,
                       end=start + ask.duration if ask and start else None,
                       justification=h.one_line(ask.reason) or None if ask else None,
                       correlation_id=happening.correlation_id,
                       extra={'status': props.get('status'), 'approvalId': props.get('approvalId'),
                              'requestType': props.get('requestType')})


def explain(azure, found, groups, modes_by_scope):
    """`found` [(Happening, home)] with PIM's requests explained: each `pim-request` becomes an `ask` with what PIM
    recorded, plus the decisions PIM shows the caller. One list call per resource group in `groups` (only when the
    log holds PIM requests), one read per approval."""
    from azure.core.exceptions import HttpResponseError
    if not any(hp.action == 'pim-request' for hp, _ in found):
        return found
    records = {}
    for group in groups:
        scope = f'/subscriptions/{azure.subscription_id}/resourceGroups/{group}'
        try:
            for item in client.schedule_requests(azure, scope):
                records[client.last_segment(item.get('name') or item.get('id') or '').lower()] = item
        except HttpResponseError as ex:
            logger.warning("PIM's requests in resource group %s could not be read (%s): requests under approval are "
                           "shown without what they asked or who decided.", group, ex.status_code)
    out, read = [], 0
    for happening, home in found:
        if happening.action != 'pim-request':
            out.append((happening, home))
            continue
        record = records.get(happening.extra['name'])
        props = client.properties_of(record) if record else {}
        if record is not None and props.get('requestType') not in ('SelfActivate', None):
            continue   # a deactivation: the revoke is told by the rules it closed
        asked = _asked(happening, record, modes_by_scope.get(gate_of(happening)))
        at_gate = bool((happening.extra or {}).get('at_gate'))
        if asked.vm_id is None and record is not None:
            if not at_gate:
                continue   # not a JIT request: someone's other activation elsewhere in the group
            # an activation at a VM's gate that az vm jit did not file: it grants the same permission; shown as is
            asked.justification = h.one_line(props.get('justification')) or None
            asked.extra['note'] = 'not filed by az vm jit: what it asked is its justification, as recorded'
        asked.extra['at_gate'] = at_gate
        out.append((asked, home))
        if asked.extra.get('approvalId'):
            made = decisions(azure, asked.extra['approvalId'], happening.extra['name']) if read < MAX_APPROVALS \
                else None
            read += 1
            asked.extra['approverVisible'] = made is not None
            out += [(d, home) for d in made or []]
    return out


def gate_of(happening):
    """The scope a PIM happening is at (lower case), or None."""
    return str((happening.extra or {}).get('scope') or '').rstrip('/').lower() or None
