"""Notices: where each target's goes, what is posted, and that failures never block.

Delivery is tested against a real HTTP server on a loopback port.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from controller.model import ObjectRef
from controller.runtime.notify import Event, Notice, Notifier, delivery, notice_json, slack_json

NOTICE = Notice(
    Event.APPROVAL_REQUESTED,
    "c1a2b3c4d5e6f708-1796300640",
    "shop",
    "approval needed: roll back deployment/web (plan sha256:0123456789abcdef)",
    datetime(2026, 12, 3, 10, 5, tzinfo=UTC),
    target=ObjectRef("Deployment", "shop", "web"),
    plan_hash="sha256:0123456789abcdef",
    details={"command": "rollback approve sha256:0123456789abcdef -n shop"},
)


def test_a_webhook_gets_the_whole_notice_as_json() -> None:
    assert notice_json(NOTICE, "sa (pod)") == {
        "kind": "RollbackNotification",
        "version": 1,
        "event": "approval-requested",
        "at": "2026-12-03T10:05:00Z",
        "incident": "c1a2b3c4d5e6f708-1796300640",
        "namespace": "shop",
        "target": {"kind": "Deployment", "namespace": "shop", "name": "web"},
        "planHash": "sha256:0123456789abcdef",
        "message": "approval needed: roll back deployment/web (plan sha256:0123456789abcdef)",
        "details": {"command": "rollback approve sha256:0123456789abcdef -n shop"},
        "controller": "sa (pod)",
    }


def test_slack_gets_one_line_in_the_named_channel() -> None:
    assert slack_json(NOTICE, "#prod-incidents") == {
        "channel": "#prod-incidents",
        "username": "rollback-controller",
        "text": "[approval-requested] deployment/web in shop: approval needed: roll back "
        "deployment/web (plan sha256:0123456789abcdef)",
    }


@pytest.mark.parametrize(
    ("target", "slack_url", "url", "why"),
    [
        ("webhook:https://hooks.example.com/x", "", "https://hooks.example.com/x", None),
        ("slack:#prod", "https://hooks.slack.com/T/B/X", "https://hooks.slack.com/T/B/X", None),
        ("slack:#prod", "", "", "no Slack webhook URL configured (ROLLBACK_SLACK_WEBHOOK_URL)"),
        ("email:oncall@example.com", "", "", "email is not sent by the controller"),
        ("pager:oncall", "", "", "not a notify target"),
    ],
)
def test_where_each_target_goes(target: str, slack_url: str, url: str, why: str | None) -> None:
    got_url, body = delivery(target, NOTICE, slack_url, "c")
    assert got_url == url
    if why is not None:
        assert body == why


class Receiver:
    """A loopback HTTP server that records what it is sent, or answers with ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.got = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.got.set()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_a_notice_is_posted_and_logged_with_its_target(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    log = logging.getLogger("test.notify")
    notifier = Notifier(log, controller="c", extra_targets=["email:x@example.com"])
    with caplog.at_level(logging.INFO, logger="test.notify"):
        futures = notifier.send(NOTICE, [f"webhook:{receiver.url}"])
        for future in futures:
            future.result(timeout=10)
    notifier.close()
    assert receiver.bodies == [notice_json(NOTICE, "c")]
    lines = [(r.getMessage(), getattr(r, "target", None)) for r in caplog.records]
    assert (
        "notice approval-requested: " + NOTICE.message,
        "shop/deployment/web",
    ) in lines
    assert (
        "notice approval-requested to email:x@example.com skipped: "
        "email is not sent by the controller",
        "email:x@example.com",
    ) in lines


def test_a_failing_receiver_is_logged_and_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    broken = Receiver(status=500)
    log = logging.getLogger("test.notify.fail")
    notifier = Notifier(log)
    try:
        with caplog.at_level(logging.INFO, logger="test.notify.fail"):
            for future in notifier.send(
                NOTICE, [f"webhook:{broken.url}", "webhook:http://127.0.0.1:9/x"]
            ):
                future.result(timeout=10)
    finally:
        notifier.close()
        broken.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert any("Internal Server Error" in w or "500" in w for w in warnings)
    assert any("Connection refused" in w for w in warnings)
