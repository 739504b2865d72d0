"""Which ledger version is a ConfigMap's *prior* content, when the ledger holds the live one too.

The in-cluster controller records every content a ConfigMap has (the current one
included); ``rollback execute`` records what a revert overwrites.  Either way the
version to restore is the newest one that differs from what is live.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from controller.model import ObjectRef
from controller.sources.config import known_config_versions, prior_ledger_version
from controller.view import ClusterView

CFG = ObjectRef("ConfigMap", "shop", "web-config")


def configmap(mode: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "web-config", "namespace": "shop"},
        "data": {"mode": mode},
    }


def version(n: int, mode: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": f"web-config-cfg-{n}",
            "namespace": "shop",
            "labels": {"rollback.io/configmap": "web-config"},
        },
        "revision": n,
        "data": {"data": {"mode": mode}, "binaryData": {}},
    }


def view(live: str | None, *modes: str) -> ClusterView:
    v = ClusterView(captured_at=datetime(2026, 12, 3, tzinfo=UTC))
    if live is not None:
        v.add(configmap(live))
    for n, mode in enumerate(modes, start=1):
        v.add(version(n, mode))
    return v


@pytest.mark.parametrize(
    ("live", "ledger", "prior"),
    [
        # good, then bad (the controller recorded both): restore the good one
        ("bad", ("good", "bad"), 1),
        # a change the ledger has not recorded yet: the newest recorded one is the prior
        ("worse", ("good", "bad"), 2),
        # reverted to an older content: the prior is what was live just before
        ("good", ("good", "bad"), 2),
        # only the live content recorded: nothing to go back to
        ("good", ("good",), None),
        # the ConfigMap is not in the view (deleted): the newest recorded one
        (None, ("good", "bad"), 2),
    ],
)
def test_the_prior_version_is_the_newest_unlike_the_live_content(
    live: str | None, ledger: tuple[str, ...], prior: int | None
) -> None:
    assert prior_ledger_version(view(live, *ledger), CFG) == prior
    expected = {} if prior is None else {CFG: str(prior)}
    assert known_config_versions(view(live, *ledger)) == expected
