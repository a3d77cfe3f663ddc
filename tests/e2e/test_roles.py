# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The README's custom roles, as `az role definition create` would take them, do what the README says."""
import pytest

from tests.harness import readme_roles
from tests.standin.world import RoleDefinition


@pytest.fixture(scope='module')
def role_identities(standin):
    """Identities holding exactly the README's roles, at subscription scope."""
    world = standin.world
    made = {}
    for name, role in readme_roles().items():
        assert role['IsCustom'] is True and role['AssignableScopes'] and role['NotActions'] == []
        world.roles[name.lower()] = RoleDefinition(name, role['Actions'], role['NotActions'])
        short = 'role-' + name.split()[-1].lower()
        made[short] = world.add_identity(short, [(name, '/subscriptions/' + standin.sub)],
                                         public_ip='198.51.100.{}'.format(60 + len(made)))
    return made


def test_readme_ships_the_requester_and_administrator_roles():
    assert set(readme_roles()) == {'JIT VM Access Requester', 'JIT VM Access Administrator'}


@pytest.mark.parametrize('mode', ['defender', 'nsg'])
def test_requester_role_can_request_and_revoke_but_not_configure(az, az_as, standin, rg, role_identities, mode):
    standin.vm(rg, 'app1')
    admin = az_as('role-administrator')
    admin.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'app1', '--ports', '22', '--mode', mode)
    requester = az_as('role-requester')

    refused = requester.run('vm', 'jit', 'enable', '-g', rg, '-n', 'app1', '--ports', '22', '3389', '--mode', mode)
    assert refused.code == 1, refused
    assert 'Microsoft.Security/locations/jitNetworkAccessPolicies/write' in refused.stderr or \
        'Microsoft.Resources/tags/write' in refused.stderr, refused

    opened = requester.ok('vm', 'jit', 'request', '-g', rg, '-n', 'app1', '--ports', '22', '--duration', '30',
                          '--source', '198.51.100.61')
    assert opened['status'] == 'active'
    assert [p['source'] for p in opened['ports']] == ['198.51.100.61']
    closed = requester.ok('vm', 'jit', 'revoke', '-g', rg, '-n', 'app1')
    assert closed['revoked'] == [opened['id']]
    assert not [r for r in _nsg(standin, rg, 'app1') if r['properties']['access'] == 'Allow']


def test_reader_cannot_request_and_is_told_which_permission_is_missing(az, az_as, standin, rg):
    standin.vm(rg, 'app2')
    az.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'app2', '--ports', '22', '--mode', 'defender')
    result = az_as('reader').run('vm', 'jit', 'request', '-g', rg, '-n', 'app2', '--ports', '22', '--source',
                                 '198.51.100.30')
    assert result.code == 1, result
    assert 'Microsoft.Security/locations/jitNetworkAccessPolicies/initiate/action' in result.stderr
    assert 'requester role' in result.stderr


def test_administrator_role_runs_the_whole_cycle(az_as, standin, rg, role_identities):
    standin.vm(rg, 'app3', rules=[{'name': 'OpenSsh', 'properties': {
        'priority': 300, 'direction': 'Inbound', 'access': 'Allow', 'protocol': 'Tcp', 'sourcePortRange': '*',
        'destinationPortRange': '22', 'sourceAddressPrefix': '*', 'destinationAddressPrefix': '*'}}])
    admin = az_as('role-administrator')
    admin.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'app3', '--ports', '22', '--yes')
    admin.ok('vm', 'jit', 'request', '-g', rg, '-n', 'app3', '--ports', '22', '--source', '198.51.100.62')
    admin.ok('vm', 'jit', 'revoke', '-g', rg, '-n', 'app3')
    admin.ok('vm', 'jit', 'cleanup', '-g', rg)
    admin.ok('vm', 'jit', 'disable', '-g', rg, '-n', 'app3', '--yes')
    assert [r['name'] for r in _nsg(standin, rg, 'app3')] == ['OpenSsh']


def _nsg(standin, rg, vm):
    return standin.nsg_rules('/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/'
                             'networkSecurityGroups/{}-nsg'.format(standin.sub, rg, vm))
