# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Names are not proof: a rule named like JIT's own, or a record in JIT's tags, can be written by anyone with rule
or tag write permission. What the extension does with them must not depend on the name alone."""
import pytest

from tests.harness import enable, rules_by_name

OPEN_SSH = {'priority': 150, 'direction': 'Inbound', 'access': 'Allow', 'protocol': 'Tcp', 'sourcePortRange': '*',
            'destinationPortRange': '22', 'sourceAddressPrefix': '*', 'destinationAddressPrefix': '*'}


def _add_rule(az, rg, vm, name):
    az.ok('network', 'nsg', 'rule', 'create', '-g', rg, '--nsg-name', vm['nsg_id'].split('/')[-1], '-n', name,
          '--priority', '150', '--access', 'Allow', '--protocol', 'Tcp', '--direction', 'Inbound',
          '--source-address-prefixes', '*', '--destination-address-prefixes', '*', '--destination-port-ranges', '22')


def test_a_rule_named_like_jits_that_lets_anyone_in_is_reported_and_removed_by_enable(az, standin, rg, defender_off):
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1', '--ports', '22')
    name = 'AzVmJit-Allow-x'
    _add_rule(az, rg, vm, name)

    shown = az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'vm1')
    assert shown['protected'] is False, 'an allow-any rule ahead of the deny rule opens port 22, whatever its name'

    result = az.run('vm', 'jit', 'enable', '-g', rg, '-n', 'vm1', '--ports', '22', '--yes')
    assert result.code == 0, result
    assert name not in rules_by_name(standin, vm['nsg_id'])
    assert az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'vm1')['protected'] is True


@pytest.mark.parametrize('value', ['1', '[1]', '{"ports":5}', '{"end":"garbage"}', '{"at":12}'])
def test_a_revocation_record_of_another_shape_neither_breaks_show_nor_hides_access(az, standin, rg, defender_off,
                                                                                   value):
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1', '--ports', '22')
    request = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--source', '198.51.100.7')
    standin.world.get(vm['id'])['tags'][f"azvmjit-revoked-{request['id']}"] = value

    shown = az.run('vm', 'jit', 'show', '-g', rg, '-n', 'vm1')
    assert shown.code == 0 and 'Traceback' not in shown.stderr, shown
    assert [r['status'] for r in shown.json['requests'] if r['id'] == request['id']] == ['active']
    closed = az.run('vm', 'jit', 'revoke', '-g', rg, '-n', 'vm1', '--request-id', request['id'])
    assert closed.code == 0 and closed.json['revoked'] == [request['id']], closed
