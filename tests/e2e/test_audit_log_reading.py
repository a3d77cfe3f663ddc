# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""`az vm jit log` reads the Activity Log as Azure serves it: every page of a resource group's events, one VM's
own story out of them, a reader's right to see it, and events that have not reached the log yet."""
import datetime as dt

from tests.harness import jit, ok, page_size
from tests.standin import arm


def test_a_groups_log_reads_every_page_and_one_vms_log_holds_only_its_own(az, az_as, standin, rg, defender_off):
    vm_a, _ = standin.vm(rg, 'a'), standin.vm(rg, 'b')
    world = standin.world
    ok(az, 'enable', '-g', rg, '--ports', '22', '--yes')
    requester = az_as('requester')
    ok(requester, 'request', '-g', rg, '-n', 'a', '--ports', '22', '--source', '198.51.100.20', '--duration', '30',
       '--justification', 'INC-1 patching')
    ok(az, 'request', '-g', rg, '-n', 'b', '--ports', '22', '--source', '198.51.100.10', '--duration', '30')
    reader = az_as('reader')
    with page_size(world, 2):
        group = ok(reader, 'log', '-g', rg)
    admin, asker = world.identities['admin'].caller, world.identities['requester'].caller
    assert [(e['action'], e['vm'], e['caller']) for e in group] == [
        ('configure', 'a', admin), ('configure', 'b', admin), ('request', 'a', asker), ('request', 'b', admin)]
    assert [e['time'] for e in group] == sorted(e['time'] for e in group)
    request_a = group[2]
    assert request_a['ports'] == ['22/TCP'] and request_a['source'] == '198.51.100.20'
    assert request_a['justification'] == 'INC-1 patching' and request_a['result'] == 'open'
    assert request_a['mode'] == 'NSG' and request_a['events'][0]['action'] == 'open'
    one = ok(reader, 'log', '--ids', vm_a['id'])
    assert [(e['action'], e['vm']) for e in one] == [('configure', 'a'), ('request', 'a')]


def test_events_that_have_not_reached_the_log_are_missing_and_a_warning_says_so(az, standin, rg, defender_off):
    standin.vm(rg, 'late')
    ok(az, 'enable', '-g', rg, '-n', 'late', '--ports', '22', '--yes')
    state = arm.activity_log_state(standin.world)
    before, state['delay'] = state['delay'], dt.timedelta(minutes=10)
    try:
        ok(az, 'request', '-g', rg, '-n', 'late', '--ports', '22', '--source', '198.51.100.10', '--duration', '30')
        early = jit(az, 'log', '-g', rg, '-n', 'late')
        assert early.code == 0 and 'minutes behind' in early.stderr, early
        assert [e['action'] for e in early.json] == [], 'nothing has reached the log yet'
        standin.world.clock.advance(minutes=11)
        later = ok(az, 'log', '-g', rg, '-n', 'late', '--offset', '1h')
        assert [e['action'] for e in later] == ['configure', 'request']
        assert later[1]['result'] == 'open'
    finally:
        state['delay'] = before
