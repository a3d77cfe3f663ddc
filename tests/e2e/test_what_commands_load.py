# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""What an `az vm jit` command loads beside az: no Azure SDK's operations or models. Every ARM call is plain REST on
azure-mgmt-core's pipeline, so a command pays for az and its own work, not for importing SDK models it would turn
back into JSON (azure-mgmt-resource cost about 0.13 s, azure-mgmt-security about 65 ms, azure-mgmt-network about a
third of a second of CPU)."""
from tests.harness import ok


def sdk_modules(result):
    """The azure.mgmt modules a run of az imported, besides azure-mgmt-core (its pipeline), from Python's
    `-X importtime` lines."""
    loaded = {line.rsplit('|', 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith('import time:')}
    return sorted(m for m in loaded if m.startswith('azure.mgmt.') and not m.startswith('azure.mgmt.core'))


def test_every_command_of_a_vm_lifecycle_loads_no_sdk_models(az, standin, rg, mode):
    standin.vm(rg, 'vm1')
    ok(az, 'enable', '-g', rg, '-n', 'vm1', '--ports', '22', '--yes')
    profiled = {'PYTHONPROFILEIMPORTTIME': '1'}
    for args in (['enable', '-g', rg, '-n', 'vm1', '--ports', '22', '3389', '--yes'],
                 ['request', '-g', rg, '-n', 'vm1', '--ports', '22', '--source', '198.51.100.7'],
                 ['show', '-g', rg, '-n', 'vm1'], ['list', '-g', rg], ['log', '-g', rg, '-n', 'vm1'],
                 ['revoke', '-g', rg, '-n', 'vm1'], ['cleanup', '-g', rg], ['disable', '-g', rg, '-n', 'vm1', '--yes']):
        result = az.run('vm', 'jit', *args, extra_env=profiled)
        assert result.code == 0, (args, result.stderr[-2000:])
        assert 'import time:' in result.stderr, 'the import profile was not printed'
        assert sdk_modules(result) == [], (args, sdk_modules(result))
