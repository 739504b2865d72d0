"""The guards with approvals: execute (and the controller) proceed once the right people approved.

Real policy text through the real loader and ``evaluate``; a plan from captured
API objects; approvals as the cluster would return them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.actions.approvals import Approval, ApprovalContext
from controller.actions.guards import Attempt, GuardVerdict, Identity, decide
from controller.actions.plan import Plan
from controller.actions.workload import plan_workload_rollback
from controller.model import Safety, SafetyVerdict
from controller.policy import ApprovalRequirement, Policy, PolicySource, load_policy_sources

from .helpers import fixture, items, revisions_of

NOW = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)

TYPED = """\
version: 1
scopes:
  - name: default
    rules:
      confirmation: typed-name
      approvals: {count: 1, approvers: [sre-oncall]}
      unattended: {allowed: false}
"""
NONE_NEEDED = """\
version: 1
scopes:
  - name: default
    rules:
      confirmation: typed-name
      unattended: {allowed: false}
"""


def policy(text: str) -> Policy:
    return load_policy_sources([PolicySource("test.yaml", text)])


def plan() -> Plan:
    obj = fixture("deployment-web")
    return plan_workload_rollback(obj, revisions_of(obj, items("replicasets-web")), 2)


def by(who: str, *groups: str, plan_hash: str | None = None) -> Approval:
    return Approval(plan_hash or plan().hash, who, groups, NOW - timedelta(minutes=3))


def guard(text: str, attempt: Attempt, executor: str = "alice") -> GuardVerdict:
    _, result = decide(
        policy(text),
        plan(),
        attempt,
        SafetyVerdict(Safety.SAFE, 100, ()),
        NOW,
        identity=Identity(executor),
    )
    return result


def with_approvals(*approvals: Approval, **context: object) -> Attempt:
    return Attempt(approval=ApprovalContext(approvals=approvals, **context))  # type: ignore[arg-type]


def test_without_approvals_execute_says_what_to_run() -> None:
    result = guard(TYPED, Attempt())
    assert [r.code for r in result.refusals] == ["guard.approvals"]
    assert result.refusals[0].message == (
        "waiting for 1 approval (scope default: 0 of 1 from sre-oncall): "
        f"run `rollback approve {plan().hash} -n fixtures`"
    )


@pytest.mark.parametrize(
    ("approvals", "executor", "refused"),
    [
        # An on-call engineer approved: the plan may run.
        ([by("bob", "sre-oncall")], "alice", False),
        # Not an approver group member: does not count.
        ([by("bob", "developers")], "alice", True),
        # The executor's own approval does not count (four eyes).
        ([by("alice", "sre-oncall")], "alice", True),
        # An approval of another (stale) plan does not count.
        ([by("bob", "sre-oncall", plan_hash="sha256:0000000000000000")], "alice", True),
    ],
)
def test_approvals_that_count_let_the_plan_run(
    approvals: list[Approval], executor: str, refused: bool
) -> None:
    result = guard(TYPED, with_approvals(*approvals), executor=executor)
    assert bool(result.refusals) is refused


def test_the_requester_is_excluded_as_well_as_the_executor() -> None:
    result = guard(TYPED, with_approvals(by("bob", "sre-oncall"), exclude=frozenset({"bob"})))
    assert [r.code for r in result.refusals] == ["guard.approvals"]
    assert "bob's approval does not count" in result.refusals[0].message


def test_an_approved_plan_still_asks_the_executor_to_type_the_name_on_the_command_line() -> None:
    result = guard(TYPED, with_approvals(by("bob", "sre-oncall")))
    assert result.refusals == ()
    assert result.confirm is True
    assert [n.code for n in result.notes] == ["guard.approved"]
    assert result.notes[0].message == "approved by bob (scope default: 1 of 1 from sre-oncall)"


def test_for_the_controller_satisfied_approvals_are_the_confirmation() -> None:
    result = guard(TYPED, with_approvals(by("bob", "sre-oncall"), confirms=True))
    assert result.refusals == ()
    assert result.confirm is False


def test_unsatisfied_approvals_never_replace_the_confirmation() -> None:
    result = guard(TYPED, with_approvals(confirms=True))
    assert result.confirm is True
    assert [r.code for r in result.refusals] == ["guard.approvals"]


def test_an_executor_may_demand_an_approval_the_policy_does_not() -> None:
    extra = (ApprovalRequirement("controller", 1),)
    waiting = guard(NONE_NEEDED, Attempt(approval=ApprovalContext(extra=extra)))
    assert [r.code for r in waiting.refusals] == ["guard.approvals"]
    assert "scope controller: 0 of 1 from anyone" in waiting.refusals[0].message
    approved = guard(
        NONE_NEEDED,
        Attempt(approval=ApprovalContext(approvals=(by("bob"),), extra=extra, confirms=True)),
    )
    assert approved.refusals == ()
    assert approved.confirm is False


def test_break_glass_still_stands_in_for_approvals_where_allowed() -> None:
    text = TYPED + "      breakGlass: {allowed: true}\n"
    result = guard(text, Attempt(force=True, reason="sev1, approver unreachable"))
    assert result.refusals == ()
    assert result.break_glass


THIRTY_MINUTES = TYPED.replace(
    "{count: 1, approvers: [sre-oncall]}", "{count: 1, approvers: [sre-oncall], validFor: 30m}"
)


def aged(who: str, *groups: str, ago: timedelta) -> Approval:
    return Approval(plan().hash, who, groups, NOW - ago)


@pytest.mark.parametrize(
    ("text", "ago", "refused"),
    [
        # 45 minutes old: counts under the default hour, not under the policy's 30 minutes.
        (TYPED, timedelta(minutes=45), False),
        (THIRTY_MINUTES, timedelta(minutes=45), True),
        (THIRTY_MINUTES, timedelta(minutes=20), False),
    ],
)
def test_approvals_count_for_the_policy_scopes_valid_for(
    text: str, ago: timedelta, refused: bool
) -> None:
    result = guard(text, with_approvals(aged("bob", "sre-oncall", ago=ago)))
    assert bool(result.refusals) is refused
    if refused:
        assert "bob's approval does not count: it expired at 2026-12-03T13:45:00Z" in (
            result.refusals[0].message
        )


@pytest.mark.parametrize(
    ("recorded", "refused"),
    [
        # The request recorded 30 minutes: that is what the approver was shown, and counts.
        ((ApprovalRequirement("default", 1, ("sre-oncall",), timedelta(minutes=30)),), True),
        # A request written before validFor existed: one hour.
        ((ApprovalRequirement("default", 1, ("sre-oncall",)),), False),
        # No request read: the policy's own (one hour here).
        ((), False),
    ],
)
def test_executors_count_with_the_validity_the_request_recorded(
    recorded: tuple[ApprovalRequirement, ...], refused: bool
) -> None:
    bob = aged("bob", "sre-oncall", ago=timedelta(minutes=45))
    result = guard(TYPED, with_approvals(bob, recorded=recorded))
    assert bool(result.refusals) is refused
