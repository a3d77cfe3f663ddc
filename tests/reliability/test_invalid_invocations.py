# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Invalid invocations of every command: each prints exactly one ERROR line on stderr (no traceback, nothing on
stdout), exits with 2 (3 when a VM, group or request does not exist), and writes nothing to Azure (the stand-in's
request log holds no PUT, PATCH, DELETE or POST action after it). Each invocation is one counted item.

One resource group serves them all: `n1` in NSG mode (port 22/TCP, at most 1 hour, from 198.51.100.0/24), `d1` in
Defender mode (port 22/TCP, at most 1 hour, any single source), `plain` not enabled.
"""
import uuid

import pytest

from tests.harness import error_lines, writes_since

N1 = ['-g', '{rg}', '-n', 'n1']
D1 = ['-g', '{rg}', '-n', 'd1']
PLAIN = ['-g', '{rg}', '-n', 'plain']
MISSING_VM = ['-g', '{rg}', '-n', 'missing']
MISSING_RG = ['-g', 'rg-missing-{rg}', '-n', 'n1']
REQ = ['request', *N1, '--ports', '22', '--source', '198.51.100.7']
DREQ = ['request', *D1, '--ports', '22', '--source', '203.0.113.7']
ENABLE = ['enable', *PLAIN, '--yes']

# (id, arguments after `az vm jit`, exit code, a fragment the error line must hold, case-insensitive)
CASES = [
    # enable: ports, durations, sources, names, flags
    ('enable-port-0', [*ENABLE, '--ports', '0'], 2, 'port'),
    ('enable-port-70000', [*ENABLE, '--ports', '70000'], 2, 'port'),
    ('enable-port-word', [*ENABLE, '--ports', 'abc'], 2, 'port'),
    ('enable-port-bad-protocol', [*ENABLE, '--ports', '22/XYZ'], 2, 'XYZ'),
    ('enable-port-twice', [*ENABLE, '--ports', '22', '22'], 2, 'twice'),
    ('enable-ports-empty', [*ENABLE, '--ports', ''], 2, 'port'),
    ('enable-duration-1m', [*ENABLE, '--max-duration', '1m'], 2, 'duration'),
    ('enable-duration-25h', [*ENABLE, '--max-duration', '25h'], 2, 'duration'),
    ('enable-duration-word', [*ENABLE, '--max-duration', 'banana'], 2, 'banana'),
    ('enable-duration-empty', [*ENABLE, '--max-duration', ''], 2, 'duration'),
    ('enable-source-word', [*ENABLE, '--allowed-sources', 'not-an-ip'], 2, 'not-an-ip'),
    ('enable-source-prefix-33', [*ENABLE, '--allowed-sources', '10.0.0.1/33'], 2, '10.0.0.1/33'),
    ('enable-source-star-and-range', [*ENABLE, '--allowed-sources', '*', '10.0.0.0/8'], 2, '*'),
    ('enable-source-zone-index', [*ENABLE, '--allowed-sources', 'fe80::%eth0/64'], 2, 'zone index'),
    ('enable-source-empty', [*ENABLE, '--allowed-sources', ''], 2, 'source'),
    ('enable-mode-unknown', [*ENABLE, '--mode', 'bogus'], 2, 'bogus'),
    ('enable-name-without-group', ['enable', '-n', 'plain', '--yes'], 2, 'resource-group'),
    ('enable-missing-vm', ['enable', *MISSING_VM, '--yes'], 3, 'missing'),
    ('enable-missing-group', ['enable', '-g', 'rg-missing-{rg}', '-n', 'plain', '--yes'], 3, 'rg-missing'),
    ('enable-missing-vm-by-id', ['enable', '--yes', '--ids', '/subscriptions/{sub}/resourceGroups/{rg}/providers/'
                                 'Microsoft.Compute/virtualMachines/missing'], 3, 'missing'),
    # --dry-run, so that a regression where --all wins cannot enable every VM of the subscription
    ('enable-vm-and-all', [*ENABLE, '--all', '--dry-run'], 2, '--all'),
    # request, NSG mode: input that cannot be a request, and requests the policy refuses
    ('request-port-0', [*REQ[:-4], '--ports', '0', '--source', '198.51.100.7'], 2, 'port'),
    ('request-port-not-in-policy', [*REQ[:-4], '--ports', '3389', '--source', '198.51.100.7'], 2, '3389'),
    ('request-port-other-protocol', [*REQ[:-4], '--ports', '22/UDP', '--source', '198.51.100.7'], 2, 'UDP'),
    ('request-ports-empty', [*REQ[:-4], '--ports', '', '--source', '198.51.100.7'], 2, 'port'),
    ('request-duration-over-policy', [*REQ, '--duration', '2h'], 2, 'duration'),
    ('request-duration-0', [*REQ, '--duration', '0'], 2, 'duration'),
    ('request-duration-negative', [*REQ, '--duration', '-5'], 2, 'duration'),
    ('request-duration-word', [*REQ, '--duration', 'abc'], 2, 'abc'),
    ('request-duration-bare-iso', [*REQ, '--duration', 'PT'], 2, 'PT'),
    ('request-duration-over-a-day', [*REQ, '--duration', '1441'], 2, 'duration'),
    ('request-duration-empty', [*REQ, '--duration', ''], 2, 'duration'),
    ('request-source-outside-policy', [*REQ[:-2], '--source', '10.1.1.1'], 2, '10.1.1.1'),
    ('request-source-wider-than-policy', [*REQ[:-2], '--source', '198.51.100.0/23'], 2, '198.51.100.0/23'),
    ('request-source-word', [*REQ[:-2], '--source', 'not-an-ip'], 2, 'not-an-ip'),
    ('request-source-empty', [*REQ[:-2], '--source', ''], 2, 'source'),
    ('request-source-zone-index', [*REQ[:-2], '--source', 'fe80::1%eth0'], 2, 'zone index'),
    ('request-source-ipv6-for-ipv4-vm', [*REQ[:-2], '--source', '2001:db8::1'], 2, '2001:db8::1'),
    ('request-vm-not-enabled', ['request', *PLAIN, '--ports', '22', '--source', '198.51.100.7'], 3, 'not enabled'),
    ('request-missing-vm', ['request', *MISSING_VM, '--ports', '22', '--source', '198.51.100.7'], 3, 'missing'),
    ('request-missing-group', ['request', *MISSING_RG, '--ports', '22', '--source', '198.51.100.7'], 3,
     'rg-missing'),
    # request, Defender mode: what the extension refuses before Defender would
    ('defender-request-port-not-in-policy', [*DREQ[:-4], '--ports', '3389', '--source', '203.0.113.7'], 2, '3389'),
    ('defender-request-port-other-protocol', [*DREQ[:-4], '--ports', '22/UDP', '--source', '203.0.113.7'], 2,
     'UDP'),
    ('defender-request-duration-over-policy', [*DREQ, '--duration', '2h'], 2, 'duration'),
    ('defender-request-duration-0', [*DREQ, '--duration', '0'], 2, 'duration'),
    ('defender-request-half-of-ipv4', [*DREQ[:-2], '--source', '0.0.0.0/1'], 2, '0.0.0.0/1'),
    ('defender-request-half-of-ipv6', [*DREQ[:-2], '--source', '::/1'], 2, '::/1'),
    ('defender-request-a-slash-16', [*DREQ[:-2], '--source', '10.0.0.0/16'], 2, '10.0.0.0/16'),
    ('defender-request-ipv6-for-ipv4-vm', [*DREQ[:-2], '--source', '2001:db8::1'], 2, 'IPv6'),
    ('defender-request-source-word', [*DREQ[:-2], '--source', 'nowhere'], 2, 'nowhere'),
    # revoke
    ('revoke-empty-request-id', ['revoke', *N1, '--request-id', ''], 2, 'request'),
    ('revoke-request-id-and-all', ['revoke', *N1, '--request-id', 'abcd1234', '--all'], 2, '--all'),
    ('revoke-unknown-request-id', ['revoke', *N1, '--request-id', 'abcd1234'], 3, 'abcd1234'),
    ('revoke-port-0', ['revoke', *N1, '--ports', '0'], 2, 'port'),
    ('revoke-port-word', ['revoke', *N1, '--ports', 'abc'], 2, 'port'),
    ('revoke-missing-vm', ['revoke', *MISSING_VM], 3, 'missing'),
    ('revoke-missing-group', ['revoke', *MISSING_RG], 3, 'rg-missing'),
    ('defender-revoke-empty-request-id', ['revoke', *D1, '--request-id', ''], 2, 'request'),
    # disable, cleanup, show, list
    ('disable-missing-vm', ['disable', *MISSING_VM, '--yes'], 3, 'missing'),
    ('disable-missing-group', ['disable', *MISSING_RG, '--yes'], 3, 'rg-missing'),
    ('disable-mode-unknown', ['disable', *N1, '--yes', '--mode', 'bogus'], 2, 'bogus'),
    ('disable-name-without-group', ['disable', '-n', 'n1', '--yes'], 2, 'resource-group'),
    ('cleanup-missing-group', ['cleanup', '-g', 'rg-missing-{rg}'], 3, 'rg-missing'),
    ('cleanup-mode-unknown', ['cleanup', '-g', '{rg}', '--mode', 'bogus'], 2, 'bogus'),
    ('show-missing-vm', ['show', *MISSING_VM], 3, 'missing'),
    ('show-missing-group', ['show', *MISSING_RG], 3, 'rg-missing'),
    ('show-mode-unknown', ['show', *N1, '--mode', 'bogus'], 2, 'bogus'),
    ('list-status-unknown', ['list', '-g', '{rg}', '--status', 'bogus'], 2, 'bogus'),
    ('list-missing-group', ['list', '-g', 'rg-missing-{rg}'], 3, 'rg-missing'),
    ('show-name-without-group', ['show', '-n', 'n1'], 2, 'resource-group'),
    ('request-name-without-group', ['request', '-n', 'n1', '--source', '198.51.100.7'], 2, 'resource-group'),
    ('revoke-name-without-group', ['revoke', '-n', 'n1'], 2, 'resource-group'),
    ('show-nothing-named', ['show'], 2, 'resource-group'),
    ('log-offset-beyond-90-days', ['log', *N1, '--offset', '91d'], 2, '90 days'),
    ('log-offset-and-start', ['log', *N1, '--offset', '1h', '--start-time', '2026-01-01T00:00:00Z'], 2, 'offset'),
    ('log-start-unreadable', ['log', *N1, '--start-time', 'yesterday'], 2, 'yesterday'),
    ('log-nothing-named', ['log'], 2, 'resource-group'),
    ('log-missing-group', ['log', '-g', 'rg-missing-{rg}'], 3, 'rg-missing'),
    ('log-ids-not-a-vm', ['log', '--ids', '/subscriptions/{sub}/resourceGroups/{rg}'], 2, "not a VM's resource id"),
    ('log-ids-and-name', ['log', *N1, '--ids', '/subscriptions/{sub}/resourceGroups/{rg}/providers/'
                          'Microsoft.Compute/virtualMachines/n1'], 2, '--ids'),
    # fleet scope: subscriptions by id, one way of naming the scope; exposure's write options need --protect
    ('list-subscription-unknown', ['list', '--subscriptions', 'No-Such-Subscription'], 2, 'is not one of yours'),
    ('cleanup-subscription-not-yours', ['cleanup', '--subscriptions', '00000000-0000-0000-0000-00000000dead'], 2,
     'is not one of yours'),
    ('cleanup-subscriptions-and-all', ['cleanup', '--subscriptions', '{sub}', '--all-subscriptions'], 2,
     'cannot be used together'),
    ('exposure-dry-run-without-protect', ['exposure', '--dry-run'], 2, '--protect'),
    ('exposure-groups-and-subscriptions', ['exposure', '--management-groups', 'Prod', '--subscriptions', '{sub}'], 2,
     'cannot be used together'),
    ('exposure-management-group-quote', ['exposure', '--management-groups', "Prod'"], 2,
     'not a management group id'),
    ('exposure-port-0', ['exposure', '--ports', '0'], 2, 'port'),
]


@pytest.fixture(scope='module')
def shared(standin, az_env):
    """The resource group every invalid invocation aims at (one per test process)."""
    rg = 'rg-inv-' + uuid.uuid4().hex[:8]
    for name in ('n1', 'd1', 'plain'):
        standin.vm(rg, name)
    admin = az_env.login('admin')
    admin.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'n1', '--ports', '22', '--max-duration', '1h',
             '--allowed-sources', '198.51.100.0/24', '--mode', 'nsg', '--yes')
    admin.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'd1', '--ports', '22', '--max-duration', '1h', '--mode',
             'defender', '--yes')
    return rg, admin


def _params():
    for case in CASES:
        yield pytest.param(*case[1:], id=case[0])


@pytest.mark.parametrize('args,code,fragment', list(_params()))
def test_invalid_invocation_is_one_line_exit_2_or_3_and_no_write(standin, shared, tally, args, code, fragment):
    rg, admin = shared
    argv = [a.format(rg=rg, sub=standin.sub) for a in args]
    mark = len(standin.world.requests)
    result = admin.run('vm', 'jit', *argv)
    errors = error_lines(result)
    writes = writes_since(standin.world, mark)
    counted = tally('invalid invocations')
    counted.check(f'az vm jit {" ".join(argv)}',
                  result.code == code and len(errors) == 1 and fragment.lower() in errors[0].lower() and
                  'Traceback' not in result.stderr and not result.stdout.strip() and not writes,
                  f'expected exit {code} and one error line naming {fragment!r}, no write; got exit {result.code}, '
                  f'writes {writes}, stdout {result.stdout[-300:]!r}, stderr {result.stderr[-800:]!r}')
    counted.verify()
