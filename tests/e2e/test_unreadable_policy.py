# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""An NSG-mode policy in the VM's tags that cannot be read or that `enable` would have refused (an older version's
port 0, a part of the record lost, a hand edit to 30 days) never makes a VM look unprotected: its access can still
be seen and revoked and the VM disabled, and a request is refused with one line that says how to repair it."""
import json

import pytest

from tests.harness import enable, error_lines, jit_tags, policy_tags, product_rules, writes_since

PORT_ZERO = json.dumps({'ports': [{'number': 0, 'protocol': 'TCP', 'maxDuration': 'PT3H', 'allowedSources': ['*']}],
                        'requireApproval': False}, separators=(',', ':'))
THIRTY_DAYS = PORT_ZERO.replace('"number":0', '"number":22').replace('PT3H', 'P30D')
DAMAGED = {'port zero': PORT_ZERO, 'part missing': PORT_ZERO[:40], 'thirty days': THIRTY_DAYS}


@pytest.mark.parametrize('damage', sorted(DAMAGED))
def test_a_vm_with_an_unreadable_policy_can_still_be_seen_revoked_and_disabled(az, standin, rg, defender_off,
                                                                               damage):
    world = standin.world
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    opened = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--source', '198.51.100.9')
    tags = world.get(vm['id'])['tags']
    for key in policy_tags(standin, vm['id']):
        del tags[key]
    tags['azvmjit-policy'] = DAMAGED[damage]

    shown = az.run('vm', 'jit', 'show', '-g', rg, '-n', 'vm1')
    assert shown.code == 0, shown
    assert shown.json['enabled'] and shown.json['mode'] == 'nsg'
    assert [r['id'] for r in shown.json['requests'] if r['status'] == 'active'] == [opened['id']]
    assert 'cannot be read' in shown.stderr

    mark = len(world.requests)
    refused = az.run('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '3389', '--source', '198.51.100.9')
    assert refused.code == 1 and 'Traceback' not in refused.stderr
    assert len(error_lines(refused)) == 1 and 'cannot be read' in error_lines(refused)[0]
    assert 'az vm jit enable' in refused.stderr, 'the error says how to write the policy again'
    assert writes_since(world, mark) == []

    revoked = az.ok('vm', 'jit', 'revoke', '-g', rg, '-n', 'vm1')
    assert revoked['revoked'] == [opened['id']]
    assert product_rules(standin, vm['nsg_id'], 'Allow') == []

    az.ok('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--yes')
    assert product_rules(standin, vm['nsg_id']) == [] and jit_tags(standin, vm['id']) == {}
