"""What the controller does about one incident on one pass: a pure decision with a reason.

Each pass re-reads the cluster and re-assesses (the alert is only a hint);
then :func:`decide_incident` looks at plain facts and says what to do and when
to look again:

=================  ===============================================================
``close``          the alert resolved: nothing more to do
``observe``        an action was already attempted for this incident (or the target
                   already carries this exact plan): one attempt only, never a second
``notify``         nothing the controller may do (infrastructure, investigate, no
                   plan, a guard refuses): people are told, the next pass looks again
``execute``        policy lets the controller act alone on this verdict, within its
                   rate limits: the guarded path of ``rollback execute``
``request``        a person must decide: record an approval request, notify
``wait``           the request for this exact plan is out; look again soon
``execute-approved``  the approvals for this exact plan are in: act
=================  ===============================================================

No side effects; the clock is not read here (facts carry times).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Final

from controller.actions.guards import GuardVerdict
from controller.model import ActionKind, Classification, ObjectRef, Recommendation
from controller.runtime.incidents import ActionRecord
from controller.view import ClusterView, controller_owner, meta

# When to look again.  Before acting the world may still be moving (a rollout
# that has not yet hit its progress deadline); a request waits for people.
ASSESS_AGAIN: Final = timedelta(seconds=30)
WAIT_FOR_APPROVAL: Final = timedelta(seconds=10)
AFTER_REFUSAL: Final = timedelta(seconds=60)
RETRY_SOON: Final = timedelta(seconds=2)


class Intent(StrEnum):
    CLOSE = "close"
    OBSERVE = "observe"
    NOTIFY = "notify"
    EXECUTE = "execute"
    REQUEST_APPROVAL = "request"
    WAIT_APPROVAL = "wait"
    EXECUTE_APPROVED = "execute-approved"


@dataclass(frozen=True)
class Situation:
    """The facts of one pass, as plain data.

    ``unattended`` and ``attended`` are the guards' verdicts for the fresh
    plan run by the controller alone, and run with the approvals recorded
    for it (None: no plan).  ``already_applied``: the target's
    ``rollback.io/last-action`` carries this plan's hash.
    """

    open: bool
    recommendation: Recommendation
    classification: Classification
    attempted: ActionRecord | None = None
    plan_hash: str | None = None
    plan_noop: str = ""
    plan_problem: str = ""
    already_applied: bool = False
    unattended: GuardVerdict | None = None
    attended: GuardVerdict | None = None
    approval_requested: str = ""


@dataclass(frozen=True)
class Decision:
    intent: Intent
    reason: str
    requeue: timedelta | None
    code: str = ""  # a stable code for notices (dedupe) and tests


def decide_incident(s: Situation) -> Decision:
    """What to do about an incident this pass, why, and when to look again.  Pure."""
    rec = s.recommendation
    if not s.open:
        return Decision(Intent.CLOSE, "the alert resolved", None, "incident.resolved")
    if s.attempted is not None:
        a = s.attempted
        return Decision(
            Intent.OBSERVE,
            f"one attempt only: {a.summary} ({a.phase.value}, plan {a.plan_hash}); "
            "what happens next is a person's call",
            None,
            "incident.attempted",
        )
    if rec.action in (ActionKind.NONE, ActionKind.INVESTIGATE) or rec.target is None:
        return Decision(Intent.NOTIFY, rec.summary, ASSESS_AGAIN, f"assess.{rec.action.value}")
    if s.classification is Classification.INFRASTRUCTURE:
        return Decision(
            Intent.NOTIFY,
            f"the fault looks like infrastructure, so the controller does not act: {rec.summary}",
            ASSESS_AGAIN,
            "assess.infrastructure",
        )
    if s.plan_problem or s.plan_hash is None:
        why = s.plan_problem or "no plan could be made"
        return Decision(Intent.NOTIFY, f"{rec.summary}; {why}", ASSESS_AGAIN, "plan.problem")
    if s.already_applied:
        return Decision(
            Intent.OBSERVE,
            f"{rec.target.short} already carries plan {s.plan_hash}: not applying it twice",
            None,
            "plan.applied",
        )
    if s.plan_noop:
        return Decision(Intent.NOTIFY, f"nothing to do: {s.plan_noop}", AFTER_REFUSAL, "plan.noop")
    if s.unattended is not None and s.unattended.allowed and not s.unattended.confirm:
        return Decision(Intent.EXECUTE, rec.summary, None, "act.unattended")
    attended = s.attended
    if attended is None:
        return Decision(Intent.NOTIFY, rec.summary, ASSESS_AGAIN, "plan.problem")
    if attended.allowed and not attended.confirm:
        return Decision(Intent.EXECUTE_APPROVED, rec.summary, None, "act.approved")
    codes = {r.code for r in attended.refusals}
    if codes == {"guard.approvals"}:
        if s.approval_requested == s.plan_hash:
            return Decision(
                Intent.WAIT_APPROVAL,
                attended.refusals[0].message,
                WAIT_FOR_APPROVAL,
                "approval.waiting",
            )
        return Decision(
            Intent.REQUEST_APPROVAL,
            attended.refusals[0].message,
            WAIT_FOR_APPROVAL,
            "approval.request",
        )
    refusal = attended.refusals[0] if attended.refusals else None
    why = refusal.message if refusal else "a person must confirm and nobody can here"
    code = refusal.code if refusal else "guard.confirm"
    return Decision(Intent.NOTIFY, f"refused: {why}", AFTER_REFUSAL, code)


def pod_owner(view: ClusterView, namespace: str, pod: str | None) -> ObjectRef | None:
    """The workload a pod belongs to (pod -> ReplicaSet -> Deployment), from the view.  Pure.

    A pod already gone is matched by its name's ReplicaSet prefix
    (``web-5655459b74-x7k2p``) or StatefulSet ordinal (``db-0``).
    """
    if not pod:
        return None
    obj = view.get("Pod", namespace, pod)
    owner = controller_owner(obj) if obj is not None else None
    if owner is None:
        parts = pod.rsplit("-", 2)
        candidates = []
        if len(parts) == 3:
            candidates.append(("ReplicaSet", f"{parts[0]}-{parts[1]}"))
        base, _, ordinal = pod.rpartition("-")
        if ordinal.isdigit():
            candidates.append(("StatefulSet", base))
        for kind, name in candidates:
            if view.get(kind, namespace, name) is not None:
                owner = {"kind": kind, "name": name}
                break
    if owner is None:
        return None
    kind, name = str(owner.get("kind")), str(owner.get("name"))
    if kind == "ReplicaSet":
        rs = view.get("ReplicaSet", namespace, name)
        parent = controller_owner(rs) if rs is not None else None
        if parent is None or parent.get("kind") != "Deployment":
            return None
        kind, name = "Deployment", str(parent.get("name"))
    if kind not in ("Deployment", "StatefulSet", "DaemonSet"):
        return None
    return ObjectRef(kind, namespace, name)


def last_action_hash(target: dict[str, object] | None) -> str:
    """The plan hash in a target's ``rollback.io/last-action`` annotation ("" if none).  Pure."""
    import json

    if not target:
        return ""
    raw = (meta(dict(target)).get("annotations") or {}).get("rollback.io/last-action")
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return ""
    return str(value.get("planHash") or "") if isinstance(value, dict) else ""


__all__ = [
    "Decision",
    "Intent",
    "Situation",
    "decide_incident",
    "last_action_hash",
    "pod_owner",
]
