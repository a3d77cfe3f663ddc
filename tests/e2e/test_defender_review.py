"""Defender mode: the review's findings 3, 4, 5, 14 and 15b, end to end against the stand-in.

3   enable re-reads the policy right before writing it, so a VM another admin added during the command survives.
4   a policy of the resource group and region is joined whatever its name (`Default`, `corp-jit`).
5   revoke matches Defender's allow rule by normalised source, and refuses (changing nothing) when a rule for the
    port is there but does not match the request.
14  the requestor lookup asks the Activity Log only for Microsoft.Security events since the oldest unnamed request.
15b behind a firewall, the connect hint is the firewall's address (`publicIpAddress`) with the mapped port.
"""
import datetime as dt
import re
import time

import pytest

from tests.e2e.test_defender import (ADMIN_IP, LOCATION, ArmLog, defender_rules, entry_texts, jit, ok, parse_time,
                                     policy_id, stored_policy, vm_tags)
from tests.standin import security
from tests.standin.world import Fault

ticks = security._ticks  # pylint: disable=protected-access


def policies_in(standin, rg):
    return sorted(standin.world.of_type(security.JIT_TYPE, standin.sub, rg), key=lambda p: p['name'])


def request_body(vm, start, end, ports, source=ADMIN_IP, **extra):
    """A request as Defender stores it: `ports` are numbers or (number, extra port fields)."""
    items = []
    for port in ports:
        number, more = port if isinstance(port, tuple) else (port, {})
        items.append(dict(number=number, allowedSourceAddressPrefix=source, endTimeUtc=ticks(end), **more))
    return dict({'virtualMachines': [{'id': vm['id'], 'ports': items}], 'startTimeUtc': ticks(start),
                 'requestor': ''}, **extra)


# -- 3. no stale copy of the policy is written back ---------------------------------------------------------------
def test_enable_keeps_a_vm_added_while_the_command_ran(az, standin, rg):
    world = standin.world
    vms = {name: standin.vm(rg, name) for name in ('a', 'b', 'ours')}
    security.add_policy(world, rg, LOCATION, [security.jit_vm(vms['a']['id'])])
    pid = policy_id(standin, rg)
    # Hold the command in its NSG read, which comes after its first policy list and before its write, so that b is
    # added in between whatever the machine's speed.
    fault = Fault('GET', re.escape(vms['ours']['nsg_id']) + '$', kind='delay', delay=1.5)
    start = len(world.requests)

    def seen(pattern):
        return [r for r in world.requests[start:] if r.method == 'GET' and re.search(pattern, r.path, re.I)]

    world.faults.append(fault)
    try:
        proc = az.popen('vm', 'jit', 'enable', '-g', rg, '-n', 'ours', '--ports', '22', '--yes')
        deadline = time.monotonic() + 60
        while not seen(re.escape(rg) + r'/.*/jitNetworkAccessPolicies$'):
            assert proc.poll() is None and time.monotonic() < deadline, 'enable never listed the policies'
            time.sleep(0.01)
        with world.lock:
            world.get(pid)['properties']['virtualMachines'].append(security.jit_vm(vms['b']['id'], ports=(3389,)))
        added_before_nsg_read = not seen(re.escape(vms['ours']['nsg_id']) + '$')
        out, err = proc.communicate(timeout=120)
    finally:
        if fault in world.faults:
            world.faults.remove(fault)
    assert proc.returncode == 0, (out, err)
    assert fault.hits == 1 and added_before_nsg_read, 'b was not added between the policy list and the write'
    stored = entry_texts(stored_policy(standin, rg))
    assert set(stored) == {vms[n]['id'].lower() for n in ('a', 'b', 'ours')}, sorted(stored)


# -- 4. an existing policy is joined whatever its name --------------------------------------------------------
@pytest.mark.parametrize('name', ['Default', 'corp-jit'])
def test_enable_joins_the_existing_policy_of_any_name(az, standin, rg, name):
    world = standin.world
    other, ours = standin.vm(rg, 'other'), standin.vm(rg, 'ours')
    security.add_policy(world, rg, LOCATION, [security.jit_vm(other['id'], ports=(3389,))], name=name)
    [before] = policies_in(standin, rg)

    enabled = ok(az, 'enable', '-g', rg, '-n', 'ours', '--ports', '22', '--yes')
    [after] = policies_in(standin, rg)       # no `default` created beside it
    assert after['name'] == name
    stored = entry_texts(after)
    assert set(stored) == {other['id'].lower(), ours['id'].lower()}
    assert stored[other['id'].lower()] == entry_texts(before)[other['id'].lower()]
    targets = {c['target'] for c in enabled['changes'] if c['kind'] == 'policy'}
    assert targets and all(t.endswith('/jitNetworkAccessPolicies/' + name) for t in targets), targets
    assert ok(az, 'show', '-g', rg, '-n', 'ours')['mode'] == 'defender'

    # Requests go through that policy, and disable takes ours out of it again, leaving the other VM.
    answer = ok(az, 'request', '-g', rg, '-n', 'ours', '--ports', '22', '--duration', '15')
    assert answer['status'] == 'active'
    ok(az, 'disable', '-g', rg, '-n', 'ours', '--yes')
    [left] = policies_in(standin, rg)
    assert left['name'] == name and set(entry_texts(left)) == {other['id'].lower()}
    assert defender_rules(standin, ours) == []


# -- 5. revoke matches sources normalised, and never claims a port it could not close -----------------------------
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
    revoked = ok(az, 'revoke', '-g', rg, '-n', 'rev')
    assert revoked['revoked'] == [answer['id']]
    assert not [c for c in revoked['changes'] if c['kind'] == 'rule']
    assert _request_status(az, rg, answer['id']) == 'revoked'


# -- 14. the Activity Log query is narrow ---------------------------------------------------------------------------
@pytest.mark.parametrize('days_ago', [10, 200])
def test_requestor_lookup_asks_for_security_events_since_the_oldest_unnamed_request(az, standin, rg, days_ago):
    world = standin.world
    vm = standin.vm(rg, 'who')
    now = world.clock.now()
    old = now - dt.timedelta(days=days_ago)
    security.add_policy(world, rg, LOCATION, [security.jit_vm(vm['id'], ports=(22,))], requests=[
        request_body(vm, old, old + dt.timedelta(hours=1), [(22, {'status': 'Revoked', 'statusReason': 'Expired'})],
                     source='203.0.113.1')])
    answer = ok(az, 'request', '-g', rg, '-n', 'who', '--ports', '22', '--duration', '20')
    log = ArmLog(world)
    shown = ok(az, 'show', '-g', rg, '-n', 'who')
    by_start = sorted(shown['requests'], key=lambda r: r['startTime'])
    assert [r['requestor'] for r in by_start] == [None, world.identities['admin'].caller]
    assert by_start[1]['id'] == answer['id']

    [query] = [r for r in log.calls if r.path.lower().endswith('/eventtypes/management/values')]
    text = query.query['$filter']
    assert "resourceProvider eq 'Microsoft.Security'" in text, text
    assert "resourceGroupName eq '{}'".format(rg) in text, text
    since = parse_time(re.search(r"eventTimestamp ge '([^']+)'", text).group(1))
    expected = max(old - dt.timedelta(minutes=5), now - dt.timedelta(days=89))
    assert abs((since - expected).total_seconds()) < 120, (since, expected)


# -- 15b. connecting through a firewall -----------------------------------------------------------------------------
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
