"""The assess pipeline: build the view, run the sources and the core, return an Assessment.

Three steps, each replaceable:

1. **View.** :func:`read_view` reads a live cluster with a handful of LIST
   calls made concurrently (one per kind and namespace, whole namespaces in
   one page); :func:`controller.snapshot.load_snapshots` reads files instead.
   Either way the result is a :class:`~controller.view.ClusterView`, and
   :func:`scope_view` trims it to the scope.
2. **Facts.** The sources turn the view (and git, with ``--git-repo``) into
   Changes and Signals.
3. **Judgement.** The pure core triages, ranks suspects, judges rollback
   safety for the likeliest workloads and recommends; the actions layer
   previews the plan ``rollback execute`` would run and its hash.

:class:`Assessment` holds everything, and :func:`assessment_to_json` renders
the versioned document described in docs/assessment-schema.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from controller import kube as k
from controller.core.correlate import rank_suspects
from controller.core.decide import recommend, rollback_candidates
from controller.core.safety import assess_rollback
from controller.core.timeline import in_window
from controller.core.triage import classify
from controller.durations import format_duration, format_instant
from controller.errors import ClusterError, ForbiddenError, NotFoundError, UserInputError
from controller.model import (
    Change,
    Incident,
    ObjectRef,
    Reason,
    Recommendation,
    Safety,
    SafetyVerdict,
    Scope,
    Signal,
    Suspect,
    Triage,
    WorkloadFacts,
    WorkloadKind,
)
from controller.policy.scoring import ScoringSettings
from controller.sources.config import collect_config_changes, known_config_versions
from controller.sources.flags import (
    ENABLED_ANNOTATION,
    collect_flag_changes,
    feature_flags,
    flag_sources_referenced,
    flagd_document,
    flags_of_source,
)
from controller.sources.gitops import (
    ARGO_INSTANCE_LABEL,
    ARGO_TRACKING_ID,
    FLUX_HR_NAME,
    FLUX_HR_NAMESPACE,
    FLUX_KS_NAME,
    FLUX_KS_NAMESPACE,
    collect_gitops_changes,
)
from controller.sources.helm import collect_helm_changes
from controller.sources.infra import collect_infra_changes
from controller.sources.jobs import collect_migration_changes
from controller.sources.signals import collect_signals
from controller.sources.workloads import (
    collect_workload_changes,
    find_workload,
    iter_workloads,
    workload_facts,
    workload_ref,
)
from controller.view import (
    CLUSTER_SCOPED,
    JSON,
    ClusterView,
    controller_owner,
    labels_of,
    meta,
    name_of,
    namespace_of,
)

SCHEMA_VERSION = "1.0"

# Far enough back to hold every change a view can show: the safety check
# looks at changes since the rollback target, which may predate the window.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Kinds without which there is nothing to assess: a 403 on these is fatal
# (exit 3, naming the permission); on any other kind it is reported and the
# assessment goes on without it.
CORE_KINDS = frozenset({"Deployment", "ReplicaSet", "Pod"})

# Read in one page each: a namespace's worth of objects is one round trip,
# and the request budget (<= 15 for a namespace) counts round trips.
PAGE_SIZE = 10_000

# Objects that live outside the workload's namespace but belong to it.
FOLLOWED_KINDS = frozenset(
    {"Application", "Kustomization", "HelmRelease", "FeatureFlag", "FeatureFlagSource"}
)


# ---------------------------------------------------------------------------
# Reading a live cluster
# ---------------------------------------------------------------------------

PHASE_ONE: tuple[k.Resource, ...] = (
    k.DEPLOYMENT,
    k.REPLICASET,
    k.CONTROLLERREVISION,
    k.POD,
    k.CONFIGMAP,
    k.SECRET,
    k.EVENT,
    k.RESOURCEQUOTA,
    k.HPA,
    k.JOB,
    k.SERVICE,
)


@dataclass
class _Reader:
    """Runs LIST/GET calls concurrently and files each result or failure."""

    kube: k.Kube
    view: ClusterView
    pool: ThreadPoolExecutor
    fatal: list[ClusterError] = field(default_factory=list)

    def run(self, calls: Sequence[tuple[str, Callable[[], list[JSON]]]]) -> None:
        futures = [(kind, self.pool.submit(call)) for kind, call in calls]
        for kind, future in futures:
            try:
                objects = future.result()
            except NotFoundError:
                # A 404 on a list path means the kind's API is not served: the
                # CRD is not installed.  On a GET it means that object is gone.
                self.view.unavailable.setdefault(kind, "not installed")
                continue
            except ForbiddenError as err:
                if kind in CORE_KINDS:
                    self.fatal.append(err)
                else:
                    what = f"{err.verb} {err.resource}".strip() or "read access"
                    self.view.unavailable[kind] = f"forbidden (needs {what})"
                continue
            except ClusterError as err:
                self.fatal.append(err)
                continue
            self.view.extend(objects)
            self.view.complete.add(kind)
        if self.fatal:
            raise self.fatal[0]


def read_view(kube: k.Kube, scope: Scope, now: datetime) -> ClusterView:
    """Read what assess needs from a live cluster into a view.

    Phase one lists Deployments, ReplicaSets, ControllerRevisions, Pods,
    ConfigMaps, Secrets, Events, ResourceQuotas, HPAs, Jobs, Services and
    Nodes concurrently, in each scope namespace (or cluster-wide with ``-A``),
    whole namespaces in one page; Secrets as metadata only (their values never
    leave the API server) and Events of type Warning only.  Phase two reads
    only what phase one points at: StatefulSets and DaemonSets when
    ControllerRevisions or pods are owned by one; EndpointSlices when there
    are Services; FeatureFlagSources and FeatureFlags when pods are wired to
    OpenFeature; Argo CD Applications when objects carry Argo CD tracking
    marks; Flux objects by the names their labels give.  A kind whose API is
    not served (CRD not installed) or that RBAC forbids is recorded in
    ``view.unavailable``; a forbidden core kind (Deployments, ReplicaSets,
    Pods) raises ForbiddenError.

    Cost for one namespace: 12 requests, plus one per follow-up kind present.
    """
    namespaces: list[str | None] = [None] if scope.all_namespaces else list(scope.namespaces)
    view = ClusterView(captured_at=now, source=f"cluster {kube.server}")
    with ThreadPoolExecutor(max_workers=8) as pool:
        reader = _Reader(kube, view, pool)
        calls: list[tuple[str, Callable[[], list[JSON]]]] = []
        for resource in PHASE_ONE:
            for namespace in namespaces:
                calls.append((resource.kind, _lister(kube, resource, namespace)))
        calls.append(("Node", _lister(kube, k.NODE, None)))
        reader.run(calls)
        _mark_helm_secrets(view)
        reader.run(_follow_ups(kube, view, namespaces) + _flag_follow_ups(kube, view, namespaces))
        reader.run(_flags_elsewhere(kube, view, namespaces))
    return view


def _lister(kube: k.Kube, resource: k.Resource, namespace: str | None) -> Callable[[], list[JSON]]:
    metadata_only = resource.kind == "Secret"
    # Only warnings matter to assess, and a busy namespace has thousands of
    # Normal events (every scaling step of every rollout).
    field_selector = "type=Warning" if resource is k.EVENT else None
    return lambda: kube.list(
        resource,
        namespace,
        field_selector=field_selector,
        page_size=PAGE_SIZE,
        metadata_only=metadata_only,
    )


def _getter(
    kube: k.Kube, resource: k.Resource, namespace: str, name: str
) -> Callable[[], list[JSON]]:
    return lambda: [kube.get(resource, namespace, name)]


def _mark_helm_secrets(view: ClusterView) -> None:
    # Metadata-only Secrets lose their ``type``; Helm's release Secrets are
    # recognisable by name and ``owner: helm``, so restore it for them.
    for secret in view.of_kind("Secret"):
        if (
            "type" not in secret
            and str(meta(secret).get("name", "")).startswith("sh.helm.release.v1.")
            and labels_of(secret).get("owner") == "helm"
        ):
            secret["type"] = "helm.sh/release.v1"


def _follow_ups(
    kube: k.Kube, view: ClusterView, namespaces: list[str | None]
) -> list[tuple[str, Callable[[], list[JSON]]]]:
    calls: list[tuple[str, Callable[[], list[JSON]]]] = []
    # Every StatefulSet and DaemonSet keeps ControllerRevisions and owns its
    # pods, so phase one shows whether there are any worth listing.
    owners = {
        str((controller_owner(o) or {}).get("kind"))
        for kind in ("ControllerRevision", "Pod")
        for o in view.of_kind(kind)
    }
    for resource in (k.STATEFULSET, k.DAEMONSET):
        if resource.kind in owners:
            for namespace in namespaces:
                calls.append((resource.kind, _lister(kube, resource, namespace)))
        else:
            view.complete.add(resource.kind)
    if any((s.get("spec") or {}).get("selector") for s in view.of_kind("Service")):
        for namespace in namespaces:
            calls.append(("EndpointSlice", _lister(kube, k.ENDPOINTSLICE, namespace)))
    # ControllerRevisions carry their StatefulSet's or DaemonSet's annotations.
    marked = (
        list(view.of_kind("ConfigMap"))
        + list(iter_workloads(view))
        + list(view.of_kind("ControllerRevision"))
    )
    if any(
        ARGO_TRACKING_ID in (meta(o).get("annotations") or {})
        or ARGO_INSTANCE_LABEL in labels_of(o)
        for o in marked
    ):
        calls.append(("Application", _lister(kube, k.ARGO_APPLICATION, None)))
    flux: set[tuple[str, str, str]] = set()
    for obj in marked:
        labels = labels_of(obj)
        if FLUX_KS_NAME in labels:
            flux.add(
                (
                    "Kustomization",
                    labels.get(FLUX_KS_NAMESPACE, namespace_of(obj)),
                    labels[FLUX_KS_NAME],
                )
            )
        if FLUX_HR_NAME in labels:
            flux.add(
                (
                    "HelmRelease",
                    labels.get(FLUX_HR_NAMESPACE, namespace_of(obj)),
                    labels[FLUX_HR_NAME],
                )
            )
    for kind, namespace, name in sorted(flux):
        resource = k.FLUX_KUSTOMIZATION if kind == "Kustomization" else k.FLUX_HELMRELEASE
        calls.append((kind, _getter(kube, resource, namespace, name)))
    return calls


def _flag_follow_ups(
    kube: k.Kube, view: ClusterView, namespaces: list[str | None]
) -> list[tuple[str, Callable[[], list[JSON]]]]:
    """FeatureFlagSources and FeatureFlags, when pods in scope are wired to OpenFeature.

    A FeatureFlag nobody in scope evaluates cannot have broken the scope, so
    without the annotations no flag kinds are read at all.
    """
    sources = flag_sources_referenced(view)
    wired = sources or any(
        (meta(p).get("annotations") or {}).get(ENABLED_ANNOTATION) == "true"
        for p in view.of_kind("Pod")
    )
    if not wired:
        return []
    calls: list[tuple[str, Callable[[], list[JSON]]]] = []
    for namespace in namespaces:
        calls.append(("FeatureFlagSource", _lister(kube, k.FEATUREFLAGSOURCE, namespace)))
        calls.append(("FeatureFlag", _lister(kube, k.FEATUREFLAG, namespace)))
    if None not in namespaces:
        for ns in sorted({s.namespace for s in sources} - {n for n in namespaces if n}):
            calls.append(("FeatureFlagSource", _getter_all(kube, k.FEATUREFLAGSOURCE, ns, sources)))
    return calls


def _getter_all(
    kube: k.Kube, resource: k.Resource, namespace: str, refs: Iterable[ObjectRef]
) -> Callable[[], list[JSON]]:
    names = sorted(r.name for r in refs if r.namespace == namespace)
    return lambda: [kube.get(resource, namespace, name) for name in names]


def _flags_elsewhere(
    kube: k.Kube, view: ClusterView, namespaces: list[str | None]
) -> list[tuple[str, Callable[[], list[JSON]]]]:
    """GETs for FeatureFlags that sources in scope name in other namespaces."""
    if None in namespaces:
        return []
    wanted = {
        flag
        for source in flag_sources_referenced(view)
        for flag in flags_of_source(view, source)
        if flag.namespace not in namespaces
        and view.get("FeatureFlag", flag.namespace, flag.name) is None
    }
    return [
        ("FeatureFlag", _getter(kube, k.FEATUREFLAG, ref.namespace, ref.name))
        for ref in sorted(wanted)
    ]


# ---------------------------------------------------------------------------
# Scope
# ---------------------------------------------------------------------------


def scope_view(view: ClusterView, scope: Scope) -> ClusterView:
    """The part of ``view`` in ``scope``'s namespaces (all of it for ``-A`` or no namespaces).

    Cluster-scoped objects stay, and so do GitOps and feature-flag objects in
    other namespaces: they belong to the workloads in scope.
    """
    if scope.all_namespaces or not scope.namespaces:
        return view
    keep = set(scope.namespaces)
    if all(
        namespace_of(o) in keep
        or o.get("kind") in CLUSTER_SCOPED
        or o.get("kind") in FOLLOWED_KINDS
        for o in view.all_objects()
    ):
        return view  # a live read of these namespaces: nothing to trim
    out = ClusterView(captured_at=view.captured_at, source=view.source)
    out.ignored = view.ignored
    out.unavailable = dict(view.unavailable)
    out.complete = set(view.complete)
    for obj in view.all_objects():
        kind = str(obj.get("kind"))
        if kind in CLUSTER_SCOPED or kind in FOLLOWED_KINDS or namespace_of(obj) in keep:
            out.add(obj)
    return out


def resolve_focus(view: ClusterView, scope: Scope) -> tuple[ObjectRef, ...]:
    """The workloads ``--workload`` and ``-l`` name, checked against the view.

    Raises UserInputError (exit 2) for a ``--workload`` that is not there, in
    one line that names where it looked.
    """
    focus: list[ObjectRef] = []
    namespaces = scope.namespaces or tuple(sorted({namespace_of(w) for w in iter_workloads(view)}))
    for wanted in scope.workloads:
        parsed = WorkloadKind.parse(wanted.kind)
        if parsed is None:
            raise UserInputError(
                f"--workload {wanted.kind}/{wanted.name}: kind must be deployment, "
                "statefulset or daemonset"
            )
        kind = parsed.value
        candidates = [wanted.namespace] if wanted.namespace else list(namespaces)
        found = [
            ObjectRef(kind, ns, wanted.name)
            for ns in candidates
            if find_workload(view, ObjectRef(kind, ns, wanted.name)) is not None
        ]
        if not found:
            where = ", ".join(candidates) or "the snapshot"
            raise UserInputError(f"no {kind.lower()}/{wanted.name} in namespace {where}")
        focus.extend(found)
    if scope.selector:
        matcher = _selector_matcher(scope.selector)
        focus.extend(workload_ref(w) for w in iter_workloads(view) if matcher(labels_of(w)))
    return tuple(dict.fromkeys(focus))


def _selector_matcher(selector: str) -> Callable[[Mapping[str, str]], bool]:
    """A label selector (``a=b,c!=d,e,!f,g in (x,y),h notin (z)``) as a predicate."""
    import re

    terms: list[tuple[str, str, frozenset[str]]] = []
    for raw in re.split(r",(?![^()]*\))", selector):
        term = raw.strip()
        if not term:
            continue
        if m := re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", term):
            key, op, values = m.groups()
            terms.append((key, op, frozenset(v.strip() for v in values.split(","))))
        elif m := re.fullmatch(r"([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)", term):
            key, op, value = m.groups()
            terms.append((key, "notin" if op == "!=" else "in", frozenset({value})))
        elif m := re.fullmatch(r"(!?)([\w./-]+)", term):
            negate, key = m.groups()
            terms.append((key, "absent" if negate else "present", frozenset()))
        else:
            raise UserInputError(f"-l {selector}: cannot read {term!r} as a label selector term")

    def matches(labels: Mapping[str, str]) -> bool:
        for key, op, values in terms:
            value = labels.get(key)
            ok = {
                "in": value in values,
                "notin": value not in values,
                "present": key in labels,
                "absent": key not in labels,
            }[op]
            if not ok:
                return False
        return True

    return matches


# ---------------------------------------------------------------------------
# The assessment
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Assessment:
    """One incident, assessed: what changed, what hurts, who is suspect, what to do."""

    incident: Incident
    source: str
    captured_at: datetime
    changes: tuple[Change, ...]
    signals: tuple[Signal, ...]
    triage: Triage
    suspects: tuple[Suspect, ...]
    recommendation: Recommendation
    safety: Mapping[ObjectRef, SafetyVerdict]
    focus: tuple[ObjectRef, ...] = ()
    unavailable: Mapping[str, str] = field(default_factory=dict)
    ignored: Mapping[str, int] = field(default_factory=dict)
    api_requests: int | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Preview:
    """What ``rollback execute`` would do for the recommendation, and its hash."""

    plan_hash: str | None
    lines: tuple[str, ...]


PlanPreviewer = Callable[[Recommendation, ClusterView, datetime], Preview | None]


def collect_changes(
    view: ClusterView,
    now: datetime,
    scoring: ScoringSettings,
    git_repos: Sequence[str] = (),
) -> list[Change]:
    """Every change the sources find in the view (and git), oldest first."""
    until = now
    since = _EPOCH
    patterns = scoring.migration_job_patterns
    changes: list[Change] = []
    changes += collect_workload_changes(view, since, until, now, patterns)
    changes += collect_config_changes(view, since, until)
    changes += collect_flag_changes(view, since, until)
    changes += collect_helm_changes(view, since, until)
    changes += collect_gitops_changes(view, since, until)
    changes += collect_migration_changes(view, since, until, patterns)
    changes += collect_infra_changes(view, since, until)
    if git_repos:
        from controller.sources.git import WorkloadHistory, collect_git_changes

        histories = [
            WorkloadHistory(workload_ref(w), workload_facts(view, w, now, patterns).revisions)
            for w in iter_workloads(view)
        ]
        for repo in git_repos:
            changes += collect_git_changes(repo, since, until, histories, scoring.migration_paths)
    return sorted(changes, key=lambda c: (c.at, str(c.target), c.flag or ""))


def assess(
    view: ClusterView,
    incident: Incident,
    scoring: ScoringSettings,
    *,
    git_repos: Sequence[str] = (),
    api_requests: int | None = None,
    previewer: PlanPreviewer | None = None,
) -> Assessment:
    """Run the sources and the core over ``view`` for ``incident``.

    Reads git when ``git_repos`` are given; otherwise pure over the view.
    """
    view = scope_view(view, incident.scope)
    focus = resolve_focus(view, incident.scope)
    now = incident.now
    changes = collect_changes(view, now, scoring, git_repos)
    signals = collect_signals(view, incident.window_start, now)
    triage = classify(signals, changes, incident)
    facts: dict[ObjectRef, WorkloadFacts] = {}
    for workload in iter_workloads(view):
        ref = workload_ref(workload)
        facts[ref] = workload_facts(view, workload, now, scoring.migration_job_patterns)
    suspects = rank_suspects(changes, signals, incident, scoring, focus, workloads=facts)
    safety = {
        ref: assess_rollback(facts[ref], changes, incident, scoring)
        for ref in rollback_candidates(suspects)
        if ref in facts
    }
    recommendation = recommend(
        triage,
        suspects,
        safety,
        incident,
        known_config_versions=known_config_versions(view),
        flag_off_variants=flag_off_variants(view),
    )
    preview = (previewer or preview_plan)(recommendation, view, now)
    if preview is not None:
        recommendation = _with_preview(recommendation, preview)
    shown = tuple(c for c in changes if in_window(c, incident))
    notes = []
    if not shown:
        notes.append(
            f"Nothing changed in scope in the {format_duration(incident.lookback)} "
            "before the incident start."
        )
    return Assessment(
        incident=incident,
        source=view.source,
        captured_at=view.captured_at,
        changes=tuple(reversed(shown)),
        signals=tuple(signals),
        triage=triage,
        suspects=suspects,
        recommendation=recommendation,
        safety=safety,
        focus=focus,
        unavailable=dict(sorted(view.unavailable.items())),
        ignored=dict(sorted(view.ignored.items())),
        api_requests=api_requests,
        notes=tuple(notes),
    )


def preview_plan(rec: Recommendation, view: ClusterView, now: datetime) -> Preview | None:
    """The plan ``rollback execute`` would run for ``rec`` (from the same view) and its hash.

    Execute builds its plan the same way from a fresh read, so ``--plan-hash``
    with this hash runs only if nothing changed in between.
    """
    from controller.actions.preview import plan_for_recommendation, preview_lines

    plan = plan_for_recommendation(rec, view, now)
    if plan is None:
        return None
    return Preview(plan_hash=plan.hash, lines=preview_lines(plan))


def _with_preview(rec: Recommendation, preview: Preview) -> Recommendation:
    from dataclasses import replace

    return replace(rec, plan_hash=preview.plan_hash, preview=preview.lines)


def flag_off_variants(view: ClusterView) -> dict[tuple[ObjectRef, str], str]:
    """For every flag in the view whose off variant is unambiguous: (resource, flag) -> variant.

    The rule is the execute command's (a variant named off/false/disabled, or
    the one variant whose value is false), so assess never recommends a
    disable that execute would refuse.
    """
    from controller.actions.flags import off_variant

    out: dict[tuple[ObjectRef, str], str] = {}
    sources: list[tuple[ObjectRef, dict[str, Any]]] = []
    for obj in view.of_kind("FeatureFlag"):
        ref = ObjectRef("FeatureFlag", namespace_of(obj), str(meta(obj).get("name")))
        sources.append((ref, feature_flags(obj)))
    for cm in view.of_kind("ConfigMap"):
        found = flagd_document(cm)
        if found:
            sources.append(
                (ObjectRef("ConfigMap", namespace_of(cm), str(meta(cm).get("name"))), found[1])
            )
    for ref, flags in sources:
        for key, spec in flags.items():
            if not isinstance(spec, dict):
                continue
            try:
                out[(ref, str(key))] = off_variant(spec.get("variants"), str(key))
            except UserInputError:
                continue
    return out


def make_incident(start: datetime, now: datetime, lookback: timedelta, scope: Scope) -> Incident:
    if start > now:
        raise UserInputError(
            f"--incident-start {format_instant(start)} is after the evaluation time "
            f"{format_instant(now)}"
        )
    return Incident(start=start, now=now, lookback=lookback, scope=scope)


def judge_rollback(
    kube: k.Kube,
    workload: JSON,
    incident: Incident,
    scoring: ScoringSettings,
    git_repos: Sequence[str] = (),
    *,
    to_revision: int | None = None,
) -> SafetyVerdict:
    """The rollback-safety verdict for one workload, exactly as assess would give it.

    Reads the workload's namespace the way assess does (a dozen LISTs), so an
    explicit ``rollback execute deployment/NAME`` is judged by the same checks:
    migrations, config and flag drift, GitOps, capacity.  With ``to_revision``
    the engineer's choice is judged instead of the last known-good.  If the
    namespace cannot be read (RBAC), the verdict is risky with that reason: an
    unjudged rollback is not a safe one.
    """
    ns = namespace_of(workload)
    try:
        view = read_view(kube, Scope(namespaces=(ns,)), incident.now)
    except ClusterError as err:
        return SafetyVerdict(
            Safety.RISKY,
            0,
            (Reason("safety.not-judged", f"the safety check could not read {ns}: {err}"),),
        )
    obj = view.get(str(workload.get("kind")), ns, name_of(workload)) or workload
    facts = workload_facts(view, obj, incident.now, scoring.migration_job_patterns)
    changes = collect_changes(view, incident.now, scoring, git_repos)
    return assess_rollback(facts, changes, incident, scoring, to_revision=to_revision)


# ---------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------


def assessment_to_json(a: Assessment) -> dict[str, Any]:
    """The versioned document of docs/assessment-schema.md (schemaVersion 1.0)."""
    rec = a.recommendation
    safety = rec.safety
    incident = a.incident
    source_type, _, source_name = a.source.partition(" ")
    return {
        "schemaVersion": SCHEMA_VERSION,
        "kind": "Assessment",
        "source": {
            "type": source_type,
            "name": source_name,
            "capturedAt": format_instant(a.captured_at),
        },
        "scope": _scope_json(incident.scope),
        "incident": {
            "start": format_instant(incident.start),
            "windowStart": format_instant(incident.window_start),
            "lookback": format_duration(incident.lookback),
            "evaluatedAt": format_instant(incident.now),
        },
        "focus": [r.to_json() for r in a.focus],
        "classification": a.triage.classification.value,
        "triage": {
            "classification": a.triage.classification.value,
            "reasons": [r.to_json() for r in a.triage.reasons],
            "blocks": [
                {
                    "block": f.block.value,
                    "hit": f.hit,
                    "summary": f.summary,
                    "signals": [_signal_json(s) for s in f.signals],
                }
                for f in a.triage.findings
            ],
        },
        "suspects": [_suspect_json(s) for s in a.suspects],
        "recommendation": {
            "action": rec.action.value,
            "target": rec.target.to_json() if rec.target else None,
            "summary": rec.summary,
            "toRevision": rec.to_revision,
            "toVersion": rec.to_version,
            "flag": rec.flag,
            "safety": safety.safety.value if safety else None,
            "safetyScore": safety.score if safety else None,
            "timeToRestore": format_duration(safety.time_to_restore)
            if safety and safety.time_to_restore is not None
            else None,
            "reasons": [r.to_json() for r in rec.reasons],
            "planHash": rec.plan_hash,
            "preview": list(rec.preview),
        },
        "changes": [_change_json(c) for c in a.changes],
        "signals": [_signal_json(s) for s in a.signals],
        "unavailable": dict(a.unavailable),
        "ignored": dict(a.ignored),
        "apiRequests": a.api_requests,
        "notes": list(a.notes),
    }


def _scope_json(scope: Scope) -> dict[str, Any]:
    return {
        "namespaces": list(scope.namespaces),
        "allNamespaces": scope.all_namespaces,
        "selector": scope.selector,
        "workloads": [r.to_json() for r in scope.workloads],
    }


def _change_json(c: Change) -> dict[str, Any]:
    return {
        "kind": c.kind.value,
        "target": c.target.to_json(),
        "flag": c.flag,
        "at": format_instant(c.at),
        "startedAt": format_instant(c.started_at) if c.started_at else None,
        "summary": c.summary,
        "before": c.before,
        "after": c.after,
        "cause": c.cause,
        "revision": c.revision,
        "previousRevision": c.previous_revision,
        "stalled": c.stalled,
        "clusterWide": c.cluster_wide,
        "affects": [r.to_json() for r in c.affects],
        "evidence": list(c.evidence),
    }


def _suspect_json(s: Suspect) -> dict[str, Any]:
    c = s.change
    return {
        "rank": s.rank,
        "kind": c.kind.value,
        "target": c.target.to_json(),
        "flag": c.flag,
        "at": format_instant(c.at),
        "score": round(s.score, 3),
        "summary": c.summary,
        "revision": c.revision,
        "previousRevision": c.previous_revision,
        "before": c.before,
        "after": c.after,
        "reasons": [r.to_json() for r in s.reasons],
        "evidence": list(c.evidence),
    }


def _signal_json(s: Signal) -> dict[str, Any]:
    return {
        "kind": s.kind.value,
        "block": s.block.value,
        "target": s.target.to_json(),
        "workload": s.workload.to_json() if s.workload else None,
        "revision": s.revision,
        "at": format_instant(s.at) if s.at else None,
        "count": s.count,
        "message": s.message,
    }


def dumps(a: Assessment) -> str:
    """The assessment as indented JSON (orjson when installed: several times faster on a
    namespace with thousands of changes), keys in schema order, UTF-8 as is."""
    document = assessment_to_json(a)
    try:
        import orjson
    except ImportError:
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
