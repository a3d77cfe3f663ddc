# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Commands racing each other: parallel requests on one NSG, cleanup racing requests, parallel enables of VMs that
share one Defender policy. Each race is one counted item: nothing lost (every successful command's result is in
Azure), nothing doubled (one rule per request and port, one policy entry and one deny rule per VM, unique
priorities). Bigger races live in tests/e2e/test_concurrency.py; these are sized for counting."""
import json


from tests.harness import enable, product_rules, source_of, stored_policy
from tests.reliability import world_state as ws


def _run_all(procs):
    outputs = [p.communicate(timeout=600) for p in procs]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]


def test_parallel_requests_on_one_nsg_lose_and_double_nothing(az, standin, rg, defender_off, tally):
    counted = tally('concurrency')
    vm = standin.vm(rg, 'c1')
    enable(az, rg, 'c1', '--ports', '22')
    sources = [f'198.18.7.{i}' for i in range(1, 5)]
    results = _run_all([az.popen('vm', 'jit', 'request', '-g', rg, '-n', 'c1', '--ports', '22', '--source', s)
                        for s in sources])
    failed = [(code, err[-500:]) for code, _, err in results if code]
    allows = product_rules(standin, vm['nsg_id'], 'Allow')
    ids = sorted(json.loads(out)['id'].lower() for code, out, _ in results if code == 0)
    priorities = [r['properties']['priority'] for r in allows]
    counted.check('4 requests at once on one NSG: 4 answers, 4 rules, 4 priorities',
                  not failed and sorted(source_of(r) for r in allows) == sources and
                  sorted(ws.nsg_allow_ids(standin, vm)) == ids and len(set(priorities)) == 4,
                  f'failed {failed}; rules {[(r["name"], source_of(r), r["properties"]["priority"]) for r in allows]}')
    counted.verify()


def test_cleanup_racing_requests_removes_only_what_expired(az, standin, rg, defender_off, tally):
    counted = tally('concurrency')
    vm = standin.vm(rg, 'c2')
    enable(az, rg, 'c2', '--ports', '22')
    old = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'c2', '--ports', '22', '--duration', '5', '--source',
                '198.18.8.1')['id'].lower()
    standin.world.clock.advance(minutes=10)
    sources = [f'198.18.8.{i}' for i in range(10, 13)]
    procs = [az.popen('vm', 'jit', 'request', '-g', rg, '-n', 'c2', '--ports', '22', '--source', s) for s in sources]
    procs.append(az.popen('vm', 'jit', 'cleanup', '-g', rg))
    results = _run_all(procs)
    failed = [(code, err[-500:]) for code, _, err in results if code]
    allows = product_rules(standin, vm['nsg_id'], 'Allow')
    counted.check('3 requests and a cleanup at once: the 3 stay, the expired one goes',
                  not failed and sorted(source_of(r) for r in allows) == sources and
                  old not in ws.nsg_allow_ids(standin, vm) and len({r['properties']['priority'] for r in allows}) == 3,
                  f'failed {failed}; rules {[(r["name"], source_of(r)) for r in allows]}')
    counted.verify()


def test_parallel_enables_on_one_defender_policy_lose_nothing_unnoticed(az, standin, rg, tally):
    """Defender's policy API has no ETag: an enable whose PUT rests on an older read can still drop a VM that another
    enable wrote and checked (how often depends on timing). What must hold: every VM is either in the policy with
    its deny rule, or `show` reports it not protected and names the fix, and running that fix protects it."""
    counted = tally('concurrency')
    vms = [standin.vm(rg, f'p{i}') for i in range(1, 4)]
    results = _run_all([az.popen('vm', 'jit', 'enable', '-g', rg, '-n', v['name'], '--ports', '22', '--yes',
                                 '--mode', 'defender') for v in vms])
    failed = [(code, err[-500:]) for code, _, err in results if code]
    policy = stored_policy(standin, rg) or {'properties': {'virtualMachines': []}}
    entries = {e['id'].lower() for e in policy['properties']['virtualMachines']}
    dropped = [v for v in vms if v['id'].lower() not in entries]
    noticed = []
    for vm in dropped:
        shown = az.run('vm', 'jit', 'show', '-g', rg, '-n', vm['name'])
        noticed.append(shown.code == 0 and shown.json.get('protected') is False and 'az vm jit enable' in shown.stderr)
        az.ok('vm', 'jit', 'enable', '-g', rg, '-n', vm['name'], '--ports', '22', '--yes', '--mode', 'defender')
    policy = stored_policy(standin, rg) or {'properties': {'virtualMachines': []}}
    entries = sorted(e['id'].lower() for e in policy['properties']['virtualMachines'])
    denies = [len(ws.defender_denies(standin, v)) for v in vms]
    counted.check("3 enables at once into one resource group's policy: a VM another PUT dropped is reported not "
                  "protected with the fix, and after it 3 entries, one deny rule each",
                  not failed and all(noticed) and entries == sorted(v['id'].lower() for v in vms)
                  and denies == [1, 1, 1],
                  f'failed {failed}; dropped {[v["name"] for v in dropped]} noticed {noticed}; entries {entries}; '
                  f'deny rules per VM {denies}')
    counted.verify()
