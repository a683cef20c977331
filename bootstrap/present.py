"""Text and JSON views of workflow results (pure: the CLI prints what these return)."""

from __future__ import annotations

import json
from typing import Any

from bootstrap.install import InstallResult

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


def to_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
