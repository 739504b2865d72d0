"""From command-line values to an Assessment: shared by ``assess`` and ``execute``.

Validates every input up front (times, durations, workload names, file
combinations) so that a bad value is one clear line before any cluster call,
then builds the view from snapshots or the live cluster and runs the pipeline.
Heavy modules (the pipeline, the Kubernetes client) are imported here, inside
functions, never when ``rollback --help`` runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from controller.durations import parse_duration, parse_instant
from controller.errors import UserInputError
from controller.model import ObjectRef, Scope
from controller.view import namespace_of

if TYPE_CHECKING:
    from controller.assess import Assessment
    from controller.policy.scoring import ScoringSettings
    from controller.view import ClusterView


@dataclass(frozen=True)
class AssessInputs:
    """The raw values of the assess options, as click delivers them."""

    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = False
    selector: str | None = None
    workloads: tuple[str, ...] = ()
    incident_start: str = "now"
    lookback: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    snapshots: tuple[str, ...] = ()
    now_text: str | None = None
    git_repos: tuple[str, ...] = ()
    policy_files: tuple[str, ...] = ()


def parse_workloads(values: Sequence[str]) -> tuple[ObjectRef, ...]:
    """``deployment/web`` or ``NS/deployment/web`` -> ObjectRefs (namespace may be empty)."""
    refs = []
    for value in values:
        parts = value.strip().split("/")
        if len(parts) == 2 and all(parts):
            refs.append(ObjectRef(parts[0], "", parts[1]))
        elif len(parts) == 3 and all(parts):
            refs.append(ObjectRef(parts[1], parts[0], parts[2]))
        else:
            raise UserInputError(f"--workload {value!r}: use KIND/NAME, e.g. deployment/web")
    return tuple(refs)


def build_scope(inputs: AssessInputs) -> Scope:
    if inputs.all_namespaces and inputs.namespaces:
        raise UserInputError("-A and -n exclude each other: pick one")
    namespaces = tuple(dict.fromkeys(n.strip() for n in inputs.namespaces if n.strip()))
    return Scope(
        namespaces=namespaces,
        all_namespaces=inputs.all_namespaces,
        selector=(inputs.selector or None),
        workloads=parse_workloads(inputs.workloads),
    )


def parse_lookback(text: str | None, default: timedelta) -> timedelta:
    if text is None:
        return default
    try:
        value = parse_duration(text)
    except ValueError as err:
        raise UserInputError(f"--lookback: {err}") from None
    if value <= timedelta(0):
        raise UserInputError(f"--lookback {text!r}: must be longer than zero")
    return value


def parse_start(text: str, now: datetime) -> datetime:
    try:
        return parse_instant(text, now)
    except ValueError as err:
        raise UserInputError(f"--incident-start: {err}") from None


def parse_now(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = text.strip()
    if value.lower() == "now":
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UserInputError(
            f"--now {text!r}: use an RFC 3339 time like 2026-12-03T10:19:00Z"
        ) from None
    if parsed.tzinfo is None:
        raise UserInputError(f"--now {text!r}: add Z or an offset like +01:00")
    return parsed.astimezone(UTC)


def load_scoring(policy_files: Sequence[str]) -> ScoringSettings:
    """The policy's scoring settings (the shipped defaults without ``--policy``)."""
    if not policy_files:
        from controller.policy.scoring import ScoringSettings

        return ScoringSettings()
    from controller.policy.loader import load_policy

    return load_policy(policy_files).scoring


@dataclass(frozen=True)
class Prepared:
    """A view, its scope and the resolved incident times, ready for the pipeline."""

    view: ClusterView
    scope: Scope
    start: datetime
    now: datetime
    lookback: timedelta
    api_requests: int | None


def prepare(inputs: AssessInputs, scoring: ScoringSettings) -> Prepared:
    """Validate the inputs and build the view, from snapshots or the live cluster."""
    scope = build_scope(inputs)
    lookback = parse_lookback(inputs.lookback, scoring.lookback)
    now_override = parse_now(inputs.now_text)
    if inputs.snapshots:
        from controller.snapshot import load_snapshots

        # Validate the start's syntax before reading files: one error at a time,
        # the cheapest first.
        parse_start(inputs.incident_start, datetime.now(UTC))
        view = load_snapshots(inputs.snapshots, now=now_override)
        now = view.captured_at.astimezone(UTC)
        if not scope.all_namespaces and not scope.namespaces:
            # The snapshot's own namespaces: what it was captured for.
            scope = Scope(
                namespaces=_snapshot_namespaces(view),
                selector=scope.selector,
                workloads=scope.workloads,
            )
        return Prepared(view, scope, parse_start(inputs.incident_start, now), now, lookback, None)
    if now_override is not None:
        raise UserInputError("--now only applies to --snapshot; a live cluster is read now")
    # Whole seconds: the time printed is the time used, so replaying a
    # snapshot with --now set to it gives the same answer.
    now = datetime.now(UTC).replace(microsecond=0)
    start = parse_start(inputs.incident_start, now)
    from controller.assess import read_view
    from controller.kube import Kube

    kube = Kube(kubeconfig=inputs.kubeconfig, context=inputs.context)
    try:
        if not scope.all_namespaces and not scope.namespaces:
            scope = Scope(
                namespaces=(kube.default_namespace,),
                selector=scope.selector,
                workloads=scope.workloads,
            )
        view = read_view(kube, scope, now)
    finally:
        kube.close()
    return Prepared(view, scope, start, now, lookback, kube.requests)


def _snapshot_namespaces(view: ClusterView) -> tuple[str, ...]:
    from controller.assess import FOLLOWED_KINDS

    return tuple(
        sorted(
            {namespace_of(o) for o in view.all_objects() if o.get("kind") not in FOLLOWED_KINDS}
            - {""}
        )
    )


def run_assessment(inputs: AssessInputs) -> Assessment:
    """The whole of ``rollback assess`` short of printing."""
    from controller.assess import assess, make_incident

    scoring = load_scoring(inputs.policy_files)
    prepared = prepare(inputs, scoring)
    incident = make_incident(prepared.start, prepared.now, prepared.lookback, prepared.scope)
    return assess(
        prepared.view,
        incident,
        scoring,
        git_repos=inputs.git_repos,
        api_requests=prepared.api_requests,
    )
