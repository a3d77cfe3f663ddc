# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The Kusto fleet commands send to Azure Resource Graph (fleet/queries.py), and the scope they send it over
(fleet/scope.py): the exact query shapes, and a group name, subscription or management group that could not be
sent as it is refused as bad input before anything is sent."""
import pytest

from azext_jit.errors import BadInput
from azext_jit.fleet import queries, scope

SUB_A = '00000000-0000-0000-0000-00000000000a'
SUB_B = '00000000-0000-0000-0000-00000000000b'


def _lines(text):
    return [' '.join(line.split()) for line in text.splitlines()]


def test_the_estate_query_reads_vms_and_their_network_in_one_query():
    assert _lines(queries.estate()) == [
        'Resources',
        "| where type in~ ('microsoft.compute/virtualmachines', 'microsoft.network/networkinterfaces', "
        "'microsoft.network/publicipaddresses', 'microsoft.network/networksecuritygroups', "
        "'microsoft.network/virtualnetworks')",
        '| project id, name, type, location, resourceGroup, subscriptionId, tags, sku, properties']


def test_the_estate_query_of_one_group_keeps_the_network_of_every_group():
    assert _lines(queries.estate('My-RG_1.(x)'))[2] == \
        "| where type !~ 'microsoft.compute/virtualmachines' or resourceGroup =~ 'My-RG_1.(x)'"


def test_the_cleanup_query_finds_nsgs_by_rule_name_marker():
    assert _lines(queries.nsgs_with_rules(['AzVmJit-Allow-'])) == [
        'Resources',
        "| where type =~ 'microsoft.network/networksecuritygroups'",
        "| where tostring(properties.securityRules) contains 'AzVmJit-Allow-'",
        '| project id, name, type, location, resourceGroup, subscriptionId, properties']
    assert _lines(queries.nsgs_with_rules(['A-', 'B-'], 'rg1'))[2:4] == [
        "| where resourceGroup =~ 'rg1'",
        "| where tostring(properties.securityRules) contains 'A-' or tostring(properties.securityRules) contains "
        "'B-'"]


@pytest.mark.parametrize('name', ["rg'1", 'rg"1', 'rg\\1', "x' or type != '", 'rg 1', 'rg.', '', 'r' * 91,
                                  'rg|1'])
def test_a_group_name_that_is_no_resource_group_name_is_refused_not_spliced(name):
    with pytest.raises(BadInput) as caught:
        queries.estate(name)
    assert 'is not a valid resource group name' in caught.value.message
    with pytest.raises(BadInput):
        queries.nsgs_with_rules(['A-'], name)
    if name:
        with pytest.raises(BadInput):
            scope.Scope(subscriptions=[SUB_A], resource_group=name)


def test_a_scope_takes_subscription_ids_once_each():
    chosen = scope.Scope(subscriptions=[SUB_A, SUB_B.upper(), SUB_B, ' '], resource_group='rg1')
    assert chosen.subscriptions == [SUB_A, SUB_B.upper()] and chosen.management_groups is None
    assert chosen.names() == [SUB_A, SUB_B.upper()] and chosen.resource_group == 'rg1'


@pytest.mark.parametrize('kwargs,text', [
    ({'subscriptions': ['my-sub']}, "'my-sub' is not a subscription id"),
    ({'subscriptions': [SUB_A], 'management_groups': ['mg1']}, 'not both'),
    ({'management_groups': ["mg'1"]}, 'is not a management group name'),
])
def test_a_scope_that_cannot_be_queried_is_refused(kwargs, text):
    with pytest.raises(BadInput) as caught:
        scope.Scope(**kwargs)
    assert text in caught.value.message and caught.value.recommendation


class _Rest:
    def __init__(self, items):
        self.items, self.calls = items, []

    def list(self, path, api_version, max_pages=None, on_cut=None, **query):
        self.calls.append((path, api_version, max_pages, bool(on_cut), query))
        return self.items


class _Azure:
    subscription_id = SUB_A

    def __init__(self, items):
        self.rest = _Rest(items)


def test_outside_az_all_subscriptions_are_the_live_ones_arm_lists_in_one_call():
    azure = _Azure([{'subscriptionId': SUB_A, 'state': 'Enabled'}, {'subscriptionId': SUB_B, 'state': 'Disabled'},
                    {'subscriptionId': SUB_A.upper(), 'state': 'Enabled'},
                    {'subscriptionId': '00000000-0000-0000-0000-00000000000c', 'state': 'PastDue'}])
    assert scope.subscriptions_of(None, azure, True) == [SUB_A, '00000000-0000-0000-0000-00000000000c']
    assert [c[:2] for c in azure.rest.calls] == [('/subscriptions', scope.SUBSCRIPTIONS_API)]


def test_outside_az_named_subscriptions_are_taken_as_ids_without_a_call():
    azure = _Azure([])
    assert scope.subscriptions_of(None, azure, False, named=[SUB_B, SUB_A]) == [SUB_B, SUB_A]
    assert scope.subscriptions_of(None, azure, False) == [SUB_A] and azure.rest.calls == []
    with pytest.raises(BadInput):
        scope.subscriptions_of(None, azure, False, named=['Production'])


def test_inside_az_subscriptions_come_from_the_login_cache_of_the_current_account(monkeypatch):
    from azure.cli.core import _profile
    me, other = {'name': 'me@x', 'type': 'user'}, {'name': 'other@x', 'type': 'user'}
    cached = [
        {'id': SUB_A, 'name': 'Prod', 'state': 'Enabled', 'tenantId': 't1', 'user': me},
        {'id': SUB_B, 'name': 'Dev', 'state': 'Enabled', 'tenantId': 't1', 'user': me},
        {'id': '00000000-0000-0000-0000-00000000000c', 'name': 'Old', 'state': 'Disabled', 'tenantId': 't1',
         'user': me},
        {'id': '00000000-0000-0000-0000-00000000000d', 'name': 'Elsewhere', 'state': 'Enabled', 'tenantId': 't2',
         'user': me},
        {'id': '00000000-0000-0000-0000-00000000000e', 'name': 'Theirs', 'state': 'Enabled', 'tenantId': 't1',
         'user': other},
    ]

    class Profile:  # pylint: disable=too-few-public-methods
        def __init__(self, cli_ctx=None):
            assert cli_ctx == 'ctx'

        def load_cached_subscriptions(self, all_clouds=False):
            assert not all_clouds
            return [dict(e) for e in cached]

    monkeypatch.setattr(_profile, 'Profile', Profile)
    cmd = type('Cmd', (), {'cli_ctx': 'ctx'})()
    azure = _Azure([])
    assert scope.subscriptions_of(cmd, azure, True) == [SUB_A, SUB_B]
    assert scope.subscriptions_of(cmd, azure, False, named=['dev', SUB_A]) == [SUB_B, SUB_A]
    with pytest.raises(BadInput) as caught:
        scope.subscriptions_of(cmd, azure, False, named=['Staging'])
    assert "'Staging' is not one of yours" in caught.value.message
    for elsewhere in ('00000000-0000-0000-0000-00000000000d', '00000000-0000-0000-0000-00000000000f'):
        with pytest.raises(BadInput):   # another tenant's, or none this account knows: refused, not sent
            scope.subscriptions_of(cmd, azure, False, named=[elsewhere])
    cached[1]['state'] = 'Warned'       # still runs its VMs: still covered
    assert scope.subscriptions_of(cmd, azure, True) == [SUB_A, SUB_B]
    for entry in cached:
        entry['state'] = 'Disabled'
    with pytest.raises(BadInput):       # nothing to cover is an error, never a query of the whole tenant
        scope.subscriptions_of(cmd, azure, True)
    assert azure.rest.calls == [], 'inside az no call: the login cache knows the subscriptions'
