"""Test wiring shared by every tier: the e2e cluster, a namespace per test, the e2e gate.

Fixtures
    ``cluster`` (session): a real Kubernetes API server.  By default the local control
        plane from ``hack/localcluster.py`` (etcd, kube-apiserver, kube-controller-manager,
        kube-scheduler and kwok, built from Go modules); with ``ROLLBACK_TEST_KUBECONFIG``
        set, that cluster instead (this is how kind users run the suite).
    ``namespace`` (function): a fresh, uniquely named namespace, deleted afterwards.

Every test marked ``e2e`` gets the cluster, so a missing control plane is handled in
one place: with ``ROLLBACK_E2E=require`` (the README's test command and CI) the
session stops with one line saying what is missing; otherwise the e2e tests are
skipped with that same line as the reason.  Tests marked ``kwok`` need the kwok stages
(broken and crash-looping pods, node states) and are skipped on other clusters.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "hack"):  # `tests.e2e.steps` and `localcluster` import from anywhere
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import localcluster  # noqa: E402  (needs the path above)

from tests.cluster import Cluster  # noqa: E402

EXTERNAL_ENV = "ROLLBACK_TEST_KUBECONFIG"
REQUIRE_ENV = "ROLLBACK_E2E"


def _required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip().lower() == "require"


class _Gate:
    """Why e2e tests cannot run, decided once per session (None: they can)."""

    problem: str | None = None
    binaries: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "kwok: relies on the local control plane's kwok stages (broken/crashloop pods, "
        "node states); skipped on a ROLLBACK_TEST_KUBECONFIG cluster",
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the control plane (if needed) before any test runs, outside test timeouts.

    A cold build takes 10-30 minutes, far beyond one test's timeout, so it happens
    here, and only when e2e tests were selected.
    """
    if session.config.option.collectonly or os.environ.get(EXTERNAL_ENV):
        return
    if not any(item.get_closest_marker("e2e") for item in session.items):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def progress(line: str) -> None:
        if reporter is not None and line.startswith("control plane:"):
            reporter.write_line(line)

    try:
        _Gate.binaries = localcluster.ensure_binaries(progress=progress)
    except localcluster.Unavailable as err:
        _gate_closed(str(err))


def _gate_closed(problem: str) -> None:
    """Record why e2e tests cannot run; with ROLLBACK_E2E=require, stop the session."""
    _Gate.problem = f"e2e tests cannot run: {problem}"
    if _required():
        pytest.exit(f"ROLLBACK_E2E=require but the {_Gate.problem}", returncode=3)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Report every gate skip at one location, so ``-ra`` folds them into one line."""
    report = yield
    if (
        _Gate.problem
        and report.skipped
        and isinstance(report.longrepr, tuple)
        and report.longrepr[2].endswith(_Gate.problem)
    ):
        report.longrepr = (__file__, _gate_closed.__code__.co_firstlineno, _Gate.problem)
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _Gate.problem and not _required():
        terminalreporter.write_line(f"E2E SKIPPED: {_Gate.problem}", yellow=True, bold=True)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The cluster under test, started once per session and torn down at its end."""
    external = os.environ.get(EXTERNAL_ENV)
    if external:
        yield _external_cluster(external)
        return
    if _Gate.problem is None and _Gate.binaries is None:
        # Reached without collection_finish deciding (e.g. a non-e2e test asked for it).
        try:
            _Gate.binaries = localcluster.ensure_binaries(build=False)
        except localcluster.Unavailable as err:
            _gate_closed(str(err))
    if _Gate.problem is not None:
        pytest.skip(_Gate.problem)
    assert _Gate.binaries is not None
    try:
        local = localcluster.start(_Gate.binaries, nodes=2)
    except localcluster.Unavailable as err:
        _gate_closed(str(err))
        pytest.skip(str(_Gate.problem))
    try:
        yield Cluster(
            kubeconfig=str(local.kubeconfig),
            server=local.server,
            simulated=True,
            env={**os.environ, "KUBECONFIG": str(local.kubeconfig)},
            local=local,
        )
    finally:
        local.stop()


def _external_cluster(path: str) -> Cluster:
    """ROLLBACK_TEST_KUBECONFIG: check it answers, so a typo fails once and clearly."""
    from kubernetes import client, config

    if not Path(path).is_file():
        _gate_closed(f"{EXTERNAL_ENV}={path} is not a file")
        pytest.skip(str(_Gate.problem))
    try:
        api = config.new_client_from_config(config_file=path)
        client.VersionApi(api).get_code(_request_timeout=10)
    except Exception as err:  # any failure here means the same thing: no cluster
        _gate_closed(f"{EXTERNAL_ENV}={path} does not answer: {type(err).__name__}: {err}")
        pytest.skip(str(_Gate.problem))
    server = str(api.configuration.host)
    return Cluster(
        kubeconfig=path,
        server=server,
        simulated=False,
        env={**os.environ, "KUBECONFIG": path},
        _api=api,
    )


@pytest.fixture(autouse=True)
def _e2e_gate(request: pytest.FixtureRequest) -> None:
    """Every e2e test gets the cluster (or its one-line skip); kwok tests need kwok."""
    if request.node.get_closest_marker("e2e") is None:
        return
    current: Cluster = request.getfixturevalue("cluster")
    if request.node.get_closest_marker("kwok") and not current.simulated:
        pytest.skip("needs the kwok stages of the local control plane")


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test; deleted afterwards without waiting."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{slug}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(cluster.api())
    core.create_namespace({"metadata": {"name": name, "labels": {"rollback.test/e2e": "true"}}})
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name, propagation_policy="Background")
        except ApiException as err:
            if err.status != 404:
                raise
