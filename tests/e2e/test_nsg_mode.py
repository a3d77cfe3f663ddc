"""NSG mode end to end (issue #4): the real `az vm jit` against the stand-in, with the extension editing the NSG.

Every test looks at what a user (or the admin of the NSG) would notice: the rules in the NSG, the VM's tags,
the output of `show`/`list`, the exit code and the error line, and which writes reached Azure.
"""
import copy
import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from tests import harness
from tests.standin import aad, security

PREFIX = 'AzVmJit-'
FALLBACK_WARNING = 'using NSG mode'


# -- helpers -------------------------------------------------------------------------------------------
def writes_since(world, mark):
    """Writes that reached Azure since `mark` (an index into world.requests): PUT/PATCH/DELETE, and POST actions."""
    return ['{} {}'.format(r.method, r.path) for r in world.requests[mark:]
            if r.method in ('PUT', 'PATCH', 'DELETE') or (r.method == 'POST' and r.path.startswith('/subscriptions'))]


def rules(standin, nsg_id):
    return copy.deepcopy(standin.nsg_rules(nsg_id))


def by_name(rule_list):
    return {r['name']: r for r in rule_list}


def product_rules(standin, nsg_id, access=None):
    return [r for r in rules(standin, nsg_id) if r['name'].startswith(PREFIX)
            and (access is None or r['properties']['access'] == access)]


def ports_of(rule):
    props = rule['properties']
    return sorted(int(p) for p in (props.get('destinationPortRanges') or [props.get('destinationPortRange')]))


def source_of(rule):
    props = rule['properties']
    return props.get('sourceAddressPrefix') or ','.join(props.get('sourceAddressPrefixes') or [])


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith('ERROR')]


def fallback_warnings(result):
    return [line for line in result.stderr.splitlines() if FALLBACK_WARNING in line]


def canonical(rule):
    return json.dumps(rule, sort_keys=True)


def jit_tags(standin, vm_id):
    return {k: v for k, v in (standin.world.get(vm_id).get('tags') or {}).items() if k.startswith('azvmjit-')}


def request_status(listing, vm_name, request_id):
    vm = next(v for v in listing if v['vm'] == vm_name)
    return next(r['status'] for r in vm['requests'] if r['id'] == request_id)


def enable(az, rg, vm, *extra):
    return az.ok('vm', 'jit', 'enable', '-g', rg, '-n', vm, '--yes', *extra)


def user_rule(name, priority, port, source, access='Allow', destination='*', protocol='Tcp', direction='Inbound',
              description=None):
    props = {'protocol': protocol, 'sourcePortRange': '*', 'destinationPortRange': str(port),
             'sourceAddressPrefix': source, 'destinationAddressPrefix': destination, 'access': access,
             'priority': priority, 'direction': direction}
    if description:
        props['description'] = description
    return {'name': name, 'properties': props}


# -- 1. the whole cycle ----------------------------------------------------------------------------------
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


# -- 2. mode choice --------------------------------------------------------------------------------------
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


# -- 3. "my IP" ------------------------------------------------------------------------------------------
def test_request_without_source_opens_for_the_ip_echo_answer(az, standin, rg, defender_off, monkeypatch):
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    monkeypatch.setattr(standin.world, 'caller_ip', '192.0.2.123')
    request = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22')
    assert [p['source'] for p in request['ports']] == ['192.0.2.123']
    assert [source_of(r) for r in product_rules(standin, vm['nsg_id'], 'Allow')] == ['192.0.2.123']


def test_request_without_source_uses_configured_ip_echo_url(az, az_env, standin, rg, defender_off):
    """`az config set jit.my_ip_url=...` is honoured when the environment variable is not set."""
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    url = standin.base_url + '/ip?as=requester'   # the stand-in answers as the requester is seen: 198.51.100.20
    az.ok('config', 'set', 'jit.my_ip_url=' + url, output=None)
    env = az_env.base_env(az.config_dir)
    del env['AZURE_JIT_MY_IP_URL']
    try:
        proc = subprocess.run([harness.az_executable(), 'vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports',
                               '22', '-o', 'json'], capture_output=True, text=True, env=env, timeout=300,
                              stdin=subprocess.DEVNULL, check=False)
    finally:
        az.ok('config', 'unset', 'jit.my_ip_url', output=None)
    assert proc.returncode == 0, proc.stderr
    assert [source_of(r) for r in product_rules(standin, vm['nsg_id'], 'Allow')] == ['198.51.100.20']
    assert [p['source'] for p in json.loads(proc.stdout)['ports']] == ['198.51.100.20']


def test_unreachable_ip_echo_asks_for_source_and_writes_nothing(az, standin, rg, defender_off):
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    before = rules(standin, vm['nsg_id'])
    mark = len(standin.world.requests)
    result = az.run('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22',
                    extra_env={'AZURE_JIT_MY_IP_URL': 'https://127.0.0.1:9/ip'}, timeout=120)
    assert result.code not in (0, None), result
    errors = error_lines(result)
    assert len(errors) == 1, result.stderr
    assert 'public IP' in errors[0] or 'IP address' in errors[0], errors
    assert '--source' in result.stderr, result.stderr
    assert writes_since(standin.world, mark) == []
    assert rules(standin, vm['nsg_id']) == before


# -- 4. concurrency --------------------------------------------------------------------------------------
def test_twenty_concurrent_requests_on_one_nsg(az, standin, rg, defender_off, record_property):
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    deny = product_rules(standin, vm['nsg_id'], 'Deny')
    assert [r['properties']['priority'] for r in deny] == [1000]
    sources = ['198.18.0.{}'.format(i) for i in range(1, 21)]

    started = time.monotonic()
    procs = [az.popen('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--duration', '60',
                      '--source', s) for s in sources]
    outputs = [p.communicate(timeout=900) for p in procs]
    elapsed = time.monotonic() - started
    record_property('concurrent_20_requests_seconds', round(elapsed, 1))
    clashes = [r for r in standin.world.requests if r.method == 'PUT' and r.status == 400 and rg in r.path]
    print('\n20 concurrent `az vm jit request`: {:.1f} s, {} priority clashes retried'.format(elapsed, len(clashes)))

    failures = [(s, p.returncode, err[-1500:]) for s, p, (_, err) in zip(sources, procs, outputs) if p.returncode]
    assert failures == [], failures
    answers = [json.loads(out) for out, _ in outputs]
    assert sorted(a['ports'][0]['source'] for a in answers) == sorted(sources)
    assert len({a['id'] for a in answers}) == 20

    allows = product_rules(standin, vm['nsg_id'], 'Allow')
    assert sorted(source_of(r) for r in allows) == sorted(sources), 'an allow rule was lost or duplicated'
    priorities = [r['properties']['priority'] for r in allows]
    assert len(set(priorities)) == 20, sorted(priorities)
    assert all(100 <= p < 1000 for p in priorities), sorted(priorities)
    assert [r['properties']['priority'] for r in product_rules(standin, vm['nsg_id'], 'Deny')] == [1000]
    listing = az.ok('vm', 'jit', 'list', '-g', rg, '--status', 'active')
    listed = [(p['source'], r['status']) for r in listing[0]['requests'] for p in r['ports']]
    assert sorted(listed) == sorted((s, 'active') for s in sources)


def test_cleanup_and_requests_at_the_same_time(az, standin, rg, defender_off):
    """cleanup is safe beside other commands: nothing lost, only the expired rules go."""
    world = standin.world
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    old = [az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--duration', '5', '--source',
                 '198.51.100.{}'.format(i)) for i in (1, 2)]
    world.clock.advance(minutes=10)
    sources = ['198.18.1.{}'.format(i) for i in range(1, 9)]
    procs = [az.popen('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--duration', '60',
                      '--source', s) for s in sources]
    procs += [az.popen('vm', 'jit', 'cleanup', '-g', rg) for _ in range(2)]
    outputs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), [err[-800:] for _, err in outputs]
    allows = product_rules(standin, vm['nsg_id'], 'Allow')
    assert sorted(source_of(r) for r in allows) == sorted(sources)
    assert not any(o['id'] in r['name'] for o in old for r in allows)
    assert len({r['properties']['priority'] for r in allows}) == len(sources)


def test_concurrent_revokes_all_show_as_revoked(az, standin, rg, defender_off):
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    ids = [az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--source',
                 '198.51.100.{}'.format(i))['id'] for i in range(1, 5)]
    procs = [az.popen('vm', 'jit', 'revoke', '-g', rg, '-n', 'vm1', '--request-id', i) for i in ids]
    outputs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), [err[-800:] for _, err in outputs]
    assert product_rules(standin, vm['nsg_id'], 'Allow') == []
    listing = az.ok('vm', 'jit', 'list', '-g', rg)
    assert sorted((r['id'], r['status']) for r in listing[0]['requests']) == sorted((i, 'revoked') for i in ids)


# -- 5. expiry and cleanup -------------------------------------------------------------------------------
def test_cleanup_removes_exactly_the_expired_rules(az, standin, rg, defender_off):
    world = standin.world
    vm1 = standin.vm(rg, 'vm1')
    vm2 = standin.vm(rg, 'vm2', nsg_name='vm1-nsg')       # two VMs on one NSG
    vm3 = standin.vm(rg, 'vm3')                           # a VM with its own NSG
    other_rg = 'rg-' + uuid.uuid4().hex[:8]
    vm4 = standin.vm(other_rg, 'vm4')                     # outside the cleanup's scope
    enable(az, rg, 'vm1')
    enable(az, rg, 'vm2')
    enable(az, rg, 'vm3')
    enable(az, other_rg, 'vm4')
    denies = product_rules(standin, vm1['nsg_id'], 'Deny')
    assert sorted(r['properties']['destinationAddressPrefix'] for r in denies) == sorted(
        [vm1['private_ip'], vm2['private_ip']])
    assert len({r['properties']['priority'] for r in denies}) == 2 and \
        all(990 <= r['properties']['priority'] <= 1010 for r in denies), [r['properties'] for r in denies]

    def req(rg_, vm, port, minutes, source):
        return az.ok('vm', 'jit', 'request', '-g', rg_, '-n', vm, '--ports', port, '--duration', minutes,
                     '--source', source)
    short1 = req(rg, 'vm1', '22', '5', '198.51.100.1')
    long1 = req(rg, 'vm1', '3389', '60', '198.51.100.1')
    short2 = req(rg, 'vm2', '22', '5', '198.51.100.2')
    short3 = req(rg, 'vm3', '3389', '5', '198.51.100.3')
    long3 = req(rg, 'vm3', '22', '60', '198.51.100.3')
    short4 = req(other_rg, 'vm4', '22', '5', '198.51.100.4')
    nsgs = [vm1['nsg_id'], vm3['nsg_id'], vm4['nsg_id']]

    def allow_names(request_ids):
        return sorted(r['name'] for n in nsgs for r in product_rules(standin, n, 'Allow')
                      if any(i in r['name'] for i in request_ids))
    expired = allow_names([short1['id'], short2['id'], short3['id']])
    kept = allow_names([long1['id'], long3['id']])
    out_of_scope = allow_names([short4['id']])
    assert len(expired) == 3 and len(kept) == 2 and len(out_of_scope) == 1

    world.clock.advance(minutes=10)
    listing = az.ok('vm', 'jit', 'list', '-g', rg, '--status', 'expired')
    assert sorted(r['id'] for v in listing for r in v['requests']) == sorted(
        [short1['id'], short2['id'], short3['id']])

    before = {n: rules(standin, n) for n in nsgs}
    mark = len(world.requests)
    dry = az.ok('vm', 'jit', 'cleanup', '-g', rg, '--dry-run')
    assert writes_since(world, mark) == [], 'a dry run must not write'
    assert {n: rules(standin, n) for n in nsgs} == before
    assert sorted(c['name'] for c in dry['removed']) == expired

    done = az.ok('vm', 'jit', 'cleanup', '-g', rg)
    assert sorted(c['name'] for c in done['removed']) == expired
    assert allow_names([short1['id'], short2['id'], short3['id']]) == []
    assert allow_names([long1['id'], long3['id']]) == kept
    assert allow_names([short4['id']]) == out_of_scope, 'cleanup -g must stay inside its resource group'
    assert len(product_rules(standin, vm1['nsg_id'], 'Deny')) == 2
    assert len(product_rules(standin, vm3['nsg_id'], 'Deny')) == 1

    mark = len(world.requests)
    again = az.run('vm', 'jit', 'cleanup', '-g', rg)
    assert again.code == 0, again
    assert again.json['removed'] == []
    assert writes_since(world, mark) == []


def test_request_removes_that_vms_expired_rules_first(az, standin, rg, defender_off):
    world = standin.world
    vm1 = standin.vm(rg, 'vm1')
    standin.vm(rg, 'vm2', nsg_name='vm1-nsg')
    nsg_id = vm1['nsg_id']
    enable(az, rg, 'vm1')
    enable(az, rg, 'vm2')
    old1 = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--duration', '5',
                 '--source', '198.51.100.1')
    old2 = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm2', '--ports', '22', '--duration', '5',
                 '--source', '198.51.100.2')
    world.clock.advance(minutes=10)
    new = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '3389', '--duration', '60',
                '--source', '198.51.100.1')
    names = [r['name'] for r in product_rules(standin, nsg_id, 'Allow')]
    assert not any(old1['id'] in n for n in names), 'vm1 expired rule must go before the new request'
    assert any(old2['id'] in n for n in names), "another VM's expired rule is cleanup's business, not this request's"
    assert any(new['id'] in n for n in names)


# -- 6. other people's rules -----------------------------------------------------------------------------
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
    original = {n: canonical(r) for n, r in by_name(rules(standin, nsg_id)).items()}
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
    now = by_name(rules(standin, nsg_id))
    assert 'AllowSshFromAnywhere' not in now
    assert {n: canonical(r) for n, r in now.items() if not n.startswith(PREFIX)} == untouched

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
    now = by_name(rules(standin, nsg_id))
    assert {n: canonical(r) for n, r in now.items() if not n.startswith(PREFIX)} == untouched

    az.ok('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--yes')
    after = by_name(rules(standin, nsg_id))
    assert sorted(after) == sorted(original), 'exactly the user rules must remain'
    assert {n: canonical(r) for n, r in after.items() if n != 'AllowSshFromAnywhere'} == untouched

    def without_etag(text):
        rule = json.loads(text)
        rule.pop('etag')
        return rule
    assert without_etag(canonical(after['AllowSshFromAnywhere'])) == without_etag(original['AllowSshFromAnywhere'])
    assert jit_tags(standin, vm['id']) == {}


# -- 7. bad input ----------------------------------------------------------------------------------------
@pytest.mark.parametrize('args, names', [
    (['--ports', '22', '--duration', '25h', '--source', '198.51.100.1'], ['25h']),
    (['--ports', '22/icmp', '--source', '198.51.100.1'], ['icmp']),
    (['--ports', '22', '--source', '10.0.0.0/33'], ['10.0.0.0/33']),
    (['--ports', '8080', '--source', '198.51.100.1'], ['8080']),
    (['--ports', '22', '--source', '198.51.100.1', '--duration', '4h'], ['4h', 'maximum']),
    (['--ports', '22', '--duration', '4h'], ['4h', 'maximum']),
], ids=['duration-25h', 'icmp', 'cidr-33', 'port-not-in-policy', 'above-policy-maximum',
        'above-policy-maximum-no-source'])
def test_bad_request_exits_2_with_one_error_line_and_writes_nothing(az, standin, rg, defender_off, args, names):
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
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


# -- 8. idempotence --------------------------------------------------------------------------------------
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


# -- 9. the unattended runner ----------------------------------------------------------------------------
def _runner(az_env, standin, tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(('AZURE_', 'AZ_', 'IDENTITY_', 'MSI_'))}
    env.update({
        'IDENTITY_ENDPOINT': standin.base_url + '/msi/token', 'IDENTITY_HEADER': aad.MSI_HEADER,
        'AZURE_JIT_ARM_ENDPOINT': standin.base_url,
        'REQUESTS_CA_BUNDLE': standin.ca_path, 'SSL_CERT_FILE': standin.ca_path,
        'PYTHONPATH': os.path.join(az_env.extension_dir, 'jit'),
        'HTTPS_PROXY': az_env.tripwire.url, 'HTTP_PROXY': az_env.tripwire.url,
        'https_proxy': az_env.tripwire.url, 'http_proxy': az_env.tripwire.url,
        'NO_PROXY': '127.0.0.1,localhost', 'no_proxy': '127.0.0.1,localhost',
    })
    # Run outside the source tree, so that the installed extension is what runs.
    return subprocess.run([sys.executable, '-m', 'azext_jit.runner', '--subscription', standin.sub] + list(args),
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300, check=False)


def test_runner_cleans_up_expired_rules_with_a_managed_identity(az, az_env, standin, rg, defender_off, tmp_path):
    world = standin.world
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    short = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--duration', '5',
                  '--source', '198.51.100.1')
    long = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '3389', '--duration', '60',
                 '--source', '198.51.100.1')
    world.clock.advance(minutes=10)
    expired = [r['name'] for r in product_rules(standin, vm['nsg_id'], 'Allow') if short['id'] in r['name']]
    assert len(expired) == 1

    mark = len(world.requests)
    dry = _runner(az_env, standin, tmp_path, '--resource-group', rg, '--dry-run')
    assert dry.returncode == 0, dry.stderr
    assert [c['name'] for c in json.loads(dry.stdout)['removed']] == expired
    assert writes_since(world, mark) == []
    assert any(r.path == '/msi/token' for r in world.requests[mark:]), 'the runner must use the managed identity'

    mark = len(world.requests)
    run = _runner(az_env, standin, tmp_path, '--resource-group', rg)
    assert run.returncode == 0, run.stderr
    assert [c['name'] for c in json.loads(run.stdout)['removed']] == expired
    names = [r['name'] for r in product_rules(standin, vm['nsg_id'])]
    assert not any(short['id'] in n for n in names)
    assert any(long['id'] in n for n in names)
    deletes = [r for r in world.requests[mark:] if r.method == 'DELETE']
    assert deletes and all(r.caller == 'function-app' for r in deletes), [(r.path, r.caller) for r in deletes]

    again = _runner(az_env, standin, tmp_path, '--resource-group', rg)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)['removed'] == []
