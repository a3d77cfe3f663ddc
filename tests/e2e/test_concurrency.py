# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Commands running beside each other, or beside another writer: nothing is lost, nothing is duplicated, and
priorities stay unique.
"""
import json
import re
import time

from tests.harness import (LOCATION, ArmLog, enable, entry_texts, ok, policy_id, policy_tags, product_rules,
                           source_of, stored_policy, vm_rules, writes_since)
from tests.standin import security
from tests.standin.world import Fault


# -- NSG mode: many commands on one NSG -------------------------------------------------------------------------
def people(standin, az_as, count):
    """`count` signed-in requesters (the admin first): one person may hold at most 4 open requests on a VM."""
    scope = '/subscriptions/' + standin.sub
    names = ['admin'] + ['burst{}'.format(i) for i in range(1, count)]
    for name in names[1:]:
        if name not in standin.world.identities:
            standin.world.add_identity(name, [('JIT Requester', scope)])
    return [az_as(name) for name in names]


def test_twenty_concurrent_requests_on_one_nsg(az, az_as, standin, rg, defender_off, record_property):
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    deny = product_rules(standin, vm['nsg_id'], 'Deny')
    assert [r['properties']['priority'] for r in deny] == [1000]
    sources = ['198.18.0.{}'.format(i) for i in range(1, 21)]
    requesters = people(standin, az_as, 5)

    started = time.monotonic()
    procs = [requesters[i % 5].popen('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--duration',
                                     '60', '--source', s) for i, s in enumerate(sources)]
    outputs = [p.communicate(timeout=900) for p in procs]
    elapsed = time.monotonic() - started
    record_property('concurrent_20_requests_seconds', round(elapsed, 1))
    clashes = [r for r in standin.world.requests if r.method == 'PUT' and r.status == 400 and rg in r.path]
    print('\n20 concurrent `az vm jit request`: {:.1f} s, {} priority clashes retried'.format(elapsed, len(clashes)))

    failures = [(s, p.returncode, err[-1500:]) for s, p, (_, err) in zip(sources, procs, outputs) if p.returncode]
    assert failures == [], failures
    answers = [json.loads(out) for out, _ in outputs]
    assert sorted(a['ports'][0]['source'] for a in answers) == sorted(sources)
    assert len({a['id'] for a in answers}) == 20

    allows = product_rules(standin, vm['nsg_id'], 'Allow')
    assert sorted(source_of(r) for r in allows) == sorted(sources), 'an allow rule was lost or duplicated'
    priorities = [r['properties']['priority'] for r in allows]
    assert len(set(priorities)) == 20, sorted(priorities)
    assert all(100 <= p < 1000 for p in priorities), sorted(priorities)
    assert [r['properties']['priority'] for r in product_rules(standin, vm['nsg_id'], 'Deny')] == [1000]
    listing = az.ok('vm', 'jit', 'list', '-g', rg, '--status', 'active')
    listed = [(p['source'], r['status']) for r in listing[0]['requests'] for p in r['ports']]
    assert sorted(listed) == sorted((s, 'active') for s in sources)


def test_cleanup_and_requests_at_the_same_time(az, az_as, standin, rg, defender_off):
    """cleanup is safe beside other commands: nothing lost, only the expired rules go."""
    world = standin.world
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    old = [az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--duration', '5', '--source',
                 '198.51.100.{}'.format(i)) for i in (1, 2)]
    world.clock.advance(minutes=10)
    sources = ['198.18.1.{}'.format(i) for i in range(1, 9)]
    requesters = people(standin, az_as, 2)
    procs = [requesters[i % 2].popen('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--duration',
                                     '60', '--source', s) for i, s in enumerate(sources)]
    procs += [az.popen('vm', 'jit', 'cleanup', '-g', rg) for _ in range(2)]
    outputs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), [err[-800:] for _, err in outputs]
    allows = product_rules(standin, vm['nsg_id'], 'Allow')
    assert sorted(source_of(r) for r in allows) == sorted(sources)
    assert not any(o['id'] in r['name'] for o in old for r in allows)
    assert len({r['properties']['priority'] for r in allows}) == len(sources)


def test_concurrent_revokes_all_show_as_revoked(az, standin, rg, defender_off):
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    ids = [az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--source',
                 '198.51.100.{}'.format(i))['id'] for i in range(1, 5)]
    procs = [az.popen('vm', 'jit', 'revoke', '-g', rg, '-n', 'vm1', '--request-id', i) for i in ids]
    outputs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), [err[-800:] for _, err in outputs]
    assert product_rules(standin, vm['nsg_id'], 'Allow') == []
    listing = az.ok('vm', 'jit', 'list', '-g', rg)
    assert sorted((r['id'], r['status']) for r in listing[0]['requests']) == sorted((i, 'revoked') for i in ids)


def test_concurrent_enables_on_one_shared_nsg(az, standin, rg, defender_off):
    vms = [standin.vm(rg, 'c1')] + [standin.vm(rg, 'c{}'.format(i), nsg_name='c1-nsg') for i in (2, 3, 4)]
    assert len({v['nsg_id'] for v in vms}) == 1
    procs = [az.popen('vm', 'jit', 'enable', '-g', rg, '-n', v['name'], '--yes') for v in vms]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err[-1500:] for _, err in outputs]

    priorities = []
    for vm in vms:
        denies = [r for r in vm_rules(standin, vm) if r['properties']['access'] == 'Deny']
        assert len(denies) == 1, (vm['name'], denies)
        priorities.append(denies[0]['properties']['priority'])
        assert policy_tags(standin, vm['id'])
    assert len(set(priorities)) == 4, priorities
    assert all(990 <= p <= 1010 for p in priorities), priorities

    mark = len(standin.world.requests)
    again = enable(az, rg, 'c3')
    assert again['changes'] == [] and writes_since(standin.world, mark) == [], 'enable twice writes nothing'


# -- Defender mode: another writer of the same policy -----------------------------------------------------------
def test_enable_keeps_a_vm_added_to_the_policy_after_it_read_it(az, standin, rg):
    """A PUT replaces the whole policy. enable reads the group's policies last, right before writing; when it makes
    another call after that read (here it reads the VM's second NIC, held 1.5 s), it reads the policies again, so a
    VM someone added in between stays."""
    world = standin.world
    vms = {name: standin.vm(rg, name) for name in ('a', 'b')}
    vms['ours'] = standin.vm(rg, 'ours', nics=2)
    security.add_policy(world, rg, LOCATION, [security.jit_vm(vms['a']['id'])])
    pid = policy_id(standin, rg)
    fault = Fault('GET', re.escape(vms['ours']['nic_ids'][1]) + '$', kind='delay', delay=1.5)
    start = len(world.requests)

    def seen(method, pattern):
        return [r for r in world.requests[start:] if r.method == method and re.search(pattern, r.path, re.I)]

    world.faults.append(fault)
    try:
        proc = az.popen('vm', 'jit', 'enable', '-g', rg, '-n', 'ours', '--ports', '22', '--yes')
        deadline = time.monotonic() + 60
        while not (fault.hits and seen('GET', re.escape(rg) + r'/.*/jitNetworkAccessPolicies$')):
            assert proc.poll() is None and time.monotonic() < deadline, 'enable never listed the policies'
            time.sleep(0.01)
        with world.lock:
            world.get(pid)['properties']['virtualMachines'].append(security.jit_vm(vms['b']['id'], ports=(3389,)))
        added_before_the_write = not seen('PUT', re.escape(pid) + '$')
        out, err = proc.communicate(timeout=120)
    finally:
        if fault in world.faults:
            world.faults.remove(fault)
    assert proc.returncode == 0, (out, err)
    assert fault.hits == 1 and added_before_the_write, 'b was not added between the policy read and the write'
    stored = entry_texts(stored_policy(standin, rg))
    assert set(stored) == {vms[n]['id'].lower() for n in ('a', 'b', 'ours')}, sorted(stored)


def test_enable_notices_a_lost_update_and_merges_again(az, standin, rg):
    """The policy API has no ETag: another writer's PUT, based on what it read before ours, can land right after
    ours and drop our VM. enable re-reads after writing, sees its VM missing, and merges again."""
    vms = {name: standin.vm(rg, name) for name in ('first', 'ours', 'theirs')}
    ok(az, 'enable', '-g', rg, '-n', 'first', '--ports', '22')
    theirs = security.jit_vm(vms['theirs']['id'], ports=(3389,))
    security.state(standin.world)['racing_writes'].append(lambda before: before + [theirs])
    log = ArmLog(standin.world)
    ok(az, 'enable', '-g', rg, '-n', 'ours', '--ports', '22')
    stored = entry_texts(stored_policy(standin, rg))
    assert all(vms[n]['id'].lower() in stored for n in ('first', 'ours', 'theirs')), stored
    puts = [c for c in log.summary() if c.startswith('PUT ')]
    assert len(puts) == 2, puts   # the first write was lost; the second, merged with theirs, stuck
