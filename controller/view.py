"""ClusterView: the objects one assessment reads, held in memory and indexed.

A view is built from a live cluster (a few LIST calls), a snapshot file or the
controller's watch cache; sources and the core never know which.  Objects stay
the plain JSON dictionaries the API returns, so real API output is also our
test data.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

from controller.durations import parse_k8s_time

JSON = dict[str, Any]
_T = TypeVar("_T")

# (API group, kind) pairs assess understands.  Anything else in a snapshot is
# counted and ignored, never an error: `kubectl get all` output must just work.
KNOWN_KINDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("apps", "Deployment"),
        ("apps", "ReplicaSet"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("apps", "ControllerRevision"),
        ("", "Pod"),
        ("", "ConfigMap"),
        ("", "Secret"),
        ("", "Event"),
        ("events.k8s.io", "Event"),
        ("", "Node"),
        ("", "Namespace"),
        ("", "ResourceQuota"),
        ("", "Service"),
        ("autoscaling", "HorizontalPodAutoscaler"),
        ("batch", "Job"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("core.openfeature.dev", "FeatureFlag"),
        ("core.openfeature.dev", "FeatureFlagSource"),
        ("argoproj.io", "Application"),
        ("kustomize.toolkit.fluxcd.io", "Kustomization"),
        ("helm.toolkit.fluxcd.io", "HelmRelease"),
    }
)

CLUSTER_SCOPED: frozenset[str] = frozenset({"Node", "Namespace"})


def api_group(obj: JSON) -> str:
    api_version = str(obj.get("apiVersion") or "")
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def meta(obj: JSON) -> JSON:
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def namespace_of(obj: JSON) -> str:
    return str(meta(obj).get("namespace") or "")


def name_of(obj: JSON) -> str:
    return str(meta(obj).get("name") or "")


def labels_of(obj: JSON) -> dict[str, str]:
    value = meta(obj).get("labels")
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def annotations_of(obj: JSON) -> dict[str, str]:
    value = meta(obj).get("annotations")
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def controller_owner(obj: JSON) -> JSON | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in meta(obj).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def event_time(event: JSON) -> datetime | None:
    """The latest time an Event (core/v1 or events.k8s.io/v1) was observed.

    The two API versions and the series of a repeated event spell it
    differently; the first one present wins, newest meaning first.
    """
    series = event.get("series") or {}
    for value in (
        series.get("lastObservedTime"),
        event.get("lastTimestamp"),
        event.get("deprecatedLastTimestamp"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        meta(event).get("creationTimestamp"),
    ):
        moment = parse_k8s_time(value)
        if moment:
            return moment
    return None


@dataclass
class ClusterView:
    """Objects by kind, with indexes for the lookups sources make most.

    ``captured_at`` is the time the objects describe: now for a live read, the
    capture time for a snapshot.  ``ignored`` counts objects of kinds we do not
    understand.  ``unavailable`` names kinds that could not be read (a CRD that
    is not installed, or a kind RBAC forbids) so output can say what is missing.
    ``complete`` names kinds read in full for the scope, so that an object of
    such a kind that is not in the view does not exist (a ConfigMap a revision
    needs was deleted); for other kinds absence proves nothing.
    """

    captured_at: datetime
    source: str = "cluster"
    ignored: Counter[str] = field(default_factory=Counter)
    unavailable: dict[str, str] = field(default_factory=dict)
    complete: set[str] = field(default_factory=set)
    _by_kind: dict[str, list[JSON]] = field(default_factory=lambda: defaultdict(list))
    _by_key: dict[tuple[str, str, str], JSON] = field(default_factory=dict)
    _by_uid: dict[str, JSON] = field(default_factory=dict)
    _children: dict[str, list[JSON]] = field(default_factory=lambda: defaultdict(list))
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def memo(self, key: Any, build: Callable[[], _T]) -> _T:
        """``build()``, computed once per view content and then remembered under ``key``.

        Sources derive indexes and per-workload facts many times from one view
        (every ConfigMap asks who consumes it); remembering them keeps a
        namespace of thousands of objects fast.  Adding an object forgets all.
        """
        if key not in self._memo:
            self._memo[key] = build()
        return cast(_T, self._memo[key])

    def add(self, obj: JSON) -> bool:
        """Index one object; returns False (and counts it) when its kind is unknown."""
        self._memo.clear()
        kind = str(obj.get("kind") or "")
        if (api_group(obj), kind) not in KNOWN_KINDS:
            self.ignored[kind or "<no kind>"] += 1
            return False
        key = (kind, namespace_of(obj), name_of(obj))
        if key in self._by_key:
            # The same object twice (two snapshot files): keep the newer one.
            old = self._by_key[key]
            if _rv(old) >= _rv(obj):
                return True
            self._by_kind[kind].remove(old)
        self._by_kind[kind].append(obj)
        self._by_key[key] = obj
        uid = meta(obj).get("uid")
        if uid:
            self._by_uid[str(uid)] = obj
        owner = controller_owner(obj)
        if owner and owner.get("uid"):
            self._children[str(owner["uid"])].append(obj)
        return True

    def extend(self, objects: Iterable[JSON]) -> None:
        for obj in objects:
            self.add(obj)

    def of_kind(self, kind: str, namespace: str | None = None) -> list[JSON]:
        items = self._by_kind.get(kind, [])
        if namespace is None:
            return list(items)
        by_namespace = self.memo(("of_kind", kind), lambda: _group_by_namespace(items))
        return list(by_namespace.get(namespace, ()))

    def get(self, kind: str, namespace: str, name: str) -> JSON | None:
        return self._by_key.get((kind, namespace, name))

    def by_uid(self, uid: str) -> JSON | None:
        return self._by_uid.get(uid)

    def owned_by(self, owner: JSON, kind: str | None = None) -> list[JSON]:
        """Objects whose controller owner is ``owner`` (matched by UID, as controllers do)."""
        uid = str(meta(owner).get("uid") or "")
        children = self._children.get(uid, []) if uid else []
        return [c for c in children if kind is None or c.get("kind") == kind]

    def kinds(self) -> Iterator[str]:
        return iter(sorted(k for k, v in self._by_kind.items() if v))

    def __len__(self) -> int:
        return len(self._by_key)

    def all_objects(self) -> Iterator[JSON]:
        for kind in self.kinds():
            yield from self._by_kind[kind]


def _group_by_namespace(items: Iterable[JSON]) -> dict[str, list[JSON]]:
    groups: dict[str, list[JSON]] = defaultdict(list)
    for obj in items:
        groups[namespace_of(obj)].append(obj)
    return groups


def _rv(obj: JSON) -> int:
    try:
        return int(meta(obj).get("resourceVersion") or 0)
    except ValueError:
        return 0
