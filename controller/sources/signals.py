"""Signals: what is hurting right now, each placed in its triage block.

Read from the objects' own status: pods (crash loops, OOM kills, image pulls,
unschedulable, not Ready), workloads (stalled rollouts, unavailable
replicas), nodes (NotReady, pressure), ResourceQuotas (exhausted), Services
(no ready endpoints, from EndpointSlices or, when those were not read, from
the Ready pods the selector picks), and warning Events (core/v1 and
events.k8s.io/v1).  Signals about the pods of one workload revision are
grouped into one, with a count.  Pure functions over the view.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from controller.durations import parse_k8s_time
from controller.model import Block, ObjectRef, Signal, SignalKind
from controller.sources.infra import PRESSURE_CONDITIONS
from controller.sources.pods import condition, is_ready, pod_problems
from controller.sources.workloads import CONTROLLER_REVISION_HASH, REVISION, revision_number
from controller.view import (
    JSON,
    ClusterView,
    annotations_of,
    event_time,
    labels_of,
    meta,
    name_of,
    namespace_of,
)

BLOCK_OF: dict[SignalKind, Block] = {
    SignalKind.CRASH_LOOP: Block.RESOURCES,
    SignalKind.OOM_KILLED: Block.RESOURCES,
    SignalKind.QUOTA_EXCEEDED: Block.RESOURCES,
    SignalKind.UNSCHEDULABLE: Block.RESOURCES,
    SignalKind.NODE_NOT_READY: Block.INFRASTRUCTURE,
    SignalKind.NODE_PRESSURE: Block.INFRASTRUCTURE,
    SignalKind.WIDESPREAD: Block.INFRASTRUCTURE,
    SignalKind.NO_READY_ENDPOINTS: Block.DEPENDENCIES,
    SignalKind.IMAGE_PULL: Block.APPLICATION,
    SignalKind.ROLLOUT_STALLED: Block.APPLICATION,
    SignalKind.UNAVAILABLE: Block.APPLICATION,
    SignalKind.NOT_READY: Block.APPLICATION,
    SignalKind.WARNING_EVENT: Block.APPLICATION,
}

# Warning event reasons that name a specific symptom; the rest are generic.
_EVENT_KINDS: dict[str, SignalKind] = {
    "BackOff": SignalKind.CRASH_LOOP,
    "CrashLoopBackOff": SignalKind.CRASH_LOOP,
    "OOMKilling": SignalKind.OOM_KILLED,
    "FailedScheduling": SignalKind.UNSCHEDULABLE,
    "ErrImagePull": SignalKind.IMAGE_PULL,
    "Unhealthy": SignalKind.NOT_READY,
    "NodeNotReady": SignalKind.NODE_NOT_READY,
}

_PHRASES: dict[SignalKind, str] = {
    SignalKind.CRASH_LOOP: "crash-looping",
    SignalKind.OOM_KILLED: "killed for running out of memory",
    SignalKind.IMAGE_PULL: "failing to pull their image",
    SignalKind.UNSCHEDULABLE: "unschedulable",
    SignalKind.NOT_READY: "not Ready",
}


def collect_signals(view: ClusterView, since: datetime, now: datetime) -> list[Signal]:
    """Every health signal in the view; events count from ``since`` on.  Pure."""
    resolver = _Owners(view)
    signals: list[Signal] = []
    signals.extend(_pod_signals(view, resolver, now))
    signals.extend(_workload_signals(view))
    signals.extend(_node_signals(view))
    signals.extend(_quota_signals(view))
    signals.extend(_service_signals(view))
    signals.extend(_event_signals(view, resolver, since, signals, now))
    return signals


def _signal(kind: SignalKind, target: ObjectRef, message: str, **kw: object) -> Signal:
    return Signal(kind=kind, block=BLOCK_OF[kind], target=target, message=message, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Owners: pod -> (workload, revision)
# ---------------------------------------------------------------------------


class _Owners:
    """Resolves pods and ReplicaSets to their workload and revision number."""

    def __init__(self, view: ClusterView) -> None:
        self.view = view

    def of_pod(self, pod: JSON) -> tuple[ObjectRef | None, int | None]:
        owner = _controller(pod)
        if owner is None:
            return None, None
        namespace = namespace_of(pod)
        if owner.get("kind") == "ReplicaSet":
            rs = self.view.by_uid(str(owner.get("uid") or "")) or self.view.get(
                "ReplicaSet", namespace, str(owner.get("name"))
            )
            if rs is None:
                return None, None
            return self.of_replicaset(rs)
        if owner.get("kind") in ("StatefulSet", "DaemonSet"):
            ref = ObjectRef(str(owner["kind"]), namespace, str(owner.get("name")))
            return ref, self._cr_revision(pod, ref)
        if owner.get("kind") == "Job":
            return ObjectRef("Job", namespace, str(owner.get("name"))), None
        return None, None

    def of_replicaset(self, rs: JSON) -> tuple[ObjectRef | None, int | None]:
        owner = _controller(rs)
        revision = int(annotations_of(rs).get(REVISION, "0") or 0) if annotations_of(rs) else None
        if owner and owner.get("kind") == "Deployment":
            return ObjectRef("Deployment", namespace_of(rs), str(owner.get("name"))), revision
        return None, revision

    def _cr_revision(self, pod: JSON, ref: ObjectRef) -> int | None:
        label = labels_of(pod).get(CONTROLLER_REVISION_HASH)
        if not label:
            return None
        for cr in self.view.of_kind("ControllerRevision", ref.namespace):
            name = name_of(cr)
            if name in (label, f"{ref.name}-{label}"):
                return revision_number(cr)
        return None

    def of_object(
        self, kind: str, namespace: str, name: str
    ) -> tuple[ObjectRef | None, int | None]:
        obj = self.view.get(kind, namespace, name)
        if kind in ("Deployment", "StatefulSet", "DaemonSet"):
            return ObjectRef(kind, namespace, name), None
        if obj is None:
            if kind == "Pod":
                return self._pod_by_name(namespace, name)
            return None, None
        if kind == "Pod":
            return self.of_pod(obj)
        if kind == "ReplicaSet":
            return self.of_replicaset(obj)
        return None, None

    def _pod_by_name(self, namespace: str, name: str) -> tuple[ObjectRef | None, int | None]:
        # A deleted pod's name still says which ReplicaSet made it: NAME-HASH-xxxxx.
        rs = self.view.get("ReplicaSet", namespace, name.rpartition("-")[0])
        return self.of_replicaset(rs) if rs is not None else (None, None)


def _controller(obj: JSON) -> JSON | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


# ---------------------------------------------------------------------------
# Pods
# ---------------------------------------------------------------------------


@dataclass
class _Group:
    kind: SignalKind
    target: ObjectRef
    workload: ObjectRef | None
    revision: int | None
    reasons: list[str] = field(default_factory=list)
    pods: list[str] = field(default_factory=list)
    since: datetime | None = None


def _pod_signals(view: ClusterView, owners: _Owners, now: datetime) -> Iterator[Signal]:
    groups: dict[tuple[SignalKind, ObjectRef, int | None], _Group] = {}
    for pod in sorted(view.of_kind("Pod"), key=lambda p: (namespace_of(p), name_of(p))):
        problems = pod_problems(pod, now)
        if not problems:
            continue
        workload, revision = owners.of_pod(pod)
        pod_ref = ObjectRef("Pod", namespace_of(pod), name_of(pod))
        seen: set[SignalKind] = set()
        for problem in problems:
            if problem.kind in seen:
                continue
            seen.add(problem.kind)
            target = workload or pod_ref
            key = (problem.kind, target, revision)
            group = groups.setdefault(key, _Group(problem.kind, target, workload, revision))
            group.pods.append(pod_ref.name)
            if problem.reason not in group.reasons:
                group.reasons.append(problem.reason)
            if problem.since and (group.since is None or problem.since < group.since):
                group.since = problem.since
    for group in groups.values():
        count = len(group.pods)
        noun = "pod" if count == 1 else "pods"
        owner = group.workload.short if group.workload else ""
        rev = f" (revision {group.revision})" if group.revision is not None else ""
        who = f"{count} {noun} of {owner}{rev}" if owner else f"pod {group.pods[0]}"
        phrase = _PHRASES.get(group.kind, group.kind.value)
        detail = ", ".join(group.reasons)
        yield _signal(
            group.kind,
            group.target,
            f"{who} {phrase} ({detail})",
            at=group.since,
            count=count,
            workload=group.workload if group.workload and group.workload.kind != "Job" else None,
            revision=group.revision,
        )


# ---------------------------------------------------------------------------
# Workloads, nodes, quotas, services
# ---------------------------------------------------------------------------


def _workload_signals(view: ClusterView) -> Iterator[Signal]:
    for kind in ("Deployment", "StatefulSet", "DaemonSet"):
        for obj in view.of_kind(kind):
            ref = ObjectRef(kind, namespace_of(obj), name_of(obj))
            status = obj.get("status") or {}
            spec = obj.get("spec") or {}
            if kind == "Deployment":
                progressing = condition(obj, "Progressing") or {}
                if progressing.get("reason") == "ProgressDeadlineExceeded":
                    yield _signal(
                        SignalKind.ROLLOUT_STALLED,
                        ref,
                        f"{ref.short} rollout exceeded its progress deadline",
                        at=parse_k8s_time(progressing.get("lastTransitionTime")),
                        workload=ref,
                        revision=_int(annotations_of(obj).get(REVISION)),
                    )
                desired = _int(spec.get("replicas", 1)) or 0
                available = _int(status.get("availableReplicas")) or 0
            elif kind == "StatefulSet":
                desired = _int(spec.get("replicas", 1)) or 0
                available = _int(status.get("availableReplicas", status.get("readyReplicas"))) or 0
            else:
                desired = _int(status.get("desiredNumberScheduled")) or 0
                available = _int(status.get("numberAvailable")) or 0
            if desired and available < desired and not spec.get("paused"):
                available_cond = condition(obj, "Available") or {}
                yield _signal(
                    SignalKind.UNAVAILABLE,
                    ref,
                    f"{ref.short} has {available} of {desired} replicas available",
                    at=parse_k8s_time(available_cond.get("lastTransitionTime")),
                    count=desired - available,
                    workload=ref,
                )


def _node_signals(view: ClusterView) -> Iterator[Signal]:
    for node in sorted(view.of_kind("Node"), key=name_of):
        ref = ObjectRef("Node", "", name_of(node))
        ready = condition(node, "Ready") or {}
        if ready and ready.get("status") != "True":
            yield _signal(
                SignalKind.NODE_NOT_READY,
                ref,
                f"node {ref.name} is NotReady ({ready.get('reason') or 'no reason given'})",
                at=parse_k8s_time(ready.get("lastTransitionTime")),
            )
        for kind in PRESSURE_CONDITIONS:
            cond = condition(node, kind) or {}
            if cond.get("status") == "True":
                yield _signal(
                    SignalKind.NODE_PRESSURE,
                    ref,
                    f"node {ref.name} reports {kind}",
                    at=parse_k8s_time(cond.get("lastTransitionTime")),
                )


def _quota_signals(view: ClusterView) -> Iterator[Signal]:
    for quota in view.of_kind("ResourceQuota"):
        status = quota.get("status") or {}
        hard, used = status.get("hard") or {}, status.get("used") or {}
        full = [
            k for k in sorted(hard) if k in used and _quantity(used[k]) >= _quantity(hard[k]) > 0
        ]
        if full:
            ref = ObjectRef("ResourceQuota", namespace_of(quota), name_of(quota))
            yield _signal(
                SignalKind.QUOTA_EXCEEDED,
                ref,
                f"ResourceQuota {ref.name} is exhausted: "
                + ", ".join(f"{k} {used[k]}/{hard[k]}" for k in full),
            )


def _service_signals(view: ClusterView) -> Iterator[Signal]:
    slices_read = "EndpointSlice" in view.complete or bool(view.of_kind("EndpointSlice"))
    for svc in view.of_kind("Service"):
        spec = svc.get("spec") or {}
        selector = spec.get("selector") or {}
        if not selector or spec.get("type") == "ExternalName":
            continue
        namespace, name = namespace_of(svc), name_of(svc)
        if slices_read:
            ready = _slice_ready_endpoints(view, namespace, name)
            how = "EndpointSlices list"
        else:
            ready = sum(1 for p in _selected_pods(view, namespace, selector) if is_ready(p))
            how = "Ready pods matching its selector"
        if ready:
            continue
        ref = ObjectRef("Service", namespace, name)
        backing = _backing_workload(view, namespace, selector)
        yield _signal(
            SignalKind.NO_READY_ENDPOINTS,
            ref,
            f"Service {name} has no ready endpoints ({how} 0)",
            workload=backing,
        )


def _slice_ready_endpoints(view: ClusterView, namespace: str, service: str) -> int:
    count = 0
    for es in view.of_kind("EndpointSlice", namespace):
        if labels_of(es).get("kubernetes.io/service-name") != service:
            continue
        for endpoint in es.get("endpoints") or []:
            # A missing ready condition means ready (EndpointSlice API contract).
            if ((endpoint or {}).get("conditions") or {}).get("ready", True) is not False:
                count += 1
    return count


def _selected_pods(view: ClusterView, namespace: str, selector: dict[str, str]) -> list[JSON]:
    return [
        p
        for p in view.of_kind("Pod", namespace)
        if all(labels_of(p).get(k) == v for k, v in selector.items())
    ]


def _backing_workload(
    view: ClusterView, namespace: str, selector: dict[str, str]
) -> ObjectRef | None:
    for kind in ("Deployment", "StatefulSet", "DaemonSet"):
        for obj in view.of_kind(kind, namespace):
            labels = labels_of(((obj.get("spec") or {}).get("template")) or {})
            if selector and all(labels.get(k) == v for k, v in selector.items()):
                return ObjectRef(kind, namespace, name_of(obj))
    return None


# ---------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------


def _event_signals(
    view: ClusterView,
    owners: _Owners,
    since: datetime,
    existing: Iterable[Signal],
    now: datetime,
) -> Iterator[Signal]:
    """Warning events since ``since``, grouped by what they concern and why.

    An event about a pod that still exists and is Ready now is history that
    resolved itself (a pod that waited for a node, then ran): it is left out.
    An event about a pod that is gone stays: it is the only trace left.
    """
    covered = {(s.kind, s.workload or s.target) for s in existing}
    groups: dict[tuple[SignalKind, ObjectRef, str], list[JSON]] = {}
    for event in view.of_kind("Event"):
        if event.get("type") != "Warning":
            continue
        when = event_time(event)
        if when is None or when < since:
            continue
        regarding = event.get("regarding") or event.get("involvedObject") or {}
        kind = str(regarding.get("kind") or "")
        namespace = str(regarding.get("namespace") or namespace_of(event))
        name = str(regarding.get("name") or "")
        if kind == "Pod":
            pod = view.get("Pod", namespace, name)
            if pod is not None and is_ready(pod) and not pod_problems(pod, now):
                continue
        reason = str(event.get("reason") or "")
        message = " ".join(str(event.get("message") or event.get("note") or "").split())
        signal_kind = _EVENT_KINDS.get(reason, SignalKind.WARNING_EVENT)
        if reason == "FailedCreate" and "exceeded quota" in message:
            signal_kind = SignalKind.QUOTA_EXCEEDED
        workload, _ = owners.of_object(kind, namespace, name)
        target = workload or ObjectRef(kind, "" if kind == "Node" else namespace, name)
        if (signal_kind, target) in covered:
            continue
        groups.setdefault((signal_kind, target, reason), []).append(event)
    for (signal_kind, target, reason), events in groups.items():
        events.sort(key=lambda e: event_time(e) or since)
        latest = events[-1]
        count = sum(
            _int(e.get("count") or (e.get("series") or {}).get("count")) or 1 for e in events
        )
        text = " ".join(str(latest.get("message") or latest.get("note") or "").split())
        if len(text) > 120:
            text = text[:117] + "..."
        workload = target if target.kind in ("Deployment", "StatefulSet", "DaemonSet") else None
        yield _signal(
            signal_kind,
            target,
            f"{count}x {reason} on {target.short}: {text}",
            at=event_time(events[0]),
            count=count,
            workload=workload,
        )


# ---------------------------------------------------------------------------


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


_SUFFIXES = {
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
}


def _quantity(value: object) -> float:
    """A Kubernetes quantity (``500m``, ``2Gi``, ``10``) as a float; 0 when unreadable."""
    text = str(value).strip()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix):
            try:
                return float(text[: -len(suffix)]) * _SUFFIXES[suffix]
            except ValueError:
                return 0.0
    try:
        return float(text)
    except ValueError:
        return 0.0
