"""Which kubeconfig files and context to use, checked and merged as kubectl merges them.

``KUBECONFIG`` may list several files (``a:b``). kubectl reads them in order: for each
cluster, context and user name the first file that defines it wins, and ``current-context``
comes from the first file that sets one; a listed file that does not exist is skipped. This
module reads the files itself, before the ``kubernetes`` client does, so that every problem
(a missing file, a file that is not YAML or not a kubeconfig, an unknown context) becomes
one :class:`~bootstrap.errors.InvalidInput` naming where the value came from — ``$KUBECONFIG``,
``--kubeconfig`` or the settings key — and the fix. No network, no client import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bootstrap.errors import InvalidInput

DEFAULT_PATH = "~/.kube/config"
_SECTIONS = ("clusters", "contexts", "users")


@dataclass(frozen=True)
class Choice:
    """The kubeconfig to load: its files (as the client takes them) and the context."""

    files: tuple[Path, ...]
    context: str
    source: str  # where the file list came from, for messages

    @property
    def config_file(self) -> str:
        """The files joined as ``KUBECONFIG`` joins them (the client merges them too)."""
        return os.pathsep.join(str(path) for path in self.files)


def _read(path: Path, source: str) -> dict[str, Any]:
    """One kubeconfig file as a mapping; {} when empty (kubectl accepts an empty file)."""
    label = (
        f"KUBECONFIG file {path}"
        if source == "KUBECONFIG"
        else str(path)
        if source == DEFAULT_PATH
        else _named(source, str(path))
    )
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise InvalidInput(
            f"{label}: is a directory, not a kubeconfig file",
            hint="point it at the file, e.g. ~/.kube/config",
        ) from None
    except PermissionError:
        raise InvalidInput(
            f"{label}: permission denied", hint=f"make it readable: chmod u+r {path}"
        ) from None
    except UnicodeDecodeError:
        raise InvalidInput(
            f"{label}: not UTF-8 text, so not a kubeconfig",
            hint="point it at a kubeconfig (kubectl config view --raw shows yours)",
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "it does not parse"
        raise InvalidInput(
            f"{label}: not valid YAML{where} ({problem}), so not a kubeconfig",
            hint="fix the file, or point at another: kubectl config view shows what kubectl reads",
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = "list" if isinstance(data, list) else "scalar"
        raise InvalidInput(
            f"{label}: holds a YAML {kind}, not a kubeconfig (a mapping with clusters, "
            "contexts and users)",
            hint="point it at a kubeconfig: kubectl config view --raw shows yours",
        )
    for section in _SECTIONS:
        items = data.get(section) or []
        if not isinstance(items, list) or not all(
            isinstance(item, dict) and isinstance(item.get("name"), str) for item in items
        ):
            raise InvalidInput(
                f"{label}: {section} must be a list of entries with a name",
                hint="fix the file: kubectl config view shows what kubectl reads",
            )
    return data


def merge(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """kubectl's merge: the first file to name a cluster, context or user wins; the first
    non-empty ``current-context`` wins."""
    merged: dict[str, Any] = {section: [] for section in _SECTIONS}
    merged["current-context"] = ""
    for data in documents:
        for section in _SECTIONS:
            known = {item["name"] for item in merged[section]}
            merged[section] += [
                item for item in data.get(section) or [] if item["name"] not in known
            ]
        if not merged["current-context"] and data.get("current-context"):
            merged["current-context"] = str(data["current-context"])
    return merged


def choose(
    kubeconfig: str | None,
    context: str | None,
    *,
    environ: Mapping[str, str],
    origins: Mapping[str, str] | None = None,
) -> Choice | None:
    """The kubeconfig files and context to use; None when there is no kubeconfig at all
    (then the pod's service account is the only way in).

    Args:
        kubeconfig: the ``kubernetes.kubeconfig`` setting (one file), if set.
        context: the ``kubernetes.context`` setting, if set.
        environ: where ``KUBECONFIG`` is read.
        origins: where each setting came from (``--kubeconfig``, ``$BOOTSTRAP_...``, the
            settings file), keyed ``kubeconfig`` and ``context``, for messages.

    Raises:
        InvalidInput: a file is missing or not a kubeconfig; the context is unknown.
    """
    origins = origins or {}
    if kubeconfig:
        source = origins.get("kubeconfig", "--kubeconfig")
        paths = [Path(kubeconfig).expanduser()]
        if not paths[0].exists():
            raise InvalidInput(
                f"{_named(source, kubeconfig)}: no such file",
                hint="give the path of a kubeconfig file (kubectl config view --raw shows yours)",
            )
    elif environ.get("KUBECONFIG", "").strip(os.pathsep):
        source = "KUBECONFIG"
        listed = [p for p in environ["KUBECONFIG"].split(os.pathsep) if p]
        paths = [Path(p).expanduser() for p in listed]
        # kubectl skips listed files that do not exist; none existing is an error here, as
        # nothing else would say why the cluster cannot be found.
        paths = [p for p in paths if p.exists()]
        if not paths:
            missing = ", ".join(listed)
            raise InvalidInput(
                f"KUBECONFIG={environ['KUBECONFIG']}: no such file ({missing})",
                hint="export KUBECONFIG=<path of your kubeconfig>, or pass --kubeconfig FILE",
            )
    else:
        default = Path(DEFAULT_PATH).expanduser()
        if not default.is_file():
            return None
        source, paths = DEFAULT_PATH, [default]
    merged = merge([_read(path, source) for path in paths])
    names = [item["name"] for item in merged["contexts"]]
    listing = ", ".join(names) or "none"
    joined = os.pathsep.join(str(path) for path in paths)
    where = (
        f"KUBECONFIG={joined}"
        if source == "KUBECONFIG"
        else joined
        if not kubeconfig
        else f"{source} {joined}"
    )
    pick = (
        f"pass --context NAME (contexts there: {listing}), or run kubectl config use-context NAME"
    )
    wanted = context or merged["current-context"]
    if not wanted:
        raise InvalidInput(f"{where} sets no current-context", hint=pick)
    if wanted not in names and context:
        raise InvalidInput(
            f"{_named(origins.get('context', '--context'), context)}: no such context in {where}",
            hint=f"contexts there: {listing}",
        )
    if wanted not in names:
        raise InvalidInput(
            f"{where}: its current-context {wanted} is not one of its contexts", hint=pick
        )
    entry = next(item for item in merged["contexts"] if item["name"] == wanted)
    cluster = (entry.get("context") or {}).get("cluster")
    clusters = {item["name"]: item for item in merged["clusters"]}
    if not cluster or cluster not in clusters:
        raise InvalidInput(
            f"context {wanted} in {where} names cluster {cluster!r}, which is not defined there",
            hint="fix the context (kubectl config set-context) or pick another with --context",
        )
    if not (clusters[cluster].get("cluster") or {}).get("server"):
        raise InvalidInput(
            f"cluster {cluster} in {where} has no server",
            hint=f"kubectl config set-cluster {cluster} --server=https://HOST:6443",
        )
    return Choice(files=tuple(paths), context=wanted, source=source)


def _named(origin: str, value: str) -> str:
    """``--context x``, ``$VAR=x``, ``kubernetes.context in FILE = x``: the value and its source."""
    if origin.startswith("--"):
        return f"{origin} {value}"
    if origin.startswith("$"):
        return f"{origin}={value}"
    return f"{origin} = {value}"


def context_names(kubeconfig: str | None, environ: Mapping[str, str]) -> list[str]:
    """The contexts ``choose`` would pick from, for shell completion: [] on any problem."""
    if kubeconfig:
        listed = [kubeconfig]
    elif environ.get("KUBECONFIG", "").strip(os.pathsep):
        listed = [p for p in environ["KUBECONFIG"].split(os.pathsep) if p]
    else:
        listed = [DEFAULT_PATH]
    try:
        paths = [Path(p).expanduser() for p in listed]
        merged = merge([_read(path, "completion") for path in paths if path.is_file()])
    except InvalidInput:
        return []
    return [item["name"] for item in merged["contexts"]]
