"""config.toml as gitlab-runner reads it: every key and value, per setting.

Written for the survivors of ``scripts/mutation bootstrap/render/runner_config.py``
(docs/mutation.md). What each key means to gitlab-runner is in
shared/reference/RUNNER-FACTS.md; the names exist in its config structs
(``test_config_toml_keys_exist_in_gitlab_runner_v18``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from bootstrap.config import Settings
from bootstrap.render import Credentials
from bootstrap.render.runner_config import (
    GROUP_ENTRY,
    OPS_ENTRY,
    config_problem,
    config_token,
    has_ops_entry,
    render_config_toml,
    replace_token,
)
from bootstrap.secret import Secret
from tests.conftest import make_settings

CREDS = Credentials(
    runner_token=Secret("glrt-group-token-value"),
    ops_runner_token=Secret("glrt-ops-token-value"),
    s3_access_key=Secret("AKID-access"),
    s3_secret_key=Secret("s3-secret"),
)
ROTATED = Secret("glrt-rotated")
HELPER = "registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper"

# Every resource a different value: a key filled from its neighbour's setting shows.
RESOURCES = {
    "cpu_request": "1100m",
    "cpu_limit": "1200m",
    "memory_request": "1100Mi",
    "memory_limit": "1200Mi",
    "helper_cpu_request": "210m",
    "helper_cpu_limit": "220m",
    "helper_memory_request": "210Mi",
    "helper_memory_limit": "220Mi",
    "service_cpu_request": "310m",
    "service_cpu_limit": "320m",
    "service_memory_request": "310Mi",
    "service_memory_limit": "320Mi",
}


def _doc(settings: Settings, creds: Credentials = CREDS) -> dict[str, Any]:
    return tomllib.loads(render_config_toml(settings, creds))


def _group(settings: Settings, creds: Credentials = CREDS) -> dict[str, Any]:
    return dict(_doc(settings, creds)["runners"][GROUP_ENTRY])


def _ops(settings: Settings, creds: Credentials = CREDS) -> dict[str, Any]:
    return dict(_doc(settings, creds)["runners"][OPS_ENTRY])


# --- the whole file, for the defaults ----------------------------------------------------------


def test_the_default_config_toml_is_exactly_this() -> None:
    """Global keys (RUNNER-FACTS §1), both entries, each key gitlab-runner reads from them."""
    doc = _doc(make_settings(profile="kubernetes"))
    kube = {
        "namespace": "gitlab-runner",
        "image": "alpine:3.21.3",
        "pull_policy": "if-not-present",
        "helper_image": f"{HELPER}:x86_64-v18.11.4",
    }
    group = {
        "name": "default-gitlab-runner",
        "url": "https://gitlab.com",
        "token": "glrt-group-token-value",
        "executor": "kubernetes",
        "output_limit": 51200,
        "cache_dir": "/cache",
        "feature_flags": {"FF_DISABLE_AUTOMATIC_TOKEN_ROTATION": True},
        "kubernetes": {
            **kube,
            "cpu_request": "1500m",
            "cpu_limit": "1500m",
            "memory_request": "3Gi",
            "memory_limit": "3Gi",
            "helper_cpu_request": "500m",
            "helper_cpu_limit": "500m",
            "helper_memory_request": "1Gi",
            "helper_memory_limit": "1Gi",
            "service_cpu_request": "500m",
            "service_cpu_limit": "2",
            "service_memory_request": "512Mi",
            "service_memory_limit": "4Gi",
            "poll_timeout": 600,
            "privileged": False,
            "allow_privilege_escalation": False,
        },
    }
    ops = {
        "name": "default-gitlab-runner-rotation",
        "url": "https://gitlab.com",
        "token": "glrt-ops-token-value",
        "executor": "kubernetes",
        "limit": 1,
        "output_limit": 51200,
        "feature_flags": {"FF_DISABLE_AUTOMATIC_TOKEN_ROTATION": True},
        "kubernetes": {
            **kube,
            "cpu_request": "500m",
            "memory_request": "1Gi",
            "helper_cpu_request": "500m",
            "helper_memory_request": "1Gi",
            "poll_timeout": 600,
            "privileged": False,
            "allow_privilege_escalation": False,
            "service_account": "gitlab-runner-rotator",
            "automount_service_account_token": True,
        },
    }
    assert doc == {
        "concurrent": 10,
        "check_interval": 3,
        "log_level": "info",
        "shutdown_timeout": 30,
        # The probes read the metrics endpoint; gitlab-runner needs a restart to move it.
        "listen_address": ":9252",
        "runners": [group, ops],
    }


def test_the_file_starts_with_the_managed_header() -> None:
    text = render_config_toml(make_settings(), CREDS)
    assert text.startswith("# Managed by gitlab-eci-bootstrap: `bootstrap install` rewrites")
    assert "`bootstrap rotate` renews the token" in text.split("concurrent =")[0]


def test_global_settings_reach_the_global_keys() -> None:
    settings = make_settings(
        runner={"concurrent": 7, "check_interval": 9, "log_level": "warn", "shutdown_timeout": 45}
    )
    doc = _doc(settings)
    assert (doc["concurrent"], doc["check_interval"], doc["log_level"]) == (7, 9, "warn")
    assert doc["shutdown_timeout"] == 45


def test_every_container_resource_comes_from_its_own_setting() -> None:
    settings = make_settings(profile="kubernetes", executor={**RESOURCES, "poll_timeout": 321})
    kube = _group(settings)["kubernetes"]
    assert {key: kube[key] for key in RESOURCES} == RESOURCES
    assert kube["poll_timeout"] == 321


def test_the_job_image_pull_policy_and_helper_follow_the_settings() -> None:
    settings = make_settings(
        kubernetes={"namespace": "ci-jobs"},
        executor={"image": "debian:12.7", "pull_policy": ["always", "if-not-present"]},
        runner={"helper_image_repository": "mirror.example.com/helper", "version": "18.10.1"},
    )
    for entry in _doc(settings)["runners"]:
        kube = entry["kubernetes"]
        assert kube["namespace"] == "ci-jobs"
        assert kube["image"] == "debian:12.7"
        assert kube["pull_policy"] == ["always", "if-not-present"]
        assert kube["helper_image"] == "mirror.example.com/helper:x86_64-v18.10.1"


def test_a_self_signed_gitlab_is_trusted_by_both_entries(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = make_settings(gitlab={"url": "https://git.corp.example", "ca_file": str(ca)})
    group, ops = _doc(settings)["runners"]
    for entry in (group, ops):
        assert entry["url"] == "https://git.corp.example"
        assert entry["tls-ca-file"] == "/etc/gitlab-runner/certs/ca.crt"
    assert "tls-ca-file" not in _group(make_settings())


# --- job pods: annotations, labels, placement ---------------------------------------------------


def test_eci_annotations_follow_each_setting() -> None:
    settings = make_settings(
        eci={"spot_strategy": "SpotWithPriceLimit", "spot_price_limit": 0.25, "with_eip": True},
        executor={"pod_annotations": {"example.com/team": "platform"}},
    )
    assert _group(settings)["kubernetes"]["pod_annotations"] == {
        "k8s.aliyun.com/eci-auto-imc": "true",
        "k8s.aliyun.com/eci-spot-strategy": "SpotWithPriceLimit",
        "k8s.aliyun.com/eci-spot-price-limit": "0.25",
        "k8s.aliyun.com/eci-with-eip": "true",
        "example.com/team": "platform",
    }


def test_a_price_limit_is_written_only_with_its_strategy() -> None:
    settings = make_settings(eci={"spot_strategy": "SpotAsPriceGo", "spot_price_limit": 0.25})
    annotations = _group(settings)["kubernetes"]["pod_annotations"]
    assert annotations["k8s.aliyun.com/eci-spot-strategy"] == "SpotAsPriceGo"
    assert "k8s.aliyun.com/eci-spot-price-limit" not in annotations


def test_without_an_image_cache_eci_makes_none_per_job() -> None:
    settings = make_settings(image_cache={"enabled": False})
    assert "pod_annotations" not in _group(settings)["kubernetes"]
    assert "pod_annotations" not in _ops(settings)["kubernetes"]


def test_the_users_annotations_and_labels_reach_job_pods_on_any_profile() -> None:
    settings = make_settings(
        profile="kubernetes",
        executor={"pod_annotations": {"example.com/a": "1"}, "pod_labels": {"team": "web"}},
    )
    kube = _group(settings)["kubernetes"]
    assert kube["pod_annotations"] == {"example.com/a": "1"}
    assert kube["pod_labels"] == {"team": "web"}
    # The rotation job's pod carries the annotations (ECI needs them) but no team labels.
    ops = _ops(settings)["kubernetes"]
    assert ops["pod_annotations"] == {"example.com/a": "1"}
    assert "pod_labels" not in ops


def test_tolerations_use_gitlab_runners_key_value_form() -> None:
    settings = make_settings(
        executor={
            "tolerations": [
                {"key": "dedicated", "value": "ci", "effect": "NoExecute"},
                {"key": "virtual-kubelet.io/provider", "operator": "Exists"},
            ]
        }
    )
    assert _group(settings)["kubernetes"]["node_tolerations"] == {
        "dedicated=ci": "NoExecute",
        "virtual-kubelet.io/provider": "NoSchedule",
    }


def test_arm64_job_pods_keep_the_users_placement_and_so_does_the_rotation_job() -> None:
    settings = make_settings(
        runner={"helper_arch": "arm64"},
        executor={
            "node_selector": {"pool": "ci"},
            "tolerations": [{"key": "kubernetes.io/arch", "value": "arm64", "effect": "NoExecute"}],
        },
    )
    for entry in _doc(settings)["runners"]:
        kube = entry["kubernetes"]
        assert kube["node_selector"] == {"pool": "ci", "kubernetes.io/arch": "arm64"}
        # The user's own effect for the arch taint wins over the default NoSchedule.
        assert kube["node_tolerations"] == {"kubernetes.io/arch=arm64": "NoExecute"}
        assert kube["helper_image"].endswith(":arm64-v18.11.4")


def test_on_x86_nothing_is_added_to_the_placement() -> None:
    kube = _group(make_settings())["kubernetes"]
    assert not {"node_selector", "node_tolerations"} & set(kube)
    kube = _group(make_settings(executor={"node_selector": {"pool": "ci"}}))["kubernetes"]
    assert kube["node_selector"] == {"pool": "ci"}
    assert "node_tolerations" not in kube


def test_job_pods_run_as_the_service_account_asked_for() -> None:
    kube = _group(make_settings(executor={"service_account": "ci-jobs"}))["kubernetes"]
    assert kube["service_account"] == "ci-jobs"
    assert "service_account" not in _group(make_settings())["kubernetes"]


# --- volumes --------------------------------------------------------------------------------------


def test_an_existing_claim_is_mounted_as_the_cache_dir() -> None:
    settings = make_settings(cache={"type": "pvc", "claim_name": "shared-cache"})
    volumes = _group(settings)["kubernetes"]["volumes"]
    assert volumes == {"pvc": [{"name": "shared-cache", "mount_path": "/cache"}]}


def test_a_nas_cache_is_mounted_through_its_own_claim() -> None:
    settings = make_settings(cache={"type": "nas", "server": "0a1b.cn-hangzhou.nas.aliyuncs.com"})
    volumes = _group(settings)["kubernetes"]["volumes"]
    assert volumes == {"pvc": [{"name": "gitlab-runner-cache-pvc", "mount_path": "/cache"}]}


def test_without_a_shared_cache_no_volume_is_mounted() -> None:
    for cache in ({"type": "none"}, {"type": "s3", **S3}):
        assert "volumes" not in _group(make_settings(cache=cache))["kubernetes"]


def test_existing_secrets_are_mounted_and_pulled_by_their_own_names() -> None:
    settings = make_settings(
        registry={"existing_secret": "my-registry"}, git_ssh={"existing_secret": "my-ssh"}
    )
    kube = _group(settings)["kubernetes"]
    assert kube["volumes"]["secret"] == [
        {
            "name": "my-registry",
            "mount_path": "/kaniko/.docker",
            "read_only": True,
            "items": {".dockerconfigjson": "config.json"},
        },
        {"name": "my-ssh", "mount_path": "/root/gitlab-credentials", "read_only": True},
    ]
    assert kube["image_pull_secrets"] == ["my-registry"]


def test_extra_volumes_keep_sub_path_and_read_only() -> None:
    settings = make_settings(
        executor={
            "volumes": [
                {"type": "config_map", "name": "ca", "mount_path": "/ca", "read_only": True},
                {"type": "pvc", "name": "data", "mount_path": "/data", "sub_path": "ci"},
                {"type": "config_map", "name": "cfg", "mount_path": "/cfg"},
                {"type": "empty_dir", "name": "scratch", "mount_path": "/scratch"},
            ]
        }
    )
    assert _group(settings)["kubernetes"]["volumes"] == {
        "config_map": [
            {"name": "ca", "mount_path": "/ca", "read_only": True},
            {"name": "cfg", "mount_path": "/cfg"},
        ],
        "pvc": [{"name": "data", "mount_path": "/data", "sub_path": "ci"}],
        "empty_dir": [{"name": "scratch", "mount_path": "/scratch"}],
    }


def test_the_rotation_job_mounts_none_of_the_group_entrys_volumes() -> None:
    settings = make_settings(
        cache={"type": "pvc", "claim_name": "shared-cache"},
        registry={"existing_secret": "my-registry"},
        executor={"volumes": [{"type": "empty_dir", "name": "x", "mount_path": "/x"}]},
    )
    ops = _ops(settings)
    assert not {"volumes", "image_pull_secrets"} & set(ops["kubernetes"])
    assert "cache_dir" not in ops


# --- the S3 cache ---------------------------------------------------------------------------

S3 = {
    "s3_server_address": "oss-cn-hangzhou.aliyuncs.com",
    "s3_bucket_name": "ci-cache",
    "s3_access_key_env": "OSS_KEY",
    "s3_secret_key_env": "OSS_SECRET",
}


def test_an_s3_cache_with_keys() -> None:
    settings = make_settings(
        cache={"type": "s3", **S3, "s3_bucket_location": "oss-cn-hangzhou", "shared": False}
    )
    assert _group(settings)["cache"] == {
        "Type": "s3",
        "Shared": False,
        "s3": {
            "ServerAddress": "oss-cn-hangzhou.aliyuncs.com",
            "BucketName": "ci-cache",
            "BucketLocation": "oss-cn-hangzhou",
            "AccessKey": "AKID-access",
            "SecretKey": "s3-secret",
        },
    }


def test_an_insecure_s3_cache_over_plain_http() -> None:
    settings = make_settings(profile="kubernetes", cache={"type": "s3", **S3, "s3_insecure": True})
    s3 = _group(settings)["cache"]["s3"]
    assert s3["Insecure"] is True
    assert "BucketLocation" not in s3
    assert "Insecure" not in _group(make_settings(cache={"type": "s3", **S3}))["cache"]["s3"]


def test_an_iam_s3_cache_carries_no_keys() -> None:
    settings = make_settings(
        profile="kubernetes",
        cache={
            "type": "s3",
            "s3_server_address": "s3.amazonaws.com",
            "s3_bucket_name": "ci-cache",
            "s3_authentication": "iam",
        },
    )
    cache = _group(settings)["cache"]
    assert cache["Shared"] is True
    assert cache["s3"] == {
        "ServerAddress": "s3.amazonaws.com",
        "BucketName": "ci-cache",
        "AuthenticationType": "iam",
    }


def test_no_cache_table_without_s3() -> None:
    for cache in ({"type": "none"}, {"type": "pvc", "claim_name": "c"}):
        assert "cache" not in _group(make_settings(cache=cache))


# --- the rotation entry ---------------------------------------------------------------------


def test_the_rotation_entry_needs_in_cluster_rotation_and_its_token() -> None:
    on, off = make_settings(), make_settings(rotation={"in_cluster": False})
    no_token = Credentials(runner_token=Secret("glrt-group-token-value"))
    assert has_ops_entry(on, CREDS)
    assert not has_ops_entry(on, no_token)
    assert not has_ops_entry(off, CREDS)
    assert len(_doc(on, no_token)["runners"]) == 1
    assert len(_doc(off)["runners"]) == 1


def test_the_rotation_job_is_sized_like_a_helper_and_shares_the_settings() -> None:
    settings = make_settings(
        executor={**RESOURCES, "poll_timeout": 321}, runner={"output_limit": 2048}
    )
    ops = _ops(settings)
    assert ops["output_limit"] == 2048
    kube = ops["kubernetes"]
    assert (kube["cpu_request"], kube["memory_request"]) == ("210m", "210Mi")
    assert (kube["helper_cpu_request"], kube["helper_memory_request"]) == ("210m", "210Mi")
    assert kube["poll_timeout"] == 321
    assert not {"cpu_limit", "memory_limit"} & set(kube)


# --- replace_token, config_problem, config_token --------------------------------------------------


def test_replace_token_keeps_the_header_and_everything_else() -> None:
    config = render_config_toml(make_settings(), CREDS)
    changed = replace_token(config, ROTATED).reveal()
    assert changed.startswith("# Managed by gitlab-eci-bootstrap")
    before, after = tomllib.loads(config), tomllib.loads(changed)
    assert after["runners"][GROUP_ENTRY]["token"] == "glrt-rotated"
    after["runners"][GROUP_ENTRY]["token"] = CREDS.runner_token.reveal()
    assert after == before


def test_replace_token_in_a_single_entry_file() -> None:
    config = render_config_toml(make_settings(rotation={"in_cluster": False}), CREDS)
    changed = replace_token(config, ROTATED).reveal()
    assert config_token(changed, GROUP_ENTRY).reveal() == "glrt-rotated"
    with pytest.raises(ValueError, match="expected entry 1 of one or two"):
        replace_token(config, ROTATED, OPS_ENTRY)


@pytest.mark.parametrize(
    ("config", "count"),
    [("concurrent = 1\n", 0), ("runners = []\n", 0), (3 * '[[runners]]\ntoken = "a"\n', 3)],
)
def test_replace_token_refuses_a_file_without_one_or_two_entries(config: str, count: int) -> None:
    with pytest.raises(ValueError, match=f"one or two \\[\\[runners\\]\\], found {count}$"):
        replace_token(config, ROTATED)


@pytest.mark.parametrize(
    ("config", "entry", "problem"),
    [
        ("[[runners]\n", GROUP_ENTRY, "it is not valid TOML ("),
        ("concurrent = 1\n", GROUP_ENTRY, "it has 0 [[runners]] entries, not one or two"),
        ('runners = "x"\n', GROUP_ENTRY, "it has 0 [[runners]] entries, not one or two"),
        ("runners = []\n", GROUP_ENTRY, "it has 0 [[runners]] entries, not one or two"),
        (3 * '[[runners]]\ntoken = "a"\n', GROUP_ENTRY, "it has 3 [[runners]] entries"),
        ('[[runners]]\ntoken = "a"\n', OPS_ENTRY, "it has no [[runners]] entry number 2"),
        ('[[runners]]\nname = "a"\n', GROUP_ENTRY, "its [[runners]] entry 1 has no token"),
        ("[[runners]]\ntoken = 5\n", GROUP_ENTRY, "its [[runners]] entry 1 has no token"),
        ('runners = ["x"]\n', GROUP_ENTRY, "its [[runners]] entry 1 has no token"),
        ('[[runners]]\ntoken = "a"\n[[runners]]\n', OPS_ENTRY, "its [[runners]] entry 2 has"),
    ],
)
def test_config_problem_says_why_a_file_cannot_be_rotated(
    config: str, entry: int, problem: str
) -> None:
    found = config_problem(config, entry)
    assert found is not None
    assert found.startswith(problem)


@pytest.mark.parametrize("entries", [1, 2])
def test_config_problem_accepts_what_install_renders(entries: int) -> None:
    settings = make_settings(rotation={"in_cluster": entries == 2})
    config = render_config_toml(settings, CREDS)
    for entry in range(entries):
        assert config_problem(config, entry) is None


def test_config_token_reads_each_entry_and_nothing_from_a_broken_file() -> None:
    config = render_config_toml(make_settings(), CREDS)
    assert config_token(config, GROUP_ENTRY).reveal() == "glrt-group-token-value"
    assert config_token(config, OPS_ENTRY).reveal() == "glrt-ops-token-value"
    single = render_config_toml(make_settings(rotation={"in_cluster": False}), CREDS)
    assert config_token(single, OPS_ENTRY).reveal() == ""
    assert config_token("[[runners]\n", GROUP_ENTRY).reveal() == ""
    assert config_token('[[runners]]\nname = "a"\n', GROUP_ENTRY).reveal() == ""
    assert config_token("concurrent = 1\n", GROUP_ENTRY).reveal() == ""
