# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""What `az vm jit disable` writes back from the record of removed rules in the VM's tags (`azvmjit-restore`).

Anyone with Tag Contributor or Virtual Machine Contributor can write that record, so the tests forge it the way
such a person would (straight into the VM's tags) and check that the administrator's routine `disable --yes`
writes only what `enable` removed from that VM, into its own NSG, and says what it refused. They also check the
honest round trip, the confirmation listing each rule it writes, a rule shared by two VMs coming back once both
are disabled, and tag names in another case.
"""
import copy
import json
import os
import pty
import subprocess

import pytest

from tests.harness import ALLOW_ANY_SSH, az_executable, jit_tags, rules_by_name, writes_since

RESTORE_TAG = 'azvmjit-restore'
ALLOW_ANY_RDP = {'name': 'AllowRdpAny', 'properties': {
    'priority': 310, 'direction': 'Inbound', 'access': 'Allow', 'protocol': 'Tcp', 'sourcePortRange': '*',
    'destinationPortRange': '3389', 'sourceAddressPrefix': '*', 'destinationAddressPrefix': '*'}}


@pytest.fixture(params=['defender', 'nsg'])
def mode(request):
    """Each test runs in Defender mode (the default) and in NSG mode (no Defender plan)."""
    if request.param == 'nsg':
        request.getfixturevalue('defender_off')
    return request.param


def forge(standin, vm, entries, tag=RESTORE_TAG):
    """Write a restore record into the VM's tags as a Tag Contributor would: JSON in parts of at most 250
    characters under `tag`, `tag.1`, ..."""
    text = json.dumps(entries, separators=(',', ':'))
    tags = standin.world.get(vm['id'])['tags']
    for key in [k for k in tags if k.lower().startswith(RESTORE_TAG)]:
        del tags[key]
    for i in range(0, len(text), 250):
        tags[tag if i == 0 else f'{tag}.{i // 250}'] = text[i:i + 250]


def allow_all(nsg_id, name='Forged', port='*', destination='*', priority=100):
    return {'nsg': nsg_id, 'name': name, 'properties': {
        'priority': priority, 'direction': 'Inbound', 'access': 'Allow', 'protocol': '*', 'sourcePortRange': '*',
        'destinationPortRange': port, 'sourceAddressPrefix': '*', 'destinationAddressPrefix': destination}}


def restore_tags(standin, vm):
    """The VM's restore record tags, whatever the case of their names."""
    return {k: v for k, v in (standin.world.get(vm['id']).get('tags') or {}).items()
            if k.lower().startswith(RESTORE_TAG)}


def record_of(standin, vm):
    parts = restore_tags(standin, vm)
    first = next(k for k in parts if '.' not in k)
    return json.loads(''.join(parts[k] for k in [first] + [f'{first}.{i}' for i in range(1, len(parts))]))


def as_defined(rule):
    """What an admin compares of a rule: its definition, without what Azure fills in."""
    props = {k: v for k, v in rule['properties'].items() if k not in ('provisioningState',) and v not in ([], None)}
    return {'name': rule['name'], 'properties': props}


def enable(az, rg, name, mode, *ports):
    az.ok('vm', 'jit', 'enable', '-g', rg, '-n', name, '--ports', *(ports or ('22',)), '--mode', mode, '--yes')


# -- forged records write nothing they should not -------------------------------------------------------------
def test_a_forged_record_naming_another_vms_nsg_writes_nothing_there(az, standin, rg, mode):
    victim = standin.vm(rg, 'victim')
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1', mode)
    victim_rules = rules_by_name(standin, victim['nsg_id'])
    forge(standin, vm, [allow_all(victim['nsg_id'])])

    result = az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--yes')
    assert result.code == 0, result
    assert rules_by_name(standin, victim['nsg_id']) == victim_rules, "another VM's NSG must not change"
    assert 'Forged' not in rules_by_name(standin, vm['nsg_id'])
    assert "names NSG 'victim-nsg'" in result.stderr and "not this VM's NSG 'vm1-nsg'" in result.stderr, result
    assert '"sourceAddressPrefix": "*"' in result.stderr, 'the warning gives the definition'
    assert restore_tags(standin, vm) == {}, 'a refused entry is dropped from the record'
    assert not [c for c in result.json['changes'] if c['action'] == 'restore']


@pytest.mark.parametrize('forged, why', [
    (dict(port='8080'), 'port JIT protects there (22/TCP)'),
    (dict(port='22', destination='10.9.9.9'), "at the VM's address"),
], ids=['port-not-protected', 'another-address'])
def test_a_forged_allow_all_rule_the_vm_never_had_removed_is_held_back(az, standin, rg, mode, forged, why):
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1', mode)
    forge(standin, vm, [allow_all(vm['nsg_id'], **forged)])

    result = az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--yes')
    assert result.code == 0, result
    assert 'Forged' not in rules_by_name(standin, vm['nsg_id'])
    assert "Rule 'Forged' stays removed" in result.stderr and why in result.stderr, result
    assert [e['name'] for e in record_of(standin, vm)] == ['Forged'], 'held back, never written'


def test_a_forged_wide_rule_for_the_vms_own_nsg_is_held_back_without_a_deletion_in_the_activity_log(
        az, standin, rg, mode):
    """A rule from anywhere to every address on the VM's protected port is one enable would remove, so only Azure's
    record of its deletion from this NSG lets disable write it back; the honest rule, deleted by enable, returns."""
    vm = standin.vm(rg, 'vm1', rules=[ALLOW_ANY_SSH])
    enable(az, rg, 'vm1', mode)
    forge(standin, vm, record_of(standin, vm) + [allow_all(vm['nsg_id'], name='Backdoor', port='22')])

    result = az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--yes')
    assert result.code == 0, result
    now = rules_by_name(standin, vm['nsg_id'])
    assert 'Backdoor' not in now and 'AllowSshAny' in now
    assert "Rule 'Backdoor' stays removed" in result.stderr and 'Activity Log shows no deletion' in result.stderr
    assert [e['name'] for e in record_of(standin, vm)] == ['Backdoor']


def test_a_forged_entry_named_like_a_jit_rule_is_refused(az, standin, rg, mode):
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1', mode)
    forge(standin, vm, [allow_all(vm['nsg_id'], name='AzVmJit-Allow-keep', port='22', destination=vm['private_ip'])])

    result = az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--yes')
    assert result.code == 0, result
    assert 'AzVmJit-Allow-keep' not in rules_by_name(standin, vm['nsg_id'])
    assert "its name is one JIT gives its own rules" in result.stderr, result


def test_forged_fields_are_refused_while_honest_entries_still_come_back(az, standin, rg, mode):
    vm = standin.vm(rg, 'vm1', rules=[ALLOW_ANY_SSH])
    before = as_defined(rules_by_name(standin, vm['nsg_id'])['AllowSshAny'])
    enable(az, rg, 'vm1', mode)
    honest = record_of(standin, vm)
    odd = allow_all(vm['nsg_id'], name='Odd', port='22')
    odd['properties']['priority'] = True          # a JSON boolean is no priority
    long_text = allow_all(vm['nsg_id'], name='Wordy', port='22')
    long_text['properties']['description'] = 'x' * 141
    forge(standin, vm, honest + [odd, long_text])

    result = az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--yes')
    assert result.code == 0, result
    now = rules_by_name(standin, vm['nsg_id'])
    assert 'Odd' not in now and 'Wordy' not in now
    assert "its priority is not a whole number from 100 to 4096" in result.stderr
    assert "its description is not a text of at most 140 characters" in result.stderr
    assert as_defined(now['AllowSshAny']) == before


# -- the honest round trip, and what the admin is shown ---------------------------------------------------------
def test_an_honest_round_trip_restores_exactly_what_enable_removed_and_names_it(az, standin, rg, mode):
    vm = standin.vm(rg, 'vm1', rules=[ALLOW_ANY_SSH, ALLOW_ANY_RDP])
    before = {n: as_defined(r) for n, r in rules_by_name(standin, vm['nsg_id']).items()}
    enable(az, rg, 'vm1', mode, '22', '3389')
    assert 'AllowSshAny' not in rules_by_name(standin, vm['nsg_id'])

    result = az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--yes')
    assert result.code == 0, result
    after = {n: as_defined(r) for n, r in rules_by_name(standin, vm['nsg_id']).items()}
    assert after == before
    assert "restoring rule 'AllowSshAny' into NSG 'vm1-nsg': priority 300, Allow Tcp from * to * port 22" \
        in result.stderr, result
    assert "restoring rule 'AllowRdpAny' into NSG 'vm1-nsg': priority 310" in result.stderr
    assert sorted(c['name'] for c in result.json['changes'] if c['action'] == 'restore') == \
        ['AllowRdpAny', 'AllowSshAny']
    assert restore_tags(standin, vm) == {}


def _disable_on_a_terminal(az, rg, name, answer):
    """`az vm jit disable` with a terminal on stdin (the confirmation is asked), answering `answer`."""
    main, secondary = pty.openpty()
    try:
        os.write(main, answer.encode() + b'\n')
        proc = subprocess.run([az_executable(), 'vm', 'jit', 'disable', '-g', rg, '-n', name, '-o', 'json'],
                              stdin=secondary, capture_output=True, text=True, timeout=300, cwd=az.config_dir,
                              env=az.environment.base_env(az.config_dir), check=False)
    finally:
        os.close(secondary)
        os.close(main)
    return proc


def test_the_confirmation_lists_each_rule_disable_will_write_back(az, standin, rg, defender_off):
    vm = standin.vm(rg, 'vm1', rules=[ALLOW_ANY_SSH])
    enable(az, rg, 'vm1', 'nsg')
    nsg_before, tags_before = rules_by_name(standin, vm['nsg_id']), jit_tags(standin, vm['id'])
    mark = len(standin.world.requests)

    declined = _disable_on_a_terminal(az, rg, 'vm1', 'n')
    assert declined.returncode != 0, declined
    assert "Take VM 'vm1' in resource group" in declined.stdout, declined
    assert "'AllowSshAny' into NSG 'vm1-nsg': priority 300, Allow Tcp from * to * port 22" in declined.stdout
    assert writes_since(standin.world, mark) == [], 'declining writes nothing'
    assert rules_by_name(standin, vm['nsg_id']) == nsg_before and jit_tags(standin, vm['id']) == tags_before

    agreed = _disable_on_a_terminal(az, rg, 'vm1', 'y')
    assert agreed.returncode == 0, agreed
    assert rules_by_name(standin, vm['nsg_id'])['AllowSshAny']['properties']['priority'] == 300


def test_without_a_terminal_or_yes_disable_reads_nothing_and_changes_nothing(az, standin, rg, defender_off):
    vm = standin.vm(rg, 'vm1', rules=[ALLOW_ANY_SSH])
    enable(az, rg, 'vm1', 'nsg')
    mark = len(standin.world.requests)
    result = az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1')
    assert result.code != 0 and 'Use --yes' in result.stderr, result
    assert writes_since(standin.world, mark) == []
    assert 'AllowSshAny' not in rules_by_name(standin, vm['nsg_id'])


# -- records that cannot be checked are held back ---------------------------------------------------------------
def test_a_record_on_a_vm_without_jit_is_held_back_with_a_warning_not_written(az, standin, rg, defender_off):
    vm = standin.vm(rg, 'vm1')
    forge(standin, vm, [allow_all(vm['nsg_id'], port='22')])
    stored = restore_tags(standin, vm)

    result = az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--yes')
    assert result.code == 0, result
    assert 'Forged' not in rules_by_name(standin, vm['nsg_id'])
    assert "stays in the record" in result.stderr and "policy cannot be read" in result.stderr, result
    assert restore_tags(standin, vm) == stored, 'held back, not lost'


def test_with_an_unreadable_policy_the_vms_own_deny_rules_say_which_ports_it_protected(az, standin, rg,
                                                                                       defender_off):
    vm = standin.vm(rg, 'vm1', rules=[ALLOW_ANY_SSH])
    enable(az, rg, 'vm1', 'nsg')
    record = record_of(standin, vm)
    forge(standin, vm, record + [allow_all(vm['nsg_id'], port='8080')])
    standin.world.get(vm['id'])['tags']['azvmjit-policy'] = '{"forged": '

    result = az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--yes')
    assert result.code == 0, result
    now = rules_by_name(standin, vm['nsg_id'])
    assert now['AllowSshAny']['properties']['priority'] == 300, 'the deny rule closed 22: its rule comes back'
    assert 'Forged' not in now
    assert [e['name'] for e in record_of(standin, vm)] == ['Forged'], 'held back, never written'


# -- a rule shared by two VMs ----------------------------------------------------------------------------------
def test_a_shared_rule_comes_back_once_both_vms_enabled_separately_are_disabled(az, standin, rg, mode):
    first = standin.vm(rg, 'vma', nsg_name='shared-nsg', rules=[ALLOW_ANY_SSH])
    second = standin.vm(rg, 'vmb', nsg_name='shared-nsg')
    nsg_id = first['nsg_id']
    before = as_defined(rules_by_name(standin, nsg_id)['AllowSshAny'])
    enable(az, rg, 'vma', mode)
    enable(az, rg, 'vmb', mode)
    assert restore_tags(standin, second) == {}, 'the rule was gone when vmb was enabled'

    result = az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'vma', '--yes')
    assert result.code == 0, result
    assert "'AllowSshAny' stays removed" in result.stderr
    assert "moves from VM 'vma' to VM 'vmb'" in result.stderr, result
    assert 'AllowSshAny' not in rules_by_name(standin, nsg_id), 'vmb is still protected'
    assert restore_tags(standin, first) == {} and restore_tags(standin, second) != {}
    assert [(c['kind'], c['vm'], c['rules']) for c in result.json['changes'] if c['kind'] == 'tags' and 'rules' in c] \
        == [('tags', 'vmb', ['AllowSshAny'])]

    az.ok('vm', 'jit', 'disable', '-g', rg, '-n', 'vmb', '--yes')
    rules = rules_by_name(standin, nsg_id)
    assert as_defined(rules['AllowSshAny']) == before
    assert [n.lower() for n in rules].count('allowsshany') == 1
    assert restore_tags(standin, second) == {}


def test_a_shared_rule_stays_recorded_on_the_vm_when_the_other_vm_cannot_be_found(az, standin, rg, defender_off):
    first = standin.vm(rg, 'vma', nsg_name='shared-nsg', rules=[ALLOW_ANY_SSH])
    second = standin.vm(rg, 'vmb', nsg_name='shared-nsg')
    enable(az, rg, 'vma', 'nsg')
    enable(az, rg, 'vmb', 'nsg')
    standin.world.delete(second['id'])     # its NIC and its deny rule stay behind

    result = az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'vma', '--yes')
    assert result.code == 0, result
    assert "could not be found, so its record stays with VM 'vma'" in result.stderr, result
    assert 'AllowSshAny' not in rules_by_name(standin, first['nsg_id'])
    assert restore_tags(standin, first) != {}, 'not lost'


# -- tag names in another case -------------------------------------------------------------------------------
def test_an_upper_case_record_tag_is_read_extended_and_removed_without_duplicates(az, standin, rg, defender_off):
    vm = standin.vm(rg, 'vm1', rules=[ALLOW_ANY_SSH, ALLOW_ANY_RDP])
    enable(az, rg, 'vm1', 'nsg', '22')
    record = record_of(standin, vm)
    forge(standin, vm, record, tag=RESTORE_TAG.upper())

    enable(az, rg, 'vm1', 'nsg', '22', '3389')
    keys = list(restore_tags(standin, vm))
    assert keys and all(k.startswith(RESTORE_TAG.upper()) for k in keys), keys
    assert len({k.lower() for k in keys}) == len(keys)

    result = az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--yes')
    assert result.code == 0, result
    now = rules_by_name(standin, vm['nsg_id'])
    assert now['AllowSshAny']['properties']['priority'] == 300
    assert now['AllowRdpAny']['properties']['priority'] == 310
    assert restore_tags(standin, vm) == {}


def test_dry_run_lists_what_a_forged_record_would_not_write(az, standin, rg, defender_off):
    vm = standin.vm(rg, 'vm1', rules=[ALLOW_ANY_SSH])
    enable(az, rg, 'vm1', 'nsg')
    record = record_of(standin, vm)
    forge(standin, vm, record + [allow_all(vm['nsg_id'], port='8080')])
    tags = copy.deepcopy(standin.world.get(vm['id'])['tags'])
    mark = len(standin.world.requests)

    planned = az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'vm1', '--dry-run')
    assert planned.code == 0, planned
    assert 'restoring rule' not in planned.stderr and "Rule 'Forged'" in planned.stderr
    planned = planned.json
    assert writes_since(standin.world, mark) == []
    assert [c['name'] for c in planned['changes'] if c['action'] == 'restore'] == ['AllowSshAny']
    assert standin.world.get(vm['id'])['tags'] == tags
