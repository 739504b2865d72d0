"""Rollback safety: the last known-good target, every check as a reason, a verdict and a score.

Each case: given the workload's revisions and what changed around it, when
the rollback is judged, then this verdict, this target and exactly these
reason codes (most severe first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from controller.core.safety import SAFE_AT, UNSAFE_BELOW, assess_rollback
from controller.model import Change, ObjectRef, Safety, WorkloadFacts

from .builders import (
    NS,
    SCORING,
    config_change,
    configmap,
    deploy,
    deployment,
    facts,
    featureflag,
    flag_flip,
    history,
    incident,
    migration,
    revision,
    statefulset,
)

WEB = deployment("web")
CFG = configmap("web-config")
APP = ObjectRef("Application", "argocd", "shop")

# The bad-image verdict's tail: the target, why it exists, what the new
# revision wrote, and the time to restore.  Most cases add to it.
TAIL = ("target.known-good", "target.exists", "data.never-served", "restore.observed")


@dataclass(frozen=True)
class Case:
    name: str
    workload: WorkloadFacts
    safety: Safety
    to_revision: int | None
    codes: tuple[str, ...]
    changes: tuple[Change, ...] = field(default=())


CASES = [
    Case(
        "bad image rollout: the previous revision served all day",
        facts(WEB),
        Safety.SAFE,
        3,
        TAIL,
    ),
    Case(
        "previous revision never became available: the target is the one before",
        facts(
            WEB,
            (
                revision(WEB, 2, since=-2880, until=-60),
                revision(WEB, 3, since=-60, until=-4, healthy_for=timedelta(0), available=0),
                revision(WEB, 4, since=-4, current=True, unhealthy=True),
            ),
        ),
        Safety.SAFE,
        2,
        ("target.skip-never-available", *TAIL),
    ),
    Case(
        "previous revision marked unhealthy: skipped",
        facts(
            WEB,
            (
                revision(WEB, 2, since=-2880, until=-60),
                revision(WEB, 3, since=-60, until=-4, unhealthy=True),
                revision(WEB, 4, since=-4, current=True, unhealthy=True),
            ),
        ),
        Safety.SAFE,
        2,
        ("target.skip-unhealthy", *TAIL),
    ),
    Case(
        "previous revision healthy only 5m (policy 10m): the older known-good wins",
        facts(
            WEB,
            (
                revision(WEB, 2, since=-2880, until=-9),
                revision(WEB, 3, since=-9, until=-4),
                revision(WEB, 4, since=-4, current=True, unhealthy=True),
            ),
        ),
        Safety.SAFE,
        2,
        ("target.skip-too-brief", *TAIL),
    ),
    Case(
        "no revision served the policy time: the briefly healthy one, risky",
        facts(
            WEB,
            (
                revision(WEB, 3, since=-9, until=-4),
                revision(WEB, 4, since=-4, current=True, unhealthy=True),
            ),
        ),
        Safety.RISKY,
        3,
        (
            "target.briefly-healthy",
            "target.skip-too-brief",
            "target.exists",
            "data.never-served",
            "restore.observed",
        ),
    ),
    Case(
        "the known-good revision was pruned and nothing else qualifies: unsafe",
        facts(
            WEB,
            (
                revision(WEB, 2, since=-2880, until=-60, exists=False),
                revision(WEB, 3, since=-60, until=-4, unhealthy=True),
                revision(WEB, 4, since=-4, current=True, unhealthy=True),
            ),
        ),
        Safety.UNSAFE,
        None,
        ("target.pruned", "target.skip-unhealthy", "target.skip-pruned"),
    ),
    Case(
        "a pruned revision is skipped when an older known-good one still exists",
        facts(
            WEB,
            (
                revision(WEB, 1, since=-4000, until=-2880),
                revision(WEB, 2, since=-2880, until=-4, exists=False),
                revision(WEB, 3, since=-4, current=True, unhealthy=True),
            ),
        ),
        Safety.SAFE,
        1,
        ("target.skip-pruned", *TAIL),
    ),
    Case(
        "a first deploy has nothing to roll back to: unsafe",
        facts(WEB, (revision(WEB, 1, since=-4, current=True, unhealthy=True),)),
        Safety.UNSAFE,
        None,
        ("target.none",),
    ),
    Case(
        "a migration Job for this workload ran between revisions: unsafe",
        facts(WEB),
        Safety.UNSAFE,
        3,
        ("migration.since-target", *TAIL),
        (migration("shop-db-migrate-28411", at=-5, affects=[WEB]),),
    ),
    Case(
        "a pre-upgrade migration hook 3m before the target was replaced: not proven, unsafe",
        facts(WEB),
        Safety.UNSAFE,
        3,
        ("migration.since-target", *TAIL),
        (migration("shop-db-migrate-28411", at=-7, affects=[WEB]),),
    ),
    Case(
        "a migration the target then served healthy on for hours: compatible",
        facts(WEB),
        Safety.SAFE,
        3,
        TAIL,
        (migration("shop-db-migrate-28390", at=-300, affects=[WEB]),),
    ),
    Case(
        "a migration Job that failed: risky",
        facts(WEB),
        Safety.RISKY,
        3,
        ("migration.incomplete", *TAIL),
        (migration("shop-db-migrate-28411", at=-5, affects=[WEB], failed=True),),
    ),
    Case(
        "a migration Job in the namespace, not linked to a workload: risky",
        facts(WEB),
        Safety.RISKY,
        3,
        ("migration.unlinked", *TAIL),
        (migration("db-migrate-28411", at=-5),),
    ),
    Case(
        "a migration Job in another namespace or for another workload: irrelevant",
        facts(WEB),
        Safety.SAFE,
        3,
        TAIL,
        (
            migration("db-migrate-28411", at=-5, ns="payments"),
            migration("cart-migrate-1", at=-5, affects=[deployment("cart")]),
        ),
    ),
    Case(
        "schema version moved between the target and the current revision: unsafe",
        facts(
            WEB,
            (
                revision(WEB, 3, since=-1440, until=-4, schema_version="41"),
                revision(WEB, 4, since=-4, current=True, unhealthy=True, schema_version="42"),
            ),
        ),
        Safety.UNSAFE,
        3,
        ("migration.schema-version", *TAIL),
    ),
    Case(
        "the current revision declares a schema version the target did not: risky",
        facts(
            WEB,
            (
                revision(WEB, 3, since=-1440, until=-4),
                revision(WEB, 4, since=-4, current=True, unhealthy=True, schema_version="42"),
            ),
        ),
        Safety.RISKY,
        3,
        ("migration.schema-version-unknown", *TAIL),
    ),
    Case(
        "the new revision runs a migration init container: risky",
        facts(
            WEB,
            (
                revision(WEB, 3, since=-1440, until=-4),
                revision(
                    WEB,
                    4,
                    since=-4,
                    current=True,
                    unhealthy=True,
                    migration_init_containers=("migrate",),
                ),
            ),
        ),
        Safety.RISKY,
        3,
        ("migration.init-container", *TAIL),
    ),
    Case(
        "a ConfigMap the target reads changed since: config drift, risky",
        facts(WEB, history(WEB, config_refs=(CFG,))),
        Safety.RISKY,
        3,
        ("config.drift", *TAIL),
        (config_change(CFG, at=-2, consumers=[WEB]),),
    ),
    Case(
        "a ConfigMap the target does not read changed: no drift",
        facts(WEB, history(WEB, config_refs=(CFG,))),
        Safety.SAFE,
        3,
        TAIL,
        (config_change(configmap("cart-config"), at=-2, consumers=[deployment("cart")]),),
    ),
    Case(
        "a ConfigMap the target reads is gone: its pods would not start, unsafe",
        facts(
            WEB,
            (
                revision(
                    WEB,
                    3,
                    since=-1440,
                    until=-4,
                    config_refs=(configmap("web-config-v7"),),
                    missing_config_refs=(configmap("web-config-v7"),),
                ),
                revision(WEB, 4, since=-4, current=True, unhealthy=True),
            ),
        ),
        Safety.UNSAFE,
        3,
        ("config.missing", *TAIL),
    ),
    Case(
        "a flag it evaluates changed since: a caution, still safe",
        facts(WEB),
        Safety.SAFE,
        3,
        ("flags.changed", *TAIL),
        (flag_flip(featureflag("shop-flags"), "new-checkout", at=-2, consumers=[WEB]),),
    ),
    Case(
        "Argo CD Application with selfHeal owns it: risky",
        facts(WEB, gitops_owner=APP, gitops_automated=True, gitops_self_heal=True),
        Safety.RISKY,
        3,
        ("gitops.self-heal", *TAIL),
    ),
    Case(
        "Argo CD Application with automated sync, no selfHeal: risky",
        facts(WEB, gitops_owner=APP, gitops_automated=True),
        Safety.RISKY,
        3,
        ("gitops.automated", *TAIL),
    ),
    Case(
        "Argo CD Application with manual sync: a caution",
        facts(WEB, gitops_owner=APP),
        Safety.SAFE,
        3,
        ("gitops.manual-sync", *TAIL),
    ),
    Case(
        "Flux Kustomization owns it: Flux always reconciles, like selfHeal",
        facts(WEB, gitops_owner=ObjectRef("Kustomization", "flux-system", "shop")),
        Safety.RISKY,
        3,
        ("gitops.self-heal", *TAIL),
    ),
    Case(
        "Helm-managed: suggest helm rollback, still safe",
        facts(WEB, helm_release="shop"),
        Safety.SAFE,
        3,
        ("helm.managed", *TAIL),
    ),
    Case(
        "paused Deployment: risky",
        facts(WEB, paused=True),
        Safety.RISKY,
        3,
        ("paused", *TAIL),
    ),
    Case(
        "owned by Argo Rollouts: risky",
        facts(WEB, progressive_delivery="Argo Rollouts (Rollout web)"),
        Safety.RISKY,
        3,
        ("progressive-delivery", *TAIL),
    ),
    Case(
        "HPA present: the replica count stays, noted",
        facts(WEB, hpa=ObjectRef("HorizontalPodAutoscaler", NS, "web")),
        Safety.SAFE,
        3,
        (
            "target.known-good",
            "target.exists",
            "hpa.present",
            "data.never-served",
            "restore.observed",
        ),
    ),
    Case(
        "the target ran with 12 replicas, the workload now has 3: a caution",
        facts(
            WEB,
            (
                revision(WEB, 3, since=-1440, until=-4, desired_replicas=12),
                revision(WEB, 4, since=-4, current=True, unhealthy=True),
            ),
        ),
        Safety.SAFE,
        3,
        ("replicas.differ", *TAIL),
    ),
    Case(
        "another workload deployed after the target stopped serving: a caution",
        facts(WEB),
        Safety.SAFE,
        3,
        ("dependents.deployed-after", *TAIL),
        (deploy(deployment("checkout"), 12, at=-2), deploy(deployment("cart"), 3, at=-600)),
    ),
    Case(
        "a healthy new revision serving for two days: a caution about data",
        facts(
            WEB,
            (
                revision(WEB, 3, since=-5000, until=-2880),
                revision(WEB, 4, since=-2880, current=True, completed=-2878),
            ),
        ),
        Safety.SAFE,
        3,
        ("data.written-for", "target.known-good", "target.exists", "restore.observed"),
    ),
    Case(
        "StatefulSet with OnDelete: the rollback restores nothing by itself",
        facts(
            statefulset("db"),
            history(statefulset("db")),
            strategy="OnDelete",
        ),
        Safety.RISKY,
        3,
        ("restore.on-delete", "target.known-good", "target.exists", "data.never-served"),
    ),
    Case(
        "Recreate strategy: a short full outage, a caution",
        facts(WEB, strategy="Recreate"),
        Safety.SAFE,
        3,
        ("restore.recreate", *TAIL),
    ),
    Case(
        "cautions add up: Helm, manual GitOps, flags, replicas and a neighbour deploy",
        facts(
            WEB,
            (
                revision(WEB, 3, since=-1440, until=-4, desired_replicas=12),
                revision(WEB, 4, since=-4, current=True, completed=-3),
            ),
            helm_release="shop",
            gitops_owner=APP,
            strategy="Recreate",
        ),
        Safety.RISKY,
        3,
        (
            "flags.changed",
            "gitops.manual-sync",
            "helm.managed",
            "replicas.differ",
            "dependents.deployed-after",
            "restore.recreate",
            "target.known-good",
            "target.exists",
            "data.written-for",
            "restore.observed",
        ),
        (
            flag_flip(featureflag("f"), "a", at=-2, consumers=[WEB]),
            flag_flip(featureflag("f"), "b", at=-1, consumers=[WEB]),
            deploy(deployment("checkout"), 12, at=-2),
        ),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_verdict_target_and_reason_codes(case: Case) -> None:
    """Given revisions and changes, when judged, then the verdict, target and codes are exact."""
    verdict = assess_rollback(case.workload, case.changes, incident(), SCORING)
    assert tuple(r.code for r in verdict.reasons) == case.codes
    assert verdict.safety is case.safety
    assert verdict.to_revision == case.to_revision
    assert verdict.from_revision == case.workload.current_revision


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_score_band_matches_the_verdict(case: Case) -> None:
    """Given any case, then the score lies in 0..100 and in its verdict's band:
    safe SAFE_AT..100, risky UNSAFE_BELOW..SAFE_AT-1, unsafe 0..UNSAFE_BELOW-1."""
    verdict = assess_rollback(case.workload, case.changes, incident(), SCORING)
    band = {
        Safety.SAFE: range(SAFE_AT, 101),
        Safety.RISKY: range(UNSAFE_BELOW, SAFE_AT),
        Safety.UNSAFE: range(UNSAFE_BELOW),
    }[verdict.safety]
    assert verdict.score in band


def test_the_chosen_target_says_why() -> None:
    """Given a previous revision that never became available, then the reasons say the
    target is the last known-good, for how long it served, and why revision 3 was skipped."""
    workload = facts(
        WEB,
        (
            revision(WEB, 2, since=-2880, until=-60),
            revision(WEB, 3, since=-60, until=-4, healthy_for=timedelta(0), available=0),
            revision(WEB, 4, since=-4, current=True, unhealthy=True),
        ),
    )
    verdict = assess_rollback(workload, (), incident(), SCORING)
    messages = [r.message for r in verdict.reasons]
    assert messages[:2] == [
        "revision 3 skipped: it never became available",
        "revision 2 is the last known-good: it served healthy for 1d23h (policy: 10m)",
    ]


def test_known_good_follows_the_policy_setting() -> None:
    """Given a policy demanding 30 days of healthy service, then no revision qualifies and
    the briefly healthy one is a risky target."""
    strict = type(SCORING)(known_good_after=timedelta(days=30))
    verdict = assess_rollback(facts(WEB), (), incident(), strict)
    assert verdict.safety is Safety.RISKY
    assert verdict.to_revision == 3
    assert verdict.reasons[0].code == "target.briefly-healthy"


def test_unsafe_rollback_explains_the_blocker_first() -> None:
    """Given a linked migration, then the first reason is the migration, in words."""
    verdict = assess_rollback(
        facts(WEB), (migration("shop-db-migrate-28411", at=-5, affects=[WEB]),), incident(), SCORING
    )
    assert verdict.reasons[0].message == (
        "migration job/shop-db-migrate-28411 (alembic upgrade head) ran after revision 3 last"
        " proved itself: the old code may not read the new schema; roll forward instead"
    )
    assert verdict.score == UNSAFE_BELOW - 1


def test_selfheal_verdict_says_to_suspend_or_use_git() -> None:
    verdict = assess_rollback(
        facts(WEB, gitops_owner=APP, gitops_self_heal=True), (), incident(), SCORING
    )
    assert verdict.reasons[0].message == (
        "application/shop reverts manual changes within seconds: suspend it first or roll back"
        " in git"
    )


def test_helm_verdict_names_the_helm_command() -> None:
    verdict = assess_rollback(facts(WEB, helm_release="shop"), (), incident(), SCORING)
    assert verdict.reasons[0].message == (
        "Helm release shop manages it: prefer `helm rollback shop` so the release history"
        " stays true"
    )
    assert verdict.reasons[0].weight == -5


@pytest.mark.parametrize(
    ("name", "workload", "expected"),
    [
        ("median of observed rollouts", facts(WEB, rollout_seconds=(40.0, 300.0, 50.0)), 50),
        (
            "8 replicas, RollingUpdate defaults: surge 2 + unavailable 2, two waves",
            facts(WEB, rollout_seconds=(), replicas=8),
            60,
        ),
        (
            "StatefulSet of 3: one pod at a time",
            facts(statefulset("db"), history(statefulset("db")), rollout_seconds=()),
            90,
        ),
        (
            "Recreate: stop everything, then one wave",
            facts(WEB, rollout_seconds=(), strategy="Recreate"),
            60,
        ),
        ("OnDelete: never by itself", facts(WEB, strategy="OnDelete"), None),
    ],
)
def test_time_to_restore(name: str, workload: WorkloadFacts, expected: int | None) -> None:
    """Given observed rollouts or replicas and strategy, then this estimate (seconds)."""
    verdict = assess_rollback(workload, (), incident(), SCORING)
    if expected is None:
        assert verdict.time_to_restore is None
    else:
        assert verdict.time_to_restore == timedelta(seconds=expected)


# An engineer's explicit --to-revision is judged with the same checks.  History:
# 1 pruned, 2 served two days, 3 never became available, 4 served 5m, 5 is current.
CHOSEN = facts(
    WEB,
    (
        revision(WEB, 1, since=-5000, until=-2880, exists=False),
        revision(WEB, 2, since=-2880, until=-60),
        revision(WEB, 3, since=-60, until=-9, healthy_for=timedelta(0), available=0),
        revision(WEB, 4, since=-9, until=-4),
        revision(WEB, 5, since=-4, current=True, unhealthy=True),
    ),
)


@pytest.mark.parametrize(
    ("chosen", "safety", "first_code", "to_revision"),
    [
        (2, Safety.SAFE, "target.chosen-known-good", 2),
        (4, Safety.RISKY, "target.chosen-briefly-healthy", 4),
        (3, Safety.RISKY, "target.chosen-never-available", 3),
        (1, Safety.UNSAFE, "target.chosen-missing", None),
        (9, Safety.UNSAFE, "target.chosen-missing", None),
        (5, Safety.UNSAFE, "target.chosen-current", None),
    ],
    ids=["known-good", "briefly-healthy", "never-available", "pruned", "unknown", "current"],
)
def test_an_explicit_revision_is_judged_not_replaced(
    chosen: int, safety: Safety, first_code: str, to_revision: int | None
) -> None:
    """Given an engineer names --to-revision, when safety judges it, then the verdict is
    about that revision (never silently another one) and the first reason says why."""
    verdict = assess_rollback(CHOSEN, (), incident(), SCORING, to_revision=chosen)
    assert verdict.safety is safety
    assert verdict.to_revision == to_revision
    assert verdict.reasons[0].code == first_code


def test_an_unhealthy_chosen_revision_is_unsafe_and_says_so() -> None:
    """Given revision 3 was marked unhealthy, when an engineer chooses it, then the verdict is
    unsafe (break-glass remains) and names the evidence."""
    workload = facts(
        WEB,
        (
            revision(WEB, 2, since=-2880, until=-60),
            revision(WEB, 3, since=-60, until=-4, unhealthy=True),
            revision(WEB, 4, since=-4, current=True, unhealthy=True),
        ),
    )
    verdict = assess_rollback(workload, (), incident(), SCORING, to_revision=3)
    assert verdict.safety is Safety.UNSAFE
    assert verdict.reasons[0].code == "target.chosen-unhealthy"
    assert verdict.reasons[0].message.startswith("revision 3 was chosen, but it was unhealthy")
