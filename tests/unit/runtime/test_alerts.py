"""Alertmanager's webhook in, alerts with a scope out: what the controller hears, where to look.

The payloads are shaped as Alertmanager (webhook ``version: "4"``) sends them; every
malformed one gets one line saying where it is wrong.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from controller.model import ObjectRef
from controller.runtime.alerts import (
    Alert,
    AlertScope,
    AlertStatus,
    PayloadError,
    parse_webhook,
    scope_of,
    summary_of,
)

# As Alertmanager 0.27 posts it (nanosecond times, Go's zero endsAt for a firing alert).
ALERTMANAGER = {
    "receiver": "rollback",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "KubeDeploymentReplicasMismatch",
                "namespace": "shop",
                "deployment": "web",
                "severity": "critical",
            },
            "annotations": {"summary": "Deployment shop/web has not matched its replicas."},
            "startsAt": "2026-12-03T10:04:00.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph?g0.expr=...",
            "fingerprint": "c1a2b3c4d5e6f708",
        }
    ],
    "groupLabels": {"alertname": "KubeDeploymentReplicasMismatch"},
    "commonLabels": {"alertname": "KubeDeploymentReplicasMismatch"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "version": "4",
    "groupKey": '{}:{alertname="KubeDeploymentReplicasMismatch"}',
    "truncatedAlerts": 0,
}


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_an_alertmanager_payload_gives_its_alerts() -> None:
    (alert,) = parse_webhook(body(ALERTMANAGER))
    assert alert.status is AlertStatus.FIRING
    assert alert.name == "KubeDeploymentReplicasMismatch"
    assert alert.starts_at == datetime(2026, 12, 3, 10, 4, 0, 123456, tzinfo=UTC)
    assert alert.ends_at is None  # Go's zero time: not ended
    assert alert.key == "c1a2b3c4d5e6f708"
    assert alert.incident_id == f"c1a2b3c4d5e6f708-{int(alert.starts_at.timestamp())}"
    assert summary_of(alert) == "Deployment shop/web has not matched its replicas."


def test_a_resolved_alert_keeps_its_start_and_so_its_incident() -> None:
    firing = parse_webhook(body(ALERTMANAGER))[0]
    resolved_doc = json.loads(json.dumps(ALERTMANAGER))
    resolved_doc["status"] = "resolved"
    resolved_doc["alerts"][0].update(status="resolved", endsAt="2026-12-03T10:30:00Z")
    resolved = parse_webhook(body(resolved_doc))[0]
    assert resolved.status is AlertStatus.RESOLVED
    assert resolved.ends_at == datetime(2026, 12, 3, 10, 30, tzinfo=UTC)
    assert resolved.incident_id == firing.incident_id


def test_without_a_fingerprint_the_labels_name_the_alert() -> None:
    doc = {"alerts": [{"labels": {"b": "2", "a": "1"}, "startsAt": "2026-12-03T10:04:00Z"}]}
    again = {"alerts": [{"labels": {"a": "1", "b": "2"}, "startsAt": "2026-12-03T10:04:00Z"}]}
    first, second = parse_webhook(body(doc))[0], parse_webhook(body(again))[0]
    assert first.key == second.key
    assert len(first.key) == 16
    assert first.status is AlertStatus.FIRING  # the group's status (default firing)


def alert_with(**fields: Any) -> dict[str, Any]:
    base = {"status": "firing", "labels": {"namespace": "shop"}, "startsAt": "2026-12-03T10:04:00Z"}
    base.update(fields)
    return {"version": "4", "alerts": [base]}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "payload: not JSON (Expecting value: line 1 column 1 (char 0))"),
        (b"\xff\xfe", "payload: not UTF-8 text"),
        (b"[]", "payload: expected a JSON object, got a list"),
        (
            body({"version": "5", "alerts": []}),
            'version: expected "4" (Alertmanager webhook payload), got "5"',
        ),
        (
            body({"status": "firing"}),
            "alerts: missing (an Alertmanager webhook payload lists its alerts)",
        ),
        (body({"alerts": {}}), "alerts: expected a list, got an object"),
        (body({"alerts": ["x"]}), "alerts[0]: expected an object, got a string"),
        (
            body(alert_with(status="pending")),
            'alerts[0].status: expected "firing" or "resolved", got "pending"',
        ),
        (body(alert_with(labels=None)), "alerts[0].labels: missing"),
        (
            body(alert_with(labels={"namespace": 3})),
            "alerts[0].labels.namespace: expected a string, got a number",
        ),
        (body(alert_with(startsAt=None)), "alerts[0].startsAt: missing"),
        (
            body(alert_with(startsAt="yesterday")),
            'alerts[0].startsAt: not an RFC 3339 time: "yesterday"',
        ),
        (
            body(alert_with(startsAt="2026-12-03T10:04:00")),
            'alerts[0].startsAt: "2026-12-03T10:04:00" has no timezone (Z or +01:00)',
        ),
        (
            body(alert_with(startsAt="0001-01-01T00:00:00Z")),
            "alerts[0].startsAt: the zero time is not a start",
        ),
        (body(alert_with(endsAt=5)), "alerts[0].endsAt: expected an RFC 3339 time, got a number"),
        (body(alert_with(fingerprint=7)), "alerts[0].fingerprint: expected a string, got a number"),
        (
            body({"alerts": [alert_with()["alerts"][0]] * 1001}),
            "alerts: 1001 alerts in one payload; at most 1000",
        ),
    ],
)
def test_a_bad_payload_is_refused_in_one_line_naming_where(payload: bytes, message: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_webhook(payload)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


def alert(**labels: str) -> Alert:
    return Alert(AlertStatus.FIRING, labels, datetime(2026, 12, 3, 10, 4, tzinfo=UTC))


@pytest.mark.parametrize(
    ("labels", "scope"),
    [
        # kube-state-metrics labels name the workload.
        (
            {"namespace": "shop", "deployment": "web"},
            AlertScope("shop", ObjectRef("Deployment", "shop", "web")),
        ),
        (
            {"namespace": "shop", "statefulset": "db"},
            AlertScope("shop", ObjectRef("StatefulSet", "shop", "db")),
        ),
        (
            {"namespace": "shop", "daemonset": "agent"},
            AlertScope("shop", ObjectRef("DaemonSet", "shop", "agent")),
        ),
        # Scraped without honor_labels: namespace is the exporter's; exported_namespace, the
        # object's.
        (
            {"namespace": "monitoring", "exported_namespace": "shop", "deployment": "web"},
            AlertScope("shop", ObjectRef("Deployment", "shop", "web")),
        ),
        # Our own labels win over both.
        (
            {
                "rollback.io/namespace": "pay",
                "namespace": "shop",
                "rollback.io/workload": "sts/ledger",
                "deployment": "web",
            },
            AlertScope("pay", ObjectRef("StatefulSet", "pay", "ledger")),
        ),
        # A pod is kept, to be resolved to its owner when the cluster is read.
        (
            {"namespace": "shop", "pod": "web-5655459b74-x7k2p"},
            AlertScope("shop", None, "web-5655459b74-x7k2p"),
        ),
        # Only a namespace: the whole namespace is assessed.
        ({"namespace": "shop", "alertname": "HighErrorRate"}, AlertScope("shop")),
    ],
)
def test_labels_say_where_to_look(labels: dict[str, str], scope: AlertScope) -> None:
    assert scope_of(alert(**labels)) == scope


KIND_NAME = "use KIND/NAME with deployment, statefulset or daemonset, e.g. deployment/web"


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        (
            {"alertname": "NodeDown"},
            "no namespace label (rollback.io/namespace, exported_namespace or namespace)",
        ),
        ({"namespace": "Shop_1"}, "namespace label 'Shop_1' is not a namespace name"),
        (
            {"namespace": "shop", "rollback.io/workload": "web"},
            "rollback.io/workload 'web': " + KIND_NAME,
        ),
        (
            {"namespace": "shop", "rollback.io/workload": "job/migrate"},
            "rollback.io/workload 'job/migrate': " + KIND_NAME,
        ),
    ],
)
def test_an_alert_that_points_nowhere_says_why(labels: dict[str, str], reason: str) -> None:
    assert scope_of(alert(**labels)) == reason
