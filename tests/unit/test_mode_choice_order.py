# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Which mode `enable` gives each VM when the subscription has no Defender for Servers Plan 2 but Defender's API still
answers (the plan was turned off): a VM whose tags say it is in Defender mode stays there, a new VM goes to NSG mode,
whatever order they come in; Defender's policies are not read for the new VM."""
from types import SimpleNamespace

import pytest

from azext_jit.modes import defender
from azext_jit.modes.chooser import Modes
from azext_jit.targets import VmTarget

POLICY_ID = ('/subscriptions/s/resourceGroups/g/providers/Microsoft.Security/locations/westeurope/'
             'jitNetworkAccessPolicies/default')


def vm_id(name):
    return f'/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/{name}'


class Azure:
    """Defender's API as it might answer with the plan off: pricing Free, the policies still readable."""

    def __init__(self):
        self.asked = []
        self.subscription_id = 's'
        self.rest = SimpleNamespace(calls=0)
        self.security = SimpleNamespace(
            pricings=SimpleNamespace(get=lambda name: self._ask('pricing', {'properties': {'pricingTier': 'Free'}})),
            jit_network_access_policies=SimpleNamespace(
                list_by_resource_group_and_region=lambda group, location: self._ask('policies', [
                    {'id': POLICY_ID, 'name': 'default',
                     'properties': {'virtualMachines': [{'id': vm_id('kept'), 'ports': [
                         {'number': 22, 'protocol': '*', 'maxRequestAccessDuration': 'PT3H',
                          'allowedSourceAddressPrefix': '*'}]}]}}])))

    def _ask(self, what, answer):
        self.asked.append(what)
        self.rest.calls += 1
        return answer


def target(name, tags=None):
    return VmTarget(id=vm_id(name), name=name, resource_group='g', location='westeurope', tags=tags or {})


@pytest.mark.parametrize('order', [('new', 'kept'), ('kept', 'new')])
def test_without_the_plan_a_vm_in_defender_mode_stays_and_a_new_one_goes_to_nsg_mode(order):
    azure = Azure()
    modes = Modes(azure, announce=False)
    vms = {'new': target('new'), 'kept': target('kept', {defender.MARKER: POLICY_ID})}
    chosen, asked = {}, {}
    for name in order:
        before = len(azure.asked)
        chosen[name] = modes.for_enable(vms[name]).name
        asked[name] = azure.asked[before:]
    assert chosen == {'new': 'nsg', 'kept': 'defender'}
    assert 'policies' not in asked['new'], asked   # the plan says Defender cannot protect it: no policy read for it
    assert azure.asked.count('pricing') == 1, azure.asked
