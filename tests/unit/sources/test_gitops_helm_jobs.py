"""GitOps owners and syncs, Helm release revisions, migration-like Jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.model import ChangeKind, ObjectRef
from controller.sources.gitops import collect_gitops_changes, gitops_owner
from controller.sources.helm import collect_helm_changes, helm_release_of
from controller.sources.jobs import collect_migration_changes, migration_evidence
from controller.view import ClusterView

from .builders import captured

CAPTURED_AT = datetime(2026, 12, 3, 10, 20, tzinfo=UTC)
DAY_BEFORE = CAPTURED_AT - timedelta(days=1)
PATTERNS = ("migrat", "flyway", "liquibase", "alembic", "schema")


def view_of(*objects: dict) -> ClusterView:
    view = ClusterView(captured_at=CAPTURED_AT)
    view.extend(objects)
    return view


def web(**meta: Any) -> dict:
    deploy = captured("bad-image-rollout", "Deployment", "web")
    for key, value in meta.items():
        deploy["metadata"].setdefault(key, {}).update(value)
    return deploy


def application(
    name: str = "shop",
    namespace: str = "argocd",
    automated: dict | None = None,
    resources: list[dict] | None = None,
    history: list[dict] | None = None,
) -> dict:
    spec: dict[str, Any] = {
        "project": "default",
        "source": {"repoURL": "https://git.example/shop.git", "path": "deploy"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
    }
    if automated is not None:
        spec["syncPolicy"] = {"automated": automated}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "spec": spec,
        "status": {"resources": resources or [], "history": history or []},
    }


OWNER_CASES = [
    pytest.param(
        {"annotations": {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/web"}},
        [application(automated={"prune": True, "selfHeal": True})],
        (ObjectRef("Application", "argocd", "shop"), True, True),
        id="Argo CD tracking annotation, self-heal",
    ),
    pytest.param(
        {},
        [
            application(
                automated={"prune": True},
                resources=[
                    {
                        "group": "apps",
                        "kind": "Deployment",
                        "namespace": "shop",
                        "name": "web",
                        "status": "Synced",
                    }
                ],
            )
        ],
        (ObjectRef("Application", "argocd", "shop"), True, False),
        id="listed in the Application's resources, automated without self-heal",
    ),
    pytest.param(
        {"labels": {"app.kubernetes.io/instance": "shop"}},
        [application(automated={"enabled": False, "selfHeal": True})],
        (ObjectRef("Application", "argocd", "shop"), False, False),
        id="legacy instance label, automation switched off (Argo CD 3)",
    ),
    pytest.param(
        {
            "labels": {
                "kustomize.toolkit.fluxcd.io/name": "apps",
                "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
            }
        },
        [
            {
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                "kind": "Kustomization",
                "metadata": {"name": "apps", "namespace": "flux-system"},
                "spec": {"interval": "5m"},
            }
        ],
        (ObjectRef("Kustomization", "flux-system", "apps"), True, True),
        id="Flux Kustomization corrects drift",
    ),
    pytest.param(
        {
            "labels": {
                "helm.toolkit.fluxcd.io/name": "web",
                "helm.toolkit.fluxcd.io/namespace": "shop",
            }
        },
        [
            {
                "apiVersion": "helm.toolkit.fluxcd.io/v2",
                "kind": "HelmRelease",
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"suspend": True},
            }
        ],
        (ObjectRef("HelmRelease", "shop", "web"), False, False),
        id="suspended Flux HelmRelease",
    ),
]


@pytest.mark.parametrize(("marks", "owners", "expected"), OWNER_CASES)
def test_gitops_owner(marks: dict, owners: list[dict], expected: tuple) -> None:
    deploy = web(**marks)

    owner = gitops_owner(view_of(deploy, *owners), deploy)

    assert owner is not None
    assert (owner.ref, owner.automated, owner.self_heal) == expected


def test_an_instance_label_alone_is_not_argo_cd() -> None:
    # Helm charts set app.kubernetes.io/instance too; without an Application it means nothing.
    deploy = web(labels={"app.kubernetes.io/instance": "shop"})

    assert gitops_owner(view_of(deploy), deploy) is None


def test_a_tracking_annotation_whose_application_cannot_be_read_is_still_an_owner() -> None:
    deploy = web(
        annotations={"argocd.argoproj.io/tracking-id": "team_shop:apps/Deployment:shop/web"}
    )

    owner = gitops_owner(view_of(deploy), deploy)

    assert owner is not None
    assert owner.ref == ObjectRef("Application", "team", "shop")
    assert owner.note.endswith("which was not readable; its sync policy is unknown")


def test_argo_cd_history_gives_one_sync_change_per_deploy_in_the_window() -> None:
    app = application(
        resources=[{"kind": "Deployment", "namespace": "shop", "name": "web"},
                   {"kind": "Service", "namespace": "shop", "name": "web"}],
        history=[
            {"id": 7, "revision": "a" * 40, "deployedAt": "2026-12-02T08:00:00Z"},
            {"id": 8, "revision": "b" * 40, "deployStartedAt": "2026-12-03T09:55:00Z",
             "deployedAt": "2026-12-03T09:56:00Z"},
        ],
    )  # fmt: skip

    (change,) = collect_gitops_changes(view_of(app), DAY_BEFORE, CAPTURED_AT)

    assert (change.kind, change.target, change.at, change.started_at) == (
        ChangeKind.GITOPS,
        ObjectRef("Application", "argocd", "shop"),
        datetime(2026, 12, 3, 9, 56, tzinfo=UTC),
        datetime(2026, 12, 3, 9, 55, tzinfo=UTC),
    )
    assert (change.before, change.after, change.revision) == ("aaaaaaa", "bbbbbbb", 8)
    assert change.affects == (ObjectRef("Deployment", "shop", "web"),)


def test_a_flux_kustomization_without_history_is_dated_by_its_ready_condition() -> None:
    ks = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": "flux-system"},
        "spec": {"interval": "5m"},
        "status": {
            "lastAppliedRevision": "main@sha1:0123456789abcdef0123456789abcdef01234567",
            "conditions": [{"type": "Ready", "status": "True",
                            "reason": "ReconciliationSucceeded",
                            "lastTransitionTime": "2026-12-03T10:01:00Z"}],
            "inventory": {"entries": [{"id": "shop_web_apps_Deployment", "v": "v1"},
                                      {"id": "shop_web__Service", "v": "v1"}]},
        },
    }  # fmt: skip

    (change,) = collect_gitops_changes(view_of(ks), DAY_BEFORE, CAPTURED_AT)

    assert change.summary == (
        "Flux Kustomization apps applied main@sha1:0123456789abcdef0123456789abcdef01234567"
    )
    assert change.affects == (ObjectRef("Deployment", "shop", "web"),)
    assert "Flux keeps no per-revision time here" in change.evidence[0]


def release(version: int, status: str, created: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": f"sh.helm.release.v1.web.v{version}",
            "namespace": "shop",
            "creationTimestamp": created,
            "labels": {"name": "web", "owner": "helm", "status": status, "version": str(version)},
        },
    }


def test_helm_release_revisions_come_from_release_secret_labels() -> None:
    deploy = web(annotations={"meta.helm.sh/release-name": "web",
                              "meta.helm.sh/release-namespace": "shop"})  # fmt: skip
    secrets = [
        release(1, "superseded", "2026-11-20T10:00:00Z"),
        release(2, "superseded", "2026-12-03T09:00:00Z"),
        release(3, "failed", "2026-12-03T10:02:00Z"),
    ]

    changes = collect_helm_changes(view_of(deploy, *secrets), DAY_BEFORE, CAPTURED_AT)

    assert [(c.revision, c.previous_revision, c.stalled, c.summary) for c in changes] == [
        (2, 1, False, "Helm release web upgraded to revision 2 (superseded)"),
        (3, 2, True, "Helm release web upgraded to revision 3 (failed)"),
    ]
    assert changes[1].affects == (ObjectRef("Deployment", "shop", "web"),)
    assert helm_release_of(deploy) == "shop/web"


MIGRATION_CASES = [
    pytest.param({"name": "db-migrate-42"}, "its name contains 'migrat'", id="name"),
    pytest.param(
        {"labels": {"app.kubernetes.io/component": "schema"}},
        "label app.kubernetes.io/component=schema",
        id="label",
    ),
    pytest.param(
        {"command": ["alembic", "upgrade", "head"]},
        "container task runs 'alembic upgrade head'",
        id="command",
    ),
    pytest.param(
        {"annotations": {"helm.sh/hook": "pre-upgrade", "helm.sh/hook-weight": "-5"}},
        "a Helm pre-upgrade hook",
        id="Helm hook",
    ),
    pytest.param(
        {"annotations": {"argocd.argoproj.io/hook": "PreSync"}},
        "an Argo CD PreSync hook",
        id="Argo hook",
    ),
    pytest.param({}, None, id="a plain batch Job"),
]


def job(
    name: str = "nightly-report",
    *,
    labels: dict | None = None,
    annotations: dict | None = None,
    command: list[str] | None = None,
    image: str = "registry.example/shop/web:2.5.0",
) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "labels": labels or {},
            "annotations": annotations or {},
            "creationTimestamp": "2026-12-03T09:50:00Z",
        },
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "task", "image": image, "command": command or ["./run"]}
        ]}}},
        "status": {
            "startTime": "2026-12-03T09:50:01Z",
            "completionTime": "2026-12-03T09:51:30Z",
            "succeeded": 1,
            "conditions": [{"type": "Complete", "status": "True",
                            "lastTransitionTime": "2026-12-03T09:51:30Z"}],
        },
    }  # fmt: skip


@pytest.mark.parametrize(("kw", "why"), MIGRATION_CASES)
def test_what_makes_a_job_look_like_a_migration(kw: dict, why: str | None) -> None:
    assert migration_evidence(job(**kw), PATTERNS) == why


def test_a_migration_job_is_a_change_affecting_the_workload_that_shares_its_image() -> None:
    deploy = web()
    migration = job("web-db-migrate", image="registry.example/shop/web:2.4.1")

    (change,) = collect_migration_changes(
        view_of(deploy, migration, job()), DAY_BEFORE, CAPTURED_AT, PATTERNS
    )

    assert (change.kind, change.target, change.at, change.started_at, change.after) == (
        ChangeKind.MIGRATION,
        ObjectRef("Job", "shop", "web-db-migrate"),
        datetime(2026, 12, 3, 9, 51, 30, tzinfo=UTC),
        datetime(2026, 12, 3, 9, 50, 1, tzinfo=UTC),
        "completed",
    )
    assert change.affects == (ObjectRef("Deployment", "shop", "web"),)
