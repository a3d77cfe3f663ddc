# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Which requests a plain `revoke` takes for the caller's own: the requestor equals the signed-in account (UPN or
app id) whatever the case; a request nobody can attribute, or an account that could not be named, is nobody's."""
from azext_jit.access_requests import AccessRequest
from azext_jit.revocations import own_and_others


def _request(rid, requestor):
    return AccessRequest(rid, 'vm-id', 'vm', 'rg', 'nsg', requestor, None, [])


def _ids(requests):
    return [r.id for r in requests]


def test_own_requests_are_matched_by_account_name_whatever_the_case():
    requests = [_request('a', 'Alice@Contoso.com'), _request('b', 'bob@contoso.com')]
    mine, others = own_and_others(requests, 'alice@contoso.COM')
    assert (_ids(mine), _ids(others)) == (['a'], ['b'])


def test_a_service_principal_is_matched_by_its_app_id():
    app_id = '927E248D-814C-5D54-B602-EEA2A305B9A6'
    mine, others = own_and_others([_request('a', app_id.lower()), _request('b', 'alice@contoso.com')], app_id)
    assert (_ids(mine), _ids(others)) == (['a'], ['b'])


def test_a_request_without_a_known_requestor_is_nobodys():
    mine, others = own_and_others([_request('a', None), _request('b', '')], 'alice@contoso.com')
    assert (_ids(mine), _ids(others)) == ([], ['a', 'b'])


def test_an_account_that_could_not_be_named_owns_nothing_not_even_requests_marked_unknown():
    requests = [_request('a', 'unknown'), _request('b', None)]
    for account in ('unknown', '', None):
        mine, others = own_and_others(requests, account)
        assert (_ids(mine), _ids(others)) == ([], ['a', 'b'])
