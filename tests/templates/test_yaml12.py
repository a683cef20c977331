"""Every shipped YAML file is valid YAML 1.2, parsed strictly (libfyaml).

GitLab's parser and PyYAML accept some invalid YAML, e.g. a multi-line flow
sequence whose ``]`` is at the indentation of its key (YAML test suite case
VJP3); js-yaml, and so gitlab-ci-local and editors, reject it. libfyaml
implements YAML 1.2 to the letter and says where a file goes wrong.
"""

from __future__ import annotations

import re
from pathlib import Path

import libfyaml
import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = REPO / "ci-templates"
# fenced YAML blocks of a Markdown page
FENCE_RE = re.compile(r"^```ya?ml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def strict_yaml_errors(text: str) -> list[str]:
    """Return libfyaml's diagnostics for ``text`` (every document), empty when it is valid."""
    try:
        list(libfyaml.loads_all(text))
    except ValueError:
        diagnostics = libfyaml.loads(text, collect_diag=True)
        found = [f"line {d['line']}: {d['message']}" for d in diagnostics]
        return found or ["not valid YAML 1.2"]
    return []


def _shipped_files() -> list[Path]:
    files = sorted(SOURCES.rglob("*.yml"))
    files += sorted((REPO / "docs" / "examples").glob("*.yml"))
    files.append(REPO / ".gitlab-ci.yml")
    return files


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("tags: [\n  eci,\n]\n", id="bracket-at-key-indentation"),
        pytest.param("spec:\n  inputs: {}\n---\njob:\n  tags: [\n  ]\n", id="second-document"),
    ],
)
def test_the_strict_parse_rejects_what_gitlab_ci_local_rejects(text: str) -> None:
    assert strict_yaml_errors(text)


def test_the_strict_parse_accepts_gitlab_tags_and_inputs() -> None:
    text = 'a: !reference [.x, script]\nb: $[[ inputs.y ]]\nc: [\n  "eci",\n  ]\n'
    assert strict_yaml_errors(text) == []


@pytest.mark.parametrize("path", _shipped_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_source_file_is_yaml_1_2(path: Path) -> None:
    assert strict_yaml_errors(path.read_text(encoding="utf-8")) == []


def test_every_rendered_file_is_yaml_1_2(rendered: dict[str, str]) -> None:
    errors = {}
    for path, text in rendered.items():
        if not path.endswith((".yml", ".md")):
            continue
        blocks = FENCE_RE.findall(text) if path.endswith(".md") else [text]
        for index, block in enumerate(blocks):
            if found := strict_yaml_errors(block):
                errors[f"{path}#{index}"] = found
    assert [p for p in rendered if p.endswith(".yml")], "nothing rendered"
    assert errors == {}


@pytest.mark.parametrize("page", ["docs/templates.md", "README.md"])
def test_every_yaml_block_of_the_docs_is_yaml_1_2(page: str) -> None:
    blocks = FENCE_RE.findall((REPO / page).read_text(encoding="utf-8"))
    errors = {i: found for i, block in enumerate(blocks) if (found := strict_yaml_errors(block))}
    assert errors == {}
