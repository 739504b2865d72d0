"""``rollback execute`` against a real API server: every guard, every action, every record.

Each test reads as an incident: Given a cluster state, When an engineer runs
execute (through click's CliRunner, the real command line), Then the cluster,
the Event, the annotation and the audit line say what happened, and nothing
else changed.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from controller.cli import main
from tests.cluster import Cluster
from tests.e2e.steps import (
    apply,
    apply_crd,
    given_deployment,
    image,
    kubectl,
    read_deployment,
    ready_pods,
    replica_sets,
    revision_of,
    service_account_kubeconfig,
    template_images,
    wait_deployment_condition,
    wait_for,
    wait_rollout_complete,
    when_image_set,
)

pytestmark = pytest.mark.e2e

LAST_ACTION = "rollback.io/last-action"

PERMISSIVE_POLICY = """\
version: 1
scopes:
  - name: default
    rules:
      confirmation: none
      unattended:
        allowed: true
        verdicts: [safe, risky]
      rateLimit:
        maxActions: 100
        per: 1h
      gitops: suspend
      riskyRequiresConfirmation: false
"""


# --- helpers ------------------------------------------------------------------------------


class Run:
    """Runs ``rollback`` in-process against the test cluster, with its own audit log."""

    def __init__(self, cluster: Cluster, namespace: str, tmp_path: Path) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.audit = tmp_path / "audit.jsonl"
        self.tmp = tmp_path

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        kubeconfig: str | None = None,
        policy: str | None = None,
    ) -> Result:
        extra = ["--kubeconfig", kubeconfig or self.cluster.kubeconfig]
        extra += ["--audit-log", str(self.audit), "-n", self.namespace]
        if policy is not None:
            path = self.tmp / f"policy-{uuid.uuid4().hex[:6]}.yaml"
            path.write_text(policy)
            extra += ["--policy", str(path)]
        command, rest = args[0], list(args[1:])
        return CliRunner().invoke(main, [command, *rest, *extra], input=input)

    def audit_lines(self) -> list[dict[str, Any]]:
        return read_audit(self.audit)


def read_audit(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def rollback(cluster: Cluster, namespace: str, tmp_path: Path) -> Run:
    return Run(cluster, namespace, tmp_path)


@pytest.fixture
def other_namespace(cluster: Cluster) -> Iterator[str]:
    from kubernetes import client

    name = f"t-twin-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(cluster.api())
    core.create_namespace({"metadata": {"name": name, "labels": {"rollback.test/e2e": "true"}}})
    yield name
    core.delete_namespace(name, propagation_policy="Background")


def serve() -> None:
    """Let the current revision serve for a measurable time before the next one.

    Creation timestamps have one-second resolution: a revision replaced within
    its first second has served for zero seconds as far as the API can show,
    and the safety check rightly calls it never available.
    """
    time.sleep(2.1)


def given_history(api: Any, namespace: str, name: str = "web", **manifest: Any) -> dict[str, Any]:
    """web: v1 -> v2 (both healthy) -> v3-broken (stalls past a 5 s progress deadline)."""
    given_deployment(api, namespace, name, image("v1"), progress_deadline=5, **manifest)
    serve()
    when_image_set(api, namespace, name, image("v2"))
    wait_rollout_complete(api, namespace, name)
    serve()
    when_image_set(api, namespace, name, image("v3-broken"))
    wait_deployment_condition(
        api, namespace, name, "Progressing", "False", reason="ProgressDeadlineExceeded"
    )
    return read_deployment(api, namespace, name)


def audit_events(cluster: Cluster, namespace: str, reason: str) -> list[dict[str, Any]]:
    """events.k8s.io/v1 Events with this reason (read with kubectl: the client's models
    reject Events without eventTime, which every core/v1 Event is)."""
    out = kubectl(cluster, "get", "events.events.k8s.io", "-n", namespace, "-o", "json")
    return [e for e in json.loads(out.stdout)["items"] if e.get("reason") == reason]


# --- the main path ------------------------------------------------------------------------


def test_a_bad_image_is_rolled_back_to_the_last_good_revision_with_ready_pods(
    cluster: Cluster, namespace: str, rollback: Run
) -> None:
    api = cluster.api()
    # Given web went v1 -> v2 -> v3-broken, which never became ready
    given_history(api, namespace)

    # When the engineer executes the rollback to revision 2 and types its name
    result = rollback("execute", "deployment/web", "--to-revision", "2", input="web\n")

    # Then it is confirmed, written, verified, and the pods are Ready on v2
    assert result.exit_code == 0, result.output
    assert "Plan: roll back deployment/web from revision 3 to revision 2" in result.stdout
    assert "    - image app: registry.example/web:v3-broken -> v2" in result.stdout
    assert "  safety     risky (score " in result.stdout  # v2 served seconds, not 10m
    assert "restored: 2/2 updated, 2/2 ready, 2/2 available" in result.stdout
    after = read_deployment(api, namespace, "web")
    assert template_images(after) == [image("v2")]
    wait_for(lambda: len(ready_pods(api, namespace, "app=web")) == 2, what="two ready v2 pods")
    assert {p["spec"]["containers"][0]["image"] for p in ready_pods(api, namespace, "app=web")} == {
        image("v2")
    }
    # And the Deployment controller re-adopted revision 2's ReplicaSet as revision 4
    assert [revision_of(rs) for rs in replica_sets(api, namespace, "web")] == [1, 3, 4]

    # And the annotation, the Event and the audit line record who, what and the plan hash
    stamp = json.loads(after["metadata"]["annotations"][LAST_ACTION])
    plan_hash = stamp["planHash"]
    assert stamp["what"] == "roll back deployment/web from revision 3 to revision 2"
    assert stamp["from"] == f"revision 3 ({image('v3-broken')})"
    assert stamp["to"] == f"revision 2 ({image('v2')})"
    assert stamp["who"] == "rollback-test-admin"
    assert f"plan hash  {plan_hash}" in result.stdout
    executed = audit_events(cluster, namespace, "RollbackExecuted")
    assert len(executed) == 1
    assert executed[0]["regarding"]["name"] == "web"
    assert plan_hash in executed[0]["note"]
    assert len(audit_events(cluster, namespace, "RollbackVerified")) == 1
    lines = rollback.audit_lines()
    assert [line["outcome"] for line in lines] == ["executed", "verified"]
    assert all(line["planHash"] == plan_hash for line in lines)
    assert lines[0]["who"] == "rollback-test-admin"
    # And the confirmation-to-accepted-write path took two API round trips (Lease, PATCH)
    assert lines[0]["roundTrips"] == 2
    assert lines[1]["timeToRestoreSeconds"] >= 0


def test_the_template_written_is_the_one_kubectl_rollout_undo_writes(
    cluster: Cluster, namespace: str, other_namespace: str, rollback: Run
) -> None:
    api = cluster.api()
    # Given two identical Deployments with identical histories, in two namespaces,
    # the second gaining an annotation after revision 1
    for ns in (namespace, other_namespace):
        given_deployment(api, ns, "web", image("v1"), annotations={"team": "payments"})
        serve()
        when_image_set(api, ns, "web", image("v2"))
        wait_rollout_complete(api, ns, "web")
        kubectl(cluster, "annotate", "-n", ns, "deployment/web", "runbook=https://r.example/web")
    # When kubectl undoes one to revision 1 and we roll the other back to revision 1
    kubectl(cluster, "rollout", "undo", "-n", other_namespace, "deployment/web", "--to-revision=1")
    result = rollback("execute", "deployment/web", "--to-revision", "1", input="web\n")
    assert result.exit_code == 0, result.output
    # Then the pod templates are identical
    ours = read_deployment(api, namespace, "web")
    theirs = read_deployment(api, other_namespace, "web")
    assert ours["spec"]["template"] == theirs["spec"]["template"]
    # And every annotation kubectl kept is kept the same, and we also keep the later one
    ours_a, theirs_a = ours["metadata"]["annotations"], theirs["metadata"]["annotations"]
    assert "runbook" not in theirs_a
    assert ours_a["runbook"] == "https://r.example/web"
    assert {k: v for k, v in ours_a.items() if k not in ("runbook", LAST_ACTION)} == theirs_a


def test_a_statefulset_is_rolled_back_through_its_controller_revisions(
    cluster: Cluster, namespace: str, rollback: Run
) -> None:
    api = cluster.api()
    # Given a StatefulSet updated from v1 to v2
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 2,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {
                    "containers": [{"name": "db", "image": image("v1", "db")}],
                    "terminationGracePeriodSeconds": 0,
                },
            },
        },
    }
    apply(cluster, namespace, sts)
    kubectl(cluster, "rollout", "status", "-n", namespace, "statefulset/db", "--timeout=60s")
    serve()
    kubectl(cluster, "set", "image", "-n", namespace, "statefulset/db", f"db={image('v2', 'db')}")
    kubectl(cluster, "rollout", "status", "-n", namespace, "statefulset/db", "--timeout=60s")
    # When we roll it back (to the previous revision)
    result = rollback("execute", "statefulset/db", input="db\n")
    # Then its template and its pods are back on v1
    assert result.exit_code == 0, result.output
    assert "Plan: roll back statefulset/db from revision 2 to revision 1" in result.stdout
    got = json.loads(
        kubectl(cluster, "get", "-n", namespace, "statefulset/db", "-o", "json").stdout
    )
    assert got["spec"]["template"]["spec"]["containers"][0]["image"] == image("v1", "db")
    assert LAST_ACTION in got["metadata"]["annotations"]
    assert got["status"]["currentRevision"] == got["status"]["updateRevision"]
    wait_for(
        lambda: (
            {p["spec"]["containers"][0]["image"] for p in ready_pods(api, namespace, "app=db")}
            == {image("v1", "db")}
        ),
        what="db pods on v1",
    )


# --- flags and config ----------------------------------------------------------------------


def test_a_feature_flag_is_disabled_and_the_disable_undone(
    cluster: Cluster, namespace: str, rollback: Run
) -> None:
    # Given a FeatureFlag whose new-checkout flag serves "on"
    apply_crd(cluster, "openfeature.yaml")
    flags = {
        "apiVersion": "core.openfeature.dev/v1beta1",
        "kind": "FeatureFlag",
        "metadata": {"name": "shop-flags"},
        "spec": {
            "flagSpec": {
                "flags": {
                    "new-checkout": {
                        "state": "ENABLED",
                        "variants": {"on": True, "off": False},
                        "defaultVariant": "on",
                    }
                }
            }
        },
    }
    apply(cluster, namespace, flags)

    def read() -> dict[str, Any]:
        out = kubectl(cluster, "get", "-n", namespace, "featureflag/shop-flags", "-o", "json")
        return dict(json.loads(out.stdout))

    # When we disable it
    disable = rollback(
        "execute", "flag/new-checkout", "--resource", "featureflag/shop-flags", input="shop-flags\n"
    )
    # Then its default variant is off, and the prior value is recorded
    assert disable.exit_code == 0, disable.output
    assert (
        "    - flag new-checkout: defaultVariant on -> off (variant value false)" in disable.stdout
    )
    flag = read()["spec"]["flagSpec"]["flags"]["new-checkout"]
    assert flag["defaultVariant"] == "off"
    # When we undo it
    undo = rollback(
        "execute",
        "flag/new-checkout",
        "--resource",
        "featureflag/shop-flags",
        "--undo",
        input="shop-flags\n",
    )
    # Then it serves "on" again
    assert undo.exit_code == 0, undo.output
    assert read()["spec"]["flagSpec"]["flags"]["new-checkout"]["defaultVariant"] == "on"
    lines = rollback.audit_lines()
    assert [line["outcome"] for line in lines] == ["executed", "executed"]
    # confirmation -> accepted write: create the Lease, PATCH the FeatureFlag
    assert [line["roundTrips"] for line in lines] == [2, 2]


def test_a_config_revert_restores_the_data_and_restarts_the_consumer(
    cluster: Cluster, namespace: str, rollback: Run, tmp_path: Path
) -> None:
    api = cluster.api()
    # Given web reads web-config through envFrom, and web-config was changed to bad values
    good = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config"}}
    good["data"] = {"POOL_SIZE": "20", "MODE": "safe"}
    apply(cluster, namespace, good)
    given_deployment(api, namespace, "web", image("v1"))
    kubectl(cluster, "set", "env", "-n", namespace, "deployment/web", "--from=configmap/web-config")
    wait_rollout_complete(api, namespace, "web")
    before = read_deployment(api, namespace, "web")
    apply(cluster, namespace, dict(good, data={"POOL_SIZE": "1"}))
    saved = tmp_path / "web-config.yaml"
    saved.write_text(json.dumps(good))
    # When we revert it from the saved manifest
    result = rollback(
        "execute", "configmap/web-config", "--from-file", str(saved), input="web-config\n"
    )
    # Then the data is back, the consumer was restarted and rolled out
    assert result.exit_code == 0, result.output
    assert "    - restart deployment/web (it reads it through environment variables)" in (
        result.stdout
    )
    cm = json.loads(kubectl(cluster, "get", "-n", namespace, "cm/web-config", "-o", "json").stdout)
    assert cm["data"] == good["data"]
    after = wait_rollout_complete(api, namespace, "web")
    assert after["metadata"]["generation"] > before["metadata"]["generation"]
    assert (
        "kubectl.kubernetes.io/restartedAt" in after["spec"]["template"]["metadata"]["annotations"]
    )
    # And the bad content is recorded in the ledger, so the revert can itself be reverted
    ledger = json.loads(
        kubectl(
            cluster,
            "get",
            "-n",
            namespace,
            "controllerrevisions",
            "-l",
            "rollback.io/configmap=web-config",
            "-o",
            "json",
        ).stdout
    )["items"]
    assert [(r["revision"], r["data"]["data"]) for r in ledger] == [(1, {"POOL_SIZE": "1"})]
    # confirmation -> accepted write: the Lease, the ledger record, the ConfigMap PATCH
    assert rollback.audit_lines()[0]["roundTrips"] == 3
    back = rollback("execute", "configmap/web-config", "--to", "1", "--dry-run")
    assert back.exit_code == 0, back.output
    assert "    - key MODE: removed (4 bytes)" in back.stdout


# --- guards ------------------------------------------------------------------------------


def test_a_change_between_plan_and_write_is_refused_and_nothing_is_written(
    cluster: Cluster, namespace: str, rollback: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from controller.cli.execute import TerminalConsole

    api = cluster.api()
    given_history(api, namespace)

    # Given someone scales web while the engineer reads the plan at the prompt
    typed = TerminalConsole.ask

    def someone_else_writes_first(self: TerminalConsole, prompt: str) -> str | None:
        kubectl(cluster, "scale", "-n", namespace, "deployment/web", "--replicas=3")
        return typed(self, prompt)

    monkeypatch.setattr(TerminalConsole, "ask", someone_else_writes_first)
    # When the engineer confirms
    result = rollback("execute", "deployment/web", "--to-revision", "2", input="web\n")
    # Then the write is refused, and the Deployment is exactly as the other writer left it
    assert result.exit_code == 4, result.output
    assert "changed since the plan was made" in result.stderr
    assert "nothing was written" in result.stderr
    after = read_deployment(api, namespace, "web")
    assert template_images(after) == [image("v3-broken")]
    assert after["spec"]["replicas"] == 3
    assert LAST_ACTION not in after["metadata"]["annotations"]
    assert [line["outcome"] for line in rollback.audit_lines()] == ["failed"]


def test_of_two_racing_executes_exactly_one_acts(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    from controller.actions.execute import Settings, TargetSpec, run
    from controller.actions.guards import Attempt
    from controller.kube import Kube
    from controller.policy import default_policy

    api = cluster.api()
    given_history(api, namespace)
    barrier = threading.Barrier(2, timeout=30)

    class Console:
        """Both engineers see their plan, then confirm at the same instant."""

        def show(self, *args: Any) -> None: ...

        def line(self, text: str) -> None: ...

        def ask(self, prompt: str) -> str | None:
            barrier.wait()
            return "web"

        def progress(self, text: str) -> None: ...

        def progress_end(self) -> None: ...

    outcomes: list[str] = []

    def engineer(n: int) -> None:
        kube = Kube(kubeconfig=cluster.kubeconfig)
        settings = Settings(
            attempt=Attempt(),
            policy=default_policy(),
            audit_log=tmp_path / f"audit-{n}.jsonl",
        )
        spec = TargetSpec(kind="Deployment", name="web", namespace=namespace, to_revision=2)
        try:
            outcomes.append(run(kube, spec, settings, Console()).outcome.value)
        except Exception as err:
            outcomes.append(f"{type(err).__name__}: {err}")
        finally:
            kube.close()

    threads = [threading.Thread(target=engineer, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    # Exactly one verified rollback; the other refused (locked, or its plan went stale)
    kinds = sorted(o.split(":")[0] for o in outcomes)
    assert kinds in (["LockedError", "verified"], ["StalePlanError", "verified"]), outcomes
    executed = [
        line
        for n in (1, 2)
        for line in read_audit(tmp_path / f"audit-{n}.jsonl")
        if line["outcome"] == "executed"
    ]
    assert len(executed) == 1
    assert [revision_of(rs) for rs in replica_sets(api, namespace, "web")] == [1, 3, 4]


def settled(deployment: dict[str, Any]) -> bool:
    """The Deployment controller has observed the latest spec (no status write pending)."""
    status = deployment.get("status") or {}
    return bool(status.get("observedGeneration") == deployment["metadata"]["generation"])


def test_a_dry_run_changes_nothing_and_fails_on_a_paused_deployment(
    cluster: Cluster, namespace: str, rollback: Run
) -> None:
    api = cluster.api()
    given_history(api, namespace)
    wait_for(lambda: settled(read_deployment(api, namespace, "web")), what="status settled")
    rv = read_deployment(api, namespace, "web")["metadata"]["resourceVersion"]
    # When we dry-run the rollback
    result = rollback("execute", "deployment/web", "--to-revision", "2", "--dry-run")
    # Then the server accepted the exact write and nothing changed
    assert result.exit_code == 0, result.output
    assert "dry run: the API server accepted all 1 write(s) of plan sha256:" in result.stdout
    assert read_deployment(api, namespace, "web")["metadata"]["resourceVersion"] == rv
    # Given the Deployment is paused
    kubectl(cluster, "rollout", "pause", "-n", namespace, "deployment/web")
    # (the Deployment controller then writes status on its own: wait until it
    # has seen the pause, or its write would look like ours)
    wait_for(
        lambda: settled(read_deployment(api, namespace, "web")), what="status settled after pause"
    )
    paused_rv = read_deployment(api, namespace, "web")["metadata"]["resourceVersion"]
    # When we dry-run again
    refused = rollback("execute", "deployment/web", "--to-revision", "2", "--dry-run")
    # Then the dry run fails exactly as the real run would, and still nothing changed
    assert refused.exit_code == 4, refused.output
    assert refused.stderr.strip() == (
        "error: refused: deployment/web is paused: a rollback would not roll out; resume it "
        "first (kubectl rollout resume) or pass --resume to unpause in the same write"
    )
    assert read_deployment(api, namespace, "web")["metadata"]["resourceVersion"] == paused_rv
    real = rollback("execute", "deployment/web", "--to-revision", "2", input="web\n")
    assert real.exit_code == 4
    assert real.stderr == refused.stderr
    # And --resume unpauses in the same guarded write
    resumed = rollback("execute", "deployment/web", "--to-revision", "2", "--resume", input="web\n")
    assert resumed.exit_code == 0, resumed.output
    after = read_deployment(api, namespace, "web")
    assert not after["spec"].get("paused")
    assert template_images(after) == [image("v2")]


def test_a_gitops_owned_target_is_refused_then_handled_with_suspend_gitops(
    cluster: Cluster, namespace: str, rollback: Run
) -> None:
    api = cluster.api()
    apply_crd(cluster, "argocd.yaml")
    # Given web is synced by an Argo CD Application with automated sync and self-heal
    app = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "web"},
        "spec": {
            "project": "default",
            "destination": {"namespace": namespace, "server": "https://kubernetes.default.svc"},
            "source": {"repoURL": "https://git.example/web.git", "path": "deploy"},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
    }
    apply(cluster, namespace, app)
    given_history(
        api,
        namespace,
        annotations={"argocd.argoproj.io/tracking-id": f"web:apps/Deployment:{namespace}/web"},
    )
    rv = read_deployment(api, namespace, "web")["metadata"]["resourceVersion"]
    # When we execute under the shipped policy (gitops: refuse)
    refused = rollback("execute", "deployment/web", "--to-revision", "2", input="web\n")
    # Then it is refused, saying why and what to do, and nothing changed
    assert refused.exit_code == 4, refused.output
    assert "application/web" in refused.stderr
    assert "would revert a manual change" in refused.stderr
    assert "roll back in Git" in refused.stderr
    # And under a policy that allows suspension, without --suspend-gitops, it says how
    told = rollback(
        "execute", "deployment/web", "--to-revision", "2", input="web\n", policy=PERMISSIVE_POLICY
    )
    assert told.exit_code == 4
    assert "pass --suspend-gitops" in told.stderr
    assert read_deployment(api, namespace, "web")["metadata"]["resourceVersion"] == rv
    # When we pass --suspend-gitops
    done = rollback(
        "execute",
        "deployment/web",
        "--to-revision",
        "2",
        "--suspend-gitops",
        input="web\n",
        policy=PERMISSIVE_POLICY,
    )
    # Then the Application was suspended first, with its previous setting recorded on it
    assert done.exit_code == 0, done.output
    assert "rollback resume-gitops application/web" in done.stdout
    got = json.loads(
        kubectl(cluster, "get", "-n", namespace, "application/web", "-o", "json").stdout
    )
    assert "automated" not in got["spec"]["syncPolicy"]
    record = json.loads(got["metadata"]["annotations"]["rollback.io/gitops-suspended"])
    assert record["previous"] == {"prune": True, "selfHeal": True}
    assert template_images(read_deployment(api, namespace, "web")) == [image("v2")]
    executed = [line for line in rollback.audit_lines() if line["outcome"] == "executed"]
    # confirmation -> accepted write: the Lease, the Application PATCH, the Deployment PATCH
    assert executed[0]["roundTrips"] == 3
    # When we resume it, the recorded setting comes back exactly
    resumed = rollback("resume-gitops", "application/web")
    assert resumed.exit_code == 0, resumed.output
    got = json.loads(
        kubectl(cluster, "get", "-n", namespace, "application/web", "-o", "json").stdout
    )
    assert got["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert "rollback.io/gitops-suspended" not in got["metadata"].get("annotations", {})


def test_a_read_only_token_gets_a_clear_forbidden_message_and_nothing_changes(
    cluster: Cluster, namespace: str, rollback: Run, tmp_path: Path
) -> None:
    api = cluster.api()
    given_history(api, namespace)
    # Given a ServiceAccount that may only read Deployments and ReplicaSets
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "read-only"},
        "rules": [
            {
                "apiGroups": ["apps"],
                "resources": ["deployments", "replicasets"],
                "verbs": ["get", "list", "watch"],
            }
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "read-only"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-only"},
        "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": namespace}],
    }
    apply(cluster, namespace, role, binding)
    config = service_account_kubeconfig(
        cluster, namespace, "viewer", tmp_path / "viewer.kubeconfig"
    )
    rv = read_deployment(api, namespace, "web")["metadata"]["resourceVersion"]
    # When it tries to execute
    result = rollback(
        "execute", "deployment/web", "--to-revision", "2", input="web\n", kubeconfig=str(config)
    )
    # Then one line names the verb and the resource, exit 3, and nothing changed
    assert result.exit_code == 3, result.output
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: forbidden: ")
    assert 'cannot patch resource "deployments" in API group "apps"' in line
    assert f"system:serviceaccount:{namespace}:viewer" in line
    assert "Type the name" not in result.output  # refused before anyone was asked
    assert read_deployment(api, namespace, "web")["metadata"]["resourceVersion"] == rv


def test_a_wrong_name_at_the_prompt_aborts_with_no_change(
    cluster: Cluster, namespace: str, rollback: Run
) -> None:
    api = cluster.api()
    given_history(api, namespace)
    rv = read_deployment(api, namespace, "web")["metadata"]["resourceVersion"]
    result = rollback("execute", "deployment/web", "--to-revision", "2", input="wbe\n")
    assert result.exit_code == 5, result.output
    assert "Type the name of the Deployment to confirm (web): " in result.stderr
    assert result.stderr.strip().endswith("error: aborted: 'wbe' is not 'web'; nothing was changed")
    assert read_deployment(api, namespace, "web")["metadata"]["resourceVersion"] == rv
    assert [line["outcome"] for line in rollback.audit_lines()] == ["aborted"]
    assert len(audit_events(cluster, namespace, "RollbackAborted")) == 1


def test_yes_and_plan_hash_are_honoured_only_as_policy_and_the_review_allow(
    cluster: Cluster, namespace: str, rollback: Run
) -> None:
    api = cluster.api()
    given_history(api, namespace)
    # --yes under the shipped policy: unattended is not allowed
    unattended = rollback("execute", "deployment/web", "--to-revision", "2", "--yes")
    assert unattended.exit_code == 4
    assert "refused:" in unattended.stderr
    # The reviewed hash, from a dry run
    review = rollback("execute", "deployment/web", "--to-revision", "2", "--dry-run")
    reviewed = review.stdout.split("plan hash  ")[1].split()[0]
    # Someone changes the Deployment after the review: the fresh plan's hash differs
    kubectl(cluster, "annotate", "-n", namespace, "deployment/web", "note=changed")
    stale = rollback(
        "execute",
        "deployment/web",
        "--to-revision",
        "2",
        "--yes",
        "--plan-hash",
        reviewed,
        policy=PERMISSIVE_POLICY,
    )
    assert stale.exit_code == 4
    assert f"--plan-hash {reviewed} was given, the fresh plan is sha256:" in stale.stderr
    assert template_images(read_deployment(api, namespace, "web")) == [image("v3-broken")]
    # With the fresh hash and a policy that allows unattended execution, it runs without a prompt
    fresh = rollback("execute", "deployment/web", "--to-revision", "2", "--dry-run")
    current = fresh.stdout.split("plan hash  ")[1].split()[0]
    done = rollback(
        "execute",
        "deployment/web",
        "--to-revision",
        "2",
        "--yes",
        "--plan-hash",
        current,
        policy=PERMISSIVE_POLICY,
    )
    assert done.exit_code == 0, done.output
    assert "Type the name" not in done.output
    assert template_images(read_deployment(api, namespace, "web")) == [image("v2")]


def test_already_at_the_target_is_a_noop_that_says_so(
    cluster: Cluster, namespace: str, rollback: Run
) -> None:
    api = cluster.api()
    given_deployment(api, namespace, "web", image("v1"))
    when_image_set(api, namespace, "web", image("v2"))
    wait_rollout_complete(api, namespace, "web")
    rv = read_deployment(api, namespace, "web")["metadata"]["resourceVersion"]
    result = rollback("execute", "deployment/web", "--to-revision", "2")
    assert result.exit_code == 0, result.output
    assert "  no-op      deployment/web already runs the template of revision 2" in result.stdout
    assert read_deployment(api, namespace, "web")["metadata"]["resourceVersion"] == rv


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ("deployment/nope",),
            2,
            "error: deployment/nope not found in namespace {ns}",
        ),
        (
            ("deployment/web", "--to-revision", "9"),
            2,
            "error: deployment/web has no revision 9 (it does not exist yet); "
            "known revisions: 1, 2",
        ),
        (
            ("pod/web",),
            2,
            "error: target 'pod/web': execute acts on deployment, statefulset, "
            "daemonset, flag or configmap",
        ),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(
    cluster: Cluster,
    namespace: str,
    rollback: Run,
    *,
    args: tuple[str, ...],
    code: int,
    message: str,
) -> None:
    api = cluster.api()
    given_deployment(api, namespace, "web", image("v1"))
    when_image_set(api, namespace, "web", image("v2"))
    wait_rollout_complete(api, namespace, "web")
    result = rollback("execute", *args)
    assert result.exit_code == code, result.output
    assert result.stderr.strip() == message.format(ns=namespace)


def test_an_unreachable_cluster_is_one_line(rollback: Run, tmp_path: Path) -> None:
    config = tmp_path / "dead.kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "x"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    result = rollback("execute", "deployment/web", kubeconfig=str(config))
    assert result.exit_code == 3
    assert result.stderr.strip() == (
        "error: cannot reach the Kubernetes API at https://127.0.0.1:9: connection refused"
    )


def test_without_a_target_execute_runs_the_assessments_recommendation(
    cluster: Cluster, namespace: str, rollback: Run
) -> None:
    api = cluster.api()
    # Given web's newest revision is broken
    given_history(api, namespace)
    # When the engineer runs execute with assess's inputs only
    result = rollback(
        "execute", "--workload", "deployment/web", "--incident-start", "now", input="web\n"
    )
    # Then the assessment's recommendation is shown, planned afresh, confirmed and done
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Assessment: ")
    assert "Plan: roll back deployment/web from revision 3 to revision 2" in result.stdout
    assert template_images(read_deployment(api, namespace, "web")) == [image("v2")]
    stamp = json.loads(
        read_deployment(api, namespace, "web")["metadata"]["annotations"][LAST_ACTION]
    )
    assert stamp["why"] == result.stdout.splitlines()[0].removeprefix("Assessment: ")


def test_a_rollout_that_does_not_converge_is_reported_once_and_left_alone(
    cluster: Cluster, namespace: str, rollback: Run
) -> None:
    api = cluster.api()
    # Given web went v1 -> v2-broken -> v3, and someone insists on revision 2 (unsafe:
    # it was unhealthy, so only break-glass gets past the safety verdict)
    given_deployment(api, namespace, "web", image("v1"), progress_deadline=600)
    serve()
    when_image_set(api, namespace, "web", image("v2-broken"))
    serve()
    when_image_set(api, namespace, "web", image("v3"))
    wait_rollout_complete(api, namespace, "web")
    # When it is executed with a short timeout
    result = rollback(
        "execute",
        "deployment/web",
        "--to-revision",
        "2",
        "--force",
        "--reason",
        "reproducing the v2 crash",
        "--timeout",
        "4s",
        input="web\n",
    )
    # Then it reports that the rollout did not converge (exit 1), and took no second action
    assert result.exit_code == 1, result.output
    assert "error: deployment/web did not converge: " in result.stderr
    assert "no further action was taken (one attempt only)" in result.stderr
    assert template_images(read_deployment(api, namespace, "web")) == [image("v2-broken")]
    assert [line["outcome"] for line in rollback.audit_lines()] == ["executed", "not-converged"]
    assert len(audit_events(cluster, namespace, "RollbackNotConverged")) == 1
    # And the lock was released for whoever acts next
    leases = kubectl(cluster, "get", "leases", "-n", namespace, "-o", "name").stdout.split()
    assert leases == []


def test_a_held_lock_refuses_and_an_expired_one_is_taken_over(
    cluster: Cluster, namespace: str, rollback: Run
) -> None:
    api = cluster.api()
    given_history(api, namespace)

    def lease(renewed: str) -> dict[str, Any]:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "rollback-lock-deployment-web"},
            "spec": {
                "holderIdentity": "bob (other-laptop pid 42)",
                "leaseDurationSeconds": 300,
                "acquireTime": renewed,
                "renewTime": renewed,
            },
        }

    # Given bob holds the lock right now
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    apply(cluster, namespace, lease(now))
    held = rollback("execute", "deployment/web", "--to-revision", "2", input="web\n")
    # Then we are refused before being asked, naming bob
    assert held.exit_code == 4, held.output
    assert "deployment/web is locked by bob (other-laptop pid 42) until " in held.stderr
    assert "Type the name" not in held.output
    # Given bob's lock expired an hour ago (his laptop died)
    kubectl(cluster, "delete", "lease", "-n", namespace, "rollback-lock-deployment-web")
    apply(cluster, namespace, lease("2026-01-01T00:00:00.000000Z"))
    taken = rollback("execute", "deployment/web", "--to-revision", "2", input="web\n")
    # Then we take it over and act; the takeover costs a GET and a PUT more
    assert taken.exit_code == 0, taken.output
    executed = [line for line in rollback.audit_lines() if line["outcome"] == "executed"]
    assert executed[0]["roundTrips"] == 4
    assert template_images(read_deployment(api, namespace, "web")) == [image("v2")]
