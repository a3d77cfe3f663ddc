# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""How much access may be open on one VM: at most 4 open requests per person, and 50 open ports of all requests
together. Beyond either, `request` is refused with one line that says how to free room (exit 2, nothing written);
closing access frees it again."""
import pytest

from tests.harness import ArmLog, enable, error_lines, jit, ok, product_rules

REQUESTER_IP = '198.51.100.20'


def ask(az_as_person, rg, vm, *ports):
    return jit(az_as_person, 'request', '-g', rg, '-n', vm, '--ports', *ports, '--source', REQUESTER_IP,
               '--duration', '60')


@pytest.mark.usefixtures('defender_off')
def test_a_fifth_open_request_of_one_person_is_refused_until_one_is_closed(az, az_as, standin, rg):
    vm = standin.vm(rg, 'app1')
    enable(az, rg, 'app1')
    requester = az_as('requester')
    ids = []
    for _ in range(4):
        made = ask(requester, rg, 'app1', '22')
        assert made.code == 0, made
        ids.append(made.json['id'])

    log = ArmLog(standin.world)
    refused = ask(requester, rg, 'app1', '22')
    assert refused.code == 2, refused
    [line] = error_lines(refused)
    assert 'already have 4 open requests' in line and all(i in line for i in ids)
    assert 'az vm jit revoke -g {} -n app1 --request-id'.format(rg) in refused.stderr
    assert 'Traceback' not in refused.stderr
    assert log.writes() == []
    assert len(product_rules(standin, vm['nsg_id'], 'Allow')) == 4

    # Someone else is not held to the requester's limit.
    assert jit(az, 'request', '-g', rg, '-n', 'app1', '--ports', '22', '--source', '198.51.100.10').code == 0
    # Closing one of the four makes room for the next.
    ok(requester, 'revoke', '-g', rg, '-n', 'app1', '--request-id', ids[0])
    assert ask(requester, rg, 'app1', '22').code == 0


@pytest.mark.usefixtures('defender_off')
def test_no_more_than_fifty_ports_are_open_on_one_vm(az, az_as, standin, rg):
    vm = standin.vm(rg, 'app2')
    ports = [str(p) for p in range(2201, 2211)]
    enable(az, rg, 'app2', '--ports', *ports)
    for _ in range(4):
        assert jit(az, 'request', '-g', rg, '-n', 'app2', '--ports', *ports, '--source', '198.51.100.10').code == 0
    requester = az_as('requester')
    assert ask(requester, rg, 'app2', *ports[:9]).code == 0

    log = ArmLog(standin.world)
    last = ask(requester, rg, 'app2', ports[9])   # 49 open + 1 = 50: still allowed
    assert last.code == 0, last
    log.mark()
    refused = ask(requester, rg, 'app2', '2201')
    assert refused.code == 2, refused
    [line] = error_lines(refused)
    assert 'already has 50 open ports' in line and '50 that JIT allows' in line
    assert log.writes() == []
    assert len(product_rules(standin, vm['nsg_id'], 'Allow')) == 50
