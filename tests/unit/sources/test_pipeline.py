"""The assess pipeline over a view: scope, focus, selectors, the JSON document."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.assess import (
    SCHEMA_VERSION,
    assess,
    assessment_to_json,
    make_incident,
    resolve_focus,
    scope_view,
)
from controller.errors import UserInputError
from controller.model import ObjectRef, Scope
from controller.policy.scoring import ScoringSettings
from controller.view import ClusterView

from .builders import captured_all

CAPTURED_AT = datetime(2026, 12, 3, 10, 20, tzinfo=UTC)


def shop_and_payments() -> ClusterView:
    view = ClusterView(captured_at=CAPTURED_AT)
    view.extend(captured_all("bad-image-rollout") + captured_all("configmap-change"))
    return view


def test_scoping_keeps_the_namespace_and_cluster_objects() -> None:
    view = shop_and_payments()

    scoped = scope_view(view, Scope(namespaces=("payments",)))

    namespaces = {o["metadata"].get("namespace", "") for o in scoped.all_objects()}
    assert namespaces == {"payments", ""}  # "" is the Node
    assert scope_view(view, Scope(all_namespaces=True)) is view


SELECTORS = [
    pytest.param("app=web", ["web"], id="equality"),
    pytest.param("app!=web", ["api", "cart", "ledger"], id="inequality"),
    pytest.param("app in (api, ledger)", ["api", "ledger"], id="set"),
    pytest.param("app notin (api,ledger,cart)", ["web"], id="not in set"),
    pytest.param("app", ["api", "cart", "ledger", "web"], id="exists"),
    pytest.param("!app", [], id="does not exist"),
    pytest.param("app=web,tier=front", [], id="all terms must hold"),
]


@pytest.mark.parametrize(("selector", "names"), SELECTORS)
def test_a_label_selector_names_the_alerting_workloads(selector: str, names: list[str]) -> None:
    focus = resolve_focus(shop_and_payments(), Scope(selector=selector))

    assert sorted(r.name for r in focus) == names


def test_workload_names_are_found_in_the_scope_namespaces() -> None:
    view = shop_and_payments()
    wanted = (ObjectRef("deploy", "", "api"),)

    assert resolve_focus(view, Scope(namespaces=("payments",), workloads=wanted)) == (
        ObjectRef("Deployment", "payments", "api"),
    )
    with pytest.raises(UserInputError, match=r"^no deployment/api in namespace shop$"):
        resolve_focus(view, Scope(namespaces=("shop",), workloads=wanted))


def test_the_json_document_has_every_documented_top_level_field() -> None:
    view = shop_and_payments()
    scope = Scope(namespaces=("shop",))
    incident = make_incident(
        CAPTURED_AT - timedelta(minutes=12), CAPTURED_AT, timedelta(hours=24), scope
    )

    doc = assessment_to_json(assess(view, incident, ScoringSettings()))

    assert list(doc) == [
        "schemaVersion", "kind", "source", "scope", "incident", "focus", "classification",
        "triage", "suspects", "recommendation", "changes", "signals", "unavailable", "ignored",
        "apiRequests", "notes",
    ]  # fmt: skip
    assert doc["schemaVersion"] == SCHEMA_VERSION == "1.0"
    assert [b["block"] for b in doc["triage"]["blocks"]] == [
        "resources",
        "infrastructure",
        "dependencies",
        "application",
    ]
    assert list(doc["recommendation"]) == [
        "action", "target", "summary", "toRevision", "toVersion", "flag", "safety",
        "safetyScore", "timeToRestore", "reasons", "planHash", "preview",
    ]  # fmt: skip
    assert list(doc["suspects"][0]) == [
        "rank", "kind", "target", "flag", "at", "score", "summary", "revision",
        "previousRevision", "before", "after", "reasons", "evidence",
    ]  # fmt: skip
    # Only shop is assessed: nothing of payments shows.
    assert all(c["target"]["namespace"] in ("shop", "") for c in doc["changes"])


def test_an_incident_start_after_the_evaluation_time_is_refused() -> None:
    with pytest.raises(UserInputError, match="is after the evaluation time"):
        make_incident(CAPTURED_AT + timedelta(seconds=1), CAPTURED_AT, timedelta(hours=1), Scope())
