# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The stand-in against Azure's published material, over HTTPS, in-process.

Each test gets a fresh world behind one server per module and talks to it with `requests` and a token from
`tokens.issue`, so the framework (authentication, api-version, RBAC, faults, the request log) and the
handlers are exercised together. What a body or header must look like comes from the swagger specs, their
examples and the real recordings copied under tests/standin/reference (its SOURCES.md), not from the
stand-in's own code: where a test compares with one of those, it says which.
"""
import copy
import datetime as dt
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.standin import aad, schema, security, tokens
from tests.standin.app import Standin
from tests.standin.world import Fault, World

NET_API = '2024-05-01'
JIT_API = '2020-01-01'
TAGS_API = '2021-04-01'
LOG_API = '2015-04-01'
RG = 'rg1'
LOC = 'westeurope'
SPECS = schema.specs_root()
REFERENCE = schema.REFERENCE_DIR
NET_EXAMPLES = SPECS / 'network' / '2024-05-01' / 'examples'
JIT_EXAMPLES = SPECS / 'security' / '2020-01-01' / 'examples' / 'JitNetworkAccessPolicies'
NET_RECORDING = REFERENCE / 'azure-sdk-for-net' / 'network' / 'SessionRecords' / 'SecurityRuleTests' / \
    'SecurityRuleWithRulesApiTest.EXCERPT.json'
JIT_EXAMPLE_SUB = '20ff7fc3-e762-44dd-bd96-b71116dcdc23'
# The 403 message ARM writes (tests/standin/reference/SOURCES.md, "Error bodies").
AUTHORIZATION_FAILED = re.compile(
    r"^The client '(?P<client>[^']+)' with object id '(?P<oid>[^']+)' does not have authorization to perform "
    r"action '(?P<action>[^']+)' over scope '(?P<scope>[^']+)' or the scope is invalid\. If access was recently "
    r"granted, please refresh your credentials\.$")


# -- fixtures and a small client ------------------------------------------------------------------------
class Client:
    """Calls as one identity (default: an Owner of the subscription)."""

    def __init__(self, standin):
        self.standin = standin
        self.world = standin.world
        self.sub = standin.sub
        self.base = standin.base_url
        self.admin = self.world.add_identity('admin', [('Owner', '/subscriptions/' + self.sub)])
        self.session = requests.Session()

    def call(self, method, path=None, body=None, api=NET_API, ident=None, headers=None, url=None, token=True,
             timeout=30, **query):
        all_headers = dict(headers or {})
        if token:
            all_headers['Authorization'] = 'Bearer ' + tokens.issue(self.world, ident or self.admin, self.base + '/')
        params = None
        if url is None:
            url = self.base + path
            params = dict(query)
            if api is not None:
                params['api-version'] = api
        # verify per call: a Session's own verify loses to REQUESTS_CA_BUNDLE from the environment.
        return self.session.request(method, url, params=params, json=body, headers=all_headers,
                                    verify=self.standin.ca_path, timeout=timeout)

    def nsg_id(self, name='nsg1', rg=RG):
        return '/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/networkSecurityGroups/{}'.format(
            self.sub, rg, name)

    def rule_path(self, rule, nsg='nsg1', rg=RG):
        return self.nsg_id(nsg, rg) + '/securityRules/' + rule

    def put_rule(self, rule, priority=200, nsg='nsg1', direction='Inbound', ident=None, headers=None, wait=True,
                 **props):
        """PUT a rule; with `wait`, poll its operation to the end as every SDK client does (the NSG takes no other
        write until then)."""
        body = {'properties': dict({'protocol': 'Tcp', 'sourcePortRange': '*', 'destinationPortRange': '22',
                                    'sourceAddressPrefix': '*', 'destinationAddressPrefix': '*', 'access': 'Allow',
                                    'priority': priority, 'direction': direction}, **props)}
        resp = self.call('PUT', self.rule_path(rule, nsg), body, ident=ident, headers=headers)
        if wait:
            self.wait(resp)
        return resp

    def wait(self, resp):
        """Poll a long-running operation's Azure-AsyncOperation URL until it is no longer InProgress."""
        url = resp.headers.get('Azure-AsyncOperation') if resp.status_code < 300 else None
        status = None
        while url:
            status = self.follow(url).json()['status']
            if status != 'InProgress':
                break
        return status

    def follow(self, url):
        """GET an absolute URL the stand-in handed out (nextLink, Azure-AsyncOperation, Location)."""
        return self.call('GET', url=url)


@pytest.fixture(name='standin', scope='module')
def fixture_standin(tmp_path_factory):
    standin = Standin(str(tmp_path_factory.mktemp('standin'))).start()
    yield standin
    standin.stop()


@pytest.fixture(name='client')
def fixture_client(standin):
    """A fresh world behind the module's server, with resource group rg1 and an empty NSG nsg1 in it."""
    standin.world = standin.server.world = World()
    standin.sub = standin.world.subscription_id
    client = Client(standin)
    standin.nsg(RG, 'nsg1')
    yield client
    client.session.close()
    assert not standin.world.schema_violations, standin.world.schema_violations


def _json(path):
    return json.loads(path.read_text(encoding='utf-8'))


def _keys(value):
    """The key structure of a JSON value: dicts by key, lists by their first item, leaves by type."""
    if isinstance(value, dict):
        return {k: _keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys(value[0])] if value else []
    return type(value).__name__


def _error(resp):
    return resp.json()['error']


def _operation_url_parts(url, base):
    parts = urlsplit(url)
    assert '{}://{}'.format(parts.scheme, parts.netloc) == base
    return parts.path, parse_qs(parts.query)


# -- core ARM conventions ---------------------------------------------------------------------------------
def test_missing_token_is_401_with_a_bearer_challenge_and_missing_api_version_is_400(client):
    resp = client.call('GET', client.nsg_id(), token=False)
    assert resp.status_code == 401
    assert _error(resp)['code'] == 'AuthenticationFailed'
    assert resp.headers['WWW-Authenticate'].startswith('Bearer authorization_uri=')
    resp = client.call('GET', client.nsg_id(), api=None)
    assert resp.status_code == 400 and _error(resp)['code'] == 'MissingApiVersionParameter'


def test_missing_resource_group_nsg_and_parent_nsg_answer_arms_404s(client):
    resp = client.call('GET', client.nsg_id(rg='nope'))
    assert resp.status_code == 404 and _error(resp)['code'] == 'ResourceGroupNotFound'
    resp = client.call('GET', client.nsg_id('ghost'))
    assert resp.status_code == 404
    assert resp.json() == {'error': {'code': 'ResourceNotFound', 'message':
                                     "The Resource 'Microsoft.Network/networkSecurityGroups/ghost' under resource "
                                     "group 'rg1' was not found. For more details please go to "
                                     "https://aka.ms/ARMResourceNotFoundFix"}}
    resp = client.put_rule('r1', nsg='ghost')
    assert resp.status_code == 404 and _error(resp)['code'] == 'ParentResourceNotFound'
    assert "Parent resource 'ghost' not found." in _error(resp)['message']


def test_identity_without_the_role_gets_403_with_azures_exact_wording(client):
    reader = client.world.add_identity('reader', [('Reader', '/subscriptions/' + client.sub)])
    assert client.call('GET', client.nsg_id(), ident=reader).status_code == 200
    resp = client.put_rule('r1', ident=reader)
    assert resp.status_code == 403
    body = resp.json()
    assert set(body) == {'error'} and set(body['error']) == {'code', 'message'}
    assert body['error']['code'] == 'AuthorizationFailed'
    match = AUTHORIZATION_FAILED.match(body['error']['message'])
    assert match, body['error']['message']
    assert match.group('client') == reader.client_id and match.group('oid') == reader.object_id
    assert match.group('action') == 'Microsoft.Network/networkSecurityGroups/securityRules/write'
    assert match.group('scope') == client.rule_path('r1')
    assert client.world.get(client.nsg_id())['properties']['securityRules'] == []
    # Scoped roles: Network Contributor on another resource group does not reach this one.
    client.standin.resource_group('other')
    scoped = client.world.add_identity('netops', [('Network Contributor',
                                                   '/subscriptions/{}/resourceGroups/other'.format(client.sub))])
    resp = client.call('GET', client.nsg_id(), ident=scoped)
    assert resp.status_code == 403
    assert AUTHORIZATION_FAILED.match(_error(resp)['message']).group('action') == \
        'Microsoft.Network/networkSecurityGroups/read'
    # An error body is ARM's CloudError, as the swagger's `default` response declares it.
    assert schema.load('network-nsg').validate_response('SecurityRules_CreateOrUpdate', 403, body) == []


# -- security rules: the swagger example and the real recording -------------------------------------------
def test_rule_create_example_is_accepted_and_answered_in_the_examples_shape(client):
    example = _json(NET_EXAMPLES / 'NetworkSecurityGroupRuleCreate.json')
    spec = schema.load('network-nsg')
    resp = client.call('PUT', client.rule_path('rule1'), example['parameters']['securityRuleParameters'])
    assert resp.status_code == 201, resp.text
    got, want = resp.json(), example['responses']['201']['body']
    # The example leaves out etag and type and the empty plural lists; the real recording (SOURCES.md, .NET
    # excerpt) has them, and a new rule reads `Updating` until its operation completes.
    assert set(got) == set(want) | {'etag', 'type'}
    assert set(got['properties']) == set(want['properties']) | {
        'sourcePortRanges', 'destinationPortRanges', 'sourceAddressPrefixes', 'destinationAddressPrefixes'}
    assert got['name'] == want['name'] and got['id'] == client.rule_path('rule1')
    assert got['type'] == 'Microsoft.Network/networkSecurityGroups/securityRules'
    assert re.fullmatch(r'W/"[0-9a-f-]{36}"', got['etag'])
    for key, value in want['properties'].items():
        assert got['properties'][key] == (value if key != 'provisioningState' else 'Updating'), key
    assert spec.validate_response('SecurityRules_CreateOrUpdate', 201, got) == []
    # Done: the same rule reads Succeeded, in the example's shape, and its ETag header is its etag.
    assert client.follow(resp.headers['Azure-AsyncOperation']).json() == {'status': 'Succeeded'}
    read = client.call('GET', client.rule_path('rule1'))
    assert read.status_code == 200
    assert read.json()['properties']['provisioningState'] == 'Succeeded'
    assert read.headers['ETag'] == read.json()['etag']
    assert spec.validate_response('SecurityRules_Get', 200, read.json()) == []
    # Writing it again is an update: 200, with the example's 200 shape.
    again = client.call('PUT', client.rule_path('rule1'), example['parameters']['securityRuleParameters'])
    assert again.status_code == 200
    assert set(again.json()) == set(example['responses']['200']['body']) | {'etag', 'type'}
    assert again.json()['etag'] != got['etag']
    assert spec.validate_response('SecurityRules_CreateOrUpdate', 200, again.json()) == []


def test_rule_put_and_delete_answer_with_the_recorded_headers_and_bodies(client):
    """Replays the real .NET session (create, poll, get, delete, poll) and compares what matters."""
    entries = _json(NET_RECORDING)['Entries']
    put, _, get, delete, _ = entries
    recorded_body = json.loads(''.join(put['ResponseBody']))
    resp = client.call('PUT', client.rule_path('azsmnet8651'), put['RequestBody'], api='2021-02-01')
    assert resp.status_code == put['StatusCode'] == 201
    assert list(resp.json()) == list(recorded_body)  # same keys, same order
    assert sorted(resp.json()['properties']) == sorted(recorded_body['properties'])
    assert resp.json()['properties']['provisioningState'] == recorded_body['properties']['provisioningState']
    for header in ('Azure-AsyncOperation', 'Retry-After'):
        assert header in put['ResponseHeaders'] and header in resp.headers
    path, query = _operation_url_parts(resp.headers['Azure-AsyncOperation'], client.base)
    assert re.fullmatch(r'/subscriptions/{}/providers/Microsoft\.Network/locations/{}/operations/[0-9a-f-]{{36}}'
                        .format(client.sub, LOC), path)
    assert query['api-version'] == ['2021-02-01']
    assert int(resp.headers['Retry-After']) >= 1  # whole seconds, as the recording's "10"
    poll = client.follow(resp.headers['Azure-AsyncOperation'])
    assert poll.json() == json.loads(''.join(entries[1]['ResponseBody']))  # {"status": "Succeeded"}
    read = client.call('GET', client.rule_path('azsmnet8651'), api='2021-02-01')
    assert list(read.json()) == list(json.loads(''.join(get['ResponseBody'])))
    assert read.headers['ETag'].startswith('W/"') and 'ETag' in get['ResponseHeaders']
    gone = client.call('DELETE', client.rule_path('azsmnet8651'), api='2021-02-01')
    assert gone.status_code == delete['StatusCode'] == 202
    assert gone.content == b''
    for header in ('Azure-AsyncOperation', 'Location', 'Retry-After'):
        assert header in delete['ResponseHeaders'] and header in gone.headers
    assert '/operationResults/' in gone.headers['Location']
    assert client.follow(gone.headers['Azure-AsyncOperation']).json() == {'status': 'Succeeded'}


def test_rule_operation_answers_in_progress_for_lro_polls_then_succeeded(client):
    client.world.lro_polls = 2
    resp = client.put_rule('r1', wait=False)
    assert resp.status_code == 201
    url = resp.headers['Azure-AsyncOperation']
    for _ in range(2):
        poll = client.follow(url)
        assert poll.status_code == 200 and poll.json() == {'status': 'InProgress'}
        assert int(poll.headers['Retry-After']) >= 1
        assert client.call('GET', client.rule_path('r1')).json()['properties']['provisioningState'] == 'Updating'
    assert client.follow(url).json() == {'status': 'Succeeded'}
    assert client.follow(url).json() == {'status': 'Succeeded'}  # stays done
    assert client.call('GET', client.rule_path('r1')).json()['properties']['provisioningState'] == 'Succeeded'
    unknown = url.replace(url.split('/operations/')[1].split('?')[0], '00000000-0000-0000-0000-000000000000')
    assert client.follow(unknown).status_code == 404


def test_rule_delete_answers_202_with_location_and_async_operation_then_204_when_absent(client):
    spec = schema.load('network-nsg')
    assert client.put_rule('r1').status_code == 201
    client.world.lro_polls = 1
    resp = client.call('DELETE', client.rule_path('r1'))
    assert resp.status_code == 202 and resp.content == b''
    assert spec.validate_response('SecurityRules_Delete', 202, None) == []
    location, async_url = resp.headers['Location'], resp.headers['Azure-AsyncOperation']
    assert location.split('/operationResults/')[1] == async_url.split('/operations/')[1]
    # The Location URL answers 202 (with Location) while in progress, then 204.
    first = client.follow(location)
    assert first.status_code == 202 and first.headers['Location']
    assert client.follow(location).status_code == 204
    assert client.follow(async_url).json() == {'status': 'Succeeded'}
    missing = client.call('GET', client.rule_path('r1'))
    assert missing.status_code == 404
    assert missing.json()['code'] == 'NotFound'  # the Network RP's own, unwrapped body (SOURCES.md)
    again = client.call('DELETE', client.rule_path('r1'))
    assert again.status_code == 204 and again.content == b''
    assert spec.validate_response('SecurityRules_Delete', 204, None) == []


@pytest.mark.parametrize('priority,status', [(99, 400), (100, 201), (4096, 201), (4097, 400), (5000, 400)])
def test_rule_priority_must_be_100_to_4096(client, priority, status):
    resp = client.put_rule('r1', priority=priority)
    assert resp.status_code == status, resp.text
    if status == 400:
        assert _error(resp)['code'] == 'SecurityRuleInvalidPriority'
        assert str(priority) in _error(resp)['message']
        assert client.world.get(client.nsg_id())['properties']['securityRules'] == []


def test_duplicate_priority_in_one_direction_is_a_security_rule_conflict(client):
    assert client.put_rule('r1', priority=300).status_code == 201
    resp = client.put_rule('r2', priority=300)
    assert resp.status_code == 400
    assert _error(resp)['code'] == 'SecurityRuleConflict'
    assert 'r2' in _error(resp)['message'] and 'r1' in _error(resp)['message']
    assert client.put_rule('r2', priority=300, direction='Outbound').status_code == 201
    assert client.put_rule('r1', priority=300, destinationPortRange='23').status_code == 200  # itself: no clash


def test_description_up_to_140_characters(client):
    assert client.put_rule('r1', description='d' * 140).status_code == 201
    resp = client.put_rule('r2', priority=201, description='d' * 141)
    assert resp.status_code == 400
    assert [r['name'] for r in client.world.get(client.nsg_id())['properties']['securityRules']] == ['r1']


def test_stale_if_match_is_412_precondition_failed_etag_mismatch(client):
    created = client.put_rule('r1')
    stale = client.call('GET', client.rule_path('r1')).headers['ETag']
    assert stale != created.json()['etag']  # the ETag changes again when the operation completes
    nsg_etag = client.call('GET', client.nsg_id()).headers['ETag']
    fresh = client.put_rule('r1', headers={'If-Match': stale}, destinationPortRange='2222')
    assert fresh.status_code == 200
    assert fresh.json()['etag'] != stale
    assert client.call('GET', client.nsg_id()).headers['ETag'] != nsg_etag  # a rule write changes its NSG's ETag
    resp = client.put_rule('r1', headers={'If-Match': stale}, destinationPortRange='3333')
    assert resp.status_code == 412
    body = resp.json()
    assert body['error']['code'] == 'PreconditionFailed' and body['error']['message'] == 'Precondition failed.'
    assert [d['code'] for d in body['error']['details']] == ['PreconditionFailedEtagMismatch']
    assert stale in body['error']['details'][0]['message']  # "Etag provided in if-match header W/"..." does not ..."
    assert client.call('GET', client.rule_path('r1')).json()['properties']['destinationPortRange'] == '2222'
    assert client.call('DELETE', client.rule_path('r1'), headers={'If-Match': stale}).status_code == 412
    assert client.put_rule('r1', headers={'If-None-Match': '*'}).status_code == 412
    assert client.put_rule('r1', headers={'If-Match': '*'}).status_code == 200
    assert client.put_rule('r9', priority=900, headers={'If-Match': '*'}).status_code == 412  # must exist


def test_rule_list_pages_with_next_link_when_the_page_size_is_small(client):
    spec = schema.load('network-nsg')
    for i in range(5):
        assert client.put_rule('r{}'.format(i), priority=200 + i).status_code == 201
    client.world.page_size = 2
    resp, names, pages = client.call('GET', client.nsg_id() + '/securityRules'), [], 0
    while True:
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert spec.validate_response('SecurityRules_List', 200, page) == []
        assert len(page['value']) <= 2
        names += [r['name'] for r in page['value']]
        pages += 1
        if not page.get('nextLink'):
            break
        _, query = _operation_url_parts(page['nextLink'], client.base)
        assert query['api-version'] == [NET_API]
        resp = client.follow(page['nextLink'])
    assert pages == 3 and names == ['r0', 'r1', 'r2', 'r3', 'r4']
    # The NSG list of a resource group pages the same way.
    for i in range(2):
        client.standin.nsg(RG, 'extra{}'.format(i))
    first = client.call('GET', '/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/'
                               'networkSecurityGroups'.format(client.sub, RG)).json()
    second = client.follow(first['nextLink']).json()
    assert [len(first['value']), len(second['value'])] == [2, 1] and 'nextLink' not in second  # nsg1 + 2 extra


def test_nsg_get_is_shaped_like_the_example_with_six_default_rules(client):
    example = _json(NET_EXAMPLES / 'NetworkSecurityGroupGet.json')['responses']['200']['body']
    assert client.put_rule('rule1', priority=130, destinationPortRange='80', protocol='*').status_code == 201
    resp = client.call('GET', client.nsg_id())
    got = resp.json()
    assert set(example) <= set(got) and set(got) - set(example) <= {'etag', 'tags'}
    assert set(example['properties']) <= set(got['properties'])
    assert [(r['name'], r['properties']['priority'], r['properties']['direction'], r['properties']['access'],
             r['properties']['sourceAddressPrefix'], r['properties']['destinationAddressPrefix'],
             r['properties']['description'])
            for r in got['properties']['defaultSecurityRules']] == \
        [(r['name'], r['properties']['priority'], r['properties']['direction'], r['properties']['access'],
          r['properties']['sourceAddressPrefix'], r['properties']['destinationAddressPrefix'],
          r['properties']['description'])
         for r in example['properties']['defaultSecurityRules']]
    want_rule = example['properties']['securityRules'][0]
    got_rule = got['properties']['securityRules'][0]
    assert set(want_rule) <= set(got_rule) and set(want_rule['properties']) <= set(got_rule['properties'])
    assert resp.headers['ETag'] == got['etag']
    assert schema.load('network-nsg').validate_response('NetworkSecurityGroups_Get', 200, got) == []


def test_default_security_rules_list_and_get(client):
    spec = schema.load('network-nsg')
    resp = client.call('GET', client.nsg_id() + '/defaultSecurityRules')
    assert resp.status_code == 200
    assert spec.validate_response('DefaultSecurityRules_List', 200, resp.json()) == []
    assert sorted(r['properties']['priority'] for r in resp.json()['value']) == [65000, 65000, 65001, 65001,
                                                                                 65500, 65500]
    one = client.call('GET', client.nsg_id() + '/defaultSecurityRules/DenyAllInBound')
    assert one.status_code == 200 and one.json()['properties']['access'] == 'Deny'
    assert spec.validate_response('DefaultSecurityRules_Get', 200, one.json()) == []
    assert client.call('GET', client.nsg_id() + '/defaultSecurityRules/Nope').status_code == 404


# -- tags --------------------------------------------------------------------------------------------------
def _tags_path(client):
    return client.nsg_id() + '/providers/Microsoft.Resources/tags/default'


def test_tags_api_merge_replace_and_delete(client):
    path = _tags_path(client)
    etag = client.world.get(client.nsg_id())['etag']
    resp = client.call('PATCH', path, {'operation': 'Merge', 'properties': {'tags': {'a': '1', 'b': '2'}}},
                       api=TAGS_API)
    assert resp.status_code == 200
    assert resp.json() == {'id': path, 'name': 'default', 'type': 'Microsoft.Resources/tags',
                           'properties': {'tags': {'a': '1', 'b': '2'}}}
    assert client.world.get(client.nsg_id())['etag'] != etag
    merged = client.call('PATCH', path, {'operation': 'Merge', 'properties': {'tags': {'b': '3', 'c': '4'}}},
                         api=TAGS_API)
    assert merged.json()['properties']['tags'] == {'a': '1', 'b': '3', 'c': '4'}
    deleted = client.call('PATCH', path, {'operation': 'Delete', 'properties': {'tags': {'a': '', 'c': 'wrong'}}},
                          api=TAGS_API)
    assert deleted.json()['properties']['tags'] == {'b': '3', 'c': '4'}  # a name/value pair must match
    replaced = client.call('PATCH', path, {'operation': 'Replace', 'properties': {'tags': {'z': '9'}}},
                           api=TAGS_API)
    assert replaced.json()['properties']['tags'] == {'z': '9'}
    assert client.call('GET', path, api=TAGS_API).json()['properties']['tags'] == {'z': '9'}
    assert client.call('GET', client.nsg_id()).json()['tags'] == {'z': '9'}
    put = client.call('PUT', path, {'properties': {'tags': {'only': 'this'}}}, api=TAGS_API)
    assert put.status_code == 200 and client.world.get(client.nsg_id())['tags'] == {'only': 'this'}
    bad = client.call('PATCH', path, {'operation': 'Upsert', 'properties': {'tags': {}}}, api=TAGS_API)
    assert bad.status_code == 400


def test_resource_patch_with_tags_replaces_the_whole_set(client):
    client.world.get(client.nsg_id())['tags'] = {'keep': 'me?'}
    resp = client.call('PATCH', client.nsg_id(), {'tags': {'new': 'one'}})
    assert resp.status_code == 200 and resp.json()['tags'] == {'new': 'one'}


@pytest.mark.parametrize('tags,status', [
    ({'t{}'.format(i): 'v' for i in range(50)}, 200),
    ({'t{}'.format(i): 'v' for i in range(51)}, 400),
    ({'long': 'v' * 256}, 200),
    ({'long': 'v' * 257}, 400),
    ({'n' * 512: 'v'}, 200),
    ({'n' * 513: 'v'}, 400),
])
def test_tag_limits_50_tags_512_char_names_256_char_values(client, tags, status):
    path = _tags_path(client)
    assert client.call('PUT', path, {'properties': {'tags': tags}}, api=TAGS_API).status_code == status
    assert client.call('PATCH', client.nsg_id(), {'tags': tags}).status_code == status
    rg_path = '/subscriptions/{}/resourceGroups/{}'.format(client.sub, RG)
    assert client.call('PUT', rg_path, {'location': LOC, 'tags': tags}, api=TAGS_API).status_code in (
        (200, 201) if status == 200 else (400,))


def test_merge_over_50_tags_is_refused_and_changes_nothing(client):
    path = _tags_path(client)
    full = {'t{}'.format(i): 'v' for i in range(50)}
    assert client.call('PUT', path, {'properties': {'tags': full}}, api=TAGS_API).status_code == 200
    resp = client.call('PATCH', path, {'operation': 'Merge', 'properties': {'tags': {'one': 'more'}}}, api=TAGS_API)
    assert resp.status_code == 400
    assert client.world.get(client.nsg_id())['tags'] == full


def test_tag_contributor_writes_tags_but_not_the_nsg_itself(client):
    tagger = client.world.add_identity('tagger', [('Tag Contributor', '/subscriptions/' + client.sub)])
    resp = client.call('PATCH', _tags_path(client), {'operation': 'Merge', 'properties': {'tags': {'a': 'b'}}},
                       api=TAGS_API, ident=tagger)
    assert resp.status_code == 200
    denied = client.call('PATCH', client.nsg_id(), {'tags': {'a': 'c'}}, ident=tagger)
    assert denied.status_code == 403
    assert AUTHORIZATION_FAILED.match(_error(denied)['message']).group('action') == \
        'Microsoft.Network/networkSecurityGroups/write'
    reader = client.world.add_identity('reader', [('Reader', '/subscriptions/' + client.sub)])
    assert client.call('PATCH', _tags_path(client), {'operation': 'Merge', 'properties': {'tags': {'x': 'y'}}},
                       api=TAGS_API, ident=reader).status_code == 403


# -- Activity Log -------------------------------------------------------------------------------------------
def _log(client, filter_text, ident=None):
    path = '/subscriptions/{}/providers/microsoft.insights/eventtypes/management/values'.format(client.sub)
    resp = client.call('GET', path, api=LOG_API, ident=ident, **{'$filter': filter_text})
    return resp


def test_activity_log_records_writes_with_the_caller(client):
    tagger = client.world.add_identity('tagger', [('Tag Contributor', '/subscriptions/' + client.sub)])
    assert client.put_rule('r1').status_code == 201
    assert client.call('GET', client.rule_path('r1')).status_code == 200  # reads are not logged
    assert client.call('PATCH', _tags_path(client), {'operation': 'Merge', 'properties': {'tags': {'a': 'b'}}},
                       api=TAGS_API, ident=tagger).status_code == 200
    assert client.call('DELETE', client.rule_path('r1')).status_code == 202
    now = dt.datetime.now(dt.timezone.utc)
    # As `az monitor activity-log list --offset 1h` writes it: bare, offset-less UTC timestamps.
    az_style = 'eventTimestamp ge {} and eventTimestamp le {} and resourceGroupName eq \'{}\''.format(
        (now - dt.timedelta(hours=1)).replace(tzinfo=None).isoformat(),
        (now + dt.timedelta(minutes=1)).replace(tzinfo=None).isoformat(), RG)
    resp = _log(client, az_style)
    assert resp.status_code == 200, resp.text
    events = [(e['operationName']['value'], e['caller'], e['httpRequest']['method'], e['status']['value'],
               e['resourceId']) for e in resp.json()['value'] if e['status']['value'] != 'Started']
    assert events == [  # newest first
        ('Microsoft.Network/networkSecurityGroups/securityRules/delete', client.admin.caller, 'DELETE', 'Succeeded',
         client.rule_path('r1')),
        ('Microsoft.Resources/tags/write', tagger.caller, 'PATCH', 'Succeeded', client.nsg_id()),
        ('Microsoft.Network/networkSecurityGroups/securityRules/write', client.admin.caller, 'PUT', 'Succeeded',
         client.rule_path('r1')),
    ]
    first = resp.json()['value'][0]
    assert first['claims']['oid'] == client.admin.object_id and first['resourceGroupName'] == RG
    assert first['eventTimestamp'].endswith('Z') and first['category']['value'] == 'Administrative'
    # The REST docs' quoted form, and a narrower filter by caller.
    quoted = "eventTimestamp ge '{}' and caller eq '{}'".format(
        (now - dt.timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%SZ'), tagger.caller)
    assert [(e['caller'], e['status']['value']) for e in _log(client, quoted).json()['value']] == [
        (tagger.caller, 'Succeeded'), (tagger.caller, 'Started')]
    assert _log(client, "resourceGroupName eq '{}'".format(RG)).status_code == 400  # a start time is required
    assert _log(client, 'eventTimestamp ge yesterday').status_code == 400
    future = "eventTimestamp ge '{}'".format((now + dt.timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%SZ'))
    assert _log(client, future).json()['value'] == []


# -- fault injection -----------------------------------------------------------------------------------------
def _logged(client, path_part):
    return [(r.method, r.status) for r in client.world.requests if path_part in r.path]


def test_fault_429_answers_retry_after_and_an_arm_error_once(client):
    client.world.faults.append(Fault('GET', r'/networkSecurityGroups/nsg1$', status=429, code='TooManyRequests',
                                     message='Too many requests.', retry_after=7))
    resp = client.call('GET', client.nsg_id())
    assert resp.status_code == 429
    assert resp.headers['Retry-After'] == '7'
    assert resp.json() == {'error': {'code': 'TooManyRequests', 'message': 'Too many requests.'}}
    assert client.call('GET', client.nsg_id()).status_code == 200
    assert _logged(client, '/networkSecurityGroups/nsg1') == [('GET', 429), ('GET', 200)]
    assert client.world.faults[0].hits == 1 and client.world.faults[0].times == 0


def test_fault_500_twice_then_success_and_only_on_the_matching_method(client):
    client.world.faults.append(Fault('PUT', r'/securityRules/r1$', status=500, times=2))
    assert client.call('GET', client.nsg_id()).status_code == 200  # a GET is not a PUT
    assert client.put_rule('r1').status_code == 500
    assert 'Retry-After' not in client.put_rule('r1').headers
    assert client.put_rule('r1').status_code == 201
    assert _logged(client, '/securityRules/r1') == [('PUT', 500), ('PUT', 500), ('PUT', 201)]
    # A refused attempt wrote nothing: the third one created the rule.
    assert len(client.world.get(client.nsg_id())['properties']['securityRules']) == 1


def test_fault_drop_closes_the_connection_without_an_answer(client):
    client.world.faults.append(Fault('GET', r'/networkSecurityGroups/nsg1$', kind='drop'))
    with pytest.raises(requests.exceptions.ConnectionError):
        client.call('GET', client.nsg_id())
    assert client.call('GET', client.nsg_id()).status_code == 200
    assert _logged(client, '/networkSecurityGroups/nsg1') == [('GET', 0), ('GET', 200)]


def test_fault_delay_answers_normally_but_late(client):
    client.world.faults.append(Fault('GET', r'/networkSecurityGroups/nsg1$', kind='delay', delay=0.5))
    started = time.monotonic()
    resp = client.call('GET', client.nsg_id())
    assert resp.status_code == 200 and time.monotonic() - started >= 0.5
    started = time.monotonic()
    assert client.call('GET', client.nsg_id()).status_code == 200
    assert time.monotonic() - started < 0.5


# -- Azure AD -----------------------------------------------------------------------------------------------
def test_openid_discovery_document_has_what_msal_needs(client):
    tenant = client.world.tenant_id
    resp = client.call('GET', '/{}/v2.0/.well-known/openid-configuration'.format(tenant), api=None, token=False)
    assert resp.status_code == 200
    doc = resp.json()
    base = '{}/{}'.format(client.base, tenant)
    assert doc['token_endpoint'] == base + '/oauth2/v2.0/token'
    assert doc['authorization_endpoint'] == base + '/oauth2/v2.0/authorize'
    assert doc['issuer'] == base + '/v2.0'
    assert doc['jwks_uri'].startswith('https://')
    assert 'client_secret_post' in doc['token_endpoint_auth_methods_supported']


def _token(client, tenant=None, **form):
    data = dict({'grant_type': 'client_credentials', 'client_id': client.admin.client_id,
                 'client_secret': client.admin.secret, 'scope': client.base + '/.default'}, **form)
    return client.session.post('{}/{}/oauth2/v2.0/token'.format(client.base, tenant or client.world.tenant_id),
                               data=data, verify=client.standin.ca_path)


def test_token_endpoint_issues_tokens_and_refuses_a_wrong_secret(client):
    resp = _token(client)
    assert resp.status_code == 200
    body = resp.json()
    assert body['token_type'] == 'Bearer' and body['expires_in'] == 3600
    claims = tokens.decode(body['access_token'])
    assert claims['oid'] == client.admin.object_id and claims['appid'] == client.admin.client_id
    assert claims['tid'] == client.world.tenant_id and claims['aud'] == client.base
    arm = client.session.get(client.base + client.nsg_id(), params={'api-version': NET_API},
                             headers={'Authorization': 'Bearer ' + body['access_token']},
                             verify=client.standin.ca_path)
    assert arm.status_code == 200
    wrong = _token(client, client_secret='not-it')
    assert wrong.status_code == 401
    assert wrong.json()['error'] == 'invalid_client'
    assert wrong.json()['error_description'].startswith('AADSTS7000215')
    assert 'access_token' not in wrong.json()
    unknown = _token(client, client_id='00000000-0000-0000-0000-00000000dead')
    assert unknown.status_code == 400 and unknown.json()['error'] == 'unauthorized_client'
    assert _token(client, tenant='11111111-1111-1111-1111-111111111111').status_code == 400
    assert _token(client, grant_type='password').json()['error'] == 'unsupported_grant_type'


def test_managed_identity_endpoint_needs_its_header(client):
    client.world.add_identity('function-app', [('Network Contributor', '/subscriptions/' + client.sub)])
    query = {'api-version': '2019-08-01', 'resource': client.base + '/'}
    url = client.base + '/msi/token'
    missing = client.session.get(url, params=query, verify=client.standin.ca_path)
    assert missing.status_code in (400, 401) and 'access_token' not in missing.json()
    wrong = client.session.get(url, params=query, headers={'X-IDENTITY-HEADER': 'guess'},
                               verify=client.standin.ca_path)
    assert wrong.status_code in (400, 401) and 'access_token' not in wrong.json()
    ok = client.session.get(url, params=query, headers={'X-IDENTITY-HEADER': aad.MSI_HEADER},
                            verify=client.standin.ca_path)
    assert ok.status_code == 200
    body = ok.json()
    assert body['token_type'] == 'Bearer' and body['resource'] == client.base + '/'
    assert int(body['expires_on']) > time.time()
    assert tokens.decode(body['access_token'])['oid'] == client.world.identities['function-app'].object_id


# -- Defender JIT: the example and the refusals -----------------------------------------------------------------
def _policy_path(client, name='default'):
    return security.policy_id(client.sub, RG, LOC, name)


def _example_put_body(client, vm):
    example = _json(JIT_EXAMPLES / 'CreateJitNetworkAccessPolicy_example.json')
    text = json.dumps(example).replace(JIT_EXAMPLE_SUB, client.sub)
    text = text.replace('/resourceGroups/myRg1/', '/resourceGroups/{}/'.format(RG))
    example = json.loads(text)
    assert example['parameters']['body']['properties']['virtualMachines'][0]['id'] == vm['id']
    return example


def test_jit_create_example_body_is_accepted_and_answered_in_the_examples_shape(client):
    vm = client.standin.vm(RG, 'vm1')
    example = _example_put_body(client, vm)
    resp = client.call('PUT', _policy_path(client), example['parameters']['body'], api=JIT_API)
    assert resp.status_code == 200, resp.text
    got, want = resp.json(), example['responses']['200']['body']
    assert set(got) == set(want)
    assert {k: got[k] for k in ('id', 'name', 'type', 'location', 'kind')} == \
        {k: want[k] for k in ('id', 'name', 'type', 'location', 'kind')}
    assert got['properties']['virtualMachines'] == want['properties']['virtualMachines']
    # Real answers add `appendMode: false` (every recording) and say `Updating` right after a PUT.
    assert set(got['properties']) == set(want['properties']) | {'appendMode'}
    without_append = copy.deepcopy(got)
    del without_append['properties']['appendMode']
    assert schema.load('security-jit').validate_response('JitNetworkAccessPolicies_CreateOrUpdate', 200,
                                                         without_append) == []
    listed = client.call('GET', '/subscriptions/{}/providers/Microsoft.Security/jitNetworkAccessPolicies'
                         .format(client.sub), api=JIT_API).json()
    assert [p['id'] for p in listed['value']] == [want['id']]
    for policy in listed['value']:
        del policy['properties']['appendMode']
    assert schema.load('security-jit').validate_response('JitNetworkAccessPolicies_List', 200, listed) == []


def _jit_body(vm, **port_fields):
    port = dict({'number': 22, 'protocol': '*', 'allowedSourceAddressPrefix': '*',
                 'maxRequestAccessDuration': 'PT3H'}, **port_fields)
    port = {k: v for k, v in port.items() if v is not None}
    return {'kind': 'Basic', 'properties': {'virtualMachines': [{'id': vm['id'], 'ports': [port]}]}}


def test_jit_port_with_both_source_fields_is_refused(client):
    vm = client.standin.vm(RG, 'vm1')
    resp = client.call('PUT', _policy_path(client), _jit_body(vm, allowedSourceAddressPrefixes=['10.0.0.0/8']),
                       api=JIT_API)
    assert resp.status_code == 400
    assert schema.load('security-jit').validate_response('JitNetworkAccessPolicies_CreateOrUpdate', 400,
                                                         resp.json()) == []
    assert client.world.get(_policy_path(client)) is None
    assert not security.defender_rules(client.world, vm['nsg_id'])


@pytest.mark.parametrize('duration,status', [('PT4M', 400), ('PT5M', 200), ('PT24H', 200), ('P1D', 200),
                                             ('PT24H1M', 400), ('P2D', 400)])
def test_jit_max_request_access_duration_is_5_minutes_to_1_day(client, duration, status):
    vm = client.standin.vm(RG, 'vm1')
    resp = client.call('PUT', _policy_path(client), _jit_body(vm, maxRequestAccessDuration=duration), api=JIT_API)
    assert resp.status_code == status, resp.text


def test_jit_write_without_the_role_is_403_authorization_failed(client):
    vm = client.standin.vm(RG, 'vm1')
    reader = client.world.add_identity('reader', [('Reader', '/subscriptions/' + client.sub)])
    resp = client.call('PUT', _policy_path(client), _jit_body(vm), api=JIT_API, ident=reader)
    assert resp.status_code == 403
    match = AUTHORIZATION_FAILED.match(_error(resp)['message'])
    assert match and match.group('action') == 'Microsoft.Security/locations/jitNetworkAccessPolicies/write'
    assert match.group('scope') == _policy_path(client)
