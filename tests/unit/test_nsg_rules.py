# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Reading and matching NSG rules: protocols, ports, sources, destinations, equivalence."""
import pytest

from azext_jit.addresses import is_any
from azext_jit.errors import BadInput
from azext_jit.nsg import conflicts, rules
from tests.unit.rule_samples import IP, TCP, names, rule


@pytest.mark.parametrize("jit,nsg,expected", [
    ("TCP", "Tcp", True), ("TCP", "Udp", False), ("UDP", "Udp", True), ("UDP", "Tcp", False),
    ("TCP", "*", True), ("UDP", "*", True), ("*", "Tcp", True), ("*", "Udp", True), ("*", "*", True),
    ("TCP", "Icmp", False), ("*", "Icmp", False), ("*", "Esp", False), ("*", "Ah", False), ("tcp", "TCP", True),
])
def test_protocols_overlap(jit, nsg, expected):
    assert rules.protocols_overlap(jit, nsg) is expected


def test_to_nsg_protocol_and_bad_protocol():
    assert [rules.to_nsg_protocol(p) for p in ("TCP", "udp", "*")] == ["Tcp", "Udp", "*"]
    with pytest.raises(BadInput):
        rules.to_nsg_protocol("icmp")


@pytest.mark.parametrize("prefix", ["*", "Internet", "internet", "Any", "0.0.0.0/0", "::/0", " * "])
def test_any_source_spellings(prefix):
    assert is_any(prefix)


@pytest.mark.parametrize("prefix", ["10.0.0.0/8", "203.0.113.7", "VirtualNetwork", "AzureLoadBalancer",
                                    "0.0.0.0/1", ""])
def test_not_any_source(prefix):
    assert not is_any(prefix)


@pytest.mark.parametrize("prefix,expected", [
    ("*", True), ("VirtualNetwork", True), ("10.0.0.4", True), ("10.0.0.4/32", True), ("10.0.0.0/24", True),
    ("10.0.0.0/16", True), ("10.0.1.0/24", False), ("10.0.0.5", False), ("Internet", False),
    ("AzureLoadBalancer", False), ("2001:db8::/32", False), ("garbage", False),
])
def test_prefix_contains_ip(prefix, expected):
    assert rules.prefix_contains_ip(prefix, IP) is expected


def test_port_ranges_singular_plural_star_and_ranges():
    assert rules.port_ranges(rule("a", 100, port="22")) == [(22, 22)]
    assert rules.port_ranges(rule("a", 100, port=["80", "3380-3390"])) == [(80, 80), (3380, 3390)]
    assert rules.port_ranges(rule("a", 100, port="*")) == [(0, 65535)]
    assert rules.rule_covers_port(rule("a", 100, port=["80", "3380-3390"]), 3389, "TCP")
    assert not rules.rule_covers_port(rule("a", 100, port=["80", "3380-3388"]), 3389, "TCP")
    assert not rules.rule_covers_port(rule("a", 100, port="22", protocol="Udp"), 22, "TCP")


def test_destination_asg_is_maybe_unless_membership_known():
    asg = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/applicationSecurityGroups/web"
    r = rule("asg", 300, dest=None, destinationApplicationSecurityGroups=[{"id": asg}])
    assert rules.destination_coverage(r, IP) == "maybe"
    assert rules.destination_coverage(r, IP, vm_asg_ids=[asg.upper()]) == "yes"
    assert rules.destination_coverage(r, IP, vm_asg_ids=[]) == "no"


def test_flattened_rule_is_accepted():
    flat = {"name": "flat", "priority": 200, "direction": "Inbound", "access": "Allow", "protocol": "*",
            "destinationPortRange": "22", "sourceAddressPrefix": "*", "destinationAddressPrefix": "*"}
    assert names(conflicts.classify_conflicts([flat], TCP, IP, 1000).remove) == ["flat"]


def test_rules_equivalent_ignores_singular_plural_and_case():
    a = rule("r", 100, port="22", protocol="Tcp")
    b = rule("R", 100, port=["22"], protocol="TCP")
    assert rules.rules_equivalent(a, b)
    assert not rules.rules_equivalent(a, rule("r", 101, port="22"))
    assert not rules.rules_equivalent(a, rule("r", 100, port="23"))
