"""The controller's HTTP endpoint: Alertmanager's webhook, health and readiness.

Standard library only (``http.server``, one thread per request): the
endpoint answers a handful of requests a minute, and a dependency would buy
nothing.  Routes:

* ``POST /alerts``: an Alertmanager webhook payload.  200 with what was
  accepted and ignored (and why), 400 with a one-line reason for a body that
  is not a payload, 401 without the shared-secret bearer token (when one is
  configured), 411/413 for a missing or oversized body, 503 when the incident
  could not be recorded (Alertmanager retries).
* ``GET /healthz``: the process is alive and its loop is running.
* ``GET /readyz``: it can take alerts (policy loaded, the API answered lately);
  the body says whether this replica leads.
* ``GET /incidents``: the incidents on record, as JSON (read-only).  It
  carries alert labels and summaries, so it asks for the same bearer token
  as ``/alerts``; the probes do not (the kubelet has no token).

A handler never raises into the server: anything unexpected is a 500 with
one line, and is logged.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol

from controller.errors import ClusterError
from controller.runtime.alerts import Alert, PayloadError, parse_webhook

MAX_BODY: Final = 4 * 1024 * 1024
ALERTS_PATH: Final = "/alerts"


class Intake(Protocol):
    """What the server needs from the controller."""

    def receive(self, alerts: Sequence[Alert]) -> dict[str, Any]:
        """Record the alerts; raise ClusterError if they could not be recorded."""

    def healthy(self) -> tuple[bool, str]: ...

    def ready(self) -> tuple[bool, str]: ...

    def incidents(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any] | str

    def encode(self) -> tuple[bytes, str]:
        if isinstance(self.body, str):
            return (self.body + "\n").encode(), "text/plain; charset=utf-8"
        return (json.dumps(self.body, indent=2) + "\n").encode(), "application/json"


def handle(
    method: str,
    path: str,
    headers: Callable[[str], str | None],
    read_body: Callable[[int], bytes],
    intake: Intake,
    *,
    token: str = "",
) -> Reply:
    """Route one request to a reply.  No I/O of its own beyond ``read_body`` and the intake."""
    route = path.split("?", 1)[0].rstrip("/") or "/"
    if route == "/healthz" and method == "GET":
        ok, why = intake.healthy()
        return Reply(200 if ok else 503, why)
    if route == "/readyz" and method == "GET":
        ok, why = intake.ready()
        return Reply(200 if ok else 503, why)
    if route == "/incidents" and method == "GET":
        if (refused := _unauthorised(headers, token)) is not None:
            return refused
        try:
            return Reply(200, {"incidents": intake.incidents()})
        except ClusterError as err:
            return Reply(503, f"cannot read the incidents: {err}")
    if route == ALERTS_PATH:
        if method != "POST":
            return Reply(405, f"{ALERTS_PATH} takes POST (an Alertmanager webhook)")
        return _alerts(headers, read_body, intake, token)
    return Reply(404, f"no route {route}: try POST {ALERTS_PATH}, GET /healthz, /readyz")


def _alerts(
    headers: Callable[[str], str | None],
    read_body: Callable[[int], bytes],
    intake: Intake,
    token: str,
) -> Reply:
    if (refused := _unauthorised(headers, token)) is not None:
        return refused
    length_text = headers("Content-Length")
    if length_text is None:
        return Reply(411, "Content-Length required")
    try:
        length = int(length_text)
    except ValueError:
        return Reply(400, "Content-Length: not a number")
    if length < 0:
        return Reply(400, "Content-Length: negative")
    if length > MAX_BODY:
        return Reply(413, f"payload of {length} bytes; at most {MAX_BODY}")
    try:
        alerts = parse_webhook(read_body(length))
    except PayloadError as err:
        return Reply(400, str(err))
    try:
        return Reply(200, intake.receive(alerts))
    except ClusterError as err:
        return Reply(503, f"cannot record the incident: {err}")


def _unauthorised(headers: Callable[[str], str | None], token: str) -> Reply | None:
    """401 unless the request carries the shared secret (when one is configured)."""
    if not token:
        return None
    scheme, _, value = (headers("Authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
        return None
    return Reply(401, "missing or wrong bearer token")


def make_server(
    host: str,
    port: int,
    intake: Intake,
    log: logging.Logger,
    token: str = "",
) -> ThreadingHTTPServer:
    """A threaded HTTP server bound to ``host:port`` (0: any free port), not yet serving."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "rollback-controller"
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            try:
                reply = handle(
                    method,
                    self.path,
                    self.headers.get,
                    self.rfile.read,
                    intake,
                    token=token,
                )
            except Exception as err:  # a handler must never take the server down
                log.exception("request %s %s failed", method, self.path, extra={"target": "http"})
                reply = Reply(500, f"internal error: {type(err).__name__}")
            data, content_type = reply.encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if reply.status == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="rollback-controller"')
            self.end_headers()
            self.wfile.write(data)
            if self.path.split("?", 1)[0].rstrip("/") not in ("/healthz", "/readyz"):
                log.info(
                    "%s %s -> %d",
                    method,
                    self.path,
                    reply.status,
                    extra={"target": f"http {self.client_address[0]}"},
                )

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # our own line above names the target; the default prints to stderr raw

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


__all__ = ["ALERTS_PATH", "Intake", "Reply", "handle", "make_server"]
