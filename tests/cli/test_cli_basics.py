"""The shell of the ``rollback`` command: help, version, entry points, unknown input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from controller import __version__
from controller.cli import _COMMANDS, _available, main

ROLLBACK = Path(sys.executable).parent / "rollback"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_every_available_command_with_its_summary(flag: str) -> None:
    result = CliRunner().invoke(main, [flag], prog_name="rollback")

    assert result.exit_code == 0
    assert result.output.startswith("Usage: rollback [OPTIONS] COMMAND [ARGS]...\n")
    assert "  --debug     Show tracebacks for errors [env: ROLLBACK_DEBUG].\n" in result.output
    for name in sorted(_available()):
        assert f"  {name}" in result.output
        assert _COMMANDS[name][2] in result.output


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(main, ["--version"], prog_name="rollback")

    assert result.exit_code == 0
    assert result.output == f"rollback, version {__version__}\n"


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["frobnicate"], prog_name="rollback")

    assert result.exit_code == 2
    assert result.output.endswith("Error: No such command 'frobnicate'.\n")


def test_no_command_shows_the_help_and_fails() -> None:
    result = CliRunner().invoke(main, [], prog_name="rollback")

    assert result.exit_code == 2
    assert "Usage: rollback [OPTIONS] COMMAND [ARGS]..." in result.output


def test_the_console_script_and_python_m_controller_agree() -> None:
    script = run(str(ROLLBACK), "--version")
    module = run(sys.executable, "-m", "controller", "--version")

    assert (script.returncode, script.stdout) == (0, f"rollback, version {__version__}\n")
    assert (module.returncode, module.stdout) == (0, script.stdout)


def test_an_unknown_command_fails_with_exit_code_2_and_one_error_line() -> None:
    result = run(str(ROLLBACK), "frobnicate")

    assert result.returncode == 2
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == ["Error: No such command 'frobnicate'."]


def test_help_stays_lean_and_never_imports_the_kubernetes_client() -> None:
    probe = (
        "import sys\n"
        "from controller.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('kubernetes', 'git', 'yaml') if m in sys.modules)\n"
        "print('heavy:', ','.join(heavy), file=sys.stderr)\n"
    )
    result = run(sys.executable, "-c", probe)

    assert result.returncode == 0
    assert result.stderr.splitlines()[-1] == "heavy: "
