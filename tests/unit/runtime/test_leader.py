"""Leader election, decided from the Lease as read and our own monotonic clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.runtime.leader import (
    LeaseRecord,
    Move,
    Observation,
    lease_body,
    next_move,
    observe,
    release_body,
)

ME = "rollback-controller-a"
OTHER = "rollback-controller-b"
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def held(holder: str, rv: str = "10", duration: int = 15) -> LeaseRecord:
    return LeaseRecord(holder, duration, NOW, NOW, 2, rv)


@pytest.mark.parametrize(
    ("lease", "observed", "now", "move"),
    [
        # No Lease yet: create it (atomic; of two, one wins).
        (None, None, 100.0, Move.CREATE),
        # Ours: renew.
        (held(ME), None, 100.0, Move.RENEW),
        # Released (empty holder): take it at once.
        (held(""), None, 100.0, Move.TAKE_OVER),
        # Someone else's, first seen now: wait a full duration, whatever renewTime says.
        (held(OTHER), Observation(held(OTHER), 100.0), 100.0, Move.WAIT),
        # Unchanged for less than its duration by our clock: still theirs.
        (held(OTHER), Observation(held(OTHER), 100.0), 114.9, Move.WAIT),
        # Unchanged for its duration: expired, take over.
        (held(OTHER), Observation(held(OTHER), 100.0), 115.0, Move.TAKE_OVER),
        # They renewed (new resourceVersion) since we first looked: not expired.
        (held(OTHER, rv="11"), Observation(held(OTHER), 100.0), 130.0, Move.WAIT),
    ],
)
def test_what_to_do_with_the_lease(
    lease: LeaseRecord | None, observed: Observation | None, now: float, move: Move
) -> None:
    assert next_move(lease, ME, observed, now) is move


def test_a_changed_record_restarts_the_clock_an_unchanged_one_keeps_it() -> None:
    first = observe(None, held(OTHER), 100.0)
    assert observe(first, held(OTHER), 110.0) is first
    renewed = observe(first, held(OTHER, rv="11"), 110.0)
    assert renewed.seen_at == 110.0


def test_a_take_over_starts_a_new_term_and_a_renewal_keeps_it() -> None:
    taken = lease_body(
        "rb", "lease", ME, timedelta(seconds=15), NOW, previous=held(OTHER), resource_version="10"
    )
    assert taken["metadata"]["resourceVersion"] == "10"  # the precondition
    assert taken["spec"]["holderIdentity"] == ME
    assert taken["spec"]["leaseTransitions"] == 3
    assert taken["spec"]["acquireTime"] == "2026-12-03T10:00:00.000000Z"
    later = NOW + timedelta(seconds=2)
    mine = LeaseRecord(ME, 15, NOW, NOW - timedelta(minutes=5), 3, "11")
    renewed = lease_body(
        "rb", "lease", ME, timedelta(seconds=15), later, previous=mine, resource_version="11"
    )
    assert renewed["spec"]["leaseTransitions"] == 3
    assert renewed["spec"]["acquireTime"] == "2026-12-03T09:55:00.000000Z"
    assert renewed["spec"]["renewTime"] == "2026-12-03T10:00:02.000000Z"
    created = lease_body("rb", "lease", ME, timedelta(seconds=15), NOW)
    assert "resourceVersion" not in created["metadata"]
    assert created["spec"]["leaseTransitions"] == 0


def test_releasing_empties_the_holder_with_a_precondition() -> None:
    body = release_body("rb", "lease", held(ME, rv="12"))
    assert body["metadata"]["resourceVersion"] == "12"
    assert body["spec"] == {"holderIdentity": "", "leaseDurationSeconds": 1, "leaseTransitions": 2}


def test_a_lease_as_the_api_returns_it() -> None:
    record = LeaseRecord.of(
        {
            "metadata": {"resourceVersion": "77"},
            "spec": {
                "holderIdentity": OTHER,
                "leaseDurationSeconds": 15,
                "renewTime": "2026-12-03T10:00:00.123456Z",
                "leaseTransitions": 4,
            },
        }
    )
    assert (record.holder, record.duration, record.transitions, record.resource_version) == (
        OTHER,
        15,
        4,
        "77",
    )
    assert LeaseRecord.of({}).holder == ""
