# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""`az vm jit disable` end to end: which removed rules come back and when, the policy going before the rules,
and finishing a disable that was cut short.
"""
import pytest

from tests.harness import (ALLOW_ANY_SSH, enable, jit_tags, policy_tags, product_rules, readme_roles, rules,
                           rules_by_name, vm_rules, writes_since)
from tests.standin.world import RoleDefinition

REQUESTER_ROLE = 'JIT VM Access Requester'


@pytest.fixture
def requester(az_as, standin):
    """Signed in with exactly the README's requester role: may write and delete rules, not tags."""
    world = standin.world
    role = readme_roles()[REQUESTER_ROLE]
    assert not any(a.startswith('Microsoft.Resources/tags') for a in role['Actions'])
    world.roles[REQUESTER_ROLE.lower()] = RoleDefinition(REQUESTER_ROLE, role['Actions'], role['NotActions'])
    if 'readme-requester' not in world.identities:
        world.add_identity('readme-requester', [(REQUESTER_ROLE, '/subscriptions/' + standin.sub)],
                           public_ip='198.51.100.90')
    return az_as('readme-requester')


# -- a removed rule comes back only when nothing protects the port any more ------------------------------------
def test_disable_in_one_mode_keeps_removed_rules_away_while_the_other_mode_still_protects(az, standin, rg):
    vm = standin.vm(rg, 'both', rules=[ALLOW_ANY_SSH])
    az.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'both', '--ports', '22', '--mode', 'defender', '--yes')
    az.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'both', '--ports', '22', '--mode', 'nsg', '--yes')
    result = az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'both', '--mode', 'defender', '--yes')
    assert result.code == 0, result
    assert 'still protected in nsg mode' in result.stderr
    assert 'AllowSshAny' not in rules_by_name(standin, vm['nsg_id'])
    assert az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'both')['mode'] == 'nsg'
    az.ok('vm', 'jit', 'disable', '-g', rg, '-n', 'both', '--yes')
    assert rules_by_name(standin, vm['nsg_id'])['AllowSshAny']['properties']['priority'] == 300


def test_disable_in_a_mode_the_vm_is_not_in_changes_nothing(az, standin, rg):
    vm = standin.vm(rg, 'nsgonly', rules=[ALLOW_ANY_SSH])
    az.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'nsgonly', '--ports', '22', '--mode', 'nsg', '--yes')
    before = rules_by_name(standin, vm['nsg_id'])
    result = az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'nsgonly', '--mode', 'defender', '--yes')
    assert result.code == 0 and result.json['changes'] == [], result
    assert rules_by_name(standin, vm['nsg_id']) == before


def test_a_shared_allow_any_rule_stays_removed_while_another_vm_of_the_nsg_is_protected(az, standin, rg):
    first = standin.vm(rg, 'vma', rules=[ALLOW_ANY_SSH])
    standin.vm(rg, 'vmb', nsg_name='vma-nsg')
    az.ok('vm', 'jit', 'enable', '-g', rg, '--ports', '22', '--mode', 'nsg', '--yes')
    result = az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'vma', '--yes')
    assert result.code == 0, result
    assert "'AllowSshAny' stays removed" in result.stderr
    assert 'AllowSshAny' not in rules_by_name(standin, first['nsg_id'])
    az.ok('vm', 'jit', 'disable', '-g', rg, '-n', 'vmb', '--yes')
    assert 'AllowSshAny' in rules_by_name(standin, first['nsg_id'])


# -- the policy goes first; a half-done disable can be finished ------------------------------------------------
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

    leftovers = vm_rules(standin, vm1)

    mark = len(world.requests)
    planned = az.ok('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--mode', 'nsg', '--yes', '--dry-run')
    assert writes_since(world, mark) == []
    assert sorted(c['name'] for c in planned['changes'] if c['kind'] == 'rule') == sorted(r['name'] for r in leftovers)
    az.ok('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--mode', 'nsg', '--yes')
    assert vm_rules(standin, vm1) == []
    assert vm_rules(standin, vm2) == other, "another VM's rules on the shared NSG stay"
