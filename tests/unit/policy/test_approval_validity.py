"""``approvals.validFor``: how long an approval counts, read like every other duration.

The policy is the one source of truth: the decision's approval requirements
carry the validity, the ApprovalRequest records it, and everyone counts with it
(tests/unit/actions/test_approvals.py).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.errors import PolicyError
from controller.model import ActionKind, ObjectRef, Safety
from controller.policy import (
    DEFAULT_APPROVAL_VALIDITY,
    ApprovalRequirement,
    Approvals,
    PolicyRequest,
    evaluate,
    explain_lines,
)

from .helpers import at, policy_from

NOW = at("2026-06-10T12:00:00Z")

# The value under test goes on line 9, column 19 (after "        validFor: ").
TEMPLATE = """\
version: 1
scopes:
  - name: prod
    match:
      namespaces: ["prod-*"]
    rules:
      approvals:
        count: 1
        validFor: VALUE
"""


def with_value(value: str) -> str:
    return TEMPLATE.replace("VALUE", value)


def approvals_of(text: str) -> Approvals:
    scope = policy_from(text).scope("prod")
    assert scope is not None and scope.rules.approvals is not None
    return scope.rules.approvals


def test_without_valid_for_an_approval_counts_for_one_hour() -> None:
    text = TEMPLATE.replace("        validFor: VALUE\n", "")
    approvals = approvals_of(text)
    assert approvals.valid_for == timedelta(hours=1) == DEFAULT_APPROVAL_VALIDITY


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("90s", timedelta(seconds=90)),
        ("24h", timedelta(hours=24)),
        ("1d", timedelta(hours=24)),
        ('"45m"', timedelta(minutes=45)),
    ],
)
def test_a_valid_for_duration_is_read_like_every_other(value: str, expected: timedelta) -> None:
    approvals = approvals_of(with_value(value))
    assert approvals.valid_for == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0m", "must be longer than zero"),
        ("0s", "must be longer than zero"),
        ("25h", "must be at most 24h, got 25h"),
        ("24h1s", "must be at most 24h, got 24h1s"),
        ("1w", "must be at most 24h, got 1w"),
        (
            "90",
            "'90' is not a duration: use a number and a unit, like 30s, 15m, 2h, 1d or 1h30m",
        ),
        (
            "-5m",
            "'-5m' is not a duration: use a number and a unit, like 30s, 15m, 2h, 1d or 1h30m",
        ),
        (
            "1 hour",
            "'1 hour' is not a duration: use a number and a unit, like 30s, 15m, 2h, 1d or 1h30m",
        ),
        ("null", "must be a duration like 15m or 1h30m, got nothing"),
        ("[1h]", "must be a duration like 15m or 1h30m, got a list"),
        ("no", "'no' reads as a boolean in YAML 1.1; write a duration like 15m or 1h30m"),
    ],
)
def test_a_bad_valid_for_is_one_exact_line(value: str, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        policy_from(with_value(value))
    assert caught.value.problems == [f"a.yaml:9:19 scopes[0].rules.approvals.validFor: {message}"]


def test_a_misspelt_valid_for_is_an_unknown_field_not_a_silent_hour() -> None:
    with pytest.raises(PolicyError) as caught:
        policy_from(TEMPLATE.replace("validFor: VALUE", "validfor: 30m"))
    assert caught.value.problems == [
        "a.yaml:9:9 scopes[0].rules.approvals.validfor: unknown field 'validfor'; "
        "did you mean 'validFor'?"
    ]


def test_every_problem_in_approvals_is_reported_together() -> None:
    text = with_value("2d").replace("count: 1", "count: two")
    with pytest.raises(PolicyError) as caught:
        policy_from(text)
    assert caught.value.problems == [
        "a.yaml:8:16 scopes[0].rules.approvals.count: must be a whole number, got 'two'",
        "a.yaml:9:19 scopes[0].rules.approvals.validFor: must be at most 24h, got 2d",
    ]


def test_a_later_file_may_change_only_the_validity() -> None:
    policy = policy_from(
        with_value("2h").replace("count: 1", "count: 2\n        approvers: [sre]"),
        """\
        version: 1
        scopes:
          - name: prod
            rules:
              approvals: {validFor: 30m}
        """,
    )
    scope = policy.scope("prod")
    assert scope is not None and scope.rules.approvals is not None
    assert (scope.rules.approvals.count, scope.rules.approvals.approvers) == (2, ("sre",))
    assert scope.rules.approvals.valid_for == timedelta(minutes=30)


LAYERED = """\
version: 1
scopes:
  - name: production
    match: {namespaces: ["prod-*"]}
    rules:
      approvals: {count: 1, approvers: [sre-oncall]}
  - name: payments
    match: {namespaces: ["prod-*"], matchLabels: {team: payments}}
    rules:
      approvals: {count: 2, approvers: [payments-leads], validFor: 30m}
"""


def request() -> PolicyRequest:
    return PolicyRequest(
        action=ActionKind.ROLLBACK,
        namespace="prod-checkout",
        safety=Safety.SAFE,
        target=ObjectRef("Deployment", "prod-checkout", "api"),
        labels={"team": "payments"},
    )


def test_each_requirement_of_a_decision_carries_its_own_scopes_validity() -> None:
    decision = evaluate(policy_from(LAYERED), request(), NOW)
    assert decision.approvals == (
        ApprovalRequirement("production", 1, ("sre-oncall",), timedelta(hours=1)),
        ApprovalRequirement("payments", 2, ("payments-leads",), timedelta(minutes=30)),
    )


def test_explain_says_a_validity_other_than_the_hour() -> None:
    policy = policy_from(LAYERED)
    lines = explain_lines(policy, request(), evaluate(policy, request(), NOW), NOW)
    assert "  - Needs 1 approval(s) from sre-oncall (scope production)." in lines
    assert "  - Needs 2 approval(s) from payments-leads (scope payments, valid for 30m)." in lines
    assert (
        "  approvals: 1 from sre-oncall; 2 from payments-leads, valid for 30m "
        "(production, payments)"
    ) in lines
