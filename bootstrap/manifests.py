"""Turn a render into files: one YAML per object, a kustomization, config.toml, CI templates.

``manifest_files`` is pure; ``write_tree`` is the one place that writes them to disk, and it
owns only what it wrote: a manifest in the directory records a sha256 per file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class WriteResult:
    """What ``write_tree`` did: files removed, and earlier files it left alone (and why)."""

    removed: list[str]
    kept: list[str]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _safe_relative(rel: str) -> bool:
    """A plain relative path below the directory: no '..', no absolute path, no '\\'."""
    parts = rel.split("/")
    return (
        bool(rel)
        and not rel.startswith("/")
        and "\\" not in rel
        and all(part not in ("", ".", "..") for part in parts)
        and all(ch.isprintable() for ch in rel)
    )


def read_index(out_dir: Path) -> dict[str, str | None]:
    """The manifest of the last render into ``out_dir``: path -> sha256 (None: not recorded).

    A manifest of an older version lists paths only; their content cannot be proven, so
    they count as not ours. Entries that leave the directory are dropped.
    """
    index = out_dir / INDEX_FILE
    if index.is_symlink() or not index.is_file():
        return {}
    entries: dict[str, str | None] = {}
    for line in index.read_text(encoding="utf-8", errors="replace").splitlines():
        digest, sep, rel = line.partition("  ")
        if not sep:
            digest, rel = "", line.strip()
        if _safe_relative(rel):
            entries[rel] = digest if len(digest) == 64 else None
    return entries


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None


def _symlink_on_the_way(out_dir: Path, rel: str) -> str | None:
    """The first component of ``rel`` below ``out_dir`` that is a symlink, if any."""
    node = out_dir
    for part in rel.split("/"):
        node = node / part
        info = _lstat(node)
        if info is None:
            return None
        if stat.S_ISLNK(info.st_mode):
            return str(node.relative_to(out_dir))
    return None


def _problem(out_dir: Path, rel: str, data: bytes, recorded: str | None, force: bool) -> str:
    """Why ``rel`` must not be written now ('' when it may)."""
    link = _symlink_on_the_way(out_dir, rel)
    if link is not None:
        return f"{link} is a symlink: render never writes through one (remove it)"
    info = _lstat(out_dir / rel)
    if info is None:
        return ""
    if not stat.S_ISREG(info.st_mode):
        return f"{rel} exists and is not a regular file (remove it)"
    have = _digest((out_dir / rel).read_bytes())
    if force or have == _digest(data) or have == recorded:
        return ""
    if recorded is None:
        return f"{rel} was not written by bootstrap render (use --force to overwrite it)"
    return f"{rel} was changed since bootstrap render wrote it (use --force to overwrite it)"


def _write_file(target: Path, data: bytes, mode: int) -> None:
    """Write through a new file renamed into place: never through a symlink, mode set."""
    temp = target.with_name(f".{target.name}.bootstrap-tmp")
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not loosen 0600, nor keep an older mode
        with os.fdopen(fd, "wb", closefd=False) as handle:
            handle.write(data)
    finally:
        os.close(fd)
    os.replace(temp, target)


def write_tree(out_dir: Path, files: Mapping[str, str], *, force: bool = False) -> WriteResult:
    """Write ``files`` under ``out_dir``, owning only what an earlier render wrote there.

    ``out_dir/.bootstrap-files`` records the sha256 of every file written. A file that is
    there but not recorded, or whose content changed since, is not overwritten unless
    ``force``; nothing is written through a symlink (a file's or a directory's, such as
    ``ci-templates``), ``force`` or not. Files an earlier render wrote that are no longer
    rendered are deleted only when their content still has the recorded hash. Files that
    could hold credentials are written with mode 0600, the others 0644.

    Raises:
        InvalidInput: ``out_dir`` is not a directory or cannot be written, or a file may
            not be overwritten (all are listed; nothing is written then).
    """
    check_out_dir(out_dir)
    encoded = {rel: text.encode("utf-8") for rel, text in files.items()}
    try:
        previous = read_index(out_dir) if out_dir.is_dir() else {}
        problems = [
            problem
            for rel, data in encoded.items()
            if (problem := _problem(out_dir, rel, data, previous.get(rel), force))
        ]
        index_link = _symlink_on_the_way(out_dir, INDEX_FILE)
        if index_link is not None:
            problems.append(f"{INDEX_FILE} is a symlink: render never writes through one")
        if problems:
            raise InvalidInput(
                f"--out {out_dir}: refusing to overwrite: " + "; ".join(problems),
                hint="render --out owns only the files it wrote; move the others away, "
                "or pass --force to overwrite them",
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        removed, kept = _remove_stale(out_dir, previous, set(encoded))
        for rel, data in encoded.items():
            target = out_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_file(target, data, 0o600 if _is_sensitive(rel) else 0o644)
        lines = [f"{_digest(data)}  {rel}\n" for rel, data in sorted(encoded.items())]
        _write_file(out_dir / INDEX_FILE, "".join(lines).encode(), 0o644)
    except OSError as exc:
        raise InvalidInput(f"--out {out_dir}: cannot write: {exc.strerror or exc}") from None
    return WriteResult(removed=removed, kept=kept)


def _remove_stale(
    out_dir: Path, previous: Mapping[str, str | None], current: set[str]
) -> tuple[list[str], list[str]]:
    removed: list[str] = []
    kept: list[str] = []
    for rel in sorted(set(previous) - current):
        target = out_dir / rel
        info = _lstat(target)
        if info is None:
            continue
        recorded = previous[rel]
        if (
            _symlink_on_the_way(out_dir, rel) is None
            and stat.S_ISREG(info.st_mode)
            and recorded is not None
            and _digest(target.read_bytes()) == recorded
        ):
            target.unlink()
            removed.append(rel)
        else:
            kept.append(rel)
    return removed, kept
