# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The VM's note that its access goes through approval (tag `azvmjit-approval`, value `required`), in every mode.

PIM is what enforces approval; this note only tells the extension's commands to look there: `request` checks
whether the caller may open access directly or must file a PIM activation, `show` lists the VM's pending requests
and who could bypass approval. Whoever can write the VM's tags can add or remove it, which changes neither what
Azure allows nor anything the extension writes: without the note, an eligible requester's `request` fails with
Azure's refusal (and the advice to run `enable --require-approval` again); with a forged note, `request` makes one
more read and then goes straight through for anyone Azure lets open access.
"""
from azext_jit import vm_records
from azext_jit.changes import Change

TAG = f'{vm_records.PREFIX}approval'
VALUE = 'required'


def required(target):
    return str(vm_records.tag_value(target.tags, TAG) or '').strip().lower() == VALUE


def note(azure, target, dry_run=False):
    """Record that the VM's access goes through approval; [] when it already says so."""
    if required(target):
        return []
    if not dry_run:
        vm_records.merge_tags(azure, target.id, target.tags, {TAG: VALUE})
    return [Change('update', 'tags', target.id, target.name, {'record': [TAG]}, target.id)]


def forget(azure, target, dry_run=False):
    """Drop the note (disable); [] when there is none. Staged: it goes with the VM's next tag deletion
    (`vm_records.stage_deletes`; the caller flushes)."""
    if vm_records.tag_value(target.tags, TAG) is None:
        return []
    if not dry_run:
        vm_records.stage_deletes(azure, target.id, target.tags, [TAG])
    return [Change('delete', 'tags', target.id, target.name, {'record': [TAG]}, target.id)]
