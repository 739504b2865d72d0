"""Git: commits in the window, images built from them, migrations between revisions.

The only module that imports ``git`` (gitpython, which runs the git binary).
Given ``--git-repo PATH``:

* every commit on HEAD in the window becomes a ``commit`` change (it changes
  nothing in the cluster by itself; the workloads whose image tag names it
  are listed in ``affects``);
* an image tag that contains a commit SHA (``web:1.4.2-3f9c2ab``,
  ``web:sha-3f9c2ab``) ties a workload revision to a commit;
* for two consecutive revisions that both name commits, files changed between
  them under the policy's ``migration_paths`` (``**/migrations/**``,
  ``**/alembic/versions/**``, ``**/db/migrate/**``, ``**/V*__*.sql``) become a
  ``migration`` change: rolling back past it may meet a schema the old code
  cannot read.

Reading a repository is I/O, so this is the one source that is not a pure
function of the view; it never writes.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from controller.errors import UserInputError
from controller.model import Change, ChangeKind, ObjectRef, RevisionInfo

_HEX = re.compile(r"(?<![0-9a-f])[0-9a-f]{7,40}(?![0-9a-f])")
MAX_COMMITS = 500


@dataclass(frozen=True)
class WorkloadHistory:
    """A workload and its revisions (oldest first), as the pipeline knows them."""

    ref: ObjectRef
    revisions: tuple[RevisionInfo, ...]


def open_repo(path: str) -> Any:
    """A gitpython Repo for ``path``, or one clear error."""
    import git

    try:
        return git.Repo(Path(path), search_parent_directories=False)
    except git.NoSuchPathError:
        raise UserInputError(f"--git-repo {path}: no such directory") from None
    except git.InvalidGitRepositoryError:
        raise UserInputError(f"--git-repo {path}: not a git repository") from None
    except git.GitCommandNotFound:
        raise UserInputError("--git-repo needs the git program, which is not on PATH") from None


def read_file_at(path: str, ref: str, file_path: str) -> str:
    """The text of ``file_path`` at commit ``ref`` in the repository at ``path``.

    For ``rollback execute configmap/NAME --from-git REF:PATH``: a known prior
    version of a ConfigMap manifest.  Reads only; one clear error for an
    unknown ref, a missing file or a binary one.
    """
    import git

    repo = open_repo(path)
    try:
        commit = repo.commit(ref)
    except (git.BadName, ValueError, git.GitCommandError):
        raise UserInputError(f"--from-git {ref}:{file_path}: no commit {ref!r} in {path}") from None
    try:
        blob = commit.tree / file_path.lstrip("/")
    except KeyError:
        raise UserInputError(
            f"--from-git {ref}:{file_path}: no such file at {commit.hexsha[:12]}"
        ) from None
    try:
        return str(blob.data_stream.read().decode("utf-8"))
    except (UnicodeDecodeError, AttributeError):
        raise UserInputError(f"--from-git {ref}:{file_path}: not a text file") from None


def image_commit(repo: Any, image: str) -> str | None:
    """The full SHA of the commit an image tag names, or None."""
    tag = image.split("@", 1)[0].rpartition(":")[2] if ":" in image else ""
    if "/" in tag:
        return None
    for match in _HEX.finditer(tag.lower()):
        sha = _resolve(repo, match.group(0))
        if sha:
            return sha
    return None


def _resolve(repo: Any, candidate: str) -> str | None:
    import git

    try:
        commit = repo.commit(candidate)
    except (git.BadName, ValueError, git.GitCommandError):
        return None
    return str(commit.hexsha)


def collect_git_changes(
    path: str,
    since: datetime,
    until: datetime,
    workloads: Iterable[WorkloadHistory],
    migration_paths: Sequence[str],
) -> list[Change]:
    """Commit and migration changes from one repository.  Reads git, writes nothing."""
    import git

    repo = open_repo(path)
    name = Path(path).resolve().name
    histories = list(workloads)
    revision_commits: dict[tuple[ObjectRef, int], str] = {}
    by_commit: dict[str, list[ObjectRef]] = {}
    for history in histories:
        for info in history.revisions:
            for image in info.images:
                sha = image_commit(repo, image)
                if sha:
                    revision_commits[(history.ref, info.revision)] = sha
                    by_commit.setdefault(sha, []).append(history.ref)
                    break
    changes: list[Change] = []
    try:
        commits = list(
            repo.iter_commits(
                "HEAD", since=since.isoformat(), until=until.isoformat(), max_count=MAX_COMMITS
            )
        )
    except (git.GitCommandError, ValueError):
        commits = []  # an empty repository has no HEAD
    for commit in commits:
        at = commit.committed_datetime.astimezone(UTC)
        if not since <= at <= until:
            continue
        sha = str(commit.hexsha)
        subject = str(commit.message).strip().splitlines()[0] if commit.message else ""
        affects = tuple(sorted(set(by_commit.get(sha, ()))))
        changes.append(
            Change(
                kind=ChangeKind.COMMIT,
                target=ObjectRef("Commit", "", sha[:7]),
                at=at,
                summary=f"commit {sha[:7]} in {name}: {subject[:60]}",
                cause=str(commit.author.name) if commit.author else None,
                after=sha,
                affects=affects,
                evidence=(
                    f"{name}@{sha[:7]} by {commit.author.name if commit.author else 'unknown'}"
                    f" at {at.strftime('%Y-%m-%dT%H:%M:%SZ')}",
                    *(f"deployed as the image of {ref.short}" for ref in affects),
                ),
            )
        )
    for history in histories:
        changes.extend(_migrations(repo, name, history, revision_commits, migration_paths))
    return changes


def _migrations(
    repo: Any,
    name: str,
    history: WorkloadHistory,
    revision_commits: dict[tuple[ObjectRef, int], str],
    patterns: Sequence[str],
) -> list[Change]:
    import git

    out = []
    known = [
        (info, revision_commits[(history.ref, info.revision)])
        for info in history.revisions
        if (history.ref, info.revision) in revision_commits
    ]
    for (old, old_sha), (new, new_sha) in itertools.pairwise(known):
        if old_sha == new_sha:
            continue
        try:
            changed = repo.git.diff("--name-only", old_sha, new_sha).splitlines()
        except git.GitCommandError:
            continue
        files = [f for f in changed if any(fnmatch("/" + f, p) for p in patterns)]
        if not files:
            continue
        at = new.active_since or new.created_at
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        out.append(
            Change(
                kind=ChangeKind.MIGRATION,
                target=history.ref,
                at=at,
                summary=(
                    f"{history.ref.short} revision {new.revision} ships schema migrations "
                    f"({len(files)} file{'s' if len(files) != 1 else ''})"
                ),
                before=f"revision {old.revision} at {old_sha[:7]}",
                after=f"revision {new.revision} at {new_sha[:7]}",
                revision=new.revision,
                previous_revision=old.revision,
                affects=(history.ref,),
                evidence=(f"{name} {old_sha[:7]}..{new_sha[:7]} changed {shown}",),
            )
        )
    return out
