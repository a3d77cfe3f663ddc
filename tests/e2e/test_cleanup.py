# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Expired access end to end: its rules flagged by show and list, and removed by `cleanup`, by the VM's next
request or enable, and by the unattended runner. NSG mode, where the extension removes them itself.
"""
import json
import os
import subprocess
import sys
import uuid

from tests.harness import enable, product_rules, rules, writes_since
from tests.standin import aad
from tests.standin.world import Fault


# -- az vm jit cleanup ------------------------------------------------------------------------------------------
def test_cleanup_removes_exactly_the_expired_rules(az, standin, rg, defender_off):
    world = standin.world
    vm1 = standin.vm(rg, 'vm1')
    vm2 = standin.vm(rg, 'vm2', nsg_name='vm1-nsg')       # two VMs on one NSG
    vm3 = standin.vm(rg, 'vm3')                           # a VM with its own NSG
    other_rg = 'rg-' + uuid.uuid4().hex[:8]
    vm4 = standin.vm(other_rg, 'vm4')                     # outside the cleanup's scope
    enable(az, rg, 'vm1')
    enable(az, rg, 'vm2')
    enable(az, rg, 'vm3')
    enable(az, other_rg, 'vm4')
    denies = product_rules(standin, vm1['nsg_id'], 'Deny')
    assert sorted(r['properties']['destinationAddressPrefix'] for r in denies) == sorted(
        [vm1['private_ip'], vm2['private_ip']])
    assert len({r['properties']['priority'] for r in denies}) == 2 and \
        all(990 <= r['properties']['priority'] <= 1010 for r in denies), [r['properties'] for r in denies]

    def req(rg_, vm, port, minutes, source):
        return az.ok('vm', 'jit', 'request', '-g', rg_, '-n', vm, '--ports', port, '--duration', minutes,
                     '--source', source)
    short1 = req(rg, 'vm1', '22', '5', '198.51.100.1')
    long1 = req(rg, 'vm1', '3389', '60', '198.51.100.1')
    short2 = req(rg, 'vm2', '22', '5', '198.51.100.2')
    short3 = req(rg, 'vm3', '3389', '5', '198.51.100.3')
    long3 = req(rg, 'vm3', '22', '60', '198.51.100.3')
    short4 = req(other_rg, 'vm4', '22', '5', '198.51.100.4')
    nsgs = [vm1['nsg_id'], vm3['nsg_id'], vm4['nsg_id']]

    def allow_names(request_ids):
        return sorted(r['name'] for n in nsgs for r in product_rules(standin, n, 'Allow')
                      if any(i in r['name'] for i in request_ids))
    expired = allow_names([short1['id'], short2['id'], short3['id']])
    kept = allow_names([long1['id'], long3['id']])
    out_of_scope = allow_names([short4['id']])
    assert len(expired) == 3 and len(kept) == 2 and len(out_of_scope) == 1

    world.clock.advance(minutes=10)
    listing = az.ok('vm', 'jit', 'list', '-g', rg, '--status', 'expired')
    assert sorted(r['id'] for v in listing for r in v['requests']) == sorted(
        [short1['id'], short2['id'], short3['id']])

    before = {n: rules(standin, n) for n in nsgs}
    mark = len(world.requests)
    dry = az.ok('vm', 'jit', 'cleanup', '-g', rg, '--dry-run')
    assert writes_since(world, mark) == [], 'a dry run must not write'
    assert {n: rules(standin, n) for n in nsgs} == before
    assert sorted(c['name'] for c in dry['removed']) == expired

    done = az.ok('vm', 'jit', 'cleanup', '-g', rg)
    assert sorted(c['name'] for c in done['removed']) == expired
    assert allow_names([short1['id'], short2['id'], short3['id']]) == []
    assert allow_names([long1['id'], long3['id']]) == kept
    assert allow_names([short4['id']]) == out_of_scope, 'cleanup -g must stay inside its resource group'
    assert len(product_rules(standin, vm1['nsg_id'], 'Deny')) == 2
    assert len(product_rules(standin, vm3['nsg_id'], 'Deny')) == 1

    mark = len(world.requests)
    again = az.run('vm', 'jit', 'cleanup', '-g', rg)
    assert again.code == 0, again
    assert again.json['removed'] == []
    assert writes_since(world, mark) == []


def test_cleanup_that_cannot_remove_a_rule_fails(az, standin, rg):
    standin.vm(rg, 'stuck')
    az.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'stuck', '--ports', '22', '--mode', 'nsg')
    az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'stuck', '--ports', '22', '--duration', '5', '--source', '1.2.3.4')
    standin.world.clock.advance(minutes=10)
    fault = Fault('DELETE', r'/networkSecurityGroups/stuck-nsg/securityRules/AzVmJit-Allow', status=403,
                  code='AuthorizationFailed', times=5, message=(
                      "The client 'x' with object id 'y' does not have authorization to perform action "
                      "'Microsoft.Network/networkSecurityGroups/securityRules/delete' over scope '/s' or the scope "
                      "is invalid."))
    standin.world.faults.append(fault)
    try:
        result = az.run('vm', 'jit', 'cleanup', '-g', rg)
    finally:
        standin.world.faults.remove(fault)
    assert result.code == 1, result
    assert 'could not be removed' in result.stderr and 'securityRules/delete' in result.stderr


# -- the VM's own expired rules go with its next request or enable ----------------------------------------------
def _two_vms_with_expired_access(az, standin, rg):
    """vm1 and vm2 on one NSG, each with a 5-minute request whose time ran out 5 minutes ago (its rule still there)."""
    vm1 = standin.vm(rg, 'vm1')
    standin.vm(rg, 'vm2', nsg_name='vm1-nsg')
    expired = []
    for name, source in (('vm1', '198.51.100.1'), ('vm2', '198.51.100.2')):
        enable(az, rg, name)
        expired.append(az.ok('vm', 'jit', 'request', '-g', rg, '-n', name, '--ports', '22', '--duration', '5',
                             '--source', source))
    standin.world.clock.advance(minutes=10)
    return vm1, expired[0], expired[1]


def test_request_removes_that_vms_expired_rules_first(az, standin, rg, defender_off):
    vm1, old1, old2 = _two_vms_with_expired_access(az, standin, rg)
    nsg_id = vm1['nsg_id']
    new = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '3389', '--duration', '60',
                '--source', '198.51.100.1')
    names = [r['name'] for r in product_rules(standin, nsg_id, 'Allow')]
    assert not any(old1['id'] in n for n in names), 'vm1 expired rule must go before the new request'
    assert any(old2['id'] in n for n in names), "another VM's expired rule is cleanup's business, not this request's"
    assert any(new['id'] in n for n in names)


def test_expired_rule_still_in_the_nsg_is_flagged_and_enable_removes_it(az, standin, rg, defender_off):
    world = standin.world
    vm1, old, other = _two_vms_with_expired_access(az, standin, rg)

    [request] = az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'vm1')['requests']
    assert request['id'] == old['id'] and request['status'] == 'expired'
    assert [(p['status'], p['statusReason']) for p in request['ports']] == [('expired', 'ExpiredNotRemoved')]
    listing = az.ok('vm', 'jit', 'list', '-g', rg, '--status', 'expired')
    assert sorted((r['id'], p['statusReason']) for v in listing for r in v['requests'] for p in r['ports']) == \
        sorted([(old['id'], 'ExpiredNotRemoved'), (other['id'], 'ExpiredNotRemoved')])

    def allow_names():
        return [r['name'] for r in product_rules(standin, vm1['nsg_id'], 'Allow')]
    [old_rule] = [n for n in allow_names() if old['id'] in n]

    mark = len(world.requests)
    planned = enable(az, rg, 'vm1', '--dry-run')
    assert writes_since(world, mark) == []
    assert [(c['action'], c['name']) for c in planned['changes'] if c['kind'] == 'rule'] == [('delete', old_rule)]
    done = enable(az, rg, 'vm1')
    assert [(c['action'], c['name']) for c in done['changes'] if c['kind'] == 'rule'] == [('delete', old_rule)]
    assert old_rule not in allow_names()
    assert any(other['id'] in n for n in allow_names()), "another VM's expired rule is not this enable's business"
    assert az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'vm1')['requests'] == []

    mark = len(world.requests)
    assert enable(az, rg, 'vm1')['changes'] == [] and writes_since(world, mark) == []


# -- the unattended runner --------------------------------------------------------------------------------------
def _runner(az_env, standin, tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(('AZURE_', 'AZ_', 'IDENTITY_', 'MSI_'))}
    env.update({
        'IDENTITY_ENDPOINT': standin.base_url + '/msi/token', 'IDENTITY_HEADER': aad.MSI_HEADER,
        'AZURE_JIT_ARM_ENDPOINT': standin.base_url,
        'REQUESTS_CA_BUNDLE': standin.ca_path, 'SSL_CERT_FILE': standin.ca_path,
        'PYTHONPATH': os.path.join(az_env.extension_dir, 'jit'),
        'HTTPS_PROXY': az_env.tripwire.url, 'HTTP_PROXY': az_env.tripwire.url,
        'https_proxy': az_env.tripwire.url, 'http_proxy': az_env.tripwire.url,
        'NO_PROXY': '127.0.0.1,localhost', 'no_proxy': '127.0.0.1,localhost',
    })
    # Run outside the source tree, so that the installed extension is what runs.
    named = any(a in ('--subscriptions', '--all-subscriptions') for a in args)
    scope = [] if named else ['--subscription', standin.sub]
    return subprocess.run([sys.executable, '-m', 'azext_jit.runner'] + scope + list(args),
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300, check=False)


def test_runner_cleans_up_expired_rules_with_a_managed_identity(az, az_env, standin, rg, defender_off, tmp_path):
    world = standin.world
    vm = standin.vm(rg, 'vm1')
    enable(az, rg, 'vm1')
    short = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--duration', '5',
                  '--source', '198.51.100.1')
    long = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '3389', '--duration', '60',
                 '--source', '198.51.100.1')
    world.clock.advance(minutes=10)
    expired = [r['name'] for r in product_rules(standin, vm['nsg_id'], 'Allow') if short['id'] in r['name']]
    assert len(expired) == 1

    mark = len(world.requests)
    dry = _runner(az_env, standin, tmp_path, '--resource-group', rg, '--dry-run')
    assert dry.returncode == 0, dry.stderr
    assert [c['name'] for c in json.loads(dry.stdout)['removed']] == expired
    assert writes_since(world, mark) == []
    assert any(r.path == '/msi/token' for r in world.requests[mark:]), 'the runner must use the managed identity'

    mark = len(world.requests)
    run = _runner(az_env, standin, tmp_path, '--resource-group', rg)
    assert run.returncode == 0, run.stderr
    assert [c['name'] for c in json.loads(run.stdout)['removed']] == expired
    names = [r['name'] for r in product_rules(standin, vm['nsg_id'])]
    assert not any(short['id'] in n for n in names)
    assert any(long['id'] in n for n in names)
    deletes = [r for r in world.requests[mark:] if r.method == 'DELETE']
    assert deletes and all(r.caller == 'function-app' for r in deletes), [(r.path, r.caller) for r in deletes]

    again = _runner(az_env, standin, tmp_path, '--resource-group', rg)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)['removed'] == []
