# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""A fleet written straight into the stand-in's world, with its ground truth (for the fleet benchmark and tests).

    manifest = build_estate(standin, subscriptions=5, groups=100, vms=2000, exposed=200, expired_rules=300, seed=11)

Resource groups are spread round-robin over the subscriptions, VMs (shuffled by `seed`) round-robin over the groups.
Every group has one VNet with three subnets: `closed` (a shared NSG that lets nothing in from the internet: SSH from
10.0.0.0/8 and HTTPS from anywhere), `open` (a shared NSG that lets SSH and RDP in from anywhere: a legacy jump-host
subnet) and `bare` (no NSG). Each VM has one NIC with one IP configuration, a private IP unique in the fleet and a
Standard, a Basic or no public IP (addresses unique too), and is built from one scenario (`SCENARIOS`):

exposed (management ports reachable from the internet)
    nic_any       NIC NSG allows 22 from `*` (bare subnet)                       22/TCP
    subnet_any    no NIC NSG, in the open subnet                                 22/TCP, 3389/TCP
    both          open subnet, and the NIC NSG allows 3389 from `Internet`       3389/TCP
    internet_tag  NIC NSG allows 3389 (any protocol) from `Internet`             3389/TCP
    basic_no_nsg  Basic public IP, no NSG on NIC or subnet (open by default)     22/TCP, 3389/TCP
    wide_range    NIC NSG allows 22 from 40.0.0.0/12 (a public /12)              22/TCP
    jit_drift     JIT (NSG mode), and someone added "allow 22 from 0.0.0.0/0" at priority 200, above JIT's deny rule
                  (`manifest.unprotected`: `list` must not call them protected)  22/TCP
not exposed (decoys)
    deny_first    NIC NSG: deny 22, 3389 from `*` at 250 before allow them from `*` at 400
    private_source NIC NSG allows 22 from 10.0.0.0/8 only
    narrow_source NIC NSG allows 22 from a public /24 only
    udp_only      NIC NSG allows 22/UDP from `*` (the management port is TCP)
    other_port    NIC NSG allows 443 from `*`
    standard_no_nsg  Standard public IP, no NSG (closed to inbound unless an NSG allows it)
    no_public_ip  open subnet, no public IP
    subnet_denies NIC NSG allows 22 from `*`, the closed subnet's NSG does not
    saved_in_subnet  open subnet, and its NSG denies 22, 3389 from `*` to this VM's IP at 200-299, above the allow
    plain         closed subnet, a Standard, Basic or no public IP, sometimes a NIC NSG allowing 443 (most VMs)
    jit_nic       JIT (NSG mode), deny rules in its own NIC NSG (bare subnet)
    jit_subnet    JIT (NSG mode), deny rules in the closed subnet's shared NSG
    jit_defender  JIT (Defender), its deny rule written by Defender into its NIC NSG (bare subnet)

NSG-mode JIT VMs carry the policy tag and the deny rules exactly as `enable` writes them (made with the product's own
record helpers), and between them `expired_rules` expired allow rules and a third as many still open ones (one port
per request, from a /32, as `request` writes them). Open rules end 2 to 20 hours after the build, expired ones ended 1
to 20 hours before it, by the world's clock. The manifest is the ground truth, from how the estate was built: never
from product code.
"""
import ipaddress
import random
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from . import arm, compute, network, security

EXPOSED_SCENARIOS = ('nic_any', 'subnet_any', 'both', 'internet_tag', 'basic_no_nsg', 'wide_range', 'jit_drift')
DECOY_SCENARIOS = ('deny_first', 'private_source', 'narrow_source', 'udp_only', 'other_port', 'standard_no_nsg',
                   'no_public_ip', 'subnet_denies', 'saved_in_subnet')
JIT_SCENARIOS = ('jit_nic', 'jit_subnet', 'jit_defender')
SCENARIOS = EXPOSED_SCENARIOS + DECOY_SCENARIOS + JIT_SCENARIOS + ('plain',)
PORTS = {'nic_any': ('22/TCP',), 'subnet_any': ('22/TCP', '3389/TCP'), 'both': ('3389/TCP',),
         'internet_tag': ('3389/TCP',), 'basic_no_nsg': ('22/TCP', '3389/TCP'), 'wide_range': ('22/TCP',),
         'jit_drift': ('22/TCP',)}
NSG_MODE_SCENARIOS = ('jit_nic', 'jit_subnet', 'jit_drift')
LOCATIONS = ('westeurope', 'northeurope', 'eastus', 'westus2')
JIT_PORTS = (22, 3389)
PUBLIC_BASE = ipaddress.IPv4Address('20.40.0.0')
PRIVATE_BASE = ipaddress.IPv4Address('10.0.0.0')
GROUP_SPAN = 4096            # each group's VNet is a /20 of 10.0.0.0/8
SUBNETS = ('closed', 'open', 'bare')   # the /24s at offsets 0, 256, 512 of the group's /20
REQUESTOR = 'ops@contoso.test'


@dataclass
class Manifest:  # pylint: disable=too-many-instance-attributes  # one field per kind of truth
    """The ground truth of an estate. Ids as built (compare them case-insensitively)."""
    subscriptions: list
    groups: list = field(default_factory=list)           # [(subscription id, resource group)]
    scenarios: dict = field(default_factory=dict)        # VM id -> scenario
    exposed: dict = field(default_factory=dict)          # VM id -> ('22/TCP', ...) reachable from the internet
    jit: dict = field(default_factory=dict)              # VM id -> 'nsg' | 'defender'
    expired_rules: list = field(default_factory=list)    # [(NSG id, rule name)] expired NSG-mode allow rules
    open_rules: list = field(default_factory=list)       # [(NSG id, rule name)] NSG-mode allow rules still open
    requests: dict = field(default_factory=dict)         # JIT VM id -> {request id: 'expired' | 'active'}
    unprotected: set = field(default_factory=set)        # NSG-mode JIT VM ids an allow-any rule above JIT's deny opens

    @property
    def vm_ids(self):
        return list(self.scenarios)

    def exposed_pairs(self):
        """{(VM id lower case, '22/TCP')} of every exposed port."""
        return {(vm.lower(), port) for vm, ports in self.exposed.items() for port in ports}

    def count(self, scenario):
        return sum(1 for s in self.scenarios.values() if s == scenario)


def _rule(name, access, priority, source, ports, protocol='Tcp', destination='*', description=''):
    props = {'priority': priority, 'direction': 'Inbound', 'access': access, 'protocol': protocol,
             'sourcePortRange': '*', 'sourceAddressPrefix': source, 'destinationAddressPrefix': destination}
    if len(ports) == 1:
        props['destinationPortRange'] = str(ports[0])
    else:
        props['destinationPortRanges'] = [str(p) for p in ports]
    if description:
        props['description'] = description
    return {'name': name, 'properties': props}


# The NIC NSG rules of each scenario (other than JIT's own), and where the VM sits.
NIC_RULES = {
    'nic_any': [_rule('AllowSSH', 'Allow', 300, '*', [22])],
    'both': [_rule('AllowRdpFromInternet', 'Allow', 310, 'Internet', [3389])],
    'internet_tag': [_rule('RDP', 'Allow', 320, 'Internet', [3389], protocol='*')],
    'wide_range': [_rule('Allow-SSH-Partner', 'Allow', 330, '40.0.0.0/12', [22])],
    'jit_drift': [_rule('AllowSshAnywhere', 'Allow', 200, '0.0.0.0/0', [22])],
    'deny_first': [_rule('DenyMgmt', 'Deny', 250, '*', [22, 3389]), _rule('AllowMgmt', 'Allow', 400, '*', [22, 3389])],
    'private_source': [_rule('AllowSshCorp', 'Allow', 300, '10.0.0.0/8', [22])],
    'narrow_source': [_rule('AllowSshVendor', 'Allow', 300, '52.10.20.0/24', [22])],
    'udp_only': [_rule('AllowMosh', 'Allow', 300, '*', [22], protocol='Udp')],
    'other_port': [_rule('AllowHttps', 'Allow', 300, '*', [443])],
    'subnet_denies': [_rule('AllowSSH', 'Allow', 300, '*', [22])],
    'jit_nic': [], 'jit_defender': [],
}
SUBNET_OF = {'subnet_any': 'open', 'both': 'open', 'no_public_ip': 'open', 'saved_in_subnet': 'open',
             'subnet_denies': 'closed', 'jit_subnet': 'closed', 'plain': 'closed'}
SUBNET_RULES = {
    'closed': [_rule('AllowSshFromCorp', 'Allow', 500, '10.0.0.0/8', [22]),
               _rule('AllowHttpsInbound', 'Allow', 510, '*', [443])],
    'open': [_rule('AllowJumpHost', 'Allow', 300, '*', [22, 3389])],
    'bare': None,
}


def subscription_ids(count, seed):
    return [str(uuid.uuid5(uuid.NAMESPACE_DNS, 'fleet-{}-{}.standin'.format(seed, i))) for i in range(count)]


def _plan(vms, exposed, rng):
    """The scenario of every VM: exactly `exposed` exposed ones (spread over the causes), each decoy about 1 %, JIT
    VMs about 15 %, and the rest plain; shuffled."""
    plan = [EXPOSED_SCENARIOS[i % len(EXPOSED_SCENARIOS)] for i in range(exposed)]
    share = max(1, vms // 100)
    plan += [d for d in DECOY_SCENARIOS for _ in range(share)]
    plan += ['jit_nic'] * max(1, vms * 8 // 100) + ['jit_subnet'] * max(1, vms * 5 // 100)
    plan += ['jit_defender'] * max(1, vms * 2 // 100)
    if len(plan) > vms:
        raise ValueError('{} VMs are too few for {} exposed ones and the decoys and JIT VMs beside them ({} needed)'
                         .format(vms, exposed, len(plan)))
    plan += ['plain'] * (vms - len(plan))
    rng.shuffle(plan)
    return plan


def _add_subscription(world, sub, name):
    """Known to ARM, with the admin identity (when there is one) its Owner."""
    if hasattr(world, 'add_subscription'):
        world.add_subscription(sub, name)
    else:
        world.subscriptions[sub] = name
    admin = world.identities.get('admin')
    if admin is not None:
        world.assign(admin, 'Owner', '/subscriptions/' + sub)


class _Builder:
    def __init__(self, world, rng):
        self.world, self.rng = world, rng
        self.now = world.clock.now()
        self.public_count = 0
        self.used = {}          # NSG id lower -> inbound priorities taken

    def public_ip(self, sub, rg, name, location, sku):
        self.public_count += 1
        address = str(PUBLIC_BASE + self.public_count)
        pip = network.create_public_ip(self.world, sub, rg, name, address, location)
        pip['sku'] = {'name': sku, 'tier': 'Regional'}
        if sku == 'Basic':
            pip['properties']['publicIPAllocationMethod'] = 'Dynamic'
        return pip['id']

    def nsg(self, sub, rg, name, location, rules):
        nsg = network.create_nsg(self.world, sub, rg, name, location, rules)
        self.used[nsg['id'].lower()] = {r['properties']['priority'] for r in rules}
        return nsg['id']

    def place(self, nsg_id, rule):
        taken = self.used[nsg_id.lower()]
        priority = rule['properties']['priority']
        if priority in taken:
            raise AssertionError('priority {} is taken in {}'.format(priority, nsg_id))
        taken.add(priority)
        compute.place_rule(self.world, nsg_id, rule)

    def free_allow_priority(self, nsg_id):
        taken = self.used[nsg_id.lower()]
        priority = next(p for p in range(100, 1000) if p not in taken)
        return priority


def build_estate(standin, subscriptions=5, groups=100, vms=2000, exposed=200, expired_rules=300, seed=11):
    """Write the fleet into `standin.world` (no HTTP) and return its `Manifest`. See the module docstring."""
    from azext_jit.modes import nsg_mode_records as records
    from azext_jit.policy import JitPolicy, PortPolicy
    from azext_jit import vm_records
    world = standin.world
    rng = random.Random(seed)
    subs = subscription_ids(subscriptions, seed)
    manifest = Manifest(subscriptions=subs)
    build = _Builder(world, rng)
    policy = JitPolicy(tuple(PortPolicy(p, 'TCP', timedelta(hours=3)) for p in JIT_PORTS))
    policy_tags = vm_records.encode(records.POLICY_TAG, policy.to_dict())
    with world.lock:
        for i, sub in enumerate(subs):
            _add_subscription(world, sub, 'Fleet {} ({})'.format(i + 1, seed))
        plan = _plan(vms, exposed, rng)
        layout = []   # per group: (sub, rg, location, {subnet: (subnet id, NSG id or None)})
        for g in range(groups):
            sub, rg, location = subs[g % len(subs)], 'fleet-{:03d}'.format(g), LOCATIONS[g % len(LOCATIONS)]
            world.put(arm.rg_id(sub, rg), {'id': arm.rg_id(sub, rg), 'name': rg, 'type': arm.RG_TYPE,
                                           'location': location, 'tags': {},
                                           'properties': {'provisioningState': 'Succeeded'}})
            manifest.groups.append((sub, rg))
            base = PRIVATE_BASE + g * GROUP_SPAN
            subnets = []
            nsgs = {}
            for s, name in enumerate(SUBNETS):
                rules = SUBNET_RULES[name]
                nsg_id = None if rules is None else build.nsg(sub, rg, 'nsg-' + name, location, rules)
                nsgs[name] = nsg_id
                subnets.append((name, '{}/24'.format(base + 256 * s), nsg_id))
            vnet = network.create_vnet(world, sub, rg, 'vnet-' + rg, '{}/20'.format(base), subnets, location)
            layout.append((sub, rg, location, {s['name']: (s, nsgs[s['name']]) for s in vnet['properties']['subnets']}))
        hosts = {}         # (group, subnet) -> next host number
        defender = {}      # group -> [VM ids]
        nsg_mode_vms = []  # (VM id, governing NSG id, private IP)
        for i, scenario in enumerate(plan):
            g = i % groups
            sub, rg, location, subnets = layout[g]
            subnet_name = SUBNET_OF.get(scenario, 'bare')
            subnet, subnet_nsg = subnets[subnet_name]
            host = hosts.get((g, subnet_name), 4)
            if host > 254:
                raise ValueError('more than 250 VMs of group {} in its {} subnet'.format(rg, subnet_name))
            hosts[(g, subnet_name)] = host + 1
            private_ip = str(ipaddress.IPv4Network(subnet['properties']['addressPrefix']).network_address + host)
            name = 'vm{:05d}'.format(i)
            sku = _sku(scenario, rng)
            pip_id = build.public_ip(sub, rg, name + '-ip', location, sku) if sku else None
            nic_nsg = None
            if scenario in NIC_RULES or (scenario == 'plain' and rng.random() < 0.3):
                nic_nsg = build.nsg(sub, rg, name + '-nsg', location, NIC_RULES.get(scenario, NIC_RULES['other_port']))
            nic = network.create_nic(world, sub, rg, name + '-nic', subnet['id'], private_ip, pip_id, nic_nsg, location)
            subnet['properties']['ipConfigurations'].append({'id': nic['properties']['ipConfigurations'][0]['id']})
            tags = {'env': rng.choice(('prod', 'test', 'dev')), 'owner': 'team-{}'.format(g % 7)}
            vm_id = compute.create_vm(world, sub, rg, name, [nic['id']], location,
                                      'Windows' if i % 3 == 0 else 'Linux', tags)['id']
            manifest.scenarios[vm_id] = scenario
            if scenario in PORTS:
                manifest.exposed[vm_id] = PORTS[scenario]
            if scenario == 'saved_in_subnet':
                priority = next(p for p in range(200, 300) if p not in build.used[subnet_nsg.lower()])
                build.place(subnet_nsg, _rule('DenyMgmt-' + name, 'Deny', priority, '*', list(JIT_PORTS),
                                              destination=private_ip))
            if scenario in NSG_MODE_SCENARIOS:
                governing = nic_nsg or subnet_nsg
                world.get(vm_id)['tags'].update(policy_tags)
                for rule in records.build_deny_rules(vm_id, name, private_ip, [(p, 'TCP') for p in JIT_PORTS],
                                                     world.get(governing)['properties']['securityRules']):
                    build.place(governing, rule)
                manifest.jit[vm_id] = 'nsg'
                if scenario == 'jit_drift':
                    manifest.unprotected.add(vm_id)
                manifest.requests[vm_id] = {}
                nsg_mode_vms.append((vm_id, governing, private_ip))
            if scenario == 'jit_defender':
                defender.setdefault(g, []).append(vm_id)
                manifest.jit[vm_id] = 'defender'
                manifest.requests[vm_id] = {}
        _allow_rules(build, manifest, nsg_mode_vms, expired_rules, records)
        for g, vm_ids in defender.items():
            sub, rg, location, _ = layout[g]
            security.add_policy(world, rg, location, [security.jit_vm(v, ports=JIT_PORTS, protocol='TCP')
                                                      for v in vm_ids], subscription=sub,
                                provisioning_state='Succeeded')
    security.settle(world)
    return manifest


def _sku(scenario, rng):
    if scenario == 'no_public_ip':
        return None
    if scenario == 'basic_no_nsg':
        return 'Basic'
    if scenario == 'plain':
        return rng.choice(('Standard', 'Standard', 'Basic', None))
    return 'Standard'


def _allow_rules(build, manifest, nsg_mode_vms, expired_rules, records):
    """`expired_rules` expired allow rules and a third as many open ones, round-robin over the NSG-mode JIT VMs in a
    shuffled order (so some VMs have several, some none)."""
    rng, now = build.rng, build.now
    if not nsg_mode_vms and expired_rules:
        raise ValueError('no NSG-mode JIT VM to hold the expired rules')
    order = list(nsg_mode_vms)
    rng.shuffle(order)
    wanted = [True] * expired_rules + [False] * (expired_rules // 3)
    for n, expired in enumerate(wanted):
        vm_id, nsg_id, private_ip = order[n % len(order)]
        request_id = '{:08x}'.format(rng.getrandbits(32))
        while request_id in manifest.requests[vm_id]:
            request_id = '{:08x}'.format(rng.getrandbits(32))
        port = JIT_PORTS[n % 2]
        if expired:
            until = now - timedelta(hours=1, minutes=rng.randrange(0, 19 * 60))
        else:
            until = now + timedelta(hours=2, minutes=rng.randrange(0, 18 * 60))
        source = '203.0.113.{}'.format(1 + n % 250)
        rule = records.build_allow_rule(vm_id, request_id, port, 'TCP', source, private_ip,
                                        build.free_allow_priority(nsg_id), until, REQUESTOR, 'fleet estate')
        build.place(nsg_id, rule)
        (manifest.expired_rules if expired else manifest.open_rules).append((nsg_id, rule['name']))
        manifest.requests[vm_id][request_id] = 'expired' if expired else 'active'
