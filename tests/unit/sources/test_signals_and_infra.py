"""Signals (what hurts now) and infrastructure changes, on captured and real-shaped objects."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from controller.model import Block, ChangeKind, ObjectRef, SignalKind
from controller.sources.infra import collect_infra_changes
from controller.sources.pods import pod_problems
from controller.sources.signals import collect_signals
from controller.view import ClusterView

from .builders import NOW, at, captured, captured_all, deployment, pod, replicaset, template

CAPTURED_AT = datetime(2026, 12, 3, 10, 20, tzinfo=UTC)
DAY_BEFORE = CAPTURED_AT - timedelta(days=1)


def view_of(*objects: dict, now: datetime = CAPTURED_AT) -> ClusterView:
    view = ClusterView(captured_at=now)
    view.extend(objects)
    return view


def kinds(signals: list) -> list[tuple[str, str, str]]:
    return sorted((s.kind.value, s.block.value, str(s.target)) for s in signals)


class TestSignalsOnCapturedIncidents:
    def test_a_stalled_bad_rollout(self) -> None:
        view = view_of(*captured_all("bad-image-rollout"))

        signals = collect_signals(view, DAY_BEFORE, CAPTURED_AT)

        assert kinds(signals) == [
            ("not-ready", "application", "Deployment/shop/web"),
            ("rollout-stalled", "application", "Deployment/shop/web"),
        ]
        not_ready = next(s for s in signals if s.kind is SignalKind.NOT_READY)
        assert (not_ready.workload, not_ready.revision, not_ready.count) == (
            ObjectRef("Deployment", "shop", "web"),
            3,
            1,
        )
        assert not_ready.message == "1 pod of deployment/web (revision 3) not Ready (NotReady)"

    def test_crash_looping_pods_and_the_service_they_leave_without_endpoints(self) -> None:
        view = view_of(*captured_all("configmap-change"))

        signals = collect_signals(view, DAY_BEFORE, CAPTURED_AT)

        assert kinds(signals) == [
            ("crash-loop", "resources", "Deployment/payments/api"),
            ("no-ready-endpoints", "dependencies", "Service/payments/api"),
            ("unavailable", "application", "Deployment/payments/api"),
        ]
        crash = next(s for s in signals if s.kind is SignalKind.CRASH_LOOP)
        assert crash.message == (
            "3 pods of deployment/api (revision 1) crash-looping (CrashLoopBackOff)"
        )
        service = next(s for s in signals if s.kind is SignalKind.NO_READY_ENDPOINTS)
        assert service.workload == ObjectRef("Deployment", "payments", "api")
        assert service.message == "Service api has no ready endpoints (EndpointSlices list 0)"

    def test_without_endpointslices_ready_pods_behind_the_selector_count(self) -> None:
        objects = [o for o in captured_all("configmap-change") if o["kind"] != "EndpointSlice"]

        signals = collect_signals(view_of(*objects), DAY_BEFORE, CAPTURED_AT)

        (service,) = [s for s in signals if s.kind is SignalKind.NO_READY_ENDPOINTS]
        assert service.message == (
            "Service api has no ready endpoints (Ready pods matching its selector 0)"
        )


class TestNodesQuotasEvents:
    def test_a_notready_node_and_memory_pressure_are_infrastructure(self) -> None:
        node = captured("bad-image-rollout", "Node")
        for cond in node["status"]["conditions"]:
            if cond["type"] == "Ready":
                cond.update(status="Unknown", reason="NodeStatusUnknown",
                            lastTransitionTime="2026-12-03T10:10:00Z")  # fmt: skip
            if cond["type"] == "MemoryPressure":
                cond.update(status="True", lastTransitionTime="2026-12-03T10:09:00Z")

        signals = collect_signals(view_of(node), DAY_BEFORE, CAPTURED_AT)
        changes = collect_infra_changes(view_of(node), DAY_BEFORE, CAPTURED_AT)

        assert kinds(signals) == [
            ("node-not-ready", "infrastructure", "Node/kwok-node-0"),
            ("node-pressure", "infrastructure", "Node/kwok-node-0"),
        ]
        assert [(c.summary, c.at, c.cluster_wide) for c in changes if c.at.hour == 10] == [
            ("node kwok-node-0 became NotReady (NodeStatusUnknown)",
             datetime(2026, 12, 3, 10, 10, tzinfo=UTC), True),
            ("node kwok-node-0 reports MemoryPressure",
             datetime(2026, 12, 3, 10, 9, tzinfo=UTC), True),
        ]  # fmt: skip

    def test_a_node_joining_is_a_change_and_its_first_conditions_are_not(self) -> None:
        node = captured("bad-image-rollout", "Node")

        changes = collect_infra_changes(view_of(node), DAY_BEFORE, CAPTURED_AT)

        assert [(c.kind, c.summary) for c in changes] == [
            (ChangeKind.INFRA, "node kwok-node-0 joined the cluster")
        ]

    def test_an_exhausted_quota_and_quota_events(self) -> None:
        quota = {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "compute", "namespace": "shop",
                         "creationTimestamp": "2026-12-03T09:00:00Z"},
            "spec": {"hard": {"pods": "4", "requests.memory": "1Gi"}},
            "status": {"hard": {"pods": "4", "requests.memory": "1Gi"},
                       "used": {"pods": "4", "requests.memory": "512Mi"}},
        }  # fmt: skip
        rs = captured("bad-image-rollout", "ReplicaSet")
        failed = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "q1", "namespace": "shop"},
            "involvedObject": {"kind": "ReplicaSet", "name": rs["metadata"]["name"],
                               "namespace": "shop"},
            "reason": "FailedCreate",
            "message": 'pods "x" is forbidden: exceeded quota: compute, requested: pods=1, '
                       "used: pods=4, limited: pods=4",
            "type": "Warning",
            "count": 7,
            "lastTimestamp": "2026-12-03T10:15:00Z",
        }  # fmt: skip
        deploy = captured(
            "bad-image-rollout", "Deployment", rs["metadata"]["ownerReferences"][0]["name"]
        )

        signals = collect_signals(view_of(quota, failed, rs, deploy), DAY_BEFORE, CAPTURED_AT)

        quota_signals = [s for s in signals if s.kind is SignalKind.QUOTA_EXCEEDED]
        assert [(s.block, s.message) for s in quota_signals] == [
            (Block.RESOURCES, "ResourceQuota compute is exhausted: pods 4/4"),
            (Block.RESOURCES,
             f"7x FailedCreate on deployment/{deploy['metadata']['name']}: "
             'pods "x" is forbidden: exceeded quota: compute, requested: pods=1, used: '
             "pods=4, limited: pods=4"),
        ]  # fmt: skip

    def test_events_of_the_v1_events_api_count_too_and_old_ones_do_not(self) -> None:
        new_style = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": "e1", "namespace": "shop"},
            "regarding": {"kind": "Service", "name": "web", "namespace": "shop"},
            "reason": "SyncLoadBalancerFailed",
            "note": "Error syncing load balancer",
            "type": "Warning",
            "eventTime": "2026-12-03T10:10:00.000000Z",
            "series": {"count": 3, "lastObservedTime": "2026-12-03T10:12:00.000000Z"},
        }
        stale = copy.deepcopy(new_style)
        stale["metadata"]["name"] = "e0"
        stale["series"]["lastObservedTime"] = "2026-12-01T10:12:00.000000Z"
        stale["eventTime"] = "2026-12-01T10:10:00.000000Z"

        signals = collect_signals(view_of(new_style, stale), DAY_BEFORE, CAPTURED_AT)

        assert [(s.kind, s.count, s.message) for s in signals] == [
            (SignalKind.WARNING_EVENT, 3,
             "3x SyncLoadBalancerFailed on service/web: Error syncing load balancer"),
        ]  # fmt: skip


CRASH, PULL, OOM, UNREADY = (
    SignalKind.CRASH_LOOP,
    SignalKind.IMAGE_PULL,
    SignalKind.OOM_KILLED,
    SignalKind.NOT_READY,
)
POD_CASES = [
    pytest.param(
        {"waiting": "CrashLoopBackOff", "restarts": 5},
        [(CRASH, "CrashLoopBackOff")],
        id="crash loop",
    ),
    pytest.param({"waiting": "ImagePullBackOff"}, [(PULL, "ImagePullBackOff")], id="image pull"),
    pytest.param(
        {"waiting": "CreateContainerConfigError"},
        [(UNREADY, "CreateContainerConfigError")],
        id="missing config key",
    ),
    pytest.param(
        {"last_terminated": "OOMKilled", "restarts": 2}, [(OOM, "OOMKilled")], id="recent OOM"
    ),
    pytest.param({"ready": False, "ready_since": 5}, [(UNREADY, "NotReady")], id="unready 5m"),
    pytest.param({"ready": False, "ready_since": 0.5}, [], id="unready 30s: warming up"),
    pytest.param({}, [], id="healthy"),
    pytest.param({"phase": "Succeeded", "ready": False}, [], id="a finished Job pod"),
]


@pytest.mark.parametrize(("kw", "expected"), POD_CASES)
def test_pod_problems(kw: dict, expected: list) -> None:
    tmpl = template("web:1")
    deploy = deployment("web", tmpl=tmpl, revision=1)
    rs = replicaset(deploy, tmpl, revision=1, created=60, replicas=1)
    subject = pod(rs, "abcde", created=30, **kw)

    assert [(p.kind, p.reason) for p in pod_problems(subject, NOW)] == expected


def test_an_unschedulable_pod_is_a_resources_signal() -> None:
    tmpl = template("web:1")
    deploy = deployment("web", tmpl=tmpl, revision=1)
    rs = replicaset(deploy, tmpl, revision=1, created=60, replicas=1)
    pending = pod(rs, "abcde", created=10, ready=False, phase="Pending")
    pending["status"] = {
        "phase": "Pending",
        "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "lastTransitionTime": at(10),
            "message": "0/3 nodes are available: 3 Insufficient memory.",
        }],
    }  # fmt: skip

    (signal,) = collect_signals(view_of(deploy, rs, pending, now=NOW), NOW - timedelta(days=1), NOW)

    assert (signal.kind, signal.block, signal.workload) == (
        SignalKind.UNSCHEDULABLE,
        Block.RESOURCES,
        ObjectRef("Deployment", "shop", "web"),
    )


def test_events_about_pods_that_recovered_are_history_and_about_gone_pods_are_kept() -> None:
    tmpl = template("web:1")
    deploy = deployment("web", tmpl=tmpl, revision=1)
    rs = replicaset(deploy, tmpl, revision=1, created=60, replicas=1)
    running = pod(rs, "aaaaa", created=30)
    gone = pod(rs, "bbbbb", created=30)  # deleted since: only its events are left
    waited = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "w1", "namespace": "shop"},
        "involvedObject": {"kind": "Pod", "name": running["metadata"]["name"], "namespace": "shop"},
        "reason": "FailedScheduling",
        "message": "0/1 nodes are available: 1 Too many pods.",
        "type": "Warning",
        "lastTimestamp": at(20),
    }
    crashed = dict(
        waited,
        metadata={"name": "w2", "namespace": "shop"},
        involvedObject={"kind": "Pod", "name": gone["metadata"]["name"], "namespace": "shop"},
        reason="BackOff",
        message="Back-off restarting failed container web",
    )

    signals = collect_signals(
        view_of(deploy, rs, running, waited, crashed, now=NOW), NOW - timedelta(hours=1), NOW
    )

    assert [(s.kind, s.workload) for s in signals] == [
        (SignalKind.CRASH_LOOP, ObjectRef("Deployment", "shop", "web"))
    ]
