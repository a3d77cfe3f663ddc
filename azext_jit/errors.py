"""The one place where failures become what the user sees.

- Bad input (an azclierror argument error, raised by the parsers or by a policy check) is printed with its
  recommendation and ends the command with exit code 2, as argparse errors do.
- SDK errors (`HttpResponseError`) become azclierror types with a recommendation: a 403 names the missing
  permission, a 404 says which resource is missing (exit code 3), a throttling answer says to retry later.
"""
import re

from azure.cli.core.azclierror import (ArgumentUsageError, AzureResponseError, BadRequestError,
                                       InvalidArgumentValueError, MutuallyExclusiveArgumentError,
                                       RequiredArgumentMissingError, ResourceNotFoundError, UnauthorizedError)

InputError = (InvalidArgumentValueError, RequiredArgumentMissingError, MutuallyExclusiveArgumentError,
              ArgumentUsageError)

# The role to suggest for each family of actions a JIT command performs.
_ROLE_HINTS = [
    ('jitNetworkAccessPolicies/initiate', 'a JIT requester role (see the README) or Security Admin'),
    ('Microsoft.Security/', 'Security Admin'),
    ('securityRules/', 'Network Contributor on the network security group, or the JIT admin role (see the README)'),
    ('Microsoft.Resources/tags', 'Tag Contributor, or the JIT admin role (see the README)'),
    ('Microsoft.Compute/virtualMachines/write', 'Virtual Machine Contributor'),
    ('/read', 'Reader'),
]


def exit_bad_input(err):
    """Print an argument error the way az prints errors and end with exit code 2."""
    err.print_error()
    err.send_telemetry()
    raise SystemExit(2)


def handle_exception(ex):
    """The command groups' exception_handler: returns nothing, always raises."""
    if isinstance(ex, InputError):
        exit_bad_input(ex)
    from azure.core.exceptions import HttpResponseError
    if isinstance(ex, HttpResponseError):
        raise map_http_error(ex) from ex
    raise ex


def error_code(ex):
    """The ARM error code of an SDK error ("AuthorizationFailed"), or ''."""
    err = getattr(ex, 'error', None)
    code = getattr(err, 'code', None)
    if code:
        return code
    try:
        body = ex.response.json()
        return (body.get('error') or body).get('code', '')
    except Exception:  # pylint: disable=broad-except
        return ''


def error_message(ex):
    err = getattr(ex, 'error', None)
    message = getattr(err, 'message', None)
    if message:
        return message
    try:
        body = ex.response.json()
        return (body.get('error') or body).get('message', '') or str(ex)
    except Exception:  # pylint: disable=broad-except
        return str(ex)


def map_http_error(ex):
    status = getattr(ex, 'status_code', None)
    code = error_code(ex)
    message = error_message(ex)
    if status == 403 or code == 'AuthorizationFailed':
        match = re.search(r"perform action '([^']+)' over scope '([^']+)'", message)
        if match:
            action, scope = match.groups()
            role = next((hint for key, hint in _ROLE_HINTS if key.lower() in action.lower()), 'a role that grants it')
            err = UnauthorizedError("You are not allowed to perform '{}' on '{}'.".format(action, scope))
            err.set_recommendation("Ask an administrator for permission '{}' on that scope: {}.".format(action, role))
            return err
        err = UnauthorizedError(message or 'The request was not authorized.')
        err.set_recommendation('Check your role assignments with `az role assignment list --assignee <you>`.')
        return err
    if status == 404:
        err = ResourceNotFoundError(message)
        err.set_recommendation('Check the name, resource group and subscription (`az account show`).')
        return err
    if status == 429:
        err = AzureResponseError('Azure is throttling requests: ' + message)
        err.set_recommendation('Wait a minute and run the command again; it is safe to repeat.')
        return err
    if status and 400 <= status < 500:
        err = BadRequestError('{}{}'.format('{}: '.format(code) if code else '', message))
        return err
    err = AzureResponseError(message or str(ex))
    err.set_recommendation('Azure failed to complete the operation; run the command again. It is safe to repeat.')
    return err


def not_enabled(target):
    err = ResourceNotFoundError('JIT is not enabled on {}.'.format(target.describe()))
    err.set_recommendation('Enable it first: az vm jit enable -g {} -n {}'.format(target.resource_group, target.name))
    return err
