"""render_templates: layout, defaults baked into inputs, validation, pinned images."""

from __future__ import annotations

import dataclasses
import re
from importlib import resources

import pytest

from bootstrap.errors import ConfigErrors
from bootstrap.render.templates import (
    ALPINE_IMAGE,
    BUILDKIT_IMAGE,
    KANIKO_IMAGE,
    PYTHON_IMAGE,
    RELEASE_CLI_IMAGE,
    TemplateDefaults,
    component_names,
    default_template_defaults,
    render_templates,
)

from .helpers import component_inputs, load_config, load_yaml, resolve_job, split_component

COMPONENTS = ["buildkit", "cache-gc", "dist-cache", "kaniko", "prepare-git"]


def test_layout_is_a_components_project(rendered: dict[str, str]) -> None:
    assert list(rendered) == sorted(rendered)
    assert component_names() == COMPONENTS
    assert [p for p in rendered if p.startswith("templates/")] == [
        f"templates/{name}.yml" for name in COMPONENTS
    ]
    assert len(component_names()) <= 30  # the Catalog's limit per project
    for required in (
        "README.md",
        ".gitlab-ci.yml",
        "include/dist-cache.yml",
        "include/kaniko.yml",
        "include/buildkit.yml",
        "include/cache-gc.yml",
        "include/prepare-git.yml",
        "include/image-build.yml",
    ):
        assert required in rendered
    for path, text in rendered.items():
        for leftover in ("{{", "{%", "#%"):
            assert leftover not in text, (path, leftover)


def test_render_is_deterministic(defaults: TemplateDefaults, rendered: dict[str, str]) -> None:
    assert render_templates(defaults) == rendered


def test_sources_are_valid_yaml_before_rendering() -> None:
    root = resources.files("bootstrap") / "ci_templates"
    sources = [root / ".gitlab-ci.yml"]
    for folder in ("templates", "include"):
        sources += [entry for entry in (root / folder).iterdir() if entry.name.endswith(".yml")]
    assert len(sources) == 12
    for source in sources:
        text = source.read_text(encoding="utf-8")
        if source.name in {f"{name}.yml" for name in COMPONENTS} and "\n---\n" in text:
            header, body = split_component(text)
            assert load_yaml(header)["spec"]["inputs"], source.name
            assert load_yaml(body), source.name
        else:
            assert load_yaml(text), source.name


def custom_defaults() -> TemplateDefaults:
    return dataclasses.replace(
        default_template_defaults("org/platform"),
        version="2.3.4",
        runner_tags=("eci", "serverless"),
        registry_host="registry.cn-hangzhou.aliyuncs.com",
        git_host="git.corp.example",
        git_port=2222,
        kaniko_image="registry.corp.example:5000/mirror/kaniko:v1.28.3-debug",
        cache_dir="/mnt/runner-cache",
        credentials_dir="/etc/git-credentials",
    )


def test_organisation_defaults_are_baked_into_input_defaults() -> None:
    rendered = render_templates(custom_defaults())
    inputs = {name: component_inputs(rendered[f"templates/{name}.yml"]) for name in COMPONENTS}
    for name in ("kaniko", "buildkit", "dist-cache", "cache-gc"):
        assert inputs[name]["tags"]["default"] == ["eci", "serverless"], name
    assert inputs["kaniko"]["image"]["default"] == (
        "registry.corp.example:5000/mirror/kaniko:v1.28.3-debug"
    )
    assert inputs["buildkit"]["image"]["default"] == BUILDKIT_IMAGE
    for name in ("kaniko", "buildkit"):
        assert inputs[name]["registry"]["default"] == "registry.cn-hangzhou.aliyuncs.com"
        assert inputs[name]["destinations"]["default"] == (
            "registry.cn-hangzhou.aliyuncs.com/$CI_PROJECT_PATH:$CI_COMMIT_SHORT_SHA"
        )
    assert inputs["prepare-git"]["ssh_host"]["default"] == "git.corp.example"
    assert inputs["prepare-git"]["ssh_port"]["default"] == "2222"
    assert inputs["prepare-git"]["credentials_dir"]["default"] == "/etc/git-credentials"
    assert inputs["dist-cache"]["cache_dir"]["default"] == "/mnt/runner-cache"
    assert inputs["cache-gc"]["cache_dir"]["default"] == "/mnt/runner-cache"
    # the include files carry the same defaults as job variables
    gc = resolve_job(load_config(rendered, "include/cache-gc.yml"), ".cache-gc")
    assert gc["variables"]["CACHE_GC_DIR"] == "/mnt/runner-cache"
    assert gc["tags"] == ["eci", "serverless"]
    git = resolve_job(load_config(rendered, "include/prepare-git.yml"), ".prepare-git")
    assert git["variables"]["PREPARE_GIT_SSH_PORT"] == "2222"
    # and the docs point at this group, project and version
    assert "$CI_SERVER_FQDN/org/platform/ci-templates/kaniko@v2.3.4" in rendered["README.md"]
    assert "project: org/platform/ci-templates" in rendered["include/kaniko.yml"]


def test_projects_can_override_every_default(rendered: dict[str, str]) -> None:
    config = load_config(
        rendered,
        "templates/kaniko.yml",
        {
            "needs": ["build"],
            "tags": ["other"],
            "image": "example.org/kaniko:v9-debug",
            "destinations": "example.org/app:1",
            "cache": "false",
        },
    )
    job = resolve_job(config, "kaniko-build")
    assert job["tags"] == ["other"]
    assert job["image"] == {"name": "example.org/kaniko:v9-debug", "entrypoint": [""]}
    assert job["needs"] == ["build"]
    assert job["variables"]["IMAGE_BUILD_DESTINATIONS"] == "example.org/app:1"
    assert job["variables"]["IMAGE_BUILD_CACHE"] == "false"


def test_without_a_registry_host_the_gitlab_registry_is_used(rendered: dict[str, str]) -> None:
    inputs = component_inputs(rendered["templates/kaniko.yml"])
    assert inputs["registry"]["default"] == "$CI_REGISTRY"
    assert inputs["destinations"]["default"] == "$CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA"


def test_a_runner_without_tags_gives_empty_tag_lists() -> None:
    rendered = render_templates(dataclasses.replace(default_template_defaults(), runner_tags=()))
    assert component_inputs(rendered["templates/cache-gc.yml"])["tags"]["default"] == []
    assert load_config(rendered, "include/cache-gc.yml")[".cache-gc"]["tags"] == []


def _images(node: object) -> list[str]:
    """Every image a config or spec header names: image: values, inputs called image."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                found.append(value)
            elif key == "image" and isinstance(value, dict):
                found.append(str(value.get("name") or value.get("default")))
            else:
                found += _images(value)
    elif isinstance(node, list):
        for item in node:
            found += _images(item)
    return found


def test_every_image_is_pinned(rendered: dict[str, str]) -> None:
    images: set[str] = set()
    for path, text in rendered.items():
        if path.endswith(".yml"):
            documents = split_component(text) if path.startswith("templates/") else (text,)
            for document in documents:
                images.update(_images(load_yaml(document)))
    images = {image for image in images if "$[[" not in image}
    assert images == {KANIKO_IMAGE, BUILDKIT_IMAGE, ALPINE_IMAGE, RELEASE_CLI_IMAGE, PYTHON_IMAGE}
    for image in images:
        name, _, digest = image.partition("@")
        tag = name.rsplit("/", 1)[-1].partition(":")[2]
        assert tag or digest, f"unpinned image {image}"
        assert tag != "latest", f"unpinned image {image}"
    for path, text in rendered.items():
        assert not re.search(r"image[^\n#]*:latest", text), path


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"group": "my group"}, "group"),
        ({"group": "a//b"}, "group"),
        ({"project": "ci/templates"}, "project"),
        ({"version": "v1.0"}, "version"),
        ({"runner_tags": ('eci"; rm -rf /',)}, "runner tag"),
        ({"runner_tags": ("eci", "eci")}, "runner tags"),
        ({"registry_host": "https://registry.example.com"}, "registry host"),
        ({"git_host": "git.example.com; id"}, "git host"),
        ({"git_port": 0}, "git port"),
        ({"kaniko_image": "gcr.io/kaniko-project/executor:latest"}, "kaniko_image"),
        ({"buildkit_image": "moby/buildkit"}, "buildkit_image"),
        ({"cache_dir": "/"}, "cache_dir"),
        ({"cache_dir": "/cache/../etc"}, "cache_dir"),
        ({"credentials_dir": "relative/dir"}, "credentials_dir"),
    ],
)
def test_unsafe_defaults_are_rejected(change: dict[str, object], field: str) -> None:
    bad = dataclasses.replace(default_template_defaults(), **change)  # type: ignore[arg-type]
    with pytest.raises(ConfigErrors) as caught:
        render_templates(bad)
    assert any(error.startswith(field) for error in caught.value.errors), caught.value.errors


def test_all_problems_are_reported_at_once() -> None:
    bad = dataclasses.replace(
        default_template_defaults(), version="latest", git_port=70000, cache_dir="cache"
    )
    with pytest.raises(ConfigErrors) as caught:
        render_templates(bad)
    assert len(caught.value.errors) == 3


def test_readme_documents_every_component_and_input(rendered: dict[str, str]) -> None:
    readme = rendered["README.md"]
    sections = re.split(r"^### ", readme, flags=re.M)
    for name in COMPONENTS:
        section = next(s for s in sections if s.startswith(f"{name}\n"))
        assert "| Input | Type | Default | Description |" in section, name
        assert f"component: $CI_SERVER_FQDN/mygroup/ci-templates/{name}@v1.0.0" in section, name
        for input_name, spec in component_inputs(rendered[f"templates/{name}.yml"]).items():
            row = next(
                line for line in section.splitlines() if line.startswith(f"| `{input_name}` |")
            )
            assert ("*required*" in row) == ("default" not in spec), row
            assert row.count("|") - row.count("\\|") == 5, f"broken table row: {row}"
