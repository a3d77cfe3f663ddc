# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The pure logic of a request under approval: what opens for an approved ask, when its activation ends, how opened
access is linked to its approval, and how an approver's view of a request reads."""
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from azext_jit.errors import BadInput, NotPossible
from azext_jit.pim import activation, decisions
from azext_jit.pim.asks import Ask, format_ask
from azext_jit.policy import build_policy

VM = ('/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg/providers/Microsoft.Compute/'
      'virtualMachines/app1')
NAME = '1a2b3c4d-0000-4000-8000-000000000001'
NSG_MODE = SimpleNamespace(finds_caller_ip=False, matches_sources_exactly=False)
DEFENDER_MODE = SimpleNamespace(finds_caller_ip=True, matches_sources_exactly=True)
TARGET = SimpleNamespace(id=VM, name='app1', resource_group='rg', private_ip='10.0.0.4',
                         describe=lambda: "VM 'app1' (resource group 'rg')")


def test_access_opened_for_an_approval_names_it_first_so_shortening_never_cuts_the_link():
    text = activation.linked_justification(NAME, '  patch   night ')
    assert text == '[approval 1a2b3c4d] patch night'
    assert activation.linked_id(text) == '1a2b3c4d'
    assert activation.linked_id(text[:19]) == '1a2b3c4d'
    assert activation.links_to(SimpleNamespace(justification=text), NAME.upper())
    assert activation.linked_id('patch night [approval 1a2b3c4d]') is None
    assert activation.linked_id(None) is None


def test_an_activation_ends_at_its_start_plus_its_duration():
    item = {'properties': {'scheduleInfo': {'startDateTime': '2026-11-30T06:00:00Z',
                                            'expiration': {'type': 'AfterDuration', 'duration': 'PT1H'}}}}
    assert activation.activation_end(item) == datetime(2026, 11, 30, 7, tzinfo=timezone.utc)
    assert activation.activation_end({'properties': {}}) is None
    broken = {'properties': {'scheduleInfo': {'startDateTime': 'soon', 'expiration': {'duration': 'PT1H'}}}}
    assert activation.activation_end(broken) is None


def test_an_approved_ask_opens_each_port_for_the_shortest_of_policy_ask_and_what_remains():
    policy = build_policy(['22', '3389'], timedelta(hours=3), ['*'])
    ask = Ask(VM, ((22, 'TCP'),), '203.0.113.5', timedelta(hours=2))
    [(port, duration)] = activation.approved_grants(NSG_MODE, TARGET, policy, ask, timedelta(minutes=40))
    assert (port.number, duration) == (22, timedelta(minutes=40))
    [(_, duration)] = activation.approved_grants(NSG_MODE, TARGET, policy, ask, timedelta(hours=5))
    assert duration == timedelta(hours=2)


@pytest.mark.parametrize('ask, why', [
    (Ask(VM, ((22, 'TCP'),), '203.0.113.5', timedelta(hours=4)), 'does not allow now'),
    (Ask(VM, ((22, 'TCP'),), '203.0.113.5', timedelta(minutes=2)), 'does not allow now'),
    (Ask(VM, ((2222, 'TCP'),), '203.0.113.5', timedelta(hours=1)), 'not in the JIT policy'),
    (Ask(VM, ((22, 'TCP'),), '10.0.0.0/8', timedelta(hours=1)), 'wider than one address'),
    (Ask(VM, ((22, 'TCP'),), None, timedelta(hours=1)), 'names no source'),
])
def test_an_approved_ask_is_checked_again_like_input(ask, why):
    policy = build_policy(['22'], timedelta(hours=3), ['*'])
    with pytest.raises(BadInput) as err:
        activation.approved_grants(NSG_MODE, TARGET, policy, ask, timedelta(hours=3))
    assert why in err.value.message


def test_defender_mode_may_leave_the_source_to_defender():
    policy = build_policy(['22'], timedelta(hours=3), ['*'])
    ask = Ask(VM, ((22, 'TCP'),), None, timedelta(hours=1))
    assert len(activation.approved_grants(DEFENDER_MODE, TARGET, policy, ask, timedelta(hours=3))) == 1


def test_the_ask_of_a_request_takes_the_longest_of_its_ports_durations():
    policy = build_policy(['22', '3389'], timedelta(hours=2), ['*'])
    grants = [(policy.ports[0], timedelta(hours=1)), (policy.ports[1], timedelta(hours=2))]
    ask = activation.ask_of(TARGET, grants, '203.0.113.5', ' why  not ')
    assert ask.ports == ((22, 'TCP'), (3389, 'TCP')) and ask.duration == timedelta(hours=2) and ask.reason == 'why not'
    assert activation.same_ask(ask, Ask(VM.upper(), ask.ports, ask.source, ask.duration, 'other words'))
    assert not activation.same_ask(ask, Ask(VM, ask.ports, '203.0.113.6', ask.duration))
    assert not activation.same_ask(ask, None)


@pytest.mark.parametrize('status, said', [
    ('PendingApproval', 'still waiting for approval'), ('Denied', 'was denied'), ('TimedOut', 'expired before'),
    ('Canceled', 'was cancelled'), ('Failed', 'ended Failed'),
])
def test_only_a_provisioned_request_opens(status, said):
    item = {'name': NAME, 'properties': {'status': status}}
    with pytest.raises(NotPossible) as err:
        activation.refuse_unless_approved(None, item, TARGET)
    assert said in err.value.message and 'Nothing was opened' in err.value.message
    activation.refuse_unless_approved(None, {'name': NAME, 'properties': {'status': 'Provisioned'}}, TARGET)


def test_eligibility_scopes_cover_the_gate_scope_from_above_only():
    nsg = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg'
    assert activation.covers('/subscriptions/s/resourceGroups/RG', nsg)
    assert activation.covers(nsg.upper(), nsg)
    assert not activation.covers(nsg + '/securityRules/x', nsg)
    assert not activation.covers('/subscriptions/s/resourceGroups/rg2', nsg)


def _schedule_request(justification, **props):
    return {'name': NAME, 'properties': dict({
        'approvalId': f'/providers/Microsoft.Authorization/roleAssignmentApprovals/{NAME[::-1]}',
        'status': 'PendingApproval', 'principalId': 'p1', 'justification': justification,
        'expandedProperties': {'principal': {'displayName': 'Pat Requester', 'email': 'pat@contoso.com'}}}, **props)}


def test_an_approver_finds_a_request_by_its_id_or_its_approvals():
    item = _schedule_request('x')
    assert decisions.matches(item, NAME.upper()) and decisions.matches(item, NAME[::-1])
    assert decisions.matches(item, f'/providers/Microsoft.Authorization/roleAssignmentApprovals/{NAME[::-1]}')
    assert not decisions.matches(item, '') and not decisions.matches(item, NAME[:8])


GATE = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/app1-nsg'


def _activation(duration):
    return {'scope': GATE, 'scheduleInfo': {'startDateTime': '2026-11-30T05:00:00Z',
                                            'expiration': {'type': 'AfterDuration', 'duration': duration}}}


def test_an_approver_reads_what_was_asked_and_what_approving_grants():
    item = _schedule_request(format_ask(Ask(VM, ((22, 'TCP'),), '203.0.113.5', timedelta(hours=1), 'INC42')),
                             **_activation('PT1H'))
    info = decisions.summary(item)
    assert info['vm'] == 'app1' and info['resourceGroup'] == 'rg' and info['ports'] == ['22/TCP']
    assert info['source'] == '203.0.113.5' and info['duration'] == 'PT1H' and info['justification'] == 'INC42'
    assert info['requestor'] == 'pat@contoso.com' and info['approvalId'] == NAME[::-1]
    assert 'mismatch' not in info
    assert decisions.describe(info) == ('22/TCP from 203.0.113.5 for PT1H on VM app1 (resource group rg), asked by '
                                        'pat@contoso.com; reason: INC42; approving activates the requester role at '
                                        f'{GATE} for PT1H')


def test_an_activation_longer_than_its_justification_says_is_flagged_to_the_approver():
    item = _schedule_request(format_ask(Ask(VM, ((22, 'TCP'),), '203.0.113.5', timedelta(minutes=5))),
                             **_activation('PT3H'))
    info = decisions.summary(item)
    assert info['mismatch'] == 'the PIM activation itself lasts PT3H, not the PT5M its justification says'
    assert 'WARNING: the PIM activation itself lasts PT3H' in decisions.describe(info)
    foreign = decisions.summary(_schedule_request('let me in'))
    assert foreign['vm'] is None and 'let me in' in decisions.describe(foreign)


def test_the_step_to_decide_is_the_callers_and_not_yet_reviewed():
    approval = {'properties': {'steps': [
        {'name': 's1', 'properties': {'assignedToMe': False, 'reviewResult': 'NotReviewed', 'status': 'InProgress'}},
        {'name': 's2', 'properties': {'assignedToMe': True, 'reviewResult': 'Approve', 'status': 'Completed'}},
        {'name': 's3', 'properties': {'assignedToMe': True, 'reviewResult': 'NotReviewed', 'status': 'InProgress'}},
    ]}}
    assert decisions.my_step(approval)['name'] == 's3'
    approval['properties']['steps'].pop()
    assert decisions.my_step(approval)['name'] == 's1'   # not the caller's: PIM says why it may not be decided
    approval['properties']['steps'].pop(0)
    assert decisions.my_step(approval) is None


def test_a_pending_row_reads_like_lists_other_rows():
    ask = Ask(VM, ((22, 'TCP'), (3389, 'TCP')), None, timedelta(minutes=30), 'why')
    row = decisions.pending_row(_schedule_request(format_ask(ask)), ask, 'you')
    assert row['id'] == NAME and row['status'] == 'pending' and row['waitingFor'] == 'you'
    assert [p['port'] for p in row['ports']] == [22, 3389] and row['duration'] == 'PT30M'
    assert row['requestor'] == 'pat@contoso.com' and row['vm'] == 'app1'
