"""``bootstrap install``: create (or find) the group runner and deploy it, idempotently.

The sequence is ordered so that a failure at any step leaves a state the next run repairs:

1. Everything local is checked first: settings, ``GITLAB_TOKEN``, credential files.
2. Preflight, reads only: token scopes, group, Owner role; cluster reachable; ImageCache CRD;
   the live objects and the stored runner token.
3. Runner: the stored token verifies -> reuse; stored token dead -> reset by id; no Secret
   but our runner exists (marker in its maintenance note) -> reset by id, never a second
   runner; else create. A new token is written to the config Secret at once; if that first
   write fails after a create, the new runner is deleted again.
4. Apply every changed object by server-side apply, wave by wave, each wave in parallel.
5. Wait for the rollout (kubectl's semantics) and for the runner to come online.

``dry_run`` runs the same path with writes off: GitLab actions are only described and
Kubernetes applies are sent with ``dryRun=All``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bootstrap.config import Settings
from bootstrap.errors import GitLabError, KubeError, WaitTimeout
from bootstrap.gitlab import (
    ACCESS_NAMES,
    OWNER,
    SCOPE_CREATE,
    SCOPE_MANAGE,
    GitLab,
    NewToken,
    Runner,
    TokenInfo,
    redact_token,
)
from bootstrap.inputs import load_credentials
from bootstrap.kube import IMAGE_CACHE_GROUP_VERSION, Kube
from bootstrap.plan import Change, decide, diff, with_applied_hash
from bootstrap.render import KubeObject, Rendered, render
from bootstrap.render import names as n
from bootstrap.render.credentials import PLACEHOLDER_TOKEN, Credentials
from bootstrap.render.runner_config import config_token

ANNOTATION_RUNNER_ID = n.ANNOTATION_RUNNER_ID
ANNOTATION_EXPIRES = n.ANNOTATION_EXPIRES
PARALLELISM = 8


class Reporter(Protocol):
    """Where a workflow tells the user what it does (the CLI decides how to show it)."""

    def info(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def progress(self, message: str) -> None: ...


class QuietReporter:
    """A reporter that drops everything (library use, tests)."""

    def info(self, message: str) -> None:
        del message

    def warn(self, message: str) -> None:
        del message

    def progress(self, message: str) -> None:
        del message


RunnerActionName = Literal["create", "reuse", "reset"]


@dataclass
class RunnerPlan:
    """What happens to the GitLab runner."""

    action: RunnerActionName
    reason: str
    runner: Runner | None = None
    updates: dict[str, Any] = field(default_factory=dict)
    token: NewToken | None = None

    @property
    def runner_id(self) -> int | None:
        if self.token:
            return self.token.runner_id
        return self.runner.id if self.runner else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "reason": self.reason,
            "id": self.runner_id,
            "updates": sorted(self.updates),
            "token_expires_at": self.token.expires_at
            if self.token
            else (self.runner.token_expires_at if self.runner else None),
        }


@dataclass
class Stored:
    """What the config Secret tells about the runner (the token is never printed)."""

    token: str = ""
    runner_id: int | None = None
    expires_at: str | None = None

    def __repr__(self) -> str:
        shown = redact_token(self.token) if self.token else ""
        return f"Stored(runner_id={self.runner_id}, token={shown})"


@dataclass
class InstallResult:
    """The outcome (or, with dry_run, the plan) of an install."""

    dry_run: bool
    runner: RunnerPlan
    changes: list[Change]
    rollout: str = ""
    online: bool | None = None
    warnings: list[str] = field(default_factory=list)
    requests: dict[str, dict[str, int]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "unchanged": 0}
        for change in self.changes:
            counts[change.action] = counts.get(change.action, 0) + 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "runner": self.runner.as_dict(),
            "objects": [c.as_dict() for c in self.changes],
            "summary": self.counts(),
            "rollout": self.rollout,
            "online": self.online,
            "warnings": self.warnings,
            "requests": self.requests,
        }


@dataclass
class Context:
    """The connections and facts a workflow shares."""

    settings: Settings
    gitlab: GitLab
    kube: Kube
    group_id: int
    reporter: Reporter
    token_info: TokenInfo | None = None
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.reporter.warn(message)


# --- connecting -----------------------------------------------------------------------------


def connect(
    settings: Settings,
    token: str,
    *,
    reporter: Reporter,
    need_scopes: tuple[str, ...] = (SCOPE_CREATE, SCOPE_MANAGE),
    require_owner: bool = True,
    gitlab_factory: Callable[..., GitLab] = GitLab,
    kube_factory: Callable[..., Kube] = Kube,
) -> Context:
    """Open both connections and run the GitLab preflight (scopes, group, Owner role)."""
    kube = kube_factory(
        kubeconfig=settings.kubernetes.kubeconfig or None,
        context=settings.kubernetes.context or None,
    )
    if not settings.kubernetes.cluster_name:
        # The cluster's name in the runner marker and system id: the context, as kubectl shows.
        kubernetes = settings.kubernetes.model_copy(update={"cluster_name": kube.context_name})
        settings = settings.model_copy(update={"kubernetes": kubernetes})
    gl = gitlab_factory(settings.gitlab.url, token, ca_file=settings.gitlab.ca_file or None)
    info = gl.token_info()
    missing = [scope for scope in need_scopes if not info.has(scope)]
    if missing:
        raise GitLabError(
            f"GITLAB_TOKEN lacks the {' and '.join(missing)} "
            f"scope{'s' if len(missing) > 1 else ''}",
            hint="create a token with the scopes " + ", ".join(need_scopes),
        )
    user_id, username, is_admin = gl.current_user()
    group = gl.group(settings.gitlab.group)
    if require_owner and not is_admin:
        level = gl.access_level(group.id, user_id)
        if level < OWNER:
            role = ACCESS_NAMES.get(level, "not a member")
            raise GitLabError(
                f"{username} is {role if level else 'not a member'} of {group.full_path}; "
                "creating and managing a group runner needs the Owner role",
                hint=f"use a token of an Owner of {group.full_path}",
            )
    return Context(
        settings=settings,
        gitlab=gl,
        kube=kube,
        group_id=group.id,
        reporter=reporter,
        token_info=info,
    )


# --- reading state --------------------------------------------------------------------------


def secret_text(secret: dict[str, Any], key: str) -> str:
    """One value of a Secret's data, decoded ('' when missing or not text)."""
    data = (secret.get("data") or {}).get(key)
    if not data:
        return ""
    try:
        return base64.b64decode(data).decode()
    except (ValueError, UnicodeDecodeError):
        return ""


def read_stored(secret: dict[str, Any] | None) -> Stored:
    """The runner token and id kept in the config Secret."""
    if not secret:
        return Stored()
    annotations = secret.get("metadata", {}).get("annotations") or {}
    raw_id = annotations.get(ANNOTATION_RUNNER_ID, "")
    token = config_token(secret_text(secret, "config.toml"))
    return Stored(
        token="" if token == PLACEHOLDER_TOKEN else token,
        runner_id=int(raw_id) if raw_id.isdigit() else None,
        expires_at=annotations.get(ANNOTATION_EXPIRES) or None,
    )


def runner_attributes(settings: Settings) -> dict[str, Any]:
    """The runner's attributes in GitLab, as this tool sets them."""
    note = settings.gitlab.maintenance_note.strip()
    marker = n.runner_marker(settings)
    attributes: dict[str, Any] = {
        "description": n.runner_description(settings),
        "tag_list": sorted(settings.gitlab.tags),
        "run_untagged": settings.gitlab.run_untagged,
        "locked": settings.gitlab.locked,
        "access_level": settings.gitlab.access_level,
        "paused": settings.gitlab.paused,
        "maintenance_note": f"{note}\n{marker}" if note else marker,
    }
    if settings.gitlab.maximum_timeout:
        attributes["maximum_timeout"] = settings.gitlab.maximum_timeout
    return attributes


def runner_drift(runner: Runner, wanted: dict[str, Any]) -> dict[str, Any]:
    """The attributes whose live value differs from what we want."""
    live = {
        "description": runner.description,
        "tag_list": sorted(runner.tag_list),
        "run_untagged": runner.run_untagged,
        "locked": runner.locked,
        "access_level": runner.access_level,
        "paused": runner.paused,
        "maintenance_note": runner.maintenance_note,
        "maximum_timeout": runner.maximum_timeout,
    }
    return {k: v for k, v in wanted.items() if live.get(k) != v}


def find_marked_runner(ctx: Context) -> Runner | None:
    """Our runner among the group's, by the marker in its maintenance note."""
    marker = n.runner_marker(ctx.settings)
    for listed in ctx.gitlab.group_runners(ctx.group_id):
        runner = ctx.gitlab.runner(listed.id)
        if runner and marker in runner.maintenance_note:
            return runner
    return None


def plan_runner(ctx: Context, stored: Stored) -> RunnerPlan:
    """Decide create / reuse / reset, with reads only."""
    wanted = runner_attributes(ctx.settings)
    system_id = n.system_id(ctx.settings)
    if stored.runner_id is not None:
        runner = ctx.gitlab.runner(stored.runner_id)
        if runner is not None:
            drift = runner_drift(runner, wanted)
            if stored.token and ctx.gitlab.verify_token(stored.token, system_id):
                return RunnerPlan("reuse", "the stored token is valid", runner, drift)
            return RunnerPlan("reset", "the stored token no longer verifies", runner, drift)
        ctx.warn(f"runner #{stored.runner_id} recorded in the cluster is gone from GitLab")
    runner = find_marked_runner(ctx)
    if runner is not None:
        return RunnerPlan(
            "reset",
            "no usable token in the cluster, but this runner exists in GitLab",
            runner,
            runner_drift(runner, wanted),
        )
    return RunnerPlan("create", "no runner for this cluster and namespace yet")


def execute_runner(ctx: Context, plan: RunnerPlan) -> NewToken | None:
    """Create or reset as planned; returns the new token (None when reused)."""
    gl = ctx.gitlab
    if plan.action == "create":
        attributes = runner_attributes(ctx.settings)
        plan.token = gl.create_runner(ctx.group_id, attributes)
        ctx.reporter.info(f"Created runner #{plan.token.runner_id} in {ctx.settings.gitlab.group}")
        return plan.token
    assert plan.runner is not None
    if plan.updates:
        plan.runner = gl.update_runner(plan.runner.id, plan.updates)
        ctx.reporter.info(f"Updated runner #{plan.runner.id}: {', '.join(sorted(plan.updates))}")
    if plan.action == "reset":
        plan.token = gl.reset_token(plan.runner.id)
        ctx.reporter.info(f"Reset the token of runner #{plan.runner.id} ({plan.reason})")
        return plan.token
    return None


# --- the workflow ---------------------------------------------------------------------------


def _parallel(func: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    if len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(PARALLELISM, len(items))) as pool:
        return list(pool.map(func, items))


def desired_objects(
    rendered: Rendered, runner_id: int | None, expires_at: str | None
) -> list[KubeObject]:
    """The rendered objects, stamped with their hash and (config Secret) the runner's id."""
    stamped = []
    for obj in rendered.objects:
        body = obj.body
        if obj.kind == "Secret" and obj.name == n.CONFIG_SECRET:
            body = {**body, "metadata": {**body["metadata"]}}
            annotations = {ANNOTATION_RUNNER_ID: str(runner_id or "")}
            if expires_at:
                annotations[ANNOTATION_EXPIRES] = expires_at
            body["metadata"]["annotations"] = annotations
        stamped.append(KubeObject(body=with_applied_hash(body), wave=obj.wave))
    return stamped


def read_live(
    ctx: Context, objects: list[KubeObject], namespace_exists: bool
) -> dict[str, dict[str, Any] | None]:
    """The live version of each object (None when missing), read in parallel."""

    def read(obj: KubeObject) -> tuple[str, dict[str, Any] | None]:
        if obj.namespace and not namespace_exists:
            return obj.ref, None
        return obj.ref, ctx.kube.get(obj.kind, obj.name, obj.namespace)

    return dict(_parallel(read, objects))


def check_permissions(ctx: Context, changes: list[Change]) -> None:
    """SelfSubjectAccessReview for each verb the changes need; all refusals at once."""
    needed = sorted(
        {("patch", c.obj.kind) for c in changes if c.action != "unchanged"}
        | {("create", c.obj.kind) for c in changes if c.action == "create"}
    )
    namespace = ctx.settings.kubernetes.namespace
    allowed = _parallel(lambda pair: ctx.kube.can(pair[0], pair[1], namespace), needed)
    refused = [f"{verb} {kind}" for (verb, kind), ok in zip(needed, allowed, strict=True) if not ok]
    if refused:
        raise KubeError(
            f"the current Kubernetes user may not: {', '.join(refused)} (namespace {namespace})",
            hint="ask a cluster admin for these permissions; `bootstrap doctor` lists them all",
            status=403,
        )


def install(
    settings: Settings,
    *,
    token: str,
    environ: Mapping[str, str],
    dry_run: bool = False,
    wait: bool = True,
    timeout: float = 600.0,
    reporter: Reporter | None = None,
    gitlab_factory: Callable[..., GitLab] = GitLab,
    kube_factory: Callable[..., Kube] = Kube,
) -> InstallResult:
    """Install or converge the runner for ``settings.gitlab.group``.

    Args:
        settings: validated settings.
        token: the GitLab token (``GITLAB_TOKEN``).
        environ: where credential env vars named in the settings are read.
        dry_run: read only; describe GitLab actions, apply with ``dryRun=All``.
        wait: wait for the rollout and for the runner to come online.
        timeout: seconds for the whole run, waits included (exit 5 past it).
        reporter: progress output.

    Raises:
        InvalidInput, GitLabError, KubeError, WaitTimeout: mapped to exit codes by the CLI.
    """
    report = reporter or QuietReporter()
    deadline = time.monotonic() + timeout
    # Local inputs first: a missing key file must fail before any network call.
    local = load_credentials(settings, environ, PLACEHOLDER_TOKEN)
    ctx = connect(
        settings, token, reporter=report, gitlab_factory=gitlab_factory, kube_factory=kube_factory
    )
    settings = ctx.settings
    kube, ns = ctx.kube, settings.kubernetes.namespace

    namespace_exists = True
    try:
        namespace_exists = kube.get("Namespace", ns) is not None
    except KubeError as exc:
        if exc.status != 403:
            raise
    if not namespace_exists and not settings.kubernetes.create_namespace:
        raise KubeError(
            f"namespace {ns} does not exist and kubernetes.create_namespace is false",
            hint="create it, or set create_namespace = true",
        )
    image_cache_ok = False
    if settings.profile == "eci" and settings.image_cache.enabled:
        image_cache_ok = kube.serves(IMAGE_CACHE_GROUP_VERSION, "imagecaches")
        if not image_cache_ok:
            ctx.warn(
                "the cluster does not serve ImageCache (eci.alibabacloud.com/v1): skipping the "
                "image cache (install ACK's virtual-node component to get it)"
            )

    secret = kube.get("Secret", n.CONFIG_SECRET, ns) if namespace_exists else None
    stored = read_stored(secret)
    runner_plan = plan_runner(ctx, stored)

    # Render with the token we will end up with: the stored one when reused. A new token is
    # only known after the GitLab write, so the plan uses the stored one or a placeholder.
    plan_token = (
        stored.token if runner_plan.action == "reuse" else (stored.token or PLACEHOLDER_TOKEN)
    )
    expires = (
        runner_plan.runner.token_expires_at if runner_plan.runner else None
    ) or stored.expires_at
    objects = _render_objects(
        settings, local, plan_token, runner_plan.runner_id, expires, image_cache_ok
    )
    live = read_live(ctx, objects, namespace_exists)
    changes = [_change(obj, live.get(obj.ref), runner_plan) for obj in objects]
    check_permissions(ctx, changes)
    result = InstallResult(
        dry_run=dry_run, runner=runner_plan, changes=changes, warnings=ctx.warnings
    )

    if dry_run:
        _apply(ctx, changes, dry_run=True, namespace_exists=namespace_exists)
        result.requests = requests_made(ctx)
        return result

    # The namespace first, so the token can be stored right after GitLab issues it.
    namespace_changes = [c for c in changes if c.obj.kind == "Namespace"]
    _apply(ctx, namespace_changes, dry_run=False, namespace_exists=True)

    new_token = execute_runner(ctx, runner_plan)
    if new_token is not None:
        objects = _render_objects(
            settings,
            local,
            new_token.token,
            new_token.runner_id,
            new_token.expires_at,
            image_cache_ok,
        )
        refreshed = {obj.ref: obj for obj in objects}
        changes = [
            Change(refreshed[c.ref], decide(refreshed[c.ref].body, live.get(c.ref)), c.diff)
            if c.obj.kind != "Namespace"
            else c
            for c in changes
        ]
        result.changes = changes
        config = next(
            c for c in changes if c.obj.kind == "Secret" and c.obj.name == n.CONFIG_SECRET
        )
        try:
            kube.apply(config.obj.body)
        except KubeError:
            if runner_plan.action == "create":
                # Nothing holds the new token: remove the runner so no orphan is left behind.
                ctx.gitlab.delete_runner(new_token.runner_id)
                report.warn(
                    f"Deleted runner #{new_token.runner_id} again: its token could not be stored"
                )
            raise
        report.info(f"Stored the runner token in Secret {n.CONFIG_SECRET}")
        done = {n.CONFIG_SECRET}
    else:
        done = set()
    rest = [
        c
        for c in changes
        if c.obj.kind != "Namespace" and not (c.obj.kind == "Secret" and c.obj.name in done)
    ]
    _apply(ctx, rest, dry_run=False, namespace_exists=True)

    if wait:
        result.rollout = wait_rollout(ctx, deadline)
        runner_id = runner_plan.runner_id
        if runner_id is not None:
            result.online = wait_online(ctx, runner_id, deadline)
    result.requests = requests_made(ctx)
    return result


def _render_objects(
    settings: Settings,
    local: Credentials,
    token: str,
    runner_id: int | None,
    expires_at: str | None,
    image_cache_ok: bool,
) -> list[KubeObject]:
    creds = Credentials(**{**local.__dict__, "runner_token": token})
    rendered = render(settings, creds, image_cache_supported=image_cache_ok)
    return desired_objects(rendered, runner_id, expires_at)


def _change(obj: KubeObject, live: dict[str, Any] | None, runner_plan: RunnerPlan) -> Change:
    action = decide(obj.body, live)
    if obj.kind == "Secret" and obj.name == n.CONFIG_SECRET and runner_plan.action != "reuse":
        action = "create" if live is None else "update"
    return Change(obj, action, diff(obj.body, live) if action == "update" else "")


def _apply(ctx: Context, changes: list[Change], *, dry_run: bool, namespace_exists: bool) -> None:
    by_wave: dict[int, list[Change]] = {}
    for change in changes:
        if change.action in ("create", "update"):
            by_wave.setdefault(change.obj.wave, []).append(change)
    for wave in sorted(by_wave):

        def apply(change: Change) -> None:
            if dry_run and change.obj.namespace and not namespace_exists:
                return  # the namespace is not there to validate against; rendered locally only
            ctx.kube.apply(change.obj.body, dry_run=dry_run)
            if not dry_run:
                verb = "Created" if change.action == "create" else "Updated"
                ctx.reporter.info(f"{verb} {change.ref}")

        _parallel(apply, by_wave[wave])


def wait_rollout(ctx: Context, deadline: float) -> str:
    ns = ctx.settings.kubernetes.namespace
    verdict = ctx.kube.wait_rollout(
        n.DEPLOYMENT, ns, deadline=deadline, on_progress=ctx.reporter.progress
    )
    if verdict.failed:
        raise WaitTimeout(
            f"rollout of deployment/{n.DEPLOYMENT} failed: {verdict.message}",
            hint=f"kubectl -n {ns} describe deployment {n.DEPLOYMENT}; kubectl -n {ns} get events",
        )
    if not verdict.done:
        raise WaitTimeout(
            f"timed out waiting for the rollout: {verdict.message}",
            hint=f"raise --timeout, or check: kubectl -n {ns} get pods",
        )
    return verdict.message


def wait_online(ctx: Context, runner_id: int, deadline: float) -> bool:
    delay = 1.0
    while True:
        runner = ctx.gitlab.runner(runner_id)
        status = runner.status if runner else "missing"
        if status == "online":
            ctx.reporter.info(f"Runner #{runner_id} is online")
            return True
        ctx.reporter.progress(f"Waiting for runner #{runner_id} to come online (status: {status})")
        if time.monotonic() >= deadline:
            raise WaitTimeout(
                f"timed out waiting for runner #{runner_id} to come online (status: {status})",
                hint=f"kubectl -n {ctx.settings.kubernetes.namespace} logs "
                f"deployment/{n.DEPLOYMENT}",
            )
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 10.0)


def requests_made(ctx: Context) -> dict[str, dict[str, int]]:
    return {
        "gitlab": {"reads": ctx.gitlab.calls.reads, "writes": ctx.gitlab.calls.writes},
        "kubernetes": {"reads": ctx.kube.calls.reads, "writes": ctx.kube.calls.writes},
    }
