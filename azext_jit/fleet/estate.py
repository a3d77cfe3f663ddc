# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The VMs of a fleet and the network around them, from one Resource Graph answer, with no further call.

`Estate.from_rows(rows)` takes the rows of the fleet query (`fleet/queries.py`): VMs, NICs, public IPs, NSGs and
virtual networks, each as Resource Graph shows it (`id`, `name`, `type` in lower case, `resourceGroup`,
`subscriptionId`, `tags`, `sku`, `properties` as ARM shows them). References between them (a VM's NICs, a NIC's
public IP, subnet and NSG, a subnet's NSG) are ARM ids whose case may differ from the referenced row's `id`: every
id is compared case-insensitively. Subnets are found inside their virtual network's row (`properties.subnets`).

What is not in the rows is unknown, never assumed. A resource can be missing because it lives in a subscription
outside the query's scope (a NIC in one subscription may use a subnet of another), because the caller may not read
it, or because Resource Graph has not caught up with ARM yet. Then:

- a NIC missing: the VM's doors through it are unknown (`unread_nics(vm)`; the target's `unread_nic_ids`). When it
  is the primary NIC, the target has no network at all (`doors` None: nothing known, nothing claimed);
- a public IP missing: the door is there (the NIC names a public IP) but its address and SKU are unknown
  (`public_ip` and `public_ip_sku` None on the door; `public_ip(id)` None tells "missing" from "not said");
- a subnet missing (its virtual network is not in the rows): whether it has an NSG is unknown: `subnet(id)` is
  None, `subnet_nsg_id` None, and the target's `subnet_read` stays False, so code that may call ARM still reads it;
- an NSG missing: `nsg(id)` is None; its rules are unknown.

What follows from an unknown for exposure is `fleet/exposure.py`'s business: a door is called open only when the
rules seen say so.
"""

VM_TYPE = 'microsoft.compute/virtualmachines'
NIC_TYPE = 'microsoft.network/networkinterfaces'
PUBLIC_IP_TYPE = 'microsoft.network/publicipaddresses'
NSG_TYPE = 'microsoft.network/networksecuritygroups'
VNET_TYPE = 'microsoft.network/virtualnetworks'
TYPES = (VM_TYPE, NIC_TYPE, PUBLIC_IP_TYPE, NSG_TYPE, VNET_TYPE)


def key(resource_id):
    """An ARM id as compared: lower case, no trailing slash ('' for none)."""
    return str(resource_id or '').strip().rstrip('/').lower()


def _text(value):
    return str(value or '').lower()


def sort_key(row):
    """Rows in a stable, human order: subscription, resource group, name (case-insensitive)."""
    parts = str(row.get('id') or '').split('/')
    group = parts[4] if len(parts) > 4 else row.get('resourceGroup')
    return (_text(row.get('subscriptionId')), _text(group), _text(row.get('name')), key(row.get('id')))


class Estate:
    """VMs, NICs, public IPs, NSGs and subnets by id (case-insensitive), from Resource Graph rows."""

    def __init__(self):
        self._rows = {kind: {} for kind in TYPES}
        self._subnets = {}

    @classmethod
    def from_rows(cls, rows):
        """An Estate of the rows of the types it knows; other rows are ignored, and a row seen twice (a page answered
        twice) counts once (the first)."""
        estate = cls()
        for row in rows or ():
            kind = _text((row or {}).get('type'))
            if kind in estate._rows and row.get('id'):
                estate._rows[kind].setdefault(key(row['id']), row)
        for vnet in estate._rows[VNET_TYPE].values():
            for subnet in (vnet.get('properties') or {}).get('subnets') or ():
                if isinstance(subnet, dict) and subnet.get('id'):
                    estate._subnets.setdefault(key(subnet['id']), subnet)
        return estate

    # -- lookups (None: not in the rows) ------------------------------------------------------------------------
    def vms(self):
        """Every VM row (a wire dict with `subscriptionId`), sorted by subscription, resource group and name."""
        return sorted(self._rows[VM_TYPE].values(), key=sort_key)

    def vm(self, resource_id):
        return self._rows[VM_TYPE].get(key(resource_id))

    def nic(self, resource_id):
        return self._rows[NIC_TYPE].get(key(resource_id))

    def public_ip(self, resource_id):
        return self._rows[PUBLIC_IP_TYPE].get(key(resource_id))

    def nsg(self, resource_id):
        return self._rows[NSG_TYPE].get(key(resource_id))

    def nsgs(self):
        """Every NSG row, sorted by subscription, resource group and name."""
        return sorted(self._rows[NSG_TYPE].values(), key=sort_key)

    def subnet(self, subnet_id):
        """The subnet as its virtual network's row carries it, or None when that row is not here."""
        return self._subnets.get(key(subnet_id))

    def subnet_nsg_id(self, subnet_id):
        """The id of the NSG attached to the subnet; None when it has none, or when the subnet is unknown (tell the
        two apart with `subnet`)."""
        return (((self.subnet(subnet_id) or {}).get('properties') or {}).get('networkSecurityGroup') or {}).get('id')

    def subscriptions(self):
        """The subscription ids of the VMs, sorted (lower case)."""
        return sorted({_text(vm.get('subscriptionId')) for vm in self._rows[VM_TYPE].values()
                       if vm.get('subscriptionId')})

    # -- a VM as JIT sees it ----------------------------------------------------------------------------------
    def expanded_nic(self, nic_id):
        """The NIC row with each IP configuration's public IP inline, as ARM's `$expand=ipConfigurations/
        publicIPAddress` shows it (a public IP missing from the rows stays `{id}` only); None when the NIC is
        not in the rows. The row itself is not changed."""
        nic = self.nic(nic_id)
        if nic is None:
            return None
        props = dict(nic.get('properties') or {})
        configs = []
        for config in props.get('ipConfigurations') or ():
            cprops = dict((config or {}).get('properties') or {})
            ref = cprops.get('publicIPAddress') or {}
            if ref.get('id') and self.public_ip(ref['id']) is not None:
                cprops['publicIPAddress'] = self.public_ip(ref['id'])
            configs.append(dict(config or {}, properties=cprops))
        props['ipConfigurations'] = configs
        return dict(nic, properties=props)

    def unread_nics(self, vm):
        """Ids of the VM's NICs that are not in the rows (their doors are unknown)."""
        from azext_jit.targets import target_without_network
        target = target_without_network(vm)
        return [i for i in ([target.nic_id] if target.nic_id else []) + target.other_nic_ids if self.nic(i) is None]

    def target(self, vm):
        """A `targets.VmTarget` filled as `targets.target_from_vm` fills it (primary NIC's private and public IP,
        subnet, ASGs, governing NSG and `nsg_scope`), with `doors` holding the public doors of every NIC known here
        (but the guarded one) and `doors_judged` False, without any call. NICs not in the rows are left in
        `unread_nic_ids`; a primary NIC not in the rows leaves the target without network (`doors` None)."""
        from azext_jit.targets import doors_of_nic, fill_from_primary_nic, target_without_network
        target = target_without_network(vm)
        nic = self.expanded_nic(target.nic_id) if target.nic_id else None
        if nic is None:
            target.unread_nic_ids = list(target.other_nic_ids)
            return target
        fill_from_primary_nic(target, nic)
        if not target.nsg_id and target.subnet_id and self.subnet(target.subnet_id) is not None:
            target.subnet_read = True
            nsg_id = self.subnet_nsg_id(target.subnet_id)
            if nsg_id:
                target.nsg_id, target.nsg_scope = nsg_id, 'subnet'
        target.unread_nic_ids = []
        for nic_id in target.other_nic_ids:
            other = self.expanded_nic(nic_id)
            if other is None:
                target.unread_nic_ids.append(nic_id)
            else:
                target.doors += doors_of_nic(other)
        return target

    def doors(self, vm):
        """`[(PublicDoor, guarded)]`: every IP configuration with a public IP on every NIC of the VM known here,
        `guarded` True for the one JIT guards (the primary IP configuration of the primary NIC); primary NIC first,
        then the others in the VM's order."""
        from azext_jit.targets import doors_of_nic, primary_ip_config, target_without_network
        target = target_without_network(vm)
        found = []
        for nic_id in ([target.nic_id] if target.nic_id else []) + target.other_nic_ids:
            nic = self.expanded_nic(nic_id)
            if nic is None:
                continue
            guarded_config = _text((primary_ip_config(nic) or {}).get('name')) if nic_id == target.nic_id else None
            found += [(door, _text(door.ip_config) == guarded_config) for door in doors_of_nic(nic)]
        return found
