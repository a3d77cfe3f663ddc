# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""A fleet read once: VMs, NICs, public IPs, NSGs and VNets of every subscription in scope from one paged Resource
Graph query, and JIT's own state per subscription (the modes: NSG mode's policy is on the VM's tags, which the query
carries; Defender's policies are in no Resource Graph table, so one paged list per subscription that has VMs).

`list` and `exposure` read through a Survey; nothing here writes. Resource Graph lags ARM by seconds to minutes,
which is fine for a report: whatever writes (`exposure --protect`, fleet cleanup) reads its resources fresh first.
"""
from azext_jit.log import get_logger
from azext_jit.modes import AUTO

logger = get_logger(__name__)


class Survey:
    """The estate of a scope and, per subscription, the modes that say which VMs JIT holds."""

    def __init__(self, azure, scope, mode=AUTO, progress=None):
        from azext_jit.fleet import graph, queries
        from azext_jit.fleet.estate import Estate
        from azext_jit.fleet.scope import unreadable
        self.azure = azure.detached()   # NSGs from Resource Graph fill its caches, never a writer's
        self.scope = scope
        self.mode = mode
        rows = graph.query(azure, queries.estate(scope.resource_group), scope.subscriptions,
                           scope.management_groups,
                           progress=(lambda n: progress('Reading Resource Graph', n)) if progress else None)
        self.estate = Estate.from_rows(rows)
        self._modes = {}
        for sub in unreadable(azure, scope.subscriptions):   # Resource Graph leaves them out without a word
            logger.warning('Subscription %s is not covered: this identity cannot read it (no role there, or another '
                           "tenant's), so Resource Graph showed nothing of it.", sub)

    def vms(self):
        return self.estate.vms()

    def modes(self, subscription):
        """The modes of one subscription, their policies read once (Defender: one paged list), and NSG reads served
        from what Resource Graph returned (no call per NSG)."""
        key = subscription.lower()
        if key not in self._modes:
            from azext_jit.modes.chooser import Modes
            azure = self.azure.for_subscription(subscription)
            for nsg in self.estate.nsgs():
                if nsg['id'].lower().startswith(f'/subscriptions/{key}/'):
                    azure.nsgs.setdefault(nsg['id'].lower(), nsg)
            modes = Modes(azure, announce=False)
            modes.prefetch(None, self.mode)
            self._modes[key] = modes
        return self._modes[key]

    def target(self, vm):
        return self.estate.target(vm)

    def holding(self, vm, target=None):
        """The modes holding the VM's JIT configuration (in `mode`, when one was asked for)."""
        return self.modes(vm['subscriptionId']).holding(target or self.target(vm), self.mode)

    def jit_mode(self, vm):
        """The mode that protects the VM, or None: held is not enough (a tag anyone with Tag Contributor can write
        says "NSG mode"); its policy must read and its deny rules close every port of it."""
        from azext_jit.errors import NotPossible
        target = self.target(vm)
        held = self.holding(vm, target)
        if not held:
            return None
        try:
            policy = held[0].policy_of(target)
            if policy is None or (target.nsg_id and held[0].unprotected_ports(target, policy)):
                return None
        except NotPossible:
            return None
        return held[0].name


def fleet_list(azure, scope, status='all', mode=AUTO, progress=None):
    """`az vm jit list` across subscriptions: every VM JIT holds, as `list` shows it, with its subscription."""
    from azext_jit import views
    survey = Survey(azure, scope, mode, progress)
    vms = survey.vms()
    out = []
    for index, vm in enumerate(vms):
        target = survey.target(vm)
        held = survey.holding(vm, target)
        if held:
            view = views.vm_view(target, held, status=status, rules=False)
            view['subscription'] = vm['subscriptionId']
            out.append(view)
        if progress:
            progress('Reading JIT state', index + 1, len(vms))
    if status == 'pending':   # and the requests under approval waiting for your decision, or your own
        from azext_jit.pim.decisions import pending_by_vm
        waiting = {}
        for subscription in sorted({view['subscription'] for view in out}, key=str.lower):   # PIM: per subscription
            waiting.update(pending_by_vm(azure.for_subscription(subscription)))
        for view in out:
            view['requests'] += waiting.get(view['id'].rstrip('/').lower(), [])
    return out
