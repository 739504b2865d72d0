"""`python hack/localcluster.py up --background | env | down`, as the README shows it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import localcluster
import pytest

from tests.cluster import Cluster

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.kwok]


def launcher(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "hack/localcluster.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_background_control_plane_can_be_used_and_stopped_by_hand(
    cluster: Cluster, tmp_path: Path
) -> None:
    tag = f"cli-test-{os.getpid()}"
    env = {
        **os.environ,
        "ROLLBACK_CLUSTER_STATE": str(tmp_path / "state.json"),
        "ROLLBACK_CP_TAG": tag,
    }
    try:
        up = launcher(env, "up", "--background")
        assert up.returncode == 0, up.stderr
        assert "control plane up in" in up.stderr

        again = launcher(env, "up", "--background")
        assert again.returncode == 1
        assert "already running" in again.stderr

        exported = launcher(env, "env")
        assert exported.returncode == 0
        assert exported.stdout == up.stdout
        kubeconfig = exported.stdout.strip().removeprefix("export KUBECONFIG=")
        nodes = subprocess.run(
            [str(Path(sys.executable).parent / "kubectl"), "get", "nodes", "-o", "name"],
            env={**env, "KUBECONFIG": kubeconfig},
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert nodes.stdout == "node/kwok-node-0\n"
        assert len(localcluster.running(tag)) == 5
    finally:
        down = launcher(env, "down")

    assert down.returncode == 0, down.stderr
    assert localcluster.running(tag) == []
    assert not Path(kubeconfig).exists()
    assert launcher(env, "env").returncode == 1
