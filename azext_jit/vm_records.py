# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""What the extension keeps in Azure about a VM, in the VM's own tags.

Nothing lives on the local machine, so that a request made on one machine can be listed, revoked or
cleaned up from another. Three records, each a JSON document spread over as many tags as it needs
(ARM allows 256 characters per tag value and 50 tags per resource):

- `azvmjit-policy`   NSG mode only: the VM's JIT policy (that mode's storage, see `modes/nsg_mode_records.py`).
- `azvmjit-restore`  both modes: the NSG rules `enable` removed, so that `disable` can put them back.
- `azvmjit-revoked-<request id>`  both modes: one tag per request closed early, so `list`/`show` can say
                     "revoked" (Azure keeps no trace of a deleted rule, and Defender's API has no revoke). One tag
                     each, written with `Merge`, so that revocations made at the same time never overwrite
                     each other.

Tags are written with the Tags API's `Merge`/`Delete` operations, never a resource PATCH, which would
replace the user's own tags.

Azure compares tag names case-insensitively (`AZVMJIT-RESTORE` and `azvmjit-restore` are one tag), so every
record is found whatever the case of its tag names, and rewritten under the names it already has: a record is never
held twice.

Anyone who may write the VM's tags (Tag Contributor, Virtual Machine Contributor) can write these records, so what
is read back here is a claim, checked by its reader before it leads to any write (`protection.py`,
`modes/nsg_mode.py`).
"""
import json

from azext_jit.errors import NotPossible

PREFIX = 'azvmjit-'
RESTORE, REVOKED = f"{PREFIX}restore", f"{PREFIX}revoked-"
CHUNK = 250          # characters per tag value (ARM's limit is 256)
MAX_CHUNKS = 12      # so the records never take more than a fraction of a VM's 50 tags
MAX_TAGS = 50        # ARM's limit of tags per resource


def tag_name(tags, name):
    """The name under which `tags` hold the tag `name`, compared as Azure does (case-insensitively), or None."""
    wanted = name.lower()
    return next((k for k in tags or {} if k.lower() == wanted), None)


def chunk_names(name, tags):
    """The tag names holding a record, as the tags spell them: `name`, `name.1`, `name.2`, ... in any case."""
    prefix = f"{name.lower()}."
    return [k for k in tags or {} if k.lower() == name.lower()
            or (k.lower().startswith(prefix) and k[len(prefix):].isdigit())]


def present(tags, name):
    """Whether the VM has a record `name`, readable or not."""
    return tag_name(tags, name) is not None


def raw(tags, name):
    """The record's text as stored (its parts joined), or None: what a warning shows of a record that cannot be
    read."""
    first = tag_name(tags, name)
    if first is None:
        return None
    parts, i = [tags[first]], 1
    while i <= MAX_TAGS:
        key = tag_name(tags, f'{name}.{i}')
        if key is None:
            break
        parts.append(tags[key])
        i += 1
    return ''.join(str(p) for p in parts)


def read(tags, name):
    """The JSON document stored under `name` (tag names in any case), or None."""
    text = raw(tags, name)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def encode(name, document):
    """The tags that store `document` under `name`."""
    text = json.dumps(document, separators=(',', ':'), sort_keys=True)
    pieces = [text[i:i + CHUNK] for i in range(0, len(text), CHUNK)] or ['']
    if len(pieces) > MAX_CHUNKS:
        raise NotPossible(f"The JIT record '{name}' needs {len(text)} characters, more than the "
                          f"{CHUNK * MAX_CHUNKS} that fit in the VM's tags.")
    return {name if i == 0 else f'{name}.{i}': piece for i, piece in enumerate(pieces)}


def changes_for(tags, name, document):
    """(tags to merge, tag names to delete) to store `document` (None removes the record).

    A part already stored under a name in another case is rewritten under that name, and new parts follow the
    record's spelling: Azure treats the two spellings as one tag, and a store that did not would hold it twice."""
    tags = tags or {}
    current = chunk_names(name, tags)
    spelt = tag_name(tags, name) or name     # new parts follow the spelling the record has
    new = encode(spelt, document) if document is not None else {}
    merge = {tag_name(tags, k) or k: v for k, v in new.items()}
    kept = {k.lower() for k in merge}
    return merge, sorted(k for k in current if k.lower() not in kept)


def write(azure, vm_id, tags, name, document):
    """Store (or with None, remove) one record; `tags` is the VM's current tag set, updated in place."""
    merge, delete = changes_for(tags, name, document)
    if any((tags or {}).get(k) != v for k, v in merge.items()):
        merge_tags(azure, vm_id, tags, merge)
    delete_tags(azure, vm_id, tags, delete)


def revocations(tags):
    """{request id: record} of the requests closed early (tag names in any case)."""
    out = {}
    for name, value in (tags or {}).items():
        if name.lower().startswith(REVOKED):
            try:
                record = json.loads(value)
            except ValueError:
                continue
            if _well_formed_revocation(record):
                out[name[len(REVOKED):]] = record
    return out


def _well_formed_revocation(record):
    """Whether a revocation record has the shape `revocations.record_revocations` writes. Anyone who can write the
    VM's tags can write one, so a record of another shape is ignored rather than trusted or allowed to break a
    command (a revocation record never decides by itself that access is closed)."""
    from azext_jit.times import parse_time
    if not isinstance(record, dict):
        return False
    ports = record.get('ports', [])
    if not isinstance(ports, list) or len(ports) > 100 or \
            not all(isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535 for p in ports):
        return False
    if any(record.get(key) is not None and not isinstance(record[key], str)
           for key in ('src', 'req', 'by', 'end', 'at', 'protocol')):
        return False
    if record.get('protocol') not in (None, 'TCP', 'UDP', '*'):
        return False
    for key in ('end', 'at'):
        if record.get(key):
            try:
                parse_time(record[key])
            except (ValueError, TypeError, OverflowError):
                return False
    return True


def revocation_tag(request_id, record):
    """The one tag that records a revocation; free text in it is shortened to fit ARM's 256 characters."""
    record = dict(record)
    text = json.dumps(record, separators=(',', ':'), sort_keys=True)
    for key in ('by', 'req'):
        excess = len(text) - 256
        if excess > 0 and record.get(key):
            record[key] = f"{record[key][:max(0, len(record[key]) - excess - 3)]}..."
            text = json.dumps(record, separators=(',', ':'), sort_keys=True)
    return REVOKED + request_id, text


def merge_tags(azure, vm_id, tags, new):
    """Add or overwrite these tags (the Tags API's Merge: other tags, and other writers' tags, stay)."""
    azure.tags.update_at_scope(vm_id, 'Merge', new)
    tags.update(new)


def stage_deletes(azure, vm_id, tags, names):
    """Remove these tags with the VM's next tag deletion of this command (one call, not two); `flush` removes them
    if no other deletion came."""
    found = [stored for stored in (tag_name(tags, n) for n in names) if stored is not None]
    azure.staged_deletes.setdefault(vm_id.lower(), []).extend(found)


def flush(azure, vm_id, tags):
    """Remove what is still staged for the VM (nothing when an earlier deletion carried it)."""
    if azure.staged_deletes.get(vm_id.lower()):
        delete_tags(azure, vm_id, tags, [])


def tag_value(tags, name):
    """The value of the tag `name`, whatever the case of its name as stored (Azure compares tag names
    case-insensitively), or None."""
    stored = tag_name(tags, name)
    return None if stored is None else tags[stored]


def delete_tags(azure, vm_id, tags, names):
    """Remove these tags (the Tags API's Delete), with whatever deletions were staged for the VM (`stage_deletes`)
    in the same call."""
    names = [stored for stored in (tag_name(tags, n) for n in names) if stored is not None]
    names += [n for n in azure.staged_deletes.pop(vm_id.lower(), []) if n in tags and n not in names]
    if names:
        azure.tags.update_at_scope(vm_id, 'Delete', {n: tags[n] for n in names})
    for name in names:
        tags.pop(name, None)
