# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The real `az` (azure-cli 2.91) against the stand-in: core commands that are not ours work unchanged.

If the stand-in answered differently from Azure, these unmodified commands would be the first to notice:
they are generated from the same swagger (network), or use the bundled SDKs (security, resource, monitor),
with azure-core's own LRO polling, paging and retries, and they cope with the faults the stand-in injects
(`faults` fixture, tests/conftest.py) as they would with Azure's.
"""
import datetime as dt
import re

from tests.harness import page_size
from tests.standin import security

LOC = 'westeurope'
AUTHORIZATION_FAILED = re.compile(
    r"The client '(?P<client>[^']+)' with object id '(?P<oid>[^']+)' does not have authorization to perform "
    r"action '(?P<action>[^']+)' over scope '(?P<scope>[^']+)' or the scope is invalid\.")


def _nsg_name(vm):
    return vm['nsg_id'].rsplit('/', 1)[1]


def _requests_since(standin, mark, path_part=''):
    return [(r.method, r.path, r.status) for r in standin.world.requests[mark:] if path_part.lower() in r.path.lower()]


# -- core commands ------------------------------------------------------------------------------------------
def test_nsg_rule_create_list_delete_and_duplicate_priority(az, standin, rg):
    vm = standin.vm(rg, 'web1')
    nsg = _nsg_name(vm)
    mark = len(standin.world.requests)
    created = az.ok('network', 'nsg', 'rule', 'create', '-g', rg, '--nsg-name', nsg, '-n', 'AllowWeb',
                    '--priority', 310, '--direction', 'Inbound', '--access', 'Allow', '--protocol', 'Tcp',
                    '--destination-port-ranges', 8443, '--source-address-prefixes', '198.51.100.0/24',
                    '--description', 'web from the office')
    assert created['name'] == 'AllowWeb' and created['priority'] == 310
    assert created['provisioningState'] == 'Succeeded'  # az followed the operation to its end
    calls = _requests_since(standin, mark)
    assert calls[0][0] == 'PUT' and calls[0][2] == 201
    assert any('/operations/' in path and status == 200 for _, path, status in calls[1:])
    listed = az.ok('network', 'nsg', 'rule', 'list', '-g', rg, '--nsg-name', nsg)
    assert [(r['name'], r['priority'], r['sourceAddressPrefix'], r['destinationPortRange']) for r in listed] == \
        [('AllowWeb', 310, '198.51.100.0/24', '8443')]
    assert [r['name'] for r in standin.nsg_rules(vm['nsg_id'])] == ['AllowWeb']

    clash = az.run('network', 'nsg', 'rule', 'create', '-g', rg, '--nsg-name', nsg, '-n', 'Other', '--priority', 310,
                   '--destination-port-ranges', 9000)
    assert clash.code != 0
    assert 'SecurityRuleConflict' in clash.stderr, clash
    assert [r['name'] for r in standin.nsg_rules(vm['nsg_id'])] == ['AllowWeb']

    mark = len(standin.world.requests)
    az.ok('network', 'nsg', 'rule', 'delete', '-g', rg, '--nsg-name', nsg, '-n', 'AllowWeb', output=None)
    assert _requests_since(standin, mark)[0][::2] == ('DELETE', 202)
    assert standin.nsg_rules(vm['nsg_id']) == []
    assert az.ok('network', 'nsg', 'rule', 'list', '-g', rg, '--nsg-name', nsg) == []
    # Deleting what is not there succeeds (204), as in Azure.
    az.ok('network', 'nsg', 'rule', 'delete', '-g', rg, '--nsg-name', nsg, '-n', 'AllowWeb', output=None)


def test_nsg_show_embeds_rules_default_rules_and_attachments(az, standin, rg):
    open_ssh = {'name': 'ssh', 'properties': {'priority': 300, 'direction': 'Inbound', 'access': 'Allow',
                                              'protocol': 'Tcp', 'sourcePortRange': '*', 'destinationPortRange': '22',
                                              'sourceAddressPrefix': '*', 'destinationAddressPrefix': '*'}}
    vm = standin.vm(rg, 'web1', rules=[open_ssh])
    shown = az.ok('network', 'nsg', 'show', '-g', rg, '-n', _nsg_name(vm))
    assert shown['id'] == vm['nsg_id'] and shown['etag'].startswith('W/"')
    assert [(r['name'], r['priority']) for r in shown['securityRules']] == [('ssh', 300)]
    assert sorted(r['priority'] for r in shown['defaultSecurityRules']) == [65000, 65000, 65001, 65001, 65500, 65500]
    assert [n['id'] for n in shown['networkInterfaces']] == vm['nic_ids']
    assert az.ok('network', 'nsg', 'rule', 'list', '-g', rg, '--nsg-name', _nsg_name(vm), '--include-default',
                 '--query', 'length(@)') == 7


def test_security_jit_policy_list_and_show(az, standin, rg):
    vm = standin.vm(rg, 'web1')
    security.add_policy(standin.world, rg, LOC, [security.jit_vm(vm['id'], ports=(22, 3389), protocol='TCP')])
    pid = security.policy_id(standin.sub, rg, LOC)
    listed = az.ok('security', 'jit-policy', 'list')
    mine = [p for p in listed if p['id'] == pid]
    assert len(mine) == 1 and mine[0]['kind'] == 'Basic' and mine[0]['resourceGroup'] == rg
    shown = az.ok('security', 'jit-policy', 'show', '-g', rg, '-l', LOC, '-n', 'default')
    assert shown['id'] == pid
    assert [(p['number'], p['protocol'], p['maxRequestAccessDuration']) for p in
            shown['virtualMachines'][0]['ports']] == [(22, 'TCP', 'PT3H'), (3389, 'TCP', 'PT3H')]
    assert shown['virtualMachines'][0]['id'] == vm['id']
    missing = az.run('security', 'jit-policy', 'show', '-g', rg, '-l', LOC, '-n', 'nope')
    assert missing.code != 0 and 'ResourceNotFound' in missing.stderr


def test_rest_get_of_an_arm_path(az, standin, rg):
    vm = standin.vm(rg, 'web1')
    body = az.ok('rest', '--method', 'get', '--url', '{}?api-version=2024-05-01'.format(vm['nsg_id']))
    assert body['id'] == vm['nsg_id'] and body['type'] == 'Microsoft.Network/networkSecurityGroups'
    group = az.ok('rest', '--method', 'get', '--url',
                  '/subscriptions/{}/resourceGroups/{}?api-version=2021-04-01'.format(standin.sub, rg))
    assert group['name'] == rg
    missing = az.run('rest', '--method', 'get', '--url', vm['nsg_id'] + 'x?api-version=2024-05-01')
    assert missing.code != 0 and 'ResourceNotFound' in missing.stderr


def test_group_show(az, standin, rg):
    group = az.ok('group', 'show', '-n', rg)
    assert group['id'] == '/subscriptions/{}/resourceGroups/{}'.format(standin.sub, rg)
    assert group['location'] == LOC and group['properties']['provisioningState'] == 'Succeeded'
    missing = az.run('group', 'show', '-n', rg + '-nope')
    assert missing.code != 0 and 'ResourceGroupNotFound' in missing.stderr


def test_activity_log_lists_writes_with_their_caller(az, standin, rg):
    vm = standin.vm(rg, 'web1')
    az.ok('network', 'nsg', 'rule', 'create', '-g', rg, '--nsg-name', _nsg_name(vm), '-n', 'AllowWeb',
          '--priority', 320, '--destination-port-ranges', 443)
    az.ok('tag', 'update', '--resource-id', vm['nsg_id'], '--operation', 'merge', '--tags', 'owner=web')
    lag = abs(standin.world.clock.now() - dt.datetime.now(dt.timezone.utc))
    # az computes the window from its own clock; if a test moved Azure's clock, ask for that window instead.
    window = ['--offset', '1h'] if lag < dt.timedelta(minutes=5) else [
        '--start-time', (standin.world.clock.now() - dt.timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%SZ'),
        '--offset', '2h']
    events = az.ok('monitor', 'activity-log', 'list', '--resource-group', rg, *window)
    admin = standin.world.identities['admin']
    seen = [(e['operationName']['value'], e['caller'], e['status']['value']) for e in events]
    assert ('Microsoft.Network/networkSecurityGroups/securityRules/write', admin.caller, 'Succeeded') in seen
    assert ('Microsoft.Resources/tags/write', admin.caller, 'Succeeded') in seen
    assert all(e['resourceGroupName'] == rg for e in events)
    by_caller = az.ok('monitor', 'activity-log', 'list', '--resource-group', rg, '--caller', 'nobody@contoso.test',
                      *window)
    assert by_caller == []


def test_identity_without_the_role_gets_authorization_failed(az_as, standin, rg):
    vm = standin.vm(rg, 'web1')
    reader = az_as('reader')
    assert reader.ok('network', 'nsg', 'show', '-g', rg, '-n', _nsg_name(vm))['id'] == vm['nsg_id']
    result = reader.run('network', 'nsg', 'rule', 'create', '-g', rg, '--nsg-name', _nsg_name(vm), '-n', 'x',
                        '--priority', 330, '--destination-port-ranges', 22)
    assert result.code != 0 and 'AuthorizationFailed' in result.stderr
    match = AUTHORIZATION_FAILED.search(result.stderr.replace('\n', ' '))
    ident = standin.world.identities['reader']
    assert match and match.group('client') == ident.client_id and match.group('oid') == ident.object_id
    assert match.group('action') == 'Microsoft.Network/networkSecurityGroups/securityRules/write'
    assert standin.nsg_rules(vm['nsg_id']) == []


def test_long_running_operations_that_take_a_few_polls(az, standin, rg):
    """Rule create follows Azure-AsyncOperation, rule delete the Location URL, through InProgress answers."""
    vm = standin.vm(rg, 'web1')
    nsg = _nsg_name(vm)
    old, standin.world.lro_polls = standin.world.lro_polls, 2
    try:
        mark = len(standin.world.requests)
        created = az.ok('network', 'nsg', 'rule', 'create', '-g', rg, '--nsg-name', nsg, '-n', 'slow',
                        '--priority', 340, '--destination-port-ranges', 8080)
        assert created['provisioningState'] == 'Succeeded'
        polls = [s for _, p, s in _requests_since(standin, mark) if '/operations/' in p]
        assert len(polls) == 3  # InProgress, InProgress, Succeeded
        mark = len(standin.world.requests)
        az.ok('network', 'nsg', 'rule', 'delete', '-g', rg, '--nsg-name', nsg, '-n', 'slow', output=None)
        calls = _requests_since(standin, mark)
        assert calls[0][::2] == ('DELETE', 202)
        assert [s for _, p, s in calls if '/operationResults/' in p or '/operations/' in p][-1] in (200, 204)
    finally:
        standin.world.lro_polls = old
    assert standin.nsg_rules(vm['nsg_id']) == []


def test_lists_follow_next_link_when_pages_are_small(az, standin, rg):
    for name in ('a', 'b', 'c'):
        standin.nsg(rg, 'nsg-' + name)
        vm = standin.vm(rg, 'vm-' + name, nsg=None)
        security.add_policy(standin.world, rg, LOC, [security.jit_vm(vm['id'])], name='policy-' + name)
    with page_size(standin.world, 1):
        mark = len(standin.world.requests)
        names = az.ok('network', 'nsg', 'list', '-g', rg, '--query', '[].name')
        policies = az.ok('security', 'jit-policy', 'list', '--query', "[?resourceGroup=='{}'].name".format(rg))
        pages = [q for q in standin.world.requests[mark:] if q.method == 'GET' and '$skiptoken' in q.query]
    assert names == ['nsg-a', 'nsg-b', 'nsg-c']
    assert sorted(policies) == ['policy-a', 'policy-b', 'policy-c']
    assert len(pages) >= 4  # two more pages of NSGs, and at least two more of policies


# -- faults: az copes ------------------------------------------------------------------------------------------
def test_429_with_retry_after_is_retried_by_az(az, standin, rg, faults):
    vm = standin.vm(rg, 'web1')
    path = re.escape(vm['nsg_id']) + '$'
    faults('GET', path, status=429, code='TooManyRequests', message='Too many requests, retry later.',
           retry_after=1)
    mark = len(standin.world.requests)
    shown = az.ok('network', 'nsg', 'show', '-g', rg, '-n', _nsg_name(vm))
    assert shown['id'] == vm['nsg_id']
    calls = [r for r in standin.world.requests[mark:] if r.path.lower() == vm['nsg_id'].lower()]
    assert [(r.method, r.status) for r in calls] == [('GET', 429), ('GET', 200)]
    assert (calls[1].at - calls[0].at).total_seconds() >= 0.9  # Retry-After: 1 was honoured


def test_500_twice_then_success_is_retried(az, standin, rg, faults):
    path = '/resourcegroups/{}$'.format(re.escape(rg))
    faults('GET', path, status=500, times=2)
    mark = len(standin.world.requests)
    assert az.ok('group', 'show', '-n', rg)['name'] == rg
    assert [s for m, _, s in _requests_since(standin, mark, '/resourcegroups/' + rg)] == [500, 500, 200]


def test_dropped_connection_is_retried(az, standin, rg, faults):
    vm = standin.vm(rg, 'web1')
    faults('GET', re.escape(vm['nsg_id']) + '$', kind='drop')
    mark = len(standin.world.requests)
    assert az.ok('network', 'nsg', 'show', '-g', rg, '-n', _nsg_name(vm))['id'] == vm['nsg_id']
    assert [s for _, _, s in _requests_since(standin, mark, vm['nsg_id'])] == [0, 200]


def test_delayed_answer_is_waited_for(az, standin, rg, faults):
    vm = standin.vm(rg, 'web1')
    faults('GET', re.escape(vm['nsg_id']) + '$', kind='delay', delay=2.0)
    result = az.run('network', 'nsg', 'show', '-g', rg, '-n', _nsg_name(vm))
    assert result.code == 0, result
    assert result.json['id'] == vm['nsg_id'] and result.seconds >= 2.0
