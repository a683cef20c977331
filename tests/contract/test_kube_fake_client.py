"""The fake kube-apiserver driven by the ``kubernetes`` Python client (typed APIs)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.fakes.kube import FakeKube

NS = "gitlab-runner"


@pytest.fixture
def api(fake_kube: FakeKube) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(fake_kube.kubeconfig_path))
    yield api_client
    api_client.close()


@pytest.fixture
def core(api: client.ApiClient, fake_kube: FakeKube) -> client.CoreV1Api:
    fake_kube.add_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    return client.CoreV1Api(api)


def status_of(error: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(error.body)
    return body


def wait_until(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.02)


def deployment(name: str = "runner", image: str = "gitlab/gitlab-runner:v18.6.0") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "runner", "image": image, "env": [{"name": "A", "value": "1"}]}
                    ]
                },
            },
        },
    }


# -- core objects ----------------------------------------------------------------------------


def test_namespace_create_read_list(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    created = core.create_namespace({"metadata": {"name": "team-a"}})
    assert created.status.phase == "Active"
    assert created.metadata.labels == {"kubernetes.io/metadata.name": "team-a"}
    assert created.metadata.uid
    assert created.metadata.creation_timestamp
    assert core.read_namespace("team-a").metadata.resource_version == (
        created.metadata.resource_version
    )
    names = {n.metadata.name for n in core.list_namespace().items}
    assert names == {"default", "kube-system", "kube-public", "kube-node-lease", "team-a"}


def test_namespace_deletion_is_graceful(core: client.CoreV1Api, fake_kube: FakeKube) -> None:
    fake_kube.namespace_delete_delay = 0.5
    core.create_namespaced_secret(NS, {"metadata": {"name": "s"}})
    core.delete_namespace(NS)
    assert core.read_namespace(NS).status.phase == "Terminating"
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map(NS, {"metadata": {"name": "late"}})
    assert (caught.value.status, status_of(caught.value)["reason"]) == (403, "Forbidden")
    assert wait_until(lambda: fake_kube.get_object("v1", "Namespace", NS) is None)
    assert fake_kube.objects(namespace=NS) == []


def test_secret_string_data_is_stored_as_data(core: client.CoreV1Api, fake_kube: FakeKube) -> None:
    core.create_namespaced_secret(
        NS,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="gitlab-runner-config"),
            string_data={"config.toml": "concurrent = 4\n"},
        ),
    )
    secret = core.read_namespaced_secret("gitlab-runner-config", NS)
    assert secret.data == {"config.toml": "Y29uY3VycmVudCA9IDQK"}
    assert secret.string_data is None
    assert secret.type == "Opaque"
    assert secret.metadata.generation is None  # only kinds with a spec carry a generation
    stored = fake_kube.get_object("v1", "Secret", "gitlab-runner-config", NS)
    assert stored is not None
    assert "stringData" not in stored


def test_not_found_is_a_status_object(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_secret("missing", NS)
    assert caught.value.status == 404
    assert status_of(caught.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'secrets "missing" not found',
        "reason": "NotFound",
        "details": {"name": "missing", "kind": "secrets"},
        "code": 404,
    }


def test_create_conflicts_and_missing_namespace(core: client.CoreV1Api) -> None:
    body = {"metadata": {"name": "cm"}, "data": {"a": "1"}}
    core.create_namespaced_config_map(NS, body)
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map(NS, body)
    assert (caught.value.status, status_of(caught.value)["reason"]) == (409, "AlreadyExists")
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map("nope", body)
    assert caught.value.status == 404
    assert status_of(caught.value)["message"] == 'namespaces "nope" not found'


def test_update_with_stale_resource_version_conflicts(core: client.CoreV1Api) -> None:
    first = core.create_namespaced_config_map(NS, {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    first.data = {"a": "2"}
    second = core.replace_namespaced_config_map("cm", NS, first)
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    first.data = {"a": "3"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as caught:
        core.replace_namespaced_config_map("cm", NS, first)
    assert (caught.value.status, status_of(caught.value)["reason"]) == (409, "Conflict")
    assert core.read_namespaced_config_map("cm", NS).data == {"a": "2"}


def test_label_selectors(core: client.CoreV1Api) -> None:
    for name, labels in (("a", {"app": "x", "tier": "1"}), ("b", {"app": "y"}), ("c", {})):
        core.create_namespaced_config_map(NS, {"metadata": {"name": name, "labels": labels}})

    def names(selector: str) -> list[str]:
        items = core.list_namespaced_config_map(NS, label_selector=selector).items
        return [i.metadata.name for i in items]

    assert names("app=x") == ["a"]
    assert names("app in (x,y)") == ["a", "b"]
    assert names("app notin (x),tier!=2") == ["b", "c"]
    assert names("!app") == ["c"]
    assert names("app,tier") == ["a"]
    listing = core.list_namespaced_config_map(NS)
    assert int(listing.metadata.resource_version) >= 1000
    everywhere = core.list_config_map_for_all_namespaces(field_selector="metadata.name=b")
    assert [i.metadata.namespace for i in everywhere.items] == [NS]


def test_patch_flavours(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map(
        NS, {"metadata": {"name": "cm"}, "data": {"a": "1", "b": "2"}}
    )
    core.patch_namespaced_config_map("cm", NS, {"data": {"b": None, "c": "3"}})  # strategic
    assert core.read_namespaced_config_map("cm", NS).data == {"a": "1", "c": "3"}
    core.patch_namespaced_config_map(
        "cm",
        NS,
        [{"op": "replace", "path": "/data/a", "value": "9"}],  # JSON patch
    )
    assert core.read_namespaced_config_map("cm", NS).data == {"a": "9", "c": "3"}
    with pytest.raises(ApiException) as caught:
        core.patch_namespaced_config_map(
            "cm", NS, [{"op": "test", "path": "/data/a", "value": "0"}]
        )
    assert caught.value.status == 422


def test_dry_run_changes_nothing(core: client.CoreV1Api, fake_kube: FakeKube) -> None:
    before = fake_kube.resource_version
    fake_kube.clear_log()
    answer = core.create_namespaced_config_map(
        NS, {"metadata": {"name": "cm"}, "data": {"a": "1"}}, dry_run="All"
    )
    assert answer.metadata.name == "cm"
    assert answer.data == {"a": "1"}
    assert fake_kube.get_object("v1", "ConfigMap", "cm", NS) is None
    assert fake_kube.resource_version == before
    assert fake_kube.writes() == []  # dry runs cannot change state
    core.create_namespaced_config_map(NS, {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    core.patch_namespaced_config_map("cm", NS, {"data": {"a": "2"}}, dry_run="All")
    core.delete_namespaced_config_map("cm", NS, dry_run="All")
    assert fake_kube.get_object("v1", "ConfigMap", "cm", NS)["data"] == {"a": "1"}  # type: ignore[index]


def test_invalid_objects_are_422(core: client.CoreV1Api, api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map(NS, {"metadata": {"name": "Bad_Name"}})
    error = status_of(caught.value)
    assert (caught.value.status, error["reason"]) == (422, "Invalid")
    assert error["details"]["causes"][0]["field"] == "metadata.name"
    apps = client.AppsV1Api(api)
    body = deployment()
    body["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(ApiException) as caught:
        apps.create_namespaced_deployment(NS, body)
    assert caught.value.status == 422
    assert "`selector` does not match template `labels`" in status_of(caught.value)["message"]


def test_delete_answers_status_or_the_object(core: client.CoreV1Api) -> None:
    core.create_namespaced_secret(NS, {"metadata": {"name": "s"}})
    answer = core.delete_namespaced_secret("s", NS, propagation_policy="Foreground")
    assert answer["status"] == "Success"
    assert answer["details"]["name"] == "s"
    core.create_namespaced_service_account(NS, {"metadata": {"name": "gitlab-runner"}})
    deleted = core.delete_namespaced_service_account("gitlab-runner", NS)
    assert deleted.metadata.name == "gitlab-runner"  # like the apiserver, returns the object
    with pytest.raises(ApiException) as caught:
        core.delete_namespaced_service_account("gitlab-runner", NS)
    assert caught.value.status == 404


def test_pvc_and_pv(core: client.CoreV1Api) -> None:
    pv = core.create_persistent_volume(
        {
            "metadata": {"name": "gitlab-runner-cache-gitlab-runner"},
            "spec": {
                "capacity": {"storage": "20Gi"},
                "accessModes": ["ReadWriteMany"],
                "nfs": {"server": "nas.example.com", "path": "/"},
            },
        }
    )
    assert pv.spec.persistent_volume_reclaim_policy == "Retain"
    pvc = core.create_namespaced_persistent_volume_claim(
        NS,
        {
            "metadata": {"name": "gitlab-runner-cache-pvc"},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "volumeName": pv.metadata.name,
                "resources": {"requests": {"storage": "20Gi"}},
            },
        },
    )
    assert pvc.status.phase == "Bound"


# -- deployments and the simulated controller ------------------------------------------------


def test_deployment_becomes_ready_with_pods(
    api: client.ApiClient, core: client.CoreV1Api, fake_kube: FakeKube
) -> None:
    apps = client.AppsV1Api(api)
    created = apps.create_namespaced_deployment(NS, deployment())
    assert created.metadata.generation == 1
    assert created.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"  # default
    live = apps.read_namespaced_deployment("runner", NS)
    assert live.status.observed_generation == 1
    assert (live.status.ready_replicas, live.status.available_replicas) == (1, 1)
    conditions = {c.type: (c.status, c.reason) for c in live.status.conditions}
    assert conditions == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }
    pods = core.list_namespaced_pod(NS, label_selector="app=runner").items
    assert [p.status.phase for p in pods] == ["Running"]
    assert pods[0].metadata.owner_references[0].kind == "ReplicaSet"
    assert len(apps.list_namespaced_replica_set(NS).items) == 1

    apps.delete_namespaced_deployment("runner", NS)
    assert fake_kube.objects(kind="Pod", namespace=NS) == []  # garbage collected
    assert fake_kube.objects(kind="ReplicaSet", namespace=NS) == []


def test_generation_moves_with_spec_only(api: client.ApiClient, core: client.CoreV1Api) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(NS, deployment())
    apps.patch_namespaced_deployment("runner", NS, {"metadata": {"labels": {"x": "y"}}})
    assert apps.read_namespaced_deployment("runner", NS).metadata.generation == 1
    apps.patch_namespaced_deployment(
        "runner",
        NS,
        {"spec": {"template": {"spec": {"containers": [{"name": "runner", "image": "r:2"}]}}}},
    )
    live = apps.read_namespaced_deployment("runner", NS)
    assert live.metadata.generation == 2
    assert live.status.observed_generation == 2
    container = live.spec.template.spec.containers[0]
    assert (container.image, container.env[0].name) == ("r:2", "A")  # merged by name


def test_rollout_delay_and_watch(fake_kube: FakeKube, api: client.ApiClient) -> None:
    fake_kube.rollout_delay = 0.3
    fake_kube.add_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    apps = client.AppsV1Api(api)
    created = apps.create_namespaced_deployment(NS, deployment())
    assert not apps.read_namespaced_deployment("runner", NS).status.ready_replicas
    ready_seen = None
    stream = watch.Watch().stream(
        apps.list_namespaced_deployment,
        NS,
        resource_version=created.metadata.resource_version,
        timeout_seconds=5,
    )
    for event in stream:
        if event["type"] == "MODIFIED" and event["object"].status.ready_replicas == 1:
            ready_seen = event["object"]
            break
    assert ready_seen is not None
    assert fake_kube.watches()


def test_never_ready_reports_progress_deadline_exceeded(
    fake_kube: FakeKube, api: client.ApiClient, core: client.CoreV1Api
) -> None:
    fake_kube.never_ready = True
    fake_kube.progress_deadline = 0.2
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(NS, deployment())

    def progressing() -> tuple[str, str]:
        status = apps.read_namespaced_deployment("runner", NS).status
        found = next(c for c in status.conditions if c.type == "Progressing")
        return (found.status, found.reason)

    assert progressing() == ("True", "ReplicaSetUpdated")
    assert wait_until(lambda: progressing() == ("False", "ProgressDeadlineExceeded"))
    status = apps.read_namespaced_deployment("runner", NS).status
    assert not status.ready_replicas
    assert status.unavailable_replicas == 1
    pods = core.list_namespaced_pod(NS).items
    assert [p.status.phase for p in pods] == ["Pending"]
    fake_kube.complete_rollout(NS, "runner")
    assert apps.read_namespaced_deployment("runner", NS).status.ready_replicas == 1


# -- RBAC, access reviews, auth -----------------------------------------------------------------


def test_role_and_rolebinding(api: client.ApiClient, core: client.CoreV1Api) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(
        NS,
        {
            "metadata": {"name": "gitlab-runner"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "create"]}],
        },
    )
    binding = {
        "metadata": {"name": "gitlab-runner"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "gitlab-runner",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "gitlab-runner", "namespace": NS}],
    }
    rbac.create_namespaced_role_binding(NS, binding)
    assert rbac.read_namespaced_role("gitlab-runner", NS).rules[0].verbs == ["get", "create"]
    binding["roleRef"]["name"] = "other"
    with pytest.raises(ApiException) as caught:
        rbac.replace_namespaced_role_binding("gitlab-runner", NS, binding)
    assert caught.value.status == 422
    assert "cannot change roleRef" in status_of(caught.value)["message"]


def test_self_subject_access_review_and_denials(
    fake_kube: FakeKube, api: client.ApiClient, core: client.CoreV1Api
) -> None:
    authz = client.AuthorizationV1Api(api)

    def can(verb: str, resource: str, namespace: str) -> bool:
        review = authz.create_self_subject_access_review(
            {
                "spec": {
                    "resourceAttributes": {
                        "verb": verb,
                        "resource": resource,
                        "namespace": namespace,
                    }
                }
            }
        )
        return bool(review.status.allowed)

    assert can("create", "secrets", NS)
    fake_kube.deny("create", "secrets", namespace=NS)
    assert not can("create", "secrets", NS)
    assert can("create", "secrets", "default")
    assert can("get", "secrets", NS)
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_secret(NS, {"metadata": {"name": "s"}})
    assert caught.value.status == 403
    assert status_of(caught.value)["message"] == (
        'secrets is forbidden: User "fake-user" cannot create resource "secrets" in API group '
        f'"" in the namespace "{NS}"'
    )
    assert fake_kube.writes() == [r for r in fake_kube.writes() if r.status == 403]


def test_required_token(fake_kube: FakeKube, tmp_path: Path) -> None:
    fake_kube.require_token("s3cret")
    bad = config.new_client_from_config(config_file=str(fake_kube.kubeconfig_path))
    with pytest.raises(ApiException) as caught:
        client.CoreV1Api(bad).list_namespace()
    assert (caught.value.status, status_of(caught.value)["reason"]) == (401, "Unauthorized")
    good_path = fake_kube.kubeconfig(tmp_path / "good", token="s3cret")
    good = config.new_client_from_config(config_file=str(good_path))
    assert client.CoreV1Api(good).list_namespace().items
    bad.close()
    good.close()


def test_faults_reach_the_kubernetes_client(fake_kube: FakeKube, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    fake_kube.inject("500", match=("POST", "/configmaps"))
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}})
    assert (caught.value.status, status_of(caught.value)["reason"]) == (500, "InternalError")
    fake_kube.inject("429", match=("POST", "/configmaps"))
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}})
    assert caught.value.status == 429
    assert caught.value.headers["Retry-After"] == "1"
    assert fake_kube.get_object("v1", "ConfigMap", "cm", "default") is None
    core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}})
    assert fake_kube.get_object("v1", "ConfigMap", "cm", "default") is not None


def test_reset_and_delay_as_the_kubernetes_client_sees_them(
    fake_kube: FakeKube, api: client.ApiClient
) -> None:
    core = client.CoreV1Api(api)
    fake_kube.inject("reset", match=("GET", "/namespaces/default$"))
    assert core.read_namespace("default").metadata.name == "default"  # urllib3 retried the GET
    faults = [r.fault for r in fake_kube.requests("GET", "/api/v1/namespaces/default")]
    assert faults == ["reset", None]

    fake_kube.inject("reset", match=("POST", "/configmaps"))
    with pytest.raises(urllib3.exceptions.ProtocolError):  # a POST is not retried
        core.create_namespaced_config_map("default", {"metadata": {"name": "reset"}})
    assert fake_kube.get_object("v1", "ConfigMap", "reset", "default") is None

    fake_kube.inject("delay", match=("POST", "/configmaps"), seconds=0.6)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        core.create_namespaced_config_map(
            "default", {"metadata": {"name": "late"}}, _request_timeout=0.2
        )
    assert fake_kube.get_object("v1", "ConfigMap", "late", "default") is not None


def test_lease_round_trip(api: client.ApiClient) -> None:
    leases = client.CoordinationV1Api(api)
    body = {
        "metadata": {"name": "bootstrap-lock"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 30},
    }
    created = leases.create_namespaced_lease("default", body)
    created.spec.holder_identity = "b"
    replaced = leases.replace_namespaced_lease("bootstrap-lock", "default", created)
    assert replaced.spec.holder_identity == "b"
    created.spec.holder_identity = "c"  # stale resourceVersion: someone else won
    with pytest.raises(ApiException) as caught:
        leases.replace_namespaced_lease("bootstrap-lock", "default", created)
    assert caught.value.status == 409
