"""Builders for real-shaped core facts: what the sources produce from real API objects.

Names, messages and annotations follow what Kubernetes writes: ReplicaSets are
``<deployment>-<pod-template-hash>``, pods ``<replicaset>-<5 chars>``, event
and condition messages are the API's own wording.  Times are minutes relative
to the incident start ``START`` (negative = before it), so a test reads like a
timeline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from controller.model import (
    Block,
    Change,
    ChangeKind,
    Incident,
    ObjectRef,
    RevisionInfo,
    Scope,
    Signal,
    SignalKind,
    WorkloadFacts,
)
from controller.policy.scoring import ScoringSettings

NS = "shop"
START = datetime(2026, 12, 3, 10, 4, tzinfo=UTC)
NOW = START + timedelta(minutes=6)
SCORING = ScoringSettings()
REGISTRY = "registry.example.com/shop"


def t(minutes: float) -> datetime:
    """The instant ``minutes`` after the incident start (negative: before)."""
    return START + timedelta(minutes=minutes)


def incident(
    *,
    start: datetime = START,
    now: datetime = NOW,
    lookback: timedelta = timedelta(hours=24),
    namespaces: Sequence[str] = (NS,),
    workloads: Sequence[ObjectRef] = (),
) -> Incident:
    return Incident(
        start=start,
        now=now,
        lookback=lookback,
        scope=Scope(namespaces=tuple(namespaces), workloads=tuple(workloads)),
    )


# ---------------------------------------------------------------------------
# Object references
# ---------------------------------------------------------------------------


def deployment(name: str, ns: str = NS) -> ObjectRef:
    return ObjectRef("Deployment", ns, name)


def statefulset(name: str, ns: str = NS) -> ObjectRef:
    return ObjectRef("StatefulSet", ns, name)


def configmap(name: str, ns: str = NS) -> ObjectRef:
    return ObjectRef("ConfigMap", ns, name)


def featureflag(name: str, ns: str = NS) -> ObjectRef:
    return ObjectRef("FeatureFlag", ns, name)


def node(name: str) -> ObjectRef:
    return ObjectRef("Node", "", name)


def service(name: str, ns: str = NS) -> ObjectRef:
    return ObjectRef("Service", ns, name)


def job(name: str, ns: str = NS) -> ObjectRef:
    return ObjectRef("Job", ns, name)


def quota(name: str, ns: str = NS) -> ObjectRef:
    return ObjectRef("ResourceQuota", ns, name)


def pod_template_hash(workload: ObjectRef, revision: int) -> str:
    """A stable 10-character hash, shaped like the pod-template-hash label."""
    digest = hashlib.sha256(f"{workload}/{revision}".encode()).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[int(digest[i : i + 2], 16) % len(alphabet)] for i in range(0, 20, 2))


def replicaset(workload: ObjectRef, revision: int) -> ObjectRef:
    return ObjectRef(
        "ReplicaSet", workload.namespace, f"{workload.name}-{pod_template_hash(workload, revision)}"
    )


def pod(workload: ObjectRef, revision: int, index: int = 0) -> ObjectRef:
    suffix = pod_template_hash(workload, revision * 100 + index)[:5]
    return ObjectRef("Pod", workload.namespace, f"{replicaset(workload, revision).name}-{suffix}")


def image(workload: ObjectRef, version: str) -> str:
    return f"{REGISTRY}/{workload.name}:{version}"


# ---------------------------------------------------------------------------
# Changes
# ---------------------------------------------------------------------------


def deploy(
    workload: ObjectRef,
    revision: int,
    at: float,
    *,
    started: float | None = None,
    previous: int | None = None,
    before: str = "1.4.0",
    after: str = "1.5.0",
    stalled: bool = False,
    kind: ChangeKind = ChangeKind.DEPLOY,
) -> Change:
    """A workload rollout to ``revision`` that completed at ``at`` (or stalled, started then)."""
    prev = previous if previous is not None else revision - 1
    return Change(
        kind=kind,
        target=workload,
        at=t(at),
        started_at=t(started if started is not None else at - 1),
        summary=f"image {workload.name}: {image(workload, before)} -> {image(workload, after)}",
        before=image(workload, before),
        after=image(workload, after),
        cause=f"kubectl set image deployment/{workload.name} app={image(workload, after)}",
        revision=revision,
        previous_revision=prev,
        stalled=stalled,
        affects=(workload,),
        evidence=(
            f"ReplicaSet {replicaset(workload, revision).name} "
            f"deployment.kubernetes.io/revision={revision}",
        ),
    )


def config_change(cm: ObjectRef, at: float, consumers: Sequence[ObjectRef]) -> Change:
    return Change(
        kind=ChangeKind.CONFIG,
        target=cm,
        at=t(at),
        summary="data keys changed: DATABASE_POOL_SIZE, FEATURE_TIMEOUT_MS",
        before="resourceVersion 48211",
        after="resourceVersion 51877",
        affects=tuple(consumers),
        evidence=(f"managedFields: kubectl-edit Update at {t(at).isoformat()}",),
    )


def flag_flip(
    ff: ObjectRef,
    key: str,
    at: float,
    consumers: Sequence[ObjectRef],
    *,
    before: str = "off",
    after: str = "on",
) -> Change:
    return Change(
        kind=ChangeKind.FLAG,
        target=ff,
        at=t(at),
        summary=f"flag {key}: defaultVariant {before} -> {after}",
        before=f"state ENABLED, defaultVariant {before}",
        after=f"state ENABLED, defaultVariant {after}",
        flag=key,
        affects=tuple(consumers),
        evidence=(f"FeatureFlag {ff.name} generation 7",),
    )


def migration(
    name: str,
    at: float,
    *,
    affects: Sequence[ObjectRef] = (),
    failed: bool = False,
    ns: str = NS,
) -> Change:
    """A migration-like Job (``db-migrate-...``) that completed (or failed) at ``at``."""
    return Change(
        kind=ChangeKind.MIGRATION,
        target=job(name, ns),
        at=t(at),
        started_at=t(at - 2),
        summary="alembic upgrade head",
        stalled=failed,
        affects=tuple(affects),
        evidence=(f"Job {name} command: alembic upgrade head",),
    )


def node_change(name: str, at: float, *, affects: Sequence[ObjectRef] = ()) -> Change:
    return Change(
        kind=ChangeKind.INFRA,
        target=node(name),
        at=t(at),
        summary=f"node {name} joined the cluster",
        affects=tuple(affects),
        cluster_wide=not affects,
    )


def commit(sha: str, at: float, *, affects: Sequence[ObjectRef] = ()) -> Change:
    return Change(
        kind=ChangeKind.COMMIT,
        target=ObjectRef("Commit", "", sha),
        at=t(at),
        summary="Bump checkout client timeout",
        affects=tuple(affects),
    )


def gitops_sync(app: str, at: float, affects: Sequence[ObjectRef], revision: int = 12) -> Change:
    return Change(
        kind=ChangeKind.GITOPS,
        target=ObjectRef("Application", "argocd", app),
        at=t(at),
        started_at=t(at - 1),
        summary="synced to 4f2a9c1",
        revision=revision,
        previous_revision=revision - 1,
        affects=tuple(affects),
    )


# ---------------------------------------------------------------------------
# Signals
# ---------------------------------------------------------------------------


def crash_loop(workload: ObjectRef, revision: int | None, at: float = -1, pods: int = 3) -> Signal:
    return Signal(
        kind=SignalKind.CRASH_LOOP,
        block=Block.RESOURCES,
        target=pod(workload, revision or 0),
        message=f"back-off 40s restarting failed container={workload.name}",
        at=t(at),
        count=pods,
        workload=workload,
        revision=revision,
    )


def oom_killed(workload: ObjectRef, revision: int | None, at: float = -1) -> Signal:
    return Signal(
        kind=SignalKind.OOM_KILLED,
        block=Block.RESOURCES,
        target=pod(workload, revision or 0),
        message=f"container {workload.name} OOMKilled (exit code 137)",
        at=t(at),
        workload=workload,
        revision=revision,
    )


def image_pull(workload: ObjectRef, revision: int | None, at: float = -1) -> Signal:
    return Signal(
        kind=SignalKind.IMAGE_PULL,
        block=Block.RESOURCES,
        target=pod(workload, revision or 0),
        message=f'Back-off pulling image "{image(workload, "1.5.0")}"',
        at=t(at),
        count=2,
        workload=workload,
        revision=revision,
    )


def not_ready(workload: ObjectRef, revision: int | None = None, at: float | None = -1) -> Signal:
    return Signal(
        kind=SignalKind.NOT_READY,
        block=Block.APPLICATION,
        target=pod(workload, revision or 0),
        message="Readiness probe failed: HTTP probe failed with statuscode: 503",
        at=t(at) if at is not None else None,
        count=2,
        workload=workload,
        revision=revision,
    )


def unavailable(workload: ObjectRef, at: float | None = -1, missing: int = 3) -> Signal:
    """The workload-level signal: fewer available replicas than desired (no revision)."""
    return Signal(
        kind=SignalKind.UNAVAILABLE,
        block=Block.APPLICATION,
        target=workload,
        message=f"{workload.short} has 0 of {missing} replicas available",
        at=t(at) if at is not None else None,
        count=missing,
        workload=workload,
    )


def rollout_stalled(workload: ObjectRef, revision: int, at: float = 0) -> Signal:
    return Signal(
        kind=SignalKind.ROLLOUT_STALLED,
        block=Block.APPLICATION,
        target=workload,
        message=f'ReplicaSet "{replicaset(workload, revision).name}" has timed out progressing.',
        at=t(at),
        workload=workload,
        revision=revision,
    )


def node_not_ready(name: str, at: float = -2) -> Signal:
    return Signal(
        kind=SignalKind.NODE_NOT_READY,
        block=Block.INFRASTRUCTURE,
        target=node(name),
        message=f"node {name} NotReady: Kubelet stopped posting node status.",
        at=t(at),
    )


def node_pressure(name: str, at: float = -2) -> Signal:
    return Signal(
        kind=SignalKind.NODE_PRESSURE,
        block=Block.INFRASTRUCTURE,
        target=node(name),
        message=f"node {name} MemoryPressure: kubelet has insufficient memory available",
        at=t(at),
    )


def unschedulable(workload: ObjectRef, revision: int | None, at: float = -1) -> Signal:
    return Signal(
        kind=SignalKind.UNSCHEDULABLE,
        block=Block.RESOURCES,
        target=pod(workload, revision or 0),
        message=(
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint"
            " {node.kubernetes.io/unreachable: }."
        ),
        at=t(at),
        count=2,
        workload=workload,
        revision=revision,
    )


def quota_exceeded(
    name: str = "compute", workload: ObjectRef | None = None, at: float | None = -1
) -> Signal:
    return Signal(
        kind=SignalKind.QUOTA_EXCEEDED,
        block=Block.RESOURCES,
        target=quota(name),
        message=(
            f'pods "web-6f7d8-x2k9p" is forbidden: exceeded quota: {name}, requested:'
            " requests.cpu=500m, used: requests.cpu=4, limited: requests.cpu=4"
        ),
        at=t(at) if at is not None else None,
        workload=workload,
    )


def no_endpoints(svc: str, backend: ObjectRef | None, at: float = -1) -> Signal:
    return Signal(
        kind=SignalKind.NO_READY_ENDPOINTS,
        block=Block.DEPENDENCIES,
        target=service(svc),
        message=f"Service {svc} has no ready endpoints (EndpointSlice {svc}-8x2kq: 0 of 3 ready)",
        at=t(at),
        workload=backend,
    )


# ---------------------------------------------------------------------------
# Revisions and workload facts
# ---------------------------------------------------------------------------


def revision(
    workload: ObjectRef,
    number: int,
    *,
    since: float,
    until: float | None = None,
    healthy_for: timedelta | None = None,
    unhealthy: bool = False,
    exists: bool = True,
    current: bool = False,
    version: str | None = None,
    config_refs: Sequence[ObjectRef] = (),
    missing_config_refs: Sequence[ObjectRef] = (),
    migration_init_containers: Sequence[str] = (),
    schema_version: str | None = None,
    desired_replicas: int | None = None,
    available: int | None = None,
    completed: float | None = None,
    annotations: Mapping[str, str] | None = None,
) -> RevisionInfo:
    """One ReplicaSet revision, active from ``since`` until ``until`` (minutes from START).

    Health follows the sources' rules: a replaced revision that failed nothing
    served from its start until replaced; the current one since completion.
    """
    if healthy_for is None:
        if unhealthy:
            healthy_for = timedelta(0)
        elif until is not None:
            healthy_for = t(until) - t(since)
        else:
            healthy_for = NOW - t(completed if completed is not None else since)
    replicas = 3 if (current or until is None) else 0
    avail = available if available is not None else (0 if unhealthy else replicas)
    return RevisionInfo(
        revision=number,
        source=replicaset(workload, number),
        created_at=t(since),
        images=(image(workload, version or f"1.{number}.0"),),
        template_hash=pod_template_hash(workload, number),
        change_cause=f"kubectl set image deployment/{workload.name} ...:1.{number}.0",
        config_refs=tuple(config_refs),
        replicas=replicas,
        ready_replicas=avail,
        available_replicas=avail,
        active_since=t(since),
        active_until=t(until) if until is not None else None,
        healthy_for=healthy_for,
        unhealthy=unhealthy,
        exists=exists,
        annotations=dict(
            annotations
            or {
                "deployment.kubernetes.io/revision": str(number),
                "deployment.kubernetes.io/desired-replicas": "3",
                "deployment.kubernetes.io/max-replicas": "4",
            }
        ),
        current=current,
        completed_at=t(completed) if completed is not None else None,
        health_note="",
        migration_init_containers=tuple(migration_init_containers),
        schema_version=schema_version,
        missing_config_refs=tuple(missing_config_refs),
        desired_replicas=desired_replicas,
    )


def history(
    workload: ObjectRef, *, bad_current: bool = True, config_refs: Sequence[ObjectRef] = ()
) -> tuple[RevisionInfo, ...]:
    """The usual four revisions: 1 and 2 long ago, 3 served all yesterday, 4 rolled out at -3m."""
    return (
        revision(workload, 1, since=-4 * 1440, until=-3 * 1440, config_refs=config_refs),
        revision(workload, 2, since=-3 * 1440, until=-1 * 1440, config_refs=config_refs),
        revision(workload, 3, since=-1 * 1440, until=-4, config_refs=config_refs),
        revision(
            workload,
            4,
            since=-4,
            current=True,
            unhealthy=bad_current,
            config_refs=config_refs,
            completed=None if bad_current else -3,
        ),
    )


def facts(
    workload: ObjectRef,
    revisions: Sequence[RevisionInfo] | None = None,
    *,
    current: int | None = None,
    **fields: object,
) -> WorkloadFacts:
    revs = tuple(revisions) if revisions is not None else history(workload)
    cur = current if current is not None else max(r.revision for r in revs)
    base: dict[str, object] = {
        "ref": workload,
        "current_revision": cur,
        "revisions": revs,
        "resource_version": "51234",
        "replicas": 3,
        "rollout_seconds": (42.0, 55.0, 61.0),
        "strategy": "RollingUpdate",
        "labels": {"app.kubernetes.io/name": workload.name},
    }
    base.update(fields)
    return WorkloadFacts(**base)  # type: ignore[arg-type]
