"""Signals to a running install: real processes, real signals, against the fakes.

Each run is stopped where it hurts most: GitLab has created the runner, its answer has not
come yet (a delayed answer), and the run holds the namespace lock.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.e2e.conftest import Target
from tests.fakes.server import Fault

LEASE = ("coordination.k8s.io/v1", "Lease", "gitlab-eci-bootstrap", "gitlab-runner")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _spawn(target: Target, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bootstrap", *target.args("install", *extra)],
        env={"PATH": "/usr/bin:/bin", "HOME": str(target.workdir), **target.env},
        cwd=target.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell without job control starts background jobs with SIGINT ignored, and
        # Python then installs no KeyboardInterrupt handler: give the child the default.
        preexec_fn=_default_sigint,
    )


def _stuck_at_create(target: Target) -> tuple[subprocess.Popen[str], Fault]:
    """An install holding the lock, waiting for GitLab's answer to its runner create."""
    fault = target.gitlab.inject("delay", match=("POST", "/user/runners$"), seconds=30)
    proc = _spawn(target, "--timeout", "120")
    for _ in range(3000):
        if fault.fired or proc.poll() is not None:
            break
        time.sleep(0.01)
    assert fault.fired, proc.communicate()
    assert target.kube.get_object(*LEASE) is not None, "the run holds the lock"
    return proc, fault


@pytest.mark.parametrize(
    ("sig", "code", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")]
)
def test_a_signal_releases_the_lock_and_exits_128_plus_its_number(
    target: Target, sig: signal.Signals, code: int, name: str
) -> None:
    proc, _ = _stuck_at_create(target)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    target.outputs.append(out + err)

    assert proc.returncode == code, out + err
    assert f"interrupted ({name})" in err
    assert "Traceback" not in err
    assert target.kube.get_object(*LEASE) is None, "the Lease was left behind"
    # The runner GitLab created is not lost: the next run adopts it.
    [created] = target.group_runners()
    rerun = target.run("install")
    assert rerun.exit_code == 0, rerun.output
    assert target.group_runners() == [created]
    assert target.stored_token() == target.gitlab.runner(created).token


def test_a_waiter_takes_over_at_once_from_a_killed_local_holder(target: Target) -> None:
    proc, _ = _stuck_at_create(target)
    proc.kill()  # SIGKILL: nothing runs on the way out, the Lease stays (60 s)
    proc.communicate(timeout=60)
    assert target.kube.get_object(*LEASE) is not None

    # Well under the dead holder's 60 s lease: only taking over at once can finish in time.
    result = target.run_subprocess("install", "--timeout", "20")

    assert result.exit_code == 0, result.output
    assert f"(pid {proc.pid}) no longer runs on this machine" in result.output
    assert len(target.group_runners()) == 1


def test_a_live_local_holder_is_waited_for(target: Target) -> None:
    proc, _ = _stuck_at_create(target)
    try:
        result = target.run_subprocess("install", "--timeout", "2")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert result.exit_code == 5, result.output
    assert "no longer runs" not in result.output
    assert f"/pid-{proc.pid}/" in result.output, "the wait names its holder"
