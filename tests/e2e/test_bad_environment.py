"""The bad-environment table: every command × every malformed environment.

Each cell runs one command (against the fakes, so a command the case does not concern runs
for real and must succeed) with one broken piece of its environment — GITLAB_URL, the
kubeconfig, a BOOTSTRAP_ variable, GITLAB_TOKEN — and asserts what a user sees: the exit code
of the contract, exactly one ``error:`` line that names the source and the fix, no
traceback, no Python class name, and no secret.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import EXTRA_SECRETS, run_cli
from tests.e2e.conftest import Target
from tests.fakes.fixtures import GROUP, OWNER_API_TOKEN

#: Each command as a user runs it, with the flags that make it run unattended.
COMMANDS: dict[str, list[str]] = {
    "render": ["render", "--group", GROUP],
    "schema": ["schema"],
    "doctor": ["doctor", "--group", GROUP],
    "install --dry-run": ["install", "--group", GROUP, "--dry-run"],
    "install": ["install", "--group", GROUP, "--no-wait"],
    "status": ["status", "--group", GROUP],
    "rotate --dry-run": ["rotate", "--group", GROUP, "--dry-run"],
    "rotate": ["rotate", "--group", GROUP, "--force", "--no-wait"],
    "uninstall --dry-run": ["uninstall", "--group", GROUP, "--dry-run"],
    "uninstall": ["uninstall", "--group", GROUP, "--yes", "--no-wait"],
    "templates publish --dry-run": ["templates", "publish", "--group", GROUP, "--dry-run"],
    "templates publish": ["templates", "publish", "--group", GROUP],
}
#: Commands that read the settings (all but schema), those that need GITLAB_TOKEN, and
#: those that read the kubeconfig.
SETTINGS = set(COMMANDS) - {"schema"}
TOKEN = SETTINGS - {"render"}
CLUSTER = TOKEN - {"templates publish", "templates publish --dry-run"}

PASSWORD = "hunter2-s3cret-pass"  # made up: it must not be echoed


@dataclass(frozen=True)
class Case:
    id: str
    env: dict[str, str]
    commands: set[str]  # the commands that must refuse it (exit ``code``); others exit 0
    source: str  # what the error names: the variable, flag or file
    fix: str  # a fragment of the fix the error gives
    code: int = 2
    files: dict[str, str] = field(default_factory=dict)  # name -> content, in the workdir


NOT_YAML = "apiVersion: v1\nclusters: [\n  - name: a\n    cluster: {server: x\n"
A_LIST = "- name: prod\n- name: staging\n"
GHOST_CONTEXT = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: real, context: {cluster: c, user: u}}]
current-context: ghost
"""
UNREACHABLE_CLUSTER = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "{closed}"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: gone, context: {cluster: c, user: u}}]
current-context: gone
"""

CASES = [
    Case("url-port-out-of-range", {"GITLAB_URL": "http://127.0.0.1:99999"}, SETTINGS,
         "GITLAB_URL", "1 to 65535"),
    Case("url-with-a-space", {"GITLAB_URL": "http://exa mple.com"}, SETTINGS,
         "GITLAB_URL", "write it like https://"),
    Case("url-without-host", {"GITLAB_URL": "http://:80"}, SETTINGS,
         "GITLAB_URL", "write it like https://"),
    Case("url-without-scheme", {"GITLAB_URL": "gitlab.example.com"}, SETTINGS,
         "GITLAB_URL", "write it like https://"),
    Case("url-with-credentials", {"GITLAB_URL": f"https://root:{PASSWORD}@gitlab.example.com"},
         SETTINGS, "GITLAB_URL", "remove them"),
    Case("unknown-bootstrap-section", {"BOOTSTRAP_NOPE__KEY": "1"}, SETTINGS,
         "BOOTSTRAP_NOPE__KEY", "unset BOOTSTRAP_NOPE__KEY"),
    Case("kubeconfig-not-yaml", {"KUBECONFIG": "{work}/bad"}, CLUSTER,
         "KUBECONFIG", "fix the file", files={"bad": NOT_YAML}),
    Case("kubeconfig-a-yaml-list", {"KUBECONFIG": "{work}/list"}, CLUSTER,
         "KUBECONFIG", "point it at a kubeconfig", files={"list": A_LIST}),
    Case("kubeconfig-missing-file", {"KUBECONFIG": "{work}/nonexistent"}, CLUSTER,
         "KUBECONFIG", "export KUBECONFIG="),
    Case("kubeconfig-missing-context", {"KUBECONFIG": "{work}/ghost"}, CLUSTER,
         "KUBECONFIG", "--context NAME", files={"ghost": GHOST_CONTEXT}),
    Case("gitlab-unreachable", {"GITLAB_URL": "{closed}"}, TOKEN,
         "{closed}", "connection refused", code=3),
    Case("cluster-unreachable", {"KUBECONFIG": "{work}/gone"}, CLUSTER,
         "{closed}", "connection refused", code=4, files={"gone": UNREACHABLE_CLUSTER}),
    Case("token-too-short", {"GITLAB_TOKEN": "x"}, TOKEN, "GITLAB_TOKEN", "export GITLAB_TOKEN="),
    Case("token-not-ascii", {"GITLAB_TOKEN": "glpat-\u2013paste\u2013d-0123456789abc"}, TOKEN,
         "GITLAB_TOKEN", "export GITLAB_TOKEN="),
    Case("token-with-whitespace", {"GITLAB_TOKEN": "glpat-owner-api-token-0123456\n"}, TOKEN,
         "GITLAB_TOKEN", "strip it"),
]  # fmt: skip

#: A Python class name (NewConnectionError, ScannerError, KeyError...) in front of a user.
CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b")


def _closed_url() -> str:
    """A loopback URL nothing listens on (connections are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def _error_text(stderr: str) -> str:
    """From the ``error:`` line to the end: the message, its indented details and the hint."""
    lines = stderr.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("error:")]
    assert len(starts) == 1, f"expected one error line, got {len(starts)}:\n{stderr}"
    return "\n".join(lines[starts[0] :])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_each_command_refuses_a_bad_environment_with_one_clear_line(
    case: Case, target: Target
) -> None:
    EXTRA_SECRETS.append(PASSWORD)
    work: Path = target.workdir
    closed = _closed_url()
    for name, content in case.files.items():
        (work / name).write_text(content.replace("{closed}", closed))
    env = {
        "GITLAB_URL": target.gitlab_url,
        "GITLAB_TOKEN": OWNER_API_TOKEN,
        "KUBECONFIG": str(target.kube.kubeconfig_path),
        "HOME": str(work),
    }
    env.update(
        {k: v.replace("{work}", str(work)).replace("{closed}", closed) for k, v in case.env.items()}
    )
    for command, args in COMMANDS.items():
        result = run_cli(args, env=env, cwd=work)
        target.outputs.append(result.output)
        where = f"{command} with {case.id}"
        assert "Traceback" not in result.output, where
        assert not CLASS_NAME.search(result.output), f"{where}: {result.output}"
        assert PASSWORD not in result.output, where
        if command not in case.commands:
            assert result.exit_code == 0, f"{where}: {result.output}"
            continue
        assert result.exit_code == case.code, f"{where}: {result.output}"
        error = _error_text(result.stderr)
        source = case.source.replace("{closed}", closed)
        assert source in error, f"{where}: the error does not name {source}: {error}"
        assert case.fix in error, f"{where}: the error does not say the fix: {error}"


@pytest.fixture
def tls_for_another_name(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(https://localhost:PORT, its CA file): a real TLS server on loopback whose
    self-signed certificate names gitlab.other.example, not localhost."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    name = "gitlab.other.example"
    subject = ["-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *subject,
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = subprocess.Popen(
        ["openssl", "s_server", "-quiet", "-accept", "127.0.0.1:0", "-www",
         "-cert", str(cert), "-key", str(key)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    port = _listening_port(server.pid)
    try:
        yield f"https://localhost:{port}", cert
    finally:
        server.terminate()
        server.wait(timeout=10)


def _listening_port(pid: int) -> int:
    """The TCP port the process listens on (openssl s_server picks one for port 0)."""
    inodes = {
        Path(os.readlink(fd)).name.removeprefix("socket:[").removesuffix("]")
        for fd in Path(f"/proc/{pid}/fd").iterdir()
        if os.readlink(fd).startswith("socket:")
    }
    for _ in range(100):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                return int(fields[1].split(":")[1], 16)
        time.sleep(0.05)
        inodes |= {
            Path(os.readlink(fd)).name.removeprefix("socket:[").removesuffix("]")
            for fd in Path(f"/proc/{pid}/fd").iterdir()
            if os.readlink(fd).startswith("socket:")
        }
    raise AssertionError("openssl s_server did not listen")


def test_a_certificate_for_another_name_is_reported_as_a_hostname_mismatch(
    tls_for_another_name: tuple[str, Path], target: Target
) -> None:
    url, ca_file = tls_for_another_name
    env = {
        "GITLAB_URL": url,
        "GITLAB_TOKEN": OWNER_API_TOKEN,
        "BOOTSTRAP_GITLAB__CA_FILE": str(ca_file),
    }
    result = run_cli(
        [
            "install",
            "--group",
            GROUP,
            "--dry-run",
            "--kubeconfig",
            str(target.kube.kubeconfig_path),
        ],
        env=env,
        cwd=target.workdir,
    )
    assert result.exit_code == 3, result.output
    error = _error_text(result.stderr)
    assert "hostname mismatch" in error
    assert "not trusted" not in error
    assert "ca_file" not in error.replace("a CA file does not help", "")


def test_debug_logs_every_request_with_no_token(target: Target) -> None:
    result = target.run("doctor", "--debug")
    requests_logged = [line for line in result.stderr.splitlines() if line.startswith("debug:")]
    assert any("GET /api/v4/version" in line for line in requests_logged), result.stderr
    assert any("/apis/authorization.k8s.io" in line for line in requests_logged), result.stderr
    assert target.token not in result.output
    quiet = target.run("doctor")
    assert "debug:" not in quiet.stderr
