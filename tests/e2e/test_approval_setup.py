# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""`enable --require-approval` sets approval up in Entra PIM at the scope where Azure checks the permission that
opens a port (the JIT policy in Defender mode, the VM's NSG in NSG mode), exactly once; `show` reads it back from
PIM with the pending requests and who can open access without approval; `disable` forgets the VM's note only."""
import datetime as dt
import json
import uuid

import pytest

from azext_jit.pim.asks import Ask, format_ask
from azext_jit.pim.roles import REQUESTER_ACTIONS, REQUESTER_ROLE
from tests.harness import (error_lines, jit, jit_tags, ok, policy_id, product_rules, stored_policy, vm_rules,
                           writes_since)
from tests.standin import authorization

NOTE = 'azvmjit-approval'


def _ids(standin):
    world = standin.world
    return {'requester': world.identities['pim-requester'].object_id,
            'approver': world.identities['approver'].object_id,
            'group': world.groups_by_name['jit-approvers'],
            'admin': world.identities['admin'].object_id}


def _approval_args(ids):
    return ['--require-approval', '--approvers', ids['approver'], '--approver-groups', ids['group'],
            '--requesters', ids['requester']]


def _gate_scope(standin, rg, vm, mode):
    return policy_id(standin, rg) if mode == 'defender' else vm['nsg_id']


def _role(standin):
    return standin.world.roles.get(REQUESTER_ROLE.lower())


@pytest.mark.parametrize('mode', ['defender', 'nsg'])
def test_enable_with_approval_sets_up_pim_once_and_a_dry_run_lists_it_all_first(az, standin, rg, mode):
    vm = standin.vm(rg, 'app1')
    ids = _ids(standin)
    world = standin.world
    args = ['enable', '-g', rg, '-n', 'app1', '--ports', '22', '--max-duration', '2h', '--mode', mode, '--yes']
    args += _approval_args(ids)
    role_existed = _role(standin) is not None

    mark = len(world.requests)
    planned = ok(az, *args, '--dry-run')
    assert writes_since(world, mark) == []
    kinds = [c['kind'] for c in planned['changes']]
    assert ('role-definition' in kinds) is not role_existed
    assert {'pim-policy', 'eligibility', 'tags'} <= set(kinds)
    scope = _gate_scope(standin, rg, vm, mode)
    policy_change = next(c for c in planned['changes'] if c['kind'] == 'pim-policy')
    assert policy_change['scope'].lower() == scope.lower()
    assert policy_change['approvers'] == [ids['approver']] and policy_change['approverGroups'] == [ids['group']]
    assert policy_change['maximumActivation'] == 'PT2H' and policy_change['justificationRequired'] is True
    eligibility = next(c for c in planned['changes'] if c['kind'] == 'eligibility')
    assert eligibility['principalId'] == ids['requester'] and eligibility['scope'].lower() == scope.lower()
    assert NOTE not in jit_tags(standin, vm['id'])

    done = ok(az, *args)
    assert [c['kind'] for c in done['changes'] if c['kind'] in ('pim-policy', 'eligibility', 'role-definition')] == \
        [k for k in kinds if k in ('pim-policy', 'eligibility', 'role-definition')]
    assert done['approval']['required'] is True and done['policy']['requireApproval'] is True
    # what Azure now holds: the README's role, PIM's settings at the gate scope, the eligibility, the note
    role = _role(standin)
    assert role is not None and tuple(role.actions) == REQUESTER_ACTIONS
    rules = {r['id']: r for r in authorization.policy_for(world, scope, role)['rules']}
    setting = rules['Approval_EndUser_Assignment']['setting']
    assert setting['isApprovalRequired'] is True
    assert sorted((a['id'], a['userType']) for a in setting['approvalStages'][0]['primaryApprovers']) == \
        sorted([(ids['approver'], 'User'), (ids['group'], 'Group')])
    assert rules['Expiration_EndUser_Assignment']['maximumDuration'] == 'PT2H'
    assert 'Justification' in rules['Enablement_EndUser_Assignment']['enabledRules']
    assert rules['Expiration_Admin_Eligibility']['isExpirationRequired'] is False
    assert authorization.eligible(world, ids['requester'], role, scope) is not None
    assert jit_tags(standin, vm['id'])[NOTE] == 'required'

    mark = len(world.requests)
    again = ok(az, *args)
    assert writes_since(world, mark) == [] and again['changes'] == []


def test_approval_refused_by_pim_or_for_want_of_pim_rights_writes_nothing(az, az_as, standin, rg):
    vm = standin.vm(rg, 'app2', rules=[{'name': 'AllowSshAny', 'properties': {
        'priority': 300, 'direction': 'Inbound', 'access': 'Allow', 'protocol': 'Tcp', 'sourcePortRange': '*',
        'destinationPortRange': '22', 'sourceAddressPrefix': '*', 'destinationAddressPrefix': '*'}}])
    world = standin.world
    before = [r['name'] for r in standin.nsg_rules(vm['nsg_id'])]
    world.pim_licensed = False
    try:
        for mode in ('defender', 'nsg'):
            mark = len(world.requests)
            result = jit(az, 'enable', '-g', rg, '-n', 'app2', '--ports', '22', '--mode', mode, '--yes',
                         *_approval_args(_ids(standin)))
            assert result.code == 1, result
            errors = error_lines(result)
            assert len(errors) == 1 and 'AadPremiumLicenseRequired' in errors[0], result
            assert 'Entra ID P2' in result.stderr and 'Nothing was changed' in errors[0]
            assert writes_since(world, mark) == [], result
    finally:
        world.pim_licensed = True
    # a Contributor may write JIT policies, rules and tags, but not PIM's: refused before any of them is written
    if 'contributor' not in world.identities:
        world.add_identity('contributor', [('Contributor', '/subscriptions/' + standin.sub)])
    mark = len(world.requests)
    result = jit(az_as('contributor'), 'enable', '-g', rg, '-n', 'app2', '--ports', '22', '--yes',
                 *_approval_args(_ids(standin)))
    assert result.code == 1 and len(error_lines(result)) == 1, result
    assert "needs permission 'Microsoft.Authorization/roleManagementPolicies/write'" in result.stderr, result
    assert writes_since(world, mark) == [], result
    assert stored_policy(standin, rg) is None and product_rules(standin, vm['nsg_id']) == []
    assert [r['name'] for r in standin.nsg_rules(vm['nsg_id'])] == before and jit_tags(standin, vm['id']) == {}


def test_approval_set_up_cut_short_by_a_failure_is_finished_by_running_enable_again(az, standin, rg, faults):
    vm = standin.vm(rg, 'app5')
    ids = _ids(standin)
    args = ['enable', '-g', rg, '-n', 'app5', '--ports', '22', '--mode', 'nsg', '--yes', *_approval_args(ids)]
    faults('PATCH', r'/roleManagementPolicies/', status=400, code='BadRequest', message='Something went wrong.')
    failed = jit(az, *args)
    assert failed.code == 1 and len(error_lines(failed)) == 1, failed
    assert 'approval is not fully set up yet' in failed.stderr and 'Run the same command again' in failed.stderr
    assert NOTE not in jit_tags(standin, vm['id']) and vm_rules(standin, vm) != []   # JIT is on, the note is not
    healed = ok(az, *args)
    kinds = [c['kind'] for c in healed['changes']]
    assert kinds == ['pim-policy', 'eligibility', 'tags'], healed
    assert jit_tags(standin, vm['id'])[NOTE] == 'required'
    assert authorization.eligible(standin.world, ids['requester'], _role(standin), vm['nsg_id']) is not None


def test_approval_arguments_without_require_approval_are_refused_before_azure_is_asked(az, standin, rg):
    standin.vm(rg, 'app3')
    mark = len(standin.world.requests)
    refused = jit(az, 'enable', '-g', rg, '-n', 'app3', '--approvers', _ids(standin)['approver'])
    assert refused.code == 2 and '--approvers only apply with --require-approval' in refused.stderr, refused
    not_an_id = jit(az, 'enable', '-g', rg, '-n', 'app3', '--require-approval', '--requesters', 'alice')
    assert not_an_id.code == 2 and "--requesters: 'alice' is not a Microsoft Entra object id" in \
        not_an_id.stderr, not_an_id
    no_approver = jit(az, 'enable', '-g', rg, '-n', 'app3', '--require-approval', '--requesters',
                      _ids(standin)['requester'])
    assert no_approver.code == 2 and '--require-approval needs at least one approver' in no_approver.stderr
    assert [r for r in standin.world.requests[mark:] if rg in r.path] == []


def _file_activation(az_as, standin, scope, vm_id, ids):
    """The requester files a PIM activation of the requester role at the gate scope, as `request` does."""
    role_id = standin.world.role_definition_id(_role(standin))
    ask = format_ask(Ask(vm_id, ((22, 'TCP'),), '203.0.113.5/32', dt.timedelta(hours=1), 'patch night'))
    body = {'properties': {'principalId': ids['requester'], 'roleDefinitionId': role_id,
                           'requestType': 'SelfActivate', 'justification': ask,
                           'scheduleInfo': {'expiration': {'type': 'AfterDuration', 'duration': 'PT1H'}}}}
    filed = az_as('pim-requester').ok(
        'rest', '--method', 'put', '--url',
        f'{scope}/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/{uuid.uuid4()}'
        '?api-version=2020-10-01', '--body', json.dumps(body))
    assert filed['properties']['status'] == 'PendingApproval', filed
    return filed['name']


@pytest.mark.parametrize('mode', ['defender', 'nsg'])
def test_show_reads_approval_from_pim_with_pending_requests_and_who_can_bypass_it(az, az_as, standin, rg, mode):
    vm = standin.vm(rg, 'app4')
    ids = _ids(standin)
    ok(az, 'enable', '-g', rg, '-n', 'app4', '--ports', '22', '--mode', mode, '--yes', *_approval_args(ids))
    scope = _gate_scope(standin, rg, vm, mode)
    request_name = _file_activation(az_as, standin, scope, vm['id'], ids)

    result = jit(az, 'show', '-g', rg, '-n', 'app4')
    assert result.code == 0, result
    approval = result.json['approval']
    assert approval['required'] is True and approval['approvalRequired'] is True
    assert approval['scope'].lower() == scope.lower()
    assert approval['approvers'] == [ids['approver']] and approval['approverGroups'] == [ids['group']]
    assert approval['maximumActivation'] == 'PT3H' and ids['requester'] in approval['eligibleRequesters']
    [pending] = approval['pendingRequests']
    assert pending['id'] == request_name and pending['requester'] == ids['requester']
    assert pending['asked']['ports'] == ['22/TCP'] and pending['asked']['source'] == '203.0.113.5/32'
    bypass = {p['principalId']: p for p in approval['bypassApproval']}
    assert bypass[ids['admin']]['roleName'] == 'Owner' and \
        bypass[ids['admin']]['scope'] == '/subscriptions/' + standin.sub
    assert ids['requester'] not in bypass and ids['approver'] not in bypass   # eligible or Reader only
    assert f"principal(s) can open access on VM 'app4' in resource group '{rg}' without approval" in result.stderr

    disabled = jit(az, 'disable', '-g', rg, '-n', 'app4', '--yes')
    assert disabled.code == 0, disabled
    assert any(c['action'] == 'delete' and c['kind'] == 'tags' and c.get('record') == [NOTE]
               for c in disabled.json['changes'])
    assert 'PIM settings stay' in disabled.stderr   # other VMs may share the gate scope
    assert NOTE not in jit_tags(standin, vm['id']) and vm_rules(standin, vm) == []
    assert authorization.eligible(standin.world, ids['requester'], _role(standin), scope) is not None
