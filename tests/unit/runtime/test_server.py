"""The webhook endpoint: what each request gets back, over real HTTP.

The intake is the controller's side of the server (recording incidents in the
cluster); here it records in memory, so what the server does with each request
shows on its own.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from controller.errors import UnreachableError
from controller.runtime.alerts import Alert
from controller.runtime.server import Reply, handle, make_server

PAYLOAD = {
    "version": "4",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "WebDown", "namespace": "shop", "deployment": "web"},
            "startsAt": "2026-12-03T10:04:00Z",
            "fingerprint": "c1a2b3c4d5e6f708",
        }
    ],
}


class MemoryIntake:
    def __init__(self, *, down: bool = False) -> None:
        self.received: list[Alert] = []
        self.down = down

    def receive(self, alerts: Sequence[Alert]) -> dict[str, Any]:
        if self.down:
            raise UnreachableError(
                "cannot reach the Kubernetes API at https://x: connection refused"
            )
        self.received.extend(alerts)
        return {"accepted": [{"incident": a.incident_id} for a in alerts], "ignored": []}

    def healthy(self) -> tuple[bool, str]:
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        return (
            (False, "the Kubernetes API has not answered for over 30s")
            if self.down
            else (True, "ok: leader (a)")
        )

    def incidents(self) -> list[dict[str, Any]]:
        return [{"id": a.incident_id} for a in self.received]


def request(
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    intake: MemoryIntake | None = None,
    token: str = "",
) -> Reply:
    given = dict(headers or {})
    if body is not None and "Content-Length" not in given:
        given["Content-Length"] = str(len(body))
    return handle(
        method, path, given.get, lambda n: (body or b"")[:n], intake or MemoryIntake(), token=token
    )


def test_a_payload_is_accepted_and_recorded() -> None:
    intake = MemoryIntake()
    reply = request("POST", "/alerts", json.dumps(PAYLOAD).encode(), intake=intake)
    assert reply.status == 200
    assert reply.body == {"accepted": [{"incident": intake.received[0].incident_id}], "ignored": []}


@pytest.mark.parametrize(
    ("call", "status", "text"),
    [
        (
            ("POST", "/alerts", b"{", {}),
            400,
            "payload: not JSON (Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1))",
        ),
        (("POST", "/alerts", b'{"alerts": 1}', {}), 400, "alerts: expected a list, got a number"),
        (("POST", "/alerts", None, {}), 411, "Content-Length required"),
        (
            ("POST", "/alerts", b"{}", {"Content-Length": "ten"}),
            400,
            "Content-Length: not a number",
        ),
        (
            ("POST", "/alerts", b"{}", {"Content-Length": str(5 * 1024 * 1024)}),
            413,
            "payload of 5242880 bytes; at most 4194304",
        ),
        (("GET", "/alerts", None, {}), 405, "/alerts takes POST (an Alertmanager webhook)"),
        (
            ("GET", "/nowhere", None, {}),
            404,
            "no route /nowhere: try POST /alerts, GET /healthz, /readyz",
        ),
        (("GET", "/healthz", None, {}), 200, "ok"),
        (("GET", "/readyz/", None, {}), 200, "ok: leader (a)"),
    ],
)
def test_every_request_gets_a_status_and_one_line(
    call: tuple[str, str, bytes | None, dict[str, str]], status: int, text: str
) -> None:
    reply = request(*call)
    assert (reply.status, reply.body) == (status, text)


def test_with_a_shared_secret_only_the_bearer_of_it_gets_in() -> None:
    body = json.dumps(PAYLOAD).encode()
    assert request("POST", "/alerts", body, token="s3cret").status == 401
    wrong = {"Authorization": "Bearer nope"}
    assert request("POST", "/alerts", body, wrong, token="s3cret").status == 401
    right = {"Authorization": "Bearer s3cret"}
    assert request("POST", "/alerts", body, right, token="s3cret").status == 200
    # The incidents carry alert labels and summaries: the same secret guards them.
    assert request("GET", "/incidents", token="s3cret").status == 401
    assert request("GET", "/incidents", None, right, token="s3cret").status == 200
    # Health checks need no token (kubelet probes carry none).
    assert request("GET", "/healthz", token="s3cret").status == 200
    assert request("GET", "/readyz", token="s3cret").status == 200


def test_when_the_incident_cannot_be_recorded_alertmanager_is_told_to_retry() -> None:
    down = MemoryIntake(down=True)
    reply = request("POST", "/alerts", json.dumps(PAYLOAD).encode(), intake=down)
    assert reply.status == 503
    assert reply.body == (
        "cannot record the incident: cannot reach the Kubernetes API at https://x: "
        "connection refused"
    )
    assert request("GET", "/readyz", intake=down).status == 503


@pytest.fixture
def served() -> Iterator[tuple[str, MemoryIntake]]:
    intake = MemoryIntake()
    server = make_server("127.0.0.1", 0, intake, logging.getLogger("test.server"), token="t0k")
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", intake
    server.shutdown()
    server.server_close()


def post(url: str, body: bytes, token: str | None = None) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_over_real_http(served: tuple[str, MemoryIntake]) -> None:
    base, intake = served
    status, text = post(base + "/alerts", json.dumps(PAYLOAD).encode(), token="t0k")
    assert status == 200
    assert json.loads(text)["accepted"][0]["incident"] == intake.received[0].incident_id
    assert post(base + "/alerts", b"[]", token="t0k") == (
        400,
        "payload: expected a JSON object, got a list\n",
    )
    assert post(base + "/alerts", b"{}")[0] == 401
    incidents = urllib.request.Request(base + "/incidents", headers={"Authorization": "Bearer t0k"})
    with urllib.request.urlopen(incidents, timeout=5) as response:
        assert json.loads(response.read()) == {
            "incidents": [{"id": intake.received[0].incident_id}]
        }
