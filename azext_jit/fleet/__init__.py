# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Fleet scale: many subscriptions (or management groups) read through Azure Resource Graph in a few paged queries,
and writes made in parallel within ARM's throttling limits. Used by `az vm jit exposure`, `list` and `cleanup` with
`--subscriptions`/`--all-subscriptions`, and by the unattended cleanup runner."""
