"""Evaluation: policy + facts + time -> decision with reasons (pure).

Precedence when scopes overlap is the strictest opinion per rule, so adding a
scope, or matching one more, can never weaken a guard.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from controller.model import ActionKind, ObjectRef, Safety
from controller.policy import (
    Confirmation,
    GitOpsMode,
    PolicyRequest,
    RecentAction,
    default_policy,
    evaluate,
    match_scopes,
)

from .helpers import at, policy_from

NOW = at("2026-06-10T12:00:00Z")  # a Wednesday
WEB = ObjectRef("Deployment", "shop", "web")


def request(**overrides: object) -> PolicyRequest:
    fields: dict[str, object] = {
        "action": ActionKind.ROLLBACK,
        "namespace": "shop",
        "safety": Safety.SAFE,
        "target": WEB,
    }
    fields.update(overrides)
    return PolicyRequest(**fields)  # type: ignore[arg-type]


def codes(decision: object) -> list[str]:
    return [r.code for r in decision.reasons]  # type: ignore[attr-defined]


# Staging loosens the catch-all; `shop-db` is stricter; `payments` matches by label.
LAYERED = """\
version: 1
scopes:
  - name: default
    rules:
      confirmation: none
      unattended: {allowed: true, verdicts: [safe, risky]}
      riskyRequiresConfirmation: false
      gitops: suspend
      rateLimit: {maxActions: 2, per: 1h}
      notify: ["slack:#all"]
  - name: data
    match: {namespaces: ["*-db"]}
    rules:
      actions: [rollback, disable-flag]
      confirmation: typed-name
      unattended: {allowed: false}
      gitops: refuse
      notify: ["slack:#dba", "slack:#all"]
  - name: payments
    match: {namespaces: ["*"], selector: "team=payments"}
    rules:
      actions: [disable-flag, rollback]
      approvals: {count: 2, approvers: [payments-leads]}
      breakGlass: {allowed: false}
      rateLimit: {maxActions: 1, per: 30m}
"""


def test_the_shipped_defaults_allow_a_rollback_after_typed_confirmation() -> None:
    decision = evaluate(default_policy(), request(), NOW)
    assert decision.allowed
    assert decision.matched_scopes == ("default",)
    assert decision.confirmation is Confirmation.TYPED_NAME
    assert decision.approvals_required == 0
    assert not decision.unattended_allowed
    assert decision.break_glass_allowed and decision.break_glass_requires_reason
    assert decision.gitops is GitOpsMode.REFUSE
    assert codes(decision) == ["policy.confirmation"]


def test_the_shipped_defaults_refuse_unattended_actions() -> None:
    decision = evaluate(default_policy(), request(unattended=True), NOW)
    assert not decision.allowed
    assert [(r.code, r.message) for r in decision.denials] == [
        ("policy.unattended-not-allowed", "Scope default does not allow unattended actions.")
    ]


@pytest.mark.parametrize(
    ("namespace", "labels", "scopes"),
    [
        ("shop", {}, ("default",)),
        ("shop-db", {}, ("default", "data")),
        ("shop", {"team": "payments"}, ("default", "payments")),
        ("shop-db", {"team": "payments"}, ("default", "data", "payments")),
    ],
)
def test_every_scope_that_matches_applies(
    namespace: str, labels: dict[str, str], scopes: tuple[str, ...]
) -> None:
    policy = policy_from(LAYERED)
    assert tuple(s.name for s in match_scopes(policy, namespace, labels)) == scopes


def test_a_loosened_catch_all_allows_unattended_where_nothing_stricter_matches() -> None:
    decision = evaluate(policy_from(LAYERED), request(unattended=True), NOW)
    assert decision.allowed, decision.reasons
    assert decision.unattended_allowed
    assert decision.confirmation is Confirmation.NONE
    assert decision.gitops is GitOpsMode.SUSPEND
    assert decision.reasons == ()


def test_overlapping_scopes_strictest_opinion_wins_per_rule() -> None:
    # Given a Deployment that is both in a data namespace and labelled team=payments
    decision = evaluate(
        policy_from(LAYERED),
        request(namespace="shop-db", labels={"team": "payments"}),
        NOW,
    )
    # Then each rule takes the strictest opinion, and says which scope held it
    assert decision.matched_scopes == ("default", "data", "payments")
    assert decision.allowed_actions == (ActionKind.ROLLBACK, ActionKind.DISABLE_FLAG)
    assert decision.confirmation is Confirmation.TYPED_NAME
    assert decision.decided_by["confirmation"] == ("data",)
    assert [(a.scope, a.count, a.approvers) for a in decision.approvals] == [
        ("payments", 2, ("payments-leads",))
    ]
    assert not decision.unattended_allowed
    assert decision.decided_by["unattended"] == ("data",)
    assert not decision.break_glass_allowed
    assert decision.decided_by["breakGlass"] == ("payments",)
    assert decision.gitops is GitOpsMode.REFUSE
    assert decision.decided_by["gitops"] == ("data",)
    assert decision.notify == ("slack:#all", "slack:#dba")  # everyone is told, once
    assert [(s.scope, s.limit.max_actions) for s in decision.rate_limits] == [
        ("default", 2),
        ("payments", 1),
    ]


@pytest.mark.parametrize(
    ("action", "namespace", "labels", "denied_by"),
    [
        (ActionKind.REVERT_CONFIG, "shop", {}, []),
        (ActionKind.REVERT_CONFIG, "shop-db", {}, ["data"]),
        (ActionKind.REVERT_CONFIG, "shop-db", {"team": "payments"}, ["data", "payments"]),
        (ActionKind.DISABLE_FLAG, "shop-db", {"team": "payments"}, []),
    ],
)
def test_an_action_is_allowed_only_if_every_scope_with_an_opinion_allows_it(
    action: ActionKind, namespace: str, labels: dict[str, str], denied_by: list[str]
) -> None:
    decision = evaluate(
        policy_from(LAYERED), request(action=action, namespace=namespace, labels=labels), NOW
    )
    refusals = [r.message for r in decision.reasons if r.code == "policy.action-not-allowed"]
    assert refusals == [
        f"Scope {name} does not allow revert-config (it allows rollback, disable-flag)."
        if name == "data"
        else f"Scope {name} does not allow revert-config (it allows disable-flag, rollback)."
        for name in denied_by
    ]
    assert decision.allowed is (not denied_by)


def test_a_broader_permissive_scope_cannot_weaken_the_catch_all() -> None:
    # Given the strict shipped defaults, When someone adds a permissive scope for everything
    policy = policy_from(
        """\
        version: 1
        scopes:
          - name: everything-goes
            match: {namespaces: ["*"]}
            rules:
              confirmation: none
              unattended: {allowed: true, verdicts: [safe, risky]}
              gitops: suspend
              breakGlass: {allowed: true, requireReason: false}
        """
    )
    decision = evaluate(policy, request(unattended=True), NOW)
    # Then the stricter catch-all still decides every rule it has an opinion on
    assert not decision.allowed
    assert decision.confirmation is Confirmation.TYPED_NAME
    assert decision.gitops is GitOpsMode.REFUSE
    assert decision.break_glass_requires_reason
    assert decision.decided_by["unattended"] == ("default",)


def test_a_typo_in_the_name_of_a_scope_to_loosen_only_adds_a_scope() -> None:
    # `defualt` is a new scope, not the catch-all: nothing is loosened.
    policy = policy_from(
        """\
        version: 1
        scopes:
          - name: defualt
            match: {namespaces: ["*"]}
            rules: {unattended: {allowed: true}}
        """
    )
    assert [s.name for s in policy.scopes] == ["default", "defualt"]
    assert not evaluate(policy, request(unattended=True), NOW).allowed


def test_no_matching_scope_refuses() -> None:
    policy = policy_from(
        'version: 1\nscopes:\n  - name: default\n    match: {namespaces: ["staging-*"]}\n'
    )
    decision = evaluate(policy, request(namespace="prod-web"), NOW)
    assert not decision.allowed
    assert decision.denials[0].code == "policy.no-scope"
    assert decision.denials[0].message == (
        "No policy scope covers namespace prod-web; add one to allow actions."
    )
    # The rules fall back to the safe choices
    assert decision.confirmation is Confirmation.TYPED_NAME
    assert not decision.unattended_allowed
    assert not decision.break_glass_allowed
    assert decision.gitops is GitOpsMode.REFUSE


@pytest.mark.parametrize(
    ("safety", "unattended_ok", "why"),
    [
        (Safety.SAFE, True, ""),
        (
            Safety.RISKY,
            False,
            "Scope default allows unattended actions only on safe verdicts, and this one is risky.",
        ),
        (
            Safety.UNSAFE,
            False,
            "Scope default allows unattended actions only on safe verdicts, "
            "and this one is unsafe.",
        ),
    ],
)
def test_unattended_is_allowed_only_on_the_listed_verdicts(
    safety: Safety, unattended_ok: bool, why: str
) -> None:
    policy = policy_from(
        "version: 1\nscopes:\n  - name: default\n    rules:\n"
        "      unattended: {allowed: true, verdicts: [safe]}\n"
    )
    decision = evaluate(policy, request(unattended=True, safety=safety), NOW)
    assert decision.unattended_allowed is unattended_ok
    unattended = [r.message for r in decision.reasons if r.code == "policy.unattended-not-allowed"]
    assert unattended == ([why] if why else [])


def test_a_risky_verdict_needs_a_human_when_the_policy_says_so() -> None:
    policy = policy_from(
        "version: 1\nscopes:\n  - name: default\n    rules:\n"
        "      confirmation: none\n"
        "      unattended: {allowed: true, verdicts: [safe, risky]}\n"
    )
    unattended = evaluate(policy, request(unattended=True, safety=Safety.RISKY), NOW)
    assert not unattended.allowed
    assert unattended.denials[0].message == (
        "The verdict is risky and risky actions need a human to confirm."
    )
    attended = evaluate(policy, request(safety=Safety.RISKY), NOW)
    assert attended.allowed
    assert attended.confirmation is Confirmation.TYPED_NAME  # raised from none by the verdict
    assert attended.decided_by["confirmation"] == ("default",)
    assert [r.message for r in attended.reasons] == [
        "Type the target's name to confirm (the verdict is risky)."
    ]


def test_approvals_keep_a_human_in_the_loop() -> None:
    policy = policy_from(
        "version: 1\nscopes:\n  - name: default\n    rules:\n"
        "      unattended: {allowed: true}\n      approvals: {count: 1}\n"
    )
    decision = evaluate(policy, request(unattended=True), NOW)
    assert not decision.unattended_allowed
    assert decision.denials[0].message == "Approvals are required, so a human must be involved."
    attended = evaluate(policy, request(), NOW)
    assert [r.message for r in attended.reasons if r.code == "policy.approvals"] == [
        "Needs 1 approval(s) from anyone (scope default)."
    ]


class TestBreakGlassAndUnsafe:
    def test_an_unsafe_verdict_is_refused(self) -> None:
        decision = evaluate(default_policy(), request(safety=Safety.UNSAFE), NOW)
        assert [r.code for r in decision.denials] == ["policy.unsafe-verdict"]

    def test_break_glass_with_a_reason_overrides_an_unsafe_verdict(self) -> None:
        decision = evaluate(
            default_policy(),
            request(safety=Safety.UNSAFE, break_glass=True, break_glass_reason="INC-42 data loss"),
            NOW,
        )
        assert decision.allowed
        assert codes(decision) == [
            "policy.confirmation",
            "policy.break-glass",
            "policy.unsafe-break-glass",
        ]

    def test_break_glass_without_a_required_reason_is_refused(self) -> None:
        decision = evaluate(default_policy(), request(safety=Safety.UNSAFE, break_glass=True), NOW)
        assert [r.code for r in decision.denials] == [
            "policy.break-glass-reason-required",
            "policy.unsafe-verdict",
        ]

    def test_one_scope_forbidding_break_glass_is_enough(self) -> None:
        decision = evaluate(
            policy_from(LAYERED),
            request(
                labels={"team": "payments"},
                safety=Safety.UNSAFE,
                break_glass=True,
                break_glass_reason="x",
            ),
            NOW,
        )
        assert [r.message for r in decision.denials] == [
            "Break-glass is not allowed here (scope payments).",
            "The rollback-safety verdict is unsafe; only break-glass may override it.",
        ]


class TestRateLimits:
    POLICY = LAYERED

    def recent(
        self, *minutes_ago: int, namespace: str = "shop", **labels: str
    ) -> tuple[RecentAction, ...]:
        return tuple(
            RecentAction(NOW - timedelta(minutes=m), namespace, labels) for m in minutes_ago
        )

    def test_automatic_actions_within_the_window_count(self) -> None:
        policy = policy_from(self.POLICY)
        # 61 minutes ago is outside the 1h window; the two others fill the limit of 2
        decision = evaluate(
            policy, request(unattended=True, recent_actions=self.recent(61, 50, 10)), NOW
        )
        assert not decision.allowed
        assert [r.message for r in decision.denials] == [
            "Scope default allows 2 automatic action(s) per 1h and 2 already happened; "
            "the next fits at 2026-06-10T12:10:00Z."
        ]

    def test_an_action_exactly_one_window_ago_no_longer_counts(self) -> None:
        policy = policy_from(self.POLICY)
        decision = evaluate(
            policy, request(unattended=True, recent_actions=self.recent(60, 10)), NOW
        )
        assert decision.allowed
        assert decision.rate_limits[0].used == 1

    def test_each_scope_counts_only_its_own_actions_and_the_lowest_limit_binds(self) -> None:
        policy = policy_from(self.POLICY)
        recent = self.recent(20, team="payments") + self.recent(5, namespace="other")
        decision = evaluate(
            policy,
            request(unattended=True, labels={"team": "payments"}, recent_actions=recent),
            NOW,
        )
        assert [(s.scope, s.used, s.remaining) for s in decision.rate_limits] == [
            ("default", 2, 0),
            ("payments", 1, 0),
        ]
        assert "policy.rate-limit" in codes(decision)

    def test_an_attended_action_is_not_rate_limited(self) -> None:
        policy = policy_from(self.POLICY)
        decision = evaluate(policy, request(recent_actions=self.recent(1, 2, 3)), NOW)
        assert decision.allowed

    def test_a_limit_of_zero_allows_no_automatic_action(self) -> None:
        policy = policy_from(
            "version: 1\nscopes:\n  - name: default\n    rules:\n"
            "      unattended: {allowed: true}\n      rateLimit: {maxActions: 0}\n"
        )
        decision = evaluate(policy, request(unattended=True), NOW)
        assert [r.message for r in decision.denials] == [
            "Scope default allows no automatic actions."
        ]


def test_gitops_owned_targets_follow_the_strictest_mode() -> None:
    refused = evaluate(default_policy(), request(gitops_owned=True), NOW)
    assert [r.message for r in refused.denials] == [
        "A GitOps controller owns the target and scope default says refuse: change it through Git."
    ]
    suspended = evaluate(policy_from(LAYERED), request(gitops_owned=True), NOW)
    assert suspended.allowed
    assert codes(suspended) == ["policy.gitops-suspend"]


def test_related_workloads_labels_bring_in_their_scopes() -> None:
    # A ConfigMap consumed by a payments Deployment is guarded like that Deployment.
    decision = evaluate(
        policy_from(LAYERED),
        request(
            action=ActionKind.REVERT_CONFIG,
            target=ObjectRef("ConfigMap", "shop", "settings"),
            related_labels=({"team": "payments"},),
        ),
        NOW,
    )
    assert decision.matched_scopes == ("default", "payments")
    assert not decision.allowed


@pytest.mark.parametrize("action", [ActionKind.NONE, ActionKind.INVESTIGATE])
def test_actions_that_change_nothing_are_always_allowed(action: ActionKind) -> None:
    decision = evaluate(default_policy(), request(action=action, unattended=True), NOW)
    assert decision.allowed
    assert codes(decision) == ["policy.no-action"]


def test_evaluation_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone"):
        evaluate(default_policy(), request(), datetime(2026, 6, 10, 12))


def test_evaluation_is_pure_it_ignores_the_wall_clock() -> None:
    policy = policy_from(
        "version: 1\nscopes:\n  - name: default\n    rules:\n      freeze:\n"
        "        - {name: f, start: '2026-06-10T11:00:00Z', end: '2026-06-10T13:00:00Z'}\n"
    )
    with time_machine.travel(datetime(2030, 1, 1, tzinfo=UTC), tick=False):
        during = evaluate(policy, request(), NOW)
        later = evaluate(policy, request(), NOW + timedelta(hours=2))
    assert not during.allowed and later.allowed
    assert evaluate(policy, request(), NOW) == during
