"""A ConfigMap's prior version read from git at a commit (``--from-git REF:PATH``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from controller.actions.config import prior_from_manifest_text
from controller.errors import UserInputError
from controller.sources.git import read_file_at

GOOD = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-config}\ndata: {POOL_SIZE: '20'}\n"
BAD = GOOD.replace("'20'", "'1'")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose deploy/web-config.yaml went from GOOD to BAD in its last commit."""

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )

    git("init", "-q", "-b", "main")
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "web-config.yaml").write_text(GOOD)
    git("add", ".")
    git("commit", "-q", "-m", "good config")
    (tmp_path / "deploy" / "web-config.yaml").write_text(BAD)
    git("commit", "-q", "-am", "bad config")
    return tmp_path


def test_the_file_is_read_as_it_was_at_the_commit(repo: Path) -> None:
    text = read_file_at(str(repo), "HEAD~1", "deploy/web-config.yaml")
    prior = prior_from_manifest_text(text, "web-config", "git HEAD~1:deploy/web-config.yaml")
    assert prior.data == {"POOL_SIZE": "20"}
    assert read_file_at(str(repo), "HEAD", "deploy/web-config.yaml") == BAD


@pytest.mark.parametrize(
    ("ref", "path", "message"),
    [
        (
            "nope",
            "deploy/web-config.yaml",
            "--from-git nope:deploy/web-config.yaml: no commit 'nope'",
        ),
        (
            "HEAD~1",
            "deploy/missing.yaml",
            "--from-git HEAD~1:deploy/missing.yaml: no such file at ",
        ),
    ],
)
def test_an_unknown_ref_or_file_is_one_clear_error(
    repo: Path, ref: str, path: str, message: str
) -> None:
    with pytest.raises(UserInputError) as err:
        read_file_at(str(repo), ref, path)
    assert str(err.value).startswith(message)


def test_a_directory_that_is_not_a_repository_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="not a git repository"):
        read_file_at(str(tmp_path), "HEAD", "x.yaml")
