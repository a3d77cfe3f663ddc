# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Microsoft.Compute: virtual machines, as much of them as JIT needs (identity, location, NICs, tags)."""
import copy
import uuid

from .arm import check_tags, require_group
from .server import ArmError, Response, not_found, paged, route

VM_TYPE = 'Microsoft.Compute/virtualMachines'
VMS = '/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Compute/virtualMachines'


def create_vm(world, sub, rg, name, nic_ids, location='westeurope', os_type='Linux', tags=None):
    """A VM whose first NIC is primary (Azure marks exactly one primary NIC when there are several)."""
    vm_id = '/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines/{}'.format(sub, rg, name)
    nics = [{'id': nic_id, 'properties': {'primary': i == 0}} for i, nic_id in enumerate(nic_ids)]
    vm = {'name': name, 'id': vm_id, 'type': VM_TYPE, 'location': location, 'tags': dict(tags or {}),
          'properties': {'vmId': str(uuid.uuid4()), 'provisioningState': 'Succeeded',
                         'hardwareProfile': {'vmSize': 'Standard_B2s'},
                         'storageProfile': {'osDisk': {'osType': os_type, 'name': name + '_OsDisk', 'createOption':
                                                       'FromImage', 'caching': 'ReadWrite',
                                                       'managedDisk': {'storageAccountType': 'Premium_LRS'}}},
                         'osProfile': {'computerName': name, 'adminUsername': 'azureuser'},
                         'networkProfile': {'networkInterfaces': nics}},
          'etag': '"{}"'.format(1)}
    return world.put(vm_id, vm)


def _vm(req):
    require_group(req)
    vm = req.world.get('{}/{}'.format(VMS.format(**req.params), req.params['vm']))
    if vm is None:
        raise not_found(VM_TYPE, req.params['vm'], req.params['resource_group'])
    return vm


@route('GET', VMS + '/{vm}', action='Microsoft.Compute/virtualMachines/read')
def get_vm(req):
    return Response(200, copy.deepcopy(_vm(req)))


@route('GET', VMS, action='Microsoft.Compute/virtualMachines/read')
def list_vms(req):
    require_group(req)
    return paged(req, [copy.deepcopy(v) for v in req.world.of_type(VM_TYPE, req.params['subscription'],
                                                                   req.params['resource_group'])])


@route('GET', '/subscriptions/{subscription}/providers/Microsoft.Compute/virtualMachines',
       action='Microsoft.Compute/virtualMachines/read')
def list_all_vms(req):
    return paged(req, [copy.deepcopy(v) for v in req.world.of_type(VM_TYPE, req.params['subscription'])])


@route('PATCH', VMS + '/{vm}', action='Microsoft.Compute/virtualMachines/write')
def patch_vm(req):
    """VirtualMachines_Update, tags only: like every ARM PATCH, `tags` replaces the whole tag set."""
    vm = _vm(req)
    body = req.body or {}
    if set(body) - {'tags'}:
        raise ArmError(400, 'PropertyChangeNotAllowed', 'The stand-in only updates tags of a virtual machine.')
    check_tags(body.get('tags'))
    with req.world.lock:
        vm['tags'] = dict(body.get('tags') or {})
        vm['etag'] = '"{}"'.format(int(vm['etag'].strip('"')) + 1)
        req.world.record_event(req.caller, 'Microsoft.Compute/virtualMachines/write', vm['id'], http_method='PATCH',
                               request_body=req.raw_body)
    return Response(200, copy.deepcopy(vm))


# -- more doors into a VM: a second NIC, a second IP configuration (test topology builders) ----------------------
def add_nic(world, vm_id, name, private_ip, public_ip=None, nsg_id=None, subnet_id=None, sku='Standard'):
    """Attach one more, non-primary NIC to a VM, in the primary NIC's subnet unless `subnet_id` says otherwise,
    with a public IP of `sku` when `public_ip` (an address) is given. Returns the NIC."""
    from . import network
    vm = world.get(vm_id)
    parts = vm_id.split('/')
    sub, rg = parts[2], parts[4]
    refs = vm['properties']['networkProfile']['networkInterfaces']
    primary = world.get(refs[0]['id'])
    subnet_id = subnet_id or primary['properties']['ipConfigurations'][0]['properties']['subnet']['id']
    pip_id = _public_ip(world, sub, rg, name + '-ip', public_ip, vm['location'], sku) if public_ip else None
    nic = network.create_nic(world, sub, rg, name, subnet_id, private_ip, pip_id, nsg_id, vm['location'],
                             primary=False)
    refs.append({'id': nic['id'], 'properties': {'primary': False}})
    return nic


def add_ip_config(world, nic_id, name, private_ip, public_ip=None, sku='Standard'):
    """Give a NIC a secondary IP configuration (in its primary configuration's subnet), with a public IP of `sku`
    when `public_ip` (an address) is given. Returns the IP configuration."""
    nic = world.get(nic_id)
    parts = nic_id.split('/')
    first = nic['properties']['ipConfigurations'][0]
    config = {'name': name, 'id': nic_id + '/ipConfigurations/' + name, 'etag': world.new_etag(),
              'type': 'Microsoft.Network/networkInterfaces/ipConfigurations',
              'properties': {'provisioningState': 'Succeeded', 'privateIPAddress': private_ip,
                             'privateIPAllocationMethod': 'Static', 'privateIPAddressVersion': 'IPv4',
                             'primary': False, 'subnet': dict(first['properties']['subnet'])}}
    if public_ip:
        config['properties']['publicIPAddress'] = {
            'id': _public_ip(world, parts[2], parts[4], nic['name'] + '-' + name + '-ip', public_ip, nic['location'],
                             sku)}
    nic['properties']['ipConfigurations'].append(config)
    return config


def _public_ip(world, sub, rg, name, address, location, sku):
    from . import network
    pip = network.create_public_ip(world, sub, rg, name, address, location)
    pip['sku'] = {'name': sku, 'tier': 'Regional'}
    if sku == 'Basic':
        pip['properties']['publicIPAllocationMethod'] = 'Dynamic'
    return pip['id']


def place_rule(world, nsg_id, rule):
    """Put a rule (`{'name', 'properties'}`) into an NSG as a finished write would leave it, with no Activity Log
    event (as when its event has not reached the log yet). Test set-up, not an API."""
    from . import network
    props = copy.deepcopy(rule['properties'])
    network._normalise_rule(props)  # pylint: disable=protected-access
    stored, _ = network._store_rule(  # pylint: disable=protected-access
        world, world.get(nsg_id), rule['name'], props, 'Succeeded')
    return stored
