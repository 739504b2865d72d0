"""Ground truth: how a real control plane treats Deployments, before we roll anything back.

These tests pin down the Kubernetes behaviour the rest of the project relies on:
ReplicaSet revisions, a stalled rollout, and what ``kubectl rollout undo`` does.
Our own rollback is later compared with them.
"""

from __future__ import annotations

import pytest

from tests.cluster import Cluster
from tests.e2e.steps import (
    given_deployment,
    image,
    kubectl,
    pod_ready,
    pods,
    ready_pods,
    replica_sets,
    revision_of,
    template_images,
    wait_deployment_condition,
    wait_for,
    wait_rollout_complete,
    when_image_set,
)

pytestmark = pytest.mark.e2e


def test_each_image_of_a_deployment_gets_a_replicaset_revision(
    cluster: Cluster, namespace: str
) -> None:
    api = cluster.api()
    # Given a Deployment running v1
    given_deployment(api, namespace, "web", image("v1"), replicas=2)

    # When it is rolled to v2, then to v3
    for tag in ("v2", "v3"):
        when_image_set(api, namespace, "web", image(tag))
        wait_rollout_complete(api, namespace, "web")

    # Then there is one ReplicaSet per image, numbered 1..3 in order
    history = replica_sets(api, namespace, "web")
    assert [(revision_of(rs), template_images(rs)) for rs in history] == [
        (1, [image("v1")]),
        (2, [image("v2")]),
        (3, [image("v3")]),
    ]
    # And only the newest one has replicas, both Ready and running v3
    assert [rs["spec"]["replicas"] for rs in history] == [0, 0, 2]
    wait_for(lambda: len(pods(api, namespace, "app=web")) == 2, what="old pods to be gone")
    running = ready_pods(api, namespace, "app=web")
    assert [p["spec"]["containers"][0]["image"] for p in running] == [image("v3")] * 2


def test_a_broken_release_exceeds_its_progress_deadline(cluster: Cluster, namespace: str) -> None:
    api = cluster.api()
    # Given a healthy Deployment with a short progress deadline
    given_deployment(api, namespace, "web", image("v1"), replicas=2, progress_deadline=5)

    # When a release whose pods never become Ready rolls out
    when_image_set(api, namespace, "web", image("v2-broken"))

    # Then the controller gives up on it: Progressing=False, ProgressDeadlineExceeded
    stalled = wait_deployment_condition(
        api, namespace, "web", "Progressing", "False", reason="ProgressDeadlineExceeded", timeout=60
    )
    assert "has timed out progressing" in stalled["message"]
    # And the old pods still serve while the new one is not Ready
    history = replica_sets(api, namespace, "web")
    assert [revision_of(rs) for rs in history] == [1, 2]
    by_image = {
        img: [
            pod_ready(p)
            for p in pods(api, namespace, "app=web")
            if p["spec"]["containers"][0]["image"] == img
        ]
        for img in (image("v1"), image("v2-broken"))
    }
    assert by_image[image("v1")] == [True, True]
    assert by_image[image("v2-broken")] and not any(by_image[image("v2-broken")])


def test_kubectl_rollout_undo_rolls_forward_to_the_previous_template(
    cluster: Cluster, namespace: str
) -> None:
    api = cluster.api()
    # Given v1 then v2 rolled out, then a broken v3 that stalled
    given_deployment(api, namespace, "web", image("v1"), replicas=2, progress_deadline=5)
    when_image_set(api, namespace, "web", image("v2"))
    wait_rollout_complete(api, namespace, "web")
    when_image_set(api, namespace, "web", image("v3-broken"))
    wait_deployment_condition(
        api, namespace, "web", "Progressing", "False", reason="ProgressDeadlineExceeded", timeout=60
    )

    # When the real kubectl undoes the rollout
    undo = kubectl(cluster, "rollout", "undo", "deployment/web", "-n", namespace)

    # Then the template is v2's again and the rollout completes
    assert undo.stdout.strip() == "deployment.apps/web rolled back"
    done = wait_rollout_complete(api, namespace, "web")
    assert template_images(done) == [image("v2")]
    progressing = wait_deployment_condition(
        api, namespace, "web", "Progressing", "True", reason="NewReplicaSetAvailable"
    )
    assert progressing["message"].startswith('ReplicaSet "web-')
    # And v2's ReplicaSet was re-adopted and renumbered: a rollback is a roll forward
    history = {revision_of(rs): rs for rs in replica_sets(api, namespace, "web")}
    assert sorted(history) == [1, 3, 4]
    assert template_images(history[4]) == [image("v2")]
    assert history[4]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "2"
    assert history[4]["status"].get("readyReplicas") == 2
