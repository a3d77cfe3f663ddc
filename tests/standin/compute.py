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
        req.world.record_event(req.caller, 'Microsoft.Compute/virtualMachines/write', vm['id'], http_method='PATCH')
    return Response(200, copy.deepcopy(vm))
