"""Snapshot files: the cluster as ``kubectl get KINDS -A -o yaml`` prints it.

A snapshot lets an engineer replay an assessment offline, attach it to a bug
report or a post-mortem, and lets tests exercise the real logic on real API
output.  Reading one gives the same ClusterView a live read would.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from controller.durations import format_instant, parse_k8s_time
from controller.errors import UserInputError
from controller.view import JSON, ClusterView, meta

CAPTURED_AT = "rollback.io/captured-at"
# Kinds `rollback snapshot` listed in full (comma-separated); a file without it
# counts every kind it contains as complete.
KINDS = "rollback.io/kinds"
# Kinds that could not be read at capture time and why, as JSON: replaying the
# file reports the same gaps the live read did.
UNAVAILABLE = "rollback.io/unavailable"


def load_snapshots(paths: Iterable[str | Path], now: datetime | None = None) -> ClusterView:
    """Read snapshot files into one view.

    The capture time is ``now`` when given, else the newest ``captured-at``
    annotation, else the latest timestamp found in the objects: the moment the
    file describes, so "15m ago" means the same thing today as on the day.
    """
    objects: list[JSON] = []
    stamps: list[datetime] = []
    names: list[str] = []
    listed: set[str] = set()
    unavailable: dict[str, str] = {}
    for path in paths:
        file = Path(path)
        names.append(file.name)
        for doc in _documents(file):
            annotations = meta(doc).get("annotations")
            annotations = annotations if isinstance(annotations, dict) else {}
            captured = parse_k8s_time(annotations.get(CAPTURED_AT))
            if captured:
                stamps.append(captured)
            kinds = str(annotations.get(KINDS) or "")
            listed.update(k.strip() for k in kinds.split(",") if k.strip())
            unavailable.update(_unavailable(annotations.get(UNAVAILABLE)))
            objects.extend(_items(doc, file))
    captured_at = now or (max(stamps) if stamps else _latest_timestamp(objects))
    if captured_at is None:
        raise UserInputError(
            f"{', '.join(names)}: no capture time found; pass --now to say when it was taken"
        )
    view = ClusterView(captured_at=captured_at, source="snapshot " + ", ".join(names))
    view.extend(objects)
    view.complete = listed | set(view.kinds())
    view.unavailable.update(unavailable)
    return view


def _unavailable(raw: object) -> dict[str, str]:
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def dump_snapshot(
    objects: Iterable[JSON],
    captured_at: datetime,
    kinds: Iterable[str] = (),
    unavailable: Mapping[str, str] | None = None,
) -> str:
    """A YAML ``List`` of the objects with the capture time, Secrets stripped of values.

    ``kinds`` names the kinds that were listed in full (recorded so that a
    kind with no objects still counts as read when the file is replayed);
    ``unavailable`` the kinds that could not be read, and why.
    """
    items = [strip_secret(o) for o in objects]
    annotations = {CAPTURED_AT: format_instant(captured_at)}
    listed = sorted(set(kinds))
    if listed:
        annotations[KINDS] = ",".join(listed)
    if unavailable:
        annotations[UNAVAILABLE] = json.dumps(dict(sorted(unavailable.items())))
    document = {
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"annotations": annotations},
        "items": items,
    }
    # Keys sorted and multi-line strings as blocks, as kubectl prints them.
    return yaml.dump(document, Dumper=_Dumper, sort_keys=True, default_flow_style=False)


# libyaml's emitter and parser, when present, are an order of magnitude faster
# than the pure-Python ones: a 7,000-object namespace is 20 MB of YAML.
_SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Dumper(_SafeDumper):  # type: ignore[valid-type,misc]
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def strip_secret(obj: JSON) -> JSON:
    """Secrets keep their metadata and type only: a snapshot must never leak values."""
    if obj.get("kind") != "Secret":
        return obj
    return {k: v for k, v in obj.items() if k not in ("data", "stringData")}


def _documents(file: Path) -> Iterator[JSON]:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError(f"{file}: no such snapshot file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserInputError(f"{file}: cannot read: {err}") from None
    try:
        if text.lstrip().startswith(("{", "[")):
            docs: list[Any] = [json.loads(text)]
        else:
            docs = list(yaml.load_all(text, Loader=_SafeLoader))
    except json.JSONDecodeError as err:
        raise UserInputError(f"{file}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else str(file)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserInputError(f"{where}: invalid YAML: {problem}") from None
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        if isinstance(doc, list):
            doc = {"kind": "List", "items": doc}
        if not isinstance(doc, dict) or "kind" not in doc:
            raise UserInputError(
                f"{file}: document {index + 1} is not a Kubernetes object or List (no 'kind')"
            )
        yield doc


def _items(doc: JSON, file: Path) -> Iterator[JSON]:
    kind = str(doc.get("kind"))
    if kind == "List" or (kind.endswith("List") and isinstance(doc.get("items"), list)):
        item_kind = kind[: -len("List")] if kind != "List" else ""
        for item in doc.get("items") or []:
            if not isinstance(item, dict):
                raise UserInputError(f"{file}: a List item is not an object")
            if item_kind and "kind" not in item:
                # `kubectl get deploy -o json` style lists name the kind once.
                item = dict(item, kind=item_kind, apiVersion=doc.get("apiVersion", "v1"))
            yield item
    else:
        yield doc


def _latest_timestamp(objects: list[JSON]) -> datetime | None:
    latest: datetime | None = None
    for obj in objects:
        for moment in _timestamps(obj):
            if latest is None or moment > latest:
                latest = moment
    return latest


_TIME_KEYS = frozenset(
    {
        "creationTimestamp",
        "lastTransitionTime",
        "lastUpdateTime",
        "lastHeartbeatTime",
        "lastTimestamp",
        "eventTime",
        "startedAt",
        "finishedAt",
        "startTime",
        "completionTime",
        "time",
        "deployedAt",
        "lastAttemptedRevisionTime",
    }
)


def _timestamps(value: Any) -> Iterator[datetime]:
    if isinstance(value, dict):
        for key, child in value.items():
            if key in _TIME_KEYS:
                moment = parse_k8s_time(child)
                if moment:
                    yield moment
            elif isinstance(child, dict | list):
                yield from _timestamps(child)
    elif isinstance(value, list):
        for child in value:
            yield from _timestamps(child)
