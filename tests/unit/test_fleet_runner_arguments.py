# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The cleanup runner's choice of subscriptions: one (`--subscription`, or $AZURE_SUBSCRIPTION_ID), named ones or all
(`--subscriptions`, `--all-subscriptions`, through Resource Graph); input that cannot be used is refused with exit 2
before anything signs in."""
import pytest

from azext_jit import runner

SUB_A = '00000000-0000-0000-0000-00000000000a'
SUB_B = '00000000-0000-0000-0000-00000000000b'


@pytest.fixture(name='runs')
def _runs(monkeypatch):
    """What `main` asks `run` to do (nothing signs in or calls Azure)."""
    seen = []

    def run(subscription_id, resource_group=None, dry_run=False, arm_endpoint=None, credential=None,
            subscriptions=None, all_subscriptions=False):  # pylint: disable=unused-argument
        seen.append({'subscription': subscription_id, 'group': resource_group, 'dry_run': dry_run,
                     'subscriptions': subscriptions, 'all': all_subscriptions})
        return {'removed': [], 'failed': []}

    monkeypatch.setattr(runner, 'run', run)
    monkeypatch.setattr(runner, '_default_credential', lambda: pytest.fail('must not sign in'))
    monkeypatch.setattr(runner, '_quiet_sdk_logging', lambda: None)
    monkeypatch.delenv('AZURE_SUBSCRIPTION_ID', raising=False)
    return seen


def _refused(capsys, *argv):
    with pytest.raises(SystemExit) as caught:
        runner.main(list(argv))
    assert caught.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_named_subscriptions_and_all_subscriptions_go_the_fleet_way(runs, monkeypatch):
    monkeypatch.setenv('AZURE_SUBSCRIPTION_ID', SUB_A)
    assert runner.main(['--subscriptions', SUB_A, SUB_B, '--dry-run']) == 0
    assert runner.main(['--all-subscriptions', '--resource-group', 'rg1']) == 0
    assert runner.main([]) == 0
    assert runs == [
        {'subscription': None, 'group': None, 'dry_run': True, 'subscriptions': [SUB_A, SUB_B], 'all': False},
        {'subscription': None, 'group': 'rg1', 'dry_run': False, 'subscriptions': None, 'all': True},
        {'subscription': SUB_A, 'group': None, 'dry_run': False, 'subscriptions': None, 'all': False}]


def test_a_subscription_given_by_name_is_refused_before_signing_in(runs, capsys):
    line = _refused(capsys, '--subscriptions', SUB_A, 'Production')
    assert "'Production' is not a subscription id" in line and 'az account list' in line and runs == []


def test_one_way_of_choosing_subscriptions_at_a_time(runs, capsys):
    line = _refused(capsys, '--subscription', SUB_A, '--all-subscriptions')
    assert 'not allowed with argument' in line and runs == []


def test_a_group_name_that_cannot_be_queried_is_refused_before_signing_in(runs, capsys):
    line = _refused(capsys, '--all-subscriptions', '--resource-group', "rg' or 1==1")
    assert 'is not a valid resource group name' in line and runs == []


def test_no_subscription_at_all_is_refused(runs, capsys):
    line = _refused(capsys)
    assert '--subscriptions or --all-subscriptions' in line and runs == []
