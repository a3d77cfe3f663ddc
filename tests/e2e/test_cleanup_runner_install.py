# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The unattended cleanup runner as an admin installs it: the wheel with its `runner` extra, from PyPI, into an
empty virtualenv with no Azure CLI, started with `python -m azext_jit.runner` from outside the source tree.

The virtualenv is built once per test session (pip takes a while) and shared by the xdist workers.
"""
import contextlib
import fcntl
import json
import os
import subprocess
import sys

import pytest

from tests import harness
from tests.standin import aad

PIP_TIMEOUT = 900


def _clean_env(**extra):
    """This process's environment without any Azure sign-in, identity or Python path settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('AZURE_', 'AZ_', 'IDENTITY_', 'MSI_', 'PYTHON'))
           and k.lower() not in ('https_proxy', 'http_proxy', 'no_proxy', 'all_proxy')}
    env.update(extra)
    return env


def _proxied_to(url, bypass='127.0.0.1,localhost'):
    """Every HTTP(S) request goes through `url`, except those for the hosts in `bypass`."""
    return {'HTTPS_PROXY': url, 'HTTP_PROXY': url, 'https_proxy': url, 'http_proxy': url,
            'NO_PROXY': bypass, 'no_proxy': bypass}


@pytest.fixture(name='runner_python', scope='module')
def fixture_runner_python(tmp_path_factory):
    """The python of a fresh virtualenv holding `<wheel>[runner]` and whatever pip brought with it."""
    session_root = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        session_root = session_root.parent   # shared by the workers of this run
    base = session_root / 'cleanup-runner-venv'
    base.mkdir(exist_ok=True)
    venv = base / 'venv'
    python = venv / 'bin' / 'python'
    with open(base / 'lock', 'w', encoding='utf-8') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (base / 'installed').exists():
            wheel = harness.build_wheel(str(base / 'dist'))
            subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True, timeout=300, cwd=str(base))
            pip = subprocess.run([str(python), '-m', 'pip', 'install', '--disable-pip-version-check', '-q',
                                  wheel + '[runner]'], capture_output=True, text=True, timeout=PIP_TIMEOUT,
                                 cwd=str(base), env={k: v for k, v in os.environ.items() if k != 'PYTHONPATH'},
                                 check=False)
            assert pip.returncode == 0, f'pip install failed:\n{pip.stdout[-3000:]}\n{pip.stderr[-3000:]}'
            (base / 'installed').write_text(wheel, encoding='utf-8')
    return str(python)


def _run_runner(python, cwd, env, *args):
    return subprocess.run([python, '-m', 'azext_jit.runner'] + list(args), capture_output=True, text=True,
                          env=env, cwd=str(cwd), timeout=300, check=False)


@contextlib.contextmanager
def _tripwire():
    tripwire = harness.Tripwire()
    try:
        yield tripwire
    finally:
        tripwire.shutdown()


@pytest.mark.usefixtures('defender_off')
def test_runner_installed_without_the_cli_removes_an_expired_rule(runner_python, az, az_env, standin, rg, tmp_path):
    no_cli = subprocess.run([runner_python, '-c', 'import azure.cli'], capture_output=True, text=True,
                            cwd=str(tmp_path), env=_clean_env(), timeout=60, check=False)
    assert no_cli.returncode != 0 and 'ModuleNotFoundError' in no_cli.stderr, (
        f'the runner extra must not install the Azure CLI: {no_cli.stderr}')

    world = standin.world
    vm = standin.vm(rg, 'vm1')
    az.ok('vm', 'jit', 'enable', '-g', rg, '-n', 'vm1', '--yes')
    short = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '22', '--duration', '5',
                  '--source', '198.51.100.1')
    long = az.ok('vm', 'jit', 'request', '-g', rg, '-n', 'vm1', '--ports', '3389', '--duration', '60',
                 '--source', '198.51.100.1')
    world.clock.advance(minutes=10)
    expired = [r['name'] for r in standin.nsg_rules(vm['nsg_id']) if short['id'] in r['name']]
    assert len(expired) == 1

    mark = len(world.requests)
    env = _clean_env(IDENTITY_ENDPOINT=standin.base_url + '/msi/token', IDENTITY_HEADER=aad.MSI_HEADER,
                     AZURE_JIT_ARM_ENDPOINT=standin.base_url, REQUESTS_CA_BUNDLE=standin.ca_path,
                     SSL_CERT_FILE=standin.ca_path, **_proxied_to(az_env.tripwire.url))
    run = _run_runner(runner_python, tmp_path, env, '--subscription', standin.sub, '--resource-group', rg)
    assert run.returncode == 0, run.stderr
    assert [c['name'] for c in json.loads(run.stdout)['removed']] == expired
    names = [r['name'] for r in standin.nsg_rules(vm['nsg_id'])]
    assert not any(short['id'] in n for n in names)
    assert any(long['id'] in n for n in names)
    deletes = [r for r in world.requests[mark:] if r.method == 'DELETE']
    assert deletes and all(r.caller == 'function-app' for r in deletes), [(r.path, r.caller) for r in deletes]


def test_runner_with_no_identity_says_in_one_line_what_to_set(runner_python, tmp_path):
    home = tmp_path / 'home'     # no developer login (az, azd, VS Code, shared token cache) to be found here
    home.mkdir()
    cwd = tmp_path / 'cwd'
    cwd.mkdir()
    bin_dir = os.path.dirname(runner_python)
    # The managed identity probe (IMDS, 169.254.169.254) is answered by a local tripwire, never by a real host.
    with _tripwire() as tripwire:
        env = _clean_env(HOME=str(home), PATH=os.pathsep.join([bin_dir, os.defpath]),
                         **_proxied_to(tripwire.url, bypass=''))
        run = _run_runner(runner_python, cwd, env, '--subscription', '00000000-0000-0000-0000-000000000000')
    assert run.returncode == 2, run.stderr
    assert 'Traceback' not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert 'AZURE_CLIENT_ID' in lines[0] and 'AZURE_CLIENT_SECRET' in lines[0] and 'managed identity' in lines[0]
    assert run.stdout == ''
