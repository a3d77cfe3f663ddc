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


def _end(record):
    return parse_time(record['end']) if record.get('end') else None
