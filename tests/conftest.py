"""Shared fixtures: settings builders and a CLI runner that reports exit codes like the shell."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bootstrap.cli import cli
from bootstrap.config import Settings

pytest_plugins = ["tests.fakes.fixtures"]

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(
    args: list[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    input: str | None = None,
) -> CliResult:
    """Run ``bootstrap ARGS`` in-process with a clean environment (only ``env`` is set).

    ``input`` is what the user types on stdin (answers to prompts).
    """
    runner = CliRunner()
    base = {k: None for k in os.environ if k.startswith(("BOOTSTRAP_", "GITLAB_"))}
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = runner.invoke(
            cli, args, input=input, env={**base, **(env or {})}, catch_exceptions=False
        )
    finally:
        os.chdir(old)
    return CliResult(result.exit_code, result.stdout, result.stderr)


def make_settings(**sections: Any) -> Settings:
    """Settings from keyword sections, e.g. ``make_settings(cache={"type": "nas", ...})``."""
    tree: dict[str, Any] = {"gitlab": {"group": "mygroup"}}
    for key, value in sections.items():
        if isinstance(value, dict):
            tree.setdefault(key, {}).update(value)
        else:
            tree[key] = value
    return Settings.model_validate(tree)


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """An empty working directory (so no stray ./bootstrap.toml is picked up)."""
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)
