"""Kubernetes objects for the runner, as plain dicts (pure: no I/O, no clients)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from bootstrap.config import Settings
from bootstrap.render import names as n
from bootstrap.render.credentials import Credentials

# The kubernetes executor's rules for the default attach strategy, exactly as gitlab-runner's
# docs list them (docs/executors/kubernetes/_index.md@v18.11.4:132-214): no wildcards.
RUNNER_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [""],
        "resources": ["pods"],
        "verbs": ["create", "delete", "get", "list", "watch"],
    },
    {
        "apiGroups": [""],
        "resources": ["pods/attach"],
        "verbs": ["create", "delete", "get", "patch"],
    },
    {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "delete", "get", "patch"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "delete", "get", "update"]},
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["services"], "verbs": ["create", "get"]},
]

GRACE_MARGIN_SECONDS = 30


@dataclass(frozen=True, repr=False)
class KubeObject:
    """One object to apply, with the wave it belongs to (lower waves are applied first).

    The ``repr`` of a Secret names it only: its data holds credentials (base64).
    """

    body: dict[str, Any]
    wave: int

    def __repr__(self) -> str:
        if self.is_secret:
            where = f" in {self.namespace}" if self.namespace else ""
            return f"KubeObject({self.ref}{where}, wave={self.wave}, data not shown)"
        return f"KubeObject(body={self.body!r}, wave={self.wave})"

    @property
    def api_version(self) -> str:
        return str(self.body["apiVersion"])

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        namespace = self.body["metadata"].get("namespace")
        return str(namespace) if namespace else None

    @property
    def ref(self) -> str:
        """``Kind/name`` as kubectl prints it."""
        return f"{self.kind}/{self.name}"

    @property
    def is_secret(self) -> bool:
        return self.kind == "Secret"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _meta(settings: Settings, name: str, *, namespaced: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespaced:
        meta["namespace"] = settings.kubernetes.namespace
    meta["labels"] = n.labels(settings)
    return meta


def config_checksum(config_toml: str, gitlab_ca: str = "") -> str:
    """The pod-template annotation value that rolls the pods when the config changes."""
    digest = hashlib.sha256(config_toml.encode())
    digest.update(gitlab_ca.encode())
    return "sha256:" + digest.hexdigest()


def namespace(settings: Settings) -> dict[str, Any]:
    meta = _meta(settings, settings.kubernetes.namespace, namespaced=False)
    if settings.profile == "eci" and settings.eci.route_namespace:
        # In ACK clusters with virtual nodes this label sends the namespace's pods to ECI.
        meta["labels"]["alibabacloud.com/eci"] = "true"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def service_account(settings: Settings) -> dict[str, Any]:
    meta = _meta(settings, n.SERVICE_ACCOUNT)
    if settings.runner.service_account_annotations:
        meta["annotations"] = dict(settings.runner.service_account_annotations)
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}


def role(settings: Settings) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(settings, n.ROLE),
        "rules": RUNNER_RULES,
    }


def role_binding(settings: Settings, name: str = n.ROLE) -> dict[str, Any]:
    """Binds the Role ``name`` to the ServiceAccount of the same name."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(settings, name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [
            {"kind": "ServiceAccount", "name": name, "namespace": settings.kubernetes.namespace}
        ],
    }


# What `bootstrap rotate` reads and patches, and its lock (a Lease), and nothing else.
# RBAC cannot restrict `create` by name, so creating Leases is allowed in the namespace.
ROTATOR_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [""],
        "resources": ["secrets"],
        "resourceNames": [n.CONFIG_SECRET],
        "verbs": ["get", "patch"],
    },
    {
        "apiGroups": ["apps"],
        "resources": ["deployments"],
        "resourceNames": [n.DEPLOYMENT],
        "verbs": ["get", "patch"],
    },
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": [n.LOCK_LEASE],
        "verbs": ["get", "update", "delete"],
    },
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
]


def rotator_service_account(settings: Settings) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(settings, n.ROTATOR)}


def rotator_role(settings: Settings) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(settings, n.ROTATOR),
        "rules": ROTATOR_RULES,
    }


def config_secret(settings: Settings, config_toml: str, credentials: Credentials) -> dict[str, Any]:
    data = {"config.toml": _b64(config_toml)}
    if settings.gitlab.ca_file:
        data["ca.crt"] = _b64(credentials.gitlab_ca)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(settings, n.CONFIG_SECRET),
        "type": "Opaque",
        "data": data,
    }


def registry_secret(settings: Settings, credentials: Credentials) -> dict[str, Any]:
    reg = settings.registry
    auth = _b64(f"{reg.username}:{credentials.registry_password.reveal()}")
    config = {
        "auths": {
            reg.server: {
                "username": reg.username,
                "password": credentials.registry_password.reveal(),
                "auth": auth,
            }
        }
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(settings, n.REGISTRY_SECRET),
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": _b64(json.dumps(config, sort_keys=True))},
    }


def git_ssh_secret(settings: Settings, credentials: Credentials) -> dict[str, Any]:
    data = {
        "id_rsa": _b64(credentials.ssh_private_key.reveal()),
        "known_hosts": _b64(credentials.known_hosts),
    }
    if settings.git_ssh.public_key_file:
        data["id_rsa.pub"] = _b64(credentials.ssh_public_key)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(settings, n.GIT_SSH_SECRET),
        "type": "Opaque",
        "data": data,
    }


def kube_client_secret(settings: Settings, credentials: Credentials) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(settings, n.KUBE_CLIENT_SECRET),
        "type": "kubernetes.io/tls",
        "data": {
            "ca.crt": _b64(credentials.kube_ca),
            "tls.crt": _b64(credentials.kube_cert),
            "tls.key": _b64(credentials.kube_key.reveal()),
        },
    }


def cache_volume(settings: Settings) -> dict[str, Any]:
    cache = settings.cache
    ns = settings.kubernetes.namespace
    spec: dict[str, Any] = {
        "capacity": {"storage": cache.size},
        "accessModes": ["ReadWriteMany"],
        "persistentVolumeReclaimPolicy": "Retain",
        "storageClassName": "",
        "mountOptions": list(cache.mount_options),
        # Reserve the volume for our claim so no other claim can bind it.
        "claimRef": {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "namespace": ns,
            "name": n.CACHE_PVC,
        },
    }
    if cache.driver == "csi":
        spec["csi"] = {
            "driver": "nasplugin.csi.alibabacloud.com",
            "volumeHandle": n.cache_pv(ns),
            "volumeAttributes": {"server": cache.server, "path": cache.path, "vers": "3"},
        }
    else:
        spec["nfs"] = {"server": cache.server, "path": cache.path}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": _meta(settings, n.cache_pv(ns), namespaced=False),
        "spec": spec,
    }


def cache_claim(settings: Settings) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(settings, n.CACHE_PVC),
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": "",
            "volumeName": n.cache_pv(settings.kubernetes.namespace),
            "resources": {"requests": {"storage": settings.cache.size}},
        },
    }


def image_cache(settings: Settings) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "images": settings.image_cache_images,
        "imageCacheSize": settings.image_cache.size_gib,
    }
    if settings.image_cache.retention_days:
        spec["retentionDays"] = settings.image_cache.retention_days
    if settings.registry.enabled:
        secret = settings.registry.existing_secret or n.REGISTRY_SECRET
        spec["imagePullSecrets"] = [f"{settings.kubernetes.namespace}:{secret}"]
    meta = _meta(settings, n.image_cache(settings.kubernetes.namespace), namespaced=False)
    if settings.runner.helper_arch == "arm64":
        # ECI builds snapshots for x86 unless told otherwise; Arm job pods cannot use those.
        meta["annotations"] = {n.IMAGE_CACHE_ARCH_ANNOTATION: "arm64"}
    return {
        "apiVersion": "eci.alibabacloud.com/v1",
        "kind": "ImageCache",
        "metadata": meta,
        "spec": spec,
    }


START_SCRIPT = """\
set -eu
umask 077
cp {secret}/config.toml {config}/config.toml
if [ -f {secret}/ca.crt ]; then
  mkdir -p {config}/certs && cp {secret}/ca.crt {config}/certs/ca.crt
fi
printf '%s\\n' "$RUNNER_SYSTEM_ID" > {config}/.runner_system_id
exec gitlab-runner run --config {config}/config.toml
"""

# SIGQUIT makes gitlab-runner stop asking for jobs and wait for the running ones, with no
# bound; Kubernetes would send SIGTERM, which aborts them. The kubelet counts
# terminationGracePeriodSeconds from before this hook and, when the hook overruns, gives the
# container only 2 s more before SIGKILL: too little for the runner to delete its job pods,
# which are then left running (and billed). So the hook bounds the drain itself: after
# {drain} s it sends SIGTERM, which aborts the jobs and gives the runner {shutdown} s
# (shutdown_timeout) to clean up, all within the grace period.
DRAIN_SCRIPT = """\
pid=1
kill -QUIT "$pid" 2>/dev/null || exit 0
end=$(($(date +%s) + {drain}))
while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 1; done
kill -TERM "$pid" 2>/dev/null || exit 0
end=$(($(date +%s) + {shutdown}))
while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 1; done
"""


def drain_script(settings: Settings) -> str:
    """The preStop hook: drain for at most drain_timeout, then stop within shutdown_timeout."""
    runner = settings.runner
    return DRAIN_SCRIPT.format(drain=runner.drain_timeout, shutdown=runner.shutdown_timeout)


def _pod_annotations(settings: Settings, checksum: str) -> dict[str, str]:
    annotations = {n.ANNOTATION_CHECKSUM: checksum}
    if settings.profile == "eci" and settings.eci.with_eip:
        # The manager reaches GitLab and pulls its image the same way as the job pods.
        annotations["k8s.aliyun.com/eci-with-eip"] = "true"
    return annotations


def deployment(settings: Settings, checksum: str) -> dict[str, Any]:
    runner = settings.runner
    client_cert = settings.kubernetes.runner_auth == "client-certificate"
    mounts: list[dict[str, Any]] = [
        {"name": "config-secret", "mountPath": n.SECRET_MOUNT, "readOnly": True},
        {"name": "config", "mountPath": n.CONFIG_DIR},
    ]
    volumes: list[dict[str, Any]] = [
        # World-readable inside the pod (only the runner runs there): readable by the
        # non-root runner without fsGroup, which ECI does not list as supported.
        {"name": "config-secret", "secret": {"secretName": n.CONFIG_SECRET, "defaultMode": 0o444}},
        # Writable copy of the config (gitlab-runner writes .runner_system_id next to it);
        # memory-backed so the token never lands on a node's disk.
        {"name": "config", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
    ]
    if client_cert:
        mounts.append({"name": "kube-client", "mountPath": n.KUBE_CLIENT_MOUNT, "readOnly": True})
        volumes.append(
            {
                "name": "kube-client",
                "secret": {"secretName": n.KUBE_CLIENT_SECRET, "defaultMode": 0o444},
            }
        )
    probe_http = {"path": "/metrics", "port": "metrics"}
    container: dict[str, Any] = {
        "name": "gitlab-runner",
        "image": runner.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c"],
        "args": [START_SCRIPT.format(secret=n.SECRET_MOUNT, config=n.CONFIG_DIR)],
        "env": [{"name": "RUNNER_SYSTEM_ID", "value": n.system_id(settings)}],
        "ports": [{"name": "metrics", "containerPort": n.METRICS_PORT, "protocol": "TCP"}],
        "resources": {
            "requests": {"cpu": runner.cpu_request, "memory": runner.memory_request},
            "limits": {"cpu": runner.cpu_limit, "memory": runner.memory_limit},
        },
        # The local metrics endpoint: probing it never calls the GitLab API.
        "readinessProbe": {
            "httpGet": dict(probe_http),  # copies: shared dicts become YAML anchors
            "periodSeconds": 10,
            "timeoutSeconds": 3,
        },
        "livenessProbe": {
            "httpGet": dict(probe_http),
            "initialDelaySeconds": 30,
            "periodSeconds": 30,
            "timeoutSeconds": 5,
            "failureThreshold": 4,
        },
        "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", drain_script(settings)]}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(settings, n.DEPLOYMENT),
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": n.selector_labels()},
            "strategy": {
                "type": "RollingUpdate",
                # The old pod keeps serving (and drains) until the new one is ready.
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": {**n.labels(settings), **n.selector_labels()},
                    "annotations": _pod_annotations(settings, checksum),
                },
                "spec": {
                    "serviceAccountName": n.SERVICE_ACCOUNT,
                    "automountServiceAccountToken": not client_cert,
                    "terminationGracePeriodSeconds": (
                        runner.drain_timeout + runner.shutdown_timeout + GRACE_MARGIN_SECONDS
                    ),
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": runner.run_as_user,
                        "runAsGroup": runner.run_as_user,
                        "fsGroup": runner.run_as_user,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }
