"""The test cluster itself: what the fake kubelets (kwok stages) and the harness promise.

Other e2e tests rely on these behaviours; if one of them breaks, start here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.cluster import Cluster
from tests.e2e.steps import (
    apply_crd,
    condition,
    events,
    given_deployment,
    image,
    kubectl,
    pod_ready,
    pods,
    service_account_kubeconfig,
    to_dict,
    wait_for,
    when_node_state,
)

pytestmark = pytest.mark.e2e


def _running_unready(api: client.ApiClient, namespace: str, selector: str) -> list[dict]:
    found = pods(api, namespace, selector)
    return [p for p in found if p["status"].get("phase") == "Running" and not pod_ready(p)]


@pytest.mark.kwok
def test_a_pod_whose_image_tag_says_broken_runs_but_never_becomes_ready(
    cluster: Cluster, namespace: str
) -> None:
    api = cluster.api()
    given_deployment(api, namespace, "web", image("v4-broken"), replicas=1, wait=False)
    given_deployment(
        api, namespace, "api", image("v1", "api"), replicas=1, wait=False,
        pod_labels={"rollback.test/broken": "true"},
    )  # fmt: skip

    broken = wait_for(lambda: len(_running_unready(api, namespace, "app in (web,api)")) == 2)
    assert broken
    for pod in pods(api, namespace, "app in (web,api)"):
        ready = condition(pod, "Ready")
        assert ready is not None and ready["reason"] == "ContainersNotReady"
        (status,) = pod["status"]["containerStatuses"]
        assert status["ready"] is False and "running" in status["state"]
        assert pod["spec"]["nodeName"].startswith("kwok-node-")  # placed by kube-scheduler
    unhealthy = wait_for(lambda: events(api, namespace, "Unhealthy"))
    assert unhealthy[0]["type"] == "Warning"


@pytest.mark.kwok
def test_a_pod_whose_image_tag_says_crashloop_is_in_crashloopbackoff(
    cluster: Cluster, namespace: str
) -> None:
    api = cluster.api()
    given_deployment(api, namespace, "web", image("v5-crashloop"), replicas=1, wait=False)

    (pod,) = wait_for(lambda: _running_unready(api, namespace, "app=web"))
    (status,) = pod["status"]["containerStatuses"]
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["restartCount"] > 0
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert wait_for(lambda: events(api, namespace, "BackOff"))


@pytest.mark.kwok
def test_jobs_complete_when_healthy_and_fail_when_crashing(
    cluster: Cluster, namespace: str
) -> None:
    api = cluster.api()
    batch = client.BatchV1Api(api)

    def job(name: str, tag: str) -> dict:
        container = {"name": "migrate", "image": image(tag, "migrate")}
        pod = {"spec": {"restartPolicy": "Never", "containers": [container]}}
        return {"metadata": {"name": name}, "spec": {"backoffLimit": 0, "template": pod}}

    batch.create_namespaced_job(namespace, job("ok", "v1"))
    batch.create_namespaced_job(namespace, job("bad", "v1-crashloop"))

    def finished(name: str, type_: str) -> bool:
        found = condition(to_dict(api, batch.read_namespaced_job(name, namespace)), type_)
        return bool(found and found["status"] == "True")

    wait_for(lambda: finished("ok", "Complete"), what="job ok Complete")
    wait_for(lambda: finished("bad", "Failed"), what="job bad Failed")


@pytest.mark.kwok
def test_a_labelled_node_goes_notready_and_recovers(cluster: Cluster, kwok_node) -> None:
    api = cluster.api()
    core = client.CoreV1Api(api)
    kwok_node("broken-node")

    def ready_status() -> str:
        found = condition(to_dict(api, core.read_node("broken-node")), "Ready")
        return found["status"] if found else ""

    when_node_state(api, "broken-node", "NotReady")
    wait_for(lambda: ready_status() == "False", timeout=15, what="node NotReady")
    ready = condition(to_dict(api, core.read_node("broken-node")), "Ready")
    assert ready is not None and ready["reason"] == "KubeletNotReady"

    when_node_state(api, "broken-node", "MemoryPressure")
    wait_for(lambda: ready_status() == "True", timeout=15, what="node Ready again")
    pressure = condition(to_dict(api, core.read_node("broken-node")), "MemoryPressure")
    assert pressure is not None and pressure["status"] == "True"

    when_node_state(api, "broken-node", None)
    wait_for(
        lambda: (
            condition(to_dict(api, core.read_node("broken-node")), "MemoryPressure")["status"]
            == "False"
        ),
        timeout=15,
        what="memory pressure gone",
    )


def test_deleted_pods_go_away_and_are_replaced(cluster: Cluster, namespace: str) -> None:
    api = cluster.api()
    given_deployment(api, namespace, "web", image("v1"), replicas=1)
    (first,) = pods(api, namespace, "app=web")

    kubectl(cluster, "delete", "pod", "-n", namespace, first["metadata"]["name"], "--wait=true")

    replacement = wait_for(
        lambda: [p for p in pods(api, namespace, "app=web") if pod_ready(p)],
        what="a Ready replacement pod",
    )
    assert [p["metadata"]["name"] for p in replacement] != [first["metadata"]["name"]]


def test_rbac_is_enforced_for_a_service_account(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    api = cluster.api()
    given_deployment(api, namespace, "web", image("v1"), replicas=1)
    reader = service_account_kubeconfig(cluster, namespace, "reader", tmp_path / "kubeconfig")
    rbac = client.RbacAuthorizationV1Api(api)
    rule = {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]}
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "read"}, "rules": [rule]})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "read"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    from kubernetes import config

    as_reader = client.AppsV1Api(config.new_client_from_config(config_file=str(reader)))

    def can_read() -> bool:
        try:
            as_reader.read_namespaced_deployment("web", namespace)
        except ApiException as err:
            if err.status == 403:
                return False  # the binding is not in the authorizer's cache yet
            raise
        return True

    wait_for(can_read, timeout=15, what="the reader to be allowed")
    with pytest.raises(ApiException) as denied:
        as_reader.patch_namespaced_deployment("web", namespace, {"spec": {"replicas": 2}})
    assert denied.value.status == 403


def test_the_bundled_crds_apply_and_validate(cluster: Cluster, namespace: str) -> None:
    names = [
        n for f in ("openfeature.yaml", "argocd.yaml", "flux.yaml") for n in apply_crd(cluster, f)
    ]
    assert sorted(names) == [
        "applications.argoproj.io",
        "featureflags.core.openfeature.dev",
        "featureflagsources.core.openfeature.dev",
        "helmreleases.helm.toolkit.fluxcd.io",
        "kustomizations.kustomize.toolkit.fluxcd.io",
    ]
    custom = client.CustomObjectsApi(cluster.api())
    flag = {
        "apiVersion": "core.openfeature.dev/v1beta1",
        "kind": "FeatureFlag",
        "metadata": {"name": "checkout"},
        "spec": {
            "flagSpec": {
                "flags": {
                    "new-checkout": {
                        "state": "ENABLED",
                        "variants": {"on": True, "off": False},
                        "defaultVariant": "on",
                    }
                }
            }
        },
    }
    created = custom.create_namespaced_custom_object(
        "core.openfeature.dev", "v1beta1", namespace, "featureflags", flag
    )
    assert created["spec"]["flagSpec"]["flags"]["new-checkout"]["variants"] == {
        "on": True,
        "off": False,
    }
    flag["metadata"]["name"] = "invalid"
    flag["spec"]["flagSpec"]["flags"]["new-checkout"]["state"] = "ON"
    with pytest.raises(ApiException) as rejected:
        custom.create_namespaced_custom_object(
            "core.openfeature.dev", "v1beta1", namespace, "featureflags", flag
        )
    assert rejected.value.status == 422
