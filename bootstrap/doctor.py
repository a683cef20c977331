"""``bootstrap doctor``: install's preflight checks on their own, each with its fix.

Every check runs even when another failed; a check that needs an earlier answer (the GitLab
connection, the group, the cluster) is skipped and says why. So one run lists everything to
fix before ``install``. Nothing is written: the only POSTs are SelfSubjectAccessReviews,
which change nothing, and ``POST /runners/verify`` is never called.

The exit code is that of the first failed check, in the order shown: 2 invalid input
(``GITLAB_TOKEN``, credential files, group, kubeconfig), 3 GitLab, 4 Kubernetes. Warnings
(no ImageCache CRD, a job pod that wastes its ECI spec, quota events) do not fail.

In the eci profile it also looks at what a first deployment on ECI trips over, as far as
the Kubernetes API shows it: the virtual nodes and their architecture, quota and
out-of-stock events, and image pulls that time out (the VPC has no NAT gateway or EIP).
Egress itself is not visible to the Kubernetes API; that check says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from bootstrap.config import Settings
from bootstrap.cost import billing_summary
from bootstrap.deadline import whole_run
from bootstrap.errors import BootstrapError, GitLabError, InvalidInput, KubeError
from bootstrap.gitlab import (
    OWNER,
    SCOPE_CREATE,
    SCOPE_MANAGE,
    SCOPE_READ,
    GitLab,
    Group,
    redact_token,
)
from bootstrap.inputs import gitlab_token, load_credentials
from bootstrap.kube import KINDS, Kube
from bootstrap.lock import LOCK_VERBS
from bootstrap.readiness import event_time
from bootstrap.render import render
from bootstrap.render.credentials import PLACEHOLDER_TOKEN, Credentials
from bootstrap.render.names import image_cache as image_cache_name
from bootstrap.secret import without_userinfo
from bootstrap.workflow import (
    IMAGE_CACHE_MISSING,
    access_review,
    check_role,
    check_scopes,
    image_cache_supported,
    image_cache_wanted,
    open_gitlab,
    open_kube,
    read_namespace,
)

CheckStatus = Literal["ok", "warn", "fail", "skip"]
# install reads every object, creates the missing ones and patches (server-side apply) the rest.
INSTALL_VERBS = ("get", "create", "patch")
# What install's reads and writes need: the runner scopes, and read_api for the user, the
# group and its membership (``api`` covers all three).
INSTALL_SCOPES = (SCOPE_CREATE, SCOPE_MANAGE, SCOPE_READ)
_ERRORS: dict[int, type[BootstrapError]] = {2: InvalidInput, 3: GitLabError, 4: KubeError}


@dataclass(frozen=True)
class Check:
    """One check: what was found and, when it failed, how to fix it."""

    name: str
    status: CheckStatus
    detail: str
    fix: str = ""
    exit_code: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
            "exit_code": self.exit_code,
        }


@dataclass
class DoctorResult:
    """Every check, in the order they ran."""

    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def exit_code(self) -> int:
        return self.failed[0].exit_code if self.failed else 0

    def failure(self) -> BootstrapError | None:
        """The error the CLI exits with: the first failed check, counted (None when none)."""
        if not self.failed:
            return None
        first, count = self.failed[0], len(self.failed)
        message = (
            f"{count} check{'s' if count > 1 else ''} failed; first: {first.name}: {first.detail}"
        )
        return _ERRORS[first.exit_code](message, hint=first.fix or None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.failed,
            "exit_code": self.exit_code,
            "checks": [c.as_dict() for c in self.checks],
        }


class _Checks:
    """Collects checks; ``fail`` takes the error the check raised."""

    def __init__(self) -> None:
        self.result = DoctorResult()

    def ok(self, name: str, detail: str) -> None:
        self.result.checks.append(Check(name, "ok", detail))

    def warn(self, name: str, detail: str, fix: str = "") -> None:
        self.result.checks.append(Check(name, "warn", detail, fix))

    def skip(self, name: str, why: str) -> None:
        self.result.checks.append(Check(name, "skip", why))

    def fail(self, name: str, error: BootstrapError) -> None:
        self.result.checks.append(
            Check(name, "fail", error.message, error.hint or "", error.exit_code)
        )


@whole_run
def doctor(
    settings: Settings,
    *,
    environ: Mapping[str, str],
    timeout: float = 600,
    gitlab_factory: Callable[..., GitLab] = GitLab,
    kube_factory: Callable[..., Kube] = Kube,
) -> DoctorResult:
    """Run every preflight check of ``install``; never raises for a failed check, only
    :class:`~bootstrap.errors.WaitTimeout` (exit 5) when ``timeout`` seconds pass first.

    Args:
        settings: validated settings (the group may be missing: that is a failed check).
        environ: ``GITLAB_TOKEN`` and the credential variables the settings name.
        timeout: seconds the whole run may take (``--timeout``).
    """
    checks = _Checks()
    _local(checks, settings, environ)
    _cost(checks, settings)
    _gitlab(checks, settings, environ, gitlab_factory)
    _kubernetes(checks, settings, kube_factory)
    return checks.result


def _cost(checks: _Checks, settings: Settings) -> None:
    summary = billing_summary(settings)
    first = summary.lines()[0]
    if summary.warnings:
        checks.warn(
            "job pod cost",
            " ".join([first, *summary.warnings]),
            "; ".join(s for pod in summary.pods for s in pod.suggestions),
        )
    else:
        checks.ok("job pod cost", first)


def _local(checks: _Checks, settings: Settings, environ: Mapping[str, str]) -> None:
    try:
        load_credentials(settings, environ, PLACEHOLDER_TOKEN)
    except InvalidInput as exc:
        checks.fail("credential files", exc)
    else:
        checks.ok("credential files", "every file and variable the settings name is readable")


def _gitlab(
    checks: _Checks,
    settings: Settings,
    environ: Mapping[str, str],
    gitlab_factory: Callable[..., GitLab],
) -> None:
    names = ("GitLab", "token scopes", "group", "role")
    try:
        token = gitlab_token(environ)
    except InvalidInput as exc:
        checks.fail("GITLAB_TOKEN", exc)
        for name in names:
            checks.skip(name, "needs GITLAB_TOKEN")
        return
    checks.ok("GITLAB_TOKEN", f"set ({redact_token(token)})")
    url = without_userinfo(settings.gitlab.url)
    gl = open_gitlab(settings, token, gitlab_factory)
    try:
        checks.ok("GitLab", f"GitLab {gl.version()} at {url}")
    except GitLabError as exc:
        if exc.status is None or exc.status == 401:
            checks.fail("GitLab", exc)
            for name in names[1:]:
                checks.skip(name, "needs a GitLab that answers and accepts the token")
            return
        checks.ok("GitLab", f"reachable at {url} (the version is not readable: {exc.message})")
    try:
        info = check_scopes(gl, INSTALL_SCOPES)
        checks.ok("token scopes", ", ".join(sorted(info.scopes)) or "none")
        if not info.has("api"):
            checks.warn(
                "api scope",
                "no api scope: install also publishes the CI templates and the rotation "
                "schedule, which need it",
                "use a token with the api scope, or run install with --skip-templates "
                "--skip-schedule",
            )
    except GitLabError as exc:
        checks.fail("token scopes", exc)
    group = _group(checks, gl, settings)
    if group is None:
        checks.skip("role", "needs the group")
        return
    try:
        user = gl.current_user()
        role = check_role(
            gl, group, user, need_role=OWNER, purpose="creating and managing a group runner"
        )
        checks.ok("role", f"{user[1]} is {role} of {group.full_path}")
    except GitLabError as exc:
        checks.fail("role", exc)


def _group(checks: _Checks, gl: GitLab, settings: Settings) -> Group | None:
    path = settings.gitlab.group
    if not path:
        checks.fail(
            "group",
            InvalidInput(
                "gitlab.group is not set",
                hint="pass --group FULL_PATH, or set [gitlab] group in bootstrap.toml",
            ),
        )
        return None
    try:
        group = gl.group(path)
    except (InvalidInput, GitLabError) as exc:
        checks.fail("group", exc)
        return None
    checks.ok("group", f"{group.full_path} (id {group.id})")
    return group


def _kubernetes(checks: _Checks, settings: Settings, kube_factory: Callable[..., Kube]) -> None:
    later = ("cluster", "namespace", "ImageCache CRD", "permissions", *_ECI_CHECKS)
    try:
        settings, kube = open_kube(settings, kube_factory)
    except InvalidInput as exc:
        checks.fail("kubeconfig", exc)
        for name in later:
            checks.skip(name, "needs a kubeconfig")
        return
    checks.ok("kubeconfig", f"context {kube.context_name}, server {without_userinfo(kube.host)}")
    try:
        checks.ok("cluster", f"Kubernetes {kube.version()}")
    except KubeError as exc:
        checks.fail("cluster", exc)
        for name in later[1:]:
            checks.skip(name, "needs a cluster that answers")
        return
    try:
        exists, _ = read_namespace(kube, settings.kubernetes.namespace)
        _namespace(checks, settings, exists)
    except KubeError as exc:
        checks.fail("namespace", exc)
    try:
        image_cache_ok = _image_cache(checks, kube, settings)
    except KubeError as exc:
        checks.fail("ImageCache CRD", exc)
        image_cache_ok = False
    try:
        _permissions(checks, kube, settings, image_cache_ok)
    except KubeError as exc:
        checks.fail("permissions", exc)
    if settings.profile == "eci":
        _eci(checks, kube, settings)
        if image_cache_ok:
            _image_cache_state(checks, kube, settings)


def _namespace(checks: _Checks, settings: Settings, exists: bool) -> None:
    ns = settings.kubernetes.namespace
    if exists:
        checks.ok("namespace", f"{ns} exists")
    elif settings.kubernetes.create_namespace:
        checks.ok("namespace", f"{ns} does not exist yet; install creates it")
    else:
        checks.fail(
            "namespace",
            KubeError(
                f"namespace {ns} does not exist and kubernetes.create_namespace is false",
                hint="create it, or set create_namespace = true",
            ),
        )


def _image_cache(checks: _Checks, kube: Kube, settings: Settings) -> bool:
    if not image_cache_wanted(settings):
        checks.ok("ImageCache CRD", f"not needed (profile {settings.profile}, or disabled)")
        return False
    served = image_cache_supported(kube, settings)
    if served:
        checks.ok("ImageCache CRD", "served (eci.alibabacloud.com/v1)")
    else:
        checks.warn(
            "ImageCache CRD",
            IMAGE_CACHE_MISSING,
            "install ACK's virtual-node component, or set [image_cache] enabled = false",
        )
    return served


def _permissions(checks: _Checks, kube: Kube, settings: Settings, image_cache_ok: bool) -> None:
    """SelfSubjectAccessReviews of every verb install needs, one line per kind it applies."""
    ns = settings.kubernetes.namespace
    rendered = render(settings, Credentials.placeholders(), image_cache_supported=image_cache_ok)
    wanted: dict[str, tuple[str, ...]] = {obj.kind: INSTALL_VERBS for obj in rendered.objects}
    wanted["Lease"] = LOCK_VERBS  # the namespace lock install and rotate take
    needed = [(verb, kind) for kind, verbs in wanted.items() for verb in verbs]
    allowed = {(verb, kind): ok for verb, kind, ok in access_review(kube, needed, ns)}
    for kind, verbs in wanted.items():
        k = KINDS[kind]
        refused = [verb for verb in verbs if not allowed[(verb, kind)]]
        name = f"permissions {kind}"
        where = f"in namespace {ns}" if k.namespaced else "cluster-wide"
        if not refused:
            checks.ok(name, f"may {', '.join(verbs)} {k.plural} {where}")
            continue
        role = f"a Role in namespace {ns}" if k.namespaced else "a ClusterRole"
        quoted = ", ".join(f'"{v}"' for v in refused)
        checks.fail(
            name,
            KubeError(
                f"may not {', '.join(refused)} {k.plural} {where}",
                hint=f'ask a cluster admin to add to {role}: apiGroups: ["{k.group}"], '
                f'resources: ["{k.plural}"], verbs: [{quoted}]',
                status=403,
            ),
        )


# --- what ECI trips over on a first deployment ------------------------------------------

_ECI_CHECKS = ("virtual nodes", "ECI events", "egress")
VIRTUAL_NODE_SELECTOR = "type=virtual-kubelet"
ARCH_LABEL = "kubernetes.io/arch"
EVENT_WINDOW = timedelta(hours=1)
# Messages of ECI's failed pod creations (virtual-kubelet events), and pulls that time out.
_QUOTA = re.compile(r"quota|exceeded? .*limit", re.IGNORECASE)
_STOCK = re.compile(r"no ?stock|out of stock|sold ?out|RecommendEmpty", re.IGNORECASE)
_PULL_TIMEOUT = re.compile(
    r"i/o timeout|dial tcp|TLS handshake timeout|context deadline exceeded|"
    r"network is unreachable",
    re.IGNORECASE,
)
_PULL_REASONS = ("Failed", "ErrImagePull", "ImagePullBackOff", "BackOff")


@dataclass(frozen=True)
class EventFindings:
    """Recent warning events sorted by what they mean for an ECI deployment."""

    quota: list[str] = field(default_factory=list)
    stock: list[str] = field(default_factory=list)
    pull_timeouts: list[str] = field(default_factory=list)


def classify_events(
    events: Iterable[dict[str, Any]], now: datetime, window: timedelta = EVENT_WINDOW
) -> EventFindings:
    """Quota, out-of-stock and image-pull-timeout warnings among events newer than ``window``.

    Each finding is ``"<object>: <message>"``, once per distinct message.
    """
    found = EventFindings()
    seen: set[tuple[str, str]] = set()
    for event in events:
        if event.get("type") != "Warning":
            continue
        when = event_time(event)
        if when is not None and now - when > window:
            continue
        message = " ".join(str(event.get("message", "")).split())
        involved = event.get("involvedObject") or {}
        text = f"{involved.get('kind', '?')}/{involved.get('name', '?')}: {message[:300]}"
        reason = str(event.get("reason", ""))
        if _QUOTA.search(message):
            bucket = found.quota
        elif _STOCK.search(message):
            bucket = found.stock
        elif reason in _PULL_REASONS and _PULL_TIMEOUT.search(message):
            bucket = found.pull_timeouts
        else:
            continue
        if (reason, message) not in seen:
            seen.add((reason, message))
            bucket.append(text)
    return found


def _eci(checks: _Checks, kube: Kube, settings: Settings) -> None:
    _virtual_nodes(checks, kube, settings)
    ns = settings.kubernetes.namespace
    try:
        events = kube.events(ns)
    except KubeError as exc:
        why = f"cannot list events in namespace {ns} ({exc.message})"
        checks.skip("ECI events", why)
        checks.skip("egress", f"{why}; egress is not visible to the Kubernetes API either")
        return
    found = classify_events(events, datetime.now(UTC))
    if found.quota or found.stock:
        checks.warn(
            "ECI events",
            f"ECI refused pods in namespace {ns} in the last hour: "
            + " | ".join(found.quota + found.stock),
            "quota: raise the ECI quota of the account (Quota Center) or lower "
            "runner.concurrent; out of stock: list several specs in eci.use_specs, or add "
            "vSwitches in other zones to the eci-profile",
        )
    else:
        checks.ok("ECI events", f"no quota or out-of-stock events in namespace {ns} (last hour)")
    if found.pull_timeouts:
        checks.warn(
            "egress",
            f"image pulls time out in namespace {ns}: " + " | ".join(found.pull_timeouts),
            "ECI pods reach the internet only through a NAT gateway of the VPC or an EIP: add "
            "a NAT gateway with SNAT entries for the pods' vSwitches, or set "
            "eci.with_eip = true",
        )
    elif settings.eci.with_eip:
        checks.ok("egress", "eci.with_eip: the manager and every job pod get an EIP")
    else:
        checks.skip(
            "egress",
            "not visible to the Kubernetes API: ECI pods reach the internet (the runner and "
            "helper images, gitlab.com) only through a NAT gateway of the VPC or an EIP "
            "(eci.with_eip); check the VPC has one. No image pull has timed out here in the "
            "last hour",
        )


def _virtual_nodes(checks: _Checks, kube: Kube, settings: Settings) -> None:
    try:
        nodes = kube.nodes(VIRTUAL_NODE_SELECTOR)
    except KubeError as exc:
        checks.skip(
            "virtual nodes",
            f"cannot list nodes ({exc.message}): the virtual nodes and their architecture "
            "are not checked",
        )
        return
    archs = sorted(
        {(n.get("metadata", {}).get("labels") or {}).get(ARCH_LABEL, "?") for n in nodes}
    )
    if not nodes:
        checks.warn(
            "virtual nodes",
            f"no node labelled {VIRTUAL_NODE_SELECTOR}: job pods will not run on ECI",
            "install ACK's virtual node component (ACK Serverless has it), or use "
            "profile = 'kubernetes'",
        )
        return
    if settings.runner.helper_arch == "arm64" and "arm64" not in archs:
        checks.fail(
            "virtual nodes",
            KubeError(
                f"runner.helper_arch is arm64 but the virtual nodes are {', '.join(archs)}: "
                "every job pod would stay Pending",
                hint="add Arm virtual nodes: enableLinuxArm64Node: true in the ConfigMap "
                "kube-system/eci-profile (a vSwitch in a zone with Arm instances), or set "
                "runner.helper_arch = 'x86_64'",
            ),
        )
        return
    checks.ok("virtual nodes", f"{len(nodes)} virtual node(s), architecture {', '.join(archs)}")


def _image_cache_state(checks: _Checks, kube: Kube, settings: Settings) -> None:
    """The ImageCache install made: ECI reports a failed snapshot only in its status."""
    name = image_cache_name(settings.kubernetes.namespace)
    try:
        live = kube.get("ImageCache", name)
    except KubeError as exc:
        checks.skip("ImageCache", f"cannot read ImageCache/{name} ({exc.message})")
        return
    if live is None:
        checks.ok("ImageCache", f"ImageCache/{name} does not exist yet; install creates it")
        return
    status = live.get("status") or {}
    phase = str(status.get("phase") or "unknown")
    images = len((live.get("spec") or {}).get("images") or [])
    if phase.lower() == "failed":
        reason = status.get("reason") or status.get("message") or "no reason given"
        checks.warn(
            "ImageCache",
            f"ImageCache/{name} failed ({reason}): job pods pull every image themselves",
            "kubectl describe imagecache " + name + "; a private image needs "
            "registry credentials, a public one egress (NAT gateway or EIP)",
        )
        return
    checks.ok("ImageCache", f"ImageCache/{name}: phase {phase}, {images} images")
