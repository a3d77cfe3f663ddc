# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Microsoft.Authorization: Azure RBAC (permissions, role definitions, role assignments) and Entra PIM for Azure
resources (role management policies, eligibility and activation requests, approvals).

Served at any `{scope}` (subscription, resource group, resource), api-versions 2022-04-01 for RBAC (role
definitions also 2022-05-01-preview, which `az role definition` sends), 2020-10-01 for PIM and 2021-01-01-preview
for approvals (approvals and role definitions also at tenant level, `/providers/Microsoft.Authorization/...`).
Request bodies (role definition PUT, eligibility and activation requests, policy PATCH, approval decisions) are
checked against the copied swagger (`schema.SPEC_FILES`); any other api-version is a 400 NoRegisteredProviderFound.

RBAC is checked as ARM does, with Microsoft.Authorization actions (`roleDefinitions/write`,
`roleAssignments/read`, `roleManagementPolicies/write`, `roleEligibilityScheduleRequests/write`,
`roleAssignments/delete` for AdminRemove...). PIM checks the rest itself, with no RBAC action: a SelfActivate
needs an eligibility of the caller (directly or through a group) for the role at or above the scope; an approval
decision needs the caller to be a designated approver (directly or through a group) and never the requester;
reading one's own requests and approvals needs nothing.

PIM's rules, as the stand-in enforces them (contract `pim-contract.md`, Azure facts §7):
- One role management policy per role per scope, created with Azure's defaults the first time it is asked for:
  approval not required, activation at most PT8H, justification required, eligibility expiring (P365D).
- SelfActivate: `principalId` must be the caller; the caller must be eligible; no live activation of the same
  principal, role and scope (`RoleAssignmentExists`); no pending request of theirs for it
  (`PendingRoleAssignmentRequest`); justification when the policy's Enablement rule lists Justification and a
  duration within its maximum (`RoleAssignmentRequestPolicyValidationFailed` naming the rules that failed). With
  approval required the request is `PendingApproval` with an `approvalId`; else `Provisioned` with an active role
  assignment until start + duration.
- The clock (`world.clock`): a pending request whose window (start + duration) has passed, or that is 24 h old,
  is `TimedOut` and its approval step `Expired`; an approved activation lasts from the decision to start +
  duration; `world.is_authorized` honours an assignment only while it lasts.
- Decisions: Approve or Deny by a designated approver, once; an approval already decided or expired is refused.
- SelfDeactivate ends the caller's activation (request status `Revoked`), but not in its first five minutes
  (400 ActiveDurationTooShort; the message wording is the stand-in's); AdminRemove (needs
  `roleAssignments/delete`) ends anyone's; cancel ends one's own pending request (`Canceled`).
- Without a licence (`world.pim_licensed = False`) every PIM and approval endpoint answers 400
  AadPremiumLicenseRequired.

*Unconfirmed* (no spec, recording or documentation found; the harsher choice is made):
- Codes for a refused decision: the requester deciding their own request (even when designated) 400
  `SelfApprovalNotAllowed`, a caller who is not a designated approver 403 `ApproverNotAuthorized`, an approval
  already decided (or canceled) 400 `ApprovalAlreadyCompleted`, an expired one 400 `ApprovalExpired`, a
  reviewResult other than Approve/Deny 400 `InvalidReviewResult`, no approver justification 400
  `JustificationRequired`; reading an approval one neither approves nor requested 404
  `RoleAssignmentApprovalNotFound`.
- The approval step body: the swagger declares `RoleAssignmentApprovalStepProperties` itself as the body, but the
  spec's own examples (and the contract) wrap it as `{"properties": {...}}`; only the wrapped form is accepted.
- An approver's justification is required when the approval stage says `isApproverJustificationRequired` (Azure's
  default: true).
- A SelfActivate whose `principalId` is not the caller: 400 `InvalidPrincipalId`; a request name that is not a
  GUID: 400 `InvalidRoleAssignmentScheduleRequestName`; reusing a request name: 400 `RoleAssignmentRequestExists`;
  an unknown `$filter`: 400 `BadRequest`; a PATCH naming a rule the policy lacks: 400 `InvalidRoleManagementPolicyRule`;
  approval required with no approver: 400 `RoleManagementPolicyApprovalRuleMissingApprovers`; an approver id the
  tenant does not know: 400 `PrincipalNotFound`.
- Activity Log: an activation's `roleAssignments/write` names the requester as caller (Azure may name the PIM
  service); a decision is recorded as `Microsoft.Authorization/roleAssignmentApprovals/steps/write` by the approver.
- An activation at a scope below the eligibility's (a child resource) is held to the role's settings at both the
  eligibility's scope and its own, the stricter of each (which one real PIM applies is not documented).
- Service principals may be eligible and activate (the stand-in's identities all sign in as service principals,
  whatever their `kind`; Azure's portal offers PIM to users and groups).
- Activity Log events of PIM requests, policy PATCHes, eligibility requests, role definition writes and approval
  decisions carry the client's request body as `properties.requestbody` (world.py `record_event`).
"""
import datetime as dt
import re
import uuid

from .server import ArmError, Response, authorization_failed, paged, route
from .world import RoleDefinition, iso, scope_covers, utc

RBAC_API_VERSIONS = ('2022-04-01',)
# `az role definition ...` (azure-cli 2.6x+) sends 2022-05-01-preview, which Azure serves; its bodies differ from
# 2022-04-01 only by read-only fields, so they are checked against the 2022-04-01 swagger.
ROLE_DEFINITION_API_VERSIONS = ('2022-04-01', '2022-05-01-preview')
PIM_API_VERSIONS = ('2020-10-01',)
APPROVAL_API_VERSIONS = ('2021-01-01-preview',)
AUTH = 'Microsoft.Authorization'
GUID = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$', re.I)
PENDING_LIFETIME = dt.timedelta(hours=24)
# PIM refuses to deactivate one's own activation in its first five minutes (ActiveDurationTooShort, as PIM's
# documentation says); an administrator's AdminRemove has no such floor.
MIN_ACTIVE_BEFORE_DEACTIVATION = dt.timedelta(minutes=5)
DEFAULT_MAX_ACTIVATION = 'PT8H'


# -- state -------------------------------------------------------------------------------------------------
def state(world):
    """PIM's state in `world.extensions['pim']`: policies {(scope, role guid): policy}, eligibilities [dict],
    eligibility_requests {name: dict}, requests {name: dict} (assignment schedule requests), approvals {id: dict}."""
    with world.lock:
        return world.extensions.setdefault('pim', {'policies': {}, 'eligibilities': [], 'eligibility_requests': {},
                                                   'requests': {}, 'approvals': {}})


def scope_of(req):
    """The `{scope}` of the path ('/' for the tenant-level forms)."""
    return '/' + (req.params.get('scope') or '').strip('/')


def _norm(scope):
    return scope.rstrip('/').lower()


def parse_iso_duration(text):
    """An ISO 8601 duration (P1D, PT8H, PT1H30M, P1DT2H) as a timedelta; ValueError when it is none."""
    match = re.fullmatch(r'P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?', (text or '').strip(), re.I)
    if not match or not any(match.groups()) or (text.upper().endswith('T')):
        raise ValueError('not an ISO 8601 duration: {!r}'.format(text))
    days, hours, minutes, seconds = match.groups()
    return dt.timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0),
                        seconds=float(seconds or 0))


def _check_version(req, versions):
    if req.api_version not in versions:
        raise ArmError(400, 'NoRegisteredProviderFound',
                       "No registered resource provider found for location 'global' and API version '{}' for type "
                       "'{}'. The supported api-versions are '{}'.".format(
                           req.api_version, req.path.split('/providers/')[-1].split('/')[1] if '/providers/' in req.path
                           else 'unknown', ', '.join(versions)))


def _licensed(req):
    if not req.world.pim_licensed:
        raise ArmError(400, 'AadPremiumLicenseRequired', 'The tenant needs an AAD Premium 2 license.')


def _pim(req, versions=PIM_API_VERSIONS):
    _check_version(req, versions)
    _licensed(req)
    tick(req.world)


def _principal_ids(world, object_id):
    """The caller's object id and those of the groups they are a member of."""
    return {object_id} | world.groups_of(object_id)


def _principal_type(world, object_id):
    if object_id in world.groups:
        return 'Group'
    ident = world.identity_by_object_id(object_id)
    return 'ServicePrincipal' if ident and ident.kind != 'user' else 'User'


def _filter_terms(text):
    """The terms of a PIM `$filter` joined by `and`: [('asTarget', None)], [('principalId', 'x')]..."""
    terms = []
    for part in [p.strip() for p in re.split(r'\s+and\s+', text or '', flags=re.I) if p.strip()]:
        match = re.fullmatch(r'(atScope|asTarget|asRequestor|asApprover|asCreatedBy)\(\)', part, re.I)
        if match:
            terms.append((match.group(1).lower(), None))
            continue
        match = re.fullmatch(r"(principalId|roleDefinitionId|status|roleName|type|assignedTo)\s+eq\s+'([^']*)'",
                             part, re.I)
        if match:
            terms.append((match.group(1).lower(), match.group(2)))
            continue
        raise ArmError(400, 'BadRequest', "The $filter '{}' is not supported.".format(text))
    return terms


# -- role definitions (2022-04-01) -------------------------------------------------------------------------
def _role_def_body(world, role):
    assignable = role.assignable_scopes if role.custom else ['/']
    return {'id': world.role_definition_id(role), 'name': role.role_id,
            'type': 'Microsoft.Authorization/roleDefinitions',
            'properties': {'roleName': role.name, 'type': 'CustomRole' if role.custom else 'BuiltInRole',
                           'description': role.description,
                           'assignableScopes': list(assignable),
                           'permissions': [{'actions': list(role.actions), 'notActions': list(role.not_actions),
                                            'dataActions': list(role.data_actions),
                                            'notDataActions': list(role.not_data_actions)}]}}


def _visible_at(role, scope):
    """Built-in roles are everywhere; a custom role where one of its assignable scopes covers, or lies below,
    the scope asked about."""
    return not role.custom or any(scope_covers(s, scope) or scope_covers(scope, s) for s in role.assignable_scopes)


@route('GET', '/{scope*}/providers/Microsoft.Authorization/roleDefinitions',
       action=AUTH + '/roleDefinitions/read', scope_strip=3)
def list_role_definitions(req):
    _check_version(req, ROLE_DEFINITION_API_VERSIONS)
    scope = scope_of(req)
    wanted = None
    text = req.arg('$filter') or ''
    if text:
        match = re.fullmatch(r"\s*roleName\s+eq\s+'([^']*)'\s*", text, re.I)
        if not match:
            match_type = re.fullmatch(r"\s*type\s+eq\s+'(BuiltInRole|CustomRole)'\s*", text, re.I)
            if not match_type:
                raise ArmError(400, 'BadRequest', "The $filter '{}' is not supported.".format(text))
            kind = match_type.group(1).lower() == 'customrole'
            roles = [r for r in req.world.roles.values() if r.custom == kind and _visible_at(r, scope)]
            return paged(req, [_role_def_body(req.world, r) for r in roles])
        wanted = match.group(1).lower()
    roles = [r for r in req.world.roles.values()
             if _visible_at(r, scope) and (wanted is None or r.name.lower() == wanted)]
    return paged(req, [_role_def_body(req.world, r) for r in sorted(roles, key=lambda r: r.name.lower())])


@route('GET', '/{scope*}/providers/Microsoft.Authorization/roleDefinitions/{guid}',
       action=AUTH + '/roleDefinitions/read', scope_strip=4)
def get_role_definition(req):
    _check_version(req, ROLE_DEFINITION_API_VERSIONS)
    role = req.world.role_by_id(req.params['guid'])
    if role is None or not _visible_at(role, scope_of(req)):
        raise ArmError(404, 'RoleDefinitionDoesNotExist', 'The specified role definition with ID \'{}\' does not '
                                                          'exist.'.format(req.params['guid']))
    return Response(200, _role_def_body(req.world, role))


@route('GET', '/providers/Microsoft.Authorization/roleDefinitions/{guid}')
def get_role_definition_by_tenant_id(req):
    """A role definition by its tenant-level id (`/providers/Microsoft.Authorization/roleDefinitions/{guid}`, the
    form RoleDefinitions_GetById accepts). Any signed-in caller may read it (*unconfirmed*: Azure lets every user
    read role definitions; no RBAC check is made)."""
    _check_version(req, ROLE_DEFINITION_API_VERSIONS)
    role = req.world.role_by_id(req.params['guid'])
    if role is None:
        raise ArmError(404, 'RoleDefinitionDoesNotExist', 'The specified role definition with ID \'{}\' does not '
                                                          'exist.'.format(req.params['guid']))
    return Response(200, _role_def_body(req.world, role))


@route('PUT', '/{scope*}/providers/Microsoft.Authorization/roleDefinitions/{guid}',
       action=AUTH + '/roleDefinitions/write', scope_strip=4)
def put_role_definition(req):
    """A custom role: its name unique in the tenant (409 RoleDefinitionWithSameNameExists), roleDefinitions/write
    needed at each assignable scope, its GUID the path's (a built-in role cannot be changed)."""
    _check_version(req, ROLE_DEFINITION_API_VERSIONS)
    world, guid = req.world, req.params['guid']
    if not GUID.match(guid):
        raise ArmError(400, 'InvalidRoleDefinitionId', 'The role definition ID \'{}\' is not valid.'.format(guid))
    body = req.body or {}
    req.validate('authorization-roledefinitions', 'RoleDefinitions_CreateOrUpdate', body)
    props = body.get('properties') or {}
    name = (props.get('roleName') or '').strip()
    scopes = props.get('assignableScopes') or []
    perms = props.get('permissions') or []
    if not name:
        raise ArmError(400, 'RoleDefinitionNameNullOrEmpty', 'The role definition name cannot be null or empty.')
    if not scopes:
        raise ArmError(400, 'MissingAssignableScopes', 'The role definition must have at least one assignable scope.')
    if not perms:
        raise ArmError(400, 'RoleDefinitionHasNoPermissions', 'The role definition must have permissions.')
    for scope in scopes:
        if not req.can(AUTH + '/roleDefinitions/write', scope):
            raise authorization_failed(req.caller, AUTH + '/roleDefinitions/write', scope)
    with world.lock:
        existing = world.role_by_id(guid)
        if existing is not None and not existing.custom:
            raise ArmError(400, 'RoleDefinitionIsBuiltIn', 'A built-in role definition cannot be changed.')
        clash = world.roles.get(name.lower())
        if clash is not None and clash is not existing:
            raise ArmError(409, 'RoleDefinitionWithSameNameExists',
                           "A custom role with the same name '{}' already exists in this directory. Use a different "
                           "name.".format(name))
        role = RoleDefinition(name, [a for p in perms for a in p.get('actions') or []],
                              [a for p in perms for a in p.get('notActions') or []], role_id=guid.lower(),
                              custom=True, description=props.get('description') or '',
                              assignable_scopes=[s.rstrip('/') for s in scopes],
                              data_actions=[a for p in perms for a in p.get('dataActions') or []],
                              not_data_actions=[a for p in perms for a in p.get('notDataActions') or []])
        if existing is not None:
            world.roles.pop(existing.name.lower(), None)
            for assignment in world.assignments:   # assignments name their role; keep them on the renamed one
                if assignment.role.lower() == existing.name.lower():
                    assignment.role = name
        world.roles[name.lower()] = role
        world.record_event(req.caller, AUTH + '/roleDefinitions/write', scope_of(req) + '/providers/' + AUTH +
                           '/roleDefinitions/' + guid, request_body=req.raw_body)
    return Response(201, _role_def_body(world, role))   # the swagger declares 201 only, for create and update


# -- permissions and role assignments (2022-04-01) ---------------------------------------------------------
@route('GET', '/{scope*}/providers/Microsoft.Authorization/permissions')
def list_permissions(req):
    """The caller's permissions at the scope: one entry per live role assignment at or above it. Needs no action:
    anyone may ask what they themselves can do."""
    _check_version(req, RBAC_API_VERSIONS)
    scope, world = scope_of(req), req.world
    entries = []
    mine = _principal_ids(world, req.caller.object_id)
    for assignment in world.live_assignments():
        if assignment.principal_id in mine and scope_covers(assignment.scope, scope):
            role = world.roles[assignment.role.lower()]
            entries.append({'actions': list(role.actions), 'notActions': list(role.not_actions),
                            'dataActions': list(role.data_actions), 'notDataActions': list(role.not_data_actions)})
    return paged(req, entries)


def _assignment_body(world, assignment):
    role = world.roles[assignment.role.lower()]
    rid = '{}/providers/Microsoft.Authorization/roleAssignments/{}'.format(
        assignment.scope.rstrip('/'), assignment.name)
    created = iso(assignment.created) if assignment.created else None
    return {'id': rid, 'name': assignment.name, 'type': 'Microsoft.Authorization/roleAssignments',
            'properties': {'roleDefinitionId': world.role_definition_id(role), 'principalId': assignment.principal_id,
                           'principalType': _principal_type(world, assignment.principal_id),
                           'scope': assignment.scope.rstrip('/') or '/', 'condition': None, 'conditionVersion': None,
                           'createdOn': created, 'updatedOn': created, 'createdBy': None, 'updatedBy': None,
                           'delegatedManagedIdentityResourceId': None, 'description': None}}


@route('GET', '/{scope*}/providers/Microsoft.Authorization/roleAssignments',
       action=AUTH + '/roleAssignments/read', scope_strip=3)
def list_role_assignments(req):
    """At, above and below the scope; `atScope()` at and above; `principalId eq '{oid}'` (and `assignedTo('{oid}')`,
    which adds the principal's groups). Active PIM activations are listed while they last."""
    _check_version(req, RBAC_API_VERSIONS)
    scope, world = scope_of(req), req.world
    text = req.arg('$filter') or ''
    at_scope, principals = False, None
    for part in [p.strip() for p in re.split(r'\s+and\s+', text, flags=re.I) if p.strip()]:
        if re.fullmatch(r'atScope\(\)', part, re.I):
            at_scope = True
            continue
        match = re.fullmatch(r"principalId\s+eq\s+'([^']*)'", part, re.I)
        if match:
            principals = {match.group(1).lower()}
            continue
        match = re.fullmatch(r"assignedTo\('([^']*)'\)", part, re.I)
        if match:
            principals = {p.lower() for p in _principal_ids(world, match.group(1))}
            continue
        raise ArmError(400, 'UnsupportedQuery', "The filter '{}' is not supported.".format(text))
    found = []
    for assignment in world.live_assignments():
        above = scope_covers(assignment.scope, scope)
        below = scope_covers(scope, assignment.scope)
        if not (above or (below and not at_scope)):
            continue
        if principals is not None and assignment.principal_id.lower() not in principals:
            continue
        found.append(_assignment_body(world, assignment))
    return paged(req, found)


# -- role management policies (2020-10-01) -----------------------------------------------------------------
def _rule_target(caller, level, operations=('All',)):
    return {'caller': caller, 'operations': list(operations), 'level': level, 'targetObjects': None,
            'inheritableSettings': None, 'enforcedSettings': None}


def default_rules():
    """Azure's default rules for a role at a scope, reduced to those PIM's checks and the product use."""
    return [
        {'id': 'Expiration_Admin_Eligibility', 'ruleType': 'RoleManagementPolicyExpirationRule',
         'isExpirationRequired': True, 'maximumDuration': 'P365D', 'target': _rule_target('Admin', 'Eligibility')},
        {'id': 'Expiration_Admin_Assignment', 'ruleType': 'RoleManagementPolicyExpirationRule',
         'isExpirationRequired': True, 'maximumDuration': 'P180D', 'target': _rule_target('Admin', 'Assignment')},
        {'id': 'Expiration_EndUser_Assignment', 'ruleType': 'RoleManagementPolicyExpirationRule',
         'isExpirationRequired': True, 'maximumDuration': DEFAULT_MAX_ACTIVATION,
         'target': _rule_target('EndUser', 'Assignment')},
        {'id': 'Enablement_EndUser_Assignment', 'ruleType': 'RoleManagementPolicyEnablementRule',
         'enabledRules': ['Justification'], 'target': _rule_target('EndUser', 'Assignment')},
        {'id': 'Approval_EndUser_Assignment', 'ruleType': 'RoleManagementPolicyApprovalRule',
         'setting': {'isApprovalRequired': False, 'isApprovalRequiredForExtension': False,
                     'isRequestorJustificationRequired': True, 'approvalMode': 'SingleStage',
                     'approvalStages': [{'approvalStageTimeOutInDays': 1, 'isApproverJustificationRequired': True,
                                         'escalationTimeInMinutes': 0, 'primaryApprovers': [],
                                         'isEscalationEnabled': False, 'escalationApprovers': []}]},
         'target': _rule_target('EndUser', 'Assignment')},
    ]


def policy_for(world, scope, role):
    """The policy governing `role` (a RoleDefinition) at exactly `scope`, created with the defaults if new."""
    pim = state(world)
    key = (_norm(scope), role.role_id.lower())
    with world.lock:
        if key not in pim['policies']:
            name = str(uuid.uuid4())
            pim['policies'][key] = {'name': name, 'scope': scope.rstrip('/'), 'role': role, 'rules': default_rules(),
                                    'assignment': '{}_{}'.format(name, role.role_id), 'modified': None,
                                    'modified_by': None}
        return pim['policies'][key]


def _policy_by_name(world, scope, name):
    return next((p for (s, _), p in state(world)['policies'].items()
                 if s == _norm(scope) and p['name'].lower() == name.lower()), None)


def rule(policy, rule_id):
    return next((r for r in policy['rules'] if r['id'].lower() == rule_id.lower()), None)


def _policy_id(policy):
    return '{}/providers/Microsoft.Authorization/roleManagementPolicies/{}'.format(policy['scope'], policy['name'])


def _scope_info(scope):
    parts = scope.strip('/').split('/')
    kind = 'subscription' if len(parts) == 2 else 'resourcegroup' if len(parts) == 4 else 'resource'
    return {'id': scope, 'displayName': parts[-1], 'type': kind}


def _policy_body(world, policy):
    modified_by = policy['modified_by']
    return {'id': _policy_id(policy), 'name': policy['name'], 'type': 'Microsoft.Authorization/RoleManagementPolicies',
            'properties': {'scope': policy['scope'], 'displayName': '', 'description': '',
                           'isOrganizationDefault': False,
                           'lastModifiedBy': {'id': modified_by.object_id, 'displayName': modified_by.name,
                                              'type': 'ServicePrincipal', 'email': None} if modified_by else None,
                           'lastModifiedDateTime': iso(policy['modified']) if policy['modified'] else None,
                           'rules': [dict(r) for r in policy['rules']],
                           'effectiveRules': [dict(r) for r in policy['rules']],
                           'policyProperties': {'scope': _scope_info(policy['scope'])}}}


def _policy_assignment_body(world, policy):
    role = policy['role']
    return {'id': '{}/providers/Microsoft.Authorization/roleManagementPolicyAssignments/{}'.format(
        policy['scope'], policy['assignment']), 'name': policy['assignment'],
        'type': 'Microsoft.Authorization/RoleManagementPolicyAssignment',
        'properties': {'scope': policy['scope'], 'roleDefinitionId': world.role_definition_id(role),
                       'policyId': _policy_id(policy), 'effectiveRules': [dict(r) for r in policy['rules']],
                       'policyAssignmentProperties': {
                           'scope': _scope_info(policy['scope']),
                           'roleDefinition': {'id': world.role_definition_id(role), 'displayName': role.name,
                                              'type': 'CustomRole' if role.custom else 'BuiltInRole'},
                           'policy': {'id': _policy_id(policy), 'lastModifiedBy': None,
                                      'lastModifiedDateTime': None}}}}


@route('GET', '/{scope*}/providers/Microsoft.Authorization/roleManagementPolicyAssignments',
       action=AUTH + '/roleManagementPolicyAssignments/read', scope_strip=3)
def list_policy_assignments(req):
    """With `$filter=roleDefinitionId eq '{id}'`: the (one) policy assignment of that role at exactly the scope,
    created with Azure's defaults the first time. Without a filter: those the scope has so far."""
    _pim(req)
    scope, world = scope_of(req), req.world
    text = req.arg('$filter') or ''
    if text:
        match = re.fullmatch(r"\s*roleDefinitionId\s+eq\s+'([^']*)'\s*", text, re.I)
        if not match:
            raise ArmError(400, 'BadRequest', "The $filter '{}' is not supported.".format(text))
        role = world.role_by_id(match.group(1))
        if role is None:
            raise ArmError(400, 'RoleDefinitionDoesNotExist', "The role definition '{}' does not exist.".format(
                match.group(1)))
        return paged(req, [_policy_assignment_body(world, policy_for(world, scope, role))])
    policies = [p for (s, _), p in state(world)['policies'].items() if s == _norm(scope)]
    return paged(req, [_policy_assignment_body(world, p) for p in policies])


@route('GET', '/{scope*}/providers/Microsoft.Authorization/roleManagementPolicies',
       action=AUTH + '/roleManagementPolicies/read', scope_strip=3)
def list_policies(req):
    """The policies of exactly this scope that exist so far (one per role asked about)."""
    _pim(req)
    scope = scope_of(req)
    return paged(req, [_policy_body(req.world, p) for (s, _), p in state(req.world)['policies'].items()
                       if s == _norm(scope)])


@route('GET', '/{scope*}/providers/Microsoft.Authorization/roleManagementPolicies/{name}',
       action=AUTH + '/roleManagementPolicies/read', scope_strip=4)
def get_policy(req):
    _pim(req)
    policy = _policy_by_name(req.world, scope_of(req), req.params['name'])
    if policy is None:
        raise ArmError(404, 'RoleManagementPolicyNotFound', "The role management policy '{}' was not found.".format(
            req.params['name']))
    return Response(200, _policy_body(req.world, policy))


def _check_approval_rule(world, given):
    setting = given.get('setting') or {}
    if not setting.get('isApprovalRequired'):
        return
    stages = setting.get('approvalStages') or []
    approvers = [a for stage in stages for a in stage.get('primaryApprovers') or []]
    if not approvers:
        raise ArmError(400, 'RoleManagementPolicyApprovalRuleMissingApprovers',
                       'An approval rule that requires approval must name at least one approver.')
    for approver in approvers:
        oid = approver.get('id') or ''
        known = oid in world.groups if approver.get('userType') == 'Group' else \
            world.identity_by_object_id(oid) is not None
        if not known:
            raise ArmError(400, 'PrincipalNotFound', "The {} '{}' of the approval rule does not exist in the "
                                                     "directory.".format(approver.get('userType') or 'principal', oid))


@route('PATCH', '/{scope*}/providers/Microsoft.Authorization/roleManagementPolicies/{name}',
       action=AUTH + '/roleManagementPolicies/write', scope_strip=4)
def patch_policy(req):
    """Rules are merged by `id` (a rule replaces the policy's rule of that id whole); a rule id the policy lacks, or a
    ruleType that is not the rule's, is refused."""
    _pim(req)
    world = req.world
    body = req.body or {}
    req.validate('authorization-pim-policies', 'RoleManagementPolicies_Update', body)
    with world.lock:
        policy = _policy_by_name(world, scope_of(req), req.params['name'])
        if policy is None:
            raise ArmError(404, 'RoleManagementPolicyNotFound',
                           "The role management policy '{}' was not found.".format(req.params['name']))
        rules = [dict(r) for r in policy['rules']]
        for given in (body.get('properties') or {}).get('rules') or []:
            current = next((r for r in rules if r['id'].lower() == (given.get('id') or '').lower()), None)
            if current is None or current['ruleType'] != given.get('ruleType'):
                raise ArmError(400, 'InvalidRoleManagementPolicyRule',
                               "The rule '{}' of type '{}' is not a rule of this policy.".format(
                                   given.get('id'), given.get('ruleType')))
            if given['ruleType'] == 'RoleManagementPolicyApprovalRule':
                _check_approval_rule(world, given)
            if given['ruleType'] == 'RoleManagementPolicyExpirationRule' and given.get('maximumDuration'):
                try:
                    parse_iso_duration(given['maximumDuration'])
                except ValueError:
                    raise ArmError(400, 'InvalidRoleManagementPolicyRule', "The maximumDuration '{}' is not an ISO "
                                   "8601 duration.".format(given['maximumDuration'])) from None
            merged = dict(given)
            merged['id'] = current['id']
            merged.setdefault('target', current.get('target'))
            rules[rules.index(current)] = merged
        policy['rules'] = rules
        policy['modified'] = world.clock.now()
        policy['modified_by'] = req.caller
        world.record_event(req.caller, AUTH + '/roleManagementPolicies/write', _policy_id(policy),
                           http_method='PATCH', request_body=req.raw_body)
    return Response(200, _policy_body(world, policy))


# -- eligibility (2020-10-01) ------------------------------------------------------------------------------
def eligible(world, object_id, role, scope):
    """The eligibility that lets `object_id` (directly or through a group) activate `role` at `scope`, or None."""
    mine = _principal_ids(world, object_id)
    now = world.clock.now()
    return next((e for e in state(world)['eligibilities']
                 if e['principal_id'] in mine and e['role'].role_id == role.role_id and
                 scope_covers(e['scope'], scope) and (e['end'] is None or now < e['end'])), None)


def _role_of(world, body_props):
    role = world.role_by_id(body_props.get('roleDefinitionId') or '')
    if role is None:
        raise ArmError(400, 'RoleDefinitionDoesNotExist', "The role definition '{}' does not exist.".format(
            body_props.get('roleDefinitionId')))
    return role


def _request_name(req, key):
    name = req.params['name']
    if not GUID.match(name):
        raise ArmError(400, 'InvalidRoleAssignmentScheduleRequestName',
                       "The request name '{}' must be a GUID.".format(name))
    if name.lower() in state(req.world)[key]:
        raise ArmError(400, 'RoleAssignmentRequestExists', "A request named '{}' already exists.".format(name))
    return name.lower()


def _window(world, props):
    """(start, end or None, duration text or None) of a request's scheduleInfo; start defaults to now."""
    info = props.get('scheduleInfo') or {}
    start = info.get('startDateTime')
    start = utc(start) if start else world.clock.now()
    expiration = info.get('expiration') or {}
    kind = expiration.get('type') or 'NoExpiration'
    if kind == 'AfterDuration':
        try:
            return start, start + parse_iso_duration(expiration.get('duration')), expiration.get('duration')
        except ValueError:
            raise ArmError(400, 'InvalidScheduleInfo', "The duration '{}' is not an ISO 8601 duration.".format(
                expiration.get('duration'))) from None
    if kind == 'AfterDateTime':
        if not expiration.get('endDateTime'):
            raise ArmError(400, 'InvalidScheduleInfo', 'An AfterDateTime expiration needs an endDateTime.')
        return start, utc(expiration['endDateTime']), None
    return start, None, None


def _eligibility_request_body(world, record):
    return {'id': '{}/providers/Microsoft.Authorization/roleEligibilityScheduleRequests/{}'.format(
        record['scope'], record['name']), 'name': record['name'],
        'type': 'Microsoft.Authorization/RoleEligibilityScheduleRequests',
        'properties': {'scope': record['scope'], 'roleDefinitionId': world.role_definition_id(record['role']),
                       'principalId': record['principal_id'],
                       'principalType': _principal_type(world, record['principal_id']),
                       'requestType': record['request_type'], 'status': record['status'], 'approvalId': None,
                       'scheduleInfo': record['schedule_info'], 'justification': record['justification'],
                       'requestorId': record['requestor_id'], 'createdOn': iso(record['created']),
                       'targetRoleEligibilityScheduleId': record.get('schedule'),
                       'targetRoleEligibilityScheduleInstanceId': None, 'condition': None,
                       'conditionVersion': None, 'ticketInfo': {'ticketNumber': None, 'ticketSystem': None},
                       'expandedProperties': _expanded(world, record['scope'], record['role'],
                                                       record['principal_id'])}}


@route('PUT', '/{scope*}/providers/Microsoft.Authorization/roleEligibilityScheduleRequests/{name}',
       action=AUTH + '/roleEligibilityScheduleRequests/write', scope_strip=4)
def put_eligibility_request(req):
    """AdminAssign makes a principal eligible for a role at the scope (from start, until the expiration, which the
    policy's Expiration_Admin_Eligibility rule may require); AdminRemove ends it."""
    _pim(req)
    world, scope = req.world, scope_of(req)
    body = req.body or {}
    req.validate('authorization-pim-eligibility', 'RoleEligibilityScheduleRequests_Create', body)
    props = body.get('properties') or {}
    with world.lock:
        name = _request_name(req, 'eligibility_requests')
        role = _role_of(world, props)
        principal = props.get('principalId') or ''
        if world.identity_by_object_id(principal) is None and principal not in world.groups:
            raise ArmError(400, 'PrincipalNotFound', "The principal '{}' does not exist in the directory.".format(
                principal))
        request_type = props.get('requestType')
        pim = state(world)
        current = [e for e in pim['eligibilities'] if e['principal_id'] == principal and
                   e['role'].role_id == role.role_id and _norm(e['scope']) == _norm(scope)]
        if request_type == 'AdminAssign':
            if current:
                raise ArmError(400, 'RoleAssignmentExists', 'The Role assignment already exists.')
            start, end, _ = _window(world, props)
            expiry = rule(policy_for(world, scope, role), 'Expiration_Admin_Eligibility')
            if expiry and expiry.get('isExpirationRequired'):
                limit = parse_iso_duration(expiry.get('maximumDuration') or 'P365D')
                if end is None or end - start > limit:
                    raise ArmError(400, 'RoleAssignmentRequestPolicyValidationFailed',
                                   'The following policy rules failed: ["ExpirationRule"]')
            eligibility = {'name': str(uuid.uuid4()), 'principal_id': principal, 'role': role,
                           'scope': scope, 'start': start, 'end': end, 'request': name}
            pim['eligibilities'].append(eligibility)
            status = 'Provisioned'
        elif request_type == 'AdminRemove':
            if not current:
                raise ArmError(400, 'RoleAssignmentDoesNotExist', 'The Role assignment does not exist.')
            for eligibility in current:
                pim['eligibilities'].remove(eligibility)
            eligibility, status = current[0], 'Revoked'
        else:
            raise ArmError(400, 'InvalidRequestType', "The request type '{}' is not supported for eligibility "
                                                      "requests here.".format(request_type))
        record = {'name': name, 'scope': scope, 'role': role, 'principal_id': principal,
                  'request_type': request_type, 'status': status, 'schedule_info': props.get('scheduleInfo'),
                  'justification': props.get('justification'), 'requestor_id': req.caller.object_id,
                  'created': world.clock.now(), 'schedule': eligibility['name']}
        pim['eligibility_requests'][name] = record
        world.record_event(req.caller, AUTH + '/roleEligibilityScheduleRequests/write',
                           scope + '/providers/Microsoft.Authorization/roleEligibilityScheduleRequests/' + name,
                           request_body=req.raw_body)
    return Response(201, _eligibility_request_body(world, record))


@route('GET', '/{scope*}/providers/Microsoft.Authorization/roleEligibilityScheduleRequests/{name}')
def get_eligibility_request(req):
    _pim(req)
    record = state(req.world)['eligibility_requests'].get(req.params['name'].lower())
    if record is None or _norm(record['scope']) != _norm(scope_of(req)):
        raise ArmError(404, 'RoleEligibilityScheduleRequestNotFound',
                       "The role eligibility schedule request '{}' was not found.".format(req.params['name']))
    if req.caller.object_id not in (record['principal_id'], record['requestor_id']):
        req.authorize(AUTH + '/roleEligibilityScheduleRequests/read', scope_of(req))
    return Response(200, _eligibility_request_body(req.world, record))


def _eligibility_body(world, eligibility, kind):
    props = {'scope': eligibility['scope'], 'roleDefinitionId': world.role_definition_id(eligibility['role']),
             'principalId': eligibility['principal_id'],
             'principalType': _principal_type(world, eligibility['principal_id']), 'status': 'Provisioned',
             'startDateTime': iso(eligibility['start']),
             'endDateTime': iso(eligibility['end']) if eligibility['end'] else None, 'memberType': 'Direct',
             'condition': None, 'conditionVersion': None, 'createdOn': iso(eligibility['start']),
             'expandedProperties': _expanded(world, eligibility['scope'], eligibility['role'],
                                             eligibility['principal_id'])}
    if kind == 'roleEligibilityScheduleInstances':
        props['roleEligibilityScheduleId'] = '{}/providers/Microsoft.Authorization/roleEligibilitySchedules/{}'.format(
            eligibility['scope'], eligibility['name'])
    else:
        props['roleEligibilityScheduleRequestId'] = eligibility['request']
        props['updatedOn'] = iso(eligibility['start'])
    return {'id': '{}/providers/Microsoft.Authorization/{}/{}'.format(eligibility['scope'], kind, eligibility['name']),
            'name': eligibility['name'], 'type': 'Microsoft.Authorization/' + kind, 'properties': props}


def _list_eligibilities(req, kind):
    _pim(req)
    world, scope = req.world, scope_of(req)
    terms = _filter_terms(req.arg('$filter'))
    names = {name for name, _ in terms}
    if not names & {'astarget', 'principalid'} or any(
            n == 'principalid' and v != req.caller.object_id for n, v in terms):
        if 'astarget' not in names:
            req.authorize(AUTH + '/{}/read'.format(kind), scope)
    mine = _principal_ids(world, req.caller.object_id)
    now = world.clock.now()
    found = []
    for eligibility in state(world)['eligibilities']:
        if eligibility['end'] is not None and now >= eligibility['end']:
            continue
        above, below = scope_covers(eligibility['scope'], scope), scope_covers(scope, eligibility['scope'])
        keep = above or below
        for name, value in terms:
            if name == 'atscope':
                keep &= above
            elif name == 'astarget':
                keep &= eligibility['principal_id'] in mine
            elif name == 'principalid':
                keep &= eligibility['principal_id'].lower() == value.lower()
            elif name == 'roledefinitionid':
                keep &= eligibility['role'].role_id.lower() == value.rstrip('/').split('/')[-1].lower()
        if keep:
            found.append(_eligibility_body(world, eligibility, kind))
    return paged(req, found)


@route('GET', '/{scope*}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances')
def list_eligibility_instances(req):
    return _list_eligibilities(req, 'roleEligibilityScheduleInstances')


@route('GET', '/{scope*}/providers/Microsoft.Authorization/roleEligibilitySchedules')
def list_eligibility_schedules(req):
    return _list_eligibilities(req, 'roleEligibilitySchedules')


# -- activation requests (2020-10-01) ----------------------------------------------------------------------
def tick(world):
    """Apply the clock: pending requests past their window or 24 h old time out (their approval step expires)."""
    now = world.clock.now()
    with world.lock:
        pim = state(world)
        for record in pim['requests'].values():
            if record['status'] != 'PendingApproval':
                continue
            window_over = record['end'] is not None and now >= record['end']
            if window_over or now >= record['created'] + PENDING_LIFETIME:
                record['status'] = 'TimedOut'
                approval = pim['approvals'].get(record['approval_id'])
                for step in approval['steps'] if approval else ():
                    if step['status'] in ('NotStarted', 'InProgress'):
                        step['status'] = 'Expired'


def _assignment_request_id(record):
    return '{}/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/{}'.format(
        record['scope'], record['name'])


def _request_body(world, record):
    role = record['role']
    info = record['schedule_info'] or {}
    return {'id': _assignment_request_id(record), 'name': record['name'],
            'type': 'Microsoft.Authorization/RoleAssignmentScheduleRequests',
            'properties': {'targetRoleAssignmentScheduleId': record.get('schedule'),
                           'targetRoleAssignmentScheduleInstanceId': None, 'scope': record['scope'],
                           'roleDefinitionId': world.role_definition_id(role), 'principalId': record['principal_id'],
                           'principalType': _principal_type(world, record['principal_id']),
                           'requestType': record['request_type'], 'status': record['status'],
                           'approvalId': ('/providers/Microsoft.Authorization/roleAssignmentApprovals/' +
                                          record['approval_id']) if record['approval_id'] else None,
                           'scheduleInfo': {'startDateTime': iso(record['start']),
                                            'expiration': info.get('expiration') or {'type': 'NoExpiration',
                                                                                     'endDateTime': None,
                                                                                     'duration': None}},
                           'ticketInfo': {'ticketNumber': None, 'ticketSystem': None},
                           'justification': record['justification'], 'requestorId': record['requestor_id'],
                           'createdOn': iso(record['created']), 'condition': None, 'conditionVersion': None,
                           'expandedProperties': _expanded(world, record['scope'], role, record['principal_id'])}}


def _expanded(world, scope, role, principal_id):
    return {'scope': _scope_info(scope),
            'roleDefinition': {'id': world.role_definition_id(role), 'displayName': role.name,
                               'type': 'CustomRole' if role.custom else 'BuiltInRole'},
            'principal': {'id': principal_id, 'displayName': _display(world, principal_id), 'email': None,
                          'type': _principal_type(world, principal_id)}}


def _display(world, object_id):
    ident = world.identity_by_object_id(object_id)
    if ident:
        return ident.name
    group = world.groups.get(object_id)
    return group['name'] if group else ''


def live_activation(world, principal_id, role, scope):
    """The live role assignment of `role` to `principal_id` at exactly `scope`, or None."""
    return next((a for a in world.live_assignments()
                 if a.principal_id == principal_id and a.role.lower() == role.name.lower() and
                 _norm(a.scope) == _norm(scope)), None)


def _approvers(policy):
    approval = rule(policy, 'Approval_EndUser_Assignment') or {}
    setting = approval.get('setting') or {}
    if not setting.get('isApprovalRequired'):
        return None, False
    stage = (setting.get('approvalStages') or [{}])[0]
    return [dict(a) for a in stage.get('primaryApprovers') or []], bool(stage.get('isApproverJustificationRequired'))


def _policy_failures(policy, props, start, end):
    failures = []
    enablement = rule(policy, 'Enablement_EndUser_Assignment') or {}
    if 'Justification' in (enablement.get('enabledRules') or []) and not (props.get('justification') or '').strip():
        failures.append('JustificationRule')
    expiry = rule(policy, 'Expiration_EndUser_Assignment') or {}
    limit = parse_iso_duration(expiry.get('maximumDuration') or DEFAULT_MAX_ACTIVATION)
    if (end is None and expiry.get('isExpirationRequired', True)) or (end is not None and end - start > limit):
        failures.append('ExpirationRule')
    if end is not None and end <= start:
        failures.append('ExpirationRule')
    return sorted(set(failures))


def activate(world, record, approver=None):
    """Provision an activation: an active role assignment from now until the request's end."""
    assignment = world.assign(record['principal_id'], record['role'].name, record['scope'], until=record['end'],
                              origin='activated', request=record['name'])
    record['status'] = 'Provisioned'
    record['schedule'] = assignment.name
    ident = world.identity_by_object_id(record['principal_id'])
    world.record_event(ident, AUTH + '/roleAssignments/write', '{}/providers/Microsoft.Authorization/roleAssignments/{}'
                       .format(record['scope'], assignment.name),
                       properties={'requestId': record['name'], 'approvedBy': approver.object_id if approver else '',
                                   'roleDefinitionId': world.role_definition_id(record['role']),
                                   'until': iso(record['end']) if record['end'] else ''})
    return assignment


@route('PUT', '/{scope*}/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/{name}')
def put_assignment_request(req):  # pylint: disable=too-many-branches,too-many-statements
    """SelfActivate, SelfDeactivate (no RBAC action: PIM checks the caller), AdminAssign (needs roleAssignments/write)
    and AdminRemove (needs roleAssignments/delete)."""
    _pim(req)
    world, scope = req.world, scope_of(req)
    body = req.body or {}
    req.validate('authorization-pim-assignment', 'RoleAssignmentScheduleRequests_Create', body)
    props = body.get('properties') or {}
    request_type = props.get('requestType')
    with world.lock:
        name = _request_name(req, 'requests')
        role = _role_of(world, props)
        principal = props.get('principalId') or ''
        pim = state(world)
        if request_type in ('SelfActivate', 'SelfDeactivate') and principal != req.caller.object_id:
            raise ArmError(400, 'InvalidPrincipalId', 'A {} request must be made for the caller itself.'.format(
                request_type))
        if request_type in ('AdminAssign', 'AdminRemove'):
            action = AUTH + ('/roleAssignments/write' if request_type == 'AdminAssign' else '/roleAssignments/delete')
            req.authorize(action, scope)
        start, end, _ = _window(world, props)
        record = {'name': name, 'scope': scope, 'role': role, 'principal_id': principal,
                  'request_type': request_type, 'status': None, 'approval_id': None,
                  'schedule_info': props.get('scheduleInfo'), 'justification': props.get('justification'),
                  'requestor_id': req.caller.object_id, 'created': world.clock.now(), 'start': start, 'end': end,
                  'schedule': None}
        if request_type == 'SelfActivate':
            eligibility = eligible(world, principal, role, scope)
            if eligibility is None:
                raise ArmError(400, 'RoleAssignmentDoesNotExist', 'The Role assignment does not exist.')
            if live_activation(world, principal, role, scope) is not None:
                raise ArmError(400, 'RoleAssignmentExists', 'The Role assignment already exists.')
            if any(r['status'] == 'PendingApproval' and r['principal_id'] == principal and
                   r['role'].role_id == role.role_id and _norm(r['scope']) == _norm(scope)
                   for r in pim['requests'].values()):
                raise ArmError(400, 'PendingRoleAssignmentRequest',
                               'There is already an existing pending Role assignment request.')
            # An activation below the eligibility's scope (PIM's "eligible child resources") is held to the role's
            # settings at both scopes, the stricter of each (*unconfirmed*: which scope's settings real PIM applies).
            policies = [policy_for(world, scope, role)]
            if _norm(eligibility['scope']) != _norm(scope):
                policies.insert(0, policy_for(world, eligibility['scope'], role))
            failures = sorted({f for policy in policies for f in _policy_failures(policy, props, start, end)})
            if failures:
                raise ArmError(400, 'RoleAssignmentRequestPolicyValidationFailed',
                               'The following policy rules failed: [{}]'.format(
                                   ','.join('"{}"'.format(f) for f in failures)))
            approvers, justify = next(((a, j) for a, j in map(_approvers, policies) if a is not None), (None, False))
            if approvers is not None:
                approval_id = str(uuid.uuid4())
                record['status'], record['approval_id'] = 'PendingApproval', approval_id
                pim['approvals'][approval_id] = {
                    'name': approval_id, 'request': name, 'approvers': approvers, 'justify': justify,
                    'steps': [{'name': str(uuid.uuid4()), 'status': 'InProgress', 'review_result': 'NotReviewed',
                               'justification': None, 'reviewed_by': None, 'reviewed_at': None,
                               'display_name': 'Approval stage 1'}]}
            pim['requests'][name] = record
            world.record_event(req.caller, AUTH + '/roleAssignmentScheduleRequests/write',
                               _assignment_request_id(record), request_body=req.raw_body,
                               properties={'requestType': request_type, 'justification': record['justification']})
            if approvers is None:
                activate(world, record)
        elif request_type in ('SelfDeactivate', 'AdminRemove'):
            assignment = live_activation(world, principal, role, scope)
            if assignment is None:
                raise ArmError(400, 'RoleAssignmentDoesNotExist', 'The Role assignment does not exist.')
            if request_type == 'SelfDeactivate' and assignment.created and \
                    world.clock.now() - assignment.created < MIN_ACTIVE_BEFORE_DEACTIVATION:
                raise ArmError(400, 'ActiveDurationTooShort', 'The role assignment was activated less than 5 minutes '
                               'ago and cannot be deactivated yet.')
            assignment.until = world.clock.now()
            record['status'], record['schedule'] = 'Revoked', assignment.name
            pim['requests'][name] = record
            world.record_event(req.caller, AUTH + '/roleAssignmentScheduleRequests/write',
                               _assignment_request_id(record), properties={'requestType': request_type},
                               request_body=req.raw_body)
            world.record_event(req.caller, AUTH + '/roleAssignments/delete',
                               '{}/providers/Microsoft.Authorization/roleAssignments/{}'.format(scope, assignment.name),
                               http_method='DELETE')
        elif request_type == 'AdminAssign':
            if live_activation(world, principal, role, scope) is not None:
                raise ArmError(400, 'RoleAssignmentExists', 'The Role assignment already exists.')
            pim['requests'][name] = record
            world.record_event(req.caller, AUTH + '/roleAssignmentScheduleRequests/write',
                               _assignment_request_id(record), properties={'requestType': request_type},
                               request_body=req.raw_body)
            activate(world, record)
        else:
            raise ArmError(400, 'InvalidRequestType', "The request type '{}' is not supported here.".format(
                request_type))
    return Response(201, _request_body(world, record))


def _is_approver(world, approval, object_id):
    mine = _principal_ids(world, object_id)
    return any(a.get('id') in mine for a in approval['approvers'])


def _may_read_request(req, record):
    caller = req.caller.object_id
    if caller in (record['principal_id'], record['requestor_id']):
        return True
    approval = state(req.world)['approvals'].get(record['approval_id'] or '')
    if approval and _is_approver(req.world, approval, caller):
        return True
    return req.can(AUTH + '/roleAssignmentScheduleRequests/read', record['scope'])


@route('GET', '/{scope*}/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/{name}')
def get_assignment_request(req):
    _pim(req)
    record = state(req.world)['requests'].get(req.params['name'].lower())
    if record is None or _norm(record['scope']) != _norm(scope_of(req)):
        raise ArmError(404, 'RoleAssignmentScheduleRequestNotFound',
                       "The role assignment schedule request '{}' was not found.".format(req.params['name']))
    if not _may_read_request(req, record):
        raise authorization_failed(req.caller, AUTH + '/roleAssignmentScheduleRequests/read', scope_of(req))
    return Response(200, _request_body(req.world, record))


@route('GET', '/{scope*}/providers/Microsoft.Authorization/roleAssignmentScheduleRequests')
def list_assignment_requests(req):
    """`asRequestor()`, `asTarget()`, `asApprover()` need no action (the caller's own); other filters need
    roleAssignmentScheduleRequests/read. At, above and below the scope (`atScope()`: at and above)."""
    _pim(req)
    world, scope = req.world, scope_of(req)
    terms = _filter_terms(req.arg('$filter'))
    names = {name for name, _ in terms}
    if not names & {'asrequestor', 'astarget', 'asapprover'}:
        req.authorize(AUTH + '/roleAssignmentScheduleRequests/read', scope)
    caller = req.caller.object_id
    mine = _principal_ids(world, caller)
    found = []
    for record in sorted(state(world)['requests'].values(), key=lambda r: r['created']):
        above, below = scope_covers(record['scope'], scope), scope_covers(scope, record['scope'])
        keep = above or below
        approval = state(world)['approvals'].get(record['approval_id'] or '')
        for name, value in terms:
            if name == 'atscope':
                keep &= above
            elif name == 'asrequestor':
                keep &= record['requestor_id'] == caller
            elif name == 'astarget':
                keep &= record['principal_id'] in mine
            elif name == 'asapprover':
                keep &= approval is not None and _is_approver(world, approval, caller)
            elif name == 'principalid':
                keep &= record['principal_id'].lower() == value.lower()
            elif name == 'roledefinitionid':
                keep &= record['role'].role_id.lower() == value.rstrip('/').split('/')[-1].lower()
            elif name == 'status':
                keep &= (record['status'] or '').lower() == value.lower()
            else:
                raise ArmError(400, 'BadRequest', "The $filter term '{}' is not supported here.".format(name))
        if keep:
            found.append(_request_body(world, record))
    return paged(req, found)


@route('POST', '/{scope*}/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/{name}/cancel')
def cancel_assignment_request(req):
    """The requester cancels their own pending request (200, no body); anything else is refused."""
    _pim(req)
    world = req.world
    with world.lock:
        record = state(world)['requests'].get(req.params['name'].lower())
        if record is None or _norm(record['scope']) != _norm(scope_of(req)):
            raise ArmError(404, 'RoleAssignmentScheduleRequestNotFound',
                           "The role assignment schedule request '{}' was not found.".format(req.params['name']))
        if record['requestor_id'] != req.caller.object_id:
            raise authorization_failed(req.caller, AUTH + '/roleAssignmentScheduleRequests/cancel/action',
                                       _assignment_request_id(record))
        if record['status'] != 'PendingApproval':
            raise ArmError(400, 'RoleAssignmentRequestNotPending',
                           "Only a pending request can be canceled; this one is '{}'.".format(record['status']))
        record['status'] = 'Canceled'
        approval = state(world)['approvals'].get(record['approval_id'])
        for step in approval['steps'] if approval else ():
            if step['status'] == 'InProgress':
                step['status'] = 'Completed'
        world.record_event(req.caller, AUTH + '/roleAssignmentScheduleRequests/cancel/action',
                           _assignment_request_id(record), http_method='POST', request_body=req.raw_body)
    return Response(200, None)


def _assignment_instance_body(world, assignment):
    role = world.roles[assignment.role.lower()]
    base = '{}/providers/Microsoft.Authorization/'.format(assignment.scope.rstrip('/'))
    return {'id': base + 'roleAssignmentScheduleInstances/' + assignment.name, 'name': assignment.name,
            'type': 'Microsoft.Authorization/roleAssignmentScheduleInstances',
            'properties': {'scope': assignment.scope, 'roleDefinitionId': world.role_definition_id(role),
                           'principalId': assignment.principal_id,
                           'principalType': _principal_type(world, assignment.principal_id),
                           'roleAssignmentScheduleId': base + 'roleAssignmentSchedules/' + assignment.name,
                           'originRoleAssignmentId': base + 'roleAssignments/' + assignment.name,
                           'status': 'Provisioned',
                           'startDateTime': iso(assignment.created) if assignment.created else None,
                           'endDateTime': iso(assignment.until) if assignment.until else None,
                           'linkedRoleEligibilityScheduleId': None, 'linkedRoleEligibilityScheduleInstanceId': None,
                           'assignmentType': 'Activated' if assignment.origin == 'activated' else 'Assigned',
                           'memberType': 'Direct', 'condition': None, 'conditionVersion': None,
                           'createdOn': iso(assignment.created) if assignment.created else None}}


@route('GET', '/{scope*}/providers/Microsoft.Authorization/roleAssignmentScheduleInstances')
def list_assignment_instances(req):
    """The live role assignments (activated or assigned): `asTarget()` the caller's (no action needed),
    `atScope()` at and above the scope; without asTarget() needs roleAssignmentScheduleInstances/read."""
    _pim(req)
    world, scope = req.world, scope_of(req)
    terms = _filter_terms(req.arg('$filter'))
    names = {name for name, _ in terms}
    if 'astarget' not in names:
        req.authorize(AUTH + '/roleAssignmentScheduleInstances/read', scope)
    mine = _principal_ids(world, req.caller.object_id)
    found = []
    for assignment in world.live_assignments():
        above, below = scope_covers(assignment.scope, scope), scope_covers(scope, assignment.scope)
        keep = above or below
        for name, value in terms:
            if name == 'atscope':
                keep &= above
            elif name == 'astarget':
                keep &= assignment.principal_id in mine
            elif name == 'principalid':
                keep &= assignment.principal_id.lower() == value.lower()
            elif name == 'roledefinitionid':
                role = world.roles[assignment.role.lower()]
                keep &= role.role_id.lower() == value.rstrip('/').split('/')[-1].lower()
            else:
                raise ArmError(400, 'BadRequest', "The $filter term '{}' is not supported here.".format(name))
        if keep:
            found.append(_assignment_instance_body(world, assignment))
    return paged(req, found)


# -- approvals (2021-01-01-preview) ------------------------------------------------------------------------
def _approval_for(req, to_decide=False):
    """The approval of the path, if the caller may see it (its approvers and its requester), else 404. To decide,
    any caller finds it: the decision itself refuses the requester and those who are not approvers."""
    world = req.world
    approval = state(world)['approvals'].get(req.params['approval'].lower())
    record = approval and state(world)['requests'].get(approval['request'])
    caller = req.caller.object_id
    if approval is None or not (to_decide or _is_approver(world, approval, caller) or
                                caller in (record['requestor_id'], record['principal_id'])):
        raise ArmError(404, 'RoleAssignmentApprovalNotFound', "The role assignment approval '{}' was not found.".format(
            req.params['approval']))
    return approval, record


def _reviewer(ident):
    """An approval step's `reviewedBy`: `principalType` as the swagger's enum and example write it (`user`,
    `servicePrincipal`; a managed identity is a service principal), the UPN for a user (a service principal has
    none)."""
    user = ident.kind == 'user'
    return {'principalId': ident.object_id, 'principalType': 'user' if user else 'servicePrincipal',
            'principalName': ident.name, 'userPrincipalName': ident.upn if user else None}


def _step_body(world, approval, step, caller):
    reviewer = step['reviewed_by']
    record = state(world)['requests'][approval['request']]
    requester = (record['principal_id'], record['requestor_id'])
    assigned = _is_approver(world, approval, caller) and caller not in requester
    return {'id': '/providers/Microsoft.Authorization/roleAssignmentApprovals/{}/steps/{}'.format(
        approval['name'], step['name']), 'name': step['name'],
        'type': 'Microsoft.Authorization/roleAssignmentApprovals/steps',
        'properties': {'displayName': step['display_name'], 'status': step['status'],
                       'assignedToMe': assigned,
                       'reviewedBy': _reviewer(reviewer) if reviewer else None,
                       'reviewedDateTime': iso(step['reviewed_at']) if step['reviewed_at'] else None,
                       'reviewResult': step['review_result'], 'justification': step['justification']}}


def _approval_body(world, approval, caller):
    return {'id': '/providers/Microsoft.Authorization/roleAssignmentApprovals/' + approval['name'],
            'name': approval['name'], 'type': 'Microsoft.Authorization/roleAssignmentApprovals',
            'properties': {'steps': [_step_body(world, approval, s, caller) for s in approval['steps']]}}


def _approval_prelude(req):
    _check_version(req, APPROVAL_API_VERSIONS)
    _licensed(req)
    tick(req.world)


def _list_approvals(req):
    _approval_prelude(req)
    world, caller = req.world, req.caller.object_id
    scope = scope_of(req) if req.params.get('scope') else None
    terms = _filter_terms(req.arg('$filter'))
    found = []
    for approval in state(world)['approvals'].values():
        record = state(world)['requests'][approval['request']]
        if scope and not (scope_covers(scope, record['scope']) or scope_covers(record['scope'], scope)):
            continue
        approver = _is_approver(world, approval, caller)
        requester = caller in (record['requestor_id'], record['principal_id'])
        keep = approver or requester
        for name, _ in terms:
            if name == 'asapprover':
                keep &= approver
            elif name == 'ascreatedby':
                keep &= record['requestor_id'] == caller
            elif name == 'astarget':
                keep &= record['principal_id'] == caller
            else:
                raise ArmError(400, 'BadRequest', "The $filter term '{}' is not supported here.".format(name))
        if keep:
            found.append(_approval_body(world, approval, caller))
    return paged(req, found)


def _get_approval(req):
    _approval_prelude(req)
    approval, _ = _approval_for(req)
    return Response(200, _approval_body(req.world, approval, req.caller.object_id))


def _list_steps(req):
    _approval_prelude(req)
    approval, _ = _approval_for(req)
    return paged(req, [_step_body(req.world, approval, s, req.caller.object_id) for s in approval['steps']])


def _step_of(req, approval):
    step = next((s for s in approval['steps'] if s['name'].lower() == req.params['step'].lower()), None)
    if step is None:
        raise ArmError(404, 'RoleAssignmentApprovalStepNotFound', "The approval step '{}' was not found.".format(
            req.params['step']))
    return step


def _get_step(req):
    _approval_prelude(req)
    approval, _ = _approval_for(req)
    return Response(200, _step_body(req.world, approval, _step_of(req, approval), req.caller.object_id))


def _decide(req):  # pylint: disable=too-many-branches
    """Record Approve or Deny: only by a designated approver who is not the requester, once, before it expires.
    Approve provisions the activation from now until the request's end; Deny ends the request `Denied`."""
    _approval_prelude(req)
    world = req.world
    body = req.body
    operation = 'RoleAssignmentApprovalStep_' + ('Put' if req.method == 'PUT' else 'Patch')
    if not isinstance(body, dict) or set(body) != {'properties'} or not isinstance(body['properties'], dict):
        raise ArmError(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized: '
                                                     'expected {"properties": {"reviewResult": ..., '
                                                     '"justification": ...}}.')
    req.validate('authorization-approvals', operation, body['properties'])
    props = body['properties']
    with world.lock:
        approval, record = _approval_for(req, to_decide=True)
        step = _step_of(req, approval)
        caller = req.caller
        if caller.object_id in (record['principal_id'], record['requestor_id']):
            raise ArmError(400, 'SelfApprovalNotAllowed', 'The requester of an activation cannot approve or deny it.')
        if not _is_approver(world, approval, caller.object_id):
            raise ArmError(403, 'ApproverNotAuthorized', "The caller '{}' is not an approver of approval '{}'.".format(
                caller.object_id, approval['name']))
        if step['status'] == 'Expired' or record['status'] == 'TimedOut':
            raise ArmError(400, 'ApprovalExpired', "The approval '{}' has expired.".format(approval['name']))
        if step['status'] != 'InProgress' or record['status'] != 'PendingApproval':
            raise ArmError(400, 'ApprovalAlreadyCompleted', "The approval '{}' has already been completed "
                                                            "({}).".format(approval['name'], record['status']))
        result = props.get('reviewResult')
        if result not in ('Approve', 'Deny'):
            raise ArmError(400, 'InvalidReviewResult', "reviewResult must be 'Approve' or 'Deny', not '{}'.".format(
                result))
        if approval['justify'] and not (props.get('justification') or '').strip():
            raise ArmError(400, 'JustificationRequired', 'The approver must give a justification.')
        step.update(status='Completed', review_result=result, justification=props.get('justification'),
                    reviewed_by=caller, reviewed_at=world.clock.now())
        world.record_event(caller, AUTH + '/roleAssignmentApprovals/steps/write',
                           '/providers/Microsoft.Authorization/roleAssignmentApprovals/{}/steps/{}'.format(
                               approval['name'], step['name']),
                           properties={'reviewResult': result, 'justification': props.get('justification') or '',
                                       'requestId': record['name'], 'scope': record['scope']},
                           request_body=req.raw_body)
        if result == 'Approve':
            activate(world, record, approver=caller)
        else:
            record['status'] = 'Denied'
    return Response(200, _step_body(world, approval, step, caller.object_id))


TENANT = '/providers/Microsoft.Authorization/roleAssignmentApprovals'
SCOPED = '/{scope*}/providers/Microsoft.Authorization/roleAssignmentApprovals'
for _prefix in (TENANT, SCOPED):
    route('GET', _prefix)(_list_approvals)
    route('GET', _prefix + '/{approval}')(_get_approval)
    route('GET', _prefix + '/{approval}/steps')(_list_steps)
    route('GET', _prefix + '/{approval}/steps/{step}')(_get_step)
    route('PUT', _prefix + '/{approval}/steps/{step}')(_decide)
    route('PATCH', _prefix + '/{approval}/steps/{step}')(_decide)
