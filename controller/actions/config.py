"""Config revert plans: put a ConfigMap's data back and restart the consumers that need it.

Kubernetes keeps no history of a ConfigMap, so the prior content must come
from somewhere we trust (:class:`PriorConfig`):

* a ConfigMap manifest in a git repository at a commit (``--from-git REF:PATH``),
* a ConfigMap manifest on disk (``--from-file F``, e.g. yesterday's
  ``kubectl get cm -o yaml``),
* the ledger (``--to VERSION``): ControllerRevisions labelled
  ``rollback.io/configmap=NAME`` whose ``data`` is ``{"data": {...},
  "binaryData": {...}}`` and whose ``revision`` is the version.  Every revert
  records the data it overwrites there first, so a revert can itself be
  reverted and the bad config survives for the post-mortem.

The write replaces ``data`` and ``binaryData`` whole (a revert is a restore,
not a merge), guarded by the resourceVersion the plan was made from.  Then a
rollout restart (the ``kubectl.kubernetes.io/restartedAt`` template annotation,
exactly what ``kubectl rollout restart`` writes) for every consumer that does
not pick the change up on its own: anything reading the ConfigMap through env
or a ``subPath`` mount never sees an update; a whole-volume mount is updated
by the kubelet but only helps an application that reloads, which a workload
declares with ``rollback.io/config-reload: "true"``.  Workloads that Stakater
Reloader restarts on config changes are left to it.

Plans are pure; :func:`load_prior_from_file` reads a local file and
:func:`prior_from_manifest_text` parses text from wherever it came.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from controller.actions.plan import (
    AUDIT_ANNOTATION,
    NOW,
    STAMP,
    Plan,
    PlanStep,
    annotation_ops,
    escape_pointer,
    resource_version_precondition,
)
from controller.errors import RefusedError, UserInputError
from controller.kube import CONFIGMAP, DAEMONSET, DEPLOYMENT, JSON_PATCH, STATEFULSET, Resource
from controller.model import ActionKind, ObjectRef
from controller.view import JSON, annotations_of, meta, name_of, namespace_of

LEDGER_LABEL: Final = "rollback.io/configmap"
RELOAD_ANNOTATION: Final = "rollback.io/config-reload"
RESTARTED_AT: Final = "kubectl.kubernetes.io/restartedAt"
_RELOADER_AUTO: Final = ("reloader.stakater.com/auto", "configmap.reloader.stakater.com/auto")
_RELOADER_NAMED: Final = "configmap.reloader.stakater.com/reload"

_WORKLOAD_RESOURCES: Final[Mapping[str, Resource]] = {
    "Deployment": DEPLOYMENT,
    "StatefulSet": STATEFULSET,
    "DaemonSet": DAEMONSET,
}


@dataclass(frozen=True)
class PriorConfig:
    """A ConfigMap's earlier content and where it came from (``origin`` is shown and audited)."""

    data: Mapping[str, str]
    binary_data: Mapping[str, str] = field(default_factory=dict)
    origin: str = ""

    @property
    def digest(self) -> str:
        return content_digest(self.data, self.binary_data)


@dataclass(frozen=True)
class Restart:
    """Why a consumer is (or is not) restarted after the revert."""

    workload: JSON
    restart: bool
    why: str

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(
            str(self.workload.get("kind")), namespace_of(self.workload), name_of(self.workload)
        )


def plan_config_revert(configmap: JSON, prior: PriorConfig, consumers: Sequence[JSON] = ()) -> Plan:
    """Revert ``configmap`` to ``prior`` and restart the consumers that need it.  Pure.

    ``consumers`` are the workloads whose pod template reads the ConfigMap
    (:func:`controller.sources.workloads.consumers_of`).  Refuses an immutable
    ConfigMap: Kubernetes forbids changing it, the fix is a new name.
    """
    ref = ObjectRef("ConfigMap", namespace_of(configmap), name_of(configmap))
    current_data = _strings(configmap.get("data"))
    current_binary = _strings(configmap.get("binaryData"))
    current_digest = content_digest(current_data, current_binary)
    from_label = f"current data (digest {current_digest})"
    to_label = f"{prior.origin or 'prior version'} (digest {prior.digest})"
    decisions = [restart_decision(w, ref.name) for w in consumers]
    common: dict[str, Any] = {
        "action": ActionKind.REVERT_CONFIG,
        "target": ref,
        "summary": f"revert {ref.short} to {prior.origin or 'its prior version'}",
        "from_label": from_label,
        "to_label": to_label,
    }
    if current_data == dict(prior.data) and current_binary == dict(prior.binary_data):
        return Plan(
            **common, noop=f"{ref.short} already holds that content (digest {prior.digest})"
        )
    if configmap.get("immutable"):
        raise RefusedError(
            f"{ref.short} is immutable: Kubernetes forbids changing its data; "
            "create a new ConfigMap and point the workloads at it"
        )
    rv = str(meta(configmap).get("resourceVersion") or "")
    ops: list[dict[str, Any]] = [resource_version_precondition(rv)]
    ops.extend(_replace_map_ops("data", current_data, prior.data, "data" in configmap))
    ops.extend(
        _replace_map_ops("binaryData", current_binary, prior.binary_data, "binaryData" in configmap)
    )
    ops.extend(annotation_ops(configmap, {AUDIT_ANNOTATION: STAMP}))
    steps = [
        PlanStep(
            ref=ref,
            resource=CONFIGMAP,
            body=ops,
            resource_version=rv,
            patch_type=JSON_PATCH,
            summary=f"patch {ref.short}: data from {prior.origin or 'the prior version'}",
        )
    ]
    changes = list(data_changes(current_data, prior.data, "key"))
    changes.extend(data_changes(current_binary, prior.binary_data, "binary key"))
    warnings: list[str] = []
    for decision in decisions:
        if decision.restart:
            steps.append(restart_step(decision.workload, reason=f"it {decision.why}"))
            changes.append(f"restart {decision.ref.short} (it {decision.why})")
            if (decision.workload.get("spec") or {}).get("paused"):
                warnings.append(f"{decision.ref.short} is paused: its restart waits for a resume")
        else:
            changes.append(f"no restart for {decision.ref.short} ({decision.why})")
    if not consumers:
        warnings.append(f"no workload reads {ref.short} through its pod template")
    return Plan(**common, steps=tuple(steps), changes=tuple(changes), warnings=tuple(warnings))


def restart_decision(workload: JSON, configmap: str) -> Restart:
    """Whether ``workload`` must be restarted to see a new ``configmap``.  Pure."""
    annotations = annotations_of(workload)
    if any(annotations.get(k) == "true" for k in _RELOADER_AUTO) or configmap in [
        n.strip() for n in annotations.get(_RELOADER_NAMED, "").split(",")
    ]:
        return Restart(workload, False, "Stakater Reloader restarts it on config changes")
    template = (workload.get("spec") or {}).get("template") or {}
    spec = template.get("spec") or {}
    if _read_via_env(spec, configmap):
        return Restart(workload, True, "reads it through environment variables")
    volumes = {
        str(v.get("name")): v
        for v in spec.get("volumes") or []
        if isinstance(v, dict) and _volume_reads(v, configmap)
    }
    if _sub_path_mount(spec, volumes):
        return Restart(workload, True, "mounts it with subPath, which never updates")
    if (
        annotations.get(RELOAD_ANNOTATION) == "true"
        or annotations_of(template).get(RELOAD_ANNOTATION) == "true"
    ):
        return Restart(workload, False, f"mounts it as a volume and declares {RELOAD_ANNOTATION}")
    return Restart(workload, True, "mounts it but does not declare that it reloads")


def restart_step(workload: JSON, reason: str = "") -> PlanStep:
    """``kubectl rollout restart`` as a guarded JSON Patch; the time is filled at apply."""
    kind = str(workload.get("kind"))
    resource = _WORKLOAD_RESOURCES.get(kind)
    ref = ObjectRef(kind, namespace_of(workload), name_of(workload))
    if resource is None:
        raise UserInputError(f"cannot restart a {kind}")
    template = (workload.get("spec") or {}).get("template") or {}
    rv = str(meta(workload).get("resourceVersion") or "")
    ops: list[dict[str, Any]] = [resource_version_precondition(rv)]
    template_meta = template.get("metadata")
    if not isinstance(template_meta, dict):
        ops.append(
            {
                "op": "add",
                "path": "/spec/template/metadata",
                "value": {"annotations": {RESTARTED_AT: NOW}},
            }
        )
    elif not isinstance(template_meta.get("annotations"), dict):
        ops.append(
            {
                "op": "add",
                "path": "/spec/template/metadata/annotations",
                "value": {RESTARTED_AT: NOW},
            }
        )
    else:
        ops.append(
            {
                "op": "add",
                "path": "/spec/template/metadata/annotations/" + escape_pointer(RESTARTED_AT),
                "value": NOW,
            }
        )
    return PlanStep(
        ref=ref,
        resource=resource,
        body=ops,
        resource_version=rv,
        patch_type=JSON_PATCH,
        summary=f"restart {ref.short}" + (f" ({reason})" if reason else ""),
    )


def content_digest(data: Mapping[str, str], binary_data: Mapping[str, str] | None = None) -> str:
    """12 hex digits identifying ConfigMap content without showing it (values may be secret)."""
    canonical = json.dumps(
        {"data": dict(data), "binaryData": dict(binary_data or {})},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def data_changes(
    before: Mapping[str, str], after: Mapping[str, str], noun: str = "key"
) -> list[str]:
    """Which keys a revert adds, removes or changes, with sizes, never values.  Pure."""
    out: list[str] = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if old is None:
            out.append(f"{noun} {key}: restored ({len(new or '')} bytes)")
        elif new is None:
            out.append(f"{noun} {key}: removed ({len(old)} bytes)")
        else:
            out.append(f"{noun} {key}: {len(old)} -> {len(new)} bytes, content differs")
    return out


def prior_from_manifest_text(text: str, name: str, origin: str) -> PriorConfig:
    """The ConfigMap named ``name`` in YAML/JSON text (one or more documents, or a List)."""
    import yaml

    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserInputError(f"{origin}: not valid YAML or JSON{where}") from err
    candidates: list[JSON] = []
    for document in documents:
        if isinstance(document, dict) and isinstance(document.get("items"), list):
            candidates.extend(i for i in document["items"] if isinstance(i, dict))
        elif isinstance(document, dict):
            candidates.append(document)
    configmaps = [c for c in candidates if c.get("kind") == "ConfigMap"]
    if not configmaps:
        raise UserInputError(f"{origin}: holds no ConfigMap manifest")
    named = [c for c in configmaps if name_of(c) == name]
    if not named:
        if len(configmaps) == 1 and not name_of(configmaps[0]):
            named = configmaps
        else:
            found = ", ".join(name_of(c) or "<unnamed>" for c in configmaps)
            raise UserInputError(f"{origin}: holds no ConfigMap named {name!r} (found: {found})")
    chosen = named[0]
    for key in ("data", "binaryData"):
        value = chosen.get(key)
        if value is not None and not isinstance(value, dict):
            raise UserInputError(f"{origin}: {key} of ConfigMap {name!r} must be a mapping")
        for k, v in (value or {}).items():
            if not isinstance(v, str):
                raise UserInputError(
                    f"{origin}: {key}.{k} of ConfigMap {name!r} must be a string, "
                    f"not {type(v).__name__} (quote it in YAML)"
                )
    return PriorConfig(
        data=_strings(chosen.get("data")),
        binary_data=_strings(chosen.get("binaryData")),
        origin=origin,
    )


def load_prior_from_file(path: str, name: str) -> PriorConfig:
    """Read a ConfigMap manifest from disk (``--from-file``)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError(f"--from-file: no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserInputError(f"--from-file: cannot read {path}: {err}") from None
    return prior_from_manifest_text(text, name, f"file {path}")


def ledger_versions(revisions: Sequence[JSON], name: str) -> list[JSON]:
    """The ledger's ControllerRevisions for ConfigMap ``name``, oldest first.  Pure."""
    mine = [
        r
        for r in revisions
        if r.get("kind", "ControllerRevision") == "ControllerRevision"
        and (meta(r).get("labels") or {}).get(LEDGER_LABEL) == name
    ]
    return sorted(mine, key=lambda r: int(r.get("revision") or 0))


def prior_from_ledger(revisions: Sequence[JSON], name: str, version: int) -> PriorConfig:
    """The content the ledger recorded as ``version`` of ConfigMap ``name``.  Pure."""
    versions = ledger_versions(revisions, name)
    for revision in versions:
        if int(revision.get("revision") or 0) == version:
            data = revision.get("data") or {}
            return PriorConfig(
                data=_strings(data.get("data")),
                binary_data=_strings(data.get("binaryData")),
                origin=f"ledger version {version}",
            )
    if not versions:
        raise UserInputError(
            f"no recorded versions of configmap/{name}: use --from-git REF:PATH or --from-file F"
        )
    known = ", ".join(str(r.get("revision")) for r in versions)
    raise UserInputError(f"configmap/{name} has no recorded version {version}; known: {known}")


def ledger_entry(configmap: JSON, version: int, note: str = "") -> JSON:
    """A ControllerRevision recording ``configmap``'s current content as ``version``.  Pure.

    Owned by the ConfigMap, so the garbage collector removes the ledger with it.
    """
    name = name_of(configmap)
    digest = content_digest(_strings(configmap.get("data")), _strings(configmap.get("binaryData")))
    owner = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": name,
        "uid": meta(configmap).get("uid"),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": _ledger_name(name, version),
            "namespace": namespace_of(configmap),
            "labels": {LEDGER_LABEL: name},
            "annotations": {"rollback.io/note": note, "rollback.io/digest": digest},
            "ownerReferences": [owner] if owner["uid"] else [],
        },
        "revision": version,
        "data": {
            "data": _strings(configmap.get("data")),
            "binaryData": _strings(configmap.get("binaryData")),
        },
    }


def _ledger_name(name: str, version: int) -> str:
    suffix = f"-cfg-{version}"
    return name[: 253 - len(suffix)] + suffix


def _replace_map_ops(
    key: str, current: Mapping[str, str], prior: Mapping[str, str], present: bool
) -> list[dict[str, Any]]:
    if dict(current) == dict(prior):
        return []
    if not prior:
        return [{"op": "remove", "path": f"/{key}"}] if present else []
    return [{"op": "add", "path": f"/{key}", "value": dict(prior)}]


def _strings(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _read_via_env(spec: JSON, configmap: str) -> bool:
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            if not isinstance(container, dict):
                continue
            for env_from in container.get("envFrom") or []:
                if ((env_from or {}).get("configMapRef") or {}).get("name") == configmap:
                    return True
            for env in container.get("env") or []:
                ref = ((env or {}).get("valueFrom") or {}).get("configMapKeyRef") or {}
                if ref.get("name") == configmap:
                    return True
    return False


def _volume_reads(volume: JSON, configmap: str) -> bool:
    if (volume.get("configMap") or {}).get("name") == configmap:
        return True
    sources = (volume.get("projected") or {}).get("sources") or []
    return any(((s or {}).get("configMap") or {}).get("name") == configmap for s in sources)


def _sub_path_mount(spec: JSON, volumes: Mapping[str, JSON]) -> bool:
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            for mount in (container or {}).get("volumeMounts") or []:
                if mount.get("name") in volumes and (
                    mount.get("subPath") or mount.get("subPathExpr")
                ):
                    return True
    return False
