"""``bootstrap doctor``: install's preflight checks on their own, each with its fix.

Every check runs even when another failed; a check that needs an earlier answer (the GitLab
connection, the group, the cluster) is skipped and says why. So one run lists everything to
fix before ``install``. Nothing is written: the only POSTs are SelfSubjectAccessReviews,
which change nothing, and ``POST /runners/verify`` is never called.

The exit code is that of the first failed check, in the order shown: 2 invalid input
(``GITLAB_TOKEN``, credential files, group, kubeconfig), 3 GitLab, 4 Kubernetes. Warnings
(no ImageCache CRD) do not fail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bootstrap.config import Settings
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
from bootstrap.render import render
from bootstrap.render.credentials import PLACEHOLDER_TOKEN, Credentials
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


def doctor(
    settings: Settings,
    *,
    environ: Mapping[str, str],
    gitlab_factory: Callable[..., GitLab] = GitLab,
    kube_factory: Callable[..., Kube] = Kube,
) -> DoctorResult:
    """Run every preflight check of ``install``; never raises for a failed check.

    Args:
        settings: validated settings (the group may be missing: that is a failed check).
        environ: ``GITLAB_TOKEN`` and the credential variables the settings name.
    """
    checks = _Checks()
    _local(checks, settings, environ)
    _gitlab(checks, settings, environ, gitlab_factory)
    _kubernetes(checks, settings, kube_factory)
    return checks.result


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
    url = settings.gitlab.url
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
    later = ("cluster", "namespace", "ImageCache CRD", "permissions")
    try:
        settings, kube = open_kube(settings, kube_factory)
    except InvalidInput as exc:
        checks.fail("kubeconfig", exc)
        for name in later:
            checks.skip(name, "needs a kubeconfig")
        return
    checks.ok("kubeconfig", f"context {kube.context_name}, server {kube.host}")
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
