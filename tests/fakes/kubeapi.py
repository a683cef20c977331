"""Wire formats of the Kubernetes API, as the fake kube-apiserver writes them.

Pure functions and constants, no server state: ``Status`` errors
(:class:`KubeError` and its constructors), discovery documents, the minimal
OpenAPI v3 documents kubectl needs, ``Table`` rendering for ``kubectl get``, the
protobuf SelfSubjectAccessReview that ``kubectl auth can-i`` sends, and timestamps.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from tests.fakes.kubetypes import Cause, ResourceType
from tests.fakes.server import Response

SERVER_VERSION = {
    "major": "1",
    "minor": "37",
    "gitVersion": "v1.37.0-fake",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.25.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def timestamp(moment: float | None = None) -> str:
    """RFC 3339 in UTC, seconds precision, as Kubernetes writes it."""
    when = datetime.fromtimestamp(moment if moment is not None else time.time(), UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(value: str) -> float:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def human_age(created: str | None) -> str:
    """kubectl's AGE column: ``5s``, ``3m``, ``2h``, ``4d``."""
    if not created:
        return "<unknown>"
    seconds = max(0, int(time.time() - parse_timestamp(created)))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class KubeError(Exception):
    """An API error, answered as a ``Status`` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def response(self) -> Response:
        return Response.json(
            self.code, status_body(self.code, self.reason, self.message, self.details), self.headers
        )


def status_body(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A ``meta/v1 Status`` object describing a failure."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


def error_details(rt: ResourceType, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if rt.group:
        details["group"] = rt.group
    details["kind"] = rt.plural
    return details


def not_found(rt: ResourceType, name: str) -> KubeError:
    return KubeError(
        404, "NotFound", f'{rt.group_resource} "{name}" not found', error_details(rt, name)
    )


def already_exists(rt: ResourceType, name: str) -> KubeError:
    return KubeError(
        409,
        "AlreadyExists",
        f'{rt.group_resource} "{name}" already exists',
        error_details(rt, name),
    )


def conflict(rt: ResourceType, name: str) -> KubeError:
    return KubeError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rt.group_resource} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        error_details(rt, name),
    )


def bad_request(message: str) -> KubeError:
    return KubeError(400, "BadRequest", message)


def invalid(group: str, kind: str, name: str, causes: list[Cause]) -> KubeError:
    group_kind = f"{kind}.{group}" if group else kind
    parts = [f"{c.field}: {c.message}" for c in causes]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [
        {"reason": c.reason, "message": c.message, "field": c.field} for c in causes
    ]
    return KubeError(422, "Invalid", f'{group_kind} "{name}" is invalid: {summary}', details)


def route_not_found() -> KubeError:
    return KubeError(404, "NotFound", "the server could not find the requested resource", {})


def api_group(group: str, versions: list[str]) -> dict[str, Any]:
    """One entry of an ``APIGroupList`` (the first version is the preferred one)."""
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def resource_list(group: str, version: str, types: Iterable[ResourceType]) -> dict[str, Any]:
    """The ``APIResourceList`` of one group version."""
    resources = []
    for t in sorted(types, key=lambda t: t.plural):
        entry: dict[str, Any] = {
            "name": t.plural,
            "singularName": t.singular_name,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": list(t.verbs),
        }
        if t.short_names:
            entry["shortNames"] = list(t.short_names)
        if t.categories:
            entry["categories"] = list(t.categories)
        entry["storageVersionHash"] = hashlib.sha256(
            f"{t.group}/{t.version}/{t.kind}".encode()
        ).hexdigest()[:11]
        resources.append(entry)
        if t.status_subresource:
            resources.append(
                {
                    "name": f"{t.plural}/status",
                    "singularName": "",
                    "namespaced": t.namespaced,
                    "kind": t.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def openapi_v3_document(group: str, version: str, types: Iterable[ResourceType]) -> dict[str, Any]:
    """A minimal OpenAPI v3 document: operations and their query parameters, no schemas.

    kubectl reads it to learn that the server validates fields itself (every PATCH
    declares ``fieldValidation``); without that it would validate client-side, which
    needs ``/openapi/v2``. PATCH operations declare no request body, so ``kubectl
    apply`` builds strategic merge patches from its compiled-in types instead.
    """
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    query_params = [
        {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
        for name in ("dryRun", "fieldManager", "fieldValidation")
    ]
    ok = {"200": {"description": "OK"}}
    paths: dict[str, Any] = {}
    for t in sorted(types, key=lambda t: t.plural):
        if "patch" not in t.verbs:
            continue
        gvk = {"group": group, "version": version, "kind": t.kind}

        def operation(action: str, params: list[dict[str, Any]] | None, gvk: Any = gvk) -> Any:
            op: dict[str, Any] = {
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "responses": ok,
            }
            if params is not None:
                op["parameters"] = params
            return op

        scope = f"{base}/namespaces/{{namespace}}" if t.namespaced else base
        force = {"name": "force", "in": "query", "schema": {"type": "boolean"}}
        paths[f"{scope}/{t.plural}"] = {"post": operation("post", query_params)}
        paths[f"{scope}/{t.plural}/{{name}}"] = {
            "get": operation("get", None),
            "put": operation("put", query_params),
            "patch": operation("patch", [*query_params, force]),
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (fake)", "version": SERVER_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": {}},
    }


def _ready_cell(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    return f"{status.get('readyReplicas', 0)}/{(obj.get('spec') or {}).get('replicas', 1)}"


def _pod_ready_cell(obj: dict[str, Any]) -> str:
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    return f"{sum(1 for s in statuses if s.get('ready'))}/{len(statuses)}"


#: Extra kubectl columns (between NAME and AGE) per kind.
TABLE_COLUMNS: dict[str, list[tuple[str, Callable[[dict[str, Any]], str]]]] = {
    "Namespace": [("Status", lambda o: (o.get("status") or {}).get("phase", ""))],
    "Secret": [
        ("Type", lambda o: o.get("type", "")),
        ("Data", lambda o: str(len(o.get("data") or {}))),
    ],
    "ConfigMap": [("Data", lambda o: str(len(o.get("data") or {})))],
    "Deployment": [
        ("Ready", _ready_cell),
        ("Up-to-date", lambda o: str((o.get("status") or {}).get("updatedReplicas", 0))),
        ("Available", lambda o: str((o.get("status") or {}).get("availableReplicas", 0))),
    ],
    "Pod": [
        ("Ready", _pod_ready_cell),
        ("Status", lambda o: (o.get("status") or {}).get("phase", "")),
        ("Restarts", lambda o: "0"),
    ],
    "PersistentVolumeClaim": [
        ("Status", lambda o: (o.get("status") or {}).get("phase", "")),
        ("Volume", lambda o: (o.get("spec") or {}).get("volumeName", "")),
    ],
    "PersistentVolume": [
        ("Capacity", lambda o: ((o.get("spec") or {}).get("capacity") or {}).get("storage", "")),
        (
            "Reclaim Policy",
            lambda o: (o.get("spec") or {}).get("persistentVolumeReclaimPolicy", ""),
        ),
        ("Status", lambda o: (o.get("status") or {}).get("phase", "")),
    ],
}


def render_table(
    rt: ResourceType,
    items: list[dict[str, Any]],
    metadata: dict[str, Any],
    include_object: str = "Metadata",
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1 Table`` as kubectl asks for: NAME, a few columns, AGE."""
    extra = TABLE_COLUMNS.get(rt.kind, [])

    def column(name: str, description: str, fmt: str = "") -> dict[str, Any]:
        return {
            "name": name,
            "type": "string",
            "format": fmt,
            "priority": 0,
            "description": description,
        }

    columns = [
        column("Name", "Name must be unique within a namespace.", "name"),
        *(column(title, title) for title, _ in extra),
        column("Age", "CreationTimestamp"),
    ]
    rows = []
    for obj in items:
        meta = obj.get("metadata", {})
        cells = [
            meta.get("name"),
            *(cell(obj) for _, cell in extra),
            human_age(meta.get("creationTimestamp")),
        ]
        row: dict[str, Any] = {"cells": cells}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    }


def _protobuf_fields(data: bytes) -> dict[int, bytes]:
    """The length-delimited fields of a protobuf message (enough for string fields)."""

    def varint(pos: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = data[pos]
            value |= (byte & 0x7F) << shift
            pos, shift = pos + 1, shift + 7
            if not byte & 0x80:
                return value, pos

    fields: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        key, pos = varint(pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = varint(pos)
        elif wire == 2:
            length, pos = varint(pos)
            fields[number] = data[pos : pos + length]
            pos += length
        else:
            pos += {1: 8, 5: 4}.get(wire, len(data))
    return fields


def access_review_spec_from_protobuf(body: bytes) -> dict[str, Any]:
    """The ``spec`` of a protobuf-encoded SelfSubjectAccessReview (what kubectl sends)."""
    if not body.startswith(b"k8s\x00"):
        raise bad_request("not a Kubernetes protobuf envelope")
    raw = _protobuf_fields(body[4:]).get(2, b"")  # runtime.Unknown.raw
    spec = _protobuf_fields(_protobuf_fields(raw).get(2, b""))
    attributes: dict[str, Any] = {}
    if 1 in spec:  # ResourceAttributes: namespace, verb, group, version, resource, ...
        names = {
            1: "namespace",
            2: "verb",
            3: "group",
            4: "version",
            5: "resource",
            6: "subresource",
            7: "name",
        }
        fields = _protobuf_fields(spec[1])
        attributes["resourceAttributes"] = {
            name: fields[number].decode() for number, name in names.items() if number in fields
        }
    if 2 in spec:
        fields = _protobuf_fields(spec[2])
        attributes["nonResourceAttributes"] = {
            name: fields[number].decode()
            for number, name in ((1, "path"), (2, "verb"))
            if number in fields
        }
    return attributes
