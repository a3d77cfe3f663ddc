# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""NSG mode end to end: the real `az vm jit` against the stand-in, with the extension editing the NSG.

Every test looks at what a user (or the admin of the NSG) would notice: the rules in the NSG, the VM's tags,
the output of `show`/`list`, the exit code and the error line, and which writes reached Azure.
"""
import datetime as dt
import json
import re
import uuid

import pytest

from tests.harness import (ALLOW_ANY_SSH, PRODUCT_RULE_PREFIX, ArmLog, enable, error_lines, jit_tags, product_rules,
                           rules, rules_by_name, shared_setup, source_of, vm_rules, writes_since)
from tests.standin import security

FALLBACK_WARNING = 'using NSG mode'


# -- helpers -------------------------------------------------------------------------------------------
def ports_of(rule):
    props = rule['properties']
    return sorted(int(p) for p in (props.get('destinationPortRanges') or [props.get('destinationPortRange')]))


def fallback_warnings(result):
    return [line for line in result.stderr.splitlines() if FALLBACK_WARNING in line]


def canonical(rule):
    return json.dumps(rule, sort_keys=True)


def request_status(listing, vm_name, request_id):
    vm = next(v for v in listing if v['vm'] == vm_name)
    return next(r['status'] for r in vm['requests'] if r['id'] == request_id)


def user_rule(name, priority, port, source, access='Allow', destination='*', protocol='Tcp', direction='Inbound',
              description=None):
    props = {'protocol': protocol, 'sourcePortRange': '*', 'destinationPortRange': str(port),
             'sourceAddressPrefix': source, 'destinationAddressPrefix': destination, 'access': access,
             'priority': priority, 'direction': direction}
    if description:
        props['description'] = description
    return {'name': name, 'properties': props}


# -- the whole cycle -------------------------------------------------------------------------------------
@pytest.mark.parametrize('attach', ['nic', 'subnet'])
def test_enable_request_list_revoke_disable_cycle(az, standin, rg, defender_off, attach):
    world = standin.world
    vm = standin.vm(rg, 'vm1', nsg=attach)
    nsg_id, private_ip = vm['nsg_id'], vm['private_ip']
    world.get(vm['id'])['tags'] = {'owner': 'alice'}

    result = az.run('vm', 'jit', 'enable', '-g', rg, '-n', 'vm1', '--yes')
    assert result.code == 0, result
    assert result.json['mode'] == 'nsg'
    assert len(fallback_warnings(result)) == 1, result.stderr
    denies = product_rules(standin, nsg_id)
    assert len(denies) == 1, denies
    deny = denies[0]['properties']
    assert (deny['access'], deny['direction'], deny['priority']) == ('Deny', 'Inbound', 1000)
    assert deny['destinationAddressPrefix'] == private_ip and deny['sourceAddressPrefix'] == '*'
    assert ports_of(denies[0]) == [22, 3389]
    assert jit_tags(standin, vm['id']), 'the NSG-mode policy must be stored in the VM tags'

    show = az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'vm1')
    assert show['network']['nsgAttachedTo'] == attach and show['network']['nsg'].lower() == nsg_id.lower()

    request = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--source', '198.51.100.77',
                    '--duration', '60')
    assert request['status'] == 'active' and request['mode'] == 'nsg'
    assert [p['port'] for p in request['ports']] == [22]
    end = dt.datetime.strptime(request['endTime'], '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=dt.timezone.utc)
    assert abs((end - (world.clock.now() + dt.timedelta(minutes=60))).total_seconds()) < 120, request['endTime']
    assert request['connect'][0]['address'] == '{}:22'.format(vm['public_ip'])
    allows = product_rules(standin, nsg_id, 'Allow')
    assert len(allows) == 1, allows
    allow = allows[0]['properties']
    assert (allow['priority'], allow['direction'], allow['protocol']) == (100, 'Inbound', 'Tcp')
    assert source_of(allows[0]) == '198.51.100.77' and allow['destinationAddressPrefix'] == private_ip
    assert ports_of(allows[0]) == [22]

    listing = az.ok('vm', 'jit', 'list', '-g', rg)
    assert [v['vm'] for v in listing] == ['vm1'] and listing[0]['mode'] == 'nsg'
    assert request_status(listing, 'vm1', request['id']) == 'active'

    revoked = az.ok('vm', 'jit', 'revoke', '-g', rg, '-n', 'vm1')
    assert revoked['revoked'] == [request['id']]
    assert product_rules(standin, nsg_id, 'Allow') == []
    assert [r['name'] for r in product_rules(standin, nsg_id)] == [denies[0]['name']], 'revoke keeps the deny rule'
    listing = az.ok('vm', 'jit', 'list', '-g', rg)
    assert request_status(listing, 'vm1', request['id']) == 'revoked'

    az.ok('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--yes')
    assert rules(standin, nsg_id) == [], 'disable must remove every rule the product created'
    assert world.get(vm['id'])['tags'] == {'owner': 'alice'}, 'disable must remove azvmjit-* tags and only them'
    show = az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'vm1')
    assert show['enabled'] is False


def test_revoke_some_ports_keeps_the_others_open(az, standin, rg, defender_off):
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    request = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '3389', '--source',
                    '198.51.100.2')
    assert sorted(ports_of(r)[0] for r in product_rules(standin, vm['nsg_id'], 'Allow')) == [22, 3389]

    az.ok('vm', 'jit', 'revoke', '-g', rg, '-n', 'vm1', '--ports', '22')
    assert [ports_of(r) for r in product_rules(standin, vm['nsg_id'], 'Allow')] == [[3389]]
    [listed] = az.ok('vm', 'jit', 'list', '-g', rg)[0]['requests']
    assert listed['id'] == request['id'] and listed['status'] == 'active'
    assert sorted((p['port'], p['status']) for p in listed['ports']) == [(22, 'revoked'), (3389, 'active')]

    az.ok('vm', 'jit', 'revoke', '-g', rg, '-n', 'vm1')
    assert product_rules(standin, vm['nsg_id'], 'Allow') == []
    [listed] = az.ok('vm', 'jit', 'list', '-g', rg)[0]['requests']
    assert listed['id'] == request['id'] and listed['status'] == 'revoked'
    assert sorted((p['port'], p['status']) for p in listed['ports']) == [(22, 'revoked'), (3389, 'revoked')]


# -- mode choice -----------------------------------------------------------------------------------------
def test_auto_mode_uses_nsg_without_the_plan_and_keeps_it_when_the_plan_returns(az, standin, rg, defender_off):
    world = standin.world
    vm = standin.vm(rg, 'vm1')
    result = az.run('vm', 'jit', 'enable', '-g', rg, '-n', 'vm1', '--yes')
    assert result.code == 0, result
    assert result.json['mode'] == 'nsg'
    assert len(fallback_warnings(result)) == 1, result.stderr
    assert az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'vm1')['mode'] == 'nsg'
    listing = az.ok('vm', 'jit', 'list', '-g', rg)
    assert [(v['vm'], v['mode']) for v in listing] == [('vm1', 'nsg')]

    security.set_defender_plan(world, True)
    show = az.run('vm', 'jit', 'show', '-g', rg, '-n', 'vm1')
    assert show.code == 0, show
    assert show.json['mode'] == 'nsg' and show.json['enabled'] is True
    assert 'modes' not in show.json, 'the VM must not look half-migrated'
    assert world.of_type(security.JIT_TYPE, resource_group=rg) == [], 'no Defender policy may appear'
    request = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--source', '198.51.100.5')
    assert request['mode'] == 'nsg'
    assert [source_of(r) for r in product_rules(standin, vm['nsg_id'], 'Allow')] == ['198.51.100.5']
    assert az.ok('vm', 'jit', 'list', '-g', rg)[0]['mode'] == 'nsg'


def test_explicit_nsg_mode_with_the_plan_on(az, standin, rg):
    world = standin.world
    vm = standin.vm(rg, 'vm1')
    result = az.run('vm', 'jit', 'enable', '-g', rg, '-n', 'vm1', '--mode', 'nsg', '--yes')
    assert result.code == 0, result
    assert result.json['mode'] == 'nsg'
    assert fallback_warnings(result) == [], 'nothing fell back: NSG mode was asked for'
    assert world.of_type(security.JIT_TYPE, resource_group=rg) == [], 'no Defender policy may be written'
    assert [r['properties']['access'] for r in product_rules(standin, vm['nsg_id'])] == ['Deny']
    for args in ([], ['--mode', 'nsg']):
        assert az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'vm1', *args)['mode'] == 'nsg'
    request = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--mode', 'nsg', '--ports', '3389',
                    '--source', '198.51.100.6')
    assert request['status'] == 'active'
    allows = product_rules(standin, vm['nsg_id'], 'Allow')
    assert [(source_of(r), ports_of(r)) for r in allows] == [('198.51.100.6', [3389])]
    az.ok('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--mode', 'nsg', '--yes')
    assert rules(standin, vm['nsg_id']) == []


def test_a_vm_whose_policy_is_in_its_tags_costs_no_defender_call_to_request_or_revoke(az, standin, rg):
    """The plan is on, but the VM was enabled in NSG mode: request, revoke and a repeated enable find its mode in
    the VM's own tags and never ask Defender's API."""
    world = standin.world
    standin.vm(rg, 'vm1')
    az.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'vm1', '--mode', 'nsg', '--yes')
    for args in (['request', '--ports', '22', '--source', '198.51.100.6'], ['revoke'], ['enable', '--yes']):
        mark = len(world.requests)
        az.ok('vm', 'jit', args[0], '-g', rg, '-n', 'vm1', *args[1:])
        asked = [r.path for r in world.requests[mark:] if '/providers/microsoft.security/' in r.path.lower()]
        assert asked == [], '{} asked Defender: {}'.format(args[0], asked)


def test_enabling_a_new_vm_without_the_plan_makes_seven_calls_and_reads_no_defender_policy(az, standin, rg,
                                                                                           defender_off):
    """Without Defender for Servers Plan 2, a new VM costs its VM, NIC and NSG, the plan, the policy tag, the deny
    rule's PUT and one poll of its operation: Defender's policies are not read (the plan already says Defender cannot
    protect it), and the rule is not read back after its operation succeeded."""
    vm = standin.vm(rg, 'vm1')
    log = ArmLog(standin.world)
    result = az.run('vm', 'jit', 'enable', '-g', rg, '-n', 'vm1', '--yes')
    assert result.code == 0, result
    calls = [re.sub(r'^(\w+) /subscriptions/[^/]+(/resourceGroups/[^/]+)?', r'\1 ', c).split('?')[0]
             for c in log.summary()]
    deny = product_rules(standin, vm['nsg_id'])[0]['name']
    assert calls[:6] == [
        'GET /providers/Microsoft.Compute/virtualMachines/vm1',
        'GET /providers/Microsoft.Network/networkInterfaces/vm1-nic0',
        'GET /providers/Microsoft.Network/networkSecurityGroups/vm1-nsg',
        'GET /providers/Microsoft.Security/pricings/VirtualMachines',
        'PATCH /providers/Microsoft.Compute/virtualMachines/vm1/providers/Microsoft.Resources/tags/default',
        f'PUT /providers/Microsoft.Network/networkSecurityGroups/vm1-nsg/securityRules/{deny}',
    ], calls
    assert len(calls) == 7 and '/operations/' in calls[6], calls
    assert 'Defender for Servers Plan 2 is not on' in result.stderr and len(fallback_warnings(result)) == 1


# -- other people's rules --------------------------------------------------------------------------------
def test_other_rules_untouched_and_the_removed_one_comes_back(az, standin, rg, defender_off):
    world = standin.world
    seeded = [
        user_rule('AllowSshFromOffice', 200, 22, '203.0.113.0/24', description='office VPN'),
        user_rule('AllowSshFromAnywhere', 300, 22, '*', description='legacy, to be removed'),
        user_rule('AllowHttpFromInternet', 310, 80, 'Internet'),
        user_rule('DenyTelnet', 500, 23, '*', access='Deny'),
        user_rule('AllowOutboundHttps', 400, 443, '*', destination='Internet', direction='Outbound'),
    ]
    vm = standin.vm(rg, 'vm1', rules=seeded)
    nsg_id = vm['nsg_id']
    original = {n: canonical(r) for n, r in rules_by_name(standin, nsg_id).items()}
    untouched = {n: v for n, v in original.items() if n != 'AllowSshFromAnywhere'}

    # Without --yes and without a terminal, nothing happens.
    mark = len(world.requests)
    refused = az.run('vm', 'jit', 'enable', '-g', rg, '-n', 'vm1')
    assert refused.code != 0, refused
    assert 'AllowSshFromAnywhere' in refused.stderr and '--yes' in refused.stderr, refused.stderr
    assert writes_since(world, mark) == []

    result = az.run('vm', 'jit', 'enable', '-g', rg, '-n', 'vm1', '--yes')
    assert result.code == 0, result
    assert 'AllowSshFromOffice' in result.stderr, 'the narrower allow that beats the deny must be named'
    now = rules_by_name(standin, nsg_id)
    assert 'AllowSshFromAnywhere' not in now
    assert {n: canonical(r) for n, r in now.items() if not n.startswith(PRODUCT_RULE_PREFIX)} == untouched

    az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--source', '198.51.100.9', '--duration', '5')
    allows = product_rules(standin, nsg_id, 'Allow')
    assert sorted(ports_of(r)[0] for r in allows) == [22, 3389]
    assert all(r['properties']['priority'] not in (200, 310, 500) for r in allows)
    az.ok('vm', 'jit', 'list', '-g', rg)
    az.ok('vm', 'jit', 'revoke', '-g', rg, '-n', 'vm1')
    az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--source', '198.51.100.9',
          '--duration', '5')
    world.clock.advance(minutes=10)
    az.ok('vm', 'jit', 'cleanup', '-g', rg)
    now = rules_by_name(standin, nsg_id)
    assert {n: canonical(r) for n, r in now.items() if not n.startswith(PRODUCT_RULE_PREFIX)} == untouched

    az.ok('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--yes')
    after = rules_by_name(standin, nsg_id)
    assert sorted(after) == sorted(original), 'exactly the user rules must remain'
    assert {n: canonical(r) for n, r in after.items() if n != 'AllowSshFromAnywhere'} == untouched

    def without_etag(text):
        rule = json.loads(text)
        rule.pop('etag')
        return rule
    assert without_etag(canonical(after['AllowSshFromAnywhere'])) == without_etag(original['AllowSshFromAnywhere'])
    assert jit_tags(standin, vm['id']) == {}


def test_allow_any_rule_to_the_vms_application_security_group_is_removed(az, standin, rg):
    asg = '/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/applicationSecurityGroups/web'.format(
        standin.sub, rg)
    props = dict(ALLOW_ANY_SSH['properties'], destinationApplicationSecurityGroups=[{'id': asg}])
    del props['destinationAddressPrefix']
    rule = {'name': 'AllowSshToWeb', 'properties': props}
    vm = standin.vm(rg, 'asgvm', rules=[rule])
    nic = standin.world.get(vm['nic_ids'][0])
    nic['properties']['ipConfigurations'][0]['properties']['applicationSecurityGroups'] = [{'id': asg}]
    az.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'asgvm', '--ports', '22', '--mode', 'nsg', '--yes')
    assert 'AllowSshToWeb' not in rules_by_name(standin, vm['nsg_id'])


# -- bad input -------------------------------------------------------------------------------------------
@pytest.fixture(name='refusing', scope='module')
def fixture_refusing(az_env, standin):
    """(resource group, VM) of one VM enabled in NSG mode (no Defender plan) with the defaults, shared by the tests
    of requests that must be refused: each of them checks that it wrote nothing, so none of them can change what
    the next one sees."""
    rg = 'rg-refuse-' + uuid.uuid4().hex[:8]
    vm = standin.vm(rg, 'vm1')
    security.set_defender_plan(standin.world, False)
    try:
        with shared_setup(standin, az_env):
            enable(az_env.login('admin'), rg, 'vm1')
    finally:
        security.set_defender_plan(standin.world, True)
    return rg, vm


@pytest.mark.parametrize('args, names', [
    (['--ports', '22', '--duration', '25h', '--source', '198.51.100.1'], ['25h']),
    (['--ports', '22/icmp', '--source', '198.51.100.1'], ['icmp']),
    (['--ports', '22', '--source', '10.0.0.0/33'], ['10.0.0.0/33']),
    (['--ports', '8080', '--source', '198.51.100.1'], ['8080']),
    (['--ports', '22', '--source', '198.51.100.1', '--duration', '4h'], ['4h', 'maximum']),
    (['--ports', '22', '--duration', '4h'], ['4h', 'maximum']),
], ids=['duration-25h', 'icmp', 'cidr-33', 'port-not-in-policy', 'above-policy-maximum',
        'above-policy-maximum-no-source'])
def test_bad_request_exits_2_with_one_error_line_and_writes_nothing(az, standin, refusing, defender_off, args, names):
    rg, vm = refusing
    before = rules(standin, vm['nsg_id'])
    tags = dict(standin.world.get(vm['id'])['tags'])
    mark = len(standin.world.requests)
    result = az.run('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', *args)
    assert result.code == 2, result
    errors = error_lines(result)
    assert len(errors) == 1, result.stderr
    for name in names:
        assert name.lower() in errors[0].lower(), errors[0]
    assert writes_since(standin.world, mark) == []
    assert rules(standin, vm['nsg_id']) == before
    assert standin.world.get(vm['id'])['tags'] == tags


def test_source_outside_allowed_sources_is_refused(az, standin, rg, defender_off):
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1', '--allowed-sources', '203.0.113.0/24')
    mark = len(standin.world.requests)
    result = az.run('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--source', '198.51.100.1')
    assert result.code == 2, result
    errors = error_lines(result)
    assert len(errors) == 1 and '198.51.100.1' in errors[0], result.stderr
    assert writes_since(standin.world, mark) == []
    ok = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--source', '203.0.113.7')
    assert ok['status'] == 'active'
    assert [source_of(r) for r in product_rules(standin, vm['nsg_id'], 'Allow')] == ['203.0.113.7']


# -- idempotence -----------------------------------------------------------------------------------------
def test_enable_twice_changes_nothing_and_revoke_with_nothing_open_is_fine(az, standin, rg, defender_off):
    world = standin.world
    vm = standin.vm(rg, 'vm1', rules=[user_rule('AllowSshFromAnywhere', 300, 22, '*')])
    first = enable(az, rg, 'vm1')
    assert first['changes'], 'the first enable must change something'
    nsg_before, tags_before = rules(standin, vm['nsg_id']), dict(world.get(vm['id'])['tags'])
    mark = len(world.requests)
    second = az.run('vm', 'jit', 'enable', '-g', rg, '-n', 'vm1', '--yes')
    assert second.code == 0, second
    assert second.json['changes'] == []
    assert writes_since(world, mark) == []
    assert rules(standin, vm['nsg_id']) == nsg_before and world.get(vm['id'])['tags'] == tags_before

    mark = len(world.requests)
    revoke = az.run('vm', 'jit', 'revoke', '-g', rg, '-n', 'vm1')
    assert revoke.code == 0, revoke
    assert revoke.json['revoked'] == []
    assert writes_since(world, mark) == []

    # Revoking an access that has already been revoked or has expired is not an error either.
    request = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--source', '198.51.100.1',
                    '--duration', '5')
    az.ok('vm', 'jit', 'revoke', '-g', rg, '-n', 'vm1', '--request-id', request['id'])
    again = az.run('vm', 'jit', 'revoke', '-g', rg, '-n', 'vm1', '--request-id', request['id'])
    assert again.code == 0, again
    assert product_rules(standin, vm['nsg_id'], 'Allow') == []


# -- dry runs --------------------------------------------------------------------------------------------
def test_dry_runs_write_nothing_and_print_what_the_real_run_does(az, standin, rg, defender_off):
    world = standin.world
    vm = standin.vm(rg, 'vm1', rules=[user_rule('AllowSshFromAnywhere', 300, 22, '*')])
    nsg_id = vm['nsg_id']

    def dry_then_real(*args, confirm=()):
        mark = len(world.requests)
        planned = az.ok(*args, '--dry-run')
        assert writes_since(world, mark) == [], '--dry-run wrote: {}'.format(args)
        before = {r['name'] for r in rules(standin, nsg_id)}
        done = az.ok(*args, *confirm)
        after = {r['name'] for r in rules(standin, nsg_id)}
        rule_changes = [c for c in planned['changes'] if c['kind'] == 'rule']
        created = {c['name'] for c in rule_changes if c['action'] in ('create', 'restore')}
        deleted = {c['name'] for c in rule_changes if c['action'] == 'delete'}
        return planned, done, created, deleted, before, after

    planned, done, created, deleted, before, after = dry_then_real('vm', 'jit', 'enable', '-g', rg, '-n', 'vm1',
                                                                   confirm=['--yes'])
    assert deleted == {'AllowSshFromAnywhere'} and after == (before - deleted) | created
    assert [(c['name'], c['priority']) for c in planned['changes'] if c['kind'] == 'rule' and c['action'] == 'create'] \
        == [(r['name'], r['properties']['priority']) for r in product_rules(standin, nsg_id, 'Deny')]

    # A request's rule names carry a new request id each time, so compare what an admin checks instead.
    mark = len(world.requests)
    planned = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--source', '198.51.100.3',
                    '--dry-run')
    assert writes_since(world, mark) == []
    assert product_rules(standin, nsg_id, 'Allow') == []
    assert planned['status'] == 'planned'
    [plan] = [c for c in planned['changes'] if c['kind'] == 'rule']
    az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--source', '198.51.100.3')
    [real] = product_rules(standin, nsg_id, 'Allow')
    assert (plan['priority'], plan['access'], plan['source'], plan['ports']) == (
        real['properties']['priority'], 'Allow', '198.51.100.3', '22')

    _, _, created, deleted, before, after = dry_then_real('vm', 'jit', 'revoke', '-g', rg, '-n', 'vm1')
    assert deleted == {real['name']} and after == before - deleted

    _, _, created, deleted, before, after = dry_then_real('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1',
                                                          confirm=['--yes'])
    assert created == {'AllowSshFromAnywhere'} and after == (before - deleted) | created
    assert after == {'AllowSshFromAnywhere'}


# -- a VM whose NSG was detached -------------------------------------------------------------------------
def detach_nsg(standin, vm):
    standin.world.get(vm['nic_ids'][0])['properties'].pop('networkSecurityGroup')


def reattach_nsg(standin, vm):
    standin.world.get(vm['nic_ids'][0])['properties']['networkSecurityGroup'] = {'id': vm['nsg_id']}


def test_detached_nsg_does_not_break_list_show_revoke_disable(az, standin, rg, defender_off):
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    revoked = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--source', '198.51.100.9')
    az.ok('vm', 'jit', 'revoke', '-g', rg, '-n', 'vm1', '--request-id', revoked['id'])
    az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '3389', '--source', '198.51.100.9')
    detach_nsg(standin, vm)

    for args in (['list', '-g', rg], ['show', '-g', rg, '-n', 'vm1'], ['list', '-g', rg, '-o', 'table'],
                 ['revoke', '-g', rg, '-n', 'vm1']):
        result = az.run('vm', 'jit', *args)
        assert result.code == 0 and 'Traceback' not in result.stderr, result
    [listed] = az.ok('vm', 'jit', 'list', '-g', rg)
    assert listed['mode'] == 'nsg' and [(r['id'], r['status']) for r in listed['requests']] == [
        (revoked['id'], 'revoked')], 'only the revocation records are left to show'
    show = az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'vm1')
    assert show['enabled'] is True and show['network']['nsg'] is None

    refused = az.run('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--source', '198.51.100.9')
    assert refused.code != 0 and 'Traceback' not in refused.stderr, refused
    assert 'network security group' in ' '.join(error_lines(refused)), refused

    done = az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--yes')
    assert done.code == 0, done
    assert jit_tags(standin, vm['id']) == {}, 'disable must remove the policy even without an NSG'
    assert az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'vm1')['enabled'] is False

    # Once the NSG is back, the rules it still holds can be removed too.
    reattach_nsg(standin, vm)
    assert vm_rules(standin, vm)
    az.ok('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--mode', 'nsg', '--yes')
    assert vm_rules(standin, vm) == []
