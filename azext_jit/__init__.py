# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""`az vm jit`: Just-In-Time access to virtual machines' management ports.

`az` asks this package for `COMMAND_LOADER_CLS` on every `az vm ...` call; the loader (`_loader.py`) is imported
only then, so code that runs outside az (the unattended cleanup runner, installed without azure-cli-core) imports
nothing from az.
"""


def __getattr__(name):
    if name in ('COMMAND_LOADER_CLS', 'JitCommandsLoader'):
        from azext_jit._loader import JitCommandsLoader
        return JitCommandsLoader
    raise AttributeError(f"module 'azext_jit' has no attribute '{name}'")
