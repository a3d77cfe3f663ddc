"""Defects a review found across modes, each shown the way a user would meet it."""
from tests.standin.world import Fault

ALLOW_ANY_SSH = {'name': 'AllowSshAny', 'properties': {
    'priority': 300, 'direction': 'Inbound', 'access': 'Allow', 'protocol': 'Tcp', 'sourcePortRange': '*',
    'destinationPortRange': '22', 'sourceAddressPrefix': '*', 'destinationAddressPrefix': '*'}}


def _rules(standin, nsg_id):
    return {r['name']: r for r in standin.nsg_rules(nsg_id)}


def test_disable_in_one_mode_keeps_removed_rules_away_while_the_other_mode_still_protects(az, standin, rg):
    vm = standin.vm(rg, 'both', rules=[ALLOW_ANY_SSH])
    az.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'both', '--ports', '22', '--mode', 'defender', '--yes')
    az.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'both', '--ports', '22', '--mode', 'nsg', '--yes')
    result = az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'both', '--mode', 'defender', '--yes')
    assert result.code == 0, result
    assert 'still protected in nsg mode' in result.stderr
    assert 'AllowSshAny' not in _rules(standin, vm['nsg_id'])
    assert az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'both')['mode'] == 'nsg'
    az.ok('vm', 'jit', 'disable', '-g', rg, '-n', 'both', '--yes')
    assert _rules(standin, vm['nsg_id'])['AllowSshAny']['properties']['priority'] == 300


def test_disable_in_a_mode_the_vm_is_not_in_changes_nothing(az, standin, rg):
    vm = standin.vm(rg, 'nsgonly', rules=[ALLOW_ANY_SSH])
    az.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'nsgonly', '--ports', '22', '--mode', 'nsg', '--yes')
    before = _rules(standin, vm['nsg_id'])
    result = az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'nsgonly', '--mode', 'defender', '--yes')
    assert result.code == 0 and result.json['changes'] == [], result
    assert _rules(standin, vm['nsg_id']) == before


def test_a_shared_allow_any_rule_stays_removed_while_another_vm_of_the_nsg_is_protected(az, standin, rg):
    first = standin.vm(rg, 'vma', rules=[ALLOW_ANY_SSH])
    standin.vm(rg, 'vmb', nsg_name='vma-nsg')
    az.ok('vm', 'jit', 'enable', '-g', rg, '--ports', '22', '--mode', 'nsg', '--yes')
    result = az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'vma', '--yes')
    assert result.code == 0, result
    assert "'AllowSshAny' stays removed" in result.stderr
    assert 'AllowSshAny' not in _rules(standin, first['nsg_id'])
    az.ok('vm', 'jit', 'disable', '-g', rg, '-n', 'vmb', '--yes')
    assert 'AllowSshAny' in _rules(standin, first['nsg_id'])


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
    assert 'AllowSshToWeb' not in _rules(standin, vm['nsg_id'])


def test_cleanup_that_cannot_remove_a_rule_fails(az, standin, rg):
    standin.vm(rg, 'stuck')
    az.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'stuck', '--ports', '22', '--mode', 'nsg')
    az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'stuck', '--ports', '22', '--duration', '5', '--source', '1.2.3.4')
    standin.world.clock.advance(minutes=10)
    fault = Fault('DELETE', r'/networkSecurityGroups/stuck-nsg/securityRules/AzVmJit-Allow', status=403,
                  code='AuthorizationFailed', times=5, message=(
                      "The client 'x' with object id 'y' does not have authorization to perform action "
                      "'Microsoft.Network/networkSecurityGroups/securityRules/delete' over scope '/s' or the scope "
                      "is invalid."))
    standin.world.faults.append(fault)
    try:
        result = az.run('vm', 'jit', 'cleanup', '-g', rg)
    finally:
        standin.world.faults.remove(fault)
    assert result.code == 1, result
    assert 'could not be removed' in result.stderr and 'securityRules/delete' in result.stderr


def test_all_is_not_narrowed_by_configured_defaults(az, standin, rg):
    standin.vm(rg, 'd1')
    standin.vm(rg + 'x', 'd2')
    az.ok('configure', '--defaults', 'group={}'.format(rg), 'vm=d1', output=None)
    try:
        enabled = az.ok('vm', 'jit', 'enable', '--all', '--ports', '22', '--mode', 'nsg', '--yes')
    finally:
        az.ok('configure', '--defaults', 'group=', 'vm=', output=None)
    assert {'d1', 'd2'} <= {e['vm'] for e in enabled}


def test_plain_http_ip_echo_is_refused(az, standin, rg):
    standin.vm(rg, 'echo')
    az.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'echo', '--ports', '22', '--mode', 'nsg')
    result = az.run('vm', 'jit', 'request', '-g', rg, '-n', 'echo', '--ports', '22',
                    extra_env={'AZURE_JIT_MY_IP_URL': 'http://127.0.0.1:9/ip'})
    assert result.code == 2, result
    assert 'not HTTPS' in result.stderr
