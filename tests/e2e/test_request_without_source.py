# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""`az vm jit request` without --source: access opens for the caller's public IP as an IP echo service sees it,
and the command refuses, writing nothing, when it cannot learn that address safely. NSG mode.
"""
import json
import subprocess

from tests import harness
from tests.harness import enable, error_lines, product_rules, rules, source_of, writes_since


def test_request_without_source_opens_for_the_ip_echo_answer(az, standin, rg, defender_off, monkeypatch):
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    monkeypatch.setattr(standin.world, 'caller_ip', '192.0.2.123')
    request = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22')
    assert [p['source'] for p in request['ports']] == ['192.0.2.123']
    assert [source_of(r) for r in product_rules(standin, vm['nsg_id'], 'Allow')] == ['192.0.2.123']


def test_request_without_source_uses_configured_ip_echo_url(az, az_env, standin, rg, defender_off):
    """`az config set jit.my_ip_url=...` is honoured when the environment variable is not set."""
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    url = standin.base_url + '/ip?as=requester'   # the stand-in answers as the requester is seen: 198.51.100.20
    az.ok('config', 'set', 'jit.my_ip_url=' + url, output=None)
    env = az_env.base_env(az.config_dir)
    del env['AZURE_JIT_MY_IP_URL']
    try:
        proc = subprocess.run([harness.az_executable(), 'vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports',
                               '22', '-o', 'json'], capture_output=True, text=True, env=env, timeout=300,
                              stdin=subprocess.DEVNULL, check=False)
    finally:
        az.ok('config', 'unset', 'jit.my_ip_url', output=None)
    assert proc.returncode == 0, proc.stderr
    assert [source_of(r) for r in product_rules(standin, vm['nsg_id'], 'Allow')] == ['198.51.100.20']
    assert [p['source'] for p in json.loads(proc.stdout)['ports']] == ['198.51.100.20']


def test_unreachable_ip_echo_asks_for_source_and_writes_nothing(az, standin, rg, defender_off):
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    before = rules(standin, vm['nsg_id'])
    mark = len(standin.world.requests)
    result = az.run('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22',
                    extra_env={'AZURE_JIT_MY_IP_URL': 'https://127.0.0.1:9/ip'}, timeout=120)
    assert result.code not in (0, None), result
    errors = error_lines(result)
    assert len(errors) == 1, result.stderr
    assert 'public IP' in errors[0] or 'IP address' in errors[0], errors
    assert '--source' in result.stderr, result.stderr
    assert writes_since(standin.world, mark) == []
    assert rules(standin, vm['nsg_id']) == before


def test_plain_http_ip_echo_is_refused(az, standin, rg):
    standin.vm(rg, 'echo')
    az.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'echo', '--ports', '22', '--mode', 'nsg')
    result = az.run('vm', 'jit', 'request', '-g', rg, '-n', 'echo', '--ports', '22',
                    extra_env={'AZURE_JIT_MY_IP_URL': 'http://127.0.0.1:9/ip'})
    assert result.code == 2, result
    assert 'not HTTPS' in result.stderr
