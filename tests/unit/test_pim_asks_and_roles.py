# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""What a request under approval carries in its PIM justification, and the requester role approval uses."""
from datetime import timedelta

import pytest

from azext_jit.pim.asks import MAX_LENGTH, Ask, format_ask, parse_ask
from azext_jit.pim.roles import INITIATE, REQUESTER_ACTIONS, REQUESTER_ROLE, grants
from tests.harness import readme_roles

VM = ('/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg/providers/Microsoft.Compute/'
      'virtualMachines/app1')


def test_an_ask_reads_back_as_written():
    ask = Ask(VM, ((22, 'TCP'), (3389, 'TCP')), '203.0.113.5/32', timedelta(hours=1), 'patch night | ticket 7')
    text = format_ask(ask)
    assert text.startswith('az vm jit: ' + VM + ' ports=22/TCP,3389/TCP source=203.0.113.5/32 duration=PT1H | ')
    back = parse_ask(text)
    assert back == ask and back.reason == 'patch night | ticket 7'


def test_an_ask_without_source_means_the_callers_own_ip():
    back = parse_ask(format_ask(Ask(VM, ((22, 'UDP'),), None, timedelta(minutes=30))))
    assert back.source is None and back.ports == ((22, 'UDP'),) and back.duration == timedelta(minutes=30)


def test_a_long_reason_is_cut_to_what_pim_keeps():
    assert len(format_ask(Ask(VM, ((22, 'TCP'),), None, timedelta(hours=1), 'x' * 2000))) == MAX_LENGTH


@pytest.mark.parametrize('text', [
    None, '', 'please let me in',
    'az vm jit: /subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n '
    'ports=22/TCP source=caller duration=PT1H',
    'az vm jit: ' + VM + ' ports=70000/TCP source=caller duration=PT1H',
    'az vm jit: ' + VM + ' ports=22/TCP,22/TCP source=caller duration=PT1H',
    'az vm jit: ' + VM + ' ports=22/XYZ source=caller duration=PT1H',
    'az vm jit: ' + VM + ' ports=22/TCP source=caller duration=forever',
    'az vm jit: ' + VM + ' ports=22/TCP source=caller',
    'az vm jit: ' + VM + ' ports=22/TCP source=caller duration=PT1H extra=1',
])
def test_a_justification_that_is_not_a_readable_ask_is_none(text):
    assert parse_ask(text) is None


def test_the_requester_role_in_code_is_the_readme_role():
    role = readme_roles()[REQUESTER_ROLE]
    assert tuple(role['Actions']) == REQUESTER_ACTIONS


def test_grants_follows_rbac_wildcards_and_not_actions():
    assert grants([{'actions': ['*']}], INITIATE)
    assert grants([{'actions': ['Microsoft.Security/*']}], INITIATE)
    assert not grants([{'actions': ['*/read']}], INITIATE)
    assert not grants([{'actions': ['*'], 'notActions': ['Microsoft.Security/locations/*']}], INITIATE)
    assert grants([{'actions': ['*/read']}, {'actions': [INITIATE.upper()]}], INITIATE)
    assert not grants([{'actions': 'Microsoft.Security/*'}, 'junk', None], INITIATE)
