# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Who is asking, and from where: the signed-in account, and the caller's public IP from an IP-echo service."""

DEFAULT_MY_IP_URL = 'https://api.ipify.org'


def whoami(cmd):
    """The signed-in user (UPN) or service principal (app id), as `az account show` names it."""
    from azure.cli.core._profile import Profile
    try:
        return Profile(cli_ctx=cmd.cli_ctx).get_current_account_user()
    except Exception:  # pylint: disable=broad-except
        return 'unknown'


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
