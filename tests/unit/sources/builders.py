"""Real-shaped Kubernetes objects for source tests.

Each builder returns the dictionary the API server returns for that kind
(field names, nesting, string-typed annotations, RFC 3339 times, owner
references by UID), with only the fields that matter to the test varied.
The shapes were checked against objects captured from the local control
plane (see ``captured/``).
"""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

JSON = dict[str, Any]

NOW = datetime(2026, 12, 3, 10, 30, tzinfo=UTC)


def at(minutes_ago: float) -> str:
    """An API timestamp ``minutes_ago`` before NOW."""
    return (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def uid(*parts: str) -> str:
    digest = hashlib.sha1("/".join(parts).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def template(
    image: str,
    *,
    app: str = "web",
    env: list[JSON] | None = None,
    env_from: list[JSON] | None = None,
    volumes: list[JSON] | None = None,
    resources: JSON | None = None,
    annotations: dict[str, str] | None = None,
    pod_template_hash: str | None = None,
    init_containers: list[JSON] | None = None,
    labels: dict[str, str] | None = None,
) -> JSON:
    container: JSON = {
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "name": app,
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "resources": resources or {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    if env:
        container["env"] = env
    if env_from:
        container["envFrom"] = env_from
    pod_labels = {"app": app, **(labels or {})}
    if pod_template_hash:
        pod_labels["pod-template-hash"] = pod_template_hash
    spec: JSON = {
        "containers": [container],
        "dnsPolicy": "ClusterFirst",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "terminationGracePeriodSeconds": 30,
    }
    if volumes:
        spec["volumes"] = volumes
    if init_containers:
        spec["initContainers"] = init_containers
    meta: JSON = {"labels": pod_labels}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": spec}


def template_hash(tmpl: JSON) -> str:
    return hashlib.sha1(repr(tmpl).encode()).hexdigest()[:10]


def deployment(
    name: str,
    *,
    namespace: str = "shop",
    tmpl: JSON,
    revision: int,
    replicas: int = 3,
    created: float = 600,
    progressing: JSON | None = None,
    available: int | None = None,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    paused: bool = False,
    generation: int | None = None,
    resource_version: str = "4711",
) -> JSON:
    """A Deployment; ``progressing`` is its Progressing condition (see helpers below)."""
    avail = replicas if available is None else available
    conditions: list[JSON] = [
        {
            "lastTransitionTime": at(created),
            "lastUpdateTime": at(created),
            "message": "Deployment has minimum availability."
            if avail >= replicas
            else "Deployment does not have minimum availability.",
            "reason": "MinimumReplicasAvailable"
            if avail >= replicas
            else "MinimumReplicasUnavailable",
            "status": "True" if avail >= replicas else "False",
            "type": "Available",
        }
    ]
    if progressing:
        conditions.append(progressing)
    spec: JSON = {
        "progressDeadlineSeconds": 600,
        "replicas": replicas,
        "revisionHistoryLimit": 10,
        "selector": {"matchLabels": {"app": name}},
        "strategy": {
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            "type": "RollingUpdate",
        },
        "template": copy.deepcopy(tmpl),
    }
    if paused:
        spec["paused"] = True
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "annotations": {
                "deployment.kubernetes.io/revision": str(revision),
                **(annotations or {}),
            },
            "creationTimestamp": at(created),
            "generation": generation or revision,
            "labels": {"app": name, **(labels or {})},
            "name": name,
            "namespace": namespace,
            "resourceVersion": resource_version,
            "uid": uid("Deployment", namespace, name),
        },
        "spec": spec,
        "status": {
            "availableReplicas": avail,
            "conditions": conditions,
            "observedGeneration": generation or revision,
            "readyReplicas": avail,
            "replicas": replicas,
            "updatedReplicas": replicas,
        },
    }


def progressing(reason: str, rs_name: str, minutes_ago: float) -> JSON:
    messages = {
        "NewReplicaSetAvailable": f'ReplicaSet "{rs_name}" has successfully progressed.',
        "ReplicaSetUpdated": f'ReplicaSet "{rs_name}" is progressing.',
        "ProgressDeadlineExceeded": f'ReplicaSet "{rs_name}" has timed out progressing.',
    }
    return {
        "lastTransitionTime": at(minutes_ago),
        "lastUpdateTime": at(minutes_ago),
        "message": messages[reason],
        "reason": reason,
        "status": "False" if reason == "ProgressDeadlineExceeded" else "True",
        "type": "Progressing",
    }


def replicaset(
    owner: JSON,
    tmpl: JSON,
    *,
    revision: int | None,
    created: float,
    replicas: int,
    ready: int | None = None,
    available: int | None = None,
    annotations: dict[str, str] | None = None,
    managed_fields: list[JSON] | None = None,
) -> JSON:
    """A ReplicaSet controlled by the Deployment ``owner`` (revision None: no annotation)."""
    name_base = owner["metadata"]["name"]
    h = template_hash(tmpl)
    namespace = owner["metadata"]["namespace"]
    rs_tmpl = copy.deepcopy(tmpl)
    rs_tmpl["metadata"]["labels"]["pod-template-hash"] = h
    ann = {
        "deployment.kubernetes.io/desired-replicas": str(owner["spec"]["replicas"]),
        "deployment.kubernetes.io/max-replicas": str(owner["spec"]["replicas"] + 1),
    }
    if revision is not None:
        ann["deployment.kubernetes.io/revision"] = str(revision)
    ann.update(annotations or {})
    status: JSON = {"observedGeneration": 1, "replicas": replicas}
    if replicas:
        status["fullyLabeledReplicas"] = replicas
    r = replicas if ready is None else ready
    a = r if available is None else available
    if r:
        status["readyReplicas"] = r
    if a:
        status["availableReplicas"] = a
    meta: JSON = {
        "annotations": ann,
        "creationTimestamp": at(created),
        "generation": 1,
        "labels": {"app": name_base, "pod-template-hash": h},
        "name": f"{name_base}-{h}",
        "namespace": namespace,
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "blockOwnerDeletion": True,
                "controller": True,
                "kind": owner["kind"],
                "name": name_base,
                "uid": owner["metadata"]["uid"],
            }
        ],
        "resourceVersion": "1000",
        "uid": uid("ReplicaSet", namespace, name_base, h),
    }
    if managed_fields:
        meta["managedFields"] = managed_fields
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name_base, "pod-template-hash": h}},
            "template": rs_tmpl,
        },
        "status": status,
    }


def pod(
    owner: JSON,
    suffix: str,
    *,
    created: float,
    ready: bool = True,
    ready_since: float | None = None,
    waiting: str | None = None,
    last_terminated: str | None = None,
    restarts: int = 0,
    labels: dict[str, str] | None = None,
    phase: str = "Running",
) -> JSON:
    """A pod controlled by ``owner`` (a ReplicaSet, StatefulSet or DaemonSet)."""
    owner_meta = owner["metadata"]
    namespace = owner_meta["namespace"]
    name = f"{owner_meta['name']}-{suffix}"
    tmpl_labels = dict(
        ((owner.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
    )
    tmpl_labels.update(labels or {})
    image = owner["spec"]["template"]["spec"]["containers"][0]["image"]
    container_name = owner["spec"]["template"]["spec"]["containers"][0]["name"]
    state: JSON
    if waiting:
        state = {"waiting": {"message": f"back-off restarting {container_name}", "reason": waiting}}
    else:
        state = {"running": {"startedAt": at(created - 0.1)}}
    cs: JSON = {
        "containerID": f"containerd://{uid(name)}",
        "image": image,
        "imageID": "",
        "lastState": {},
        "name": container_name,
        "ready": ready and not waiting,
        "restartCount": restarts,
        "started": not waiting,
        "state": state,
    }
    if last_terminated:
        cs["lastState"] = {
            "terminated": {
                "exitCode": 137 if last_terminated == "OOMKilled" else 1,
                "finishedAt": at(1),
                "reason": last_terminated,
                "startedAt": at(2),
            }
        }
    is_ready = ready and not waiting
    rs_since = at(ready_since if ready_since is not None else created - 0.2)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "creationTimestamp": at(created),
            "generateName": f"{owner_meta['name']}-",
            "labels": tmpl_labels,
            "name": name,
            "namespace": namespace,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "blockOwnerDeletion": True,
                    "controller": True,
                    "kind": owner["kind"],
                    "name": owner_meta["name"],
                    "uid": owner_meta["uid"],
                }
            ],
            "resourceVersion": "2000",
            "uid": uid("Pod", namespace, name),
        },
        "spec": copy.deepcopy(owner["spec"]["template"]["spec"]) | {"nodeName": "kwok-node-0"},
        "status": {
            "conditions": [
                {"lastTransitionTime": at(created), "status": "True", "type": "PodScheduled"},
                {
                    "lastTransitionTime": rs_since,
                    "status": "True" if is_ready else "False",
                    "type": "Ready",
                },
            ],
            "containerStatuses": [cs],
            "phase": phase,
            "startTime": at(created),
        },
    }


def event(
    involved: JSON,
    reason: str,
    message: str,
    *,
    minutes_ago: float,
    type_: str = "Warning",
    count: int = 1,
    name_override: str | None = None,
) -> JSON:
    """A core/v1 Event about ``involved`` (an object dict)."""
    m = involved["metadata"]
    name = name_override or m["name"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "count": count,
        "firstTimestamp": at(minutes_ago + 1),
        "involvedObject": {
            "apiVersion": involved.get("apiVersion", "v1"),
            "kind": involved["kind"],
            "name": name,
            "namespace": m.get("namespace", ""),
            "uid": m.get("uid", ""),
        },
        "lastTimestamp": at(minutes_ago),
        "message": message,
        "metadata": {
            "creationTimestamp": at(minutes_ago + 1),
            "name": f"{name}.{uid(name, reason)[:16]}",
            "namespace": m.get("namespace", "default"),
            "resourceVersion": "3000",
            "uid": uid("Event", name, reason),
        },
        "reason": reason,
        "reportingComponent": "kubelet",
        "source": {"component": "kubelet", "host": "kwok-node-0"},
        "type": type_,
    }


def statefulset(
    name: str,
    tmpl: JSON,
    *,
    namespace: str = "shop",
    replicas: int = 2,
    current_revision: str = "",
    update_revision: str = "",
    ready: int | None = None,
) -> JSON:
    r = replicas if ready is None else ready
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "creationTimestamp": at(600),
            "generation": 2,
            "labels": {"app": name},
            "name": name,
            "namespace": namespace,
            "resourceVersion": "5000",
            "uid": uid("StatefulSet", namespace, name),
        },
        "spec": {
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Retain",
                "whenScaled": "Retain",
            },
            "podManagementPolicy": "OrderedReady",
            "replicas": replicas,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": name}},
            "serviceName": name,
            "template": copy.deepcopy(tmpl),
            "updateStrategy": {"rollingUpdate": {"partition": 0}, "type": "RollingUpdate"},
        },
        "status": {
            "availableReplicas": r,
            "collisionCount": 0,
            "currentReplicas": replicas,
            "currentRevision": current_revision,
            "observedGeneration": 2,
            "readyReplicas": r,
            "replicas": replicas,
            "updateRevision": update_revision,
            "updatedReplicas": replicas,
        },
    }


def controller_revision(owner: JSON, tmpl: JSON, *, revision: int, created: float) -> JSON:
    """A ControllerRevision as the StatefulSet/DaemonSet controller writes it."""
    h = template_hash(tmpl)
    m = owner["metadata"]
    patch_tmpl = copy.deepcopy(tmpl)
    patch_tmpl["$patch"] = "replace"
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "data": {"spec": {"template": patch_tmpl}},
        "metadata": {
            "creationTimestamp": at(created),
            "labels": {"app": m["name"], "controller.kubernetes.io/hash": h},
            "name": f"{m['name']}-{h}",
            "namespace": m["namespace"],
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "blockOwnerDeletion": True,
                    "controller": True,
                    "kind": owner["kind"],
                    "name": m["name"],
                    "uid": m["uid"],
                }
            ],
            "resourceVersion": "6000",
            "uid": uid("ControllerRevision", m["namespace"], m["name"], h),
        },
        "revision": revision,
    }


# ---------------------------------------------------------------------------
# Objects captured from the local control plane (examples/*.yaml)
# ---------------------------------------------------------------------------

EXAMPLES = __import__("pathlib").Path(__file__).resolve().parents[3] / "examples"
_CAPTURED: dict[str, list[JSON]] = {}


def captured(example: str, kind: str, name: str | None = None) -> JSON:
    """A deep copy of one object captured in ``examples/EXAMPLE.yaml`` (kind, name)."""
    import yaml

    if example not in _CAPTURED:
        text = (EXAMPLES / f"{example}.yaml").read_text(encoding="utf-8")
        _CAPTURED[example] = yaml.safe_load(text)["items"]
    for obj in _CAPTURED[example]:
        if obj["kind"] == kind and (name is None or obj["metadata"]["name"] == name):
            return copy.deepcopy(obj)
    raise KeyError(f"{example}: no {kind} {name}")


def captured_all(example: str) -> list[JSON]:
    captured(example, "Deployment")
    return copy.deepcopy(_CAPTURED[example])
