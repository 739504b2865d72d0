"""Flag disable plans for OpenFeature FeatureFlag resources and flagd ConfigMaps."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controller.actions.flags import FlagMode, off_variant, plan_flag_disable, plan_flag_undo
from controller.actions.plan import AUDIT_ANNOTATION, STAMP, UNDO_ANNOTATION
from controller.errors import RefusedError, UserInputError

from .helpers import apply_json_patch


def feature_flag(**flags: dict[str, Any]) -> dict[str, Any]:
    """A FeatureFlag as the OpenFeature Operator's v1beta1 API returns it."""
    return {
        "apiVersion": "core.openfeature.dev/v1beta1",
        "kind": "FeatureFlag",
        "metadata": {
            "name": "shop-flags",
            "namespace": "shop",
            "resourceVersion": "4711",
            "uid": "0b8f7a39-0c3d-4a43-9c8e-1f6f1f4b0d11",
            "generation": 3,
        },
        "spec": {"flagSpec": {"flags": flags}},
    }


NEW_CHECKOUT = {
    "state": "ENABLED",
    "variants": {"on": True, "off": False},
    "defaultVariant": "on",
}


@pytest.mark.parametrize(
    ("variants", "requested", "expected"),
    [
        ({"on": True, "off": False}, None, "off"),
        ({"enabled": True, "Disabled": False}, None, "Disabled"),
        ({"new": "v2", "false": "v1"}, None, "false"),
        ({"yes": True, "no": False}, None, "no"),
        ({"blue": "#00f", "red": "#f00"}, "red", "red"),
        ({"on": True, "off": False}, "on", "on"),
    ],
)
def test_the_off_variant_is_found_by_name_then_by_boolean_false(
    variants: dict[str, Any], requested: str | None, expected: str
) -> None:
    assert off_variant(variants, "f", requested) == expected


@pytest.mark.parametrize(
    ("variants", "requested", "message"),
    [
        (
            {"blue": "#00f", "red": "#f00"},
            None,
            "flag 'f' has no unambiguous off variant (variants: blue, red); "
            "name one with --variant",
        ),
        (
            {"a": False, "b": False},
            None,
            "flag 'f' has no unambiguous off variant (variants: a, b); name one with --variant",
        ),
        ({"on": True, "off": False}, "dark", "flag 'f' has no variant 'dark'; variants: on, off"),
        ({}, None, "flag 'f' has no variants to switch to"),
    ],
)
def test_an_ambiguous_or_unknown_variant_is_one_clear_error(
    variants: dict[str, Any], requested: str | None, message: str
) -> None:
    with pytest.raises(UserInputError) as err:
        off_variant(variants, "f", requested)
    assert str(err.value) == message


def test_disable_points_the_default_variant_at_off_and_records_the_prior_value() -> None:
    # Given a FeatureFlag whose new-checkout flag serves "on"
    obj = feature_flag(**{"new-checkout": dict(NEW_CHECKOUT)})
    # When we plan to disable it
    plan = plan_flag_disable(obj, "new-checkout")
    patched = apply_json_patch(obj, plan.steps[0].body)
    # Then only its defaultVariant changes, guarded by the resourceVersion
    assert patched["spec"]["flagSpec"]["flags"]["new-checkout"] == dict(
        NEW_CHECKOUT, defaultVariant="off"
    )
    assert plan.steps[0].body[0] == {
        "op": "replace",
        "path": "/metadata/resourceVersion",
        "value": "4711",
    }
    # And the prior value is recorded on the object for --undo, beside the audit stamp
    annotations = patched["metadata"]["annotations"]
    assert json.loads(annotations[UNDO_ANNOTATION]) == {
        "new-checkout": {"field": "defaultVariant", "from": "on", "to": "off"}
    }
    assert annotations[AUDIT_ANNOTATION] == STAMP
    assert plan.changes[0] == "flag new-checkout: defaultVariant on -> off (variant value false)"
    assert (
        plan.summary
        == "disable flag new-checkout in featureflag/shop-flags (defaultVariant on -> off)"
    )
    assert plan.warnings == ()


def test_state_mode_disables_the_flag_and_warns_about_the_code_default() -> None:
    obj = feature_flag(**{"new-checkout": dict(NEW_CHECKOUT)})
    plan = plan_flag_disable(obj, "new-checkout", mode=FlagMode.STATE)
    patched = apply_json_patch(obj, plan.steps[0].body)
    assert patched["spec"]["flagSpec"]["flags"]["new-checkout"]["state"] == "DISABLED"
    assert patched["spec"]["flagSpec"]["flags"]["new-checkout"]["defaultVariant"] == "on"
    assert "code default" in plan.warnings[0]


def test_targeting_rules_are_warned_about_because_they_keep_their_variant() -> None:
    flag = dict(
        NEW_CHECKOUT, targeting={"if": [{"in": ["@example.com", {"var": "email"}]}, "on", None]}
    )
    plan = plan_flag_disable(feature_flag(**{"new-checkout": flag}), "new-checkout")
    assert "targeting rules" in plan.warnings[0]


def test_an_already_disabled_flag_is_a_noop() -> None:
    obj = feature_flag(**{"new-checkout": dict(NEW_CHECKOUT, defaultVariant="off")})
    plan = plan_flag_disable(obj, "new-checkout")
    assert (
        plan.noop == "flag 'new-checkout' in featureflag/shop-flags already has defaultVariant off"
    )
    assert plan.steps == ()


def test_undo_restores_exactly_what_the_disable_overwrote() -> None:
    # Given a flag disabled by us
    obj = feature_flag(**{"new-checkout": dict(NEW_CHECKOUT), "other": dict(NEW_CHECKOUT)})
    disabled = apply_json_patch(obj, plan_flag_disable(obj, "new-checkout").steps[0].body)
    disabled["metadata"]["resourceVersion"] = "4712"
    # When we undo it
    plan = plan_flag_undo(disabled, "new-checkout")
    restored = apply_json_patch(disabled, plan.steps[0].body)
    # Then the flag is back and the record for it is gone
    assert restored["spec"]["flagSpec"]["flags"] == obj["spec"]["flagSpec"]["flags"]
    assert json.loads(restored["metadata"]["annotations"][UNDO_ANNOTATION]) == {}
    assert plan.steps[0].resource_version == "4712"
    assert plan.changes == (
        "flag new-checkout: defaultVariant off -> on (recorded before the disable)",
    )


def test_undo_refuses_when_someone_changed_the_flag_since() -> None:
    obj = feature_flag(**{"new-checkout": dict(NEW_CHECKOUT)})
    disabled = apply_json_patch(obj, plan_flag_disable(obj, "new-checkout").steps[0].body)
    disabled["spec"]["flagSpec"]["flags"]["new-checkout"]["defaultVariant"] = "on"
    with pytest.raises(RefusedError, match="someone changed it since"):
        plan_flag_undo(disabled, "new-checkout")


def test_undo_without_a_record_is_bad_input() -> None:
    with pytest.raises(UserInputError, match="no recorded disable of flag 'new-checkout'"):
        plan_flag_undo(feature_flag(**{"new-checkout": dict(NEW_CHECKOUT)}), "new-checkout")


def test_an_unknown_flag_names_the_flags_there_are() -> None:
    with pytest.raises(UserInputError) as err:
        plan_flag_disable(feature_flag(**{"a": dict(NEW_CHECKOUT), "b": dict(NEW_CHECKOUT)}), "c")
    assert str(err.value) == "featureflag/shop-flags has no flag 'c'; flags: a, b"


def flagd_configmap() -> dict[str, Any]:
    document = {
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "flags": {"new-checkout": NEW_CHECKOUT},
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "flagd", "namespace": "shop", "resourceVersion": "88"},
        "data": {"README": "not json", "flags.flagd.json": json.dumps(document)},
    }


def test_a_flagd_configmap_is_edited_in_its_json_document_and_undone_likewise() -> None:
    cm = flagd_configmap()
    plan = plan_flag_disable(cm, "new-checkout")
    disabled = apply_json_patch(cm, plan.steps[0].body)
    document = json.loads(disabled["data"]["flags.flagd.json"])
    assert document["flags"]["new-checkout"]["defaultVariant"] == "off"
    assert document["$schema"] == "https://flagd.dev/schema/v0/flags.json"
    assert disabled["data"]["README"] == "not json"
    assert plan.target.short == "configmap/flagd"
    undone = apply_json_patch(disabled, plan_flag_undo(disabled, "new-checkout").steps[0].body)
    assert json.loads(undone["data"]["flags.flagd.json"])["flags"] == {"new-checkout": NEW_CHECKOUT}


def test_a_configmap_without_the_flag_is_bad_input() -> None:
    with pytest.raises(
        UserInputError, match="configmap/flagd holds no flagd document with a flag 'x'"
    ):
        plan_flag_disable(flagd_configmap(), "x")
