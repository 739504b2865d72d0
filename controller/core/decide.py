"""The decision: one remedy (or an honest "don't") from triage, suspects and safety.

The seed article's rule is "restore first, refine later", but only when the
fault is in the software and the remedy is known to be safe:

* classification ``infrastructure`` -> ``none``: not change-induced, follow the
  infrastructure findings;
* no change in the window -> ``investigate``: a rollback cannot help;
* a top suspect too weak (score below ``MIN_ACT_SCORE``) or without any link
  to what hurts -> ``investigate``;
* a rollout (deploy, Helm release, GitOps sync) -> ``rollback`` of the workload
  to the last known-good revision, unless the rollback is unsafe or has no
  target (then ``investigate`` and what to do instead);
* a ConfigMap/Secret change -> ``revert-config``, only when the prior content is
  known (``known_config_versions``); Kubernetes keeps no history of its own;
* a flag change -> ``disable-flag``, only when the off variant is known
  (``flag_off_variants``) and the change did not itself turn the flag off;
* a migration, an infrastructure change or a bare commit -> ``investigate``
  with what to look at.

``summary`` never repeats the action (renderers print ``ROLL BACK: <summary>``):
``deployment/web to revision 3 (safe)``, ``configmap/app to 7, then restart
deployment/web``, ``nothing changed in the window, so a rollback cannot help``.
``plan_hash`` and ``preview`` stay empty: the pipeline fills them from the
execute planner.  Pure: no side effects; the clock is ``incident.now``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from controller.core.timeline import (
    ROLLOUT_KINDS,
    WORKLOAD_KINDS,
    affected_workloads,
    change_label,
)
from controller.durations import format_duration
from controller.model import (
    ActionKind,
    Change,
    ChangeKind,
    Classification,
    Incident,
    ObjectRef,
    Reason,
    Recommendation,
    Safety,
    SafetyVerdict,
    Suspect,
    Triage,
)

# A top suspect scoring below this is a guess, not a finding.
MIN_ACT_SCORE = 0.5
# A runner-up this close to the top suspect is worth naming.
RUNNER_UP_MARGIN = 0.1

# Scope and health reasons that tie a change to what hurts.  Without one of
# them a suspect is only "something that happened nearby", never enough to act.
LINK_CODES: frozenset[str] = frozenset(
    {
        "scope.alerting-workload",
        "scope.unhealthy-workload",
        "scope.consumed-config",
        "scope.consumed-flag",
        "scope.affects-workload",
        "health.new-revision-unhealthy",
        "health.affected-unhealthy",
        "health.rollout-stalled",
        "health.target-unhealthy",
        "health.migration-failed",
    }
)

_EMPTY_VERSIONS: Mapping[ObjectRef, str] = MappingProxyType({})
_EMPTY_VARIANTS: Mapping[tuple[ObjectRef, str], str] = MappingProxyType({})


def rollback_candidates(suspects: Sequence[Suspect], limit: int = 3) -> tuple[ObjectRef, ...]:
    """The workloads whose rollback safety :func:`recommend` may need, top suspects first.

    The pipeline calls :func:`controller.core.safety.assess_rollback` for each
    and passes the verdicts as ``safety_by_workload``.  Pure.
    """
    out: dict[ObjectRef, None] = {}
    for suspect in suspects[:limit]:
        if suspect.change.kind in ROLLOUT_KINDS:
            for workload in affected_workloads(suspect.change):
                if workload.kind in WORKLOAD_KINDS:
                    out.setdefault(workload, None)
    return tuple(out)


def recommend(
    triage: Triage,
    suspects: Sequence[Suspect],
    safety_by_workload: Mapping[ObjectRef, SafetyVerdict],
    incident: Incident,
    *,
    known_config_versions: Mapping[ObjectRef, str] = _EMPTY_VERSIONS,
    flag_off_variants: Mapping[tuple[ObjectRef, str], str] = _EMPTY_VARIANTS,
) -> Recommendation:
    """Choose the remedy and explain it.

    Pure: no side effects; the clock is ``incident.now``.

    ``known_config_versions`` maps a ConfigMap or Secret to the prior version
    that can be restored (a change-ledger version, or ``git:REF:PATH``); without
    an entry, ``revert-config`` is never recommended.  ``flag_off_variants``
    maps (FeatureFlag resource, flag key) to the variant that turns the flag
    off; without an entry, ``disable-flag`` is never recommended.
    """
    classification = triage.classification
    if classification is Classification.INFRASTRUCTURE:
        return _not_change_induced(triage, suspects)
    if not suspects:
        return Recommendation(
            action=ActionKind.INVESTIGATE,
            target=None,
            summary="nothing changed in the window, so a rollback cannot help",
            reasons=(
                Reason(
                    "decide.no-changes",
                    f"nothing changed in scope in the {_lookback(incident)} before the"
                    " incident start: follow the triage findings",
                ),
                *_triage_reasons(triage),
            ),
        )
    top = suspects[0]
    label = _suspect_label(top)
    if top.score < MIN_ACT_SCORE:
        return _investigate(
            top,
            "decide.weak-suspect",
            f"the top suspect, {label}, scores only {top.score:.2f} (acting needs"
            f" {MIN_ACT_SCORE:.2f}): too weak to act on",
            triage,
            summary=f"no strong suspect (best: {label}, {top.score:.2f})",
        )
    if not any(r.code in LINK_CODES for r in top.reasons):
        return _investigate(
            top,
            "decide.no-link",
            f"the top suspect, {label}, has no link to what hurts (not the alerting or an"
            " unhealthy workload, nothing they read): too weak to act on",
            triage,
            summary=f"{label} changed, but nothing ties it to what hurts",
        )
    context = _context(triage, suspects)
    kind = top.change.kind
    if kind in ROLLOUT_KINDS:
        rec = _rollback(top, safety_by_workload, suspects, known_config_versions, flag_off_variants)
    elif kind is ChangeKind.CONFIG:
        rec = _revert_config(top, known_config_versions)
    elif kind is ChangeKind.FLAG:
        rec = _disable_flag(top, flag_off_variants)
    else:
        code, message = _no_remedy(kind, label)
        return _investigate(top, code, message, triage, summary=_NO_REMEDY_SUMMARY[kind])
    return Recommendation(
        action=rec.action,
        target=rec.target,
        summary=rec.summary,
        reasons=(*rec.reasons, *context),
        to_revision=rec.to_revision,
        flag=rec.flag,
        safety=rec.safety,
        to_version=rec.to_version,
    )


# ---------------------------------------------------------------------------
# Remedies
# ---------------------------------------------------------------------------


def _rollback(
    top: Suspect,
    safety_by_workload: Mapping[ObjectRef, SafetyVerdict],
    suspects: Sequence[Suspect],
    known_config_versions: Mapping[ObjectRef, str],
    flag_off_variants: Mapping[tuple[ObjectRef, str], str],
) -> Recommendation:
    label = _suspect_label(top)
    workloads = [w for w in affected_workloads(top.change) if w.kind in WORKLOAD_KINDS]
    judged = [w for w in workloads if w in safety_by_workload]
    if not judged:
        names = ", ".join(w.short for w in workloads) or "no workload"
        return Recommendation(
            action=ActionKind.INVESTIGATE,
            target=workloads[0] if workloads else top.change.target,
            summary=f"{label} is the top suspect, but its rollback was not judged",
            reasons=(
                Reason(
                    "decide.no-workload-facts",
                    f"{label} is the top suspect ({top.score:.2f}), but no rollback facts"
                    f" were found for {names}",
                ),
            ),
        )
    # Prefer a workload whose rollback is possible, then the safest.
    order = {Safety.SAFE: 0, Safety.RISKY: 1, Safety.UNSAFE: 2}
    workload = min(
        judged,
        key=lambda w: (
            safety_by_workload[w].to_revision is None,
            order[safety_by_workload[w].safety],
        ),
    )
    verdict = safety_by_workload[workload]
    change = top.change
    if (
        change.kind is ChangeKind.DEPLOY
        and change.target == workload
        and change.revision is not None
        and verdict.from_revision is not None
        and verdict.from_revision != change.revision
    ):
        # The suspect revision no longer runs: someone already rolled back or
        # forward.  Rolling back again would move away from what runs now.
        return Recommendation(
            action=ActionKind.INVESTIGATE,
            target=workload,
            summary=(
                f"{label} is no longer current ({workload.short} runs revision"
                f" {verdict.from_revision}); check whether service recovered"
            ),
            reasons=(
                Reason(
                    "decide.already-replaced",
                    f"{label} is the top suspect ({top.score:.2f}), but {workload.short} now"
                    f" runs revision {verdict.from_revision}: it was already rolled back or"
                    " replaced; a second rollback would move away from that",
                ),
            ),
            safety=verdict,
        )
    if verdict.to_revision is None or verdict.safety is Safety.UNSAFE:
        instead = _instead(top, suspects, known_config_versions, flag_off_variants)
        code = "decide.no-rollback-target" if verdict.to_revision is None else "decide.unsafe"
        what = (
            f"{workload.short} has no revision to roll back to"
            if verdict.to_revision is None
            else f"rolling {workload.short} back to revision {verdict.to_revision} is unsafe"
        )
        return Recommendation(
            action=ActionKind.INVESTIGATE,
            target=workload,
            summary=f"{what}",
            reasons=(
                Reason(
                    code,
                    f"{label} is the top suspect ({top.score:.2f}), but {what}; the safety"
                    " reasons below say why",
                ),
                instead,
                *verdict.reasons,
            ),
            to_revision=verdict.to_revision,
            safety=verdict,
        )
    helm = any(r.code == "helm.managed" for r in verdict.reasons)
    extra = " (Helm-managed: prefer helm rollback)" if helm else ""
    return Recommendation(
        action=ActionKind.ROLLBACK,
        target=workload,
        summary=(
            f"{workload.short} to revision {verdict.to_revision} ({verdict.safety.value}){extra}"
        ),
        reasons=(
            Reason(
                "decide.rollback",
                f"{label} is the top suspect ({top.score:.2f}); revision"
                f" {verdict.to_revision} is the rollback target",
            ),
            *verdict.reasons,
        ),
        to_revision=verdict.to_revision,
        safety=verdict,
    )


def _instead(
    top: Suspect,
    suspects: Sequence[Suspect],
    known_config_versions: Mapping[ObjectRef, str],
    flag_off_variants: Mapping[tuple[ObjectRef, str], str],
) -> Reason:
    """What to do when the rollback is out: a flag or config remedy among the suspects, or a fix."""
    for other in suspects[1:]:
        change = other.change
        if change.kind is ChangeKind.FLAG and change.flag:
            variant = flag_off_variants.get((change.target, change.flag))
            if variant is not None and not turned_off(change, variant):
                return Reason(
                    "decide.instead",
                    f"instead: disable flag {change.flag} (suspect #{other.rank}, variant"
                    f" {variant}), or roll forward with a fix",
                )
        if change.kind is ChangeKind.CONFIG and change.target in known_config_versions:
            return Reason(
                "decide.instead",
                f"instead: revert {change.target.short} to"
                f" {known_config_versions[change.target]} (suspect #{other.rank}), or roll"
                " forward with a fix",
            )
    return Reason(
        "decide.instead",
        "instead: roll forward with a fix, or turn the new code path off with a flag;"
        " restore service first (scale, fail over), refine later",
    )


def _revert_config(top: Suspect, known_config_versions: Mapping[ObjectRef, str]) -> Recommendation:
    change = top.change
    ref = change.target
    version = known_config_versions.get(ref)
    consumers = ", ".join(w.short for w in change.affects) or "its consumers"
    if version is None:
        return Recommendation(
            action=ActionKind.INVESTIGATE,
            target=ref,
            summary=f"{ref.short} changed, but its prior content is unknown",
            reasons=(
                Reason(
                    "decide.config-prior-unknown",
                    f"{ref.short} is the top suspect ({top.score:.2f}), but Kubernetes keeps"
                    " no history of its content and no prior version is known: restore it"
                    " from git or your deploy tool, then restart " + consumers,
                ),
            ),
        )
    return Recommendation(
        action=ActionKind.REVERT_CONFIG,
        target=ref,
        summary=f"{ref.short} to {version}, then restart {consumers}",
        reasons=(
            Reason(
                "decide.revert-config",
                f"{ref.short} is the top suspect ({top.score:.2f}) and its prior content is"
                f" known ({version})",
            ),
        ),
        to_version=version,
    )


def _disable_flag(
    top: Suspect, flag_off_variants: Mapping[tuple[ObjectRef, str], str]
) -> Recommendation:
    change = top.change
    ref = change.target
    key = change.flag or ref.name
    variant = flag_off_variants.get((ref, key))
    if variant is not None and turned_off(change, variant):
        return Recommendation(
            action=ActionKind.INVESTIGATE,
            target=ref,
            flag=key,
            summary=f"flag {key} was turned off just before the incident",
            reasons=(
                Reason(
                    "decide.flag-turned-off",
                    f"flag {key} is the top suspect ({top.score:.2f}), but the change turned"
                    f" it off ({change.before} -> {change.after}): disabling it again cannot"
                    " help; turn it back on by hand if the off path is the fault",
                ),
            ),
        )
    if variant is None:
        return Recommendation(
            action=ActionKind.INVESTIGATE,
            target=ref,
            flag=key,
            summary=f"flag {key} changed, but its off variant is unknown",
            reasons=(
                Reason(
                    "decide.flag-off-unknown",
                    f"flag {key} is the top suspect ({top.score:.2f}), but no off variant is"
                    " known: choose one (`rollback execute flag/... --variant V`)",
                ),
            ),
        )
    return Recommendation(
        action=ActionKind.DISABLE_FLAG,
        target=ref,
        flag=key,
        summary=f"flag {key} on {ref.short} (default variant -> {variant})",
        reasons=(
            Reason(
                "decide.disable-flag",
                f"flag {key} is the top suspect ({top.score:.2f}); switching its default"
                f" variant to {variant} turns it off",
            ),
        ),
    )


def turned_off(change: Change, off_variant: str) -> bool:
    """True when a flag change left the flag off and it was not off before.

    Reads the flag state the way the sources describe it (``state ENABLED,
    defaultVariant off``, or just the variant): off is ``state DISABLED`` or the
    default variant being ``off_variant``.  Pure.
    """

    def is_off(text: str | None) -> bool:
        if text is None:
            return False
        parts = {part.strip() for part in text.split(",")}
        return bool(parts & {off_variant, f"defaultVariant {off_variant}", "state DISABLED"})

    return is_off(change.after) and not is_off(change.before)


_NO_REMEDY_SUMMARY: Mapping[ChangeKind, str] = MappingProxyType(
    {
        ChangeKind.MIGRATION: "a migration is the top suspect; roll forward",
        ChangeKind.INFRA: "an infrastructure change is the top suspect",
        ChangeKind.COMMIT: "a commit is the top suspect; find what deployed it",
    }
)


def _no_remedy(kind: ChangeKind, label: str) -> tuple[str, str]:
    if kind is ChangeKind.MIGRATION:
        return (
            "decide.migration-suspect",
            f"the top suspect is migration {label}: rolling code back does not undo a"
            " schema change; involve the database owner and roll forward",
        )
    if kind is ChangeKind.INFRA:
        return (
            "decide.infra-change-suspect",
            f"the top suspect is an infrastructure change ({label}): revert it by hand;"
            " there is no automatic remedy",
        )
    return (
        "decide.commit-suspect",
        f"the top suspect is commit {label}, but no deployed change links to it: find"
        " what deployed it",
    )


# ---------------------------------------------------------------------------
# Other outcomes and shared pieces
# ---------------------------------------------------------------------------


def _not_change_induced(triage: Triage, suspects: Sequence[Suspect]) -> Recommendation:
    reasons = [
        Reason(
            "decide.infrastructure",
            "not change-induced: the symptoms point at infrastructure; a rollback would not help",
        ),
        *_triage_reasons(triage),
    ]
    if suspects:
        reasons.append(
            Reason(
                "decide.suspects-ignored",
                f"{len(suspects)} change{'' if len(suspects) == 1 else 's'} in the window;"
                f" the likeliest, {_suspect_label(suspects[0])} ({suspects[0].score:.2f}),"
                " is no reason to roll back: the remedy lies in the infrastructure",
            )
        )
    return Recommendation(
        action=ActionKind.NONE,
        target=None,
        summary="not change-induced: follow the infrastructure findings",
        reasons=tuple(reasons),
    )


def _investigate(
    top: Suspect, code: str, message: str, triage: Triage, *, summary: str
) -> Recommendation:
    return Recommendation(
        action=ActionKind.INVESTIGATE,
        target=top.change.target,
        summary=summary,
        reasons=(Reason(code, message), *_triage_reasons(triage)),
        flag=top.change.flag,
    )


def _context(triage: Triage, suspects: Sequence[Suspect]) -> tuple[Reason, ...]:
    out: list[Reason] = []
    if triage.classification is Classification.MIXED:
        out.append(
            Reason(
                "decide.mixed",
                "infrastructure findings too: restore with this, then follow them",
            )
        )
    if len(suspects) > 1 and suspects[0].score - suspects[1].score <= RUNNER_UP_MARGIN:
        second = suspects[1]
        out.append(
            Reason(
                "decide.runner-up",
                f"close second: {_suspect_label(second)} ({second.score:.2f})",
            )
        )
    return tuple(out)


def _triage_reasons(triage: Triage, limit: int = 3) -> tuple[Reason, ...]:
    return triage.reasons[:limit]


def _suspect_label(suspect: Suspect) -> str:
    return change_label(suspect.change)


def _lookback(incident: Incident) -> str:
    return format_duration(incident.lookback)
