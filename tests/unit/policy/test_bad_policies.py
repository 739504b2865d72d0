"""Every bad policy file is refused with exactly the problem lines it documents.

Each file under tests/data/policies/bad/ ends with ``# error: LINE:COL path: message``
comments: the complete, ordered list of problems the loader must report for it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.errors import ExitCode, PolicyError
from controller.policy import load_policy

BAD = Path(__file__).resolve().parents[2] / "data" / "policies" / "bad"
BAD_FILES = sorted(BAD.glob("*.yaml"))


def expected_problems(path: Path) -> list[str]:
    prefix = "# error: "
    return [
        f"{path}:{line.removeprefix(prefix)}"
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith(prefix)
    ]


def test_there_are_at_least_twenty_bad_files_each_with_its_expected_lines() -> None:
    assert len(BAD_FILES) >= 20
    for path in BAD_FILES:
        assert expected_problems(path), f"{path.name} documents no expected error line"


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_bad_policy_is_refused_with_its_exact_problem_lines(path: Path) -> None:
    # Given a bad policy file, When it is loaded (merged onto the shipped defaults)
    with pytest.raises(PolicyError) as caught:
        load_policy([path])
    # Then every problem is reported, in file order, exactly as documented, exit code 2
    assert caught.value.problems == expected_problems(path)
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    assert str(caught.value) == "\n".join(expected_problems(path))


def test_problems_of_several_files_are_all_reported_in_command_line_order() -> None:
    first, second = BAD / "weights-do-not-sum.yaml", BAD / "unknown-key-typo.yaml"
    with pytest.raises(PolicyError) as caught:
        load_policy([second, first])
    assert caught.value.problems == expected_problems(second) + expected_problems(first)


def test_an_unreadable_file_is_one_problem_and_the_others_are_still_checked(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nope.yaml"
    bad = BAD / "duration-zero.yaml"
    with pytest.raises(PolicyError) as caught:
        load_policy([missing, bad, tmp_path])
    assert caught.value.problems == [
        f"{missing}: no such file",
        f"{tmp_path}: is a directory, not a policy file",
        *expected_problems(bad),
    ]
