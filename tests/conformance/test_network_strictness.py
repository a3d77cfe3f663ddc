# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The stand-in refuses what the Network RP and ARM's Tags API refuse, and its operations behave like Azure's.

Rule bodies (access and direction, address prefixes, application security groups, 1,000 rules per NSG), one
operation in flight per NSG (429 RetryableErrorDueToAnotherOperation), polled deletes, operations that end
Failed, ETags that change on completion, answers lost after the request was applied, and tag names (reserved
characters, case-insensitive names). Where Azure's exact code is not confirmed, network.py's docstring says so;
these tests then pin the refusal, not the wording.
"""
import time

import pytest
import requests

from tests.conformance.test_arm_http_behaviour import (  # noqa: F401  (fixtures)
    LOC, RG, TAGS_API, _error, fixture_client, fixture_standin)
from tests.standin import compute, network
from tests.standin.world import Fault


def _rules(client):
    return client.world.get(client.nsg_id())['properties']['securityRules']


def _refused(resp, code):
    assert resp.status_code == 400, resp.text
    assert _error(resp)['code'] == code, resp.text


# -- rule bodies ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize('field,value,code', [
    ('access', 'Permit', 'SecurityRuleInvalidAccess'),
    ('access', 'allow', 'SecurityRuleInvalidAccess'),
    ('direction', 'Inward', 'SecurityRuleInvalidDirection'),
    ('direction', 'Both', 'SecurityRuleInvalidDirection'),
])
def test_access_and_direction_outside_their_enums_are_refused(client, field, value, code):
    _refused(client.put_rule('r1', **{field: value}), code)
    assert _rules(client) == []


@pytest.mark.parametrize('props', [
    {'sourceAddressPrefix': '10.0.0.300'},
    {'sourceAddressPrefix': '1.2.3.4/33'},
    {'sourceAddressPrefix': '10.0.0.5/24'},                     # host bits set
    {'sourceAddressPrefix': None, 'sourceAddressPrefixes': ['10.0.0.0/24', '192.168.1.1/16']},
    {'destinationAddressPrefix': '2001:db8::1/32'},             # host bits set, IPv6
])
def test_bad_address_prefixes_and_host_bits_are_refused(client, props):
    _refused(client.put_rule('r1', **props), 'SecurityRuleInvalidAddressPrefix')
    assert _rules(client) == []


@pytest.mark.parametrize('source,destination', [
    ('2001:db8::/64', '10.0.0.4'),
    ('198.51.100.7', '2001:db8::4'),
    ('2001:db8::7', '10.0.0.0/24'),
])
def test_ipv6_source_with_ipv4_destination_or_the_reverse_is_refused(client, source, destination):
    resp = client.put_rule('r1', sourceAddressPrefix=source, destinationAddressPrefix=destination)
    _refused(resp, 'SecurityRuleAddressPrefixesOfDifferentIpVersions')
    assert _rules(client) == []


@pytest.mark.parametrize('source,destination', [
    ('2001:db8::/64', '2001:db8:1::4'), ('198.51.100.0/24', '10.0.0.4'), ('*', '2001:db8::4'),
    ('Internet', '10.0.0.4'), ('198.51.100.7', 'VirtualNetwork')])
def test_same_family_or_a_tag_on_either_side_is_accepted(client, source, destination):
    resp = client.put_rule('r1', sourceAddressPrefix=source, destinationAddressPrefix=destination)
    assert resp.status_code == 201, resp.text


def _asg(client, name, location=LOC):
    return network.create_asg(client.world, client.sub, RG, name, location)['id']


def test_application_security_groups_must_be_well_formed_exist_and_share_the_region(client):
    good = _asg(client, 'web')
    far = _asg(client, 'far', 'eastus')
    missing = good.replace('/web', '/nothere')

    def put(**props):
        return client.put_rule('r1', sourceAddressPrefix=None, **props)

    _refused(put(sourceApplicationSecurityGroups=[{'id': 'web'}]), 'LinkedInvalidPropertyId')
    _refused(put(sourceApplicationSecurityGroups=[{'id': missing}]), 'InvalidResourceReference')
    _refused(put(sourceApplicationSecurityGroups=[{'id': far}]), 'InvalidResourceReference')
    resp = client.put_rule('r1', sourceApplicationSecurityGroups=[{'id': good}])   # and sourceAddressPrefix '*'
    _refused(resp, 'SecurityRuleParameterContainsMultipleValues')
    assert _rules(client) == []
    assert put(sourceApplicationSecurityGroups=[{'id': good}]).status_code == 201
    resp = client.put_rule('r2', priority=201, destinationAddressPrefix=None,
                           destinationApplicationSecurityGroups=[{'id': good.upper()}])
    assert resp.status_code == 201, resp.text   # ids compare case-insensitively, as ARM ids do


def test_an_nsg_holds_at_most_1000_rules(client):
    nsg = client.world.get(client.nsg_id())
    for i in range(1000):
        props = {'protocol': 'Tcp', 'sourcePortRange': '*', 'destinationPortRange': str(1000 + i),
                 'sourceAddressPrefix': '*', 'destinationAddressPrefix': '*', 'access': 'Deny',
                 'priority': 100 + i, 'direction': 'Inbound'}
        network._normalise_rule(props)  # pylint: disable=protected-access
        network._store_rule(  # pylint: disable=protected-access
            client.world, nsg, 'seed{}'.format(i), props, 'Succeeded')
    resp = client.put_rule('one-too-many', priority=3000)
    _refused(resp, 'SecurityRuleCountLimitReached')
    assert _error(resp)['message'] == 'A security group cannot have more than 1000 security rules.'
    assert len(_rules(client)) == 1000
    assert client.put_rule('seed7', priority=107, access='Allow').status_code == 200   # updating one is fine


# -- one operation at a time, polled deletes, failures ----------------------------------------------------------
def test_a_second_write_while_an_operation_holds_the_nsg_gets_429_retryable(client):
    first = client.put_rule('r1', wait=False)
    assert first.status_code == 201
    for resp in (client.put_rule('r2', priority=300, wait=False), client.call('DELETE', client.rule_path('r1'))):
        assert resp.status_code == 429, resp.text
        assert _error(resp)['code'] == 'RetryableErrorDueToAnotherOperation'
        assert int(resp.headers['Retry-After']) >= 1
    assert [r['name'] for r in _rules(client)] == ['r1']
    assert client.wait(first) == 'Succeeded'
    assert client.put_rule('r2', priority=300).status_code == 201   # free again once the operation completed


def test_an_operation_nobody_polls_completes_by_itself(client):
    client.world.lro_seconds = 0.3
    assert client.put_rule('r1', wait=False).status_code == 201
    assert client.put_rule('r2', priority=300, wait=False).status_code == 429
    time.sleep(0.4)
    assert client.call('GET', client.rule_path('r1')).json()['properties']['provisioningState'] == 'Succeeded'
    assert client.put_rule('r2', priority=300).status_code == 201


def test_delete_is_polled_the_rule_stays_deleting_until_the_operation_completes(client):
    client.put_rule('r1')
    gone = client.call('DELETE', client.rule_path('r1'))
    assert gone.status_code == 202
    still = client.call('GET', client.rule_path('r1'))
    assert still.status_code == 200 and still.json()['properties']['provisioningState'] == 'Deleting'
    assert client.put_rule('r1-again', priority=300, wait=False).status_code == 429   # the NSG is busy
    assert client.wait(gone) == 'Succeeded'
    assert client.call('GET', client.rule_path('r1')).status_code == 404


def test_an_operation_can_end_failed_and_leaves_the_rule_in_failed_state(client):
    client.world.faults.append(Fault('PUT', r'/securityRules/r1$', kind='lro_failed', code='InternalServerError',
                                     message='An error occurred while applying the rule.'))
    resp = client.put_rule('r1', wait=False)
    assert resp.status_code == 201
    poll = client.follow(resp.headers['Azure-AsyncOperation'])
    assert poll.json() == {'status': 'Failed', 'error': {'code': 'InternalServerError',
                                                         'message': 'An error occurred while applying the rule.'}}
    rule = client.call('GET', client.rule_path('r1')).json()
    assert rule['properties']['provisioningState'] == 'Failed' and rule['properties']['access'] == 'Allow'
    # A DELETE that fails leaves the rule where it was, too.
    client.world.faults.append(Fault('DELETE', r'/securityRules/r1$', kind='lro_failed', code='InternalServerError',
                                     message='Delete failed.'))
    gone = client.call('DELETE', client.rule_path('r1'))
    assert gone.status_code == 202 and client.wait(gone) == 'Failed'
    assert client.follow(gone.headers['Location']).status_code == 400
    assert client.call('GET', client.rule_path('r1')).json()['properties']['provisioningState'] == 'Failed'
    gone = client.call('DELETE', client.rule_path('r1'))
    assert client.wait(gone) == 'Succeeded' and client.call('GET', client.rule_path('r1')).status_code == 404


def test_etags_of_the_rule_and_its_nsg_change_when_the_operation_completes(client):
    resp = client.put_rule('r1', wait=False)
    answered = resp.json()['etag']
    nsg_before = client.call('GET', client.nsg_id()).headers['ETag']
    assert client.wait(resp) == 'Succeeded'
    assert client.call('GET', client.rule_path('r1')).headers['ETag'] != answered
    assert client.call('GET', client.nsg_id()).headers['ETag'] != nsg_before


def test_drop_after_applies_the_request_and_loses_the_answer(client):
    client.world.faults.append(Fault('PUT', r'/securityRules/r1$', kind='drop_after'))
    with pytest.raises(requests.exceptions.ConnectionError):
        client.put_rule('r1')
    assert [r['name'] for r in _rules(client)] == ['r1']   # Azure applied it; only the answer was lost
    assert [(r.method, r.status) for r in client.world.requests if r.path.endswith('/r1')] == [('PUT', 0)]


# -- tags -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('char', list('<>%&\\?/'))
def test_tag_names_with_reserved_characters_are_refused(client, char):
    path = client.nsg_id() + '/providers/Microsoft.Resources/tags/default'
    name = 'a{}b'.format(char)
    for method, body in (('PATCH', {'operation': 'Merge', 'properties': {'tags': {name: '1'}}}),
                         ('PUT', {'properties': {'tags': {name: '1'}}})):
        resp = client.call(method, path, body, api=TAGS_API)
        _refused(resp, 'InvalidTagNameCharacters')
    assert client.world.get(client.nsg_id())['tags'] == {}
    value_ok = client.call('PATCH', path, {'operation': 'Merge', 'properties': {'tags': {'ok': 'a' + char}}},
                           api=TAGS_API)
    assert value_ok.status_code == 200   # only names are restricted


def test_a_vm_patch_with_a_reserved_character_in_a_tag_name_is_refused(client):
    vm = compute.create_vm(client.world, client.sub, RG, 'vm1', [])
    resp = client.call('PATCH', vm['id'], {'tags': {'azvmjit/policy': '{}'}}, api='2024-07-01')
    _refused(resp, 'InvalidTagNameCharacters')
    assert client.world.get(vm['id'])['tags'] == {}


def test_tag_names_compare_case_insensitively(client):
    path = client.nsg_id() + '/providers/Microsoft.Resources/tags/default'
    client.call('PATCH', path, {'operation': 'Merge', 'properties': {'tags': {'abc': '1', 'keep': 'k'}}},
                api=TAGS_API)
    merged = client.call('PATCH', path, {'operation': 'Merge', 'properties': {'tags': {'ABC': '2'}}}, api=TAGS_API)
    assert merged.json()['properties']['tags'] == {'ABC': '2', 'keep': 'k'}
    deleted = client.call('PATCH', path, {'operation': 'Delete', 'properties': {'tags': {'abc': ''}}}, api=TAGS_API)
    assert deleted.json()['properties']['tags'] == {'keep': 'k'}
