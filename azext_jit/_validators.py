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


def _fleet_scope_conflicts(namespace):
    from azext_jit.errors import UsageError
    named = [flag for flag, attribute in (('--subscriptions', 'subscriptions'),
                                          ('--all-subscriptions', 'all_subscriptions'),
                                          ('--management-groups', 'management_groups'))
             if getattr(namespace, attribute, None)]
    if len(named) > 1:
        raise UsageError(f"{' and '.join(named)} cannot be used together.",
                         'Name subscriptions, or management groups, or use --all-subscriptions: one of them.')


def validate_subscription_ids(namespace):
    """Subscriptions by id or name (resolved by the command, as --subscription is); not beside --all-subscriptions
    or --management-groups."""
    from azext_jit.errors import BadInput

    def parse(values):
        values = [str(v).strip() for v in values]
        if not all(values):
            raise BadInput('--subscriptions names an empty subscription.',
                           'Give subscription ids or names, as `az account list -o table` shows them.')
        return values
    _parse_scope(namespace, 'subscriptions', parse)


def validate_management_groups(namespace):
    """Management group ids (names, not display names): at most 10, as Resource Graph takes them."""
    import re
    from azext_jit.errors import BadInput

    def parse(values):
        groups = list(dict.fromkeys(str(v).strip() for v in values))
        for value in groups:
            if not re.fullmatch(r'[A-Za-z0-9_().-]{1,90}', value):
                raise BadInput(f"'{value}' is not a management group id.",
                               'Give the group\'s id (its name), as `az account management-group list --query '
                               '[].name -o tsv` prints it.')
        if len(groups) > 10:
            raise BadInput(f'{len(groups)} management groups given; Resource Graph takes at most 10 per query.',
                           'Name a parent group that holds them, or run the command once per set of 10.')
        return groups
    _parse_scope(namespace, 'management_groups', parse)


def _parse_scope(namespace, attribute, parser):
    from azext_jit.cli_errors import exit_bad_input
    from azext_jit.errors import BadInput, UsageError
    try:
        _fleet_scope_conflicts(namespace)
    except (BadInput, UsageError) as err:
        exit_bad_input(err)
    _parse(namespace, attribute, parser)
