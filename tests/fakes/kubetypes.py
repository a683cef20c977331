"""Resource types, defaulting and validation of the fake kube-apiserver.

Kept apart from the server so the table of kinds is easy to read and extend: add a
:class:`ResourceType` to :data:`BUILTIN_TYPES` (and, if the kind needs them, a
defaulting function in :data:`DEFAULTERS` and a validator in :data:`VALIDATORS`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.fakes.kubemerge import KeyFor, atomic_lists, builtin_key_for

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One served resource (a group/version/plural), as discovery describes it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = STANDARD_VERBS
    status_subresource: bool = False
    builtin: bool = True
    categories: tuple[str, ...] = ()
    singular: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``secrets`` or ``deployments.apps``: how API errors name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        """``Secret`` or ``Deployment.apps``: how Invalid errors name the kind."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def key_for(self) -> KeyFor:
        """How lists of this kind merge (by key for built-ins, atomic for CRs)."""
        return builtin_key_for if self.builtin else atomic_lists

    @property
    def has_generation(self) -> bool:
        """Whether objects carry ``metadata.generation`` (kinds with a spec to observe)."""
        return (
            not self.builtin
            or self.group in ("apps", "apiextensions.k8s.io")
            or (self.kind == "Pod")
        )

    @property
    def returns_deleted_object(self) -> bool:
        """DELETE answers the object (not a Status) for these kinds, as the apiserver does."""
        return self.group == "" and self.kind in (
            "Pod",
            "PersistentVolumeClaim",
            "PersistentVolume",
            "ServiceAccount",
            "Service",
        )

    @property
    def storage_key(self) -> tuple[str, str]:
        """Objects are stored once per group and plural, whatever the version."""
        return (self.group, self.plural)


def _rt(
    group: str, version: str, kind: str, plural: str, namespaced: bool, **kw: Any
) -> ResourceType:
    return ResourceType(group, version, kind, plural, namespaced, **kw)


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _rt("", "v1", "Namespace", "namespaces", False, short_names=("ns",), status_subresource=True),
    _rt("", "v1", "ServiceAccount", "serviceaccounts", True, short_names=("sa",)),
    _rt("", "v1", "Secret", "secrets", True),
    _rt("", "v1", "ConfigMap", "configmaps", True, short_names=("cm",)),
    _rt(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        True,
        short_names=("pvc",),
        status_subresource=True,
    ),
    _rt(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        False,
        short_names=("pv",),
        status_subresource=True,
    ),
    _rt(
        "",
        "v1",
        "Pod",
        "pods",
        True,
        short_names=("po",),
        status_subresource=True,
        categories=("all",),
    ),
    _rt("", "v1", "Event", "events", True, short_names=("ev",)),
    _rt("", "v1", "Node", "nodes", False, short_names=("no",), status_subresource=True),
    _rt(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        True,
        short_names=("deploy",),
        status_subresource=True,
        categories=("all",),
    ),
    _rt(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        True,
        short_names=("rs",),
        status_subresource=True,
        categories=("all",),
    ),
    _rt("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    _rt("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    _rt("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _rt("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _rt("coordination.k8s.io", "v1", "Lease", "leases", True),
    _rt(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        short_names=("crd", "crds"),
        status_subresource=True,
        categories=("api-extensions",),
    ),
    _rt(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        False,
        verbs=("create",),
    ),
    _rt(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        False,
        verbs=("create",),
    ),
)

#: Discovery order of the built-in API groups (the core group is served under /api).
BUILTIN_GROUP_ORDER = (
    "apps",
    "rbac.authorization.k8s.io",
    "coordination.k8s.io",
    "apiextensions.k8s.io",
    "authorization.k8s.io",
)


def custom_resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    """The resource types a CustomResourceDefinition serves (one per served version)."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    return [
        ResourceType(
            group=spec["group"],
            version=version["name"],
            kind=names["kind"],
            plural=names["plural"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames", ())),
            status_subresource="status" in (version.get("subresources") or {}),
            builtin=False,
            categories=tuple(names.get("categories", ())),
            singular=names.get("singular", ""),
        )
        for version in spec.get("versions", [])
        if version.get("served", True)
    ]


# -- validation ------------------------------------------------------------------------

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


@dataclass
class Cause:
    """One field error of an Invalid (422) answer."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"


def invalid(field: str, value: Any, detail: str) -> Cause:
    shown = json.dumps(value) if isinstance(value, str) else json.dumps(value, default=str)
    return Cause(field, f"Invalid value: {shown}: {detail}")


def required(field: str, detail: str = "") -> Cause:
    message = "Required value" + (f": {detail}" if detail else "")
    return Cause(field, message, "FieldValueRequired")


def _name_causes(rt: ResourceType, name: str) -> list[Cause]:
    if rt.group == "rbac.authorization.k8s.io":
        if name in (".", "..") or "/" in name or "%" in name:
            return [invalid("metadata.name", name, "may not contain '/' or '%'")]
        return []
    if rt.kind == "Namespace":
        if len(name) > 63 or not DNS_LABEL.match(name):
            return [
                invalid(
                    "metadata.name",
                    name,
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric "
                    "characters or '-', and must start and end with an alphanumeric character",
                )
            ]
        return []
    if len(name) > 253 or not DNS_SUBDOMAIN.match(name):
        return [
            invalid(
                "metadata.name",
                name,
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character",
            )
        ]
    return []


def _qualified_key_causes(field: str, key: str) -> list[Cause]:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
        return [invalid(field, key, "prefix part must be a lowercase RFC 1123 subdomain")]
    if not name or len(name) > 63 or not QUALIFIED_NAME.match(name):
        return [
            invalid(
                field,
                key,
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character",
            )
        ]
    return []


def metadata_causes(rt: ResourceType, obj: dict[str, Any]) -> list[Cause]:
    """Name, label and annotation checks every kind gets."""
    meta = obj.get("metadata") or {}
    causes = _name_causes(rt, str(meta.get("name", "")))
    for key, value in (meta.get("labels") or {}).items():
        causes += _qualified_key_causes("metadata.labels", key)
        if not isinstance(value, str):
            causes.append(invalid(f"metadata.labels[{key}]", value, "must be a string"))
        elif value and (len(value) > 63 or not QUALIFIED_NAME.match(value)):
            causes.append(
                invalid(
                    "metadata.labels",
                    value,
                    "a valid label must be an empty string or consist of alphanumeric "
                    "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                    "character",
                )
            )
    for key, value in (meta.get("annotations") or {}).items():
        causes += _qualified_key_causes("metadata.annotations", key)
        if not isinstance(value, str):
            causes.append(invalid(f"metadata.annotations[{key}]", value, "must be a string"))
    return causes


def _immutable(field: str, old: Any, new: Any, detail: str = "field is immutable") -> list[Cause]:
    return [] if old == new else [invalid(field, new, detail)]


def _validate_secret(old: dict[str, Any] | None, new: dict[str, Any]) -> list[Cause]:
    causes = []
    for key, value in (new.get("data") or {}).items():
        if not CONFIG_KEY.match(key):
            causes.append(
                invalid(
                    "data",
                    key,
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                )
            )
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            causes.append(
                invalid(f"data[{key}]", "<secret contents redacted>", "illegal base64 data")
            )
    if old is not None:
        causes += _immutable("type", old.get("type"), new.get("type"))
        if old.get("immutable"):
            causes += _immutable(
                "data",
                old.get("data"),
                new.get("data"),
                "field is immutable when `immutable` is set",
            )
    return causes


def _validate_configmap(old: dict[str, Any] | None, new: dict[str, Any]) -> list[Cause]:
    causes = [
        invalid(
            "data",
            key,
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
        )
        for key in (new.get("data") or {})
        if not CONFIG_KEY.match(key)
    ]
    if old is not None and old.get("immutable"):
        causes += _immutable(
            "data", old.get("data"), new.get("data"), "field is immutable when `immutable` is set"
        )
    return causes


def _selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _validate_deployment(old: dict[str, Any] | None, new: dict[str, Any]) -> list[Cause]:
    spec = new.get("spec") or {}
    causes = []
    selector = spec.get("selector")
    if not selector:
        causes.append(required("spec.selector"))
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if selector and not _selector_matches(selector, labels):
        causes.append(
            invalid(
                "spec.template.metadata.labels",
                labels,
                "`selector` does not match template `labels`",
            )
        )
    containers = (template.get("spec") or {}).get("containers") or []
    if not containers:
        causes.append(required("spec.template.spec.containers"))
    for n, container in enumerate(containers):
        if not container.get("name"):
            causes.append(required(f"spec.template.spec.containers[{n}].name"))
        if not container.get("image"):
            causes.append(required(f"spec.template.spec.containers[{n}].image"))
    if old is not None:
        causes += _immutable("spec.selector", (old.get("spec") or {}).get("selector"), selector)
    return causes


def _validate_rolebinding(old: dict[str, Any] | None, new: dict[str, Any]) -> list[Cause]:
    if not new.get("roleRef"):
        return [required("roleRef")]
    if old is not None:
        return _immutable(
            "roleRef", old.get("roleRef"), new.get("roleRef"), "cannot change roleRef"
        )
    return []


def _validate_pvc(old: dict[str, Any] | None, new: dict[str, Any]) -> list[Cause]:
    spec = new.get("spec") or {}
    causes = []
    if not spec.get("accessModes"):
        causes.append(required("spec.accessModes"))
    if not ((spec.get("resources") or {}).get("requests") or {}).get("storage"):
        causes.append(required("spec.resources[storage]"))
    if old is not None:

        def frozen(s: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in s.items() if k not in ("resources", "volumeName")}

        causes += _immutable(
            "spec",
            frozen(old.get("spec") or {}),
            frozen(spec),
            "spec is immutable after creation except resources.requests and "
            "volumeAttributesClassName for bound claims",
        )
    return causes


def _validate_crd(old: dict[str, Any] | None, new: dict[str, Any]) -> list[Cause]:
    spec = new.get("spec") or {}
    names = spec.get("names") or {}
    causes = []
    for field in ("group", "scope"):
        if not spec.get(field):
            causes.append(required(f"spec.{field}"))
    for field in ("plural", "kind"):
        if not names.get(field):
            causes.append(required(f"spec.names.{field}"))
    if not spec.get("versions"):
        causes.append(required("spec.versions"))
    elif sum(1 for v in spec["versions"] if v.get("storage")) != 1:
        causes.append(
            invalid("spec.versions", "", "must have exactly one version marked as storage version")
        )
    name = (new.get("metadata") or {}).get("name")
    if names.get("plural") and spec.get("group") and name != f"{names['plural']}.{spec['group']}":
        causes.append(invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    if old is not None:
        causes += _immutable("spec.group", (old.get("spec") or {}).get("group"), spec.get("group"))
    return causes


Validator = Callable[[dict[str, Any] | None, dict[str, Any]], list[Cause]]

#: Kind-specific validation, keyed by (group, kind).
VALIDATORS: dict[tuple[str, str], Validator] = {
    ("", "Secret"): _validate_secret,
    ("", "ConfigMap"): _validate_configmap,
    ("", "PersistentVolumeClaim"): _validate_pvc,
    ("apps", "Deployment"): _validate_deployment,
    ("rbac.authorization.k8s.io", "RoleBinding"): _validate_rolebinding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _validate_rolebinding,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _validate_crd,
}


# -- defaulting --------------------------------------------------------------------------


def _default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    if spec.get("serviceAccountName"):
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
    for field in ("containers", "initContainers"):
        for container in spec.get(field) or []:
            image = str(container.get("image", ""))
            tag = image.rsplit("/", 1)[-1]
            latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
            container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("resources", {})
            for port in container.get("ports") or []:
                port.setdefault("protocol", "TCP")
    for volume in spec.get("volumes") or []:
        for source in ("secret", "configMap"):
            if isinstance(volume.get(source), dict):
                volume[source].setdefault("defaultMode", 420)


def _default_deployment(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {})
    _default_pod_spec(template.setdefault("spec", {}))


def _default_namespace(obj: dict[str, Any]) -> None:
    name = obj["metadata"]["name"]
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])


def _default_secret(obj: dict[str, Any]) -> None:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if string_data:
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _default_pvc(obj: dict[str, Any]) -> None:
    obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")


def _default_pv(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")


def _default_pod(obj: dict[str, Any]) -> None:
    _default_pod_spec(obj.setdefault("spec", {}))


def _default_crd(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("conversion", {"strategy": "None"})
    names = spec.setdefault("names", {})
    if names.get("kind"):
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")


#: Defaulting, keyed by (group, kind); runs on every write, as the apiserver's does.
DEFAULTERS: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
    ("", "Namespace"): _default_namespace,
    ("", "Secret"): _default_secret,
    ("", "PersistentVolumeClaim"): _default_pvc,
    ("", "PersistentVolume"): _default_pv,
    ("", "Pod"): _default_pod,
    ("apps", "Deployment"): _default_deployment,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _default_crd,
}


def initial_status(rt: ResourceType, obj: dict[str, Any], timestamp: str) -> dict[str, Any] | None:
    """The status the server (or its controllers) give a new object of this kind."""
    key = (rt.group, rt.kind)
    if key == ("", "Namespace"):
        return {"phase": "Active"}
    if key == ("", "PersistentVolumeClaim"):
        spec = obj.get("spec") or {}
        return {
            "phase": "Bound",
            "accessModes": list(spec.get("accessModes") or []),
            "capacity": dict((spec.get("resources") or {}).get("requests") or {}),
        }
    if key == ("", "PersistentVolume"):
        return {"phase": "Available"}
    if key == ("apps", "ReplicaSet"):
        return {"replicas": 0}
    if key == ("apiextensions.k8s.io", "CustomResourceDefinition"):
        spec = obj.get("spec") or {}
        return crd_status(spec, timestamp)
    return None


def crd_status(spec: dict[str, Any], timestamp: str) -> dict[str, Any]:
    """A CRD's status once the apiextensions controllers accepted it."""
    condition = {"status": "True", "lastTransitionTime": timestamp}
    return {
        "acceptedNames": dict(spec.get("names") or {}),
        "conditions": [
            {
                **condition,
                "type": "NamesAccepted",
                "reason": "NoConflicts",
                "message": "no conflicts found",
            },
            {
                **condition,
                "type": "Established",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
            },
        ],
        "storedVersions": [v["name"] for v in spec.get("versions", []) if v.get("storage")],
    }


#: The Alibaba Cloud ECI ImageCache CRD (cluster-scoped ``eci.alibabacloud.com/v1``).
IMAGECACHE_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "imagecaches.eci.alibabacloud.com"},
    "spec": {
        "group": "eci.alibabacloud.com",
        "scope": "Cluster",
        "names": {
            "plural": "imagecaches",
            "singular": "imagecache",
            "kind": "ImageCache",
            "listKind": "ImageCacheList",
            "shortNames": ["ic"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}
