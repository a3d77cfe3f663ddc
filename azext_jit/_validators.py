# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Cheap local checks of arguments, before any call to Azure. Bad input ends here with exit code 2."""


def _parse(namespace, attribute, parser):
    from azext_jit.cli_errors import exit_bad_input
    from azext_jit.errors import BadInput
    value = getattr(namespace, attribute, None)
    if value is None:
        return
    try:
        setattr(namespace, attribute, parser(value))
    except BadInput as err:
        exit_bad_input(err)


def validate_ports(namespace):
    from azext_jit.ports import parse_ports
    _parse(namespace, 'ports', parse_ports)


def validate_duration(namespace):
    from azext_jit.durations import parse_duration
    _parse(namespace, 'duration', parse_duration)


def validate_timeout(namespace):
    from azext_jit.durations import parse_duration
    _parse(namespace, 'timeout', lambda text: parse_duration(text, option='--timeout'))


def validate_max_duration(namespace):
    from azext_jit.durations import parse_duration, check_max_duration

    def parse(text):
        value = parse_duration(text)
        check_max_duration(value)
        return value
    _parse(namespace, 'max_duration', parse)


def validate_source(namespace):
    from azext_jit.addresses import normalize_prefix
    _parse(namespace, 'source', normalize_prefix)


def validate_allowed_sources(namespace):
    from azext_jit.addresses import normalize_prefix
    _parse(namespace, 'allowed_sources', lambda values: [normalize_prefix(v) for v in values])
