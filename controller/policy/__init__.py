"""Policies: load, validate and evaluate the rules that score changes and guard actions.

The public API, for assess, execute and the controller::

    from controller.policy import load_policy, evaluate, PolicyRequest

    policy = load_policy(paths)                 # defaults < files in order; PolicyError on problems
    settings = policy.scoring                   # ScoringSettings for assess
    decision = evaluate(policy, PolicyRequest(action=..., namespace=..., safety=...), now)
    if not decision.allowed: ...                # decision.denials / decision.reasons explain why

Loading reads files (``loader``); everything else here is pure.  PyYAML is
imported only when a file is parsed.
"""

from controller.policy.evaluate import (
    DENY_CODES,
    ActiveFreeze,
    ApprovalRequirement,
    PolicyDecision,
    PolicyRequest,
    RateLimitState,
    RecentAction,
    evaluate,
    match_scopes,
)
from controller.policy.explain import explain_lines
from controller.policy.loader import (
    DEFAULT_POLICY_NAME,
    PolicySource,
    default_policy,
    default_policy_text,
    load_policy,
    load_policy_sources,
)
from controller.policy.schema import (
    DEFAULT_APPROVAL_VALIDITY,
    GUARDED_ACTIONS,
    MAX_APPROVAL_VALIDITY,
    Approvals,
    BreakGlass,
    Confirmation,
    FreezeExceptions,
    FreezeWindow,
    GitOpsMode,
    Policy,
    PolicyScope,
    RateLimit,
    ScopeMatch,
    ScopeRules,
    Unattended,
    Weekday,
    WeeklyWindow,
)
from controller.policy.scoring import DEFAULT_PRIORS, ScoringSettings, ScoringWeights

__all__ = [
    "DEFAULT_APPROVAL_VALIDITY",
    "DEFAULT_POLICY_NAME",
    "DEFAULT_PRIORS",
    "DENY_CODES",
    "GUARDED_ACTIONS",
    "MAX_APPROVAL_VALIDITY",
    "ActiveFreeze",
    "ApprovalRequirement",
    "Approvals",
    "BreakGlass",
    "Confirmation",
    "FreezeExceptions",
    "FreezeWindow",
    "GitOpsMode",
    "Policy",
    "PolicyDecision",
    "PolicyRequest",
    "PolicyScope",
    "PolicySource",
    "RateLimit",
    "RateLimitState",
    "RecentAction",
    "ScopeMatch",
    "ScopeRules",
    "ScoringSettings",
    "ScoringWeights",
    "Unattended",
    "Weekday",
    "WeeklyWindow",
    "default_policy",
    "default_policy_text",
    "evaluate",
    "explain_lines",
    "load_policy",
    "load_policy_sources",
    "match_scopes",
]
