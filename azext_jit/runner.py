# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The unattended cleanup runner: expired JIT allow rules removed on a schedule, with no `az login`.

In NSG mode nobody but the extension removes a rule when its time is up. `az vm jit cleanup` does it for
a person; this runner does it for cron, a container job or an Azure Functions timer. It authenticates with
azure-identity's DefaultAzureCredential (a managed identity in Azure; environment variables or a
developer login elsewhere) and runs the same cleanup code as the command.

    python -m azext_jit.runner --subscription <id> [--resource-group <rg>] [--dry-run]

Install: `pip install "jit-1.0.0b1-py3-none-any.whl[runner]"` (no Azure CLI needed). The identity needs, on the
subscription or resource group: Microsoft.Network/networkSecurityGroups/read and .../securityRules/delete (the
built-in "Network Contributor" role has both; the README has a narrower custom role).
Exit code 0 when every expired rule was removed (or none was due); 1 when the cleanup did not complete (a
removal failed, or Azure refused or did not answer a request); 2 when it cannot start: no subscription given,
or no credential that can sign in. Every failure is one line on stderr.
"""
import argparse
import json
import os
import re
import sys

PUBLIC_ARM = 'https://management.azure.com'

EXIT_FAILED = 1
EXIT_NOT_CONFIGURED = 2

PREFIX = 'jit cleanup runner: '
HOW_TO_SIGN_IN = ('set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (a service principal), or run it '
                  'where a managed identity is assigned (an Azure VM, container or Functions app; '
                  'AZURE_CLIENT_ID picks a user-assigned one), or, as a developer, sign in with `az login` first')
PERMISSIONS = ('the identity needs Microsoft.Network/networkSecurityGroups/read and '
               'Microsoft.Network/networkSecurityGroups/securityRules/delete on the subscription or resource group '
               '("Network Contributor" has both)')


def _arm_endpoint(arm_endpoint=None):
    return (arm_endpoint or os.environ.get('AZURE_JIT_ARM_ENDPOINT') or PUBLIC_ARM).rstrip('/')


def _default_credential():
    from azure.identity import DefaultAzureCredential
    return DefaultAzureCredential()


class RunnerError(Exception):
    """A failure the runner reports as one line on stderr, with its exit code."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


def cleanup_once(subscription_id, resource_group=None, dry_run=False, credential=None, arm_endpoint=None):
    """Remove expired JIT allow rules once; returns the summary dict `az vm jit cleanup` returns."""
    from azext_jit.arm import Azure
    from azext_jit.cleanup import cleanup
    if credential is None:
        credential = _default_credential()
    endpoint = _arm_endpoint(arm_endpoint)
    azure = Azure.from_credential(credential, subscription_id, base_url=None if endpoint == PUBLIC_ARM else endpoint)
    return cleanup(azure, resource_group, dry_run)


def _one_line(text):
    return ' '.join(str(text).split())


# How DefaultAzureCredential words "this way of signing in is not set up here" (as opposed to "it is set up and
# failed"); anything else is worth showing.
_NOT_SET_UP = re.compile(r"unavailable|not installed|not found on path|could not be found|requires the|"
                         r"please run '(az login|connect-azaccount|azd auth login)'", re.IGNORECASE)


def _sign_in_failure(ex):
    """Why signing in failed, in one line, or None when no way of signing in is set up at all.

    DefaultAzureCredential tries its credentials in turn and reports every attempt in one multi-line
    ClientAuthenticationError, one tab-indented line per attempt; it stops at the first one that is set up
    but fails (a wrong secret), and moves on past some that half fail (a managed identity endpoint that refuses).
    """
    from azure.identity import CredentialUnavailableError
    if isinstance(ex, CredentialUnavailableError):
        return None
    text = str(ex.message or ex).strip()
    attempts = [line.strip() for line in text.splitlines() if line.startswith('\t')]
    if not attempts:
        return _one_line(text.splitlines()[0] if text else type(ex).__name__)
    failed = [attempt for attempt in attempts if not _NOT_SET_UP.search(attempt)]
    return _one_line(failed[-1]).rstrip('.') if failed else None


def _sign_in(credential, endpoint):
    """Get a token for ARM before touching anything, so that a sign-in problem is told apart from an ARM refusal."""
    from azure.core.exceptions import ClientAuthenticationError
    try:
        credential.get_token(f"{endpoint}/.default")
    except ClientAuthenticationError as ex:
        reason = _sign_in_failure(ex)
        if reason is None:
            raise RunnerError(f'no Azure credential is available: {HOW_TO_SIGN_IN}.', EXIT_NOT_CONFIGURED) from ex
        raise RunnerError(f'signing in to Azure failed: {reason}; check the credential: {HOW_TO_SIGN_IN}.',
                          EXIT_NOT_CONFIGURED) from ex


def _arm_error(ex):
    """'403 AuthorizationFailed: <message>' from an SDK HttpResponseError, whatever shape its body has."""
    from azext_jit.errors import error_code, error_message
    status = ex.status_code or getattr(ex.response, 'status_code', None)
    text = ' '.join(str(part) for part in (status, error_code(ex)) if part)
    detail = _one_line(error_message(ex)).rstrip('.')
    text = f'{text}: {detail}' if text else detail
    if status == 403:
        text += '; ' + PERMISSIONS
    return text


def run(subscription_id, resource_group=None, dry_run=False, arm_endpoint=None, credential=None):
    """Sign in, then clean up once; the summary, or a RunnerError that says in one line what went wrong."""
    from azure.core.exceptions import AzureError, HttpResponseError, ServiceRequestError
    from azext_jit.errors import JitError
    endpoint = _arm_endpoint(arm_endpoint)
    if credential is None:
        try:
            credential = _default_credential()
        except ImportError as ex:
            raise RunnerError('azure-identity is not installed: install the extension with its runner extra, '
                              '`pip install "jit-<version>-py3-none-any.whl[runner]"`.', EXIT_NOT_CONFIGURED) from ex
    _sign_in(credential, endpoint)
    try:
        return cleanup_once(subscription_id, resource_group, dry_run, credential=credential, arm_endpoint=endpoint)
    except HttpResponseError as ex:
        raise RunnerError(f"Azure refused a request: {_arm_error(ex)}.", EXIT_FAILED) from ex
    except ServiceRequestError as ex:
        raise RunnerError(f'could not reach {endpoint}: {_one_line(ex.message or ex)}', EXIT_FAILED) from ex
    except AzureError as ex:
        raise RunnerError(f"the cleanup failed: {_one_line(ex.message or ex)}", EXIT_FAILED) from ex
    except JitError as ex:
        raise RunnerError(f"the cleanup failed: {_one_line(ex.message)}", EXIT_FAILED) from ex


def _quiet_sdk_logging():
    """Our own line says what failed; the SDKs' warnings (e.g. every credential DefaultAzureCredential tried) would
    repeat it over many lines. The extension's own warnings (a rule that could not be removed) still show."""
    import logging
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s: %(message)s')
    for name in ('azure', 'msal', 'urllib3'):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m azext_jit.runner',
                                     description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--subscription', default=os.environ.get('AZURE_SUBSCRIPTION_ID'), required=False,
                        help='subscription to clean (default: $AZURE_SUBSCRIPTION_ID)')
    parser.add_argument('--resource-group', help='only this resource group (default: the whole subscription)')
    parser.add_argument('--dry-run', action='store_true', help='list what would be removed, remove nothing')
    parser.add_argument('--arm-endpoint', help='Azure Resource Manager endpoint (default: the public cloud)')
    args = parser.parse_args(argv)
    if not args.subscription:
        parser.error('give --subscription or set AZURE_SUBSCRIPTION_ID')
    _quiet_sdk_logging()
    try:
        summary = run(args.subscription, args.resource_group, args.dry_run, arm_endpoint=args.arm_endpoint)
    except RunnerError as ex:
        sys.stderr.write(f"{PREFIX}{ex!s}\n")
        return ex.exit_code
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write('\n')
    return EXIT_FAILED if summary.get('failed') else 0


if __name__ == '__main__':
    sys.exit(main())
