"""Rollback safety: to which revision, and can we go there quickly and safely?

``assess_rollback`` picks the **last known-good** revision (it served healthy
for at least ``ScoringSettings.known_good_after``), not merely the previous
one, and says why each newer revision was skipped.  Then every check becomes a
:class:`~controller.model.Reason` with a signed weight added to a base score:

* score = clamp(``BASE_SCORE`` + sum of weights, 0, 100);
* **unsafe** when a check blocks (no target, a schema migration since the
  target, config the target reads is gone) or the score is below
  ``UNSAFE_BELOW``; the score is then capped at ``UNSAFE_BELOW - 1``;
* **risky** when a check needs a human decision (GitOps will revert it, paused,
  progressive delivery owns it, config drift, a migration that may have run,
  a target that served only briefly) or the score is below ``SAFE_AT``; the
  score is then capped at ``SAFE_AT - 1``;
* **safe** otherwise (score ``SAFE_AT``..100).

"Since the target" means after the moment the target stopped being proven:
a change counts unless the target went on serving healthy for at least
``known_good_after`` after it (a migration that ran five minutes before the
target was replaced is not proven compatible with it).

docs/scoring.md lists every check with its weight.  Pure: no side effects; the
clock is ``incident.now``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum

from controller.core.timeline import ROLLOUT_KINDS, WORKLOAD_KINDS, began
from controller.durations import format_duration
from controller.model import (
    Change,
    ChangeKind,
    Incident,
    Reason,
    RevisionInfo,
    Safety,
    SafetyVerdict,
    WorkloadFacts,
)
from controller.policy.scoring import ScoringSettings

BASE_SCORE = 60
SAFE_AT = 70
UNSAFE_BELOW = 40

# Signed weights of the checks (points on the 0..100 scale).
W_KNOWN_GOOD = 40  # the target served healthy for at least known_good_after
W_BRIEFLY_HEALTHY = 10  # no known-good revision; this one served healthy, but briefly
W_NO_TARGET = -60
W_CONFIG_MISSING = -50
W_MIGRATION = -50  # the schema moved on since the target
W_MIGRATION_POSSIBLE = -25  # the schema may have moved on
W_CONFIG_DRIFT = -15
W_FLAG_DRIFT = -5  # per flag, at most two
W_GITOPS_SELF_HEAL = -25
W_GITOPS_AUTOMATED = -20
W_GITOPS_MANUAL = -5
W_HELM = -5
W_PAUSED = -20
W_PROGRESSIVE = -25
W_REPLICAS_DIFFER = -10
W_DEPENDENT = -5  # per workload deployed after the target, at most three
W_DATA_HOURS = -5  # the new revision has served for an hour or more
W_DATA_DAY = -10  # ... for a day or more
W_NEVER_SERVED = 5  # the new revision never became available: nothing written by it
W_ON_DELETE = -20
W_RECREATE = -5

REPLICA_RATIO = 2.0  # "very different": one count at least twice the other

# Time-to-restore estimate when no rollout was observed: one wave of pods
# becoming Ready takes about this long (image cached, probes passing).
POD_READY_SECONDS = 30.0
# Recreate stops every pod before starting new ones (default grace period).
TERMINATION_SECONDS = 30.0

DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"


class _Severity(IntEnum):
    INFO = 0
    CAUTION = 1
    RISKY = 2
    BLOCKER = 3


@dataclass(frozen=True)
class _Check:
    severity: _Severity
    reason: Reason


def _check(severity: _Severity, code: str, message: str, weight: float = 0.0) -> _Check:
    return _Check(severity, Reason(code, message, weight))


def assess_rollback(
    workload: WorkloadFacts,
    changes: Sequence[Change],
    incident: Incident,
    scoring: ScoringSettings,
    to_revision: int | None = None,
) -> SafetyVerdict:
    """Judge rolling ``workload`` back to its last known-good revision.

    With ``to_revision`` (an engineer's explicit choice), judge that revision
    instead: every check runs the same way, and a choice the evidence does not
    support (unhealthy, never available, too briefly healthy, pruned) says so.

    Pure: no side effects; the clock is ``incident.now``.  ``changes`` are all
    changes the sources found (config, flags, migrations, other deploys); this
    function picks those that matter to the workload and the target.
    """
    if to_revision is None:
        target, checks = _choose_target(workload, scoring)
    else:
        target, checks = _chosen_target(workload, scoring, to_revision)
    if target is None:
        return _verdict(checks, None, None, workload.current_revision)
    current = _revision(workload, workload.current_revision)
    since = _unproven_since(workload, target, scoring, incident)
    left = _left_service(workload, target, incident)
    relevant = [c for c in changes if c.at <= incident.now]
    checks += _migration_checks(workload, target, current, relevant, since)
    checks += _config_checks(target, relevant, since)
    checks += _flag_checks(workload, relevant, since)
    checks += _owner_checks(workload)
    checks += _capacity_checks(workload, target)
    checks += _dependent_checks(workload, relevant, left)
    checks += _data_checks(workload, current, incident)
    restore, restore_checks = _estimate_restore_time(workload)
    checks += restore_checks
    return _verdict(checks, target.revision, restore, workload.current_revision)


# ---------------------------------------------------------------------------
# The target
# ---------------------------------------------------------------------------


def _choose_target(
    workload: WorkloadFacts, scoring: ScoringSettings
) -> tuple[RevisionInfo | None, list[_Check]]:
    """The newest known-good revision other than the current one, and the reasons.

    Newest first, a revision is skipped when it is the current one (silently),
    is marked unhealthy, never became available (no healthy time), served
    healthy for less than ``known_good_after`` (remembered as a fallback), or
    was pruned (its ReplicaSet or ControllerRevision is gone).  With no
    known-good revision the newest existing briefly-healthy one is the target
    (risky); with none at all there is no target (unsafe: ``target.pruned``
    when pruned revisions might have qualified, else ``target.none``).  Pure.
    """
    checks: list[_Check] = []
    fallback: RevisionInfo | None = None
    pruned: list[RevisionInfo] = []
    policy = format_duration(scoring.known_good_after)
    for info in sorted(workload.revisions, key=lambda r: r.revision, reverse=True):
        if info.revision == workload.current_revision or info.current:
            continue
        name = f"revision {info.revision}"
        if info.unhealthy:
            note = f": {info.health_note}" if info.health_note else ""
            checks.append(
                _check(_Severity.INFO, "target.skip-unhealthy", f"{name} skipped: unhealthy{note}")
            )
            continue
        if not info.exists:
            # Known only from history: its template is gone, whatever its health was.
            checks.append(
                _check(
                    _Severity.INFO,
                    "target.skip-pruned",
                    f"{name} skipped: pruned by the revision history limit",
                )
            )
            pruned.append(info)
            continue
        if info.healthy_for <= timedelta(0):
            checks.append(
                _check(
                    _Severity.INFO,
                    "target.skip-never-available",
                    f"{name} skipped: it never became available",
                )
            )
            continue
        if info.healthy_for < scoring.known_good_after:
            checks.append(
                _check(
                    _Severity.INFO,
                    "target.skip-too-brief",
                    f"{name} skipped: healthy for only {format_duration(info.healthy_for)}"
                    f" (known-good needs {policy})",
                )
            )
            fallback = fallback or info
            continue
        checks.append(
            _check(
                _Severity.INFO,
                "target.known-good",
                f"{name} is the last known-good: it served healthy for"
                f" {format_duration(info.healthy_for)} (policy: {policy})",
                W_KNOWN_GOOD,
            )
        )
        checks.append(_exists_check(info))
        return info, checks
    if fallback is not None:
        checks.append(
            _check(
                _Severity.RISKY,
                "target.briefly-healthy",
                f"no revision served healthy for {policy}; revision {fallback.revision} served"
                f" only {format_duration(fallback.healthy_for)}: weak evidence",
                W_BRIEFLY_HEALTHY,
            )
        )
        checks.append(_exists_check(fallback))
        return fallback, checks
    if pruned:
        names = ", ".join(str(r.revision) for r in pruned)
        checks.append(
            _check(
                _Severity.BLOCKER,
                "target.pruned",
                f"the earlier revisions that could be targets were pruned ({names}): their"
                " templates are gone, so there is nothing to roll back to",
                W_NO_TARGET,
            )
        )
        return None, checks
    checks.append(
        _check(
            _Severity.BLOCKER,
            "target.none",
            "no earlier revision ever served healthy: there is nothing safe to roll back to",
            W_NO_TARGET,
        )
    )
    return None, checks


def _chosen_target(
    workload: WorkloadFacts, scoring: ScoringSettings, number: int
) -> tuple[RevisionInfo | None, list[_Check]]:
    """The revision an engineer named, with what the evidence says about it.  Pure."""
    info = _revision(workload, number)
    name = f"revision {number}"
    policy = format_duration(scoring.known_good_after)
    if info is None or not info.exists:
        why = "is not in the workload's history" if info is None else "was pruned"
        return None, [
            _check(
                _Severity.BLOCKER,
                "target.chosen-missing",
                f"{name} {why}: there is no template to roll back to",
                W_NO_TARGET,
            )
        ]
    if info.revision == workload.current_revision or info.current:
        return None, [
            _check(
                _Severity.BLOCKER,
                "target.chosen-current",
                f"{name} is the current revision: rolling back to it changes nothing",
                W_NO_TARGET,
            )
        ]
    if info.unhealthy:
        # Evidence against it: unsafe by default; break-glass exists for the
        # engineer who knows the failure was elsewhere.
        note = f": {info.health_note}" if info.health_note else ""
        check = _check(
            _Severity.BLOCKER,
            "target.chosen-unhealthy",
            f"{name} was chosen, but it was unhealthy{note}",
            W_NO_TARGET,
        )
    elif info.healthy_for <= timedelta(0):
        # No evidence either way (it may have been replaced within seconds).
        check = _check(
            _Severity.RISKY,
            "target.chosen-never-available",
            f"{name} was chosen, but it never became available: no evidence it works",
        )
    elif info.healthy_for < scoring.known_good_after:
        check = _check(
            _Severity.RISKY,
            "target.chosen-briefly-healthy",
            f"{name} was chosen; it served healthy for only"
            f" {format_duration(info.healthy_for)} (known-good needs {policy}): weak evidence",
            W_BRIEFLY_HEALTHY,
        )
    else:
        check = _check(
            _Severity.INFO,
            "target.chosen-known-good",
            f"{name} was chosen; it served healthy for {format_duration(info.healthy_for)}"
            f" (policy: {policy})",
            W_KNOWN_GOOD,
        )
    return info, [check, _exists_check(info)]


def _exists_check(info: RevisionInfo) -> _Check:
    return _check(
        _Severity.INFO,
        "target.exists",
        f"{info.source.kind} {info.source.name} still holds revision {info.revision}'s template",
    )


def _revision(workload: WorkloadFacts, number: int) -> RevisionInfo | None:
    return next((r for r in workload.revisions if r.revision == number), None)


def _left_service(workload: WorkloadFacts, target: RevisionInfo, incident: Incident) -> datetime:
    """When the target stopped being the serving revision (now, if it still is)."""
    if target.active_until is not None:
        return target.active_until
    later = [r for r in workload.revisions if r.revision > target.revision]
    starts = [r.active_since or r.created_at for r in later]
    return min(starts) if starts else incident.now


def _unproven_since(
    workload: WorkloadFacts, target: RevisionInfo, scoring: ScoringSettings, incident: Incident
) -> datetime:
    """Changes after this moment were not proven compatible with the target."""
    return _left_service(workload, target, incident) - scoring.known_good_after


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------


def _migration_checks(
    workload: WorkloadFacts,
    target: RevisionInfo,
    current: RevisionInfo | None,
    changes: Sequence[Change],
    since: datetime,
) -> list[_Check]:
    checks: list[_Check] = []
    own = workload.ref
    for change in changes:
        if change.kind is not ChangeKind.MIGRATION or change.at <= since:
            continue
        linked = change.target == own or own in change.affects
        unlinked = not change.affects and change.target.namespace == own.namespace
        what = (
            f"{change.target.short} ({change.summary})" if change.summary else change.target.short
        )
        if linked and not change.stalled:
            checks.append(
                _check(
                    _Severity.BLOCKER,
                    "migration.since-target",
                    f"migration {what} ran after revision {target.revision} last proved"
                    " itself: the old code may not read the new schema; roll forward instead",
                    W_MIGRATION,
                )
            )
        elif linked:
            checks.append(
                _check(
                    _Severity.RISKY,
                    "migration.incomplete",
                    f"migration {what} did not complete: it may have applied part of its"
                    " changes; check the schema before rolling back",
                    W_MIGRATION_POSSIBLE,
                )
            )
        elif unlinked:
            checks.append(
                _check(
                    _Severity.RISKY,
                    "migration.unlinked",
                    f"migration {what} ran in {own.namespace} since revision"
                    f" {target.revision}; it may touch this workload's schema",
                    W_MIGRATION_POSSIBLE,
                )
            )
    if current is not None and current.schema_version is not None:
        if target.schema_version is not None and target.schema_version != current.schema_version:
            checks.append(
                _check(
                    _Severity.BLOCKER,
                    "migration.schema-version",
                    f"schema version moved from {target.schema_version} (revision"
                    f" {target.revision}) to {current.schema_version}: rolling back the code"
                    " does not roll back the schema",
                    W_MIGRATION,
                )
            )
        elif target.schema_version is None:
            checks.append(
                _check(
                    _Severity.RISKY,
                    "migration.schema-version-unknown",
                    f"revision {workload.current_revision} declares schema version"
                    f" {current.schema_version}; revision {target.revision} declares none",
                    W_MIGRATION_POSSIBLE,
                )
            )
    runners = [
        r
        for r in workload.revisions
        if r.revision > target.revision and r.migration_init_containers
    ]
    if runners:
        names = ", ".join(
            f"revision {r.revision} ({', '.join(r.migration_init_containers)})" for r in runners
        )
        checks.append(
            _check(
                _Severity.RISKY,
                "migration.init-container",
                f"migration init containers ran at pod start since revision {target.revision}:"
                f" {names}; they may have changed the schema",
                W_MIGRATION_POSSIBLE,
            )
        )
    return checks


def _config_checks(
    target: RevisionInfo, changes: Sequence[Change], since: datetime
) -> list[_Check]:
    checks: list[_Check] = []
    for ref in target.missing_config_refs:
        checks.append(
            _check(
                _Severity.BLOCKER,
                "config.missing",
                f"revision {target.revision} reads {ref.short}, which no longer exists:"
                " its pods would not start",
                W_CONFIG_MISSING,
            )
        )
    drifted = sorted(
        {
            c.target
            for c in changes
            if c.kind is ChangeKind.CONFIG and c.target in target.config_refs and c.at > since
        }
    )
    if drifted:
        names = ", ".join(ref.short for ref in drifted)
        checks.append(
            _check(
                _Severity.RISKY,
                "config.drift",
                f"{names} changed since revision {target.revision} last proved itself:"
                " a template rollback alone does not restore that config",
                W_CONFIG_DRIFT,
            )
        )
    return checks


def _flag_checks(
    workload: WorkloadFacts, changes: Sequence[Change], since: datetime
) -> list[_Check]:
    flags = sorted(
        {
            c.flag or c.target.name
            for c in changes
            if c.kind is ChangeKind.FLAG and workload.ref in c.affects and c.at > since
        }
    )
    if not flags:
        return []
    return [
        _check(
            _Severity.CAUTION,
            "flags.changed",
            f"flags it evaluates changed since: {', '.join(flags)}; the old code meets"
            " today's flag values",
            W_FLAG_DRIFT * min(len(flags), 2),
        )
    ]


# Flux controllers reconcile on an interval whatever the sync settings: they
# always undo a manual change, like Argo CD's selfHeal.
_ALWAYS_RECONCILING = frozenset({"Kustomization", "HelmRelease"})


def _owner_checks(workload: WorkloadFacts) -> list[_Check]:
    checks: list[_Check] = []
    owner = workload.gitops_owner
    if owner is not None:
        name = owner.short
        if workload.gitops_self_heal or owner.kind in _ALWAYS_RECONCILING:
            checks.append(
                _check(
                    _Severity.RISKY,
                    "gitops.self-heal",
                    f"{name} reverts manual changes within seconds: suspend it first or"
                    " roll back in git",
                    W_GITOPS_SELF_HEAL,
                )
            )
        elif workload.gitops_automated:
            checks.append(
                _check(
                    _Severity.RISKY,
                    "gitops.automated",
                    f"{name} syncs automatically: its next sync reverts a manual rollback;"
                    " suspend it or roll back in git",
                    W_GITOPS_AUTOMATED,
                )
            )
        else:
            checks.append(
                _check(
                    _Severity.CAUTION,
                    "gitops.manual-sync",
                    f"{name} tracks it: it will show OutOfSync and a later sync undoes the"
                    " rollback unless git is rolled back too",
                    W_GITOPS_MANUAL,
                )
            )
    if workload.helm_release:
        checks.append(
            _check(
                _Severity.CAUTION,
                "helm.managed",
                f"Helm release {workload.helm_release} manages it: prefer `helm rollback"
                f" {workload.helm_release}` so the release history stays true",
                W_HELM,
            )
        )
    if workload.paused:
        checks.append(
            _check(
                _Severity.RISKY,
                "paused",
                "its rollout is paused: a rollback changes nothing until it is resumed",
                W_PAUSED,
            )
        )
    if workload.progressive_delivery:
        checks.append(
            _check(
                _Severity.RISKY,
                "progressive-delivery",
                f"{workload.progressive_delivery} owns its rollout: abort or undo there;"
                " a direct template rollback fights it",
                W_PROGRESSIVE,
            )
        )
    return checks


def _target_replicas(target: RevisionInfo) -> int | None:
    if target.desired_replicas is not None:
        return target.desired_replicas
    raw = target.annotations.get(DESIRED_REPLICAS)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _capacity_checks(workload: WorkloadFacts, target: RevisionInfo) -> list[_Check]:
    checks: list[_Check] = []
    if workload.hpa is not None:
        checks.append(
            _check(
                _Severity.INFO,
                "hpa.present",
                f"{workload.hpa.short} owns the replica count: the rollback keeps the"
                f" current {workload.replicas}",
            )
        )
    then = _target_replicas(target)
    now = workload.replicas
    if then and now and max(then, now) / min(then, now) >= REPLICA_RATIO:
        checks.append(
            _check(
                _Severity.CAUTION,
                "replicas.differ",
                f"revision {target.revision} ran with {then} replicas, the workload now has"
                f" {now}: check that capacity fits",
                W_REPLICAS_DIFFER,
            )
        )
    return checks


def _dependent_checks(
    workload: WorkloadFacts, changes: Sequence[Change], left: datetime
) -> list[_Check]:
    own = workload.ref
    others = sorted(
        {
            c.target
            for c in changes
            if c.kind in ROLLOUT_KINDS
            and c.target != own
            and c.target.kind in WORKLOAD_KINDS
            and c.target.namespace == own.namespace
            and began(c) >= left
        }
    )
    if not others:
        return []
    names = ", ".join(ref.short for ref in others[:3])
    more = f" and {len(others) - 3} more" if len(others) > 3 else ""
    return [
        _check(
            _Severity.CAUTION,
            "dependents.deployed-after",
            f"deployed in {own.namespace} since the target stopped serving: {names}{more};"
            " they may rely on the new version",
            W_DEPENDENT * min(len(others), 3),
        )
    ]


def _data_checks(
    workload: WorkloadFacts, current: RevisionInfo | None, incident: Incident
) -> list[_Check]:
    if current is None:
        return []
    name = f"revision {current.revision}"
    never = current.healthy_for <= timedelta(0) and current.available_replicas == 0
    if never and (current.unhealthy or workload.progress_deadline_exceeded):
        return [
            _check(
                _Severity.INFO,
                "data.never-served",
                f"{name} never became available: it served no traffic",
                W_NEVER_SERVED,
            )
        ]
    start = current.completed_at or current.active_since
    if start is None:
        return []
    written = max(incident.now - start, timedelta(0))
    if written >= timedelta(days=1):
        severity, weight = _Severity.CAUTION, W_DATA_DAY
    elif written >= timedelta(hours=1):
        severity, weight = _Severity.CAUTION, W_DATA_HOURS
    else:
        severity, weight = _Severity.INFO, 0
    return [
        _check(
            severity,
            "data.written-for",
            f"{name} has been serving for {format_duration(written)}: data it wrote must"
            " stay readable by the old version",
            weight,
        )
    ]


# ---------------------------------------------------------------------------
# Time to restore
# ---------------------------------------------------------------------------


def _estimate_restore_time(workload: WorkloadFacts) -> tuple[timedelta | None, list[_Check]]:
    """How long the rollback's rollout will take, and the reason for the estimate.

    The median of the workload's observed rollouts when there are any, else
    waves of ``POD_READY_SECONDS`` from its replicas and update strategy
    (Kubernetes defaults: a Deployment surges 25% and may lose 25%; a
    StatefulSet replaces one pod at a time; a DaemonSet one node at a time).
    ``OnDelete`` never rolls out by itself: None.  Pure.
    """
    strategy = workload.strategy
    if strategy == "OnDelete":
        return None, [
            _check(
                _Severity.RISKY,
                "restore.on-delete",
                "updateStrategy OnDelete: pods change only when deleted, so a rollback"
                " restores nothing by itself",
                W_ON_DELETE,
            )
        ]
    checks: list[_Check] = []
    if strategy == "Recreate":
        checks.append(
            _check(
                _Severity.CAUTION,
                "restore.recreate",
                "strategy Recreate: every pod stops before the old ones start (a short"
                " full outage)",
                W_RECREATE,
            )
        )
    observed = [s for s in workload.rollout_seconds if s >= 0]
    if observed:
        seconds = statistics.median(observed)
        checks.append(
            _check(
                _Severity.INFO,
                "restore.observed",
                f"about {format_duration(timedelta(seconds=round(seconds)))} to restore: the"
                f" median of {len(observed)} observed rollout{'s' if len(observed) > 1 else ''}",
            )
        )
        return timedelta(seconds=round(seconds)), checks
    replicas = max(workload.replicas, 1)
    kind = workload.ref.kind
    if strategy == "Recreate":
        seconds = TERMINATION_SECONDS + POD_READY_SECONDS
    elif kind in ("StatefulSet", "DaemonSet"):
        seconds = replicas * POD_READY_SECONDS
    else:
        surge = math.ceil(replicas * 0.25)
        unavailable = math.floor(replicas * 0.25)
        seconds = math.ceil(replicas / max(surge + unavailable, 1)) * POD_READY_SECONDS
    estimate = timedelta(seconds=seconds)
    checks.append(
        _check(
            _Severity.INFO,
            "restore.estimated",
            f"about {format_duration(estimate)} to restore, estimated from {replicas}"
            f" replica{'s' if replicas > 1 else ''} and the {strategy or 'default'} strategy"
            " (no rollout observed)",
        )
    )
    return estimate, checks


# ---------------------------------------------------------------------------
# Verdict
# ---------------------------------------------------------------------------


def _verdict(
    checks: Sequence[_Check],
    to_revision: int | None,
    restore: timedelta | None,
    from_revision: int,
) -> SafetyVerdict:
    raw = BASE_SCORE + sum(c.reason.weight for c in checks)
    score = round(min(max(raw, 0.0), 100.0))
    worst = max((c.severity for c in checks), default=_Severity.INFO)
    if worst is _Severity.BLOCKER or score < UNSAFE_BELOW:
        safety, score = Safety.UNSAFE, min(score, UNSAFE_BELOW - 1)
    elif worst is _Severity.RISKY or score < SAFE_AT:
        safety, score = Safety.RISKY, min(score, SAFE_AT - 1)
    else:
        safety = Safety.SAFE
    # Most severe first, so the first reason is the one to act on; stable otherwise.
    ordered = sorted(checks, key=lambda c: -c.severity)
    return SafetyVerdict(
        safety=safety,
        score=score,
        reasons=tuple(c.reason for c in ordered),
        to_revision=to_revision,
        time_to_restore=restore,
        from_revision=from_revision,
    )
