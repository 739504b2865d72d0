"""Scoring settings: the part of a policy that tunes how assess ranks and judges.

The values here are the shipped defaults; ``policies/default.yaml`` states the
same numbers and a test keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType

from controller.model import ChangeKind

# How likely each kind of change is to cause an incident, before any evidence.
# Deploys and config pushes cause most incidents; infrastructure changes and
# bare commits less often; a commit alone changes nothing in the cluster.
DEFAULT_PRIORS: Mapping[ChangeKind, float] = MappingProxyType(
    {
        ChangeKind.DEPLOY: 0.9,
        ChangeKind.CONFIG: 0.8,
        ChangeKind.FLAG: 0.8,
        ChangeKind.HELM: 0.85,
        ChangeKind.GITOPS: 0.7,
        ChangeKind.MIGRATION: 0.6,
        ChangeKind.INFRA: 0.5,
        ChangeKind.COMMIT: 0.3,
    }
)


@dataclass(frozen=True)
class ScoringWeights:
    """Relative weight of each evidence family in a suspect's score (sum to 1)."""

    closeness: float = 0.35
    scope: float = 0.25
    health: float = 0.25
    prior: float = 0.15


@dataclass(frozen=True)
class ScoringSettings:
    """How assess looks back, ranks suspects and decides what is known-good.

    ``lookback``: how far before the incident start changes are collected.
    ``closeness_half_life``: a change this long before the start scores half
    the closeness of one right at the start.
    ``known_good_after``: a revision must have served healthy at least this long
    to count as the last known-good rollback target.
    ``migration_paths``: git path globs whose change between two revisions marks
    a schema migration.  ``migration_job_patterns``: lower-case substrings that
    mark a Job (name, labels, command) as a migration.
    """

    lookback: timedelta = timedelta(hours=24)
    closeness_half_life: timedelta = timedelta(minutes=30)
    known_good_after: timedelta = timedelta(minutes=10)
    weights: ScoringWeights = field(default_factory=ScoringWeights)
    priors: Mapping[ChangeKind, float] = field(default_factory=lambda: DEFAULT_PRIORS)
    migration_paths: tuple[str, ...] = (
        "**/migrations/**",
        "**/alembic/versions/**",
        "**/db/migrate/**",
        "**/V*__*.sql",
    )
    migration_job_patterns: tuple[str, ...] = ("migrat", "flyway", "liquibase", "alembic", "schema")
