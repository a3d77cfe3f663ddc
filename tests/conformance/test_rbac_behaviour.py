# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""tests/standin/authorization.py and world.py: Azure RBAC as the stand-in serves and enforces it (permissions,
role definitions, role assignments, assignments that end), driven over HTTPS like a client would."""
import datetime as dt
import uuid

import pytest
import requests

from tests.conformance import fresh_worlds
from tests.standin import schema, tokens

RBAC = '2022-04-01'
BUILT_IN = {'Owner': '8e3af657-a8ff-443c-a75c-2fe8c4bcd635', 'Contributor': 'b24988ac-6180-42a0-ab88-20f7382dd24c',
            'Reader': 'acdd72a7-3385-48ef-bd42-f606fba81ae7',
            'Network Contributor': '4d97b98b-1d4f-4787-a291-c67834d212e7',
            'Virtual Machine Contributor': '9980e02c-c2be-4d73-94e8-173b1dc7cf3c',
            'Security Admin': 'fb1c8493-542b-48eb-b624-b4c8fea62acd',
            'Security Reader': '39bc4728-0917-49c7-9d2c-d95423bc2eb4',
            'Tag Contributor': '4a9ae827-6dc8-4573-8ac7-8239d42aa03f',
            'User Access Administrator': '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9'}


class Env:
    def __init__(self, standin):
        self.standin = standin
        self.world = standin.world
        self.sub = standin.sub
        standin.add_test_identities()
        self.ids = self.world.identities
        self.rg = '/subscriptions/{}/resourceGroups/rg1'.format(self.sub)
        self.nsg = standin.nsg('rg1', 'vm1-nsg')['id']
        self.session = requests.Session()

    def call(self, method, path, body=None, who='admin', query=None):
        token = tokens.issue(self.world, self.ids[who], self.standin.base_url + '/')
        return self.session.request(method, self.standin.base_url + path, params=dict({'api-version': RBAC},
                                                                                      **(query or {})),
                                    json=body, headers={'Authorization': 'Bearer ' + token},
                                    verify=self.standin.ca_path)

    def put_role(self, name, actions, scopes=None, who='admin', guid=None):
        guid = guid or str(uuid.uuid4())
        return self.call('PUT', '/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{}'.format(
            self.sub, guid), {'properties': {'roleName': name, 'description': 'd', 'type': 'CustomRole',
                                             'permissions': [{'actions': actions, 'notActions': []}],
                                             'assignableScopes': scopes or ['/subscriptions/' + self.sub]}}, who=who)


fixture_standin = pytest.fixture(name='standin', scope='module')(fresh_worlds.module_standin)


@pytest.fixture(name='env')
def fixture_env(standin):
    yield from fresh_worlds.fresh_env(standin, Env)


def test_built_in_roles_have_azures_fixed_guids_and_are_found_by_name(env):
    for name, guid in BUILT_IN.items():
        resp = env.call('GET', '/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions'.format(env.sub),
                        who='reader', query={'$filter': "roleName eq '{}'".format(name)})
        assert resp.status_code == 200, resp.text
        [role] = resp.json()['value']
        assert role['name'] == guid and role['properties']['type'] == 'BuiltInRole'
        assert role['id'] == '/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{}'.format(env.sub,
                                                                                                             guid)
        assert schema.load('authorization-roledefinitions').validate_response('RoleDefinitions_List', 200,
                                                                              resp.json()) == []
    tenant = env.call('GET', '/providers/Microsoft.Authorization/roleDefinitions/' + BUILT_IN['Reader'], who='reader')
    assert tenant.status_code == 200 and tenant.json()['properties']['roleName'] == 'Reader'
    uaa = env.world.roles['user access administrator']
    assert uaa.actions == ['*/read', 'Microsoft.Authorization/*', 'Microsoft.Support/*']


def test_role_definitions_take_the_api_versions_az_and_the_sdks_send(env):
    path = '/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions'.format(env.sub)
    for version, status in (('2022-04-01', 200), ('2022-05-01-preview', 200), ('2015-07-01', 400)):
        token = tokens.issue(env.world, env.ids['reader'], env.standin.base_url + '/')
        resp = env.session.get(env.standin.base_url + path, params={'api-version': version},
                               headers={'Authorization': 'Bearer ' + token}, verify=env.standin.ca_path)
        assert resp.status_code == status, (version, resp.text)


def test_custom_role_put_needs_the_write_action_and_a_unique_name(env):
    refused = env.put_role('JIT VM Access Requester', ['Microsoft.Network/*/read'], who='reader')
    assert refused.status_code == 403 and 'roleDefinitions/write' in refused.text
    guid = str(uuid.uuid4())
    resp = env.put_role('JIT VM Access Requester', ['Microsoft.Network/*/read'], guid=guid)
    assert resp.status_code == 201, resp.text
    assert resp.json()['name'] == guid and resp.json()['properties']['type'] == 'CustomRole'
    clash = env.put_role('jit vm access requester', ['*'])
    assert clash.status_code == 409 and clash.json()['error']['code'] == 'RoleDefinitionWithSameNameExists'
    again = env.put_role('JIT VM Access Requester', ['Microsoft.Network/*/read', 'x/read'], guid=guid)
    assert again.status_code == 201 and again.json()['properties']['permissions'][0]['actions'][-1] == 'x/read'
    got = env.call('GET', '/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{}'.format(
        env.sub, guid), who='reader')
    assert got.status_code == 200 and got.json()['properties']['roleName'] == 'JIT VM Access Requester'
    bad = env.call('PUT', '/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{}'.format(
        env.sub, uuid.uuid4()), {'properties': {'roleName': 'x', 'permissions': [{'actions': 'not-a-list'}],
                                                'assignableScopes': ['/subscriptions/' + env.sub]}})
    assert bad.status_code == 400 and bad.json()['error']['code'] == 'InvalidRequestContent'
    env.world.schema_violations.clear()


def test_custom_role_is_visible_only_where_it_is_assignable(env):
    env.put_role('Narrow', ['x/read'], scopes=[env.rg])
    other = '/subscriptions/{}/resourceGroups/rg2'.format(env.sub)
    env.standin.resource_group('rg2')
    for scope, seen in ((env.rg, 1), (env.nsg, 1), (other, 0)):
        resp = env.call('GET', scope + '/providers/Microsoft.Authorization/roleDefinitions',
                        query={'$filter': "roleName eq 'Narrow'"})
        assert len(resp.json()['value']) == seen, scope


def test_permissions_list_one_entry_per_live_assignment_at_or_above_the_scope(env):
    requester = env.ids['pim-requester']
    env.world.assign(requester, 'Network Contributor', env.nsg)
    env.world.assign(requester, 'Tag Contributor', '/subscriptions/{}/resourceGroups/rg2'.format(env.sub))
    resp = env.call('GET', env.nsg + '/providers/Microsoft.Authorization/permissions', who='pim-requester')
    assert resp.status_code == 200, resp.text
    assert sorted(p['actions'][0] for p in resp.json()['value']) == ['*/read', 'Microsoft.Network/*']
    assert schema.load('authorization-roledefinitions').validate_response('Permissions_ListForResourceGroup', 200,
                                                                          resp.json()) == []
    env.world.assign(requester, 'Owner', env.nsg, until=env.world.clock.now() + dt.timedelta(minutes=5))
    assert len(env.call('GET', env.nsg + '/providers/Microsoft.Authorization/permissions',
                        who='pim-requester').json()['value']) == 3
    env.world.clock.advance(minutes=6)
    assert len(env.call('GET', env.nsg + '/providers/Microsoft.Authorization/permissions',
                        who='pim-requester').json()['value']) == 2


def test_role_assignments_list_at_above_and_below_and_at_scope_only(env):
    requester = env.ids['pim-requester']
    env.world.assign(requester, 'Network Contributor', env.nsg)
    path = env.rg + '/providers/Microsoft.Authorization/roleAssignments'
    everything = env.call('GET', path, who='reader').json()['value']
    scopes = {a['properties']['scope'] for a in everything}
    assert env.nsg in scopes and '/subscriptions/' + env.sub in scopes
    at_scope = env.call('GET', path, who='reader', query={'$filter': 'atScope()'}).json()['value']
    assert env.nsg not in {a['properties']['scope'] for a in at_scope}
    mine = env.call('GET', path, who='reader', query={'$filter': "principalId eq '{}'".format(
        requester.object_id)}).json()['value']
    assert sorted(a['properties']['roleDefinitionId'].split('/')[-1] for a in mine) == sorted(
        [BUILT_IN['Reader'], BUILT_IN['Network Contributor']])
    bad = env.call('GET', path, who='reader', query={'$filter': 'everything()'})
    assert bad.status_code == 400


def test_an_assignment_with_an_end_authorizes_only_until_then(env):
    requester = env.ids['pim-requester']
    action = 'Microsoft.Network/networkSecurityGroups/securityRules/write'
    assert not env.world.is_authorized(requester, action, env.nsg + '/securityRules/r')
    assignment = env.world.assign(requester, 'Network Contributor', env.nsg,
                                  until=env.world.clock.now() + dt.timedelta(hours=1), origin='activated',
                                  request='r1')
    assert assignment.origin == 'activated' and assignment.request == 'r1'
    assert env.world.is_authorized(requester, action, env.nsg + '/securityRules/r')
    env.world.clock.advance(hours=1)
    assert not env.world.is_authorized(requester, action, env.nsg + '/securityRules/r')
    listed = env.call('GET', env.nsg + '/providers/Microsoft.Authorization/roleAssignments', who='reader')
    assert [a['properties']['roleDefinitionId'].split('/')[-1] for a in listed.json()['value']
            if a['properties']['principalId'] == requester.object_id] == [BUILT_IN['Reader']]


def test_groups_know_their_members(env):
    gid = env.world.groups_by_name['jit-approvers']
    assert env.world.groups[gid]['members'] == {env.ids['group-approver'].object_id}
    assert env.world.groups_of(env.ids['group-approver'].object_id) == {gid}
    assert env.world.groups_of(env.ids['approver'].object_id) == set()
    action = 'Microsoft.Network/networkSecurityGroups/securityRules/write'
    assert not env.world.is_authorized(env.ids['group-approver'], action, env.nsg)
    env.world.assign(gid, 'Network Contributor', env.nsg)   # a role assigned to a group is its members'
    assert env.world.is_authorized(env.ids['group-approver'], action, env.nsg)
    assert not env.world.is_authorized(env.ids['approver'], action, env.nsg)
    assert env.world.add_group('jit-approvers', [env.ids['approver']]) == gid   # the same name, the same id


def test_test_identities_for_approval_have_reader_and_their_own_addresses(env):
    for name, ip in (('pim-requester', '198.51.100.50'), ('approver', '198.51.100.51'),
                     ('group-approver', '198.51.100.52')):
        ident = env.ids[name]
        assert ident.public_ip == ip
        assert [(a.role, a.scope) for a in env.world.assignments if a.principal_id == ident.object_id] == [
            ('Reader', '/subscriptions/' + env.sub)]
    assert env.world.pim_licensed is True
