"""``rollback execute`` and ``resume-gitops`` at the command line: input checks and the plan.

Everything here fails or prints before any cluster is contacted, so no API
server is needed; the e2e tier (tests/e2e/test_execute_e2e.py) runs the same
command against a real one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from controller.actions.execute import Prepared
from controller.actions.guards import Attempt, Identity, decide
from controller.actions.workload import plan_workload_rollback
from controller.cli import main
from controller.cli.execute import render_plan
from controller.model import Reason, Safety, SafetyVerdict
from controller.policy import default_policy
from tests.unit.actions.helpers import fixture, items, revisions_of

NOW = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["execute", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("pod/web",),
            "error: target 'pod/web': execute acts on deployment, statefulset, daemonset, flag "
            "or configmap",
        ),
        (("web",), "error: target 'web': use KIND/NAME, e.g. deployment/web"),
        (
            ("flag/new-checkout",),
            "error: flag/new-checkout: name the object holding the flag with --resource "
            "featureflag/NAME or --resource configmap/NAME",
        ),
        (
            ("flag/new-checkout", "--resource", "secret/x"),
            "error: 'secret/x': expected KIND/NAME naming a FeatureFlag or a ConfigMap",
        ),
        (
            ("deployment/web", "--undo"),
            "error: deployment/web: of the target options, only --to-revision and --resume "
            "apply here",
        ),
        (
            ("configmap/web-config", "--to-revision", "2"),
            "error: configmap/web-config: of the target options, only --to, --from-git, "
            "--git-repo and --from-file apply here",
        ),
        (
            ("configmap/web-config",),
            "error: configmap/web-config: name the prior content with exactly one of --to "
            "VERSION, --from-git REF:PATH or --from-file F",
        ),
        (
            ("configmap/web-config", "--to", "2", "--from-file", "x.yaml"),
            "error: configmap/web-config: name the prior content with exactly one of --to "
            "VERSION, --from-git REF:PATH or --from-file F",
        ),
        (
            ("deployment/web", "-n", "a", "-n", "b"),
            "error: deployment/web: execute acts in one namespace; give one -n NAMESPACE",
        ),
        (
            ("deployment/web", "-l", "app=web"),
            "error: deployment/web: -l and --workload choose what to assess; with a target they "
            "do not apply",
        ),
        (
            ("deployment/web", "--timeout", "soon"),
            "error: --timeout: 'soon' is not a duration: use a number and a unit, like 30s, 15m, "
            "2h, 1d or 1h30m",
        ),
        (
            ("--to-revision", "3"),
            "error: target options (--to-revision, --resource, --to, --from-git, ...) need a "
            "target; without one, execute runs the assessment's recommendation",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_any_cluster_call(
    args: tuple[str, ...], message: str
) -> None:
    code, stdout, stderr = run(*args, "--kubeconfig", "/nonexistent/kubeconfig")
    assert code == 2
    assert stdout == ""
    assert stderr.strip() == message


def test_a_bad_policy_is_reported_with_its_path_before_anything_else(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nscopes:\n  - name: default\n    rules: {confirmaton: none}\n")
    code, _, stderr = run("deployment/web", "--policy", str(policy))
    assert code == 2
    assert "p.yaml:4:" in stderr
    assert "confirmaton" in stderr


def test_resume_gitops_names_what_it_can_resume() -> None:
    result = CliRunner().invoke(main, ["resume-gitops", "deployment/web"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: 'deployment/web': expected KIND/NAME naming an Application, Kustomization or "
        "HelmRelease"
    )


def test_help_names_every_guard_option() -> None:
    result = CliRunner().invoke(main, ["execute", "--help"])
    assert result.exit_code == 0
    for option in (
        "--to-revision",
        "--resource",
        "--mode",
        "--undo",
        "--from-git",
        "--from-file",
        "--yes",
        "--plan-hash",
        "--force",
        "--reason",
        "--suspend-gitops",
        "--dry-run",
        "--resume",
        "--timeout",
        "--audit-log",
        "--incident-start",
        "--policy",
    ):
        assert option in result.stdout, option


def test_the_plan_is_printed_with_changes_preconditions_verdict_and_hash() -> None:
    # Given a fresh plan for web (captured from a real API server) and a risky verdict
    obj = fixture("deployment-web")
    plan = plan_workload_rollback(obj, revisions_of(obj, items("replicasets-web")), 2)
    verdict = SafetyVerdict(
        Safety.RISKY,
        62,
        (Reason("target.too-brief", "revision 2 served healthy for only 4m (known-good: 10m)"),),
        to_revision=2,
    )
    decision, guards = decide(default_policy(), plan, Attempt(), verdict, NOW)
    prepared = Prepared(plan=plan, target=obj, identity=Identity("alice"), safety=verdict)
    # When it is rendered
    lines = render_plan(prepared, decision, guards)
    # Then it reads, in 80 columns, what will happen and why it is allowed
    assert lines == [
        "Plan: roll back deployment/web from revision 3 to revision 2",
        "  target     deployment/web in namespace fixtures",
        "  from       revision 3 (registry.example/web:3.0-broken)",
        "  to         revision 2 (registry.example/web:2.0)",
        "  by         alice",
        "  changes",
        "    - image web: registry.example/web:3.0-broken -> 2.0",
        "    - env web: removed FEATURE_X",
        "    - annotation kubernetes.io/change-cause: 'release 3.0' -> 'release 2.0'",
        "  writes",
        "    - patch deployment/web: template of revision 2",
        "  preconditions",
        "    - deployment/web still at resourceVersion 583",
        "  safety     risky (score 62)",
        "    - revision 2 served healthy for only 4m (known-good: 10m)",
        "  policy     allows (scopes: default; confirmation typed-name)",
        f"  plan hash  {plan.hash}",
    ]
    assert all(len(line) <= 80 for line in lines)
