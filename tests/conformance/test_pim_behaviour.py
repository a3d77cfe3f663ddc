# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""tests/standin/authorization.py: Entra PIM for Azure resources (policies, eligibility, activation requests,
approvals), driven over HTTPS like a client would.

Each test gets a fresh world behind the module's server; the identities are those `Standin.add_test_identities`
makes (admin, pim-requester, approver, group-approver in the group jit-approvers, reader).
"""
import datetime as dt
import json
import uuid

import pytest
import requests

from tests.conformance import fresh_worlds
from tests.standin import authorization, schema, tokens
from tests.standin.world import RoleDefinition

PIM = '2020-10-01'
APPROVALS = '2021-01-01-preview'
RBAC = '2022-04-01'
SPECS = schema.specs_root() / 'authorization'
GATE_ACTION = 'Microsoft.Network/networkSecurityGroups/securityRules/write'
AUTHZ = '/providers/Microsoft.Authorization/'
# What the stand-in leaves null where the examples show a value (no conditions; no e-mail for service principals).
UNSET = {'properties.condition', 'properties.conditionVersion', 'properties.expandedProperties.principal.email'}


class Env:
    """A running stand-in with the test identities, a requester role, and shortcuts for the PIM calls."""

    def __init__(self, standin):
        self.standin = standin
        self.world = standin.world
        self.sub = standin.sub
        standin.add_test_identities()
        self.ids = self.world.identities
        self.group = self.world.groups_by_name['jit-approvers']
        self.role = RoleDefinition('JIT VM Access Requester', [GATE_ACTION, 'Microsoft.Network/*/read'], custom=True,
                                   assignable_scopes=['/subscriptions/' + self.sub])
        self.world.roles[self.role.name.lower()] = self.role
        self.gate = self.standin.nsg('rg1', 'vm1-nsg')['id']
        self.session = requests.Session()

    def call(self, method, path, body=None, api=PIM, who='admin', query=None, url=None):
        token = tokens.issue(self.world, self.ids[who], self.standin.base_url + '/')
        params = dict({'api-version': api} if api else {}, **(query or {}))
        return self.session.request(method, url or self.standin.base_url + path, params=None if url else params,
                                    json=body, headers={'Authorization': 'Bearer ' + token},
                                    verify=self.standin.ca_path)

    @property
    def role_id(self):
        return self.world.role_definition_id(self.role)

    def policy(self, scope=None):
        resp = self.call('GET', (scope or self.gate) + AUTHZ + 'roleManagementPolicyAssignments',
                         query={'$filter': "roleDefinitionId eq '{}'".format(self.role_id)})
        assert resp.status_code == 200, resp.text
        return resp.json()['value'][0]['properties']['policyId']

    def require_approval(self, approvers, max_duration='PT2H', scope=None):
        rules = [{'id': 'Approval_EndUser_Assignment', 'ruleType': 'RoleManagementPolicyApprovalRule',
                  'setting': {'isApprovalRequired': True, 'isRequestorJustificationRequired': True,
                              'approvalMode': 'SingleStage',
                              'approvalStages': [{'approvalStageTimeOutInDays': 1,
                                                  'isApproverJustificationRequired': True,
                                                  'escalationTimeInMinutes': 0, 'isEscalationEnabled': False,
                                                  'primaryApprovers': approvers}]}},
                 {'id': 'Expiration_EndUser_Assignment', 'ruleType': 'RoleManagementPolicyExpirationRule',
                  'isExpirationRequired': True, 'maximumDuration': max_duration}]
        resp = self.call('PATCH', self.policy(scope), {'properties': {'rules': rules}})
        assert resp.status_code == 200, resp.text
        return resp.json()

    def make_eligible(self, who='pim-requester', scope=None):
        resp = self.call('PUT', (scope or self.gate) + AUTHZ + 'roleEligibilityScheduleRequests/'
                         + str(uuid.uuid4()), {'properties': {
                             'principalId': self.ids[who].object_id, 'roleDefinitionId': self.role_id,
                             'requestType': 'AdminAssign', 'justification': 'set-up',
                             'scheduleInfo': {'startDateTime': _now(self.world),
                                              'expiration': {'type': 'AfterDuration', 'duration': 'P30D'}}}})
        assert resp.status_code == 201, resp.text
        return resp.json()

    def activate(self, who='pim-requester', duration='PT1H', justification='az vm jit: ports=22/TCP', scope=None,
                 name=None, request_type='SelfActivate', principal=None):
        props = {'principalId': principal or self.ids[who].object_id, 'roleDefinitionId': self.role_id,
                 'requestType': request_type,
                 'scheduleInfo': {'startDateTime': _now(self.world),
                                  'expiration': {'type': 'AfterDuration', 'duration': duration}}}
        if justification is not None:
            props['justification'] = justification
        return self.call('PUT', '{}/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/{}'.format(
            scope or self.gate, name or uuid.uuid4()), {'properties': props}, who=who)

    def approval_of(self, request_body):
        approval = request_body['properties']['approvalId'].rstrip('/').split('/')[-1]
        return approval

    def step_of(self, approval, who='pim-requester'):
        resp = self.call('GET', '/providers/Microsoft.Authorization/roleAssignmentApprovals/' + approval, api=APPROVALS,
                         who=who)
        assert resp.status_code == 200, resp.text
        return resp.json()['properties']['steps'][0]['name']

    def decide(self, approval, result='Approve', who='approver', justification='looks right', method='PUT',
               body=None):
        step = self.step_of(approval)
        if body is None:
            body = {'properties': {'reviewResult': result, 'justification': justification}}
        return self.call(method, '/providers/Microsoft.Authorization/roleAssignmentApprovals/{}/steps/{}'.format(
            approval, step), body, api=APPROVALS, who=who)

    def can_open(self, who='pim-requester'):
        return self.world.is_authorized(self.ids[who], GATE_ACTION, self.gate + '/securityRules/jit-rule')

    def request(self, name, who='pim-requester'):
        resp = self.call('GET', self.gate + '/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/' + name,
                         who=who)
        assert resp.status_code == 200, resp.text
        return resp.json()


def _now(world):
    return world.clock.now().strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def _error(resp):
    return resp.json()['error']['code']


fixture_standin = pytest.fixture(name='standin', scope='module')(fresh_worlds.module_standin)


@pytest.fixture(name='env')
def fixture_env(standin):
    yield from fresh_worlds.fresh_env(standin, Env)


def _example(path):
    return json.loads((SPECS / path).read_text(encoding='utf-8'))


def _shape(value):
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def _keys(value):
    """The key paths of a JSON value whose leaves are not null (what two bodies of one shape share)."""
    if isinstance(value, dict):
        return {k + ('.' + sub if sub else '') for k, v in value.items() if v is not None for sub in _keys(v) or {''}}
    if isinstance(value, list) and value:
        return _keys(value[0])
    return set()


# -- the published examples -----------------------------------------------------------------------------
def test_example_activation_body_validates_and_is_answered_in_the_examples_shape(env):
    example = _example('2020-10-01/examples/PutRoleAssignmentScheduleRequest.json')
    spec = schema.load('authorization-pim-assignment')
    body = example['parameters']['parameters']
    assert spec.validate_request('RoleAssignmentScheduleRequests_Create', body) == []
    assert spec.validate_response('RoleAssignmentScheduleRequests_Create', 201,
                                  example['responses']['201']['body']) == []
    env.make_eligible()
    resp = env.activate()
    assert resp.status_code == 201, resp.text
    got = resp.json()
    assert spec.validate_response('RoleAssignmentScheduleRequests_Create', 201, got) == []
    wanted = _keys(example['responses']['201']['body']) - UNSET
    assert wanted - _keys(got) == set()


def test_example_eligibility_body_validates_and_is_answered_in_the_examples_shape(env):
    example = _example('2020-10-01/examples/PutRoleEligibilityScheduleRequest.json')
    spec = schema.load('authorization-pim-eligibility')
    assert spec.validate_request('RoleEligibilityScheduleRequests_Create', example['parameters']['parameters']) == []
    got = env.make_eligible()
    assert spec.validate_response('RoleEligibilityScheduleRequests_Create', 201, got) == []
    wanted = _keys(example['responses']['201']['body']) - UNSET
    assert wanted - _keys(got) == set()


def test_example_decision_body_validates_and_a_decision_is_answered_in_the_examples_shape(env):
    example = _example('2021-01-01-preview/examples/PutRoleAssignmentApprovalStepById.json')
    spec = schema.load('authorization-approvals')
    assert spec.validate_request('RoleAssignmentApprovalStep_Put', example['parameters']['body']['properties']) == []
    env.ids['approver'].kind = 'user'   # the example's reviewer is a user, with a UPN (a service principal has none)
    env.make_eligible()
    env.require_approval([{'id': env.ids['approver'].object_id, 'userType': 'User'}])
    approval = env.approval_of(env.activate().json())
    resp = env.decide(approval, body=example['parameters']['body'])
    assert resp.status_code == 200, resp.text
    got = resp.json()
    assert spec.validate_response('RoleAssignmentApprovalStep_Put', 200, got) == []
    assert _keys(example['responses']['200']['body']) - _keys(got) == set()
    assert got['properties']['reviewedBy']['principalId'] == env.ids['approver'].object_id
    assert (got['properties']['reviewedBy']['principalType'], got['properties']['reviewedBy']['userPrincipalName']) \
        == ('user', env.ids['approver'].upn)


def test_a_service_principal_reviewer_is_named_without_a_upn(env):
    env.make_eligible()
    env.require_approval([{'id': env.ids['approver'].object_id, 'userType': 'User'}])
    resp = env.decide(env.approval_of(env.activate().json()))
    assert resp.status_code == 200, resp.text
    reviewer = resp.json()['properties']['reviewedBy']
    assert (reviewer['principalId'], reviewer['principalType'], reviewer['userPrincipalName']) == (
        env.ids['approver'].object_id, 'servicePrincipal', None)


def test_policy_patch_with_polymorphic_rules_is_checked_against_each_rules_own_type(env):
    policy = env.policy()
    bad = {'properties': {'rules': [{'id': 'Expiration_EndUser_Assignment',
                                     'ruleType': 'RoleManagementPolicyExpirationRule',
                                     'setting': {'isApprovalRequired': True}}]}}
    resp = env.call('PATCH', policy, bad)
    assert resp.status_code == 400 and _error(resp) == 'InvalidRequestContent'
    assert 'properties.rules[0].setting: unexpected property' in resp.text
    unknown = {'properties': {'rules': [{'id': 'X', 'ruleType': 'RoleManagementPolicyMagicRule'}]}}
    resp = env.call('PATCH', policy, unknown)
    assert resp.status_code == 400 and 'names no subtype' in resp.text
    env.world.schema_violations.clear()


# -- policies -------------------------------------------------------------------------------------------
def test_policy_of_a_role_at_a_scope_is_created_once_with_azures_defaults(env):
    first, second = env.policy(), env.policy()
    assert first == second and first.startswith(env.gate + '/providers/Microsoft.Authorization/roleManagementPolicies/')
    got = env.call('GET', first).json()
    rules = {r['id']: r for r in got['properties']['rules']}
    assert rules['Approval_EndUser_Assignment']['setting']['isApprovalRequired'] is False
    assert rules['Expiration_EndUser_Assignment']['maximumDuration'] == 'PT8H'
    assert 'Justification' in rules['Enablement_EndUser_Assignment']['enabledRules']
    assert rules['Expiration_Admin_Eligibility']['isExpirationRequired'] is True
    assert schema.load('authorization-pim-policies').validate_response('RoleManagementPolicies_Get', 200, got) == []
    other_scope = env.policy('/subscriptions/{}/resourceGroups/rg1'.format(env.sub))
    assert other_scope != first
    listed = env.call('GET', env.gate + AUTHZ + 'roleManagementPolicies').json()['value']
    assert [p['id'] for p in listed] == [first]


def test_policy_patch_merges_rules_by_id_and_needs_the_policy_write_action(env):
    got = env.require_approval([{'id': env.group, 'userType': 'Group'}], max_duration='PT3H')
    rules = {r['id']: r for r in got['properties']['rules']}
    assert rules['Approval_EndUser_Assignment']['setting']['isApprovalRequired'] is True
    assert rules['Expiration_EndUser_Assignment']['maximumDuration'] == 'PT3H'
    assert rules['Enablement_EndUser_Assignment']['enabledRules'] == ['Justification']   # untouched
    resp = env.call('PATCH', env.policy(), {'properties': {'rules': []}}, who='reader')
    assert resp.status_code == 403 and _error(resp) == 'AuthorizationFailed'
    assert 'roleManagementPolicies/write' in resp.text


def test_policy_refuses_approval_without_approvers_and_approvers_it_does_not_know(env):
    resp = env.call('PATCH', env.policy(), {'properties': {'rules': [
        {'id': 'Approval_EndUser_Assignment', 'ruleType': 'RoleManagementPolicyApprovalRule',
         'setting': {'isApprovalRequired': True, 'approvalStages': [{'primaryApprovers': []}]}}]}})
    assert resp.status_code == 400 and _error(resp) == 'RoleManagementPolicyApprovalRuleMissingApprovers'
    resp = env.call('PATCH', env.policy(), {'properties': {'rules': [
        {'id': 'Approval_EndUser_Assignment', 'ruleType': 'RoleManagementPolicyApprovalRule',
         'setting': {'isApprovalRequired': True, 'approvalStages': [{'primaryApprovers': [
             {'id': str(uuid.uuid4()), 'userType': 'User'}]}]}}]}})
    assert resp.status_code == 400 and _error(resp) == 'PrincipalNotFound'
    resp = env.call('PATCH', env.policy(), {'properties': {'rules': [
        {'id': 'No_Such_Rule', 'ruleType': 'RoleManagementPolicyExpirationRule', 'maximumDuration': 'PT1H'}]}})
    assert resp.status_code == 400 and _error(resp) == 'InvalidRoleManagementPolicyRule'


# -- eligibility and activation without approval ---------------------------------------------------------
def test_activation_needs_an_eligibility_at_or_above_the_scope(env):
    resp = env.activate()
    assert resp.status_code == 400 and _error(resp) == 'RoleAssignmentDoesNotExist'
    env.make_eligible(scope='/subscriptions/{}/resourceGroups/rg1'.format(env.sub))
    assert env.activate().status_code == 201


def test_eligibility_needs_the_eligibility_request_write_action_and_is_listed_as_the_callers(env):
    resp = env.call('PUT', env.gate + '/providers/Microsoft.Authorization/roleEligibilityScheduleRequests/'
                    + str(uuid.uuid4()), {'properties': {
                        'principalId': env.ids['pim-requester'].object_id, 'roleDefinitionId': env.role_id,
                        'requestType': 'AdminAssign'}}, who='reader')
    assert resp.status_code == 403 and 'roleEligibilityScheduleRequests/write' in resp.text
    env.make_eligible()
    mine = env.call('GET', env.gate + '/providers/Microsoft.Authorization/roleEligibilityScheduleInstances',
                    who='pim-requester', query={'$filter': 'asTarget()'}).json()['value']
    assert [e['properties']['roleDefinitionId'] for e in mine] == [env.role_id]
    others = env.call('GET', env.gate + '/providers/Microsoft.Authorization/roleEligibilitySchedules',
                      who='approver', query={'$filter': 'asTarget()'}).json()['value']
    assert others == []


def test_eligibility_expires_when_the_admin_eligibility_rule_requires_it_and_not_given(env):
    resp = env.call('PUT', env.gate + '/providers/Microsoft.Authorization/roleEligibilityScheduleRequests/'
                    + str(uuid.uuid4()), {'properties': {'principalId': env.ids['pim-requester'].object_id,
                                                         'roleDefinitionId': env.role_id, 'requestType': 'AdminAssign',
                                                         'scheduleInfo': {'expiration': {'type': 'NoExpiration'}}}})
    assert resp.status_code == 400 and 'ExpirationRule' in resp.text
    env.call('PATCH', env.policy(), {'properties': {'rules': [
        {'id': 'Expiration_Admin_Eligibility', 'ruleType': 'RoleManagementPolicyExpirationRule',
         'isExpirationRequired': False, 'maximumDuration': 'P365D'}]}})
    resp = env.call('PUT', env.gate + '/providers/Microsoft.Authorization/roleEligibilityScheduleRequests/'
                    + str(uuid.uuid4()), {'properties': {'principalId': env.ids['pim-requester'].object_id,
                                                         'roleDefinitionId': env.role_id, 'requestType': 'AdminAssign',
                                                         'scheduleInfo': {'expiration': {'type': 'NoExpiration'}}}})
    assert resp.status_code == 201, resp.text


def test_activation_without_approval_grants_the_role_until_its_end_only(env):
    env.make_eligible()
    assert not env.can_open()
    resp = env.activate(duration='PT1H')
    assert resp.status_code == 201 and resp.json()['properties']['status'] == 'Provisioned'
    assert env.can_open()
    env.world.clock.advance(minutes=59)
    assert env.can_open()
    env.world.clock.advance(minutes=2)
    assert not env.can_open()


def test_activation_enforces_justification_and_maximum_duration(env):
    env.make_eligible()
    resp = env.activate(justification=None)
    assert resp.status_code == 400 and _error(resp) == 'RoleAssignmentRequestPolicyValidationFailed'
    assert resp.json()['error']['message'] == 'The following policy rules failed: ["JustificationRule"]'
    resp = env.activate(duration='PT9H')
    assert resp.status_code == 400
    assert resp.json()['error']['message'] == 'The following policy rules failed: ["ExpirationRule"]'
    assert not env.can_open()


def test_activation_only_for_the_caller_and_refused_when_already_active(env):
    env.make_eligible()
    resp = env.activate(principal=env.ids['approver'].object_id)
    assert resp.status_code == 400 and _error(resp) == 'InvalidPrincipalId'
    assert env.activate().status_code == 201
    resp = env.activate()
    assert resp.status_code == 400 and _error(resp) == 'RoleAssignmentExists'


def test_request_names_must_be_new_guids(env):
    env.make_eligible()
    resp = env.activate(name='not-a-guid')
    assert resp.status_code == 400 and _error(resp) == 'InvalidRoleAssignmentScheduleRequestName'
    name = str(uuid.uuid4())
    assert env.activate(name=name).status_code == 201
    resp = env.activate(name=name)
    assert resp.status_code == 400 and _error(resp) == 'RoleAssignmentRequestExists'


def test_activation_body_is_checked_against_the_swagger(env):
    env.make_eligible()
    resp = env.call('PUT', env.gate + '/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/'
                    + str(uuid.uuid4()), {'properties': {'principalId': env.ids['pim-requester'].object_id,
                                                         'roleDefinitionId': env.role_id,
                                                         'justfication': 'typo'}}, who='pim-requester')
    assert resp.status_code == 400 and _error(resp) == 'InvalidRequestContent'
    assert 'properties.requestType: required property is missing' in resp.text
    assert 'properties.justfication: unexpected property' in resp.text
    env.world.schema_violations.clear()


# -- approval ----------------------------------------------------------------------------------------------
def _pending(env, approvers=None, duration='PT1H'):
    env.make_eligible()
    env.require_approval(approvers or [{'id': env.ids['approver'].object_id, 'userType': 'User'}])
    resp = env.activate(duration=duration)
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_approval_required_leaves_the_request_pending_and_grants_nothing(env):
    body = _pending(env)
    assert body['properties']['status'] == 'PendingApproval'
    assert body['properties']['approvalId'].endswith(env.approval_of(body))
    assert not env.can_open()
    again = env.activate()
    assert again.status_code == 400 and _error(again) == 'PendingRoleAssignmentRequest'


def test_approval_by_a_designated_approver_grants_from_the_decision_to_the_requests_end(env):
    body = _pending(env, duration='PT1H')
    env.world.clock.advance(minutes=20)
    resp = env.decide(env.approval_of(body))
    assert resp.status_code == 200, resp.text
    assert resp.json()['properties']['reviewResult'] == 'Approve'
    assert env.request(body['name'])['properties']['status'] == 'Provisioned'
    assert env.can_open()
    env.world.clock.advance(minutes=41)
    assert not env.can_open()


def test_an_activation_below_the_eligibility_is_held_to_the_approval_set_at_the_eligibility(env):
    env.make_eligible()
    env.require_approval([{'id': env.ids['approver'].object_id, 'userType': 'User'}])
    resp = env.activate(scope=env.gate + '/securityRules/jit-rule')
    assert resp.status_code == 201, resp.text
    assert resp.json()['properties']['status'] == 'PendingApproval'
    assert not env.can_open()


def test_a_member_of_a_designated_group_may_approve(env):
    body = _pending(env, approvers=[{'id': env.group, 'userType': 'Group'}])
    assert env.decide(env.approval_of(body), who='approver').status_code == 403
    resp = env.decide(env.approval_of(body), who='group-approver')
    assert resp.status_code == 200, resp.text
    assert env.can_open()


def test_the_requester_can_never_decide_even_when_designated(env):
    body = _pending(env, approvers=[{'id': env.ids['pim-requester'].object_id, 'userType': 'User'},
                                    {'id': env.ids['approver'].object_id, 'userType': 'User'}])
    resp = env.decide(env.approval_of(body), who='pim-requester')
    assert resp.status_code == 400 and _error(resp) == 'SelfApprovalNotAllowed'
    assert not env.can_open()


def test_a_non_approver_cannot_decide_nor_read_the_approval(env):
    body = _pending(env)
    approval = env.approval_of(body)
    step = env.step_of(approval)
    resp = env.call('PUT', '/providers/Microsoft.Authorization/roleAssignmentApprovals/{}/steps/{}'.format(
        approval, step), {'properties': {'reviewResult': 'Approve', 'justification': 'x'}}, api=APPROVALS, who='admin')
    assert resp.status_code == 403 and _error(resp) == 'ApproverNotAuthorized'
    resp = env.call('GET', '/providers/Microsoft.Authorization/roleAssignmentApprovals/' + approval, api=APPROVALS,
                    who='reader')
    assert resp.status_code == 404
    assert env.call('GET', '/providers/Microsoft.Authorization/roleAssignmentApprovals/' + approval, api=APPROVALS,
                    who='pim-requester').status_code == 200
    assert not env.can_open()


def test_deny_ends_the_request_denied_with_the_approvers_reason(env):
    body = _pending(env)
    resp = env.decide(env.approval_of(body), result='Deny', justification='not during the freeze')
    assert resp.status_code == 200
    assert env.request(body['name'])['properties']['status'] == 'Denied'
    step = env.call('GET', '/providers/Microsoft.Authorization/roleAssignmentApprovals/' + env.approval_of(body),
                    api=APPROVALS, who='pim-requester').json()['properties']['steps'][0]['properties']
    assert step['reviewResult'] == 'Deny' and step['justification'] == 'not during the freeze'
    assert not env.can_open()


def test_a_decision_is_taken_once(env):
    body = _pending(env, approvers=[{'id': env.ids['approver'].object_id, 'userType': 'User'},
                                    {'id': env.group, 'userType': 'Group'}])
    approval = env.approval_of(body)
    assert env.decide(approval).status_code == 200
    resp = env.decide(approval, who='group-approver', result='Deny')
    assert resp.status_code == 400 and _error(resp) == 'ApprovalAlreadyCompleted'
    assert env.can_open()
    assert len([a for a in env.world.assignments if a.origin == 'activated']) == 1


def test_a_decision_needs_the_wrapped_body_a_known_result_and_a_justification(env):
    body = _pending(env)
    approval = env.approval_of(body)
    resp = env.decide(approval, body={'reviewResult': 'Approve', 'justification': 'flat'})
    assert resp.status_code == 400 and _error(resp) == 'InvalidRequestContent'
    resp = env.decide(approval, result='NotReviewed')
    assert resp.status_code == 400 and _error(resp) == 'InvalidReviewResult'
    resp = env.decide(approval, justification='')
    assert resp.status_code == 400 and _error(resp) == 'JustificationRequired'
    assert env.decide(approval, method='PATCH').status_code == 200


def test_a_request_times_out_when_its_window_passes_and_can_no_longer_be_approved(env):
    body = _pending(env, duration='PT1H')
    env.world.clock.advance(minutes=61)
    assert env.request(body['name'])['properties']['status'] == 'TimedOut'
    resp = env.decide(env.approval_of(body))
    assert resp.status_code == 400 and _error(resp) == 'ApprovalExpired'
    assert not env.can_open()
    assert env.activate().status_code == 201   # no longer pending: a new request may be filed


def test_a_pending_request_times_out_after_24_hours(env):
    env.make_eligible()
    env.require_approval([{'id': env.ids['approver'].object_id, 'userType': 'User'}], max_duration='P2D')
    body = env.activate(duration='P1DT12H').json()
    env.world.clock.advance(hours=24, seconds=1)
    assert env.request(body['name'])['properties']['status'] == 'TimedOut'


def test_cancel_of_ones_own_pending_request(env):
    body = _pending(env)
    path = '{}/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/{}/cancel'.format(
        env.gate, body['name'])
    assert env.call('POST', path, who='approver').status_code == 403
    resp = env.call('POST', path, who='pim-requester')
    assert resp.status_code == 200 and resp.content == b''
    assert env.request(body['name'])['properties']['status'] == 'Canceled'
    assert env.decide(env.approval_of(body)).status_code == 400
    again = env.call('POST', path, who='pim-requester')
    assert again.status_code == 400


# -- ending an activation -----------------------------------------------------------------------------------
def test_self_deactivate_ends_the_callers_activation_but_not_in_its_first_five_minutes(env):
    env.make_eligible()
    env.activate()
    env.world.clock.advance(minutes=4)
    early = env.activate(request_type='SelfDeactivate', justification=None)
    assert early.status_code == 400 and _error(early) == 'ActiveDurationTooShort'
    assert env.can_open()
    env.world.clock.advance(minutes=1)
    resp = env.activate(request_type='SelfDeactivate', justification=None)
    assert resp.status_code == 201 and resp.json()['properties']['status'] == 'Revoked'
    assert not env.can_open()
    again = env.activate(request_type='SelfDeactivate', justification=None)
    assert again.status_code == 400 and _error(again) == 'RoleAssignmentDoesNotExist'


def test_admin_remove_ends_anyones_activation_and_needs_the_delete_action(env):
    env.make_eligible()
    env.activate()
    who = env.ids['pim-requester'].object_id
    refused = env.activate(who='approver', principal=who, request_type='AdminRemove', justification=None)
    assert refused.status_code == 403 and 'roleAssignments/delete' in refused.text
    resp = env.activate(who='admin', principal=who, request_type='AdminRemove', justification=None)
    assert resp.status_code == 201 and resp.json()['properties']['status'] == 'Revoked'
    assert not env.can_open()


# -- lists -------------------------------------------------------------------------------------------------
def test_request_lists_as_requestor_target_and_approver(env):
    body = _pending(env, approvers=[{'id': env.group, 'userType': 'Group'}])
    base = env.gate + '/providers/Microsoft.Authorization/roleAssignmentScheduleRequests'
    sub = '/subscriptions/{}/providers/Microsoft.Authorization/roleAssignmentScheduleRequests'.format(env.sub)

    def names(path, who, flt):
        resp = env.call('GET', path, who=who, query={'$filter': flt})
        assert resp.status_code == 200, resp.text
        assert schema.load('authorization-pim-assignment').validate_response(
            'RoleAssignmentScheduleRequests_ListForScope', 200, resp.json()) == []
        return [r['name'] for r in resp.json()['value']]
    assert names(base, 'pim-requester', 'asRequestor()') == [body['name']]
    assert names(sub, 'pim-requester', 'asTarget()') == [body['name']]
    assert names(sub, 'group-approver', 'asApprover()') == [body['name']]
    assert names(sub, 'approver', 'asApprover()') == []
    refused = env.call('GET', sub, who='approver', query={'$filter': "principalId eq 'x'"})
    assert refused.status_code == 200   # Reader holds */read: roleAssignmentScheduleRequests/read
    bad = env.call('GET', sub, who='approver', query={'$filter': 'isMine()'})
    assert bad.status_code == 400


def test_approvals_are_listed_for_their_approvers_at_tenant_and_scope(env):
    body = _pending(env, approvers=[{'id': env.group, 'userType': 'Group'}])
    approval = env.approval_of(body)
    for path in ('/providers/Microsoft.Authorization/roleAssignmentApprovals',
                 env.gate + '/providers/Microsoft.Authorization/roleAssignmentApprovals'):
        resp = env.call('GET', path, api=APPROVALS, who='group-approver', query={'$filter': 'asApprover()'})
        assert resp.status_code == 200, resp.text
        assert [a['name'] for a in resp.json()['value']] == [approval]
        step = resp.json()['value'][0]['properties']['steps'][0]['properties']
        assert step['assignedToMe'] is True and step['status'] == 'InProgress'
        assert schema.load('authorization-approvals').validate_response('RoleAssignmentApproval_List', 200,
                                                                        resp.json()) == []
    none = env.call('GET', '/providers/Microsoft.Authorization/roleAssignmentApprovals', api=APPROVALS,
                    who='approver', query={'$filter': 'asApprover()'})
    assert none.json()['value'] == []


def test_lists_page_with_next_link(env):
    env.make_eligible()
    env.make_eligible(who='approver')
    env.world.page_size = 1
    path = env.gate + '/providers/Microsoft.Authorization/roleEligibilityScheduleInstances'
    first = env.call('GET', path).json()
    assert len(first['value']) == 1 and 'nextLink' in first
    second = env.call('GET', None, api=None, url=first['nextLink']).json()
    assert len(second['value']) == 1 and 'nextLink' not in second


def test_assignment_instances_list_live_activations(env):
    env.make_eligible()
    env.activate(duration='PT1H')
    path = env.gate + '/providers/Microsoft.Authorization/roleAssignmentScheduleInstances'

    def kinds():
        found = env.call('GET', path, who='pim-requester', query={'$filter': 'asTarget()'}).json()['value']
        return sorted((i['properties']['roleDefinitionId'].split('/')[-1], i['properties']['assignmentType'])
                      for i in found)
    reader = env.world.roles['reader'].role_id
    assert kinds() == sorted([(env.role.role_id, 'Activated'), (reader, 'Assigned')])
    env.world.clock.advance(minutes=61)
    assert kinds() == [(reader, 'Assigned')]


# -- licence, api-version, Activity Log --------------------------------------------------------------------
def test_without_a_p2_licence_every_pim_and_approval_endpoint_refuses(env):
    env.make_eligible()
    env.world.pim_licensed = False
    calls = [env.call('GET', env.gate + '/providers/Microsoft.Authorization/roleManagementPolicyAssignments',
                      query={'$filter': "roleDefinitionId eq '{}'".format(env.role_id)}),
             env.activate(),
             env.call('GET', env.gate + '/providers/Microsoft.Authorization/roleEligibilityScheduleInstances'),
             env.call('GET', '/providers/Microsoft.Authorization/roleAssignmentApprovals', api=APPROVALS)]
    for resp in calls:
        assert resp.status_code == 400 and _error(resp) == 'AadPremiumLicenseRequired'
        assert resp.json()['error']['message'] == 'The tenant needs an AAD Premium 2 license.'
    control = requests.post(env.standin.base_url + '/_standin/pim-licence', json={'licensed': True},
                            verify=env.standin.ca_path)
    assert control.status_code == 200 and env.world.pim_licensed


def test_a_wrong_api_version_is_refused(env):
    resp = env.call('GET', env.gate + '/providers/Microsoft.Authorization/roleEligibilityScheduleInstances',
                    api='2018-01-01')
    assert resp.status_code == 400 and _error(resp) == 'NoRegisteredProviderFound'
    resp = env.call('GET', '/providers/Microsoft.Authorization/roleAssignmentApprovals', api=PIM)
    assert resp.status_code == 400


def test_requests_decisions_and_activations_are_in_the_activity_log_with_their_callers(env):
    body = _pending(env)
    env.decide(env.approval_of(body))
    log = [(e['operationName']['value'], e['caller']) for e in env.world.activity_log]
    requester, approver = env.ids['pim-requester'].caller, env.ids['approver'].caller
    assert ('Microsoft.Authorization/roleAssignmentScheduleRequests/write', requester) in log
    assert ('Microsoft.Authorization/roleAssignmentApprovals/steps/write', approver) in log
    assert ('Microsoft.Authorization/roleAssignments/write', requester) in log


def test_iso_durations_parse_as_pim_writes_them():
    assert authorization.parse_iso_duration('PT8H') == dt.timedelta(hours=8)
    assert authorization.parse_iso_duration('P1DT2H30M') == dt.timedelta(days=1, hours=2, minutes=30)
    for bad in ('', 'P', 'PT', '8H', 'PT1H30'):
        with pytest.raises(ValueError):
            authorization.parse_iso_duration(bad)
