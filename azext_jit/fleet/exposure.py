# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Which VMs of a fleet the internet reaches on a port, judged from one Resource Graph answer (`fleet/estate.py`).

A VM's doors are its IP configurations with a public IP, on every NIC; JIT guards one of them (the primary IP
configuration of the primary NIC: `guardedDoor`), the others stay as they are whatever JIT does. Inbound traffic to a
door meets the NSG of the door's subnet first, then the NSG of its NIC, and both must let it in. Through one NSG the
internet reaches the port when the first rule deciding for it is an allow rule whose sources are the internet or a
wide public part of it (`nsg/reach.py`, `addresses.internet_wide`: `*`, `Any`, `Internet`, `0.0.0.0/0`, `::/0`,
`AzureCloud`, a public range of /16 or wider for IPv4, /48 or wider for IPv6); a deny rule for any source above it
keeps the internet out, and so does Azure's `DenyAllInBound` when nothing else decides. With no NSG on either, a Basic
public IP (or one whose SKU is not said) lets everything in and a Standard one nothing.

A door is reported open only when the rows seen say so. When a resource on its path is not in the rows (another
subscription, a row the caller may not read, Resource Graph behind ARM), the door is closed if an NSG that is there
denies; otherwise its verdict is unknown, and `exposed(..., unknown=[])` lists it rather than calling it open or
closed: a NIC not in the rows (its doors unknown), the subnet's virtual network not in the rows (whether the subnet
has an NSG), an NSG not in the rows (its rules), or, on a door with no NSG, a public IP not in the rows (its SKU).
"""

from azext_jit.nsg.reach import first_deciding_rule, nsg_name, rule_label, rule_opens_to_internet
from azext_jit.nsg.rules import format_pairs, port_pairs, rule_properties, source_prefixes

OPEN, CLOSED, UNKNOWN = 'open', 'closed', 'unknown'
_WHERE = {'subnet': 'its subnet', 'nic': 'its NIC'}


def _name(resource_id):
    return str(resource_id or '').rstrip('/').rsplit('/', 1)[-1]


def _group(vm):
    parts = str(vm.get('id') or '').split('/')
    return parts[4] if len(parts) > 4 else vm.get('resourceGroup')


def _path(estate, door):
    """`([(attachedTo, nsg id, nsg row or None)], unknown reason or None)`: the NSGs inbound traffic meets on its
    way to the door, subnet's first; the reason says what on the path is not in the rows."""
    path, missing = [], None
    if door.subnet_id:
        if estate.subnet(door.subnet_id) is None:
            missing = f"whether subnet {_name(door.subnet_id)} has an NSG is unknown (its virtual network is not " \
                      "in the answer)"
        elif estate.subnet_nsg_id(door.subnet_id):
            path.append(('subnet', estate.subnet_nsg_id(door.subnet_id)))
    if door.nic_nsg_id:
        path.append(('nic', door.nic_nsg_id))
    seen, nsgs = set(), []
    for attached, nsg_id in path:   # one NSG on both the subnet and the NIC decides once
        if nsg_id.lower() not in seen:
            seen.add(nsg_id.lower())
            nsgs.append((attached, nsg_id, estate.nsg(nsg_id)))
    return nsgs, missing


def judge_door(estate, door, number, protocol):
    """`(verdict, rules, reason)` for the internet reaching `number`/`protocol` through `door`: verdict OPEN
    (`rules` [(attachedTo, nsg row, rule)] that let it in), CLOSED or UNKNOWN; `reason` one line."""
    nsgs, missing = _path(estate, door)
    port = format_pairs([(number, protocol)])
    allowed, unknown = [], [missing] if missing else []
    for attached, nsg_id, nsg in nsgs:
        if nsg is None:
            unknown.append(f"the rules of NSG {_name(nsg_id)} on {_WHERE[attached]} are unknown (not in the answer)")
            continue
        rule, _ = first_deciding_rule(nsg, number, protocol, door.private_ip, door.asg_ids, rule_opens_to_internet)
        if rule is None:
            return CLOSED, [], f"NSG {nsg_name(nsg)} on {_WHERE[attached]} keeps the internet from {port}"
        allowed.append((attached, nsg, rule))
    if unknown:
        return UNKNOWN, [], '; '.join(unknown)
    if allowed:
        return OPEN, allowed, f"the internet reaches {port}: " + '; then '.join(
            f"{rule_label(nsg, rule)} on {_WHERE[attached]} (priority {rule_properties(rule).get('priority')}, "
            f"source {', '.join(source_prefixes(rule)) or '<none>'})" for attached, nsg, rule in allowed)
    pip = estate.public_ip(door.public_ip_id) if door.public_ip_id else None
    if pip is None:
        return UNKNOWN, [], "no NSG on its NIC or subnet, and its public IP (so its SKU) is not in the answer"
    sku = (pip.get('sku') or {}).get('name')
    if str(sku or '').lower() == 'standard':
        return CLOSED, [], "no NSG on its NIC or subnet, and a Standard public IP lets nothing in"
    return OPEN, [], f"no NSG on its NIC or subnet, and a {sku or 'Basic'} public IP lets everything in"


def _door_fields(estate, door, guarded):
    pip = estate.public_ip(door.public_ip_id) if door.public_ip_id else None
    return {'publicIp': door.public_ip, 'publicIpSku': ((pip or {}).get('sku') or {}).get('name'),
            'nic': door.nic_name, 'ipConfiguration': door.ip_config, 'guardedDoor': guarded}


def exposed(estate, ports, jit_of, unknown=None):
    """A row per VM x public door x port in `ports` ([(number, protocol)] or PortSpecs) that the internet reaches
    (`status` "open") or may reach (`status` "unknown": the rows cannot tell, `reason` says what is missing; a NIC not
    in the rows gives one such row with `ipConfiguration` and `port` None): `{subscription, resourceGroup, vm, id,
    port ("22/TCP"), status, publicIp, publicIpSku, nic, ipConfiguration, guardedDoor, rules: [{nsg, nsgId,
    attachedTo, name, priority}], reason, jit: {enabled, mode}}`, sorted by subscription, resource group, VM, port,
    NIC and IP configuration. `jit_of(vm row)` -> JIT mode name or None, asked once per VM with a row. `unknown`,
    when a list, also receives the unknown rows. A VM whose rows cannot be read at all (odd content) is one unknown
    row, never a failed report."""
    pairs = port_pairs(ports)
    rows = []
    for vm in estate.vms():
        base = {'subscription': vm.get('subscriptionId'), 'resourceGroup': _group(vm), 'vm': vm.get('name'),
                'id': vm.get('id')}
        try:
            found = _vm_rows(estate, vm, base, pairs)
        except Exception as ex:  # pylint: disable=broad-except  # one odd VM must not hide the rest of the fleet
            found = [(0, '', _unknown_row(base, None, None, f'its resources could not be judged ({ex!r:.200})'))]
        if found:
            mode = jit_of(vm)
            for number, protocol, row in found:
                row['jit'] = {'enabled': bool(mode), 'mode': mode}
                rows.append((number, protocol, row))
                if row['status'] == UNKNOWN and unknown is not None:
                    unknown.append(row)
    rows.sort(key=lambda item: (str(item[2]['subscription'] or '').lower(), str(item[2]['resourceGroup']).lower(),
                                str(item[2]['vm']).lower(), str(item[2]['id']).lower(), item[0], item[1],
                                str(item[2]['nic']).lower(), str(item[2]['ipConfiguration']).lower()))
    return [row for _, _, row in rows]


def _unknown_row(base, door_fields, port, reason):
    fields = {'publicIp': None, 'publicIpSku': None, 'nic': None, 'ipConfiguration': None, 'guardedDoor': None}
    fields.update(door_fields or {})
    return dict(base, port=port, status=UNKNOWN, **fields, rules=[], reason=reason)


def _vm_rows(estate, vm, base, pairs):
    """[(number, protocol, row)] of one VM's open and unknown doors and ports."""
    found = [(0, '', _unknown_row(base, {'nic': _name(nic_id)}, None,
                                  f"NIC {_name(nic_id)} is not in the answer: its doors are unknown"))
             for nic_id in estate.unread_nics(vm)]
    for door, guarded in estate.doors(vm):
        for number, protocol in pairs:
            verdict, allowed, reason = judge_door(estate, door, number, protocol)
            port = format_pairs([(number, protocol)])
            if verdict == UNKNOWN:
                found.append((number, protocol, _unknown_row(base, _door_fields(estate, door, guarded), port, reason)))
            elif verdict == OPEN:
                found.append((number, protocol, dict(
                    base, port=port, status=OPEN, **_door_fields(estate, door, guarded),
                    rules=[{'nsg': nsg_name(nsg), 'nsgId': nsg.get('id'), 'attachedTo': attached,
                            'name': rule.get('name'), 'priority': rule_properties(rule).get('priority')}
                           for attached, nsg, rule in allowed],
                    reason=reason)))
    return found


def _plural(count, word, plural=None):
    return f"{count} {word if count == 1 else (plural or word + 's')}"


def summary(rows, vm_count, subscription_count):
    """One line: how many of the VMs looked at the internet reaches, how many of those without JIT and with JIT by
    mode, how many doors and ports are open, and how many could not be judged."""
    scope = f"{_plural(vm_count, 'VM')} in {_plural(subscription_count, 'subscription')}"
    doubtful = [r for r in rows if r.get('status') == UNKNOWN]
    rows = [r for r in rows if r.get('status', OPEN) == OPEN]
    doubt = ''
    if doubtful:
        doubt = (f"; could not judge {_plural(len(doubtful), 'door and port', 'doors and ports')} of "
                 f"{_plural(len({str(r['id']).lower() for r in doubtful}), 'VM')} (status unknown)")
    if not rows:
        return f"The internet reaches none of {scope} on the ports asked{doubt}."
    vms = {}
    for row in rows:
        vms.setdefault(str(row['id']).lower(), row['jit'])
    without = sum(1 for jit in vms.values() if not jit.get('enabled'))
    modes = {}
    for jit in vms.values():
        if jit.get('enabled'):
            modes[jit.get('mode')] = modes.get(jit.get('mode'), 0) + 1
    with_jit = f"{sum(modes.values())} with JIT"
    if modes:
        with_jit += ' (' + ', '.join(f"{mode}: {n}" for mode, n in sorted(modes.items(), key=str)) + ')'
    doors = {(str(r['id']).lower(), str(r['nic']).lower(), str(r['ipConfiguration']).lower()) for r in rows}
    return (f"The internet reaches {len(vms)} of {scope}: {without} without JIT, {with_jit}; "
            f"{_plural(len(doors), 'public door')}, {_plural(len(rows), 'door and port', 'doors and ports')} open"
            f"{doubt}.")
