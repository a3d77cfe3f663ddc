# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""What a command wrote (or, in a dry run, would write): the same objects feed `--dry-run` and the result."""
from dataclasses import dataclass, field


@dataclass
class Change:
    """One write to Azure: `action` (create/update/delete/restore/initiate) of a `kind` (policy/rule/tags)."""
    action: str
    kind: str
    target: str
    vm: str = None
    details: dict = field(default_factory=dict)
    vm_id: str = None      # which VM it is for, when `vm` (a name) could be ambiguous across resource groups

    def concerns(self, target):
        if self.vm_id:
            return self.vm_id.lower() == target.id.lower()
        return self.vm in (target.name, None)

    def to_dict(self):
        out = {'action': self.action, 'kind': self.kind, 'vm': self.vm, 'target': self.target}
        out.update(self.details)
        return out


def rule_summary(rule):
    """What an admin checks of an NSG rule: name, priority, access, protocol, source, destination, ports."""
    from azext_jit.nsg.rules import destination_prefixes, rule_properties, source_prefixes, port_texts
    props = rule_properties(rule)
    return {'name': rule['name'], 'priority': props.get('priority'), 'access': props.get('access'),
            'protocol': props.get('protocol'), 'source': ','.join(source_prefixes(rule)),
            'destination': ','.join(destination_prefixes(rule)) or None, 'ports': ','.join(port_texts(rule))}


def rule_change(action, nsg_id, rule, vm_name=None, vm_id=None):
    """A Change for one NSG rule, with its summary, direction and description."""
    props = rule.get('properties') or {}
    details = rule_summary(rule)
    details.update({'direction': props.get('direction'), 'description': props.get('description')})
    return Change(action, 'rule', f"{nsg_id}/securityRules/{rule['name']}", vm_name, details, vm_id)
