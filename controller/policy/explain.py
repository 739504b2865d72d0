"""Render a policy decision as short sentences for people (``rollback policy explain``).

Pure: takes the policy, the request, its decision and ``now``; returns lines.
execute can reuse it to say why it refused.
"""

from __future__ import annotations

from datetime import datetime

from controller.durations import format_duration, format_instant
from controller.policy.evaluate import DENY_CODES, FALLBACK, PolicyDecision, PolicyRequest
from controller.policy.schema import Confirmation, Policy, PolicyScope
from controller.policy.windows import describe_window

_CONDITION_CODES = frozenset({"policy.confirmation", "policy.approvals", "policy.gitops-suspend"})


def explain_lines(
    policy: Policy, request: PolicyRequest, decision: PolicyDecision, now: datetime
) -> list[str]:
    """The explanation, one line per entry, no trailing newlines."""
    lines = [_request_line(request, now), "Policy: " + ", ".join(policy.files or ("(none)",))]

    matched = [s for s in policy.scopes if s.name in decision.matched_scopes]
    lines.append("Matching scopes:" if matched else "Matching scopes: none")
    width = max((len(s.name) for s in matched), default=0)
    lines.extend(f"  {s.name.ljust(width)}  {_describe_scope(s)}" for s in matched)
    others = [s.name for s in policy.scopes if s.name not in decision.matched_scopes]
    if others:
        lines.append("Not matching: " + ", ".join(others))

    lines.append("Decision: " + _verdict(decision))
    sections = (
        ("Why:", [r for r in decision.reasons if r.code in DENY_CODES]),
        (
            "Before it runs:" if decision.allowed else "It would also need:",
            [r for r in decision.reasons if r.code in _CONDITION_CODES],
        ),
        (
            "Notes:",
            [
                r
                for r in decision.reasons
                if r.code not in DENY_CODES and r.code not in _CONDITION_CODES
            ],
        ),
    )
    for title, reasons in sections:
        if reasons:
            lines.append(title)
            lines.extend(f"  - {r.message}" for r in reasons)

    lines.append("Rules, and the scopes that decided them:")
    lines.extend(f"  {name}: {value}" for name, value in _rule_rows(decision))
    windows = _freeze_lines(matched, decision)
    if windows:
        lines.append("Freeze windows:")
        lines.extend(windows)
    return lines


def _freeze_lines(scopes: list[PolicyScope], decision: PolicyDecision) -> list[str]:
    """Every freeze window of the matching scopes, and whether it is active now."""
    active = {(f.scope, f.window.name): f for f in decision.freezes}
    lines: list[str] = []
    for scope in scopes:
        for window in scope.rules.freeze:
            found = active.get((scope.name, window.name))
            state = f"active until {format_instant(found.end)}" if found else "not active"
            lines.append(f"  {window.name} ({scope.name}): {describe_window(window)}; {state}")
    return lines


def _request_line(request: PolicyRequest, now: datetime) -> str:
    target = request.target.short if request.target else "a workload"
    labels = ",".join(f"{k}={v}" for k, v in sorted(request.labels.items())) or "none"
    mode = "unattended" if request.unattended else "attended"
    glass = ", break-glass" if request.break_glass else ""
    return (
        f"Request: {request.action.value} {target} in namespace {request.namespace} "
        f"(labels {labels}), verdict {request.safety.value}, {mode}{glass}, "
        f"at {format_instant(now)}."
    )


def _describe_scope(scope: PolicyScope) -> str:
    text = "namespaces " + ", ".join(scope.match.namespaces)
    if scope.match.selector is not None and scope.match.selector.requirements:
        text += f"; labels {scope.match.selector}"
    if scope.sources:
        text += f" ({', '.join(scope.sources)})"
    return text


def _verdict(decision: PolicyDecision) -> str:
    if not decision.allowed:
        return "refused."
    needs: list[str] = []
    if any(r.code == "policy.confirmation" for r in decision.reasons):
        needs.append("typed confirmation")
    if decision.approvals_required:
        needs.append(f"{decision.approvals_required} approval(s)")
    return "allowed" + (", after " + " and ".join(needs) if needs else "") + "."


def _by(decision: PolicyDecision, rule: str) -> str:
    scopes = decision.decided_by.get(rule, (FALLBACK,))
    return f"({', '.join(scopes)})"


def _rule_rows(decision: PolicyDecision) -> list[tuple[str, str]]:
    actions = ", ".join(a.value for a in decision.allowed_actions) or "none"
    approvals = (
        "; ".join(
            f"{a.count} from {' or '.join(a.approvers) or 'anyone'}"
            + (f", {a.validity_note}" if a.validity_note else "")
            for a in decision.approvals
        )
        or "none"
    )
    limits = (
        "; ".join(
            f"{s.limit.max_actions} per {format_duration(s.limit.per)}, {s.used} used ({s.scope})"
            for s in decision.rate_limits
        )
        or "none"
    )
    freezes = (
        "; ".join(
            f"{f.window.name} active"
            + (f", {f.excepted_by} excepted" if f.excepted_by else "")
            + f" ({f.scope})"
            for f in decision.freezes
        )
        or f"none active {_by(decision, 'freeze')}"
    )
    glass = "not allowed"
    if decision.break_glass_allowed:
        glass = "allowed" + (" with a reason" if decision.break_glass_requires_reason else "")
    confirmation = (
        "type the target's name" if decision.confirmation is Confirmation.TYPED_NAME else "none"
    )
    return [
        ("actions", f"{actions} {_by(decision, 'actions')}"),
        ("confirmation", f"{confirmation} {_by(decision, 'confirmation')}"),
        ("approvals", f"{approvals} {_by(decision, 'approvals')}"),
        (
            "unattended",
            f"{'allowed' if decision.unattended_allowed else 'not allowed'} "
            f"{_by(decision, 'unattended')}",
        ),
        ("rate limit", limits if decision.rate_limits else f"none {_by(decision, 'rateLimit')}"),
        ("freeze", freezes),
        ("break-glass", f"{glass} {_by(decision, 'breakGlass')}"),
        ("gitops", f"{decision.gitops.value} {_by(decision, 'gitops')}"),
        (
            "risky needs confirmation",
            f"{'yes' if decision.risky_requires_confirmation else 'no'} "
            f"{_by(decision, 'riskyRequiresConfirmation')}",
        ),
        ("notify", f"{', '.join(decision.notify) or 'nobody'} {_by(decision, 'notify')}"),
    ]
