"""``rollback controller``: run the in-cluster controller, or ask how it is doing.

``run`` validates every option before touching the cluster (one line, exit 2
for a bad value), then hands over to :class:`controller.runtime.service.Controller`
until SIGTERM or Ctrl-C.  ``status`` reads the leader Lease and the incidents
on record.  Heavy imports happen inside the commands.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from controller.cli.options import cluster_options, load_policy_option, policy_option
from controller.errors import UserInputError

if TYPE_CHECKING:
    from controller.runtime.service import Config

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_NOTIFY = re.compile(r"^(slack:[#@]\S+|webhook:https?://\S+|email:[^@\s]+@[^@\s]+\.[^@\s]+)$")


@click.group()
def controller() -> None:
    """The in-cluster controller: alerts in, assessments, guarded actions, approvals, ledger."""


def _duration(name: str, text: str, *, zero: bool = False) -> timedelta:
    from controller.durations import parse_duration

    if zero and text.strip() == "0":
        return timedelta(0)  # "0 turns it off", as the help says: no unit needed for none
    try:
        value = parse_duration(text)
    except ValueError as err:
        raise UserInputError(f"{name}: {err}") from None
    if value < timedelta(0) or (value == timedelta(0) and not zero):
        raise UserInputError(f"{name} {text!r}: must be longer than zero")
    return value


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) -> (host, port); port 0 picks a free one."""
    host, sep, port_text = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise UserInputError(f"--listen {text!r}: use HOST:PORT, e.g. 0.0.0.0:8080")
    return host, int(port_text)


def _namespaces(values: tuple[str, ...], option: str) -> tuple[str, ...]:
    found = tuple(dict.fromkeys(v.strip() for value in values for v in value.split(",") if v))
    for namespace in found:
        if not _DNS_LABEL.match(namespace):
            raise UserInputError(f"{option} {namespace!r}: not a namespace name")
    return found


def _default_identity() -> str:
    import os
    import socket
    import uuid

    base = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{base}_{uuid.uuid4().hex[:8]}"


@controller.command(short_help="Run the controller until SIGTERM.")
@click.option(
    "-n",
    "--namespace",
    "namespaces",
    multiple=True,
    envvar="ROLLBACK_NAMESPACE",
    metavar="NS",
    help="A namespace to watch (alerts, assessments, actions, ledger); repeatable or "
    "comma-separated. Default: the context's (in cluster: the pod's) "
    "[env: ROLLBACK_NAMESPACE, several separated by spaces].",
)
@click.option(
    "--listen",
    default="127.0.0.1:8080",
    show_default=True,
    envvar="ROLLBACK_LISTEN",
    metavar="HOST:PORT",
    help="Where the webhook, /healthz and /readyz listen; port 0 picks a free one "
    "[env: ROLLBACK_LISTEN].",
)
@policy_option
@click.option(
    "--lease-namespace",
    envvar="ROLLBACK_LEASE_NAMESPACE",
    metavar="NS",
    help="Namespace of the leader Lease and the incident records (default: the context's, "
    "in cluster the pod's) [env: ROLLBACK_LEASE_NAMESPACE].",
)
@click.option(
    "--lease-name",
    default="rollback-controller",
    show_default=True,
    envvar="ROLLBACK_LEASE_NAME",
    help="Name of the leader Lease [env: ROLLBACK_LEASE_NAME].",
)
@click.option(
    "--identity",
    envvar="ROLLBACK_IDENTITY",
    help="This replica's name in the Lease (default: $POD_NAME or the host name, plus a "
    "random suffix) [env: ROLLBACK_IDENTITY].",
)
@click.option(
    "--audit-log",
    envvar="ROLLBACK_AUDIT_LOG",
    type=click.Path(dir_okay=False),
    help="Audit log (JSON lines) [env: ROLLBACK_AUDIT_LOG; default "
    "$XDG_STATE_HOME/rollback-controller/audit.jsonl].",
)
@click.option(
    "--webhook-token-file",
    envvar="ROLLBACK_WEBHOOK_TOKEN_FILE",
    type=click.Path(dir_okay=False),
    help="A file holding the bearer token Alertmanager must send (its http_config "
    "authorization) [env: ROLLBACK_WEBHOOK_TOKEN_FILE; or the token itself in "
    "ROLLBACK_WEBHOOK_TOKEN].",
)
@click.option(
    "--notify",
    multiple=True,
    metavar="TARGET",
    envvar="ROLLBACK_NOTIFY",
    help="Also notify this target (webhook:https://..., slack:#channel), on top of the "
    "policy's; repeatable [env: ROLLBACK_NOTIFY, several separated by spaces].",
)
@click.option(
    "--resync",
    default="15s",
    show_default=True,
    envvar="ROLLBACK_RESYNC",
    help="How often the leader lists incidents (a webhook wakes it at once) "
    "[env: ROLLBACK_RESYNC].",
)
@click.option(
    "--ledger-interval",
    default="30s",
    show_default=True,
    envvar="ROLLBACK_LEDGER_INTERVAL",
    help="How often the change ledger records new ConfigMap and FeatureFlag content; 0 "
    "turns the ledger off [env: ROLLBACK_LEDGER_INTERVAL].",
)
@click.option(
    "--ledger-versions",
    default=10,
    show_default=True,
    type=click.IntRange(min=1, max=1000),
    envvar="ROLLBACK_LEDGER_VERSIONS",
    help="Versions kept per object; the oldest are pruned [env: ROLLBACK_LEDGER_VERSIONS].",
)
@click.option(
    "--timeout",
    default="5m",
    show_default=True,
    envvar="ROLLBACK_TIMEOUT",
    help="How long to wait for a rollout to converge [env: ROLLBACK_TIMEOUT].",
)
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(min=1, max=32),
    envvar="ROLLBACK_WORKERS",
    help="Incidents reconciled at once [env: ROLLBACK_WORKERS].",
)
@click.option(
    "--retention",
    default="24h",
    show_default=True,
    envvar="ROLLBACK_RETENTION",
    help="How long resolved incidents and approval requests are kept [env: ROLLBACK_RETENTION].",
)
@click.option(
    "--lease-duration",
    default="15s",
    show_default=True,
    envvar="ROLLBACK_LEASE_DURATION",
    help="How long a silent leader keeps the Lease [env: ROLLBACK_LEASE_DURATION].",
)
@click.option(
    "--renew-deadline",
    default="10s",
    show_default=True,
    envvar="ROLLBACK_RENEW_DEADLINE",
    help="A leader that cannot renew for this long exits [env: ROLLBACK_RENEW_DEADLINE].",
)
@click.option(
    "--retry-period",
    default="2s",
    show_default=True,
    envvar="ROLLBACK_RETRY_PERIOD",
    help="How often the Lease is renewed or tried [env: ROLLBACK_RETRY_PERIOD].",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    envvar="ROLLBACK_LOG_FORMAT",
    help="Log lines as text or JSON objects [env: ROLLBACK_LOG_FORMAT].",
)
@cluster_options
def run(
    *,
    namespaces: tuple[str, ...],
    listen: str,
    policy_files: tuple[str, ...],
    lease_namespace: str | None,
    lease_name: str,
    identity: str | None,
    audit_log: str | None,
    webhook_token_file: str | None,
    notify: tuple[str, ...],
    resync: str,
    ledger_interval: str,
    ledger_versions: int,
    timeout: str,
    workers: int,
    retention: str,
    lease_duration: str,
    renew_deadline: str,
    retry_period: str,
    log_format: str,
    kubeconfig: str | None,
    context: str | None,
) -> None:
    """Run the controller: Alertmanager webhook in, reassess, act or ask, until SIGTERM.

    \b
      rollback controller run -n shop -n payments --policy staging.yaml \\
          --listen 0.0.0.0:8080 --lease-namespace rollback-system

    Every replica takes alerts and records them in the cluster; the one holding
    the Lease reassesses each open incident from a fresh read, acts through the
    guarded path of `rollback execute` where policy lets it act alone, asks for
    approval (`rollback approve`) where a person must decide, records ConfigMap
    and FeatureFlag history, and notifies the policy's targets.
    """
    import os

    from controller.actions.audit import default_audit_path
    from controller.runtime.service import Config

    host, port = parse_listen(listen)
    watched = _namespaces(namespaces, "--namespace")
    if lease_namespace is not None:
        _namespaces((lease_namespace,), "--lease-namespace")
    if not _DNS_LABEL.match(lease_name):
        raise UserInputError(f"--lease-name {lease_name!r}: not a valid object name")
    for target in notify:
        if not _NOTIFY.match(target):
            raise UserInputError(
                f"--notify {target!r}: use webhook:https://host/path, slack:#channel or "
                "email:name@example.com"
            )
    durations = {
        "resync": _duration("--resync", resync),
        "ledger_interval": _duration("--ledger-interval", ledger_interval, zero=True),
        "timeout": _duration("--timeout", timeout),
        "retention": _duration("--retention", retention),
        "lease_duration": _duration("--lease-duration", lease_duration),
        "renew_deadline": _duration("--renew-deadline", renew_deadline),
        "retry_period": _duration("--retry-period", retry_period),
    }
    if not (durations["retry_period"] < durations["renew_deadline"] < durations["lease_duration"]):
        raise UserInputError(
            "--retry-period < --renew-deadline < --lease-duration must hold "
            f"(now {retry_period} / {renew_deadline} / {lease_duration})"
        )
    token = os.environ.get("ROLLBACK_WEBHOOK_TOKEN", "").strip()
    if webhook_token_file:
        try:
            token = Path(webhook_token_file).read_text(encoding="utf-8").strip()
        except OSError as err:
            raise UserInputError(
                f"--webhook-token-file {webhook_token_file}: {err.strerror or err}"
            ) from None
        if not token:
            raise UserInputError(f"--webhook-token-file {webhook_token_file}: the file is empty")
    load_policy_option(policy_files)  # every problem reported now, before any cluster call
    config = Config(
        namespaces=watched,
        lease_namespace=lease_namespace or "",
        identity=identity or _default_identity(),
        audit_log=Path(audit_log) if audit_log else default_audit_path(),
        host=host,
        port=port,
        policy_files=policy_files,
        lease_name=lease_name,
        kubeconfig=kubeconfig,
        context=context,
        token=token,
        slack_url=os.environ.get("ROLLBACK_SLACK_WEBHOOK_URL", "").strip(),
        notify=notify,
        ledger_versions=ledger_versions,
        workers=workers,
        **durations,
    )
    _serve(config, log_format)


def _serve(config: Config, log_format: str) -> None:
    import os
    import signal

    from controller.runtime.logs import setup_logging
    from controller.runtime.service import Controller

    log = setup_logging(json_lines=log_format == "json")
    if os.environ.get("ROLLBACK_APPROVAL_TTL"):
        # The option is gone: the policy says how long approvals count, for everyone.
        log.warning(
            "ROLLBACK_APPROVAL_TTL is set but no longer read: an approval counts for the "
            "policy scope's approvals.validFor (1h by default), recorded on each approval request",
            extra={"target": "config"},
        )
    try:
        service = Controller(config, log)
    except OSError as err:
        raise UserInputError(
            f"--listen {config.host}:{config.port}: {err.strerror or err}"
        ) from None

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum, extra={"target": "shutdown"})
        service.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    service.start()
    try:
        service.wait()
    finally:
        service.shutdown()


@controller.command(short_help="Who leads, and the incidents on record.")
@click.option(
    "--lease-namespace",
    envvar="ROLLBACK_LEASE_NAMESPACE",
    metavar="NS",
    help="Namespace of the Lease and the incidents (default: the context's) "
    "[env: ROLLBACK_LEASE_NAMESPACE].",
)
@click.option(
    "--lease-name",
    default="rollback-controller",
    show_default=True,
    envvar="ROLLBACK_LEASE_NAME",
    help="Name of the leader Lease [env: ROLLBACK_LEASE_NAME].",
)
@cluster_options
def status(
    *, lease_namespace: str | None, lease_name: str, kubeconfig: str | None, context: str | None
) -> None:
    """Who leads, and the incidents on record with what was done about each."""
    from datetime import UTC, datetime

    from controller.durations import format_duration, format_instant
    from controller.errors import NotFoundError
    from controller.kube import LEASE, Kube
    from controller.runtime.incidents import IncidentStore
    from controller.runtime.leader import LeaseRecord

    kube = Kube(kubeconfig=kubeconfig, context=context)
    try:
        namespace = lease_namespace or kube.default_namespace or "default"
        now = datetime.now(UTC)
        try:
            lease = LeaseRecord.of(kube.get(LEASE, namespace, lease_name))
        except NotFoundError:
            click.echo(f"leader: none (no Lease {namespace}/{lease_name})")
        else:
            if lease.holder:
                ago = (
                    f"renewed {format_duration(now - lease.renew_time)} ago"
                    if lease.renew_time
                    else "never renewed"
                )
                click.echo(
                    f"leader: {lease.holder} ({ago}; lease {lease.duration}s, "
                    f"{lease.transitions} transition(s))"
                )
            else:
                click.echo(f"leader: none (Lease {namespace}/{lease_name} was released)")
        records = IncidentStore(kube, namespace).list()
    finally:
        kube.close()
    click.echo(f"incidents: {len(records)}")
    for record in records:
        action = record.state.action
        click.echo(
            f"  {record.id}  {record.status.value:<8} {record.describe()} since "
            f"{format_instant(record.started)}"
        )
        if action is not None:
            click.echo(f"    action: {action.summary} ({action.phase.value}, {action.plan_hash})")
        elif record.state.approval_requested:
            click.echo(f"    waiting for approval of {record.state.approval_requested}")
        elif record.state.last:
            click.echo(f"    last: {record.state.last}")
