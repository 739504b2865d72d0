"""``rollback policy check`` and ``rollback policy explain``.

Thin: parse options, call controller.policy, print.  PyYAML is imported only
when a policy is loaded; the Kubernetes client never.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from controller.cli import abort
from controller.cli.options import load_policy_option, policy_option
from controller.errors import ExitCode, PolicyError, UserInputError

if TYPE_CHECKING:
    from controller.model import ObjectRef

_ACTIONS = ("rollback", "revert-config", "disable-flag")
# Besides the workload kinds (WorkloadKind.parse), the targets of the other actions.
_OTHER_KINDS = {
    "configmap": "ConfigMap",
    "cm": "ConfigMap",
    "featureflag": "FeatureFlag",
}


@click.group()
def policy() -> None:
    """Validate and explain policies (see docs/policy.md)."""


@policy.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option(
    "--merged",
    is_flag=True,
    help="Check FILES as one stack, merged in the order given (as repeated --policy loads them).",
)
def check(files: tuple[str, ...], merged: bool) -> None:
    """Validate policy FILES; exit 2 on any problem.

    Prints `FILE: ok` per valid file, and every problem to stderr as
    FILE:LINE:COL field.path: message.  Each file is checked on its own, merged
    onto the shipped defaults; with --merged, the files are checked together.
    """
    from controller.policy.loader import load_policy

    stacks = [list(files)] if merged else [[path] for path in files]
    problems: list[str] = []
    for stack in stacks:
        try:
            load_policy(stack)
        except PolicyError as err:
            problems.extend(p for p in err.problems if p not in problems)
    bad = [path for path in files if any(p.startswith(f"{path}:") for p in problems)]
    for path in files:
        if path not in bad:
            click.echo(f"{path}: ok")
    for line in problems:
        click.echo(line, err=True)
    if problems:
        abort(f"{len(problems)} problem(s) in {len(bad)} file(s)", ExitCode.BAD_INPUT)


@policy.command()
@click.option(
    "-n", "--namespace", default="default", show_default=True, help="Namespace of the target."
)
@click.option("-l", "--labels", default="", metavar="K=V,...", help="The target workload's labels.")
@click.option("--workload", metavar="KIND/NAME", help="The target, e.g. deployment/web.")
@click.option(
    "--action",
    required=True,
    type=click.Choice(_ACTIONS),
    help="The action to judge.",
)
@click.option(
    "--at",
    "at_text",
    default="now",
    show_default=True,
    metavar="TIME",
    help="When: RFC 3339 (2026-12-24T10:00:00Z), a duration ago (15m), or now.",
)
@click.option(
    "--safety",
    type=click.Choice(("safe", "risky", "unsafe")),
    default="safe",
    show_default=True,
    help="The rollback-safety verdict to assume.",
)
@click.option("--unattended", is_flag=True, help="As the controller or --yes would act.")
@click.option("--break-glass", is_flag=True, help="As with execute --force.")
@click.option("--reason", default="", help="The break-glass reason.")
@click.option("--gitops-owned", is_flag=True, help="Assume Argo CD or Flux owns the target.")
@click.option(
    "--recent",
    multiple=True,
    metavar="TIME",
    help="An earlier automatic action in this namespace (for rate limits); repeatable.",
)
@policy_option
def explain(  # noqa: PLR0917 - click passes every option by keyword
    namespace: str,
    labels: str,
    workload: str | None,
    action: str,
    at_text: str,
    safety: str,
    unattended: bool,
    break_glass: bool,
    reason: str,
    gitops_owned: bool,
    recent: tuple[str, ...],
    policy_files: tuple[str, ...],
) -> None:
    """Say whether an action is allowed on a target, which scopes decide, and why."""
    from controller.durations import parse_instant
    from controller.model import ActionKind, Safety
    from controller.policy import PolicyRequest, RecentAction, evaluate, explain_lines
    from controller.policy.selectors import parse_labels

    wall = datetime.now(UTC)
    try:
        now = parse_instant(at_text, wall)
        recent_times = [parse_instant(t, now) for t in recent]
    except ValueError as err:
        raise UserInputError(f"--at/--recent: {err}") from None
    try:
        label_map = parse_labels(labels)
    except ValueError as err:
        raise UserInputError(f"--labels: {err}") from None
    target = _workload_ref(workload, namespace) if workload else None
    loaded = load_policy_option(policy_files)
    request = PolicyRequest(
        action=ActionKind(action),
        namespace=namespace,
        safety=Safety(safety),
        target=target,
        labels=label_map,
        unattended=unattended,
        break_glass=break_glass,
        break_glass_reason=reason,
        gitops_owned=gitops_owned,
        recent_actions=tuple(RecentAction(t, namespace, label_map) for t in recent_times),
    )
    decision = evaluate(loaded, request, now)
    for line in explain_lines(loaded, request, decision, now):
        click.echo(line)


def _workload_ref(text: str, namespace: str) -> ObjectRef:
    from controller.model import ObjectRef, WorkloadKind

    kind, sep, name = text.partition("/")
    parsed = WorkloadKind.parse(kind)
    canonical = parsed.value if parsed else _OTHER_KINDS.get(kind.strip().lower())
    if not sep or not name or canonical is None:
        raise UserInputError(
            f"--workload {text!r}: write KIND/NAME with KIND one of "
            "deployment, statefulset, daemonset, configmap, featureflag"
        )
    return ObjectRef(canonical, namespace, name)
