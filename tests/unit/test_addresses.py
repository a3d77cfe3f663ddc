# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Source prefixes: canonical forms (IPv4 and IPv6), "any" spellings, host bits, zone indexes, containment, and
which sources count as narrow."""

import pytest
from azext_jit.errors import BadInput

from azext_jit.addresses import contains, is_any, is_narrow, normalize_prefix, normalize_prefixes, version_of


@pytest.mark.parametrize("text, expected", [
    ("1.2.3.4", "1.2.3.4"),
    ("1.2.3.4/32", "1.2.3.4"),
    (" 203.0.113.7 ", "203.0.113.7"),
    ("10.0.0.0/8", "10.0.0.0/8"),
    ("10.0.0.0/255.0.0.0", "10.0.0.0/8"),
    ("*", "*"),
    ("Any", "*"),
    ("ANY", "*"),
    ("Internet", "*"),
    ("0.0.0.0/0", "*"),
    ("2001:DB8::1", "2001:db8::1"),
    ("2001:db8:0:0::1/128", "2001:db8::1"),
    ("2001:db8::/32", "2001:db8::/32"),
    ("::/0", "::/0"),  # all of IPv6 only, not "any"
])
def test_normalize_prefix(text, expected):
    assert normalize_prefix(text) == expected


@pytest.mark.parametrize("text, network, host", [
    ("10.0.0.5/8", "10.0.0.0/8", "10.0.0.5"),
    ("192.168.1.77/24", "192.168.1.0/24", "192.168.1.77"),
    ("2001:DB8::1/32", "2001:db8::/32", "2001:db8::1"),
])
def test_host_bits_refused_with_network_suggested(text, network, host):
    with pytest.raises(BadInput) as err:
        normalize_prefix(text)
    assert "host bits" in err.value.message and network in err.value.message
    assert network in err.value.recommendation and host in err.value.recommendation


@pytest.mark.parametrize("text", ["foo", "1.2.3", "1.2.3.4/33", "256.1.1.1", "VirtualNetwork", "01.2.3.4", "::1::2"])
def test_invalid_prefix_refused(text):
    with pytest.raises(BadInput) as err:
        normalize_prefix(text)
    assert "'{}'".format(text) in err.value.message and "not an IP address or CIDR" in err.value.message


@pytest.mark.parametrize("text", ["", "  ", None])
def test_empty_prefix_refused(text):
    with pytest.raises(BadInput, match="Empty source"):
        normalize_prefix(text)


def test_normalize_prefixes_dedupes_and_splits():
    assert normalize_prefixes(["10.0.0.0/8,1.2.3.4", "1.2.3.4/32", "10.0.0.0/8"]) == ["10.0.0.0/8", "1.2.3.4"]
    assert normalize_prefixes(["Internet", "*", "0.0.0.0/0"]) == ["*"]
    assert normalize_prefixes("2001:db8::1 2001:DB8::1") == ["2001:db8::1"]
    assert normalize_prefixes([]) == []


@pytest.mark.parametrize("prefix, expected", [
    ("*", True), ("Any", True), ("internet", True), ("0.0.0.0/0", True), ("::/0", True),
    ("10.0.0.0/8", False), ("1.2.3.4", False), ("2001:db8::/32", False),
    ("VirtualNetwork", False), ("AzureLoadBalancer", False), ("", False), (None, False), ("garbage", False),
])
def test_is_any(prefix, expected):
    assert is_any(prefix) is expected


@pytest.mark.parametrize("outer, inner, expected", [
    ("*", "1.2.3.4", True),
    ("*", "2001:db8::1", True),
    ("*", "*", True),
    ("Internet", "10.0.0.0/8", True),
    ("10.0.0.0/8", "*", False),
    ("10.0.0.0/8", "10.1.2.3", True),
    ("10.0.0.0/8", "10.1.0.0/16", True),
    ("10.0.0.0/8", "10.0.0.0/8", True),
    ("10.0.0.0/16", "10.0.0.0/8", False),
    ("10.0.0.0/8", "11.0.0.1", False),
    ("1.2.3.4", "1.2.3.4/32", True),
    ("1.2.3.4", "1.2.3.5", False),
    ("2001:db8::/32", "2001:db8:1::5", True),
    ("2001:db8::/32", "2001:db9::5", False),
    ("::/0", "2001:db8::1", True),
    ("::/0", "1.2.3.4", False),        # IPv6-everything does not hold IPv4 sources
    ("0.0.0.0/1", "2001:db8::1", False),
    ("::ffff:0:0/96", "1.2.3.4", False),  # families never mix
])
def test_contains(outer, inner, expected):
    assert contains(outer, inner) is expected


def test_contains_rejects_garbage():
    with pytest.raises(BadInput):
        contains("10.0.0.0/8", "nope")


@pytest.mark.parametrize("text, plain", [
    ("fe80::1%eth0", "fe80::1"),
    ("FE80::1%25", "FE80::1"),
    ("2001:db8::7%1", "2001:db8::7"),
    ("fe80::%eth0/64", "fe80::/64"),
])
def test_ipv6_zone_index_refused_with_the_plain_address_suggested(text, plain):
    with pytest.raises(BadInput) as err:
        normalize_prefix(text)
    assert "zone index" in err.value.message and "'{}'".format(text) in err.value.message
    assert err.value.recommendation.endswith(plain)


def test_zone_index_refused_in_every_item_of_a_list():
    with pytest.raises(BadInput, match="zone index"):
        normalize_prefixes(["10.0.0.0/8", "fe80::1%eth0"])


@pytest.mark.parametrize("prefix, expected", [
    ("203.0.113.7", True), ("203.0.113.7/32", True), ("203.0.113.0/24", True), ("203.0.113.0/25", True),
    ("203.0.112.0/23", False), ("10.0.0.0/16", False), ("0.0.0.0/1", False), ("128.0.0.0/1", False),
    ("2001:db8::7", True), ("2001:db8:0:1::/64", True), ("2001:db8::/63", False), ("::/1", False),
    ("*", False), ("::/0", False),
])
def test_is_narrow_means_one_address_or_at_most_a_slash_24_or_slash_64(prefix, expected):
    assert is_narrow(prefix) is expected


@pytest.mark.parametrize("prefix, expected", [
    ("10.0.0.4", 4), ("10.0.0.0/8", 4), ("2001:db8::1", 6), ("::/1", 6), ("*", None), ("VirtualNetwork", None),
    (None, None),
])
def test_version_of(prefix, expected):
    assert version_of(prefix) == expected
