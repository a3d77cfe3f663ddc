"""What `show`, `list` and `request` return: plain dicts that every output format renders."""
from knack.log import get_logger

from azext_jit import nsg_ops

logger = get_logger(__name__)

# Well-known management ports and how people connect to them.
_CLIENTS = {22: 'ssh <user>@{ip} -p {port}', 3389: 'mstsc /v:{ip}:{port}', 5985: 'Enter-PSSession -ComputerName {ip}',
            5986: 'Enter-PSSession -ComputerName {ip} -UseSSL'}


def connect_hints(target, request):
    """How to reach each opened port: the VM's public IP and port, or, behind a firewall, the firewall's address
    (Defender's `publicIpAddress` of the VM entry) with the mapped port."""
    hints = []
    firewall = getattr(request, 'firewall_ip', None)   # only Defender's requests know it
    for port in request.ports:
        number = port.mapped_port or port.number
        ip = (firewall if port.mapped_port else None) or target.public_ip
        hint = {'port': port.number, 'address': '{}:{}'.format(ip, number) if ip else None}
        if port.mapped_port:
            hint['mappedPort'] = port.mapped_port
        if ip and port.number in _CLIENTS:
            hint['command'] = _CLIENTS[port.number].format(ip=ip, port=number)
        hints.append(hint)
    return hints


def _rule_view(rule):
    props = rule.get('properties') or {}
    return {'name': rule['name'], 'priority': props.get('priority'), 'access': props.get('access'),
            'protocol': props.get('protocol'),
            'source': ','.join(props.get('sourceAddressPrefixes') or [props.get('sourceAddressPrefix') or '']),
            'destination': props.get('destinationAddressPrefix'),
            'ports': ','.join(props.get('destinationPortRanges') or [props.get('destinationPortRange') or ''])}


def vm_view(azure, target, backends, status='all', rules=True):
    view = {'vm': target.name, 'resourceGroup': target.resource_group, 'id': target.id,
            'enabled': bool(backends), 'mode': backends[0].mode if backends else None,
            'policy': None,
            'network': {'privateIp': target.private_ip, 'publicIp': target.public_ip, 'nsg': target.nsg_id,
                        'nsgAttachedTo': target.nsg_scope},
            'requests': []}
    if len(backends) > 1:
        logger.warning('%s has JIT configuration in both modes (%s): finish the move with `az vm jit disable '
                       '--mode <old mode>`.', target.describe(), ', '.join(b.mode for b in backends))
        view['modes'] = [b.mode for b in backends]
    if not backends:
        if rules and target.nsg_id:
            _report_orphans(azure, target, view)
        return view
    policy = backends[0].policy_of(target)
    view['policy'] = policy.to_dict() if policy else None
    needs_nsg = rules or any(b.mode == 'nsg' for b in backends)
    nsg = nsg_ops.read_nsg(azure, target.nsg_id) if target.nsg_id and needs_nsg else None
    if rules and nsg is not None:
        view['rules'] = [_rule_view(r) for b in backends for r in b.protecting_rules(target, nsg)]
    requests = []
    for backend in backends:
        requests += backend.requests_of(target, requestors=True)
    if status != 'all':
        requests = [r for r in requests if r.status == status]
    view['requests'] = [r.to_dict(connect_hints(target, r) if r.status == 'active' else None) for r in requests]
    return view


def request_view(target, request, changes, dry_run):
    out = request.to_dict(connect_hints(target, request))
    out['dryRun'] = dry_run
    out['changes'] = [c.to_dict() for c in changes]
    if dry_run:
        out['status'] = 'planned'
    return out


def _report_orphans(azure, target, view):
    """Defender's rules for a VM that no reachable Defender policy lists: left behind when a subscription lost
    the plan (or the policy was deleted outside JIT). Say so rather than claim the VM is simply unprotected."""
    from azext_jit import nsg_rules
    nsg = nsg_ops.read_nsg(azure, target.nsg_id)
    marker = "of VM '{}'.".format(target.name)
    left = [_rule_view(r) for r in nsg_ops.rules_of(nsg) if nsg_rules.is_defender(r['name'])
            and marker in ((r.get('properties') or {}).get('description') or '')]
    if left:
        view['orphanedDefenderRules'] = left
        logger.warning("%s has Defender for Cloud JIT rules in its NSG (%s) but no Defender JIT policy this "
                       "subscription can reach: Defender no longer manages them. To keep JIT, run `az vm jit enable "
                       "-g %s -n %s --mode nsg` (its rules take precedence); see the README on moving between modes.",
                       target.describe(), ', '.join(r['name'] for r in left), target.resource_group, target.name)
