# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Table views (`-o table`). Loaded with the command table: no SDK imports."""
from collections import OrderedDict


def _request_rows(vm, requests):
    rows = []
    for request in requests:
        for port in request.get('ports') or []:
            rows.append(OrderedDict([('VM', vm), ('Port', port.get('port')), ('Source', port.get('source')),
                                     ('Status', port.get('status')), ('Requestor', request.get('requestor') or ''),
                                     ('Expires', port.get('endTime') or ''), ('Request', request.get('id') or '')]))
    return rows


def transform_list_table(result):
    """One row per requested port; a protected VM with no requests gets one row of its own."""
    rows = []
    for vm in result or []:
        vm_rows = _request_rows(vm['vm'], vm.get('requests') or [])
        if not vm_rows:
            ports = ','.join(str(p['number']) for p in (vm.get('policy') or {}).get('ports', []))
            vm_rows = [OrderedDict([('VM', vm['vm']), ('Port', ports), ('Source', ''),
                                    ('Status', 'protected' if vm.get('protected', True) else 'NOT protected'),
                                    ('Requestor', ''), ('Expires', ''), ('Request', '')])]
        for row in vm_rows:
            row['Mode'] = vm.get('mode')
            if vm.get('subscription'):   # across subscriptions: where each VM is
                row['ResourceGroup'] = vm.get('resourceGroup')
                row['Subscription'] = vm['subscription']
        rows += vm_rows
    return rows


def transform_exposure_table(result):
    """One row per exposed VM, door and port; with --protect, the exposed rows (what was protected is in the JSON)."""
    rows = result.get('exposed') if isinstance(result, dict) else result
    out = []
    for row in rows or []:
        jit = row.get('jit') or {}
        out.append(OrderedDict([
            ('Subscription', row.get('subscription')), ('ResourceGroup', row.get('resourceGroup')),
            ('VM', row.get('vm')), ('Port', row.get('port')), ('Status', row.get('status')),
            ('PublicIp', row.get('publicIp')),
            ('LetInBy', '; '.join(f"{r.get('nsg')}/{r.get('name')} ({r.get('priority')})"
                                  for r in row.get('rules') or []) or row.get('reason') or ''),
            ('Jit', jit.get('mode') or 'no')]))
    return out


def transform_show_table(result):
    rows = transform_list_table([result]) if result.get('enabled') else [
        OrderedDict([('VM', result['vm']), ('Status', 'JIT not enabled')])]
    return rows


def transform_request_table(result):
    rows = []
    for hint, port in zip(result.get('connect') or [{}] * len(result.get('ports') or []), result.get('ports') or []):
        rows.append(OrderedDict([('VM', result.get('vm')), ('Port', port.get('port')), ('Source', port.get('source')),
                                 ('Status', result.get('status')), ('Expires', port.get('endTime')),
                                 ('Connect', hint.get('command') or hint.get('address') or ''),
                                 ('Request', result.get('id') or '')]))
    return rows


def transform_changes_table(result):
    items = result if isinstance(result, list) else [result]
    rows = []
    for item in items:
        for change in item.get('changes') or item.get('removed') or []:
            rows.append(OrderedDict([('Action', change.get('action')), ('Kind', change.get('kind')),
                                     ('VM', change.get('vm') or item.get('vm') or ''),
                                     ('Name', change.get('name') or ''), ('Priority', change.get('priority') or ''),
                                     ('Access', change.get('access') or ''), ('Source', change.get('source') or ''),
                                     ('Ports', change.get('ports') or '')]))
    return rows


def transform_log_table(result):
    """One row per entry of the trail, oldest first."""
    return [OrderedDict([('Time', e.get('time')), ('VM', e.get('vm') or ''), ('Action', e.get('action')),
                         ('Caller', e.get('caller') or ''), ('Ports', ','.join(e.get('ports') or [])),
                         ('Source', e.get('source') or ''), ('End', e.get('endTime') or ''),
                         ('Result', e.get('result')), ('Approver', e.get('approver') or ''),
                         ('Justification', e.get('justification') or '')]) for e in result or []]
