"""ConfigMap and Secret updates, who consumes them, and whether consumers restarted.

Kubernetes keeps no history of either kind.  The best built-in clue to "when
did this change" is ``metadata.managedFields[].time``: each field manager's
entry is stamped when that manager last changed its fields, so the newest
stamp is the last write, and the newest entry's field set names the keys it
wrote.  Values are never read into a change (they may be secrets); only key
names.  Secrets arrive without ``data`` at all (listed as metadata only).

The prior content is known only when the change ledger recorded it
(ControllerRevisions labelled ``rollback.io/configmap=NAME``, written by
``rollback execute``); otherwise the change says the previous value is unknown.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.durations import format_instant, parse_k8s_time
from controller.model import Change, ChangeKind, ObjectRef
from controller.sources.flags import flagd_document
from controller.sources.helm import RELEASE_TYPE
from controller.sources.workloads import consumers_of, last_restart, workload_ref
from controller.view import JSON, ClusterView, meta, name_of, namespace_of

LEDGER_LABEL = "rollback.io/configmap"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# Written by Kubernetes itself, not by people: never an incident's cause.
_SYSTEM_CONFIGMAPS = frozenset({"kube-root-ca.crt"})
_SYSTEM_SECRET_TYPES = frozenset(
    {RELEASE_TYPE, "kubernetes.io/service-account-token", "bootstrap.kubernetes.io/token"}
)

# A write this close to creation is the creation itself.
_CREATION_SLACK = timedelta(seconds=2)


@dataclass(frozen=True)
class LastWrite:
    """The newest write to an object according to its managedFields."""

    at: datetime
    manager: str
    operation: str
    fields: tuple[str, ...]


def last_write(obj: JSON) -> LastWrite | None:
    """The newest managedFields entry (ignoring the status subresource), or None."""
    newest: LastWrite | None = None
    for entry in meta(obj).get("managedFields") or []:
        if not isinstance(entry, dict) or entry.get("subresource"):
            continue
        moment = parse_k8s_time(entry.get("time"))
        if moment is None or (newest is not None and moment <= newest.at):
            continue
        newest = LastWrite(
            at=moment,
            manager=str(entry.get("manager") or "unknown"),
            operation=str(entry.get("operation") or ""),
            fields=tuple(field_paths(entry.get("fieldsV1") or {})),
        )
    return newest


def field_paths(fields: JSON, prefix: str = "") -> Iterator[str]:
    """Leaf paths of a FieldsV1 set: ``{"f:data": {"f:mode": {}}}`` -> ``data.mode``."""
    for key, child in fields.items():
        if key == ".":
            continue
        name = key[2:] if key.startswith(("f:", "k:", "v:", "i:")) else key
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(child, dict) and any(k != "." for k in child):
            yield from field_paths(child, path)
        else:
            yield path


def last_applied_drift(obj: JSON) -> tuple[str, ...]:
    """Data keys that differ from ``kubectl.kubernetes.io/last-applied-configuration``.

    An edit or patch after a ``kubectl apply`` leaves the applied content in
    that annotation, so the keys that differ are exactly what the edit
    changed.  Only key names are returned: values may be secrets.
    """
    raw = (meta(obj).get("annotations") or {}).get(LAST_APPLIED)
    if not raw:
        return ()
    try:
        applied = json.loads(raw)
    except ValueError:
        return ()
    if not isinstance(applied, dict):
        return ()
    now_data = obj.get("data") or {}
    then_data = applied.get("data") or {}
    keys = set(now_data) | set(then_data)
    return tuple(sorted(k for k in keys if now_data.get(k) != then_data.get(k)))


def was_updated(obj: JSON) -> LastWrite | None:
    """The last write when it came after creation (an update), else None."""
    write = last_write(obj)
    created = parse_k8s_time(meta(obj).get("creationTimestamp"))
    if write is None or created is None or write.at - created <= _CREATION_SLACK:
        return None
    return write


def read_modes(template: JSON, ref: ObjectRef) -> str:
    """How a pod template reads a ConfigMap/Secret: ``through env``, ``as mounted files``..."""
    spec = template.get("spec") or {}
    volumes = set()
    key = "configMap" if ref.kind == "ConfigMap" else "secret"
    for volume in spec.get("volumes") or []:
        sources = [volume, *(((volume or {}).get("projected") or {}).get("sources") or [])]
        for source in sources:
            inner = (source or {}).get(key) or {}
            if ref.name in (inner.get("name"), inner.get("secretName")):
                volumes.add(str(volume.get("name")))
    modes: set[str] = set()
    for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        if _env_reads(container, ref):
            modes.add("through env")
        for mount in container.get("volumeMounts") or []:
            if mount.get("name") in volumes:
                modes.add("as a subPath file" if mount.get("subPath") else "as mounted files")
    return " and ".join(sorted(modes)) or "through its pod template"


def _env_reads(container: JSON, ref: ObjectRef) -> bool:
    if ref.kind == "ConfigMap":
        ref_key, key_ref = "configMapRef", "configMapKeyRef"
    else:
        ref_key, key_ref = "secretRef", "secretKeyRef"
    for env_from in container.get("envFrom") or []:
        if ((env_from or {}).get(ref_key) or {}).get("name") == ref.name:
            return True
    for env in container.get("env") or []:
        if (((env or {}).get("valueFrom") or {}).get(key_ref) or {}).get("name") == ref.name:
            return True
    return False


def ledger_versions(view: ClusterView, ref: ObjectRef) -> list[int]:
    """Versions of ``ref`` the change ledger recorded, oldest first."""
    versions = []
    for rev in view.of_kind("ControllerRevision", ref.namespace):
        if (meta(rev).get("labels") or {}).get(LEDGER_LABEL) == ref.name:
            try:
                versions.append(int(rev.get("revision") or 0))
            except (TypeError, ValueError):
                continue
    return sorted(versions)


def prior_ledger_version(view: ClusterView, ref: ObjectRef) -> int | None:
    """The newest ledger version of ``ref`` that is not its current content.

    The in-cluster controller records every content a ConfigMap has, the
    current one included, so the newest version may be what is live now:
    restoring it would change nothing.  The prior content is the newest
    version that differs.  Without the ConfigMap in the view, the newest.
    """
    versions = ledger_versions(view, ref)
    current = view.get("ConfigMap", ref.namespace, ref.name)
    if current is None:
        return versions[-1] if versions else None
    live = (_string_map(current.get("data")), _string_map(current.get("binaryData")))
    prior = None
    for rev in view.of_kind("ControllerRevision", ref.namespace):
        if (meta(rev).get("labels") or {}).get(LEDGER_LABEL) != ref.name:
            continue
        data = rev.get("data") or {}
        if (_string_map(data.get("data")), _string_map(data.get("binaryData"))) == live:
            continue
        try:
            version = int(rev.get("revision") or 0)
        except (TypeError, ValueError):
            continue
        prior = version if prior is None else max(prior, version)
    return prior


def _string_map(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def known_config_versions(view: ClusterView) -> dict[ObjectRef, str]:
    """ConfigMaps with a recorded prior version: ref -> the newest version unlike the live one."""
    out: dict[ObjectRef, str] = {}
    for rev in view.of_kind("ControllerRevision"):
        name = (meta(rev).get("labels") or {}).get(LEDGER_LABEL)
        if not name:
            continue
        ref = ObjectRef("ConfigMap", namespace_of(rev), str(name))
        if ref in out:
            continue
        version = prior_ledger_version(view, ref)
        if version is not None:
            out[ref] = str(version)
    return out


def collect_config_changes(view: ClusterView, since: datetime, until: datetime) -> list[Change]:
    """ConfigMap and Secret updates between ``since`` and ``until``.

    Pure: reads the view only.  ConfigMaps holding a flagd flag document are
    left to :mod:`controller.sources.flags`; Helm release Secrets to
    :mod:`controller.sources.helm`; objects Kubernetes writes itself are skipped.
    """
    changes: list[Change] = []
    for kind in ("ConfigMap", "Secret"):
        for obj in view.of_kind(kind):
            if _skipped(obj):
                continue
            write = was_updated(obj)
            if write is None or not since <= write.at <= until:
                continue
            changes.append(_config_change(view, obj, write))
    return changes


def _skipped(obj: JSON) -> bool:
    if obj.get("kind") == "ConfigMap":
        return name_of(obj) in _SYSTEM_CONFIGMAPS or flagd_document(obj) is not None
    return str(obj.get("type") or "") in _SYSTEM_SECRET_TYPES or name_of(obj).startswith(
        "sh.helm.release.v1."
    )


def _config_change(view: ClusterView, obj: JSON, write: LastWrite) -> Change:
    kind = str(obj["kind"])
    ref = ObjectRef(kind, namespace_of(obj), name_of(obj))
    keys = sorted(
        {
            p.split(".", 1)[1].split(".", 1)[0]
            for p in write.fields
            if p.startswith(("data.", "binaryData.", "stringData."))
        }
    )
    consumers = consumers_of(view, ref)
    evidence = [
        f"managedFields: {write.manager} ({write.operation}) last wrote it at "
        f"{format_instant(write.at)}" + (f", owning keys {', '.join(keys)}" if keys else ""),
    ]
    for workload in consumers:
        restart = last_restart(view, workload)
        name = workload_ref(workload).short
        how = read_modes(((workload.get("spec") or {}).get("template")) or {}, ref)
        if restart and restart >= write.at:
            evidence.append(f"{name} reads it {how} and restarted since: it runs the new content")
        elif how == "as mounted files":
            evidence.append(
                f"{name} reads it {how}, not restarted since: the kubelet updates the files "
                "within about a minute"
            )
        else:
            evidence.append(
                f"{name} reads it {how}, not restarted since: pods started before the change "
                "still run the old values"
            )
    if not consumers:
        evidence.append(f"no workload in scope reads this {kind}")
    prior = prior_ledger_version(view, ref) if kind == "ConfigMap" else None
    drift = last_applied_drift(obj)
    if prior is not None:
        before = f"recorded as ledger version {prior}"
    elif drift:
        before = (
            "as last applied with kubectl (last-applied-configuration), "
            f"which differs in {', '.join(drift)}"
        )
        evidence.append(f"keys changed since the last kubectl apply: {', '.join(drift)}")
    else:
        before = "unknown (Kubernetes keeps no history of it)"
    after_keys = sorted((obj.get("data") or {}).keys()) if kind == "ConfigMap" else []
    return Change(
        kind=ChangeKind.CONFIG,
        target=ref,
        at=write.at,
        summary=f"{kind} {ref.name} updated by {write.manager}",
        before=before,
        after=("keys: " + ", ".join(after_keys)) if after_keys else None,
        cause=write.manager,
        affects=tuple(workload_ref(w) for w in consumers),
        evidence=tuple(evidence),
    )
