# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Benchmark: what each `az vm jit` command costs, beside what Azure's API allows and what users run instead (not a
test; it prints numbers, and exits 1 only when a timed command did not end as it must).

    python -m tests.benchmarks.performance [--runs 15] [--only calls|times]

One run, one stand-in (in-process, fresh), the real `az` with the extension installed from this source tree's wheel
(`harness.installed_extension_dir()`), signed in as the subscription's Owner.

Part 1, ARM calls per command (`--only calls`): in Defender mode, then in NSG mode (the Defender plan off), each
command once, in the order a user would run them; the count is every request the stand-in served for that command
except Azure AD's (long-running-operation polls and PIM's tenant-level calls included). Beside it, the fewest ARM
calls Azure's API allows for what that command must do (`MINIMUM`, with the reasoning, printed under the table) and
how many calls over that the command made. The approval rows run on a VM whose gate scope needs approval: the
requester files a pending request, an approver approves it, the requester opens it (`--request-id`), revokes, and a
second request waits for its approval (`--wait`, approved by the approver meanwhile) and opens.

Part 2, whole-process times against peers (`--only times`): each pair runs A, B, A, B, ... on the same stand-in and
the same data, one warm-up run of each discarded, then `--runs` runs of each, strictly one process at a time. Wall is
the time from starting `az` to its exit; CPU is the user+system time of that child process (`getrusage` of
RUSAGE_CHILDREN before and after it). The table shows the median of each, the ratios of the medians (A/B) and of
the fastest runs (the least disturbed by whatever else the machine does), the target issue #12 sets for the pair,
and the ARM calls each side made per run (the median), so the peer's work can be seen beside ours. Every run must
end with its expected exit code, or the benchmark stops and says which. Each pair has its own resource group, every
VM enabled (port 22) by `az vm jit enable -g` in Defender mode unless said:
1. `az vm jit request` of port 22 for 60 minutes from 198.51.100.7 beside `az rest` POSTing the same initiate
   (ending an hour from now by Azure's clock), target 1.6x. Run n of each asks for VM n, so every `request` finds
   a VM with no open request of its own, as a user's first request does (an open request makes it read the NSG too).
2. `az vm jit list -g` beside `az security jit-policy list -g`, one VM holding one open request, target 1.10x.
3. `az vm list -g` with this extension installed beside the same without it (AZURE_EXTENSION_DIR an empty
   directory), target 1.03x; and, in the same rounds, beside the same with another extension installed instead, one
   `az vm` command that does nothing (built and added by `az extension add` here): what az does for any extension
   under `az vm` (reading its metadata, checking its version, its command index) is in both, so that pair is this
   extension's own cost.
4. NSG mode (the Defender plan off): `az vm jit request` beside `az network nsg rule create` of the same allow rule
   by hand (a new name and priority, from 3000, per run, in VM n's NSG), no target.
Then what az itself spends loading each command's module, as its own `--debug` log times it (median of `--runs` runs):
`vm` for every `az vm ...` command (this one included), `util` for `az rest`, `security` for `az security`, and this
extension's loader; and pairs 1 and 2 again without that part: what is left is each command's own work.
"""
import argparse
import collections
import copy
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib.metadata import version

from tests import harness
from tests.standin import security
from tests.standin.app import Standin


# -- the fewest ARM calls Azure's API allows, per command -----------------------------------------------------------
class Per:
    """A minimum that grows with what the row met: `base`, plus `vm` per VM in the resource group, plus `poll` per
    poll the command made while it waited."""

    def __init__(self, base, vm=0, poll=0):
        self.base, self.vm, self.poll = base, vm, poll

    def __call__(self, seen):
        return self.base + self.vm * seen.vms + self.poll * seen.polls

    def __str__(self):
        growth = ((self.vm, 'VM'), (self.poll, 'poll'))
        return ' + '.join([str(self.base)] + ['{} per {}'.format(n, what) for n, what in growth if n])


Seen = collections.namedtuple('Seen', 'vms polls')

# {row label: (Defender mode, NSG mode, why)}: a minimum is a number or a `Per`. The table prints the rows in the
# order they run, whatever their order here.
MINIMUM = {
    'enable (new VM)': (
        6, 7, "Defender: VM, NIC, NSG (conflicting rules), Defender's plan (the mode of a new VM), the group's "
              'policies (a PUT replaces the whole policy), the PUT. NSG: VM, NIC, NSG, the mode check (the plan), the '
              "policy tag PATCH, the deny rule's PUT and its operation's poll"),
    'enable (again)': (4, 3, 'reads only: VM, NIC, NSG, and the policies (Defender)'),
    'enable (new VM, removes a rule)': (
        9, 10, 'as a new VM, plus a tag PATCH for the record of the removed rule (written once the policy is in '
               'place, right before the DELETE: a record says the rule was removed), the DELETE and its poll'),
    'enable -g (3 VMs)': (
        10, 14, 'the VM list, then per VM its NIC and NSG (3 VMs: 6); Defender: the plan, the policies, one PUT for '
                'the group; NSG: the mode check, and per new VM (2) a tag PATCH, a deny rule PUT and its poll'),
    'request': (
        4, 5, 'Defender: VM, NIC (private and public IP, for how to connect), the policy (the checks), initiate. NSG: '
              'VM, NIC, NSG (rule priorities), the allow rule PUT, its poll'),
    'show': (4, 4, 'VM, NIC, NSG (its protecting rules), and the policy (Defender) or the mode check (NSG)'),
    'list -g': (2, Per(1, vm=2), 'Defender: the VM list, the policy list. NSG: the VM list; NIC and NSG per VM'),
    'revoke': (
        8, 6, 'Defender: VM, NIC, the policy (the open requests), the Activity Log (whose they are: Defender answers '
              '"" for service principals), NSG (the allow rule), its DELETE and poll, a revocation tag (the policy '
              'still says Initiated). NSG: VM, NIC, NSG, DELETE, poll, a revocation tag (Azure keeps no trace of a '
              'deleted rule)'),
    'cleanup -g': (1, 1, 'one NSG list for the group, plus a DELETE (and its poll) per expired rule: none here'),
    'disable': (
        6, 7, "Defender: VM, NIC, NSG (Defender's allow rules stay after the VM leaves the policy: open access is "
              "closed first), the policies, their PUT (or DELETE), the tag PATCH. NSG: VM, NIC, NSG, the mode check "
              '(is the VM in a Defender policy too), the tag PATCH, the deny rule DELETE and its poll'),
    # Approval (PIM): the calls each step needs, read off the APIs
    'enable --require-approval': (
        13, 13, "enable's calls, plus permissions at the gate scope, the role definition (GET; Defender's run is "
                "the subscription's first, so also its PUT), PIM's policy assignment GET and PATCH (approval on, "
                'approvers), the eligibility GET and PUT'),
    'enable --require-approval (again)': (
        7, 6, "reads only: enable's (again), plus the role definition, PIM's policy assignment and the "
              'eligibilities'),
    'request (pending)': (
        5, 5, 'VM, the policy (Defender) or NIC (NSG: the gate scope is its NSG), permissions (is approval needed), '
              "the caller's eligibility, the activation PUT"),
    'show (under approval)': (
        9, 9, "show's 4, plus the role definition, role assignments (who opens without approval), PIM's policy "
              'assignment (approvers), eligibilities, PIM requests at the gate scope'),
    'approve': (3, 3, 'PIM requests asApprover() (what was asked), the approval (its step), the step PUT'),
    'request --request-id': (5, 6, "the PIM request (approved, what was asked), then request's calls"),
    'request --wait': (
        Per(7, poll=1), Per(8, poll=1), "the pending request's 5, its polls, then the opening's remaining calls: "
                                        'Defender NIC and initiate; NSG the NSG, rule PUT and poll'),
    'log -n (approvals read)': (
        6, 6, 'VM, NIC (the groups holding it and its NSG), Activity Log, PIM requests at the gate scope, each '
              'approval (2)'),
    'log -n': (
        6, 3, "VM, NIC, Activity Log; Defender: the gate scope is the group's policy, which holds this VM too, so "
              "also PIM's requests there and each approval (2)"),
    'log -g': (6, 6, 'VM list, NIC list, Activity Log, PIM requests in the group, each approval (2)'),
}

# {row label: (Defender mode, NSG mode)}: why the command makes more calls than the minimum, where it does.
OVER = {
    'enable (new VM)': (
        "+2, the lost-update check: Defender's PUT has no ETag, so enable reads the policy again after its PUT "
        "(another writer's PUT may have replaced it: then it merges and writes again), and tags the VM as in "
        'Defender mode so a later command notices an entry lost after that read', None),
    'enable (new VM, removes a rule)': ("+2, the lost-update check, as for a new VM", None),
    'enable -g (3 VMs)': ('+3, the lost-update check: one read after the PUT, and each new VM\'s Defender-mode tag (2)',
                          None),
    'disable': ("+1, the lost-update check: the read after the PUT (other VMs stay in the policy)", None),
    'show': ('+1, the Activity Log: who made each request (Defender answers "" for service principals)',
             "+1, the Activity Log: who wrote each request's rules (anyone may write a rule's description)"),
    'list -g': ('+3 here: NIC and NSG of the VM with an open request (its allow rule may be gone), the Activity '
                'Log (who made it)', '+1, the mode check'),
}

APPROVAL = ('enable --require-approval', 'enable --require-approval (again)', 'request (pending)',
            'show (under approval)', 'approve', 'request --request-id', 'request --wait', 'log -n (approvals read)')
REQUEST_SOURCE = '198.51.100.7'
JIT_API = '2020-01-01'
PEER_PRIORITY = 3000     # the hand-made peer rules' priorities: behind JIT's deny rule (1000), so never JIT's
TARGETS = {'request': 1.6, 'list -g': 1.10, 'az vm list': 1.03}
REQUEST_PAIR, LIST_PAIR = 'request (Defender)', 'list -g (Defender)'


class Failed(Exception):
    """A command did not end as the benchmark needs it to: the figures would mean nothing."""


# -- part 1: ARM calls per command ----------------------------------------------------------------------------------
def measure(runner, world, *args, **kwargs):
    before = len(world.requests)
    result = runner.run(*args, **kwargs)
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


def _minimum(label, mode, seen):
    figure = MINIMUM[label][0 if mode == 'defender' else 1]
    return figure(seen) if callable(figure) else figure


def _vms_in(world, rg):
    from tests.standin import compute
    return sum(1 for vm in world.of_type(compute.VM_TYPE) if vm['id'].split('/')[4].lower() == rg.lower())


def arm_calls(standin, env, az):
    """Every row of part 1: (mode, label, exit code, ARM calls, API minimum, seconds, call kinds)."""
    world = standin.world
    rows = []

    def row(mode, label, rg, measured):
        result, count, kinds = measured
        seen = Seen(_vms_in(world, rg), kinds['GET providers/roleAssignmentScheduleRequests'])
        rows.append((mode, label, result.code, count, _minimum(label, mode, seen), result.seconds, kinds))

    for mode in ('defender', 'nsg'):
        security.set_defender_plan(world, mode == 'defender')
        rg, conflict_rg = 'bench-' + mode, 'bench-' + mode + '-conflict'
        for i in range(3):
            standin.vm(rg, 'vm{}'.format(i))
        conflicting = standin.vm(conflict_rg, 'open', rules=[copy.deepcopy(harness.ALLOW_ANY_SSH)])
        steps = [
            ('enable (new VM)', rg, ['vm', 'jit', 'enable', '-g', rg, '-n', 'vm0', '--ports', '22', '3389', '--yes']),
            ('enable (again)', rg, ['vm', 'jit', 'enable', '-g', rg, '-n', 'vm0', '--ports', '22', '3389', '--yes']),
            ('enable (new VM, removes a rule)', conflict_rg,
             ['vm', 'jit', 'enable', '-g', conflict_rg, '-n', 'open', '--ports', '22', '3389', '--yes']),
            ('enable -g (3 VMs)', rg, ['vm', 'jit', 'enable', '-g', rg, '--yes']),
            ('request', rg, ['vm', 'jit', 'request', '-g', rg, '-n', 'vm0', '--ports', '22', '--duration', '60',
                             '--source', REQUEST_SOURCE]),
            ('show', rg, ['vm', 'jit', 'show', '-g', rg, '-n', 'vm0']),
            ('list -g', rg, ['vm', 'jit', 'list', '-g', rg]),
            ('revoke', rg, ['vm', 'jit', 'revoke', '-g', rg, '-n', 'vm0']),
            ('cleanup -g', rg, ['vm', 'jit', 'cleanup', '-g', rg]),
            ('disable', rg, ['vm', 'jit', 'disable', '-g', rg, '-n', 'vm0', '--yes']),
        ]
        for label, group, args in steps:
            row(mode, label, group, measure(az, world, *args))
        if harness.ALLOW_ANY_SSH['name'] in harness.rules_by_name(standin, conflicting['nsg_id']):
            raise Failed('{} mode: enable left the conflicting rule {} in place'.format(
                mode, harness.ALLOW_ANY_SSH['name']))
        for label, measured in _approval_rows(standin, env, az, mode, rg):
            row(mode, label, rg, measured)
    return rows


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
        rows.append((label, measure(az, world, *gated)))
    scope = vm['nsg_id'] if mode == 'nsg' else harness.policy_id(standin, rg)
    requester, approver = env.login('pim-requester'), env.login('approver')
    ask = ['vm', 'jit', 'request', '-g', rg, '-n', 'gated', '--ports', '22', '--duration', '60']
    if mode == 'nsg':
        ask += ['--source', REQUEST_SOURCE]
    measured = measure(requester, world, *ask, '--justification', 'bench')
    rows.append(('request (pending)', measured))
    name = (measured[0].json or {}).get('requestId')
    rows.append(('show (under approval)', measure(az, world, 'vm', 'jit', 'show', '-g', rg, '-n', 'gated')))
    rows.append(('approve', measure(approver, world, 'vm', 'jit', 'approve', '--request-id', name, '--yes')))
    rows.append(('request --request-id', measure(requester, world, 'vm', 'jit', 'request', '-g', rg, '-n', 'gated',
                                                 '--request-id', name)))
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
    rows.append(('request --wait', (result, len(calls), kinds)))
    for label, who, args in (('log -n (approvals read)', approver, ['-g', rg, '-n', 'gated']),
                             ('log -n', az, ['-g', rg, '-n', 'vm0']), ('log -g', az, ['-g', rg])):
        rows.append((label, measure(who, world, 'vm', 'jit', 'log', *args)))
    return rows


def print_calls(rows):
    print('ARM calls per command (over: calls above the fewest the API allows for what the command must do)')
    print('{:<9} {:<34} {:>4} {:>5} {:>7} {:>5} {:>7}  calls'.format('mode', 'command', 'exit', 'calls', 'minimum',
                                                                     'over', 'seconds'))
    for mode, label, code, count, least, seconds, kinds in rows:
        print('{:<9} {:<34} {:>4} {:>5} {:>7} {:>+5} {:>7.2f}  {}'.format(
            mode, label, code, count, least, count - least, seconds,
            ', '.join('{}x {}'.format(n, k) if n > 1 else k for k, n in sorted(kinds.items()))))
    print()
    print('The minimum per command (Defender / NSG): why')
    for label in dict.fromkeys(row[1] for row in rows):
        defender, nsg, why = MINIMUM[label]
        print('  {:<34} {:>14} / {:<16} {}'.format(label, str(defender), str(nsg), why))
    print()
    print('Calls over the minimum: why')
    for mode, label, _, count, least, _, _ in rows:
        if count > least:
            why = OVER.get(label, (None, None))[0 if mode == 'defender' else 1]
            print('  {:<9} {:<34} {:+d}  {}'.format(mode, label, count - least, why or (
                "(approval's own calls, as approval on PIM left them: not reworked here)" if label in APPROVAL
                else '(not accounted for)')))


# -- part 2: whole-process times against peers ----------------------------------------------------------------------
class Side:
    """One side of a pair: a command line (a function of the run's number, for what must differ per run), the
    identity and environment it runs with, and the exit code it must end with."""

    def __init__(self, runner, argv, exit_code=0, extra_env=None):
        self.runner, self.argv, self.exit_code, self.extra_env = runner, argv, exit_code, extra_env
        self.wall, self.cpu, self.calls = [], [], []

    def run(self, world, index, keep):
        args = self.argv(index) if callable(self.argv) else self.argv
        before_calls = len(world.requests)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = self.runner.run(*args, extra_env=self.extra_env)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.code != self.exit_code:
            raise Failed('expected exit {}: {!r}'.format(self.exit_code, result))
        if keep:
            self.wall.append(result.seconds)
            self.cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            self.calls.append(sum(1 for r in world.requests[before_calls:] if is_arm(r.path)))


def time_pair(world, runs, *sides):
    """A, B, A, B, ...: one warm-up run of each (discarded), then `runs` of each. With more sides (two pairs timed
    together), each round runs every side once, in order."""
    for index in range(runs + 1):
        for side in sides:
            side.run(world, index, keep=index > 0)


NOOP_EXTENSION = {
    'setup.py': 'from setuptools import setup\nsetup(name="noop", version="1.0.0", packages=["azext_noop"])\n',
    'azext_noop/__init__.py': (
        'from azure.cli.core import AzCommandsLoader\n\n\n'
        'class NoopLoader(AzCommandsLoader):\n'
        '    def load_command_table(self, args):\n'
        '        with self.command_group("vm") as g:\n'
        '            g.custom_command("benchmark-noop", "noop", operations_tmpl="azext_noop#{}")\n'
        '        return self.command_table\n\n'
        '    def load_arguments(self, command):\n'
        '        pass\n\n\n'
        'def noop(cmd):\n'
        '    return None\n\n\n'
        'COMMAND_LOADER_CLS = NoopLoader\n'),
}


def _own_config(az, name):
    """The same signed-in identity with a config dir of its own: az keeps its index of which extension serves which
    command there, and a config dir shared by runs with different extension dirs would have it rebuilt on every
    switch (a cost no user with one set of extensions pays)."""
    config = os.path.join(os.path.dirname(az.config_dir), 'config-' + name)
    if not os.path.isdir(config):
        shutil.copytree(az.config_dir, config)
    return harness.AzRunner(az.environment, config, '{} ({})'.format(az.name, name))


def _noop_extension(az):
    """An extension directory holding one other extension instead of this one: a loader of one `az vm` command that
    does nothing, installed by `az extension add` (what az does for any extension under `az vm` is the same)."""
    work = os.path.join(os.path.dirname(az.config_dir), 'noop-extension')
    for name, text in NOOP_EXTENSION.items():
        os.makedirs(os.path.dirname(os.path.join(work, 'src', name)), exist_ok=True)
        with open(os.path.join(work, 'src', name), 'w', encoding='utf-8') as f:
            f.write(text)
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w',
                    os.path.join(work, 'dist'), os.path.join(work, 'src')], check=True, capture_output=True)
    wheel = os.path.join(work, 'dist', os.listdir(os.path.join(work, 'dist'))[0])
    extensions = os.path.join(work, 'extensions')
    _setup(az, 'extension', 'add', '--source', wheel, '--yes', extra_env={'AZURE_EXTENSION_DIR': extensions})
    _setup(az, 'vm', 'benchmark-noop', extra_env={'AZURE_EXTENSION_DIR': extensions})   # az indexes it
    return extensions


def _module_seconds(world, side, module, runs):
    """The median time az's `--debug` log gives for loading `module` (a command module, or an extension by name) in
    `runs` runs of this side."""
    pattern = re.compile(r'cli\.azure\.cli\.core: {}\s+([0-9.]+)\s+[0-9]+\s+[0-9]+'.format(re.escape(module)))
    seconds = []
    for index in range(1, runs + 1):
        args = side.argv(index) if callable(side.argv) else side.argv
        result = side.runner.run(*args, '--debug', extra_env=side.extra_env)
        found = pattern.search(result.stderr)
        if result.code != side.exit_code or not found:
            raise Failed('no load time of {} in the --debug log: {!r}'.format(module, result))
        seconds.append(float(found.group(1)))
    return statistics.median(seconds)


def _iso(moment):
    return moment.astimezone(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def _initiate_by_hand(standin, az, rg, vms):
    """The hand-built peer of `request`: `az rest` POSTing Defender's initiate for port 22 of `vms[run]`, ending an
    hour from now by the stand-in's clock (Azure's), from REQUEST_SOURCE."""
    url = '/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Security/locations/{}/jitNetworkAccessPolicies/' \
          'default/initiate?api-version={}'.format(standin.sub, rg, harness.LOCATION, JIT_API)

    def argv(index):
        end = standin.world.clock.now() + dt.timedelta(hours=1)
        body = {'virtualMachines': [{'id': vms[index]['id'], 'ports': [
            {'number': 22, 'endTimeUtc': _iso(end), 'allowedSourceAddressPrefix': REQUEST_SOURCE}]}]}
        return ['rest', '--method', 'post', '--url', url, '--body', json.dumps(body)]
    return Side(az, argv)


def _request(rg, vms):
    """`az vm jit request` of port 22 on `vms[run]`: every run asks for a VM with no open request."""
    return lambda index: ['vm', 'jit', 'request', '-g', rg, '-n', vms[index]['name'], '--ports', '22', '--duration',
                          '60', '--source', REQUEST_SOURCE]


def _group(standin, az, rg, count):
    """`count` VMs in resource group `rg`, each with its own NSG, all enabled (port 22) by `az vm jit enable -g`."""
    vms = [standin.vm(rg, 'vm{}'.format(i)) for i in range(count)]
    _setup(az, 'vm', 'jit', 'enable', '-g', rg, '--ports', '22', '--yes')
    return vms


def _setup(az, *args, extra_env=None):
    result = az.run(*args, extra_env=extra_env)
    if result.code != 0:
        raise Failed('set-up failed: {!r}'.format(result))
    return result


def peer_times(standin, az, runs):
    """Every pair of part 2: (label, A's Side, B's Side, target or None, A's command, B's command)."""
    world = standin.world
    security.set_defender_plan(world, True)
    asking = _group(standin, az, 'perf-request', runs + 1)
    listed = _group(standin, az, 'perf-list', 1)
    _setup(az, *_request('perf-list', listed)(0))
    empty = os.path.join(os.path.dirname(az.config_dir), 'no-extensions')   # removed with the benchmark's work dir
    os.makedirs(empty, exist_ok=True)
    with_it = Side(az, ['vm', 'list', '-g', 'perf-list'])
    pairs = [
        (REQUEST_PAIR, Side(az, _request('perf-request', asking)),
         _initiate_by_hand(standin, az, 'perf-request', asking), TARGETS['request'],
         'az vm jit request', 'az rest ... /initiate'),
        (LIST_PAIR, Side(az, ['vm', 'jit', 'list', '-g', 'perf-list']),
         Side(az, ['security', 'jit-policy', 'list', '-g', 'perf-list']), TARGETS['list -g'],
         'az vm jit list -g', 'az security jit-policy list -g'),
        ('az vm list, extension in/out', with_it,
         Side(_own_config(az, 'no-extension'), ['vm', 'list', '-g', 'perf-list'],
              extra_env={'AZURE_EXTENSION_DIR': empty}),
         TARGETS['az vm list'], 'az vm list -g (with it)', 'az vm list -g (without)'),
        ('az vm list, it / a no-op one', with_it,
         Side(_own_config(az, 'noop-extension'), ['vm', 'list', '-g', 'perf-list'],
              extra_env={'AZURE_EXTENSION_DIR': _noop_extension(_own_config(az, 'noop-extension'))}), None,
         'az vm list -g (with it)', 'az vm list -g (with an extension of one no-op `az vm` command instead)'),
    ]
    # The two controls of `az vm list` run in the same rounds, so they compare under the same load.
    time_pair(world, runs, *pairs[0][1:3])
    time_pair(world, runs, *pairs[1][1:3])
    time_pair(world, runs, pairs[2][1], pairs[2][2], pairs[3][2])
    # What az itself spends loading each command's module, by its own clock (`--debug`): the part of each time that
    # no extension under `az vm` can remove.
    for side, module in ((pairs[0][1], 'vm'), (pairs[0][2], 'util'), (pairs[1][1], 'vm'), (pairs[1][2], 'security'),
                         (with_it, 'jit'), (pairs[3][2], 'noop')):
        side.module, side.module_seconds = module, _module_seconds(world, side, module, runs)
    return pairs + [_nsg_pair(standin, az, runs)]


def _nsg_pair(standin, az, runs):
    """NSG mode's request beside a hand-made allow rule in the same NSG (a new name and priority per run)."""
    world = standin.world
    security.set_defender_plan(world, False)
    try:
        vms = _group(standin, az, 'perf-nsg', runs + 1)

        def rule_create(index):
            vm = vms[index]
            return ['network', 'nsg', 'rule', 'create', '-g', 'perf-nsg', '--nsg-name', vm['nsg_id'].split('/')[-1],
                    '-n', 'bench-peer-{}'.format(index), '--priority', PEER_PRIORITY + index, '--direction', 'Inbound',
                    '--access', 'Allow', '--protocol', 'Tcp', '--source-address-prefixes', REQUEST_SOURCE,
                    '--destination-address-prefixes', vm['private_ip'], '--destination-port-ranges', '22']
        a, b = Side(az, _request('perf-nsg', vms)), Side(az, rule_create)
        time_pair(world, runs, a, b)
    finally:
        security.set_defender_plan(world, True)
    return ('request (NSG mode)', a, b, None, 'az vm jit request', 'az network nsg rule create')


def print_times(pairs, runs):
    print('Whole-process times, {} runs of each side, A and B interleaved; ratios A / B of the medians (wall, cpu) and '
          'of the fastest runs (min: the least disturbed by the machine)'.format(runs))
    print('{:<29} {:>14} {:>14} {:>6} {:>6} {:>6} {:>7}  {:>9}  A / B'.format(
        'pair', 'A wall / cpu', 'B wall / cpu', 'wall', 'min', 'cpu', 'target', 'ARM calls'))
    for label, a, b, target, a_text, b_text in pairs:
        wall_a, wall_b = statistics.median(a.wall), statistics.median(b.wall)
        cpu_a, cpu_b = statistics.median(a.cpu), statistics.median(b.cpu)
        line = ('{:<29} {:>6.2f} / {:>5.2f} {:>6.2f} / {:>5.2f} {:>5.2f}x {:>5.2f}x {:>5.2f}x {:>7}  {:>4g} / {:<3g}  '
                '{} / {}')
        print(line.format(
            label, wall_a, cpu_a, wall_b, cpu_b, wall_a / wall_b, min(a.wall) / min(b.wall), cpu_a / cpu_b,
            '{:.2f}x'.format(target) if target else '-', statistics.median(a.calls), statistics.median(b.calls),
            a_text, b_text))
    (_, request, by_hand, *_), (_, listed, their_list, *_), (_, in_vm_list, *_) = pairs[:3]
    print()
    print("What az itself spends loading each command's module (its --debug timing, median of {} runs), and the "
          'ratios without it:'.format(runs))
    for label, a, b in ((REQUEST_PAIR, request, by_hand), (LIST_PAIR, listed, their_list)):
        rest_a = statistics.median(a.wall) - a.module_seconds
        rest_b = statistics.median(b.wall) - b.module_seconds
        print('  {:<20} {} module {:.2f} s / {} module {:.2f} s; the rest {:.2f} s / {:.2f} s = {:.2f}x'.format(
            label, a.module, a.module_seconds, b.module, b.module_seconds, rest_a, rest_b, rest_a / rest_b))
    print("  this extension's own loader, in every `az vm ...` command: {:.3f} s ({:.1%} of `az vm list -g`); the "
          "no-op extension's: {:.3f} s".format(in_vm_list.module_seconds,
                                               in_vm_list.module_seconds / statistics.median(in_vm_list.wall),
                                               pairs[3][2].module_seconds))


# -- the run ----------------------------------------------------------------------------------------------------------
def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tests.benchmarks.performance',
                                     description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--runs', type=int, default=15, help='timed runs of each side of a pair (default 15)')
    parser.add_argument('--only', choices=('calls', 'times'), help='run one part only')
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error('--runs must be at least 1')
    started = time.monotonic()
    print('{} UTC | az {} | Python {} | {} CPUs | load {:.2f} | {} timed runs per side'.format(
        dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M'), version('azure-cli'), platform.python_version(),
        os.cpu_count(), os.getloadavg()[0], args.runs))
    work = tempfile.mkdtemp(prefix='jit-bench-')
    standin = Standin(work).start()
    standin.add_test_identities()
    env = harness.AzEnvironment(work, standin, harness.installed_extension_dir(), harness.Tripwire())
    try:
        az = env.login('admin')
        if args.only != 'times':
            print()
            print_calls(arm_calls(standin, env, az))
        if args.only != 'calls':
            print()
            print_times(peer_times(standin, az, args.runs), args.runs)
        # What the tests' guards check after every test: nothing here may have passed for Azure's behaviour otherwise.
        if standin.world.schema_violations or env.tripwire.attempts:
            raise Failed('request bodies that violate the swagger: {}; attempts to reach hosts other than 127.0.0.1: '
                         '{}'.format(standin.world.schema_violations, env.tripwire.attempts))
    except Failed as ex:
        print('FAILED: {}'.format(ex), file=sys.stderr)
        return 1
    finally:
        standin.stop()
        env.tripwire.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    print()
    print('{:.0f} s in all'.format(time.monotonic() - started))
    return 0


if __name__ == '__main__':
    sys.exit(main())
