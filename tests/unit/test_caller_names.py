# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""How a caller is named in requests: a managed identity by its resource, not as `systemAssignedIdentity`."""
import base64
import json

from azext_jit.caller import caller_name, token_claims

VM_MIRID = ('/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/ops/providers/'
            'Microsoft.Compute/virtualMachines/jumpbox')
UAI_MIRID = ('/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/ops/providers/'
             'Microsoft.ManagedIdentity/userAssignedIdentities/jit-bot')


def test_two_system_assigned_identities_are_named_by_their_resources():
    first = caller_name('systemAssignedIdentity', {'xms_mirid': VM_MIRID, 'oid': 'a'})
    second = caller_name('systemAssignedIdentity', {'xms_mirid': VM_MIRID.replace('jumpbox', 'runner'), 'oid': 'b'})
    assert first == 'ops/virtualMachines/jumpbox' and second == 'ops/virtualMachines/runner'


def test_a_user_assigned_identity_is_named_by_its_resource():
    assert caller_name('userAssignedIdentity', {'xms_mirid': UAI_MIRID}) == 'ops/userAssignedIdentities/jit-bot'


def test_an_activity_log_event_of_a_managed_identity_gets_the_same_name_as_whoami():
    # The log names the caller by its principal id; the claims carry the resource.
    assert caller_name('9f1c0000-0000-0000-0000-000000000000', {'xms_mirid': VM_MIRID}) == \
        caller_name('systemAssignedIdentity', {'xms_mirid': VM_MIRID})


def test_without_a_resource_claim_a_managed_identity_is_named_by_its_principal_id():
    assert caller_name('systemAssignedIdentity', {'oid': '1234'}) == 'managed identity 1234'


def test_users_and_service_principals_keep_their_names():
    assert caller_name('alice@contoso.com', {'oid': 'x'}) == 'alice@contoso.com'
    assert caller_name('0b5a3c2e-1f4d-4e6a-9b8c-7d6e5f4a3b2c', {}) == '0b5a3c2e-1f4d-4e6a-9b8c-7d6e5f4a3b2c'


def test_token_claims_reads_a_jwt_and_survives_garbage():
    payload = base64.urlsafe_b64encode(json.dumps({'xms_mirid': VM_MIRID}).encode()).decode().rstrip('=')
    assert token_claims('h.{}.s'.format(payload)) == {'xms_mirid': VM_MIRID}
    assert token_claims('not a token') == {}
