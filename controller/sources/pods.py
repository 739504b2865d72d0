"""What a Pod's status says about its health, read from the API's own fields.

Shared by the workload history (is this revision healthy?) and the signals
source (what is hurting right now?).  Pure functions over pod dictionaries;
``now`` is a parameter.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.durations import parse_k8s_time
from controller.model import SignalKind
from controller.view import JSON, meta

# A container waiting for one of these reasons will not start on its own.
CRASH_REASONS = frozenset({"CrashLoopBackOff", "RunContainerError"})
IMAGE_REASONS = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName"})
CONFIG_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError"})

# A Running pod may be briefly not Ready while it warms up; only a pod that
# stays not Ready past this grace counts as unhealthy.  It is short on
# purpose: during an incident a minute of unreadiness is already news.
NOT_READY_GRACE = timedelta(seconds=60)

# An OOM kill older than this is history, not a symptom of the incident.
RECENT_TERMINATION = timedelta(hours=1)


@dataclass(frozen=True)
class PodProblem:
    """One reason a pod is unhealthy, with the time it began where known."""

    kind: SignalKind
    reason: str
    container: str = ""
    since: datetime | None = None


def container_statuses(pod: JSON) -> Iterator[JSON]:
    status = pod.get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for item in status.get(key) or []:
            if isinstance(item, dict):
                yield item


def condition(obj: JSON, kind: str) -> JSON | None:
    """The status condition of type ``kind`` (Pods, Nodes, Deployments, Jobs share the shape)."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def is_ready(pod: JSON) -> bool:
    cond = condition(pod, "Ready")
    return bool(cond and cond.get("status") == "True")


def ready_since(pod: JSON) -> datetime | None:
    """When the pod last became Ready, or None when it is not Ready."""
    cond = condition(pod, "Ready")
    if not cond or cond.get("status") != "True":
        return None
    return parse_k8s_time(cond.get("lastTransitionTime"))


def restart_count(pod: JSON) -> int:
    return sum(int(c.get("restartCount") or 0) for c in container_statuses(pod))


def is_terminating(pod: JSON) -> bool:
    return bool(meta(pod).get("deletionTimestamp"))


def pod_problems(pod: JSON, now: datetime) -> tuple[PodProblem, ...]:
    """Every reason this pod is unhealthy at ``now``; empty for a healthy or finished pod.

    Pure: reads only the pod dictionary.  Succeeded pods (Job pods) and pods
    being deleted are never problems: they are supposed to stop.
    """
    status = pod.get("status") or {}
    phase = status.get("phase")
    if phase == "Succeeded" or is_terminating(pod):
        return ()
    problems: list[PodProblem] = []
    for cs in container_statuses(pod):
        name = str(cs.get("name") or "")
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = str(waiting.get("reason") or "")
        last = (cs.get("lastState") or {}).get("terminated") or {}
        last_end = parse_k8s_time(last.get("finishedAt"))
        if reason in CRASH_REASONS:
            problems.append(PodProblem(SignalKind.CRASH_LOOP, reason, name, last_end))
        elif reason in IMAGE_REASONS:
            problems.append(PodProblem(SignalKind.IMAGE_PULL, reason, name))
        elif reason in CONFIG_REASONS:
            problems.append(PodProblem(SignalKind.NOT_READY, reason, name))
        terminated = (cs.get("state") or {}).get("terminated") or {}
        for term in (last, terminated):
            if term.get("reason") == "OOMKilled":
                end = parse_k8s_time(term.get("finishedAt"))
                if end is None or now - end <= RECENT_TERMINATION:
                    problems.append(PodProblem(SignalKind.OOM_KILLED, "OOMKilled", name, end))
                    break
    scheduled = condition(pod, "PodScheduled")
    if phase == "Pending" and scheduled and scheduled.get("reason") == "Unschedulable":
        problems.append(
            PodProblem(
                SignalKind.UNSCHEDULABLE,
                "Unschedulable",
                since=parse_k8s_time(scheduled.get("lastTransitionTime")),
            )
        )
    if phase == "Failed":
        problems.append(PodProblem(SignalKind.NOT_READY, str(status.get("reason") or "Failed")))
    if not problems and phase == "Running" and not is_ready(pod):
        cond = condition(pod, "Ready") or {}
        since = parse_k8s_time(cond.get("lastTransitionTime")) or parse_k8s_time(
            status.get("startTime")
        )
        if since is None or now - since >= NOT_READY_GRACE:
            problems.append(PodProblem(SignalKind.NOT_READY, "NotReady", since=since))
    return tuple(problems)
