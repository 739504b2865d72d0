"""Keep everyone informed: notices to the policy's ``notify`` targets, and always to the log.

Targets are the policy's (``notify`` of every scope matching the target) plus
the controller's ``--notify``:

* ``webhook:https://host/path``: a JSON POST of the notice (:func:`notice_json`);
* ``slack:#channel`` / ``slack:@user``: a POST to the Slack incoming-webhook URL
  the controller is given in ``ROLLBACK_SLACK_WEBHOOK_URL`` (an environment
  variable only, so the URL never shows in a process list; from a Secret in
  cluster), naming the channel;
* ``email:…``: not sent by the controller (no mail relay); logged as skipped.

Every notice is logged, whatever the targets.  Delivery runs on a small
thread pool with a short timeout: a slow or broken receiver is logged and
never delays restoring service.  Building bodies is pure.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from controller.durations import format_instant
from controller.model import ObjectRef

TIMEOUT_SECONDS: Final = 5.0
USER_AGENT: Final = "rollback-controller"


class Event(StrEnum):
    """What a notice is about."""

    INCIDENT_OPENED = "incident-opened"
    ASSESSED = "assessed"
    APPROVAL_REQUESTED = "approval-requested"
    EXECUTED = "action-executed"
    REFUSED = "action-refused"
    VERIFIED = "verified"
    NOT_CONVERGED = "not-converged"
    INCIDENT_RESOLVED = "incident-resolved"


@dataclass(frozen=True)
class Notice:
    """One thing people should hear about, in one line plus machine-readable details."""

    event: Event
    incident: str
    namespace: str
    message: str
    at: datetime
    target: ObjectRef | None = None
    plan_hash: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


def notice_json(notice: Notice, controller: str = "") -> dict[str, Any]:
    """The webhook body.  Pure."""
    return {
        "kind": "RollbackNotification",
        "version": 1,
        "event": notice.event.value,
        "at": format_instant(notice.at),
        "incident": notice.incident,
        "namespace": notice.namespace,
        "target": notice.target.to_json() if notice.target else None,
        "planHash": notice.plan_hash,
        "message": notice.message,
        "details": dict(notice.details),
        "controller": controller,
    }


def slack_json(notice: Notice, channel: str) -> dict[str, Any]:
    """A Slack incoming-webhook body for ``channel``.  Pure."""
    where = notice.target.short if notice.target else f"namespace {notice.namespace}"
    return {
        "channel": channel,
        "username": "rollback-controller",
        "text": f"[{notice.event.value}] {where} in {notice.namespace}: {notice.message}",
    }


def delivery(target: str, notice: Notice, slack_url: str, controller: str) -> tuple[str, Any]:
    """Where a notice for ``target`` goes and what is posted: (url, body), or ("", why not).

    Pure.  An empty URL means the target is not sent to; the body is then the
    reason, for the log.
    """
    kind, _, rest = target.partition(":")
    if kind == "webhook" and rest.startswith(("http://", "https://")):
        return rest, notice_json(notice, controller)
    if kind == "slack" and rest.startswith(("#", "@")):
        if not slack_url:
            return "", "no Slack webhook URL configured (ROLLBACK_SLACK_WEBHOOK_URL)"
        return slack_url, slack_json(notice, rest)
    if kind == "email":
        return "", "email is not sent by the controller"
    return "", "not a notify target"


Poster = Callable[[str, Mapping[str, Any]], None]


def post_json(url: str, body: Mapping[str, Any]) -> None:
    """POST ``body`` as JSON; raise on a non-2xx answer or a network problem."""
    data = json.dumps(body).encode()
    # Only http(s) URLs get here (delivery checks the scheme): no file:// surprises.
    request = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        response.read(1024)


class Notifier:
    """Sends notices to their targets in the background; logs every notice and every failure."""

    def __init__(
        self,
        log: logging.Logger,
        *,
        slack_url: str = "",
        extra_targets: Iterable[str] = (),
        controller: str = "",
        poster: Poster = post_json,
        workers: int = 2,
    ) -> None:
        self.log = log
        self.slack_url = slack_url
        self.extra_targets = tuple(extra_targets)
        self.controller = controller
        self._poster = poster
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="notify")

    def send(self, notice: Notice, targets: Iterable[str] = ()) -> list[Future[None]]:
        """Log ``notice`` and post it to every target once.  Never raises, never blocks."""
        where = notice.target.short if notice.target else "namespace"
        self.log.info(
            "notice %s: %s",
            notice.event.value,
            notice.message,
            extra={"target": f"{notice.namespace}/{where}", "incident": notice.incident},
        )
        futures: list[Future[None]] = []
        for target in dict.fromkeys((*targets, *self.extra_targets)):
            url, body = delivery(target, notice, self.slack_url, self.controller)
            if not url:
                self.log.info(
                    "notice %s to %s skipped: %s",
                    notice.event.value,
                    target,
                    body,
                    extra={"target": target, "incident": notice.incident},
                )
                continue
            futures.append(self._pool.submit(self._deliver, target, url, body, notice))
        return futures

    def _deliver(self, target: str, url: str, body: Mapping[str, Any], notice: Notice) -> None:
        try:
            self._poster(url, body)
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", None) or err
            self.log.warning(
                "notice %s to %s failed: %s",
                notice.event.value,
                target,
                reason,
                extra={"target": target, "incident": notice.incident},
            )
        else:
            self.log.debug(
                "notice %s delivered to %s",
                notice.event.value,
                target,
                extra={"target": target, "incident": notice.incident},
            )

    def close(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)


__all__ = [
    "Event",
    "Notice",
    "Notifier",
    "delivery",
    "notice_json",
    "post_json",
    "slack_json",
]
