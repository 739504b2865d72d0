"""Git: commits in the window, images that name commits, migrations between two revisions.

Each test builds a real repository in a temporary directory with the git
program (what gitpython runs underneath), with commit dates set explicitly.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.errors import UserInputError
from controller.model import ChangeKind, ObjectRef, RevisionInfo
from controller.sources.git import (
    WorkloadHistory,
    collect_git_changes,
    image_commit,
    open_repo,
)

MIGRATION_PATHS = ("**/migrations/**", "**/alembic/versions/**", "**/db/migrate/**", "**/V*__*.sql")
WEB = ObjectRef("Deployment", "shop", "web")


def git(repo: Path, *args: str, when: datetime | None = None) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="Ada", GIT_AUTHOR_EMAIL="ada@example.com",
               GIT_COMMITTER_NAME="Ada", GIT_COMMITTER_EMAIL="ada@example.com")  # fmt: skip
    if when is not None:
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S+0000")
        env.update(GIT_AUTHOR_DATE=stamp, GIT_COMMITTER_DATE=stamp)
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str, when: datetime) -> str:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        git(repo, "add", name)
    git(repo, "commit", "-q", "-m", message, when=when)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "shop"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    return path


START = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def revision(number: int, image: str, became_current: datetime) -> RevisionInfo:
    return RevisionInfo(
        revision=number,
        source=ObjectRef("ReplicaSet", "shop", f"web-{number}"),
        created_at=became_current,
        images=(image,),
        active_since=became_current,
    )


def test_commits_in_the_window_and_the_migration_between_two_deployed_revisions(
    repo: Path,
) -> None:
    old = commit(repo, {"app.py": "v1"}, "web 1.0", START - timedelta(days=3))
    new_files = {"app.py": "v2", "db/migrations/0042_add_column.sql": "ALTER TABLE ..."}
    new = commit(repo, new_files, "orders: add discount column", START - timedelta(minutes=40))
    history = WorkloadHistory(
        WEB,
        (
            revision(1, f"registry.example/shop/web:1.0-{old[:7]}", START - timedelta(days=2)),
            revision(2, f"registry.example/shop/web:sha-{new[:10]}", START - timedelta(minutes=20)),
        ),
    )

    changes = collect_git_changes(
        str(repo), START - timedelta(days=1), START, [history], MIGRATION_PATHS
    )

    commits = [c for c in changes if c.kind is ChangeKind.COMMIT]
    migrations = [c for c in changes if c.kind is ChangeKind.MIGRATION]
    assert [(c.target, c.at, c.cause, c.affects) for c in commits] == [
        (ObjectRef("Commit", "", new[:7]), START - timedelta(minutes=40), "Ada", (WEB,))
    ]
    assert commits[0].summary == f"commit {new[:7]} in shop: orders: add discount column"
    (migration,) = migrations
    assert (migration.target, migration.revision, migration.previous_revision, migration.at) == (
        WEB,
        2,
        1,
        START - timedelta(minutes=20),
    )
    assert migration.evidence == (
        f"shop {old[:7]}..{new[:7]} changed db/migrations/0042_add_column.sql",
    )


def test_no_migration_when_only_code_changed(repo: Path) -> None:
    old = commit(
        repo, {"app.py": "v1", "db/migrations/0001.sql": "CREATE"}, "1.0", START - timedelta(days=3)
    )
    new = commit(repo, {"app.py": "v2"}, "fix typo", START - timedelta(hours=2))
    history = WorkloadHistory(
        WEB,
        (
            revision(1, f"web:{old[:8]}", START - timedelta(days=2)),
            revision(2, f"web:{new[:8]}", START - timedelta(hours=1)),
        ),
    )

    changes = collect_git_changes(
        str(repo), START - timedelta(days=1), START, [history], MIGRATION_PATHS
    )

    assert [c.kind for c in changes] == [ChangeKind.COMMIT]


@pytest.mark.parametrize(
    ("tag", "resolves"),
    [
        pytest.param("web:{sha7}", True, id="bare short SHA"),
        pytest.param("web:1.4.2-{sha7}", True, id="version and SHA"),
        pytest.param("registry:5000/web:sha-{sha10}", True, id="registry port, sha- prefix"),
        pytest.param("web:1.4.2", False, id="no SHA"),
        pytest.param("web:deadbee", False, id="hex that is no commit here"),
    ],
)
def test_image_tags_that_name_commits(repo: Path, tag: str, resolves: bool) -> None:
    sha = commit(repo, {"a": "1"}, "one", START)

    found = image_commit(open_repo(str(repo)), tag.format(sha7=sha[:7], sha10=sha[:10]))

    assert found == (sha if resolves else None)


def test_a_path_that_is_not_a_repository_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"^--git-repo .*: not a git repository$"):
        open_repo(str(tmp_path))
    with pytest.raises(UserInputError, match=r"^--git-repo .*/nope: no such directory$"):
        open_repo(str(tmp_path / "nope"))
