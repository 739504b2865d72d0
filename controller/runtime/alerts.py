"""Alertmanager webhook payloads in, alerts with a scope out: the hint that opens an incident.

The controller reconciles by level, not by event: an alert only says *where*
to look (a namespace, maybe a workload) and *since when* (``startsAt``, the
incident start).  Everything else is read fresh from the cluster on every
pass.  This module is pure: bytes in, values or one-line errors out.

Payload (Alertmanager webhook, ``version: "4"``)::

    {"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "...", "namespace": "shop",
         "deployment": "web"}, "annotations": {...}, "startsAt": "2026-...Z",
         "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "c1a2..."}]}

Scope, from the alert's labels (first match wins):

* namespace: ``rollback.io/namespace``, ``exported_namespace`` (kube-state-metrics
  scraped without ``honor_labels``: ``namespace`` is then the exporter's own),
  ``namespace``;
* workload: ``rollback.io/workload: deployment/web``, or kube-state-metrics'
  ``deployment``, ``statefulset``, ``daemonset``; a ``pod`` label is kept and
  resolved to its owner when the cluster is read.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from controller.errors import UserInputError
from controller.model import ObjectRef, WorkloadKind

MAX_ALERTS: Final = 1000
NAMESPACE_LABELS: Final = ("rollback.io/namespace", "exported_namespace", "namespace")
WORKLOAD_LABEL: Final = "rollback.io/workload"
# kube-state-metrics label -> workload kind.
KSM_WORKLOAD_LABELS: Final = (
    ("deployment", "Deployment"),
    ("statefulset", "StatefulSet"),
    ("daemonset", "DaemonSet"),
)
POD_LABELS: Final = ("exported_pod", "pod")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_HEX = re.compile(r"^[0-9a-f]{8,64}$")
# Alertmanager writes Go's zero time for "not ended".
_GO_ZERO_YEAR: Final = 1


class PayloadError(UserInputError):
    """The webhook body is not an Alertmanager payload; the message is one line (HTTP 400)."""


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Alert:
    """One alert as Alertmanager sent it."""

    status: AlertStatus
    labels: Mapping[str, str]
    starts_at: datetime
    annotations: Mapping[str, str] = field(default_factory=dict)
    ends_at: datetime | None = None
    fingerprint: str = ""
    generator_url: str = ""

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def key(self) -> str:
        """16 hex digits naming the alert: Alertmanager's fingerprint, else a hash of the labels."""
        if _HEX.match(self.fingerprint):
            return self.fingerprint[:16].rjust(16, "0")
        canonical = json.dumps(dict(sorted(self.labels.items())), separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def incident_id(self) -> str:
        """The incident this alert opens: one per alert and start (a re-fire is a new one)."""
        return f"{self.key}-{int(self.starts_at.timestamp())}"


@dataclass(frozen=True)
class AlertScope:
    """Where an alert points: a namespace, and a workload or pod when its labels name one."""

    namespace: str
    workload: ObjectRef | None = None
    pod: str | None = None


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------


def parse_webhook(body: bytes) -> tuple[Alert, ...]:
    """The alerts of an Alertmanager webhook body.  Pure.

    Raises PayloadError naming the first problem with its path
    (``alerts[2].startsAt: ...``): a sender that gets 400 must be told why
    in one line.
    """
    try:
        document = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise PayloadError("payload: not UTF-8 text") from None
    except ValueError as err:
        raise PayloadError(f"payload: not JSON ({_first_line(str(err))})") from None
    if not isinstance(document, dict):
        raise PayloadError(f"payload: expected a JSON object, got {_type(document)}")
    version = document.get("version")
    if version is not None and str(version) != "4":
        raise PayloadError(
            f'version: expected "4" (Alertmanager webhook payload), got {json.dumps(version)}'
        )
    group_status = document.get("status", AlertStatus.FIRING.value)
    alerts = document.get("alerts")
    if alerts is None:
        raise PayloadError("alerts: missing (an Alertmanager webhook payload lists its alerts)")
    if not isinstance(alerts, list):
        raise PayloadError(f"alerts: expected a list, got {_type(alerts)}")
    if len(alerts) > MAX_ALERTS:
        raise PayloadError(f"alerts: {len(alerts)} alerts in one payload; at most {MAX_ALERTS}")
    return tuple(_alert(item, f"alerts[{i}]", group_status) for i, item in enumerate(alerts))


def _alert(item: Any, path: str, group_status: Any) -> Alert:
    if not isinstance(item, dict):
        raise PayloadError(f"{path}: expected an object, got {_type(item)}")
    status_text = item.get("status", group_status)
    try:
        status = AlertStatus(str(status_text))
    except ValueError:
        raise PayloadError(
            f'{path}.status: expected "firing" or "resolved", got {json.dumps(status_text)}'
        ) from None
    labels = _strings(item.get("labels"), f"{path}.labels", required=True)
    annotations = _strings(item.get("annotations"), f"{path}.annotations", required=False)
    starts_at = _time(item.get("startsAt"), f"{path}.startsAt", required=True)
    assert starts_at is not None
    ends_at = _time(item.get("endsAt"), f"{path}.endsAt", required=False)
    fingerprint = item.get("fingerprint", "")
    if not isinstance(fingerprint, str):
        raise PayloadError(f"{path}.fingerprint: expected a string, got {_type(fingerprint)}")
    url = item.get("generatorURL", "")
    return Alert(
        status=status,
        labels=labels,
        starts_at=starts_at,
        annotations=annotations,
        ends_at=ends_at,
        fingerprint=fingerprint.strip().lower(),
        generator_url=url if isinstance(url, str) else "",
    )


def _strings(value: Any, path: str, *, required: bool) -> dict[str, str]:
    if value is None:
        if required:
            raise PayloadError(f"{path}: missing")
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{path}: expected an object of strings, got {_type(value)}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise PayloadError(f"{path}.{key}: expected a string, got {_type(item)}")
    return dict(value)


def _time(value: Any, path: str, *, required: bool) -> datetime | None:
    if value is None or value == "":
        if required:
            raise PayloadError(f"{path}: missing")
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{path}: expected an RFC 3339 time, got {_type(value)}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise PayloadError(f"{path}: not an RFC 3339 time: {json.dumps(value)[:80]}") from None
    if parsed.tzinfo is None:
        raise PayloadError(f"{path}: {json.dumps(value)} has no timezone (Z or +01:00)")
    if parsed.year == _GO_ZERO_YEAR:
        if required:
            raise PayloadError(f"{path}: the zero time is not a start")
        return None
    return parsed.astimezone(UTC)


def _type(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _first_line(text: str) -> str:
    return " ".join(text.split())[:120]


# ---------------------------------------------------------------------------
# Scope
# ---------------------------------------------------------------------------


def scope_of(alert: Alert) -> AlertScope | str:
    """Where ``alert`` points, or why it points nowhere we can look (a sentence).  Pure."""
    labels = alert.labels
    namespace = next((labels[k] for k in NAMESPACE_LABELS if labels.get(k)), "")
    if not namespace:
        return "no namespace label (rollback.io/namespace, exported_namespace or namespace)"
    if not _DNS_LABEL.match(namespace):
        return f"namespace label {namespace!r} is not a namespace name"
    workload: ObjectRef | None = None
    named = labels.get(WORKLOAD_LABEL, "").strip()
    if named:
        kind_text, sep, name = named.partition("/")
        parsed = WorkloadKind.parse(kind_text)
        if not sep or parsed is None or not _DNS_SUBDOMAIN.match(name.strip()):
            return (
                f"{WORKLOAD_LABEL} {named!r}: use KIND/NAME with deployment, statefulset or "
                "daemonset, e.g. deployment/web"
            )
        workload = ObjectRef(parsed.value, namespace, name.strip())
    else:
        for label, kind in KSM_WORKLOAD_LABELS:
            value = labels.get(label, "").strip()
            if value and _DNS_SUBDOMAIN.match(value):
                workload = ObjectRef(kind, namespace, value)
                break
    pod = next((labels[k].strip() for k in POD_LABELS if labels.get(k, "").strip()), None)
    if pod is not None and not _DNS_SUBDOMAIN.match(pod):
        pod = None
    return AlertScope(namespace=namespace, workload=workload, pod=pod)


def summary_of(alert: Alert) -> str:
    """One line for people: the alert's summary or description annotation, else its name."""
    for key in ("summary", "description", "message"):
        text = alert.annotations.get(key, "").strip()
        if text:
            return _first_line(text)[:200]
    return alert.name or "an alert"


__all__ = [
    "Alert",
    "AlertScope",
    "AlertStatus",
    "PayloadError",
    "parse_webhook",
    "scope_of",
    "summary_of",
]
