# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The checks `disable` applies to each entry of the restore record before writing it back, and tag names read and
rewritten whatever their case."""
import copy

import pytest

from azext_jit import protection, vm_records
from azext_jit.targets import VmTarget

NSG = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/vm1-nsg'
ASG = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/applicationSecurityGroups/web'
TARGET = VmTarget(id='/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1',
                  name='vm1', resource_group='rg', location='westeurope', private_ip='10.0.0.4', nsg_id=NSG,
                  asg_ids=[ASG])
HONEST = {'nsg': NSG, 'name': 'AllowSshAny', 'properties': {
    'priority': 300, 'direction': 'Inbound', 'access': 'Allow', 'protocol': 'Tcp', 'sourcePortRange': '*',
    'destinationPortRange': '22', 'sourceAddressPrefix': '*', 'destinationAddressPrefix': '*'}}


def entry(**props):
    item = copy.deepcopy(HONEST)
    for key, value in props.items():
        if value is None:
            item['properties'].pop(key, None)
        else:
            item['properties'][key] = value
    return item


def rule(item):
    return {'name': item['name'], 'properties': item['properties']}


def test_an_entry_as_enable_records_it_passes_every_check():
    assert protection.entry_problem(HONEST) is None
    assert protection.reach_problem(rule(HONEST), [(22, 'TCP')], TARGET) is None


@pytest.mark.parametrize('item, problem', [
    ('not a rule', 'not a rule definition'),
    (dict(HONEST, extra=1), 'fields enable never records (extra)'),
    (dict(HONEST, name='bad name!'), 'not a valid rule name'),
    (dict(HONEST, name='x' * 81), 'not a valid rule name'),
    (dict(HONEST, nsg=None), 'names no network security group'),
    (dict(HONEST, properties=['x']), "properties are not a rule's"),
    (entry(provisioningState='Succeeded'), 'fields enable never records (provisioningState)'),
    (entry(priority=None), 'has no priority'),
    (entry(priority=True), 'priority is not a whole number from 100 to 4096'),
    (entry(priority=99), 'priority is not a whole number'),
    (entry(priority=4097), 'priority is not a whole number'),
    (entry(priority='300'), 'priority is not a whole number'),
    (entry(access='Deny'), 'access is not Allow'),
    (entry(direction='Outbound'), 'direction is not Inbound'),
    (entry(protocol='Gre'), 'protocol is not one of'),
    (entry(description='x' * 141), 'description is not a text of at most 140 characters'),
    (entry(destinationPortRange='22,80'), 'destinationPortRange is not a port or port range'),
    (entry(destinationPortRanges=['22'] * 101), 'destinationPortRanges is not a list of 1 to 100 items'),
    (entry(sourceAddressPrefix='* ; rm'), 'sourceAddressPrefix is not an address prefix'),
    (entry(sourceAddressPrefixes=[{'x': 1}]), 'holds an item that is not an address prefix'),
    (entry(destinationApplicationSecurityGroups=[{'id': '/x'}]), 'not an application security group id'),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
def test_an_entry_enable_could_not_have_recorded_is_refused_with_the_reason(item, problem):
    assert problem in protection.entry_problem(item)


@pytest.mark.parametrize('props', [
    dict(destinationPortRange='8080'),                        # a port the policy does not protect
    dict(destinationAddressPrefix='10.9.9.9'),                # another address
    dict(destinationAddressPrefix='Internet'),                # a service tag that never holds the VM's address
    dict(sourceAddressPrefix='203.0.113.7'),                  # not from any source: enable never removes it
    dict(protocol='Udp'),                                     # another protocol
    dict(priority=4096, protocol='Icmp'),                     # a protocol without ports
], ids=['port', 'address', 'service-tag', 'narrow-source', 'protocol', 'icmp'])
def test_a_rule_enable_would_not_have_removed_for_the_vm_is_refused(props):
    problem = protection.reach_problem(rule(entry(**props)), [(22, 'TCP')], TARGET)
    assert problem and "not a rule enable removes for this VM" in problem and '22/TCP' in problem


@pytest.mark.parametrize('props', [
    dict(destinationAddressPrefix='10.0.0.0/24'),             # the VM's subnet
    dict(destinationAddressPrefix='10.0.0.4'),
    dict(destinationPortRange='*', protocol='*'),             # everything: enable removes it whole
    dict(destinationAddressPrefix=None, destinationApplicationSecurityGroups=[{'id': ASG}]),
], ids=['subnet', 'address', 'all-ports', 'asg'])
def test_a_rule_reaching_a_protected_port_of_the_vm_from_anywhere_may_come_back(props):
    assert protection.reach_problem(rule(entry(**props)), [(22, 'TCP')], TARGET) is None


def test_a_record_read_and_extended_under_an_upper_case_tag_name_keeps_that_name_and_no_duplicate():
    tags = {k.upper(): v for k, v in vm_records.encode(vm_records.RESTORE, [HONEST]).items()}
    tags['owner'] = 'alice'
    assert vm_records.read(tags, vm_records.RESTORE) == [HONEST]
    assert vm_records.present(tags, vm_records.RESTORE)
    merge, delete = vm_records.changes_for(tags, vm_records.RESTORE, [HONEST] * 4)
    assert len(merge) > 1 and all(k.startswith('AZVMJIT-RESTORE') for k in merge), merge
    assert delete == []
    merge, delete = vm_records.changes_for(tags, vm_records.RESTORE, None)
    assert merge == {} and sorted(delete) == sorted(k for k in tags if k != 'owner')


def test_revocations_are_read_whatever_the_case_of_their_tag_names():
    assert vm_records.revocations({'AZVMJIT-REVOKED-abc': '{"by": "x"}'}) == {'abc': {'by': 'x'}}
