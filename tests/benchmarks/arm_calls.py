# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Benchmark: ARM calls and wall time per `az vm jit` command, in both modes (not a test; it prints numbers).

    python -m tests.benchmarks.arm_calls

Each command runs through the real `az` with the extension installed from its wheel, against a fresh
stand-in; the count is every request the stand-in served for that command except Azure AD's. The approval rows run
on a VM whose gate scope needs approval: the requester files a pending request, an approver approves it, the
requester opens it (`--request-id`), revokes, and a second request waits for its approval (`--wait`, approved by
the approver meanwhile) and opens.
"""
import collections
import sys
import tempfile
import threading
import time

from tests import harness
from tests.standin import security
from tests.standin.app import Standin


def measure(runner, world, *args):
    before = len(world.requests)
    result = runner.run(*args)
    calls = [r for r in world.requests[before:] if is_arm(r.path)]
    kinds = collections.Counter('{} {}'.format(r.method, _shape(r.path)) for r in calls)
    return result, len(calls), kinds


def is_arm(path):
    """An ARM call (subscription-scoped, or tenant-level like PIM's approvals), not Azure AD's sign-in or the
    stand-in's own control and IP-echo endpoints."""
    return path.startswith('/subscriptions') or path.lower().startswith('/providers/')


def _shape(path):
    parts = path.split('/')
    keep = [p for i, p in enumerate(parts) if i % 2 == 1 or i >= len(parts) - 1 and len(parts) % 2 == 0]
    return '/'.join(keep[-2:])


def main():
    work = tempfile.mkdtemp(prefix='jit-bench-')
    standin = Standin(work).start()
    world = standin.world
    standin.add_test_identities()
    env = harness.AzEnvironment(work, standin, harness.installed_extension_dir(), harness.Tripwire())
    az = env.login('admin')
    rows = []
    for mode in ('defender', 'nsg'):
        security.set_defender_plan(world, mode == 'defender')
        rg = 'bench-' + mode
        for i in range(3):
            standin.vm(rg, 'vm{}'.format(i))
        steps = [
            ('enable', ['vm', 'jit', 'enable', '-g', rg, '-n', 'vm0', '--ports', '22', '3389', '--yes']),
            ('enable (again)', ['vm', 'jit', 'enable', '-g', rg, '-n', 'vm0', '--ports', '22', '3389', '--yes']),
            ('enable -g (3 VMs)', ['vm', 'jit', 'enable', '-g', rg, '--yes']),
            ('request', ['vm', 'jit', 'request', '-g', rg, '-n', 'vm0', '--ports', '22', '--duration', '60',
                         '--source', '198.51.100.7']),
            ('show', ['vm', 'jit', 'show', '-g', rg, '-n', 'vm0']),
            ('list -g', ['vm', 'jit', 'list', '-g', rg]),
            ('revoke', ['vm', 'jit', 'revoke', '-g', rg, '-n', 'vm0']),
            ('cleanup -g', ['vm', 'jit', 'cleanup', '-g', rg]),
            ('disable', ['vm', 'jit', 'disable', '-g', rg, '-n', 'vm0', '--yes']),
        ]
        for label, args in steps:
            result, count, kinds = measure(az, world, *args)
            rows.append((mode, label, result.code, count, result.seconds, kinds))
        rows += _approval_rows(standin, env, az, mode, rg)
    print('{:<9} {:<34} {:>4} {:>9} {:>8}  calls'.format('mode', 'command', 'exit', 'ARM calls', 'seconds'))
    for mode, label, code, count, seconds, kinds in rows:
        print('{:<9} {:<34} {:>4} {:>9} {:>8.2f}  {}'.format(mode, label, code, count, seconds,
                                                             ', '.join('{}x {}'.format(n, k) if n > 1 else k
                                                                       for k, n in sorted(kinds.items()))))
    standin.stop()
    return 0


def _approval_rows(standin, env, az, mode, rg):
    """request (pending), approve, request --request-id and request --wait on a VM under approval."""
    from tests.approval import Pim
    world, pim = standin.world, Pim(standin)
    vm = standin.vm(rg, 'gated')
    gated = ['vm', 'jit', 'enable', '-g', rg, '-n', 'gated', '--yes', '--require-approval', '--approvers',
             pim.oid('approver'), '--approver-groups', world.groups_by_name['jit-approvers'], '--requesters',
             pim.oid('pim-requester')]
    rows = []
    for label in ('enable --require-approval', 'enable --require-approval (again)'):
        result, count, kinds = measure(az, world, *gated)
        rows.append((mode, label, result.code, count, result.seconds, kinds))
    scope = vm['nsg_id'] if mode == 'nsg' else harness.policy_id(standin, rg)
    requester, approver = env.login('pim-requester'), env.login('approver')
    ask = ['vm', 'jit', 'request', '-g', rg, '-n', 'gated', '--ports', '22', '--duration', '60']
    if mode == 'nsg':
        ask += ['--source', '198.51.100.7']
    result, count, kinds = measure(requester, world, *ask, '--justification', 'bench')
    rows.append((mode, 'request (pending)', result.code, count, result.seconds, kinds))
    name = (result.json or {}).get('requestId')
    result, count, kinds = measure(az, world, 'vm', 'jit', 'show', '-g', rg, '-n', 'gated')
    rows.append((mode, 'show (under approval)', result.code, count, result.seconds, kinds))
    result, count, kinds = measure(approver, world, 'vm', 'jit', 'approve', '--request-id', name, '--yes')
    rows.append((mode, 'approve', result.code, count, result.seconds, kinds))
    result, count, kinds = measure(requester, world, 'vm', 'jit', 'request', '-g', rg, '-n', 'gated',
                                   '--request-id', name)
    rows.append((mode, 'request --request-id', result.code, count, result.seconds, kinds))
    security.settle(world)           # Defender's allow rule is in place before the clock moves on
    world.clock.advance(minutes=5)   # PIM ends no activation of one's own in its first five minutes
    requester.run('vm', 'jit', 'revoke', '-g', rg, '-n', 'gated')

    def approve_when_asked():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            waiting = pim.waiting_for('approver', scope)
            if waiting:
                approver.run('vm', 'jit', 'approve', '--request-id', waiting[0]['name'], '--yes')
                return
            time.sleep(0.5)
    helper = threading.Thread(target=approve_when_asked)
    before = len(world.requests)
    helper.start()
    result = requester.run(*ask, '--justification', 'bench wait', '--wait', extra_env={'AZURE_JIT_POLL_SECONDS': '1'})
    helper.join()
    mine = world.identities['pim-requester'].name
    calls = [r for r in world.requests[before:] if is_arm(r.path) and r.caller == mine]
    kinds = collections.Counter('{} {}'.format(r.method, _shape(r.path)) for r in calls)
    rows.append((mode, 'request --wait', result.code, len(calls), result.seconds, kinds))
    for label, args in (('log -n (approvals read)', ['-g', rg, '-n', 'gated']), ('log -n', ['-g', rg, '-n', 'vm0']),
                        ('log -g', ['-g', rg])):
        result, count, kinds = measure(az if label != 'log -n (approvals read)' else approver, world, 'vm', 'jit',
                                       'log', *args)
        rows.append((mode, label, result.code, count, result.seconds, kinds))
    return rows


if __name__ == '__main__':
    sys.exit(main())
