"""The local control plane's launcher, without starting it; and what a broken setup says."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import localcluster
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_versions_are_pinned_once_and_key_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ROLLBACK_CACHE_DIR", str(tmp_path))
    pins = localcluster.versions()

    assert sorted(pins) == ["ETCD_VERSION", "KUBE_VERSION", "KWOK_VERSION"]
    assert (
        localcluster.bin_dir()
        == tmp_path
        / (f"kube-{pins['KUBE_VERSION']}_etcd-{pins['ETCD_VERSION']}_kwok-{pins['KWOK_VERSION']}")
        / "bin"
    )
    build = subprocess.run(
        ["bash", str(ROOT / "hack/build-control-plane.sh"), "--print"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "ROLLBACK_CACHE_DIR": str(tmp_path)},
    )
    assert build.stdout.strip() == str(localcluster.bin_dir())


def test_an_empty_cache_is_not_ready(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ROLLBACK_CACHE_DIR", str(tmp_path))

    assert not localcluster.binaries_ready()
    with pytest.raises(
        localcluster.Unavailable, match=re.escape("run hack/build-control-plane.sh")
    ):
        localcluster.ensure_binaries(build=False)


def test_the_stages_render_into_kwok_stage_documents() -> None:
    rendered = localcluster.render_stages()
    documents = [d for d in yaml.safe_load_all(rendered) if d]

    code = [line for line in rendered.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in code if "@include" in line or "@{" in line]
    assert {d["kind"] for d in documents} == {"Stage"}
    assert [d["metadata"]["name"] for d in documents] == [
        "node-initialize",
        "node-state",
        "node-heartbeat",
        "pod-ready",
        "pod-broken",
        "pod-crashloop",
        "pod-fail",
        "pod-complete",
        "pod-delete",
    ]
    pod_classes = {
        d["metadata"]["name"]: e["values"]
        for d in documents
        for e in d["spec"]["selector"]["matchExpressions"]
        if "tagged(" in e["key"]
    }
    assert pod_classes == {
        "pod-ready": ["healthy"],
        "pod-broken": ["broken"],
        "pod-crashloop": ["crashloop"],
        "pod-fail": ["crashloop", "broken"],
        "pod-complete": ["healthy"],
    }


def test_a_node_manifest_is_one_kwok_manages() -> None:
    node = localcluster.node_manifest("n1", labels={"zone": "a"})

    assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert node["metadata"]["labels"]["zone"] == "a"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "n1"
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["Hostname"] == "n1"
    assert addresses["InternalIP"] != localcluster.node_manifest("n2")["status"]["addresses"][0]


@pytest.mark.parametrize(
    ("conditions", "taints", "ready"),
    [
        ([{"type": "Ready", "status": "True"}], [], True),
        ([{"type": "Ready", "status": "False"}], [], False),
        ([], [], False),
        (
            [{"type": "Ready", "status": "True"}],
            [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}],
            False,
        ),
    ],
)
def test_a_node_is_ready_for_pods_once_ready_and_untainted(
    conditions: list[dict[str, str]], taints: list[dict[str, str]], ready: bool
) -> None:
    node = {"spec": {"taints": taints}, "status": {"conditions": conditions}}

    assert localcluster.node_ready(node) is ready


def _without_go(tmp_path: Path) -> dict[str, str]:
    """An environment with bash but no Go toolchain, and an empty binary cache."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname"):
        found = shutil.which(tool)
        assert found, f"{tool} is needed to run the build script"
        (bin_dir / tool).symlink_to(found)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLBACK_")}
    env.update(PATH=str(bin_dir), ROLLBACK_CACHE_DIR=str(tmp_path / "cache"))
    return env


def _pytest(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/e2e/test_realism.py", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


MISSING_GO = (
    "cannot build the local control plane: the Go toolchain ('go') is not on PATH; "
    "install Go 1.26+ or set ROLLBACK_TEST_KUBECONFIG to use an existing cluster"
)


def test_without_go_and_with_e2e_required_the_suite_stops_with_one_clear_line(
    tmp_path: Path,
) -> None:
    env = {**_without_go(tmp_path), "ROLLBACK_E2E": "require"}

    result = _pytest(env)

    assert result.returncode == 3
    output = (result.stdout + result.stderr).splitlines()
    assert [line for line in output if "Go toolchain" in line] == [
        f"! _pytest.outcomes.Exit: ROLLBACK_E2E=require but the e2e tests cannot run: "
        f"{MISSING_GO} !"
    ]


def test_without_go_the_e2e_tests_are_skipped_with_the_same_reason(tmp_path: Path) -> None:
    result = _pytest(_without_go(tmp_path))

    assert result.returncode == 0
    reasons = [line for line in result.stdout.splitlines() if "Go toolchain" in line]
    assert reasons[0] == f"E2E SKIPPED: e2e tests cannot run: {MISSING_GO}"
    assert len(reasons) == 2  # the loud line, and all skips folded into one -ra line
    assert reasons[1].startswith("SKIPPED [3] tests/conftest.py:")


def test_a_test_kubeconfig_that_does_not_exist_stops_a_required_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLBACK_")}
    missing = tmp_path / "nowhere.kubeconfig"
    env.update(ROLLBACK_E2E="require", ROLLBACK_TEST_KUBECONFIG=str(missing))

    result = _pytest(env)

    assert result.returncode == 3
    lines = [line for line in (result.stdout + result.stderr).splitlines() if str(missing) in line]
    assert lines == [
        "! _pytest.outcomes.Exit: ROLLBACK_E2E=require but the e2e tests cannot run: "
        f"ROLLBACK_TEST_KUBECONFIG={missing} is not a file !"
    ]
