"""What would break on a first real ECI deployment (issue 11), one test per finding."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import tomllib
from typing import Any

import pytest
from pydantic import ValidationError

from bootstrap.config import Settings
from bootstrap.render import Credentials, render
from bootstrap.render.templates import BUILDKIT_IMAGE, KANIKO_IMAGE
from tests.conftest import make_settings

CREDS = Credentials.placeholders()
REGISTRY = {
    "server": "registry.cn-hangzhou.aliyuncs.com",
    "username": "ci-bot",
    "password_env": "REGISTRY_PASSWORD",
}
OSS = {
    "type": "s3",
    "s3_server_address": "oss-cn-hangzhou.aliyuncs.com",
    "s3_bucket_name": "ci-cache",
}


def _kube(settings: Settings) -> dict[str, Any]:
    doc = tomllib.loads(render(settings, CREDS).config_toml)
    return dict(doc["runners"][0]["kubernetes"])


def _object(settings: Settings, kind: str) -> dict[str, Any]:
    return next(o.body for o in render(settings, CREDS).objects if o.kind == kind)


def _pod(settings: Settings) -> dict[str, Any]:
    return dict(_object(settings, "Deployment")["spec"]["template"]["spec"])


# 2. The config Secret must be readable without fsGroup (ECI does not list it).


def test_config_secret_is_readable_by_the_runner_without_fs_group() -> None:
    pod = _pod(make_settings())
    volume = next(v for v in pod["volumes"] if v["name"] == "config-secret")
    mode = volume["secret"]["defaultMode"]
    # The kubelet makes the files root-owned; uid 999 reads them only through "other".
    assert mode & stat.S_IROTH, oct(mode)
    assert not mode & (stat.S_IWOTH | stat.S_IWGRP | stat.S_IWUSR)


# 3. Egress: an explicit choice of an EIP per pod when the VPC has no NAT gateway.


def test_with_eip_gives_job_pods_and_the_manager_an_eip() -> None:
    settings = make_settings(eci={"with_eip": True})
    assert _kube(settings)["pod_annotations"]["k8s.aliyun.com/eci-with-eip"] == "true"
    template = _object(settings, "Deployment")["spec"]["template"]
    assert template["metadata"]["annotations"]["k8s.aliyun.com/eci-with-eip"] == "true"
    assert "k8s.aliyun.com/eci-with-eip" not in _kube(make_settings()).get("pod_annotations", {})


def test_with_eip_is_refused_outside_eci() -> None:
    with pytest.raises(ValidationError, match="only work with profile = 'eci'"):
        make_settings(profile="kubernetes", eci={"with_eip": True})


# 4. arm64 job pods must be scheduled onto arm64 capacity.


def test_arm64_schedules_job_pods_on_arm64_and_marks_the_image_cache() -> None:
    settings = make_settings(runner={"helper_arch": "arm64"})
    kube = _kube(settings)
    assert kube["helper_image"].endswith(":arm64-v18.11.4")
    assert kube["node_selector"] == {"kubernetes.io/arch": "arm64"}
    assert kube["node_tolerations"] == {"kubernetes.io/arch=arm64": "NoSchedule"}
    cache = _object(settings, "ImageCache")
    assert cache["metadata"]["annotations"] == {"k8s.aliyun.com/imc-cpu-arch": "arm64"}
    assert "annotations" not in _object(make_settings(), "ImageCache")["metadata"]


def test_an_arch_selector_that_contradicts_the_helper_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"contradicts runner\.helper_arch"):
        make_settings(executor={"node_selector": {"kubernetes.io/arch": "arm64"}})


# 5. Privilege escalation for rootless BuildKit: the build container only, by choice.


def test_no_job_container_may_escalate_by_default() -> None:
    kube = _kube(make_settings())
    assert kube["allow_privilege_escalation"] is False
    assert "build_container_security_context" not in kube


def test_a_buildkit_runner_lets_only_the_build_container_escalate() -> None:
    kube = _kube(make_settings(executor={"build_allow_privilege_escalation": True}))
    assert kube["allow_privilege_escalation"] is False  # helper, services, init container
    assert kube["build_container_security_context"] == {"allow_privilege_escalation": True}
    assert kube["privileged"] is False


# 6. The drain is bounded, so a running job is stopped cleanly within the grace period.


def _run_drain(script: str, child: subprocess.Popen[bytes]) -> float:
    started = time.monotonic()
    subprocess.run(
        ["/bin/sh", "-c", script.replace("pid=1\n", f"pid={child.pid}\n", 1)],
        check=True,
        timeout=30,
    )
    return time.monotonic() - started


def test_the_pre_stop_hook_stops_a_runner_that_keeps_draining() -> None:
    settings = make_settings(runner={"drain_timeout": 1, "shutdown_timeout": 1})
    pod = _pod(settings)
    script = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][2]
    # A "runner" that ignores SIGQUIT (a job still running) and stops on SIGTERM.
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGQUIT, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"  # its handler is in place
    try:
        _run_drain(script, child)
        assert child.wait(timeout=10) == -signal.SIGTERM  # the hook sent it, not the kubelet
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)


def test_the_hook_fits_in_the_grace_period() -> None:
    settings = make_settings(runner={"drain_timeout": 1800, "shutdown_timeout": 60})
    pod = _pod(settings)
    script = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][2]
    assert "+ 1800))" in script
    assert "+ 60))" in script
    assert pod["terminationGracePeriodSeconds"] > 1800 + 60


# 7. Private job images: the registry Secret is an image pull secret.


@pytest.mark.parametrize(
    ("registry", "secret"),
    [(REGISTRY, "registry-auth-secret"), ({"existing_secret": "team-registry"}, "team-registry")],
)
def test_registry_secret_pulls_job_images(registry: dict[str, str], secret: str) -> None:
    assert _kube(make_settings(registry=registry))["image_pull_secrets"] == [secret]


def test_no_registry_no_pull_secret() -> None:
    assert "image_pull_secrets" not in _kube(make_settings())


# 8. Names that become job pod volume names must be DNS-1123 labels.


@pytest.mark.parametrize(
    "sections",
    [
        {"executor": {"volumes": [{"type": "secret", "name": "team.certs", "mount_path": "/c"}]}},
        {"registry": {"existing_secret": "registry.auth"}},
        {"git_ssh": {"existing_secret": "git.ssh"}},
        {"cache": {"type": "pvc", "claim_name": "shared.cache"}},
    ],
)
def test_dotted_volume_names_are_refused(sections: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="job pod volume name"):
        make_settings(**sections)


def test_two_volumes_of_one_name_are_refused() -> None:
    with pytest.raises(ValidationError, match="used for two job pod volumes"):
        make_settings(registry={"existing_secret": "creds"}, git_ssh={"existing_secret": "creds"})


# 9. S3 cache credentials: keys, or the AWS credential chain only by explicit choice.


def test_s3_without_keys_is_refused() -> None:
    with pytest.raises(ValidationError, match="'access-key' needs both"):
        make_settings(cache=OSS)


def test_s3_iam_is_refused_on_eci() -> None:
    with pytest.raises(ValidationError, match="finds no credentials on ECI"):
        make_settings(cache={**OSS, "s3_authentication": "iam"})


def test_s3_iam_on_eks_with_an_irsa_annotated_service_account() -> None:
    role = {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/ci-cache"}
    settings = make_settings(
        profile="kubernetes",
        cache={**OSS, "s3_authentication": "iam", "s3_server_address": "s3.amazonaws.com"},
        runner={"service_account_annotations": role},
    )
    doc = tomllib.loads(render(settings, CREDS).config_toml)
    assert doc["runners"][0]["cache"]["s3"]["AuthenticationType"] == "iam"
    account = _object(settings, "ServiceAccount")
    assert account["metadata"]["annotations"] == role


# 10. The smaller findings.


def test_image_cache_pre_pulls_the_templates_build_images() -> None:
    images = _object(make_settings(), "ImageCache")["spec"]["images"]
    assert KANIKO_IMAGE in images
    assert BUILDKIT_IMAGE in images
    assert len(images) == len(set(images))


def test_image_cache_holds_at_most_20_images() -> None:
    extra = [f"registry.example.com/img{i}:1.0" for i in range(16)]
    with pytest.raises(ValidationError, match="ECI takes at most 20"):
        make_settings(image_cache={"extra_images": extra})
    make_settings(image_cache={"extra_images": extra[:15]})  # 5 + 15 = 20 fits


def test_the_runner_image_is_the_alpine_flavour_unless_asked() -> None:
    container = _pod(make_settings())["containers"][0]
    assert container["image"] == "registry.gitlab.com/gitlab-org/gitlab-runner:alpine-v18.11.4"
    ubuntu = _pod(make_settings(runner={"image_flavor": "ubuntu"}))["containers"][0]
    assert ubuntu["image"] == "registry.gitlab.com/gitlab-org/gitlab-runner:v18.11.4"


def test_spot_price_takes_at_most_three_decimals_and_renders_exactly() -> None:
    with pytest.raises(ValidationError, match="more than 3 decimals"):
        make_settings(eci={"spot_strategy": "SpotWithPriceLimit", "spot_price_limit": 0.0125})
    settings = make_settings(
        eci={"spot_strategy": "SpotWithPriceLimit", "spot_price_limit": 1234.125}
    )
    price = _kube(settings)["pod_annotations"]["k8s.aliyun.com/eci-spot-price-limit"]
    assert price == "1234.125"


def test_two_tolerations_of_one_key_are_refused_not_collapsed() -> None:
    tolerations = [
        {"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoExecute"},
    ]
    with pytest.raises(ValidationError, match="effect = '' to tolerate every effect"):
        make_settings(executor={"tolerations": tolerations})


def test_read_only_empty_dir_is_refused_not_dropped() -> None:
    volume = {"type": "empty_dir", "name": "scratch", "mount_path": "/s", "read_only": True}
    with pytest.raises(ValidationError, match="cannot be read_only"):
        make_settings(executor={"volumes": [volume]})


def test_buildkit_jobs_default_to_the_buildkit_runners_tags() -> None:
    import yaml

    from bootstrap.render import render_ci_templates

    settings = make_settings(templates={"buildkit_tags": ["eci-buildkit"]})
    files = render_ci_templates(settings)
    header = yaml.safe_load(files["templates/buildkit.yml"].split("\n---\n", 1)[0])
    assert header["spec"]["inputs"]["tags"]["default"] == ["eci-buildkit"]
    include = yaml.safe_load(files["include/buildkit.yml"])
    assert include[".buildkit-build"]["tags"] == ["eci-buildkit"]
    kaniko = yaml.safe_load(files["templates/kaniko.yml"].split("\n---\n", 1)[0])
    assert kaniko["spec"]["inputs"]["tags"]["default"] == ["eci"]  # others keep the runner's
    plain = render_ci_templates(make_settings())
    assert yaml.safe_load(plain["include/buildkit.yml"])[".buildkit-build"]["tags"] == ["eci"]


def test_arm64_takes_instance_types_only_in_use_specs() -> None:
    with pytest.raises(ValidationError, match="take only Arm ECS instance types"):
        make_settings(runner={"helper_arch": "arm64"}, eci={"use_specs": ["2-4Gi"]})
    make_settings(runner={"helper_arch": "arm64"}, eci={"use_specs": ["ecs.c8y.large"]})
