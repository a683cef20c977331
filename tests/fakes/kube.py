"""A stateful fake kube-apiserver over plain HTTP, for the ``kubernetes`` client and kubectl.

What it serves (see :class:`FakeKube`):

* ``/version``, legacy discovery (``/api``, ``/api/v1``, ``/apis``, ``/apis/<g>``,
  ``/apis/<g>/<v>``; kubectl asks for aggregated discovery first and accepts the
  legacy answer), a minimal ``/openapi/v3`` (enough for kubectl to know the server
  does field validation, so ``kubectl apply`` works without ``--validate=false``);
  ``/openapi/v2`` answers 404;
* the kinds of :data:`tests.fakes.kubetypes.BUILTIN_TYPES`, plus the kinds of the
  CustomResourceDefinitions stored in it;
* get, list (label/field selectors, ``limit``/``continue``), watch, create, update,
  patch (server-side apply, merge, strategic merge, JSON patch), delete,
  deletecollection, the ``status`` subresource, ``dryRun=All``, Table output for
  kubectl, SelfSubjectAccessReview;
* resourceVersion bumped only on real changes, generation on spec changes,
  managedFields with per-manager field ownership, apply conflicts;
* a simulated deployment controller (ReplicaSet, pods, status) and garbage
  collection through ownerReferences.
"""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any
from urllib.parse import unquote

import yaml

from tests.fakes.kubeapi import (
    SERVER_VERSION,
    KubeError,
    access_review_spec_from_protobuf,
    already_exists,
    api_group,
    bad_request,
    conflict,
    error_details,
    invalid,
    not_found,
    openapi_v3_document,
    render_table,
    resource_list,
    route_not_found,
    timestamp,
)
from tests.fakes.kubemerge import (
    MISSING,
    PatchError,
    Path,
    apply_merge,
    changed_paths,
    field_selector,
    fields_v1,
    get_path,
    json_merge_patch,
    json_patch,
    label_selector,
    leaf_paths,
    removable_paths,
    remove_path,
    strategic_merge_patch,
)
from tests.fakes.kubetypes import (
    BUILTIN_GROUP_ORDER,
    BUILTIN_TYPES,
    DEFAULTERS,
    IMAGECACHE_CRD,
    VALIDATORS,
    Cause,
    ResourceType,
    custom_resource_types,
    initial_status,
    metadata_causes,
)
from tests.fakes.server import FakeServer, RecordedRequest, Request, Response

StoreKey = tuple[str, str, str, str]  # group, plural, namespace ("" when cluster-scoped), name

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
#: metadata fields the server owns; they never appear in managedFields.
UNTRACKED_METADATA = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    }
)
SERVER_SET_METADATA = UNTRACKED_METADATA - {"name", "namespace"}
CONTROLLER_MANAGER = "kube-controller-manager"
DEFAULT_TOKEN = "fake-token"
REVIEW_RESOURCES = ("selfsubjectaccessreviews", "selfsubjectrulesreviews")
#: The verbs a SelfSubjectRulesReview lists for each resource type.
RULE_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


def tracked(obj: dict[str, Any] | None) -> dict[str, Any]:
    """The part of an object field ownership is tracked for."""
    if not obj:
        return {}
    view = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in UNTRACKED_METADATA}
    if meta:
        view["metadata"] = meta
    return view


def _content(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without the fields the server bumps on every write."""
    meta = {
        k: v
        for k, v in obj.get("metadata", {}).items()
        if k not in ("resourceVersion", "managedFields", "generation")
    }
    return {**obj, "metadata": meta}


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    """What bumps ``metadata.generation``: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata", "status")}


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


@dataclass
class ManagedEntry:
    """One managedFields entry, with its owned paths kept as a set."""

    manager: str
    operation: str
    api_version: str
    time: str
    paths: set[Path]
    subresource: str = ""

    @property
    def ident(self) -> tuple[str, str, str]:
        return (self.manager, self.operation, self.subresource)

    def render(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_v1(self.paths),
        }
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


@dataclass
class WatchEvent:
    resource_version: int
    type: str
    key: StoreKey
    object: dict[str, Any]


@dataclass
class Denial:
    """A rule of :meth:`FakeKube.deny`."""

    verb: str
    resource: str
    group: str = ""
    namespace: str | None = None

    def matches(self, verb: str, resource: str, group: str, namespace: str | None) -> bool:
        return (
            self.verb in ("*", verb)
            and self.resource in ("*", resource)
            and self.group in ("*", group)
            and (self.namespace is None or self.namespace == namespace)
        )


@dataclass
class Target:
    """A parsed resource URL."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None

    @property
    def key(self) -> StoreKey:
        assert self.name is not None
        group, plural = self.rt.storage_key
        return (group, plural, self.namespace or "", self.name)


@dataclass
class _Rollout:
    generation: int
    timers: list[threading.Timer] = field(default_factory=list)


class FakeKube(FakeServer):
    """A fake kube-apiserver over HTTP.

    Args:
        rollout_delay: Seconds before a Deployment whose spec changed becomes ready
            (0: its status is updated right after the write, as a second write).
        never_ready: When True, Deployments never become ready: readyReplicas stays
            unset (0) and, ``progress_deadline`` seconds later, the Progressing
            condition turns False with reason ``ProgressDeadlineExceeded``.
        progress_deadline: Seconds for the above; ``None`` uses the Deployment's
            ``spec.progressDeadlineSeconds`` (600 by default).
        image_pull_fails: The registry's answer when the kubelet pulls the images of new
            pods (None: pulls work). The pods then stay Pending as the kubelet leaves
            them: each container waits with ``ErrImagePull`` (that message), then, a
            second later, ``ImagePullBackOff`` (``Back-off pulling image "IMAGE"``); with
            the kubelet's events (``Pulling``; Warning ``Failed`` "Failed to pull image…"
            and "Error: ErrImagePull"; ``BackOff``; Warning ``Failed`` "Error:
            ImagePullBackOff"). The Deployment then behaves as with ``never_ready``.
        watch_timeout: Upper bound in seconds of a watch request.
        namespace_delete_delay: Seconds a deleted namespace stays ``Terminating``
            before its contents and itself are removed (new objects in it get 403).
        path_prefix: The server is mounted under this path; ``None`` (default) picks a
            random ``/fake-<hex>`` prefix so that discovery caches of kubectl and the
            dynamic client (keyed by server URL) never mix two fake instances.
        username: The user SelfSubjectAccessReview and Forbidden errors talk about.
        **server_args: ``latency_ms`` and the other :class:`FakeServer` arguments.
    """

    def __init__(
        self,
        *,
        rollout_delay: float = 0.0,
        never_ready: bool = False,
        progress_deadline: float | None = None,
        image_pull_fails: str | None = None,
        watch_timeout: float = 30.0,
        namespace_delete_delay: float = 0.1,
        path_prefix: str | None = None,
        username: str = "fake-user",
        **server_args: Any,
    ) -> None:
        if path_prefix is None:
            path_prefix = f"/fake-{secrets.token_hex(4)}"
        super().__init__(path_prefix=path_prefix, **server_args)
        self.rollout_delay = rollout_delay
        self.never_ready = never_ready
        self.progress_deadline = progress_deadline
        self.image_pull_fails = image_pull_fails
        self.watch_timeout = watch_timeout
        self.namespace_delete_delay = namespace_delete_delay
        self.username = username
        self.kubeconfig_path: FilePath | None = None
        self._required_token: str | None = None
        self._denials: list[Denial] = []
        #: Bearer tokens of ServiceAccounts: (namespace, name); their requests obey RBAC.
        self._sa_tokens: dict[str, tuple[str, str]] = {}
        self._types: dict[tuple[str, str, str], ResourceType] = {
            (t.group, t.version, t.plural): t for t in BUILTIN_TYPES
        }
        self._crd_types: dict[str, list[ResourceType]] = {}
        self._store: dict[StoreKey, dict[str, Any]] = {}
        self._managed: dict[StoreKey, list[ManagedEntry]] = {}
        self._rv = 1000
        self._events: list[WatchEvent] = []
        self._changed = threading.Condition(self.lock)
        self._rollouts: dict[str, _Rollout] = {}
        self._timers: list[threading.Timer] = []
        for ns in DEFAULT_NAMESPACES:
            self.add_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # -- public helpers for tests -----------------------------------------------------

    def require_token(self, token: str | None) -> None:
        """Accept only ``Authorization: Bearer <token>`` from now on (None: accept any)."""
        with self.lock:
            self._required_token = token

    def service_account_token(self, namespace: str, name: str) -> str:
        """A bearer token of ServiceAccount ``namespace/name``, as a pod of it holds one
        (``/var/run/secrets/kubernetes.io/serviceaccount/token``). Requests with it are
        authorized by RBAC: the Roles that RoleBindings in the namespace bind to it."""
        token = f"fake-sa-{secrets.token_hex(8)}"
        with self.lock:
            self._sa_tokens[token] = (namespace, name)
        return token

    def deny(self, verb: str, resource: str, group: str = "", namespace: str | None = None) -> None:
        """Deny ``verb`` on ``resource`` (``"*"`` wildcards; namespace None = everywhere).

        Denials answer SelfSubjectAccessReviews (``allowed: false``) and make the
        matching real requests fail with 403 Forbidden.
        """
        with self.lock:
            self._denials.append(Denial(verb, resource, group, namespace))

    def clear_denials(self) -> None:
        with self.lock:
            self._denials.clear()

    def kubeconfig(
        self,
        path: str | FilePath,
        context_name: str = "fake",
        *,
        token: str = DEFAULT_TOKEN,
        namespace: str | None = None,
    ) -> FilePath:
        """Write a kubeconfig (a token user) pointing at this server; returns its path."""
        context: dict[str, Any] = {"cluster": context_name, "user": f"{context_name}-user"}
        if namespace:
            context["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context_name, "cluster": {"server": self.url}}],
            "users": [{"name": f"{context_name}-user", "user": {"token": token}}],
            "contexts": [{"name": context_name, "context": context}],
            "current-context": context_name,
            "preferences": {},
        }
        target = FilePath(path)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        target.chmod(0o600)
        self.kubeconfig_path = target
        return target

    def objects(
        self, kind: str | None = None, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """Deep copies of stored objects, optionally of one kind and/or namespace."""
        with self.lock:
            return [
                copy.deepcopy(obj)
                for (_g, _p, ns, _n), obj in sorted(self._store.items())
                if (kind is None or obj.get("kind") == kind)
                and (namespace is None or ns == namespace)
            ]

    def get_object(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """A deep copy of one stored object, or None."""
        with self.lock:
            rt = self.resource_type(api_version, kind)
            if rt is None:
                return None
            group, plural = rt.storage_key
            obj = self._store.get((group, plural, namespace or "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def managed_fields(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[tuple[str, str], set[Path]]:
        """Field ownership of one object: ``{(manager, operation): {paths}}``."""
        with self.lock:
            rt = self.resource_type(api_version, kind)
            if rt is None:
                return {}
            group, plural = rt.storage_key
            entries = self._managed.get((group, plural, namespace or "", name), [])
            return {(e.manager, e.operation): set(e.paths) for e in entries}

    def resource_type(self, api_version: str, kind: str) -> ResourceType | None:
        """The served type of an apiVersion and kind, or None."""
        group, _, version = api_version.rpartition("/")
        with self.lock:
            return next(
                (
                    t
                    for t in self._types.values()
                    if t.group == group and t.version == version and t.kind == kind
                ),
                None,
            )

    def add_object(self, obj: dict[str, Any], *, manager: str = "fake-seed") -> dict[str, Any]:
        """Create an object directly (as a create request would); returns the stored copy."""
        with self.lock:
            rt = self.resource_type(obj["apiVersion"], obj["kind"])
            if rt is None:
                raise KeyError(f"{obj['apiVersion']} {obj['kind']} is not served")
            namespace = obj.get("metadata", {}).get("namespace") if rt.namespaced else None
            if rt.namespaced and not namespace:
                namespace = "default"
            return self._create(rt, namespace, copy.deepcopy(obj), manager, dry_run=False)

    def add_crd_imagecache(self) -> dict[str, Any]:
        """Create the ECI ``imagecaches.eci.alibabacloud.com`` CRD (cluster-scoped, v1)."""
        return self.add_object(IMAGECACHE_CRD)

    def complete_rollout(self, namespace: str, name: str) -> None:
        """Make a Deployment ready now, whatever ``never_ready`` or ``rollout_delay`` say."""
        with self.lock:
            key = ("apps", "deployments", namespace, name)
            if key not in self._store:
                raise KeyError(f"deployment {namespace}/{name}")
            self._mark_ready(key, self._store[key]["metadata"]["generation"], force=True)

    @property
    def resource_version(self) -> int:
        """The current global resourceVersion counter."""
        with self.lock:
            return self._rv

    # -- server plumbing ------------------------------------------------------------------

    def on_stop(self) -> None:
        with self.lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            self._changed.notify_all()

    def is_write(self, request: Request) -> bool:
        """Writes exclude dry runs and access reviews: they cannot change state."""
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return False
        if "All" in request.query_lists.get("dryRun", []):
            return False
        return not request.path.rstrip("/").endswith(REVIEW_RESOURCES)

    def is_watch(self, record: RecordedRequest) -> bool:
        return record.method == "GET" and record.query.get("watch") in ("1", "true")

    def watches(self) -> list[RecordedRequest]:
        """Logged watch requests."""
        return [r for r in self.log if self.is_watch(r)]

    def fault_response(self, kind: str) -> Response:
        if kind == "429":
            return KubeError(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
                {"retryAfterSeconds": 1},
                {"Retry-After": "1"},
            ).response()
        return KubeError(500, "InternalError", "Internal error occurred: injected fault").response()

    def handle(self, request: Request) -> Response:
        try:
            return self._route(request)
        except KubeError as exc:
            return exc.response()

    def _route(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path in ("/healthz", "/livez", "/readyz"):
            return Response(200, b"ok", {"Content-Type": "text/plain"})
        if path == "/version":
            return Response.json(200, SERVER_VERSION)
        self._authenticate(request)
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        if parts and parts[0] == "openapi":
            return self._openapi(parts)
        if request.method == "GET":
            discovery = self._discovery(parts)
            if discovery is not None:
                return Response.json(200, discovery)
        return self._resource_request(request, parts)

    def _authenticate(self, request: Request) -> None:
        if self._required_token is None or self._service_account(request) is not None:
            return
        if request.header("authorization") != f"Bearer {self._required_token}":
            raise KubeError(401, "Unauthorized", "Unauthorized")

    # -- discovery ---------------------------------------------------------------------------

    def _group_versions(self) -> dict[str, list[str]]:
        """Served API groups (not the core group) and their versions, in discovery order."""
        groups: dict[str, list[str]] = {}
        custom = sorted({t.group for t in self._types.values()} - set(BUILTIN_GROUP_ORDER) - {""})
        for group in (*BUILTIN_GROUP_ORDER, *custom):
            versions = sorted({t.version for t in self._types.values() if t.group == group})
            if versions:
                groups[group] = versions
        return groups

    def _types_of(self, group: str, version: str) -> list[ResourceType]:
        return [t for t in self._types.values() if t.group == group and t.version == version]

    def _discovery(self, parts: list[str]) -> dict[str, Any] | None:
        """Legacy discovery; kubectl asks for the aggregated format first and accepts it."""
        if parts == ["api"]:
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}
                ],
            }
        if parts == ["apis"]:
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [api_group(g, v) for g, v in self._group_versions().items()],
            }
        if parts == ["api", "v1"]:
            return resource_list("", "v1", self._types_of("", "v1"))
        if len(parts) == 2 and parts[0] == "apis":
            versions = self._group_versions().get(parts[1])
            if versions is None:
                raise route_not_found()
            return {"kind": "APIGroup", "apiVersion": "v1", **api_group(parts[1], versions)}
        if len(parts) == 3 and parts[0] == "apis":
            types = self._types_of(parts[1], parts[2])
            if not types:
                raise route_not_found()
            return resource_list(parts[1], parts[2], types)
        return None

    def _openapi(self, parts: list[str]) -> Response:
        """``/openapi/v3`` (an index and one document per group version); v2 is 404."""
        if parts == ["openapi", "v3"]:
            paths = {}
            for group, versions in {"": ["v1"], **self._group_versions()}.items():
                for version in versions:
                    rel = f"apis/{group}/{version}" if group else f"api/{version}"
                    document = openapi_v3_document(group, version, self._types_of(group, version))
                    digest = hashlib.sha256(json.dumps(document).encode()).hexdigest()[:32]
                    paths[rel] = {"serverRelativeURL": f"/openapi/v3/{rel}?hash={digest}"}
            return Response.json(200, {"paths": paths})
        rest = parts[2:] if parts[:2] == ["openapi", "v3"] else []
        if len(rest) == 2 and rest[0] == "api":
            group, version = "", rest[1]
        elif len(rest) == 3 and rest[0] == "apis":
            group, version = rest[1], rest[2]
        else:
            raise route_not_found()
        types = self._types_of(group, version)
        if types:
            return Response.json(200, openapi_v3_document(group, version, types))
        raise route_not_found()

    # -- resource requests -------------------------------------------------------------------

    def _type(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def _parse_target(self, parts: list[str]) -> Target:
        if len(parts) >= 3 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise route_not_found()
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            inner = self._type(group, version, rest[2])
            if inner is not None and inner.namespaced:
                namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise route_not_found()
        rt = self._type(group, version, rest[0])
        if rt is None or (namespace is not None and not rt.namespaced):
            raise route_not_found()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and not (sub == "status" and rt.status_subresource):
            raise route_not_found()
        return Target(rt, namespace, name, sub)

    def _verb(self, request: Request, target: Target) -> str:
        method, collection = request.method, target.name is None
        if method == "GET" and collection:
            verb = "watch" if request.query.get("watch") in ("1", "true") else "list"
        elif collection:
            verb = {"POST": "create", "DELETE": "deletecollection"}.get(method, "")
        elif target.subresource:
            verb = {"GET": "get", "PUT": "update", "PATCH": "patch"}.get(method, "")
        else:
            verb = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
                method, ""
            )
        if verb not in target.rt.verbs:
            raise KubeError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        return verb

    def _service_account(self, request: Request) -> tuple[str, str] | None:
        header = request.header("authorization") or ""
        return self._sa_tokens.get(header.removeprefix("Bearer "))

    def _rbac_allows(
        self, account: tuple[str, str], verb: str, resource: str, target: Target
    ) -> bool:
        """Whether a Role bound in the target's namespace grants ``account`` the request
        (RBAC: apiGroups, resources, verbs, resourceNames; ClusterRoles are not modelled)."""
        namespace, name = account
        if target.namespace != namespace:
            return False
        rbac = "rbac.authorization.k8s.io"
        for (group, plural, ns, _), binding in self._store.items():
            if (group, plural, ns) != (rbac, "rolebindings", namespace):
                continue
            subjects = binding.get("subjects") or []
            if not any(
                s.get("kind") == "ServiceAccount"
                and s.get("name") == name
                and s.get("namespace", namespace) == namespace
                for s in subjects
            ):
                continue
            ref = binding.get("roleRef") or {}
            role = self._store.get((rbac, "roles", namespace, str(ref.get("name"))))
            if ref.get("kind") != "Role" or role is None:
                continue
            for rule in role.get("rules") or []:
                names = rule.get("resourceNames") or []
                if (
                    {target.rt.group, "*"} & set(rule.get("apiGroups") or [])
                    and {resource, "*"} & set(rule.get("resources") or [])
                    and {verb, "*"} & set(rule.get("verbs") or [])
                    and (not names or target.name in names)
                ):
                    return True
        return False

    def _authorize(self, verb: str, target: Target, request: Request | None = None) -> None:
        rt = target.rt
        resource = rt.plural + (f"/{target.subresource}" if target.subresource else "")
        account = self._service_account(request) if request is not None else None
        if account is not None:
            if self._rbac_allows(account, verb, resource, target):
                return
            user = f"system:serviceaccount:{account[0]}:{account[1]}"
            subject = f'{rt.group_resource} "{target.name}"' if target.name else rt.group_resource
            raise KubeError(
                403,
                "Forbidden",
                f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
                f'in API group "{rt.group}" in the namespace "{target.namespace}"',
                error_details(rt, target.name or ""),
            )
        if not self._denied(verb, resource, rt.group, target.namespace):
            return
        subject = f'{rt.group_resource} "{target.name}"' if target.name else rt.group_resource
        scope = (
            f'in the namespace "{target.namespace}"' if target.namespace else "at the cluster scope"
        )
        raise KubeError(
            403,
            "Forbidden",
            f'{subject} is forbidden: User "{self.username}" cannot {verb} resource '
            f'"{resource}" in API group "{rt.group}" {scope}',
            error_details(rt, target.name or ""),
        )

    def _denied(self, verb: str, resource: str, group: str, namespace: str | None) -> bool:
        return any(d.matches(verb, resource, group, namespace) for d in self._denials)

    def _resource_request(self, request: Request, parts: list[str]) -> Response:
        target = self._parse_target(parts)
        verb = self._verb(request, target)
        rt = target.rt
        if rt.plural == "selfsubjectrulesreviews":
            return self._rules_review(request)
        if rt.plural in REVIEW_RESOURCES:
            return self._review(request)
        if rt.namespaced and target.namespace is None and verb not in ("list", "watch"):
            raise route_not_found()
        self._authorize(verb, target, request)
        query = request.query
        dry_run = "All" in request.query_lists.get("dryRun", [])
        manager = query.get("fieldManager") or self._user_agent_manager(request)
        if verb == "get":
            return self._object_response(request, rt, self._stored(target))
        if verb == "list":
            return self._list(request, target)
        if verb == "watch":
            return self._watch(request, target)
        if verb == "create":
            body = self._json_body(request)
            created = self._create(rt, target.namespace, body, manager, dry_run=dry_run)
            return Response.json(201, created)
        if verb == "update":
            live = self._stored(target)
            body = self._json_body(request)
            self._check_identity(target, body)
            self._check_resource_version(target, live, body)
            updated = self._update(target, live, body, manager, dry_run=dry_run)
            return Response.json(200, updated)
        if verb == "patch":
            return self._patch(request, target, manager, dry_run)
        if verb == "delete":
            return self._delete(request, target, dry_run)
        return self._delete_collection(request, target, dry_run)

    @staticmethod
    def _user_agent_manager(request: Request) -> str:
        agent = request.header("user-agent", "unknown")
        return agent.split("/")[0] or "unknown"

    @staticmethod
    def _json_body(request: Request) -> dict[str, Any]:
        if "protobuf" in request.content_type:
            raise KubeError(
                415,
                "UnsupportedMediaType",
                "the fake decodes protobuf only for SelfSubjectAccessReview - accepted media "
                "types include: application/json",
            )
        try:
            body = request.json()
        except ValueError as exc:
            raise bad_request(f"the body of the request was in an unknown format: {exc}") from None
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be an object")
        return body

    def _stored(self, target: Target) -> dict[str, Any]:
        obj = self._store.get(target.key)
        if obj is None:
            raise not_found(target.rt, target.name or "")
        return self._as_version(target.rt, obj)

    @staticmethod
    def _as_version(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        out["apiVersion"] = rt.api_version
        return out

    def _check_identity(self, target: Target, body: dict[str, Any]) -> None:
        rt = target.rt
        if body.get("apiVersion") not in (None, rt.api_version):
            raise bad_request(
                f"the API version in the data ({body['apiVersion']}) does not match the "
                f"expected API version ({rt.api_version})"
            )
        if body.get("kind") not in (None, rt.kind):
            raise bad_request(
                f"the kind in the data ({body['kind']}) does not match the expected kind "
                f"({rt.kind})"
            )
        meta = body.get("metadata") or {}
        if target.name is not None and meta.get("name") not in (None, "", target.name):
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({target.name})"
            )
        if rt.namespaced and meta.get("namespace") not in (None, "", target.namespace):
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )

    def _check_resource_version(
        self, target: Target, live: dict[str, Any], body: dict[str, Any]
    ) -> None:
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != live["metadata"]["resourceVersion"]:
            raise conflict(target.rt, target.name or "")

    def _require_namespace(self, namespace: str | None, rt: ResourceType, name: str) -> None:
        """New objects need an existing namespace that is not being deleted."""
        if namespace is None:
            return
        ns = self._store.get(("", "namespaces", "", namespace))
        if ns is None:
            raise not_found(self._types[("", "v1", "namespaces")], namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise KubeError(
                403,
                "Forbidden",
                f'{rt.group_resource} "{name}" is forbidden: unable to create new content in '
                f"namespace {namespace} because it is being terminated",
                error_details(rt, name),
            )

    # -- writes --------------------------------------------------------------------------------

    def _normalize(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        if rt.builtin:
            obj = _drop_nulls(obj)
            meta = obj.setdefault("metadata", {})
            for field_name in ("labels", "annotations"):
                if meta.get(field_name) == {}:
                    del meta[field_name]
        defaulter = DEFAULTERS.get((rt.group, rt.kind))
        if defaulter is not None:
            defaulter(obj)
        return obj

    def _validate(self, rt: ResourceType, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        causes = metadata_causes(rt, new)
        validator = VALIDATORS.get((rt.group, rt.kind))
        if validator is not None:
            causes += validator(old, new)
        if causes:
            raise invalid(rt.group, rt.kind, new["metadata"].get("name", ""), causes)

    def _create(
        self,
        rt: ResourceType,
        namespace: str | None,
        body: dict[str, Any],
        manager: str,
        *,
        dry_run: bool,
    ) -> dict[str, Any]:
        target = Target(rt, namespace, None, None)
        self._check_identity(target, body)
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        for server_field in SERVER_SET_METADATA:
            meta.pop(server_field, None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        name = meta.get("name") or ""
        if not name:
            raise invalid(
                rt.group,
                rt.kind,
                "",
                [
                    Cause(
                        "metadata.name",
                        "Required value: name or generateName is required",
                        "FieldValueRequired",
                    )
                ],
            )
        if rt.namespaced:
            meta["namespace"] = namespace
            self._require_namespace(namespace, rt, name)
        else:
            meta.pop("namespace", None)
        target = Target(rt, namespace, name, None)
        if target.key in self._store:
            raise already_exists(rt, name)
        if rt.status_subresource:
            obj.pop("status", None)
        obj = self._normalize(rt, obj)
        status = initial_status(rt, obj, timestamp())
        if status is not None:
            obj["status"] = status
        elif rt.status_subresource and rt.builtin:
            obj["status"] = {}
        self._validate(rt, None, obj)
        entries = self._updated_entries(rt, [], None, obj, manager, "Update", "")
        return self._commit(rt, target.key, None, obj, entries, dry_run=dry_run)

    def _update(
        self,
        target: Target,
        live: dict[str, Any],
        incoming: dict[str, Any],
        manager: str,
        *,
        dry_run: bool,
    ) -> dict[str, Any]:
        rt = target.rt
        if target.subresource == "status":
            new = copy.deepcopy(live)
            if "status" in incoming:
                new["status"] = copy.deepcopy(incoming["status"])
            else:
                new.pop("status", None)
        else:
            new = copy.deepcopy(incoming)
            if rt.status_subresource:
                if "status" in live:
                    new["status"] = copy.deepcopy(live["status"])
                else:
                    new.pop("status", None)
        meta = new.setdefault("metadata", {})
        for server_field in SERVER_SET_METADATA:
            if server_field in live["metadata"]:
                meta[server_field] = copy.deepcopy(live["metadata"][server_field])
            else:
                meta.pop(server_field, None)
        meta["name"] = live["metadata"]["name"]
        if rt.namespaced:
            meta["namespace"] = live["metadata"]["namespace"]
        new = self._normalize(rt, new)
        self._validate(rt, live, new)
        entries = self._updated_entries(
            rt,
            self._managed.get(target.key, []),
            live,
            new,
            manager,
            "Update",
            target.subresource or "",
        )
        return self._commit(rt, target.key, live, new, entries, dry_run=dry_run)

    def _patch(self, request: Request, target: Target, manager: str, dry_run: bool) -> Response:
        ctype = request.content_type
        rt = target.rt
        if ctype == "application/apply-patch+yaml":
            if target.subresource:
                raise KubeError(
                    415,
                    "UnsupportedMediaType",
                    "apply patches on subresources are not supported by the fake",
                )
            return self._apply(request, target, dry_run)
        if "force" in request.query:
            raise invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                [
                    Cause(
                        "force",
                        "Forbidden: may not be specified for non-apply patch",
                        "FieldValueForbidden",
                    )
                ],
            )
        accepted = [
            "application/json-patch+json",
            "application/merge-patch+json",
            *(["application/strategic-merge-patch+json"] if rt.builtin else []),
            "application/apply-patch+yaml",
        ]
        if ctype not in accepted:
            raise KubeError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(accepted)}",
            )
        live = self._stored(target)
        try:
            patch = request.json()
            if ctype == "application/merge-patch+json":
                patched = json_merge_patch(live, patch)
            elif ctype == "application/strategic-merge-patch+json":
                patched = strategic_merge_patch(live, patch, rt.key_for)
            else:
                patched = json_patch(live, patch)
        except ValueError as exc:
            if isinstance(exc, PatchError):
                raise KubeError(422, "Invalid", f"the server rejected our request: {exc}") from None
            raise bad_request(f"error decoding patch: {exc}") from None
        if not isinstance(patched, dict):
            raise bad_request("the patch must produce an object")
        self._check_identity(target, patched)
        self._check_resource_version(target, live, patched)
        updated = self._update(target, live, patched, manager, dry_run=dry_run)
        return Response.json(200, updated)

    def _apply(self, request: Request, target: Target, dry_run: bool) -> Response:
        """Server-side apply (``application/apply-patch+yaml``)."""
        rt = target.rt
        manager = request.query.get("fieldManager")
        if not manager:
            raise invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                [
                    Cause(
                        "fieldManager",
                        "Required value: is required for apply patch",
                        "FieldValueRequired",
                    )
                ],
            )
        force = request.query.get("force", "").lower() in ("true", "1")
        try:
            applied = yaml.safe_load(request.body.decode() or "{}")
        except yaml.YAMLError as exc:
            raise bad_request(f"error decoding YAML: {exc}") from None
        if not isinstance(applied, dict):
            raise bad_request("the applied configuration must be an object")
        if not applied.get("apiVersion") or not applied.get("kind"):
            raise bad_request("apiVersion and kind must be set in an applied configuration")
        self._check_identity(target, applied)
        key = target.key
        live = self._store.get(key)
        if live is None:
            self._require_namespace(target.namespace, rt, target.name or "")
        else:
            self._check_resource_version(target, live, applied)
        meta = applied.setdefault("metadata", {})
        for server_field in SERVER_SET_METADATA:
            meta.pop(server_field, None)
        meta["name"] = target.name
        if rt.namespaced:
            meta["namespace"] = target.namespace
        if rt.status_subresource:
            applied.pop("status", None)
        if rt.builtin:
            applied = _drop_nulls(applied)

        key_for = rt.key_for
        applied_view = tracked(applied)
        applied_paths = leaf_paths(applied_view, key_for)
        entries = [copy.deepcopy(e) for e in self._managed.get(key, [])]
        mine = next((e for e in entries if e.ident == (manager, "Apply", "")), None)
        others = [e for e in entries if e is not mine]

        live_view = tracked(live)
        conflicts: list[tuple[str, Path]] = []
        for path in sorted(applied_paths):
            if path[-1].startswith("k:"):
                continue
            current = get_path(live_view, path)
            if current is MISSING or current == get_path(applied_view, path):
                continue
            conflicts += [(e.manager, path) for e in others if path in e.paths]
        if conflicts and not force:
            raise self._apply_conflict(rt, target.name or "", conflicts)
        for entry in others:
            entry.paths -= {path for _m, path in conflicts}

        others_paths: set[Path] = set().union(*(e.paths for e in others))
        previous = mine.paths if mine else set()
        if live is None:
            result: dict[str, Any] = {
                "apiVersion": rt.api_version,
                "kind": rt.kind,
                "metadata": {"name": target.name},
            }
            if rt.namespaced:
                result["metadata"]["namespace"] = target.namespace
        else:
            result = copy.deepcopy(live)
        for path in removable_paths(previous - applied_paths - others_paths, others_paths):
            remove_path(result, path)
        result = apply_merge(result, applied, key_for)
        result = self._normalize(rt, result)
        if live is None:
            status = initial_status(rt, result, timestamp())
            if status is not None:
                result["status"] = status
            elif rt.status_subresource and rt.builtin:
                result["status"] = {}
        self._validate(rt, live, result)

        present = leaf_paths(tracked(result), key_for)
        removed = leaf_paths(live_view, key_for) - present
        if mine is not None and mine.paths == applied_paths:
            updated = mine  # unchanged ownership keeps its timestamp
        else:
            updated = ManagedEntry(manager, "Apply", rt.api_version, timestamp(), applied_paths)
        kept = []
        for entry in entries:  # keep the order; the applier's entry stays in its place
            if entry is mine:
                continue
            entry.paths -= removed
            if entry.paths:
                kept.append(entry)
        position = entries.index(mine) if mine is not None else len(kept)
        kept.insert(min(position, len(kept)), updated)
        stored = self._commit(rt, key, live, result, kept, dry_run=dry_run)
        return Response.json(201 if live is None else 200, stored)

    @staticmethod
    def _apply_conflict(
        rt: ResourceType, name: str, conflicts: list[tuple[str, Path]]
    ) -> KubeError:
        def dotted(path: Path) -> str:
            return "".join(f".{p[2:]}" if p.startswith("f:") else f"[{p[2:]}]" for p in path)

        causes = [
            {
                "reason": "FieldManagerConflict",
                "message": f'conflict with "{manager}": {dotted(path)}',
                "field": dotted(path),
            }
            for manager, path in conflicts
        ]
        noun = "conflict" if len(causes) == 1 else "conflicts"
        listed = "\n".join(f"- {c['message']}" for c in causes)
        details = {**error_details(rt, name), "causes": causes}
        return KubeError(
            409,
            "Conflict",
            f"Apply failed with {len(causes)} {noun}: {listed}"
            if len(causes) > 1
            else f"Apply failed with 1 conflict: {causes[0]['message']}",
            details,
        )

    def _updated_entries(
        self,
        rt: ResourceType,
        entries: list[ManagedEntry],
        old: dict[str, Any] | None,
        new: dict[str, Any],
        manager: str,
        operation: str,
        subresource: str,
    ) -> list[ManagedEntry]:
        """Field ownership after an Update: the writer takes what it changed."""
        key_for = rt.key_for
        old_view, new_view = tracked(old), tracked(new)
        changed = changed_paths(old_view, new_view, key_for)
        removed = leaf_paths(old_view, key_for) - leaf_paths(new_view, key_for)
        ident = (manager, operation, subresource)
        result = []
        mine = None
        for entry in entries:
            entry = copy.deepcopy(entry)
            if entry.ident == ident:
                mine = entry
                continue
            entry.paths -= changed | removed
            if entry.paths:
                result.append(entry)
        if changed:
            paths = ((mine.paths if mine else set()) | changed) - removed
            result.append(
                ManagedEntry(manager, operation, rt.api_version, timestamp(), paths, subresource)
            )
        elif mine is not None:
            mine.paths -= removed
            if mine.paths:
                result.append(mine)
        return result

    def _commit(
        self,
        rt: ResourceType,
        key: StoreKey,
        old: dict[str, Any] | None,
        new: dict[str, Any],
        entries: list[ManagedEntry],
        *,
        dry_run: bool,
    ) -> dict[str, Any]:
        """Store ``new`` unless nothing changed; bump resourceVersion and generation."""

        def ownership(items: list[ManagedEntry]) -> dict[tuple[str, str, str], set[Path]]:
            return {e.ident: e.paths for e in items}

        if (
            old is not None
            and _content(old) == _content(new)
            and ownership(entries) == ownership(self._managed.get(key, []))
        ):
            return self._as_version(rt, old)
        meta = new["metadata"]
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = timestamp()
            meta["generation"] = 1
        else:
            meta["uid"] = old["metadata"]["uid"]
            meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
            generation = old["metadata"].get("generation", 1)
            meta["generation"] = generation + 1 if _spec(old) != _spec(new) else generation
        if not rt.has_generation:
            meta.pop("generation")
        meta["managedFields"] = [e.render() for e in entries]
        if dry_run:
            if old is None:
                meta.pop("resourceVersion", None)
            else:
                meta["resourceVersion"] = old["metadata"]["resourceVersion"]
            return self._as_version(rt, new)
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        self._store[key] = new
        self._managed[key] = entries
        self._emit("ADDED" if old is None else "MODIFIED", key, new)
        self._after_write(rt, key, old, new)
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and rt.kind != "Namespace":
            self._remove(key)  # the last finalizer is gone: the deletion completes
        return self._as_version(rt, new)

    def _emit(self, kind: str, key: StoreKey, obj: dict[str, Any]) -> None:
        self._events.append(WatchEvent(self._rv, kind, key, copy.deepcopy(obj)))
        self._changed.notify_all()

    # -- deletes --------------------------------------------------------------------------------

    def _delete(self, request: Request, target: Target, dry_run: bool) -> Response:
        live = self._stored(target)
        options = self._json_body(request) if request.body else {}
        preconditions = options.get("preconditions") or {}
        if preconditions.get("uid") not in (None, live["metadata"]["uid"]):
            raise conflict(target.rt, target.name or "")
        if preconditions.get("resourceVersion") not in (None, live["metadata"]["resourceVersion"]):
            raise conflict(target.rt, target.name or "")
        policy = options.get("propagationPolicy") or request.query.get("propagationPolicy")
        rt = target.rt
        if rt.kind == "Namespace" or live["metadata"].get("finalizers"):
            # Graceful: the object stays, marked for deletion, until finalized.
            terminating = self._mark_deleted(target, live, dry_run=dry_run)
            return Response.json(200, terminating)
        if not dry_run:
            self._remove(target.key, orphan=policy == "Orphan")
        if rt.returns_deleted_object:
            return Response.json(200, live)
        return Response.json(
            200,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {**error_details(rt, target.name or ""), "uid": live["metadata"]["uid"]},
            },
        )

    def _mark_deleted(
        self, target: Target, live: dict[str, Any], *, dry_run: bool
    ) -> dict[str, Any]:
        """Set deletionTimestamp; a namespace also turns Terminating and empties later."""
        if live["metadata"].get("deletionTimestamp"):
            return live
        new = copy.deepcopy(live)
        new["metadata"]["deletionTimestamp"] = timestamp()
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        namespace = target.rt.kind == "Namespace"
        if namespace:
            new.setdefault("status", {})["phase"] = "Terminating"
        entries = self._managed.get(target.key, [])
        stored = self._commit(target.rt, target.key, live, new, entries, dry_run=dry_run)
        if namespace and not dry_run:
            name = target.name or ""

            def finalize() -> None:
                for key in [k for k in self._store if k[2] == name]:
                    self._remove(key)
                self._remove(target.key)

            if self.namespace_delete_delay <= 0:
                finalize()
            else:
                timer = threading.Timer(self.namespace_delete_delay, self._locked(finalize))
                timer.daemon = True
                self._timers.append(timer)
                timer.start()
        return stored

    def _locked(self, action: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            with self.lock:
                if not self.stopping.is_set():
                    action()

        return run

    def _delete_collection(self, request: Request, target: Target, dry_run: bool) -> Response:
        items = self._select(request, target)
        rt = target.rt
        if not dry_run:
            for obj in items:
                meta = obj["metadata"]
                self._remove((*rt.storage_key, meta.get("namespace", ""), meta["name"]))
        return Response.json(
            200,
            {
                "kind": f"{rt.kind}List",
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self._rv)},
                "items": items,
            },
        )

    def _remove(self, key: StoreKey, *, orphan: bool = False) -> None:
        """Delete one object and, like the garbage collector, what depends on it."""
        obj = self._store.pop(key, None)
        if obj is None:
            return
        self._managed.pop(key, None)
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._emit("DELETED", key, obj)
        group, plural, _ns, name = key
        if (group, plural) == ("", "namespaces"):
            for other in [k for k in self._store if k[2] == name]:
                self._remove(other)
        if (group, plural) == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self._unregister_crd(obj)
        if (group, plural) == ("apps", "deployments"):
            rollout = self._rollouts.pop(f"{key[2]}/{name}", None)
            if rollout is not None:
                for timer in rollout.timers:
                    timer.cancel()
        if orphan:
            return
        uid = obj["metadata"].get("uid")
        dependants = [
            k
            for k, o in self._store.items()
            if any(ref.get("uid") == uid for ref in o["metadata"].get("ownerReferences") or [])
        ]
        for dependant in dependants:
            self._remove(dependant)

    # -- reads -----------------------------------------------------------------------------------

    def _select(self, request: Request, target: Target) -> list[dict[str, Any]]:
        rt = target.rt
        try:
            labels = label_selector(request.query.get("labelSelector", ""))
            fields = field_selector(request.query.get("fieldSelector", ""))
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        group, plural = rt.storage_key
        return [
            self._as_version(rt, obj)
            for (g, p, ns, _name), obj in sorted(self._store.items())
            if (g, p) == (group, plural)
            and (target.namespace is None or ns == target.namespace)
            and labels(obj["metadata"].get("labels") or {})
            and fields(obj)
        ]

    def _list(self, request: Request, target: Target) -> Response:
        rt = target.rt
        items = self._select(request, target)
        start = int(request.query.get("continue") or 0)
        limit = int(request.query.get("limit") or 0)
        metadata: dict[str, Any] = {"resourceVersion": str(self._rv)}
        if limit and start + limit < len(items):
            metadata["continue"] = str(start + limit)
            metadata["remainingItemCount"] = len(items) - start - limit
        page = items[start : start + limit] if limit else items[start:]
        if self._wants_table(request):
            include = request.query.get("includeObject", "Metadata")
            return Response.json(200, render_table(rt, page, metadata, include))
        if rt.builtin:
            for item in page:
                item.pop("apiVersion", None)
                item.pop("kind", None)
        return Response.json(
            200,
            {
                "kind": f"{rt.kind}List",
                "apiVersion": rt.api_version,
                "metadata": metadata,
                "items": page,
            },
        )

    def _object_response(self, request: Request, rt: ResourceType, obj: dict[str, Any]) -> Response:
        if self._wants_table(request):
            include = request.query.get("includeObject", "Metadata")
            return Response.json(200, render_table(rt, [obj], {}, include))
        return Response.json(200, obj)

    @staticmethod
    def _wants_table(request: Request) -> bool:
        return "as=Table" in request.header("accept")

    def _watch(self, request: Request, target: Target) -> Response:
        rt = target.rt
        since = request.query.get("resourceVersion", "")
        try:
            labels = label_selector(request.query.get("labelSelector", ""))
            fields = field_selector(request.query.get("fieldSelector", ""))
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        timeout = min(
            float(request.query.get("timeoutSeconds") or self.watch_timeout), self.watch_timeout
        )
        group, plural = rt.storage_key

        def wanted(key: StoreKey, obj: dict[str, Any]) -> bool:
            return (
                key[:2] == (group, plural)
                and (target.namespace is None or key[2] == target.namespace)
                and labels(obj["metadata"].get("labels") or {})
                and fields(obj)
            )

        initial: list[bytes] = []
        send_initial = request.query.get("sendInitialEvents") == "true"
        if since in ("", "0") or send_initial:
            initial = [
                self._watch_line("ADDED", rt, obj)
                for key, obj in sorted(self._store.items())
                if wanted(key, obj)
            ]
            if send_initial:
                # A streaming list (client-go's WatchList): the bookmark ends the list.
                bookmark = {
                    "kind": rt.kind,
                    "apiVersion": rt.api_version,
                    "metadata": {
                        "resourceVersion": str(self._rv),
                        "annotations": {"k8s.io/initial-events-end": "true"},
                    },
                }
                initial.append(
                    json.dumps({"type": "BOOKMARK", "object": bookmark}).encode() + b"\n"
                )
            position = len(self._events)
        else:
            position = next(
                (n for n, e in enumerate(self._events) if e.resource_version > int(since)),
                len(self._events),
            )

        def stream() -> Iterator[bytes]:
            nonlocal position
            yield from initial
            deadline = time.monotonic() + timeout
            while not self.stopping.is_set():
                with self._changed:
                    pending = self._events[position:]
                    position = len(self._events)
                    if not pending:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            return
                        self._changed.wait(min(remaining, 0.5))
                        continue
                    lines = [
                        self._watch_line(e.type, rt, e.object)
                        for e in pending
                        if wanted(e.key, e.object)
                    ]
                yield from lines

        return Response(200, headers={"Content-Type": "application/json"}, stream=stream())

    def _watch_line(self, kind: str, rt: ResourceType, obj: dict[str, Any]) -> bytes:
        return json.dumps({"type": kind, "object": self._as_version(rt, obj)}).encode() + b"\n"

    def _rules_review(self, request: Request) -> Response:
        """SelfSubjectRulesReview: what the user may do in a namespace, as RBAC rules.

        With no denial that is everything (one wildcard rule, as cluster-admin gets); with
        denials, one rule per served resource type listing the verbs not denied — RBAC
        has no deny rules, so the allowed verbs are spelled out.
        """
        spec = self._json_body(request).get("spec") or {}
        namespace = spec.get("namespace") or None
        if not self._denials:
            rules = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
        else:
            rules = []
            for t in sorted(self._types.values(), key=lambda t: (t.group, t.plural)):
                verbs = [v for v in RULE_VERBS if not self._denied(v, t.plural, t.group, namespace)]
                if verbs:
                    rules.append({"verbs": verbs, "apiGroups": [t.group], "resources": [t.plural]})
        return Response.json(
            201,
            {
                "kind": "SelfSubjectRulesReview",
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "spec": spec,
                "status": {"resourceRules": rules, "nonResourceRules": [], "incomplete": False},
            },
        )

    def _review(self, request: Request) -> Response:
        if request.content_type == "application/vnd.kubernetes.protobuf":
            spec = access_review_spec_from_protobuf(request.body)  # kubectl auth can-i
        else:
            spec = self._json_body(request).get("spec") or {}
        attrs = spec.get("resourceAttributes")
        allowed = True
        if attrs:
            resource = attrs.get("resource", "")
            if attrs.get("subresource"):
                resource += f"/{attrs['subresource']}"
            allowed = not self._denied(
                attrs.get("verb", ""), resource, attrs.get("group", ""), attrs.get("namespace")
            )
        status: dict[str, Any] = {"allowed": allowed}
        if allowed:  # like RBAC: a reason when allowed, none when simply not allowed
            status["reason"] = "allowed by the fake apiserver"
        return Response.json(
            201,
            {
                "kind": "SelfSubjectAccessReview",
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "spec": spec,
                "status": status,
            },
        )

    # -- controllers ------------------------------------------------------------------------------

    def _after_write(
        self, rt: ResourceType, key: StoreKey, old: dict[str, Any] | None, new: dict[str, Any]
    ) -> None:
        if (rt.group, rt.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
            self._register_crd(new)
        if (rt.group, rt.kind) == ("apps", "Deployment"):
            old_generation = old["metadata"]["generation"] if old else 0
            if new["metadata"]["generation"] != old_generation:
                self._rollout(key, new)

    def _register_crd(self, crd: dict[str, Any]) -> None:
        self._unregister_crd(crd, keep_objects=True)
        types = custom_resource_types(crd)
        self._crd_types[crd["metadata"]["name"]] = types
        for t in types:
            self._types[(t.group, t.version, t.plural)] = t

    def _unregister_crd(self, crd: dict[str, Any], *, keep_objects: bool = False) -> None:
        for t in self._crd_types.pop(crd["metadata"]["name"], []):
            self._types.pop((t.group, t.version, t.plural), None)
            if not keep_objects:
                for key in [k for k in self._store if k[:2] == t.storage_key]:
                    self._remove(key)

    def _controller_status(
        self, key: StoreKey, mutate: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any] | None:
        """Write the status of a stored object as the controller manager would."""
        live = self._store.get(key)
        if live is None:
            return None
        rt = next(t for t in self._types.values() if t.storage_key == key[:2])
        new = copy.deepcopy(live)
        mutate(new)
        target = Target(rt, key[2] or None, key[3], "status")
        return self._update(target, live, new, CONTROLLER_MANAGER, dry_run=False)

    def _schedule(self, delay: float, action: Callable[[], None], rollout: _Rollout) -> None:
        timer = threading.Timer(delay, self._locked(action))
        timer.daemon = True
        rollout.timers.append(timer)
        self._timers.append(timer)
        timer.start()

    def _rollout(self, key: StoreKey, deployment: dict[str, Any]) -> None:
        """The deployment controller: a new ReplicaSet, its pods, then the status."""
        namespace, name = key[2], key[3]
        generation = deployment["metadata"]["generation"]
        previous = self._rollouts.pop(f"{namespace}/{name}", None)
        if previous is not None:
            for timer in previous.timers:
                timer.cancel()
        rollout = _Rollout(generation)
        self._rollouts[f"{namespace}/{name}"] = rollout
        spec = deployment.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
        pod_hash = "".join(c for c in digest if c in "bcdfghjklmnpqrstvwxz2456789")[:10] or "5d4f8"
        self._replace_replicaset(deployment, pod_hash, replicas)
        progressing = {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "unavailableReplicas": replicas,
            "conditions": [
                _condition(
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                ),
                _condition(
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    f'ReplicaSet "{name}-{pod_hash}" is progressing.',
                ),
            ],
        }
        self._controller_status(key, lambda d: d.__setitem__("status", progressing))
        if self.image_pull_fails is not None:
            self._fail_pulls(namespace, pod_hash, self.image_pull_fails, rollout)
        if self.never_ready or self.image_pull_fails is not None:
            deadline = self.progress_deadline
            if deadline is None:
                deadline = float(spec.get("progressDeadlineSeconds", 600))
            self._schedule(deadline, lambda: self._mark_stuck(key, generation, pod_hash), rollout)
        elif self.rollout_delay <= 0:
            self._mark_ready(key, generation)
        else:
            self._schedule(self.rollout_delay, lambda: self._mark_ready(key, generation), rollout)

    def _replace_replicaset(self, deployment: dict[str, Any], pod_hash: str, replicas: int) -> None:
        meta = deployment["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        for key, obj in list(self._store.items()):
            refs = obj["metadata"].get("ownerReferences") or []
            if key[:2] == ("apps", "replicasets") and any(
                r.get("uid") == meta["uid"] for r in refs
            ):
                self._remove(key)
        template = copy.deepcopy((deployment.get("spec") or {}).get("template") or {})
        labels = {
            **(template.get("metadata") or {}).get("labels", {}),
            "pod-template-hash": pod_hash,
        }
        rs_name = f"{name}-{pod_hash}"
        owner = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        rs_type = self._types[("apps", "v1", "replicasets")]
        selector = copy.deepcopy((deployment.get("spec") or {}).get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
        rs = self._create(
            rs_type,
            namespace,
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {"name": rs_name, "labels": labels, "ownerReferences": [owner]},
                "spec": {
                    "replicas": replicas,
                    "selector": selector,
                    "template": {
                        **template,
                        "metadata": {**(template.get("metadata") or {}), "labels": labels},
                    },
                },
            },
            CONTROLLER_MANAGER,
            dry_run=False,
        )
        rs_key = ("apps", "replicasets", namespace, rs_name)
        rs_status = {
            "replicas": replicas,
            "fullyLabeledReplicas": replicas,
            "observedGeneration": 1,
        }
        self._controller_status(rs_key, lambda r: r.__setitem__("status", rs_status))
        pod_type = self._types[("", "v1", "pods")]
        rs_owner = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": rs_name,
            "uid": rs["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        for _ in range(replicas):
            pod = self._create(
                pod_type,
                namespace,
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": f"{rs_name}-{secrets.token_hex(3)[:5]}",
                        "labels": labels,
                        "ownerReferences": [rs_owner],
                    },
                    "spec": {**copy.deepcopy(template.get("spec") or {}), "nodeName": "fake-node"},
                },
                CONTROLLER_MANAGER,
                dry_run=False,
            )
            pod_key = ("", "pods", namespace, pod["metadata"]["name"])
            self._controller_status(
                pod_key, lambda p: p.__setitem__("status", _pod_status(p, False))
            )

    def _pods_of(self, namespace: str, pod_hash: str) -> list[StoreKey]:
        return [
            k
            for k, o in self._store.items()
            if k[:3] == ("", "pods", namespace)
            and (o["metadata"].get("labels") or {}).get("pod-template-hash") == pod_hash
        ]

    def _mark_ready(self, key: StoreKey, generation: int, *, force: bool = False) -> None:
        deployment = self._store.get(key)
        if deployment is None or deployment["metadata"]["generation"] != generation:
            return
        if (self.never_ready or self.image_pull_fails is not None) and not force:
            return
        spec = deployment.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        rs_name = next(
            (
                o["metadata"]["name"]
                for k, o in self._store.items()
                if k[:3] == ("apps", "replicasets", key[2])
                and any(
                    r.get("uid") == deployment["metadata"]["uid"]
                    for r in o["metadata"].get("ownerReferences") or []
                )
            ),
            key[3],
        )
        pod_hash = rs_name.rsplit("-", 1)[-1]
        rs_ready = {
            "replicas": replicas,
            "fullyLabeledReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "observedGeneration": 1,
        }
        self._controller_status(
            ("apps", "replicasets", key[2], rs_name), lambda r: r.__setitem__("status", rs_ready)
        )
        for pod_key in self._pods_of(key[2], pod_hash):
            self._controller_status(
                pod_key, lambda p: p.__setitem__("status", _pod_status(p, True))
            )
        ready = {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                _condition(
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                ),
                _condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{rs_name}" has successfully progressed.',
                ),
            ],
        }
        if replicas == 0:
            for field_name in ("readyReplicas", "availableReplicas"):
                ready.pop(field_name)
        self._controller_status(key, lambda d: d.__setitem__("status", ready))

    def _fail_pulls(self, namespace: str, pod_hash: str, error: str, rollout: _Rollout) -> None:
        """The kubelet failing to pull the images of the new pods (see ``image_pull_fails``).

        As pkg/kubelet/images/image_manager.go and kuberuntime_container.go report it."""
        for key in self._pods_of(namespace, pod_hash):
            pod = self._store[key]
            images = [(c["name"], c.get("image", "")) for c in pod["spec"].get("containers", [])]
            self._controller_status(key, lambda p: p.__setitem__("status", _pod_status(p, False)))
            self._pull_state(key, "ErrImagePull", lambda image: error)
            for name, image in images:
                self._kubelet_event(pod, name, "Normal", "Pulling", f'Pulling image "{image}"')
                self._kubelet_event(
                    pod, name, "Warning", "Failed", f'Failed to pull image "{image}": {error}'
                )
                self._kubelet_event(pod, name, "Warning", "Failed", "Error: ErrImagePull")

            def back_off(
                key: StoreKey = key,
                pod: dict[str, Any] = pod,
                images: list[tuple[str, str]] = images,
            ) -> None:
                if key not in self._store:
                    return
                self._pull_state(key, "ImagePullBackOff", lambda i: f'Back-off pulling image "{i}"')
                for name, image in images:
                    self._kubelet_event(
                        pod, name, "Normal", "BackOff", f'Back-off pulling image "{image}"'
                    )
                    self._kubelet_event(pod, name, "Warning", "Failed", "Error: ImagePullBackOff")

            self._schedule(1.0, back_off, rollout)

    def _pull_state(self, key: StoreKey, reason: str, message: Callable[[str], str]) -> None:
        def waiting(pod: dict[str, Any]) -> None:
            for status in pod["status"].get("containerStatuses") or []:
                status["state"] = {
                    "waiting": {"reason": reason, "message": message(status.get("image", ""))}
                }

        self._controller_status(key, waiting)

    def _kubelet_event(
        self, pod: dict[str, Any], container: str, kind: str, reason: str, message: str
    ) -> None:
        meta = pod["metadata"]
        now = timestamp()
        event_type = self._types[("", "v1", "events")]
        self._create(
            event_type,
            meta["namespace"],
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}"},
                "involvedObject": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "uid": meta.get("uid", ""),
                    "fieldPath": f"spec.containers{{{container}}}",
                },
                "reason": reason,
                "message": message,
                "source": {"component": "kubelet", "host": "fake-node"},
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
                "type": kind,
                "reportingComponent": "kubelet",
                "reportingInstance": "fake-node",
            },
            "kubelet",
            dry_run=False,
        )

    def _mark_stuck(self, key: StoreKey, generation: int, pod_hash: str) -> None:
        deployment = self._store.get(key)
        if deployment is None or deployment["metadata"]["generation"] != generation:
            return

        def stuck(obj: dict[str, Any]) -> None:
            status = obj.setdefault("status", {})
            status["conditions"] = [
                c for c in status.get("conditions", []) if c.get("type") != "Progressing"
            ] + [
                _condition(
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    f'ReplicaSet "{key[3]}-{pod_hash}" has timed out progressing.',
                ),
            ]

        self._controller_status(key, stuck)


def _condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
    now = timestamp()
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def _pod_status(pod: dict[str, Any], ready: bool) -> dict[str, Any]:
    containers = (pod.get("spec") or {}).get("containers") or []
    now = timestamp()
    statuses = []
    for container in containers:
        entry: dict[str, Any] = {
            "name": container.get("name"),
            "image": container.get("image"),
            "imageID": "",
            "ready": ready,
            "restartCount": 0,
            "started": ready,
        }
        entry["state"] = (
            {"running": {"startedAt": now}}
            if ready
            else {"waiting": {"reason": "ContainerCreating"}}
        )
        statuses.append(entry)
    flag = "True" if ready else "False"
    return {
        "phase": "Running" if ready else "Pending",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
            {"type": "Ready", "status": flag, "lastTransitionTime": now},
        ],
        "hostIP": "10.0.0.1",
        "podIP": "10.0.0.2" if ready else None,
        "startTime": now,
        "containerStatuses": statuses,
        "qosClass": "BestEffort",
    }
