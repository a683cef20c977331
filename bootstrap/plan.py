"""Desired vs live objects -> a list of changes, and redacted diffs. Pure functions.

An object is unchanged when (a) the hash of what we last applied, kept in an annotation,
equals the hash of what we would apply now — this catches every change we make, removals
included — and (b) every field we set still has our value live — this catches drift made
by others, and changes of the fields the hash leaves out. Server-set fields (status,
defaults, managedFields) never count.

The hash leaves out what ``bootstrap rotate`` changes without the settings at hand — Secret
values (their keys count), the runner id and token expiry annotations, the pod template's
config checksum — so a rotation does not make the next ``install`` rewrite the objects.
"""

from __future__ import annotations

import base64
import copy
import difflib
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from typing import Any, Literal

from bootstrap.render import KubeObject
from bootstrap.render.names import (
    ANNOTATION_CHECKSUM,
    ANNOTATION_EXPIRES,
    ANNOTATION_OPS_EXPIRES,
    ANNOTATION_OPS_RUNNER_ID,
    ANNOTATION_RUNNER_ID,
)

ANNOTATION_APPLIED = "gitlab-eci-bootstrap/applied-hash"
# The runners' ids and token expiries change with every rotation (both entries).
_UNHASHED_ANNOTATIONS = (
    ANNOTATION_APPLIED,
    ANNOTATION_RUNNER_ID,
    ANNOTATION_EXPIRES,
    ANNOTATION_OPS_RUNNER_ID,
    ANNOTATION_OPS_EXPIRES,
)
Action = Literal["create", "update", "unchanged", "delete"]
_SERVER_FIELDS = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation")


@dataclass(frozen=True)
class Change:
    """What ``install`` does to one object."""

    obj: KubeObject
    action: Action
    diff: str = ""

    @property
    def ref(self) -> str:
        return self.obj.ref

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.obj.kind,
            "name": self.obj.name,
            "namespace": self.obj.namespace,
            "action": self.action,
            # Field changes, secrets as (sensitive): the same lines the text plan shows.
            "diff": self.diff.splitlines(),
        }


def applied_hash(body: dict[str, Any]) -> str:
    """A stable hash of an object as we apply it, without the fields rotation changes."""
    clean = copy.deepcopy(body)
    annotations = clean.get("metadata", {}).get("annotations", {})
    for key in _UNHASHED_ANNOTATIONS:
        annotations.pop(key, None)
    if isinstance(clean.get("data"), dict):
        clean["data"] = sorted(clean["data"])
    template = clean.get("spec", {}).get("template", {}).get("metadata", {})
    template.get("annotations", {}).pop(ANNOTATION_CHECKSUM, None)
    return hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).hexdigest()[:32]


def with_applied_hash(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``body`` that carries its own hash annotation."""
    stamped = copy.deepcopy(body)
    digest = applied_hash(body)
    stamped["metadata"].setdefault("annotations", {})[ANNOTATION_APPLIED] = digest
    return stamped


def is_subset(desired: Any, live: Any) -> bool:
    """Whether every field of ``desired`` has the same value in ``live``.

    Maps may have extra keys live (server defaults); lists must have the same length and
    each element must be a subset of its counterpart.
    """
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(k in live and is_subset(v, live[k]) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return False
        return all(is_subset(d, lv) for d, lv in zip(desired, live, strict=True))
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    if isinstance(desired, int | float) and isinstance(live, int | float):
        return desired == live
    return bool(desired == live) or str(desired) == str(live)


def decide(desired: dict[str, Any], live: dict[str, Any] | None) -> Action:
    """create / update / unchanged for one object (``desired`` already carries its hash)."""
    if live is None:
        return "create"
    want = desired["metadata"].get("annotations", {}).get(ANNOTATION_APPLIED)
    have = (live.get("metadata", {}).get("annotations") or {}).get(ANNOTATION_APPLIED)
    if want != have:
        return "update"
    return "unchanged" if is_subset(desired, live) else "update"


def project(live: Any, shape: Any) -> Any:
    """The part of ``live`` that has the shape of ``shape`` (for diffs without server noise)."""
    if isinstance(shape, dict) and isinstance(live, dict):
        return {k: project(live[k], v) for k, v in shape.items() if k in live}
    if isinstance(shape, list) and isinstance(live, list):
        return [project(lv, shape[i]) if i < len(shape) else lv for i, lv in enumerate(live)]
    return live


SENSITIVE = "(sensitive)"
#: Keys whose values are secrets wherever they appear (config.toml's runner token, the
#: S3/GCS/Azure cache keys, passwords), matched on the lower-cased last key of a path.
_SENSITIVE_KEYS = frozenset(
    {"token", "secret", "password", "passwd", "secretkey", "secret_key", "accesskey"}
    | {"access_key", "privatekey", "private_key", "accountkey", "account_key", "sessiontoken"}
)
_SENSITIVE_SUFFIXES = ("_token", "-token", "password", "_secret")
#: Token prefixes GitLab issues: a value starting with one is a secret whatever its key.
_TOKEN_PREFIXES = ("glrt-", "glpat-", "gldt-", "glcbt-", "glptt-", "glft-", "glsoat-", "gloas-")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LAST_KEY = re.compile(r'(?:^|\.)([A-Za-z_][A-Za-z0-9_]*)$|\["((?:[^"\\]|\\.)*)"\]$')


def is_sensitive(path: str, value: Any = None) -> bool:
    """Whether the value at ``path`` is a secret (``(sensitive)`` in every diff)."""
    match = _LAST_KEY.search(path)
    low = (match.group(1) or match.group(2) if match else path).lower()
    if low in _SENSITIVE_KEYS or low.endswith(_SENSITIVE_SUFFIXES):
        return True
    return isinstance(value, str) and value.startswith(_TOKEN_PREFIXES)


def _key(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    text = str(key)
    if _IDENTIFIER.fullmatch(text):
        return f"{path}.{text}" if path else text
    return f"{path}[{json.dumps(text)}]"


def _show(value: Any, path: str) -> str:
    if is_sensitive(path, value):
        return SENSITIVE
    if isinstance(value, list) and any(is_sensitive(path, v) for v in value):
        return SENSITIVE
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _leaves(value: Any, path: str) -> list[tuple[str, Any]]:
    """Every scalar (or scalar list) under ``value`` with its path."""
    if isinstance(value, dict) and value:
        return [leaf for k in sorted(value, key=str) for leaf in _leaves(value[k], _key(path, k))]
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, _key(path, i))]
    return [(path, value)]


def field_changes(old: Any, new: Any, path: str = "") -> list[str]:
    """Terraform-like lines, one per changed field: ``~ a.b: 1 -> 2``, ``+ c: "x"``,
    ``- d: true``; secret values (by key, or GitLab token prefix) as ``(sensitive)``."""
    if isinstance(old, dict) and isinstance(new, dict):
        lines = []
        for k in sorted(set(old) | set(new), key=str):
            sub = _key(path, k)
            if k not in old:
                lines += [f"+ {p}: {_show(v, p)}" for p, v in _leaves(new[k], sub)]
            elif k not in new:
                lines += [f"- {p}: {_show(v, p)}" for p, v in _leaves(old[k], sub)]
            else:
                lines += field_changes(old[k], new[k], sub)
        return lines
    nested = any(isinstance(v, dict | list) for v in (old if isinstance(old, list) else []))
    nested |= any(isinstance(v, dict | list) for v in (new if isinstance(new, list) else []))
    if isinstance(old, list) and isinstance(new, list) and nested:
        lines = []
        for i in range(max(len(old), len(new))):
            sub = _key(path, i)
            if i >= len(old):
                lines += [f"+ {p}: {_show(v, p)}" for p, v in _leaves(new[i], sub)]
            elif i >= len(new):
                lines += [f"- {p}: {_show(v, p)}" for p, v in _leaves(old[i], sub)]
            else:
                lines += field_changes(old[i], new[i], sub)
        return lines
    if old == new:
        return []
    if isinstance(old, str) and isinstance(new, str) and "\n" in old + new:
        if is_sensitive(path, old) or is_sensitive(path, new):
            return [f"~ {path}: {SENSITIVE} -> {SENSITIVE}"]
        body = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1)
        return [f"~ {path}:"] + ["    " + line for line in list(body)[2:]]
    return [f"~ {path}: {_show(old, path)} -> {_show(new, path)}"]


def _secret_values(body: dict[str, Any]) -> dict[str, str | bytes]:
    """A Secret's values decoded: text when UTF-8, else the bytes (a binary value, say a
    keystore, compares by its bytes: one binary value replaced by another is a change)."""
    values: dict[str, str | bytes] = {}
    for key, value in (body.get("data") or {}).items():
        try:
            raw = base64.b64decode(str(value))
        except ValueError:
            raw = str(value).encode()  # not base64 (the API refuses it): compared as sent
        try:
            values[key] = raw.decode()
        except UnicodeDecodeError:
            values[key] = raw
    values.update({k: str(v) for k, v in (body.get("stringData") or {}).items()})
    return values


def _secret_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """A Secret's keys added, removed or changed; values ``(sensitive)``. A TOML value
    (config.toml) is compared field by field, its secrets ``(sensitive)``."""
    before, after = _secret_values(old), _secret_values(new)
    lines = []
    for key in sorted(set(before) | set(after)):
        path = _key("data", key)
        if key not in before:
            lines.append(f"+ {path}: {SENSITIVE}")
            if key.endswith(".toml"):
                lines += ["    " + line for line in _toml_changes("", after[key]) or []]
        elif key not in after:
            lines.append(f"- {path}: {SENSITIVE}")
        elif before[key] != after[key]:
            fields = _toml_changes(before[key], after[key]) if key.endswith(".toml") else None
            if fields is None:
                lines.append(f"~ {path}: {SENSITIVE} -> {SENSITIVE}")
            else:
                lines.append(f"~ {path}:")
                lines += ["    " + line for line in fields]
    return lines


def _toml_changes(old: str | bytes | None, new: str | bytes) -> list[str] | None:
    """Field changes between two TOML texts; None when one does not parse (or is binary)."""
    if isinstance(old, bytes) or isinstance(new, bytes):
        return None
    try:
        before = tomllib.loads(old) if old else {}
        after = tomllib.loads(new)
    except tomllib.TOMLDecodeError:
        return None
    return field_changes(before, after) or ["(comments or formatting only)"]


def diff(desired: dict[str, Any], live: dict[str, Any] | None) -> str:
    """The fields we manage that differ between ``live`` and ``desired``, one per line
    (every field, as ``+``, when ``live`` is None). Secret values never appear: a Secret
    shows which keys changed, and its config.toml the changed fields, secrets redacted."""
    new = _unnamed(_strip(desired))
    old = _unnamed(_strip(project(live, desired))) if live else {}
    if desired.get("kind") == "Secret":
        rest = field_changes(
            {k: v for k, v in old.items() if k not in ("data", "stringData")},
            {k: v for k, v in new.items() if k not in ("data", "stringData")},
        )
        # Every key live counts: one we no longer send is removed by the apply.
        lines = rest + _secret_changes(live or {}, new)
    else:
        lines = field_changes(old, new)
    return "".join(line + "\n" for line in lines)


def _strip(body: dict[str, Any]) -> dict[str, Any]:
    clean = copy.deepcopy(body)
    meta = clean.get("metadata", {})
    for key in _SERVER_FIELDS:
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    annotations.pop(ANNOTATION_APPLIED, None)
    if not annotations:
        meta.pop("annotations", None)
    clean.pop("status", None)
    return clean


def _unnamed(body: dict[str, Any]) -> dict[str, Any]:
    """Without what the object's ref already says (kind, name, namespace)."""
    clean = {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
    meta = {
        k: v for k, v in (clean.get("metadata") or {}).items() if k not in ("name", "namespace")
    }
    if meta:
        clean["metadata"] = meta
    else:
        clean.pop("metadata", None)
    return clean
