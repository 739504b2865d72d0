"""``rollback approve``: give (or list) approvals for a plan that policy wants approved.

Thin: parse the hash, read who we are, hand the sequence to
:func:`controller.actions.approvals.approve`, print what was approved and how
far the plan is.  Without a hash it lists the requests waiting in the namespace.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from controller.cli.options import cluster_options
from controller.errors import UserInputError

if TYPE_CHECKING:
    from controller.actions.approvals import Approval, ApprovalRequest, ApprovalStatus
    from controller.kube import Kube


@click.command()
@click.argument("plan_hash", required=False, metavar="[PLAN_HASH]")
@click.option(
    "-n",
    "--namespace",
    envvar="ROLLBACK_NAMESPACE",
    metavar="NS",
    help="Namespace of the plan's target (default: the context's) [env: ROLLBACK_NAMESPACE].",
)
@click.option("--reason", default="", help="Why you approve (recorded with the approval).")
@cluster_options
def approve(
    plan_hash: str | None,
    *,
    namespace: str | None,
    reason: str,
    kubeconfig: str | None,
    context: str | None,
) -> None:
    """Approve the plan with this hash, as yourself (the cluster says who you are).

    \b
      rollback approve sha256:08ea63882fa6feed -n shop --reason "checked the diff"
      rollback approve -n shop          # the plans waiting for approval here

    An approval counts for exactly that plan: if the target changes, the fresh
    plan has another hash and needs new approvals.  You cannot approve a plan
    you requested, approvals count distinct people from the groups the policy
    names, and they expire after the validity the request records (the policy
    scope's approvals.validFor, an hour by default).
    """
    from controller.actions.apply import whoami
    from controller.actions.approvals import approve as record
    from controller.actions.approvals import normalise_hash
    from controller.kube import Kube

    wanted = normalise_hash(plan_hash) if plan_hash is not None else None
    if len(reason) > 1024:
        raise UserInputError("--reason: at most 1024 characters")
    kube = Kube(kubeconfig=kubeconfig, context=context)
    try:
        ns = namespace or kube.default_namespace or "default"
        if wanted is None:
            _list(kube, ns)
            return
        identity = whoami(kube)
        done = record(kube, ns, wanted, identity, datetime.now(UTC), reason=reason)
    finally:
        kube.close()
    for line in describe_request(done.request):
        click.echo(line)
    if done.new:
        click.echo(f"approved {done.request.plan_hash} as {done.identity}")
    else:
        at = _time(done.approval.at) if done.approval else "earlier"
        click.echo(f"already approved by you ({done.identity}) at {at}; nothing changed")
    click.echo(status_line(done.status))


def _list(kube: Kube, namespace: str) -> None:
    from controller.actions.approvals import (
        APPROVAL,
        current_versions,
        list_requests,
        parse_approval,
        target_moved,
    )
    from controller.errors import NotFoundError

    try:
        requests = list_requests(kube, namespace)
    except NotFoundError as err:
        raise NotFoundError(
            "approval requests are not installed in this cluster "
            "(kubectl apply -f manifests/crds/rollback.io.yaml)"
        ) from err
    if not requests:
        click.echo(f"no plans wait for approval in namespace {namespace}")
        return
    approvals = [a for a in map(parse_approval, kube.list(APPROVAL, namespace)) if a is not None]
    now = datetime.now(UTC)
    for index, request in enumerate(requests):
        if index:
            click.echo("")
        for line in describe_request(request):
            click.echo(line)
        moved = target_moved(request, current_versions(kube, request))
        if moved is not None:
            # It ran, or someone else changed the target: either way no approval
            # of this hash can count any more (retention deletes it later).
            click.echo(f"approvals: stale, {moved}: nothing to approve")
            continue
        click.echo(status_line(_status(request, approvals, now)))


def _status(request: ApprovalRequest, approvals: list[Approval], now: datetime) -> ApprovalStatus:
    from controller.actions.approvals import request_status

    return request_status(request, approvals, now)


def describe_request(request: ApprovalRequest) -> list[str]:
    """The plan an approver is asked about, as they read it."""
    from controller.actions.approvals import describe_requirements

    target = request.target
    lines = [f"Plan {request.plan_hash}: {request.summary}"]
    lines.append(
        f"  target     {target.kind.lower()}/{target.name} in namespace {target.namespace}"
    )
    if request.from_label:
        lines.append(f"  from       {request.from_label}")
    if request.to_label:
        lines.append(f"  to         {request.to_label}")
    if request.changes:
        lines.append("  changes")
        lines.extend(f"    - {c}" for c in request.changes)
    if request.safety:
        lines.append(f"  safety     {request.safety}")
    asked = f"  requested  by {request.requester} at {_time(request.at)}"
    if request.incident:
        asked += f" (incident {request.incident})"
    lines.append(asked)
    lines.append(f"  needs      {describe_requirements(request.requirements)}")
    return lines


def status_line(status: ApprovalStatus) -> str:
    """``approvals: scope production: 1 of 1 from anyone: the plan may run``."""
    if status.satisfied:
        return f"approvals: {status.describe() or 'none needed'}: the plan may run"
    more = status.missing
    return f"approvals: {status.describe()}: waiting for {more} more"


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
