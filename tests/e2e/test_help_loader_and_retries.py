# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------
"""The extension's own surface that needs no Azure state: its help, how cheaply its command loader imports,
and `az vm jit show` riding out throttling and a server error like any az command.
"""
import json
import os
import re
import subprocess
import sys

import pytest

from tests import harness


def test_vm_jit_show_copes_with_throttling_and_a_server_error(az, standin, rg, faults):
    """`az vm jit show` reads through az's retrying pipeline: a 429 and a 500 cost a retry, not a failure."""
    vm = standin.vm(rg, 'web1')
    faults('GET', re.escape(vm['id']) + '$', status=429, code='TooManyRequests', message='Throttled.',
           retry_after=1)
    faults('GET', re.escape(vm['nic_ids'][0]) + '$', status=500)
    mark = len(standin.world.requests)
    shown = az.ok('vm', 'jit', 'show', '-g', rg, '-n', 'web1')
    assert shown['enabled'] is False and shown['network']['privateIp'] == vm['private_ip']
    watched = (vm['id'].lower(), vm['nic_ids'][0].lower())
    statuses = [r.status for r in standin.world.requests[mark:] if r.path.lower() in watched]
    assert statuses == [429, 200, 500, 200]


# -- help and loader ---------------------------------------------------------------------------------------
def _our_commands():
    """The commands commands.py registers, read from the source so a new one is checked too."""
    with open(os.path.join(harness.REPO, 'azext_jit', 'commands.py'), encoding='utf-8') as f:
        return sorted(re.findall(r"g\.custom(?:_show)?_command\('([\w-]+)'", f.read()))


def _sections(text):
    """Help text split into {section title: [lines]} (titles are the unindented lines)."""
    sections, current = {}, None
    for line in text.splitlines():
        if line and not line.startswith(' '):
            current = line.rstrip(':').strip()
            sections.setdefault(current, [])
        elif current:
            sections[current].append(line)
    return sections


@pytest.fixture(name='help_of', scope='module')
def fixture_help_of(az_env):
    """`help_of(command)`: the Result of the real `az vm jit [command] -h` (the group's help for ''), run once per
    command in this test process and shared by the tests that read that help (it is the same text each time)."""
    az, seen = az_env.login('admin'), {}

    def help_of(command):
        if command not in seen:
            seen[command] = az.run(*(['vm', 'jit'] + ([command] if command else []) + ['-h']), output=None)
        return seen[command]
    return help_of


def test_group_help_lists_every_command(help_of):
    commands = _our_commands()
    assert len(commands) >= 7
    result = help_of('')
    assert result.code == 0, result
    listed = [line.split(':')[0].strip() for line in _sections(result.stdout)['Commands']
              if re.match(r'^    [\w-]+\s+:', line)]
    assert listed == commands


@pytest.mark.parametrize('command', _our_commands())
def test_each_command_help_documents_every_parameter_and_has_examples(help_of, command):
    result = help_of(command)
    assert result.code == 0, result
    sections = _sections(result.stdout)
    parameters = 0
    for title, lines in sections.items():
        if not title.endswith('Arguments'):
            continue
        for line in lines:
            if re.match(r'^    -', line):
                parameters += 1
                name, _, text = line.partition(' : ')
                assert text.strip(), 'parameter without help in `az vm jit {} -h`: {}'.format(command, name.strip())
    assert parameters > 5
    examples = sections.get('Examples', [])
    names = [line for line in examples if re.match(r'^    \S', line)]
    texts = [line for line in examples if line.startswith('        ')]
    assert names and texts
    assert all(line.strip().startswith('az vm jit ' + command) for line in texts
               if line.strip().startswith('az ')), examples
    assert any('az vm jit ' + command in line for line in texts)


def _parameter_help(help_text):
    """{parameter line: its whole help text} of every `... Arguments` section (continuation lines joined)."""
    found, current = {}, None
    for title, lines in _sections(help_text).items():
        if not title.endswith('Arguments'):
            continue
        for line in lines:
            if re.match(r'^    -', line):
                name, _, text = line.partition(' : ')
                current = name.strip()
                found[current] = text.strip()
            elif line.strip() and current:
                found[current] += ' ' + line.strip()
    return found


@pytest.mark.parametrize('command', _our_commands())
def test_no_parameter_help_states_its_default_twice(help_of, command):
    result = help_of(command)
    assert result.code == 0, result
    doubled = {name: text for name, text in _parameter_help(result.stdout).items() if text.count('Default:') > 1}
    assert not doubled


@pytest.mark.parametrize('command', [''] + _our_commands())
def test_long_summary_is_wrapped_as_one_paragraph(help_of, command):
    result = help_of(command)
    assert result.code == 0, result
    title = 'Group' if not command else 'Command'
    summary = []
    for line in _sections(result.stdout)[title][1:]:  # after the "az vm jit ... : short summary" line
        if not line.startswith('        ') or line.strip().startswith('WARNING'):
            break
        summary.append(line.strip())
    # A short line followed by one that goes on mid-sentence is a wrap gone wrong.
    ragged = [(a, b) for a, b in zip(summary, summary[1:]) if len(a) < 40 and b[:1].islower()]
    assert not ragged, ragged


_IMPORT_PROBE = r'''
import json, sys, time
import azure.cli.core
before = set(sys.modules)
started = time.perf_counter()
import azext_jit, azext_jit._loader, azext_jit.commands, azext_jit._params
import azext_jit._help, azext_jit._validators, azext_jit._format
elapsed = time.perf_counter() - started
imported = sorted(set(sys.modules) - before)
# Running the loader (command table and arguments of every command) must not pull them in either.
from azure.cli.core import get_default_cli
cli = get_default_cli()
class Invocation:
    data = {}
cli.invocation = Invocation()
loader = azext_jit.JitCommandsLoader(cli_ctx=cli)
table = loader.load_command_table(None)
for name in table:
    cli.invocation.data = {'command_string': name}
    loader.command_name = name
    loader.load_arguments(name)
print(json.dumps({'ms': elapsed * 1000, 'imported': imported, 'after_loading': sorted(sys.modules),
                  'commands': sorted(table)}))
'''
HEAVY = ('azure.mgmt', 'azure.identity', 'azure.cli.command_modules')


def test_loader_imports_nothing_heavy():
    env = {k: v for k, v in os.environ.items() if not k.startswith(('AZURE_', 'AZ_'))}
    env['PYTHONPATH'] = harness.REPO
    runs = []
    for _ in range(5):
        proc = subprocess.run([sys.executable, '-c', _IMPORT_PROBE], capture_output=True, text=True, env=env,
                              cwd=harness.REPO, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        runs.append(json.loads(proc.stdout))
    best = min(run['ms'] for run in runs)
    print('\nloader import beyond azure.cli.core: best of 5 = {:.2f} ms ({})'.format(
        best, ', '.join('{:.2f}'.format(run['ms']) for run in runs)))
    run = runs[0]
    assert run['imported'] == sorted(['azext_jit', 'azext_jit._loader', 'azext_jit.commands', 'azext_jit._params',
                                      'azext_jit._help', 'azext_jit._validators', 'azext_jit._format'])
    assert not [m for m in run['after_loading'] if m.startswith(HEAVY)]
    assert run['commands'] == ['vm jit ' + c for c in _our_commands()]
    # The time is printed, not asserted: a timed assertion fails on a busy machine, not on slow code. The benchmark
    # (README, Performance) reports it.


def test_az_indexes_the_extension_by_its_package_so_later_calls_load_only_vm_and_jit(az):
    """az records which module each command came from and looks that name up among installed extensions on the next
    call; a name it cannot find makes every `az vm ...` call rebuild the index by loading every command module."""
    az.run('vm', 'jit', '-h', output=None)
    with open(os.path.join(az.config_dir, 'extensionIndex.json'), encoding='utf-8-sig') as f:
        assert json.load(f)['commandIndex']['vm'] == ['azext_jit']
    again = az.run('vm', 'jit', 'show', '-h', '--debug', output=None)
    assert again.code == 0, again
    assert 'index may be outdated' not in again.stderr and 'Loading all modules' not in again.stderr


def test_az_extension_add_installs_the_extension_alone():
    """`az extension add` installs every dependency a wheel declares again into the extension's own directory
    (`pip install --target`, from the network): the extension declares none, az brings what it uses, so nothing
    else lands there (no second azure-core or requests beside az's, and no download on an offline machine)."""
    root = os.path.join(harness.installed_extension_dir(), 'jit')
    found = sorted(name for name in os.listdir(root) if name not in ('__pycache__', 'bin'))
    assert [n for n in found if not n.endswith('.whl')] == ['azext_jit', 'jit-1.0.0b1.dist-info'], found
