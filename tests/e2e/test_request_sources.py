# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Which sources `az vm jit request` opens access from, in both modes.

A policy of `*` (the default) lets a request name one address or a narrow range: at most a /24 (IPv4) or a /64
(IPv6). A wider source, such as half of the internet in `0.0.0.0/1`, is accepted only when the policy names that
range or a wider one. Sources that no NSG rule of the VM can hold (an IPv6 zone index, an IPv6 source for a VM
whose private IP is IPv4) are refused too. Every refusal is one error line, exit code 2, and nothing written to
Azure; every acceptance is checked in the rule or request that reached Azure.
"""
from tests.harness import ArmLog, error_lines, jit, ok, source_of, stored_policy, vm_rules, writes_since


def protect(az, standin, rg, mode, *allowed_sources):
    """A VM with port 22 protected in `mode`; with no `allowed_sources` the policy allows `*`."""
    vm = standin.vm(rg, 'vm1')
    extra = ['--allowed-sources', *allowed_sources] if allowed_sources else []
    enabled = ok(az, 'enable', '-g', rg, '-n', 'vm1', '--ports', '22', '--yes', *extra)
    assert enabled['mode'] == mode, enabled
    return vm


def opened_sources(standin, rg, vm, mode):
    """The sources Azure was asked to let in: NSG mode's allow rules for the VM, or the requests Defender holds."""
    if mode == 'nsg':
        return sorted(source_of(r) for r in vm_rules(standin, vm) if r['properties']['access'] == 'Allow')
    policy = stored_policy(standin, rg) or {'properties': {}}
    return sorted(port['allowedSourceAddressPrefix'] for request in policy['properties'].get('requests') or []
                  for entry in request['virtualMachines'] for port in entry['ports'])


def network_state(standin, vm):
    return standin.nsg_rules(vm['nsg_id']), standin.world.get(vm['id']).get('tags')


def assert_refused(az, standin, rg, vm, args, message, fix=()):
    """`request` with `args` exits 2 with one error line holding every word of `message` and the `fix` words
    below it, and writes nothing."""
    before = network_state(standin, vm)
    log = ArmLog(standin.world)
    result = jit(az, 'request', '-g', rg, '-n', 'vm1', '--ports', '22', *args)
    assert result.code == 2, result
    errors = error_lines(result)
    assert len(errors) == 1 and 'Traceback' not in result.stderr, result.stderr
    for word in message:
        assert word in errors[0], (word, errors[0])
    for word in fix:
        assert word in result.stderr, (word, result.stderr)
    assert log.writes() == [], log.summary()
    assert network_state(standin, vm) == before


def test_any_source_policy_opens_one_address_or_a_slash_24_and_nothing_wider(az, standin, rg, mode):
    vm = protect(az, standin, rg, mode)
    for source, bound in (('0.0.0.0/1', '/24'), ('128.0.0.0/1', '/24'), ('::/1', '/64'), ('10.0.0.0/16', '/24')):
        assert_refused(az, standin, rg, vm, ['--source', source],
                       [f'Source {source} is wider than one address or a {bound}', 'port 22/TCP allows any source'],
                       [f'az vm jit enable --allowed-sources {source}'])
    assert opened_sources(standin, rg, vm, mode) == []

    for source in ('203.0.113.7', '198.51.100.0/24'):
        answer = ok(az, 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--source', source)
        assert [p['source'] for p in answer['ports']] == [source], answer
    assert opened_sources(standin, rg, vm, mode) == ['198.51.100.0/24', '203.0.113.7']


def test_a_slash_16_opens_when_the_policy_names_it_or_a_wider_range(az, standin, rg, mode):
    vm = protect(az, standin, rg, mode, '10.1.0.0/16', '172.16.0.0/12')
    answer = ok(az, 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--source', '10.1.0.0/16')
    assert [p['source'] for p in answer['ports']] == ['10.1.0.0/16'], answer
    expected = ['10.1.0.0/16']
    if mode == 'nsg':   # inside a wider named range; Defender mode takes only a named prefix exactly
        ok(az, 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--source', '172.20.0.0/16')
        expected.append('172.20.0.0/16')
    assert opened_sources(standin, rg, vm, mode) == expected


def test_sources_no_nsg_rule_of_the_vm_can_hold_are_refused(az, standin, rg, mode):
    vm = protect(az, standin, rg, mode)
    assert_refused(az, standin, rg, vm, ['--source', 'fe80::1%eth0'], ["'fe80::1%eth0'", 'zone index %eth0'],
                   ['Leave out the zone index: fe80::1'])
    assert_refused(az, standin, rg, vm, ['--source', '2001:db8::7'],
                   [f"Source 2001:db8::7 is an IPv6 address, but the VM's private IP {vm['private_ip']} is IPv4"],
                   ['Use an IPv4 --source'])
    assert opened_sources(standin, rg, vm, mode) == []


def test_allowed_sources_with_an_ipv6_zone_index_are_refused(az, standin, rg):
    vm = standin.vm(rg, 'vm1')
    before = network_state(standin, vm)
    mark = len(standin.world.requests)
    result = jit(az, 'enable', '-g', rg, '-n', 'vm1', '--ports', '22', '--yes',
                 '--allowed-sources', '2001:db8::/32', 'fe80::%eth0/64')
    assert result.code == 2, result
    errors = error_lines(result)
    assert len(errors) == 1 and "'fe80::%eth0/64'" in errors[0] and 'zone index %eth0' in errors[0], result.stderr
    assert 'Leave out the zone index: fe80::/64' in result.stderr
    assert writes_since(standin.world, mark) == []
    assert network_state(standin, vm) == before and stored_policy(standin, rg) is None


def test_an_ipv6_public_ip_from_the_echo_service_is_refused_for_an_ipv4_vm(az, standin, rg, defender_off,
                                                                           monkeypatch):
    vm = protect(az, standin, rg, 'nsg')
    monkeypatch.setattr(standin.world, 'caller_ip', '2001:db8::123')
    assert_refused(az, standin, rg, vm, [], ['Source 2001:db8::123 is an IPv6 address'], ['Use an IPv4 --source'])
    assert opened_sources(standin, rg, vm, 'nsg') == []
