# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The command table. Loaded on every `az vm ...` call: no SDK imports here."""


def _handle_error(ex):
    """Every handler's errors go through one mapping (the extension's failures and SDK errors to azclierror types,
    bad input to exit 2)."""
    from azext_jit.cli_errors import handle_exception
    return handle_exception(ex)


CONFIRM_IN_HANDLER = 'azvmjit_confirm_disable'   # cli_ctx.data key: `disable` asks once it knows what it writes


def _confirm_disable(cli_ctx, command_args):
    """`disable` asks first, except for a dry run (which changes nothing) or with --yes (az then skips this).

    The question itself is asked by the handler once it has read what it will write back (each restored rule is
    listed): here, with a terminal, the handler is told to ask; without one, nothing is read and nothing changes."""
    if command_args.get('dry_run'):
        return True
    import sys
    from knack.log import get_logger
    if not sys.stdin.isatty():
        get_logger(__name__).warning('Unable to prompt for confirmation as no tty available. Use --yes.')
        return False
    cli_ctx.data[CONFIRM_IN_HANDLER] = True
    return True


def load_command_table(self, _):
    from functools import partial
    from azext_jit._format import transform_list_table, transform_show_table, transform_request_table, \
        transform_changes_table, transform_log_table, transform_exposure_table

    with self.command_group('vm jit', is_preview=True, exception_handler=_handle_error) as g:
        g.custom_command('enable', 'enable_jit', table_transformer=transform_changes_table)
        g.custom_show_command('show', 'show_jit', table_transformer=transform_show_table)
        g.custom_command('list', 'list_jit', table_transformer=transform_list_table)
        g.custom_command('request', 'request_access', table_transformer=transform_request_table)
        g.custom_command('revoke', 'revoke_access', table_transformer=transform_changes_table)
        g.custom_command('disable', 'disable_jit', confirmation=partial(_confirm_disable, self.cli_ctx),
                         table_transformer=transform_changes_table)
        g.custom_command('cleanup', 'cleanup_jit', table_transformer=transform_changes_table)
        g.custom_command('approve', 'approve_request')
        g.custom_command('deny', 'deny_request')
        g.custom_command('log', 'log_jit', table_transformer=transform_log_table)
        g.custom_command('exposure', 'exposure_jit', table_transformer=transform_exposure_table)
