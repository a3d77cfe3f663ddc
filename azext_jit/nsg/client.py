# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Reading network security groups and writing their rules safely next to other writers (every mode).

Rule writes go one rule at a time (the securityRules sub-resource), never as a whole-NSG PUT: a
whole-NSG PUT would overwrite rules somebody else added since we read it. Two writers that pick the same
priority are told apart by Azure itself (400 SecurityRuleConflict, priorities are unique per direction):
the loser reads the NSG again and takes the next free priority.

An NSG takes one write at a time: while another writer's rule PUT or DELETE is in progress, Azure answers 429
`RetryableErrorDueToAnotherOperation`. The SDK pipeline retries a 429 (honouring Retry-After) only three
times, which a busy NSG outlasts, so every rule write here goes on retrying a 429 for up to `BUSY_SECONDS`
(a 429 means Azure did nothing, so repeating the write is safe). A rule PUT and a rule DELETE are long-running
operations: each call returns once Azure says the operation completed (a deleted rule is gone by then).

Never leave a rule behind: `add_rules` notes each rule it creates *before* writing it, so a write whose answer
never came (a dropped connection after Azure applied it), or whose operation ended `Failed`, is removed again
all the same; the error then says what happened, what was taken back and what, if anything, is still there.
"""
import os
import random
import time

from azure.mgmt.core.tools import parse_resource_id

from azext_jit.errors import AzureFailed, error_code, write_failed
from azext_jit.nsg.rules import rules_of

MAX_ATTEMPTS = 40
# How long a write keeps retrying 429s (another operation holds the NSG, or throttling); AZURE_JIT_BUSY_SECONDS
# changes it (a script that would rather fail fast, a test).
BUSY_SECONDS = 150


def _names(nsg_id):
    parts = parse_resource_id(nsg_id)
    return parts['resource_group'], parts['name']


def describe_nsg(nsg_id):
    """How messages name an NSG: with its resource group and subscription (fleet commands span many)."""
    parts = nsg_id.rstrip('/').split('/')
    if len(parts) < 9:
        return f'network security group {nsg_id}'
    return f'network security group {parts[8]} (resource group {parts[4]}, subscription {parts[2]})'


def read_nsg(azure, nsg_id, fresh=False):
    """The NSG as wire JSON. Within one command it is read once: every write through this module forgets the
    copy, and `fresh` forces a new read (after another writer won a priority). None for a VM without an NSG
    (detached since it was enabled), which holds no rules."""
    if not nsg_id:
        return None
    key = nsg_id.lower()
    if fresh or key not in azure.nsgs:
        rg, name = _names(nsg_id)
        azure.nsgs[key] = azure.network.network_security_groups.get(rg, name)
    return azure.nsgs[key]


def read_ahead(azure, nsg_id):
    """Read an NSG now that the command will read later anyway, so that the calls a mode makes next to its write come
    last (Defender's policy read, right before its PUT). A failure here is no failure: the read that needs the NSG
    meets it again and says so."""
    from azure.core.exceptions import HttpResponseError
    if nsg_id:
        try:
            read_nsg(azure, nsg_id)
        except HttpResponseError:
            pass


def list_nsgs(azure, resource_group=None):
    ops = azure.network.network_security_groups
    return list(ops.list(resource_group) if resource_group else ops.list_all())


def _retry_after(ex):
    """Seconds Azure asked us to wait (its Retry-After header), within 1..30; 2 when it named none."""
    try:
        return min(max(int(ex.response.headers.get('Retry-After')), 1), 30)
    except (AttributeError, TypeError, ValueError):
        return 2


def busy_seconds():
    """How long to keep waiting while Azure answers 429: BUSY_SECONDS, or $AZURE_JIT_BUSY_SECONDS."""
    try:
        return max(float(os.environ.get('AZURE_JIT_BUSY_SECONDS', BUSY_SECONDS)), 0)
    except ValueError:
        return BUSY_SECONDS


def while_busy(call):
    """`call()`, repeated while Azure answers 429 (the NSG is held by another operation, or throttling), for up to
    BUSY_SECONDS (or $AZURE_JIT_BUSY_SECONDS). A 429 means nothing was done, so the repeat is safe. The last 429 is
    raised when time runs out."""
    from azure.core.exceptions import HttpResponseError
    deadline = time.monotonic() + busy_seconds()
    while True:
        try:
            return call()
        except HttpResponseError as ex:
            if getattr(ex, 'status_code', None) != 429 or time.monotonic() >= deadline:
                raise
            # Jitter keeps writers that were refused together from coming back together.
            time.sleep(min(_retry_after(ex) + random.uniform(0, 1), max(deadline - time.monotonic(), 0)))


def put_rule(azure, nsg_id, rule):
    """Create or update one rule and wait until Azure has completed it (its wire JSON)."""
    rg, name = _names(nsg_id)
    body = {'properties': {k: v for k, v in rule['properties'].items() if k != 'provisioningState'}}
    azure.nsgs.pop(nsg_id.lower(), None)
    ops = azure.network.security_rules
    written = while_busy(lambda: ops.begin_create_or_update(rg, name, rule['name'], body).result())
    return written or {'name': rule['name'], **body}   # an empty answer: what was written


def delete_rule(azure, nsg_id, rule_name):
    """Delete a rule and wait until it is gone; one that is already gone is not an error (Azure answers 204)."""
    rg, name = _names(nsg_id)
    azure.nsgs.pop(nsg_id.lower(), None)
    ops = azure.network.security_rules
    while_busy(lambda: ops.begin_delete(rg, name, rule_name).result())


def _is_priority_clash(ex):
    return getattr(ex, 'status_code', None) == 400 and error_code(ex) == 'SecurityRuleConflict'


def add_rules(azure, nsg_id, build, nsg=None):
    """Create rules whose priorities depend on what the NSG holds, retrying when another writer wins.

    `build(nsg, attempt)` returns the rules to write given the NSG's current state (it picks priorities);
    rules already written in an earlier attempt are not written again. Returns the written rules.
    A rule that already existed under its name is updated in place and never rolled back (that would delete it).
    On any failure the rules this call created are deleted again, including one whose PUT Azure may have applied
    without its answer reaching us, and the failure is raised as a JitError that says what is left (`write_failed`).
    """
    written, created = {}, set()
    try:
        for attempt in range(MAX_ATTEMPTS):
            if nsg is None or attempt:
                nsg = read_nsg(azure, nsg_id, fresh=attempt > 0)
            present = {r['name'].lower() for r in rules_of(nsg)}
            pending = [r for r in build(nsg, attempt) if r['name'] not in written]
            try:
                for rule in pending:
                    if rule['name'].lower() not in present:
                        created.add(rule['name'])   # before the PUT: its answer may never come back
                    written[rule['name']] = put_rule(azure, nsg_id, rule)
                return list(written.values())
            except Exception as ex:  # pylint: disable=broad-except
                from azure.core.exceptions import HttpResponseError
                if not (isinstance(ex, HttpResponseError) and _is_priority_clash(ex)):
                    raise
                # Someone else took that priority between our read and our write: back off a little, read again.
                time.sleep(random.uniform(0.05, 0.25) * min(attempt + 1, 4))
        raise AzureFailed(f'Could not find a free priority in {nsg_id} after {MAX_ATTEMPTS} attempts: other writers '
                          'keep taking them.',
                          'Run the command again; nothing of this attempt was left behind.')
    except BaseException as ex:
        left = _roll_back(azure, nsg_id, created)
        if not isinstance(ex, Exception):   # Ctrl+C: rolled back, and stop
            raise
        raise write_failed(ex, nsg_id, sorted(created - set(left)), left) from ex


def _roll_back(azure, nsg_id, written):
    """Never leave half a change: remove the rules this call wrote (or may have written) before it failed. Returns
    the names that could not be removed (an allow rule's own description says when it ends, so `cleanup` removes it
    then at the latest)."""
    left = []
    for name in sorted(written):
        try:
            delete_rule(azure, nsg_id, name)
        except Exception:  # pylint: disable=broad-except
            left.append(name)
    return left
