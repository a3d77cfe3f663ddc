# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Microsoft.Security as Defender for Cloud behaves: the Defender for Servers plan (`pricings`) and
just-in-time VM access (`locations/jitNetworkAccessPolicies`), including what Defender does to the NSGs.

Sources: the 2020-01-01 JIT swagger and its examples, the azure-powershell session records (2020-2023),
the azure-cli recording (all under reference/), and the quotes in reference/SOURCES.md about the rules
Defender writes and the errors Azure answers. What they do not settle is decided here, each decision marked
*unconfirmed*; where the choice mattered, the harsher behaviour was taken, so a client that copes with the
stand-in copes with Azure.

Plan (pricings/VirtualMachines)
- Per subscription; default ON (`Standard`, `subPlan: P2`). `set_defender_plan(world, on, sub_plan)`.
  JIT is available with Standard and subPlan P2 or no subPlan; Free or P1 refuse every JIT operation
  (list, get, put, delete, initiate) with `state['plan_off_error']`, default 400
  `JitNotSupportedForSubscription`: *unconfirmed*, no real error body is known (SOURCES.md). Pricings
  stay readable and writable. api-versions 2018-06-01 (no subPlan in the body), 2022-03-01 (subPlan),
  2023-01-01 and 2024-01-01 (plus the fields those recordings/versions add).
- A PUT of Standard without subPlan gives P2 (as the 2022/2023 recordings answered) *unconfirmed* when
  the plan was P1 before. Turning the plan off leaves existing policies and NSG rules alone and expiry
  keeps running *unconfirmed*.

Policies
- Stored as ARM resources in `world.resources` (type `Microsoft.Security/locations/jitNetworkAccessPolicies`);
  what Defender keeps privately (rule names, real requestor) lives in `world.extensions['security']`.
- Responses carry `appendMode: false` in `properties`, as every recorded PUT/GET/list does, although the
  swagger does not declare it; a PUT that echoes it back is accepted (it is stripped before the swagger
  check). `kind` is `Basic`.
- `provisioningState` is `Updating` in the PUT answer and on the next `state['updating_reads']` reads
  (default 1: the recorded GET right after a PUT still said Updating), then `Succeeded`. How long real
  Azure stays Updating is *unconfirmed* (recordings never show it settle): clients must not wait for it.
- PUT replaces the VM list; `requests` in a PUT body are ignored and the stored ones kept *unconfirmed*
  (the swagger example echoes the body's requests, but a client must not be able to forge requests),
  except the requests of VMs the PUT leaves out: the answer, and every read after it, carries no request
  for a VM no longer in the policy (the recorded PUT answers hold only requests of the policy's own VMs;
  that they are dropped rather than refused is *unconfirmed*). Their allow rules stay open until their
  end time, and Defender still removes them then.
- Semantic checks (400 `BadRequest`; codes and wording *unconfirmed*, the checks are from the facts):
  both `allowedSourceAddressPrefix` and `allowedSourceAddressPrefixes`, or neither (*unconfirmed*,
  strict), or an entry that is not `*`, an IP or a CIDR (*unconfirmed*); protocol other than TCP/UDP/*
  (case-insensitive); `maxRequestAccessDuration` not ISO 8601 (upper case, `PnDTnHnMnS`/`PnW`) or
  outside PT5M..P1D inclusive; a port twice for one VM or a VM twice (*unconfirmed*); a VM with no ports
  (*unconfirmed*); a VM id that is malformed or names no VM; a VM outside the path's subscription and
  resource group, or in another region than the path's location (*unconfirmed*; the portal always puts
  the policy in the VM's group and region, `state['check_vm_location']` turns the region check off);
  policy name + VM name longer than 56 characters (that limit is exactly what keeps Defender's allow
  rule description within the NSG's 140 characters).

NSG effects (what Defender does; reference/SOURCES.md quotes the sources)
- The NSG is the one on the VM's primary NIC, else the one on that NIC's primary IP configuration's
  subnet. A VM with neither is still accepted and gets no rules *unconfirmed*; the same for initiate.
- Deny rule, one per VM when it joins the policy: `SecurityCenter-JITRule_<int>_<32 upper hex>`, the int a
  signed 32-bit hash of the VM id (same for all rules of that VM), all the VM's policy ports (one
  `destinationPortRange`, or `destinationPortRanges` when several), protocol Tcp/Udp when all ports
  agree, else `*`; source `*`, destination the private IP; priority the highest free inbound one from
  4096 down (*unconfirmed*: 1000, 4095 and 4096 were all seen). Updated in place (same name and
  priority) when the VM's ports change (recreated if someone deleted it), removed when the VM leaves the
  policy or the policy is deleted. Defender "may shift other rules' priorities": with
  `state['renumber_deny_at']` set to a priority, a new deny rule goes there and every inbound rule from
  that priority up to the first gap moves one down (+1), whoever wrote it (*unconfirmed* how Azure does
  it; off by default, so clients must cope with both).
- Allow rule, one per requested port: `SecurityCenter-JITRule-<same int>-<32 upper hex>`, source the
  request's prefix, destination the private IP, the port, protocol from the policy port (TCP->Tcp,
  UDP->Udp, *->*), priority the lowest free inbound one from 100 up. Removed when the request port
  expires, is superseded, or the policy is deleted. A VM that leaves the policy (or a port that leaves a
  VM) keeps its open allow rules until they expire *unconfirmed*, chosen pessimistic.
- If someone deletes Defender's allow rule, Defender does not recreate it and the request stays
  `Initiated` until its end time *unconfirmed*, chosen pessimistic.
- Defender's own rule writes and deletes appear in the Activity Log under its first-party app's id
  (`DEFENDER`, client id `8edd93e1-2103-40b4-bd70-6e34e586362d`, "Windows Azure Security Resource
  Provider", which Azure shows as `createdBy` of what Defender writes; that these log events carry it is
  *unconfirmed*); a write's `properties.requestbody` is the rule it wrote (`{"properties": {...}}`), a delete
  has none; expiry deletes carry the request's end time as their timestamp.
- The events of the policy PUT, `initiate` and the pricing PUT carry the client's request body as
  `properties.requestbody` (world.py `record_event`; that Azure records it for these, and its size limit, are
  *unconfirmed*); a DELETE has none.

Initiate
- 202 with the request: `virtualMachines[].ports[]` (number, allowedSourceAddressPrefix, endTimeUtc as
  sent, status `Initiating`, statusReason `UserRequested`), `startTimeUtc` (7 fractional digits, like
  Azure), `requestor: ""`, `justification` when given. The recordings show `""` for service principals;
  what Defender shows for a user (world.py `Identity.kind`) is *unconfirmed*, so `requestor` is always
  `""`; the caller as the Activity Log names it (app id, UPN, or object id) is kept privately
  (`request_callers`). Stored requests read back as `Initiated` from the next request on.
- Requests are appended, newest last *unconfirmed* (no recording holds two). They are never pruned
  *unconfirmed*.
- Refused (400 `BadRequest`, message exactly "The given access request is not a subset of policy
  '<name>'", code *unconfirmed*; the stand-in's own reason goes to `state['refusals']`, not on the wire,
  because Azure does not say which rule broke): a VM or port not in the policy, the same port twice, an
  end time not after now, an end time later than now + the port's maxRequestAccessDuration + 1 minute of
  clock skew (`state['clock_skew']`, *unconfirmed*), or a source not allowed. A source is allowed when the
  policy port allows `*` or lists that exact string (users report exact matching: an IP inside an
  allowed CIDR is refused *unconfirmed*). No source means the caller's public IP (`req.caller.public_ip`).
- A newer request for the same VM and port marks the older port `Revoked`/`NewerRequestInitiated` and
  removes its allow rule.

Asynchronous NSG writes
- Defender answers first and writes its NSG rules later: the initiate's 202 says `Initiating` and the allow
  rule is not in the NSG yet; after a PUT (`provisioningState: Updating`) a new VM's deny rule may come
  later too. Each such write is queued and lands on the Nth look at Azure's state after it was queued
  (a look: any JIT request here, any NSG read or write; `state['allow_looks']`, default 3, so a client
  that reads the policy and then the NSG right after an initiate does not see the rule yet;
  `state['deny_looks']`, default 0: at once) and not before `state['allow_delay']`/`['deny_delay']` of
  Azure's clock has passed (default 0). How long Azure takes is *unconfirmed* (seconds, by reports).
  A queued allow rule is still written when the request port is still open at that time, even if the VM
  has left the policy meanwhile (*unconfirmed*, the harsher choice); a queued deny rule only while the VM
  is still in the policy. `settle(world)` lands every queued write (what the tests' NSG helpers do).

Expiry
- `expire(world)` runs at the start of every handler here, and network.py calls it before NSG reads and
  writes: request ports whose end time has passed become `Revoked`/`Expired` and their allow rules go.

Failed writes and actions are logged in the Activity Log with status Failed, as ARM does.
"""
import copy
import datetime as dt
import functools
import hashlib
import ipaddress
import json
import re
import uuid

from . import network
from .arm import require_group, require_subscription
from .server import ArmError, Response, paged, route
from .world import Identity, iso, utc

JIT_TYPE = 'Microsoft.Security/locations/jitNetworkAccessPolicies'
PRICING_TYPE = 'Microsoft.Security/pricings'
JIT_API_VERSIONS = ('2020-01-01',)
PRICING_API_VERSIONS = ('2018-06-01', '2022-03-01', '2023-01-01', '2024-01-01')

JIT_READ = 'Microsoft.Security/locations/jitNetworkAccessPolicies/read'
JIT_WRITE = 'Microsoft.Security/locations/jitNetworkAccessPolicies/write'
JIT_DELETE = 'Microsoft.Security/locations/jitNetworkAccessPolicies/delete'
JIT_INITIATE = 'Microsoft.Security/locations/jitNetworkAccessPolicies/initiate/action'
PRICING_READ = 'Microsoft.Security/pricings/read'
PRICING_WRITE = 'Microsoft.Security/pricings/write'

SUB = '/subscriptions/{subscription}'
RG = SUB + '/resourceGroups/{resource_group}'
PROVIDER = '/providers/Microsoft.Security'
POLICY = RG + PROVIDER + '/locations/{location}/jitNetworkAccessPolicies/{name}'

MIN_DURATION = dt.timedelta(minutes=5)
MAX_DURATION = dt.timedelta(days=1)
MAX_NAME_LENGTH = 56          # policy name + VM name
ACTIVE = ('Initiating', 'Initiated')
PROTOCOL_TO_NSG = {'TCP': 'Tcp', 'UDP': 'Udp', '*': '*'}
VIRTUAL_MACHINES = 'VirtualMachines'
# The plans a subscription's pricings list shows; only VirtualMachines matters to JIT.
PRICING_NAMES = (VIRTUAL_MACHINES, 'SqlServers', 'AppServices', 'StorageAccounts', 'SqlServerVirtualMachines',
                 'KeyVaults', 'Dns', 'Arm', 'OpenSourceRelationalDatabases', 'Containers', 'CosmosDbs',
                 'CloudPosture', 'Api')
VM_ID = re.compile(r'^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Compute/virtualMachines/'
                   r'([^/]+)$', re.I)
DURATION = re.compile(r'^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?'
                      r'(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$')

# The caller under which Defender's own NSG writes appear in the Activity Log: its first-party app "Windows Azure
# Security Resource Provider", whose application id Azure shows as `createdBy` of the resources Defender writes. That
# the Activity Log names JIT's NSG rule writes and deletes by it is *unconfirmed*. Its object id differs per tenant
# (a service principal's), so the stand-in makes one up.
DEFENDER_APP_ID = '8edd93e1-2103-40b4-bd70-6e34e586362d'
DEFENDER = Identity(name='Windows Azure Security Resource Provider', client_id=DEFENDER_APP_ID, secret='',
                    object_id=str(uuid.uuid5(uuid.NAMESPACE_DNS, 'defender-oid.standin')), upn='', public_ip='')

DEFAULT_PLAN_OFF_ERROR = (400, 'JitNotSupportedForSubscription',
                          'Just-in-time VM access requires Microsoft Defender for Servers Plan 2 on this subscription.')


# -- state ----------------------------------------------------------------------------------------------
def state(world):
    """The Defender model kept in `world.extensions['security']` (created on first use).

    Knobs tests may set: `racing_writes` (see put_policy), `plan_off_error` (status, code, message),
    `updating_reads`, `clock_skew`
    (timedelta), `check_vm_location`, `settle_initiating` (False: stored requests keep answering
    `Initiating` on reads, as real responses may, until they expire); `allow_looks`/`allow_delay` and
    `deny_looks`/`deny_delay` (when Defender's allow rules after an initiate, and its deny rules after a PUT,
    appear in the NSG: see "Asynchronous NSG writes"); `renumber_deny_at` (a priority: Defender places new
    deny rules there and renumbers the rules in its way). Read-only for tests: `refusals` (the
    stand-in's reason for each refusal, newest last), `policies` (per policy id: deny rules, per-request
    callers and allow rules).
    """
    with world.lock:
        current = world.extensions.get('security')
        if current is None:
            current = world.extensions['security'] = {
                'plans': {},                       # (subscription lower, plan name lower) -> plan dict
                'plan_off_error': DEFAULT_PLAN_OFF_ERROR,
                'updating_reads': 1,
                'clock_skew': dt.timedelta(minutes=1),
                'check_vm_location': True,
                'settle_initiating': True,         # False: stored requests keep reading back as Initiating
                'policies': {},                    # policy id lower -> meta (see _meta)
                'refusals': [],
                'racing_writes': [],               # fn(entries before a PUT) -> entries another writer PUTs next
                # Defender writes its NSG rules after answering (see "Asynchronous NSG writes" above): a pending
                # write lands on the Nth look at Azure's state after it was queued, and not before the delay.
                'allow_looks': 3, 'allow_delay': dt.timedelta(0),
                'deny_looks': 0, 'deny_delay': dt.timedelta(0),
                'renumber_deny_at': None,          # a priority: Defender puts deny rules there, shifting others
                'pending': [],                     # NSG writes Defender has accepted but not yet made
                'dropped': [],                     # (request, meta) of requests a PUT dropped with their VM
            }
        return current


def _meta(world, pid):
    """Defender's private bookkeeping for one policy: its deny rules per VM, and for each entry of
    `properties.requests` (same order) the caller and the allow rules per `vm id|port`."""
    return state(world)['policies'].setdefault(pid.lower(), {'deny': {}, 'requests': [], 'updating_reads_left': 0})


def _request_metas(world, policy):
    meta = _meta(world, policy['id'])
    requests = policy['properties'].setdefault('requests', [])
    while len(meta['requests']) < len(requests):
        meta['requests'].append({'caller': '', 'object_id': '', 'rules': {}})
    return meta['requests']


def _refuse(world, reason, message, code='BadRequest', status=400):
    state(world)['refusals'].append(reason)
    return ArmError(status, code, message)


# -- helpers for tests ------------------------------------------------------------------------------------
def policy_id(sub, rg, location, name='default'):
    return '/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Security/locations/{}/jitNetworkAccessPolicies/{}' \
        .format(sub, rg, location, name)


def set_defender_plan(world, on, sub_plan='P2', subscription=None):
    """Switch Defender for Servers on (`Standard`, with `sub_plan`; None = no subPlan) or off (`Free`)."""
    sub = subscription or world.subscription_id
    with world.lock:
        plan = _plan(world, sub, VIRTUAL_MACHINES)
        if on:
            if plan['pricingTier'] != 'Standard':
                plan['enablementTime'] = _ticks(world.clock.now())
            plan.update(pricingTier='Standard', subPlan=sub_plan)
        else:
            plan.update(pricingTier='Free', subPlan=None, enablementTime=None)


def jit_available(world, sub):
    plan = _plan(world, sub, VIRTUAL_MACHINES)
    return plan['pricingTier'] == 'Standard' and plan.get('subPlan') in (None, 'P2')


def jit_vm(vm_id, ports=(22,), protocol='*', source='*', max_duration='PT3H'):
    """A policy's VM entry: `source` a string (allowedSourceAddressPrefix) or a list (...Prefixes)."""
    entries = []
    for number in ports:
        port = {'number': number, 'protocol': protocol}
        port['allowedSourceAddressPrefix' if isinstance(source, str) else 'allowedSourceAddressPrefixes'] = \
            source if isinstance(source, str) else list(source)
        port['maxRequestAccessDuration'] = max_duration
        entries.append(port)
    return {'id': vm_id, 'ports': entries}


def add_policy(world, rg, location, virtual_machines, name='default', requests=(), subscription=None,
               provisioning_state='Updating', nsg_effects=True, callers=None):
    """Seed a policy as a PUT (and initiates) would have left it, without HTTP and without checks.

    `virtual_machines` are VM entries (see `jit_vm`); `requests` are request dicts in the API's shape
    (`requestor` defaults to "", port status to "Initiating"); `callers` maps a request's index to the upn
    kept privately as its real requestor. With `nsg_effects`, Defender's deny rules are written, and an
    allow rule for each active request port. A policy already at that id is replaced, its rules removed.
    """
    sub = subscription or world.subscription_id
    pid = policy_id(sub, rg, location, name)
    with world.lock:
        if world.get(pid) is not None:
            _remove_policy_rules(world, world.get(pid))
        state(world)['policies'].pop(pid.lower(), None)
        policy = _new_policy(pid, name, location, copy.deepcopy(list(virtual_machines)), [], provisioning_state)
        meta = _meta(world, pid)
        meta['updating_reads_left'] = state(world)['updating_reads']
        world.put(pid, policy)
        if nsg_effects:
            _sync_deny_rules(world, policy, {}, policy['properties']['virtualMachines'])
        vm_entries = {e['id'].lower(): e for e in policy['properties']['virtualMachines']}
        for index, request in enumerate(requests):
            request = copy.deepcopy(request)
            request.setdefault('requestor', '')
            request.setdefault('startTimeUtc', _ticks(world.clock.now()))
            rmeta = {'caller': (callers or {}).get(index, ''), 'object_id': '', 'rules': {}}
            for vm in request['virtualMachines']:
                for port in vm['ports']:
                    port.setdefault('status', 'Initiating')
                    port.setdefault('statusReason', 'UserRequested')
                    entry = vm_entries.get(vm['id'].lower())
                    if nsg_effects and entry and port['status'] in ACTIVE:
                        policy_port = next((p for p in entry['ports'] if p['number'] == port['number']), None)
                        ref = _open_port(world, policy, entry, policy_port or {'protocol': '*'}, port['number'],
                                         port.get('allowedSourceAddressPrefix', '*'))
                        if ref:
                            rmeta['rules'][_port_key(vm['id'], port['number'])] = ref
            policy['properties']['requests'].append(request)
            meta['requests'].append(rmeta)
        return policy


def request_callers(world, pid):
    """The upn of whoever made each of the policy's requests (same order as `properties.requests`)."""
    with world.lock:
        policy = world.get(pid)
        return [m['caller'] for m in _request_metas(world, policy)] if policy else []


def defender_rules(world, nsg_id):
    """Defender's rules in an NSG (deny `SecurityCenter-JITRule_...` and allow `SecurityCenter-JITRule-...`), once
    every write Defender has queued has landed."""
    settle(world)
    nsg = world.get(nsg_id)
    return [r for r in (nsg['properties']['securityRules'] if nsg else [])
            if r['name'].startswith('SecurityCenter-JITRule')]


# -- expiry ---------------------------------------------------------------------------------------------
def expire(world):
    """Catch up with Defender's own schedule at the stand-in's clock.

    Requests read back as `Initiated` once created (the 202 said `Initiating`); request ports whose end
    time has passed become Revoked/Expired and lose their allow rule. Lazy, so it runs wherever Azure's
    state is looked at: every handler here, and network.py's NSG handlers.
    """
    with world.lock:
        _land_pending(world)
        now = world.clock.now()
        pairs = list(state(world)['dropped'])
        for policy in world.of_type(JIT_TYPE):
            pairs += list(zip(policy['properties']['requests'], _request_metas(world, policy)))
        for request, rmeta in pairs:
            for vm in request.get('virtualMachines') or []:
                for port in vm.get('ports') or []:
                    if port.get('status') == 'Initiating' and state(world)['settle_initiating']:
                        port['status'] = 'Initiated'
                    if port.get('status') not in ACTIVE:
                        continue
                    end = _end_time(port)
                    if end is not None and end > now:
                        continue
                    port['status'], port['statusReason'] = 'Revoked', 'Expired'
                    ref = rmeta['rules'].pop(_port_key(vm['id'], port['number']), None)
                    if ref:
                        _delete_rule(world, ref, when=end)


def _land_pending(world, force=False):
    """One look at Azure's state: Defender's queued NSG writes that are due land (all of them with `force`)."""
    st = state(world)
    now = world.clock.now()
    waiting = []
    for item in st['pending']:
        item['looks'] -= 1
        if force or (item['looks'] <= 0 and now >= item['due']):
            item['apply']()
        else:
            waiting.append(item)
    st['pending'] = waiting


def _queue(world, kind, apply):
    """Defender accepted an NSG write (`kind` 'allow' or 'deny') and makes it later (see module docstring)."""
    st = state(world)
    looks, delay = st[kind + '_looks'], st[kind + '_delay']
    if looks <= 0 and delay <= dt.timedelta(0):
        apply()
        return
    st['pending'].append({'looks': looks, 'due': world.clock.now() + delay, 'apply': apply})


def settle(world):
    """Land every NSG write Defender has queued, as if enough time had passed (for tests that look at an NSG)."""
    with world.lock:
        _land_pending(world, force=True)


def _end_time(port):
    try:
        return utc(port['endTimeUtc'])
    except (KeyError, TypeError, ValueError):
        return None


# -- small pieces -------------------------------------------------------------------------------------
def _ticks(moment):
    """A UTC time as Azure writes it in these bodies: 7 fractional digits."""
    return moment.astimezone(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%f') + '0Z'


def _norm_location(text):
    return (text or '').replace(' ', '').lower()


def _port_key(vm_id, number):
    return '{}|{}'.format(vm_id.lower(), number)


def parse_duration(text):
    """An ISO 8601 duration as Defender reads maxRequestAccessDuration, or None when it is not one."""
    match = DURATION.match(text or '') if isinstance(text, str) else None
    if not match or text in ('P', 'PT') or text.endswith('T'):
        return None
    years, months, weeks, days, hours, minutes, seconds = match.groups()
    if years and int(years) or months and int(months):
        return dt.timedelta(days=366 * int(years or 0) + 31 * int(months or 0))  # only ever "too long"
    return dt.timedelta(weeks=int(weeks or 0), days=int(days or 0), hours=int(hours or 0),
                        minutes=int(minutes or 0), seconds=float(seconds or 0))


def _vm_int(vm_id):
    """The signed 32-bit number Defender puts in every rule name of one VM (here: a hash of its id)."""
    return int.from_bytes(hashlib.sha256(vm_id.lower().encode()).digest()[:4], 'big', signed=True)


def _valid_prefix(text):
    if text == '*':
        return True
    try:
        ipaddress.ip_network(text, strict=False)
        return True
    except (TypeError, ValueError):
        return False


def _allowed_sources(port):
    if port.get('allowedSourceAddressPrefix'):
        return [port['allowedSourceAddressPrefix']]
    return list(port.get('allowedSourceAddressPrefixes') or [])


def _check_api_version(req, versions, resource_type):
    if req.api_version not in versions:
        raise ArmError(400, 'NoRegisteredProviderFound',
                       "No registered resource provider found for location 'global' and API version '{}' for type "
                       "'{}'. The supported api-versions are '{}'.".format(req.api_version, resource_type,
                                                                           ', '.join(versions)))


def _audited(operation, http_method, resource_id_of):
    """Log the outcome of a write or action in the Activity Log, failures included (as ARM does)."""
    def wrap(fn):
        @functools.wraps(fn)
        def handler(req):
            resource_id = resource_id_of(req)
            try:
                resp = fn(req)
            except ArmError as err:
                req.world.record_event(req.caller, operation, resource_id, status='Failed', http_method=http_method,
                                       sub_status=err.code, request_body=req.raw_body, properties={
                                           'statusCode': str(err.status), 'statusMessage': json.dumps(err.body())})
                raise
            if resp.status < 400:
                req.world.record_event(req.caller, operation, resource_id, http_method=http_method,
                                       request_body=req.raw_body, properties={
                                           'statusCode': {200: 'OK', 202: 'Accepted', 204: 'NoContent'}.get(
                                               resp.status, 'OK')})
            return resp
        return handler
    return wrap


def _policy_id_of(req):
    p = req.params
    return policy_id(p['subscription'], p['resource_group'], p['location'], p['name'])


# -- pricings -------------------------------------------------------------------------------------------
def _plan(world, sub, name):
    plans = state(world)['plans']
    key = (sub.lower(), name.lower())
    if key not in plans:
        on = name.lower() == VIRTUAL_MACHINES.lower()
        plans[key] = {'name': next((n for n in PRICING_NAMES if n.lower() == name.lower()), name),
                      'pricingTier': 'Standard' if on else 'Free', 'subPlan': 'P2' if on else None,
                      'enablementTime': '2023-01-01T00:00:00.0000000Z' if on else None}
    return plans[key]


def _pricing_body(world, sub, name, api_version):
    plan = _plan(world, sub, name)
    standard = plan['pricingTier'] == 'Standard'
    props = {}
    if api_version >= '2023-01-01' and standard and plan['name'] == VIRTUAL_MACHINES:
        # As the 2023-01-01 recording shows them.
        props['extensions'] = [{'name': 'MdeDesignatedSubscription', 'isEnabled': 'False'},
                               {'name': 'AgentlessVmScanning', 'isEnabled': 'True'}]
    if api_version >= '2022-03-01' and plan.get('subPlan'):
        props['subPlan'] = plan['subPlan']
    props['pricingTier'] = plan['pricingTier']
    props['freeTrialRemainingTime'] = 'PT0S'
    if api_version >= '2023-01-01' and standard and plan.get('enablementTime'):
        props['enablementTime'] = plan['enablementTime']
    if api_version >= '2024-01-01':
        props['inherited'] = 'False'
    return {'id': '/subscriptions/{}/providers/Microsoft.Security/pricings/{}'.format(sub, plan['name']),
            'name': plan['name'], 'type': PRICING_TYPE, 'properties': props}


def _require_pricing_name(req):
    name = req.params['pricing']
    if name.lower() not in (n.lower() for n in PRICING_NAMES):
        raise ArmError(404, 'NotFound', "Pricing '{}' was not found.".format(name))  # wording unconfirmed
    return name


@route('GET', SUB + PROVIDER + '/pricings', action=PRICING_READ)
def list_pricings(req):
    """Pricings_List: not pageable in any version (no nextLink), so never paged here."""
    _check_api_version(req, PRICING_API_VERSIONS, 'pricings')
    sub = require_subscription(req)
    expire(req.world)
    with req.world.lock:
        return Response(200, {'value': [_pricing_body(req.world, sub, n, req.api_version) for n in PRICING_NAMES]})


@route('GET', SUB + PROVIDER + '/pricings/{pricing}', action=PRICING_READ)
def get_pricing(req):
    _check_api_version(req, PRICING_API_VERSIONS, 'pricings')
    sub = require_subscription(req)
    name = _require_pricing_name(req)
    expire(req.world)
    with req.world.lock:
        return Response(200, _pricing_body(req.world, sub, name, req.api_version))


@route('PUT', SUB + PROVIDER + '/pricings/{pricing}', action=PRICING_WRITE)
@_audited(PRICING_WRITE, 'PUT', lambda req: '/subscriptions/{}/providers/Microsoft.Security/pricings/{}'.format(
    req.params['subscription'], req.params['pricing']))
def put_pricing(req):
    """Pricings_Update: `properties.pricingTier` Free|Standard, `subPlan` P1|P2 for VirtualMachines."""
    _check_api_version(req, PRICING_API_VERSIONS, 'pricings')
    sub = require_subscription(req)
    name = _require_pricing_name(req)
    expire(req.world)
    body = req.body
    props = body.get('properties') if isinstance(body, dict) else None
    tier = props.get('pricingTier') if isinstance(props, dict) else None
    if not isinstance(tier, str) or tier.lower() not in ('free', 'standard'):
        raise _refuse(req.world, 'pricingTier must be Free or Standard',
                      "The pricing tier '{}' is not valid. Allowed values: Free, Standard.".format(tier))
    sub_plan = props.get('subPlan') if req.api_version >= '2022-03-01' else None
    if sub_plan is not None and (not isinstance(sub_plan, str) or sub_plan.upper() not in ('P1', 'P2')):
        raise _refuse(req.world, 'subPlan must be P1 or P2',
                      "The sub plan '{}' is not valid for pricing '{}'.".format(sub_plan, name))
    with req.world.lock:
        if name.lower() == VIRTUAL_MACHINES.lower():
            set_defender_plan(req.world, tier.lower() == 'standard', (sub_plan or 'P2').upper(), sub)
        else:
            plan = _plan(req.world, sub, name)
            standard = tier.lower() == 'standard'
            plan.update(pricingTier='Standard' if standard else 'Free', subPlan=None,
                        enablementTime=_ticks(req.world.clock.now()) if standard else None)
        return Response(200, _pricing_body(req.world, sub, name, req.api_version))


# -- JIT: common ----------------------------------------------------------------------------------------
def _jit_prelude(req, group):
    """What every JIT handler does first: api-version, subscription (and resource group: ARM's own 404s
    come before the provider is asked), Defender's schedule, then the plan."""
    _check_api_version(req, JIT_API_VERSIONS, 'locations/jitNetworkAccessPolicies')
    sub = require_subscription(req)
    if group:
        require_group(req)
    expire(req.world)
    if not jit_available(req.world, sub):
        status, code, message = state(req.world)['plan_off_error']
        raise _refuse(req.world, 'Defender for Servers Plan 2 is off', message, code, status)
    return sub


def _new_policy(pid, name, location, virtual_machines, requests, provisioning_state):
    # Key order as the recordings show it.
    return {'kind': 'Basic',
            'properties': {'virtualMachines': virtual_machines, 'requests': requests,
                           'provisioningState': provisioning_state, 'appendMode': False},
            'id': pid, 'name': name, 'type': JIT_TYPE, 'location': location}


def _view(world, policy):
    """A policy as a read answers it; each read brings a fresh PUT's `Updating` closer to `Succeeded`."""
    meta = _meta(world, policy['id'])
    props = policy['properties']
    if props.get('provisioningState') == 'Updating':
        if meta['updating_reads_left'] > 0:
            meta['updating_reads_left'] -= 1
        else:
            props['provisioningState'] = 'Succeeded'
    return copy.deepcopy(policy)


def _require_policy(req):
    policy = req.world.get(_policy_id_of(req))
    if policy is None:
        # Wording as ARM's ResourceNotFound; what the Security RP says is unconfirmed.
        raise ArmError(404, 'ResourceNotFound',
                       "The Resource '{}/{}/{}' under resource group '{}' was not found. For more details please go "
                       "to https://aka.ms/ARMResourceNotFoundFix".format(
                           'Microsoft.Security/locations', req.params['location'],
                           'jitNetworkAccessPolicies/' + req.params['name'], req.params['resource_group']))
    return policy


def _list(req, rg=None, location=None):
    world = req.world
    with world.lock:
        found = [p for p in world.of_type(JIT_TYPE, req.params['subscription'], rg)
                 if location is None or _norm_location(p['location']) == _norm_location(location)]
        resp = paged(req, found)
        resp.body['value'] = [_view(world, p) for p in resp.body['value']]
        return resp


# -- JIT: routes ----------------------------------------------------------------------------------------
@route('GET', SUB + PROVIDER + '/jitNetworkAccessPolicies', action=JIT_READ)
def list_policies(req):
    _jit_prelude(req, group=False)
    return _list(req)


@route('GET', SUB + PROVIDER + '/locations/{location}/jitNetworkAccessPolicies', action=JIT_READ)
def list_policies_by_region(req):
    _jit_prelude(req, group=False)
    return _list(req, location=req.params['location'])


@route('GET', RG + PROVIDER + '/jitNetworkAccessPolicies', action=JIT_READ)
def list_policies_by_group(req):
    _jit_prelude(req, group=True)
    return _list(req, rg=req.params['resource_group'])


@route('GET', RG + PROVIDER + '/locations/{location}/jitNetworkAccessPolicies', action=JIT_READ)
def list_policies_by_group_and_region(req):
    _jit_prelude(req, group=True)
    return _list(req, rg=req.params['resource_group'], location=req.params['location'])


@route('GET', POLICY, action=JIT_READ)
def get_policy(req):
    _jit_prelude(req, group=True)
    with req.world.lock:
        return Response(200, _view(req.world, _require_policy(req)))


@route('PUT', POLICY, action=JIT_WRITE)
@_audited(JIT_WRITE, 'PUT', _policy_id_of)
def put_policy(req):
    """JitNetworkAccessPolicies_CreateOrUpdate: replace the VM list, keep the requests, fix up the NSGs."""
    sub = _jit_prelude(req, group=True)
    world = req.world
    body = req.body
    if isinstance(body, dict) and isinstance(body.get('properties'), dict) and 'appendMode' in body['properties']:
        # Azure itself answers with appendMode (undeclared in the swagger): a client echoing it is fine.
        body = dict(body, properties={k: v for k, v in body['properties'].items() if k != 'appendMode'})
    req.validate('security-jit', 'JitNetworkAccessPolicies_CreateOrUpdate', body=body)
    entries = copy.deepcopy(body['properties']['virtualMachines'])
    pid = _policy_id_of(req)
    with world.lock:
        _check_policy(req, sub, entries)
        existing = world.get(pid)
        old_entries = existing['properties']['virtualMachines'] if existing else []
        if existing is None:
            state(world)['policies'].pop(pid.lower(), None)
        policy = _new_policy(existing['id'] if existing else pid, req.params['name'] if not existing else
                             existing['name'], existing['location'] if existing else req.params['location'],
                             entries, existing['properties'].get('requests', []) if existing else [], 'Updating')
        if existing is not None:
            policy['kind'] = existing.get('kind', 'Basic')
        _request_metas(world, policy)
        _drop_requests_of_gone_vms(world, policy)
        _sync_deny_rules(world, policy, {e['id'].lower(): e for e in old_entries}, entries)
        world.put(pid, policy)
        _meta(world, pid)['updating_reads_left'] = state(world)['updating_reads']
        answer = copy.deepcopy(policy)
        racing = state(world)['racing_writes']
        if racing:
            # Another client's read-modify-write PUT, based on what it read before ours, lands right after ours:
            # the API has no ETag, so it silently replaces our VM list. Clients must re-read to notice.
            theirs = racing.pop(0)(copy.deepcopy(old_entries))
            _sync_deny_rules(world, policy, {e['id'].lower(): e for e in entries}, theirs)
            policy['properties']['virtualMachines'] = theirs
            _drop_requests_of_gone_vms(world, policy)
        return Response(200, answer)


def _drop_requests_of_gone_vms(world, policy):
    """A policy carries requests only for its own VMs: the rest go (their open allow rules still expire)."""
    kept_ids = {e['id'].lower() for e in policy['properties']['virtualMachines']}
    meta = _meta(world, policy['id'])
    requests, metas = [], []
    for request, rmeta in zip(policy['properties']['requests'], _request_metas(world, policy)):
        vms = request.get('virtualMachines') or []
        gone = [vm for vm in vms if vm['id'].lower() not in kept_ids]
        if gone:
            state(world)['dropped'].append((dict(request, virtualMachines=gone), rmeta))
        if len(gone) < len(vms) or not vms:
            request['virtualMachines'] = [vm for vm in vms if vm['id'].lower() in kept_ids]
            requests.append(request)
            metas.append(rmeta)
    policy['properties']['requests'] = requests
    meta['requests'] = metas


def _check_policy(req, sub, entries):
    """Defender's semantic checks on a PUT, beyond the swagger."""
    world, params = req.world, req.params
    name = params['name']
    seen_vms = set()
    for i, entry in enumerate(entries):
        where = 'properties.virtualMachines[{}]'.format(i)
        match = VM_ID.match(entry['id'])
        if not match:
            raise _refuse(world, where + ': malformed VM id', "The virtual machine id '{}' is not a valid resource "
                                                              "id.".format(entry['id']))
        vm_sub, vm_rg, vm_name = match.groups()
        if entry['id'].lower() in seen_vms:
            raise _refuse(world, where + ': VM listed twice', "The virtual machine '{}' appears more than once in "
                                                              "the policy.".format(vm_name))
        seen_vms.add(entry['id'].lower())
        if vm_sub.lower() != sub.lower() or vm_rg.lower() != params['resource_group'].lower():
            raise _refuse(world, where + ': VM outside the policy resource group',
                          "The virtual machine '{}' is not in resource group '{}' of subscription '{}'.".format(
                              entry['id'], params['resource_group'], sub))
        vm = world.get(entry['id'])
        if vm is None or vm.get('type', '').lower() != 'microsoft.compute/virtualmachines':
            raise _refuse(world, where + ': no such VM', "The virtual machine '{}' was not found.".format(entry['id']))
        if state(world)['check_vm_location'] and _norm_location(vm.get('location')) != _norm_location(
                params['location']):
            raise _refuse(world, where + ': VM in another region',
                          "The virtual machine '{}' is in location '{}', not in the policy's location '{}'.".format(
                              vm['name'], vm.get('location'), params['location']))
        if len(name) + len(vm['name']) > MAX_NAME_LENGTH:
            raise _refuse(world, where + ': policy name + VM name too long',
                          "The policy name '{}' and the virtual machine name '{}' together exceed {} characters."
                          .format(name, vm['name'], MAX_NAME_LENGTH))
        if not entry['ports']:
            raise _refuse(world, where + ': no ports', "The virtual machine '{}' has no ports in the policy."
                          .format(vm['name']))
        seen_ports = set()
        for j, port in enumerate(entry['ports']):
            here = '{}.ports[{}]'.format(where, j)
            _check_port(world, here, vm['name'], port, seen_ports)


def _check_port(world, here, vm_name, port, seen_ports):
    number = port['number']
    if number in seen_ports:
        raise _refuse(world, here + ': port twice', "Port {} appears more than once for virtual machine '{}'."
                      .format(number, vm_name))
    seen_ports.add(number)
    if str(port['protocol']).upper() not in PROTOCOL_TO_NSG:
        raise _refuse(world, here + ': protocol', "The protocol '{}' of port {} is not valid. Allowed values: TCP, "
                                                  "UDP, *.".format(port['protocol'], number))
    single, plural = port.get('allowedSourceAddressPrefix'), port.get('allowedSourceAddressPrefixes')
    if single is not None and plural is not None:
        raise _refuse(world, here + ': both prefix fields',
                      "Port {} of virtual machine '{}' has both allowedSourceAddressPrefix and "
                      "allowedSourceAddressPrefixes; they are mutually exclusive.".format(number, vm_name))
    sources = [single] if single is not None else list(plural or [])
    if not sources:
        raise _refuse(world, here + ': no allowed source', "Port {} of virtual machine '{}' has no allowed source "
                                                           "address prefix.".format(number, vm_name))
    for source in sources:
        if not _valid_prefix(source):
            raise _refuse(world, here + ': bad prefix', "The allowed source address prefix '{}' of port {} is not an "
                                                        "IP address, a CIDR or '*'.".format(source, number))
    duration = parse_duration(port['maxRequestAccessDuration'])
    if duration is None:
        raise _refuse(world, here + ': duration not ISO 8601',
                      "The maxRequestAccessDuration '{}' of port {} is not an ISO 8601 duration.".format(
                          port['maxRequestAccessDuration'], number))
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise _refuse(world, here + ': duration out of range',
                      "The maxRequestAccessDuration '{}' of port {} must be between 5 minutes and 1 day.".format(
                          port['maxRequestAccessDuration'], number))


@route('DELETE', POLICY, action=JIT_DELETE)
@_audited(JIT_DELETE, 'DELETE', _policy_id_of)
def delete_policy(req):
    """200 (no body) when it existed, 204 when not; Defender's deny and open allow rules go with it."""
    _jit_prelude(req, group=True)
    world = req.world
    pid = _policy_id_of(req)
    with world.lock:
        policy = world.get(pid)
        if policy is None:
            return Response(204)
        _remove_policy_rules(world, policy)
        world.delete(pid)
        state(world)['policies'].pop(pid.lower(), None)
        return Response(200)


def _remove_policy_rules(world, policy):
    """Defender's deny rules of the policy's VMs and the allow rules of its open requests."""
    for ref in _meta(world, policy['id'])['deny'].values():
        _delete_rule(world, ref)
    for request, rmeta in zip(policy['properties']['requests'], _request_metas(world, policy)):
        for ref in rmeta['rules'].values():
            _delete_rule(world, ref)
        for vm in request.get('virtualMachines') or []:
            for port in vm.get('ports') or []:
                if port.get('status') in ACTIVE:   # an allow rule still queued is not written any more
                    port['status'], port['statusReason'] = 'Revoked', 'UserRequested'


@route('POST', POLICY + '/initiate', action=JIT_INITIATE, scope_strip=1)
@_audited(JIT_INITIATE, 'POST', _policy_id_of)
def initiate(req):
    """JitNetworkAccessPolicies_Initiate: open the requested ports (202), if the request is a subset."""
    _jit_prelude(req, group=True)
    req.validate('security-jit', 'JitNetworkAccessPolicies_Initiate')
    world = req.world
    body = req.body
    with world.lock:
        policy = _require_policy(req)
        now = world.clock.now()
        skew = state(world)['clock_skew']
        entries = {e['id'].lower(): e for e in policy['properties']['virtualMachines']}
        subset = "The given access request is not a subset of policy '{}'".format(policy['name'])
        granted, seen = [], set()
        for vm in body['virtualMachines']:
            entry = entries.get(vm['id'].lower())
            if entry is None:
                raise _refuse(world, "VM '{}' is not in the policy".format(vm['id']), subset)
            for port in vm['ports']:
                number = port['number']
                policy_port = next((p for p in entry['ports'] if p['number'] == number), None)
                if policy_port is None:
                    raise _refuse(world, 'port {} is not in the policy for this VM'.format(number), subset)
                if _port_key(vm['id'], number) in seen:
                    raise _refuse(world, 'port {} requested twice'.format(number), subset)
                seen.add(_port_key(vm['id'], number))
                end = utc(port['endTimeUtc'])
                if end <= now:
                    raise _refuse(world, 'port {}: endTimeUtc is not in the future'.format(number), subset)
                limit = parse_duration(policy_port['maxRequestAccessDuration'])
                if limit is None or end > now + limit + skew:
                    raise _refuse(world, 'port {}: longer than maxRequestAccessDuration {}'.format(
                        number, policy_port['maxRequestAccessDuration']), subset)
                source = port.get('allowedSourceAddressPrefix') or req.caller.public_ip
                allowed = _allowed_sources(policy_port)
                if '*' not in allowed and source not in allowed:
                    raise _refuse(world, 'port {}: source {} is not one of {}'.format(number, source, allowed), subset)
                granted.append((vm['id'], entry, policy_port, port, source))
        request = {'virtualMachines': [], 'startTimeUtc': _ticks(now), 'requestor': ''}
        if body.get('justification') is not None:
            request['justification'] = body['justification']
        rmeta = {'caller': req.caller.caller, 'object_id': req.caller.object_id, 'rules': {}}
        metas = _request_metas(world, policy)
        by_vm = {}
        for vm_id, entry, policy_port, port, source in granted:
            _supersede(world, policy, metas, vm_id, port['number'])
            if vm_id.lower() not in by_vm:
                by_vm[vm_id.lower()] = {'id': vm_id, 'ports': []}
                request['virtualMachines'].append(by_vm[vm_id.lower()])
            stored = {'number': port['number'], 'allowedSourceAddressPrefix': source,
                      'endTimeUtc': port['endTimeUtc'], 'status': 'Initiating', 'statusReason': 'UserRequested'}
            by_vm[vm_id.lower()]['ports'].append(stored)
            _queue(world, 'allow', functools.partial(_open_later, world, policy['name'], entry, policy_port, stored,
                                                     rmeta, _port_key(vm_id, port['number'])))
        policy['properties']['requests'].append(request)
        metas.append(rmeta)
        return Response(202, copy.deepcopy(request))


def _open_later(world, policy_name, entry, policy_port, port, rmeta, key):  # pylint: disable=too-many-arguments
    """Defender writes a request port's allow rule, if the port is still open by then."""
    end = _end_time(port)
    if port.get('status') not in ACTIVE or end is None or end <= world.clock.now():
        return
    ref = _open_port(world, {'name': policy_name}, entry, policy_port, port['number'],
                     port['allowedSourceAddressPrefix'])
    if ref:
        rmeta['rules'][key] = ref


def _supersede(world, policy, metas, vm_id, number):
    """A newer request for a VM's port revokes the older one's and removes its allow rule."""
    key = _port_key(vm_id, number)
    for request, rmeta in zip(policy['properties']['requests'], metas):
        for vm in request.get('virtualMachines') or []:
            if vm['id'].lower() != vm_id.lower():
                continue
            for port in vm.get('ports') or []:
                if port.get('number') == number and port.get('status') in ACTIVE:
                    port['status'], port['statusReason'] = 'Revoked', 'NewerRequestInitiated'
                    ref = rmeta['rules'].pop(key, None)
                    if ref:
                        _delete_rule(world, ref)


# -- NSG effects ----------------------------------------------------------------------------------------
def vm_network(world, vm_id):
    """(NSG resource or None, private IP or None) that Defender uses for a VM: the primary NIC's NSG, else
    the NSG of that NIC's primary IP configuration's subnet."""
    vm = world.get(vm_id)
    if vm is None:
        return None, None
    refs = vm['properties'].get('networkProfile', {}).get('networkInterfaces') or []
    ref = next((n for n in refs if (n.get('properties') or {}).get('primary')), refs[0] if refs else None)
    nic = ref and world.get(ref['id'])
    if not nic:
        return None, None
    ipconfigs = nic['properties'].get('ipConfigurations') or []
    ipconfig = next((c for c in ipconfigs if c['properties'].get('primary')), ipconfigs[0] if ipconfigs else None)
    private_ip = ipconfig and ipconfig['properties'].get('privateIPAddress')
    nsg_ref = nic['properties'].get('networkSecurityGroup')
    if not nsg_ref and ipconfig and ipconfig['properties'].get('subnet'):
        subnet = network.find_subnet(world, ipconfig['properties']['subnet']['id'])
        nsg_ref = subnet and subnet['properties'].get('networkSecurityGroup')
    nsg = world.get(nsg_ref['id']) if nsg_ref else None
    return nsg, private_ip


def _inbound_priorities(nsg):
    return {r['properties'].get('priority') for r in nsg['properties']['securityRules']
            if str(r['properties'].get('direction', '')).lower() == 'inbound'}


def _free_priority(world, nsg, candidates, what):
    used = _inbound_priorities(nsg)
    for priority in candidates:
        if priority not in used:
            return priority
    raise _refuse(world, 'no free priority in ' + nsg['id'], 'Network security group {} has no free inbound priority '
                                                             'for the {} rule.'.format(nsg['id'], what))


def _write_rule(world, nsg, name, props):
    for plural in ('sourcePortRanges', 'destinationPortRanges', 'sourceAddressPrefixes', 'destinationAddressPrefixes'):
        props.setdefault(plural, [])
    network.validate_rule(nsg, name, props)
    written = copy.deepcopy(props)   # what Defender sends: the rule as it asks for it, before Azure stores it
    rule, _ = network._store_rule(world, nsg, name, props, 'Succeeded')  # pylint: disable=protected-access
    world.record_event(DEFENDER, 'Microsoft.Network/networkSecurityGroups/securityRules/write', rule['id'],
                       properties={'statusCode': 'OK'}, request_body={'properties': written})
    return rule


def _delete_rule(world, ref, when=None):
    """Remove one of Defender's rules if it is still there (someone may have deleted it already)."""
    nsg = world.get(ref['nsg'])
    rule = nsg and network._find_rule(nsg, ref['rule'])  # pylint: disable=protected-access
    if not rule:
        return False
    nsg['properties']['securityRules'].remove(rule)
    nsg['etag'] = world.new_etag()
    event = world.record_event(DEFENDER, 'Microsoft.Network/networkSecurityGroups/securityRules/delete', rule['id'],
                               http_method='DELETE', properties={'statusCode': 'OK'})
    if when is not None:
        event['eventTimestamp'] = event['submissionTimestamp'] = iso(when)
    return True


def _deny_props(policy, entry, vm, private_ip):
    numbers = []
    for port in entry['ports']:
        if str(port['number']) not in numbers:
            numbers.append(str(port['number']))
    protocols = {str(p['protocol']).upper() for p in entry['ports']}
    protocol = PROTOCOL_TO_NSG[protocols.pop()] if len(protocols) == 1 else '*'
    props = {'description': "ASC JIT Network Access rule for policy '{}' of VM '{}'.".format(
                 policy['name'], vm['name']),
             'protocol': protocol, 'sourcePortRange': '*', 'sourceAddressPrefix': '*',
             'destinationAddressPrefix': private_ip, 'access': 'Deny', 'direction': 'Inbound'}
    if len(numbers) == 1:
        props['destinationPortRange'] = numbers[0]
    else:
        props['destinationPortRanges'] = numbers
    return props


def _port_signature(entry):
    return [(p['number'], str(p['protocol']).upper()) for p in entry['ports']]


def _sync_deny_rules(world, policy, old_entries, new_entries):
    """Deny rules follow the VM list: new VMs get one, changed VMs have theirs rewritten, gone VMs lose it."""
    meta = _meta(world, policy['id'])
    new_ids = {e['id'].lower() for e in new_entries}
    for vm_key in list(meta['deny']):
        if vm_key not in new_ids:
            _delete_rule(world, meta['deny'].pop(vm_key))
    for entry in new_entries:
        vm_key = entry['id'].lower()
        old = old_entries.get(vm_key)
        if old is not None and _port_signature(old) == _port_signature(entry):
            continue  # unchanged: leave its rule alone (even if someone deleted it, or it never had one)
        vm = world.get(entry['id'])
        nsg, private_ip = vm_network(world, entry['id'])
        ref = meta['deny'].get(vm_key)
        current = ref and world.get(ref['nsg'])
        existing = current and network._find_rule(current, ref['rule'])  # pylint: disable=protected-access
        if existing:
            # Ports changed: same rule, same name and priority, new ports.
            props = _deny_props(policy, entry, vm, private_ip or existing['properties']['destinationAddressPrefix'])
            props['priority'] = existing['properties']['priority']
            _write_rule(world, current, existing['name'], props)
            continue
        meta['deny'].pop(vm_key, None)
        if nsg is None or not private_ip:
            continue  # no NSG: Defender still accepts the VM (unconfirmed), nothing to write
        name = 'SecurityCenter-JITRule_{}_{}'.format(_vm_int(entry['id']), uuid.uuid4().hex.upper())
        ref = {'nsg': nsg['id'], 'rule': name}
        meta['deny'][vm_key] = ref
        _queue(world, 'deny', functools.partial(_deny_later, world, policy['id'], policy['name'], entry, vm, ref))


def _deny_later(world, pid, policy_name, entry, vm, ref):  # pylint: disable=too-many-arguments
    """Defender writes a VM's deny rule, if the VM is still in the policy with that rule by then."""
    if _meta(world, pid)['deny'].get(entry['id'].lower()) is not ref:
        return
    nsg, private_ip = vm_network(world, entry['id'])
    if nsg is None or not private_ip or nsg['id'].lower() != ref['nsg'].lower():
        return
    props = _deny_props({'name': policy_name}, entry, vm, private_ip)
    slot = state(world)['renumber_deny_at']
    if slot:
        _make_room(world, nsg, int(slot))
        props['priority'] = int(slot)
    else:
        props['priority'] = _free_priority(world, nsg, range(4096, 99, -1), 'deny')
    _write_rule(world, nsg, ref['rule'], props)


def _make_room(world, nsg, slot):
    """Defender renumbers: the inbound rules from `slot` up to the first free priority each move one down."""
    by_priority = {r['properties'].get('priority'): r for r in nsg['properties']['securityRules']
                   if str(r['properties'].get('direction', '')).lower() == 'inbound'}
    end = slot
    while end in by_priority:
        end += 1
    if end > 4096:
        raise _refuse(world, 'no room to renumber in ' + nsg['id'], 'Network security group {} has no free inbound '
                                                                    'priority for the deny rule.'.format(nsg['id']))
    for priority in range(end - 1, slot - 1, -1):
        by_priority[priority]['properties']['priority'] = priority + 1
        by_priority[priority]['etag'] = world.new_etag()
    if end > slot:
        nsg['etag'] = world.new_etag()


def _open_port(world, policy, entry, policy_port, number, source):
    """Write the allow rule for one requested port; returns its reference, or None when the VM has no NSG."""
    vm = world.get(entry['id'])
    nsg, private_ip = vm_network(world, entry['id'])
    if vm is None or nsg is None or not private_ip:
        return None
    props = {'description': "ASC JIT Network Access rule created by an initiation request for policy '{}' of VM "
                            "'{}'.".format(policy['name'], vm['name']),
             'protocol': PROTOCOL_TO_NSG.get(str(policy_port.get('protocol', '*')).upper(), '*'),
             'sourcePortRange': '*', 'destinationPortRange': str(number), 'sourceAddressPrefix': source,
             'destinationAddressPrefix': private_ip, 'access': 'Allow', 'direction': 'Inbound',
             'priority': _free_priority(world, nsg, range(100, 4097), 'allow')}
    name = 'SecurityCenter-JITRule-{}-{}'.format(_vm_int(entry['id']), uuid.uuid4().hex.upper())
    _write_rule(world, nsg, name, props)
    return {'nsg': nsg['id'], 'rule': name}
