#!/usr/bin/env python3
"""Benchmark ``rollback assess`` on a big namespace, beside a kubectl-per-workload baseline.

Fills the local control plane (or the cluster of ``--kubeconfig``) with one
namespace of N Deployments with R revisions each (every revision a real
ReplicaSet made by the Deployment controller, one Ready pod per Deployment at
the end) and M ConfigMaps, then measures:

* ``rollback assess -n NS -o json`` as a user runs it (a new process each
  time): wall time, and API requests as the tool counts them;
* the same question answered with kubectl, one workload at a time (the
  Deployment, its ReplicaSets, its pods; then the namespace's ConfigMaps and
  Events): wall time and API requests (counted from ``kubectl -v=6``);
* ``rollback --help`` start-up, with bytecode compiled.

Results go to bench/RESULTS.md.  This is a benchmark, not a test: it takes
several minutes and its numbers depend on the machine.

    .venv/bin/python bench/bench_assess.py                  # starts its own control plane
    .venv/bin/python bench/bench_assess.py --kubeconfig K   # an existing cluster
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ROLLBACK = str(BIN / "rollback")
KUBECTL = str(BIN / "kubectl")
RESULTS = ROOT / "bench" / "RESULTS.md"


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


# ---------------------------------------------------------------------------
# Filling the namespace
# ---------------------------------------------------------------------------


def api_clients(kubeconfig: str) -> tuple[Any, Any]:
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = 32
    api = client.ApiClient(configuration)
    return client.AppsV1Api(api), client.CoreV1Api(api)


def parallel(fn: Callable[[Any], Any], items: Iterable[Any], workers: int = 16) -> None:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(fn, items):
            pass


def deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name, "tier": "bench"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": f"registry.example/{name}:v1",
                            "env": [{"name": "REVISION", "value": "1"}],
                            "envFrom": [{"configMapRef": {"name": f"{name}-config"}}],
                        }
                    ],
                    "terminationGracePeriodSeconds": 0,
                },
            },
        },
    }


def fill(
    kubeconfig: str, namespace: str, deployments: int, revisions: int, configmaps: int
) -> None:
    apps, core = api_clients(kubeconfig)
    from kubernetes.client.rest import ApiException

    try:
        core.create_namespace({"metadata": {"name": namespace}})
    except ApiException as err:
        if err.status != 409:
            raise
    names = [f"svc-{i:04d}" for i in range(deployments)]
    log(f"creating {configmaps} ConfigMaps")
    parallel(
        lambda i: core.create_namespaced_config_map(
            namespace,
            {
                "metadata": {
                    "name": names[i % deployments] + "-config"
                    if i < deployments
                    else f"extra-{i:04d}"
                },
                "data": {"LOG_LEVEL": "info", "POOL": str(i)},
            },
        ),
        range(configmaps),
    )
    log(f"creating {deployments} Deployments")
    parallel(lambda n: apps.create_namespaced_deployment(namespace, deployment(n)), names)
    # Each revision's ReplicaSet must exist before the next change, or the
    # controller folds two changes into one revision.
    wait_replicasets(apps, namespace, deployments)
    for rev in range(2, revisions + 1):
        log(f"rolling every Deployment to revision {rev}")
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": None,
                                "env": [{"name": "REVISION", "value": str(rev)}],
                            }
                        ]
                    }
                }
            }
        }

        def roll(name: str, rev: int = rev, patch: dict[str, Any] = patch) -> None:
            body = json.loads(json.dumps(patch))
            body["spec"]["template"]["spec"]["containers"][0]["image"] = (
                f"registry.example/{name}:v{rev}"
            )
            apps.patch_namespaced_deployment(name, namespace, body)

        parallel(roll, names)
        wait_replicasets(apps, namespace, deployments * rev)
    # A kwok node takes 110 pods, as a kubelet does by default: add nodes for
    # the bench's pods so they are scheduled rather than left Pending.
    sys.path.insert(0, str(ROOT / "hack"))
    import localcluster

    for n in range(deployments // 100 + 1):
        try:
            core.create_node(localcluster.node_manifest(f"bench-node-{n}"))
        except ApiException as err:
            if err.status != 409:
                raise
    log("scaling every Deployment to one replica")
    parallel(
        lambda n: apps.patch_namespaced_deployment_scale(n, namespace, {"spec": {"replicas": 1}}),
        names,
    )
    wait_ready_pods(core, namespace, deployments)


def wait_replicasets(apps: Any, namespace: str, want: int, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        have = len(
            apps.list_namespaced_replica_set(namespace, _preload_content=False).json()["items"]
        )
        if have >= want:
            return
        time.sleep(2)
    raise SystemExit(f"timed out waiting for {want} ReplicaSets")


def wait_ready_pods(core: Any, namespace: str, want: int, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(namespace, _preload_content=False).json()["items"]
        ready = sum(
            1
            for p in pods
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
        )
        if ready >= want:
            return
        time.sleep(2)
    raise SystemExit(f"timed out waiting for {want} Ready pods")


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------


def measure_assess(kubeconfig: str, namespace: str, runs: int) -> dict[str, Any]:
    env = dict(os.environ, KUBECONFIG=kubeconfig)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    walls, requests = [], []
    text = ""
    for _ in range(runs + 1):  # the first run warms the page cache and bytecode
        begin = time.perf_counter()
        done = subprocess.run(
            [ROLLBACK, "assess", "-n", namespace, "--incident-start", "now"],
            capture_output=True, text=True, env=env, check=True,
        )  # fmt: skip
        walls.append(time.perf_counter() - begin)
        text = done.stdout
        requests.append(int(text.rsplit("API requests: ", 1)[1].split()[0]))
    walls = walls[1:]
    return {
        "wall_median": statistics.median(walls),
        "wall_min": min(walls),
        "wall_max": max(walls),
        "requests": max(requests),
        "changes": int(text.split("Changes in the window: ", 1)[1].split()[0]),
        "verdict": _headline(text),
    }


def _headline(text: str) -> str:
    """The verdict: the first line and its wrapped continuation lines."""
    lines = text.splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        if not line.startswith("  "):
            break
        out.append(line.strip())
    return " ".join(out)


def measure_stages(kubeconfig: str, namespace: str) -> dict[str, float]:
    """In-process split: client setup, the live read, the pipeline."""
    sys.path.insert(0, str(ROOT))
    import gc

    from controller.assess import assess, make_incident, read_view
    from controller.kube import Kube
    from controller.model import Scope
    from controller.policy.scoring import ScoringSettings

    gc.disable()  # as the CLI does (controller/cli/assess.py)
    t0 = time.perf_counter()
    kube = Kube(kubeconfig=kubeconfig)
    t1 = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    scope = Scope(namespaces=(namespace,))
    view = read_view(kube, scope, now)
    t2 = time.perf_counter()
    settings = ScoringSettings()
    assess(view, make_incident(now, now, settings.lookback, scope), settings)
    t3 = time.perf_counter()
    return {"client": t1 - t0, "read": t2 - t1, "pipeline": t3 - t2, "objects": float(len(view))}


def kubectl_requests(args: list[str], kubeconfig: str) -> tuple[int, float]:
    begin = time.perf_counter()
    done = subprocess.run(
        [KUBECTL, f"--kubeconfig={kubeconfig}", "-v=6", *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - begin
    count = sum(1 for line in done.stderr.splitlines() if "Response" in line and "https://" in line)
    return count, wall


def measure_baseline(kubeconfig: str, namespace: str, sample: int | None) -> dict[str, Any]:
    """Per workload: the Deployment, its ReplicaSets, its pods (what `kubectl rollout
    history` and `kubectl describe` read); then the namespace's ConfigMaps and Events."""
    names = json.loads(
        subprocess.run(
            [KUBECTL, f"--kubeconfig={kubeconfig}", "-n", namespace, "get", "deploy",
             "-o", "jsonpath={range .items[*]}\"{.metadata.name}\",{end}"],
            capture_output=True, text=True, check=True,
        ).stdout.join("[]").replace(",]", "]")
    )  # fmt: skip
    chosen = names if sample is None else names[:sample]
    total_requests, total_wall = 0, 0.0
    for name in chosen:
        for args in (
            ["-n", namespace, "get", "deploy", name, "-o", "json"],
            ["-n", namespace, "get", "rs", "-l", f"app={name}", "-o", "json"],
            ["-n", namespace, "get", "pods", "-l", f"app={name}", "-o", "json"],
        ):
            count, wall = kubectl_requests(args, kubeconfig)
            total_requests += count
            total_wall += wall
    for args in (
        ["-n", namespace, "get", "cm", "-o", "json"],
        ["-n", namespace, "get", "events", "-o", "json"],
    ):
        count, wall = kubectl_requests(args, kubeconfig)
        total_requests += count
        total_wall += wall
    scale = len(names) / len(chosen)
    return {
        "workloads": len(names),
        "sampled": len(chosen),
        "requests": round(total_requests * scale),
        "wall": total_wall * scale,
    }


def measure_help(runs: int = 15) -> dict[str, float]:
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "controller")],
        check=True, env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    # One run writes whatever bytecode the dependencies still lack.
    subprocess.run([ROLLBACK, "--help"], capture_output=True, env=env, check=True)
    walls = []
    for _ in range(runs):
        begin = time.perf_counter()
        subprocess.run([ROLLBACK, "--help"], capture_output=True, env=env, check=True)
        walls.append(time.perf_counter() - begin)
    return {"median": statistics.median(walls), "min": min(walls), "max": max(walls)}


# ---------------------------------------------------------------------------


def write_results(args: argparse.Namespace, results: dict[str, Any]) -> None:
    a, s, b, h = results["assess"], results["stages"], results["baseline"], results["help"]
    cpu = platform.processor() or platform.machine()
    spread = f"median of {args.runs}; {a['wall_min']:.2f}-{a['wall_max']:.2f} s"
    sampled = (
        ""
        if b["sampled"] == b["workloads"]
        else f"; measured on {b['sampled']} workloads and scaled to {b['workloads']}"
    )
    revisions = args.deployments * args.revisions
    text = f"""# Benchmark: `rollback assess` on a big namespace

Measured by `bench/bench_assess.py` on {results["date"]} ({os.cpu_count()} cores, {cpu},
Python {platform.python_version()}), against the local control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler {results["server"]} and kwok on loopback). The machine
is shared with other work: load average {results["load"]:.1f} when the measurement began.

The namespace: {args.deployments} Deployments with {args.revisions} revisions each ({revisions}
ReplicaSets made by the Deployment controller), one Ready pod per Deployment, {args.configmaps}
ConfigMaps; {int(s["objects"])} objects read in all.

| | `rollback assess -n {args.namespace}` | kubectl, one workload at a time |
|---|---|---|
| API requests | **{a["requests"]}** | {b["requests"]} |
| wall time | **{a["wall_median"]:.2f} s** ({spread}) | {b["wall"]:.0f} s |

Budget: under 2 s and at most 15 API requests for a namespace-scoped assess. All {revisions}
revisions were rolled out minutes before the run, so every one is a change in the 24h window
({a["changes"]} changes with the nodes) and all are ranked: the worst case for the pipeline.
The verdict printed: `{a["verdict"]}`.

Where the time of one assess goes (in-process, same data): client setup {s["client"]:.2f} s
(mostly importing the Kubernetes client), the live read {s["read"]:.2f} s ({a["requests"]} LIST
calls, concurrent; about 14 MB of JSON, most of it the ReplicaSets), the pipeline (sources,
triage, ranking, safety, plan preview) {s["pipeline"]:.2f} s. The rest is Python start-up.

The kubectl baseline answers the same question the way an engineer would without the tool:
for each Deployment `kubectl get deploy NAME`, `kubectl get rs -l app=NAME` (its revision
history) and `kubectl get pods -l app=NAME`, then the namespace's ConfigMaps and Events
(requests counted from `kubectl -v=6`; each kubectl run also reads discovery){sampled}.

`rollback --help` start-up with bytecode compiled: **{h["median"] * 1000:.0f} ms** median of
15 runs ({h["min"] * 1000:.0f}-{h["max"] * 1000:.0f} ms); budget 150 ms.

Re-run: `.venv/bin/python bench/bench_assess.py` (add `--kubeconfig FILE` to use a running
cluster, `--skip-fill` when the namespace is already filled, `--baseline-sample N` to time
the kubectl baseline on N workloads and scale it).
"""
    RESULTS.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig")
    parser.add_argument("--namespace", default="bench")
    parser.add_argument("--deployments", type=int, default=500)
    parser.add_argument("--revisions", type=int, default=10)
    parser.add_argument("--configmaps", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline-sample", type=int, default=None)
    parser.add_argument("--skip-fill", action="store_true")
    args = parser.parse_args()
    if args.baseline_sample is not None and args.baseline_sample < 1:
        parser.error("--baseline-sample: at least 1 workload (the baseline is scaled from it)")
    if args.runs < 1:
        parser.error("--runs: at least 1")

    cluster = None
    kubeconfig = args.kubeconfig
    if kubeconfig is None:
        sys.path.insert(0, str(ROOT / "hack"))
        import localcluster

        log("starting a local control plane")
        cluster = localcluster.start(localcluster.ensure_binaries())
        kubeconfig = str(cluster.kubeconfig)
    try:
        if not args.skip_fill:
            fill(kubeconfig, args.namespace, args.deployments, args.revisions, args.configmaps)
        log("measuring rollback assess")
        results: dict[str, Any] = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "load": os.getloadavg()[0],
            "assess": measure_assess(kubeconfig, args.namespace, args.runs),
            "stages": measure_stages(kubeconfig, args.namespace),
        }
        log(f"assess: {results['assess']}, stages: {results['stages']}")
        log("measuring the kubectl baseline")
        results["baseline"] = measure_baseline(kubeconfig, args.namespace, args.baseline_sample)
        log(f"baseline: {results['baseline']}")
        results["help"] = measure_help()
        log(f"--help: {results['help']}")
        version = subprocess.run(
            [KUBECTL, f"--kubeconfig={kubeconfig}", "version", "-o", "json"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        try:
            results["server"] = json.loads(version.stdout)["serverVersion"]["gitVersion"]
        except (ValueError, KeyError):
            results["server"] = ""
        write_results(args, results)
        log(f"wrote {RESULTS.relative_to(ROOT)}")
    finally:
        if cluster is not None:
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
