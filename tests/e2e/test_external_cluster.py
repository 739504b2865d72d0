"""The suite runs unchanged against any cluster given by ROLLBACK_TEST_KUBECONFIG (kind's way)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster import Cluster

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.kwok]  # kwok: it borrows the local cluster


def test_e2e_tests_run_against_a_given_kubeconfig_and_kwok_ones_are_skipped(
    cluster: Cluster,
) -> None:
    # Given the session's cluster, offered as if it were someone else's (a kind cluster)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLBACK_")}
    env.update(ROLLBACK_TEST_KUBECONFIG=cluster.kubeconfig, ROLLBACK_E2E="require")

    # When a test session runs e2e tests, some of them needing kwok
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "tests/e2e/test_realism.py::test_each_image_of_a_deployment_gets_a_replicaset_revision",
            "tests/e2e/test_test_cluster.py::test_rbac_is_enforced_for_a_service_account",
            "tests/e2e/test_test_cluster.py::test_a_labelled_node_goes_notready_and_recovers",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    # Then it used that cluster, ran the portable tests and skipped the kwok one
    assert result.returncode == 0, result.stdout[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("2 passed, 1 skipped"), summary
    assert "needs the kwok stages of the local control plane" in result.stdout
