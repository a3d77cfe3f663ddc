# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""tests/standin/arm.py's Activity Log, over HTTPS: the `$filter` patterns Azure accepts (an eventTimestamp range
and at most ONE of resourceGroupName, resourceUri, resourceProvider, correlationId; `caller` and `status` beside
them, as `az monitor activity-log list` sends), the 90 days it keeps, `$select`, paging, events that show up late;
and what its events say: each write's request body as sent, and each caller named as Azure names its kind (an app
by its client id, a user by UPN, a managed identity by its object id with its resource in the claims, Defender by
its first-party app id)."""
import datetime as dt
import json

import pytest
import requests

from tests.conformance import fresh_worlds
from tests.harness import page_size
from tests.standin import arm, security, tokens
from tests.standin.world import World

API = '2015-04-01'
NET_API = '2024-05-01'
JIT_API = '2020-01-01'
RULE_WRITE = 'Microsoft.Network/networkSecurityGroups/securityRules/write'
UPN_CLAIM = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn'


fixture_standin = pytest.fixture(name='standin', scope='module')(fresh_worlds.module_standin)


@pytest.fixture(name='query')
def fixture_query(standin):
    """query($filter) -> the HTTP answer, against a fresh world holding one write by an Owner in group rg1."""
    standin.world = standin.server.world = World()
    world = standin.world
    admin = world.add_identity('admin', [('Owner', '/subscriptions/' + world.subscription_id)])
    rid = '/subscriptions/{}/resourceGroups/rg1/providers/Microsoft.Security/locations/westeurope/' \
          'jitNetworkAccessPolicies/default'.format(world.subscription_id)
    world.record_event(admin, 'Microsoft.Security/locations/jitNetworkAccessPolicies/write', rid)
    session = requests.Session()

    def run(text, **params):
        token = tokens.issue(world, admin, standin.base_url + '/')
        return session.get(standin.base_url + '/subscriptions/{}/providers/microsoft.insights/eventtypes/management/'
                           'values'.format(world.subscription_id),
                           params=dict({'api-version': API, '$filter': text}, **params),
                           headers={'Authorization': 'Bearer ' + token}, verify=standin.ca_path)
    run.world, run.rid, run.caller = world, rid, admin.caller
    yield run
    session.close()


class Env:
    """A fresh world with an Owner, resource group rg1 and an empty NSG nsg1; calls as any identity, and reads
    the Activity Log of rg1 the way a client does (over HTTPS, following nextLink)."""

    def __init__(self, standin):
        self.standin, self.world, self.sub = standin, standin.world, standin.sub
        self.admin = self.world.add_identity('admin', [('Owner', '/subscriptions/' + self.sub)])
        self.nsg_id = standin.nsg('rg1', 'nsg1')['id']
        self.session = requests.Session()

    def call(self, method, path, text=None, api=NET_API, ident=None, url=None, **params):
        """Send `text` (a request body, JSON text exactly as given) as `ident` (default: the Owner)."""
        headers = {'Authorization': 'Bearer ' + tokens.issue(self.world, ident or self.admin,
                                                             self.standin.base_url + '/')}
        if text is not None:
            headers['Content-Type'] = 'application/json'
        if url is None:
            url, params = self.standin.base_url + path, dict(params, **{'api-version': api})
        return self.session.request(method, url, params=params or None, data=text, headers=headers,
                                    verify=self.standin.ca_path)

    def put_rule(self, name, priority, ident=None):
        """PUT an allow rule for port 22 with a body in a spelling of its own (indented, keys in an odd order), so
        that a log keeping the body as sent can be told from one that writes it again; returns the text sent."""
        text = json.dumps({'properties': {'priority': priority, 'access': 'Allow', 'direction': 'Inbound',
                                          'protocol': 'Tcp', 'sourcePortRange': '*', 'destinationPortRange': '22',
                                          'sourceAddressPrefix': '203.0.113.5', 'destinationAddressPrefix': '*'}},
                          indent=2)
        resp = self.call('PUT', self.nsg_id + '/securityRules/' + name, text, ident=ident)
        assert resp.status_code in (200, 201), resp.text
        # Poll the write to its end, as every client does: the NSG takes no other write until then.
        while self.call('GET', None, url=resp.headers['Azure-AsyncOperation']).json()['status'] == 'InProgress':
            pass
        return text

    def events(self, **params):
        """Every event of rg1 in the last hour, newest first, as the log answers them page by page."""
        since = (self.world.clock.now() - dt.timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%SZ')
        resp = self.call('GET', '/subscriptions/{}/providers/microsoft.insights/eventtypes/management/values'.format(
            self.sub), api=API, **dict({'$filter': "eventTimestamp ge '{}' and resourceGroupName eq 'rg1'".format(
                since)}, **params))
        found = []
        while True:
            assert resp.status_code == 200, resp.text
            found += resp.json()['value']
            if not resp.json().get('nextLink'):
                return found
            resp = self.call('GET', None, url=resp.json()['nextLink'])


@pytest.fixture(name='env')
def fixture_env(standin):
    yield from fresh_worlds.fresh_env(standin, Env)


def _since(world, minutes=10):
    return "eventTimestamp ge '{}'".format((world.clock.now() - dt.timedelta(minutes=minutes)).strftime(
        '%Y-%m-%dT%H:%M:%SZ'))


def _stamp(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


# -- $filter ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('scope', ["resourceGroupName eq 'rg1'", "resourceUri eq '{rid}'", "resourceId eq '{rid}'",
                                   "resourceProvider eq 'Microsoft.Security'", None])
def test_one_scope_beside_the_time_range_is_accepted(query, scope):
    text = _since(query.world) + (' and ' + scope.format(rid=query.rid) if scope else '')
    resp = query(text)
    assert resp.status_code == 200, resp.text
    assert len(resp.json()['value']) == 1


def test_caller_and_status_are_accepted_beside_a_scope(query):
    resp = query(_since(query.world) + " and resourceGroupName eq 'rg1' and caller eq '{}' and status eq "
                                       "'Succeeded'".format(query.caller))
    assert resp.status_code == 200, resp.text
    assert len(resp.json()['value']) == 1


@pytest.mark.parametrize('scopes', [
    "resourceGroupName eq 'rg1' and resourceProvider eq 'Microsoft.Security'",
    "resourceGroupName eq 'rg1' and resourceUri eq '{rid}'",
    "resourceUri eq '{rid}' and correlationId eq 'x'",
    "resourceGroupName eq 'rg1' and resourceGroupName eq 'rg2'",
    "operationName eq 'Microsoft.Security/locations/jitNetworkAccessPolicies/write'",
])
def test_other_combinations_are_refused_with_400(query, scopes):
    resp = query(_since(query.world) + ' and ' + scopes.format(rid=query.rid))
    assert resp.status_code == 400, resp.text
    assert resp.json()['error']['code'] == 'BadRequest'


def test_a_start_beyond_the_logs_90_days_is_refused_and_one_within_them_is_answered(query):
    now = query.world.clock.now()
    old = query("eventTimestamp ge '{}' and resourceGroupName eq 'rg1'".format(_stamp(now - dt.timedelta(days=91))))
    assert old.status_code == 400, old.text
    assert old.json()['error']['code'] == 'BadRequest' and '90 days' in old.json()['error']['message']
    within = query("eventTimestamp ge '{}' and resourceGroupName eq 'rg1'".format(_stamp(now - dt.timedelta(days=89))))
    assert within.status_code == 200 and len(within.json()['value']) == 1, within.text


def test_an_end_before_the_start_is_refused(query):
    now = query.world.clock.now()
    resp = query("eventTimestamp ge '{}' and eventTimestamp le '{}' and resourceGroupName eq 'rg1'".format(
        _stamp(now - dt.timedelta(hours=1)), _stamp(now - dt.timedelta(hours=2))))
    assert resp.status_code == 400, resp.text
    assert resp.json()['error']['code'] == 'BadRequest'


def test_events_show_up_only_after_the_log_delay(query):
    arm.activity_log_state(query.world)['delay'] = dt.timedelta(minutes=5)
    assert query(_since(query.world)).json()['value'] == []
    query.world.clock.advance(minutes=6)
    assert len(query(_since(query.world, minutes=20)).json()['value']) == 1


# -- $select and paging -------------------------------------------------------------------------------------
def test_select_returns_only_the_named_properties(query):
    # `az monitor activity-log list --select` joins the names with ' , '.
    resp = query(_since(query.world), **{'$select': 'caller , operationName,claims'})
    assert resp.status_code == 200, resp.text
    event, = resp.json()['value']
    assert set(event) == {'caller', 'operationName', 'claims'}
    assert event['caller'] == query.caller


def test_select_naming_something_an_event_does_not_have_is_refused(query):
    resp = query(_since(query.world), **{'$select': 'caller,requestbody'})
    assert resp.status_code == 400, resp.text
    assert resp.json()['error']['code'] == 'BadRequest'


def test_events_come_newest_first_a_page_at_a_time(env):
    for priority in range(200, 205):
        env.put_rule('rule{}'.format(priority), priority)
        env.world.clock.advance(seconds=1)
    with page_size(env.world, 2):
        first = env.call('GET', '/subscriptions/{}/providers/microsoft.insights/eventtypes/management/values'.format(
            env.sub), api=API, **{'$filter': _since(env.world)}).json()
        events = [e for e in env.events() if e['status']['value'] != 'Started']
    assert len(first['value']) == 2 and first['nextLink']
    names = [e['resourceId'].rsplit('/', 1)[-1] for e in events]
    assert names == ['rule204', 'rule203', 'rule202', 'rule201', 'rule200']


# -- what an event says -------------------------------------------------------------------------------------
def test_an_nsg_rule_put_is_logged_with_its_body_as_sent_on_its_started_phase(env):
    text = env.put_rule('allow-ssh', 200)
    final, started = [e for e in env.events() if e['operationName']['value'] == RULE_WRITE]   # newest first
    assert (started['status']['value'], started['eventName']['value']) == ('Started', 'BeginRequest')
    assert started['properties']['requestbody'] == text
    assert final['status']['value'] == 'Succeeded' and 'requestbody' not in final['properties']
    assert (final['correlationId'], final['operationId']) == (started['correlationId'], started['operationId'])


def test_a_request_body_is_kept_only_to_4096_characters(env):
    env.world.record_event(env.admin, 'Microsoft.Resources/tags/write', env.nsg_id, request_body='{"x": "' +
                           'y' * 5000 + '"}')
    event, = [e for e in env.events() if e['status']['value'] == 'Started']
    assert event['properties']['requestbody'] == ('{"x": "' + 'y' * 5000)[:4096]


def test_an_initiate_is_logged_with_its_body_and_defenders_rule_write_with_the_rule_it_wrote(env):
    vm = env.standin.vm('rg1', 'vm1')
    pid = security.policy_id(env.sub, 'rg1', 'westeurope')
    policy = json.dumps({'kind': 'Basic', 'properties': {'virtualMachines': [security.jit_vm(vm['id'])]}})
    assert env.call('PUT', pid, policy, api=JIT_API).status_code == 200
    end = (env.world.clock.now() + dt.timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%S.%fZ')
    ask = json.dumps({'virtualMachines': [{'id': vm['id'], 'ports': [
        {'number': 22, 'endTimeUtc': end, 'allowedSourceAddressPrefix': '203.0.113.5'}]}],
        'justification': 'ticket 42'}, indent=1)
    assert env.call('POST', pid + '/initiate', ask, api=JIT_API).status_code == 202
    security.settle(env.world)
    by_operation = {}
    for event in env.events():
        if event['status']['value'] == 'Started':   # a write's body is logged with its start
            by_operation.setdefault(event['operationName']['value'], []).append(event)
    assert by_operation[security.JIT_WRITE][0]['properties']['requestbody'] == policy
    assert by_operation[security.JIT_INITIATE][0]['properties']['requestbody'] == ask
    allow = [e for e in by_operation[RULE_WRITE]
             if e['resourceId'].split('/')[-1].startswith('SecurityCenter-JITRule-')]
    assert [e['caller'] for e in allow] == ['8edd93e1-2103-40b4-bd70-6e34e586362d']
    assert allow[0]['claims']['appid'] == '8edd93e1-2103-40b4-bd70-6e34e586362d'
    wrote = json.loads(allow[0]['properties']['requestbody'])['properties']
    assert (wrote['access'], wrote['destinationPortRange'], wrote['sourceAddressPrefix']) == ('Allow', '22',
                                                                                              '203.0.113.5')


def test_each_kind_of_caller_is_named_as_azure_names_it(env):
    scope = '/subscriptions/' + env.sub
    app = env.world.add_identity('deployer', [('Network Contributor', scope)])
    user = env.world.add_identity('alice', [('Network Contributor', scope)], kind='user')
    bot = env.world.add_identity('jit-bot', [('Network Contributor', scope)], kind='managedIdentity',
                                 resource_group='ops')
    for priority, ident in ((200, app), (201, user), (202, bot)):
        env.put_rule('by-' + ident.name, priority, ident=ident)
    seen = {e['resourceId'].rsplit('/', 1)[-1]: e for e in env.events() if e['status']['value'] == 'Succeeded'}
    assert seen['by-deployer']['caller'] == app.client_id
    assert seen['by-deployer']['claims'] == {'oid': app.object_id, 'appid': app.client_id, 'idtyp': 'app'}
    assert seen['by-alice']['caller'] == 'alice@contoso.test'
    assert seen['by-alice']['claims'] == {'upn': 'alice@contoso.test', UPN_CLAIM: 'alice@contoso.test',
                                          'name': 'alice', 'oid': user.object_id, 'idtyp': 'user'}
    assert seen['by-jit-bot']['caller'] == bot.object_id
    assert seen['by-jit-bot']['claims'] == {
        'oid': bot.object_id, 'appid': bot.client_id, 'idtyp': 'app',
        'xms_mirid': '/subscriptions/{}/resourcegroups/ops/providers/Microsoft.ManagedIdentity/'
                     'userAssignedIdentities/jit-bot'.format(env.sub)}
    # The managed identity's own token names its resource too (what `az login --identity` gets).
    assert tokens.decode(tokens.issue(env.world, bot, 'aud'))['xms_mirid'] == seen['by-jit-bot']['claims']['xms_mirid']
    # A user's events are found by the UPN, as `az monitor activity-log list --caller` asks.
    by_upn = _since(env.world) + " and resourceGroupName eq 'rg1' and caller eq 'alice@contoso.test' and status eq " \
                                 "'Succeeded'"
    assert [e['caller'] for e in env.events(**{'$filter': by_upn})] == ['alice@contoso.test']
