# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The body of a Defender JIT policy PUT built from what was read: only the fields the API takes."""
from azext_jit.modes.defender import writable_body

VM_ID = '/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm'


def read_back():
    """A policy as Defender answers a GET: read-only and unknown fields at every level, and empty ones."""
    return {
        'id': '/subscriptions/s/.../jitNetworkAccessPolicies/default', 'name': 'default', 'location': 'westeurope',
        'type': 'Microsoft.Security/locations/jitNetworkAccessPolicies', 'kind': 'Basic', 'etag': 'x',
        'properties': {
            'provisioningState': 'Succeeded', 'futureField': 1,
            'virtualMachines': [{'id': VM_ID, 'publicIpAddress': None, 'extra': True, 'ports': [
                {'number': 22, 'protocol': '*', 'allowedSourceAddressPrefix': '*', 'maxRequestAccessDuration': 'PT3H',
                 'newer': 'x'}]}],
            'requests': [{'startTimeUtc': '2026-11-30T10:00:00Z', 'requestor': '', 'justification': None,
                          'status': 'x', 'virtualMachines': [{'id': VM_ID, 'other': 1, 'ports': [
                              {'number': 22, 'endTimeUtc': '2026-11-30T11:00:00Z', 'status': 'Initiated',
                               'statusReason': 'UserRequested', 'allowedSourceAddressPrefix': '1.2.3.4',
                               'mappedPort': None, 'unknown': 2}]}]}],
        },
    }


def test_a_policy_read_back_is_written_with_only_the_fields_a_put_takes():
    assert writable_body(read_back()) == {
        'kind': 'Basic',
        'properties': {
            'virtualMachines': [{'id': VM_ID, 'ports': [
                {'number': 22, 'protocol': '*', 'allowedSourceAddressPrefix': '*',
                 'maxRequestAccessDuration': 'PT3H'}]}],
            'requests': [{'startTimeUtc': '2026-11-30T10:00:00Z', 'requestor': '', 'virtualMachines': [
                {'id': VM_ID, 'ports': [{'number': 22, 'endTimeUtc': '2026-11-30T11:00:00Z', 'status': 'Initiated',
                                         'statusReason': 'UserRequested',
                                         'allowedSourceAddressPrefix': '1.2.3.4'}]}]}],
        },
    }


def test_a_request_port_keeps_its_own_fields_and_a_policy_port_its_own():
    body = read_back()
    body['properties']['virtualMachines'][0]['ports'][0]['status'] = 'Initiated'         # a request port's field
    body['properties']['requests'][0]['virtualMachines'][0]['ports'][0]['protocol'] = '*'  # a policy port's field
    written = writable_body(body)['properties']
    assert 'status' not in written['virtualMachines'][0]['ports'][0]
    assert 'protocol' not in written['requests'][0]['virtualMachines'][0]['ports'][0]
