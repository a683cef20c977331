"""What keeps the runner pod harmless and a self-signed GitLab reachable, field by field.

Each assertion here killed a mutant that the broader render tests let through (see
docs/mutation.md): flipping one of these booleans or dropping the CA would still render
valid objects.
"""

from __future__ import annotations

import base64
import tomllib
from typing import Any

from bootstrap.render import Credentials, render
from bootstrap.render import names as n
from tests.conftest import make_settings
from tests.unit.test_render import CREDS, GIT_SSH, REGISTRY, _settings


def _by_kind(scenario: str, profile: str = "eci") -> dict[str, dict[str, Any]]:
    rendered = render(_settings(scenario, profile), CREDS)
    return {f"{o.kind}/{o.name}": o.body for o in rendered.objects}


def _pod(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return dict(objects[f"Deployment/{n.DEPLOYMENT}"]["spec"]["template"]["spec"])


def test_the_runner_container_is_never_privileged_nor_root() -> None:
    for profile in ("eci", "kubernetes"):
        pod = _pod(_by_kind("defaults", profile))
        [container] = pod["containers"]
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        }
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_the_service_account_token_is_mounted_only_for_in_cluster_auth() -> None:
    assert _pod(_by_kind("defaults"))["automountServiceAccountToken"] is True
    assert _pod(_by_kind("client-certificate"))["automountServiceAccountToken"] is False


def test_a_self_signed_gitlabs_ca_is_stored_and_used() -> None:
    secret = _by_kind("self-signed-gitlab")[f"Secret/{n.CONFIG_SECRET}"]
    assert base64.b64decode(secret["data"]["ca.crt"]).decode() == CREDS.gitlab_ca
    config = tomllib.loads(base64.b64decode(secret["data"]["config.toml"]).decode())
    assert config["runners"][0]["tls-ca-file"] == "/etc/gitlab-runner/certs/ca.crt"


def test_without_a_ca_file_no_ca_is_stored() -> None:
    secret = _by_kind("defaults")[f"Secret/{n.CONFIG_SECRET}"]
    assert "ca.crt" not in secret["data"]
    config = tomllib.loads(base64.b64decode(secret["data"]["config.toml"]).decode())
    assert "tls-ca-file" not in config["runners"][0]


# --- what the settings ask for is rendered -------------------------------------------------------


def test_pods_roll_when_the_gitlab_ca_changes() -> None:
    settings = _settings("self-signed-gitlab", "eci")
    first = render(settings, CREDS)
    other = render(settings, Credentials(**{**CREDS.__dict__, "gitlab_ca": "another-ca"}))

    def checksum(rendered: Any) -> str:
        [deploy] = [o.body for o in rendered.objects if o.kind == "Deployment"]
        return str(deploy["spec"]["template"]["metadata"]["annotations"][n.ANNOTATION_CHECKSUM])

    assert checksum(first) != checksum(other)


def test_the_namespace_routes_to_eci_only_on_the_eci_profile_when_asked() -> None:
    def namespace(profile: str, route: bool) -> dict[str, Any]:
        settings = make_settings(profile=profile, eci={"route_namespace": route})
        [ns] = [o.body for o in render(settings, CREDS).objects if o.kind == "Namespace"]
        return dict(ns["metadata"])

    routed = namespace("eci", True)
    assert routed["labels"]["alibabacloud.com/eci"] == "true"
    assert "namespace" not in routed, "a Namespace is not namespaced"
    assert "alibabacloud.com/eci" not in namespace("eci", False)["labels"]
    assert "alibabacloud.com/eci" not in namespace("kubernetes", True)["labels"]


def test_the_git_ssh_secret_holds_the_public_key_only_when_one_is_set() -> None:
    def data(git_ssh: dict[str, str]) -> dict[str, str]:
        settings = make_settings(git_ssh=git_ssh)
        [secret] = [o.body for o in render(settings, CREDS).objects if o.name == n.GIT_SSH_SECRET]
        return dict(secret["data"])

    full = data(GIT_SSH)
    assert base64.b64decode(full["id_rsa.pub"]).decode() == CREDS.ssh_public_key
    without = data({k: v for k, v in GIT_SSH.items() if k != "public_key_file"})
    assert "id_rsa.pub" not in without
    assert base64.b64decode(without["id_rsa"]).decode() == CREDS.ssh_private_key.reveal()


def test_an_nfs_cache_volume_points_at_the_server_and_path() -> None:
    settings = _settings("nas-nfs", "eci")
    [volume] = [o.body for o in render(settings, CREDS).objects if o.kind == "PersistentVolume"]
    assert volume["spec"]["nfs"] == {"server": settings.cache.server, "path": settings.cache.path}
    assert "csi" not in volume["spec"]


def test_the_image_cache_keeps_its_retention_only_when_set() -> None:
    def spec(retention: int | None) -> dict[str, Any]:
        settings = make_settings(image_cache={"retention_days": retention})
        [cache] = [o.body for o in render(settings, CREDS).objects if o.kind == "ImageCache"]
        return dict(cache["spec"])

    assert spec(30)["retentionDays"] == 30
    assert "retentionDays" not in spec(None)


def test_the_grace_period_covers_the_drain_and_the_shutdown_with_a_margin() -> None:
    settings = make_settings(runner={"drain_timeout": 100, "shutdown_timeout": 20})
    [deploy] = [o.body for o in render(settings, CREDS).objects if o.kind == "Deployment"]
    assert deploy["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 150


def test_secret_volumes_are_read_only_for_everyone() -> None:
    for scenario in ("defaults", "client-certificate"):
        pod = _pod(_by_kind(scenario))
        modes = {v["name"]: v["secret"].get("defaultMode") for v in pod["volumes"] if "secret" in v}
        assert modes, "the config Secret is mounted"
        assert set(modes.values()) == {0o444}, modes


def test_one_runner_manager_pod_only() -> None:
    # Two replicas would be two managers with one system id, both taking jobs.
    deploy = _by_kind("defaults")[f"Deployment/{n.DEPLOYMENT}"]
    assert deploy["spec"]["replicas"] == 1


def test_the_image_cache_pulls_with_the_registry_secret_only_when_there_is_one() -> None:
    def pull_secrets(registry: dict[str, str] | None) -> Any:
        settings = make_settings(registry=registry) if registry else make_settings()
        [cache] = [o.body for o in render(settings, CREDS).objects if o.kind == "ImageCache"]
        return cache["spec"].get("imagePullSecrets")

    assert pull_secrets(REGISTRY) == [f"gitlab-runner:{n.REGISTRY_SECRET}"]
    assert pull_secrets({"existing_secret": "mine"}) == ["gitlab-runner:mine"]
    assert pull_secrets(None) is None


def test_the_eip_annotation_only_on_eci_when_asked() -> None:
    def annotations(profile: str, eip: bool) -> dict[str, str]:
        settings = make_settings(profile=profile, eci={"with_eip": eip})
        [deploy] = [o.body for o in render(settings, CREDS).objects if o.kind == "Deployment"]
        return dict(deploy["spec"]["template"]["metadata"]["annotations"])

    assert annotations("eci", True)["k8s.aliyun.com/eci-with-eip"] == "true"
    assert "k8s.aliyun.com/eci-with-eip" not in annotations("eci", False)
    assert "k8s.aliyun.com/eci-with-eip" not in annotations("kubernetes", False)


def test_secrets_are_mounted_read_only_and_the_client_certificate_only_when_used() -> None:
    def mounts(scenario: str) -> dict[str, Any]:
        [container] = _pod(_by_kind(scenario))["containers"]
        return {m["name"]: m for m in container["volumeMounts"]}

    def volumes(scenario: str) -> dict[str, Any]:
        return {v["name"]: v for v in _pod(_by_kind(scenario))["volumes"]}

    assert mounts("defaults")["config-secret"]["readOnly"] is True
    assert "kube-client" not in mounts("defaults")
    assert "kube-client" not in volumes("defaults")
    client = mounts("client-certificate")["kube-client"]
    assert client == {"name": "kube-client", "mountPath": n.KUBE_CLIENT_MOUNT, "readOnly": True}
    assert volumes("client-certificate")["kube-client"]["secret"]["secretName"] == (
        n.KUBE_CLIENT_SECRET
    )
