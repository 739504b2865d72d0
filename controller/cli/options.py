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


# ---------------------------------------------------------------------------
# Assess inputs: scope, incident, cluster, snapshots, git, output
# ---------------------------------------------------------------------------


def _apply(func: _F, decorators: Sequence[Callable[[_F], _F]]) -> _F:
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def scope_options(func: _F) -> _F:
    """``-n/--namespace`` (repeatable), ``-A``, ``-l/--selector``, ``--workload KIND/NAME``."""
    return _apply(
        func,
        [
            click.option(
                "-n",
                "--namespace",
                "namespaces",
                multiple=True,
                envvar="ROLLBACK_NAMESPACE",
                metavar="NS",
                help=(
                    "Namespace to look at; repeatable. Default: the kubeconfig context's "
                    "namespace (live) or every namespace in the snapshot "
                    "[env: ROLLBACK_NAMESPACE, several separated by spaces]."
                ),
            ),
            click.option(
                "-A",
                "--all-namespaces",
                is_flag=True,
                envvar="ROLLBACK_ALL_NAMESPACES",
                help="Look at every namespace [env: ROLLBACK_ALL_NAMESPACES].",
            ),
            click.option(
                "-l",
                "--selector",
                envvar="ROLLBACK_SELECTOR",
                metavar="SELECTOR",
                help=(
                    "Label selector naming the alerting workloads, e.g. app=web "
                    "[env: ROLLBACK_SELECTOR]."
                ),
            ),
            click.option(
                "--workload",
                "workloads",
                multiple=True,
                envvar="ROLLBACK_WORKLOAD",
                metavar="KIND/NAME",
                help=(
                    "The alerting workload, e.g. deployment/web; repeatable "
                    "[env: ROLLBACK_WORKLOAD]."
                ),
            ),
        ],
    )


def incident_options(func: _F) -> _F:
    """``--incident-start`` and ``--lookback``."""
    return _apply(
        func,
        [
            click.option(
                "--incident-start",
                "incident_start",
                default="now",
                show_default=True,
                envvar="ROLLBACK_INCIDENT_START",
                metavar="TIME",
                help=(
                    "When it broke: RFC 3339 (2026-12-03T10:04:00Z), a duration ago (15m) "
                    "or now [env: ROLLBACK_INCIDENT_START]."
                ),
            ),
            click.option(
                "--lookback",
                envvar="ROLLBACK_LOOKBACK",
                metavar="DURATION",
                help=(
                    "How far before the start to look for changes (default: the policy's, "
                    "24h) [env: ROLLBACK_LOOKBACK]."
                ),
            ),
        ],
    )


def cluster_options(func: _F) -> _F:
    """``--kubeconfig`` and ``--context``."""
    return _apply(
        func,
        [
            click.option(
                "--kubeconfig",
                envvar="ROLLBACK_KUBECONFIG",
                metavar="FILE",
                help=(
                    "Kubeconfig file [env: ROLLBACK_KUBECONFIG; the client also honours "
                    "KUBECONFIG]."
                ),
            ),
            click.option(
                "--context",
                envvar="ROLLBACK_CONTEXT",
                metavar="NAME",
                help="Kubeconfig context [env: ROLLBACK_CONTEXT].",
            ),
        ],
    )


def snapshot_input_options(func: _F) -> _F:
    """``--snapshot FILE`` (repeatable) and ``--now``."""
    return _apply(
        func,
        [
            click.option(
                "--snapshot",
                "snapshots",
                multiple=True,
                envvar="ROLLBACK_SNAPSHOT",
                type=click.Path(dir_okay=False),
                metavar="FILE",
                help=(
                    "Read this snapshot (YAML or JSON, as `kubectl get -o yaml` or "
                    "`rollback snapshot` writes it) instead of a live cluster; repeatable "
                    "[env: ROLLBACK_SNAPSHOT, several separated by ':']."
                ),
            ),
            click.option(
                "--now",
                "now_text",
                envvar="ROLLBACK_NOW",
                metavar="TIME",
                help=(
                    "Evaluation time for a snapshot (RFC 3339); default: its capture time "
                    "[env: ROLLBACK_NOW]."
                ),
            ),
        ],
    )


def git_option(func: _F) -> _F:
    """``--git-repo PATH`` (repeatable)."""
    decorator = click.option(
        "--git-repo",
        "git_repos",
        multiple=True,
        envvar="ROLLBACK_GIT_REPO",
        type=click.Path(file_okay=False),
        metavar="PATH",
        help=(
            "A git checkout of the application: commits in the window, image tags that "
            "name commits, migrations between revisions; repeatable "
            "[env: ROLLBACK_GIT_REPO, several separated by ':']."
        ),
    )
    return decorator(func)


def output_option(func: _F) -> _F:
    """``-o text|json|yaml``."""
    decorator = click.option(
        "-o",
        "--output",
        type=click.Choice(["text", "json", "yaml"]),
        default="text",
        show_default=True,
        envvar="ROLLBACK_OUTPUT",
        help="Output format [env: ROLLBACK_OUTPUT].",
    )
    return decorator(func)
