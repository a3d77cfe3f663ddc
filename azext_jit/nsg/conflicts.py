# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Rules that would defeat JIT on a VM: which existing rules ``enable`` removes and which it only warns about.

Nothing here talks to Azure. What matters to an admin is what can still let traffic in once JIT protects a
port, and only *Allow* rules let traffic in:

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
- rules of any JIT mode (the caller says which with ``is_jit_rule``) and Azure's default rules (priority
  65000+, which cannot be removed and never beat a deny) are never conflicts.
- source *ports* are ignored: the client picks its source port, so restricting it protects nothing.
"""
import ipaddress
from dataclasses import dataclass, field

from azext_jit.nsg.priorities import MAX_PRIORITY
from azext_jit.nsg.rules import (COVERS_NO, COVERS_YES, asg_ids, destination_coverage, destination_prefixes,
                                 format_pairs, is_allow, is_inbound, lower, port_pairs, port_ranges, priority_of,
                                 rule_allows_any_source, rule_covers_port, rule_properties, source_prefixes)


@dataclass
class Conflicts:
    """The conflicting rules of one VM's NSG.

    ``remove``: rule dicts ``enable`` removes (and records for ``disable`` to restore).
    ``warn``: ``(rule dict, reason)`` for rules JIT leaves alone but the admin must know about.
    ``remove_reasons``: rule name -> one-line reason for each removed rule, saying when the rule also opened
    other ports, protocols or addresses ("... also opens ports 80,443 ...; 'az vm jit disable' restores it").
    ``nsg_id``: the NSG they are in, when known.
    """

    remove: list = field(default_factory=list)
    warn: list = field(default_factory=list)
    remove_reasons: dict = field(default_factory=dict)
    nsg_id: str = None

    def __bool__(self):
        return bool(self.remove or self.warn)

    @property
    def warnings(self):
        return [text for _, text in self.warn]


def _fmt_ranges(ranges, limit=12):
    parts = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges]
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


def _describe_ends(rule, prefixes, asg_field, nothing):
    """A rule's sources or destinations for messages: its prefixes, then its application security groups."""
    names = prefixes(rule)
    names += [f"application security group {a.rsplit('/', 1)[-1]}"
              for a in asg_ids(rule_properties(rule), asg_field)]
    return ", ".join(names) or nothing


def _describe_sources(rule):
    return _describe_ends(rule, source_prefixes, "sourceApplicationSecurityGroups", "an unspecified source")


def _describe_destinations(rule):
    return _describe_ends(rule, destination_prefixes, "destinationApplicationSecurityGroups",
                          "an unspecified destination")


def is_only_address(prefix, private_ip):
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
    reason = (f"rule '{name}' lets any source ({_describe_sources(rule)}) reach {format_pairs(matched)} of the VM "
              f"({private_ip}) at priority {props.get('priority')}: it is removed while JIT protects the VM and "
              "'az vm jit disable' restores it")
    extra = []
    ranges = port_ranges(rule)
    other_ports = _subtract(ranges, [n for n, _ in matched])
    if (0, 65535) in ranges:
        extra.append("every other port")
    elif other_ports:
        extra.append(f"ports {_fmt_ranges(other_ports)}")
    # A '*' rule also carried the other protocol on the protected ports unless they are protected as '*'.
    if lower(props.get("protocol")) == "*" and any(p != "*" for _, p in matched):
        extra.append(f"other protocols on {', '.join(str(n) for n, p in matched if p != '*')}")
    others = [d for d in destination_prefixes(rule) if not is_only_address(d, private_ip)]
    if asg_ids(props, "destinationApplicationSecurityGroups") and vm_asg_ids is not None:
        others.append("its application security groups")
    if others:
        extra.append(f"other addresses than the VM ({', '.join(others)})")
    if extra:
        reason += f"; note that it also opens {' and '.join(extra)}, which stay closed until then"
    return reason


def classify_conflicts(rules, protected_ports, private_ip, deny_priority, vm_asg_ids=None, is_jit_rule=None,
                       nsg_id=None):
    """Sort an NSG's rules into those ``enable`` removes and those it only warns about.

    ``rules``: the NSG's ``securityRules`` (wire-shape dicts). ``protected_ports``: ``[(number, protocol)]``
    in JIT terms (or ports.PortSpec). ``private_ip``: the VM's private IP, the destination of the deny rule.
    ``deny_priority``: the priority of the JIT deny rule (for Defender mode, Defender's deny priority if
    known, else 4096, the worst case seen, which lists every allow rule that may keep precedence).
    ``vm_asg_ids``: optional ASG ids of the VM's NIC; None means unknown (ASG destinations "may cover").
    ``is_jit_rule(rule)``: True for rules a JIT mode wrote (they are never conflicts).
    Rules in both lists are sorted by priority. See the module docstring for the reasoning.
    """
    protected = port_pairs(protected_ports)
    deny_priority = int(deny_priority)
    result = Conflicts(nsg_id=nsg_id)
    for rule in sorted(rules or (), key=lambda r: (priority_of(r) or 0, str(r.get("name", "")))):
        name = str(rule.get("name", ""))
        priority = priority_of(rule)
        if not is_inbound(rule) or not is_allow(rule) or (is_jit_rule and is_jit_rule(rule)):
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
                f"rule '{name}' lets any source ({_describe_sources(rule)}) reach {format_pairs(matched)} of "
                f"{_describe_destinations(rule)} at priority {priority}: if the VM's network interface belongs to "
                "that group, the port stays open to the internet; JIT does not remove a rule it cannot tie to "
                "the VM")))
        elif beats:
            target = f"the VM ({private_ip})" if coverage == COVERS_YES else \
                f"{_describe_destinations(rule)} (which may include the VM)"
            result.warn.append((rule, (
                f"rule '{name}' lets {_describe_sources(rule)} reach {format_pairs(matched)} of {target} at priority "
                f"{priority}, ahead of the JIT deny rule at {deny_priority}: JIT does not override it")))
    return result
