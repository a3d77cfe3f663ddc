# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""What `az vm jit log` reads, in as few calls as the story allows.

- The VM (and its NIC, and subnet when the NIC has no NSG), or for a resource group its VMs and NICs (two lists):
  enough to know which VMs are meant and where their NSGs are.
- The Activity Log, one query per resource group (the VMs' own and each NSG's), with the only filters Azure
  accepts (a time range and ONE scope: `resourceGroupName`), every page. Everything else is filtered here.
- Only when the log holds PIM requests: PIM's requests in those resource groups (one list each) and each approval
  (one read each). Which gate is which mode's is told from the ids alone (`JitMode.gate_for`).
"""
from azext_jit import activity_log
from azext_jit.audit.story import Scope, timeline
from azext_jit.audit.window import may_still_arrive
from azext_jit.log import get_logger
from azext_jit.times import stamp

logger = get_logger(__name__)

SELECT = ('eventTimestamp,caller,claims,operationName,operationId,resourceId,resourceGroupName,status,'
          'correlationId,eventDataId,properties')
MAX_PAGES = 500


def activity(azure, group, start, end):
    """Every event of resource group `group` between `start` and `end` (every page, up to MAX_PAGES), one per
    operation."""
    from azext_jit.audit.happenings import merge_phases

    def cut(pages):
        logger.warning('The Activity Log of resource group %s has more than %d pages in this range: only the first %d '
                       'were read. Narrow the range with --start-time/--end-time.', group, pages, pages)
    found = activity_log.events(azure, start, 'resourceGroupName', group, SELECT, until=end, max_pages=MAX_PAGES,
                                on_cut=cut)
    return merge_phases([e for e in found if isinstance(e, dict)])


def _targets(azure, group, vm_name):
    """The VMs the log is about, with their NSGs where known."""
    from azext_jit.errors import NotFound
    from azext_jit.targets import VmTarget, list_vms, resolve_vm, target_from_vm, target_without_network, \
        with_subnet_nsg
    if vm_name:
        try:
            return [resolve_vm(azure, group, vm_name)]
        except NotFound:
            logger.warning("VM '%s' is not in resource group '%s' (any more): showing what the Activity Log holds "
                           "for its id.", vm_name, group)
            return [VmTarget(id=f'/subscriptions/{azure.subscription_id}/resourceGroups/{group}/providers/'
                                f'Microsoft.Compute/virtualMachines/{vm_name}', name=vm_name, resource_group=group,
                             location=None)]
    targets = [target_without_network(vm) for vm in list_vms(azure, group)]
    nics = {n['id'].lower(): n for n in azure.network.network_interfaces.list(group)}
    subnets = {}
    for target in targets:
        nic = nics.get((target.nic_id or '').lower())
        if nic is None:
            if target.nic_id:   # a NIC in another resource group: read it by its id
                found = target_from_vm(azure, {'id': target.id, 'name': target.name, 'location': target.location,
                                               'properties': {'networkProfile': {'networkInterfaces': [
                                                   {'id': target.nic_id, 'properties': {'primary': True}}]}}})
                target.nsg_id, target.private_ip = found.nsg_id, found.private_ip
            continue
        props = nic.get('properties') or {}
        configs = props.get('ipConfigurations') or []
        config = next((c for c in configs if (c.get('properties') or {}).get('primary')), configs[0] if configs else {})
        target.subnet_id = ((config.get('properties') or {}).get('subnet') or {}).get('id')
        target.private_ip = (config.get('properties') or {}).get('privateIPAddress')
        if (props.get('networkSecurityGroup') or {}).get('id'):
            target.nsg_id = props['networkSecurityGroup']['id']
        elif target.subnet_id:
            key = target.subnet_id.lower()
            if key not in subnets:
                subnets[key] = with_subnet_nsg(azure, target).nsg_id
            target.nsg_id = subnets[key]
    return targets


def _group_of(resource_id):
    parts = (resource_id or '').split('/')
    return parts[4] if len(parts) > 4 and parts[3].lower() == 'resourcegroups' else None


def _gate_modes(modes, targets, found):
    """{scope (lower): mode title} of the PIM scopes in `found` that are a gate of one of the VMs, judged from the
    ids alone: the VM's NSG (NSG mode) or a JIT policy of its resource group (Defender mode)."""
    from azext_jit.pim.trail import gate_of
    gates = {}
    for scope in {gate_of(x) for x, _ in found if gate_of(x)}:
        for mode in modes.each():
            if any(mode.gate_for(scope, target) for target in targets):
                gates[scope] = mode.title
                break
    return gates


_UNREADABLE = (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError, RecursionError)


def _read(modes, event, home, skipped):
    """The happenings of one event by every mode and PIM; an event whose recorded content is too odd to read is
    left out and counted (it is still in the Activity Log, where `az monitor activity-log list` shows it)."""
    from azext_jit.pim import trail as pim_trail
    try:
        found = [x for mode in modes.each() for x in mode.trail(event)] + pim_trail.trail(event)
    except _UNREADABLE:
        skipped.append(event.get('eventDataId'))
        return []
    return [(x, home) for x in found]


def _explain_pim(azure, modes, targets, found, group, group_wide):
    """PIM happenings only at the VMs' gates (a group's log: also requests at its other scopes, which PIM's record
    then shows to be a JIT request, or not), explained from PIM's records."""
    from azext_jit.pim import trail as pim_trail
    pim_actions = ('pim-request', 'approval-setup', 'cancel')
    if not any(x.action in pim_actions for x, _ in found):
        return found
    gates = _gate_modes(modes, targets, found)
    found = [(x, home) for x, home in found if x.action not in pim_actions or pim_trail.gate_of(x) in gates or
             (group_wide and home and x.action == 'pim-request')]
    for x, _ in found:
        if x.action in pim_actions and pim_trail.gate_of(x) in gates:
            x.extra['at_gate'] = True
            x.mode = gates[pim_trail.gate_of(x)]
    pim_groups = sorted({_group_of(pim_trail.gate_of(x)) or group for x, _ in found if x.action == 'pim-request'},
                        key=str.lower)
    return pim_trail.explain(azure, found, pim_groups, gates)


def log(azure, modes, group, vm_names, span):
    """The entries of the log of VMs `vm_names` of resource group `group`, or (no names) of the whole group, over
    `span` (`window.window`'s options), measured by Azure's clock once the first answer has told it."""
    from azext_jit.audit.window import query_start, window
    targets = [t for name in vm_names or [None] for t in _targets(azure, group, name)]
    start, end = window(azure.now(), **span)
    groups = [group] + sorted({g for g in (_group_of(t.nsg_id) for t in targets) if g and g.lower() != group.lower()},
                              key=str.lower)
    found, skipped = [], []
    since = query_start(start, azure.now())
    if since > start:
        logger.warning('The Activity Log keeps 90 days: the range is read from %s on.', stamp(since))
    for name in groups:
        home = name.lower() == group.lower()
        # up to now, not only to the range's end: what became of what happened in the range
        for event in activity(azure, name, since, azure.now()):
            found += _read(modes, event, home, skipped)
    if skipped:
        logger.warning('%d Activity Log event(s) hold content this command cannot read and are left out (see them '
                       'with `az monitor activity-log list -g %s`).', len(skipped), group)
    found = _explain_pim(azure, modes, targets, found, group, not vm_names)
    now = azure.now()
    if may_still_arrive(end, now):
        logger.warning('The Activity Log is usually minutes behind: events of the last 20 minutes may not be in it '
                       'yet. Run the command again later for the complete trail.')
    return timeline(found, Scope(targets, None if vm_names else group), now, since=start, until=end)
