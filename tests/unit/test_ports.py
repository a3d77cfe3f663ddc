# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Ports: NUMBER[/PROTOCOL] parsing, the TCP default, and refusals."""

import pytest
from azext_jit.errors import BadInput

from azext_jit.ports import PortSpec, format_ports, normalize_protocol, parse_port, parse_ports


@pytest.mark.parametrize("text, number, protocol, explicit", [
    ("22", 22, "TCP", False),
    ("22/tcp", 22, "TCP", True),
    ("22/Tcp", 22, "TCP", True),
    ("53/UDP", 53, "UDP", True),
    ("53/udp", 53, "UDP", True),
    ("3389/*", 3389, "*", True),
    (" 443 / tcp ", 443, "TCP", True),
    ("1", 1, "TCP", False),
    ("65535", 65535, "TCP", False),
])
def test_parse_port(text, number, protocol, explicit):
    spec = parse_port(text)
    assert (spec.number, spec.protocol, spec.protocol_explicit) == (number, protocol, explicit)


def test_unspecified_protocol_equals_explicit_tcp():
    # Equality and hashing ignore whether the protocol was typed: "22" and "22/tcp" are the same port.
    assert parse_port("22") == PortSpec(22, "TCP")
    assert hash(parse_port("22")) == hash(PortSpec(22, "TCP"))
    assert parse_port("22") != PortSpec(22, "UDP")


@pytest.mark.parametrize("text, rule", [
    ("65536", "between 1 and 65535"),
    ("99999999", "between 1 and 65535"),
    ("-1", "NUMBER/PROTOCOL"),
    ("ssh", "NUMBER/PROTOCOL"),
    ("", "NUMBER/PROTOCOL"),
    ("22/", "TCP, UDP or *"),
    ("22/any", "TCP, UDP or *"),
    ("22/icmp", "TCP, UDP or *"),
    ("22/tcp/udp", "NUMBER/PROTOCOL"),
    ("8000-8100", "not ranges"),
    ("22.5", "NUMBER/PROTOCOL"),
    ("\u0662\u0662", "NUMBER/PROTOCOL"),  # Arabic-Indic digits: int() would accept them
])
def test_parse_port_refused(text, rule):
    with pytest.raises(BadInput) as err:
        parse_port(text)
    assert rule in err.value.message
    assert err.value.recommendation and "--ports" in err.value.recommendation


@pytest.mark.parametrize("number", [-1, 65536, True, "22"])
def test_portspec_validates_number(number):
    with pytest.raises(BadInput):
        PortSpec(number, "TCP")


def test_portspec_normalises_protocol():
    assert PortSpec(22, "tcp").protocol == "TCP"
    with pytest.raises(BadInput):
        PortSpec(22, "any")


@pytest.mark.parametrize("values, expected", [
    (["22", "3389"], ["22/TCP", "3389/TCP"]),
    (["22,3389"], ["22/TCP", "3389/TCP"]),
    (["22, 3389", "53/udp"], ["22/TCP", "3389/TCP", "53/UDP"]),
    ("22 3389", ["22/TCP", "3389/TCP"]),
    (["22,"], ["22/TCP"]),
    (["53/tcp", "53/udp"], ["53/TCP", "53/UDP"]),
    (["53", "53/udp"], ["53/TCP", "53/UDP"]),
])
def test_parse_ports(values, expected):
    assert [str(p) for p in parse_ports(values)] == expected


@pytest.mark.parametrize("values, rule", [
    (["22", "22"], "given twice"),
    (["22", "22/tcp"], "given twice"),
    (["22,22"], "given twice"),
    (["22/tcp", "22/*"], "overlaps 22/TCP"),
    (["22/*", "22/udp"], "overlaps 22/*"),
])
def test_parse_ports_duplicates_refused(values, rule):
    with pytest.raises(BadInput) as err:
        parse_ports(values)
    assert rule in err.value.message


@pytest.mark.parametrize("values", [[], None, [""], [" , "]])
def test_parse_ports_empty_refused(values):
    with pytest.raises(BadInput, match="No ports"):
        parse_ports(values)


def test_normalize_protocol_and_format():
    assert [normalize_protocol(p) for p in ("tcp", "Udp", "*")] == ["TCP", "UDP", "*"]
    assert format_ports([PortSpec(22), PortSpec(53, "UDP")]) == "22/TCP, 53/UDP"


@pytest.mark.parametrize("text", ["0", "0/tcp", "0/udp", "0/*"])
def test_port_zero_is_refused_like_any_invalid_port(text):
    with pytest.raises(BadInput, match="between 1 and 65535"):
        parse_port(text)
