# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Which copy of a group's Defender policies `enable` writes back: a PUT replaces the whole policy, so it must be a
copy read just now. The one read for the mode choice serves when it was the command's last ARM call, moments ago;
otherwise the policies are read again (a dry run shows it without writing)."""
from types import SimpleNamespace

import pytest

from azext_jit.modes import defender
from azext_jit.policy import build_policy

VM_ID = '/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/{}'


class Rest:
    calls = 0


class Policies:
    """Defender's list of the group's policies: one policy listing `other`; counts the lists."""

    def __init__(self, rest):
        self.rest, self.lists = rest, 0

    def list_by_resource_group_and_region(self, resource_group, location):
        self.rest.calls += 1
        self.lists += 1
        return [{'id': '/subscriptions/s/resourceGroups/g/providers/Microsoft.Security/locations/westeurope/'
                       'jitNetworkAccessPolicies/default', 'name': 'default', 'kind': 'Basic',
                 'properties': {'virtualMachines': [defender.policy_to_entry(VM_ID.format('other'), POLICY)]}}]


POLICY = build_policy(['22'], '3h', ['*'])


@pytest.fixture
def mode():
    rest = Rest()
    policies = Policies(rest)
    azure = SimpleNamespace(subscription_id='s', rest=rest,
                            security=SimpleNamespace(jit_network_access_policies=policies))
    return defender.DefenderMode(azure), policies


def write(jit_mode):
    target = SimpleNamespace(id=VM_ID.format('new'), name='new', resource_group='g', location='westeurope')
    return jit_mode._write_entries([target], {target.id: defender.policy_to_entry(target.id, POLICY)}, True)


def test_the_copy_read_for_the_mode_choice_is_written_back_when_nothing_came_after_it(mode):
    jit_mode, policies = mode
    jit_mode.policies('g', 'westeurope')
    assert write(jit_mode) and policies.lists == 1


def test_another_call_after_the_read_makes_enable_read_the_policies_again(mode):
    jit_mode, policies = mode
    jit_mode.policies('g', 'westeurope')
    jit_mode.azure.rest.calls += 1   # e.g. the VM's second NIC, read after the policies
    assert write(jit_mode) and policies.lists == 2


def test_a_read_older_than_a_moment_is_read_again(mode, monkeypatch):
    jit_mode, policies = mode
    jit_mode.policies('g', 'westeurope')
    later = defender.time.monotonic() + defender.FRESH_SECONDS + 0.01
    monkeypatch.setattr(defender.time, 'monotonic', lambda: later)   # a prompt answered, or a slow step
    assert write(jit_mode) and policies.lists == 2
