"""The vocabulary: what engineers type maps to one kind everywhere."""

from __future__ import annotations

import pytest

from controller.model import WorkloadKind


@pytest.mark.parametrize(
    ("typed", "kind"),
    [
        ("deployment", WorkloadKind.DEPLOYMENT),
        ("Deployment", WorkloadKind.DEPLOYMENT),
        ("deployments", WorkloadKind.DEPLOYMENT),
        ("deploy", WorkloadKind.DEPLOYMENT),
        ("deployment.apps", WorkloadKind.DEPLOYMENT),
        (" sts ", WorkloadKind.STATEFULSET),
        ("StatefulSets", WorkloadKind.STATEFULSET),
        ("ds", WorkloadKind.DAEMONSET),
        ("daemonset.apps", WorkloadKind.DAEMONSET),
        # Not workloads: the caller explains what it accepts.
        ("replicaset", None),
        ("configmap", None),
        ("", None),
    ],
)
def test_a_typed_workload_kind_is_understood_as_kubectl_understands_it(
    typed: str, kind: WorkloadKind | None
) -> None:
    # Given what an engineer typed, when it is parsed, then it names one kind or none.
    assert WorkloadKind.parse(typed) == kind
