# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The requester role (the README's "JIT VM Access Requester"), which approval makes people eligible for, and
the actions that open a port: who holds them actively can open access without anyone's approval.

`REQUESTER_ACTIONS` must equal the README's JSON (a test compares them): an administrator who created the role
from the README and `enable --require-approval` that creates it get the same role.
"""
REQUESTER_ROLE = 'JIT VM Access Requester'
REQUESTER_DESCRIPTION = 'Read JIT policies and request access to VMs (az vm jit request/revoke/show/list).'
REQUESTER_ACTIONS = (
    'Microsoft.Compute/virtualMachines/read',
    'Microsoft.Network/networkInterfaces/read',
    'Microsoft.Network/publicIPAddresses/read',
    'Microsoft.Network/virtualNetworks/subnets/read',
    'Microsoft.Network/networkSecurityGroups/read',
    'Microsoft.Security/locations/jitNetworkAccessPolicies/read',
    'Microsoft.Security/locations/jitNetworkAccessPolicies/initiate/action',
    'Microsoft.Security/pricings/read',
    'Microsoft.Network/networkSecurityGroups/securityRules/read',
    'Microsoft.Network/networkSecurityGroups/securityRules/write',
    'Microsoft.Network/networkSecurityGroups/securityRules/delete',
    'Microsoft.Resources/subscriptions/resourceGroups/read',
    'Microsoft.Insights/eventtypes/values/read',
)

INITIATE = 'Microsoft.Security/locations/jitNetworkAccessPolicies/initiate/action'
RULE_WRITE = 'Microsoft.Network/networkSecurityGroups/securityRules/write'
NSG_WRITE = 'Microsoft.Network/networkSecurityGroups/write'
NIC_WRITE = 'Microsoft.Network/networkInterfaces/write'
SUBNET_WRITE = 'Microsoft.Network/virtualNetworks/subnets/write'
VNET_WRITE = 'Microsoft.Network/virtualNetworks/write'


def action_matches(pattern, action):
    """RBAC's wildcard match, case-insensitive: `*` stands for any run of characters, slashes included."""
    import re
    regex = '^' + '.*'.join(re.escape(part) for part in str(pattern).split('*')) + '$'
    return re.match(regex, action, re.I) is not None


def grants(permissions, action):
    """Whether permission entries ([{'actions': [...], 'notActions': [...]}], as role definitions and the
    permissions API give them) allow `action`: some entry's actions match and that entry's notActions do not."""
    for entry in permissions or ():
        if not isinstance(entry, dict):
            continue
        actions, not_actions = entry.get('actions') or [], entry.get('notActions') or []
        if not isinstance(actions, list) or not isinstance(not_actions, list):
            continue
        if any(action_matches(a, action) for a in actions if isinstance(a, str)) and \
                not any(action_matches(a, action) for a in not_actions if isinstance(a, str)):
            return True
    return False


def requester_role_body(subscription_id):
    """The role definition `enable --require-approval` creates when the tenant has none of that name."""
    return {'properties': {'roleName': REQUESTER_ROLE, 'description': REQUESTER_DESCRIPTION, 'type': 'CustomRole',
                           'permissions': [{'actions': list(REQUESTER_ACTIONS), 'notActions': [],
                                            'dataActions': [], 'notDataActions': []}],
                           'assignableScopes': [f'/subscriptions/{subscription_id}']}}
