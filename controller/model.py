"""The project's vocabulary: typed, frozen values every layer speaks.

Nothing here does I/O or imports anything of ours.  Kinds, verdicts and
classifications are ``str`` enums so that they serialise as the strings our
JSON schema documents and compare safely in code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

# ---------------------------------------------------------------------------
# Kinds and verdicts
# ---------------------------------------------------------------------------


class ChangeKind(StrEnum):
    """What kind of change a suspect is (the JSON schema's ``suspects[].kind``)."""

    DEPLOY = "deploy"
    CONFIG = "config"
    FLAG = "flag"
    HELM = "helm"
    GITOPS = "gitops"
    INFRA = "infra"
    MIGRATION = "migration"
    COMMIT = "commit"


class Block(StrEnum):
    """Triage blocks in the order the seed article checks them: simplest first."""

    RESOURCES = "resources"
    INFRASTRUCTURE = "infrastructure"
    DEPENDENCIES = "dependencies"
    APPLICATION = "application"


BLOCK_ORDER: tuple[Block, ...] = (
    Block.RESOURCES,
    Block.INFRASTRUCTURE,
    Block.DEPENDENCIES,
    Block.APPLICATION,
)


class SignalKind(StrEnum):
    """An observed symptom of ill health."""

    CRASH_LOOP = "crash-loop"
    OOM_KILLED = "oom-killed"
    IMAGE_PULL = "image-pull"
    QUOTA_EXCEEDED = "quota-exceeded"
    UNSCHEDULABLE = "unschedulable"
    NODE_NOT_READY = "node-not-ready"
    NODE_PRESSURE = "node-pressure"
    WIDESPREAD = "widespread"
    NO_READY_ENDPOINTS = "no-ready-endpoints"
    ROLLOUT_STALLED = "rollout-stalled"
    UNAVAILABLE = "unavailable"
    NOT_READY = "not-ready"
    WARNING_EVENT = "warning-event"


class Classification(StrEnum):
    """The seed article's first fork: is this an infrastructure or a software fault?"""

    SOFTWARE = "software"
    INFRASTRUCTURE = "infrastructure"
    MIXED = "mixed"
    UNKNOWN = "unknown"


class Safety(StrEnum):
    """Rollback-safety verdict."""

    SAFE = "safe"
    RISKY = "risky"
    UNSAFE = "unsafe"


class ActionKind(StrEnum):
    """What the recommendation (and ``rollback execute``) does."""

    ROLLBACK = "rollback"
    REVERT_CONFIG = "revert-config"
    DISABLE_FLAG = "disable-flag"
    NONE = "none"
    INVESTIGATE = "investigate"


class WorkloadKind(StrEnum):
    DEPLOYMENT = "Deployment"
    STATEFULSET = "StatefulSet"
    DAEMONSET = "DaemonSet"

    @classmethod
    def parse(cls, text: str) -> WorkloadKind | None:
        """What an engineer types (``deploy``, ``deployments``, ``sts``,
        ``Deployment.apps``) -> the kind; None when it is not a workload."""
        return _WORKLOAD_ALIASES.get(text.strip().lower().split(".", 1)[0])


# kubectl's names, plural forms and short names, so a typed kind means the same
# thing in `assess --workload`, `execute KIND/NAME`, policies and alert labels.
_WORKLOAD_ALIASES: dict[str, WorkloadKind] = {
    alias: kind
    for kind, aliases in (
        (WorkloadKind.DEPLOYMENT, ("deployment", "deployments", "deploy")),
        (WorkloadKind.STATEFULSET, ("statefulset", "statefulsets", "sts")),
        (WorkloadKind.DAEMONSET, ("daemonset", "daemonsets", "ds")),
    )
    for alias in aliases
}


# ---------------------------------------------------------------------------
# References and reasons
# ---------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class ObjectRef:
    """Names one Kubernetes object; ``namespace`` is empty for cluster-scoped kinds."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"

    @property
    def short(self) -> str:
        """``kind/name`` in kubectl's lower-case form, e.g. ``deployment/web``."""
        return f"{self.kind.lower()}/{self.name}"

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name}


@dataclass(frozen=True)
class Reason:
    """One explained step of a decision.

    ``code`` is stable (tests, policies and machines match on it); ``message`` is
    a short sentence a tired engineer can act on.  ``weight`` is the signed
    contribution to the score that produced it, where that applies.
    """

    code: str
    message: str
    weight: float = 0.0

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"code": self.code, "message": self.message}
        if self.weight:
            out["weight"] = round(self.weight, 3)
        return out


# ---------------------------------------------------------------------------
# Facts extracted from the cluster (sources) and judged by the core
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """Something that happened to the system at a time.

    ``at`` is when the change took effect: a rollout's completion (or start, if it
    never completed), a ConfigMap's last write, a flag's update.  ``started_at``
    is when it began, if different.  ``affects`` lists the workloads it can
    influence (the workload itself, or the consumers of a ConfigMap or flag).
    """

    kind: ChangeKind
    target: ObjectRef
    at: datetime
    summary: str
    started_at: datetime | None = None
    before: str | None = None
    after: str | None = None
    cause: str | None = None
    revision: int | None = None
    previous_revision: int | None = None
    flag: str | None = None
    stalled: bool = False
    affects: tuple[ObjectRef, ...] = ()
    evidence: tuple[str, ...] = ()
    cluster_wide: bool = False


@dataclass(frozen=True)
class Signal:
    """An observation of ill health, placed in a triage block.

    ``at`` is when the symptom *began* (a pod's Ready=False transition, the
    first failure), not its latest occurrence: the core attributes a symptom to
    a change only if it began after the change and within an hour of it taking
    effect (core.timeline.EFFECT_WINDOW), unless ``revision`` is exactly the
    revision a rollout introduced.  None when unknown.  ``workload`` is the
    workload whose pods (or, for a Service, whose endpoints) are affected.
    """

    kind: SignalKind
    block: Block
    target: ObjectRef
    message: str
    at: datetime | None = None
    count: int = 1
    workload: ObjectRef | None = None
    revision: int | None = None


@dataclass(frozen=True)
class RevisionInfo:
    """One recorded revision of a workload (a ReplicaSet or ControllerRevision).

    ``healthy_for`` is how long this revision is known to have served with all
    replicas available (zero when that cannot be shown).  ``exists`` is False for
    a revision we know of only from history (pruned by revisionHistoryLimit).
    """

    revision: int
    source: ObjectRef
    created_at: datetime
    images: tuple[str, ...]
    template_hash: str = ""
    change_cause: str | None = None
    config_refs: tuple[ObjectRef, ...] = ()
    replicas: int = 0
    ready_replicas: int = 0
    available_replicas: int = 0
    active_since: datetime | None = None
    active_until: datetime | None = None
    healthy_for: timedelta = timedelta(0)
    unhealthy: bool = False
    exists: bool = True
    annotations: Mapping[str, str] = field(default_factory=dict)
    # Added by the sources: whether this is the workload's current revision,
    # when its rollout completed (None when unknown or never), and a short
    # sentence saying what evidence ``healthy_for``/``unhealthy`` rest on.
    current: bool = False
    completed_at: datetime | None = None
    health_note: str = ""
    # Added by the core (rollback safety); the sources fill them from the
    # revision's pod template and annotations:
    # ``migration_init_containers``: names of init containers that look like
    # schema migrations (name, image or command matching
    # ScoringSettings.migration_job_patterns); they ran whenever this revision's
    # pods started.  ``schema_version``: the schema version the revision declares
    # (annotation ``rollback.io/schema-version`` on the pod template or the
    # ReplicaSet), None when it declares none.  ``missing_config_refs``: those
    # ``config_refs`` that no longer exist in the cluster (its pods could not
    # start again).  ``desired_replicas``: the workload's replica count when this
    # revision last ran (a ReplicaSet's ``deployment.kubernetes.io/desired-replicas``
    # annotation), None when unknown.
    migration_init_containers: tuple[str, ...] = ()
    schema_version: str | None = None
    missing_config_refs: tuple[ObjectRef, ...] = ()
    desired_replicas: int | None = None


@dataclass(frozen=True)
class WorkloadFacts:
    """What the safety check needs to know about the workload to roll back."""

    ref: ObjectRef
    current_revision: int
    revisions: tuple[RevisionInfo, ...]
    resource_version: str = ""
    paused: bool = False
    replicas: int = 0
    hpa: ObjectRef | None = None
    gitops_owner: ObjectRef | None = None
    gitops_self_heal: bool = False
    gitops_automated: bool = False
    helm_release: str | None = None
    progressive_delivery: str | None = None
    progress_deadline_exceeded: bool = False
    rollout_seconds: tuple[float, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    # Added by the sources: the update strategy type (RollingUpdate, Recreate,
    # OnDelete) and how the GitOps owner was recognised (tracking annotation,
    # label, the owner's resource list).
    strategy: str = ""
    gitops_note: str = ""


@dataclass(frozen=True)
class Suspect:
    change: Change
    score: float
    reasons: tuple[Reason, ...]
    rank: int = 0


@dataclass(frozen=True)
class TriageFinding:
    """One block's result, in the seed's order."""

    block: Block
    signals: tuple[Signal, ...]
    summary: str

    @property
    def hit(self) -> bool:
        return bool(self.signals)


@dataclass(frozen=True)
class Triage:
    classification: Classification
    findings: tuple[TriageFinding, ...]
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class SafetyVerdict:
    safety: Safety
    score: int
    reasons: tuple[Reason, ...]
    to_revision: int | None = None
    time_to_restore: timedelta | None = None
    # Added by the core: the workload's current revision, the one a rollback
    # would leave (filled by core.safety.assess_rollback, not by the sources).
    from_revision: int | None = None


@dataclass(frozen=True)
class Recommendation:
    action: ActionKind
    target: ObjectRef | None
    summary: str
    reasons: tuple[Reason, ...] = ()
    to_revision: int | None = None
    flag: str | None = None
    safety: SafetyVerdict | None = None
    plan_hash: str | None = None
    preview: tuple[str, ...] = ()
    # Added by the core: for ``revert-config``, the known prior version to
    # restore, as the caller named it in ``recommend(known_config_versions=...)``
    # (a change-ledger version, or ``git:REF:PATH``).
    to_version: str | None = None


@dataclass(frozen=True)
class Scope:
    """Which part of the cluster an assessment looks at."""

    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = False
    selector: str | None = None
    workloads: tuple[ObjectRef, ...] = ()

    def describe(self) -> str:
        parts: list[str] = []
        if self.all_namespaces:
            parts.append("all namespaces")
        elif self.namespaces:
            parts.append("namespace " + ", ".join(self.namespaces))
        if self.selector:
            parts.append(f"selector {self.selector}")
        if self.workloads:
            parts.append("workloads " + ", ".join(w.short for w in self.workloads))
        return "; ".join(parts) or "default namespace"


@dataclass(frozen=True)
class Incident:
    start: datetime
    now: datetime
    lookback: timedelta
    scope: Scope

    @property
    def window_start(self) -> datetime:
        return self.start - self.lookback
