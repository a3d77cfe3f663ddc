# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""What `show`, `list` and `request` return: plain dicts that every output format renders."""
from azext_jit.access_requests import MISMATCH
from azext_jit.changes import rule_summary
from azext_jit.errors import NotPossible
from azext_jit.log import get_logger

logger = get_logger(__name__)

# Well-known management ports and how people connect to them.
_CLIENTS = {22: 'ssh <user>@{ip} -p {port}', 3389: 'mstsc /v:{ip}:{port}', 5985: 'Enter-PSSession -ComputerName {ip}',
            5986: 'Enter-PSSession -ComputerName {ip} -UseSSL'}


def connect_hints(target, request):
    """How to reach each opened port: the VM's public IP and port, or, behind a firewall, the firewall's address
    (Defender's `publicIpAddress` of the VM entry) with the mapped port."""
    hints = []
    firewall = request.firewall_ip   # known where a firewall maps the port (Defender's VM entry says so)
    for port in request.ports:
        number = port.mapped_port or port.number
        ip = (firewall if port.mapped_port else None) or target.public_ip
        hint = {'port': port.number, 'address': f'{ip}:{number}' if ip else None}
        if port.mapped_port:
            hint['mappedPort'] = port.mapped_port
        if ip and port.number in _CLIENTS:
            hint['command'] = _CLIENTS[port.number].format(ip=ip, port=number)
        hints.append(hint)
    return hints


def vm_view(target, held, modes=(), status='all', rules=True, azure=None):  # pylint: disable=too-many-arguments
    """One VM as `show` and `list` return it. `held`: the modes holding its configuration; `modes`: every mode, for
    reporting rules a mode left behind on a VM it no longer holds (`show` only). With `azure` (`show`), the VM's
    public doors JIT does not guard are read and reported (`unprotectedPublicIps`)."""
    view = {'vm': target.name, 'resourceGroup': target.resource_group, 'id': target.id,
            'enabled': bool(held), 'mode': held[0].name if held else None,
            'policy': None,
            'network': {'privateIp': target.private_ip, 'publicIp': target.public_ip, 'nsg': target.nsg_id,
                        'nsgAttachedTo': target.nsg_scope},
            'requests': []}
    if len(held) > 1:
        logger.warning('%s has JIT configuration in more than one mode (%s): finish the move with `az vm jit disable '
                       '--mode <old mode>`.', target.describe(), ', '.join(b.name for b in held))
        view['modes'] = [b.name for b in held]
    if not held:
        if rules:
            for mode in modes:
                _report_leftovers(mode, target, view)
        return view
    try:
        policy = held[0].policy_of(target)
    except NotPossible as err:   # still show its rules and requests: they can be revoked, the VM disabled
        logger.warning('%s %s', err.message, err.recommendation)
        policy = None
    view['policy'] = policy.to_dict() if policy else None
    missing = held[0].unprotected_ports(target, policy) if policy and target.nsg_id else []
    view['protected'] = policy is not None and not missing
    if missing:
        logger.warning('%s is not protected: no JIT deny rule closes %s. Run `az vm jit enable -g %s -n %s` again.',
                       target.describe(), ', '.join(f'{n}/{p}' for n, p in missing), target.resource_group,
                       target.name)
    if azure is not None and policy is not None:
        _report_doors(azure, target, policy, view)
    if rules and target.nsg_id:
        view['rules'] = [rule_summary(r) for b in held for r in b.protecting_rules(target)]
    requests = []
    for mode in held:
        mine = mode.requests_of(target, requestors=True)
        if azure is not None:   # show: who Azure says wrote each request, where the record could be written by hand
            mode.check_requestors(target, mine)
        requests += mine
    for request in requests:
        if request.requestor_check == MISMATCH:
            logger.warning("Request %s on %s claims to be %s's, but Azure's Activity Log names %s as the writer of "
                           "its rule.", request.id, target.describe(), request.requestor, request.logged_requestor)
    if status != 'all':
        requests = [r for r in requests if r.status == status]
    view['requests'] = [r.to_dict(connect_hints(target, r) if r.status == 'active' else None) for r in requests]
    return view


def _report_doors(azure, target, policy, view):
    """Other IP configurations with a public IP: JIT does not guard them. One reached from any source on a protected
    port makes the VM not protected."""
    from azext_jit.targets import door_warning, public_doors
    doors = public_doors(azure, target, [(p.number, p.protocol) for p in policy.ports])
    view['unprotectedPublicIps'] = [d.to_dict() for d in doors]
    for door in doors:
        logger.warning('%s', door_warning(target, door))
    if any(d.open_ports for d in doors):
        view['protected'] = False


def request_view(target, request, changes, dry_run):
    out = request.to_dict(connect_hints(target, request))
    out['dryRun'] = dry_run
    out['changes'] = [c.to_dict() for c in changes]
    if dry_run:
        out['status'] = 'planned'
    return out


def _report_leftovers(mode, target, view):
    """Rules a mode wrote for a VM it holds no configuration for, where the mode reports them rather than removing
    them (Defender's rules after a subscription lost the plan): say so rather than claim the VM is unprotected."""
    if mode.removes_leftovers():
        return
    left = mode.leftover_rules(target)
    if left:
        view[mode.leftover_view_key] = [rule_summary(r) for r in left]
        logger.warning(mode.leftover_warning(target, left))
