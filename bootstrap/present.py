"""Text and JSON views of workflow results (pure: the CLI prints what these return)."""

from __future__ import annotations

import json
from typing import Any

from bootstrap.install import InstallResult
from bootstrap.rotate import RotateResult

_SIGN = {"create": "+", "update": "~", "unchanged": "=", "delete": "-"}


def install_text(result: InstallResult, *, show_unchanged: bool = True) -> str:
    """The plan (dry run) or the summary of what was done."""
    runner = result.runner
    lines = []
    rid = f" #{runner.runner_id}" if runner.runner_id is not None else ""
    verb = {"create": "create", "reuse": "keep", "reset": "reset the token of"}[runner.action]
    lines.append(f"GitLab: {verb} runner{rid} — {runner.reason}")
    if runner.updates:
        lines.append(f"GitLab: update runner{rid}: {', '.join(sorted(runner.updates))}")
    lines.append("Kubernetes:")
    for change in result.changes:
        if change.action == "unchanged" and not show_unchanged:
            continue
        lines.append(f"  {_SIGN[change.action]} {change.ref:<48} {change.action}")
        if change.diff:
            lines.extend("      " + line for line in change.diff.rstrip("\n").splitlines())
    counts = result.counts()
    summary = (
        f"{counts['create']} to create, {counts['update']} to update, "
        f"{counts['unchanged']} unchanged"
    )
    if result.dry_run:
        lines.append(f"Plan: {summary}. Dry run: nothing was changed.")
    else:
        lines.append(
            f"Done: {counts['create']} created, {counts['update']} updated, "
            f"{counts['unchanged']} unchanged."
        )
        if result.rollout:
            lines.append(result.rollout)
    return "\n".join(lines) + "\n"


def rotate_text(result: RotateResult) -> str:
    """One line on what rotate decided, with the old and new expiry."""
    rid = f"runner #{result.runner_id}"
    old = result.old_expires_at or "never"
    if result.decision == "skip":
        return f"{rid}: no rotation: {result.reason} (expires {old}).\n"
    verb = "would reset" if result.dry_run else "reset"
    what = "repair: " if result.decision == "repair" else ""
    line = f"{rid}: {what}{verb} the token {result.method} ({result.reason}); expiry {old}"
    if not result.dry_run:
        line += f" -> {result.new_expires_at or 'never'}"
    lines = [line + ("." if result.dry_run else "")]
    if result.dry_run:
        lines.append("Dry run: nothing was changed.")
    elif result.rollout:
        lines.append(result.rollout)
    return "\n".join(lines) + "\n"


def to_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
