# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The network security group, the Azure resource: reading and matching its rules, priorities, conflicts and
rule I/O. Nothing here belongs to one JIT mode; each mode's own rule names and records live with the mode."""
