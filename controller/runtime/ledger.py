"""The change ledger: every content a ConfigMap or FeatureFlag had, so it can be restored.

Kubernetes keeps no history of either kind.  The controller lists them in the
watched namespaces every ``--ledger-interval`` and records each content it has
not seen as a ControllerRevision, in the format ``rollback execute`` already
reads (:mod:`controller.actions.config`):

* ConfigMap ``NAME``: label ``rollback.io/configmap=NAME``, ``revision`` the
  version, ``data`` = ``{"data": …, "binaryData": …}``, annotation
  ``rollback.io/digest`` (12 hex digits of the content, never the content),
  owned by the ConfigMap.  ``rollback execute configmap/NAME --to VERSION``
  restores one, and assess recommends ``revert-config`` when it sees one.
* FeatureFlag ``NAME``: label ``rollback.io/featureflag=NAME``, ``data`` =
  ``{"spec": …}``, owned by the FeatureFlag: the flag's history for the
  post-mortem (``rollback execute flag/… --undo`` uses its own record).

At most ``max_versions`` per object are kept; the oldest go first.  Secrets
are never read, let alone recorded.  A ConfigMap labelled
``rollback.io/ledger: "false"`` is skipped (our own incident records are).

:func:`plan_ledger` is pure (objects and revisions in, writes out);
:func:`sync_ledger` lists and writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from controller.actions.config import LEDGER_LABEL, content_digest, ledger_entry
from controller.errors import ClusterError, ConflictError, ForbiddenError, NotFoundError
from controller.kube import CONFIGMAP, CONTROLLERREVISION, FEATUREFLAG, Kube
from controller.view import JSON, labels_of, meta, name_of, namespace_of

FLAG_LEDGER_LABEL: Final = "rollback.io/featureflag"
OPT_OUT_LABEL: Final = "rollback.io/ledger"
DIGEST_ANNOTATION: Final = "rollback.io/digest"
NOTE_ANNOTATION: Final = "rollback.io/note"
DEFAULT_MAX_VERSIONS: Final = 10
# Written by Kubernetes itself in every namespace: never an incident's cause.
_SKIPPED_CONFIGMAPS: Final = frozenset({"kube-root-ca.crt"})


@dataclass(frozen=True)
class Deletion:
    """A ledger revision to prune, with the resourceVersion it was listed at."""

    namespace: str
    name: str
    resource_version: str


@dataclass(frozen=True)
class LedgerPlan:
    """What one ledger pass writes: new versions, and old ones to prune."""

    create: tuple[JSON, ...] = ()
    delete: tuple[Deletion, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.create and not self.delete


@dataclass(frozen=True)
class LedgerResult:
    recorded: tuple[str, ...] = ()  # "configmap/shop/web-config v3"
    pruned: int = 0
    problems: tuple[str, ...] = ()


# ---------------------------------------------------------------------------
# Pure
# ---------------------------------------------------------------------------


def flag_digest(flag: Mapping[str, Any]) -> str:
    """12 hex digits identifying a FeatureFlag's spec.  Pure."""
    canonical = json.dumps(flag.get("spec") or {}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def configmap_digest(configmap: Mapping[str, Any]) -> str:
    return content_digest(_strings(configmap.get("data")), _strings(configmap.get("binaryData")))


def flag_ledger_entry(flag: JSON, version: int, note: str = "") -> JSON:
    """A ControllerRevision recording a FeatureFlag's spec as ``version``.  Pure."""
    name = name_of(flag)
    uid = meta(flag).get("uid")
    owner = {
        "apiVersion": str(flag.get("apiVersion") or FEATUREFLAG.api_version),
        "kind": "FeatureFlag",
        "name": name,
        "uid": uid,
    }
    suffix = f"-ff-{version}"
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": name[: 253 - len(suffix)] + suffix,
            "namespace": namespace_of(flag),
            "labels": {FLAG_LEDGER_LABEL: name},
            "annotations": {NOTE_ANNOTATION: note, DIGEST_ANNOTATION: flag_digest(flag)},
            "ownerReferences": [owner] if uid else [],
        },
        "revision": version,
        "data": {"spec": flag.get("spec") or {}},
    }


def recorded(obj: Mapping[str, Any]) -> bool:
    """Whether the ledger keeps history of ``obj`` at all.  Pure."""
    if labels_of(dict(obj)).get(OPT_OUT_LABEL) == "false":
        return False
    return not (obj.get("kind") == "ConfigMap" and name_of(dict(obj)) in _SKIPPED_CONFIGMAPS)


def plan_ledger(
    objects: Iterable[JSON],
    revisions: Iterable[JSON],
    *,
    max_versions: int = DEFAULT_MAX_VERSIONS,
    note: str = "recorded by the rollback controller",
) -> LedgerPlan:
    """New ledger versions for content not yet recorded, and pruning beyond ``max_versions``.

    Pure.  ``objects`` are ConfigMaps and FeatureFlags as listed; ``revisions``
    the ControllerRevisions of their namespaces (any, ours are picked by
    label).  An object whose newest recorded version has its current content
    gets nothing; otherwise version max+1.  Versions are numbered per object
    and never reused, so a version a person wrote down stays that content.
    """
    if max_versions < 1:
        raise ValueError("max_versions must be at least 1")
    by_object: dict[tuple[str, str, str], list[JSON]] = {}
    for revision in revisions:
        labels = labels_of(revision)
        for kind, label in (("ConfigMap", LEDGER_LABEL), ("FeatureFlag", FLAG_LEDGER_LABEL)):
            if labels.get(label):
                key = (kind, namespace_of(revision), labels[label])
                by_object.setdefault(key, []).append(revision)
    creates: list[JSON] = []
    deletes: list[Deletion] = []
    for obj in sorted(objects, key=lambda o: (namespace_of(o), str(o.get("kind")), name_of(o))):
        kind = str(obj.get("kind"))
        if kind not in ("ConfigMap", "FeatureFlag") or not recorded(obj):
            continue
        history = sorted(by_object.get((kind, namespace_of(obj), name_of(obj)), []), key=_version)
        digest = configmap_digest(obj) if kind == "ConfigMap" else flag_digest(obj)
        keep = list(history)
        if not history or _digest(history[-1], kind) != digest:
            version = (_version(history[-1]) if history else 0) + 1
            entry = (
                ledger_entry(obj, version, note=note)
                if kind == "ConfigMap"
                else flag_ledger_entry(obj, version, note=note)
            )
            creates.append(entry)
            keep.append(entry)
        for old in keep[: max(0, len(keep) - max_versions)]:
            if old in history:
                deletes.append(
                    Deletion(
                        namespace_of(old), name_of(old), str(meta(old).get("resourceVersion") or "")
                    )
                )
    return LedgerPlan(tuple(creates), tuple(deletes))


def _version(revision: Mapping[str, Any]) -> int:
    try:
        return int(revision.get("revision") or 0)
    except (TypeError, ValueError):
        return 0


def _digest(revision: Mapping[str, Any], kind: str) -> str:
    """The content digest a revision records (its annotation, else computed from its data)."""
    annotations = (meta(dict(revision)).get("annotations")) or {}
    if annotations.get(DIGEST_ANNOTATION):
        return str(annotations[DIGEST_ANNOTATION])
    data = revision.get("data") or {}
    if kind == "ConfigMap":
        return content_digest(_strings(data.get("data")), _strings(data.get("binaryData")))
    return flag_digest({"spec": data.get("spec") or {}})


def _strings(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


# ---------------------------------------------------------------------------
# I/O
# ---------------------------------------------------------------------------


def sync_ledger(
    kube: Kube,
    namespaces: Sequence[str],
    *,
    max_versions: int = DEFAULT_MAX_VERSIONS,
) -> LedgerResult:
    """One ledger pass over ``namespaces``: four LISTs each, then the writes.

    ``kube`` should be the leader's guarded handle: every write re-checks
    the Lease.  A namespace where FeatureFlags are not installed (404) or not
    readable (403) records ConfigMaps only.  A version another writer took
    first (409, e.g. ``rollback execute`` recording a revert) is left for the
    next pass to see.
    """
    recorded_now: list[str] = []
    problems: list[str] = []
    pruned = 0
    for namespace in namespaces:
        objects = list(kube.list(CONFIGMAP, namespace))
        revisions = list(kube.list(CONTROLLERREVISION, namespace, selector=LEDGER_LABEL))
        with contextlib.suppress(NotFoundError, ForbiddenError):
            objects += kube.list(FEATUREFLAG, namespace)
            revisions += kube.list(CONTROLLERREVISION, namespace, selector=FLAG_LEDGER_LABEL)
        plan = plan_ledger(objects, revisions, max_versions=max_versions)
        for body in plan.create:
            labels = body["metadata"]["labels"]
            kind = "configmap" if LEDGER_LABEL in labels else "featureflag"
            subject = labels.get(LEDGER_LABEL) or labels.get(FLAG_LEDGER_LABEL)
            what = f"{kind}/{namespace}/{subject} v{body['revision']}"
            try:
                kube.create(CONTROLLERREVISION, namespace, body)
            except ConflictError:
                continue
            except ClusterError as err:
                problems.append(f"{what}: {err}")
                continue
            recorded_now.append(what)
        for gone in plan.delete:
            try:
                kube.delete(
                    CONTROLLERREVISION,
                    gone.namespace,
                    gone.name,
                    precondition_rv=gone.resource_version or None,
                )
                pruned += 1
            except (NotFoundError, ConflictError):
                continue
            except ClusterError as err:
                problems.append(f"prune controllerrevision/{gone.namespace}/{gone.name}: {err}")
    return LedgerResult(tuple(recorded_now), pruned, tuple(problems))


__all__ = [
    "FLAG_LEDGER_LABEL",
    "Deletion",
    "LedgerPlan",
    "LedgerResult",
    "flag_digest",
    "flag_ledger_entry",
    "plan_ledger",
    "recorded",
    "sync_ledger",
]
