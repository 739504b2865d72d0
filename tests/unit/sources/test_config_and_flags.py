"""ConfigMap/Secret updates and feature-flag flips, dated by managedFields.

The objects are the ones captured in examples/ (a kubectl apply, then a
kubectl patch), varied where a case needs it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from controller.model import ChangeKind, ObjectRef
from controller.sources.config import (
    collect_config_changes,
    field_paths,
    known_config_versions,
    last_applied_drift,
    last_write,
    read_modes,
)
from controller.sources.flags import (
    collect_flag_changes,
    flag_consumers,
    flag_sources_of,
    flagd_document,
)
from controller.view import ClusterView

from .builders import captured, captured_all

CAPTURED_AT = datetime(2026, 12, 3, 10, 20, tzinfo=UTC)
DAY_BEFORE = CAPTURED_AT - timedelta(days=1)


def view_of(*objects: dict) -> ClusterView:
    view = ClusterView(captured_at=CAPTURED_AT)
    view.extend(objects)
    return view


def entry(manager: str, at: str, fields: dict, subresource: str | None = None) -> dict:
    out = {
        "apiVersion": "v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
        "manager": manager,
        "operation": "Update",
        "time": at,
    }
    if subresource:
        out["subresource"] = subresource
    return out


class TestConfigMapChanges:
    def test_a_patched_configmap_is_a_change_at_its_last_write_with_its_consumers(self) -> None:
        # Given the captured payments namespace: api-config patched at 10:07 by kubectl-patch
        view = view_of(*captured_all("configmap-change"))

        changes = collect_config_changes(view, DAY_BEFORE, CAPTURED_AT)

        (change,) = changes
        assert change.kind is ChangeKind.CONFIG
        assert change.target == ObjectRef("ConfigMap", "payments", "api-config")
        assert change.at == datetime(2026, 12, 3, 10, 7, tzinfo=UTC)
        assert change.cause == "kubectl-patch"
        assert change.affects == (ObjectRef("Deployment", "payments", "api"),)
        assert change.after == "keys: DB_POOL_SIZE, LOG_LEVEL, UPSTREAM_TIMEOUT"
        assert change.before == (
            "as last applied with kubectl (last-applied-configuration), which differs in "
            "DB_POOL_SIZE"
        )
        assert change.evidence == (
            "managedFields: kubectl-patch (Update) last wrote it at 2026-12-03T10:07:00Z, "
            "owning keys DB_POOL_SIZE",
            "deployment/api reads it as mounted files, not restarted since: the kubelet "
            "updates the files within about a minute",
            "keys changed since the last kubectl apply: DB_POOL_SIZE",
        )

    def test_values_never_appear_in_a_change(self) -> None:
        view = view_of(*captured_all("configmap-change"))

        (change,) = collect_config_changes(view, DAY_BEFORE, CAPTURED_AT)

        text = json.dumps([change.summary, change.before, change.after, *change.evidence])
        assert "500" not in text and '"20"' not in text

    def test_a_configmap_only_ever_written_at_creation_is_not_a_change(self) -> None:
        cm = captured("bad-image-rollout", "ConfigMap", "cart-config")

        assert collect_config_changes(view_of(cm), DAY_BEFORE, CAPTURED_AT) == []

    def test_changes_outside_the_window_are_left_out(self) -> None:
        view = view_of(*captured_all("configmap-change"))
        before_patch = datetime(2026, 12, 3, 10, 6, tzinfo=UTC)

        assert collect_config_changes(view, DAY_BEFORE, before_patch) == []

    def test_status_subresource_writes_do_not_date_a_change(self) -> None:
        cm = captured("bad-image-rollout", "ConfigMap", "cart-config")
        cm["metadata"]["managedFields"].append(
            entry("some-controller", "2026-12-03T10:15:00Z", {"f:status": {}}, "status")
        )

        write = last_write(cm)

        assert write is not None and write.manager == "kubectl-client-side-apply"

    def test_a_restarted_env_consumer_is_said_to_run_the_new_content(self) -> None:
        objects = captured_all("bad-image-rollout")
        cm = next(o for o in objects if o["metadata"]["name"] == "cart-config")
        cm["metadata"]["managedFields"].append(
            entry("kubectl-edit", "2026-12-03T09:30:00Z", {"f:data": {"f:CART_TTL": {}}})
        )
        cart = next(
            o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "cart"
        )
        cart["spec"]["template"]["metadata"]["annotations"] = {
            "kubectl.kubernetes.io/restartedAt": "2026-12-03T09:31:00Z"
        }

        (change,) = collect_config_changes(view_of(*objects), DAY_BEFORE, CAPTURED_AT)

        assert change.evidence[1] == (
            "deployment/cart reads it through env and restarted since: it runs the new content"
        )

    def test_system_configmaps_helm_releases_and_flagd_documents_are_not_config_changes(
        self,
    ) -> None:
        flagd = captured("bad-image-rollout", "ConfigMap", "cart-config")
        flagd["metadata"]["name"] = "flags"
        flagd["data"] = {"flags.json": '{"flags": {"a": {"state": "ENABLED"}}}'}
        flagd["metadata"]["managedFields"].append(
            entry("kubectl-edit", "2026-12-03T10:00:00Z", {"f:data": {"f:flags.json": {}}})
        )
        root_ca = json.loads(json.dumps(flagd))
        root_ca["metadata"]["name"] = "kube-root-ca.crt"
        root_ca["data"] = {"ca.crt": "x"}
        release = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "helm.sh/release.v1",
            "metadata": {
                "name": "sh.helm.release.v1.web.v2",
                "namespace": "shop",
                "creationTimestamp": "2026-12-03T09:00:00Z",
                "managedFields": [entry("helm", "2026-12-03T10:00:00Z", {"f:metadata": {}})],
            },
        }

        changes = collect_config_changes(view_of(flagd, root_ca, release), DAY_BEFORE, CAPTURED_AT)

        assert changes == []

    def test_the_ledger_records_prior_versions(self) -> None:
        ledger = [
            {
                "apiVersion": "apps/v1",
                "kind": "ControllerRevision",
                "metadata": {
                    "name": f"api-config-ledger-{n}",
                    "namespace": "payments",
                    "labels": {"rollback.io/configmap": "api-config"},
                },
                "revision": n,
                "data": {"data": {"DB_POOL_SIZE": "20"}},
            }
            for n in (1, 2)
        ]
        view = view_of(*captured_all("configmap-change"), *ledger)

        (change,) = collect_config_changes(view, DAY_BEFORE, CAPTURED_AT)

        assert change.before == "recorded as ledger version 2"
        assert known_config_versions(view) == {
            ObjectRef("ConfigMap", "payments", "api-config"): "2"
        }


READ_MODES = [
    pytest.param(
        {"containers": [{"name": "a", "envFrom": [{"configMapRef": {"name": "c"}}]}]},
        "through env",
        id="envFrom",
    ),
    pytest.param(
        {
            "volumes": [{"name": "v", "configMap": {"name": "c"}}],
            "containers": [{"name": "a", "volumeMounts": [{"name": "v", "mountPath": "/c"}]}],
        },
        "as mounted files",
        id="volume",
    ),
    pytest.param(
        {
            "volumes": [{"name": "v", "projected": {"sources": [{"configMap": {"name": "c"}}]}}],
            "containers": [
                {"name": "a", "volumeMounts": [{"name": "v", "mountPath": "/c/x", "subPath": "x"}]}
            ],
        },
        "as a subPath file",
        id="projected subPath",
    ),
]


@pytest.mark.parametrize(("spec", "expected"), READ_MODES)
def test_how_a_template_reads_a_configmap(spec: dict, expected: str) -> None:
    assert read_modes({"spec": spec}, ObjectRef("ConfigMap", "ns", "c")) == expected


def test_field_paths_flatten_fieldsv1() -> None:
    fields = {"f:data": {".": {}, "f:A": {}, "f:B": {}}, "f:metadata": {"f:labels": {"f:x": {}}}}

    assert list(field_paths(fields)) == ["data.A", "data.B", "metadata.labels.x"]


def test_last_applied_drift_names_keys_only() -> None:
    cm = captured("configmap-change", "ConfigMap", "api-config")

    assert last_applied_drift(cm) == ("DB_POOL_SIZE",)
    del cm["metadata"]["annotations"]
    assert last_applied_drift(cm) == ()


# ---------------------------------------------------------------------------
# Feature flags
# ---------------------------------------------------------------------------


class TestFeatureFlags:
    def test_the_patched_flag_is_identified_with_its_previous_value(self) -> None:
        view = view_of(*captured_all("flag-flip"))

        (change,) = collect_flag_changes(view, DAY_BEFORE, CAPTURED_AT)

        assert change.kind is ChangeKind.FLAG
        assert change.target == ObjectRef("FeatureFlag", "checkout", "storefront-flags")
        assert change.flag == "new-checkout"
        assert change.at == datetime(2026, 12, 3, 10, 7, tzinfo=UTC)
        assert change.before == (
            "state ENABLED, defaultVariant off (from last-applied-configuration)"
        )
        assert change.after == "state ENABLED, defaultVariant on"
        assert change.affects == (ObjectRef("Deployment", "checkout", "storefront"),)

    def test_without_last_applied_the_previous_value_is_said_to_be_unknown(self) -> None:
        flags = captured("flag-flip", "FeatureFlag")
        del flags["metadata"]["annotations"]

        (change,) = collect_flag_changes(view_of(flags), DAY_BEFORE, CAPTURED_AT)

        assert change.flag == "new-checkout"
        assert change.before == "unknown (Kubernetes keeps no history of it)"
        assert change.evidence[1] == "no workload in scope is known to read it"

    def test_one_manager_owning_every_flag_cannot_say_which_flipped(self) -> None:
        flags = captured("flag-flip", "FeatureFlag")
        del flags["metadata"]["annotations"]
        fields = flags["metadata"]["managedFields"][0]["fieldsV1"]
        flags["metadata"]["managedFields"] = [
            entry("argocd-controller", "2026-12-03T09:26:00Z", fields),
        ]
        flags["metadata"]["managedFields"][0]["time"] = "2026-12-03T10:05:00Z"

        (change,) = collect_flag_changes(view_of(flags), DAY_BEFORE, CAPTURED_AT)

        assert change.flag is None
        assert change.summary == (
            "FeatureFlag storefront-flags updated by argocd-controller; one of 2 flags changed"
        )
        assert change.evidence[0].endswith("which one changed cannot be told")

    def test_our_own_undo_record_gives_the_previous_value(self) -> None:
        flags = captured("flag-flip", "FeatureFlag")
        flags["metadata"]["annotations"] = {
            "rollback.io/undo": json.dumps(
                {"new-checkout": {"field": "defaultVariant", "from": "on"}}
            )
        }

        (change,) = collect_flag_changes(view_of(flags), DAY_BEFORE, CAPTURED_AT)

        assert change.before == "defaultVariant on (recorded by rollback in rollback.io/undo)"

    def test_consumers_follow_pod_annotation_to_source_to_flag(self) -> None:
        view = view_of(*captured_all("flag-flip"))
        template = captured("flag-flip", "Deployment", "storefront")["spec"]["template"]

        assert flag_sources_of(template, "checkout") == (
            ObjectRef("FeatureFlagSource", "checkout", "storefront-flag-source"),
        )
        assert flag_consumers(view, ObjectRef("FeatureFlag", "checkout", "storefront-flags")) == (
            ObjectRef("Deployment", "checkout", "storefront"),
        )

    def test_the_annotation_may_list_several_sources_across_namespaces(self) -> None:
        pod = {"metadata": {"annotations": {
            "openfeature.dev/featureflagsource": "a, flags/b ,"
        }}}  # fmt: skip

        assert flag_sources_of(pod, "shop") == (
            ObjectRef("FeatureFlagSource", "shop", "a"),
            ObjectRef("FeatureFlagSource", "flags", "b"),
        )

    def test_a_flagd_configmap_is_a_flag_change_and_its_flag_is_found_from_last_applied(
        self,
    ) -> None:
        doc_before = {
            "flags": {
                "promo": {"state": "DISABLED", "defaultVariant": "off"},
                "beta": {"state": "ENABLED", "defaultVariant": "on"},
            }
        }
        doc_after = {"flags": {"promo": {"state": "ENABLED", "defaultVariant": "off"},
                               "beta": {"state": "ENABLED", "defaultVariant": "on"}}}  # fmt: skip
        cm = captured("bad-image-rollout", "ConfigMap", "cart-config")
        cm["metadata"]["name"] = "flagd-flags"
        cm["data"] = {"flags.flagd.json": json.dumps(doc_after)}
        cm["metadata"]["annotations"] = {
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
                {"data": {"flags.flagd.json": json.dumps(doc_before)}}
            )
        }
        cm["metadata"]["managedFields"].append(
            entry("kubectl-edit", "2026-12-03T10:01:00Z", {"f:data": {"f:flags.flagd.json": {}}})
        )

        (change,) = collect_flag_changes(view_of(cm), DAY_BEFORE, CAPTURED_AT)

        assert flagd_document(cm) == ("flags.flagd.json", doc_after["flags"])
        assert (change.target, change.flag) == (
            ObjectRef("ConfigMap", "shop", "flagd-flags"),
            "promo",
        )
        assert (
            change.before == "state DISABLED, defaultVariant off (from last-applied-configuration)"
        )
