"""`rollback policy check` and `rollback policy explain`: exact output and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from click.testing import CliRunner, Result

from controller.cli import main

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [
    "policies/default.yaml",
    "policies/examples/holiday-freeze.yaml",
    "policies/examples/production.yaml",
    "policies/examples/staging.yaml",
]


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("ROLLBACK_POLICY", raising=False)


def rollback(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def lines(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


class TestCheck:
    def test_the_shipped_default_and_examples_pass(self) -> None:
        result = rollback("policy", "check", *SHIPPED)
        assert result.exit_code == 0, result.output
        assert result.stdout == "".join(f"{path}: ok\n" for path in SHIPPED)
        assert result.stderr == ""

    def test_every_problem_goes_to_stderr_and_the_exit_code_is_2(self) -> None:
        bad = "tests/data/policies/bad/many-problems.yaml"
        result = rollback("policy", "check", "policies/examples/staging.yaml", bad)
        assert result.exit_code == 2
        assert result.stdout == "policies/examples/staging.yaml: ok\n"
        assert result.stderr == lines(
            f"""
            {bad}:4:13 scoring.lookback: '1 day' is not a duration: use a number and a unit, like 30s, 15m, 2h, 1d or 1h30m
            {bad}:6:13 scoring.priors.deploy: must be a number, got 'high'
            {bad}:12:21 scopes[0].rules.confirmation: unknown value 'maybe'; expected one of: typed-name, none
            {bad}:14:16 scopes[0].rules.approvals.count: must be a whole number, got 'two'
            {bad}:16:18 scopes[0].rules.breakGlass.allowed: 'on' is ambiguous (YAML 1.1 reads it as a boolean); write true or false
            {bad}:17:24 scopes[0].rules.breakGlass.requireReason: 'off' is ambiguous (YAML 1.1 reads it as a boolean); write true or false
            error: 6 problem(s) in 1 file(s)
            """  # noqa: E501
        )

    def test_a_missing_file_is_one_clear_line(self) -> None:
        result = rollback("policy", "check", "nope.yaml")
        assert result.exit_code == 2
        assert result.stderr == "nope.yaml: no such file\nerror: 1 problem(s) in 1 file(s)\n"

    def test_merged_checks_an_overlay_together_with_the_file_it_extends(
        self, tmp_path: Path
    ) -> None:
        overlay = tmp_path / "overlay.yaml"
        overlay.write_text(
            "version: 1\nscopes:\n  - name: payments\n    rules: {gitops: suspend}\n"
        )
        alone = rollback("policy", "check", str(overlay))
        assert alone.exit_code == 2
        assert alone.stderr.splitlines()[0] == f"{overlay}:3:5 scopes[0].match: is required"
        together = rollback(
            "policy", "check", "--merged", "policies/examples/production.yaml", str(overlay)
        )
        assert together.exit_code == 0, together.output
        assert together.stdout == f"policies/examples/production.yaml: ok\n{overlay}: ok\n"

    def test_every_bad_file_fails_check(self) -> None:
        bad = sorted((ROOT / "tests/data/policies/bad").glob("*.yaml"))
        result = rollback("policy", "check", *map(str, bad))
        assert result.exit_code == 2
        assert result.stdout == ""
        assert result.stderr.endswith(f" problem(s) in {len(bad)} file(s)\n")


class TestExplain:
    def test_a_freeze_refuses_and_every_matching_scope_is_shown(self) -> None:
        result = rollback(
            "policy", "explain",
            "--policy", "policies/examples/production.yaml",
            "-n", "prod-checkout", "-l", "team=payments,app=api",
            "--workload", "deployment/api", "--action", "rollback",
            "--at", "2026-11-27T12:00:00Z",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert result.stdout == lines(
            """
            Request: rollback deployment/api in namespace prod-checkout (labels app=api,team=payments), verdict safe, attended, at 2026-11-27T12:00:00Z.
            Policy: (built-in) default-policy.yaml, policies/examples/production.yaml
            Matching scopes:
              default     namespaces * ((built-in) default-policy.yaml:46)
              production  namespaces prod-*, edge (policies/examples/production.yaml:17)
              payments    namespaces prod-*; labels team=payments (policies/examples/production.yaml:58)
            Decision: refused.
            Why:
              - Freeze black-friday (scope production) is active until 2026-12-01T11:00:00Z.
            It would also need:
              - Type the target's name to confirm.
              - Needs 1 approval(s) from sre-oncall or sre-leads (scope production).
              - Needs 2 approval(s) from payments-leads (scope payments, valid for 30m).
            Rules, and the scopes that decided them:
              actions: rollback, disable-flag (production)
              confirmation: type the target's name (default, production)
              approvals: 1 from sre-oncall or sre-leads; 2 from payments-leads, valid for 30m (production, payments)
              unattended: not allowed (default, production)
              rate limit: 3 per 1h, 0 used (default)
              freeze: black-friday active (production)
              break-glass: not allowed (payments)
              gitops: refuse (default, production)
              risky needs confirmation: yes (default, production)
              notify: slack:#prod-incidents, webhook:https://hooks.example.com/rollback-audit, slack:#payments-oncall (production, payments)
            Freeze windows:
              black-friday (production): 2026-11-26T23:00:00Z to 2026-12-01T11:00:00Z; active until 2026-12-01T11:00:00Z
              nightly-batch (production): weekly mon,tue,wed,thu,fri 23:30-01:30 Europe/London; not active
            """  # noqa: E501
        )
        # docs/policy.md shows this very output
        assert result.stdout in (ROOT / "docs" / "policy.md").read_text(encoding="utf-8")

    def test_staging_lets_the_controller_act_within_its_rate_limit(self) -> None:
        result = rollback(
            "policy", "explain",
            "--policy", "policies/examples/staging.yaml",
            "-n", "staging-web", "--action", "rollback", "--unattended",
            "--at", "2026-06-10T12:00:00Z",
            "--recent", "30m", "--recent", "2026-06-10T10:00:00Z",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert result.stdout == lines(
            """
            Request: rollback a workload in namespace staging-web (labels none), verdict safe, unattended, at 2026-06-10T12:00:00Z.
            Policy: (built-in) default-policy.yaml, policies/examples/staging.yaml
            Matching scopes:
              default  namespaces * ((built-in) default-policy.yaml:46, policies/examples/staging.yaml:17)
            Not matching: shared-data
            Decision: allowed.
            Rules, and the scopes that decided them:
              actions: rollback, revert-config, disable-flag (default)
              confirmation: none (default)
              approvals: none (default)
              unattended: allowed (default)
              rate limit: 5 per 1h, 1 used (default)
              freeze: none active (built-in fallback)
              break-glass: allowed with a reason (default)
              gitops: suspend (default)
              risky needs confirmation: yes (default)
              notify: slack:#staging-deploys (default)
            """  # noqa: E501
        )

    def test_a_stricter_scope_keeps_the_controller_away_from_shared_data(self) -> None:
        result = rollback(
            "policy", "explain", "--policy", "policies/examples/staging.yaml",
            "-n", "orders-data", "--action", "rollback", "--unattended",
            "--at", "2026-06-10T12:00:00Z",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        decision = result.stdout.split("Rules,")[0].splitlines()[-3:]
        assert decision == [
            "Decision: refused.",
            "Why:",
            "  - Scope shared-data does not allow unattended actions.",
        ]

    def test_policies_come_from_rollback_policy_separated_by_pathsep(self) -> None:
        env = {
            "ROLLBACK_POLICY": os.pathsep.join(
                ["policies/examples/production.yaml", "policies/examples/holiday-freeze.yaml"]
            )
        }
        result = rollback(
            "policy", "explain", "-n", "prod-web", "--action", "disable-flag",
            "--workload", "featureflag/checkout-flags", "--safety", "risky",
            "--at", "2026-12-24T10:00:00Z",
            env=env,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        head = result.stdout.split("Rules,")[0]
        assert head == lines(
            """
            Request: disable-flag featureflag/checkout-flags in namespace prod-web (labels none), verdict risky, attended, at 2026-12-24T10:00:00Z.
            Policy: (built-in) default-policy.yaml, policies/examples/production.yaml, policies/examples/holiday-freeze.yaml
            Matching scopes:
              default          namespaces * ((built-in) default-policy.yaml:46)
              production       namespaces prod-*, edge (policies/examples/production.yaml:17)
              year-end-freeze  namespaces prod-* (policies/examples/holiday-freeze.yaml:12)
            Not matching: payments
            Decision: allowed, after typed confirmation and 1 approval(s).
            Before it runs:
              - Type the target's name to confirm.
              - Needs 1 approval(s) from sre-oncall or sre-leads (scope production).
            Notes:
              - Freeze year-end (scope year-end-freeze) is active until 2027-01-04T08:00:00Z but allows disable-flag.
            """  # noqa: E501
        )

    def test_at_now_reads_the_clock(self) -> None:
        # 2026-03-29T01:30Z is 03:30 CEST, inside a DST-shifted Sunday freeze
        policy = ROOT / "tests/data/policies/good/sunday-maintenance.yaml"
        with time_machine.travel(datetime(2026, 3, 29, 1, 30, tzinfo=UTC), tick=False):
            result = rollback(
                "policy",
                "explain",
                "--policy",
                str(policy),
                "-n",
                "prod-web",
                "--action",
                "rollback",
            )
        assert result.exit_code == 0, result.output
        assert "at 2026-03-29T01:30:00Z." in result.stdout
        assert (
            "  - Freeze maintenance (scope prod) is active until 2026-03-29T02:00:00Z.\n"
            in result.stdout
        )

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (
                ["--at", "yesterday"],
                "error: --at/--recent: 'yesterday' is not a time: use RFC 3339 like "
                "2026-12-03T10:04:00Z, a duration ago like 15m, or now\n",
            ),
            (
                ["--at", "2026-06-10T12:00:00"],
                "error: --at/--recent: '2026-06-10T12:00:00' has no timezone: "
                "add Z or an offset like +01:00\n",
            ),
            (
                ["--workload", "pod/web"],
                "error: --workload 'pod/web': write KIND/NAME with KIND one of "
                "deployment, statefulset, daemonset, configmap, featureflag\n",
            ),
            (["-l", "app"], "error: --labels: 'app' is not a label: write key=value\n"),
            (
                ["--policy", "tests/data/policies/bad/gitops-typo.yaml"],
                "error: tests/data/policies/bad/gitops-typo.yaml:8:15 scopes[0].rules.gitops: "
                "unknown value 'suspended'; did you mean 'suspend'?\n",
            ),
        ],
    )
    def test_bad_input_is_one_clear_line_and_exit_2(self, args: list[str], message: str) -> None:
        result = rollback("policy", "explain", "--action", "rollback", *args)
        assert result.exit_code == 2
        assert result.stdout == ""
        assert result.stderr == message


def test_the_policy_command_imports_neither_kubernetes_nor_yaml_until_it_runs() -> None:
    code = (
        "import sys, controller.cli.policy; "
        "print('kubernetes' in sys.modules, 'yaml' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout == "False False\n"
