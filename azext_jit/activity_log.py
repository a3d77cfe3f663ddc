# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Reading Azure's Activity Log: the one record of who wrote what that nobody outside Azure can edit.

Azure accepts a time range plus ONE scope per query (resourceGroupName, resourceUri, resourceProvider or
correlationId); everything else is filtered here, client-side. Events arrive minutes late, so a missing event
means "not known (yet)", never "did not happen"."""
from azext_jit.times import stamp

API = '2015-04-01'


def events(azure, since, scope, value, select, until=None, **paging):
    """The events since `since` (and up to `until`) within one scope (`scope` = 'resourceGroupName' or
    'resourceUri' ...), as ARM's JSON, every page (`paging`: RestClient.list's `max_pages`, `on_cut`; plain REST:
    the monitor SDK's models are not needed to read JSON); azure-core's HttpResponseError when the log cannot be
    read (each caller says what that means for it)."""
    end = f" and eventTimestamp le '{stamp(until)}'" if until else ''
    return azure.rest.list(f'/subscriptions/{azure.subscription_id}/providers/microsoft.insights/eventtypes/'
                           'management/values', API, **paging,
                           **{'$filter': f"eventTimestamp ge '{stamp(since)}'{end} and {scope} eq '{value}'",
                              '$select': select})
