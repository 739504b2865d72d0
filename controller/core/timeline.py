"""Small shared facts about changes and time that every core decision uses.

Pure: no side effects, no clock; the incident carries the only times used.
Keeping the window rule in one place makes triage, ranking and safety agree on
which changes count ("a rollout that started before the incident and finished
after it counts; a change that began after the start does not").
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from controller.durations import format_duration
from controller.model import Change, ChangeKind, Incident, ObjectRef, Signal, SignalKind

WORKLOAD_KINDS: frozenset[str] = frozenset({"Deployment", "StatefulSet", "DaemonSet"})

# Changes that roll a workload to a new revision (they carry revision numbers of
# the workload, or of a release or application that rolls it).
ROLLOUT_KINDS: frozenset[ChangeKind] = frozenset(
    {ChangeKind.DEPLOY, ChangeKind.HELM, ChangeKind.GITOPS}
)

# Changes made to the software: what it runs, how it is configured, which code
# paths are on.  A bare commit is not here: it changes nothing in the cluster
# until something deploys it.
SOFTWARE_KINDS: frozenset[ChangeKind] = frozenset(
    {
        ChangeKind.DEPLOY,
        ChangeKind.HELM,
        ChangeKind.GITOPS,
        ChangeKind.CONFIG,
        ChangeKind.FLAG,
        ChangeKind.MIGRATION,
    }
)

# Symptoms that belong to a workload's own pods (as opposed to a node, a quota
# or a Service).
WORKLOAD_SYMPTOMS: frozenset[SignalKind] = frozenset(
    {
        SignalKind.CRASH_LOOP,
        SignalKind.OOM_KILLED,
        SignalKind.IMAGE_PULL,
        SignalKind.UNAVAILABLE,
        SignalKind.NOT_READY,
        SignalKind.ROLLOUT_STALLED,
        SignalKind.WARNING_EVENT,
        SignalKind.UNSCHEDULABLE,
    }
)

NODE_FAULTS: frozenset[SignalKind] = frozenset(
    {SignalKind.NODE_NOT_READY, SignalKind.NODE_PRESSURE}
)


# A change explains, by timing alone, a symptom that began after it began and
# no later than this after it took effect.  A workload that served for hours
# after a change and then fell ill points elsewhere (a dependency, the nodes,
# load); a symptom on exactly the revision a rollout introduced is that
# rollout's whatever the timing.
EFFECT_WINDOW = timedelta(hours=1)


def follows(moment: datetime, change: Change) -> bool:
    """True when a symptom that began at ``moment`` can be the effect of ``change``."""
    return began(change) <= moment <= change.at + EFFECT_WINDOW


def began(change: Change) -> datetime:
    """When the change began: its rollout start if known, else when it took effect."""
    return change.started_at if change.started_at is not None else change.at


def in_window(change: Change, incident: Incident) -> bool:
    """True when ``change`` can have caused the incident.

    It must have begun no later than the incident start (a rollout that started
    before and completed after counts) and taken effect no earlier than the
    lookback window's start.
    """
    return began(change) <= incident.start and change.at >= incident.window_start


def straddles_start(change: Change, incident: Incident) -> bool:
    """True for a change that began before the incident start and took effect after it."""
    return began(change) <= incident.start < change.at


def affected_workloads(change: Change) -> tuple[ObjectRef, ...]:
    """The workloads a change can influence: ``affects``, plus its target if that is a workload."""
    out = list(change.affects)
    if change.target.kind in WORKLOAD_KINDS and change.target not in out:
        out.insert(0, change.target)
    return tuple(out)


def hurting_workloads(signals: Iterable[Signal]) -> tuple[ObjectRef, ...]:
    """Workloads some signal names, in first-seen order."""
    seen: dict[ObjectRef, None] = {}
    for signal in signals:
        if signal.workload is not None:
            seen.setdefault(signal.workload, None)
    return tuple(seen)


def before_start(moment: datetime, incident: Incident) -> str:
    """``"4m before the incident start"`` / ``"2m after the incident start"``."""
    delta = incident.start - moment
    if delta >= timedelta(0):
        return f"{format_duration(delta)} before the incident start"
    return f"{format_duration(-delta)} after the incident start"


def change_label(change: Change) -> str:
    """A short name: ``deployment/web revision 4``, ``configmap/app``, ``flag checkout (...)``."""
    label = change.target.short
    if change.flag:
        label = f"flag {change.flag} ({label})"
    if change.revision is not None and change.kind in ROLLOUT_KINDS:
        label = f"{label} revision {change.revision}"
    return label
