# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""`az vm jit show` end to end: what it says about a VM, and how it tells the user to connect."""
import datetime as dt

from tests.harness import LOCATION, ok, request_body
from tests.standin import security


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


def test_connect_hint_behind_a_firewall_uses_its_address_and_the_mapped_port(az, standin, rg):
    world = standin.world
    vm = standin.vm(rg, 'fw')
    firewall = '192.0.2.80'
    now = world.clock.now()
    entry = dict(security.jit_vm(vm['id'], ports=(22, 3389)), publicIpAddress=firewall)
    security.add_policy(world, rg, LOCATION, [entry], requests=[
        request_body(vm, now, now + dt.timedelta(hours=1), [(22, {'mappedPort': 50022}), 3389])])

    shown = ok(az, 'show', '-g', rg, '-n', 'fw')
    listed = ok(az, 'list', '-g', rg)[0]      # list reads no NIC, so it knows the firewall's address only
    for view in (shown, listed):
        [request] = view['requests']
        hints = {h['port']: h for h in request['connect']}
        assert hints[22]['address'] == '{}:50022'.format(firewall), hints
        assert hints[22]['mappedPort'] == 50022
        assert hints[22]['command'] == 'ssh <user>@{} -p 50022'.format(firewall)
    # A port the firewall does not map is reached directly, on the VM's own public IP.
    [request] = shown['requests']
    assert request['connect'][1] == {'port': 3389, 'address': '{}:3389'.format(vm['public_ip']),
                                     'command': 'mstsc /v:{}:3389'.format(vm['public_ip'])}
