"""Suspending and resuming a GitOps owner, recording the previous setting on the owner itself.

A manual rollback of a target that Argo CD (automated sync, self-heal) or Flux
reconciles is undone within seconds.  ``--suspend-gitops`` therefore pauses
the owner first:

* Argo CD ``Application``: remove ``spec.syncPolicy.automated`` (the previous
  block is recorded; with it go automated sync and self-heal);
* Flux ``Kustomization`` / ``HelmRelease``: ``spec.suspend: true``.

The previous setting is written in the same patch to the owner's annotation
``rollback.io/gitops-suspended`` (JSON: the field, its previous value, the
target), beside ``rollback.io/last-action`` (who, when, why),
so ``rollback resume-gitops`` restores exactly it and anyone looking at the
owner sees why it stopped syncing.  Both writes carry the owner's
resourceVersion.  Pure: objects in, plans out.
"""

from __future__ import annotations

import json
from typing import Any, Final

from controller.actions.plan import (
    AUDIT_ANNOTATION,
    STAMP,
    Plan,
    PlanStep,
    annotation_ops,
    escape_pointer,
    resource_version_precondition,
)
from controller.errors import UserInputError
from controller.kube import ARGO_APPLICATION, FLUX_HELMRELEASE, FLUX_KUSTOMIZATION, Resource
from controller.model import ActionKind, ObjectRef
from controller.view import JSON, annotations_of, meta, name_of, namespace_of

SUSPENDED_ANNOTATION: Final = "rollback.io/gitops-suspended"

_RESOURCES: Final[dict[str, Resource]] = {
    "Application": ARGO_APPLICATION,
    "Kustomization": FLUX_KUSTOMIZATION,
    "HelmRelease": FLUX_HELMRELEASE,
}


def owner_resource(kind: str) -> Resource:
    resource = _RESOURCES.get(kind)
    if resource is None:
        raise UserInputError(
            f"{kind} is not a GitOps owner we can suspend (Application, Kustomization, HelmRelease)"
        )
    return resource


def plan_suspend(owner: JSON, target: ObjectRef) -> PlanStep:
    """The guarded patch that suspends ``owner`` and records how it was.  Pure."""
    kind = str(owner.get("kind"))
    ref = ObjectRef(kind, namespace_of(owner), name_of(owner))
    rv = str(meta(owner).get("resourceVersion") or "")
    spec = owner.get("spec") or {}
    ops: list[dict[str, Any]] = [resource_version_precondition(rv)]
    if kind == "Application":
        previous = (spec.get("syncPolicy") or {}).get("automated")
        record: dict[str, Any] = {"field": "spec.syncPolicy.automated", "previous": previous}
        if previous is not None:
            ops.append({"op": "remove", "path": "/spec/syncPolicy/automated"})
    else:
        previous = spec.get("suspend")
        record = {"field": "spec.suspend", "previous": previous}
        ops.append({"op": "add", "path": "/spec/suspend", "value": True})
    record["target"] = target.to_json()
    # Who, when and why go in the audit annotation beside it (filled at apply time).
    ops.extend(
        annotation_ops(
            owner,
            {SUSPENDED_ANNOTATION: json.dumps(record, sort_keys=True), AUDIT_ANNOTATION: STAMP},
        )
    )
    return PlanStep(
        ref=ref,
        resource=owner_resource(kind),
        body=ops,
        resource_version=rv,
        summary=f"suspend {ref.short} (record {record['field']}={json.dumps(previous)})",
    )


def plan_resume(owner: JSON) -> Plan:
    """Restore what :func:`plan_suspend` recorded on ``owner``.  Pure.

    Raises :class:`~controller.errors.UserInputError` when the owner carries no
    record (it was not suspended by us, or was resumed already).
    """
    kind = str(owner.get("kind"))
    ref = ObjectRef(kind, namespace_of(owner), name_of(owner))
    raw = annotations_of(owner).get(SUSPENDED_ANNOTATION)
    if not raw:
        raise UserInputError(f"{ref.short} was not suspended by rollback: nothing to resume")
    try:
        record = json.loads(raw)
    except ValueError as err:
        raise UserInputError(f"{ref.short}: annotation {SUSPENDED_ANNOTATION} is not JSON") from err
    previous = record.get("previous")
    rv = str(meta(owner).get("resourceVersion") or "")
    ops: list[dict[str, Any]] = [resource_version_precondition(rv)]
    if kind == "Application":
        if previous is not None:
            has_policy = isinstance((owner.get("spec") or {}).get("syncPolicy"), dict)
            ops.append(
                {"op": "add", "path": "/spec/syncPolicy/automated", "value": previous}
                if has_policy
                else {"op": "add", "path": "/spec/syncPolicy", "value": {"automated": previous}}
            )
        restored = f"spec.syncPolicy.automated={json.dumps(previous)}"
    elif previous is None:
        ops.append({"op": "remove", "path": "/spec/suspend"})
        restored = "spec.suspend unset"
    else:
        ops.append({"op": "add", "path": "/spec/suspend", "value": previous})
        restored = f"spec.suspend={json.dumps(previous)}"
    ops.append(
        {"op": "remove", "path": "/metadata/annotations/" + escape_pointer(SUSPENDED_ANNOTATION)}
    )
    step = PlanStep(
        ref=ref,
        resource=owner_resource(kind),
        body=ops,
        resource_version=rv,
        summary=f"resume {ref.short} ({restored})",
    )
    return Plan(
        action=ActionKind.NONE,
        target=ref,
        summary=f"resume {ref.short}: restore {restored}",
        from_label="suspended by rollback",
        to_label=restored,
        steps=(step,),
        changes=(f"{ref.short}: {restored}", f"annotation {SUSPENDED_ANNOTATION}: removed"),
    )
