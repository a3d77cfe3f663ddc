"""Unit tests for azext_jit.nsg_rules: conflicts, priorities, our rule names and descriptions, builders."""

import re
from datetime import datetime, timedelta, timezone

import pytest
from azure.cli.core.azclierror import InvalidArgumentValueError, ValidationError

from azext_jit import nsg_rules as n

VM_ID = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/" \
        "Microsoft.Compute/virtualMachines/vm1"
OTHER_VM_ID = VM_ID[:-1] + "2"
IP = "10.0.0.4"
TCP = [(22, "TCP"), (3389, "TCP")]
AZURE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,78}[A-Za-z0-9_]$")
DEFENDER_NAMES = [
    "SecurityCenter-JITRule-1170687618-8C18BF8921F041989344B4F1E3A0C370",     # allow
    "SecurityCenter-JITRule_1170687618_62799A5740DE464DB71C4F619369BBAD",     # deny
    "SecurityCenter-JITRule_-1105480617_9EF6964FE766478B9EC568B32FB82045",    # deny, negative int
    "SecurityCenter-JITRule--1105480617-9EF6964FE766478B9EC568B32FB82045",    # allow, negative int
    "SecurityCenter-JITRule_-1282941078-d94f68c391f84fffb715f439ea7ebf4e",    # self-help guide's mixed form
]


def rule(name, priority, port="22", source="*", dest=IP, access="Allow", protocol="Tcp", direction="Inbound",
         **extra):
    """A wire-shape rule; lists become the plural fields."""
    props = {"priority": priority, "direction": direction, "access": access, "protocol": protocol,
             "sourcePortRange": "*"}
    for single, plural, value in (("destinationPortRange", "destinationPortRanges", port),
                                  ("sourceAddressPrefix", "sourceAddressPrefixes", source),
                                  ("destinationAddressPrefix", "destinationAddressPrefixes", dest)):
        if value is None:
            continue
        props[plural if isinstance(value, list) else single] = value
    props.update(extra)
    return {"name": name, "properties": props}


def names(rules):
    return [r["name"] for r in rules]


def warned(conflicts):
    return [r["name"] for r, _ in conflicts.warn]


# ---------------------------------------------------------------------------------------------------------------
# matching
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("jit,nsg,expected", [
    ("TCP", "Tcp", True), ("TCP", "Udp", False), ("UDP", "Udp", True), ("UDP", "Tcp", False),
    ("TCP", "*", True), ("UDP", "*", True), ("*", "Tcp", True), ("*", "Udp", True), ("*", "*", True),
    ("TCP", "Icmp", False), ("*", "Icmp", False), ("*", "Esp", False), ("*", "Ah", False), ("tcp", "TCP", True),
])
def test_protocols_overlap(jit, nsg, expected):
    assert n.protocols_overlap(jit, nsg) is expected


def test_to_nsg_protocol_and_bad_protocol():
    assert [n.to_nsg_protocol(p) for p in ("TCP", "udp", "*")] == ["Tcp", "Udp", "*"]
    with pytest.raises(InvalidArgumentValueError):
        n.to_nsg_protocol("icmp")


@pytest.mark.parametrize("prefix", ["*", "Internet", "internet", "Any", "0.0.0.0/0", "::/0", " * "])
def test_any_source_spellings(prefix):
    assert n.is_any_source(prefix)


@pytest.mark.parametrize("prefix", ["10.0.0.0/8", "203.0.113.7", "VirtualNetwork", "AzureLoadBalancer",
                                    "0.0.0.0/1", ""])
def test_not_any_source(prefix):
    assert not n.is_any_source(prefix)


@pytest.mark.parametrize("prefix,expected", [
    ("*", True), ("VirtualNetwork", True), ("10.0.0.4", True), ("10.0.0.4/32", True), ("10.0.0.0/24", True),
    ("10.0.0.0/16", True), ("10.0.1.0/24", False), ("10.0.0.5", False), ("Internet", False),
    ("AzureLoadBalancer", False), ("2001:db8::/32", False), ("garbage", False),
])
def test_prefix_contains_ip(prefix, expected):
    assert n.prefix_contains_ip(prefix, IP) is expected


def test_port_ranges_singular_plural_star_and_ranges():
    assert n.port_ranges(rule("a", 100, port="22")) == [(22, 22)]
    assert n.port_ranges(rule("a", 100, port=["80", "3380-3390"])) == [(80, 80), (3380, 3390)]
    assert n.port_ranges(rule("a", 100, port="*")) == [(0, 65535)]
    assert n.rule_covers_port(rule("a", 100, port=["80", "3380-3390"]), 3389, "TCP")
    assert not n.rule_covers_port(rule("a", 100, port=["80", "3380-3388"]), 3389, "TCP")
    assert not n.rule_covers_port(rule("a", 100, port="22", protocol="Udp"), 22, "TCP")


def test_destination_asg_is_maybe_unless_membership_known():
    asg = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/applicationSecurityGroups/web"
    r = rule("asg", 300, dest=None, destinationApplicationSecurityGroups=[{"id": asg}])
    assert n.destination_coverage(r, IP) == "maybe"
    assert n.destination_coverage(r, IP, vm_asg_ids=[asg.upper()]) == "yes"
    assert n.destination_coverage(r, IP, vm_asg_ids=[]) == "no"


def test_flattened_rule_is_accepted():
    flat = {"name": "flat", "priority": 200, "direction": "Inbound", "access": "Allow", "protocol": "*",
            "destinationPortRange": "22", "sourceAddressPrefix": "*", "destinationAddressPrefix": "*"}
    assert names(n.classify_conflicts([flat], TCP, IP, 1000).remove) == ["flat"]


# ---------------------------------------------------------------------------------------------------------------
# conflicts
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["*", "Internet", "Any", "0.0.0.0/0", ["203.0.113.0/24", "0.0.0.0/0"]])
def test_any_source_allow_is_removed(source):
    c = n.classify_conflicts([rule("open-ssh", 300, source=source)], TCP, IP, 1000)
    assert names(c.remove) == ["open-ssh"]
    assert c.warn == []
    assert "open-ssh" in c.remove_reasons["open-ssh"]


def test_any_source_allow_is_removed_even_behind_the_deny():
    c = n.classify_conflicts([rule("late", 2000)], TCP, IP, 1000)
    assert names(c.remove) == ["late"]


def test_narrow_source_warned_only_when_it_beats_the_deny():
    rules = [rule("office-early", 500, source="203.0.113.0/24"),
             rule("office-late", 1500, source="198.51.100.7")]
    c = n.classify_conflicts(rules, TCP, IP, 1000)
    assert c.remove == []
    assert warned(c) == ["office-early"]
    reason = c.warn[0][1]
    assert "203.0.113.0/24" in reason and "500" in reason and "1000" in reason and "22/TCP" in reason


def test_narrow_source_with_equal_priority_not_warned():
    # Cannot happen inside one NSG, but "beats" must mean strictly lower.
    c = n.classify_conflicts([rule("same", 1000, source="10.1.0.0/16")], TCP, IP, 1000)
    assert not c


def test_other_port_and_other_destination_ignored():
    rules = [rule("web", 200, port=["80", "443"]),
             rule("other-vm", 210, dest="10.0.0.5"),
             rule("other-subnet", 220, dest="10.0.1.0/24"),
             rule("public-ip", 230, dest="52.1.2.3"),
             rule("outbound", 240, direction="Outbound")]
    assert not n.classify_conflicts(rules, TCP, IP, 1000)


def test_ranges_star_ports_and_broad_destinations_caught():
    rules = [rule("range", 200, port="3380-3390"),
             rule("all-ports", 210, port="*"),
             rule("plural", 220, port=["80", "22"], dest=["10.0.9.9", "10.0.0.0/24"]),
             rule("vnet", 230, dest="VirtualNetwork"),
             rule("star-dest", 240, dest="*")]
    assert names(n.classify_conflicts(rules, TCP, IP, 1000).remove) == \
        ["range", "all-ports", "plural", "vnet", "star-dest"]


def test_udp_rule_does_not_conflict_with_tcp_protection_but_star_does():
    rules = [rule("udp", 200, protocol="Udp"), rule("icmp", 210, protocol="Icmp", port="*")]
    assert not n.classify_conflicts(rules, TCP, IP, 1000)
    assert names(n.classify_conflicts([rule("udp", 200, protocol="Udp")], [(22, "*")], IP, 1000).remove) == ["udp"]
    assert names(n.classify_conflicts([rule("any", 200, protocol="*")], TCP, IP, 1000).remove) == ["any"]


def test_defender_and_our_rules_never_conflicts():
    rules = [rule(name, 100 + i) for i, name in enumerate(DEFENDER_NAMES)]
    rules += [rule(n.allow_rule_name(VM_ID, "1a2b3c4d", 22, "TCP"), 150, source="*"),
              rule(n.deny_rule_name(VM_ID, "TCP"), 1000, access="Deny"),
              rule("AzVmJit-FutureKind-abc", 160)]
    assert not n.classify_conflicts(rules, TCP, IP, 1000)


def test_deny_rules_and_default_rules_are_not_conflicts():
    rules = [rule("user-deny", 500, access="Deny"),
             rule("AllowVnetInBound", 65000, port="*", source="VirtualNetwork", dest="VirtualNetwork"),
             rule("weird-default", 65001, port="*")]
    assert not n.classify_conflicts(rules, TCP, IP, 1000)


def test_asg_destination_warned_not_removed_when_membership_unknown():
    asg = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/applicationSecurityGroups/web"
    r = rule("asg-ssh", 300, dest=None, destinationApplicationSecurityGroups=[{"id": asg}])
    c = n.classify_conflicts([r], TCP, IP, 1000)
    assert c.remove == [] and warned(c) == ["asg-ssh"]
    assert "web" in c.warn[0][1]
    assert names(n.classify_conflicts([r], TCP, IP, 1000, vm_asg_ids=[asg]).remove) == ["asg-ssh"]
    assert not n.classify_conflicts([r], TCP, IP, 1000, vm_asg_ids=[])


def test_source_asg_is_narrow():
    asg = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/applicationSecurityGroups/jump"
    r = rule("from-jump", 300, source=None, sourceApplicationSecurityGroups=[{"id": asg}])
    c = n.classify_conflicts([r], TCP, IP, 1000)
    assert c.remove == [] and warned(c) == ["from-jump"]


def test_removal_reason_names_what_else_the_rule_opened():
    rules = [rule("mixed", 300, port=["22", "80", "443"]),
             rule("everything", 310, port="*", dest="*", protocol="*"),
             rule("exact", 320, port="22", dest="10.0.0.4/32")]
    c = n.classify_conflicts(rules, TCP, IP, 1000)
    assert names(c.remove) == ["mixed", "everything", "exact"]
    assert "ports 80,443" in c.remove_reasons["mixed"] and "disable" in c.remove_reasons["mixed"]
    everything = c.remove_reasons["everything"]
    assert "every other port" in everything and "other protocols" in everything and "other addresses" in everything
    assert "also opens" not in c.remove_reasons["exact"]


def test_protected_ports_accept_objects_with_number_and_protocol():
    class Spec:  # stands in for ports.PortSpec
        def __init__(self, number, protocol):
            self.number, self.protocol = number, protocol
    c = n.classify_conflicts([rule("rdp", 300, port="3389")], [Spec(3389, "TCP")], IP, 1000)
    assert names(c.remove) == ["rdp"]


# ---------------------------------------------------------------------------------------------------------------
# priorities
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("used,expected", [
    (set(), 1000), ({1000}, 1001), ({1000, 1001}, 999), ({999, 1000, 1001}, 1002),
    ({998, 999, 1000, 1001, 1002}, 1003), ({1000, 1001, 1002, 999}, 998),
])
def test_choose_deny_priority(used, expected):
    assert n.choose_deny_priority(used) == expected


def test_choose_deny_priority_stays_in_range_and_exhausts():
    assert n.choose_deny_priority(set(range(100, 4096))) == 4096
    assert n.choose_deny_priority(set(range(101, 4097))) == 100
    assert n.choose_deny_priority(set(), preferred=5000) == 4096
    with pytest.raises(ValidationError):
        n.choose_deny_priority(set(range(100, 4097)))


def test_choose_allow_priorities():
    assert n.choose_allow_priorities(set(), 2, 1000) == [100, 101]
    assert n.choose_allow_priorities({100, 102, 65000}, 3, 1000) == [101, 103, 104]
    assert n.choose_allow_priorities({100}, 0, 1000) == []


def test_choose_allow_priorities_never_reaches_ceiling():
    assert n.choose_allow_priorities(set(range(100, 104)), 1, 105) == [104]
    with pytest.raises(ValidationError):
        n.choose_allow_priorities(set(range(100, 104)), 2, 105)
    with pytest.raises(ValidationError):
        n.choose_allow_priorities(set(), 1, 100)
    result = n.choose_allow_priorities(set(), 900, 1000)
    assert max(result) == 999 and len(set(result)) == 900
    with pytest.raises(ValidationError):
        n.choose_allow_priorities(set(), 901, 1000)


def test_used_priorities_per_direction():
    rules = [rule("a", 100), rule("b", 200, direction="Outbound"), rule("c", 300, direction="inbound"),
             {"name": "broken", "properties": {"direction": "Inbound"}}]
    assert n.used_priorities(rules) == {100, 300}
    assert n.used_priorities(rules, "Outbound") == {200}


# ---------------------------------------------------------------------------------------------------------------
# names
# ---------------------------------------------------------------------------------------------------------------

def test_vm_key_is_stable_case_insensitive_hex8():
    key = n.vm_key(VM_ID)
    assert re.fullmatch("[0-9a-f]{8}", key)
    assert n.vm_key(VM_ID.upper()) == key and n.vm_key(VM_ID + "/") == key
    assert n.vm_key(OTHER_VM_ID) != key


@pytest.mark.parametrize("protocol", ["TCP", "UDP", "*"])
def test_deny_name_round_trip(protocol):
    name = n.deny_rule_name(VM_ID, protocol)
    assert AZURE_NAME.match(name) and len(name) <= 80
    assert n.parse_rule_name(name) == n.RuleName("deny", n.vm_key(VM_ID), None, None, protocol)
    assert n.is_ours(name) and not n.is_defender(name)


@pytest.mark.parametrize("port,protocol", [(0, "TCP"), (22, "TCP"), (53, "UDP"), (65535, "*")])
def test_allow_name_round_trip(port, protocol):
    name = n.allow_rule_name(VM_ID, "1A2B3C4D", port, protocol)
    assert AZURE_NAME.match(name) and len(name) <= 80
    assert n.parse_rule_name(name) == n.RuleName("allow", n.vm_key(VM_ID), "1a2b3c4d", port, protocol)
    assert n.is_ours(name) and not n.is_defender(name)


def test_parse_rule_name_rejects_foreign_names():
    for name in DEFENDER_NAMES + ["default-allow-ssh", "AzVmJit-Deny-123-tcp", "AzVmJit-Allow-0123abcd-1a2b3c4d-70000"
                                  "-tcp", "AzVmJit-Deny-0123abcd-icmp", "", None]:
        assert n.parse_rule_name(name) is None


def test_parse_rule_name_is_case_insensitive():
    name = n.allow_rule_name(VM_ID, "deadbeef", 22, "TCP").upper()
    assert n.parse_rule_name(name).request_id == "deadbeef"


def test_bad_request_id_and_port_refused():
    with pytest.raises(InvalidArgumentValueError):
        n.allow_rule_name(VM_ID, "xyz", 22, "TCP")
    with pytest.raises(InvalidArgumentValueError):
        n.allow_rule_name(VM_ID, "1a2b3c4d", 70000, "TCP")


def test_new_request_id_is_valid():
    rid = n.new_request_id()
    assert re.fullmatch("[0-9a-f]{8}", rid) and n.normalize_request_id(rid) == rid


@pytest.mark.parametrize("name", DEFENDER_NAMES)
def test_defender_names_recognised(name):
    assert n.is_defender(name)
    assert not n.is_ours(name)


@pytest.mark.parametrize("name", ["SecurityCenter-JITRule", "SecurityCenter-JITRule_123_notahex",
                                  "SecurityCenter-JITRule-123-8C18BF8921F041989344B4F1E3A0C37",  # 31 hex
                                  "MySecurityCenter-JITRule_1_62799A5740DE464DB71C4F619369BBAD", "allow-ssh"])
def test_not_defender(name):
    assert not n.is_defender(name)


# ---------------------------------------------------------------------------------------------------------------
# descriptions
# ---------------------------------------------------------------------------------------------------------------

UNTIL = datetime(2026, 11, 25, 15, 0, 0, tzinfo=timezone.utc)


def test_allow_description_text_and_round_trip():
    text = n.allow_description(UNTIL, "alice@contoso.com", "1a2b3c4d")
    assert text == "az vm jit: open until 2026-11-25T15:00:00Z for alice@contoso.com, request 1a2b3c4d"
    assert n.parse_allow_description(text) == (UNTIL, "alice@contoso.com", "1a2b3c4d")


def test_allow_description_converts_to_utc_and_drops_microseconds():
    local = datetime(2026, 11, 25, 16, 0, 0, 999999, tzinfo=timezone(timedelta(hours=1)))
    parsed = n.parse_allow_description(n.allow_description(local, "bob", "deadbeef"))
    assert parsed.until == UNTIL and parsed.until.tzinfo is not None
    naive = n.parse_allow_description(n.allow_description(datetime(2026, 11, 25, 15, 0), "bob", "deadbeef"))
    assert naive.until == UNTIL


def test_allow_description_fits_140_with_300_char_requestor():
    requestor = "x" * 290 + "@contoso.com"
    text = n.allow_description(UNTIL, requestor, "1a2b3c4d")
    assert len(text) == 140
    parsed = n.parse_allow_description(text)
    assert parsed.until == UNTIL and parsed.request_id == "1a2b3c4d"
    assert parsed.requestor.endswith("...") and requestor.startswith(parsed.requestor[:-3])


def test_allow_description_awkward_requestors():
    tricky = "eve, request 99999999"
    assert n.parse_allow_description(n.allow_description(UNTIL, tricky, "1a2b3c4d")).requestor == tricky
    assert n.parse_allow_description(n.allow_description(UNTIL, "", "1a2b3c4d")).requestor == "unknown"
    assert n.parse_allow_description(n.allow_description(UNTIL, "a\nb\tc", "1a2b3c4d")).requestor == "a b c"


@pytest.mark.parametrize("text", [None, "", "Allow SSH", "az vm jit: protects VM 'vm1'",
                                  "az vm jit: open until 2026-13-45T15:00:00Z for a, request 1a2b3c4d",
                                  "az vm jit: open until 2026-11-25T15:00:00Z for a, request 1a2b3c4"])
def test_parse_allow_description_rejects_other_text(text):
    assert n.parse_allow_description(text) is None


def test_deny_description():
    assert n.deny_description("vm1") == "az vm jit: protects VM 'vm1'"
    long = n.deny_description("v" * 300)
    assert len(long) == 140 and long.endswith("...'")


# ---------------------------------------------------------------------------------------------------------------
# builders
# ---------------------------------------------------------------------------------------------------------------

def test_build_deny_rule_single_and_plural():
    one = n.build_deny_rule(VM_ID, "vm1", IP, "TCP", [22], 1000)
    assert one["name"] == n.deny_rule_name(VM_ID, "TCP")
    props = one["properties"]
    assert props["destinationPortRange"] == "22" and "destinationPortRanges" not in props
    assert (props["access"], props["direction"], props["protocol"], props["sourceAddressPrefix"],
            props["destinationAddressPrefix"], props["priority"], props["sourcePortRange"]) == \
        ("Deny", "Inbound", "Tcp", "*", IP, 1000, "*")
    two = n.build_deny_rule(VM_ID, "vm1", IP, "TCP", [3389, 22], 1000)["properties"]
    assert two["destinationPortRanges"] == ["22", "3389"] and "destinationPortRange" not in two


def test_build_deny_rules_one_per_protocol_with_distinct_priorities():
    existing = [rule("user", 1000, source="10.1.0.0/16")]
    rules = n.build_deny_rules(VM_ID, "vm1", IP, [(22, "TCP"), (53, "UDP"), (3389, "TCP"), (500, "*")], existing)
    by_proto = {r["properties"]["protocol"]: r for r in rules}
    assert set(by_proto) == {"Tcp", "Udp", "*"}
    assert by_proto["Tcp"]["properties"]["destinationPortRanges"] == ["22", "3389"]
    assert by_proto["Udp"]["properties"]["destinationPortRange"] == "53"
    priorities = [r["properties"]["priority"] for r in rules]
    assert priorities == [1001, 999, 1002]
    assert n.deny_ceiling(rules, VM_ID) == 999
    assert n.deny_ceiling(rules, OTHER_VM_ID) is None


def test_build_deny_rules_is_idempotent():
    first = n.build_deny_rules(VM_ID, "vm1", IP, TCP, [])
    again = n.build_deny_rules(VM_ID, "vm1", IP, TCP, first)
    assert len(again) == 1 and n.rules_equivalent(first[0], again[0]) and again == first


def test_build_allow_rule():
    r = n.build_allow_rule(VM_ID, "1a2b3c4d", 53, "UDP", "203.0.113.7", IP, 100, UNTIL, "alice@contoso.com")
    props = r["properties"]
    assert n.parse_rule_name(r["name"]) == n.RuleName("allow", n.vm_key(VM_ID), "1a2b3c4d", 53, "UDP")
    assert (props["access"], props["protocol"], props["sourceAddressPrefix"], props["destinationAddressPrefix"],
            props["destinationPortRange"], props["priority"]) == ("Allow", "Udp", "203.0.113.7", IP, "53", 100)
    assert n.parse_allow_description(props["description"]) == (UNTIL, "alice@contoso.com", "1a2b3c4d")
    plural = n.build_allow_rule(VM_ID, "1a2b3c4d", 22, "TCP", ["1.2.3.4", "5.6.7.0/24"], IP, 101, UNTIL, "a")
    assert plural["properties"]["sourceAddressPrefixes"] == ["1.2.3.4", "5.6.7.0/24"]
    assert "sourceAddressPrefix" not in plural["properties"]


def test_rules_equivalent_ignores_singular_plural_and_case():
    a = rule("r", 100, port="22", protocol="Tcp")
    b = rule("R", 100, port=["22"], protocol="TCP")
    assert n.rules_equivalent(a, b)
    assert not n.rules_equivalent(a, rule("r", 101, port="22"))
    assert not n.rules_equivalent(a, rule("r", 100, port="23"))
