# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Defender mode against Defender as it really behaves, end to end with the real `az`.

Defender writes its NSG rules after answering (the initiate's allow rule, a new VM's deny rule), may renumber
rules, drops a VM's requests when the VM leaves the policy, and its API has no ETag, so another writer can
replace a VM's entry after `enable` checked it. The Activity Log takes one scope per query and shows events
late. And what a VM's tags say (a revocation record) never outweighs the allow rule that is in the NSG.
"""
import contextlib
import datetime as dt
import json

from tests.harness import ArmLog, defender_rules, error_lines, jit, ok, policy_id, stored_policy, vm_tags
from tests.standin import arm, security


@contextlib.contextmanager
def defender_knobs(standin, **knobs):
    """Set stand-in knobs (security.state) for one test: the world is shared, so they are put back after."""
    state = security.state(standin.world)
    before = {k: state[k] for k in knobs}
    state.update(knobs)
    try:
        yield
    finally:
        state.update(before)


@contextlib.contextmanager
def activity_log_delay(standin, delay):
    state = arm.activity_log_state(standin.world)
    before = state['delay']
    state['delay'] = delay
    try:
        yield
    finally:
        state['delay'] = before


def _open_ports(standin, vm):
    """(port, source) of Defender's allow rules for the VM once Defender has written what it accepted."""
    return {(r['properties']['destinationPortRange'], r['properties']['sourceAddressPrefix'])
            for r in defender_rules(standin, vm, 'Allow')}


# -- revocation records never outweigh the NSG -------------------------------------------------------------
def test_a_forged_revocation_record_neither_hides_open_access_nor_stops_revoke(az, standin, rg):
    vm = standin.vm(rg, 'forged')
    ok(az, 'enable', '-g', rg, '-n', 'forged', '--ports', '22')
    opened = ok(az, 'request', '-g', rg, '-n', 'forged', '--ports', '22', '--source', '198.51.100.7',
                '--duration', '30')
    assert _open_ports(standin, vm) == {('22', '198.51.100.7')}
    # Anyone who may write the VM's tags (Tag Contributor, VM Contributor) writes a revocation record for it.
    forged = json.dumps({'ports': [22], 'src': '198.51.100.7', 'req': None, 'by': 'someone',
                         'end': '2099-01-01T00:00:00Z', 'at': '2020-01-01T00:00:00Z'}, separators=(',', ':'))
    with standin.world.lock:
        standin.world.get(vm['id']).setdefault('tags', {})['azvmjit-revoked-' + opened['id']] = forged

    active = jit(az, 'list', '-g', rg, '--status', 'active')
    assert active.code == 0, active
    assert [r['id'] for v in active.json for r in v['requests']] == [opened['id']], 'the open request is hidden'
    shown = jit(az, 'show', '-g', rg, '-n', 'forged')
    assert shown.code == 0, shown
    assert [r['status'] for r in shown.json['requests']] == ['active']
    assert 'revocation record' in shown.stderr and opened['id'] in shown.stderr, shown.stderr

    closed = ok(az, 'revoke', '-g', rg, '-n', 'forged')
    assert closed['revoked'] == [opened['id']]
    assert _open_ports(standin, vm) == set(), 'revoke left the port open'
    assert [r['status'] for r in ok(az, 'show', '-g', rg, '-n', 'forged')['requests']] == ['revoked']


# -- Defender writes its rules after answering ------------------------------------------------------------
def test_revoke_right_after_request_closes_the_access_defender_opens_afterwards(az, standin, rg):
    vm = standin.vm(rg, 'quick')
    ok(az, 'enable', '-g', rg, '-n', 'quick', '--ports', '22')
    opened = ok(az, 'request', '-g', rg, '-n', 'quick', '--ports', '22', '--source', '198.51.100.8',
                '--duration', '30')
    result = jit(az, 'revoke', '-g', rg, '-n', 'quick')   # Defender has not written the allow rule yet
    assert result.code == 0, result
    assert result.json['revoked'] == [opened['id']]
    assert [c['action'] for c in result.json['changes'] if c['kind'] == 'rule'] == ['delete']
    assert 'waiting' in result.stderr, result.stderr
    assert _open_ports(standin, vm) == set(), 'the port opened after revoke said it was closed'
    assert [r['status'] for r in ok(az, 'show', '-g', rg, '-n', 'quick')['requests']] == ['revoked']


def test_revoke_waits_for_a_rule_defender_writes_seconds_later(az, standin, rg):
    vm = standin.vm(rg, 'slow')
    ok(az, 'enable', '-g', rg, '-n', 'slow', '--ports', '22')
    with defender_knobs(standin, allow_looks=0, allow_delay=dt.timedelta(seconds=20)):
        opened = ok(az, 'request', '-g', rg, '-n', 'slow', '--ports', '22', '--source', '198.51.100.9',
                    '--duration', '30')
        shown = ok(az, 'show', '-g', rg, '-n', 'slow')
        assert [r['status'] for r in shown['requests']] == ['active'], 'a request Defender is opening is active'
        result = jit(az, 'revoke', '-g', rg, '-n', 'slow', '--request-id', opened['id'])
    assert result.code == 0, result
    assert result.json['revoked'] == [opened['id']]
    assert 'waiting' in result.stderr, result.stderr
    assert _open_ports(standin, vm) == set()


def test_disable_right_after_request_leaves_no_allow_rule_behind(az, standin, rg):
    vm = standin.vm(rg, 'leave')
    standin.vm(rg, 'other')   # so the policy stays (a policy's deletion takes its pending rules along)
    ok(az, 'enable', '-g', rg, '--ports', '22')
    with defender_knobs(standin, allow_looks=0, allow_delay=dt.timedelta(seconds=15)):
        ok(az, 'request', '-g', rg, '-n', 'leave', '--ports', '22', '--source', '198.51.100.10', '--duration', '30')
        ok(az, 'disable', '-g', rg, '-n', 'leave', '--yes')
        standin.world.clock.advance(seconds=20)
        assert defender_rules(standin, vm) == [], 'an allow rule Defender wrote after disable stays open'


def test_deny_rules_defender_writes_late_and_renumbering_are_coped_with(az, standin, rg):
    mine = [{'name': name, 'properties': {
        'priority': priority, 'direction': 'Inbound', 'access': 'Allow', 'protocol': 'Tcp', 'sourcePortRange': '*',
        'destinationPortRange': '443', 'sourceAddressPrefix': '*', 'destinationAddressPrefix': '*'}}
        for name, priority in (('Web1', 1500), ('Web2', 1501))]
    vm = standin.vm(rg, 'renum', rules=mine)
    with defender_knobs(standin, deny_looks=3, renumber_deny_at=1500):
        enabled = ok(az, 'enable', '-g', rg, '-n', 'renum', '--ports', '22')
        assert enabled['mode'] == 'defender'
        shown = ok(az, 'show', '-g', rg, '-n', 'renum')     # Defender has not written its deny rule yet
        assert shown['enabled'] and shown['mode'] == 'defender'
        [deny] = defender_rules(standin, vm, 'Deny')
    assert deny['properties']['priority'] == 1500, 'Defender placed its deny rule where it chose'
    priorities = {r['name']: r['properties']['priority'] for r in standin.nsg_rules(vm['nsg_id'])}
    assert (priorities['Web1'], priorities['Web2']) == (1501, 1502), 'Defender renumbered the rules in its way'

    opened = ok(az, 'request', '-g', rg, '-n', 'renum', '--ports', '22', '--source', '198.51.100.11',
                '--duration', '30')
    assert ok(az, 'revoke', '-g', rg, '-n', 'renum')['revoked'] == [opened['id']]
    ok(az, 'disable', '-g', rg, '-n', 'renum', '--yes')
    left = {r['name']: r['properties']['priority'] for r in standin.nsg_rules(vm['nsg_id'])}
    assert left == {'Web1': 1501, 'Web2': 1502}, 'only Defender\'s rules go, the renumbered ones stay'


# -- a VM leaving the policy takes its requests along --------------------------------------------------
def test_disable_writes_back_no_requests_of_the_vm_leaving_the_policy(az, standin, rg):
    stays, leaves = standin.vm(rg, 'stays'), standin.vm(rg, 'leaves')
    ok(az, 'enable', '-g', rg, '--ports', '22')
    kept = ok(az, 'request', '-g', rg, '-n', 'stays', '--ports', '22', '--source', '198.51.100.12', '--duration', '30')
    ok(az, 'request', '-g', rg, '-n', 'leaves', '--ports', '22', '--source', '198.51.100.13', '--duration', '30')
    log = ArmLog(standin.world)
    ok(az, 'disable', '-g', rg, '-n', 'leaves', '--yes')
    [put] = [r for r in log.writes() if r.method == 'PUT' and 'jitNetworkAccessPolicies' in r.path]
    sent = {vm['id'].lower() for r in put.body['properties']['requests'] for vm in r['virtualMachines']}
    assert sent == {stays['id'].lower()}, sent
    stored = stored_policy(standin, rg)['properties']['requests']
    assert {vm['id'].lower() for r in stored for vm in r['virtualMachines']} == {stays['id'].lower()}
    assert [r['id'] for r in ok(az, 'show', '-g', rg, '-n', 'stays')['requests']] == [kept['id']]
    assert defender_rules(standin, leaves) == []


# -- a lost update: another writer's PUT drops the VM's entry ---------------------------------------------
def test_a_vm_whose_policy_entry_another_writer_dropped_is_reported_with_the_fix(az, standin, rg):
    standin.vm(rg, 'first')
    vm = standin.vm(rg, 'second')
    ok(az, 'enable', '-g', rg, '-n', 'first', '--ports', '22')
    stale = stored_policy(standin, rg)            # B reads the policy ...
    ok(az, 'enable', '-g', rg, '-n', 'second', '--ports', '22')     # ... A writes and checks ...
    body = {'kind': 'Basic', 'properties': {'virtualMachines': stale['properties']['virtualMachines']}}
    az.ok('rest', '--method', 'put', '--url', policy_id(standin, rg) + '?api-version=2020-01-01',
          '--body', json.dumps(body))              # ... and B writes over A.
    assert 'azvmjit-defender' in vm_tags(standin, vm)

    shown = jit(az, 'show', '-g', rg, '-n', 'second')
    assert shown.code == 0, shown
    assert shown.json['enabled'] and shown.json['protected'] is False
    assert 'no longer lists it' in shown.stderr and 'az vm jit enable -g {} -n second'.format(rg) in shown.stderr
    listed = jit(az, 'list', '-g', rg)
    assert listed.code == 0, listed
    assert {v['vm']: v['protected'] for v in listed.json} == {'first': True, 'second': False}
    assert 'no longer lists it' in listed.stderr
    refused = jit(az, 'request', '-g', rg, '-n', 'second', '--ports', '22', '--duration', '30')
    assert refused.code != 0 and len(error_lines(refused)) == 1, refused
    assert 'az vm jit enable' in refused.stderr and 'Traceback' not in refused.stderr

    ok(az, 'enable', '-g', rg, '-n', 'second', '--ports', '22')
    again = jit(az, 'show', '-g', rg, '-n', 'second')
    assert again.json['protected'] is True and 'no longer lists it' not in again.stderr, again
    ok(az, 'disable', '-g', rg, '-n', 'second', '--yes')
    assert 'azvmjit-defender' not in vm_tags(standin, vm)


# -- the Activity Log: one scope per query, events late -------------------------------------------------
def test_a_request_not_yet_in_the_activity_log_counts_as_nobodys(az, standin, rg):
    vm = standin.vm(rg, 'late')
    ok(az, 'enable', '-g', rg, '-n', 'late', '--ports', '22')
    with activity_log_delay(standin, dt.timedelta(minutes=10)):
        opened = ok(az, 'request', '-g', rg, '-n', 'late', '--ports', '22', '--source', '198.51.100.14',
                    '--duration', '30')
        shown = ok(az, 'show', '-g', rg, '-n', 'late')
        assert [r['requestor'] for r in shown['requests']] == [None]
        log = ArmLog(standin.world)
        result = jit(az, 'revoke', '-g', rg, '-n', 'late')
        assert result.code == 0, result
        assert result.json['revoked'] == []
        assert opened['id'] in result.stderr and '--request-id' in result.stderr, result.stderr
        assert log.writes() == [], log.summary()
        assert _open_ports(standin, vm) == {('22', '198.51.100.14')}
        closed = ok(az, 'revoke', '-g', rg, '-n', 'late', '--request-id', opened['id'])
    assert closed['revoked'] == [opened['id']]
    assert _open_ports(standin, vm) == set()
    # Once the event is in the log, the requestor is known.
    standin.world.clock.advance(minutes=11)
    assert ok(az, 'show', '-g', rg, '-n', 'late')['requests'][0]['requestor'] == opened['requestor']
