# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""NSG mode's storage format: how the extension names and describes the rules it writes, and where it keeps a
VM's policy. Only NSG mode reads or writes these; the NSG resource itself is handled by `azext_jit.nsg`.

- Deny rule: ``AzVmJit-Deny-<vm key>-<tcp|udp|any>``, description ``az vm jit: protects VM '<name>'``.
- Allow rule, one per request and port: ``AzVmJit-Allow-<vm key>-<request id>-<port>-<tcp|udp|any>``, with the
  description ``az vm jit: open until <UTC time> for <requestor>, request <id>[; why: <justification>]``: expiry,
  requestor and request id are all `list` and `cleanup` need, from any machine; the justification, when given, is
  kept in what is left of Azure's 140 characters (the requester can write the rule but not the VM's tags, so the
  description is the one place a request can keep it). An end time that cannot be read, or that lies further ahead
  than any policy allows, cannot be trusted: such a rule counts as open until removed (:func:`untrusted_end`).
- The policy: the VM's tag record ``azvmjit-policy`` (see `vm_records`).
Names start with ``AzVmJit-`` so they read as ours in the portal and never look like Defender's.
"""

import hashlib
import re
import secrets
from collections import namedtuple
from datetime import datetime, timedelta, timezone

from azext_jit.durations import MAX_DURATION
from azext_jit.errors import BadInput
from azext_jit.nsg.priorities import DEFAULT_DENY_PRIORITY, choose_deny_priority, used_priorities
from azext_jit.nsg.rules import (MAX_DESCRIPTION_LENGTH, group_ports_by_protocol, inbound_rule, is_inbound, lower,
                                 priority_of)
from azext_jit.ports import PortSpec, normalize_protocol
from azext_jit.times import STAMP_FORMAT, stamp
from azext_jit.vm_records import PREFIX

POLICY_TAG = f"{PREFIX}policy"

# Protocol word used inside our rule names: '*' is not allowed in a resource name.
_NAME_PROTOCOL = {"TCP": "tcp", "UDP": "udp", "*": "any"}
_NAME_PROTOCOL_BACK = {v: k for k, v in _NAME_PROTOCOL.items()}

NAME_PREFIX = "AzVmJit-"
_HEX8 = "[0-9a-f]{8}"
_DENY_NAME_RE = re.compile(rf"^AzVmJit-Deny-(?P<vmkey>{_HEX8})-(?P<proto>tcp|udp|any)$", re.I | re.A)
_ALLOW_NAME_RE = re.compile(rf"^AzVmJit-Allow-(?P<vmkey>{_HEX8})-(?P<rid>{_HEX8})-(?P<port>[0-9]{{1,5}})"
                            r"-(?P<proto>tcp|udp|any)$", re.I | re.A)
_REQUEST_ID_RE = re.compile(f"^{_HEX8}$", re.I | re.A)

_DESCRIPTION_TAG = "az vm jit:"
_ALLOW_DESCRIPTION = f"{_DESCRIPTION_TAG} open until {{until}} for {{requestor}}, request {{request_id}}"
_WHY = "; why: "
# The requestor is matched lazily: the first ", request <id>" that ends the text or is followed by the justification
# ends it, so a justification that itself contains ", request <8 hex>" cannot change the request id read back.
_ALLOW_DESCRIPTION_RE = re.compile(r"^az vm jit: open until (?P<until>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) "
                                   r"for (?P<requestor>.+?), request (?P<rid>[0-9a-f]{8})(?:; why: (?P<why>.+))?$",
                                   re.A | re.S)
_UNKNOWN_REQUESTOR = "unknown"
_ELLIPSIS = "..."

# Why an allow rule's end time cannot be trusted (the status reason `show` and `list` give its ports).
UNREADABLE_END_TIME = "UnreadableEndTime"
END_TIME_BEYOND_MAXIMUM = "EndTimeBeyondMaximum"
# Leeway for Azure's clock as two commands see it: Date headers are whole seconds, from different front ends.
CLOCK_LEEWAY = timedelta(minutes=5)

RuleName = namedtuple("RuleName", "kind vmkey request_id port protocol")
RuleName.__doc__ = """A parsed rule name of ours: kind "deny"|"allow"; request_id and port are None for a deny."""
AllowDescription = namedtuple("AllowDescription", "until requestor request_id justification", defaults=(None,))
AllowDescription.__doc__ = """What an allow rule's description carries: aware UTC expiry, requestor, request id and
the justification (None when the request gave none)."""


def vm_key(vm_id):
    """8 lowercase hex of sha256 of the lowercased VM resource id (ARM ids are case-insensitive).

    A hash, not the VM name: names are up to 64 characters and an NSG rule name only 80, and one subnet NSG
    can hold rules of VMs from several resource groups with the same name. 32 bits make a clash between two
    VMs of one NSG negligible.
    """
    text = str(vm_id or "").strip().rstrip("/").lower()
    if not text:
        raise BadInput("A VM resource id is needed to name its JIT rules.",
                       "Give the VM with -g/-n or --ids.")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def new_request_id():
    """A fresh request id: 8 lowercase hex (32 random bits; only needs to be unique per VM)."""
    return secrets.token_hex(4)


def normalize_request_id(request_id):
    """Lowercase an 8-hex request id; refuse anything else (it becomes part of rule names)."""
    value = str(request_id or "").strip()
    if not _REQUEST_ID_RE.match(value):
        raise BadInput(
            f"Invalid request id '{request_id}': a request id is 8 hexadecimal characters, e.g. 1a2b3c4d.",
            "Copy the request id from 'az vm jit show' or 'az vm jit list'.")
    return value.lower()


def deny_rule_name(vm_id, protocol):
    """``AzVmJit-Deny-<vmkey>-<tcp|udp|any>``: the VM's deny rule for the ports of one protocol.

    Names start with ``AzVmJit-`` so they read as ours in the portal and can never be mistaken for Defender's
    ``SecurityCenter-JITRule...``; they use only ``[A-Za-z0-9-]`` and end with a letter, as Azure requires.
    """
    return f"{NAME_PREFIX}Deny-{vm_key(vm_id)}-{_NAME_PROTOCOL[normalize_protocol(protocol)]}"


def allow_rule_name(vm_id, request_id, port, protocol):
    """``AzVmJit-Allow-<vmkey>-<requestid>-<port>-<tcp|udp|any>`` (at most 45 characters).

    One allow rule per request and port, so ``revoke --ports`` can close some ports of a request; the
    protocol is in the name because 53/TCP and 53/UDP may be requested together.
    """
    return (f"{NAME_PREFIX}Allow-{vm_key(vm_id)}-{normalize_request_id(request_id)}-{PortSpec(int(port)).number}-"
            f"{_NAME_PROTOCOL[normalize_protocol(protocol)]}")


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
    return lower(name).startswith(NAME_PREFIX.lower())


def _one_line(text):
    """Printable text on one line: control characters become spaces, runs of white space one space."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in str(text or "")).split())


def _shorten(text, room):
    return text if len(text) <= room else text[:max(room - len(_ELLIPSIS), 0)].rstrip() + _ELLIPSIS


def allow_description(until, requestor, request_id, justification=None):
    """``az vm jit: open until 2026-11-25T15:00:00Z for alice@contoso.com, request 1a2b3c4d; why: INC123 disk full``
    (<= 140 chars).

    The description is where NSG mode keeps what ``cleanup`` and ``list`` need (expiry, who, which request),
    so another machine finds it in Azure. The expiry is cut to the second (never later than asked). The
    requestor is shortened with "..." to fit; control characters become spaces; an empty one is "unknown".
    The justification gets what room the requestor leaves (:func:`justification_room`), shortened with "..."
    beyond it; an empty one is left out.
    """
    rid = normalize_request_id(request_id)
    until_text = stamp(until)
    who = _one_line(requestor) or _UNKNOWN_REQUESTOR
    room = MAX_DESCRIPTION_LENGTH - len(_ALLOW_DESCRIPTION.format(until=until_text, requestor="", request_id=rid))
    who = _shorten(who, room)
    text = _ALLOW_DESCRIPTION.format(until=until_text, requestor=who, request_id=rid)
    why = _one_line(justification)
    left = MAX_DESCRIPTION_LENGTH - len(text) - len(_WHY)
    if why and left >= len(_ELLIPSIS) + 1:
        text += _WHY + _shorten(why, left)
    return text


def justification_room(requestor):
    """How many characters of a justification an allow rule's description keeps for this requestor."""
    sample = allow_description(datetime(2000, 1, 1, tzinfo=timezone.utc), requestor, "00000000")
    return max(MAX_DESCRIPTION_LENGTH - len(sample) - len(_WHY), 0)


def stored_justification(requestor, justification):
    """The justification as an allow rule's description keeps it for this requestor (None when empty or no room)."""
    text = allow_description(datetime(2000, 1, 1, tzinfo=timezone.utc), requestor, "00000000", justification)
    return parse_allow_description(text).justification


def stored_requestor(requestor):
    """The requestor as an allow rule's description keeps it (shortened to fit, on one line)."""
    return parse_allow_description(allow_description(datetime(2000, 1, 1, tzinfo=timezone.utc), requestor,
                                                     "00000000")).requestor


def parse_allow_description(text):
    """``AllowDescription(until, requestor, request_id, justification)`` from :func:`allow_description`'s text,
    else None.

    The regex is anchored at both ends, so a requestor containing ", request " still parses.
    """
    match = _ALLOW_DESCRIPTION_RE.match(str(text or ""))
    if not match:
        return None
    try:
        until = datetime.strptime(match.group("until"), STAMP_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    if until.year < 2000:   # never written by JIT: read as unreadable (and kept clear of datetime's lower edge)
        return None
    return AllowDescription(until, match.group("requestor"), match.group("rid"), match.group("why"))


def untrusted_end(info, now):
    """Why an allow rule's end time cannot be trusted, or None when it can.

    ``info`` is :func:`parse_allow_description`'s result for the rule's description, ``now`` Azure's time.
    :data:`UNREADABLE_END_TIME` when the description cannot be read (None); :data:`END_TIME_BEYOND_MAXIMUM` when
    it names an end further ahead than the longest request any policy allows (24 hours, plus
    :data:`CLOCK_LEEWAY`): no request of ours wrote that, and a forged end must not keep access open. Either
    way the rule lets traffic in for as long as it exists, so it counts as open and ``cleanup`` removes it.
    """
    if info is None:
        return UNREADABLE_END_TIME
    if info.until > now + MAX_DURATION + CLOCK_LEEWAY:
        return END_TIME_BEYOND_MAXIMUM
    return None


def deny_description(vm_name):
    """``az vm jit: protects VM '<name>'``, the VM name shortened with "..." to stay within 140 chars."""
    name = str(vm_name or "")
    room = MAX_DESCRIPTION_LENGTH - len(f"{_DESCRIPTION_TAG} protects VM ''")
    if len(name) > room:
        name = name[:room - len(_ELLIPSIS)] + _ELLIPSIS
    return f"{_DESCRIPTION_TAG} protects VM '{name}'"


def build_deny_rule(vm_id, vm_name, private_ip, protocol, port_numbers, priority):
    """The deny rule for the VM's protected ports of one protocol: source any, destination the private IP.

    A VM gets one deny rule per protocol in its policy (TCP ports together, UDP together, ``*`` together):
    one rule with protocol ``*`` for 22/TCP and 53/UDP would also block 22/UDP and 53/TCP, ports nobody
    asked to protect. In the usual TCP-only policy that is one rule, like Defender's.
    """
    numbers = [PortSpec(int(n)).number for n in port_numbers]
    if not numbers:
        raise BadInput("No port to protect: a deny rule needs at least one port.",
                       "Give ports with --ports, e.g. --ports 22 3389.")
    return inbound_rule(deny_rule_name(vm_id, protocol), "Deny", protocol, "*", private_ip, numbers, priority,
                        deny_description(vm_name))


def build_deny_rules(vm_id, vm_name, private_ip, ports, rules, preferred=DEFAULT_DENY_PRIORITY):
    """All deny rules the VM needs (one per protocol), with priorities; idempotent against ``rules``.

    A deny rule of ours that already exists under the same name keeps its priority, so running ``enable``
    twice yields identical rules; new ones get :func:`choose_deny_priority` around ``preferred``, each
    taken number excluded for the next. The allow rules of requests must sit below the smallest of them
    (:func:`deny_ceiling`).
    """
    existing = {str(r.get("name", "")).lower(): priority_of(r) for r in rules or () if is_inbound(r)}
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
        if parsed and parsed.kind == "deny" and parsed.vmkey == key and priority_of(rule) is not None:
            found.append(priority_of(rule))
    return min(found) if found else None


def build_allow_rule(vm_id, request_id, port, protocol, source, private_ip, priority, until, requestor,
                     justification=None):
    """One request's allow rule for one port: from ``source`` (an IP/CIDR, or a list of them) to the private IP.

    The description carries expiry, requestor and request id (:func:`allow_description`), which is all
    ``cleanup`` and ``list`` need to work from any machine.
    """
    return inbound_rule(allow_rule_name(vm_id, request_id, port, protocol), "Allow", protocol, source, private_ip,
                        [PortSpec(int(port)).number], priority,
                        allow_description(until, requestor, request_id, justification))
