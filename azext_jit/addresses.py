# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Source address prefixes: single IPs, CIDRs and "any", for IPv4 and IPv6.

Everything that compares sources (policy checks, Defender's exact-match rule, NSG conflict detection)
goes through :func:`normalize_prefix` first, so ``10.0.0.5/32`` and ``10.0.0.5``, or ``Internet`` and
``0.0.0.0/0``, are recognised as the same thing. Canonical forms:

- ``*`` for any source (also typed ``Any``, ``Internet``, ``0.0.0.0/0``: the NSG spellings of "everyone");
- a bare address for a single host (``/32`` and ``/128`` are dropped; IPv6 is compressed, lower case);
- ``network/length`` for a network. Host bits set (``10.0.0.5/8``) are refused, not silently masked:
  the user probably meant either the host or the network, and we cannot tell which.

``::/0`` is kept as written: it is "every IPv6 address", not "every address", so it must not contain
IPv4 sources. :func:`is_any` still calls it "any" because for a request or a conflicting NSG rule it is
equally open to the whole internet.

An IPv6 zone index (``fe80::1%eth0``) is refused: it names an interface of the machine that typed it, means
nothing in an NSG rule, and Python would otherwise carry it into the rule.

:func:`is_narrow` is what "one source" means when a policy allows ``*``: one address, or a network of at
most :data:`WIDEST_IPV4` (``/24``, 256 addresses) or :data:`WIDEST_IPV6` (``/64``, one subnet) bits.
"""

import ipaddress

from .errors import BadInput

ANY = "*"
WIDEST_IPV4 = 24   # the widest source a request may name when the policy allows any source, per family
WIDEST_IPV6 = 64
_ANY_SPELLINGS = frozenset({"*", "any", "internet", "0.0.0.0/0"})
_EXAMPLE = "e.g. 203.0.113.7, 10.0.0.0/24 or 2001:db8::/32"


def normalize_prefix(text):
    """Return the canonical form of an IP, CIDR or "any" spelling; refuse anything else."""
    raw = text
    value = str(text if text is not None else "").strip()
    if value.lower() in _ANY_SPELLINGS:
        return ANY
    if not value:
        raise BadInput("Empty source address: give an IP address or CIDR.",
                       f"Use an IP address or CIDR, {_EXAMPLE}")
    address, _, zone = value.partition("%")
    if zone and _is_ipv6_address(address):
        zone, _, length = zone.partition("/")
        plain = f"{address}/{length}" if length else address
        raise BadInput(
            f"Invalid source address '{raw}': the zone index %{zone} names a network interface of your own machine "
            "and means nothing in an NSG rule.",
            f"Leave out the zone index: {plain}")
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as ex:
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise BadInput(
                f"Invalid source address '{raw}': it is not an IP address or CIDR.",
                f"Use an IP address or CIDR, {_EXAMPLE}") from ex
        host = str(ipaddress.ip_address(value.split("/", 1)[0]))
        raise BadInput(
            f"Invalid source address '{raw}': the CIDR has host bits set, its network is {loose}.",
            f"Use {loose} for the whole network, or {host} for the single host.") from ex
    return _format(network)


def _is_ipv6_address(text):
    try:
        ipaddress.IPv6Address(text)
        return True
    except ValueError:
        return False


def _format(network):
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def normalize_prefixes(values):
    """Normalise a list (items may be comma/space separated) and drop duplicates, keeping the first order."""
    if isinstance(values, str):
        values = [values]
    out = []
    for value in values or []:
        for piece in str(value).replace(",", " ").split():
            prefix = normalize_prefix(piece)
            if prefix not in out:
                out.append(prefix)
    return out


def is_any(prefix):
    """True for a source that lets everyone in: ``*``, ``Any``, ``Internet``, ``0.0.0.0/0``, ``::/0``.

    Never raises: NSG rules may carry service tags (``VirtualNetwork``) or lists, which are simply not "any".
    """
    if prefix is None:
        return False
    value = str(prefix).strip().lower()
    if value in _ANY_SPELLINGS:
        return True
    try:
        return ipaddress.ip_network(value, strict=False).prefixlen == 0
    except ValueError:
        return False


def contains(outer, inner):
    """True when every address of ``inner`` lies in ``outer``. ``*`` contains everything; only ``*`` contains ``*``.

    Both are normalised first (so invalid text raises). IPv4 and IPv6 never contain each other.
    """
    outer, inner = normalize_prefix(outer), normalize_prefix(inner)
    if outer == ANY:
        return True
    if inner == ANY:
        return False
    outer_net, inner_net = ipaddress.ip_network(outer), ipaddress.ip_network(inner)
    if outer_net.version != inner_net.version:
        return False
    return inner_net.subnet_of(outer_net)


def normalize_if_valid(text):
    """The canonical form of a stored or read-back source when it parses, else the text as written (a service tag,
    junk): such a value then simply matches and contains nothing. Never raises."""
    try:
        return normalize_prefix(text)
    except BadInput:
        return str(text or "").strip()


def comparable_prefix(text):
    """A source as compared against a rule's, so ``1.2.3.4/32`` and ``1.2.3.4`` (or ``VirtualNetwork`` and
    ``virtualnetwork``) compare equal."""
    return normalize_if_valid(text).lower()


def widest_length(version):
    """The widest prefix length a request may name under a policy of ``*``: 24 for IPv4, 64 for IPv6."""
    return WIDEST_IPV4 if version == 4 else WIDEST_IPV6


def version_of(prefix):
    """4 or 6 for an address or network (any accepted spelling), None for ``*``, a service tag or junk."""
    value = normalize_if_valid(prefix)
    if value == ANY:
        return None
    try:
        return ipaddress.ip_network(value).version
    except ValueError:
        return None


def is_narrow(prefix):
    """True for one address, or a network no wider than /24 (IPv4) or /64 (IPv6). Invalid text raises."""
    value = normalize_prefix(prefix)
    if value == ANY:
        return False
    network = ipaddress.ip_network(value)
    return network.prefixlen >= widest_length(network.version)


# -- the internet: which sources count as "anyone out there" ---------------------------------------------------
WIDE_IPV4 = 16   # a public IPv4 range of /16 (65,536 addresses) or wider counts as the internet
WIDE_IPV6 = 48   # a public IPv6 range of /48 (one site's allocation) or wider counts as the internet
_PRIVATE_RANGES = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",   # RFC 1918
    "100.64.0.0/10",                                   # RFC 6598, carrier-grade NAT
    "fc00::/7"))                                       # RFC 4193, unique local IPv6
# Service tags naming public addresses anyone can obtain: the internet itself, and every Azure customer's
# public IPs (anyone can rent a VM there), whole or per region (AzureCloud.WestEurope).
_WIDE_TAGS = frozenset({"internet", "azurecloud"})


def internet_wide(prefix):
    """True when a source lets the internet in, or so much of it that the difference does not matter. Never raises.

    - any spelling of everyone: ``*``, ``Any``, ``Internet``, ``0.0.0.0/0``, ``::/0``;
    - the ``AzureCloud`` service tag (and its regional forms such as ``AzureCloud.WestEurope``): every public IP of
      Azure, which anyone can rent;
    - a range of :data:`WIDE_IPV4` (/16) or wider for IPv4, :data:`WIDE_IPV6` (/48) or wider for IPv6, that is not
      entirely private: private means inside RFC 1918 (10/8, 172.16/12, 192.168/16), 100.64/10 (carrier-grade
      NAT) or fc00::/7 (unique local IPv6). A wide range that is only partly private (``0.0.0.0/1``) counts. No
      other reserved range (loopback, link-local, multicast) is treated as private: the bound errs towards
      "exposed".

    Narrower public ranges (a /17, one address) are someone's, not everyone's. Other service tags
    (``VirtualNetwork``, ``AzureLoadBalancer``, ``Storage``...) and invalid text are not the internet. A list (or
    tuple) of prefixes is wide when any of its items is. Host bits are ignored (``20.1.2.3/8`` is ``20.0.0.0/8``).
    """
    if isinstance(prefix, (list, tuple, set, frozenset)):
        return any(internet_wide(p) for p in prefix)
    if prefix is None:
        return False
    value = str(prefix).strip().lower()
    if is_any(value) or value.split(".", 1)[0] in _WIDE_TAGS:
        return True
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    if network.prefixlen > (WIDE_IPV4 if network.version == 4 else WIDE_IPV6):
        return False
    return not any(network.version == private.version and network.subnet_of(private) for private in _PRIVATE_RANGES)
