# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Arguments. Loaded on every `az vm ...` call: no SDK imports here."""
# pylint: disable=line-too-long


def load_arguments(self, _):
    from knack.arguments import CLIArgumentType
    from azure.cli.core.commands.parameters import get_enum_type, get_resource_name_completion_list
    from azext_jit import _validators as v
    from azext_jit.modes import mode_choices, mode_help

    vm_name_type = CLIArgumentType(
        options_list=['--name', '-n', '--vm'], configured_default='vm', id_part='name', metavar='NAME',
        completer=get_resource_name_completion_list('Microsoft.Compute/virtualMachines'),
        help="Name of the virtual machine. Configure a default with `az configure --defaults vm=<name>`.")

    with self.argument_context('vm jit') as c:
        c.argument('vm_name', vm_name_type)
        c.argument('mode', get_enum_type(mode_choices()), help=mode_help())
        c.argument('dry_run', options_list=['--dry-run'], action='store_true',
                   help='Print the exact changes (policy entries, NSG rules with name, priority, source, port and '
                        'access) without writing anything.')
        c.argument('ports', nargs='+', metavar='PORT[/PROTOCOL]', validator=v.validate_ports)

    with self.argument_context('vm jit enable') as c:
        c.argument('ports', help='Ports to protect, each optionally PORT/PROTOCOL with TCP (default), UDP or *. '
                                 'Default: 22 3389.')
        c.argument('max_duration', options_list=['--max-duration'], validator=v.validate_max_duration,
                   help='Longest access a request may ask for: minutes (`180`), `90m`, `3h` or ISO 8601 (`PT3H`). '
                        'From 5 minutes to 24 hours. Default: 3 hours.')
        c.argument('allowed_sources', options_list=['--allowed-sources'], nargs='+', metavar='CIDR',
                   validator=v.validate_allowed_sources,
                   help='IP addresses or CIDR ranges requests may come from: a request names one of them or a range '
                        'inside one (Defender mode: one of them exactly). Default: `*`, any one address or a range '
                        'of at most /24 (IPv4) or /64 (IPv6) per request.')
        c.argument('all_vms', options_list=['--all'], action='store_true',
                   help='Enable every VM of the subscription (or of the resource group given with -g).')
        c.argument('yes', options_list=['--yes', '-y'], action='store_true',
                   help='Do not ask before removing rules that let any source reach a protected port.')
        c.argument('vm_name', help='Name of the virtual machine. Omit it with -g to enable every VM of the group.')
        c.argument('require_approval', options_list=['--require-approval'], action='store_true', arg_group='Approval',
                   help='Access waits for an approver: requesters are only eligible (Entra PIM) for the requester role '
                        'where Azure checks the permission that opens a port, and activating it needs approval. Needs '
                        'Microsoft Entra ID P2 or Governance; see the README.')
        c.argument('approvers', options_list=['--approvers'], nargs='+', metavar='USER_ID', arg_group='Approval',
                   help='Entra object ids of the users who approve requests (with --require-approval).')
        c.argument('approver_groups', options_list=['--approver-groups'], nargs='+', metavar='GROUP_ID',
                   arg_group='Approval',
                   help='Entra object ids of groups whose members approve requests (with --require-approval).')
        c.argument('requesters', options_list=['--requesters'], nargs='+', metavar='ID', arg_group='Approval',
                   help='Entra object ids of the users or groups made eligible to request access (with '
                        '--require-approval). Others can be made eligible later by running enable again.')

    with self.argument_context('vm jit request') as c:
        c.argument('ports', help='Ports to open, each optionally PORT/PROTOCOL. Default: every port of the policy.')
        c.argument('duration', validator=v.validate_duration,
                   help='How long access stays open: minutes (`60`), `90m`, `2h` or ISO 8601 (`PT2H`). '
                        'Default: the policy maximum.')
        c.argument('source', validator=v.validate_source,
                   help='The IP address or CIDR range to open access from, of the VM\'s IP family (IPv4 or IPv6); '
                        'wider than /24 (IPv4) or /64 (IPv6) only when the policy names that range or a wider one. '
                        'Default: your own public IP address.')
        c.argument('justification', help='Why you need access; recorded with the request.')
        c.argument('request_id', options_list=['--request-id'],
                   help='Open what your approved request asked (its id from the output of `az vm jit request` on a '
                        'VM under approval). Nothing else may be asked beside it.')
        c.argument('wait', options_list=['--wait'], action='store_true',
                   help='On a VM under approval: wait for the approver\'s decision, then open what was asked.')
        c.argument('timeout', options_list=['--timeout'], validator=v.validate_timeout,
                   help='How long --wait waits: minutes (`30`), `90m`, `2h` or ISO 8601. Default: 1 hour.')

    for decision in ('approve', 'deny'):
        with self.argument_context(f'vm jit {decision}') as c:
            c.argument('request_id', options_list=['--request-id'],
                       help='The request to decide on (its id from `az vm jit request` or `az vm jit list --status '
                            'pending`; the id of its PIM approval works too).')
            c.argument('yes', options_list=['--yes', '-y'], action='store_true',
                       help='Do not ask for confirmation (what the request asks is still printed).')
    with self.argument_context('vm jit approve') as c:
        c.argument('reason', options_list=['--reason'], help='Why you approve; PIM keeps it with the decision.')
    with self.argument_context('vm jit deny') as c:
        c.argument('reason', options_list=['--reason'], help='Why you deny; the requester sees it.')

    with self.argument_context('vm jit revoke') as c:
        c.argument('ports', help='Close only these ports. Default: every port the closed requests opened.')
        c.argument('request_id', options_list=['--request-id'],
                   help='Close only this request, whoever made it (its id from `az vm jit show` or `list`). '
                        'Default: your own open requests on the VM.')
        c.argument('all_requests', options_list=['--all'], action='store_true',
                   help="Close everyone's open access to the VM, not only yours (an administrator's action).")

    with self.argument_context('vm jit list') as c:
        c.argument('status', get_enum_type(['active', 'pending', 'expired', 'all']),
                   help='Which requests to show.')

    _fleet_arguments(self)

    _log_arguments(self)

    with self.argument_context('vm jit cleanup') as c:
        c.argument('dry_run', help='Show what would be removed, without removing anything.')
        c.argument('mode', get_enum_type(mode_choices()),
                   help='Only this mode\'s expired rules (`auto`: every mode that does not expire its own).')


def _fleet_arguments(self):
    """--subscriptions / --all-subscriptions (and --management-groups for exposure): read through Resource Graph."""
    from azure.cli.core.commands.parameters import get_enum_type
    from azext_jit import _validators as v
    from azext_jit.modes import mode_choices
    for command in ('list', 'cleanup', 'exposure'):
        with self.argument_context(f'vm jit {command}') as c:
            c.argument('subscriptions', options_list=['--subscriptions'], nargs='+', metavar='SUBSCRIPTION_ID',
                       arg_group='Fleet', validator=v.validate_subscription_ids,
                       help='Subscriptions to cover, by id, read through Azure Resource Graph (at most 1000 per '
                            'query; more are read in batches). Default: the current subscription.')
            c.argument('all_subscriptions', options_list=['--all-subscriptions'], action='store_true',
                       arg_group='Fleet',
                       help='Cover every enabled subscription of the current tenant that `az account list` shows, '
                            'through Azure Resource Graph.')
            c.argument('resource_group_name', id_part=None,
                       help='Only VMs of resource groups of this name (in every subscription covered).')
    with self.argument_context('vm jit exposure') as c:
        c.argument('management_groups', options_list=['--management-groups'], nargs='+', metavar='GROUP_ID',
                   arg_group='Fleet', validator=v.validate_management_groups,
                   help='Management groups to cover (at most 10), by id: every subscription below them.')
        c.argument('ports', help='Management ports to check, each optionally PORT/PROTOCOL. Default: 22 3389.')
        c.argument('protect', options_list=['--protect'], action='store_true',
                   help='Enable JIT (as `az vm jit enable` with these --ports and its defaults) on every exposed VM '
                        'that has none. Each VM is read fresh from ARM first.')
        c.argument('dry_run', help='With --protect: print what enable would change, without writing anything.')
        c.argument('yes', options_list=['--yes', '-y'], action='store_true',
                   help='With --protect: do not ask before removing rules that let any source reach a protected port.')
        c.argument('mode', get_enum_type(mode_choices()),
                   help='With --protect: the mode enable uses (default `auto`, as enable chooses).')


def _log_arguments(self):
    with self.argument_context('vm jit log') as c:
        # --ids here is one list (one timeline for all of them), not az's one-run-per-id expansion; no configured
        # default VM: `log -g RG` means the whole group
        c.argument('resource_group_name', id_part=None)
        c.argument('vm_name', id_part=None, configured_default=None,
                   help='Name of the virtual machine. Omit it to see every VM of the resource group.')
        c.argument('vm_ids', options_list=['--ids'], nargs='+', metavar='VM_ID',
                   help='Resource ids of VMs of one resource group (instead of -g/-n): one timeline for all.')
        c.argument('offset', options_list=['--offset'],
                   help='How far back from --end-time to look: minutes (`90`), `12h`, `7d` or ISO 8601 (`P7D`); at '
                        'most 90 days, what the Activity Log keeps. Default: 7 days.')
        c.argument('start_time', options_list=['--start-time'],
                   help='Start of the range, ISO 8601 in UTC (`2026-11-30T09:00:00Z`). Not with --offset.')
        c.argument('end_time', options_list=['--end-time'],
                   help='End of the range, ISO 8601 in UTC. Default: now.')
