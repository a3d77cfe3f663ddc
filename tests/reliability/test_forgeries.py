# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Forgeries by people outside JIT: what a Tag Contributor or Virtual Machine Contributor can write into a VM's
tags, and what a Network Contributor can write into its NSG, must not steer the extension into opening more than
the policy `enable` wrote allows. Each attempt is one counted item, refused (exit 2, nothing written) or harmless
(what harmless means is said at each check).

Tags and rules are written straight into the stand-in's world, as the Tags API or the NSG API would store them for
such a person; the forged requestor's rule goes through real `az network nsg rule create`, so that Azure's Activity
Log names who wrote it.
"""
import datetime as dt
import json
import re


from tests.harness import enable, error_lines, jit, product_rules, rules, writes_since
from tests.reliability import world_state as ws

ALLOW_ALL = {'priority': 100, 'direction': 'Inbound', 'access': 'Allow', 'protocol': '*', 'sourcePortRange': '*',
             'destinationPortRange': '*', 'sourceAddressPrefix': '*', 'destinationAddressPrefix': '*'}
BACKDOOR = dict(ALLOW_ALL, priority=110, protocol='Tcp', destinationPortRange='22')


def set_record(standin, vm, name, document):
    """Replace a JIT tag record as someone with tags/write could (the record spans tags of 250 characters)."""
    with standin.world.lock:
        tags = standin.world.get(vm['id']).setdefault('tags', {})
        for key in [k for k in tags if k == name or k.startswith(name + '.')]:
            del tags[key]
        text = json.dumps(document, separators=(',', ':'))
        for i in range(0, len(text), 250):
            tags[name if i == 0 else f'{name}.{i // 250}'] = text[i:i + 250]


def vm_key(standin, vm):
    """The key the extension names this VM's rules with, read from its deny rule's name."""
    deny = next(r['name'] for r in product_rules(standin, vm['nsg_id'], 'Deny')
                if r['properties']['destinationAddressPrefix'] == vm['private_ip'])
    return re.match(r'AzVmJit-Deny-([0-9a-f]{8})-', deny).group(1)


def hand_made_allow(standin, vm, request_id, description, priority):
    """An allow rule named like ours, written by hand into the VM's NSG."""
    name = f'AzVmJit-Allow-{vm_key(standin, vm)}-{request_id}-22-tcp'
    with standin.world.lock:
        nsg = standin.world.get(vm['nsg_id'])
        nsg['properties']['securityRules'].append({
            'name': name, 'id': nsg['id'] + '/securityRules/' + name, 'etag': standin.world.new_etag(),
            'type': 'Microsoft.Network/networkSecurityGroups/securityRules',
            'properties': {'priority': priority, 'direction': 'Inbound', 'access': 'Allow', 'protocol': 'Tcp',
                           'sourcePortRange': '*', 'destinationPortRange': '22', 'sourceAddressPrefix': '*',
                           'destinationAddressPrefix': vm['private_ip'], 'description': description,
                           'provisioningState': 'Succeeded'}})
        nsg['etag'] = standin.world.new_etag()
    return name


def refused(result, standin, mark, code=2):
    """Refused: exit `code` (2 for input, 1 for stored data that cannot be trusted), one error line, nothing written
    to Azure."""
    return result.code == code and len(error_lines(result)) == 1 and not writes_since(standin.world, mark)


def test_a_forged_restore_record_makes_disable_write_nothing_enable_did_not_remove(az, standin, rg, defender_off,
                                                                                   tally):
    counted = tally('forgeries')
    ours = standin.vm(rg, 'fa')
    other = standin.vm(rg, 'fb')
    enable(az, rg, 'fa', '--ports', '22')
    other_before = rules(standin, other['nsg_id'])
    set_record(standin, ours, 'azvmjit-restore', [
        {'name': 'AllowAllInbound', 'nsg': other['nsg_id'], 'properties': ALLOW_ALL},
        {'name': 'Backdoor', 'nsg': ours['nsg_id'], 'properties': BACKDOOR},
    ])
    az.run('vm', 'jit', 'disable', '-g', rg, '-n', 'fa', '--yes')
    # Harmless: another VM's NSG is left exactly as it was, and no rule that enable never removed appears.
    counted.check("restore record naming another VM's NSG: that NSG is untouched",
                  rules(standin, other['nsg_id']) == other_before,
                  [r['name'] for r in rules(standin, other['nsg_id'])])
    counted.check('restore record claiming a rule enable never removed: the rule is not written',
                  not [r for r in rules(standin, ours['nsg_id']) if r['name'] == 'Backdoor'],
                  [r['name'] for r in rules(standin, ours['nsg_id'])])
    counted.verify()


def test_a_forged_revocation_note_hides_no_open_access(az, standin, rg, tally):
    counted = tally('forgeries')
    vms = {'defender': standin.vm(rg, 'fd'), 'nsg': standin.vm(rg, 'fn')}
    ids = {}
    for mode, vm in vms.items():
        enable(az, rg, vm['name'], '--ports', '22', '--mode', mode)
        ids[mode] = az.ok('vm', 'jit', 'request', '-g', rg, '-n', vm['name'], '--ports', '22', '--source',
                          '198.51.100.10')['id']
        with standin.world.lock:   # the id is in every answer and listing: anyone who can read the VM has it
            standin.world.get(vm['id']).setdefault('tags', {})[f'azvmjit-revoked-{ids[mode]}'] = 'forged'
    listing = az.ok('vm', 'jit', 'list', '-g', rg, '--status', 'active')
    active = {r['id'] for entry in listing for r in entry['requests']}
    for mode in vms:
        # Harmless: the open request is still reported as active (the allow rule decides, not the note).
        counted.check(f'forged revocation note ({mode} mode): the open request is still listed active',
                      ids[mode] in active, f'active {sorted(active)}')
    closed = jit(az, 'revoke', '-g', rg, '-n', 'fd')
    counted.check('forged revocation note (defender mode): revoke still closes the open port',
                  closed.code == 0 and not ws.defender_allows(standin, vms['defender']), repr(closed))
    counted.verify()


def test_forged_policy_tags_and_wide_prefixes_are_refused(az, standin, rg, defender_off, tally):
    counted = tally('forgeries')
    vm = standin.vm(rg, 'fp')
    enable(az, rg, 'fp', '--ports', '22', '--max-duration', '1h')
    for source in ('0.0.0.0/1', '128.0.0.0/1'):
        mark = len(standin.world.requests)
        result = jit(az, 'request', '-g', rg, '-n', 'fp', '--ports', '22', '--source', source)
        counted.check(f"request from {source} under the policy's '*': refused", refused(result, standin, mark),
                      repr(result))
    forged = {
        'a maximum of P30D': {'ports': [{'allowedSources': ['*'], 'maxDuration': 'P30D', 'number': 22,
                                         'protocol': 'TCP'}], 'requireApproval': False},
        'extra ports 0 and 70000': {'ports': [{'allowedSources': ['*'], 'maxDuration': 'PT1H', 'number': n,
                                               'protocol': 'TCP'} for n in (22, 0, 70000)],
                                    'requireApproval': False},
    }
    for what, policy in forged.items():
        set_record(standin, vm, 'azvmjit-policy', policy)
        mark = len(standin.world.requests)
        result = jit(az, 'request', '-g', rg, '-n', 'fp', '--ports', '22', '--source', '198.51.100.10',
                     '--duration', '24h')
        # The stored policy is unreadable, not the user's input: one line saying how to repair it, exit 1.
        counted.check(f'policy tag with {what}: request refused', refused(result, standin, mark, code=1)
                      and 'cannot be read' in error_lines(result)[0], repr(result))
    counted.verify()


def test_hand_made_allow_rules_with_untrusted_end_times_are_removed_by_cleanup(az, standin, rg, defender_off,
                                                                               tally):
    counted = tally('forgeries')
    vm = standin.vm(rg, 'fh')
    enable(az, rg, 'fh', '--ports', '22')
    far = (standin.world.clock.now() + dt.timedelta(days=365)).strftime('%Y-%m-%dT%H:%M:%SZ')
    made = {
        'unreadable end time': hand_made_allow(standin, vm, 'aaaa0001', 'keep open for the auditors', 150),
        'end time a year ahead': hand_made_allow(standin, vm, 'aaaa0002',
                                                 f'az vm jit: open until {far} for someone, request aaaa0002', 151),
    }
    result = jit(az, 'cleanup', '-g', rg)
    left = {r['name'] for r in rules(standin, vm['nsg_id'])}
    for what, name in made.items():
        # Harmless: the rule counts as open, not as expired, and cleanup removes it, naming it in a warning.
        counted.check(f'hand-made allow rule with an {what}: removed by cleanup',
                      result.code == 0 and name not in left and name in result.stderr, repr(result))
    counted.verify()


def test_a_hand_written_rule_claiming_another_requestor_shows_who_wrote_it(
        az, az_as, standin, rg, defender_off, tally):
    counted = tally('forgeries')
    vm = standin.vm(rg, 'fr')
    enable(az, rg, 'fr', '--ports', '22')
    world = standin.world
    claimed = world.identities['requester'].client_id
    forger = world.identities['function-app']     # Network Contributor: may write rules, is no JIT requester
    end = (world.clock.now() + dt.timedelta(minutes=30)).strftime('%Y-%m-%dT%H:%M:%SZ')
    name = f'AzVmJit-Allow-{vm_key(standin, vm)}-bbbb0001-22-tcp'
    made = az_as('function-app').run(
        'network', 'nsg', 'rule', 'create', '-g', rg, '--nsg-name', 'fr-nsg', '-n', name, '--priority', '150',
        '--access', 'Allow', '--protocol', 'Tcp', '--destination-port-ranges', '22', '--source-address-prefixes',
        '203.0.113.99', '--destination-address-prefixes', vm['private_ip'],
        '--description', f'az vm jit: open until {end} for {claimed}, request bbbb0001')
    assert made.code == 0, made
    shown = az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'fr')
    entry = next((r for r in shown.get('requests') or [] if r['id'] == 'bbbb0001'), {})
    # Harmless: whoever reads the request sees who Azure says wrote the rule, beside the requestor it claims.
    counted.check('hand-written rule claiming another requestor: show names the identity that wrote it',
                  forger.client_id in json.dumps(entry), json.dumps(entry))
    counted.verify()
