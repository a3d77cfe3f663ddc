# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Every public door of a VM: JIT guards the primary IP configuration of the primary NIC, in both modes. Another
NIC or IP configuration with a public IP that lets any source reach a protected port would keep that port open
whatever JIT says, so `enable` refuses such a VM, naming the door and the rule; a door that is closed today is named
in a warning; `show` reports every such door and calls the VM not protected while one is open."""
import copy

import pytest

from tests.harness import ALLOW_ANY_SSH, ArmLog, enable, error_lines, jit, ok
from tests.standin import compute, network

SECOND_IP = '20.1.2.3'


def with_second_nic(standin, rg, name, rules=(ALLOW_ANY_SSH,)):
    """A VM whose second NIC has a public IP and an NSG of its own holding `rules`."""
    vm = standin.vm(rg, name)
    nsg = network.create_nsg(standin.world, standin.sub, rg, name + '-nic2-nsg', rules=rules)
    compute.add_nic(standin.world, vm['id'], name + '-nic2', '10.0.0.250', SECOND_IP, nsg['id'])
    return vm


@pytest.mark.parametrize('mode', ['defender', 'nsg'])
def test_enable_refuses_a_vm_whose_second_nic_lets_anyone_reach_ssh(az, standin, rg, mode):
    with_second_nic(standin, rg, 'web')
    log = ArmLog(standin.world)
    result = jit(az, 'enable', '-g', rg, '-n', 'web', '--yes', '--mode', mode)
    assert result.code == 1, result
    [line] = error_lines(result)
    assert 'NIC web-nic2' in line and SECOND_IP in line and '22/TCP' in line and 'AllowSshAny' in line
    assert 'az network nic ip-config update' in result.stderr and 'Traceback' not in result.stderr
    assert log.writes() == []


def test_enable_of_a_group_skips_a_vm_with_an_open_second_door_and_protects_the_rest(az, standin, rg):
    with_second_nic(standin, rg, 'open2')
    standin.vm(rg, 'plain')
    result = jit(az, 'enable', '-g', rg, '--yes')
    assert result.code == 0, result
    assert [v['vm'] for v in result.json] == ['plain']
    assert 'Skipped' in result.stderr and 'NIC open2-nic2' in result.stderr


@pytest.mark.usefixtures('defender_off')
def test_a_second_ip_configuration_opened_to_anyone_is_refused(az, standin, rg):
    vm = standin.vm(rg, 'api')
    only_second = copy.deepcopy(ALLOW_ANY_SSH)
    only_second['name'] = 'AllowSshToSecondIp'
    only_second['properties']['destinationAddressPrefix'] = '10.0.0.240'
    compute.place_rule(standin.world, vm['nsg_id'], only_second)
    compute.add_ip_config(standin.world, vm['nic_ids'][0], 'ipconfig2', '10.0.0.240', SECOND_IP)
    result = jit(az, 'enable', '-g', rg, '-n', 'api', '--yes')
    assert result.code == 1, result
    assert 'IP configuration ipconfig2' in result.stderr and 'AllowSshToSecondIp' in result.stderr


@pytest.mark.usefixtures('defender_off')
def test_an_allow_any_rule_that_enable_removes_does_not_count_against_a_second_ip_configuration(az, standin, rg):
    vm = standin.vm(rg, 'api2', rules=[ALLOW_ANY_SSH])   # destination *: the primary IP and the second one
    compute.add_ip_config(standin.world, vm['nic_ids'][0], 'ipconfig2', '10.0.0.241', SECOND_IP)
    result = jit(az, 'enable', '-g', rg, '-n', 'api2', '--yes')
    assert result.code == 0, result
    assert 'IP configuration ipconfig2' in result.stderr and 'not protected by JIT' in result.stderr


@pytest.mark.parametrize('mode', ['defender', 'nsg'])
def test_show_reports_a_public_door_jit_does_not_guard(az, standin, rg, mode):
    """Closed at enable time (no rule lets anyone in: a warning), then opened by hand: show says not protected."""
    with_second_nic(standin, rg, 'db', rules=())
    enabled = jit(az, 'enable', '-g', rg, '-n', 'db', '--yes', '--mode', mode)
    assert enabled.code == 0, enabled
    assert 'NIC db-nic2' in enabled.stderr and SECOND_IP in enabled.stderr and 'not protected by JIT' in enabled.stderr

    shown = jit(az, 'show', '-g', rg, '-n', 'db')
    assert shown.code == 0, shown
    [door] = shown.json['unprotectedPublicIps']
    assert (door['nic'], door['publicIp'], door['openPorts']) == ('db-nic2', SECOND_IP, [])
    assert shown.json['protected'] is True and 'NIC db-nic2' in shown.stderr

    compute.place_rule(standin.world, '/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/'
                       'networkSecurityGroups/db-nic2-nsg'.format(standin.sub, rg), ALLOW_ANY_SSH)
    shown = jit(az, 'show', '-g', rg, '-n', 'db')
    [door] = shown.json['unprotectedPublicIps']
    assert door['openPorts'] == ['22/TCP'] and door['openedBy'] == ['db-nic2-nsg/AllowSshAny']
    assert shown.json['protected'] is False
    assert 'any source reaches 22/TCP' in shown.stderr


def test_a_vm_with_one_nic_reports_no_public_door(az, standin, rg):
    standin.vm(rg, 'one')
    enable(az, rg, 'one')
    shown = ok(az, 'show', '-g', rg, '-n', 'one')
    assert shown['unprotectedPublicIps'] == []
