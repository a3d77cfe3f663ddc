# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""NSG mode's storage format: rule names, descriptions and the rules it builds."""
import re
from datetime import datetime, timedelta, timezone

import pytest

from azext_jit.errors import BadInput
from azext_jit.modes import nsg_mode_records as records
from azext_jit.modes.defender import is_defender_rule
from azext_jit.nsg.rules import rules_equivalent
from tests.unit.rule_samples import AZURE_NAME, DEFENDER_NAMES, IP, OTHER_VM_ID, TCP, VM_ID, rule


def test_vm_key_is_stable_case_insensitive_hex8():
    key = records.vm_key(VM_ID)
    assert re.fullmatch("[0-9a-f]{8}", key)
    assert records.vm_key(VM_ID.upper()) == key and records.vm_key(VM_ID + "/") == key
    assert records.vm_key(OTHER_VM_ID) != key


@pytest.mark.parametrize("protocol", ["TCP", "UDP", "*"])
def test_deny_name_round_trip(protocol):
    name = records.deny_rule_name(VM_ID, protocol)
    assert AZURE_NAME.match(name) and len(name) <= 80
    assert records.parse_rule_name(name) == records.RuleName("deny", records.vm_key(VM_ID), None, None, protocol)
    assert records.is_ours(name) and not is_defender_rule({"name": name})


@pytest.mark.parametrize("port,protocol", [(1, "TCP"), (22, "TCP"), (53, "UDP"), (65535, "*")])
def test_allow_name_round_trip(port, protocol):
    name = records.allow_rule_name(VM_ID, "1A2B3C4D", port, protocol)
    assert AZURE_NAME.match(name) and len(name) <= 80
    assert records.parse_rule_name(name) == records.RuleName("allow", records.vm_key(VM_ID), "1a2b3c4d", port, protocol)
    assert records.is_ours(name) and not is_defender_rule({"name": name})


def test_parse_rule_name_rejects_foreign_names():
    for name in DEFENDER_NAMES + ["default-allow-ssh", "AzVmJit-Deny-123-tcp", "AzVmJit-Allow-0123abcd-1a2b3c4d-70000"
                                  "-tcp", "AzVmJit-Deny-0123abcd-icmp", "", None]:
        assert records.parse_rule_name(name) is None


def test_parse_rule_name_is_case_insensitive():
    name = records.allow_rule_name(VM_ID, "deadbeef", 22, "TCP").upper()
    assert records.parse_rule_name(name).request_id == "deadbeef"


def test_bad_request_id_and_port_refused():
    with pytest.raises(BadInput):
        records.allow_rule_name(VM_ID, "xyz", 22, "TCP")
    with pytest.raises(BadInput):
        records.allow_rule_name(VM_ID, "1a2b3c4d", 70000, "TCP")


def test_new_request_id_is_valid():
    rid = records.new_request_id()
    assert re.fullmatch("[0-9a-f]{8}", rid) and records.normalize_request_id(rid) == rid


# ---------------------------------------------------------------------------------------------------------------
# descriptions
# ---------------------------------------------------------------------------------------------------------------

UNTIL = datetime(2026, 11, 25, 15, 0, 0, tzinfo=timezone.utc)


def test_allow_description_text_and_round_trip():
    text = records.allow_description(UNTIL, "alice@contoso.com", "1a2b3c4d")
    assert text == "az vm jit: open until 2026-11-25T15:00:00Z for alice@contoso.com, request 1a2b3c4d"
    assert records.parse_allow_description(text) == (UNTIL, "alice@contoso.com", "1a2b3c4d", None)


def test_allow_description_converts_to_utc_and_drops_microseconds():
    local = datetime(2026, 11, 25, 16, 0, 0, 999999, tzinfo=timezone(timedelta(hours=1)))
    parsed = records.parse_allow_description(records.allow_description(local, "bob", "deadbeef"))
    assert parsed.until == UNTIL and parsed.until.tzinfo is not None
    naive = records.parse_allow_description(records.allow_description(datetime(2026, 11, 25, 15, 0), "bob", "deadbeef"))
    assert naive.until == UNTIL


def test_allow_description_fits_140_with_300_char_requestor():
    requestor = "x" * 290 + "@contoso.com"
    text = records.allow_description(UNTIL, requestor, "1a2b3c4d")
    assert len(text) == 140
    parsed = records.parse_allow_description(text)
    assert parsed.until == UNTIL and parsed.request_id == "1a2b3c4d"
    assert parsed.requestor.endswith("...") and requestor.startswith(parsed.requestor[:-3])


def test_allow_description_awkward_requestors():
    tricky = "eve, request 99999999"
    assert records.parse_allow_description(records.allow_description(UNTIL, tricky, "1a2b3c4d")).requestor == tricky
    assert records.parse_allow_description(records.allow_description(UNTIL, "", "1a2b3c4d")).requestor == "unknown"
    assert records.parse_allow_description(records.allow_description(UNTIL, "a\nb\tc", "1a2b3c4d")).requestor == "a b c"


def test_allow_description_keeps_the_justification_after_the_request_id():
    text = records.allow_description(UNTIL, "alice@contoso.com", "1a2b3c4d", "INC42: fix\ndisk")
    assert text.endswith(", request 1a2b3c4d; why: INC42: fix disk")
    assert records.parse_allow_description(text) == (UNTIL, "alice@contoso.com", "1a2b3c4d", "INC42: fix disk")


def test_a_justification_cannot_change_the_request_id_or_requestor_read_back():
    text = records.allow_description(UNTIL, "eve", "1a2b3c4d", "x, request 99999999")
    parsed = records.parse_allow_description(text)
    assert (parsed.requestor, parsed.request_id, parsed.justification) == ("eve", "1a2b3c4d", "x, request 99999999")


def test_a_long_justification_is_shortened_to_fit_140_and_the_requestor_is_kept_whole():
    app_id = "0b5a3c2e-1f4d-4e6a-9b8c-7d6e5f4a3b2c"
    text = records.allow_description(UNTIL, app_id, "1a2b3c4d", "w" * 300)
    parsed = records.parse_allow_description(text)
    assert len(text) == 140 and parsed.requestor == app_id and parsed.justification.endswith("...")
    assert len(parsed.justification) == records.justification_room(app_id)
    assert records.stored_justification(app_id, "w" * 300) == parsed.justification


def test_an_empty_justification_is_left_out():
    assert records.allow_description(UNTIL, "bob", "deadbeef", "  ").endswith("request deadbeef")


@pytest.mark.parametrize("text", [None, "", "Allow SSH", "az vm jit: protects VM 'vm1'",
                                  "az vm jit: open until 2026-13-45T15:00:00Z for a, request 1a2b3c4d",
                                  "az vm jit: open until 2026-11-25T15:00:00Z for a, request 1a2b3c4"])
def test_parse_allow_description_rejects_other_text(text):
    assert records.parse_allow_description(text) is None


# An end time that cannot be trusted means open: unreadable, or further ahead than any policy allows.
NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("text", [None, "", "opened by hand for the audit", "az vm jit: protects VM 'vm1'",
                                  "az vm jit: open until 2026-13-45T15:00:00Z for a, request 1a2b3c4d",
                                  "az vm jit: open until tomorrow for a, request 1a2b3c4d"])
def test_an_unreadable_description_gives_an_untrusted_end(text):
    info = records.parse_allow_description(text)
    assert records.untrusted_end(info, NOW) == records.UNREADABLE_END_TIME == "UnreadableEndTime"


@pytest.mark.parametrize("until", [NOW - timedelta(days=400), NOW - timedelta(seconds=1), NOW, NOW + timedelta(hours=3),
                                   NOW + timedelta(hours=24), NOW + timedelta(hours=24) + records.CLOCK_LEEWAY])
def test_an_end_within_the_longest_policy_is_trusted_past_or_future(until):
    info = records.parse_allow_description(records.allow_description(until, "alice@contoso.com", "1a2b3c4d"))
    assert records.untrusted_end(info, NOW) is None


@pytest.mark.parametrize("until", [NOW + timedelta(hours=24) + records.CLOCK_LEEWAY + timedelta(seconds=1),
                                   NOW + timedelta(days=30), datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)])
def test_an_end_beyond_the_longest_policy_is_not_trusted(until):
    info = records.parse_allow_description(records.allow_description(until, "mallory", "1a2b3c4d"))
    assert info is not None and info.until == until
    assert records.untrusted_end(info, NOW) == records.END_TIME_BEYOND_MAXIMUM == "EndTimeBeyondMaximum"


def test_a_24_hour_request_stays_trusted_when_the_next_command_reads_azures_clock_a_little_behind():
    # `request` stamps its end from the Date header it saw; the next command may see a front end a few seconds late.
    info = records.parse_allow_description(records.allow_description(NOW + timedelta(hours=24), "bob", "deadbeef"))
    assert records.untrusted_end(info, NOW - timedelta(seconds=90)) is None


def test_deny_description():
    assert records.deny_description("vm1") == "az vm jit: protects VM 'vm1'"
    long = records.deny_description("v" * 300)
    assert len(long) == 140 and long.endswith("...'")


# ---------------------------------------------------------------------------------------------------------------
# builders
# ---------------------------------------------------------------------------------------------------------------


def test_build_deny_rule_single_and_plural():
    one = records.build_deny_rule(VM_ID, "vm1", IP, "TCP", [22], 1000)
    assert one["name"] == records.deny_rule_name(VM_ID, "TCP")
    props = one["properties"]
    assert props["destinationPortRange"] == "22" and "destinationPortRanges" not in props
    assert (props["access"], props["direction"], props["protocol"], props["sourceAddressPrefix"],
            props["destinationAddressPrefix"], props["priority"], props["sourcePortRange"]) == \
        ("Deny", "Inbound", "Tcp", "*", IP, 1000, "*")
    two = records.build_deny_rule(VM_ID, "vm1", IP, "TCP", [3389, 22], 1000)["properties"]
    assert two["destinationPortRanges"] == ["22", "3389"] and "destinationPortRange" not in two


def test_build_deny_rules_one_per_protocol_with_distinct_priorities():
    existing = [rule("user", 1000, source="10.1.0.0/16")]
    rules = records.build_deny_rules(VM_ID, "vm1", IP, [(22, "TCP"), (53, "UDP"), (3389, "TCP"), (500, "*")], existing)
    by_proto = {r["properties"]["protocol"]: r for r in rules}
    assert set(by_proto) == {"Tcp", "Udp", "*"}
    assert by_proto["Tcp"]["properties"]["destinationPortRanges"] == ["22", "3389"]
    assert by_proto["Udp"]["properties"]["destinationPortRange"] == "53"
    priorities = [r["properties"]["priority"] for r in rules]
    assert priorities == [1001, 999, 1002]
    assert records.deny_ceiling(rules, VM_ID) == 999
    assert records.deny_ceiling(rules, OTHER_VM_ID) is None


def test_build_deny_rules_is_idempotent():
    first = records.build_deny_rules(VM_ID, "vm1", IP, TCP, [])
    again = records.build_deny_rules(VM_ID, "vm1", IP, TCP, first)
    assert len(again) == 1 and rules_equivalent(first[0], again[0]) and again == first


def test_build_allow_rule():
    r = records.build_allow_rule(VM_ID, "1a2b3c4d", 53, "UDP", "203.0.113.7", IP, 100, UNTIL, "alice@contoso.com")
    props = r["properties"]
    assert records.parse_rule_name(r["name"]) == records.RuleName("allow", records.vm_key(VM_ID), "1a2b3c4d", 53, "UDP")
    assert (props["access"], props["protocol"], props["sourceAddressPrefix"], props["destinationAddressPrefix"],
            props["destinationPortRange"], props["priority"]) == ("Allow", "Udp", "203.0.113.7", IP, "53", 100)
    assert records.parse_allow_description(props["description"]) == (UNTIL, "alice@contoso.com", "1a2b3c4d", None)
    plural = records.build_allow_rule(VM_ID, "1a2b3c4d", 22, "TCP", ["1.2.3.4", "5.6.7.0/24"], IP, 101, UNTIL, "a")
    assert plural["properties"]["sourceAddressPrefixes"] == ["1.2.3.4", "5.6.7.0/24"]
    assert "sourceAddressPrefix" not in plural["properties"]
