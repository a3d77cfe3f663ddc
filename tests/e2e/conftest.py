# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Fixtures of the end-to-end tests beyond `tests/conftest.py`'s."""
import pytest


@pytest.fixture(params=['nsg', 'defender'])
def mode(request):
    """A test taking `mode` runs once with Defender for Servers Plan 2 (Defender mode) and once without (NSG mode)."""
    if request.param == 'nsg':
        request.getfixturevalue('defender_off')
    return request.param
