"""Server-side apply and discovery through ``kubernetes.dynamic.DynamicClient``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import client, config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ConflictError, ResourceNotFoundError

from tests.fakes.kube import IMAGECACHE_CRD, FakeKube

NS = "gitlab-runner"
MANAGER = "gitlab-eci-bootstrap"


@pytest.fixture
def dyn(fake_kube: FakeKube, tmp_path: Path) -> Iterator[DynamicClient]:
    fake_kube.add_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    api_client = config.new_client_from_config(config_file=str(fake_kube.kubeconfig_path))
    yield DynamicClient(api_client, cache_file=str(tmp_path / "discovery.json"))
    api_client.close()


def configmap(data: dict[str, str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "cfg", "namespace": NS}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def apply(
    dyn: DynamicClient, body: dict[str, Any], manager: str = MANAGER, **kwargs: Any
) -> dict[str, Any]:
    resource = dyn.resources.get(api_version=body["apiVersion"], kind=body["kind"])
    result = resource.server_side_apply(body=body, field_manager=manager, **kwargs)
    applied: dict[str, Any] = result.to_dict()
    return applied


def test_apply_creates_then_is_idempotent(dyn: DynamicClient, fake_kube: FakeKube) -> None:
    first = apply(dyn, configmap({"a": "1"}, {"app": "runner"}))
    assert fake_kube.requests("PATCH")[0].status == 201
    second = apply(dyn, configmap({"a": "1"}, {"app": "runner"}))
    assert fake_kube.requests("PATCH")[1].status == 200
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert second["metadata"]["managedFields"] == first["metadata"]["managedFields"]
    third = apply(dyn, configmap({"a": "2"}, {"app": "runner"}))
    assert int(third["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    entry = third["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"], entry["fieldsType"]) == (
        MANAGER,
        "Apply",
        "FieldsV1",
    )
    assert entry["fieldsV1"] == {"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}


def test_apply_removes_fields_the_manager_stopped_sending(dyn: DynamicClient) -> None:
    apply(dyn, configmap({"a": "1", "b": "2"}, {"app": "runner", "old": "x"}))
    result = apply(dyn, configmap({"a": "1"}, {"app": "runner"}))
    assert result["data"] == {"a": "1"}
    assert result["metadata"]["labels"] == {"app": "runner"}


def test_apply_keeps_fields_of_other_managers(dyn: DynamicClient, fake_kube: FakeKube) -> None:
    apply(dyn, configmap({"a": "1"}))
    apply(dyn, configmap({"b": "2"}), manager="someone-else")
    core = client.CoreV1Api(dyn.client)
    core.patch_namespaced_config_map("cfg", NS, {"data": {"c": "3"}})  # an Update manager
    result = apply(dyn, configmap({"a": "1"}))
    assert result["data"] == {"a": "1", "b": "2", "c": "3"}
    owners = fake_kube.managed_fields("v1", "ConfigMap", "cfg", NS)
    assert owners[(MANAGER, "Apply")] == {("f:data", "f:a")}
    assert owners[("someone-else", "Apply")] == {("f:data", "f:b")}
    assert owners[("OpenAPI-Generator", "Update")] == {("f:data", "f:c")}
    result = apply(dyn, configmap({}), manager="someone-else")
    assert result["data"] == {"a": "1", "c": "3"}


def test_apply_conflicts_between_managers(dyn: DynamicClient, fake_kube: FakeKube) -> None:
    apply(dyn, configmap({"x": "1"}))
    apply(dyn, configmap({"x": "1"}), manager="other")  # same value: shared, no conflict
    with pytest.raises(ConflictError) as caught:
        apply(dyn, configmap({"x": "2"}), manager="other")
    status = json.loads(caught.value.body)
    assert (status["code"], status["reason"]) == (409, "Conflict")
    assert status["message"] == f'Apply failed with 1 conflict: conflict with "{MANAGER}": .data.x'
    assert status["details"]["causes"][0]["reason"] == "FieldManagerConflict"
    forced = apply(dyn, configmap({"x": "2"}), manager="other", force_conflicts=True)
    assert forced["data"] == {"x": "2"}
    owners = fake_kube.managed_fields("v1", "ConfigMap", "cfg", NS)
    assert (MANAGER, "Apply") not in owners  # lost its only field
    with pytest.raises(ConflictError):
        apply(dyn, configmap({"x": "1"}))


def test_apply_merges_containers_by_name(dyn: DynamicClient) -> None:
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "gitlab-runner", "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": "gitlab-runner"}},
            "template": {
                "metadata": {"labels": {"app": "gitlab-runner"}},
                "spec": {
                    "containers": [
                        {
                            "name": "runner",
                            "image": "gitlab-runner:v18.6.0",
                            "env": [{"name": "A", "value": "1"}],
                        }
                    ]
                },
            },
        },
    }
    created = apply(dyn, body)
    assert created["metadata"]["generation"] == 1
    live = (
        dyn.resources.get(api_version="apps/v1", kind="Deployment")
        .get(name="gitlab-runner", namespace=NS)
        .to_dict()
    )
    again = apply(dyn, body)  # unchanged: even the controller's status write is kept
    assert again["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]
    assert again["metadata"]["generation"] == 1
    body["spec"]["template"]["spec"]["containers"][0]["image"] = "gitlab-runner:v18.7.0"
    del body["spec"]["template"]["spec"]["containers"][0]["env"]
    changed = apply(dyn, body)
    container = changed["spec"]["template"]["spec"]["containers"][0]
    assert changed["metadata"]["generation"] == 2
    assert container["image"] == "gitlab-runner:v18.7.0"
    assert "env" not in container
    assert container["imagePullPolicy"] == "IfNotPresent"  # defaulted, owned by nobody
    entry = next(e for e in changed["metadata"]["managedFields"] if e["manager"] == MANAGER)
    fields = entry["fieldsV1"]
    containers = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert containers['k:{"name":"runner"}']["."] == {}


def test_dry_run_apply_changes_nothing(dyn: DynamicClient, fake_kube: FakeKube) -> None:
    apply(dyn, configmap({"a": "1"}))
    before = fake_kube.get_object("v1", "ConfigMap", "cfg", NS)
    fake_kube.clear_log()
    preview = apply(dyn, configmap({"a": "2"}), dry_run="All")
    assert preview["data"] == {"a": "2"}
    assert fake_kube.get_object("v1", "ConfigMap", "cfg", NS) == before
    assert fake_kube.requests("PATCH")[0].query["dryRun"] == "All"
    assert fake_kube.writes() == []


def test_apply_needs_a_field_manager(fake_kube: FakeKube) -> None:
    response = requests.patch(
        f"{fake_kube.url}/api/v1/namespaces/default/configmaps/x",
        data=json.dumps(configmap({})),
        headers={"Content-Type": "application/apply-patch+yaml"},
        timeout=5,
    )
    status = response.json()
    assert (response.status_code, status["reason"]) == (422, "Invalid")
    assert status["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for '
        "apply patch"
    )


def test_apply_accepts_yaml_and_secret_string_data(fake_kube: FakeKube) -> None:
    manifest = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: default\n"
        "stringData:\n  token: glrt-abc\n"
    )
    url = f"{fake_kube.url}/api/v1/namespaces/default/secrets/s?fieldManager={MANAGER}"
    headers = {"Content-Type": "application/apply-patch+yaml"}
    first = requests.patch(url, data=manifest, headers=headers, timeout=5).json()
    second = requests.patch(url, data=manifest, headers=headers, timeout=5).json()
    assert first["data"] == {"token": "Z2xydC1hYmM="}
    assert "stringData" not in first
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_crd_kinds_are_discovered_and_served(dyn: DynamicClient, fake_kube: FakeKube) -> None:
    with pytest.raises(ResourceNotFoundError):
        dyn.resources.get(api_version="eci.alibabacloud.com/v1", kind="ImageCache")
    apply(dyn, IMAGECACHE_CRD)
    crd = fake_kube.get_object(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", "imagecaches.eci.alibabacloud.com"
    )
    assert crd is not None
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    cache = {
        "apiVersion": "eci.alibabacloud.com/v1",
        "kind": "ImageCache",
        "metadata": {"name": "gitlab-runner-gitlab-runner"},
        "spec": {"images": ["gitlab/gitlab-runner:v18.6.0"], "imageCacheSize": 20},
    }
    dyn.resources.invalidate_cache()
    resource = dyn.resources.get(api_version="eci.alibabacloud.com/v1", kind="ImageCache")
    assert resource.namespaced is False
    apply(dyn, cache)
    cache["spec"]["images"] = ["gitlab/gitlab-runner:v18.7.0"]
    updated = apply(dyn, cache)
    assert updated["spec"]["images"] == ["gitlab/gitlab-runner:v18.7.0"]  # atomic list
    assert updated["metadata"]["generation"] == 2
    listed = resource.get()
    assert [i.metadata.name for i in listed.items] == ["gitlab-runner-gitlab-runner"]
    resource.delete(name="gitlab-runner-gitlab-runner")
    assert resource.get().items == []

    refused = requests.patch(  # no strategic merge patch for custom resources
        f"{fake_kube.url}/apis/eci.alibabacloud.com/v1/imagecaches/x",
        data="{}",
        headers={"Content-Type": "application/strategic-merge-patch+json"},
        timeout=5,
    )
    assert (refused.status_code, refused.json()["reason"]) == (415, "UnsupportedMediaType")

    dyn.resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    ).delete(name="imagecaches.eci.alibabacloud.com")
    assert fake_kube.resource_type("eci.alibabacloud.com/v1", "ImageCache") is None


def test_discovery_documents(fake_kube: FakeKube) -> None:
    def get(path: str) -> dict[str, Any]:
        response = requests.get(f"{fake_kube.url}{path}", timeout=5)
        assert response.status_code == 200, path
        body: dict[str, Any] = response.json()
        return body

    assert get("/version")["minor"] == "37"
    assert get("/api")["versions"] == ["v1"]
    groups = {g["name"]: g for g in get("/apis")["groups"]}
    assert set(groups) >= {
        "apps",
        "rbac.authorization.k8s.io",
        "coordination.k8s.io",
        "apiextensions.k8s.io",
        "authorization.k8s.io",
    }
    core = {r["name"]: r for r in get("/api/v1")["resources"]}
    assert core["secrets"] == {
        **core["secrets"],
        "kind": "Secret",
        "namespaced": True,
        "singularName": "secret",
    }
    assert core["namespaces"]["shortNames"] == ["ns"]
    assert not core["namespaces"]["namespaced"]
    assert "persistentvolumeclaims/status" in core
    apps = {r["name"]: r for r in get("/apis/apps/v1")["resources"]}
    assert "patch" in apps["deployments"]["verbs"]
    assert requests.get(f"{fake_kube.url}/openapi/v2", timeout=5).status_code == 404
    index = get("/openapi/v3")["paths"]
    assert "apis/apps/v1" in index


def test_unknown_paths_are_404_status(fake_kube: FakeKube) -> None:
    response = requests.get(f"{fake_kube.url}/apis/nope.example.com/v1/things", timeout=5)
    assert response.status_code == 404
    assert response.json()["reason"] == "NotFound"
    outside = requests.get(f"http://127.0.0.1:{fake_kube.port}/api/v1/namespaces", timeout=5)
    assert outside.status_code == 404  # outside the fake's path prefix
