"""The README is true: its quick start, and every `rollback` command it shows.

The quick start is two commands, both real, and CI runs the second. Every `rollback`
command in a ```sh block of README.md and docs/controller.md is one the CLI accepts, and
those that need no cluster succeed when run.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from controller.cli import main

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


# ---------------------------------------------------------------------------
# Every `rollback` command the README (and docs/controller.md) shows is real
# ---------------------------------------------------------------------------
#
# A line of a ```sh block that starts with `rollback ` is parsed by the real click
# application, with every command's body replaced by a recorder: click resolves the
# subcommands and checks every option, value and argument exactly as it would for a
# user, and nothing touches a cluster. Commands that need no cluster (policy files, a
# snapshot under examples/) are then run for real. Every other line of those blocks must
# start with a program named in OTHER_PROGRAMS, so that nothing is passed over silently
# (a misspelt `rollbak` fails here).

DOCUMENTS = ("README.md", "docs/controller.md")
OTHER_PROGRAMS = ("make", "kubectl", ".venv/bin/pytest", "python")
SHELL_OPERATORS = ("|", "||", "&&", ";", ">", ">>", "<", "&")


@dataclass(frozen=True)
class DocCommand:
    """One `rollback` command as a document shows it, and the words click is given."""

    document: str
    number: int  # the line it starts on (a command continued with `\` spans several)
    text: str  # as written, continuations joined, comment included
    args: tuple[str, ...]  # the words after `rollback`
    variant: str = ""  # which optional `[...]` parts are in, when the line has any
    problem: str = ""  # why the words cannot be checked as written (the test fails with it)

    def __str__(self) -> str:
        return f"{self.document}:{self.number}: {self.text}" + (
            f" ({self.variant})" if self.variant else ""
        )

    @property
    def id(self) -> str:
        """``README.md:109 rollback execute ...``: the line, as written, without its comment."""
        written = " ".join(_quoted(w) for w in words(self.text))
        return f"{self.document}:{self.number} {written}" + (
            f" ({self.variant})" if self.variant else ""
        )

    def option_values(self, option: str) -> list[str]:
        values = [v for k, v in zip(self.args, self.args[1:], strict=False) if k == option]
        return values + [a.split("=", 1)[1] for a in self.args if a.startswith(option + "=")]


def sh_lines(document: str) -> list[tuple[int, str]]:
    """Each command in the document's ```sh blocks (indented ones too), with its line number.

    A line ending in a backslash continues on the next, as in a shell.
    """
    found: list[tuple[int, str]] = []
    in_block, pending, start = False, "", 0
    for number, raw in enumerate((ROOT / document).read_text().splitlines(), start=1):
        line = raw.strip()
        if not in_block:
            in_block = line == "```sh"
            continue
        if line == "```":
            assert not pending, f"{document}:{start}: a continued command ends its block"
            in_block = False
            continue
        if not line:
            continue
        if not pending:
            start = number
        pending += line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip() + " "
            continue
        found.append((start, pending))
        pending = ""
    return found


def words(text: str) -> list[str]:
    """Shell words, comments dropped; shell operators come out as words of their own."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def _quoted(word: str) -> str:
    return word if re.fullmatch(r"[\w@%+=:,./*?~\[\]-]+", word) else shlex.quote(word)


def optional_variants(args: list[str]) -> list[tuple[list[str], str]]:
    """`[--undo]` is the reader's choice: both with and without it are real commands."""
    groups: list[tuple[int, int]] = []
    i = 0
    while i < len(args):
        if args[i].startswith("["):
            end = next(j for j in range(i, len(args)) if args[j].endswith("]"))
            groups.append((i, end))
            i = end + 1
        else:
            i += 1
    variants = []
    for chosen in itertools.product((False, True), repeat=len(groups)):
        out, names = list(args), []
        for (first, last), keep in reversed(list(zip(groups, chosen, strict=True))):
            part = " ".join(args[first : last + 1])[1:-1]
            out[first : last + 1] = part.split() if keep else []
            names.append(f"{'with' if keep else 'without'} {part}")
        variants.append((out, ", ".join(reversed(names))))
    return variants


def expand_globs(args: list[str]) -> tuple[list[str], str]:
    """`policies/examples/*.yaml` means the files the shell would find, from the repository.

    Returns the words and a problem: a pattern that matches nothing.
    """
    out, problems = [], []
    for arg in args:
        matches = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob(arg)) if "*" in arg else []
        if "*" in arg and not matches:
            problems.append(f"{arg} matches no file in the repository")
        out.extend(matches or [arg])
    return out, "; ".join(problems)


def documented_commands(document: str) -> list[DocCommand]:
    commands = []
    for number, text in sh_lines(document):
        found = words(text)
        if found[0] != "rollback":
            continue
        operators = [w for w in found if w in SHELL_OPERATORS]
        unchecked = (
            f"shell operators {operators}: teach this test which part is the rollback command"
            if operators
            else ""
        )
        for args, variant in optional_variants(found[1:]):
            expanded, unmatched = expand_globs(args)
            problem = "; ".join(p for p in (unchecked, unmatched) if p)
            commands.append(DocCommand(document, number, text, tuple(expanded), variant, problem))
    return commands


COMMANDS = [c for document in DOCUMENTS for c in documented_commands(document)]


def runs_without_a_cluster(command: DocCommand) -> bool:
    """Policy commands read files only; a snapshot of examples/ replaces the cluster."""
    return not why_only_parsed(command)


def why_only_parsed(command: DocCommand) -> str:
    """Why a command cannot be run here ("" when it can): what it would need."""
    if command.args[:1] == ("policy",):
        return ""
    snapshots = command.option_values("--snapshot")
    theirs = [s for s in snapshots if not (s.startswith("examples/") and (ROOT / s).is_file())]
    if theirs:
        return f"reads {', '.join(theirs)}, a file the reader makes: only parsed"
    if snapshots:
        return ""
    return "reads or writes a live cluster: only parsed"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ROLLBACK_* setting of the machine running the tests fills in an option."""
    for name in list(os.environ):
        if name.startswith("ROLLBACK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(ROOT)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch, clean_env: None) -> list[str]:
    """Every command of the real app records that it was reached instead of running."""
    reached: list[str] = []

    def record(**_: Any) -> None:
        reached.append(click.get_current_context().command_path)

    def patch(group: click.Group, ctx: click.Context) -> None:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None, name
            if isinstance(command, click.Group):
                patch(command, click.Context(command, info_name=name, parent=ctx))
            else:
                monkeypatch.setattr(command, "callback", record)

    patch(main, click.Context(main, info_name="rollback"))
    return reached


def test_every_command_line_is_a_rollback_command_or_a_known_program() -> None:
    # Given every command line in the ```sh blocks of the README and docs/controller.md
    lines = [(d, n, text) for d in DOCUMENTS for n, text in sh_lines(d)]
    # Then each starts with rollback or a program this file knowingly does not check
    unknown = [
        f"{d}:{n}: {text}"
        for d, n, text in lines
        if words(text)[0] != "rollback" and words(text)[0] not in OTHER_PROGRAMS
    ]
    assert not unknown, "neither rollback nor a known program:\n" + "\n".join(unknown)


def test_the_readme_shows_every_command_the_cli_has() -> None:
    # Given the commands `rollback --help` lists
    ctx = click.Context(main, info_name="rollback")
    # Then the README has an example of each
    shown = {c.args[0] for c in COMMANDS if c.document == "README.md"}
    assert shown == set(main.list_commands(ctx))


@pytest.mark.parametrize("command", COMMANDS, ids=[c.id for c in COMMANDS])
def test_every_documented_command_is_one_the_cli_accepts(
    command: DocCommand, recorded: list[str]
) -> None:
    # Given words this test can check as written
    assert not command.problem, f"{command}\n  cannot be checked: {command.problem}"
    # When the real app parses them (no command body runs)
    rejected = ""
    try:
        main.main(list(command.args), prog_name="rollback", standalone_mode=False)
    except click.ClickException as err:
        rejected = err.format_message()
    assert not rejected, f"{command}\n  rejected by the CLI: {rejected}"
    # Then exactly one command was reached, the one the words name
    assert len(recorded) == 1, f"{command}: reached {recorded or 'no command'}"
    named = [w for w in command.args if not w.startswith("-")]
    path = recorded[0].split()[1:]
    assert named[: len(path)] == path, f"{command}: reached {recorded[0]}"


# The others need a cluster (or a file the reader makes): the test above parses
# them, and the e2e tests run their like against a real API server.
RUNNABLE = [c for c in COMMANDS if not why_only_parsed(c)]


def test_some_documented_commands_run_without_a_cluster() -> None:
    assert len(RUNNABLE) >= 5, [c.id for c in RUNNABLE]


@pytest.mark.parametrize("command", RUNNABLE, ids=[c.id for c in RUNNABLE])
def test_documented_commands_that_need_no_cluster_succeed(
    command: DocCommand, clean_env: None
) -> None:
    # Given a command that reads only files of this repository
    # When it runs as a reader would run it, from the repository
    result = CliRunner().invoke(main, list(command.args), prog_name="rollback")
    # Then it succeeds: every such example in the documents shows a success
    assert result.exit_code == 0, f"{command}\n  exit {result.exit_code}:\n{result.output}"


def test_the_examples_that_need_no_cluster_are_among_those_run() -> None:
    # Given the commands the rule above lets run without a cluster
    offline = {(c.document, " ".join(c.args[:2])) for c in COMMANDS if runs_without_a_cluster(c)}
    # Then they include the README's snapshot and policy examples and the controller's
    assert {
        ("README.md", "assess --snapshot"),
        ("README.md", "policy check"),
        ("README.md", "policy explain"),
        ("docs/controller.md", "policy explain"),
    } <= offline


def test_the_verdict_shown_in_the_readme_is_what_the_first_example_prints(
    clean_env: None,
) -> None:
    # Given the README's first assess example (a snapshot) and the verdict it shows
    text = (ROOT / "README.md").read_text()
    shown = re.search(r"The verdict comes first.*?```text\n(.*?)```", text, re.S)
    assert shown, "README.md: no ```text block after 'The verdict comes first'"
    first = next(c for c in COMMANDS if c.document == "README.md" and c.args[0] == "assess")
    assert runs_without_a_cluster(first), first
    # When it runs
    result = CliRunner().invoke(main, list(first.args), prog_name="rollback")
    # Then its output begins with exactly those lines
    assert result.exit_code == 0, result.output
    assert result.output.startswith(shown.group(1)), result.output
