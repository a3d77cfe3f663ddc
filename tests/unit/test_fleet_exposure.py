# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Which VMs of a fleet the internet reaches on a port, from Resource Graph rows: every public door of every VM,
through the subnet's NSG then the NIC's (both must let it in), the public IP's SKU when neither has an NSG; what the
rows do not show is reported unknown, never open."""
import pytest

from azext_jit.fleet.estate import Estate
from azext_jit.fleet.exposure import exposed, summary
from tests.standin import compute
from tests.unit.graph_rows import OTHER_SUB, SUB, TCP, Fleet, allow, deny, ids


def no_jit(_vm):
    return None


def report(fleet, ports=None, jit_of=no_jit, without=(), unknown=None):
    return exposed(Estate.from_rows(fleet.rows(without=without)), ports or TCP, jit_of, unknown)


def brief(rows):
    return [(r['vm'], r['port'], r['nic'], r['ipConfiguration'],
             [(x['nsg'], x['attachedTo'], x['name']) for x in r['rules']]) for r in rows]


def vm_behind(rules=(), where='nic', sku='Standard', public_ip='20.50.0.4', name='web'):
    """One VM whose NSG holding `rules` is on its NIC or its subnet."""
    fleet = Fleet()
    nsg_id = fleet.nsg('rg', 'web-nsg', rules=rules)
    subnet_id = fleet.vnet('rg', subnet_nsg=nsg_id if where == 'subnet' else None)
    fleet.vm('rg', name, subnet_id, nic_nsg=nsg_id if where == 'nic' else None, sku=sku, public_ip=public_ip)
    return fleet


@pytest.mark.parametrize('where', ['nic', 'subnet'])
def test_an_nsg_on_the_nic_or_the_subnet_alone_lets_the_internet_in(where):
    rows = report(vm_behind([allow('AllowSsh', 100)], where))
    assert brief(rows) == [('web', '22/TCP', 'web-nic', 'ipconfig1', [('web-nsg', where, 'AllowSsh')])]
    [row] = rows
    assert (row['subscription'], row['resourceGroup'], row['publicIp'], row['publicIpSku'], row['guardedDoor']) == \
        (SUB, 'rg', '20.50.0.4', 'Standard', True)
    assert row['rules'][0]['priority'] == 100 and row['rules'][0]['nsgId'].endswith('/web-nsg')
    assert row['jit'] == {'enabled': False, 'mode': None}
    assert '22/TCP' in row['reason'] and 'web-nsg/AllowSsh' in row['reason'] and 'source *' in row['reason']


def two_nsgs(subnet_rules, nic_rules):
    fleet = Fleet()
    subnet_nsg = fleet.nsg('rg', 'subnet-nsg', rules=subnet_rules)
    nic_nsg = fleet.nsg('rg', 'nic-nsg', rules=nic_rules)
    fleet.vm('rg', 'web', fleet.vnet('rg', subnet_nsg=subnet_nsg), nic_nsg=nic_nsg)
    return fleet


def test_both_nsgs_must_let_the_internet_in_and_the_row_names_both_rules():
    assert report(two_nsgs([allow('AllowSsh', 100)], [])) == []
    assert report(two_nsgs([], [allow('AllowSsh', 100)])) == []
    rows = report(two_nsgs([allow('SubnetSsh', 100)], [allow('NicSsh', 200, source='Internet')]))
    assert brief(rows) == [('web', '22/TCP', 'web-nic', 'ipconfig1',
                            [('subnet-nsg', 'subnet', 'SubnetSsh'), ('nic-nsg', 'nic', 'NicSsh')])]


def test_a_higher_priority_deny_for_any_source_saves_the_vm():
    assert report(vm_behind([allow('AllowSsh', 300), deny('DenyAll', 200)])) == []


@pytest.mark.parametrize('source, reached', [
    ('Internet', True), ('20.0.0.0/8', True), (['203.0.113.0/24', '0.0.0.0/0'], True),
    ('10.0.0.0/8', False), ('203.0.113.0/24', False), ('VirtualNetwork', False),
])
def test_which_sources_are_the_internet(source, reached):
    rows = report(vm_behind([allow('AllowSsh', 100, source=source)]))
    assert [r['port'] for r in rows] == (['22/TCP'] if reached else [])


def test_a_vm_without_public_ip_is_not_exposed_whatever_its_rules():
    assert report(vm_behind([allow('AllowAll', 100, port='*', protocol='*')], public_ip=None)) == []


def test_without_any_nsg_a_basic_public_ip_is_open_and_a_standard_one_closed():
    assert report(vm_behind(where=None, sku='Standard')) == []
    rows = report(vm_behind(where=None, sku='Basic'))
    assert [(r['port'], r['publicIpSku'], r['rules']) for r in rows] == [
        ('22/TCP', 'Basic', []), ('3389/TCP', 'Basic', [])]
    assert 'Basic public IP lets everything in' in rows[0]['reason']
    rows = report(vm_behind(where=None, sku=None))   # an old public IP whose SKU is not said is Basic
    assert [r['port'] for r in rows] == ['22/TCP', '3389/TCP']


def test_a_second_nics_door_is_reported_as_not_the_guarded_one():
    fleet = vm_behind([])
    vm_id = ids(SUB, 'rg', 'Microsoft.Compute/virtualMachines', 'web')
    open_nsg = fleet.nsg('rg', 'nic2-nsg', rules=[allow('AllowRdp', 100, port='3389')])
    compute.add_nic(fleet.world, vm_id, 'web-nic2', '10.0.0.250', '20.50.0.9', open_nsg)
    rows = report(fleet)
    assert brief(rows) == [('web', '3389/TCP', 'web-nic2', 'ipconfig1', [('nic2-nsg', 'nic', 'AllowRdp')])]
    assert (rows[0]['guardedDoor'], rows[0]['publicIp']) == (False, '20.50.0.9')


def test_a_second_ip_configuration_is_judged_by_its_own_address():
    fleet = vm_behind([allow('ToSecond', 100, dest='10.0.0.240')])
    vm_id = ids(SUB, 'rg', 'Microsoft.Compute/virtualMachines', 'web')
    compute.add_ip_config(fleet.world, fleet.nic_of(vm_id)['id'], 'ipconfig2', '10.0.0.240', '20.50.0.8')
    assert [(r['ipConfiguration'], r['publicIp'], r['guardedDoor']) for r in report(fleet)] == \
        [('ipconfig2', '20.50.0.8', False)]


def test_port_ranges_and_any_protocol():
    fleet = vm_behind([allow('Range', 100, port='20-25', protocol='*')])
    assert [r['port'] for r in report(fleet, ports=[(22, 'TCP'), (22, 'UDP'), (3389, 'TCP'), (25, '*')])] == \
        ['22/TCP', '22/UDP', '25/*']


def test_a_rule_to_an_application_security_group_reaches_its_members_only():
    fleet = Fleet()
    asg = fleet.asg('rg', 'web-asg')
    nsg_id = fleet.nsg('rg', 'nsg', rules=[allow('ToWeb', 100, destinationApplicationSecurityGroups=[{'id': asg}])])
    subnet = fleet.vnet('rg')
    fleet.vm('rg', 'member', subnet, nic_nsg=nsg_id)
    fleet.vm('rg', 'outsider', subnet, private_ip='10.0.0.5', public_ip='20.50.0.5', nic_nsg=nsg_id)
    member_nic = fleet.nic_of(ids(SUB, 'rg', 'Microsoft.Compute/virtualMachines', 'member'))
    member_nic['properties']['ipConfigurations'][0]['properties']['applicationSecurityGroups'] = [{'id': asg.lower()}]
    assert [(r['vm'], r['port']) for r in report(fleet)] == [('member', '22/TCP')]


def test_a_jit_enabled_vm_whose_allow_anything_rule_sits_ahead_of_its_deny_rule_is_exposed():
    fleet = vm_behind([allow('AllowAnything', 100, port='*', protocol='*'),
                       deny('AzVmJit-Deny-web-TCP', 1000, port=['22', '3389'], dest='10.0.0.4')])
    asked = []

    def jit_of(vm):
        asked.append(vm['name'])
        return 'nsg'

    rows = report(fleet, jit_of=jit_of)
    assert [(r['port'], r['jit']) for r in rows] == [('22/TCP', {'enabled': True, 'mode': 'nsg'}),
                                                     ('3389/TCP', {'enabled': True, 'mode': 'nsg'})]
    assert asked == ['web']   # once per exposed VM


def test_jit_of_is_asked_only_about_exposed_vms_and_its_answer_passes_through():
    fleet = Fleet()
    open_nsg = fleet.nsg('rg', 'open', rules=[allow('AllowSsh', 100)])
    closed_nsg = fleet.nsg('rg', 'closed')
    subnet = fleet.vnet('rg')
    fleet.vm('rg', 'a', subnet, nic_nsg=open_nsg)
    fleet.vm('rg', 'b', subnet, private_ip='10.0.0.5', public_ip='20.50.0.5', nic_nsg=closed_nsg)
    asked = []
    rows = report(fleet, jit_of=lambda vm: asked.append(vm['name']) or 'defender')
    assert asked == ['a'] and rows[0]['jit'] == {'enabled': True, 'mode': 'defender'}


def test_rows_are_sorted_by_subscription_group_vm_and_port():
    fleet = Fleet()
    for sub in (OTHER_SUB, SUB):
        nsg_id = fleet.nsg('rg', 'open', rules=[allow('AllowAll', 100, port='*')], sub=sub)
        subnet = fleet.vnet('rg', sub=sub)
        fleet.vm('rg', 'b', subnet, nic_nsg=nsg_id, sub=sub)
        fleet.vm('rg', 'A', subnet, private_ip='10.0.0.5', public_ip='20.50.0.5', nic_nsg=nsg_id, sub=sub)
    rows = report(fleet, ports=[(3389, 'TCP'), (22, 'TCP')])
    assert [(r['subscription'], r['vm'], r['port']) for r in rows] == [
        (SUB, 'A', '22/TCP'), (SUB, 'A', '3389/TCP'), (SUB, 'b', '22/TCP'), (SUB, 'b', '3389/TCP'),
        (OTHER_SUB, 'A', '22/TCP'), (OTHER_SUB, 'A', '3389/TCP'), (OTHER_SUB, 'b', '22/TCP'),
        (OTHER_SUB, 'b', '3389/TCP')]


# -- what the rows do not show ------------------------------------------------------------------------------------
def test_an_nsg_missing_from_the_rows_is_unknown_not_open():
    fleet = vm_behind([allow('AllowSsh', 100)])
    unknown = []
    assert report(fleet, without=[ids(SUB, 'rg', 'Microsoft.Network/networkSecurityGroups', 'web-nsg')],
                  unknown=unknown) == unknown
    assert [(u['vm'], u['port']) for u in unknown] == [('web', '22/TCP'), ('web', '3389/TCP')]
    assert 'web-nsg' in unknown[0]['reason'] and 'unknown' in unknown[0]['reason']


def test_a_missing_subnet_is_unknown_unless_the_nic_nsg_denies():
    fleet = two_nsgs([], [allow('NicSsh', 100)])
    vnet = ids(SUB, 'rg', 'Microsoft.Network/virtualNetworks', 'vnet')
    unknown = []
    assert report(fleet, without=[vnet], unknown=unknown) == unknown
    assert [u['port'] for u in unknown] == ['22/TCP']   # 3389: the NIC's NSG keeps the internet out
    assert 'subnet default' in unknown[0]['reason']


def test_a_missing_public_ip_is_unknown_without_nsg_and_reported_when_the_rules_let_the_internet_in():
    pip = ids(SUB, 'rg', 'Microsoft.Network/publicIPAddresses', 'web-ip')
    unknown = []
    assert report(vm_behind(where=None, sku='Basic'), without=[pip], unknown=unknown) == unknown
    assert [u['port'] for u in unknown] == ['22/TCP', '3389/TCP'] and 'SKU' in unknown[0]['reason']
    rows = report(vm_behind([allow('AllowSsh', 100)]), without=[pip])
    assert [(r['port'], r['publicIp'], r['publicIpSku']) for r in rows] == [('22/TCP', None, None)]


def test_a_nic_missing_from_the_rows_is_listed_as_unknown():
    fleet = vm_behind([allow('AllowSsh', 100)])
    nic = ids(SUB, 'rg', 'Microsoft.Network/networkInterfaces', 'web-nic')
    unknown = []
    assert report(fleet, without=[nic], unknown=unknown) == unknown
    assert [(u['vm'], u['nic'], u['port']) for u in unknown] == [('web', 'web-nic', None)]


# -- the summary line --------------------------------------------------------------------------------------------
def test_the_summary_counts_exposed_vms_by_jit_mode_doors_and_ports():
    row = {'subscription': SUB, 'resourceGroup': 'rg', 'nic': 'n', 'ipConfiguration': 'ipconfig1'}
    rows = [dict(row, id='a', port='22/TCP', jit={'enabled': False, 'mode': None}),
            dict(row, id='a', port='3389/TCP', jit={'enabled': False, 'mode': None}),
            dict(row, id='a', port='22/TCP', ipConfiguration='ipconfig2', jit={'enabled': False, 'mode': None}),
            dict(row, id='b', port='22/TCP', jit={'enabled': True, 'mode': 'nsg'}),
            dict(row, id='c', port='22/TCP', jit={'enabled': True, 'mode': 'defender'}),
            dict(row, id='d', port='22/TCP', jit={'enabled': True, 'mode': 'nsg'})]
    assert summary(rows, 40, 3) == ('The internet reaches 4 of 40 VMs in 3 subscriptions: 1 without JIT, 3 with JIT '
                                    '(defender: 1, nsg: 2); 5 public doors, 6 doors and ports open.')
    assert summary([], 1, 1) == 'The internet reaches none of 1 VM in 1 subscription on the ports asked.'


def test_the_exposure_report_loads_no_azure_sdk():
    """Handlers import fleet modules on every fleet command; the SDK is loaded only by code that needs it."""
    import subprocess
    import sys
    probe = ('import sys, azext_jit.fleet.estate, azext_jit.fleet.exposure, azext_jit.nsg.reach; '
             'print(sorted(m for m in sys.modules if m.startswith(("azure", "knack"))))')
    proc = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.strip() == '[]'


def test_unknown_rows_say_so_and_an_unreadable_vm_is_one_unknown_row():
    fleet = vm_behind([allow('AllowSsh', 100)])
    unknown = []
    rows = report(fleet, without=[ids(SUB, 'rg', 'Microsoft.Network/networkSecurityGroups', 'web-nsg')],
                  unknown=unknown)
    assert rows and {r['status'] for r in rows} == {'unknown'}
    odd = fleet.rows()
    for row in odd:
        if row['type'] == 'microsoft.compute/virtualmachines':
            row['properties'] = {'networkProfile': {'networkInterfaces': 'not a list'}}
    rows = exposed(Estate.from_rows(odd), TCP, no_jit)
    assert [(r['vm'], r['status']) for r in rows] in ([], [('web', 'unknown')])
