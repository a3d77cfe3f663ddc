# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""tests/standin/arm.py's Activity Log, over HTTPS: the `$filter` patterns Azure accepts (an eventTimestamp range
and at most ONE of resourceGroupName, resourceUri, resourceProvider, correlationId; `caller` and `status` beside
them, as `az monitor activity-log list` sends), and events that show up late."""
import datetime as dt

import pytest
import requests

from tests.standin import arm, tokens
from tests.standin.app import Standin
from tests.standin.world import World

API = '2015-04-01'


@pytest.fixture(name='standin', scope='module')
def fixture_standin(tmp_path_factory):
    standin = Standin(str(tmp_path_factory.mktemp('standin'))).start()
    yield standin
    standin.stop()


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

    def run(text):
        token = tokens.issue(world, admin, standin.base_url + '/')
        return session.get(standin.base_url + '/subscriptions/{}/providers/microsoft.insights/eventtypes/management/'
                           'values'.format(world.subscription_id), params={'api-version': API, '$filter': text},
                           headers={'Authorization': 'Bearer ' + token}, verify=standin.ca_path)
    run.world, run.rid, run.caller = world, rid, admin.caller
    yield run
    session.close()


def _since(world, minutes=10):
    return "eventTimestamp ge '{}'".format((world.clock.now() - dt.timedelta(minutes=minutes)).strftime(
        '%Y-%m-%dT%H:%M:%SZ'))


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


def test_events_show_up_only_after_the_log_delay(query):
    arm.activity_log_state(query.world)['delay'] = dt.timedelta(minutes=5)
    assert query(_since(query.world)).json()['value'] == []
    query.world.clock.advance(minutes=6)
    assert len(query(_since(query.world, minutes=20)).json()['value']) == 1
