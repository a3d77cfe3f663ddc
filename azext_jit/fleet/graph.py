# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Azure Resource Graph: one Kusto query over many subscriptions (or management groups), every page of its answer.

    POST {arm}/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01
    {"subscriptions": [...] | "managementGroups": [...], "query": "...",
     "options": {"$top": 1000, "$skipToken": "...", "resultFormat": "objectArray"}}

what `az graph query` sends. A request names at most 1000 subscriptions (or 10 management groups), so longer lists
go in batches, each paged with `$skipToken` (which needs the `id` column in the results; the queries in
`queries.py` project it). Neither given: Resource Graph answers for every subscription the caller can read.

Resource Graph throttles per user: each answer says how many queries are left (`x-ms-user-quota-remaining`) and
when the quota fills again (`x-ms-user-quota-resets-after`, hh:mm:ss); at 0 the next call (a page, or the
command's next query) waits until then. Over the quota it answers 429 with `Retry-After`: the query waits as asked
and tries again (so does a 5xx; the pipeline's own status retries are off for these calls). Every wait counts
against one bound per call of `query` (`AZURE_JIT_BUSY_SECONDS`, default 150 s, as for a busy NSG); beyond it the
429 is raised.

An answer that says it was cut (`resultTruncated` "true") without a `$skipToken` to read on, or that keeps giving
tokens past the rows it counted (`totalRecords`), raises `errors.AzureFailed`: a partial fleet must never look like
the whole of it. Any error answer is the SDK's HttpResponseError (`errors.explain_http_error` words it). Resource
Graph's data lags ARM by seconds to minutes: whoever writes after a query reads the resource fresh from ARM first.
"""
import time
import weakref

from azext_jit.errors import AzureFailed

API_VERSION = '2021-03-01'
PATH = '/providers/Microsoft.ResourceGraph/resources'
PAGE_SIZE = 1000
MAX_SUBSCRIPTIONS = 1000        # per request (az graph query cuts there too)
MAX_MANAGEMENT_GROUPS = 10      # per request
QUOTA_REMAINING = 'x-ms-user-quota-remaining'
QUOTA_RESETS_AFTER = 'x-ms-user-quota-resets-after'
MIN_WAIT = 1                    # second: the least wait after a 429 or an exhausted quota
RETRIED = (429, 500, 502, 503, 504)   # waited out (Retry-After, or MIN_WAIT) and sent again, within the bound


def _batches(items, size):
    items = list(items)
    return [items[i:i + size] for i in range(0, len(items), size)]


def _scopes(subscriptions, management_groups):
    """The request bodies' scope parts: one per batch; one empty scope (the caller's whole tenant) when none."""
    if subscriptions:
        return [{'subscriptions': batch} for batch in _batches(subscriptions, MAX_SUBSCRIPTIONS)]
    if management_groups:
        return [{'managementGroups': batch} for batch in _batches(management_groups, MAX_MANAGEMENT_GROUPS)]
    return [{}]


def parse_duration(text):
    """Seconds of an `hh:mm:ss` (or `d.hh:mm:ss`, or plain seconds) header value; None when unreadable."""
    try:
        text = str(text).strip()
        days = 0
        if '.' in text.split(':', maxsplit=1)[0]:
            day_text, text = text.split('.', 1)
            days = int(day_text)
        seconds = 0.0
        for part in text.split(':'):
            seconds = seconds * 60 + float(part)
        seconds += days * 86400
        return seconds if seconds >= 0 else None
    except (TypeError, ValueError):
        return None


def _retry_after(ex):
    """Seconds a 429 asked to wait: its Retry-After, else Resource Graph's quota reset; 1 when neither says."""
    headers = getattr(getattr(ex, 'response', None), 'headers', None) or {}
    lowered = {str(k).lower(): v for k, v in headers.items()}
    for name in ('retry-after', QUOTA_RESETS_AFTER):
        if name in lowered:
            seconds = parse_duration(lowered[name])
            if seconds is not None:
                return max(seconds, 0)
    return MIN_WAIT


def _count(value):
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def _truncated(answer):
    return str(answer.get('resultTruncated', 'false')).lower() == 'true'


# When the next query may be sent, per REST client (one per command and subscription), on the `clock` that set it: the
# quota spans queries, so a command's second query waits for a quota its first one used up.
_NEXT_QUERY = weakref.WeakKeyDictionary()


class _Pacer:
    """Waits between calls as Resource Graph asks, all waits of one `query` within one bound."""

    def __init__(self, rest, sleep, clock, bound):
        self._rest, self._sleep, self._clock = rest, sleep, clock
        self._deadline = clock() + bound

    def before_call(self):
        due = _NEXT_QUERY.get(self._rest)
        wait = due[1] - self._clock() if due and due[0] == self._clock else 0
        if wait > 0:
            if wait > self._left():
                raise AzureFailed(f'Azure Resource Graph allows no more queries for {wait:.0f} s, longer than '
                                  'JIT waits.', 'Wait a minute and run the command again; it is safe to repeat.')
            self._sleep(wait)
        _NEXT_QUERY.pop(self._rest, None)

    def after_answer(self, headers):
        remaining = headers.get(QUOTA_REMAINING)
        try:
            exhausted = remaining is not None and int(remaining) <= 0
        except (TypeError, ValueError):
            exhausted = False
        if exhausted:
            wait = max(parse_duration(headers.get(QUOTA_RESETS_AFTER)) or 0, MIN_WAIT)
            _NEXT_QUERY[self._rest] = (self._clock, self._clock() + wait)

    def throttled(self, ex):
        """Wait as the 429 says, or raise it when that would pass the bound."""
        seconds = max(_retry_after(ex), MIN_WAIT)
        if seconds > self._left():
            raise ex
        self._sleep(seconds)

    def _left(self):
        return self._deadline - self._clock()


def _busy_seconds():
    from azext_jit.nsg.client import busy_seconds   # pylint: disable=import-outside-toplevel
    return busy_seconds()


def query(azure, kusto, subscriptions=None, management_groups=None, progress=None, sleep=time.sleep,
          clock=time.monotonic):
    """Every row (a dict per resource) the query answers over the subscriptions (or management groups), all pages
    of every batch. `progress(rows_so_far)` is called after each page when given. `sleep` and `clock` are for tests."""
    from azure.core.exceptions import HttpResponseError
    pacer = _Pacer(azure.rest, sleep, clock, _busy_seconds())
    rows = []
    for scope in _scopes(subscriptions, management_groups):
        token = None
        seen_tokens = set()
        start, total = len(rows), 0
        while True:
            options = {'$top': PAGE_SIZE, 'resultFormat': 'objectArray'}
            if token:
                options['$skipToken'] = token
            body = dict(scope, query=kusto, options=options)
            headers = {}
            pacer.before_call()
            try:   # 429 and 5xx are waited out here, within the bound, not by the pipeline's retries
                answer = azure.rest.send('POST', PATH, API_VERSION, body=body, headers_out=headers,
                                         retry_status=0) or {}
            except HttpResponseError as ex:
                if getattr(ex, 'status_code', None) not in RETRIED:
                    raise
                pacer.throttled(ex)
                continue
            pacer.after_answer(headers)
            page = answer.get('data') or []
            rows += page
            total = max(total, _count(answer.get('totalRecords')))
            if progress:
                progress(len(rows))
            token = answer.get('$skipToken')
            if token and (not page or len(rows) - start > total):
                raise AzureFailed('Azure Resource Graph kept answering pages beyond the results it counted; its '
                                  'answer cannot be read to the end.', 'Run the command again; it is safe to repeat.')
            if not token:
                if _truncated(answer):
                    raise AzureFailed(
                        f"Azure Resource Graph cut its answer at {len(rows)} of {answer.get('totalRecords')} "
                        "results and gave no way to read the rest.",
                        'Narrow the scope (fewer subscriptions, or -g) and run the command again.')
                break
            if token in seen_tokens:
                raise AzureFailed('Azure Resource Graph answered the same page twice; its answer cannot be read '
                                  'to the end.', 'Run the command again; it is safe to repeat.')
            seen_tokens.add(token)
    return rows
