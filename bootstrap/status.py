"""``bootstrap status``: is the runner healthy? Reads only, in GitLab and in the cluster.

1. GitLab: does our runner exist (the id in the config Secret, else the marker in its
   maintenance note), is it online, has its token expired or been reset elsewhere, and do its
   attributes match the settings? ``POST /runners/verify`` is never called: GitLab records a
   contact for it, and a status check must not change what it reports. The token's health is
   judged by its expiry: GraphQL ``CiRunner.tokenExpiresAt`` (``GET /runners/:id`` never has
   it) against the expiry recorded in the Secret; within ``rotation.rotate_before`` of it,
   status warns. "Online" is the runner manager with our pods' system id being online (the
   runner's own status counts any use of its token). GitLab shows maintenance notes only to
   the group's Owners: for a Maintainer the note is not compared, and the runner is found by
   its description and system id instead of its marker.
2. Kubernetes: is the Deployment rolled out and ready, which images do its pods run, and does
   the pod template's config checksum match the config.toml the Secret holds now (a Secret
   edited by hand, with no rollout, shows here)?
3. Drift: the objects ``install`` would create or update — the same render, stamped the
   same way, compared by the same :func:`~bootstrap.plan.decide`.

Being unhealthy is a result, not an exception: :class:`StatusResult` lists every problem,
and :meth:`StatusResult.failure` turns them into the error the CLI reports — exit 3 when the
runner is unhealthy in GitLab (checked first), else 4 when Kubernetes is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from bootstrap.config import Settings
from bootstrap.cost import billing_summary
from bootstrap.deadline import whole_run
from bootstrap.errors import BootstrapError, GitLabError, KubeError
from bootstrap.gitlab import MAINTAINER, SCOPE_READ, GitLab, Runner, parse_time
from bootstrap.inputs import load_credentials
from bootstrap.kube import Kube, rollout_verdict
from bootstrap.lock import Holder, read_holder
from bootstrap.looptoken import check_loop_token
from bootstrap.ops import ops_project
from bootstrap.plan import Change, decide
from bootstrap.render import names as n
from bootstrap.render.credentials import PLACEHOLDER_TOKEN
from bootstrap.render.objects import config_checksum
from bootstrap.render.runner_config import OPS_ENTRY
from bootstrap.report import QuietReporter, Reporter
from bootstrap.schedule import find_schedule
from bootstrap.secret import Secret
from bootstrap.validators import parse_duration
from bootstrap.workflow import (
    IMAGE_CACHE_MISSING,
    Contact,
    Context,
    Stored,
    TokenState,
    connect,
    find_marked_runner,
    image_cache_supported,
    image_cache_wanted,
    managed_selector,
    marked_ops_runners,
    marked_runners,
    note_blind_drift,
    our_contact,
    read_live,
    read_namespace,
    read_stored,
    render_objects,
    requests_made,
    runner_attributes,
    runner_drift,
    secret_text,
    stored_ops_entry,
    token_state,
    with_expiry,
)

Area = Literal["gitlab", "kubernetes"]
_INSTALL_HINT = "run `bootstrap install` (`--dry-run` first shows what it changes)"


@dataclass(frozen=True)
class Problem:
    """One reason the runner is not healthy, with its fix."""

    area: Area
    message: str
    hint: str = ""

    @property
    def exit_code(self) -> int:
        return GitLabError.exit_code if self.area == "gitlab" else KubeError.exit_code

    def as_dict(self) -> dict[str, Any]:
        return {
            "area": self.area,
            "message": self.message,
            "hint": self.hint,
            "exit_code": self.exit_code,
        }


@dataclass(frozen=True)
class RunnerState:
    """The runner as GitLab reports it (never its token)."""

    id: int
    description: str
    #: Of our runner manager (the pods' system id), else the runner's own (see Contact).
    status: str
    contacted_at: str | None
    token_expires_at: str | None
    tags: tuple[str, ...]
    paused: bool
    found_by: Literal["secret", "marker"]
    system_id: str = ""
    #: What GitLab lists as the runner's status (any use of its token counts there).
    gitlab_status: str = ""
    gitlab_contacted_at: str | None = None

    @classmethod
    def of(
        cls, runner: Runner, found_by: Literal["secret", "marker"], contact: Contact
    ) -> RunnerState:
        return cls(
            id=runner.id,
            description=runner.description,
            status=contact.status,
            contacted_at=contact.contacted_at,
            token_expires_at=runner.token_expires_at,
            tags=runner.tag_list,
            paused=runner.paused,
            found_by=found_by,
            system_id=contact.system_id,
            gitlab_status=runner.status,
            gitlab_contacted_at=runner.contacted_at,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "description": self.description,
            "status": self.status,
            "contacted_at": self.contacted_at,
            "token_expires_at": self.token_expires_at,
            "tags": list(self.tags),
            "paused": self.paused,
            "found_by": self.found_by,
            "system_id": self.system_id,
            "gitlab_status": self.gitlab_status,
            "gitlab_contacted_at": self.gitlab_contacted_at,
        }


@dataclass(frozen=True)
class PodState:
    """One runner manager pod."""

    name: str
    phase: str
    ready: bool
    images: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "phase": self.phase, "ready": self.ready, "images": self.images}


@dataclass
class DeploymentState:
    """The runner Deployment, its pods, and whether they run the stored config."""

    exists: bool = False
    replicas: int = 0
    ready_replicas: int = 0
    rolled_out: bool = False
    rollout: str = ""
    pods: list[PodState] = field(default_factory=list)
    # None when there is nothing to compare (the Deployment or the Secret is missing).
    checksum_matches: bool | None = None

    @property
    def ready(self) -> bool:
        return self.exists and self.rolled_out and self.ready_replicas >= self.replicas

    @property
    def images(self) -> list[str]:
        """The images the ready pods run (all pods' when none is ready yet)."""
        pods = [p for p in self.pods if p.ready] or self.pods
        return sorted({image for pod in pods for image in pod.images})

    def as_dict(self) -> dict[str, Any]:
        return {
            "exists": self.exists,
            "replicas": self.replicas,
            "ready_replicas": self.ready_replicas,
            "ready": self.ready,
            "rollout": self.rollout,
            "images": self.images,
            "pods": [p.as_dict() for p in self.pods],
            "config_checksum_matches": self.checksum_matches,
        }


@dataclass
class StatusResult:
    """Everything ``status`` found, and what is wrong."""

    group: str
    namespace: str
    runner: RunnerState | None
    runner_drift: list[str]
    deployment: DeploymentState
    drift: list[Change]
    problems: list[Problem]
    warnings: list[str] = field(default_factory=list)
    requests: dict[str, dict[str, int]] = field(default_factory=dict)
    lock: Holder | None = None
    #: What each job pod bills as (cost.BillingSummary.as_dict).
    cost: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> int:
        return self.problems[0].exit_code if self.problems else 0

    def failure(self) -> BootstrapError | None:
        """The error the CLI exits with (None when healthy): the first problem, counted."""
        if not self.problems:
            return None
        first = self.problems[0]
        more = len(self.problems) - 1
        message = "unhealthy: " + first.message
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        cls = GitLabError if first.area == "gitlab" else KubeError
        return cls(message, hint=first.hint or None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "exit_code": self.exit_code,
            "group": self.group,
            "namespace": self.namespace,
            "runner": self.runner.as_dict() if self.runner else None,
            "runner_drift": self.runner_drift,
            "kubernetes": self.deployment.as_dict(),
            "drift": [c.as_dict() for c in self.drift],
            "problems": [p.as_dict() for p in self.problems],
            "warnings": self.warnings,
            "requests": self.requests,
            "lock": _lock_dict(self.lock),
            "cost": self.cost,
        }


def _lock_dict(holder: Holder | None) -> dict[str, Any] | None:
    if holder is None:
        return None
    expires = holder.expires.isoformat() if holder.expires else None
    return {"holder": holder.identity, "expires": expires}


@whole_run
def status(
    settings: Settings,
    *,
    token: Secret,
    environ: Mapping[str, str],
    reporter: Reporter | None = None,
    now: datetime | None = None,
    timeout: float = 600,
    gitlab_factory: Callable[..., GitLab] = GitLab,
    kube_factory: Callable[..., Kube] = Kube,
) -> StatusResult:
    """Report the health of the runner of ``settings.gitlab.group`` in its namespace.

    Reads only. Needs a token with ``read_api`` of a Maintainer (or Owner) of the group, and
    the same local credential inputs as ``install`` (drift compares what install would apply).

    Args:
        settings: validated settings.
        token: the GitLab token (``GITLAB_TOKEN``).
        environ: where credential env vars named in the settings are read.
        reporter: warnings.
        now: the current time (token expiry), for tests.
        timeout: seconds the whole check may take (``--timeout``).

    Raises:
        InvalidInput, GitLabError, KubeError: when a check cannot be made at all (exit 2-4).
        WaitTimeout: ``timeout`` passed (exit 5).
        An unhealthy runner is not raised: see :meth:`StatusResult.failure`.
    """
    report = reporter or QuietReporter()
    local = load_credentials(settings, environ, PLACEHOLDER_TOKEN)
    ctx = connect(
        settings,
        token,
        reporter=report,
        need_scopes=(SCOPE_READ,),
        need_role=MAINTAINER,
        purpose="reading the group's runners",
        gitlab_factory=gitlab_factory,
        kube_factory=kube_factory,
    )
    settings, kube, ns = ctx.settings, ctx.kube, ctx.settings.kubernetes.namespace
    namespace_exists, _ = read_namespace(kube, ns)
    image_cache_ok = image_cache_supported(kube, settings)
    if image_cache_wanted(settings) and not image_cache_ok:
        ctx.warn(IMAGE_CACHE_MISSING)

    secret = kube.get("Secret", n.CONFIG_SECRET, ns) if namespace_exists else None
    stored = read_stored(secret)
    runner, found_by, gitlab_problems = _runner(ctx, stored, secret is not None)
    moment = now or datetime.now(UTC)
    judged: TokenState | None = None
    contact: Contact | None = None
    expiring: list[str] = []
    if runner is not None:
        judged = token_state(ctx, runner.id, stored, moment)
        runner = with_expiry(runner, judged.expires_at)
        contact = our_contact(ctx, runner, n.system_id(settings))
        expiring.append(_warn_expiring(ctx, runner, judged, moment))
    wanted = note_blind_drift(ctx, runner_attributes(settings))
    if not ctx.sees_notes and runner is not None:
        ctx.warn(
            f"the maintenance note of runner #{runner.id} is not compared: GitLab shows it "
            f"only to Owners of {settings.gitlab.group} (this token's user is a {ctx.role})"
        )
    attr_drift = sorted(runner_drift(runner, wanted)) if runner else []

    # Render what install would apply when it reuses the stored token (install's own path).
    expires = (runner.token_expires_at if runner else None) or stored.expires_at
    runner_id = runner.id if runner else stored.runner_id
    objects = render_objects(
        settings,
        local,
        stored.token or Secret(PLACEHOLDER_TOKEN),
        runner_id,
        expires,
        image_cache_ok,
        stored_ops_entry(secret),
    )
    live = read_live(ctx, objects, namespace_exists)
    drift = [
        Change(obj, action)
        for obj in objects
        if (action := decide(obj.body, live.get(obj.ref))) != "unchanged"
    ]
    deploy = live.get(f"Deployment/{n.DEPLOYMENT}")
    deployment = _deployment(ctx, deploy, secret)
    # An install or rotate in progress holds the namespace's lock: say who.
    holder = read_holder(kube, ns) if namespace_exists else None

    result = StatusResult(
        group=settings.gitlab.group,
        namespace=ns,
        runner=RunnerState.of(runner, found_by, contact) if runner and contact else None,
        runner_drift=attr_drift,
        deployment=deployment,
        drift=drift,
        problems=[],
        warnings=ctx.warnings,
        lock=holder if holder and not holder.expired(datetime.now(UTC)) else None,
        cost=billing_summary(settings).as_dict(),
    )
    if runner is None and secret is None and deploy is None:
        result.problems = [
            Problem(
                "kubernetes",
                f"not installed: namespace {ns} has no Deployment {n.DEPLOYMENT} and no Secret "
                f"{n.CONFIG_SECRET}, and {settings.gitlab.group} has no runner for it",
                "run `bootstrap install`",
            )
        ]
    else:
        result.problems = [
            *gitlab_problems,
            *_duplicates(ctx, runner),
            *_runner_problems(runner, judged, contact, attr_drift, ns, stored),
            *_ops_problems(ctx, secret, moment, expiring),
            *_kube_problems(deployment, drift, ns),
        ]
        result.problems += _rotation_problems(ctx, [e for e in expiring if e])
    result.requests = requests_made(ctx)
    return result


def _runner(
    ctx: Context, stored: Stored, has_secret: bool
) -> tuple[Runner | None, Literal["secret", "marker"], list[Problem]]:
    """Our runner (by the stored id, else by its marker) and what is wrong with finding it."""
    problems: list[Problem] = []
    if stored.runner_id is not None:
        runner = ctx.gitlab.runner(stored.runner_id)
        if runner is not None:
            return runner, "secret", problems
        problems.append(
            Problem(
                "gitlab",
                f"runner #{stored.runner_id} recorded in Secret {n.CONFIG_SECRET} is gone "
                "from GitLab",
                "run `bootstrap install`: it creates a new runner and stores its token",
            )
        )
    marked = find_marked_runner(ctx)
    if marked is not None:
        return marked, "marker", problems
    if not problems:
        settings = ctx.settings
        where = f"cluster {settings.cluster_id}, namespace {settings.kubernetes.namespace}"
        missing = "" if has_secret else f" (and there is no Secret {n.CONFIG_SECRET})"
        problems.append(
            Problem(
                "gitlab",
                f"{settings.gitlab.group} has no runner for {where}{missing}",
                "run `bootstrap install`",
            )
        )
    return None, "marker", problems


def _ops_problems(
    ctx: Context, secret: dict[str, Any] | None, now: datetime, expiring: list[str]
) -> list[Problem]:
    """The ops runner (the rotation's own entry): gone or dead stops the loop itself, and no
    scheduled job can repair it, so each names the one command that does."""
    stored = read_stored(secret, OPS_ENTRY)
    if stored.runner_id is None:
        return []
    repair = "run `bootstrap install`: it resets the ops runner's token by id and stores it"
    runner = ctx.gitlab.runner(stored.runner_id)
    if runner is None:
        return [
            Problem(
                "gitlab",
                f"ops runner #{stored.runner_id} (the rotation's own) recorded in Secret "
                f"{n.CONFIG_SECRET} is gone from GitLab: no scheduled rotation can run",
                "run `bootstrap install`: it creates the ops runner again",
            )
        ]
    token = token_state(ctx, runner.id, stored, now)
    if token.dead:
        return [
            Problem(
                "gitlab",
                f"the token of ops runner #{runner.id} (the rotation's own) is dead: "
                f"{token.dead}; no scheduled rotation can run",
                repair,
            )
        ]
    expiring.append(_warn_expiring(ctx, runner, token, now, label="ops runner"))
    project = ctx.gitlab.project(ops_project(ctx.settings))
    if project is None:
        return []
    return [
        *_ops_duplicates(ctx, runner, project.id),
        *_loop_token_problems(ctx, project.id, now, expiring),
    ]


def _ops_duplicates(ctx: Context, runner: Runner, project_id: int) -> list[Problem]:
    """Other runners of the ops project with the ops runner's marker (install deletes them)."""
    others = [r for r in marked_ops_runners(ctx, project_id) if r.id != runner.id]
    return _duplicate_problems(runner, others, "ops runner", ops_project(ctx.settings))


def _loop_token_problems(
    ctx: Context, project_id: int, now: datetime, expiring: list[str]
) -> list[Problem]:
    """The scheduled job's own token: missing or dead locks the loop out; expiring soon
    warns (the job renews it within rotation.rotate_before)."""
    repair = "run `bootstrap install`: it creates a new group access token and stores it"
    try:
        check = check_loop_token(
            ctx.settings, ctx.gitlab, ctx.group_id, project_id, now.date(), can_list=ctx.is_owner
        )
    except GitLabError as exc:
        if exc.status not in (401, 403):
            raise
        # Not the token's fault: this user may not read what the check reads.
        ctx.warn(
            f"the rotation job's token was not checked: GitLab answered {exc.status} to "
            "reading it (listing a group's access tokens needs its Owner, the ops project's "
            "CI/CD variables a Maintainer)"
        )
        return []
    for warning in check.warnings:
        ctx.warn(warning)
    given = ctx.settings.rotation.token_env or "VAR"
    if check.user_given:
        repair = f"create a new token and run `bootstrap install --schedule-token-env {given}`"
    if check.problem is not None:
        return [Problem("gitlab", check.problem, repair)]
    expires_at = check.expires_at
    if expires_at is None:
        return []
    left = date.fromisoformat(expires_at) - now.date()
    if left > parse_duration(ctx.settings.rotation.rotate_before):
        return []
    if check.user_given:
        ctx.warn(
            f"the rotation job's token (given to install) expires on {expires_at} (in "
            f"{left.days}d), within rotation.rotate_before ({ctx.settings.rotation.rotate_before})"
            f": it cannot renew itself; {repair}"
        )
        expiring.append(f"the rotation job's token (given to install) expires on {expires_at}")
        return []
    ctx.warn(
        f"the rotation job's group access token expires on {expires_at} (in {left.days}d), "
        f"within rotation.rotate_before ({ctx.settings.rotation.rotate_before}): the scheduled "
        "job renews it; if it does not, run `bootstrap install`"
    )
    expiring.append(f"the rotation job's group access token expires on {expires_at}")
    return []


def _duplicates(ctx: Context, runner: Runner | None) -> list[Problem]:
    """Other runners with our marker: no pod polls with their tokens, so they take no jobs,
    but each is a live token nobody holds or rotates."""
    if runner is None:
        return []
    others = [r for r in marked_runners(ctx) if r.id != runner.id]
    return _duplicate_problems(runner, others, "runner", ctx.settings.gitlab.group)


def _duplicate_problems(
    runner: Runner, others: list[Runner], label: str, where: str
) -> list[Problem]:
    if not others:
        return []
    ids = ", ".join(f"#{r.id}" for r in others)
    one = len(others) == 1
    return [
        Problem(
            "gitlab",
            f"{len(others) + 1} {label}s of {where} carry the marker of this cluster and "
            f"namespace: #{runner.id} is the one deployed, {ids} {'is' if one else 'are'} not",
            f"run `bootstrap install`: it deletes {ids} (no pod polls with "
            f"{'its token, so it takes' if one else 'their tokens, so they take'} no jobs, "
            f"but nobody holds or rotates {'it' if one else 'them'}) and keeps #{runner.id}; "
            "where GitLab refuses (403: a project runner assigned to more than one project, "
            "or a user who may not delete it), a GitLab administrator deletes it in "
            "Admin area > CI/CD > Runners",
        )
    ]


def _warn_expiring(
    ctx: Context, runner: Runner, token: TokenState, now: datetime, *, label: str = "runner"
) -> str:
    """A warning when the token expires within ``rotation.rotate_before`` (not yet a
    problem); returns what expires when ("" when nothing does)."""
    expires = parse_time(token.expires_at)
    window = parse_duration(ctx.settings.rotation.rotate_before)
    if token.dead or expires is None or expires - now > window:
        return ""
    left = expires - now
    days, rest = divmod(int(left.total_seconds()), 86400)
    ctx.warn(
        f"the token of {label} #{runner.id} expires at {token.expires_at} (in {days}d"
        f"{rest // 3600}h), within rotation.rotate_before ({ctx.settings.rotation.rotate_before})"
        ": the scheduled rotation renews it, or run `bootstrap rotate`"
    )
    return f"the token of {label} #{runner.id} expires at {token.expires_at}"


#: Pipeline statuses of a rotation that did not (and will not) succeed.
_FAILED = ("failed", "canceled", "skipped")


def _rotation_problems(ctx: Context, expiring: list[str]) -> list[Problem]:
    """A token expires within the window and the last scheduled rotation did not succeed:
    nothing will renew it in time by itself."""
    if not expiring:
        return []
    schedule = find_schedule(ctx.settings, ctx.gitlab)
    if schedule is None or schedule.last_pipeline is None:
        return []  # no schedule (a warning elsewhere) or it has not run yet: not failed
    pipeline_id, state, url = schedule.last_pipeline
    if state not in _FAILED:
        return []
    return [
        Problem(
            "gitlab",
            f"{'; '.join(expiring)}, within rotation.rotate_before "
            f"({ctx.settings.rotation.rotate_before}), and the last scheduled rotation, "
            f"pipeline #{pipeline_id}, {state}",
            f"read that pipeline's job log ({url}), fix it, or run `bootstrap rotate`",
        )
    ]


def _runner_problems(
    runner: Runner | None,
    token: TokenState | None,
    contact: Contact | None,
    attr_drift: list[str],
    ns: str,
    stored: Stored,
) -> list[Problem]:
    """Dead (expired or replaced) token, not online, attributes changed in GitLab."""
    if runner is None or token is None or contact is None:
        return []
    problems = []
    rid = f"runner #{runner.id}"
    if token.dead:
        where = f"the token in Secret {n.CONFIG_SECRET}" if stored.token else rid
        problems.append(
            Problem(
                "gitlab",
                f"{where} is dead: {token.dead}",
                "run `bootstrap install`: it resets the token and stores the new one",
            )
        )
    if contact.status != "online":
        last = contact.contacted_at or "never"
        whose = f"system id {contact.system_id}" if contact.by_manager else "the runner"
        also = ""
        if contact.by_manager and runner.status == "online":
            also = f"; GitLab lists the runner online from another contact at {runner.contacted_at}"
        problems.append(
            Problem(
                "gitlab",
                f"{rid} is {contact.status or 'unknown'} (last contact of {whose}: {last}{also})",
                f"kubectl -n {ns} logs deployment/{n.DEPLOYMENT}",
            )
        )
    if attr_drift:
        problems.append(
            Problem(
                "gitlab",
                f"{rid} in GitLab differs from the settings: {', '.join(attr_drift)}",
                _INSTALL_HINT,
            )
        )
    return problems


def _deployment(
    ctx: Context, deploy: dict[str, Any] | None, secret: dict[str, Any] | None
) -> DeploymentState:
    """Readiness, pods and images of the runner Deployment, and its config checksum."""
    state = DeploymentState()
    if deploy is None:
        return state
    ns = ctx.settings.kubernetes.namespace
    verdict = rollout_verdict(deploy)
    status = deploy.get("status") or {}
    state.exists = True
    state.replicas = int((deploy.get("spec") or {}).get("replicas", 1))
    state.ready_replicas = int(status.get("readyReplicas", 0))
    state.rolled_out = verdict.done
    state.rollout = verdict.message
    state.pods = [
        _pod(pod) for pod in ctx.kube.list("Pod", ns, selector=managed_selector(ctx.settings))
    ]
    if secret is not None:
        template = deploy["spec"]["template"].get("metadata") or {}
        running = (template.get("annotations") or {}).get(n.ANNOTATION_CHECKSUM)
        current = config_checksum(secret_text(secret, "config.toml"), secret_text(secret, "ca.crt"))
        state.checksum_matches = running == current
    return state


def _pod(pod: dict[str, Any]) -> PodState:
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    images = [s.get("image", "") for s in statuses] or [
        c.get("image", "") for c in (pod.get("spec") or {}).get("containers") or []
    ]
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    return PodState(
        name=pod["metadata"]["name"],
        phase=str(status.get("phase", "")),
        ready=conditions.get("Ready") == "True",
        images=tuple(sorted(i for i in images if i)),
    )


def _kube_problems(deployment: DeploymentState, drift: list[Change], ns: str) -> list[Problem]:
    """Missing or unready Deployment, pods on an old config, objects changed in the cluster."""
    problems = []
    name = f"deployment/{n.DEPLOYMENT}"
    if not deployment.exists:
        problems.append(
            Problem("kubernetes", f"{name} is missing in namespace {ns}", _INSTALL_HINT)
        )
    elif not deployment.ready:
        problems.append(
            Problem(
                "kubernetes",
                f"{name} is not ready ({deployment.ready_replicas}/{deployment.replicas} "
                f"ready): {deployment.rollout}",
                f"kubectl -n {ns} describe {name}; kubectl -n {ns} get pods,events",
            )
        )
    if deployment.checksum_matches is False:
        problems.append(
            Problem(
                "kubernetes",
                f"the runner pods do not run the current config: the config checksum of {name} "
                f"does not match config.toml in Secret {n.CONFIG_SECRET} (changed without a "
                "rollout)",
                "run `bootstrap install`: it writes the Secret from the settings and rolls "
                "the pods",
            )
        )
    if drift:
        listed = ", ".join(f"{c.ref} ({c.action})" for c in drift)
        count = len(drift)
        problems.append(
            Problem(
                "kubernetes",
                f"{count} object{'s' if count > 1 else ''} differ{'' if count > 1 else 's'} "
                f"from the settings: {listed}",
                _INSTALL_HINT,
            )
        )
    return problems
