"""``rollback execute`` as a sequence: read, plan, guard, dry run, confirm, act, verify, audit.

The command line (controller/cli/execute.py) parses options and talks to
the person through a :class:`Console`; everything between is here, so the
in-cluster controller can run the same sequence unattended.

The order is the design:

1. **Read** the target and what its plan needs (a GET and a LIST or two), and
   who we are (SelfSubjectReview).  Bad input fails here, before anything else.
2. **Plan** (pure) and **guard** (pure): policy, safety verdict, reviewed
   hash, paused, GitOps.  The plan is shown whatever the guards say.
3. **Dry run** every write that would follow the confirmation, server-side:
   the lock, a GitOps suspension, a ledger record, the patches.  RBAC,
   admission and a moved resourceVersion all surface now, before anyone is
   asked to confirm.
4. **Confirm**: type the target's name (or ``--yes`` where policy allows).
5. **Act**: take the lock, suspend the GitOps owner if asked, record the
   ledger entry, write.  Two round trips from the confirmation to the
   accepted write in the common case (lock, patch).
6. **Verify** the rollout (poll, live progress line, timeout), release the
   lock, and **audit** every outcome: Event on the target, JSON line locally.

Refusals and aborts are audited too and leave the cluster untouched.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, Protocol

from controller.actions.apply import (
    acquire_lock,
    dry_run_step,
    record_event,
    release_lock,
    wait_for_rollout,
    whoami,
    write_step,
)
from controller.actions.approvals import (
    ApprovalContext,
    ensure_request,
    merged,
    read_approvals,
    read_request,
    request_body,
)
from controller.actions.audit import (
    AuditEntry,
    Outcome,
    append_audit_line,
    read_recent_actions,
)
from controller.actions.config import (
    PriorConfig,
    ledger_entry,
    ledger_versions,
    load_prior_from_file,
    plan_config_revert,
    prior_from_ledger,
    prior_from_manifest_text,
)
from controller.actions.flags import FlagMode, plan_flag_disable, plan_flag_undo
from controller.actions.gitops import plan_resume, plan_suspend
from controller.actions.guards import (
    Attempt,
    GitOpsState,
    GuardVerdict,
    Identity,
    decide,
)
from controller.actions.plan import Plan, PlanStep, Stamp
from controller.actions.rollout import Phase, Progress
from controller.actions.workload import plan_workload_rollback
from controller.errors import (
    AbortedError,
    ClusterError,
    ExitCode,
    ForbiddenError,
    NotFoundError,
    RefusedError,
    RollbackError,
    UserInputError,
    VerificationError,
)
from controller.kube import (
    ARGO_APPLICATION,
    CONFIGMAP,
    CONTROLLERREVISION,
    DAEMONSET,
    DEPLOYMENT,
    FEATUREFLAG,
    FLUX_HELMRELEASE,
    FLUX_KUSTOMIZATION,
    REPLICASET,
    STATEFULSET,
    Kube,
    Resource,
)
from controller.model import ActionKind, ObjectRef, Recommendation, Safety, SafetyVerdict
from controller.policy import Policy, PolicyDecision, RecentAction
from controller.sources.gitops import (
    ARGO_INSTANCE_LABEL,
    ARGO_TRACKING_ID,
    FLUX_HR_NAME,
    FLUX_HR_NAMESPACE,
    FLUX_KS_NAME,
    FLUX_KS_NAMESPACE,
    gitops_owner,
)
from controller.sources.workloads import consumers_of, workload_revisions
from controller.view import JSON, ClusterView, annotations_of, labels_of, meta

WORKLOAD_RESOURCES: Mapping[str, Resource] = {
    "Deployment": DEPLOYMENT,
    "StatefulSet": STATEFULSET,
    "DaemonSet": DAEMONSET,
}
# The lock outlives the verification by this much, so a holder that dies
# mid-way frees the target soon after its timeout.
LOCK_MARGIN = timedelta(seconds=60)


# ---------------------------------------------------------------------------
# What to execute
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetSpec:
    """An explicit target as the command line names it.

    ``kind`` is ``Deployment``/``StatefulSet``/``DaemonSet``, ``flag`` or
    ``ConfigMap``.  Flags name the object that holds them in ``resource``
    (a FeatureFlag or a flagd ConfigMap).  A ConfigMap revert names its prior
    content with exactly one of ``to_version``, ``from_git`` or ``from_file``.
    """

    kind: str
    name: str
    namespace: str
    to_revision: int | None = None
    resume: bool = False
    resource: ObjectRef | None = None
    variant: str | None = None
    mode: FlagMode = FlagMode.DEFAULT_VARIANT
    undo: bool = False
    to_version: int | None = None
    from_git: str | None = None
    git_repo: str | None = None
    from_file: str | None = None

    @property
    def ref(self) -> ObjectRef:
        if self.kind == "flag" and self.resource is not None:
            return self.resource
        return ObjectRef(self.kind, self.namespace, self.name)

    @classmethod
    def for_recommendation(
        cls, rec: Recommendation, git_repo: str | None = None
    ) -> TargetSpec | None:
        """The explicit target an assessment's recommendation names.  Pure.

        The command line and the controller execute a recommendation through
        the same explicit-target path, so what runs is what an engineer could
        have typed.  None when there is nothing to execute: no action, or a
        config revert from git without a checkout to read it from.
        """
        target = rec.target
        if target is None:
            return None
        if rec.action is ActionKind.ROLLBACK:
            return cls(target.kind, target.name, target.namespace, to_revision=rec.to_revision)
        if rec.action is ActionKind.DISABLE_FLAG and rec.flag:
            return cls("flag", rec.flag, target.namespace, resource=target)
        if rec.action is not ActionKind.REVERT_CONFIG or not rec.to_version:
            return None
        if rec.to_version.isdigit():
            return cls("ConfigMap", target.name, target.namespace, to_version=int(rec.to_version))
        if rec.to_version.startswith("git:") and git_repo is not None:
            return cls(
                "ConfigMap",
                target.name,
                target.namespace,
                from_git=rec.to_version.removeprefix("git:"),
                git_repo=git_repo,
            )
        return None


@dataclass(frozen=True)
class Settings:
    """How to run: the attempt's options, the policy, the timeout and where to audit."""

    attempt: Attempt
    policy: Policy
    audit_log: Path
    timeout: timedelta = timedelta(minutes=5)
    why: str = ""  # what the assessment said, when execute runs its recommendation
    # Automatic actions the audit log does not hold (the controller keeps them
    # in the cluster), for the policy's rate limits.
    recent_actions: tuple[RecentAction, ...] = ()


@dataclass(frozen=True)
class Prepared:
    """Everything read and decided before anything is written."""

    plan: Plan
    target: JSON
    identity: Identity
    safety: SafetyVerdict | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    related_labels: tuple[Mapping[str, str], ...] = ()
    gitops: GitOpsState | None = None
    gitops_owner: JSON | None = None
    ledger_record: JSON | None = None
    verify: tuple[PlanStep, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Result:
    """How one execute ended."""

    outcome: Outcome
    plan: Plan
    message: str
    round_trips: int | None = None
    time_to_restore: timedelta | None = None
    exit_code: ExitCode = ExitCode.OK


class Console(Protocol):
    """How the sequence talks to a person (or to the controller's log)."""

    def show(self, prepared: Prepared, decision: PolicyDecision, guards: GuardVerdict) -> None:
        """Print the plan, its preconditions, the verdict and the hash."""

    def line(self, text: str) -> None:
        """One line of output."""

    def ask(self, prompt: str) -> str | None:
        """Read a typed answer; None when nobody can answer (no terminal)."""

    def progress(self, text: str) -> None:
        """Replace the live progress line."""

    def progress_end(self) -> None:
        """Finish the live progress line."""


# (kube, view, workload, now, the revision the engineer chose or None) -> verdict
Judge = Callable[[Kube, ClusterView, JSON, datetime, int | None], SafetyVerdict | None]


# ---------------------------------------------------------------------------
# The sequence
# ---------------------------------------------------------------------------


def run(
    kube: Kube,
    spec: TargetSpec,
    settings: Settings,
    console: Console,
    *,
    judge: Judge | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Result:
    """Execute ``spec`` behind every guard; see the module docstring for the order.

    Returns the result of a completed attempt (executed and verified, dry run,
    no-op); raises a :class:`~controller.errors.RollbackError` for everything
    else (refused, aborted, not converged, bad input), after auditing it.
    """
    now = clock()
    _check_audit_log(settings.audit_log)
    identity = whoami(kube)
    auditor = _Auditor(kube, settings, identity)
    try:
        prepared = prepare(kube, spec, identity, now, judge=judge)
    except RefusedError as err:
        auditor.refused_before_plan(spec.ref, str(err), now)
        raise
    return proceed(kube, prepared, settings, console, auditor=auditor, clock=clock)


def proceed(
    kube: Kube,
    prepared: Prepared,
    settings: Settings,
    console: Console,
    *,
    auditor: _Auditor | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Result:
    """Steps 2 to 6 for a prepared plan (also what ``execute`` without a target uses)."""
    plan = prepared.plan
    attempt = settings.attempt
    auditor = auditor or _Auditor(kube, settings, prepared.identity)
    now = clock()
    recent = read_recent_actions(settings.audit_log, now, timedelta(days=1))
    recent += settings.recent_actions

    def judge(attempt: Attempt) -> tuple[PolicyDecision, GuardVerdict]:
        return decide(
            settings.policy,
            plan,
            attempt,
            prepared.safety,
            now,
            labels=prepared.labels,
            related_labels=prepared.related_labels,
            gitops=prepared.gitops,
            recent_actions=recent,
            identity=prepared.identity,
        )

    decision, guards = judge(attempt)
    if not plan.noop and _has_refusal(guards, "guard.approvals"):
        # Only now, and only for this exact hash: what approvers recorded.
        attempt = _with_recorded_approvals(kube, plan, attempt)
        decision, guards = judge(attempt)
    # Unattended means nobody decided: --yes honoured.  Approvals are people deciding.
    auditor.unattended = attempt.yes and not guards.confirm
    console.show(prepared, decision, guards)
    if plan.noop:
        auditor.log(Outcome.NOOP, prepared, plan.noop, now)
        return Result(Outcome.NOOP, plan, f"nothing to do: {plan.noop}")
    if guards.refusals:
        _refuse(kube, prepared, decision, guards, attempt=attempt, auditor=auditor, now=now)

    stamp = Stamp(
        who=str(prepared.identity),
        when=now,
        why=attempt.reason or settings.why,
        incident=attempt.incident,
    )
    suspend = (
        plan_suspend(prepared.gitops_owner, plan.target)
        if guards.suspend is not None and prepared.gitops_owner is not None
        else None
    )
    lock_duration = settings.timeout + LOCK_MARGIN
    try:
        # The target's own write first: its refusal (RBAC, admission) is the one people need.
        for step in plan.steps:
            dry_run_step(kube, step, plan, stamp)
        acquire_lock(
            kube,
            plan.target,
            prepared.identity,
            duration=lock_duration,
            now=now,
            plan_hash=plan.hash,
            dry_run=True,
        )
        if suspend is not None:
            dry_run_step(kube, suspend, plan, stamp)
        if prepared.ledger_record is not None:
            kube.create(
                CONTROLLERREVISION, plan.target.namespace, prepared.ledger_record, dry_run=True
            )
    except RefusedError as err:
        auditor.refuse(prepared, f"refused: {err}", now)
        raise RefusedError(f"refused: {err}") from err
    except ClusterError as err:
        auditor.refuse(prepared, f"the server-side dry run failed: {err}", now, event=False)
        raise

    if attempt.dry_run:
        message = (
            f"dry run: the API server accepted all {len(plan.steps)} write(s) of plan {plan.hash}; "
            "nothing was changed"
        )
        auditor.log(Outcome.DRY_RUN, prepared, message, now)
        console.line(message)
        return Result(Outcome.DRY_RUN, plan, message)

    if guards.confirm:
        _confirm(plan, console, auditor, prepared, now)

    # --- from the confirmation to the accepted write: counted ---------------------------------
    start = kube.requests
    stamp = dataclasses.replace(stamp, when=clock())
    lock = acquire_lock(
        kube,
        plan.target,
        prepared.identity,
        duration=lock_duration,
        now=stamp.when,
        plan_hash=plan.hash,
    )
    try:
        return _act(
            kube,
            _Run(prepared, settings, console, auditor, suspend, stamp, start, clock),
        )
    finally:
        if not release_lock(kube, lock):
            console.line(f"note: could not release Lease {lock.name}; it expires by itself")


@dataclass(frozen=True)
class _Run:
    """What the acting step needs, gathered once the guards have passed."""

    prepared: Prepared
    settings: Settings
    console: Console
    auditor: _Auditor
    suspend: PlanStep | None
    stamp: Stamp
    start: int  # kube.requests at the confirmation
    clock: Callable[[], datetime]


def _act(kube: Kube, run: _Run) -> Result:
    prepared, console, auditor = run.prepared, run.console, run.auditor
    suspend, stamp, clock = run.suspend, run.stamp, run.clock
    plan = prepared.plan
    try:
        if suspend is not None:
            write_step(kube, suspend, plan, stamp)
        if prepared.ledger_record is not None:
            kube.create(CONTROLLERREVISION, plan.target.namespace, prepared.ledger_record)
        written = write_step(kube, plan.steps[0], plan, stamp)
    except RollbackError as err:
        auditor.refuse(prepared, f"refused: {err}", stamp.when, outcome=Outcome.FAILED)
        if suspend is not None:
            console.line(
                f"note: {suspend.ref.short} stayed suspended; resume it with rollback resume-gitops"
            )
        raise
    round_trips = kube.requests - run.start
    accepted = clock()
    generations = {plan.steps[0].ref: _int(meta(written).get("generation"))}
    failures: list[str] = []
    for step in plan.steps[1:]:
        try:
            later = write_step(kube, step, plan, stamp)
            generations[step.ref] = _int(meta(later).get("generation"))
        except RollbackError as err:
            failures.append(f"{step.summary}: {err}")
    executed = (
        f"{plan.summary}: the write was accepted ({round_trips} API round trips after confirmation)"
    )
    if suspend is not None:
        executed += f"; {suspend.ref.short} suspended (resume with rollback resume-gitops)"
    if failures:
        executed += "; NOT done: " + "; ".join(failures)
    auditor.executed(prepared, executed, accepted, round_trips, suspend)
    console.line(executed)
    for failure in failures:
        console.line(f"warning: {failure}")

    verification = _verify(kube, prepared, run.settings, console, generations)
    if verification is None:
        message = f"{plan.summary}: done (nothing rolls out for this action)"
        return Result(Outcome.EXECUTED, plan, message, round_trips=round_trips)
    progress, elapsed = verification
    if progress.phase is Phase.DONE:
        message = f"restored: {progress.line}; time to restore {_seconds(elapsed)} from the write"
        auditor.verified(prepared, message, clock(), elapsed)
        console.line(message)
        code = ExitCode.FAILED if failures else ExitCode.OK
        return Result(Outcome.VERIFIED, plan, message, round_trips, elapsed, code)
    message = (
        f"{plan.target.short} did not converge: {progress.line}; no further action was taken "
        "(one attempt only): inspect it, then decide"
    )
    auditor.not_converged(prepared, message, clock(), elapsed)
    raise VerificationError(message)


def _verify(
    kube: Kube,
    prepared: Prepared,
    settings: Settings,
    console: Console,
    generations: Mapping[ObjectRef, int],
) -> tuple[Progress, timedelta] | None:
    """Wait for each rollout the plan started; the slowest decides.  None: nothing rolls out."""
    if not prepared.verify:
        return None
    results: list[tuple[Progress, timedelta]] = []
    for step in prepared.verify:
        if step.ref not in generations:
            continue

        def show(progress: Progress, elapsed: timedelta, ref: ObjectRef = step.ref) -> None:
            console.progress(f"{ref.short}: {progress.line} ({_seconds(elapsed)})")

        result = wait_for_rollout(kube, step, generations[step.ref], settings.timeout, show)
        console.progress_end()
        results.append((result.progress, result.elapsed))
    if not results:
        return None
    # A rollout that did not converge decides; else the slowest one.
    failed = [r for r in results if r[0].phase is not Phase.DONE]
    return failed[0] if failed else max(results, key=lambda r: r[1])


def _refuse(
    kube: Kube,
    prepared: Prepared,
    decision: PolicyDecision,
    guards: GuardVerdict,
    *,
    attempt: Attempt,
    auditor: _Auditor,
    now: datetime,
) -> NoReturn:
    """Audit the first refusal and raise it; a wait for approvals records its request first."""
    message = "refused: " + guards.refusals[0].message
    if not attempt.dry_run and all(r.code == "guard.approvals" for r in guards.refusals):
        message += _request_approvals(kube, prepared, decision, attempt, now)
    auditor.refuse(prepared, message, now, codes=tuple(r.code for r in guards.refusals))
    raise RefusedError(message)


def _has_refusal(guards: GuardVerdict, code: str) -> bool:
    return any(r.code == code for r in guards.refusals)


def _with_recorded_approvals(kube: Kube, plan: Plan, attempt: Attempt) -> Attempt:
    """``attempt`` with the approvals recorded for ``plan``'s hash (one LIST, one GET).

    Whoever requested the plan cannot approve it, so the request's requester
    is excluded as the executor is; the approvals count for the validity the
    request recorded, as ``rollback approve`` counts them.
    """
    namespace = plan.target.namespace
    approvals = read_approvals(kube, namespace, plan.hash)
    request = read_request(kube, namespace, plan.hash) if approvals else None
    exclude = set(attempt.approval.exclude) | ({request.requester} if request else set())
    context = dataclasses.replace(
        attempt.approval,
        approvals=(*attempt.approval.approvals, *approvals),
        exclude=frozenset(exclude - {""}),
        recorded=request.requirements if request else attempt.approval.recorded,
    )
    return dataclasses.replace(attempt, approval=context)


def _request_approvals(
    kube: Kube, prepared: Prepared, decision: PolicyDecision, attempt: Attempt, now: datetime
) -> str:
    """Record an approval request for the plan, so approvers can see what they approve.

    Returns a note for the refusal message.  A request that cannot be recorded
    (no CRD, no permission) is said so; the refusal stands either way.
    """
    approval: ApprovalContext = attempt.approval
    body = request_body(
        prepared.plan,
        merged(decision.approvals, approval.extra),
        prepared.identity,
        now,
        incident=attempt.incident,
        safety=prepared.safety.safety.value if prepared.safety else "",
    )
    try:
        request, created = ensure_request(kube, body)
    except ClusterError as err:
        return f" (the approval request could not be recorded: {err})"
    if created:
        return f" (approval request {request.name} recorded)"
    return f" (approval request {request.name} by {request.requester} is waiting)"


def _confirm(
    plan: Plan, console: Console, auditor: _Auditor, prepared: Prepared, now: datetime
) -> None:
    expected = plan.target.name
    answer = console.ask(f"Type the name of the {plan.target.kind} to confirm ({expected})")
    if answer is None:
        message = (
            "refused: confirmation needed but nobody can answer (no terminal); use --yes where "
            "policy allows unattended execution"
        )
        auditor.refuse(prepared, message, now)
        raise RefusedError(message)
    if answer.strip() != expected:
        message = f"aborted: {answer.strip()!r} is not {expected!r}; nothing was changed"
        auditor.log(Outcome.ABORTED, prepared, message, now, event=True)
        raise AbortedError(message)


# ---------------------------------------------------------------------------
# Reading and planning
# ---------------------------------------------------------------------------


def prepare(
    kube: Kube,
    spec: TargetSpec,
    identity: Identity,
    now: datetime,
    *,
    judge: Judge | None = None,
) -> Prepared:
    """Read the target and build its fresh plan (step 1).  Raises on bad input."""
    if spec.kind in WORKLOAD_RESOURCES:
        return prepare_workload(kube, spec, identity, now, judge=judge)
    if spec.kind == "flag":
        return prepare_flag(kube, spec, identity)
    if spec.kind == "ConfigMap":
        return prepare_config(kube, spec, identity, now)
    raise UserInputError(f"cannot execute on a {spec.kind}")


def prepare_workload(
    kube: Kube,
    spec: TargetSpec,
    identity: Identity,
    now: datetime,
    *,
    judge: Judge | None = None,
) -> Prepared:
    """GET the workload, LIST its ReplicaSets or ControllerRevisions, read its GitOps owner."""
    resource = WORKLOAD_RESOURCES[spec.kind]
    workload = _get(kube, resource, spec.namespace, spec.name)
    view = ClusterView(captured_at=now)
    view.add(workload)
    selector = _selector(workload)
    child = REPLICASET if spec.kind == "Deployment" else CONTROLLERREVISION
    view.extend(kube.list(child, spec.namespace, selector=selector))
    owner, owner_obj = _gitops(kube, view, workload)
    safety = judge(kube, view, workload, now, spec.to_revision) if judge is not None else None
    to_revision = spec.to_revision
    notes: list[str] = []
    if to_revision is None and safety is not None and safety.to_revision is not None:
        to_revision = safety.to_revision
        notes.append(f"target: revision {to_revision}, the last known-good (safety check)")
    revisions = workload_revisions(view, workload, now)
    plan = plan_workload_rollback(workload, revisions, to_revision, resume=spec.resume)
    if safety is not None and safety.to_revision not in (None, plan.to_revision):
        notes.append(
            f"the safety verdict judged revision {safety.to_revision}, not {plan.to_revision}: "
            "treated as risky"
        )
        safety = dataclasses.replace(safety, safety=max_safety(safety.safety, Safety.RISKY))
    return Prepared(
        plan=plan,
        target=workload,
        identity=identity,
        safety=safety,
        labels=labels_of(workload),
        gitops=owner,
        gitops_owner=owner_obj,
        verify=plan.steps[:1],
        notes=tuple(notes),
    )


def prepare_flag(kube: Kube, spec: TargetSpec, identity: Identity) -> Prepared:
    """GET the FeatureFlag (or flagd ConfigMap) and plan the disable or its undo."""
    if spec.resource is None:
        raise UserInputError(
            f"flag/{spec.name}: name the object that holds it with --resource featureflag/NAME "
            "or --resource configmap/NAME"
        )
    resource = FEATUREFLAG if spec.resource.kind == "FeatureFlag" else CONFIGMAP
    obj = _get(kube, resource, spec.resource.namespace, spec.resource.name)
    if spec.undo:
        plan = plan_flag_undo(obj, spec.name)
    else:
        plan = plan_flag_disable(obj, spec.name, mode=spec.mode, variant=spec.variant)
    return Prepared(plan=plan, target=obj, identity=identity, labels=labels_of(obj))


def prepare_config(kube: Kube, spec: TargetSpec, identity: Identity, now: datetime) -> Prepared:
    """GET the ConfigMap, find its prior content and its consumers, and plan the revert."""
    configmap = _get(kube, CONFIGMAP, spec.namespace, spec.name)
    ledger = kube.list(
        CONTROLLERREVISION, spec.namespace, selector=f"rollback.io/configmap={spec.name}"
    )
    prior = _prior_config(spec, ledger)
    view = ClusterView(captured_at=now)
    for kind in WORKLOAD_RESOURCES.values():
        view.extend(kube.list(kind, spec.namespace))
    consumers = consumers_of(view, ObjectRef("ConfigMap", spec.namespace, spec.name))
    plan = plan_config_revert(configmap, prior, consumers)
    versions = [int(r.get("revision") or 0) for r in ledger_versions(ledger, spec.name)]
    record = None
    if not plan.noop:
        record = ledger_entry(
            configmap,
            max(versions, default=0) + 1,
            note=f"content before {plan.summary}",
        )
    return Prepared(
        plan=plan,
        target=configmap,
        identity=identity,
        labels=labels_of(configmap),
        related_labels=tuple(labels_of(c) for c in consumers),
        ledger_record=record,
        verify=plan.steps[1:],
        notes=(f"the current content is recorded as ledger version {record['revision']}",)
        if record
        else (),
    )


def _prior_config(spec: TargetSpec, ledger: Sequence[JSON]) -> PriorConfig:
    given = [x for x in (spec.to_version, spec.from_git, spec.from_file) if x is not None]
    if len(given) != 1:
        raise UserInputError(
            f"configmap/{spec.name}: name the prior content with exactly one of --to VERSION, "
            "--from-git REF:PATH or --from-file F"
        )
    if spec.from_file is not None:
        return load_prior_from_file(spec.from_file, spec.name)
    if spec.from_git is not None:
        ref, sep, path = spec.from_git.partition(":")
        if not sep or not ref or not path:
            raise UserInputError(
                f"--from-git {spec.from_git!r}: use REF:PATH, e.g. HEAD~1:deploy/cm.yaml"
            )
        from controller.sources.git import read_file_at

        text = read_file_at(spec.git_repo or ".", ref, path)
        return prior_from_manifest_text(text, spec.name, f"git {ref}:{path}")
    assert spec.to_version is not None
    return prior_from_ledger(ledger, spec.name, spec.to_version)


def _get(kube: Kube, resource: Resource, namespace: str, name: str) -> JSON:
    try:
        return kube.get(resource, namespace, name)
    except NotFoundError as err:
        raise NotFoundError(
            f"{resource.kind.lower()}/{name} not found in namespace {namespace}"
        ) from err


def _selector(workload: JSON) -> str | None:
    match = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(match.items())) or None


def _gitops(kube: Kube, view: ClusterView, obj: JSON) -> tuple[GitOpsState | None, JSON | None]:
    """Read the GitOps owner the object's marks point at, and judge whether it is active.

    Only when the object carries an Argo CD or Flux mark: a LIST of
    Applications (any namespace) or a GET of the Kustomization/HelmRelease.
    An owner we cannot read is assumed to be active: refusing is the safe
    mistake.
    """
    annotations, labels = annotations_of(obj), labels_of(obj)
    if ARGO_TRACKING_ID in annotations or ARGO_INSTANCE_LABEL in labels:
        # NotFound: the Application CRD is not installed.  Forbidden: judged
        # below as an owner we cannot read.
        with contextlib.suppress(NotFoundError, ForbiddenError):
            view.extend(kube.list(ARGO_APPLICATION))
    for name_key, ns_key, resource in (
        (FLUX_KS_NAME, FLUX_KS_NAMESPACE, FLUX_KUSTOMIZATION),
        (FLUX_HR_NAME, FLUX_HR_NAMESPACE, FLUX_HELMRELEASE),
    ):
        if name_key in labels:
            namespace = labels.get(ns_key) or str(meta(obj).get("namespace") or "")
            with contextlib.suppress(NotFoundError, ForbiddenError):
                view.add(kube.get(resource, namespace, labels[name_key]))
    owner = gitops_owner(view, obj)
    if owner is None:
        return None, None
    owner_obj = view.get(owner.ref.kind, owner.ref.namespace, owner.ref.name)
    tool = "Argo CD" if owner.ref.kind == "Application" else "Flux"
    if owner_obj is None:
        return GitOpsState(owner.ref, True, owner.note + "; assumed active", tool), None
    active = (owner.automated or owner.self_heal) and not owner.suspended
    return GitOpsState(owner.ref, active, owner.note, tool), owner_obj


# ---------------------------------------------------------------------------
# resume-gitops
# ---------------------------------------------------------------------------


def resume_gitops(
    kube: Kube,
    owner: ObjectRef,
    settings: Settings,
    console: Console,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Result:
    """Restore what ``--suspend-gitops`` recorded on ``owner``; guarded and audited likewise."""
    from controller.actions.gitops import owner_resource

    now = clock()
    _check_audit_log(settings.audit_log)
    identity = whoami(kube)
    auditor = _Auditor(kube, settings, identity)
    obj = _get(kube, owner_resource(owner.kind), owner.namespace, owner.name)
    plan = plan_resume(obj)
    prepared = Prepared(plan=plan, target=obj, identity=identity, labels=labels_of(obj))
    for line in (plan.summary, *(f"  {c}" for c in plan.changes), *plan.preconditions):
        console.line(line)
    stamp = Stamp(who=str(identity), when=now, why=settings.attempt.reason)
    step = plan.steps[0]
    if settings.attempt.dry_run:
        dry_run_step(kube, step, plan, stamp)
        message = (
            f"dry run: the API server accepted the resume of {owner.short}; nothing was changed"
        )
        console.line(message)
        return Result(Outcome.DRY_RUN, plan, message)
    write_step(kube, step, plan, stamp)
    message = f"{plan.summary}: done; it syncs from git again"
    auditor.log(Outcome.GITOPS_RESUMED, prepared, message, clock(), event=True)
    console.line(message)
    return Result(Outcome.GITOPS_RESUMED, plan, message)


# ---------------------------------------------------------------------------
# Audit
# ---------------------------------------------------------------------------


class _Auditor:
    """Writes the Event and the audit line for each outcome, the same way every time."""

    def __init__(self, kube: Kube, settings: Settings, identity: Identity) -> None:
        self.kube = kube
        self.settings = settings
        self.identity = identity
        # --yes may be downgraded to attended (a person confirms); audit what happened.
        self.unattended = settings.attempt.yes

    def log(
        self,
        outcome: Outcome,
        prepared: Prepared,
        message: str,
        at: datetime,
        *,
        event: bool = False,
        round_trips: int | None = None,
        elapsed: timedelta | None = None,
        codes: tuple[str, ...] = (),
    ) -> None:
        missing = None
        if event:
            note = f"{message} (by {self.identity}, plan {prepared.plan.hash})"
            missing = record_event(self.kube, prepared.target, outcome, note, at)
        attempt = self.settings.attempt
        entry = AuditEntry(
            at=at,
            outcome=outcome,
            target=prepared.plan.target,
            who=str(self.identity),
            message=message + (f" [no Event: {missing[:200]}]" if missing else ""),
            plan=prepared.plan,
            unattended=self.unattended,
            break_glass=attempt.force,
            reason=attempt.reason or self.settings.why,
            incident=attempt.incident,
            server=self.kube.server,
            labels=prepared.labels,
            round_trips=round_trips,
            time_to_restore=elapsed,
            codes=codes,
        )
        append_audit_line(self.settings.audit_log, entry)

    def refuse(
        self,
        prepared: Prepared,
        message: str,
        at: datetime,
        *,
        codes: tuple[str, ...] = (),
        event: bool = True,
        outcome: Outcome = Outcome.REFUSED,
    ) -> None:
        self.log(outcome, prepared, message, at, event=event, codes=codes)

    def refused_before_plan(self, ref: ObjectRef, message: str, at: datetime) -> None:
        entry = AuditEntry(
            at=at,
            outcome=Outcome.REFUSED,
            target=ref,
            who=str(self.identity),
            message=message,
            server=self.kube.server,
            incident=self.settings.attempt.incident,
        )
        append_audit_line(self.settings.audit_log, entry)

    def executed(
        self,
        prepared: Prepared,
        message: str,
        at: datetime,
        round_trips: int,
        suspend: PlanStep | None,
    ) -> None:
        self.log(Outcome.EXECUTED, prepared, message, at, event=True, round_trips=round_trips)
        if suspend is not None and prepared.gitops_owner is not None:
            owner = Prepared(
                plan=prepared.plan, target=prepared.gitops_owner, identity=self.identity
            )
            self.log(
                Outcome.GITOPS_SUSPENDED,
                owner,
                f"suspended by rollback for: {prepared.plan.summary}",
                at,
                event=True,
            )

    def verified(self, prepared: Prepared, message: str, at: datetime, elapsed: timedelta) -> None:
        self.log(Outcome.VERIFIED, prepared, message, at, event=True, elapsed=elapsed)

    def not_converged(
        self, prepared: Prepared, message: str, at: datetime, elapsed: timedelta
    ) -> None:
        self.log(Outcome.NOT_CONVERGED, prepared, message, at, event=True, elapsed=elapsed)


def _check_audit_log(path: Path) -> None:
    """Fail before acting if the audit log cannot be written: no action goes unrecorded."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as err:
        raise UserInputError(f"cannot write the audit log {path}: {err.strerror or err}") from err


def max_safety(a: Safety, b: Safety) -> Safety:
    """The stricter of two verdicts."""
    order = [Safety.SAFE, Safety.RISKY, Safety.UNSAFE]
    return order[max(order.index(a), order.index(b))]


def _int(value: Any) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():.0f}s"


__all__ = [
    "Console",
    "Prepared",
    "Result",
    "Settings",
    "TargetSpec",
    "prepare",
    "proceed",
    "resume_gitops",
    "run",
]
