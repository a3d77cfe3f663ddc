"""NSG mode, review findings: disable order and healing, concurrent enables on one NSG, a detached NSG, and
expired rules nobody removed. The real `az vm jit` against the stand-in, as in test_nsg_mode.py.
"""
import json
from types import SimpleNamespace

import pytest

from tests.e2e.test_nsg_mode import enable, error_lines, jit_tags, product_rules, rules, writes_since
from tests.e2e.test_roles import readme_roles
from tests.standin.world import RoleDefinition

REQUESTER_ROLE = 'JIT VM Access Requester'


@pytest.fixture
def requester(az_as, standin):
    """Signed in with exactly the README's requester role: may write and delete rules, not tags."""
    world = standin.world
    role = readme_roles()[REQUESTER_ROLE]
    assert not any(a.startswith('Microsoft.Resources/tags') for a in role['Actions'])
    world.roles[REQUESTER_ROLE.lower()] = RoleDefinition(REQUESTER_ROLE, role['Actions'], role['NotActions'])
    if 'review-requester' not in world.identities:
        world.add_identity('review-requester', [(REQUESTER_ROLE, '/subscriptions/' + standin.sub)],
                           public_ip='198.51.100.90')
    return az_as('review-requester')


def policy_tags(standin, vm_id):
    return {k: v for k, v in jit_tags(standin, vm_id).items() if k.startswith('azvmjit-policy')}


def vm_rules(standin, vm):
    """This VM's rules of ours (its private IP is the destination of each)."""
    return [r for r in product_rules(standin, vm['nsg_id'])
            if r['properties']['destinationAddressPrefix'] == vm['private_ip']]


def detach_nsg(standin, vm):
    standin.world.get(vm['nic_ids'][0])['properties'].pop('networkSecurityGroup')


def reattach_nsg(standin, vm):
    standin.world.get(vm['nic_ids'][0])['properties']['networkSecurityGroup'] = {'id': vm['nsg_id']}


# -- 6. disable: the policy goes first; a half-done disable can be finished -------------------------------
def test_disable_without_tag_permission_touches_no_rule(az, requester, standin, rg, defender_off):
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    nsg_before, tags_before = rules(standin, vm['nsg_id']), jit_tags(standin, vm['id'])
    mark = len(standin.world.requests)

    refused = requester.run('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--yes')
    assert refused.code == 1, refused
    assert 'Microsoft.Resources/tags/write' in refused.stderr, refused
    assert not [w for w in writes_since(standin.world, mark) if 'securityRules' in w], \
        'a caller who may not remove the policy must not get to delete any rule'
    assert rules(standin, vm['nsg_id']) == nsg_before
    assert jit_tags(standin, vm['id']) == tags_before
    assert az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'vm1')['enabled'] is True

    az.ok('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--yes')
    assert product_rules(standin, vm['nsg_id']) == [] and jit_tags(standin, vm['id']) == {}


def test_disable_removes_rules_left_by_a_disable_cut_short(az, standin, rg, defender_off):
    world = standin.world
    vm1 = standin.vm(rg, 'vm1')
    vm2 = standin.vm(rg, 'vm2', nsg_name='vm1-nsg')
    enable(az, rg, 'vm1')
    enable(az, rg, 'vm2')
    az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--source', '198.51.100.7')
    az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm2', '--ports', '22', '--source', '198.51.100.8')
    other = vm_rules(standin, vm2)
    assert len(vm_rules(standin, vm1)) == 2 and len(other) == 2
    # An earlier disable removed the policy tag and stopped before the rules.
    tags = world.get(vm1['id'])['tags']
    for key in list(policy_tags(standin, vm1['id'])):
        del tags[key]

    leftovers = _nsg_backend(standin).leftover_rules(_target(standin, vm1))
    assert sorted(r['name'] for r in leftovers) == sorted(r['name'] for r in vm_rules(standin, vm1))
    assert _nsg_backend(standin).leftover_rules(_target(standin, vm2)) == [], 'vm2 still has its policy'

    mark = len(world.requests)
    planned = az.ok('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--mode', 'nsg', '--yes', '--dry-run')
    assert writes_since(world, mark) == []
    assert sorted(c['name'] for c in planned['changes'] if c['kind'] == 'rule') == sorted(r['name'] for r in leftovers)
    az.ok('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--mode', 'nsg', '--yes')
    assert vm_rules(standin, vm1) == []
    assert vm_rules(standin, vm2) == other, "another VM's rules on the shared NSG stay"


def _target(standin, vm):
    from azext_jit.targets import VmTarget
    body = standin.world.get(vm['id'])
    return VmTarget(vm['id'], vm['name'], vm['resource_group'], body.get('location'), tags=dict(body.get('tags') or {}),
                    private_ip=vm['private_ip'], nsg_id=vm['nsg_id'])


def _nsg_backend(standin):
    """NsgBackend over a minimal client that reads NSGs straight from the stand-in's world."""
    from azext_jit.backends.nsg import NsgBackend
    nsgs = SimpleNamespace(get=lambda rg, name: json.loads(json.dumps(standin.world.get(
        '/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/networkSecurityGroups/{}'.format(
            standin.sub, rg, name)))))
    return NsgBackend(SimpleNamespace(nsgs={}, network=SimpleNamespace(network_security_groups=nsgs)))


# -- 9. concurrent enables of VMs sharing one NSG ----------------------------------------------------------
def test_concurrent_enables_on_one_shared_nsg(az, standin, rg, defender_off):
    vms = [standin.vm(rg, 'c1')] + [standin.vm(rg, 'c{}'.format(i), nsg_name='c1-nsg') for i in (2, 3, 4)]
    assert len({v['nsg_id'] for v in vms}) == 1
    procs = [az.popen('vm', 'jit', 'enable', '-g', rg, '-n', v['name'], '--yes') for v in vms]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err[-1500:] for _, err in outputs]

    priorities = []
    for vm in vms:
        denies = [r for r in vm_rules(standin, vm) if r['properties']['access'] == 'Deny']
        assert len(denies) == 1, (vm['name'], denies)
        priorities.append(denies[0]['properties']['priority'])
        assert policy_tags(standin, vm['id'])
    assert len(set(priorities)) == 4, priorities
    assert all(990 <= p <= 1010 for p in priorities), priorities

    mark = len(standin.world.requests)
    again = enable(az, rg, 'c3')
    assert again['changes'] == [] and writes_since(standin.world, mark) == [], 'enable twice writes nothing'


# -- 10. an NSG-mode VM whose NSG was detached ---------------------------------------------------------------
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


# -- 8. expired rules still in the NSG -----------------------------------------------------------------------
def test_expired_rule_still_in_the_nsg_is_flagged_and_enable_removes_it(az, standin, rg, defender_off):
    world = standin.world
    vm1 = standin.vm(rg, 'vm1')
    standin.vm(rg, 'vm2', nsg_name='vm1-nsg')
    enable(az, rg, 'vm1')
    enable(az, rg, 'vm2')
    old = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--duration', '5',
                '--source', '198.51.100.11')
    other = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm2', '--ports', '22', '--duration', '5',
                  '--source', '198.51.100.12')
    world.clock.advance(minutes=10)

    [request] = az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'vm1')['requests']
    assert request['id'] == old['id'] and request['status'] == 'expired'
    assert [(p['status'], p['statusReason']) for p in request['ports']] == [('expired', 'ExpiredNotRemoved')]
    listing = az.ok('vm', 'jit', 'list', '-g', rg, '--status', 'expired')
    assert sorted((r['id'], p['statusReason']) for v in listing for r in v['requests'] for p in r['ports']) == \
        sorted([(old['id'], 'ExpiredNotRemoved'), (other['id'], 'ExpiredNotRemoved')])

    def allow_names():
        return [r['name'] for r in product_rules(standin, vm1['nsg_id'], 'Allow')]
    [old_rule] = [n for n in allow_names() if old['id'] in n]

    mark = len(world.requests)
    planned = enable(az, rg, 'vm1', '--dry-run')
    assert writes_since(world, mark) == []
    assert [(c['action'], c['name']) for c in planned['changes'] if c['kind'] == 'rule'] == [('delete', old_rule)]
    done = enable(az, rg, 'vm1')
    assert [(c['action'], c['name']) for c in done['changes'] if c['kind'] == 'rule'] == [('delete', old_rule)]
    assert old_rule not in allow_names()
    assert any(other['id'] in n for n in allow_names()), "another VM's expired rule is not this enable's business"
    assert az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'vm1')['requests'] == []

    mark = len(world.requests)
    assert enable(az, rg, 'vm1')['changes'] == [] and writes_since(world, mark) == []
