# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Who asked for access and why, as `show` and `list` report it later, from any machine: the justification is
kept with the request in both modes, and in NSG mode, where anyone who may write rules could write one claiming
any requestor, `show` sets the requestor the rule claims beside the caller Azure's Activity Log names for it."""
import datetime as dt
import hashlib
import json

import pytest

from tests.harness import enable, ok, product_rules
from tests.standin import compute

WHY = 'INC0042 disk full on db01'


@pytest.mark.usefixtures('defender_off')
def test_justification_is_kept_with_an_nsg_mode_request_and_shown_later(az, standin, rg):
    vm = standin.vm(rg, 'db1')
    enable(az, rg, 'db1')
    made = ok(az, 'request', '-g', rg, '-n', 'db1', '--ports', '22', '--source', '198.51.100.10',
              '--justification', WHY)
    assert made['justification'] == WHY
    [shown] = ok(az, 'show', '-g', rg, '-n', 'db1')['requests']
    [listed] = ok(az, 'list', '-g', rg)[0]['requests']
    assert shown['id'] == made['id'] and shown['justification'] == WHY and listed['justification'] == WHY
    [rule] = product_rules(standin, vm['nsg_id'], 'Allow')
    assert len(rule['properties']['description']) <= 140


@pytest.mark.usefixtures('defender_off')
def test_a_long_justification_is_shortened_to_fit_azure_and_the_user_is_told(az, standin, rg):
    standin.vm(rg, 'db2')
    enable(az, rg, 'db2')
    long_reason = 'Investigating the nightly batch failure reported in INC0042; ' * 4
    result = az.run('vm', 'jit', 'request', '-g', rg, '-n', 'db2', '--ports', '22', '--source', '198.51.100.10',
                    '--justification', long_reason)
    assert result.code == 0, result
    assert 'justification was shortened' in result.stderr
    kept = result.json['justification']
    assert kept.endswith('...') and long_reason.startswith(kept[:-3])
    [shown] = ok(az, 'show', '-g', rg, '-n', 'db2')['requests']
    assert shown['justification'] == kept


def test_justification_is_shown_later_in_defender_mode(az, standin, rg):
    standin.vm(rg, 'db3')
    enable(az, rg, 'db3')
    ok(az, 'request', '-g', rg, '-n', 'db3', '--ports', '22', '--justification', WHY)
    [shown] = ok(az, 'show', '-g', rg, '-n', 'db3')['requests']
    [listed] = ok(az, 'list', '-g', rg)[0]['requests']
    assert shown['justification'] == WHY and listed['justification'] == WHY


def hand_written_allow_rule(vm, request_id, claimed, until, priority=150):
    """An allow rule in the extension's own format, as anyone allowed to write NSG rules could write it."""
    key = hashlib.sha256(vm['id'].lower().encode()).hexdigest()[:8]
    return 'AzVmJit-Allow-{}-{}-22-tcp'.format(key, request_id), {'properties': {
        'priority': priority, 'direction': 'Inbound', 'access': 'Allow', 'protocol': 'Tcp', 'sourcePortRange': '*',
        'destinationPortRange': '22', 'sourceAddressPrefix': '203.0.113.5',
        'destinationAddressPrefix': vm['private_ip'],
        'description': 'az vm jit: open until {:%Y-%m-%dT%H:%M:%SZ} for {}, request {}'.format(
            until, claimed, request_id)}}


@pytest.mark.usefixtures('defender_off')
def test_show_confirms_the_requestor_that_the_activity_log_names(az, az_as, standin, rg):
    standin.vm(rg, 'app1')
    enable(az, rg, 'app1')
    made = ok(az_as('requester'), 'request', '-g', rg, '-n', 'app1', '--ports', '22', '--source', '198.51.100.20')
    result = az.run('vm', 'jit', 'show', '-g', rg, '-n', 'app1')
    [shown] = result.json['requests']
    requester_id = standin.world.identities['requester'].caller
    assert shown['id'] == made['id'] and shown['requestor'] == requester_id
    assert shown['requestorCheck'] == 'confirmed' and shown['activityLogRequestor'] == requester_id
    assert "Activity Log names" not in result.stderr


@pytest.mark.usefixtures('defender_off')
def test_show_names_the_real_writer_of_a_rule_that_claims_someone_else(az, standin, rg):
    vm = standin.vm(rg, 'app2')
    enable(az, rg, 'app2')
    victim = standin.world.identities['requester'].caller
    name, body = hand_written_allow_rule(vm, 'abcdef12', victim, standin.world.clock.now() + dt.timedelta(hours=1))
    url = '{}/securityRules/{}?api-version=2024-05-01'.format(vm['nsg_id'], name)
    written = az.run('rest', '--method', 'put', '--url', url, '--body', json.dumps(body), output=None)
    assert written.code == 0, written

    result = az.run('vm', 'jit', 'show', '-g', rg, '-n', 'app2')
    assert result.code == 0, result
    [shown] = result.json['requests']
    admin = standin.world.identities['admin'].caller
    assert shown['requestor'] == victim and shown['requestorCheck'] == 'mismatch'
    assert shown['activityLogRequestor'] == admin
    assert "Request abcdef12" in result.stderr and admin in result.stderr and 'Activity Log names' in result.stderr


@pytest.mark.usefixtures('defender_off')
def test_a_rule_the_activity_log_does_not_show_yet_is_unknown_not_a_mismatch(az, standin, rg):
    vm = standin.vm(rg, 'app3')
    enable(az, rg, 'app3')
    victim = standin.world.identities['requester'].caller
    name, body = hand_written_allow_rule(vm, 'abcdef13', victim, standin.world.clock.now() + dt.timedelta(hours=1))
    # Written with no Activity Log event: one that has not reached the log yet.
    compute.place_rule(standin.world, vm['nsg_id'], dict(body, name=name))
    result = az.run('vm', 'jit', 'show', '-g', rg, '-n', 'app3')
    [shown] = result.json['requests']
    assert shown['requestorCheck'] == 'unknown' and shown['activityLogRequestor'] is None
    assert 'Activity Log names' not in result.stderr
