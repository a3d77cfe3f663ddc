# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The fleet estate's ground truth (tests/standin/estate.py) holds for the world it builds.

Exposure is judged here by a small evaluator of its own, written from Azure's documented rules (inbound traffic meets
the subnet's NSG, then the NIC's; both must allow it; rules in priority order, default rules included; with no NSG a
Basic public IP lets everything in and a Standard one nothing), independent of the product and of the builder's
bookkeeping: the manifest must say what the world holds.
"""
import ipaddress
import re
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from tests.standin import security
from tests.standin.estate import (DECOY_SCENARIOS, EXPOSED_SCENARIOS, JIT_SCENARIOS, build_estate)
from tests.standin.world import World

WIDE_WORDS = {'*', 'any', 'internet', '0.0.0.0/0', '::/0'}
UNTIL = re.compile(r'open until (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)')


def _world():
    world = World()
    world.add_identity('admin', [('Owner', '/subscriptions/' + world.subscription_id)])
    return SimpleNamespace(world=world)


def _of_type(world, kind):
    return [b for b in world.resources.values() if b.get('type', '').lower() == kind.lower()]


def _list(props, singular, plural):
    return [props[singular]] if props.get(singular) else list(props.get(plural) or [])


def _wide(source):
    if source.lower() in WIDE_WORDS:
        return True
    try:
        net = ipaddress.ip_network(source)
    except ValueError:
        return False
    return net.prefixlen <= 16 and not net.is_private


def _covers(rule, number, private_ip):
    props = rule['properties']
    if props['direction'] != 'Inbound' or props['protocol'] not in ('Tcp', '*'):
        return False
    ports = _list(props, 'destinationPortRange', 'destinationPortRanges')
    if not any(p == '*' or int(p.split('-')[0]) <= number <= int(p.split('-')[-1]) for p in ports):
        return False
    for dest in _list(props, 'destinationAddressPrefix', 'destinationAddressPrefixes'):
        if dest in ('*', 'VirtualNetwork') or ('/' in dest or dest[0].isdigit()) and \
                ipaddress.ip_address(private_ip) in ipaddress.ip_network(dest):
            return True
    return False


def _lets_internet_in(nsg, number, private_ip):
    rules = nsg['properties']['securityRules'] + nsg['properties']['defaultSecurityRules']
    for rule in sorted(rules, key=lambda r: r['properties']['priority']):
        if not _covers(rule, number, private_ip):
            continue
        sources = _list(rule['properties'], 'sourceAddressPrefix', 'sourceAddressPrefixes')
        if rule['properties']['access'] == 'Allow' and any(_wide(s) for s in sources):
            return True
        if rule['properties']['access'] == 'Deny' and '*' in sources:
            return False
    return False


def _exposure(world):
    """{(VM id lower, '22/TCP')} judged from the world's resources alone."""
    found = set()
    for vm in _of_type(world, 'Microsoft.Compute/virtualMachines'):
        nic = world.get(vm['properties']['networkProfile']['networkInterfaces'][0]['id'])
        config = nic['properties']['ipConfigurations'][0]['properties']
        if not config.get('publicIPAddress'):
            continue
        pip = world.get(config['publicIPAddress']['id'])
        subnet_id = config['subnet']['id']
        vnet = world.get(subnet_id.split('/subnets/')[0])
        subnet = next(s for s in vnet['properties']['subnets'] if s['id'].lower() == subnet_id.lower())
        nsg_ids = [(subnet['properties'].get('networkSecurityGroup') or {}).get('id'),
                   (nic['properties'].get('networkSecurityGroup') or {}).get('id')]
        nsgs = [world.get(i) for i in nsg_ids if i]
        for number in (22, 3389):
            if nsgs:
                open_ = all(_lets_internet_in(nsg, number, config['privateIPAddress']) for nsg in nsgs)
            else:
                open_ = pip['sku']['name'] == 'Basic'
            if open_:
                found.add((vm['id'].lower(), '{}/TCP'.format(number)))
    return found


@pytest.fixture(scope='module')
def fleet():
    standin = _world()
    manifest = build_estate(standin)   # the benchmark's size: 5 subscriptions, 100 groups, 2,000 VMs
    return standin.world, manifest


def test_the_default_estate_has_the_asked_size_and_every_scenario(fleet):
    world, manifest = fleet
    assert len(manifest.subscriptions) == 5 and len(manifest.groups) == 100
    assert len(_of_type(world, 'Microsoft.Compute/virtualMachines')) == len(manifest.scenarios) == 2000
    assert len(manifest.exposed) == 200
    assert len(manifest.expired_rules) == 300 and manifest.open_rules
    for scenario in EXPOSED_SCENARIOS + DECOY_SCENARIOS + JIT_SCENARIOS + ('plain',):
        assert manifest.count(scenario) >= 1, scenario
    skus = [(p.get('sku') or {}).get('name') for p in _of_type(world, 'Microsoft.Network/publicIPAddresses')]
    assert {'Basic', 'Standard'} <= set(skus)
    assert len(skus) < 2000, 'some VMs have no public IP'
    assert {g[0] for g in manifest.groups} == set(manifest.subscriptions)


def test_exposure_judged_from_the_world_is_exactly_the_manifests(fleet):
    world, manifest = fleet
    assert _exposure(world) == manifest.exposed_pairs()


def test_the_unprotected_jit_vms_are_exactly_the_exposed_ones_with_nsg_mode_jit(fleet):
    world, manifest = fleet
    nsg_mode = {vm.lower() for vm, mode in manifest.jit.items() if mode == 'nsg'}
    exposed_jit = {vm for vm, _ in _exposure(world) if vm in nsg_mode}
    assert exposed_jit == {vm.lower() for vm in manifest.unprotected} and exposed_jit


def test_addresses_are_unique_across_the_fleet(fleet):
    world, _ = fleet
    private = [c['properties']['privateIPAddress'] for n in _of_type(world, 'Microsoft.Network/networkInterfaces')
               for c in n['properties']['ipConfigurations']]
    public = [p['properties']['ipAddress'] for p in _of_type(world, 'Microsoft.Network/publicIPAddresses')]
    assert len(private) == len(set(private)) == 2000
    assert len(public) == len(set(public))


def test_nsgs_are_shared_per_subnet_and_some_per_nic_with_unique_priorities(fleet):
    world, _ = fleet
    nsgs = _of_type(world, 'Microsoft.Network/networkSecurityGroups')
    subnet_nsgs = {s['properties']['networkSecurityGroup']['id'].lower()
                   for v in _of_type(world, 'Microsoft.Network/virtualNetworks') for s in v['properties']['subnets']
                   if s['properties'].get('networkSecurityGroup')}
    nics_per_subnet = {}
    for nic in _of_type(world, 'Microsoft.Network/networkInterfaces'):
        subnet_id = nic['properties']['ipConfigurations'][0]['properties']['subnet']['id'].lower()
        nics_per_subnet[subnet_id] = nics_per_subnet.get(subnet_id, 0) + 1
    shared = [s for v in _of_type(world, 'Microsoft.Network/virtualNetworks') for s in v['properties']['subnets']
              if s['properties'].get('networkSecurityGroup') and nics_per_subnet.get(s['id'].lower(), 0) > 1]
    assert len(shared) > 100, 'subnet NSGs govern several VMs each'
    assert len(subnet_nsgs) == 200 and len(nsgs) > 200
    for nsg in nsgs:
        priorities = [r['properties']['priority'] for r in nsg['properties']['securityRules']]
        assert len(priorities) == len(set(priorities)), nsg['id']
        assert all(100 <= p <= 4096 for p in priorities)


def test_expired_and_open_rules_are_where_the_manifest_says_with_their_end_times(fleet):
    world, manifest = fleet
    now = world.clock.now()
    for pairs, expired in ((manifest.expired_rules, True), (manifest.open_rules, False)):
        for nsg_id, name in pairs:
            [rule] = [r for r in world.get(nsg_id)['properties']['securityRules'] if r['name'] == name]
            assert rule['properties']['access'] == 'Allow' and name.startswith('AzVmJit-Allow-')
            until = datetime.strptime(UNTIL.match(rule['properties']['description'].split(': ', 1)[1]).group(1),
                                      '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=timezone.utc)
            assert (until < now) == expired, (name, until, now)
    allow = {(n['id'].lower(), r['name']) for n in _of_type(world, 'Microsoft.Network/networkSecurityGroups')
             for r in n['properties']['securityRules'] if r['name'].startswith('AzVmJit-Allow-')}
    assert allow == {(n.lower(), r) for n, r in manifest.expired_rules + manifest.open_rules}
    assert {n.lower() for n, _ in manifest.expired_rules} != {n.lower() for n, _ in manifest.open_rules}
    assert len({n.split('/')[2] for n, _ in manifest.expired_rules}) == 5, 'expired rules in every subscription'
    requests = sum(len(r) for r in manifest.requests.values())
    assert requests == len(manifest.expired_rules) + len(manifest.open_rules)


def test_jit_vms_carry_their_policy_and_deny_rules(fleet):
    world, manifest = fleet
    security.settle(world)
    for vm_id, mode in manifest.jit.items():
        vm = world.get(vm_id)
        nic = world.get(vm['properties']['networkProfile']['networkInterfaces'][0]['id'])
        ip = nic['properties']['ipConfigurations'][0]['properties']['privateIPAddress']
        nsg_id = (nic['properties'].get('networkSecurityGroup') or {}).get('id')
        if not nsg_id:
            subnet_id = nic['properties']['ipConfigurations'][0]['properties']['subnet']['id']
            vnet = world.get(subnet_id.split('/subnets/')[0])
            nsg_id = next(s for s in vnet['properties']['subnets']
                          if s['id'].lower() == subnet_id.lower())['properties']['networkSecurityGroup']['id']
        denies = [r for r in world.get(nsg_id)['properties']['securityRules']
                  if r['properties']['access'] == 'Deny' and r['properties']['destinationAddressPrefix'] == ip]
        prefix = 'AzVmJit-Deny-' if mode == 'nsg' else 'SecurityCenter-JITRule'
        assert [r['name'][:len(prefix)] for r in denies] == [prefix], (vm_id, [r['name'] for r in denies])
        assert ('azvmjit-policy' in vm['tags']) == (mode == 'nsg')
    defender = [v for v, m in manifest.jit.items() if m == 'defender']
    policies = {e['id'].lower() for p in _of_type(world, 'Microsoft.Security/locations/jitNetworkAccessPolicies')
                for e in p['properties']['virtualMachines']}
    assert {v.lower() for v in defender} == policies


def test_subscriptions_are_known_and_owned_by_the_admin(fleet):
    world, manifest = fleet
    admin = world.identities['admin']
    for sub in manifest.subscriptions:
        assert sub in world.subscriptions
        assert world.is_authorized(admin, 'Microsoft.Network/networkSecurityGroups/securityRules/delete',
                                   '/subscriptions/{}/resourceGroups/fleet-000'.format(sub))


def test_a_small_estate_is_the_same_for_the_same_seed():
    first, second = _world(), _world()
    one = build_estate(first, subscriptions=2, groups=4, vms=120, exposed=14, expired_rules=10, seed=3)
    two = build_estate(second, subscriptions=2, groups=4, vms=120, exposed=14, expired_rules=10, seed=3)
    assert one.scenarios == two.scenarios and one.expired_rules == two.expired_rules
    assert one.exposed == two.exposed and one.requests == two.requests
    assert len(one.exposed) == 14 and len(one.expired_rules) == 10
    assert _exposure(first.world) == one.exposed_pairs()


def test_too_few_vms_for_the_exposed_and_decoys_is_refused():
    with pytest.raises(ValueError, match='too few'):
        build_estate(_world(), subscriptions=1, groups=1, vms=20, exposed=15, expired_rules=1)
