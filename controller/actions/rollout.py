"""Rollout progress: is the workload done, still going, or failed?  Pure.

The same rules ``kubectl rollout status`` applies, read from the object's
status, plus a guard against reading a status from before our write: the
controller must have observed at least the generation our PATCH produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from controller.view import JSON, meta, name_of


class Phase(StrEnum):
    WAITING = "waiting"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Progress:
    """One look at a rollout: its phase, the counts, and a line for people."""

    phase: Phase
    desired: int
    updated: int
    ready: int
    available: int
    message: str

    @property
    def line(self) -> str:
        counts = (
            f"{self.updated}/{self.desired} updated, {self.ready}/{self.desired} ready, "
            f"{self.available}/{self.desired} available"
        )
        return f"{counts}: {self.message}" if self.message else counts


def rollout_progress(obj: JSON, generation: int = 0) -> Progress:
    """Where the rollout of a Deployment, StatefulSet or DaemonSet stands.

    ``generation`` is the ``metadata.generation`` our write produced; a status
    whose ``observedGeneration`` is older does not describe our rollout yet.
    """
    kind = obj.get("kind")
    spec: dict[str, Any] = obj.get("spec") or {}
    status: dict[str, Any] = obj.get("status") or {}
    generation = max(generation, _int(meta(obj).get("generation")))
    observed = _int(status.get("observedGeneration"))
    if kind == "DaemonSet":
        desired = _int(status.get("desiredNumberScheduled"))
        updated = _int(status.get("updatedNumberScheduled"))
        ready = _int(status.get("numberReady"))
        available = _int(status.get("numberAvailable"))
    else:
        desired = _int(spec.get("replicas", 1))
        updated = _int(status.get("updatedReplicas"))
        ready = _int(status.get("readyReplicas"))
        available = _int(status.get("availableReplicas"))

    def progress(phase: Phase, message: str = "") -> Progress:
        return Progress(phase, desired, updated, ready, available, message)

    if observed < generation:
        return progress(Phase.WAITING, "waiting for the controller to observe the change")
    if kind == "Deployment":
        for cond in status.get("conditions") or []:
            if (
                cond.get("type") == "Progressing"
                and cond.get("reason") == "ProgressDeadlineExceeded"
            ):
                return progress(
                    Phase.FAILED,
                    f"progress deadline exceeded ({cond.get('message') or name_of(obj)})",
                )
        total = _int(status.get("replicas"))
        if updated < desired:
            return progress(Phase.WAITING)
        if total > updated:
            return progress(Phase.WAITING, f"{total - updated} old replicas pending termination")
        if available < updated:
            return progress(Phase.WAITING)
        return progress(Phase.DONE, "rollout complete")
    if kind == "StatefulSet":
        if (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
            # Nothing rolls on its own: pods take the template when they are deleted.
            return progress(Phase.DONE, "OnDelete strategy: pods change only when deleted")
        if ready < desired:
            return progress(Phase.WAITING)
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            partition = _int((strategy.get("rollingUpdate") or {}).get("partition"))
            if updated < desired - partition:
                return progress(Phase.WAITING)
        if status.get("updateRevision") != status.get("currentRevision"):
            return progress(Phase.WAITING, f"pods moving to {status.get('updateRevision')}")
        return progress(Phase.DONE, "rollout complete")
    if kind == "DaemonSet":
        if updated < desired or available < desired:
            return progress(Phase.WAITING)
        return progress(Phase.DONE, "rollout complete")
    return progress(Phase.DONE, f"nothing rolls out for a {kind}")


def _int(value: object) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0
