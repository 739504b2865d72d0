"""``rollback snapshot`` and the snapshot files ``assess --snapshot`` reads.

Capturing needs a cluster (tests/e2e/test_assess_e2e.py captures and replays);
here: the options, the errors that need no cluster, and what a replayed file
may look like (kubectl's Lists, single objects, JSON, unknown kinds, the
capture time).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner, Result

from controller.cli import main
from controller.snapshot import dump_snapshot, load_snapshots

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "bad-image-rollout.yaml"


def invoke(*args: str) -> Result:
    clean = {k: None for k in os.environ if k.startswith("ROLLBACK_") or k == "KUBECONFIG"}
    return CliRunner().invoke(main, list(args), prog_name="rollback", env=clean)


def unreachable_kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        ),
        encoding="utf-8",
    )
    return path


def test_snapshot_help_names_every_environment_variable() -> None:
    result = invoke("snapshot", "--help")

    assert result.exit_code == 0
    body = click.unstyle(result.output.split("Options:\n", 1)[1])
    options = [o for o in body.split("\n  -") if o.strip() and "--help" not in o]
    assert len(options) == 7
    assert all("[env: " in " ".join(o.split()) for o in options)


def test_snapshot_of_an_unreachable_cluster_is_exit_3_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "incident.yaml"

    result = invoke(
        "snapshot", "-n", "shop", "--kubeconfig", str(unreachable_kubeconfig(tmp_path)),
        "-o", str(out),
    )  # fmt: skip

    assert result.exit_code == 3
    assert result.output == (
        "error: cannot reach the Kubernetes API at https://127.0.0.1:9: connection refused\n"
    )
    assert not out.exists()


def test_snapshot_refuses_contradicting_scope() -> None:
    result = invoke("snapshot", "-A", "-n", "shop")

    assert (result.exit_code, result.output) == (
        2,
        "error: -A and -n exclude each other: pick one\n",
    )


# ---------------------------------------------------------------------------
# What a snapshot file may be
# ---------------------------------------------------------------------------


def test_a_dumped_snapshot_keeps_secret_metadata_but_never_values(tmp_path: Path) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "shop", "uid": "u1"},
        "type": "Opaque",
        "data": {"password": "aHVudGVyMg=="},
        "stringData": {"token": "plain"},
    }
    from datetime import UTC, datetime

    text = dump_snapshot([secret], datetime(2026, 12, 3, 10, 20, tzinfo=UTC), kinds=["Secret"])

    doc = yaml.safe_load(text)
    assert doc["metadata"]["annotations"] == {
        "rollback.io/captured-at": "2026-12-03T10:20:00Z",
        "rollback.io/kinds": "Secret",
    }
    assert doc["items"] == [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": "shop", "uid": "u1"},
            "type": "Opaque",
        }
    ]
    assert "aHVudGVyMg" not in text and "plain" not in text
    assert list(doc) == ["apiVersion", "items", "kind", "metadata"]  # kubectl's key order


def test_kubectl_json_lists_and_single_objects_are_read_and_unknown_kinds_counted(
    tmp_path: Path,
) -> None:
    # Given what `kubectl get deploy,rs,ingress -o json` and `kubectl get cm x -o yaml` print
    doc = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    deploys = [i for i in doc["items"] if i["kind"] in ("Deployment", "ReplicaSet", "Pod")]
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "shop"},
    }
    as_json = tmp_path / "get.json"
    as_json.write_text(
        json.dumps({"apiVersion": "v1", "kind": "List", "items": [*deploys, ingress]}),
        encoding="utf-8",
    )
    single = tmp_path / "cm.yaml"
    single.write_text(
        yaml.safe_dump(next(i for i in doc["items"] if i["kind"] == "ConfigMap")),
        encoding="utf-8",
    )

    result = invoke(
        "assess", "--snapshot", str(as_json), "--snapshot", str(single),
        "--now", "2026-12-03T10:20:00Z", "--incident-start", "12m",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "ROLL BACK: deployment/web to revision 2 (safe)"
    assert result.output.endswith("Ignored unknown kinds: 1 Ingress.\n")


def test_the_capture_time_comes_from_now_then_the_annotation_then_the_latest_timestamp(
    tmp_path: Path,
) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    annotated = load_snapshots([EXAMPLE])
    del doc["metadata"]
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump(doc), encoding="utf-8")
    latest = load_snapshots([bare])
    from datetime import UTC, datetime

    forced = load_snapshots([EXAMPLE], now=datetime(2026, 12, 3, 12, 0, tzinfo=UTC))

    assert annotated.captured_at == datetime(2026, 12, 3, 10, 20, tzinfo=UTC)
    assert latest.captured_at <= annotated.captured_at  # the newest time found in the objects
    assert forced.captured_at == datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            "just: a mapping\n",
            "document 1 is not a Kubernetes object or List (no 'kind')",
            id="no kind",
        ),
        pytest.param("{not json", "invalid JSON", id="bad JSON"),
    ],
)
def test_unreadable_snapshots_are_one_line_exit_2(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "snap.yaml"
    path.write_text(content, encoding="utf-8")

    result = invoke("assess", "--snapshot", str(path))

    assert result.exit_code == 2
    assert result.output.startswith(f"error: {path}")
    assert message in result.output
    assert result.output.count("\n") == 1
