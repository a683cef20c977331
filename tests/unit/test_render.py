"""The rendered deployment: valid for real Kubernetes schemas, safe, and true to the seed."""

from __future__ import annotations

import base64
import json
import re
import tomllib
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bootstrap.config import NAS_MOUNT_OPTIONS, Settings
from bootstrap.render import Credentials, names, render
from bootstrap.render.objects import RUNNER_RULES
from bootstrap.render.runner_config import GROUP_ENTRY, OPS_ENTRY, config_token, replace_token
from bootstrap.secret import Secret
from tests.conftest import DATA, make_settings

KUBE_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]

NAS = {"type": "nas", "server": "0a1b2c.cn-hangzhou.nas.aliyuncs.com"}
REGISTRY = {
    "server": "registry.cn-hangzhou.aliyuncs.com",
    "username": "ci-bot",
    "password_env": "REGISTRY_PASSWORD",
}
GIT_SSH = {
    "private_key_file": "id_rsa",
    "public_key_file": "id_rsa.pub",
    "known_hosts_file": "known_hosts",
}

# Settings variations: each is rendered under both profiles and validated for both versions.
SCENARIOS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "nas-csi": {"cache": NAS},
    "nas-nfs": {"cache": {**NAS, "driver": "nfs", "size": "200Gi"}},
    "existing-pvc": {"cache": {"type": "pvc", "claim_name": "shared-cache"}},
    "s3": {
        "cache": {
            "type": "s3",
            "s3_server_address": "oss-cn-hangzhou.aliyuncs.com",
            "s3_bucket_name": "ci-cache",
            "s3_access_key_env": "OSS_KEY",
            "s3_secret_key_env": "OSS_SECRET",
        }
    },
    "registry": {"registry": REGISTRY},
    "registry-existing": {"registry": {"existing_secret": "my-registry"}},
    "git-ssh": {"git_ssh": GIT_SSH},
    "git-ssh-existing": {"git_ssh": {"existing_secret": "my-ssh"}},
    "everything": {
        "cache": NAS,
        "registry": REGISTRY,
        "git_ssh": GIT_SSH,
        "executor": {
            "node_selector": {"kubernetes.io/arch": "amd64"},
            "tolerations": [{"key": "virtual-kubelet.io/provider", "value": "alibabacloud"}],
            "pod_labels": {"team": "platform"},
            "pod_annotations": {"example.com/owner": "platform team"},
            "volumes": [{"type": "empty_dir", "name": "scratch", "mount_path": "/scratch"}],
        },
        "image_cache": {"extra_images": ["node:20-alpine"], "retention_days": 30},
    },
    "client-certificate": {
        "kubernetes": {
            "runner_auth": "client-certificate",
            "api_host": "https://10.0.0.1:6443",
            "ca_file": "ca.crt",
            "cert_file": "tls.crt",
            "key_file": "tls.key",
        }
    },
    "existing-namespace": {"kubernetes": {"create_namespace": False, "namespace": "ci"}},
    "self-signed-gitlab": {"gitlab": {"url": "https://git.corp.example", "ca_file": "ca.pem"}},
    # Rows for the first real deployment (issue 11): Arm job pods, S3 on OSS with keys,
    # private job images, services sized to the spec, a BuildKit runner, EIP egress.
    "arm64": {"runner": {"helper_arch": "arm64"}},
    "s3-oss": {
        "cache": {
            "type": "s3",
            "s3_server_address": "oss-cn-hangzhou-internal.aliyuncs.com",
            "s3_bucket_name": "ci-cache",
            "s3_bucket_location": "oss-cn-hangzhou",
            "s3_access_key_env": "OSS_KEY",
            "s3_secret_key_env": "OSS_SECRET",
            "s3_authentication": "access-key",
        }
    },
    "registry-pull-secret": {
        "registry": REGISTRY,
        "executor": {"image": "registry.cn-hangzhou.aliyuncs.com/team/ci:1.0"},
    },
    "services": {
        "executor": {
            "service_cpu_request": "1",
            "service_cpu_limit": "2",
            "service_memory_request": "2Gi",
            "service_memory_limit": "4Gi",
        }
    },
    "buildkit-runner": {
        "executor": {"build_allow_privilege_escalation": True},
        "gitlab": {"tags": ["eci-buildkit"]},
        "kubernetes": {"namespace": "gitlab-runner-buildkit"},
    },
}
PROFILES = ["eci", "kubernetes"]

# The ImageCache CRD's schema as ACK documents it (the CRD is not in kubernetes-validate).
IMAGE_CACHE_SPEC_KEYS = {"images", "imagePullSecrets", "imageCacheSize", "retentionDays"}

CREDS = Credentials(
    runner_token="glrt-t1_SecretRunnerTokenValue42",
    ops_runner_token="glrt-t3_SecretOpsRunnerTokenValue7",
    registry_password="registry-Pa55word-xyz",
    ssh_private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nsecretkeymaterial\n-----END",
    ssh_public_key="ssh-ed25519 AAAAC3Nza publickey",
    known_hosts="git.example ssh-ed25519 AAAAC3Nza",
    kube_ca="ca-data",
    kube_cert="cert-data",
    kube_key="client-key-SecretValue",
    gitlab_ca="gitlab-ca-data",
    s3_access_key="AKIDsecretaccess",
    s3_secret_key="s3-secret-key-value",
)


def _settings(scenario: str, profile: str) -> Settings:
    return make_settings(profile=profile, **SCENARIOS[scenario])


MATRIX = [(s, p) for s in SCENARIOS for p in PROFILES]


@pytest.mark.parametrize(("scenario", "profile"), MATRIX)
def test_every_object_passes_strict_kubernetes_schemas(scenario: str, profile: str) -> None:
    rendered = render(_settings(scenario, profile), CREDS)
    for obj in rendered.objects:
        if obj.kind == "ImageCache":
            assert set(obj.body["spec"]) <= IMAGE_CACHE_SPEC_KEYS
            assert obj.namespace is None
            continue
        for version in KUBE_VERSIONS:
            # Raises ValidationError with the offending path when the object is invalid.
            kubernetes_validate.validate(obj.body, version, strict=True)


@pytest.mark.parametrize(("scenario", "profile"), MATRIX)
def test_objects_are_labelled_and_named_as_the_contract_says(scenario: str, profile: str) -> None:
    settings = _settings(scenario, profile)
    rendered = render(settings, CREDS)
    ns = settings.kubernetes.namespace
    refs = {obj.ref for obj in rendered.objects}
    assert {
        "ServiceAccount/gitlab-runner",
        "Role/gitlab-runner",
        "RoleBinding/gitlab-runner",
        "Secret/gitlab-runner-config",
        "Deployment/gitlab-runner",
    } <= refs
    assert ("Namespace/" + ns in refs) == settings.kubernetes.create_namespace
    assert ("Secret/registry-auth-secret" in refs) == bool(settings.registry.server)
    assert ("Secret/gitlab-credentials" in refs) == bool(settings.git_ssh.private_key_file)
    assert ("PersistentVolumeClaim/gitlab-runner-cache-pvc" in refs) == (
        settings.cache.type == "nas"
    )
    assert (f"PersistentVolume/gitlab-runner-cache-{ns}" in refs) == (settings.cache.type == "nas")
    assert (f"ImageCache/gitlab-runner-{ns}" in refs) == (profile == "eci")
    for obj in rendered.objects:
        labels = obj.body["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "gitlab-eci-bootstrap"
        if obj.kind not in ("Namespace", "PersistentVolume", "ImageCache"):
            assert obj.namespace == ns


def test_image_cache_is_left_out_when_the_cluster_lacks_the_crd() -> None:
    rendered = render(make_settings(), CREDS, image_cache_supported=False)
    assert "ImageCache" not in {obj.kind for obj in rendered.objects}


def test_waves_put_dependencies_first() -> None:
    rendered = render(_settings("everything", "eci"), CREDS)
    order = {obj.ref: obj.wave for obj in rendered.objects}
    assert order["Namespace/gitlab-runner"] < order["ServiceAccount/gitlab-runner"]
    assert order["Role/gitlab-runner"] < order["RoleBinding/gitlab-runner"]
    assert (
        order["PersistentVolume/gitlab-runner-cache-gitlab-runner"]
        < order["PersistentVolumeClaim/gitlab-runner-cache-pvc"]
    )
    last = max(order.values())
    assert [ref for ref, wave in order.items() if wave == last] == ["Deployment/gitlab-runner"]


def _text_of(body: dict[str, Any]) -> str:
    return json.dumps(body)


@pytest.mark.parametrize(("scenario", "profile"), MATRIX)
def test_no_secret_value_leaves_a_secret(scenario: str, profile: str) -> None:
    rendered = render(_settings(scenario, profile), CREDS)
    for obj in rendered.objects:
        if obj.is_secret:
            continue
        text = _text_of(obj.body)
        for secret in CREDS.secret_values():
            assert secret not in text, f"{obj.ref} holds a secret value"
            assert base64.b64encode(secret.encode()).decode() not in text
    assert "ConfigMap" not in {obj.kind for obj in rendered.objects}


def test_the_token_lives_in_the_config_secret_only() -> None:
    rendered = render(make_settings(), CREDS)
    holders = [o.ref for o in rendered.objects if CREDS.runner_token.reveal() in _decoded(o.body)]
    assert holders == ["Secret/gitlab-runner-config"]


def _decoded(body: dict[str, Any]) -> str:
    text = json.dumps(body)
    for value in (body.get("data") or {}).values():
        text += base64.b64decode(value).decode()
    return text


@pytest.mark.parametrize(("scenario", "profile"), MATRIX)
def test_every_image_is_pinned(scenario: str, profile: str) -> None:
    rendered = render(_settings(scenario, profile), CREDS)
    images = re.findall(r"[\w./-]+:[\w.-]+", rendered.config_toml)
    images += [c["image"] for c in _containers(rendered)]
    for obj in rendered.objects:
        if obj.kind == "ImageCache":
            images += obj.body["spec"]["images"]
    assert images
    for image in images:
        assert not image.endswith(":latest"), image
    assert ":latest" not in rendered.config_toml
    for obj in rendered.objects:
        assert ":latest" not in _decoded(obj.body)


def _containers(rendered: Any) -> list[dict[str, Any]]:
    deploy = next(o for o in rendered.objects if o.kind == "Deployment")
    return list(deploy.body["spec"]["template"]["spec"]["containers"])


def test_role_holds_exactly_the_executor_rules_without_wildcards() -> None:
    expected = {
        ("pods", ("create", "delete", "get", "list", "watch")),
        ("pods/attach", ("create", "delete", "get", "patch")),
        ("pods/exec", ("create", "delete", "get", "patch")),
        ("pods/log", ("get", "list")),
        ("events", ("list",)),
        ("secrets", ("create", "delete", "get", "update")),
        ("serviceaccounts", ("get",)),
        ("services", ("create", "get")),
    }
    role = next(o for o in render(make_settings(), CREDS).objects if o.kind == "Role")
    got = set()
    for rule in role.body["rules"]:
        assert rule["apiGroups"] == [""]
        for resource in rule["resources"]:
            got.add((resource, tuple(sorted(rule["verbs"]))))
    assert got == expected
    assert "*" not in json.dumps(RUNNER_RULES)


# --- config.toml ---------------------------------------------------------------------------


def _reference_tables() -> dict[str, dict[str, str]]:
    keys = json.loads((DATA / "runner-config-keys.json").read_text())
    return dict(keys["v18"]["tables"])


FREE_KEY_TABLES = {
    "runners.feature_flags",
    "runners.kubernetes.pod_annotations",
    "runners.kubernetes.pod_labels",
    "runners.kubernetes.node_selector",
    "runners.kubernetes.node_tolerations",
    "runners.kubernetes.volumes.secret.items",
}


def _walk(
    table: dict[str, Any], path: str, tables: dict[str, dict[str, str]], seen: list[str]
) -> None:
    ref_path = path or "(root)"
    if ref_path not in tables and f"{ref_path}[]" in tables:
        ref_path = f"{ref_path}[]"
    assert ref_path in tables, f"[{path}] is not a table gitlab-runner v18 knows"
    allowed = tables[ref_path]
    for key, value in table.items():
        full = f"{path}.{key}" if path else key
        assert key in allowed, f"{full} is not a gitlab-runner v18 config key"
        seen.append(full)
        if full in FREE_KEY_TABLES:
            continue
        if isinstance(value, dict):
            _walk(value, full, tables, seen)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                _walk(item, full, tables, seen)


@pytest.mark.parametrize(("scenario", "profile"), MATRIX)
def test_config_toml_keys_exist_in_gitlab_runner_v18(scenario: str, profile: str) -> None:
    rendered = render(_settings(scenario, profile), CREDS)
    doc = tomllib.loads(rendered.config_toml)
    seen: list[str] = []
    _walk(doc, "", _reference_tables(), seen)
    assert "runners.kubernetes.namespace" in seen


def test_feature_flags_are_real_flags() -> None:
    keys = json.loads((DATA / "runner-config-keys.json").read_text())
    flags = set(keys["v18"]["feature_flags"])
    doc = tomllib.loads(render(make_settings(), CREDS).config_toml)
    assert set(doc["runners"][0]["feature_flags"]) <= flags
    assert doc["runners"][0]["feature_flags"]["FF_DISABLE_AUTOMATIC_TOKEN_ROTATION"] is True


def test_config_toml_follows_the_seed() -> None:
    settings = _settings("everything", "eci")
    doc = tomllib.loads(render(settings, CREDS).config_toml)
    assert doc["concurrent"] == 10
    runner = doc["runners"][0]
    assert runner["executor"] == "kubernetes"
    assert runner["token"] == CREDS.runner_token.reveal()
    assert runner["output_limit"] == 51200
    kube = runner["kubernetes"]
    assert "host" not in kube, "in-cluster auth by default"
    assert kube["namespace"] == "gitlab-runner"
    assert kube["pull_policy"] == "if-not-present"
    assert kube["helper_image"].endswith(":x86_64-v18.11.4")
    # build + helper fill 2 vCPU / 4 GiB exactly (the seed's 2 + 0.5 / 4 + 1 billed 4 / 8)
    assert (kube["cpu_request"], kube["memory_limit"]) == ("1500m", "3Gi")
    assert kube["pod_annotations"]["k8s.aliyun.com/eci-auto-imc"] == "true"
    volumes = kube["volumes"]
    assert {"name": "gitlab-runner-cache-pvc", "mount_path": "/cache"} in volumes["pvc"]
    secrets = {v["name"]: v for v in volumes["secret"]}
    assert secrets["registry-auth-secret"]["mount_path"] == "/kaniko/.docker"
    assert secrets["registry-auth-secret"]["items"] == {".dockerconfigjson": "config.json"}
    assert secrets["gitlab-credentials"] == {
        "name": "gitlab-credentials",
        "mount_path": "/root/gitlab-credentials",
        "read_only": True,
    }
    assert kube["node_tolerations"] == {"virtual-kubelet.io/provider=alibabacloud": "NoSchedule"}


def test_kubernetes_profile_has_no_eci_annotations() -> None:
    doc = tomllib.loads(render(make_settings(profile="kubernetes"), CREDS).config_toml)
    annotations = doc["runners"][0]["kubernetes"].get("pod_annotations", {})
    assert not [k for k in annotations if "aliyun" in k]


def test_eci_options_become_pod_annotations() -> None:
    settings = make_settings(
        eci={"use_specs": ["2-4Gi", "ecs.c6.xlarge"], "spot_strategy": "SpotAsPriceGo"}
    )
    kube = tomllib.loads(render(settings, CREDS).config_toml)["runners"][0]["kubernetes"]
    assert kube["pod_annotations"]["k8s.aliyun.com/eci-use-specs"] == "2-4Gi,ecs.c6.xlarge"
    assert kube["pod_annotations"]["k8s.aliyun.com/eci-spot-strategy"] == "SpotAsPriceGo"


def test_client_certificate_mode_uses_the_seeds_three_files_from_a_secret() -> None:
    rendered = render(_settings("client-certificate", "eci"), CREDS)
    kube = tomllib.loads(rendered.config_toml)["runners"][0]["kubernetes"]
    assert kube["host"] == "https://10.0.0.1:6443"
    assert {kube["ca_file"], kube["cert_file"], kube["key_file"]} == {
        "/secrets/kube-client/ca.crt",
        "/secrets/kube-client/tls.crt",
        "/secrets/kube-client/tls.key",
    }
    secret = rendered.by_ref()[("Secret", "gitlab-runner", "gitlab-runner-kube-client")]
    assert base64.b64decode(secret.body["data"]["tls.key"]).decode() == CREDS.kube_key.reveal()


def test_s3_cache_reads_keys_from_credentials() -> None:
    doc = tomllib.loads(render(_settings("s3", "eci"), CREDS).config_toml)
    cache = doc["runners"][0]["cache"]
    assert cache["Type"] == "s3"
    assert cache["s3"]["AccessKey"] == CREDS.s3_access_key.reveal()


# --- Deployment ----------------------------------------------------------------------------


def _deployment(settings: Settings, creds: Credentials = CREDS) -> dict[str, Any]:
    rendered = render(settings, creds)
    return next(o.body for o in rendered.objects if o.kind == "Deployment")


def test_deployment_drains_gracefully_and_rolls_without_downtime() -> None:
    settings = make_settings(runner={"shutdown_timeout": 60, "drain_timeout": 1800})
    spec = _deployment(settings)["spec"]
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 60 + 1800
    container = pod["containers"][0]
    assert 'kill -QUIT "$pid"' in " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    assert container["image"] == "registry.gitlab.com/gitlab-org/gitlab-runner:alpine-v18.11.4"


def test_deployment_is_locked_down() -> None:
    pod = _deployment(make_settings())["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["limits"]
    assert container["resources"]["requests"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/metrics"  # local, never the GitLab API
        assert container[probe]["periodSeconds"] >= 10


def test_config_is_copied_to_a_writable_dir_with_a_stable_system_id() -> None:
    settings = make_settings()
    pod = _deployment(settings)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    script = container["args"][0]
    assert "cp /secrets/gitlab-runner/config.toml /etc/gitlab-runner/config.toml" in script
    assert ".runner_system_id" in script
    system_id = next(e["value"] for e in container["env"] if e["name"] == "RUNNER_SYSTEM_ID")
    assert re.fullmatch(r"[sr]_[0-9a-zA-Z]{12}", system_id)
    assert system_id == names.system_id(make_settings())
    other = make_settings(kubernetes={"namespace": "other"})
    assert names.system_id(other) != system_id
    writable = {v["name"]: v for v in pod["volumes"]}["config"]
    assert "emptyDir" in writable


def test_a_config_change_changes_the_pod_template_checksum() -> None:
    def checksum(settings: Settings, creds: Credentials = CREDS) -> str:
        template = _deployment(settings, creds)["spec"]["template"]
        return str(template["metadata"]["annotations"]["gitlab-eci-bootstrap/config-checksum"])

    base = checksum(make_settings())
    assert base == checksum(make_settings())
    assert base != checksum(make_settings(runner={"concurrent": 20}))
    new_token = Credentials(runner_token="glrt-another-token-value")
    assert base != checksum(make_settings(), new_token)


def test_nas_volume_is_shared_retained_and_mounted_like_the_seed() -> None:
    rendered = render(_settings("nas-csi", "eci"), CREDS)
    pv = rendered.by_ref()[("PersistentVolume", None, "gitlab-runner-cache-gitlab-runner")].body
    pvc = rendered.by_ref()[
        ("PersistentVolumeClaim", "gitlab-runner", "gitlab-runner-cache-pvc")
    ].body
    assert pv["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["spec"]["mountOptions"] == list(NAS_MOUNT_OPTIONS)
    assert pv["spec"]["csi"]["driver"] == "nasplugin.csi.alibabacloud.com"
    assert pvc["spec"]["volumeName"] == pv["metadata"]["name"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_registry_secret_is_a_docker_config_for_kaniko() -> None:
    rendered = render(_settings("registry", "eci"), CREDS)
    secret = rendered.by_ref()[("Secret", "gitlab-runner", "registry-auth-secret")].body
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    entry = config["auths"]["registry.cn-hangzhou.aliyuncs.com"]
    assert entry["username"] == "ci-bot"
    assert base64.b64decode(entry["auth"]).decode() == f"ci-bot:{CREDS.registry_password.reveal()}"


def test_rendered_yaml_round_trips() -> None:
    from bootstrap.manifests import multi_document

    rendered = render(_settings("everything", "eci"), CREDS)
    docs = [d for d in yaml.safe_load_all(multi_document(rendered.objects)) if d]
    assert docs == [obj.body for obj in rendered.objects]


def test_rotator_role_reaches_only_the_secret_the_deployment_and_the_lock() -> None:
    rendered = render(make_settings(), CREDS)
    role = rendered.by_ref()[("Role", "gitlab-runner", "gitlab-runner-rotator")].body
    grants = set()
    for rule in role["rules"]:
        names = rule.get("resourceNames") or ["*"]
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    grants.add((verb, group, resource, names[0]))
    lease = ("coordination.k8s.io", "leases")
    assert grants == {
        ("get", "", "secrets", "gitlab-runner-config"),
        ("patch", "", "secrets", "gitlab-runner-config"),
        ("get", "apps", "deployments", "gitlab-runner"),
        ("patch", "apps", "deployments", "gitlab-runner"),
        # its lock: RBAC cannot limit create by name; the rest is limited to the one Lease
        ("create", *lease, "*"),
        ("get", *lease, "gitlab-eci-bootstrap"),
        ("update", *lease, "gitlab-eci-bootstrap"),
        ("delete", *lease, "gitlab-eci-bootstrap"),
    }
    binding = rendered.by_ref()[("RoleBinding", "gitlab-runner", "gitlab-runner-rotator")].body
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "gitlab-runner-rotator", "namespace": "gitlab-runner"}
    ]


def test_only_the_sealed_ops_entry_runs_jobs_as_the_rotator() -> None:
    settings = _settings("everything", "eci")
    group, ops = tomllib.loads(render(settings, CREDS).config_toml)["runners"]
    # No job of the group can ask for another ServiceAccount: gitlab-runner ignores
    # KUBERNETES_SERVICE_ACCOUNT_OVERWRITE when the allowed pattern is empty.
    assert "service_account_overwrite_allowed" not in group["kubernetes"]
    assert group["kubernetes"].get("service_account") != "gitlab-runner-rotator"
    assert (ops["name"], ops["token"], ops["limit"]) == (
        "default-gitlab-runner-rotation",
        CREDS.ops_runner_token.reveal(),
        1,
    )
    kube = ops["kubernetes"]
    assert kube["service_account"] == "gitlab-runner-rotator"
    assert "service_account_overwrite_allowed" not in kube
    assert kube["automount_service_account_token"] is True
    # None of the group entry's secrets reach the rotation job's pod.
    assert not {"volumes", "image_pull_secrets"} & set(kube)
    assert "cache" not in ops
    assert ops["feature_flags"]["FF_DISABLE_AUTOMATIC_TOKEN_ROTATION"] is True


def test_no_entry_records_a_token_expiry_the_runner_would_act_on() -> None:
    # gitlab-runner v18.11.4 schedules its own renewal only for entries with
    # token_expires_at; with FF_DISABLE_AUTOMATIC_TOKEN_ROTATION its renewal goroutine then
    # returns for good, and the next config reloads block on the channel only it drains
    # (commands/multi.go:199,341-348,374,431; docs/rotation.md). So neither the rendered
    # file nor rotate's rewrite of it may carry one.
    config = render(_settings("everything", "eci"), CREDS).config_toml
    rotated = replace_token(config, Secret("glrt-t1_RotatedTokenValue000000"), OPS_ENTRY).reveal()
    for text in (config, rotated):
        entries = tomllib.loads(text)["runners"]
        assert len(entries) == 2
        for entry in entries:
            assert not {"token_expires_at", "token_obtained_at"} & set(entry)


def test_without_in_cluster_rotation_there_is_no_rotator_and_no_ops_entry() -> None:
    rendered = render(make_settings(rotation={"in_cluster": False}), CREDS)
    assert not [o for o in rendered.objects if o.name == "gitlab-runner-rotator"]
    [runner] = tomllib.loads(rendered.config_toml)["runners"]
    assert "service_account_overwrite_allowed" not in runner["kubernetes"]


def test_a_token_is_replaced_in_its_own_entry_only() -> None:
    config = render(make_settings(), CREDS).config_toml
    changed = replace_token(config, Secret("glrt-new-ops-token-value"), OPS_ENTRY)
    assert config_token(changed.reveal(), OPS_ENTRY) == Secret("glrt-new-ops-token-value")
    assert config_token(changed.reveal(), GROUP_ENTRY) == CREDS.runner_token
    again = replace_token(changed.reveal(), CREDS.ops_runner_token, OPS_ENTRY)
    assert again.reveal() == config, "the same bytes install renders"
