"""Triage: the seed's blocks, simplest first, and the infrastructure-or-software fork.

Each case reads: given these symptoms and these changes, when triage
classifies them, then this classification with exactly these reason codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from controller.core.triage import classify
from controller.model import BLOCK_ORDER, Block, Change, Classification, Signal, SignalKind

from .builders import (
    START,
    config_change,
    configmap,
    crash_loop,
    deploy,
    deployment,
    featureflag,
    flag_flip,
    image_pull,
    incident,
    no_endpoints,
    node_change,
    node_not_ready,
    node_pressure,
    not_ready,
    oom_killed,
    quota_exceeded,
    rollout_stalled,
    unavailable,
    unschedulable,
)

WEB = deployment("web")
API = deployment("api")
CART = deployment("cart")
SEARCH = deployment("search")


@dataclass(frozen=True)
class Case:
    name: str
    signals: tuple[Signal, ...]
    changes: tuple[Change, ...]
    classification: Classification
    codes: tuple[str, ...]


CASES = [
    Case(
        "bad image rollout: crash loop on exactly the new revision is software",
        (crash_loop(WEB, 4, at=-1),),
        (deploy(WEB, 4, at=-3),),
        Classification.SOFTWARE,
        ("classification.software", "software.new-revision-unhealthy"),
    ),
    Case(
        "image that cannot be pulled, right after the deploy that named it, is software",
        (image_pull(WEB, 4, at=-1),),
        (deploy(WEB, 4, at=-3, stalled=True),),
        Classification.SOFTWARE,
        ("classification.software", "software.new-revision-unhealthy"),
    ),
    Case(
        "image pulls failing with no new image rolled out point at registry or network",
        (image_pull(WEB, 3, at=-1),),
        (),
        Classification.INFRASTRUCTURE,
        ("classification.infrastructure", "infra.image-pull"),
    ),
    Case(
        "crash loop on the OLD revision is not explained by the deploy of a new one",
        (crash_loop(WEB, 3, at=-1),),
        (deploy(WEB, 4, at=-3),),
        Classification.UNKNOWN,
        ("classification.unknown", "unexplained.crash-loop"),
    ),
    Case(
        "OOMKilled right after a deploy of that workload is software",
        (oom_killed(WEB, None, at=-1),),
        (deploy(WEB, 4, at=-5),),
        Classification.SOFTWARE,
        ("classification.software", "software.after-change"),
    ),
    Case(
        "symptom that began before the change is not explained by it",
        (oom_killed(WEB, None, at=-30),),
        (deploy(WEB, 4, at=-5),),
        Classification.UNKNOWN,
        ("classification.unknown", "unexplained.oom-killed"),
    ),
    Case(
        "deployed 20h ago, served fine, replicas unavailable now: timing alone explains nothing",
        (unavailable(WEB, at=-1),),
        (deploy(WEB, 4, at=-1200),),
        Classification.UNKNOWN,
        ("classification.unknown", "unexplained.unavailable"),
    ),
    Case(
        "crash loop on exactly the revision rolled out 20h ago: still that rollout's",
        (crash_loop(WEB, 4, at=-1),),
        (deploy(WEB, 4, at=-1200),),
        Classification.SOFTWARE,
        ("classification.software", "software.new-revision-unhealthy"),
    ),
    Case(
        "three workloads deployed hours ago all unavailable now: widespread",
        (unavailable(WEB, at=-1), unavailable(API, at=-1), unavailable(CART, at=-1)),
        (deploy(WEB, 4, at=-300), deploy(API, 7, at=-400), deploy(CART, 2, at=-500)),
        Classification.INFRASTRUCTURE,
        ("classification.infrastructure", "infra.widespread"),
    ),
    Case(
        "consumer of a changed ConfigMap turned not Ready after the write",
        (not_ready(API, None, at=-8),),
        (config_change(configmap("api-config"), at=-10, consumers=[API]),),
        Classification.SOFTWARE,
        ("classification.software", "software.consumed-config-changed"),
    ),
    Case(
        "flag flip followed by crash loops of the workload evaluating it",
        (crash_loop(WEB, 3, at=-1),),
        (flag_flip(featureflag("shop-flags"), "new-checkout", at=-2, consumers=[WEB]),),
        Classification.SOFTWARE,
        ("classification.software", "software.flag-changed"),
    ),
    Case(
        "NotReady node leaves pods unschedulable: infrastructure, even right after a deploy",
        (node_not_ready("worker-2"), unschedulable(WEB, 4, at=-1)),
        (deploy(WEB, 4, at=-3, stalled=True),),
        Classification.INFRASTRUCTURE,
        ("classification.infrastructure", "infra.unschedulable-nodes", "infra.node-not-ready"),
    ),
    Case(
        "unschedulable after a deploy that asks for more, nodes fine: software",
        (unschedulable(WEB, 4, at=-1),),
        (deploy(WEB, 4, at=-3, stalled=True),),
        Classification.SOFTWARE,
        ("classification.software", "software.unschedulable-after-change"),
    ),
    Case(
        "unschedulable with nothing changed: the cluster is out of capacity",
        (unschedulable(WEB, 3, at=-1),),
        (),
        Classification.INFRASTRUCTURE,
        ("classification.infrastructure", "infra.unschedulable-capacity"),
    ),
    Case(
        "quota exhausted right after a scale-up deploy: mixed",
        (quota_exceeded("compute", WEB, at=-1),),
        (deploy(WEB, 4, at=-3, stalled=True),),
        Classification.MIXED,
        ("classification.mixed", "mixed.quota-after-change"),
    ),
    Case(
        "quota exhausted with no workload named, after a rollout in its namespace: mixed",
        (quota_exceeded("compute", None, at=-1),),
        (deploy(WEB, 4, at=-3, stalled=True),),
        Classification.MIXED,
        ("classification.mixed", "mixed.quota-after-change"),
    ),
    Case(
        "a full quota and an old, healthy rollout in the namespace: infrastructure",
        (quota_exceeded("compute", None, at=None),),
        (deploy(API, 9, at=-300),),
        Classification.INFRASTRUCTURE,
        ("classification.infrastructure", "infra.quota-exceeded"),
    ),
    Case(
        "NotReady node and replicas unavailable after a recent deploy: infrastructure",
        (node_not_ready("worker-2", at=-2), unavailable(WEB, at=-1)),
        (deploy(WEB, 1, at=-10, previous=0),),
        Classification.INFRASTRUCTURE,
        ("classification.infrastructure", "infra.node-not-ready", "infra.unavailable-nodes"),
    ),
    Case(
        "NotReady node and pods of exactly the new revision not Ready: mixed",
        (node_not_ready("worker-2", at=-2), not_ready(WEB, 4, at=-1)),
        (deploy(WEB, 4, at=-3),),
        Classification.MIXED,
        (
            "classification.mixed",
            "infra.node-not-ready",
            "mixed.unavailable-nodes-and-change",
        ),
    ),
    Case(
        "quota exhausted and nothing consumed it: infrastructure",
        (quota_exceeded("compute", None, at=-1),),
        (),
        Classification.INFRASTRUCTURE,
        ("classification.infrastructure", "infra.quota-exceeded"),
    ),
    Case(
        "three unrelated workloads failing at once with no change: widespread",
        (crash_loop(WEB, 3), crash_loop(API, 7), not_ready(CART, 2)),
        (),
        Classification.INFRASTRUCTURE,
        ("classification.infrastructure", "infra.widespread"),
    ),
    Case(
        "two unrelated workloads failing are not yet widespread",
        (crash_loop(WEB, 3), crash_loop(API, 7)),
        (),
        Classification.UNKNOWN,
        ("classification.unknown", "unexplained.crash-loop", "unexplained.crash-loop"),
    ),
    Case(
        "three workloads failing after one shared ConfigMap change: software, not widespread",
        (crash_loop(WEB, 3), crash_loop(API, 7), not_ready(CART, 2)),
        (config_change(configmap("shared-env"), at=-5, consumers=[WEB, API, CART]),),
        Classification.SOFTWARE,
        (
            "classification.software",
            "software.consumed-config-changed",
            "software.consumed-config-changed",
            "software.consumed-config-changed",
        ),
    ),
    Case(
        "Service without endpoints whose backend just had a bad deploy: software",
        (no_endpoints("web", WEB, at=-1), crash_loop(WEB, 4, at=-1)),
        (deploy(WEB, 4, at=-3),),
        Classification.SOFTWARE,
        (
            "classification.software",
            "software.new-revision-unhealthy",
            "software.endpoints-after-change",
        ),
    ),
    Case(
        "Service without endpoints whose backend did not change: a dependency is down",
        (no_endpoints("postgres", deployment("postgres"), at=-1),),
        (),
        Classification.INFRASTRUCTURE,
        ("classification.infrastructure", "dependency.no-ready-endpoints"),
    ),
    Case(
        "bad deploy AND a NotReady node: mixed",
        (crash_loop(WEB, 4, at=-1), node_not_ready("worker-2")),
        (deploy(WEB, 4, at=-3),),
        Classification.MIXED,
        ("classification.mixed", "software.new-revision-unhealthy", "infra.node-not-ready"),
    ),
    Case(
        "node memory pressure alone: infrastructure",
        (node_pressure("worker-1"),),
        (),
        Classification.INFRASTRUCTURE,
        ("classification.infrastructure", "infra.node-pressure"),
    ),
    Case(
        "pods failing after a node change that hosts them: infrastructure",
        (crash_loop(SEARCH, 9, at=-1),),
        (node_change("worker-4", at=-6, affects=[SEARCH]),),
        Classification.INFRASTRUCTURE,
        ("classification.infrastructure", "infra.change"),
    ),
    Case(
        "deploy that began AFTER the incident start explains nothing",
        (crash_loop(WEB, 4, at=3),),
        (deploy(WEB, 4, at=2, started=1),),
        Classification.UNKNOWN,
        ("classification.unknown", "unexplained.crash-loop"),
    ),
    Case(
        "rollout that began before the start and completed after it counts",
        (crash_loop(WEB, 4, at=1),),
        (deploy(WEB, 4, at=3, started=-2),),
        Classification.SOFTWARE,
        ("classification.software", "software.new-revision-unhealthy"),
    ),
    Case(
        "stalled rollout and crash loops of the same revision: one reason for the workload",
        (rollout_stalled(WEB, 4, at=2), crash_loop(WEB, 4, at=1)),
        (deploy(WEB, 4, at=-3, started=-3, stalled=True),),
        Classification.SOFTWARE,
        ("classification.software", "software.new-revision-unhealthy"),
    ),
    Case(
        "change older than the lookback window explains nothing",
        (crash_loop(WEB, 4, at=-1),),
        (deploy(WEB, 4, at=-26 * 60),),
        Classification.UNKNOWN,
        ("classification.unknown", "unexplained.crash-loop"),
    ),
    Case(
        "no ill health in scope at all",
        (),
        (deploy(WEB, 4, at=-3),),
        Classification.UNKNOWN,
        ("classification.unknown",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_classification_and_reason_codes(case: Case) -> None:
    """Given symptoms and changes, when classified, then the class and reason codes are exact."""
    triage = classify(case.signals, case.changes, incident())
    assert triage.classification is case.classification
    assert tuple(r.code for r in triage.reasons) == case.codes


def test_findings_come_in_the_seed_order_and_say_what_is_clear() -> None:
    """Given only a bad deploy, then four findings in BLOCK_ORDER; clear blocks say so."""
    triage = classify((crash_loop(WEB, 4),), (deploy(WEB, 4, at=-3),), incident())
    assert tuple(f.block for f in triage.findings) == BLOCK_ORDER
    by_block = {f.block: f for f in triage.findings}
    assert by_block[Block.RESOURCES].hit
    assert not by_block[Block.INFRASTRUCTURE].hit
    assert by_block[Block.INFRASTRUCTURE].summary == (
        "nodes Ready, no pressure, no widespread failure seen"
    )
    assert not by_block[Block.DEPENDENCIES].hit


def test_crash_loop_caused_by_a_deploy_also_lights_the_application_block() -> None:
    """Given a crash loop (resources block) on a new revision, then the application
    finding lists it and names the change."""
    signal = crash_loop(WEB, 4)
    triage = classify((signal,), (deploy(WEB, 4, at=-3),), incident())
    application = triage.findings[BLOCK_ORDER.index(Block.APPLICATION)]
    assert application.signals == (signal,)
    assert application.summary == "unhealthy after deployment/web revision 4"


def test_widespread_is_reported_once_in_the_infrastructure_block() -> None:
    """Given four unrelated failing workloads, then one synthetic widespread signal
    in the infrastructure finding, counting them."""
    signals = (crash_loop(WEB, 3), crash_loop(API, 7), not_ready(CART, 2), crash_loop(SEARCH, 1))
    triage = classify(signals, (), incident())
    infra = triage.findings[BLOCK_ORDER.index(Block.INFRASTRUCTURE)]
    assert [s.kind for s in infra.signals] == [SignalKind.WIDESPREAD]
    assert infra.signals[0].count == 4
    assert infra.signals[0].target.kind == "Namespace"
    assert triage.reasons[1].message == (
        "4 unrelated workloads hurt at once with no change to explain them"
        " (deployment/web, deployment/api, deployment/cart, deployment/search)"
    )


def test_evidence_messages_are_short_sentences_with_counts_and_times() -> None:
    """Given three crash-looping pods on revision 4 rolled out 3m before the start,
    then the evidence names the workload, the count, the revision and the time."""
    triage = classify((crash_loop(WEB, 4, pods=3),), (deploy(WEB, 4, at=-3),), incident())
    assert triage.reasons[1].message == (
        "deployment/web: 3 pods crash-looping on revision 4,"
        " rolled out 3m before the incident start"
    )
    assert triage.reasons[0].message == (
        "software: 1 symptom began after deployment/web revision 4; no infrastructure fault seen"
    )


def test_classify_uses_no_clock_but_the_incident() -> None:
    """Given the same facts and incident, then the same answer (pure)."""
    args = ((crash_loop(WEB, 4),), (deploy(WEB, 4, at=-3),), incident(start=START))
    assert classify(*args) == classify(*args)


def test_a_stalled_rollout_is_dated_by_its_start() -> None:
    """Given a rollout that never completed, then the evidence says when it started."""
    triage = classify(
        (rollout_stalled(WEB, 4, at=2), crash_loop(WEB, 4, at=1)),
        (deploy(WEB, 4, at=-3, started=-3, stalled=True),),
        incident(),
    )
    assert triage.reasons[1].message == (
        "deployment/web: rollout stalled, 3 pods crash-looping on revision 4,"
        " whose rollout started 3m before the incident start"
    )
