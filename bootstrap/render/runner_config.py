"""config.toml for the runner manager, built as data and serialised with tomli-w.

Every key written here exists in gitlab-runner v18's config structs
(``shared/reference/runner-config-keys.json``); a test enforces it.
"""

from __future__ import annotations

import tomllib
from typing import Any

import tomli_w

from bootstrap.config import Settings
from bootstrap.render.credentials import NO_SECRET, Credentials
from bootstrap.render.names import (
    ARCH_LABEL,
    CACHE_DIR,
    CACHE_PVC,
    CREDENTIALS_MOUNT,
    GIT_SSH_SECRET,
    KUBE_CLIENT_MOUNT,
    METRICS_PORT,
    REGISTRY_MOUNT,
    REGISTRY_SECRET,
    ROTATOR,
    ops_runner_name,
    runner_name,
)
from bootstrap.secret import Secret

ECI_WITH_EIP = "k8s.aliyun.com/eci-with-eip"

HEADER = (
    "# Managed by gitlab-eci-bootstrap: `bootstrap install` rewrites this file.\n"
    "# The runner renews its own token only when this file carries token_expires_at, which\n"
    "# it does not; FF_DISABLE_AUTOMATIC_TOKEN_ROTATION keeps renewal off even if it did (a\n"
    "# renewal would land in a copy that the next pod start replaces from the Secret).\n"
    "# `bootstrap rotate` renews the token and updates the Secret instead.\n\n"
)


def _pod_annotations(settings: Settings) -> dict[str, str]:
    annotations: dict[str, str] = {}
    if settings.profile == "eci":
        if settings.image_cache.enabled:
            # Let ECI match (or create) an image cache for each job pod.
            annotations["k8s.aliyun.com/eci-auto-imc"] = "true"
        if settings.eci.use_specs:
            annotations["k8s.aliyun.com/eci-use-specs"] = ",".join(settings.eci.use_specs)
        if settings.eci.spot_strategy:
            annotations["k8s.aliyun.com/eci-spot-strategy"] = settings.eci.spot_strategy
            if settings.eci.spot_strategy == "SpotWithPriceLimit":
                # ECI takes at most 3 decimals; ":g" would also cut large prices short.
                price = f"{settings.eci.spot_price_limit:.3f}".rstrip("0").rstrip(".")
                annotations["k8s.aliyun.com/eci-spot-price-limit"] = price
        if settings.eci.with_eip:
            annotations[ECI_WITH_EIP] = "true"
    annotations.update(settings.executor.pod_annotations)
    return annotations


def _volumes(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    volumes: dict[str, list[dict[str, Any]]] = {}

    def add(kind: str, entry: dict[str, Any]) -> None:
        volumes.setdefault(kind, []).append(entry)

    cache = settings.cache
    if cache.type in ("nas", "pvc"):
        claim = CACHE_PVC if cache.type == "nas" else cache.claim_name
        add("pvc", {"name": claim, "mount_path": CACHE_DIR})
    if settings.registry.enabled:
        add(
            "secret",
            {
                "name": settings.registry.existing_secret or REGISTRY_SECRET,
                "mount_path": REGISTRY_MOUNT,
                "read_only": True,
                "items": {".dockerconfigjson": "config.json"},
            },
        )
    if settings.git_ssh.enabled:
        add(
            "secret",
            {
                "name": settings.git_ssh.existing_secret or GIT_SSH_SECRET,
                "mount_path": CREDENTIALS_MOUNT,
                "read_only": True,
            },
        )
    for volume in settings.executor.volumes:
        entry: dict[str, Any] = {"name": volume.name, "mount_path": volume.mount_path}
        if volume.sub_path:
            entry["sub_path"] = volume.sub_path
        if volume.read_only and volume.type != "empty_dir":
            entry["read_only"] = True
        add(volume.type, entry)
    return volumes


def _base(settings: Settings) -> dict[str, Any]:
    """What both entries' ``[runners.kubernetes]`` share: API access, namespace, images."""
    kube: dict[str, Any] = {}
    if settings.kubernetes.runner_auth == "client-certificate":
        kube.update(
            host=settings.kubernetes.api_host,
            ca_file=f"{KUBE_CLIENT_MOUNT}/ca.crt",
            cert_file=f"{KUBE_CLIENT_MOUNT}/tls.crt",
            key_file=f"{KUBE_CLIENT_MOUNT}/tls.key",
        )
    kube.update(
        namespace=settings.kubernetes.namespace,
        image=settings.executor.image,
        pull_policy=settings.executor.pull_policy,
        helper_image=settings.runner.helper_image,
    )
    return kube


def _kubernetes(settings: Settings) -> dict[str, Any]:
    ex = settings.executor
    kube = _base(settings)
    kube.update(
        cpu_request=ex.cpu_request,
        cpu_limit=ex.cpu_limit,
        memory_request=ex.memory_request,
        memory_limit=ex.memory_limit,
        helper_cpu_request=ex.helper_cpu_request,
        helper_cpu_limit=ex.helper_cpu_limit,
        helper_memory_request=ex.helper_memory_request,
        helper_memory_limit=ex.helper_memory_limit,
        service_cpu_request=ex.service_cpu_request,
        service_cpu_limit=ex.service_cpu_limit,
        service_memory_request=ex.service_memory_request,
        service_memory_limit=ex.service_memory_limit,
        poll_timeout=ex.poll_timeout,
        # No job container is privileged or may gain privileges, unless the settings let the
        # build container alone do so (rootless BuildKit's setuid newuidmap).
        privileged=False,
        allow_privilege_escalation=False,
    )
    if ex.build_allow_privilege_escalation:
        kube["build_container_security_context"] = {"allow_privilege_escalation": True}
    if settings.registry.enabled:
        # Job images from the private registry: the same Secret kaniko's config.json comes from.
        kube["image_pull_secrets"] = [settings.registry.existing_secret or REGISTRY_SECRET]
    if ex.service_account:
        kube["service_account"] = ex.service_account
    # No service_account_overwrite_allowed: an empty pattern makes gitlab-runner ignore
    # KUBERNETES_SERVICE_ACCOUNT_OVERWRITE, so no job of the group can ask for the rotator.
    annotations = _pod_annotations(settings)
    if annotations:
        kube["pod_annotations"] = annotations
    if ex.pod_labels:
        kube["pod_labels"] = dict(ex.pod_labels)
    node_selector = dict(ex.node_selector)
    tolerations = {
        # gitlab-runner's form: "key=value" (or "key" for Exists) -> effect.
        (t.key if t.operator == "Exists" else f"{t.key}={t.value}"): t.effect
        for t in ex.tolerations
    }
    if settings.runner.helper_arch == "arm64":
        # Job pods must land on arm64 capacity (ACK: Arm virtual nodes, which carry the taint
        # kubernetes.io/arch=arm64:NoSchedule; clusters before 1.24 need the toleration).
        node_selector[ARCH_LABEL] = "arm64"
        tolerations.setdefault(f"{ARCH_LABEL}=arm64", "NoSchedule")
    if node_selector:
        kube["node_selector"] = node_selector
    if tolerations:
        kube["node_tolerations"] = tolerations
    volumes = _volumes(settings)
    if volumes:
        kube["volumes"] = volumes
    return kube


def _cache(settings: Settings, credentials: Credentials) -> dict[str, Any] | None:
    cache = settings.cache
    if cache.type != "s3":
        return None
    s3: dict[str, Any] = {
        "ServerAddress": cache.s3_server_address,
        "BucketName": cache.s3_bucket_name,
    }
    if cache.s3_bucket_location:
        s3["BucketLocation"] = cache.s3_bucket_location
    if cache.s3_insecure:
        s3["Insecure"] = True
    if cache.s3_authentication == "iam":
        # The AWS SDK's credential chain in the runner pod (e.g. EKS IRSA: annotate the
        # ServiceAccount with runner.service_account_annotations); only ever by choice.
        s3["AuthenticationType"] = "iam"
    else:
        s3["AccessKey"] = credentials.s3_access_key.reveal()
        s3["SecretKey"] = credentials.s3_secret_key.reveal()
    return {"Type": "s3", "Shared": cache.shared, "s3": s3}


def _ops_entry(settings: Settings, credentials: Credentials) -> dict[str, Any]:
    """The sealed rotation entry: a locked, ref-protected project runner of the ops project.

    Its job pods run as the rotator ServiceAccount by default, one at a time; nothing of the
    group entry (cache, registry, ssh key, extra volumes) is mounted. The same manager pod
    polls for it, so the loop adds no always-on pod.
    """
    ex = settings.executor
    kube = _base(settings)
    kube.update(
        cpu_request=ex.helper_cpu_request,
        memory_request=ex.helper_memory_request,
        helper_cpu_request=ex.helper_cpu_request,
        helper_memory_request=ex.helper_memory_request,
        poll_timeout=ex.poll_timeout,
        privileged=False,
        allow_privilege_escalation=False,
        service_account=ROTATOR,
        # The job reaches the cluster with this ServiceAccount's in-cluster credentials.
        automount_service_account_token=True,
    )
    annotations = _pod_annotations(settings)
    if annotations:
        kube["pod_annotations"] = annotations
    placement = _kubernetes(settings)
    for key in ("node_selector", "node_tolerations"):
        if key in placement:
            kube[key] = placement[key]
    entry: dict[str, Any] = {
        "name": ops_runner_name(settings),
        "url": settings.gitlab.url,
        "token": credentials.ops_runner_token.reveal(),
        "executor": "kubernetes",
        "limit": 1,
        "output_limit": settings.runner.output_limit,
    }
    if settings.gitlab.ca_file:
        entry["tls-ca-file"] = "/etc/gitlab-runner/certs/ca.crt"
    entry["feature_flags"] = {"FF_DISABLE_AUTOMATIC_TOKEN_ROTATION": True}
    entry["kubernetes"] = kube
    return entry


def has_ops_entry(settings: Settings, credentials: Credentials) -> bool:
    """Whether config.toml gets the rotation entry (in-cluster rotation, and its token)."""
    return settings.rotation.in_cluster and bool(credentials.ops_runner_token)


def runner_config(settings: Settings, credentials: Credentials) -> dict[str, Any]:
    """The config.toml document as a dict (holds the runner tokens: a Secret's content only).

    ``runners[0]`` is the group runner; ``runners[1]``, when there is one, the ops project's
    rotation runner.
    """
    runner: dict[str, Any] = {
        "name": runner_name(settings),
        "url": settings.gitlab.url,
        "token": credentials.runner_token.reveal(),
        "executor": "kubernetes",
        "output_limit": settings.runner.output_limit,
        "cache_dir": CACHE_DIR,
    }
    if settings.gitlab.ca_file:
        runner["tls-ca-file"] = "/etc/gitlab-runner/certs/ca.crt"
    runner["feature_flags"] = {"FF_DISABLE_AUTOMATIC_TOKEN_ROTATION": True}
    cache = _cache(settings, credentials)
    if cache:
        runner["cache"] = cache
    runner["kubernetes"] = _kubernetes(settings)
    runners = [runner]
    if has_ops_entry(settings, credentials):
        runners.append(_ops_entry(settings, credentials))
    return {
        "concurrent": settings.runner.concurrent,
        "check_interval": settings.runner.check_interval,
        "log_level": settings.runner.log_level,
        "shutdown_timeout": settings.runner.shutdown_timeout,
        # Local metrics endpoint: the pod's probes use it instead of calling GitLab.
        "listen_address": f":{METRICS_PORT}",
        "runners": runners,
    }


def render_config_toml(settings: Settings, credentials: Credentials) -> str:
    """config.toml as text."""
    return HEADER + tomli_w.dumps(runner_config(settings, credentials))


GROUP_ENTRY, OPS_ENTRY = 0, 1


def replace_token(config_toml: str, token: Secret, entry: int = GROUP_ENTRY) -> Secret:
    """The same config.toml with another token in one ``[[runners]]`` entry (a Secret: it
    holds the token).

    Serialised exactly as :func:`render_config_toml` does, so a rotated config is
    byte-identical to what ``install`` renders with the new token.
    """
    doc = tomllib.loads(config_toml)
    runners = doc.get("runners") or []
    if not 1 <= len(runners) <= 2 or entry >= len(runners):
        raise ValueError(f"expected entry {entry} of one or two [[runners]], found {len(runners)}")
    runners[entry]["token"] = token.reveal()  # written into config.toml
    return Secret(HEADER + tomli_w.dumps(doc))


def config_problem(config_toml: str, entry: int = GROUP_ENTRY) -> str | None:
    """Why :func:`replace_token` could not rewrite ``config_toml`` (None: it can)."""
    try:
        doc = tomllib.loads(config_toml)
    except tomllib.TOMLDecodeError as exc:
        return f"it is not valid TOML ({exc})"
    runners = doc.get("runners")
    count = len(runners) if isinstance(runners, list) else 0
    if not isinstance(runners, list) or not 1 <= count <= 2:
        return f"it has {count} [[runners]] entries, not one or two"
    if entry >= count:
        return f"it has no [[runners]] entry number {entry + 1}"
    if not isinstance(runners[entry], dict) or not isinstance(runners[entry].get("token"), str):
        return f"its [[runners]] entry {entry + 1} has no token"
    return None


def config_token(config_toml: str, entry: int = GROUP_ENTRY) -> Secret:
    """The token of one ``[[runners]]`` entry in a config.toml (empty when there is none)."""
    try:
        runners = tomllib.loads(config_toml).get("runners") or []
    except tomllib.TOMLDecodeError:
        return NO_SECRET
    return Secret(str(runners[entry].get("token", ""))) if len(runners) > entry else NO_SECRET
