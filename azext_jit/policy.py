# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The JIT policy of one VM and the checks a request must pass, independent of where it is stored.

Both modes (a Defender ``jitNetworkAccessPolicies`` entry, or our own NSG-mode storage) are mapped to
:class:`JitPolicy` by the backends, so a request is refused here, before anything is written, with the
same message in both modes. Defender answers a bad request only with "The given access request is not a
subset of policy", which does not say which rule was broken; these checks do.

The model is canonical: ports are kept sorted, allowed sources normalised, deduplicated and sorted, so
two policies with the same settings compare equal however they were typed or returned by Azure. That is
what lets ``enable`` notice "nothing to change" and stay idempotent.
"""

import ipaddress
from dataclasses import dataclass, replace
from datetime import timedelta

from .addresses import (ANY, WIDEST_IPV4, WIDEST_IPV6, contains, is_any, is_narrow, normalize_if_valid,
                        normalize_prefix, normalize_prefixes, version_of, widest_length)
from .durations import MIN_DURATION, check_max_duration, describe, parse_duration, to_iso8601
from .errors import BadInput
from .ports import PortSpec, format_ports, normalize_protocol, parse_port

_PROTOCOL_ORDER = {"TCP": 0, "UDP": 1, "*": 2}


def _source_order(prefix):
    """Sort key: ``*`` first, then IPv4 before IPv6 by address and length; unparsable text last, as text."""
    if prefix == ANY:
        return (0,)
    try:
        net = ipaddress.ip_network(prefix)
        return (1, net.version, int(net.network_address), net.prefixlen)
    except ValueError:
        return (2, prefix)


@dataclass(frozen=True)
class PortPolicy:
    """One protected port: who may ask for it (``allowed_sources``) and for how long at most."""

    number: int
    protocol: str
    max_duration: timedelta
    allowed_sources: tuple = (ANY,)

    def __post_init__(self):
        object.__setattr__(self, "protocol", normalize_protocol(self.protocol))
        if isinstance(self.allowed_sources, str):
            object.__setattr__(self, "allowed_sources", (self.allowed_sources,))
        sources = []
        for prefix in self.allowed_sources:
            prefix = normalize_if_valid(prefix)
            if prefix not in sources:
                sources.append(prefix)
        object.__setattr__(self, "allowed_sources", tuple(sorted(sources, key=_source_order)))

    @property
    def allows_any_source(self):
        return ANY in self.allowed_sources

    def __str__(self):
        return f"{self.number}/{self.protocol}"


@dataclass(frozen=True)
class JitPolicy:
    """The JIT configuration of one VM. ``ports`` is kept sorted by number, then TCP, UDP, ``*``."""

    ports: tuple
    require_approval: bool = False

    def __post_init__(self):
        object.__setattr__(self, "ports", tuple(sorted(self.ports, key=lambda p: (p.number,
                                                                                  _PROTOCOL_ORDER[p.protocol]))))
        object.__setattr__(self, "require_approval", bool(self.require_approval))

    def port(self, number, protocol=None):
        """The entry for ``number`` (and ``protocol``, which a ``*`` entry also matches), or None.

        Without a protocol the first entry of that number is returned (TCP before UDP before ``*``).
        """
        for entry in self.ports:
            if entry.number != number:
                continue
            if protocol is None or entry.protocol in ("*", normalize_protocol(protocol)):
                return entry
        return None

    def describe_ports(self):
        """``22/TCP, 3389/TCP`` for messages."""
        return format_ports(self.ports)

    def to_dict(self):
        """Stable JSON form used for display and storage (keys and order never depend on how it was built)."""
        return {
            "ports": [{"number": p.number, "protocol": p.protocol, "maxDuration": to_iso8601(p.max_duration),
                       "allowedSources": list(p.allowed_sources)} for p in self.ports],
            "requireApproval": self.require_approval,
        }

    @classmethod
    def from_dict(cls, data):
        """Inverse of :meth:`to_dict`, checked like user input: the tags it is read from can be written by people
        outside JIT (Tag Contributor, VM Contributor), so a stored policy may hold nothing `enable` would refuse
        (ports 1..65535, each once; a maximum of 5 minutes to 24 hours; sources that parse, `*` alone). Unknown
        keys are ignored (newer writers); ``requireApproval`` defaults to False. Anything else raises
        ``ValueError``: it comes from storage, not from the user's arguments, so the caller decides how to report it.
        """
        try:
            ports = []
            for item in data["ports"]:
                number = item["number"]
                if isinstance(number, bool) or not isinstance(number, int):
                    raise ValueError(f"port number {number!r} is not an integer")
                sources = item["allowedSources"]
                if isinstance(sources, str) or not isinstance(sources, (list, tuple)) or not sources:
                    raise ValueError(f"allowedSources of port {number} is not a list of sources")
                sources = [normalize_prefix(s) for s in sources]
                if ANY in sources and len(sources) > 1:
                    raise ValueError(f"allowedSources of port {number} mixes '*' with other sources")
                spec = PortSpec(number, item["protocol"])  # validates number range and protocol
                if any(spec.overlaps(p) for p in ports):
                    raise ValueError(f"port {spec} appears more than once")
                ports.append(PortPolicy(number, item["protocol"],
                                        check_max_duration(parse_duration(item["maxDuration"])), tuple(sources)))
            if not ports:
                raise ValueError("it names no port")
            require_approval = data.get("requireApproval", False)
            if not isinstance(require_approval, bool):
                raise ValueError(f"requireApproval {require_approval!r} is not a boolean")
            return cls(tuple(ports), require_approval)
        except (KeyError, TypeError, AttributeError) as ex:
            raise ValueError(f"malformed JIT policy data: missing or wrong field {ex}") from ex
        except BadInput as ex:
            raise ValueError(f"malformed JIT policy data: {ex.message}") from ex


class CheckedRequest(list):
    """What :func:`check_request` approved: a list of ``(PortPolicy, timedelta)``, plus the normalised ``source``.

    A list subclass so callers can iterate ``for port, duration in checked`` as the contract says, while the
    source (None = "the caller's own IP, resolved elsewhere") travels with it.
    """

    def __init__(self, items=(), source=None):
        super().__init__(items)
        self.source = source

    def __repr__(self):
        return f"CheckedRequest({list.__repr__(self)}, source={self.source!r})"


def _select_ports(policy, requested):
    """Map requested ports to policy entries; see :func:`check_request` for the matching rules."""
    if not policy.ports:
        raise BadInput("The JIT policy of this VM has no ports to request.",
                       "Protect the VM's ports first, e.g. az vm jit enable --ports 22")
    if not requested:
        return list(policy.ports)
    selected = []
    for spec in requested:
        same_number = [p for p in policy.ports if p.number == spec.number]
        if spec.protocol_explicit:
            matches = [p if p.protocol == spec.protocol else replace(p, protocol=spec.protocol)
                       for p in same_number if p.protocol in ("*", spec.protocol)]
        else:
            matches = same_number
        if not matches:
            example = policy.ports[0]
            if same_number:
                protocols = " and ".join(p.protocol for p in same_number)
                raise BadInput(
                    f"Port {spec} is not in the JIT policy: port {spec.number} is allowed for {protocols} only.",
                    f"Request it as {same_number[0]}, or leave out the protocol: --ports {spec.number}")
            asked = spec if spec.protocol_explicit else spec.number
            raise BadInput(
                f"Port {asked} is not in the JIT policy; the policy's ports are {policy.describe_ports()}.",
                f"Request one of the policy's ports, e.g. --ports {example.number}, or add the port with "
                "az vm jit enable --ports")
        for match in matches:
            if not any(m.number == match.number and m.protocol == match.protocol for m in selected):
                selected.append(match)
    return selected


def _check_duration(selected, duration):
    if duration is None:
        return [(port, port.max_duration) for port in selected]
    smallest = min(port.max_duration for port in selected)
    if duration < MIN_DURATION:
        minimum, longest = describe(MIN_DURATION), describe(smallest)
        raise BadInput(
            f"Duration {describe(duration)} is below the {int(MIN_DURATION.total_seconds() // 60)}-minute minimum "
            "of JIT access.",
            f"Use a duration between {minimum} and {longest}, e.g. --duration {longest}")
    too_long = [port for port in selected if duration > port.max_duration]
    if too_long:
        plural = "s" if len(too_long) > 1 else ""
        if len({port.max_duration for port in too_long}) == 1:
            what = (f"the maximum of {describe(too_long[0].max_duration)} that the JIT policy allows for "
                    f"port{plural} {format_ports(too_long)}")
        else:
            maxima = ", ".join(f"{port} ({describe(port.max_duration)})" for port in too_long)
            what = f"the maximum that the JIT policy allows for ports {maxima}"
        shortest = describe(min(port.max_duration for port in too_long))
        raise BadInput(
            f"Duration {describe(duration)} exceeds {what}.",
            f"Use --duration {shortest} or less, or leave out --duration to get each port's maximum.")
    return [(port, duration) for port in selected]


def _check_source(selected, source, exact_source_match):
    if is_any(source):
        raise BadInput(
            "The source covers every address (*, Any, Internet, 0.0.0.0/0 and ::/0 all do): a JIT request must name "
            "one IP address or CIDR.",
            "Give your public IP, e.g. --source 203.0.113.7, or leave out --source to use your own public IP.")
    source = normalize_prefix(source)
    for port in selected:
        containing = []
        for allowed in port.allowed_sources:
            try:
                if contains(allowed, source):
                    containing.append(allowed)
            except BadInput:
                continue  # an unparsable stored source allows nothing
        if not containing:
            allowed_text = ", ".join(port.allowed_sources)
            raise BadInput(
                f"Source {source} is outside the allowed sources of port {port}: {allowed_text}.",
                f"Use --source with an address inside {' or '.join(port.allowed_sources)}, or ask an admin to add "
                "yours with az vm jit enable --allowed-sources")
        if all(is_any(allowed) for allowed in containing) and not is_narrow(source):
            _refuse_wide_source(source, port, containing[0])
        if exact_source_match and not port.allows_any_source and source not in port.allowed_sources:
            best = max(containing, key=lambda prefix: ipaddress.ip_network(prefix).prefixlen)
            raise BadInput(
                f"Source {source} lies inside {best} but is not one of the allowed sources of port {port} "
                f"({', '.join(port.allowed_sources)}): Defender for Cloud accepts only one of the allowed prefixes "
                "exactly.",
                f"Use --source {best}")
    return source


def _refuse_wide_source(source, port, allowed):
    """A policy of ``*`` (or ``::/0``) lets a request name one address or a narrow range, not any range at all."""
    bound = widest_length(version_of(source))
    raise BadInput(
        f"Source {source} is wider than one address or a /{bound}: port {port} allows any source ({allowed}), which "
        f"covers one address or a range of at most /{WIDEST_IPV4} (IPv4) or /{WIDEST_IPV6} (IPv6) per request; a "
        "wider range must be named in the JIT policy.",
        f"Use --source with one address or a /{bound} or narrower, or ask an admin to add the range with "
        f"az vm jit enable --allowed-sources {source}")


def _check_family(source, vm_address):
    """One NSG rule cannot mix IPv4 and IPv6: the source must be of the family of the VM's private IP."""
    source_version, vm_version = version_of(source), version_of(vm_address)
    if source_version and vm_version and source_version != vm_version:
        raise BadInput(
            f"Source {source} is an IPv{source_version} address, but the VM's private IP {vm_address} is "
            f"IPv{vm_version}: an NSG rule cannot let IPv{source_version} traffic reach an IPv{vm_version} address.",
            f"Use an IPv{vm_version} --source, e.g. your public IPv{vm_version} address.")


def check_request(policy, ports=None, duration=None, source=None, exact_source_match=False, vm_address=None):
    """Check a request against ``policy`` and return what will be requested, or raise naming the broken rule.

    - ``ports``: list of :class:`PortSpec`; None or empty means every port of the policy. A port typed
      without protocol (``protocol_explicit=False``) selects every policy entry of that number. An explicit
      protocol must equal the entry's, or the entry's protocol must be ``*``; the returned entry then carries
      the requested protocol (``22/TCP`` from a ``22/*`` entry), since that is all the user asked to open.
      An explicit ``*`` only matches a ``*`` entry.
    - ``duration``: None gives each port its own maximum (so no port is cut short because another has a
      smaller limit). Otherwise the same duration for every port; at least 5 minutes and at most the
      maximum of each requested port.
    - ``source``: None means "the caller's own IP, resolved elsewhere" (Defender fills it in; NSG mode asks
      an echo service and may call this again with the result): not checked, returned as None. Any-address
      spellings are refused. Otherwise it must lie inside an allowed source of every requested port, and with
      ``exact_source_match`` (Defender mode) equal one of them unless the port allows ``*``. A source lying
      only inside ``*`` (or ``::/0``) must be narrow: one address, or at most a /24 (IPv4) or /64 (IPv6); a
      wider one is accepted only when an allowed source names it or a range containing it.
    - ``vm_address``: the VM's private IP (None: unknown, not checked); a source of the other IP family is
      refused, as no NSG rule can join them.

    Returns a :class:`CheckedRequest`: list of ``(PortPolicy, timedelta)`` with ``.source`` normalised.
    """
    selected = _select_ports(policy, ports)
    plan = _check_duration(selected, duration)
    checked_source = None if source is None else _check_source(selected, source, exact_source_match)
    if checked_source is not None:
        _check_family(checked_source, vm_address)
    return CheckedRequest(plan, checked_source)


def build_policy(ports, max_duration, allowed_sources, require_approval=False):
    """Build the policy ``enable`` will write, refusing settings Defender would reject or that are ambiguous.

    ``ports`` are :class:`PortSpec` (texts like ``53/udp`` are parsed; no protocol means TCP).
    ``max_duration`` may be a ``timedelta`` or text (``3h``); it must lie within 5 minutes..24 hours.
    ``allowed_sources`` is normalised and deduplicated; empty means ``*`` (the command's default). ``*``
    together with other sources is refused: it is unclear whether the user meant "anyone" or "only these".
    Every port gets the same maximum and sources, as the command line offers only one of each.
    """
    if isinstance(ports, (str, PortSpec)):
        ports = [ports]
    specs = [p if isinstance(p, PortSpec) else parse_port(p) for p in (ports or [])]
    if not specs:
        raise BadInput("No ports given: a JIT policy needs at least one port.",
                       "Name the ports to protect, e.g. --ports 22 3389")
    for i, spec in enumerate(specs):
        for other in specs[:i]:
            if spec.overlaps(other):
                raise BadInput(
                    f"Port {spec} overlaps {other}: each port may appear only once in a JIT policy.",
                    "Remove the duplicate, e.g. --ports 22 3389 53/udp")
    if not isinstance(max_duration, timedelta):
        max_duration = parse_duration(max_duration, option="--max-duration")
    check_max_duration(max_duration)
    sources = normalize_prefixes(allowed_sources) or [ANY]
    if ANY in sources and len(sources) > 1:
        raise BadInput(
            f"Allowed sources '*' and {', '.join(s for s in sources if s != ANY)} together are ambiguous: '*' "
            "already allows any source.",
            "Use either --allowed-sources '*' or only the specific addresses, e.g. --allowed-sources 10.0.0.0/8")
    return JitPolicy(tuple(PortPolicy(s.number, s.protocol, max_duration, tuple(sources)) for s in specs),
                     require_approval=bool(require_approval))
