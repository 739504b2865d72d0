"""The README's quick start is true: two commands, both real, and CI runs the second."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def _code_lines(section: str) -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_the_quick_start_is_exactly_two_make_targets() -> None:
    commands = _code_lines(_section("Quick start"))

    assert commands == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    for command in commands:
        assert re.search(rf"^{command.split()[1]}:", makefile, re.M), command


def test_ci_runs_exactly_the_readme_test_command() -> None:
    script = (ROOT / ".ci/run").read_text()
    commands = [
        line.strip()
        for line in script.splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]

    assert commands == ["exec make test"]
    assert (ROOT / ".ci/run").stat().st_mode & 0o111


def test_the_demo_command_runs() -> None:
    demo = subprocess.run(
        ["make", "-s", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )

    assert demo.returncode == 0, demo.stderr
    assert "rollback" in demo.stdout  # the demo's own output is specified with its command
