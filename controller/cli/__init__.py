"""The ``rollback`` command line: a thin shell with one exit path.

Commands live in their own modules and are imported only when invoked, so
``rollback --help`` never pays for the Kubernetes client.  Every error we raise
on purpose is a :class:`~controller.errors.RollbackError`; it leaves through
:func:`abort` as one line on stderr and its exit code.  A traceback appears only
with ``--debug``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, NoReturn

import click

from controller import __version__
from controller.errors import ExitCode, RollbackError

# name -> (module, attribute, one-line help shown by `rollback --help`)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "assess": (
        "controller.cli.assess",
        "assess",
        "What changed before it broke, and can we roll back?",
    ),
    "snapshot": ("controller.cli.snapshot", "snapshot", "Capture what assess reads into a file."),
    "execute": (
        "controller.cli.execute",
        "execute",
        "Perform the recommended action behind guards.",
    ),
    "resume-gitops": (
        "controller.cli.execute",
        "resume_gitops",
        "Resume a GitOps owner we suspended.",
    ),
    "policy": ("controller.cli.policy", "policy", "Validate and explain policies."),
    "controller": ("controller.cli.controller", "controller", "Run the in-cluster controller."),
    "approve": ("controller.cli.approve", "approve", "Approve a plan that policy wants approved."),
}


def abort(message: str, code: int = ExitCode.BAD_INPUT) -> NoReturn:
    """The one way a command reports a user-facing failure."""
    click.echo(f"error: {message}", err=True)
    sys.exit(int(code))


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | _available())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _available():
            module_name, attr, _ = _COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module_name), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help text comes from our table so `--help` imports nothing heavy.
        rows = [(name, _COMMANDS[name][2]) for name in sorted(_available())]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RollbackError as err:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            abort(str(err), err.exit_code)
        except KeyboardInterrupt:
            abort("interrupted; nothing further was done", ExitCode.ABORTED)


def _available() -> set[str]:
    """Commands whose module is present (lets the CLI grow command by command)."""
    import importlib.util

    return {name for name, (mod, _, _) in _COMMANDS.items() if importlib.util.find_spec(mod)}


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rollback")
@click.option(
    "--debug",
    is_flag=True,
    envvar="ROLLBACK_DEBUG",
    help="Show tracebacks for errors [env: ROLLBACK_DEBUG].",
)
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Deploy-aware rollback for Kubernetes.

    During an incident: `rollback assess` finds what changed before it broke,
    classifies the fault as infrastructure or software and says whether a
    rollback is quick and safe; `rollback execute` performs the recommended
    action behind guards (plan, confirmation, policy, preconditions, audit).
    In the cluster, `rollback controller run` does the same on alerts, and
    `rollback approve` lets a second person approve a plan policy holds back.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
