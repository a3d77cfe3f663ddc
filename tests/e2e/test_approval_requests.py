# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""A request on a VM under approval, through real `az` and four identities: the administrator (Owner), a requester
(Reader, eligible for the requester role at the VM's gate scope), an approver and a member of an approver group.

Nothing opens before an approver says yes, and Azure itself refuses the requester's own attempts meanwhile; an
approved request opens exactly what was asked, once, with the requester's identity, until the activation ends; a
denied or expired one opens nothing and says why. The administrator sets approval up with `enable
--require-approval`."""
import datetime as dt
import threading
import time

import pytest

from tests.approval import Pim
from tests.harness import ArmLog, error_lines, jit, ok, policy_id, product_rules
from tests.standin import security

SOURCE = '203.0.113.5'
FAST = {'AZURE_JIT_POLL_SECONDS': '0.2'}


@pytest.fixture
def pim(standin):
    return Pim(standin)


def _gated_vm(az, standin, pim, rg, name, nsg_mode):
    """A VM the administrator enabled under approval (approvers: `approver` and the group `jit-approvers`; requester:
    `pim-requester`); returns (vm, gate scope)."""
    vm = standin.vm(rg, name)
    pim.require_approval(az, rg, name)
    return vm, vm['nsg_id'] if nsg_mode else policy_id(standin, rg)


def _opened(standin, vm, nsg_mode):
    """The allow rules open for the VM now: ours in NSG mode, Defender's in Defender mode."""
    if nsg_mode:
        return product_rules(standin, vm['nsg_id'], 'Allow')
    return [r for r in security.defender_rules(standin.world, vm['nsg_id']) if r['properties']['access'] == 'Allow']


@pytest.mark.parametrize('nsg_mode', [True, False], ids=['nsg', 'defender'])
def test_an_approved_request_opens_what_was_asked_once_and_nothing_opens_before(  # pylint: disable=too-many-locals
        az, az_as, standin, rg, pim, request, nsg_mode):
    if nsg_mode:
        request.getfixturevalue('defender_off')
    vm, scope = _gated_vm(az, standin, pim, rg, 'app1', nsg_mode)
    requester, approver = az_as('pim-requester'), az_as('approver')
    source = ['--source', SOURCE] if nsg_mode else []
    log = ArmLog(standin.world)
    pending = ok(requester, 'request', '-g', rg, '-n', 'app1', '--ports', '22', '--duration', '1h',
                 '--justification', 'INC42', *source)
    name = pending['requestId']
    assert pending['status'] == 'pending' and pending['next']['approver'] == f'az vm jit approve --request-id {name}'
    assert not _opened(standin, vm, nsg_mode) and not log.initiates()
    filed = pim.request(scope, name)['properties']
    assert filed['status'] == 'PendingApproval' and filed['principalId'] == pim.oid('pim-requester')
    assert filed['justification'] == f"az vm jit: {vm['id']} ports=22/TCP source={SOURCE if nsg_mode else 'caller'} " \
                                     'duration=PT1H | INC42'
    # The same request again is the same pending request: safe to run twice.
    again = ok(requester, 'request', '-g', rg, '-n', 'app1', '--ports', '22', '--duration', '1h',
               '--justification', 'INC42', *source)
    assert again['requestId'] == name

    # Meanwhile Azure refuses the requester's own way around the extension.
    if nsg_mode:
        direct = requester.run('network', 'nsg', 'rule', 'create', '-g', rg, '--nsg-name',
                               vm['nsg_id'].rsplit('/', 1)[-1], '-n', 'sneaky', '--priority', '150', '--access',
                               'Allow', '--source-address-prefixes', SOURCE, '--destination-port-ranges', '22')
    else:
        end = (standin.world.clock.now() + dt.timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%SZ')
        direct = requester.run('rest', '--method', 'post', '--url',
                               f'{scope}/initiate?api-version=2020-01-01', '--body',
                               '{"virtualMachines": [{"id": "%s", "ports": [{"number": 22, "endTimeUtc": "%s"}]}]}'
                               % (vm['id'], end))
    assert direct.code != 0 and 'AuthorizationFailed' in direct.stderr, direct
    refused = jit(requester, 'request', '-g', rg, '-n', 'app1', '--request-id', name)
    assert refused.code == 1 and 'still waiting for approval' in refused.stderr, refused

    # The approver sees what was asked, and approves.
    [row] = [r for v in ok(approver, 'list', '--status', 'pending') for r in v['requests'] if r['id'] == name]
    assert row['waitingFor'] == 'you' and [p['port'] for p in row['ports']] == [22] and row['justification'] == 'INC42'
    decided = ok(approver, 'approve', '--request-id', name, '--reason', 'CHG-7', '--yes')
    assert decided['decision'] == 'Approve' and decided['vm'] == 'app1' and decided['ports'] == ['22/TCP']

    log.mark()
    opened = ok(requester, 'request', '-g', rg, '-n', 'app1', '--request-id', name)
    assert opened['status'] == 'active' and opened['approvalRequestId'] == name
    assert [p['port'] for p in opened['ports']] == [22]
    [rule] = _opened(standin, vm, nsg_mode)
    assert rule['properties']['destinationPortRange'] == '22'
    if nsg_mode:
        assert rule['properties']['sourceAddressPrefix'] == SOURCE
    else:
        [initiate] = log.initiates()
        assert initiate.caller == 'pim-requester'   # the requester's own identity, as Defender records it
    # Twice: the access opened for that request, nothing written again.
    log.mark()
    twice = ok(requester, 'request', '-g', rg, '-n', 'app1', '--request-id', name)
    assert twice['id'] == opened['id'] and not log.writes()
    # The approved activation opens what was approved, not another ask through the extension.
    other = jit(requester, 'request', '-g', rg, '-n', 'app1', '--ports', '22', '--source', SOURCE,
                '--justification', 'something else')
    assert other.code == 1 and 'comes only from approved request ' + name in other.stderr, other
    assert not log.writes()
    if not nsg_mode:
        # The approved role covers the JIT policy, not the NSG: the requester cannot delete the rule, but revoking
        # ends the activation (PIM ends none of one's own in its first five minutes).
        standin.world.clock.advance(minutes=5)
        revoked = jit(requester, 'revoke', '-g', rg, '-n', 'app1')
        assert revoked.code == 1 and 'cannot be reopened' in revoked.stderr, revoked
        reopened = jit(requester, 'request', '-g', rg, '-n', 'app1', '--ports', '22', '--justification', 'again')
        assert reopened.code == 0 and reopened.json['status'] == 'pending', reopened

    # The activation ends with the asked hour: the access expires and the request cannot be reopened.
    standin.world.clock.advance(minutes=61)
    [shown] = ok(az, 'show', '-g', rg, '-n', 'app1')['requests']
    assert shown['status'] == 'expired'
    late = jit(requester, 'request', '-g', rg, '-n', 'app1', '--request-id', name)
    assert late.code == 1 and 'time is over' in late.stderr, late


@pytest.mark.usefixtures('defender_off')
def test_a_denied_request_opens_nothing_and_the_requester_reads_why(az, az_as, standin, rg, pim):
    vm, _ = _gated_vm(az, standin, pim, rg, 'app2', nsg_mode=True)
    requester = az_as('pim-requester')
    name = ok(requester, 'request', '-g', rg, '-n', 'app2', '--ports', '22', '--source', SOURCE,
              '--justification', 'curious')['requestId']
    # A member of the approver group decides; asking without a terminal and without --yes decides nothing.
    group_member = az_as('group-approver')
    unconfirmed = jit(group_member, 'deny', '--request-id', name, '--reason', 'no ticket')
    assert unconfirmed.code == 2 and '--yes' in unconfirmed.stderr, unconfirmed
    denied = ok(group_member, 'deny', '--request-id', name, '--reason', 'no ticket', '--yes')
    assert denied['decision'] == 'Deny'
    result = jit(requester, 'request', '-g', rg, '-n', 'app2', '--request-id', name)
    assert result.code == 1 and 'was denied: no ticket' in result.stderr, result
    assert not _opened(standin, vm, True)
    again = jit(az_as('approver'), 'approve', '--request-id', name, '--yes')
    assert again.code == 1 and len(error_lines(again)) == 1, again


@pytest.mark.usefixtures('defender_off')
def test_nobody_approves_their_own_request_and_the_uneligible_are_told_whom_to_ask(az, az_as, standin, rg, pim):
    vm, scope = _gated_vm(az, standin, pim, rg, 'app3', nsg_mode=True)
    requester = az_as('pim-requester')
    name = ok(requester, 'request', '-g', rg, '-n', 'app3', '--ports', '22', '--source', SOURCE,
              '--justification', 'mine')['requestId']
    own = jit(requester, 'approve', '--request-id', name, '--yes')
    assert own.code == 1 and 'their own request' in own.stderr, own
    assert [r['name'] for r in pim.waiting_for('approver', scope)] == [name]   # still pending
    mixed = jit(requester, 'request', '-g', rg, '-n', 'app3', '--request-id', name, '--ports', '22')
    assert mixed.code == 2 and '--ports cannot be used with --request-id' in mixed.stderr, mixed
    planned = ok(requester, 'request', '-g', rg, '-n', 'app3', '--ports', '22', '--source', SOURCE, '--dry-run')
    assert planned['status'] == 'planned' and [c['action'] for c in planned['changes']] == ['activate']
    assert [r['name'] for r in pim.waiting_for('approver', scope)] == [name]   # nothing filed
    stranger = jit(az_as('reader'), 'request', '-g', rg, '-n', 'app3', '--ports', '22', '--source', SOURCE)
    assert stranger.code == 1 and 'not eligible' in stranger.stderr and len(error_lines(stranger)) == 1, stranger
    assert not _opened(standin, vm, True)
    # The administrator holds the permission itself: straight through, as without approval.
    assert ok(az, 'request', '-g', rg, '-n', 'app3', '--ports', '22', '--source', SOURCE)['status'] == 'active'
    standin.world.pim_licensed = False   # a tenant without PIM: the requester is told what is missing
    try:
        unlicensed = jit(requester, 'request', '-g', rg, '-n', 'app3', '--ports', '22', '--source', SOURCE)
        listed = jit(requester, 'list', '-g', rg, '--status', 'pending')
    finally:
        standin.world.pim_licensed = True
    assert unlicensed.code == 1 and 'P2' in unlicensed.stderr and len(error_lines(unlicensed)) == 1, unlicensed
    assert listed.code == 0 and 'not listed' in listed.stderr, listed


@pytest.mark.usefixtures('defender_off')
def test_a_waiting_request_opens_once_when_two_approvers_approve_at_once_and_revoke_ends_it(
        az, az_as, standin, rg, pim):
    vm, scope = _gated_vm(az, standin, pim, rg, 'app4', nsg_mode=True)
    requester = az_as('pim-requester')
    approvers = [az_as('approver'), az_as('group-approver')]
    waited = {}
    thread = threading.Thread(target=lambda: waited.update(result=requester.run(
        'vm', 'jit', 'request', '-g', rg, '-n', 'app4', '--ports', '22', '--source', SOURCE, '--justification',
        'deploy', '--wait', '--timeout', '5m', extra_env=FAST)))
    thread.start()
    deadline = time.monotonic() + 60
    while not pim.waiting_for('approver', scope) and time.monotonic() < deadline:
        time.sleep(0.2)
    [pending] = pim.waiting_for('approver', scope)
    runs = [a.popen('vm', 'jit', 'approve', '--request-id', pending['name'], '--reason', 'ok', '--yes')
            for a in approvers]
    codes = sorted(r.wait(timeout=120) for r in runs)
    thread.join(timeout=300)
    assert codes == [0, 1], [r.stderr.read() for r in runs]
    result = waited['result']
    assert result.code == 0, result
    assert result.json['status'] == 'active' and result.json['approvalRequestId'] == pending['name']
    assert len(_opened(standin, vm, True)) == 1

    standin.world.clock.advance(minutes=5)   # PIM ends no activation of one's own in its first five minutes
    revoked = ok(requester, 'revoke', '-g', rg, '-n', 'app4')
    assert [c['action'] for c in revoked['changes']].count('deactivate') == 1
    assert not _opened(standin, vm, True)
    reopened = jit(requester, 'request', '-g', rg, '-n', 'app4', '--request-id', pending['name'])
    assert reopened.code == 1 and 'does not let you open access' in reopened.stderr, reopened
    assert not _opened(standin, vm, True)
    assert pim.request(scope, pending['name'])['properties']['status'] == 'Provisioned'


@pytest.mark.usefixtures('defender_off')
def test_an_approval_after_the_request_expired_opens_nothing(az, az_as, standin, rg, pim):
    vm, _ = _gated_vm(az, standin, pim, rg, 'app5', nsg_mode=True)
    requester = az_as('pim-requester')
    name = ok(requester, 'request', '-g', rg, '-n', 'app5', '--ports', '22', '--duration', '30m', '--source', SOURCE,
              '--justification', 'later')['requestId']
    standin.world.clock.advance(minutes=31)
    late = jit(az_as('approver'), 'approve', '--request-id', name, '--reason', 'sure', '--yes')
    assert late.code == 1 and len(error_lines(late)) == 1, late
    result = jit(requester, 'request', '-g', rg, '-n', 'app5', '--request-id', name)
    assert result.code == 1 and 'expired before anyone decided' in result.stderr, result
    assert not _opened(standin, vm, True)
    timed_out = jit(requester, 'request', '-g', rg, '-n', 'app5', '--ports', '22', '--source', SOURCE,
                    '--justification', 'again', '--wait', '--timeout', '1s', extra_env=FAST)
    assert timed_out.code == 1 and 'still waiting for approval' in timed_out.stderr, timed_out
    assert '--request-id' in timed_out.stderr and not _opened(standin, vm, True)


@pytest.mark.usefixtures('defender_off')
def test_an_administrator_revoking_by_the_approval_id_ends_the_requesters_activation(az, az_as, standin, rg, pim):
    vm, scope = _gated_vm(az, standin, pim, rg, 'app6', nsg_mode=True)
    requester = az_as('pim-requester')
    name = ok(requester, 'request', '-g', rg, '-n', 'app6', '--ports', '22', '--source', SOURCE,
              '--justification', 'hotfix')['requestId']
    mine = [r for v in ok(requester, 'list', '-g', rg, '--status', 'pending') for r in v['requests']]
    assert [(r['id'], r['waitingFor']) for r in mine] == [(name, 'approver')]
    ok(az_as('group-approver'), 'approve', '--request-id', name, '--reason', 'fine', '--yes')
    opened = ok(requester, 'request', '-g', rg, '-n', 'app6', '--request-id', name)
    assert opened['justification'] == f'[approval {name[:8]}] hotfix'
    revoked = ok(az, 'revoke', '-g', rg, '-n', 'app6', '--request-id', name)
    assert revoked['revoked'] == [opened['id']]
    [ended] = [c for c in revoked['changes'] if c['action'] == 'deactivate']
    assert ended['requestType'] == 'AdminRemove' and ended['principalId'] == pim.oid('pim-requester')
    assert not _opened(standin, vm, True)
    again = jit(requester, 'request', '-g', rg, '-n', 'app6', '--request-id', name)
    assert again.code == 1 and 'does not let you open access' in again.stderr, again
    assert pim.request(scope, name)['properties']['status'] == 'Provisioned'
