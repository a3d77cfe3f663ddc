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


def _confirm_disable(command_args):
    """`disable` asks first, except for a dry run (which changes nothing)."""
    if command_args.get('dry_run'):
        return True
    from knack.prompting import prompt_y_n, NoTTYException
    from knack.log import get_logger
    target = command_args.get('vm_name') or 'the VM'
    try:
        return prompt_y_n(f"Take '{target}' out of JIT? Its protecting rules go and the rules 'enable' removed come "
                          "back.")
    except NoTTYException:
        get_logger(__name__).warning('Unable to prompt for confirmation as no tty available. Use --yes.')
        return False


def load_command_table(self, _):
    from azext_jit._format import transform_list_table, transform_show_table, transform_request_table, \
        transform_changes_table

    with self.command_group('vm jit', is_preview=True, exception_handler=_handle_error) as g:
        g.custom_command('enable', 'enable_jit', table_transformer=transform_changes_table)
        g.custom_show_command('show', 'show_jit', table_transformer=transform_show_table)
        g.custom_command('list', 'list_jit', table_transformer=transform_list_table)
        g.custom_command('request', 'request_access', table_transformer=transform_request_table)
        g.custom_command('revoke', 'revoke_access', table_transformer=transform_changes_table)
        g.custom_command('disable', 'disable_jit', confirmation=_confirm_disable,
                         table_transformer=transform_changes_table)
        g.custom_command('cleanup', 'cleanup_jit', table_transformer=transform_changes_table)
