"""The decision, end to end through the pure core: triage, ranking, safety, recommendation.

Each scenario is an incident as the sources would describe it; the whole core
runs on it (classify, rank_suspects, assess_rollback for the candidates,
recommend), and the test states the remedy and its leading reason codes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from controller.core.correlate import rank_suspects
from controller.core.decide import MIN_ACT_SCORE, recommend, rollback_candidates, turned_off
from controller.core.safety import assess_rollback
from controller.core.triage import classify
from controller.model import (
    ActionKind,
    Change,
    Classification,
    ObjectRef,
    Reason,
    Recommendation,
    Safety,
    Signal,
    Suspect,
    Triage,
    WorkloadFacts,
)

from .builders import (
    SCORING,
    commit,
    config_change,
    configmap,
    crash_loop,
    deploy,
    deployment,
    facts,
    featureflag,
    flag_flip,
    history,
    incident,
    migration,
    node_change,
    node_not_ready,
    not_ready,
    quota_exceeded,
    revision,
    unavailable,
    unschedulable,
)

WEB = deployment("web")
API = deployment("api")
CFG = configmap("web-config")
FLAGS = featureflag("shop-flags")
APP = ObjectRef("Application", "argocd", "shop")


def decide(
    signals: Sequence[Signal],
    changes: Sequence[Change],
    workloads: Mapping[ObjectRef, WorkloadFacts],
    focus: Sequence[ObjectRef] = (WEB,),
    **facts_for_decide: object,
) -> Recommendation:
    """Run the whole pure core the way the assess pipeline does."""
    inc = incident()
    triage = classify(signals, changes, inc)
    suspects = rank_suspects(changes, signals, inc, SCORING, focus, workloads=workloads)
    safety = {
        w: assess_rollback(workloads[w], changes, inc, SCORING)
        for w in rollback_candidates(suspects)
        if w in workloads
    }
    return recommend(triage, suspects, safety, inc, **facts_for_decide)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Scenario:
    name: str
    signals: tuple[Signal, ...]
    changes: tuple[Change, ...]
    action: ActionKind
    target: ObjectRef | None
    codes: tuple[str, ...]  # the leading reason codes, in order
    workloads: Mapping[ObjectRef, WorkloadFacts] = field(default_factory=lambda: {WEB: facts(WEB)})
    to_revision: int | None = None
    safety: Safety | None = None
    extra: Mapping[str, object] = field(default_factory=dict)


SCENARIOS = [
    Scenario(
        "bad image rollout: roll back to the last known-good revision",
        (crash_loop(WEB, 4),),
        (deploy(WEB, 4, at=-3),),
        ActionKind.ROLLBACK,
        WEB,
        ("decide.rollback", "target.known-good"),
        to_revision=3,
        safety=Safety.SAFE,
    ),
    Scenario(
        "ConfigMap change with a known prior version: revert it",
        (not_ready(WEB, 3, at=-8),),
        (config_change(CFG, at=-10, consumers=[WEB]),),
        ActionKind.REVERT_CONFIG,
        CFG,
        ("decide.revert-config",),
        extra={"known_config_versions": {CFG: "ledger:7"}},
    ),
    Scenario(
        "ConfigMap change whose prior content is unknown: investigate, never guess",
        (not_ready(WEB, 3, at=-8),),
        (config_change(CFG, at=-10, consumers=[WEB]),),
        ActionKind.INVESTIGATE,
        CFG,
        ("decide.config-prior-unknown",),
    ),
    Scenario(
        "flag flip with a known off variant: disable the flag",
        (crash_loop(WEB, 3, at=-1),),
        (flag_flip(FLAGS, "new-checkout", at=-2, consumers=[WEB]),),
        ActionKind.DISABLE_FLAG,
        FLAGS,
        ("decide.disable-flag",),
        extra={"flag_off_variants": {(FLAGS, "new-checkout"): "off"}},
    ),
    Scenario(
        "flag flip with no known off variant: investigate",
        (crash_loop(WEB, 3, at=-1),),
        (flag_flip(FLAGS, "new-checkout", at=-2, consumers=[WEB]),),
        ActionKind.INVESTIGATE,
        FLAGS,
        ("decide.flag-off-unknown",),
    ),
    Scenario(
        "the flag change itself turned the flag off: disabling again cannot help",
        (crash_loop(WEB, 3, at=-1),),
        (flag_flip(FLAGS, "new-checkout", at=-2, consumers=[WEB], before="on", after="off"),),
        ActionKind.INVESTIGATE,
        FLAGS,
        ("decide.flag-turned-off",),
        extra={"flag_off_variants": {(FLAGS, "new-checkout"): "off"}},
    ),
    Scenario(
        "migration Job between revisions: rollback unsafe, say what to do instead",
        (crash_loop(WEB, 4),),
        (deploy(WEB, 4, at=-3), migration("shop-db-migrate-28411", at=-5, affects=[WEB])),
        ActionKind.INVESTIGATE,
        WEB,
        ("decide.unsafe", "decide.instead", "migration.since-target"),
        to_revision=3,
        safety=Safety.UNSAFE,
    ),
    Scenario(
        "unsafe rollback, but a flag among the suspects can be turned off instead",
        (crash_loop(WEB, 4),),
        (
            deploy(WEB, 4, at=-3),
            migration("shop-db-migrate-28411", at=-5, affects=[WEB]),
            flag_flip(FLAGS, "new-checkout", at=-4, consumers=[WEB]),
        ),
        ActionKind.INVESTIGATE,
        WEB,
        ("decide.unsafe", "decide.instead"),
        to_revision=3,
        safety=Safety.UNSAFE,
        extra={"flag_off_variants": {(FLAGS, "new-checkout"): "off"}},
    ),
    Scenario(
        "NotReady node and unschedulable pods: not change-induced, no rollback advised",
        (node_not_ready("worker-2"), unschedulable(WEB, 4)),
        (deploy(WEB, 4, at=-3, stalled=True),),
        ActionKind.NONE,
        None,
        ("decide.infrastructure", "classification.infrastructure"),
    ),
    Scenario(
        "kwok NotReady node right after the Deployment was created: not change-induced",
        (node_not_ready("kwok-node-0", at=-2), unavailable(WEB, at=-1)),
        (deploy(WEB, 1, at=-10, previous=0),),
        ActionKind.NONE,
        None,
        ("decide.infrastructure", "classification.infrastructure", "infra.node-not-ready"),
        workloads={WEB: facts(WEB, (revision(WEB, 1, since=-11, current=True, completed=-10),))},
    ),
    Scenario(
        "quota exhausted with nothing deployed: not change-induced",
        (quota_exceeded("compute", None),),
        (),
        ActionKind.NONE,
        None,
        ("decide.infrastructure", "classification.infrastructure", "infra.quota-exceeded"),
    ),
    Scenario(
        "nothing changed in the window: investigate, a rollback cannot help",
        (crash_loop(WEB, 3),),
        (),
        ActionKind.INVESTIGATE,
        None,
        ("decide.no-changes", "classification.unknown"),
    ),
    Scenario(
        "the only change began after the incident start: same as nothing changed",
        (crash_loop(WEB, 5, at=4),),
        (deploy(WEB, 5, at=3, started=1),),
        ActionKind.INVESTIGATE,
        None,
        ("decide.no-changes",),
    ),
    Scenario(
        "Argo CD selfHeal owns the workload: roll back, flagged risky",
        (crash_loop(WEB, 4),),
        (deploy(WEB, 4, at=-3),),
        ActionKind.ROLLBACK,
        WEB,
        ("decide.rollback", "gitops.self-heal"),
        workloads={WEB: facts(WEB, gitops_owner=APP, gitops_self_heal=True)},
        to_revision=3,
        safety=Safety.RISKY,
    ),
    Scenario(
        "previous revision never became available: roll back to the one before",
        (crash_loop(WEB, 4),),
        (deploy(WEB, 4, at=-3),),
        ActionKind.ROLLBACK,
        WEB,
        ("decide.rollback", "target.skip-never-available", "target.known-good"),
        workloads={
            WEB: facts(
                WEB,
                tuple(
                    dataclasses.replace(r, healthy_for=timedelta(0), available_replicas=0)
                    if r.revision == 3
                    else r
                    for r in history(WEB)
                ),
            )
        },
        to_revision=2,
        safety=Safety.SAFE,
    ),
    Scenario(
        "bad deploy plus a NotReady node: mixed, restore first",
        (crash_loop(WEB, 4), node_not_ready("worker-2")),
        (deploy(WEB, 4, at=-3),),
        ActionKind.ROLLBACK,
        WEB,
        ("decide.rollback",),
        to_revision=3,
        safety=Safety.SAFE,
    ),
    Scenario(
        "a migration Job is the top suspect: investigate, roll forward",
        (crash_loop(WEB, 3, at=-1),),
        (migration("shop-db-migrate-28411", at=-3, affects=[WEB], failed=True),),
        ActionKind.INVESTIGATE,
        ObjectRef("Job", "shop", "shop-db-migrate-28411"),
        ("decide.migration-suspect",),
    ),
    Scenario(
        "already rolled back after the start: do not roll back a second time",
        (),
        (deploy(WEB, 4, at=-3), deploy(WEB, 5, at=3, started=2)),
        ActionKind.INVESTIGATE,
        WEB,
        ("decide.already-replaced",),
        workloads={
            WEB: facts(
                WEB,
                (
                    revision(WEB, 2, since=-2880, until=-4),
                    revision(WEB, 4, since=-4, until=2, unhealthy=True),
                    revision(WEB, 5, since=2, current=True, completed=3),
                ),
            )
        },
        safety=Safety.SAFE,
    ),
    Scenario(
        "a deploy with no rollback facts: investigate",
        (crash_loop(API, 9),),
        (deploy(API, 9, at=-3),),
        ActionKind.INVESTIGATE,
        API,
        ("decide.no-workload-facts",),
        workloads={},
    ),
]


@pytest.mark.parametrize("s", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(s: Scenario) -> None:
    """Given an incident, when the core runs, then this remedy with these leading reasons."""
    rec = decide(s.signals, s.changes, s.workloads, **s.extra)
    assert rec.action is s.action
    assert rec.target == s.target
    assert tuple(r.code for r in rec.reasons[: len(s.codes)]) == s.codes
    assert rec.to_revision == s.to_revision
    assert (rec.safety.safety if rec.safety else None) is s.safety
    assert rec.plan_hash is None
    assert rec.preview == ()


def test_rollback_recommendation_reads_as_one_sentence_and_a_revision() -> None:
    rec = decide((crash_loop(WEB, 4),), (deploy(WEB, 4, at=-3),), {WEB: facts(WEB)})
    assert rec.summary == "deployment/web to revision 3 (safe)"
    assert rec.reasons[0].message == (
        "deployment/web revision 4 is the top suspect (0.96); revision 3 is the rollback target"
    )


def test_helm_managed_rollback_suggests_helm() -> None:
    rec = decide(
        (crash_loop(WEB, 4),), (deploy(WEB, 4, at=-3),), {WEB: facts(WEB, helm_release="shop")}
    )
    assert rec.action is ActionKind.ROLLBACK
    assert rec.summary == (
        "deployment/web to revision 3 (safe) (Helm-managed: prefer helm rollback)"
    )


def test_infrastructure_verdict_says_so_in_the_summary() -> None:
    rec = decide((node_not_ready("worker-2"), unschedulable(WEB, 4)), (), {WEB: facts(WEB)})
    assert rec.summary == "not change-induced: follow the infrastructure findings"
    assert rec.target is None


def test_unsafe_rollback_names_the_alternative_flag() -> None:
    """Given an unsafe rollback and a flag among the suspects with a known off variant,
    then the 'instead' reason names that flag."""
    rec = decide(
        (crash_loop(WEB, 4),),
        (
            deploy(WEB, 4, at=-3),
            migration("shop-db-migrate-28411", at=-5, affects=[WEB]),
            flag_flip(FLAGS, "new-checkout", at=-4, consumers=[WEB]),
        ),
        {WEB: facts(WEB)},
        flag_off_variants={(FLAGS, "new-checkout"): "off"},
    )
    instead = next(r for r in rec.reasons if r.code == "decide.instead")
    assert instead.message.startswith("instead: disable flag new-checkout (suspect #")


def test_mixed_classification_adds_a_note_to_follow_the_infrastructure_findings() -> None:
    rec = decide(
        (crash_loop(WEB, 4), node_not_ready("worker-2")),
        (deploy(WEB, 4, at=-3),),
        {WEB: facts(WEB)},
    )
    assert "decide.mixed" in [r.code for r in rec.reasons]


# ---------------------------------------------------------------------------
# recommend() alone, with hand-made suspects: the thresholds
# ---------------------------------------------------------------------------

_SOFTWARE = Triage(Classification.SOFTWARE, (), (Reason("classification.software", "software"),))
_UNKNOWN = Triage(Classification.UNKNOWN, (), (Reason("classification.unknown", "unknown"),))


def _suspect(change: Change, score: float, *codes: str, rank: int = 1) -> Suspect:
    return Suspect(change, score, tuple(Reason(c, c) for c in codes), rank)


def test_a_weak_top_suspect_is_not_acted_on() -> None:
    """Given a top suspect just under MIN_ACT_SCORE, then investigate with decide.weak-suspect."""
    weak = _suspect(deploy(WEB, 4, at=-300), MIN_ACT_SCORE - 0.01, "scope.alerting-workload")
    rec = recommend(_UNKNOWN, (weak,), {}, incident())
    assert rec.action is ActionKind.INVESTIGATE
    assert rec.reasons[0].code == "decide.weak-suspect"
    assert rec.summary == "no strong suspect (best: deployment/web revision 4, 0.49)"


def test_a_suspect_with_no_link_to_what_hurts_is_not_acted_on() -> None:
    """Given a strong-scoring change with no scope or health link, then decide.no-link."""
    nearby = _suspect(
        deploy(API, 9, at=-1), 0.6, "closeness", "scope.same-namespace", "prior.deploy"
    )
    rec = recommend(_UNKNOWN, (nearby,), {}, incident())
    assert rec.action is ActionKind.INVESTIGATE
    assert rec.reasons[0].code == "decide.no-link"


def test_a_close_runner_up_is_named() -> None:
    """Given two suspects within RUNNER_UP_MARGIN, then the second is named."""
    verdict = assess_rollback(facts(WEB), (), incident(), SCORING)
    first = _suspect(deploy(WEB, 4, at=-3), 0.80, "scope.alerting-workload")
    second = _suspect(
        config_change(CFG, at=-3, consumers=[WEB]), 0.75, "scope.consumed-config", rank=2
    )
    rec = recommend(_SOFTWARE, (first, second), {WEB: verdict}, incident())
    assert rec.action is ActionKind.ROLLBACK
    assert rec.reasons[-1] == Reason(
        "decide.runner-up", "close second: configmap/web-config (0.75)"
    )


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (node_change("worker-4", at=-3, affects=[WEB]), "decide.infra-change-suspect"),
        (commit("4f2a9c1d", at=-3, affects=[WEB]), "decide.commit-suspect"),
    ],
)
def test_changes_without_an_automatic_remedy(change: Change, code: str) -> None:
    rec = recommend(_SOFTWARE, (_suspect(change, 0.7, "scope.affects-workload"),), {}, incident())
    assert rec.action is ActionKind.INVESTIGATE
    assert rec.reasons[0].code == code


def test_rollback_candidates_are_the_workloads_top_rollouts_touch() -> None:
    suspects = (
        _suspect(deploy(WEB, 4, at=-3), 0.9),
        _suspect(config_change(CFG, at=-3, consumers=[API]), 0.8, rank=2),
        _suspect(deploy(API, 9, at=-3), 0.7, rank=3),
        _suspect(deploy(deployment("cart"), 2, at=-3), 0.6, rank=4),
    )
    assert rollback_candidates(suspects) == (WEB, API)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("state ENABLED, defaultVariant on", "state ENABLED, defaultVariant off", True),
        ("state ENABLED, defaultVariant on", "state DISABLED, defaultVariant on", True),
        (
            "state ENABLED, defaultVariant off",
            "state ENABLED, defaultVariant off, with targeting rules",
            False,
        ),
        ("state ENABLED, defaultVariant off", "state ENABLED, defaultVariant on", False),
        (None, "off", True),
        ("unknown (Kubernetes keeps no history of it)", "checkout: state ENABLED", False),
    ],
)
def test_turned_off_reads_the_flag_state_as_the_sources_describe_it(
    before: str | None, after: str, expected: bool
) -> None:
    """Given a flag change's before/after descriptions and the off variant "off",
    then whether the change itself turned the flag off."""
    change = dataclasses.replace(
        flag_flip(FLAGS, "new-checkout", at=-2, consumers=[WEB]), before=before, after=after
    )
    assert turned_off(change, "off") is expected
