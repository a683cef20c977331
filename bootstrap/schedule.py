"""The scheduled rotation: a pipeline schedule on the ops project, created or updated in place.

The ops project (``rotation.project``, default ``<group>/gitlab-eci-bootstrap``) holds a
copy of this repository: its ``.gitlab-ci.yml`` has the job that runs
``bootstrap rotate --if-expiring-within …`` on the schedule, inside the cluster as the
ServiceAccount ``gitlab-runner-rotator``, and the cache-gc component. The schedule is found
again by its description, so a second ``install`` updates it instead of adding another; its
variables name the task, the group and the namespace. The project's CI/CD variables
``BOOTSTRAP_TEMPLATES_PROJECT`` and ``BOOTSTRAP_TEMPLATES_VERSION`` tell that pipeline where
the cache-gc component lives.

The GitLab token the job uses is the ops project's masked, protected CI/CD variable
``GITLAB_TOKEN``; this module only checks that it is there and says how to set it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bootstrap.config import Settings
from bootstrap.errors import GitLabError
from bootstrap.gitlab import GitLab, Schedule
from bootstrap.report import QuietReporter, Reporter

DEFAULT_OPS_PROJECT = "gitlab-eci-bootstrap"
TOKEN_VARIABLE = "GITLAB_TOKEN"  # noqa: S105 - a variable name, not a token


@dataclass
class ScheduleResult:
    """What happened to the rotation schedule."""

    project: str
    action: str  # created | updated | unchanged | skipped
    schedule_id: int | None = None
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "action": self.action,
            "schedule_id": self.schedule_id,
            "changes": self.changes,
            "warnings": self.warnings,
        }


def ops_project(settings: Settings) -> str:
    """The full path of the project that holds the schedule."""
    return settings.rotation.project or f"{settings.gitlab.group}/{DEFAULT_OPS_PROJECT}"


def description(settings: Settings) -> str:
    """The schedule's description; it also identifies the schedule on later runs."""
    return (
        f"gitlab-eci-bootstrap: rotate the runner token of {settings.gitlab.group} "
        f"in {settings.cluster_id}/{settings.kubernetes.namespace}"
    )


def schedule_variables(settings: Settings) -> dict[str, str]:
    """The variables the scheduled pipeline reads (see this repository's .gitlab-ci.yml)."""
    return {
        "BOOTSTRAP_TASK": "rotate",
        "BOOTSTRAP_GROUP": settings.gitlab.group,
        "BOOTSTRAP_NAMESPACE": settings.kubernetes.namespace,
        "BOOTSTRAP_ROTATE_BEFORE": settings.rotation.rotate_before,
        # One of the runner's tags is enough for the job to land on it.
        "BOOTSTRAP_RUNNER_TAG": settings.gitlab.tags[0] if settings.gitlab.tags else "",
    }


def ensure_schedule(
    settings: Settings,
    gitlab: GitLab,
    *,
    dry_run: bool = False,
    reporter: Reporter | None = None,
) -> ScheduleResult:
    """Create the rotation schedule, or update it in place; never a second one.

    A missing ops project is not an error: the result says ``skipped`` and how to fix it.
    """
    report = reporter or QuietReporter()
    path = ops_project(settings)
    project = gitlab.project(path)
    if project is None:
        result = ScheduleResult(path, "skipped")
        result.warnings.append(
            f"no rotation schedule: project {path} does not exist. Push this repository "
            "there (or set [rotation] project), then run install again, or pass --skip-schedule"
        )
        report.warn(result.warnings[-1])
        return result
    wanted: dict[str, Any] = {
        "description": description(settings),
        "ref": project.default_branch or "main",
        "cron": settings.rotation.cron,
        "cron_timezone": settings.rotation.timezone,
        "active": True,
    }
    variables = schedule_variables(settings)
    existing = next(
        (s for s in gitlab.schedules(project.id) if s.description == wanted["description"]), None
    )
    if existing is None:
        result = ScheduleResult(path, "created", changes=sorted(wanted) + sorted(variables))
        if not dry_run:
            created = gitlab.create_schedule(project.id, wanted)
            result.schedule_id = created.id
            _set_variables(gitlab, project.id, created, variables)
            report.info(f"Created the rotation schedule in {path} ({settings.rotation.cron})")
    else:
        changed = {k: v for k, v in wanted.items() if not _same(k, _live(existing, k), v)}
        stale = sorted(k for k, v in variables.items() if existing.variables.get(k) != v)
        result = ScheduleResult(
            path,
            "updated" if changed or stale else "unchanged",
            schedule_id=existing.id,
            changes=sorted(changed) + stale,
        )
        if not dry_run and (changed or stale):
            # Only a schedule's owner may change it; take it over when someone else made it.
            _user_id, username, _admin = gitlab.current_user()
            if existing.owner and existing.owner != username:
                gitlab.take_schedule_ownership(project.id, existing.id)
                report.info(f"Took over the rotation schedule from {existing.owner}")
            if changed:
                gitlab.update_schedule(project.id, existing.id, changed)
            _set_variables(gitlab, project.id, existing, {k: variables[k] for k in stale})
            if changed or stale:
                report.info(f"Updated the rotation schedule in {path}: {', '.join(result.changes)}")
    _check_project(settings, gitlab, project.id, result, dry_run=dry_run, reporter=report)
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


def _set_variables(
    gitlab: GitLab, project_id: int, schedule: Schedule, values: dict[str, str]
) -> None:
    for key, value in values.items():
        exists = key in schedule.variables
        gitlab.set_schedule_variable(project_id, schedule.id, key, value, exists=exists)


def _check_project(
    settings: Settings,
    gitlab: GitLab,
    project_id: int,
    result: ScheduleResult,
    *,
    dry_run: bool,
    reporter: Reporter,
) -> None:
    """The token variable must exist; the templates variables point at the components."""
    try:
        token = gitlab.project_variable(project_id, TOKEN_VARIABLE)
    except GitLabError as exc:
        if exc.status != 403:
            raise
        result.warnings.append(
            f"cannot read the CI/CD variables of {result.project} (needs the Maintainer "
            f"role): check by hand that {TOKEN_VARIABLE} is set there, masked and protected"
        )
        for warning in result.warnings:
            reporter.warn(warning)
        return
    if token is None:
        result.warnings.append(
            f"{result.project} has no CI/CD variable {TOKEN_VARIABLE}: the scheduled rotation "
            "cannot run. Add it (masked, protected) with a token of a group Owner that has the "
            "manage_runner and read_api scopes"
        )
    elif not (token.get("masked") and token.get("protected")):
        result.warnings.append(
            f"{result.project}'s CI/CD variable {TOKEN_VARIABLE} should be masked and protected"
        )
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
