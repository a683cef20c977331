"""kaniko and BuildKit jobs: the command lines they assemble, and the registry login.

kaniko and BuildKit cannot run here (they need a container runtime and a
registry), so a stand-in executor records the arguments and environment the
job script hands to ``/kaniko/executor`` or ``buildctl-daemonless.sh``.
"""

from __future__ import annotations

import base64
import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from .helpers import job_environment, load_config, resolve_job, run_job, write_executable

SHELLS = ["bash", "dash"]
CI = {
    "CI_PROJECT_DIR": "/builds/mygroup/web",
    "CI_PROJECT_PATH": "mygroup/web",
    "CI_REGISTRY": "registry.gitlab.example.com",
    "CI_REGISTRY_IMAGE": "registry.gitlab.example.com/mygroup/web",
    "CI_COMMIT_SHORT_SHA": "0a1b2c3d",
}


class Recorder:
    """A fake builder that stores its argv and DOCKER_CONFIG."""

    def __init__(self, directory: Path) -> None:
        self.argv_file = directory / "argv"
        self.env_file = directory / "docker_config"
        self.path = write_executable(
            directory / "builder",
            "#!/bin/sh\n"
            f"printf '%s\\n' \"$@\" > '{self.argv_file}'\n"
            f"printf '%s' \"${{DOCKER_CONFIG:-}}\" > '{self.env_file}'\n",
        )

    @property
    def argv(self) -> list[str]:
        return self.argv_file.read_text(encoding="utf-8").splitlines()

    @property
    def docker_config(self) -> str:
        return self.env_file.read_text(encoding="utf-8")


def build_job(rendered: dict[str, str], builder: str, **inputs: Any) -> dict[str, Any]:
    config = load_config(rendered, f"templates/{builder}.yml", {"needs": ["build"], **inputs})
    return resolve_job(config, f"{builder}-build")


def run_build(
    job: dict[str, Any], tmp_path: Path, shell: str = "bash", **overrides: str
) -> tuple[Any, Recorder]:
    recorder = Recorder(tmp_path)
    env = job_environment(
        job,
        {**CI, "HOME": str(tmp_path / "home")},
        {
            "IMAGE_BUILD_EXECUTOR": str(recorder.path),
            "IMAGE_BUILD_DOCKER_CONFIG_DIR": str(tmp_path / "mounted"),
            **overrides,
        },
    )
    return run_job(job, env, interpreter=shell), recorder


@pytest.mark.parametrize("shell", SHELLS)
def test_kaniko_command_line(rendered: dict[str, str], tmp_path: Path, shell: str) -> None:
    job = build_job(
        rendered,
        "kaniko",
        destinations="reg.example.com/g/web:1 reg.example.com/g/web:latest",
        cache_repo="reg.example.com/g/web-cache",
        build_args="NODE_ENV=production NPM_TOKEN=s3cr3t",
        extra_args="--snapshot-mode=redo --use-new-run",
    )
    assert job["image"] == {
        "name": "ghcr.io/osscontainertools/kaniko:v1.28.3-debug",
        "entrypoint": [""],
    }
    assert job["stage"] == "build"
    assert job["needs"] == ["build"]
    result, recorder = run_build(job, tmp_path, shell)
    assert result.returncode == 0, result.stderr
    assert recorder.argv == [
        "--context",
        "/builds/mygroup/web",
        "--dockerfile",
        "/builds/mygroup/web/Dockerfile",
        "--destination",
        "reg.example.com/g/web:1",
        "--destination",
        "reg.example.com/g/web:latest",
        "--cache=true",
        "--cache-repo=reg.example.com/g/web-cache",
        "--cache-ttl=336h",
        "--build-arg",
        "NODE_ENV=production",
        "--build-arg",
        "NPM_TOKEN=s3cr3t",
        "--snapshot-mode=redo",
        "--use-new-run",
    ]
    assert "s3cr3t" not in result.stdout + result.stderr
    assert "build args: NODE_ENV NPM_TOKEN" in result.stdout


def test_kaniko_defaults_push_to_the_project_registry(
    rendered: dict[str, str], tmp_path: Path
) -> None:
    result, recorder = run_build(build_job(rendered, "kaniko"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert recorder.argv == [
        "--context",
        "/builds/mygroup/web",
        "--dockerfile",
        "/builds/mygroup/web/Dockerfile",
        "--destination",
        "registry.gitlab.example.com/mygroup/web:0a1b2c3d",
        "--cache=true",
        "--cache-ttl=336h",
    ]


def test_kaniko_without_push_or_cache(rendered: dict[str, str], tmp_path: Path) -> None:
    job = build_job(rendered, "kaniko", destinations="", push="false", cache="false")
    result, recorder = run_build(job, tmp_path)
    assert result.returncode == 0, result.stderr
    assert recorder.argv == [
        "--context",
        "/builds/mygroup/web",
        "--dockerfile",
        "/builds/mygroup/web/Dockerfile",
        "--no-push",
    ]


@pytest.mark.parametrize(
    ("destinations", "cache_repo"),
    [
        ("reg.example.com/g/web:1 reg.example.com/g/other:2", "reg.example.com/g/web/cache"),
        ("reg.example.com:5000/g/web@sha256:" + "0" * 64, "reg.example.com:5000/g/web/cache"),
        ("reg.example.com:5000/g/web", "reg.example.com:5000/g/web/cache"),
    ],
)
def test_kaniko_cache_without_push_names_the_cache_repo(
    rendered: dict[str, str], tmp_path: Path, destinations: str, cache_repo: str
) -> None:
    # kaniko refuses --no-push --cache=true without --cache-repo ("if using cache
    # with --no-push, specify cache repo with --cache-repo")
    job = build_job(rendered, "kaniko", destinations=destinations, push="false")
    result, recorder = run_build(job, tmp_path, "dash")
    assert result.returncode == 0, result.stderr
    assert recorder.argv[-4:] == [
        "--no-push",
        "--cache=true",
        f"--cache-repo={cache_repo}",
        "--cache-ttl=336h",
    ]


def test_kaniko_cache_without_push_or_destination_is_an_error(
    rendered: dict[str, str], tmp_path: Path
) -> None:
    job = build_job(rendered, "kaniko", destinations="", push="false")
    result, recorder = run_build(job, tmp_path)
    assert result.returncode != 0
    assert (
        "the layer cache without push needs a destination or the cache_repo input" in result.stderr
    )
    assert not recorder.argv_file.exists()


@pytest.mark.parametrize("builder", ["kaniko", "buildkit"])
def test_pushing_nowhere_is_an_error(
    rendered: dict[str, str], tmp_path: Path, builder: str
) -> None:
    result, recorder = run_build(build_job(rendered, builder, destinations=""), tmp_path)
    assert result.returncode != 0
    assert "set the destinations input" in result.stderr
    assert not recorder.argv_file.exists()


@pytest.mark.parametrize("shell", SHELLS)
def test_buildkit_command_line(rendered: dict[str, str], tmp_path: Path, shell: str) -> None:
    job = build_job(
        rendered,
        "buildkit",
        dockerfile="$CI_PROJECT_DIR/docker/web.Dockerfile",
        destinations="reg.example.com:5000/g/web:1 reg.example.com:5000/g/web:latest",
        platform="linux/amd64,linux/arm64",
        build_args="NODE_ENV=production",
        extra_args="--progress=plain",
    )
    assert job["image"] == {"name": "moby/buildkit:v0.27.0-rootless", "entrypoint": [""]}
    assert job["variables"]["BUILDKITD_FLAGS"] == "--oci-worker-no-process-sandbox"
    result, recorder = run_build(job, tmp_path, shell)
    assert result.returncode == 0, result.stderr
    assert recorder.argv == [
        "build",
        "--frontend",
        "dockerfile.v0",
        "--local",
        "context=/builds/mygroup/web",
        "--local",
        "dockerfile=/builds/mygroup/web/docker",
        "--opt",
        "filename=web.Dockerfile",
        "--output",
        'type=image,"name=reg.example.com:5000/g/web:1,reg.example.com:5000/g/web:latest",push=true',
        "--opt",
        "platform=linux/amd64,linux/arm64",
        "--export-cache",
        "type=registry,ref=reg.example.com:5000/g/web:buildcache,mode=max",
        "--import-cache",
        "type=registry,ref=reg.example.com:5000/g/web:buildcache",
        "--opt",
        "build-arg:NODE_ENV=production",
        "--progress=plain",
    ]


@pytest.mark.parametrize(
    ("destination", "cache_repo", "expected"),
    [
        ("reg.example.com/g/web@sha256:" + "a" * 64, "", "reg.example.com/g/web:buildcache"),
        ("reg.example.com:5000/web", "", "reg.example.com:5000/web:buildcache"),
        (
            "reg.example.com/g/web:1",
            "reg.example.com/g/cache",
            "reg.example.com/g/cache:buildcache",
        ),
        (
            "reg.example.com/g/web:1",
            "reg.example.com:5000/g/cache:main",
            "reg.example.com:5000/g/cache:main",
        ),
    ],
)
def test_buildkit_cache_reference(
    rendered: dict[str, str], tmp_path: Path, destination: str, cache_repo: str, expected: str
) -> None:
    job = build_job(rendered, "buildkit", destinations=destination, cache_repo=cache_repo)
    result, recorder = run_build(job, tmp_path, "dash")
    assert result.returncode == 0, result.stderr
    assert f"type=registry,ref={expected}" in recorder.argv


def test_buildkit_build_only(rendered: dict[str, str], tmp_path: Path) -> None:
    job = build_job(rendered, "buildkit", destinations="", push="false", cache="false")
    result, recorder = run_build(job, tmp_path)
    assert result.returncode == 0, result.stderr
    assert recorder.argv[-2:] == ["--output", "type=image,push=false"]


@pytest.mark.parametrize("builder", ["kaniko", "buildkit"])
def test_the_mounted_config_json_is_used(
    rendered: dict[str, str], tmp_path: Path, builder: str
) -> None:
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    (mounted / "config.json").write_text('{"auths": {}}', encoding="utf-8")
    result, recorder = run_build(
        build_job(rendered, builder), tmp_path, REGISTRY_USER="u", REGISTRY_PASSWORD="p"
    )
    assert result.returncode == 0, result.stderr
    assert recorder.docker_config == str(mounted)
    assert "mounted by the runner" in result.stdout
    assert not (tmp_path / "home").exists()


def read_auths(docker_config: str) -> dict[str, str]:
    path = Path(docker_config) / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    auths = json.loads(path.read_text(encoding="utf-8"))["auths"]
    return {host: base64.b64decode(entry["auth"]).decode() for host, entry in auths.items()}


@pytest.mark.parametrize("builder", ["kaniko", "buildkit"])
def test_credentials_from_ci_variables(
    rendered: dict[str, str], tmp_path: Path, builder: str
) -> None:
    job = build_job(rendered, builder, registry="registry.cn-hangzhou.aliyuncs.com")
    result, recorder = run_build(
        job,
        tmp_path,
        REGISTRY_USER="robot$ci",
        REGISTRY_PASSWORD="p@ss:word",
        CI_REGISTRY_USER="gitlab-ci-token",
        CI_REGISTRY_PASSWORD="job-token",
    )
    assert result.returncode == 0, result.stderr
    assert recorder.docker_config == str(tmp_path / "home" / ".docker")
    assert read_auths(recorder.docker_config) == {
        "registry.cn-hangzhou.aliyuncs.com": "robot$ci:p@ss:word"
    }
    assert "p@ss:word" not in result.stdout + result.stderr


def test_the_job_token_goes_only_to_the_gitlab_registry(
    rendered: dict[str, str], tmp_path: Path
) -> None:
    tokens = {"CI_REGISTRY_USER": "gitlab-ci-token", "CI_REGISTRY_PASSWORD": "job-token"}
    own = tmp_path / "gitlab"
    own.mkdir()
    result, recorder = run_build(build_job(rendered, "kaniko"), own, **tokens)
    assert result.returncode == 0, result.stderr
    assert read_auths(recorder.docker_config) == {
        "registry.gitlab.example.com": "gitlab-ci-token:job-token"
    }
    other = tmp_path / "other"
    other.mkdir()
    job = build_job(rendered, "kaniko", registry="registry.cn-hangzhou.aliyuncs.com")
    result, recorder = run_build(job, other, **tokens)
    assert result.returncode == 0, result.stderr
    assert not (other / "home" / ".docker" / "config.json").exists()
    assert "no REGISTRY_USER/REGISTRY_PASSWORD" in result.stderr


def test_a_bad_registry_host_is_refused(rendered: dict[str, str], tmp_path: Path) -> None:
    job = build_job(rendered, "kaniko", registry='evil"}}')
    result, recorder = run_build(job, tmp_path, REGISTRY_USER="u", REGISTRY_PASSWORD="p")
    assert result.returncode != 0
    assert "must be a registry host" in result.stderr
    assert not recorder.argv_file.exists()


def test_buildkit_refuses_to_start_without_privilege_escalation(
    rendered: dict[str, str], tmp_path: Path
) -> None:
    # allowPrivilegeEscalation: false is no_new_privs (prctl PR_SET_NO_NEW_PRIVS = 38) for
    # the container's processes; this shell runs under it, as a job's would.
    wrapper = write_executable(
        tmp_path / "nnp-dash",
        f"#!{sys.executable}\n"
        "import ctypes, os, shutil, sys\n"
        "assert ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0) == 0\n"
        "os.execv(shutil.which('dash'), ['dash', *sys.argv[1:]])\n",
    )
    job = build_job(rendered, "buildkit", destinations="reg.example.com/g/web:1")
    result, recorder = run_build(job, tmp_path, str(wrapper))
    assert result.returncode != 0
    assert "executor.build_allow_privilege_escalation = true" in result.stderr
    assert not recorder.argv_file.exists()  # buildctl never started
