"""The merge algorithms behind the kube fake's writes (pure functions)."""

from __future__ import annotations

import pytest

from tests.fakes.kubemerge import (
    PatchError,
    apply_merge,
    atomic_lists,
    builtin_key_for,
    fields_v1,
    json_merge_patch,
    json_patch,
    label_selector,
    leaf_paths,
    removable_paths,
    remove_path,
    strategic_merge_patch,
)

POD_SPEC = {
    "containers": [
        {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
        {"name": "b", "image": "b:1"},
    ],
    "volumes": [{"name": "cfg", "secret": {"secretName": "s"}}],
    "tolerations": [{"key": "k"}],
}


def test_json_merge_patch_merges_maps_and_deletes_nulls() -> None:
    assert json_merge_patch(
        {"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": None, "e": 3}, "d": [2]}
    ) == {
        "a": {"c": 2, "e": 3},
        "d": [2],
    }


def test_json_patch_operations() -> None:
    doc = {"a": [1, 2], "b": {"c": 1}}
    ops = [
        {"op": "add", "path": "/a/-", "value": 3},
        {"op": "replace", "path": "/b/c", "value": 2},
        {"op": "copy", "from": "/b", "path": "/d"},
        {"op": "move", "from": "/a/0", "path": "/e"},
        {"op": "remove", "path": "/b"},
        {"op": "test", "path": "/e", "value": 1},
    ]
    assert json_patch(doc, ops) == {"a": [2, 3], "d": {"c": 2}, "e": 1}
    assert doc == {"a": [1, 2], "b": {"c": 1}}  # the input is not modified
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "test", "path": "/a/0", "value": 9}])
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "remove", "path": "/nope"}])


def test_strategic_merge_patch_merges_keyed_lists() -> None:
    patch = {
        "containers": [{"name": "a", "image": "a:2"}, {"name": "c", "image": "c:1"}],
        "tolerations": [{"key": "other"}],
    }
    merged = strategic_merge_patch(POD_SPEC, patch)
    assert [c["name"] for c in merged["containers"]] == ["a", "b", "c"]
    assert merged["containers"][0] == {
        "name": "a",
        "image": "a:2",
        "env": [{"name": "X", "value": "1"}],
    }
    assert merged["tolerations"] == [{"key": "other"}]  # not keyed: replaced


def test_strategic_merge_patch_directives() -> None:
    patch = {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
        "containers": [
            {
                "name": "a",
                "$setElementOrder/env": [{"name": "Y"}],
                "env": [{"name": "X", "$patch": "delete"}, {"name": "Y", "value": "2"}],
            },
        ],
        "volumes": [{"name": "cfg", "secret": {"$patch": "replace", "secretName": "t"}}],
        "$deleteFromPrimitiveList/finalizers": ["x"],
        "finalizers": ["y"],
    }
    merged = strategic_merge_patch({**POD_SPEC, "finalizers": ["x", "z"]}, patch)
    assert [c["name"] for c in merged["containers"]] == ["b", "a"]
    assert merged["containers"][1]["env"] == [{"name": "Y", "value": "2"}]
    assert merged["volumes"] == [{"name": "cfg", "secret": {"secretName": "t"}}]
    assert merged["finalizers"] == ["z", "y"]
    retained = strategic_merge_patch({"a": 1, "b": 2}, {"$retainKeys": ["b", "c"], "c": 3})
    assert retained == {"b": 2, "c": 3}


def test_leaf_paths_and_fields_v1() -> None:
    paths = leaf_paths({"spec": POD_SPEC}, builtin_key_for)
    item = ("f:spec", "f:containers", 'k:{"name":"a"}')
    assert item in paths
    assert (*item, "f:env", 'k:{"name":"X"}', "f:value") in paths
    assert ("f:spec", "f:tolerations") in paths  # atomic list: one leaf
    tree = fields_v1({item, (*item, "f:image")})
    assert tree == {"f:spec": {"f:containers": {'k:{"name":"a"}': {".": {}, "f:image": {}}}}}
    assert ("f:spec", "f:containers") in leaf_paths({"spec": POD_SPEC}, atomic_lists)


def test_removal_of_a_whole_list_item() -> None:
    obj = {"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}]}]}}
    env_item = ("f:spec", "f:containers", 'k:{"name":"a"}', "f:env", 'k:{"name":"X"}')
    candidates = {env_item, (*env_item, "f:name"), (*env_item, "f:value")}
    for path in removable_paths(candidates, set()):
        remove_path(obj, path)
    assert obj == {"spec": {"containers": [{"name": "a"}]}}


def test_apply_merge_keeps_unapplied_fields() -> None:
    live = {
        "spec": {"containers": [{"name": "a", "image": "a:1", "imagePullPolicy": "Always"}], "x": 1}
    }
    merged = apply_merge(
        live, {"spec": {"containers": [{"name": "a", "image": "a:2"}]}}, builtin_key_for
    )
    assert merged == {
        "spec": {"containers": [{"name": "a", "image": "a:2", "imagePullPolicy": "Always"}], "x": 1}
    }


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=x", True),
        ("app==x,tier=1", True),
        ("app!=x", False),
        ("app in (x, y)", True),
        ("app notin (x)", False),
        ("tier", True),
        ("!tier", False),
        ("missing", False),
        ("", True),
    ],
)
def test_label_selector(selector: str, expected: bool) -> None:
    assert label_selector(selector)({"app": "x", "tier": "1"}) is expected
