# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The Microsoft.Authorization calls approval makes: RBAC reads, PIM (2020-10-01) and PIM's approvals
(2021-01-01-preview). Thin: one function per call, JSON in and out, over `Azure.rest`.

Scopes are ARM ids without a trailing slash (`/subscriptions/S/resourceGroups/RG/providers/...`).
"""
from azext_jit.rest import new_name

RBAC_API = '2022-04-01'
PIM_API = '2020-10-01'
APPROVALS_API = '2021-01-01-preview'

AUTH = '/providers/Microsoft.Authorization'

# PIM request and schedule states (RoleAssignmentScheduleRequest.status)
PENDING = 'PendingApproval'
PROVISIONED = 'Provisioned'
GRANTED = 'Granted'
DENIED = 'Denied'
TIMED_OUT = 'TimedOut'
CANCELED = 'Canceled'
REVOKED = 'Revoked'
FAILED = 'Failed'
#: Statuses after which nothing more happens to a request.
FINAL = (PROVISIONED, DENIED, TIMED_OUT, CANCELED, REVOKED, FAILED, 'AdminDenied', 'Invalid')


def properties_of(item):
    """An ARM object's `properties` ({} when absent)."""
    return (item or {}).get('properties') or {}


def _scoped(scope, tail):
    return scope.rstrip('/') + AUTH + tail


def last_segment(text):
    """The GUID at the end of an id (`/providers/.../roleAssignmentApprovals/<guid>` or a bare GUID)."""
    return str(text or '').rstrip('/').rsplit('/', 1)[-1]


# -- RBAC ---------------------------------------------------------------------------------------------
def my_permissions(azure, scope):
    """The caller's effective permissions at `scope`: [{'actions': [...], 'notActions': [...]}, ...]."""
    return azure.rest.list(_scoped(scope, '/permissions'), RBAC_API)


def role_definitions(azure, scope, role_name=None):
    query = {'$filter': f"roleName eq '{role_name}'"} if role_name else {}
    return azure.rest.list(_scoped(scope, '/roleDefinitions'), RBAC_API, **query)


def role_definition(azure, role_id):
    """One role definition by its full id (as assignments and eligibilities name it)."""
    return azure.rest.get(role_id, RBAC_API)


def put_role_definition(azure, scope, name, body):
    return azure.rest.put(_scoped(scope, f'/roleDefinitions/{name}'), RBAC_API, body)


def role_assignments(azure, scope):
    """Role assignments at, above and below `scope` (active PIM activations included while they last)."""
    return azure.rest.list(_scoped(scope, '/roleAssignments'), RBAC_API)


# -- PIM: role management policies -------------------------------------------------------------------
def policy_assignment(azure, scope, role_id):
    """The assignment of the role management policy governing `role_id` at exactly `scope`, or None."""
    found = azure.rest.list(_scoped(scope, '/roleManagementPolicyAssignments'), PIM_API,
                            **{'$filter': f"roleDefinitionId eq '{role_id}'"})
    for item in found:
        props = item.get('properties') or {}
        if str(props.get('scope', '')).rstrip('/').lower() == scope.rstrip('/').lower():
            return item
    return None


def policy(azure, policy_id):
    """A role management policy by its full id (as a policy assignment names it)."""
    return azure.rest.get(policy_id, PIM_API)


def patch_policy(azure, policy_id, rules):
    return azure.rest.patch(policy_id, PIM_API, {'properties': {'rules': rules}})


# -- PIM: eligibility -------------------------------------------------------------------------------
def eligibility_instances(azure, scope, principal_id=None, mine=False):
    """Active eligibilities at (and above) `scope`: the caller's (`mine`), one principal's, or everyone's."""
    query = {}
    if mine:
        query['$filter'] = 'asTarget()'
    elif principal_id:
        query['$filter'] = f"principalId eq '{principal_id}'"
    return azure.rest.list(_scoped(scope, '/roleEligibilityScheduleInstances'), PIM_API, **query)


def eligibilities_at(azure, scope):
    """Everyone's active eligibilities at or above `scope` (`atScope()`)."""
    return azure.rest.list(_scoped(scope, '/roleEligibilityScheduleInstances'), PIM_API, **{'$filter': 'atScope()'})


def assign_eligibility(azure, scope, principal_id, role_id, justification, start):
    """Make `principal_id` eligible for `role_id` at `scope`, with no end (the policy must allow it)."""
    body = {'properties': {'principalId': principal_id, 'roleDefinitionId': role_id, 'requestType': 'AdminAssign',
                           'justification': justification,
                           'scheduleInfo': {'startDateTime': start, 'expiration': {'type': 'NoExpiration'}}}}
    return azure.rest.put(_scoped(scope, f'/roleEligibilityScheduleRequests/{new_name()}'), PIM_API, body)


# -- PIM: activation ----------------------------------------------------------------------------------
def activate(azure, scope, principal_id, role_id, justification, start, duration, eligibility_id=None):
    """File a SelfActivate request; returns the schedule request (status PendingApproval or Provisioned)."""
    props = {'principalId': principal_id, 'roleDefinitionId': role_id, 'requestType': 'SelfActivate',
             'justification': justification,
             'scheduleInfo': {'startDateTime': start, 'expiration': {'type': 'AfterDuration', 'duration': duration}}}
    if eligibility_id:
        props['linkedRoleEligibilityScheduleId'] = eligibility_id
    return azure.rest.put(_scoped(scope, f'/roleAssignmentScheduleRequests/{new_name()}'), PIM_API,
                          {'properties': props})


def deactivate(azure, scope, principal_id, role_id, justification, admin=False):
    """End an activation now: the caller's own (SelfDeactivate) or, as an administrator, anyone's (AdminRemove)."""
    props = {'principalId': principal_id, 'roleDefinitionId': role_id,
             'requestType': 'AdminRemove' if admin else 'SelfDeactivate', 'justification': justification}
    return azure.rest.put(_scoped(scope, f'/roleAssignmentScheduleRequests/{new_name()}'), PIM_API,
                          {'properties': props})


def schedule_request(azure, scope, name):
    return azure.rest.get(_scoped(scope, f'/roleAssignmentScheduleRequests/{name}'), PIM_API)


def schedule_requests(azure, scope, as_filter=None):
    """Schedule requests at `scope`: `as_filter` is 'asRequestor()', 'asApprover()', 'asTarget()' or None."""
    query = {'$filter': as_filter} if as_filter else {}
    return azure.rest.list(_scoped(scope, '/roleAssignmentScheduleRequests'), PIM_API, **query)


def cancel(azure, scope, name):
    return azure.rest.post(_scoped(scope, f'/roleAssignmentScheduleRequests/{name}/cancel'), PIM_API)


def assignment_instances(azure, scope, mine=False):
    query = {'$filter': 'asTarget()'} if mine else {}
    return azure.rest.list(_scoped(scope, '/roleAssignmentScheduleInstances'), PIM_API, **query)


# -- PIM: approvals -------------------------------------------------------------------------------------
def approval(azure, approval_id):
    """An approval with its steps (`properties.steps`), by id or GUID."""
    return azure.rest.get(f'{AUTH}/roleAssignmentApprovals/{last_segment(approval_id)}', APPROVALS_API)


def decide(azure, approval_id, step_id, approve, justification):
    """Record the caller's decision on one step of an approval."""
    body = {'properties': {'reviewResult': 'Approve' if approve else 'Deny', 'justification': justification}}
    return azure.rest.put(f'{AUTH}/roleAssignmentApprovals/{last_segment(approval_id)}/steps/{step_id}',
                          APPROVALS_API, body)
