"""The change ledger: which content gets a new version, which old versions go.

Objects and ControllerRevisions are plain API JSON; the ledger entries are the ones
``rollback execute configmap/NAME --to VERSION`` reads (controller.actions.config).
"""

from __future__ import annotations

from typing import Any

import pytest

from controller.actions.config import content_digest, ledger_entry, prior_from_ledger
from controller.runtime.ledger import flag_ledger_entry, plan_ledger, recorded


def configmap(name: str = "web-config", **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}"},
        "data": dict(data),
    }


def flag(default: str = "on") -> dict[str, Any]:
    return {
        "apiVersion": "core.openfeature.dev/v1beta1",
        "kind": "FeatureFlag",
        "metadata": {"name": "shop-flags", "namespace": "shop", "uid": "uid-ff"},
        "spec": {
            "flagSpec": {"flags": {"new-checkout": {"state": "ENABLED", "defaultVariant": default}}}
        },
    }


def history(*contents: dict[str, str], name: str = "web-config") -> list[dict[str, Any]]:
    """Ledger revisions 1..n for these contents, listed as the API returns them."""
    out = []
    for version, data in enumerate(contents, start=1):
        entry = ledger_entry(configmap(name, **data), version)
        entry["metadata"]["resourceVersion"] = str(100 + version)
        out.append(entry)
    return out


def versions(entries: list[dict[str, Any]]) -> list[int]:
    return [e["revision"] for e in entries]


def test_the_first_sight_of_a_configmap_is_version_1() -> None:
    plan = plan_ledger([configmap(mode="fast")], [])
    assert versions(list(plan.create)) == [1]
    entry = plan.create[0]
    assert entry["metadata"]["labels"] == {"rollback.io/configmap": "web-config"}
    assert entry["metadata"]["ownerReferences"][0]["uid"] == "uid-web-config"
    assert entry["metadata"]["annotations"]["rollback.io/digest"] == content_digest(
        {"mode": "fast"}
    )
    # What execute reads back is exactly the content recorded.
    assert prior_from_ledger(list(plan.create), "web-config", 1).data == {"mode": "fast"}


def test_content_already_recorded_as_the_newest_version_writes_nothing() -> None:
    assert plan_ledger([configmap(mode="fast")], history({"mode": "fast"})).empty


def test_a_change_is_the_next_version() -> None:
    plan = plan_ledger([configmap(mode="slow")], history({"mode": "fast"}))
    assert versions(list(plan.create)) == [2]
    assert plan.delete == ()


def test_going_back_to_an_earlier_content_is_still_a_new_version() -> None:
    # Versions are never reused: what a person wrote down as "version 2" stays that content.
    plan = plan_ledger([configmap(mode="fast")], history({"mode": "fast"}, {"mode": "slow"}))
    assert versions(list(plan.create)) == [3]


@pytest.mark.parametrize(
    ("recorded_versions", "max_versions", "created", "pruned"),
    [
        (3, 3, [4], ["web-config-cfg-1"]),
        (5, 3, [6], ["web-config-cfg-1", "web-config-cfg-2", "web-config-cfg-3"]),
        (2, 3, [3], []),
        (1, 1, [2], ["web-config-cfg-1"]),
    ],
)
def test_at_most_max_versions_are_kept_oldest_pruned_first(
    recorded_versions: int, max_versions: int, created: list[int], pruned: list[str]
) -> None:
    old = history(*({"mode": str(i)} for i in range(recorded_versions)))
    plan = plan_ledger([configmap(mode="new")], old, max_versions=max_versions)
    assert versions(list(plan.create)) == created
    assert [d.name for d in plan.delete] == pruned
    assert all(d.resource_version for d in plan.delete)  # deleted with a precondition


def test_an_unchanged_object_over_the_limit_is_pruned_too() -> None:
    old = history({"mode": "a"}, {"mode": "b"}, {"mode": "c"})
    plan = plan_ledger([configmap(mode="c")], old, max_versions=2)
    assert plan.create == ()
    assert [d.name for d in plan.delete] == ["web-config-cfg-1"]


def test_objects_are_kept_apart_by_name() -> None:
    old = history({"mode": "fast"}, name="other")
    plan = plan_ledger([configmap(mode="fast")], old)
    assert versions(list(plan.create)) == [1]


def test_feature_flags_are_recorded_with_their_spec() -> None:
    first = plan_ledger([flag("on")], [])
    (entry,) = first.create
    assert entry["metadata"]["name"] == "shop-flags-ff-1"
    assert entry["metadata"]["labels"] == {"rollback.io/featureflag": "shop-flags"}
    assert entry["data"] == {"spec": flag("on")["spec"]}
    assert plan_ledger([flag("on")], [entry]).empty
    assert versions(list(plan_ledger([flag("off")], [entry]).create)) == [2]


def test_a_revision_without_a_digest_annotation_is_compared_by_its_data() -> None:
    entry = ledger_entry(configmap(mode="fast"), 1)
    del entry["metadata"]["annotations"]["rollback.io/digest"]
    assert plan_ledger([configmap(mode="fast")], [entry]).empty
    ff = flag_ledger_entry(flag("on"), 1)
    del ff["metadata"]["annotations"]["rollback.io/digest"]
    assert plan_ledger([flag("on")], [ff]).empty


@pytest.mark.parametrize(
    ("obj", "kept"),
    [
        (configmap(), True),
        (configmap("kube-root-ca.crt"), False),
        (
            {**configmap(), "metadata": {"name": "x", "labels": {"rollback.io/ledger": "false"}}},
            False,
        ),
        (flag(), True),
    ],
)
def test_what_the_ledger_keeps_history_of(obj: dict[str, Any], kept: bool) -> None:
    assert recorded(obj) is kept


def test_other_kinds_are_never_recorded() -> None:
    secret = {
        "kind": "Secret",
        "metadata": {"name": "token", "namespace": "shop"},
        "data": {"k": "djE="},
    }
    assert plan_ledger([secret], []).empty
