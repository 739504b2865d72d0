"""Workload rollback plans, on objects captured from a real API server.

The ground truth is the real ``kubectl rollout undo`` run on the same objects
(fixtures/*-after-kubectl-undo*.json): our write must land the same pod
template, keep what kubectl drops, and carry a resourceVersion precondition.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from controller.actions.plan import AUDIT_ANNOTATION, STAMP, Stamp, render_body
from controller.actions.workload import plan_workload_rollback
from controller.errors import UserInputError
from controller.model import ActionKind

from .helpers import NOW, apply_json_patch, fixture, items, revisions_of

CASES = [
    # (kind, workload fixture, history fixture, to_revision, kubectl's result)
    (
        "Deployment",
        "deployment-web",
        "replicasets-web",
        1,
        "deployment-web-after-kubectl-undo-to-1",
    ),
    (
        "StatefulSet",
        "statefulset-db",
        "controllerrevisions-db",
        None,
        "statefulset-db-after-kubectl-undo",
    ),
    (
        "DaemonSet",
        "daemonset-agent",
        "controllerrevisions-agent",
        None,
        "daemonset-agent-after-kubectl-undo",
    ),
]


def _plan(workload: str, history: str, to_revision: int | None, **kw: Any):  # type: ignore[no-untyped-def]
    obj = fixture(workload)
    return obj, plan_workload_rollback(obj, revisions_of(obj, items(history)), to_revision, **kw)


@pytest.mark.parametrize(("kind", "workload", "history", "to_revision", "kubectl_result"), CASES)
def test_the_written_template_is_the_one_kubectl_rollout_undo_writes(
    kind: str, workload: str, history: str, to_revision: int | None, kubectl_result: str
) -> None:
    # Given a workload whose history was built on a real API server
    obj, plan = _plan(workload, history, to_revision)
    # When our plan's patch is applied to the object we planned from
    patched = apply_json_patch(obj, plan.steps[0].body)
    # Then the pod template equals the one `kubectl rollout undo` produced on the same object
    assert patched["spec"]["template"] == fixture(kubectl_result)["spec"]["template"]
    assert plan.action is ActionKind.ROLLBACK
    assert plan.target.kind == kind


@pytest.mark.parametrize(("kind", "workload", "history", "to_revision", "kubectl_result"), CASES)
def test_every_write_carries_the_resource_version_it_was_planned_from(
    kind: str, workload: str, history: str, to_revision: int | None, kubectl_result: str
) -> None:
    obj, plan = _plan(workload, history, to_revision)
    (step,) = plan.steps
    rv = obj["metadata"]["resourceVersion"]
    assert step.resource_version == rv
    assert step.body[0] == {"op": "replace", "path": "/metadata/resourceVersion", "value": rv}
    assert plan.preconditions == (
        f"{kind.lower()}/{obj['metadata']['name']} still at resourceVersion {rv}",
    )


def test_deployment_annotations_follow_kubectl_but_keep_the_ones_added_after_the_target() -> None:
    # Given web at revision 3, where team.example/oncall was added after revision 1
    obj, plan = _plan("deployment-web", "replicasets-web", 1)
    kubectl = fixture("deployment-web-after-kubectl-undo-to-1")["metadata"]["annotations"]
    # When the patch is applied
    ours = apply_json_patch(obj, plan.steps[0].body)["metadata"]["annotations"]
    # Then kubectl dropped the later annotation, we keep it
    assert "team.example/oncall" not in kubectl
    assert ours["team.example/oncall"] == "alice"
    # And every annotation kubectl set is set the same way, except the revision number,
    # which the Deployment controller bumps after the write
    for key, value in kubectl.items():
        if key != "deployment.kubernetes.io/revision":
            assert ours[key] == value, key
    assert ours["deployment.kubernetes.io/revision"] == "3"
    # And the audit annotation is a placeholder filled at apply time
    assert ours[AUDIT_ANNOTATION] == STAMP
    assert (
        "annotation team.example/oncall: kept (added after revision 1; kubectl would drop it)"
        in plan.changes
    )
    assert "annotation kubernetes.io/change-cause: 'release 3.0' -> 'release 1.0'" in plan.changes


def test_the_plan_says_what_changes_in_words() -> None:
    _, plan = _plan("deployment-web", "replicasets-web", 1)
    assert plan.from_label == "revision 3 (registry.example/web:3.0-broken)"
    assert plan.to_label == "revision 1 (registry.example/web:1.0)"
    assert plan.summary == "roll back deployment/web from revision 3 to revision 1"
    assert "image web: registry.example/web:3.0-broken -> 1.0" in plan.changes
    assert "env web: removed FEATURE_X" in plan.changes
    assert (plan.from_revision, plan.to_revision) == (3, 1)


def test_without_a_revision_the_target_is_the_previous_one() -> None:
    _, plan = _plan("deployment-web", "replicasets-web", None)
    assert plan.to_revision == 2


def test_already_at_the_target_is_a_noop_with_no_write() -> None:
    _, plan = _plan("deployment-web", "replicasets-web", 3)
    assert plan.noop == "deployment/web already runs the template of revision 3"
    assert plan.steps == ()


def test_a_target_whose_template_equals_the_current_one_is_a_noop() -> None:
    # Given revision 1's template is put back by hand (kubectl set image), so the
    # Deployment runs it again while its ReplicaSet still says revision 1
    obj = fixture("deployment-web")
    rs = items("replicasets-web")
    obj["spec"]["template"] = copy.deepcopy(
        next(
            r
            for r in rs
            if r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
        )["spec"]["template"]
    )
    del obj["spec"]["template"]["metadata"]["labels"]["pod-template-hash"]
    plan = plan_workload_rollback(obj, revisions_of(obj, rs), 1)
    assert plan.noop
    assert plan.steps == ()


@pytest.mark.parametrize(
    ("to_revision", "drop", "message"),
    [
        (
            7,
            None,
            "deployment/web has no revision 7 (it does not exist yet); known revisions: 1, 2, 3",
        ),
        (
            1,
            "1",
            "deployment/web has no revision 1 (it was pruned by revisionHistoryLimit); "
            "known revisions: 2, 3",
        ),
        (0, None, "revision must be a positive number, not 0"),
    ],
)
def test_unknown_and_pruned_revisions_are_one_clear_error(
    to_revision: int, drop: str | None, message: str
) -> None:
    obj = fixture("deployment-web")
    rs = [
        r
        for r in items("replicasets-web")
        if r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] != drop
    ]
    with pytest.raises(UserInputError) as err:
        plan_workload_rollback(obj, revisions_of(obj, rs), to_revision)
    assert str(err.value) == message


def test_a_revision_renumbered_by_an_earlier_rollback_names_its_new_number() -> None:
    # Given revision 1's ReplicaSet was re-adopted by a rollback and is now revision 4
    obj = fixture("deployment-web")
    rs = items("replicasets-web")
    for r in rs:
        if r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1":
            r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "4"
            r["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] = "1"
    with pytest.raises(
        UserInputError, match="revision 1 was rolled back to before and is now revision 4"
    ):
        plan_workload_rollback(obj, revisions_of(obj, rs), 1)


def test_a_paused_deployment_is_marked_and_resume_adds_the_unpause_to_the_same_patch() -> None:
    obj = fixture("deployment-web")
    obj["spec"]["paused"] = True
    revisions = revisions_of(obj, items("replicasets-web"))
    refused = plan_workload_rollback(obj, revisions, 1)
    resumed = plan_workload_rollback(obj, revisions, 1, resume=True)
    assert refused.paused
    assert any("paused" in w for w in refused.warnings)
    assert not resumed.paused
    assert apply_json_patch(obj, resumed.steps[0].body)["spec"]["paused"] is False
    assert refused.hash != resumed.hash


def test_a_target_that_ran_with_very_different_replicas_is_warned_about() -> None:
    obj = fixture("deployment-web")
    obj["spec"]["replicas"] = 10
    plan = plan_workload_rollback(obj, revisions_of(obj, items("replicasets-web")), 1)
    assert (
        "revision 1 ran with 2 replicas, the Deployment now asks for 10; "
        "replicas are left as they are" in plan.warnings
    )
    assert all(op["path"] != "/spec/replicas" for op in plan.steps[0].body)


def test_the_hash_is_stable_and_moves_with_the_write_or_its_precondition() -> None:
    _, plan = _plan("deployment-web", "replicasets-web", 1)
    _, again = _plan("deployment-web", "replicasets-web", 1)
    _, other_target = _plan("deployment-web", "replicasets-web", 2)
    moved = fixture("deployment-web")
    moved["metadata"]["resourceVersion"] = "999"
    moved_plan = plan_workload_rollback(moved, revisions_of(moved, items("replicasets-web")), 1)
    assert plan.hash == again.hash
    assert plan.hash.startswith("sha256:") and len(plan.hash) == len("sha256:") + 16
    assert len({plan.hash, other_target.hash, moved_plan.hash}) == 3


def test_who_and_when_are_filled_at_apply_time_without_moving_the_hash() -> None:
    obj, plan = _plan("deployment-web", "replicasets-web", 1)
    before = plan.hash
    first = render_body(
        plan.steps[0].body, plan, Stamp("alice", NOW, why="bad image", incident="INC-1")
    )
    second = render_body(plan.steps[0].body, plan, Stamp("bob", NOW + timedelta(hours=1)))
    assert plan.hash == before
    stamp = apply_json_patch(obj, first)["metadata"]["annotations"][AUDIT_ANNOTATION]
    assert stamp == (
        '{"what":"roll back deployment/web from revision 3 to revision 1",'
        '"from":"revision 3 (registry.example/web:3.0-broken)",'
        '"to":"revision 1 (registry.example/web:1.0)",'
        '"who":"alice","when":"2026-12-03T20:00:00Z","why":"bad image","incident":"INC-1",'
        f'"planHash":"{before}"}}'
    )
    assert first != second


def test_statefulset_and_daemonset_get_the_audit_annotation_beside_their_own() -> None:
    obj, plan = _plan("statefulset-db", "controllerrevisions-db", None)
    patched = apply_json_patch(obj, plan.steps[0].body)
    assert patched["metadata"]["annotations"][AUDIT_ANNOTATION] == STAMP
    assert set(patched["metadata"]["annotations"]) == {
        AUDIT_ANNOTATION,
        *obj["metadata"]["annotations"],
    }
    assert plan.from_label == "revision 2 (registry.example/db:15.0)"
    assert plan.to_label == "revision 1 (registry.example/db:14.1)"


def test_objects_other_than_workloads_cannot_be_rolled_back() -> None:
    with pytest.raises(UserInputError, match="only Deployments, StatefulSets and DaemonSets"):
        plan_workload_rollback({"kind": "ConfigMap", "metadata": {"name": "x"}}, (), 1)
