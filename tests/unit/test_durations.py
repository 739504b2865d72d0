"""How durations and instants typed during an incident are read and printed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from controller.durations import (
    format_duration,
    format_instant,
    parse_duration,
    parse_instant,
    parse_k8s_time,
)

NOW = datetime(2026, 12, 3, 10, 4, 0, tzinfo=UTC)
CET = timezone(timedelta(hours=1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d3h4m5s", timedelta(days=2, hours=3, minutes=4, seconds=5)),
        ("0s", timedelta(0)),
        ("  15m  ", timedelta(minutes=15)),
        ("90m", timedelta(minutes=90)),
    ],
)
def test_a_duration_is_numbers_with_units(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["15", "m", "", "1.5h", "15 m", "1h 30m", "15M", "-5m", "15min", "PT15M", "00:15"],
)
def test_anything_else_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration: use a number and a unit, like 30s"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("delta", "printed"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=45), "45s"),
        (timedelta(minutes=5), "5m"),
        (timedelta(hours=1, minutes=5), "1h5m"),
        (timedelta(hours=1, minutes=5, seconds=9), "1h5m"),  # two units are enough
        (timedelta(days=2, hours=3, minutes=4), "2d3h"),
        (timedelta(seconds=-90), "-1m30s"),
        (timedelta(milliseconds=900), "0s"),
    ],
)
def test_a_duration_prints_in_at_most_two_units(delta: timedelta, printed: str) -> None:
    assert format_duration(delta) == printed


@pytest.mark.parametrize("text", ["45s", "5m", "1h5m", "2d3h"])
def test_printed_durations_parse_back(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("NOW", NOW),
        ("15m", NOW - timedelta(minutes=15)),
        ("1h30m", NOW - timedelta(hours=1, minutes=30)),
        ("2026-12-03T09:00:00Z", datetime(2026, 12, 3, 9, 0, tzinfo=UTC)),
        ("2026-12-03T10:00:00+01:00", datetime(2026, 12, 3, 9, 0, tzinfo=UTC)),
        ("2026-12-03T09:00:00.250Z", datetime(2026, 12, 3, 9, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_an_instant_is_rfc3339_a_duration_ago_or_now(text: str, expected: datetime) -> None:
    parsed = parse_instant(text, NOW)
    assert parsed == expected
    assert parsed.tzinfo == UTC


def test_now_in_another_timezone_comes_back_in_utc() -> None:
    parsed = parse_instant("now", NOW.astimezone(CET))
    assert parsed == NOW
    assert parsed.tzinfo == UTC


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-12-03T09:00:00", "has no timezone: add Z or an offset like +01:00"),
        ("yesterday", "is not a time: use RFC 3339 like 2026-12-03T10:04:00Z"),
        ("10:04", "is not a time"),
        ("", "is not a time"),
    ],
)
def test_an_instant_that_could_be_misread_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_instant(text, NOW)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-03T10:04:00Z", NOW),
        ("2026-12-03T11:04:00+01:00", NOW),
        ("2026-12-03T10:04:00", NOW),  # the API always means UTC
        (NOW, NOW),
        (datetime(2026, 12, 3, 10, 4), NOW),  # the client's naive datetimes are UTC
        (None, None),
        ("", None),
        ("not a time", None),
        (1733220240, None),
    ],
)
def test_kubernetes_timestamps_are_read_leniently(value: object, expected: object) -> None:
    assert parse_k8s_time(value) == expected


@pytest.mark.parametrize(
    ("moment", "printed"),
    [
        (NOW, "2026-12-03T10:04:00Z"),
        (datetime(2026, 12, 3, 11, 4, 0, 999999, tzinfo=CET), "2026-12-03T10:04:00Z"),
    ],
)
def test_instants_print_as_rfc3339_utc_to_the_second(moment: datetime, printed: str) -> None:
    assert format_instant(moment) == printed
