"""YAML 1.1 surprises are refused, not guessed; what the user wrote is what we read."""

from __future__ import annotations

from datetime import time

import pytest

from controller.errors import PolicyError
from controller.policy import Confirmation

from .helpers import policy_from

SCOPE = """\
version: 1
scopes:
  - name: s
    match:
      namespaces: ["*"]
    rules:
      {rule}
"""


def problems(rule: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        policy_from(SCOPE.format(rule=rule), defaults=False)
    return caught.value.problems


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "y", "n", "Yes", "NO", "ON", "Off"])
def test_yaml11_boolean_words_are_refused_where_a_boolean_is_expected(word: str) -> None:
    assert problems(f"riskyRequiresConfirmation: {word}") == [
        f"a.yaml:7:34 scopes[0].rules.riskyRequiresConfirmation: {word!r} is ambiguous "
        "(YAML 1.1 reads it as a boolean); write true or false"
    ]


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "y", "n", "true", "false"])
def test_yaml11_boolean_words_are_refused_where_text_is_expected(word: str) -> None:
    assert problems(f"notify: [{word}]") == [
        f"a.yaml:7:16 scopes[0].rules.notify[0]: {word!r} reads as a boolean in YAML 1.1; "
        f'write "{word}" in quotes if you mean the text'
    ]


def test_quoted_words_are_text_and_plain_true_false_are_booleans() -> None:
    policy = policy_from(
        """\
        version: 1
        scopes:
          - name: s
            match:
              namespaces: ["*"]
              matchLabels: {canary: "on", legacy: 'no'}
            rules:
              riskyRequiresConfirmation: false
              breakGlass: {allowed: true, requireReason: false}
        """,
        defaults=False,
    )
    scope = policy.scopes[0]
    assert str(scope.match.selector) == "canary=on,legacy=no"
    assert scope.rules.risky_requires_confirmation is False
    assert scope.rules.break_glass is not None
    assert scope.rules.break_glass.allowed is True
    assert scope.rules.break_glass.require_reason is False


def test_none_is_the_word_none_not_null() -> None:
    policy = policy_from(SCOPE.format(rule="confirmation: none"), defaults=False)
    assert policy.scopes[0].rules.confirmation is Confirmation.NONE


def test_an_unquoted_clock_time_is_a_time_of_day_not_sexagesimal() -> None:
    # YAML 1.1 reads 18:00 as the integer 1080; we read the text.
    policy = policy_from(
        SCOPE.format(
            rule="freeze: [{name: evening, weekly: "
            "{days: [fri], from: 18:00, to: 23:30, timezone: UTC}}]"
        ),
        defaults=False,
    )
    weekly = policy.scopes[0].rules.freeze[0].weekly
    assert weekly is not None
    assert (weekly.start, weekly.end) == (time(18, 0), time(23, 30))


@pytest.mark.parametrize(
    ("written", "message"),
    [
        (
            "010",
            "must be a whole number, got '010' (a leading zero makes YAML 1.1 read octal; drop it)",
        ),
        ("0x10", "must be a whole number, got '0x10'"),
        ("1_000", "must be a whole number, got '1_000'"),
        ('"3"', "must be a whole number, got the text '3'"),
        ("3.0", "must be a whole number, got '3.0'"),
        ("1:30", "must be a whole number, got '1:30'"),
    ],
)
def test_numbers_are_plain_decimals(written: str, message: str) -> None:
    assert problems(f"rateLimit: {{maxActions: {written}}}") == [
        f"a.yaml:7:31 scopes[0].rules.rateLimit.maxActions: {message}"
    ]
