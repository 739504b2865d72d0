"""Workload rollback plans: kubectl's result, with a precondition and without losing annotations.

``kubectl rollout undo`` on a Deployment sends one JSON Patch that replaces
``/spec/template`` with the target ReplicaSet's template (minus the
``pod-template-hash`` label) and ``/metadata/annotations`` with the protected
keys of the Deployment plus the rest from the target ReplicaSet.  The
Deployment controller then re-adopts the old ReplicaSet and renumbers it.

We write the same template, so the cluster ends in the state users know, and
differ where kubectl hurts:

* the patch carries the ``resourceVersion`` we read (see
  :func:`~controller.actions.plan.resource_version_precondition`): if anyone
  wrote the Deployment since, the server rejects the whole patch with 409;
* annotations the Deployment gained after the target revision are kept, not
  silently dropped (only ``kubernetes.io/change-cause``, which describes a
  revision, follows the target as kubectl does);
* ``rollback.io/last-action`` records what, from, to, who, when, why, incident.

StatefulSets and DaemonSets keep their history in ControllerRevisions whose
``data`` is ``{"spec": {"template": {..., "$patch": "replace"}}}``; kubectl
sends that as a strategic merge patch.  We replace ``/spec/template`` with the
same template in a JSON Patch, which lands the same object and lets the
precondition ride along.

Everything here is pure: objects in, :class:`~controller.actions.plan.Plan` out.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Final

from controller.actions.plan import (
    AUDIT_ANNOTATION,
    STAMP,
    Plan,
    PlanStep,
    annotation_ops,
    resource_version_precondition,
)
from controller.errors import UserInputError
from controller.kube import DAEMONSET, DEPLOYMENT, JSON_PATCH, STATEFULSET, Resource
from controller.model import ActionKind, ObjectRef
from controller.sources.workloads import (
    CHANGE_CAUSE,
    REVISION,
    REVISION_HISTORY,
    WorkloadRevision,
    current_source_name,
    diff_templates,
    template_without_hash,
    templates_equal,
)
from controller.view import JSON, annotations_of, meta, name_of, namespace_of

# Annotations kubectl keeps from the Deployment rather than the ReplicaSet
# (kubectl's annotationsToSkip): they describe the Deployment object, not a
# revision of its template.
PROTECTED_ANNOTATIONS: Final = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        REVISION_HISTORY,
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)
DESIRED_REPLICAS: Final = "deployment.kubernetes.io/desired-replicas"

# Annotations that describe one revision of the template: they follow the
# target revision even when the target lacks them (kubectl's behaviour).
REVISION_SCOPED: Final = frozenset({CHANGE_CAUSE})

# Ours: always written fresh, never copied from an old ReplicaSet (the
# Deployment controller copies Deployment annotations onto its ReplicaSets).
OWN_ANNOTATIONS: Final = frozenset({AUDIT_ANNOTATION})

_RESOURCES: Final[Mapping[str, Resource]] = {
    "Deployment": DEPLOYMENT,
    "StatefulSet": STATEFULSET,
    "DaemonSet": DAEMONSET,
}

# A target that ran with this many times more (or fewer) replicas deserves a
# warning: we restore the template, never the replica count.
_REPLICA_RATIO_WARNING: Final = 2.0


def plan_workload_rollback(
    workload: JSON,
    revisions: Sequence[WorkloadRevision],
    to_revision: int | None = None,
    *,
    resume: bool = False,
) -> Plan:
    """The rollback of a Deployment, StatefulSet or DaemonSet to ``to_revision``.

    Pure.  ``revisions`` are the workload's records from
    :func:`controller.sources.workloads.workload_revisions`.  Without
    ``to_revision`` the target is the previous revision (kubectl's default);
    callers that know the last known-good revision pass it.  ``resume`` adds
    ``spec.paused: false`` to a paused Deployment's patch; without it the plan
    is marked ``paused`` and apply refuses it.

    Raises :class:`~controller.errors.UserInputError` for a kind we cannot roll
    back, a workload without history, and an unknown or pruned revision.
    """
    kind = str(workload.get("kind") or "")
    resource = _RESOURCES.get(kind)
    ref = ObjectRef(kind, namespace_of(workload), name_of(workload))
    if resource is None:
        raise UserInputError(
            f"cannot roll back a {kind or 'object without a kind'}: "
            "only Deployments, StatefulSets and DaemonSets have revisions"
        )
    if not revisions:
        raise UserInputError(f"{ref.short} has no recorded revisions to roll back to")
    current = _current(workload, revisions)
    target = _target(ref, revisions, current, to_revision)
    current_template = (workload.get("spec") or {}).get("template") or {}
    from_label = _label(current)
    to_label = _label(target)
    summary = (
        f"roll back {ref.short} from revision {current.revision} to revision {target.revision}"
    )
    paused = kind == "Deployment" and bool((workload.get("spec") or {}).get("paused"))
    common: dict[str, Any] = {
        "action": ActionKind.ROLLBACK,
        "target": ref,
        "summary": summary,
        "from_label": from_label,
        "to_label": to_label,
        "from_revision": current.revision,
        "to_revision": target.revision,
    }
    if target.revision == current.revision or templates_equal(target.template, current_template):
        return Plan(
            **common,
            noop=f"{ref.short} already runs the template of revision {target.revision}",
        )

    new_template = template_without_hash(target.template)
    changes = list(diff_templates(current_template, new_template, ref.namespace))
    ops: list[dict[str, Any]] = [
        resource_version_precondition(str(meta(workload).get("resourceVersion") or "")),
        {"op": "replace", "path": "/spec/template", "value": new_template},
    ]
    if kind == "Deployment":
        annotations, annotation_changes = deployment_annotations(
            annotations_of(workload), annotations_of(target.source), target.revision
        )
        changes.extend(annotation_changes)
        ops.append({"op": "add", "path": "/metadata/annotations", "value": annotations})
        if paused and resume:
            ops.append({"op": "replace", "path": "/spec/paused", "value": False})
            changes.append("resume the paused Deployment (spec.paused: true -> false)")
    else:
        ops.extend(annotation_ops(workload, {AUDIT_ANNOTATION: STAMP}))
    step = PlanStep(
        ref=ref,
        resource=resource,
        body=ops,
        resource_version=str(meta(workload).get("resourceVersion") or ""),
        patch_type=JSON_PATCH,
        summary=f"patch {ref.short}: template of revision {target.revision}",
    )
    return Plan(
        **common,
        steps=(step,),
        changes=tuple(changes) or ("pod template restored (no field-level difference named)",),
        warnings=tuple(_warnings(workload, target, paused=paused and not resume)),
        paused=paused and not resume,
    )


def deployment_annotations(
    current: Mapping[str, str], target: Mapping[str, str], to_revision: int
) -> tuple[dict[str, str], list[str]]:
    """The Deployment's annotations after the rollback, and the readable changes.

    Pure.  kubectl's rule first: protected keys from the Deployment, the rest
    from the target ReplicaSet.  Then ours: keys the Deployment has and the
    target lacks were added after the target and are kept (except revision-
    scoped ones); our audit annotation is set to the :data:`STAMP` placeholder.
    """
    result: dict[str, str] = {k: v for k, v in current.items() if k in PROTECTED_ANNOTATIONS}
    for key, value in target.items():
        if key not in PROTECTED_ANNOTATIONS and key not in OWN_ANNOTATIONS:
            result[key] = value
    kept: list[str] = []
    for key, value in current.items():
        if key in result or key in REVISION_SCOPED or key in OWN_ANNOTATIONS:
            continue
        result[key] = value
        kept.append(key)
    result[AUDIT_ANNOTATION] = STAMP
    changes: list[str] = []
    for key in sorted(set(current) | set(result)):
        if key in PROTECTED_ANNOTATIONS or key in OWN_ANNOTATIONS:
            continue
        before, after = current.get(key), result.get(key)
        if before == after:
            continue
        if after is None:
            changes.append(f"annotation {key}: removed (absent in revision {to_revision})")
        elif before is None:
            changes.append(f"annotation {key}: restored to {_short(after)}")
        else:
            changes.append(f"annotation {key}: {_short(before)} -> {_short(after)}")
    changes.extend(
        f"annotation {key}: kept (added after revision {to_revision}; kubectl would drop it)"
        for key in sorted(kept)
    )
    return result, changes


def _current(workload: JSON, revisions: Sequence[WorkloadRevision]) -> WorkloadRevision:
    name = current_source_name(workload, [r.source for r in revisions])
    for record in revisions:
        if name_of(record.source) == name:
            return record
    return max(revisions, key=lambda r: r.revision)


def _target(
    ref: ObjectRef,
    revisions: Sequence[WorkloadRevision],
    current: WorkloadRevision,
    to_revision: int | None,
) -> WorkloadRevision:
    if to_revision is None:
        older = [r for r in revisions if r.revision < current.revision]
        if not older:
            raise UserInputError(f"{ref.short} has no earlier revision to roll back to")
        return max(older, key=lambda r: r.revision)
    if to_revision <= 0:
        raise UserInputError(f"revision must be a positive number, not {to_revision}")
    for record in revisions:
        if record.revision == to_revision:
            return record
    for record in revisions:
        history = annotations_of(record.source).get(REVISION_HISTORY, "")
        if str(to_revision) in [h.strip() for h in history.split(",")]:
            raise UserInputError(
                f"{ref.short} revision {to_revision} was rolled back to before and is now "
                f"revision {record.revision}; use --to-revision {record.revision}"
            )
    known = ", ".join(str(r.revision) for r in sorted(revisions, key=lambda r: r.revision))
    highest = max(r.revision for r in revisions)
    why = (
        "it was pruned by revisionHistoryLimit"
        if to_revision < highest
        else "it does not exist yet"
    )
    raise UserInputError(
        f"{ref.short} has no revision {to_revision} ({why}); known revisions: {known}"
    )


def _label(record: WorkloadRevision) -> str:
    images = ", ".join(i for i in record.info.images if i)
    return f"revision {record.revision}" + (f" ({images})" if images else "")


def _warnings(workload: JSON, target: WorkloadRevision, *, paused: bool) -> list[str]:
    out: list[str] = []
    kind = workload.get("kind")
    if paused:
        out.append(
            f"{kind} is paused: the rollback is refused unless --resume is given "
            "(a paused Deployment does not roll out)"
        )
    if kind == "Deployment":
        desired = _int(annotations_of(target.source).get(DESIRED_REPLICAS))
        replicas = _int((workload.get("spec") or {}).get("replicas", 1))
        if (
            desired
            and replicas
            and (
                desired >= replicas * _REPLICA_RATIO_WARNING
                or replicas >= desired * _REPLICA_RATIO_WARNING
            )
        ):
            out.append(
                f"revision {target.revision} ran with {desired} replicas, the Deployment now "
                f"asks for {replicas}; replicas are left as they are"
            )
    return out


def _int(value: object) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


def _short(value: str, limit: int = 60) -> str:
    text = " ".join(value.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def target_template(
    workload: JSON, revisions: Sequence[WorkloadRevision], to_revision: int
) -> JSON:
    """The pod template a rollback to ``to_revision`` writes (for previews and tests).  Pure."""
    current = _current(workload, revisions)
    ref = ObjectRef(str(workload.get("kind")), namespace_of(workload), name_of(workload))
    return copy.deepcopy(
        template_without_hash(_target(ref, revisions, current, to_revision).template)
    )
