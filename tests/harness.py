# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Run the real `az` executable against the stand-in, as a user would.

- The extension is built into a wheel once and installed with `az extension add --source <wheel> --yes`
  into a private AZURE_EXTENSION_DIR, exactly as a user installs a downloaded extension.
- Every identity has its own AZURE_CONFIG_DIR (MSAL serves tokens from its cache), with the stand-in
  registered as a cloud and the identity logged in as a service principal. The cloud is registered once per
  test process, in a template config dir each identity's is copied from before its `az login`.
- A tripwire proxy catches any attempt to reach a host other than 127.0.0.1: az is pointed at it with
  HTTPS_PROXY, and NO_PROXY exempts only the loopback address. Tests fail when it was touched.
- At the end, plain helpers the end-to-end tests share to read Azure's state back from the stand-in.
"""
import contextlib
import copy
import fcntl
import hashlib
import json
import os
import re
import shutil
import socketserver
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from tests.standin import security

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CLOUD = 'JitStandin'


def az_executable():
    candidate = os.path.join(os.path.dirname(sys.executable), 'az')
    return candidate if os.path.exists(candidate) else shutil.which('az')


class Tripwire(socketserver.ThreadingTCPServer):
    """A proxy that lets nothing through and remembers who tried."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.attempts = []
        tripwire = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                line = self.rfile.readline(4096).decode(errors='replace').strip()
                if line:
                    tripwire.attempts.append(line)
                self.wfile.write(b'HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')

        super().__init__(('127.0.0.1', 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return 'http://127.0.0.1:{}'.format(self.server_address[1])


def build_wheel(out_dir):
    """`pip wheel` the repository; returns the wheel's path."""
    os.makedirs(out_dir, exist_ok=True)
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w', out_dir,
                    REPO], check=True, cwd=out_dir)
    wheels = [f for f in os.listdir(out_dir) if f.endswith('.whl')]
    return os.path.join(out_dir, sorted(wheels)[-1])


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    args: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def json(self):
        return json.loads(self.stdout) if self.stdout.strip() else None

    def __repr__(self):
        return 'az {} -> exit {}\nstdout: {}\nstderr: {}'.format(' '.join(self.args), self.code, self.stdout[-3000:],
                                                                 self.stderr[-3000:])


class AzEnvironment:
    """The environment shared by every az run: extension dir, CA, tripwire proxy."""

    def __init__(self, workdir, standin, extension_dir, tripwire):
        self.workdir = workdir
        self.standin = standin
        self.extension_dir = extension_dir
        self.tripwire = tripwire
        self.identities = {}

    def base_env(self, config_dir):
        env = {k: v for k, v in os.environ.items() if not k.startswith(('AZURE_', 'AZ_'))}
        env.update({
            'AZURE_CONFIG_DIR': config_dir,
            'AZURE_EXTENSION_DIR': self.extension_dir,
            'REQUESTS_CA_BUNDLE': self.standin.ca_path,
            'SSL_CERT_FILE': self.standin.ca_path,
            'AZURE_CORE_INSTANCE_DISCOVERY': 'false',
            'AZURE_CORE_COLLECT_TELEMETRY': 'no',
            'AZURE_CORE_ONLY_SHOW_ERRORS': 'false',
            'AZURE_CORE_NO_COLOR': 'true',
            'AZURE_CORE_SURVEY_MESSAGE': 'false',
            'AZURE_EXTENSION_USE_DYNAMIC_INSTALL': 'no',
            'AZURE_JIT_MY_IP_URL': self.standin.base_url + '/ip',
            'HTTPS_PROXY': self.tripwire.url, 'HTTP_PROXY': self.tripwire.url,
            'https_proxy': self.tripwire.url, 'http_proxy': self.tripwire.url,
            'NO_PROXY': '127.0.0.1,localhost', 'no_proxy': '127.0.0.1,localhost',
            'PYTHONWARNINGS': 'ignore',
        })
        return env

    def login(self, name):
        """A config dir with the stand-in cloud registered and identity `name` logged in.

        The cloud is registered and selected once per environment, in a config dir nobody is logged in to (the
        template); each identity gets a copy of it and then runs its own `az login`, as a user who registered the
        cloud before signing in would."""
        if name in self.identities:
            return self.identities[name]
        ident = self.standin.world.identities[name]
        config_dir = os.path.join(self.workdir, 'config-' + name)
        shutil.rmtree(config_dir, ignore_errors=True)   # what a failed earlier attempt left
        shutil.copytree(self._cloud_template(), config_dir)
        runner = AzRunner(self, config_dir, name)
        _setup(runner, ['login', '--service-principal', '-u', ident.client_id, '-p', ident.secret, '--tenant',
                        self.standin.world.tenant_id, '--allow-no-subscriptions'])
        self.identities[name] = runner
        return runner

    def _cloud_template(self):
        """The config dir every identity's starts from: the stand-in registered as a cloud and set as the current
        one by the real `az cloud register` and `az cloud set`, run once; nobody signed in."""
        template = os.path.join(self.workdir, 'config-template')
        if os.path.isdir(template):
            return template
        building = template + '.building'
        shutil.rmtree(building, ignore_errors=True)
        os.makedirs(building)
        # A future update_time stops az from probing a public host for its version once a day.
        from importlib.metadata import version
        versions = {name: {'local': version(dist), 'pypi': version(dist)}
                    for name, dist in (('azure-cli', 'azure-cli'), ('core', 'azure-cli-core'))}
        with open(os.path.join(building, 'versionCheck.json'), 'w') as f:
            json.dump({'versions': versions, 'update_time': '2099-01-01 00:00:00.000000'}, f)
        runner = AzRunner(self, building, '(cloud template)')
        base = self.standin.base_url
        _setup(runner, ['cloud', 'register', '-n', CLOUD, '--endpoint-resource-manager', base + '/',
                        '--endpoint-active-directory', base, '--endpoint-active-directory-resource-id', base + '/',
                        '--skip-endpoint-discovery'])
        _setup(runner, ['cloud', 'set', '-n', CLOUD])
        os.rename(building, template)
        return template


def _setup(runner, args):
    result = runner.run(*args, output=None)
    if result.code != 0:
        raise RuntimeError('az setup failed: {!r}'.format(result))


class AzRunner:
    """`az` as one identity. `run(...)` returns a Result with exit code, parsed JSON and stderr."""

    def __init__(self, environment, config_dir, name):
        self.environment = environment
        self.config_dir = config_dir
        self.name = name
        self.history = []

    def run(self, *args, output='json', extra_env=None, stdin=None, timeout=300):
        argv = [az_executable()] + [str(a) for a in args]
        if output and '-o' not in args and '--output' not in args:
            argv += ['-o', output]
        env = self.environment.base_env(self.config_dir)
        env.update(extra_env or {})
        started = time.monotonic()
        # Not from the repository: `az` runs `python -m azure.cli`, which puts the working directory first on
        # sys.path, and the source tree would shadow the installed wheel.
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, cwd=self.config_dir,
                              input=stdin if stdin is not None else '', check=False)
        result = Result(proc.returncode, proc.stdout, proc.stderr, list(args), time.monotonic() - started)
        self.history.append(result)
        return result

    def ok(self, *args, **kwargs):
        """Run and insist on exit code 0; returns the parsed JSON."""
        result = self.run(*args, **kwargs)
        assert result.code == 0, repr(result)
        return result.json

    def popen(self, *args, output='json'):
        argv = [az_executable()] + [str(a) for a in args] + (['-o', output] if output else [])
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.config_dir,
                                env=self.environment.base_env(self.config_dir), stdin=subprocess.DEVNULL)


def _source_digest():
    digest = hashlib.sha256()
    for root, _, files in sorted(os.walk(os.path.join(REPO, 'azext_jit'))):
        for name in sorted(files):
            if name.endswith(('.py', '.json')):
                with open(os.path.join(root, name), 'rb') as f:
                    digest.update(name.encode() + f.read())
    with open(os.path.join(REPO, 'setup.py'), 'rb') as f:
        digest.update(f.read())
    return digest.hexdigest()[:16]


def installed_extension_dir():
    """An AZURE_EXTENSION_DIR holding this source tree's wheel, installed by `az extension add`.

    `.ci/run` installs it once and passes JIT_TEST_EXTENSION_DIR; a developer's run builds it here, once per
    source version (cached under the system temp dir, guarded by a lock for parallel workers).
    """
    given = os.environ.get('JIT_TEST_EXTENSION_DIR')
    if given:
        return given
    base = os.path.join(os.environ.get('TMPDIR', '/tmp'), 'azvmjit-test-ext', _source_digest())
    os.makedirs(base, exist_ok=True)
    ext_dir = os.path.join(base, 'extensions')
    with open(os.path.join(base, 'lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isdir(os.path.join(ext_dir, 'jit')):
            wheel = build_wheel(os.path.join(base, 'dist'))
            env = dict(os.environ, AZURE_EXTENSION_DIR=ext_dir, AZURE_CONFIG_DIR=os.path.join(base, 'cfg'),
                       AZURE_CORE_COLLECT_TELEMETRY='no')
            subprocess.run([az_executable(), 'extension', 'add', '--source', wheel, '--yes'], env=env,
                           check=True, capture_output=True)
    return ext_dir


@contextlib.contextmanager
def shared_setup(standin, az_env):
    """Around set-up that several tests share (a module-scoped fixture), which runs before the per-test guards look:
    the same checks, that no request body violated the swagger and that nothing tried to get past the tripwire."""
    world = standin.world
    before_violations, before_attempts = len(world.schema_violations), len(az_env.tripwire.attempts)
    yield
    new = world.schema_violations[before_violations:]
    assert not new, 'request bodies that violate the swagger: {}'.format(new)
    escaped = az_env.tripwire.attempts[before_attempts:]
    assert not escaped, 'az tried to reach hosts other than 127.0.0.1: {}'.format(escaped)


@contextlib.contextmanager
def page_size(world, size):
    old = world.page_size
    world.page_size = size
    try:
        yield
    finally:
        world.page_size = old


# -- what the end-to-end tests read back from the stand-in ------------------------------------------------------
# Plain helpers shared by several test files. They read Azure's state from the stand-in (its resources, the ARM
# request log), never from the extension.

LOCATION = 'westeurope'         # where the stand-in puts resource groups and VMs unless told otherwise
ADMIN_IP = '198.51.100.10'      # the admin identity's public IP: what Defender takes as "My IP"
PRODUCT_RULE_PREFIX = 'AzVmJit-'
ALLOW_ANY_SSH = {'name': 'AllowSshAny', 'properties': {
    'priority': 300, 'direction': 'Inbound', 'access': 'Allow', 'protocol': 'Tcp', 'sourcePortRange': '*',
    'destinationPortRange': '22', 'sourceAddressPrefix': '*', 'destinationAddressPrefix': '*'}}


def jit(az, *args, **kwargs):
    """`az vm jit <args>`; returns the Result."""
    return az.run('vm', 'jit', *args, **kwargs)


def ok(az, *args, **kwargs):
    """`az vm jit <args>`, insisting on exit code 0; returns the parsed JSON."""
    result = jit(az, *args, **kwargs)
    assert result.code == 0, result
    return result.json


def enable(az, rg, vm, *extra):
    """`az vm jit enable` of one VM with the default ports and mode, confirmed with --yes."""
    return az.ok('vm', 'jit', 'enable', '-g', rg, '-n', vm, '--yes', *extra)


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith('ERROR')]


def writes_since(world, mark):
    """Writes that reached Azure since `mark` (an index into world.requests): PUT/PATCH/DELETE, and POST actions."""
    return ['{} {}'.format(r.method, r.path) for r in world.requests[mark:]
            if r.method in ('PUT', 'PATCH', 'DELETE') or (r.method == 'POST' and r.path.startswith('/subscriptions'))]


class ArmLog:
    """The ARM calls (paths under /subscriptions, and tenant-level ones under /providers such as PIM's approvals)
    the stand-in saw since `mark()`; token and discovery calls (/{tenant}/oauth2/..., /{tenant}/v2.0/...) are not
    ARM calls and are left out."""

    def __init__(self, world):
        self.world = world
        self.start = len(world.requests)

    def mark(self):
        self.start = len(self.world.requests)

    @property
    def calls(self):
        return [r for r in self.world.requests[self.start:]
                if r.path.startswith('/subscriptions') or r.path.lower().startswith('/providers/')]

    def writes(self):
        return [r for r in self.calls if r.method != 'GET']

    def initiates(self):
        return [r for r in self.calls if r.method == 'POST' and r.path.endswith('/initiate')]

    def summary(self):
        return ['{} {}'.format(r.method, r.path) for r in self.calls]


# NSG mode: the product's own rules and the records it keeps in the VM's tags.
def rules(standin, nsg_id):
    """A copy of an NSG's rules as stored."""
    return copy.deepcopy(standin.nsg_rules(nsg_id))


def rules_by_name(standin, nsg_id):
    return {r['name']: r for r in rules(standin, nsg_id)}


def product_rules(standin, nsg_id, access=None):
    """The rules the extension wrote into an NSG (optionally only its Allow or Deny rules)."""
    return [r for r in rules(standin, nsg_id) if r['name'].startswith(PRODUCT_RULE_PREFIX)
            and (access is None or r['properties']['access'] == access)]


def vm_rules(standin, vm):
    """This VM's rules of ours (its private IP is the destination of each)."""
    return [r for r in product_rules(standin, vm['nsg_id'])
            if r['properties']['destinationAddressPrefix'] == vm['private_ip']]


def source_of(rule):
    props = rule['properties']
    return props.get('sourceAddressPrefix') or ','.join(props.get('sourceAddressPrefixes') or [])


def jit_tags(standin, vm_id):
    return {k: v for k, v in (standin.world.get(vm_id).get('tags') or {}).items() if k.startswith('azvmjit-')}


def policy_tags(standin, vm_id):
    return {k: v for k, v in jit_tags(standin, vm_id).items() if k.startswith('azvmjit-policy')}


# Defender mode: its jitNetworkAccessPolicies and its own NSG rules.
def policy_id(standin, rg, name='default'):
    return security.policy_id(standin.sub, rg, LOCATION, name)


def stored_policy(standin, rg, name='default'):
    return copy.deepcopy(standin.world.get(policy_id(standin, rg, name)))


def entry_texts(policy):
    """Each VM entry of a stored policy, serialised byte for byte: {vm id lower: json text}."""
    return {e['id'].lower(): json.dumps(e, sort_keys=True) for e in policy['properties']['virtualMachines']}


def defender_rules(standin, vm, access=None):
    return [r for r in security.defender_rules(standin.world, vm['nsg_id'])
            if access is None or r['properties']['access'] == access]


def vm_tags(standin, vm):
    return copy.deepcopy(standin.world.get(vm['id']).get('tags') or {})


def request_body(vm, start, end, ports, source=ADMIN_IP, **extra):
    """A JIT request as Defender stores it: `ports` are numbers or (number, extra port fields)."""
    items = []
    for port in ports:
        number, more = port if isinstance(port, tuple) else (port, {})
        items.append(dict(number=number, allowedSourceAddressPrefix=source, endTimeUtc=_azure_time(end), **more))
    return dict({'virtualMachines': [{'id': vm['id'], 'ports': items}], 'startTimeUtc': _azure_time(start),
                 'requestor': ''}, **extra)


def _azure_time(moment):
    """A UTC time as Defender writes it in a request: seven fractional digits."""
    return security._ticks(moment)  # pylint: disable=protected-access


# The README's custom roles.
def readme_roles():
    """The custom role definitions the README ships, by name."""
    with open(os.path.join(REPO, 'README.md'), encoding='utf-8') as f:
        blocks = re.findall(r'```json\n(.*?)```', f.read(), re.S)
    return {role['Name']: role for role in map(json.loads, blocks) if 'Actions' in role}
