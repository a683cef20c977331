"""Pure functions behind the fake kube-apiserver's writes.

* JSON merge patch (RFC 7386) and JSON patch (RFC 6902);
* an approximation of strategic merge patch (maps merge, lists replace, except
  the lists Kubernetes merges by key: containers and volumes by ``name``, ...),
  with the directives kubectl sends (``$patch``, ``$setElementOrder/``,
  ``$retainKeys``, ``$deleteFromPrimitiveList/``);
* field paths for server-side apply: the set of leaf paths of an object, in the
  ``fieldsV1`` notation (``f:spec``, ``k:{"name":"x"}``), and a ``fieldsV1`` renderer;
* label and field selectors.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Path = tuple[str, ...]
#: Returns the key field of a list called ``field`` holding ``items``, or None (atomic).
KeyFor = Callable[[str, list[Any]], str | None]

#: List fields Kubernetes' built-in types merge by key (patchMergeKey / listMapKey).
BUILTIN_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
}
#: Primitive lists strategic merge patch merges as sets.
BUILTIN_MERGE_PRIMITIVES = frozenset({"finalizers"})


class PatchError(ValueError):
    """A patch that cannot be applied (answered 422 or 400 by the fake)."""


def builtin_key_for(field: str, items: list[Any]) -> str | None:
    """Merge key of a built-in list field, when every item carries it."""
    if field == "ports":
        has_container_port = any(isinstance(i, dict) and "containerPort" in i for i in items)
        key: str | None = "containerPort" if has_container_port else "port"
    else:
        key = BUILTIN_MERGE_KEYS.get(field)
    if key is not None and all(isinstance(i, dict) and key in i for i in items):
        return key
    return None


def atomic_lists(_field: str, _items: list[Any]) -> str | None:
    """Key function for custom resources: every list is atomic."""
    return None


# -- JSON merge patch / JSON patch ---------------------------------------------------


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            raise PatchError(f"path /{'/'.join(parts)} not found")
    return doc


def json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902 (add, remove, replace, move, copy, test) on a copy of ``doc``."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    result = copy.deepcopy(doc)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation {op!r}")
        kind, parts = op["op"], _pointer(op["path"])
        if kind == "test":
            if _walk(result, parts) != op.get("value"):
                raise PatchError(f"test failed at {op['path']}")
            continue
        if kind in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = copy.deepcopy(_walk(result, source))
            if kind == "move":
                result = _remove(result, source)
            result = _add(result, parts, value)
        elif kind == "add":
            result = _add(result, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            result = _remove(result, parts)
        elif kind == "replace":
            _walk(result, parts)
            result = _add(_remove(result, parts), parts, copy.deepcopy(op.get("value")))
        else:
            raise PatchError(f"unknown JSON patch operation {kind!r}")
    return result


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise PatchError(f"bad list index {last!r}")
    else:
        raise PatchError("cannot add into a scalar")
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise PatchError(f"path /{'/'.join(parts)} not found")
    return doc


# -- strategic merge patch -------------------------------------------------------------


def strategic_merge_patch(original: Any, patch: Any, key_for: KeyFor = builtin_key_for) -> Any:
    """Apply a strategic merge patch (the subset kubectl and clients send)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(original, dict):
        original = {}
    patch = dict(patch)
    directive = patch.pop("$patch", None)
    if directive == "replace":
        return _strip_directives(patch)
    if directive == "delete":
        return None
    retain = patch.pop("$retainKeys", None)
    orders = {
        k.split("/", 1)[1]: patch.pop(k) for k in list(patch) if k.startswith("$setElementOrder/")
    }
    deletions = {
        k.split("/", 1)[1]: patch.pop(k)
        for k in list(patch)
        if k.startswith("$deleteFromPrimitiveList/")
    }
    result = copy.deepcopy(original)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value, key_for)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value, key_for)
        else:
            result[key] = value
    for key, values in deletions.items():
        if isinstance(result.get(key), list):
            result[key] = [v for v in result[key] if v not in values]
    for key, order in orders.items():
        if isinstance(result.get(key), list):
            result[key] = _reorder(key, result[key], order, key_for)
    if retain is not None:
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def _merge_list(field: str, original: Any, patch: list[Any], key_for: KeyFor) -> list[Any]:
    current = copy.deepcopy(original) if isinstance(original, list) else []
    if field in BUILTIN_MERGE_PRIMITIVES and key_for is builtin_key_for:
        return current + [v for v in patch if v not in current]
    replace_all = any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch)
    key = key_for(field, [i for i in patch + current if isinstance(i, dict)])
    if key is None or replace_all:
        return [_strip_directives(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"{field}: every item needs the merge key {key!r}")
        index = next((n for n, c in enumerate(current) if c.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del current[index]
        elif index is None:
            current.append(_strip_directives(item))
        else:
            current[index] = strategic_merge_patch(current[index], item, key_for)
    return current


def _reorder(field: str, items: list[Any], order: list[Any], key_for: KeyFor) -> list[Any]:
    key = key_for(field, [i for i in items if isinstance(i, dict)])
    ident: Callable[[Any], Any] = (
        (lambda v: v.get(key) if isinstance(v, dict) else v) if key else (lambda v: v)
    )
    wanted = [ident(o) for o in order]
    return sorted(
        items,
        key=lambda v: wanted.index(ident(v)) if ident(v) in wanted else len(wanted),
    )


# -- field paths (server-side apply) ------------------------------------------------------


def item_key(item: dict[str, Any], key: str) -> str:
    """The ``k:{...}`` path element of an associative list item."""
    return "k:" + json.dumps({key: item[key]}, separators=(",", ":"), sort_keys=True)


def leaf_paths(obj: Any, key_for: KeyFor, prefix: Path = ()) -> set[Path]:
    """The owned-field paths of ``obj``: leaves, empty maps, atomic lists, list items.

    An associative list item contributes its own path (``...k:{"name":"x"}``, the
    ``"."`` of fieldsV1) as well as the paths of its fields.
    """
    paths: set[Path] = set()
    if not isinstance(obj, dict):
        return paths
    for name, value in obj.items():
        here = (*prefix, f"f:{name}")
        if isinstance(value, dict) and value:
            paths |= leaf_paths(value, key_for, here)
        elif isinstance(value, list) and value and (key := key_for(name, value)):
            for item in value:
                item_path = (*here, item_key(item, key))
                paths.add(item_path)
                paths |= leaf_paths(item, key_for, item_path)
        else:
            paths.add(here)
    return paths


def _child(node: Any, element: str) -> Any:
    if element.startswith("f:") and isinstance(node, dict):
        return node.get(element[2:], _MISSING)
    if element.startswith("k:") and isinstance(node, list):
        wanted = json.loads(element[2:])
        for item in node:
            if isinstance(item, dict) and all(item.get(k) == v for k, v in wanted.items()):
                return item
    return _MISSING


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def get_path(obj: Any, path: Path) -> Any:
    """The value at ``path``, or :data:`MISSING`."""
    node = obj
    for element in path:
        node = _child(node, element)
        if node is _MISSING:
            return _MISSING
    return node


MISSING = _MISSING


def remove_path(obj: Any, path: Path) -> None:
    """Delete the field or list item at ``path``; prune maps it leaves empty."""
    if not path:
        return
    trail: list[tuple[Any, str]] = []
    node = obj
    for element in path[:-1]:
        nxt = _child(node, element)
        if nxt is _MISSING:
            return
        trail.append((node, element))
        node = nxt
    last = path[-1]
    if last.startswith("f:") and isinstance(node, dict):
        node.pop(last[2:], None)
    elif last.startswith("k:") and isinstance(node, list):
        target = _child(node, last)
        if target is not _MISSING:
            node.remove(target)
    # prune parents that became empty (an empty map or list left behind by the removal)
    while trail and node in ({}, []):
        parent, element = trail.pop()
        if element.startswith("f:") and isinstance(parent, dict):
            parent.pop(element[2:], None)
        elif element.startswith("k:") and isinstance(parent, list):
            break  # a list item with only its key left stays
        node = parent


def removable_paths(candidates: set[Path], kept: set[Path]) -> list[Path]:
    """The paths server-side apply may remove, deepest first.

    A list item is removed whole (its fields are skipped) unless a path in ``kept``
    lies inside it; an item's key field is never removed on its own.
    """
    chosen = []
    for path in candidates:
        if any(p[: len(path)] == path and p != path for p in kept):
            continue  # someone else still owns something inside
        inside_removed_item = any(
            element.startswith("k:") and path[: n + 1] in candidates and n + 1 < len(path)
            for n, element in enumerate(path)
        )
        if inside_removed_item:
            continue
        is_key_field = (
            len(path) >= 2
            and path[-2].startswith("k:")
            and path[-1][2:] in json.loads(path[-2][2:])
        )
        if not is_key_field:
            chosen.append(path)
    return sorted(chosen, key=len, reverse=True)


def apply_merge(live: Any, applied: Any, key_for: KeyFor) -> Any:
    """Merge an applied configuration into ``live`` (maps and keyed lists merge)."""
    if not isinstance(applied, dict) or not isinstance(live, dict):
        return copy.deepcopy(applied)
    result = copy.deepcopy(live)
    for name, value in applied.items():
        if value is None:
            result.pop(name, None)
            continue
        current = result.get(name)
        if isinstance(value, dict) and isinstance(current, dict):
            result[name] = apply_merge(current, value, key_for)
        elif (
            isinstance(value, list)
            and isinstance(current, list)
            and (key := key_for(name, value + current))
        ):
            merged = list(current)
            for item in value:
                index = next((n for n, c in enumerate(merged) if c.get(key) == item.get(key)), None)
                if index is None:
                    merged.append(copy.deepcopy(item))
                else:
                    merged[index] = apply_merge(merged[index], item, key_for)
            result[name] = merged
        else:
            result[name] = copy.deepcopy(value)
    return result


def fields_v1(paths: set[Path]) -> dict[str, Any]:
    """Render paths as a ``fieldsV1`` tree; list items get a ``"."`` entry."""
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for element in path:
            node = node.setdefault(element, {})
        if path[-1].startswith("k:"):
            node["."] = {}
    return tree


def changed_paths(old: Any, new: Any, key_for: KeyFor) -> set[Path]:
    """Paths of ``new`` that are absent from ``old`` or hold another value."""
    changed = set()
    for path in leaf_paths(new, key_for):
        before = get_path(old, path)
        if path[-1].startswith("k:"):
            if before is MISSING:
                changed.add(path)
        elif before != get_path(new, path):
            changed.add(path)
    return changed


# -- selectors -----------------------------------------------------------------------------

_SET_RE = re.compile(r"^\s*(!?)([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_RE = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)([\w./-]+)\s*$")


def _split_requirements(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return [p for p in parts if p.strip()]


@dataclass(frozen=True)
class _Requirement:
    """One requirement of a selector: ``key <op> values``."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def matches(self, value: str | None) -> bool:
        if self.op in ("exists", "!exists"):
            return (value is not None) == (self.op == "exists")
        if self.op in ("=", "in"):
            return value in self.values
        return value not in self.values


def _parse_label_requirement(text: str) -> _Requirement:
    if match := _SET_RE.match(text):
        _, key, op, raw = match.groups()
        return _Requirement(key, op, frozenset(v.strip() for v in raw.split(",") if v.strip()))
    if match := _EQ_RE.match(text):
        key, op, value = match.groups()
        return _Requirement(key, "!=" if op == "!=" else "=", frozenset({value}))
    if match := _EXISTS_RE.match(text):
        negate, key = match.groups()
        return _Requirement(key, "!exists" if negate else "exists")
    raise ValueError(f"unable to parse requirement: {text!r}")


def label_selector(selector: str) -> Callable[[dict[str, str]], bool]:
    """Compile ``k=v,k2!=v,k3 in (a,b),k4 notin (c),k5,!k6`` into a predicate on labels."""
    requirements = [_parse_label_requirement(r) for r in _split_requirements(selector)]
    return lambda labels: all(r.matches(labels.get(r.key)) for r in requirements)


def _field_value(obj: dict[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return "" if node is None else str(node)


def field_selector(selector: str) -> Callable[[dict[str, Any]], bool]:
    """Compile ``metadata.name=x,metadata.namespace!=y`` into a predicate on objects."""
    requirements = []
    for text in _split_requirements(selector):
        match = re.match(r"^\s*([\w.]+)\s*(==|=|!=)\s*(.*?)\s*$", text)
        if match is None:
            raise ValueError(f"invalid field selector: {text!r}")
        path, op, value = match.groups()
        requirements.append(_Requirement(path, "!=" if op == "!=" else "=", frozenset({value})))
    return lambda obj: all(r.matches(_field_value(obj, r.key)) for r in requirements)
