"""What the workflows share: the connections, and reading what GitLab and the cluster hold.

``install``, ``rotate``, ``status``, ``uninstall`` and ``doctor`` open the same connections, run
the same GitLab preflight, read the runner id and token kept in the config Secret, find our
runner in GitLab by the marker in its maintenance note, and render the objects ``install``
applies, stamped the same way. Each workflow module keeps only its own sequence.
"""

from __future__ import annotations

import base64
import dataclasses
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bootstrap.config import Settings
from bootstrap.errors import GitLabError, KubeError, WaitTimeout
from bootstrap.gitlab import (
    ACCESS_NAMES,
    OWNER,
    SCOPE_CREATE,
    SCOPE_MANAGE,
    GitLab,
    Group,
    Manager,
    Runner,
    TokenInfo,
    parse_time,
    redact_token,
)
from bootstrap.kube import IMAGE_CACHE_GROUP_VERSION, Kube, RolloutStatus
from bootstrap.plan import with_applied_hash
from bootstrap.readiness import not_ready_reasons
from bootstrap.render import KubeObject, Rendered, render
from bootstrap.render import names as n
from bootstrap.render.credentials import (
    NO_SECRET,
    PLACEHOLDER_OPS_TOKEN,
    PLACEHOLDER_TOKEN,
    Credentials,
)
from bootstrap.render.runner_config import GROUP_ENTRY, OPS_ENTRY, config_token
from bootstrap.report import Reporter
from bootstrap.secret import Secret

PARALLELISM = 8
IMAGE_CACHE_MISSING = (
    "the cluster does not serve ImageCache (eci.alibabacloud.com/v1): skipping the image cache "
    "(install ACK's virtual-node component to get it)"
)


@dataclass
class Stored:
    """What the config Secret tells about the runner (the token is never printed)."""

    token: Secret = NO_SECRET
    runner_id: int | None = None
    expires_at: str | None = None

    def __repr__(self) -> str:
        shown = redact_token(self.token) if self.token else ""
        return f"Stored(runner_id={self.runner_id}, token={shown})"


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
    #: The token user's role in the group ("Owner", "Maintainer", "administrator"; "" when
    #: the workflow checked no role).
    role: str = ""

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            self.reporter.warn(message)

    @property
    def sees_notes(self) -> bool:
        """Whether GitLab shows runners' maintenance notes to this user: only to who may
        update the runner (``RunnerDetails``: ``can?(:update_runner)``), i.e. the group's
        Owners and admins. Unknown roles count as Owners (their notes read as empty)."""
        return self.is_owner

    @property
    def is_owner(self) -> bool:
        """The token's user is the group's Owner or an admin (an unchecked role counts as
        one): who may update the group's runners and list its access tokens."""
        return self.role in ("", "Owner", "administrator")


# --- connecting -----------------------------------------------------------------------------


def open_kube(
    settings: Settings, kube_factory: Callable[..., Kube] = Kube
) -> tuple[Settings, Kube]:
    """The cluster connection, and the settings with the cluster's name filled in."""
    kube = kube_factory(
        kubeconfig=settings.kubernetes.kubeconfig or None,
        context=settings.kubernetes.context or None,
        timeout=settings.kubernetes.request_timeout,
        origins={
            "kubeconfig": settings.origin("kubernetes.kubeconfig"),
            "context": settings.origin("kubernetes.context"),
        },
    )
    if not settings.kubernetes.cluster_name:
        # The cluster's name in the runner marker and system id: the context, as kubectl shows.
        kubernetes = settings.kubernetes.model_copy(update={"cluster_name": kube.context_name})
        settings = settings.model_copy(update={"kubernetes": kubernetes})
    return settings, kube


def open_gitlab(
    settings: Settings, token: Secret, gitlab_factory: Callable[..., GitLab] = GitLab
) -> GitLab:
    """The GitLab connection the settings describe."""
    return gitlab_factory(
        settings.gitlab.url,
        token,
        ca_file=settings.gitlab.ca_file or None,
        timeout=settings.gitlab.request_timeout,
    )


def check_scopes(gl: GitLab, need_scopes: tuple[str, ...]) -> TokenInfo:
    """The token's scopes; GitLabError naming every missing one."""
    info = gl.token_info()
    missing = [scope for scope in need_scopes if not info.has(scope)]
    if missing:
        raise GitLabError(
            f"GITLAB_TOKEN lacks the {' and '.join(missing)} "
            f"scope{'s' if len(missing) > 1 else ''}",
            hint="create a token with the scopes " + ", ".join(need_scopes),
        )
    return info


def check_role(
    gl: GitLab, group: Group, user: tuple[int, str, bool], *, need_role: int, purpose: str
) -> str:
    """The user's role in the group (admins pass); GitLabError when it is too low.

    Args:
        user: ``gl.current_user()``.
    """
    user_id, username, is_admin = user
    if is_admin:
        return "administrator"
    level = gl.access_level(group.id, user_id)
    if level < need_role:
        role = ACCESS_NAMES.get(level, "not a member")
        wanted = ACCESS_NAMES[need_role]
        who = "an Owner" if need_role == OWNER else f"a {wanted} or Owner"
        raise GitLabError(
            f"{username} is {role if level else 'not a member'} of {group.full_path}; "
            f"{purpose} needs the {wanted} role",
            hint=f"use a token of {who} of {group.full_path}",
        )
    return ACCESS_NAMES.get(level, str(level))


def connect(
    settings: Settings,
    token: Secret,
    *,
    reporter: Reporter,
    need_scopes: tuple[str, ...] = (SCOPE_CREATE, SCOPE_MANAGE),
    need_role: int | None = OWNER,
    purpose: str = "creating and managing a group runner",
    gitlab_factory: Callable[..., GitLab] = GitLab,
    kube_factory: Callable[..., Kube] = Kube,
) -> Context:
    """Open both connections and run the GitLab preflight (scopes, group, role).

    Args:
        need_scopes: token scopes the workflow needs (``api`` counts for all).
        need_role: the least role in the group (``OWNER``; reading runners needs
            ``MAINTAINER``); None checks no role.
        purpose: what the role is needed for, in the error message.
    """
    settings, kube = open_kube(settings, kube_factory)
    gl = open_gitlab(settings, token, gitlab_factory)
    # Three independent reads at once: one round trip instead of three. Their errors are
    # raised in the order a person fixes them: the token first, then the group.
    with ThreadPoolExecutor(max_workers=3) as pool:
        scopes = pool.submit(check_scopes, gl, need_scopes)
        who = pool.submit(gl.current_user)
        where = pool.submit(gl.group, settings.gitlab.group)
        info, user, group = scopes.result(), who.result(), where.result()
    role = ""
    if need_role is not None:
        role = check_role(gl, group, user, need_role=need_role, purpose=purpose)
    return Context(
        settings=settings,
        gitlab=gl,
        kube=kube,
        group_id=group.id,
        reporter=reporter,
        token_info=info,
        role=role,
    )


def parallel(func: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """``map`` over a thread pool (requests are round trips: waiting is the cost)."""
    if len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(PARALLELISM, len(items))) as pool:
        return list(pool.map(func, items))


def requests_made(ctx: Context) -> dict[str, dict[str, int]]:
    """Request counts of both connections, for ``--output json``."""
    return {
        "gitlab": ctx.gitlab.calls.as_dict(),
        "kubernetes": ctx.kube.calls.as_dict(),
    }


# --- the runner in GitLab -------------------------------------------------------------------


def secret_text(secret: dict[str, Any], key: str) -> str:
    """One value of a Secret's data, decoded ('' when missing or not text)."""
    data = (secret.get("data") or {}).get(key)
    if not data:
        return ""
    try:
        return base64.b64decode(data).decode()
    except (ValueError, UnicodeDecodeError):
        return ""


#: Seconds a rotation job may run on the ops runner (GitLab's least is 600).
OPS_JOB_TIMEOUT = 3600

#: The config Secret's annotations of each config.toml entry: (runner id, token expiry).
ENTRY_ANNOTATIONS = {
    GROUP_ENTRY: (n.ANNOTATION_RUNNER_ID, n.ANNOTATION_EXPIRES),
    OPS_ENTRY: (n.ANNOTATION_OPS_RUNNER_ID, n.ANNOTATION_OPS_EXPIRES),
}


def read_stored(secret: dict[str, Any] | None, entry: int = GROUP_ENTRY) -> Stored:
    """The token and runner id of one config.toml entry kept in the config Secret (the group
    runner's by default; ``OPS_ENTRY``: the ops project's rotation runner)."""
    if not secret:
        return Stored()
    annotations = secret.get("metadata", {}).get("annotations") or {}
    id_key, expires_key = ENTRY_ANNOTATIONS[entry]
    raw_id = annotations.get(id_key, "")
    token = config_token(secret_text(secret, "config.toml"), entry)
    return Stored(
        token=NO_SECRET if token.reveal() in (PLACEHOLDER_TOKEN, PLACEHOLDER_OPS_TOKEN) else token,
        runner_id=int(raw_id) if raw_id.isdigit() else None,
        expires_at=annotations.get(expires_key) or None,
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


def ops_runner_attributes(settings: Settings) -> dict[str, Any]:
    """The ops project's rotation runner: locked to the project, jobs of protected refs only
    (the schedule runs on the protected default branch), the rotation job's tag only."""
    return {
        "description": n.ops_runner_description(settings),
        "tag_list": [n.OPS_RUNNER_TAG],
        "run_untagged": False,
        "locked": True,
        "access_level": "ref_protected",
        "paused": False,
        "maintenance_note": n.ops_runner_marker(settings),
        "maximum_timeout": OPS_JOB_TIMEOUT,
    }


def find_ops_runner(ctx: Context, project_id: int) -> Runner | None:
    """The ops project's rotation runner, by the marker in its maintenance note (a
    Maintainer of the project sees notes of its runners)."""
    return next(_ops_runners(ctx, project_id), None)


def marked_ops_runners(ctx: Context, project_id: int) -> list[Runner]:
    """Every runner of the ops project carrying the ops runner's marker: more than one is a
    duplicate (two installs that each created one)."""
    return list(_ops_runners(ctx, project_id))


def _ops_runners(ctx: Context, project_id: int) -> Iterator[Runner]:
    marker = n.ops_runner_marker(ctx.settings)
    for listed in ctx.gitlab.project_runners(project_id):
        runner = ctx.gitlab.runner(listed.id)
        if runner and marker in runner.maintenance_note:
            yield runner


def live_attributes(runner: Runner) -> dict[str, Any]:
    """The runner's attributes in GitLab now, under the names :func:`runner_attributes` uses."""
    return {
        "description": runner.description,
        "tag_list": sorted(runner.tag_list),
        "run_untagged": runner.run_untagged,
        "locked": runner.locked,
        "access_level": runner.access_level,
        "paused": runner.paused,
        "maintenance_note": runner.maintenance_note,
        "maximum_timeout": runner.maximum_timeout,
    }


def runner_drift(runner: Runner, wanted: dict[str, Any]) -> dict[str, Any]:
    """The attributes whose live value differs from what we want."""
    live = live_attributes(runner)
    return {k: v for k, v in wanted.items() if live.get(k) != v}


def find_marked_runner(ctx: Context) -> Runner | None:
    """Our runner among the group's, by the marker in its maintenance note.

    GitLab lists the runners of the group's ancestors too; one the user may not read there
    (403 "No access granted") is skipped. A user who may not see maintenance notes (not an
    Owner) finds it by description and by the runner manager with our system id instead.
    """
    marker = n.runner_marker(ctx.settings)
    readable = []
    for listed in ctx.gitlab.group_runners(ctx.group_id):
        try:
            runner = ctx.gitlab.runner(listed.id)
        except GitLabError as exc:
            if exc.status != 403:
                raise
            continue
        if runner and marker in runner.maintenance_note:
            return runner
        if runner:
            readable.append(runner)
    if ctx.sees_notes:
        return None
    described = [r for r in readable if r.description == n.runner_description(ctx.settings)]
    system_id = n.system_id(ctx.settings)
    for runner in described or readable:
        managers = ctx.gitlab.runner_managers(runner.id) or []
        if any(m.system_id == system_id for m in managers):
            return runner
    return described[0] if len(described) == 1 else None


def marked_runners(ctx: Context, *, every: bool = False) -> list[Runner]:
    """Every runner of the group carrying our marker: more than one is a duplicate (two runs
    that each created one). Empty when GitLab hides maintenance notes from this user.

    Only runners listed with our description are read (the marker goes with it), unless
    ``every`` (uninstall: one whose description was changed is ours too). A runner of an
    ancestor group the user may not read (403) is skipped, as by :func:`find_marked_runner`.
    """
    if not ctx.sees_notes:
        return []
    marker = n.runner_marker(ctx.settings)
    description = n.runner_description(ctx.settings)
    listed = [
        r.id
        for r in ctx.gitlab.group_runners(ctx.group_id)
        if every or r.description == description
    ]

    def read(runner_id: int) -> Runner | None:
        try:
            return ctx.gitlab.runner(runner_id)
        except GitLabError as exc:
            if exc.status != 403:
                raise
            return None

    found = parallel(read, listed)
    return [r for r in found if r is not None and marker in r.maintenance_note]


def note_blind_drift(ctx: Context, wanted: dict[str, Any]) -> dict[str, Any]:
    """``wanted`` without the maintenance note when GitLab hides notes from this user."""
    if ctx.sees_notes:
        return wanted
    return {k: v for k, v in wanted.items() if k != "maintenance_note"}


@dataclass(frozen=True)
class TokenState:
    """What reading GitLab tells about the stored runner token, without using it.

    ``POST /runners/verify`` would tell more, but GitLab counts it as a contact of the
    runner (and creates a runner manager): a dead runner would look online for two hours.
    So the token is judged by its expiry: the one recorded in the Secret when the token was
    issued, and the one GitLab reports now (GraphQL). When both are known and differ, the
    token was reset elsewhere and the stored one is dead.
    """

    expires_at: str | None
    dead: str = ""  # why the stored token is known to be dead ("" when not known dead)
    #: Whether GitLab's expiry confirmed the stored token as the current one.
    confirmed: bool = False

    @property
    def verdict(self) -> str:
        """Why the stored token is kept, in words (when it is not dead)."""
        if self.confirmed:
            return "the stored token is the runner's current one (its expiry matches GitLab's)"
        return (
            "no sign that the stored token is dead (tokens without an expiry cannot be "
            "checked without using them)"
        )


_SECOND = timedelta(seconds=1)


def token_state(ctx: Context, runner_id: int, stored: Stored, now: datetime) -> TokenState:
    """Judge the stored token by reading only (see :class:`TokenState`)."""
    recorded = parse_time(stored.expires_at)
    expiry = ctx.gitlab.token_expiry(runner_id)
    current = parse_time(expiry.expires_at) if expiry.known else recorded
    # GraphQL renders times in whole seconds (Types::TimeType: iso8601), REST in ms.
    same = current is not None and recorded is not None and abs(current - recorded) < _SECOND
    shown = stored.expires_at if same or not expiry.known else expiry.expires_at
    if not stored.token:
        return TokenState(shown, "there is no token in the Secret")
    if expiry.known and recorded is not None and not same:
        return TokenState(
            shown,
            f"the token was reset elsewhere (GitLab says it expires {expiry.expires_at or 'never'}"
            f", the Secret {stored.expires_at})",
        )
    if current is not None and current <= now:
        return TokenState(shown, f"the token expired at {shown}")
    return TokenState(shown, confirmed=same)


def with_expiry(runner: Runner, expires_at: str | None) -> Runner:
    """The runner with the token expiry we know (GET /runners/:id never has it)."""
    return dataclasses.replace(runner, token_expires_at=expires_at)


@dataclass(frozen=True)
class Contact:
    """The last contact of our runner process with GitLab."""

    status: str
    contacted_at: str | None
    system_id: str
    by_manager: bool  # False: GitLab lists no managers, the runner's own contact is used


def our_contact(ctx: Context, runner: Runner, system_id: str) -> Contact:
    """The status and last contact of the runner manager with our system id.

    Every pod of the Deployment runs with that system id, so its manager's contact is our
    pods' contact, whatever else used the token (a verify, another process). An older GitLab
    without ``GET /runners/:id/managers`` falls back to the runner's own contact.
    """
    managers: list[Manager] | None = ctx.gitlab.runner_managers(runner.id)
    if managers is None:
        return Contact(runner.status, runner.contacted_at, system_id, by_manager=False)
    ours = next((m for m in managers if m.system_id == system_id), None)
    if ours is None:
        return Contact("never_contacted", None, system_id, by_manager=True)
    return Contact(ours.status, ours.contacted_at, system_id, by_manager=True)


# --- the objects in the cluster -------------------------------------------------------------


def managed_selector(settings: Settings) -> str:
    """The label selector of every object we deployed for this namespace (cluster-scoped too)."""
    return f"{n.LABEL_MANAGED_BY}={n.MANAGED_BY},{n.LABEL_INSTANCE}={settings.kubernetes.namespace}"


def read_namespace(kube: Kube, name: str) -> tuple[bool, dict[str, Any] | None]:
    """Whether the namespace exists, and the object; (True, None) when we may not read it
    (a namespace-scoped user may still deploy into it)."""
    try:
        found = kube.get("Namespace", name)
    except KubeError as exc:
        if exc.status != 403:
            raise
        return True, None
    return found is not None, found


def image_cache_wanted(settings: Settings) -> bool:
    """Whether the settings ask for an ImageCache (eci profile, image cache enabled)."""
    return settings.profile == "eci" and settings.image_cache.enabled


def image_cache_supported(kube: Kube, settings: Settings) -> bool:
    """Whether an ImageCache is rendered: wanted, and the cluster serves its CRD."""
    if not image_cache_wanted(settings):
        return False
    return kube.serves(IMAGE_CACHE_GROUP_VERSION, "imagecaches")


@dataclass(frozen=True, repr=False)
class OpsEntry:
    """The ops project's rotation runner as config.toml and the Secret hold it."""

    token: Secret
    runner_id: int | None
    expires_at: str | None

    def __repr__(self) -> str:
        return f"OpsEntry(runner_id={self.runner_id}, token={redact_token(self.token)})"


def desired_objects(
    rendered: Rendered,
    runner_id: int | None,
    expires_at: str | None,
    ops: OpsEntry | None = None,
) -> list[KubeObject]:
    """The rendered objects, stamped with their hash and (config Secret) the runners' ids
    and token expiries."""
    stamped = []
    for obj in rendered.objects:
        body = obj.body
        if obj.kind == "Secret" and obj.name == n.CONFIG_SECRET:
            body = {**body, "metadata": {**body["metadata"]}}
            annotations = {n.ANNOTATION_RUNNER_ID: str(runner_id or "")}
            if expires_at:
                annotations[n.ANNOTATION_EXPIRES] = expires_at
            if ops is not None:
                annotations[n.ANNOTATION_OPS_RUNNER_ID] = str(ops.runner_id or "")
                if ops.expires_at:
                    annotations[n.ANNOTATION_OPS_EXPIRES] = ops.expires_at
            body["metadata"]["annotations"] = annotations
        stamped.append(KubeObject(body=with_applied_hash(body), wave=obj.wave))
    return stamped


def render_objects(
    settings: Settings,
    local: Credentials,
    token: Secret,
    runner_id: int | None,
    expires_at: str | None,
    image_cache_ok: bool,
    ops: OpsEntry | None = None,
) -> list[KubeObject]:
    """What ``install`` applies for these tokens and runners, exactly as it stamps them.

    ``ops``: the rotation runner's entry (None: config.toml has the group runner only).
    """
    ops = ops if ops is not None and settings.rotation.in_cluster else None
    creds = Credentials(
        **{
            **local.__dict__,
            "runner_token": token,
            "ops_runner_token": ops.token if ops else NO_SECRET,
        }
    )
    rendered = render(settings, creds, image_cache_supported=image_cache_ok)
    return desired_objects(rendered, runner_id, expires_at, ops)


def stored_ops_entry(secret: dict[str, Any] | None) -> OpsEntry | None:
    """The rotation runner's entry as the config Secret holds it (None when it has none)."""
    stored = read_stored(secret, OPS_ENTRY)
    if not stored.token and stored.runner_id is None:
        return None
    return OpsEntry(stored.token, stored.runner_id, stored.expires_at)


def read_live(
    ctx: Context, objects: list[KubeObject], namespace_exists: bool
) -> dict[str, dict[str, Any] | None]:
    """The live version of each object (None when missing), read in parallel."""

    def read(obj: KubeObject) -> tuple[str, dict[str, Any] | None]:
        if obj.namespace and not namespace_exists:
            return obj.ref, None
        return obj.ref, ctx.kube.get(obj.kind, obj.name, obj.namespace)

    return dict(parallel(read, objects))


def access_review(
    kube: Kube, needed: list[tuple[str, str]], namespace: str
) -> list[tuple[str, str, bool]]:
    """Whether the user may do each (verb, kind) in ``namespace``.

    One SelfSubjectRulesReview answers for everything its rules grant; each pair they do
    not list gets a SelfSubjectAccessReview (in parallel), which is authoritative.
    """
    if not needed:
        return []
    granted = kube.granted_by_rules(needed, namespace)
    unsure = [pair for pair in needed if not granted[pair]]
    checked = dict(
        zip(
            unsure,
            parallel(lambda pair: kube.can(pair[0], pair[1], namespace), unsure),
            strict=True,
        )
    )
    return [(verb, kind, granted[(verb, kind)] or checked[(verb, kind)]) for verb, kind in needed]


# --- waiting --------------------------------------------------------------------------------


def wait_rollout(ctx: Context, deadline: float) -> str:
    """Wait for the runner Deployment's rollout (kubectl's semantics); WaitTimeout past it.

    The status line ticks (elapsed time) and, below it, each new reason why a pod is not
    ready is told once (phase, scheduling, image pulls, recent warnings: see readiness.py).
    """
    ns = ctx.settings.kubernetes.namespace
    started = time.monotonic()
    told: list[str] = []
    latest: list[str] = []

    def tick(verdict: RolloutStatus) -> None:
        if verdict.done:
            return
        ctx.reporter.progress(verdict.message, started=started)
        latest[:] = rollout_reasons(ctx.kube, ns)
        new = [line for line in latest if line not in told]
        for line in new:
            told.append(line)
            ctx.reporter.info(f"  {line}")
        if new:  # on a terminal the status line goes back under the reasons
            ctx.reporter.progress(verdict.message, started=started)

    verdict = ctx.kube.wait_rollout(n.DEPLOYMENT, ns, deadline=deadline, on_progress=tick)
    why = "".join(f"; {line}" for line in latest if line.startswith("pod "))
    if verdict.failed:
        raise WaitTimeout(
            f"rollout of deployment/{n.DEPLOYMENT} failed: {verdict.message}{why}",
            hint=f"kubectl -n {ns} describe deployment {n.DEPLOYMENT}; kubectl -n {ns} get events",
        )
    if not verdict.done:
        raise WaitTimeout(
            f"timed out waiting for the rollout: {verdict.message}{why}",
            hint=f"raise --timeout, or check: kubectl -n {ns} describe pods -l "
            f"app.kubernetes.io/name={n.APP}",
        )
    ctx.reporter.info(verdict.message)  # once, as a line: the status line is gone
    return verdict.message


def rollout_reasons(kube: Kube, namespace: str) -> list[str]:
    """Why the runner's pods are not ready, from the pods and the namespace's events (empty
    when the user may not list them: the wait goes on without reasons)."""
    selector = ",".join(f"{k}={v}" for k, v in sorted(n.selector_labels().items()))
    try:
        pods = kube.list("Pod", namespace, selector=selector)
        events = kube.events(namespace)
    except KubeError:
        return []
    owners = {n.DEPLOYMENT}
    owners |= {
        ref["name"]
        for pod in pods
        for ref in (pod.get("metadata") or {}).get("ownerReferences") or []
        if ref.get("name")
    }
    return not_ready_reasons(pods, events, datetime.now(UTC), owners=owners)


def contact_baseline(ctx: Context, runner_id: int, system_id: str) -> str | None:
    """Our manager's last contact now: after a new token is issued and before it is stored,
    so a contact newer than this one is a pod using the new token (the old token is dead at
    once, and the tool's own calls with a token came before it)."""
    runner = ctx.gitlab.runner(runner_id)
    return our_contact(ctx, runner, system_id).contacted_at if runner else None


def wait_online(
    ctx: Context,
    runner_id: int,
    deadline: float,
    *,
    system_id: str,
    after: str | None = None,
    once: bool = False,
) -> bool:
    """Wait until our runner process contacts GitLab; WaitTimeout past ``deadline``.

    Online means: the runner manager with our ``system_id`` is online and contacted GitLab
    after ``after`` (the baseline read by :func:`contact_baseline`; None: any contact). The
    runner's own ``status`` is not used: the tool's own calls with the token count there.

    Args:
        once: look once and return False instead of waiting (nothing was changed).
    """
    delay = 1.0
    since = parse_time(after)
    started = time.monotonic()
    while True:
        runner = ctx.gitlab.runner(runner_id)
        contact = our_contact(ctx, runner, system_id) if runner else None
        status = contact.status if contact else "missing"
        fresh = contact is not None and (
            since is None or (parse_time(contact.contacted_at) or since) > since
        )
        if status == "online" and fresh:
            ctx.reporter.info(f"Runner #{runner_id} is online")
            return True
        if status == "online":
            status = f"no contact since {after}"
        if once:
            last = contact.contacted_at if contact else None
            ctx.warn(
                f"runner #{runner_id} is {status} (last contact of system id {system_id}: "
                f"{last or 'never'}): check kubectl -n {ctx.settings.kubernetes.namespace} "
                f"logs deployment/{n.DEPLOYMENT}"
            )
            return False
        ctx.reporter.progress(
            f"Waiting for runner #{runner_id} to come online (status: {status})", started=started
        )
        if time.monotonic() >= deadline:
            raise WaitTimeout(
                f"timed out waiting for runner #{runner_id} to come online (status: {status})",
                hint=f"kubectl -n {ctx.settings.kubernetes.namespace} logs "
                f"deployment/{n.DEPLOYMENT}",
            )
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 10.0)
