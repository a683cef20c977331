"""gitlab-ci-local, a GitLab-CI engine written by others, driving the CI templates.

scripts/test installs it (npm) with a Node.js >= 22 into BOOTSTRAP_TEST_TOOLS
(default ~/.cache/gitlab-eci-bootstrap/test-tools). Without it the engine tests
fail: they are how a wrong template or example is caught.

The rendered templates project becomes a git repository whose origin is
``https://gitlab.example.com/mygroup/ci-templates.git``: its own pipeline then
includes its components locally (``$CI_PROJECT_PATH/...@$CI_COMMIT_SHA``). A
project that includes them (``mygroup/web``) gets the rendered files where
gitlab-ci-local keeps fetched includes, for ref ``v1.0.0``, so nothing is
fetched over the network.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

HOST = "gitlab.example.com"
TEMPLATES_PATH = "mygroup/ci-templates"
VERSION_REF = "v1.0.0"
GITLAB_CI_LOCAL_VERSION = "4.75.1"
_GIT = [
    "git",
    "-c",
    "user.name=test",
    "-c",
    "user.email=test@example.com",
    "-c",
    "init.defaultBranch=main",
    "-c",
    "commit.gpgsign=false",
]


def tools_dir() -> Path:
    """Where scripts/test installs gitlab-ci-local (and node@22 when needed)."""
    configured = os.environ.get("BOOTSTRAP_TEST_TOOLS")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "gitlab-eci-bootstrap" / "test-tools"


def engine_command() -> list[str]:
    """``[node, gitlab-ci-local]``; fails the test (never skips) when one is missing."""
    bin_dir = tools_dir() / "node_modules" / ".bin"
    script = bin_dir / "gitlab-ci-local"
    node = bin_dir / "node" if (bin_dir / "node").exists() else shutil.which("node")
    hint = "scripts/test installs it (Node.js >= 22, npm gitlab-ci-local, rsync)"
    if not script.exists():
        pytest.fail(f"gitlab-ci-local is not installed in {bin_dir}: {hint}")
    if node is None:
        pytest.fail(f"no Node.js: {hint}")
    version = subprocess.run(
        [str(node), "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 22:
        pytest.fail(f"gitlab-ci-local needs Node.js >= 22, {node} is {version}: {hint}")
    if shutil.which("rsync") is None:
        pytest.fail(f"rsync is missing (gitlab-ci-local's shell jobs need it): {hint}")
    return [str(node), str(script.resolve())]


def _git(cwd: Path, *args: str) -> None:
    subprocess.run([*_GIT, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def git_project(root: Path, project_path: str, files: Mapping[str, str]) -> Path:
    """A committed git repository with ``files`` and origin ``https://HOST/<project_path>.git``."""
    root.mkdir(parents=True)
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    _git(root, "init", "-q")
    _git(root, "config", "user.name", "test")  # gitlab-ci-local reads them for GITLAB_USER_*
    _git(root, "config", "user.email", "test@example.com")
    _git(root, "remote", "add", "origin", f"https://{HOST}/{project_path}.git")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "test")
    # the default branch, as a clone knows it (else gitlab-ci-local warns and guesses)
    _git(root, "update-ref", "refs/remotes/origin/main", "HEAD")
    _git(root, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")
    return root


def templates_project(root: Path, rendered: Mapping[str, str]) -> Path:
    """The rendered templates project as the repository mygroup/ci-templates."""
    return git_project(root, TEMPLATES_PATH, rendered)


def consumer_project(root: Path, rendered: Mapping[str, str], gitlab_ci: str) -> Path:
    """A project mygroup/web whose .gitlab-ci.yml includes mygroup/ci-templates@v1.0.0."""
    project = git_project(root, "mygroup/web", {".gitlab-ci.yml": gitlab_ci})
    fetched = project / ".gitlab-ci-local" / "includes" / HOST / TEMPLATES_PATH / VERSION_REF
    for path, text in rendered.items():
        if path.startswith(("templates/", "include/")):
            (fetched / path).parent.mkdir(parents=True, exist_ok=True)
            (fetched / path).write_text(text, encoding="utf-8")
    return project


@dataclass(frozen=True)
class Engine:
    command: Sequence[str]
    home: Path

    def run(
        self, project: Path, *args: str, variables: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run gitlab-ci-local in ``project``; ``variables`` act like project CI/CD variables."""
        argv = [*self.command, "--no-color", "--home", str(self.home)]
        for key, value in (variables or {}).items():
            argv += ["--variable", f"{key}={value}"]
        if "CI_PIPELINE_SOURCE" in (variables or {}):
            argv += ["--ignore-predefined-vars", "CI_PIPELINE_SOURCE"]
        env = {"PATH": os.environ["PATH"], "HOME": str(self.home), "LANG": "C.UTF-8"}
        return subprocess.run(
            [*argv, *args],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def preview(self, project: Path) -> dict[str, Any]:
        """The expanded configuration (includes, inputs, extends, !reference); fails on an error."""
        result = self.run(project, "--preview")
        assert result.returncode == 0, result.stdout + result.stderr
        config = yaml.safe_load(result.stdout[result.stdout.index("---") :])
        assert isinstance(config, dict)
        return config

    def jobs(self, project: Path, variables: Mapping[str, str] | None = None) -> dict[str, str]:
        """The jobs a pipeline with ``variables`` creates, name -> when (when: never left out)."""
        result = self.run(project, "--list-json", variables=variables)
        assert result.returncode == 0, result.stdout + result.stderr
        listed = json.loads(result.stdout[result.stdout.index("[") :])
        return {job["name"]: job["when"] for job in listed if job["when"] != "never"}


def job_results(output: str) -> dict[str, str]:
    """The PASS/FAIL/WARN summary at the end of a run, job name -> verdict."""
    found = re.findall(r"^\s*(PASS|FAIL|WARN)\s+(\S+)", output, re.MULTILINE)
    return {name: verdict for verdict, name in found}
