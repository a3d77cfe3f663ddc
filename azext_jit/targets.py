# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Which VMs a command is about, and what JIT needs to know of each: primary NIC, private and public IP,
and the NSG that governs it.

One VM costs two ARM reads: the VM, then its primary NIC with `$expand=ipConfigurations/publicIPAddress`,
which carries the public IP's address inline. Only when the NIC has no NSG of its own (and the caller
needs the NSG) does the subnet cost a third read.
"""
from dataclasses import dataclass, field

from azure.mgmt.core.tools import parse_resource_id

from azext_jit.errors import NotFound, NotPossible
from azext_jit.wire import wire


@dataclass
class VmTarget:  # pylint: disable=too-many-instance-attributes  # one field per fact read about the VM
    id: str
    name: str
    resource_group: str
    location: str
    tags: dict = field(default_factory=dict)
    nic_id: str = None
    private_ip: str = None
    public_ip: str = None
    subnet_id: str = None
    nsg_id: str = None
    nsg_scope: str = None      # 'nic' or 'subnet': where the governing NSG is attached
    nic_count: int = 1
    asg_ids: list = None       # application security groups of the primary IP configuration (None: not read)
    subnet_read: bool = False  # whether the subnet was asked for its NSG (with_subnet_nsg)

    def describe(self):
        return f"VM '{self.name}' in resource group '{self.resource_group}'"


def _primary_nic_id(vm):
    nics = ((vm.get('properties') or {}).get('networkProfile') or {}).get('networkInterfaces') or []
    if not nics:
        return None, 0
    primary = next((n for n in nics if (n.get('properties') or {}).get('primary')), nics[0])
    return primary['id'], len(nics)


def target_without_network(vm):
    """A VmTarget from a VM's wire JSON alone (no NIC read): enough to find its JIT policy and requests."""
    parts = parse_resource_id(vm['id'])
    target = VmTarget(id=vm['id'], name=vm['name'], resource_group=parts['resource_group'],
                      location=vm['location'], tags=dict(vm.get('tags') or {}))
    target.nic_id, target.nic_count = _primary_nic_id(vm)
    return target


def target_from_vm(azure, vm, need_nsg=True):
    """Fill a VmTarget from a VM's wire JSON (one NIC read, plus a subnet read if needed)."""
    target = target_without_network(vm)
    nic_id = target.nic_id
    if not nic_id:
        return target
    nic_parts = parse_resource_id(nic_id)
    nic = wire(azure.network.network_interfaces.get(nic_parts['resource_group'], nic_parts['name'],
                                                    expand='ipConfigurations/publicIPAddress'))
    props = nic.get('properties') or {}
    configs = props.get('ipConfigurations') or []
    config = next((c for c in configs if (c.get('properties') or {}).get('primary')), configs[0] if configs else None)
    if config:
        cprops = config.get('properties') or {}
        target.private_ip = cprops.get('privateIPAddress')
        target.subnet_id = (cprops.get('subnet') or {}).get('id')
        pip = cprops.get('publicIPAddress') or {}
        target.public_ip = (pip.get('properties') or {}).get('ipAddress')
        target.asg_ids = [a['id'] for a in cprops.get('applicationSecurityGroups') or [] if a.get('id')]
    if (props.get('networkSecurityGroup') or {}).get('id'):
        target.nsg_id, target.nsg_scope = props['networkSecurityGroup']['id'], 'nic'
    elif need_nsg:
        with_subnet_nsg(azure, target)
    return target


def with_subnet_nsg(azure, target):
    """When the primary NIC has no NSG of its own, the one on its subnet governs the VM (one more read)."""
    if target.nsg_id or not target.subnet_id or target.subnet_read:
        return target
    target.subnet_read = True
    sp = parse_resource_id(target.subnet_id)
    subnet = wire(azure.network.subnets.get(sp['resource_group'], sp['name'], sp['child_name_1']))
    nsg = (subnet.get('properties') or {}).get('networkSecurityGroup') or {}
    if nsg.get('id'):
        target.nsg_id, target.nsg_scope = nsg['id'], 'subnet'
    return target


def get_vm(azure, resource_group, name):
    from azure.core.exceptions import ResourceNotFoundError as SdkNotFound
    try:
        return wire(azure.compute.virtual_machines.get(resource_group, name))
    except SdkNotFound:
        raise NotFound(f"VM '{name}' was not found in resource group '{resource_group}'.",
                       'Check the name and resource group with `az vm list -o table`.') from None


def resolve_vm(azure, resource_group, name, need_nsg=True):
    return target_from_vm(azure, get_vm(azure, resource_group, name), need_nsg)


def list_vms(azure, resource_group=None):
    """Every VM of a resource group, or of the subscription (one paged list call)."""
    ops = azure.compute.virtual_machines
    pages = ops.list(resource_group) if resource_group else ops.list_all()
    return [wire(vm) for vm in pages]


def require_protectable(target):
    """What JIT needs of a VM before protecting it; each refusal says why and what to do."""
    if not target.nsg_id:
        nic = parse_resource_id(target.nic_id)['name'] if target.nic_id else '<nic>'
        raise NotPossible(
            f"{target.describe()} has no network security group on its primary NIC or its subnet, so there is nothing "
            "to close its ports with. Attach one: "
            f"`az network nic update -g {target.resource_group} -n {nic} --network-security-group <nsg>`.")
    if not target.public_ip:
        raise NotPossible(
            f"{target.describe()} has no public IP address, so its management ports are not reachable from the "
            "internet and JIT has nothing to protect. Reach private VMs through Azure Bastion: "
            "`az network bastion ssh` / `rdp`.")
    if not target.private_ip:
        raise NotPossible(f'{target.describe()} has no private IP address on its primary NIC.')
