# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Loggers named as knack names them (`cli.<module>`), so that inside `az` they print like every az warning and
honour `--verbose`/`--only-show-errors`, while code that also runs outside az (the cleanup runner) needs no knack."""
import logging


def get_logger(name):
    return logging.getLogger(f"cli.{name}")
