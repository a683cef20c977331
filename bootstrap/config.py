"""The settings model: ``bootstrap.toml`` + environment + flags, validated before any network call.

Precedence is flag > environment > file > default. Every problem found is collected and
reported at once as :class:`~bootstrap.errors.ConfigErrors` (exit code 2); each message names
the key (and the flag or variable it came from) and says how to fix it.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from bootstrap import cost
from bootstrap import validators as v
from bootstrap.errors import ConfigErrors, InvalidInput
from bootstrap.secret import Environ, shown

DEFAULT_CONFIG_FILE = "bootstrap.toml"
# ROS ALIYUN::ECI::ImageCache: an image cache holds at most 20 images.
IMAGE_CACHE_MAX_IMAGES = 20
ENV_PREFIX = "BOOTSTRAP_"
# runAsUser is an int64 in the API, but IDs past 2^31-1 break in container runtimes and
# filesystems (the kernel's uid_t is 32-bit, and -1 is reserved). Also the largest value of a
# 32-bit integer column in GitLab (a runner's maximum_timeout).
UID_MAX = 2**31 - 1

RUNNER_VERSION = "18.11.4"
RUNNER_IMAGE_REPOSITORY = "registry.gitlab.com/gitlab-org/gitlab-runner"
HELPER_IMAGE_REPOSITORY = "registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper"
JOB_IMAGE = "alpine:3.21.3"
# The seed's mount options for Alibaba Cloud NAS over NFSv3.
NAS_MOUNT_OPTIONS = (
    "nolock,noresvport,noacl,hard",
    "vers=3",
    "rsize=1048576",
    "wsize=1048576",
    "proto=tcp",
    "timeo=600",
    "retrans=2",
)

Quantity = Annotated[str, AfterValidator(v.check_quantity)]
Image = Annotated[str, AfterValidator(v.check_image)]
ImageRepository = Annotated[str, AfterValidator(v.check_image_repository)]
DnsLabel = Annotated[str, AfterValidator(v.check_dns_label)]
EnvName = Annotated[str, AfterValidator(lambda s: v.check_env_name(s) if s else s)]
ObjectName = Annotated[str, AfterValidator(lambda s: v.check_dns_subdomain(s) if s else s)]
# Names gitlab-runner also uses as job pod volume names, which must be DNS-1123 labels.
VolumeName = Annotated[str, AfterValidator(lambda s: v.check_volume_name(s) if s else s)]
# A local file: '~' is expanded here, once, so every reader sees the same path.
FilePath = Annotated[str, AfterValidator(os.path.expanduser)]


def _check_labels(values: dict[str, str], *, values_are_labels: bool) -> dict[str, str]:
    for key, value in values.items():
        v.check_label_key(key)
        if values_are_labels:
            v.check_label_value(value)
    return values


Labels = Annotated[
    dict[str, str], AfterValidator(lambda d: _check_labels(d, values_are_labels=True))
]
Annotations = Annotated[
    dict[str, str], AfterValidator(lambda d: _check_labels(d, values_are_labels=False))
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GitLabSettings(_Section):
    """Where the runner is registered and how it appears in GitLab."""

    url: str = Field("https://gitlab.com", description="GitLab base URL (https://host[/path]).")
    group: str = Field("", description="Full path of the group that owns the runner.")
    ca_file: FilePath = Field(
        "", description="PEM bundle to trust for a self-signed GitLab TLS cert."
    )
    request_timeout: float = Field(
        30.0, gt=0, le=600, description="Seconds to wait for one GitLab API answer."
    )
    runner_description: str = Field(
        "", description="Runner description; default 'eci runner <cluster>/<namespace>'."
    )
    tags: list[str] = Field(
        default_factory=lambda: ["eci"], description="Runner tags jobs select it by."
    )
    run_untagged: bool = Field(False, description="Also pick up jobs that have no tags.")
    locked: bool = Field(False, description="Lock the runner to its current projects.")
    access_level: Literal["not_protected", "ref_protected"] = Field(
        "not_protected", description="ref_protected: run jobs of protected branches/tags only."
    )
    maximum_timeout: int | None = Field(
        None,
        ge=600,
        le=UID_MAX,  # GitLab keeps it in a 32-bit integer column
        description="Cap on job timeouts in seconds (GitLab's minimum is 600).",
    )
    paused: bool = Field(False, description="Create the runner paused.")
    maintenance_note: str = Field(
        "", max_length=900, description="Free text shown to admins (the tool appends its marker)."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        # Checked first: the other messages quote the URL, which must not show a password.
        if "@" in urlsplit(value).netloc or "@" in value.split("/", 1)[0]:
            raise ValueError(
                "holds credentials (user:password@): remove them from the URL, the token "
                "goes in GITLAB_TOKEN"
            )
        if any(c.isspace() for c in value):
            raise ValueError(
                f"{value!r} contains a space: write it like https://gitlab.example.com"
            )
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"{value!r} is not a URL with a scheme: write it like https://gitlab.example.com"
            )
        if not parts.hostname:
            raise ValueError(
                f"{value!r} has no host name: write it like https://gitlab.example.com"
            )
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port == 0 or (port is None and parts.netloc.endswith(":")):
            raise ValueError(f"{value!r}: the port must be a number from 1 to 65535")
        if not all(c.isalnum() or c in "-._:[]" for c in parts.hostname):
            raise ValueError(f"{value!r}: {parts.hostname!r} is not a valid host name")
        if parts.query or parts.fragment:
            raise ValueError(f"{value!r} must not have a query or fragment")
        if parts.path.rstrip("/").endswith("/api/v4"):
            raise ValueError(f"{value!r} is the API URL: give the GitLab base URL without /api/v4")
        return value.rstrip("/")

    @field_validator("group")
    @classmethod
    def _group(cls, value: str) -> str:
        return v.check_group_path(value) if value else value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            v.check_runner_tag(tag)
        return sorted(set(value))

    @model_validator(mode="after")
    def _some_job_fits(self) -> GitLabSettings:
        if not self.tags and not self.run_untagged:
            raise ValueError(
                "gitlab.tags is empty and gitlab.run_untagged is false: the runner would never "
                "pick up a job; give it a tag or set run_untagged = true"
            )
        return self


class KubernetesSettings(_Section):
    """Which cluster and namespace the runner is deployed to."""

    context: str = Field("", description="kubeconfig context; default: the current context.")
    kubeconfig: FilePath = Field(
        "", description="kubeconfig file; default: $KUBECONFIG or ~/.kube/config."
    )
    namespace: DnsLabel = Field(
        "gitlab-runner", description="Namespace of the runner and its jobs."
    )
    create_namespace: bool = Field(True, description="Create the namespace when it is missing.")
    request_timeout: float = Field(
        30.0, gt=0, le=600, description="Seconds to wait for one Kubernetes API answer."
    )
    lock_duration: int = Field(
        60,
        ge=2,
        le=3600,
        description="Seconds the namespace lock (Lease) of install and rotate lasts unless "
        "renewed: how long a run that stopped renewing (killed, paused) blocks others.",
    )
    cluster_name: str = Field(
        "",
        description="Name that identifies this cluster in GitLab (runner marker, system id); "
        "default: the kubeconfig context name.",
    )
    runner_auth: Literal["in-cluster", "client-certificate"] = Field(
        "in-cluster",
        description="How the runner reaches the Kubernetes API: its ServiceAccount (in-cluster) "
        "or the seed's client certificate files.",
    )
    api_host: str = Field("", description="client-certificate only: the API server URL.")
    ca_file: FilePath = Field("", description="client-certificate only: cluster CA (PEM file).")
    cert_file: FilePath = Field("", description="client-certificate only: client cert (PEM file).")
    key_file: FilePath = Field("", description="client-certificate only: client key (PEM file).")

    @model_validator(mode="after")
    def _client_cert(self) -> KubernetesSettings:
        if self.runner_auth == "client-certificate":
            missing = [
                k for k in ("api_host", "ca_file", "cert_file", "key_file") if not getattr(self, k)
            ]
            if missing:
                raise ValueError(
                    "runner_auth = 'client-certificate' needs "
                    + ", ".join(f"kubernetes.{k}" for k in missing)
                    + " (or use runner_auth = 'in-cluster')"
                )
        return self


class RunnerSettings(_Section):
    """The runner manager: one pinned gitlab-runner version, global config.toml keys."""

    version: str = Field(RUNNER_VERSION, description="gitlab-runner version for runner and helper.")
    image_repository: ImageRepository = Field(
        RUNNER_IMAGE_REPOSITORY, description="Runner image repository."
    )
    helper_image_repository: ImageRepository = Field(
        HELPER_IMAGE_REPOSITORY, description="Helper image repository (e.g. a mirror)."
    )
    helper_arch: Literal["x86_64", "arm64"] = Field(
        "x86_64",
        description="Job node architecture; arm64 also schedules job pods onto arm64 nodes "
        "(nodeSelector kubernetes.io/arch) and marks the ImageCache for Arm.",
    )
    image_flavor: Literal["alpine", "ubuntu"] = Field(
        "alpine",
        description="Runner image flavour: alpine (about 460 MB, starts faster) or ubuntu "
        "(about 800 MB).",
    )
    service_account_annotations: Annotations = Field(
        default_factory=dict,
        description="Annotations on the runner's ServiceAccount, e.g. EKS IRSA's "
        "eks.amazonaws.com/role-arn for cache.s3_authentication = 'iam'.",
    )
    name: str = Field("", description="Runner name in config.toml; default <cluster>-<namespace>.")
    concurrent: int = Field(10, ge=1, le=10000, description="Jobs running at once, at most.")
    check_interval: int = Field(3, ge=1, le=3600, description="Seconds between job requests.")
    output_limit: int = Field(51200, ge=1, le=1048576, description="Job log limit in KiB.")
    log_level: Literal["debug", "info", "warn", "error", "fatal", "panic"] = Field(
        "info", description="Runner log level."
    )
    shutdown_timeout: int = Field(
        30, ge=1, le=3600, description="Seconds a forced stop waits for aborted jobs."
    )
    drain_timeout: int = Field(
        3600,
        ge=0,
        le=86400,
        description="Seconds a stopping runner pod may spend finishing running jobs (SIGQUIT).",
    )
    run_as_user: int = Field(
        999, ge=1, le=UID_MAX, description="UID (and GID) of the manager pod (non-root)."
    )
    cpu_request: Quantity = Field("100m", description="Manager pod CPU request.")
    cpu_limit: Quantity = Field("500m", description="Manager pod CPU limit.")
    memory_request: Quantity = Field("128Mi", description="Manager pod memory request.")
    memory_limit: Quantity = Field("512Mi", description="Manager pod memory limit.")

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        return v.check_semver(value.removeprefix("v"))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if len(value) > 255:
            raise ValueError("must be at most 255 characters")
        return value

    @property
    def image(self) -> str:
        """The pinned runner image (tag ``alpine-vX.Y.Z`` or, Ubuntu, ``vX.Y.Z``)."""
        flavor = "alpine-" if self.image_flavor == "alpine" else ""
        return f"{self.image_repository}:{flavor}v{self.version}"

    @property
    def helper_image(self) -> str:
        """The helper image of the same version (tag format from gitlab-runner's helperimage)."""
        return f"{self.helper_image_repository}:{self.helper_arch}-v{self.version}"


class Toleration(_Section):
    """A node toleration for job pods."""

    key: str
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute", ""] = "NoSchedule"


class Volume(_Section):
    """An extra volume mounted into every job pod."""

    type: Literal["pvc", "secret", "config_map", "empty_dir"]
    name: VolumeName
    mount_path: str
    read_only: bool = False
    sub_path: str = ""

    @field_validator("mount_path")
    @classmethod
    def _abs(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must be an absolute path")
        return value

    @model_validator(mode="after")
    def _read_only(self) -> Volume:
        if self.type == "empty_dir" and self.read_only:
            # gitlab-runner's [[runners.kubernetes.volumes.empty_dir]] has no read_only key.
            raise ValueError(
                f"volume {self.name!r}: an empty_dir cannot be read_only (gitlab-runner has no "
                "such option): remove read_only, or use a config_map or secret volume"
            )
        return self


PullPolicy = Literal["always", "never", "if-not-present"]


class ExecutorSettings(_Section):
    """Job pods: resources, scheduling, extra metadata and volumes."""

    image: Image = Field(JOB_IMAGE, description="Default job image when a job names none.")
    # Build + helper limits add up to exactly 2 vCPU / 4 GiB, an ECI spec (see bootstrap/cost.py).
    cpu_request: Quantity = Field("1500m", description="Build container CPU request.")
    cpu_limit: Quantity = Field(
        "1500m", description="Build container CPU limit (with the helper's: 2 vCPU on ECI)."
    )
    memory_request: Quantity = Field("3Gi", description="Build container memory request.")
    memory_limit: Quantity = Field(
        "3Gi", description="Build container memory limit (with the helper's: 4 GiB on ECI)."
    )
    helper_cpu_request: Quantity = Field("500m", description="Helper container CPU request.")
    helper_cpu_limit: Quantity = Field("500m", description="Helper container CPU limit.")
    helper_memory_request: Quantity = Field("1Gi", description="Helper container memory request.")
    helper_memory_limit: Quantity = Field("1Gi", description="Helper container memory limit.")
    service_cpu_request: Quantity = Field("500m", description="Service container CPU request.")
    # One service lifts a job pod to 4 vCPU / 8 GiB whatever its size: let it use all of that.
    service_cpu_limit: Quantity = Field(
        "2", description="Service container CPU limit (a job with one service: 4 vCPU on ECI)."
    )
    service_memory_request: Quantity = Field(
        "512Mi", description="Service container memory request."
    )
    service_memory_limit: Quantity = Field(
        "4Gi", description="Service container memory limit (a job with one service: 8 GiB)."
    )
    pull_policy: PullPolicy | list[PullPolicy] = Field(
        "if-not-present", description="Image pull policy (ECI image caches want if-not-present)."
    )
    poll_timeout: int = Field(
        600, ge=30, le=3600, description="Seconds to wait for a job pod to start."
    )
    pod_annotations: Annotations = Field(
        default_factory=dict, description="Extra annotations on job pods."
    )
    pod_labels: Labels = Field(default_factory=dict, description="Extra labels on job pods.")
    node_selector: Labels = Field(default_factory=dict, description="Node selector of job pods.")
    tolerations: list[Toleration] = Field(
        default_factory=list,
        description="Tolerations of job pods: [{key, operator, value, effect}].",
    )
    volumes: list[Volume] = Field(default_factory=list, description="Extra job pod volumes.")
    service_account: ObjectName = Field("", description="ServiceAccount of job pods.")
    build_allow_privilege_escalation: bool = Field(
        False,
        description="Let the build container (never the helper or services) gain privileges "
        "through setuid binaries, as rootless BuildKit's newuidmap needs; give such a runner "
        "its own namespace and tag (docs/templates.md).",
    )

    @field_validator("tolerations")
    @classmethod
    def _distinct_tolerations(cls, value: list[Toleration]) -> list[Toleration]:
        # gitlab-runner's node_tolerations is a map "key=value" -> effect: one effect per key.
        seen: dict[str, str] = {}
        for t in value:
            key = t.key if t.operator == "Exists" else f"{t.key}={t.value}"
            if key in seen:
                raise ValueError(
                    f"two tolerations for {key!r} (effects {seen[key]!r} and {t.effect!r}): "
                    "gitlab-runner keeps one effect per key; give one toleration with "
                    "effect = '' to tolerate every effect"
                )
            seen[key] = t.effect
        return value

    @model_validator(mode="after")
    def _requests_within_limits(self) -> ExecutorSettings:
        for prefix in ("", "helper_", "service_"):
            for res in ("cpu", "memory"):
                request = getattr(self, f"{prefix}{res}_request")
                limit = getattr(self, f"{prefix}{res}_limit")
                if v.quantity_value(request) > v.quantity_value(limit):
                    raise ValueError(
                        f"{prefix}{res}_request {request!r} is above "
                        f"{prefix}{res}_limit {limit!r}: lower the request or raise the limit"
                    )
        return self


class EciSettings(_Section):
    """Alibaba Cloud ECI pod annotations (profile = "eci" only)."""

    use_specs: list[str] = Field(
        default_factory=list,
        description="Specs ECI tries in order for job pods (k8s.aliyun.com/eci-use-specs), "
        "vCPU-memory such as '2-4Gi' or ECS instance types such as 'ecs.c6.xlarge'; at most 5.",
    )
    spot_strategy: Literal["", "SpotAsPriceGo", "SpotWithPriceLimit"] = Field(
        "", description="Run job pods on spot instances (cheaper; jobs may be interrupted)."
    )
    spot_price_limit: float = Field(
        0.0,
        ge=0,
        allow_inf_nan=False,  # TOML has inf and nan; ECI takes neither
        description="Hourly price cap (SpotWithPriceLimit), at most 3 decimals.",
    )
    with_eip: bool = Field(
        False,
        description="Give every job pod an elastic IP (k8s.aliyun.com/eci-with-eip) for "
        "internet access when the VPC has no NAT gateway; each EIP is billed.",
    )

    @field_validator("use_specs")
    @classmethod
    def _use_specs(cls, value: list[str]) -> list[str]:
        if len(value) > cost.MAX_USE_SPECS:
            raise ValueError(f"at most {cost.MAX_USE_SPECS} specs (ECI's limit), got {len(value)}")
        if len(set(value)) != len(value):
            raise ValueError(f"{value!r} lists a spec twice")
        for entry in value:
            cost.parse_use_spec(entry)
        return value

    @field_validator("spot_price_limit")
    @classmethod
    def _price(cls, value: float) -> float:
        if round(value, 3) != value:
            raise ValueError(f"{value!r} has more than 3 decimals, which ECI refuses")
        return value

    route_namespace: bool = Field(
        True,
        description="Label a created namespace alibabacloud.com/eci=true, so that in ACK clusters "
        "with virtual nodes its pods run on ECI.",
    )

    @model_validator(mode="after")
    def _spot(self) -> EciSettings:
        if self.spot_strategy == "SpotWithPriceLimit" and self.spot_price_limit <= 0:
            raise ValueError("spot_strategy 'SpotWithPriceLimit' needs spot_price_limit > 0")
        return self


class CacheSettings(_Section):
    """Where jobs keep their cache (mounted at /cache)."""

    type: Literal["none", "nas", "pvc", "s3"] = Field(
        "none", description="none | nas (NFS PV+PVC) | pvc (an existing claim) | s3."
    )
    size: Quantity = Field("10Gi", description="nas: capacity of the PV/PVC.")
    server: str = Field("", description="nas: NFS server, e.g. xxxx.cn-hangzhou.nas.aliyuncs.com.")
    path: str = Field("/gitlab-runner-cache", description="nas: exported path.")
    driver: Literal["csi", "nfs"] = Field(
        "csi", description="nas: csi (nasplugin.csi.alibabacloud.com) or plain in-tree nfs."
    )
    mount_options: list[str] = Field(
        default_factory=lambda: list(NAS_MOUNT_OPTIONS), description="nas: NFS mount options."
    )
    claim_name: VolumeName = Field("", description="pvc: name of an existing ReadWriteMany claim.")
    s3_server_address: str = Field(
        "", description="s3: endpoint host, e.g. oss-cn-hangzhou.aliyuncs.com."
    )
    s3_bucket_name: str = Field("", description="s3: bucket name.")
    s3_bucket_location: str = Field("", description="s3: bucket region.")
    s3_insecure: bool = Field(False, description="s3: use plain HTTP.")
    s3_access_key_env: EnvName = Field("", description="s3: env var holding the access key id.")
    s3_secret_key_env: EnvName = Field("", description="s3: env var holding the secret key.")
    s3_authentication: Literal["access-key", "iam"] = Field(
        "access-key",
        description="s3: access-key (the two *_env keys; OSS needs them) or iam (the AWS SDK's "
        "credential chain in the runner pod, e.g. EKS IRSA; not on ECI).",
    )
    shared: bool = Field(True, description="s3: share the cache between runners.")

    @model_validator(mode="after")
    def _complete(self) -> CacheSettings:
        if self.type == "nas":
            if not self.server:
                raise ValueError("type 'nas' needs cache.server (the NAS mount target host)")
            if not self.path.startswith("/"):
                raise ValueError(f"cache.path {self.path!r} must be an absolute path")
        if self.type == "pvc" and not self.claim_name:
            raise ValueError("type 'pvc' needs cache.claim_name (an existing ReadWriteMany claim)")
        if self.type == "s3":
            missing = [k for k in ("s3_server_address", "s3_bucket_name") if not getattr(self, k)]
            if missing:
                raise ValueError("type 's3' needs " + ", ".join(f"cache.{k}" for k in missing))
            keys = bool(self.s3_access_key_env) + bool(self.s3_secret_key_env)
            if self.s3_authentication == "access-key" and keys != 2:
                raise ValueError(
                    "cache.s3_authentication 'access-key' needs both cache.s3_access_key_env "
                    "and cache.s3_secret_key_env (for OSS: an AccessKey pair of a RAM user); "
                    "or set s3_authentication = 'iam' where the AWS SDK finds credentials"
                )
            if self.s3_authentication == "iam" and keys:
                raise ValueError(
                    "cache.s3_authentication 'iam' takes no cache.s3_*_key_env: remove them, "
                    "or use s3_authentication = 'access-key'"
                )
        return self


class ImageCacheSettings(_Section):
    """The ECI ImageCache that pre-pulls job images (profile = "eci" only)."""

    enabled: bool = Field(True, description="Create the ImageCache when its CRD exists.")
    extra_images: list[Image] = Field(
        default_factory=list, description="Images to pre-pull besides the runner and helper."
    )
    size_gib: int = Field(20, ge=20, le=32768, description="Snapshot size in GiB.")
    retention_days: int | None = Field(None, ge=1, description="Days to keep it; unset = forever.")


class RegistrySettings(_Section):
    """Registry credentials mounted into job pods at /kaniko/.docker/config.json."""

    server: str = Field("", description="Registry host, e.g. registry.cn-hangzhou.aliyuncs.com.")
    username: str = Field("", description="Registry user name.")
    password_env: EnvName = Field("", description="Env var that holds the password.")
    password_file: FilePath = Field("", description="File that holds the password.")
    existing_secret: ObjectName = Field(
        "", description="Use this existing dockerconfigjson Secret instead."
    )

    @model_validator(mode="after")
    def _complete(self) -> RegistrySettings:
        if self.existing_secret:
            if self.server or self.username or self.password_env or self.password_file:
                raise ValueError(
                    "existing_secret excludes server/username/password_*: set one or the other"
                )
            return self
        if not self.server:
            if self.username or self.password_env or self.password_file:
                raise ValueError("registry credentials need registry.server")
            return self
        if "/" in self.server or "://" in self.server:
            raise ValueError(f"server {self.server!r} must be a host[:port] without scheme or path")
        try:
            v.check_host_port(self.server)
        except ValueError as exc:
            raise ValueError(f"registry.server: {exc}") from None
        if not self.username:
            raise ValueError("registry.server needs registry.username")
        if bool(self.password_env) == bool(self.password_file):
            raise ValueError(
                "registry.server needs exactly one of registry.password_env or "
                "registry.password_file (never the password itself)"
            )
        return self

    @property
    def enabled(self) -> bool:
        """Whether job pods get registry credentials."""
        return bool(self.server or self.existing_secret)


class GitSshSettings(_Section):
    """An SSH key for jobs that clone other repositories (the seed's gitlab-credentials)."""

    private_key_file: FilePath = Field("", description="SSH private key file (becomes id_rsa).")
    public_key_file: FilePath = Field("", description="SSH public key file (id_rsa.pub), optional.")
    known_hosts_file: FilePath = Field("", description="Required with a key: host keys to trust.")
    existing_secret: ObjectName = Field("", description="Use this existing Secret instead.")

    @model_validator(mode="after")
    def _complete(self) -> GitSshSettings:
        if self.existing_secret:
            if self.private_key_file or self.public_key_file or self.known_hosts_file:
                raise ValueError("existing_secret excludes the *_file keys: set one or the other")
            return self
        if (self.public_key_file or self.known_hosts_file) and not self.private_key_file:
            raise ValueError("git_ssh needs private_key_file when other git_ssh files are set")
        if self.private_key_file and not self.known_hosts_file:
            raise ValueError(
                "git_ssh.known_hosts_file is required with a private key (host key checking "
                "is never turned off); create it with: ssh-keyscan your.git.host > known_hosts"
            )
        return self

    @property
    def enabled(self) -> bool:
        """Whether job pods get the git-ssh credentials."""
        return bool(self.private_key_file or self.existing_secret)


class TemplatesSettings(_Section):
    """The CI templates project published into the group."""

    project: str = Field("ci-templates", description="Project path inside the group.")
    version: str = Field("1.0.0", description="Semver of the templates release.")
    kaniko_image: Image | None = Field(None, description="kaniko image (default: pinned fork).")
    buildkit_image: Image | None = Field(None, description="BuildKit image (default: pinned).")
    buildkit_tags: list[str] = Field(
        default_factory=list,
        description="Runner tags of the BuildKit template's jobs (default: gitlab.tags); point "
        "them at a runner with executor.build_allow_privilege_escalation = true.",
    )
    git_host: str = Field("", description="SSH host for prepare-git; default: GitLab's host.")
    git_port: int = Field(22, ge=1, le=65535, description="SSH port for prepare-git.")

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        return v.check_semver(value)

    @field_validator("git_host")
    @classmethod
    def _git_host(cls, value: str) -> str:
        return v.check_host(value) if value else value

    @field_validator("buildkit_tags")
    @classmethod
    def _buildkit_tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            v.check_runner_tag(tag)
        return value

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        v.check_group_path(value)
        if "/" in value:
            raise ValueError(
                f"{value!r} must be a project name inside the group (e.g. ci-templates), not a path"
            )
        return value


class RotationSettings(_Section):
    """The scheduled token rotation."""

    project: str = Field("", description="Ops project (full path) that holds the schedule.")
    cron: str = Field(
        "17 3 * * *",
        description="When the rotation pipeline runs: 5 fields of ASCII digits, names, '*', "
        "'-', ',' and '/' (steps of 1 or 2 digits), as GitLab's parser takes them.",
    )
    timezone: str = Field(
        "UTC",
        description="Timezone of the cron: an IANA name such as Asia/Shanghai (not Rails' "
        "'Beijing').",
    )
    rotate_before: str = Field("7d", description="Rotate when the token expires within this.")
    token_lifetime_days: int = Field(
        90,
        ge=2,
        le=365,
        description="Lifetime in days of the rotation job's group access token, at creation "
        "and at each renewal (GitLab's maximum is 365 unless the instance sets less).",
    )
    token_env: str = Field(
        "",
        description="Where group access tokens are unavailable: the environment variable "
        "holding the token install stores as the ops project's GITLAB_TOKEN (a group Owner's, "
        "scope api). Empty: install creates a group access token.",
    )
    in_cluster: bool = Field(
        True,
        description="Run the scheduled rotation inside the cluster: a second, sealed runner "
        "entry (a locked project runner of the ops project) whose job pods run as "
        "ServiceAccount gitlab-runner-rotator.",
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return v.check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return v.check_timezone(value)

    @field_validator("rotate_before")
    @classmethod
    def _window(cls, value: str) -> str:
        v.parse_duration(value)
        return value

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        return v.check_group_path(value) if value else value


class Settings(_Section):
    """Everything ``bootstrap`` needs, after merging file, environment and flags."""

    profile: Literal["eci", "kubernetes"] = Field(
        "eci",
        description="eci: Alibaba Cloud ECI annotations and ImageCache; kubernetes: plain "
        "Kubernetes (EKS/GKE/kind), no ECI features.",
    )
    gitlab: GitLabSettings = Field(default_factory=GitLabSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    runner: RunnerSettings = Field(default_factory=RunnerSettings)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    eci: EciSettings = Field(default_factory=EciSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    image_cache: ImageCacheSettings = Field(default_factory=ImageCacheSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    git_ssh: GitSshSettings = Field(default_factory=GitSshSettings)
    templates: TemplatesSettings = Field(default_factory=TemplatesSettings)
    rotation: RotationSettings = Field(default_factory=RotationSettings)
    # Where each key given explicitly came from ("--kubeconfig", "$KUBECONFIG_VAR",
    # "kubernetes.kubeconfig in ./bootstrap.toml"), for messages; not a setting.
    _origins: dict[str, str] = PrivateAttr(default_factory=dict)

    def origin(self, key: str) -> str:
        """Where the dotted ``key`` was set, as a message names it (the key by default)."""
        return self._origins.get(key, key)

    @model_validator(mode="after")
    def _cross(self) -> Settings:
        eci = self.eci
        if self.profile == "kubernetes" and (eci.use_specs or eci.spot_strategy or eci.with_eip):
            raise ValueError(
                "the [eci] annotations only work with profile = 'eci': remove them or set "
                "profile = 'eci'"
            )
        problems = [
            *self._use_specs_fit(),
            *self._arch(),
            *self._volume_names(),
            *self._image_cache_cap(),
        ]
        s3 = self.cache.type == "s3"
        if self.profile == "eci" and s3 and self.cache.s3_authentication == "iam":
            problems.append(
                "cache.s3_authentication 'iam' finds no credentials on ECI (OSS has no AWS "
                "credential chain): set s3_authentication = 'access-key' with "
                "cache.s3_access_key_env and cache.s3_secret_key_env"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _use_specs_fit(self) -> list[str]:
        needed = cost.job_pod_billing(self).needed
        return [
            f"eci.use_specs {entry!r} is smaller than a job pod's containers ({needed.label} "
            "of build + helper limits): use a larger spec or lower the executor limits"
            for entry in self.eci.use_specs
            if (spec := cost.parse_use_spec(entry)) is not None
            and (spec.millicores < needed.millicores or spec.mib < needed.mib)
        ]

    def _arch(self) -> list[str]:
        arch = self.executor.node_selector.get("kubernetes.io/arch")
        wanted = "arm64" if self.runner.helper_arch == "arm64" else "amd64"
        specs = [e for e in self.eci.use_specs if cost.parse_use_spec(e) is not None]
        if wanted == "arm64" and specs:
            # ACK: Arm pods take only Arm ECS instance types; vCPU-memory specs are x86.
            return [
                f"eci.use_specs {specs!r}: Arm job pods (runner.helper_arch = 'arm64') take "
                "only Arm ECS instance types (e.g. 'ecs.c8y.large'), not vCPU-memory specs"
            ]
        if arch is not None and arch != wanted:
            return [
                f"executor.node_selector kubernetes.io/arch = {arch!r} contradicts "
                f"runner.helper_arch = {self.runner.helper_arch!r}: the helper image would not "
                "run on those nodes; set one to match the other"
            ]
        return []

    def _volume_names(self) -> list[str]:
        names = [volume.name for volume in self.executor.volumes]
        if self.cache.type == "pvc":
            names.append(self.cache.claim_name)
        problems = []
        # Also Secret names, which a DNS-1123 subdomain would satisfy: here they name volumes.
        for key, name in (
            ("registry.existing_secret", self.registry.existing_secret),
            ("git_ssh.existing_secret", self.git_ssh.existing_secret),
        ):
            if not name:
                continue
            names.append(name)
            try:
                v.check_volume_name(name)
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
        twice = sorted({name for name in names if names.count(name) > 1})
        return problems + [
            f"{name!r} is used for two job pod volumes (executor.volumes, cache.claim_name, "
            "registry/git_ssh existing_secret): Kubernetes refuses a pod with two volumes of "
            "one name; rename one"
            for name in twice
        ]

    def _image_cache_cap(self) -> list[str]:
        if self.profile != "eci" or not self.image_cache.enabled:
            return []
        images = self.image_cache_images
        if len(images) <= IMAGE_CACHE_MAX_IMAGES:
            return []
        return [
            f"the ImageCache would hold {len(images)} images, ECI takes at most "
            f"{IMAGE_CACHE_MAX_IMAGES}: remove {len(images) - IMAGE_CACHE_MAX_IMAGES} from "
            "image_cache.extra_images"
        ]

    @property
    def image_cache_images(self) -> list[str]:
        """What the ImageCache pre-pulls: runner, helper, job image, the templates' build
        images (kaniko, BuildKit) and image_cache.extra_images, each once."""
        from bootstrap.render.templates import BUILDKIT_IMAGE, KANIKO_IMAGE

        images = [
            self.runner.helper_image,
            self.runner.image,
            self.executor.image,
            self.templates.kaniko_image or KANIKO_IMAGE,
            self.templates.buildkit_image or BUILDKIT_IMAGE,
        ]
        for image in self.image_cache.extra_images:
            if image not in images:
                images.append(image)
        return images

    @property
    def cluster_id(self) -> str:
        """The name that identifies the cluster: cluster_name, else the context, else 'default'."""
        return self.kubernetes.cluster_name or self.kubernetes.context or "default"


# --- loading -------------------------------------------------------------------------------

# Keys that must never hold a secret literal, with the fix to suggest.
_FORBIDDEN_KEYS = {
    "gitlab.token": "never write the token in a file: export GITLAB_TOKEN instead",
    "gitlab.private_token": "never write the token in a file: export GITLAB_TOKEN instead",
    "registry.password": (
        'never write the password in the file: set registry.password_env = "VAR" '
        'or registry.password_file = "path"'
    ),
    "cache.s3_access_key": "set cache.s3_access_key_env to the name of an env var instead",
    "cache.s3_secret_key": "set cache.s3_secret_key_env to the name of an env var instead",
}

# Environment variables that map to settings besides the generic BOOTSTRAP_<SECTION>__<KEY>.
ENV_ALIASES = {
    "GITLAB_URL": ("gitlab", "url"),
    "BOOTSTRAP_GROUP": ("gitlab", "group"),
    "BOOTSTRAP_NAMESPACE": ("kubernetes", "namespace"),
    "BOOTSTRAP_PROFILE": ("profile",),
}


@dataclass
class Loaded:
    """Settings and where each explicitly set key came from (for messages)."""

    settings: Settings
    config_file: Path | None
    sources: dict[str, str] = field(default_factory=dict)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise InvalidInput(f"--config {path}: is a directory, not a TOML file") from None
    except FileNotFoundError:
        raise InvalidInput(f"--config {path}: no such file") from None
    except PermissionError:
        raise InvalidInput(f"--config {path}: permission denied") from None
    except OSError as exc:  # a symlink loop, a path through a file, a name too long, EIO
        reason = exc.strerror or type(exc).__name__
        raise InvalidInput(
            f"--config {path}: cannot read it: {reason}",
            hint="give the path of a readable TOML file",
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InvalidInput(
            f"{path}: not UTF-8 text (bad byte at line {line}): save it as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = "" if "line" in str(exc) else f" (line {text.count(chr(10)) + 1} is the last)"
        raise InvalidInput(f"{path}: invalid TOML: {exc}{where}") from None


def _env_value(raw: str, default: object) -> object:
    """Parse an env value as a TOML value when it is one, else keep the string."""
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    if isinstance(default, list) and isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _set(tree: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    node = tree
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value


def _default_of(path: tuple[str, ...]) -> object:
    model: type[BaseModel] = Settings
    for part in path[:-1]:
        if part not in model.model_fields:
            return None  # an unknown section: validation reports it, naming the variable
        annotation = model.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    info = model.model_fields.get(path[-1])
    return info.get_default(call_default_factory=True) if info else None


def _env_overrides(environ: Mapping[str, str]) -> dict[tuple[str, ...], tuple[object, str]]:
    found: dict[tuple[str, ...], tuple[object, str]] = {}
    for name, raw in environ.items():
        if name in ENV_ALIASES:
            path = ENV_ALIASES[name]
        elif name.startswith(ENV_PREFIX) and "__" in name:
            section, _, key = name[len(ENV_PREFIX) :].partition("__")
            path = (section.lower(), key.lower())
        else:
            continue
        found[path] = (_env_value(raw, _default_of(path)), f"${name}")
    return found


def _suggest(key: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if close:
        return f"unknown key: did you mean {close[0]!r}?"
    return "unknown key: valid keys here are " + ", ".join(sorted(candidates))


def _fields_at(loc: tuple[str | int, ...]) -> list[str]:
    model: type[BaseModel] = Settings
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        if info is None:
            break
        annotation = info.annotation
        args = getattr(annotation, "__args__", ())
        nested = [
            a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if not nested:
            break
        model = nested[0]
    return list(model.model_fields)


def _format_errors(exc: ValidationError, sources: Mapping[str, str]) -> list[str]:
    messages: list[str] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or "(settings)"
        # An unknown section is reported at the section; the variable set a key inside it.
        source = sources.get(key) or next(
            (origin for dotted, origin in sources.items() if dotted.startswith(f"{key}.")), None
        )
        where = f"{key} ({source})" if source else key
        kind = err["type"]
        if kind == "extra_forbidden":
            if key in _FORBIDDEN_KEYS:
                messages.append(f"{key}: {_FORBIDDEN_KEYS[key]}")
            else:
                unknown = f"{where}: {_suggest(str(loc[-1]), _fields_at(loc[:-1]))}"
                if source and source.startswith("$"):
                    unknown += f" (unset {source[1:]} or correct its name)"
                messages.append(unknown)
            continue
        msg = _without_secret(key, err["msg"].removeprefix("Value error, "), err.get("input"))
        if msg.startswith(f"{key}.") or msg.startswith(f"{key} "):
            messages.append(msg)  # a section-level check that already names its key
        elif kind in ("value_error", "assertion_error") or "input" not in err:
            messages.append(f"{where}: {msg}")
        else:
            messages.append(f"{where}: {shown(key, err['input'])} is invalid: {msg}")
    return messages


def _without_secret(key: str, msg: str, value: object) -> str:
    """``msg`` with the value of a key that may hold a secret taken out."""
    if not isinstance(value, str) or not value or shown(key, value) == repr(value):
        return msg
    msg = msg.replace(repr(value), shown(key, value))
    if value in msg:
        return f"is not valid ({shown(key, value)})"
    return msg


def _forbidden_keys(tree: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Secret keys anywhere in the file, inside arrays of tables too ([[registry]])."""
    found: list[str] = []
    for name, value in tree.items():
        dotted = f"{prefix}{name}"
        if dotted in _FORBIDDEN_KEYS:
            found.append(f"{dotted}: {_FORBIDDEN_KEYS[dotted]}")
        tables = value if isinstance(value, list) else [value]
        for table in tables:
            if isinstance(table, dict):
                found += _forbidden_keys(table, f"{dotted}.")
    return found


def find_config_file(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    """The config file: --config, else $BOOTSTRAP_CONFIG, else ./bootstrap.toml if present."""
    chosen = explicit or environ.get("BOOTSTRAP_CONFIG")
    if chosen:
        return Path(chosen)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def load_settings(
    config_file: str | None = None,
    *,
    flags: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Loaded:
    """Merge file, environment and flags (flag > env > file > default) and validate.

    Args:
        config_file: the ``--config`` value, if any.
        flags: dotted keys (``"kubernetes.namespace"``) to values given on the command line;
            ``None`` values are ignored.
        environ: the environment (defaults to ``os.environ``).

    Raises:
        InvalidInput: the file cannot be read or parsed.
        ConfigErrors: one or more keys are invalid, or the objects or CI templates rendered
            from them would be refused (by Kubernetes, by the template renderer); all are
            listed.
    """
    env = Environ(os.environ) if environ is None else environ
    path = find_config_file(config_file, env)
    tree: dict[str, Any] = _read_file(path) if path else {}
    origins = {
        f"{section}.{key}": f"{section}.{key} in {path}"
        for section, keys in tree.items()
        if isinstance(keys, dict)
        for key in keys
    }
    sources: dict[str, str] = {}
    for path_parts, (value, origin) in _env_overrides(env).items():
        _set(tree, path_parts, value)
        sources[".".join(path_parts)] = origin
    for dotted, (value, origin) in _flag_overrides(flags or {}).items():
        _set(tree, tuple(dotted.split(".")), value)
        sources[dotted] = origin
    forbidden = _forbidden_keys(tree)
    try:
        settings = Settings.model_validate(tree)
    except ValidationError as exc:
        errors = _format_errors(exc, sources)
        raise ConfigErrors([*forbidden, *(e for e in errors if e not in forbidden)]) from None
    if forbidden:
        raise ConfigErrors(forbidden)
    settings._origins = {**origins, **sources}
    # Every check a later step makes (objects, templates), before the first write anywhere.
    from bootstrap.render.checks import offline_problems

    problems = offline_problems(settings)
    if problems:
        raise ConfigErrors(problems)
    return Loaded(settings=settings, config_file=path, sources=sources)


# Flags and the keys they set, for messages that name the flag.
FLAG_NAMES = {
    "gitlab.group": "--group",
    "kubernetes.namespace": "--namespace",
    "kubernetes.context": "--context",
    "kubernetes.kubeconfig": "--kubeconfig",
}


def _flag_overrides(flags: Mapping[str, object]) -> dict[str, tuple[object, str]]:
    return {
        key: (value, FLAG_NAMES.get(key, "flag"))
        for key, value in flags.items()
        if value is not None
    }


def require_group(loaded: Loaded) -> str:
    """The group path, or an error that says how to give it."""
    group = loaded.settings.gitlab.group
    if not group:
        raise InvalidInput(
            "gitlab.group is not set: pass --group FULL_PATH, set [gitlab] group in "
            "bootstrap.toml, or export BOOTSTRAP_GROUP"
        )
    return group


def json_schema() -> dict[str, Any]:
    """The JSON Schema of ``bootstrap.toml`` (for editors: Taplo / Even Better TOML)."""
    schema = Settings.model_json_schema(mode="validation")
    # default_factory values are not in pydantic's schema; editors and docs want them.
    defaults = Settings().model_dump(mode="json")
    for section, prop in schema["properties"].items():
        ref = prop.get("$ref")
        if not ref:
            continue
        for key, field_schema in schema["$defs"][ref.rsplit("/", 1)[-1]]["properties"].items():
            field_schema.setdefault("default", defaults[section][key])
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    schema["title"] = "bootstrap.toml"
    return schema
