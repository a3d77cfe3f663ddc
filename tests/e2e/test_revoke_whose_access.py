# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Whose access `az vm jit revoke` closes, in both modes: by default only the caller's own requests on the VM,
`--request-id` one request (an empty id is refused), `--all` everyone's. And a revocation note Azure refuses after
the port was closed is a warning, not a failure.

Two people share a VM: the subscription's Owner (`az`) and someone holding exactly the README's requester role.
"""
import pytest

from tests.harness import ArmLog, error_lines, readme_roles, rules, vm_tags
from tests.standin.world import RoleDefinition

REQUESTER_ROLE = 'JIT VM Access Requester'
ADMIN_SOURCE, REQUESTER_SOURCE = '198.51.100.71', '198.51.100.72'


@pytest.fixture
def requester(az_as, standin):
    """Signed in with exactly the README's requester role."""
    world = standin.world
    role = readme_roles()[REQUESTER_ROLE]
    world.roles[REQUESTER_ROLE.lower()] = RoleDefinition(REQUESTER_ROLE, role['Actions'], role['NotActions'])
    if 'readme-requester' not in world.identities:
        world.add_identity('readme-requester', [(REQUESTER_ROLE, '/subscriptions/' + standin.sub)],
                           public_ip='198.51.100.90')
    return az_as('readme-requester')


@pytest.fixture(params=['defender', 'nsg'])
def shared_vm(request, az, requester, standin, rg):
    """A VM where the admin has RDP open and the requester SSH: (vm, admin's request, requester's request)."""
    vm = standin.vm(rg, 'shared')
    az.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'shared', '--ports', '22', '3389', '--mode', request.param, '--yes')
    admins = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'shared', '--ports', '3389', '--duration', '30',
                   '--source', ADMIN_SOURCE)
    theirs = requester.ok('vm', 'jit', 'request', '-g', rg, '-n', 'shared', '--ports', '22', '--duration', '30',
                          '--source', REQUESTER_SOURCE)
    assert _open(standin, vm) == {(22, REQUESTER_SOURCE), (3389, ADMIN_SOURCE)}
    return vm, admins, theirs


def _open(standin, vm):
    """(port, source) of every inbound allow rule in the VM's NSG: what can reach the VM right now."""
    out = set()
    for rule in rules(standin, vm['nsg_id']):
        props = rule['properties']
        if props['access'] == 'Allow' and props['direction'] == 'Inbound':
            out.add((int(props['destinationPortRange']), props['sourceAddressPrefix'].split('/')[0]))
    return out


def test_plain_revoke_closes_only_the_callers_own_access(az, requester, standin, rg, shared_vm):
    vm, admins, theirs = shared_vm
    closed = requester.ok('vm', 'jit', 'revoke', '-g', rg, '-n', 'shared')
    assert closed['revoked'] == [theirs['id']]
    assert _open(standin, vm) == {(3389, ADMIN_SOURCE)}, "the requester's revoke closed the admin's access"

    closed = az.ok('vm', 'jit', 'revoke', '-g', rg, '-n', 'shared')
    assert closed['revoked'] == [admins['id']]
    assert _open(standin, vm) == set()


def test_plain_revoke_with_only_others_access_open_says_how_to_close_it_and_writes_nothing(
        az, requester, standin, rg, shared_vm):
    vm, admins, theirs = shared_vm
    az.ok('vm', 'jit', 'revoke', '-g', rg, '-n', 'shared', '--request-id', theirs['id'])
    tags, log = vm_tags(standin, vm), ArmLog(standin.world)
    result = requester.run('vm', 'jit', 'revoke', '-g', rg, '-n', 'shared')
    assert result.code == 0, result
    assert result.json['revoked'] == []
    assert '--all' in result.stderr and '--request-id' in result.stderr, result.stderr
    assert admins['id'] in result.stderr, 'the warning should name the request that stays open'
    assert log.writes() == [], log.summary()
    assert vm_tags(standin, vm) == tags
    assert _open(standin, vm) == {(3389, ADMIN_SOURCE)}
    assert theirs['id'] not in result.stderr


@pytest.mark.parametrize('request_id', ['', '   '])
def test_an_empty_request_id_is_refused_and_nothing_is_closed(requester, standin, rg, shared_vm, request_id):
    vm, _, _ = shared_vm
    log = ArmLog(standin.world)
    result = requester.run('vm', 'jit', 'revoke', '-g', rg, '-n', 'shared', '--request-id', request_id)
    assert result.code == 2, result
    assert len(error_lines(result)) == 1 and '--request-id' in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr
    assert log.writes() == [], log.summary()
    assert _open(standin, vm) == {(22, REQUESTER_SOURCE), (3389, ADMIN_SOURCE)}


def test_request_id_and_all_together_are_refused(az, standin, rg, shared_vm):
    vm, admins, _ = shared_vm
    log = ArmLog(standin.world)
    result = az.run('vm', 'jit', 'revoke', '-g', rg, '-n', 'shared', '--request-id', admins['id'], '--all')
    assert result.code == 2, result
    assert log.writes() == [], log.summary()
    assert len(_open(standin, vm)) == 2


def test_request_id_closes_that_request_whoever_made_it(az, standin, rg, shared_vm):
    vm, _, theirs = shared_vm
    closed = az.ok('vm', 'jit', 'revoke', '-g', rg, '-n', 'shared', '--request-id', theirs['id'])
    assert closed['revoked'] == [theirs['id']]
    assert _open(standin, vm) == {(3389, ADMIN_SOURCE)}


def test_all_closes_everyones_access(az, standin, rg, shared_vm):
    vm, admins, theirs = shared_vm
    closed = az.ok('vm', 'jit', 'revoke', '-g', rg, '-n', 'shared', '--all')
    assert sorted(closed['revoked']) == sorted([admins['id'], theirs['id']])
    assert _open(standin, vm) == set()
    shown = az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'shared')
    assert {r['id']: r['status'] for r in shown['requests']} == {admins['id']: 'revoked', theirs['id']: 'revoked'}


def test_a_refused_revocation_note_after_the_port_closed_is_a_warning(az, standin, rg, shared_vm, faults):
    vm, admins, _ = shared_vm
    tags = vm_tags(standin, vm)
    fault = faults('PATCH', r'/virtualMachines/shared/providers/Microsoft\.Resources/tags/default$', status=409,
                   code='Conflict', message='Another operation on this resource is in progress.')
    result = az.run('vm', 'jit', 'revoke', '-g', rg, '-n', 'shared')
    assert fault.hits == 1, 'the revocation note was not attempted'
    assert result.code == 0, result
    assert result.json['revoked'] == [admins['id']]
    assert 'WARNING' in result.stderr and 'could not be noted' in result.stderr, result.stderr
    assert _open(standin, vm) == {(22, REQUESTER_SOURCE)}
    assert vm_tags(standin, vm) == tags


def test_in_defender_mode_a_request_nobody_can_attribute_is_not_taken_for_the_callers(az_as, standin, rg):
    """The stand-in's `requester` cannot read the Activity Log, where Defender mode learns who made a request
    (Defender leaves `requestor` empty): its plain revoke closes nothing it cannot attribute and says why."""
    vm = standin.vm(rg, 'anon')
    admin, requester = az_as('admin'), az_as('requester')
    admin.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'anon', '--ports', '22', '--mode', 'defender', '--yes')
    opened = requester.ok('vm', 'jit', 'request', '-g', rg, '-n', 'anon', '--ports', '22', '--duration', '30',
                          '--source', REQUESTER_SOURCE)
    log = ArmLog(standin.world)
    result = requester.run('vm', 'jit', 'revoke', '-g', rg, '-n', 'anon')
    assert result.code == 0, result
    assert result.json['revoked'] == []
    assert opened['id'] in result.stderr and 'Activity Log' in result.stderr, result.stderr
    assert log.writes() == [], log.summary()
    assert _open(standin, vm) == {(22, REQUESTER_SOURCE)}
    closed = requester.ok('vm', 'jit', 'revoke', '-g', rg, '-n', 'anon', '--request-id', opened['id'])
    assert closed['revoked'] == [opened['id']]
    assert _open(standin, vm) == set()
