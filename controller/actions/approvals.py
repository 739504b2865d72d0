"""Approvals: a person's go-ahead for one exact plan, recorded in the cluster.

An approval is bound to a plan hash (:attr:`controller.actions.plan.Plan.hash`),
which covers every write and the ``resourceVersion`` each write carries.  If
the world moves, the fresh plan has another hash and the old approvals count
for nothing: an approval of a stale plan is worthless by construction.

Two kinds of object, both custom resources of group ``rollback.io``
(manifests/crds/rollback.io.yaml), in the namespace of the plan's target:

* **ApprovalRequest** ``plan-<hash>``: what the plan does (summary, from, to,
  changes, preconditions), who asked and when, and which approvals the policy
  wants.  ``rollback execute`` and the controller create it when the policy
  wants approvals; ``rollback approve`` shows it to the approver.
* **Approval** ``<hash>-<digest of the approver>``: one person's go-ahead.
  One object per person, created atomically, so approvals from several
  people never race, and the same person approving twice is one approval.
  Its ``spec.approver`` must be the user the API server authenticated: the
  ValidatingAdmissionPolicy in manifests/approvals-admission.yaml refuses
  anything else, so nobody can approve in someone else's name (identity is
  not a claim the client makes).  Its age is the server's
  ``creationTimestamp``, not a time the client wrote.

Counting (:func:`count_approvals`) is pure: distinct people, from the groups
the policy names, not the requester or the executor, younger than the
requirement's validity (the policy scope's ``approvals.validFor``, one hour by
default).  The validity travels with the request (``spec.required[].validFor``)
so that ``rollback approve``, ``rollback execute`` and the controller count
alike.  Reading and writing the objects takes a :class:`Kube`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from controller.actions.plan import HASH_PREFIX, Plan, format_time
from controller.durations import format_duration, parse_duration, parse_k8s_time
from controller.errors import ConflictError, NotFoundError, UserInputError
from controller.kube import Kube, Resource
from controller.model import ObjectRef
from controller.policy import (
    DEFAULT_APPROVAL_VALIDITY,
    MAX_APPROVAL_VALIDITY,
    ApprovalRequirement,
)
from controller.view import JSON, labels_of, meta, name_of, namespace_of

if TYPE_CHECKING:  # guards imports this module: the identity type only, no cycle
    from controller.actions.guards import Identity

API_GROUP: Final = "rollback.io"
API_VERSION: Final = "v1alpha1"
APPROVAL: Final = Resource("Approval", API_GROUP, API_VERSION, "approvals")
APPROVAL_REQUEST: Final = Resource("ApprovalRequest", API_GROUP, API_VERSION, "approvalrequests")
PLAN_HASH_LABEL: Final = "rollback.io/plan-hash"
MANAGED_BY: Final = {"app.kubernetes.io/managed-by": "rollback-controller"}
CRDS_HINT: Final = "kubectl apply -f manifests/crds/rollback.io.yaml"

_HEX = re.compile(r"^[0-9a-f]{16}$")


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Approval:
    """One person's go-ahead for one plan hash; ``at`` is when the server stored it."""

    plan_hash: str
    approver: str
    groups: tuple[str, ...] = ()
    at: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    reason: str = ""
    name: str = ""


@dataclass(frozen=True)
class ApprovalRequest:
    """A plan waiting for approvals, as ``rollback approve`` shows it."""

    plan_hash: str
    target: ObjectRef
    summary: str
    requester: str
    at: datetime
    requirements: tuple[ApprovalRequirement, ...] = ()
    action: str = ""
    from_label: str = ""
    to_label: str = ""
    changes: tuple[str, ...] = ()
    preconditions: tuple[Mapping[str, str], ...] = ()
    incident: str = ""
    safety: str = ""
    name: str = ""
    uid: str = ""


@dataclass(frozen=True)
class ApprovalContext:
    """What an executor knows about approvals when it asks the guards.

    ``approvals``: those recorded for the fresh plan's hash.  ``exclude``:
    people whose approval does not count (whoever requested the plan; the
    executor is excluded by the guards themselves).  ``extra``: requirements
    on top of the policy's (the controller asks one person when the policy
    does not let it act alone).  ``recorded``: the requirements the
    ApprovalRequest for this hash recorded (empty: none was read); approvals
    count for the validity recorded there (see :func:`with_recorded_validity`).
    ``confirms``: satisfied approvals stand in for the typed confirmation (the
    controller has nobody to type it; the approvers reviewed this exact hash).
    """

    approvals: tuple[Approval, ...] = ()
    exclude: frozenset[str] = frozenset()
    extra: tuple[ApprovalRequirement, ...] = ()
    recorded: tuple[ApprovalRequirement, ...] = ()
    confirms: bool = False


@dataclass(frozen=True)
class RequirementStatus:
    """One requirement and the people whose approval counts for it."""

    requirement: ApprovalRequirement
    approvers: tuple[str, ...]

    @property
    def missing(self) -> int:
        return max(0, self.requirement.count - len(self.approvers))

    def describe(self) -> str:
        req = self.requirement
        who = " or ".join(req.approvers) if req.approvers else "anyone"
        return f"scope {req.scope}: {len(self.approvers)} of {req.count} from {who}"


@dataclass(frozen=True)
class ApprovalStatus:
    """Whether a plan has the approvals it needs, and why each approval did or did not count."""

    requirements: tuple[RequirementStatus, ...] = ()
    ignored: tuple[tuple[str, str], ...] = ()  # (approver, why it does not count)

    @property
    def satisfied(self) -> bool:
        return all(r.missing == 0 for r in self.requirements)

    @property
    def missing(self) -> int:
        """At least this many more people must approve (requirements may share people)."""
        return max((r.missing for r in self.requirements), default=0)

    @property
    def approvers(self) -> tuple[str, ...]:
        """Everyone whose approval counts for some requirement, in the order they approved."""
        seen: dict[str, None] = {}
        for status in self.requirements:
            seen.update(dict.fromkeys(status.approvers))
        return tuple(seen)

    def describe(self) -> str:
        parts = [r.describe() for r in self.requirements]
        parts.extend(f"{who}'s approval does not count: {why}" for who, why in self.ignored)
        return "; ".join(parts)


# ---------------------------------------------------------------------------
# Counting (pure)
# ---------------------------------------------------------------------------


def count_approvals(
    requirements: Iterable[ApprovalRequirement],
    approvals: Iterable[Approval],
    plan_hash: str,
    *,
    now: datetime,
    exclude: Iterable[str] = (),
) -> ApprovalStatus:
    """Which approvals count for ``plan_hash`` at ``now``, per requirement.  Pure.

    An approval counts for a requirement when it names this exact hash, is
    younger than that requirement's ``valid_for``, comes from someone not in
    ``exclude`` (the requester, the executor), and, for a requirement that
    names approver groups, from a member of one of them.  Each requirement
    counts with its own validity, so one approval may still count for one
    scope and have expired for another.  Each person counts once, however
    often they approved.
    """
    wanted = normalise_hash(plan_hash)
    excluded = set(exclude)
    active = [r for r in requirements if r.count > 0]
    longest = max((r.valid_for for r in active), default=DEFAULT_APPROVAL_VALIDITY)
    # Everyone's approvals of this hash, oldest first; a person may appear twice.
    candidates: dict[str, list[Approval]] = {}
    ignored: list[tuple[str, str]] = []
    for approval in sorted(approvals, key=lambda a: (a.at, a.approver)):
        who = approval.approver
        if _quiet_hash(approval.plan_hash) != wanted:
            ignored.append((who, f"it approves another plan ({approval.plan_hash})"))
        elif approval.at + longest <= now:
            ignored.append((who, f"it expired at {format_time(approval.at + longest)}"))
        elif who in excluded:
            ignored.append((who, "the requester or executor of a plan cannot approve it"))
        else:
            candidates.setdefault(who, []).append(approval)
    statuses = []
    for requirement in active:
        counted = tuple(
            who
            for who, theirs in candidates.items()
            if any(_counts_for(requirement, a, now) for a in theirs)
        )
        statuses.append(RequirementStatus(requirement, counted))
    for who, theirs in candidates.items():
        missed = [s.requirement for s in statuses if who not in s.approvers]
        # In a requirement's groups but not counted there: only time kept it out.
        expired = [r for r in missed if any(_in_groups(r, a) for a in theirs)]
        if missed and len(missed) == len(statuses) and not expired:
            groups_text = ", ".join(theirs[0].groups) or "none"
            ignored.append((who, f"not in an approver group (their groups: {groups_text})"))
        for r in expired:
            at = max(a.at for a in theirs if _in_groups(r, a)) + r.valid_for
            ignored.append((who, f"for scope {r.scope} it expired at {format_time(at)}"))
    return ApprovalStatus(tuple(statuses), tuple(ignored))


def _in_groups(requirement: ApprovalRequirement, approval: Approval) -> bool:
    return not requirement.approvers or bool(set(requirement.approvers) & set(approval.groups))


def _counts_for(requirement: ApprovalRequirement, approval: Approval, now: datetime) -> bool:
    return approval.at + requirement.valid_for > now and _in_groups(requirement, approval)


def with_recorded_validity(
    requirements: Iterable[ApprovalRequirement], recorded: Iterable[ApprovalRequirement]
) -> tuple[ApprovalRequirement, ...]:
    """``requirements``, each valid for what the approval request recorded for its scope.  Pure.

    The request is what approvers read (``rollback approve``), so executors
    count with its validity too.  Where the policy in force now is shorter,
    the shorter applies: a policy change never lengthens approvals already
    asked for.  A scope the request does not name keeps its own validity.
    """
    on_record: dict[str, timedelta] = {}
    for r in recorded:
        on_record[r.scope] = min(on_record.get(r.scope, r.valid_for), r.valid_for)
    return tuple(
        replace(r, valid_for=min(r.valid_for, on_record[r.scope])) if r.scope in on_record else r
        for r in requirements
    )


def eligible(requirements: Sequence[ApprovalRequirement], groups: Iterable[str]) -> bool:
    """Whether someone in ``groups`` can count for at least one requirement.  Pure."""
    mine = set(groups)
    active = [r for r in requirements if r.count > 0]
    return not active or any(not r.approvers or mine.intersection(r.approvers) for r in active)


# ---------------------------------------------------------------------------
# Names and bodies (pure)
# ---------------------------------------------------------------------------


def normalise_hash(text: str) -> str:
    """``sha256:0123abcd…`` (or the bare 16 hex digits, any case) -> ``sha256:0123abcd…``.

    Raises UserInputError for anything that is not a plan hash.
    """
    value = _quiet_hash(text)
    if not _HEX.match(value.removeprefix(HASH_PREFIX)):
        raise UserInputError(
            f"{text.strip()!r} is not a plan hash: expected sha256: and 16 hex digits, as "
            "rollback assess, execute and the controller print it"
        )
    return value


def _quiet_hash(text: str) -> str:
    value = text.strip().lower()
    return value if value.startswith(HASH_PREFIX) else HASH_PREFIX + value


def hash_hex(plan_hash: str) -> str:
    """The 16 hex digits of a plan hash: label values and names cannot hold the colon."""
    return normalise_hash(plan_hash).removeprefix(HASH_PREFIX)


def request_name(plan_hash: str) -> str:
    return f"plan-{hash_hex(plan_hash)}"


def approval_name(plan_hash: str, username: str) -> str:
    """One name per (plan, person): a second approval by the same person is a 409, not a vote."""
    digest = hashlib.sha256(username.encode()).hexdigest()[:10]
    return f"{hash_hex(plan_hash)}-{digest}"


def request_body(
    plan: Plan,
    requirements: Sequence[ApprovalRequirement],
    requester: Identity,
    now: datetime,
    *,
    incident: str = "",
    safety: str = "",
) -> JSON:
    """The ApprovalRequest for ``plan``.  Pure."""
    target = plan.target
    return {
        "apiVersion": APPROVAL_REQUEST.api_version,
        "kind": APPROVAL_REQUEST.kind,
        "metadata": {
            "name": request_name(plan.hash),
            "namespace": target.namespace,
            "labels": {**MANAGED_BY, PLAN_HASH_LABEL: hash_hex(plan.hash)},
        },
        "spec": {
            "planHash": plan.hash,
            "target": {"kind": target.kind, "name": target.name},
            "action": plan.action.value,
            "summary": plan.summary,
            "from": plan.from_label,
            "to": plan.to_label,
            "changes": list(plan.changes),
            "preconditions": [
                {"kind": s.ref.kind, "name": s.ref.name, "resourceVersion": s.resource_version}
                for s in plan.steps
            ],
            "requester": requester.username,
            "requestedAt": format_time(now),
            "required": [requirement_json(r) for r in requirements if r.count > 0],
            "incident": incident,
            "safety": safety,
        },
    }


def approval_body(
    request: ApprovalRequest, identity: Identity, now: datetime, reason: str = ""
) -> JSON:
    """The Approval ``identity`` gives ``request``'s plan.  Pure.

    Owned by the request (no ``blockOwnerDeletion``), so approvals go when
    the request is cleaned up.
    """
    owner = (
        [
            {
                "apiVersion": APPROVAL_REQUEST.api_version,
                "kind": APPROVAL_REQUEST.kind,
                "name": request.name,
                "uid": request.uid,
            }
        ]
        if request.uid
        else []
    )
    return {
        "apiVersion": APPROVAL.api_version,
        "kind": APPROVAL.kind,
        "metadata": {
            "name": approval_name(request.plan_hash, identity.username),
            "namespace": request.target.namespace,
            "labels": {**MANAGED_BY, PLAN_HASH_LABEL: hash_hex(request.plan_hash)},
            "ownerReferences": owner,
        },
        "spec": {
            "planHash": request.plan_hash,
            # Checked against the authenticated user at admission
            # (manifests/approvals-admission.yaml): not a claim, a fact.
            "approver": {"username": identity.username, "groups": list(identity.groups)},
            "approvedAt": format_time(now),
            "reason": reason,
        },
    }


def parse_request(obj: JSON) -> ApprovalRequest:
    """An ApprovalRequest as read from the API.  Pure."""
    spec = obj.get("spec") or {}
    target = spec.get("target") or {}
    namespace = namespace_of(obj)
    at = parse_k8s_time(spec.get("requestedAt")) or parse_k8s_time(
        meta(obj).get("creationTimestamp")
    )
    return ApprovalRequest(
        plan_hash=_quiet_hash(str(spec.get("planHash") or "")),
        target=ObjectRef(str(target.get("kind") or ""), namespace, str(target.get("name") or "")),
        summary=str(spec.get("summary") or ""),
        requester=str(spec.get("requester") or ""),
        at=at or datetime(1970, 1, 1, tzinfo=UTC),
        requirements=tuple(
            ApprovalRequirement(
                str(r.get("scope") or ""),
                int(r.get("count") or 0),
                tuple(str(g) for g in r.get("approvers") or ()),
                _recorded_validity(r.get("validFor")),
            )
            for r in spec.get("required") or ()
            if isinstance(r, dict)
        ),
        action=str(spec.get("action") or ""),
        from_label=str(spec.get("from") or ""),
        to_label=str(spec.get("to") or ""),
        changes=tuple(str(c) for c in spec.get("changes") or ()),
        preconditions=tuple(
            {str(k): str(v) for k, v in p.items()}
            for p in spec.get("preconditions") or ()
            if isinstance(p, dict)
        ),
        incident=str(spec.get("incident") or ""),
        safety=str(spec.get("safety") or ""),
        name=name_of(obj),
        uid=str(meta(obj).get("uid") or ""),
    )


def requirement_json(r: ApprovalRequirement) -> JSON:
    """A requirement as the request records it and notices carry it.  Pure."""
    return {
        "scope": r.scope,
        "count": r.count,
        "approvers": list(r.approvers),
        "validFor": format_duration(r.valid_for, exact=True),
    }


def _recorded_validity(value: object) -> timedelta:
    """A request's ``validFor``: one hour when absent (requests written before it existed)
    or unreadable, and never more than a policy may set."""
    try:
        validity = parse_duration(str(value)) if value else DEFAULT_APPROVAL_VALIDITY
    except ValueError:
        validity = DEFAULT_APPROVAL_VALIDITY
    return min(validity, MAX_APPROVAL_VALIDITY)


def parse_approval(obj: JSON) -> Approval | None:
    """An Approval as read from the API; None when it is not one we can count.  Pure.

    Its time is the server's ``creationTimestamp``: the client-written
    ``approvedAt`` is shown, never trusted.
    """
    spec = obj.get("spec") or {}
    approver = spec.get("approver") or {}
    username = approver.get("username")
    created = parse_k8s_time(meta(obj).get("creationTimestamp"))
    plan_hash = spec.get("planHash") or labels_of(obj).get(PLAN_HASH_LABEL)
    if not username or created is None or not plan_hash:
        return None
    return Approval(
        plan_hash=_quiet_hash(str(plan_hash)),
        approver=str(username),
        groups=tuple(str(g) for g in approver.get("groups") or ()),
        at=created,
        reason=str(spec.get("reason") or ""),
        name=name_of(obj),
    )


# ---------------------------------------------------------------------------
# Reading and writing (one round trip each)
# ---------------------------------------------------------------------------


def read_approvals(kube: Kube, namespace: str, plan_hash: str) -> tuple[Approval, ...]:
    """The approvals recorded for ``plan_hash`` in ``namespace``; none if the CRD is missing."""
    try:
        objects = kube.list(
            APPROVAL, namespace, selector=f"{PLAN_HASH_LABEL}={hash_hex(plan_hash)}"
        )
    except NotFoundError:
        return ()
    found = (parse_approval(o) for o in objects)
    return tuple(a for a in found if a is not None)


def read_request(kube: Kube, namespace: str, plan_hash: str) -> ApprovalRequest | None:
    """The request for ``plan_hash``, or None (never requested, or the CRD is missing)."""
    try:
        return parse_request(kube.get(APPROVAL_REQUEST, namespace, request_name(plan_hash)))
    except NotFoundError:
        return None


def list_requests(kube: Kube, namespace: str) -> tuple[ApprovalRequest, ...]:
    """Every approval request in ``namespace``, oldest first.  Raises NotFoundError without CRD."""
    objects = kube.list(APPROVAL_REQUEST, namespace)
    return tuple(sorted((parse_request(o) for o in objects), key=lambda r: r.at))


def ensure_request(kube: Kube, body: JSON) -> tuple[ApprovalRequest, bool]:
    """Create the request, or read the one already there (its requester and time stay).

    Returns the request and whether we created it.  A missing CRD raises
    NotFoundError with the command that installs it.
    """
    namespace = str(body["metadata"]["namespace"])
    try:
        return parse_request(kube.create(APPROVAL_REQUEST, namespace, body)), True
    except ConflictError:
        pass
    except NotFoundError as err:
        raise NotFoundError(
            f"approval requests are not installed in this cluster ({CRDS_HINT})"
        ) from err
    existing = kube.get(APPROVAL_REQUEST, namespace, str(body["metadata"]["name"]))
    return parse_request(existing), False


def record_approval(kube: Kube, body: JSON) -> tuple[Approval | None, bool]:
    """Create the Approval; returns it and whether it is new (False: this person already had)."""
    namespace = str(body["metadata"]["namespace"])
    try:
        return parse_approval(kube.create(APPROVAL, namespace, body)), True
    except ConflictError:
        existing = kube.get(APPROVAL, namespace, str(body["metadata"]["name"]))
        return parse_approval(existing), False


def request_status(
    request: ApprovalRequest,
    approvals: Iterable[Approval],
    now: datetime,
    *,
    requirements: Sequence[ApprovalRequirement] | None = None,
) -> ApprovalStatus:
    """How far ``request`` is: its own requirements (or fresher ones, valid for what the
    request recorded), its requester excluded."""
    wanted = (
        request.requirements
        if requirements is None
        else with_recorded_validity(requirements, request.requirements)
    )
    return count_approvals(
        wanted, approvals, request.plan_hash, now=now, exclude=(request.requester,)
    )


def merged(*requirement_sets: Iterable[ApprovalRequirement]) -> tuple[ApprovalRequirement, ...]:
    """Requirements from several sources, once each, zero counts dropped.  Pure."""
    out: dict[tuple[str, int, tuple[str, ...], timedelta], ApprovalRequirement] = {}
    for requirements in requirement_sets:
        for r in requirements:
            if r.count > 0:
                out.setdefault((r.scope, r.count, r.approvers, r.valid_for), r)
    return tuple(out.values())


def describe_requirements(requirements: Sequence[ApprovalRequirement]) -> str:
    """``1 from sre-oncall or sre-leads (scope production)``; several joined by ``;``.  Pure.

    A validity other than the default hour is said: ``(scope payments, valid for 30m)``.
    """
    parts = []
    for r in requirements:
        who = " or ".join(r.approvers) if r.approvers else "anyone"
        note = f", {r.validity_note}" if r.validity_note else ""
        parts.append(f"{r.count} from {who} (scope {r.scope}{note})")
    return "; ".join(parts) or "none"


# ---------------------------------------------------------------------------
# rollback approve
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Approved:
    """How ``rollback approve`` ended: the request, the approval, and the count now."""

    request: ApprovalRequest
    approval: Approval | None
    new: bool
    status: ApprovalStatus
    identity: Identity


def check_approver(
    request: ApprovalRequest,
    identity: Identity,
    current_versions: Mapping[tuple[str, str], str],
) -> str | None:
    """Why ``identity`` may not approve ``request`` now, or None.  Pure.

    ``current_versions`` maps (kind, name) of the plan's preconditions to the
    resourceVersion read just now (missing: not read).  A moved target means
    the fresh plan has another hash: approving this one would never count.
    """
    if identity.username == request.requester:
        return (
            f"you ({identity.username}) requested this plan; another person must approve it "
            "(four eyes)"
        )
    if not eligible(request.requirements, identity.groups):
        wanted = sorted({g for r in request.requirements for g in r.approvers})
        mine = ", ".join(identity.groups) or "none"
        return (
            f"your groups ({mine}) are not among the approvers this plan needs "
            f"({', '.join(wanted)}); your approval would not count"
        )
    moved = target_moved(request, current_versions)
    if moved is not None:
        return (
            f"{moved}: the fresh plan has another hash and an approval of this one would never "
            "count; whoever acts re-plans and asks again"
        )
    return None


def target_moved(
    request: ApprovalRequest, current_versions: Mapping[tuple[str, str], str]
) -> str | None:
    """Which of the plan's objects changed since it was made, or None.  Pure.

    A plan that ran changed its target too, so this is also how a listing
    tells a finished request from a waiting one.
    """
    for pre in request.preconditions:
        key = (pre.get("kind", ""), pre.get("name", ""))
        now_rv = current_versions.get(key)
        if now_rv is not None and now_rv != pre.get("resourceVersion"):
            return (
                f"{key[0].lower()}/{key[1]} changed since this plan was made (resourceVersion "
                f"{pre.get('resourceVersion')}, now {now_rv})"
            )
    return None


def approve(
    kube: Kube,
    namespace: str,
    plan_hash: str,
    identity: Identity,
    now: datetime,
    *,
    reason: str = "",
) -> Approved:
    """Record ``identity``'s approval of ``plan_hash`` after checking it can count.

    Reads the request (GET), the plan's targets (a GET each, to catch a stale
    plan), writes the Approval (POST) and reads the approvals (LIST).  Raises
    NotFoundError (no such request, or no CRD) and RefusedError (own plan, not
    an approver, stale plan); nothing is written then.
    """
    from controller.errors import RefusedError

    wanted = normalise_hash(plan_hash)
    try:
        request = parse_request(kube.get(APPROVAL_REQUEST, namespace, request_name(wanted)))
    except NotFoundError as err:
        if "could not find the requested resource" in str(err):
            raise NotFoundError(
                f"approval requests are not installed in this cluster ({CRDS_HINT})"
            ) from err
        raise NotFoundError(
            f"no approval request for plan {wanted} in namespace {namespace}: nothing to "
            "approve (rollback execute and the controller record one when policy wants "
            "approvals; `rollback approve -n NS` lists them)"
        ) from err
    refusal = check_approver(request, identity, current_versions(kube, request))
    if refusal is not None:
        raise RefusedError(f"refused: {refusal}; nothing was recorded")
    approval, new = record_approval(kube, approval_body(request, identity, now, reason))
    status = request_status(request, read_approvals(kube, namespace, wanted), now)
    return Approved(request, approval, new, status, identity)


def current_versions(kube: Kube, request: ApprovalRequest) -> dict[tuple[str, str], str]:
    """The resourceVersion of each precondition's object now; unreadable ones are left out."""
    from controller.errors import ClusterError
    from controller.kube import CONFIGMAP, DAEMONSET, DEPLOYMENT, FEATUREFLAG, STATEFULSET

    resources = {r.kind: r for r in (DEPLOYMENT, STATEFULSET, DAEMONSET, CONFIGMAP, FEATUREFLAG)}
    out: dict[tuple[str, str], str] = {}
    for pre in request.preconditions:
        kind, name = pre.get("kind", ""), pre.get("name", "")
        resource = resources.get(kind)
        if resource is None or not name:
            continue
        try:
            obj = kube.get(resource, request.target.namespace, name)
        except ClusterError:
            continue  # the approver may not read it; the executor re-plans anyway
        out[(kind, name)] = str(meta(obj).get("resourceVersion") or "")
    return out


__all__ = [
    "APPROVAL",
    "APPROVAL_REQUEST",
    "PLAN_HASH_LABEL",
    "Approval",
    "ApprovalContext",
    "ApprovalRequest",
    "ApprovalStatus",
    "Approved",
    "RequirementStatus",
    "approval_body",
    "approval_name",
    "approve",
    "check_approver",
    "count_approvals",
    "current_versions",
    "describe_requirements",
    "eligible",
    "ensure_request",
    "hash_hex",
    "list_requests",
    "merged",
    "normalise_hash",
    "parse_approval",
    "parse_request",
    "read_approvals",
    "read_request",
    "record_approval",
    "request_body",
    "request_name",
    "request_status",
    "requirement_json",
    "target_moved",
    "with_recorded_validity",
]
