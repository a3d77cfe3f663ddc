# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------
"""The repository's own files are enough to run the stand-in: a copy of them in an empty folder, with no
sibling folders and no JIT_STANDIN_SPECS, starts, answers over HTTPS and checks bodies against the swagger
that travels with the repository (tests/standin/reference/).
"""
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests import harness

START_TIMEOUT = 120


def _repository_files():
    """Tracked files and untracked ones git does not ignore: what a clone plus the work in progress holds."""
    if not os.path.isdir(os.path.join(harness.REPO, '.git')):
        pytest.skip('not a git checkout')
    listed = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=harness.REPO,
                            capture_output=True, check=True).stdout.decode()
    return [path for path in listed.split('\0') if path and os.path.isfile(os.path.join(harness.REPO, path))]


@pytest.fixture(name='bare_copy')
def _bare_copy(tmp_path):
    copy = tmp_path / 'checkout'
    for path in _repository_files():
        target = copy / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(harness.REPO, path), target)
    return copy


def _clean_env():
    env = {k: v for k, v in os.environ.items() if k not in ('JIT_STANDIN_SPECS', 'PYTHONPATH')}
    env['PYTHONDONTWRITEBYTECODE'] = '1'
    return env


def _read_env_file(path, proc, log):
    """The stand-in's env file once it is complete; fails with the stand-in's stderr when it exits first."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            pytest.fail('the stand-in exited with {}:\n{}'.format(proc.returncode, log.read_text(encoding='utf-8')))
        text = path.read_text(encoding='utf-8') if path.exists() else ''
        if text.endswith('\n') and 'STANDIN_SUBSCRIPTION=' in text:
            return dict(shlex.split(line)[0].split('=', 1) for line in text.splitlines() if line)
        if time.monotonic() > deadline:
            pytest.fail('no env file from the stand-in after {} s'.format(START_TIMEOUT))
        time.sleep(0.1)


def test_copied_checkout_finds_its_specs_inside_itself(bare_copy):
    probe = 'from tests.standin import schema; print(schema.specs_root().resolve())'
    proc = subprocess.run([sys.executable, '-c', probe], cwd=bare_copy, env=_clean_env(), capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    root = proc.stdout.strip()
    assert root.startswith(str(bare_copy.resolve()) + os.sep), root
    assert os.path.isfile(os.path.join(root, 'security', '2020-01-01', 'jitNetworkAccessPolicies.json'))


def test_stand_in_started_from_a_copied_checkout_answers_and_checks_bodies(bare_copy, tmp_path):
    env_file, log = tmp_path / 'standin.env', tmp_path / 'standin.log'
    with open(log, 'w', encoding='utf-8') as stderr:
        # Not `with Popen`: the stand-in is stopped by its PID in `finally`, with a SIGTERM it handles.
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, '-m', 'tests.standin', '--env-file', str(env_file), '--dir', str(tmp_path / 'certs')],
            cwd=bare_copy, env=_clean_env(), stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        settings = _read_env_file(env_file, proc, log)
        base, ca, tenant = settings['STANDIN_URL'], settings['STANDIN_CA'], settings['STANDIN_TENANT']
        assert base.startswith('https://127.0.0.1:')
        assert int(settings['STANDIN_PID']) == proc.pid

        metadata = requests.get('{}/{}/v2.0/.well-known/openid-configuration'.format(base, tenant), verify=ca,
                                timeout=30)
        assert metadata.status_code == 200, metadata.text
        assert metadata.json()['token_endpoint'] == '{}/{}/oauth2/v2.0/token'.format(base, tenant)

        token = requests.post(metadata.json()['token_endpoint'], verify=ca, timeout=30, data={
            'grant_type': 'client_credentials', 'client_id': settings['STANDIN_ADMIN_ID'],
            'client_secret': settings['STANDIN_ADMIN_SECRET'], 'scope': base + '//.default'})
        assert token.status_code == 200, token.text
        rule = '{}/subscriptions/{}/resourceGroups/MyResourceGroup/providers/Microsoft.Network/{}'.format(
            base, settings['STANDIN_SUBSCRIPTION'], 'networkSecurityGroups/MyVM-nsg/securityRules/NotANumber')
        body = {'properties': {'priority': 'high', 'protocol': 'Tcp', 'access': 'Allow', 'direction': 'Inbound',
                               'sourcePortRange': '*', 'destinationPortRange': '22', 'sourceAddressPrefix': '*',
                               'destinationAddressPrefix': '*'}}
        refused = requests.put(rule, params={'api-version': '2024-05-01'}, json=body, verify=ca, timeout=30,
                               headers={'Authorization': 'Bearer ' + token.json()['access_token']})
        assert refused.status_code == 400, refused.text
        error = refused.json()['error']
        assert error['code'] == 'InvalidRequestContent' and 'properties.priority' in error['message'], error
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text(encoding='utf-8')
