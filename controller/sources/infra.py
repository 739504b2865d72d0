"""Infrastructure changes: nodes joining, nodes changing condition, quotas changing.

These are the changes the application team did not make: a node that went
NotReady or came under memory pressure, a node that was cordoned or tainted,
a new node, a ResourceQuota tightened.  Node conditions carry their own
``lastTransitionTime``; taints added by the node lifecycle controller carry
``timeAdded``; cordons and quota edits are dated by ``managedFields``.
Pure functions over the view.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from controller.durations import format_instant, parse_k8s_time
from controller.model import Change, ChangeKind, ObjectRef
from controller.sources.config import last_write, was_updated
from controller.view import JSON, ClusterView, meta, name_of, namespace_of

# Conditions settle in the first minute of a node's life; those transitions
# are its arrival, not separate changes.
_JOIN_SETTLE = timedelta(minutes=1)

PRESSURE_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")


def pods_on_node(view: ClusterView, node: str) -> list[JSON]:
    return [p for p in view.of_kind("Pod") if (p.get("spec") or {}).get("nodeName") == node]


def workloads_on_node(view: ClusterView, node: str) -> tuple[ObjectRef, ...]:
    """Workloads with pods on ``node`` (through ReplicaSet owners for Deployments)."""
    refs: set[ObjectRef] = set()
    for pod in pods_on_node(view, node):
        owner = _owner_workload(view, pod)
        if owner is not None:
            refs.add(owner)
    return tuple(sorted(refs))


def _owner_workload(view: ClusterView, pod: JSON) -> ObjectRef | None:
    for ref in meta(pod).get("ownerReferences") or []:
        if not isinstance(ref, dict) or not ref.get("controller"):
            continue
        if ref.get("kind") == "ReplicaSet":
            rs = view.by_uid(str(ref.get("uid") or ""))
            for rs_owner in (meta(rs).get("ownerReferences") or []) if rs else []:
                if isinstance(rs_owner, dict) and rs_owner.get("kind") == "Deployment":
                    return ObjectRef("Deployment", namespace_of(pod), str(rs_owner.get("name")))
            return None
        if ref.get("kind") in ("StatefulSet", "DaemonSet"):
            return ObjectRef(str(ref["kind"]), namespace_of(pod), str(ref.get("name")))
    return None


def collect_infra_changes(view: ClusterView, since: datetime, until: datetime) -> list[Change]:
    """Node and quota changes between ``since`` and ``until``.  Pure."""
    changes: list[Change] = []
    for node in view.of_kind("Node"):
        changes.extend(_node_changes(view, node, since, until))
    for quota in view.of_kind("ResourceQuota"):
        changes.extend(_quota_changes(view, quota, since, until))
    return changes


def _node_changes(
    view: ClusterView, node: JSON, since: datetime, until: datetime
) -> Iterator[Change]:
    name = name_of(node)
    ref = ObjectRef("Node", "", name)
    affects = workloads_on_node(view, name)

    def change(at: datetime, summary: str, evidence: str) -> Change:
        return Change(
            kind=ChangeKind.INFRA,
            target=ref,
            at=at,
            summary=summary,
            affects=affects,
            evidence=(evidence,),
            cluster_wide=True,
        )

    created = parse_k8s_time(meta(node).get("creationTimestamp"))
    if created and since <= created <= until:
        yield change(
            created, f"node {name} joined the cluster", f"created {format_instant(created)}"
        )
    for cond in (node.get("status") or {}).get("conditions") or []:
        if not isinstance(cond, dict):
            continue
        kind, status = str(cond.get("type")), str(cond.get("status"))
        at = parse_k8s_time(cond.get("lastTransitionTime"))
        if at is None or not since <= at <= until or (created and at - created < _JOIN_SETTLE):
            continue
        why = f"condition {kind}={status} since {format_instant(at)}: {_text(cond)}"
        if kind == "Ready":
            verb = "became Ready" if status == "True" else f"became NotReady ({cond.get('reason')})"
            yield change(at, f"node {name} {verb}", why)
        elif kind in PRESSURE_CONDITIONS and status == "True":
            yield change(at, f"node {name} reports {kind}", why)
    for taint in (node.get("spec") or {}).get("taints") or []:
        at = parse_k8s_time((taint or {}).get("timeAdded"))
        if at and since <= at <= until:
            yield change(
                at,
                f"node {name} tainted {taint.get('key')}:{taint.get('effect')}",
                f"taint {taint.get('key')} added {format_instant(at)}",
            )
    if (node.get("spec") or {}).get("unschedulable"):
        at = _owned_since(node, "unschedulable")
        if at and since <= at <= until:
            yield change(
                at, f"node {name} cordoned", f"spec.unschedulable set {format_instant(at)}"
            )


def _owned_since(obj: JSON, spec_field: str) -> datetime | None:
    for entry in meta(obj).get("managedFields") or []:
        if not isinstance(entry, dict) or entry.get("subresource"):
            continue
        spec = (entry.get("fieldsV1") or {}).get("f:spec") or {}
        if f"f:{spec_field}" in spec:
            return parse_k8s_time(entry.get("time"))
    return None


def _text(cond: JSON) -> str:
    text = " ".join(str(cond.get("message") or cond.get("reason") or "").split())
    return text if len(text) <= 100 else text[:97] + "..."


def _quota_changes(
    view: ClusterView, quota: JSON, since: datetime, until: datetime
) -> Iterator[Change]:
    ref = ObjectRef("ResourceQuota", namespace_of(quota), name_of(quota))
    hard = (quota.get("spec") or {}).get("hard") or {}
    limits = ", ".join(f"{k}={hard[k]}" for k in sorted(hard)) or "no limits"
    affects = tuple(
        ObjectRef(kind, ref.namespace, name_of(w))
        for kind in ("Deployment", "StatefulSet", "DaemonSet")
        for w in view.of_kind(kind, ref.namespace)
    )
    created = parse_k8s_time(meta(quota).get("creationTimestamp"))
    write = was_updated(quota)
    if write and since <= write.at <= until:
        yield Change(
            kind=ChangeKind.INFRA,
            target=ref,
            at=write.at,
            summary=f"ResourceQuota {ref.name} changed by {write.manager}",
            before="unknown (Kubernetes keeps no history of it)",
            after=limits,
            cause=write.manager,
            affects=affects,
            evidence=(f"managedFields: {write.manager} wrote it at {format_instant(write.at)}",),
        )
    elif created and since <= created <= until:
        first = last_write(quota)
        yield Change(
            kind=ChangeKind.INFRA,
            target=ref,
            at=created,
            summary=f"ResourceQuota {ref.name} created",
            after=limits,
            cause=first.manager if first else None,
            affects=affects,
            evidence=(f"created {format_instant(created)}",),
        )
