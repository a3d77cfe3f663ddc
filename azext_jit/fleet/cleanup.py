# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Expired access removed across many subscriptions: `az vm jit cleanup --subscriptions/--all-subscriptions` and
the runner's `--subscriptions`/`--all-subscriptions`.

1. One Azure Resource Graph query (`queries.nsgs_with_rules`, paged) finds the NSGs holding a rule named like the
   allow rules of a mode that does not expire its own access (`JitMode.expiring_rule_marker`), with their rules.
2. On that data, judged by Azure's clock, the candidates: NSGs with a rule whose time is up (`JitMode.rules_due`).
3. Per candidate NSG, in parallel (`parallel.run_each`: one NSG at a time each, at most 8 NSGs of one subscription
   and 32 overall): a fresh read from ARM, and the mode removes what that read says is due now
   (`JitMode.cleanup_nsg`). Resource Graph lags ARM by seconds to minutes: a rule its data shows expired may have
   been removed since (by the VM's next request or another cleanup), and nothing is deleted on its word alone.

Calls: the Resource Graph pages, then per candidate NSG one GET and one DELETE per rule removed, and one list of
the subscriptions the identity can read (a named one it cannot read is a failure: Resource Graph leaves it out
without a word); nothing per VM, resource group or subscription. A dry run reads the same and writes nothing. A
rule that cannot be removed (or an NSG that cannot be read) is one line in `failed`, naming it, and the others go
on.
"""
from azext_jit import modes as registry
from azext_jit.fleet import graph, queries
from azext_jit.fleet.parallel import run_each
from azext_jit.fleet.scope import unreadable
from azext_jit.log import get_logger

logger = get_logger(__name__)

WORKERS = 32                 # NSGs worked on at once, overall
PER_SUBSCRIPTION = 8         # ... and of one subscription (ARM throttles writes per subscription)


def _cleaners(mode):
    """The mode classes that remove their own expired access, and find it by a rule name marker."""
    names = list(registry.REGISTERED) if mode == registry.AUTO else [mode]
    classes = [registry.load(name) for name in names]
    return [c for c in classes if not c.expires_access_itself and c.expiring_rule_marker]


def _subscription_of(nsg_id):
    return nsg_id.split('/')[2]


def fleet_cleanup(azure, scope, dry_run=False, mode=registry.AUTO, progress=None):
    """Remove expired access in every subscription of `scope` (a `fleet.scope.Scope`); the summary `cleanup.cleanup`
    returns, with `scope` the subscription ids (or management groups) and `subscriptions` how many (with management
    groups, how many held an NSG with JIT rules: Resource Graph does not say which others it looked at).
    `progress(done, total)` is called as candidate NSGs are done."""
    cleaners = _cleaners(mode)
    summary = {'dryRun': dry_run, 'scope': scope.names(), 'removed': [], 'count': 0, 'failed': [],
               'subscriptions': len(scope.subscriptions or [])}
    if not cleaners:
        return summary
    rows = graph.query(azure, queries.nsgs_with_rules([c.expiring_rule_marker for c in cleaners],
                                                      scope.resource_group),
                       subscriptions=scope.subscriptions, management_groups=scope.management_groups)
    if not scope.subscriptions:   # management groups (or the whole tenant): those where NSGs were found
        summary['subscriptions'] = len({str(r.get('subscriptionId') or _subscription_of(r['id'])).lower()
                                        for r in rows if r.get('id')})
    # Azure's clock is known once an answer has come back (its Date header): judge by it, not this machine's.
    now = azure.now()
    judges = [cleaner(azure) for cleaner in cleaners]
    candidates, seen = [], set()
    for row in sorted((r for r in rows if r.get('id')), key=lambda r: r['id'].lower()):
        key = row['id'].lower()
        if key not in seen and any(judge.rules_due(row, now) for judge in judges):
            seen.add(key)
            candidates.append(row['id'])
    for sub in sorted({_subscription_of(c).lower() for c in candidates}):
        azure.for_subscription(sub)   # made here, before the threads share them

    def work(nsg_id):
        return _clean_one(azure.for_subscription(_subscription_of(nsg_id)), nsg_id, cleaners, dry_run)

    results, failures = run_each(candidates, work, workers=WORKERS, per_key=str.lower, progress=progress,
                                 per_group=(lambda nsg_id: _subscription_of(nsg_id).lower(), PER_SUBSCRIPTION))
    for _, (gone, problems) in results:
        summary['removed'] += [change.to_dict() for change in gone]
        summary['failed'] += problems
    from azext_jit.nsg.client import describe_nsg
    summary['failed'] += [f'the expired rules of {describe_nsg(nsg_id)}: {message}' for nsg_id, message in failures]
    # Resource Graph leaves a subscription the identity cannot read out of its answer without a word: its expired
    # access would stay open while the run looked complete.
    missing = unreadable(azure, scope.subscriptions)
    summary['failed'] += [f'the expired rules of subscription {sub}: this identity cannot read it (no role there, or '
                          "another tenant's), so Resource Graph showed nothing of it" for sub in missing]
    summary['subscriptions'] -= len(missing)
    summary['count'] = len(summary['removed'])
    for problem in summary['failed']:
        logger.warning('Could not remove %s', problem)
    return summary


def _clean_one(azure, nsg_id, cleaners, dry_run):
    """One candidate NSG: read fresh from ARM, then each mode removes what is due now. (Changes, failures)."""
    from azure.core.exceptions import HttpResponseError
    from azext_jit.nsg import client as nsg_client
    try:
        nsg = nsg_client.read_nsg(azure, nsg_id, fresh=True)
    except HttpResponseError as ex:
        if getattr(ex, 'status_code', None) == 404:
            return [], []   # deleted since Resource Graph saw it: nothing of it is left open
        raise
    now = azure.now()
    removed, failed = [], []
    for cleaner in cleaners:
        gone, problems = cleaner(azure).cleanup_nsg(nsg, now, dry_run)
        removed += gone
        failed += problems
    return removed, failed
