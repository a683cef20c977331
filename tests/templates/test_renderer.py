"""The templates renderer's own rules: which defaults it refuses and how it says so, which
source files it publishes, how the README's inputs tables read, and the jinja syntax
(``#%`` statements, ``{## ##}`` comments, unknown variables refused).

Written for the survivors of ``scripts/mutation bootstrap/render/templates.py``
(docs/mutation.md). The renderer's mechanics are checked on a small source tree of our own
(``_source_root`` pointed at it); the shipped project's output in the other files here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jinja2
import pytest

from bootstrap.errors import ConfigErrors
from bootstrap.render import templates
from bootstrap.render.templates import (
    TemplateDefaults,
    default_template_defaults,
    render_templates,
    validate_defaults,
)

DIGEST = "sha256:" + "0123456789abcdef" * 4


def _with(**change: object) -> TemplateDefaults:
    return dataclasses.replace(default_template_defaults(), **change)  # type: ignore[arg-type]


def _errors(**change: object) -> list[str]:
    try:
        validate_defaults(_with(**change))
    except ConfigErrors as caught:
        return caught.errors
    return []


# --- what validate_defaults accepts and refuses ---------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"group": "org/sub.team_x/a-b"},
        {"project": "ci.templates_2"},
        {"version": "1.0.0-rc.1+build.5"},
        {"version": "10.20.30"},
        {"runner_tags": ("eci", "eci arm64", "k8s:pool=ci")},
        {"buildkit_tags": ("eci-buildkit",)},
        {"registry_host": "registry.example.com:5000"},
        {"git_host": "git.corp.example"},
        {"git_port": 1},
        {"git_port": 65535},
        {"kaniko_image": "registry.example.com:5000/team/kaniko:v1.2-debug"},
        {"kaniko_image": f"moby/buildkit@{DIGEST}"},
        {"buildkit_image": f"moby/buildkit:v0.27.0@{DIGEST}"},
        {"cache_dir": "/mnt/runner-cache"},
        {"credentials_dir": "/a"},
    ],
)
def test_sound_defaults_are_accepted(change: dict[str, object]) -> None:
    assert _errors(**change) == []
    render_templates(_with(**change))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"group": "org/"}, "group 'org/': expected a GitLab group path like 'org/team'"),
        ({"group": "org\n"}, "group 'org\\n': expected a GitLab group path"),
        ({"project": "-x"}, "project '-x': expected a project path like 'ci-templates'"),
        (
            {"version": "1.0.0\n"},
            "version '1.0.0\\n': the CI/CD Catalog needs a semantic version like '1.0.0'",
        ),
        (
            {"buildkit_tags": ("eci", "bad\ttag")},
            "runner tag 'bad\\ttag': use letters, digits, spaces and _.:/@+=-",
        ),
        ({"runner_tags": ("a", "b", "a")}, "runner tags ['a', 'b', 'a']: duplicate tag"),
        (
            {"registry_host": "registry.example.com/team"},
            "registry host 'registry.example.com/team': expected 'host' or 'host:port' "
            "(no scheme, no path)",
        ),
        (
            {"git_host": "git.example.com:22"},
            "git host 'git.example.com:22': expected a host name like 'gitlab.example.com'",
        ),
        ({"git_port": 65536}, "git port 65536: expected 1-65535"),
        ({"git_port": 0}, "git port 0: expected 1-65535"),
        (
            {"kaniko_image": "Moby/Kaniko:v1"},
            "kaniko_image 'Moby/Kaniko:v1': expected a lowercase image reference like "
            "'registry/name:tag'",
        ),
        (
            {"kaniko_image": "registry.example.com:5000/kaniko"},
            "kaniko_image 'registry.example.com:5000/kaniko': pin a version: add an explicit "
            "tag or digest",
        ),
        (
            {"buildkit_image": "moby/buildkit:latest"},
            "buildkit_image 'moby/buildkit:latest': pin a version: 'latest' moves under your feet",
        ),
        ({"cache_dir": "/cache/"}, "cache_dir '/cache/': expected a clean absolute path below '/'"),
        ({"cache_dir": "/a//b"}, "cache_dir '/a//b': expected a clean absolute path below '/'"),
        ({"credentials_dir": "/a/./b"}, "credentials_dir '/a/./b': expected a clean absolute"),
        ({"credentials_dir": "/a/.."}, "credentials_dir '/a/..': expected a clean absolute"),
    ],
)
def test_unsafe_defaults_are_refused_with_the_reason(change: dict[str, object], error: str) -> None:
    errors = _errors(**change)
    assert len(errors) == 1, errors
    assert errors[0].startswith(error)
    with pytest.raises(ConfigErrors):
        render_templates(_with(**change))


def test_every_problem_is_one_line_of_the_refusal() -> None:
    errors = _errors(
        group="a b",
        project="a/b",
        version="1",
        runner_tags=("x", "x"),
        registry_host="https://r",
        git_host="",
        git_port=-1,
        kaniko_image="k",
        buildkit_image="b:latest",
        cache_dir="c",
        credentials_dir="/",
    )
    assert [error.split(" ")[0] for error in errors] == [
        "group",
        "project",
        "version",
        "runner",
        "registry",
        "git",
        "git",
        "kaniko_image",
        "buildkit_image",
        "cache_dir",
        "credentials_dir",
    ]


# --- the shipped project ------------------------------------------------------------------------


def test_buildkit_jobs_get_their_own_tags_and_the_others_the_runners() -> None:
    rendered = render_templates(_with(runner_tags=("eci",), buildkit_tags=("eci-buildkit",)))
    assert '"eci-buildkit"' in rendered["templates/buildkit.yml"]
    assert '"eci-buildkit"' not in rendered["templates/kaniko.yml"]
    assert '"eci"' in rendered["templates/kaniko.yml"]


def test_every_rendered_file_ends_with_one_newline(rendered: dict[str, str]) -> None:
    for path, text in rendered.items():
        assert text.endswith("\n"), path
        assert not text.endswith("\n\n"), path


def test_the_readme_tables_show_defaults_as_code_and_escape_cells(rendered: dict[str, str]) -> None:
    rows = {}
    section = ""
    for line in rendered["README.md"].splitlines():
        if line.startswith("### "):
            section = line[4:]
        elif line.startswith("| `"):
            rows[(section, line.split("`")[1])] = line
    kaniko = {name: row for (part, name), row in rows.items() if part == "kaniko"}
    assert kaniko["needs"].startswith("| `needs` | array | *required* | ")
    assert kaniko["tags"].startswith("| `tags` | array | `[eci]` | ")
    assert kaniko["push"].startswith("| `push` | string (true, false) | `true` | ")
    assert kaniko["cache_repo"].startswith('| `cache_repo` | string | `""` | ')
    # A pipe in a regex would end the cell; HTML-looking text is shown, not interpreted.
    assert "Must match `^[0-9]+(h\\|m\\|s)$`." in kaniko["cache_ttl"]
    assert "Empty: &lt;first destination's repository&gt;/cache" in kaniko["cache_repo"]
    gc = {name: row for (part, name), row in rows.items() if part == "cache-gc"}
    assert gc["max_age_days"].startswith("| `max_age_days` | number | `14` | ")
    assert gc["rules"].startswith(
        '| `rules` | array | `[{if: $CI_PIPELINE_SOURCE == "schedule"}]` |'
    )


def test_the_readme_names_the_organisations_project() -> None:
    readme = render_templates(default_template_defaults("org/team"))["README.md"]
    assert readme.startswith("# org/team/ci-templates: CI/CD components")


def test_inline_code_in_a_table_cell() -> None:
    code = templates._markdown_code
    assert code(None) == "*required*"
    assert (code(True), code(False)) == ("`true`", "`false`")
    assert code({"a": [1, 2]}) == "`{a: [1, 2]}`"
    assert code("") == '`""`'
    assert code("a|b`c") == "`a\\|b'c`"
    assert code(["x" * 90, "y"]) == "`[" + "x" * 90 + ", y]`", "one line, however long"
    assert templates._markdown_text("a|<b>") == "a\\|&lt;b&gt;"
    assert templates._double_quoted('a"b\\c') == 'a\\"b\\\\c'


# --- the renderer's mechanics, on a source tree of our own ---------------------------------------

COMPONENT = """\
spec:
  inputs:
    first:
      default: "{{ group | dq }}"
      description: "A  description
        over lines."
    second:
      type: array
      options: [a, b]
      regex: ^a$
    third:
---
#% for tag in runner_tags
# {{ tag }}
#% endfor
{## a note for template authors ##}
job:
  script: echo ${#CI_COMMIT_SHA} {{ version }}
"""
README = """\
#% for component in components
{{ component.name }}:
#% for input in component.inputs
{{ input.name }} {{ input.type }} {{ input.required }} {{ input.default | md_code }} \
{{ input.description }}|{{ input.options }}|{{ input.regex }}
#% endfor
#% endfor
"""


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ci_templates"
    (root / "templates").mkdir(parents=True)
    (root / "templates" / "demo.yml").write_text(COMPONENT)
    (root / "templates" / "notes.txt").write_text("{{ project }}\n")
    (root / "include").mkdir()
    (root / "include" / "demo.yml").write_text("x: {{ project_path }}\n")
    (root / "README.md").write_text(README)
    monkeypatch.setattr(templates, "_source_root", lambda: root)
    return root


def test_statements_comments_and_shell_are_rendered_as_documented(source: Path) -> None:
    rendered = render_templates(
        _with(group="org/team", runner_tags=("eci", "arm"), version="2.0.0")
    )
    body = rendered["templates/demo.yml"].split("\n---\n", 1)[1]
    assert body == "# eci\n# arm\n\njob:\n  script: echo ${#CI_COMMIT_SHA} 2.0.0\n"
    assert rendered["include/demo.yml"] == "x: org/team/ci-templates\n"
    assert rendered["templates/notes.txt"] == "ci-templates\n"
    assert list(rendered) == sorted(rendered)


def test_the_readme_lists_each_components_inputs(source: Path) -> None:
    readme = render_templates(_with(group="org/team"))["README.md"]
    assert readme == (
        "demo:\n"
        "first string False `org/team` A description over lines.|None|None\n"
        "second array True *required* |['a', 'b']|^a$\n"
        "third string True *required* |None|None\n"
    )


def test_a_project_without_a_readme_renders_without_one(source: Path) -> None:
    (source / "README.md").unlink()
    assert sorted(render_templates(_with())) == [
        "include/demo.yml",
        "templates/demo.yml",
        "templates/notes.txt",
    ]


def test_caches_and_editor_files_are_not_published(source: Path) -> None:
    for junk in ("__pycache__/x.cpython-312.pyc", "a.pyc", "a.pyo", ".a.yml.swp", "a.yml~"):
        path = source / "include" / junk
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"\xff\xfe not text")
    (source / ".DS_Store").write_bytes(b"\x00\x01")
    assert sorted(render_templates(_with())) == [
        "README.md",
        "include/demo.yml",
        "templates/demo.yml",
        "templates/notes.txt",
    ]


def test_an_unknown_variable_is_an_error_not_an_empty_string(source: Path) -> None:
    (source / "include" / "demo.yml").write_text("x: {{ no_such_setting }}\n")
    with pytest.raises(jinja2.UndefinedError, match="no_such_setting"):
        render_templates(_with())


def test_nothing_is_escaped_as_html(source: Path) -> None:
    (source / "include" / "demo.yml").write_text("x: {{ component_prefix }} <&>\n")
    assert render_templates(_with())["include/demo.yml"] == (
        "x: $CI_SERVER_FQDN/mygroup/ci-templates <&>\n"
    )


def test_defaults_are_checked_before_anything_renders(source: Path) -> None:
    (source / "include" / "demo.yml").write_text("x: {{ no_such_setting }}\n")
    with pytest.raises(ConfigErrors):
        render_templates(_with(git_port=0))


def test_component_names_are_the_yml_files_of_templates(source: Path) -> None:
    (source / "templates" / "sub.yml").mkdir()
    assert templates.component_names() == ["demo"]
