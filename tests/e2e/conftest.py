"""An installation target made of both fakes, driven through the CLI like a user would."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO, CliResult, run_cli
from tests.fakes.fixtures import GROUP, OWNER_TOKEN
from tests.fakes.gitlab import FakeGitLab
from tests.fakes.kube import FakeKube
from tests.fakes.pods import runner_pods
from tests.fakes.sandbox import virtual_node

#: Every object a default install leaves in the fake cluster (kind/name).
EXPECTED = {
    "Namespace/gitlab-runner",
    "ServiceAccount/gitlab-runner",
    "Role/gitlab-runner",
    "RoleBinding/gitlab-runner",
    "ServiceAccount/gitlab-runner-rotator",
    "Role/gitlab-runner-rotator",
    "RoleBinding/gitlab-runner-rotator",
    "Secret/gitlab-runner-config",
    "ImageCache/gitlab-runner-gitlab-runner",
    "Deployment/gitlab-runner",
}


@dataclass
class Target:
    """The fakes plus a working directory with a bootstrap.toml pointing at them."""

    gitlab: FakeGitLab
    kube: FakeKube
    workdir: Path
    gitlab_url: str = ""
    token: str = OWNER_TOKEN
    publish: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {"GITLAB_URL": self.gitlab_url, "GITLAB_TOKEN": self.token, **self.extra_env}

    def args(self, command: str, *extra: str) -> list[str]:
        # Publishing and scheduling have tests of their own (test_publish.py); elsewhere
        # install deploys the runner only, unless a test sets ``publish``.
        skips = ["--skip-templates", "--skip-schedule"] if command == "install" else []
        if self.publish:
            skips = []
        # templates publish talks to GitLab only: it refuses cluster flags.
        cluster = [] if command == "templates publish" else ["--kubeconfig"]
        cluster += [str(self.kube.kubeconfig_path)] if cluster else []
        return [
            *command.split(),  # "templates publish" is a group and its command
            "--group",
            GROUP,
            *cluster,
            *skips,
            *extra,
        ]

    def run(self, command: str, *extra: str, input: str | None = None) -> CliResult:
        result = run_cli(self.args(command, *extra), env=self.env, cwd=self.workdir, input=input)
        self.outputs.append(result.output)
        return result

    def run_subprocess(self, command: str, *extra: str) -> CliResult:
        proc = subprocess.run(
            [sys.executable, "-m", "bootstrap", *self.args(command, *extra)],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "HOME": str(self.workdir), **self.env},
            cwd=self.workdir,
            check=False,
            timeout=120,
        )
        result = CliResult(proc.returncode, proc.stdout, proc.stderr)
        self.outputs.append(result.output)
        return result

    # --- facts for assertions -----------------------------------------------------------

    def group_runners(self) -> list[int]:
        return [r.id for r in self.gitlab.runners.values()]

    def stored_config(self, namespace: str = "gitlab-runner") -> str:
        secret = self.kube.get_object("v1", "Secret", "gitlab-runner-config", namespace)
        assert secret is not None, "the config Secret is missing"
        return base64.b64decode(secret["data"]["config.toml"]).decode()

    def stored_token(self, namespace: str = "gitlab-runner") -> str:
        import tomllib

        return str(tomllib.loads(self.stored_config(namespace))["runners"][0]["token"])

    def system_id(self, namespace: str = "gitlab-runner") -> str:
        """The system id the runner pods run with (RUNNER_SYSTEM_ID of the Deployment)."""
        deploy = self.kube.get_object("apps/v1", "Deployment", "gitlab-runner", namespace)
        assert deploy is not None, "the runner Deployment is missing"
        [container] = deploy["spec"]["template"]["spec"]["containers"]
        return next(e["value"] for e in container["env"] if e["name"] == "RUNNER_SYSTEM_ID")

    def secrets_issued(self) -> list[str]:
        return [s for s in (*self.gitlab.runner_tokens(), self.token) if s]

    def assert_no_leak(self) -> None:
        """No token the fakes issued appears in anything the tool printed."""
        for output in self.outputs:
            for secret in self.secrets_issued():
                assert secret not in output, "a token leaked into the output"

    def kube_delete(self, path: str) -> None:
        """DELETE an object through the fake's API, as kubectl would."""
        import urllib.request

        request = urllib.request.Request(self.kube.url + path, method="DELETE")
        request.add_header("Authorization", "Bearer fake-token")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status in (200, 202)

    def kube_patch(self, path: str, patch: dict[str, object]) -> None:
        """A JSON merge patch through the fake's API, as `kubectl patch --type merge` would."""
        import json
        import urllib.request

        request = urllib.request.Request(
            self.kube.url + path, data=json.dumps(patch).encode(), method="PATCH"
        )
        request.add_header("Authorization", "Bearer fake-token")
        request.add_header("Content-Type", "application/merge-patch+json")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def gitlab_delete_runner(self, runner_id: int) -> None:
        """Delete a runner through GitLab's API, as someone in the web UI would."""
        import urllib.request

        request = urllib.request.Request(
            f"{self.gitlab_url}/api/v4/runners/{runner_id}", method="DELETE"
        )
        request.add_header("PRIVATE-TOKEN", OWNER_TOKEN)
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 204

    def kube_writes(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.kube.writes()]

    def gitlab_writes(self) -> list[str]:
        # POST /runners/verify counts: it records a contact, so a no-op run must not send it.
        return [f"{r.method} {r.path}" for r in self.gitlab.writes()]


@pytest.fixture
def target(fake_gitlab: FakeGitLab, fake_kube: FakeKube, tmp_path: Path) -> Iterator[Target]:
    # The runner pods in the fake cluster contact the fake GitLab with their token.
    fake_gitlab.runner_processes = lambda: runner_pods(fake_kube)
    fake_kube.add_crd_imagecache()
    fake_kube.add_object(virtual_node())  # an ACK cluster has virtual nodes (ECI)
    workdir = tmp_path / "work"
    workdir.mkdir()
    t = Target(fake_gitlab, fake_kube, workdir, gitlab_url=fake_gitlab.url)
    yield t
    t.assert_no_leak()


__all__ = ["REPO", "Target"]
