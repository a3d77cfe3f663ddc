# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Fleet cleanup (fleet/cleanup.py) over a scripted estate of two subscriptions: Resource Graph's (stale) answer only
picks the NSGs to read; what is deleted is what a fresh ARM read says is expired now. Counts the calls: one Resource
Graph query, one GET per candidate NSG, one DELETE per rule removed; nothing else."""
import copy
import datetime as dt
import json
import threading

import pytest
from azure.core.exceptions import HttpResponseError

from azext_jit.fleet import graph
from azext_jit.fleet.cleanup import fleet_cleanup
from azext_jit.fleet.scope import Scope
from azext_jit.modes import nsg_mode_records as records

SUB_A = '00000000-0000-0000-0000-00000000000a'
SUB_B = '00000000-0000-0000-0000-00000000000b'
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)


def _nsg_id(sub, name, group='rg1'):
    return f'/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Network/networkSecurityGroups/{name}'


def _allow(vm, request_id, port, minutes_left, priority=100):
    vm_id = f'/subscriptions/{SUB_A}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/{vm}'
    return records.build_allow_rule(vm_id, request_id, port, 'TCP', '198.51.100.7', '10.0.0.4', priority,
                                    NOW + dt.timedelta(minutes=minutes_left), 'alice@example.com')


class _Response:
    def __init__(self, status, code):
        self.status_code, self.reason, self.headers, self.request = status, 'reason', {}, None
        message = ("The client 'x' does not have authorization to perform action "
                   "'Microsoft.Network/networkSecurityGroups/securityRules/delete' over scope '/s'."
                   if status == 403 else 'Something went wrong.')
        self._body = {'error': {'code': code, 'message': message}}

    def json(self):
        return self._body

    def text(self, encoding=None):  # pylint: disable=unused-argument
        return json.dumps(self._body)

    def body(self):
        return self.text().encode()


def _error(status, code):
    return HttpResponseError(response=_Response(status, code))


class _World:
    """What ARM holds now (`nsgs`), what Resource Graph last saw (`graph_rows`), and every call made."""

    def __init__(self):
        self.nsgs, self.graph_rows = {}, []
        self.calls, self.lock = [], threading.Lock()
        self.read_errors, self.delete_errors = {}, {}
        self.azures = {}
        self.readable = [SUB_A, SUB_B]   # what `GET /subscriptions` shows the identity

    def put(self, sub, name, rules, seen_by_graph=None):
        nsg_id = _nsg_id(sub, name)
        self.nsgs[nsg_id.lower()] = {'id': nsg_id, 'name': name, 'properties': {'securityRules': rules}}
        graph_rules = rules if seen_by_graph is None else seen_by_graph
        self.graph_rows.append({'id': nsg_id, 'name': name, 'type': 'microsoft.network/networksecuritygroups',
                                'resourceGroup': 'rg1', 'subscriptionId': sub,
                                'properties': {'securityRules': copy.deepcopy(graph_rules)}})
        return nsg_id

    def note(self, *call):
        with self.lock:
            self.calls.append(call)


class _Poller:
    def result(self):
        return None


class _NsgReads:
    def __init__(self, world, sub):
        self.world, self.sub = world, sub

    def get(self, group, name, expand=None):  # pylint: disable=unused-argument
        nsg_id = _nsg_id(self.sub, name, group)
        self.world.note('GET', nsg_id)
        if nsg_id.lower() in self.world.read_errors:
            raise self.world.read_errors[nsg_id.lower()]
        if nsg_id.lower() not in self.world.nsgs:
            raise _error(404, 'ResourceNotFound')
        return copy.deepcopy(self.world.nsgs[nsg_id.lower()])


class _RuleWrites:
    def __init__(self, world, sub):
        self.world, self.sub = world, sub

    def begin_delete(self, group, nsg, rule):
        nsg_id = _nsg_id(self.sub, nsg, group)
        self.world.note('DELETE', nsg_id, rule)
        error = self.world.delete_errors.get(rule)
        if error:
            raise error
        held = self.world.nsgs[nsg_id.lower()]['properties']['securityRules']
        held[:] = [r for r in held if r['name'] != rule]
        return _Poller()


class _Graph:
    def __init__(self, world):
        self.world = world

    def send(self, method, path, api_version, body=None, query=None,  # pylint: disable=unused-argument
             headers_out=None, **options):
        assert (method, path) == ('POST', graph.PATH)
        self.world.note('POST graph', tuple(body['subscriptions']), body['query'])
        rows = [r for r in self.world.graph_rows if r['subscriptionId'] in body['subscriptions']]
        return {'totalRecords': len(rows), 'count': len(rows), 'resultTruncated': 'false', 'data': rows}

    def list(self, path, api_version, **_):  # pylint: disable=unused-argument
        assert path == '/subscriptions'
        self.world.note('GET subscriptions')
        return [{'subscriptionId': sub, 'state': 'Enabled'} for sub in self.world.readable]


class _Azure:
    def __init__(self, world, sub):
        self.world, self.subscription_id = world, sub
        self.nsgs = {}
        self.network = type('Network', (), {'network_security_groups': _NsgReads(world, sub),
                                            'security_rules': _RuleWrites(world, sub)})()
        self.rest = _Graph(world)

    def for_subscription(self, sub):
        return self.world.azures.setdefault(sub.lower(), _Azure(self.world, sub))

    def now(self):  # pylint: disable=no-self-use
        return NOW


@pytest.fixture(name='estate')
def _estate():
    """Two subscriptions: what Resource Graph saw a while ago, and what ARM holds now."""
    world = _World()
    expired_a, live_a = _allow('vm1', 'aaaa0001', 22, -5), _allow('vm1', 'aaaa0002', 3389, 30, 101)
    world.put(SUB_A, 'nsg1', [expired_a, live_a])
    # Removed since Resource Graph looked (the VM's next request did it), and a new request opened.
    gone = _allow('vm2', 'bbbb0001', 22, -30)
    world.put(SUB_A, 'nsg2', [_allow('vm2', 'bbbb0002', 22, 60)], seen_by_graph=[gone])
    # Nothing due: never read.
    world.put(SUB_A, 'nsg3', [_allow('vm3', 'cccc0001', 22, 10)])
    # Rewritten since Resource Graph looked: the same rule now ends later. Not deleted on stale data.
    stale = _allow('vm4', 'dddd0001', 22, -1)
    world.put(SUB_B, 'nsg4', [_allow('vm4', 'dddd0001', 22, 45)], seen_by_graph=[stale])
    expired_b = _allow('vm5', 'eeee0001', 3389, -60)
    world.put(SUB_B, 'nsg5', [expired_b])
    # Deleted since Resource Graph looked: nothing to do, and no failure.
    world.put(SUB_B, 'nsg6', [_allow('vm6', 'ffff0001', 22, -60)])
    del world.nsgs[_nsg_id(SUB_B, 'nsg6').lower()]
    world.expired = {'nsg1': expired_a['name'], 'nsg5': expired_b['name']}
    world.root = _Azure(world, SUB_A)
    world.azures[SUB_A.lower()] = world.root
    return world


def _writes(world):
    return [c for c in world.calls if c[0] == 'DELETE']


def test_fleet_cleanup_removes_what_arm_says_is_expired_and_nothing_graph_alone_says(estate):
    summary = fleet_cleanup(estate.root, Scope(subscriptions=[SUB_A, SUB_B]))
    assert sorted(c['name'] for c in summary['removed']) == sorted(estate.expired.values())
    assert sorted(c[1:] for c in _writes(estate)) == sorted([
        (_nsg_id(SUB_A, 'nsg1'), estate.expired['nsg1']), (_nsg_id(SUB_B, 'nsg5'), estate.expired['nsg5'])])
    assert summary['failed'] == [] and summary['count'] == 2
    assert {k: summary[k] for k in ('dryRun', 'scope', 'subscriptions')} == {
        'dryRun': False, 'scope': [SUB_A, SUB_B], 'subscriptions': 2}
    # Calls: one query, then one fresh GET per NSG Resource Graph shows with something due, and the deletes.
    assert [c[0] for c in estate.calls].count('POST graph') == 1
    assert sorted(c[1] for c in estate.calls if c[0] == 'GET') == sorted(
        _nsg_id(s, n) for s, n in ((SUB_A, 'nsg1'), (SUB_A, 'nsg2'), (SUB_B, 'nsg4'), (SUB_B, 'nsg5'),
                                   (SUB_B, 'nsg6')))
    assert len(estate.calls) == 1 + 5 + 2 + 1   # and the one list of readable subscriptions
    # What is still open stays.
    assert [r['name'] for r in estate.nsgs[_nsg_id(SUB_B, 'nsg4').lower()]['properties']['securityRules']] == \
        [records.allow_rule_name(f'/subscriptions/{SUB_A}/resourceGroups/rg1/providers/Microsoft.Compute/'
                                 'virtualMachines/vm4', 'dddd0001', 22, 'TCP')]


def test_the_query_asks_for_nsgs_with_jit_allow_rules_in_the_named_subscriptions(estate):
    fleet_cleanup(estate.root, Scope(subscriptions=[SUB_B], resource_group='rg1'))
    [(_, subs, query)] = [c for c in estate.calls if c[0] == 'POST graph']
    assert subs == (SUB_B,)
    assert "contains 'AzVmJit-Allow-'" in query and "resourceGroup =~ 'rg1'" in query


def test_a_dry_run_reads_the_same_and_writes_nothing(estate):
    summary = fleet_cleanup(estate.root, Scope(subscriptions=[SUB_A, SUB_B]), dry_run=True)
    assert sorted(c['name'] for c in summary['removed']) == sorted(estate.expired.values())
    assert summary['dryRun'] is True and _writes(estate) == []
    assert len([c for c in estate.calls if c[0] == 'GET']) == 5


def test_a_rule_that_cannot_be_removed_is_named_with_its_nsg_and_the_others_are_removed(estate):
    estate.delete_errors[estate.expired['nsg1']] = _error(403, 'AuthorizationFailed')
    estate.read_errors[_nsg_id(SUB_A, 'nsg2').lower()] = _error(500, 'InternalServerError')
    summary = fleet_cleanup(estate.root, Scope(subscriptions=[SUB_A, SUB_B]))
    assert [c['name'] for c in summary['removed']] == [estate.expired['nsg5']]
    rule_failure, read_failure = summary['failed']
    assert rule_failure.startswith(f"{estate.expired['nsg1']} in network security group nsg1 (resource group rg1, "
                                   f"subscription {SUB_A}): You are not allowed to perform "
                                   "'Microsoft.Network/networkSecurityGroups/securityRules/delete'")
    assert read_failure.startswith(f'the expired rules of network security group nsg2 (resource group rg1, '
                                   f'subscription {SUB_A}): Azure failed to complete the request (500')


def test_a_mode_that_expires_its_own_access_sends_no_query(estate):
    summary = fleet_cleanup(estate.root, Scope(subscriptions=[SUB_A]), mode='defender')
    assert estate.calls == [] and summary['removed'] == [] and summary['scope'] == [SUB_A]


def test_a_subscription_the_identity_cannot_read_is_a_failure_not_a_silent_gap(estate):
    estate.readable = [SUB_A]   # Resource Graph would answer nothing for B, and say nothing about it
    estate.graph_rows = [r for r in estate.graph_rows if r['subscriptionId'] == SUB_A]
    summary = fleet_cleanup(estate.root, Scope(subscriptions=[SUB_A, SUB_B]))
    assert [c['name'] for c in summary['removed']] == [estate.expired['nsg1']]
    assert summary['subscriptions'] == 1 and len(summary['failed']) == 1
    assert SUB_B in summary['failed'][0] and 'cannot read it' in summary['failed'][0]


def test_progress_counts_the_candidate_nsgs(estate):
    seen = []
    fleet_cleanup(estate.root, Scope(subscriptions=[SUB_A, SUB_B]), progress=lambda d, t: seen.append((d, t)))
    assert sorted(seen) == [(n, 5) for n in range(1, 6)]


def test_a_rule_named_like_ours_that_denies_or_goes_out_is_never_removed(estate):
    look_alikes = []
    for access, direction in (('Deny', 'Inbound'), ('Allow', 'Outbound')):
        rule = _allow('vm7', 'abcd000' + str(len(look_alikes)), 22, -60)
        rule['properties'].update(access=access, direction=direction, description='block ssh: incident 4711')
        look_alikes.append(rule)
    estate.put(SUB_A, 'nsg7', look_alikes)
    summary = fleet_cleanup(estate.root, Scope(subscriptions=[SUB_A]))
    assert {c['name'] for c in summary['removed']} == {estate.expired['nsg1']}
    assert [r['name'] for r in estate.nsgs[_nsg_id(SUB_A, 'nsg7').lower()]['properties']['securityRules']] == \
        [r['name'] for r in look_alikes]
