"""The install half of the bad-input corpus (tests/data/bad_inputs/install.yaml), run against
the fakes: each case exits with its code, names what to fix, and writes nothing anywhere."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.e2e.conftest import Target
from tests.fakes.fixtures import GROUP, OWNER_API_TOKEN, OWNER_TOKEN
from tests.unit.test_bad_inputs import CASES, INSTALL_CASES, config_args


@pytest.fixture(scope="module")
def tls_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate (it never answers HTTP)."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass  # the client refuses the certificate during the handshake
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    listener.close()


def _closed_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _fill(value: str, target: Target, tls: str) -> str:
    return (
        value.replace("{gitlab}", target.gitlab_url)
        .replace("{kubeconfig}", str(target.kube.kubeconfig_path))
        .replace("{closed}", _closed_url())
        .replace("{tls}", tls)
    )


@pytest.mark.parametrize("case", INSTALL_CASES)
def test_bad_install_input_is_refused_and_writes_nothing(
    case: dict[str, Any], target: Target, tls_url: str
) -> None:
    if case.get("seed_project"):
        target.gitlab.add_project(case["seed_project"])
    env: dict[str, Any] = {"GITLAB_URL": target.gitlab_url, "GITLAB_TOKEN": OWNER_TOKEN}
    for key, value in (case.get("env") or {}).items():
        env[key] = None if value is None else _fill(value, target, tls_url)
    args = ["install", "--group", case.get("group", GROUP)]
    extra = [_fill(a, target, tls_url) for a in case.get("args", [])]
    if "--kubeconfig" not in extra:
        args += ["--kubeconfig", str(target.kube.kubeconfig_path)]
    args += ["--skip-templates", "--skip-schedule", "--timeout", "20", *extra]
    workdir: Path = target.workdir
    args += config_args(case, workdir)
    target.gitlab.clear_log()
    target.kube.clear_log()

    result = run_cli(args, env=env, cwd=workdir)
    target.outputs.append(result.output)

    assert result.exit_code == case["exit"], result.output
    for fragment in case["expect"]:
        assert fragment in result.output, f"{fragment!r} not in {result.output!r}"
    assert "Traceback" not in result.output
    assert "error: " in result.stderr.lower(), result.stderr
    assert target.gitlab.writes() == []
    assert target.kube.writes() == []


def _install_args(case: dict[str, Any]) -> bool:
    return "--out" not in case.get("args", [])  # render's own flag: no install case


@pytest.mark.parametrize("case", [c for c in CASES if _install_args(c.values[0])])  # type: ignore[arg-type]
def test_no_bad_setting_reaches_a_write_even_with_templates_and_schedule(
    case: dict[str, Any], target: Target
) -> None:
    """The meta test: every input of the render corpus, given to a full ``install``
    (templates and schedule included, on a group with an ops project), is refused in the
    validation phase: exit 2 (or 3 for GitLab's answer), not one write to GitLab or the
    cluster."""
    bad = case
    target.gitlab.add_project(f"{GROUP}/gitlab-eci-bootstrap", {"README.md": "ops\n"})
    env: dict[str, Any] = {"GITLAB_URL": target.gitlab_url, "GITLAB_TOKEN": OWNER_API_TOKEN}
    if re.search(r"^url *=", bad.get("config", ""), re.MULTILINE):
        del env["GITLAB_URL"]  # it would win over the file's bad gitlab.url
    env.update(bad.get("env") or {})
    args = ["install", *bad.get("args", ["--group", GROUP])]
    args += ["--kubeconfig", str(target.kube.kubeconfig_path), "--timeout", "20"]
    args += config_args(bad, target.workdir)
    target.gitlab.clear_log()
    target.kube.clear_log()

    result = run_cli(args, env=env, cwd=target.workdir)
    target.outputs.append(result.output)

    assert result.exit_code in (2, 3), result.output
    assert "Traceback" not in result.output
    assert target.gitlab.writes() == []
    assert target.kube.writes() == []
