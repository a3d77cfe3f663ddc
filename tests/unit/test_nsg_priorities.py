# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Choosing NSG priorities: the deny rule near 1000, allow rules from 100 below it."""
import pytest

from azext_jit.errors import NotPossible
from azext_jit.nsg import priorities
from tests.unit.rule_samples import rule


@pytest.mark.parametrize("used,expected", [
    (set(), 1000), ({1000}, 1001), ({1000, 1001}, 999), ({999, 1000, 1001}, 1002),
    ({998, 999, 1000, 1001, 1002}, 1003), ({1000, 1001, 1002, 999}, 998),
])
def test_choose_deny_priority(used, expected):
    assert priorities.choose_deny_priority(used) == expected


def test_choose_deny_priority_stays_in_range_and_exhausts():
    assert priorities.choose_deny_priority(set(range(100, 4096))) == 4096
    assert priorities.choose_deny_priority(set(range(101, 4097))) == 100
    assert priorities.choose_deny_priority(set(), preferred=5000) == 4096
    with pytest.raises(NotPossible):
        priorities.choose_deny_priority(set(range(100, 4097)))


def test_choose_allow_priorities():
    assert priorities.choose_allow_priorities(set(), 2, 1000) == [100, 101]
    assert priorities.choose_allow_priorities({100, 102, 65000}, 3, 1000) == [101, 103, 104]
    assert priorities.choose_allow_priorities({100}, 0, 1000) == []


def test_choose_allow_priorities_never_reaches_ceiling():
    assert priorities.choose_allow_priorities(set(range(100, 104)), 1, 105) == [104]
    with pytest.raises(NotPossible):
        priorities.choose_allow_priorities(set(range(100, 104)), 2, 105)
    with pytest.raises(NotPossible):
        priorities.choose_allow_priorities(set(), 1, 100)
    result = priorities.choose_allow_priorities(set(), 900, 1000)
    assert max(result) == 999 and len(set(result)) == 900
    with pytest.raises(NotPossible):
        priorities.choose_allow_priorities(set(), 901, 1000)


def test_used_priorities_per_direction():
    rules = [rule("a", 100), rule("b", 200, direction="Outbound"), rule("c", 300, direction="inbound"),
             {"name": "broken", "properties": {"direction": "Inbound"}}]
    assert priorities.used_priorities(rules) == {100, 300}
    assert priorities.used_priorities(rules, "Outbound") == {200}
