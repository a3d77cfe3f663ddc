# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Fixtures: one stand-in per test process, the extension installed from its wheel, one `az` per identity.

Tests build their own resource group (`rg` fixture) so they never see each other's VMs. After every test
the stand-in must have seen no request body that violates the swagger, and the tripwire proxy must not
have been touched (no traffic to any host but 127.0.0.1).
"""
import os
import sys
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tests import harness  # noqa: E402
from tests.standin.app import Standin  # noqa: E402


@pytest.fixture(scope='session')
def standin(tmp_path_factory):
    server = Standin(str(tmp_path_factory.mktemp('standin'))).start()
    server.add_test_identities()
    yield server
    server.stop()


@pytest.fixture(scope='session')
def az_env(standin, tmp_path_factory):
    tripwire = harness.Tripwire()
    env = harness.AzEnvironment(str(tmp_path_factory.mktemp('az')), standin, harness.installed_extension_dir(),
                                tripwire)
    yield env
    tripwire.shutdown()


@pytest.fixture
def az(az_env):
    """`az` signed in as the subscription's Owner."""
    return az_env.login('admin')


@pytest.fixture
def az_as(az_env):
    return az_env.login


@pytest.fixture(autouse=True)
def _stand_in_guards(request):
    """No swagger violation and no escape past the tripwire, in any test that used the stand-in."""
    if 'az_env' not in request.fixturenames:
        yield
        return
    world = request.getfixturevalue('standin').world
    env = request.getfixturevalue('az_env')
    before_violations, before_attempts = len(world.schema_violations), len(env.tripwire.attempts)
    yield
    if request.node.get_closest_marker('expects_violation') is None:
        new = world.schema_violations[before_violations:]
        assert not new, 'request bodies that violate the swagger: {}'.format(new)
    escaped = env.tripwire.attempts[before_attempts:]
    assert not escaped, 'az tried to reach hosts other than 127.0.0.1: {}'.format(escaped)


@pytest.fixture
def rg(standin):
    """A fresh resource group name for this test."""
    name = 'rg-' + uuid.uuid4().hex[:8]
    standin.resource_group(name)
    return name


@pytest.fixture
def defender_off(standin):
    from tests.standin import security
    security.set_defender_plan(standin.world, False)
    yield
    security.set_defender_plan(standin.world, True)


def pytest_configure(config):
    config.addinivalue_line('markers', 'expects_violation: the test sends a body the swagger refuses on purpose')
    # With workers, xdist hands each one a quarter of its share of tests in one block at the start: the first worker
    # got every slow fault test in a row (about eight minutes) while the others ran out of work. Two at a time, and
    # more as they finish, spreads the slow ones over every worker.
    if getattr(config.option, 'maxschedchunk', 'absent') is None:
        config.option.maxschedchunk = 2


# Tests that spend most of their time waiting (Retry-After, Defender's late rules, faults), scheduled first: with
# pytest-xdist handing tests out in collection order, a long test left for the end keeps one worker busy while the
# others sit idle.
_WAITING_FIRST = ('tests/reliability/test_faults.py', 'tests/reliability/test_concurrency.py',
                  'tests/e2e/test_defender_as_azure_behaves.py', 'tests/e2e/test_concurrency.py',
                  'tests/e2e/test_nsg_write_faults.py', 'tests/reliability/',
                  # then the longest of the rest (many `az` calls each), so that none is left for the end
                  'tests/e2e/test_approval_requests.py', 'tests/e2e/test_audit_log.py', 'tests/e2e/test_cleanup.py',
                  'tests/e2e/test_request_limits.py', 'tests/e2e/test_nsg_mode.py', 'tests/e2e/test_defender.py',
                  'tests/e2e/test_cleanup_runner_install.py', 'tests/conformance/test_core_az_commands.py',
                  # then every other end-to-end test (each runs `az` a few times), before the conformance and unit
                  # tests, which take a second or less and fill the gaps at the end
                  'tests/e2e/')


def pytest_collection_modifyitems(items):
    def rank(item):
        path = item.nodeid.split('::', 1)[0]
        return next((i for i, prefix in enumerate(_WAITING_FIRST) if path.startswith(prefix)), len(_WAITING_FIRST))
    items.sort(key=rank)   # stable: the order within each group stays as collected, the same on every worker


@pytest.fixture
def faults(standin):
    """Add stand-in faults (`Fault` arguments); they are gone after the test, hit or not (the world is shared)."""
    from tests.standin.world import Fault
    added = []

    def add(*args, **kwargs):
        fault = Fault(*args, **kwargs)
        added.append(fault)
        standin.world.faults.append(fault)
        return fault
    yield add
    for fault in added:
        if fault in standin.world.faults:
            standin.world.faults.remove(fault)
