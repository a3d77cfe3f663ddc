# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""NSG-mode writes when Azure misbehaves: no allow rule is ever left behind, and the user reads one line that says
what happened, what state Azure is in and what to run.

Faults, scripted on the stand-in: an answer lost after Azure applied the PUT, server errors, an operation that
ends Failed, an NSG held by another operation (429 RetryableErrorDueToAnotherOperation), and operations that
take several polls (a rule being deleted stays, `Deleting`, until its operation completes).
"""
import re

import pytest

from tests.harness import enable, error_lines, product_rules

ALLOW_PUT = r'/networkSecurityGroups/{}-nsg/securityRules/AzVmJit-Allow-'
BUSY = dict(status=429, code='RetryableErrorDueToAnotherOperation', retry_after=1,
            message='Operation is not allowed because another operation is in progress on the resource.')


def _nsg_mode_vm(az, standin, rg, name, *ports):
    vm = standin.vm(rg, name)
    enable(az, rg, name, '--ports', *(ports or ('22',)), '--mode', 'nsg')
    return vm


def _request(az, rg, name, *extra, **kwargs):
    return az.run('vm', 'jit', 'request', '-g', rg, '-n', name, '--source', '198.51.100.9', *extra, **kwargs)


def _assert_one_clear_error(result, *phrases):
    assert result.code == 1, result
    assert 'Traceback' not in result.stderr, result
    errors = error_lines(result)
    assert len(errors) == 1, result.stderr
    for phrase in phrases:
        assert phrase in errors[0], errors[0]
    return errors[0]


def test_an_answer_lost_after_the_allow_rule_was_applied_leaves_no_rule_open(az, standin, rg, faults):
    vm = _nsg_mode_vm(az, standin, rg, 'lost')
    fault = faults('PUT', ALLOW_PUT.format('lost'), kind='drop_after', times=10)
    result = _request(az, rg, 'lost')
    assert fault.hits >= 1
    assert product_rules(standin, vm['nsg_id'], 'Allow') == [], 'the rule Azure applied is still open'
    line = _assert_one_clear_error(result, 'connection to Azure was lost', 'nothing was left open')
    assert re.search(r'AzVmJit-Allow-\S+-22-tcp', line, re.I)
    assert 'Run the command again' in result.stderr


def test_a_server_error_on_the_allow_rule_leaves_no_rule_and_says_what_to_do(az, standin, rg, faults):
    vm = _nsg_mode_vm(az, standin, rg, 'five')
    faults('PUT', ALLOW_PUT.format('five'), status=500, code='InternalServerError', message='Something broke.',
           times=10)
    result = _request(az, rg, 'five')
    _assert_one_clear_error(result, 'Azure failed to complete the request (500 InternalServerError: Something broke.)',
                            'nothing was left open')
    assert product_rules(standin, vm['nsg_id'], 'Allow') == []


def test_an_operation_that_ends_failed_leaves_no_allow_rule(az, standin, rg, faults):
    vm = _nsg_mode_vm(az, standin, rg, 'failed')
    faults('PUT', ALLOW_PUT.format('failed'), kind='lro_failed', code='InternalServerError',
           message='The rule could not be applied.')
    result = _request(az, rg, 'failed')
    assert product_rules(standin, vm['nsg_id'], 'Allow') == [], 'the Failed rule was left in the NSG'
    _assert_one_clear_error(result, 'operation ended Failed', 'The rule could not be applied.', 'nothing was left open')


def test_the_second_port_failing_takes_the_first_ports_rule_back(az, standin, rg, faults):
    vm = _nsg_mode_vm(az, standin, rg, 'second', '22', '3389')
    faults('PUT', ALLOW_PUT.format('second') + r'.*-3389-', kind='lro_failed', code='InternalServerError',
           message='Failed for the test.')
    result = _request(az, rg, 'second')
    assert product_rules(standin, vm['nsg_id'], 'Allow') == []
    line = _assert_one_clear_error(result, 'operation ended Failed', 'nothing was left open')
    assert '-22-tcp' in line.lower() and '-3389-tcp' in line.lower()


def test_an_nsg_busy_longer_than_the_sdk_retries_is_waited_for(az, standin, rg, faults):
    """Six 429s outlast az's pipeline (three retries); the extension keeps waiting as Retry-After says."""
    vm = _nsg_mode_vm(az, standin, rg, 'busy')
    fault = faults('PUT', ALLOW_PUT.format('busy'), times=6, **BUSY)
    answer = _request(az, rg, 'busy')
    assert answer.code == 0, answer
    assert fault.hits == 6
    allows = product_rules(standin, vm['nsg_id'], 'Allow')
    assert len(allows) == 1 and allows[0]['properties']['provisioningState'] == 'Succeeded'


def test_an_nsg_that_stays_busy_fails_cleanly_with_advice(az, standin, rg, faults):
    vm = _nsg_mode_vm(az, standin, rg, 'stuck')
    faults('PUT', ALLOW_PUT.format('stuck'), times=1000, **BUSY)
    result = _request(az, rg, 'stuck', extra_env={'AZURE_JIT_BUSY_SECONDS': '3'})
    _assert_one_clear_error(result, 'another operation was in progress', 'RetryableErrorDueToAnotherOperation')
    assert 'Wait a minute and run the command again' in result.stderr
    assert product_rules(standin, vm['nsg_id'], 'Allow') == []


def test_a_failed_deny_rule_write_leaves_neither_the_rule_nor_the_policy(az, standin, rg, faults):
    vm = standin.vm(rg, 'deny')
    faults('PUT', r'/networkSecurityGroups/deny-nsg/securityRules/AzVmJit-Deny-', kind='lro_failed',
           code='InternalServerError', message='Deny failed.')
    result = az.run('vm', 'jit', 'enable', '-g', rg, '-n', 'deny', '--ports', '22', '--mode', 'nsg', '--yes')
    assert product_rules(standin, vm['nsg_id']) == []
    assert not [k for k in standin.world.get(vm['id'])['tags'] if k.startswith('azvmjit-policy')]
    _assert_one_clear_error(result, 'operation ended Failed', 'nothing was left open')


def test_a_lost_answer_to_revokes_delete_still_closes_the_access(az, standin, rg, faults):
    vm = _nsg_mode_vm(az, standin, rg, 'revoke')
    assert _request(az, rg, 'revoke').code == 0
    fault = faults('DELETE', r'/networkSecurityGroups/revoke-nsg/securityRules/AzVmJit-Allow-', kind='drop_after')
    result = az.run('vm', 'jit', 'revoke', '-g', rg, '-n', 'revoke', '--all')
    assert result.code == 0, result
    assert fault.hits == 1
    assert product_rules(standin, vm['nsg_id'], 'Allow') == []


@pytest.fixture
def slow_operations(standin):
    """Every long-running operation answers InProgress twice before it completes."""
    old = standin.world.lro_polls
    standin.world.lro_polls = 2
    yield
    standin.world.lro_polls = old


def test_request_revoke_and_cleanup_wait_for_operations_that_take_several_polls(az, standin, rg, slow_operations):
    vm = _nsg_mode_vm(az, standin, rg, 'slow')
    first = _request(az, rg, 'slow', '--duration', '5')
    second = _request(az, rg, 'slow')
    assert first.code == 0 and second.code == 0, (first, second)
    allows = product_rules(standin, vm['nsg_id'], 'Allow')
    assert len(allows) == 2 and {r['properties']['provisioningState'] for r in allows} == {'Succeeded'}
    assert az.run('vm', 'jit', 'revoke', '-g', rg, '-n', 'slow', '--request-id', second.json['id']).code == 0
    assert len(product_rules(standin, vm['nsg_id'], 'Allow')) == 1, 'revoke returned before the rule was gone'
    standin.world.clock.advance(minutes=10)
    cleaned = az.run('vm', 'jit', 'cleanup', '-g', rg)
    assert cleaned.code == 0, cleaned
    assert product_rules(standin, vm['nsg_id'], 'Allow') == []
