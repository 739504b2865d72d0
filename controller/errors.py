"""Our own error types.

Everything a user can cause or meet (bad input, an unreachable or forbidding
cluster, a guard that refuses) is one of these, with a one-line message and the
exit code the CLI uses.  ``controller.kube`` translates client exceptions into
them with ``raise ... from``; nothing above it ever sees a client exception.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the action ran but did not converge (verification failed)
    BAD_INPUT = 2
    CLUSTER = 3  # unreachable, forbidden, or an API error we cannot handle
    REFUSED = 4  # a guard refused: policy, safety, precondition, lock, GitOps
    ABORTED = 5  # the user declined the confirmation


class RollbackError(Exception):
    """Base of every error we raise on purpose; ``str(err)`` is one line."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UserInputError(RollbackError):
    """Bad flags, bad times, bad files, unknown names."""

    exit_code = ExitCode.BAD_INPUT


class PolicyError(UserInputError):
    """A policy file is invalid; ``problems`` holds every ``FILE:LINE:COL path: msg`` line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class ClusterError(RollbackError):
    """Talking to the Kubernetes API failed."""

    exit_code = ExitCode.CLUSTER


class TransientError(ClusterError):
    """Worth retrying: timeouts, 429, 5xx, connection resets."""


class UnreachableError(ClusterError):
    """No API server answered at all."""


class TerminalError(ClusterError):
    """The API answered with something retrying will not fix."""


class ForbiddenError(ClusterError):
    """RBAC said no; the message names the verb and resource."""

    def __init__(self, message: str, verb: str = "", resource: str = "") -> None:
        super().__init__(message)
        self.verb = verb
        self.resource = resource


class NotFoundError(ClusterError):
    """The named object does not exist."""

    exit_code = ExitCode.BAD_INPUT


class ConflictError(ClusterError):
    """The object changed since we read it (resourceVersion precondition failed)."""

    exit_code = ExitCode.REFUSED


class RefusedError(RollbackError):
    """A guard refused to act; the message says why and what to do."""

    exit_code = ExitCode.REFUSED


class AbortedError(RollbackError):
    """The user did not confirm."""

    exit_code = ExitCode.ABORTED


class VerificationError(RollbackError):
    """The action was applied but the rollout did not converge in time."""

    exit_code = ExitCode.FAILED
