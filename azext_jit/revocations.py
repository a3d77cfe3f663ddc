# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Requests closed early, in both modes: noted in the VM's tags, one tag per request (`azvmjit-revoked-<id>`).

Azure keeps no trace of a deleted allow rule, and Defender's API has no revoke, so without these records `list`
could not say "revoked". Each record is written with the Tags API's `Merge`, so revocations made at the same time
never overwrite each other.
"""
import datetime as dt

from azext_jit.log import get_logger

from azext_jit import vm_records
from azext_jit.access_requests import ACTIVE, REVOKED, AccessRequest, RequestPort
from azext_jit.changes import Change
from azext_jit.times import parse_time, stamp

logger = get_logger(__name__)

REVOKED_KEPT_FOR = dt.timedelta(days=1)   # after its end time, a revocation record has nothing left to explain
REVOKED_MAX = 20


def revoked_requests(target, mode):
    """Requests closed early, as recorded in the VM's tags (`azvmjit-revoked-<id>`)."""
    out = []
    for rid, entry in sorted(vm_records.revocations(target.tags).items()):
        entry = dict(entry, id=rid)
        end = parse_time(entry['end']) if entry.get('end') else None
        ports = [RequestPort(p, entry.get('protocol', 'TCP'), entry.get('src'), end, REVOKED, 'UserRequested')
                 for p in entry.get('ports', [])]
        out.append(AccessRequest(entry['id'], target.id, target.name, target.resource_group, mode, entry.get('req'),
                                 parse_time(entry['at']) if entry.get('at') else None, ports))
    return out


def own_and_others(requests, account):
    """(the requests `account` made, the others): `account` is the signed-in account as `caller.whoami` names it
    (UPN or app id). Names compare case-insensitively; an unknown requestor, or an account `whoami` could not
    name, matches nobody."""
    def made_by_account(request):
        if not request.requestor or not account or account == 'unknown':
            return False
        return request.requestor.strip().lower() == account.strip().lower()
    return [r for r in requests if made_by_account(r)], [r for r in requests if not made_by_account(r)]


def warn_none_of_yours(target, others, account):
    """`revoke` found open access on the VM, none of it the caller's: say whose it is and how to close it."""
    shown = [f"{r.id} ({r.requestor or 'requestor unknown'}, port "
             f"{','.join(str(p.number) for p in r.ports if p.status == ACTIVE)})" for r in others[:5]]
    more = f' and {len(others) - 5} more' if len(others) > 5 else ''
    unknown = ''
    if any(not r.requestor for r in others):
        unknown = (' In Defender mode who made a request comes from the Activity Log, which needs '
                   'Microsoft.Insights/eventtypes/values/read and can take a few minutes to show a new request.')
    logger.warning("None of the open access on %s is yours (signed in as %s): %s stay%s open. Close one with "
                   "`az vm jit revoke -g %s -n %s --request-id <id>`, or everyone's with --all.%s",
                   target.describe(), account, ', '.join(shown) + more, 's' if len(others) == 1 else '',
                   target.resource_group, target.name, unknown)


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
            'end': stamp(closed[0].end_time), 'at': stamp(now)})
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
    from azure.core.exceptions import AzureError
    try:
        vm_records.merge_tags(azure, target.id, target.tags, new)
    except AzureError as ex:
        # The port is closed, which is what matters; only the note for `list` is missing.
        logger.warning('Access is closed, but the revocation could not be noted on the VM (%s): `show` and `list` '
                       'will not say who closed it.', _why_not_noted(ex))
        return []
    try:
        vm_records.delete_tags(azure, target.id, target.tags, stale)
    except AzureError as ex:   # the note is written; only older records stay a while longer
        logger.info('Older revocation records could not be dropped from the VM: %s', _why_not_noted(ex))
    return [change]


def _why_not_noted(ex):
    """Why the note is missing, in a few words: the permission it needs when refused, else Azure's own answer."""
    from azext_jit.errors import error_code, error_message
    status = getattr(ex, 'status_code', None)
    if status == 403:
        return 'it needs Microsoft.Resources/tags/write'
    text = error_message(ex) if status else str(ex)
    text = text.splitlines()[0][:160] if text else type(ex).__name__
    if status is None:
        return text
    code = error_code(ex)
    return f"HTTP {status}{f' {code}' if code else ''}: {text}"


def forget_revocations(azure, target, dry_run):
    """Drop every revocation record of a VM leaving JIT: they have nothing left to explain. Staged: they go with the
    VM's next tag deletion (`vm_records.stage_deletes`; the caller flushes)."""
    names = [vm_records.REVOKED + rid for rid in vm_records.revocations(target.tags)]
    if not names:
        return []
    if not dry_run:
        vm_records.stage_deletes(azure, target.id, target.tags, names)
    return [Change('delete', 'tags', target.id, target.name, {'record': names})]


def _end(record):
    return parse_time(record['end']) if record.get('end') else None
