"""``rollback execute`` and ``rollback resume-gitops``: the guarded action, from the command line.

Thin: parse the target and options, build a :class:`~controller.kube.Kube`,
hand the sequence to :mod:`controller.actions.execute` with a console that
prints the plan, asks for the typed name and draws the live progress line.
The plan and results go to stdout; progress and prompts to stderr; errors
leave through the group's one exit path (one line, an exit code).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from controller.cli.options import (
    cluster_options,
    git_option,
    incident_options,
    load_policy_option,
    policy_option,
    scope_options,
)
from controller.errors import ExitCode, UserInputError

if TYPE_CHECKING:
    from controller.actions.execute import Prepared, Result, TargetSpec
    from controller.actions.guards import GuardVerdict
    from controller.model import ObjectRef
    from controller.policy import PolicyDecision

_CONFIG_KINDS = {"configmap": "ConfigMap", "configmaps": "ConfigMap", "cm": "ConfigMap"}
_FLAG_HOLDERS = {
    "featureflag": "FeatureFlag",
    "featureflags": "FeatureFlag",
    "ff": "FeatureFlag",
    **_CONFIG_KINDS,
}
_OWNER_KINDS = {
    "application": "Application",
    "applications": "Application",
    "app": "Application",
    "kustomization": "Kustomization",
    "kustomizations": "Kustomization",
    "ks": "Kustomization",
    "helmrelease": "HelmRelease",
    "helmreleases": "HelmRelease",
    "hr": "HelmRelease",
}


def _action_options(func: Any) -> Any:
    """Options both commands share: --audit-log, --dry-run, --reason."""
    for option in reversed(
        (
            click.option(
                "--audit-log",
                envvar="ROLLBACK_AUDIT_LOG",
                type=click.Path(dir_okay=False),
                help=(
                    "Audit log (JSON lines) [env: ROLLBACK_AUDIT_LOG; default "
                    "$XDG_STATE_HOME/rollback-controller/audit.jsonl]."
                ),
            ),
            click.option(
                "--dry-run",
                is_flag=True,
                help="Run every check and a server-side dry run of the exact writes; "
                "change nothing.",
            ),
            click.option(
                "--reason", default="", help="Why (recorded in the audit; required by --force)."
            ),
        )
    ):
        func = option(func)
    return func


@click.command()
@click.argument("target", required=False, metavar="[KIND/NAME]")
@scope_options
@incident_options
@cluster_options
@git_option
@policy_option
@_action_options
@click.option(
    "--to-revision", type=click.IntRange(min=1), help="Workloads: the revision to return to."
)
@click.option(
    "--resume", is_flag=True, help="Deployments: unpause a paused Deployment in the same write."
)
@click.option(
    "--resource",
    metavar="KIND/NAME",
    help="Flags: the FeatureFlag (featureflag/NAME) or flagd ConfigMap (configmap/NAME) "
    "holding it.",
)
@click.option("--variant", help="Flags: the variant that means off, when it cannot be told.")
@click.option(
    "--mode",
    type=click.Choice(["default-variant", "state"]),
    default="default-variant",
    show_default=True,
    help="Flags: switch defaultVariant to off, or set state DISABLED "
    "(flagd then serves the code default).",
)
@click.option("--undo", is_flag=True, help="Flags: restore the value a disable recorded.")
@click.option(
    "--to", "to_version", type=click.IntRange(min=1), help="ConfigMaps: the ledger version."
)
@click.option("--from-git", metavar="REF:PATH", help="ConfigMaps: a manifest in git at a commit.")
@click.option(
    "--from-file", type=click.Path(dir_okay=False), help="ConfigMaps: a manifest on disk."
)
@click.option(
    "--yes", "-y", is_flag=True, help="Do not ask; allowed only where policy allows unattended."
)
@click.option(
    "--plan-hash", metavar="HASH", help="Execute only if the fresh plan has exactly this hash."
)
@click.option(
    "--force",
    is_flag=True,
    help="Break-glass: override a refusal where policy allows; needs --reason.",
)
@click.option(
    "--suspend-gitops",
    is_flag=True,
    help="Suspend the Argo CD/Flux owner first (recorded; undo with rollback resume-gitops).",
)
@click.option(
    "--timeout",
    default="5m",
    show_default=True,
    envvar="ROLLBACK_TIMEOUT",
    help="How long to wait for the rollout to converge [env: ROLLBACK_TIMEOUT].",
)
@click.option(
    "--incident",
    default="",
    envvar="ROLLBACK_INCIDENT",
    help="Incident id for the audit, e.g. INC-1234 [env: ROLLBACK_INCIDENT].",
)
def execute(
    target: str | None,
    *,
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    selector: str | None,
    workloads: tuple[str, ...],
    incident_start: str,
    lookback: str | None,
    kubeconfig: str | None,
    context: str | None,
    git_repos: tuple[str, ...],
    policy_files: tuple[str, ...],
    audit_log: str | None,
    dry_run: bool,
    reason: str,
    to_revision: int | None,
    resume: bool,
    resource: str | None,
    variant: str | None,
    mode: str,
    undo: bool,
    to_version: int | None,
    from_git: str | None,
    from_file: str | None,
    yes: bool,
    plan_hash: str | None,
    force: bool,
    suspend_gitops: bool,
    timeout: str,
    incident: str,
) -> None:
    """Perform a rollback, flag disable or config revert behind guards.

    \b
    Without a target: assess (same inputs as rollback assess) and execute the
    recommendation.  With one:
      rollback execute deployment/web -n shop [--to-revision 3]
      rollback execute flag/new-checkout --resource featureflag/shop-flags -n shop
      rollback execute configmap/web-config -n shop --from-git HEAD~1:deploy/cm.yaml

    The plan is printed first (what changes, preconditions, safety verdict, plan
    hash); you confirm by typing the target's name.  Every write carries the
    resourceVersion the plan was made from, takes a lock on the target, and is
    audited (an Event on the target and a line in the audit log).
    """
    from controller.actions.audit import default_audit_path
    from controller.actions.execute import Settings, run
    from controller.actions.guards import Attempt
    from controller.durations import parse_duration

    try:
        wait = parse_duration(timeout)
    except ValueError as err:
        raise UserInputError(f"--timeout: {err}") from None
    policy = load_policy_option(policy_files)
    settings = Settings(
        attempt=Attempt(
            yes=yes,
            dry_run=dry_run,
            plan_hash=plan_hash,
            force=force,
            reason=reason,
            suspend_gitops=suspend_gitops,
            incident=incident,
        ),
        policy=policy,
        audit_log=Path(audit_log) if audit_log else default_audit_path(),
        timeout=wait,
    )
    target_options = {
        "to_revision": to_revision,
        "resume": resume,
        "resource": resource,
        "variant": variant,
        "mode": mode,
        "undo": undo,
        "to_version": to_version,
        "from_git": from_git,
        "git_repo": git_repos[0] if git_repos else None,
        "from_file": from_file,
    }
    if target is None:
        spec, why, verdict = _from_assessment(
            namespaces=namespaces,
            all_namespaces=all_namespaces,
            selector=selector,
            workloads=workloads,
            incident_start=incident_start,
            lookback=lookback,
            kubeconfig=kubeconfig,
            context=context,
            git_repos=git_repos,
            policy_files=policy_files,
            options=target_options,
        )
        settings = replace(settings, why=why)
        judge: Any = _fixed_judge(verdict)
    else:
        if all_namespaces or len(namespaces) > 1:
            raise UserInputError(f"{target}: execute acts in one namespace; give one -n NAMESPACE")
        if selector or workloads:
            raise UserInputError(
                f"{target}: -l and --workload choose what to assess; with a target they do "
                "not apply"
            )
        # Validate the target and its options before touching the cluster.
        parse_target(target, namespaces[0] if namespaces else "default", **target_options)
        spec = None
        judge = _workload_judge(policy, incident_start, lookback, git_repos)
    kube = _kube(kubeconfig, context)
    try:
        if spec is None:
            assert target is not None
            ns = namespaces[0] if namespaces else kube.default_namespace or "default"
            spec = parse_target(target, ns, **target_options)
        result = run(kube, spec, settings, TerminalConsole(), judge=judge)
    finally:
        kube.close()
    _finish(result)


@click.command("resume-gitops")
@click.argument("owner", metavar="KIND/NAME")
@click.option(
    "-n",
    "--namespace",
    envvar="ROLLBACK_NAMESPACE",
    metavar="NS",
    help="Namespace of the owner (default: the context's) [env: ROLLBACK_NAMESPACE].",
)
@cluster_options
@_action_options
def resume_gitops(
    owner: str,
    *,
    namespace: str | None,
    kubeconfig: str | None,
    context: str | None,
    audit_log: str | None,
    dry_run: bool,
    reason: str,
) -> None:
    """Resume an Argo CD Application or Flux Kustomization/HelmRelease that execute suspended.

    Restores exactly the setting recorded on the owner by --suspend-gitops.
    """
    from controller.actions.audit import default_audit_path
    from controller.actions.execute import Settings
    from controller.actions.execute import resume_gitops as resume
    from controller.actions.guards import Attempt
    from controller.model import ObjectRef
    from controller.policy import default_policy

    kind, name = _split(owner, _OWNER_KINDS, "an Application, Kustomization or HelmRelease")
    settings = Settings(
        attempt=Attempt(dry_run=dry_run, reason=reason),
        policy=default_policy(),
        audit_log=Path(audit_log) if audit_log else default_audit_path(),
    )
    kube = _kube(kubeconfig, context)
    try:
        ns = namespace or kube.default_namespace or "default"
        result = resume(kube, ObjectRef(kind, ns, name), settings, TerminalConsole())
    finally:
        kube.close()
    _finish(result)


# ---------------------------------------------------------------------------
# The assessment: a recommendation to execute, a verdict for an explicit target
# ---------------------------------------------------------------------------


def _from_assessment(*, options: dict[str, Any], **inputs: Any) -> tuple[TargetSpec, str, Any]:
    """Assess like ``rollback assess`` and turn its recommendation into a target."""
    from controller.actions.execute import TargetSpec
    from controller.cli.inputs import AssessInputs, run_assessment
    from controller.errors import RefusedError

    if any(v for k, v in options.items() if k not in ("mode", "git_repo")):
        raise UserInputError(
            "target options (--to-revision, --resource, --to, --from-git, ...) need a target; "
            "without one, execute runs the assessment's recommendation"
        )
    assessment = run_assessment(AssessInputs(**inputs))
    rec = assessment.recommendation
    click.echo(f"Assessment: {rec.summary}")
    spec = TargetSpec.for_recommendation(rec, options.get("git_repo"))
    if spec is not None:
        verdict = rec.safety
        if verdict is None and rec.target is not None:
            verdict = assessment.safety.get(rec.target)
        return spec, rec.summary, verdict
    raise RefusedError(
        f"refused: the assessment recommends no action to execute ({rec.action.value}: "
        f"{rec.summary}); nothing was changed"
    )


def _fixed_judge(verdict: Any) -> Any:
    """The assessment already judged the target: use that verdict."""
    if verdict is None:
        return None

    def judge(*_: Any) -> Any:
        return verdict

    return judge


def _workload_judge(
    policy: Any, incident_start: str, lookback: str | None, git_repos: tuple[str, ...]
) -> Any:
    """The rollback-safety check for an explicit workload, as assess would judge it."""

    def judge(kube: Any, _view: Any, workload: dict[str, Any], now: Any, to: Any) -> Any:
        from controller.assess import judge_rollback, make_incident
        from controller.cli.inputs import parse_lookback, parse_start
        from controller.model import ObjectRef, Scope
        from controller.view import name_of, namespace_of

        scoring = policy.scoring
        ns, name, kind = namespace_of(workload), name_of(workload), str(workload.get("kind"))
        scope = Scope(namespaces=(ns,), workloads=(ObjectRef(kind, ns, name),))
        start = parse_start(incident_start, now)
        incident = make_incident(start, now, parse_lookback(lookback, scoring.lookback), scope)
        return judge_rollback(kube, workload, incident, scoring, git_repos, to_revision=to)

    return judge


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------


def parse_target(text: str, namespace: str, **options: Any) -> TargetSpec:
    """``deployment/web``, ``flag/KEY``, ``configmap/NAME`` -> a TargetSpec; options checked."""
    from controller.actions.execute import TargetSpec
    from controller.actions.flags import FlagMode
    from controller.model import ObjectRef, WorkloadKind

    kind_text, sep, name = text.partition("/")
    if not sep or not name or "/" in name:
        raise UserInputError(f"target {text!r}: use KIND/NAME, e.g. deployment/web")
    kind_key = kind_text.strip().lower().split(".", 1)[0]
    workload = options.get("to_revision") is not None or options.get("resume")
    flag_opts = any(options.get(k) for k in ("resource", "variant", "undo")) or (
        options.get("mode") not in (None, "default-variant")
    )
    config_opts = any(options.get(k) is not None for k in ("to_version", "from_git", "from_file"))
    workload_kind = WorkloadKind.parse(kind_key)
    if workload_kind is not None:
        _only(text, flag_opts or config_opts, "--to-revision and --resume")
        return TargetSpec(
            kind=workload_kind.value,
            name=name,
            namespace=namespace,
            to_revision=options.get("to_revision"),
            resume=bool(options.get("resume")),
        )
    if kind_key == "flag":
        _only(text, workload or config_opts, "--resource, --variant, --mode and --undo")
        holder = options.get("resource")
        if not holder:
            raise UserInputError(
                f"{text}: name the object holding the flag with --resource featureflag/NAME "
                "or --resource configmap/NAME"
            )
        holder_kind, holder_name = _split(holder, _FLAG_HOLDERS, "a FeatureFlag or a ConfigMap")
        return TargetSpec(
            kind="flag",
            name=name,
            namespace=namespace,
            resource=ObjectRef(holder_kind, namespace, holder_name),
            variant=options.get("variant"),
            mode=FlagMode(options.get("mode") or "default-variant"),
            undo=bool(options.get("undo")),
        )
    if kind_key in _CONFIG_KINDS:
        _only(text, workload or flag_opts, "--to, --from-git, --git-repo and --from-file")
        given = [k for k in ("to_version", "from_git", "from_file") if options.get(k) is not None]
        if len(given) != 1:
            raise UserInputError(
                f"{text}: name the prior content with exactly one of --to VERSION, "
                "--from-git REF:PATH or --from-file F"
            )
        return TargetSpec(
            kind="ConfigMap",
            name=name,
            namespace=namespace,
            to_version=options.get("to_version"),
            from_git=options.get("from_git"),
            git_repo=options.get("git_repo"),
            from_file=options.get("from_file"),
        )
    raise UserInputError(
        f"target {text!r}: execute acts on deployment, statefulset, daemonset, flag or configmap"
    )


def _only(target: str, misplaced: Any, allowed: str) -> None:
    if misplaced:
        raise UserInputError(f"{target}: of the target options, only {allowed} apply here")


def _split(text: str, kinds: dict[str, str], what: str) -> tuple[str, str]:
    kind_text, sep, name = text.partition("/")
    kind = kinds.get(kind_text.strip().lower().split(".", 1)[0])
    if not sep or not name or kind is None:
        raise UserInputError(f"{text!r}: expected KIND/NAME naming {what}")
    return kind, name


def _kube(kubeconfig: str | None, context: str | None) -> Any:
    from controller.kube import Kube

    return Kube(kubeconfig=kubeconfig, context=context)


def _finish(result: Result) -> None:
    if result.exit_code != ExitCode.OK:
        sys.exit(int(result.exit_code))


# ---------------------------------------------------------------------------
# The console
# ---------------------------------------------------------------------------


class TerminalConsole:
    """Prints to the terminal; the live progress line redraws in place on a TTY."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._last = ""

    def show(self, prepared: Prepared, decision: PolicyDecision, guards: GuardVerdict) -> None:
        for line in render_plan(prepared, decision, guards):
            click.echo(line)

    def line(self, text: str) -> None:
        click.echo(text)

    def ask(self, prompt: str) -> str | None:
        try:
            answer: str = click.prompt(prompt, default="", show_default=False, err=True)
        except click.Abort:
            return None
        return answer

    def progress(self, text: str) -> None:
        if text == self._last:
            return
        self._last = text
        if self._tty:
            click.echo("\r\033[K" + text, nl=False, err=True)
        else:
            click.echo(text, err=True)

    def progress_end(self) -> None:
        if self._tty and self._last:
            click.echo("", err=True)
        self._last = ""


def render_plan(prepared: Prepared, decision: PolicyDecision, guards: GuardVerdict) -> list[str]:
    """The plan as people read it, in 80 columns: what, from, to, changes, checks, hash."""
    plan = prepared.plan
    lines = [f"Plan: {plan.summary}"]
    rows = [
        ("target", _where(plan.target)),
        ("from", plan.from_label),
        ("to", plan.to_label),
        ("by", str(prepared.identity)),
    ]
    lines.extend(f"  {key:<10} {value}" for key, value in rows)
    if plan.noop:
        lines.append(f"  no-op      {plan.noop}")
    if plan.changes:
        lines.append("  changes")
        lines.extend(f"    - {c}" for c in plan.changes)
    if plan.steps:
        lines.append("  writes")
        lines.extend(f"    - {s.summary}" for s in plan.steps)
        if prepared.ledger_record is not None:
            lines.append(
                f"    - record the current content as ledger version "
                f"{prepared.ledger_record['revision']} (ControllerRevision)"
            )
        lines.append("  preconditions")
        lines.extend(f"    - {p}" for p in plan.preconditions)
    if prepared.safety is not None:
        verdict = prepared.safety
        lines.append(f"  safety     {verdict.safety.value} (score {verdict.score})")
        lines.extend(f"    - {r.message}" for r in verdict.reasons)
    else:
        lines.append("  safety     not judged for this action (no rollback-safety check applies)")
    if prepared.gitops is not None:
        state = "syncs automatically" if prepared.gitops.active else "not syncing automatically"
        lines.append(f"  gitops     {prepared.gitops.ref.short} ({prepared.gitops.tool}): {state}")
    scopes = ", ".join(decision.matched_scopes) or "none"
    lines.append(
        f"  policy     {'allows' if decision.allowed else 'refuses'} (scopes: {scopes}; "
        f"confirmation {decision.confirmation.value})"
    )
    notes = [*prepared.notes, *(r.message for r in guards.notes)]
    warnings = list(plan.warnings)
    if notes:
        lines.append("  notes")
        lines.extend(f"    - {n}" for n in notes)
    if warnings:
        lines.append("  warnings")
        lines.extend(f"    - {w}" for w in warnings)
    lines.append(f"  plan hash  {plan.hash}")
    return lines


def _where(ref: ObjectRef) -> str:
    return f"{ref.short} in namespace {ref.namespace}" if ref.namespace else ref.short
