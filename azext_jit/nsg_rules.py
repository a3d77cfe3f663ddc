"""Pure NSG logic for JIT: which existing rules conflict, which priorities to use, and our own rules.

Nothing here talks to Azure. Rules are plain dicts in the ARM wire shape (``{"name": ..., "properties":
{...}}``, exactly what ``GET .../networkSecurityGroups/{nsg}`` returns in ``properties.securityRules``);
a flattened dict (the properties at top level) is accepted too. Either the singular or the plural form
of a field (``destinationPortRange`` / ``destinationPortRanges`` ...) may be present.

Protocols. JIT ports speak ``TCP``, ``UDP`` or ``*`` (both); NSG rules speak ``Tcp``, ``Udp``, ``Icmp``,
``Esp``, ``Ah`` or ``*``. Only a rule whose protocol can carry a port number can reach a protected port:
ICMP, ESP and AH have no ports, so such a rule never conflicts with a port, whatever its port field says.

Conflicts (see :func:`classify_conflicts`). What matters to an admin is what can still let traffic in
once JIT protects a port, and only *Allow* rules let traffic in:

- an inbound Allow rule that lets **any** source (``*``, ``Internet``, ``Any``, ``0.0.0.0/0``, ``::/0``)
  reach a protected port of the VM is removed by ``enable`` (after asking) and restored by ``disable``,
  whatever its priority. Even a rule that the deny rule already shadows is removed: the contract says so,
  Defender picks its own deny priority (seen: 1000, 4095, 4096) and "may shift other rules' priorities",
  and ``disable`` puts the rule back anyway. A rule is removed whole, so if it also opens other ports,
  protocols or addresses, those close too until ``disable``; the removal reason says so.
- an inbound Allow rule with a narrower source that reaches a protected port *and* beats the deny rule
  (lower priority number) is listed in a warning: JIT does not override it. One that comes after the
  deny rule is shadowed by it and not listed.
- Deny rules are never listed: a user's deny in front of ours only blocks more, which is harmless. (A
  user's Deny could, in theory, sit in front of the allow rules of requests too; it cannot in practice,
  because requests take the lowest free numbers from 100 upward, see :func:`choose_allow_priorities`.)
- rules whose destination is an application security group: the VM's NIC may or may not be a member.
  Without the VM's ASG ids (``vm_asg_ids``) such a rule "may cover" the VM; it is then only warned
  about, never removed, because deleting a rule we cannot tie to this VM could cut access to other VMs.
  With ``vm_asg_ids`` the membership is exact and the rule is treated like any other.
- rules ``az vm jit`` created (:func:`is_ours`), Defender's rules (:func:`is_defender`) and Azure's
  default rules (priority 65000+, which cannot be removed and never beat a deny) are never conflicts.
- source *ports* are ignored: the client picks its source port, so restricting it protects nothing.

Priorities: 100..4096, lower number wins, unique per direction inside one NSG. The NSG itself refuses a
duplicate (400 ``SecurityRuleConflict``), which is what makes concurrent requests safe: the caller reads
the NSG, chooses with these functions, writes, and on a conflict re-reads and chooses again.
"""

import hashlib
import ipaddress
import re
import secrets
from collections import namedtuple
from dataclasses import dataclass, field
from datetime import datetime, timezone

from azure.cli.core.azclierror import InvalidArgumentValueError, ValidationError

from .addresses import is_any

MIN_PRIORITY = 100
MAX_PRIORITY = 4096
DEFAULT_DENY_PRIORITY = 1000
MAX_NAME_LENGTH = 80
MAX_DESCRIPTION_LENGTH = 140
INBOUND = "Inbound"

JIT_PROTOCOLS = ("TCP", "UDP", "*")
_TO_NSG_PROTOCOL = {"TCP": "Tcp", "UDP": "Udp", "*": "*"}
# What each NSG protocol can carry, in JIT terms; portless protocols (Icmp, Esp, Ah) carry nothing.
_NSG_PROTOCOL_CARRIES = {"tcp": {"TCP"}, "udp": {"UDP"}, "*": {"TCP", "UDP"}}
# Protocol word used inside our rule names: '*' is not allowed in a resource name.
_NAME_PROTOCOL = {"TCP": "tcp", "UDP": "udp", "*": "any"}
_NAME_PROTOCOL_BACK = {v: k for k, v in _NAME_PROTOCOL.items()}

# Destinations that always include the VM's private IP: everything, and the VNet the VM lives in.
_ANY_DESTINATIONS = frozenset({"*", "any", "virtualnetwork"})

NAME_PREFIX = "AzVmJit-"
_HEX8 = "[0-9a-f]{8}"
_DENY_NAME_RE = re.compile(r"^AzVmJit-Deny-(?P<vmkey>{0})-(?P<proto>tcp|udp|any)$".format(_HEX8), re.I | re.A)
_ALLOW_NAME_RE = re.compile(r"^AzVmJit-Allow-(?P<vmkey>{0})-(?P<rid>{0})-(?P<port>[0-9]{{1,5}})-(?P<proto>tcp|udp|any)$"
                            .format(_HEX8), re.I | re.A)
# Defender: deny `SecurityCenter-JITRule_<int>_<32 hex>`, allow `SecurityCenter-JITRule-<int>-<32 hex>`; the int
# is signed (`_-123_`); Microsoft's self-help guide also shows the mixed `_-123-` form, so separators are free.
_DEFENDER_NAME_RE = re.compile(r"^SecurityCenter-JITRule[_-]-?[0-9]+[_-][0-9a-f]{32}$", re.I | re.A)
_REQUEST_ID_RE = re.compile("^{}$".format(_HEX8), re.I | re.A)

_DESCRIPTION_TAG = "az vm jit:"
_ALLOW_DESCRIPTION = _DESCRIPTION_TAG + " open until {until} for {requestor}, request {request_id}"
_ALLOW_DESCRIPTION_RE = re.compile(r"^az vm jit: open until (?P<until>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) "
                                   r"for (?P<requestor>.+), request (?P<rid>[0-9a-f]{8})$", re.A | re.S)
_UNTIL_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_UNKNOWN_REQUESTOR = "unknown"
_ELLIPSIS = "..."

RuleName = namedtuple("RuleName", "kind vmkey request_id port protocol")
RuleName.__doc__ = """A parsed rule name of ours: kind "deny"|"allow"; request_id and port are None for a deny."""
AllowDescription = namedtuple("AllowDescription", "until requestor request_id")
AllowDescription.__doc__ = """What an allow rule's description carries: aware UTC expiry, requestor, request id."""


@dataclass
class Conflicts:
    """Result of :func:`classify_conflicts`.

    ``remove``: rule dicts ``enable`` removes (and records for ``disable`` to restore).
    ``warn``: ``(rule dict, reason)`` for rules JIT leaves alone but the admin must know about.
    ``remove_reasons``: rule name -> one-line reason for each removed rule, saying when the rule also opened
    other ports, protocols or addresses ("... also opens ports 80,443 ...; 'az vm jit disable' restores it").
    """

    remove: list = field(default_factory=list)
    warn: list = field(default_factory=list)
    remove_reasons: dict = field(default_factory=dict)

    def __bool__(self):
        return bool(self.remove or self.warn)


# ---------------------------------------------------------------------------------------------------------------
# Reading rules
# ---------------------------------------------------------------------------------------------------------------

def rule_properties(rule):
    """The rule's properties, whether the dict is in wire shape (nested ``properties``) or flattened."""
    props = rule.get("properties")
    return props if isinstance(props, dict) else rule


def _values(props, single, plural):
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
    for value in _values(rule_properties(rule), "destinationPortRange", "destinationPortRanges"):
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
    return _values(rule_properties(rule), "sourceAddressPrefix", "sourceAddressPrefixes")


def destination_prefixes(rule):
    """Destination address prefixes (singular and plural forms merged)."""
    return _values(rule_properties(rule), "destinationAddressPrefix", "destinationAddressPrefixes")


def _asg_ids(props, key):
    return [str(a.get("id") if isinstance(a, dict) else a) for a in props.get(key) or () if a]


def _priority(rule):
    try:
        return int(rule_properties(rule).get("priority"))
    except (TypeError, ValueError):
        return None


def _lower(value):
    return str(value or "").strip().lower()


def is_inbound(rule):
    return _lower(rule_properties(rule).get("direction")) == "inbound"


def is_allow(rule):
    return _lower(rule_properties(rule).get("access")) == "allow"


# ---------------------------------------------------------------------------------------------------------------
# Matching: protocols, ports, addresses
# ---------------------------------------------------------------------------------------------------------------

def normalize_jit_protocol(protocol):
    """``tcp``/``Tcp``/``TCP`` -> ``TCP``, ``udp`` -> ``UDP``, ``*`` -> ``*``; anything else is refused."""
    value = str(protocol or "").strip().upper()
    if value not in JIT_PROTOCOLS:
        raise InvalidArgumentValueError(
            "Invalid protocol '{}': a JIT port's protocol must be TCP, UDP or *.".format(protocol),
            "Write the port as NUMBER or NUMBER/PROTOCOL, e.g. 22 or 53/udp.")
    return value


def to_nsg_protocol(protocol):
    """JIT protocol -> NSG protocol: ``TCP`` -> ``Tcp``, ``UDP`` -> ``Udp``, ``*`` -> ``*``."""
    return _TO_NSG_PROTOCOL[normalize_jit_protocol(protocol)]


def protocols_overlap(jit_protocol, nsg_protocol):
    """True when traffic of the JIT protocol (TCP, UDP or * = both) can match an NSG rule of ``nsg_protocol``.

    ``*`` on either side overlaps TCP and UDP. ``Icmp``, ``Esp``, ``Ah`` (and any protocol Azure may add
    later) carry no ports, so they never reach a port and never overlap.
    """
    carries = _NSG_PROTOCOL_CARRIES.get(_lower(nsg_protocol), set())
    jit = normalize_jit_protocol(jit_protocol)
    return bool(carries & ({"TCP", "UDP"} if jit == "*" else {jit}))


def rule_covers_port(rule, port, protocol):
    """True when the rule's destination ports and protocol include ``port`` over ``protocol`` (JIT terms)."""
    if not protocols_overlap(protocol, rule_properties(rule).get("protocol")):
        return False
    return any(low <= int(port) <= high for low, high in port_ranges(rule))


def is_any_source(prefix):
    """True for the spellings of "the whole internet": ``*``, ``Internet``, ``Any``, ``0.0.0.0/0``, ``::/0``."""
    return is_any(prefix)


def rule_allows_any_source(rule):
    """True when any of the rule's source prefixes is "any". A source ASG alone is never "any"."""
    return any(is_any_source(p) for p in source_prefixes(rule))


def prefix_contains_ip(prefix, ip):
    """True when a destination prefix includes ``ip``: ``*``, ``Any``, ``VirtualNetwork``, the IP, a CIDR of it.

    Other service tags (``Internet``, ``AzureLoadBalancer``, ``Storage``...) name public Azure or internet
    ranges, never a VM's private address, so they do not contain it. A rule naming the VM's *public* IP does
    not match either: NSGs see inbound traffic after the public IP has been translated to the private one.
    """
    value = _lower(prefix)
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
    asgs = _asg_ids(props, "destinationApplicationSecurityGroups")
    if not asgs:
        return COVERS_NO
    if vm_asg_ids is None:
        return COVERS_MAYBE
    mine = {_lower(a).rstrip("/") for a in vm_asg_ids}
    return COVERS_YES if any(_lower(a).rstrip("/") in mine for a in asgs) else COVERS_NO


# ---------------------------------------------------------------------------------------------------------------
# Conflicts
# ---------------------------------------------------------------------------------------------------------------

def _port_pairs(ports):
    """``[(number, protocol)]`` from tuples or objects with ``number``/``protocol`` (ports.PortSpec)."""
    pairs = []
    for item in ports:
        if hasattr(item, "number"):
            number, protocol = item.number, item.protocol
        else:
            number, protocol = item
        pair = (int(number), normalize_jit_protocol(protocol))
        if pair not in pairs:
            pairs.append(pair)
    return pairs


def _fmt_ports(pairs):
    return ", ".join("{}/{}".format(n, p) for n, p in pairs)


def _fmt_ranges(ranges, limit=12):
    parts = [str(lo) if lo == hi else "{}-{}".format(lo, hi) for lo, hi in ranges]
    if len(parts) > limit:
        parts = parts[:limit] + ["..."]
    return ",".join(parts)


def _subtract(ranges, numbers):
    """Port ranges minus single port numbers, merged and sorted."""
    out = []
    for low, high in ranges:
        start = low
        for n in sorted(x for x in set(numbers) if low <= x <= high):
            if n > start:
                out.append((start, n - 1))
            start = n + 1
        if start <= high:
            out.append((start, high))
    merged = []
    for low, high in sorted(out):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return merged


def _describe_sources(rule):
    props = rule_properties(rule)
    names = source_prefixes(rule)
    names += ["application security group " + a.rsplit("/", 1)[-1]
              for a in _asg_ids(props, "sourceApplicationSecurityGroups")]
    return ", ".join(names) or "an unspecified source"


def _describe_destinations(rule):
    props = rule_properties(rule)
    names = destination_prefixes(rule)
    names += ["application security group " + a.rsplit("/", 1)[-1]
              for a in _asg_ids(props, "destinationApplicationSecurityGroups")]
    return ", ".join(names) or "an unspecified destination"


def _is_only_vm(prefix, private_ip):
    """True when the prefix names exactly the VM's address (``10.0.0.4`` or ``10.0.0.4/32``)."""
    try:
        network = ipaddress.ip_network(str(prefix).strip(), strict=False)
        return network.num_addresses == 1 and network.network_address == ipaddress.ip_address(str(private_ip).strip())
    except ValueError:
        return False


def _removal_reason(rule, matched, private_ip, vm_asg_ids):
    """Why a rule is removed, plus what else it opened that closes with it until ``disable``."""
    name = rule.get("name", "?")
    props = rule_properties(rule)
    reason = "rule '{}' lets any source ({}) reach {} of the VM ({}) at priority {}: it is removed while JIT " \
             "protects the VM and 'az vm jit disable' restores it".format(
                 name, _describe_sources(rule), _fmt_ports(matched), private_ip, props.get("priority"))
    extra = []
    ranges = port_ranges(rule)
    other_ports = _subtract(ranges, [n for n, _ in matched])
    if (0, 65535) in ranges:
        extra.append("every other port")
    elif other_ports:
        extra.append("ports " + _fmt_ranges(other_ports))
    # A '*' rule also carried the other protocol on the protected ports unless they are protected as '*'.
    if _lower(props.get("protocol")) == "*" and any(p != "*" for _, p in matched):
        extra.append("other protocols on {}".format(", ".join(str(n) for n, p in matched if p != "*")))
    others = [d for d in destination_prefixes(rule) if not _is_only_vm(d, private_ip)]
    if _asg_ids(props, "destinationApplicationSecurityGroups") and vm_asg_ids is not None:
        others.append("its application security groups")
    if others:
        extra.append("other addresses than the VM ({})".format(", ".join(others)))
    if extra:
        reason += "; note that it also opens {}, which stay closed until then".format(" and ".join(extra))
    return reason


def classify_conflicts(rules, protected_ports, private_ip, deny_priority, vm_asg_ids=None):
    """Sort an NSG's rules into those ``enable`` removes and those it only warns about.

    ``rules``: the NSG's ``securityRules`` (wire-shape dicts). ``protected_ports``: ``[(number, protocol)]``
    in JIT terms (or ports.PortSpec). ``private_ip``: the VM's private IP, the destination of the deny rule.
    ``deny_priority``: the priority of the JIT deny rule (for Defender mode, Defender's deny priority if
    known, else 4096, the worst case seen, which lists every allow rule that may keep precedence).
    ``vm_asg_ids``: optional ASG ids of the VM's NIC; None means unknown (ASG destinations "may cover").
    Rules in both lists are sorted by priority. See the module docstring for the reasoning.
    """
    protected = _port_pairs(protected_ports)
    deny_priority = int(deny_priority)
    result = Conflicts()
    for rule in sorted(rules or (), key=lambda r: (_priority(r) or 0, str(r.get("name", "")))):
        name = str(rule.get("name", ""))
        priority = _priority(rule)
        if not is_inbound(rule) or not is_allow(rule) or is_ours(name) or is_defender(name):
            continue
        if priority is None or priority > MAX_PRIORITY:  # Azure's default rules: fixed, never ahead of a deny
            continue
        matched = [(n, p) for n, p in protected if rule_covers_port(rule, n, p)]
        if not matched:
            continue
        coverage = destination_coverage(rule, private_ip, vm_asg_ids)
        if coverage == COVERS_NO:
            continue
        any_source = rule_allows_any_source(rule)
        beats = priority < deny_priority
        if any_source and coverage == COVERS_YES:
            result.remove.append(rule)
            result.remove_reasons[name] = _removal_reason(rule, matched, private_ip, vm_asg_ids)
        elif any_source:
            result.warn.append((rule, (
                "rule '{}' lets any source ({}) reach {} of {} at priority {}: if the VM's network interface "
                "belongs to that group, the port stays open to the internet; JIT does not remove a rule it "
                "cannot tie to the VM".format(name, _describe_sources(rule), _fmt_ports(matched),
                                              _describe_destinations(rule), priority))))
        elif beats:
            target = "the VM ({})".format(private_ip) if coverage == COVERS_YES else \
                "{} (which may include the VM)".format(_describe_destinations(rule))
            result.warn.append((rule, (
                "rule '{}' lets {} reach {} of {} at priority {}, ahead of the JIT deny rule at {}: JIT does "
                "not override it".format(name, _describe_sources(rule), _fmt_ports(matched), target, priority,
                                         deny_priority))))
    return result


# ---------------------------------------------------------------------------------------------------------------
# Priorities
# ---------------------------------------------------------------------------------------------------------------

def used_priorities(rules, direction=INBOUND):
    """Priorities taken by rules of ``direction`` (case-insensitive); default rules (65000+) included as is."""
    wanted = _lower(direction)
    out = set()
    for rule in rules or ():
        if _lower(rule_properties(rule).get("direction")) == wanted:
            priority = _priority(rule)
            if priority is not None:
                out.add(priority)
    return out


def choose_deny_priority(used, preferred=DEFAULT_DENY_PRIORITY):
    """``preferred`` (1000) if free, else the nearest free priority, searching 1000, 1001, 999, 1002, 998...

    On a tie the larger number (lower precedence) wins: when 1000 is taken by someone's rule, 1001 keeps the
    deny behind that rule as it would have been at 1000, whereas 999 would jump in front of it and silently
    start overriding a rule the admin wrote. Raises ValidationError when 100..4096 are all taken.
    """
    taken = set(used or ())
    preferred = min(max(int(preferred), MIN_PRIORITY), MAX_PRIORITY)
    for distance in range(0, MAX_PRIORITY - MIN_PRIORITY + 1):
        for candidate in (preferred + distance, preferred - distance):
            if MIN_PRIORITY <= candidate <= MAX_PRIORITY and candidate not in taken:
                return candidate
    raise ValidationError(
        "The network security group has no free inbound priority between {} and {} for the JIT deny rule."
        .format(MIN_PRIORITY, MAX_PRIORITY),
        "Remove or merge some inbound rules of the network security group, then run the command again.")


def choose_allow_priorities(used, count, ceiling):
    """The ``count`` lowest free priorities from 100 upward, all strictly below ``ceiling`` (the deny rule's).

    Lowest numbers, so a request's allow rule wins over everything an admin may have put in front of the
    deny rule (including a Deny, see the module docstring). Raises ValidationError when there are not enough.
    """
    count = int(count)
    if count <= 0:
        return []
    taken = set(used or ())
    top = min(int(ceiling), MAX_PRIORITY + 1)
    free = [p for p in range(MIN_PRIORITY, top) if p not in taken][:count]
    if len(free) < count:
        raise ValidationError(
            "The network security group has {} free inbound priorit{} from {} up to the JIT deny rule at {}, "
            "but {} {} needed.".format(len(free), "y" if len(free) == 1 else "ies", MIN_PRIORITY, int(ceiling),
                                       count, "is" if count == 1 else "are"),
            "Close expired access with 'az vm jit cleanup', request fewer ports at once, or free priorities "
            "below {} in the network security group.".format(int(ceiling)))
    return free


# ---------------------------------------------------------------------------------------------------------------
# Our rule names
# ---------------------------------------------------------------------------------------------------------------

def vm_key(vm_id):
    """8 lowercase hex of sha256 of the lowercased VM resource id (ARM ids are case-insensitive).

    A hash, not the VM name: names are up to 64 characters and an NSG rule name only 80, and one subnet NSG
    can hold rules of VMs from several resource groups with the same name. 32 bits make a clash between two
    VMs of one NSG negligible.
    """
    text = str(vm_id or "").strip().rstrip("/").lower()
    if not text:
        raise InvalidArgumentValueError("A VM resource id is needed to name its JIT rules.",
                                        "Give the VM with -g/-n or --ids.")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def new_request_id():
    """A fresh request id: 8 lowercase hex (32 random bits; only needs to be unique per VM)."""
    return secrets.token_hex(4)


def normalize_request_id(request_id):
    """Lowercase an 8-hex request id; refuse anything else (it becomes part of rule names)."""
    value = str(request_id or "").strip()
    if not _REQUEST_ID_RE.match(value):
        raise InvalidArgumentValueError(
            "Invalid request id '{}': a request id is 8 hexadecimal characters, e.g. 1a2b3c4d.".format(request_id),
            "Copy the request id from 'az vm jit show' or 'az vm jit list'.")
    return value.lower()


def _valid_port(port):
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidArgumentValueError("Invalid port '{}': a port number must be between 0 and 65535."
                                        .format(port), "Use a port number such as 22 or 3389.")
    return port


def deny_rule_name(vm_id, protocol):
    """``AzVmJit-Deny-<vmkey>-<tcp|udp|any>``: the VM's deny rule for the ports of one protocol.

    Names start with ``AzVmJit-`` so they read as ours in the portal and can never be mistaken for Defender's
    ``SecurityCenter-JITRule...``; they use only ``[A-Za-z0-9-]`` and end with a letter, as Azure requires.
    """
    return "{}Deny-{}-{}".format(NAME_PREFIX, vm_key(vm_id), _NAME_PROTOCOL[normalize_jit_protocol(protocol)])


def allow_rule_name(vm_id, request_id, port, protocol):
    """``AzVmJit-Allow-<vmkey>-<requestid>-<port>-<tcp|udp|any>`` (at most 45 characters).

    One allow rule per request and port, so ``revoke --ports`` can close some ports of a request; the
    protocol is in the name because 53/TCP and 53/UDP may be requested together.
    """
    return "{}Allow-{}-{}-{}-{}".format(NAME_PREFIX, vm_key(vm_id), normalize_request_id(request_id),
                                        _valid_port(port), _NAME_PROTOCOL[normalize_jit_protocol(protocol)])


def parse_rule_name(name):
    """``RuleName(kind, vmkey, request_id, port, protocol)`` for names we generate, else None.

    Case-insensitive (Azure keeps the case we wrote, but people retype names); results are lowercase hex and
    JIT protocols (TCP, UDP, *).
    """
    text = str(name or "").strip()
    match = _DENY_NAME_RE.match(text)
    if match:
        return RuleName("deny", match.group("vmkey").lower(), None, None,
                        _NAME_PROTOCOL_BACK[match.group("proto").lower()])
    match = _ALLOW_NAME_RE.match(text)
    if match and int(match.group("port")) <= 65535:
        return RuleName("allow", match.group("vmkey").lower(), match.group("rid").lower(), int(match.group("port")),
                        _NAME_PROTOCOL_BACK[match.group("proto").lower()])
    return None


def is_ours(name):
    """True for every rule name starting with ``AzVmJit-`` (case-insensitive).

    Deliberately broader than :func:`parse_rule_name`: if a later version adds a new kind of rule, an older
    version must still leave it alone rather than take it for a user's rule and remove it as a conflict.
    """
    return _lower(name).startswith(NAME_PREFIX.lower())


def is_defender(name):
    """True for Defender's JIT rule names: ``SecurityCenter-JITRule_<int>_<32 hex>`` (deny) and
    ``SecurityCenter-JITRule-<int>-<32 hex>`` (allow); the int may be negative (``_-123_``)."""
    return bool(_DEFENDER_NAME_RE.match(str(name or "").strip()))


# ---------------------------------------------------------------------------------------------------------------
# Our rule descriptions
# ---------------------------------------------------------------------------------------------------------------

def _utc(when):
    """An aware UTC datetime at second precision; a naive datetime is taken to be UTC already."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).replace(microsecond=0)


def allow_description(until, requestor, request_id):
    """``az vm jit: open until 2026-11-25T15:00:00Z for alice@contoso.com, request 1a2b3c4d`` (<= 140 chars).

    The description is where NSG mode keeps what ``cleanup`` and ``list`` need (expiry, who, which request),
    so another machine finds it in Azure. The expiry is cut to the second (never later than asked). The
    requestor is shortened with "..." to fit; control characters become spaces; an empty one is "unknown".
    """
    rid = normalize_request_id(request_id)
    stamp = _utc(until).strftime(_UNTIL_FORMAT)
    who = " ".join("".join(ch if ch.isprintable() else " " for ch in str(requestor or "")).split())
    who = who or _UNKNOWN_REQUESTOR
    room = MAX_DESCRIPTION_LENGTH - len(_ALLOW_DESCRIPTION.format(until=stamp, requestor="", request_id=rid))
    if len(who) > room:
        who = who[:room - len(_ELLIPSIS)].rstrip() + _ELLIPSIS
    return _ALLOW_DESCRIPTION.format(until=stamp, requestor=who, request_id=rid)


def parse_allow_description(text):
    """``AllowDescription(until, requestor, request_id)`` from :func:`allow_description`'s text, else None.

    The regex is anchored at both ends, so a requestor containing ", request " still parses.
    """
    match = _ALLOW_DESCRIPTION_RE.match(str(text or ""))
    if not match:
        return None
    try:
        until = datetime.strptime(match.group("until"), _UNTIL_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return AllowDescription(until, match.group("requestor"), match.group("rid"))


def deny_description(vm_name):
    """``az vm jit: protects VM '<name>'``, the VM name shortened with "..." to stay within 140 chars."""
    name = str(vm_name or "")
    room = MAX_DESCRIPTION_LENGTH - len("{} protects VM ''".format(_DESCRIPTION_TAG))
    if len(name) > room:
        name = name[:room - len(_ELLIPSIS)] + _ELLIPSIS
    return "{} protects VM '{}'".format(_DESCRIPTION_TAG, name)


# ---------------------------------------------------------------------------------------------------------------
# Building our rules
# ---------------------------------------------------------------------------------------------------------------

def _set_port_ranges(props, numbers):
    values = [str(n) for n in sorted(set(numbers))]
    if len(values) == 1:
        props["destinationPortRange"] = values[0]
    else:
        props["destinationPortRanges"] = values


def build_deny_rule(vm_id, vm_name, private_ip, protocol, port_numbers, priority):
    """The deny rule for the VM's protected ports of one protocol: source any, destination the private IP.

    A VM gets one deny rule per protocol in its policy (TCP ports together, UDP together, ``*`` together):
    one rule with protocol ``*`` for 22/TCP and 53/UDP would also block 22/UDP and 53/TCP, ports nobody
    asked to protect. In the usual TCP-only policy that is one rule, like Defender's.
    """
    numbers = [_valid_port(int(n)) for n in port_numbers]
    if not numbers:
        raise InvalidArgumentValueError("No port to protect: a deny rule needs at least one port.",
                                        "Give ports with --ports, e.g. --ports 22 3389.")
    props = {"protocol": to_nsg_protocol(protocol), "sourcePortRange": "*", "sourceAddressPrefix": "*",
             "destinationAddressPrefix": str(private_ip), "access": "Deny", "priority": int(priority),
             "direction": INBOUND, "description": deny_description(vm_name)}
    _set_port_ranges(props, numbers)
    return {"name": deny_rule_name(vm_id, protocol), "properties": props}


def group_ports_by_protocol(ports):
    """``{"TCP": [22, 3389], "UDP": [53]}`` from ``[(number, protocol)]`` or PortSpecs, in TCP, UDP, * order."""
    groups = {}
    for number, protocol in _port_pairs(ports):
        groups.setdefault(protocol, [])
        if number not in groups[protocol]:
            groups[protocol].append(number)
    return {p: sorted(groups[p]) for p in JIT_PROTOCOLS if p in groups}


def build_deny_rules(vm_id, vm_name, private_ip, ports, rules, preferred=DEFAULT_DENY_PRIORITY):
    """All deny rules the VM needs (one per protocol), with priorities; idempotent against ``rules``.

    A deny rule of ours that already exists under the same name keeps its priority, so running ``enable``
    twice yields identical rules; new ones get :func:`choose_deny_priority` around ``preferred``, each
    taken number excluded for the next. The allow rules of requests must sit below the smallest of them
    (:func:`deny_ceiling`).
    """
    existing = {str(r.get("name", "")).lower(): _priority(r) for r in rules or () if is_inbound(r)}
    used = used_priorities(rules)
    out = []
    for protocol, numbers in group_ports_by_protocol(ports).items():
        name = deny_rule_name(vm_id, protocol)
        priority = existing.get(name.lower())
        if priority is None:
            priority = choose_deny_priority(used, preferred)
        used.add(priority)
        out.append(build_deny_rule(vm_id, vm_name, private_ip, protocol, numbers, priority))
    return out


def deny_ceiling(rules, vm_id):
    """The smallest priority among the VM's deny rules of ours in ``rules``, or None when it has none."""
    key = vm_key(vm_id)
    found = []
    for rule in rules or ():
        parsed = parse_rule_name(rule.get("name"))
        if parsed and parsed.kind == "deny" and parsed.vmkey == key and _priority(rule) is not None:
            found.append(_priority(rule))
    return min(found) if found else None


def build_allow_rule(vm_id, request_id, port, protocol, source, private_ip, priority, until, requestor):
    """One request's allow rule for one port: from ``source`` (an IP/CIDR, or a list of them) to the private IP.

    The description carries expiry, requestor and request id (:func:`allow_description`), which is all
    ``cleanup`` and ``list`` need to work from any machine.
    """
    props = {"protocol": to_nsg_protocol(protocol), "sourcePortRange": "*",
             "destinationAddressPrefix": str(private_ip), "destinationPortRange": str(_valid_port(int(port))),
             "access": "Allow", "priority": int(priority), "direction": INBOUND,
             "description": allow_description(until, requestor, request_id)}
    if isinstance(source, (list, tuple)):
        if len(source) == 1:
            props["sourceAddressPrefix"] = str(source[0])
        else:
            props["sourceAddressPrefixes"] = [str(s) for s in source]
    else:
        props["sourceAddressPrefix"] = str(source)
    return {"name": allow_rule_name(vm_id, request_id, port, protocol), "properties": props}


_COMPARED = ("protocol", "access", "direction", "priority", "description")


def rules_equivalent(a, b):
    """True when two rules would behave the same and carry the same description (names compared too).

    Singular and plural forms compare equal (``"22"`` vs ``["22"]``) and protocol/access/direction compare
    case-insensitively, so ``enable`` can tell "already as wanted" from "needs a write".
    """
    if _lower(a.get("name")) != _lower(b.get("name")):
        return False
    pa, pb = rule_properties(a), rule_properties(b)
    for key in _COMPARED:
        va, vb = pa.get(key), pb.get(key)
        if key in ("protocol", "access", "direction"):
            va, vb = _lower(va), _lower(vb)
        if va != vb:
            return False
    pairs = (("sourceAddressPrefix", "sourceAddressPrefixes"), ("destinationAddressPrefix",
             "destinationAddressPrefixes"), ("sourcePortRange", "sourcePortRanges"),
             ("destinationPortRange", "destinationPortRanges"))
    return all(sorted(_values(pa, s, p)) == sorted(_values(pb, s, p)) for s, p in pairs)
