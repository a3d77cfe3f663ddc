"""Opening and closing access, in both modes: who is asking, from where, and what ends when."""
import datetime as dt

from knack.log import get_logger

from azext_jit import nsg_ops, vm_records
from azext_jit.backends.base import ACTIVE, Change, rule_change

logger = get_logger(__name__)

DEFAULT_MY_IP_URL = 'https://api.ipify.org'
REVOKED_KEPT_FOR = dt.timedelta(days=1)   # after its end time, a revocation record has nothing left to explain
REVOKED_MAX = 20


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
    from azure.cli.core.azclierror import AzureConnectionError, InvalidArgumentValueError
    from azext_jit.addresses import normalize_prefix
    url = my_ip_url(cmd)
    if not url.lower().startswith('https://'):
        # Over plain HTTP anyone on the path could pick the address the port is opened to.
        raise InvalidArgumentValueError(
            "The IP-echo URL '{}' is not HTTPS.".format(url),
            'Use an https:// URL for jit.my_ip_url / AZURE_JIT_MY_IP_URL, or pass --source.')
    try:
        answer = requests.get(url, timeout=10)
        answer.raise_for_status()
        address = normalize_prefix(answer.text.strip())
    except Exception as ex:  # pylint: disable=broad-except
        raise AzureConnectionError('Could not learn your public IP address from {} ({}).'.format(
            url, str(ex).splitlines()[0][:120] if str(ex) else type(ex).__name__),
            'Pass --source <your public IP or CIDR>, or point `az config set jit.my_ip_url=<url>` (or '
            'AZURE_JIT_MY_IP_URL) at an IP-echo service that answers your address as plain text.') from None
    if '/' in address:
        address = address.split('/')[0]
    return address


def revoke(cmd, azure, backend, target, request_id=None, ports=None, dry_run=False):
    """Close access now. Already expired or revoked access is not an error: there is just nothing to do."""
    from azure.cli.core.azclierror import ResourceNotFoundError
    requests = backend.requests_of(target)
    if request_id:
        chosen = [r for r in requests if r.id == request_id.lower()]
        if not chosen:
            err = ResourceNotFoundError("No request '{}' on {}.".format(request_id, target.describe()))
            err.set_recommendation('See its requests with: az vm jit show -g {} -n {}'.format(
                target.resource_group, target.name))
            raise err
        requests = chosen
    active = [r for r in requests if r.status == ACTIVE]
    changes = backend.remove_expired(target, dry_run)
    if not active:
        logger.warning('No open access on %s: nothing to revoke.', target.describe())
    else:
        changes += backend.close_access(target, active, ports, dry_run=dry_run)
        changes += record_revocations(azure, target, active, ports, whoami(cmd), dry_run)
    return {'vm': target.name, 'resourceGroup': target.resource_group, 'mode': backend.mode, 'dryRun': dry_run,
            'revoked': [r.id for r in active], 'changes': [c.to_dict() for c in changes]}


def record_revocations(azure, target, requests, ports, revoker, dry_run):
    """Note in the VM's tags which requests were closed early, so `list` can show them as revoked.

    One tag per request (`azvmjit-revoked-<id>`), merged, so two revocations at the same time never overwrite each
    other; records whose access would have ended long ago, and the oldest beyond REVOKED_MAX, are dropped.
    """
    now = azure.now()
    known = vm_records.revocations(target.tags)
    new = {}
    for request in requests:
        closed = [p for p in request.ports if p.status == ACTIVE and (not ports or p.number in ports)]
        if not closed:
            continue
        earlier = known.get(request.id) or {}
        numbers = sorted(set(earlier.get('ports') or []) | {p.number for p in closed})
        name, value = vm_records.revocation_tag(request.id, {
            'ports': numbers, 'src': closed[0].source, 'req': request.requestor, 'by': revoker,
            'end': _stamp(closed[0].end_time), 'at': _stamp(now)})
        new[name] = value
    stale = [vm_records.REVOKED + rid for rid, record in known.items()
             if _end(record) is not None and _end(record) + REVOKED_KEPT_FOR < now]
    kept = sorted((record.get('at') or '', rid) for rid, record in known.items()
                  if vm_records.REVOKED + rid not in stale and vm_records.REVOKED + rid not in new)
    overflow = len(kept) + len(new) - REVOKED_MAX
    stale += [vm_records.REVOKED + rid for _, rid in kept[:max(0, overflow)]]
    change = Change('update', 'tags', target.id, target.name, {'record': sorted(new), 'dropped': sorted(stale)})
    if dry_run or not new:
        return [change] if new else []
    from azure.core.exceptions import HttpResponseError
    try:
        vm_records.merge_tags(azure, target.id, target.tags, new)
        vm_records.delete_tags(azure, target.id, target.tags, stale)
    except HttpResponseError as ex:
        if getattr(ex, 'status_code', None) != 403:
            raise
        # The port is closed, which is what matters; only the note for `list` is missing.
        logger.warning('Access is closed, but the revocation could not be noted on the VM (it needs '
                       'Microsoft.Resources/tags/write): `list` may show the request as active until its end time.')
        return []
    return [change]


def forget_revocations(azure, target, dry_run):
    """Drop every revocation record of a VM leaving JIT: they have nothing left to explain."""
    names = [vm_records.REVOKED + rid for rid in vm_records.revocations(target.tags)]
    if not names:
        return []
    if not dry_run:
        vm_records.delete_tags(azure, target.id, target.tags, names)
    return [Change('delete', 'tags', target.id, target.name, {'record': names})]


def _stamp(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ') if moment else None


def _end(record):
    from azext_jit.backends.base import parse_time
    return parse_time(record['end']) if record.get('end') else None


def cleanup(azure, nsg_backend, resource_group=None, dry_run=False):
    """Delete every expired JIT allow rule of the extension in a resource group or the subscription.

    Safe beside other commands and other cleanups: it deletes only rules whose own description says their
    time is up, a rule deleted twice is not an error, and it never writes anything else.
    """
    from azure.core.exceptions import HttpResponseError
    nsgs = nsg_ops.list_nsgs(azure, resource_group)
    # Azure's clock is known only once an answer has come back (its Date header): read it after listing,
    # or expiry would be judged by this machine's clock.
    now = azure.now()
    removed, errors = [], []
    for nsg in nsgs:
        for rule in nsg_backend.expired_rules(nsg, now):
            change = rule_change('delete', nsg['id'], rule, None)
            if not dry_run:
                try:
                    nsg_ops.delete_rule(azure, nsg['id'], rule['name'])
                except HttpResponseError as ex:
                    from azext_jit.errors import map_http_error
                    errors.append('{}: {}'.format(rule['name'], map_http_error(ex).error_msg))
                    continue
            removed.append(change.to_dict())
    for problem in errors:
        logger.warning('Could not remove %s', problem)
    return {'dryRun': dry_run, 'scope': resource_group or azure.subscription_id, 'removed': removed,
            'count': len(removed), 'failed': errors}
