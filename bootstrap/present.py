"""Text and JSON views of workflow results (pure: the CLI prints what these return)."""

from __future__ import annotations

import json
from typing import Any

from bootstrap import __version__
from bootstrap.doctor import DoctorResult
from bootstrap.install import InstallResult, RunnerPlan
from bootstrap.looptoken import LoopTokenResult
from bootstrap.ops import OpsResult
from bootstrap.publish import PublishResult
from bootstrap.rotate import RotateResult
from bootstrap.schedule import ScheduleResult
from bootstrap.status import StatusResult
from bootstrap.uninstall import UninstallResult

_SIGN = {"create": "+", "update": "~", "unchanged": "=", "delete": "-"}


def install_text(result: InstallResult, *, show_content: bool = False, args: str = "") -> str:
    """The plan (dry run), or what was done and how to use the runner.

    Args:
        show_content: also list every field of what is created (``--diff``).
        args: the flags that name this installation (``--group G``…), for the next commands.
    """
    if result.dry_run:
        return plan_text(result, show_content=show_content) + "Dry run: nothing was changed.\n"
    return done_text(result, args=args)


def plan_text(result: InstallResult, *, show_content: bool = False) -> str:
    """What install does, in GitLab and in Kubernetes, the changed fields old -> new.

    The dry run prints it, and so does the real run before it acts (same words). Secret
    values never appear: see :func:`bootstrap.plan.diff`.
    """
    runner = result.runner
    lines = []
    rid = f" #{runner.runner_id}" if runner.runner_id is not None else ""
    verb = {"create": "create", "reuse": "keep", "reset": "reset the token of"}[runner.action]
    lines.append(f"GitLab: {verb} runner{rid} — {runner.reason}")
    if runner.action == "create" and show_content:
        lines.extend(f"      + {k}: {_value(v)}" for k, v in sorted(runner.attributes.items()))
    if runner.updates:
        lines.append(f"GitLab: update runner{rid}:")
        previous = runner.previous
        lines.extend(
            f"      ~ {k}: {_value(previous[k])} -> {_value(v)}"
            for k, v in sorted(runner.updates.items())
        )
    lines += _delete_lines(runner, "runner")
    ops = result.ops_runner
    if ops is not None:
        oid = f" #{ops.runner_id}" if ops.runner_id is not None else ""
        verb = {"create": "create", "reuse": "keep", "reset": "reset the token of"}[ops.action]
        lines.append(f"GitLab: {verb} ops runner{oid} (the rotation's own) — {ops.reason}")
        if ops.updates:
            lines.append(f"GitLab: update ops runner{oid}:")
            before = ops.previous
            lines.extend(
                f"      ~ {k}: {_value(before[k])} -> {_value(v)}"
                for k, v in sorted(ops.updates.items())
            )
        lines += _delete_lines(ops, "ops runner")
    if result.templates is not None:
        lines.append(_templates_line(result.templates))
    if result.schedule is not None:
        # A plan's words ("would …"), the real run's plan before it acts too.
        if result.schedule.ops is not None:
            lines.append(_ops_line(result.schedule.ops, dry_run=True))
        lines.append(_schedule_line(result.schedule, dry_run=True))
        if result.schedule.token is not None:
            lines.append(_loop_token_line(result.schedule.token, dry_run=True))
    lines.append("Kubernetes:")
    for change in result.changes:
        lines.append(f"  {_SIGN[change.action]} {change.ref:<48} {change.action}")
        if change.diff and (change.action == "update" or show_content):
            lines.extend("      " + line for line in change.diff.rstrip("\n").splitlines())
    lines.append(f"Plan: {_tally(result, done=False)}.")
    return "\n".join(lines) + "\n"


def _delete_lines(plan: RunnerPlan, label: str) -> list[str]:
    return [
        f"GitLab: delete {label} #{r.id} ({r.description}) — {plan.delete_reason}"
        for r in plan.deletes
    ]


def done_text(result: InstallResult, *, args: str = "") -> str:
    """After a real run: the totals, then how to use the runner (the steps were printed as
    they happened, so they are not repeated)."""
    lines = [f"Done: {_tally(result, done=True)}."]
    if result.templates is not None:
        lines.append(_templates_line(result.templates))
    if result.schedule is not None:
        if result.schedule.ops is not None:
            lines.append(_ops_line(result.schedule.ops, dry_run=False))
        lines.append(_schedule_line(result.schedule, dry_run=False))
        if result.schedule.token is not None:
            lines.append(_loop_token_line(result.schedule.token, dry_run=False))
    lines += ["", *next_steps(result, args=args)]
    return "\n".join(lines) + "\n"


def next_steps(result: InstallResult, *, args: str = "") -> list[str]:
    """The runner's page, the lines a project pastes, and the commands that come next."""
    runner = result.runner
    state = {True: "online", False: "not online yet", None: "not waited for"}[result.online]
    lines = [f"Runner #{runner.runner_id} ({state}): {result.runner_url}"]
    tags = ", ".join(sorted(runner.attributes.get("tag_list") or []))
    lines += ["", "Run a job on it: add to the job in .gitlab-ci.yml", f"  tags: [{tags}]"]
    if result.templates is not None and result.templates.snippet:
        project = result.templates.project
        lines += ["", f"Use the CI templates ({project} {result.templates.tag}):"]
        lines += ["  " + line if line else "" for line in result.templates.snippet.splitlines()]
    suffix = f" {args}" if args else ""
    lines += [
        "",
        "Next:",
        f"  bootstrap status{suffix}              # health, drift, token expiry",
        f"  bootstrap rotate{suffix} --dry-run    # what a token rotation would do",
        f"  bootstrap uninstall{suffix} --dry-run # what uninstall would delete",
    ]
    return lines


def _tally(result: InstallResult, *, done: bool) -> str:
    """``3 to create, 1 to update, 8 unchanged (GitLab: …; Kubernetes: …)``."""
    gitlab, kube = result.gitlab_counts(), result.counts()
    words = (
        {"create": "created", "update": "updated", "delete": "deleted", "unchanged": "unchanged"}
        if done
        else {
            "create": "to create",
            "update": "to update",
            "delete": "to delete",
            "unchanged": "unchanged",
        }
    )

    def part(counts: dict[str, int], *, all_three: bool) -> str:
        # Deletes (duplicate runners) only when there are any.
        shown = [
            k
            for k in ("create", "update", "delete", "unchanged")
            if counts.get(k) or (all_three and k != "delete")
        ]
        return ", ".join(f"{counts.get(k, 0)} {words[k]}" for k in shown) or "nothing"

    total = {k: gitlab.get(k, 0) + kube.get(k, 0) for k in words}
    return (
        f"{part(total, all_three=True)} (GitLab: {part(gitlab, all_three=False)}; "
        f"Kubernetes: {part(kube, all_three=False)})"
    )


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _templates_line(result: PublishResult) -> str:
    """What publishing does (a plan: ``would …``) or did: the project, the commit, the tag."""
    create, commit, tag = (
        ("would create", "would commit", "would tag")
        if result.dry_run
        else ("created", "committed", "tagged")
    )
    if result.refused:
        return f"Templates: {result.project}: refused: {result.refused}\n      fix: {result.fix}"
    # A plan marks an existing project a CI/CD Catalog resource when it is none yet.
    mark = result.dry_run and result.catalog is False
    if not (result.project_created or result.changed or result.tag_created or mark):
        return f"Templates: {result.project} {result.tag} is up to date"
    parts = [f"{create} the project"] if result.project_created else []
    files = len(result.created) + len(result.updated) + len(result.deleted)
    parts.append(f"{commit} {files} files" if result.changed else "no file changed")
    if result.tag_created:
        parts.append(f"{tag} {result.tag}")
    if mark:
        parts.append("would mark it a CI/CD Catalog resource")
    return f"Templates: {result.project}: " + ", ".join(parts)


def _ops_line(result: OpsResult, *, dry_run: bool) -> str:
    """What happened to the ops project: created, and its files committed."""
    create, commit = ("would create", "would commit") if dry_run else ("created", "committed")
    parts = [f"{create} the project (private)"] if result.project_created else []
    files = len(result.created) + len(result.updated) + len(result.deleted)
    what = f"the rotation pipeline and tool {__version__}"
    if files:
        sha = f" ({result.commit[:8]})" if result.commit else ""
        parts.append(f"{commit} {what}: {files} files{sha}")
    if not parts:
        return f"Ops project: {result.project} holds {what}"
    return f"Ops project: {result.project}: " + ", ".join(parts)


def _schedule_line(result: ScheduleResult, *, dry_run: bool) -> str:
    verb = {"created": "create", "updated": "update"}.get(result.action)
    if verb is None:
        return f"Schedule: {result.project} rotation schedule is up to date"
    done = f"would {verb}" if dry_run else result.action
    return f"Schedule: {done} the rotation schedule in {result.project}"


def _loop_token_line(result: LoopTokenResult, *, dry_run: bool) -> str:
    """The loop's credential: which token, where it is stored; never its value."""
    where = f"{result.variable} (masked, hidden, protected)"
    token = f"group access token #{result.token_id}" if result.token_id else result.kind
    expiry = f", expires {result.expires_at}" if result.expires_at else ""
    if result.action == "unchanged":
        return f"Loop token: {token}{expiry} in {where} is valid"
    if result.action in ("unavailable", "skipped"):
        return f"Loop token: not set ({result.warnings[0] if result.warnings else result.action})"
    verb = {
        "created": "create a group access token (Owner, api) and store it",
        "replaced": "replace the loop token with a new group access token and store it",
        "stored": f"store {result.kind}",
    }[result.action]
    why = f" ({result.reason})" if result.reason else ""
    if dry_run:
        return f"Loop token: would {verb} as {where}{why}"
    return f"Loop token: {token}{expiry} stored as {where}{why}"


def rotate_text(result: RotateResult) -> str:
    """One line per runner on what rotate decided, with the old and new expiry."""
    text = _rotate_line(result, f"runner #{result.runner_id}")
    if result.ops is not None:
        text += _rotate_line(result.ops, f"ops runner #{result.ops.runner_id}")
    renew = result.loop_token
    if renew is not None:
        if renew.action == "renewed":
            text += (
                f"loop token: renewed ({renew.reason}); expiry {renew.old_expires_at} -> "
                f"{renew.new_expires_at}\n"
            )
        else:
            text += f"loop token: {renew.action}: {renew.reason}.\n"
    if result.dry_run:
        text += "Dry run: nothing was changed.\n"
    return text


def _rotate_line(result: RotateResult, rid: str) -> str:
    old = result.old_expires_at or "never"
    if result.decision == "skip":
        return f"{rid}: no rotation: {result.reason} (expires {old}).\n"
    verb = "would reset" if result.dry_run else "reset"
    what = "repair: " if result.decision == "repair" else ""
    line = f"{rid}: {what}{verb} the token {result.method} ({result.reason}); expiry {old}"
    if not result.dry_run:
        line += f" -> {result.new_expires_at or 'never'}"
    return line + ("." if result.dry_run else "") + "\n"


def publish_text(result: PublishResult) -> str:
    """What publish changed, the tag, and the include lines to use."""
    lines = []
    if result.project_created:
        lines.append(f"{'Would create' if result.dry_run else 'Created'} project {result.project}")
    for sign, items in (("+", result.created), ("~", result.updated), ("-", result.deleted)):
        lines.extend(f"  {sign} {path}" for path in items)
    if not result.changed:
        lines.append(f"{result.project}: the templates are up to date (no commit).")
    elif result.commit:
        lines.append(f"Committed {result.commit[:8]}.")
    if result.tag_created:
        lines.append(f"{'Would tag' if result.dry_run else 'Tagged'} {result.tag}.")
    else:
        lines.append(f"{result.tag} is already released (no new tag).")
    if result.dry_run:
        lines.append("Dry run: nothing was changed.")
    lines += ["", result.snippet.rstrip("\n")]
    return "\n".join(lines) + "\n"


def status_text(result: StatusResult) -> str:
    """The runner in GitLab, the Deployment, the drift, and every problem with its fix."""
    lines = []
    runner = result.runner
    if runner is None:
        lines.append(f"GitLab: no runner found in {result.group}")
    else:
        tags = ", ".join(runner.tags) or "none"
        paused = ", paused" if runner.paused else ""
        lines.append(
            f"GitLab: runner #{runner.id} ({runner.description}) {runner.status or 'unknown'}"
            f"{paused}; last contact {runner.contacted_at or 'never'}; token expires "
            f"{runner.token_expires_at or 'never'}; tags: {tags}"
        )
    deploy = result.deployment
    ns = result.namespace
    if not deploy.exists:
        lines.append(f"Kubernetes: no deployment/gitlab-runner in namespace {ns}")
    else:
        state = "ready" if deploy.ready else "not ready"
        lines.append(
            f"Kubernetes: deployment/gitlab-runner {deploy.ready_replicas}/{deploy.replicas} "
            f"{state} in namespace {ns}"
        )
        lines.append(f"  images: {', '.join(deploy.images) or 'none running'}")
        if deploy.checksum_matches is not None:
            config = (
                "the pods run the current config.toml"
                if deploy.checksum_matches
                else "the pods run an older config.toml than the Secret holds"
            )
            lines.append(f"  config: {config}")
    if result.lock is not None:
        until = f" until {result.lock.expires:%Y-%m-%d %H:%M:%S} UTC" if result.lock.expires else ""
        lines.append(
            f"Lock: held by {result.lock.identity}{until} (an install or rotate is running)"
        )
    if result.drift:
        lines.append("Drift (what install would change):")
        lines.extend(f"  {_SIGN[c.action]} {c.ref:<48} {c.action}" for c in result.drift)
    else:
        lines.append("Drift: none (install would change nothing in the cluster)")
    if result.runner_drift:
        lines.append(
            f"Runner attributes that differ from the settings: {', '.join(result.runner_drift)}"
        )
    if result.healthy:
        lines.append("Healthy.")
    else:
        lines.append("Problems:")
        for problem in result.problems:
            lines.append(f"  ✗ {problem.message}")
            if problem.hint:
                lines.append(f"      fix: {problem.hint}")
        count = len(result.problems)
        lines.append(
            f"Unhealthy: {count} problem{'s' if count > 1 else ''} (exit {result.exit_code})."
        )
    return "\n".join(lines) + "\n"


def uninstall_text(result: UninstallResult) -> str:
    """The plan (before confirmation, or dry run) or what was deleted and kept."""
    if result.nothing_left:
        kept = ", ".join(d.ref for d in result.kept)
        return (
            "Nothing left to uninstall: no runner in GitLab and no object to delete in "
            f"namespace {result.namespace}" + (f" (kept: {kept})" if kept else "") + ".\n"
        )
    if result.cancelled:
        return "Cancelled: nothing was changed.\n"
    lines = []
    deleted = result.done
    verb = "deleted" if deleted else "delete"
    for runner in result.runners:
        lines.append(
            f"GitLab: {verb} runner #{runner.id} ({runner.description}), {runner.found_by}"
        )
    if not result.runners:
        lines.append("GitLab: no runner left to delete")
    lines.append(f"Kubernetes (namespace {result.namespace}):")
    for d in result.objects:
        sign = "-" if d.action == "delete" else "="
        what = ("deleted" if deleted else "delete") if d.action == "delete" else "keep"
        reason = f": {d.reason}" if d.reason else ""
        lines.append(f"  {sign} {d.ref:<48} {what}{reason}")
    lines.extend(f"GitLab: {m}" for m in result.loop)
    ids = [f"#{r.id}" for r in result.runners]
    runner_part = (
        f"runner {ids[0]} and "
        if len(ids) == 1
        else f"runners {', '.join(ids)} and "
        if ids
        else ""
    )
    count = f"{runner_part}{len(result.deletions)} objects"
    if result.dry_run:
        lines.append(
            f"Plan: delete {count}, keep {len(result.kept)}. Dry run: nothing was changed."
        )
    elif deleted:
        lines.append(f"Done: deleted {count}; kept {len(result.kept)}.")
    else:
        lines.append(f"Plan: delete {count}, keep {len(result.kept)}.")
    return "\n".join(lines) + "\n"


_MARK = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-"}


def doctor_text(result: DoctorResult) -> str:
    """One line per check (✓ ok, ! warning, ✗ failed, - skipped), each failure with its fix."""
    width = max((len(c.name) for c in result.checks), default=0)
    lines = []
    for check in result.checks:
        detail = f"skipped: {check.detail}" if check.status == "skip" else check.detail
        lines.append(f"{_MARK[check.status]} {check.name:<{width}}  {detail}")
        if check.fix and check.status in ("fail", "warn"):
            lines.append(f"  {'':<{width}}  fix: {check.fix}")
    failed = len(result.failed)
    if failed:
        lines.append(f"{failed} check{'s' if failed > 1 else ''} failed (exit {result.exit_code}).")
    else:
        lines.append("All checks passed.")
    return "\n".join(lines) + "\n"


def to_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
