# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""What any az user expects of a command group: configured defaults, --ids, --all, resilience to throttling."""
from tests.standin.world import Fault


def test_configured_defaults_name_the_vm(az_as, standin, rg):
    vm = standin.vm(rg, 'defaulted')
    az = az_as('admin')
    az.ok('configure', '--defaults', 'group={}'.format(rg), 'vm=defaulted', output=None)
    try:
        shown = az.ok('vm', 'jit', 'show')
    finally:
        az.ok('configure', '--defaults', 'group=', 'vm=', output=None)
    assert shown['vm'] == 'defaulted' and shown['network']['privateIp'] == vm['private_ip']


def test_ids_take_several_vms_at_once(az, standin, rg):
    ids = [standin.vm(rg, name)['id'] for name in ('ids1', 'ids2')]
    enabled = az.ok('vm', 'jit', 'enable', '--ids', *ids, '--ports', '22', '--mode', 'nsg')
    assert sorted(e['vm'] for e in enabled) == ['ids1', 'ids2']
    shown = az.ok('vm', 'jit', 'show', '--ids', *ids)
    assert [s['enabled'] for s in shown] == [True, True]


def test_enable_all_covers_every_vm_of_the_subscription_and_skips_what_it_cannot_protect(az, standin, rg):
    standin.vm(rg, 'all1')
    standin.vm(rg + 'b', 'all2')
    standin.vm(rg, 'private', public_ip=False)
    result = az.run('vm', 'jit', 'enable', '--all', '--ports', '22', '--yes', '--mode', 'nsg')
    assert result.code == 0, result
    names = {e['vm'] for e in result.json}
    assert {'all1', 'all2'} <= names and 'private' not in names
    assert "'private'" in result.stderr and 'Bastion' in result.stderr
    listed = {v['vm'] for v in az.ok('vm', 'jit', 'list')}
    assert {'all1', 'all2'} <= listed


def test_all_is_not_narrowed_by_configured_defaults(az, standin, rg):
    standin.vm(rg, 'd1')
    standin.vm(rg + 'x', 'd2')
    az.ok('configure', '--defaults', 'group={}'.format(rg), 'vm=d1', output=None)
    try:
        enabled = az.ok('vm', 'jit', 'enable', '--all', '--ports', '22', '--mode', 'nsg', '--yes')
    finally:
        az.ok('configure', '--defaults', 'group=', 'vm=', output=None)
    assert {'d1', 'd2'} <= {e['vm'] for e in enabled}


def test_throttled_rule_write_is_retried_after_retry_after(az, standin, rg):
    """The Network RP answers 429 (RetryableErrorDueToAnotherOperation) while another operation holds the NSG;
    the request goes through once Azure lets it."""
    standin.vm(rg, 'busy')
    az.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'busy', '--ports', '22', '--mode', 'nsg')
    world = standin.world
    fault = Fault('PUT', r'/networkSecurityGroups/busy-nsg/securityRules/AzVmJit-Allow', status=429,
                  code='RetryableErrorDueToAnotherOperation', retry_after=1, times=1,
                  message='Operation is not allowed because another operation is in progress on the resource.')
    world.faults.append(fault)
    try:
        answer = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'busy', '--ports', '22', '--source', '198.51.100.9')
    finally:
        world.faults.remove(fault)
    assert fault.hits == 1
    assert answer['status'] == 'active'
    allows = [r for r in standin.nsg_rules(_nsg_id(standin, rg, 'busy')) if r['properties']['access'] == 'Allow']
    assert len(allows) == 1


def test_server_error_mid_request_leaves_no_half_open_access(az, standin, rg):
    """Two ports, and the second rule write fails for good: the first rule is taken back, nothing stays open."""
    standin.vm(rg, 'flaky')
    az.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'flaky', '--ports', '22', '3389', '--mode', 'nsg')
    fault = Fault('PUT', r'/networkSecurityGroups/flaky-nsg/securityRules/AzVmJit-Allow-.*-3389-', status=400,
                  code='InvalidRequestFormat', message='Refused for the test.', times=50)
    standin.world.faults.append(fault)
    try:
        result = az.run('vm', 'jit', 'request', '-g', rg, '-n', 'flaky', '--source', '198.51.100.9')
    finally:
        standin.world.faults.remove(fault)
    assert result.code == 1, result
    assert not [r for r in standin.nsg_rules(_nsg_id(standin, rg, 'flaky')) if r['properties']['access'] == 'Allow']


def _nsg_id(standin, rg, vm):
    return '/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/networkSecurityGroups/{}-nsg'.format(
        standin.sub, rg, vm)
