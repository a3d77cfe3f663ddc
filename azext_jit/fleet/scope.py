# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Which subscriptions (or management groups) a fleet command covers, and which resource group of each.

`Scope(subscriptions, management_groups, resource_group)`: subscription ids or management group names (not both:
Resource Graph answers for one kind of scope per query), and optionally one resource group name (in every
subscription). `subscriptions_of(cmd, azure, all_subscriptions, named=None)` says which subscription ids:
- `named`: those given (`--subscriptions`); inside `az` a name or id is resolved from the subscriptions `az login`
  cached for the current account and tenant, as `--subscription` is (one not there is refused); outside `az` (the
  runner) only ids are taken;
- `all_subscriptions`: inside `az`, the subscriptions `az login` cached for the current account and tenant (what
  `az account list` shows there; no call); outside, `GET /subscriptions` (one paged list: every subscription the
  identity holds a role in, of its own tenant); Enabled, Warned and PastDue ones (their VMs run), not Disabled;
- neither: the current subscription.
"""
import re

from azext_jit.errors import AzureFailed, BadInput
from azext_jit.fleet.queries import group_literal

SUBSCRIPTIONS_API = '2022-12-01'
_GUID = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$', re.I)
_MANAGEMENT_GROUP = re.compile(r'^[-\w.()]{1,90}$')
MAX_PAGES = 1000   # of `GET /subscriptions` (ARM sends them in pages of a few hundred)


def _unique(values):
    seen, kept = set(), []
    for value in values:
        if value.lower() not in seen:
            seen.add(value.lower())
            kept.append(value)
    return kept


class Scope:  # pylint: disable=too-few-public-methods  # a value
    """Subscription ids or management group names (one kind), and optionally a resource group in each."""

    def __init__(self, subscriptions=None, management_groups=None, resource_group=None):
        subscriptions = _unique(str(s).strip() for s in subscriptions or [] if str(s).strip())
        management_groups = _unique(str(m).strip() for m in management_groups or [] if str(m).strip())
        if subscriptions and management_groups:
            raise BadInput('Give subscriptions or management groups, not both.',
                           'Use --subscriptions, or --management-groups (which covers their subscriptions).')
        bad = [s for s in subscriptions if not _GUID.match(s)]
        if bad:
            raise BadInput(f'{bad[0]!r} is not a subscription id.',
                           'Give subscription ids (`az account list --query "[].id" -o tsv`).')
        bad = [m for m in management_groups if not _MANAGEMENT_GROUP.match(m)]
        if bad:
            raise BadInput(f'{bad[0]!r} is not a management group name.',
                           'Give management group names (`az account management-group list --query "[].name"`).')
        if resource_group:
            group_literal(resource_group)   # refused now, before any call
        self.subscriptions = subscriptions or None
        self.management_groups = management_groups or None
        self.resource_group = resource_group or None

    def names(self):
        """What the summary reports as its scope: the subscription ids, or the management groups."""
        return list(self.subscriptions or self.management_groups or [])


# Subscription states whose resources run and accept writes (Warned and PastDue ones still run their VMs); Disabled
# and Deleted ones are left out of --all-subscriptions.
LIVE_STATES = ('enabled', 'warned', 'pastdue')


def _live(entry):
    return str(entry.get('state') or '').lower() in LIVE_STATES


def subscriptions_of(cmd, azure, all_subscriptions, named=None):
    """The subscription ids a fleet command covers (see the module docstring); `cmd` is None outside `az`."""
    if named:
        if cmd is None:
            return Scope(subscriptions=named).subscriptions
        entries, current = _profile_entries(cmd, azure)
        return _resolve_in_profile([e for e in entries if _same_account(e, current)], named)
    if all_subscriptions:
        if cmd is None:
            found = _listed(azure)
        else:
            entries, current = _profile_entries(cmd, azure)
            found = [e['id'] for e in entries if _live(e) and _same_account(e, current)]
        if not found:
            raise BadInput('No subscription to cover: none that is enabled is visible to this account.',
                           'Check `az account list --refresh -o table`, or name subscriptions with --subscriptions.')
        return found
    return [azure.subscription_id]


def unreadable(azure, subscriptions):
    """Of `subscriptions`, those the identity cannot see now (`GET /subscriptions`, one paged list): Resource Graph
    leaves such a subscription out of its answer without a word, so a fleet command says it instead."""
    if not subscriptions:
        return []
    visible = {i.lower() for i in _listed(azure, states=None)}
    return [s for s in subscriptions if s.lower() not in visible]


def _profile_entries(cmd, azure):
    """The subscriptions `az login` cached for the active cloud, and the entry of the current one."""
    from azure.cli.core._profile import Profile   # pylint: disable=import-outside-toplevel
    entries = Profile(cli_ctx=cmd.cli_ctx).load_cached_subscriptions()
    current = next((e for e in entries if e.get('id', '').lower() == azure.subscription_id.lower()), None)
    return entries, current


def _same_account(entry, current):
    """Of the tenant and signed-in account the current subscription is used with (one token reads them all)."""
    if current is None:
        return True
    return (entry.get('tenantId') == current.get('tenantId') and
            (entry.get('user') or {}).get('name') == (current.get('user') or {}).get('name'))


def _resolve_in_profile(entries, named):
    """Ids for subscription names or ids, as `--subscription` takes them; an unknown id is taken as given."""
    ids = []
    for name in named:
        name = str(name).strip()
        match = [e['id'] for e in entries if name.lower() in (e.get('id', '').lower(), e.get('name', '').lower())]
        if not match:
            raise BadInput(f"Subscription '{name}' is not one of yours: no subscription of this account and tenant "
                           'has that name or id.',
                           'Check the spelling (`az account list -o table`); a subscription added since you signed in '
                           'appears after `az account list --refresh`.')
        ids.append(match[0])
    return Scope(subscriptions=ids).subscriptions


def _listed(azure, states=LIVE_STATES):
    """`GET /subscriptions`: the subscriptions the identity can read (one paged list), in `states` (None: any)."""
    def cut(pages):
        raise AzureFailed(f'The list of subscriptions did not end after {pages} pages.',
                          'Name the subscriptions with --subscriptions instead.')
    items = azure.rest.list('/subscriptions', SUBSCRIPTIONS_API, max_pages=MAX_PAGES, on_cut=cut)
    return _unique(i['subscriptionId'] for i in items
                   if i.get('subscriptionId') and (states is None or str(i.get('state') or '').lower() in states))
