# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Failures as az shows them: the extension's own failures and SDK errors become azclierror types here, in one
place. Bad input ends the command with exit code 2 (as argparse errors do), before anything is written."""
from azure.cli.core import azclierror

from azext_jit import errors

_CLI_TYPES = [
    (errors.BadInput, azclierror.InvalidArgumentValueError),
    (errors.MissingInput, azclierror.RequiredArgumentMissingError),
    (errors.UsageError, azclierror.ArgumentUsageError),
    (errors.NotFound, azclierror.ResourceNotFoundError),
    (errors.NotAllowed, azclierror.UnauthorizedError),
    (errors.AzureRefused, azclierror.BadRequestError),
    (errors.ConnectionFailed, azclierror.AzureConnectionError),
    (errors.AzureFailed, azclierror.AzureResponseError),
    (errors.NotPossible, azclierror.ValidationError),
]
_INPUT = (errors.BadInput, errors.MissingInput, errors.UsageError, azclierror.InvalidArgumentValueError,
          azclierror.RequiredArgumentMissingError, azclierror.MutuallyExclusiveArgumentError,
          azclierror.ArgumentUsageError)


def to_cli_error(err):
    """The azclierror for one of the extension's failures."""
    cli_type = next((t for kind, t in _CLI_TYPES if isinstance(err, kind)), azclierror.ValidationError)
    return cli_type(err.message, err.recommendation)


def exit_bad_input(err):
    """Print an argument error the way az prints errors and end with exit code 2."""
    if isinstance(err, errors.JitError):
        err = to_cli_error(err)
    err.print_error()
    err.send_telemetry()
    raise SystemExit(2)


def handle_exception(ex):
    """The command group's exception_handler: returns nothing, always raises."""
    if isinstance(ex, _INPUT):
        exit_bad_input(ex)
    if isinstance(ex, errors.JitError):
        raise to_cli_error(ex) from ex
    from azure.core.exceptions import AzureError
    if isinstance(ex, AzureError):   # error answers, operations that ended Failed, lost connections
        raise to_cli_error(errors.explain_http_error(ex)) from ex
    raise ex
