#!/usr/bin/env python3
"""Re-create the bundled example snapshots on the local control plane.

Each scenario is played against a real API server (``hack/localcluster.py``:
etcd, kube-apiserver, controller-manager, scheduler and kwok) with kubectl,
then captured with ``rollback snapshot``.  Two edits turn a capture into an
example, both mechanical:

* **Re-timing.** A scenario takes about a minute of wall time; production
  incidents take an hour.  Every timestamp (RFC 3339 strings anywhere in the
  objects) is mapped ``t -> CAPTURE - (captured_at - t) * STRETCH`` so the
  story reads in minutes and hours, order and proportions unchanged, captured
  at a round time.  Durations stated in specs (``progressDeadlineSeconds``)
  are stretched the same way.
* **Trimming.** The kube-root-ca.crt ConfigMaps and kwok's node bookkeeping
  annotations are dropped, and the local test conventions are renamed
  (image tags ending in ``-broken`` lose the suffix that tells kwok to keep
  the pods unready).

Where kwok cannot play the kubelet's part (a running container that starts
crash-looping after a config or flag change), the script writes the pod
status and Event the kubelet would write, through the ``pods/status``
subresource and the Events API.

    python examples/make_examples.py            # needs KUBECONFIG of a local cluster
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
KUBECTL = str(BIN / "kubectl")
ROLLBACK = str(BIN / "rollback")
STRETCH = 60  # one second of the scenario is one minute of the story
CAPTURE = datetime(2026, 12, 3, 10, 20, tzinfo=UTC)
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def kubectl(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [KUBECTL, *args], input=stdin, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def apply(doc: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", stdin=json.dumps(doc))


def wait(seconds: float) -> None:
    time.sleep(seconds)


def deployment(
    namespace: str,
    name: str,
    image: str,
    *,
    replicas: int = 3,
    env_from: str | None = None,
    volume_config: str | None = None,
    pod_annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "ports": [{"containerPort": 8080}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
    }
    volumes = []
    if env_from:
        container["envFrom"] = [{"configMapRef": {"name": env_from}}]
    if volume_config:
        container["volumeMounts"] = [{"name": "config", "mountPath": "/etc/" + name}]
        volumes.append({"name": "config", "configMap": {"name": volume_config}})
    spec: dict[str, Any] = {"containers": [container]}
    if volumes:
        spec["volumes"] = volumes
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": name, **(labels or {})},
        },
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": 10,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {
                    "labels": {"app": name},
                    "annotations": dict(pod_annotations or {}),
                },
                "spec": spec,
            },
        },
    }


def service(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def configmap(namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


def fresh_namespace(name: str) -> None:
    subprocess.run(
        [KUBECTL, "delete", "namespace", name, "--wait=true"], check=False, capture_output=True
    )
    kubectl("create", "namespace", name)
    # The namespace's default ServiceAccount must exist before pods can be made.
    for _ in range(50):
        if (
            subprocess.run(
                [KUBECTL, "-n", name, "get", "serviceaccount", "default"],
                check=False,
                capture_output=True,
            ).returncode
            == 0
        ):
            return
        time.sleep(0.1)


def crash_pods(namespace: str, app: str, reason: str, message: str) -> None:
    """Write what the kubelet writes when running containers start to crash-loop."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    pods = json.loads(kubectl("-n", namespace, "get", "pods", "-l", f"app={app}", "-o", "json"))
    for pod in pods["items"]:
        name = pod["metadata"]["name"]
        container = pod["spec"]["containers"][0]["name"]
        status = {
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "False",
                        "lastTransitionTime": now,
                        "reason": "ContainersNotReady",
                        "message": f"containers with unready status: [{container}]",
                    },
                    {
                        "type": "ContainersReady",
                        "status": "False",
                        "lastTransitionTime": now,
                        "reason": "ContainersNotReady",
                        "message": f"containers with unready status: [{container}]",
                    },
                ],
                "containerStatuses": [
                    {
                        "name": container,
                        "image": pod["spec"]["containers"][0]["image"],
                        "imageID": "",
                        "ready": False,
                        "started": False,
                        "restartCount": 4,
                        "state": {
                            "waiting": {
                                "reason": "CrashLoopBackOff",
                                "message": f"back-off 1m20s restarting failed container={container}"
                                f" pod={name}_{namespace}({pod['metadata']['uid']})",
                            }
                        },
                        "lastState": {
                            "terminated": {
                                "exitCode": 1,
                                "reason": "Error",
                                "startedAt": now,
                                "finishedAt": now,
                            }
                        },
                    }
                ],
            }
        }
        kubectl(
            "-n",
            namespace,
            "patch",
            "pod",
            name,
            "--subresource=status",
            "--type=strategic",
            "-p",
            json.dumps(status),
        )
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{int(time.time() * 1000):x}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": name,
                "namespace": namespace,
                "uid": pod["metadata"]["uid"],
                "fieldPath": f"spec.containers{{{container}}}",
            },
            "reason": reason,
            "message": message,
            "type": "Warning",
            "count": 9,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": {"component": "kubelet", "host": pod["spec"].get("nodeName", "")},
            "reportingComponent": "kubelet",
            "reportingInstance": pod["spec"].get("nodeName", ""),
        }
        kubectl("create", "-f", "-", stdin=json.dumps(event))


# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------


def release(namespace: str, name: str, image: str, cause: str) -> None:
    """One patch, image and change-cause together, as a CD pipeline sends it."""
    patch = {
        "metadata": {"annotations": {"kubernetes.io/change-cause": cause}},
        "spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}},
    }
    kubectl("-n", namespace, "patch", "deployment", name, "-p", json.dumps(patch))


def bad_image_rollout() -> tuple[str, dict[str, str]]:
    ns = "shop"
    fresh_namespace(ns)
    apply(configmap(ns, "cart-config", {"CART_TTL": "30m", "CURRENCY": "EUR"}))
    apply(
        deployment(
            ns, "cart", "registry.example/shop/cart:1.8.0", replicas=2, env_from="cart-config"
        )
    )
    apply(service(ns, "cart"))
    apply(deployment(ns, "web", "registry.example/shop/web:2.3.0"))
    apply(service(ns, "web"))
    wait(10)
    release(ns, "web", "registry.example/shop/web:2.4.1", "release 2.4.1")
    wait(35)
    release(ns, "web", "registry.example/shop/web:2.5.0-broken", "release 2.5.0")
    wait(22)
    return ns, {"2.5.0-broken": "2.5.0"}


def configmap_change() -> tuple[str, dict[str, str]]:
    ns = "payments"
    fresh_namespace(ns)
    apply(
        configmap(
            ns, "api-config", {"DB_POOL_SIZE": "20", "LOG_LEVEL": "info", "UPSTREAM_TIMEOUT": "2s"}
        )
    )
    apply(deployment(ns, "api", "registry.example/payments/api:5.2.0", volume_config="api-config"))
    apply(service(ns, "api"))
    apply(deployment(ns, "ledger", "registry.example/payments/ledger:3.0.4", replicas=2))
    apply(service(ns, "ledger"))
    wait(40)
    # An on-call engineer edits the pool size in place.
    kubectl(
        "-n",
        ns,
        "patch",
        "configmap",
        "api-config",
        "--type=merge",
        "-p",
        '{"data":{"DB_POOL_SIZE":"500"}}',
    )
    wait(2)
    crash_pods(ns, "api", "BackOff", "Back-off restarting failed container api in pod")
    wait(10)
    return ns, {}


def flag_flip() -> tuple[str, dict[str, str]]:
    ns = "checkout"
    fresh_namespace(ns)
    kubectl("apply", "-f", str(ROOT / "manifests" / "crds" / "openfeature.yaml"))
    kubectl(
        "wait",
        "--for=condition=Established",
        "crd/featureflags.core.openfeature.dev",
        "crd/featureflagsources.core.openfeature.dev",
    )
    apply(
        {
            "apiVersion": "core.openfeature.dev/v1beta1",
            "kind": "FeatureFlag",
            "metadata": {"name": "storefront-flags", "namespace": ns},
            "spec": {
                "flagSpec": {
                    "flags": {
                        "new-checkout": {
                            "state": "ENABLED",
                            "variants": {"on": True, "off": False},
                            "defaultVariant": "off",
                        },
                        "dark-mode": {
                            "state": "ENABLED",
                            "variants": {"on": True, "off": False},
                            "defaultVariant": "on",
                        },
                    }
                }
            },
        }
    )
    apply(
        {
            "apiVersion": "core.openfeature.dev/v1beta1",
            "kind": "FeatureFlagSource",
            "metadata": {"name": "storefront-flag-source", "namespace": ns},
            "spec": {
                "sources": [{"source": f"{ns}/storefront-flags", "provider": "kubernetes"}],
                "port": 8013,
            },
        }
    )
    annotations = {
        "openfeature.dev/enabled": "true",
        "openfeature.dev/featureflagsource": "storefront-flag-source",
    }
    apply(
        deployment(
            ns,
            "storefront",
            "registry.example/checkout/storefront:7.1.0",
            pod_annotations=annotations,
        )
    )
    apply(service(ns, "storefront"))
    wait(40)
    # Product turns the new checkout on for everyone.
    kubectl(
        "-n",
        ns,
        "patch",
        "featureflag",
        "storefront-flags",
        "--type=merge",
        "-p",
        '{"spec":{"flagSpec":{"flags":{"new-checkout":{"defaultVariant":"on"}}}}}',
    )
    wait(2)
    crash_pods(ns, "storefront", "BackOff", "Back-off restarting failed container storefront")
    wait(10)
    return ns, {}


# ---------------------------------------------------------------------------
# Capture, trim, re-time
# ---------------------------------------------------------------------------


def capture(namespace: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "snap.yaml"
        subprocess.run([ROLLBACK, "snapshot", "-n", namespace, "-o", str(out)], check=True)
        return out.read_text(encoding="utf-8")


def retime(value: Any, captured: datetime) -> Any:
    if isinstance(value, dict):
        return {k: retime(v, captured) for k, v in value.items()}
    if isinstance(value, list):
        return [retime(v, captured) for v in value]
    if isinstance(value, str) and _TIME.match(value):
        moment = datetime.fromisoformat(value)
        shifted = CAPTURE - (captured - moment) * STRETCH
        return shifted.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, datetime):
        shifted = CAPTURE - (captured - value.astimezone(UTC)) * STRETCH
        return shifted.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def trim(doc: dict[str, Any], renames: dict[str, str]) -> dict[str, Any]:
    items = []
    for item in doc["items"]:
        meta = item.get("metadata") or {}
        if item.get("kind") == "ConfigMap" and meta.get("name") == "kube-root-ca.crt":
            continue
        for key in ("kwok.x-k8s.io/node", "node.alpha.kubernetes.io/ttl"):
            (meta.get("annotations") or {}).pop(key, None)
        if item.get("kind") == "Deployment":
            item["spec"]["progressDeadlineSeconds"] = 10 * STRETCH
        items.append(item)
    doc["items"] = items
    text = json.dumps(doc)
    for old, new in renames.items():
        text = text.replace(old, new)
    return json.loads(text)


def main() -> int:
    if not os.environ.get("KUBECONFIG"):
        print("set KUBECONFIG to a local control plane (python hack/localcluster.py env)")
        return 2
    scenarios = {
        "bad-image-rollout.yaml": bad_image_rollout,
        "configmap-change.yaml": configmap_change,
        "flag-flip.yaml": flag_flip,
    }
    wanted = set(sys.argv[1:]) or set(scenarios)
    for filename, play in scenarios.items():
        if filename not in wanted:
            continue
        print(f"playing {filename} ...", flush=True)
        namespace, renames = play()
        doc = yaml.safe_load(capture(namespace))
        annotations = doc["metadata"]["annotations"]
        captured = datetime.fromisoformat(annotations["rollback.io/captured-at"])
        doc = trim(retime(doc, captured), renames)
        doc["metadata"]["annotations"]["rollback.io/captured-at"] = CAPTURE.strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        from controller.snapshot import _Dumper

        text = yaml.dump(doc, Dumper=_Dumper, sort_keys=True, default_flow_style=False)
        header = (
            f"# {filename}: captured with `rollback snapshot -n {namespace}` from the local\n"
            "# control plane, trimmed and re-timed by examples/make_examples.py.\n"
        )
        (HERE / filename).write_text(header + text, encoding="utf-8")
        print(f"wrote examples/{filename} ({len(doc['items'])} objects)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
