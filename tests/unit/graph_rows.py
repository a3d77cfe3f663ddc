# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Resource Graph rows for the fleet's unit tests: a topology built with the stand-in's own builders (which follow
ARM's shapes), then shown as Resource Graph shows `Resources` rows: `type` and `resourceGroup` in lower case, the
columns the fleet query projects (`id, name, type, location, resourceGroup, subscriptionId, tags, sku,
properties`), properties as ARM shows them (a NIC's public IP as `{id}` only, subnets inside their VNet row)."""
import copy

from tests.standin import compute, network
from tests.standin.world import World

SUB = '00000000-0000-0000-0000-0000000000a1'
OTHER_SUB = '00000000-0000-0000-0000-0000000000b2'
TYPES = ('microsoft.compute/virtualmachines', 'microsoft.network/networkinterfaces',
         'microsoft.network/publicipaddresses', 'microsoft.network/networksecuritygroups',
         'microsoft.network/virtualnetworks')
TCP = [(22, 'TCP'), (3389, 'TCP')]


def allow(name, priority, source='*', port='22', dest='*', protocol='Tcp', access='Allow', **extra):
    """An inbound rule in wire shape; a list `source` becomes `sourceAddressPrefixes`."""
    props = {'protocol': protocol, 'sourcePortRange': '*', 'destinationAddressPrefix': dest, 'access': access,
             'priority': priority, 'direction': 'Inbound'}
    props['sourceAddressPrefixes' if isinstance(source, list) else 'sourceAddressPrefix'] = source
    props['destinationPortRanges' if isinstance(port, list) else 'destinationPortRange'] = port
    props.update(extra)
    if extra.get('destinationApplicationSecurityGroups'):
        del props['destinationAddressPrefix']
    return {'name': name, 'properties': props}


def deny(name, priority, source='*', port='*', dest='*'):
    return allow(name, priority, source, port, dest, protocol='*', access='Deny')


def ids(sub, rg, kind, name):
    return f'/subscriptions/{sub}/resourceGroups/{rg}/providers/{kind}/{name}'


class Fleet:
    """A small estate across subscriptions; `rows()` is what the fleet query would answer."""

    def __init__(self):
        self.world = World(subscription_id=SUB)

    def nsg(self, rg, name, rules=(), sub=SUB):
        return network.create_nsg(self.world, sub, rg, name, rules=rules)['id']

    def asg(self, rg, name, sub=SUB):
        return network.create_asg(self.world, sub, rg, name)['id']

    def vnet(self, rg, subnet_nsg=None, sub=SUB, name='vnet'):
        """A VNet with subnet `default` (10.0.0.0/24) carrying `subnet_nsg`; returns the subnet's id."""
        vnet = network.create_vnet(self.world, sub, rg, name, subnets=(('default', '10.0.0.0/24', subnet_nsg),))
        return vnet['properties']['subnets'][0]['id']

    def public_ip(self, rg, name, address, sku='Standard', sub=SUB):
        pip = network.create_public_ip(self.world, sub, rg, name, address)
        pip['sku'] = {'name': sku, 'tier': 'Regional'}
        if sku is None:
            del pip['sku']
        return pip['id']

    def vm(self, rg, name, subnet_id, private_ip='10.0.0.4', public_ip='20.50.0.4', sku='Standard', nic_nsg=None,
           sub=SUB, tags=None):
        """A VM with one NIC in `subnet_id` (NSG `nic_nsg`), with a public IP of `sku` when `public_ip`."""
        pip_id = self.public_ip(rg, name + '-ip', public_ip, sku, sub) if public_ip else None
        nic = network.create_nic(self.world, sub, rg, name + '-nic', subnet_id, private_ip, pip_id, nic_nsg)
        return compute.create_vm(self.world, sub, rg, name, [nic['id']], tags=tags)['id']

    def nic_of(self, vm_id, index=0):
        return self.world.get(self.world.get(vm_id)['properties']['networkProfile']['networkInterfaces'][index]['id'])

    def rows(self, without=(), lower_ids=False):
        """Resource Graph rows of the estate, less the resources whose ids are in `without`; `lower_ids`: every id
        (of rows, not of the references inside them) in lower case, as Resource Graph sometimes shows them."""
        gone = {i.lower() for i in without}
        rows = []
        for resource in self.world.resources.values():
            kind = resource.get('type', '').lower()
            if kind not in TYPES or resource['id'].lower() in gone:
                continue
            parts = resource['id'].split('/')
            row = {'id': resource['id'].lower() if lower_ids else resource['id'], 'name': resource['name'],
                   'type': kind, 'location': resource.get('location'), 'resourceGroup': parts[4].lower(),
                   'subscriptionId': parts[2], 'tags': copy.deepcopy(resource.get('tags') or {}),
                   'sku': copy.deepcopy(resource.get('sku')), 'properties': copy.deepcopy(resource['properties'])}
            rows.append(row)
        return rows
