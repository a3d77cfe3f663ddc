# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Expired access removed across a resource group or the subscription, by every mode that does not expire its own:
what `az vm jit cleanup` and the unattended runner both run."""
from azext_jit import modes as registry
from azext_jit.log import get_logger

logger = get_logger(__name__)


def cleanup(azure, resource_group=None, dry_run=False, mode=registry.AUTO):
    """Remove expired access once; returns the summary both `az vm jit cleanup` and the runner print."""
    names = list(registry.REGISTERED) if mode == registry.AUTO else [mode]
    removed, failed = [], []
    for name in names:
        jit_mode = registry.load(name)(azure)
        if jit_mode.expires_access_itself:
            continue   # its service removes access at the end time itself
        gone, problems = jit_mode.cleanup(resource_group, dry_run)
        removed += [change.to_dict() for change in gone]
        failed += problems
    for problem in failed:
        logger.warning('Could not remove %s', problem)
    return {'dryRun': dry_run, 'scope': resource_group or azure.subscription_id, 'removed': removed,
            'count': len(removed), 'failed': failed}
