# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The command loader `az` asks the package for (`COMMAND_LOADER_CLS`). Loaded on every `az vm ...` call, so it
imports nothing heavy: the SDKs load only inside the handlers that need them."""

from azure.cli.core import AzCommandsLoader

from azext_jit._help import helps  # noqa: F401  pylint: disable=unused-import


class JitCommandsLoader(AzCommandsLoader):
    # az records in its command index which module each command came from, by the loader's module, and looks
    # that name up among installed extensions on the next call: it must be the extension's package, or every
    # `az vm ...` call would find the index outdated and load every command module.
    __module__ = 'azext_jit'

    def __init__(self, cli_ctx=None):
        from azure.cli.core.commands import CliCommandType
        custom = CliCommandType(operations_tmpl='azext_jit.custom#{}')
        super().__init__(cli_ctx=cli_ctx, custom_command_type=custom)

    def load_command_table(self, args):
        from azext_jit.commands import load_command_table
        load_command_table(self, args)
        return self.command_table

    def load_arguments(self, command):
        from azext_jit._params import load_arguments
        load_arguments(self, command)
