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

import copy
import difflib
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from bootstrap.render import KubeObject
from bootstrap.render.names import ANNOTATION_CHECKSUM, ANNOTATION_EXPIRES, ANNOTATION_RUNNER_ID

ANNOTATION_APPLIED = "gitlab-eci-bootstrap/applied-hash"
_UNHASHED_ANNOTATIONS = (ANNOTATION_APPLIED, ANNOTATION_RUNNER_ID, ANNOTATION_EXPIRES)
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


def redact_object(body: dict[str, Any]) -> dict[str, Any]:
    """A copy with every Secret value replaced by a short digest: diffs show that, not what."""
    if body.get("kind") != "Secret":
        return body
    clean = copy.deepcopy(body)
    for key in ("data", "stringData"):
        if isinstance(clean.get(key), dict):
            clean[key] = {
                k: f"(redacted, sha256 {hashlib.sha256(str(v).encode()).hexdigest()[:12]})"
                for k, v in clean[key].items()
            }
    return clean


def diff(desired: dict[str, Any], live: dict[str, Any] | None) -> str:
    """A unified diff of live -> desired for the fields we manage, secrets redacted."""
    new = redact_object(_strip(desired))
    old = redact_object(_strip(project(live, desired))) if live else {}
    a = yaml.safe_dump(old, sort_keys=True).splitlines(keepends=True) if old else []
    b = yaml.safe_dump(new, sort_keys=True).splitlines(keepends=True)
    ref = f"{desired['kind']}/{desired['metadata']['name']}"
    return "".join(difflib.unified_diff(a, b, f"live/{ref}", f"desired/{ref}", n=2))


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
