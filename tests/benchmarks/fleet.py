# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Benchmark: the fleet commands over Resource Graph beside the same work one resource group at a time (not a test;
it prints numbers, and exits 1 when a command's answer is not the estate's ground truth).

    python -m tests.benchmarks.fleet [--vms 2000 --groups 100 --subscriptions 5 --exposed 200 --expired 300]
                                     [--latency 0.05] [--budget 75] [--seed 11]

The estate (`tests/standin/estate.py`) is built straight into a fresh stand-in, and every ARM call (everything under
/subscriptions and /providers, Resource Graph included; not Azure AD's sign-in) is made `--latency` seconds slower by
a stand-in 'delay' fault matching every such path. Then, through the real `az` with the extension installed from its
wheel, signed in as the Owner of every subscription:

    az vm jit exposure --all-subscriptions -o json
    az vm jit list     --all-subscriptions -o json
    az vm jit cleanup  --all-subscriptions -o json

each timed, its ARM calls counted by kind (Resource Graph pages, other reads, writes, long-running-operation polls,
and the 429s among them), and its answer checked against the manifest: exposure finds exactly the exposed VM ports
(and no door it cannot judge), list exactly the JIT-enabled VMs with each request's status and the drifted ones as
not protected, cleanup removes exactly the expired rules and the open ones stay.

Beside each, the one-resource-group-at-a-time cost of the same work, in-process through `Azure.from_credential`
against a second stand-in holding the same estate (same seed) and the same latency:
- exposure: per group, the VM list and the group's JIT policies (as `list -g`), and per VM the reads `show` makes
  (its NIC with the public IP expanded, its subnet and each NSG on the path, each read once per group), judged by
  the same pure code the fleet command uses (`nsg.reach`) when it is there;
- list: `az vm jit list -g`'s handler code per group (`targets.list_vms`, `Modes.prefetch`, `target_from_vm` of the
  VMs whose mode keeps requests in the network, `views.vm_view`);
- cleanup: `cleanup.cleanup(azure, group)` per group.
Groups are taken in order until `--budget` seconds have passed for that command; when that is fewer than all, the
calls and seconds measured are scaled by (all groups / groups measured), and the table says so. `az`'s own start-up
(about a second per command) is in the fleet figures and not in the per-group ones, which favours the per-group side.
"""
import argparse
import collections
import logging
import os
import sys
import tempfile
import time

from tests import harness
from tests.standin import tokens
from tests.standin.app import Standin
from tests.standin.estate import build_estate
from tests.standin.world import Fault

GRAPH_PATH = '/providers/microsoft.resourcegraph/resources'
PORTS = ((22, 'TCP'), (3389, 'TCP'))


# -- counting ---------------------------------------------------------------------------------------------------
def is_arm(path):
    return path.startswith('/subscriptions') or path.lower().startswith('/providers/')


def kinds(requests):
    """Counter of ARM calls by kind: graph (Resource Graph pages), reads, writes, polls; and throttled (429s)."""
    out = collections.Counter()
    for r in requests:
        if not is_arm(r.path):
            continue
        path = r.path.lower()
        if r.method == 'POST' and path.startswith(GRAPH_PATH):
            out['graph'] += 1
        elif r.method == 'GET' and ('/operations/' in path or '/operationresults/' in path):
            out['polls'] += 1
        elif r.method == 'GET':
            out['reads'] += 1
        else:
            out['writes'] += 1
        if r.status == 429:
            out['throttled'] += 1
    out['total'] = out['graph'] + out['reads'] + out['writes'] + out['polls']
    return out


def add_latency(world, seconds):
    """Every ARM call (not Azure AD's) answers `seconds` later: a 'delay' fault that never runs out."""
    world.faults.insert(0, Fault(r'.*', r'^/(subscriptions|providers)(/|$)', kind='delay', delay=seconds,
                                 times=10 ** 9))


GRAPH_SECONDS = collections.Counter()


def time_graph_answers():
    """Add up the seconds the stand-in spends computing Resource Graph answers (`GRAPH_SECONDS['spent']`): in
    Azure that work runs on Azure's machines, here on the benchmark's, within the fleet commands' wall time."""
    from tests.standin import server
    for route in server.ROUTES:
        if route.method != 'POST' or route.template.lower() != GRAPH_PATH or getattr(route.handler, 'timed', False):
            continue

        def timed(req, handler=route.handler):
            started = time.monotonic()
            try:
                return handler(req)
            finally:
                GRAPH_SECONDS['spent'] += time.monotonic() - started
        timed.timed = True
        route.handler = timed


# -- the fleet side: the real az ------------------------------------------------------------------------------
def run_fleet(az, world, *args):
    """(az's Result, call kinds, seconds the stand-in spent computing Resource Graph answers)"""
    before, graph_before = len(world.requests), GRAPH_SECONDS['spent']
    result = az.run('vm', 'jit', *args, '--all-subscriptions', timeout=900)
    return result, kinds(world.requests[before:]), GRAPH_SECONDS['spent'] - graph_before


def _failure(result):
    """One line: the exit code and az's error (or the last line of a traceback)."""
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith('ERROR') or 'Error:' in line]
    text = (errors or lines or ['no output'])[-1]
    return 'exit {}: {}'.format(result.code, text[:200].replace('|', '/'))


def check_exposure(result, manifest):
    """Exactly the manifest's exposed (VM, port) pairs have rows of status "open" (rows without a status count as
    open); every resource of the estate is in Resource Graph's answer, so no row may be "unknown"."""
    if result.code != 0 or not isinstance(result.json, list):
        return _failure(result)
    found = {(row['id'].lower(), row['port']) for row in result.json if row.get('status', 'open') == 'open'}
    unknown = [row for row in result.json if row.get('status', 'open') != 'open']
    return _compare(found, manifest.exposed_pairs(), 'exposed port') or (
        '{} row(s) of status {!r}, e.g. {}: {}'.format(len(unknown), unknown[0].get('status'), unknown[0].get('vm'),
                                                       unknown[0].get('reason')) if unknown else None)


def listed_requests(views):
    return {v['id'].lower(): {r['id']: r['status'] for r in v.get('requests') or []} for v in views}


def check_list(result, manifest):
    if result.code != 0 or not isinstance(result.json, list):
        return _failure(result)
    return _compare_requests(listed_requests(result.json), manifest.requests) or \
        _compare_unprotected(result.json, manifest)


def _compare_unprotected(views, manifest, covered=None):
    """The NSG-mode VMs the answer calls not protected are exactly those an allow-any rule above JIT's deny opens."""
    nsg_mode = {vm.lower() for vm, mode in manifest.jit.items() if mode == 'nsg'}
    found = {v['id'].lower() for v in views if v['id'].lower() in nsg_mode and v.get('protected') is not True}
    wanted = {vm.lower() for vm in manifest.unprotected if covered is None or vm.lower() in covered}
    return _compare(found, wanted, 'unprotected JIT VM')


def _compare_requests(found, wanted):
    wanted = {vm.lower(): dict(reqs) for vm, reqs in wanted.items()}
    problems = _compare(set(found), set(wanted), 'JIT VM')
    if problems:
        return problems
    wrong = [vm for vm in wanted if found[vm] != wanted[vm]]
    return '{} VM(s) with other requests, e.g. {}: {} != {}'.format(
        len(wrong), wrong[0], found[wrong[0]], wanted[wrong[0]]) if wrong else None


def removed_rules(summary):
    return {c['target'].lower() for c in summary.get('removed') or []}


def rule_ids(pairs):
    return {'{}/securityRules/{}'.format(nsg, name).lower() for nsg, name in pairs}


def check_cleanup(result, manifest, world):
    if result.code != 0 or not isinstance(result.json, dict):
        return _failure(result)
    problems = _compare(removed_rules(result.json), rule_ids(manifest.expired_rules), 'removed rule')
    return problems or _left_in_world(world, manifest.expired_rules, manifest.open_rules)


def _left_in_world(world, gone, kept):
    def there(nsg, name):
        return any(r['name'] == name for r in world.get(nsg)['properties']['securityRules'])
    still = [name for nsg, name in gone if there(nsg, name)]
    lost = [name for nsg, name in kept if not there(nsg, name)]
    if still or lost:
        return '{} expired rule(s) still in their NSG, {} open rule(s) gone'.format(len(still), len(lost))
    return None


def _compare(found, wanted, what):
    missing, extra = wanted - found, found - wanted
    if not missing and not extra:
        return None
    return '{} {}(s) missing (e.g. {}), {} extra (e.g. {})'.format(
        len(missing), what, sorted(missing)[:1], len(extra), sorted(extra)[:1])


# -- the per-group side: the product's own per-group code, in-process -------------------------------------------
class StandinCredential:  # pylint: disable=too-few-public-methods
    """azure-identity's credential shape over the stand-in's token issuer: the per-group side signs in as `name`
    without an Azure AD round trip (sign-in is not counted on either side)."""

    def __init__(self, world, name):
        self.world, self.ident = world, world.identities[name]

    def get_token(self, *scopes, **kwargs):  # pylint: disable=unused-argument
        from azure.core.credentials import AccessToken
        audience = scopes[0].replace('/.default', '') if scopes else ''
        return AccessToken(tokens.issue(self.world, self.ident, audience), int(time.time()) + tokens.LIFETIME - 60)


def _reach_judge():
    """judge(nsgs, number, protocol, private_ip, asg_ids) -> whether the internet reaches the port through every NSG,
    by the fleet command's own pure code (`nsg.reach`); None when this tree does not have it."""
    try:
        from azext_jit.nsg import reach
    except ImportError:
        return None
    opens = getattr(reach, 'rule_opens_to_internet', None)
    if opens is None:
        return None

    def judge(nsgs, number, protocol, private_ip, asg_ids):
        return all(reach.first_deciding_rule(nsg, number, protocol, private_ip, asg_ids, opens)[0] is not None
                   for nsg in nsgs)
    return judge


def _resource_names(resource_id):
    parts = resource_id.split('/')
    return parts[4], parts[8], parts[10:]


def group_exposure(azure, rg, judge, found):
    """One group's exposure, read as `list -g` and `show` read: returns nothing, adds (VM id, port) to `found`."""
    from azext_jit.modes.chooser import Modes
    from azext_jit.nsg import client as nsg_client
    from azext_jit.targets import list_vms, target_without_network
    from azext_jit.wire import wire
    modes = Modes(azure, announce=False)
    vms = list_vms(azure, rg)
    modes.prefetch(rg)
    subnets = {}
    for vm in vms:
        modes.holding(target_without_network(vm))   # whether JIT protects it, and in which mode
        for ref in vm['properties']['networkProfile']['networkInterfaces']:
            group, name, _ = _resource_names(ref['id'])
            nic = wire(azure.network.network_interfaces.get(group, name, expand='ipConfigurations/publicIPAddress'))
            nic_nsg = (nic['properties'].get('networkSecurityGroup') or {}).get('id')
            for config in nic['properties'].get('ipConfigurations') or []:
                props = config['properties']
                pip = props.get('publicIPAddress')
                if not pip:
                    continue
                subnet_id = props['subnet']['id']
                if subnet_id.lower() not in subnets:
                    group, vnet, rest = _resource_names(subnet_id)
                    subnet = wire(azure.network.subnets.get(group, vnet, rest[0]))
                    subnets[subnet_id.lower()] = (subnet['properties'].get('networkSecurityGroup') or {}).get('id')
                nsgs = [nsg_client.read_nsg(azure, i) for i in (subnets[subnet_id.lower()], nic_nsg) if i]
                asgs = [a['id'] for a in props.get('applicationSecurityGroups') or []]
                for number, protocol in PORTS:
                    if judge is None:
                        continue
                    if nsgs:
                        open_ = judge(nsgs, number, protocol, props['privateIPAddress'], asgs)
                    else:
                        open_ = (pip.get('sku') or {}).get('name', 'Basic').lower() != 'standard'
                    if open_:
                        found.add((vm['id'].lower(), '{}/{}'.format(number, protocol)))


def group_list(azure, rg, found):
    """`az vm jit list -g`'s handler, without az."""
    from azext_jit import views
    from azext_jit.modes.chooser import Modes
    from azext_jit.targets import list_vms, target_from_vm, target_without_network
    modes = Modes(azure, announce=False)
    vms = list_vms(azure, rg)
    modes.prefetch(rg)
    for vm in vms:
        target = target_without_network(vm)
        held = modes.holding(target)
        if not held:
            continue
        if any(m.requests_need_network for m in held):
            target = target_from_vm(azure, vm)
        found.append(views.vm_view(target, held, status='all', rules=False))


def group_cleanup(azure, rg, found):
    from azext_jit.cleanup import cleanup
    found.append(cleanup(azure, rg))


def per_group(standin, credential, groups, work, budget):
    """Run `work(azure, rg)` group after group until `budget` seconds have passed; returns (groups done, seconds,
    call kinds)."""
    from azext_jit.arm import Azure
    world = standin.world
    root = Azure.from_credential(credential, groups[0][0], base_url=standin.base_url)
    before = len(world.requests)
    started = time.monotonic()
    done = 0
    for sub, rg in groups:
        azure = root.for_subscription(sub)
        azure.nsgs.clear()   # one command per group: nothing read for another group is known
        work(azure, rg)
        done += 1
        if time.monotonic() - started > budget:
            break
    return done, time.monotonic() - started, kinds(world.requests[before:])


# -- the table --------------------------------------------------------------------------------------------------
def _calls(k):
    parts = ['{} graph'.format(k['graph'])] if k['graph'] else []
    parts += ['{} reads'.format(k['reads'])]
    if k['writes']:
        parts.append('{} writes'.format(k['writes']))
    if k['polls']:
        parts.append('{} polls'.format(k['polls']))
    if k['throttled']:
        parts.append('{} were 429'.format(k['throttled']))
    return '{} ({})'.format(k['total'], ', '.join(parts))


def _ratio(per_group_figure, fleet_figure):
    if not fleet_figure:
        return '-'
    ratio = per_group_figure / fleet_figure
    return '{:.{}f}x'.format(ratio, 1 if ratio < 10 else 0)


def main(argv=None):  # pylint: disable=too-many-locals,too-many-statements
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--subscriptions', type=int, default=5)
    parser.add_argument('--groups', type=int, default=100)
    parser.add_argument('--vms', type=int, default=2000)
    parser.add_argument('--exposed', type=int, default=200)
    parser.add_argument('--expired', type=int, default=300)
    parser.add_argument('--latency', type=float, default=0.05, help='seconds added to every ARM call')
    parser.add_argument('--budget', type=float, default=75.0,
                        help='seconds of per-group work per command before the rest is estimated from a sample')
    parser.add_argument('--seed', type=int, default=11)
    parser.add_argument('--skip-per-group', action='store_true', help='only the fleet commands')
    parser.add_argument('--skip-fleet', action='store_true', help='only the per-group side (while developing)')
    args = parser.parse_args(argv)
    size = dict(subscriptions=args.subscriptions, groups=args.groups, vms=args.vms, exposed=args.exposed,
                expired_rules=args.expired, seed=args.seed)

    work = tempfile.mkdtemp(prefix='jit-fleet-bench-')
    standin = Standin(os.path.join(work, 'fleet')).start()
    tripwire = harness.Tripwire()
    others = []
    try:
        standin.add_test_identities()
        started = time.monotonic()
        manifest = build_estate(standin, **size)
        print('estate: {} VMs in {} groups of {} subscriptions, {} exposed ({} ports), {} expired and {} open JIT '
              'rules; built in {:.1f} s; {:.0f} ms added to every ARM call (a stand-in delay fault)'.format(
                  len(manifest.scenarios), len(manifest.groups), len(manifest.subscriptions), len(manifest.exposed),
                  len(manifest.exposed_pairs()), len(manifest.expired_rules), len(manifest.open_rules),
                  time.monotonic() - started, args.latency * 1000), flush=True)
        extension_dir = harness.installed_extension_dir()
        env = harness.AzEnvironment(work, standin, extension_dir, tripwire)
        az = env.login('admin')   # after the subscriptions exist: `az account list` holds them all
        add_latency(standin.world, args.latency)
        time_graph_answers()

        fleet = {}
        for label, command, check in () if args.skip_fleet else (
                ('exposure', ['exposure'], lambda r: check_exposure(r, manifest)),
                ('list', ['list'], lambda r: check_list(r, manifest)),
                ('cleanup', ['cleanup'], lambda r: check_cleanup(r, manifest, standin.world))):
            result, counted, graph_seconds = run_fleet(az, standin.world, *command)
            fleet[label] = (result.seconds, counted, check(result), graph_seconds)
            print('fleet {:<8} {:6.1f} s (of it {:.1f} s the stand-in computing Resource Graph answers)  {}  {}'.format(
                label, result.seconds, graph_seconds, _calls(counted), fleet[label][2] or 'matches the estate'),
                flush=True)
        if tripwire.attempts:
            print('az tried to reach hosts other than 127.0.0.1: {}'.format(tripwire.attempts))

        per = {}
        if not args.skip_per_group:
            second = Standin(os.path.join(work, 'per-group')).start()
            others.append(second)
            second.add_test_identities()
            same = build_estate(second, **size)
            assert same.scenarios.keys() == manifest.scenarios.keys() and same.exposed_pairs() == \
                manifest.exposed_pairs(), 'the same seed must build the same estate'
            add_latency(second.world, args.latency)
            # The SDKs the extension needs beyond az's (azure-mgmt-network) are installed beside it, as the runner
            # finds them; this source tree's azext_jit stays first on the path.
            sys.path.append(os.path.join(extension_dir, 'jit'))
            os.environ['REQUESTS_CA_BUNDLE'] = second.ca_path   # the in-process clients trust the stand-in's CA
            os.environ.setdefault('NO_PROXY', '127.0.0.1,localhost')
            credential = StandinCredential(second.world, 'admin')
            judge = _reach_judge()
            # The product's warnings (a drifted VM "is not protected") are the per-group answers' business, not the
            # benchmark's output: the answers themselves are checked.
            logging.getLogger('cli').setLevel(logging.ERROR)
            per = _per_group_rows(second, credential, same, judge, args.budget)

        print()
        print('| command | fleet (Resource Graph) | ARM calls | one group at a time | ARM calls | time ratio | calls '
              'ratio | answer |')
        print('|---|---:|---|---:|---|---:|---:|---|')
        failed = False
        for label in ('exposure', 'list', 'cleanup'):
            seconds, counted, problem, _ = fleet.get(label, (0, collections.Counter(), None, 0))
            failed = failed or bool(problem)
            cells = ['`{} --all-subscriptions`'.format(label), '{:.1f} s'.format(seconds), _calls(counted)]
            if label in per:
                done, p_seconds, p_counted, p_problem = per[label]
                scale = len(manifest.groups) / done
                scaled = collections.Counter({k: round(v * scale) for k, v in p_counted.items() if k != 'total'})
                scaled['total'] = sum(scaled[k] for k in ('graph', 'reads', 'writes', 'polls'))
                note = '' if done == len(manifest.groups) else ' ({} of {} groups measured, scaled)'.format(
                    done, len(manifest.groups))
                cells += ['{:.0f} s{}'.format(p_seconds * scale, note), _calls(scaled),
                          _ratio(p_seconds * scale, seconds), _ratio(scaled['total'], counted['total'])]
                failed = failed or bool(p_problem)
                answer = problem or p_problem or 'both match the estate'
            else:
                cells += ['-', '-', '-', '-']
                answer = problem or 'matches the estate'
            cells.append(answer)
            print('| ' + ' | '.join(cells) + ' |')
        print()
        if fleet:
            print('Target (issue #11): each fleet command under 20 s: {}.'.format(', '.join(
                '{} {:.1f} s {}'.format(label, seconds, 'yes' if seconds < 20 else 'NO')
                for label, (seconds, _, _, _) in fleet.items())))
            print("The fleet times include the stand-in's own work computing Resource Graph's answers on this "
                  'machine ({}), which Azure does on its own.'.format(', '.join(
                      '{} {:.1f} s'.format(label, spent) for label, (_, _, _, spent) in fleet.items())))
        print('Fleet: the real az, start-up included. One group at a time: the same work in-process, group after group '
              '(no az start-up); a group sample is scaled to all groups. {:.0f} ms added to every ARM call.'.format(
                  args.latency * 1000))
        return 1 if failed else 0
    finally:
        tripwire.shutdown()
        standin.stop()
        for other in others:
            other.stop()


def _per_group_rows(standin, credential, manifest, judge, budget):
    groups = list(manifest.groups)
    vm_group = {vm.lower(): vm.split('/')[4].lower() for vm in manifest.scenarios}
    out = {}

    found = set()
    done, seconds, counted = per_group(standin, credential, groups,
                                       lambda azure, rg: group_exposure(azure, rg, judge, found), budget)
    covered = {rg.lower() for _, rg in groups[:done]}
    if judge is None:
        problem = 'not judged: this tree has no azext_jit.nsg.reach'
    else:
        problem = _compare(found, {p for p in manifest.exposed_pairs() if vm_group[p[0]] in covered}, 'exposed port')
    out['exposure'] = (done, seconds, counted, problem)
    _say('exposure', out['exposure'], len(groups))

    views = []
    done, seconds, counted = per_group(standin, credential, groups, lambda azure, rg: group_list(azure, rg, views),
                                       budget)
    covered = {rg.lower() for _, rg in groups[:done]}
    wanted = {vm: reqs for vm, reqs in manifest.requests.items() if vm_group[vm.lower()] in covered}
    out['list'] = (done, seconds, counted, _compare_requests(listed_requests(views), wanted) or
                   _compare_unprotected(views, manifest, {vm.lower() for vm in wanted}))
    _say('list', out['list'], len(groups))

    summaries = []
    done, seconds, counted = per_group(standin, credential, groups,
                                       lambda azure, rg: group_cleanup(azure, rg, summaries), budget)
    covered = {rg.lower() for _, rg in groups[:done]}
    expired = [(nsg, name) for nsg, name in manifest.expired_rules if nsg.split('/')[4].lower() in covered]
    kept = [(nsg, name) for nsg, name in manifest.open_rules if nsg.split('/')[4].lower() in covered]
    removed = set().union(*(removed_rules(s) for s in summaries)) if summaries else set()
    problem = _compare(removed, rule_ids(expired), 'removed rule') or _left_in_world(standin.world, expired, kept)
    out['cleanup'] = (done, seconds, counted, problem)
    _say('cleanup', out['cleanup'], len(groups))
    return out


def _say(label, row, groups):
    done, seconds, counted, problem = row
    print('per group {:<8} {:6.1f} s for {} of {} groups  {}  {}'.format(
        label, seconds, done, groups, _calls(counted), problem or 'matches the estate'), flush=True)


if __name__ == '__main__':
    sys.exit(main())
