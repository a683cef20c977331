"""``bootstrap install``: create (or find) the group runner and deploy it, idempotently.

The sequence is ordered so that a failure at any step leaves a state the next run repairs:

1. Everything local is checked first: settings, ``GITLAB_TOKEN``, credential files.
2. Preflight and plan, reads only: token scopes, group, Owner role; cluster reachable;
   ImageCache CRD; the live objects and the stored runner token; what the templates, the ops
   project, the schedule and the loop token would change (their dry-run paths); the
   permission of every write, the lock's included. Nothing to change: no lock, no write.
   Otherwise the namespace (which holds the lock's Lease) is created when missing, and every
   other write happens under the lock, each step reading again what it changes.
3. Runner: the stored token is GitLab's current one -> reuse; stored token dead -> reset by
   id; no Secret
   but our runner exists (marker in its maintenance note) -> reset by id, never a second
   runner; else create. A new token is written to the config Secret at once; if that first
   write fails after a create, the new runner is deleted again (not after a lost lock: then
   it is adopted by its marker; see ``_undo_creates``).
4. Apply every changed object by server-side apply, wave by wave, each wave in parallel.
5. Wait for the rollout (kubectl's semantics) and for the runner to come online: its runner
   manager (our pods' system id) contacts GitLab after the new token was issued. A run that
   changed nothing looks once and reports what GitLab says.
6. The templates, then the schedule and the loop token, still under the lock.

The stored token is judged by reading only: its expiry recorded in the Secret against the
one GitLab reports (GraphQL ``CiRunner.tokenExpiresAt``). ``POST /runners/verify`` is never
called: GitLab counts it as a contact of the runner, which would make a dead runner look
online for two hours.

``dry_run`` runs the same path with writes off: GitLab actions are only described and
Kubernetes applies are sent with ``dryRun=All``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from bootstrap.config import Settings
from bootstrap.cost import billing_summary
from bootstrap.deadline import whole_run
from bootstrap.errors import GitLabError, InvalidInput, KubeError, LockLost
from bootstrap.gitlab import (
    SCOPE_CREATE,
    SCOPE_MANAGE,
    SCOPE_READ,
    GitLab,
    NewToken,
    Project,
    Runner,
)
from bootstrap.inputs import load_credentials
from bootstrap.kube import Kube
from bootstrap.lock import LOCK_VERBS, Holder, locked, tell_waiting
from bootstrap.ops import OpsResult, ensure_ops_project, ops_project
from bootstrap.plan import Action, Change, decide, diff
from bootstrap.publish import PublishResult, publish
from bootstrap.render import KubeObject
from bootstrap.render import names as n
from bootstrap.render.credentials import PLACEHOLDER_OPS_TOKEN, PLACEHOLDER_TOKEN, Credentials
from bootstrap.render.runner_config import OPS_ENTRY
from bootstrap.report import QuietReporter, Reporter
from bootstrap.schedule import ScheduleResult, ensure_schedule
from bootstrap.secret import Secret
from bootstrap.workflow import (
    IMAGE_CACHE_MISSING,
    Context,
    OpsEntry,
    Stored,
    access_review,
    connect,
    contact_baseline,
    find_marked_runner,
    find_ops_runner,
    image_cache_supported,
    image_cache_wanted,
    live_attributes,
    marked_ops_runners,
    marked_runners,
    ops_runner_attributes,
    parallel,
    read_live,
    read_namespace,
    read_stored,
    render_objects,
    requests_made,
    runner_attributes,
    runner_drift,
    stored_ops_entry,
    token_state,
    wait_online,
    wait_rollout,
    with_expiry,
)

RunnerActionName = Literal["create", "reuse", "reset"]


@dataclass
class RunnerPlan:
    """What happens to the GitLab runner."""

    action: RunnerActionName
    reason: str
    runner: Runner | None = None
    updates: dict[str, Any] = field(default_factory=dict)
    token: NewToken | None = None
    #: Our runner manager's last contact when the new token was issued (see wait_online).
    contact_before: str | None = None
    #: The attributes the settings ask for (what a create sends).
    attributes: dict[str, Any] = field(default_factory=dict)
    #: Other runners carrying this entry's marker (neither the one the Secret records nor the
    #: one adopted): nothing holds their tokens, so they are deleted under the lock.
    deletes: list[Runner] = field(default_factory=list)
    #: The duplicates GitLab refused to delete (403), by id: why, and what to do instead.
    refused: dict[int, str] = field(default_factory=dict)

    @property
    def delete_reason(self) -> str:
        """Why each runner in ``deletes`` goes (the plan shows it)."""
        return (
            f"a duplicate: it carries the marker of this cluster and namespace too, but "
            f"#{self.runner_id} is the one deployed; no pod holds its token"
        )

    @property
    def previous(self) -> dict[str, Any]:
        """The live values of the attributes in ``updates`` (old -> new in the plan)."""
        live = live_attributes(self.runner) if self.runner else {}
        return {k: live.get(k) for k in self.updates}

    @property
    def action_of_gitlab(self) -> Action:
        """create / update / unchanged, counted in the plan's GitLab total."""
        if self.action == "create":
            return "create"
        return "update" if self.action == "reset" or self.updates else "unchanged"

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
            # old -> new per attribute (none of them is a secret).
            "changes": {k: {"old": self.previous[k], "new": v} for k, v in self.updates.items()},
            "token_expires_at": self.token.expires_at
            if self.token
            else (self.runner.token_expires_at if self.runner else None),
            "deletes": [
                {
                    "id": r.id,
                    "description": r.description,
                    "reason": self.delete_reason,
                    # Why GitLab refused it (left in place, not counted as deleted).
                    "refused": self.refused.get(r.id),
                }
                for r in self.deletes
            ],
        }


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
    templates: PublishResult | None = None
    schedule: ScheduleResult | None = None
    #: The runner's page in GitLab (empty until the runner has an id).
    runner_url: str = ""
    #: What each job pod bills as (cost.BillingSummary.as_dict).
    cost: dict[str, Any] = field(default_factory=dict)
    #: The ops project's rotation runner (None: no in-cluster rotation loop managed).
    ops_runner: RunnerPlan | None = None

    def counts(self) -> dict[str, int]:
        """create / update / unchanged of the Kubernetes objects."""
        return _count(c.action for c in self.changes)

    def gitlab_changes(self) -> dict[str, Action]:
        """What happens in GitLab, per thing: the runners, the templates, the ops project, the
        schedule and the loop's group access token."""
        actions: dict[str, Action] = {"runner": self.runner.action_of_gitlab}
        if self.ops_runner is not None:
            actions["ops runner"] = self.ops_runner.action_of_gitlab
        for label, plan in (("runner", self.runner), ("ops runner", self.ops_runner)):
            if plan is None:
                continue
            for duplicate in plan.deletes:
                refused = duplicate.id in plan.refused  # left as it was: not done
                actions[f"{label} #{duplicate.id}"] = "unchanged" if refused else "delete"
        if self.templates is not None and not self.templates.refused:
            t = self.templates
            # A plan's catalog False: publish marks the project a Catalog resource (a write).
            marks = t.dry_run and t.catalog is False
            actions["templates"] = (
                "create"
                if t.project_created
                else "update"
                if t.changed or t.tag_created or marks
                else "unchanged"
            )
        ops = self.schedule.ops if self.schedule is not None else None
        if ops is not None:
            actions["ops project"] = (
                "create" if ops.project_created else "update" if ops.changed else "unchanged"
            )
        if self.schedule is not None and self.schedule.action != "skipped":
            actions["schedule"] = _SCHEDULE_ACTIONS.get(self.schedule.action, "unchanged")
        token = self.schedule.token if self.schedule is not None else None
        if token is not None and token.action in _LOOP_TOKEN_ACTIONS:
            # A leftover revoked counts as a change of the loop's token too.
            action = _LOOP_TOKEN_ACTIONS[token.action]
            actions["loop token"] = "update" if action == "unchanged" and token.revoked else action
        return actions

    def gitlab_counts(self) -> dict[str, int]:
        return _count(self.gitlab_changes().values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "runner": self.runner.as_dict(),
            "objects": [c.as_dict() for c in self.changes],
            "summary": self.counts(),
            "summary_by_system": {"gitlab": self.gitlab_counts(), "kubernetes": self.counts()},
            "rollout": self.rollout,
            "online": self.online,
            "warnings": self.warnings,
            "requests": self.requests,
            "templates": self.templates.as_dict() if self.templates else None,
            "schedule": self.schedule.as_dict() if self.schedule else None,
            "runner_url": self.runner_url,
            "cost": self.cost,
            "ops_runner": self.ops_runner.as_dict() if self.ops_runner else None,
        }


_SCHEDULE_ACTIONS: dict[str, Action] = {"created": "create", "updated": "update"}
#: The loop token's actions (looptoken.LoopTokenResult) as counted; "unavailable" and
#: "skipped" (nothing known, nothing done) are not counted.
_LOOP_TOKEN_ACTIONS: dict[str, Action] = {
    "created": "create",
    "replaced": "update",
    "stored": "update",
    "renewed": "update",
    "unchanged": "unchanged",
}


def _count(actions: Iterable[str]) -> dict[str, int]:
    counts = {"create": 0, "update": 0, "unchanged": 0}
    for action in actions:
        counts[action] = counts.get(action, 0) + 1
    return counts


@dataclass(frozen=True)
class RunnerKind:
    """Which runner a plan is for: the group's, or the ops project's rotation runner."""

    label: str  # "runner" or "ops runner", in messages
    attributes: dict[str, Any]
    find: Callable[[], Runner | None]
    create: Callable[[dict[str, Any]], NewToken]
    where: str
    #: Every runner carrying this entry's marker (empty when GitLab hides notes).
    marked: Callable[[], list[Runner]]


def group_kind(ctx: Context) -> RunnerKind:
    """The group runner: found by the marker among the group's runners."""
    return RunnerKind(
        "runner",
        runner_attributes(ctx.settings),
        lambda: find_marked_runner(ctx),
        lambda attributes: ctx.gitlab.create_runner(ctx.group_id, attributes),
        ctx.settings.gitlab.group,
        lambda: marked_runners(ctx),
    )


def ops_kind(ctx: Context, project_id: int, project_path: str) -> RunnerKind:
    """The ops project's locked, ref-protected project runner (the sealed rotation entry)."""
    return RunnerKind(
        "ops runner",
        ops_runner_attributes(ctx.settings),
        lambda: find_ops_runner(ctx, project_id),
        lambda attributes: ctx.gitlab.create_project_runner(project_id, attributes),
        project_path,
        lambda: marked_ops_runners(ctx, project_id),
    )


def plan_runner(ctx: Context, stored: Stored, kind: RunnerKind | None = None) -> RunnerPlan:
    """Decide create / reuse / reset, with reads only; and which duplicates go.

    A duplicate is another runner carrying the same marker (the same cluster, namespace and
    entry): one a run created after losing the lock, its create reaching GitLab after the
    new holder had read the runners. Nothing holds its token, and GitLab may give it jobs
    that never run. A create finds none (no runner carries the marker); a runner whose
    marker names another cluster or namespace is never one.
    """
    kind = kind or group_kind(ctx)
    plan = _plan_runner(ctx, stored, kind)
    plan.attributes = kind.attributes
    if plan.runner is not None:
        plan.deletes = [r for r in kind.marked() if r.id != plan.runner.id]
    return plan


def _plan_runner(ctx: Context, stored: Stored, kind: RunnerKind) -> RunnerPlan:
    wanted = kind.attributes
    if stored.runner_id is not None:
        runner = ctx.gitlab.runner(stored.runner_id)
        if runner is not None:
            drift = runner_drift(runner, wanted)
            state = token_state(ctx, runner.id, stored, datetime.now(UTC))
            runner = with_expiry(runner, state.expires_at)
            if not state.dead:
                return RunnerPlan("reuse", state.verdict, runner, drift)
            return RunnerPlan("reset", f"the stored token is dead: {state.dead}", runner, drift)
        ctx.warn(f"{kind.label} #{stored.runner_id} recorded in the cluster is gone from GitLab")
    runner = kind.find()
    if runner is not None:
        return RunnerPlan(
            "reset",
            "no usable token in the cluster, but this runner exists in GitLab",
            runner,
            runner_drift(runner, wanted),
        )
    return RunnerPlan("create", f"no {kind.label} for this cluster and namespace yet")


def execute_runner(
    ctx: Context, plan: RunnerPlan, kind: RunnerKind | None = None
) -> NewToken | None:
    """Create or reset as planned; returns the new token (None when reused)."""
    kind = kind or group_kind(ctx)
    gl = ctx.gitlab
    if plan.action == "create":
        plan.token = kind.create(kind.attributes)
        ctx.reporter.info(f"Created {kind.label} #{plan.token.runner_id} in {kind.where}")
        return plan.token
    if plan.runner is None:
        raise ValueError(f"a {plan.action} plan always names its runner")  # a bug: exit 1
    if plan.updates:
        known = plan.runner.token_expires_at  # PUT answers RunnerDetails: no expiry
        plan.runner = with_expiry(gl.update_runner(plan.runner.id, plan.updates), known)
        ctx.reporter.info(
            f"Updated {kind.label} #{plan.runner.id}: {', '.join(sorted(plan.updates))}"
        )
    if plan.action == "reset":
        plan.token = gl.reset_token(plan.runner.id)
        ctx.reporter.info(f"Reset the token of {kind.label} #{plan.runner.id} ({plan.reason})")
        plan.contact_before = contact_baseline(ctx, plan.runner.id, n.system_id(ctx.settings))
        return plan.token
    return None


# --- the workflow ---------------------------------------------------------------------------


def check_permissions(ctx: Context, changes: list[Change], *, locking: bool) -> None:
    """Access reviews for each verb the changes need; all refusals at once, before any write.

    ``locking``: the run changes something (in GitLab or Kubernetes), so it takes the
    namespace lock: the Lease verbs count too.
    """
    writes = {("patch", c.obj.kind) for c in changes if c.action != "unchanged"}
    writes |= {("create", c.obj.kind) for c in changes if c.action == "create"}
    if locking:
        writes |= {(verb, "Lease") for verb in LOCK_VERBS}
    needed = sorted(writes)
    namespace = ctx.settings.kubernetes.namespace
    reviewed = access_review(ctx.kube, needed, namespace)
    refused = [f"{verb} {kind}" for verb, kind, ok in reviewed if not ok]
    if refused:
        raise KubeError(
            f"the current Kubernetes user may not: {', '.join(refused)} (namespace {namespace})",
            hint="ask a cluster admin for these permissions; `bootstrap doctor` lists them all",
            status=403,
        )


NO_IN_CLUSTER_SCHEDULE = (
    "rotation.in_cluster = false: no rotation schedule, ops project or loop token is created "
    "(the scheduled job runs only on the in-cluster ops runner); renew the runner token with "
    "`bootstrap rotate --if-expiring-within 7d` from a machine with a kubeconfig, e.g. by cron"
)


@whole_run
def install(
    settings: Settings,
    *,
    token: Secret,
    environ: Mapping[str, str],
    dry_run: bool = False,
    wait: bool = True,
    timeout: float = 600.0,
    templates: bool = True,
    schedule: bool = True,
    reporter: Reporter | None = None,
    on_plan: Callable[[InstallResult], None] | None = None,
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
        templates: also publish the CI templates (``bootstrap templates publish``).
        schedule: also create or update the token rotation schedule.
        reporter: progress output.
        on_plan: called with the whole plan of a real run (the runners, the objects, the
            templates, the ops project, the schedule and the loop token) before its first
            write (the CLI prints it with the dry run's words), and again with the new plan
            when another run changed the state before the lock was held; not called when
            nothing is to change.

    Raises:
        InvalidInput, GitLabError, KubeError, WaitTimeout: mapped to exit codes by the CLI.
    """
    report = reporter or QuietReporter()
    deadline = time.monotonic() + timeout
    # Local inputs first: a missing key file must fail before any network call.
    local = load_credentials(settings, environ, PLACEHOLDER_TOKEN)
    ctx = connect(
        settings,
        token,
        reporter=report,
        need_scopes=(SCOPE_CREATE, SCOPE_MANAGE, SCOPE_READ),
        gitlab_factory=gitlab_factory,
        kube_factory=kube_factory,
    )
    if (templates or schedule) and ctx.token_info and not ctx.token_info.has("api"):
        # Commits, tags and pipeline schedules are written through the REST API.
        raise GitLabError(
            "GITLAB_TOKEN lacks the api scope, which publishing the CI templates and the "
            "rotation schedule needs",
            hint="use a token with the api scope, or pass --skip-templates --skip-schedule",
        )
    settings = ctx.settings
    kube, ns = ctx.kube, settings.kubernetes.namespace

    # Independent reads, in parallel: whether (and what) the templates would publish is known
    # before anything is written: a changed release stops a real run before any write.
    def templates_plan() -> PublishResult | None:
        if not templates:
            return None
        return publish(settings, token=token, dry_run=True, gitlab=ctx.gitlab, for_install=True)

    (namespace_exists, _), image_cache_ok, templates_planned = parallel(
        lambda read: read(),
        [
            lambda: read_namespace(kube, ns),
            lambda: image_cache_supported(kube, settings),
            templates_plan,
        ],
    )
    if not dry_run and templates_planned is not None and templates_planned.refused:
        raise InvalidInput(
            f"{templates_planned.refused}: nothing was changed", hint=templates_planned.fix
        )
    if not namespace_exists and not settings.kubernetes.create_namespace:
        raise KubeError(
            f"namespace {ns} does not exist and kubernetes.create_namespace is false",
            hint="create it, or set create_namespace = true",
        )
    if image_cache_wanted(settings) and not image_cache_ok:
        ctx.warn(IMAGE_CACHE_MISSING)

    # The rotation loop, read only: the ops project (the rotation runner belongs to it), the
    # schedule and the loop's token. A real run that changes anything does it again under
    # the lock, from what is there then.
    managed_loop = schedule and settings.rotation.in_cluster
    loop = _read_loop(ctx) if managed_loop else None
    schedule_planned = (
        _schedule(ctx, loop, environ, dry_run=True, reporter=report if dry_run else None)
        if loop is not None
        else None
    )
    loop_writes = _writes(templates_planned) or _loop_writes(loop, schedule_planned)

    if dry_run:
        planned = _plan(
            ctx, local, image_cache_ok, namespace_exists, loop, dry_run=True, others=loop_writes
        )
        _apply(ctx, planned.result.changes, dry_run=True, namespace_exists=namespace_exists)
        result = planned.result
        result.templates, result.schedule = templates_planned, schedule_planned
    else:
        # Every check (the permissions of every write and of the lock included) before the
        # first write, the namespace's: a namespace missing yet holds nothing to read.
        planned = _plan(
            ctx, local, image_cache_ok, namespace_exists, loop, dry_run=False, others=loop_writes
        )
        # The whole plan, the rest of the loop's included, as the dry run shows it.
        planned.result.templates, planned.result.schedule = templates_planned, schedule_planned
        if planned.writes_nothing and not loop_writes:
            # Nothing to change: no lock either, so a no-op run writes nothing at all.
            result = planned.result
            if templates_planned is not None:
                templates_planned.dry_run = False  # nothing to publish: done as it is
            for warning in schedule_planned.warnings if schedule_planned else []:
                report.warn(warning)
            _wait(ctx, result, deadline, wait=wait, changed=False)
        else:
            if on_plan is not None:
                # Before the first write (the namespace's): every write the run will make.
                on_plan(planned.result)
            result = _install_locked(
                ctx,
                planned,
                loop,
                templates=templates,
                token=token,
                environ=environ,
                namespace_exists=namespace_exists,
                deadline=deadline,
                wait=wait,
                on_plan=on_plan,
            )
    if result.templates is not None:
        result.warnings += [w for w in result.templates.warnings if w not in result.warnings]
    if schedule and not settings.rotation.in_cluster:
        # The committed job asks for the ops runner's tag, which only the in-cluster entry
        # has: a schedule would start pipelines that wait for a runner forever.
        result.warnings.append(NO_IN_CLUSTER_SCHEDULE)
        report.warn(NO_IN_CLUSTER_SCHEDULE)
    if result.schedule is not None:
        result.warnings += [w for w in result.schedule.warnings if w not in result.warnings]
    result.requests = requests_made(ctx)
    result.cost = billing_summary(settings).as_dict()
    if result.runner.runner_id is not None:
        result.runner_url = n.runner_page(settings, result.runner.runner_id)
    return result


def _install_locked(
    ctx: Context,
    planned: _Planned,
    loop: _Loop | None,
    *,
    templates: bool,
    token: Secret,
    environ: Mapping[str, str],
    namespace_exists: bool,
    deadline: float,
    wait: bool,
    on_plan: Callable[[InstallResult], None] | None,
) -> InstallResult:
    """Every write of a real run, under the namespace's lock (the namespace itself first).

    The lock is the Lease in the namespace, so a missing namespace is created before it
    (apply is idempotent: a concurrent install creating it too is harmless). Everything
    else — the ops project and its commit, the runners and their tokens, the objects, the
    templates, the schedule and the loop's token — is written while the lock is held, each
    write checked first (:meth:`bootstrap.lock.Lock.check`: a lost lease stops the run,
    exit 4), and each step decides again from what it reads under the lock.
    """
    settings, report = ctx.settings, ctx.reporter
    ns = settings.kubernetes.namespace
    created_namespace = None
    if not namespace_exists:
        created_namespace = _create_namespace(ctx, planned)
    waited: list[Holder] = []
    on_wait = tell_waiting(report)

    def waiting(holder: Holder) -> None:
        waited.append(holder)
        on_wait(holder)

    with locked(
        ctx.kube,
        ns,
        deadline=deadline,
        on_wait=waiting,
        duration=settings.kubernetes.lock_duration,
        guard=(ctx.gitlab,),
    ):
        before = loop
        if loop is not None:
            # The rotation runner belongs to the ops project: that project comes first.
            project, files = ensure_ops_project(settings, ctx.gitlab, ctx.group_id, reporter=report)
            loop = _Loop(project.id if project else None, loop.path, project, files)
        # Another run may have acted between our reads and the lock: plan again from what is
        # there now unless nothing the plan depended on changed.
        moved = before is not None and loop is not None and before.project_id != loop.project_id
        # This run created the ops project just now: the plan again is the same one, with the
        # project's id (nothing to show twice).
        created_here = (
            moved
            and before is not None
            and before.project_id is None
            and loop is not None
            and loop.files.project_created
        )
        if waited or moved or not _still_current(ctx, planned, loop):
            planned = _plan(
                ctx,
                planned.local,
                planned.image_cache_ok,
                True,
                loop,
                dry_run=False,
                others=True,
            )
            if on_plan is not None and (waited or not created_here):
                # Another run acted meanwhile: show what this one does now.
                on_plan(_replanned_rest(ctx, planned.result, loop, templates, token, environ))
        result = _execute(ctx, planned, loop)
        _wait(ctx, result, deadline, wait=wait)
        if templates:
            result.templates = publish(
                settings,
                token=token,
                reporter=report,
                gitlab=ctx.gitlab,
                for_install=True,
            )
        if loop is not None:
            result.schedule = _schedule(ctx, loop, environ, dry_run=False, reporter=report)
    if created_namespace is not None:
        result.changes = [created_namespace] + [
            c for c in result.changes if c.obj.kind != "Namespace"
        ]
    return result


def _replanned_rest(
    ctx: Context,
    result: InstallResult,
    loop: _Loop | None,
    templates: bool,
    token: Secret,
    environ: Mapping[str, str],
) -> InstallResult:
    """A plan made again under the lock, with what the templates and the schedule would
    change now (reads only: another run may have done them meanwhile).

    The ops project is left out: it was written under the lock just before (its lines were
    printed as it happened).
    """
    if templates:
        result.templates = publish(
            ctx.settings, token=token, dry_run=True, gitlab=ctx.gitlab, for_install=True
        )
    if loop is not None:
        result.schedule = replace(
            _schedule(ctx, loop, environ, dry_run=True, reporter=None), ops=None
        )
    return result


def _read_loop(ctx: Context) -> _Loop:
    """The ops project as it is, and what committing its files would change (reads only)."""
    project, files = ensure_ops_project(ctx.settings, ctx.gitlab, ctx.group_id, dry_run=True)
    return _Loop(project.id if project else None, ops_project(ctx.settings), project, files)


def _schedule(
    ctx: Context,
    loop: _Loop,
    environ: Mapping[str, str],
    *,
    dry_run: bool,
    reporter: Reporter | None,
) -> ScheduleResult:
    return ensure_schedule(
        ctx.settings,
        ctx.gitlab,
        ctx.group_id,
        dry_run=dry_run,
        reporter=reporter,
        ops=(loop.project, loop.files),
        environ=environ,
    )


def _writes(templates: PublishResult | None) -> bool:
    """Whether publishing the templates (as planned by a dry run) writes anything."""
    if templates is None or templates.refused:
        return False
    # catalog False: not a Catalog resource yet; publish marks it (a refusal: next time).
    return (
        templates.project_created
        or templates.changed
        or templates.tag_created
        or templates.catalog is False
    )


def _loop_writes(loop: _Loop | None, schedule: ScheduleResult | None) -> bool:
    """Whether the ops project, the schedule or the loop's token (as planned) would change."""
    if loop is not None and (loop.files.project_created or loop.files.changed):
        return True
    if schedule is None:
        return False
    token = schedule.token
    return (
        schedule.action != "unchanged"
        or bool(schedule.changes or schedule.duplicates)
        or (token is not None and (token.changed or token.expiry_changed or bool(token.revoked)))
    )


def _create_namespace(ctx: Context, planned: _Planned) -> Change:
    """Apply the namespace before anything else (its permission was checked with the plan's);
    the plan then counts it as there. Returns its change for the report."""
    [change] = [c for c in planned.result.changes if c.obj.kind == "Namespace"]
    live = ctx.kube.apply(change.obj.body)
    ctx.reporter.info(f"Created {change.ref}")
    planned.live[change.ref] = live
    planned.result.changes = [
        Change(c.obj, decide(c.obj.body, live)) if c is change else c
        for c in planned.result.changes
    ]
    return Change(change.obj, "create", change.diff)


@dataclass
class _Planned:
    """The plan of one run, and what it was made from."""

    result: InstallResult
    live: dict[str, dict[str, Any] | None]
    local: Credentials
    image_cache_ok: bool
    secret_version: str | None
    #: The rotation entry as the plan renders it (None: config.toml has none).
    ops: OpsEntry | None = None

    @property
    def writes_nothing(self) -> bool:
        runners = [self.result.runner, self.result.ops_runner]
        kept = all(
            r is None or (r.action == "reuse" and not r.updates and not r.deletes) for r in runners
        )
        return kept and all(c.action == "unchanged" for c in self.result.changes)


@dataclass(frozen=True)
class _Loop:
    """The ops project the rotation runner belongs to (``project_id`` None: a dry run that
    would create the project)."""

    project_id: int | None
    path: str
    project: Project | None
    files: OpsResult


def _secret_version(ctx: Context) -> str | None:
    secret = ctx.kube.get("Secret", n.CONFIG_SECRET, ctx.settings.kubernetes.namespace)
    return secret["metadata"].get("resourceVersion") if secret else None


def _still_current(ctx: Context, planned: _Planned, loop: _Loop | None) -> bool:
    """Whether what a plan read is still there once the lock is held.

    The config Secret (any run that stored a token changed it), and for a create the runners
    in GitLab: a run that created ours but never stored it (its answer timed out, it was
    interrupted) left a runner with our marker, which must be reset, not doubled.
    """
    if _secret_version(ctx) != planned.secret_version:
        return False
    ops = planned.result.ops_runner
    creates_ops = ops is not None and ops.action == "create"
    if creates_ops and loop and loop.project_id is not None:
        # Another install may have created it meanwhile: never two.
        return find_ops_runner(ctx, loop.project_id) is None and (
            planned.result.runner.action != "create" or find_marked_runner(ctx) is None
        )
    return planned.result.runner.action != "create" or find_marked_runner(ctx) is None


def _plan(
    ctx: Context,
    local: Credentials,
    image_cache_ok: bool,
    namespace_exists: bool,
    loop: _Loop | None,
    *,
    dry_run: bool,
    others: bool,
) -> _Planned:
    """Read the state and decide what to do with the runners and each object (reads only).

    ``others``: something else of the run writes (templates, ops project, schedule, loop
    token), so the run takes the lock whatever the runners and objects need.
    """
    settings, kube, ns = ctx.settings, ctx.kube, ctx.settings.kubernetes.namespace
    secret = kube.get("Secret", n.CONFIG_SECRET, ns) if namespace_exists else None
    stored = read_stored(secret)
    runner_plan = plan_runner(ctx, stored)
    ops_plan, ops = _plan_ops(ctx, secret, loop)

    # Render with the token we will end up with: the stored one when reused. A new token is
    # only known after the GitLab write, so the plan uses the stored one or a placeholder.
    plan_token = (
        stored.token
        if runner_plan.action == "reuse"
        else (stored.token or Secret(PLACEHOLDER_TOKEN))
    )
    expires = (
        runner_plan.runner.token_expires_at if runner_plan.runner else None
    ) or stored.expires_at
    objects = render_objects(
        settings, local, plan_token, runner_plan.runner_id, expires, image_cache_ok, ops
    )
    live = read_live(ctx, objects, namespace_exists)
    new_token = runner_plan.action != "reuse" or (
        ops_plan is not None and ops_plan.action != "reuse"
    )
    changes = [_change(obj, live.get(obj.ref), new_token) for obj in objects]
    result = InstallResult(
        dry_run=dry_run,
        runner=runner_plan,
        changes=changes,
        warnings=ctx.warnings,
        ops_runner=ops_plan,
    )
    version = secret["metadata"].get("resourceVersion") if secret else None
    planned = _Planned(result, live, local, image_cache_ok, version, ops)
    check_permissions(ctx, changes, locking=others or not planned.writes_nothing)
    return planned


def _plan_ops(
    ctx: Context, secret: dict[str, Any] | None, loop: _Loop | None
) -> tuple[RunnerPlan | None, OpsEntry | None]:
    """The rotation runner's plan, and its config.toml entry as the plan renders it.

    Without a managed loop (``--skip-schedule``) an entry already stored is kept as it is.
    """
    stored = read_stored(secret, OPS_ENTRY)
    if loop is None:
        return None, stored_ops_entry(secret)
    if loop.project_id is None:  # dry run: the ops project does not exist yet
        plan = RunnerPlan("create", "no ops runner for this cluster and namespace yet")
    else:
        plan = plan_runner(ctx, stored, ops_kind(ctx, loop.project_id, loop.path))
    token = (
        stored.token if plan.action == "reuse" else (stored.token or Secret(PLACEHOLDER_OPS_TOKEN))
    )
    expires = (plan.runner.token_expires_at if plan.runner else None) or stored.expires_at
    return plan, OpsEntry(token, plan.runner_id, expires)


def _execute(ctx: Context, planned: _Planned, loop: _Loop | None) -> InstallResult:
    """Act on a plan: the runners first (storing new tokens at once), then the objects.

    The group runner comes first; when the rotation runner's create or reset then fails,
    the group runner's new token is still stored before the error is raised (its old one is
    dead already), and the next run repairs the rotation runner.
    """
    result = planned.result
    runner_plan, ops_plan = result.runner, result.ops_runner
    new_token = execute_runner(ctx, runner_plan)
    new_ops: NewToken | None = None
    failure: GitLabError | None = None
    if ops_plan is not None and loop is not None and loop.project_id is not None:
        try:
            new_ops = execute_runner(ctx, ops_plan, ops_kind(ctx, loop.project_id, loop.path))
        except GitLabError as exc:
            failure = exc
    stored_now = _store_tokens(ctx, planned, new_token, new_ops)
    if failure is not None:
        raise failure
    for label, plan in (("runner", runner_plan), ("ops runner", ops_plan)):
        if plan is not None:
            _delete_duplicates(ctx, plan, label)
    rest = [c for c in result.changes if not (c.obj.kind == "Secret" and c.obj.name in stored_now)]
    _apply(ctx, rest, dry_run=False, namespace_exists=True)
    return result


def _delete_duplicates(ctx: Context, plan: RunnerPlan, label: str) -> None:
    """Delete the other runners carrying the plan's marker, once the tokens are stored.

    Under the lock, each delete checked against it like every write; the plan that named
    them was made under the lock too, or from a Secret unchanged since (a run adopting one
    of them would have stored it there).

    A delete GitLab refuses (403) is warned about, naming what to do, and the run goes on:
    the duplicate holds no token any pod uses, and failing here would fail every install
    (and leave the objects unapplied) until someone with more rights acts.
    """
    for runner in plan.deletes:
        try:
            gone = ctx.gitlab.delete_runner(runner.id)
        except GitLabError as exc:
            if exc.status != 403:
                raise
            plan.refused[runner.id] = str(exc)
            ctx.warn(_refused_delete(label, runner, plan, exc))
            continue
        what = "Deleted" if gone else "Found already deleted"
        ctx.reporter.info(f"{what} {label} #{runner.id} ({plan.delete_reason})")


#: GitLab's 403 for a project runner assigned to more projects (``authenticate_delete_runner!``).
MORE_THAN_ONE_PROJECT = "Runner associated with more than one project"


def _refused_delete(label: str, runner: Runner, plan: RunnerPlan, exc: GitLabError) -> str:
    """The warning for a duplicate GitLab would not delete: which, why, and who can."""
    if MORE_THAN_ONE_PROJECT in str(exc):
        fix = (
            "it is assigned to other projects too: unassign it there (each project's Settings "
            "> CI/CD > Runners), or have a GitLab administrator delete it (Admin area > CI/CD "
            "> Runners)"
        )
    else:
        fix = (
            "this token's user may not delete it: have an Owner of its group (a project "
            "runner: a Maintainer of its project) or a GitLab administrator delete it"
        )
    return (
        f"could not delete {label} #{runner.id} ({runner.description}), a duplicate of "
        f"#{plan.runner_id}: {exc}; it is left in place (no pod holds its token). {fix}; "
        "the next install tries again"
    )


def _store_tokens(
    ctx: Context, planned: _Planned, new_token: NewToken | None, new_ops: NewToken | None
) -> set[str]:
    """Write new tokens into the config Secret at once; the names of what was written.

    When that write fails, a runner created just now is deleted again (nothing holds its
    token), or left for adoption by its marker: see :func:`_undo_creates`.
    """
    if new_token is None and new_ops is None:
        return set()
    result, live, report = planned.result, planned.live, ctx.reporter
    stored = read_stored(live.get(f"Secret/{n.CONFIG_SECRET}"))
    runner = result.runner
    token = new_token.token if new_token else (stored.token or Secret(PLACEHOLDER_TOKEN))
    runner_id = new_token.runner_id if new_token else runner.runner_id
    expires = (
        new_token.expires_at
        if new_token
        else (runner.runner.token_expires_at if runner.runner else None) or stored.expires_at
    )
    ops = planned.ops
    if new_ops is not None:
        ops = OpsEntry(new_ops.token, new_ops.runner_id, new_ops.expires_at)
    objects = render_objects(
        ctx.settings, planned.local, token, runner_id, expires, planned.image_cache_ok, ops
    )
    refreshed = {obj.ref: obj for obj in objects}
    result.changes = [
        Change(refreshed[c.ref], decide(refreshed[c.ref].body, live.get(c.ref)), c.diff)
        for c in result.changes
    ]
    config = next(
        c for c in result.changes if c.obj.kind == "Secret" and c.obj.name == n.CONFIG_SECRET
    )
    try:
        ctx.kube.apply(config.obj.body)
    except KubeError as failure:
        made = [
            (t.runner_id, kind)
            for t, p, kind in (
                (new_token, runner, "runner"),
                (new_ops, result.ops_runner, "ops runner"),
            )
            if t is not None and p is not None and p.action == "create"
        ]
        _undo_creates(ctx, made, failure)
        raise
    report.info(f"Stored the runner token in Secret {n.CONFIG_SECRET}")
    return {n.CONFIG_SECRET}


def _undo_creates(ctx: Context, made: list[tuple[int, str]], failure: KubeError) -> None:
    """After the config Secret write failed: delete again each runner created just now
    (nothing holds its token), or say why it is left and who adopts it.

    The delete is never sent past the lock's write guard, and not tried at all once the lock
    is lost (:class:`LockLost`): the run that holds the lock now re-read GitLab's runners by
    marker when it took the lock (``_still_current``, or its re-plan after waiting) and may
    have adopted this very runner — reset its token and stored it. Deleting it then would
    kill the runner that run deploys. Left alone, the runner is not an orphan for good: it
    carries this installation's marker (the ops runner: the ops project's runner marker),
    and every install whose Secret names no usable runner finds a marked one and resets its
    token by id instead of creating another. (A create that reached GitLab after the new
    holder's re-read leaves two marked runners: the next install deletes the one the Secret
    does not record, see :func:`plan_runner`.) A delete that fails is left the same way;
    the Secret's error is the one raised.
    """
    for runner_id, kind in made:
        if isinstance(failure, LockLost):
            ctx.reporter.warn(
                f"Left {kind} #{runner_id}: its token could not be stored and the lock was "
                "lost; it carries this installation's marker, so the run holding the lock now "
                "or the next install adopts it (resets its token by id), never a second one"
            )
            continue
        try:
            ctx.gitlab.delete_runner(runner_id)
        except (GitLabError, KubeError) as exc:
            ctx.reporter.warn(
                f"Could not delete {kind} #{runner_id} again ({exc}); it carries this "
                "installation's marker: the next install adopts it (resets its token by id)"
            )
            continue
        ctx.reporter.warn(f"Deleted {kind} #{runner_id} again: its token could not be stored")


def _wait(
    ctx: Context, result: InstallResult, deadline: float, *, wait: bool, changed: bool = True
) -> None:
    """Wait for the rollout and the runner; a run that changed nothing looks only once."""
    if not wait:
        return
    result.rollout = wait_rollout(ctx, deadline)
    runner_id = result.runner.runner_id
    if runner_id is not None:
        result.online = wait_online(
            ctx,
            runner_id,
            deadline,
            system_id=n.system_id(ctx.settings),
            after=result.runner.contact_before,
            once=not changed,
        )
    ops = result.ops_runner
    if ops is not None and ops.runner_id is not None:
        # The same manager pod polls for the rotation entry, with the same system id.
        wait_online(
            ctx,
            ops.runner_id,
            deadline,
            system_id=n.system_id(ctx.settings),
            after=ops.contact_before,
            once=not changed,
        )


def _change(obj: KubeObject, live: dict[str, Any] | None, new_token: bool) -> Change:
    action = decide(obj.body, live)
    if obj.kind == "Secret" and obj.name == n.CONFIG_SECRET and new_token:
        action = "create" if live is None else "update"
    # Creates carry their content too: the plan shows it on request (--diff).
    return Change(obj, action, diff(obj.body, live) if action != "unchanged" else "")


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

        parallel(apply, by_wave[wave])
        if not dry_run:
            # After the wave, in plan order: the same lines on every run.
            for change in by_wave[wave]:
                verb = "Created" if change.action == "create" else "Updated"
                ctx.reporter.info(f"{verb} {change.ref}")
