"""Feature-flag changes: OpenFeature ``FeatureFlag`` resources and flagd ConfigMaps.

A FeatureFlag (``core.openfeature.dev``) holds flags under
``spec.flagSpec.flags``; flagd can read the same document
(``{"flags": {...}}``) from a ConfigMap.  Kubernetes keeps no history of
either, so a flag flip is dated by ``metadata.managedFields``: each field
manager's entry is stamped when it last changed its fields, and a ``kubectl
patch``/``edit`` takes ownership of exactly the fields it changed.  So the
flag whose fields carry the newest stamp is the one that flipped.  When one
manager owns every flag (a GitOps apply), the flipped flag cannot be told
from the others and the change says so.

The previous value is known only when something recorded it:
``kubectl.kubernetes.io/last-applied-configuration`` (an edit or patch after
an apply leaves the applied value there) or our own ``rollback.io/undo``
record.  Otherwise "previous value unknown" is said plainly.

Consumers: pods (and pod templates) annotated
``openfeature.dev/featureflagsource: NAME[,NS/NAME...]`` point at
FeatureFlagSources whose ``spec.sources[].source`` is ``NS/NAME`` of a
FeatureFlag.  Pure functions over the view.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from controller.durations import format_instant, parse_k8s_time
from controller.model import Change, ChangeKind, ObjectRef
from controller.view import JSON, ClusterView, annotations_of, meta, name_of, namespace_of

FLAG_SOURCE_ANNOTATION = "openfeature.dev/featureflagsource"
ENABLED_ANNOTATION = "openfeature.dev/enabled"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
UNDO_ANNOTATION = "rollback.io/undo"

_CREATION_SLACK = timedelta(seconds=2)
_FLAGS_PREFIX = ("spec", "flagSpec", "flags")


def flagd_document(configmap: JSON) -> tuple[str, dict[str, Any]] | None:
    """``(data key, flags)`` when a ConfigMap holds a flagd document, else None."""
    for key, value in sorted((configmap.get("data") or {}).items()):
        text = str(value).lstrip()
        if not text.startswith("{") or '"flags"' not in text:
            continue
        try:
            doc = json.loads(text)
        except ValueError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("flags"), dict):
            return str(key), doc["flags"]
    return None


def feature_flags(obj: JSON) -> dict[str, Any]:
    flags = ((obj.get("spec") or {}).get("flagSpec") or {}).get("flags")
    return flags if isinstance(flags, dict) else {}


def describe_flag(spec: Any) -> str:
    """``state ENABLED, defaultVariant on`` (targeting noted, never expanded)."""
    if not isinstance(spec, dict):
        return "absent"
    parts = []
    if "state" in spec:
        parts.append(f"state {spec['state']}")
    if "defaultVariant" in spec:
        parts.append(f"defaultVariant {spec['defaultVariant']}")
    if spec.get("targeting"):
        parts.append("with targeting rules")
    return ", ".join(parts) or "no state"


# ---------------------------------------------------------------------------
# Consumers
# ---------------------------------------------------------------------------


def flag_sources_of(template_or_pod: JSON, namespace: str) -> tuple[ObjectRef, ...]:
    """FeatureFlagSources named by a pod or pod template's annotation."""
    raw = annotations_of(template_or_pod).get(FLAG_SOURCE_ANNOTATION, "")
    refs = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        ns, _, name = item.rpartition("/")
        refs.append(ObjectRef("FeatureFlagSource", ns or namespace, name))
    return tuple(refs)


def flags_of_source(view: ClusterView, source: ObjectRef) -> tuple[ObjectRef, ...]:
    """FeatureFlags a FeatureFlagSource reads (``provider: kubernetes`` sources)."""
    obj = view.get("FeatureFlagSource", source.namespace, source.name)
    if obj is None:
        return ()
    refs = []
    for item in (obj.get("spec") or {}).get("sources") or []:
        if not isinstance(item, dict):
            continue
        provider = str(item.get("provider") or "kubernetes")
        if provider not in ("kubernetes", "flagd-proxy"):
            continue
        ns, _, name = str(item.get("source") or "").rpartition("/")
        if name:
            refs.append(ObjectRef("FeatureFlag", ns or source.namespace, name))
    return tuple(refs)


def flag_consumers(view: ClusterView, flag: ObjectRef) -> tuple[ObjectRef, ...]:
    """Workloads whose pod template routes flag evaluation to the FeatureFlag ``flag``."""
    out = []
    for kind in ("Deployment", "StatefulSet", "DaemonSet"):
        for workload in view.of_kind(kind):
            template = (workload.get("spec") or {}).get("template") or {}
            for source in flag_sources_of(template, namespace_of(workload)):
                if flag in flags_of_source(view, source):
                    out.append(ObjectRef(kind, namespace_of(workload), name_of(workload)))
                    break
    return tuple(sorted(out))


def flag_sources_referenced(view: ClusterView) -> set[ObjectRef]:
    """Every FeatureFlagSource some pod or workload template in the view names."""
    refs: set[ObjectRef] = set()
    for pod in view.of_kind("Pod"):
        refs.update(flag_sources_of(pod, namespace_of(pod)))
    for kind in ("Deployment", "StatefulSet", "DaemonSet"):
        for workload in view.of_kind(kind):
            template = (workload.get("spec") or {}).get("template") or {}
            refs.update(flag_sources_of(template, namespace_of(workload)))
    return refs


def configmap_flag_consumers(view: ClusterView, configmap: ObjectRef) -> tuple[ObjectRef, ...]:
    """Workloads that mount or read the flagd ConfigMap."""
    # Imported here: workloads imports gitops/helm, and config imports us.
    from controller.sources.workloads import consumers_of, workload_ref

    return tuple(workload_ref(w) for w in consumers_of(view, configmap))


# ---------------------------------------------------------------------------
# Changes
# ---------------------------------------------------------------------------


def collect_flag_changes(view: ClusterView, since: datetime, until: datetime) -> list[Change]:
    """Flag flips between ``since`` and ``until`` in FeatureFlags and flagd ConfigMaps.

    Pure: reads the view only.  One change per identified flag; when the flag
    cannot be identified, one change for the resource with ``flag`` None.
    """
    changes: list[Change] = []
    for obj in view.of_kind("FeatureFlag"):
        ref = ObjectRef("FeatureFlag", namespace_of(obj), name_of(obj))
        changes.extend(
            _changes(
                obj,
                ref,
                flags=feature_flags(obj),
                prefix=_FLAGS_PREFIX,
                consumers=flag_consumers(view, ref),
                since=since,
                until=until,
            )
        )
    for cm in view.of_kind("ConfigMap"):
        found = flagd_document(cm)
        if found is None:
            continue
        key, flags = found
        ref = ObjectRef("ConfigMap", namespace_of(cm), name_of(cm))
        changes.extend(
            _changes(
                cm,
                ref,
                flags=flags,
                prefix=("data", key),
                consumers=configmap_flag_consumers(view, ref),
                since=since,
                until=until,
            )
        )
    return changes


def _changes(
    obj: JSON,
    ref: ObjectRef,
    *,
    flags: dict[str, Any],
    prefix: tuple[str, ...],
    consumers: tuple[ObjectRef, ...],
    since: datetime,
    until: datetime,
) -> Iterator[Change]:
    created = parse_k8s_time(meta(obj).get("creationTimestamp"))
    per_flag, writers = _flag_write_times(obj, prefix, flags)
    applied = _last_applied_flags(obj, ref.kind, prefix)
    undo = _undo_records(obj)
    # Flags whose spec differs from the last kubectl apply were edited since:
    # the strongest evidence of which flag flipped, and of its old value.
    edited = {k for k in flags if applied is not None and k in applied and applied[k] != flags[k]}
    candidates: dict[datetime, list[str]] = {}
    for key, moment in per_flag.items():
        if created is not None and moment - created <= _CREATION_SLACK:
            continue
        if since <= moment <= until:
            candidates.setdefault(moment, []).append(key)
    for moment, keys in sorted(candidates.items()):
        narrowed = [k for k in keys if k in edited] or keys
        writer = writers.get(moment, "unknown")
        consumers_note = (
            f"read by {', '.join(c.short for c in consumers)}"
            if consumers
            else "no workload in scope is known to read it"
        )
        if len(narrowed) == 1:
            flag = narrowed[0]
            before = _before(flag, applied, undo, edited)
            yield Change(
                kind=ChangeKind.FLAG,
                target=ref,
                at=moment,
                summary=f"flag {flag} in {ref.kind} {ref.name} changed by {writer}",
                before=before,
                after=describe_flag(flags.get(flag)),
                cause=writer,
                flag=flag,
                affects=consumers,
                evidence=(
                    f"managedFields: {writer} last wrote flag {flag} at {format_instant(moment)}",
                    consumers_note,
                ),
            )
        else:
            yield Change(
                kind=ChangeKind.FLAG,
                target=ref,
                at=moment,
                summary=(
                    f"{ref.kind} {ref.name} updated by {writer}; "
                    f"one of {len(narrowed)} flags changed"
                ),
                before="unknown (Kubernetes keeps no history of it)",
                after=", ".join(f"{k}: {describe_flag(flags.get(k))}" for k in sorted(narrowed)),
                cause=writer,
                affects=consumers,
                evidence=(
                    f"managedFields: {writer} wrote flags {', '.join(sorted(narrowed))} at "
                    f"{format_instant(moment)}; which one changed cannot be told",
                    consumers_note,
                ),
            )


def _flag_write_times(
    obj: JSON, prefix: tuple[str, ...], flags: dict[str, Any]
) -> tuple[dict[str, datetime], dict[datetime, str]]:
    """Per flag, the newest managedFields time of a manager owning any of its fields."""
    per_flag: dict[str, datetime] = {}
    writers: dict[datetime, str] = {}
    for entry in meta(obj).get("managedFields") or []:
        if not isinstance(entry, dict) or entry.get("subresource"):
            continue
        moment = parse_k8s_time(entry.get("time"))
        if moment is None:
            continue
        node: Any = entry.get("fieldsV1") or {}
        for part in prefix:
            node = node.get(f"f:{part}") if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        owned: list[str]
        if prefix[0] == "data":
            # A flagd document is one string: its writer owns every flag in it.
            owned = list(flags)
        else:
            owned = [k[2:] for k in node if k.startswith("f:") and k[2:] in flags]
        for key in owned:
            if key not in per_flag or moment > per_flag[key]:
                per_flag[key] = moment
        if owned:
            writers[moment] = str(entry.get("manager") or "unknown")
    return per_flag, writers


def _last_applied_flags(obj: JSON, kind: str, prefix: tuple[str, ...]) -> dict[str, Any] | None:
    raw = annotations_of(obj).get(LAST_APPLIED)
    if not raw:
        return None
    try:
        applied = json.loads(raw)
    except ValueError:
        return None
    if kind == "FeatureFlag":
        return feature_flags(applied) if isinstance(applied, dict) else None
    found = flagd_document(applied) if isinstance(applied, dict) else None
    return found[1] if found else None


def _undo_records(obj: JSON) -> dict[str, Any]:
    raw = annotations_of(obj).get(UNDO_ANNOTATION)
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _before(
    flag: str, applied: dict[str, Any] | None, undo: dict[str, Any], edited: set[str]
) -> str:
    if applied is not None and flag in edited:
        return describe_flag(applied.get(flag)) + " (from last-applied-configuration)"
    record = undo.get(flag)
    if isinstance(record, dict) and "field" in record:
        return f"{record['field']} {record.get('from')} (recorded by rollback in {UNDO_ANNOTATION})"
    return "unknown (Kubernetes keeps no history of it)"
