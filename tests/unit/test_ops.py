"""The ops project's files: the rotation pipeline and the tool it runs."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

from bootstrap import ops
from bootstrap.publish import plan_files
from tests.conftest import REPO, make_settings
from tests.templates.helpers import check_schema

LOCK = REPO / "bootstrap" / "requirements.lock"
PINNED = re.compile(r"^([a-z0-9-]+)==([^\s]+)((?:\s+--hash=sha256:[0-9a-f]{64})+)$")


def _locked() -> dict[str, str]:
    """``{name: version}`` of the lock; every entry must be ``==`` with sha256 hashes."""
    locked = {}
    entries = LOCK.read_text().replace("\\\n", " ").splitlines()
    for entry in (e for e in entries if e.strip() and not e.startswith("#")):
        match = PINNED.match(entry)
        assert match, f"not pinned with hashes: {entry}"
        locked[match.group(1)] = match.group(2)
    return locked


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def test_the_lock_pins_every_dependency_within_its_range() -> None:
    locked = _locked()
    for requirement in tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]:
        wanted = Requirement(requirement)
        name = _name(wanted.name)
        assert name in locked, f"{name} is not locked: run scripts/lock"
        assert wanted.specifier.contains(locked[name]), f"{name}=={locked[name]} not {wanted}"


def test_the_lock_holds_the_dependencies_of_what_it_locks() -> None:
    """Transitive ones too, as the job image (CPython 3.11 on Linux) evaluates their markers.
    Checked through the metadata of what this environment has at the locked version: in
    scripts/test's main environment, installed with the lock's versions, that is all of it."""
    locked = _locked()
    job = {"python_version": "3.11", "sys_platform": "linux", "platform_system": "Linux"}
    checked = 0
    for name, version in locked.items():
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        if dist.version != version:
            continue
        checked += 1
        for text in dist.requires or []:
            needed = Requirement(text)
            if needed.marker is None or needed.marker.evaluate({**job, "extra": ""}):
                assert _name(needed.name) in locked, f"{name} needs {needed}, not locked"
    assert checked, "no locked version is installed here: nothing was checked"


def test_the_job_installs_exactly_the_lock() -> None:
    files = ops.tool_files()
    assert files["tool/requirements.txt"] == LOCK.read_text()
    assert "tool/bootstrap/requirements.lock" not in files  # once, as tool/requirements.txt
    # An installed wheel has it too: install commits it from the package.
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "requirements.lock" in package_data["package-data"]["bootstrap"]
    assert ops.job_script()[0] == (
        "python3 -m pip install --quiet --disable-pip-version-check --require-hashes"
        " --only-binary=:all: -r tool/requirements.txt"
    )


def test_the_tool_tree_is_the_package_with_its_templates_and_no_bytecode() -> None:
    files = ops.tool_files()
    assert "tool/bootstrap/__main__.py" in files
    assert any(p.startswith("tool/bootstrap/ci_templates/") for p in files)
    assert not [p for p in files if "__pycache__" in p or p.endswith(".pyc")]


def test_the_pipeline_passes_gitlab_ci_schema_and_carries_the_settings(tmp_path: Path) -> None:
    settings = make_settings(kubernetes={"namespace": "ci", "cluster_name": "ack-prod"})
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text(ops.pipeline_file(settings))
    checked = check_schema([path])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = path.read_text()
    assert 'BOOTSTRAP_NAMESPACE: "ci"' in text
    assert 'BOOTSTRAP_KUBERNETES__CLUSTER_NAME: "ack-prod"' in text


def test_only_the_tool_directory_is_pruned() -> None:
    rendered = {".gitlab-ci.yml": "x\n", "tool/bootstrap/a.py": "a\n"}
    tree = {"README.md": "1", "tool/bootstrap/old.py": "2", "docs/x.md": "3"}
    created, updated, deleted = plan_files(rendered, tree, (ops.TOOL_DIR,))
    assert created == [".gitlab-ci.yml", "tool/bootstrap/a.py"]
    assert (updated, deleted) == ([], ["tool/bootstrap/old.py"])
