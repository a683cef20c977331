"""Names, labels and paths shared by the rendered objects (the contract in DESIGN.md)."""

from __future__ import annotations

import hashlib

from bootstrap.config import Settings

APP = "gitlab-runner"
MANAGED_BY = "gitlab-eci-bootstrap"
FIELD_MANAGER = "gitlab-eci-bootstrap"
# rotate owns only the token fields, under its own manager, so it never removes others.
ROTATE_FIELD_MANAGER = "gitlab-eci-bootstrap-rotate"

CONFIG_SECRET = "gitlab-runner-config"
DEPLOYMENT = "gitlab-runner"
SERVICE_ACCOUNT = "gitlab-runner"
ROLE = "gitlab-runner"
# The scheduled rotation job runs as this ServiceAccount: the job pods of the ops runner
# entry (a locked project runner of the ops project) and of no other; its Role reaches only
# the config Secret and the Deployment.
ROTATOR = "gitlab-runner-rotator"
# The ops runner's only tag: the rotation job asks for it.
OPS_RUNNER_TAG = "gitlab-eci-bootstrap-rotation"
# The namespace's lock (a coordination.k8s.io Lease) that install and rotate hold.
LOCK_LEASE = "gitlab-eci-bootstrap"
REGISTRY_SECRET = "registry-auth-secret"
GIT_SSH_SECRET = "gitlab-credentials"
KUBE_CLIENT_SECRET = "gitlab-runner-kube-client"
CACHE_PVC = "gitlab-runner-cache-pvc"

CACHE_DIR = "/cache"
REGISTRY_MOUNT = "/kaniko/.docker"
CREDENTIALS_MOUNT = "/root/gitlab-credentials"
CONFIG_DIR = "/etc/gitlab-runner"
SECRET_MOUNT = "/secrets/gitlab-runner"
KUBE_CLIENT_MOUNT = "/secrets/kube-client"
METRICS_PORT = 9252
ARCH_LABEL = "kubernetes.io/arch"
# On an ImageCache: build the snapshot for Arm job pods.
IMAGE_CACHE_ARCH_ANNOTATION = "k8s.aliyun.com/imc-cpu-arch"

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_INSTANCE = "gitlab-eci-bootstrap/namespace"
ANNOTATION_CHECKSUM = "gitlab-eci-bootstrap/config-checksum"
ANNOTATION_RUNNER_ID = "gitlab-eci-bootstrap/runner-id"
ANNOTATION_EXPIRES = "gitlab-eci-bootstrap/token-expires-at"
ANNOTATION_OPS_RUNNER_ID = "gitlab-eci-bootstrap/ops-runner-id"
ANNOTATION_OPS_EXPIRES = "gitlab-eci-bootstrap/ops-token-expires-at"


def runner_page(settings: Settings, runner_id: int) -> str:
    """The group runner's page in GitLab's web UI (Groups::RunnersController#show)."""
    return f"{settings.gitlab.url.rstrip('/')}/groups/{settings.gitlab.group}/-/runners/{runner_id}"


def cache_pv(namespace: str) -> str:
    """The cluster-scoped PV of a namespace's NAS cache."""
    return f"gitlab-runner-cache-{namespace}"


def image_cache(namespace: str) -> str:
    """The cluster-scoped ImageCache of a namespace's runner."""
    return f"gitlab-runner-{namespace}"


def labels(settings: Settings) -> dict[str, str]:
    """Labels on every object; ``LABEL_INSTANCE`` finds cluster-scoped ones per namespace."""
    return {
        "app.kubernetes.io/name": APP,
        "app.kubernetes.io/part-of": MANAGED_BY,
        LABEL_MANAGED_BY: MANAGED_BY,
        "app.kubernetes.io/version": f"v{settings.runner.version}",
        LABEL_INSTANCE: settings.kubernetes.namespace,
    }


def selector_labels() -> dict[str, str]:
    """The Deployment's selector (immutable, so it never holds a version)."""
    return {"app.kubernetes.io/name": APP, "app.kubernetes.io/instance": APP}


def runner_name(settings: Settings) -> str:
    """The runner's name in config.toml."""
    return settings.runner.name or f"{settings.cluster_id}-{settings.kubernetes.namespace}"


def system_id(settings: Settings) -> str:
    """A stable ``.runner_system_id`` (``s_`` + 12 chars) derived from cluster and namespace.

    gitlab-runner generates a new one when the file is missing, which would add a new runner
    manager in GitLab after every pod restart.
    """
    seed = f"{settings.cluster_id}/{settings.kubernetes.namespace}".encode()
    return "s_" + hashlib.sha256(seed).hexdigest()[:12]


def runner_marker(settings: Settings) -> str:
    """The marker in the runner's maintenance note that identifies our runner."""
    return (
        f"[managed-by={MANAGED_BY} cluster={settings.cluster_id} "
        f"namespace={settings.kubernetes.namespace}]"
    )


def runner_description(settings: Settings) -> str:
    """The runner's description in GitLab."""
    return settings.gitlab.runner_description or (
        f"{settings.profile} runner {settings.cluster_id}/{settings.kubernetes.namespace}"
    )


def ops_runner_name(settings: Settings) -> str:
    """The ops runner entry's name in config.toml."""
    return f"{runner_name(settings)}-rotation"


def ops_runner_marker(settings: Settings) -> str:
    """The marker in the ops runner's maintenance note that identifies it."""
    return runner_marker(settings).removesuffix("]") + " role=rotation]"


def ops_runner_description(settings: Settings) -> str:
    """The ops runner's description in GitLab."""
    return f"gitlab-eci-bootstrap rotation {settings.cluster_id}/{settings.kubernetes.namespace}"
