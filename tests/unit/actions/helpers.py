"""Test helpers for the action plans: fixtures from the real API and a tiny JSON Patch applier."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.sources.workloads import WorkloadRevision, workload_revisions
from controller.view import ClusterView

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NOW = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)


def fixture(name: str) -> Any:
    """A captured API object (see fixtures/capture.py), fresh for each call."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def items(name: str) -> list[dict[str, Any]]:
    return list(fixture(name)["items"])


def revisions_of(
    workload: dict[str, Any], sources: list[dict[str, Any]]
) -> tuple[WorkloadRevision, ...]:
    view = ClusterView(captured_at=NOW)
    view.add(workload)
    view.extend(sources)
    return workload_revisions(view, workload, NOW)


def apply_json_patch(obj: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 add/replace/remove/test on plain JSON, enough to check our patches' effect."""
    doc = copy.deepcopy(obj)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent: Any = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if op["op"] == "test":
            assert parent[last] == op["value"], f"test failed at {op['path']}"
        elif op["op"] == "replace":
            assert last in parent, f"replace of a missing member {op['path']}"
            parent[last] = copy.deepcopy(op["value"])
        elif op["op"] == "add":
            if isinstance(parent, list):
                parent.insert(len(parent) if last == "-" else int(last), copy.deepcopy(op["value"]))
            else:
                parent[last] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            del parent[last]
        else:
            raise AssertionError(f"unsupported op {op['op']}")
    return doc
