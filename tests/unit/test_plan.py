"""plan's decisions: create / update / unchanged, what the applied hash leaves out, and how
live objects are compared (each test killed a mutant the plan's other tests let through)."""

from __future__ import annotations

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
