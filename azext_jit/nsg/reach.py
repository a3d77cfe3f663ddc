# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Which rule of one network security group decides whether a class of sources reaches a port of a VM.

Pure: the NSG is its wire JSON (an ARM read or a Resource Graph row, both carry ``properties.securityRules`` and
``properties.defaultSecurityRules``). Azure evaluates inbound rules in priority order, lowest number first, and the
first rule matching the traffic decides. Here the traffic is "a source of the class ``opens`` describes, to
(``port``, ``protocol``) on the VM's private IP (or one of its application security groups)":

- a rule counts only when it covers the port and protocol (``rules.rule_covers_port``) and surely includes the VM
  as a destination (``rules.destination_coverage`` == yes);
- an allow rule decides (the class gets in) when ``opens(rule)`` says its sources count: ``targets`` asks about
  any source (``rules.rule_allows_any_source``), the fleet's exposure report about the internet
  (:func:`rule_opens_to_internet`);
- a deny rule decides (the class is kept out) only when it matches every source (:func:`denies_every_source`: any
  address of the VM's IP family, any source port): a deny rule for some sources leaves the others to the rules
  below it;
- a port asked over ``*`` (TCP and UDP) is judged for each protocol apart;
- an allow rule whose sources do not count is passed over and its label noted ("narrower" rules);
- Azure's default rules count as in Azure, after every custom rule: ``AllowVnetInBound`` (65000, source
  ``VirtualNetwork``, which is not the internet) and ``AllowAzureLoadBalancerInBound`` (65001) are passed over
  unless ``opens`` counts their sources, and ``DenyAllInBound`` (65500) decides when nothing above it did. They
  are taken from ``properties.defaultSecurityRules`` and, when the JSON does not carry them, from Azure's fixed
  set (every NSG has them and nobody can change them). Default rules are never noted as narrower rules: they are in
  every NSG and say nothing about this one.
"""

import ipaddress

from azext_jit.addresses import internet_wide
from azext_jit.nsg.rules import (COVERS_YES, destination_coverage, field_values, is_allow, is_inbound, lower,
                                 priority_of, rule_covers_port, rule_properties, source_prefixes)
from azext_jit.ports import normalize_protocol


def _default(name, priority, access, source, destination):
    return {'name': name, 'properties': {'protocol': '*', 'sourcePortRange': '*', 'destinationPortRange': '*',
                                         'sourceAddressPrefix': source, 'destinationAddressPrefix': destination,
                                         'access': access, 'priority': priority, 'direction': 'Inbound'}}


# Azure's inbound default rules, as every NSG carries them (used when the JSON at hand leaves them out).
DEFAULT_INBOUND_RULES = (
    _default('AllowVnetInBound', 65000, 'Allow', 'VirtualNetwork', 'VirtualNetwork'),
    _default('AllowAzureLoadBalancerInBound', 65001, 'Allow', 'AzureLoadBalancer', '*'),
    _default('DenyAllInBound', 65500, 'Deny', '*', '*'),
)


def nsg_name(nsg):
    """The NSG's name, from its JSON or the last segment of its id."""
    return (nsg or {}).get('name') or str((nsg or {}).get('id') or '<nsg>').rstrip('/').rsplit('/', 1)[-1]


def rule_label(nsg, rule):
    """'nsg/rule', how a rule is named in messages."""
    return f"{nsg_name(nsg)}/{rule.get('name') or '<rule>'}"


def rule_opens_to_internet(rule):
    """True when one of the rule's source prefixes is the internet or a wide public part of it
    (``addresses.internet_wide``). Source application security groups alone never are: their members are VMs."""
    return any(internet_wide(p) for p in source_prefixes(rule))


def inbound_rules(nsg, gone=frozenset()):
    """``[(rule, is_default)]``: the NSG's inbound rules in the order Azure evaluates them, its own first (less those
    in ``gone``: (NSG id, rule name) pairs, lower case, of rules about to be removed), then the default rules."""
    props = (nsg or {}).get('properties') or {}
    nsg_key = lower((nsg or {}).get('id'))
    own = [r for r in props.get('securityRules') or []
           if isinstance(r, dict) and is_inbound(r) and (nsg_key, lower(r.get('name'))) not in gone]
    defaults = [r for r in props.get('defaultSecurityRules') or DEFAULT_INBOUND_RULES
                if isinstance(r, dict) and is_inbound(r)]
    ordered = sorted(own, key=lambda r: priority_of(r) or 0)
    return [(r, False) for r in ordered] + [(r, True) for r in sorted(defaults, key=lambda r: priority_of(r) or 0)]


def first_deciding_rule(nsg, number, protocol, private_ip, asg_ids, opens,  # pylint: disable=too-many-arguments
                        gone=frozenset()):
    """``(rule, narrow)``: the allow rule through which sources that ``opens`` counts reach ``number``/``protocol``
    on the VM (``private_ip``, member of the application security groups ``asg_ids``) through this NSG, or None when
    a deny rule for every source decides first (Azure's ``DenyAllInBound`` when no other rule does); ``narrow``: the
    'nsg/rule' labels of the allow rules passed over on the way because ``opens`` did not count their sources.

    A port asked over ``*`` is judged for TCP and for UDP apart (a deny rule for TCP alone keeps UDP open): the first
    of them that gets in decides."""
    if normalize_protocol(protocol) == '*':
        narrow = []
        for one in ('TCP', 'UDP'):
            rule, passed = first_deciding_rule(nsg, number, one, private_ip, asg_ids, opens, gone)
            narrow += [label for label in passed if label not in narrow]
            if rule is not None:
                return rule, narrow
        return None, narrow
    narrow = []
    for rule, is_default in inbound_rules(nsg, gone):
        if not rule_covers_port(rule, number, protocol) or \
                destination_coverage(rule, private_ip, asg_ids) != COVERS_YES:
            continue
        if is_allow(rule):
            if opens(rule):
                return rule, narrow
            label = rule_label(nsg, rule)
            if not is_default and label not in narrow:
                narrow.append(label)
        elif denies_every_source(rule, private_ip):
            return None, narrow
    return None, narrow


def denies_every_source(rule, private_ip):
    """True when a (deny) rule matches whatever the source: its source addresses cover every address of the VM's IP
    family (``*``, ``Any``, ``Internet``, or a ``/0`` of that family: ``::/0`` keeps no IPv4 source out) and its
    source ports every port (the sender chooses its source port). With the VM's family unknown, only the spellings
    of everyone count."""
    props = rule_properties(rule)
    ports = field_values(props, 'sourcePortRange', 'sourcePortRanges') or ['*']
    if not any(p in ('*', '0-65535') for p in ports):
        return False
    family = _family(private_ip)
    for prefix in source_prefixes(rule):
        value = lower(prefix)
        if value in ('*', 'any', 'internet'):
            return True
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            continue
        if network.prefixlen == 0 and network.version == family:
            return True
    return False


def _family(ip):
    try:
        return ipaddress.ip_address(str(ip).strip()).version
    except ValueError:
        return None
