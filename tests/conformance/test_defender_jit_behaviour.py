# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""tests/standin/security.py: Defender for Cloud's JIT API and plan, driven over HTTPS like a client would.

Each test starts its own stand-in (a fresh world) in-process and talks to it with `requests`, so routing,
RBAC, the swagger check and the handlers are all exercised together.
"""
import datetime as dt
import json
import re

import pytest
import requests

from tests.conformance import fresh_worlds
from tests.standin import schema, security, tokens

API = '2020-01-01'
RG = 'myRg1'
LOC = 'westeurope'
EXAMPLES = schema.specs_root() / 'security' / '2020-01-01' / 'examples' / 'JitNetworkAccessPolicies'
EXAMPLE_SUB = '20ff7fc3-e762-44dd-bd96-b71116dcdc23'
SUBSET = "The given access request is not a subset of policy 'default'"
DENY_NAME = re.compile(r'^SecurityCenter-JITRule_(-?\d+)_([0-9A-F]{32})$')
ALLOW_NAME = re.compile(r'^SecurityCenter-JITRule-(-?\d+)-([0-9A-F]{32})$')


class Env:
    """A running stand-in, an Owner identity, and shortcuts for the calls the tests make."""

    def __init__(self, standin):
        self.standin = standin
        self.world = standin.world
        self.sub = standin.sub
        self.admin = self.world.add_identity('admin', [('Owner', '/subscriptions/' + self.sub)])
        self.session = requests.Session()

    def call(self, method, path, body=None, api=API, ident=None, url=None):
        token = tokens.issue(self.world, ident or self.admin, self.standin.base_url + '/')
        headers = {'Authorization': 'Bearer ' + token}
        if url is None:
            url, params = self.standin.base_url + path, {'api-version': api}
        else:
            params = None
        # verify per call: a Session's own verify loses to REQUESTS_CA_BUNDLE from the environment.
        return self.session.request(method, url, params=params, json=body, headers=headers,
                                    verify=self.standin.ca_path)

    def pid(self, name='default', rg=RG, location=LOC):
        return security.policy_id(self.sub, rg, location, name)

    def vm(self, name, rg=RG, **kwargs):
        return self.standin.vm(rg, name, **kwargs)

    def put_policy(self, entries, name='default', rg=RG, location=LOC, ident=None):
        return self.call('PUT', self.pid(name, rg, location), {'kind': 'Basic', 'properties': {
            'virtualMachines': entries}}, ident=ident)

    def get_policy(self, name='default'):
        resp = self.call('GET', self.pid(name))
        assert resp.status_code == 200, resp.text
        return resp.json()

    def initiate(self, vm_id, ports, minutes=60, source=None, justification=None, ident=None, end=None):
        end = end or self.world.clock.now() + dt.timedelta(minutes=minutes)
        body = {'virtualMachines': [{'id': vm_id, 'ports': [
            dict({'number': p, 'endTimeUtc': end.strftime('%Y-%m-%dT%H:%M:%S.%fZ')},
                 **({'allowedSourceAddressPrefix': source} if source else {})) for p in ports]}]}
        if justification is not None:
            body['justification'] = justification
        return self.call('POST', self.pid() + '/initiate', body, ident=ident)

    def nsg(self, nsg_id):
        resp = self.call('GET', nsg_id, api='2024-05-01')
        assert resp.status_code == 200, resp.text
        return resp.json()

    def rules(self, nsg_id, settled=True):
        """The NSG's rules over HTTP; `settled`: once the writes Defender has queued have landed (as a while later)."""
        if settled:
            security.settle(self.world)
        return {r['name']: r for r in self.nsg(nsg_id)['properties']['securityRules']}


fixture_standin = pytest.fixture(name='standin', scope='module')(fresh_worlds.module_standin)


@pytest.fixture(name='env')
def fixture_env(standin):
    yield from fresh_worlds.fresh_env(standin, Env, no_violations=False)


def _example(name):
    text = (EXAMPLES / name).read_text(encoding='utf-8')
    return json.loads(text)


def _shape(value):
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def _deny(rules):
    return {n: r for n, r in rules.items() if DENY_NAME.match(n)}


def _allow(rules):
    return {n: r for n, r in rules.items() if ALLOW_NAME.match(n)}


def _port_rule(vm, ports=(22,), protocol='TCP', source='*', duration='PT3H', **extra):
    entry = security.jit_vm(vm['id'], ports, protocol, source, duration)
    for port in entry['ports']:
        port.update(extra)
    return entry


# -- the published example ------------------------------------------------------------------------------
def test_example_put_body_is_accepted_and_answered_in_the_examples_shape(env):
    env.vm('vm1')
    example = json.loads(json.dumps(_example('CreateJitNetworkAccessPolicy_example.json')).replace(
        EXAMPLE_SUB, env.sub))
    resp = env.call('PUT', env.pid(), example['parameters']['body'])
    assert resp.status_code == 200, resp.text
    got, want = resp.json(), example['responses']['200']['body']
    # Same resource identity and VM list; the recorded extra `appendMode: false`; requests are not taken from a PUT.
    for key in ('id', 'name', 'type', 'location', 'kind'):
        assert got[key] == want[key]
    assert got['properties']['virtualMachines'] == want['properties']['virtualMachines']
    assert set(got['properties']) == set(want['properties']) | {'appendMode'}
    assert got['properties']['appendMode'] is False
    assert got['properties']['requests'] == []
    assert got['properties']['provisioningState'] == 'Updating'
    assert set(got) == set(want)
    # Once a request exists, its shape is the example's request shape.
    assert env.initiate(got['properties']['virtualMachines'][0]['id'], [3389], source='192.127.0.2').status_code == 202
    stored = env.get_policy()
    want_shape, got_shape = _shape(want), _shape(stored)
    got_shape['properties'].pop('appendMode')
    assert got_shape == want_shape
    without_append = json.loads(json.dumps(stored))
    del without_append['properties']['appendMode']
    assert schema.load('security-jit').validate_response('JitNetworkAccessPolicies_Get', 200, without_append) == []


def test_example_initiate_is_answered_in_the_examples_shape(env):
    vm = env.vm('vm1')
    assert env.put_policy([_port_rule(vm, (3389,), '*', '*')]).status_code == 200
    resp = env.initiate(vm['id'], [3389], source='192.127.0.2', justification='testing a new version of the product')
    assert resp.status_code == 202, resp.text
    want = _example('InitiateJitNetworkAccessPolicy_example.json')['responses']['202']['body']
    assert _shape(resp.json()) == _shape(want)
    assert schema.load('security-jit').validate_response('JitNetworkAccessPolicies_Initiate', 202, resp.json()) == []


# -- PUT checks -------------------------------------------------------------------------------------------
def test_both_source_prefix_fields_are_refused(env):
    vm = env.vm('vm1')
    entry = _port_rule(vm, allowedSourceAddressPrefixes=['10.0.0.0/8'])
    resp = env.put_policy([entry])
    assert resp.status_code == 400, resp.text
    assert 'allowedSourceAddressPrefix' in resp.json()['error']['message']
    assert env.call('GET', env.pid()).status_code == 404


@pytest.mark.parametrize('duration,status', [('PT24H', 200), ('P1D', 200), ('PT5M', 200), ('PT3H', 200),
                                             ('P2D', 400), ('PT24H1M', 400), ('PT4M', 400), ('3h', 400),
                                             ('PT', 400), ('P1M', 400), ('pt3h', 400)])
def test_max_request_access_duration_must_be_iso_8601_within_5_minutes_and_1_day(env, duration, status):
    vm = env.vm('vm1')
    resp = env.put_policy([_port_rule(vm, duration=duration)])
    assert resp.status_code == status, resp.text


def test_unknown_vm_is_refused(env):
    env.standin.resource_group(RG)
    missing = '/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines/ghost'.format(
        env.sub, RG)
    resp = env.put_policy([security.jit_vm(missing)])
    assert resp.status_code == 400
    assert 'ghost' in resp.json()['error']['message']


def test_policy_name_plus_vm_name_over_56_characters_is_refused(env):
    vm = env.vm('v' * 49)   # 'default' (7) + 49 = 56: fine
    assert env.put_policy([_port_rule(vm)]).status_code == 200
    longer = env.vm('w' * 50)
    assert env.put_policy([_port_rule(longer)]).status_code == 400


def test_vm_of_another_resource_group_or_region_is_refused(env):
    elsewhere = env.vm('vm1', rg='otherRg')
    env.standin.resource_group(RG)
    assert env.put_policy([_port_rule(elsewhere)]).status_code == 400
    northern = env.vm('vm2', location='northeurope')
    assert env.put_policy([_port_rule(northern)]).status_code == 400
    assert env.put_policy([_port_rule(northern)], location='northeurope').status_code == 200


def test_swagger_violations_are_refused(env):
    vm = env.vm('vm1')
    entry = _port_rule(vm)
    entry['ports'][0]['number'] = 70000
    resp = env.put_policy([entry])
    assert resp.status_code == 400
    assert 'greater than the maximum' in resp.json()['error']['message']


def test_put_body_requests_are_ignored_and_stored_requests_kept(env):
    vm = env.vm('vm1')
    assert env.put_policy([_port_rule(vm)]).status_code == 200
    assert env.initiate(vm['id'], [22]).status_code == 202
    forged = [{'virtualMachines': [{'id': vm['id'], 'ports': [{'number': 22, 'endTimeUtc': '2030-01-01T00:00:00Z',
                                                               'status': 'Initiated', 'statusReason': 'UserRequested',
                                                               'allowedSourceAddressPrefix': '*'}]}],
               'startTimeUtc': '2029-01-01T00:00:00Z', 'requestor': 'mallory'}]
    resp = env.call('PUT', env.pid(), {'properties': {'virtualMachines': [_port_rule(vm, (22, 80))],
                                                      'requests': forged}})
    assert resp.status_code == 200
    requests_ = resp.json()['properties']['requests']
    assert len(requests_) == 1 and requests_[0]['requestor'] == ''
    assert requests_[0]['virtualMachines'][0]['ports'][0]['allowedSourceAddressPrefix'] == env.admin.public_ip


def test_provisioning_state_is_updating_after_put_then_succeeded(env):
    vm = env.vm('vm1')
    assert env.put_policy([_port_rule(vm)]).json()['properties']['provisioningState'] == 'Updating'
    assert env.get_policy()['properties']['provisioningState'] == 'Updating'   # as recorded right after a PUT
    assert env.get_policy()['properties']['provisioningState'] == 'Succeeded'
    assert env.put_policy([_port_rule(vm)]).json()['properties']['provisioningState'] == 'Updating'


# -- deny rules -------------------------------------------------------------------------------------------
def test_put_writes_one_deny_rule_per_vm_in_its_nic_nsg(env):
    vm = env.vm('vm1', rules=[{'name': 'user-ssh', 'properties': {
        'protocol': 'Tcp', 'sourcePortRange': '*', 'destinationPortRange': '22', 'sourceAddressPrefix': '1.2.3.4',
        'destinationAddressPrefix': '*', 'access': 'Allow', 'priority': 4096, 'direction': 'Inbound'}}])
    before = env.rules(vm['nsg_id'])['user-ssh']
    assert env.put_policy([_port_rule(vm, (22, 3389))]).status_code == 200
    rules = env.rules(vm['nsg_id'])
    assert rules['user-ssh'] == before
    (name, rule), = _deny(rules).items()
    props = rule['properties']
    assert props['access'] == 'Deny' and props['direction'] == 'Inbound'
    assert props['priority'] == 4095                      # highest free from 4096 down (4096 is taken)
    assert props['destinationPortRanges'] == ['22', '3389'] and not props.get('destinationPortRange')
    assert props['destinationAddressPrefix'] == vm['private_ip'] and props['sourceAddressPrefix'] == '*'
    assert props['protocol'] == 'Tcp'
    assert props['description'] == "ASC JIT Network Access rule for policy 'default' of VM 'vm1'."
    assert not _allow(rules)


@pytest.mark.parametrize('protocols,expected', [(('TCP',), 'Tcp'), (('UDP',), 'Udp'), (('*',), '*'),
                                                (('TCP', 'UDP'), '*')])
def test_deny_rule_protocol_follows_the_policy_ports(env, protocols, expected):
    vm = env.vm('vm1')
    entry = {'id': vm['id'], 'ports': [dict(_port_rule(vm, (1000 + i,))['ports'][0], protocol=p)
                                       for i, p in enumerate(protocols)]}
    assert env.put_policy([entry]).status_code == 200
    (rule,) = _deny(env.rules(vm['nsg_id'])).values()
    assert rule['properties']['protocol'] == expected
    if len(protocols) == 1:
        assert rule['properties']['destinationPortRange'] == '1000'


def test_subnet_nsg_is_used_when_the_nic_has_none_and_each_vm_gets_its_own_priority(env):
    vm1 = env.vm('vm1', nsg='subnet', nsg_name='shared')
    vm2 = env.vm('vm2', nsg='subnet', nsg_name='shared')
    assert env.put_policy([_port_rule(vm1), _port_rule(vm2)]).status_code == 200
    deny = _deny(env.rules(vm1['nsg_id']))
    by_ip = {r['properties']['destinationAddressPrefix']: r for r in deny.values()}
    assert set(by_ip) == {vm1['private_ip'], vm2['private_ip']}
    assert sorted(r['properties']['priority'] for r in deny.values()) == [4095, 4096]
    assert by_ip[vm1['private_ip']]['properties']['description'].endswith("of VM 'vm1'.")


def test_put_dropping_one_vm_removes_only_its_deny_rule(env):
    vm1 = env.vm('vm1', nsg='subnet', nsg_name='shared')
    vm2 = env.vm('vm2', nsg='subnet', nsg_name='shared')
    assert env.put_policy([_port_rule(vm1), _port_rule(vm2)]).status_code == 200
    before = env.rules(vm1['nsg_id'])
    kept = next(n for n, r in before.items() if r['properties']['destinationAddressPrefix'] == vm1['private_ip'])
    assert env.put_policy([_port_rule(vm1)]).status_code == 200
    after = env.rules(vm1['nsg_id'])
    assert set(after) == {kept}
    assert after[kept] == before[kept]          # untouched: same etag, same everything


def test_changing_one_of_three_vms_leaves_the_other_two_byte_identical(env):
    vms = [env.vm('vm{}'.format(i), nsg='subnet', nsg_name='shared') for i in range(3)]
    assert env.put_policy([_port_rule(v, (22, 3389), source='10.1.0.0/16') for v in vms]).status_code == 200
    before = env.get_policy()['properties']['virtualMachines']
    rules_before = env.rules(vms[0]['nsg_id'])
    entries = json.loads(json.dumps(before))
    entries[1]['ports'].append({'number': 5985, 'protocol': 'TCP', 'allowedSourceAddressPrefix': '10.1.0.0/16',
                                'maxRequestAccessDuration': 'PT1H'})
    assert env.put_policy(entries).status_code == 200
    after = env.get_policy()['properties']['virtualMachines']
    assert [json.dumps(after[i]) for i in (0, 2)] == [json.dumps(before[i]) for i in (0, 2)]
    assert after[1]['ports'][-1]['number'] == 5985
    rules_after = env.rules(vms[0]['nsg_id'])
    assert set(rules_after) == set(rules_before)
    for name, rule in rules_after.items():
        if rule['properties']['destinationAddressPrefix'] == vms[1]['private_ip']:
            assert rule['properties']['destinationPortRanges'] == ['22', '3389', '5985']
            assert rule['properties']['priority'] == rules_before[name]['properties']['priority']
        else:
            assert rule == rules_before[name]


def test_vm_without_any_nsg_is_accepted_and_can_be_initiated(env):
    vm = env.vm('vm1', nsg=None)
    assert env.put_policy([_port_rule(vm)]).status_code == 200
    resp = env.initiate(vm['id'], [22])
    assert resp.status_code == 202, resp.text


# -- initiate -------------------------------------------------------------------------------------------
def test_initiate_answers_202_initiating_then_reads_back_initiated(env):
    vm = env.vm('vm1')
    assert env.put_policy([_port_rule(vm, source='198.51.100.7')]).status_code == 200
    resp = env.initiate(vm['id'], [22], source='198.51.100.7', justification='patching')
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body['requestor'] == ''
    assert body['justification'] == 'patching'
    port = body['virtualMachines'][0]['ports'][0]
    assert (port['status'], port['statusReason']) == ('Initiating', 'UserRequested')
    assert port['allowedSourceAddressPrefix'] == '198.51.100.7'
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z', body['startTimeUtc'])
    (stored,) = env.get_policy()['properties']['requests']
    assert stored['virtualMachines'][0]['ports'][0]['status'] == 'Initiated'
    assert stored['requestor'] == ''
    assert security.request_callers(env.world, env.pid()) == [env.admin.caller]


def test_initiate_writes_an_allow_rule_per_port(env):
    vm = env.vm('vm1')
    assert env.put_policy([_port_rule(vm, (22, 3389), protocol='TCP', source='*')]).status_code == 200
    assert env.initiate(vm['id'], [22, 3389], source='198.51.100.7').status_code == 202
    rules = env.rules(vm['nsg_id'])
    (deny_name,) = _deny(rules)
    allow = sorted(_allow(rules).values(), key=lambda r: r['properties']['priority'])
    assert [r['properties']['priority'] for r in allow] == [100, 101]
    assert [r['properties']['destinationPortRange'] for r in allow] == ['22', '3389']
    vm_int = DENY_NAME.match(deny_name).group(1)
    for rule in allow:
        props = rule['properties']
        assert ALLOW_NAME.match(rule['name']).group(1) == vm_int
        assert props['access'] == 'Allow' and props['direction'] == 'Inbound' and props['protocol'] == 'Tcp'
        assert props['sourceAddressPrefix'] == '198.51.100.7'
        assert props['destinationAddressPrefix'] == vm['private_ip']
        assert props['description'] == (
            "ASC JIT Network Access rule created by an initiation request for policy 'default' of VM 'vm1'.")


def test_initiate_without_source_uses_the_callers_public_ip(env):
    vm = env.vm('vm1')
    assert env.put_policy([_port_rule(vm)]).status_code == 200
    resp = env.initiate(vm['id'], [22])
    assert resp.json()['virtualMachines'][0]['ports'][0]['allowedSourceAddressPrefix'] == env.admin.public_ip
    (allow,) = _allow(env.rules(vm['nsg_id'])).values()
    assert allow['properties']['sourceAddressPrefix'] == env.admin.public_ip


@pytest.mark.parametrize('case', ['port not in policy', 'too long', 'in the past', 'source outside', 'unknown vm'])
def test_initiate_refuses_what_is_not_a_subset_of_the_policy(env, case):
    vm = env.vm('vm1')
    other = env.vm('vm2')
    assert env.put_policy([_port_rule(vm, (22,), source='198.51.100.7', duration='PT1H')]).status_code == 200
    rules_before = env.rules(vm['nsg_id'])
    kwargs = {'source': '198.51.100.7', 'minutes': 30}
    target, ports = vm['id'], [22]
    if case == 'port not in policy':
        ports = [3389]
    elif case == 'too long':
        kwargs['minutes'] = 62                     # PT1H + the 1-minute skew allowance is still exceeded
    elif case == 'in the past':
        kwargs['minutes'] = -1
    elif case == 'source outside':
        kwargs['source'] = '198.51.100.8'
    else:
        target = other['id']
    resp = env.initiate(target, ports, **kwargs)
    assert resp.status_code == 400, resp.text
    assert SUBSET in resp.json()['error']['message']
    assert env.rules(vm['nsg_id']) == rules_before
    assert env.get_policy()['properties']['requests'] == []


def test_duration_up_to_the_maximum_plus_clock_skew_is_accepted(env):
    vm = env.vm('vm1')
    assert env.put_policy([_port_rule(vm, duration='PT1H')]).status_code == 200
    assert env.initiate(vm['id'], [22], minutes=60.5).status_code == 202


def test_source_inside_an_allowed_cidr_is_refused_only_exact_prefixes_match(env):
    vm = env.vm('vm1')
    assert env.put_policy([_port_rule(vm, source=['10.0.0.0/8', '192.0.2.1'])]).status_code == 200
    resp = env.initiate(vm['id'], [22], source='10.1.2.3')
    assert resp.status_code == 400 and SUBSET in resp.json()['error']['message']
    assert env.initiate(vm['id'], [22], source='10.0.0.0/8').status_code == 202
    assert env.initiate(vm['id'], [22], source='192.0.2.1').status_code == 202
    # Missing source = the caller's IP, which the policy does not list.
    assert env.initiate(vm['id'], [22]).status_code == 400


def test_newer_request_revokes_the_older_port_and_its_allow_rule(env):
    vm = env.vm('vm1')
    assert env.put_policy([_port_rule(vm, (22, 3389))]).status_code == 200
    assert env.initiate(vm['id'], [22, 3389], source='198.51.100.7').status_code == 202
    first_rules = _allow(env.rules(vm['nsg_id']))
    assert env.initiate(vm['id'], [22], source='198.51.100.9').status_code == 202
    older, newer = env.get_policy()['properties']['requests']      # newest last
    status = {p['number']: (p['status'], p['statusReason']) for p in older['virtualMachines'][0]['ports']}
    assert status == {22: ('Revoked', 'NewerRequestInitiated'), 3389: ('Initiated', 'UserRequested')}
    assert newer['virtualMachines'][0]['ports'][0]['status'] == 'Initiated'
    allow = _allow(env.rules(vm['nsg_id']))
    sources = sorted((r['properties']['destinationPortRange'], r['properties']['sourceAddressPrefix'])
                     for r in allow.values())
    assert sources == [('22', '198.51.100.9'), ('3389', '198.51.100.7')]
    assert len(set(allow) & set(first_rules)) == 1


# -- expiry and outside deletion ------------------------------------------------------------------------
def test_past_end_time_the_port_is_revoked_expired_and_the_allow_rule_gone(env):
    vm = env.vm('vm1')
    assert env.put_policy([_port_rule(vm)]).status_code == 200
    assert env.initiate(vm['id'], [22], minutes=30).status_code == 202
    assert len(_allow(env.rules(vm['nsg_id']))) == 1
    env.world.clock.advance(minutes=29)
    assert len(_allow(env.rules(vm['nsg_id']))) == 1
    env.world.clock.advance(minutes=2)
    # Reading the NSG alone shows the rule gone (network.py lets Defender catch up first).
    rules = env.rules(vm['nsg_id'])
    assert not _allow(rules) and len(_deny(rules)) == 1
    (request,) = env.get_policy()['properties']['requests']
    port = request['virtualMachines'][0]['ports'][0]
    assert (port['status'], port['statusReason']) == ('Revoked', 'Expired')


def test_allow_rule_deleted_from_outside_is_not_recreated_and_request_stays_initiated(env):
    vm = env.vm('vm1')
    assert env.put_policy([_port_rule(vm)]).status_code == 200
    assert env.initiate(vm['id'], [22], minutes=30).status_code == 202
    (name,) = _allow(env.rules(vm['nsg_id']))
    deleting = env.call('DELETE', vm['nsg_id'] + '/securityRules/' + name, api='2024-05-01')
    assert deleting.status_code == 202
    assert env.call('GET', None, url=deleting.headers['Azure-AsyncOperation']).json() == {'status': 'Succeeded'}
    assert env.get_policy()['properties']['requests'][0]['virtualMachines'][0]['ports'][0]['status'] == 'Initiated'
    assert not _allow(env.rules(vm['nsg_id']))
    env.world.clock.advance(minutes=31)
    port = env.get_policy()['properties']['requests'][0]['virtualMachines'][0]['ports'][0]
    assert (port['status'], port['statusReason']) == ('Revoked', 'Expired')


# -- delete -----------------------------------------------------------------------------------------------
def test_delete_answers_200_then_204_and_removes_defenders_rules_only(env):
    vm = env.vm('vm1', rules=[{'name': 'user-rdp', 'properties': {
        'protocol': 'Tcp', 'sourcePortRange': '*', 'destinationPortRange': '3389', 'sourceAddressPrefix': '1.2.3.4',
        'destinationAddressPrefix': '*', 'access': 'Allow', 'priority': 100, 'direction': 'Inbound'}}])
    assert env.put_policy([_port_rule(vm)]).status_code == 200
    assert env.initiate(vm['id'], [22]).status_code == 202
    assert len(env.rules(vm['nsg_id'])) == 3
    resp = env.call('DELETE', env.pid())
    assert resp.status_code == 200 and resp.content == b''
    assert set(env.rules(vm['nsg_id'])) == {'user-rdp'}
    assert env.call('DELETE', env.pid()).status_code == 204
    assert env.call('GET', env.pid()).status_code == 404


# -- plan, RBAC, lists, audit -----------------------------------------------------------------------------
def test_plan_off_or_p1_refuses_every_jit_operation_but_pricings_stay_readable(env):
    vm = env.vm('vm1')
    assert env.put_policy([_port_rule(vm)]).status_code == 200
    calls = [('GET', '/subscriptions/{}/providers/Microsoft.Security/jitNetworkAccessPolicies'.format(env.sub), None),
             ('GET', env.pid(), None), ('PUT', env.pid(), {'properties': {'virtualMachines': [_port_rule(vm)]}}),
             ('POST', env.pid() + '/initiate', {'virtualMachines': [{'id': vm['id'], 'ports': [
                 {'number': 22, 'endTimeUtc': '2099-01-01T00:00:00Z'}]}]}),
             ('DELETE', env.pid(), None)]
    pricing = '/subscriptions/{}/providers/Microsoft.Security/pricings/VirtualMachines'.format(env.sub)
    for sub_plan_on in (False, 'P1'):
        if sub_plan_on:
            security.set_defender_plan(env.world, True, sub_plan_on)
        else:
            security.set_defender_plan(env.world, False)
        for method, path, body in calls:
            resp = env.call(method, path, body)
            assert resp.status_code == 400, (method, path)
            assert resp.json()['error']['code'] == 'JitNotSupportedForSubscription'
        plan = env.call('GET', pricing, api='2022-03-01').json()['properties']
        assert plan['pricingTier'] == ('Standard' if sub_plan_on else 'Free')
        assert plan.get('subPlan') == (sub_plan_on or None)
    security.state(env.world)['plan_off_error'] = (403, 'Custom', 'no plan')
    assert env.call('GET', env.pid()).json() == {'error': {'code': 'Custom', 'message': 'no plan'}}
    # Turning the plan on through the API brings JIT back; the policy was kept.
    resp = env.call('PUT', pricing, {'properties': {'pricingTier': 'Standard'}}, api='2022-03-01')
    assert resp.status_code == 200 and resp.json()['properties']['subPlan'] == 'P2'
    assert env.call('GET', env.pid()).status_code == 200


@pytest.mark.parametrize('api,has_sub_plan', [('2018-06-01', False), ('2022-03-01', True), ('2023-01-01', True),
                                              ('2024-01-01', True)])
def test_pricings_get_and_list_per_api_version(env, api, has_sub_plan):
    base = '/subscriptions/{}/providers/Microsoft.Security/pricings'.format(env.sub)
    body = env.call('GET', base + '/VirtualMachines', api=api).json()
    assert body['id'] == base + '/VirtualMachines' and body['type'] == 'Microsoft.Security/pricings'
    assert body['properties']['pricingTier'] == 'Standard'
    assert ('subPlan' in body['properties']) == has_sub_plan
    listed = env.call('GET', base, api=api).json()
    assert 'nextLink' not in listed
    assert body in listed['value']
    assert env.call('GET', base, api='2020-01-01').status_code == 400


def test_caller_without_the_role_gets_403_authorization_failed(env):
    vm = env.vm('vm1')
    assert env.put_policy([_port_rule(vm)]).status_code == 200
    reader = env.world.add_identity('reader', [('Reader', '/subscriptions/' + env.sub)])
    assert env.call('GET', env.pid(), ident=reader).status_code == 200
    resp = env.put_policy([_port_rule(vm)], ident=reader)
    assert resp.status_code == 403
    error = resp.json()['error']
    assert error['code'] == 'AuthorizationFailed'
    assert reader.client_id in error['message'] and security.JIT_WRITE in error['message']
    resp = env.initiate(vm['id'], [22], ident=reader)
    assert resp.status_code == 403
    assert "action '{}' over scope '{}'".format(security.JIT_INITIATE, env.pid()) in resp.json()['error']['message']
    nobody = env.world.add_identity('nobody')
    assert env.call('GET', env.pid(), ident=nobody).json()['error']['code'] == 'AuthorizationFailed'
    assert not _allow(env.rules(vm['nsg_id']))


@pytest.mark.parametrize('scope,expected', [
    ('sub', 5), ('sub+location', 4), ('rg', 4), ('rg+location', 3)])
def test_lists_page_with_next_link_at_every_scope(env, scope, expected):
    for rg, location, name in [('rgA', LOC, 'default'), ('rgA', LOC, 'second'), ('rgA', LOC, 'third'),
                               ('rgA', 'northeurope', 'default'), ('rgB', LOC, 'default')]:
        env.standin.resource_group(rg)
        security.add_policy(env.world, rg, location, [], name=name)
    env.world.page_size = 1
    prefix = '/subscriptions/{}'.format(env.sub)
    path = {'sub': prefix, 'sub+location': prefix, 'rg': prefix + '/resourceGroups/rgA',
            'rg+location': prefix + '/resourceGroups/rgA'}[scope] + '/providers/Microsoft.Security'
    path += ('/locations/' + LOC if 'location' in scope else '') + '/jitNetworkAccessPolicies'
    resp, ids = env.call('GET', path), []
    while True:
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert len(body['value']) == 1
        ids += [p['id'] for p in body['value']]
        if 'nextLink' not in body:
            break
        resp = env.call('GET', None, url=body['nextLink'])
    assert len(ids) == len(set(ids)) == expected
    if 'rg' in scope:
        assert all('/resourceGroups/rgA/' in i for i in ids)
    if 'location' in scope:
        assert all('/locations/{}/'.format(LOC) in i for i in ids)


def test_activity_log_records_writes_and_initiates_with_the_caller(env):
    vm = env.vm('vm1')
    assert env.put_policy([_port_rule(vm)]).status_code == 200
    assert env.initiate(vm['id'], [22]).status_code == 202
    assert env.initiate(vm['id'], [3389]).status_code == 400
    events = [(e['operationName']['value'], e['status']['value'], e['caller'], e['resourceId'])
              for e in env.world.activity_log if e['caller'] == env.admin.caller and e['status']['value'] != 'Started']
    assert events == [(security.JIT_WRITE, 'Succeeded', env.admin.caller, env.pid()),
                      (security.JIT_INITIATE, 'Succeeded', env.admin.caller, env.pid()),
                      (security.JIT_INITIATE, 'Failed', env.admin.caller, env.pid())]


def test_unsupported_api_version_is_refused(env):
    resp = env.call('GET', '/subscriptions/{}/providers/Microsoft.Security/jitNetworkAccessPolicies'.format(env.sub),
                    api='2019-01-01')
    assert resp.status_code == 400 and resp.json()['error']['code'] == 'NoRegisteredProviderFound'


def test_seeded_policy_is_shaped_like_the_recordings(env):
    vm = env.vm('vm1')
    end = (env.world.clock.now() + dt.timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%S.%fZ')
    security.add_policy(env.world, RG, LOC, [security.jit_vm(vm['id'])], requests=[
        {'virtualMachines': [{'id': vm['id'], 'ports': [{'number': 22, 'allowedSourceAddressPrefix': '127.0.0.1',
                                                         'endTimeUtc': end}]}]}])
    rules = env.world.get(vm['nsg_id'])['properties']['securityRules']
    assert len([r for r in rules if DENY_NAME.match(r['name'])]) == 1
    assert len([r for r in rules if ALLOW_NAME.match(r['name'])]) == 1
    raw = env.world.get(env.pid())
    assert raw['properties']['provisioningState'] == 'Updating'
    assert raw['properties']['requests'][0]['virtualMachines'][0]['ports'][0]['status'] == 'Initiating'
    assert raw['properties']['requests'][0]['requestor'] == ''
    assert env.get_policy()['properties']['requests'][0]['virtualMachines'][0]['ports'][0]['status'] == 'Initiated'


# -- Defender writes its NSG rules after answering -------------------------------------------------------
def test_initiate_answers_initiating_before_defender_writes_the_allow_rule(env):
    vm = env.vm('vm1')
    assert env.put_policy([_port_rule(vm)]).status_code == 200
    resp = env.initiate(vm['id'], [22], source='198.51.100.7')
    assert resp.status_code == 202
    assert resp.json()['virtualMachines'][0]['ports'][0]['status'] == 'Initiating'
    assert env.get_policy()['properties']['requests']   # a client reads the policy, then the NSG: no rule yet
    assert _allow(env.rules(vm['nsg_id'], settled=False)) == {}
    (allow,) = _allow(env.rules(vm['nsg_id'], settled=False)).values()   # the next look finds it
    assert allow['properties']['sourceAddressPrefix'] == '198.51.100.7'


def test_defender_writes_the_allow_rule_only_after_its_delay(env):
    vm = env.vm('vm1')
    security.state(env.world).update(allow_looks=0, allow_delay=dt.timedelta(minutes=1))
    assert env.put_policy([_port_rule(vm)]).status_code == 200
    assert env.initiate(vm['id'], [22], source='198.51.100.7').status_code == 202
    for _ in range(5):
        assert _allow(env.rules(vm['nsg_id'], settled=False)) == {}
    env.world.clock.advance(minutes=2)
    assert len(_allow(env.rules(vm['nsg_id'], settled=False))) == 1


def test_an_allow_rule_defender_writes_late_is_not_written_once_the_request_is_superseded_or_over(env):
    vm = env.vm('vm1')
    security.state(env.world).update(allow_looks=0, allow_delay=dt.timedelta(minutes=1))
    assert env.put_policy([_port_rule(vm)]).status_code == 200
    assert env.initiate(vm['id'], [22], source='198.51.100.7', minutes=30).status_code == 202
    assert env.initiate(vm['id'], [22], source='198.51.100.8', minutes=30).status_code == 202
    env.world.clock.advance(minutes=2)
    assert [r['properties']['sourceAddressPrefix'] for r in _allow(env.rules(vm['nsg_id'], False)).values()] == [
        '198.51.100.8']
    env.world.clock.advance(minutes=30)
    assert _allow(env.rules(vm['nsg_id'], settled=False)) == {}


def test_a_deny_rule_can_come_after_the_put_and_defender_may_renumber_rules(env):
    vm = env.vm('vm1', rules=[{'name': name, 'properties': {
        'priority': priority, 'direction': 'Inbound', 'access': 'Allow', 'protocol': 'Tcp', 'sourcePortRange': '*',
        'destinationPortRange': '443', 'sourceAddressPrefix': '*', 'destinationAddressPrefix': '*'}}
        for name, priority in (('Web1', 1000), ('Web2', 1001), ('Web9', 1009))])
    security.state(env.world).update(deny_looks=2, renumber_deny_at=1000)
    assert env.put_policy([_port_rule(vm)]).status_code == 200
    assert _deny(env.rules(vm['nsg_id'], settled=False)) == {}
    rules = env.rules(vm['nsg_id'], settled=False)
    (deny,) = _deny(rules).values()
    assert deny['properties']['priority'] == 1000
    assert {n: rules[n]['properties']['priority'] for n in ('Web1', 'Web2', 'Web9')} == {
        'Web1': 1001, 'Web2': 1002, 'Web9': 1009}


def test_a_put_without_a_vm_drops_its_requests_but_its_open_allow_rule_still_expires(env):
    vm1, vm2 = env.vm('vm1'), env.vm('vm2')
    assert env.put_policy([_port_rule(vm1), _port_rule(vm2)]).status_code == 200
    assert env.initiate(vm1['id'], [22], source='198.51.100.7', minutes=30).status_code == 202
    assert env.initiate(vm2['id'], [22], source='198.51.100.8', minutes=30).status_code == 202
    assert len(_allow(env.rules(vm2['nsg_id']))) == 1
    requests_before = env.get_policy()['properties']['requests']
    resp = env.call('PUT', env.pid(), {'kind': 'Basic', 'properties': {
        'virtualMachines': [_port_rule(vm1)], 'requests': requests_before}})   # what disable used to send
    assert resp.status_code == 200, resp.text
    for answer in (resp.json(), env.get_policy()):
        named = {vm['id'].lower() for r in answer['properties']['requests'] for vm in r['virtualMachines']}
        assert named == {vm1['id'].lower()}
    assert len(_allow(env.rules(vm2['nsg_id']))) == 1, 'the open rule stays until its end time'
    env.world.clock.advance(minutes=31)
    assert _allow(env.rules(vm2['nsg_id'])) == {}
