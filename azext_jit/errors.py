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
- `AzureRefused`, `AzureFailed`, `ConnectionFailed`: Azure (or the IP-echo service) answered with an error.
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
    """A service outside Azure Resource Manager could not be reached."""


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


def explain_http_error(ex):
    """An SDK `HttpResponseError` as one of the failures above, with a recommendation."""
    status = getattr(ex, 'status_code', None)
    code = error_code(ex)
    message = error_message(ex)
    if status == 403 or code == 'AuthorizationFailed':
        match = re.search(r"perform action '([^']+)' over scope '([^']+)'", message)
        if match:
            action, scope = match.groups()
            role = next((hint for key, hint in _ROLE_HINTS if key.lower() in action.lower()), 'a role that grants it')
            return NotAllowed(f"You are not allowed to perform '{action}' on '{scope}'.",
                              f"Ask an administrator for permission '{action}' on that scope: {role}.")
        return NotAllowed(message or 'The request was not authorized.',
                          'Check your role assignments with `az role assignment list --assignee <you>`.')
    if status == 404:
        return NotFound(message, 'Check the name, resource group and subscription (`az account show`).')
    if status == 429:
        return AzureFailed(f"Azure is throttling requests: {message}",
                           'Wait a minute and run the command again; it is safe to repeat.')
    if status and 400 <= status < 500:
        return AzureRefused(f"{f'{code}: ' if code else ''}{message}")
    return AzureFailed(message or str(ex),
                       'Azure failed to complete the operation; run the command again. It is safe to repeat.')


def not_enabled(target):
    return NotFound(f'JIT is not enabled on {target.describe()}.',
                    f'Enable it first: az vm jit enable -g {target.resource_group} -n {target.name}')
