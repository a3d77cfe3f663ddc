# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Priorities in a network security group: 100..4096, lower number wins, unique per direction.

The NSG itself refuses a duplicate (400 ``SecurityRuleConflict``), which is what makes concurrent writers safe:
the caller reads the NSG, chooses with these functions, writes, and on a conflict re-reads and chooses again
(``nsg.client.add_rules``).
"""
from azext_jit.errors import NotPossible
from azext_jit.nsg.rules import INBOUND, lower, priority_of, rule_properties

MIN_PRIORITY = 100
MAX_PRIORITY = 4096
DEFAULT_DENY_PRIORITY = 1000


def used_priorities(rules, direction=INBOUND):
    """Priorities taken by rules of ``direction`` (case-insensitive); default rules (65000+) included as is."""
    wanted = lower(direction)
    out = set()
    for rule in rules or ():
        if lower(rule_properties(rule).get("direction")) == wanted:
            priority = priority_of(rule)
            if priority is not None:
                out.add(priority)
    return out


def choose_deny_priority(used, preferred=DEFAULT_DENY_PRIORITY):
    """``preferred`` (1000) if free, else the nearest free priority, searching 1000, 1001, 999, 1002, 998...

    On a tie the larger number (lower precedence) wins: when 1000 is taken by someone's rule, 1001 keeps the
    deny behind that rule as it would have been at 1000, whereas 999 would jump in front of it and silently
    start overriding a rule the admin wrote. Raises ValidationError when 100..4096 are all taken.
    """
    taken = set(used or ())
    preferred = min(max(int(preferred), MIN_PRIORITY), MAX_PRIORITY)
    for distance in range(0, MAX_PRIORITY - MIN_PRIORITY + 1):
        for candidate in (preferred + distance, preferred - distance):
            if MIN_PRIORITY <= candidate <= MAX_PRIORITY and candidate not in taken:
                return candidate
    raise NotPossible(
        f"The network security group has no free inbound priority between {MIN_PRIORITY} and {MAX_PRIORITY} for "
        "the JIT deny rule.",
        "Remove or merge some inbound rules of the network security group, then run the command again.")


def choose_allow_priorities(used, count, ceiling):
    """The ``count`` lowest free priorities from 100 upward, all strictly below ``ceiling`` (the deny rule's).

    Lowest numbers, so a request's allow rule wins over everything an admin may have put in front of the
    deny rule (including a Deny, see the module docstring). Raises ValidationError when there are not enough.
    """
    count = int(count)
    if count <= 0:
        return []
    taken = set(used or ())
    top = min(int(ceiling), MAX_PRIORITY + 1)
    free = [p for p in range(MIN_PRIORITY, top) if p not in taken][:count]
    if len(free) < count:
        raise NotPossible(
            f"The network security group has {len(free)} free inbound priorit{'y' if len(free) == 1 else 'ies'} "
            f"from {MIN_PRIORITY} up to the JIT deny rule at {int(ceiling)}, "
            f"but {count} {'is' if count == 1 else 'are'} needed.",
            "Close expired access with 'az vm jit cleanup', request fewer ports at once, or free priorities "
            f"below {int(ceiling)} in the network security group.")
    return free
