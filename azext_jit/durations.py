# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Durations as users type them and as Azure stores them.

Users type ``--duration 60`` (minutes, the unit people think in for access windows), ``90m``, ``2h``,
``1h30m`` or ISO 8601 (``PT2H``, ``P1D``) because that is what the portal and the REST API show.
Defender for Cloud stores ``maxRequestAccessDuration`` as ISO 8601 and accepts PT5M..P1D, so every
duration that reaches Azure goes through :func:`to_iso8601`, and every bound is checked here first so
the user gets a message naming the rule instead of a bare 400 from the service.
"""

import re
from datetime import timedelta

from .errors import BadInput

MIN_DURATION = timedelta(minutes=5)
MAX_DURATION = timedelta(hours=24)

_FORMATS = "minutes as a number (60), 90m, 2h, 1h30m, or ISO 8601 (PT2H, PT90M, P1D)"

# Short form: any of d/h/m/s in that order, each at most once, e.g. "1h30m", "90m", "1d".
_SHORT_RE = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m(?:in)?)?(?:(?P<s>\d+)s)?$", re.ASCII)
# ISO 8601 duration restricted to days and time parts: years and months have no fixed length.
_ISO_RE = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?=\d)(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$", re.ASCII)
_ISO_MONTHS_RE = re.compile(r"^P\d+M$", re.ASCII)


def _bounds_text():
    return f"between {_spell(MIN_DURATION)} and {_spell(MAX_DURATION)}"


def _spell(td):
    """'5 minutes' / '24 hours' for the fixed limits, which read better spelled out in sentences."""
    minutes = int(td.total_seconds() // 60)
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'' if hours == 1 else 's'}"
    return f"{minutes} minute{'' if minutes == 1 else 's'}"


def _invalid(text, rule, option):
    return BadInput(
        f"Invalid duration '{text}': {rule}.",
        f"Use a duration {_bounds_text()}, e.g. {option} 90m")


def parse_duration(text, option="--duration"):
    """Parse a user-typed or Azure-stored duration into a ``timedelta``.

    A plain integer is minutes (``--duration 60``), matching how az users think about access windows.
    Units are case-insensitive. Bounds are NOT checked here, because the bounds depend on the use
    (a policy maximum vs. a request limited by that maximum): see :func:`check_max_duration` and
    ``policy.check_request``. Zero, negative and unparsable values are refused.

    ``option`` only names the argument in the recommendation of an error (``--duration``, ``--max-duration``).
    An ``int`` (minutes) or a ``timedelta`` is accepted as well, so callers need not special-case defaults.
    """
    if isinstance(text, timedelta):
        td = text
        if td <= timedelta(0):
            raise _invalid(describe(td), "it must be longer than zero", option)
        return td
    if isinstance(text, bool):  # bool is an int subclass; True minutes is certainly a bug
        raise _invalid(text, f"use {_FORMATS}", option)
    if isinstance(text, int):
        text = str(text)
    if not isinstance(text, str):
        raise _invalid(text, f"use {_FORMATS}", option)

    original = text
    compact = re.sub(r"\s+", "", text).upper()
    if not compact:
        raise _invalid(original, f"use {_FORMATS}", option)
    if compact.startswith("-"):
        raise _invalid(original, "it must be longer than zero", option)

    try:
        if compact.isdigit() and compact.isascii():
            td = timedelta(minutes=int(compact))
        elif compact.startswith("P"):
            match = _ISO_RE.match(compact)
            if not match or compact in ("P", "PT"):
                if _ISO_MONTHS_RE.match(compact):
                    raise _invalid(original, "in ISO 8601 'M' without 'T' means months; minutes are written "
                                             f"PT{compact[1:-1]}M", option)
                raise _invalid(original, "not an ISO 8601 duration of days, hours, minutes or seconds; use "
                                         f"{_FORMATS}", option)
            td = _from_parts(match)
        else:
            match = _SHORT_RE.match(compact.lower())
            if not match or not any(match.groupdict().values()):
                raise _invalid(original, f"use {_FORMATS}", option)
            td = _from_parts(match)
    except OverflowError:
        raise _invalid(original, "it is far too long", option) from None

    if td <= timedelta(0):
        raise _invalid(original, "it must be longer than zero", option)
    return td


def _from_parts(match):
    parts = match.groupdict()
    return timedelta(days=int(parts["d"] or 0), hours=int(parts["h"] or 0), minutes=int(parts["m"] or 0),
                     seconds=float(parts["s"] or 0))


def to_iso8601(td):
    """Format a duration the way Defender's API writes it: ``PT3H``, ``PT1H30M``, ``PT24H``.

    Always hours and minutes (never days), so a 24-hour policy reads ``PT24H`` like the limit in the docs;
    seconds appear only when there are any. A non-positive duration is a programming error (``ValueError``).
    """
    if td <= timedelta(0):
        raise ValueError(f"duration must be positive, got {td!r}")
    hours, minutes, seconds = _split(td)
    out = "PT"
    if hours:
        out += f"{hours}H"
    if minutes:
        out += f"{minutes}M"
    if seconds:
        out += f"{_fmt_seconds(seconds)}S"
    return out


def describe(td):
    """Short human text for messages and tables: ``1h30m``, ``3h``, ``5m``, ``24h``, ``4m30s``.

    The same notation users type for ``--duration``, so a message like "the maximum is 3h" can be
    pasted straight back into the command.
    """
    if td < timedelta(0):
        return f"-{describe(-td)}"
    hours, minutes, seconds = _split(td)
    out = ""
    if hours:
        out += f"{hours}h"
    if minutes:
        out += f"{minutes}m"
    if seconds:
        out += f"{_fmt_seconds(seconds)}s"
    return out or "0m"


def _split(td):
    total_us = (td.days * 86400 + td.seconds) * 1_000_000 + td.microseconds
    hours, rest = divmod(total_us, 3600 * 1_000_000)
    minutes, rest = divmod(rest, 60 * 1_000_000)
    return hours, minutes, rest / 1_000_000


def _fmt_seconds(seconds):
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.6f}".rstrip("0").rstrip(".")


def check_max_duration(td, option="--max-duration"):
    """Refuse a policy maximum outside Defender's PT5M..P1D, which the service would reject on PUT.

    NSG mode enforces the same limits so a policy means the same thing in both modes. Returns ``td``.
    """
    if td < MIN_DURATION:
        raise BadInput(
            f"Maximum duration {describe(td)} is below the JIT minimum of {_spell(MIN_DURATION)}.",
            f"Use a duration {_bounds_text()}, e.g. {option} 3h")
    if td > MAX_DURATION:
        raise BadInput(
            f"Maximum duration {describe(td)} is above the JIT limit of {_spell(MAX_DURATION)}.",
            f"Use a duration {_bounds_text()}, e.g. {option} 3h")
    return td
