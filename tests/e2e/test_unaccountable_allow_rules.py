# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""NSG-mode allow rules whose end time cannot be trusted count as open: their description was edited by hand into
something unreadable, or names an end further ahead than any JIT policy allows. `show` and `list` report them as
active with the reason, `revoke --request-id` closes them, and `cleanup` removes them with a warning naming each.
"""
import datetime as dt
import re

import pytest

from tests.harness import enable, product_rules, writes_since

HAND_EDITED = 'SSH for the auditors, keep open'
END_IN_DESCRIPTION = re.compile(r'open until \S+Z ')

# How each kind of untrusted description is made from the one the extension wrote, and the reason shown.
KINDS = {
    'unreadable': (lambda description, now: HAND_EDITED, 'UnreadableEndTime'),
    'far-future': (lambda description, now: END_IN_DESCRIPTION.sub(
        'open until {:%Y-%m-%dT%H:%M:%SZ} '.format(now + dt.timedelta(days=30)), description), 'EndTimeBeyondMaximum'),
}


def request(az, rg, vm, port, minutes='60', source='198.51.100.20'):
    return az.ok('vm', 'jit', 'request', '-g', rg, '-n', vm, '--ports', port, '--duration', minutes,
                 '--source', source)


def allow_rules(standin, nsg_id, request_id):
    return [r for r in product_rules(standin, nsg_id, 'Allow') if request_id in r['name']]


def tamper(standin, nsg_id, request_id, kind):
    """Edit the request's allow rule in Azure as a person with NSG write access could; returns its name."""
    make, _ = KINDS[kind]
    [rule] = [r for r in standin.nsg_rules(nsg_id) if r['name'].startswith('AzVmJit-Allow') and request_id in r['name']]
    props = rule['properties']
    original = props['description']
    props['description'] = make(original, standin.world.clock.now())
    assert props['description'] != original
    return rule['name']


def ports_of(view, request_id):
    [found] = [r for r in view['requests'] if r['id'] == request_id]
    return found, [(p['port'], p['status'], p['statusReason'], p['endTime']) for p in found['ports']]


def untrusted_warnings(result, rule_name):
    return [line for line in result.stderr.splitlines() if rule_name in line and 'cannot account for' in line]


@pytest.mark.parametrize('kind', sorted(KINDS))
def test_a_rule_with_an_untrusted_end_shows_as_open_and_revoke_closes_it(az, standin, rg, defender_off, kind):
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    opened = request(az, rg, 'vm1', '22')
    tamper(standin, vm['nsg_id'], opened['id'], kind)

    shown, ports = ports_of(az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'vm1'), opened['id'])
    assert shown['status'] == 'active' and shown['endTime'] is None
    assert ports == [(22, 'active', KINDS[kind][1], None)]
    listing = az.ok('vm', 'jit', 'list', '-g', rg, '--status', 'active')
    assert [r['id'] for v in listing for r in v['requests']] == [opened['id']]

    revoked = az.run('vm', 'jit', 'revoke', '-g', rg, '-n', 'vm1', '--request-id', opened['id'])
    assert revoked.code == 0, revoked
    assert revoked.json['revoked'] == [opened['id']]
    assert allow_rules(standin, vm['nsg_id'], opened['id']) == [], 'the port must be closed'
    assert len(product_rules(standin, vm['nsg_id'], 'Deny')) == 1, 'revoke keeps the deny rule'


@pytest.mark.parametrize('kind', sorted(KINDS))
def test_cleanup_removes_a_rule_with_an_untrusted_end_and_names_it(az, standin, rg, defender_off, kind):
    world = standin.world
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1', '--max-duration', '24h')
    tampered = request(az, rg, 'vm1', '22')
    longest = request(az, rg, 'vm1', '3389', minutes='1440')   # the longest a policy allows: to be kept
    name = tamper(standin, vm['nsg_id'], tampered['id'], kind)
    kept = allow_rules(standin, vm['nsg_id'], longest['id'])
    assert len(kept) == 1

    mark = len(world.requests)
    dry = az.run('vm', 'jit', 'cleanup', '-g', rg, '--dry-run')
    assert dry.code == 0, dry
    assert [c['name'] for c in dry.json['removed']] == [name]
    assert len(untrusted_warnings(dry, name)) == 1, dry.stderr
    assert writes_since(world, mark) == [], 'a dry run must not write'

    done = az.run('vm', 'jit', 'cleanup', '-g', rg)
    assert done.code == 0, done
    assert [c['name'] for c in done.json['removed']] == [name]
    [warning] = untrusted_warnings(done, name)
    assert ('cannot read' if kind == 'unreadable' else 'further ahead than') in warning, warning
    assert allow_rules(standin, vm['nsg_id'], tampered['id']) == []
    assert allow_rules(standin, vm['nsg_id'], longest['id']) == kept, 'a 24-hour request is not untrusted'


def test_the_vms_next_request_removes_its_rule_with_an_untrusted_end(az, standin, rg, defender_off):
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    tampered = request(az, rg, 'vm1', '22')
    name = tamper(standin, vm['nsg_id'], tampered['id'], 'unreadable')
    result = az.run('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '3389', '--duration', '60',
                    '--source', '198.51.100.20')
    assert result.code == 0, result
    assert len(untrusted_warnings(result, name)) == 1, result.stderr
    assert allow_rules(standin, vm['nsg_id'], tampered['id']) == []
    assert len(allow_rules(standin, vm['nsg_id'], result.json['id'])) == 1
