"""``rollback snapshot``: capture what assess reads into a file.

The file is one Kubernetes ``List`` as ``kubectl get ... -o yaml`` prints it,
annotated with ``rollback.io/captured-at`` (and the kinds read in full), with
Secrets reduced to metadata: their values are never requested from the API
server.  ``rollback assess --snapshot FILE`` replays it offline.
"""

from __future__ import annotations

import click

from controller.cli.options import cluster_options, scope_options


@click.command()
@scope_options
@cluster_options
@click.option(
    "-o",
    "--output",
    "output_file",
    default="-",
    show_default=True,
    envvar="ROLLBACK_SNAPSHOT_OUTPUT",
    type=click.Path(dir_okay=False, allow_dash=True),
    metavar="FILE",
    help="Where to write the snapshot; - for stdout [env: ROLLBACK_SNAPSHOT_OUTPUT].",
)
def snapshot(
    *,
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    selector: str | None,
    workloads: tuple[str, ...],
    kubeconfig: str | None,
    context: str | None,
    output_file: str,
) -> None:
    """Capture what assess reads into a file, Secrets without their values.

    \b
    Examples:
      rollback snapshot -n shop -o incident.yaml
      rollback assess --snapshot incident.yaml --incident-start 2026-12-03T10:04:00Z
    """
    import gc
    from datetime import UTC, datetime
    from pathlib import Path

    from controller.assess import read_view
    from controller.cli.inputs import AssessInputs, build_scope
    from controller.errors import UserInputError
    from controller.kube import Kube
    from controller.model import Scope
    from controller.snapshot import dump_snapshot

    scope = build_scope(
        AssessInputs(
            namespaces=namespaces,
            all_namespaces=all_namespaces,
            selector=selector,
            workloads=workloads,
        )
    )
    gc.disable()  # one-shot, acyclic data: see controller/cli/assess.py
    now = datetime.now(UTC).replace(microsecond=0)
    kube = Kube(kubeconfig=kubeconfig, context=context)
    try:
        if not scope.all_namespaces and not scope.namespaces:
            scope = Scope(namespaces=(kube.default_namespace,))
        view = read_view(kube, scope, now)
    finally:
        kube.close()
    text = dump_snapshot(
        view.all_objects(), view.captured_at, kinds=view.complete, unavailable=view.unavailable
    )
    if output_file == "-":
        click.echo(text, nl=False)
        return
    try:
        Path(output_file).write_text(text, encoding="utf-8")
    except OSError as err:
        raise UserInputError(f"-o {output_file}: cannot write: {err.strerror}") from None
    click.echo(
        f"wrote {output_file}: {len(view)} objects from {scope.describe()}, "
        f"captured {dump_time(view.captured_at)}, in {kube.requests} API requests",
        err=True,
    )


def dump_time(moment: object) -> str:
    from datetime import datetime

    from controller.durations import format_instant

    return format_instant(moment) if isinstance(moment, datetime) else str(moment)
