"""What the controller does about an incident on one pass, decided from plain facts.

Table-driven: a situation in, an intent, a reason and when to look again out.
Guard verdicts are the values ``controller.actions.guards.decide`` returns.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from controller.actions.execute import TargetSpec
from controller.actions.guards import GuardVerdict
from controller.model import (
    ActionKind,
    Classification,
    ObjectRef,
    Reason,
    Recommendation,
    Safety,
    SafetyVerdict,
)
from controller.runtime.decide import (
    AFTER_REFUSAL,
    ASSESS_AGAIN,
    WAIT_FOR_APPROVAL,
    Intent,
    Situation,
    decide_incident,
    last_action_hash,
    pod_owner,
)
from controller.runtime.incidents import ActionRecord, Phase
from controller.view import ClusterView

NOW = datetime(2026, 12, 3, 10, 10, tzinfo=UTC)
WEB = ObjectRef("Deployment", "shop", "web")
HASH = "sha256:0123456789abcdef"
ROLLBACK = Recommendation(
    ActionKind.ROLLBACK,
    WEB,
    "deployment/web to revision 2 (safe)",
    to_revision=2,
    safety=SafetyVerdict(Safety.SAFE, 100, ()),
)
INVESTIGATE = Recommendation(ActionKind.INVESTIGATE, None, "no change explains it; investigate")

ALLOWED_ALONE = GuardVerdict(confirm=False)
NOT_ALONE = GuardVerdict(
    refusals=(Reason("policy.unattended-not-allowed", "Scope default does not allow it."),),
    confirm=False,
)
WAITING = GuardVerdict(
    refusals=(Reason("guard.approvals", "waiting for 1 approval (...): run `rollback approve`"),),
)
APPROVED = GuardVerdict(confirm=False, notes=(Reason("guard.approved", "approved by bob"),))
FROZEN = GuardVerdict(refusals=(Reason("policy.freeze", "Freeze launch is active."),))
ATTEMPT = ActionRecord(HASH, Phase.NOT_CONVERGED, NOW, "roll back deployment/web", WEB, True)


def firing(**facts: object) -> Situation:
    base: dict[str, object] = {
        "open": True,
        "recommendation": ROLLBACK,
        "classification": Classification.SOFTWARE,
        "plan_hash": HASH,
    }
    base.update(facts)
    return Situation(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("situation", "intent", "requeue"),
    [
        # The alert resolved: nothing more.
        (firing(open=False), Intent.CLOSE, None),
        # One attempt only: whatever happened, never a second action on its own.
        (firing(attempted=ATTEMPT, unattended=ALLOWED_ALONE), Intent.OBSERVE, None),
        # Nothing to execute: people are told, and the next pass looks again.
        (firing(recommendation=INVESTIGATE, plan_hash=None), Intent.NOTIFY, ASSESS_AGAIN),
        # Infrastructure: notify only, even if a rollback is recommended.
        (
            firing(classification=Classification.INFRASTRUCTURE, unattended=ALLOWED_ALONE),
            Intent.NOTIFY,
            ASSESS_AGAIN,
        ),
        # No plan could be made (a pruned revision, an immutable ConfigMap).
        (
            firing(plan_hash=None, plan_problem="no plan: revision 2 was pruned"),
            Intent.NOTIFY,
            ASSESS_AGAIN,
        ),
        # The target already carries this exact plan: not applied twice.
        (firing(already_applied=True, unattended=ALLOWED_ALONE), Intent.OBSERVE, None),
        # Already where the plan goes.
        (firing(plan_noop="deployment/web already runs revision 2"), Intent.NOTIFY, AFTER_REFUSAL),
        # Policy lets the controller act alone: execute.
        (firing(unattended=ALLOWED_ALONE, attended=WAITING), Intent.EXECUTE, None),
        # Not alone: ask a person, once per plan...
        (
            firing(unattended=NOT_ALONE, attended=WAITING),
            Intent.REQUEST_APPROVAL,
            WAIT_FOR_APPROVAL,
        ),
        # ...then wait for them...
        (
            firing(unattended=NOT_ALONE, attended=WAITING, approval_requested=HASH),
            Intent.WAIT_APPROVAL,
            WAIT_FOR_APPROVAL,
        ),
        # ...and ask again when the plan changed (an approval of the old one is worthless).
        (
            firing(
                unattended=NOT_ALONE, attended=WAITING, approval_requested="sha256:0000000000000000"
            ),
            Intent.REQUEST_APPROVAL,
            WAIT_FOR_APPROVAL,
        ),
        # The approvals for this exact plan are in: act.
        (firing(unattended=NOT_ALONE, attended=APPROVED), Intent.EXECUTE_APPROVED, None),
        # A guard a person cannot approve away (a freeze): notify, look again later.
        (firing(unattended=NOT_ALONE, attended=FROZEN), Intent.NOTIFY, AFTER_REFUSAL),
        # A verdict that still needs a typed confirmation: nobody can type it here.
        (firing(unattended=NOT_ALONE, attended=GuardVerdict()), Intent.NOTIFY, AFTER_REFUSAL),
    ],
)
def test_what_the_controller_does(
    situation: Situation, intent: Intent, requeue: timedelta | None
) -> None:
    decision = decide_incident(situation)
    assert (decision.intent, decision.requeue) == (intent, requeue)
    assert decision.reason


def test_a_refusal_is_told_in_the_guards_own_words() -> None:
    decision = decide_incident(firing(unattended=NOT_ALONE, attended=FROZEN))
    assert decision.reason == "refused: Freeze launch is active."
    assert decision.code == "policy.freeze"


def test_one_attempt_only_names_what_was_done() -> None:
    decision = decide_incident(firing(attempted=ATTEMPT))
    assert decision.reason == (
        "one attempt only: roll back deployment/web (not-converged, plan sha256:0123456789abcdef); "
        "what happens next is a person's call"
    )


@pytest.mark.parametrize(
    ("recommendation", "expected"),
    [
        (ROLLBACK, ("Deployment", "web", 2, None, None)),
        (
            Recommendation(
                ActionKind.DISABLE_FLAG,
                ObjectRef("FeatureFlag", "shop", "flags"),
                "",
                flag="new-checkout",
            ),
            ("flag", "new-checkout", None, None, ObjectRef("FeatureFlag", "shop", "flags")),
        ),
        (
            Recommendation(
                ActionKind.REVERT_CONFIG, ObjectRef("ConfigMap", "shop", "cfg"), "", to_version="3"
            ),
            ("ConfigMap", "cfg", None, 3, None),
        ),
    ],
)
def test_a_recommendation_becomes_executes_explicit_target(
    recommendation: Recommendation, expected: tuple[object, ...]
) -> None:
    spec = TargetSpec.for_recommendation(recommendation)
    assert spec is not None
    assert (spec.kind, spec.name, spec.to_revision, spec.to_version, spec.resource) == expected
    assert spec.namespace == "shop"


@pytest.mark.parametrize(
    "recommendation",
    [
        INVESTIGATE,
        Recommendation(
            ActionKind.REVERT_CONFIG,
            ObjectRef("ConfigMap", "shop", "cfg"),
            "",
            to_version="git:HEAD~1:cm.yaml",
        ),
        Recommendation(ActionKind.DISABLE_FLAG, ObjectRef("FeatureFlag", "shop", "flags"), ""),
    ],
)
def test_nothing_the_controller_can_execute_itself(recommendation: Recommendation) -> None:
    assert TargetSpec.for_recommendation(recommendation) is None


def owned(kind: str, name: str, owner_kind: str, owner: str) -> dict[str, object]:
    return {
        "kind": kind,
        "apiVersion": "apps/v1" if kind != "Pod" else "v1",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "ownerReferences": [{"kind": owner_kind, "name": owner, "controller": True}],
        },
    }


def view() -> ClusterView:
    v = ClusterView(captured_at=NOW)
    v.add(owned("ReplicaSet", "web-5655459b74", "Deployment", "web"))
    v.add(owned("Pod", "web-5655459b74-abcde", "ReplicaSet", "web-5655459b74"))
    v.add(
        {
            "kind": "StatefulSet",
            "apiVersion": "apps/v1",
            "metadata": {"name": "db", "namespace": "shop"},
        }
    )
    return v


@pytest.mark.parametrize(
    ("pod", "owner"),
    [
        ("web-5655459b74-abcde", WEB),
        # Gone already: its name still says which ReplicaSet it came from.
        ("web-5655459b74-zzzzz", WEB),
        ("db-0", ObjectRef("StatefulSet", "shop", "db")),
        ("nobody-knows", None),
        (None, None),
    ],
)
def test_an_alerting_pod_leads_to_its_workload(pod: str | None, owner: ObjectRef | None) -> None:
    assert pod_owner(view(), "shop", pod) == owner


def test_the_last_action_annotation_names_the_plan_it_applied() -> None:
    stamp = json.dumps({"what": "roll back", "planHash": HASH})
    target = {"metadata": {"annotations": {"rollback.io/last-action": stamp}}}
    assert last_action_hash(target) == HASH
    assert last_action_hash({"metadata": {}}) == ""
    assert last_action_hash({"metadata": {"annotations": {"rollback.io/last-action": "{"}}}) == ""


def test_a_config_revert_from_git_is_executable_only_with_the_checkout() -> None:
    # Given a revert the assessment found in git (only a command line has the checkout),
    rec = Recommendation(
        ActionKind.REVERT_CONFIG,
        ObjectRef("ConfigMap", "shop", "cfg"),
        "",
        to_version="git:HEAD~1:cm.yaml",
    )
    # When it becomes a target with the repository, then it reads that file at that commit.
    spec = TargetSpec.for_recommendation(rec, git_repo="/src/shop")
    assert spec is not None
    assert (spec.kind, spec.name, spec.from_git, spec.git_repo) == (
        "ConfigMap",
        "cfg",
        "HEAD~1:cm.yaml",
        "/src/shop",
    )
