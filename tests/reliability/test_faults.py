# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Faults injected on every write path of both modes, and `az` killed in the middle of a command.

One VM per test goes through its whole life (enable, request, revoke, cleanup in NSG mode, disable) with one kind
of fault armed on the writes of each command. After every run of a command Azure must hold no half state
(`world_state.half_states`), a failed run must end in one ERROR line with exit code 1 and no traceback, and running
the command again (the healing run) must finish its job. Each injected fault that was hit is one counted item.

Kinds: `transient` arms, on every write of the command, a dropped connection (PUT and DELETE only, which the SDK may
send again), a 429 with Retry-After and then a 500 (the SDK retries what it may; what it may not, a PATCH or POST,
fails the command and the next run goes through); `drop` (for a rule write: every poll lost after Azure accepted
it; otherwise the connection dropped before the answer), `412` and `kill` hit each command's key write (the one
after which a failure would leave the most behind); `lro-failed` makes the long-running operation of a rule write of
each command end `Failed`. A failed run's error line must be words, not an exception's repr.
"""
import re

import pytest

from tests.harness import ALLOW_ANY_SSH, policy_tags, vm_rules
from tests.reliability import world_state as ws

TAGS = r'/providers/Microsoft\.Resources/tags/default$'
POLICY = r'/jitNetworkAccessPolicies/default$'
CONFLICT_RULE = r'/securityRules/AllowSshAny$'
OUR_ALLOW = r'/securityRules/AzVmJit-Allow-'
OUR_DENY = r'/securityRules/AzVmJit-Deny-'

# Every write each command makes, in the order it makes them; the key write is marked with a *.
WRITES = {
    'nsg': {
        'enable': [('PATCH', TAGS), ('*PUT', OUR_DENY), ('DELETE', CONFLICT_RULE)],
        'request': [('*PUT', OUR_ALLOW)],
        'revoke': [('*DELETE', OUR_ALLOW), ('PATCH', TAGS)],
        'cleanup': [('*DELETE', OUR_ALLOW)],
        'disable': [('PATCH', TAGS), ('*DELETE', OUR_DENY), ('PUT', CONFLICT_RULE)],
    },
    'defender': {
        'enable': [('*PUT', POLICY), ('PATCH', TAGS), ('DELETE', CONFLICT_RULE)],
        'request': [('*POST', r'/initiate$')],
        'revoke': [('*DELETE', r'/securityRules/SecurityCenter-JITRule-'), ('PATCH', TAGS)],
        # The last VM out of a policy takes the policy with it (DELETE); others are written back (PUT).
        'disable': [('*PUT|DELETE', POLICY), ('PUT', CONFLICT_RULE), ('PATCH', TAGS)],
    },
}
LRO_WRITES = ('PUT', 'DELETE')   # the Network RP's rule writes are long-running operations; Defender's are not
SOURCE = '198.51.100.77'


def key_write(mode, command):
    return next((m[1:], p) for m, p in WRITES[mode][command] if m.startswith('*'))


def all_writes(mode, command):
    return [(m.lstrip('*'), p) for m, p in WRITES[mode][command]]


class Life:
    """One VM's life under faults, and the checks after each step."""

    def __init__(self, az, standin, rg, mode, tally):
        self.az, self.standin, self.rg, self.mode, self.tally = az, standin, rg, mode, tally
        self.world = standin.world
        self.vm = standin.vm(rg, 'f1', rules=[ALLOW_ANY_SSH])
        self.reported = set()
        self.expired = None

    def args(self, command):
        target = ['-g', self.rg, '-n', 'f1']
        return {
            'enable': ['enable', *target, '--ports', '22', '--yes', '--mode', self.mode],
            'request': ['request', *target, '--ports', '22', '--source', SOURCE, '--duration', '60'],
            'revoke': ['revoke', *target, '--all'],
            'cleanup': ['cleanup', '-g', self.rg],
            'disable': ['disable', *target, '--yes'],
        }[command]

    def scoped(self, path):
        """A write path regex narrowed to this test's resource group."""
        return re.escape(self.rg) + '/.*' + path.lstrip('/')

    def half_states(self):
        return ws.half_states(self.standin, self.rg, self.vm, self.mode, self.reported)

    def goal_missed(self, command):
        """What the command's job still lacks after a successful run."""
        s, vm = self.standin, self.vm
        missed = []
        if command == 'enable':
            if self.mode == 'nsg':
                denies = [r for r in vm_rules(s, vm) if r['properties']['access'] == 'Deny']
                protected = policy_tags(s, vm['id']) and denies
            else:
                protected = ws.defender_entry(s, self.rg, vm) and ws.defender_denies(s, vm)
            if not protected:
                missed.append('VM not protected')
            if ws.conflict_present(s, vm):
                missed.append('conflicting allow-any rule still there')
        elif command == 'request':
            if not (ws.nsg_allow_ids(s, vm) if self.mode == 'nsg' else ws.defender_allows(s, vm)):
                missed.append('no allow rule')
        elif command == 'revoke':
            if ws.nsg_allow_ids(s, vm) or ws.defender_allows(s, vm):
                missed.append('allow rules still open')
        elif command == 'cleanup':
            if self.expired in ws.nsg_allow_ids(s, vm):
                missed.append('expired rule still there')
        elif command == 'disable':
            left = ws.nothing_half_done(s, vm)
            if left:
                missed.append(f'left behind: {left}')
            if len(ws.conflict_present(s, vm)) != 1:
                missed.append('the removed allow-any rule is not back')
        return missed

    def note(self, command, result):
        if command == 'request' and result.code == 0 and result.json:
            self.reported.add(result.json['id'].lower())

    def run(self, command, max_runs):
        """Run `command` until it succeeds (at most max_runs: each failed run may have met one fault); returns the
        problems seen on the way. A fault still unhit after the success counts against its item."""
        problems, result = [], None
        for attempt in range(max_runs):
            result = self.az.run('vm', 'jit', *self.args(command))
            self.note(command, result)
            if result.code != 0 and not ws.sane_failure(result):
                problems.append(f'run {attempt + 1}: not one clean error line: exit {result.code}, '
                                f'stderr {result.stderr[-600:]!r}')
            problems += [f'run {attempt + 1} (exit {result.code}): {p}' for p in self.half_states()]
            if result.code == 0:
                break
        if result.code != 0:
            problems.append(f'never succeeded: {result!r}')
        else:
            problems += self.goal_missed(command)
        self.acknowledge()
        return problems

    def acknowledge(self):
        """Rules already counted against one step are not counted again against the next."""
        self.reported |= ws.nsg_allow_ids(self.standin, self.vm)

    def before(self, command):
        """Set-up a step needs: something open to revoke or expire."""
        if command == 'revoke' and not (ws.nsg_allow_ids(self.standin, self.vm) or ws.defender_allows(
                self.standin, self.vm)):
            self.az.ok('vm', 'jit', *self.args('request'))
        if command == 'cleanup':
            opened = self.az.ok('vm', 'jit', 'request', '-g', self.rg, '-n', 'f1', '--ports', '22', '--source',
                                SOURCE, '--duration', '5')
            self.expired = opened['id'].lower()
            self.reported.add(self.expired)
            self.world.clock.advance(minutes=10)

    def commands(self):
        return list(WRITES[self.mode])


def _transient(life, command, faults):
    armed = []
    for method, path in all_writes(life.mode, command):
        if method in LRO_WRITES or method == 'PUT|DELETE':   # the SDK may send these again after a lost answer
            armed.append(faults(method, life.scoped(path), kind='drop'))
        armed.append(faults(method, life.scoped(path), status=429, code='TooManyRequests', message='Throttled.',
                            retry_after=1))
        armed.append(faults(method, life.scoped(path), status=500))
    problems = life.run(command, len(armed) + 1)
    for fault in armed:
        what = 'dropped connection' if fault.kind == 'drop' else fault.status
        life.tally.check(f'{life.mode} {command}: {what} on {fault.method} {fault.path}', fault.hits == 1 and
                         not problems, f'hits {fault.hits}; {problems}')


def _on_key_write(what, **fault_args):
    def inject(life, command, faults):
        method, path = key_write(life.mode, command)
        fault = faults(method, life.scoped(path), **fault_args)
        problems = life.run(command, 2)
        life.tally.check(f'{life.mode} {command}: {what} on {method} {path}', fault.hits == 1 and not problems,
                         f'hits {fault.hits}; {problems}')
    return inject


def _dropped(life, command, faults):
    """For a rule write: Azure accepts it, and every poll of its long-running operation loses its connection (the
    client never learns how it ended). For any other key write: the connection drops before Azure answers."""
    method, path = key_write(life.mode, command)
    if method in LRO_WRITES and 'jitNetworkAccess' not in path:
        with ws.dropping_polls(life.world, method, life.scoped(path)) as polls:
            problems = life.run(command, 2)
        life.tally.check(f'{life.mode} {command}: connection dropped on every poll after {method} {path} was '
                         'accepted', polls.hits == 1 and not problems, f'hits {polls.hits}; {problems}')
    else:
        fault = faults(method, life.scoped(path), kind='drop')
        problems = life.run(command, 2)
        life.tally.check(f'{life.mode} {command}: dropped connection on {method} {path}', fault.hits == 1 and
                         not problems, f'hits {fault.hits}; {problems}')


def _lro_failed(life, command, faults):  # pylint: disable=unused-argument
    writes = [(m, p) for m, p in all_writes(life.mode, command) if m in LRO_WRITES and 'jitNetworkAccess' not in p]
    if not writes:
        if command in ('enable', 'request'):   # what a later step stands on; nothing of theirs is long-running
            life.az.ok('vm', 'jit', *life.args(command))
            life.note(command, life.az.history[-1])
        return
    method, path = writes[0] if (key_write(life.mode, command) not in writes) else key_write(life.mode, command)
    with ws.failing_operation(life.world, method, life.scoped(path)) as armed:
        problems = life.run(command, 2)
    life.tally.check(f'{life.mode} {command}: long-running operation of {method} {path} ends Failed',
                     armed.hits == 1 and not problems, f'hits {armed.hits}; {problems}')


def _kill(life, command, faults):  # pylint: disable=unused-argument
    method, path = key_write(life.mode, command)
    hit = ws.kill_during(life.az, life.world, life.args(command), method, life.scoped(path))
    problems = []
    if command == 'request':
        # The killed request's rule may have landed: the healing command is the one that tells the user about it.
        shown = life.az.run('vm', 'jit', 'show', '-g', life.rg, '-n', 'f1')
        if shown.code != 0:
            problems.append(f'show after the kill failed: {shown!r}')
        else:
            life.reported |= {r['id'].lower() for r in shown.json.get('requests') or [] if r['status'] == 'active'}
            problems += life.half_states() + life.goal_missed(command)
        life.acknowledge()
    else:
        problems = life.run(command, 1)
    life.tally.check(f'{life.mode} {command}: az killed (SIGKILL) during {method} {path}, then run again',
                     hit and not problems, f'hit {hit}; {problems}')


KINDS = {
    'transient': _transient,
    'drop': _dropped,
    '412': _on_key_write('412', status=412, code='PreconditionFailed', message='Precondition failed.'),
    'lro-failed': _lro_failed,
    'kill': _kill,
}


def _cases():
    for kind in KINDS:
        for mode in ('nsg', 'defender'):
            yield pytest.param(mode, kind, id=f'{kind}-{mode}')


@pytest.mark.parametrize('mode,kind', list(_cases()))
def test_every_write_path_survives_faults_without_half_state(az, standin, rg, faults, tally, request, mode, kind):
    if mode == 'nsg':
        request.getfixturevalue('defender_off')
    counted = tally('faults')
    life = Life(az, standin, rg, mode, counted)
    for command in life.commands():
        life.before(command)
        KINDS[kind](life, command, faults)
    counted.verify()
