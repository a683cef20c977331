"""Packaging as a new user meets it: true dependency bounds, a licence, the README commands."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

from tests.conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
BOUND = re.compile(r"^([A-Za-z0-9_.-]+)>=([0-9.]+)(?:,<([0-9.]+))?$")
#: Data, not code: every newer release works (pyproject.toml says why).
NO_UPPER_BOUND = {"tzdata"}


def _pins() -> dict[str, str]:
    text = (REPO / "constraints-lowest.txt").read_text()
    return {name.lower(): pin for name, pin in re.findall(r"^([\w-]+)==(\S+)$", text, re.M)}


def test_every_dependency_has_a_lower_and_an_upper_bound() -> None:
    for requirement in PYPROJECT["project"]["dependencies"]:
        match = BOUND.match(requirement)
        assert match, f"{requirement}: write it as NAME>=LOWEST,<NEXT_MAJOR"
        assert match.group(3) or match.group(1) in NO_UPPER_BOUND, f"{requirement}: no upper bound"


def test_the_lowest_versions_ci_runs_are_the_declared_lower_bounds() -> None:
    bounds = {}
    for requirement in PYPROJECT["project"]["dependencies"]:
        match = BOUND.match(requirement)
        assert match, requirement
        bounds[match.group(1).lower()] = match.group(2)
    pins = _pins()
    assert set(pins) == set(bounds), "constraints-lowest.txt must pin every dependency"
    for name, lowest in bounds.items():
        # "kubernetes>=37" is pinned as 37.0.0: the same version.
        assert pins[name].removesuffix(".0").removesuffix(".0") == lowest.removesuffix(
            ".0"
        ).removesuffix(".0"), f"{name}: pyproject says >={lowest}, CI tests {pins[name]}"


def test_scripts_test_runs_the_suite_against_the_lowest_versions() -> None:
    script = (REPO / "scripts" / "test").read_text()
    assert "-c constraints-lowest.txt" in script
    assert ".venv-lowest/bin/python -m pytest" in script


def test_the_licence_the_metadata_names_is_shipped() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "MIT"
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    assert project["license-files"] == ["LICENSE"]
    assert "Programming Language :: Python :: 3.11" in project["classifiers"]


def test_the_readme_commands_install_into_a_venv_they_create() -> None:
    block = (REPO / "README.md").read_text().split("```bash\n", 1)[1].split("```", 1)[0]
    first, second = (line.split("#")[0].strip() for line in block.splitlines()[:2])
    assert first == "scripts/setup && .venv/bin/bootstrap render --group mygroup --out rendered/"
    assert second == "scripts/test"
    for ignored in (".venv/", ".venv-test/", ".venv-lowest/", "rendered/"):
        check = subprocess.run(
            ["git", "check-ignore", "-q", "--no-index", ignored],
            cwd=REPO,
            check=False,
        )
        assert check.returncode == 0, f"{ignored} is not in .gitignore"


def _setup(venv: Path) -> subprocess.CompletedProcess[str]:
    # --no-deps: the point is the venv and the install, not a download
    # of every dependency (the README's command installs them; CI times it on a fresh clone).
    return subprocess.run(
        [str(REPO / "scripts" / "setup"), "--no-deps", "."],
        env={**os.environ, "BOOTSTRAP_VENV": str(venv)},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _assert_installed(venv: Path) -> None:
    show = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "show", "gitlab-eci-bootstrap"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Name: gitlab-eci-bootstrap" in show.stdout, show.stderr


def test_setup_creates_its_venv_and_installs_into_it(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    proc = _setup(venv)
    assert proc.returncode == 0, proc.stderr
    _assert_installed(venv)


def test_setup_recreates_a_venv_that_has_no_pip(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    (venv / "stale").write_text("left by the first venv\n")

    proc = _setup(venv)

    assert proc.returncode == 0, proc.stderr
    assert f"setup: {venv} has no pip: creating it anew" in proc.stderr
    assert not (venv / "stale").exists()
    _assert_installed(venv)
