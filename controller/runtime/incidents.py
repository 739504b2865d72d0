"""Open incidents, kept in the cluster so that a failover loses none.

One ConfigMap per incident in the controller's namespace, named
``rollback-incident-<alert key>-<start>``, labelled ``rollback.io/incident``:

* ``data.alert``: what the alert said (scope, start, status, summary).  Written
  by whichever replica received the webhook (leader or not): creating the
  ConfigMap is atomic, so two replicas receiving the same alert record it once.
* ``data.state``: what the leader did about it (notices sent, the approval it
  asked for, the one action it attempted and how that ended).  Written only by
  the leader, with the ConfigMap's ``resourceVersion`` as a precondition, and
  *before* acting: the intent is on record first, so a leader that dies
  mid-action leaves a successor that knows not to act again (one attempt only).

Alert labels and annotations are Alertmanager's, not cluster data; no
ConfigMap or Secret value is ever stored here.  Serialising is pure; the
:class:`IncidentStore` does the I/O.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from controller.durations import format_instant, parse_k8s_time
from controller.errors import ConflictError, NotFoundError
from controller.kube import CONFIGMAP, MERGE_PATCH, Kube
from controller.model import ObjectRef
from controller.runtime.alerts import Alert, AlertScope, AlertStatus, summary_of
from controller.view import JSON, labels_of, meta, name_of

INCIDENT_LABEL: Final = "rollback.io/incident"
STATUS_LABEL: Final = "rollback.io/status"
NAMESPACE_LABEL: Final = "rollback.io/namespace"
MANAGED_BY: Final = {"app.kubernetes.io/managed-by": "rollback-controller"}
NAME_PREFIX: Final = "rollback-incident-"


class Phase(StrEnum):
    """How the one action of an incident went (``ActionRecord.phase``)."""

    STARTED = "started"  # intent recorded; the outcome is not known (yet)
    EXECUTED = "executed"
    VERIFIED = "verified"
    NOT_CONVERGED = "not-converged"
    REFUSED = "refused"
    FAILED = "failed"


# Phases in which the cluster was (or may have been) changed: they count for
# rate limits and forbid a second action.
ACTED: Final = frozenset(
    {Phase.STARTED, Phase.EXECUTED, Phase.VERIFIED, Phase.NOT_CONVERGED, Phase.FAILED}
)


@dataclass(frozen=True)
class ActionRecord:
    """The one action the controller attempted for an incident."""

    plan_hash: str
    phase: Phase
    at: datetime
    summary: str
    target: ObjectRef
    unattended: bool
    labels: Mapping[str, str] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True)
class IncidentState:
    """What the leader did about an incident; written by the leader only."""

    action: ActionRecord | None = None
    approval_requested: str = ""  # the plan hash an approval request was made for
    notified: tuple[str, ...] = ()  # keys of the notices already sent (each once)
    last: str = ""  # the latest assessment, one line
    last_pass: datetime | None = None


@dataclass(frozen=True)
class IncidentRecord:
    """An incident as stored: the alert's part and the leader's part."""

    id: str
    alertname: str
    scope: AlertScope
    started: datetime
    status: AlertStatus
    received: datetime
    summary: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    resolved_at: datetime | None = None
    state: IncidentState = field(default_factory=IncidentState)
    name: str = ""
    resource_version: str = ""

    @property
    def open(self) -> bool:
        return self.status is AlertStatus.FIRING

    def describe(self) -> str:
        where = self.scope.workload.short if self.scope.workload else "namespace"
        return f"{self.alertname or 'alert'} on {where} in {self.scope.namespace}"


# ---------------------------------------------------------------------------
# Serialising (pure)
# ---------------------------------------------------------------------------


def configmap_name(incident_id: str) -> str:
    return NAME_PREFIX + incident_id


def alert_document(alert: Alert, scope: AlertScope, received: datetime) -> dict[str, Any]:
    """``data.alert``: the alert's part of the record.  Pure."""
    return {
        "id": alert.incident_id,
        "alertname": alert.name,
        "namespace": scope.namespace,
        "workload": scope.workload.to_json() if scope.workload else None,
        "pod": scope.pod,
        "startsAt": format_instant(alert.starts_at),
        "status": alert.status.value,
        "endsAt": format_instant(alert.ends_at) if alert.ends_at else None,
        "receivedAt": format_instant(received),
        "summary": summary_of(alert),
        "labels": dict(sorted(alert.labels.items())),
        "generatorURL": alert.generator_url,
    }


def incident_configmap(alert: Alert, scope: AlertScope, received: datetime, namespace: str) -> JSON:
    """The ConfigMap that records a new incident.  Pure."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": configmap_name(alert.incident_id),
            "namespace": namespace,
            "labels": {
                **MANAGED_BY,
                INCIDENT_LABEL: "true",
                STATUS_LABEL: alert.status.value,
                NAMESPACE_LABEL: scope.namespace,
                # Our own records are not configuration: the ledger skips them.
                "rollback.io/ledger": "false",
            },
        },
        "data": {"alert": _dumps(alert_document(alert, scope, received))},
    }


def state_document(state: IncidentState) -> dict[str, Any]:
    """``data.state``: the leader's part.  Pure."""
    action = state.action
    return {
        "action": None
        if action is None
        else {
            "planHash": action.plan_hash,
            "phase": action.phase.value,
            "at": format_instant(action.at),
            "summary": action.summary,
            "target": action.target.to_json(),
            "unattended": action.unattended,
            "labels": dict(action.labels),
            "message": action.message,
        },
        "approvalRequested": state.approval_requested,
        "notified": list(state.notified),
        "last": state.last,
        "lastPass": format_instant(state.last_pass) if state.last_pass else None,
    }


def parse_incident(obj: JSON) -> IncidentRecord | None:
    """An incident ConfigMap as a record; None when it is not one (or is damaged).  Pure."""
    data = obj.get("data") or {}
    try:
        alert = json.loads(data.get("alert") or "null")
        state = json.loads(data.get("state") or "{}")
    except ValueError:
        return None
    if not isinstance(alert, dict) or not isinstance(state, dict):
        return None
    started = parse_k8s_time(alert.get("startsAt"))
    received = parse_k8s_time(alert.get("receivedAt"))
    namespace = str(alert.get("namespace") or "")
    if started is None or received is None or not namespace:
        return None
    try:
        status = AlertStatus(str(alert.get("status") or "firing"))
    except ValueError:
        return None
    workload = alert.get("workload")
    scope = AlertScope(
        namespace=namespace,
        workload=_ref(workload) if isinstance(workload, dict) else None,
        pod=str(alert["pod"]) if alert.get("pod") else None,
    )
    return IncidentRecord(
        id=str(alert.get("id") or name_of(obj).removeprefix(NAME_PREFIX)),
        alertname=str(alert.get("alertname") or ""),
        scope=scope,
        started=started,
        status=status,
        received=received,
        summary=str(alert.get("summary") or ""),
        labels={str(k): str(v) for k, v in (alert.get("labels") or {}).items()},
        resolved_at=parse_k8s_time(alert.get("endsAt")) if status is AlertStatus.RESOLVED else None,
        state=_state(state),
        name=name_of(obj),
        resource_version=str(meta(obj).get("resourceVersion") or ""),
    )


def _state(doc: Mapping[str, Any]) -> IncidentState:
    raw = doc.get("action")
    action = None
    if isinstance(raw, dict):
        at = parse_k8s_time(raw.get("at"))
        target = raw.get("target")
        if at is not None and isinstance(target, dict):
            action = ActionRecord(
                plan_hash=str(raw.get("planHash") or ""),
                phase=_phase(raw.get("phase")),
                at=at,
                summary=str(raw.get("summary") or ""),
                target=_ref(target),
                unattended=bool(raw.get("unattended")),
                labels={str(k): str(v) for k, v in (raw.get("labels") or {}).items()},
                message=str(raw.get("message") or ""),
            )
    return IncidentState(
        action=action,
        approval_requested=str(doc.get("approvalRequested") or ""),
        notified=tuple(str(n) for n in doc.get("notified") or ()),
        last=str(doc.get("last") or ""),
        last_pass=parse_k8s_time(doc.get("lastPass")),
    )


def _phase(value: Any) -> Phase:
    try:
        return Phase(str(value))
    except ValueError:
        return Phase.STARTED  # unknown: assume it may have acted (the safe reading)


def _ref(doc: Mapping[str, Any]) -> ObjectRef:
    return ObjectRef(
        str(doc.get("kind") or ""), str(doc.get("namespace") or ""), str(doc.get("name") or "")
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


# ---------------------------------------------------------------------------
# The store (I/O)
# ---------------------------------------------------------------------------


class IncidentStore:
    """Incident ConfigMaps in one namespace.

    ``kube`` for the alert's part may be any replica's; state writes take the
    leader's guarded handle (``state_kube``), which re-checks the Lease first.
    """

    def __init__(self, kube: Kube, namespace: str, state_kube: Kube | None = None) -> None:
        self.kube = kube
        self.state_kube = state_kube or kube
        self.namespace = namespace

    def record_alert(self, alert: Alert, scope: AlertScope, now: datetime) -> str:
        """Record a firing alert (once) or a resolution.  One or two round trips.

        Returns ``opened``, ``resolved`` or ``unchanged``.  Alertmanager
        re-sends firing alerts every group interval; those change nothing.
        """
        body = incident_configmap(alert, scope, now, self.namespace)
        try:
            self.kube.create(CONFIGMAP, self.namespace, body)
        except ConflictError:
            pass
        else:
            return "opened" if alert.status is AlertStatus.FIRING else "resolved"
        if alert.status is not AlertStatus.RESOLVED:
            return "unchanged"
        name = body["metadata"]["name"]
        current = parse_incident(self.kube.get(CONFIGMAP, self.namespace, name))
        if current is not None and current.status is AlertStatus.RESOLVED:
            return "unchanged"
        # The alert's part only: the leader's state is another key, left alone.
        patch = {
            "metadata": {"labels": {STATUS_LABEL: AlertStatus.RESOLVED.value}},
            "data": {"alert": body["data"]["alert"]},
        }
        self.kube.patch(CONFIGMAP, self.namespace, name, patch, content_type=MERGE_PATCH)
        return "resolved"

    def list(self) -> list[IncidentRecord]:
        """Every incident on record, oldest first.  One round trip."""
        objects = self.kube.list(CONFIGMAP, self.namespace, selector=f"{INCIDENT_LABEL}=true")
        records = [r for r in map(parse_incident, objects) if r is not None]
        return sorted(records, key=lambda r: (r.received, r.id))

    def get(self, name: str) -> IncidentRecord | None:
        try:
            return parse_incident(self.kube.get(CONFIGMAP, self.namespace, name))
        except NotFoundError:
            return None

    def write_state(self, record: IncidentRecord, state: IncidentState) -> IncidentRecord:
        """Write the leader's part, only if the record is still the one read.

        The record's resourceVersion is the precondition: a ConflictError means
        someone wrote it since (a resolution, another leader); re-read and
        decide again rather than overwrite.
        """
        patch = {
            "metadata": {"resourceVersion": record.resource_version},
            "data": {"state": _dumps(state_document(state))},
        }
        written = self.state_kube.patch(
            CONFIGMAP, self.namespace, record.name, patch, content_type=MERGE_PATCH
        )
        return replace(
            record,
            state=state,
            resource_version=str(meta(written).get("resourceVersion") or ""),
        )

    def delete(self, record: IncidentRecord) -> None:
        # Gone already, or changed since read (decided again next pass): both fine.
        with contextlib.suppress(NotFoundError, ConflictError):
            self.state_kube.delete(
                CONFIGMAP, self.namespace, record.name, precondition_rv=record.resource_version
            )


def is_incident(obj: JSON) -> bool:
    return labels_of(obj).get(INCIDENT_LABEL) == "true"


def recent_actions(records: Sequence[IncidentRecord]) -> list[ActionRecord]:
    """Unattended actions that changed (or may have changed) the cluster.  Pure."""
    return [
        r.state.action
        for r in records
        if r.state.action is not None
        and r.state.action.unattended
        and r.state.action.phase in ACTED
    ]


__all__ = [
    "ACTED",
    "ActionRecord",
    "IncidentRecord",
    "IncidentState",
    "IncidentStore",
    "Phase",
    "alert_document",
    "configmap_name",
    "incident_configmap",
    "is_incident",
    "parse_incident",
    "recent_actions",
    "state_document",
]
