# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The stand-in's Azure Resource Graph, and its resources in several subscriptions, over HTTPS, in-process.

What the answers must look like comes from the 2021-03-01 swagger (copied under tests/standin/reference), the
recordings of az's resource-graph extension and the error bodies users posted (reference/SOURCES.md quotes them),
not from the stand-in's code: where a test compares with one of those, it says which.
"""
import base64
import datetime as dt
import json
import time

import pytest
import requests

from tests.conformance import fresh_worlds
from tests.standin import graph, network, schema, security, tokens

GRAPH = '/providers/Microsoft.ResourceGraph/resources'
API = '2021-03-01'
NET_API = '2024-05-01'
SUB2 = '00000000-0000-0000-0000-0000000000b2'
SUB3 = '00000000-0000-0000-0000-0000000000c3'
# The query shapes the product sends (the fleet contract), with -g and without.
INVENTORY = ("Resources\n| where type in~ ('microsoft.compute/virtualmachines', 'microsoft.network/networkinterfaces',"
             "\n    'microsoft.network/publicipaddresses', 'microsoft.network/networksecuritygroups',\n"
             "    'microsoft.network/virtualnetworks')\n{}| project id, name, type, location, resourceGroup, "
             "subscriptionId, tags, sku, properties")
BY_GROUP = "| where type !~ 'microsoft.compute/virtualmachines' or resourceGroup =~ '{}'\n"
MARKED_NSGS = ("Resources\n| where type =~ 'microsoft.network/networksecuritygroups'\n"
               "| where tostring(properties.securityRules) contains 'AzVmJit-Allow-'\n"
               "| project id, name, type, location, resourceGroup, subscriptionId, properties")


class Env:
    """A fresh world with a second subscription; `admin` is Owner of both."""

    def __init__(self, standin):
        self.standin = standin
        self.world = standin.world
        self.sub = standin.sub
        self.world.add_subscription(SUB2, 'Second')
        self.admin = self.world.add_identity('admin', [('Owner', '/subscriptions/' + self.sub),
                                                       ('Owner', '/subscriptions/' + SUB2)])
        self.session = requests.Session()

    def call(self, method, path=None, body=None, api=NET_API, ident=None, url=None, token=True, **query):
        headers = {'Authorization': 'Bearer ' + tokens.issue(self.world, ident or self.admin,
                                                             self.standin.base_url + '/')} if token else {}
        params = None
        if url is None:
            url = self.standin.base_url + path
            params = dict(query, **({'api-version': api} if api else {}))
        return self.session.request(method, url, params=params, json=body, headers=headers,
                                    verify=self.standin.ca_path, timeout=30)

    def query(self, query, ident=None, api=API, **body):
        return self.call('POST', GRAPH, dict(body, query=query), api=api, ident=ident)

    def rows(self, query, ident=None, **body):
        """Every row of a query, following $skipToken; asserts each page is a 200 in the answer's shape."""
        rows, options = [], dict(body.pop('options', {}))
        while True:
            resp = self.query(query, ident=ident, options=options, **body)
            assert resp.status_code == 200, resp.text
            answer = resp.json()
            rows += answer['data']
            if '$skipToken' not in answer:
                return rows
            options = dict(options, **{'$skipToken': answer['$skipToken']})


fixture_standin = pytest.fixture(name='standin', scope='module')(fresh_worlds.module_standin)


@pytest.fixture(name='env')
def fixture_env(standin):
    yield from fresh_worlds.fresh_env(standin, Env)


def _details(resp):
    return resp.json()['error']['details']


def _ids(rows):
    return sorted(row['id'].lower() for row in rows)


# -- the request: api-version, authentication, the body's schema -----------------------------------------
def test_the_api_version_is_required_and_only_the_ga_versions_with_this_operation_are_accepted(env):
    assert env.query('Resources', api=None).json()['error']['code'] == 'MissingApiVersionParameter'
    refused = env.query('Resources', api='2019-04-01')
    assert refused.status_code == 400 and refused.json()['error']['code'] == 'NoRegisteredProviderFound'
    assert env.query('Resources', api='2099-01-01').status_code == 400
    for version in ('2021-03-01', '2022-10-01', '2024-04-01'):
        assert env.query('Resources', api=version).status_code == 200
    assert env.call('POST', GRAPH, {'query': 'Resources'}, api=API, token=False).status_code == 401


def test_a_body_the_swagger_refuses_is_refused_and_recorded(env):
    for bad in ({'query': 'Resources', 'options': {'$top': 1001}},
                {'query': 'Resources', 'options': {'resultFormat': 'csv'}},
                {'query': 'Resources', 'subscription': [env.sub]},
                {'options': {'$top': 5}}):
        resp = env.call('POST', GRAPH, bad, api=API)
        assert resp.status_code == 400, bad
        assert resp.json()['error']['code'] == 'InvalidRequestContent'
    assert len(env.world.schema_violations) == 4
    env.world.schema_violations.clear()


# -- rows ---------------------------------------------------------------------------------------------------
def test_the_products_queries_answer_rows_as_resource_graph_shows_resources(env):
    vm = env.standin.vm('Rg-One', 'vm1', rules=[{'name': 'AzVmJit-Allow-22-x', 'properties': {
        'protocol': 'Tcp', 'sourcePortRange': '*', 'destinationPortRange': '22', 'sourceAddressPrefix': '1.2.3.4',
        'destinationAddressPrefix': '*', 'access': 'Allow', 'priority': 100, 'direction': 'Inbound'}}])
    env.standin.vm('rg-two', 'vm2')
    rows = env.rows(INVENTORY.format(''))
    assert len(rows) == 2 * 5   # VM, NIC, public IP, NSG and VNet of each
    assert {row['type'] for row in rows} == {'microsoft.compute/virtualmachines', 'microsoft.network/networkinterfaces',
                                             'microsoft.network/publicipaddresses',
                                             'microsoft.network/networksecuritygroups',
                                             'microsoft.network/virtualnetworks'}
    for row in rows:
        assert list(row) == ['id', 'name', 'type', 'location', 'resourceGroup', 'subscriptionId', 'tags', 'sku',
                             'properties']
    nsg = next(row for row in rows if row['id'] == vm['nsg_id'])
    assert nsg['resourceGroup'] == 'rg-one' and nsg['subscriptionId'] == env.sub and nsg['name'] == 'vm1-nsg'
    assert [r['name'] for r in nsg['properties']['securityRules']] == ['AzVmJit-Allow-22-x']
    assert len(nsg['properties']['defaultSecurityRules']) == 6
    assert nsg['properties']['networkInterfaces'] == [{'id': vm['nic_ids'][0]}]
    # A NIC's public IP is a reference; the address is on the public IP's own row, its SKU in `sku`.
    nic = next(row for row in rows if row['id'] == vm['nic_ids'][0])
    ref = nic['properties']['ipConfigurations'][0]['properties']['publicIPAddress']
    assert set(ref) == {'id'}
    pip = next(row for row in rows if row['id'] == ref['id'])
    assert pip['properties']['ipAddress'] == vm['public_ip'] and pip['sku']['name'] == 'Standard'
    assert nic['properties']['virtualMachine'] == {'id': vm['id']}
    # With -g: every network resource, but only the group's VMs.
    grouped = env.rows(INVENTORY.format(BY_GROUP.format('RG-ONE')))
    assert [row['name'] for row in grouped if row['type'] == 'microsoft.compute/virtualmachines'] == ['vm1']
    assert len(grouped) == 9
    # The cleanup query: only NSGs holding a rule with the marker.
    assert [row['id'] for row in env.rows(MARKED_NSGS)] == [vm['nsg_id']]


def test_string_operators_follow_kusto_case_rules(env):
    env.standin.nsg('rg1', 'Alpha')
    env.standin.nsg('rg1', 'beta')

    def names(where):
        return sorted(row['name'] for row in env.rows(
            "Resources | where type =~ 'Microsoft.Network/networkSecurityGroups' | where " + where))
    assert names("name == 'alpha'") == [] and names("name =~ 'alpha'") == ['Alpha']
    assert names("name != 'Alpha'") == ['beta'] and names("name !~ 'ALPHA'") == ['beta']
    assert names("name in ('alpha', 'beta')") == ['beta'] and names("name in~ ('alpha', 'BETA')") == ['Alpha', 'beta']
    assert names("name contains 'LPH'") == ['Alpha'] and names("name startswith 'B'") == ['beta']
    assert names("not(name startswith 'b') and (tolower(name) == 'alpha' or name == 'x')") == ['Alpha']
    assert names("tostring(properties.securityRules) == '[]'") == ['Alpha', 'beta']
    ordered = env.rows("Resources | where type =~ 'microsoft.network/networksecuritygroups' | order by name asc")
    assert [row['name'] for row in ordered] == ['Alpha', 'beta']
    assert [row['name'] for row in env.rows("Resources | order by name")] == ['beta', 'Alpha']   # desc by default


# -- paging ---------------------------------------------------------------------------------------------------
def test_paging_returns_every_row_exactly_once_and_the_token_is_bound_to_its_query(env):
    for i in range(23):
        env.standin.nsg('rg{}'.format(i % 3), 'nsg{:02d}'.format(i))
    first = env.query('Resources', options={'$top': 5})
    answer = first.json()
    # The answer's shape, as the swagger and the recordings have it.
    assert answer['totalRecords'] == 23 and answer['count'] == 5 and answer['resultTruncated'] == 'false'
    assert answer['facets'] == [] and isinstance(answer['data'], list) and answer['$skipToken']
    # The swagger declares `data` an object; the recorded objectArray answers carry an array (test_skip_token_
    # query.yaml), as here: the rest must match the swagger.
    assert schema.load('resourcegraph').validate_response('Resources', 200, dict(answer, data={})) == []
    rows = env.rows('Resources', options={'$top': 5})
    assert len(rows) == 23 and len(set(_ids(rows))) == 23
    assert _ids(rows) == _ids(env.world.of_type(network.NSG_TYPE))
    # Neither by id nor by creation: a client must not rely on an order nobody promised.
    names = [row['name'] for row in rows]
    assert names != sorted(names)
    # $skip without a token skips; $top caps the page at 1000 (the swagger's maximum).
    skipped = env.query('Resources', options={'$skip': 20}).json()['data']
    assert [r['id'] for r in skipped] == [r['id'] for r in rows[20:]]
    # The token is opaque base64 JSON (as recorded), good only for the same query and scope.
    json.loads(base64.b64decode(answer['$skipToken']))
    other = env.query("Resources | where name startswith 'nsg'", options={'$skipToken': answer['$skipToken']})
    assert other.status_code == 400 and _details(other)[0]['code'] == 'InvalidSkipToken'
    scoped = env.query('Resources', subscriptions=[env.sub], options={'$skipToken': answer['$skipToken']})
    assert scoped.status_code == 400
    assert env.query('Resources', options={'$skipToken': 'bm90IGEgdG9rZW4='}).status_code == 400


def test_without_the_id_column_a_cut_result_is_marked_truncated_and_has_no_token(env):
    for i in range(7):
        env.standin.nsg('rg1', 'nsg{}'.format(i))
    answer = env.query('Resources | project name, type', options={'$top': 3}).json()
    assert answer['resultTruncated'] == 'true' and '$skipToken' not in answer
    assert answer['count'] == 3 and answer['totalRecords'] == 7 and list(answer['data'][0]) == ['name', 'type']
    whole = env.query('Resources | project name', options={'$top': 7}).json()
    assert whole['resultTruncated'] == 'false' and whole['count'] == 7
    table = env.query('Resources | project id, name', options={'$top': 3, 'resultFormat': 'table'}).json()
    assert table['data']['columns'] == [{'name': 'id', 'type': 'string'}, {'name': 'name', 'type': 'string'}]
    assert len(table['data']['rows']) == 3 and len(table['data']['rows'][0]) == 2 and '$skipToken' in table
    assert schema.load('resourcegraph').validate_response('Resources', 200, table) == []


# -- who sees what ----------------------------------------------------------------------------------------------
def test_a_reader_of_one_resource_group_sees_only_its_rows(env):
    env.standin.vm('mine', 'vm1')
    env.standin.vm('theirs', 'vm2')
    reader = env.world.add_identity('rg-reader', [('Reader', '/subscriptions/{}/resourceGroups/mine'.format(env.sub))])
    rows = env.rows('Resources', ident=reader)
    assert rows and {row['resourceGroup'] for row in rows} == {'mine'}
    # Rights on one resource type only: the NSG read action shows NSGs and nothing else.
    from tests.standin.world import RoleDefinition
    env.world.roles['nsg reader'] = RoleDefinition('NSG Reader', ['Microsoft.Network/networkSecurityGroups/read'])
    nsg_reader = env.world.add_identity('nsg-reader', [('NSG Reader', '/subscriptions/' + env.sub)])
    seen = {row['type'] for row in env.rows('Resources', ident=nsg_reader)}
    assert seen == {'microsoft.network/networksecuritygroups'}


def test_subscriptions_the_caller_cannot_access_are_left_out_and_none_at_all_is_refused(env):
    env.standin.nsg('rg1', 'here')
    env.standin.nsg('rg1', 'there', subscription=SUB2)
    env.world.add_subscription(SUB3)
    only_first = env.world.add_identity('one-sub', [('Reader', '/subscriptions/' + env.sub)])
    # Tenant scope (no subscriptions given): every subscription the caller can access.
    assert sorted(row['name'] for row in env.rows('Resources')) == ['here', 'there']
    assert [row['name'] for row in env.rows('Resources', ident=only_first)] == ['here']
    # Named subscriptions: the inaccessible and the unknown are dropped without a word.
    rows = env.rows('Resources', ident=only_first, subscriptions=[env.sub, SUB2, SUB3, 'not-a-subscription'])
    assert [row['name'] for row in rows] == ['here']
    refused = env.query('Resources', ident=only_first, subscriptions=[SUB2])
    assert refused.status_code == 400 and refused.json()['error']['code'] == 'BadRequest'
    assert _details(refused)[0]['code'] == 'NoValidSubscriptionsInQueryRequest'
    assert _details(refused)[0]['message'] == ("There must be at least one subscription that is eligible to contain "
                                               "resources. Given: '{}'.".format(SUB2))
    too_many = env.query('Resources', subscriptions=[env.sub] * 1001)
    assert too_many.status_code == 400


def test_a_management_group_scope_covers_the_subscriptions_below_it(env):
    env.world.add_subscription(SUB3)
    for sub, name in ((env.sub, 'first'), (SUB2, 'second'), (SUB3, 'third')):
        env.standin.nsg('rg1', name, subscription=sub)
    env.world.add_management_group('platform', [SUB2])
    scope = env.world.add_management_group('landing', [SUB3], parent='platform')
    assert sorted(row['name'] for row in env.rows('Resources', managementGroups=['platform'])) == ['second']
    assert sorted(row['name'] for row in env.rows(
        'Resources', managementGroups=[env.world.root_group])) == ['first', 'second']
    # A role assigned at a management group reaches the resources of the subscriptions below it.
    mg_reader = env.world.add_identity('mg-reader', [('Reader', scope)])
    assert [row['name'] for row in env.rows('Resources', ident=mg_reader, managementGroups=['landing'])] == ['third']
    assert [row['name'] for row in env.rows('Resources', ident=mg_reader)] == ['third']
    assert env.call('GET', '/subscriptions', api='2022-12-01', ident=mg_reader).json()['value'][0]['subscriptionId'] \
        == SUB3
    # A group that does not exist, or that the caller has no role at, above or below, is refused.
    env.world.add_management_group('elsewhere', [env.sub])
    for ident, groups in ((env.admin, ['nope']), (env.admin, ['Landing']), (mg_reader, ['landing', 'nope']),
                          (mg_reader, ['elsewhere'])):
        resp = env.query('Resources', ident=ident, managementGroups=groups)
        assert resp.status_code == 400 and _details(resp)[0]['code'] == 'ManagementGroupsContainInvalidIds'
        assert _details(resp)[0]['message'] == "The provided management groups must be valid. Given: '{}'.".format(
            "','".join(groups))
    assert env.query('Resources', managementGroups=['g{}'.format(i) for i in range(11)]).status_code == 400
    both = env.query('Resources', subscriptions=[env.sub], managementGroups=['platform'])
    assert both.status_code == 400


# -- quota -----------------------------------------------------------------------------------------------------
def test_quota_headers_count_down_and_over_the_quota_the_answer_is_429_until_the_window_ends(env):
    env.world.graph_quota, env.world.graph_window = 3, 2.0
    other = env.world.add_identity('other', [('Reader', '/subscriptions/' + env.sub)])
    started = time.monotonic()
    remaining = []
    for _ in range(3):
        resp = env.query('Resources')
        assert resp.status_code == 200
        remaining.append(resp.headers['x-ms-user-quota-remaining'])
        assert resp.headers['x-ms-user-quota-resets-after'] in ('00:00:01', '00:00:02')
    assert remaining == ['2', '1', '0']
    throttled = env.query('Resources')
    if time.monotonic() - started < env.world.graph_window:   # (a very slow machine may have crossed the window)
        assert throttled.status_code == 429
        assert int(throttled.headers['Retry-After']) >= 1
        assert throttled.headers['x-ms-user-quota-remaining'] == '0'
        # The body users posted (Azure/azure-cli-extensions#3325).
        error = throttled.json()['error']
        assert error['code'] == 'RateLimiting'
        assert error['message'].startswith('Please provide below info when asking for support: timestamp = ')
        assert error['details'] == [{'code': 'RateLimiting', 'message': graph.THROTTLED['message']}]
        # The quota is the caller's own.
        assert env.query('Resources', ident=other).status_code == 200
    time.sleep(max(0.0, env.world.graph_window - (time.monotonic() - started)) + 0.05)
    again = env.query('Resources')
    assert again.status_code == 200 and again.headers['x-ms-user-quota-remaining'] == '2'
    # An error answer spends the quota too (the recorded 400 shows it spent) and carries the headers.
    refused = env.query('Resources | take 1')
    assert refused.status_code == 400 and refused.headers['x-ms-user-quota-remaining'] == '1'


# -- what is not understood -------------------------------------------------------------------------------------
@pytest.mark.parametrize('query, code, says', [
    ('Resources | limit 5', 'UnsupportedByStandIn', "'limit'"),
    ('Resources | mv-expand properties.securityRules', 'UnsupportedByStandIn', "'mv-expand'"),
    ('Resources | join (Resources) on id', 'UnsupportedByStandIn', "'join'"),
    ('ResourceContainers | project id', 'UnsupportedByStandIn', "'ResourceContainers'"),
    ('Nonsense | project id', 'FailedToResolveTableExpression', "'Nonsense'"),
    ("Resources | where strlen(name) == '3'", 'UnsupportedByStandIn', "'strlen'"),
    ("Resources | where name has 'x'", 'UnsupportedByStandIn', "'has'"),
    ("Resources | where resourcegroup == 'x'", 'FailedToResolveScalarExpression', "'resourcegroup'"),
    ('where where', 'ParserFailure', 'Syntax error'),
    ("Resources | where (name == 'x'", 'ParserFailure', 'Syntax error'),
    ("Resources | where name == 'x", 'ParserFailure', 'Syntax error'),
])
def test_a_query_outside_the_subset_is_refused_with_resource_graphs_error_shape(env, query, code, says):
    resp = env.query(query)
    assert resp.status_code == 400
    body = resp.json()
    # As recorded (test_query_error.yaml): BadRequest, the support line, InvalidQuery then the specific detail.
    assert body['error']['code'] == 'BadRequest'
    assert body['error']['message'].startswith('Please provide below info when asking for support: timestamp = ')
    first, second = body['error']['details']
    assert first == graph.INVALID_QUERY
    assert second['code'] == code and says in second['message']
    assert {'line', 'characterPositionInLine', 'token'} <= set(second)
    # The swagger types a detail's extra properties as objects; the recorded ParserFailure detail carries `line` and
    # `characterPositionInLine` as numbers and `token` as a string, as here: the rest must match the swagger.
    plain = dict(body, error=dict(body['error'], details=[{k: d[k] for k in ('code', 'message')}
                                                          for d in body['error']['details']]))
    assert schema.load('resourcegraph').validate_response('Resources', 400, plain) == []


# -- lag --------------------------------------------------------------------------------------------------------
def test_frozen_resource_graph_answers_from_before_while_arm_reads_fresh(env):
    env.standin.nsg('rg1', 'nsg1')
    nsg_path = '/subscriptions/{}/resourceGroups/rg1/providers/Microsoft.Network/networkSecurityGroups/nsg1'.format(
        env.sub)
    graph.freeze(env.world)
    rule = {'properties': {'protocol': 'Tcp', 'sourcePortRange': '*', 'destinationPortRange': '22',
                           'sourceAddressPrefix': '1.2.3.4', 'destinationAddressPrefix': '*', 'access': 'Allow',
                           'priority': 100, 'direction': 'Inbound'}}
    put = env.call('PUT', nsg_path + '/securityRules/AzVmJit-Allow-22', rule)
    assert put.status_code == 201
    assert env.call('GET', url=put.headers['Azure-AsyncOperation']).json() == {'status': 'Succeeded'}
    assert env.rows(MARKED_NSGS) == []
    assert [r['name'] for r in env.call('GET', nsg_path).json()['properties']['securityRules']] == ['AzVmJit-Allow-22']
    graph.thaw(env.world)
    assert [row['name'] for row in env.rows(MARKED_NSGS)] == ['nsg1']
    # The same from a shell, through the control endpoint.
    assert env.call('POST', '/_standin/graph-lag', {'frozen': True}, api=None, token=False).json() == {'frozen': True}
    gone = env.call('DELETE', nsg_path + '/securityRules/AzVmJit-Allow-22')
    assert gone.status_code == 202
    assert env.call('GET', url=gone.headers['Azure-AsyncOperation']).json() == {'status': 'Succeeded'}
    assert [row['name'] for row in env.rows(MARKED_NSGS)] == ['nsg1']
    assert env.call('POST', '/_standin/graph-lag', {'frozen': False}, api=None, token=False).json() == {'frozen': False}
    assert env.rows(MARKED_NSGS) == []


# -- a second subscription through every route the product uses ------------------------------------------------
def test_a_resource_in_a_second_subscription_is_served_by_every_route_as_in_the_first(env):
    vm = env.standin.vm('rg2', 'vm2', subscription=SUB2)
    assert vm['id'].startswith('/subscriptions/{}/'.format(SUB2))
    pip_id = vm['id'].replace('Microsoft.Compute/virtualMachines/vm2', 'Microsoft.Network/publicIPAddresses/vm2-ip')
    for rid in (vm['id'], vm['nsg_id'], vm['nic_ids'][0], vm['subnet_id'], vm['subnet_id'].split('/subnets/')[0],
                pip_id):
        assert env.call('GET', rid, api='2024-07-01' if '/Microsoft.Compute/' in rid else NET_API).status_code == 200
    # The same names in the first subscription are other resources.
    assert env.call('GET', vm['nsg_id'].replace(SUB2, env.sub)).status_code == 404
    rule = {'properties': {'protocol': 'Tcp', 'sourcePortRange': '*', 'destinationPortRange': '22',
                           'sourceAddressPrefix': '1.2.3.4', 'destinationAddressPrefix': '*', 'access': 'Allow',
                           'priority': 100, 'direction': 'Inbound'}}
    put = env.call('PUT', vm['nsg_id'] + '/securityRules/r1', rule)
    assert put.status_code == 201
    operation = put.headers['Azure-AsyncOperation']
    assert '/subscriptions/{}/providers/Microsoft.Network/locations/'.format(SUB2) in operation
    assert env.call('GET', url=put.headers['Azure-AsyncOperation']).json() == {'status': 'Succeeded'}
    assert env.call('DELETE', vm['nsg_id'] + '/securityRules/r1').status_code == 202
    # Tags, on the VM of the second subscription.
    tags = env.call('PATCH', vm['id'] + '/providers/Microsoft.Resources/tags/default',
                    {'operation': 'Merge', 'properties': {'tags': {'a': 'b'}}}, api='2021-04-01')
    assert tags.status_code == 200 and env.world.get(vm['id'])['tags'] == {'a': 'b'}
    # Its Activity Log events name it and are listed in its own subscription's log only.
    since = "eventTimestamp ge '{}' and resourceGroupName eq 'rg2'".format(
        (env.world.clock.now() - dt.timedelta(minutes=5)).strftime('%Y-%m-%dT%H:%M:%SZ'))
    log = '/subscriptions/{}/providers/microsoft.insights/eventtypes/management/values'
    events = env.call('GET', log.format(SUB2), api='2015-04-01', **{'$filter': since})
    assert events.status_code == 200
    assert events.json()['value'] and {e['subscriptionId'] for e in events.json()['value']} == {SUB2}
    assert env.call('GET', log.format(env.sub), api='2015-04-01', **{'$filter': since}).json()['value'] == []
    # Defender: the plan and policies are per subscription.
    security.set_defender_plan(env.world, False)
    plan = env.call('GET', '/subscriptions/{}/providers/Microsoft.Security/pricings/VirtualMachines'.format(SUB2),
                    api='2024-01-01')
    assert plan.json()['properties']['pricingTier'] == 'Standard'
    pid = security.policy_id(SUB2, 'rg2', 'westeurope')
    put_policy = env.call('PUT', pid, {'kind': 'Basic', 'properties': {'virtualMachines': [
        security.jit_vm(vm['id'])]}}, api='2020-01-01')
    assert put_policy.status_code == 200, put_policy.text
    listed = env.call('GET', '/subscriptions/{}/providers/Microsoft.Security/jitNetworkAccessPolicies'.format(SUB2),
                      api='2020-01-01')
    assert [p['id'] for p in listed.json()['value']] == [pid]
    # Defender writes its rules into the NSG of the second subscription, and opens the port there on request.
    assert [r['properties']['access'] for r in security.defender_rules(env.world, vm['nsg_id'])] == ['Deny']
    end = (env.world.clock.now() + dt.timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%S.%fZ')
    port = {'number': 22, 'endTimeUtc': end, 'allowedSourceAddressPrefix': '198.51.100.10'}
    ask = {'virtualMachines': [{'id': vm['id'], 'ports': [port]}]}
    assert env.call('POST', pid + '/initiate', ask, api='2020-01-01').status_code == 202
    assert sorted(r['properties']['access'] for r in security.defender_rules(env.world, vm['nsg_id'])) == [
        'Allow', 'Deny']
    # GET /subscriptions lists what an identity can reach; a subscription's id is not case-sensitive.
    assert env.call('GET', '/subscriptions/' + SUB2.upper(), api='2022-12-01').json()['displayName'] == 'Second'
    assert sorted(s['subscriptionId'] for s in env.call('GET', '/subscriptions', api='2022-12-01').json()['value']) \
        == sorted([env.sub, SUB2])
    second_only = env.world.add_identity('second-only', [('Reader', '/subscriptions/{}/resourceGroups/rg2'.format(
        SUB2))])
    assert [s['subscriptionId'] for s in env.call('GET', '/subscriptions', api='2022-12-01',
                                                  ident=second_only).json()['value']] == [SUB2]
    assert env.call('GET', vm['nsg_id'], ident=second_only).status_code == 200


def test_vms_can_share_a_subnet(env):
    vnet = env.standin.vnet('rg1', 'shared', subscription=SUB2)
    subnet_id = vnet['properties']['subnets'][0]['id']
    first = env.standin.vm('rg1', 'a', subscription=SUB2, subnet_id=subnet_id)
    second = env.standin.vm('rg1', 'b', subscription=SUB2, subnet_id=subnet_id, nsg='subnet')
    assert first['subnet_id'] == second['subnet_id'] == subnet_id
    assert len(env.world.of_type(network.VNET_TYPE, SUB2)) == 1
    assert network.find_subnet(env.world, subnet_id)['properties']['networkSecurityGroup'] == {
        'id': second['nsg_id']}


def test_every_query_is_logged_like_any_other_call(env):
    before = len(env.world.requests)
    env.query('Resources')
    env.query('Resources | take 1')
    logged = env.world.requests[before:]
    assert [(r.method, r.path, r.status) for r in logged] == [('POST', GRAPH, 200), ('POST', GRAPH, 400)]
    assert logged[0].body == {'query': 'Resources'} and logged[0].caller == 'admin'
