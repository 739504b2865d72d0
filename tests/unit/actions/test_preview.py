"""The preview assess shows is the plan execute builds: same objects, same hash."""

from __future__ import annotations

import json

from controller.actions.config import ledger_entry
from controller.actions.preview import plan_for_recommendation, preview_lines
from controller.actions.workload import plan_workload_rollback
from controller.model import ActionKind, ObjectRef, Recommendation
from controller.view import ClusterView

from .helpers import NOW, fixture, items, revisions_of


def view_of(*objects: dict) -> ClusterView:  # type: ignore[type-arg]
    view = ClusterView(captured_at=NOW)
    view.extend(objects)
    return view


def test_a_rollback_preview_has_the_hash_of_executes_fresh_plan() -> None:
    # Given the assessment's view and, separately, what execute reads (a GET and a LIST)
    deployment, replicasets = fixture("deployment-web"), items("replicasets-web")
    view = view_of(deployment, *replicasets, *items("controllerrevisions-db"))
    rec = Recommendation(
        ActionKind.ROLLBACK, ObjectRef("Deployment", "fixtures", "web"), "roll back", to_revision=1
    )
    preview = plan_for_recommendation(rec, view, NOW)
    fresh = plan_workload_rollback(deployment, revisions_of(deployment, replicasets), 1)
    # Then both plans are the same plan
    assert preview is not None
    assert preview.hash == fresh.hash
    lines = preview_lines(preview)
    assert lines[0] == "roll back deployment/web from revision 3 to revision 1"
    assert lines[-1] == f"plan hash: {fresh.hash}"
    assert "precondition: deployment/web still at resourceVersion 583" in lines


def test_a_flag_and_a_ledger_config_revert_are_previewed_from_the_view() -> None:
    flags = {
        "apiVersion": "core.openfeature.dev/v1beta1",
        "kind": "FeatureFlag",
        "metadata": {"name": "shop-flags", "namespace": "shop", "resourceVersion": "9"},
        "spec": {
            "flagSpec": {
                "flags": {
                    "x": {
                        "state": "ENABLED",
                        "variants": {"on": True, "off": False},
                        "defaultVariant": "on",
                    }
                }
            }
        },
    }
    old = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "shop", "resourceVersion": "3", "uid": "u"},
        "data": {"A": "1"},
    }
    now_cm = json.loads(json.dumps(old))
    now_cm["data"] = {"A": "2"}
    view = view_of(flags, now_cm, ledger_entry(old, 1))
    flag = plan_for_recommendation(
        Recommendation(
            ActionKind.DISABLE_FLAG,
            ObjectRef("FeatureFlag", "shop", "shop-flags"),
            "disable",
            flag="x",
        ),
        view,
        NOW,
    )
    config = plan_for_recommendation(
        Recommendation(
            ActionKind.REVERT_CONFIG,
            ObjectRef("ConfigMap", "shop", "cfg"),
            "revert",
            to_version="1",
        ),
        view,
        NOW,
    )
    assert flag is not None and flag.to_label == "x defaultVariant=off"
    assert config is not None and config.summary == "revert configmap/cfg to ledger version 1"


def test_nothing_to_preview_for_no_action_or_missing_inputs() -> None:
    view = view_of(fixture("deployment-web"))
    for rec in (
        Recommendation(ActionKind.INVESTIGATE, None, "investigate"),
        Recommendation(ActionKind.ROLLBACK, ObjectRef("Deployment", "fixtures", "gone"), "x"),
        Recommendation(
            ActionKind.ROLLBACK, ObjectRef("Deployment", "fixtures", "web"), "x", to_revision=1
        ),  # its ReplicaSets are not in this view
        Recommendation(
            ActionKind.REVERT_CONFIG,
            ObjectRef("ConfigMap", "fixtures", "c"),
            "x",
            to_version="git:HEAD~1:cm.yaml",
        ),
    ):
        assert plan_for_recommendation(rec, view, NOW) is None
