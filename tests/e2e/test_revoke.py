# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""`az vm jit revoke` in Defender mode: it finds Defender's allow rule for the request whatever way the source is
written, and never claims to have closed a port it could not close.
"""
import pytest

from tests.harness import ArmLog, defender_rules, jit, ok, vm_tags


@pytest.fixture
def open_request(az, standin, rg):
    """A VM with port 22 open through Defender for 198.51.100.7: (vm, request answer, Defender's allow rule)."""
    vm = standin.vm(rg, 'rev')
    ok(az, 'enable', '-g', rg, '-n', 'rev', '--ports', '22', '3389', '--yes')
    answer = ok(az, 'request', '-g', rg, '-n', 'rev', '--ports', '22', '--source', '198.51.100.7', '--duration', '30')
    [allow] = defender_rules(standin, vm, 'Allow')
    assert allow['properties']['sourceAddressPrefix'] == '198.51.100.7'
    return vm, answer, allow


def _edit_rule(standin, vm, name, **props):
    with standin.world.lock:
        rule = next(r for r in standin.nsg_rules(vm['nsg_id']) if r['name'] == name)
        rule['properties'].update(props)


def _request_status(az, rg, request_id):
    shown = ok(az, 'show', '-g', rg, '-n', 'rev')
    return next(r['status'] for r in shown['requests'] if r['id'] == request_id)


def test_revoke_deletes_a_rule_whose_source_defender_wrote_as_a_32(az, standin, rg, open_request):
    vm, answer, allow = open_request
    _edit_rule(standin, vm, allow['name'], sourceAddressPrefix='198.51.100.7/32')
    revoked = ok(az, 'revoke', '-g', rg, '-n', 'rev')
    assert revoked['revoked'] == [answer['id']]
    assert defender_rules(standin, vm, 'Allow') == [], 'the port is still open after revoke'
    assert len(defender_rules(standin, vm, 'Deny')) == 1
    assert _request_status(az, rg, answer['id']) == 'revoked'


def test_revoke_refuses_when_the_ports_rule_does_not_match_and_changes_nothing(az, standin, rg, open_request):
    vm, answer, allow = open_request
    _edit_rule(standin, vm, allow['name'], sourceAddressPrefix='203.0.113.99')
    tags = vm_tags(standin, vm)
    log = ArmLog(standin.world)
    result = jit(az, 'revoke', '-g', rg, '-n', 'rev')
    assert result.code == 1, result
    assert allow['name'] in result.stderr and '203.0.113.99' in result.stderr, result.stderr
    assert log.writes() == [], log.summary()
    assert [r['name'] for r in defender_rules(standin, vm, 'Allow')] == [allow['name']]
    assert vm_tags(standin, vm) == tags, 'a revocation was recorded although nothing was closed'
    assert _request_status(az, rg, answer['id']) == 'active'


def test_revoke_of_a_port_whose_rule_is_already_gone_succeeds(az, standin, rg, open_request):
    vm, answer, allow = open_request
    with standin.world.lock:
        rules = standin.nsg_rules(vm['nsg_id'])
        rules.remove(next(r for r in rules if r['name'] == allow['name']))
    standin.world.clock.advance(minutes=3)   # long after Defender wrote it: the rule will not come back
    assert _request_status(az, rg, answer['id']) == 'revoked', 'a port with no allow rule is not open'
    revoked = ok(az, 'revoke', '-g', rg, '-n', 'rev')
    assert revoked['revoked'] == []
    assert not [c for c in revoked['changes'] if c['kind'] == 'rule']
    assert _request_status(az, rg, answer['id']) == 'revoked'
