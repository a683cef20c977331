"""Turn a render into files: one YAML per object, a kustomization, config.toml, CI templates.

``manifest_files`` is pure; ``write_tree`` is the one place that writes them to disk.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from bootstrap.errors import InvalidInput
from bootstrap.render import KubeObject, Rendered

HEADER = "# Rendered by gitlab-eci-bootstrap. Secrets hold placeholders: do not commit real ones.\n"
INDEX_FILE = ".bootstrap-files"
TEMPLATES_DIR = "ci-templates"


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (scripts read as scripts), keys in given order."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(body: Mapping[str, Any]) -> str:
    """One object as YAML, keys in the order they were built."""
    return yaml.dump(dict(body), Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def object_filename(obj: KubeObject) -> str:
    """A stable file name per object, e.g. ``deployment-gitlab-runner.yaml``."""
    return f"{obj.kind.lower()}-{obj.name}.yaml"


def multi_document(objects: Iterable[KubeObject]) -> str:
    """All objects as one multi-document YAML stream."""
    return HEADER + "".join("---\n" + to_yaml(obj.body) for obj in objects)


def kustomization(objects: Iterable[KubeObject]) -> str:
    body = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [object_filename(obj) for obj in objects],
    }
    return HEADER + to_yaml(body)


def manifest_files(rendered: Rendered, templates: Mapping[str, str]) -> dict[str, str]:
    """Relative path -> content for ``render --out DIR``."""
    files = {object_filename(obj): HEADER + to_yaml(obj.body) for obj in rendered.objects}
    files["kustomization.yaml"] = kustomization(rendered.objects)
    files["config.toml"] = rendered.config_toml
    for path, text in templates.items():
        files[f"{TEMPLATES_DIR}/{path}"] = text
    return files


def _is_sensitive(path: str) -> bool:
    return path == "config.toml" or path.startswith("secret-")


def check_out_dir(out_dir: Path) -> None:
    """Refuse an ``--out`` that cannot be a directory, before any work is done."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInput(f"--out {out_dir}: exists and is not a directory")
    parent = next((p for p in out_dir.absolute().parents if p.exists()), None)
    if not out_dir.exists() and parent is not None and not parent.is_dir():
        raise InvalidInput(f"--out {out_dir}: {parent} is not a directory")


def write_tree(out_dir: Path, files: Mapping[str, str]) -> list[str]:
    """Write ``files`` under ``out_dir``; remove files an earlier render wrote that are gone now.

    Files that could hold credentials are written with mode 0600. Returns the removed paths.

    Raises:
        InvalidInput: ``out_dir`` exists and is not a directory, or cannot be written.
    """
    check_out_dir(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        index = out_dir / INDEX_FILE
        previous = set(index.read_text().split()) if index.is_file() else set()
        removed = []
        for stale in sorted(previous - set(files)):
            target = out_dir / stale
            if target.is_file() and out_dir.resolve() in target.resolve().parents:
                target.unlink()
                removed.append(stale)
        for rel, text in files.items():
            target = out_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            mode = 0o600 if _is_sensitive(rel) else 0o644
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(target, mode)
        index.write_text("\n".join(sorted(files)) + "\n")
    except OSError as exc:
        raise InvalidInput(f"--out {out_dir}: cannot write: {exc.strerror or exc}") from None
    return removed
