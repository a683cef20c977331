"""GitLab's CI schema on every template, and inputs that are declared and used."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .helpers import (
    check_schema,
    component_inputs,
    dump_yaml,
    input_values,
    interpolate,
    jobs,
    load_config,
    load_yaml,
    resolve_job,
    split_component,
    used_inputs,
)
from .test_render import COMPONENTS

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "docs" / "examples").glob("*.yml"))
# inputs a component requires (no default) and the value the tests give them
REQUIRED = {"kaniko": {"needs": ["build"]}, "buildkit": {"needs": ["build"]}}


def _resolved_jobs(rendered: dict[str, str]) -> dict[str, Any]:
    """Every job and hidden job as a pipeline sees it after extends: as visible jobs."""
    resolved: dict[str, Any] = {}
    paths = [p for p in rendered if p.startswith(("templates/", "include/")) and p.endswith(".yml")]
    for path in paths:
        config = load_config(rendered, path, REQUIRED.get(Path(path).stem))
        for name in jobs(config):
            job = resolve_job(config, name)
            job.setdefault("script", ["echo the job's own script"])
            resolved[f"{Path(path).stem}:{name.lstrip('.')}"] = job
    return resolved


def test_every_template_passes_the_gitlab_ci_schema(
    rendered: dict[str, str], tmp_path: Path
) -> None:
    files: list[Path] = []

    def add(name: str, text: str) -> None:
        files.append(tmp_path / name)
        files[-1].write_text(text, encoding="utf-8")

    for name in COMPONENTS:
        text = rendered[f"templates/{name}.yml"]
        header, body = split_component(text)
        add(f"{name}.spec.yml", header)
        values = input_values(text, REQUIRED.get(name))
        add(f"{name}.body.yml", dump_yaml(interpolate(load_yaml(body), values)))
    for path, text in rendered.items():
        if path.startswith("include/") or path == ".gitlab-ci.yml":
            add(path.replace("/", "_"), text)
    add("resolved-jobs.yml", dump_yaml(_resolved_jobs(rendered)))
    assert len(EXAMPLES) >= 2
    files += EXAMPLES

    result = check_schema(files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout
    assert len(files) == 2 * len(COMPONENTS) + 6 + 1 + 1 + len(EXAMPLES)


def test_the_schema_check_rejects_a_broken_template(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yml"
    spec.write_text("spec:\n  inputs:\n    stage:\n      type: list\n", encoding="utf-8")
    body = tmp_path / "body.yml"
    body.write_text("build:\n  script: make\n  when: sometimes\n", encoding="utf-8")
    for broken in (spec, body):
        result = check_schema([broken])
        assert result.returncode != 0, broken.read_text()


@pytest.mark.parametrize("name", COMPONENTS)
def test_inputs_are_declared_and_used(rendered: dict[str, str], name: str) -> None:
    text = rendered[f"templates/{name}.yml"]
    declared = set(component_inputs(text))
    used = used_inputs(text)
    assert used - declared == set(), f"{name}: undeclared inputs {sorted(used - declared)}"
    assert declared - used == set(), f"{name}: unused inputs {sorted(declared - used)}"
    for input_name, spec in component_inputs(text).items():
        assert spec.get("description"), f"{name}.{input_name} has no description"
        assert re.fullmatch(r"[a-z][a-z0-9_]*", input_name), input_name
    # every value the header accepts interpolates into a config with no $[[ left
    body = load_config(rendered, f"templates/{name}.yml", REQUIRED.get(name))
    assert "$[[" not in dump_yaml(body)


def test_the_templates_project_pipeline_tests_and_releases(rendered: dict[str, str]) -> None:
    pipeline = load_yaml(rendered[".gitlab-ci.yml"])
    included = {
        re.sub(
            r"^\$CI_SERVER_FQDN/\$CI_PROJECT_PATH/(.+)@\$CI_COMMIT_SHA$", r"\1", item["component"]
        )
        for item in pipeline["include"]
    }
    assert included == set(COMPONENTS)
    for item in pipeline["include"]:
        name = included_name = item["component"].split("/")[-1].split("@")[0]
        input_values(rendered[f"templates/{included_name}.yml"], item.get("inputs"))
        assert name in COMPONENTS
    release = pipeline["release"]
    assert release["image"].startswith("registry.gitlab.com/gitlab-org/release-cli:v")
    assert release["rules"] == [{"if": r"$CI_COMMIT_TAG =~ /^v?\d+\.\d+\.\d+$/"}]
    assert release["release"]["tag_name"] == "$CI_COMMIT_TAG"
    assert pipeline["stages"][-1] == release["stage"] == "release"
    assert "python tests/lint_scripts.py include/*.yml" in pipeline["lint-scripts"]["script"]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_examples_use_real_components_inputs_and_hidden_jobs(
    rendered: dict[str, str], example: Path
) -> None:
    pipeline = load_yaml(example.read_text(encoding="utf-8"))
    hidden: set[str] = set()
    for path in rendered:
        if path.startswith(("include/", "templates/")) and path.endswith(".yml"):
            hidden |= set(load_config(rendered, path, REQUIRED.get(Path(path).stem)))
    components = 0
    for item in pipeline["include"]:
        if "component" in item:
            components += 1
            match = re.fullmatch(
                r"\$CI_SERVER_FQDN/mygroup/ci-templates/([a-z-]+)@v1\.0\.0", item["component"]
            )
            assert match, item["component"]
            input_values(rendered[f"templates/{match.group(1)}.yml"], item.get("inputs"))
        else:
            assert item["project"] == "mygroup/ci-templates"
            files = item["file"] if isinstance(item["file"], list) else [item["file"]]
            assert all(f.lstrip("/") in rendered for f in files), files
    for name in jobs(pipeline):
        parents = pipeline[name].get("extends", [])
        for parent in [parents] if isinstance(parents, str) else parents:
            assert parent in hidden or parent in pipeline, (
                f"{example.name}: {name} extends {parent}"
            )
    assert components or "project" in str(pipeline["include"])
