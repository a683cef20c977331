"""``--timeout`` bounds the whole command: against a server that accepts the connection and
never answers, the command ends with exit 5 and says so, instead of waiting out every
request's own timeout and every retry."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Target
from tests.fakes.fixtures import GROUP, OWNER_TOKEN

# The run is given far more than --timeout: without the bound it takes request_timeout (30 s)
# times every retry, and this limit fails it; with it, well within.
GENEROUS = 75


@pytest.fixture
def silent_url() -> Iterator[str]:
    """http://127.0.0.1:PORT of a server that accepts every connection and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)  # open, read from by no one, answered never

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    listener.close()


def _dry_run(
    timeout: str, kubeconfig: Path, gitlab_url: str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """``bootstrap install --dry-run --timeout TIMEOUT`` as a user runs it, in a process."""
    args = ["install", "--dry-run", "--timeout", timeout, "--kubeconfig", str(kubeconfig)]
    return _run([*args, "--skip-templates", "--skip-schedule"], gitlab_url, cwd)


def _run(args: list[str], gitlab_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``bootstrap COMMAND --group mygroup ARGS`` as a user runs it, in a process."""
    command, rest = (args[:2], args[2:]) if args[0] == "templates" else (args[:1], args[1:])
    args = [*command, "--group", GROUP, *rest]
    env = {"GITLAB_URL": gitlab_url, "GITLAB_TOKEN": OWNER_TOKEN}
    return subprocess.run(
        [sys.executable, "-m", "bootstrap", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), **env},
        cwd=cwd,
        check=False,
        timeout=GENEROUS,
    )


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_a_gitlab_that_never_answers_ends_the_dry_run_at_the_timeout(
    silent_url: str, target: Target
) -> None:
    proc = _dry_run("4s", target.kube.kubeconfig_path, silent_url, target.workdir)
    assert proc.returncode == 5, proc.stderr
    [error] = _error_lines(proc.stderr)
    assert f"GitLab at {silent_url} did not answer: --timeout 4s passed" in error
    assert "raise --timeout" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_kubernetes_api_that_never_answers_ends_the_run_at_the_timeout(
    silent_url: str, target: Target
) -> None:
    kubeconfig = target.workdir / "silent-kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: silent\n"
        f"clusters: [{{name: silent, cluster: {{server: '{silent_url}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: silent, context: {cluster: silent, user: u}}]\n"
    )
    proc = _dry_run("4", kubeconfig, target.gitlab_url, target.workdir)
    assert proc.returncode == 5, proc.stderr
    [error] = _error_lines(proc.stderr)
    assert f"the Kubernetes API at {silent_url} did not answer: --timeout 4s passed" in error
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["doctor", "status", "templates publish"])
def test_the_read_commands_end_at_the_timeout_too(
    command: str, silent_url: str, target: Target
) -> None:
    cluster = (
        [] if command == "templates publish" else ["--kubeconfig", str(target.kube.kubeconfig_path)]
    )
    proc = _run([*command.split(), "--timeout", "3s", *cluster], silent_url, target.workdir)
    assert proc.returncode == 5, proc.stderr
    [error] = _error_lines(proc.stderr)
    assert f"GitLab at {silent_url} did not answer: --timeout 3s passed" in error
    assert "Traceback" not in proc.stderr


def test_a_gitlab_that_never_answers_ends_the_run_at_the_timeout_in_process(
    silent_url: str, target: Target
) -> None:
    # The same as above in-process, so that scripts/mutation can run it on a mutant of
    # GitLab._call (a request not cut to what is left of --timeout waits its own 30 s).
    target.gitlab_url = silent_url
    result = target.run("install", "--dry-run", "--timeout", "2s")
    assert result.exit_code == 5, result.output
    assert f"GitLab at {silent_url} did not answer: --timeout 2s passed" in result.stderr
    assert "may or may not" not in result.stderr
