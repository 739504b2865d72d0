"""``rollback controller`` and ``rollback approve`` on the command line: options, errors, exits.

Every bad value is one line and exit 2 before any cluster is contacted (the
kubeconfig given here does not exist, so reaching the cluster would fail
differently).  What the commands do against a cluster is in
tests/e2e/test_controller_e2e.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from controller.cli import main
from controller.cli.controller import parse_listen
from controller.errors import UserInputError

NOWHERE = "/nonexistent/kubeconfig"


def rollback(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="rollback", env=env)


def test_the_controller_group_lists_its_commands() -> None:
    result = rollback("controller", "--help")
    assert result.exit_code == 0
    assert "  run     Run the controller until SIGTERM.\n" in result.output
    assert "  status  Who leads, and the incidents on record.\n" in result.output


def test_run_names_every_environment_variable_in_its_help() -> None:
    result = rollback("controller", "run", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for env in (
        "ROLLBACK_NAMESPACE",
        "ROLLBACK_LISTEN",
        "ROLLBACK_POLICY",
        "ROLLBACK_LEASE_NAMESPACE",
        "ROLLBACK_IDENTITY",
        "ROLLBACK_WEBHOOK_TOKEN_FILE",
        "ROLLBACK_NOTIFY",
        "ROLLBACK_LEDGER_INTERVAL",
        "ROLLBACK_KUBECONFIG",
    ):
        assert f"env: {env}" in text, env


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "8080"], "--listen '8080': use HOST:PORT, e.g. 0.0.0.0:8080"),
        (
            ["--listen", "0.0.0.0:99999"],
            "--listen '0.0.0.0:99999': use HOST:PORT, e.g. 0.0.0.0:8080",
        ),
        (["-n", "Shop"], "--namespace 'Shop': not a namespace name"),
        (["--lease-namespace", "a_b"], "--lease-namespace 'a_b': not a namespace name"),
        (["--lease-name", "Leader!"], "--lease-name 'Leader!': not a valid object name"),
        (
            ["--notify", "pager:oncall"],
            "--notify 'pager:oncall': use webhook:https://host/path, slack:#channel or "
            "email:name@example.com",
        ),
        (["--resync", "0s"], "--resync '0s': must be longer than zero"),
        (
            ["--timeout", "soon"],
            "--timeout: 'soon' is not a duration: use a number and a unit, like 30s, 15m, "
            "2h, 1d or 1h30m",
        ),
        (
            ["--renew-deadline", "20s"],
            "--retry-period < --renew-deadline < --lease-duration must hold (now 2s / 20s / 15s)",
        ),
        (
            ["--webhook-token-file", "/nonexistent/token"],
            "--webhook-token-file /nonexistent/token: No such file or directory",
        ),
    ],
)
def test_bad_options_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = rollback("controller", "run", "--kubeconfig", NOWHERE, *args)
    assert result.exit_code == 2, result.output
    assert result.output == f"error: {message}\n"


def test_how_long_approvals_count_is_the_policys_not_an_option() -> None:
    # The policy scope's approvals.validFor, recorded on each request, is the one source.
    result = rollback("controller", "run", "--kubeconfig", NOWHERE, "--approval-ttl", "2h")
    assert result.exit_code == 2
    assert "No such option '--approval-ttl'" in result.output
    assert "approval-ttl" not in rollback("controller", "run", "--help").output


def test_the_old_approval_ttl_variable_is_not_silently_ignored() -> None:
    # Given a deployment that still sets the variable the removed option read
    result = rollback(
        "controller", "run", "--kubeconfig", NOWHERE, env={"ROLLBACK_APPROVAL_TTL": "30m"}
    )
    # Then the controller says, in its log, that the policy decides now
    assert "ROLLBACK_APPROVAL_TTL is set but no longer read: an approval counts for the " in (
        result.output
    )
    assert "approvals.validFor (1h by default)" in result.output


@pytest.mark.parametrize("value", ["0", "0s"])
def test_a_ledger_interval_of_zero_is_accepted_as_the_help_says(value: str) -> None:
    # Given --ledger-interval 0, which the help says turns the ledger off
    result = rollback("controller", "run", "--kubeconfig", NOWHERE, "--ledger-interval", value)
    # Then the value passes: the next check to fail is the missing kubeconfig
    assert (result.exit_code, result.output) == (
        2,
        "error: cannot load Kubernetes configuration: Invalid kube-config file. "
        "No configuration found.\n",
    )


def test_an_empty_token_file_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("\n")
    result = rollback(
        "controller", "run", "--kubeconfig", NOWHERE, "--webhook-token-file", str(token)
    )
    assert (result.exit_code, result.output) == (
        2,
        f"error: --webhook-token-file {token}: the file is empty\n",
    )


def test_a_bad_policy_is_reported_with_its_line_before_any_cluster_call(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nscopes:\n  - name: default\n    rules:\n      unattended: yes\n")
    result = rollback("controller", "run", "--kubeconfig", NOWHERE, "--policy", str(policy))
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {policy}:5:19 scopes[0].rules.unattended: ")


def test_a_missing_kubeconfig_is_one_line() -> None:
    result = rollback("controller", "run", "--kubeconfig", NOWHERE)
    assert (result.exit_code, result.output) == (
        2,
        "error: cannot load Kubernetes configuration: Invalid kube-config file. "
        "No configuration found.\n",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::1]:9", ("::1", 9)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


def test_listen_needs_a_host() -> None:
    with pytest.raises(UserInputError):
        parse_listen(":8080")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["approve", "sha256:xyz"],
            "'sha256:xyz' is not a plan hash: expected sha256: and 16 hex digits, as rollback "
            "assess, execute and the controller print it",
        ),
        (
            ["approve", "0123456789abcdef", "--reason", "x" * 1025],
            "--reason: at most 1024 characters",
        ),
    ],
)
def test_approve_checks_its_input_before_the_cluster(args: list[str], message: str) -> None:
    result = rollback(*args, "--kubeconfig", NOWHERE)
    assert (result.exit_code, result.output) == (2, f"error: {message}\n")


def test_approve_says_what_it_does_in_its_help() -> None:
    result = rollback("approve", "--help")
    assert result.exit_code == 0
    assert "Usage: rollback approve [OPTIONS] [PLAN_HASH]" in result.output
    assert (
        "rollback approve -n shop          # the plans waiting for approval here" in result.output
    )
