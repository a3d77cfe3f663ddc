# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Network security group rules as ARM sends them, read and matched the same way by every mode.

Nothing here talks to Azure. Rules are plain dicts in the ARM wire shape (``{"name": ..., "properties":
{...}}``, exactly what ``GET .../networkSecurityGroups/{nsg}`` returns in ``properties.securityRules``);
a flattened dict (the properties at top level) is accepted too. Either the singular or the plural form
of a field (``destinationPortRange`` / ``destinationPortRanges`` ...) may be present.

Protocols. JIT ports speak ``TCP``, ``UDP`` or ``*`` (both, see ``ports.normalize_protocol``); NSG rules speak
``Tcp``, ``Udp``, ``Icmp``, ``Esp``, ``Ah`` or ``*``. Only a rule whose protocol can carry a port number can reach
a protected port: ICMP, ESP and AH have no ports, so such a rule never reaches a port, whatever its port field says.
"""

import ipaddress
import re

from azext_jit.addresses import is_any
from azext_jit.ports import PROTOCOLS, normalize_protocol

INBOUND = "Inbound"
MAX_DESCRIPTION_LENGTH = 140

_TO_NSG_PROTOCOL = {"TCP": "Tcp", "UDP": "Udp", "*": "*"}
# What each NSG protocol can carry, in JIT terms; portless protocols (Icmp, Esp, Ah) carry nothing.
_NSG_PROTOCOL_CARRIES = {"tcp": {"TCP"}, "udp": {"UDP"}, "*": {"TCP", "UDP"}}
# Destinations that always include the VM's private IP: everything, and the VNet the VM lives in.
_ANY_DESTINATIONS = frozenset({"*", "any", "virtualnetwork"})


# ---------------------------------------------------------------------------------------------------------------
# Reading rules
# ---------------------------------------------------------------------------------------------------------------

def rule_properties(rule):
    """The rule's properties, whether the dict is in wire shape (nested ``properties``) or flattened."""
    props = rule.get("properties")
    return props if isinstance(props, dict) else rule


def field_values(props, single, plural):
    """Singular and plural forms of a field merged into one list of stripped strings (singular first)."""
    out = []
    one = props.get(single)
    if one not in (None, ""):
        out.append(str(one).strip())
    for item in props.get(plural) or ():
        if item not in (None, ""):
            out.append(str(item).strip())
    return out


def port_ranges(rule):
    """The rule's destination port ranges as sorted ``(low, high)`` tuples; ``*`` is ``(0, 65535)``.

    Values Azure would not accept are skipped rather than guessed at: they cannot be on a real rule.
    """
    ranges = []
    for value in field_values(rule_properties(rule), "destinationPortRange", "destinationPortRanges"):
        for part in value.split(","):
            parsed = _parse_port_range(part.strip())
            if parsed is not None:
                ranges.append(parsed)
    return sorted(set(ranges))


def _parse_port_range(text):
    if text == "*":
        return (0, 65535)
    match = re.fullmatch(r"([0-9]{1,5})(?:\s*-\s*([0-9]{1,5}))?", text, re.A)
    if not match:
        return None
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) is not None else low
    if not 0 <= low <= high <= 65535:
        return None
    return (low, high)


def source_prefixes(rule):
    """Source address prefixes (singular and plural forms merged)."""
    return field_values(rule_properties(rule), "sourceAddressPrefix", "sourceAddressPrefixes")


def destination_prefixes(rule):
    """Destination address prefixes (singular and plural forms merged)."""
    return field_values(rule_properties(rule), "destinationAddressPrefix", "destinationAddressPrefixes")


def asg_ids(props, key):
    return [str(a.get("id") if isinstance(a, dict) else a) for a in props.get(key) or () if a]


def priority_of(rule):
    try:
        return int(rule_properties(rule).get("priority"))
    except (TypeError, ValueError):
        return None


def lower(value):
    return str(value or "").strip().lower()


def is_inbound(rule):
    return lower(rule_properties(rule).get("direction")) == "inbound"


def is_allow(rule):
    return lower(rule_properties(rule).get("access")) == "allow"


def port_texts(rule):
    """The destination port fields as written (singular and plural merged), for display."""
    return field_values(rule_properties(rule), "destinationPortRange", "destinationPortRanges")


def rules_of(nsg):
    """The NSG's own rules (not its default rules), from its wire JSON; [] for no NSG."""
    return ((nsg or {}).get('properties') or {}).get('securityRules') or []


# ---------------------------------------------------------------------------------------------------------------
# Matching: protocols, ports, addresses
# ---------------------------------------------------------------------------------------------------------------

def to_nsg_protocol(protocol):
    """JIT protocol -> NSG protocol: ``TCP`` -> ``Tcp``, ``UDP`` -> ``Udp``, ``*`` -> ``*``."""
    return _TO_NSG_PROTOCOL[normalize_protocol(protocol)]


def protocols_overlap(jit_protocol, nsg_protocol):
    """True when traffic of the JIT protocol (TCP, UDP or * = both) can match an NSG rule of ``nsg_protocol``.

    ``*`` on either side overlaps TCP and UDP. ``Icmp``, ``Esp``, ``Ah`` (and any protocol Azure may add
    later) carry no ports, so they never reach a port and never overlap.
    """
    carries = _NSG_PROTOCOL_CARRIES.get(lower(nsg_protocol), set())
    jit = normalize_protocol(jit_protocol)
    return bool(carries & ({"TCP", "UDP"} if jit == "*" else {jit}))


def rule_covers_port(rule, port, protocol):
    """True when the rule's destination ports and protocol include ``port`` over ``protocol`` (JIT terms)."""
    if not protocols_overlap(protocol, rule_properties(rule).get("protocol")):
        return False
    return any(low <= int(port) <= high for low, high in port_ranges(rule))


def rule_allows_any_source(rule):
    """True when any of the rule's source prefixes is "any". A source ASG alone is never "any"."""
    return any(is_any(p) for p in source_prefixes(rule))


def prefix_contains_ip(prefix, ip):
    """True when a destination prefix includes ``ip``: ``*``, ``Any``, ``VirtualNetwork``, the IP, a CIDR of it.

    Other service tags (``Internet``, ``AzureLoadBalancer``, ``Storage``...) name public Azure or internet
    ranges, never a VM's private address, so they do not contain it. A rule naming the VM's *public* IP does
    not match either: NSGs see inbound traffic after the public IP has been translated to the private one.
    """
    value = lower(prefix)
    if value in _ANY_DESTINATIONS:
        return True
    try:
        address = ipaddress.ip_address(str(ip).strip())
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return address.version == network.version and address in network


COVERS_YES = "yes"
COVERS_MAYBE = "maybe"
COVERS_NO = "no"


def destination_coverage(rule, private_ip, vm_asg_ids=None):
    """Does the rule's destination include the VM? ``"yes"``, ``"no"`` or ``"maybe"``.

    ``"maybe"``: the destination is an application security group and the VM's ASG membership is unknown
    (``vm_asg_ids`` is None). Pass the ids of the ASGs the VM's NIC IP configuration belongs to for an exact
    answer; ids compare case-insensitively, as ARM ids do.
    """
    props = rule_properties(rule)
    if any(prefix_contains_ip(p, private_ip) for p in destination_prefixes(rule)):
        return COVERS_YES
    asgs = asg_ids(props, "destinationApplicationSecurityGroups")
    if not asgs:
        return COVERS_NO
    if vm_asg_ids is None:
        return COVERS_MAYBE
    mine = {lower(a).rstrip("/") for a in vm_asg_ids}
    return COVERS_YES if any(lower(a).rstrip("/") in mine for a in asgs) else COVERS_NO


def port_pairs(ports):
    """``[(number, protocol)]`` from tuples or objects with ``number``/``protocol`` (ports.PortSpec)."""
    pairs = []
    for item in ports:
        if hasattr(item, "number"):
            number, protocol = item.number, item.protocol
        else:
            number, protocol = item
        pair = (int(number), normalize_protocol(protocol))
        if pair not in pairs:
            pairs.append(pair)
    return pairs


def format_pairs(pairs):
    return ", ".join(f"{n}/{p}" for n, p in pairs)


# ---------------------------------------------------------------------------------------------------------------
# Building and comparing rules
# ---------------------------------------------------------------------------------------------------------------

def set_port_ranges(props, numbers):
    values = [str(n) for n in sorted(set(numbers))]
    if len(values) == 1:
        props["destinationPortRange"] = values[0]
    else:
        props["destinationPortRanges"] = values


def group_ports_by_protocol(ports):
    """``{"TCP": [22, 3389], "UDP": [53]}`` from ``[(number, protocol)]`` or PortSpecs, in TCP, UDP, * order."""
    groups = {}
    for number, protocol in port_pairs(ports):
        groups.setdefault(protocol, [])
        if number not in groups[protocol]:
            groups[protocol].append(number)
    return {p: sorted(groups[p]) for p in PROTOCOLS if p in groups}


def inbound_rule(name, access, protocol, source, destination, port_numbers, priority, description):
    """An inbound rule in wire shape: ``source`` an address prefix or a list of them, ``protocol`` in JIT terms."""
    props = {"protocol": to_nsg_protocol(protocol), "sourcePortRange": "*",
             "destinationAddressPrefix": str(destination), "access": access, "priority": int(priority),
             "direction": INBOUND, "description": description}
    sources = list(source) if isinstance(source, (list, tuple)) else [source]
    if len(sources) == 1:
        props["sourceAddressPrefix"] = str(sources[0])
    else:
        props["sourceAddressPrefixes"] = [str(s) for s in sources]
    set_port_ranges(props, port_numbers)
    return {"name": name, "properties": props}


_COMPARED = ("protocol", "access", "direction", "priority", "description")


def rules_equivalent(a, b):
    """True when two rules would behave the same and carry the same description (names compared too).

    Singular and plural forms compare equal (``"22"`` vs ``["22"]``) and protocol/access/direction compare
    case-insensitively, so ``enable`` can tell "already as wanted" from "needs a write".
    """
    if lower(a.get("name")) != lower(b.get("name")):
        return False
    pa, pb = rule_properties(a), rule_properties(b)
    for key in _COMPARED:
        va, vb = pa.get(key), pb.get(key)
        if key in ("protocol", "access", "direction"):
            va, vb = lower(va), lower(vb)
        if va != vb:
            return False
    pairs = (("sourceAddressPrefix", "sourceAddressPrefixes"), ("destinationAddressPrefix",
             "destinationAddressPrefixes"), ("sourcePortRange", "sourcePortRanges"),
             ("destinationPortRange", "destinationPortRanges"))
    return all(sorted(field_values(pa, s, p)) == sorted(field_values(pb, s, p)) for s, p in pairs)
