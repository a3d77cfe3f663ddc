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
"""

import ipaddress

from .errors import BadInput

ANY = "*"
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
