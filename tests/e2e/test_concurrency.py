"""Two installs at once, and the lock as `status` shows it."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime

from tests.e2e.conftest import Target

LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/gitlab-runner/leases"


def _spawn(target: Target) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bootstrap", *target.args("install", "--timeout", "60")],
        env={"PATH": "/usr/bin:/bin", "HOME": str(target.workdir), **target.env},
        cwd=target.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_installs_at_once_end_with_one_runner_and_a_consistent_secret(target: Target) -> None:
    target.kube.latency_ms = 20  # widen the window in which the two runs overlap
    first, second = _spawn(target), _spawn(target)
    outputs = [p.communicate(timeout=120) for p in (first, second)]
    target.outputs += [out + err for out, err in outputs]

    assert first.returncode == 0, outputs[0]
    assert second.returncode == 0, outputs[1]
    assert len(target.group_runners()) == 1
    runner = next(iter(target.gitlab.runners.values()))
    assert target.stored_token() == runner.token
    creates = target.gitlab.requests("POST", "/api/v4/user/runners")
    assert len(creates) == 1, "only one of the two runs may create the runner"
    assert target.kube.requests("POST", LEASE_PATH), "the runs took the namespace lock"
    assert (
        target.kube.get_object(
            "coordination.k8s.io/v1", "Lease", "gitlab-eci-bootstrap", "gitlab-runner"
        )
        is None
    )


def test_status_shows_who_holds_the_lock(target: Target) -> None:
    assert target.run("install").exit_code == 0
    renewed = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    target.kube.add_object(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "gitlab-eci-bootstrap", "namespace": "gitlab-runner"},
            "spec": {
                "holderIdentity": "ci-host/pid-42/abcd1234",
                "leaseDurationSeconds": 60,
                "renewTime": renewed,
            },
        }
    )
    result = target.run("status")
    assert "Lock: held by ci-host/pid-42/abcd1234" in result.stdout
    started = time.monotonic()
    waited = target.run("install", "--timeout", "2", "--dry-run")
    assert waited.exit_code == 0, "a dry run reads only and takes no lock"
    assert time.monotonic() - started < 30
