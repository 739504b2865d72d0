"""Incident records: what a webhook writes, what the leader writes, and how they read back."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from controller.model import ObjectRef
from controller.runtime.alerts import Alert, AlertScope, AlertStatus
from controller.runtime.incidents import (
    ActionRecord,
    IncidentState,
    Phase,
    incident_configmap,
    parse_incident,
    recent_actions,
    state_document,
)

START = datetime(2026, 12, 3, 10, 4, tzinfo=UTC)
RECEIVED = datetime(2026, 12, 3, 10, 5, tzinfo=UTC)
WEB = ObjectRef("Deployment", "shop", "web")
ALERT = Alert(
    AlertStatus.FIRING,
    {"alertname": "WebDown", "namespace": "shop", "deployment": "web"},
    START,
    {"summary": "web is down"},
    fingerprint="c1a2b3c4d5e6f708",
)


def stored(state: IncidentState | None = None) -> dict[str, object]:
    obj = incident_configmap(ALERT, AlertScope("shop", WEB), RECEIVED, "rollback-system")
    obj["metadata"]["resourceVersion"] = "42"  # type: ignore[index]
    if state is not None:
        obj["data"]["state"] = json.dumps(state_document(state))  # type: ignore[index]
    return obj


def test_a_webhook_records_the_alert_under_a_name_of_its_own() -> None:
    obj = stored()
    meta = obj["metadata"]
    assert meta["name"] == f"rollback-incident-c1a2b3c4d5e6f708-{int(START.timestamp())}"  # type: ignore[index]
    assert meta["labels"]["rollback.io/incident"] == "true"  # type: ignore[index]
    assert meta["labels"]["rollback.io/ledger"] == "false"  # type: ignore[index]
    record = parse_incident(obj)  # type: ignore[arg-type]
    assert record is not None
    assert (record.scope, record.started, record.received) == (
        AlertScope("shop", WEB),
        START,
        RECEIVED,
    )
    assert record.open and record.summary == "web is down"
    assert record.describe() == "WebDown on deployment/web in shop"
    assert record.resource_version == "42"
    assert record.state == IncidentState()


def test_the_leaders_state_reads_back_the_same() -> None:
    action = ActionRecord(
        "sha256:0123456789abcdef", Phase.VERIFIED, RECEIVED, "roll back", WEB, True, {"app": "web"}
    )
    state = IncidentState(
        action, "sha256:0123456789abcdef", ("opened", "approval:x"), "last line", RECEIVED
    )
    record = parse_incident(stored(state))  # type: ignore[arg-type]
    assert record is not None
    assert record.state == state


def test_an_unknown_phase_reads_as_started_the_safe_reading() -> None:
    doc = state_document(IncidentState(ActionRecord("h", Phase.EXECUTED, RECEIVED, "x", WEB, True)))
    doc["action"]["phase"] = "exploded"
    obj = stored()
    obj["data"]["state"] = json.dumps(doc)  # type: ignore[index]
    record = parse_incident(obj)  # type: ignore[arg-type]
    assert record is not None and record.state.action is not None
    assert record.state.action.phase is Phase.STARTED


def test_a_damaged_record_is_skipped_not_fatal() -> None:
    assert parse_incident({"metadata": {"name": "x"}, "data": {"alert": "{"}}) is None
    assert parse_incident({"metadata": {"name": "x"}, "data": {"alert": "{}"}}) is None


def test_only_unattended_actions_that_may_have_changed_something_count_for_rate_limits() -> None:
    def record(phase: Phase, unattended: bool = True) -> object:
        state = IncidentState(ActionRecord("h", phase, RECEIVED, "x", WEB, unattended))
        return parse_incident(stored(state))  # type: ignore[arg-type]

    records = [
        record(Phase.VERIFIED),
        record(Phase.STARTED),  # outcome unknown: it may have acted
        record(Phase.REFUSED),  # nothing was written
        record(Phase.VERIFIED, unattended=False),  # a person approved it
        parse_incident(stored()),  # nothing attempted
    ]
    counted = recent_actions([r for r in records if r is not None])  # type: ignore[misc]
    assert [a.phase for a in counted] == [Phase.VERIFIED, Phase.STARTED]
