# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Times as Azure writes them: ISO 8601 in UTC, `Z`-suffixed, at second precision when we write them."""
import datetime as dt
import re

STAMP_FORMAT = '%Y-%m-%dT%H:%M:%SZ'


def utc(moment):
    """An aware UTC datetime at second precision; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).replace(microsecond=0)


def stamp(moment):
    """`2026-11-25T15:00:00Z`, or None for None."""
    return utc(moment).strftime(STAMP_FORMAT) if moment else None


def parse_time(text):
    """An ISO 8601 UTC time as Azure writes it (up to 7 fractional digits, `Z`) as an aware datetime."""
    text = re.sub(r'(\.\d{6})\d+', r'\1', text.strip().replace('Z', '+00:00'))
    moment = dt.datetime.fromisoformat(text)
    return moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment.astimezone(dt.timezone.utc)
