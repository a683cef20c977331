"""Every check a later step would make, run offline before the first write.

``install`` writes to GitLab (the runner) before it applies the objects, and publishes the
templates and the schedule after both. A value that only the object builder, the template
renderer or the API server would refuse must therefore be found here, in the validation
phase: the settings are rendered with placeholder credentials and the result is checked the
way Kubernetes checks it (names, labels, images, user ids).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import bootstrap.render as rendering
from bootstrap import validators as v
from bootstrap.config import UID_MAX, Settings
from bootstrap.errors import ConfigErrors

# Kinds whose name Kubernetes checks as a DNS-1123 label; the rest take a subdomain.
_LABEL_NAMED = frozenset({"Namespace", "Service"})


def offline_problems(settings: Settings) -> list[str]:
    """What a render of ``settings`` would be refused for, one line each (empty: none)."""
    from bootstrap.render.templates import validate_defaults

    problems: list[str] = []
    try:
        validate_defaults(rendering.template_defaults(settings))
    except ConfigErrors as exc:
        problems += [f"templates: {error}" for error in exc.errors]
    try:
        # Looked up at call time, as every caller of render does (tests replace it).
        rendered = rendering.render(settings, rendering.Credentials.placeholders())
    except ValueError as exc:
        return [*problems, f"rendering the objects: {exc}"]
    for obj in rendered.objects:
        problems += [f"{obj.kind}/{obj.name}: {p}" for p in _object_problems(obj.kind, obj.body)]
    return problems


def _object_problems(kind: str, body: dict[str, Any]) -> Iterator[str]:
    meta = body.get("metadata", {})
    name = meta.get("name", "")
    check = v.check_dns_label if kind in _LABEL_NAMED else v.check_dns_subdomain
    yield from _checked(check, name, "name")
    for where, labels in _label_sets(body):
        for key, value in labels.items():
            yield from _checked(v.check_label_key, key, f"{where} key")
            yield from _checked(v.check_label_value, value, f"{where} {key}")
    for where, notes in _annotation_sets(body):
        for key in notes:
            yield from _checked(v.check_label_key, key, f"{where} key")
    pod = body.get("spec", {}).get("template", {}).get("spec", {})
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        yield from _checked(v.check_image, container.get("image", ""), "image")
    context = pod.get("securityContext", {})
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        if key in context and not 0 <= context[key] <= UID_MAX:
            yield f"securityContext.{key} {context[key]} is not from 0 to {UID_MAX}"


def _label_sets(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, str]]]:
    yield "label", body.get("metadata", {}).get("labels") or {}
    spec = body.get("spec", {})
    yield "selector label", spec.get("selector", {}).get("matchLabels") or {}
    yield "pod label", spec.get("template", {}).get("metadata", {}).get("labels") or {}


def _annotation_sets(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, str]]]:
    yield "annotation", body.get("metadata", {}).get("annotations") or {}
    template = body.get("spec", {}).get("template", {}).get("metadata", {})
    yield "pod annotation", template.get("annotations") or {}


def _checked(check: Any, value: str, what: str) -> Iterator[str]:
    try:
        check(value)
    except ValueError as exc:
        yield f"{what}: {exc}"
