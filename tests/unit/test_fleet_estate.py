# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""A fleet's VMs and their network from Resource Graph rows: the same VmTarget an ARM read gives, with no call; ids
compared case-insensitively; what the rows do not hold is unknown, never a crash."""
from azext_jit.fleet.estate import Estate
from azext_jit.targets import public_doors
from tests.standin import compute
from tests.unit.graph_rows import OTHER_SUB, SUB, Fleet, allow, ids


def one_vm(subnet_nsg=False, nic_nsg=True):
    fleet = Fleet()
    nsg_id = fleet.nsg('rg', 'web-nsg', rules=[allow('AllowSsh', 100)])
    subnet_id = fleet.vnet('rg', subnet_nsg=nsg_id if subnet_nsg else None)
    vm_id = fleet.vm('rg', 'web', subnet_id, nic_nsg=nsg_id if nic_nsg else None)
    return fleet, vm_id, nsg_id, subnet_id


def test_a_vm_target_carries_what_an_arm_read_gives():
    fleet, vm_id, nsg_id, subnet_id = one_vm()
    estate = Estate.from_rows(fleet.rows())
    [vm] = estate.vms()
    assert vm['subscriptionId'] == SUB and vm['id'] == vm_id
    target = estate.target(vm)
    nic_id = ids(SUB, 'rg', 'Microsoft.Network/networkInterfaces', 'web-nic')
    assert (target.name, target.resource_group, target.nic_id) == ('web', 'rg', nic_id)
    assert (target.private_ip, target.public_ip, target.subnet_id) == ('10.0.0.4', '20.50.0.4', subnet_id)
    assert (target.nsg_id, target.nsg_scope, target.asg_ids) == (nsg_id, 'nic', [])
    assert (target.doors, target.doors_judged, target.unread_nic_ids, target.nic_count) == ([], False, [], 1)


def test_the_subnet_nsg_governs_a_nic_without_one():
    fleet, vm_id, nsg_id, subnet_id = one_vm(subnet_nsg=True, nic_nsg=False)
    estate = Estate.from_rows(fleet.rows())
    target = estate.target(estate.vm(vm_id))
    assert (target.nsg_id, target.nsg_scope, target.subnet_read) == (nsg_id, 'subnet', True)
    assert estate.subnet_nsg_id(subnet_id.upper()) == nsg_id


def test_ids_match_whatever_their_case():
    fleet, vm_id, nsg_id, _ = one_vm(subnet_nsg=True)
    estate = Estate.from_rows(fleet.rows(lower_ids=True))
    target = estate.target(estate.vm(vm_id.upper()))
    assert (target.public_ip, target.nsg_id) == ('20.50.0.4', nsg_id)
    assert estate.nsg(nsg_id.upper())['name'] == 'web-nsg' and [n['name'] for n in estate.nsgs()] == ['web-nsg']


def test_every_nics_public_doors_are_in_the_target_and_public_doors_reads_none_of_them_again():
    fleet, vm_id, _, _ = one_vm()
    compute.add_nic(fleet.world, vm_id, 'web-nic2', '10.0.0.250', '20.50.0.9', sku='Basic')
    compute.add_ip_config(fleet.world, fleet.nic_of(vm_id)['id'], 'ipconfig2', '10.0.0.240', '20.50.0.8')
    estate = Estate.from_rows(fleet.rows())
    target = estate.target(estate.vm(vm_id))
    assert [(d.nic_name, d.ip_config, d.public_ip, d.public_ip_sku) for d in target.doors] == [
        ('web-nic', 'ipconfig2', '20.50.0.8', 'Standard'), ('web-nic2', 'ipconfig1', '20.50.0.9', 'Basic')]
    assert target.unread_nic_ids == []
    target.doors_judged = True   # judged elsewhere: what public_doors returns without reading anything
    assert public_doors(None, target, [(22, 'TCP')]) == target.doors
    assert [(d.nic_name, d.ip_config, guarded) for d, guarded in estate.doors(estate.vm(vm_id))] == [
        ('web-nic', 'ipconfig1', True), ('web-nic', 'ipconfig2', False), ('web-nic2', 'ipconfig1', False)]


class NoCalls:
    """An Azure client holding the NSGs already read (`read_nsg`'s cache) that fails on any other call."""

    def __init__(self, nsgs):
        self.nsgs = {n['id'].lower(): n for n in nsgs}

    @property
    def network(self):
        raise AssertionError('an ARM call was made')


def test_judging_an_estate_targets_doors_reads_no_nic_again():
    fleet, vm_id, nsg_id, _ = one_vm(subnet_nsg=True, nic_nsg=False)
    compute.add_nic(fleet.world, vm_id, 'web-nic2', '10.0.0.250', '20.50.0.9')
    estate = Estate.from_rows(fleet.rows())
    target = estate.target(estate.vm(vm_id))
    doors = public_doors(NoCalls(estate.nsgs()), target, [(22, 'TCP'), (3389, 'TCP')])
    assert [(d.nic_name, d.open_ports, d.opened_by) for d in doors] == [
        ('web-nic2', [(22, 'TCP')], ['web-nsg/AllowSsh'])]
    assert estate.nsg(nsg_id) is not None


def test_a_nic_missing_from_the_rows_is_unread_and_a_missing_primary_nic_leaves_no_network():
    fleet, vm_id, _, _ = one_vm()
    second = compute.add_nic(fleet.world, vm_id, 'web-nic2', '10.0.0.250', '20.50.0.9')['id']
    estate = Estate.from_rows(fleet.rows(without=[second]))
    vm = estate.vm(vm_id)
    assert estate.target(vm).unread_nic_ids == [second] and estate.unread_nics(vm) == [second]
    primary = fleet.nic_of(vm_id)['id']
    estate = Estate.from_rows(fleet.rows(without=[primary]))
    target = estate.target(estate.vm(vm_id))
    assert (target.nic_id, target.private_ip, target.doors, target.unread_nic_ids) == (primary, None, None, [second])
    assert public_doors(None, target, [(22, 'TCP')]) == []   # nothing known, nothing claimed
    assert [d.nic_name for d, _ in estate.doors(estate.vm(vm_id))] == ['web-nic2']


def test_a_subnet_whose_vnet_is_missing_is_unknown_not_without_nsg():
    fleet, vm_id, _, subnet_id = one_vm(subnet_nsg=True, nic_nsg=False)
    estate = Estate.from_rows(fleet.rows(without=[subnet_id.rsplit('/subnets/', 1)[0]]))
    target = estate.target(estate.vm(vm_id))
    assert (target.nsg_id, target.subnet_read) == (None, False)
    assert estate.subnet(subnet_id) is None and estate.subnet_nsg_id(subnet_id) is None


def test_a_public_ip_missing_from_the_rows_leaves_the_door_without_address_or_sku():
    fleet, vm_id, _, _ = one_vm()
    pip_id = ids(SUB, 'rg', 'Microsoft.Network/publicIPAddresses', 'web-ip')
    estate = Estate.from_rows(fleet.rows(without=[pip_id]))
    [(door, guarded)] = estate.doors(estate.vm(vm_id))
    assert (door.public_ip, door.public_ip_sku, door.public_ip_id, guarded) == (None, None, pip_id, True)
    assert estate.target(estate.vm(vm_id)).public_ip is None and estate.public_ip(pip_id) is None


def test_vms_are_sorted_and_other_rows_and_repeated_rows_ignored():
    fleet = Fleet()
    subnet = fleet.vnet('rg')
    other_subnet = fleet.vnet('rg', sub=OTHER_SUB)
    fleet.vm('rg', 'b', subnet)
    fleet.vm('RG', 'a', subnet)
    fleet.vm('rg', 'c', other_subnet, sub=OTHER_SUB)
    rows = fleet.rows()
    rows += [dict(rows[0]), {'id': '/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/'
                                   'storageAccounts/s', 'type': 'microsoft.storage/storageaccounts'}, {}]
    estate = Estate.from_rows(rows)
    assert [(v['subscriptionId'], v['name']) for v in estate.vms()] == [(SUB, 'a'), (SUB, 'b'), (OTHER_SUB, 'c')]
    assert estate.subscriptions() == [SUB, OTHER_SUB]


def test_expanding_a_nic_leaves_its_row_as_it_was():
    fleet, vm_id, _, _ = one_vm()
    rows = fleet.rows()
    estate = Estate.from_rows(rows)
    nic_id = fleet.nic_of(vm_id)['id']
    expanded = estate.expanded_nic(nic_id)
    assert expanded['properties']['ipConfigurations'][0]['properties']['publicIPAddress']['properties'][
        'ipAddress'] == '20.50.0.4'
    assert set(estate.nic(nic_id)['properties']['ipConfigurations'][0]['properties']['publicIPAddress']) == {'id'}
