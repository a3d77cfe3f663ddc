# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The audit trail of a VM under approval (`az vm jit log`) after a scripted day, in each mode, through real `az`.

The day: the administrator enables approval naming an approver, an approver group and two requesters; person A
asks, is approved by the approver, opens and (after PIM's first five minutes) the access is revoked; person B asks
and is denied by a member of the group, with a reason; A asks again, is approved by the group member, opens, and
the access runs out (Defender expires it itself; in NSG mode `cleanup` removes it); the administrator disables JIT.
The log then tells each of those events, oldest first, with who did it: each caller as Azure names it (an
application by its id, a user by UPN), the approver to those PIM lets see the approval (its approvers and the
requester), and Defender's own rule writes and removals as Defender's, never the user's."""
import datetime as dt

import pytest

from tests.approval import Pim
from tests.harness import enable, jit, ok
from tests.standin import security

VM = 'vm1'
# Person A is an application (named by its client id), person B and the approvers are users (named by UPN).
PERSON_A, PERSON_B = 'pim-requester', 'day-requester'
APPROVER, GROUP_APPROVER, GROUP = 'day-approver', 'day-group-approver', 'day-approvers'
SOURCE_A, SOURCE_B = '203.0.113.5', '203.0.113.77'
DEFENDER_APP = '8edd93e1-2103-40b4-bd70-6e34e586362d'   # "Windows Azure Security Resource Provider"
TABLE_COLUMNS = ['Time', 'VM', 'Action', 'Caller', 'Ports', 'Source', 'End', 'Result', 'Approver', 'Justification']


@pytest.fixture
def pim(standin):
    return Pim(standin)


@pytest.fixture
def people(standin):
    """The day's users (Reader each, as the approval tests' identities): person B, an approver, and a member of an
    approver group. Made once per stand-in (one per test process)."""
    world, scope = standin.world, '/subscriptions/' + standin.sub
    if PERSON_B not in world.identities:
        for name, address in ((PERSON_B, '198.51.100.53'), (APPROVER, '198.51.100.54'),
                              (GROUP_APPROVER, '198.51.100.55')):
            world.add_identity(name, [('Reader', scope)], public_ip=address, kind='user')
        world.add_group(GROUP, [world.identities[GROUP_APPROVER]])


def _scripted_day(az, az_as, standin, rg, pim, nsg_mode):
    """The day, each step checked for its exit code; returns the approval requests' ids by how they ended."""
    standin.vm(rg, VM)
    pim.require_approval(az, rg, VM, requesters=(PERSON_A, PERSON_B), approvers=(APPROVER,), groups=(GROUP,))
    person_a, person_b = az_as(PERSON_A), az_as(PERSON_B)
    approver, group_approver = az_as(APPROVER), az_as(GROUP_APPROVER)

    # A asks; B asks while A's request still waits; then the decisions.
    revoked = ok(person_a, 'request', '-g', rg, '-n', VM, '--ports', '22', '--duration', '1h', '--source', SOURCE_A,
                 '--justification', 'INC-1 reboot')['requestId']
    denied = ok(person_b, 'request', '-g', rg, '-n', VM, '--ports', '3389', '--duration', '1h', '--source', SOURCE_B,
                '--justification', 'curious')['requestId']
    ok(approver, 'approve', '--request-id', revoked, '--reason', 'CHG-7', '--yes')
    ok(group_approver, 'deny', '--request-id', denied, '--reason', 'no ticket', '--yes')
    ok(person_a, 'request', '-g', rg, '-n', VM, '--request-id', revoked)
    security.settle(standin.world)   # Defender writes its allow rule seconds after the initiate, before time moves on
    standin.world.clock.advance(minutes=5)   # PIM ends no activation of one's own in its first five minutes
    if nsg_mode:
        ok(person_a, 'revoke', '-g', rg, '-n', VM)
    else:
        # In Defender mode the approved role covers the JIT policy, not the NSG: the requester cannot delete
        # Defender's rule, so an administrator closes the access, by the approval request's id.
        ok(az, 'revoke', '-g', rg, '-n', VM, '--request-id', revoked)

    # A asks again, for both ports and half an hour; the access runs out.
    expired = ok(person_a, 'request', '-g', rg, '-n', VM, '--ports', '22', '3389', '--duration', '30m', '--source',
                 SOURCE_A, '--justification', 'INC-2 patch')['requestId']
    ok(group_approver, 'approve', '--request-id', expired, '--reason', 'CHG-8', '--yes')
    ok(person_a, 'request', '-g', rg, '-n', VM, '--request-id', expired)
    security.settle(standin.world)
    standin.world.clock.advance(minutes=31)
    if nsg_mode:
        ok(az, 'cleanup', '-g', rg)   # Defender expires its own rules; in NSG mode cleanup removes ours
    ok(az, 'disable', '-g', rg, '-n', VM, '--yes')
    return {'revoked': revoked, 'denied': denied, 'expired': expired}


def _when(text):
    return dt.datetime.fromisoformat(text)


def _in_order(events, wanted):
    """Whether `wanted` [(action, caller, actor)] happen in that order among `events` (others may come between)."""
    seen = iter((e['action'], e['caller'], e['actor']) for e in events)
    return all(step in seen for step in wanted)


def _check_trail(standin, entries, day, nsg_mode, sees_approvals):  # pylint: disable=too-many-locals
    """The log of the day as one reader sees it: `sees_approvals` when PIM shows them its approvals."""
    def caller(name):
        return standin.world.identities[name].caller
    admin = caller('admin')
    assert [_when(e['time']) for e in entries] == sorted(_when(e['time']) for e in entries), entries
    assert {e['mode'] for e in entries} == {'NSG' if nsg_mode else 'Defender'}, entries
    # The approval set-up (PIM settings, eligibilities) is an entry of its own, the administrator's.
    setup = [e for e in entries if e['action'] == 'approval-setup']
    assert setup and all((e['caller'], e['result']) == (admin, 'succeeded') for e in setup), setup
    story = [e for e in entries if e['action'] != 'approval-setup']
    assert [e['action'] for e in story] == ['configure', 'request', 'request', 'request', 'disable'], story
    for entry in story:
        assert entry['vm'] == VM and entry['vmId'].lower().endswith('/virtualmachines/' + VM), entry
    configure, *asked, disable = story
    assert (configure['caller'], configure['result']) == (admin, 'succeeded'), configure
    assert (disable['caller'], disable['result']) == (admin, 'succeeded'), disable
    assert [e['requestId'] for e in asked] == [day['revoked'], day['denied'], day['expired']], asked

    revoker = caller(PERSON_A) if nsg_mode else admin
    expected = [  # requester, ports, source, their words, result, who decided and why, what happened in order
        (PERSON_A, ['22/TCP'], SOURCE_A, 'INC-1 reboot', 'revoked', APPROVER, 'CHG-7',
         [('open', caller(PERSON_A), 'user'), ('revoke', revoker, 'user')]),
        (PERSON_B, ['3389/TCP'], SOURCE_B, 'curious', 'denied', GROUP_APPROVER, 'no ticket', []),
        (PERSON_A, ['22/TCP', '3389/TCP'], SOURCE_A, 'INC-2 patch', 'expired', GROUP_APPROVER, 'CHG-8',
         [('open', caller(PERSON_A), 'user'),
          ('expire', admin, 'user') if nsg_mode else ('expire', DEFENDER_APP, 'Defender for Cloud')]),
    ]
    for entry, (who, ports, source, words, result, decider, reason, happened) in zip(asked, expected):
        assert (entry['caller'], entry['ports'], entry['source'], entry['justification'], entry['result']) == \
            (caller(who), ports, source, words, result), entry
        if sees_approvals:
            assert (entry['approver'], entry['approverVisible'], entry['decisionReason']) == \
                (caller(decider), True, reason), entry
            decision = [('deny' if result == 'denied' else 'approve', caller(decider), 'user')]
        else:
            assert (entry['approver'], entry['approverVisible']) == (None, False), entry
            decision = []
        events = entry['events']
        assert [_when(e['time']) for e in events] == sorted(_when(e['time']) for e in events), entry
        assert (events[0]['action'], events[0]['caller']) == ('ask', caller(who)), entry
        assert _in_order(events, decision + happened), entry
        # Defender's own rule writes and removals are Defender's, never the user's.
        by_defender = [e for e in events if e['caller'] == DEFENDER_APP]
        assert all(e['actor'] == 'Defender for Cloud' for e in by_defender), entry
        assert ('open', 'Defender for Cloud') in {(e['action'], e['actor']) for e in by_defender} or \
            nsg_mode or result == 'denied', entry
        if result == 'denied':
            assert not [e for e in events if e['action'] == 'open'], entry
    ran_out = asked[2]
    expiries = [_when(e['time']) for e in ran_out['events'] if e['action'] == 'expire']
    assert expiries and min(expiries) >= _when(ran_out['endTime']), ran_out   # not before its end


@pytest.mark.usefixtures('people')
@pytest.mark.parametrize('nsg_mode', [
    pytest.param(True, id='nsg'),
    pytest.param(False, id='defender')])
def test_the_log_tells_a_day_under_approval_in_order_with_who_asked_decided_and_ended_each_request(
        az, az_as, standin, rg, pim, request, nsg_mode):
    if nsg_mode:
        request.getfixturevalue('defender_off')
    day = _scripted_day(az, az_as, standin, rg, pim, nsg_mode)

    # The administrator: everything but who decided (PIM shows an approval only to its approvers and requester).
    as_admin = jit(az, 'log', '-g', rg, '-n', VM)
    assert as_admin.code == 0, as_admin
    _check_trail(standin, as_admin.json, day, nsg_mode, sees_approvals=False)
    # The window ends now: events of the last minutes may still be on their way, and the reader is told.
    assert any(line.startswith('WARNING') and 'minutes behind' in line for line in as_admin.stderr.splitlines()), \
        as_admin

    # An approver reads the same day, and who approved or denied each request and why.
    approver = az_as(APPROVER)
    as_approver = jit(approver, 'log', '-g', rg, '-n', VM)
    assert as_approver.code == 0, as_approver
    _check_trail(standin, as_approver.json, day, nsg_mode, sees_approvals=True)

    if nsg_mode:   # the table, once: one line per entry under its columns
        table = jit(approver, 'log', '-g', rg, '-n', VM, '-o', 'table')
        assert table.code == 0, table
        header, rule, *rows = table.stdout.splitlines()
        assert header.split() == TABLE_COLUMNS and set(rule.replace(' ', '')) == {'-'}, table
        assert len(rows) == len(as_approver.json), table
        [denied] = [row for row in rows if ' denied ' in row]
        for shown in (standin.world.identities[PERSON_B].caller, '3389/TCP', SOURCE_B, 'curious',
                      standin.world.identities[GROUP_APPROVER].caller):
            assert shown in denied, table


@pytest.mark.usefixtures('defender_off')
def test_the_log_reaches_azures_now_when_this_machines_clock_is_behind(az, standin, rg):
    clock = standin.world.clock
    ahead = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=30) - clock.now()
    if ahead > dt.timedelta(0):   # Azure's clock half an hour ahead of this machine's (never moved back)
        clock.advance(seconds=ahead.total_seconds())
    standin.vm(rg, VM)
    enable(az, rg, VM)
    logged = jit(az, 'log', '-g', rg, '-n', VM)
    assert logged.code == 0, logged
    assert [e['action'] for e in logged.json] == ['configure'], logged
    assert 'minutes behind' in logged.stderr, logged
