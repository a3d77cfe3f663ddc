# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Which VMs a command is about, and what JIT needs to know of each: primary NIC, private and public IP,
and the NSG that governs it.

One VM costs two ARM reads: the VM, then its primary NIC with `$expand=ipConfigurations/publicIPAddress`,
which carries the public IP's address inline. Only when the NIC has no NSG of its own (and the caller
needs the NSG) does the subnet cost a third read.

JIT guards one door of a VM: the primary IP configuration of its primary NIC (Defender does the same). Every other
IP configuration with a public IP, on the primary NIC or another, is a door JIT does not close (`public_doors`):
`enable` refuses a VM whose other door lets any source reach a protected port today, and warns by name about the
others; `show` reports them. Finding them costs nothing more for a VM with one NIC (the primary NIC's other IP
configurations come with its read), and one read per other NIC (the VM API cannot expand NICs), plus one per NSG
and subnet on those doors' paths, only for `enable` and `show`. Which rule decides for a door is `nsg/reach.py`'s,
shared with the fleet's exposure report (`fleet/exposure.py`), which builds the same VmTarget from Resource Graph rows
(`fleet/estate.py`).
"""
from dataclasses import dataclass, field

from azure.mgmt.core.tools import parse_resource_id

from azext_jit.errors import NotFound, NotPossible
from azext_jit.log import get_logger

logger = get_logger(__name__)


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
    other_nic_ids: list = field(default_factory=list)   # the VM's NICs other than the primary one
    doors: list = None         # PublicDoors of the primary NIC read so far (other NICs: `public_doors`)
    doors_judged: bool = False  # whether `public_doors` has read every NIC and judged every door
    # other NICs whose doors are not in `doors` yet (None: all of `other_nic_ids`; a target built from Resource Graph
    # rows, fleet/estate.py, already holds the rest)
    unread_nic_ids: list = None

    def describe(self):
        return f"VM '{self.name}' in resource group '{self.resource_group}'"


@dataclass
class PublicDoor:  # pylint: disable=too-many-instance-attributes  # one field per fact of an IP configuration
    """An IP configuration of the VM with a public IP that JIT does not guard."""
    nic_id: str
    ip_config: str
    private_ip: str
    public_ip: str
    public_ip_sku: str = None   # 'Basic' or 'Standard' (None: not said)
    nic_nsg_id: str = None
    subnet_id: str = None
    asg_ids: list = None
    open_ports: list = field(default_factory=list)   # [(number, protocol)] any source reaches today
    opened_by: list = field(default_factory=list)    # 'nsg/rule' (or why) for each reason they are open
    narrow: list = field(default_factory=list)       # 'nsg/rule' of narrower allow rules reaching a protected port
    public_ip_id: str = None   # the public IP resource's id

    @property
    def nic_name(self):
        return parse_resource_id(self.nic_id)['name'] if self.nic_id else '<nic>'

    def describe(self):
        return f"NIC {self.nic_name} (IP configuration {self.ip_config}, public IP {self.public_ip or 'unknown'})"

    def to_dict(self):
        return {'nic': self.nic_name, 'ipConfiguration': self.ip_config, 'privateIp': self.private_ip,
                'publicIp': self.public_ip, 'nsg': self.nic_nsg_id,
                'openPorts': [f'{n}/{p}' for n, p in self.open_ports], 'openedBy': list(self.opened_by)}


def _nic_refs(vm):
    nics = ((vm.get('properties') or {}).get('networkProfile') or {}).get('networkInterfaces') or []
    if not nics:
        return None, []
    primary = next((n for n in nics if (n.get('properties') or {}).get('primary')), nics[0])
    return primary['id'], [n['id'] for n in nics if n is not primary and n.get('id')]


def doors_of_nic(nic, skip=None):
    """PublicDoors of a NIC's (expanded) IP configurations with a public IP, except the configuration `skip`."""
    props = nic.get('properties') or {}
    nsg_id = (props.get('networkSecurityGroup') or {}).get('id')
    doors = []
    for config in props.get('ipConfigurations') or []:
        cprops = config.get('properties') or {}
        pip = cprops.get('publicIPAddress') or {}
        if config is skip or not pip:
            continue
        doors.append(PublicDoor(nic['id'], config.get('name'), cprops.get('privateIPAddress'),
                                (pip.get('properties') or {}).get('ipAddress'), (pip.get('sku') or {}).get('name'),
                                nsg_id, (cprops.get('subnet') or {}).get('id'),
                                [a['id'] for a in cprops.get('applicationSecurityGroups') or [] if a.get('id')],
                                public_ip_id=pip.get('id')))
    return doors


def primary_ip_config(nic):
    """The NIC's primary IP configuration (the first one when none says so), or None."""
    configs = (nic.get('properties') or {}).get('ipConfigurations') or []
    return next((c for c in configs if (c.get('properties') or {}).get('primary')), configs[0] if configs else None)


def fill_from_primary_nic(target, nic):
    """What the VM's primary NIC (expanded: `ipConfigurations/publicIPAddress` inline) says: private and public IP,
    subnet, ASGs, the other doors on it, and the NIC's own NSG (`nsg_scope` 'nic')."""
    props = nic.get('properties') or {}
    config = primary_ip_config(nic)
    if config:
        cprops = config.get('properties') or {}
        target.private_ip = cprops.get('privateIPAddress')
        target.subnet_id = (cprops.get('subnet') or {}).get('id')
        pip = cprops.get('publicIPAddress') or {}
        target.public_ip = (pip.get('properties') or {}).get('ipAddress')
        target.asg_ids = [a['id'] for a in cprops.get('applicationSecurityGroups') or [] if a.get('id')]
    target.doors = doors_of_nic(nic, skip=config)
    if (props.get('networkSecurityGroup') or {}).get('id'):
        target.nsg_id, target.nsg_scope = props['networkSecurityGroup']['id'], 'nic'
    return target


def target_without_network(vm):
    """A VmTarget from a VM's wire JSON alone (no NIC read): enough to find its JIT policy and requests."""
    parts = parse_resource_id(vm['id'])
    target = VmTarget(id=vm['id'], name=vm['name'], resource_group=parts['resource_group'],
                      location=vm['location'], tags=dict(vm.get('tags') or {}))
    target.nic_id, target.other_nic_ids = _nic_refs(vm)
    target.nic_count = (1 + len(target.other_nic_ids)) if target.nic_id else 0
    return target


def target_from_vm(azure, vm, need_nsg=True):
    """Fill a VmTarget from a VM's wire JSON (one NIC read, plus a subnet read if needed)."""
    target = target_without_network(vm)
    nic_id = target.nic_id
    if not nic_id:
        return target
    nic_parts = parse_resource_id(nic_id)
    nic = azure.network.network_interfaces.get(nic_parts['resource_group'], nic_parts['name'],
                                               expand='ipConfigurations/publicIPAddress')
    fill_from_primary_nic(target, nic)
    if not target.nsg_id and need_nsg:
        with_subnet_nsg(azure, target)
    return target


def with_subnet_nsg(azure, target):
    """When the primary NIC has no NSG of its own, the one on its subnet governs the VM (one more read)."""
    if target.nsg_id or not target.subnet_id or target.subnet_read:
        return target
    target.subnet_read = True
    sp = parse_resource_id(target.subnet_id)
    subnet = azure.network.subnets.get(sp['resource_group'], sp['name'], sp['child_name_1'])
    nsg = (subnet.get('properties') or {}).get('networkSecurityGroup') or {}
    if nsg.get('id'):
        target.nsg_id, target.nsg_scope = nsg['id'], 'subnet'
    return target


def get_vm(azure, resource_group, name):
    from azure.core.exceptions import ResourceNotFoundError as SdkNotFound
    try:
        return azure.compute.virtual_machines.get(resource_group, name)
    except SdkNotFound:
        raise NotFound(f"VM '{name}' was not found in resource group '{resource_group}'.",
                       'Check the name and resource group with `az vm list -o table`.') from None


def resolve_vm(azure, resource_group, name, need_nsg=True):
    return target_from_vm(azure, get_vm(azure, resource_group, name), need_nsg)


def list_vms(azure, resource_group=None):
    """Every VM of a resource group, or of the subscription (one paged list call)."""
    ops = azure.compute.virtual_machines
    return ops.list(resource_group) if resource_group else ops.list_all()


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


# -- doors JIT does not guard ------------------------------------------------------------------------------------
def public_doors(azure, target, ports, gone=frozenset()):
    """Every IP configuration of the VM with a public IP other than the one JIT guards, each with the protected
    `ports` [(number, protocol)] that any source reaches through it today and the rules that let it in (`gone`:
    (NSG id, rule name) pairs, lower case, of rules about to be removed)."""
    if target.doors is None:   # a VM read without its network: nothing known, nothing claimed
        return []
    if target.doors_judged:
        return target.doors
    for nic_id in target.other_nic_ids if target.unread_nic_ids is None else target.unread_nic_ids:
        parts = parse_resource_id(nic_id)
        nic = azure.network.network_interfaces.get(parts['resource_group'], parts['name'],
                                                   expand='ipConfigurations/publicIPAddress')
        target.doors += doors_of_nic(nic)
    subnets = {target.subnet_id.lower(): target.nsg_id} if target.subnet_id and target.nsg_scope == 'subnet' else {}
    for door in target.doors:
        _judge_door(azure, door, ports, subnets, gone)
    target.doors_judged = True
    return target.doors


def _subnet_nsg_id(azure, subnet_id, subnets):
    if not subnet_id:
        return None
    key = subnet_id.lower()
    if key not in subnets:
        sp = parse_resource_id(subnet_id)
        subnet = azure.network.subnets.get(sp['resource_group'], sp['name'], sp['child_name_1'])
        subnets[key] = ((subnet.get('properties') or {}).get('networkSecurityGroup') or {}).get('id')
    return subnets[key]


def _judge_door(azure, door, ports, subnets, gone):
    """Which protected ports any source reaches through `door`: inbound traffic meets the subnet's NSG, then the
    NIC's, and both must let it in; with neither, a Basic public IP is open and a Standard one closed."""
    from azext_jit.nsg import client as nsg_client
    from azext_jit.nsg.reach import first_deciding_rule, rule_label
    from azext_jit.nsg.rules import rule_allows_any_source
    nsg_ids = [i for i in (_subnet_nsg_id(azure, door.subnet_id, subnets), door.nic_nsg_id) if i]
    nsgs = [nsg_client.read_nsg(azure, i) for i in dict.fromkeys(nsg_ids)]
    for number, protocol in ports:
        if not nsgs:
            if (door.public_ip_sku or '').lower() != 'standard':
                door.open_ports.append((number, protocol))
                door.opened_by.append('no network security group on its NIC or subnet, and a '
                                      f"{door.public_ip_sku or 'Basic'} public IP lets everything in")
            continue
        verdicts = []
        for nsg in nsgs:
            rule, narrow = first_deciding_rule(nsg, number, protocol, door.private_ip, door.asg_ids,
                                               rule_allows_any_source, gone)
            door.narrow += [label for label in narrow if label not in door.narrow]
            verdicts.append(rule_label(nsg, rule) if rule else None)
        if all(verdicts):
            door.open_ports.append((number, protocol))
            door.opened_by += [v for v in verdicts if v not in door.opened_by]


def require_closed_doors(azure, target, policy, removing=(), removing_from=None):
    """Refuse (NotPossible) to protect a VM whose other public door lets any source reach a protected port once
    `removing` (the rules `enable` removes from the NSG `removing_from`) are gone: JIT would say "protected" while
    the port stays open there. Warn by name about every other public door."""
    gone = {((removing_from or '').lower(), r['name'].lower()) for r in removing or ()}
    doors = public_doors(azure, target, [(p.number, p.protocol) for p in policy.ports], gone)
    open_doors = [d for d in doors if d.open_ports]
    if open_doors:
        door = open_doors[0]
        raise NotPossible(
            f"{target.describe()} cannot be protected: {door.describe()} lets any source reach "
            f"{', '.join(f'{n}/{p}' for n, p in door.open_ports)} ({'; '.join(door.opened_by)}), and JIT guards only "
            "the primary IP configuration of the primary NIC"
            + (f"; {len(open_doors) - 1} more door(s) are open too" if len(open_doors) > 1 else '') + '.',
            f"Close that door first: delete or narrow the rule (`az network nsg rule delete -g <group> --nsg-name "
            f"<nsg> -n <rule>`), or take the public IP off it (`az network nic ip-config update -g "
            f"{parse_resource_id(door.nic_id)['resource_group']} --nic-name {door.nic_name} -n {door.ip_config} "
            "--remove publicIpAddress`), then run enable again.")
    for door in doors:
        logger.warning('%s', door_warning(target, door))


def door_warning(target, door):
    """One line about a public door JIT does not guard."""
    if door.open_ports:
        return (f"{door.describe()} of {target.describe()} is not protected by JIT: any source reaches "
                f"{', '.join(f'{n}/{p}' for n, p in door.open_ports)} through it ({'; '.join(door.opened_by)}).")
    narrow = f" Narrower rules reach a protected port through it: {', '.join(door.narrow)}." if door.narrow else ''
    return (f"{door.describe()} of {target.describe()} is not protected by JIT: no rule lets any source reach a "
            f"protected port through it today, but JIT does not watch it.{narrow}")
