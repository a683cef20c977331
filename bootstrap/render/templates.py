"""Render the CI templates project: CI/CD components, include files, Catalog README.

The sources live in ``ci-templates/`` (shipped as package data through the
``bootstrap/ci_templates`` symlink). They are jinja2 templates that stay valid
YAML before rendering: jinja only fills the organisation's defaults (runner
tags, registry, git host, pinned images) into the inputs' ``default:`` values,
the include files' variables and the docs, so every project can still override
them with ``include: inputs:`` or job variables. Statements use the line prefix
``#%`` (a YAML comment before rendering); comments use ``{## ##}`` so that shell
code such as ``${#var}`` is left alone.

Rendering is pure: the only I/O is reading the packaged sources.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import jinja2
import yaml

from bootstrap.errors import ConfigErrors
from bootstrap.validators import HOST, HOST_PORT, RUNNER_TAG

#: kaniko executor, debug flavour (it has the busybox shell GitLab CI needs).
#: GoogleContainerTools/kaniko was archived on 2025-06-03; this is the maintained
#: fork that publishes images (osscontainertools/kaniko, also ``martizih/kaniko``).
KANIKO_IMAGE = "ghcr.io/osscontainertools/kaniko:v1.28.3-debug"
#: Rootless BuildKit, run daemonless with ``buildctl-daemonless.sh``.
BUILDKIT_IMAGE = "moby/buildkit:v0.27.0-rootless"
#: Small image for the cache jobs (busybox ``find``, ``du``, ``stat``, ``sha256sum``).
ALPINE_IMAGE = "alpine:3.22.1"
#: Image of the templates project's release job (the ``release:`` keyword needs it).
RELEASE_CLI_IMAGE = "registry.gitlab.com/gitlab-org/release-cli:v0.24.0"
#: Image of the templates project's script-lint job.
PYTHON_IMAGE = "python:3.12-alpine3.22"

#: The runner's ``cache_dir`` and the mount of the shared NAS cache volume.
DEFAULT_CACHE_DIR = "/cache"
#: Where the runner mounts the ``gitlab-credentials`` Secret, read-only.
DEFAULT_CREDENTIALS_DIR = "/root/gitlab-credentials"

_SOURCE_PACKAGE = "bootstrap"
_SOURCE_DIR = "ci_templates"
_SKIPPED_NAMES = frozenset({"__pycache__", ".DS_Store"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo", ".swp", "~")

# Used with fullmatch: "$" would admit a trailing newline; [0-9], not \d (Unicode digits).
_SEGMENT = r"[A-Za-z0-9_.][A-Za-z0-9_.-]*"
_GROUP_RE = re.compile(rf"{_SEGMENT}(/{_SEGMENT})*")
_PROJECT_RE = re.compile(rf"{_SEGMENT}")
_SEMVER_RE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?")
_IMAGE_RE = re.compile(
    r"[a-z0-9][a-z0-9._/-]*(:[0-9]+/[a-z0-9._/-]+)?(:[A-Za-z0-9_.-]+)?(@sha256:[a-f0-9]{64})?"
)
_PATH_RE = re.compile(r"(/[A-Za-z0-9._-]+)+")


@dataclass(frozen=True)
class TemplateDefaults:
    """Organisation defaults baked into the templates' inputs and variables.

    Attributes:
        group: GitLab group full path, e.g. ``mygroup`` or ``org/team``.
        project: Path of the templates project inside the group, e.g. ``ci-templates``.
        version: Semantic version of the templates release, e.g. ``1.0.0``.
        runner_tags: Tags of the group runner; jobs get them as the ``tags`` input default.
        registry_host: Container registry host (``host[:port]``), or ``""`` to use
            the project's GitLab registry (``$CI_REGISTRY``).
        git_host: Host that jobs reach with git over ssh, e.g. ``gitlab.example.com``.
        git_port: Its ssh port.
        kaniko_image: Pinned kaniko executor image, debug flavour.
        buildkit_image: Pinned rootless BuildKit image.
        cache_dir: The runner's ``cache_dir``, where the shared cache volume is mounted.
        credentials_dir: Where the runner mounts the git ssh credentials, read-only.
        buildkit_tags: Tags of the runner for BuildKit jobs (one that lets the build
            container gain privileges); empty: ``runner_tags``.
    """

    group: str
    project: str
    version: str
    runner_tags: tuple[str, ...]
    registry_host: str
    git_host: str
    git_port: int
    kaniko_image: str
    buildkit_image: str
    cache_dir: str = DEFAULT_CACHE_DIR
    credentials_dir: str = DEFAULT_CREDENTIALS_DIR
    buildkit_tags: tuple[str, ...] = ()


def default_template_defaults(group: str = "mygroup") -> TemplateDefaults:
    """Return sane defaults for a group, the ones the tests and examples use.

    Args:
        group: GitLab group full path.

    Returns:
        Defaults with the pinned images, tag ``eci``, no external registry and
        ``gitlab.example.com:22`` as the git host.
    """
    return TemplateDefaults(
        group=group,
        project="ci-templates",
        version="1.0.0",
        runner_tags=("eci",),
        registry_host="",
        git_host="gitlab.example.com",
        git_port=22,
        kaniko_image=KANIKO_IMAGE,
        buildkit_image=BUILDKIT_IMAGE,
    )


def component_names() -> list[str]:
    """Return the names of the CI/CD components (``templates/<name>.yml``), sorted.

    Returns:
        Component names such as ``kaniko`` or ``dist-cache``.
    """
    templates = _source_root() / "templates"
    return sorted(
        entry.name[: -len(".yml")]
        for entry in templates.iterdir()
        if entry.is_file() and entry.name.endswith(".yml")
    )


def render_templates(defaults: TemplateDefaults) -> dict[str, str]:
    """Render the whole templates project with the organisation's defaults.

    Args:
        defaults: The values baked into the inputs' defaults.

    Returns:
        Relative posix path (e.g. ``templates/kaniko.yml``, ``.gitlab-ci.yml``,
        ``README.md``) mapped to the rendered text, sorted by path.

    Raises:
        ConfigErrors: When a default is not safe to write into YAML or shell
            (all problems are reported at once).
        jinja2.TemplateError: When a source uses an unknown variable (a bug).
    """
    validate_defaults(defaults)
    env = _environment()
    context = _context(defaults)
    sources = dict(_walk(_source_root(), ""))
    rendered = {
        path: env.from_string(text).render(context)
        for path, text in sources.items()
        if path != "README.md"
    }
    if "README.md" in sources:
        components = [
            _component_summary(path[len("templates/") : -len(".yml")], text)
            for path, text in sorted(rendered.items())
            if path.startswith("templates/") and path.endswith(".yml")
        ]
        rendered["README.md"] = env.from_string(sources["README.md"]).render(
            context, components=components
        )
    return dict(sorted(rendered.items()))


def _source_root() -> Traversable:
    return resources.files(_SOURCE_PACKAGE) / _SOURCE_DIR


def _walk(directory: Traversable, prefix: str) -> Iterator[tuple[str, str]]:
    for entry in directory.iterdir():
        name = entry.name
        if name in _SKIPPED_NAMES or name.endswith(_SKIPPED_SUFFIXES):
            continue
        path = f"{prefix}{name}"
        if entry.is_dir():
            yield from _walk(entry, f"{path}/")
        else:
            yield path, entry.read_text(encoding="utf-8")


def _environment() -> jinja2.Environment:
    # Autoescape stays off (bandit B701): the output is YAML, shell and Markdown, never HTML.
    env = jinja2.Environment(  # nosec B701
        comment_start_string="{##",
        comment_end_string="##}",
        line_statement_prefix="#%",
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - renders YAML, shell and Markdown, never HTML
    )
    env.filters["dq"] = _double_quoted
    env.filters["md_code"] = _markdown_code
    env.filters["md_text"] = _markdown_text
    return env


def _double_quoted(value: object) -> str:
    """Escape a value for the inside of a YAML double-quoted scalar."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"')


def _markdown_code(value: object) -> str:
    """Format a value as inline code inside a Markdown table cell."""
    if value is None:
        return "*required*"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list | dict):
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    else:
        text = str(value)
    if text == "":
        return '`""`'
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def _markdown_text(value: object) -> str:
    """Escape text for a Markdown table cell (no cell breaks, no stray HTML)."""
    return str(value).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _context(defaults: TemplateDefaults) -> dict[str, Any]:
    if defaults.registry_host:
        registry = defaults.registry_host
        destination = f"{defaults.registry_host}/$CI_PROJECT_PATH:$CI_COMMIT_SHORT_SHA"
    else:
        registry = "$CI_REGISTRY"
        destination = "$CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA"
    project_path = f"{defaults.group}/{defaults.project}"
    return {
        "group": defaults.group,
        "project": defaults.project,
        "project_path": project_path,
        "component_prefix": f"$CI_SERVER_FQDN/{project_path}",
        "version": defaults.version,
        "runner_tags": list(defaults.runner_tags),
        "buildkit_tags": list(defaults.buildkit_tags or defaults.runner_tags),
        "registry_host": defaults.registry_host,
        "registry_default": registry,
        "destination_default": destination,
        "git_host": defaults.git_host,
        "git_port": defaults.git_port,
        "kaniko_image": defaults.kaniko_image,
        "buildkit_image": defaults.buildkit_image,
        "alpine_image": ALPINE_IMAGE,
        "release_cli_image": RELEASE_CLI_IMAGE,
        "python_image": PYTHON_IMAGE,
        "cache_dir": defaults.cache_dir,
        "credentials_dir": defaults.credentials_dir,
    }


def _component_summary(name: str, text: str) -> dict[str, Any]:
    """Read a rendered component's ``spec: inputs:`` for the README's inputs table."""
    header = yaml.safe_load(text.split("\n---\n", 1)[0]) or {}
    inputs = []
    for input_name, spec in ((header.get("spec") or {}).get("inputs") or {}).items():
        spec = spec or {}
        inputs.append(
            {
                "name": input_name,
                "type": spec.get("type", "string"),
                "default": spec.get("default"),
                "required": "default" not in spec,
                "description": " ".join(str(spec.get("description", "")).split()),
                "options": spec.get("options"),
                "regex": spec.get("regex"),
            }
        )
    return {"name": name, "inputs": inputs}


def validate_defaults(defaults: TemplateDefaults) -> None:
    """Refuse defaults that are not safe to write into YAML or shell (all problems at once).

    Raises:
        ConfigErrors: one line per problem.
    """
    errors: list[str] = []
    if not _GROUP_RE.fullmatch(defaults.group):
        errors.append(f"group {defaults.group!r}: expected a GitLab group path like 'org/team'")
    if not _PROJECT_RE.fullmatch(defaults.project):
        errors.append(f"project {defaults.project!r}: expected a project path like 'ci-templates'")
    if not _SEMVER_RE.fullmatch(defaults.version):
        errors.append(
            f"version {defaults.version!r}: the CI/CD Catalog needs a semantic version like '1.0.0'"
        )
    for tag in (*defaults.runner_tags, *defaults.buildkit_tags):
        if not RUNNER_TAG.fullmatch(tag):
            errors.append(f"runner tag {tag!r}: use letters, digits, spaces and _.:/@+=-")
    if len(set(defaults.runner_tags)) != len(defaults.runner_tags):
        errors.append(f"runner tags {list(defaults.runner_tags)!r}: duplicate tag")
    if defaults.registry_host and not HOST_PORT.fullmatch(defaults.registry_host):
        errors.append(
            f"registry host {defaults.registry_host!r}: expected 'host' or 'host:port' "
            "(no scheme, no path)"
        )
    if not HOST.fullmatch(defaults.git_host):
        errors.append(
            f"git host {defaults.git_host!r}: expected a host name like 'gitlab.example.com'"
        )
    if not 1 <= defaults.git_port <= 65535:
        errors.append(f"git port {defaults.git_port}: expected 1-65535")
    for field_name in ("kaniko_image", "buildkit_image"):
        image = getattr(defaults, field_name)
        problem = _image_problem(image)
        if problem:
            errors.append(f"{field_name} {image!r}: {problem}")
    for field_name in ("cache_dir", "credentials_dir"):
        path = getattr(defaults, field_name)
        if not _PATH_RE.fullmatch(path) or posixpath.normpath(path) != path or "/../" in f"{path}/":
            errors.append(f"{field_name} {path!r}: expected a clean absolute path below '/'")
    if errors:
        raise ConfigErrors(errors)


def _image_problem(image: str) -> str | None:
    if not _IMAGE_RE.fullmatch(image):
        return "expected a lowercase image reference like 'registry/name:tag'"
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    if not tag and not digest:
        return "pin a version: add an explicit tag or digest"
    if tag == "latest":
        return "pin a version: 'latest' moves under your feet"
    return None
