# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The audit trail's pure logic: the time window `log` accepts, how an Activity Log event is read (caller naming,
bounded bodies, Defender's own writes), each mode's reading of its events, and how happenings join into one entry
per request."""
import datetime as dt
import json

import pytest

from azext_jit.audit import happenings, story, window
from azext_jit.errors import BadInput, UsageError
from azext_jit.modes.defender import trail_of_event
from azext_jit.modes.nsg_mode import NsgMode, trail_of_rule_event
from azext_jit.modes.nsg_mode_records import allow_description, allow_rule_name, deny_rule_name
from azext_jit.targets import VmTarget

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)
SUB = '/subscriptions/00000000-0000-0000-0000-000000000001'
VM_ID = f'{SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1'
NSG_ID = f'{SUB}/resourceGroups/net/providers/Microsoft.Network/networkSecurityGroups/nsg1'
POLICY_ID = (f'{SUB}/resourceGroups/rg1/providers/Microsoft.Security/locations/westeurope/'
             'jitNetworkAccessPolicies/default')
DEFENDER_APP = '8edd93e1-2103-40b4-bd70-6e34e586362d'
ALICE, BOB, ADMIN = 'alice@contoso.com', 'bob@contoso.com', 'admin@contoso.com'


def _at(minutes):
    return NOW + dt.timedelta(minutes=minutes)


def _event(operation, resource, minutes, caller=ALICE, body=None, status='Succeeded', claims=None):
    event = {'operationName': {'value': operation}, 'resourceId': resource, 'caller': caller,
             'eventTimestamp': _at(minutes).strftime('%Y-%m-%dT%H:%M:%S.%fZ'), 'status': {'value': status},
             'correlationId': f'corr-{minutes}', 'eventDataId': f'ev-{minutes}', 'claims': claims or {},
             'properties': {}}
    if body is not None:
        event['properties']['requestbody'] = json.dumps(body)
    return event


def _rule_write(name, minutes, caller=ALICE, **props):
    return _event('Microsoft.Network/networkSecurityGroups/securityRules/write', f'{NSG_ID}/securityRules/{name}',
                  minutes, caller, {'properties': props})


def _rule_delete(name, minutes, caller=ALICE):
    return _event('Microsoft.Network/networkSecurityGroups/securityRules/delete', f'{NSG_ID}/securityRules/{name}',
                  minutes, caller)


def _tell(events, targets=None, group='rg1', now=_at(600)):
    found = []
    for event in events:
        found += [(h, True) for h in trail_of_rule_event(event, 'NSG') + trail_of_event(event, 'Defender')]
    scope = story.Scope(targets if targets is not None else [VmTarget(VM_ID, 'vm1', 'rg1', 'westeurope')], group)
    return story.timeline(found, scope, now)


# -- the window -----------------------------------------------------------------------------------------------
def test_the_window_defaults_to_the_last_seven_days():
    assert window.window(NOW) == (NOW - dt.timedelta(days=7), NOW)


def test_an_offset_counts_back_from_the_end_time():
    assert window.window(NOW, offset='3h', end_time='2026-11-30T10:00:00Z') == (_at(-300), _at(-120))


@pytest.mark.parametrize('kwargs, error', [
    ({'offset': '91d'}, BadInput), ({'offset': '0'}, BadInput), ({'start_time': 'yesterday'}, BadInput),
    ({'start_time': '2026-11-30T11:00:00Z', 'end_time': '2026-11-30T10:00:00Z'}, BadInput),
    ({'offset': '1h', 'start_time': '2026-11-30T10:00:00Z'}, UsageError)])
def test_a_window_azure_would_refuse_or_that_makes_no_sense_is_refused(kwargs, error):
    with pytest.raises(error):
        window.window(NOW, **kwargs)


def test_only_a_window_ending_in_the_last_minutes_may_miss_events():
    assert window.may_still_arrive(_at(-5), NOW) and not window.may_still_arrive(_at(-60), NOW)


# -- reading an event -----------------------------------------------------------------------------------------
def test_a_managed_identity_is_named_by_its_resource_and_others_as_azure_names_them():
    mi = f'{SUB}/resourcegroups/ops/providers/Microsoft.ManagedIdentity/userAssignedIdentities/runner'
    assert happenings.caller_of({'caller': 'c0ffee00-0000-0000-0000-000000000000', 'claims': {'xms_mirid': mi}}) == mi
    assert happenings.caller_of({'caller': ALICE, 'claims': {'xms_mirid': 'not a resource id'}}) == ALICE
    assert happenings.caller_of({'caller': 'x\n' * 300}).count('\n') == 0


def test_defender_is_known_by_its_first_party_application_only():
    assert happenings.is_defender({'caller': DEFENDER_APP})
    assert happenings.is_defender({'caller': 'someone', 'claims': {'appid': DEFENDER_APP}})
    assert not happenings.is_defender({'caller': 'Microsoft.Security'})


def test_a_body_too_large_or_not_an_object_is_not_read():
    assert happenings.body({'properties': {'requestbody': '{"a": 1}'}}) == {'a': 1}
    assert happenings.body({'properties': {'requestbody': '[1]'}}) is None
    assert happenings.body({'properties': {'requestbody': '{' + ' ' * 70000 + '}'}}) is None
    assert happenings.body({'properties': {'requestbody': '{not json'}}) is None


# -- NSG mode ---------------------------------------------------------------------------------------------------
def _allow(rid, port=22, until=30, who=ALICE, why='INC1', source='203.0.113.5'):
    return allow_rule_name(VM_ID, rid, port, 'TCP'), dict(
        description=allow_description(_at(until), who, rid, why), sourceAddressPrefix=source,
        destinationPortRange=str(port), access='Allow')


def test_an_nsg_request_opened_and_revoked_before_its_end_is_one_revoked_entry():
    name, props = _allow('1a2b3c4d')
    name2, props2 = _allow('1a2b3c4d', port=3389)
    [entry] = _tell([_rule_write(name, 0, **props), _rule_write(name2, 0, **props2), _rule_delete(name, 10, BOB),
                     _rule_delete(name2, 10, BOB)], now=_at(20))
    assert entry['action'] == 'request' and entry['caller'] == ALICE and entry['requestId'] == '1a2b3c4d'
    assert entry['ports'] == ['22/TCP', '3389/TCP'] and entry['source'] == '203.0.113.5'
    assert entry['justification'] == 'INC1' and entry['endTime'] == '2026-11-30T12:30:00Z'
    assert entry['result'] == 'revoked' and [e['action'] for e in entry['events']] == ['open', 'open', 'revoke',
                                                                                       'revoke']
    assert entry['events'][-1]['caller'] == BOB


def test_an_nsg_rule_removed_after_its_end_is_expiry_cleanup_and_one_left_past_its_end_is_not_removed():
    name, props = _allow('1a2b3c4d', until=30)
    [cleaned] = _tell([_rule_write(name, 0, **props), _rule_delete(name, 45, ADMIN)])
    assert cleaned['result'] == 'expired' and cleaned['events'][-1]['action'] == 'expire'
    [left] = _tell([_rule_write(name, 0, **props)], now=_at(40))
    assert left['result'] == 'expired-not-removed', 'NSG mode removes nothing itself: the rule still lets traffic in'
    [still] = _tell([_rule_write(name, 0, **props)], now=_at(20))
    assert still['result'] == 'open'


def test_an_nsg_enable_is_one_configure_entry_and_its_deny_rule_deleted_is_disable():
    deny = deny_rule_name(VM_ID, 'TCP')
    entries = _tell([_rule_write(deny, 0, ADMIN, destinationPortRange='22', access='Deny'),
                     _rule_write(deny_rule_name(VM_ID, 'UDP'), 0, ADMIN, destinationPortRange='53', access='Deny'),
                     _rule_delete(deny, 60, ADMIN)])
    assert [(e['action'], e['caller'], e['ports']) for e in entries] == [
        ('configure', ADMIN, ['22/TCP', '53/UDP']), ('disable', ADMIN, [])]


def test_rules_of_other_vms_and_rules_the_product_did_not_write_are_not_in_a_vms_log():
    other = VM_ID.replace('vm1', 'vm2')
    name = allow_rule_name(other, '1a2b3c4d', 22, 'TCP')
    assert _tell([_rule_write(name, 0), _rule_write('AllowSSH', 0)], group=None) == []
    # A resource group's log keeps what the product wrote for VMs it cannot name any more (deleted ones).
    [gone] = _tell([_rule_write(name, 0), _rule_write('AllowSSH', 0)])
    assert gone['vm'] is None and gone['requestId'] == '1a2b3c4d'


def test_a_forged_description_is_shown_as_recorded_and_bounded():
    name, props = _allow('1a2b3c4d', why='x' * 600)
    props['sourceAddressPrefix'] = 'junk\nsecond line'
    [entry] = _tell([_rule_write(name, 0, **props)])
    assert '\n' not in entry['source'] and len(entry['justification'] or '') <= happenings.MAX_TEXT


# -- Defender mode ----------------------------------------------------------------------------------------------
def _policy(minutes, vms, caller=ADMIN):
    return _event('Microsoft.Security/locations/jitNetworkAccessPolicies/write', POLICY_ID, minutes, caller, {
        'properties': {'virtualMachines': [{'id': vm, 'ports': [{'number': 22, 'protocol': 'TCP'}]} for vm in vms]}})


def _initiate(minutes, caller=ALICE, until=60, why='INC7', status='Succeeded'):
    return _event('Microsoft.Security/locations/jitNetworkAccessPolicies/initiate/action', POLICY_ID + '/initiate',
                  minutes, caller, {'virtualMachines': [{'id': VM_ID, 'ports': [{
                      'number': 22, 'endTimeUtc': _at(until).strftime('%Y-%m-%dT%H:%M:%SZ'),
                      'allowedSourceAddressPrefix': '198.51.100.7'}]}], 'justification': why}, status)


DEFENDER_ALLOW = 'SecurityCenter-JITRule-1234-' + 'A' * 32


def _defender_write(minutes):
    return _rule_write(DEFENDER_ALLOW, minutes, DEFENDER_APP, destinationPortRange='22', protocol='Tcp',
                       sourceAddressPrefix='198.51.100.7', access='Allow',
                       description="ASC JIT Network Access rule for policy 'default' of VM 'vm1'.")


def test_a_defender_request_joins_its_initiate_and_defenders_own_rule_writes():
    [entry] = _tell([_initiate(0), _defender_write(1), _rule_delete(DEFENDER_ALLOW, 60, DEFENDER_APP)])
    assert entry['caller'] == ALICE and entry['ports'] == ['22/TCP'] and entry['source'] == '198.51.100.7'
    assert entry['justification'] == 'INC7' and entry['result'] == 'expired'
    assert [(e['action'], e['actor']) for e in entry['events']] == [
        ('ask', 'user'), ('open', 'Defender for Cloud'), ('expire', 'Defender for Cloud')]
    assert entry['events'][1]['caller'] == DEFENDER_APP


def test_a_user_deleting_defenders_rule_before_the_end_revoked_the_request():
    [entry] = _tell([_initiate(0), _defender_write(1), _rule_delete(DEFENDER_ALLOW, 5, BOB)], now=_at(10))
    assert entry['result'] == 'revoked' and entry['events'][-1] == {
        'time': '2026-11-30T12:05:00Z', 'action': 'revoke', 'caller': BOB, 'actor': 'user', 'result': 'Succeeded',
        'ports': ['22/TCP']}


def test_a_refused_initiate_is_a_refused_request():
    [entry] = _tell([_initiate(0, status='Failed')], now=_at(10))
    assert entry['result'] == 'refused'


def test_policy_writes_are_told_per_vm_as_configure_and_disable():
    vm2 = VM_ID.replace('vm1', 'vm2')
    targets = [VmTarget(VM_ID, 'vm1', 'rg1', 'westeurope'), VmTarget(vm2, 'vm2', 'rg1', 'westeurope')]
    entries = _tell([_policy(0, [VM_ID]), _policy(5, [VM_ID, vm2]), _policy(10, [vm2])], targets=targets)
    assert [(e['action'], e['vm']) for e in entries] == [
        ('configure', 'vm1'), ('configure', 'vm2'), ('disable', 'vm1')]
    only_vm1 = _tell([_policy(0, [VM_ID]), _policy(5, [VM_ID, vm2]), _policy(10, [vm2])], targets=targets[:1],
                     group=None)
    assert [(e['action'], e['vm']) for e in only_vm1] == [('configure', 'vm1'), ('disable', 'vm1')]


# -- approval ---------------------------------------------------------------------------------------------------
def test_an_approved_request_is_one_entry_from_the_ask_to_the_closing():
    pim_name = 'abcdef12-0000-0000-0000-000000000000'
    ask = happenings.Happening(time=_at(0), action='ask', caller=ALICE, vm_id=VM_ID, key=('pim', pim_name),
                               ports=('22/TCP',), justification='INC9', end=_at(60),
                               extra={'status': 'Provisioned', 'approverVisible': True})
    decision = happenings.Happening(time=_at(3), action='approve', caller=BOB, key=('pim', pim_name),
                                    extra={'reason': 'CHG-1'})
    name, props = _allow('77777777', why='[approval abcdef12] INC9', until=50)
    opened = trail_of_rule_event(_rule_write(name, 4, **props), 'NSG')
    closed = trail_of_rule_event(_rule_delete(name, 20), 'NSG')
    entries = story.timeline([(ask, True), (decision, True)] + [(h, True) for h in opened + closed],
                             story.Scope([VmTarget(VM_ID, 'vm1', 'rg1', 'westeurope')]), _at(30))
    [entry] = entries
    assert entry['requestId'] == pim_name and entry['approver'] == BOB and entry['decisionReason'] == 'CHG-1'
    assert entry['justification'] == 'INC9' and entry['endTime'] == '2026-11-30T12:50:00Z'
    assert [e['action'] for e in entry['events']] == ['ask', 'approve', 'open', 'revoke']
    assert entry['result'] == 'revoked'


@pytest.mark.parametrize('status, visible, result', [
    ('Denied', False, 'denied'), ('PendingApproval', None, 'pending'), ('Provisioned', False, 'approved'),
    ('TimedOut', False, 'timed-out')])
def test_a_request_whose_decision_pim_does_not_show_takes_its_fate_from_its_status(status, visible, result):
    ask = happenings.Happening(time=_at(0), action='ask', caller=ALICE, vm_id=VM_ID, key=('pim', 'n' * 36),
                               end=_at(60), extra={'status': status, 'approverVisible': visible})
    [entry] = story.timeline([(ask, True)], story.Scope([VmTarget(VM_ID, 'vm1', 'rg1', 'westeurope')]), _at(10))
    assert entry['result'] == result and entry['approver'] is None and entry['approverVisible'] is visible


# -- what someone else wrote cannot rewrite a request's story --------------------------------------------------
MALLORY = 'mallory@contoso.com'


def test_a_rule_someone_else_writes_with_a_requests_id_is_an_entry_of_its_own():
    name, props = _allow('1a2b3c4d', until=30)
    forged, forged_props = _allow('1a2b3c4d', port=3389, until=600, who=ALICE)
    alice, mallory = _tell([_rule_write(name, 0, **props), _rule_write(forged, 10, MALLORY, **forged_props),
                            _rule_delete(name, 45, ADMIN)], now=_at(60))
    assert (alice['caller'], alice['ports'], alice['endTime'], alice['result']) == (
        ALICE, ['22/TCP'], '2026-11-30T12:30:00Z', 'expired')
    assert (mallory['caller'], mallory['ports'], mallory['result']) == (MALLORY, ['3389/TCP'], 'open')
    assert mallory['notes'] == ['reuses the request id of access someone else opened']


def test_an_approval_link_claimed_by_someone_other_than_the_asker_joins_nothing():
    pim_name = 'abcdef12-0000-0000-0000-000000000000'
    ask = happenings.Happening(time=_at(0), action='ask', caller=ALICE, vm_id=VM_ID, key=('pim', pim_name),
                               ports=('22/TCP',), end=_at(60), extra={'status': 'Denied', 'approverVisible': True})
    deny = happenings.Happening(time=_at(2), action='deny', caller=BOB, key=('pim', pim_name))
    name, props = _allow('77777777', port=3389, why='[approval abcdef12] hi', until=50, who=MALLORY)
    opened = [(h, True) for h in trail_of_rule_event(_rule_write(name, 4, MALLORY, **props), 'NSG')]
    denied, other = story.timeline([(ask, True), (deny, True)] + opened,
                                   story.Scope([VmTarget(VM_ID, 'vm1', 'rg1', 'westeurope')]), _at(10))
    assert (denied['caller'], denied['result'], denied['approver'], denied['ports']) == (
        ALICE, 'denied', BOB, ['22/TCP'])
    assert (other['caller'], other['result']) == (MALLORY, 'open')
    assert other['notes'] == ['claims approval abcdef12, which no request in the range and the 48 hours read before '
                              'it matches']


def test_a_partial_revoke_leaves_the_request_open():
    name, props = _allow('1a2b3c4d', until=60)
    name2, props2 = _allow('1a2b3c4d', port=3389, until=60)
    [entry] = _tell([_rule_write(name, 0, **props), _rule_write(name2, 0, **props2), _rule_delete(name, 5)],
                    now=_at(10))
    assert entry['result'] == 'open' and [e['action'] for e in entry['events']] == ['open', 'open', 'revoke']


def test_defender_removing_its_rule_before_the_end_closed_it_and_did_not_expire_it():
    [entry] = _tell([_initiate(0), _defender_write(1), _rule_delete(DEFENDER_ALLOW, 5, DEFENDER_APP)], now=_at(10))
    assert entry['result'] == 'closed' and entry['events'][-1]['action'] == 'close'


def test_two_defender_requests_for_one_port_each_get_the_rule_from_their_own_source():
    bob_rule = 'SecurityCenter-JITRule-1234-' + 'B' * 32
    bob_initiate = _initiate(1, BOB)
    bob_initiate['properties']['requestbody'] = bob_initiate['properties']['requestbody'].replace(
        '198.51.100.7', '198.51.100.8')
    bob_write = _rule_write(bob_rule, 2, DEFENDER_APP, destinationPortRange='22', protocol='Tcp',
                            sourceAddressPrefix='198.51.100.8', access='Allow',
                            description="ASC JIT Network Access rule for policy 'default' of VM 'vm1'.")
    alice, bob = _tell([_initiate(0), bob_initiate, bob_write, _defender_write(3)], now=_at(10))
    assert [(e['caller'], e['source'], [x['action'] for x in e['events']]) for e in (alice, bob)] == [
        (ALICE, '198.51.100.7', ['ask', 'open']), (BOB, '198.51.100.8', ['ask', 'open'])]


def test_someone_deleting_defenders_deny_rule_is_a_disable_by_them():
    deny = 'SecurityCenter-JITRule_1234_' + 'C' * 32
    entries = _tell([_policy(0, [VM_ID]), _rule_delete(deny, 30, MALLORY)])
    assert [(e['action'], e['caller']) for e in entries] == [('configure', ADMIN), ('disable', MALLORY)]
    assert entries[1]['notes'] == ["Defender's deny rule was changed by someone other than Defender"]


def test_a_quick_re_enable_is_not_merged_into_the_first_enable():
    deny = deny_rule_name(VM_ID, 'TCP')
    entries = _tell([_rule_write(deny, 0, ADMIN, destinationPortRange='22'), _rule_delete(deny, 1, ADMIN),
                     _rule_write(deny, 1.5, ADMIN, destinationPortRange='22')])
    assert [e['action'] for e in entries] == ['configure', 'disable', 'configure']


def test_a_failed_policy_write_does_not_change_what_later_writes_are_compared_with():
    failed = _policy(5, [], caller=MALLORY)
    failed['status'] = {'value': 'Failed'}
    entries = _tell([_policy(0, [VM_ID]), failed, _policy(10, [VM_ID])])
    assert [(e['action'], e['caller'], e['result']) for e in entries] == [('configure', ADMIN, 'succeeded'),
                                                                          ('disable', MALLORY, 'failed')]


@pytest.mark.parametrize('body', [
    '[' * 30000 + ']' * 30000,
    json.dumps({'properties': {'destinationPortRange': '\u00b2', 'destinationPortRanges': 7,
                               'sourceAddressPrefixes': 5, 'description': None}}),
    json.dumps({'virtualMachines': [{'id': VM_ID, 'ports': [{'number': 1e308 * 10, 'endTimeUtc':
                                                             '9999-12-31T23:59:59-05:00'}]}]}),
    json.dumps({'virtualMachines': 'x', 'properties': []}),
])
def test_odd_recorded_content_is_read_without_failing(body):
    events = []
    for operation, resource in (
            ('Microsoft.Network/networkSecurityGroups/securityRules/write',
             f"{NSG_ID}/securityRules/{allow_rule_name(VM_ID, '1a2b3c4d', 22, 'TCP')}"),
            ('Microsoft.Network/networkSecurityGroups/securityRules/write', f'{NSG_ID}/securityRules/{DEFENDER_ALLOW}'),
            ('Microsoft.Security/locations/jitNetworkAccessPolicies/initiate/action', POLICY_ID + '/initiate'),
            ('Microsoft.Security/locations/jitNetworkAccessPolicies/write', POLICY_ID)):
        event = _event(operation, resource, 0)
        event['properties']['requestbody'] = body
        events.append(event)
    assert isinstance(_tell(events), list)


def test_a_writes_body_comes_from_its_started_phase_and_each_operation_counts_once():
    name, props = _allow('1a2b3c4d', until=30)
    started = _rule_write(name, 0, **props)
    started['status'] = {'value': 'Started'}
    accepted = _rule_write(name, 0)
    accepted['status'], accepted['properties'] = {'value': 'Accepted'}, {}
    succeeded = dict(accepted, status={'value': 'Succeeded'}, eventTimestamp=accepted['eventTimestamp'])
    merged = happenings.merge_phases([succeeded, accepted, started])
    assert len(merged) == 1 and happenings.status(merged[0]) == 'Succeeded'
    [entry] = _tell(merged, now=_at(10))
    assert entry['source'] == '203.0.113.5' and entry['endTime'] == '2026-11-30T12:30:00Z'
    only_accepted = happenings.merge_phases([started, dict(accepted)])
    assert happenings.status(only_accepted[0]) == 'Accepted' and _tell(only_accepted, now=_at(10))[0]['result'] == \
        'open'


# -- shared gates, late removals, what a policy allows -----------------------------------------------------------
def test_a_request_for_another_vm_at_a_shared_gate_is_not_in_this_vms_log():
    ask = happenings.Happening(time=_at(0), action='ask', caller=ALICE, vm_id=VM_ID.replace('vm1', 'vm2'),
                               key=('pim', 'a' * 36), extra={'status': 'Provisioned', 'at_gate': True})
    assert story.timeline([(ask, True)], story.Scope([VmTarget(VM_ID, 'vm1', 'rg1', 'westeurope')]), _at(10)) == []


def test_a_defender_rule_for_a_same_named_vm_elsewhere_is_not_this_vms():
    target = VmTarget(VM_ID, 'vm1', 'rg1', 'westeurope', private_ip='10.0.0.4')
    write = _rule_write(DEFENDER_ALLOW, 1, DEFENDER_APP, destinationPortRange='22', destinationAddressPrefix='10.9.9.9',
                        description="ASC JIT Network Access rule for policy 'default' of VM 'vm1'.")
    assert _tell([write], targets=[target], group=None) == []


def test_what_became_of_a_request_after_the_range_decides_its_result():
    name, props = _allow('1a2b3c4d', until=30)
    [entry] = _tell([_rule_write(name, 0, **props), _rule_delete(name, 40, ADMIN)])   # the removal: after the range
    found = [(h, True) for e in (_rule_write(name, 0, **props), _rule_delete(name, 40, ADMIN))
             for h in trail_of_rule_event(e, 'NSG')]
    [shown] = story.timeline(found, story.Scope([VmTarget(VM_ID, 'vm1', 'rg1', 'westeurope')], 'rg1'), _at(60),
                             since=_at(-5), until=_at(10))
    assert entry['result'] == shown['result'] == 'expired'


def test_a_removal_whose_opening_was_not_read_is_an_entry_of_its_own():
    name, _ = _allow('1a2b3c4d')
    [entry] = _tell([_rule_delete(name, 0, ADMIN)])
    assert entry['result'] == 'closed' and entry['notes'] == [
        'opened before the range and the 48 hours read before it']


def test_defenders_rule_written_before_the_initiate_logged_its_end_joins_the_request():
    started = _initiate(0)
    started['status'] = {'value': 'Started'}
    accepted = _initiate(0.1)
    accepted['status'], accepted['properties'] = {'value': 'Accepted'}, {}
    accepted['correlationId'] = started['correlationId']
    [entry] = _tell(happenings.merge_phases([started, accepted]) + [_defender_write(0.05)], now=_at(10))
    assert entry['caller'] == ALICE and [e['action'] for e in entry['events']] == ['ask', 'open']


def test_widening_a_defender_vms_allowed_sources_is_a_configure():
    wide = _policy(5, [VM_ID])
    body = json.loads(wide['properties']['requestbody'])
    body['properties']['virtualMachines'][0]['ports'][0]['allowedSourceAddressPrefix'] = '*'
    wide['properties']['requestbody'] = json.dumps(body)
    entries = _tell([_policy(0, [VM_ID]), wide])
    assert [(e['action'], e['time']) for e in entries] == [('configure', '2026-11-30T12:00:00Z'),
                                                           ('configure', '2026-11-30T12:05:00Z')]


def test_an_nsg_mode_policy_set_or_removed_in_the_vms_tags_is_configure_or_disable():
    tags = f'{VM_ID}/providers/Microsoft.Resources/tags/default'
    merge = _event('Microsoft.Resources/tags/write', tags, 0, ADMIN,
                   {'operation': 'Merge', 'properties': {'tags': {'azvmjit-policy': '{}'}}})
    delete = _event('Microsoft.Resources/tags/write', tags, 30, ADMIN,
                    {'operation': 'Delete', 'properties': {'tags': {'AzVmJit-Policy': '{}'}}})
    other = _event('Microsoft.Resources/tags/write', tags, 40, ADMIN, {'properties': {'tags': {'owner': 'x'}}})
    found = [(h, True) for e in (merge, delete, other) for h in NsgMode(None).trail(e)]
    entries = story.timeline(found, story.Scope([VmTarget(VM_ID, 'vm1', 'rg1', 'westeurope')]), _at(60))
    assert [(e['action'], e['caller']) for e in entries] == [('configure', ADMIN), ('disable', ADMIN)]


def test_an_end_time_no_request_could_have_is_unreadable_and_does_not_break_the_log():
    name, props = _allow('1a2b3c4d')
    props['description'] = 'az vm jit: open until 0001-01-01T00:00:00Z for alice@contoso.com, request 1a2b3c4d'
    [entry] = _tell([_rule_write(name, 0, **props), _rule_delete(name, 5)], now=_at(10))
    assert entry['endTime'] is None and entry['result'] == 'closed'


def test_a_write_that_ends_canceled_did_not_open_anything():
    name, props = _allow('1a2b3c4d')
    accepted = _rule_write(name, 0, **props)
    accepted['status'] = {'value': 'Accepted'}
    canceled = dict(accepted, status={'value': 'Canceled'})
    [entry] = _tell(happenings.merge_phases([accepted, canceled]), now=_at(10))
    assert entry['result'] == 'refused' and entry['events'][0]['result'] == 'Failed'
