# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Which existing rules `enable` removes, and which it only warns about."""
import pytest

from azext_jit.modes import nsg_mode_records as records
from azext_jit.modes.defender import is_defender_rule
from azext_jit.nsg import conflicts
from tests.unit.rule_samples import DEFENDER_NAMES, IP, TCP, VM_ID, names, rule, warned


def IS_JIT_RULE(r):
    return is_defender_rule(r) or records.is_ours(r["name"])


@pytest.mark.parametrize("source", ["*", "Internet", "Any", "0.0.0.0/0", ["203.0.113.0/24", "0.0.0.0/0"]])
def test_any_source_allow_is_removed(source):
    c = conflicts.classify_conflicts([rule("open-ssh", 300, source=source)], TCP, IP, 1000)
    assert names(c.remove) == ["open-ssh"]
    assert c.warn == []
    assert "open-ssh" in c.remove_reasons["open-ssh"]


def test_any_source_allow_is_removed_even_behind_the_deny():
    c = conflicts.classify_conflicts([rule("late", 2000)], TCP, IP, 1000)
    assert names(c.remove) == ["late"]


def test_narrow_source_warned_only_when_it_beats_the_deny():
    rules = [rule("office-early", 500, source="203.0.113.0/24"),
             rule("office-late", 1500, source="198.51.100.7")]
    c = conflicts.classify_conflicts(rules, TCP, IP, 1000)
    assert c.remove == []
    assert warned(c) == ["office-early"]
    reason = c.warn[0][1]
    assert "203.0.113.0/24" in reason and "500" in reason and "1000" in reason and "22/TCP" in reason


def test_narrow_source_with_equal_priority_not_warned():
    # Cannot happen inside one NSG, but "beats" must mean strictly lower.
    c = conflicts.classify_conflicts([rule("same", 1000, source="10.1.0.0/16")], TCP, IP, 1000)
    assert not c


def test_other_port_and_other_destination_ignored():
    rules = [rule("web", 200, port=["80", "443"]),
             rule("other-vm", 210, dest="10.0.0.5"),
             rule("other-subnet", 220, dest="10.0.1.0/24"),
             rule("public-ip", 230, dest="52.1.2.3"),
             rule("outbound", 240, direction="Outbound")]
    assert not conflicts.classify_conflicts(rules, TCP, IP, 1000)


def test_ranges_star_ports_and_broad_destinations_caught():
    rules = [rule("range", 200, port="3380-3390"),
             rule("all-ports", 210, port="*"),
             rule("plural", 220, port=["80", "22"], dest=["10.0.9.9", "10.0.0.0/24"]),
             rule("vnet", 230, dest="VirtualNetwork"),
             rule("star-dest", 240, dest="*")]
    assert names(conflicts.classify_conflicts(rules, TCP, IP, 1000).remove) == \
        ["range", "all-ports", "plural", "vnet", "star-dest"]


def test_udp_rule_does_not_conflict_with_tcp_protection_but_star_does():
    rules = [rule("udp", 200, protocol="Udp"), rule("icmp", 210, protocol="Icmp", port="*")]
    assert not conflicts.classify_conflicts(rules, TCP, IP, 1000)
    star = conflicts.classify_conflicts([rule("udp", 200, protocol="Udp")], [(22, "*")], IP, 1000)
    assert names(star.remove) == ["udp"]
    assert names(conflicts.classify_conflicts([rule("any", 200, protocol="*")], TCP, IP, 1000).remove) == ["any"]


def test_defender_and_our_rules_never_conflicts():
    rules = [rule(name, 100 + i) for i, name in enumerate(DEFENDER_NAMES)]
    rules += [rule(records.allow_rule_name(VM_ID, "1a2b3c4d", 22, "TCP"), 150, source="*"),
              rule(records.deny_rule_name(VM_ID, "TCP"), 1000, access="Deny"),
              rule("AzVmJit-FutureKind-abc", 160)]
    assert conflicts.classify_conflicts(rules, TCP, IP, 1000)  # without knowing the JIT modes' rules
    assert not conflicts.classify_conflicts(rules, TCP, IP, 1000, is_jit_rule=IS_JIT_RULE)


def test_deny_rules_and_default_rules_are_not_conflicts():
    rules = [rule("user-deny", 500, access="Deny"),
             rule("AllowVnetInBound", 65000, port="*", source="VirtualNetwork", dest="VirtualNetwork"),
             rule("weird-default", 65001, port="*")]
    assert not conflicts.classify_conflicts(rules, TCP, IP, 1000)


def test_asg_destination_warned_not_removed_when_membership_unknown():
    asg = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/applicationSecurityGroups/web"
    r = rule("asg-ssh", 300, dest=None, destinationApplicationSecurityGroups=[{"id": asg}])
    c = conflicts.classify_conflicts([r], TCP, IP, 1000)
    assert c.remove == [] and warned(c) == ["asg-ssh"]
    assert "web" in c.warn[0][1]
    assert names(conflicts.classify_conflicts([r], TCP, IP, 1000, vm_asg_ids=[asg]).remove) == ["asg-ssh"]
    assert not conflicts.classify_conflicts([r], TCP, IP, 1000, vm_asg_ids=[])


def test_source_asg_is_narrow():
    asg = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/applicationSecurityGroups/jump"
    r = rule("from-jump", 300, source=None, sourceApplicationSecurityGroups=[{"id": asg}])
    c = conflicts.classify_conflicts([r], TCP, IP, 1000)
    assert c.remove == [] and warned(c) == ["from-jump"]


def test_removal_reason_names_what_else_the_rule_opened():
    rules = [rule("mixed", 300, port=["22", "80", "443"]),
             rule("everything", 310, port="*", dest="*", protocol="*"),
             rule("exact", 320, port="22", dest="10.0.0.4/32")]
    c = conflicts.classify_conflicts(rules, TCP, IP, 1000)
    assert names(c.remove) == ["mixed", "everything", "exact"]
    assert "ports 80,443" in c.remove_reasons["mixed"] and "disable" in c.remove_reasons["mixed"]
    everything = c.remove_reasons["everything"]
    assert "every other port" in everything and "other protocols" in everything and "other addresses" in everything
    assert "also opens" not in c.remove_reasons["exact"]


def test_protected_ports_accept_objects_with_number_and_protocol():
    class Spec:  # stands in for ports.PortSpec
        def __init__(self, number, protocol):
            self.number, self.protocol = number, protocol
    c = conflicts.classify_conflicts([rule("rdp", 300, port="3389")], [Spec(3389, "TCP")], IP, 1000)
    assert names(c.remove) == ["rdp"]
