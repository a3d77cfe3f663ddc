# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""A VM is reported protected only while its deny rule is in the NSG: an NSG-mode `enable` whose deny rule write is
refused takes its policy back, and a deny rule removed afterwards (by hand) makes `show` and `list` say so."""
from tests.harness import enable, jit_tags, policy_tags, product_rules, writes_since


def test_enable_whose_deny_rule_is_refused_leaves_no_policy_behind(az, standin, rg, defender_off, faults):
    world = standin.world
    vm = standin.vm(rg, 'vm1')
    faults('PUT', r'/securityRules/AzVmJit-Deny-', status=403, code='AuthorizationFailed',
           message="The client does not have authorization to perform action "
                   "'Microsoft.Network/networkSecurityGroups/securityRules/write'.", times=1)
    failed = az.run('vm', 'jit', 'enable', '-g', rg, '-n', 'vm1', '--yes')
    assert failed.code != 0, failed
    assert policy_tags(standin, vm['id']) == {}, 'no policy may say "protected" without its deny rule'
    assert product_rules(standin, vm['nsg_id']) == []
    shown = az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'vm1')
    assert shown['enabled'] is False
    mark = len(world.requests)
    az.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'vm1', '--yes')   # the fault is spent: the next run succeeds
    assert writes_since(world, mark) and az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'vm1')['protected'] is True


def test_a_deny_rule_removed_by_hand_makes_show_and_list_say_not_protected(az, standin, rg, defender_off):
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    assert az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'vm1')['protected'] is True
    [deny] = product_rules(standin, vm['nsg_id'], 'Deny')
    az.ok('network', 'nsg', 'rule', 'delete', '-g', rg, '--nsg-name', vm['nsg_id'].split('/')[-1], '-n',
          deny['name'], output=None)

    shown = az.run('vm', 'jit', 'show', '-g', rg, '-n', 'vm1')
    assert shown.code == 0 and shown.json['enabled'] is True and shown.json['protected'] is False
    assert 'is not protected' in shown.stderr and '22/TCP' in shown.stderr
    [listed] = az.ok('vm', 'jit', 'list', '-g', rg)
    assert listed['protected'] is False
    table = az.run('vm', 'jit', 'list', '-g', rg, output='table')
    assert 'NOT protected' in table.stdout
    assert jit_tags(standin, vm['id']), 'the policy stays: enable again puts the deny rule back'
    az.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'vm1', '--yes')
    assert az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'vm1')['protected'] is True
