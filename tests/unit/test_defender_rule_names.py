# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Recognising Defender for Cloud's JIT rules by their names."""
import pytest

from azext_jit.modes import nsg_mode_records as records
from azext_jit.modes.defender import is_defender_rule
from tests.unit.rule_samples import DEFENDER_NAMES


@pytest.mark.parametrize("name", DEFENDER_NAMES)
def test_defender_names_recognised(name):
    assert is_defender_rule({"name": name})
    assert not records.is_ours(name)


@pytest.mark.parametrize("name", ["SecurityCenter-JITRule", "SecurityCenter-JITRule_123_notahex",
                                  "SecurityCenter-JITRule-123-8C18BF8921F041989344B4F1E3A0C37",  # 31 hex
                                  "MySecurityCenter-JITRule_1_62799A5740DE464DB71C4F619369BBAD", "allow-ssh"])
def test_not_defender(name):
    assert not is_defender_rule({"name": name})
