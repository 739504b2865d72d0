"""The controller's policy follows its file (a mounted ConfigMap changes in place).

A change that does not validate never replaces the policy in force: the last good
one stays, and the log says why, naming the file and line.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from controller.errors import PolicyError
from controller.runtime.service import PolicyFiles

STAGING = """\
version: 1
scopes:
  - name: default
    rules:
      unattended: {allowed: true}
"""


def test_a_valid_change_is_picked_up_and_a_broken_one_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(STAGING)
    files = PolicyFiles([str(path)], logging.getLogger("test.policy"))
    first = files.current()
    assert first.scope("default") is not None
    assert first.scope("default").rules.unattended.allowed  # type: ignore[union-attr]

    path.write_text(STAGING.replace("allowed: true", "allowed: false"))
    with caplog.at_level(logging.INFO, logger="test.policy"):
        second = files.current()
    assert not second.scope("default").rules.unattended.allowed  # type: ignore[union-attr]
    assert f"policy reloaded from {path}" in caplog.messages

    path.write_text(STAGING.replace("allowed: true", "allowed: yes"))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="test.policy"):
        third = files.current()
        again = files.current()
    assert third is second and again is second
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # said once, not on every pass
    assert errors[0].startswith("policy change ignored, the last good policy stays in force: ")
    assert f"{path}:5:" in errors[0]


def test_a_policy_that_does_not_load_at_start_stops_the_controller(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the policy"):
        PolicyFiles([str(tmp_path / "missing.yaml")], logging.getLogger("test.policy"))
