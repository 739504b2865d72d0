"""Workload history: revisions, their health, and the facts the safety check needs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.model import ObjectRef
from controller.sources.workloads import (
    diff_templates,
    find_workload,
    pod_template_of,
    template_config_refs,
    templates_equal,
    workload_facts,
    workload_revisions,
)
from controller.view import ClusterView

from .builders import (
    NOW,
    controller_revision,
    deployment,
    event,
    pod,
    progressing,
    replicaset,
    statefulset,
    template,
    template_hash,
    uid,
)


def view_of(*objects: dict) -> ClusterView:
    view = ClusterView(captured_at=NOW)
    view.extend(objects)
    return view


def stalled_bad_rollout() -> tuple[ClusterView, dict]:
    """web: v1 ran 9h, v2 ran 5h and is still serving, v3 (bad image) timed out 3m ago."""
    t1, t2, t3 = template("shop/web:1.0"), template("shop/web:1.1"), template("shop/web:1.2-broken")
    rs3_name = f"web-{template_hash(t3)}"
    deploy = deployment(
        "web",
        tmpl=t3,
        revision=3,
        available=3,
        progressing=progressing("ProgressDeadlineExceeded", rs3_name, 3),
    )
    rs1 = replicaset(deploy, t1, revision=1, created=600, replicas=0)
    rs2 = replicaset(deploy, t2, revision=2, created=300, replicas=3)
    rs3 = replicaset(deploy, t3, revision=3, created=14, replicas=1, ready=0)
    pods = [pod(rs2, s, created=299) for s in ("a1b2c", "d3e4f", "g5h6i")]
    pods.append(pod(rs3, "x9y8z", created=14, ready=False))
    return view_of(deploy, rs1, rs2, rs3, *pods), deploy


class TestDeploymentRevisions:
    def test_revisions_come_from_owned_replicasets_in_revision_order(self) -> None:
        view, deploy = stalled_bad_rollout()
        revisions = workload_revisions(view, deploy, NOW)
        assert [r.revision for r in revisions] == [1, 2, 3]
        assert [r.info.images for r in revisions] == [
            ("shop/web:1.0",),
            ("shop/web:1.1",),
            ("shop/web:1.2-broken",),
        ]
        assert [r.source["kind"] for r in revisions] == ["ReplicaSet"] * 3
        assert revisions[2].template["spec"]["containers"][0]["image"] == "shop/web:1.2-broken"

    def test_the_current_revision_is_the_one_matching_the_deployment_template(self) -> None:
        view, deploy = stalled_bad_rollout()
        revisions = workload_revisions(view, deploy, NOW)
        assert [r.info.current for r in revisions] == [False, False, True]

    def test_active_periods_chain_creation_times(self) -> None:
        view, deploy = stalled_bad_rollout()
        r1, r2, r3 = workload_revisions(view, deploy, NOW)
        assert r1.info.active_since == NOW - timedelta(minutes=600)
        assert r1.info.active_until == NOW - timedelta(minutes=300)
        assert r2.info.active_until == NOW - timedelta(minutes=14)
        assert r3.info.active_until is None

    def test_a_revision_named_by_progress_deadline_exceeded_is_unhealthy(self) -> None:
        view, deploy = stalled_bad_rollout()
        r3 = workload_revisions(view, deploy, NOW)[2]
        assert r3.info.unhealthy
        assert r3.info.healthy_for == timedelta(0)
        assert r3.info.health_note == "its rollout exceeded the progress deadline"

    def test_an_old_revision_still_serving_beside_a_stalled_rollout_is_healthy(self) -> None:
        view, deploy = stalled_bad_rollout()
        r2 = workload_revisions(view, deploy, NOW)[1]
        assert not r2.info.unhealthy
        assert r2.info.healthy_for == timedelta(minutes=300)
        assert r2.info.health_note == "still serving: 3 of 3 replicas available"

    def test_a_replaced_revision_is_credited_with_its_active_period(self) -> None:
        view, deploy = stalled_bad_rollout()
        r1 = workload_revisions(view, deploy, NOW)[0]
        assert not r1.info.unhealthy
        assert r1.info.healthy_for == timedelta(minutes=300)
        assert r1.info.health_note == "served 5h until replaced; no failures seen"

    def test_completed_current_revision_dates_completion_from_the_progressing_condition(
        self,
    ) -> None:
        t1, t2 = template("shop/web:1.0"), template("shop/web:1.1")
        rs2_name = f"web-{template_hash(t2)}"
        deploy = deployment(
            "web",
            tmpl=t2,
            revision=2,
            progressing=progressing("NewReplicaSetAvailable", rs2_name, 40),
        )
        rs1 = replicaset(deploy, t1, revision=1, created=600, replicas=0)
        rs2 = replicaset(deploy, t2, revision=2, created=42, replicas=3)
        view = view_of(
            deploy, rs1, rs2, *(pod(rs2, s, created=41) for s in ("aaaaa", "bbbbb", "ccccc"))
        )
        r2 = workload_revisions(view, deploy, NOW)[1]
        assert r2.info.completed_at == NOW - timedelta(minutes=40)
        assert r2.info.healthy_for == timedelta(minutes=40)
        assert r2.info.health_note == "all 3 replicas available for 40m"
        facts = workload_facts(view, deploy, NOW)
        assert facts.rollout_seconds == (120.0,)

    def test_missing_revision_annotation_counts_as_zero(self) -> None:
        t0, t1 = template("shop/web:0.9"), template("shop/web:1.0")
        deploy = deployment("web", tmpl=t1, revision=1)
        rs0 = replicaset(deploy, t0, revision=None, created=900, replicas=0)
        rs1 = replicaset(deploy, t1, revision=1, created=600, replicas=3)
        revisions = workload_revisions(view_of(deploy, rs0, rs1), deploy, NOW)
        assert [r.revision for r in revisions] == [0, 1]

    def test_replicasets_of_another_owner_are_not_revisions(self) -> None:
        t1 = template("shop/web:1.0")
        deploy = deployment("web", tmpl=t1, revision=1)
        impostor_owner = deployment("web", namespace="shop", tmpl=t1, revision=1)
        impostor_owner["metadata"]["uid"] = uid("someone", "else")
        stray = replicaset(impostor_owner, template("evil:1"), revision=7, created=10, replicas=1)
        mine = replicaset(deploy, t1, revision=1, created=600, replicas=3)
        revisions = workload_revisions(view_of(deploy, mine, stray), deploy, NOW)
        assert [r.revision for r in revisions] == [1]

    def test_crash_looping_pods_make_the_current_revision_unhealthy(self) -> None:
        t1, t2 = template("shop/web:1.0"), template("shop/web:1.1-crashloop")
        deploy = deployment("web", tmpl=t2, revision=2, available=2)
        rs1 = replicaset(deploy, t1, revision=1, created=600, replicas=2)
        rs2 = replicaset(deploy, t2, revision=2, created=5, replicas=1, ready=0)
        bad = pod(rs2, "zzzzz", created=5, waiting="CrashLoopBackOff", restarts=4)
        r2 = workload_revisions(view_of(deploy, rs1, rs2, bad), deploy, NOW)[1]
        assert r2.info.unhealthy
        assert (
            r2.info.health_note
            == f"1 of its pods are failing (CrashLoopBackOff on web-{template_hash(t2)}-zzzzz)"
        )

    def test_warning_events_about_a_replaced_revisions_pods_mark_it_unhealthy(self) -> None:
        t1, t2, t3 = template("shop/web:1.0"), template("shop/web:1.1"), template("shop/web:1.2")
        deploy = deployment("web", tmpl=t3, revision=3)
        rs1 = replicaset(deploy, t1, revision=1, created=600, replicas=0)
        rs2 = replicaset(deploy, t2, revision=2, created=50, replicas=0)
        rs3 = replicaset(deploy, t3, revision=3, created=30, replicas=3)
        gone_pod = pod(rs2, "qqqqq", created=49)
        backoff = event(
            gone_pod, "BackOff", "Back-off restarting failed container web", minutes_ago=35
        )
        r1, r2, _ = workload_revisions(view_of(deploy, rs1, rs2, rs3, backoff), deploy, NOW)
        assert r2.info.unhealthy
        assert r2.info.health_note.startswith("warning events about its pods (BackOff: ")
        assert not r1.info.unhealthy

    def test_a_readopted_replicaset_becomes_current_when_the_controller_scaled_it_up(self) -> None:
        t1, t2 = template("shop/web:1.0"), template("shop/web:1.1-broken")
        deploy = deployment("web", tmpl=t1, revision=3)
        rs1 = replicaset(
            deploy,
            t1,
            revision=3,
            created=600,
            replicas=3,
            annotations={"deployment.kubernetes.io/revision-history": "1"},
            managed_fields=[
                {
                    "apiVersion": "apps/v1",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {"f:replicas": {}}},
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "time": (NOW - timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
                {
                    "apiVersion": "apps/v1",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:status": {}},
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "subresource": "status",
                    "time": (NOW - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            ],
        )
        rs2 = replicaset(deploy, t2, revision=2, created=20, replicas=0)
        revisions = workload_revisions(view_of(deploy, rs1, rs2), deploy, NOW)
        assert [(r.revision, r.info.current) for r in revisions] == [(2, False), (3, True)]
        assert revisions[1].info.active_since == NOW - timedelta(minutes=4)
        assert revisions[0].info.active_until == NOW - timedelta(minutes=4)


class TestStatefulSetRevisions:
    def test_controller_revisions_give_number_template_and_pods(self) -> None:
        t1, t2 = template("db:15.3", app="db"), template("db:15.4", app="db")
        sts = statefulset("db", t2)
        cr1 = controller_revision(sts, t1, revision=1, created=600)
        cr2 = controller_revision(sts, t2, revision=2, created=20)
        sts["status"]["currentRevision"] = sts["status"]["updateRevision"] = cr2["metadata"]["name"]
        pods = [
            pod(
                sts,
                str(i),
                created=19 - i,
                ready_since=18 - 2 * i,
                labels={"controller-revision-hash": cr2["metadata"]["name"]},
            )
            for i in range(2)
        ]
        revisions = workload_revisions(view_of(sts, cr1, cr2, *pods), sts, NOW)
        assert [r.revision for r in revisions] == [1, 2]
        assert revisions[1].info.current
        assert "$patch" not in revisions[1].template
        assert templates_equal(revisions[1].template, t2)
        assert (revisions[1].info.replicas, revisions[1].info.ready_replicas) == (2, 2)
        assert revisions[1].info.completed_at == NOW - timedelta(minutes=16)

    def test_daemonset_pods_carry_the_bare_hash(self) -> None:
        t1 = template("agent:2", app="agent")
        ds = statefulset("agent", t1)
        ds["kind"] = "DaemonSet"
        ds["metadata"]["uid"] = uid("DaemonSet", "shop", "agent")
        ds["status"] = {
            "desiredNumberScheduled": 1,
            "updatedNumberScheduled": 1,
            "numberAvailable": 1,
        }
        cr = controller_revision(ds, t1, revision=1, created=100)
        h = template_hash(t1)
        p = pod(ds, "k2x7p", created=99, labels={"controller-revision-hash": h})
        (record,) = workload_revisions(view_of(ds, cr, p), ds, NOW)
        assert record.info.ready_replicas == 1
        assert record.info.current


CONFIG_REF_CASES = [
    pytest.param(
        {"volumes": [{"name": "cfg", "configMap": {"name": "web-config"}}]},
        ["ConfigMap/shop/web-config"],
        id="configMap volume",
    ),
    pytest.param(
        {"volumes": [{"name": "tls", "secret": {"secretName": "web-tls"}}]},
        ["Secret/shop/web-tls"],
        id="secret volume",
    ),
    pytest.param(
        {
            "volumes": [
                {
                    "name": "all",
                    "projected": {
                        "sources": [
                            {"configMap": {"name": "a"}},
                            {"secret": {"name": "b"}},
                            {"serviceAccountToken": {"path": "token"}},
                        ]
                    },
                }
            ]
        },
        ["ConfigMap/shop/a", "Secret/shop/b"],
        id="projected sources",
    ),
    pytest.param(
        {"env_from": [{"configMapRef": {"name": "env-cm"}}, {"secretRef": {"name": "env-sec"}}]},
        ["ConfigMap/shop/env-cm", "Secret/shop/env-sec"],
        id="envFrom",
    ),
    pytest.param(
        {
            "env": [
                {
                    "name": "MODE",
                    "valueFrom": {"configMapKeyRef": {"key": "mode", "name": "flags"}},
                },
                {"name": "PW", "valueFrom": {"secretKeyRef": {"key": "pw", "name": "db"}}},
                {"name": "PLAIN", "value": "1"},
            ]
        },
        ["ConfigMap/shop/flags", "Secret/shop/db"],
        id="env valueFrom",
    ),
    pytest.param(
        {
            "init_containers": [
                {"name": "migrate", "image": "m:1", "envFrom": [{"configMapRef": {"name": "mig"}}]}
            ]
        },
        ["ConfigMap/shop/mig"],
        id="init container",
    ),
]


@pytest.mark.parametrize(("kwargs", "expected"), CONFIG_REF_CASES)
def test_config_references_are_found_wherever_the_kubelet_reads_them(
    kwargs: dict, expected: list[str]
) -> None:
    refs = template_config_refs(template("web:1", **kwargs), "shop")
    assert [str(r) for r in refs] == expected


def test_image_pull_secrets_are_not_config() -> None:
    tmpl = template("web:1")
    tmpl["spec"]["imagePullSecrets"] = [{"name": "registry"}]
    assert template_config_refs(tmpl, "shop") == ()


DIFF_CASES = [
    pytest.param(template("web:1"), template("web:2"), ("image web: web:1 -> 2",), id="image"),
    pytest.param(
        template("web:1", env=[{"name": "A", "value": "1"}, {"name": "B", "value": "x"}]),
        template("web:1", env=[{"name": "A", "value": "2"}, {"name": "C", "value": "y"}]),
        ("env web: added C", "env web: removed B", "env web: changed A"),
        id="env names only, never values",
    ),
    pytest.param(
        template("web:1", env_from=[{"configMapRef": {"name": "v1"}}]),
        template("web:1", env_from=[{"configMapRef": {"name": "v2"}}]),
        ("envFrom of web changed", "now reads ConfigMap v2", "no longer reads ConfigMap v1"),
        id="config reference",
    ),
    pytest.param(
        template("web:1", resources={"limits": {"memory": "256Mi"}}),
        template("web:1", resources={"limits": {"memory": "128Mi"}, "requests": {"cpu": "100m"}}),
        ("resources web: limits memory=256Mi -> requests cpu=100m; limits memory=128Mi",),
        id="resources",
    ),
    pytest.param(
        template("web:1"),
        template(
            "web:1", annotations={"kubectl.kubernetes.io/restartedAt": "2026-12-03T10:00:00Z"}
        ),
        ("restarted (kubectl rollout restart at 2026-12-03T10:00:00Z)",),
        id="rollout restart",
    ),
    pytest.param(
        template("web:1"),
        template("web:1", labels={"tier": "front"}),
        ("other pod template fields changed",),
        id="anything else",
    ),
    pytest.param(
        template("web:1"), template("web:1", pod_template_hash="abc"), (), id="hash label only"
    ),
]


@pytest.mark.parametrize(("before", "after", "expected"), DIFF_CASES)
def test_template_diffs_name_what_an_engineer_checks(
    before: dict, after: dict, expected: tuple
) -> None:
    assert diff_templates(before, after, "shop") == expected


class TestWorkloadFacts:
    def test_facts_of_a_stalled_rollout(self) -> None:
        view, deploy = stalled_bad_rollout()
        facts = workload_facts(view, deploy, NOW)
        assert facts.ref == ObjectRef("Deployment", "shop", "web")
        assert facts.current_revision == 3
        assert [r.revision for r in facts.revisions] == [1, 2, 3]
        assert facts.progress_deadline_exceeded
        assert facts.resource_version == "4711"
        assert facts.replicas == 3
        assert facts.strategy == "RollingUpdate"
        assert not facts.paused
        assert facts.hpa is None and facts.gitops_owner is None and facts.helm_release is None

    def test_owners_and_controllers_around_the_workload(self) -> None:
        t1 = template("web:1")
        deploy = deployment(
            "web",
            tmpl=t1,
            revision=1,
            paused=True,
            annotations={
                "argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/web",
                "meta.helm.sh/release-name": "web",
                "meta.helm.sh/release-namespace": "shop",
                "rollouts.kruise.io/stable-revision": "abc",
            },
            labels={"app.kubernetes.io/managed-by": "Helm"},
        )
        app = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "shop", "namespace": "argocd", "uid": uid("app")},
            "spec": {
                "destination": {"namespace": "shop", "server": "https://kubernetes.default.svc"},
                "project": "default",
                "source": {"path": "shop", "repoURL": "https://git.example/shop.git"},
                "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
            },
        }
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "shop", "uid": uid("hpa")},
            "spec": {
                "maxReplicas": 10,
                "minReplicas": 2,
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            },
        }
        rs = replicaset(deploy, t1, revision=1, created=600, replicas=3)
        facts = workload_facts(view_of(deploy, rs, app, hpa), deploy, NOW)
        assert facts.paused
        assert facts.hpa == ObjectRef("HorizontalPodAutoscaler", "shop", "web")
        assert facts.gitops_owner == ObjectRef("Application", "argocd", "shop")
        assert facts.gitops_automated and facts.gitops_self_heal
        assert (
            facts.gitops_note
            == "annotation argocd.argoproj.io/tracking-id=shop:apps/Deployment:shop/web"
        )
        assert facts.helm_release == "shop/web"
        assert facts.progressive_delivery == "OpenKruise Rollouts"


def test_find_workload_accepts_kubectl_kind_spellings() -> None:
    view, deploy = stalled_bad_rollout()
    for kind in ("deployment", "deploy", "Deployment", "deployments.apps"):
        assert find_workload(view, ObjectRef(kind, "shop", "web")) is deploy
    assert find_workload(view, ObjectRef("pod", "shop", "web")) is None


def test_pod_template_of_a_replicaset_is_its_spec_template() -> None:
    view, _deploy = stalled_bad_rollout()
    rs = view.of_kind("ReplicaSet")[0]
    assert pod_template_of(rs) is rs["spec"]["template"]


class TestSafetyHints:
    """Facts the safety check reads off each revision."""

    def test_migration_init_containers_schema_version_and_desired_replicas(self) -> None:
        t1 = template(
            "shop/web:1.0",
            annotations={"rollback.io/schema-version": "41"},
            init_containers=[
                {"name": "wait-for-db", "image": "busybox:1.36", "command": ["sh", "-c", "true"]},
                {"name": "db", "image": "shop/tools:2", "command": ["alembic", "upgrade", "head"]},
            ],
        )
        deploy = deployment("web", tmpl=t1, revision=1, replicas=4)
        rs = replicaset(deploy, t1, revision=1, created=600, replicas=4)
        (record,) = workload_revisions(view_of(deploy, rs), deploy, NOW)
        assert record.info.migration_init_containers == ("db",)
        assert record.info.schema_version == "41"
        assert record.info.desired_replicas == 4

    def test_config_a_revision_needs_is_missing_only_when_configmaps_were_read_in_full(
        self,
    ) -> None:
        t1 = template("shop/web:1.0", env_from=[{"configMapRef": {"name": "web-v1"}}])
        t2 = template("shop/web:1.1", env_from=[{"configMapRef": {"name": "web-v2"}}])
        deploy = deployment("web", tmpl=t2, revision=2)
        rs1 = replicaset(deploy, t1, revision=1, created=600, replicas=0)
        rs2 = replicaset(deploy, t2, revision=2, created=60, replicas=3)
        cm = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "web-v2", "namespace": "shop", "uid": uid("cm")},
            "data": {"mode": "fast"},
        }
        view = view_of(deploy, rs1, rs2, cm)
        assert [r.info.missing_config_refs for r in workload_revisions(view, deploy, NOW)] == [
            (),
            (),
        ]
        view.complete = {"ConfigMap"}
        assert [r.info.missing_config_refs for r in workload_revisions(view, deploy, NOW)] == [
            (ObjectRef("ConfigMap", "shop", "web-v1"),),
            (),
        ]
