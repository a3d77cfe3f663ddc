# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Plain ARM REST calls: every call the extension makes (`arm.py` names them as the SDKs' operation groups do).

`RestClient` is built like the generated SDK clients (`Azure.rest` gets it through the same factory, so it
signs in the same way, sends az's user agent and headers, retries 429 and 5xx honouring Retry-After, logs
under `--debug`, and feeds Azure's clock from each answer's `Date`). Errors are the SDK's `HttpResponseError`,
so `errors.explain_http_error` words them like every other Azure error.
"""
import json
import uuid
from urllib.parse import urlsplit, parse_qsl

MAX_PAGES = 50   # a list longer than this many pages is cut: every list here is of one scope's few items


class RestClient:
    """JSON over ARM for one subscription: `get`, `put`, `patch`, `post`, `list` (follows `nextLink`)."""

    def __init__(self, credential, subscription_id, base_url='https://management.azure.com',
                 credential_scopes=None, **kwargs):
        from azure.core.configuration import Configuration
        from azure.core.pipeline import policies
        from azure.mgmt.core import ARMPipelineClient
        from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy, ARMHttpLoggingPolicy
        self.subscription_id = subscription_id
        self.base_url = base_url.rstrip('/')
        scopes = credential_scopes or [self.base_url + '/.default']
        config = Configuration(**kwargs)
        config.headers_policy = kwargs.get('headers_policy') or policies.HeadersPolicy(**kwargs)
        config.user_agent_policy = kwargs.get('user_agent_policy') or policies.UserAgentPolicy(
            'azext-jit', **kwargs)
        config.proxy_policy = policies.ProxyPolicy(**kwargs)
        config.logging_policy = policies.NetworkTraceLoggingPolicy(**kwargs)
        config.http_logging_policy = ARMHttpLoggingPolicy(**kwargs)
        config.retry_policy = _retry_policy(**kwargs)
        config.custom_hook_policy = policies.CustomHookPolicy(**kwargs)
        config.redirect_policy = policies.RedirectPolicy(**kwargs)
        config.authentication_policy = kwargs.get('authentication_policy') or ARMChallengeAuthenticationPolicy(
            credential, *scopes)
        extra = {'transport': kwargs['transport']} if kwargs.get('transport') else {}
        self._pipeline = ARMPipelineClient(base_url=self.base_url, config=config, **extra)
        self.calls = 0   # calls made (a long-running one counts once): lets a caller see whether any came after a read

    def send(self, method, path, api_version, body=None, query=None, headers_out=None, **options):
        """One call; returns the parsed JSON answer (None when empty). `path` is an ARM path or an absolute URL
        (a nextLink). Raises HttpResponseError for an error answer (its `response.headers` has the headers).
        `headers_out`, a dict, receives the answer's headers with lower-case names (Resource Graph's quota);
        `options` go to the pipeline (`retry_status=0`: the caller handles 429 and 5xx itself)."""
        from azure.core.rest import HttpRequest
        params = dict(query or {})
        if api_version and 'api-version=' not in path:
            params['api-version'] = api_version
        url = path if path.startswith('http') else self.base_url + path
        request = HttpRequest(method, url, params=params, json=body,
                              headers={'Accept': 'application/json'})
        self.calls += 1
        response = self._pipeline.send_request(request, **options)
        if headers_out is not None:
            headers_out.update((name.lower(), value) for name, value in response.headers.items())
        if response.status_code >= 400:
            _raise_error(response)
        text = response.text()
        return json.loads(text) if text.strip() else None

    def begin(self, method, path, api_version, body=None, expected=(200, 201, 202, 204), polling_interval=1,
              final_read=True):
        """A long-running write as the SDK's `begin_*` operations make it: the call now (an answer outside `expected`
        raises as `send` does), then azure-mgmt-core's ARM polling of its operation (Azure-AsyncOperation / Location,
        honouring Retry-After, `polling_interval` s otherwise), on this same pipeline. Returns the poller: its
        `result()` waits for the end and gives the final JSON (None when there is none); an operation that ends
        Failed raises HttpResponseError, as the SDK's do.

        `final_read=False`: no GET of the resource once its operation has Succeeded (the SDK's pollers make one after
        a PUT); `result()` is the write's own answer, the resource as Azure accepted it. For a caller that knows
        what it wrote and needs only to know that it is done."""
        from azure.core.polling import LROPoller
        from azure.core.rest import HttpRequest
        from azure.mgmt.core.polling.arm_polling import ARMPolling
        url = path if path.startswith('http') else self.base_url + path
        request = HttpRequest(method, url, params={'api-version': api_version}, json=body,
                              headers={'Accept': 'application/json'})
        self.calls += 1
        initial = self._pipeline.send_request(request, _return_pipeline_response=True)
        response = initial.http_response
        if response.status_code not in expected:
            _raise_error(response)

        def as_json(pipeline_response):
            text = pipeline_response.http_response.text()
            return json.loads(text) if text and text.strip() else None
        if final_read:
            return LROPoller(self._pipeline, initial, as_json, ARMPolling(polling_interval))

        class EndsWithStatus(ARMPolling):
            def initialize(self, client, initial_response, deserialization_callback):
                super().initialize(client, initial_response, deserialization_callback)
                self._operation.get_final_get_url = lambda _response: None   # no GET of the resource at the end
        accepted = as_json(initial)
        return LROPoller(self._pipeline, initial, lambda _: accepted, EndsWithStatus(polling_interval))

    def get(self, path, api_version, **query):
        return self.send('GET', path, api_version, query=query)

    def put(self, path, api_version, body):
        return self.send('PUT', path, api_version, body=body)

    def patch(self, path, api_version, body):
        return self.send('PATCH', path, api_version, body=body)

    def post(self, path, api_version, body=None):
        return self.send('POST', path, api_version, body=body)

    def list(self, path, api_version, max_pages=MAX_PAGES, on_cut=None, **query):
        """Every item of a paged list (`value` and `nextLink`), up to `max_pages` pages; `on_cut(pages)` is called
        when more were left unread."""
        answer = self.get(path, api_version, **query)
        items = list((answer or {}).get('value') or [])
        pages = 1
        while answer and answer.get('nextLink'):
            if pages >= max_pages:
                if on_cut:
                    on_cut(pages)
                break
            link = answer['nextLink']
            parts = urlsplit(link)
            # a nextLink carries its own api-version and skip token: send it as given
            answer = self.send('GET', f'{self.base_url}{parts.path}', None, query=dict(parse_qsl(parts.query)))
            items += (answer or {}).get('value') or []
            pages += 1
        return items


def _raise_error(response):
    """An error answer as the SDK clients raise it: 401, 404 and 409 as their own exception types (a missing resource
    is ResourceNotFoundError), anything else HttpResponseError."""
    from azure.core.exceptions import (ClientAuthenticationError, HttpResponseError, ResourceExistsError,
                                       ResourceNotFoundError, map_error)
    map_error(status_code=response.status_code, response=response,
              error_map={401: ClientAuthenticationError, 404: ResourceNotFoundError, 409: ResourceExistsError})
    raise HttpResponseError(response=response)


MAX_RETRY_AFTER = 30   # seconds: the longest wait a Retry-After header gets from the pipeline's own retries


def _retry_policy(**kwargs):
    """azure-core's RetryPolicy, with every wait a `Retry-After` asks for capped at MAX_RETRY_AFTER: a header of a day
    must not keep a scheduled cleanup asleep for days (callers that wait longer, as `nsg.client.while_busy` does,
    bound their own waits)."""
    from azure.core.pipeline import policies

    class CappedRetryPolicy(policies.RetryPolicy):
        def get_retry_after(self, response):
            seconds = super().get_retry_after(response)
            return None if seconds is None else min(seconds, MAX_RETRY_AFTER)
    return CappedRetryPolicy(**kwargs)


def new_name():
    """A fresh GUID for a resource whose name the client chooses (PIM's schedule requests)."""
    return str(uuid.uuid4())
