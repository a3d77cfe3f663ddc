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

Held to as strictly as Azure, from Azure's documentation and error answers seen in the wild (GitHub issues);
what could not be confirmed is marked *unconfirmed*, and there the harsher behaviour was chosen:
- A rule's `access` is `Allow` or `Deny` and its `direction` `Inbound` or `Outbound`, spelt exactly so
  (the swagger leaves both open strings; the codes SecurityRuleInvalidAccess/-Direction are *unconfirmed*,
  modelled on SecurityRuleInvalidProtocol, and so is refusing another spelling of the case).
- Address prefixes are `*`, a service tag, an IP address or a CIDR. A CIDR with host bits set (10.0.0.5/24)
  is refused, and so is a rule whose IP sources and IP destinations are of different families (an IPv6
  source to an IPv4 destination): both refusals and their codes are *unconfirmed*.
- Application security groups: each id must be a well-formed resource id (ARM's LinkedInvalidPropertyId),
  the group must exist and be in the NSG's region (InvalidResourceReference, whose real message names both
  conditions; using it for another region is *unconfirmed*), and one side of a rule cannot name both address
  prefixes and application security groups (the code is *unconfirmed*).
- At most 1,000 rules per NSG: 400 SecurityRuleCountLimitReached, "A security group cannot have more than
  1000 security rules." (as answered to Azure/azure-rest-api-specs#3003).
- An NSG has one write in flight at a time: while a rule PUT or DELETE (or an NSG PUT) is in progress, every
  other write to the NSG or its rules gets 429 RetryableErrorDueToAnotherOperation with Retry-After (Azure's
  throttling documentation names this code for "the target resource is locked by another operation"; the
  message wording is *unconfirmed*). An operation is in progress until it is polled to completion or
  `world.lro_seconds` have passed.
- DELETE is a polled operation: the rule stays, `Deleting`, until the operation completes, then it is gone.
- A scripted 'lro_failed' fault makes the operation end `Failed` (the poll answers {"status": "Failed",
  "error": {...}}). The resource is then left in provisioningState `Failed`: a rule PUT that failed leaves the
  rule there as written, a DELETE that failed leaves the rule in place. That the rule stays (rather than
  vanishing) is *unconfirmed*; it is the harsher choice, since a client must then remove it itself.
- The rule's and the NSG's ETags change when the operation completes (and on every write).
"""
import copy
import ipaddress
import re
import uuid

from .arm import check_tags, require_group
from .server import (ArmError, Response, busy_operation, network_not_found, not_found, paged, poll_operation, route,
                     settle_operations, start_operation)

PROVIDER = '/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Network'
NSG_TYPE = 'Microsoft.Network/networkSecurityGroups'
RULE_TYPE = 'Microsoft.Network/networkSecurityGroups/securityRules'
NIC_TYPE = 'Microsoft.Network/networkInterfaces'
PIP_TYPE = 'Microsoft.Network/publicIPAddresses'
VNET_TYPE = 'Microsoft.Network/virtualNetworks'
SUBNET_TYPE = 'Microsoft.Network/virtualNetworks/subnets'

RULE_NAME = re.compile(r'^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$')
PROTOCOLS = ('Tcp', 'Udp', 'Icmp', 'Esp', 'Ah', '*')
ACCESSES = ('Allow', 'Deny')
DIRECTIONS = ('Inbound', 'Outbound')
SERVICE_TAGS = ('*', 'Internet', 'VirtualNetwork', 'AzureLoadBalancer', 'Any')
ASG_TYPE = 'Microsoft.Network/applicationSecurityGroups'
ASG_ID = re.compile(r'^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/'
                    r'applicationSecurityGroups/[^/]+$', re.I)
MAX_RULES = 1000


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


def create_asg(world, sub, rg, name, location='westeurope'):
    """An application security group (rules may name it as a source or a destination)."""
    asg_id = '/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/applicationSecurityGroups/{}'.format(
        sub, rg, name)
    asg = {'name': name, 'id': asg_id, 'etag': world.new_etag(), 'type': ASG_TYPE, 'location': location, 'tags': {},
           'properties': {'provisioningState': 'Succeeded', 'resourceGuid': str(uuid.uuid4())}}
    return world.put(asg_id, asg)


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
        ipaddress.ip_network(text, strict=True)  # host bits set (10.0.0.5/24) are refused: *unconfirmed*
        return True
    except ValueError:
        return False


def _ip_family(text):
    """4 or 6 for an IP address or CIDR, None for `*` and service tags."""
    try:
        return ipaddress.ip_network(text, strict=False).version
    except ValueError:
        return None


def _check_asgs(world, nsg, rid, props, side):
    """A rule side's application security groups: well-formed ids, existing, in the NSG's region."""
    key = side + 'ApplicationSecurityGroups'
    asgs = props.get(key) or []
    if asgs and (props.get(side + 'AddressPrefix') or props.get(side + 'AddressPrefixes')):
        # *unconfirmed* code; Azure refuses prefixes and application security groups on one side.
        raise ArmError(400, 'SecurityRuleParameterContainsMultipleValues',
                       'Security rule {} cannot have both {}AddressPrefix(es) and {} specified.'.format(rid, side, key))
    for index, item in enumerate(asgs):
        asg_id = (item or {}).get('id') if isinstance(item, dict) else None
        if not asg_id or not ASG_ID.match(asg_id):
            raise ArmError(400, 'LinkedInvalidPropertyId',
                           "Property id '{}' at path 'properties.{}[{}].id' is invalid. Expect fully qualified "
                           "resource Id that start with '/subscriptions/{{subscriptionId}}' or "
                           "'/providers/{{resourceProviderNamespace}}/'.".format(asg_id, key, index))
        asg = world.get(asg_id)
        if asg is None or asg.get('type', '').lower() != ASG_TYPE.lower() or \
                asg.get('location', '').lower() != nsg.get('location', '').lower():
            raise ArmError(400, 'InvalidResourceReference',
                           'Resource {} referenced by resource {} was not found. Please make sure that the referenced '
                           'resource exists, and that both resources are in the same region.'.format(asg_id, rid))


def validate_rule(nsg, name, props, world=None):
    """The Network RP's semantic checks on one rule, in the order it reports them (`world`: to look up the
    application security groups it names)."""
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
    for field, allowed in (('access', ACCESSES), ('direction', DIRECTIONS)):
        if props[field] not in allowed:  # codes *unconfirmed*, modelled on SecurityRuleInvalidProtocol
            raise ArmError(400, 'SecurityRuleInvalid' + field.capitalize(),
                           'Security rule has invalid {}. Value provided: {}. Allowed values: {}.'.format(
                               field.capitalize(), props[field], ', '.join(allowed)))
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
    families = {}
    for side in ('source', 'destination'):
        values = [props[side + 'AddressPrefix']] if props.get(side + 'AddressPrefix') else \
            list(props.get(side + 'AddressPrefixes') or [])
        families[side] = {f for f in map(_ip_family, values) if f}
        if world is not None:
            _check_asgs(world, nsg, rid, props, side)
    if families['source'] and families['destination'] and families['source'] != families['destination']:
        # *unconfirmed* code: Azure refuses a rule from one IP family to the other.
        raise ArmError(400, 'SecurityRuleAddressPrefixesOfDifferentIpVersions',
                       'Security rule {} has source and destination address prefixes of different IP versions '
                       '(source IPv{}, destination IPv{}).'.format(
                           rid, '/IPv'.join(map(str, sorted(families['source']))),
                           '/IPv'.join(map(str, sorted(families['destination'])))))
    rules = nsg['properties']['securityRules']
    if not any(r['name'].lower() == name.lower() for r in rules) and len(rules) >= MAX_RULES:
        raise ArmError(400, 'SecurityRuleCountLimitReached',
                       'A security group cannot have more than {} security rules.'.format(MAX_RULES))
    for other in rules:
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


def _refuse_while_busy(req, nsg):
    """429 RetryableErrorDueToAnotherOperation while another operation holds the NSG (wording *unconfirmed*)."""
    op_id = busy_operation(req.world, nsg['id'])
    if op_id is not None:
        status_url = req.url('/subscriptions/{}/providers/Microsoft.Network/locations/{}/operations/{}'.format(
            req.params['subscription'], nsg['location'], op_id), **{'api-version': req.api_version})
        raise ArmError(429, 'RetryableErrorDueToAnotherOperation',
                       'Operation on {} is not allowed because another operation is in progress on the resource. '
                       'To retrieve status of the operation use uri: {}'.format(req.path, status_url),
                       headers={'Retry-After': str(req.world.retry_after)})


def _on_completion(world, nsg, rule, state):
    """What completing an operation on `rule` does: its state, and new ETags for it and its NSG."""
    def done():
        rule['properties']['provisioningState'] = state
        rule['etag'] = world.new_etag()
        nsg['etag'] = world.new_etag()
    return done


def _defender_catch_up(world):
    """Defender removes expired JIT allow rules on its own schedule: apply that before an NSG is read or written."""
    from . import security  # imported here: security imports this module
    security.expire(world)


def require_nsg(req):
    require_group(req)
    _defender_catch_up(req.world)
    settle_operations(req.world)   # operations whose time is up have completed, polled or not
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
        if nsg is not None:
            _refuse_while_busy(req, nsg)
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
            validate_rule(candidate, rule['name'], props, world)
            _store_rule(world, candidate, rule['name'], props, 'Succeeded')
        candidate['tags'] = body.get('tags') or {}
        candidate['etag'] = world.new_etag()
        candidate['properties']['provisioningState'] = 'Updating'
        world.put(nsg_id, candidate)
        world.record_event(req.caller, 'Microsoft.Network/networkSecurityGroups/write', nsg_id,
                           request_body=req.raw_body)

        def finish(state):
            def run():
                candidate['properties']['provisioningState'] = state
                candidate['etag'] = world.new_etag()
            return run
        _, async_url, _ = start_operation(req, candidate['location'], finish('Succeeded'), resource=nsg_id,
                                          on_fail=finish('Failed'))
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
                               http_method='PATCH', request_body=req.raw_body)
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
        validate_rule(nsg, name, props, world)
        _refuse_while_busy(req, nsg)
        rule, created = _store_rule(world, nsg, name, props, 'Updating')
        world.record_event(req.caller, 'Microsoft.Network/networkSecurityGroups/securityRules/write', rule['id'],
                           request_body=req.raw_body)
        _, async_url, _ = start_operation(req, nsg['location'], _on_completion(world, nsg, rule, 'Succeeded'),
                                          resource=nsg['id'], on_fail=_on_completion(world, nsg, rule, 'Failed'))
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
        _refuse_while_busy(req, nsg)
        rule['properties']['provisioningState'] = 'Deleting'
        rule['etag'] = world.new_etag()
        world.record_event(req.caller, 'Microsoft.Network/networkSecurityGroups/securityRules/delete', rule['id'],
                           http_method='DELETE')

        def done():
            # The rule stays (Deleting) until the operation completes, then it is gone, as in Azure.
            if rule in nsg['properties']['securityRules']:
                nsg['properties']['securityRules'].remove(rule)
            nsg['etag'] = world.new_etag()
        _, async_url, location_url = start_operation(req, nsg['location'], done, resource=nsg['id'],
                                                     on_fail=_on_completion(world, nsg, rule, 'Failed'))
    return Response(202, None, {'Azure-AsyncOperation': async_url, 'Location': location_url,
                                'Retry-After': str(world.retry_after)})


@route('GET', '/subscriptions/{subscription}/providers/Microsoft.Network/locations/{location}/operations/{op}')
def operation_status(req):
    status, error = poll_operation(req.world, req.params['op'])
    if status is None:
        raise network_not_found(req.path)
    body = {'status': status}
    if error:
        body['error'] = dict(error)
    return Response(200, body, {'Retry-After': str(req.world.retry_after)} if status == 'InProgress' else {})


@route('GET', '/subscriptions/{subscription}/providers/Microsoft.Network/locations/{location}/operationResults/{op}')
def operation_result(req):
    status, error = poll_operation(req.world, req.params['op'])
    if status is None:
        raise network_not_found(req.path)
    if error:  # the failed operation's error, as an ARM error answer (its status code is *unconfirmed*)
        raise ArmError(400, error['code'], error['message'])
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


@route('GET', PROVIDER + '/networkInterfaces', action='Microsoft.Network/networkInterfaces/read')
def list_nics(req):
    """NetworkInterfaces_List: the resource group's NICs (with `virtualMachine`, as Azure shows it), paged."""
    require_group(req)
    world = req.world
    return paged(req, [_expand_nic(world, n, None) for n in world.of_type(NIC_TYPE, req.params['subscription'],
                                                                          req.params['resource_group'])])


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
