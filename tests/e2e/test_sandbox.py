"""The sandbox: scripts/sandbox serves every workflow, and the docs' examples are its output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO
from tests.fakes.sandbox import EXAMPLE, GROUP, normalise, produce, rewrite_docs


def test_the_docs_examples_are_what_the_sandbox_prints(tmp_path: Path) -> None:
    outputs = produce(tmp_path)

    stale = rewrite_docs(outputs, write=False)

    assert stale == [], (
        "docs examples differ from the sandbox's output: run scripts/sandbox --write-docs "
        f"and review the diff: {stale}"
    )
    named = {
        m.group(2) for p in (REPO / "docs").glob("*.md") for m in EXAMPLE.finditer(p.read_text())
    }
    assert {"install", "plan-concurrent", "wait-image-pull", "status", "uninstall"} <= named


def test_normalising_keeps_messages_and_drops_ports_times_and_hashes() -> None:
    a = "GitLab 18.6.0 at http://127.0.0.1:41234 (3s) 2026-01-02T03:04:05.123Z sha256:" + "a" * 64
    b = "GitLab 18.6.0 at http://127.0.0.1:5000 (12s) 2025-11-30T00:00:00Z sha256:" + "b" * 64
    assert normalise(a) == normalise(b)
    assert normalise("Runner #1 is online") != normalise("Runner #1 is offline")


def _bootstrap(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bootstrap", *args, "--group", GROUP],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), **env},
        cwd=cwd,
        check=False,
        timeout=120,
    )


def test_scripts_sandbox_prints_the_environment_and_serves_every_workflow(tmp_path: Path) -> None:
    env_file = tmp_path / "sandbox.env"
    proc = subprocess.Popen(
        [str(REPO / "scripts/sandbox"), "--dir", str(tmp_path / "sb"), "--env-file", str(env_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "BOOTSTRAP_PYTHON": sys.executable},
    )
    try:
        for _ in range(600):
            if env_file.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert env_file.exists(), proc.stdout.read() if proc.stdout else ""
        env = dict(
            line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines()
        )
        assert set(env) == {"GITLAB_URL", "GITLAB_TOKEN", "KUBECONFIG"}
        assert env["GITLAB_URL"].startswith("http://127.0.0.1:")
        cwd = tmp_path / "work"
        cwd.mkdir()
        steps = [
            ("doctor",),
            ("install",),
            ("status",),
            ("rotate", "--force"),
            ("uninstall", "--yes"),
        ]
        for step in steps:
            done = _bootstrap(env, cwd, *step)
            assert done.returncode == 0, (step, done.stdout + done.stderr)
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert "export GITLAB_URL=http://127.0.0.1:" in output
    assert proc.returncode == 0
