"""The scheduled rotation: a pipeline schedule on the ops project, created or updated in place.

The ops project (see :mod:`bootstrap.ops`) holds the rotation job and the tool itself;
``install`` creates it. The schedule is found again by its description, so a second
``install`` updates it instead of adding another. It carries no variables: the job's
settings are in the committed ``.gitlab-ci.yml`` (GitLab.com's "pipeline variables: no one
allowed" refuses schedule variables with 403, even to an Owner). A scheduled pipeline runs
as the schedule's owner, so install takes the schedule over when someone else owns it or
its owner's account is gone (a schedule without an owner creates no pipeline). The project's
CI/CD variables ``BOOTSTRAP_TEMPLATES_PROJECT`` and ``BOOTSTRAP_TEMPLATES_VERSION`` tell that
pipeline where the cache-gc component lives.

The GitLab token the job uses is the ops project's masked, hidden, protected CI/CD variable
``GITLAB_TOKEN``, a group access token :mod:`bootstrap.looptoken` creates and stores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bootstrap.config import Settings
from bootstrap.errors import GitLabError
from bootstrap.gitlab import GitLab, Project, Schedule
from bootstrap.looptoken import LoopTokenResult, ensure_loop_token
from bootstrap.ops import OpsResult, ensure_ops_project, ops_project
from bootstrap.render import names as n
from bootstrap.report import QuietReporter, Reporter

#: Schedule variables that earlier versions set; they would override the committed file.
STALE_VARIABLES = (
    "BOOTSTRAP_TASK",
    "BOOTSTRAP_GROUP",
    "BOOTSTRAP_NAMESPACE",
    "BOOTSTRAP_ROTATE_BEFORE",
    "BOOTSTRAP_RUNNER_TAG",
)


@dataclass
class ScheduleResult:
    """What happened to the rotation schedule and its ops project."""

    project: str
    action: str  # created | updated | unchanged
    schedule_id: int | None = None
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ops: OpsResult | None = None
    #: The loop's own GitLab token (the ops project's GITLAB_TOKEN).
    token: LoopTokenResult | None = None
    #: Duplicate schedules deleted (a dry run: that would be deleted).
    duplicates: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "action": self.action,
            "schedule_id": self.schedule_id,
            "changes": self.changes,
            "warnings": self.warnings,
            "ops": self.ops.as_dict() if self.ops else None,
            "token": self.token.as_dict() if self.token else None,
            "duplicates": self.duplicates,
        }


def description(settings: Settings) -> str:
    """The schedule's description; it also identifies the schedule on later runs."""
    return (
        f"gitlab-eci-bootstrap: rotate the runner token of {settings.gitlab.group} "
        f"in {settings.cluster_id}/{settings.kubernetes.namespace}"
    )


def ensure_schedule(
    settings: Settings,
    gitlab: GitLab,
    group_id: int,
    *,
    dry_run: bool = False,
    reporter: Reporter | None = None,
    ops: tuple[Project | None, OpsResult] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ScheduleResult:
    """Create the ops project and the rotation schedule, or update them in place; never a
    second schedule.

    Args:
        ops: the ops project and its files when the caller ensured them already.
        environ: where ``[rotation] token_env`` is read.
    """
    report = reporter or QuietReporter()
    path = ops_project(settings)
    project, files = ops or ensure_ops_project(
        settings, gitlab, group_id, dry_run=dry_run, reporter=report
    )
    wanted: dict[str, Any] = {
        "description": description(settings),
        "ref": (project.default_branch if project else None) or "main",
        "cron": settings.rotation.cron,
        "cron_timezone": settings.rotation.timezone,
        "active": True,
    }
    if project is None:  # a dry run that would create the project
        result = ScheduleResult(path, "created", changes=sorted(wanted), ops=files)
        result.token = ensure_loop_token(
            settings, gitlab, group_id, None, environ=environ or {}, dry_run=True
        )
        return result
    mine = sorted(
        (s for s in gitlab.schedules(project.id) if s.description == wanted["description"]),
        key=lambda s: (any(k in STALE_VARIABLES for k in s.variables), s.id),
    )
    existing = mine[0] if mine else None
    for extra in mine[1:]:  # left by a run that stopped while replacing one
        if not dry_run:
            gitlab.delete_schedule(project.id, extra.id)
            report.info(f"Deleted the duplicate rotation schedule #{extra.id} in {path}")
    if existing is None:
        result = ScheduleResult(path, "created", changes=sorted(wanted), ops=files)
        if not dry_run:
            created = gitlab.create_schedule(project.id, wanted)
            result.schedule_id = created.id
            report.info(f"Created the rotation schedule in {path} ({settings.rotation.cron})")
    else:
        result = _update(settings, gitlab, project.id, existing, wanted, dry_run, report)
        result.ops = files
    result.duplicates = [extra.id for extra in mine[1:]]
    _check_project(settings, gitlab, project.id, result, dry_run=dry_run, reporter=report)
    result.token = ensure_loop_token(
        settings,
        gitlab,
        group_id,
        project,
        environ=environ or {},
        dry_run=dry_run,
        reporter=report,
    )
    result.warnings += result.token.warnings
    return result


def _update(
    settings: Settings,
    gitlab: GitLab,
    project_id: int,
    existing: Schedule,
    wanted: dict[str, Any],
    dry_run: bool,
    report: Reporter,
) -> ScheduleResult:
    """Bring an existing schedule in line: owner, attributes, no stale variables."""
    path = ops_project(settings)
    changed = {k: v for k, v in wanted.items() if not _same(k, _live(existing, k), v)}
    stale = sorted(k for k in existing.variables if k in STALE_VARIABLES)
    _user_id, username, _admin = gitlab.current_user()
    # The pipeline runs as the schedule's owner; one without an owner runs nothing.
    take_over = existing.owner != username
    changes = sorted(changed) + [f"variable {k} (removed)" for k in stale]
    if take_over:
        changes.insert(0, "owner")
    result = ScheduleResult(
        path, "updated" if changes else "unchanged", schedule_id=existing.id, changes=changes
    )
    if dry_run or not changes:
        return result
    if take_over:
        gitlab.take_schedule_ownership(project_id, existing.id)
        report.info(f"Took over the rotation schedule from {existing.owner or 'a deleted user'}")
    if changed:
        gitlab.update_schedule(project_id, existing.id, changed)
    try:
        for key in stale:
            gitlab.delete_schedule_variable(project_id, existing.id, key)
    except GitLabError as exc:
        if exc.status != 403:
            raise
        # Where pipeline variables are not allowed, their removal is refused too: replace
        # the schedule (deleting one takes only admin_pipeline_schedule). Create first, so
        # a failure in between leaves two (the next run keeps the clean one), never none.
        created = gitlab.create_schedule(project_id, wanted)
        gitlab.delete_schedule(project_id, existing.id)
        result.schedule_id = created.id
        report.info(
            f"Replaced the rotation schedule #{existing.id} with #{created.id}: its variables "
            "could not be removed (pipeline variables are not allowed in this project)"
        )
    report.info(f"Updated the rotation schedule in {path}: {', '.join(result.changes)}")
    return result


def _same(key: str, live: Any, wanted: Any) -> bool:
    """GitLab stores a short ref as refs/heads/<branch>: compare refs in that form."""
    if key == "ref":
        return _full_ref(str(live)) == _full_ref(str(wanted))
    return bool(live == wanted)


def _full_ref(ref: str) -> str:
    return ref if ref.startswith("refs/") else f"refs/heads/{ref}"


def _live(schedule: Schedule, key: str) -> Any:
    return {
        "description": schedule.description,
        "ref": schedule.ref,
        "cron": schedule.cron,
        "cron_timezone": schedule.cron_timezone,
        "active": schedule.active,
    }[key]


def _check_project(
    settings: Settings,
    gitlab: GitLab,
    project_id: int,
    result: ScheduleResult,
    *,
    dry_run: bool,
    reporter: Reporter,
) -> None:
    """The templates variables point at the components."""
    templates = {
        "BOOTSTRAP_TEMPLATES_PROJECT": f"{settings.gitlab.group}/{settings.templates.project}",
        # The tag publish makes: a component reference names it exactly.
        "BOOTSTRAP_TEMPLATES_VERSION": f"v{settings.templates.version}",
    }
    for key, value in templates.items():
        live = gitlab.project_variable(project_id, key)
        if live is not None and live.get("value") == value:
            continue
        result.changes.append(key)
        if not dry_run:
            gitlab.set_project_variable(project_id, key, value, exists=live is not None)
    for warning in result.warnings:
        reporter.warn(warning)


def remove_schedule(
    settings: Settings,
    gitlab: GitLab,
    *,
    dry_run: bool = False,
    reporter: Reporter | None = None,
) -> str | None:
    """Delete the rotation schedule (uninstall). Returns what happened, None when none was.

    A token that may not delete it only earns a warning naming the schedule: the runner is
    gone either way, and until someone deletes the schedule its daily job fails (exit 4,
    "no runner is installed").
    """
    report = reporter or QuietReporter()
    path = ops_project(settings)
    project = gitlab.project(path)
    if project is None:
        return None
    mine = description(settings)
    existing = next((s for s in gitlab.schedules(project.id) if s.description == mine), None)
    if existing is None:
        return None
    if dry_run:
        return f"would delete the rotation schedule #{existing.id} in {path}"
    try:
        gitlab.delete_schedule(project.id, existing.id)
    except GitLabError as exc:
        if exc.status not in (401, 403):
            raise
        message = f"could not delete the rotation schedule #{existing.id} in {path}: {exc}"
        report.warn(message)
        return message
    report.info(f"Deleted the rotation schedule #{existing.id} in {path}")
    return f"deleted the rotation schedule #{existing.id} in {path}"


def remove_ops_runner(
    settings: Settings,
    gitlab: GitLab,
    runner_id: int | None,
    *,
    dry_run: bool = False,
    reporter: Reporter | None = None,
) -> str | None:
    """Delete the ops project's rotation runners (uninstall, after the runner pods are gone).

    ``runner_id``: the one the config Secret records; every other one carrying its marker
    among the ops project's runners goes too (two installs that each created one leave
    two). Returns what happened, None when there was none.
    """
    report = reporter or QuietReporter()
    recorded = gitlab.runner(runner_id) if runner_id is not None else None
    project = gitlab.project(ops_project(settings))
    marker = n.ops_runner_marker(settings)
    listed = gitlab.project_runners(project.id) if project else []
    details = [gitlab.runner(r.id) for r in listed if recorded is None or r.id != recorded.id]
    runners = [recorded] if recorded else []
    runners += [r for r in details if r and marker in r.maintenance_note]
    if not runners:
        return None
    what = ", ".join(f"#{r.id} ({r.description})" for r in runners)
    noun = "ops runner" if len(runners) == 1 else "ops runners"
    if dry_run:
        return f"would delete {noun} {what}"
    for runner in runners:
        gitlab.delete_runner(runner.id)
        report.info(f"Deleted ops runner #{runner.id}")
    return f"deleted {noun} {what}"


def find_schedule(settings: Settings, gitlab: GitLab) -> Schedule | None:
    """The rotation schedule of this group, cluster and namespace (None when none)."""
    project = gitlab.project(ops_project(settings))
    if project is None:
        return None
    mine = description(settings)
    return next((s for s in gitlab.schedules(project.id) if s.description == mine), None)
