"""Triage: the seed article's block check and its first fork, infrastructure or software.

``classify`` walks the blocks simplest first (resources and crashed processes,
infrastructure, dependencies, application changes) and attributes every
symptom to what explains it:

* a **change** in the window that affects the hurting workload and precedes
  the symptom (best: the symptom is on exactly the revision that change rolled
  out) -> software, even when the symptom sits in the resources block (a crash
  loop that began with a deploy is the deploy's fault);
* an **infrastructure** fault: NotReady or pressured nodes, pods that cannot
  be scheduled because nodes are gone or full, quota exhaustion nobody caused,
  image pulls failing with no new image, Services without endpoints whose
  backing workload did not change (a dependency is down), and many unrelated
  workloads hurting at once with no common change (``widespread``);
* both at once (quota exhausted right after a scale-up deploy) -> mixed;
* nothing -> the symptom is listed as unexplained.

Everything here is pure: no side effects, no clock (the incident carries the
times), no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TypeVar

from controller.core.timeline import (
    NODE_FAULTS,
    ROLLOUT_KINDS,
    SOFTWARE_KINDS,
    WORKLOAD_SYMPTOMS,
    before_start,
    began,
    change_label,
    follows,
    in_window,
)
from controller.model import (
    BLOCK_ORDER,
    Block,
    Change,
    ChangeKind,
    Classification,
    Incident,
    ObjectRef,
    Reason,
    Signal,
    SignalKind,
    Triage,
    TriageFinding,
)

# Symptoms of missing capacity to serve, which failing nodes cause by themselves.
_AVAILABILITY: frozenset[SignalKind] = frozenset(
    {SignalKind.NOT_READY, SignalKind.UNAVAILABLE, SignalKind.ROLLOUT_STALLED}
)

# This many distinct workloads hurting with no change to explain any of them is
# not a coincidence of independent bugs: something they share (nodes, network,
# DNS, a storage or database tier) is failing.
WIDESPREAD_MIN_WORKLOADS = 3

_T = TypeVar("_T")


class _Side(Enum):
    SOFTWARE = "software"
    INFRA = "infrastructure"
    BOTH = "both"
    NONE = "none"


@dataclass(frozen=True)
class _Attribution:
    signal: Signal
    side: _Side
    code: str
    change: Change | None = None
    synthetic: bool = False  # made by triage (widespread), not observed


def classify(signals: Sequence[Signal], changes: Sequence[Change], incident: Incident) -> Triage:
    """Place every signal in its block and decide software, infrastructure, mixed or unknown.

    Pure: no side effects; the clock is ``incident`` (its start and window).
    Only changes in the window count (:func:`controller.core.timeline.in_window`).
    Findings come in :data:`controller.model.BLOCK_ORDER`; the application
    finding also lists the symptoms a change explains, whatever block they sit
    in.  ``reasons`` start with one ``classification.*`` reason, followed by the
    evidence, one reason per (code, object) with a count.
    """
    window = _index_window([c for c in changes if in_window(c, incident)])
    node_faults = [s for s in signals if s.kind in NODE_FAULTS]
    hurting = frozenset(s.workload for s in signals if s.workload is not None)
    attributions = [_attribute(s, window, bool(node_faults), hurting) for s in signals]
    widespread = _widespread(attributions, signals)
    if widespread is not None:
        attributions = [
            _Attribution(a.signal, _Side.INFRA, "infra.widespread")
            if a.side is _Side.NONE and a.signal.kind in WORKLOAD_SYMPTOMS
            else a
            for a in attributions
        ]
        attributions.append(
            _Attribution(widespread, _Side.INFRA, "infra.widespread", synthetic=True)
        )

    classification = _classification(attributions)
    evidence = _evidence_reasons(attributions, incident)
    reasons = (_classification_reason(classification, attributions), *evidence)
    findings = tuple(_finding(block, attributions) for block in BLOCK_ORDER)
    return Triage(classification=classification, findings=findings, reasons=reasons)


# ---------------------------------------------------------------------------
# Attribution: what explains each symptom
# ---------------------------------------------------------------------------


def _attribute(
    signal: Signal,
    window: _Window,
    nodes_failing: bool,
    hurting: frozenset[ObjectRef],
) -> _Attribution:
    kind = signal.kind
    if kind in NODE_FAULTS:
        code = (
            "infra.node-not-ready" if kind is SignalKind.NODE_NOT_READY else "infra.node-pressure"
        )
        return _Attribution(signal, _Side.INFRA, code)
    if kind is SignalKind.WIDESPREAD:
        return _Attribution(signal, _Side.INFRA, "infra.widespread")

    software = _explaining_change(signal, window, hurting)
    if kind is SignalKind.UNSCHEDULABLE:
        # Nodes that are gone or sick leave pods nowhere to go, whatever was deployed.
        if nodes_failing:
            return _Attribution(signal, _Side.INFRA, "infra.unschedulable-nodes")
        if software is not None:
            return _Attribution(
                signal, _Side.SOFTWARE, "software.unschedulable-after-change", software
            )
        return _Attribution(signal, _Side.INFRA, "infra.unschedulable-capacity")
    if kind is SignalKind.QUOTA_EXCEEDED:
        # The change consumed the quota; either raising the quota or undoing the
        # change restores service: both sides own it.
        if software is not None:
            return _Attribution(signal, _Side.BOTH, "mixed.quota-after-change", software)
        return _Attribution(
            signal, _Side.INFRA, "infra.quota-exceeded", _infra_change(signal, window)
        )
    if kind is SignalKind.NO_READY_ENDPOINTS:
        if software is not None:
            return _Attribution(signal, _Side.SOFTWARE, "software.endpoints-after-change", software)
        return _Attribution(signal, _Side.INFRA, "dependency.no-ready-endpoints")
    if kind in _AVAILABILITY and nodes_failing:
        # Pods on a NotReady node turn not Ready and replicas go missing whatever
        # was deployed.  Only a symptom on exactly a new revision keeps the
        # change in the picture, and then both sides own it.
        if software is not None and _on_new_revision(signal, software):
            return _Attribution(signal, _Side.BOTH, "mixed.unavailable-nodes-and-change", software)
        return _Attribution(signal, _Side.INFRA, "infra.unavailable-nodes")

    if software is not None:
        return _Attribution(signal, _Side.SOFTWARE, _software_code(signal, software), software)
    infra = _infra_change(signal, window)
    if infra is not None:
        return _Attribution(signal, _Side.INFRA, "infra.change", infra)
    if kind is SignalKind.IMAGE_PULL:
        # No new image was rolled out, so the registry or the node's network fails.
        return _Attribution(signal, _Side.INFRA, "infra.image-pull")
    return _Attribution(signal, _Side.NONE, f"unexplained.{kind.value}")


@dataclass(frozen=True)
class _Window:
    """The changes in the window, indexed so each symptom looks up only its own."""

    software_by_workload: Mapping[ObjectRef, tuple[Change, ...]]
    rollouts_by_namespace: Mapping[str, tuple[Change, ...]]
    infra: tuple[Change, ...]


def _index_window(changes: Sequence[Change]) -> _Window:
    by_workload: dict[ObjectRef, list[Change]] = {}
    by_namespace: dict[str, list[Change]] = {}
    for change in changes:
        if change.kind not in SOFTWARE_KINDS:
            continue
        for ref in {change.target, *change.affects}:
            by_workload.setdefault(ref, []).append(change)
        if change.kind in ROLLOUT_KINDS:
            by_namespace.setdefault(change.target.namespace, []).append(change)
    return _Window(
        software_by_workload={k: tuple(v) for k, v in by_workload.items()},
        rollouts_by_namespace={k: tuple(v) for k, v in by_namespace.items()},
        infra=tuple(c for c in changes if c.kind is ChangeKind.INFRA),
    )


def _on_new_revision(signal: Signal, change: Change) -> bool:
    return (
        change.kind in ROLLOUT_KINDS
        and change.target == signal.workload
        and signal.revision is not None
        and signal.revision == change.revision
    )


def _explaining_change(
    signal: Signal, window: _Window, hurting: frozenset[ObjectRef]
) -> Change | None:
    """The software change that best explains ``signal``, or None.

    A rollout of the signal's own workload to exactly the failing revision wins.
    A rollout whose revision differs from the failing one explains nothing (the
    failing pods predate it).  Otherwise the latest change affecting the
    workload that began no later than the symptom.  A quota signal with no
    workload is explained by a rollout in its namespace that stalled or whose
    workload is hurting (a full quota alone is not news: it may have been full
    for weeks).
    """
    workload = signal.workload
    candidates: list[Change] = []
    if workload is None:
        if signal.kind is SignalKind.QUOTA_EXCEEDED:
            candidates = [
                c
                for c in window.rollouts_by_namespace.get(signal.target.namespace, ())
                if c.stalled or c.target in hurting
            ]
        return max(candidates, key=_latest) if candidates else None
    for change in window.software_by_workload.get(workload, ()):
        own_rollout = change.target == workload and change.kind in ROLLOUT_KINDS
        if own_rollout and signal.revision is not None and change.revision is not None:
            if signal.revision == change.revision:
                return change
            continue
        if signal.at is not None and not follows(signal.at, change):
            continue
        candidates.append(change)
    return max(candidates, key=_latest) if candidates else None


def _latest(change: Change) -> tuple[datetime, str]:
    return began(change), str(change.target)


def _infra_change(signal: Signal, window: _Window) -> Change | None:
    """An infrastructure change (node, quota) that reaches the signal's workload or object."""
    hits = [
        c
        for c in window.infra
        if (
            c.cluster_wide
            or c.target == signal.target
            or (signal.workload is not None and signal.workload in c.affects)
        )
        and (signal.at is None or follows(signal.at, c))
    ]
    return max(hits, key=_latest) if hits else None


def _software_code(signal: Signal, change: Change) -> str:
    if change.kind is ChangeKind.CONFIG:
        return "software.consumed-config-changed"
    if change.kind is ChangeKind.FLAG:
        return "software.flag-changed"
    if (
        change.kind in ROLLOUT_KINDS
        and signal.revision is not None
        and signal.revision == change.revision
    ):
        return "software.new-revision-unhealthy"
    return "software.after-change"


def _widespread(attributions: Sequence[_Attribution], signals: Sequence[Signal]) -> Signal | None:
    """A synthetic ``widespread`` signal when enough unrelated workloads hurt, else None."""
    if any(s.kind is SignalKind.WIDESPREAD for s in signals):
        return None
    unexplained: dict[ObjectRef, None] = {}
    for a in attributions:
        if a.side is _Side.NONE and a.signal.kind in WORKLOAD_SYMPTOMS and a.signal.workload:
            unexplained.setdefault(a.signal.workload, None)
    if len(unexplained) < WIDESPREAD_MIN_WORKLOADS:
        return None
    namespaces = sorted({w.namespace for w in unexplained})
    target = (
        ObjectRef("Namespace", "", namespaces[0])
        if len(namespaces) == 1
        else ObjectRef("Cluster", "", "cluster")
    )
    names = ", ".join(w.short for w in list(unexplained)[:4])
    more = f" and {len(unexplained) - 4} more" if len(unexplained) > 4 else ""
    return Signal(
        kind=SignalKind.WIDESPREAD,
        block=Block.INFRASTRUCTURE,
        target=target,
        message=(
            f"{len(unexplained)} unrelated workloads hurt at once with no change to explain"
            f" them ({names}{more})"
        ),
        count=len(unexplained),
    )


# ---------------------------------------------------------------------------
# Classification and its reasons
# ---------------------------------------------------------------------------


def _classification(attributions: Sequence[_Attribution]) -> Classification:
    sides = {a.side for a in attributions}
    software = bool(sides & {_Side.SOFTWARE, _Side.BOTH})
    infra = bool(sides & {_Side.INFRA, _Side.BOTH})
    if software and infra:
        return Classification.MIXED
    if software:
        return Classification.SOFTWARE
    if infra:
        return Classification.INFRASTRUCTURE
    return Classification.UNKNOWN


def _classification_reason(
    classification: Classification, attributions: Sequence[_Attribution]
) -> Reason:
    observed = [a for a in attributions if not a.synthetic]
    software = [a for a in observed if a.side in (_Side.SOFTWARE, _Side.BOTH)]
    infra = [a for a in observed if a.side in (_Side.INFRA, _Side.BOTH)]
    changes = _unique(change_label(a.change) for a in software if a.change is not None)
    code = f"classification.{classification.value}"
    if classification is Classification.SOFTWARE:
        return Reason(
            code,
            f"software: {_count(software, 'symptom')} {_verb(software, 'began')} after"
            f" {_join(changes)}; no infrastructure fault seen",
        )
    if classification is Classification.INFRASTRUCTURE:
        return Reason(
            code,
            f"infrastructure: {_count(infra, 'symptom')} {_verb(infra, 'point')} at shared"
            " infrastructure and no change in the window explains "
            + ("it" if len(infra) == 1 else "them"),
        )
    if classification is Classification.MIXED:
        return Reason(
            code,
            f"mixed: {_count(software, 'symptom')} {_verb(software, 'follow')}"
            f" {_join(changes)}, and {_count(infra, 'symptom')} {_verb(infra, 'point')} at"
            " infrastructure",
        )
    if not attributions:
        return Reason(code, "unknown: no ill health seen in scope")
    return Reason(
        code,
        f"unknown: {_count(observed, 'symptom')} with neither a change in the window"
        " nor an infrastructure fault to explain them",
    )


def _evidence_reasons(
    attributions: Sequence[_Attribution], incident: Incident
) -> tuple[Reason, ...]:
    """One reason per (code, object), counted, ordered by block and first appearance."""
    groups: dict[tuple[str, ObjectRef], list[_Attribution]] = {}
    for a in attributions:
        if a.code == "infra.widespread" and a.signal.kind is not SignalKind.WIDESPREAD:
            continue  # said once by the widespread signal itself
        obj = a.signal.workload or a.signal.target
        groups.setdefault((a.code, obj), []).append(a)
    ordered = sorted(groups.items(), key=lambda item: BLOCK_ORDER.index(item[1][0].signal.block))
    return tuple(
        Reason(code, _message(code, obj, group, incident)) for (code, obj), group in ordered
    )


def _message(code: str, obj: ObjectRef, group: Sequence[_Attribution], incident: Incident) -> str:
    what = _what(group)
    change = group[0].change
    name = obj.short
    if change is None:
        fixed = {
            "infra.unschedulable-nodes": f"{name}: pods unschedulable while nodes are NotReady"
            " or under pressure",
            "infra.unschedulable-capacity": f"{name}: pods unschedulable and no change asked"
            " for more: the cluster is out of capacity",
            "infra.quota-exceeded": f"{name}: quota exhausted and no rollout in the window"
            " consumed it",
            "infra.image-pull": f"{name}: image pulls fail although no new image was rolled"
            " out: registry or node network",
            "infra.unavailable-nodes": f"{name}: {what} while nodes are NotReady or under pressure",
            "dependency.no-ready-endpoints": f"{name}: no ready endpoints and its backend did"
            " not change: a dependency is down",
            "infra.widespread": what,
        }
        if code in fixed:
            return fixed[code]
        if code.startswith("infra.node"):
            return what
        return f"{name}: {what}, and no change in the window explains it"
    own = change.target == obj and change.revision is not None
    label = f"revision {change.revision}" if own else change_label(change)
    if change.stalled and change.kind in ROLLOUT_KINDS:
        rolled = f"whose rollout started {before_start(began(change), incident)}"
    else:
        rolled = f"rolled out {before_start(change.at, incident)}"
    when = before_start(change.at, incident)
    by_code = {
        "software.new-revision-unhealthy": f"{name}: {what} on {label}, {rolled}",
        "software.after-change": f"{name}: {what} since {label} ({when})",
        "software.consumed-config-changed": f"{name}: {what} since {label}, which it reads,"
        f" changed {when}",
        "software.flag-changed": f"{name}: {what} since {label} changed {when}",
        "software.unschedulable-after-change": f"{name}: pods unschedulable since {label}"
        f" ({when}): it asks for more than the nodes have",
        "software.endpoints-after-change": f"{name}: no ready endpoints since its backend"
        f" {label} ({when}): a bad release, not a dependency outage",
        "mixed.quota-after-change": f"{name}: quota exhausted right after {label} ({when}):"
        " roll it back or raise the quota",
        "mixed.unavailable-nodes-and-change": f"{name}: {what} on {label}, {rolled}, while"
        " nodes are NotReady or under pressure",
        "infra.quota-exceeded": f"{name}: quota exhausted since {label} ({when})",
    }
    return by_code.get(code, f"{name}: {what} since {label} ({when})")


def _what(group: Sequence[_Attribution]) -> str:
    first = group[0].signal
    if first.kind in NODE_FAULTS or first.kind is SignalKind.WIDESPREAD:
        return first.message
    counts: dict[SignalKind, int] = {}
    for a in group:
        counts[a.signal.kind] = counts.get(a.signal.kind, 0) + a.signal.count
    parts = []
    for kind, count in counts.items():
        phrase = _SYMPTOM[kind]
        if kind in _POD_SYMPTOMS:
            parts.append(f"{count} pod{'' if count == 1 else 's'} {phrase}")
        else:
            parts.append(phrase)
    return ", ".join(parts)


# Symptoms counted in pods (the others are one fact about one object).
_POD_SYMPTOMS: frozenset[SignalKind] = frozenset(
    {
        SignalKind.CRASH_LOOP,
        SignalKind.OOM_KILLED,
        SignalKind.IMAGE_PULL,
        SignalKind.NOT_READY,
        SignalKind.UNSCHEDULABLE,
    }
)

_SYMPTOM = {
    SignalKind.CRASH_LOOP: "crash-looping",
    SignalKind.OOM_KILLED: "OOMKilled",
    SignalKind.IMAGE_PULL: "failing to pull their image",
    SignalKind.UNAVAILABLE: "replicas unavailable",
    SignalKind.NOT_READY: "not Ready",
    SignalKind.ROLLOUT_STALLED: "rollout stalled",
    SignalKind.WARNING_EVENT: "warning events",
    SignalKind.UNSCHEDULABLE: "unschedulable",
    SignalKind.QUOTA_EXCEEDED: "quota exceeded",
    SignalKind.NODE_NOT_READY: "node NotReady",
    SignalKind.NODE_PRESSURE: "node under pressure",
    SignalKind.NO_READY_ENDPOINTS: "no ready endpoints",
    SignalKind.WIDESPREAD: "widespread failure",
}


# ---------------------------------------------------------------------------
# Findings per block
# ---------------------------------------------------------------------------

_CLEAR: dict[Block, str] = {
    Block.RESOURCES: "nothing exhausted or exceeded, no crashed processes seen",
    Block.INFRASTRUCTURE: "nodes Ready, no pressure, no widespread failure seen",
    Block.DEPENDENCIES: "no Service without ready endpoints seen",
    Block.APPLICATION: "no change in the window shows an unhealthy result",
}


def _finding(block: Block, attributions: Sequence[_Attribution]) -> TriageFinding:
    if block is Block.APPLICATION:
        chosen = [
            a
            for a in attributions
            if a.signal.block is block or (a.change is not None and a.side is not _Side.INFRA)
        ]
    else:
        chosen = [a for a in attributions if a.signal.block is block]
    signals = tuple(_unique(a.signal for a in chosen))
    if not signals:
        return TriageFinding(block, (), _CLEAR[block])
    if block is Block.APPLICATION:
        changes = _unique(change_label(a.change) for a in chosen if a.change is not None)
        if changes:
            summary = f"unhealthy after {_join(changes)}"
        else:
            summary = f"{_count(chosen, 'symptom')}, and no change in the window explains " + (
                "it" if len(chosen) == 1 else "them"
            )
        return TriageFinding(block, signals, summary)
    objects = _unique((a.signal.workload or a.signal.target).short for a in chosen)
    kinds = _unique(_SYMPTOM[a.signal.kind] for a in chosen)
    summary = f"{', '.join(kinds)}: {_join(objects)}"
    return TriageFinding(block, signals, summary)


# ---------------------------------------------------------------------------
# Small text helpers
# ---------------------------------------------------------------------------


def _unique(items: Iterable[_T]) -> list[_T]:
    seen: dict[_T, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


def _join(items: Sequence[str], limit: int = 3) -> str:
    shown = list(items[:limit])
    if len(items) > limit:
        shown.append(f"{len(items) - limit} more")
    return ", ".join(shown) if shown else "nothing"


def _verb(items: Sequence[object], verb: str) -> str:
    """``began`` stays; ``point`` -> ``points`` for one item (English agreement)."""
    if verb == "began" or len(items) != 1:
        return verb
    return verb + "s"


def _count(items: Sequence[object], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"
