"""The handle e2e tests get from the ``cluster`` fixture (see tests/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubernetes.client import ApiClient
    from localcluster import LocalCluster


@dataclass
class Cluster:
    """What a test needs to reach the cluster under test."""

    kubeconfig: str  # path of an admin kubeconfig
    server: str  # https://127.0.0.1:PORT
    simulated: bool  # True: the local control plane, whose pods and nodes kwok plays
    env: dict[str, str] = field(repr=False)  # os.environ plus KUBECONFIG, for subprocesses
    local: LocalCluster | None = field(default=None, repr=False)
    _api: Any = field(default=None, repr=False)

    def api(self) -> ApiClient:
        """A kubernetes ApiClient for Given steps (shared; creating one costs ~0.2 s)."""
        if self._api is None:
            from kubernetes import config

            self._api = config.new_client_from_config(config_file=self.kubeconfig)
        return self._api
