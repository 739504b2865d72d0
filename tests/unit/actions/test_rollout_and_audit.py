"""Rollout progress, the Lease lock's shape, the audit records and the GitOps suspension plans."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.actions.apply import lease_body, lease_expiry, lease_name
from controller.actions.audit import (
    AuditEntry,
    Outcome,
    append_audit_line,
    default_audit_path,
    event_body,
    read_recent_actions,
)
from controller.actions.gitops import SUSPENDED_ANNOTATION, plan_resume, plan_suspend
from controller.actions.plan import AUDIT_ANNOTATION, STAMP
from controller.actions.rollout import Phase, rollout_progress
from controller.errors import UserInputError
from controller.model import ObjectRef

from .helpers import NOW, apply_json_patch, fixture

WEB = ObjectRef("Deployment", "shop", "web")


# --- rollout progress ----------------------------------------------------------------------


def with_status(name: str, generation: int | None = None, **status: Any) -> dict[str, Any]:
    obj = fixture(name)
    obj["status"].update(status)
    if generation is not None:
        obj["metadata"]["generation"] = generation
    return obj


@pytest.mark.parametrize(
    ("obj", "written", "phase", "line"),
    [
        # Captured after the rollout finished: done.
        (
            fixture("deployment-web-after-kubectl-undo-to-1"),
            7,
            Phase.DONE,
            "2/2 updated, 2/2 ready, 2/2 available: rollout complete",
        ),
        # The controller has not seen our write yet: whatever the counts say, wait.
        (
            fixture("deployment-web-after-kubectl-undo-to-1"),
            8,
            Phase.WAITING,
            "2/2 updated, 2/2 ready, 2/2 available: "
            "waiting for the controller to observe the change",
        ),
        # Half the pods updated.
        (
            with_status("deployment-web-after-kubectl-undo-to-1", updatedReplicas=1, replicas=3),
            7,
            Phase.WAITING,
            "1/2 updated, 2/2 ready, 2/2 available",
        ),
        # All updated, an old pod still terminating.
        (
            with_status("deployment-web-after-kubectl-undo-to-1", replicas=3),
            7,
            Phase.WAITING,
            "2/2 updated, 2/2 ready, 2/2 available: 1 old replicas pending termination",
        ),
        # The progress deadline passed: failed, at once.
        (
            with_status(
                "deployment-web-after-kubectl-undo-to-1",
                conditions=[
                    {
                        "type": "Progressing",
                        "status": "False",
                        "reason": "ProgressDeadlineExceeded",
                        "message": 'ReplicaSet "web-5466d65b79" has timed out progressing.',
                    }
                ],
            ),
            7,
            Phase.FAILED,
            "2/2 updated, 2/2 ready, 2/2 available: progress deadline exceeded "
            '(ReplicaSet "web-5466d65b79" has timed out progressing.)',
        ),
        (fixture("statefulset-db-after-kubectl-undo"), 3, Phase.DONE, None),
        (
            with_status("statefulset-db-after-kubectl-undo", currentRevision="db-5bf76cbdb9"),
            3,
            Phase.WAITING,
            "2/2 updated, 2/2 ready, 2/2 available: pods moving to db-579585c79c",
        ),
        (fixture("daemonset-agent-after-kubectl-undo"), 3, Phase.DONE, None),
        (
            with_status("daemonset-agent-after-kubectl-undo", numberAvailable=0),
            3,
            Phase.WAITING,
            "1/1 updated, 1/1 ready, 0/1 available",
        ),
    ],
)
def test_rollout_progress_follows_kubectl_rollout_status(
    obj: dict[str, Any], written: int, phase: Phase, line: str | None
) -> None:
    progress = rollout_progress(obj, written)
    assert progress.phase is phase
    if line is not None:
        assert progress.line == line


# --- the lock -----------------------------------------------------------------------------


def test_the_lease_names_the_target_holder_and_expiry() -> None:
    body = lease_body(WEB, "alice (laptop pid 7)", timedelta(minutes=6), NOW, "sha256:ab")
    assert body["metadata"]["name"] == "rollback-lock-deployment-web"
    assert body["metadata"]["labels"]["rollback.io/lock-for"] == "deployment.web"
    assert body["spec"] == {
        "holderIdentity": "alice (laptop pid 7)",
        "leaseDurationSeconds": 360,
        "acquireTime": "2026-12-03T20:00:00.000000Z",
        "renewTime": "2026-12-03T20:00:00.000000Z",
    }
    assert lease_expiry(body) == NOW + timedelta(minutes=6)


def test_a_long_target_name_keeps_a_unique_valid_lease_name() -> None:
    long_a = lease_name(ObjectRef("Deployment", "ns", "a" * 250))
    long_b = lease_name(ObjectRef("Deployment", "ns", "a" * 249 + "b"))
    assert len(long_a) <= 253 and len(long_b) <= 253
    assert long_a != long_b


# --- audit --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HOME": "/home/al"}, "/home/al/.local/state/rollback-controller/audit.jsonl"),
        (
            {"HOME": "/home/al", "XDG_STATE_HOME": "/var/state"},
            "/var/state/rollback-controller/audit.jsonl",
        ),
        ({"HOME": "/home/al", "ROLLBACK_AUDIT_LOG": "/tmp/a.jsonl"}, "/tmp/a.jsonl"),
    ],
)
def test_the_audit_log_lives_in_the_users_state_directory(
    env: dict[str, str], expected: str
) -> None:
    assert default_audit_path(env) == Path(expected)


def test_audit_lines_append_and_feed_the_rate_limit(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit.jsonl"
    for minutes, outcome, unattended in (
        (90, Outcome.EXECUTED, True),  # outside the hour
        (30, Outcome.EXECUTED, True),
        (20, Outcome.EXECUTED, False),  # a person confirmed: not an automatic action
        (10, Outcome.REFUSED, True),
    ):
        entry = AuditEntry(
            at=NOW - timedelta(minutes=minutes),
            outcome=outcome,
            target=WEB,
            who="alice",
            message="m",
            unattended=unattended,
            labels={"app": "web"},
        )
        append_audit_line(path, entry)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["outcome"] for line in lines] == ["executed", "executed", "executed", "refused"]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    recent = read_recent_actions(path, NOW, timedelta(hours=1))
    assert [(r.at, r.namespace, dict(r.labels)) for r in recent] == [
        (NOW - timedelta(minutes=30), "shop", {"app": "web"})
    ]


def test_an_unwritable_audit_log_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    entry = AuditEntry(at=NOW, outcome=Outcome.REFUSED, target=WEB, who="a", message="m")
    with pytest.raises(UserInputError, match="cannot write the audit log"):
        append_audit_line(blocker / "audit.jsonl", entry)


def test_the_event_regards_the_target_and_fits_the_api_limits() -> None:
    target = fixture("deployment-web")
    body = event_body(target, Outcome.REFUSED, "refused: " + "x" * 2000, NOW)
    assert body["reason"] == "RollbackRefused"
    assert body["type"] == "Warning"
    assert body["regarding"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "namespace": "fixtures",
        "name": "web",
        "uid": target["metadata"]["uid"],
        "resourceVersion": target["metadata"]["resourceVersion"],
    }
    assert body["metadata"]["generateName"] == "web.rollback-"
    assert len(body["note"].encode()) <= 1024
    assert body["eventTime"] == "2026-12-03T20:00:00.000000Z"


# --- GitOps suspension ---------------------------------------------------------------------


def argo_app(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "web", "namespace": "argocd", "resourceVersion": "77"},
        "spec": {"project": "default", **spec},
    }


def flux_kustomization(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": "flux-system", "resourceVersion": "5"},
        "spec": {"interval": "5m", **spec},
    }


@pytest.mark.parametrize(
    "owner",
    [
        argo_app(syncPolicy={"automated": {"prune": True, "selfHeal": True}}),
        argo_app(syncPolicy={"automated": {}, "syncOptions": ["CreateNamespace=true"]}),
        flux_kustomization(),
        flux_kustomization(suspend=False),
    ],
)
def test_suspend_then_resume_restores_the_owner_exactly(owner: dict[str, Any]) -> None:
    # When we suspend the owner
    step = plan_suspend(owner, WEB)
    suspended = apply_json_patch(owner, step.body)
    # Then it no longer syncs on its own, and says why and how it was
    if owner["kind"] == "Application":
        assert "automated" not in suspended["spec"]["syncPolicy"]
    else:
        assert suspended["spec"]["suspend"] is True
    annotations = suspended["metadata"]["annotations"]
    assert annotations[AUDIT_ANNOTATION] == STAMP
    assert json.loads(annotations[SUSPENDED_ANNOTATION])["target"] == WEB.to_json()
    assert step.resource_version == owner["metadata"]["resourceVersion"]
    # When we resume it, it is exactly as before (bar our audit stamp)
    resumed = apply_json_patch(suspended, plan_resume(suspended).steps[0].body)
    del resumed["metadata"]["annotations"][AUDIT_ANNOTATION]
    assert resumed["spec"] == owner["spec"]
    assert resumed["metadata"]["annotations"] == {}


def test_resuming_an_owner_we_did_not_suspend_is_bad_input() -> None:
    with pytest.raises(UserInputError, match="was not suspended by rollback: nothing to resume"):
        plan_resume(flux_kustomization())


def test_the_audit_entry_is_one_json_object_with_the_plan() -> None:
    entry = AuditEntry(
        at=datetime(2026, 12, 3, 10, 4, 5, tzinfo=UTC),
        outcome=Outcome.EXECUTED,
        target=WEB,
        who="alice",
        message="done",
        round_trips=2,
        time_to_restore=timedelta(seconds=41.26),
        incident="INC-7",
    )
    out = entry.to_json()
    assert out["time"] == "2026-12-03T10:04:05Z"
    assert out["roundTrips"] == 2
    assert out["timeToRestoreSeconds"] == 41.3
    assert out["incident"] == "INC-7"
    assert "planHash" not in out
