# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Who can open access on a VM without approval: every active role assignment whose role grants, over the VM's
NIC, its NSG or its gate scope (the JIT policy), an action that opens a port there.

Approval only gates what requesters are merely eligible for; anyone holding such an action actively (an Owner or
Network Contributor of the resource group, a standing requester role, an approved activation while it lasts) goes
straight through. `show` lists them so that an administrator sees whether approval really gates the VM.

The doors: `securityRules/write` or `networkSecurityGroups/write` over the NSG (write an allow rule), the mode's
own actions over its gate scope (Defender's `initiate` over the JIT policy), `networkInterfaces/write` over the
NIC (move the NIC to another NSG, or none), and for an NSG on the subnet `virtualNetworks/subnets/write` or
`virtualNetworks/write` (take the NSG off the subnet). Inputs: the role assignments of the resource groups of the
VM and of those resources (at, above and below each: those below can sit on the NIC, the NSG or the policy) and
the role definitions
assignable there. An assignment whose role definition is not among them is reported too, as unknown: it cannot be
ruled out.
"""
from azext_jit.pim import roles
from azext_jit.pim.client import last_segment
from azext_jit.pim.gate import covers


def doors(target, mode, gate_scope):
    """[(scope, action)] that open access on the VM without approval, each once (scopes may be None: skipped)."""
    found = [(target.nsg_id, roles.RULE_WRITE), (target.nsg_id, roles.NSG_WRITE), (target.nic_id, roles.NIC_WRITE)]
    if getattr(target, 'nsg_scope', None) == 'subnet' and getattr(target, 'subnet_id', None):
        # the NSG guards the subnet: whoever may rewrite the subnet (or its VNet) can take it off
        vnet = target.subnet_id.rsplit('/subnets/', 1)[0]
        found += [(target.subnet_id, roles.SUBNET_WRITE), (vnet, roles.VNET_WRITE)]
    found += [(gate_scope, action) for action in mode.approval_actions]
    out = []
    for scope, action in found:
        if scope and (scope.lower(), action.lower()) not in [(s.lower(), a.lower()) for s, a in out]:
            out.append((scope, action))
    return out


def principals(assignments, definitions, openings):
    """The role assignments (wire JSON) that open any of `openings` ([(scope, action)], from `doors`), each once:
    {principalId, principalType, roleName, roleDefinitionId, scope, actions, opens}. `definitions`: role definitions
    (wire JSON). An assignment of a role not among them counts, with roleName None and no actions."""
    by_guid = {last_segment(d.get('id') or d.get('name')).lower(): d for d in definitions or () if isinstance(d, dict)}
    out = []
    for assignment in assignments or ():
        props = (assignment or {}).get('properties') or {}
        reached = [(scope, action) for scope, action in openings if covers(props.get('scope'), scope)]
        if not reached or not props.get('principalId'):
            continue
        definition = by_guid.get(last_segment(props.get('roleDefinitionId')).lower())
        if definition is None:
            granted = []
        else:
            permissions = (definition.get('properties') or {}).get('permissions') or []
            granted = [(scope, action) for scope, action in reached if roles.grants(permissions, action)]
            if not granted:
                continue
        out.append({'principalId': props.get('principalId'), 'principalType': props.get('principalType'),
                    'roleName': ((definition or {}).get('properties') or {}).get('roleName'),
                    'roleDefinitionId': props.get('roleDefinitionId'), 'scope': props.get('scope'),
                    'actions': sorted({a for _, a in granted}), 'opens': sorted({s for s, _ in granted})})
    return sorted(out, key=lambda p: (str(p['principalId']).lower(), str(p['scope']).lower()))


def describe(found):
    """One line's worth: `<principal> (<role> at <scope>)`, each."""
    return '; '.join(f"{p['principalId']} ({p['roleName'] or 'an unknown role'} at {p['scope']})" for p in found)
