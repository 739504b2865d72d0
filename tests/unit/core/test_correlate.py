"""Suspect ranking: closeness, scope, health and priors, simplest and likeliest first."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from datetime import timedelta

import pytest

from controller.core.correlate import SIMPLICITY, rank_suspects
from controller.model import Change, ChangeKind, ObjectRef, Signal
from controller.policy.scoring import ScoringSettings, ScoringWeights

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
    gitops_sync,
    history,
    incident,
    migration,
    node_change,
    node_not_ready,
    not_ready,
    revision,
)

WEB = deployment("web")
API = deployment("api")
CART = deployment("cart")
OTHER_NS = deployment("billing", ns="payments")


@dataclass(frozen=True)
class Case:
    name: str
    change: Change
    signals: tuple[Signal, ...]
    focus: tuple[ObjectRef, ...]
    codes: tuple[str, ...]


CASES = [
    Case(
        "bad image rollout of the alerting workload, previous revision served all day",
        deploy(WEB, 4, at=-3),
        (crash_loop(WEB, 4),),
        (WEB,),
        (
            "closeness",
            "scope.alerting-workload",
            "health.new-revision-unhealthy",
            "health.old-revision-healthy",
            "prior.deploy",
        ),
    ),
    Case(
        "ConfigMap read by the alerting workload, which ran fine before the write",
        config_change(configmap("web-config"), at=-10, consumers=[WEB]),
        (not_ready(WEB, 3, at=-8),),
        (WEB,),
        (
            "closeness",
            "scope.consumed-config",
            "health.affected-unhealthy",
            "health.healthy-before-change",
            "prior.config",
        ),
    ),
    Case(
        "flag flip evaluated by the alerting workload, which ran fine for a day before",
        flag_flip(featureflag("shop-flags"), "new-checkout", at=-6, consumers=[WEB]),
        (crash_loop(WEB, 3, at=-1),),
        (WEB,),
        (
            "closeness",
            "scope.consumed-flag",
            "health.affected-unhealthy",
            "health.healthy-before-change",
            "prior.flag",
        ),
    ),
    Case(
        "no --workload given: the unhealthy workloads stand in for the alert",
        deploy(WEB, 4, at=-3),
        (crash_loop(WEB, 4),),
        (),
        (
            "closeness",
            "scope.unhealthy-workload",
            "health.new-revision-unhealthy",
            "health.old-revision-healthy",
            "prior.deploy",
        ),
    ),
    Case(
        "a deploy of a healthy neighbour in the same namespace",
        deploy(CART, 8, at=-3),
        (crash_loop(WEB, 3),),
        (WEB,),
        ("closeness", "scope.same-namespace", "prior.deploy"),
    ),
    Case(
        "a deploy in another namespace",
        deploy(OTHER_NS, 8, at=-3),
        (crash_loop(WEB, 3),),
        (WEB,),
        ("closeness", "scope.elsewhere", "prior.deploy"),
    ),
    Case(
        "nothing alerts and nothing hurts: a deploy is merely in scope",
        deploy(CART, 8, at=-3),
        (),
        (),
        ("closeness", "scope.in-scope", "prior.deploy"),
    ),
    Case(
        "a cluster-wide node change, with workloads failing after it",
        node_change("worker-4", at=-6),
        (crash_loop(WEB, 3, at=-1),),
        (WEB,),
        (
            "closeness",
            "scope.cluster-wide",
            "health.affected-unhealthy",
            "health.healthy-before-change",
            "prior.infra",
        ),
    ),
    Case(
        "a node that went NotReady is itself the failing object",
        node_change("worker-4", at=-5),
        (node_not_ready("worker-4", at=-5),),
        (WEB,),
        ("closeness", "scope.cluster-wide", "health.target-unhealthy", "prior.infra"),
    ),
    Case(
        "a stalled rollout of the alerting workload, no pod signals yet",
        deploy(WEB, 4, at=-5, started=-5, stalled=True),
        (),
        (WEB,),
        (
            "closeness",
            "scope.alerting-workload",
            "health.rollout-stalled",
            "health.old-revision-healthy",
            "prior.deploy",
        ),
    ),
    Case(
        "the previous revision was failing too: the problem may predate the deploy",
        deploy(WEB, 4, at=-3),
        (crash_loop(WEB, 4), crash_loop(WEB, 3, at=-30)),
        (WEB,),
        (
            "closeness",
            "scope.alerting-workload",
            "health.new-revision-unhealthy",
            "health.old-revision-unhealthy",
            "prior.deploy",
        ),
    ),
    Case(
        "a rollout that began before the start and completed after it",
        deploy(WEB, 4, at=2, started=-2),
        (crash_loop(WEB, 4, at=1),),
        (WEB,),
        (
            "closeness",
            "scope.alerting-workload",
            "health.new-revision-unhealthy",
            "health.old-revision-healthy",
            "prior.deploy",
            "after-incident",
        ),
    ),
    Case(
        "a GitOps sync that rolled the alerting workload",
        gitops_sync("shop", at=-4, affects=[WEB]),
        (crash_loop(WEB, None, at=-2),),
        (WEB,),
        (
            "closeness",
            "scope.affects-workload",
            "health.affected-unhealthy",
            "health.healthy-before-change",
            "prior.gitops",
        ),
    ),
    Case(
        "a failed migration Job linked to the alerting workload",
        migration("shop-db-migrate-28411", at=-7, affects=[WEB], failed=True),
        (),
        (WEB,),
        (
            "closeness",
            "scope.affects-workload",
            "health.migration-failed",
            "health.healthy-before-change",
            "prior.migration",
        ),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reason_codes(case: Case) -> None:
    """Given one change and the symptoms, when ranked, then exactly these reason codes."""
    workloads = {WEB: facts(WEB, history(WEB))}
    (suspect,) = rank_suspects(
        (case.change,), case.signals, incident(), SCORING, case.focus, workloads=workloads
    )
    assert tuple(r.code for r in suspect.reasons) == case.codes
    assert suspect.rank == 1


def test_bad_image_rollout_scores_near_the_top_of_the_scale() -> None:
    """Given the textbook bad rollout, then a score above 0.9 that its reasons add up to."""
    (suspect,) = rank_suspects(
        (deploy(WEB, 4, at=-3),),
        (crash_loop(WEB, 4),),
        incident(),
        SCORING,
        (WEB,),
        workloads={WEB: facts(WEB)},
    )
    assert suspect.score == pytest.approx(0.35 * 0.5 ** (3 / 30) + 0.25 + 0.25 + 0.15 * 0.9)
    assert suspect.score > 0.9
    assert sum(r.weight for r in suspect.reasons) == pytest.approx(suspect.score)
    assert suspect.reasons[0].message == "rolled out 3m before the incident start"


def test_nothing_changed_in_the_window_is_an_empty_answer() -> None:
    """Given no change at all, then no suspects (a first-class answer, not an error)."""
    assert rank_suspects((), (crash_loop(WEB, 3),), incident(), SCORING, (WEB,)) == ()


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("began after the incident start", deploy(WEB, 5, at=3, started=1)),
        ("config written after the start", config_change(configmap("c"), at=1, consumers=[WEB])),
        ("older than the lookback", deploy(WEB, 2, at=-25 * 60)),
    ],
)
def test_changes_outside_the_window_are_not_suspects(name: str, change: Change) -> None:
    """Given only a change outside [start - lookback, start], then no suspects."""
    assert rank_suspects((change,), (crash_loop(WEB, 5),), incident(), SCORING, (WEB,)) == ()


def test_closeness_halves_every_half_life_measured_from_rollout_completion() -> None:
    """Given two identical deploys completing 0m and 30m before the start (30m half-life),
    then the closer one's closeness weight is twice the other's, whatever their starts."""
    near = deploy(WEB, 4, at=0, started=-50)
    far = deploy(API, 9, at=-30, started=-31)
    ranked = rank_suspects((far, near), (), incident(), SCORING, (WEB, API))
    by_target = {s.change.target: s for s in ranked}
    closeness = {t: s.reasons[0].weight for t, s in by_target.items()}
    assert closeness[WEB] == pytest.approx(2 * closeness[API])
    assert [s.change.target for s in ranked] == [WEB, API]


def test_ties_break_toward_simpler_kinds() -> None:
    """Given equal priors and five changes at the same moment with the same link,
    then config, flag, deploy, gitops, commit: simplest first."""
    flat = ScoringSettings(priors=dict.fromkeys(ChangeKind, 0.5))
    changes = (
        commit("4f2a9c1d", at=-5, affects=[WEB]),
        gitops_sync("shop", at=-5, affects=[WEB]),
        dataclasses.replace(deploy(CART, 8, at=-5), affects=(WEB,), target=WEB, revision=None),
        flag_flip(featureflag("shop-flags"), "checkout", at=-5, consumers=[WEB]),
        config_change(configmap("web-config"), at=-5, consumers=[WEB]),
    )
    # Same scope value for all: no focus, no signals, and every change named in scope.
    ranked = rank_suspects(changes, (), incident(namespaces=()), flat)
    assert len({round(s.score, 9) for s in ranked}) == 1
    assert [s.change.kind for s in ranked] == [
        ChangeKind.CONFIG,
        ChangeKind.FLAG,
        ChangeKind.DEPLOY,
        ChangeKind.GITOPS,
        ChangeKind.COMMIT,
    ]
    assert [s.rank for s in ranked] == [1, 2, 3, 4, 5]


def test_simplicity_order_covers_every_kind() -> None:
    assert sorted(SIMPLICITY) == sorted(ChangeKind)


WEIGHTS = [
    ScoringWeights(),
    ScoringWeights(closeness=1, scope=0, health=0, prior=0),
    ScoringWeights(closeness=0, scope=0, health=1, prior=0),
    ScoringWeights(closeness=3, scope=2, health=2, prior=1),  # not normalised
    ScoringWeights(closeness=0, scope=0, health=0, prior=0),  # degenerate
]


@pytest.mark.parametrize("weights", WEIGHTS)
def test_scores_stay_in_0_1_and_equal_the_sum_of_reason_weights(weights: ScoringWeights) -> None:
    """Given any weights and a mix of strong and weak changes, then every score is in
    0..1, equals the sum of its reasons' weights, and ranks descend."""
    scoring = ScoringSettings(weights=weights, closeness_half_life=timedelta(minutes=5))
    changes = [
        deploy(WEB, 4, at=0),
        deploy(WEB, 4, at=-1000),
        deploy(WEB, 4, at=3, started=-1, stalled=True),
        config_change(configmap("web-config"), at=-1, consumers=[WEB, API]),
        node_change("worker-1", at=-2),
        commit("abc", at=-3),
        migration("m", at=-2, affects=[WEB], failed=True),
    ]
    signals = [crash_loop(WEB, 4), not_ready(API, None, at=None), crash_loop(WEB, 3, at=-600)]
    ranked = rank_suspects(
        changes, signals, incident(), scoring, (WEB,), workloads={WEB: facts(WEB)}
    )
    assert len(ranked) == len(changes)
    for suspect in ranked:
        assert 0.0 <= suspect.score <= 1.0
        assert sum(r.weight for r in suspect.reasons) == pytest.approx(suspect.score)
    assert [s.score for s in ranked] == sorted((s.score for s in ranked), reverse=True)


def test_unknown_signal_time_gives_weaker_health_evidence() -> None:
    """Given an affected workload that is ill since an unknown time, then half-strength evidence."""
    change = config_change(configmap("api-config"), at=-10, consumers=[API])
    timed, untimed = (
        rank_suspects((change,), (not_ready(API, None, at=at),), incident(), SCORING, (API,))[0]
        for at in (-5, None)
    )
    health = {
        s: next(r for r in s.reasons if r.code == "health.affected-unhealthy")
        for s in (timed, untimed)
    }
    assert health[timed].weight > health[untimed].weight
    assert health[untimed].message == "deployment/api unhealthy (since when unknown): not-ready"


def test_old_revision_must_have_served_long_enough_to_count_as_healthy() -> None:
    """Given a previous revision that served only 5m (policy 10m), then no old-healthy evidence."""
    revisions = (
        revision(WEB, 3, since=-8, until=-3),
        revision(WEB, 4, since=-3, current=True, unhealthy=True),
    )
    (suspect,) = rank_suspects(
        (deploy(WEB, 4, at=-3),),
        (crash_loop(WEB, 4),),
        incident(),
        SCORING,
        (WEB,),
        workloads={WEB: facts(WEB, revisions)},
    )
    assert "health.old-revision-healthy" not in [r.code for r in suspect.reasons]


def test_ranking_is_deterministic_whatever_the_input_order() -> None:
    """Given the same changes in every order, then the same ranking (pure and stable)."""
    changes = [
        deploy(WEB, 4, at=-3),
        config_change(configmap("web-config"), at=-3, consumers=[WEB]),
        deploy(CART, 8, at=-3),
    ]
    results = {
        rank_suspects(order, (crash_loop(WEB, 4),), incident(), SCORING, (WEB,))
        for order in itertools.permutations(changes)
    }
    assert len(results) == 1


def test_a_workload_restarted_recently_shows_no_healthy_before_evidence() -> None:
    """Given a flag flipped 2m after the workload's current revision started, then no
    "ran fine before it" evidence: 2m is less than known_good_after."""
    (suspect,) = rank_suspects(
        (flag_flip(featureflag("shop-flags"), "new-checkout", at=-2, consumers=[WEB]),),
        (crash_loop(WEB, 4, at=-1),),
        incident(),
        SCORING,
        (WEB,),
        workloads={WEB: facts(WEB)},
    )
    assert [r.code for r in suspect.reasons] == [
        "closeness",
        "scope.consumed-flag",
        "health.affected-unhealthy",
        "prior.flag",
    ]


def test_a_symptom_long_after_the_change_is_no_health_evidence() -> None:
    """Given a ConfigMap written 5h before and its consumer ill only for the last minute,
    then no health evidence: the consumer ran fine for hours with the new config."""
    (suspect,) = rank_suspects(
        (config_change(configmap("web-config"), at=-300, consumers=[WEB]),),
        (not_ready(WEB, 3, at=-1),),
        incident(),
        SCORING,
        (WEB,),
    )
    assert [r.code for r in suspect.reasons] == [
        "closeness",
        "scope.consumed-config",
        "prior.config",
    ]
