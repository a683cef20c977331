"""Fixtures for the CI template tests: the rendered templates project, on disk too."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootstrap.render.templates import (
    TemplateDefaults,
    default_template_defaults,
    render_templates,
)


@pytest.fixture(scope="session")
def defaults() -> TemplateDefaults:
    return default_template_defaults()


@pytest.fixture(scope="session")
def rendered(defaults: TemplateDefaults) -> dict[str, str]:
    return render_templates(defaults)


@pytest.fixture(scope="session")
def rendered_dir(rendered: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ci-templates")
    for path, text in rendered.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root
