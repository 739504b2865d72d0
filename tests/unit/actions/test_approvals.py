"""Approvals: who counts for which plan, and the objects that record them.

Counting is pure: approvals in, a status with reasons out.  The objects are the
JSON the API server stores (the CRDs in manifests/crds/rollback.io.yaml).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.actions.approvals import (
    Approval,
    ApprovalRequest,
    approval_body,
    approval_name,
    check_approver,
    count_approvals,
    describe_requirements,
    eligible,
    merged,
    normalise_hash,
    parse_approval,
    parse_request,
    request_body,
    request_name,
    request_status,
    with_recorded_validity,
)
from controller.actions.guards import Identity
from controller.actions.plan import Plan
from controller.actions.workload import plan_workload_rollback
from controller.durations import format_duration, parse_duration
from controller.errors import UserInputError
from controller.model import ObjectRef
from controller.policy import ApprovalRequirement

from .helpers import fixture, items, revisions_of

NOW = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
HASH = "sha256:0123456789abcdef"
OTHER = "sha256:fedcba9876543210"
ANYONE = ApprovalRequirement("production", 1)
TWO_LEADS = ApprovalRequirement("payments", 2, ("payments-leads",))
ONCALL = ApprovalRequirement("production", 1, ("sre-oncall", "sre-leads"))


def approval(
    who: str,
    *groups: str,
    ago: timedelta = timedelta(minutes=5),
    plan_hash: str = HASH,
) -> Approval:
    return Approval(plan_hash, who, groups, NOW - ago)


@pytest.mark.parametrize(
    ("requirements", "approvals", "exclude", "expected"),
    [
        # No approvals yet: one missing.
        ([ANYONE], [], [], (False, 1, ())),
        # One person approved: enough for "1 from anyone".
        ([ANYONE], [approval("bob")], [], (True, 0, ("bob",))),
        # The same person twice is one approval: distinct identities count.
        ([TWO_LEADS], [approval("bob", "payments-leads")] * 2, [], (False, 1, ("bob",))),
        (
            [TWO_LEADS],
            [approval("bob", "payments-leads"), approval("carol", "payments-leads")],
            [],
            (True, 0, ("bob", "carol")),
        ),
        # The requester cannot approve their own plan.
        ([ANYONE], [approval("alice")], ["alice"], (False, 1, ())),
        # An approval of another plan (a stale one) is worthless.
        ([ANYONE], [approval("bob", plan_hash=OTHER)], [], (False, 1, ())),
        # Approvals expire: exactly the time-to-live old no longer counts.
        ([ANYONE], [approval("bob", ago=timedelta(hours=1))], [], (False, 1, ())),
        ([ANYONE], [approval("bob", ago=timedelta(minutes=59))], [], (True, 0, ("bob",))),
        # Approver groups: only members count.
        ([ONCALL], [approval("bob", "developers")], [], (False, 1, ())),
        ([ONCALL], [approval("bob", "developers", "sre-leads")], [], (True, 0, ("bob",))),
        # Every requirement applies; one person may count for several.
        (
            [ONCALL, TWO_LEADS],
            [approval("bob", "sre-oncall", "payments-leads")],
            [],
            (False, 1, ("bob",)),
        ),
        (
            [ONCALL, TWO_LEADS],
            [approval("bob", "sre-oncall", "payments-leads"), approval("carol", "payments-leads")],
            [],
            (True, 0, ("bob", "carol")),
        ),
        # A hash written without its prefix or in capitals is the same plan.
        ([ANYONE], [approval("bob", plan_hash="0123456789ABCDEF")], [], (True, 0, ("bob",))),
    ],
)
def test_which_approvals_count(
    requirements: list[ApprovalRequirement],
    approvals: list[Approval],
    exclude: list[str],
    expected: tuple[bool, int, tuple[str, ...]],
) -> None:
    status = count_approvals(requirements, approvals, HASH, now=NOW, exclude=exclude)
    assert (status.satisfied, status.missing, status.approvers) == expected


def test_the_status_says_why_an_approval_did_not_count() -> None:
    status = count_approvals(
        [ONCALL],
        [
            approval("alice"),
            approval("bob", "developers"),
            approval("carol", ago=timedelta(hours=2)),
            approval("dave", plan_hash=OTHER),
        ],
        HASH,
        now=NOW,
        exclude=["alice"],
    )
    reasons = dict(status.ignored)
    assert reasons == {
        "carol": "it expired at 2026-12-03T13:00:00Z",
        "alice": "the requester or executor of a plan cannot approve it",
        "dave": "it approves another plan (sha256:fedcba9876543210)",
        "bob": "not in an approver group (their groups: developers)",
    }
    assert status.describe().startswith("scope production: 0 of 1 from sre-oncall or sre-leads; ")


@pytest.mark.parametrize(
    ("valid_for", "ago", "counts"),
    [
        # An approval 45 minutes old counts under the default hour, not under 30 minutes.
        (timedelta(hours=1), timedelta(minutes=45), True),
        (timedelta(minutes=30), timedelta(minutes=45), False),
        (timedelta(minutes=30), timedelta(minutes=29), True),
        # Exactly the validity old no longer counts.
        (timedelta(minutes=30), timedelta(minutes=30), False),
        (timedelta(hours=24), timedelta(hours=23), True),
    ],
)
def test_an_approval_counts_for_its_requirements_validity(
    valid_for: timedelta, ago: timedelta, counts: bool
) -> None:
    requirement = ApprovalRequirement("production", 1, valid_for=valid_for)
    status = count_approvals([requirement], [approval("bob", ago=ago)], HASH, now=NOW)
    assert status.satisfied is counts
    assert status.approvers == (("bob",) if counts else ())
    if not counts:
        expired = (NOW - ago + valid_for).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert status.ignored == (("bob", f"it expired at {expired}"),)


def test_each_requirement_counts_with_its_own_validity() -> None:
    # Given production (1h) and payments (30m), and one person in both groups, 45 minutes ago
    payments = ApprovalRequirement("payments", 1, ("payments-leads",), timedelta(minutes=30))
    bob = approval("bob", "sre-oncall", "payments-leads", ago=timedelta(minutes=45))
    status = count_approvals([ONCALL, payments], [bob], HASH, now=NOW)
    # Then the approval still counts for production and has expired for payments
    assert [(s.requirement.scope, s.approvers) for s in status.requirements] == [
        ("production", ("bob",)),
        ("payments", ()),
    ]
    assert not status.satisfied
    assert status.ignored == (("bob", "for scope payments it expired at 2026-12-03T13:45:00Z"),)
    # Two hours on, it counts for neither: expired at the longest validity
    old = approval("bob", "sre-oncall", "payments-leads", ago=timedelta(hours=2))
    late = count_approvals([ONCALL, payments], [old], HASH, now=NOW)
    assert late.ignored == (("bob", "it expired at 2026-12-03T13:00:00Z"),)


def test_a_requirement_of_zero_needs_nothing() -> None:
    status = count_approvals([ApprovalRequirement("default", 0)], [], HASH, now=NOW)
    assert status.satisfied
    assert status.requirements == ()


@pytest.mark.parametrize(
    ("requirements", "groups", "expected"),
    [
        ([ANYONE], [], True),
        ([ONCALL], ["developers"], False),
        ([ONCALL], ["developers", "sre-oncall"], True),
        ([ONCALL, TWO_LEADS], ["payments-leads"], True),
        ([], ["anyone"], True),
    ],
)
def test_who_may_approve(
    requirements: list[ApprovalRequirement], groups: list[str], expected: bool
) -> None:
    assert eligible(requirements, groups) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sha256:0123456789abcdef", HASH),
        ("0123456789ABCDEF", HASH),
        ("  sha256:0123456789abcdef\n", HASH),
    ],
)
def test_plan_hashes_are_read_in_every_form_people_paste(text: str, expected: str) -> None:
    assert normalise_hash(text) == expected


@pytest.mark.parametrize("text", ["", "sha256:", "0123", "sha256:0123456789abcdeg", "md5:0123"])
def test_anything_else_is_not_a_plan_hash(text: str) -> None:
    with pytest.raises(UserInputError, match="is not a plan hash: expected sha256: and 16 hex"):
        normalise_hash(text)


def test_names_are_one_request_per_plan_and_one_approval_per_person() -> None:
    assert request_name(HASH) == "plan-0123456789abcdef"
    assert approval_name(HASH, "bob") == approval_name("0123456789ABCDEF", "bob")
    assert approval_name(HASH, "bob") != approval_name(HASH, "carol")
    assert approval_name(HASH, "bob").startswith("0123456789abcdef-")


def plan() -> Plan:
    obj = fixture("deployment-web")
    return plan_workload_rollback(obj, revisions_of(obj, items("replicasets-web")), 2)


def test_a_request_records_what_the_plan_does_and_reads_back_the_same() -> None:
    the_plan = plan()
    body = request_body(
        the_plan,
        [ONCALL, ApprovalRequirement("zero", 0)],
        Identity("system:serviceaccount:rollback-system:rollback-controller"),
        NOW,
        incident="a1b2c3",
        safety="safe",
    )
    assert body["metadata"]["labels"]["rollback.io/plan-hash"] == the_plan.hash.removeprefix(
        "sha256:"
    )
    assert body["spec"]["required"] == [
        {
            "scope": "production",
            "count": 1,
            "approvers": ["sre-oncall", "sre-leads"],
            "validFor": "1h",
        }
    ]
    body["metadata"]["uid"] = "u-1"
    request = parse_request(body)
    assert request.plan_hash == the_plan.hash
    assert request.target == the_plan.target
    assert request.summary == the_plan.summary
    assert request.requester == "system:serviceaccount:rollback-system:rollback-controller"
    assert request.at == NOW
    assert request.requirements == (ONCALL,)
    assert request.preconditions[0]["kind"] == "Deployment"
    assert request.incident == "a1b2c3"


def test_a_request_records_each_requirements_validity_and_reads_it_back() -> None:
    short = ApprovalRequirement("payments", 2, ("payments-leads",), timedelta(minutes=30))
    body = request_body(plan(), [ONCALL, short], Identity("alice"), NOW)
    assert [r["validFor"] for r in body["spec"]["required"]] == ["1h", "30m"]
    assert parse_request(body).requirements == (ONCALL, short)


def request_object(required: list[dict[str, object]]) -> dict[str, object]:
    return {
        "metadata": {"name": "plan-0123456789abcdef", "namespace": "shop"},
        "spec": {
            "planHash": HASH,
            "target": {"kind": "Deployment", "name": "web"},
            "requester": "alice",
            "requestedAt": "2026-12-03T13:00:00Z",
            "required": required,
        },
    }


@pytest.mark.parametrize(
    ("recorded", "valid_for"),
    [
        # Written before validFor existed: one hour, as everyone counted then.
        ({}, timedelta(hours=1)),
        ({"validFor": "30m"}, timedelta(minutes=30)),
        ({"validFor": "1h30m"}, timedelta(hours=1, minutes=30)),
        # Not something we wrote: the default hour, and never more than a policy may set.
        ({"validFor": "forever"}, timedelta(hours=1)),
        ({"validFor": "48h"}, timedelta(hours=24)),
    ],
)
def test_a_request_says_how_long_its_approvals_count(
    recorded: dict[str, object], valid_for: timedelta
) -> None:
    request = parse_request(request_object([{"scope": "production", "count": 1, **recorded}]))
    assert request.requirements == (ApprovalRequirement("production", 1, (), valid_for),)


@pytest.mark.parametrize(
    ("recorded", "counts"),
    [({}, True), ({"validFor": "1h"}, True), ({"validFor": "30m"}, False)],
)
def test_rollback_approve_counts_with_the_requests_validity(
    recorded: dict[str, object], counts: bool
) -> None:
    # Given a request, and bob's approval 45 minutes old
    request = parse_request(request_object([{"scope": "production", "count": 1, **recorded}]))
    bob = approval("bob", ago=timedelta(minutes=45))
    # Then it counts under the hour (also for requests written before validFor), not under 30m
    assert request_status(request, [bob], NOW).satisfied is counts
    # ...and the same when the executor brings the policy's fresh requirements (one hour)
    assert request_status(request, [bob], NOW, requirements=[ANYONE]).satisfied is counts


def test_executors_count_with_the_validity_the_request_recorded() -> None:
    thirty = timedelta(minutes=30)
    recorded = (ApprovalRequirement("production", 1, (), thirty),)
    fresh_payments = ApprovalRequirement("payments", 1, (), timedelta(hours=2))
    # The request's validity applies to the requirement of the same scope...
    assert with_recorded_validity([ANYONE, fresh_payments], recorded) == (
        ApprovalRequirement("production", 1, (), thirty),
        fresh_payments,  # ...a scope the request does not name keeps its own
    )
    # ...unless the policy in force now is shorter: a change never lengthens approvals.
    ten = ApprovalRequirement("production", 1, (), timedelta(minutes=10))
    assert with_recorded_validity([ten], recorded) == (ten,)
    # No request read: the policy's own validity.
    assert with_recorded_validity([ANYONE], ()) == (ANYONE,)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(hours=1), "1h"),
        (timedelta(minutes=30), "30m"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(hours=24), "24h"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(seconds=3661), "1h1m1s"),
    ],
)
def test_a_recorded_validity_is_exact_and_reads_back(delta: timedelta, text: str) -> None:
    assert format_duration(delta, exact=True) == text
    assert parse_duration(text) == delta


def test_the_approver_is_told_a_validity_other_than_the_hour() -> None:
    short = ApprovalRequirement("payments", 2, ("payments-leads",), timedelta(minutes=30))
    assert describe_requirements([ONCALL, short]) == (
        "1 from sre-oncall or sre-leads (scope production); "
        "2 from payments-leads (scope payments, valid for 30m)"
    )


def test_an_approval_names_its_approver_and_counts_from_the_servers_clock() -> None:
    request = ApprovalRequest(
        HASH, ObjectRef("Deployment", "shop", "web"), "roll back", "alice", NOW, uid="u-1"
    )
    body = approval_body(request, Identity("bob", ("sre-oncall",)), NOW, reason="looks right")
    assert body["spec"]["approver"] == {"username": "bob", "groups": ["sre-oncall"]}
    assert body["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    # The client's approvedAt is shown, never trusted: the server's creationTimestamp counts.
    body["metadata"]["creationTimestamp"] = "2026-12-03T13:30:00Z"
    parsed = parse_approval(body)
    assert parsed is not None
    assert parsed.at == datetime(2026, 12, 3, 13, 30, tzinfo=UTC)
    assert (parsed.approver, parsed.groups, parsed.reason) == (
        "bob",
        ("sre-oncall",),
        "looks right",
    )


def test_an_approval_without_an_approver_or_time_is_not_counted() -> None:
    assert parse_approval({"spec": {"planHash": HASH}}) is None
    assert parse_approval({"spec": {"planHash": HASH, "approver": {"username": "bob"}}}) is None


def test_requirements_from_policy_and_executor_merge_once_each() -> None:
    assert merged([ONCALL, ANYONE], [ANYONE, ApprovalRequirement("x", 0)]) == (ONCALL, ANYONE)


REQUEST = ApprovalRequest(
    HASH,
    ObjectRef("Deployment", "shop", "web"),
    "roll back deployment/web from revision 3 to revision 2",
    "system:serviceaccount:rollback-system:rollback-controller",
    NOW,
    requirements=(ONCALL,),
    preconditions=({"kind": "Deployment", "name": "web", "resourceVersion": "481"},),
)


@pytest.mark.parametrize(
    ("who", "groups", "versions", "refusal"),
    [
        # An on-call engineer, the target as planned: may approve.
        ("bob", ("sre-oncall",), {("Deployment", "web"): "481"}, None),
        # The target could not be read (no permission): the executor re-plans anyway.
        ("bob", ("sre-oncall",), {}, None),
        # The requester: four eyes.
        (
            "system:serviceaccount:rollback-system:rollback-controller",
            ("sre-oncall",),
            {},
            "you (system:serviceaccount:rollback-system:rollback-controller) requested this "
            "plan; another person must approve it (four eyes)",
        ),
        # Not in an approver group: the approval would not count.
        (
            "bob",
            ("developers",),
            {},
            "your groups (developers) are not among the approvers this plan needs "
            "(sre-leads, sre-oncall); your approval would not count",
        ),
        # The target moved since the plan: the fresh plan has another hash.
        (
            "bob",
            ("sre-oncall",),
            {("Deployment", "web"): "502"},
            "deployment/web changed since this plan was made (resourceVersion 481, now 502): the "
            "fresh plan has another hash and an approval of this one would never count; whoever "
            "acts re-plans and asks again",
        ),
    ],
)
def test_who_may_approve_a_request_now(
    who: str, groups: tuple[str, ...], versions: dict[tuple[str, str], str], refusal: str | None
) -> None:
    assert check_approver(REQUEST, Identity(who, groups), versions) == refusal
