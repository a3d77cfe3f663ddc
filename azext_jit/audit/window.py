# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The time range of `az vm jit log`: `--offset` back from `--end-time` (default now), or `--start-time` [to
`--end-time`]. Checked before anything is read: the Activity Log keeps 90 days and refuses older ranges."""
import datetime as dt

from azext_jit.errors import BadInput, UsageError

DEFAULT_OFFSET = dt.timedelta(days=7)
RETENTION = dt.timedelta(days=90)
# Activity Log events reach the log minutes after they happen (Azure documents minutes; 20 covers most reports).
LAG = dt.timedelta(minutes=20)


def _time(text, option):
    from azext_jit.times import parse_time
    try:
        return parse_time(str(text))
    except (ValueError, OverflowError):
        raise BadInput(f"Invalid {option} '{text}': not an ISO 8601 date and time.",
                       f"Use UTC like {option} 2026-11-30T09:00:00Z") from None


def window(now, offset=None, start_time=None, end_time=None):
    """(start, end) as aware UTC datetimes. `now` is Azure's time (or the local clock before any answer)."""
    from azext_jit.durations import parse_duration
    if offset is not None and start_time is not None:
        raise UsageError('Use either --offset or --start-time, not both.',
                         'Drop --offset, or give --offset with --end-time (it counts back from the end).')
    end = _time(end_time, '--end-time') if end_time is not None else now
    if start_time is not None:
        start = _time(start_time, '--start-time')
    else:
        span = parse_duration(offset, '--offset') if offset is not None else DEFAULT_OFFSET
        if span > RETENTION:
            raise _beyond_retention()
        try:
            start = end - span
        except OverflowError:
            raise _beyond_retention() from None
    end = min(end, now)
    if start >= end:
        raise BadInput(f'The time range is empty: its start is not before its end (Azure\'s time now is '
                       f'{now.strftime("%Y-%m-%dT%H:%M:%SZ")}).',
                       'Give a --start-time before --end-time and before now (or a positive --offset).')
    if start < now - RETENTION:
        raise _beyond_retention()
    return start, end


def _beyond_retention():
    return BadInput('The Activity Log keeps 90 days: the range starts earlier than that.',
                    'Use --offset 90d or less. To keep the trail longer, export the Activity Log to a Log Analytics '
                    'workspace (README: "Keeping the trail").')


LOOKBACK = dt.timedelta(hours=48)   # an ask may wait a day for its decision, and access lasts up to a day
EDGE = dt.timedelta(minutes=10)     # Azure refuses a start at its 90 days' edge: clocks differ


def query_start(start, now):
    """Where the query starts: LOOKBACK earlier than the range (to find the ask and opening of what happens in
    it), but never beyond what the Activity Log keeps (less a margin for clocks: Azure refuses older starts)."""
    return max(start - LOOKBACK, now - RETENTION + EDGE)


def may_still_arrive(end, now):
    """Whether events of the window's last minutes may not be in the log yet."""
    return end > now - LAG
