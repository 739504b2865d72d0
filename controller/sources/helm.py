"""Helm releases: which release manages a workload, and its revisions in the window.

Helm 3 stores each release revision as a Secret of type ``helm.sh/release.v1``
named ``sh.helm.release.v1.NAME.vN``, labelled ``name``, ``version``,
``status`` (deployed, superseded, failed, pending-*), ``owner: helm`` and, in
newer Helm, ``createdAt``/``modifiedAt`` (Unix seconds).  We read those labels
and the Secret's metadata only: the release payload in ``data`` holds rendered
values, which may be secrets, and is never decoded (snapshots strip it).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from controller.durations import parse_k8s_time
from controller.model import Change, ChangeKind, ObjectRef
from controller.view import (
    JSON,
    ClusterView,
    annotations_of,
    labels_of,
    meta,
    name_of,
    namespace_of,
)

RELEASE_TYPE = "helm.sh/release.v1"
RELEASE_NAME = "meta.helm.sh/release-name"
RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
MANAGED_BY = "app.kubernetes.io/managed-by"


def helm_release_of(obj: JSON) -> str | None:
    """``NAMESPACE/NAME`` of the Helm release that manages ``obj``, or None.

    Helm 3 stamps every object it creates with the release annotations; the
    ``managed-by`` label alone is also set by hand-written charts, so the
    annotation is required.
    """
    annotations = annotations_of(obj)
    name = annotations.get(RELEASE_NAME)
    if not name:
        return None
    namespace = annotations.get(RELEASE_NAMESPACE) or namespace_of(obj)
    return f"{namespace}/{name}"


def release_secrets(view: ClusterView) -> list[JSON]:
    return [s for s in view.of_kind("Secret") if s.get("type") == RELEASE_TYPE]


def release_created_at(secret: JSON) -> datetime | None:
    """When the revision was made: the ``createdAt`` label, else the Secret's creation."""
    label = labels_of(secret).get("createdAt")
    if label and label.isdigit():
        return datetime.fromtimestamp(int(label), tz=UTC)
    return parse_k8s_time(meta(secret).get("creationTimestamp"))


def collect_helm_changes(view: ClusterView, since: datetime, until: datetime) -> list[Change]:
    """One ``helm`` change per release revision created between ``since`` and ``until``.

    Pure: reads Secret metadata only.  ``affects`` lists the workloads whose
    release annotations name the release.
    """
    by_release: dict[tuple[str, str], list[JSON]] = defaultdict(list)
    for secret in release_secrets(view):
        name = labels_of(secret).get("name")
        if name:
            by_release[(namespace_of(secret), name)].append(secret)
    changes: list[Change] = []
    for (namespace, release), secrets in sorted(by_release.items()):
        secrets.sort(key=_version)
        affects = _release_workloads(view, namespace, release)
        for index, secret in enumerate(secrets):
            at = release_created_at(secret)
            if at is None or not since <= at <= until:
                continue
            labels = labels_of(secret)
            status = labels.get("status", "unknown")
            version = _version(secret)
            previous = secrets[index - 1] if index else None
            verb = "installed" if version == 1 else "upgraded"
            if status.startswith("pending"):
                verb = "is being " + ("rolled back" if status == "pending-rollback" else verb)
            changes.append(
                Change(
                    kind=ChangeKind.HELM,
                    target=ObjectRef("Secret", namespace, name_of(secret)),
                    at=at,
                    summary=f"Helm release {release} {verb} to revision {version} ({status})",
                    before=f"revision {_version(previous)}" if previous else None,
                    after=f"revision {version} ({status})",
                    revision=version,
                    previous_revision=_version(previous) if previous else None,
                    stalled=status in ("failed", "pending-install", "pending-upgrade"),
                    affects=affects,
                    evidence=(
                        f"release Secret {name_of(secret)}: labels version={version}, "
                        f"status={status}",
                    ),
                )
            )
    return changes


def _release_workloads(view: ClusterView, namespace: str, release: str) -> tuple[ObjectRef, ...]:
    refs = []
    for kind in ("Deployment", "StatefulSet", "DaemonSet"):
        for obj in view.of_kind(kind):
            if helm_release_of(obj) == f"{namespace}/{release}":
                refs.append(ObjectRef(kind, namespace_of(obj), name_of(obj)))
    return tuple(sorted(refs))


def _version(secret: JSON | None) -> int:
    if secret is None:
        return 0
    try:
        return int(labels_of(secret).get("version", "0"))
    except ValueError:
        return 0
