# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The cleanup runner's code (fleet cleanup included) imports nothing from az, even where az is installed beside it."""
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROBE = '''
import json, sys
import azext_jit.runner, azext_jit.cleanup, azext_jit.modes.nsg_mode, azext_jit.modes.defender, azext_jit.arm
import azext_jit.fleet.cleanup, azext_jit.fleet.scope, azext_jit.fleet.graph, azext_jit.fleet.parallel
from azext_jit import modes
for name in modes.REGISTERED:
    modes.load(name)
print(json.dumps(sorted(m for m in sys.modules if m.startswith(('azure.cli', 'knack')))))
'''


def test_runner_cleanup_and_modes_import_no_az_module():
    proc = subprocess.run([sys.executable, '-c', PROBE], capture_output=True, text=True, cwd=REPO, timeout=120,
                          check=False, env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
