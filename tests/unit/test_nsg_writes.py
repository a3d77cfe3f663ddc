# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Rule writes against a scripted network SDK: a rule whose answer never came is removed all the same, a busy NSG
is waited for, and Azure's failures read as one line with advice (errors.explain_http_error / write_failed)."""

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from azext_jit import errors
from azext_jit.nsg import client
from tests.unit.fake_http import FakeResponse

NSG_ID = '/subscriptions/s/resourceGroups/rg1/providers/Microsoft.Network/networkSecurityGroups/nsg1'


def _http_error(status, code, message='m', headers=None, body=None):
    return HttpResponseError(response=FakeResponse(status, body or {'error': {'code': code, 'message': message}},
                                                   headers))


class _Poller:
    def __init__(self, result):
        self._result = result

    def result(self):
        if isinstance(self._result, Exception):
            raise self._result
        return self._result


class _Rules:
    """securityRules: `put_outcomes` says, per PUT, what happens after the rule is applied (None: answered)."""

    def __init__(self, nsg, put_outcomes=(), delete_outcomes=()):
        self.nsg, self.puts, self.deletes = nsg, [], []
        self.put_outcomes, self.delete_outcomes = list(put_outcomes), list(delete_outcomes)

    def begin_create_or_update(self, _rg, _nsg, name, body):
        outcome = self.put_outcomes.pop(0) if self.put_outcomes else None
        self.puts.append(name)
        if isinstance(outcome, HttpResponseError) and outcome.status_code == 429:
            return _Poller(outcome)   # refused: nothing applied
        self.nsg['properties']['securityRules'].append({'name': name, 'properties': body['properties']})
        return _Poller(outcome or {'name': name, 'properties': body['properties']})

    def begin_delete(self, _rg, _nsg, name):
        outcome = self.delete_outcomes.pop(0) if self.delete_outcomes else None
        self.deletes.append(name)
        if outcome is None:
            rules = self.nsg['properties']['securityRules']
            rules[:] = [r for r in rules if r['name'] != name]
        return _Poller(outcome)


class _Azure:
    def __init__(self, rules):
        self.nsgs = {NSG_ID.lower(): rules.nsg}
        self.network = type('Network', (), {'security_rules': rules})()


def _setup(put_outcomes=(), delete_outcomes=()):
    nsg = {'id': NSG_ID, 'properties': {'securityRules': []}}
    rules = _Rules(nsg, put_outcomes, delete_outcomes)
    return _Azure(rules), rules, nsg


def _build(*names):
    def build(_nsg, _attempt):
        return [{'name': n, 'properties': {'priority': 100 + i, 'access': 'Allow', 'direction': 'Inbound'}}
                for i, n in enumerate(names)]
    return build


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch):
    monkeypatch.setattr(client.time, 'sleep', lambda seconds: None)


def test_a_rule_whose_answer_was_lost_is_removed_and_the_error_says_so():
    azure, rules, nsg = _setup(put_outcomes=[ServiceResponseError('Connection aborted.')])
    with pytest.raises(errors.ConnectionFailed) as caught:
        client.add_rules(azure, NSG_ID, _build('allow-22'), nsg)
    assert rules.deletes == ['allow-22'] and nsg['properties']['securityRules'] == []
    assert 'connection to Azure was lost' in caught.value.message
    assert 'JIT removed the rule it had written or may have written (allow-22) again' in caught.value.message
    assert 'Connection aborted' not in caught.value.message   # advice, not the raw exception text


def test_the_second_rule_failing_removes_the_first_and_the_second():
    failed = _http_error(200, 'InternalServerError', 'It broke.',
                         body={'status': 'Failed', 'error': {'code': 'InternalServerError', 'message': 'It broke.'}})
    azure, rules, nsg = _setup(put_outcomes=[None, failed])
    with pytest.raises(errors.AzureFailed) as caught:
        client.add_rules(azure, NSG_ID, _build('allow-22', 'allow-3389'), nsg)
    assert sorted(rules.deletes) == ['allow-22', 'allow-3389'] and nsg['properties']['securityRules'] == []
    assert 'operation ended Failed (InternalServerError: It broke.)' in caught.value.message


def test_a_rule_that_cannot_be_removed_is_named_with_the_command_that_removes_it():
    azure, rules, nsg = _setup(put_outcomes=[ServiceResponseError('lost')],
                               delete_outcomes=[_http_error(500, 'InternalServerError')])
    with pytest.raises(errors.ConnectionFailed) as caught:
        client.add_rules(azure, NSG_ID, _build('allow-22'), nsg)
    assert rules.deletes == ['allow-22']
    assert 'allow-22 written before the failure could not be removed' in caught.value.message
    assert caught.value.recommendation.startswith(
        'Remove it: az network nsg rule delete -g rg1 --nsg-name nsg1 -n allow-22.')


def test_an_existing_rule_updated_in_place_is_never_deleted_on_failure():
    azure, rules, nsg = _setup(put_outcomes=[ServiceResponseError('lost')])
    nsg['properties']['securityRules'].append({'name': 'deny-1', 'properties': {'priority': 1000}})
    with pytest.raises(errors.ConnectionFailed) as caught:
        client.add_rules(azure, NSG_ID, _build('deny-1'), nsg)
    assert rules.deletes == [] and 'removed' not in caught.value.message


def test_a_busy_nsg_is_waited_for_and_the_write_repeated():
    busy = _http_error(429, 'RetryableErrorDueToAnotherOperation', headers={'Retry-After': '1'})
    azure, rules, nsg = _setup(put_outcomes=[busy, busy, None])
    written = client.add_rules(azure, NSG_ID, _build('allow-22'), nsg)
    assert [r['name'] for r in written] == ['allow-22'] and rules.puts == ['allow-22'] * 3


def test_a_busy_nsg_outlasting_the_wait_fails_with_advice(monkeypatch):
    monkeypatch.setenv('AZURE_JIT_BUSY_SECONDS', '0')
    busy = _http_error(429, 'RetryableErrorDueToAnotherOperation', headers={'Retry-After': '1'})
    azure, _, nsg = _setup(put_outcomes=[busy])
    with pytest.raises(errors.AzureFailed) as caught:
        client.add_rules(azure, NSG_ID, _build('allow-22'), nsg)
    assert 'another operation was in progress' in caught.value.message
    assert caught.value.recommendation.startswith('Wait a minute')


@pytest.mark.parametrize('ex,kind,text', [
    (ServiceRequestError('refused'), errors.ConnectionFailed, 'Could not reach Azure'),
    (ServiceResponseError('reset'), errors.ConnectionFailed, 'may or may not have done what was asked'),
    (_http_error(503, 'ServiceUnavailable', 'Try later.'), errors.AzureFailed,
     'Azure failed to complete the request (503 ServiceUnavailable: Try later.)'),
    (_http_error(429, 'TooManyRequests', 'Slow down.'), errors.AzureFailed, 'throttling'),
    (_http_error(400, 'SecurityRuleConflict', 'Taken.'), errors.AzureRefused, 'SecurityRuleConflict: Taken.'),
])
def test_every_kind_of_azure_failure_gets_its_own_words_and_advice(ex, kind, text):
    explained = errors.explain_http_error(ex)
    assert type(explained) is kind   # pylint: disable=unidiomatic-typecheck
    assert text in explained.message and '\n' not in explained.message
