"""The shipped defaults: one file, packaged byte for byte, equal to the code's defaults.

policies/default.yaml is the reviewed, documented source; controller/data/
default-policy.yaml is the copy the wheel ships (read with importlib.resources).
After editing the first: cp policies/default.yaml controller/data/default-policy.yaml
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.policy import (
    Confirmation,
    ScoringSettings,
    default_policy,
    default_policy_text,
    load_policy,
)

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = [
    ROOT / "policies" / "default.yaml",
    *sorted((ROOT / "policies" / "examples").glob("*.yaml")),
]


def test_the_packaged_copy_is_byte_identical_to_policies_default_yaml() -> None:
    source = (ROOT / "policies" / "default.yaml").read_text(encoding="utf-8")
    assert default_policy_text() == source, (
        "run: cp policies/default.yaml controller/data/default-policy.yaml"
    )


def test_the_default_scoring_equals_the_code_defaults_assess_uses() -> None:
    assert default_policy().scoring == ScoringSettings()


def test_the_defaults_guard_every_namespace_conservatively() -> None:
    (scope,) = default_policy().scopes
    assert scope.match.namespaces == ("*",)
    assert scope.rules.confirmation is Confirmation.TYPED_NAME
    assert scope.rules.unattended is not None and not scope.rules.unattended.allowed


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_policy_loads(path: Path) -> None:
    policy = load_policy([path])
    assert policy.scopes


def test_at_least_production_and_staging_examples_ship() -> None:
    names = {p.name for p in SHIPPED}
    assert {"production.yaml", "staging.yaml"} <= names
