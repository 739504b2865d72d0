"""Flag disable plans: OpenFeature FeatureFlag resources and flagd ConfigMaps.

Two ways to turn a flag off, and they are not the same:

* ``default-variant`` (the default): point ``defaultVariant`` at the flag's
  off variant.  Every evaluation without a matching targeting rule now gets
  "off", which is what an engineer means by "disable the feature".
* ``state``: set ``state: DISABLED``.  flagd then answers with the
  application's *code default*, which is not necessarily off; we warn.

The off variant is a variant named ``off``, ``false`` or ``disabled`` (any
case), else the one variant whose value is boolean ``false``; anything more
ambiguous needs ``--variant``.  The value we overwrite is recorded in the
``rollback.io/undo`` annotation of the same object, written in the same patch,
so ``--undo`` restores exactly it (and refuses if someone changed the flag
since).

A flagd ConfigMap holds the same document (``{"flags": {...}}``) as JSON in
one of its data keys; we edit that document and write the key back.

Everything here is pure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

from controller.actions.plan import (
    AUDIT_ANNOTATION,
    STAMP,
    UNDO_ANNOTATION,
    Plan,
    PlanStep,
    annotation_ops,
    escape_pointer,
    resource_version_precondition,
)
from controller.errors import RefusedError, UserInputError
from controller.kube import CONFIGMAP, FEATUREFLAG, JSON_PATCH
from controller.model import ActionKind, ObjectRef
from controller.view import JSON, annotations_of, meta, name_of, namespace_of

_OFF_NAMES: Final = ("off", "false", "disabled")
DISABLED: Final = "DISABLED"


class FlagMode(StrEnum):
    DEFAULT_VARIANT = "default-variant"
    STATE = "state"


def plan_flag_disable(
    obj: JSON, flag: str, *, mode: FlagMode = FlagMode.DEFAULT_VARIANT, variant: str | None = None
) -> Plan:
    """Disable ``flag`` in a FeatureFlag resource or a flagd ConfigMap.  Pure.

    Raises :class:`~controller.errors.UserInputError` when the object holds no
    such flag, when ``variant`` is not one of its variants, or when no off
    variant can be told apart and none was named.
    """
    source = _FlagSource.of(obj, flag)
    spec = source.flag_spec
    field = "state" if mode is FlagMode.STATE else "defaultVariant"
    warnings: list[str] = []
    if mode is FlagMode.STATE:
        new_value = DISABLED
        warnings.append(
            f"with state DISABLED flagd serves the application's code default for {flag!r}, "
            "which is not necessarily off; the default-variant mode is the safer disable"
        )
    else:
        new_value = off_variant(spec.get("variants"), flag, variant)
        if spec.get("targeting"):
            warnings.append(
                f"flag {flag!r} has targeting rules: evaluations they match keep their variant; "
                "use --mode state to switch the whole flag off"
            )
    old_value = spec.get(field)
    if mode is FlagMode.STATE and old_value is None:
        old_value = "ENABLED"  # flagd's default state
    summary = f"disable flag {flag} in {source.ref.short} ({field} {old_value} -> {new_value})"
    common: dict[str, Any] = {
        "action": ActionKind.DISABLE_FLAG,
        "target": source.ref,
        "summary": summary,
        "from_label": f"{flag} {field}={old_value}",
        "to_label": f"{flag} {field}={new_value}",
    }
    if old_value == new_value:
        return Plan(
            **common, noop=f"flag {flag!r} in {source.ref.short} already has {field} {new_value}"
        )
    record = dict(undo_records(obj))
    record[flag] = {"field": field, "from": old_value, "to": new_value}
    step = source.step(field, new_value, record, f"set {field} of flag {flag} to {new_value}")
    changes = [f"flag {flag}: {field} {old_value} -> {new_value}"]
    if mode is FlagMode.DEFAULT_VARIANT:
        value = (spec.get("variants") or {}).get(new_value)
        changes[0] += f" (variant value {json.dumps(value)})"
    return Plan(
        **common,
        steps=(step,),
        changes=(*changes, f"annotation {UNDO_ANNOTATION}: records {field}={old_value} for --undo"),
        warnings=tuple(warnings),
        undo={flag: {"field": field, "from": old_value}},
    )


def plan_flag_undo(obj: JSON, flag: str) -> Plan:
    """Restore what :func:`plan_flag_disable` recorded for ``flag``.  Pure.

    Refuses (:class:`~controller.errors.RefusedError`) when the flag no longer
    has the value we set: someone changed it since, and blindly restoring would
    undo their change too.
    """
    source = _FlagSource.of(obj, flag)
    records = dict(undo_records(obj))
    record = records.get(flag)
    if not isinstance(record, dict) or "field" not in record:
        raise UserInputError(
            f"no recorded disable of flag {flag!r} on {source.ref.short}: nothing to undo"
        )
    field, before, ours = str(record["field"]), record.get("from"), record.get("to")
    current = source.flag_spec.get(field)
    if field == "state" and current is None:
        current = "ENABLED"
    if current != ours:
        raise RefusedError(
            f"flag {flag!r} {field} is {current}, not the {ours} we set: someone changed it "
            "since; restore it by hand or disable again"
        )
    del records[flag]
    common: dict[str, Any] = {
        "action": ActionKind.DISABLE_FLAG,
        "target": source.ref,
        "summary": (
            f"undo the disable of flag {flag} in {source.ref.short} ({field} {ours} -> {before})"
        ),
        "from_label": f"{flag} {field}={ours}",
        "to_label": f"{flag} {field}={before}",
    }
    step = source.step(field, before, records, f"restore {field} of flag {flag} to {before}")
    return Plan(
        **common,
        steps=(step,),
        changes=(f"flag {flag}: {field} {ours} -> {before} (recorded before the disable)",),
    )


def off_variant(variants: Any, flag: str, requested: str | None = None) -> str:
    """The name of the variant that means "off".  Pure; see the module docstring."""
    if not isinstance(variants, Mapping) or not variants:
        raise UserInputError(f"flag {flag!r} has no variants to switch to")
    names = [str(k) for k in variants]
    if requested is not None:
        if requested not in variants:
            raise UserInputError(
                f"flag {flag!r} has no variant {requested!r}; variants: {', '.join(names)}"
            )
        return requested
    by_name = [n for n in names if n.lower() in _OFF_NAMES]
    if len(by_name) == 1:
        return by_name[0]
    false_valued = [n for n in names if variants[n] is False]
    if len(false_valued) == 1:
        return false_valued[0]
    raise UserInputError(
        f"flag {flag!r} has no unambiguous off variant (variants: {', '.join(names)}); "
        "name one with --variant"
    )


def undo_records(obj: JSON) -> Mapping[str, Any]:
    """The prior values recorded on ``obj`` by earlier disables, by flag key."""
    raw = annotations_of(obj).get(UNDO_ANNOTATION)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class _FlagSource:
    """Where a flag lives in a FeatureFlag resource or a flagd ConfigMap, and how to write it."""

    def __init__(
        self, obj: JSON, flag: str, flag_spec: JSON, data_key: str, document: JSON
    ) -> None:
        self.obj = obj
        self.flag = flag
        self.flag_spec = flag_spec
        self.data_key = data_key
        self.document = document
        self.ref = ObjectRef(str(obj.get("kind") or ""), namespace_of(obj), name_of(obj))

    @classmethod
    def of(cls, obj: JSON, flag: str) -> _FlagSource:
        kind = obj.get("kind")
        ref = ObjectRef(str(kind or ""), namespace_of(obj), name_of(obj))
        if kind == "FeatureFlag":
            flags = ((obj.get("spec") or {}).get("flagSpec") or {}).get("flags") or {}
            return cls(obj, flag, _flag_in(flags, flag, ref), "", {})
        if kind == "ConfigMap":
            for key, text in sorted((obj.get("data") or {}).items()):
                document = _flagd_document(text)
                if document is not None and flag in document["flags"]:
                    return cls(obj, flag, _flag_in(document["flags"], flag, ref), key, document)
            raise UserInputError(f"{ref.short} holds no flagd document with a flag {flag!r}")
        raise UserInputError(f"{ref.short} is not a FeatureFlag resource or a flagd ConfigMap")

    def step(self, field: str, value: Any, records: Mapping[str, Any], summary: str) -> PlanStep:
        rv = str(meta(self.obj).get("resourceVersion") or "")
        ops: list[dict[str, Any]] = [resource_version_precondition(rv)]
        if self.data_key:
            document = json.loads(json.dumps(self.document))  # deep copy, JSON-only values
            document["flags"][self.flag][field] = value
            text = json.dumps(document, indent=2) + "\n"
            ops.append(
                {"op": "replace", "path": "/data/" + escape_pointer(self.data_key), "value": text}
            )
            resource = CONFIGMAP
        else:
            path = "/spec/flagSpec/flags/" + escape_pointer(self.flag) + "/" + field
            ops.append({"op": "add", "path": path, "value": value})
            resource = FEATUREFLAG
        undo = json.dumps(dict(records), sort_keys=True, separators=(",", ":"))
        ops.extend(annotation_ops(self.obj, {AUDIT_ANNOTATION: STAMP, UNDO_ANNOTATION: undo}))
        return PlanStep(
            ref=self.ref,
            resource=resource,
            body=ops,
            resource_version=rv,
            patch_type=JSON_PATCH,
            summary=f"patch {self.ref.short}: {summary}",
        )


def _flag_in(flags: Any, flag: str, ref: ObjectRef) -> JSON:
    spec = flags.get(flag) if isinstance(flags, Mapping) else None
    if not isinstance(spec, dict):
        known = ", ".join(sorted(str(k) for k in flags)) if isinstance(flags, Mapping) else ""
        raise UserInputError(
            f"{ref.short} has no flag {flag!r}" + (f"; flags: {known}" if known else "")
        )
    return spec


def _flagd_document(text: Any) -> JSON | None:
    if not isinstance(text, str):
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if isinstance(document, dict) and isinstance(document.get("flags"), dict):
        return document
    return None
