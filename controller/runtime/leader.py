"""Leader election on a coordination.k8s.io/v1 Lease: exactly one replica acts.

Every replica serves the webhook; only the holder of the Lease reconciles,
writes the ledger and acts.  The rules, as client-go's leader election has them,
with two changes DOMAIN-NOTES asks for:

* **Acquire and renew with preconditions.**  Creating the Lease is atomic;
  taking over or renewing is a PUT carrying the ``resourceVersion`` we read,
  so of two replicas moving at once exactly one wins (the other gets 409).
* **Expiry by our own observation.**  A Lease held by someone else is
  expired when its record has not changed for ``leaseDurationSeconds`` *as
  measured by our monotonic clock since we first saw that record*; clocks of
  different machines are never compared.  A released Lease (empty holder) is
  free at once.
* **Stop acting on loss.**  If a renewal does not succeed within the renew
  deadline, or the Lease names someone else, the process exits non-zero
  (``on_lost``).  The client library's helper keeps the old leader's work
  running after it loses the Lease; we do not.
* **Re-check before each write.**  :class:`LeaderKube` asks
  :meth:`LeaderElector.ensure_leader` (a GET of the Lease) before every
  non-dry-run write, so even a write already under way when the Lease moved
  is refused rather than made by a second actor.

:func:`next_move` and :func:`observe` are pure; :class:`LeaderElector` does the I/O.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from controller.durations import parse_k8s_time
from controller.errors import ClusterError, ConflictError, NotFoundError, RefusedError
from controller.kube import LEASE, Kube
from controller.view import JSON, meta

DEFAULT_DURATION: Final = timedelta(seconds=15)
DEFAULT_RENEW_DEADLINE: Final = timedelta(seconds=10)
DEFAULT_RETRY_PERIOD: Final = timedelta(seconds=2)
_WRITES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class NotLeaderError(RefusedError):
    """We do not (or can no longer show that we) hold the Lease: no write."""


@dataclass(frozen=True)
class LeaseRecord:
    """The parts of a Lease election reads."""

    holder: str
    duration: int
    renew_time: datetime | None
    acquire_time: datetime | None
    transitions: int
    resource_version: str

    @classmethod
    def of(cls, lease: JSON) -> LeaseRecord:
        spec = lease.get("spec") or {}
        duration = spec.get("leaseDurationSeconds")
        transitions = spec.get("leaseTransitions")
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            duration=duration if isinstance(duration, int) and duration > 0 else 1,
            renew_time=parse_k8s_time(spec.get("renewTime")),
            acquire_time=parse_k8s_time(spec.get("acquireTime")),
            transitions=transitions if isinstance(transitions, int) else 0,
            resource_version=str(meta(lease).get("resourceVersion") or ""),
        )


@dataclass(frozen=True)
class Observation:
    """A Lease record and when (our monotonic clock) we first saw it unchanged."""

    record: LeaseRecord
    seen_at: float


class Move(StrEnum):
    CREATE = "create"  # no Lease yet
    TAKE_OVER = "take-over"  # released or expired
    RENEW = "renew"  # ours
    WAIT = "wait"  # someone else holds it


def observe(previous: Observation | None, lease: LeaseRecord, now: float) -> Observation:
    """Remember when this record appeared: a changed record restarts its clock.  Pure."""
    if previous is not None and previous.record.resource_version == lease.resource_version:
        return previous
    return Observation(lease, now)


def next_move(
    lease: LeaseRecord | None, identity: str, observed: Observation | None, now: float
) -> Move:
    """What to do with the Lease as read.  Pure.

    ``observed`` must already include ``lease`` (see :func:`observe`), so a
    record seen for the first time is never expired: we wait a full duration
    from our first sight of it, whatever its ``renewTime`` says.
    """
    if lease is None:
        return Move.CREATE
    if lease.holder == identity:
        return Move.RENEW
    if not lease.holder:
        return Move.TAKE_OVER
    if observed is None or observed.record.resource_version != lease.resource_version:
        return Move.WAIT
    if now - observed.seen_at >= lease.duration:
        return Move.TAKE_OVER
    return Move.WAIT


def lease_body(
    namespace: str,
    name: str,
    identity: str,
    duration: timedelta,
    now: datetime,
    *,
    previous: LeaseRecord | None = None,
    resource_version: str = "",
) -> JSON:
    """The Lease saying ``identity`` holds it from ``now``.  Pure.

    A renewal keeps the acquire time and transition count; a take-over
    starts a new term (acquire time now, one more transition).
    """
    moment = _micro_time(now)
    renewing = previous is not None and previous.holder == identity
    acquired = previous.acquire_time if renewing and previous and previous.acquire_time else now
    transitions = (previous.transitions if previous else 0) + (0 if renewing or not previous else 1)
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": "rollback-controller"},
    }
    if resource_version:
        metadata["resourceVersion"] = resource_version
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {
            "holderIdentity": identity,
            "leaseDurationSeconds": max(1, int(duration.total_seconds())),
            "acquireTime": _micro_time(acquired),
            "renewTime": moment,
            "leaseTransitions": transitions,
        },
    }


def release_body(namespace: str, name: str, record: LeaseRecord) -> JSON:
    """Give the Lease up: no holder, one second, so a standby takes over at once.  Pure."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": record.resource_version,
            "labels": {"app.kubernetes.io/managed-by": "rollback-controller"},
        },
        "spec": {
            "holderIdentity": "",
            "leaseDurationSeconds": 1,
            "leaseTransitions": record.transitions,
        },
    }


def _micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------------------
# The elector
# ---------------------------------------------------------------------------


class LeaderElector:
    """Acquires and renews one Lease for ``identity``; calls ``on_lost`` if it slips away."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        *,
        on_lost: Callable[[str], None],
        log: Callable[[str], None] = lambda _: None,
        duration: timedelta = DEFAULT_DURATION,
        renew_deadline: timedelta = DEFAULT_RENEW_DEADLINE,
        retry_period: timedelta = DEFAULT_RETRY_PERIOD,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if renew_deadline >= duration:
            raise ValueError("the renew deadline must be shorter than the lease duration")
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._on_lost = on_lost
        self._log = log
        self._monotonic = monotonic
        self._wall = wall
        self._lock = threading.Lock()
        self._observed: Observation | None = None
        self._record: LeaseRecord | None = None  # our last successful write
        self._renewed_at = 0.0
        self._leading = False
        self._lost = False
        self.holder = ""  # who holds it, as last read (for /readyz and logs)
        self.last_contact = 0.0  # monotonic time of the last answer about the Lease

    @property
    def is_leader(self) -> bool:
        with self._lock:
            return self._leading and not self._lost

    # -- one step ------------------------------------------------------------

    def step(self) -> bool:
        """Read the Lease and create, take over, renew or wait.  True when we hold it after."""
        now = self._monotonic()
        try:
            lease: JSON | None = self.kube.get(LEASE, self.namespace, self.name)
        except NotFoundError:
            lease = None
        self.last_contact = now
        record = LeaseRecord.of(lease) if lease is not None else None
        if record is not None:
            self._observed = observe(self._observed, record, now)
            self.holder = record.holder
        move = next_move(record, self.identity, self._observed, now)
        if move is Move.WAIT:
            return False
        body = lease_body(
            self.namespace,
            self.name,
            self.identity,
            self.duration,
            self._wall(),
            previous=record,
            resource_version=record.resource_version if record else "",
        )
        try:
            if move is Move.CREATE:
                written = self.kube.create(LEASE, self.namespace, body)
            else:
                written = self.kube.replace(LEASE, self.namespace, self.name, body)
        except ConflictError:
            return False  # someone else moved first; read again next time
        mine = LeaseRecord.of(written)
        with self._lock:
            self._record = mine
            self._renewed_at = now
            self._observed = Observation(mine, now)
            self.holder = self.identity
            if not self._leading and move is not Move.RENEW:
                self._log(f"lease {self.namespace}/{self.name}: acquired by {self.identity}")
            self._leading = True
        return True

    # -- the loop ------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Acquire (waiting as long as it takes), then renew until ``stop`` or loss."""
        period = self.retry_period.total_seconds()
        while not stop.is_set() and not self.is_leader:
            try:
                self.step()
            except ClusterError as err:
                self._log(f"lease {self.namespace}/{self.name}: cannot read or write it: {err}")
            if not self.is_leader:
                stop.wait(period)
        while not stop.is_set():
            stop.wait(period)
            if stop.is_set():
                return
            try:
                renewed = self.step()
                reason = "" if renewed else f"the Lease is held by {self.holder or 'nobody'}"
            except ClusterError as err:
                renewed, reason = False, str(err)
            if renewed:
                continue
            if self.holder and self.holder != self.identity:
                self.lose(f"lease {self.namespace}/{self.name} is now held by {self.holder}")
                return
            late = self._monotonic() - self._renewed_at
            if late >= self.renew_deadline.total_seconds():
                self.lose(
                    f"lease {self.namespace}/{self.name} not renewed for {late:.0f}s "
                    f"(deadline {self.renew_deadline.total_seconds():.0f}s): {reason}"
                )
                return

    def lose(self, reason: str) -> None:
        """We are no longer the leader: stop acting (``on_lost`` exits the process)."""
        with self._lock:
            if self._lost:
                return
            self._lost = True
            self._leading = False
        self._on_lost(reason)

    # -- guarding writes -----------------------------------------------------

    def ensure_leader(self) -> None:
        """Raise NotLeaderError unless the Lease, read now, is ours and fresh.  One GET."""
        if not self.is_leader:
            raise NotLeaderError(f"not the leader (lease {self.namespace}/{self.name}): no write")
        late = self._monotonic() - self._renewed_at
        if late >= self.renew_deadline.total_seconds():
            raise NotLeaderError(
                f"lease {self.namespace}/{self.name} not renewed for {late:.0f}s: no write"
            )
        try:
            record = LeaseRecord.of(self.kube.get(LEASE, self.namespace, self.name))
        except ClusterError as err:
            raise NotLeaderError(
                f"cannot confirm we hold lease {self.namespace}/{self.name} ({err}): no write"
            ) from err
        if record.holder != self.identity:
            self.lose(f"lease {self.namespace}/{self.name} is now held by {record.holder!r}")
            raise NotLeaderError(
                f"lease {self.namespace}/{self.name} is held by {record.holder!r}: no write"
            )

    def release(self) -> bool:
        """Give the Lease up on shutdown, if it is still ours (precondition).  Best effort."""
        with self._lock:
            record = self._record
            leading = self._leading
            self._leading = False
        if not leading or record is None:
            return False
        try:
            current = LeaseRecord.of(self.kube.get(LEASE, self.namespace, self.name))
            if current.holder != self.identity:
                return False
            self.kube.replace(
                LEASE, self.namespace, self.name, release_body(self.namespace, self.name, current)
            )
        except ClusterError:
            return False
        self._log(f"lease {self.namespace}/{self.name}: released by {self.identity}")
        return True


class LeaderKube(Kube):
    """A Kube whose every real write is preceded by a check that we still lead.

    Dry runs and SelfSubjectReviews (POSTs that store nothing) pass unchecked.
    """

    def __init__(
        self,
        elector: Callable[[], LeaderElector | None],
        kubeconfig: str | None = None,
        context: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(kubeconfig=kubeconfig, context=context, timeout=timeout)
        self._elector = elector

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | bool] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> JSON:
        if (
            method in _WRITES
            and (query or {}).get("dryRun") != "All"
            and not path.endswith("/selfsubjectreviews")
        ):
            elector = self._elector()
            if elector is None:
                raise NotLeaderError("no leader election configured: no write")
            elector.ensure_leader()
        return super().request(
            method, path, query=query, body=body, content_type=content_type, accept=accept
        )


__all__ = [
    "LeaderElector",
    "LeaderKube",
    "LeaseRecord",
    "Move",
    "NotLeaderError",
    "Observation",
    "lease_body",
    "next_move",
    "observe",
    "release_body",
]
