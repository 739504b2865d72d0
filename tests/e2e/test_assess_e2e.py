"""``rollback assess`` against a real API server: the incidents of issue 3, end to end.

Each test plays an incident in its own namespace with real Deployments,
ReplicaSets, pods (played by kwok), ConfigMaps and custom resources, then runs
``rollback assess`` exactly as an engineer would and reads its JSON.

The cluster's clock is real, so a policy shortens "known-good" from 10 minutes
to a few seconds (``knownGoodAfter: 3s``); everything else is the default.
Where kwok cannot play the kubelet's part (a running container that starts to
crash after a config or flag change), the test writes the pod status the
kubelet would write, through the ``pods/status`` subresource.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from controller.cli import main
from tests.cluster import Cluster
from tests.e2e import steps

pytestmark = pytest.mark.e2e

KNOWN_GOOD = 3  # seconds, see the module docstring


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "e2e-policy.yaml"
    path.write_text(
        f"version: 1\nscoring:\n  knownGoodAfter: {KNOWN_GOOD}s\n  closenessHalfLife: 5m\n",
        encoding="utf-8",
    )
    return path


def assess(cluster: Cluster, policy: Path, *args: str) -> Result:
    return CliRunner().invoke(
        main,
        ["assess", "--kubeconfig", cluster.kubeconfig, "--policy", str(policy), *args],
        prog_name="rollback",
        env={"KUBECONFIG": None, "ROLLBACK_NAMESPACE": None},
    )


def assess_json(cluster: Cluster, policy: Path, namespace: str, *args: str) -> dict[str, Any]:
    result = assess(cluster, policy, "-n", namespace, "-o", "json", *args)
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.output)
    return doc


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def settle(seconds: float = KNOWN_GOOD + 1) -> None:
    """Let a healthy revision serve long enough to count as known-good."""
    time.sleep(seconds)


def when_pods_crash(cluster: Cluster, namespace: str, selector: str) -> None:
    """What the kubelet writes when running containers start to crash-loop."""
    from kubernetes import client

    core = client.CoreV1Api(cluster.api())
    stamp = now_text()
    for pod in steps.pods(cluster.api(), namespace, selector):
        container = pod["spec"]["containers"][0]
        status = {
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "False", "lastTransitionTime": stamp,
                     "reason": "ContainersNotReady"},
                    {"type": "ContainersReady", "status": "False", "lastTransitionTime": stamp,
                     "reason": "ContainersNotReady"},
                ],
                "containerStatuses": [{
                    "name": container["name"], "image": container["image"], "imageID": "",
                    "ready": False, "started": False, "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff",
                                          "message": "back-off 40s restarting failed container"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                                 "startedAt": stamp, "finishedAt": stamp}},
                }],
            }
        }  # fmt: skip
        core.patch_namespaced_pod_status(pod["metadata"]["name"], namespace, status)


def bad_rollout(cluster: Cluster, namespace: str, name: str = "web", **manifest: Any) -> None:
    """Given web v1 served a while, When v2 (broken) rolls out and passes its deadline."""
    api = cluster.api()
    steps.given_deployment(
        api, namespace, name, steps.image("v1", name), progress_deadline=6, **manifest
    )
    settle()
    steps.when_image_set(api, namespace, name, steps.image("v2-broken", name))
    steps.wait_deployment_condition(
        api, namespace, name, "Progressing", "False", reason="ProgressDeadlineExceeded"
    )


def codes(reasons: list[dict[str, Any]]) -> list[str]:
    return [r["code"] for r in reasons]


# ---------------------------------------------------------------------------
# The incidents
# ---------------------------------------------------------------------------


@pytest.mark.kwok
def test_bad_image_rollout_recommends_rolling_back_to_the_healthy_revision(
    cluster: Cluster, namespace: str, policy: Path
) -> None:
    bad_rollout(cluster, namespace)

    doc = assess_json(cluster, policy, namespace, "--incident-start", "now")

    assert doc["classification"] == "software"
    top = doc["suspects"][0]
    assert (top["kind"], top["target"]["name"], top["revision"]) == ("deploy", "web", 2)
    rec = doc["recommendation"]
    assert (rec["action"], rec["target"]["name"], rec["toRevision"]) == ("rollback", "web", 1)
    assert rec["safety"] == "safe", rec["reasons"]
    assert "target.known-good" in codes(rec["reasons"])
    assert doc["apiRequests"] <= 15


@pytest.mark.kwok
def test_configmap_change_makes_the_configmap_the_top_suspect(
    cluster: Cluster, namespace: str, policy: Path
) -> None:
    api = cluster.api()
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "api-config"},
        "data": {"POOL_SIZE": "20"},
    }
    steps.apply(cluster, namespace, config)
    manifest = steps.deployment_manifest("api", steps.image("v1", "api"))
    manifest["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
        {"configMapRef": {"name": "api-config"}}
    ]
    steps.apply(cluster, namespace, manifest)
    steps.wait_rollout_complete(api, namespace, "api")
    settle()
    # When someone edits the ConfigMap and the pods start crashing
    steps.kubectl(
        cluster, "-n", namespace, "patch", "configmap", "api-config", "--type=merge",
        "-p", '{"data":{"POOL_SIZE":"500"}}',
    )  # fmt: skip
    when_pods_crash(cluster, namespace, "app=api")

    doc = assess_json(cluster, policy, namespace, "--incident-start", "now")

    top = doc["suspects"][0]
    assert (top["kind"], top["target"]) == (
        "config",
        {"kind": "ConfigMap", "namespace": namespace, "name": "api-config"},
    )
    assert any("kubectl-patch" in e for e in top["evidence"])
    assert doc["classification"] == "software"
    # No prior content is recorded anywhere, so no revert is offered blindly.
    assert doc["recommendation"]["action"] != "revert-config"


@pytest.mark.kwok
def test_flag_flip_recommends_disabling_the_flag(
    cluster: Cluster, namespace: str, policy: Path
) -> None:
    api = cluster.api()
    steps.apply_crd(cluster, "openfeature.yaml")
    flags = {
        "apiVersion": "core.openfeature.dev/v1beta1",
        "kind": "FeatureFlag",
        "metadata": {"name": "shop-flags"},
        "spec": {"flagSpec": {"flags": {
            "new-checkout": {"state": "ENABLED", "variants": {"on": True, "off": False},
                             "defaultVariant": "off"},
            "dark-mode": {"state": "ENABLED", "variants": {"on": True, "off": False},
                          "defaultVariant": "on"},
        }}},
    }  # fmt: skip
    source = {
        "apiVersion": "core.openfeature.dev/v1beta1",
        "kind": "FeatureFlagSource",
        "metadata": {"name": "flag-source"},
        "spec": {"sources": [{"source": f"{namespace}/shop-flags", "provider": "kubernetes"}]},
    }
    steps.apply(cluster, namespace, flags, source)
    steps.given_deployment(
        api, namespace, "storefront", steps.image("v1", "storefront"),
        pod_annotations={"openfeature.dev/enabled": "true",
                         "openfeature.dev/featureflagsource": "flag-source"},
    )  # fmt: skip
    settle()
    steps.kubectl(
        cluster, "-n", namespace, "patch", "featureflag", "shop-flags", "--type=merge",
        "-p", '{"spec":{"flagSpec":{"flags":{"new-checkout":{"defaultVariant":"on"}}}}}',
    )  # fmt: skip
    when_pods_crash(cluster, namespace, "app=storefront")

    doc = assess_json(cluster, policy, namespace, "--incident-start", "now")

    top = doc["suspects"][0]
    assert (top["kind"], top["target"]["kind"], top["target"]["name"], top["flag"]) == (
        "flag",
        "FeatureFlag",
        "shop-flags",
        "new-checkout",
    )
    rec = doc["recommendation"]
    assert (rec["action"], rec["flag"], rec["target"]["name"]) == (
        "disable-flag",
        "new-checkout",
        "shop-flags",
    )


@pytest.mark.kwok
def test_a_migration_job_between_revisions_makes_the_rollback_not_safe(
    cluster: Cluster, namespace: str, policy: Path
) -> None:
    api = cluster.api()
    steps.given_deployment(api, namespace, "web", steps.image("v1"), progress_deadline=6)
    settle()
    # When a schema migration runs for v2, then v2 rolls out broken
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "web-db-migrate-v2"},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "migrate", "image": steps.image("v2"),
                            "command": ["./manage", "migrate"]}],
        }}},
    }  # fmt: skip
    steps.apply(cluster, namespace, job)
    steps.wait_for(
        lambda: steps.kubectl(
            cluster, "-n", namespace, "get", "job", "web-db-migrate-v2",
            "-o", "jsonpath={.status.succeeded}",
        ).stdout == "1",
        what="the migration Job to succeed",
    )  # fmt: skip
    time.sleep(1.1)  # the rollout begins strictly after the migration finished
    steps.when_image_set(api, namespace, "web", steps.image("v2-broken"))
    steps.wait_deployment_condition(
        api, namespace, "web", "Progressing", "False", reason="ProgressDeadlineExceeded"
    )

    doc = assess_json(cluster, policy, namespace, "--incident-start", "now")

    migrations = [c for c in doc["changes"] if c["kind"] == "migration"]
    assert [m["target"]["name"] for m in migrations] == ["web-db-migrate-v2"]
    assert migrations[0]["affects"] == [
        {"kind": "Deployment", "namespace": namespace, "name": "web"}
    ]
    rec = doc["recommendation"]
    assert rec["safety"] in ("risky", "unsafe"), rec
    assert "migration.since-target" in codes(rec["reasons"])


@pytest.mark.kwok
def test_a_notready_node_is_infrastructure_and_no_rollback_is_advised(
    cluster: Cluster,
    namespace: str,
    policy: Path,
    kwok_node: Callable[..., dict[str, Any]],
) -> None:
    api = cluster.api()
    node = f"{namespace}-node"
    kwok_node(node, labels={"rollback.test/pool": namespace})
    steps.given_deployment(
        api, namespace, "web", steps.image("v1"),
    )  # fmt: skip
    pinned = {"spec": {"template": {"spec": {"nodeSelector": {"rollback.test/pool": namespace}}}}}
    steps.kubectl(cluster, "-n", namespace, "patch", "deployment", "web", "-p", json.dumps(pinned))
    steps.wait_rollout_complete(api, namespace, "web")
    settle()
    # When the node the workload runs on stops reporting
    steps.when_node_state(api, node, "NotReady")
    steps.wait_for(
        lambda: any(
            c["type"] == "Ready" and c["status"] != "True"
            for c in steps.to_dict(
                api, __import__("kubernetes").client.CoreV1Api(api).read_node(node)
            )["status"]["conditions"]
        ),
        what=f"node {node} NotReady",
    )

    doc = assess_json(cluster, policy, namespace, "--incident-start", "now", "--lookback", "2s")

    assert doc["classification"] == "infrastructure", doc["triage"]["reasons"]
    infra = next(b for b in doc["triage"]["blocks"] if b["block"] == "infrastructure")
    assert infra["hit"]
    assert any(
        s["kind"] == "node-not-ready" and s["target"]["name"] == node for s in infra["signals"]
    )
    assert doc["recommendation"]["action"] not in ("rollback", "revert-config", "disable-flag")


@pytest.mark.kwok
def test_an_argo_cd_application_with_self_heal_is_flagged(
    cluster: Cluster, namespace: str, policy: Path
) -> None:
    steps.apply_crd(cluster, "argocd.yaml")
    app = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "shop"},
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://git.example/shop.git", "path": "deploy"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
    }
    steps.apply(cluster, namespace, app)
    bad_rollout(
        cluster,
        namespace,
        annotations={
            "argocd.argoproj.io/tracking-id": f"{namespace}_shop:apps/Deployment:{namespace}/web"
        },
    )

    doc = assess_json(cluster, policy, namespace, "--incident-start", "now")

    rec = doc["recommendation"]
    assert rec["target"]["name"] == "web"
    assert "gitops.self-heal" in codes(rec["reasons"]), rec["reasons"]
    assert rec["safety"] != "safe"


@pytest.mark.kwok
def test_assess_on_a_snapshot_equals_assess_on_the_cluster_at_that_time(
    cluster: Cluster, namespace: str, policy: Path, tmp_path: Path
) -> None:
    bad_rollout(cluster, namespace)
    start = now_text()
    time.sleep(1)

    live = assess_json(cluster, policy, namespace, "--incident-start", start)
    snap = tmp_path / "incident.yaml"
    taken = CliRunner().invoke(
        main,
        ["snapshot", "--kubeconfig", cluster.kubeconfig, "-n", namespace, "-o", str(snap)],
        prog_name="rollback",
    )
    assert taken.exit_code == 0, taken.output
    replay = CliRunner().invoke(
        main,
        ["assess", "--snapshot", str(snap), "--now", live["incident"]["evaluatedAt"],
         "--policy", str(policy), "--incident-start", start, "-o", "json"],
        prog_name="rollback",
    )  # fmt: skip
    assert replay.exit_code == 0, replay.output
    offline = json.loads(replay.output)

    for key in ("source", "apiRequests"):
        live.pop(key)
        offline.pop(key)
    assert offline == live


# ---------------------------------------------------------------------------
# Permissions and budget
# ---------------------------------------------------------------------------


def _grant(cluster: Cluster, namespace: str, name: str, resources: dict[str, list[str]]) -> None:
    rules = [
        {"apiGroups": [group], "resources": kinds, "verbs": ["get", "list"]}
        for group, kinds in resources.items()
    ]
    steps.apply(
        cluster,
        namespace,
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": name}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]},
    )  # fmt: skip


def test_optional_kinds_rbac_forbids_are_reported_and_skipped(
    cluster: Cluster, namespace: str, policy: Path, tmp_path: Path
) -> None:
    steps.given_deployment(cluster.api(), namespace, "web", steps.image("v1"))
    _grant(cluster, namespace, "reader", {"apps": ["deployments", "replicasets"], "": ["pods"]})
    kubeconfig = steps.service_account_kubeconfig(cluster, namespace, "reader", tmp_path / "kc")

    result = CliRunner().invoke(
        main,
        ["assess", "--kubeconfig", str(kubeconfig), "-o", "json", "--policy", str(policy)],
        prog_name="rollback",
        env={"KUBECONFIG": None, "ROLLBACK_NAMESPACE": None},
    )

    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["scope"]["namespaces"] == [namespace]  # the context's namespace
    assert doc["unavailable"]["Secret"] == "forbidden (needs list secrets)"
    assert doc["unavailable"]["Node"] == "forbidden (needs list nodes)"


def test_a_forbidden_core_kind_is_exit_3_naming_the_permission(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    _grant(cluster, namespace, "nopods", {"apps": ["deployments", "replicasets"]})
    kubeconfig = steps.service_account_kubeconfig(cluster, namespace, "nopods", tmp_path / "kc")

    result = CliRunner().invoke(
        main,
        ["assess", "--kubeconfig", str(kubeconfig)],
        prog_name="rollback",
        env={"KUBECONFIG": None, "ROLLBACK_NAMESPACE": None},
    )

    assert result.exit_code == 3
    assert result.output.count("\n") == 1
    assert result.output.startswith("error: forbidden: pods is forbidden: ")
    assert 'cannot list resource "pods"' in result.output
    assert "Traceback" not in result.output


def test_an_unknown_workload_is_one_line_and_exit_2(
    cluster: Cluster, namespace: str, policy: Path
) -> None:
    result = assess(cluster, policy, "-n", namespace, "--workload", "deployment/ghost")

    assert (result.exit_code, result.output) == (
        2,
        f"error: no deployment/ghost in namespace {namespace}\n",
    )


@pytest.mark.kwok
def test_a_statefulset_rollout_is_read_from_its_controller_revisions(
    cluster: Cluster, namespace: str, policy: Path
) -> None:
    api = cluster.api()
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 2,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": steps.image("v1", "db")}],
                         "terminationGracePeriodSeconds": 0},
            },
        },
    }  # fmt: skip
    steps.apply(cluster, namespace, sts)
    steps.wait_for(
        lambda: len(steps.ready_pods(api, namespace, "app=db")) == 2, what="db pods Ready"
    )
    settle()
    # When v2 (broken) rolls out: the controller replaces db-1 first and waits for it
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "db", "image": steps.image("v2-broken", "db")}
    ]}}}}  # fmt: skip
    steps.kubectl(
        cluster, "-n", namespace, "patch", "statefulset", "db", "--type=strategic",
        "-p", json.dumps(patch),
    )  # fmt: skip
    steps.wait_for(
        lambda: any(
            p["spec"]["containers"][0]["image"].endswith("v2-broken")
            for p in steps.pods(api, namespace, "app=db")
        ),
        what="a v2 pod",
    )
    steps.wait_for(
        lambda: steps.events(api, namespace, "Unhealthy"), what="the readiness probe to fail"
    )

    doc = assess_json(cluster, policy, namespace, "--incident-start", "now")

    top = doc["suspects"][0]
    assert (top["kind"], top["target"], top["revision"], top["previousRevision"]) == (
        "deploy",
        {"kind": "StatefulSet", "namespace": namespace, "name": "db"},
        2,
        1,
    )
    assert top["after"] == f"revision 2: {steps.image('v2-broken', 'db')}"
    rec = doc["recommendation"]
    assert (rec["action"], rec["target"]["kind"], rec["toRevision"]) == (
        "rollback",
        "StatefulSet",
        1,
    ), rec
    assert doc["apiRequests"] <= 15
