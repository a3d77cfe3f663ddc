# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Azure Resource Graph queries (fleet/graph.py) against a scripted Resource Graph: every page read, subscriptions in
batches of 1000, the quota and 429s waited for (no real sleep) within a bound, a cut answer never taken for the
whole; and the REST client handing out the answer's headers (over a fake transport)."""
import json

import pytest
from azure.core.exceptions import HttpResponseError

from azext_jit import errors
from azext_jit.fleet import graph
from tests.unit.fake_http import FakeResponse

QUERY = 'Resources | project id'


def _error(status, code, headers=None):
    return HttpResponseError(response=FakeResponse(status, {'error': {'code': code, 'message': code + ' happened'}},
                                                   headers))


def _page(rows, token=None, truncated=False, total=None, headers=None):
    answer = {'totalRecords': total if total is not None else len(rows), 'count': len(rows),
              'resultTruncated': 'true' if truncated else 'false', 'data': rows, 'facets': []}
    if token:
        answer['$skipToken'] = token
    return answer, headers or {'x-ms-user-quota-remaining': '14', 'x-ms-user-quota-resets-after': '00:00:05'}


class _Graph:
    """`azure.rest` for Resource Graph: each POST gets the next scripted answer (an answer with its headers, or an
    error to raise); the bodies sent are kept."""

    def __init__(self, script):
        self.script = list(script)
        self.bodies = []
        self.options = []

    def send(self, method, path, api_version, body=None, query=None, headers_out=None, **options):
        assert (method, path, api_version, query) == ('POST', graph.PATH, '2021-03-01', None)
        self.bodies.append(json.loads(json.dumps(body)))
        self.options.append(options)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        answer, headers = step
        headers_out.update(headers)
        return answer


class _Azure:
    def __init__(self, script):
        self.rest = _Graph(script)


class _Time:
    """A clock that moves only when slept on."""

    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self):
        return self.now


def _run(azure, **kwargs):
    time = _Time()
    rows = graph.query(azure, QUERY, sleep=time.sleep, clock=time.clock, **kwargs)
    return rows, time


def _rows(start, n):
    return [{'id': f'/subscriptions/s/r{i}'} for i in range(start, start + n)]


def test_every_page_is_read_with_its_skip_token_and_progress_counts_the_rows():
    azure = _Azure([_page(_rows(0, 1000), 'tok1', total=2100), _page(_rows(1000, 1000), 'tok2', total=2100),
                    _page(_rows(2000, 100), total=2100)])
    seen = []
    rows, time = _run(azure, subscriptions=['sub-a', 'sub-b'], progress=seen.append)
    assert rows == _rows(0, 2100)
    assert [b['options'].get('$skipToken') for b in azure.rest.bodies] == [None, 'tok1', 'tok2']
    assert all(b['options']['$top'] == 1000 and b['options']['resultFormat'] == 'objectArray' and
               b['query'] == QUERY and b['subscriptions'] == ['sub-a', 'sub-b'] for b in azure.rest.bodies)
    assert seen == [1000, 2000, 2100] and time.sleeps == []


def test_more_than_1000_subscriptions_go_in_batches_each_read_to_its_end():
    subs = [f'{i:08x}-0000-0000-0000-000000000000' for i in range(2500)]
    azure = _Azure([_page(_rows(0, 2), 'next'), _page(_rows(2, 1)), _page(_rows(3, 1)), _page(_rows(4, 1))])
    rows, _ = _run(azure, subscriptions=subs)
    assert rows == _rows(0, 5)
    sent = [(len(b['subscriptions']), b['subscriptions'][0], b['options'].get('$skipToken'))
            for b in azure.rest.bodies]
    assert sent == [(1000, subs[0], None), (1000, subs[0], 'next'), (1000, subs[1000], None),
                    (500, subs[2000], None)]
    assert sorted(s for b in azure.rest.bodies if not b['options'].get('$skipToken')
                  for s in b['subscriptions']) == sorted(subs)


def test_management_groups_go_ten_to_a_request():
    groups = [f'mg{i}' for i in range(12)]
    azure = _Azure([_page(_rows(0, 1)), _page(_rows(1, 1))])
    rows, _ = _run(azure, management_groups=groups)
    assert rows == _rows(0, 2)
    assert [b['managementGroups'] for b in azure.rest.bodies] == [groups[:10], groups[10:]]
    assert all('subscriptions' not in b for b in azure.rest.bodies)


def test_an_exhausted_quota_is_waited_out_before_the_next_query_only():
    spent = {'x-ms-user-quota-remaining': '0', 'x-ms-user-quota-resets-after': '00:00:04'}
    azure = _Azure([_page(_rows(0, 1), 'tok', headers=spent), _page(_rows(1, 1), headers=spent)])
    rows, time = _run(azure, subscriptions=['s'])
    assert rows == _rows(0, 2)
    assert time.sleeps == [4], 'waits before the second query, not after the last'


def test_a_quota_used_up_by_one_query_is_waited_out_by_the_next_query_of_the_command():
    spent = {'x-ms-user-quota-remaining': '0', 'x-ms-user-quota-resets-after': '00:00:03'}
    azure = _Azure([_page(_rows(0, 1), headers=spent), _page(_rows(1, 1))])
    time = _Time()
    assert graph.query(azure, QUERY, sleep=time.sleep, clock=time.clock) == _rows(0, 1)
    time.now += 1   # the command did something else for a second
    assert graph.query(azure, QUERY, sleep=time.sleep, clock=time.clock) == _rows(1, 1)
    assert time.sleeps == [2]


def test_a_429_is_waited_for_as_its_retry_after_says_and_the_query_repeated():
    azure = _Azure([_page(_rows(0, 1), 'tok'), _error(429, 'RateLimiting', {'Retry-After': '7'}),
                    _page(_rows(1, 1))])
    rows, time = _run(azure, subscriptions=['s'])
    assert rows == _rows(0, 2) and time.sleeps == [7]
    assert [b['options'].get('$skipToken') for b in azure.rest.bodies] == [None, 'tok', 'tok']


def test_429s_beyond_the_bound_raise_the_last_one(monkeypatch):
    monkeypatch.setenv('AZURE_JIT_BUSY_SECONDS', '10')
    azure = _Azure([_error(429, 'RateLimiting', {'Retry-After': '4'})] * 5)
    with pytest.raises(HttpResponseError) as caught:
        _run(azure, subscriptions=['s'])
    assert caught.value.status_code == 429
    assert len(azure.rest.bodies) == 3, 'waited 4 s twice, then 4 more would pass the 10 s bound'
    assert 'throttling' in errors.explain_http_error(caught.value).message


def test_a_quota_reset_beyond_the_bound_fails_with_advice(monkeypatch):
    monkeypatch.setenv('AZURE_JIT_BUSY_SECONDS', '10')
    spent = {'x-ms-user-quota-remaining': '0', 'x-ms-user-quota-resets-after': '00:01:00'}
    azure = _Azure([_page(_rows(0, 1), 'tok', headers=spent)])
    with pytest.raises(errors.AzureFailed) as caught:
        _run(azure, subscriptions=['s'])
    assert 'no more queries for 60 s' in caught.value.message and len(azure.rest.bodies) == 1


def test_an_answer_cut_without_a_way_to_read_on_is_a_failure_not_a_smaller_fleet():
    azure = _Azure([_page(_rows(0, 1000), truncated=True, total=1500)])
    with pytest.raises(errors.AzureFailed) as caught:
        _run(azure, subscriptions=['s'])
    assert 'cut its answer at 1000 of 1500' in caught.value.message


def test_the_same_page_twice_is_a_failure_not_an_endless_loop():
    azure = _Azure([_page(_rows(0, 1), 'tok'), _page(_rows(1, 1), 'tok')])
    with pytest.raises(errors.AzureFailed):
        _run(azure, subscriptions=['s'])


def test_an_error_answer_is_raised_as_azure_sent_it():
    azure = _Azure([_error(400, 'BadRequest')])
    with pytest.raises(HttpResponseError) as caught:
        _run(azure, subscriptions=['s'])
    assert errors.explain_http_error(caught.value).message == 'BadRequest: BadRequest happened'


@pytest.mark.parametrize('text,seconds', [('00:00:05', 5), ('01:02:03', 3723), ('1.00:00:01', 86401), ('3', 3),
                                          ('junk', None), (None, None)])
def test_quota_reset_durations_are_read(text, seconds):
    assert graph.parse_duration(text) == seconds


# -- RestClient hands out the answer's headers -----------------------------------------------------------------
def test_rest_client_hands_out_the_answers_headers_in_lower_case():
    import requests
    from azure.core.credentials import AccessToken
    from azure.core.pipeline.transport import HttpTransport, RequestsTransportResponse
    from azext_jit.rest import RestClient

    class Transport(HttpTransport):
        def __init__(self):
            self.requests = []

        def send(self, request, **kwargs):
            self.requests.append(request)
            raw = requests.Response()
            raw.status_code, raw.reason = 200, 'OK'
            raw._content = json.dumps({'data': [{'id': 'x'}]}).encode()   # pylint: disable=protected-access
            raw.headers.update({'Content-Type': 'application/json', 'X-Ms-User-Quota-Remaining': '3',
                                'x-ms-user-quota-resets-after': '00:00:02'})
            return RequestsTransportResponse(request, raw)

        def open(self):
            pass

        def close(self):
            pass

        def __exit__(self, *args):
            pass

    class Credential:
        def get_token(self, *scopes, **kwargs):  # pylint: disable=unused-argument
            return AccessToken('token', 4102444800)

    transport = Transport()
    client = RestClient(Credential(), 'sub', base_url='https://arm.example', transport=transport,
                        retry_total=0)
    headers = {}
    answer = client.send('POST', graph.PATH, graph.API_VERSION, body={'query': QUERY}, headers_out=headers)
    assert answer == {'data': [{'id': 'x'}]}
    assert headers['x-ms-user-quota-remaining'] == '3' and headers['x-ms-user-quota-resets-after'] == '00:00:02'
    [sent] = transport.requests
    assert sent.method == 'POST' and sent.url.startswith('https://arm.example/providers/Microsoft.ResourceGraph/')
    assert 'api-version=2021-03-01' in sent.url


def test_a_5xx_is_waited_out_and_repeated_here_not_by_the_pipelines_retries():
    azure = _Azure([_error(503, 'ServiceUnavailable'), _page(_rows(0, 1))])
    rows, time = _run(azure, subscriptions=['s'])
    assert rows == _rows(0, 1) and time.sleeps == [1]
    assert all(o.get('retry_status') == 0 for o in azure.rest.options)


def test_pages_beyond_the_results_counted_are_a_failure_not_an_endless_read():
    azure = _Azure([_page(_rows(0, 1), 'tok1', total=2), _page(_rows(1, 1), 'tok2', total=2),
                    _page(_rows(2, 1), 'tok3', total=2), _page(_rows(3, 1))])
    with pytest.raises(errors.AzureFailed):
        _run(azure, subscriptions=['s'])
    assert len(azure.rest.bodies) == 3
    azure = _Azure([_page([], 'tok1', total=0), _page(_rows(0, 1))])
    with pytest.raises(errors.AzureFailed):
        _run(azure, subscriptions=['s'])


def test_the_pipeline_waits_at_most_thirty_seconds_whatever_retry_after_says():
    from azext_jit import rest

    class Answer:   # pylint: disable=too-few-public-methods
        def __init__(self, value):
            self.http_response = FakeResponse(429, {}, {'Retry-After': value})
    policy = rest._retry_policy()  # pylint: disable=protected-access
    assert policy.get_retry_after(Answer('86400')) == 30
    assert policy.get_retry_after(Answer('7')) == 7
