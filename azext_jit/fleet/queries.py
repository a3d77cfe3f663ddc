# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The Kusto queries fleet commands send to Azure Resource Graph: plain Kusto that real Resource Graph accepts, in
the small subset the tests' stand-in evaluates (table `Resources`; `where`, `project`; `==`, `=~`, `!~`, `in~`,
`contains`, `and`, `or`; `tostring`).

- `estate(resource_group=None)`: every VM, NIC, public IP, NSG and virtual network of the scope, the network
  resources of every group (a VM's NIC, NSG or subnet may sit in another group than the VM), the VMs of one group
  with `-g`: what `exposure` and `list` judge a VM by, in one paged query.
- `nsgs_with_rules(markers, resource_group=None)`: the NSGs holding a rule whose name starts with one of `markers`
  (the modes' allow-rule prefixes): cleanup's candidates.

Kusto string literals escape with a backslash, not by doubling quotes, and a group name never needs one: Azure's
resource group names are letters, digits, `_ - . ( )`. A name with anything else (a quote, a backslash) is refused
with `errors.BadInput` before any query is sent, never spliced into one.
"""
import re

from azext_jit.errors import BadInput

VM = 'microsoft.compute/virtualmachines'
ESTATE_TYPES = (VM, 'microsoft.network/networkinterfaces', 'microsoft.network/publicipaddresses',
                'microsoft.network/networksecuritygroups', 'microsoft.network/virtualnetworks')
NSG = 'microsoft.network/networksecuritygroups'

ESTATE_COLUMNS = 'id, name, type, location, resourceGroup, subscriptionId, tags, sku, properties'
NSG_COLUMNS = 'id, name, type, location, resourceGroup, subscriptionId, properties'

# Azure's rule for resource group names: 1-90 letters, digits, underscores, hyphens, periods and parentheses, not
# ending in a period.
_GROUP_NAME = re.compile(r'^[-\w.()]{0,89}[-\w()]$')
# What a rule-name marker may hold (a constant of a mode, checked all the same: it is spliced into the query).
_MARKER = re.compile(r'^[-\w.]{1,80}$', re.ASCII)


def literal(text):
    """`text` as a Kusto string literal; only text that needs no escaping (see the module docstring)."""
    if "'" in text or '"' in text or '\\' in text:
        raise ValueError(f'{text!r} cannot be written as a plain Kusto literal')
    return f"'{text}'"


def group_literal(resource_group):
    """The resource group name as a Kusto literal, or BadInput when it is no valid group name."""
    if not isinstance(resource_group, str) or not _GROUP_NAME.match(resource_group):
        raise BadInput(f'{resource_group!r} is not a valid resource group name.',
                       'Use a resource group name: letters, digits, _ - . ( ), at most 90 characters, not ending '
                       'in a period (`az group list -o table`).')
    return literal(resource_group)


def _types(types):
    return ', '.join(literal(t) for t in types)


def estate(resource_group=None):
    """Every resource `exposure` and `list` judge VMs by; with `resource_group`, only that group's VMs (their
    network resources from every group)."""
    lines = ['Resources', f'| where type in~ ({_types(ESTATE_TYPES)})']
    if resource_group is not None:
        lines.append(f'| where type !~ {literal(VM)} or resourceGroup =~ {group_literal(resource_group)}')
    lines.append(f'| project {ESTATE_COLUMNS}')
    return '\n'.join(lines)


def nsgs_with_rules(markers, resource_group=None):
    """The NSGs (with their rules) holding a rule named with one of `markers`; of one resource group when given."""
    markers = list(markers)
    if not markers or not all(isinstance(m, str) and _MARKER.match(m) for m in markers):
        raise ValueError(f'rule name markers must be plain names, not {markers!r}')
    found = ' or '.join(f'tostring(properties.securityRules) contains {literal(m)}' for m in markers)
    lines = ['Resources', f'| where type =~ {literal(NSG)}']
    if resource_group is not None:
        lines.append(f'| where resourceGroup =~ {group_literal(resource_group)}')
    lines.append(f'| where {found}')
    lines.append(f'| project {NSG_COLUMNS}')
    return '\n'.join(lines)
