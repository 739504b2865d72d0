"""``rollback assess``: what changed before it broke, and can we roll back?

Parses options, runs the pipeline (:mod:`controller.cli.inputs`), prints the
assessment.  Exit codes: 0 assessed (whatever the verdict), 2 bad input, 3
cluster unreachable or forbidden.
"""

from __future__ import annotations

import click

from controller.cli.options import (
    cluster_options,
    git_option,
    incident_options,
    output_option,
    policy_option,
    scope_options,
    snapshot_input_options,
)


@click.command()
@scope_options
@incident_options
@cluster_options
@snapshot_input_options
@git_option
@policy_option
@output_option
def assess(
    *,
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    selector: str | None,
    workloads: tuple[str, ...],
    incident_start: str,
    lookback: str | None,
    kubeconfig: str | None,
    context: str | None,
    snapshots: tuple[str, ...],
    now_text: str | None,
    git_repos: tuple[str, ...],
    policy_files: tuple[str, ...],
    output: str,
) -> None:
    """What changed before it broke, is it infra or software, and can we roll back?

    Reads the cluster (or --snapshot files) once, lists the changes before the
    incident start, checks the simple blocks first (resources, infrastructure,
    dependencies, application changes), ranks suspects and judges whether a
    rollback is quick and safe, and to what.

    \b
    Examples:
      rollback assess -n shop --incident-start 15m
      rollback assess -n shop --workload deployment/web -o json
      rollback assess --snapshot examples/bad-image-rollout.yaml
    """
    import gc

    from controller.cli.inputs import AssessInputs, run_assessment
    from controller.cli.render import render

    # A one-shot process holding a namespace's objects as plain dicts (no
    # cycles to collect): the cyclic collector would only rescan that heap
    # again and again, a third of the run on a big namespace.
    gc.disable()

    inputs = AssessInputs(
        namespaces=namespaces,
        all_namespaces=all_namespaces,
        selector=selector,
        workloads=workloads,
        incident_start=incident_start,
        lookback=lookback,
        kubeconfig=kubeconfig,
        context=context,
        snapshots=snapshots,
        now_text=now_text,
        git_repos=git_repos,
        policy_files=policy_files,
    )
    assessment = run_assessment(inputs)
    click.echo(render(assessment, output, incident_start), nl=False)
