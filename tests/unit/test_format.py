# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Table views: one row per requested port, with the columns the contract names."""
from azext_jit._format import transform_changes_table, transform_list_table, transform_show_table


def _vm(requests, policy_ports=(22, 3389)):
    return {'vm': 'web1', 'mode': 'nsg', 'enabled': True,
            'policy': {'ports': [{'number': p} for p in policy_ports]}, 'requests': requests}


def test_list_table_has_one_row_per_requested_port_with_the_contract_columns():
    rows = transform_list_table([_vm([{'id': 'ab12cd34', 'requestor': 'alice', 'ports': [
        {'port': 22, 'source': '1.2.3.4', 'status': 'active', 'endTime': '2026-11-25T15:00:00Z'},
        {'port': 3389, 'source': '1.2.3.4', 'status': 'expired', 'endTime': '2026-11-25T13:00:00Z'}]}])])
    assert [r['Port'] for r in rows] == [22, 3389]
    assert list(rows[0])[:6] == ['VM', 'Port', 'Source', 'Status', 'Requestor', 'Expires']
    assert rows[1]['Status'] == 'expired' and rows[0]['Requestor'] == 'alice'


def test_a_protected_vm_without_requests_still_gets_a_row():
    rows = transform_list_table([_vm([])])
    assert len(rows) == 1 and rows[0]['Status'] == 'protected' and rows[0]['Port'] == '22,3389'


def test_show_table_of_a_vm_without_jit_says_so():
    assert transform_show_table({'vm': 'web1', 'enabled': False})[0]['Status'] == 'JIT not enabled'


def test_changes_table_lists_rule_changes_of_every_vm():
    change = {'action': 'create', 'kind': 'rule', 'name': 'r1', 'priority': 1000, 'access': 'Deny'}
    rows = transform_changes_table([{'vm': 'a', 'changes': [change]}, {'vm': 'b', 'changes': []}])
    assert len(rows) == 1 and rows[0]['Name'] == 'r1' and rows[0]['VM'] == 'a'
