"""Label selectors read and match like `kubectl get -l`."""

from __future__ import annotations

import pytest

from controller.policy.selectors import parse_labels, parse_selector, selector_from_labels

WEB = {"app": "web", "tier": "frontend", "team": "shop"}


@pytest.mark.parametrize(
    ("text", "labels", "matches"),
    [
        ("app=web", WEB, True),
        ("app==web", WEB, True),
        ("app=api", WEB, False),
        ("app!=api", WEB, True),
        ("canary!=true", WEB, True),  # != also matches objects without the key
        ("tier in (frontend, backend)", WEB, True),
        ("tier in (backend)", WEB, False),
        ("tier notin (backend)", WEB, True),
        ("canary notin (true)", WEB, True),
        ("team", WEB, True),
        ("!team", WEB, False),
        ("!canary", WEB, True),
        ("app=web,tier in (frontend),!canary", WEB, True),
        ("app=web,tier in (backend)", WEB, False),
        ("example.com/owner=shop", {"example.com/owner": "shop"}, True),
        ("app=", {"app": ""}, True),
    ],
)
def test_selector_matching_follows_kubernetes(
    text: str, labels: dict[str, str], matches: bool
) -> None:
    assert parse_selector(text).matches(labels) is matches


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the selector is empty"),
        ("app=web,,tier=x", "empty requirement (two commas in a row, or a trailing comma)"),
        (
            "tier in (web",
            "'tier in (web' is not a selector requirement: use key, !key, "
            "key=value, key!=value, key in (a,b) or key notin (a,b)",
        ),
        ("tier in ()", "'tier in ()': the set after 'in' is empty"),
        ("-app=web", "'-app' is not a valid label key"),
        (
            "app=we b",
            "'app=we b' is not a selector requirement: use key, !key, key=value, "
            "key!=value, key in (a,b) or key notin (a,b)",
        ),
        ("app=-web", "'-web' is not a valid value for label 'app'"),
    ],
)
def test_bad_selectors_say_which_part_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_selector(text)
    assert str(caught.value) == message


def test_selectors_print_in_canonical_form() -> None:
    assert str(parse_selector("app==web, tier in (a,b),!x")) == "app=web,tier in (a,b),!x"
    assert str(selector_from_labels([("team", "payments")])) == "team=payments"


def test_workload_labels_parse_from_k_equals_v() -> None:
    assert parse_labels("app=web, team=shop") == {"app": "web", "team": "shop"}
    assert parse_labels("") == {}
    with pytest.raises(ValueError, match="'app' is not a label: write key=value"):
        parse_labels("app")
