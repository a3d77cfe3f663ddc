# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The policy model, build_policy's validation and every refusal of check_request."""

from datetime import timedelta

import pytest
from azext_jit.errors import BadInput

from azext_jit.policy import CheckedRequest, JitPolicy, PortPolicy, build_policy, check_request
from azext_jit.ports import PortSpec, parse_ports

H = timedelta(hours=1)
M = timedelta(minutes=1)


def _policy(*ports, approval=False):
    return JitPolicy(tuple(ports), approval)


def _pp(number, protocol="TCP", max_duration=3 * H, sources=("*",)):
    return PortPolicy(number, protocol, max_duration, tuple(sources))


DEFAULT = _policy(_pp(22), _pp(3389, max_duration=1 * H))
RESTRICTED = _policy(_pp(22, sources=("10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32")),
                     _pp(3389, sources=("10.1.0.0/16",)))


def _refused(policy, **kwargs):
    with pytest.raises(BadInput) as err:
        check_request(policy, **kwargs)
    assert err.value.recommendation, "every refusal says how to fix it"
    return err.value.message, err.value.recommendation


# ---------------------------------------------------------------- check_request: what gets requested


def test_defaults_every_port_each_with_its_own_maximum():
    result = check_request(DEFAULT)
    assert isinstance(result, CheckedRequest) and isinstance(result, list)
    assert [(str(p), d) for p, d in result] == [("22/TCP", 3 * H), ("3389/TCP", 1 * H)]
    assert result.source is None


def test_empty_port_list_means_every_port():
    assert len(check_request(DEFAULT, ports=[])) == 2


def test_explicit_duration_applies_to_every_requested_port():
    result = check_request(DEFAULT, duration=45 * M)
    assert [d for _, d in result] == [45 * M, 45 * M]


@pytest.mark.parametrize("duration", [5 * M, 3 * H])
def test_duration_bounds_inclusive(duration):
    assert check_request(DEFAULT, ports=parse_ports(["22"]), duration=duration)[0][1] == duration


def test_subset_of_ports():
    result = check_request(DEFAULT, ports=parse_ports(["3389"]))
    assert [(p.number, d) for p, d in result] == [(3389, 1 * H)]


def test_unspecified_protocol_selects_every_entry_of_that_number():
    policy = _policy(_pp(53, "TCP"), _pp(53, "UDP"), _pp(22))
    assert [str(p) for p, _ in check_request(policy, ports=parse_ports(["53"]))] == ["53/TCP", "53/UDP"]


def test_unspecified_protocol_matches_udp_only_port():
    policy = _policy(_pp(51820, "UDP"))
    assert [str(p) for p, _ in check_request(policy, ports=parse_ports(["51820"]))] == ["51820/UDP"]


@pytest.mark.parametrize("requested, expected", [("22/tcp", "22/TCP"), ("22/udp", "22/UDP"), ("22/*", "22/*"),
                                                 ("22", "22/*")])
def test_star_policy_port_matches_any_protocol_and_is_narrowed(requested, expected):
    policy = _policy(_pp(22, "*", max_duration=2 * H))
    result = check_request(policy, ports=parse_ports([requested]))
    assert [(str(p), d) for p, d in result] == [(expected, 2 * H)]


def test_duplicate_selection_collapsed():
    policy = _policy(_pp(53, "TCP"), _pp(53, "UDP"))
    result = check_request(policy, ports=[PortSpec(53, protocol_explicit=False), PortSpec(53, "UDP")])
    assert [str(p) for p, _ in result] == ["53/TCP", "53/UDP"]


@pytest.mark.parametrize("source, normalised", [
    ("10.1.2.3", "10.1.2.3"), ("10.1.2.3/32", "10.1.2.3"), ("10.2.0.0/16", "10.2.0.0/16"),
    ("192.168.1.0/24", "192.168.1.0/24"), ("2001:DB8::7", "2001:db8::7"),
])
def test_source_inside_allowed_sources(source, normalised):
    result = check_request(RESTRICTED, ports=parse_ports(["22"]), source=source)
    assert result.source == normalised


def test_source_none_skips_check():
    # The caller's IP is resolved elsewhere (by Defender, or by the echo service in NSG mode).
    assert check_request(RESTRICTED, source=None, exact_source_match=True).source is None


def test_any_source_policy_accepts_any_single_source_even_in_exact_mode():
    result = check_request(DEFAULT, source="203.0.113.7", exact_source_match=True)
    assert result.source == "203.0.113.7"


@pytest.mark.parametrize("source", ["10.0.0.0/8", "10.0.0.0/255.0.0.0", "2001:DB8::/32"])
def test_exact_mode_accepts_an_allowed_prefix_exactly(source):
    assert check_request(RESTRICTED, ports=parse_ports(["22"]), source=source, exact_source_match=True).source


def test_exact_mode_single_ip_policy_accepts_slash_32():
    policy = _policy(_pp(22, sources=("198.51.100.4",)))
    assert check_request(policy, source="198.51.100.4/32", exact_source_match=True).source == "198.51.100.4"


# ---------------------------------------------------------------- check_request: every refusal


def test_refuse_port_not_in_policy_names_policy_ports():
    msg, rec = _refused(DEFAULT, ports=parse_ports(["8080"]))
    assert "Port 8080 is not in the JIT policy" in msg
    assert "22/TCP, 3389/TCP" in msg
    assert "--ports 22" in rec


def test_refuse_one_bad_port_among_good_ones():
    msg, _ = _refused(DEFAULT, ports=parse_ports(["22", "443"]))
    assert "443" in msg and "not in the JIT policy" in msg


@pytest.mark.parametrize("requested, allowed", [("22/udp", "TCP"), ("22/*", "TCP")])
def test_refuse_wrong_protocol(requested, allowed):
    msg, rec = _refused(DEFAULT, ports=parse_ports([requested]))
    assert "not in the JIT policy" in msg
    assert "port 22 is allowed for {} only".format(allowed) in msg
    assert "22/TCP" in rec


def test_refuse_policy_without_ports():
    msg, rec = _refused(_policy())
    assert "no ports" in msg and "az vm jit enable" in rec


@pytest.mark.parametrize("duration", [4 * M, timedelta(minutes=4, seconds=59), timedelta(seconds=1)])
def test_refuse_duration_below_minimum(duration):
    msg, rec = _refused(DEFAULT, duration=duration)
    assert "below the 5-minute minimum" in msg
    assert "between 5m and 1h" in rec  # the smallest maximum of the requested ports


def test_refuse_duration_above_maximum_names_maximum():
    msg, rec = _refused(DEFAULT, ports=parse_ports(["22"]), duration=4 * H)
    assert "Duration 4h exceeds the maximum of 3h" in msg and "22/TCP" in msg
    assert "--duration 3h or less" in rec


def test_refuse_duration_above_one_of_several_maxima():
    msg, rec = _refused(DEFAULT, duration=2 * H)  # 22 allows 3h, 3389 only 1h
    assert "exceeds the maximum of 1h" in msg and "3389/TCP" in msg and "22/TCP" not in msg
    assert "--duration 1h or less" in rec


def test_refuse_duration_above_different_maxima_lists_each():
    policy = _policy(_pp(22, max_duration=2 * H), _pp(3389, max_duration=1 * H))
    msg, rec = _refused(policy, duration=5 * H)
    assert "22/TCP (2h)" in msg and "3389/TCP (1h)" in msg
    assert "--duration 1h" in rec


@pytest.mark.parametrize("source", ["*", "Any", "Internet", "0.0.0.0/0", "::/0"])
def test_refuse_any_source(source):
    msg, rec = _refused(DEFAULT, source=source)
    assert "name one IP address or CIDR" in msg
    assert "--source" in rec


def test_refuse_garbage_source():
    msg, _ = _refused(DEFAULT, source="my-laptop")
    assert "'my-laptop'" in msg and "not an IP address or CIDR" in msg


@pytest.mark.parametrize("source", ["8.8.8.8", "10.0.0.0/7", "2001:db9::1", "192.168.2.1"])
def test_refuse_source_outside_allowed_names_them(source):
    msg, rec = _refused(RESTRICTED, ports=parse_ports(["22"]), source=source)
    assert "outside the allowed sources of port 22/TCP" in msg
    assert "10.0.0.0/8, 192.168.1.0/24, 2001:db8::/32" in msg
    assert "10.0.0.0/8" in rec


def test_refuse_source_allowed_for_one_port_but_not_another():
    # 10.2.3.4 is inside 22's 10.0.0.0/8 but outside 3389's 10.1.0.0/16
    msg, _ = _refused(RESTRICTED, source="10.2.3.4")
    assert "outside the allowed sources of port 3389/TCP: 10.1.0.0/16" in msg


def test_refuse_exact_mode_contained_but_not_equal_suggests_containing_prefix():
    msg, rec = _refused(RESTRICTED, ports=parse_ports(["22"]), source="10.1.2.3", exact_source_match=True)
    assert "Defender for Cloud accepts only one of the allowed prefixes exactly" in msg
    assert "10.1.2.3" in msg and "22/TCP" in msg
    assert rec == "Use --source 10.0.0.0/8"


def test_exact_mode_suggests_the_narrowest_containing_prefix():
    policy = _policy(_pp(22, sources=("10.0.0.0/8", "10.1.0.0/16")))
    _, rec = _refused(policy, source="10.1.2.3", exact_source_match=True)
    assert rec == "Use --source 10.1.0.0/16"


def test_exact_mode_ipv6():
    _, rec = _refused(RESTRICTED, ports=parse_ports(["22"]), source="2001:db8::1", exact_source_match=True)
    assert rec == "Use --source 2001:db8::/32"


def test_same_request_passes_without_exact_mode():
    assert check_request(RESTRICTED, ports=parse_ports(["22"]), source="10.1.2.3").source == "10.1.2.3"


# ---------------------------------------------------------------- model


def test_port_lookup():
    policy = _policy(_pp(53, "UDP"), _pp(22), _pp(3389, "*"))
    assert policy.port(22).protocol == "TCP"
    assert policy.port(53).protocol == "UDP"
    assert policy.port(53, "tcp") is None
    assert policy.port(3389, "UDP").protocol == "*"
    assert policy.port(8080) is None


def test_model_is_canonical():
    a = _policy(_pp(3389), _pp(22, sources=("192.168.1.0/24", "10.0.0.5/32", "10.0.0.5")))
    b = _policy(_pp(22, "tcp", sources=["10.0.0.5", "192.168.1.0/24"]), _pp(3389))
    assert a == b
    assert [p.number for p in a.ports] == [22, 3389]
    assert a.ports[0].allowed_sources == ("10.0.0.5", "192.168.1.0/24")


def test_to_dict_exact_form():
    policy = build_policy(parse_ports(["22"]), 3 * H, ["*"], False)
    assert policy.to_dict() == {"ports": [{"number": 22, "protocol": "TCP", "maxDuration": "PT3H",
                                           "allowedSources": ["*"]}], "requireApproval": False}


def test_dict_round_trip():
    policy = build_policy(parse_ports(["22", "53/udp", "3389/*"]), "P1D", ["2001:db8::/32", "10.0.0.0/8"], True)
    data = policy.to_dict()
    assert data["ports"][0]["maxDuration"] == "PT24H"
    assert data["ports"][0]["allowedSources"] == ["10.0.0.0/8", "2001:db8::/32"]
    assert JitPolicy.from_dict(data) == policy
    assert JitPolicy.from_dict(data).to_dict() == data


def test_from_dict_defaults_approval_and_ignores_unknown_keys():
    data = {"ports": [{"number": 22, "protocol": "TCP", "maxDuration": "PT3H", "allowedSources": ["*"],
                       "future": 1}], "version": 2}
    assert JitPolicy.from_dict(data) == _policy(_pp(22))


@pytest.mark.parametrize("data", [
    {},
    {"ports": [{"number": 22, "protocol": "TCP", "maxDuration": "PT3H"}]},
    {"ports": [{"number": "22", "protocol": "TCP", "maxDuration": "PT3H", "allowedSources": ["*"]}]},
    {"ports": [{"number": 70000, "protocol": "TCP", "maxDuration": "PT3H", "allowedSources": ["*"]}]},
    {"ports": [{"number": 22, "protocol": "ICMP", "maxDuration": "PT3H", "allowedSources": ["*"]}]},
    {"ports": [{"number": 22, "protocol": "TCP", "maxDuration": "soon", "allowedSources": ["*"]}]},
    {"ports": [{"number": 22, "protocol": "TCP", "maxDuration": "PT3H", "allowedSources": "*"}]},
    {"ports": [{"number": 22, "protocol": "TCP", "maxDuration": "PT3H", "allowedSources": ["*"]}],
     "requireApproval": "yes"},
    {"ports": None},
])
def test_from_dict_malformed_raises_value_error(data):
    with pytest.raises(ValueError, match="malformed JIT policy data|not"):
        JitPolicy.from_dict(data)


def _stored(number=22, protocol="TCP", duration="PT3H", sources=("*",)):
    return {"number": number, "protocol": protocol, "maxDuration": duration, "allowedSources": list(sources)}


@pytest.mark.parametrize("ports, reason", [
    ([_stored(duration="P30D")], "above the JIT limit of 24 hours"),
    ([_stored(duration="PT1M")], "below the JIT minimum of 5 minutes"),
    ([_stored(number=0)], "between 1 and 65535"),
    ([_stored(sources=["not-an-address"])], "not an IP address or CIDR"),
    ([_stored(sources=["10.0.0.5/8"])], "host bits set"),
    ([_stored(sources=["*", "10.0.0.0/8"])], "mixes '\\*' with other sources"),
    ([_stored(sources=[])], "not a list of sources"),
    ([_stored(), _stored(protocol="*")], "appears more than once"),
    ([], "names no port"),
])
def test_a_stored_policy_is_held_to_what_enable_accepts(ports, reason):
    """Tags can be written by people outside JIT: a stored policy may not hold what `enable` would refuse."""
    with pytest.raises(ValueError, match=reason):
        JitPolicy.from_dict({"ports": ports})


# ---------------------------------------------------------------- build_policy


def test_build_policy():
    policy = build_policy(parse_ports(["3389", "22"]), "2h", ["10.0.0.0/8", "1.2.3.4/32", "1.2.3.4"], True)
    assert policy.require_approval is True
    assert [(str(p), p.max_duration, p.allowed_sources) for p in policy.ports] == [
        ("22/TCP", 2 * H, ("1.2.3.4", "10.0.0.0/8")), ("3389/TCP", 2 * H, ("1.2.3.4", "10.0.0.0/8"))]


def test_build_policy_is_order_insensitive():
    assert build_policy(parse_ports(["22", "3389"]), 3 * H, ["10.0.0.0/8", "1.2.3.4"], False) == \
        build_policy(parse_ports(["3389", "22"]), "PT3H", ["1.2.3.4", "10.0.0.0/8"], False)


@pytest.mark.parametrize("sources", [[], None, ["*"], ["Internet"], ["*", "0.0.0.0/0", "Any"]])
def test_build_policy_default_and_any_sources(sources):
    assert build_policy(parse_ports(["22"]), 3 * H, sources, False).ports[0].allowed_sources == ("*",)


def test_build_policy_accepts_port_texts():
    assert [str(p) for p in build_policy(["22", "53/udp"], 3 * H, [], False).ports] == ["22/TCP", "53/UDP"]


@pytest.mark.parametrize("duration", ["PT5M", "PT24H", "P1D", 5 * M, 24 * H])
def test_build_policy_duration_bounds_ok(duration):
    build_policy(parse_ports(["22"]), duration, [], False)


@pytest.mark.parametrize("duration, rule", [("PT4M", "below"), ("P2D", "above"), ("25h", "above"),
                                            (4 * M, "below")])
def test_build_policy_duration_out_of_bounds(duration, rule):
    with pytest.raises(BadInput) as err:
        build_policy(parse_ports(["22"]), duration, [], False)
    assert rule in err.value.message and "--max-duration" in err.value.recommendation


def test_build_policy_refuses_no_ports():
    with pytest.raises(BadInput, match="at least one port"):
        build_policy([], 3 * H, [], False)


@pytest.mark.parametrize("ports", [[PortSpec(22), PortSpec(22)], [PortSpec(22, "*"), PortSpec(22, "UDP")]])
def test_build_policy_refuses_overlapping_ports(ports):
    with pytest.raises(BadInput, match="only once"):
        build_policy(ports, 3 * H, [], False)


@pytest.mark.parametrize("sources", [["*", "10.0.0.0/8"], ["Internet", "1.2.3.4"], ["10.0.0.0/8,any"]])
def test_build_policy_refuses_any_with_others(sources):
    with pytest.raises(BadInput) as err:
        build_policy(parse_ports(["22"]), 3 * H, sources, False)
    assert "ambiguous" in err.value.message
    assert "--allowed-sources" in err.value.recommendation


def test_build_policy_refuses_host_bits_source():
    with pytest.raises(BadInput, match="host bits"):
        build_policy(parse_ports(["22"]), 3 * H, ["10.0.0.5/8"], False)


# ---------------------------------------------------------------- sources: how wide, which family
@pytest.mark.parametrize("source", ["0.0.0.0/1", "128.0.0.0/1", "10.0.0.0/16", "203.0.112.0/23", "::/1",
                                    "2001:db8::/48"])
@pytest.mark.parametrize("exact", [False, True], ids=["nsg", "defender"])
def test_any_source_policy_refuses_a_range_wider_than_the_bound(source, exact):
    msg, rec = _refused(DEFAULT, ports=parse_ports(["22"]), source=source, exact_source_match=exact)
    bound = "/64" if ":" in source else "/24"
    assert msg.startswith(f"Source {source} is wider than one address or a {bound}: port 22/TCP allows any source")
    assert rec.endswith(f"az vm jit enable --allowed-sources {source}")


@pytest.mark.parametrize("source", ["203.0.113.7", "203.0.113.0/24", "198.51.100.128/25", "2001:db8::7",
                                    "2001:db8:0:5::/64"])
@pytest.mark.parametrize("exact", [False, True], ids=["nsg", "defender"])
def test_any_source_policy_accepts_one_address_or_a_narrow_range(source, exact):
    assert check_request(DEFAULT, source=source, exact_source_match=exact).source == source


def test_ipv6_everything_policy_bounds_requests_like_any():
    policy = _policy(_pp(22, sources=("::/0",)))
    assert check_request(policy, source="2001:db8:0:5::/64").source == "2001:db8:0:5::/64"
    msg, _ = _refused(policy, source="2001:db8::/32")
    assert "wider than one address or a /64" in msg and "(::/0)" in msg


@pytest.mark.parametrize("source, exact", [
    ("10.0.0.0/16", True),      # named exactly (Defender mode needs that)
    ("10.0.0.0/16", False),
    ("10.0.0.0/17", False),     # inside a range the policy names: NSG mode takes it
    ("0.0.0.0/1", True),
])
def test_wide_source_accepted_when_the_policy_names_it_or_a_wider_range(source, exact):
    policy = _policy(_pp(22, sources=("10.0.0.0/16", "0.0.0.0/1")))
    assert check_request(policy, source=source, exact_source_match=exact).source == source


def test_a_stored_policy_with_star_and_a_named_range_takes_the_named_range_only():
    policy = _policy(_pp(22, sources=("*", "10.0.0.0/16")))
    assert check_request(policy, source="10.0.0.0/16").source == "10.0.0.0/16"
    msg, _ = _refused(policy, source="11.0.0.0/16")
    assert "wider than one address or a /24" in msg


@pytest.mark.parametrize("source, vm_address, families", [
    ("2001:db8::7", "10.0.0.4", ("IPv6", "IPv4")),
    ("2001:db8:0:5::/64", "10.0.0.4", ("IPv6", "IPv4")),
    ("203.0.113.7", "fd00::4", ("IPv4", "IPv6")),
])
def test_source_of_the_other_ip_family_than_the_vm_is_refused(source, vm_address, families):
    msg, rec = _refused(DEFAULT, source=source, vm_address=vm_address)
    assert msg.startswith(f"Source {source} is an {families[0]} address, but the VM's private IP {vm_address} is "
                          f"{families[1]}")
    assert f"Use an {families[1]} --source" in rec


@pytest.mark.parametrize("source, vm_address", [("203.0.113.7", "10.0.0.4"), ("2001:db8::7", "fd00::4"),
                                                ("203.0.113.7", None), (None, "10.0.0.4")])
def test_source_of_the_vms_family_or_unknown_family_passes(source, vm_address):
    assert check_request(DEFAULT, source=source, vm_address=vm_address).source == source
