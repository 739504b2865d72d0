"""The audit trail: a JSON line per attempt on the user's machine, and an Event on the target.

Every action and every refusal leaves two records:

* a line in the audit log (``$XDG_STATE_HOME/rollback-controller/audit.jsonl``,
  else ``~/.local/state/rollback-controller/audit.jsonl``, ``--audit-log`` or
  ``ROLLBACK_AUDIT_LOG`` to change): when, who (the cluster's own answer from
  SelfSubjectReview), what, the plan hash, the outcome and why;
* a Kubernetes Event (events.k8s.io/v1) on the target with a reason such as
  ``RollbackExecuted`` or ``RollbackRefused``, so ``kubectl describe`` and
  ``kubectl get events`` show it to everyone on the incident.

Building the records is pure; :func:`append_audit_line` and
:func:`read_recent_actions` touch the file.  Values of ConfigMaps never appear:
plans describe data by key, size and digest only.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from controller.actions.plan import Plan, format_time
from controller.errors import UserInputError
from controller.model import ObjectRef
from controller.policy import RecentAction

AUDIT_ENV: Final = "ROLLBACK_AUDIT_LOG"
REPORTING_CONTROLLER: Final = "rollback.io/rollback-controller"
_NOTE_LIMIT: Final = 1024  # events.k8s.io/v1 rejects longer notes


class Outcome(StrEnum):
    """How an attempt ended; also the Event reason suffix."""

    EXECUTED = "executed"
    VERIFIED = "verified"
    NOT_CONVERGED = "not-converged"
    REFUSED = "refused"
    ABORTED = "aborted"
    FAILED = "failed"
    DRY_RUN = "dry-run"
    NOOP = "noop"
    GITOPS_SUSPENDED = "gitops-suspended"
    GITOPS_RESUMED = "gitops-resumed"


EVENT_REASONS: Final[Mapping[Outcome, tuple[str, str]]] = {
    Outcome.EXECUTED: ("RollbackExecuted", "Normal"),
    Outcome.VERIFIED: ("RollbackVerified", "Normal"),
    Outcome.NOT_CONVERGED: ("RollbackNotConverged", "Warning"),
    Outcome.REFUSED: ("RollbackRefused", "Warning"),
    Outcome.ABORTED: ("RollbackAborted", "Normal"),
    Outcome.FAILED: ("RollbackFailed", "Warning"),
    Outcome.GITOPS_SUSPENDED: ("GitOpsSuspended", "Warning"),
    Outcome.GITOPS_RESUMED: ("GitOpsResumed", "Normal"),
}


@dataclass(frozen=True)
class AuditEntry:
    """One attempt, as it goes into the audit log."""

    at: datetime
    outcome: Outcome
    target: ObjectRef
    who: str
    message: str
    plan: Plan | None = None
    unattended: bool = False
    break_glass: bool = False
    reason: str = ""
    incident: str = ""
    server: str = ""
    labels: Mapping[str, str] | None = None
    round_trips: int | None = None
    time_to_restore: timedelta | None = None
    codes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "time": format_time(self.at),
            "outcome": self.outcome.value,
            "target": self.target.to_json(),
            "who": self.who,
            "localUser": _local_user(),
            "host": socket.gethostname(),
            "message": self.message,
            "unattended": self.unattended,
            "breakGlass": self.break_glass,
        }
        if self.plan is not None:
            out.update(
                action=self.plan.action.value,
                planHash=self.plan.hash,
                summary=self.plan.summary,
                **{"from": self.plan.from_label, "to": self.plan.to_label},
            )
        optional: dict[str, Any] = {
            "reason": self.reason,
            "incident": self.incident,
            "server": self.server,
            "labels": dict(self.labels or {}),
            "roundTrips": self.round_trips,
            "timeToRestoreSeconds": (
                round(self.time_to_restore.total_seconds(), 1) if self.time_to_restore else None
            ),
            "codes": list(self.codes),
        }
        out.update({k: v for k, v in optional.items() if v not in (None, "", [], {})})
        return out


def default_audit_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the audit log lives unless ``--audit-log`` says otherwise (XDG state dir)."""
    env = os.environ if env is None else env
    if env.get(AUDIT_ENV):
        return Path(env[AUDIT_ENV]).expanduser()
    state = env.get("XDG_STATE_HOME") or str(
        Path(env.get("HOME") or Path.home()) / ".local" / "state"
    )
    return Path(state).expanduser() / "rollback-controller" / "audit.jsonl"


def append_audit_line(path: Path, entry: AuditEntry) -> None:
    """Append one JSON line; the file is created (mode 0600) with its directory.

    One ``write`` of one line on a file opened with O_APPEND, so concurrent
    runs on the same machine interleave whole lines.
    """
    line = json.dumps(entry.to_json(), sort_keys=True, ensure_ascii=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
    except OSError as err:
        raise UserInputError(f"cannot write the audit log {path}: {err.strerror or err}") from err


def read_audit_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The audit log's entries, oldest first; unreadable lines are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except OSError as err:
        raise UserInputError(f"cannot read the audit log {path}: {err.strerror or err}") from err
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            yield value


def read_recent_actions(path: Path, now: datetime, window: timedelta) -> tuple[RecentAction, ...]:
    """Unattended actions executed in the last ``window``, for the policy's rate limits."""
    since = now - window
    out: list[RecentAction] = []
    for entry in read_audit_lines(path):
        if entry.get("outcome") != Outcome.EXECUTED.value or not entry.get("unattended"):
            continue
        try:
            at = datetime.fromisoformat(str(entry.get("time")))
        except ValueError:
            continue
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        if at < since:
            continue
        target = entry.get("target") or {}
        labels = entry.get("labels") or {}
        out.append(
            RecentAction(
                at=at,
                namespace=str(target.get("namespace") or ""),
                labels={str(k): str(v) for k, v in labels.items()},
            )
        )
    return tuple(out)


def event_body(
    target: Mapping[str, Any],
    outcome: Outcome,
    note: str,
    now: datetime,
    *,
    action: str = "Rollback",
) -> dict[str, Any]:
    """An events.k8s.io/v1 Event about ``target`` (its JSON as read).  Pure.

    ``generateName`` lets the server pick a unique name; the note is cut to
    the API's 1 KiB limit.
    """
    reason, type_ = EVENT_REASONS.get(outcome, ("Rollback", "Normal"))
    metadata = target.get("metadata") or {}
    regarding = {
        "apiVersion": target.get("apiVersion"),
        "kind": target.get("kind"),
        "namespace": metadata.get("namespace"),
        "name": metadata.get("name"),
        "uid": metadata.get("uid"),
        "resourceVersion": metadata.get("resourceVersion"),
    }
    text = " ".join(note.split())
    if len(text.encode()) > _NOTE_LIMIT:
        text = text.encode()[: _NOTE_LIMIT - 3].decode("utf-8", "ignore") + "..."
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {
            # A generateName must be a valid name once a trailing dash is masked.
            "generateName": f"{metadata.get('name') or 'target'}.rollback-",
            "namespace": metadata.get("namespace"),
        },
        "eventTime": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": _instance(),
        "action": action,
        "reason": reason,
        "type": type_,
        "note": text,
        "regarding": {k: v for k, v in regarding.items() if v},
    }


def _instance() -> str:
    # The API limits reportingInstance to 128 characters.
    return f"rollback-cli@{socket.gethostname()}"[:128]


def _local_user() -> str:
    for key in ("USER", "LOGNAME", "USERNAME"):
        if os.environ.get(key):
            return os.environ[key]
    return ""
