"""Correlation: rank the changes before an incident, simplest and likeliest first.

A suspect's score in 0..1 is a weighted mean of four evidence families, each
in 0..1, with the weights of :class:`~controller.policy.scoring.ScoringWeights`:

* **closeness**: ``0.5 ** (distance / closeness_half_life)`` where distance
  runs from the change's effect (a rollout's completion, not its commit) to
  the incident start; a rollout that began before the start and finished after
  it has distance zero;
* **scope**: how the change reaches the hurting part of the system (the
  alerting workload itself, a ConfigMap or flag it reads, a cluster-wide
  change, the same namespace);
* **health**: the new revision (or the changed config's consumers) is unhealthy
  while the old one served fine;
* **prior**: how often that kind of change causes incidents.

Each family's contribution is a :class:`~controller.model.Reason` whose weight
is its share of the score, so the weights of a suspect's reasons add up to its
score.  docs/scoring.md explains the numbers.

Pure: no side effects; the clock is ``incident.start``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType

from controller.core.timeline import (
    ROLLOUT_KINDS,
    WORKLOAD_KINDS,
    affected_workloads,
    before_start,
    began,
    follows,
    hurting_workloads,
    in_window,
    straddles_start,
)
from controller.durations import format_duration
from controller.model import (
    Change,
    ChangeKind,
    Incident,
    ObjectRef,
    Reason,
    Signal,
    Suspect,
    WorkloadFacts,
)
from controller.policy.scoring import ScoringSettings, ScoringWeights

# Tie-break order: at equal scores the simpler change comes first, as the seed
# article checks the simple blocks first.  A config or flag change is one
# value to look at and undo; a deploy is one workload; a Helm release bundles
# several objects; a node or quota change is outside the application; a
# migration changes data; a GitOps sync bundles arbitrary changes; a commit
# changes nothing in the cluster until something deploys it.
SIMPLICITY: tuple[ChangeKind, ...] = (
    ChangeKind.CONFIG,
    ChangeKind.FLAG,
    ChangeKind.DEPLOY,
    ChangeKind.HELM,
    ChangeKind.INFRA,
    ChangeKind.MIGRATION,
    ChangeKind.GITOPS,
    ChangeKind.COMMIT,
)

# Scope family: how directly a change reaches the hurting part of the system.
SCOPE_ALERTING = 1.0  # the alerting workload itself changed
SCOPE_ALERTING_VIA = 0.9  # something it reads or runs with changed (config, flag, release)
SCOPE_UNHEALTHY = 0.8  # a workload seen unhealthy (not the alerting one) changed
SCOPE_UNHEALTHY_VIA = 0.7  # something an unhealthy workload reads changed
SCOPE_CLUSTER_WIDE = 0.5  # a change that touches everything (nodes, CRDs, admission)
SCOPE_SAME_NAMESPACE = 0.4  # the same namespace, no known link (or nothing hurts at all)
SCOPE_ELSEWHERE = 0.1  # in scope, but no link at all

# Health family: the new revision is unhealthy (or the consumers of a changed
# config fell ill after it), and the old one served fine.
HEALTH_NEW_UNHEALTHY = 0.6  # signals on exactly the revision the change rolled out
HEALTH_ROLLOUT_STALLED = 0.6  # the change's rollout never completed
HEALTH_AFFECTED_UNHEALTHY = 0.5  # an affected workload fell ill after the change began
HEALTH_AFFECTED_UNTIMED = 0.3  # an affected workload is ill, since when unknown
HEALTH_OLD_HEALTHY = 0.4  # the revision (or config) before it served healthy

_NO_WORKLOADS: Mapping[ObjectRef, WorkloadFacts] = MappingProxyType({})


@dataclass(frozen=True)
class _Part:
    family: str
    value: float
    code: str
    message: str


@dataclass(frozen=True)
class _Index:
    """The signals and workloads every suspect is scored against, indexed once.

    Ranking thousands of revisions against hundreds of signals must not be a
    product of the two: each change looks up only its own workloads.
    """

    focus: Mapping[ObjectRef, int]  # alerting workload -> its position
    hurting: Mapping[ObjectRef, int]  # other workloads that signals name -> position
    by_workload: Mapping[ObjectRef, tuple[Signal, ...]]
    by_target: Mapping[ObjectRef, tuple[Signal, ...]]  # a node's, a quota's own signals
    namespaces: frozenset[str]  # namespaces of the alerting and hurting workloads


def _index(signals: Sequence[Signal], focus: Sequence[ObjectRef]) -> _Index:
    by_workload: dict[ObjectRef, list[Signal]] = {}
    by_target: dict[ObjectRef, list[Signal]] = {}
    for signal in signals:
        if signal.workload is not None:
            by_workload.setdefault(signal.workload, []).append(signal)
        by_target.setdefault(signal.target, []).append(signal)
    focus_order = {w: i for i, w in enumerate(dict.fromkeys(focus))}
    hurting = [w for w in hurting_workloads(signals) if w not in focus_order]
    namespaces = {w.namespace for w in (*focus_order, *hurting)}
    return _Index(
        focus=focus_order,
        hurting={w: i for i, w in enumerate(hurting)},
        by_workload={w: tuple(ss) for w, ss in by_workload.items()},
        by_target={t: tuple(ss) for t, ss in by_target.items()},
        namespaces=frozenset(namespaces),
    )


def rank_suspects(
    changes: Sequence[Change],
    signals: Sequence[Signal],
    incident: Incident,
    scoring: ScoringSettings,
    focus: Sequence[ObjectRef] = (),
    *,
    workloads: Mapping[ObjectRef, WorkloadFacts] = _NO_WORKLOADS,
) -> tuple[Suspect, ...]:
    """Rank the changes in the incident window; an empty tuple means nothing changed.

    Pure: no side effects; the clock is ``incident.start``.  ``focus`` names the
    alerting workloads (``--workload`` or the controller's alert); without it the
    workloads that signals name stand in.  ``workloads`` (optional) supplies
    revision facts for the "old revision healthy" evidence.  Changes that began
    after the incident start, or took effect before the lookback window, are not
    suspects.  Ranks run 1..n by score, ties broken toward simpler kinds
    (:data:`SIMPLICITY`), then the later change, then the target's name.
    """
    index = _index(signals, focus)
    scored: list[Suspect] = []
    for change in changes:
        if not in_window(change, incident):
            continue
        parts = [
            _closeness(change, incident, scoring),
            _scope(change, index),
            *_health(change, index, scoring, workloads),
            _prior(change, scoring),
        ]
        scored.append(_suspect(change, parts, scoring.weights, incident))
    scored.sort(
        key=lambda s: (
            -round(s.score, 9),
            SIMPLICITY.index(s.change.kind),
            -s.change.at.timestamp(),
            str(s.change.target),
            s.change.flag or "",
        )
    )
    return tuple(dataclasses.replace(s, rank=i) for i, s in enumerate(scored, start=1))


def _suspect(
    change: Change, parts: Sequence[_Part], weights: ScoringWeights, incident: Incident
) -> Suspect:
    family_weight = {
        "closeness": weights.closeness,
        "scope": weights.scope,
        "health": weights.health,
        "prior": weights.prior,
    }
    total = sum(max(w, 0.0) for w in family_weight.values()) or 1.0
    # A family's parts add up, but a family never counts for more than 1.
    family_sum: dict[str, float] = {}
    reasons: list[Reason] = []
    for part in parts:
        room = 1.0 - family_sum.get(part.family, 0.0)
        value = min(max(part.value, 0.0), room)
        family_sum[part.family] = family_sum.get(part.family, 0.0) + value
        weight = max(family_weight[part.family], 0.0) * value / total
        reasons.append(Reason(part.code, part.message, weight))
    if straddles_start(change, incident):
        reasons.append(
            Reason(
                "after-incident",
                f"it took effect {before_start(change.at, incident)}, but began"
                f" {before_start(began(change), incident)}, so it counts",
            )
        )
    score = min(max(sum(r.weight for r in reasons), 0.0), 1.0)
    return Suspect(change=change, score=score, reasons=tuple(reasons))


# ---------------------------------------------------------------------------
# Evidence families
# ---------------------------------------------------------------------------


def _closeness(change: Change, incident: Incident, scoring: ScoringSettings) -> _Part:
    distance = max(incident.start - change.at, timedelta(0))
    half_life = scoring.closeness_half_life.total_seconds()
    value = 0.5 ** (distance.total_seconds() / half_life) if half_life > 0 else 1.0
    verb = _verb(change)
    if change.stalled and change.kind in ROLLOUT_KINDS:
        message = f"{verb} {before_start(began(change), incident)} and never completed"
    elif straddles_start(change, incident):
        message = (
            f"{verb} {before_start(began(change), incident)} and completed"
            f" {before_start(change.at, incident)}"
        )
    else:
        message = f"{_past(change)} {before_start(change.at, incident)}"
    return _Part("closeness", value, "closeness", message)


def _verb(change: Change) -> str:
    return "rollout started" if change.kind in ROLLOUT_KINDS else "began"


def _past(change: Change) -> str:
    return {
        ChangeKind.DEPLOY: "rolled out",
        ChangeKind.HELM: "release rolled out",
        ChangeKind.GITOPS: "synced and rolled out",
        ChangeKind.CONFIG: "written",
        ChangeKind.FLAG: "flipped",
        ChangeKind.MIGRATION: "ran",
        ChangeKind.INFRA: "changed",
        ChangeKind.COMMIT: "committed",
    }[change.kind]


def _scope(change: Change, index: _Index) -> _Part:
    affected = affected_workloads(change)
    direct = change.target.kind in WORKLOAD_KINDS
    via_code = {
        ChangeKind.CONFIG: "scope.consumed-config",
        ChangeKind.FLAG: "scope.consumed-flag",
    }.get(change.kind, "scope.affects-workload")
    via_verb = {
        ChangeKind.CONFIG: "reads it",
        ChangeKind.FLAG: "evaluates it",
        ChangeKind.INFRA: "runs on it",
        ChangeKind.MIGRATION: "uses the schema it changed",
        ChangeKind.COMMIT: "runs a build of it",
    }.get(change.kind, "is rolled out by it")

    if direct and change.target in index.focus:
        return _Part(
            "scope",
            SCOPE_ALERTING,
            "scope.alerting-workload",
            f"{change.target.short} is alerting",
        )
    reached = _first(affected, index.focus)
    if reached is not None:
        return _Part(
            "scope", SCOPE_ALERTING_VIA, via_code, f"the alerting {reached.short} {via_verb}"
        )
    if direct and change.target in index.hurting:
        return _Part(
            "scope",
            SCOPE_UNHEALTHY,
            "scope.unhealthy-workload",
            f"{change.target.short} is unhealthy",
        )
    reached = _first(affected, index.hurting)
    if reached is not None:
        return _Part(
            "scope", SCOPE_UNHEALTHY_VIA, via_code, f"the unhealthy {reached.short} {via_verb}"
        )
    if change.cluster_wide:
        return _Part("scope", SCOPE_CLUSTER_WIDE, "scope.cluster-wide", "it reaches every workload")
    if change.target.namespace and change.target.namespace in index.namespaces:
        return _Part(
            "scope",
            SCOPE_SAME_NAMESPACE,
            "scope.same-namespace",
            f"same namespace ({change.target.namespace}), no direct link",
        )
    if not index.namespaces:
        # Nothing alerts and nothing hurts: every change in the assessed scope is
        # as near as any other.
        return _Part(
            "scope",
            SCOPE_SAME_NAMESPACE,
            "scope.in-scope",
            "in the assessed scope; nothing alerting or unhealthy to link it to",
        )
    return _Part("scope", SCOPE_ELSEWHERE, "scope.elsewhere", "no link to what is hurting")


def _first(workloads: Sequence[ObjectRef], order: Mapping[ObjectRef, int]) -> ObjectRef | None:
    """The workload among ``workloads`` that comes first in ``order``, if any."""
    hits = [w for w in workloads if w in order]
    return min(hits, key=lambda w: order[w]) if hits else None


def _health(
    change: Change,
    index: _Index,
    scoring: ScoringSettings,
    workloads: Mapping[ObjectRef, WorkloadFacts],
) -> list[_Part]:
    affected = set(affected_workloads(change))
    if change.cluster_wide:
        affected |= set(index.by_workload)
    own = change.target if change.target.kind in WORKLOAD_KINDS else None
    signals = [s for w in sorted(affected) for s in index.by_workload.get(w, ())]

    new: _Part | None = None
    if own is not None and change.kind in ROLLOUT_KINDS and change.revision is not None:
        on_new = [s for s in index.by_workload.get(own, ()) if s.revision == change.revision]
        if on_new:
            new = _Part(
                "health",
                HEALTH_NEW_UNHEALTHY,
                "health.new-revision-unhealthy",
                f"revision {change.revision} is unhealthy: {_kinds(on_new)}",
            )
    if new is None and change.kind is ChangeKind.INFRA:
        # The changed node or quota is itself failing now (NotReady, pressure,
        # exhausted): the change is where the symptom is, whatever the timing.
        own_signals = index.by_target.get(change.target, ())
        if own_signals:
            new = _Part(
                "health",
                HEALTH_NEW_UNHEALTHY,
                "health.target-unhealthy",
                f"{change.target.short} itself is failing: {_kinds(own_signals)}",
            )
    if new is None and change.stalled and change.kind in ROLLOUT_KINDS:
        new = _Part(
            "health",
            HEALTH_ROLLOUT_STALLED,
            "health.rollout-stalled",
            "its rollout never completed",
        )
    if new is None and change.stalled and change.kind is ChangeKind.MIGRATION:
        new = _Part(
            "health",
            HEALTH_ROLLOUT_STALLED,
            "health.migration-failed",
            "the migration did not complete",
        )
    if new is None:
        after = [
            s
            for s in signals
            if s.at is not None and follows(s.at, change) and not _older_revision(s, change, own)
        ]
        untimed = [s for s in signals if s.at is None and not _older_revision(s, change, own)]
        if after:
            names = sorted({s.workload.short for s in after if s.workload})
            new = _Part(
                "health",
                HEALTH_AFFECTED_UNHEALTHY,
                "health.affected-unhealthy",
                f"{', '.join(names)} unhealthy since it: {_kinds(after)}",
            )
        elif untimed:
            names = sorted({s.workload.short for s in untimed if s.workload})
            new = _Part(
                "health",
                HEALTH_AFFECTED_UNTIMED,
                "health.affected-unhealthy",
                f"{', '.join(names)} unhealthy (since when unknown): {_kinds(untimed)}",
            )
    if new is None:
        return []
    return [
        new,
        *_old_health(
            change,
            index=index,
            scoring=scoring,
            workloads=workloads,
            own=own,
            affected=affected,
        ),
    ]


def _older_revision(signal: Signal, change: Change, own: ObjectRef | None) -> bool:
    """True when the signal is about a revision other than the one ``change`` rolled out."""
    return (
        own is not None
        and signal.workload == own
        and change.kind in ROLLOUT_KINDS
        and signal.revision is not None
        and change.revision is not None
        and signal.revision != change.revision
    )


def _old_health(
    change: Change,
    *,
    index: _Index,
    scoring: ScoringSettings,
    workloads: Mapping[ObjectRef, WorkloadFacts],
    own: ObjectRef | None,
    affected: set[ObjectRef],
) -> list[_Part]:
    """Was the state before the change fine?  A part for yes, a zero-weight note for no."""
    if own is not None and change.kind in ROLLOUT_KINDS and change.previous_revision is not None:
        previous = change.previous_revision
        on_old = [s for s in index.by_workload.get(own, ()) if s.revision == previous]
        facts = workloads.get(own)
        info = next((r for r in facts.revisions if r.revision == previous), None) if facts else None
        if on_old or (info is not None and info.unhealthy):
            return [
                _Part(
                    "health",
                    0.0,
                    "health.old-revision-unhealthy",
                    f"revision {previous} was unhealthy too: the problem may predate this change",
                )
            ]
        if info is not None and info.healthy_for >= scoring.known_good_after:
            return [
                _Part(
                    "health",
                    HEALTH_OLD_HEALTHY,
                    "health.old-revision-healthy",
                    f"revision {previous} served healthy for {format_duration(info.healthy_for)}",
                )
            ]
        return []
    if change.kind in ROLLOUT_KINDS and own is not None:
        return []
    start = began(change)
    for workload in sorted(affected):
        facts = workloads.get(workload)
        if facts is None:
            continue
        # The revision that was serving when the change landed (a restart to pick
        # up new config makes a newer one current since).
        serving = [
            r
            for r in facts.revisions
            if r.active_since is not None
            and r.active_since <= start
            and (r.active_until is None or r.active_until > start)
        ]
        if not serving:
            continue
        info = max(serving, key=lambda r: r.revision)
        since = info.active_since or start
        sick_before = any(
            s.at is not None and s.at < start for s in index.by_workload.get(workload, ())
        )
        if not sick_before and start - since >= scoring.known_good_after:
            return [
                _Part(
                    "health",
                    HEALTH_OLD_HEALTHY,
                    "health.healthy-before-change",
                    f"{workload.short} ran fine for {format_duration(start - since)} before it",
                )
            ]
    return []


def _prior(change: Change, scoring: ScoringSettings) -> _Part:
    value = scoring.priors.get(change.kind, 0.5)
    return _Part(
        "prior",
        value,
        f"prior.{change.kind.value}",
        f"{change.kind.value} changes: prior {value:.2f}",
    )


def _kinds(signals: Sequence[Signal]) -> str:
    seen: dict[str, None] = {}
    for s in signals:
        seen.setdefault(s.kind.value, None)
    return ", ".join(seen)
