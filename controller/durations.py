"""Parse and print durations and instants the way an on-call engineer types them.

``15m``, ``1h30m``, ``2d``; RFC 3339 instants; ``now``.  We parse durations
ourselves because dateutil reads ``15m`` as 00:15 today, silently.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^(?:(\d+)([smhdw]))+$")
_PART = re.compile(r"(\d+)([smhdw])")


def parse_duration(text: str) -> timedelta:
    """``"1h30m"`` -> ``timedelta(hours=1, minutes=30)``; raises ValueError otherwise."""
    value = text.strip()
    if not _DURATION.match(value):
        raise ValueError(
            f"{text!r} is not a duration: use a number and a unit, like 30s, 15m, 2h, 1d or 1h30m"
        )
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(value))
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta, *, exact: bool = False) -> str:
    """Compact, human form: ``1h5m``, ``45s``, ``2d3h``; negative values get a minus sign.

    ``exact`` keeps every part and stops at hours (``24h``, ``1h1m1s``), so
    that what we write into an object reads back with :func:`parse_duration`
    to the same value and as a person would have written it in a policy.
    """
    total = int(delta.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    if total == 0:
        return "0s"
    units = (("h", 3600), ("m", 60), ("s", 1)) if exact else _UNITS_LARGEST_FIRST
    parts: list[str] = []
    for unit, size in units:
        if total >= size:
            n, total = divmod(total, size)
            parts.append(f"{n}{unit}")
        if len(parts) == 2 and not exact:
            break
    return sign + "".join(parts)


_UNITS_LARGEST_FIRST = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def parse_instant(text: str, now: datetime) -> datetime:
    """An RFC 3339 time, ``now``, or a duration meaning "that long before now", in UTC.

    A time without an offset is refused rather than guessed: during an incident,
    a wrong timezone moves the window by hours.
    """
    value = text.strip()
    if value.lower() == "now":
        return now.astimezone(UTC)
    if _DURATION.match(value):
        return (now - parse_duration(value)).astimezone(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use RFC 3339 like 2026-12-03T10:04:00Z, "
            "a duration ago like 15m, or now"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no timezone: add Z or an offset like +01:00")
    return parsed.astimezone(UTC)


def parse_k8s_time(value: object) -> datetime | None:
    """A Kubernetes timestamp (``2026-12-03T10:04:00Z``) or None when absent or malformed."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_instant(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
