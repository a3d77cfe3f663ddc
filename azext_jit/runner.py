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
    python -m azext_jit.runner --subscriptions <id> <id>... | --all-subscriptions [--resource-group <rg>] [--dry-run]

`--subscription` cleans one subscription, NSG by NSG. `--subscriptions` and `--all-subscriptions` clean many: one
Azure Resource Graph query (paged) finds the NSGs holding JIT allow rules in all of them, and each NSG with a rule
whose time is up is read fresh from ARM and cleaned, several at once (`azext_jit/fleet/cleanup.py`).
`--all-subscriptions` means every Enabled subscription of its tenant the identity holds a role in
(`GET /subscriptions`).

Install: `pip install "jit-1.0.0b1-py3-none-any.whl[runner]"` (no Azure CLI needed). The identity needs, on each
subscription or resource group: Microsoft.Network/networkSecurityGroups/read (with which Resource Graph also shows
it the NSGs) and .../securityRules/delete (the built-in "Network Contributor" role has both; the README has a
narrower custom role).
Exit code 0 when every expired rule was removed (or none was due); 1 when the cleanup did not complete (a
removal failed, or Azure refused or did not answer a request); 2 when it cannot start: no subscription given,
none found with `--all-subscriptions`, or no credential that can sign in. Every failure is one line on stderr.
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
               'Microsoft.Network/networkSecurityGroups/securityRules/delete on each subscription or resource group '
               '("Network Contributor" has both; with --subscriptions or --all-subscriptions, Azure Resource Graph '
               'shows it only the NSGs it may read)')


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


def fleet_cleanup_once(subscriptions=None, all_subscriptions=False, resource_group=None, dry_run=False,
                       credential=None, arm_endpoint=None, progress=None):
    """Remove expired JIT allow rules once across many subscriptions (named, or every one the identity can read),
    through Azure Resource Graph; returns the summary `az vm jit cleanup --subscriptions` returns."""
    from azext_jit.arm import Azure
    from azext_jit.fleet.cleanup import fleet_cleanup
    from azext_jit.fleet.scope import Scope, subscriptions_of
    if credential is None:
        credential = _default_credential()
    endpoint = _arm_endpoint(arm_endpoint)
    named = Scope(subscriptions=subscriptions).subscriptions   # ids only: refused before anything is sent
    azure = Azure.from_credential(credential, (named or [''])[0],
                                  base_url=None if endpoint == PUBLIC_ARM else endpoint)
    ids = named if named else subscriptions_of(None, azure, all_subscriptions)
    if not ids:
        raise RunnerError(f'the identity can read no Enabled subscription: {PERMISSIONS}.', EXIT_NOT_CONFIGURED)
    return fleet_cleanup(azure, Scope(subscriptions=ids, resource_group=resource_group), dry_run,
                         progress=progress)


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


def run(subscription_id, resource_group=None, dry_run=False, arm_endpoint=None, credential=None,
        subscriptions=None, all_subscriptions=False):
    """Sign in, then clean up once (one subscription, or with `subscriptions`/`all_subscriptions` many); the summary,
    or a RunnerError that says in one line what went wrong."""
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
        if subscriptions or all_subscriptions:
            return fleet_cleanup_once(subscriptions, all_subscriptions, resource_group, dry_run,
                                      credential=credential, arm_endpoint=endpoint)
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
    which = parser.add_mutually_exclusive_group()
    which.add_argument('--subscription', help='subscription to clean (default: $AZURE_SUBSCRIPTION_ID)')
    which.add_argument('--subscriptions', nargs='+', metavar='ID',
                       help='subscriptions to clean, through Azure Resource Graph (ids, space-separated)')
    which.add_argument('--all-subscriptions', action='store_true',
                       help='clean every Enabled subscription the identity holds a role in, through Azure Resource '
                            'Graph')
    parser.add_argument('--resource-group', help='only this resource group (default: the whole subscription; with '
                                                 '--subscriptions or --all-subscriptions, the group of that name in '
                                                 'each)')
    parser.add_argument('--dry-run', action='store_true', help='list what would be removed, remove nothing')
    parser.add_argument('--arm-endpoint', help='Azure Resource Manager endpoint (default: the public cloud)')
    args = parser.parse_args(argv)
    fleet = bool(args.subscriptions or args.all_subscriptions)
    subscription = args.subscription or (None if fleet else os.environ.get('AZURE_SUBSCRIPTION_ID'))
    if not fleet and not subscription:
        parser.error('give --subscription, --subscriptions or --all-subscriptions, or set AZURE_SUBSCRIPTION_ID')
    if fleet:   # refused before signing in
        from azext_jit.errors import BadInput
        from azext_jit.fleet.scope import Scope
        try:
            Scope(subscriptions=args.subscriptions, resource_group=args.resource_group)
        except BadInput as ex:
            parser.error(f'{ex.message} {ex.recommendation}')
    _quiet_sdk_logging()
    try:
        summary = run(subscription, args.resource_group, args.dry_run, arm_endpoint=args.arm_endpoint,
                      subscriptions=args.subscriptions, all_subscriptions=args.all_subscriptions)
    except RunnerError as ex:
        sys.stderr.write(f"{PREFIX}{ex!s}\n")
        return ex.exit_code
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write('\n')
    return EXIT_FAILED if summary.get('failed') else 0


if __name__ == '__main__':
    sys.exit(main())
