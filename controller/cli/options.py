"""Click options shared by several commands (``--policy`` for assess, execute, policy explain).

Decorators only; the policy is loaded by :func:`load_policy_option` inside the
command so that ``rollback --help`` imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from controller.policy import Policy

_F = TypeVar("_F", bound=Callable[..., object])


def policy_option(func: _F) -> _F:
    """``--policy FILE`` (repeatable; env ROLLBACK_POLICY, several separated by ``os.pathsep``).

    The command receives ``policy_files: tuple[str, ...]``.
    """
    decorator = click.option(
        "--policy",
        "policy_files",
        multiple=True,
        envvar="ROLLBACK_POLICY",
        type=click.Path(dir_okay=False),  # splits the env var on os.pathsep
        metavar="FILE",
        help=(
            "Policy file, merged onto the shipped defaults in the order given; repeatable "
            "[env: ROLLBACK_POLICY, several separated by ':']."
        ),
    )
    return decorator(func)


def load_policy_option(policy_files: Sequence[str]) -> Policy:
    """The merged policy for ``--policy`` values; raises PolicyError (exit 2) on any problem."""
    from controller.policy.loader import load_policy

    return load_policy(policy_files)
