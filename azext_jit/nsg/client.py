# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Reading network security groups and writing their rules safely next to other writers (every mode).

Rule writes go one rule at a time (the securityRules sub-resource), never as a whole-NSG PUT: a
whole-NSG PUT would overwrite rules somebody else added since we read it. Two writers that pick the same
priority are told apart by Azure itself (400 SecurityRuleConflict, priorities are unique per direction):
the loser reads the NSG again and takes the next free priority. Throttling (429) and server errors are
retried by the SDK pipeline, honouring Retry-After.
"""
import random
import time

from azure.mgmt.core.tools import parse_resource_id

from azext_jit.errors import AzureFailed, error_code
from azext_jit.nsg.rules import rules_of
from azext_jit.wire import wire

MAX_ATTEMPTS = 40


def _names(nsg_id):
    parts = parse_resource_id(nsg_id)
    return parts['resource_group'], parts['name']


def read_nsg(azure, nsg_id, fresh=False):
    """The NSG as wire JSON. Within one command it is read once: every write through this module forgets the
    copy, and `fresh` forces a new read (after another writer won a priority). None for a VM without an NSG
    (detached since it was enabled), which holds no rules."""
    if not nsg_id:
        return None
    key = nsg_id.lower()
    if fresh or key not in azure.nsgs:
        rg, name = _names(nsg_id)
        azure.nsgs[key] = wire(azure.network.network_security_groups.get(rg, name))
    return azure.nsgs[key]


def list_nsgs(azure, resource_group=None):
    ops = azure.network.network_security_groups
    return [wire(n) for n in (ops.list(resource_group) if resource_group else ops.list_all())]


def put_rule(azure, nsg_id, rule):
    rg, name = _names(nsg_id)
    body = {'properties': {k: v for k, v in rule['properties'].items() if k != 'provisioningState'}}
    azure.nsgs.pop(nsg_id.lower(), None)
    return wire(azure.network.security_rules.begin_create_or_update(rg, name, rule['name'], body).result())


def delete_rule(azure, nsg_id, rule_name):
    """Delete a rule; one that is already gone is not an error (Azure answers 204)."""
    rg, name = _names(nsg_id)
    azure.nsgs.pop(nsg_id.lower(), None)
    azure.network.security_rules.begin_delete(rg, name, rule_name).result()


def _is_priority_clash(ex):
    return getattr(ex, 'status_code', None) == 400 and error_code(ex) == 'SecurityRuleConflict'


def add_rules(azure, nsg_id, build, nsg=None):
    """Create rules whose priorities depend on what the NSG holds, retrying when another writer wins.

    `build(nsg, attempt)` returns the rules to write given the NSG's current state (it picks priorities);
    rules already written in an earlier attempt are not written again. Returns the written rules.
    A rule that already existed under its name is updated in place and never rolled back (that would delete it).
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
                    written[rule['name']] = put_rule(azure, nsg_id, rule)
                    if rule['name'].lower() not in present:
                        created.add(rule['name'])
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
    except BaseException:
        _roll_back(azure, nsg_id, created)
        raise


def _roll_back(azure, nsg_id, written):
    """Never leave half a change: remove the rules this call wrote before it failed (best effort; what cannot
    be removed is an allow rule whose own description says when it ends, so `cleanup` removes it then)."""
    for name in written:
        try:
            delete_rule(azure, nsg_id, name)
        except Exception:  # pylint: disable=broad-except
            pass
