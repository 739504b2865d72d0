"""Plans: the exact writes an action will make, what they change, and a stable hash.

A :class:`Plan` is what ``rollback execute`` shows and asks the user to
confirm, and what ``rollback assess`` previews.  It is a value: built by pure
functions from objects read earlier, never touching the cluster.  Its hash
covers the target, the from/to description, every write body and every
precondition (the ``resourceVersion`` each write carries), so "the plan I
reviewed" and "the plan that runs" can be compared by one short string.

Two things in a write cannot be known when the plan is made and must not move
the hash: when it is applied and who applies it.  Bodies therefore carry two
placeholders, :data:`STAMP` (the ``rollback.io/last-action`` audit value) and
:data:`NOW` (a timestamp such as ``kubectl.kubernetes.io/restartedAt``);
:func:`render_body` fills them in at apply time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from controller.kube import JSON_PATCH, MERGE_PATCH, Resource
from controller.model import ActionKind, ObjectRef

AUDIT_ANNOTATION: Final = "rollback.io/last-action"
# Prior values recorded by a flag disable, so ``--undo`` can restore them.
UNDO_ANNOTATION: Final = "rollback.io/undo"

STAMP: Final = "$(rollback.io/last-action)"
NOW: Final = "$(now)"

HASH_PREFIX: Final = "sha256:"
_HASH_CHARS: Final = 16


@dataclass(frozen=True)
class Stamp:
    """Who applies a plan, when and why: the volatile part of the audit annotation."""

    who: str
    when: datetime
    why: str = ""
    incident: str = ""


@dataclass(frozen=True)
class PlanStep:
    """One write: a PATCH of one object, guarded by the resourceVersion it was planned from.

    ``body`` is the exact patch (JSON Patch operations or a merge patch) with
    placeholders where apply-time values go.  The precondition travels inside
    the body (a ``test`` operation, or ``metadata.resourceVersion``), so the
    API server refuses the write atomically if the object moved.
    """

    ref: ObjectRef
    resource: Resource
    body: Any
    resource_version: str
    patch_type: str = JSON_PATCH
    summary: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.ref.to_json(),
            "path": self.resource.path(self.ref.namespace, self.ref.name),
            "patchType": self.patch_type,
            "resourceVersion": self.resource_version,
            "body": self.body,
        }


@dataclass(frozen=True)
class Plan:
    """Everything ``execute`` would do for one action, and what it would change.

    ``from_label``/``to_label`` say where the target is and where it goes
    ("revision 4 (web:2.1)").  ``changes`` is the readable diff (images, env,
    referenced config, annotations, flag values, data keys).  ``noop`` is set
    when the target is already where the plan would take it: nothing to write.
    ``steps[0]`` is the primary write; later steps (consumer restarts) follow it.
    ``undo`` records prior values the action overwrites (flag variants).
    """

    action: ActionKind
    target: ObjectRef
    summary: str
    from_label: str
    to_label: str
    steps: tuple[PlanStep, ...] = ()
    changes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    noop: str = ""
    from_revision: int | None = None
    to_revision: int | None = None
    paused: bool = False
    undo: Mapping[str, Any] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        """``sha256:`` and 16 hex digits over target, from/to, bodies and preconditions."""
        return plan_hash(self)

    @property
    def preconditions(self) -> tuple[str, ...]:
        return tuple(
            f"{step.ref.short} still at resourceVersion {step.resource_version}"
            for step in self.steps
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "target": self.target.to_json(),
            "summary": self.summary,
            "from": self.from_label,
            "to": self.to_label,
            "fromRevision": self.from_revision,
            "toRevision": self.to_revision,
            "changes": list(self.changes),
            "warnings": list(self.warnings),
            "noop": self.noop or None,
            "preconditions": list(self.preconditions),
            "steps": [s.to_json() for s in self.steps],
            "planHash": self.hash,
        }


def plan_hash(plan: Plan) -> str:
    """The stable identity of a plan.

    Pure.  Canonical JSON (sorted keys, no whitespace) of the parts that decide
    what is written; warnings, wording and times are left out, so the same
    cluster state always gives the same hash and any change to a write does not.
    """
    material = {
        "action": plan.action.value,
        "target": plan.target.to_json(),
        "from": plan.from_label,
        "to": plan.to_label,
        "noop": bool(plan.noop),
        "steps": [s.to_json() for s in plan.steps],
    }
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return HASH_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()[:_HASH_CHARS]


def same_hash(given: str, plan: Plan) -> bool:
    """True when ``given`` names this plan; the ``sha256:`` prefix is optional."""
    value = given.strip().lower()
    if not value.startswith(HASH_PREFIX):
        value = HASH_PREFIX + value
    return value == plan.hash


def stamp_value(plan: Plan, stamp: Stamp) -> str:
    """The ``rollback.io/last-action`` JSON: what, from, to, who, when, why, incident."""
    record = {
        "what": plan.summary,
        "from": plan.from_label,
        "to": plan.to_label,
        "who": stamp.who,
        "when": format_time(stamp.when),
        "why": stamp.why,
        "incident": stamp.incident,
        "planHash": plan.hash,
    }
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def render_body(body: Any, plan: Plan, stamp: Stamp) -> Any:
    """``body`` with the placeholders replaced by the audit value and the apply time.  Pure."""
    replacements = {STAMP: stamp_value(plan, stamp), NOW: format_time(stamp.when)}
    return _replace(body, replacements)


def _replace(value: Any, replacements: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return replacements.get(value, value)
    if isinstance(value, dict):
        return {k: _replace(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, replacements) for v in value]
    return value


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, to the second, as Kubernetes writes timestamps."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------
# Building patch bodies
# ---------------------------------------------------------------------------


def escape_pointer(key: str) -> str:
    """One JSON Pointer segment (RFC 6901): ``~`` -> ``~0``, ``/`` -> ``~1``."""
    return key.replace("~", "~0").replace("/", "~1")


def resource_version_precondition(resource_version: str) -> dict[str, Any]:
    """The JSON Patch precondition: the server rejects the whole patch if the object moved.

    A ``replace`` of ``/metadata/resourceVersion`` with the version we read,
    not a ``test``: the API server treats a patched resourceVersion as an
    optimistic-concurrency precondition and answers 409 Conflict ("the object
    has been modified"), while a failed ``test`` comes back as an opaque 422
    that cannot be told apart from a malformed patch (measured on v1.37).
    """
    return {"op": "replace", "path": "/metadata/resourceVersion", "value": resource_version}


def annotation_ops(obj: Mapping[str, Any], values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """JSON Patch operations that set each annotation in ``values`` on ``obj``.

    ``add`` replaces an existing member, but needs the annotations map itself
    to exist; an object without annotations gets the whole map in one op.
    """
    metadata = obj.get("metadata") or {}
    existing = metadata.get("annotations")
    if not isinstance(existing, dict):
        return [{"op": "add", "path": "/metadata/annotations", "value": dict(values)}]
    return [
        {"op": "add", "path": "/metadata/annotations/" + escape_pointer(k), "value": v}
        for k, v in values.items()
    ]


def merge_patch(resource_version: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch carrying ``metadata.resourceVersion`` as its precondition."""
    out = dict(body)
    metadata = dict(out.get("metadata") or {})
    metadata["resourceVersion"] = resource_version
    out["metadata"] = metadata
    return out


__all__ = [
    "AUDIT_ANNOTATION",
    "JSON_PATCH",
    "MERGE_PATCH",
    "NOW",
    "STAMP",
    "UNDO_ANNOTATION",
    "Plan",
    "PlanStep",
    "Stamp",
    "annotation_ops",
    "escape_pointer",
    "format_time",
    "merge_patch",
    "plan_hash",
    "render_body",
    "resource_version_precondition",
    "same_hash",
    "stamp_value",
]
