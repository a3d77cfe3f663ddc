# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Fleet commands through the real `az`: `exposure`, `list` and `cleanup` across subscriptions, read through the
stand-in's Azure Resource Graph.

The estate lives in three subscriptions of its own, and an identity that is Owner of those three only signs in after
they exist: `--all-subscriptions` then means exactly them, whatever other tests put in the shared stand-in. Tests of
this module may run on one worker in any order, or on several: none counts on another's writes, and each writes
only where the others do not look (`--protect` in the third subscription, cleanup's rules from narrow sources).
"""
import datetime as dt
import re
import types
import uuid

import pytest

from azext_jit.modes import nsg_mode_records as records
from tests.harness import shared_setup, writes_since
from tests.standin import arm, compute, graph, network, security

ANY_22 = {'priority': 300, 'direction': 'Inbound', 'access': 'Allow', 'protocol': 'Tcp', 'sourcePortRange': '*',
          'destinationPortRange': '22', 'sourceAddressPrefix': '*', 'destinationAddressPrefix': '*'}


def _rule(name, **changes):
    return {'name': name, 'properties': dict(ANY_22, **changes)}


class _Estate:
    """VMs built straight into the world, in any subscription, with the network each test case needs."""

    def __init__(self, world, sub, rg, base):
        self.world, self.sub, self.rg, self.base = world, sub, rg, base
        world.put(arm.rg_id(sub, rg), {'id': arm.rg_id(sub, rg), 'name': rg, 'type': arm.RG_TYPE,
                                       'location': 'westeurope', 'tags': {},
                                       'properties': {'provisioningState': 'Succeeded'}})
        rdp_from_internet = _rule('AllowRdpFromInternet', destinationPortRange='3389', sourceAddressPrefix='Internet',
                                  priority=200)
        self.subnet_nsgs = {'open': self.nsg('sn-open', [rdp_from_internet]),
                            'both': self.nsg('sn-both', [_rule('AllowSshSubnet', priority=300)])}
        vnet = network.create_vnet(world, sub, rg, 'vnet', subnets=(
            ('plain', '10.{}.1.0/24'.format(base), None),
            ('open', '10.{}.2.0/24'.format(base), self.subnet_nsgs['open']),
            ('both', '10.{}.3.0/24'.format(base), self.subnet_nsgs['both'])))
        self.subnets = {s['name']: s['id'] for s in vnet['properties']['subnets']}
        self.count = 0
        self.vms = {}

    def nsg(self, name, rules=()):
        return network.create_nsg(self.world, self.sub, self.rg, name, rules=rules)['id']

    def vm(self, name, subnet='plain', nic_nsg=None, public_ip='Standard'):
        self.count += 1
        subnet_index = list(self.subnets).index(subnet) + 1
        private_ip = '10.{}.{}.{}'.format(self.base, subnet_index, 10 + self.count)
        pip_id = None
        if public_ip:
            pip = network.create_public_ip(self.world, self.sub, self.rg, name + '-ip',
                                           '20.{}.{}.{}'.format(60 + self.base, subnet_index, 10 + self.count))
            pip['sku']['name'] = public_ip
            pip_id = pip['id']
        nic = network.create_nic(self.world, self.sub, self.rg, name + '-nic', self.subnets[subnet], private_ip,
                                 pip_id, nic_nsg)
        vm = compute.create_vm(self.world, self.sub, self.rg, name, [nic['id']])
        self.vms[name] = {'id': vm['id'], 'private_ip': private_ip, 'nsg_id': nic_nsg or (
            self.subnet_nsgs.get(subnet))}
        return self.vms[name]


@pytest.fixture(scope='module')
def fleet(standin, az_env):
    world = standin.world
    with shared_setup(standin, az_env):
        tag = uuid.uuid4().hex[:6]
        subs = [str(uuid.uuid4()) for _ in range(3)]
        for index, sub in enumerate(subs):
            world.add_subscription(sub, 'Fleet {} {}'.format(tag, index))
            security.set_defender_plan(world, False, subscription=sub)   # NSG mode unless a test says otherwise
        one = _Estate(world, subs[0], 'edge-' + tag, 31)
        one.vm('nic-only', nic_nsg=one.nsg('nic-open', [_rule('AllowSshAnywhere')]))          # 22
        one.vm('subnet-only', subnet='open')                                                    # 3389 (Internet)
        one.vm('both', subnet='both', nic_nsg=one.nsg('nic-both', [_rule(
            'AllowSshAll', sourceAddressPrefix='0.0.0.0/0', priority=310)]))                    # 22, two rules
        one.vm('both-nic-closed', subnet='both', nic_nsg=one.nsg('nic-closed'))                 # DenyAllInBound
        one.vm('deny-saves', nic_nsg=one.nsg('nic-deny', [
            _rule('DenySsh', access='Deny', priority=100), _rule('AllowSshLater', priority=200)]))
        one.vm('private-range', nic_nsg=one.nsg('nic-private', [_rule('AllowSshCorp',
                                                                      sourceAddressPrefix='10.0.0.0/8')]))
        one.vm('no-public-ip', nic_nsg=one.nsg('nic-open-too', [_rule('AllowSshAnywhere')]), public_ip=None)
        one.vm('basic-bare', public_ip='Basic')                                                 # 22 and 3389
        one.vm('standard-bare')
        two = _Estate(world, subs[1], 'core-' + tag, 32)
        two.vm('rdp-open', nic_nsg=two.nsg('rdp-open-nsg', [_rule('AllowRdp', destinationPortRange='3389')]))
        two.vm('jit-vm', nic_nsg=two.nsg('jit-nsg'))
        three = _Estate(world, subs[2], 'guard-' + tag, 33)   # --protect writes here, and only here
        three.vm('rdp-guard', nic_nsg=three.nsg('rdp-guard-nsg', [_rule('AllowRdp', destinationPortRange='3389')]))
        name = 'fleet-admin-' + tag
        world.add_identity(name, [('Owner', '/subscriptions/' + sub) for sub in subs])
        az = az_env.login(name)   # signs in once both subscriptions exist: `az account list` shows both
    return types.SimpleNamespace(az=az, subs=subs, one=one, two=two, three=three, world=world)


def _exposed(rows):
    assert {row['status'] for row in rows} <= {'open'}, 'the stand-in shows everything: nothing is unknown'
    return sorted((row['vm'], row['port']) for row in rows)


def test_exposure_finds_exactly_the_vms_the_internet_reaches(fleet):
    az, world = fleet.az, fleet.world
    mark = len(world.requests)
    result = az.run('vm', 'jit', 'exposure', '--subscriptions', *fleet.subs[:2])
    assert result.code == 0, result
    assert _exposed(result.json) == [
        ('basic-bare', '22/TCP'), ('basic-bare', '3389/TCP'), ('both', '22/TCP'), ('nic-only', '22/TCP'),
        ('rdp-open', '3389/TCP'), ('subnet-only', '3389/TCP')]
    rows = {(row['vm'], row['port']): row for row in result.json}
    both = rows[('both', '22/TCP')]
    assert [(r['attachedTo'], r['name'], r['priority']) for r in both['rules']] == [
        ('subnet', 'AllowSshSubnet', 300), ('nic', 'AllowSshAll', 310)]
    assert [(r['nsg'], r['name']) for r in rows[('subnet-only', '3389/TCP')]['rules']] == [
        ('sn-open', 'AllowRdpFromInternet')]
    assert rows[('basic-bare', '22/TCP')]['rules'] == [] and 'Basic' in rows[('basic-bare', '22/TCP')]['reason']
    assert rows[('rdp-open', '3389/TCP')]['subscription'] == fleet.subs[1]
    assert all(row['jit'] == {'enabled': False, 'mode': None} for row in result.json)
    assert rows[('nic-only', '22/TCP')]['publicIp'].startswith('20.91.')
    assert re.search(r'\b5 of 11 VMs\b', result.stderr), result.stderr   # the summary line, with counts
    calls = [r for r in world.requests[mark:] if r.path.lower().startswith(('/subscriptions', '/providers'))]
    graph_pages = [r for r in calls if r.path.lower() == '/providers/microsoft.resourcegraph/resources']
    assert len(graph_pages) == 1 and writes_since(world, mark) == []
    assert not [r for r in calls if re.search(r'/(networkInterfaces|networkSecurityGroups|virtualMachines)/', r.path,
                                              re.I)], 'no per-resource read: Resource Graph answered for all'

    narrow = fleet.az.ok('vm', 'jit', 'exposure', '--subscriptions', fleet.subs[0], '--ports', '3389')
    assert _exposed(narrow) == [('basic-bare', '3389/TCP'), ('subnet-only', '3389/TCP')]


def test_exposure_protect_dry_run_writes_nothing_and_names_what_it_would_do(fleet):
    world = fleet.world
    mark = len(world.requests)
    result = fleet.az.run('vm', 'jit', 'exposure', '--subscriptions', fleet.subs[0], '--protect', '--dry-run')
    assert result.code == 0, result
    assert writes_since(world, mark) == [], 'a dry run must not write'
    planned = sorted(r['vm'] for r in result.json['protected'])
    assert planned == ['both', 'nic-only', 'subnet-only']
    assert all(r['dryRun'] for r in result.json['protected'])
    skipped = {r['vm']: r['reason'] for r in result.json['skipped']}
    assert list(skipped) == ['basic-bare'] and 'network security group' in skipped['basic-bare']
    removed = [c for r in result.json['protected'] for c in r['changes'] if c.get('action') == 'delete']
    assert {c['name'] for c in removed} >= {'AllowSshAnywhere'}


def test_exposure_protect_enables_jit_on_what_it_found_from_fresh_reads(fleet):
    az, world, three = fleet.az, fleet.world, fleet.three
    graph.freeze(world)   # Resource Graph keeps showing the VM without JIT; ARM knows better once it is enabled
    try:
        done = az.run('vm', 'jit', 'exposure', '--subscriptions', fleet.subs[2], '--protect', '--yes')
        assert done.code == 0, done
        assert [r['vm'] for r in done.json['protected']] == ['rdp-guard']
        again = az.run('vm', 'jit', 'exposure', '--subscriptions', fleet.subs[2], '--protect', '--yes')
        assert again.code == 0, again
        assert _exposed(again.json['exposed']) == [('rdp-guard', '3389/TCP')]   # the stale answer
        assert again.json['protected'] == [] and [r['vm'] for r in again.json['skipped']] == ['rdp-guard'], \
            'a VM JIT holds by now (read fresh from ARM) is left alone, however old Resource Graph is'
    finally:
        graph.thaw(world)
    assert _exposed(az.ok('vm', 'jit', 'exposure', '--subscriptions', fleet.subs[2])) == []
    tags = world.get(three.vms['rdp-guard']['id'])['tags']
    assert any(name.startswith(records.POLICY_TAG) for name in tags), tags


def _plant(world, vm, request_id, port, minutes, name='someone@contoso.test'):
    now = world.clock.now().replace(microsecond=0)
    rule = records.build_allow_rule(vm['id'], request_id, port, 'TCP', '198.51.100.9', vm['private_ip'],
                                    120 + port % 100, now + dt.timedelta(minutes=minutes), name)
    compute.place_rule(world, vm['nsg_id'], rule)
    return (vm['nsg_id'].lower(), rule['name'])


def _allow_rules(world, estates, due=False):
    """(NSG id, rule name) of the JIT allow rules in the estates' NSGs; with `due`, only those whose time is up by
    Azure's clock (other tests of this module may have left some, and moved the clock since)."""
    nsgs = {v['nsg_id'] for e in estates for v in e.vms.values() if v['nsg_id']}
    now = world.clock.now()
    return sorted((nsg.lower(), r['name']) for nsg in nsgs for r in world.get(nsg)['properties']['securityRules']
                  if r['name'].startswith('AzVmJit-Allow-') and (not due or records.parse_allow_description(
                      r['properties'].get('description') or '').until <= now))


def test_fleet_cleanup_removes_exactly_the_expired_rules_through_a_throttling_storm(fleet, faults):
    world, one, two = fleet.world, fleet.one, fleet.two
    vm1, vm2, vm3 = one.vms['deny-saves'], one.vms['nic-only'], two.vms['jit-vm']
    expired = [_plant(world, vm1, 'aaaa0001', 22, -30), _plant(world, vm1, 'aaaa0002', 23, -5),
               _plant(world, vm2, 'aaaa0003', 22, -60), _plant(world, vm3, 'bbbb0001', 22, -1)]
    kept = [_plant(world, vm1, 'aaaa0004', 24, 30), _plant(world, vm3, 'bbbb0002', 3389, 90)]
    graph.freeze(world)   # then ARM moves on: Resource Graph's answer is stale
    renewed = _plant(world, one.vms['nic-only'], 'aaaa0005', 23, 60)   # not in Resource Graph's snapshot
    gone = expired.pop()   # someone else removed it after Resource Graph's snapshot
    nsg_id = next(v['nsg_id'] for v in two.vms.values() if v['nsg_id'].lower() == gone[0])
    world.get(nsg_id)['properties']['securityRules'] = [
        r for r in world.get(nsg_id)['properties']['securityRules'] if r['name'] != gone[1]]
    storm = faults('DELETE', r'/securityRules/AzVmJit-Allow-', status=429, code='RetryableErrorDueToAnotherOperation',
                   message='Another operation is in progress.', retry_after=1, times=4)
    throttle = faults('POST', r'^/providers/Microsoft\.ResourceGraph/resources$', status=429, code='RateLimiting',
                      message='Too many requests.', retry_after=1, times=3)
    due = set(_allow_rules(world, [one, two, fleet.three], due=True))   # what ARM holds expired now
    assert set(expired) <= due
    try:
        mark = len(world.requests)
        result = fleet.az.run('vm', 'jit', 'cleanup', '--all-subscriptions')
    finally:
        graph.thaw(world)
    assert result.code == 0, result
    assert sorted((c['target'].lower().split('/securityrules/')[0], c['name']) for c in result.json['removed']) == \
        sorted(due)
    assert result.json['failed'] == [] and result.json['count'] == len(due)
    assert storm.hits == 4 and throttle.hits == 3
    left = _allow_rules(world, [one, two])
    assert not set(expired) & set(left) and set(kept) | {renewed} <= set(left)
    calls = world.requests[mark:]
    deletes = [r for r in calls if r.method == 'DELETE' and r.status < 400]
    assert len(deletes) == len(due), 'one delete per expired rule, none for what ARM no longer has'
    graph_path = '/providers/microsoft.resourcegraph/resources'
    answered = [r for r in calls if r.path.lower() == graph_path and r.status == 200]
    nsg_reads = [r for r in calls if r.method == 'GET' and re.search(r'/networkSecurityGroups/[^/]+$', r.path, re.I)]
    assert len(answered) == 1, 'one page of Resource Graph, read again after each 429'
    assert {vm['nsg_id'].lower() for vm in (vm1, vm2, vm3)} <= {r.path.lower() for r in nsg_reads} and \
        len(nsg_reads) == len({r.path.lower() for r in nsg_reads}), \
        'one fresh read per NSG Resource Graph showed with something due; none per VM'


def test_fleet_list_shows_jit_vms_of_every_subscription(fleet):
    az, one, two = fleet.az, fleet.one, fleet.two
    for vm in (one.vms['private-range'], two.vms['jit-vm']):
        az.ok('vm', 'jit', 'enable', '--ids', vm['id'], '--mode', 'nsg', '--yes')
    az.ok('vm', 'jit', 'request', '--ids', one.vms['private-range']['id'], '--ports', '22', '--source',
          '198.51.100.77', '--duration', '30')
    mark = len(fleet.world.requests)
    listing = az.ok('vm', 'jit', 'list', '--all-subscriptions')
    by_vm = {v['vm']: v for v in listing}
    assert {'private-range', 'jit-vm'} <= set(by_vm)
    assert by_vm['private-range']['subscription'] == fleet.subs[0] and by_vm['jit-vm']['subscription'] == fleet.subs[1]
    assert by_vm['private-range']['mode'] == 'nsg'
    assert [(r['status'], r['ports'][0]['source']) for r in by_vm['private-range']['requests']] == [
        ('active', '198.51.100.77')]
    assert not [r for r in fleet.world.requests[mark:] if re.search(
        r'/(networkInterfaces|networkSecurityGroups|virtualMachines)(/|$)', r.path, re.I)], \
        'VMs, NICs and NSGs come from Resource Graph, not from a read each'


def test_the_unattended_runner_cleans_every_subscription_it_can_read(fleet, az_env, standin, tmp_path):
    """`python -m azext_jit.runner --all-subscriptions`, as a Functions app's managed identity runs it, through
    Resource Graph: the expired rules of every subscription it may touch go, and it says so in its summary."""
    import json
    from tests.e2e.test_cleanup import _runner
    world, one, two = fleet.world, fleet.one, fleet.two
    runner = world.identities['function-app']
    for sub in fleet.subs[:2]:
        scope = '/subscriptions/' + sub
        if not any(a.principal_id == runner.object_id and a.scope == scope for a in world.assignments):
            world.assign(runner, 'Network Contributor', scope)
    mine = [_plant(world, one.vms['both-nic-closed'], 'cccc0001', 22, -20),
            _plant(world, two.vms['rdp-open'], 'cccc0002', 3389, -3)]
    done = _runner(az_env, standin, tmp_path, '--all-subscriptions')
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    removed = {(c['target'].lower().split('/securityrules/')[0], c['name']) for c in summary['removed']}
    assert set(mine) <= removed and summary['failed'] == []
    assert {fleet.subs[0].lower(), fleet.subs[1].lower()} <= {s.lower() for s in summary['scope']}
    assert not set(mine) & set(_allow_rules(world, [one, two]))
