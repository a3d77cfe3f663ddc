# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Durations: the formats commands.md promises, Defender's PT5M..P1D bounds, and the ISO form sent to Azure."""

from datetime import timedelta

import pytest
from azext_jit.errors import BadInput

from azext_jit.durations import (MAX_DURATION, MIN_DURATION, check_max_duration, describe, parse_duration,
                                 to_iso8601)

H = timedelta(hours=1)
M = timedelta(minutes=1)


@pytest.mark.parametrize("text, expected", [
    ("60", 60 * M),            # plain number = minutes, as in `--duration 60`
    ("5", 5 * M),
    ("90m", 90 * M),
    ("45min", 45 * M),
    ("2h", 2 * H),
    ("2H", 2 * H),
    ("1h30m", 90 * M),
    ("1h 30m", 90 * M),
    ("1d", 24 * H),
    ("PT2H", 2 * H),
    ("pt2h", 2 * H),
    ("PT90M", 90 * M),
    ("PT1H30M", 90 * M),
    ("PT5M", 5 * M),
    ("PT24H", 24 * H),
    ("P1D", 24 * H),
    ("P1DT2H", 26 * H),
    ("PT3H0M0S", 3 * H),
    ("PT300S", 5 * M),
    (" 2h ", 2 * H),
])
def test_parse_formats(text, expected):
    assert parse_duration(text) == expected


def test_parse_accepts_int_minutes_and_timedelta():
    assert parse_duration(60) == H
    assert parse_duration(90 * M) == 90 * M


@pytest.mark.parametrize("text", ["0", "PT0M", "0h", "-5", "-PT1H"])
def test_zero_or_negative_refused(text):
    with pytest.raises(BadInput) as err:
        parse_duration(text)
    assert "longer than zero" in err.value.message or "not an ISO" in err.value.message
    assert text.strip() in err.value.message


@pytest.mark.parametrize("text", ["", "abc", "h", "1.5h", "2h30", "30m1h", "PT", "P", "PT2H30", "P1Y", "PT-1H",
                                  "\u0662\u0662", "2 hours", "T2H"])
def test_garbage_refused_with_formats(text):
    with pytest.raises(BadInput) as err:
        parse_duration(text)
    assert "'{}'".format(text) in err.value.message
    assert "between 5 minutes and 24 hours" in err.value.recommendation
    assert "--duration 90m" in err.value.recommendation


def test_iso_months_explained():
    with pytest.raises(BadInput) as err:
        parse_duration("P30M")
    assert "months" in err.value.message and "PT30M" in err.value.message


def test_overflow_is_a_clear_error():
    with pytest.raises(BadInput, match="too long"):
        parse_duration("9" * 20)


def test_option_named_in_recommendation():
    with pytest.raises(BadInput) as err:
        parse_duration("x", option="--max-duration")
    assert "--max-duration" in err.value.recommendation


@pytest.mark.parametrize("td, iso", [
    (3 * H, "PT3H"),
    (90 * M, "PT1H30M"),
    (5 * M, "PT5M"),
    (24 * H, "PT24H"),
    (26 * H, "PT26H"),
    (timedelta(minutes=4, seconds=30), "PT4M30S"),
    (timedelta(seconds=1.5), "PT1.5S"),
])
def test_to_iso8601(td, iso):
    assert to_iso8601(td) == iso
    assert parse_duration(iso) == td  # round trip


@pytest.mark.parametrize("td", [timedelta(0), -H])
def test_to_iso8601_refuses_non_positive(td):
    with pytest.raises(ValueError):
        to_iso8601(td)


@pytest.mark.parametrize("td, text", [
    (90 * M, "1h30m"),
    (3 * H, "3h"),
    (5 * M, "5m"),
    (24 * H, "24h"),
    (timedelta(minutes=4, seconds=30), "4m30s"),
    (timedelta(hours=1, seconds=5), "1h5s"),
    (timedelta(0), "0m"),
    (-5 * M, "-5m"),
])
def test_describe(td, text):
    assert describe(td) == text


@pytest.mark.parametrize("td", [90 * M, 3 * H, 5 * M, 24 * H, timedelta(minutes=4, seconds=30)])
def test_describe_parses_back(td):
    assert parse_duration(describe(td)) == td


def test_limits():
    assert MIN_DURATION == 5 * M
    assert MAX_DURATION == 24 * H


@pytest.mark.parametrize("text", ["PT5M", "5", "PT24H", "P1D", "24h", "3h"])
def test_max_duration_within_bounds(text):
    td = parse_duration(text)
    assert check_max_duration(td) == td


@pytest.mark.parametrize("text, rule", [
    ("PT4M", "below the JIT minimum of 5 minutes"),
    ("4", "below the JIT minimum of 5 minutes"),
    ("PT4M59S", "below the JIT minimum of 5 minutes"),
    ("P2D", "above the JIT limit of 24 hours"),
    ("25h", "above the JIT limit of 24 hours"),
    ("PT24H1M", "above the JIT limit of 24 hours"),
])
def test_max_duration_out_of_bounds(text, rule):
    with pytest.raises(BadInput) as err:
        check_max_duration(parse_duration(text))
    assert rule in err.value.message
    assert describe(parse_duration(text)) in err.value.message
    assert "between 5 minutes and 24 hours" in err.value.recommendation
    assert "--max-duration" in err.value.recommendation
