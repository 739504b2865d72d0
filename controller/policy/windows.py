"""When is a freeze window active?  Pure time arithmetic, no clock and no I/O.

Weekly windows are wall-clock times in an IANA timezone, so daylight-saving
changes move them in UTC, as a person would expect.  Clock changes never make a
freeze shorter:

- a boundary in a repeated hour (clocks go back) is read as the earlier
  occurrence for ``from`` and the later occurrence for ``to``;
- a boundary in a skipped hour (clocks go forward) is the moment the clock
  jumps, i.e. the first wall time that exists after it.

Fixed windows are ``start <= now < end`` with explicit offsets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from controller.durations import format_instant
from controller.policy.schema import FreezeWindow, WeeklyWindow

# Adjacent weekly occurrences (sat 00:00-24:00, sun 00:00-24:00) are reported as
# one span; a window covering every day would never end, so stop looking after a week.
_MAX_JOINED_DAYS = 8


@dataclass(frozen=True)
class Span:
    """One occurrence of a window, as UTC instants ``[start, end)``."""

    start: datetime
    end: datetime


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name (validated by the loader)."""
    return ZoneInfo(name)


def active_span(window: FreezeWindow, now: datetime) -> Span | None:
    """The occurrence of ``window`` that contains ``now``, or None; ``now`` must be aware.

    For weekly windows, back-to-back occurrences are joined so the returned
    ``end`` is when the freeze really lifts (looking at most a week ahead).
    """
    if now.tzinfo is None:
        raise ValueError("now must carry a timezone")
    if window.weekly is not None:
        return _weekly_span(window.weekly, now.astimezone(UTC))
    assert window.start is not None and window.end is not None
    if window.start <= now < window.end:
        return Span(window.start.astimezone(UTC), window.end.astimezone(UTC))
    return None


def describe_window(window: FreezeWindow) -> str:
    """``weekly sat,sun 00:00-24:00 Europe/Berlin`` or ``2026-12-20T00:00:00Z to ...``."""
    if window.weekly is not None:
        weekly = window.weekly
        days = ",".join(d.value for d in weekly.days)
        end = "24:00" if weekly.end_of_day else weekly.end.strftime("%H:%M")
        return f"weekly {days} {weekly.start.strftime('%H:%M')}-{end} {weekly.timezone}"
    assert window.start is not None and window.end is not None
    return f"{format_instant(window.start)} to {format_instant(window.end)}"


def _weekly_span(weekly: WeeklyWindow, now: datetime) -> Span | None:
    tz = zone(weekly.timezone)
    today = now.astimezone(tz).date()
    # An overnight occurrence that started yesterday may still be running.
    for day in (today - timedelta(days=1), today):
        span = _occurrence(weekly, day, tz)
        if span is not None and span.start <= now < span.end:
            return _join_following(weekly, span, day, tz)
    return None


def _occurrence(weekly: WeeklyWindow, day: date, tz: ZoneInfo) -> Span | None:
    if day.weekday() not in {d.number for d in weekly.days}:
        return None
    start = _wall_to_utc(day, weekly.start, tz, earliest=True)
    overnight = weekly.end_of_day or weekly.end <= weekly.start
    end_day = day + timedelta(days=1) if overnight else day
    end = _wall_to_utc(end_day, weekly.end, tz, earliest=False)
    return Span(start, end)


def _join_following(weekly: WeeklyWindow, span: Span, day: date, tz: ZoneInfo) -> Span:
    end = span.end
    for offset in range(1, _MAX_JOINED_DAYS):
        following = _occurrence(weekly, day + timedelta(days=offset), tz)
        if following is None or following.start > end:
            break
        end = max(end, following.end)
    return Span(span.start, end)


def _wall_to_utc(day: date, at: time, tz: ZoneInfo, *, earliest: bool) -> datetime:
    """A wall-clock time on ``day`` in ``tz`` as a UTC instant, by the rules in the module doc."""
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second:
        return first
    if first < second:  # repeated hour: fold=0 is the earlier instant
        return first if earliest else second
    # Skipped hour: fold=1 reads the wall time with the new offset (before the
    # jump), fold=0 with the old one (after it).  The jump lies between.
    return _transition(second, first, tz)


def _transition(low: datetime, high: datetime, tz: ZoneInfo) -> datetime:
    """The first instant in ``(low, high]`` whose UTC offset differs from ``low``'s."""
    before = low.astimezone(tz).utcoffset()
    lo, hi = int(low.timestamp()), int(high.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)
