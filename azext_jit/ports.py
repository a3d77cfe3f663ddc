# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Ports as users type them: ``22``, ``22/tcp``, ``53/UDP``, ``3389/*``.

Defender's JIT port rules carry one number and a protocol of ``TCP``, ``UDP`` or ``*``; nothing else
(no ranges, no ICMP), so anything else is refused here with a message rather than by the service.

A port typed without a protocol means TCP when *configuring* a policy, but when *requesting* access it
means "that port, whatever protocol the policy gives it" (Defender's initiate body has no protocol at
all). :class:`PortSpec` therefore remembers whether the protocol was typed: ``protocol`` is always a
usable value ("TCP" by default) so code that only needs a protocol never meets ``None``, and
``protocol_explicit`` (left out of equality and hashing) tells ``policy.check_request`` to match by number.
"""

import re
from dataclasses import dataclass, field

from .errors import BadInput

PROTOCOLS = ("TCP", "UDP", "*")
DEFAULT_PROTOCOL = "TCP"
MIN_PORT = 1   # port 0 is reserved: no service listens on it, and Azure NSG rules cannot name it alone
MAX_PORT = 65535

_PORT_RE = re.compile(r"^(?P<number>[0-9]+)(?:/(?P<protocol>[^/]*))?$", re.ASCII)
_EXAMPLE = "e.g. --ports 22 3389 53/udp"


def normalize_protocol(text):
    """``tcp``/``Tcp`` -> ``TCP``, ``udp`` -> ``UDP``, ``*`` -> ``*``; anything else is refused.

    ``any`` is deliberately not accepted: NSG rules spell "any protocol" as ``*`` and so does Defender,
    and a second spelling would only make stored policies compare unequal.
    """
    value = (text or "").strip().upper()
    if value not in PROTOCOLS:
        raise BadInput(
            f"Invalid protocol '{text}': a JIT port's protocol must be TCP, UDP or *.",
            f"Write the port as NUMBER or NUMBER/PROTOCOL, {_EXAMPLE}")
    return value


@dataclass(frozen=True)
class PortSpec:
    """One port and its protocol. ``protocol_explicit`` is False when the user typed only the number."""

    number: int
    protocol: str = DEFAULT_PROTOCOL
    protocol_explicit: bool = field(default=True, compare=False)

    def __post_init__(self):
        if isinstance(self.number, bool) or not isinstance(self.number, int) \
                or not MIN_PORT <= self.number <= MAX_PORT:
            raise BadInput(
                f"Invalid port '{self.number}': a port number must be between {MIN_PORT} and {MAX_PORT}.",
                f"Use a port number such as 22 or 3389, {_EXAMPLE}")
        object.__setattr__(self, "protocol", normalize_protocol(self.protocol))

    def overlaps(self, other):
        """True when both name the same port number and some protocol in common (``*`` covers both)."""
        return self.number == other.number and (
            self.protocol == other.protocol or "*" in (self.protocol, other.protocol))

    def __str__(self):
        return f"{self.number}/{self.protocol}"


def parse_port(text):
    """Parse ``22``, ``22/tcp``, ``53/UDP`` or ``3389/*`` (whitespace around the parts is ignored)."""
    raw = text
    text = re.sub(r"\s+", "", str(text))
    match = _PORT_RE.match(text)
    if not match:
        if re.match(r"^\d+-\d+(/.*)?$", text, re.ASCII):
            rule = "JIT ports are single numbers, not ranges"
        else:
            rule = "write a port as NUMBER or NUMBER/PROTOCOL with protocol TCP, UDP or *"
        raise BadInput(
            f"Invalid port '{raw}': {rule}.",
            f"List each port separately, {_EXAMPLE}")
    number = int(match.group("number"))
    if not MIN_PORT <= number <= MAX_PORT:
        raise BadInput(
            f"Invalid port '{raw}': a port number must be between {MIN_PORT} and {MAX_PORT}.",
            f"Use a port number such as 22 or 3389, {_EXAMPLE}")
    protocol = match.group("protocol")
    if protocol is None:
        return PortSpec(number, DEFAULT_PROTOCOL, protocol_explicit=False)
    return PortSpec(number, normalize_protocol(protocol))


def parse_ports(values):
    """Parse a list of port texts, each possibly comma- or space-separated (``["22,3389", "53/udp"]``).

    az already splits ``--ports 22 3389``; commas are accepted because people paste them. A single
    string is accepted too. Repeating a port (or overlapping it, e.g. ``22/tcp`` and ``22/*``) is refused:
    it is almost always a typo, and a policy cannot hold the same port twice. Empty input is refused.
    """
    if isinstance(values, str):
        values = [values]
    pieces = [p for value in (values or []) for p in re.split(r"[,\s]+", str(value)) if p]
    if not pieces:
        raise BadInput("No ports given: at least one port is needed.",
                       f"Name the ports, {_EXAMPLE}")
    specs = []
    for piece in pieces:
        spec = parse_port(piece)
        for seen in specs:
            if spec.overlaps(seen):
                what = "is given twice" if spec == seen else f"overlaps {seen}"
                raise BadInput(
                    f"Port {piece} {what}: each port may appear only once.",
                    f"Remove the duplicate, {_EXAMPLE}")
        specs.append(spec)
    return specs


def format_ports(specs):
    """``22/TCP, 3389/TCP`` for messages."""
    return ", ".join(str(s) for s in specs)
