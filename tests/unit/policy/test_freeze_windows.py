"""Freeze windows at their edges, across timezones and daylight-saving changes.

The rules (controller/policy/windows.py): fixed windows are [start, end);
weekly windows are wall-clock times in their IANA zone; a boundary in a
repeated hour is the earlier occurrence for `from` and the later one for `to`;
a boundary in a skipped hour is the moment the clock jumps.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from controller.model import ActionKind, Safety
from controller.policy import FreezeWindow, PolicyRequest, evaluate
from controller.policy.windows import Span, active_span

from .helpers import at, policy_from

SECOND = timedelta(seconds=1)


def weekly(days: str, start: str, end: str, tz: str) -> FreezeWindow:
    policy = policy_from(
        f"""\
        version: 1
        scopes:
          - name: s
            match: {{namespaces: ["*"]}}
            rules:
              freeze:
                - name: w
                  weekly: {{days: [{days}], from: "{start}", to: "{end}", timezone: {tz}}}
        """,
        defaults=False,
    )
    return policy.scopes[0].rules.freeze[0]


def fixed(start: str, end: str) -> FreezeWindow:
    policy = policy_from(
        f"""\
        version: 1
        scopes:
          - name: s
            match: {{namespaces: ["*"]}}
            rules:
              freeze: [{{name: f, start: "{start}", end: "{end}"}}]
        """,
        defaults=False,
    )
    return policy.scopes[0].rules.freeze[0]


def assert_edges(window: FreezeWindow, start: str, end: str) -> None:
    """Inactive just before ``start`` and from ``end`` on; active from ``start`` until ``end``."""
    begin, finish = at(start), at(end)
    assert active_span(window, begin - SECOND) is None, "active too early"
    assert active_span(window, begin) is not None, "not active at its start"
    assert active_span(window, finish - SECOND) is not None, "not active just before its end"
    assert active_span(window, finish) is None, "still active at its end"


def test_a_fixed_window_is_start_inclusive_end_exclusive_with_its_offsets() -> None:
    window = fixed("2026-12-24T00:00:00+01:00", "2026-12-27T00:00:00+01:00")
    assert_edges(window, "2026-12-23T23:00:00Z", "2026-12-26T23:00:00Z")
    span = active_span(window, at("2026-12-25T10:00:00Z"))
    assert span == Span(at("2026-12-23T23:00:00Z"), at("2026-12-26T23:00:00Z"))


def test_an_overnight_weekly_window_runs_into_the_next_day() -> None:
    # Friday 22:00 to Saturday 02:00 London time; London is on BST (+01:00) in June.
    window = weekly("fri", "22:00", "02:00", "Europe/London")
    assert_edges(window, "2026-06-12T21:00:00Z", "2026-06-13T01:00:00Z")
    # Saturday night is not Friday night
    assert active_span(window, at("2026-06-13T21:30:00Z")) is None


def test_the_same_instant_is_inside_one_zone_s_window_and_outside_another_s() -> None:
    moment = at("2026-06-12T14:00:00Z")  # 10:00 in New York, 23:00 in Tokyo
    assert active_span(weekly("fri", "09:00", "17:00", "America/New_York"), moment) is not None
    assert active_span(weekly("fri", "09:00", "17:00", "Asia/Tokyo"), moment) is None
    assert_edges(
        weekly("fri", "09:00", "17:00", "Asia/Tokyo"),
        "2026-06-12T00:00:00Z",
        "2026-06-12T08:00:00Z",
    )


def test_winter_and_summer_move_a_weekly_window_in_utc() -> None:
    window = weekly("wed", "09:00", "10:00", "Europe/Berlin")
    assert_edges(window, "2026-01-14T08:00:00Z", "2026-01-14T09:00:00Z")  # CET, +01:00
    assert_edges(window, "2026-07-15T07:00:00Z", "2026-07-15T08:00:00Z")  # CEST, +02:00


class TestSpringForward:
    """Berlin, Sunday 2026-03-29: at 02:00 CET the clock jumps to 03:00 CEST (01:00Z)."""

    def test_a_start_in_the_skipped_hour_is_the_moment_of_the_jump(self) -> None:
        assert_edges(
            weekly("sun", "02:30", "04:00", "Europe/Berlin"),
            "2026-03-29T01:00:00Z",
            "2026-03-29T02:00:00Z",
        )

    def test_a_window_across_the_jump_is_an_hour_shorter_in_utc(self) -> None:
        # 01:00 CET to 03:30 CEST: 2.5 hours on the wall, 1.5 hours of real time
        assert_edges(
            weekly("sun", "01:00", "03:30", "Europe/Berlin"),
            "2026-03-29T00:00:00Z",
            "2026-03-29T01:30:00Z",
        )

    def test_an_end_in_the_skipped_hour_is_the_moment_of_the_jump(self) -> None:
        assert_edges(
            weekly("sat", "22:00", "02:30", "Europe/Berlin"),
            "2026-03-28T21:00:00Z",
            "2026-03-29T01:00:00Z",
        )

    def test_a_window_wholly_inside_the_skipped_hour_does_not_occur_that_day(self) -> None:
        # Sydney jumps from 02:00 AEST to 03:00 AEDT on 2026-10-04 (16:00Z the day before)
        window = weekly("sun", "02:15", "02:45", "Australia/Sydney")
        assert active_span(window, at("2026-10-03T16:00:00Z")) is None
        # ...and a week later it is back, at +11:00
        assert_edges(window, "2026-10-10T15:15:00Z", "2026-10-10T15:45:00Z")


class TestFallBack:
    """Berlin, Sunday 2026-10-25: at 03:00 CEST the clock goes back to 02:00 CET (01:00Z)."""

    def test_a_start_in_the_repeated_hour_is_its_first_occurrence(self) -> None:
        assert_edges(
            weekly("sun", "02:30", "05:00", "Europe/Berlin"),
            "2026-10-25T00:30:00Z",  # 02:30 CEST
            "2026-10-25T04:00:00Z",  # 05:00 CET
        )

    def test_an_end_in_the_repeated_hour_is_its_second_occurrence(self) -> None:
        assert_edges(
            weekly("sun", "00:00", "02:30", "Europe/Berlin"),
            "2026-10-24T22:00:00Z",  # 00:00 CEST
            "2026-10-25T01:30:00Z",  # the second 02:30, in CET
        )

    def test_a_window_inside_the_repeated_hour_covers_both_passes(self) -> None:
        # New York, 2026-11-01: 02:00 EDT becomes 01:00 EST at 06:00Z; 01:30-01:45 happens twice
        assert_edges(
            weekly("sun", "01:30", "01:45", "America/New_York"),
            "2026-11-01T05:30:00Z",  # first 01:30, EDT
            "2026-11-01T06:45:00Z",  # second 01:45, EST
        )


def test_24_00_ends_at_midnight_and_back_to_back_days_are_reported_as_one_span() -> None:
    window = weekly("sat, sun", "00:00", "24:00", "UTC")
    assert_edges(window, "2026-06-13T00:00:00Z", "2026-06-15T00:00:00Z")
    span = active_span(window, at("2026-06-13T10:00:00Z"))
    assert span == Span(at("2026-06-13T00:00:00Z"), at("2026-06-15T00:00:00Z"))


def test_a_window_on_every_day_still_reports_an_end() -> None:
    window = weekly("mon,tue,wed,thu,fri,sat,sun", "00:00", "24:00", "UTC")
    span = active_span(window, at("2026-06-10T12:00:00Z"))
    assert span is not None and span.end - span.start == timedelta(days=8)


@pytest.mark.parametrize(
    ("moment", "allowed"),
    [
        ("2026-03-29T00:59:59Z", True),
        ("2026-03-29T01:00:00Z", False),
        ("2026-03-29T01:59:59Z", False),
        ("2026-03-29T02:00:00Z", True),
    ],
)
def test_evaluate_refuses_inside_a_dst_shifted_freeze(moment: str, allowed: bool) -> None:
    policy = policy_from(
        """\
        version: 1
        scopes:
          - name: prod
            match: {namespaces: ["prod-*"]}
            rules:
              freeze:
                - name: maintenance
                  weekly: {days: [sun], from: "02:30", to: "04:00", timezone: Europe/Berlin}
        """
    )
    request = PolicyRequest(action=ActionKind.ROLLBACK, namespace="prod-web", safety=Safety.SAFE)
    decision = evaluate(policy, request, at(moment))
    assert decision.allowed is allowed
    if not allowed:
        assert decision.denials[0].message == (
            "Freeze maintenance (scope prod) is active until 2026-03-29T02:00:00Z."
        )


def test_freeze_exceptions_let_listed_actions_and_break_glass_through() -> None:
    policy = policy_from(
        """\
        version: 1
        scopes:
          - name: prod
            match: {namespaces: ["*"]}
            rules:
              freeze:
                - name: peak
                  start: "2026-11-27T00:00:00-05:00"
                  end: "2026-11-30T00:00:00-05:00"
                  exceptions: {actions: [disable-flag], breakGlass: true}
                - name: audit
                  start: "2026-11-28T00:00:00Z"
                  end: "2026-11-29T00:00:00Z"
        """
    )
    moment = at("2026-11-27T12:00:00Z")

    def decide(**kw: object) -> list[str]:
        fields: dict[str, object] = {
            "action": ActionKind.ROLLBACK,
            "namespace": "shop",
            "safety": Safety.SAFE,
        }
        fields.update(kw)
        decision = evaluate(policy, PolicyRequest(**fields), moment)  # type: ignore[arg-type]
        return [r.code for r in decision.reasons]

    assert decide() == ["policy.freeze", "policy.confirmation"]
    assert decide(action=ActionKind.DISABLE_FLAG) == [
        "policy.confirmation",
        "policy.freeze-exception",
    ]
    assert decide(break_glass=True, break_glass_reason="checkout down") == [
        "policy.confirmation",
        "policy.break-glass",
        "policy.freeze-break-glass",
    ]
    # A window without a break-glass exception holds even against break-glass
    later = at("2026-11-28T12:00:00Z")
    decision = evaluate(
        policy,
        PolicyRequest(
            action=ActionKind.ROLLBACK,
            namespace="shop",
            safety=Safety.SAFE,
            break_glass=True,
            break_glass_reason="x",
        ),
        later,
    )
    assert [r.message for r in decision.denials] == [
        "Freeze audit (scope prod) is active until 2026-11-29T00:00:00Z."
    ]


def test_a_clock_travel_does_not_change_what_a_given_now_decides() -> None:
    # Evaluation takes `now`; the machine's clock and local zone play no part.
    window = weekly("sun", "02:30", "04:00", "Europe/Berlin")
    with time_machine.travel(datetime(2026, 10, 25, 1, 30, tzinfo=UTC), tick=False):
        assert active_span(window, at("2026-03-29T01:30:00Z")) is not None
        assert active_span(window, datetime.now(UTC)) is not None  # 02:30 CET on fall-back day
        assert active_span(window, datetime.now(UTC) - timedelta(hours=1, seconds=1)) is None
