"""prepare-git against a real sshd on 127.0.0.1.

The fixture starts OpenSSH's sshd with a throwaway host key and an
authorized_keys entry whose forced command greets like GitLab does
(``Welcome to GitLab, @test!``), and stops it by its PID. The script runs with
HOME in a temporary directory, so the real ~/.ssh is never touched.
"""

from __future__ import annotations

import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .helpers import job_environment, load_config, resolve_job, run_job

SSHD = "/usr/sbin/sshd"
SHELLS = ["bash", "dash"]


@dataclass(frozen=True)
class Sshd:
    port: int
    host_key_pub: str
    user_key: Path
    user_key_pub: Path


def keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        timeout=30,
    )
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    root = tmp_path_factory.mktemp("sshd")
    host_key = keygen(root / "host_key")
    user_key = keygen(root / "user_key")
    (root / "authorized_keys").write_text(
        'command="echo Welcome to GitLab, @test!",no-pty,no-port-forwarding '
        + (root / "user_key.pub").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    port = free_port()
    (root / "sshd_config").write_text(
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {host_key}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\n"
        f"PidFile {root / 'sshd.pid'}\n"
        "StrictModes no\n"
        "UsePAM no\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\n",
        encoding="utf-8",
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    process = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(root / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=(root / "sshd.log").open("w"),
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, (root / "sshd.log").read_text(encoding="utf-8")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "sshd did not start listening"
                time.sleep(0.05)
        yield Sshd(
            port=port,
            host_key_pub=(root / "host_key.pub").read_text(encoding="utf-8"),
            user_key=user_key,
            user_key_pub=root / "user_key.pub",
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


def credentials(directory: Path, sshd: Sshd, *, known_host_key: str | None = None) -> Path:
    """A directory laid out like the mounted gitlab-credentials Secret (files 0644)."""
    directory.mkdir()
    shutil.copyfile(sshd.user_key, directory / "id_rsa")
    shutil.copyfile(sshd.user_key_pub, directory / "id_rsa.pub")
    host_key = known_host_key or sshd.host_key_pub
    (directory / "known_hosts").write_text(f"[127.0.0.1]:{sshd.port} {host_key}", encoding="utf-8")
    for file in directory.iterdir():
        file.chmod(0o644)
    directory.chmod(0o555)  # read-only, like the secret volume
    return directory


def prepare_git_job(
    rendered: dict[str, str], creds: Path, port: int, **inputs: str
) -> dict[str, Any]:
    values = {
        "credentials_dir": str(creds),
        "ssh_host": "127.0.0.1",
        "ssh_port": str(port),
        "ssh_user": "root",
        **inputs,
    }
    return resolve_job(load_config(rendered, "templates/prepare-git.yml", values), ".prepare-git")


def run(job: dict[str, Any], home: Path, shell: str = "bash", extra: tuple[str, ...] = ()) -> Any:
    env = job_environment(job, {"HOME": str(home), "CI_JOB_IMAGE": "node:20"})
    return run_job(job, env, interpreter=shell, extra=extra)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("shell", SHELLS)
def test_success_with_the_right_known_hosts(
    rendered: dict[str, str], sshd: Sshd, tmp_path: Path, shell: str
) -> None:
    creds = credentials(tmp_path / "creds", sshd)
    snapshot = {f.name: (f.read_bytes(), mode(f)) for f in creds.iterdir()}
    home = tmp_path / "home"
    job = prepare_git_job(rendered, creds, sshd.port)
    # a later job line uses GIT_SSH_COMMAND the way git does
    result = run(job, home, shell, extra=('eval "$GIT_SSH_COMMAND -T root@127.0.0.1"',))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "prepare-git: ssh root@127.0.0.1:" in result.stdout
    assert "OK: Welcome to GitLab, @test!" in result.stdout
    assert result.stdout.rstrip().endswith("Welcome to GitLab, @test!")
    ssh = home / ".ssh"
    assert mode(ssh) == 0o700
    for name in ("id_rsa", "id_rsa.pub", "known_hosts"):
        assert mode(ssh / name) == 0o400, name
        assert (ssh / name).read_bytes() == snapshot[name][0]
    config = (ssh / "config").read_text(encoding="utf-8")
    assert "StrictHostKeyChecking yes" in config
    assert "StrictHostKeyChecking no" not in config
    assert f'UserKnownHostsFile "{ssh / "known_hosts"}"' in config
    assert mode(ssh / "config") == 0o600
    assert {f.name: (f.read_bytes(), mode(f)) for f in creds.iterdir()} == snapshot


@pytest.mark.parametrize("shell", SHELLS)
def test_a_wrong_known_hosts_fails_clearly(
    rendered: dict[str, str], sshd: Sshd, tmp_path: Path, shell: str
) -> None:
    other_host_key = keygen(tmp_path / "other_host_key").with_suffix(".pub").read_text()
    creds = credentials(tmp_path / "creds", sshd, known_host_key=other_host_key)
    result = run(prepare_git_job(rendered, creds, sshd.port), tmp_path / "home", shell)
    assert result.returncode != 0
    assert "IDENTIFICATION HAS CHANGED" in result.stderr
    assert f"the host key of 127.0.0.1:{sshd.port} is not in {creds}/known_hosts" in result.stderr
    assert "Welcome to GitLab" not in result.stdout


def test_an_unknown_host_fails_clearly(
    rendered: dict[str, str], sshd: Sshd, tmp_path: Path
) -> None:
    creds = tmp_path / "creds"
    credentials(creds, sshd)
    creds.chmod(0o755)
    (creds / "known_hosts").write_text(f"gitlab.example.com {sshd.host_key_pub}", encoding="utf-8")
    result = run(prepare_git_job(rendered, creds, sshd.port), tmp_path / "home")
    assert result.returncode != 0
    assert "Host key verification failed" in result.stderr
    assert "is not in" in result.stderr


def test_a_refused_key_fails_clearly(rendered: dict[str, str], sshd: Sshd, tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    credentials(creds, sshd)
    creds.chmod(0o755)
    stranger = keygen(tmp_path / "stranger")
    shutil.copyfile(stranger, creds / "id_rsa")
    result = run(prepare_git_job(rendered, creds, sshd.port), tmp_path / "home")
    assert result.returncode != 0
    assert "Permission denied" in result.stderr
    assert "refused the key: add id_rsa.pub as a deploy key" in result.stderr


@pytest.mark.parametrize("missing", ["id_rsa", "known_hosts"])
def test_a_missing_file_is_named(
    rendered: dict[str, str], sshd: Sshd, tmp_path: Path, missing: str
) -> None:
    creds = tmp_path / "creds"
    credentials(creds, sshd)
    creds.chmod(0o755)
    (creds / missing).unlink()
    home = tmp_path / "home"
    result = run(prepare_git_job(rendered, creds, sshd.port), home, "dash")
    assert result.returncode != 0
    assert f"{creds}/{missing} is missing or empty" in result.stderr
    assert "needs the keys id_rsa, id_rsa.pub and known_hosts" in result.stderr
    assert not home.exists()


def test_a_missing_mount_is_explained(rendered: dict[str, str], sshd: Sshd, tmp_path: Path) -> None:
    result = run(prepare_git_job(rendered, tmp_path / "nowhere", sshd.port), tmp_path / "home")
    assert result.returncode != 0
    assert "must mount the gitlab-credentials Secret there" in result.stderr


def test_an_existing_ssh_config_is_kept_and_reruns_are_idempotent(
    rendered: dict[str, str], sshd: Sshd, tmp_path: Path
) -> None:
    creds = credentials(tmp_path / "creds", sshd)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Host other\n  User someone\n", encoding="utf-8")
    job = prepare_git_job(rendered, creds, sshd.port)
    for _ in range(2):
        result = run(job, home)
        assert result.returncode == 0, result.stderr
    config = (home / ".ssh" / "config").read_text(encoding="utf-8")
    assert config.count("# BEGIN prepare-git") == 1
    assert config.index("Host 127.0.0.1") < config.index("Host other")
    assert config.endswith("Host other\n  User someone\n")


def test_the_check_can_be_turned_off(rendered: dict[str, str], sshd: Sshd, tmp_path: Path) -> None:
    creds = credentials(tmp_path / "creds", sshd)
    job = prepare_git_job(rendered, creds, free_port(), check="false")
    result = run(job, tmp_path / "home")
    assert result.returncode == 0, result.stderr
    assert "ssh -T" not in result.stdout + result.stderr
    assert mode(tmp_path / "home" / ".ssh" / "id_rsa") == 0o400


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PREPARE_GIT_SSH_HOST", "-oProxyCommand=touch /tmp/x"),
        ("PREPARE_GIT_SSH_PORT", "22 -v"),
        ("PREPARE_GIT_SSH_USER", "git@evil"),
        ("PREPARE_GIT_SSH_CHECK", "no"),
    ],
)
def test_odd_settings_are_refused(
    rendered: dict[str, str], sshd: Sshd, tmp_path: Path, variable: str, value: str
) -> None:
    creds = credentials(tmp_path / "creds", sshd)
    job = prepare_git_job(rendered, creds, sshd.port)
    env = job_environment(job, {"HOME": str(tmp_path / "home")}, {variable: value})
    result = run_job(job, env)
    assert result.returncode != 0
    assert variable in result.stderr
    assert not (tmp_path / "home").exists()


def test_include_file_defaults_come_from_the_organisation(rendered: dict[str, str]) -> None:
    job = resolve_job(load_config(rendered, "include/prepare-git.yml"), ".prepare-git")
    assert job["variables"] == {
        "PREPARE_GIT_CREDENTIALS_DIR": "/root/gitlab-credentials",
        "PREPARE_GIT_SSH_HOST": "gitlab.example.com",
        "PREPARE_GIT_SSH_PORT": "22",
        "PREPARE_GIT_SSH_USER": "git",
        "PREPARE_GIT_SSH_CHECK": "true",
    }
    assert "set +e" not in "\n".join(job["before_script"])
