# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The JIT modes: where a VM's policy lives and who opens and closes its ports.

Each mode is one module implementing `modes.base.JitMode`. This registry is all the rest of the extension knows
of them, in order of preference for a VM that has no JIT yet: `--mode auto` gives it the first mode that serves new
VMs, is available here and can hold it, so the last one should be a mode that always can (NSG mode needs nothing
but the VM's NSG). A new mode goes before it.
It imports nothing: `_params.py`, loaded on every `az vm ...` call, takes the `--mode` choices from it.
"""

# name -> ("module:class", what `--mode NAME` means, for help), the module loaded only when a command uses it.
REGISTERED = {
    'defender': ('azext_jit.modes.defender:DefenderMode',
                 "uses Defender for Cloud's jitNetworkAccessPolicies (needs Defender for Servers Plan 2), which "
                 "expires its own rules"),
    'nsg': ('azext_jit.modes.nsg_mode:NsgMode',
            "edits the VM's network security group directly; `cleanup` removes its expired rules"),
}
AUTO = 'auto'


def mode_choices():
    """The values `--mode` accepts: `auto`, then each registered mode."""
    return [AUTO] + list(REGISTERED)


def mode_help():
    """`--mode`'s help, from the registered modes."""
    modes = '; '.join(f'`{name}` {text}' for name, (_, text) in REGISTERED.items())
    return (f"Where JIT lives: {modes}; `auto` finds the VM's existing configuration, and for a new VM takes the first "
            "of these that the subscription supports.")


def load(name):
    """The class of a registered mode."""
    import importlib
    module, cls = REGISTERED[name][0].split(':')
    return getattr(importlib.import_module(module), cls)
