"""Evaluate a policy for one proposed action: policy + facts + time -> decision with reasons.

:func:`evaluate` is pure: no I/O, no clock (``now`` is a parameter), the same
inputs always give the same :class:`PolicyDecision`.  assess, execute and the
controller all call it; ``rollback policy explain`` prints it.

Precedence when scopes overlap is safe by construction: every scope whose
``match`` covers the target applies, and for each rule the strictest opinion
wins (deny beats allow, typed-name beats none, every approval requirement
applies, a freeze from any scope applies, every rate limit applies).  A scope
that leaves a rule out has no opinion on it.  So matching one more scope, or
adding a scope, can only make a decision stricter; only editing or narrowing an
existing scope (by name) can loosen one, and that is a reviewable change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import TypeVar

from controller.durations import format_duration, format_instant
from controller.model import ActionKind, ObjectRef, Reason, Safety
from controller.policy.schema import (
    DEFAULT_APPROVAL_VALIDITY,
    GUARDED_ACTIONS,
    BreakGlass,
    Confirmation,
    FreezeWindow,
    GitOpsMode,
    Policy,
    PolicyScope,
    RateLimit,
)
from controller.policy.windows import active_span

# Reason codes that make ``allowed`` false.  Other codes are conditions
# (confirmation, approvals) or notes (an exception or break-glass was used).
DENY_CODES = frozenset(
    {
        "policy.no-scope",
        "policy.action-not-allowed",
        "policy.freeze",
        "policy.unsafe-verdict",
        "policy.break-glass-not-allowed",
        "policy.break-glass-reason-required",
        "policy.unattended-not-allowed",
        "policy.rate-limit",
        "policy.gitops-refuse",
    }
)

# What a field falls back to when no matching scope has an opinion: the safe choice.
FALLBACK = "built-in fallback"


@dataclass(frozen=True)
class RecentAction:
    """An automatic action taken earlier, for rate limits (from the audit log or ledger).

    It counts against a scope's limit when that scope matches its namespace and labels.
    """

    at: datetime
    namespace: str
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class PolicyRequest:
    """The facts about one proposed action that the policy judges.

    ``labels`` are the target's labels (for a Deployment, its own labels);
    ``related_labels`` the labels of other workloads the action affects (the
    consumers of a ConfigMap or flag).  A scope's selector matches if it matches
    any of them, which can only make the decision stricter.
    ``unattended`` is true for the controller and for ``--yes``.
    ``recent_actions`` are earlier automatic actions (any scope; each scope counts its own).
    ``gitops_owned`` is true when Argo CD or Flux manages the target.
    """

    action: ActionKind
    namespace: str
    safety: Safety
    target: ObjectRef | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    related_labels: tuple[Mapping[str, str], ...] = ()
    unattended: bool = False
    break_glass: bool = False
    break_glass_reason: str = ""
    recent_actions: tuple[RecentAction, ...] = ()
    gitops_owned: bool = False


@dataclass(frozen=True)
class ApprovalRequirement:
    """``count`` approvals from one of ``approvers`` (empty: anyone), demanded by ``scope``.

    Each approval counts for ``valid_for`` (the scope's ``approvals.validFor``)
    from when the API server stored it.
    """

    scope: str
    count: int
    approvers: tuple[str, ...] = ()
    valid_for: timedelta = DEFAULT_APPROVAL_VALIDITY

    @property
    def validity_note(self) -> str:
        """``valid for 30m`` when the validity is not the default one hour, else empty."""
        if self.valid_for == DEFAULT_APPROVAL_VALIDITY:
            return ""
        return f"valid for {format_duration(self.valid_for)}"


@dataclass(frozen=True)
class RateLimitState:
    """One scope's rate limit and how much of it is used at ``now``."""

    scope: str
    limit: RateLimit
    used: int
    next_free: datetime | None  # when one more action fits again, if exhausted

    @property
    def remaining(self) -> int:
        return max(0, self.limit.max_actions - self.used)


@dataclass(frozen=True)
class ActiveFreeze:
    """A freeze window active at ``now`` in a matching scope, and whether it still blocks."""

    scope: str
    window: FreezeWindow
    start: datetime
    end: datetime
    excepted_by: str = ""  # "action" or "break-glass" when an exception lets the action through


@dataclass(frozen=True)
class PolicyDecision:
    """What the policy says about one request.

    ``allowed`` is false when any reason in :data:`DENY_CODES` is present.  An
    allowed attended action still needs ``confirmation`` and ``approvals``; the
    caller enforces those.  ``decided_by`` maps each rule name to the scopes
    whose opinion won (or :data:`FALLBACK`).
    """

    allowed: bool
    reasons: tuple[Reason, ...]
    matched_scopes: tuple[str, ...]
    allowed_actions: tuple[ActionKind, ...]
    confirmation: Confirmation
    approvals: tuple[ApprovalRequirement, ...]
    unattended_allowed: bool
    break_glass_allowed: bool
    break_glass_requires_reason: bool
    gitops: GitOpsMode
    risky_requires_confirmation: bool
    notify: tuple[str, ...]
    rate_limits: tuple[RateLimitState, ...]
    freezes: tuple[ActiveFreeze, ...]
    decided_by: Mapping[str, tuple[str, ...]]

    @property
    def denials(self) -> tuple[Reason, ...]:
        """The reasons that make the action not allowed."""
        return tuple(r for r in self.reasons if r.code in DENY_CODES)

    @property
    def approvals_required(self) -> int:
        """The largest approval count any matching scope demands (0: none)."""
        return max((a.count for a in self.approvals), default=0)


def match_scopes(
    policy: Policy,
    namespace: str,
    labels: Mapping[str, str] = MappingProxyType({}),
    related_labels: Iterable[Mapping[str, str]] = (),
) -> tuple[PolicyScope, ...]:
    """The scopes that cover an object in ``namespace`` with these labels, in policy order."""
    label_sets = (labels, *related_labels)
    return tuple(s for s in policy.scopes if _scope_matches(s, namespace, label_sets))


def evaluate(policy: Policy, request: PolicyRequest, now: datetime) -> PolicyDecision:
    """Decide whether ``request`` may proceed at ``now`` under ``policy``; no side effects.

    Every reason is collected (not just the first), denials first, so the caller
    can show the whole picture.  ``now`` must be timezone-aware.
    """
    if now.tzinfo is None:
        raise ValueError("now must carry a timezone")
    now = now.astimezone(UTC)
    scopes = match_scopes(policy, request.namespace, request.labels, request.related_labels)
    rules = _combine(scopes)
    denials: list[Reason] = []
    conditions: list[Reason] = []
    notes: list[Reason] = []

    if not scopes:
        denials.append(
            Reason(
                "policy.no-scope",
                f"No policy scope covers namespace {request.namespace}; add one to allow actions.",
            )
        )
    guarded = request.action in GUARDED_ACTIONS
    if guarded and request.action not in rules.actions:
        denials.extend(
            Reason(
                "policy.action-not-allowed",
                f"Scope {s.name} does not allow {request.action.value} "
                f"(it allows {', '.join(a.value for a in s.rules.actions) or 'nothing'}).",
            )
            for s in scopes
            if s.rules.actions is not None and request.action not in s.rules.actions
        )

    glass_ok = _check_break_glass(request, rules.break_glass, rules.decided, denials, notes)
    freezes = (
        _check_freezes(
            scopes,
            request,
            now,
            glass_ok=glass_ok,
            glass_allowed=rules.break_glass.allowed,
            denials=denials,
            notes=notes,
        )
        if guarded
        else ()
    )

    if guarded and request.safety is Safety.UNSAFE:
        if glass_ok:
            notes.append(
                Reason(
                    "policy.unsafe-break-glass",
                    "The rollback-safety verdict is unsafe; break-glass overrides it.",
                )
            )
        else:
            denials.append(
                Reason(
                    "policy.unsafe-verdict",
                    "The rollback-safety verdict is unsafe; only break-glass may override it.",
                )
            )

    confirmation = rules.confirmation
    decided = dict(rules.decided)
    raised_by_risk = (
        request.safety is Safety.RISKY
        and rules.risky_requires_confirmation
        and confirmation is Confirmation.NONE
    )
    if raised_by_risk:
        confirmation = Confirmation.TYPED_NAME
        decided["confirmation"] = rules.decided["riskyRequiresConfirmation"]

    unattended_ok, unattended_why = _unattended(rules, request)
    rate_limits = _rate_limits(scopes, request.recent_actions, now)
    if request.unattended and guarded:
        if not unattended_ok:
            denials.append(Reason("policy.unattended-not-allowed", unattended_why))
        for state in rate_limits:
            if state.remaining == 0:
                denials.append(Reason("policy.rate-limit", _rate_limit_message(state)))

    if guarded and request.gitops_owned:
        if rules.gitops is GitOpsMode.REFUSE:
            denials.append(
                Reason(
                    "policy.gitops-refuse",
                    f"A GitOps controller owns the target and scope "
                    f"{_names(rules.decided['gitops'])} says refuse: change it through Git.",
                )
            )
        else:
            conditions.append(
                Reason(
                    "policy.gitops-suspend",
                    "A GitOps controller owns the target: suspend it first "
                    "(recorded, resumable with rollback resume-gitops).",
                )
            )

    if guarded and not request.unattended:
        if confirmation is Confirmation.TYPED_NAME:
            risky = " (the verdict is risky)" if raised_by_risk else ""
            conditions.append(
                Reason(
                    "policy.confirmation",
                    f"Type the target's name to confirm{risky}.",
                )
            )
        conditions.extend(
            Reason(
                "policy.approvals",
                f"Needs {a.count} approval(s) from {_approvers(a.approvers)} "
                f"(scope {a.scope}{', ' + a.validity_note if a.validity_note else ''}).",
            )
            for a in rules.approvals
        )
    if not guarded:
        notes.append(
            Reason("policy.no-action", f"{request.action.value} changes nothing; no rule applies.")
        )

    reasons = tuple(denials + conditions + notes)
    return PolicyDecision(
        allowed=not denials,
        reasons=reasons,
        matched_scopes=tuple(s.name for s in scopes),
        allowed_actions=rules.actions,
        confirmation=confirmation,
        approvals=rules.approvals,
        unattended_allowed=unattended_ok,
        break_glass_allowed=rules.break_glass.allowed,
        break_glass_requires_reason=rules.break_glass.require_reason,
        gitops=rules.gitops,
        risky_requires_confirmation=rules.risky_requires_confirmation,
        notify=rules.notify,
        rate_limits=rate_limits,
        freezes=freezes,
        decided_by=MappingProxyType(decided),
    )


# ---------------------------------------------------------------------------
# Combining the opinions of the matching scopes
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Combined:
    actions: tuple[ActionKind, ...]
    confirmation: Confirmation
    approvals: tuple[ApprovalRequirement, ...]
    unattended_scopes: tuple[PolicyScope, ...]
    break_glass: BreakGlass
    gitops: GitOpsMode
    risky_requires_confirmation: bool
    notify: tuple[str, ...]
    decided: Mapping[str, tuple[str, ...]]


_T = TypeVar("_T")


def _strictest(
    scopes: tuple[PolicyScope, ...],
    get: Callable[[PolicyScope], _T | None],
    rank: Callable[[_T], int],
    fallback: _T,
) -> tuple[_T, tuple[str, ...]]:
    """The opinion with the highest strictness ``rank``, and every scope that holds it."""
    opinions = [(s.name, v) for s in scopes if (v := get(s)) is not None]
    if not opinions:
        return fallback, (FALLBACK,)
    top = max(rank(v) for _, v in opinions)
    winners = [(n, v) for n, v in opinions if rank(v) == top]
    return winners[0][1], tuple(n for n, _ in winners)


def _combine(scopes: tuple[PolicyScope, ...]) -> _Combined:
    decided: dict[str, tuple[str, ...]] = {}

    # Actions: only what every opinionated scope allows.
    allowed = list(GUARDED_ACTIONS)
    restricting: list[str] = []
    for scope in scopes:
        if scope.rules.actions is None:
            continue
        kept = [a for a in allowed if a in scope.rules.actions]
        if len(scope.rules.actions) < len(GUARDED_ACTIONS):
            restricting.append(scope.name)
        allowed = kept
    opinionated = [s.name for s in scopes if s.rules.actions is not None]
    decided["actions"] = tuple(restricting or opinionated) or (FALLBACK,)

    confirmation, decided["confirmation"] = _strictest(
        scopes,
        lambda s: s.rules.confirmation,
        lambda c: 1 if c is Confirmation.TYPED_NAME else 0,
        Confirmation.TYPED_NAME,
    )

    approvals = tuple(
        ApprovalRequirement(
            s.name,
            s.rules.approvals.count,
            s.rules.approvals.approvers,
            s.rules.approvals.valid_for,
        )
        for s in scopes
        if s.rules.approvals is not None and s.rules.approvals.count > 0
    )
    decided["approvals"] = (
        tuple(a.scope for a in approvals)
        or tuple(s.name for s in scopes if s.rules.approvals is not None)
        or (FALLBACK,)
    )

    unattended_scopes = tuple(s for s in scopes if s.rules.unattended is not None)
    decided["unattended"] = (
        tuple(
            s.name
            for s in unattended_scopes
            if not s.rules.unattended or not s.rules.unattended.allowed
        )
        or tuple(s.name for s in unattended_scopes)
        or (FALLBACK,)
    )

    rate_scopes = tuple(s.name for s in scopes if s.rules.rate_limit is not None)
    decided["rateLimit"] = rate_scopes or (FALLBACK,)
    freeze_scopes = tuple(s.name for s in scopes if s.rules.freeze)
    decided["freeze"] = freeze_scopes or (FALLBACK,)

    break_glass, decided["breakGlass"] = _strictest(
        scopes,
        lambda s: s.rules.break_glass,
        lambda b: (0 if b.allowed else 2) + (1 if b.require_reason else 0),
        BreakGlass(allowed=False),
    )
    # Denial and a required reason can come from different scopes; combine both.
    require_reason = any(
        s.rules.break_glass.require_reason for s in scopes if s.rules.break_glass is not None
    )
    break_glass = BreakGlass(break_glass.allowed, break_glass.require_reason or require_reason)

    gitops, decided["gitops"] = _strictest(
        scopes,
        lambda s: s.rules.gitops,
        lambda g: 1 if g is GitOpsMode.REFUSE else 0,
        GitOpsMode.REFUSE,
    )
    risky, decided["riskyRequiresConfirmation"] = _strictest(
        scopes,
        lambda s: s.rules.risky_requires_confirmation,
        lambda b: 1 if b else 0,
        True,
    )

    notify: list[str] = []
    for scope in scopes:
        notify.extend(t for t in scope.rules.notify if t not in notify)
    decided["notify"] = tuple(s.name for s in scopes if s.rules.notify) or (FALLBACK,)

    return _Combined(
        actions=tuple(allowed),
        confirmation=confirmation,
        approvals=approvals,
        unattended_scopes=unattended_scopes,
        break_glass=break_glass,
        gitops=gitops,
        risky_requires_confirmation=risky,
        notify=tuple(notify),
        decided=decided,
    )


# ---------------------------------------------------------------------------
# The individual checks
# ---------------------------------------------------------------------------


def _check_break_glass(
    request: PolicyRequest,
    glass: BreakGlass,
    decided: Mapping[str, tuple[str, ...]],
    denials: list[Reason],
    notes: list[Reason],
) -> bool:
    """Whether a break-glass request is valid; records why not."""
    if not request.break_glass:
        return False
    if not glass.allowed:
        denials.append(
            Reason(
                "policy.break-glass-not-allowed",
                f"Break-glass is not allowed here (scope {_names(decided['breakGlass'])}).",
            )
        )
        return False
    if glass.require_reason and not request.break_glass_reason.strip():
        denials.append(
            Reason(
                "policy.break-glass-reason-required",
                "Break-glass needs a reason (--reason TEXT); it is recorded in the audit.",
            )
        )
        return False
    notes.append(
        Reason(
            "policy.break-glass",
            f"Break-glass requested: {request.break_glass_reason.strip() or 'no reason given'}.",
        )
    )
    return True


def _check_freezes(
    scopes: tuple[PolicyScope, ...],
    request: PolicyRequest,
    now: datetime,
    *,
    glass_ok: bool,
    glass_allowed: bool,
    denials: list[Reason],
    notes: list[Reason],
) -> tuple[ActiveFreeze, ...]:
    active: list[ActiveFreeze] = []
    for scope in scopes:
        for window in scope.rules.freeze:
            span = active_span(window, now)
            if span is None:
                continue
            until = format_instant(span.end)
            if request.action in window.exceptions.actions:
                active.append(ActiveFreeze(scope.name, window, span.start, span.end, "action"))
                notes.append(
                    Reason(
                        "policy.freeze-exception",
                        f"Freeze {window.name} (scope {scope.name}) is active until {until} "
                        f"but allows {request.action.value}.",
                    )
                )
            elif glass_ok and window.exceptions.break_glass:
                active.append(ActiveFreeze(scope.name, window, span.start, span.end, "break-glass"))
                notes.append(
                    Reason(
                        "policy.freeze-break-glass",
                        f"Freeze {window.name} (scope {scope.name}) is active until {until}; "
                        "break-glass overrides it.",
                    )
                )
            else:
                active.append(ActiveFreeze(scope.name, window, span.start, span.end))
                how = (
                    " Break-glass may override it."
                    if window.exceptions.break_glass and glass_allowed and not request.break_glass
                    else ""
                )
                denials.append(
                    Reason(
                        "policy.freeze",
                        f"Freeze {window.name} (scope {scope.name}) is active until {until}.{how}",
                    )
                )
    return tuple(active)


def _unattended(rules: _Combined, request: PolicyRequest) -> tuple[bool, str]:
    """Whether the action may run with no human confirming, and if not, why (one sentence)."""
    if not rules.unattended_scopes:
        return False, "No matching scope allows unattended actions."
    for scope in rules.unattended_scopes:
        unattended = scope.rules.unattended
        assert unattended is not None
        if not unattended.allowed:
            return False, f"Scope {scope.name} does not allow unattended actions."
        if request.safety not in unattended.verdicts:
            verdicts = ", ".join(v.value for v in unattended.verdicts)
            return False, (
                f"Scope {scope.name} allows unattended actions only on {verdicts} verdicts, "
                f"and this one is {request.safety.value}."
            )
    if request.safety is Safety.RISKY and rules.risky_requires_confirmation:
        return False, "The verdict is risky and risky actions need a human to confirm."
    if request.safety is Safety.UNSAFE:
        return False, "An unsafe verdict is never acted on unattended."
    if rules.approvals:
        return False, "Approvals are required, so a human must be involved."
    if request.action in GUARDED_ACTIONS and request.action not in rules.actions:
        return False, f"{request.action.value} is not allowed here at all."
    return True, ""


def _rate_limits(
    scopes: tuple[PolicyScope, ...], recent: tuple[RecentAction, ...], now: datetime
) -> tuple[RateLimitState, ...]:
    states: list[RateLimitState] = []
    for scope in scopes:
        limit = scope.rules.rate_limit
        if limit is None:
            continue
        since = now - limit.per
        times = sorted(
            a.at.astimezone(UTC)
            for a in recent
            if since < a.at <= now and _scope_matches(scope, a.namespace, (a.labels,))
        )
        next_free = None
        if limit.max_actions and len(times) >= limit.max_actions:
            # The window frees up when the oldest action that keeps it full leaves it.
            next_free = times[len(times) - limit.max_actions] + limit.per
        states.append(RateLimitState(scope.name, limit, len(times), next_free))
    return tuple(states)


def _rate_limit_message(state: RateLimitState) -> str:
    per = format_duration(state.limit.per)
    if state.limit.max_actions == 0:
        return f"Scope {state.scope} allows no automatic actions."
    when = f"; the next fits at {format_instant(state.next_free)}" if state.next_free else ""
    return (
        f"Scope {state.scope} allows {state.limit.max_actions} automatic action(s) per {per} "
        f"and {state.used} already happened{when}."
    )


def _scope_matches(
    scope: PolicyScope, namespace: str, label_sets: Iterable[Mapping[str, str]]
) -> bool:
    if not any(fnmatchcase(namespace, glob) for glob in scope.match.namespaces):
        return False
    selector = scope.match.selector
    return selector is None or any(selector.matches(labels) for labels in label_sets)


def _names(names: Iterable[str]) -> str:
    return ", ".join(names)


def _approvers(groups: tuple[str, ...]) -> str:
    return " or ".join(groups) if groups else "anyone"
