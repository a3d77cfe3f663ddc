# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""`az vm jit`: Just-In-Time access to virtual machines' management ports.

The command loader. `az` imports this module on every `az vm ...` call, so it imports nothing heavy: the SDKs
load only inside the handlers that need them. Outside `az` (the unattended cleanup runner, installed without
azure-cli-core) there is no command loader to define, and the package imports without az.
"""

try:
    from azure.cli.core import AzCommandsLoader
except ImportError:   # the cleanup runner, outside az
    AzCommandsLoader = None

if AzCommandsLoader is not None:
    from azext_jit._help import helps  # noqa: F401  pylint: disable=unused-import

    class JitCommandsLoader(AzCommandsLoader):

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

    COMMAND_LOADER_CLS = JitCommandsLoader
