"""Shared fixtures: settings builders and a CLI runner that reports exit codes like the shell."""

from __future__ import annotations

import base64
import json
import os
import re
import tomllib
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

#: Everything the CLI printed during the current test (filled by run_cli, scanned after it).
OUTPUTS: list[str] = []
#: Secrets a test made up itself (registry passwords, keys) that must not leak either.
EXTRA_SECRETS: list[str] = []


@pytest.fixture(autouse=True)
def leak_scan(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """After every test: no token or password the test's fakes issued appears in what the
    CLI printed, in a log record, or in any object the fake cluster holds other than the
    Secrets that must hold credentials (raw or base64)."""
    from tests.fakes.gitlab import FakeGitLab
    from tests.fakes.kube import FakeKube

    OUTPUTS.clear()
    EXTRA_SECRETS.clear()
    yield
    fakes = list(request.node.funcargs.values())
    secrets = list(EXTRA_SECRETS)
    for fake in fakes:
        if isinstance(fake, FakeGitLab):
            secrets += fake.runner_tokens() + list(fake.tokens)
    secrets = [s for s in secrets if len(s) >= 8]
    if not secrets:
        return
    texts = [("CLI output", text) for text in OUTPUTS]
    texts += [("log record", record.getMessage()) for record in caplog.records]
    for fake in fakes:
        if isinstance(fake, FakeKube):
            for obj in fake.objects():
                if obj.get("kind") != "Secret":
                    texts.append((f"{obj['kind']}/{obj['metadata']['name']}", json.dumps(obj)))
    for where, text in texts:
        leaked = find_leaks(text, secrets)
        if leaked:
            pytest.fail(f"a secret ({leaked[0][:5]}…) leaked into a {where}", pytrace=False)


# Runs that may be base64 (a Secret's data, a whole config.toml encoded in a diff).
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")


def readable_forms(text: str, depth: int = 3) -> list[str]:
    """``text`` and everything found decoded inside it: base64 runs (standard and URL-safe),
    and the string values of a JSON or TOML document (the text itself, or one decoded from
    base64), recursively to ``depth`` levels. A leak scan searches all of them."""
    forms = [text]
    if depth == 0:
        return forms
    for blob in _structured_strings(text):
        forms += readable_forms(blob, depth - 1)
    for run in _BASE64_RUN.findall(text):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                decoded = decode(run + "=" * (-len(run) % 4)).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                continue
            if decoded.isprintable() or "\n" in decoded:
                forms += readable_forms(decoded, depth - 1)
            break
    return forms


def _structured_strings(text: str) -> list[str]:
    """The string values of ``text`` read as JSON or TOML (none when it is neither)."""
    try:
        document: Any = json.loads(text)
    except ValueError:
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return []
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(key)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    return [item for item in found if item != text]


def find_leaks(text: str, secrets: list[str]) -> list[str]:
    """The secrets that appear in ``text``, raw, base64-encoded, or inside anything decoded
    from it (see :func:`readable_forms`)."""
    forms = readable_forms(text)
    leaked = []
    for secret in secrets:
        encoded = base64.b64encode(secret.encode()).decode()
        if any(secret in form or encoded in form for form in forms):
            leaked.append(secret)
    return leaked


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
    OUTPUTS.append(result.stdout + result.stderr)
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
