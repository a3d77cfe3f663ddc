# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Which mode a VM is in, and which mode a newly enabled VM gets.

A VM's mode is where its policy lives. Modes whose policy sits on the VM itself (NSG mode's tags) are asked first,
for nothing; then the others (Defender: one list call per resource group and region, or one for a whole list).
Only `enable` asks whether a mode serves new VMs (Defender: the pricing lookup), first for a VM whose tags claim no
mode: a mode that does not is then not asked whether it holds the VM, and Defender's policy read comes right before
its write.
"""
from azext_jit import modes as registry
from azext_jit.errors import NotPossible
from azext_jit.log import get_logger

logger = get_logger(__name__)


class Modes:
    """One instance per registered mode for the duration of a command (they cache what they read)."""

    def __init__(self, azure, announce=True):
        self.azure = azure
        self._announce = announce  # say so when a mode is unavailable (enable); reads only log it
        self._modes = {}
        self._warned = set()

    def get(self, name):
        if name not in self._modes:
            self._modes[name] = registry.load(name)(self.azure)
        return self._modes[name]

    def each(self, name=registry.AUTO):
        """Every registered mode (or just `name`), cheapest policy lookup first."""
        names = list(registry.REGISTERED) if name == registry.AUTO else [name]
        return sorted((self.get(n) for n in names), key=lambda m: not m.policy_on_vm)

    def _usable(self, mode, target):
        if mode.available(target):
            return True
        self._warn_unavailable(mode)
        return False

    def _warn_unavailable(self, mode, reason=None):
        """Say once why a mode is left out (`reason`, else why its service does not answer), and what is used."""
        reason = reason or mode.unavailable_because
        if mode.name not in self._warned and reason:
            say = logger.warning if self._announce else logger.info
            say('%s; using %s mode.', reason,
                ' or '.join(self.get(m).title for m in registry.REGISTERED if m != mode.name))
            self._warned.add(mode.name)

    def not_serving(self, target):
        """For a VM whose tags claim no mode (most likely a new one): the modes that serve no new VM here, asked first
        (Defender: its plan), which are then not asked whether they hold it. Defender without its plan protects
        nothing and opens nothing; and with the plan, its policy read comes last, right before the write that puts
        it back (a PUT replaces the whole policy). An error while asking is no answer: that mode is asked whether it
        holds the VM, as for a VM a mode claims."""
        from azure.core.exceptions import HttpResponseError
        if any(mode.claimed_by_vm(target) for mode in self.each()):
            return []
        skip = []
        for mode in self.each():
            try:
                if not mode.can_serve_new_vms():
                    skip.append(mode)
            except HttpResponseError as ex:
                logger.debug('Could not ask whether %s mode serves new VMs: %s', mode.title, ex)
        return skip

    def prefetch(self, resource_group=None, name=registry.AUTO):
        """Let every mode read the policies of a whole resource group (or the subscription) at once."""
        for mode in self.each(name):
            if not mode.prefetch(resource_group, required=name != registry.AUTO):
                self._warn_unavailable(mode)

    def _holds(self, mode, target, name):
        return (mode.policy_on_vm or name != registry.AUTO or self._usable(mode, target)) and mode.holds(target)

    def holding(self, target, name=registry.AUTO):
        """The modes that hold configuration for the VM (`name`: only that one). More than one means a half-done
        move between modes."""
        return [mode for mode in self.each(name) if self._holds(mode, target, name)]

    def of(self, target, name=registry.AUTO):
        """The mode holding the VM's JIT configuration, or None when it has none (in `name`). Stops at the first
        one found, cheapest lookup first."""
        return next((mode for mode in self.each(name) if self._holds(mode, target, name)), None)

    def for_enable(self, target, name=registry.AUTO):
        """The mode a VM gets on `enable`: the one asked for; else its current one; else the first registered mode
        that serves new VMs, is available here and can hold it (the last registered mode is the fallback that
        needs nothing, see `modes/__init__.py`)."""
        if name != registry.AUTO:
            return self.get(name)
        skip = self.not_serving(target)
        current = next((mode for mode in self.each() if mode not in skip and self._holds(mode, target, name)), None)
        if current is not None:
            return current
        refusals = []
        for mode in (self.get(n) for n in registry.REGISTERED):
            if not mode.can_serve_new_vms():
                self._warn_unavailable(mode, mode.not_serving_because)
                continue
            if self._usable(mode, target):
                reason = mode.cannot_hold(target)
                if reason is None:
                    for refusal in refusals:
                        logger.warning('%s: %s; using %s mode for it.', target.describe(), refusal, mode.title)
                    return mode
                refusals.append(reason)
        raise NotPossible(f'No JIT mode can protect {target.describe()}: {"; ".join(refusals)}.',
                          'Choose a mode with --mode.')
