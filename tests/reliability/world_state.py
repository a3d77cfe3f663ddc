# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""What Azure holds for one VM, read from the stand-in, and the half states the reliability suite looks for.

A half state is what a command must never leave behind, whatever failed under it:
- a JIT policy (NSG mode's `azvmjit-policy` tag, or the VM's entry in Defender's policy) without its deny rule;
- a conflicting rule `enable` removed (`AllowSshAny`) that is gone from the NSG without a restore record naming it;
- an allow rule the product wrote for a request nobody was told about (not among `reported` request ids);
- a revocation note on a request whose allow rule is still in the NSG (it would hide open access).
"""
import json
import re
import subprocess
import time

from tests.harness import ALLOW_ANY_SSH, error_lines, jit_tags, policy_tags, product_rules, stored_policy, vm_rules
from tests.standin import security
from tests.standin.world import Fault

ALLOW_ID = re.compile(r'^AzVmJit-Allow-[0-9a-f]{8}-(?P<rid>[0-9a-f]{8})-', re.I)
CONFLICT = ALLOW_ANY_SSH['name']


def vm_of(standin, vm):
    return standin.world.get(vm['id'])


def restore_names(standin, vm):
    """The rule names the VM's restore record claims (the record spans several tags)."""
    tags = jit_tags(standin, vm['id'])
    if 'azvmjit-restore' not in tags:
        return []
    text, i = tags['azvmjit-restore'], 1
    while f'azvmjit-restore.{i}' in tags:
        text += tags[f'azvmjit-restore.{i}']
        i += 1
    try:
        return [r.get('name') for r in json.loads(text)]
    except ValueError:
        return ['<unreadable>']


def revoked_ids(standin, vm):
    return {k[len('azvmjit-revoked-'):].lower() for k in jit_tags(standin, vm['id']) if
            k.startswith('azvmjit-revoked-')}


def nsg_allow_ids(standin, vm):
    """Request ids of the product's NSG-mode allow rules for this VM."""
    return {ALLOW_ID.match(r['name']).group('rid').lower() for r in vm_rules(standin, vm)
            if r['properties']['access'] == 'Allow' and ALLOW_ID.match(r['name'])}


def defender_entry(standin, rg, vm):
    policy = stored_policy(standin, rg)
    if not policy:
        return None
    return next((e for e in policy['properties']['virtualMachines'] if e['id'].lower() == vm['id'].lower()), None)


def defender_allows(standin, vm):
    return [r for r in security.defender_rules(standin.world, vm['nsg_id']) if r['properties']['access'] == 'Allow'
            and r['properties'].get('destinationAddressPrefix') == vm['private_ip']]


def defender_denies(standin, vm):
    return [r for r in security.defender_rules(standin.world, vm['nsg_id']) if r['properties']['access'] == 'Deny'
            and r['properties'].get('destinationAddressPrefix') == vm['private_ip']]


def conflict_present(standin, vm):
    return [r for r in standin.nsg_rules(vm['nsg_id']) if r['name'] == CONFLICT]


def half_states(standin, rg, vm, mode, reported):
    """Every half state Azure holds for `vm` now; `reported`: request ids the product has told the user about."""
    found = []
    if mode == 'nsg':
        denies = [r for r in vm_rules(standin, vm) if r['properties']['access'] == 'Deny']
        if policy_tags(standin, vm['id']) and not denies:
            found.append('policy tag without its deny rule')
        unknown = nsg_allow_ids(standin, vm) - {r.lower() for r in reported}
        if unknown:
            found.append(f'allow rules for requests never reported: {sorted(unknown)}')
        hidden = nsg_allow_ids(standin, vm) & revoked_ids(standin, vm)
        if hidden:
            found.append(f'revocation note on requests whose allow rule is still there: {sorted(hidden)}')
    else:
        if defender_entry(standin, rg, vm) and not defender_denies(standin, vm):
            found.append("VM in Defender's policy without its deny rule")
        if revoked_ids(standin, vm) and defender_allows(standin, vm):
            # The revocation notes name request ids; the rules are Defender's: any open rule beside a note that
            # was written by the last revoke is a hidden open access.
            found.append('revocation note while a Defender allow rule of the VM is still open')
    if not conflict_present(standin, vm) and CONFLICT not in restore_names(standin, vm):
        found.append(f'{CONFLICT} removed without a restore record')
    return found


# A Python exception's repr where a sentence should be: "('Connection aborted.', RemoteDisconnected('Remote end ..."
RAW_EXCEPTION = re.compile(r"^ERROR: \('|\b[A-Z]\w*(Error|Exception|Disconnected|Timeout)\('")


def sane_failure(result):
    """A failed command's answer a user can act on: exit code 1, one ERROR line in words (not an exception's
    repr), no traceback."""
    errors = error_lines(result)
    return (result.code == 1 and len(errors) == 1 and 'Traceback' not in result.stderr
            and not RAW_EXCEPTION.search(errors[0]))


def nothing_half_done(standin, vm):
    """Product rules and records left for `vm` (empty after a complete disable)."""
    left = [r['name'] for r in product_rules(standin, vm['nsg_id']) if r['properties']['destinationAddressPrefix']
            == vm['private_ip']] + [r['name'] for r in security.defender_rules(standin.world, vm['nsg_id'])
                                    if r['properties'].get('destinationAddressPrefix') == vm['private_ip']]
    return left + sorted(k for k in jit_tags(standin, vm['id']) if not k.startswith('azvmjit-revoked-'))


# -- faults the stand-in's Fault cannot express --------------------------------------------------------------------
class _FailingOperations(dict):
    """world.operations that makes the next long-running operation started by a matching request end `Failed`.

    The request is found in the caller's frame (server.start_operation(req, ...)): the stand-in has no scripted
    LRO failure of its own yet. What was written stays written, as when Azure accepts a PUT and then fails to
    provision it."""

    def __init__(self, base, method, path):
        super().__init__(base)
        self.method, self.path, self.hits = method, path, 0

    def __setitem__(self, key, value):
        import sys
        req = sys._getframe(1).f_locals.get('req')  # pylint: disable=protected-access
        if (not self.hits and req is not None and req.method == self.method
                and re.search(self.path, req.path, re.I)):
            self.hits += 1
            value = dict(value, status='Failed', on_done=None)
        super().__setitem__(key, value)


class _DroppingPolls(dict):
    """world.operations that, when a matching request starts its long-running operation, drops every poll of it:
    Azure accepted the write, and the connection is lost before the client learns how it ended."""

    def __init__(self, base, world, method, path):
        super().__init__(base)
        self.world, self.method, self.path, self.hits, self.added = world, method, path, 0, []

    def __setitem__(self, key, value):
        import sys
        req = sys._getframe(1).f_locals.get('req')  # pylint: disable=protected-access
        if (not self.hits and req is not None and req.method == self.method
                and re.search(self.path, req.path, re.I)):
            self.hits += 1
            self.added.append(Fault('GET', '/operation(s|Results)/' + re.escape(key), kind='drop', times=50))
            self.world.faults.append(self.added[-1])
        super().__setitem__(key, value)


class dropping_polls:  # pylint: disable=invalid-name
    """`with dropping_polls(world, 'PUT', regex) as armed:` ... `armed.hits`."""

    def __init__(self, world, method, path):
        self.world, self.method, self.path = world, method, path
        self.ops = None

    def __enter__(self):
        self.ops = _DroppingPolls(self.world.operations, self.world, self.method, self.path)
        self.world.operations = self.ops
        return self.ops

    def __exit__(self, *exc):
        self.world.operations = dict(self.world.operations)
        for fault in self.ops.added:
            if fault in self.world.faults:
                self.world.faults.remove(fault)
        return False


class failing_operation:  # pylint: disable=invalid-name
    """`with failing_operation(world, 'PUT', regex) as armed:` ... `armed.hits`."""

    def __init__(self, world, method, path):
        self.world, self.method, self.path = world, method, path
        self.ops = None

    def __enter__(self):
        self.ops = _FailingOperations(self.world.operations, self.method, self.path)
        self.world.operations = self.ops
        return self.ops

    def __exit__(self, *exc):
        plain = dict(self.world.operations)
        self.world.operations = plain
        return False


def kill_during(az, world, args, method, path, delay=1.5):
    """Start `az vm jit <args>`, hold the matching write in the stand-in, SIGKILL that az process (by its PID)
    while the write is held, and wait until the held write has reached Azure. Returns True when it was hit."""
    fault = Fault(method, path, kind='delay', delay=delay)
    world.faults.append(fault)
    start = len(world.requests)
    try:
        proc = az.popen('vm', 'jit', *args)
        deadline = time.monotonic() + 120
        while fault.hits == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if fault.hits:
            proc.kill()
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        if not fault.hits:
            return False
        deadline = time.monotonic() + delay + 30
        while time.monotonic() < deadline and not any(
                r.method == method and re.search(path, r.path, re.I) for r in world.requests[start:]):
            time.sleep(0.05)
        return True
    finally:
        if fault in world.faults:
            world.faults.remove(fault)
