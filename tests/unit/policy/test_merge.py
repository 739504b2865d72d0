"""Several files merge in a documented order: defaults < files in command-line order.

Maps merge key by key (later wins); scopes and freeze windows merge by name;
every other list is replaced whole.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.errors import PolicyError
from controller.model import ActionKind, ChangeKind, Safety
from controller.policy import (
    DEFAULT_POLICY_NAME,
    Confirmation,
    GitOpsMode,
    ScoringSettings,
    ScoringWeights,
    default_policy,
)

from .helpers import policy_from


def test_no_files_means_the_shipped_defaults() -> None:
    policy = policy_from()
    assert policy == default_policy()
    assert policy.files == (DEFAULT_POLICY_NAME,)
    assert [s.name for s in policy.scopes] == ["default"]


def test_a_later_file_wins_for_plain_values_and_maps_merge_key_by_key() -> None:
    policy = policy_from(
        """\
        version: 1
        scoring:
          lookback: 6h
          priors: {deploy: 0.5}
        """,
        """\
        version: 1
        scoring:
          lookback: 2h
          weights: {closeness: 0.45, prior: 0.05}
        """,
    )
    assert policy.files == (DEFAULT_POLICY_NAME, "a.yaml", "b.yaml")
    assert policy.scoring.lookback == timedelta(hours=2)
    assert policy.scoring.known_good_after == ScoringSettings().known_good_after
    # weights: two changed, two kept from the defaults; the sum is checked after merging
    assert policy.scoring.weights == ScoringWeights(
        closeness=0.45, scope=0.25, health=0.25, prior=0.05
    )
    # priors: one changed, the other kinds kept
    assert policy.scoring.priors[ChangeKind.DEPLOY] == 0.5
    assert policy.scoring.priors[ChangeKind.CONFIG] == 0.8


def test_the_weights_sum_is_checked_on_the_merged_result_and_reported_in_the_last_file() -> None:
    with pytest.raises(PolicyError) as caught:
        policy_from(
            "version: 1\nscoring:\n  weights: {closeness: 0.45, prior: 0.05}\n",
            "version: 1\nscoring:\n  weights: {prior: 0.15}\n",
        )
    assert caught.value.problems == [
        "b.yaml:3:12 scoring.weights: the weights must add up to 1; they add up to 1.1"
    ]


def test_lists_other_than_named_items_are_replaced_whole() -> None:
    policy = policy_from(
        'version: 1\nscoring:\n  migrationPaths: ["schema/**"]\n',
    )
    assert policy.scoring.migration_paths == ("schema/**",)


def test_a_scope_with_an_existing_name_changes_only_the_fields_it_writes() -> None:
    # Given the shipped catch-all `default`, When a file redefines a few of its rules by name
    policy = policy_from(
        """\
        version: 1
        scopes:
          - name: default
            rules:
              confirmation: none
              actions: [disable-flag]
              unattended: {allowed: true, verdicts: [safe, risky]}
        """
    )
    # Then it is still one scope, with its match and untouched rules from the defaults
    (scope,) = policy.scopes
    assert scope.match.namespaces == ("*",)
    assert scope.rules.confirmation is Confirmation.NONE
    assert scope.rules.actions == (ActionKind.DISABLE_FLAG,)  # lists replace
    assert scope.rules.unattended is not None
    assert scope.rules.unattended.verdicts == (Safety.SAFE, Safety.RISKY)
    assert scope.rules.gitops is GitOpsMode.REFUSE  # kept
    assert scope.sources == (f"{DEFAULT_POLICY_NAME}:46", "a.yaml:3")


def test_new_scopes_are_appended_in_file_order() -> None:
    scope = 'version: 1\nscopes:\n  - {{name: {0}, match: {{namespaces: ["*"]}}, rules: {{}}}}\n'
    policy = policy_from(scope.format("first"), scope.format("second"), scope.format("first"))
    assert [s.name for s in policy.scopes] == ["default", "first", "second"]
    assert policy.scope("first") is not None
    assert policy.scope("first").sources == ("a.yaml:3", "c.yaml:3")  # type: ignore[union-attr]


def test_freeze_windows_merge_by_name_inside_a_merged_scope() -> None:
    base = """\
        version: 1
        scopes:
          - name: prod
            match: {namespaces: ["prod-*"]}
            rules:
              freeze:
                - {name: xmas, start: "2026-12-24T00:00:00Z", end: "2026-12-27T00:00:00Z"}
                - {name: nye, start: "2026-12-31T00:00:00Z", end: "2027-01-01T12:00:00Z"}
        """
    overlay = """\
        version: 1
        scopes:
          - name: prod
            rules:
              freeze:
                - name: xmas
                  exceptions: {actions: [disable-flag]}
                - {name: easter, start: "2027-03-26T00:00:00Z", end: "2027-03-30T00:00:00Z"}
        """
    policy = policy_from(base, overlay)
    prod = policy.scope("prod")
    assert prod is not None
    windows = {w.name: w for w in prod.rules.freeze}
    assert list(windows) == ["xmas", "nye", "easter"]
    assert windows["xmas"].exceptions.actions == (ActionKind.DISABLE_FLAG,)
    assert windows["xmas"].start is not None  # kept from the first file


def test_a_problem_in_a_merged_value_is_reported_where_it_was_written() -> None:
    with pytest.raises(PolicyError) as caught:
        policy_from(
            'version: 1\nscopes:\n  - {name: prod, match: {namespaces: ["p-*"]}, rules: {}}\n',
            "version: 1\nscopes:\n  - name: prod\n    rules:\n      gitops: refuse-all\n",
        )
    assert caught.value.problems == [
        "b.yaml:5:15 scopes[0].rules.gitops: unknown value 'refuse-all'; did you mean 'refuse'?"
    ]


def test_an_overlay_of_an_unknown_scope_must_say_where_it_applies() -> None:
    with pytest.raises(PolicyError) as caught:
        policy_from("version: 1\nscopes:\n  - name: prdo\n    rules: {confirmation: none}\n")
    assert caught.value.problems == ["a.yaml:3:5 scopes[0].match: is required"]


def test_without_defaults_only_the_files_count() -> None:
    policy = policy_from("version: 1\n", defaults=False)
    assert policy.scopes == ()
    assert policy.scoring == ScoringSettings()
    assert policy.files == ("a.yaml",)


def test_the_rate_limit_window_is_the_longest_per_of_any_scope() -> None:
    assert default_policy().rate_limit_window == timedelta(hours=1)
    policy = policy_from(
        'version: 1\nscopes:\n  - {name: s, match: {namespaces: ["*"]}, '
        "rules: {rateLimit: {maxActions: 5, per: 1d}}}\n"
    )
    assert policy.rate_limit_window == timedelta(days=1)
    assert policy_from("version: 1\n", defaults=False).rate_limit_window == timedelta(0)
