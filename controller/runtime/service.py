"""The controller process: webhook, leader election, the reconcile loop, the ledger.

Threads, and what each may do:

* **HTTP** (every replica): takes Alertmanager's webhook and records incidents
  in the cluster (:mod:`controller.runtime.incidents`); health and readiness.
* **Election** (every replica): acquires and renews the Lease
  (:mod:`controller.runtime.leader`); on loss the process exits non-zero.
* **Loop** (leader only): lists the incidents every ``resync`` (at once when a
  webhook arrives here), runs a pass for each one that is due on a small
  worker pool (one pass per incident at a time), and every
  ``ledger_interval`` the housekeeping: the change ledger, and deleting
  incidents and approval requests past their retention (with the ledger
  off, every five minutes or every ``retention`` if that is shorter).

All leader writes go through :class:`~controller.runtime.leader.LeaderKube`,
which re-checks the Lease before each one.  SIGTERM stops taking work, waits a
little for passes in flight, releases the Lease so a standby takes over at
once, and exits 0.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from controller.actions.apply import whoami
from controller.actions.approvals import APPROVAL_REQUEST, parse_request
from controller.durations import format_instant
from controller.errors import ClusterError, NotFoundError, PolicyError, RollbackError
from controller.kube import Kube
from controller.policy import Policy, PolicySource, load_policy_sources
from controller.runtime.alerts import Alert, scope_of
from controller.runtime.incidents import IncidentRecord, IncidentStore
from controller.runtime.leader import LeaderElector, LeaderKube, NotLeaderError
from controller.runtime.ledger import sync_ledger
from controller.runtime.notify import Notifier
from controller.runtime.reconcile import Reconciler
from controller.runtime.server import make_server

READY_WITHIN: Final = 30.0  # seconds since the API last answered, for /readyz
HOUSEKEEPING: Final = "housekeeping"
GARBAGE_INTERVAL: Final = 300.0  # seconds between retention passes when the ledger is off


@dataclass(frozen=True)
class Config:
    """Everything ``rollback controller run`` was told."""

    namespaces: tuple[str, ...]
    lease_namespace: str
    identity: str
    audit_log: Path
    host: str = "127.0.0.1"
    port: int = 8080
    policy_files: tuple[str, ...] = ()
    lease_name: str = "rollback-controller"
    kubeconfig: str | None = None
    context: str | None = None
    token: str = ""
    slack_url: str = ""
    notify: tuple[str, ...] = ()
    resync: timedelta = timedelta(seconds=15)
    ledger_interval: timedelta = timedelta(seconds=30)
    ledger_versions: int = 10
    timeout: timedelta = timedelta(minutes=5)
    workers: int = 2
    retention: timedelta = timedelta(hours=24)
    lease_duration: timedelta = timedelta(seconds=15)
    renew_deadline: timedelta = timedelta(seconds=10)
    retry_period: timedelta = timedelta(seconds=2)
    shutdown_grace: timedelta = timedelta(seconds=20)


class PolicyFiles:
    """The policy, re-read when its files change (a mounted ConfigMap is updated in place).

    A change that does not validate is logged and ignored: the last good
    policy stays in force rather than none, and never a half-read one.
    """

    def __init__(self, paths: Sequence[str], log: logging.Logger) -> None:
        self.paths = tuple(paths)
        self.log = log
        self._lock = threading.Lock()
        self._fingerprint = ""
        self._rejected = ""
        self._policy = self._load(self._read())  # PolicyError at start-up: refuse to run

    def _read(self) -> list[PolicySource]:
        sources = []
        for path in self.paths:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as err:
                raise PolicyError(
                    [f"{path}: cannot read the policy: {err.strerror or err}"]
                ) from None
            sources.append(PolicySource(path, text))
        return sources

    def _load(self, sources: list[PolicySource]) -> Policy:
        policy = load_policy_sources(sources)
        self._fingerprint = _fingerprint(sources)
        return policy

    def current(self) -> Policy:
        with self._lock:
            try:
                sources = self._read()
            except PolicyError as err:
                self._reject(str(err))
                return self._policy
            fingerprint = _fingerprint(sources)
            if fingerprint in (self._fingerprint, self._rejected):
                return self._policy
            try:
                self._policy = self._load(sources)
            except PolicyError as err:
                self._rejected = fingerprint
                self._reject(str(err))
                return self._policy
            self.log.info(
                "policy reloaded from %s", ", ".join(self.paths), extra={"target": "policy"}
            )
            return self._policy

    def _reject(self, problems: str) -> None:
        self.log.error(
            "policy change ignored, the last good policy stays in force: %s",
            problems.replace("\n", "; "),
            extra={"target": "policy"},
        )


def _fingerprint(sources: Sequence[PolicySource]) -> str:
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.name.encode() + b"\0" + source.text.encode() + b"\0")
    return digest.hexdigest()


class Controller:
    """One controller process; see the module docstring."""

    def __init__(
        self,
        config: Config,
        log: logging.Logger,
        *,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.log = log
        self.policies = PolicyFiles(config.policy_files, log)
        self.kube = Kube(kubeconfig=config.kubeconfig, context=config.context)
        # Defaults from the context (in cluster: the pod's namespace).
        home = self.kube.default_namespace or "default"
        config = dataclasses.replace(
            config,
            lease_namespace=config.lease_namespace or home,
            namespaces=config.namespaces or (home,),
        )
        self.config = config
        self.elector = LeaderElector(
            self.kube,
            config.lease_namespace,
            config.lease_name,
            config.identity,
            on_lost=on_lost or self._exit_on_loss,
            log=lambda text: log.info("%s", text, extra={"target": "lease"}),
            duration=config.lease_duration,
            renew_deadline=config.renew_deadline,
            retry_period=config.retry_period,
        )
        self.leader_kube = LeaderKube(
            lambda: self.elector, kubeconfig=config.kubeconfig, context=config.context
        )
        self.api_identity = whoami(self.kube)
        self.store = IncidentStore(self.kube, config.lease_namespace, state_kube=self.leader_kube)
        self.notifier = Notifier(
            log,
            slack_url=config.slack_url,
            extra_targets=config.notify,
            controller=f"{self.api_identity.username} ({config.identity})",
        )
        self.reconciler = Reconciler(
            self.leader_kube,
            self.store,
            self.notifier,
            policy=self.policies.current,
            identity=self.api_identity,
            audit_log=config.audit_log,
            log=log,
            timeout=config.timeout,
        )
        # Fail at start-up, in one line, when our own namespace cannot be read.
        self.store.list()
        self._api_ok = time.monotonic()
        self.server = make_server(config.host, config.port, self, log, config.token)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, config.workers) + 1, thread_name_prefix="pass"
        )
        self._due: dict[str, float] = {}
        self._parked: dict[str, str] = {}  # name -> resourceVersion it was parked at
        self._in_flight: set[str] = set()
        self._records: dict[str, IncidentRecord] = {}
        self._threads: list[threading.Thread] = []
        self._loop_alive = False

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        host, port = self.address
        self.log.info(
            "listening on http://%s:%d (POST /alerts); watching %s; identity %s as %s",
            host,
            port,
            ", ".join(self.config.namespaces),
            self.config.identity,
            self.api_identity,
            extra={"target": f"lease {self.config.lease_namespace}/{self.config.lease_name}"},
        )
        for name, target in (
            ("http", self.server.serve_forever),
            ("election", lambda: self.elector.run(self._stop)),
            ("loop", self._loop),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def wait(self) -> None:
        """Block until :meth:`stop` (a signal handler calls it)."""
        while not self._stop.wait(0.5):
            pass

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def shutdown(self) -> None:
        """Stop serving, let passes in flight finish briefly, release the Lease."""
        self.stop()
        self.server.shutdown()
        deadline = time.monotonic() + self.config.shutdown_grace.total_seconds()
        while time.monotonic() < deadline:
            with self._lock:
                if not self._in_flight:
                    break
            time.sleep(0.2)
        with self._lock:
            left = sorted(self._in_flight)
        if left:
            self.log.warning(
                "stopping with passes in flight (%s); their writes are refused once the "
                "Lease is released, and the next leader sees the recorded intent",
                ", ".join(left),
                extra={"target": "shutdown"},
            )
        self.elector.release()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.notifier.close(wait=False)
        self.server.server_close()
        self.log.info("stopped", extra={"target": "shutdown"})

    def _exit_on_loss(self, reason: str) -> None:
        self.log.error(
            "lost leadership: %s; exiting now (code 1) so that only the new leader acts",
            reason,
            extra={"target": f"lease {self.config.lease_namespace}/{self.config.lease_name}"},
        )
        for handler in self.log.handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        os._exit(1)

    # -- the loop --------------------------------------------------------------

    def _loop(self) -> None:
        self._loop_alive = True
        next_list = 0.0
        next_housekeeping = time.monotonic()
        resync = self.config.resync.total_seconds()
        # With the ledger off, housekeeping still deletes what outlived the
        # retention: every few minutes, or sooner for a retention shorter than that.
        housekeeping = self.config.ledger_interval.total_seconds() or min(
            GARBAGE_INTERVAL, max(self.config.retention.total_seconds(), 1.0)
        )
        try:
            while not self._stop.is_set():
                if not self.elector.is_leader:
                    self._wake.wait(0.5)
                    self._wake.clear()
                    next_list = 0.0
                    continue
                now = time.monotonic()
                if now >= next_list or self._wake.is_set():
                    self._wake.clear()
                    self._refresh()
                    next_list = now + resync
                if now >= next_housekeeping and self._submit(HOUSEKEEPING, self._housekeeping):
                    next_housekeeping = now + housekeeping
                self._dispatch()
                with self._lock:
                    upcoming = [t for n, t in self._due.items() if n not in self._in_flight]
                wake_at = min([next_list, *upcoming, next_housekeeping])
                self._wake.wait(max(0.05, min(wake_at - time.monotonic(), resync)))
        finally:
            self._loop_alive = False

    def _refresh(self) -> None:
        try:
            records = self.store.list()
        except ClusterError as err:
            self.log.warning("cannot list incidents: %s", err, extra={"target": "incidents"})
            return
        self._api_ok = time.monotonic()
        watched = set(self.config.namespaces)
        now = time.monotonic()
        with self._lock:
            self._records = {r.name: r for r in records if r.scope.namespace in watched}
            for name, record in self._records.items():
                parked = self._parked.get(name)
                if name in self._due or name in self._in_flight:
                    continue
                if parked is None or parked != record.resource_version:
                    self._parked.pop(name, None)
                    self._due[name] = now
            for name in list(self._due):
                if name not in self._records:
                    del self._due[name]
            for name in list(self._parked):
                if name not in self._records:
                    del self._parked[name]

    def _dispatch(self) -> None:
        now = time.monotonic()
        with self._lock:
            ready = sorted(
                (t, n) for n, t in self._due.items() if t <= now and n not in self._in_flight
            )
        for _, name in ready:
            with self._lock:
                record = self._records.get(name)
            if record is None:
                continue
            if not self._submit(name, functools.partial(self._pass, record)):
                break

    def _submit(self, name: str, work: Callable[[], None]) -> bool:
        with self._lock:
            busy = len(self._in_flight - {HOUSEKEEPING})
            if name in self._in_flight or (name != HOUSEKEEPING and busy >= self.config.workers):
                return False
            self._in_flight.add(name)
            self._due.pop(name, None)

        def run() -> None:
            try:
                work()
            finally:
                with self._lock:
                    self._in_flight.discard(name)
                self._wake.set()

        try:
            self._pool.submit(run)
        except RuntimeError:  # shutting down
            with self._lock:
                self._in_flight.discard(name)
            return False
        return True

    def _pass(self, record: IncidentRecord) -> None:
        requeue: timedelta | None
        extra = {"incident": record.id, "target": record.scope.namespace}
        try:
            with self._lock:
                others = list(self._records.values())
            requeue = self.reconciler.reconcile(record, others)
        except NotLeaderError as err:
            self.log.warning("pass stopped: %s", err, extra=extra)
            requeue = timedelta(seconds=5)
        except RollbackError as err:
            self.log.warning("pass failed: %s", err, extra=extra)
            requeue = timedelta(seconds=30)
        except Exception:  # one incident must not stop the others
            self.log.exception("pass crashed", extra=extra)
            requeue = timedelta(seconds=30)
        fresh = self.store.get(record.name) if requeue is None else None
        with self._lock:
            if requeue is None:
                self._parked[record.name] = fresh.resource_version if fresh else ""
            else:
                self._due[record.name] = time.monotonic() + requeue.total_seconds()

    def _housekeeping(self) -> None:
        if self.config.ledger_interval > timedelta(0):
            self._ledger_pass()
        try:
            self._collect_garbage()
        except NotLeaderError as err:
            self.log.warning("retention pass stopped: %s", err, extra={"target": "retention"})

    def _ledger_pass(self) -> None:
        extra = {"target": "ledger"}
        try:
            result = sync_ledger(
                self.leader_kube,
                self.config.namespaces,
                max_versions=self.config.ledger_versions,
            )
        except NotLeaderError as err:
            self.log.warning("ledger pass stopped: %s", err, extra=extra)
            return
        except ClusterError as err:
            self.log.warning("ledger pass failed: %s", err, extra=extra)
            return
        for what in result.recorded:
            self.log.info("ledger: recorded %s", what, extra={"target": what.rsplit(" ", 1)[0]})
        if result.pruned:
            self.log.info("ledger: pruned %d old version(s)", result.pruned, extra=extra)
        for problem in result.problems:
            self.log.warning("ledger: %s", problem, extra=extra)

    def _collect_garbage(self) -> None:
        """Incidents resolved, and approval requests made, longer ago than the retention."""
        now = datetime.now(UTC)
        cutoff = now - self.config.retention
        with self._lock:
            records = list(self._records.values())
        for record in records:
            ended = record.resolved_at or record.received
            if not record.open and ended < cutoff:
                with contextlib.suppress(ClusterError):
                    self.store.delete(record)
                    self.log.info(
                        "incident deleted after the retention (%s)",
                        format_instant(ended),
                        extra={"incident": record.id, "target": record.scope.namespace},
                    )
        for namespace in self.config.namespaces:
            try:
                requests = self.leader_kube.list(APPROVAL_REQUEST, namespace)
            except (NotFoundError, ClusterError):
                continue
            for obj in requests:
                request = parse_request(obj)
                if request.at < cutoff:
                    with contextlib.suppress(ClusterError):
                        self.leader_kube.delete(APPROVAL_REQUEST, namespace, request.name)

    # -- Intake (the HTTP server's side) ----------------------------------------

    def receive(self, alerts: Sequence[Alert]) -> dict[str, Any]:
        accepted: list[dict[str, str]] = []
        ignored: list[dict[str, str]] = []
        now = datetime.now(UTC)
        watched = set(self.config.namespaces)
        for alert in alerts:
            scope = scope_of(alert)
            name = alert.name or alert.key
            if isinstance(scope, str):
                ignored.append({"alert": name, "fingerprint": alert.key, "reason": scope})
                continue
            if scope.namespace not in watched:
                ignored.append(
                    {
                        "alert": name,
                        "fingerprint": alert.key,
                        "reason": f"namespace {scope.namespace} is not watched here "
                        f"(watching {', '.join(sorted(watched))})",
                    }
                )
                continue
            outcome = self.store.record_alert(alert, scope, now)
            self._api_ok = time.monotonic()
            where = scope.workload.short if scope.workload else "namespace"
            if outcome != "unchanged":
                self.log.info(
                    "alert %s %s: incident %s",
                    name,
                    alert.status.value,
                    outcome,
                    extra={"incident": alert.incident_id, "target": f"{scope.namespace}/{where}"},
                )
            accepted.append({"alert": name, "incident": alert.incident_id, "outcome": outcome})
        for item in ignored:
            # Alertmanager sees the 200 and never resends: the log is where an
            # operator finds an alert routed here that the controller cannot place.
            self.log.warning(
                "alert %s ignored: %s",
                item["alert"],
                item["reason"],
                extra={"incident": item["fingerprint"], "target": "alerts"},
            )
        if accepted:
            self._wake.set()
        return {"accepted": accepted, "ignored": ignored}

    def healthy(self) -> tuple[bool, str]:
        if self._threads and not self._loop_alive and not self._stop.is_set():
            return False, "the reconcile loop is not running"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        last = max(self._api_ok, self.elector.last_contact)
        if time.monotonic() - last > READY_WITHIN:
            return False, f"the Kubernetes API has not answered for over {READY_WITHIN:.0f}s"
        if self.elector.is_leader:
            return True, f"ok: leader ({self.config.identity})"
        holder = self.elector.holder or "nobody yet"
        return True, f"ok: standby ({self.config.identity}); the leader is {holder}"

    def incidents(self) -> list[dict[str, Any]]:
        out = []
        for record in self.store.list():
            action = record.state.action
            out.append(
                {
                    "id": record.id,
                    "alertname": record.alertname,
                    "namespace": record.scope.namespace,
                    "workload": record.scope.workload.to_json() if record.scope.workload else None,
                    "status": record.status.value,
                    "startsAt": format_instant(record.started),
                    "last": record.state.last,
                    "approvalRequested": record.state.approval_requested or None,
                    "action": None
                    if action is None
                    else {
                        "planHash": action.plan_hash,
                        "phase": action.phase.value,
                        "summary": action.summary,
                        "at": format_instant(action.at),
                        "unattended": action.unattended,
                        "message": action.message,
                    },
                }
            )
        return out


__all__ = ["Config", "Controller", "PolicyFiles"]
