"""The guarded apply: the only place actions write to the cluster.

Each helper does one kind of I/O through :class:`~controller.kube.Kube` and
says in its docstring how many round trips it costs, because the time between
"the user confirmed" and "the write was accepted" is what matters in an
incident (budget: three round trips; docs/execute.md has the measurement).

* :func:`whoami`: SelfSubjectReview, the identity audit records carry.
* :func:`acquire_lock` / :func:`release_lock`: a coordination.k8s.io Lease
  named after the target, so one actor at a time acts on it.  Creating it is
  the atomic step: of two racing executes exactly one creates it; the other
  is refused naming the holder.  An expired Lease (its holder died) is taken
  over with a resourceVersion-guarded update.
* :func:`dry_run_step` / :func:`write_step`: the exact PATCH, with
  ``dryRun=All`` or for real; a 409 means the object moved since the plan and
  becomes a refusal that says nothing was written.
* :func:`wait_for_rollout`: poll the workload until it converges, fails or
  times out, reporting a live progress line.  One attempt: never a second write.
* :func:`record_event`: the audit Event on the target, best effort.

Writes are never retried: a write that timed out may have landed.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from controller.actions.audit import Outcome, event_body
from controller.actions.guards import Identity
from controller.actions.plan import Plan, PlanStep, Stamp, render_body
from controller.actions.rollout import Phase, Progress, rollout_progress
from controller.durations import parse_k8s_time
from controller.errors import (
    ClusterError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RefusedError,
)
from controller.kube import EVENT_V1, JSON_PATCH, LEASE, Kube
from controller.model import ObjectRef
from controller.view import JSON, meta

LOCK_LABEL: Final = "rollback.io/lock-for"
LOCK_PLAN_ANNOTATION: Final = "rollback.io/plan-hash"
FIELD_MANAGER: Final = "rollback-controller"


class StalePlanError(RefusedError):
    """The object changed between the plan and the write; nothing was written."""


class LockedError(RefusedError):
    """Another actor holds the target's lock."""


# ---------------------------------------------------------------------------
# Identity
# ---------------------------------------------------------------------------


def whoami(kube: Kube) -> Identity:
    """The user the API server authenticates us as.  One round trip.

    A cluster that does not serve SelfSubjectReview (before 1.28, or a proxy
    that blocks it) yields the local user name marked unverified rather than a
    failure: the audit still says who ran the tool, and says it was not checked.
    """
    try:
        review = kube.self_subject_review()
    except (NotFoundError, ForbiddenError):
        local = os.environ.get("USER") or os.environ.get("LOGNAME") or "unknown"
        return Identity(username=f"{local}@{socket.gethostname()}", verified=False)
    info = (review.get("status") or {}).get("userInfo") or {}
    return Identity(
        username=str(info.get("username") or "unknown"),
        groups=tuple(str(g) for g in info.get("groups") or ()),
    )


# ---------------------------------------------------------------------------
# The lock
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Lock:
    """A Lease we hold: enough to release it only if it is still ours."""

    namespace: str
    name: str
    holder: str
    resource_version: str


def lease_name(target: ObjectRef) -> str:
    """``rollback-lock-<kind>-<name>``; long names keep a hash so they stay unique and valid."""
    name = f"rollback-lock-{target.kind.lower()}-{target.name}"
    if len(name) <= 253:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[:242]}-{digest}"


def holder_identity(identity: Identity) -> str:
    """Who holds the lock: user, host and process, so two terminals of one user differ."""
    return f"{identity.username} ({socket.gethostname()} pid {os.getpid()})"


def lease_body(
    target: ObjectRef, holder: str, duration: timedelta, now: datetime, plan_hash: str
) -> JSON:
    """A Lease naming ``holder`` until ``now + duration``.  Pure."""
    moment = _micro_time(now)
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": lease_name(target),
            "namespace": target.namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "rollback-controller",
                LOCK_LABEL: f"{target.kind.lower()}.{target.name}"[:63].rstrip("-."),
            },
            "annotations": {LOCK_PLAN_ANNOTATION: plan_hash},
        },
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": max(1, int(duration.total_seconds())),
            "acquireTime": moment,
            "renewTime": moment,
        },
    }


def lease_expiry(lease: JSON) -> datetime | None:
    """When a Lease's holder stops holding it (renewTime + duration); None if unknown."""
    spec = lease.get("spec") or {}
    renewed = parse_k8s_time(spec.get("renewTime") or spec.get("acquireTime"))
    seconds = spec.get("leaseDurationSeconds")
    if renewed is None or not isinstance(seconds, int):
        return None
    return renewed + timedelta(seconds=seconds)


def acquire_lock(
    kube: Kube,
    target: ObjectRef,
    identity: Identity,
    *,
    duration: timedelta,
    now: datetime,
    plan_hash: str,
    dry_run: bool = False,
) -> Lock:
    """Take the target's Lease, or refuse naming who holds it.

    One round trip when the lock is free (the create).  A held Lease costs a
    GET more (to name the holder); an expired one a GET and an update that
    carries its resourceVersion, so two actors taking over at once cannot both
    win.  With ``dry_run`` the create is a server-side dry run: it proves we
    may create Leases and that nobody holds the lock, and takes nothing.
    """
    holder = holder_identity(identity)
    body = lease_body(target, holder, duration, now, plan_hash)
    name = body["metadata"]["name"]
    try:
        created = kube.create(LEASE, target.namespace, body, dry_run=dry_run)
        return Lock(target.namespace, name, holder, str(meta(created).get("resourceVersion") or ""))
    except ConflictError:
        pass
    current = kube.get(LEASE, target.namespace, name)
    expiry = lease_expiry(current)
    spec = current.get("spec") or {}
    other = str(spec.get("holderIdentity") or "someone")
    if expiry is not None and expiry > now:
        raise LockedError(
            f"{target.short} is locked by {other} until {_clock(expiry)} (Lease {name}): another "
            "rollback is in progress; wait for it, or delete the Lease if its holder is gone"
        )
    body["metadata"]["resourceVersion"] = meta(current).get("resourceVersion")
    try:
        taken = kube.replace(LEASE, target.namespace, name, body, dry_run=dry_run)
    except ConflictError as err:
        raise LockedError(
            f"{target.short}: another actor took over the expired lock (Lease {name}) just now"
        ) from err
    return Lock(target.namespace, name, holder, str(meta(taken).get("resourceVersion") or ""))


def release_lock(kube: Kube, lock: Lock) -> bool:
    """Delete our Lease if it is still ours (resourceVersion precondition).  Best effort.

    Returns False when it could not be released; the Lease then expires by itself.
    """
    try:
        kube.delete(LEASE, lock.namespace, lock.name, precondition_rv=lock.resource_version)
    except ClusterError:
        return False
    return True


# ---------------------------------------------------------------------------
# Writes
# ---------------------------------------------------------------------------


def dry_run_step(kube: Kube, step: PlanStep, plan: Plan, stamp: Stamp) -> JSON:
    """The exact write with ``dryRun=All``: admission, validation and RBAC, nothing stored."""
    return _patch(kube, step, plan, stamp, dry_run=True)


def write_step(kube: Kube, step: PlanStep, plan: Plan, stamp: Stamp) -> JSON:
    """The write itself.  One round trip.  Never retried."""
    return _patch(kube, step, plan, stamp, dry_run=False)


def _patch(kube: Kube, step: PlanStep, plan: Plan, stamp: Stamp, *, dry_run: bool) -> JSON:
    body = render_body(step.body, plan, stamp)
    try:
        return kube.patch(
            step.resource,
            step.ref.namespace,
            step.ref.name,
            body,
            content_type=step.patch_type or JSON_PATCH,
            dry_run=dry_run,
            field_manager=FIELD_MANAGER,
        )
    except ConflictError as err:
        raise StalePlanError(
            f"{step.ref.short} changed since the plan was made (it was at resourceVersion "
            f"{step.resource_version}): nothing was written; run the command again to see "
            "a fresh plan"
        ) from err
    except NotFoundError as err:
        raise StalePlanError(f"{step.ref.short} no longer exists: nothing was written") from err


# ---------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    """How the rollout ended: its last progress, and how long it took from the write."""

    progress: Progress
    elapsed: timedelta

    @property
    def converged(self) -> bool:
        return self.progress.phase is Phase.DONE


def wait_for_rollout(
    kube: Kube,
    step: PlanStep,
    generation: int,
    timeout: timedelta,
    on_progress: Callable[[Progress, timedelta], None],
    *,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Verification:
    """Poll the written workload until its rollout is done, failed, or ``timeout`` passes.

    One GET per ``interval``.  Never writes: a rollout that does not converge
    is reported, and what to do next is the engineer's call.
    """
    start = clock()
    while True:
        obj = kube.get(step.resource, step.ref.namespace, step.ref.name)
        progress = rollout_progress(obj, generation)
        elapsed = timedelta(seconds=clock() - start)
        on_progress(progress, elapsed)
        if progress.phase is not Phase.WAITING:
            return Verification(progress, elapsed)
        if elapsed >= timeout:
            return Verification(
                Progress(
                    Phase.FAILED,
                    progress.desired,
                    progress.updated,
                    progress.ready,
                    progress.available,
                    f"not converged after {int(timeout.total_seconds())}s",
                ),
                elapsed,
            )
        sleep(interval)


# ---------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------


def record_event(
    kube: Kube, target: JSON, outcome: Outcome, note: str, now: datetime
) -> str | None:
    """Create the audit Event on ``target``.  One round trip, best effort.

    Returns None when recorded, else why not (forbidden, say): a refusal or an
    action must not fail because its Event could not be written; the audit log
    line says the Event is missing.
    """
    body = event_body(target, outcome, note, now)
    try:
        kube.create(EVENT_V1, body["metadata"]["namespace"], body)
    except ClusterError as err:
        return str(err)
    return None


def _micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%SZ")


__all__ = [
    "FIELD_MANAGER",
    "Lock",
    "LockedError",
    "StalePlanError",
    "Verification",
    "acquire_lock",
    "dry_run_step",
    "holder_identity",
    "lease_body",
    "lease_expiry",
    "lease_name",
    "record_event",
    "release_lock",
    "wait_for_rollout",
    "whoami",
    "write_step",
]
