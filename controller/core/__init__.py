"""Pure decisions: triage blocks, suspect ranking, rollback safety, recommendation.

Every function here takes data (and the clock as a parameter) and returns an
explained verdict.  No I/O, no client, no files.  docs/scoring.md explains the
numbers.

The public API, in the order the assess pipeline calls it::

    triage = classify(signals, changes, incident)
    suspects = rank_suspects(changes, signals, incident, scoring, focus, workloads=facts)
    safety = {w: assess_rollback(facts[w], changes, incident, scoring)
              for w in rollback_candidates(suspects) if w in facts}
    recommendation = recommend(triage, suspects, safety, incident,
                               known_config_versions=..., flag_off_variants=...)
"""

from controller.core.correlate import rank_suspects
from controller.core.decide import recommend, rollback_candidates
from controller.core.safety import assess_rollback
from controller.core.triage import classify

__all__ = ["assess_rollback", "classify", "rank_suspects", "recommend", "rollback_candidates"]
