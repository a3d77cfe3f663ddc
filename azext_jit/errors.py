# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The extension's failures, in its own words, and what Azure's error answers mean.

Nothing here imports az: the unattended cleanup runner runs the same code outside `az`. Each failure class says
what kind of failure it is; `cli_errors.py` turns them into az's error types (and exit codes) in one place.

- `BadInput`, `MissingInput`, `UsageError`: the user's input is refused (exit code 2, before anything is written).
- `NotPossible`: the request is understood but cannot be carried out on this VM or NSG.
- `NotFound`: a resource does not exist (exit code 3). `NotAllowed`: Azure refused for lack of permission.
- `AzureRefused`, `AzureFailed`: Azure answered with an error, or its long-running operation ended Failed.
- `ConnectionFailed`: Azure (or the IP-echo service) could not be reached, or the connection was lost before it
  answered.

`explain_http_error` turns every error the Azure SDK raises (an HTTP error answer, an operation that ended Failed,
a 429 that outlasted the retries, a lost connection) into one of these, with what to do; `write_failed` adds what
a failed NSG write left behind. Both are the one place where such failures get their words.
"""
import re


class JitError(Exception):
    """A failure with a one-line message and, where there is one, what to do about it."""

    def __init__(self, message, recommendation=None):
        super().__init__(message)
        self.message = message
        self.recommendation = recommendation


class BadInput(JitError):
    """A value the user gave (or a stored value read back as input) is refused."""


class MissingInput(JitError):
    """A required value is missing."""


class UsageError(JitError):
    """The command cannot go on as asked (for example a confirmation that was refused)."""


class NotPossible(JitError):
    """Understood, but cannot be done on this VM or NSG."""


class NotFound(JitError):
    """A resource (or request) that does not exist."""


class NotAllowed(JitError):
    """Azure refused for lack of permission."""


class AzureRefused(JitError):
    """Azure refused the request (4xx other than 403/404)."""


class AzureFailed(JitError):
    """Azure failed to do what was asked, or kept failing."""


class ConnectionFailed(JitError):
    """A service (Azure Resource Manager, the IP-echo service) could not be reached, or did not answer."""


# The role to suggest for each family of actions a JIT command performs.
_ROLE_HINTS = [
    ('jitNetworkAccessPolicies/initiate', 'a JIT requester role (see the README) or Security Admin'),
    ('Microsoft.Security/', 'Security Admin'),
    ('securityRules/', 'Network Contributor on the network security group, or the JIT admin role (see the README)'),
    ('Microsoft.Resources/tags', 'Tag Contributor, or the JIT admin role (see the README)'),
    ('Microsoft.Compute/virtualMachines/write', 'Virtual Machine Contributor'),
    ('/read', 'Reader'),
]


def error_code(ex):
    """The ARM error code of an SDK error ("AuthorizationFailed"), or ''."""
    code = getattr(getattr(ex, 'error', None), 'code', None)
    if code:
        return code
    try:
        body = ex.response.json()
        return (body.get('error') or body).get('code', '')
    except Exception:  # pylint: disable=broad-except
        return ''


def error_message(ex):
    message = getattr(getattr(ex, 'error', None), 'message', None)
    if message:
        return message
    try:
        body = ex.response.json()
        return (body.get('error') or body).get('message', '') or str(ex)
    except Exception:  # pylint: disable=broad-except
        return str(ex)


REPEAT = 'Run the command again; it is safe to repeat.'


def _one_line(text, limit=None):
    """`text` on one line, cut to `limit` characters when given."""
    text = ' '.join(str(text or '').split())
    return text if limit is None or len(text) <= limit else text[:limit - 3] + '...'


def explain_http_error(ex):
    """Any Azure SDK error (`HttpResponseError`, a lost connection, an operation that ended Failed) as one of the
    failures above, with a recommendation."""
    from azure.core.exceptions import HttpResponseError
    if not isinstance(ex, HttpResponseError):
        return _explain_no_answer(ex)
    status = getattr(ex, 'status_code', None)
    code = error_code(ex)
    message = _one_line(error_message(ex))
    if status is not None and status < 400:
        # The request was accepted (2xx) and its long-running operation, polled to the end, ended Failed.
        return AzureFailed(f"Azure accepted the change but could not complete it: its operation ended Failed "
                           f"({f'{code}: ' if code else ''}{message}).",
                           f'{REPEAT} If it fails again, look for the failed operation in the Activity Log.')
    if status == 403 or code == 'AuthorizationFailed':
        return _not_allowed(message)
    if status == 429:
        return _throttled(code, message)
    if status and 400 <= status < 500:
        return _refused(status, code, message)
    return AzureFailed(f"Azure failed to complete the request ({' '.join(str(p) for p in (status, code) if p)}"
                       f"{': ' if status or code else ''}{message or _one_line(ex)}).",
                       f'{REPEAT} If it keeps failing, Azure may have an outage: see https://status.azure.com.')


def _refused(status, code, message):
    """A 4xx answer other than 403 and 429: Azure looked at the request and said no."""
    if status == 404:
        return NotFound(message, 'Check the name, resource group and subscription (`az account show`).')
    return AzureRefused(f"{f'{code}: ' if code else ''}{message}")


def _explain_no_answer(ex):
    """An SDK error without an HTTP answer: Azure not reached, the answer lost, or another failure of the SDK."""
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError
    if isinstance(ex, ServiceRequestError):
        return ConnectionFailed('Could not reach Azure: the request was not sent.',
                                f'Check the network connection (and any proxy). {REPEAT}')
    if isinstance(ex, ServiceResponseError):
        return ConnectionFailed('The connection to Azure was lost before it answered, so Azure may or may not have '
                                'done what was asked.', f'{REPEAT} `az vm jit show` tells what is open now.')
    return AzureFailed(_one_line(getattr(ex, 'message', None) or ex, 300), REPEAT)


def _not_allowed(message):
    match = re.search(r"perform action '([^']+)' over scope '([^']+)'", message)
    if match:
        action, scope = match.groups()
        role = next((hint for key, hint in _ROLE_HINTS if key.lower() in action.lower()), 'a role that grants it')
        return NotAllowed(f"You are not allowed to perform '{action}' on '{scope}'.",
                          f"Ask an administrator for permission '{action}' on that scope: {role}.")
    return NotAllowed(message or 'The request was not authorized.',
                      'Check your role assignments with `az role assignment list --assignee <you>`.')


def _throttled(code, message):
    if code in ('RetryableErrorDueToAnotherOperation', 'AnotherOperationInProgress'):
        return AzureFailed(f'Azure kept refusing the change because another operation was in progress on the same '
                           f'resource ({code}), for longer than JIT waits.',
                           'Wait a minute and run the command again; it is safe to repeat.')
    return AzureFailed(f"Azure is throttling requests ({f'{code}: ' if code else ''}{message})",
                       'Wait a minute and run the command again; it is safe to repeat.')


def write_failed(ex, nsg_id, undone, left):
    """The failure of a write of NSG rules, saying what it left: `undone` the rules it wrote (or may have written)
    and removed again, `left` those it could not remove. `ex` is the original failure (a JitError or an SDK error)."""
    err = ex if isinstance(ex, JitError) else explain_http_error(ex)
    if not undone and not left:
        return err
    parts = nsg_id.rstrip('/').split('/')
    nsg, group = parts[-1], parts[4] if len(parts) > 4 else '<resource group>'
    if left:
        state = (f"The rule{'s' if len(left) > 1 else ''} {', '.join(left)} written before the failure could not be "
                 f"removed from network security group '{nsg}' and may still let traffic in.")
        commands = '; '.join(f'az network nsg rule delete -g {group} --nsg-name {nsg} -n {name}' for name in left)
        recommendation = f'Remove {"them" if len(left) > 1 else "it"}: {commands}. Then run the command again.'
    else:
        state = (f"JIT removed the rule{'s' if len(undone) > 1 else ''} it had written or may have written "
                 f"({', '.join(undone)}) again: nothing was left open.")
        recommendation = err.recommendation or REPEAT
    return type(err)(f'{_one_line(err.message)} {state}', recommendation)


def not_enabled(target):
    return NotFound(f'JIT is not enabled on {target.describe()}.',
                    f'Enable it first: az vm jit enable -g {target.resource_group} -n {target.name}')
