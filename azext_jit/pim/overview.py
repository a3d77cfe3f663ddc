# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""`show`'s `approval` section for a VM whose note says its access goes through approval: the settings as PIM's
policy at the gate scope says them (not as the note or `enable` remembers them), who is eligible, the requests
waiting for a decision, and who can open access without approval (`bypass.py`), with a warning naming them.

Costs five or six reads, only for a VM with the note: role definitions and role assignments of the resource group
(and of the NSG's or NIC's group when it is another),
the policy assignment at the gate scope (its policy too when the assignment does not carry the effective rules),
the eligibilities and the schedule requests at the gate scope.
"""
from azext_jit.log import get_logger
from azext_jit.pim import asks, bypass, client, gate, roles

logger = get_logger(__name__)


def pending_requests(requests, role_id, scope, vm_id):
    """The PIM activations of the requester role at exactly `scope` waiting for approval that concern the VM: what
    they ask is read from their justification (`asks.py`); one that is not ours to read (filed by hand, or for the
    whole scope) is listed too, with `asked` None, since approving it opens the whole scope."""
    out = []
    for item in requests or ():
        props = (item or {}).get('properties') or {}
        if props.get('status') != client.PENDING or not gate.same_role(props.get('roleDefinitionId'), role_id) or \
                str(props.get('scope') or '').rstrip('/').lower() != scope.rstrip('/').lower():
            continue
        ask = asks.parse_ask(props.get('justification'))
        if ask is not None and ask.vm_id.rstrip('/').lower() != vm_id.rstrip('/').lower():
            continue   # another VM under the same JIT policy
        out.append({'id': item.get('name') or client.last_segment(item.get('id')),
                    'requester': props.get('principalId'), 'created': props.get('createdOn'),
                    'approvalId': client.last_segment(props.get('approvalId')) or None,
                    'asked': _asked(ask), 'justification': props.get('justification')})
    return sorted(out, key=lambda r: str(r['created'] or ''))


def _asked(ask):
    if ask is None:
        return None
    from azext_jit.durations import to_iso8601
    return {'ports': [f'{n}/{p}' for n, p in ask.ports], 'source': ask.source, 'duration': to_iso8601(ask.duration),
            'reason': ask.reason, 'description': ask.describe()}


def approval_view(azure, target, mode):
    """The section, read from Azure; a failure to read it is a warning and an `error` in the section, never the end
    of `show`."""
    from azure.core.exceptions import HttpResponseError
    from azext_jit.errors import JitError, explain_http_error
    view = {'required': True}
    try:
        _read(azure, target, mode, view)
    except (JitError, HttpResponseError) as ex:
        err = ex if isinstance(ex, JitError) else explain_http_error(ex)
        view['error'] = err.message
        logger.warning('Could not read the approval set-up of %s from PIM: %s', target.describe(), err.message)
    return view


def _read(azure, target, mode, view):
    group = f'/subscriptions/{azure.subscription_id}/resourceGroups/{target.resource_group}'
    scope = mode.approval_scope(target)
    view['scope'] = scope
    definitions = client.role_definitions(azure, group)
    role = next((d for d in definitions if str((d.get('properties') or {}).get('roleName', '')).lower() ==
                 roles.REQUESTER_ROLE.lower()), None)
    if role is None or scope is None:
        logger.warning("%s notes that access needs approval, but %s: approval is not set up. Run `az vm jit enable "
                       "-g %s -n %s --require-approval ...` again.", target.describe(),
                       f"the role '{roles.REQUESTER_ROLE}' does not exist" if role is None else
                       'the scope where Azure checks access cannot be found', target.resource_group, target.name)
    else:
        view.update(_settings(azure, target, scope, role['id']))
    openings = bypass.doors(target, mode, scope)
    assignments, seen = [], set()
    for where in [group] + [gate.group_of(s) for s, _ in openings]:   # an NSG or NIC may sit in another group
        if where.lower() not in seen:
            seen.add(where.lower())
            assignments += client.role_assignments(azure, where)
    found = bypass.principals(_once(assignments), definitions, openings)
    view['bypassApproval'] = found
    if found:
        logger.warning('%d principal(s) can open access on %s without approval: %s', len(found), target.describe(),
                       bypass.describe(found))


def _once(assignments):
    out, names = [], set()
    for item in assignments:
        key = str(item.get('id') or item.get('name')).lower()
        if key not in names:
            names.add(key)
            out.append(item)
    return out


def _settings(azure, target, scope, role_id):
    assignment = client.policy_assignment(azure, scope, role_id)
    props = (assignment or {}).get('properties') or {}
    rules = props.get('effectiveRules')
    if rules is None and props.get('policyId'):
        rules = ((client.policy(azure, props['policyId']) or {}).get('properties') or {}).get('rules') or []
    settings = gate.read_settings(rules or [])
    eligibilities = client.eligibilities_at(azure, scope)
    out = {'role': roles.REQUESTER_ROLE, 'roleDefinitionId': role_id, 'approvalRequired': settings['approvalRequired'],
           'approvers': settings['approvers'], 'approverGroups': settings['approverGroups'],
           'maximumActivation': settings['maximumActivation'],
           'justificationRequired': settings['justificationRequired'],
           'eligibleRequesters': gate.eligible_principals(eligibilities, role_id, scope),
           'eligibleAbove': gate.eligible_above(eligibilities, role_id, scope),
           'pendingRequests': pending_requests(client.schedule_requests(azure, scope, 'atScope()'), role_id, scope,
                                               target.id)}
    if out['eligibleAbove']:
        logger.warning("Eligible for '%s' above %s, where this VM's approval settings do not apply: %s. Their "
                       "activation there follows PIM's settings for the role at that scope: check them, or remove "
                       "those eligibilities.", roles.REQUESTER_ROLE, scope,
                       '; '.join(f"{e['principalId']} at {e['scope']}" for e in out['eligibleAbove']))
    if not settings['approvalRequired'] or not (settings['approvers'] or settings['approverGroups']):
        logger.warning("PIM does not require approval for '%s' at %s: activating it opens access on %s without "
                       "anyone's approval. Run `az vm jit enable -g %s -n %s --require-approval ...` again.",
                       roles.REQUESTER_ROLE, scope, target.describe(), target.resource_group, target.name)
    return out
