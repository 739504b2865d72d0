"""The typed shape of a loaded policy: what ``loader`` produces and ``evaluate`` reads.

Every value here is frozen and was validated by the loader; nothing in this
module does I/O.  A rule field that a scope leaves out is ``None``: "this scope
has no opinion".  Evaluation combines the opinions of every matching scope and
the strictest one wins, so leaving a field out can never loosen what another
scope demands (docs/policy.md, "Precedence").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum

from controller.model import ActionKind, Safety
from controller.policy.scoring import ScoringSettings
from controller.policy.selectors import LabelSelector

POLICY_VERSION = 1

# How long an approval counts (``approvals.validFor``), from the API server's
# creationTimestamp of the Approval: long enough for a person to be paged and
# look, short enough that a forgotten approval does not wake up tomorrow.
DEFAULT_APPROVAL_VALIDITY = timedelta(hours=1)
# The longest ``validFor`` a policy may set: an approval is for this incident.
MAX_APPROVAL_VALIDITY = timedelta(hours=24)

# The actions a policy can allow or forbid; the other ActionKinds change nothing.
GUARDED_ACTIONS: tuple[ActionKind, ...] = (
    ActionKind.ROLLBACK,
    ActionKind.REVERT_CONFIG,
    ActionKind.DISABLE_FLAG,
)


class Confirmation(StrEnum):
    """What a human must do before an attended action runs."""

    TYPED_NAME = "typed-name"  # type the target's name
    NONE = "none"


class GitOpsMode(StrEnum):
    """What to do when a GitOps controller (Argo CD, Flux) owns the target."""

    REFUSE = "refuse"  # never act on it; change it through Git
    SUSPEND = "suspend"  # suspend the owner first (recorded, resumable), then act


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        """Monday is 0, as ``date.weekday()`` counts."""
        return list(Weekday).index(self)


@dataclass(frozen=True)
class ScopeMatch:
    """Which objects a scope covers: a namespace glob AND the label conditions.

    ``selector`` combines the policy's ``selector`` string and ``matchLabels``;
    ``None`` means any labels.
    """

    namespaces: tuple[str, ...]
    selector: LabelSelector | None = None


@dataclass(frozen=True)
class Approvals:
    """``count`` people from any of ``approvers`` (group names; empty: anyone) must approve.

    Each approval counts for ``valid_for`` from when the API server stored it.
    """

    count: int
    approvers: tuple[str, ...] = ()
    valid_for: timedelta = DEFAULT_APPROVAL_VALIDITY


@dataclass(frozen=True)
class Unattended:
    """May the tool act with no human confirming (controller, ``--yes``), on which verdicts."""

    allowed: bool
    verdicts: tuple[Safety, ...] = (Safety.SAFE,)


@dataclass(frozen=True)
class RateLimit:
    """At most ``max_actions`` automatic actions in any window of length ``per``."""

    max_actions: int
    per: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class WeeklyWindow:
    """Every listed weekday from ``start`` to ``end`` wall-clock time in ``timezone``.

    ``end`` at or before ``start`` means the window runs past midnight into the
    next day; ``end_of_day`` is set when the policy wrote ``24:00``.
    """

    days: tuple[Weekday, ...]
    start: time
    end: time
    timezone: str
    end_of_day: bool = False


@dataclass(frozen=True)
class FreezeExceptions:
    """What still may happen while a freeze is active."""

    actions: tuple[ActionKind, ...] = ()
    break_glass: bool = False


@dataclass(frozen=True)
class FreezeWindow:
    """A named freeze: either a fixed range ``[start, end)`` or a weekly window."""

    name: str
    start: datetime | None = None
    end: datetime | None = None
    weekly: WeeklyWindow | None = None
    exceptions: FreezeExceptions = field(default_factory=FreezeExceptions)


@dataclass(frozen=True)
class BreakGlass:
    """Whether a human may override freezes (that allow it) and an unsafe verdict."""

    allowed: bool
    require_reason: bool = True


@dataclass(frozen=True)
class ScopeRules:
    """One scope's opinions; ``None`` means the scope does not say (others decide)."""

    actions: tuple[ActionKind, ...] | None = None
    confirmation: Confirmation | None = None
    approvals: Approvals | None = None
    unattended: Unattended | None = None
    rate_limit: RateLimit | None = None
    freeze: tuple[FreezeWindow, ...] = ()
    break_glass: BreakGlass | None = None
    gitops: GitOpsMode | None = None
    risky_requires_confirmation: bool | None = None
    notify: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyScope:
    """A named part of the cluster and the rules that guard actions there.

    ``sources`` lists ``FILE:LINE`` of every file that defined or changed this
    scope, in merge order (the shipped defaults first).
    """

    name: str
    match: ScopeMatch
    rules: ScopeRules
    description: str = ""
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    """A validated, merged policy: scoring settings for assess and scopes for the guards.

    ``files`` are the inputs in merge order, the shipped defaults first.
    """

    version: int = POLICY_VERSION
    scoring: ScoringSettings = field(default_factory=ScoringSettings)
    scopes: tuple[PolicyScope, ...] = ()
    files: tuple[str, ...] = ()

    @property
    def rate_limit_window(self) -> timedelta:
        """The longest rate-limit ``per`` of any scope: how far back callers must read
        their audit for ``PolicyRequest.recent_actions`` (zero when no scope limits)."""
        return max(
            (s.rules.rate_limit.per for s in self.scopes if s.rules.rate_limit is not None),
            default=timedelta(0),
        )

    def scope(self, name: str) -> PolicyScope | None:
        """The scope called ``name``, or None."""
        return next((s for s in self.scopes if s.name == name), None)
