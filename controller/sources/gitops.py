"""GitOps: who reconciles a workload from git, and when they last synced.

Two questions, both answered from the view alone:

* **Owner.** Is a workload managed by an Argo CD ``Application`` (tracking
  annotation ``argocd.argoproj.io/tracking-id``, the Application's
  ``status.resources`` list, or the legacy ``app.kubernetes.io/instance``
  label naming an Application) or by Flux (``kustomize.toolkit.fluxcd.io/*`` or
  ``helm.toolkit.fluxcd.io/*`` labels)?  With automated sync or self-heal,
  such an owner reverts a manual rollback within seconds, so the safety check
  must know.
* **Syncs.** Argo CD keeps ``status.history`` (one entry per sync, with
  ``deployedAt`` and the git revision); Flux keeps ``status.history`` in newer
  releases and ``lastAppliedRevision`` with a ``Ready`` condition in all.
  Each sync in the window becomes a ``gitops`` change.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from controller.durations import parse_k8s_time
from controller.model import Change, ChangeKind, ObjectRef
from controller.sources.pods import condition
from controller.view import (
    JSON,
    ClusterView,
    annotations_of,
    labels_of,
    name_of,
    namespace_of,
)

ARGO_TRACKING_ID = "argocd.argoproj.io/tracking-id"
ARGO_INSTANCE_LABEL = "app.kubernetes.io/instance"
FLUX_KS_NAME = "kustomize.toolkit.fluxcd.io/name"
FLUX_KS_NAMESPACE = "kustomize.toolkit.fluxcd.io/namespace"
FLUX_HR_NAME = "helm.toolkit.fluxcd.io/name"
FLUX_HR_NAMESPACE = "helm.toolkit.fluxcd.io/namespace"

_WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


@dataclass(frozen=True)
class GitOpsOwner:
    """The GitOps object that reconciles a workload, and how hard it holds on.

    ``automated``: it syncs from git without a human.  ``self_heal``: it also
    reverts changes made in the cluster (Argo CD ``selfHeal``; Flux
    Kustomizations always correct drift on every interval).  ``note`` says how
    the ownership was recognised.
    """

    ref: ObjectRef
    automated: bool
    self_heal: bool
    note: str
    suspended: bool = False


def gitops_owner(view: ClusterView, obj: JSON) -> GitOpsOwner | None:
    """The Argo CD or Flux owner of ``obj``, or None.  Pure: reads the view only."""
    return _argo_owner(view, obj) or _flux_owner(view, obj)


def _argo_owner(view: ClusterView, obj: JSON) -> GitOpsOwner | None:
    kind, namespace, name = str(obj.get("kind") or ""), namespace_of(obj), name_of(obj)
    tracking = annotations_of(obj).get(ARGO_TRACKING_ID, "")
    if tracking:
        app_name = tracking.split(":", 1)[0]
        # Apps in any namespace are tracked as "<namespace>_<name>".
        app_ns, _, short = app_name.rpartition("_")
        app = _find_application(view, short, app_ns or None)
        if app is not None:
            return _argo_from(app, f"annotation {ARGO_TRACKING_ID}={tracking}")
        return GitOpsOwner(
            ObjectRef("Application", app_ns, short),
            automated=False,
            self_heal=False,
            note=(
                f"annotation {ARGO_TRACKING_ID} names Application {short}, which was not "
                "readable; its sync policy is unknown"
            ),
        )
    for app in view.of_kind("Application"):
        for res in (app.get("status") or {}).get("resources") or []:
            if (
                isinstance(res, dict)
                and res.get("kind") == kind
                and res.get("name") == name
                and (res.get("namespace") or "") == namespace
            ):
                return _argo_from(app, f"listed in Application {name_of(app)}'s resources")
    instance = labels_of(obj).get(ARGO_INSTANCE_LABEL)
    if instance:
        app = _find_application(view, instance, None)
        if app is not None and _destination_namespace(app) in ("", namespace):
            return _argo_from(app, f"label {ARGO_INSTANCE_LABEL}={instance}")
    return None


def _find_application(view: ClusterView, name: str, namespace: str | None) -> JSON | None:
    for app in view.of_kind("Application"):
        if name_of(app) == name and (namespace is None or namespace_of(app) == namespace):
            return app
    return None


def _destination_namespace(app: JSON) -> str:
    return str(((app.get("spec") or {}).get("destination") or {}).get("namespace") or "")


def _argo_from(app: JSON, note: str) -> GitOpsOwner:
    automated = ((app.get("spec") or {}).get("syncPolicy") or {}).get("automated")
    # Argo CD 3 can keep the block but switch it off with enabled: false.
    on = isinstance(automated, dict) and automated.get("enabled", True) is not False
    self_heal = on and bool(isinstance(automated, dict) and automated.get("selfHeal"))
    return GitOpsOwner(
        ObjectRef("Application", namespace_of(app), name_of(app)),
        automated=on,
        self_heal=self_heal,
        note=note,
    )


def _flux_owner(view: ClusterView, obj: JSON) -> GitOpsOwner | None:
    labels = labels_of(obj)
    for kind, name_key, ns_key in (
        ("Kustomization", FLUX_KS_NAME, FLUX_KS_NAMESPACE),
        ("HelmRelease", FLUX_HR_NAME, FLUX_HR_NAMESPACE),
    ):
        name = labels.get(name_key)
        if not name:
            continue
        namespace = labels.get(ns_key, namespace_of(obj))
        owner = view.get(kind, namespace, name)
        ref = ObjectRef(kind, namespace, name)
        note = f"label {name_key}={name}"
        if owner is None:
            # Flux reconciles unless suspended; without the object we cannot
            # see a suspension, so assume the default: it reconciles.
            return GitOpsOwner(ref, True, kind == "Kustomization", note + " (object not readable)")
        spec = owner.get("spec") or {}
        suspended = bool(spec.get("suspend"))
        if kind == "Kustomization":
            self_heal = not suspended
        else:
            drift = ((spec.get("driftDetection") or {}).get("mode") or "disabled") == "enabled"
            self_heal = drift and not suspended
        return GitOpsOwner(ref, not suspended, self_heal, note, suspended=suspended)
    return None


# ---------------------------------------------------------------------------
# Sync changes
# ---------------------------------------------------------------------------


def collect_gitops_changes(view: ClusterView, since: datetime, until: datetime) -> list[Change]:
    """Argo CD and Flux syncs that took effect between ``since`` and ``until``.

    Pure: reads the view only.  Each change targets the Application,
    Kustomization or HelmRelease and lists the workloads it manages in
    ``affects``.
    """
    changes: list[Change] = []
    for app in view.of_kind("Application"):
        changes.extend(_argo_changes(app, since, until))
    for kind in ("Kustomization", "HelmRelease"):
        for obj in view.of_kind(kind):
            changes.extend(_flux_changes(view, obj, since, until))
    return changes


def _argo_changes(app: JSON, since: datetime, until: datetime) -> Iterator[Change]:
    status = app.get("status") or {}
    ref = ObjectRef("Application", namespace_of(app), name_of(app))
    affects = tuple(
        ObjectRef(str(r.get("kind")), str(r.get("namespace") or ""), str(r.get("name")))
        for r in status.get("resources") or []
        if isinstance(r, dict) and r.get("kind") in _WORKLOAD_KINDS
    )
    history = [h for h in status.get("history") or [] if isinstance(h, dict)]
    history.sort(key=lambda h: int(h.get("id") or 0))
    previous: str | None = None
    for entry in history:
        revision = _argo_revision(entry)
        at = parse_k8s_time(entry.get("deployedAt"))
        if at and since <= at <= until:
            yield Change(
                kind=ChangeKind.GITOPS,
                target=ref,
                at=at,
                started_at=parse_k8s_time(entry.get("deployStartedAt")),
                summary=f"Argo CD synced {name_of(app)} to {_short_rev(revision)}",
                before=_short_rev(previous) if previous else None,
                after=_short_rev(revision),
                revision=_int_or_none(entry.get("id")),
                affects=affects,
                evidence=(
                    f"Application {ref.namespace}/{ref.name} status.history id "
                    f"{entry.get('id')}: revision {revision} deployed at "
                    f"{entry.get('deployedAt')}",
                ),
            )
        previous = revision
    operation = status.get("operationState") or {}
    if operation.get("phase") in ("Failed", "Error"):
        at = parse_k8s_time(operation.get("finishedAt")) or parse_k8s_time(
            operation.get("startedAt")
        )
        if at and since <= at <= until:
            revision = str(((operation.get("syncResult") or {}).get("revision")) or "")
            yield Change(
                kind=ChangeKind.GITOPS,
                target=ref,
                at=at,
                summary=f"Argo CD sync of {name_of(app)} {operation.get('phase', '').lower()}",
                after=_short_rev(revision) or None,
                stalled=True,
                affects=affects,
                evidence=(
                    f"operationState: {' '.join(str(operation.get('message', '')).split())}",
                ),
            )


def _argo_revision(entry: JSON) -> str:
    if entry.get("revision"):
        return str(entry["revision"])
    revisions = entry.get("revisions") or []
    return ",".join(str(r) for r in revisions)


def _flux_changes(
    view: ClusterView, obj: JSON, since: datetime, until: datetime
) -> Iterator[Change]:
    kind = str(obj.get("kind"))
    ref = ObjectRef(kind, namespace_of(obj), name_of(obj))
    status = obj.get("status") or {}
    affects = _flux_affects(view, obj)
    tool = "Flux Kustomization" if kind == "Kustomization" else "Flux HelmRelease"
    history = [h for h in status.get("history") or [] if isinstance(h, dict)]
    if history:
        # Newest first in Flux's status.history.
        ordered = list(reversed(history))
        previous: str | None = None
        for entry in ordered:
            revision = _flux_history_revision(entry)
            at = parse_k8s_time(entry.get("firstReconciled") or entry.get("firstDeployed"))
            if at and since <= at <= until:
                failed = str(
                    entry.get("lastReconciledStatus") or entry.get("status") or ""
                ).lower() in ("failed", "reconciliationfailed", "healthcheckfailed")
                yield Change(
                    kind=ChangeKind.GITOPS,
                    target=ref,
                    at=at,
                    summary=f"{tool} {ref.name} applied {revision}",
                    before=previous,
                    after=revision,
                    stalled=failed,
                    affects=affects,
                    evidence=(f"{kind} {ref.namespace}/{ref.name} status.history: {revision}",),
                )
            previous = revision
        return
    revision = str(status.get("lastAppliedRevision") or "")
    ready = condition(obj, "Ready") or {}
    at = parse_k8s_time(ready.get("lastTransitionTime"))
    if revision and at and since <= at <= until:
        yield Change(
            kind=ChangeKind.GITOPS,
            target=ref,
            at=at,
            summary=f"{tool} {ref.name} applied {revision}",
            after=revision,
            stalled=ready.get("status") == "False",
            affects=affects,
            evidence=(
                f"{kind} {ref.namespace}/{ref.name} lastAppliedRevision {revision}; "
                "time from its Ready condition (Flux keeps no per-revision time here)",
            ),
        )


def _flux_history_revision(entry: JSON) -> str:
    metadata = entry.get("metadata") or {}
    if metadata.get("revision"):
        return str(metadata["revision"])
    if entry.get("chartVersion"):
        return f"{entry.get('chartName', 'chart')}@{entry['chartVersion']}"
    return str(entry.get("digest") or "")


def _flux_affects(view: ClusterView, obj: JSON) -> tuple[ObjectRef, ...]:
    kind = obj.get("kind")
    refs: set[ObjectRef] = set()
    for entry in ((obj.get("status") or {}).get("inventory") or {}).get("entries") or []:
        # Inventory ids are "<namespace>_<name>_<group>_<kind>".
        parts = str((entry or {}).get("id") or "").split("_")
        if len(parts) == 4 and parts[3] in _WORKLOAD_KINDS:
            refs.add(ObjectRef(parts[3], parts[0], parts[1]))
    name_key, ns_key = (
        (FLUX_KS_NAME, FLUX_KS_NAMESPACE)
        if kind == "Kustomization"
        else (FLUX_HR_NAME, FLUX_HR_NAMESPACE)
    )
    for wkind in _WORKLOAD_KINDS:
        for workload in view.of_kind(wkind):
            labels = labels_of(workload)
            if labels.get(name_key) == name_of(obj) and labels.get(
                ns_key, namespace_of(workload)
            ) == namespace_of(obj):
                refs.add(ObjectRef(wkind, namespace_of(workload), name_of(workload)))
    return tuple(sorted(refs))


def _short_rev(revision: str | None) -> str:
    """Git SHAs shortened to 7 characters the way people quote them."""
    if not revision:
        return ""
    if len(revision) == 40 and all(c in "0123456789abcdef" for c in revision):
        return revision[:7]
    return revision


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None
