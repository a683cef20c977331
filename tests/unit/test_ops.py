"""The ops project's files: the rotation pipeline and the tool it runs."""

from __future__ import annotations

import tomllib
from pathlib import Path

from bootstrap import ops
from bootstrap.publish import plan_files
from tests.conftest import REPO, make_settings
from tests.templates.helpers import check_schema


def test_requirements_are_the_package_dependencies() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert list(ops.REQUIREMENTS) == pyproject["project"]["dependencies"]
    files = ops.tool_files()
    assert files["tool/requirements.txt"].splitlines() == list(ops.REQUIREMENTS)


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
