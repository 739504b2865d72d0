"""``rollback assess``: exact output on the bundled examples, input errors, exit codes.

The expected text lives in ``tests/cli/golden/*.txt``; it is the whole output,
compared byte for byte.  When the wording changes on purpose, regenerate with
``ROLLBACK_UPDATE_GOLDEN=1 .venv/bin/pytest tests/cli/test_assess_cli.py`` and
review the diff like any other change.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner, Result

from controller.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("ROLLBACK_UPDATE_GOLDEN") == "1"


def assess(*args: str, env: dict[str, str] | None = None) -> Result:
    clean = {k: None for k in os.environ if k.startswith("ROLLBACK_") or k == "KUBECONFIG"}
    return CliRunner().invoke(
        main, ["assess", *args], prog_name="rollback", env={**clean, **(env or {})}
    )


def example(name: str) -> str:
    return str(EXAMPLES / f"{name}.yaml")


def golden(name: str, text: str) -> str:
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------
# The bundled examples, exactly
# ---------------------------------------------------------------------------

EXAMPLE_CASES = [
    pytest.param("bad-image-rollout", "2026-12-03T10:08:00Z", id="bad image rollout"),
    pytest.param("configmap-change", "2026-12-03T10:08:00Z", id="ConfigMap change"),
    pytest.param("flag-flip", "2026-12-03T10:08:00Z", id="flag flip"),
]


@pytest.mark.parametrize(("name", "start"), EXAMPLE_CASES)
def test_text_output_on_each_example_is_exactly_the_golden_text(name: str, start: str) -> None:
    # Given a bundled snapshot, When assessed, Then the text is exactly as reviewed.
    result = assess("--snapshot", example(name), "--incident-start", start)

    assert result.exit_code == 0, result.output
    assert result.output == golden(name, result.output)


@pytest.mark.parametrize(("name", "start"), EXAMPLE_CASES)
def test_text_output_fits_80_columns_and_has_no_colour_off_a_terminal(
    name: str, start: str
) -> None:
    result = assess("--snapshot", example(name), "--incident-start", start)

    assert all(len(line) <= 80 for line in result.output.splitlines())
    assert "\x1b[" not in result.output


def test_the_verdict_is_the_first_line_for_each_example() -> None:
    firsts = [
        assess("--snapshot", example(name), "--incident-start", "12m").output.splitlines()[0]
        for name in ("bad-image-rollout", "configmap-change", "flag-flip")
    ]

    assert firsts == [
        "ROLL BACK: deployment/web to revision 2 (safe)",
        "INVESTIGATE: configmap/api-config changed, but its prior content is unknown",
        "DISABLE FLAG: flag new-checkout on featureflag/storefront-flags (default variant",
    ]


def test_json_carries_the_documented_fields_for_a_rollback() -> None:
    result = assess(
        "--snapshot", example("bad-image-rollout"), "--incident-start", "12m", "-o", "json"
    )

    doc = json.loads(result.output)
    assert doc["schemaVersion"] == "1.0"
    assert doc["incident"]["start"] == "2026-12-03T10:08:00Z"
    assert doc["classification"] == "software"
    top = doc["suspects"][0]
    assert (top["rank"], top["kind"], top["target"], top["at"]) == (
        1,
        "deploy",
        {"kind": "Deployment", "namespace": "shop", "name": "web"},
        "2026-12-03T09:57:00Z",
    )
    assert 0 < top["score"] <= 1 and top["reasons"]
    rec = doc["recommendation"]
    assert {k: rec[k] for k in ("action", "target", "toRevision", "safety")} == {
        "action": "rollback",
        "target": {"kind": "Deployment", "namespace": "shop", "name": "web"},
        "toRevision": 2,
        "safety": "safe",
    }
    assert isinstance(rec["safetyScore"], int) and rec["reasons"]
    assert re.fullmatch(r"sha256:[0-9a-f]{16}", rec["planHash"])
    assert rec["preview"][0] == "roll back deployment/web from revision 3 to revision 2"
    assert rec["preview"][-1] == f"plan hash: {rec['planHash']}"
    assert doc["apiRequests"] is None
    assert doc["source"] == {
        "type": "snapshot",
        "name": "bad-image-rollout.yaml",
        "capturedAt": "2026-12-03T10:20:00Z",
    }


def test_a_flag_suspect_names_the_featureflag_and_the_key() -> None:
    doc = json.loads(
        assess("--snapshot", example("flag-flip"), "--incident-start", "12m", "-o", "json").output
    )

    top = doc["suspects"][0]
    assert (top["kind"], top["target"]["kind"], top["target"]["name"], top["flag"]) == (
        "flag",
        "FeatureFlag",
        "storefront-flags",
        "new-checkout",
    )
    assert top["before"] == "state ENABLED, defaultVariant off (from last-applied-configuration)"
    assert doc["recommendation"]["action"] == "disable-flag"
    assert doc["recommendation"]["flag"] == "new-checkout"


def test_yaml_output_is_the_same_document_as_json() -> None:
    args = ("--snapshot", example("configmap-change"), "--incident-start", "12m")

    as_json = json.loads(assess(*args, "-o", "json").output)
    as_yaml = yaml.safe_load(assess(*args, "-o", "yaml").output)

    assert as_yaml == as_json


# ---------------------------------------------------------------------------
# The incident start: resolved and printed back in UTC
# ---------------------------------------------------------------------------

START_CASES = [
    pytest.param("15m", "2026-12-03T10:05:00Z (from '15m')", id="a duration ago"),
    pytest.param("now", "2026-12-03T10:20:00Z (now)", id="now"),
    pytest.param("2026-12-03T10:08:00Z", "2026-12-03T10:08:00Z", id="RFC 3339 in UTC"),
    pytest.param(
        "2026-12-03T11:08:00+01:00",
        "2026-12-03T10:08:00Z (from '2026-12-03T11:08:00+01:00')",
        id="an offset, converted to UTC",
    ),
]


@pytest.mark.parametrize(("given", "printed"), START_CASES)
def test_the_incident_start_is_printed_back_resolved_in_utc(given: str, printed: str) -> None:
    # A relative start counts back from the snapshot's capture time (10:20:00Z).
    result = assess("--snapshot", example("bad-image-rollout"), "--incident-start", given)

    assert f"Incident start: {printed}\n" in result.output


def test_now_moves_the_evaluation_time_of_a_snapshot() -> None:
    result = assess(
        "--snapshot", example("bad-image-rollout"), "--now", "2026-12-03T11:00:00Z",
        "--incident-start", "30m", "-o", "json",
    )  # fmt: skip

    doc = json.loads(result.output)
    assert doc["incident"]["evaluatedAt"] == "2026-12-03T11:00:00Z"
    assert doc["incident"]["start"] == "2026-12-03T10:30:00Z"


def test_environment_variables_stand_in_for_options() -> None:
    result = assess(
        "-o",
        "json",
        env={
            "ROLLBACK_SNAPSHOT": example("flag-flip"),
            "ROLLBACK_INCIDENT_START": "10m",
            "ROLLBACK_LOOKBACK": "2h",
        },
    )

    doc = json.loads(result.output)
    assert doc["incident"] == {
        "start": "2026-12-03T10:10:00Z",
        "windowStart": "2026-12-03T08:10:00Z",
        "lookback": "2h",
        "evaluatedAt": "2026-12-03T10:20:00Z",
    }


def test_nothing_changed_in_the_window_is_an_answer() -> None:
    result = assess(
        "--snapshot", example("bad-image-rollout"), "--incident-start", "2026-12-03T09:00:00Z",
        "--lookback", "1m", "-o", "json",
    )  # fmt: skip

    doc = json.loads(result.output)
    assert result.exit_code == 0
    assert doc["suspects"] == [] and doc["changes"] == []
    assert doc["notes"] == ["Nothing changed in scope in the 1m before the incident start."]


# ---------------------------------------------------------------------------
# Bad input: one clear line, exit 2, never a traceback
# ---------------------------------------------------------------------------

BAD_INPUT = [
    pytest.param(
        ["--incident-start", "yesterday"],
        "error: --incident-start: 'yesterday' is not a time: use RFC 3339 like "
        "2026-12-03T10:04:00Z, a duration ago like 15m, or now",
        id="unreadable start",
    ),
    pytest.param(
        ["--incident-start", "2026-12-03T10:04:00"],
        "error: --incident-start: '2026-12-03T10:04:00' has no timezone: add Z or an offset "
        "like +01:00",
        id="start without a timezone",
    ),
    pytest.param(
        ["--incident-start", "2026-12-03T11:00:00Z"],
        "error: --incident-start 2026-12-03T11:00:00Z is after the evaluation time "
        "2026-12-03T10:20:00Z",
        id="start after the capture",
    ),
    pytest.param(
        ["--lookback", "a day"],
        "error: --lookback: 'a day' is not a duration: use a number and a unit, like 30s, "
        "15m, 2h, 1d or 1h30m",
        id="unreadable lookback",
    ),
    pytest.param(
        ["--workload", "deployment/nope"],
        "error: no deployment/nope in namespace shop",
        id="unknown workload",
    ),
    pytest.param(
        ["--workload", "web"],
        "error: --workload 'web': use KIND/NAME, e.g. deployment/web",
        id="workload without kind",
    ),
    pytest.param(
        ["--workload", "cronjob/web"],
        "error: --workload cronjob/web: kind must be deployment, statefulset or daemonset",
        id="workload of another kind",
    ),
    pytest.param(["-A", "-n", "shop"], "error: -A and -n exclude each other: pick one", id="-A -n"),
    pytest.param(
        ["--now", "noon"],
        "error: --now 'noon': use an RFC 3339 time like 2026-12-03T10:19:00Z",
        id="unreadable now",
    ),
    pytest.param(
        ["-l", "app in web"],
        "error: -l app in web: cannot read 'app in web' as a label selector term",
        id="unreadable selector",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = assess("--snapshot", example("bad-image-rollout"), *args)

    assert result.exit_code == 2
    assert result.output == message + "\n"


def test_a_missing_snapshot_file_is_bad_input() -> None:
    result = assess("--snapshot", "/nonexistent/incident.yaml")

    assert (result.exit_code, result.output) == (
        2,
        "error: /nonexistent/incident.yaml: no such snapshot file\n",
    )


def test_a_snapshot_that_is_not_yaml_is_bad_input(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("items: [\n  - {kind: Pod\n", encoding="utf-8")

    result = assess("--snapshot", str(broken))

    assert result.exit_code == 2
    assert re.fullmatch(
        rf"error: {re.escape(str(broken))}:\d+:\d+: invalid YAML: .+\n", result.output
    )


def test_now_without_a_snapshot_is_bad_input() -> None:
    result = assess("--now", "2026-12-03T10:00:00Z", env={"KUBECONFIG": "/nonexistent"})

    assert (result.exit_code, result.output) == (
        2,
        "error: --now only applies to --snapshot; a live cluster is read now\n",
    )


def test_an_unreachable_cluster_is_one_line_and_exit_3(tmp_path: Path) -> None:
    # Given a kubeconfig pointing at a port where nothing listens
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        ),
        encoding="utf-8",
    )

    result = assess("-n", "shop", "--kubeconfig", str(kubeconfig))

    assert result.exit_code == 3
    assert result.output == (
        "error: cannot reach the Kubernetes API at https://127.0.0.1:9: connection refused\n"
    )


# ---------------------------------------------------------------------------
# Help
# ---------------------------------------------------------------------------


def test_every_option_names_its_environment_variable() -> None:
    result = CliRunner().invoke(main, ["assess", "--help"], prog_name="rollback")

    options = [
        line.strip()
        for line in result.output.split("Options:\n", 1)[1].split("\n  -")
        if line.strip() and not line.strip().startswith(("h, --help", "-help"))
    ]
    assert len(options) >= 13
    for option in options:
        assert "[env: " in click.unstyle(" ".join(option.split())), option


def test_the_readme_commands_on_examples_run() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### `rollback assess`", 1)[1].split("\n### ", 1)[0]
    commands = [
        line.split("#")[0].split()
        for block in re.findall(r"```sh\n(.*?)```", section, re.S)
        for line in block.splitlines()
        if "--snapshot examples/" in line
    ]
    assert commands
    for command in commands:
        assert command[:2] == ["rollback", "assess"]
        args = [str(ROOT / a) if a.startswith("examples/") else a for a in command[2:]]
        result = assess(*args)
        assert result.exit_code == 0, (command, result.output)


# ---------------------------------------------------------------------------
# --git-repo
# ---------------------------------------------------------------------------


def test_git_repo_commits_in_the_window_join_the_changes(tmp_path: Path) -> None:
    import subprocess

    repo = tmp_path / "shop"
    repo.mkdir()
    stamp = "2026-12-03T09:59:00+0000"
    env = {**os.environ, "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "a@example.com",
           "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "a@example.com",
           "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}  # fmt: skip
    for args in (
        ["init", "-q", "-b", "main"],
        ["commit", "-q", "--allow-empty", "-m", "web 2.5.0"],
    ):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)

    result = assess(
        "--snapshot", example("bad-image-rollout"), "--incident-start", "12m",
        "--git-repo", str(repo), "-o", "json",
    )  # fmt: skip

    commits = [c for c in json.loads(result.output)["changes"] if c["kind"] == "commit"]
    assert [(c["at"], c["cause"], c["summary"][-18:]) for c in commits] == [
        ("2026-12-03T09:59:00Z", "Ada", "in shop: web 2.5.0")
    ]


def test_git_repo_that_is_not_a_repository_is_bad_input(tmp_path: Path) -> None:
    result = assess("--snapshot", example("bad-image-rollout"), "--git-repo", str(tmp_path))

    assert (result.exit_code, result.output) == (
        2,
        f"error: --git-repo {tmp_path}: not a git repository\n",
    )
