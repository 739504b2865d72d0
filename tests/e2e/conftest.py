"""e2e tier: everything under tests/e2e/ runs against a real API server.

Tests here are marked ``e2e`` automatically (marking them explicitly too does no
harm), so the cluster gate in tests/conftest.py applies to each of them.  Helpers
for Given/When/Then steps live in :mod:`tests.e2e.steps`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import Cluster
from tests.e2e import steps

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def kwok_node(cluster: Cluster) -> Iterator[Callable[..., dict[str, Any]]]:
    """A factory for extra fake nodes, deleted after the test.

    ``kwok_node("n1", labels={...}, taints=[...])`` creates a kwok-managed node and
    waits until it is Ready.  Use your own node when a test breaks one (label
    ``rollback.test/node-state=NotReady``): the shared nodes serve every test.
    Only on the local control plane (mark such tests ``kwok``).
    """
    if not cluster.simulated:
        pytest.skip("extra fake nodes need the local control plane's kwok")
    created: list[str] = []

    def make(
        name: str,
        labels: dict[str, str] | None = None,
        taints: list[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        node = steps.given_kwok_node(cluster.api(), name, labels=labels, taints=taints)
        created.append(name)
        return node

    yield make
    for name in created:
        steps.delete_node(cluster.api(), name)
