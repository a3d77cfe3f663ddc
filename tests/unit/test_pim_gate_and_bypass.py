# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Approval's set-up logic: the arguments, what a PIM policy must be patched with, who is already eligible, who
can open access without approval, and which PIM requests `show` lists as pending for a VM."""
import copy
from datetime import timedelta
from types import SimpleNamespace

import pytest

from azext_jit.errors import BadInput, MissingInput, UsageError
from azext_jit.pim import bypass, gate
from azext_jit.pim.asks import Ask, format_ask
from azext_jit.pim.overview import pending_requests
from azext_jit.pim.roles import INITIATE, NIC_WRITE, NSG_WRITE, RULE_WRITE

SUB = '/subscriptions/00000000-0000-0000-0000-0000000000a1'
RG = SUB + '/resourceGroups/rg'
NSG = RG + '/providers/Microsoft.Network/networkSecurityGroups/app1-nsg'
NIC = RG + '/providers/Microsoft.Network/networkInterfaces/app1-nic'
POLICY = RG + '/providers/Microsoft.Security/locations/westeurope/jitNetworkAccessPolicies/default'
VM = RG + '/providers/Microsoft.Compute/virtualMachines/app1'
ROLE = SUB + '/providers/Microsoft.Authorization/roleDefinitions/5a4f1c3e-0000-4000-8000-00000000f00d'
ALICE = 'aaaaaaaa-0000-4000-8000-000000000001'
BOB = 'bbbbbbbb-0000-4000-8000-000000000002'
GROUP = 'cccccccc-0000-4000-8000-000000000003'
CAROL = 'dddddddd-0000-4000-8000-000000000004'


def _rule(rule_id, caller, level, rule_type, **settings):
    return dict({'id': rule_id, 'ruleType': rule_type,
                 'target': {'caller': caller, 'operations': ['All'], 'level': level, 'targetObjects': None}},
                **settings)


def pim_default_rules():
    """A role's policy as PIM creates it: no approval, 8 hours' activation, eligibility that must end."""
    return [
        _rule('Approval_EndUser_Assignment', 'EndUser', 'Assignment', 'RoleManagementPolicyApprovalRule',
              setting={'isApprovalRequired': False, 'isApprovalRequiredForExtension': False,
                       'isRequestorJustificationRequired': True, 'approvalMode': 'SingleStage',
                       'approvalStages': [{'approvalStageTimeOutInDays': 1, 'isApproverJustificationRequired': True,
                                           'escalationTimeInMinutes': 0, 'primaryApprovers': [],
                                           'isEscalationEnabled': False, 'escalationApprovers': None}]}),
        _rule('Expiration_EndUser_Assignment', 'EndUser', 'Assignment', 'RoleManagementPolicyExpirationRule',
              isExpirationRequired=True, maximumDuration='PT8H'),
        _rule('Enablement_EndUser_Assignment', 'EndUser', 'Assignment', 'RoleManagementPolicyEnablementRule',
              enabledRules=['MultiFactorAuthentication']),
        _rule('Expiration_Admin_Eligibility', 'Admin', 'Eligibility', 'RoleManagementPolicyExpirationRule',
              isExpirationRequired=True, maximumDuration='P365D'),
        _rule('Notification_Admin_Admin_Eligibility', 'Admin', 'Eligibility', 'RoleManagementPolicyNotificationRule',
              notificationType='Email', recipientType='Admin'),
    ]


APPROVAL = gate.Approval((ALICE,), (GROUP,), (CAROL,))


def _apply(rules, patch):
    """The policy after a PATCH: rules merged by id, as PIM does."""
    merged = {r['id']: r for r in copy.deepcopy(rules)}
    merged.update({r['id']: r for r in patch})
    return list(merged.values())


# -- arguments ------------------------------------------------------------------------------------------------
def test_approval_arguments_are_entra_object_ids_lower_cased_and_each_once():
    got = gate.settings(True, [ALICE.upper(), ALICE], [GROUP], [CAROL, CAROL])
    assert got == gate.Approval((ALICE,), (GROUP,), (CAROL,))
    assert gate.settings(False) is None


@pytest.mark.parametrize('args, error, words', [
    ((True, ['alice@contoso.com'], None, None), BadInput, "--approvers: 'alice@contoso.com' is not"),
    ((True, [ALICE], ['jit-approvers'], None), BadInput, '--approver-groups'),
    ((True, [ALICE], None, ['1234']), BadInput, '--requesters'),
    ((True, None, None, [CAROL]), MissingInput, 'needs at least one approver'),
    ((False, [ALICE], None, None), UsageError, '--approvers only apply with --require-approval'),
    ((False, None, None, [CAROL]), UsageError, '--requesters only apply with --require-approval'),
])
def test_approval_arguments_that_cannot_work_are_refused_with_the_fix(args, error, words):
    with pytest.raises(error) as caught:
        gate.settings(*args)
    assert words in caught.value.message and caught.value.recommendation


# -- the PIM policy -------------------------------------------------------------------------------------------
def test_a_default_policy_gets_approval_justification_maximum_and_permanent_eligibility():
    patch = gate.policy_patch(pim_default_rules(), APPROVAL, timedelta(hours=3))
    by_id = {r['id']: r for r in patch}
    assert set(by_id) == {'Approval_EndUser_Assignment', 'Expiration_EndUser_Assignment',
                          'Enablement_EndUser_Assignment', 'Expiration_Admin_Eligibility'}
    setting = by_id['Approval_EndUser_Assignment']['setting']
    assert setting['isApprovalRequired'] is True and len(setting['approvalStages']) == 1
    assert setting['approvalStages'][0]['primaryApprovers'] == [{'id': ALICE, 'userType': 'User'},
                                                                {'id': GROUP, 'userType': 'Group'}]
    assert setting['approvalStages'][0]['approvalStageTimeOutInDays'] == 1   # the rest of the rule as read
    assert by_id['Expiration_EndUser_Assignment']['maximumDuration'] == 'PT3H'
    assert by_id['Enablement_EndUser_Assignment']['enabledRules'] == ['MultiFactorAuthentication', 'Justification']
    assert by_id['Expiration_Admin_Eligibility']['isExpirationRequired'] is False
    for rule in patch:   # whole rules, typed and targeted, without the nulls Azure echoes
        assert rule['ruleType'] and rule['target']['caller'] and 'targetObjects' not in rule['target']
        assert 'escalationApprovers' not in str(rule)
    settings = gate.read_settings(_apply(pim_default_rules(), patch))
    assert settings == {'approvalRequired': True, 'approvalStages': 1, 'approvers': [ALICE],
                        'approverGroups': [GROUP], 'maximumActivation': 'PT3H', 'justificationRequired': True,
                        'permanentEligibility': True}


def test_a_policy_already_set_needs_no_patch_however_its_values_are_spelled():
    rules = _apply(pim_default_rules(), gate.policy_patch(pim_default_rules(), APPROVAL, timedelta(hours=3)))
    for rule in rules:
        if rule['id'] == 'Expiration_EndUser_Assignment':
            rule['maximumDuration'] = 'PT180M'
        if rule['id'] == 'Approval_EndUser_Assignment':   # ids in another case, approvers in another order
            rule['setting']['approvalStages'][0]['primaryApprovers'] = [{'id': GROUP.upper(), 'userType': 'Group'},
                                                                        {'id': ALICE, 'userType': 'User'}]
    assert gate.policy_patch(rules, APPROVAL, timedelta(hours=3)) == []


def test_only_the_rules_that_differ_are_patched():
    rules = _apply(pim_default_rules(), gate.policy_patch(pim_default_rules(), APPROVAL, timedelta(hours=3)))
    other = gate.Approval((BOB,), (), ())
    assert [r['id'] for r in gate.policy_patch(rules, other, timedelta(hours=3))] == ['Approval_EndUser_Assignment']
    assert [r['id'] for r in gate.policy_patch(rules, APPROVAL, timedelta(hours=1))] == \
        ['Expiration_EndUser_Assignment']


def test_a_second_approval_stage_is_replaced_by_the_one_stage_asked_for():
    rules = _apply(pim_default_rules(), gate.policy_patch(pim_default_rules(), APPROVAL, timedelta(hours=3)))
    stages = rules[0]['setting']['approvalStages']
    stages.append(copy.deepcopy(stages[0]))
    patch = gate.policy_patch(rules, APPROVAL, timedelta(hours=3))
    assert [len(r['setting']['approvalStages']) for r in patch] == [1]


def test_a_policy_listing_none_of_the_rules_gets_each_of_them_whole():
    patch = gate.policy_patch([], APPROVAL, timedelta(minutes=90))
    assert [(r['id'], r['ruleType'], r['target']['level']) for r in patch] == [
        ('Approval_EndUser_Assignment', 'RoleManagementPolicyApprovalRule', 'Assignment'),
        ('Expiration_EndUser_Assignment', 'RoleManagementPolicyExpirationRule', 'Assignment'),
        ('Enablement_EndUser_Assignment', 'RoleManagementPolicyEnablementRule', 'Assignment'),
        ('Expiration_Admin_Eligibility', 'RoleManagementPolicyExpirationRule', 'Eligibility')]
    assert patch[1]['maximumDuration'] == 'PT1H30M'


# -- eligibility ----------------------------------------------------------------------------------------------
def _eligibility(principal, scope, role=ROLE):
    return {'properties': {'principalId': principal, 'roleDefinitionId': role, 'scope': scope}}


def test_only_eligibility_at_the_gate_scope_itself_is_gated_one_above_it_is_named_apart():
    other_nsg = RG + '/providers/Microsoft.Network/networkSecurityGroups/other-nsg'
    other_role = SUB + '/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7'
    instances = [_eligibility(ALICE.upper(), RG), _eligibility(BOB, other_nsg), _eligibility(CAROL, NSG, other_role),
                 _eligibility(GROUP, NSG, '/providers/Microsoft.Authorization/roleDefinitions/'
                                          '5a4f1c3e-0000-4000-8000-00000000f00d')]
    assert gate.eligible_principals(instances, ROLE, NSG) == [GROUP]
    assert gate.eligible_above(instances, ROLE, NSG) == [{'principalId': ALICE.lower(), 'scope': RG}]
    assert gate.covers(SUB, NSG) and gate.covers(NSG + '/', NSG.upper()) and not gate.covers(NSG, RG)
    assert not gate.covers(RG + '2', NSG)


def test_an_existing_requester_role_is_checked_for_the_action_each_mode_opens_access_with():
    nsg_only = {'properties': {'permissions': [{'actions': [RULE_WRITE], 'notActions': []}],
                               'assignableScopes': [SUB]}}
    assert gate.missing_actions(nsg_only, [INITIATE, RULE_WRITE]) == [INITIATE]
    assert gate.assignable_at(nsg_only, RG) and not gate.assignable_at(
        {'properties': {'assignableScopes': [SUB + '/resourceGroups/other']}}, RG)


# -- who can open access without approval ------------------------------------------------------------------
def _definition(guid, name, actions, not_actions=()):
    return {'id': f'{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}', 'name': guid,
            'properties': {'roleName': name, 'permissions': [{'actions': list(actions),
                                                              'notActions': list(not_actions)}]}}


DEFINITIONS = [
    _definition('8e3af657-a8ff-443c-a75c-2fe8c4bcb635', 'Owner', ['*']),
    _definition('b24988ac-6180-42a0-ab88-20f7382dd24c', 'Contributor', ['*'],
                ['Microsoft.Authorization/*/Delete', 'Microsoft.Authorization/*/Write']),
    _definition('acdd72a7-3385-48ef-bd42-f606fba81ae7', 'Reader', ['*/read']),
    _definition('4d97b98b-1d4f-4787-a291-c67834d212e7', 'Network Contributor', ['Microsoft.Network/*', '*/read']),
    _definition('fb1c8493-542b-48eb-b624-b4c8fea62acd', 'Security Admin', ['Microsoft.Security/*', '*/read']),
    _definition('5a4f1c3e-0000-4000-8000-00000000f00d', 'JIT VM Access Requester', [INITIATE, RULE_WRITE]),
]


def _assignment(principal, role_guid, scope):
    return {'properties': {'principalId': principal, 'principalType': 'User', 'scope': scope,
                           'roleDefinitionId': f'{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}'}}


def _mode(actions):
    return SimpleNamespace(approval_actions=actions)


TARGET = SimpleNamespace(nsg_id=NSG, nic_id=NIC)


def test_the_doors_are_the_nsg_the_nic_and_the_modes_own_action_over_its_gate_scope():
    assert bypass.doors(TARGET, _mode((INITIATE,)), POLICY) == [(NSG, RULE_WRITE), (NSG, NSG_WRITE),
                                                                (NIC, NIC_WRITE), (POLICY, INITIATE)]
    assert bypass.doors(TARGET, _mode((RULE_WRITE,)), NSG) == [(NSG, RULE_WRITE), (NSG, NSG_WRITE), (NIC, NIC_WRITE)]


def test_active_roles_that_open_a_door_are_listed_readers_and_other_resources_are_not():
    other_nsg = RG + '/providers/Microsoft.Network/networkSecurityGroups/other-nsg'
    assignments = [
        _assignment('owner', '8e3af657-a8ff-443c-a75c-2fe8c4bcb635', SUB),
        _assignment('reader', 'acdd72a7-3385-48ef-bd42-f606fba81ae7', SUB),
        _assignment('contributor', 'b24988ac-6180-42a0-ab88-20f7382dd24c', RG),
        _assignment('netadmin-nic', '4d97b98b-1d4f-4787-a291-c67834d212e7', NIC),
        _assignment('netadmin-elsewhere', '4d97b98b-1d4f-4787-a291-c67834d212e7', other_nsg),
        _assignment('secadmin', 'fb1c8493-542b-48eb-b624-b4c8fea62acd', RG),
        _assignment('standing-requester', '5a4f1c3e-0000-4000-8000-00000000f00d', POLICY),
        _assignment('mystery', '11111111-2222-3333-4444-555555555555', RG),
    ]
    found = bypass.principals(assignments, DEFINITIONS, bypass.doors(TARGET, _mode((INITIATE,)), POLICY))
    by_principal = {p['principalId']: p for p in found}
    assert set(by_principal) == {'owner', 'contributor', 'netadmin-nic', 'secadmin', 'standing-requester',
                                 'mystery'}
    assert by_principal['owner']['roleName'] == 'Owner' and by_principal['owner']['scope'] == SUB
    assert by_principal['owner']['actions'] == sorted([RULE_WRITE, NSG_WRITE, NIC_WRITE, INITIATE])
    assert by_principal['netadmin-nic']['actions'] == [NIC_WRITE] and by_principal['netadmin-nic']['opens'] == [NIC]
    assert by_principal['secadmin']['actions'] == [INITIATE]
    assert by_principal['standing-requester']['opens'] == [POLICY]
    assert by_principal['mystery']['roleName'] is None   # a role that cannot be read cannot be ruled out
    # NSG mode: the policy's initiate is not a door, so Security Admin opens nothing
    nsg_mode = bypass.principals(assignments, DEFINITIONS, bypass.doors(TARGET, _mode((RULE_WRITE,)), NSG))
    assert 'secadmin' not in {p['principalId'] for p in nsg_mode}
    assert 'owner (Owner at ' + SUB + ')' in bypass.describe(found)


# -- pending requests ---------------------------------------------------------------------------------------
def test_show_lists_the_vms_pending_pim_requests_with_what_they_ask():
    other_vm = VM.replace('app1', 'app2')
    ask = format_ask(Ask(VM, ((22, 'TCP'),), '203.0.113.5/32', timedelta(hours=1), 'patch night'))

    def request(name, status='PendingApproval', justification=ask, scope=POLICY, role=ROLE, created='2026-01-01'):
        return {'name': name, 'properties': {'status': status, 'roleDefinitionId': role, 'scope': scope,
                                             'principalId': CAROL, 'justification': justification,
                                             'createdOn': created, 'approvalId': f'/providers/x/{name}-approval'}}
    found = pending_requests([
        request('mine', created='2026-01-02'),
        request('by-hand', justification='please', created='2026-01-01'),
        request('other-vm', justification=format_ask(Ask(other_vm, ((22, 'TCP'),), None, timedelta(hours=1)))),
        request('approved', status='Provisioned'),
        request('elsewhere', scope=NSG),
        request('other-role', role=ROLE.replace('f00d', 'beef')),
    ], ROLE, POLICY, VM.upper())
    assert [r['id'] for r in found] == ['by-hand', 'mine']
    assert found[0]['asked'] is None and found[0]['justification'] == 'please'
    assert found[1]['asked']['ports'] == ['22/TCP'] and found[1]['asked']['source'] == '203.0.113.5/32'
    assert found[1]['asked']['duration'] == 'PT1H' and found[1]['requester'] == CAROL
    assert found[1]['approvalId'] == 'mine-approval'


def test_an_nsg_on_the_subnet_can_also_be_taken_off_by_whoever_may_rewrite_the_subnet_or_its_vnet():
    vnet = RG + '/providers/Microsoft.Network/virtualNetworks/v'
    target = SimpleNamespace(nsg_id=NSG, nic_id=NIC, nsg_scope='subnet', subnet_id=vnet + '/subnets/default')
    found = bypass.doors(target, _mode((RULE_WRITE,)), NSG)
    assert (vnet + '/subnets/default', 'Microsoft.Network/virtualNetworks/subnets/write') in found
    assert (vnet, 'Microsoft.Network/virtualNetworks/write') in found
    assert all('virtualNetworks' not in a for _, a in bypass.doors(TARGET, _mode((RULE_WRITE,)), NSG))


def test_a_requester_role_granting_more_than_the_readme_role_is_named_with_what_it_adds():
    from azext_jit.pim.roles import REQUESTER_ACTIONS
    same = {'properties': {'permissions': [{'actions': [a.upper() for a in REQUESTER_ACTIONS]}]}}
    assert gate.extra_grants(same) == []
    wider = {'properties': {'permissions': [{'actions': list(REQUESTER_ACTIONS) + ['Microsoft.Network/*'],
                                             'dataActions': ['Microsoft.Storage/*']}]}}
    assert gate.extra_grants(wider) == ['Microsoft.Network/*', 'Microsoft.Storage/*']
