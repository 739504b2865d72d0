"""Text, JSON and YAML renderings of an Assessment.

Text is for a tired engineer at 3 a.m.: the verdict on the first line, then
why, then the evidence, each line within 80 columns and each reason a short
sentence.  Styling goes through click, which drops it when stdout is not a
terminal, so colour appears only on a TTY.  JSON and YAML are the versioned
document of docs/assessment-schema.md.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Iterator
from datetime import datetime

import click

from controller.assess import Assessment, assessment_to_json, dumps
from controller.durations import format_duration, format_instant
from controller.model import ActionKind, Change, Reason, Safety

WIDTH = 80

_HEADLINE = {
    ActionKind.ROLLBACK: "ROLL BACK",
    ActionKind.REVERT_CONFIG: "REVERT CONFIG",
    ActionKind.DISABLE_FLAG: "DISABLE FLAG",
    ActionKind.NONE: "NO ROLLBACK",
    ActionKind.INVESTIGATE: "INVESTIGATE",
}
_SAFETY_COLOUR = {Safety.SAFE: "green", Safety.RISKY: "yellow", Safety.UNSAFE: "red"}


def render(assessment: Assessment, output: str, incident_text: str = "") -> str:
    if output == "json":
        return dumps(assessment)
    if output == "yaml":
        import yaml

        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when present
        return yaml.dump(
            assessment_to_json(assessment),
            Dumper=dumper,
            sort_keys=False,
            default_flow_style=False,
            width=WIDTH,
            allow_unicode=True,
        )
    lines = list(text_lines(assessment, incident_text))
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def text_lines(a: Assessment, incident_text: str = "") -> Iterator[str]:
    """The text report: verdict, context, why, suspects, triage, changes, gaps."""
    for section in (
        _verdict(a),
        _context(a, incident_text),
        _why(a),
        _suspects(a),
        _triage(a),
        _changes(a),
    ):
        yield from section
        yield ""
    yield from _footer(a)


def _verdict(a: Assessment) -> Iterator[str]:
    rec = a.recommendation
    verdict = rec.safety
    colour = _SAFETY_COLOUR.get(verdict.safety) if verdict else None
    if rec.action is ActionKind.INVESTIGATE:
        colour = "yellow"
    for line in _wrap(f"{_HEADLINE[rec.action]}: {rec.summary}", "", "  "):
        yield click.style(line, bold=True, fg=colour)
    if verdict is not None:
        restore = (
            f"; about {format_duration(verdict.time_to_restore)} to restore"
            if verdict.time_to_restore is not None
            else ""
        )
        yield f"Safety: {verdict.safety.value}, {verdict.score}/100{restore}"
    if rec.plan_hash:
        yield f"Plan hash: {rec.plan_hash}"
    command = execute_command(a)
    if command:
        yield from _wrap(f"To act: {command}", "", "  ")


def execute_command(a: Assessment) -> str | None:
    """The explicit ``rollback execute`` command for the recommendation, if it is an action."""
    rec = a.recommendation
    target = rec.target
    if target is None:
        return None
    ns = f" -n {target.namespace}" if target.namespace else ""
    pin = f" --plan-hash {rec.plan_hash}" if rec.plan_hash else ""
    if rec.action is ActionKind.ROLLBACK and rec.to_revision is not None:
        return f"rollback execute {target.short}{ns} --to-revision {rec.to_revision}{pin}"
    if rec.action is ActionKind.DISABLE_FLAG and rec.flag:
        return f"rollback execute flag/{rec.flag} --resource {target.short}{ns}{pin}"
    if rec.action is ActionKind.REVERT_CONFIG and rec.to_version:
        return f"rollback execute {target.short}{ns} --to {rec.to_version}{pin}"
    return None


def _context(a: Assessment, incident_text: str) -> Iterator[str]:
    incident = a.incident
    start = format_instant(incident.start)
    given = incident_text.strip()
    if given.lower() == "now":
        start += " (now)"
    elif given and given != start:
        start += f" (from {given!r})"
    yield from _field("Incident start", start)
    yield from _field("Evaluated at", f"{format_instant(incident.now)}, {a.source}")
    yield from _field(
        "Scope",
        f"{incident.scope.describe()}; changes since {format_instant(incident.window_start)}"
        f" ({format_duration(incident.lookback)} lookback)",
    )
    if a.focus:
        yield from _field("Alerting", ", ".join(r.short for r in a.focus))
    yield from _field("Classification", a.triage.classification.value)


def _why(a: Assessment) -> Iterator[str]:
    rec = a.recommendation
    yield click.style("Why", bold=True)
    for reason in rec.reasons:
        yield from _reason(reason)
    if rec.preview:
        yield ""
        yield click.style("What `rollback execute` would do", bold=True)
        for line in rec.preview:
            yield from _wrap(line, "  ", "    ")


def _suspects(a: Assessment) -> Iterator[str]:
    yield click.style("Suspects, likeliest first", bold=True)
    if not a.suspects:
        yield "  None: nothing changed in scope in the window."
    for suspect in a.suspects[:5]:
        c = suspect.change
        yield from _wrap(
            f"{suspect.rank}. {suspect.score:.2f} {c.kind.value} {_label(c)}, "
            f"{_when(c.at, a.incident.start)}",
            "  ",
            "       ",
        )
        if c.summary:
            yield from _wrap(c.summary, "       ", "       ")
        for reason in suspect.reasons[:4]:
            yield from _wrap(f"- {reason.message}", "       ", "         ")
    if len(a.suspects) > 5:
        yield f"  ... and {len(a.suspects) - 5} more (-o json lists them all)"


def _triage(a: Assessment) -> Iterator[str]:
    yield click.style("Triage, simplest blocks first", bold=True)
    for finding in a.triage.findings:
        mark = "!" if finding.hit else "-"
        yield from _wrap(f"{mark} {finding.block.value:<15} {finding.summary}", "  ", " " * 20)
    for reason in a.triage.reasons[:1]:
        yield from _wrap(reason.message, "  ", "  ")


def _changes(a: Assessment) -> Iterator[str]:
    yield click.style(f"Changes in the window: {len(a.changes)}", bold=True)
    for change in a.changes[:8]:
        prefix = f"{_clock(change.at, a.incident.start)} {change.kind.value:<9}"
        yield from _wrap(f"{prefix} {change.summary}", "  ", " " * (len(prefix) + 3))
    if len(a.changes) > 8:
        yield f"  ... and {len(a.changes) - 8} more (-o json lists them all)"
    for note in a.notes:
        yield from _wrap(note, "  ", "  ")


def _footer(a: Assessment) -> Iterator[str]:
    if a.unavailable:
        parts = [f"{kind} ({why})" for kind, why in a.unavailable.items()]
        yield from _wrap("Not read: " + "; ".join(parts) + ".", "", "  ")
    if a.ignored:
        parts = [f"{count} {kind}" for kind, count in a.ignored.items()]
        yield from _wrap("Ignored unknown kinds: " + ", ".join(parts) + ".", "", "  ")
    if a.api_requests is not None:
        yield f"API requests: {a.api_requests}"


def _field(name: str, value: str) -> Iterator[str]:
    yield from _wrap(f"{name + ':':<16}{value}", "", " " * 16)


def _reason(reason: Reason) -> Iterator[str]:
    yield from _wrap(f"- {reason.message}", "  ", "    ")


def _wrap(text: str, first: str, rest: str) -> Iterator[str]:
    lines = textwrap.wrap(
        text,
        width=WIDTH,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=True,
        break_on_hyphens=False,
    )
    yield from lines or [first.rstrip()]


def _label(change: Change) -> str:
    label = change.target.short
    if change.flag:
        label = f"{change.flag} in {label}"
    if change.revision is not None and change.kind.value in ("deploy", "helm"):
        label += f" rev {change.revision}"
    return label


def _clock(moment: datetime, start: datetime) -> str:
    """``10:07:00Z`` on the incident's day, the full instant on another."""
    text = format_instant(moment)
    return text[11:] if text[:10] == format_instant(start)[:10] else text


def _when(moment: datetime, start: datetime) -> str:
    delta = start - moment
    if delta.total_seconds() >= 0:
        return f"{format_duration(delta)} before the start"
    return f"{format_duration(-delta)} after the start"


def lines_fit(lines: Iterable[str]) -> bool:
    """True when every line fits in 80 columns (tests hold the renderer to it)."""
    return all(len(click.unstyle(line)) <= WIDTH for line in lines)
