# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Which rule of one NSG decides whether a class of sources reaches a port (custom rules in priority order, then
Azure's default rules), and which sources count as the internet."""
import pytest

from azext_jit.addresses import internet_wide
from azext_jit.nsg.reach import first_deciding_rule, rule_opens_to_internet
from azext_jit.nsg.rules import rule_allows_any_source
from tests.unit.graph_rows import allow, deny

NSG_ID = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/web-nsg'
IP = '10.0.0.4'
ASG = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/applicationSecurityGroups/web'


def nsg(*rules, defaults=True):
    """An NSG in wire shape; `defaults` False leaves out `defaultSecurityRules`, as a trimmed answer might."""
    props = {'securityRules': list(rules)}
    if defaults:
        from tests.standin.network import _default_rules  # pylint: disable=protected-access
        props['defaultSecurityRules'] = _default_rules(NSG_ID)
    return {'id': NSG_ID, 'name': 'web-nsg', 'properties': props}


def decide(group, port=22, protocol='TCP', opens=rule_allows_any_source, asg_ids=(), ip=IP, gone=frozenset()):
    rule, narrow = first_deciding_rule(group, port, protocol, ip, list(asg_ids), opens, gone)
    return (rule or {}).get('name'), narrow


@pytest.mark.parametrize('source, wide', [
    ('*', True), ('Any', True), ('Internet', True), ('internet', True), ('0.0.0.0/0', True), ('::/0', True),
    ('20.0.0.0/16', True), ('20.0.0.0/17', False), ('20.0.0.0/8', True), ('20.1.2.3/8', True), ('20.1.2.3', False),
    ('10.0.0.0/8', False), ('172.16.0.0/12', False), ('192.168.0.0/16', False), ('100.64.0.0/10', False),
    ('10.0.0.0/7', True), ('0.0.0.0/1', True),
    ('2001:db8::/48', True), ('2001:db8::/49', False), ('2001:db8::/32', True), ('fc00::/7', False),
    ('fd00::/8', False), ('fd00:1::/48', False),
    ('VirtualNetwork', False), ('AzureLoadBalancer', False), ('Storage', False),
    ('AzureCloud', True), ('AzureCloud.WestEurope', True),
    ('', False), (None, False), ('junk', False), ('1.2.3.4/33', False), ('fe80::1%eth0', False),
    (['10.0.0.0/8', 'Internet'], True), (['10.0.0.0/8', '20.1.2.3'], False), ([], False),
])
def test_internet_wide_bounds(source, wide):
    assert internet_wide(source) is wide


@pytest.mark.parametrize('source, opens', [
    (['10.0.0.0/8', '20.0.0.0/16'], True),
    (['10.0.0.0/8', '20.1.2.3'], False),
    ('Internet', True),
    ('VirtualNetwork', False),
])
def test_a_rule_opens_to_the_internet_when_one_of_its_sources_is_wide(source, opens):
    assert rule_opens_to_internet(allow('r', 100, source)) is opens


def test_a_rule_with_only_a_source_asg_does_not_open_to_the_internet():
    rule = allow('r', 100, source=None)
    del rule['properties']['sourceAddressPrefix']
    rule['properties']['sourceApplicationSecurityGroups'] = [{'id': ASG}]
    assert rule_opens_to_internet(rule) is False


@pytest.mark.parametrize('defaults', [True, False])
def test_nothing_but_the_default_rules_keeps_every_source_out(defaults):
    assert decide(nsg(defaults=defaults)) == (None, [])


@pytest.mark.parametrize('defaults', [True, False])
def test_default_rules_count_after_every_custom_rule_in_their_order(defaults):
    """Counting every source: AllowVnetInBound (65000) decides before DenyAllInBound (65500), and a custom deny at
    4096 before both."""
    assert decide(nsg(defaults=defaults), opens=lambda rule: True) == ('AllowVnetInBound', [])
    assert decide(nsg(deny('DenyAll', 4096), defaults=defaults), opens=lambda rule: True) == (None, [])


def test_the_vnet_default_rule_is_not_the_internet():
    assert decide(nsg(), opens=rule_opens_to_internet) == (None, [])


def test_an_allow_rule_for_any_source_decides():
    assert decide(nsg(allow('AllowSsh', 300))) == ('AllowSsh', [])


def test_a_higher_priority_deny_for_any_source_decides_first():
    assert decide(nsg(allow('AllowSsh', 300), deny('DenyAll', 200))) == (None, [])


def test_a_deny_for_some_sources_leaves_the_rest_to_the_rules_below():
    assert decide(nsg(allow('AllowSsh', 300), deny('DenyTen', 200, source='10.0.0.0/8'))) == ('AllowSsh', [])


def test_narrower_allow_rules_met_on_the_way_are_named_but_default_rules_never():
    assert decide(nsg(allow('AllowSsh', 300), allow('Office', 200, source='203.0.113.0/24'))) == \
        ('AllowSsh', ['web-nsg/Office'])
    assert decide(nsg(allow('Office', 200, source='203.0.113.0/24'))) == (None, ['web-nsg/Office'])


def test_a_rule_about_to_be_removed_does_not_count():
    assert decide(nsg(allow('AllowSsh', 300)), gone={(NSG_ID.lower(), 'allowssh')}) == (None, [])


@pytest.mark.parametrize('rule, decides', [
    (allow('Range', 300, port='20-25'), True),
    (allow('List', 300, port=['80', '22']), True),
    (allow('Other', 300, port='2222'), False),
    (allow('AnyProtocol', 300, protocol='*', port='*'), True),
    (allow('Udp', 300, protocol='Udp'), False),
    (allow('Icmp', 300, protocol='Icmp', port='*'), False),
    (allow('OtherIp', 300, dest='10.0.0.5'), False),
    (allow('Subnet', 300, dest='10.0.0.0/24'), True),
    (allow('VnetDest', 300, dest='VirtualNetwork'), True),
    (allow('Outbound', 300, direction='Outbound'), False),
])
def test_a_rule_decides_only_for_its_ports_protocols_and_destinations(rule, decides):
    assert decide(nsg(rule))[0] == (rule['name'] if decides else None)


def test_an_asg_destination_counts_for_members_only():
    rule = allow('ToWeb', 300, destinationApplicationSecurityGroups=[{'id': ASG}])
    assert decide(nsg(rule), asg_ids=[ASG.upper()])[0] == 'ToWeb'
    assert decide(nsg(rule), asg_ids=[])[0] is None


def test_a_port_rule_for_udp_decides_for_udp_and_for_both():
    rule = allow('Dns', 300, protocol='Udp', port='53')
    assert decide(nsg(rule), port=53, protocol='UDP')[0] == 'Dns'
    assert decide(nsg(rule), port=53, protocol='*')[0] == 'Dns'
    assert decide(nsg(rule), port=53, protocol='TCP')[0] is None


def test_a_deny_for_the_other_ip_family_saves_nothing():
    assert decide(nsg(allow('AllowSsh', 300), deny('DenyV6', 200, source='::/0'))) == ('AllowSsh', [])
    assert decide(nsg(allow('AllowSsh', 300), deny('DenyV4', 200, source='0.0.0.0/0'))) == (None, [])
    assert decide(nsg(allow('AllowSsh', 300), deny('DenyV4', 200, source='0.0.0.0/0')), ip='2001:db8::4') == \
        ('AllowSsh', [])


def test_a_deny_for_tcp_alone_leaves_udp_of_a_port_asked_over_both_open():
    group = nsg(allow('AllowRdp', 300, port='3389', protocol='*'),
                allow('DenyRdpTcp', 200, port='3389', protocol='Tcp', access='Deny'))
    assert decide(group, port=3389, protocol='*') == ('AllowRdp', [])
    assert decide(group, port=3389, protocol='TCP') == (None, [])


def test_a_deny_for_some_source_ports_saves_nothing():
    group = nsg(allow('AllowSsh', 300), allow('DenyHighPorts', 200, access='Deny', sourcePortRange='1024-65535'))
    assert decide(group) == ('AllowSsh', [])
    group = nsg(allow('AllowSsh', 300), allow('DenyAllPorts', 200, access='Deny', sourcePortRange='0-65535'))
    assert decide(group) == (None, [])


def test_rules_that_are_not_rules_are_passed_over():
    group = nsg('junk', None, {'properties': {'access': 'Allow', 'direction': 'Inbound', 'priority': 100,
                                              'protocol': 'Tcp', 'sourcePortRange': '*',
                                              'sourceAddressPrefix': '10.0.0.0/8', 'destinationAddressPrefix': '*',
                                              'destinationPortRange': '22'}}, allow('AllowSsh', 300))
    assert decide(group) == ('AllowSsh', ['web-nsg/<rule>'])
