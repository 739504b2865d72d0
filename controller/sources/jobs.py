"""Jobs that look like schema migrations.

A rollback to a revision older than a migration may meet a schema it cannot
read, so the safety check must see every migration since the target.  A Job
counts when its name, labels, images or commands mention one of the policy's
``migration_job_patterns`` (``migrat``, ``flyway``, ``alembic``, ...), or when
it is a Helm or Argo CD hook that runs before or during an upgrade (where
charts put their migrations).  Pure functions over the view.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from controller.durations import format_instant, parse_k8s_time
from controller.model import Change, ChangeKind, ObjectRef
from controller.sources.pods import condition
from controller.view import (
    JSON,
    ClusterView,
    annotations_of,
    labels_of,
    meta,
    name_of,
    namespace_of,
)

HELM_HOOK = "helm.sh/hook"
ARGO_HOOK = "argocd.argoproj.io/hook"
_UPGRADE_HOOKS = ("pre-install", "pre-upgrade", "post-upgrade", "pre-rollback")
_ARGO_HOOKS = ("PreSync", "Sync")
_APP_LABELS = (
    "app.kubernetes.io/instance",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/name",
    "app",
)


def migration_evidence(job: JSON, patterns: Sequence[str]) -> str | None:
    """Why ``job`` looks like a migration, or None when it does not."""
    name = name_of(job).lower()
    for pattern in patterns:
        if pattern in name:
            return f"its name contains {pattern!r}"
    for key, value in labels_of(job).items():
        for pattern in patterns:
            if pattern in f"{key}={value}".lower():
                return f"label {key}={value}"
    template = ((job.get("spec") or {}).get("template")) or {}
    spec = template.get("spec") or {}
    for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        if not isinstance(container, dict):
            continue
        words = [str(container.get("image") or "")] + [
            str(x) for x in (container.get("command") or []) + (container.get("args") or [])
        ]
        text = " ".join(words).lower()
        for pattern in patterns:
            if pattern in text:
                return f"container {container.get('name')} runs {' '.join(words[1:]) or words[0]!r}"
    annotations = annotations_of(job)
    hook = annotations.get(HELM_HOOK, "")
    if any(h in hook for h in _UPGRADE_HOOKS):
        return f"a Helm {hook} hook"
    argo = annotations.get(ARGO_HOOK, "")
    if argo in _ARGO_HOOKS:
        return f"an Argo CD {argo} hook"
    return None


def job_state(job: JSON) -> str:
    """``completed``, ``failed`` or ``running``."""
    if (condition(job, "Complete") or {}).get("status") == "True":
        return "completed"
    if (condition(job, "Failed") or {}).get("status") == "True":
        return "failed"
    return "running"


def collect_migration_changes(
    view: ClusterView, since: datetime, until: datetime, patterns: Sequence[str]
) -> list[Change]:
    """Migration-like Jobs that started between ``since`` and ``until``.

    Pure: reads the view only.  ``at`` is when the Job finished (or started, if
    it has not); ``affects`` names workloads of the same application (same
    image repository or app label), which a rollback past it would hit.
    """
    changes = []
    for job in view.of_kind("Job"):
        why = migration_evidence(job, patterns)
        if why is None:
            continue
        status = job.get("status") or {}
        started = parse_k8s_time(status.get("startTime")) or parse_k8s_time(
            meta(job).get("creationTimestamp")
        )
        state = job_state(job)
        finished = parse_k8s_time(status.get("completionTime")) or parse_k8s_time(
            (condition(job, "Failed") or {}).get("lastTransitionTime")
        )
        at = finished or started
        if at is None or started is None or not since <= started <= until:
            continue
        ref = ObjectRef("Job", namespace_of(job), name_of(job))
        evidence = [f"looks like a migration: {why}", f"started {format_instant(started)}"]
        if finished:
            evidence.append(f"{state} {format_instant(finished)}")
        changes.append(
            Change(
                kind=ChangeKind.MIGRATION,
                target=ref,
                at=at,
                started_at=started,
                summary=f"migration Job {ref.name} {state}",
                after=state,
                stalled=state == "failed",
                affects=_related_workloads(view, job),
                evidence=tuple(evidence),
            )
        )
    return changes


def _repo(image: str) -> str:
    """``registry/shop/web:1.2@sha256:...`` -> ``registry/shop/web``."""
    image = image.split("@", 1)[0]
    head, _, tail = image.rpartition(":")
    return head if head and "/" not in tail else image


def _images(template: JSON) -> set[str]:
    spec = template.get("spec") or {}
    return {
        _repo(str(c.get("image") or ""))
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
        if isinstance(c, dict) and c.get("image")
    }


def _related_workloads(view: ClusterView, job: JSON) -> tuple[ObjectRef, ...]:
    namespace = namespace_of(job)
    job_template = (job.get("spec") or {}).get("template") or {}
    job_images = _images(job_template)
    job_labels = {**labels_of(job_template), **labels_of(job)}
    out = []
    for kind in ("Deployment", "StatefulSet", "DaemonSet"):
        for workload in view.of_kind(kind, namespace):
            template = (workload.get("spec") or {}).get("template") or {}
            labels = labels_of(workload)
            same_image = bool(job_images & _images(template))
            same_app = any(
                key in job_labels and job_labels[key] == labels.get(key) for key in _APP_LABELS[:2]
            )
            if same_image or same_app:
                out.append(ObjectRef(kind, namespace, name_of(workload)))
    return tuple(sorted(out))
