"""plan's decisions: create / update / unchanged, what the applied hash leaves out, and how
live objects are compared (each test killed a mutant the plan's other tests let through)."""

from __future__ import annotations

import base64
import copy
from typing import Any

from bootstrap.plan import (
    ANNOTATION_APPLIED,
    applied_hash,
    decide,
    diff,
    field_changes,
    is_subset,
    project,
    with_applied_hash,
)
from bootstrap.render.names import ANNOTATION_CHECKSUM, ANNOTATION_EXPIRES, ANNOTATION_RUNNER_ID


def _deployment(**pod: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "gitlab-runner", "namespace": "ns", "annotations": {}},
        "spec": {"replicas": 1, "template": {"metadata": {"annotations": {}}, "spec": pod}},
    }


def _live(applied: dict[str, Any], **server: Any) -> dict[str, Any]:
    """What the API server returns for an applied object: our fields plus its own."""
    live = copy.deepcopy(applied)
    live["metadata"].update({"resourceVersion": "7", "uid": "u-1", "managedFields": []})
    live["status"] = {"readyReplicas": 1}
    live["spec"].update(server)
    return live


TOLERATION = {"key": "virtual-kubelet.io/provider", "operator": "Exists"}


def test_a_setting_removed_since_the_last_install_is_unapplied() -> None:
    before = with_applied_hash(_deployment(tolerations=[TOLERATION], nodeSelector={"a": "b"}))
    after = with_applied_hash(_deployment(tolerations=[TOLERATION]))
    live = _live(before)
    # Everything we still send is there live; only the hash tells the nodeSelector went.
    live["metadata"]["annotations"] = dict(after["metadata"]["annotations"])
    assert decide(after, live) == "unchanged", "(the hash is the only witness)"
    live = _live(before)
    assert decide(after, live) == "update"


def test_an_object_as_applied_with_server_defaults_is_unchanged() -> None:
    desired = with_applied_hash(_deployment(tolerations=[TOLERATION]))
    live = _live(desired, progressDeadlineSeconds=600, revisionHistoryLimit=10)
    assert decide(desired, live) == "unchanged"
    assert decide(desired, None) == "create"


def test_a_field_changed_by_someone_else_is_drift() -> None:
    desired = with_applied_hash(_deployment(tolerations=[TOLERATION]))
    live = _live(desired)
    live["spec"]["replicas"] = 0
    assert decide(desired, live) == "update"
    live = _live(desired)
    live["spec"]["template"]["spec"]["tolerations"] = []
    assert decide(desired, live) == "update"


def test_a_live_object_without_our_annotations_is_updated() -> None:
    desired = with_applied_hash(_deployment())
    live = _live(desired)
    live["metadata"]["annotations"] = None
    assert decide(desired, live) == "update"


def test_live_values_compare_as_kubernetes_returns_them() -> None:
    assert is_subset({"a": 1}, {"a": 1.0, "extra": 2})
    assert is_subset({"cpu": "2"}, {"cpu": 2}), "a quantity may come back as a number"
    assert not is_subset({"a": True}, {"a": 1}), "booleans are not numbers"
    assert not is_subset({"a": 1}, {"a": True})
    assert not is_subset({"a": 1}, {"a": 2})
    assert not is_subset({"a": 1}, {})
    assert not is_subset({"a": {"b": 1}}, {"a": "x"})
    assert not is_subset([1, 2], [1]), "lists must keep their length"
    assert not is_subset([1], "x")
    assert is_subset([{"a": 1}], [{"a": 1, "b": 2}])
    assert not is_subset([{"a": 1}], [{"a": 2}])


def test_the_hash_leaves_out_what_rotate_changes_and_counts_the_rest() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "c", "annotations": {ANNOTATION_RUNNER_ID: "1"}},
        "data": {"config.toml": "b2xk"},
    }
    rotated = copy.deepcopy(secret)
    rotated["data"]["config.toml"] = "bmV3"
    rotated["metadata"]["annotations"] = {ANNOTATION_RUNNER_ID: "2", ANNOTATION_EXPIRES: "x"}
    assert applied_hash(rotated) == applied_hash(secret)
    with_key = copy.deepcopy(secret)
    with_key["data"]["ca.crt"] = "Y2E="
    assert applied_hash(with_key) != applied_hash(secret), "a new key counts"

    deploy = _deployment()
    rolled = copy.deepcopy(deploy)
    rolled["spec"]["template"]["metadata"]["annotations"][ANNOTATION_CHECKSUM] = "abc"
    assert applied_hash(rolled) == applied_hash(deploy)
    rolled["spec"]["replicas"] = 2
    assert applied_hash(rolled) != applied_hash(deploy)
    stamped = with_applied_hash(deploy)
    assert stamped["metadata"]["annotations"][ANNOTATION_APPLIED] == applied_hash(deploy)
    assert ANNOTATION_APPLIED not in deploy["metadata"]["annotations"], "the input is kept"
    assert applied_hash(stamped) == applied_hash(deploy), "its own stamp is not hashed"


def test_project_keeps_the_shape_of_what_we_send() -> None:
    live = {"a": {"b": 1, "server": 2}, "l": [{"x": 1, "y": 2}, {"x": 3}], "other": 1}
    shape = {"a": {"b": 0}, "l": [{"x": 0}]}
    assert project(live, shape) == {"a": {"b": 1}, "l": [{"x": 1}, {"x": 3}]}
    assert project("scalar", shape) == "scalar"


# --- the diff a plan shows -----------------------------------------------------------------------


def test_the_diff_leaves_out_what_the_server_sets_and_what_the_ref_says() -> None:
    desired = with_applied_hash(_deployment(tolerations=[TOLERATION]))
    live = _live(desired)
    live["metadata"]["annotations"] = {ANNOTATION_APPLIED: "old"}
    live["metadata"]["labels"] = {"x": "1"}
    desired["metadata"]["labels"] = {"x": "2"}
    assert diff(desired, live) == '~ metadata.labels.x: "1" -> "2"\n'
    created = diff(desired, None)
    for noise in ("resourceVersion", "status", "kind", "metadata.name"):
        assert noise not in created
    assert ANNOTATION_APPLIED not in created
    assert "+ spec.replicas: 1" in created


def test_list_items_and_multi_line_values_change_field_by_field() -> None:
    old = {"items": [{"a": 1}, {"a": 2}], "script": "one\ntwo\n"}
    new = {"items": [{"a": 1}, {"a": 3}, {"a": 4}], "script": "one\nthree\n"}
    lines = field_changes(old, new)
    assert "~ items[1].a: 2 -> 3" in lines
    assert "+ items[2].a: 4" in lines
    assert field_changes(new, old)[1] == "- items[2].a: 4"
    at = lines.index("~ script:")
    assert lines[at + 1 :] == ["    @@ -1,2 +1,2 @@", "     one", "    -two", "    +three"]
    assert field_changes({"token": "a\nb"}, {"token": "a\nc"}) == [
        "~ token: (sensitive) -> (sensitive)"
    ]
    assert field_changes({"k": "ü"}, {"k": "é"}) == ['~ k: "ü" -> "é"']
    assert field_changes({"m": {"b": 1, "a": 2}}, {"m": {"a": 2, "b": 9}}) == ["~ m.b: 1 -> 9"]


def test_string_data_of_a_secret_counts_as_its_values() -> None:
    def secret(**string_data: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s"},
            "stringData": string_data,
        }

    changed = diff(secret(password="new-one"), secret(password="old-one"))
    assert changed == "~ data.password: (sensitive) -> (sensitive)\n"
    assert "new-one" not in changed


def test_the_same_object_in_another_key_order_has_the_same_hash() -> None:
    labels = {"app": "gitlab-runner", "team": "ci"}
    one = _deployment()
    one["metadata"]["labels"] = labels
    other = _deployment()
    other["metadata"]["labels"] = dict(reversed(labels.items()))
    assert applied_hash(one) == applied_hash(other), "else every install rewrites the object"


def test_a_boolean_field_as_applied_is_unchanged() -> None:
    desired = with_applied_hash(_deployment(automountServiceAccountToken=False))
    assert decide(desired, _live(desired)) == "unchanged"
    live = _live(desired)
    live["spec"]["template"]["spec"]["automountServiceAccountToken"] = True
    assert decide(desired, live) == "update"


def test_a_live_field_of_another_type_is_shown_as_it_is_live() -> None:
    # Someone replaced a list we send by a scalar, or a map by a string.
    assert project({"args": "x"}, {"args": ["a"]}) == {"args": "x"}
    assert field_changes({"m": {"b": 1, "a": 2}}, {"m": "x"}) == ['~ m: {"a": 2, "b": 1} -> "x"']
    assert field_changes({"m": "x"}, {"m": {"b": 1}}) == ['~ m: "x" -> {"b": 1}']
    assert field_changes({"l": [{"a": 1}]}, {"l": "x"}) == ['~ l: [{"a": 1}] -> "x"']


def test_items_added_to_an_empty_list_are_listed_field_by_field() -> None:
    assert field_changes({"l": []}, {"l": [{"a": 1}]}) == ["+ l[0].a: 1"]
    assert field_changes({"l": [{"a": 1}]}, {"l": []}) == ["- l[0].a: 1"]


def test_a_list_holding_a_token_is_sensitive_as_a_whole() -> None:
    lines = field_changes({"args": ["--debug"]}, {"args": ["--debug", "glrt-abcdef123456"]})
    assert lines == ['~ args: ["--debug"] -> (sensitive)']


def test_a_multi_line_value_that_was_or_becomes_a_token_is_not_diffed() -> None:
    for old, new in (("glrt-old\nx", "plain\nx"), ("plain\nx", "glrt-new\nx")):
        assert field_changes({"c": old}, {"c": new}) == ["~ c: (sensitive) -> (sensitive)"]


def test_a_changed_line_of_a_long_value_is_shown_with_one_line_around_it() -> None:
    lines = field_changes({"s": "a\nb\nc\nd\ne"}, {"s": "a\nb\nX\nd\ne"})
    assert lines == ["~ s:", "    @@ -2,3 +2,3 @@", "     b", "    -c", "    +X", "     d"]


def test_a_secret_value_that_was_binary_is_shown_as_changed() -> None:
    def secret(value: bytes) -> dict[str, Any]:
        data = {"k": base64.b64encode(value).decode()}
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": data}

    assert diff(secret(b"text"), secret(b"\xff\xfe")) == "~ data.k: (sensitive) -> (sensitive)\n"


def test_a_created_object_lists_its_annotations_but_not_our_hash_nor_its_name() -> None:
    plain = diff(with_applied_hash(_deployment()), None)
    assert not [line for line in plain.splitlines() if line.startswith("+ metadata")]
    annotated = _deployment()
    annotated["metadata"]["annotations"] = {ANNOTATION_RUNNER_ID: "42"}
    lines = diff(with_applied_hash(annotated), None).splitlines()
    assert [line for line in lines if line.startswith("+ metadata")] == [
        f'+ metadata.annotations["{ANNOTATION_RUNNER_ID}"]: "42"'
    ]
