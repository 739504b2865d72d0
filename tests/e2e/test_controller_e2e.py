"""``rollback controller`` against a real API server: alerts in, guarded actions, approvals, ledger.

The controller runs as a real process (``python -m controller controller run``) with a
ServiceAccount token bound to the roles in manifests/rbac.yaml, exactly the permissions
it has in cluster: every test also shows that those roles are enough.  Its leader Lease
and incident records live in the test's namespace.  Alertmanager is played by posting
its webhook payload; notifications go to a loopback HTTP receiver.

The cluster's clock is real, so policies shorten "known-good" to 2 seconds and each
healthy revision serves 3 seconds before the next (creation timestamps have one-second
resolution: a revision replaced within a second looks never-healthy).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from controller.cli import main
from tests.cluster import Cluster
from tests.e2e.steps import (
    ROOT,
    apply_crd,
    deployment_manifest,
    events,
    given_deployment,
    image,
    kubectl,
    read_deployment,
    ready_pods,
    service_account_kubeconfig,
    template_images,
    wait_deployment_condition,
    wait_for,
    wait_rollout_complete,
    when_image_set,
)

pytestmark = [pytest.mark.e2e, pytest.mark.kwok]

MANIFESTS = ROOT / "manifests"
CONTROLLER_SA = "system:serviceaccount:rollback-system:rollback-controller"
LAST_ACTION = "rollback.io/last-action"

STAGING = """\
version: 1
scoring: {knownGoodAfter: 2s}
scopes:
  - name: default
    rules:
      confirmation: none
      unattended: {allowed: true, verdicts: [safe]}
      rateLimit: {maxActions: 5, per: 1h}
      notify: ["webhook:RECEIVER"]
"""
PRODUCTION = """\
version: 1
scoring: {knownGoodAfter: 2s}
scopes:
  - name: production
    match: {namespaces: ["t-*"]}
    rules:
      confirmation: typed-name
      approvals: {count: 1, approvers: ["system:serviceaccounts:NAMESPACE"]}
      unattended: {allowed: false}
      notify: ["webhook:RECEIVER"]
"""


# --- the world around the controller ------------------------------------------------------


@pytest.fixture(scope="session")
def installed(cluster: Cluster) -> None:
    """What `kubectl apply -k manifests/` installs, minus the Deployment: CRDs, admission, RBAC."""
    apply_crd(cluster, MANIFESTS / "crds" / "rollback.io.yaml")
    kubectl(
        cluster,
        "apply",
        "-f",
        str(MANIFESTS / "namespace.yaml"),
        "-f",
        str(MANIFESTS / "approvals-admission.yaml"),
        "-f",
        str(MANIFESTS / "rbac.yaml"),
    )


def bind(cluster: Cluster, namespace: str, role: str, subject: str) -> None:
    """A RoleBinding in ``namespace`` of ClusterRole ``role`` to ``subject`` (sa NS:NAME)."""
    kubectl(
        cluster,
        "create",
        "rolebinding",
        f"{role}-{uuid.uuid4().hex[:5]}",
        "-n",
        namespace,
        f"--clusterrole={role}",
        f"--serviceaccount={subject}",
    )


@pytest.fixture
def controller_kubeconfig(
    cluster: Cluster, namespace: str, installed: None, tmp_path: Path
) -> Path:
    """The controller's own identity, with the manifests' roles bound for this namespace.

    The namespace is both watched (rollback-controller-namespace) and the controller's
    home (rollback-controller-self: its Lease and incident records).
    """
    bind(cluster, namespace, "rollback-controller-namespace", "rollback-system:rollback-controller")
    bind(cluster, namespace, "rollback-controller-self", "rollback-system:rollback-controller")
    return service_account_kubeconfig(
        cluster,
        "rollback-system",
        "rollback-controller",
        tmp_path / "controller.kubeconfig",
        create=False,
    )


@pytest.fixture
def approver_kubeconfig(cluster: Cluster, namespace: str, installed: None, tmp_path: Path) -> Path:
    """A person allowed to approve here (ClusterRole rollback-approver), as a ServiceAccount."""
    path = service_account_kubeconfig(
        cluster, namespace, "approver", tmp_path / "approver.kubeconfig"
    )
    bind(cluster, namespace, "rollback-approver", f"{namespace}:approver")
    return path


class Receiver:
    """A loopback HTTP server standing in for a notification webhook."""

    def __init__(self) -> None:
        self.notices: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.notices.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        return [n["event"] for n in self.notices]

    def first(self, event: str) -> dict[str, Any] | None:
        return next((n for n in self.notices if n["event"] == event), None)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


class ControllerProcess:
    """``rollback controller run`` as a child process, on a free loopback port."""

    LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+) ")

    def __init__(
        self,
        cluster: Cluster,
        kubeconfig: Path,
        namespace: str,
        policy: Path,
        *,
        tmp_path: Path,
        name: str = "a",
        extra: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.log_path = tmp_path / f"controller-{name}.log"
        self.audit = tmp_path / f"audit-{name}.jsonl"
        env = {k: v for k, v in cluster.env.items() if not k.startswith("ROLLBACK_")}
        env.pop("KUBECONFIG", None)
        args = [
            sys.executable, "-m", "controller", "controller", "run",
            "--kubeconfig", str(kubeconfig),
            "-n", namespace,
            "--lease-namespace", namespace,
            "--listen", "127.0.0.1:0",
            "--policy", str(policy),
            "--identity", f"controller-{name}",
            "--audit-log", str(self.audit),
            "--resync", "1s",
            "--ledger-interval", "1s",
            "--lease-duration", "6s",
            "--renew-deadline", "4s",
            "--retry-period", "1s",
            "--timeout", "60s",
            *extra,
        ]  # fmt: skip
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        match = wait_for(
            lambda: self.LISTENING.search(self.log()) or self._died(),
            timeout=60,
            what=f"controller {name} listening",
        )
        assert isinstance(match, re.Match), self.log()
        self.url = f"http://127.0.0.1:{match.group(1)}"
        self.started: dict[str, str] = {}

    def _died(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"controller {self.name} exited {self.proc.returncode}:\n{self.log()}"
            )

    def log(self) -> str:
        return self.log_path.read_text()

    def alert(
        self,
        namespace: str,
        *,
        status: str = "firing",
        fingerprint: str = "c1a2b3c4d5e6f708",
        starts: str | None = None,
        **labels: str,
    ) -> dict[str, Any]:
        """Post one alert as Alertmanager would; returns the controller's answer.

        A resolution must repeat the firing alert's start (``starts``): that is
        how Alertmanager sends it.
        """
        started = starts or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.started[fingerprint] = started
        payload = {
            "version": "4",
            "status": status,
            "alerts": [
                {
                    "status": status,
                    "labels": {"alertname": "WebDown", "namespace": namespace, **labels},
                    "annotations": {"summary": "errors are up"},
                    "startsAt": started,
                    "fingerprint": fingerprint,
                }
            ],
        }
        status_code, text = post_raw(self.url + "/alerts", json.dumps(payload).encode())
        assert status_code == 200, text
        answer: dict[str, Any] = json.loads(text)
        return answer

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def incidents(self) -> list[dict[str, Any]]:
        status, text = self.get("/incidents")
        assert status == 200, text
        items: list[dict[str, Any]] = json.loads(text)["incidents"]
        return items

    def audit_lines(self) -> list[dict[str, Any]]:
        if not self.audit.exists():
            return []
        return [json.loads(line) for line in self.audit.read_text().splitlines()]

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture
def controllers(
    cluster: Cluster,
    namespace: str,
    controller_kubeconfig: Path,
    receiver: Receiver,
    tmp_path: Path,
) -> Iterator[Any]:
    """Start controllers with ``start(policy_text, name=..., *extra)``; all stopped afterwards."""
    started: list[ControllerProcess] = []

    def start(policy_text: str, name: str = "a", *extra: str) -> ControllerProcess:
        path = tmp_path / f"policy-{name}.yaml"
        path.write_text(
            policy_text.replace("RECEIVER", receiver.url).replace("NAMESPACE", namespace)
        )
        process = ControllerProcess(
            cluster,
            controller_kubeconfig,
            namespace,
            path,
            tmp_path=tmp_path,
            name=name,
            extra=extra,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        try:
            process.stop(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def serve() -> None:
    """Let a healthy revision serve long enough to count as known-good (2 s) and be told apart."""
    time.sleep(3.1)


def given_bad_release(api: Any, namespace: str, name: str = "web") -> None:
    """NAME: v1 -> v2 (healthy) -> v3-broken, stalled past a 5 s progress deadline."""
    given_deployment(api, namespace, name, image("v1", name), progress_deadline=5)
    serve()
    when_image_set(api, namespace, name, image("v2", name))
    wait_rollout_complete(api, namespace, name)
    serve()
    when_image_set(api, namespace, name, image("v3-broken", name))
    wait_deployment_condition(
        api, namespace, name, "Progressing", "False", reason="ProgressDeadlineExceeded"
    )


def restored(api: Any, namespace: str, name: str = "web") -> dict[str, Any] | None:
    deployment = read_deployment(api, namespace, name)
    if template_images(deployment) != [image("v2", name)]:
        return None
    if len(ready_pods(api, namespace, f"app={name}")) < 2:
        return None
    return deployment


def stamp(deployment: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(deployment["metadata"]["annotations"][LAST_ACTION])
    return value


def rollback(*args: str, kubeconfig: Path | str, input: str | None = None) -> Result:
    return CliRunner().invoke(
        main,
        [*args, "--kubeconfig", str(kubeconfig)],
        prog_name="rollback",
        input=input,
        env={"KUBECONFIG": None, "ROLLBACK_NAMESPACE": None, "ROLLBACK_POLICY": None},
    )


# --- tests ----------------------------------------------------------------------------------


def test_under_a_staging_policy_a_bad_rollout_is_rolled_back_on_its_own(
    cluster: Cluster, namespace: str, controllers: Any, receiver: Receiver
) -> None:
    api = cluster.api()
    # Given a release that never became Ready, after two healthy ones
    given_bad_release(api, namespace)
    controller = controllers(STAGING)
    # When Alertmanager reports the Deployment unhealthy
    answer = controller.alert(namespace, deployment="web")
    assert answer["accepted"][0]["outcome"] == "opened"
    # Then the controller rolls back to the last known-good revision, and pods are Ready
    deployment = wait_for(lambda: restored(api, namespace), timeout=90, what="web back on v2")
    record = stamp(deployment)
    assert record["who"] == CONTROLLER_SA
    assert record["to"].startswith("revision 2 ")
    assert record["incident"].startswith("c1a2b3c4d5e6f708-")
    # ...with the audit trail execute leaves: Events, the annotation, an audit line
    reasons = wait_for(
        lambda: (
            {"RollbackExecuted", "RollbackVerified"}
            <= {e["reason"] for e in events(api, namespace)}
            and {e["reason"] for e in events(api, namespace)}
        ),
        what="the audit Events",
    )
    assert "RollbackRefused" not in reasons
    lines = wait_for(
        lambda: [line for line in controller.audit_lines() if line["outcome"] == "verified"],
        what="the verified audit line",
    )
    assert lines[0]["who"] == CONTROLLER_SA
    assert lines[0]["planHash"] == record["planHash"]
    assert all(
        line["unattended"] for line in controller.audit_lines() if line["outcome"] == "executed"
    )
    # ...and everyone was told, in order
    wait_for(lambda: "verified" in receiver.events(), what="the verified notice")
    assert receiver.events()[:3] == ["incident-opened", "action-executed", "verified"]
    assert receiver.first("verified")["planHash"] == record["planHash"]  # type: ignore[index]
    # ...and the incident records the one attempt: the next passes do nothing more
    (incident,) = controller.incidents()
    assert incident["action"]["phase"] == "verified"
    # ...and each pass says what deciding cost in API requests
    assert re.search(r"pass: \w+: .* \(\d+ API requests to decide\)", controller.log())
    time.sleep(3)
    assert [e["reason"] for e in events(api, namespace)].count("RollbackExecuted") == 1
    # When the alert resolves, the incident closes and people hear it
    controller.alert(
        namespace,
        status="resolved",
        starts=controller.started["c1a2b3c4d5e6f708"],
        deployment="web",
    )
    wait_for(lambda: "incident-resolved" in receiver.events(), what="the resolved notice")
    assert controller.stop() == 0


def test_under_a_production_policy_a_second_person_approves_before_the_controller_acts(
    *,
    cluster: Cluster,
    namespace: str,
    controllers: Any,
    receiver: Receiver,
    controller_kubeconfig: Path,
    approver_kubeconfig: Path,
) -> None:
    api = cluster.api()
    given_bad_release(api, namespace)
    controller = controllers(PRODUCTION)
    # When the alert comes, the controller asks for approval and does nothing yet
    controller.alert(namespace, deployment="web")
    notice = wait_for(lambda: receiver.first("approval-requested"), what="the approval request")
    plan_hash = notice["planHash"]
    assert notice["details"]["command"] == f"rollback approve {plan_hash} -n {namespace}"
    assert notice["details"]["needs"] == [
        {
            "scope": "production",
            "count": 1,
            "approvers": [f"system:serviceaccounts:{namespace}"],
            "validFor": "1h",
        }
    ]
    request = json.loads(
        kubectl(
            cluster,
            "get",
            "approvalrequests.rollback.io",
            f"plan-{plan_hash[7:]}",
            "-n",
            namespace,
            "-o",
            "json",
        ).stdout
    )
    assert request["spec"]["requester"] == CONTROLLER_SA
    # How long approvals count travels with the request (the CRD keeps the field)
    assert [r["validFor"] for r in request["spec"]["required"]] == ["1h"]
    time.sleep(2)
    assert template_images(read_deployment(api, namespace, "web")) == [image("v3-broken")]

    # The requester cannot approve its own plan (refused, nothing recorded)
    own = rollback("approve", plan_hash, "-n", namespace, kubeconfig=controller_kubeconfig)
    assert own.exit_code == 4, own.output
    assert own.output.endswith(
        f"error: refused: you ({CONTROLLER_SA}) requested this plan; another person must approve "
        "it (four eyes); nothing was recorded\n"
    )

    # The approver sees it waiting
    waiting = rollback("approve", "-n", namespace, kubeconfig=approver_kubeconfig)
    assert waiting.exit_code == 0, waiting.output
    assert f"Plan {plan_hash}: " in waiting.output
    assert waiting.output.endswith(
        f"approvals: scope production: 0 of 1 from system:serviceaccounts:{namespace}: "
        "waiting for 1 more\n"
    )

    # A second person approves it
    given = rollback(
        "approve",
        plan_hash,
        "-n",
        namespace,
        "--reason",
        "diff checked",
        kubeconfig=approver_kubeconfig,
    )
    assert given.exit_code == 0, given.output
    approver = f"system:serviceaccount:{namespace}:approver"
    assert f"approved {plan_hash} as {approver}\n" in given.output
    assert given.output.endswith(
        f"approvals: scope production: 1 of 1 from system:serviceaccounts:{namespace}: "
        "the plan may run\n"
    )

    # Then the controller acts on exactly that plan
    deployment = wait_for(lambda: restored(api, namespace), timeout=90, what="web back on v2")
    assert stamp(deployment)["planHash"] == plan_hash
    assert stamp(deployment)["who"] == CONTROLLER_SA
    executed = wait_for(
        lambda: [line for line in controller.audit_lines() if line["outcome"] == "executed"],
        what="the executed audit line",
    )
    assert executed[0]["unattended"] is False  # a person decided
    wait_for(lambda: "verified" in receiver.events(), what="the verified notice")
    assert receiver.events().index("approval-requested") < receiver.events().index("verified")
    # ...and the listing no longer offers a plan that ran
    done = rollback("approve", "-n", namespace, kubeconfig=approver_kubeconfig)
    assert done.exit_code == 0, done.output
    assert re.search(
        r"\napprovals: stale, deployment/web changed since this plan was made "
        r"\(resourceVersion \d+, now \d+\): nothing to approve\n$",
        done.output,
    ), done.output


def test_execute_on_the_command_line_waits_for_approvals_then_proceeds(
    cluster: Cluster, namespace: str, approver_kubeconfig: Path, installed: None, tmp_path: Path
) -> None:
    api = cluster.api()
    given_bad_release(api, namespace)
    policy = tmp_path / "production.yaml"
    policy.write_text(
        PRODUCTION.replace("RECEIVER", "http://127.0.0.1:9/none").replace("NAMESPACE", namespace)
    )
    audit = tmp_path / "audit.jsonl"
    args = (
        "execute",
        "deployment/web",
        "-n",
        namespace,
        "--to-revision",
        "2",
        "--policy",
        str(policy),
        "--audit-log",
        str(audit),
    )
    # When an engineer executes under a policy that wants one approval
    waiting = rollback(*args, kubeconfig=cluster.kubeconfig)
    # Then execute refuses (exit 4), says what to run, and records the request
    assert waiting.exit_code == 4, waiting.output
    plan_hash = re.search(r"plan hash  (sha256:[0-9a-f]{16})", waiting.output).group(1)  # type: ignore[union-attr]
    assert waiting.output.endswith(
        f"error: refused: waiting for 1 approval (scope production: 0 of 1 from "
        f"system:serviceaccounts:{namespace}): run `rollback approve {plan_hash} -n {namespace}` "
        f"(approval request plan-{plan_hash[7:]} recorded)\n"
    )
    assert template_images(read_deployment(api, namespace, "web")) == [image("v3-broken")]
    # The engineer cannot approve it (they asked); the approver can
    assert (
        rollback("approve", plan_hash, "-n", namespace, kubeconfig=cluster.kubeconfig).exit_code
        == 4
    )
    assert (
        rollback("approve", plan_hash, "-n", namespace, kubeconfig=approver_kubeconfig).exit_code
        == 0
    )
    # When the engineer runs it again, it shows who approved, asks for the name, and acts
    done = rollback(*args, kubeconfig=cluster.kubeconfig, input="web\n")
    assert done.exit_code == 0, done.output
    assert f"approved by system:serviceaccount:{namespace}:approver" in done.output
    wait_for(lambda: restored(api, namespace), timeout=60, what="web back on v2")


def test_nobody_can_approve_in_another_persons_name(
    cluster: Cluster, namespace: str, approver_kubeconfig: Path
) -> None:
    forged = {
        "apiVersion": "rollback.io/v1alpha1",
        "kind": "Approval",
        "metadata": {"name": "forged", "namespace": namespace},
        "spec": {
            "planHash": "sha256:0123456789abcdef",
            "approver": {"username": "alice@example.com", "groups": ["sre-leads"]},
        },
    }
    # The admission policy may take a moment to reach the API server's cache after install.
    result = wait_for(
        lambda: (
            (
                r := kubectl(
                    cluster,
                    f"--kubeconfig={approver_kubeconfig}",
                    "create",
                    "-f",
                    "-",
                    input=json.dumps(forged),
                    check=False,
                )
            ).returncode
            and r
        ),
        what="the forged approval refused",
    )
    assert "spec.approver.username must be the user who approves" in result.stderr
    assert f"(system:serviceaccount:{namespace}:approver)" in result.stderr


def test_of_two_controllers_exactly_one_acts_and_the_other_takes_over_when_it_stops(
    cluster: Cluster, namespace: str, controllers: Any, receiver: Receiver
) -> None:
    api = cluster.api()
    for name in ("web", "api"):
        given_deployment(api, namespace, name, image("v1", name), progress_deadline=5)
    serve()
    for name in ("web", "api"):
        when_image_set(api, namespace, name, image("v2", name))
    for name in ("web", "api"):
        wait_rollout_complete(api, namespace, name)
    serve()
    for name in ("web", "api"):
        when_image_set(api, namespace, name, image("v3-broken", name))
    for name in ("web", "api"):
        wait_deployment_condition(
            api, namespace, name, "Progressing", "False", reason="ProgressDeadlineExceeded"
        )

    first = controllers(STAGING, "a")
    second = controllers(STAGING, "b")

    def holder() -> str:
        lease = json.loads(
            kubectl(
                cluster, "get", "lease", "rollback-controller", "-n", namespace, "-o", "json"
            ).stdout
        )
        return str(lease["spec"].get("holderIdentity") or "")

    leader_name = wait_for(
        lambda: holder() in ("controller-a", "controller-b") and holder(), what="a leader"
    )
    leader, standby = (first, second) if leader_name == "controller-a" else (second, first)
    assert standby.get("/readyz") == (
        200,
        f"ok: standby (controller-{standby.name}); the leader is {leader_name}\n",
    )

    # When the alert reaches the standby, the leader acts on it (incidents live in the cluster)
    standby.alert(namespace, deployment="web", fingerprint="aaaaaaaaaaaaaaaa")
    wait_for(lambda: restored(api, namespace, "web"), timeout=90, what="web back on v2")
    wait_for(
        lambda: any(line["outcome"] == "verified" for line in leader.audit_lines()),
        what="leader audit",
    )
    assert standby.audit_lines() == []
    assert "pass:" not in standby.log()
    assert [
        e["reason"] for e in events(api, namespace) if e["involvedObject"]["name"] == "web"
    ].count("RollbackExecuted") == 1

    # When the leader stops, it releases the Lease and the standby takes over
    assert leader.stop() == 0
    assert "released by" in leader.log()
    wait_for(
        lambda: holder() == f"controller-{standby.name}", timeout=30, what="the standby leading"
    )
    standby.alert(namespace, deployment="api", fingerprint="bbbbbbbbbbbbbbbb")
    wait_for(lambda: restored(api, namespace, "api"), timeout=90, what="api back on v2")
    assert stamp(read_deployment(api, namespace, "api"))["who"] == CONTROLLER_SA
    wait_for(
        lambda: any(line["outcome"] == "verified" for line in standby.audit_lines()),
        what="new leader audit",
    )
    assert all(line["target"]["name"] == "web" for line in leader.audit_lines())


def test_a_leader_that_loses_its_lease_stops_at_once_with_a_failure_code(
    cluster: Cluster, namespace: str, controllers: Any
) -> None:
    controller = controllers(STAGING)
    wait_for(lambda: controller.get("/readyz")[1].startswith("ok: leader"), what="leadership")
    # When someone else takes the Lease (another replica that judged it expired)
    lease = json.loads(
        kubectl(
            cluster, "get", "lease", "rollback-controller", "-n", namespace, "-o", "json"
        ).stdout
    )
    lease["spec"]["holderIdentity"] = "someone-else"
    kubectl(cluster, "replace", "-f", "-", input=json.dumps(lease))
    # Then the controller exits non-zero rather than keep acting
    assert controller.proc.wait(timeout=20) == 1
    assert "lost leadership: lease" in controller.log()
    assert "is now held by someone-else" in controller.log()


def test_the_ledger_records_config_changes_and_execute_restores_a_version(
    cluster: Cluster, namespace: str, controllers: Any, tmp_path: Path
) -> None:
    apply_crd(cluster, "openfeature.yaml")
    controller = controllers(STAGING, "a", "--ledger-versions", "3")

    def ledger(label: str) -> list[dict[str, Any]]:
        found = json.loads(
            kubectl(
                cluster, "get", "controllerrevisions", "-n", namespace, "-l", label, "-o", "json"
            ).stdout
        )["items"]
        return sorted(found, key=lambda r: r["revision"])

    def configmap(mode: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "web-config"},
            "data": {"mode": mode},
        }
        kubectl(cluster, "apply", "-n", namespace, "-f", "-", input=json.dumps(body))

    # Given a ConfigMap whose content changes four times, each seen by the ledger
    for count, mode in enumerate(("fast", "slow", "safe", "broken"), start=1):
        configmap(mode)
        wait_for(
            lambda n=count: len(
                [r for r in ledger("rollback.io/configmap=web-config") if r["revision"] == n]
            ),
            what=f"ledger version {count}",
        )
    # Then at most 3 versions are kept, the oldest pruned; values stay in the ledger only
    versions = wait_for(
        lambda: (v := ledger("rollback.io/configmap=web-config")) and len(v) == 3 and v,
        what="pruning to 3",
    )
    assert [v["revision"] for v in versions] == [2, 3, 4]
    assert versions[0]["data"] == {"data": {"mode": "slow"}, "binaryData": {}}
    assert "slow" not in controller.log()  # never a value in a log line
    # When an engineer restores version 2 with rollback execute
    policy = tmp_path / "policy-a.yaml"
    result = rollback(
        "execute", "configmap/web-config", "-n", namespace, "--to", "2", "--yes",
        "--policy", str(policy), "--audit-log", str(tmp_path / "audit.jsonl"),
        kubeconfig=cluster.kubeconfig,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    cm = json.loads(
        kubectl(cluster, "get", "configmap", "web-config", "-n", namespace, "-o", "json").stdout
    )
    assert cm["data"] == {"mode": "slow"}
    # A FeatureFlag's history is recorded the same way
    flag = {
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
    kubectl(cluster, "apply", "-n", namespace, "-f", "-", input=json.dumps(flag))
    recorded = wait_for(
        lambda: ledger("rollback.io/featureflag=shop-flags"), what="the flag's ledger"
    )
    assert recorded[0]["data"]["spec"] == flag["spec"]
    assert recorded[0]["metadata"]["ownerReferences"][0]["kind"] == "FeatureFlag"


def test_the_manifests_apply_with_a_server_side_dry_run(cluster: Cluster, installed: None) -> None:
    result = kubectl(cluster, "apply", "--dry-run=server", "-k", str(MANIFESTS))
    out = result.stdout
    for name in (
        "deployment.apps/rollback-controller",
        "service/rollback-controller",
        "serviceaccount/rollback-controller",
        "clusterrole.rbac.authorization.k8s.io/rollback-controller-namespace",
        "customresourcedefinition.apiextensions.k8s.io/approvals.rollback.io",
        "validatingadmissionpolicy.admissionregistration.k8s.io/approvals.rollback.io",
        "poddisruptionbudget.policy/rollback-controller",
    ):
        assert name in out, out
    # The policy the Deployment mounts is a valid policy
    import yaml

    from controller.policy import PolicySource, load_policy_sources

    docs = list(yaml.safe_load_all((MANIFESTS / "controller.yaml").read_text()))
    policy_map = next(d for d in docs if d and d["kind"] == "ConfigMap")
    policy = load_policy_sources(
        [PolicySource("controller.yaml", policy_map["data"]["policy.yaml"])]
    )
    assert policy.scope("default") is not None


def test_alerts_the_controller_cannot_place_are_answered_not_crashed_on(
    cluster: Cluster, namespace: str, controllers: Any
) -> None:
    controller = controllers(STAGING)
    answer = controller.alert("elsewhere", deployment="web")
    assert answer["accepted"] == []
    assert (
        answer["ignored"][0]["reason"]
        == f"namespace elsewhere is not watched here (watching {namespace})"
    )
    # ...and said in the log, since Alertmanager will not resend an answered alert
    wait_for(
        lambda: (
            "alert WebDown ignored: namespace elsewhere is not watched here" in controller.log()
        ),
        what="the warning about the ignored alert",
    )
    status, text = post_raw(controller.url + "/alerts", b'{"alerts": "nope"}')
    assert (status, text) == (400, "alerts: expected a list, got a string\n")
    assert controller.get("/healthz") == (200, "ok\n")
    assert controller.proc.poll() is None


def post_raw(url: str, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def when_pods_crash(cluster: Cluster, namespace: str, selector: str) -> None:
    """What the kubelet writes when running containers start to crash-loop (kwok does not)."""
    from kubernetes import client

    from tests.e2e.steps import pods

    core = client.CoreV1Api(cluster.api())
    moment = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for pod in pods(cluster.api(), namespace, selector):
        container = pod["spec"]["containers"][0]
        status = {
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "False", "lastTransitionTime": moment,
                     "reason": "ContainersNotReady"},
                    {"type": "ContainersReady", "status": "False", "lastTransitionTime": moment,
                     "reason": "ContainersNotReady"},
                ],
                "containerStatuses": [{
                    "name": container["name"], "image": container["image"], "imageID": "",
                    "ready": False, "started": False, "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff",
                                          "message": "back-off 40s restarting failed container"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                                 "startedAt": moment, "finishedAt": moment}},
                }],
            }
        }  # fmt: skip
        core.patch_namespaced_pod_status(pod["metadata"]["name"], namespace, status)


def test_with_the_ledger_a_config_change_that_broke_its_consumer_is_reverted(
    cluster: Cluster, namespace: str, controllers: Any, receiver: Receiver
) -> None:
    api = cluster.api()
    controller = controllers(STAGING)
    # Given a Deployment reading a ConfigMap through env, both recorded by the ledger
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "api-config"},
        "data": {"POOL_SIZE": "20"},
    }
    kubectl(cluster, "apply", "-n", namespace, "-f", "-", input=json.dumps(config))
    manifest = deployment_manifest("api", image("v1", "api"))
    manifest["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
        {"configMapRef": {"name": "api-config"}}
    ]
    kubectl(cluster, "apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    wait_rollout_complete(api, namespace, "api")
    serve()
    # When someone edits the ConfigMap and the pods start crashing
    kubectl(
        cluster, "-n", namespace, "patch", "configmap", "api-config", "--type=merge",
        "-p", '{"data":{"POOL_SIZE":"500"}}',
    )  # fmt: skip
    wait_for(
        lambda: "ledger: recorded configmap/" + namespace + "/api-config v2" in controller.log(),
        what="the ledger recording the edit",
    )
    when_pods_crash(cluster, namespace, "app=api")
    controller.alert(namespace, deployment="api")
    # Then the controller restores the recorded prior content and restarts the consumer
    restored_cm = wait_for(
        lambda: (
            (
                cm := json.loads(
                    kubectl(
                        cluster, "get", "configmap", "api-config", "-n", namespace, "-o", "json"
                    ).stdout
                )
            )["data"]
            == {"POOL_SIZE": "20"}
            and cm
        ),
        timeout=60,
        what="api-config back to POOL_SIZE 20",
    )
    assert json.loads(restored_cm["metadata"]["annotations"][LAST_ACTION])["to"].startswith(
        "ledger version 1 "
    )
    template = read_deployment(api, namespace, "api")["spec"]["template"]
    assert "kubectl.kubernetes.io/restartedAt" in template["metadata"]["annotations"]
    wait_for(lambda: "verified" in receiver.events(), timeout=60, what="the verified notice")


def test_resolved_incidents_are_deleted_after_the_retention_even_with_the_ledger_off(
    cluster: Cluster, namespace: str, controllers: Any
) -> None:
    # Given a controller without the ledger and a short retention
    controller = controllers(STAGING, "a", "--ledger-interval", "0", "--retention", "2s")
    # ...and an incident that opened (nothing in the namespace to act on) and resolved
    controller.alert(namespace, fingerprint="0123456789abcdef", deployment="gone")
    wait_for(controller.incidents, what="the incident on record")
    controller.alert(
        namespace,
        status="resolved",
        fingerprint="0123456789abcdef",
        starts=controller.started["0123456789abcdef"],
        deployment="gone",
    )
    # When the retention has passed, then the record is gone
    wait_for(lambda: controller.incidents() == [], timeout=30, what="the incident deleted")
    assert "incident deleted after the retention" in controller.log()
    assert controller.stop() == 0
