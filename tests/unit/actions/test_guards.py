"""The guards execute applies before writing, decided from plan, attempt, verdict and policy.

Policies are real policy text loaded by the real loader and judged by the real
``evaluate``; the plan is built from captured API objects.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from controller.actions.guards import (
    Attempt,
    GitOpsState,
    GuardVerdict,
    Identity,
    decide,
)
from controller.actions.plan import Plan
from controller.actions.workload import plan_workload_rollback
from controller.model import ObjectRef, Reason, Safety, SafetyVerdict
from controller.policy import Policy, PolicySource, load_policy_sources

from .helpers import fixture, items, revisions_of

NOW = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)  # a Thursday afternoon

OPEN = """\
version: 1
scopes:
  - name: default
    rules:
      confirmation: none
      unattended: {allowed: true, verdicts: [safe, risky]}
      rateLimit: {maxActions: 100, per: 1h}
      gitops: suspend
      riskyRequiresConfirmation: false
"""
RISKY_CONFIRMS = OPEN.replace("riskyRequiresConfirmation: false", "riskyRequiresConfirmation: true")
APPROVALS = OPEN.replace("confirmation: none", "confirmation: none\n      approvals: {count: 1}")
NO_GLASS = OPEN.replace("gitops: suspend", "gitops: suspend\n      breakGlass: {allowed: false}")
FROZEN = OPEN.replace(
    "gitops: suspend",
    "gitops: suspend\n      freeze:\n        - name: launch\n"
    "          start: 2026-12-03T00:00:00Z\n          end: 2026-12-04T00:00:00Z",
)


def policy(text: str | None) -> Policy:
    return load_policy_sources([PolicySource("test.yaml", text)] if text else [])


def plan() -> Plan:
    obj = fixture("deployment-web")
    return plan_workload_rollback(obj, revisions_of(obj, items("replicasets-web")), 2)


def verdict(safety: Safety) -> SafetyVerdict:
    return SafetyVerdict(
        safety, 20, (Reason("migration.since-target", "a schema migration ran since", -50),)
    )


ARGO = GitOpsState(ObjectRef("Application", "argocd", "web"), True, "tracking-id", "Argo CD")


def guard(
    text: str | None,
    attempt: Attempt,
    safety: Safety = Safety.SAFE,
    gitops: GitOpsState | None = None,
    the_plan: Plan | None = None,
) -> GuardVerdict:
    _, result = decide(
        policy(text),
        the_plan or plan(),
        attempt,
        verdict(safety),
        NOW,
        gitops=gitops,
        identity=Identity("alice"),
    )
    return result


def codes(result: GuardVerdict) -> list[str]:
    return [r.code for r in result.refusals]


@pytest.mark.parametrize(
    ("text", "attempt", "safety", "refusals", "confirm"),
    [
        # Interactive runs always confirm by typed name; a safe plan passes.
        (None, Attempt(), Safety.SAFE, [], True),
        # --yes under the shipped policy: nothing runs unattended.
        (None, Attempt(yes=True), Safety.SAFE, ["policy.unattended-not-allowed"], False),
        # --yes where policy allows it: no prompt.
        (OPEN, Attempt(yes=True), Safety.SAFE, [], False),
        # Risky with --yes: a person confirms anyway when the policy wants risky confirmed...
        (RISKY_CONFIRMS, Attempt(yes=True), Safety.RISKY, [], True),
        # ...and not when it says otherwise.
        (OPEN, Attempt(yes=True), Safety.RISKY, [], False),
        # Unsafe is refused, whatever the policy allows (first, as the reason that matters).
        (OPEN, Attempt(), Safety.UNSAFE, ["guard.unsafe"], True),
        (
            OPEN,
            Attempt(yes=True),
            Safety.UNSAFE,
            ["guard.unsafe", "policy.unattended-not-allowed"],
            False,
        ),
        # Break-glass overrides unsafe where allowed, and still asks for the typed name.
        (OPEN, Attempt(yes=True, force=True, reason="db restored"), Safety.UNSAFE, [], True),
        # ...needs a reason...
        (
            OPEN,
            Attempt(force=True),
            Safety.UNSAFE,
            ["guard.force-needs-reason", "guard.unsafe", "policy.break-glass-reason-required"],
            True,
        ),
        # ...and is refused where the policy forbids it.
        (
            NO_GLASS,
            Attempt(force=True, reason="db restored"),
            Safety.UNSAFE,
            ["guard.unsafe", "policy.break-glass-not-allowed"],
            True,
        ),
        # A freeze refuses the action.
        (FROZEN, Attempt(), Safety.SAFE, ["policy.freeze"], True),
        # Approvals cannot be collected by execute: refused unless break-glass.
        (APPROVALS, Attempt(), Safety.SAFE, ["guard.approvals"], True),
        (APPROVALS, Attempt(force=True, reason="sev1"), Safety.SAFE, [], True),
    ],
)
def test_guard_decisions(
    text: str | None, attempt: Attempt, safety: Safety, refusals: list[str], confirm: bool
) -> None:
    result = guard(text, attempt, safety)
    assert codes(result) == refusals
    assert result.confirm is confirm


def test_a_reviewed_hash_that_differs_from_the_fresh_plan_is_refused_first() -> None:
    result = guard(OPEN, Attempt(yes=True, plan_hash="sha256:0000000000000000"))
    assert codes(result) == ["guard.plan-changed"]
    assert result.refusals[0].message.startswith(
        "the plan changed since it was reviewed: --plan-hash sha256:0000000000000000 was given, "
        f"the fresh plan is {plan().hash}"
    )


def test_the_reviewed_hash_is_accepted_with_or_without_its_prefix() -> None:
    bare = plan().hash.removeprefix("sha256:")
    assert codes(guard(OPEN, Attempt(yes=True, plan_hash=bare))) == []
    assert codes(guard(OPEN, Attempt(yes=True, plan_hash=plan().hash.upper()))) == []


def test_a_paused_plan_is_refused_with_what_to_do() -> None:
    paused = dataclasses.replace(plan(), paused=True)
    result = guard(OPEN, Attempt(), the_plan=paused)
    assert codes(result) == ["guard.paused"]
    assert "pass --resume" in result.refusals[0].message


def test_an_active_gitops_owner_is_refused_by_the_shipped_policy_naming_it() -> None:
    result = guard(None, Attempt(), gitops=ARGO)
    assert codes(result) == ["policy.gitops-refuse"]
    assert result.refusals[0].message == (
        "application/web in argocd (Argo CD) syncs this target automatically and would revert "
        "a manual change; policy says refuse: roll back in Git, or change the policy's gitops rule"
    )


def test_where_policy_allows_suspension_the_user_must_ask_for_it() -> None:
    told = guard(OPEN, Attempt(), gitops=ARGO)
    assert codes(told) == ["guard.gitops"]
    assert "pass --suspend-gitops" in told.refusals[0].message
    asked = guard(OPEN, Attempt(suspend_gitops=True), gitops=ARGO)
    assert codes(asked) == []
    assert asked.suspend == ARGO
    assert "rollback resume-gitops application/web -n argocd" in asked.notes[0].message


def test_an_owner_that_does_not_sync_automatically_does_not_block() -> None:
    quiet = dataclasses.replace(ARGO, active=False)
    result = guard(None, Attempt(), gitops=quiet)
    assert codes(result) == []
    assert result.suspend is None


def test_break_glass_is_noted_loudly_with_who_and_why() -> None:
    result = guard(
        OPEN, Attempt(force=True, reason="schema is backwards compatible"), Safety.UNSAFE
    )
    assert result.break_glass
    assert result.notes[0].message == (
        "BREAK-GLASS: --force used by alice: schema is backwards compatible"
    )


def test_yes_on_a_risky_verdict_asks_a_person_and_says_why() -> None:
    result = guard(RISKY_CONFIRMS, Attempt(yes=True), Safety.RISKY)
    assert result.confirm
    assert result.notes[-1].message == (
        "--yes does not skip the confirmation here: the verdict is risky and a person must confirm"
    )
