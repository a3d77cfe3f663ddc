# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Records kept in a VM's tags: JSON split over tags of at most 256 characters, and back."""
import pytest

from azext_jit import vm_records
from azext_jit.errors import NotPossible
from azext_jit.modes import nsg_mode_records as records


def test_small_document_fits_one_tag_and_round_trips():
    tags = vm_records.encode(records.POLICY_TAG, {'ports': [22]})
    assert list(tags) == [records.POLICY_TAG]
    assert vm_records.read(tags, records.POLICY_TAG) == {'ports': [22]}


def test_large_document_spreads_over_numbered_tags_each_within_arms_limit():
    document = {'sources': ['10.{}.0.0/16'.format(i) for i in range(60)]}
    tags = vm_records.encode(records.POLICY_TAG, document)
    assert len(tags) > 1
    assert all(len(v) <= 256 for v in tags.values())
    assert set(tags) == {records.POLICY_TAG} | {'{}.{}'.format(records.POLICY_TAG, i) for i in range(1, len(tags))}
    assert vm_records.read(dict(tags, owner='alice'), records.POLICY_TAG) == document


def test_document_too_large_for_the_tag_budget_is_refused_before_writing():
    with pytest.raises(NotPossible):
        vm_records.encode(vm_records.RESTORE, {'x': 'y' * (vm_records.CHUNK * vm_records.MAX_CHUNKS)})


def test_shrinking_a_record_deletes_the_chunks_it_no_longer_needs_and_keeps_other_tags():
    tags = dict(vm_records.encode(vm_records.RESTORE, ['r' * 200] * 5), owner='alice', **{'azvmjit-restored': 'x'})
    merge, delete = vm_records.changes_for(tags, vm_records.RESTORE, ['small'])
    assert list(merge) == [vm_records.RESTORE]
    assert delete and all(k.startswith(vm_records.RESTORE + '.') for k in delete)
    assert 'owner' not in delete and 'azvmjit-restored' not in delete


def test_removing_a_record_deletes_every_chunk():
    tags = vm_records.encode(vm_records.REVOKED, [{'id': 'x' * 100}] * 6)
    merge, delete = vm_records.changes_for(tags, vm_records.REVOKED, None)
    assert merge == {} and sorted(delete) == sorted(tags)


def test_unreadable_record_reads_as_absent():
    assert vm_records.read({records.POLICY_TAG: '{not json'}, records.POLICY_TAG) is None
    assert vm_records.read({}, records.POLICY_TAG) is None


@pytest.mark.parametrize('value', ['1', '[1]', '"text"', '{"ports":5}', '{"ports":[0]}', '{"ports":[true]}',
                                   '{"end":"garbage"}', '{"at":12}', '{"src":["1.2.3.4"]}', '{"protocol":"ICMP"}'])
def test_a_revocation_record_of_another_shape_is_ignored(value):
    well_formed = '{"ports":[22],"end":"2026-11-30T10:00:00Z","at":"2026-11-30T09:00:00Z","src":"1.2.3.4"}'
    tags = {'azvmjit-revoked-forged': value, 'azvmjit-revoked-real': well_formed}
    assert list(vm_records.revocations(tags)) == ['real']
