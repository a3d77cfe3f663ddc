# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Microsoft.Network: virtual networks and subnets, public IPs, network interfaces, and network security
groups with their security rules.

What the stand-in holds to, from the 2024-05-01 swagger and real recordings:
- An NSG GET embeds its `securityRules` and the six `defaultSecurityRules` (65000-65500).
- A rule PUT is a long-running operation: 201 (new) or 200 (update) with provisioningState `Updating`,
  `Azure-AsyncOperation` and `Retry-After`; the poll answers InProgress, then Succeeded. A rule DELETE
  answers 202 with `Azure-AsyncOperation` and `Location`, or 204 when there is nothing to delete.
- Priorities are 100-4096 and unique per direction within one NSG (400 SecurityRuleConflict otherwise).
- Every resource has a weak ETag that changes on each write; writes honour `If-Match` (412
  PreconditionFailed) and `If-None-Match: *`. A rule write also changes its NSG's ETag.
- A NIC GET with `$expand=ipConfigurations/publicIPAddress` embeds the public IP resources.
"""
import copy
import ipaddress
import re
import uuid

from .arm import check_tags, require_group
from .server import ArmError, Response, network_not_found, not_found, paged, poll_operation, route, start_operation

PROVIDER = '/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Network'
NSG_TYPE = 'Microsoft.Network/networkSecurityGroups'
RULE_TYPE = 'Microsoft.Network/networkSecurityGroups/securityRules'
NIC_TYPE = 'Microsoft.Network/networkInterfaces'
PIP_TYPE = 'Microsoft.Network/publicIPAddresses'
VNET_TYPE = 'Microsoft.Network/virtualNetworks'
SUBNET_TYPE = 'Microsoft.Network/virtualNetworks/subnets'

RULE_NAME = re.compile(r'^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$')
PROTOCOLS = ('Tcp', 'Udp', 'Icmp', 'Esp', 'Ah', '*')
SERVICE_TAGS = ('*', 'Internet', 'VirtualNetwork', 'AzureLoadBalancer', 'Any')


def _ids(req, kind, name):
    return '/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/{}/{}'.format(
        req.params['subscription'], req.params['resource_group'], kind, name)


# -- default rules every NSG has ------------------------------------------------------------------------
def _default_rules(nsg_id):
    specs = [
        ('AllowVnetInBound', 65000, 'Inbound', 'Allow', 'VirtualNetwork', 'VirtualNetwork',
         'Allow inbound traffic from all VMs in VNET'),
        ('AllowAzureLoadBalancerInBound', 65001, 'Inbound', 'Allow', 'AzureLoadBalancer', '*',
         'Allow inbound traffic from azure load balancer'),
        ('DenyAllInBound', 65500, 'Inbound', 'Deny', '*', '*', 'Deny all inbound traffic'),
        ('AllowVnetOutBound', 65000, 'Outbound', 'Allow', 'VirtualNetwork', 'VirtualNetwork',
         'Allow outbound traffic from all VMs to all VMs in VNET'),
        ('AllowInternetOutBound', 65001, 'Outbound', 'Allow', '*', 'Internet',
         'Allow outbound traffic from all VMs to Internet'),
        ('DenyAllOutBound', 65500, 'Outbound', 'Deny', '*', '*', 'Deny all outbound traffic'),
    ]
    rules = []
    for name, priority, direction, access, src, dst, description in specs:
        rules.append({
            'name': name, 'id': nsg_id + '/defaultSecurityRules/' + name, 'etag': 'W/"{}"'.format(uuid.uuid4()),
            'type': 'Microsoft.Network/networkSecurityGroups/defaultSecurityRules',
            'properties': {'provisioningState': 'Succeeded', 'description': description, 'protocol': '*',
                           'sourcePortRange': '*', 'destinationPortRange': '*', 'sourceAddressPrefix': src,
                           'destinationAddressPrefix': dst, 'access': access, 'priority': priority,
                           'direction': direction, 'sourcePortRanges': [], 'destinationPortRanges': [],
                           'sourceAddressPrefixes': [], 'destinationAddressPrefixes': []}})
    return rules


# -- seeding (tests and the command-line stand-in build their topology with these) ----------------------
def create_nsg(world, sub, rg, name, location='westeurope', rules=()):
    nsg_id = '/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/networkSecurityGroups/{}'.format(
        sub, rg, name)
    nsg = {'name': name, 'id': nsg_id, 'etag': world.new_etag(), 'type': NSG_TYPE, 'location': location, 'tags': {},
           'properties': {'provisioningState': 'Succeeded', 'resourceGuid': str(uuid.uuid4()), 'securityRules': [],
                          'defaultSecurityRules': _default_rules(nsg_id)}}
    world.put(nsg_id, nsg)
    for rule in rules:
        body = copy.deepcopy(rule)
        body.setdefault('properties', {})
        _normalise_rule(body['properties'])
        _store_rule(world, nsg, body['name'], body['properties'], 'Succeeded')
    return nsg


def create_vnet(world, sub, rg, name, prefix='10.0.0.0/16', subnets=(('default', '10.0.0.0/24', None),),
                location='westeurope'):
    vnet_id = '/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/virtualNetworks/{}'.format(sub, rg, name)
    vnet = {'name': name, 'id': vnet_id, 'etag': world.new_etag(), 'type': VNET_TYPE, 'location': location, 'tags': {},
            'properties': {'provisioningState': 'Succeeded', 'addressSpace': {'addressPrefixes': [prefix]},
                           'subnets': []}}
    world.put(vnet_id, vnet)
    for subnet_name, subnet_prefix, nsg_id in subnets:
        subnet = {'name': subnet_name, 'id': vnet_id + '/subnets/' + subnet_name, 'etag': world.new_etag(),
                  'type': SUBNET_TYPE,
                  'properties': {'provisioningState': 'Succeeded', 'addressPrefix': subnet_prefix,
                                 'ipConfigurations': []}}
        if nsg_id:
            subnet['properties']['networkSecurityGroup'] = {'id': nsg_id}
        vnet['properties']['subnets'].append(subnet)
    return vnet


def create_public_ip(world, sub, rg, name, address, location='westeurope'):
    pip_id = '/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/publicIPAddresses/{}'.format(
        sub, rg, name)
    pip = {'name': name, 'id': pip_id, 'etag': world.new_etag(), 'type': PIP_TYPE, 'location': location, 'tags': {},
           'sku': {'name': 'Standard', 'tier': 'Regional'},
           'properties': {'provisioningState': 'Succeeded', 'resourceGuid': str(uuid.uuid4()), 'ipAddress': address,
                          'publicIPAddressVersion': 'IPv4', 'publicIPAllocationMethod': 'Static',
                          'idleTimeoutInMinutes': 4}}
    return world.put(pip_id, pip)


def create_nic(world, sub, rg, name, subnet_id, private_ip, public_ip_id=None, nsg_id=None, location='westeurope',
               primary=True):
    nic_id = '/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/networkInterfaces/{}'.format(
        sub, rg, name)
    ipconfig = {'name': 'ipconfig1', 'id': nic_id + '/ipConfigurations/ipconfig1', 'etag': world.new_etag(),
                'type': 'Microsoft.Network/networkInterfaces/ipConfigurations',
                'properties': {'provisioningState': 'Succeeded', 'privateIPAddress': private_ip,
                               'privateIPAllocationMethod': 'Dynamic', 'privateIPAddressVersion': 'IPv4',
                               'primary': True, 'subnet': {'id': subnet_id}}}
    if public_ip_id:
        ipconfig['properties']['publicIPAddress'] = {'id': public_ip_id}
    nic = {'name': name, 'id': nic_id, 'etag': world.new_etag(), 'type': NIC_TYPE, 'location': location, 'tags': {},
           'properties': {'provisioningState': 'Succeeded', 'resourceGuid': str(uuid.uuid4()),
                          'ipConfigurations': [ipconfig], 'primary': primary, 'enableAcceleratedNetworking': False,
                          'enableIPForwarding': False, 'nicType': 'Standard'}}
    if nsg_id:
        nic['properties']['networkSecurityGroup'] = {'id': nsg_id}
    return world.put(nic_id, nic)


# -- rule validation (what the Network RP refuses beyond the swagger) -----------------------------------
def _normalise_rule(props):
    """Fill what the Network RP fills in on write (empty plural lists, sourcePortRange)."""
    for plural in ('sourcePortRanges', 'destinationPortRanges', 'sourceAddressPrefixes', 'destinationAddressPrefixes'):
        props.setdefault(plural, [])


def _check_port_range(text):
    if text == '*':
        return True
    m = re.fullmatch(r'(\d{1,5})(?:-(\d{1,5}))?', text or '')
    if not m:
        return False
    low, high = int(m.group(1)), int(m.group(2) or m.group(1))
    return 0 <= low <= high <= 65535


def _check_prefix(text):
    if text in SERVICE_TAGS or re.fullmatch(r'[A-Za-z][A-Za-z0-9.]*', text or ''):
        return True  # service tags (Internet, VirtualNetwork, Storage.WestEurope, ...)
    try:
        ipaddress.ip_network(text, strict=False)
        return True
    except ValueError:
        return False


def validate_rule(nsg, name, props):
    """The Network RP's semantic checks on one rule, in the order it reports them."""
    if not RULE_NAME.match(name):
        raise ArmError(400, 'InvalidResourceName', "Resource name {} is invalid. The name can be up to 80 characters "
                                                   "long. It must begin with a word character, and it must end with a "
                                                   "word character or with '_'. The name may contain word characters "
                                                   "or '.', '-', '_'.".format(name), network_style=False)
    rid = nsg['id'] + '/securityRules/' + name
    for field in ('protocol', 'access', 'direction'):
        if field not in props:
            raise ArmError(400, 'SecurityRuleParameterMissing',
                           'Security rule {} has no {} specified.'.format(rid, field))
    if props['protocol'] not in PROTOCOLS:
        raise ArmError(400, 'SecurityRuleInvalidProtocol', "Security rule has invalid Protocol. Value provided: {}. "
                                                           "Allowed values: {}.".format(
                                                               props['protocol'], ', '.join(PROTOCOLS)))
    priority = props.get('priority')
    if not isinstance(priority, int) or not 100 <= priority <= 4096:
        raise ArmError(400, 'SecurityRuleInvalidPriority', 'Security rule has invalid Priority. Value provided: {}. '
                                                           'Allowed range 100-4096.'.format(priority))
    desc = props.get('description')
    if desc is not None and len(desc) > 140:
        # Azure's exact error code for this is unconfirmed; the limit itself is documented.
        raise ArmError(400, 'SecurityRuleDescriptionTooLong',
                       'Security rule description exceeds the maximum length of 140 characters.')
    for single, plural in (('sourceAddressPrefix', 'sourceAddressPrefixes'),
                           ('destinationAddressPrefix', 'destinationAddressPrefixes'),
                           ('sourcePortRange', 'sourcePortRanges'),
                           ('destinationPortRange', 'destinationPortRanges')):
        if props.get(single) and props.get(plural):
            raise ArmError(400, 'SecurityRuleParameterContainsMultipleValues',
                           'Security rule {} cannot have both {} and {} specified.'.format(rid, single, plural))
        values = [props[single]] if props.get(single) else list(props.get(plural) or [])
        if not values and not (single == 'sourceAddressPrefix' and props.get('sourceApplicationSecurityGroups')) and \
                not (single == 'destinationAddressPrefix' and props.get('destinationApplicationSecurityGroups')):
            raise ArmError(400, 'SecurityRuleParameterMissing', 'Security rule {} has no {} specified.'.format(
                rid, single))
        check = _check_port_range if 'Port' in single else _check_prefix
        for value in values:
            if not check(value):
                code = 'SecurityRuleInvalidPortRange' if 'Port' in single else 'SecurityRuleInvalidAddressPrefix'
                raise ArmError(400, code, 'Security rule has invalid {}. Value provided: {}.'.format(single, value))
    for other in nsg['properties']['securityRules']:
        if other['name'].lower() == name.lower():
            continue
        op = other['properties']
        if op['priority'] == priority and op['direction'].lower() == props['direction'].lower():
            raise ArmError(400, 'SecurityRuleConflict',
                           'Security rule {} conflicts with rule {}. Rules cannot have the same Priority and '
                           'Direction. To learn more, see aka.ms/nsgrules.'.format(name, other['name']))


def _store_rule(world, nsg, name, props, state):
    """Insert or replace one rule inside its NSG; returns (rule, created)."""
    rules = nsg['properties']['securityRules']
    existing = next((r for r in rules if r['name'].lower() == name.lower()), None)
    rule = {'name': name, 'id': nsg['id'] + '/securityRules/' + name, 'etag': world.new_etag(), 'type': RULE_TYPE,
            'properties': dict(props, provisioningState=state)}
    if existing is not None:
        rules[rules.index(existing)] = rule
    else:
        rules.append(rule)
    nsg['etag'] = world.new_etag()
    return rule, existing is None


def _check_preconditions(req, current_etag, exists):
    """If-Match / If-None-Match, as the Network RP answers them."""
    if_match = req.headers.get('If-Match')
    if if_match and if_match != '*' and if_match != current_etag:
        raise ArmError(412, 'PreconditionFailed', 'Precondition failed.', details=[{
            'code': 'PreconditionFailedEtagMismatch',
            'message': 'Etag provided in if-match header {} does not match etag {} of resource {}.'.format(
                if_match, current_etag, req.path)}])
    if if_match == '*' and not exists:
        raise ArmError(412, 'PreconditionFailed', 'Precondition failed.')
    if req.headers.get('If-None-Match') == '*' and exists:
        raise ArmError(412, 'PreconditionFailed', 'Precondition failed.', details=[{
            'code': 'PreconditionFailedResourceExists', 'message': 'The resource already exists.'}])


def _defender_catch_up(world):
    """Defender removes expired JIT allow rules on its own schedule: apply that before an NSG is read or written."""
    from . import security  # imported here: security imports this module
    security.expire(world)


def require_nsg(req):
    require_group(req)
    _defender_catch_up(req.world)
    nsg = req.world.get(_ids(req, 'networkSecurityGroups', req.params['nsg']))
    if nsg is None:
        raise not_found(NSG_TYPE, req.params['nsg'], req.params['resource_group'])
    return nsg


# -- network security groups ----------------------------------------------------------------------------
def _nsg_view(world, nsg):
    """An NSG as GET shows it: with back-references to the NICs and subnets it is attached to."""
    view = copy.deepcopy(nsg)
    key = nsg['id'].lower()
    nics = [{'id': n['id']} for n in world.of_type(NIC_TYPE)
            if (n['properties'].get('networkSecurityGroup') or {}).get('id', '').lower() == key]
    subnets = [{'id': s['id']} for v in world.of_type(VNET_TYPE) for s in v['properties']['subnets']
               if (s['properties'].get('networkSecurityGroup') or {}).get('id', '').lower() == key]
    if nics:
        view['properties']['networkInterfaces'] = nics
    if subnets:
        view['properties']['subnets'] = subnets
    return view


@route('GET', PROVIDER + '/networkSecurityGroups/{nsg}', action='Microsoft.Network/networkSecurityGroups/read')
def get_nsg(req):
    nsg = require_nsg(req)
    return Response(200, _nsg_view(req.world, nsg), {'ETag': nsg['etag']})


@route('GET', PROVIDER + '/networkSecurityGroups', action='Microsoft.Network/networkSecurityGroups/read')
def list_nsgs(req):
    require_group(req)
    _defender_catch_up(req.world)
    world = req.world
    return paged(req, [_nsg_view(world, n) for n in world.of_type(NSG_TYPE, req.params['subscription'],
                                                                  req.params['resource_group'])])


@route('GET', '/subscriptions/{subscription}/providers/Microsoft.Network/networkSecurityGroups',
       action='Microsoft.Network/networkSecurityGroups/read')
def list_all_nsgs(req):
    world = req.world
    _defender_catch_up(world)
    return paged(req, [_nsg_view(world, n) for n in world.of_type(NSG_TYPE, req.params['subscription'])])


@route('PUT', PROVIDER + '/networkSecurityGroups/{nsg}', action='Microsoft.Network/networkSecurityGroups/write')
def put_nsg(req):
    """NSG create/update: the body's securityRules become the NSG's whole rule set."""
    require_group(req)
    req.validate('network-nsg', 'NetworkSecurityGroups_CreateOrUpdate')
    _defender_catch_up(req.world)
    body = req.body
    check_tags(body.get('tags'))
    world = req.world
    nsg_id = _ids(req, 'networkSecurityGroups', req.params['nsg'])
    with world.lock:
        nsg = world.get(nsg_id)
        _check_preconditions(req, nsg and nsg['etag'], nsg is not None)
        created = nsg is None
        if created:
            nsg = create_nsg(world, req.params['subscription'], req.params['resource_group'], req.params['nsg'],
                             body.get('location') or 'westeurope')
        candidate = copy.deepcopy(nsg)
        candidate['properties']['securityRules'] = []
        for rule in (body.get('properties') or {}).get('securityRules') or []:
            props = dict(rule.get('properties') or {})
            props.pop('provisioningState', None)
            _normalise_rule(props)
            validate_rule(candidate, rule['name'], props)
            _store_rule(world, candidate, rule['name'], props, 'Succeeded')
        candidate['tags'] = body.get('tags') or {}
        candidate['etag'] = world.new_etag()
        candidate['properties']['provisioningState'] = 'Updating'
        world.put(nsg_id, candidate)
        world.record_event(req.caller, 'Microsoft.Network/networkSecurityGroups/write', nsg_id)

        def done():
            candidate['properties']['provisioningState'] = 'Succeeded'
        _, async_url, _ = start_operation(req, candidate['location'], done)
    return Response(201 if created else 200, _nsg_view(world, candidate),
                    {'Azure-AsyncOperation': async_url, 'Retry-After': str(world.retry_after)})


@route('PATCH', PROVIDER + '/networkSecurityGroups/{nsg}', action='Microsoft.Network/networkSecurityGroups/write')
def patch_nsg(req):
    """UpdateTags: a PATCH with `tags` replaces the NSG's whole tag set."""
    nsg = require_nsg(req)
    tags = (req.body or {}).get('tags')
    check_tags(tags)
    with req.world.lock:
        nsg['tags'] = dict(tags or {})
        nsg['etag'] = req.world.new_etag()
        req.world.record_event(req.caller, 'Microsoft.Network/networkSecurityGroups/write', nsg['id'],
                               http_method='PATCH')
    return Response(200, _nsg_view(req.world, nsg))


# -- security rules -------------------------------------------------------------------------------------
RULES = PROVIDER + '/networkSecurityGroups/{nsg}/securityRules'


def _find_rule(nsg, name, collection='securityRules'):
    return next((r for r in nsg['properties'][collection] if r['name'].lower() == name.lower()), None)


@route('GET', RULES, action='Microsoft.Network/networkSecurityGroups/securityRules/read')
def list_rules(req):
    nsg = require_nsg(req)
    return paged(req, copy.deepcopy(nsg['properties']['securityRules']))


@route('GET', RULES + '/{rule}', action='Microsoft.Network/networkSecurityGroups/securityRules/read')
def get_rule(req, collection='securityRules'):
    nsg = require_nsg(req)
    rule = _find_rule(nsg, req.params['rule'], collection)
    if rule is None:
        raise network_not_found(req.path)
    return Response(200, copy.deepcopy(rule), {'ETag': rule['etag']})


DEFAULT_RULES = PROVIDER + '/networkSecurityGroups/{nsg}/defaultSecurityRules'


@route('GET', DEFAULT_RULES, action='Microsoft.Network/networkSecurityGroups/defaultSecurityRules/read')
def list_default_rules(req):
    """DefaultSecurityRules_List: the six rules every NSG has (65000-65500), pageable like every list."""
    nsg = require_nsg(req)
    return paged(req, copy.deepcopy(nsg['properties']['defaultSecurityRules']))


@route('GET', DEFAULT_RULES + '/{rule}', action='Microsoft.Network/networkSecurityGroups/defaultSecurityRules/read')
def get_default_rule(req):
    return get_rule(req, 'defaultSecurityRules')


@route('PUT', RULES + '/{rule}', action='Microsoft.Network/networkSecurityGroups/securityRules/write')
def put_rule(req):
    world = req.world
    try:
        nsg = require_nsg(req)
    except ArmError as err:
        if err.code != 'ResourceNotFound':
            raise
        # ARM's answer to a PUT of a nested resource whose parent is missing (seen for the Network RP's
        # networkWatchers/flowLogs, pulumi/pulumi#11430); for securityRules it is assumed, not recorded.
        raise ArmError(404, 'ParentResourceNotFound', "Can not perform requested operation on nested resource. "
                                                      "Parent resource '{}' not found.".format(req.params['nsg']))
    req.validate('network-nsg', 'SecurityRules_CreateOrUpdate')
    props = dict(req.body.get('properties') or {})
    props.pop('provisioningState', None)
    _normalise_rule(props)
    name = req.params['rule']
    with world.lock:
        existing = _find_rule(nsg, name)
        _check_preconditions(req, existing and existing['etag'], existing is not None)
        validate_rule(nsg, name, props)
        rule, created = _store_rule(world, nsg, name, props, 'Updating')
        world.record_event(req.caller, 'Microsoft.Network/networkSecurityGroups/securityRules/write', rule['id'])

        def done():
            rule['properties']['provisioningState'] = 'Succeeded'
        _, async_url, _ = start_operation(req, nsg['location'], done)
    return Response(201 if created else 200, copy.deepcopy(rule),
                    {'Azure-AsyncOperation': async_url, 'Retry-After': str(world.retry_after)})


@route('DELETE', RULES + '/{rule}', action='Microsoft.Network/networkSecurityGroups/securityRules/delete')
def delete_rule(req):
    world = req.world
    nsg = require_nsg(req)
    with world.lock:
        rule = _find_rule(nsg, req.params['rule'])
        if rule is None:
            return Response(204)
        _check_preconditions(req, rule['etag'], True)
        rule['properties']['provisioningState'] = 'Deleting'
        world.record_event(req.caller, 'Microsoft.Network/networkSecurityGroups/securityRules/delete', rule['id'],
                           http_method='DELETE')

        def done():
            # The rule disappears when the operation completes, as in Azure.
            if rule in nsg['properties']['securityRules']:
                nsg['properties']['securityRules'].remove(rule)
                nsg['etag'] = world.new_etag()
        # Removing it right away keeps the NSG truthful for concurrent readers; the poll just confirms.
        done()
        _, async_url, location_url = start_operation(req, nsg['location'])
    return Response(202, None, {'Azure-AsyncOperation': async_url, 'Location': location_url,
                                'Retry-After': str(world.retry_after)})


@route('GET', '/subscriptions/{subscription}/providers/Microsoft.Network/locations/{location}/operations/{op}')
def operation_status(req):
    status = poll_operation(req.world, req.params['op'])
    if status is None:
        raise network_not_found(req.path)
    return Response(200, {'status': status}, {'Retry-After': str(req.world.retry_after)} if status == 'InProgress'
                    else {})


@route('GET', '/subscriptions/{subscription}/providers/Microsoft.Network/locations/{location}/operationResults/{op}')
def operation_result(req):
    status = poll_operation(req.world, req.params['op'])
    if status is None:
        raise network_not_found(req.path)
    if status == 'InProgress':
        return Response(202, None, {'Location': req.url(req.path, **req.query),
                                    'Retry-After': str(req.world.retry_after)})
    return Response(204)


# -- NICs, public IPs, virtual networks -----------------------------------------------------------------
def _expand_nic(world, nic, expand):
    view = copy.deepcopy(nic)
    if expand and 'publicipaddress' in expand.lower():
        for ipconfig in view['properties']['ipConfigurations']:
            ref = ipconfig['properties'].get('publicIPAddress')
            if ref and world.get(ref['id']):
                ipconfig['properties']['publicIPAddress'] = copy.deepcopy(world.get(ref['id']))
    vm = next((v for v in world.of_type('Microsoft.Compute/virtualMachines')
               if any(n['id'].lower() == nic['id'].lower()
                      for n in v['properties']['networkProfile']['networkInterfaces'])), None)
    if vm:
        view['properties']['virtualMachine'] = {'id': vm['id']}
    return view


@route('GET', PROVIDER + '/networkInterfaces/{nic}', action='Microsoft.Network/networkInterfaces/read')
def get_nic(req):
    require_group(req)
    nic = req.world.get(_ids(req, 'networkInterfaces', req.params['nic']))
    if nic is None:
        raise not_found(NIC_TYPE, req.params['nic'], req.params['resource_group'])
    return Response(200, _expand_nic(req.world, nic, req.arg('$expand')), {'ETag': nic['etag']})


@route('GET', PROVIDER + '/publicIPAddresses/{pip}', action='Microsoft.Network/publicIPAddresses/read')
def get_public_ip(req):
    require_group(req)
    pip = req.world.get(_ids(req, 'publicIPAddresses', req.params['pip']))
    if pip is None:
        raise not_found(PIP_TYPE, req.params['pip'], req.params['resource_group'])
    return Response(200, copy.deepcopy(pip), {'ETag': pip['etag']})


@route('GET', PROVIDER + '/virtualNetworks/{vnet}', action='Microsoft.Network/virtualNetworks/read')
def get_vnet(req):
    require_group(req)
    vnet = req.world.get(_ids(req, 'virtualNetworks', req.params['vnet']))
    if vnet is None:
        raise not_found(VNET_TYPE, req.params['vnet'], req.params['resource_group'])
    return Response(200, copy.deepcopy(vnet), {'ETag': vnet['etag']})


@route('GET', PROVIDER + '/virtualNetworks/{vnet}/subnets/{subnet}',
       action='Microsoft.Network/virtualNetworks/subnets/read')
def get_subnet(req):
    require_group(req)
    vnet = req.world.get(_ids(req, 'virtualNetworks', req.params['vnet']))
    subnet = vnet and next((s for s in vnet['properties']['subnets']
                            if s['name'].lower() == req.params['subnet'].lower()), None)
    if subnet is None:
        raise network_not_found(req.path)
    return Response(200, copy.deepcopy(subnet), {'ETag': subnet['etag']})


def find_subnet(world, subnet_id):
    vnet_id = subnet_id.split('/subnets/')[0]
    vnet = world.get(vnet_id)
    return vnet and next((s for s in vnet['properties']['subnets'] if s['id'].lower() == subnet_id.lower()), None)
