# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Approval on Microsoft Entra Privileged Identity Management (PIM) for Azure resources.

Under approval a requester is only eligible for the requester role (`roles.py`) at the VM's gate scope (the JIT
policy in Defender mode, the VM's NSG in NSG mode: `JitMode.approval_scope`), so Azure itself refuses to open a
port until a designated approver has approved a PIM activation. `client.py` makes the calls; `asks.py` carries
what was asked in the activation's justification.
"""
