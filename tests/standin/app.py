# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Start the stand-in, and build the topologies tests and demos need in one call each."""
import os

# importing registers their routes
from . import aad, arm, authorization, compute, graph, network, security  # noqa: F401
from .server import StandinServer
from .world import World

DEFAULT_LOCATION = 'westeurope'
REQUESTER_ACTIONS = [
    'Microsoft.Compute/virtualMachines/read', 'Microsoft.Network/*/read',
    'Microsoft.Security/locations/jitNetworkAccessPolicies/read',
    'Microsoft.Security/locations/jitNetworkAccessPolicies/initiate/action', 'Microsoft.Security/pricings/read',
    'Microsoft.Resources/subscriptions/resourceGroups/read',
    'Microsoft.Network/networkSecurityGroups/securityRules/write',
    'Microsoft.Network/networkSecurityGroups/securityRules/delete',
]


def make_certificates(directory):
    """A throwaway CA and a server certificate for 127.0.0.1; returns (ca.pem, cert.pem, key.pem)."""
    import trustme
    os.makedirs(directory, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert('127.0.0.1', 'localhost')
    paths = [os.path.join(directory, name) for name in ('ca.pem', 'server.pem', 'server-key.pem')]
    ca.cert_pem.write_to_path(paths[0])
    cert.cert_chain_pems[0].write_to_path(paths[1])
    cert.private_key_pem.write_to_path(paths[2])
    return paths


class Standin:
    """A running stand-in: `.world` is its state, `.base_url` its address, `.ca_path` the CA to trust."""

    def __init__(self, directory, port=0):
        from . import schema
        # Every request body is checked against the published swagger: without the specs the stand-in would be
        # too kind, so it refuses to start.
        for name in schema.SPEC_FILES:
            schema.load(name)
        self.ca_path, cert, key = make_certificates(directory)
        self.world = World()
        self.server = StandinServer(self.world, cert, key, port)
        self.base_url = self.server.base_url
        self.sub = self.world.subscription_id

    def start(self):
        self.server.start()
        return self

    def stop(self):
        self.server.stop()

    # -- topology builders -----------------------------------------------------------------------------
    # Each takes `subscription=` (an id `world.add_subscription` registered); the default is the first subscription.
    def resource_group(self, name, location=DEFAULT_LOCATION, subscription=None):
        rid = arm.rg_id(subscription or self.sub, name)
        if self.world.get(rid) is None:
            self.world.put(rid, {'id': rid, 'name': name, 'type': arm.RG_TYPE, 'location': location, 'tags': {},
                                 'properties': {'provisioningState': 'Succeeded'}})
        return rid

    def nsg(self, rg, name, rules=(), location=DEFAULT_LOCATION, subscription=None):
        self.resource_group(rg, location, subscription)
        return network.create_nsg(self.world, subscription or self.sub, rg, name, location, rules)

    def vnet(self, rg, name, prefix='10.0.0.0/16', subnets=(('default', '10.0.0.0/24', None),),
             location=DEFAULT_LOCATION, subscription=None):
        """A virtual network with `subnets` ((name, prefix, NSG id or None), ...), for VMs to share
        (`vm(..., subnet_id=...)`). Returns the VNet."""
        self.resource_group(rg, location, subscription)
        return network.create_vnet(self.world, subscription or self.sub, rg, name, prefix, subnets, location)

    def vm(self, rg, name, nsg='nic', public_ip=True, nics=1, location=DEFAULT_LOCATION, private_ip=None,
           nsg_name=None, rules=(), subscription=None, subnet_id=None):
        """A VM with its own VNet/subnet (or in the subnet `subnet_id`), NIC(s), public IP and NSG.

        nsg: 'nic' (NSG on the primary NIC), 'subnet' (on its subnet only), 'both', or None. With `subnet_id` and
        nsg 'subnet' or 'both', the NSG is attached to that (shared) subnet, replacing any NSG it had.
        Returns a dict of the ids and addresses created.
        """
        world, sub = self.world, subscription or self.sub
        self.resource_group(rg, location, sub)
        nsg_body = None
        if nsg:
            nsg_body = self.nsg(rg, nsg_name or name + '-nsg', rules, location, sub) if not (
                nsg_name and world.get(self._nsg_id(rg, nsg_name, sub))) else world.get(self._nsg_id(rg, nsg_name, sub))
        index = len(world.of_type(compute.VM_TYPE)) + 4
        private_ip = private_ip or ('10.0.0.{}'.format(index) if index < 250 else
                                    '10.0.{}.{}'.format(index // 250, index % 250))
        subnet_nsg = nsg_body['id'] if nsg in ('subnet', 'both') else None
        if subnet_id is None:
            vnet = network.create_vnet(world, sub, rg, name + '-vnet',
                                       subnets=(('default', '10.0.0.0/24', subnet_nsg),), location=location)
            subnet_id = vnet['properties']['subnets'][0]['id']
        elif subnet_nsg:
            network.find_subnet(world, subnet_id)['properties']['networkSecurityGroup'] = {'id': subnet_nsg}
        pip = network.create_public_ip(world, sub, rg, name + '-ip', '20.50.{}.{}'.format(index // 250, index % 250),
                                       location) if public_ip else None
        nic_ids = []
        for i in range(nics):
            nic = network.create_nic(world, sub, rg, '{}-nic{}'.format(name, i), subnet_id,
                                     private_ip if i == 0 else '10.0.0.{}'.format(200 + index % 50 + i),
                                     pip['id'] if (pip and i == 0) else None,
                                     nsg_body['id'] if (nsg_body and nsg in ('nic', 'both') and i == 0) else None,
                                     location, primary=(i == 0))
            nic_ids.append(nic['id'])
        vm = compute.create_vm(world, sub, rg, name, nic_ids, location)
        return {'id': vm['id'], 'name': name, 'resource_group': rg, 'nsg_id': nsg_body and nsg_body['id'],
                'private_ip': private_ip, 'public_ip': pip and pip['properties']['ipAddress'],
                'nic_ids': nic_ids, 'subnet_id': subnet_id, 'subscription': sub}

    def _nsg_id(self, rg, name, subscription=None):
        return '/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/networkSecurityGroups/{}'.format(
            subscription or self.sub, rg, name)

    def add_test_identities(self):
        """The identities tests and demos sign in as, each with its own public IP: admin (Owner), requester (the
        actions a JIT requester needs), reader (Reader) and function-app (the cleanup runner's managed identity);
        for approval on PIM: pim-requester, approver and group-approver (Reader each; group-approver is a member of
        the group `jit-approvers`, whose object id is `world.groups_by_name['jit-approvers']`)."""
        from .world import RoleDefinition
        world, scope = self.world, '/subscriptions/' + self.sub
        world.roles['jit requester'] = RoleDefinition('JIT Requester', REQUESTER_ACTIONS)
        world.add_identity('admin', [('Owner', scope)], public_ip='198.51.100.10')
        world.add_identity('requester', [('JIT Requester', scope)], public_ip='198.51.100.20')
        world.add_identity('reader', [('Reader', scope)], public_ip='198.51.100.30')
        world.add_identity('function-app', [('Network Contributor', scope)], public_ip='198.51.100.40')
        world.add_identity('pim-requester', [('Reader', scope)], public_ip='198.51.100.50')
        world.add_identity('approver', [('Reader', scope)], public_ip='198.51.100.51')
        group_approver = world.add_identity('group-approver', [('Reader', scope)], public_ip='198.51.100.52')
        world.add_group('jit-approvers', [group_approver])
        world.pim_licensed = True

    def nsg_rules(self, nsg_id):
        """An NSG's rules as stored, once every rule write Defender has queued has landed (security.settle)."""
        security.settle(self.world)
        return self.world.get(nsg_id)['properties']['securityRules']
