"""Workload history: the revisions of Deployments, StatefulSets and DaemonSets.

Kubernetes keeps a workload's past in two shapes.  A Deployment's revisions
are the ReplicaSets it controls (matched by owner UID, as the controller and
``kubectl rollout undo`` do), numbered by the ``deployment.kubernetes.io/revision``
annotation (missing means 0) and, after a rollback, carrying the numbers they
used to have in ``deployment.kubernetes.io/revision-history``.  StatefulSets and
DaemonSets keep ControllerRevisions whose ``.revision`` is the number and whose
``.data`` holds the pod template as a replace patch.

This module turns either shape into :class:`WorkloadRevision` records (a
:class:`~controller.model.RevisionInfo` beside the source object and the pod
template of that revision), judges each revision's health from the evidence
the view holds, and assembles the :class:`~controller.model.WorkloadFacts`
the safety check needs.  Everything here is pure: it reads a
:class:`~controller.view.ClusterView` and takes ``now`` as a parameter.

Health evidence, strongest first:

* the Deployment's ``Progressing`` condition names the ReplicaSet it speaks of
  (``ReplicaSet "web-5d4f" has timed out progressing.``), so a
  ``ProgressDeadlineExceeded`` marks exactly that revision unhealthy and a
  ``NewReplicaSetAvailable`` dates its rollout completion;
* the revision's pods that still exist (crash loops, image pulls, not Ready);
* warning Events about the revision's pods or its ReplicaSet (they outlive
  the pods by about an hour);
* for a revision that has been replaced and scaled down, its active period:
  from when it became current until the next revision did.  Kubernetes keeps
  no availability history for it, so "served this long and nothing we can
  see says it failed" is the best evidence there is; ``health_note`` says so.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from controller.durations import format_duration, format_instant, parse_k8s_time
from controller.model import (
    Change,
    ChangeKind,
    ObjectRef,
    RevisionInfo,
    WorkloadFacts,
    WorkloadKind,
)
from controller.policy.scoring import ScoringSettings
from controller.sources.gitops import gitops_owner
from controller.sources.helm import helm_release_of
from controller.sources.pods import condition, is_ready, pod_problems, ready_since
from controller.view import (
    JSON,
    ClusterView,
    annotations_of,
    controller_owner,
    event_time,
    labels_of,
    meta,
    name_of,
    namespace_of,
)

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
CHANGE_CAUSE = "kubernetes.io/change-cause"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
POD_TEMPLATE_HASH = "pod-template-hash"
CONTROLLER_REVISION_HASH = "controller-revision-hash"
SCHEMA_VERSION = "rollback.io/schema-version"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"

DEFAULT_MIGRATION_PATTERNS: tuple[str, ...] = ScoringSettings().migration_job_patterns

WORKLOAD_KINDS: tuple[str, ...] = tuple(k.value for k in WorkloadKind)

# Event reasons that say a pod of a revision was failing.  Kubelet emits
# "BackOff" for both crash loops and image pull back-off, "Unhealthy" for
# failed probes; the ReplicaSet controller emits "FailedCreate".
_FAILURE_EVENT_REASONS = frozenset(
    {"BackOff", "Unhealthy", "Failed", "FailedCreate", "OOMKilling", "ErrImagePull"}
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_RS_IN_MESSAGE = re.compile(r'ReplicaSet "([^"]+)"')

# Progressive-delivery controllers that own a Deployment's rollout.  An
# ownerReference names them directly; otherwise their marks on the object do.
_PROGRESSIVE_OWNERS = {"Rollout": "Argo Rollouts", "Canary": "Flagger"}
_PROGRESSIVE_MARKS = {
    "rollouts.kruise.io/": "OpenKruise Rollouts",
    "flagger.app/": "Flagger",
    "rollout.argoproj.io/": "Argo Rollouts",
    "argo-rollouts.argoproj.io/": "Argo Rollouts",
}


@dataclass(frozen=True)
class WorkloadRevision:
    """One revision of a workload with the objects it came from.

    ``source`` is the ReplicaSet or ControllerRevision dictionary as the API
    returned it; ``template`` is that revision's pod template (for a
    ControllerRevision, the template inside ``.data`` without its ``$patch``
    marker), ready to compare or to write back.
    """

    info: RevisionInfo
    source: JSON
    template: JSON

    @property
    def revision(self) -> int:
        return self.info.revision


# ---------------------------------------------------------------------------
# Finding workloads
# ---------------------------------------------------------------------------


def _ann(obj: JSON) -> dict[str, str]:
    """The object's annotations as the API gave them (no copy: hot paths read many)."""
    value = (obj.get("metadata") or {}).get("annotations")
    return value if isinstance(value, dict) else {}


def workload_ref(obj: JSON) -> ObjectRef:
    return ObjectRef(str(obj.get("kind") or ""), namespace_of(obj), name_of(obj))


def iter_workloads(view: ClusterView, namespace: str | None = None) -> Iterator[JSON]:
    """Every Deployment, StatefulSet and DaemonSet in the view, in a stable order."""
    for kind in WORKLOAD_KINDS:
        yield from sorted(
            view.of_kind(kind, namespace), key=lambda o: (namespace_of(o), name_of(o))
        )


def find_workload(view: ClusterView, ref: ObjectRef) -> JSON | None:
    """The workload ``ref`` names; kind matches case-insensitively and by kubectl short name."""
    kind = WorkloadKind.parse(ref.kind)
    if kind is None:
        return None
    return view.get(kind, ref.namespace, ref.name)


# ---------------------------------------------------------------------------
# Pod templates: images, config references, diffs
# ---------------------------------------------------------------------------


def pod_template_of(source: JSON) -> JSON:
    """The pod template a ReplicaSet or ControllerRevision records."""
    if source.get("kind") == "ControllerRevision":
        data = source.get("data") or {}
        template = (data.get("spec") or {}).get("template") or {}
        return {k: v for k, v in template.items() if k != "$patch"}
    template = (source.get("spec") or {}).get("template")
    return template if isinstance(template, dict) else {}


def template_without_hash(template: JSON) -> JSON:
    """A copy of ``template`` without the ``pod-template-hash`` label (kubectl compares so)."""
    clean = copy.deepcopy(template)
    labels = (clean.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
    return clean


def templates_equal(a: JSON, b: JSON) -> bool:
    """True when two pod templates differ at most in their ``pod-template-hash`` label."""
    return bool(_normalise_template(a) == _normalise_template(b))


def _normalise_template(template: JSON) -> Any:
    # Normalising builds new dicts anyway, so the hash label is dropped on the
    # way rather than by copying the template first.
    out = _normalise(template)
    labels = (out.get("metadata") or {}).get("labels") if isinstance(out, dict) else None
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
        if not labels:
            out["metadata"].pop("labels")
        if not out["metadata"]:
            out.pop("metadata")
    return out


def _normalise(value: Any) -> Any:
    # An empty map and a missing one mean the same to the API server.
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items() if v not in ({}, [], None)}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def containers(template: JSON, *, init: bool = True) -> Iterator[JSON]:
    spec = template.get("spec") or {}
    keys = ("initContainers", "containers") if init else ("containers",)
    for key in keys:
        for item in spec.get(key) or []:
            if isinstance(item, dict):
                yield item


def template_images(template: JSON) -> tuple[str, ...]:
    """Images of the main containers, in declaration order."""
    return tuple(str(c.get("image") or "") for c in containers(template, init=False))


def template_config_refs(template: JSON, namespace: str) -> tuple[ObjectRef, ...]:
    """ConfigMaps and Secrets the pod template reads, sorted and without duplicates.

    Looks where the kubelet looks: volumes (configMap, secret, projected
    sources), ``envFrom`` and ``env[].valueFrom`` of every container, init
    containers included.  Image pull secrets are not config and are skipped.
    """
    refs: set[ObjectRef] = set()
    spec = template.get("spec") or {}
    for volume in spec.get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        _add_volume_refs(volume, namespace, refs)
        for source in (volume.get("projected") or {}).get("sources") or []:
            if isinstance(source, dict):
                _add_volume_refs(source, namespace, refs)
    for container in containers(template):
        for env_from in container.get("envFrom") or []:
            if not isinstance(env_from, dict):
                continue
            if name := (env_from.get("configMapRef") or {}).get("name"):
                refs.add(ObjectRef("ConfigMap", namespace, str(name)))
            if name := (env_from.get("secretRef") or {}).get("name"):
                refs.add(ObjectRef("Secret", namespace, str(name)))
        for env in container.get("env") or []:
            value_from = (env.get("valueFrom") or {}) if isinstance(env, dict) else {}
            if name := (value_from.get("configMapKeyRef") or {}).get("name"):
                refs.add(ObjectRef("ConfigMap", namespace, str(name)))
            if name := (value_from.get("secretKeyRef") or {}).get("name"):
                refs.add(ObjectRef("Secret", namespace, str(name)))
    return tuple(sorted(refs))


def _add_volume_refs(source: JSON, namespace: str, refs: set[ObjectRef]) -> None:
    if name := (source.get("configMap") or {}).get("name"):
        refs.add(ObjectRef("ConfigMap", namespace, str(name)))
    secret = source.get("secret") or {}
    if name := secret.get("secretName") or secret.get("name"):
        refs.add(ObjectRef("Secret", namespace, str(name)))


def diff_templates(
    before: JSON,
    after: JSON,
    namespace: str = "",
    refs: tuple[Sequence[ObjectRef], Sequence[ObjectRef]] | None = None,
) -> tuple[str, ...]:
    """What changed between two pod templates, as short phrases.

    Names images per container, env variables added, removed or changed (names
    only: values may be secrets), referenced ConfigMaps/Secrets, and resource
    requests and limits.  Anything else that differs is summarised as
    "other pod template fields" so a change is never reported as nothing.
    ``refs`` may pass both templates' config references when already known.
    """
    out: list[str] = []
    old_c = {str(c.get("name")): c for c in containers(before)}
    new_c = {str(c.get("name")): c for c in containers(after)}
    for name in sorted(new_c.keys() - old_c.keys()):
        out.append(f"container {name} added ({new_c[name].get('image')})")
    for name in sorted(old_c.keys() - new_c.keys()):
        out.append(f"container {name} removed")
    for name in [n for n in new_c if n in old_c]:
        old, new = old_c[name], new_c[name]
        if old.get("image") != new.get("image"):
            out.append(
                f"image {name}: {image_change(str(old.get('image')), str(new.get('image')))}"
            )
        out.extend(_env_diff(name, old, new))
        if (old.get("resources") or {}) != (new.get("resources") or {}):
            out.append(
                f"resources {name}: {_resources(old.get('resources'))} -> "
                f"{_resources(new.get('resources'))}"
            )
        if old.get("command") != new.get("command") or old.get("args") != new.get("args"):
            out.append(f"command or args of {name} changed")
    if refs is None:
        refs = (template_config_refs(before, namespace), template_config_refs(after, namespace))
    old_refs, new_refs = set(refs[0]), set(refs[1])
    for ref in sorted(new_refs - old_refs):
        out.append(f"now reads {ref.kind} {ref.name}")
    for ref in sorted(old_refs - new_refs):
        out.append(f"no longer reads {ref.kind} {ref.name}")
    old_restart = annotations_of(before).get(RESTARTED_AT)
    new_restart = annotations_of(after).get(RESTARTED_AT)
    if old_restart != new_restart and new_restart:
        out.append(f"restarted (kubectl rollout restart at {new_restart})")
    if not out and not templates_equal(before, after):
        out.append("other pod template fields changed")
    return tuple(out)


def image_change(old: str, new: str) -> str:
    """``repo:1.0 -> 1.1`` when only the tag changed, else both images in full."""
    old_repo, _, old_tag = old.rpartition(":")
    new_repo, _, new_tag = new.rpartition(":")
    if old_repo and old_repo == new_repo and "/" not in old_tag and "/" not in new_tag:
        return f"{old} -> {new_tag}"
    return f"{old} -> {new}"


def _env_diff(container: str, old: JSON, new: JSON) -> Iterator[str]:
    def env_map(c: JSON) -> dict[str, Any]:
        return {
            str(e.get("name")): e.get("value", e.get("valueFrom"))
            for e in c.get("env") or []
            if isinstance(e, dict)
        }

    a, b = env_map(old), env_map(new)
    added = sorted(b.keys() - a.keys())
    removed = sorted(a.keys() - b.keys())
    changed = sorted(k for k in a.keys() & b.keys() if a[k] != b[k])
    if added:
        yield f"env {container}: added {', '.join(added)}"
    if removed:
        yield f"env {container}: removed {', '.join(removed)}"
    if changed:
        yield f"env {container}: changed {', '.join(changed)}"
    if (old.get("envFrom") or []) != (new.get("envFrom") or []):
        yield f"envFrom of {container} changed"


def _resources(value: Any) -> str:
    if not isinstance(value, dict) or not value:
        return "none"
    parts = []
    for section in ("requests", "limits"):
        items = value.get(section) or {}
        if items:
            inner = ",".join(f"{k}={items[k]}" for k in sorted(items))
            parts.append(f"{section} {inner}")
    return "; ".join(parts) or "none"


# ---------------------------------------------------------------------------
# Revisions
# ---------------------------------------------------------------------------


def revision_sources(view: ClusterView, workload: JSON) -> list[JSON]:
    """The ReplicaSets or ControllerRevisions the workload controls, by owner UID."""
    kind = workload.get("kind")
    child = "ReplicaSet" if kind == "Deployment" else "ControllerRevision"
    return view.owned_by(workload, child)


def revision_number(source: JSON) -> int:
    """A ReplicaSet's revision annotation (missing or malformed = 0), or a ControllerRevision's."""
    if source.get("kind") == "ControllerRevision":
        return _int(source.get("revision"))
    return _int(_ann(source).get(REVISION))


def _int(value: object) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


def pods_of(view: ClusterView, workload: JSON, source: JSON) -> list[JSON]:
    """Pods running the revision ``source`` stands for.

    ReplicaSet pods are its owned children.  StatefulSet and DaemonSet pods are
    owned by the workload and carry a ``controller-revision-hash`` label: the
    full ControllerRevision name for a StatefulSet, the bare hash for a
    DaemonSet.
    """
    if source.get("kind") == "ReplicaSet":
        return view.owned_by(source, "Pod")
    name = name_of(source)
    out = []
    for pod in view.owned_by(workload, "Pod"):
        label = labels_of(pod).get(CONTROLLER_REVISION_HASH, "")
        if label and (label == name or name.endswith("-" + label)):
            out.append(pod)
    return out


def current_source_name(workload: JSON, sources: Sequence[JSON]) -> str:
    """Name of the ReplicaSet/ControllerRevision that is the workload's current revision.

    Deployment: the ReplicaSet whose template equals the Deployment's (how the
    controller finds its new ReplicaSet), else the highest revision.
    StatefulSet: ``status.updateRevision`` (what it is rolling to).  DaemonSet:
    the ControllerRevision whose template equals the DaemonSet's, else the
    highest revision.
    """
    if not sources:
        return ""
    if workload.get("kind") == "StatefulSet":
        update = (workload.get("status") or {}).get("updateRevision")
        if update and any(name_of(s) == update for s in sources):
            return str(update)
    template = (workload.get("spec") or {}).get("template") or {}
    if workload.get("kind") == "Deployment":
        # The controller stamps the Deployment with its new ReplicaSet's
        # revision: one lookup instead of comparing every template.
        stamped = _ann(workload).get(REVISION)
        for source in sources:
            if stamped and _ann(source).get(REVISION) == stamped:
                return name_of(source)
    for source in sorted(sources, key=revision_number, reverse=True):
        if templates_equal(pod_template_of(source), template):
            return name_of(source)
    return name_of(max(sources, key=revision_number))


def workload_revisions(
    view: ClusterView,
    workload: JSON,
    now: datetime,
    migration_patterns: Sequence[str] = DEFAULT_MIGRATION_PATTERNS,
) -> tuple[WorkloadRevision, ...]:
    """The workload's revisions, oldest first, each with its health judged.

    Pure: reads the view only.  See the module docstring for the evidence
    used.  ``migration_patterns`` (lower-case substrings) mark init containers
    that run schema migrations.  A revision number that appears only in a ReplicaSet's
    ``revision-history`` (an older number of a re-adopted ReplicaSet) is not
    a separate record: that ReplicaSet is the revision, under its new number.
    Remembered per view (the pipeline asks for the same workload several times).
    """
    key = (
        "revisions",
        workload_ref(workload),
        meta(workload).get("uid"),
        now,
        tuple(migration_patterns),
        frozenset(view.complete),
    )
    return view.memo(key, lambda: _workload_revisions(view, workload, now, migration_patterns))


def _workload_revisions(
    view: ClusterView, workload: JSON, now: datetime, migration_patterns: Sequence[str]
) -> tuple[WorkloadRevision, ...]:
    namespace = namespace_of(workload)
    sources = sorted(
        revision_sources(view, workload), key=lambda s: (revision_number(s), name_of(s))
    )
    if not sources:
        return ()
    current_name = current_source_name(workload, sources)
    progressing = _progressing_condition(workload)
    events = view.memo(
        ("warning-events", namespace), lambda: _warning_events_by_object(view, namespace)
    )
    records: list[WorkloadRevision] = []
    previous_since: datetime | None = None
    # First pass: when each revision became current, so the next one's start
    # can close the previous one's active period.
    starts: list[datetime] = []
    for source in sources:
        start = _became_current(source, previous_since, is_current=name_of(source) == current_name)
        starts.append(start)
        previous_since = start
    for index, source in enumerate(sources):
        is_current = name_of(source) == current_name
        template = pod_template_of(source)
        active_since = starts[index]
        active_until = None if is_current else _next_start(starts, index)
        pods = pods_of(view, workload, source)
        counts = _replica_counts(source, pods)
        judgement = _judge_health(
            workload=workload,
            source=source,
            pods=pods,
            counts=counts,
            events=events,
            progressing=progressing,
            is_current=is_current,
            active_since=active_since,
            active_until=active_until,
            now=now,
            previous_source=sources[index - 1] if index else None,
            next_source=sources[index + 1] if index + 1 < len(sources) else None,
        )
        annotations = _ann(source)
        config_refs = template_config_refs(template, namespace)
        info = RevisionInfo(
            revision=revision_number(source),
            source=workload_ref(source),
            created_at=parse_k8s_time(meta(source).get("creationTimestamp")) or active_since,
            images=template_images(template),
            template_hash=labels_of(source).get(POD_TEMPLATE_HASH)
            or labels_of(source).get("controller.kubernetes.io/hash", ""),
            change_cause=annotations.get(CHANGE_CAUSE),
            config_refs=config_refs,
            replicas=counts[0],
            ready_replicas=counts[1],
            available_replicas=counts[2],
            active_since=active_since,
            active_until=active_until,
            healthy_for=judgement.healthy_for,
            unhealthy=judgement.unhealthy,
            exists=True,
            annotations=annotations,
            current=is_current,
            completed_at=judgement.completed_at,
            health_note=judgement.note,
            migration_init_containers=migration_init_containers(template, migration_patterns),
            schema_version=_ann(template).get(SCHEMA_VERSION) or annotations.get(SCHEMA_VERSION),
            missing_config_refs=_missing(view, config_refs),
            desired_replicas=_desired_replicas(source, annotations),
        )
        records.append(WorkloadRevision(info=info, source=source, template=template))
    return tuple(records)


def migration_init_containers(template: JSON, patterns: Sequence[str]) -> tuple[str, ...]:
    """Init containers whose name, image or command mentions a migration pattern."""
    out = []
    for container in (template.get("spec") or {}).get("initContainers") or []:
        if not isinstance(container, dict):
            continue
        words = " ".join(
            [str(container.get("name") or ""), str(container.get("image") or "")]
            + [str(x) for x in (container.get("command") or []) + (container.get("args") or [])]
        ).lower()
        if any(p in words for p in patterns):
            out.append(str(container.get("name") or ""))
    return tuple(out)


def _missing(view: ClusterView, refs: Iterable[ObjectRef]) -> tuple[ObjectRef, ...]:
    """References to objects of fully read kinds that are not there (deleted since)."""
    return tuple(
        r for r in refs if r.kind in view.complete and view.get(r.kind, r.namespace, r.name) is None
    )


def _desired_replicas(source: JSON, annotations: dict[str, str]) -> int | None:
    if source.get("kind") != "ReplicaSet" or DESIRED_REPLICAS not in annotations:
        return None
    value = annotations[DESIRED_REPLICAS]
    return int(value) if value.isdigit() else None


def _next_start(starts: Sequence[datetime], index: int) -> datetime | None:
    later = [s for s in starts[index + 1 :] if s is not None]
    return min(later) if later else None


def _became_current(source: JSON, previous_since: datetime | None, *, is_current: bool) -> datetime:
    """When this revision took over.

    Usually its creation.  A ReplicaSet re-adopted by a rollback (it carries
    ``revision-history``) was created long ago; when it is current, its last
    spec update by the controller (the scale-up) dates the rollback; otherwise
    the best bound is "after the revision before it".
    """
    created = parse_k8s_time(meta(source).get("creationTimestamp"))
    start = created or previous_since
    if REVISION_HISTORY in _ann(source):
        if is_current:
            touched = _last_spec_update(source)
            if touched and (start is None or touched > start):
                start = touched
        if previous_since and (start is None or previous_since > start):
            start = previous_since
    # A source without a creation time exists only in hand-written snapshots;
    # the epoch keeps ordering total without inventing a recent time.
    return start if start is not None else _EPOCH


def _last_spec_update(obj: JSON) -> datetime | None:
    latest: datetime | None = None
    for entry in meta(obj).get("managedFields") or []:
        if not isinstance(entry, dict) or entry.get("subresource"):
            continue
        moment = parse_k8s_time(entry.get("time"))
        if moment and (latest is None or moment > latest):
            latest = moment
    return latest


def _replica_counts(source: JSON, pods: Sequence[JSON]) -> tuple[int, int, int]:
    """(desired, ready, available) for the revision.

    A ReplicaSet reports its own; a ControllerRevision has no status, so its
    pods are counted (available = ready; minReadySeconds is not tracked here).
    """
    if source.get("kind") == "ReplicaSet":
        spec = source.get("spec") or {}
        status = source.get("status") or {}
        return (
            _int(spec.get("replicas", 1)),
            _int(status.get("readyReplicas") or 0),
            _int(status.get("availableReplicas") or 0),
        )
    live = [p for p in pods if not meta(p).get("deletionTimestamp")]
    ready = sum(1 for p in live if is_ready(p))
    return len(live), ready, ready


def _progressing_condition(workload: JSON) -> tuple[str, str, datetime | None]:
    """(reason, ReplicaSet named in the message, lastUpdateTime) of a Deployment's Progressing."""
    cond = condition(workload, "Progressing")
    if not cond:
        return "", "", None
    match = _RS_IN_MESSAGE.search(str(cond.get("message") or ""))
    return (
        str(cond.get("reason") or ""),
        match.group(1) if match else "",
        parse_k8s_time(cond.get("lastUpdateTime")),
    )


@dataclass(frozen=True)
class _Health:
    unhealthy: bool
    healthy_for: timedelta
    completed_at: datetime | None
    note: str


def _judge_health(
    *,
    workload: JSON,
    source: JSON,
    pods: Sequence[JSON],
    counts: tuple[int, int, int],
    events: dict[str, list[JSON]],
    progressing: tuple[str, str, datetime | None],
    is_current: bool,
    active_since: datetime,
    active_until: datetime | None,
    now: datetime,
    previous_source: JSON | None = None,
    next_source: JSON | None = None,
) -> _Health:
    name = name_of(source)
    desired, _ready, available = counts
    reason, named_rs, _ = progressing
    # 1. The Deployment's own verdict on this ReplicaSet.
    if reason == "ProgressDeadlineExceeded" and named_rs == name:
        return _Health(True, timedelta(0), None, "its rollout exceeded the progress deadline")
    completed_at = _completion(
        workload,
        source=source,
        pods=pods,
        counts=counts,
        progressing=progressing,
        is_current=is_current,
    ) or _scaled_down_completion(previous_source, active_since, active_until, now)
    # 2. Its pods, where they still exist.
    failing = [(p, pod_problems(p, now)) for p in pods]
    failing = [(p, probs) for p, probs in failing if probs]
    if failing:
        pod, problems = failing[0]
        return _Health(
            True,
            timedelta(0),
            completed_at,
            f"{len(failing)} of its pods are failing ({problems[0].reason} on {name_of(pod)})",
        )
    # 3. Warning events about its pods or its ReplicaSet while it was current.
    bad_events = [
        (when, e)
        for e in events.get(name, ())
        if _event_reason(e) in _FAILURE_EVENT_REASONS
        and (when := event_time(e)) is not None
        and when >= active_since
        and (active_until is None or when <= active_until)
    ]
    if bad_events:
        _, latest = max(bad_events, key=lambda pair: pair[0])
        return _Health(
            True,
            timedelta(0),
            completed_at,
            f"warning events about its pods ({_event_reason(latest)}: {_one_line(latest)})",
        )
    # 4. Evidence of service.
    if is_current:
        if completed_at is None or (desired and available < desired):
            return _Health(False, timedelta(0), completed_at, "its rollout has not completed")
        served = max(now - completed_at, timedelta(0))
        return _Health(
            False,
            served,
            completed_at,
            f"all {desired} replicas available for {format_duration(served)}",
        )
    if desired and available >= desired:
        # Still serving beside a newer revision (a rollout in progress or stalled).
        served = max(now - active_since, timedelta(0))
        return _Health(
            False,
            served,
            completed_at,
            f"still serving: {available} of {desired} replicas available",
        )
    end = active_until or now
    served = max(end - (completed_at or active_since), timedelta(0))
    return _Health(
        False,
        served,
        completed_at,
        f"served {format_duration(served)} until replaced; no failures seen",
    )


def _completion(
    workload: JSON,
    *,
    source: JSON,
    pods: Sequence[JSON],
    counts: tuple[int, int, int],
    progressing: tuple[str, str, datetime | None],
    is_current: bool,
) -> datetime | None:
    """When this revision's rollout completed, where the view can tell.

    A Deployment's ``NewReplicaSetAvailable`` condition naming it dates it;
    a StatefulSet whose current and update revisions are both this one and
    all of whose replicas are ready completed when its last pod became Ready;
    likewise for a DaemonSet whose pods all run this revision.
    """
    reason, named_rs, updated = progressing
    if reason == "NewReplicaSetAvailable" and named_rs == name_of(source):
        return updated
    if not is_current:
        return None
    desired, ready, _ = counts
    kind = workload.get("kind")
    status = workload.get("status") or {}
    if kind == "StatefulSet":
        if status.get("currentRevision") != status.get("updateRevision"):
            return None
        desired = _int((workload.get("spec") or {}).get("replicas", 1))
    elif kind == "DaemonSet":
        desired = _int(status.get("desiredNumberScheduled"))
        if _int(status.get("updatedNumberScheduled")) < desired:
            return None
    elif kind == "Deployment":
        return None
    if desired == 0 or ready < desired:
        return None
    times = [t for t in (ready_since(p) for p in pods) if t]
    return max(times) if times else None


def _scaled_down_completion(
    previous: JSON | None, since: datetime, until: datetime | None, now: datetime
) -> datetime | None:
    """When the ReplicaSet before this one was scaled to zero: this rollout's completion.

    A rolling update scales the old ReplicaSet down as the new one becomes
    available and reaches zero when the rollout completes; the controller's
    last write to the old ReplicaSet (its ``managedFields`` time) dates that.
    Only used when it falls inside this revision's active period.
    """
    if previous is None or previous.get("kind") != "ReplicaSet":
        return None
    if _int((previous.get("spec") or {}).get("replicas", 1)) != 0:
        return None
    latest: datetime | None = None
    for entry in meta(previous).get("managedFields") or []:
        if not isinstance(entry, dict) or entry.get("subresource"):
            continue
        if entry.get("manager") != "kube-controller-manager":
            continue
        moment = parse_k8s_time(entry.get("time"))
        if moment and (latest is None or moment > latest):
            latest = moment
    if latest is None or latest < since or latest > (until or now):
        return None
    return latest


def _warning_events_by_object(view: ClusterView, namespace: str) -> dict[str, list[JSON]]:
    """Warning events in the namespace, keyed by the revision object they concern.

    An event about a ReplicaSet or ControllerRevision is filed under its name;
    an event about a pod under the name of the ReplicaSet that made it (a pod
    is ``RS-NAME-xxxxx``) and, for StatefulSet and DaemonSet pods, under the
    ControllerRevision its ``controller-revision-hash`` names when the pod is
    still in the view.
    """
    out: dict[str, list[JSON]] = {}
    for event in view.of_kind("Event", namespace):
        if event.get("type") != "Warning":
            continue
        regarding = event.get("regarding") or event.get("involvedObject") or {}
        name = str(regarding.get("name") or "")
        if not name:
            continue
        keys = {name}
        if regarding.get("kind") == "Pod":
            keys.add(name.rpartition("-")[0])
            pod = view.get("Pod", namespace, name)
            label = labels_of(pod).get(CONTROLLER_REVISION_HASH) if pod else None
            if label:
                keys.add(label)
                owner = controller_owner(pod) if pod else None
                if owner:
                    keys.add(f"{owner.get('name')}-{label}")
        for key in keys:
            out.setdefault(key, []).append(event)
    return out


def _one_line(event: JSON) -> str:
    text = " ".join(str(event.get("message") or event.get("note") or "").split())
    return text if len(text) <= 80 else text[:77] + "..."


def _event_reason(event: JSON) -> str:
    return str(event.get("reason") or "")


# ---------------------------------------------------------------------------
# Workload facts for the safety check
# ---------------------------------------------------------------------------


def workload_facts(
    view: ClusterView,
    workload: JSON,
    now: datetime,
    migration_patterns: Sequence[str] = DEFAULT_MIGRATION_PATTERNS,
) -> WorkloadFacts:
    """Everything the rollback-safety check needs about one workload.

    Pure: reads the view only.  Revisions come from :func:`workload_revisions`;
    the rest from the workload itself (paused, replicas, progress deadline),
    the HPA that targets it, its GitOps owner (Argo CD Application or Flux
    Kustomization/HelmRelease), its Helm release and any progressive-delivery
    controller that owns its rollout.
    """
    records = workload_revisions(view, workload, now, migration_patterns)
    spec = workload.get("spec") or {}
    current = next((r.info for r in records if r.info.current), None)
    owner = gitops_owner(view, workload)
    reason, _, _ = _progressing_condition(workload)
    return WorkloadFacts(
        ref=workload_ref(workload),
        current_revision=current.revision if current else 0,
        revisions=tuple(r.info for r in records),
        resource_version=str(meta(workload).get("resourceVersion") or ""),
        paused=bool(spec.get("paused")),
        replicas=_int(spec.get("replicas", 1))
        if workload.get("kind") != "DaemonSet"
        else _int((workload.get("status") or {}).get("desiredNumberScheduled")),
        hpa=_hpa_for(view, workload),
        gitops_owner=owner.ref if owner else None,
        gitops_self_heal=bool(owner and owner.self_heal),
        gitops_automated=bool(owner and owner.automated),
        helm_release=helm_release_of(workload),
        progressive_delivery=progressive_delivery_of(workload),
        progress_deadline_exceeded=reason == "ProgressDeadlineExceeded",
        rollout_seconds=rollout_durations(records),
        labels=labels_of(workload),
        strategy=_strategy(workload),
        gitops_note=owner.note if owner else "",
    )


def rollout_durations(records: Iterable[WorkloadRevision]) -> tuple[float, ...]:
    """Observed seconds from a revision becoming current to its rollout completing.

    API timestamps have one-second resolution, so a rollout measured at zero
    seconds is no measurement at all and is left out.
    """
    out = []
    for record in records:
        info = record.info
        if info.completed_at and info.active_since and info.completed_at > info.active_since:
            out.append((info.completed_at - info.active_since).total_seconds())
    return tuple(out)


def _strategy(workload: JSON) -> str:
    spec = workload.get("spec") or {}
    strategy = spec.get("strategy") or spec.get("updateStrategy") or {}
    return str(strategy.get("type") or "")


def _hpa_for(view: ClusterView, workload: JSON) -> ObjectRef | None:
    kind, name = workload.get("kind"), name_of(workload)
    for hpa in view.of_kind("HorizontalPodAutoscaler", namespace_of(workload)):
        target = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        if target.get("kind") == kind and target.get("name") == name:
            return workload_ref(hpa)
    return None


def progressive_delivery_of(workload: JSON) -> str | None:
    """The progressive-delivery controller that owns this workload's rollout, if any."""
    for ref in meta(workload).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("kind") in _PROGRESSIVE_OWNERS:
            return f"{_PROGRESSIVE_OWNERS[str(ref['kind'])]} ({ref['kind']} {ref.get('name')})"
    keys = list(annotations_of(workload)) + list(labels_of(workload))
    for prefix, controller in _PROGRESSIVE_MARKS.items():
        if any(k.startswith(prefix) for k in keys):
            return controller
    return None


def consumers_of(view: ClusterView, ref: ObjectRef) -> tuple[JSON, ...]:
    """Workloads whose current pod template reads the ConfigMap or Secret ``ref``."""
    return tuple(view.memo(("config-consumers",), lambda: _config_consumers(view)).get(ref, ()))


def _config_consumers(view: ClusterView) -> dict[ObjectRef, list[JSON]]:
    index: dict[ObjectRef, list[JSON]] = {}
    for workload in iter_workloads(view):
        template = (workload.get("spec") or {}).get("template") or {}
        for ref in template_config_refs(template, namespace_of(workload)):
            index.setdefault(ref, []).append(workload)
    return index


def last_restart(view: ClusterView, workload: JSON) -> datetime | None:
    """When the workload's pods were last (re)started as a set.

    The newer of the ``kubectl.kubernetes.io/restartedAt`` template annotation
    and the oldest creation time among its live pods (every pod newer than a
    moment means all restarted after it).
    """
    template = (workload.get("spec") or {}).get("template") or {}
    restarted = parse_k8s_time(annotations_of(template).get(RESTARTED_AT))
    pods: list[JSON] = []
    if workload.get("kind") == "Deployment":
        for rs in view.owned_by(workload, "ReplicaSet"):
            pods.extend(view.owned_by(rs, "Pod"))
    else:
        pods.extend(view.owned_by(workload, "Pod"))
    created = [
        t
        for t in (
            parse_k8s_time(meta(p).get("creationTimestamp"))
            for p in pods
            if not meta(p).get("deletionTimestamp")
        )
        if t
    ]
    oldest_pod = min(created) if created else None
    candidates = [t for t in (restarted, oldest_pod) if t]
    return max(candidates) if candidates else None


# ---------------------------------------------------------------------------
# Deploy changes
# ---------------------------------------------------------------------------


def collect_workload_changes(
    view: ClusterView,
    since: datetime,
    until: datetime,
    now: datetime,
    migration_patterns: Sequence[str] = DEFAULT_MIGRATION_PATTERNS,
) -> list[Change]:
    """One ``deploy`` change per workload revision that rolled out between ``since`` and ``until``.

    Pure: reads the view only.  A revision counts when it became current or
    completed its rollout in the window.  ``at`` is the rollout's completion
    when known (the moment the new code served everyone), else its start;
    ``started_at`` is when it became current.  ``before``/``after`` name the
    images of the previous and new revision; the evidence lists what differs
    between their pod templates.
    """
    changes: list[Change] = []
    for workload in iter_workloads(view):
        records = workload_revisions(view, workload, now, migration_patterns)
        for index, record in enumerate(records):
            info = record.info
            start = info.active_since or info.created_at
            at = info.completed_at or start
            if not (since <= at <= until or since <= start <= until):
                continue
            previous = records[index - 1] if index else None
            changes.append(_deploy_change(workload, record, previous))
    return changes


def _deploy_change(
    workload: JSON, record: WorkloadRevision, previous: WorkloadRevision | None
) -> Change:
    info = record.info
    ref = workload_ref(workload)
    start = info.active_since or info.created_at
    history = info.annotations.get(REVISION_HISTORY)
    images = ", ".join(info.images) or "no images"
    if previous is not None:
        diff = diff_templates(
            previous.template,
            record.template,
            ref.namespace,
            refs=(previous.info.config_refs, info.config_refs),
        )
    elif info.revision <= 1:
        diff = (f"created with {images}",)
    else:
        diff = (f"runs {images}; the revision before it is no longer kept",)
    headline = next((d for d in diff if d.startswith("image ")), diff[0] if diff else "")
    if history:
        summary = (
            f"{ref.short} rolled back to the template of revision "
            f"{history.split(',')[-1]} as revision {info.revision}"
        )
    elif previous is None and info.revision <= 1:
        summary = f"{ref.short} created as revision {info.revision} with {images}"
        headline = ""
    else:
        summary = f"{ref.short} rolled out revision {info.revision}"
    stalled = info.current and info.unhealthy and info.completed_at is None
    if info.completed_at:
        state = f"rollout completed {format_instant(info.completed_at)}"
    elif info.current:
        state = (
            f"rollout stalled: {info.health_note}"
            if info.unhealthy
            else "rollout not completed yet"
        )
    else:
        state = "replaced before its completion was recorded"
    evidence = [
        f"{info.source.kind} {info.source.name} (revision {info.revision}) "
        f"became current {format_instant(start)}",
        state,
        *diff,
    ]
    if info.health_note and not stalled:
        evidence.append(f"health: {info.health_note}")
    return Change(
        kind=ChangeKind.DEPLOY,
        target=ref,
        at=info.completed_at or start,
        started_at=start,
        summary=summary + (f": {headline}" if headline else ""),
        before=_revision_label(previous.info) if previous else None,
        after=_revision_label(info),
        cause=info.change_cause,
        revision=info.revision,
        previous_revision=previous.info.revision if previous else None,
        stalled=stalled,
        evidence=tuple(evidence),
    )


def _revision_label(info: RevisionInfo) -> str:
    return f"revision {info.revision}: {', '.join(info.images) or 'no images'}"
