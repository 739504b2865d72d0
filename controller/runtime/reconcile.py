"""One reconcile pass for one incident: read fresh, assess, decide, act (or not), say so.

The sequence, every pass (level-based: the alert only said where to look):

1. **Assess** the alert's namespace from a fresh read
   (:func:`controller.assess.read_view` + :func:`controller.assess.assess`),
   focused on the alerting workload when the labels name one.
2. **Plan** the recommendation as ``rollback execute`` would
   (:func:`controller.actions.execute.prepare`): fresh GETs, a plan with a hash.
3. **Guard** twice, purely: may the controller run it alone (unattended,
   within rate limits)?  And with the approvals recorded for this exact hash?
   Where policy wants no approvals but does not let the controller act alone,
   one approval from anyone is asked for: a person decides.
4. **Decide** (:func:`controller.runtime.decide.decide_incident`).
5. **Act**: notify; record an approval request; or record the intent on the
   incident (before acting) and run :func:`controller.actions.execute.proceed`
   with the leader's guarded Kube: dry run, lock, resourceVersion
   preconditions, Event, annotation, audit line, verification, one attempt.

Every notice goes out once per incident (keys in the incident's state).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from controller.actions.approvals import (
    ApprovalContext,
    ensure_request,
    merged,
    read_approvals,
    read_request,
    request_body,
    requirement_json,
)
from controller.actions.execute import Prepared, Settings, TargetSpec, prepare, proceed
from controller.actions.guards import Attempt, GuardVerdict, Identity, decide
from controller.assess import Assessment, assess, read_view
from controller.errors import (
    ConflictError,
    RefusedError,
    RollbackError,
    UserInputError,
    VerificationError,
)
from controller.kube import Kube
from controller.model import (
    ActionKind,
    Classification,
    Incident,
    ObjectRef,
    Recommendation,
    Scope,
)
from controller.policy import (
    ApprovalRequirement,
    Policy,
    PolicyDecision,
    RecentAction,
    match_scopes,
)
from controller.runtime.decide import (
    Decision,
    Intent,
    Situation,
    decide_incident,
    last_action_hash,
    pod_owner,
)
from controller.runtime.incidents import (
    ActionRecord,
    IncidentRecord,
    IncidentState,
    IncidentStore,
    Phase,
    recent_actions,
)
from controller.runtime.notify import Event, Notice, Notifier

# The requirement the controller adds where policy wants no approvals but
# does not let it act alone: one person, any person, decides.
CONTROLLER_SCOPE: Final = "controller"
ONE_PERSON: Final = ApprovalRequirement(CONTROLLER_SCOPE, 1)
PROGRESS_EVERY: Final = 10.0  # seconds between progress log lines during verification


class Reconciler:
    """Runs passes for incidents with the leader's guarded Kube."""

    def __init__(
        self,
        kube: Kube,
        store: IncidentStore,
        notifier: Notifier,
        *,
        policy: Callable[[], Policy],
        identity: Identity,
        audit_log: Path,
        log: logging.Logger,
        timeout: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.kube = kube
        self.store = store
        self.notifier = notifier
        self.policy = policy
        self.identity = identity
        self.audit_log = audit_log
        self.log = log
        self.timeout = timeout
        self.clock = clock

    # ------------------------------------------------------------------

    def reconcile(
        self, record: IncidentRecord, records: Sequence[IncidentRecord] = ()
    ) -> timedelta | None:
        """One pass for ``record``; returns when to look again (None: not unless it changes)."""
        now = self.clock().astimezone(UTC).replace(microsecond=0)
        policy = self.policy()
        extra = _extra(record)
        requests = self.kube.requests
        if not record.open:
            self._once(
                record,
                "resolved",
                Notice(
                    Event.INCIDENT_RESOLVED,
                    record.id,
                    record.scope.namespace,
                    f"resolved: {record.describe()}",
                    now,
                    target=record.scope.workload,
                ),
                _namespace_targets(policy, record.scope.namespace),
            )
            return None
        record = self._once(
            record,
            "opened",
            Notice(
                Event.INCIDENT_OPENED,
                record.id,
                record.scope.namespace,
                f"incident opened: {record.describe()}: {record.summary}",
                now,
                target=record.scope.workload,
                details={"startsAt": record.started.isoformat(), "labels": dict(record.labels)},
            ),
            _namespace_targets(policy, record.scope.namespace),
        )
        if record.state.action is not None:
            decision = decide_incident(
                Situation(
                    open=True,
                    recommendation=Recommendation(ActionKind.NONE, None, ""),
                    classification=Classification.UNKNOWN,
                    attempted=record.state.action,
                )
            )
            self.log.info("pass: %s: %s", decision.intent.value, decision.reason, extra=extra)
            return decision.requeue

        assessment = self._assess(record, now, policy)
        rec = assessment.recommendation
        prepared, problem = self._prepare(rec, assessment, now)
        situation = Situation(
            open=True,
            recommendation=rec,
            classification=assessment.triage.classification,
            plan_hash=prepared.plan.hash if prepared else None,
            plan_noop=prepared.plan.noop if prepared else "",
            plan_problem=problem,
            already_applied=bool(prepared)
            and last_action_hash(prepared.target if prepared else None)
            == (prepared.plan.hash if prepared else ""),
            approval_requested=record.state.approval_requested,
        )
        guards: _Guards | None = None
        if prepared is not None and not prepared.plan.noop:
            guards = self._guards(record, prepared, policy, now, records)
            situation = dataclasses.replace(
                situation, unattended=guards.unattended, attended=guards.attended
            )
        decision = decide_incident(situation)
        target_extra = _extra(record, rec.target)
        self.log.info(
            "pass: %s: %s (%d API requests to decide)",
            decision.intent.value,
            decision.reason,
            self.kube.requests - requests,
            extra=target_extra,
        )
        targets = (
            guards.decision.notify
            if guards is not None
            else _namespace_targets(policy, record.scope.namespace)
        )
        this = _Pass(record, rec, decision, tuple(targets), now, prepared, guards)
        if decision.intent is Intent.NOTIFY:
            self._notify_assessment(this)
        elif decision.intent is Intent.REQUEST_APPROVAL:
            self._request_approval(this)
        elif decision.intent in (Intent.EXECUTE, Intent.EXECUTE_APPROVED):
            return self._execute(this)
        return decision.requeue

    # -- steps -----------------------------------------------------------

    def _assess(self, record: IncidentRecord, now: datetime, policy: Policy) -> Assessment:
        namespace = record.scope.namespace
        whole = Scope(namespaces=(namespace,))
        view = read_view(self.kube, whole, now)
        workload = record.scope.workload or pod_owner(view, namespace, record.scope.pod)
        start = min(record.started, now)
        focused = Scope(namespaces=(namespace,), workloads=(workload,) if workload else ())
        lookback = policy.scoring.lookback
        try:
            return assess(view, Incident(start, now, lookback, focused), policy.scoring)
        except UserInputError as err:
            # The alert named a workload that is not (or no longer) there.
            self.log.info("assessing the namespace instead: %s", err, extra=_extra(record))
            return assess(view, Incident(start, now, lookback, whole), policy.scoring)

    def _prepare(
        self, rec: Recommendation, assessment: Assessment, now: datetime
    ) -> tuple[Prepared | None, str]:
        if rec.action in (ActionKind.NONE, ActionKind.INVESTIGATE) or rec.target is None:
            return None, ""
        spec = TargetSpec.for_recommendation(rec)
        if spec is None:
            return None, (
                f"the controller cannot run this {rec.action.value} itself "
                f"({rec.to_version or 'no known prior version'}): a person runs rollback execute"
            )
        verdict = rec.safety or assessment.safety.get(rec.target)

        def judge(*_: Any) -> Any:
            return verdict

        try:
            return prepare(
                self.kube, spec, self.identity, now, judge=judge if verdict else None
            ), ""
        except RollbackError as err:
            return None, f"no plan: {err}"

    def _guards(
        self,
        record: IncidentRecord,
        prepared: Prepared,
        policy: Policy,
        now: datetime,
        records: Sequence[IncidentRecord],
    ) -> _Guards:
        recent = _recent(records)

        def judge(attempt: Attempt) -> tuple[PolicyDecision, GuardVerdict]:
            return decide(
                policy,
                prepared.plan,
                attempt,
                prepared.safety,
                now,
                labels=prepared.labels,
                related_labels=prepared.related_labels,
                gitops=prepared.gitops,
                recent_actions=recent,
                identity=prepared.identity,
            )

        base = Attempt(incident=record.id, suspend_gitops=True)
        alone = dataclasses.replace(base, yes=True)
        _, unattended = judge(alone)
        context = ApprovalContext(confirms=True)
        attended_attempt = dataclasses.replace(base, approval=context)
        decision, attended = judge(attended_attempt)
        extra = () if decision.approvals else (ONE_PERSON,)
        if extra:
            context = dataclasses.replace(context, extra=extra)
            attended_attempt = dataclasses.replace(base, approval=context)
            decision, attended = judge(attended_attempt)
        plan = prepared.plan
        if any(r.code == "guard.approvals" for r in attended.refusals):
            approvals = read_approvals(self.kube, plan.target.namespace, plan.hash)
            if approvals:
                request = read_request(self.kube, plan.target.namespace, plan.hash)
                # Counted as `rollback approve` counts them: the requester
                # excluded, each valid for what the request recorded.
                context = dataclasses.replace(
                    context,
                    approvals=approvals,
                    exclude=frozenset({request.requester} if request else ()),
                    recorded=request.requirements if request else (),
                )
                attended_attempt = dataclasses.replace(base, approval=context)
                decision, attended = judge(attended_attempt)
        return _Guards(
            unattended=unattended,
            attended=attended,
            decision=decision,
            requirements=merged(decision.approvals, extra),
            alone=alone,
            attended_attempt=attended_attempt,
            recent=recent,
        )

    def _notify_assessment(self, this: _Pass) -> None:
        record, rec, decision, prepared = this.record, this.rec, this.decision, this.prepared
        targets, now = this.targets, this.now
        refused = decision.code.startswith(("guard.", "policy."))
        plan_hash = prepared.plan.hash if prepared else rec.plan_hash
        key = f"{decision.code}:{rec.action.value}:{rec.target or '-'}:{plan_hash or '-'}"
        self._once(
            record,
            key,
            Notice(
                Event.REFUSED if refused else Event.ASSESSED,
                record.id,
                record.scope.namespace,
                decision.reason,
                now,
                target=rec.target,
                plan_hash=plan_hash,
                details={
                    "action": rec.action.value,
                    "summary": rec.summary,
                    "code": decision.code,
                    "safety": rec.safety.safety.value if rec.safety else None,
                },
            ),
            targets,
            last=decision.reason,
        )

    def _request_approval(self, this: _Pass) -> None:
        record, prepared, guards, targets, now = (
            this.record,
            this.prepared,
            this.guards,
            this.targets,
            this.now,
        )
        assert prepared is not None and guards is not None
        plan = prepared.plan
        safety = prepared.safety.safety.value if prepared.safety else ""
        body = request_body(
            plan, guards.requirements, prepared.identity, now, incident=record.id, safety=safety
        )
        extra = _extra(record, plan.target)
        try:
            request, created = ensure_request(self.kube, body)
        except RollbackError as err:
            self._once(
                record,
                f"approval-failed:{plan.hash}",
                Notice(
                    Event.REFUSED,
                    record.id,
                    plan.target.namespace,
                    f"approval needed for {plan.summary} but the request could not be "
                    f"recorded: {err}",
                    now,
                    target=plan.target,
                    plan_hash=plan.hash,
                ),
                targets,
            )
            return
        self.log.info(
            "approval request %s %s (requester %s)",
            request.name,
            "recorded" if created else "already there",
            request.requester,
            extra=extra,
        )
        command = f"rollback approve {plan.hash} -n {plan.target.namespace}"
        record = self._once(
            record,
            f"approval:{plan.hash}",
            Notice(
                Event.APPROVAL_REQUESTED,
                record.id,
                plan.target.namespace,
                f"approval needed: {plan.summary} (plan {plan.hash}, safety {safety or 'n/a'}): "
                f"run `{command}`",
                now,
                target=plan.target,
                plan_hash=plan.hash,
                details={
                    "command": command,
                    "needs": [requirement_json(r) for r in guards.requirements],
                    "changes": list(plan.changes),
                    "from": plan.from_label,
                    "to": plan.to_label,
                },
            ),
            targets,
        )
        self._write(record, approval_requested=plan.hash)

    def _execute(self, this: _Pass) -> timedelta | None:
        record, rec, prepared, guards = this.record, this.rec, this.prepared, this.guards
        decision, targets, now = this.decision, this.targets, this.now
        assert prepared is not None and guards is not None
        plan = prepared.plan
        unattended = decision.intent is Intent.EXECUTE
        attempt = guards.alone if unattended else guards.attended_attempt
        extra = _extra(record, plan.target)
        intent = ActionRecord(
            plan_hash=plan.hash,
            phase=Phase.STARTED,
            at=now,
            summary=plan.summary,
            target=plan.target,
            unattended=unattended,
            labels=dict(prepared.labels),
        )
        # Record the intent first (STYLE.md 5): a successor finds it and never acts twice.
        try:
            record = self.store.write_state(
                record, dataclasses.replace(record.state, action=intent)
            )
        except ConflictError:
            self.log.info("the incident changed since it was read; deciding again", extra=extra)
            return timedelta(seconds=1)

        def executed(line: str) -> None:
            if line.startswith(f"{plan.summary}: the write was accepted"):
                self.notifier.send(
                    Notice(
                        Event.EXECUTED,
                        record.id,
                        plan.target.namespace,
                        line,
                        self.clock(),
                        target=plan.target,
                        plan_hash=plan.hash,
                        details={"unattended": unattended, "from": plan.from_label},
                    ),
                    targets,
                )

        settings = Settings(
            attempt=attempt,
            policy=self.policy(),
            audit_log=self.audit_log,
            timeout=self.timeout,
            why=f"incident {record.id} ({record.describe()}): {rec.summary}",
            recent_actions=guards.recent,
        )
        console = LogConsole(self.log, extra, executed)
        phase, event = Phase.FAILED, Event.REFUSED
        try:
            result = proceed(self.kube, prepared, settings, console, clock=self.clock)
            message = result.message
            phase = Phase.VERIFIED if result.outcome.value == "verified" else Phase.EXECUTED
            event = Event.VERIFIED if phase is Phase.VERIFIED else Event.EXECUTED
        except VerificationError as err:
            message, phase, event = str(err), Phase.NOT_CONVERGED, Event.NOT_CONVERGED
        except RefusedError as err:
            message, phase, event = str(err), Phase.REFUSED, Event.REFUSED
        except RollbackError as err:
            message, phase, event = f"failed: {err}", Phase.FAILED, Event.REFUSED
        self.log.info("action %s: %s", phase.value, message, extra=extra)
        self.notifier.send(
            Notice(
                event,
                record.id,
                plan.target.namespace,
                message,
                self.clock(),
                target=plan.target,
                plan_hash=plan.hash,
                details={"phase": phase.value, "unattended": unattended},
            ),
            targets,
        )
        outcome = dataclasses.replace(intent, phase=phase, message=message[:1000])
        for _ in range(3):
            fresh = self.store.get(record.name) or record
            try:
                self.store.write_state(fresh, dataclasses.replace(fresh.state, action=outcome))
                break
            except ConflictError:
                continue
        return None

    # -- state and notices ------------------------------------------------

    def _once(
        self,
        record: IncidentRecord,
        key: str,
        notice: Notice,
        targets: Iterable[str],
        *,
        last: str = "",
    ) -> IncidentRecord:
        """Send ``notice`` unless this incident already sent ``key``; remember that it did.

        Sent first, remembered second: if remembering fails the worst case is
        a repeated notice, never a lost one.
        """
        if key in record.state.notified:
            return record
        self.notifier.send(notice, targets)
        notified = (*record.state.notified, key)
        return self._write(record, notified=notified, last=last or record.state.last)

    def _write(self, record: IncidentRecord, **changes: Any) -> IncidentRecord:
        state: IncidentState = dataclasses.replace(record.state, **changes)
        try:
            return self.store.write_state(record, state)
        except ConflictError:
            fresh = self.store.get(record.name)
            if fresh is None:
                return record
            merged_state = dataclasses.replace(
                fresh.state,
                notified=tuple(dict.fromkeys((*fresh.state.notified, *state.notified))),
                approval_requested=state.approval_requested or fresh.state.approval_requested,
                last=state.last or fresh.state.last,
            )
            try:
                return self.store.write_state(fresh, merged_state)
            except ConflictError:
                return fresh


@dataclasses.dataclass(frozen=True)
class _Guards:
    unattended: GuardVerdict
    attended: GuardVerdict
    decision: PolicyDecision
    requirements: tuple[ApprovalRequirement, ...]
    alone: Attempt
    attended_attempt: Attempt
    recent: tuple[RecentAction, ...]


@dataclasses.dataclass(frozen=True)
class _Pass:
    """What one pass knows by the time it acts."""

    record: IncidentRecord
    rec: Recommendation
    decision: Decision
    targets: tuple[str, ...]
    now: datetime
    prepared: Prepared | None = None
    guards: _Guards | None = None


class LogConsole:
    """The execute sequence's console, for a controller with nobody at a terminal.

    Every line goes to the log with its target; nobody answers prompts (a
    plan that needs a typed confirmation is refused, never guessed); the live
    progress line is logged every few seconds.
    """

    def __init__(
        self,
        log: logging.Logger,
        extra: Mapping[str, str],
        on_line: Callable[[str], None] = lambda _: None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.extra = dict(extra)
        self.on_line = on_line
        self._monotonic = monotonic
        self._last_progress = 0.0
        self._last_text = ""

    def show(self, prepared: Prepared, decision: PolicyDecision, guards: GuardVerdict) -> None:
        plan = prepared.plan
        safety = prepared.safety.safety.value if prepared.safety else "not judged"
        self.log.info(
            "plan %s: %s; from %s to %s; safety %s; policy %s (scopes %s)%s",
            plan.hash,
            plan.summary,
            plan.from_label,
            plan.to_label,
            safety,
            "allows" if decision.allowed else "refuses",
            ", ".join(decision.matched_scopes) or "none",
            "".join(f"; {n.message}" for n in guards.notes),
            extra=self.extra,
        )
        for change in plan.changes:
            self.log.info("plan %s: change: %s", plan.hash, change, extra=self.extra)

    def line(self, text: str) -> None:
        self.log.info("%s", text, extra=self.extra)
        self.on_line(text)

    def ask(self, prompt: str) -> str | None:
        return None

    def progress(self, text: str) -> None:
        now = self._monotonic()
        if text != self._last_text and now - self._last_progress >= PROGRESS_EVERY:
            self._last_progress, self._last_text = now, text
            self.log.info("%s", text, extra=self.extra)

    def progress_end(self) -> None:
        self._last_text = ""


def _extra(record: IncidentRecord, target: ObjectRef | None = None) -> dict[str, str]:
    ref = target or record.scope.workload
    where = f"{record.scope.namespace}/{ref.short}" if ref else record.scope.namespace
    return {"target": where, "incident": record.id}


def _namespace_targets(policy: Policy, namespace: str) -> tuple[str, ...]:
    """Notify targets of every scope covering the namespace (before a target is known)."""
    targets: list[str] = []
    for scope in match_scopes(policy, namespace):
        targets.extend(t for t in scope.rules.notify if t not in targets)
    return tuple(targets)


def _recent(records: Sequence[IncidentRecord]) -> tuple[RecentAction, ...]:
    return tuple(
        RecentAction(at=a.at, namespace=a.target.namespace, labels=dict(a.labels))
        for a in recent_actions(records)
    )


__all__ = ["CONTROLLER_SCOPE", "LogConsole", "Reconciler"]
