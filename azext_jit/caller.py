# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Who is asking, and from where: the signed-in account (a managed identity named by its resource), and the caller's
public IP from an IP-echo service."""

DEFAULT_MY_IP_URL = 'https://api.ipify.org'


# How `az account show` names an account signed in with `az login --identity`: every managed identity alike.
_MANAGED_IDENTITY_ACCOUNTS = ('systemassignedidentity', 'userassignedidentity')


def whoami(cmd):
    """The signed-in user (UPN) or service principal (app id), as `az account show` names it; a managed identity,
    which az names only `systemAssignedIdentity` or `userAssignedIdentity`, by its resource (`caller_name`)."""
    from azure.cli.core._profile import Profile
    try:
        profile = Profile(cli_ctx=cmd.cli_ctx)
        account = profile.get_current_account_user()
    except Exception:  # pylint: disable=broad-except
        return 'unknown'
    if str(account).lower() not in _MANAGED_IDENTITY_ACCOUNTS:
        return account
    try:
        token = profile.get_raw_token()[0][1]
    except Exception:  # pylint: disable=broad-except
        return account
    return caller_name(account, token_claims(token))


def token_claims(token):
    """The claims of a JWT access token, unverified (our own token: only to learn who we are), or {}."""
    import base64
    import json
    try:
        payload = str(token).split('.')[1]
        return json.loads(base64.urlsafe_b64decode(payload + '=' * (-len(payload) % 4)))
    except (IndexError, ValueError, TypeError):
        return {}


def caller_name(caller, claims):
    """How JIT names a caller, from how Azure names it (`caller`: a UPN, an app id, an object id) and the claims of
    its token (those `az` holds, or those an Activity Log event carries).

    A managed identity is named by the resource it belongs to, from its token's `xms_mirid` claim: ``<resource
    group>/<resource type>/<name>`` such as ``ops/virtualMachines/jumpbox`` or ``ops/userAssignedIdentities/jit-bot``
    (short enough for an NSG rule's description), else by its principal id (`oid`). Every other caller keeps
    `caller`. That an Activity Log event of a managed identity carries `xms_mirid` among its claims is
    *unconfirmed*: without it the log names the identity by its principal id, which `show` then reports as a
    different writer than the resource name the rule claims.
    """
    claims = {str(k).lower(): v for k, v in (claims or {}).items()}
    mirid = str(claims.get('xms_mirid') or '').strip('/')
    if mirid:
        parts = mirid.split('/')
        group = next((parts[i + 1] for i, p in enumerate(parts[:-1]) if p.lower() == 'resourcegroups'), None)
        tail = '/'.join(parts[-2:])
        return f'{group}/{tail}' if group else tail
    if str(caller or '').lower() in _MANAGED_IDENTITY_ACCOUNTS:
        oid = claims.get('oid') or claims.get('http://schemas.microsoft.com/identity/claims/objectidentifier')
        return f'managed identity {oid}' if oid else caller
    return caller


def my_ip_url(cmd):
    import os
    # az reads AZURE_JIT_MY_IP_URL as the environment form of `jit.my_ip_url` too; empty means "not set".
    return (os.environ.get('AZURE_JIT_MY_IP_URL') or cmd.cli_ctx.config.get('jit', 'my_ip_url', fallback='')
            or DEFAULT_MY_IP_URL)


def my_public_ip(cmd):
    """The caller's public IP from an IP-echo service (HTTPS, answers the address as plain text)."""
    import requests
    from azext_jit.addresses import normalize_prefix
    from azext_jit.errors import BadInput, ConnectionFailed
    url = my_ip_url(cmd)
    if not url.lower().startswith('https://'):
        # Over plain HTTP anyone on the path could pick the address the port is opened to.
        raise BadInput(
            f"The IP-echo URL '{url}' is not HTTPS.",
            'Use an https:// URL for jit.my_ip_url / AZURE_JIT_MY_IP_URL, or pass --source.')
    try:
        answer = requests.get(url, timeout=10)
        answer.raise_for_status()
        address = normalize_prefix(answer.text.strip())
    except Exception as ex:  # pylint: disable=broad-except
        reason = str(ex).splitlines()[0][:120] if str(ex) else type(ex).__name__
        raise ConnectionFailed(
            f'Could not learn your public IP address from {url} ({reason}).',
            'Pass --source <your public IP or CIDR>, or point `az config set jit.my_ip_url=<url>` (or '
            'AZURE_JIT_MY_IP_URL) at an IP-echo service that answers your address as plain text.') from None
    if '/' in address:
        address = address.split('/', maxsplit=1)[0]
    return address
