# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Defender mode end to end: the real `az vm jit` against the stand-in's Defender for Cloud.

The subscription has Defender for Servers Plan 2 (the stand-in's default), so `enable` writes a
`jitNetworkAccessPolicies` resource, `request` goes through its `initiate` action, and the NSG rules are
Defender's own (`SecurityCenter-JITRule_...` deny, `SecurityCenter-JITRule-...` allow). Every check reads
Azure's state from the stand-in (its resources, Defender's bookkeeping, the ARM request log), never from the
extension.
"""
import copy
import datetime as dt
import json
import re
import uuid

import pytest
import yaml

from tests.harness import (ADMIN_IP, LOCATION, ArmLog, defender_rules, entry_texts, jit, ok, page_size, policy_id,
                           request_body, shared_setup, stored_policy, vm_tags)
from tests.standin import security

DENY_NAME = re.compile(r'^SecurityCenter-JITRule_-?\d+_[0-9A-F]{32}$')
ALLOW_NAME = re.compile(r'^SecurityCenter-JITRule--?\d+-[0-9A-F]{32}$')
OPEN_SSH = {'name': 'AllowSSHFromAnywhere', 'properties': {
    'priority': 300, 'direction': 'Inbound', 'access': 'Allow', 'protocol': 'Tcp', 'sourcePortRange': '*',
    'destinationPortRange': '22', 'sourceAddressPrefix': '*', 'destinationAddressPrefix': '*',
    'description': 'Left open by the team that built the VM'}}
NARROW_SSH = {'name': 'AllowSSHFromOffice', 'properties': {
    'priority': 200, 'direction': 'Inbound', 'access': 'Allow', 'protocol': 'Tcp', 'sourcePortRange': '*',
    'destinationPortRange': '22', 'sourceAddressPrefix': '203.0.113.0/24', 'destinationAddressPrefix': '*',
    'description': 'Office network'}}
OPEN_HTTPS = {'name': 'AllowHttpsFromAnywhere', 'properties': {
    'priority': 310, 'direction': 'Inbound', 'access': 'Allow', 'protocol': 'Tcp', 'sourcePortRange': '*',
    'destinationPortRange': '443', 'sourceAddressPrefix': '*', 'destinationAddressPrefix': '*'}}


# -- reading Azure's state from the stand-in --------------------------------------------------------------
def policy_state(standin, rg, name='default'):
    """The stored policy with what Defender changes on its own left out: it is caught up with Defender's
    schedule first (a new request's `Initiating` reads back as `Initiated`), and `provisioningState` (which
    settles from `Updating` to `Succeeded` as it is read) is dropped."""
    security.expire(standin.world)
    policy = stored_policy(standin, rg, name)
    if policy is not None:
        policy['properties'].pop('provisioningState', None)
    return policy


def nsg_state(standin, nsg_id):
    """An NSG's own rules, exactly as stored (etags included: any write changes them)."""
    return copy.deepcopy(standin.nsg_rules(nsg_id))


def rule_ports(rule):
    props = rule['properties']
    return set(props.get('destinationPortRanges') or [props.get('destinationPortRange')])


def parse_time(text):
    text = re.sub(r'(\.\d{6})\d+', r'\1', text.replace('Z', '+00:00'))
    return dt.datetime.fromisoformat(text)


def policies_in(standin, rg):
    return sorted(standin.world.of_type(security.JIT_TYPE, standin.sub, rg), key=lambda p: p['name'])


# -- the whole cycle -----------------------------------------------------------------------------------------
def test_enable_request_list_revoke_cycle(az, standin, rg):
    vm = standin.vm(rg, 'MyVM')

    enabled = ok(az, 'enable', '--resource-group', rg, '--vm', 'MyVM', '--ports', '3389', '22')
    assert enabled['mode'] == 'defender'
    policy = stored_policy(standin, rg)
    assert policy is not None, 'enable wrote no jitNetworkAccessPolicies/default in ' + rg
    [entry] = policy['properties']['virtualMachines']
    assert entry['id'].lower() == vm['id'].lower()
    assert sorted(p['number'] for p in entry['ports']) == [22, 3389]
    for port in entry['ports']:
        assert port['protocol'] == 'TCP'
        assert port['maxRequestAccessDuration'] == 'PT3H'                  # the documented default
        assert port.get('allowedSourceAddressPrefix') == '*'
    [deny] = defender_rules(standin, vm)
    assert DENY_NAME.match(deny['name']), deny['name']
    assert deny['properties']['access'] == 'Deny'
    assert deny['properties']['sourceAddressPrefix'] == '*'
    assert deny['properties']['destinationAddressPrefix'] == vm['private_ip']
    assert rule_ports(deny) == {'22', '3389'}

    request = jit(az, 'request', '--resource-group', rg, '--vm', 'MyVM', '--ports', '3389', '--duration', '60')
    assert request.code == 0, request
    answer = request.json
    assert answer['status'] == 'active' and answer['mode'] == 'defender'
    assert [p['port'] for p in answer['ports']] == [3389]
    assert answer['ports'][0]['source'] == ADMIN_IP
    assert answer['connect'][0]['address'] == '{}:3389'.format(vm['public_ip'])
    [stored] = stored_policy(standin, rg)['properties']['requests']
    [stored_port] = stored['virtualMachines'][0]['ports']
    assert stored_port['number'] == 3389
    assert stored_port['allowedSourceAddressPrefix'] == ADMIN_IP
    lasts = parse_time(stored_port['endTimeUtc']) - parse_time(stored['startTimeUtc'])
    assert abs(lasts - dt.timedelta(minutes=60)).total_seconds() < 10, lasts
    [allow] = defender_rules(standin, vm, 'Allow')
    assert ALLOW_NAME.match(allow['name']), allow['name']
    assert allow['properties']['sourceAddressPrefix'] == ADMIN_IP
    assert allow['properties']['destinationAddressPrefix'] == vm['private_ip']
    assert rule_ports(allow) == {'3389'}
    assert allow['properties']['priority'] < deny['properties']['priority']

    listed = ok(az, 'list', '--resource-group', rg)
    assert [v['vm'] for v in listed] == ['MyVM']
    assert listed[0]['mode'] == 'defender'
    [open_request] = listed[0]['requests']
    assert open_request['status'] == 'active'
    assert open_request['id'] == answer['id']
    assert [(p['port'], p['source'], p['status']) for p in open_request['ports']] == [(3389, ADMIN_IP, 'active')]

    revoked = ok(az, 'revoke', '--resource-group', rg, '--vm', 'MyVM')
    assert revoked['revoked'] == [answer['id']]
    assert defender_rules(standin, vm, 'Allow') == [], 'the JIT allow rule is still in the NSG after revoke'
    assert defender_rules(standin, vm, 'Deny') == [deny], 'revoke must leave the deny rule alone'

    [after] = ok(az, 'list', '--resource-group', rg)[0]['requests']
    assert after['id'] == answer['id']
    assert after['status'] == 'revoked'
    assert [p['status'] for p in after['ports']] == ['revoked']
    # Revoking again is not an error: there is nothing left to close.
    again = jit(az, 'revoke', '--resource-group', rg, '--vm', 'MyVM')
    assert again.code == 0, again
    assert again.json['revoked'] == []


# -- a policy holding several VMs --------------------------------------------------------------------
def test_other_vms_entries_survive_enable_change_and_disable(az, standin, rg):
    world = standin.world
    vm1, vm2, vm3, vm4 = (standin.vm(rg, name) for name in ('app1', 'app2', 'app3', 'app4'))
    seeded = [
        security.jit_vm(vm1['id'], ports=(22,), protocol='TCP', source='*', max_duration='PT3H'),
        dict(security.jit_vm(vm2['id'], ports=(3389, 5985), protocol='*', source=['203.0.113.0/24', ADMIN_IP],
                             max_duration='PT1H'), publicIpAddress=vm2['public_ip']),
        security.jit_vm(vm3['id'], ports=(53,), protocol='UDP', source='198.51.100.20', max_duration='P1D'),
    ]
    live = {'virtualMachines': [{'id': vm1['id'], 'ports': [{
        'number': 22, 'allowedSourceAddressPrefix': ADMIN_IP,
        'endTimeUtc': security._ticks(world.clock.now() + dt.timedelta(hours=1))}]}]}  # pylint: disable=W0212
    security.add_policy(world, rg, LOCATION, seeded, requests=[live])
    before = entry_texts(stored_policy(standin, rg))
    deny1 = copy.deepcopy(defender_rules(standin, vm1, 'Deny'))
    assert len(deny1) == 1

    # A 4th VM joins: the three others are written back exactly as they were.
    ok(az, 'enable', '-g', rg, '-n', 'app4', '--ports', '22', '--yes')
    after_add = entry_texts(stored_policy(standin, rg))
    assert set(after_add) == set(before) | {vm4['id'].lower()}
    for vm_id, text in before.items():
        assert after_add[vm_id] == text, 'enable of app4 changed the entry of ' + vm_id
    assert defender_rules(standin, vm1, 'Deny') == deny1
    assert len(defender_rules(standin, vm4, 'Deny')) == 1

    # One VM changes its maximum: only its entry changes.
    ok(az, 'enable', '-g', rg, '-n', 'app1', '--ports', '22', '--max-duration', '1h', '--yes')
    after_change = entry_texts(stored_policy(standin, rg))
    changed = json.loads(after_change[vm1['id'].lower()])
    assert [p['maxRequestAccessDuration'] for p in changed['ports']] == ['PT1H']
    for vm_id, text in after_add.items():
        if vm_id != vm1['id'].lower():
            assert after_change[vm_id] == text, 'changing app1 changed the entry of ' + vm_id

    # One VM leaves: the others stay byte-identical, and its deny rule goes.
    ok(az, 'disable', '-g', rg, '-n', 'app3', '--yes')
    after_disable = entry_texts(stored_policy(standin, rg))
    assert vm3['id'].lower() not in after_disable
    assert after_disable == {k: v for k, v in after_change.items() if k != vm3['id'].lower()}
    assert defender_rules(standin, vm3) == [], "app3's Defender deny rule is still in its NSG after disable"

    # The last VM out deletes the policy.
    for name in ('app1', 'app2'):
        ok(az, 'disable', '-g', rg, '-n', name, '--yes')
        assert stored_policy(standin, rg) is not None, 'the policy went while app4 was still in it'
    ok(az, 'disable', '-g', rg, '-n', 'app4', '--yes')
    assert stored_policy(standin, rg) is None, 'disabling the last VM left an empty policy behind'
    for vm in (vm1, vm2, vm3, vm4):
        assert defender_rules(standin, vm, 'Deny') == []
    listed = ok(az, 'list', '-g', rg)
    assert listed == []


@pytest.mark.parametrize('name', ['Default', 'corp-jit'])
def test_enable_joins_the_existing_policy_of_any_name(az, standin, rg, name):
    world = standin.world
    other, ours = standin.vm(rg, 'other'), standin.vm(rg, 'ours')
    security.add_policy(world, rg, LOCATION, [security.jit_vm(other['id'], ports=(3389,))], name=name)
    [before] = policies_in(standin, rg)

    enabled = ok(az, 'enable', '-g', rg, '-n', 'ours', '--ports', '22', '--yes')
    [after] = policies_in(standin, rg)       # no `default` created beside it
    assert after['name'] == name
    stored = entry_texts(after)
    assert set(stored) == {other['id'].lower(), ours['id'].lower()}
    assert stored[other['id'].lower()] == entry_texts(before)[other['id'].lower()]
    targets = {c['target'] for c in enabled['changes'] if c['kind'] == 'policy'}
    assert targets and all(t.endswith('/jitNetworkAccessPolicies/' + name) for t in targets), targets
    assert ok(az, 'show', '-g', rg, '-n', 'ours')['mode'] == 'defender'

    # Requests go through that policy, and disable takes ours out of it again, leaving the other VM.
    answer = ok(az, 'request', '-g', rg, '-n', 'ours', '--ports', '22', '--duration', '15')
    assert answer['status'] == 'active'
    ok(az, 'disable', '-g', rg, '-n', 'ours', '--yes')
    [left] = policies_in(standin, rg)
    assert left['name'] == name and set(entry_texts(left)) == {other['id'].lower()}
    assert defender_rules(standin, ours) == []


# -- enable is idempotent --------------------------------------------------------------------------
def test_enable_twice_changes_nothing(az, standin, rg):
    vm = standin.vm(rg, 'web')
    log = ArmLog(standin.world)
    first = ok(az, 'enable', '-g', rg, '-n', 'web', '--ports', '22', '3389', '--max-duration', '2h')
    # The VM's entry, and the tag that lets later commands notice should another writer drop that entry.
    assert [(c['action'], c['kind']) for c in first['changes']] == [('create', 'policy'), ('update', 'tags')]
    assert len([r for r in log.writes() if r.method == 'PUT']) == 1
    policy = policy_state(standin, rg)
    nsg = nsg_state(standin, vm['nsg_id'])
    tags = vm_tags(standin, vm)

    log.mark()
    second = ok(az, 'enable', '-g', rg, '-n', 'web', '--ports', '22', '3389', '--max-duration', '2h')
    assert second['changes'] == []
    assert log.writes() == [], 'the second enable wrote: {}'.format(log.summary())
    assert json.dumps(policy_state(standin, rg), sort_keys=True) == json.dumps(policy, sort_keys=True)
    assert nsg_state(standin, vm['nsg_id']) == nsg
    assert vm_tags(standin, vm) == tags

    # The same settings spelled differently (other order, ISO duration, explicit protocol) are the same policy.
    log.mark()
    third = ok(az, 'enable', '-g', rg, '-n', 'web', '--ports', '3389/tcp', '22', '--max-duration', 'PT2H')
    assert third['changes'] == []
    assert log.writes() == [], 'enable with equivalent settings wrote: {}'.format(log.summary())


# -- a policy shaped like the real recordings, across pages ------------------------------------------
def test_recorded_shapes_across_pages_list_and_show(az, standin, rg):
    world = standin.world
    now = world.clock.now()
    ticks = security._ticks  # pylint: disable=protected-access
    vms = {name: standin.vm(rg, name) for name in ('rec1', 'rec2', 'rec3')}

    def request(vm, end, source, **port):
        """A request as Defender stores it, started an hour before its end (Azure gives requests no id: the
        extension tells them apart by VM and start time)."""
        return {'virtualMachines': [{'id': vm['id'], 'ports': [dict(
            number=22, allowedSourceAddressPrefix=source, endTimeUtc=ticks(end), **port)]}],
            'startTimeUtc': ticks(min(end - dt.timedelta(hours=1), now)), 'requestor': ''}

    # Three policies in one resource group and region (three pages at one policy per page), each shaped as
    # the recordings show them: provisioningState Updating, requestor "", ports Initiating/Initiated.
    security.state(world)['settle_initiating'] = False    # Defender may keep answering Initiating on reads
    try:
        security.add_policy(world, rg, LOCATION, [security.jit_vm(vms['rec1']['id'], ports=(22,))], name='default',
                            requests=[request(vms['rec1'], now + dt.timedelta(hours=1), '203.0.113.1')])
        security.add_policy(world, rg, LOCATION, [security.jit_vm(vms['rec2']['id'], ports=(22,))], name='jit-b',
                            requests=[request(vms['rec2'], now + dt.timedelta(hours=2), '203.0.113.2',
                                              status='Initiated')])
        security.add_policy(world, rg, LOCATION, [security.jit_vm(vms['rec3']['id'], ports=(22,))], name='jit-c',
                            requests=[request(vms['rec3'], now - dt.timedelta(hours=1), '203.0.113.3',
                                              status='Revoked', statusReason='Expired'),
                                      request(vms['rec3'], now - dt.timedelta(minutes=30), '203.0.113.4',
                                              status='Revoked', statusReason='NewerRequestInitiated'),
                                      request(vms['rec3'], now + dt.timedelta(minutes=50), '203.0.113.5',
                                              status='Initiating')])
        log = ArmLog(world)
        with page_size(world, 1):
            result = jit(az, 'list', '-g', rg)
            pages = [r for r in log.calls if 'jitNetworkAccessPolicies' in r.path]
            shown = {name: jit(az, 'show', '-g', rg, '-n', name) for name in vms}
            everywhere = jit(az, 'list', '--query', "[?resourceGroup=='{}']".format(rg))
    finally:
        security.state(world)['settle_initiating'] = True
    assert result.code == 0, result
    # One call per page of policies: three policies at one per page are three pages, followed by nextLink.
    assert len(pages) == 3 and sum('$skiptoken' in r.query for r in pages) == 2, [
        '{} {}'.format(r.path, r.query) for r in pages]
    assert everywhere.code == 0, everywhere
    assert sorted(v['vm'] for v in everywhere.json) == sorted(vms), 'the subscription-wide list lost VMs'

    by_vm = {v['vm']: v for v in result.json}
    assert set(by_vm) == set(vms), 'list lost VMs across pages: {}'.format(sorted(by_vm))
    assert all(v['mode'] == 'defender' for v in by_vm.values())

    def statuses(view):
        return [(r['ports'][0]['source'], r['status']) for r in view['requests']]

    assert statuses(by_vm['rec1']) == [('203.0.113.1', 'active')]       # Initiating
    assert statuses(by_vm['rec2']) == [('203.0.113.2', 'active')]       # Initiated
    assert sorted(statuses(by_vm['rec3'])) == [('203.0.113.3', 'expired'), ('203.0.113.4', 'revoked'),
                                               ('203.0.113.5', 'active')]
    assert by_vm['rec1']['requests'][0]['requestor'] is None           # "" is no requestor, not a name
    for view in everywhere.json:
        assert statuses(view) == statuses(by_vm[view['vm']]), view['vm']
    for name, view in by_vm.items():
        assert shown[name].code == 0, shown[name]
        assert statuses(shown[name].json) == statuses(view), name
        assert shown[name].json['enabled'] is True
    active_only = ok(az, 'list', '-g', rg, '--status', 'active')
    assert sorted((v['vm'], r['ports'][0]['source']) for v in active_only for r in v['requests']) == [
        ('rec1', '203.0.113.1'), ('rec2', '203.0.113.2'), ('rec3', '203.0.113.5')]
    expired_only = ok(az, 'list', '-g', rg, '--status', 'expired')
    assert [(v['vm'], r['ports'][0]['source']) for v in expired_only for r in v['requests']] == [
        ('rec3', '203.0.113.3')]


# -- requests refused before anything is written -----------------------------------------------------
def _guard(az, standin, rg):
    """A VM whose policy allows 22 and 3389 for at most 2 hours, from 203.0.113.0/24 or the admin's IP."""
    vm = standin.vm(rg, 'guarded')
    ok(az, 'enable', '-g', rg, '-n', 'guarded', '--ports', '22', '3389', '--max-duration', '2h',
       '--allowed-sources', '203.0.113.0/24', ADMIN_IP)
    return vm


@pytest.fixture
def guarded_vm(az, standin, rg):
    return _guard(az, standin, rg)


@pytest.fixture(name='refusing', scope='module')
def fixture_refusing(az_env, standin):
    """(resource group, VM) of one guarded VM shared by the tests of requests that must be refused: each of them
    checks that it wrote nothing, so none of them can change what the next one sees."""
    rg = 'rg-refuse-' + uuid.uuid4().hex[:8]
    standin.resource_group(rg)
    with shared_setup(standin, az_env):
        return rg, _guard(az_env.login('admin'), standin, rg)


@pytest.mark.parametrize('args, rule', [
    (['--ports', '8080'], 'Port 8080 is not in the JIT policy'),
    (['--ports', '22', '--duration', '3h'], 'Duration 3h exceeds the maximum of 2h'),
    (['--ports', '22', '--source', '192.0.2.5'], 'outside the allowed sources'),
    (['--ports', '22', '--source', '203.0.113.7'], 'accepts only one of the allowed prefixes exactly'),
], ids=['port-not-in-policy', 'duration-above-maximum', 'source-outside', 'source-inside-cidr-not-equal'])
def test_request_refused_before_anything_is_written(az, standin, refusing, args, rule):
    rg, guarded_vm = refusing
    policy = policy_state(standin, rg)
    nsg = nsg_state(standin, guarded_vm['nsg_id'])
    log = ArmLog(standin.world)
    result = jit(az, 'request', '-g', rg, '-n', 'guarded', *args)
    assert result.code == 2, result
    assert rule in result.stderr, result
    assert log.initiates() == [], 'a refused request still called initiate'
    assert log.writes() == [], log.summary()
    assert policy_state(standin, rg) == policy
    assert nsg_state(standin, guarded_vm['nsg_id']) == nsg


@pytest.mark.parametrize('args', [['--ports', '70000'], ['--ports', '0'], ['--ports', '22', '--duration', 'soon'],
                                  ['--ports', '22', '--source', 'not-an-ip']],
                         ids=['port-70000', 'port-0', 'duration-garbage', 'source-garbage'])
def test_request_bad_arguments_exit_2(az, standin, refusing, args):
    rg, _ = refusing
    log = ArmLog(standin.world)
    result = jit(az, 'request', '-g', rg, '-n', 'guarded', *args)
    assert result.code == 2, result
    assert log.writes() == []


@pytest.mark.parametrize('ports', [['70000'], ['0'], ['0', '22'], ['0/udp']])
def test_enable_bad_port_exits_2(az, standin, rg, ports):
    vm = standin.vm(rg, 'badport')
    log = ArmLog(standin.world)
    result = jit(az, 'enable', '-g', rg, '-n', 'badport', '--ports', *ports)
    assert result.code == 2, result
    assert "Invalid port '{}'".format(ports[0]) in result.stderr and 'Traceback' not in result.stderr
    assert log.writes() == [] and stored_policy(standin, rg) is None
    assert defender_rules(standin, vm) == []


def test_request_duration_formats(az, standin, rg, guarded_vm):
    world = standin.world
    for text, minutes in (('60', 60), ('90m', 90), ('2h', 120), ('PT2H', 120)):
        answer = ok(az, 'request', '-g', rg, '-n', 'guarded', '--ports', '22', '--duration', text,
                    '--source', '203.0.113.0/24')
        assert answer['status'] == 'active', text
        stored = stored_policy(standin, rg)['properties']['requests'][-1]
        [port] = stored['virtualMachines'][0]['ports']
        lasts = parse_time(port['endTimeUtc']) - parse_time(stored['startTimeUtc'])
        assert abs(lasts - dt.timedelta(minutes=minutes)).total_seconds() < 10, (text, lasts)
        shown = parse_time(answer['endTime']) - parse_time(answer['startTime'])
        assert abs(shown - dt.timedelta(minutes=minutes)).total_seconds() < 10, (text, shown)
    # The exact allowed source was accepted, and the newest request superseded the older ones.
    [allow] = defender_rules(standin, guarded_vm, 'Allow')
    assert allow['properties']['sourceAddressPrefix'] == '203.0.113.0/24'
    assert world.get(policy_id(standin, rg)) is not None


def test_request_defaults_and_revoke_of_some_ports(az, standin, rg):
    """No --ports/--duration: every port of the policy for its maximum; `revoke --ports` closes only those."""
    vm = standin.vm(rg, 'multi')
    ok(az, 'enable', '-g', rg, '-n', 'multi', '--ports', '22', '3389', '--max-duration', '90m')
    answer = ok(az, 'request', '-g', rg, '-n', 'multi', '--justification', 'patching KB5031')
    assert sorted(p['port'] for p in answer['ports']) == [22, 3389]
    stored = stored_policy(standin, rg)['properties']['requests'][-1]
    assert stored['justification'] == 'patching KB5031'
    for port in stored['virtualMachines'][0]['ports']:
        lasts = parse_time(port['endTimeUtc']) - parse_time(stored['startTimeUtc'])
        assert abs(lasts - dt.timedelta(minutes=90)).total_seconds() < 10, lasts
    assert sorted(rule_ports(r).pop() for r in defender_rules(standin, vm, 'Allow')) == ['22', '3389']

    ok(az, 'revoke', '-g', rg, '-n', 'multi', '--ports', '22')
    assert [rule_ports(r) for r in defender_rules(standin, vm, 'Allow')] == [{'3389'}]
    [request] = ok(az, 'show', '-g', rg, '-n', 'multi')['requests']
    assert {p['port']: p['status'] for p in request['ports']} == {22: 'revoked', 3389: 'active'}
    assert request['status'] == 'active'
    assert request['justification'] == 'patching KB5031'


# -- --dry-run writes nothing -----------------------------------------------------------------------
def test_dry_run_enable_request_revoke_disable(az, standin, rg):
    world = standin.world
    vm = standin.vm(rg, 'dry', rules=[OPEN_SSH])

    def snapshot():
        return policy_state(standin, rg), nsg_state(standin, vm['nsg_id']), vm_tags(standin, vm)

    def unchanged(before, log, what):
        assert log.writes() == [], '{} --dry-run wrote: {}'.format(what, log.summary())
        assert snapshot() == before, what + ' --dry-run changed Azure'

    before, log = snapshot(), ArmLog(world)
    planned = ok(az, 'enable', '-g', rg, '-n', 'dry', '--ports', '22', '3389', '--dry-run')
    unchanged(before, log, 'enable')
    assert planned['dryRun'] is True
    actions = {(c['action'], c['kind']): c for c in planned['changes']}
    entry = actions[('create', 'policy')]['vmEntry']
    assert entry['id'].lower() == vm['id'].lower()
    assert sorted(p['number'] for p in entry['ports']) == [22, 3389]
    removal = actions[('delete', 'rule')]
    assert (removal['name'], removal['priority'], removal['source'], removal['ports'], removal['access']) == (
        'AllowSSHFromAnywhere', 300, '*', '22', 'Allow')

    ok(az, 'enable', '-g', rg, '-n', 'dry', '--ports', '22', '3389', '--yes')
    before, log = snapshot(), ArmLog(world)
    planned = ok(az, 'request', '-g', rg, '-n', 'dry', '--ports', '22', '--duration', '30', '--dry-run')
    unchanged(before, log, 'request')
    assert planned['status'] == 'planned' and planned['dryRun'] is True
    [initiate] = planned['changes']
    assert initiate['action'] == 'initiate' and initiate['ports'] == '22'
    assert initiate['target'].lower() == policy_id(standin, rg).lower()

    request = ok(az, 'request', '-g', rg, '-n', 'dry', '--ports', '22', '--duration', '30')
    [allow] = defender_rules(standin, vm, 'Allow')
    before, log = snapshot(), ArmLog(world)
    planned = ok(az, 'revoke', '-g', rg, '-n', 'dry', '--dry-run')
    unchanged(before, log, 'revoke')
    assert planned['dryRun'] is True and planned['revoked'] == [request['id']]
    deletes = [c for c in planned['changes'] if c['action'] == 'delete' and c['kind'] == 'rule']
    assert [(c['name'], c['priority'], c['source'], c['ports'], c['access']) for c in deletes] == [
        (allow['name'], allow['properties']['priority'], ADMIN_IP, '22', 'Allow')]
    [still_open] = ok(az, 'show', '-g', rg, '-n', 'dry')['requests']
    assert still_open['status'] == 'active'

    before, log = snapshot(), ArmLog(world)
    planned = ok(az, 'disable', '-g', rg, '-n', 'dry', '--dry-run')
    unchanged(before, log, 'disable')
    assert planned['dryRun'] is True
    summary = [(c['action'], c['kind'], c.get('name')) for c in planned['changes']]
    assert ('delete', 'policy', None) in summary or any(a == 'delete' and k == 'policy' for a, k, _ in summary)
    assert ('delete', 'rule', allow['name']) in summary, summary          # the open request is closed first
    assert ('restore', 'rule', 'AllowSSHFromAnywhere') in summary, summary

    # And the real disable does what the dry run said: no JIT rule left open, the removed rule back.
    ok(az, 'disable', '-g', rg, '-n', 'dry', '--yes')
    assert stored_policy(standin, rg) is None
    assert defender_rules(standin, vm) == [], 'disable left a JIT rule behind (an open request must be closed)'
    assert [r['name'] for r in standin.nsg_rules(vm['nsg_id'])] == ['AllowSSHFromAnywhere']


# -- every output format of list ---------------------------------------------------------------------
def test_list_output_formats(az, standin, rg):
    vm = standin.vm(rg, 'fmt')
    ok(az, 'enable', '-g', rg, '-n', 'fmt', '--ports', '22', '3389')
    request = ok(az, 'request', '-g', rg, '-n', 'fmt', '--ports', '22', '--duration', '45')
    assert defender_rules(standin, vm, 'Allow'), 'Defender wrote no allow rule'   # a while later: it is there

    as_json = ok(az, 'list', '-g', rg)
    assert [(v['vm'], r['id'], r['status']) for v in as_json for r in v['requests']] == [
        ('fmt', request['id'], 'active')]

    jsonc = jit(az, 'list', '-g', rg, output='jsonc')
    assert jsonc.code == 0, jsonc
    assert json.loads(re.sub(r'\x1b\[[0-9;]*m', '', jsonc.stdout)) == as_json

    as_yaml = jit(az, 'list', '-g', rg, output='yaml')
    assert as_yaml.code == 0, as_yaml
    assert yaml.safe_load(as_yaml.stdout) == as_json

    tsv = jit(az, 'list', '-g', rg, output='tsv')
    assert tsv.code == 0, tsv
    lines = [line.split('\t') for line in tsv.stdout.splitlines() if line.strip()]
    assert lines and any('fmt' in fields and vm['id'] in fields for fields in lines), tsv.stdout

    table = jit(az, 'list', '-g', rg, output='table')
    assert table.code == 0, table
    header, rule, *rows = table.stdout.splitlines()
    for column in ('VM', 'Port', 'Source', 'Status', 'Requestor', 'Expires'):
        assert column in header.split(), header
    assert set(rule.replace(' ', '')) == {'-'}
    [row] = rows
    cells = row.split()
    assert cells[:4] == ['fmt', '22', ADMIN_IP, 'active'], row
    assert request['endTime'] in cells

    none = jit(az, 'list', '-g', rg, output='none')
    assert none.code == 0 and none.stdout == '', none

    queried = ok(az, 'list', '-g', rg, '--query', '[].requests[].{port: ports[0].port, status: status}')
    assert queried == [{'port': 22, 'status': 'active'}]
    names = jit(az, 'list', '-g', rg, '--query', '[].vm', output='tsv')
    assert names.code == 0 and names.stdout.split() == ['fmt'], names


# -- permissions, and VMs without JIT ------------------------------------------------------------------
def test_enable_without_permission_names_it_and_changes_nothing(az_as, standin, rg):
    vm = standin.vm(rg, 'locked')
    reader = az_as('reader')
    nsg = nsg_state(standin, vm['nsg_id'])
    tags = vm_tags(standin, vm)
    log = ArmLog(standin.world)
    result = reader.run('vm', 'jit', 'enable', '-g', rg, '-n', 'locked', '--ports', '22')
    assert result.code != 0, result
    assert 'Microsoft.Security/locations/jitNetworkAccessPolicies/write' in result.stderr, result
    assert stored_policy(standin, rg) is None
    assert nsg_state(standin, vm['nsg_id']) == nsg
    assert vm_tags(standin, vm) == tags
    assert all(r.status >= 400 for r in log.writes()), log.summary()


def test_request_on_vm_without_jit_suggests_enable(az, standin, rg):
    standin.vm(rg, 'plain')
    log = ArmLog(standin.world)
    result = jit(az, 'request', '-g', rg, '-n', 'plain', '--ports', '22')
    assert result.code != 0, result
    assert 'az vm jit enable -g {} -n plain'.format(rg) in result.stderr, result
    assert log.writes() == []


# -- rules that would defeat JIT -------------------------------------------------------------------
def test_conflicting_rules_removed_with_yes_and_restored_by_disable(az, standin, rg):
    vm = standin.vm(rg, 'legacy', rules=[OPEN_SSH, NARROW_SSH, OPEN_HTTPS])
    original = {r['name']: copy.deepcopy(r) for r in standin.nsg_rules(vm['nsg_id'])}
    others = {name: original[name] for name in ('AllowSSHFromOffice', 'AllowHttpsFromAnywhere')}

    def current():
        return {r['name']: copy.deepcopy(r) for r in standin.nsg_rules(vm['nsg_id'])}

    # No terminal to ask on and no --yes: refused, nothing changed.
    log = ArmLog(standin.world)
    refused = jit(az, 'enable', '-g', rg, '-n', 'legacy', '--ports', '22')
    assert refused.code != 0, refused
    assert 'AllowSSHFromAnywhere' in refused.stderr and '--yes' in refused.stderr, refused
    assert log.writes() == [], log.summary()
    assert current() == original
    assert stored_policy(standin, rg) is None

    enabled = jit(az, 'enable', '-g', rg, '-n', 'legacy', '--ports', '22', '--yes')
    assert enabled.code == 0, enabled
    now = current()
    assert 'AllowSSHFromAnywhere' not in now
    # The narrower rule at priority 200 is named in a warning and left alone.
    warnings = [line for line in enabled.stderr.splitlines() if 'AllowSSHFromOffice' in line]
    assert warnings and all(line.startswith('WARNING') for line in warnings), enabled.stderr
    assert '200' in warnings[0]
    assert 'AllowSSHFromOffice' in ' '.join(enabled.json['warnings'])
    for name, rule in others.items():
        assert now[name] == rule, name + ' changed on enable'
    assert len(defender_rules(standin, vm, 'Deny')) == 1

    disabled = jit(az, 'disable', '-g', rg, '-n', 'legacy', '--yes')
    assert disabled.code == 0, disabled
    after = current()
    assert set(after) == set(original), sorted(after)
    restored, was = after['AllowSSHFromAnywhere'], original['AllowSSHFromAnywhere']
    assert restored['name'] == was['name']
    assert restored['properties']['priority'] == 300
    # Byte-identical: name, id, type and every property; only the etag is new, as for any write.
    restored.pop('etag'), was.pop('etag')
    assert json.dumps(restored, sort_keys=True) == json.dumps(was, sort_keys=True)
    for name, rule in others.items():
        assert after[name] == rule, name + ' changed on disable'
    assert defender_rules(standin, vm) == []
    assert not any(k.startswith('azvmjit-') for k in vm_tags(standin, vm)), vm_tags(standin, vm)


# -- VMs JIT cannot protect, and VMs with several NICs ----------------------------------------------
@pytest.mark.parametrize('kind, says', [
    ({'nsg': None}, ('no network security group', 'Attach one')),
    ({'public_ip': False}, ('no public IP address', 'Azure Bastion')),
], ids=['no-nsg', 'no-public-ip'])
def test_enable_unprotectable_vm_fails_clearly(az, standin, rg, kind, says):
    standin.vm(rg, 'odd', **kind)
    log = ArmLog(standin.world)
    result = jit(az, 'enable', '-g', rg, '-n', 'odd', '--ports', '22')
    assert result.code == 1, result
    for text in says:
        assert text in result.stderr, result
    assert log.writes() == [] and stored_policy(standin, rg) is None


def test_vm_with_two_nics_is_protected_through_the_primary_nic(az, standin, rg):
    vm = standin.vm(rg, 'dual', nics=2)
    primary = standin.world.get(vm['nic_ids'][0])
    assert primary['properties']['networkSecurityGroup']['id'] == vm['nsg_id']
    ok(az, 'enable', '-g', rg, '-n', 'dual', '--ports', '22')
    [deny] = defender_rules(standin, vm, 'Deny')
    assert deny['properties']['destinationAddressPrefix'] == vm['private_ip']
    shown = ok(az, 'show', '-g', rg, '-n', 'dual')
    assert shown['network']['privateIp'] == vm['private_ip']
    assert shown['network']['nsg'].lower() == vm['nsg_id'].lower()
    answer = ok(az, 'request', '-g', rg, '-n', 'dual', '--ports', '22', '--duration', '15')
    assert answer['connect'][0]['address'] == '{}:22'.format(vm['public_ip'])
    [allow] = defender_rules(standin, vm, 'Allow')
    assert allow['properties']['destinationAddressPrefix'] == vm['private_ip']


# -- enable of a whole resource group, and who made a request ----------------------------------------------
def test_enable_group_skips_vm_whose_name_is_too_long_for_defender(az, standin, rg):
    long_name = 'x' * 50          # 'default' + 50 characters > 56
    standin.vm(rg, long_name)
    fine = standin.vm(rg, 'short')
    result = jit(az, 'enable', '-g', rg, '--ports', '22')
    assert result.code == 0, result
    policy = stored_policy(standin, rg)
    assert policy is not None and fine['id'].lower() in entry_texts(policy)
    assert long_name in result.stderr


def test_list_names_who_made_a_defender_request(az, standin, rg):
    standin.vm(rg, 'who')
    ok(az, 'enable', '-g', rg, '-n', 'who', '--ports', '22')
    answer = ok(az, 'request', '-g', rg, '-n', 'who', '--ports', '22', '--duration', '20')
    assert answer['requestor']
    [request] = ok(az, 'list', '-g', rg)[0]['requests']
    assert request['requestor'] == answer['requestor']


@pytest.mark.parametrize('days_ago', [10, 200])
def test_requestor_lookup_asks_for_security_events_since_the_oldest_unnamed_request(az, standin, rg, days_ago):
    world = standin.world
    vm = standin.vm(rg, 'who')
    now = world.clock.now()
    old = now - dt.timedelta(days=days_ago)
    security.add_policy(world, rg, LOCATION, [security.jit_vm(vm['id'], ports=(22,))], requests=[
        request_body(vm, old, old + dt.timedelta(hours=1), [(22, {'status': 'Revoked', 'statusReason': 'Expired'})],
                     source='203.0.113.1')])
    answer = ok(az, 'request', '-g', rg, '-n', 'who', '--ports', '22', '--duration', '20')
    log = ArmLog(world)
    shown = ok(az, 'show', '-g', rg, '-n', 'who')
    by_start = sorted(shown['requests'], key=lambda r: r['startTime'])
    assert [r['requestor'] for r in by_start] == [None, world.identities['admin'].caller]
    assert by_start[1]['id'] == answer['id']

    [query] = [r for r in log.calls if r.path.lower().endswith('/eventtypes/management/values')]
    text = query.query['$filter']
    # The Activity Log takes one scope per query: the policy's own events, the rest is sorted out client-side.
    assert "resourceUri eq '{}'".format(policy_id(standin, rg)) in text, text
    assert 'resourceProvider' not in text and 'resourceGroupName' not in text, text
    since = parse_time(re.search(r"eventTimestamp ge '([^']+)'", text).group(1))
    expected = max(old - dt.timedelta(minutes=5), now - dt.timedelta(days=89))
    assert abs((since - expected).total_seconds()) < 120, (since, expected)


# -- ARM calls per command -------------------------------------------------------------------------
def test_a_request_and_a_group_list_make_the_fewest_arm_calls(az, standin, rg):
    """A request is at most four ARM calls (VM, NIC, policy list, POST initiate), and a group's list reads the
    policies once (one policy: one page), not once per VM, even at one item per page. The numbers of every command
    are printed by the benchmark (`python -m tests.benchmarks.performance`), not asserted here."""
    world = standin.world
    for name in ('m1', 'm2', 'm3'):
        standin.vm(rg, name)
    ok(az, 'enable', '-g', rg, '--ports', '22')
    log = ArmLog(world)
    ok(az, 'request', '-g', rg, '-n', 'm1', '--ports', '22', '--duration', '30')
    request = log.summary()
    assert len(request) <= 4, request
    assert sum(1 for c in request if c.endswith('/initiate')) == 1
    log.mark()
    ok(az, 'list', '-g', rg)
    assert len([c for c in log.summary() if 'jitNetworkAccessPolicies' in c]) == 1, log.summary()   # not one per VM
    with page_size(world, 1):
        log.mark()
        ok(az, 'list', '-g', rg)
    assert len([c for c in log.summary() if 'jitNetworkAccessPolicies' in c]) == 1, log.summary()


def test_enabling_a_new_vm_writes_back_the_policy_read_just_before(az, standin, rg):
    """A new VM costs eight calls: its VM, NIC and NSG, the plan, the group's policies read once and last (the PUT
    writes back that very copy), the PUT, the read that checks no other writer's PUT replaced it, and the VM's
    Defender-mode tag."""
    other = standin.vm(rg, 'other')
    ok(az, 'enable', '-g', rg, '-n', 'other', '--ports', '3389')
    fresh = standin.vm(rg, 'fresh')
    log = ArmLog(standin.world)
    ok(az, 'enable', '-g', rg, '-n', 'fresh', '--ports', '22')
    calls = [re.sub(r'^(\w+) /subscriptions/[^/]+(/resourceGroups/[^/]+)?', r'\1 ', c).split('?')[0]
             for c in log.summary()]
    assert calls == [
        'GET /providers/Microsoft.Compute/virtualMachines/fresh',
        'GET /providers/Microsoft.Network/networkInterfaces/fresh-nic0',
        'GET /providers/Microsoft.Network/networkSecurityGroups/fresh-nsg',
        'GET /providers/Microsoft.Security/pricings/VirtualMachines',
        f'GET /providers/Microsoft.Security/locations/{LOCATION}/jitNetworkAccessPolicies',
        f'PUT /providers/Microsoft.Security/locations/{LOCATION}/jitNetworkAccessPolicies/default',
        f'GET /providers/Microsoft.Security/locations/{LOCATION}/jitNetworkAccessPolicies/default',
        'PATCH /providers/Microsoft.Compute/virtualMachines/fresh/providers/Microsoft.Resources/tags/default',
    ], calls
    assert set(entry_texts(stored_policy(standin, rg))) == {other['id'].lower(), fresh['id'].lower()}
