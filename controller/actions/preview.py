"""The plan ``rollback execute`` would run for a recommendation, from the assessment's view.

``rollback assess`` shows this preview and its hash; ``rollback execute
--plan-hash H`` runs only if its own fresh plan, built the same way from a
fresh read, has that hash.  Pure: the view in, a :class:`Plan` (or None when
no plan can be made from the view alone) out.
"""

from __future__ import annotations

from datetime import datetime

from controller.actions.config import plan_config_revert, prior_from_ledger
from controller.actions.flags import plan_flag_disable
from controller.actions.plan import Plan
from controller.actions.workload import plan_workload_rollback
from controller.errors import RollbackError
from controller.model import ActionKind, Recommendation
from controller.sources.workloads import consumers_of, find_workload, workload_revisions
from controller.view import ClusterView


def plan_for_recommendation(
    recommendation: Recommendation, view: ClusterView, now: datetime
) -> Plan | None:
    """The plan for ``recommendation``, or None (no action, or its inputs are not in the view).

    A git-sourced config revert (``to_version`` ``git:REF:PATH``) needs the
    repository, which a pure preview does not read: None.
    """
    target = recommendation.target
    if target is None:
        return None
    try:
        if recommendation.action is ActionKind.ROLLBACK:
            workload = find_workload(view, target)
            if workload is None:
                return None
            revisions = workload_revisions(view, workload, now)
            return plan_workload_rollback(workload, revisions, recommendation.to_revision)
        if recommendation.action is ActionKind.DISABLE_FLAG and recommendation.flag:
            holder = view.get(target.kind, target.namespace, target.name)
            return plan_flag_disable(holder, recommendation.flag) if holder else None
        if recommendation.action is ActionKind.REVERT_CONFIG:
            version = recommendation.to_version or ""
            configmap = view.get("ConfigMap", target.namespace, target.name)
            if configmap is None or not version.isdigit():
                return None
            ledger = view.of_kind("ControllerRevision", target.namespace)
            prior = prior_from_ledger(ledger, target.name, int(version))
            return plan_config_revert(configmap, prior, consumers_of(view, target))
    except RollbackError:
        return None
    return None


def preview_lines(plan: Plan) -> tuple[str, ...]:
    """Short lines for the assessment's ``preview``: what changes, the preconditions, the hash."""
    if plan.noop:
        return (f"no-op: {plan.noop}",)
    return (
        plan.summary,
        *plan.changes,
        *(f"precondition: {p}" for p in plan.preconditions),
        *(f"warning: {w}" for w in plan.warnings),
        f"plan hash: {plan.hash}",
    )
