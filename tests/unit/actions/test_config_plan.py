"""Config revert plans: the ConfigMap write, the consumers restarted, the prior versions read."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controller.actions.config import (
    LEDGER_LABEL,
    RESTARTED_AT,
    PriorConfig,
    ledger_entry,
    plan_config_revert,
    prior_from_ledger,
    prior_from_manifest_text,
    restart_decision,
)
from controller.actions.plan import AUDIT_ANNOTATION, NOW, STAMP
from controller.errors import RefusedError, UserInputError

from .helpers import apply_json_patch, fixture


def configmap(data: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "web-config",
            "namespace": "fixtures",
            "resourceVersion": "321",
            "uid": "5a1c1b4e-8a0e-4f5e-b2a4-3c0d0f6f2a11",
        },
        "data": data,
        **extra,
    }


BAD = {"LOG_LEVEL": "debug", "POOL_SIZE": "1"}
GOOD = {"LOG_LEVEL": "info", "POOL_SIZE": "20", "TIMEOUT": "5s"}


def consumer(name: str, **template_spec: Any) -> dict[str, Any]:
    """The captured web Deployment, renamed and reading web-config the way given."""
    obj = fixture("deployment-web")
    obj["metadata"]["name"] = name
    spec = obj["spec"]["template"]["spec"]
    spec["containers"][0].pop("envFrom")
    spec.update(copy.deepcopy(template_spec))
    return obj


ENV_FROM = {
    "containers": [
        {"name": "c", "image": "i", "envFrom": [{"configMapRef": {"name": "web-config"}}]}
    ]
}
ENV_KEY = {
    "containers": [
        {
            "name": "c",
            "image": "i",
            "env": [
                {
                    "name": "L",
                    "valueFrom": {"configMapKeyRef": {"name": "web-config", "key": "LOG_LEVEL"}},
                }
            ],
        }
    ]
}
VOLUME = {
    "volumes": [{"name": "cfg", "configMap": {"name": "web-config"}}],
    "containers": [
        {"name": "c", "image": "i", "volumeMounts": [{"name": "cfg", "mountPath": "/etc/web"}]}
    ],
}
SUBPATH = {
    "volumes": [{"name": "cfg", "projected": {"sources": [{"configMap": {"name": "web-config"}}]}}],
    "containers": [
        {
            "name": "c",
            "image": "i",
            "volumeMounts": [{"name": "cfg", "mountPath": "/etc/a", "subPath": "a"}],
        }
    ],
}


@pytest.mark.parametrize(
    ("template_spec", "annotations", "restart", "why"),
    [
        (ENV_FROM, {}, True, "reads it through environment variables"),
        (ENV_KEY, {}, True, "reads it through environment variables"),
        (SUBPATH, {}, True, "mounts it with subPath, which never updates"),
        (VOLUME, {}, True, "mounts it but does not declare that it reloads"),
        (
            VOLUME,
            {"rollback.io/config-reload": "true"},
            False,
            "mounts it as a volume and declares rollback.io/config-reload",
        ),
        (
            ENV_FROM,
            {"reloader.stakater.com/auto": "true"},
            False,
            "Stakater Reloader restarts it on config changes",
        ),
        (
            ENV_FROM,
            {"configmap.reloader.stakater.com/reload": "other, web-config"},
            False,
            "Stakater Reloader restarts it on config changes",
        ),
    ],
)
def test_a_consumer_is_restarted_unless_it_sees_the_change_by_itself(
    template_spec: dict[str, Any], annotations: dict[str, str], restart: bool, why: str
) -> None:
    workload = consumer("api", **template_spec)
    workload["metadata"]["annotations"].update(annotations)
    decision = restart_decision(workload, "web-config")
    assert (decision.restart, decision.why) == (restart, why)


def test_revert_restores_the_data_whole_and_restarts_env_consumers() -> None:
    # Given web-config holds the bad data, and two workloads read it
    cm = configmap(dict(BAD))
    reader = consumer("api", **ENV_FROM)
    reloader = consumer("worker", **VOLUME)
    reloader["metadata"]["annotations"]["rollback.io/config-reload"] = "true"
    prior = PriorConfig(data=GOOD, origin="git abc1234:deploy/web-config.yaml")
    # When we plan the revert
    plan = plan_config_revert(cm, prior, [reader, reloader])
    # Then the ConfigMap gets exactly the prior data, guarded by its resourceVersion
    primary, restart = plan.steps
    reverted = apply_json_patch(cm, primary.body)
    assert reverted["data"] == GOOD
    assert reverted["metadata"]["annotations"] == {AUDIT_ANNOTATION: STAMP}
    assert primary.body[0]["value"] == "321"
    # And only the consumer that cannot see the change is restarted, as kubectl rollout restart does
    assert restart.ref.short == "deployment/api"
    restarted = apply_json_patch(reader, restart.body)
    assert restarted["spec"]["template"]["metadata"]["annotations"] == {RESTARTED_AT: NOW}
    assert restart.resource_version == reader["metadata"]["resourceVersion"]
    # And the readable diff names keys and sizes, never values
    assert plan.changes == (
        "key LOG_LEVEL: 5 -> 4 bytes, content differs",
        "key POOL_SIZE: 1 -> 2 bytes, content differs",
        "key TIMEOUT: restored (2 bytes)",
        "restart deployment/api (it reads it through environment variables)",
        "no restart for deployment/worker "
        "(mounts it as a volume and declares rollback.io/config-reload)",
    )
    assert not any("debug" in c or "info" in c for c in plan.changes)
    assert plan.summary == "revert configmap/web-config to git abc1234:deploy/web-config.yaml"
    assert plan.to_label.startswith("git abc1234:deploy/web-config.yaml (digest ")


def test_binary_data_absent_from_the_prior_version_is_removed() -> None:
    cm = configmap(dict(GOOD), binaryData={"logo.png": "iVBORw0KGgo="})
    plan = plan_config_revert(cm, PriorConfig(data=GOOD, origin="file x.yaml"))
    assert "binaryData" not in apply_json_patch(cm, plan.steps[0].body)
    assert "binary key logo.png: removed (12 bytes)" in plan.changes
    assert "no workload reads configmap/web-config through its pod template" in plan.warnings


def test_reverting_to_the_content_it_already_holds_is_a_noop() -> None:
    plan = plan_config_revert(
        configmap(dict(GOOD)), PriorConfig(data=GOOD, origin="ledger version 2")
    )
    assert plan.noop.startswith("configmap/web-config already holds that content")
    assert plan.steps == ()


def test_an_immutable_configmap_is_refused() -> None:
    with pytest.raises(RefusedError, match="immutable"):
        plan_config_revert(configmap(dict(BAD), immutable=True), PriorConfig(data=GOOD))


MANIFESTS = """\
apiVersion: v1
kind: Service
metadata: {name: web}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other}
data: {A: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config}
data:
  LOG_LEVEL: info
  POOL_SIZE: "20"
"""


def test_the_named_configmap_is_read_from_a_multi_document_manifest() -> None:
    prior = prior_from_manifest_text(MANIFESTS, "web-config", "git abc:deploy.yaml")
    assert prior.data == {"LOG_LEVEL": "info", "POOL_SIZE": "20"}
    assert prior.origin == "git abc:deploy.yaml"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Service\nmetadata: {name: x}\n", "f.yaml: holds no ConfigMap manifest"),
        (
            MANIFESTS.replace("web-config", "api-config"),
            "f.yaml: holds no ConfigMap named 'web-config' (found: other, api-config)",
        ),
        (
            "kind: ConfigMap\nmetadata: {name: web-config}\ndata: {POOL_SIZE: 20}\n",
            "f.yaml: data.POOL_SIZE of ConfigMap 'web-config' must be a string, "
            "not int (quote it in YAML)",
        ),
        ("kind: ConfigMap\ndata: [1\n", "f.yaml: not valid YAML or JSON at line 3"),
    ],
)
def test_a_manifest_without_a_usable_configmap_is_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(UserInputError) as err:
        prior_from_manifest_text(text, "web-config", "f.yaml")
    assert str(err.value) == message


def test_a_list_as_kubectl_get_prints_it_is_understood() -> None:
    text = (
        '{"apiVersion": "v1", "kind": "List", "items": ['
        + str(configmap(GOOD)).replace("'", '"')
        + "]}"
    )
    assert prior_from_manifest_text(text, "web-config", "f").data == GOOD


def test_the_ledger_records_the_overwritten_content_and_serves_it_back() -> None:
    cm = configmap(dict(BAD))
    entry = ledger_entry(cm, 3, note="before revert to git abc")
    assert entry["metadata"]["labels"] == {LEDGER_LABEL: "web-config"}
    assert entry["metadata"]["ownerReferences"][0]["uid"] == cm["metadata"]["uid"]
    assert entry["metadata"]["name"] == "web-config-cfg-3"
    prior = prior_from_ledger([entry], "web-config", 3)
    assert (prior.data, prior.origin) == (BAD, "ledger version 3")


def test_a_missing_ledger_version_is_bad_input_with_what_is_known() -> None:
    entries = [ledger_entry(configmap(dict(BAD)), v) for v in (1, 2)]
    with pytest.raises(
        UserInputError, match="configmap/web-config has no recorded version 5; known: 1, 2"
    ):
        prior_from_ledger(entries, "web-config", 5)
    with pytest.raises(UserInputError, match="no recorded versions of configmap/web-config"):
        prior_from_ledger([], "web-config", 1)
