"""The guards ``rollback execute`` applies before any write, as one pure decision.

Given the fresh plan, what the user asked for (``--yes``, ``--plan-hash``,
``--force --reason``, ``--suspend-gitops``), the rollback-safety verdict, the
policy decision and the GitOps owner, :func:`check_guards` says whether the
action may proceed, whether a typed confirmation is needed, and whether a GitOps
owner must be suspended first.  Every refusal is a :class:`~controller.model.Reason`
whose message says what to do next.  No side effects; the caller performs and
audits what this decides.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from controller.actions.approvals import (
    ApprovalContext,
    ApprovalStatus,
    RequirementStatus,
    count_approvals,
    merged,
    with_recorded_validity,
)
from controller.actions.plan import Plan, same_hash
from controller.model import ObjectRef, Reason, Safety, SafetyVerdict
from controller.policy import (
    Policy,
    PolicyDecision,
    PolicyRequest,
    RecentAction,
    evaluate,
)
from controller.policy.schema import GitOpsMode


@dataclass(frozen=True)
class Attempt:
    """What the user asked ``execute`` to do, beyond the target."""

    yes: bool = False
    dry_run: bool = False
    plan_hash: str | None = None
    force: bool = False
    reason: str = ""
    suspend_gitops: bool = False
    incident: str = ""
    # Approvals recorded for the fresh plan's hash, and how to count them.
    approval: ApprovalContext = field(default_factory=ApprovalContext)


@dataclass(frozen=True)
class GitOpsState:
    """The GitOps object that reconciles the target and whether it would fight a manual change.

    ``active`` is true when it syncs automatically (Argo CD automated sync or
    self-heal; a Flux object that is not suspended): it would revert us.
    """

    ref: ObjectRef
    active: bool
    note: str = ""
    tool: str = ""


@dataclass(frozen=True)
class Identity:
    """Who the cluster says we are (SelfSubjectReview)."""

    username: str
    groups: tuple[str, ...] = ()
    verified: bool = True

    def __str__(self) -> str:
        return self.username if self.verified else f"{self.username} (unverified)"


@dataclass(frozen=True)
class GuardVerdict:
    """What the guards decided.

    ``refusals`` non-empty: do not write.  ``confirm``: ask for the target's
    name before writing.  ``suspend``: suspend this GitOps owner first.
    ``break_glass``: ``--force`` overrode a guard; audit it loudly.
    """

    refusals: tuple[Reason, ...] = ()
    confirm: bool = True
    suspend: GitOpsState | None = None
    notes: tuple[Reason, ...] = ()
    break_glass: bool = False

    @property
    def allowed(self) -> bool:
        return not self.refusals


def policy_request(
    plan: Plan,
    safety: Safety,
    attempt: Attempt,
    *,
    labels: Mapping[str, str] = MappingProxyType({}),
    related_labels: Sequence[Mapping[str, str]] = (),
    gitops: GitOpsState | None = None,
    recent_actions: Sequence[RecentAction] = (),
) -> PolicyRequest:
    """The facts the policy judges for this plan and attempt.  Pure."""
    return PolicyRequest(
        action=plan.action,
        namespace=plan.target.namespace,
        safety=safety,
        target=plan.target,
        labels=labels,
        related_labels=tuple(related_labels),
        unattended=attempt.yes,
        break_glass=attempt.force,
        break_glass_reason=attempt.reason,
        recent_actions=tuple(recent_actions),
        gitops_owned=gitops is not None and gitops.active,
    )


def decide(
    policy: Policy,
    plan: Plan,
    attempt: Attempt,
    safety: SafetyVerdict | None,
    now: datetime,
    *,
    labels: Mapping[str, str] = MappingProxyType({}),
    related_labels: Sequence[Mapping[str, str]] = (),
    gitops: GitOpsState | None = None,
    recent_actions: Sequence[RecentAction] = (),
    identity: Identity | None = None,
) -> tuple[PolicyDecision, GuardVerdict]:
    """Evaluate the policy for this attempt and apply every guard.  Pure.

    ``--yes`` asks to run unattended, which the policy may allow.  It never
    skips the typed confirmation when a human must decide: a risky verdict
    where the policy wants risky actions confirmed, or a break-glass
    override.  Then the attempt is judged as attended and the name is asked
    for (an execute without a terminal to answer is refused at the prompt).
    """
    verdict = safety.safety if safety is not None else Safety.SAFE

    def judged(unattended: bool) -> PolicyDecision:
        request = policy_request(
            plan,
            verdict,
            dataclasses.replace(attempt, yes=unattended),
            labels=labels,
            related_labels=related_labels,
            gitops=gitops,
            recent_actions=recent_actions,
        )
        return evaluate(policy, request, now)

    attended = judged(False)
    human = attempt.force or (verdict is Safety.RISKY and attended.risky_requires_confirmation)
    unattended = attempt.yes and not human
    decision = judged(True) if unattended else attended
    effective = dataclasses.replace(attempt, yes=unattended)
    status = None
    requirements = merged(decision.approvals, attempt.approval.extra)
    if requirements:
        # The executor never approves its own action: four eyes, not two.
        exclude = set(attempt.approval.exclude) | ({identity.username} if identity else set())
        status = count_approvals(
            with_recorded_validity(requirements, attempt.approval.recorded),
            attempt.approval.approvals,
            plan.hash,
            now=now,
            exclude=exclude,
        )
    guards = check_guards(
        plan,
        effective,
        safety,
        decision,
        gitops=gitops,
        identity=identity,
        approval_status=status,
    )
    if attempt.yes and not unattended:
        why = "break-glass is in use" if attempt.force else "the verdict is risky"
        note = Reason(
            "guard.yes-needs-confirmation",
            f"--yes does not skip the confirmation here: {why} and a person must confirm",
        )
        guards = dataclasses.replace(guards, notes=(*guards.notes, note))
    return decision, guards


def check_guards(
    plan: Plan,
    attempt: Attempt,
    safety: SafetyVerdict | None,
    decision: PolicyDecision,
    *,
    gitops: GitOpsState | None = None,
    identity: Identity | None = None,
    approval_status: ApprovalStatus | None = None,
) -> GuardVerdict:
    """Decide whether ``plan`` may be applied for ``attempt``.  Pure; see the module docstring.

    ``approval_status`` is how the approvals recorded for this plan count
    (:func:`~controller.actions.approvals.count_approvals`); without it none
    are counted.  Approvals the policy (or ``attempt.approval.extra``) wants
    and that are missing refuse with the command that gives them.

    Order matters only for the message shown first: the reviewed-hash check
    comes first (nothing else matters if this is not the reviewed plan), then
    the plan's own state, then policy and safety, then GitOps.
    """
    refusals: list[Reason] = []
    notes: list[Reason] = []
    target = plan.target.short

    if attempt.plan_hash is not None and not same_hash(attempt.plan_hash, plan):
        refusals.append(
            Reason(
                "guard.plan-changed",
                f"the plan changed since it was reviewed: --plan-hash {attempt.plan_hash} was "
                f"given, the fresh plan is {plan.hash}; review it again (rollback assess or "
                "execute --dry-run) and pass the new hash",
            )
        )
    if plan.paused:
        refusals.append(
            Reason(
                "guard.paused",
                f"{target} is paused: a rollback would not roll out; resume it first "
                "(kubectl rollout resume) or pass --resume to unpause in the same write",
            )
        )
    if attempt.force and not attempt.reason.strip():
        refusals.append(
            Reason(
                "guard.force-needs-reason", "--force needs --reason TEXT: say why, it is audited"
            )
        )

    break_glass = attempt.force and decision.break_glass_allowed and bool(attempt.reason.strip())
    verdict = safety.safety if safety is not None else Safety.SAFE
    # Unsafe is refused here whatever the policy says: only break-glass overrides it.
    if verdict is Safety.UNSAFE and not break_glass:
        refusals.append(_unsafe_refusal(safety))
    for denial in decision.denials:
        if denial.code == "policy.gitops-refuse" and gitops is not None:
            refusals.append(Reason(denial.code, _gitops_refusal(gitops, decision.gitops)))
        elif denial.code != "policy.unsafe-verdict":
            refusals.append(denial)
    if break_glass:
        notes.append(
            Reason(
                "guard.break-glass",
                f"BREAK-GLASS: --force used by {identity or 'an unknown user'}: "
                f"{attempt.reason.strip()}",
            )
        )

    # Unattended (--yes) never meets approvals: the policy itself refuses it.
    requirements = merged(decision.approvals, attempt.approval.extra) if not attempt.yes else ()
    approved = False
    if requirements and not break_glass:
        status = approval_status or ApprovalStatus(
            tuple(RequirementStatus(r, ()) for r in requirements)
        )
        if status.satisfied:
            approved = True
            notes.append(
                Reason(
                    "guard.approved",
                    f"approved by {', '.join(status.approvers)} ({status.describe()})",
                )
            )
        else:
            refusals.append(Reason("guard.approvals", waiting_message(plan, status)))

    suspend: GitOpsState | None = None
    if gitops is not None and gitops.active and not _has(refusals, "policy.gitops-refuse"):
        if attempt.suspend_gitops:
            suspend = gitops
            notes.append(
                Reason(
                    "guard.gitops-suspend",
                    f"{gitops.ref.short} will be suspended first; resume it with "
                    f"rollback resume-gitops {gitops.ref.kind.lower()}/{gitops.ref.name} "
                    f"-n {gitops.ref.namespace}",
                )
            )
        else:
            refusals.append(Reason("guard.gitops", _gitops_refusal(gitops, decision.gitops)))

    return GuardVerdict(
        refusals=tuple(refusals),
        confirm=not attempt.yes and not (approved and attempt.approval.confirms),
        suspend=suspend,
        notes=tuple(notes),
        break_glass=break_glass,
    )


def waiting_message(plan: Plan, status: ApprovalStatus) -> str:
    """``waiting for 1 approval (...): run `rollback approve <hash> -n NS```.  Pure."""
    missing = max(1, status.missing)
    noun = "approval" if missing == 1 else "approvals"
    return (
        f"waiting for {missing} {noun} ({status.describe()}): run "
        f"`rollback approve {plan.hash} -n {plan.target.namespace}`"
    )


def _unsafe_refusal(safety: SafetyVerdict | None) -> Reason:
    why = "; ".join(r.message for r in (safety.reasons if safety else ()) if r.weight < 0)[:300]
    return Reason(
        "guard.unsafe",
        "the rollback-safety verdict is unsafe"
        + (f" ({why})" if why else "")
        + ": refused; only --force --reason TEXT (break-glass, where policy allows it) overrides",
    )


def _gitops_refusal(gitops: GitOpsState, mode: GitOpsMode) -> str:
    tool = gitops.tool or "a GitOps controller"
    base = (
        f"{gitops.ref.short} in {gitops.ref.namespace or 'the cluster'} ({tool}) syncs this "
        "target automatically and would revert a manual change"
    )
    if mode is GitOpsMode.REFUSE:
        return base + "; policy says refuse: roll back in Git, or change the policy's gitops rule"
    return (
        base
        + "; pass --suspend-gitops to suspend it first (recorded, resumable), or roll back in Git"
    )


def _has(reasons: Sequence[Reason], code: str) -> bool:
    return any(r.code == code for r in reasons)


__all__ = [
    "Attempt",
    "GitOpsState",
    "GuardVerdict",
    "Identity",
    "check_guards",
    "decide",
    "policy_request",
    "waiting_message",
]
