"""Which mode a VM is in, and which mode a newly enabled VM gets.

A VM's mode is where its policy lives: the VM's own tags (NSG mode) or a Defender policy that lists it.
Looking costs nothing for NSG mode (the VM was read anyway) and one list call for Defender mode, so no
command pays for a pricing lookup except `enable` of a VM that has no JIT yet.
"""
from knack.log import get_logger

from azext_jit import vm_records
from azext_jit.backends.defender import DefenderBackend, defender_plan_enabled, is_unavailable
from azext_jit.backends.nsg import NsgBackend

logger = get_logger(__name__)

BACKENDS = {'defender': DefenderBackend, 'nsg': NsgBackend}


class Modes:
    """One backend instance per mode for the duration of a command (they cache what they read)."""

    def __init__(self, azure, announce=True):
        self.azure = azure
        self._announce = announce  # say so when falling back to NSG mode (enable); reads only log it
        self._backends = {}
        self._warned = False
        self._defender_ok = None   # None: not known yet; False: the API refused once, do not ask again
        self._plan = None          # whether the subscription has Defender for Servers Plan 2 (asked once)

    def backend(self, mode):
        if mode not in self._backends:
            self._backends[mode] = BACKENDS[mode](self.azure)
        return self._backends[mode]

    def defender_usable(self, target):
        """Whether Defender's JIT API answers for the VM's resource group and region."""
        from azure.core.exceptions import HttpResponseError
        if self._defender_ok is False:
            return False
        try:
            self.backend('defender').policies(target.resource_group, target.location)
            return True
        except HttpResponseError as ex:
            if is_unavailable(ex):
                self.warn_fallback(ex)
                self._defender_ok = False
                return False
            raise

    def warn_fallback(self, ex):
        if not self._warned:
            from azext_jit.errors import error_message
            say = logger.warning if self._announce else logger.info
            say("Defender for Cloud's JIT API is not available here (%s); using NSG mode.",
                error_message(ex).split('\n')[0][:160])
            self._warned = True

    def list_defender_policies(self, resource_group=None, required=False):
        """List every Defender policy of the scope at once (one call per page) so per-VM lookups cost nothing."""
        from azure.core.exceptions import HttpResponseError
        try:
            self.backend('defender').all_policies(resource_group)
            self._defender_ok = True
        except HttpResponseError as ex:
            if required or not is_unavailable(ex):
                raise
            self.warn_fallback(ex)
            self._defender_ok = False

    def of(self, target, mode='auto'):
        """The backend holding the VM's JIT configuration, or None when it has none (in `mode`)."""
        if mode in ('nsg', 'auto') and vm_records.POLICY in target.tags:
            return self.backend('nsg')
        if mode in ('defender', 'auto'):
            if mode == 'auto' and not self.defender_usable(target):
                return None
            defender = self.backend('defender')
            if defender.policy_of(target) is not None:
                return defender
        return None

    def all_of(self, target):
        """Every mode that holds configuration for the VM (more than one means a half-done migration)."""
        found = []
        if vm_records.POLICY in target.tags:
            found.append(self.backend('nsg'))
        if self.defender_usable(target) and self.backend('defender').policy_of(target) is not None:
            found.append(self.backend('defender'))
        return found

    def for_enable(self, target, mode='auto'):
        """The mode a VM gets on `enable`: its current one, else Defender when the plan is there."""
        if mode != 'auto':
            return self.backend(mode)
        current = self.of(target, 'auto')
        if current is not None:
            return current
        if self._plan is None:
            self._plan = defender_plan_enabled(self.azure)
        if self._plan and self.defender_usable(target):
            reason = self.backend('defender').cannot_hold(target)
            if reason is None:
                return self.backend('defender')
            logger.warning('%s: %s; using NSG mode for it.', target.describe(), reason)
        return self.backend('nsg')
