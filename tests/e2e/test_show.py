"""`az vm jit show` end to end."""


def test_show_vm_without_jit_says_so_and_how_to_enable(az, standin, rg):
    vm = standin.vm(rg, 'web1')
    result = az.run('vm', 'jit', 'show', '-g', rg, '-n', 'web1')
    assert result.code == 0, result
    body = result.json
    assert body['enabled'] is False and body['mode'] is None
    assert body['network']['privateIp'] == vm['private_ip']
    assert body['network']['publicIp'] == vm['public_ip']
    assert 'az vm jit enable -g {} -n web1'.format(rg) in result.stderr


def test_show_unknown_vm_exits_3(az, standin, rg):
    result = az.run('vm', 'jit', 'show', '-g', rg, '-n', 'nope')
    assert result.code == 3, result
    assert 'nope' in result.stderr
