# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""`az vm jit log`: the JIT story of a VM or a resource group, told from what Azure itself recorded.

- `window.py`: the time range a user asks for (bad input refused before anything is read).
- `happenings.py`: one Activity Log event read as a JIT happening (who did what, when), the pieces every mode
  shares; each mode reads its own events (`JitMode.trail`), and `azext_jit/pim/trail.py` reads PIM's.
- `story.py`: happenings joined into one entry per request ("asked by X, approved by Y, opened, closed at T"),
  oldest first, in the shape `log` prints.
- `reading.py`: what is read from Azure, and how few calls it takes.
"""
