"""Two installs at once, and the lock as `status` shows it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import UTC, datetime

from tests.e2e.conftest import Target
from tests.fakes.fixtures import GROUP, OWNER_API_TOKEN

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


def test_two_full_installs_at_once_build_one_rotation_loop(target: Target) -> None:
    # Templates, ops project, schedule and loop token too: every write of both runs goes
    # under the one Lease, and the run that waited decides again from what it finds.
    target.token, target.publish = OWNER_API_TOKEN, True
    target.kube.latency_ms = 20
    target.gitlab.latency_ms = 20
    first, second = _spawn(target), _spawn(target)
    outputs = [p.communicate(timeout=180) for p in (first, second)]
    target.outputs += [out + err for out, err in outputs]

    assert first.returncode == 0, outputs[0]
    assert second.returncode == 0, outputs[1]
    creates = [r for r in target.gitlab.requests("POST") if r.path == "/api/v4/projects"]
    assert len(creates) == 2, "the ops project and the templates project, each created once"
    ops = target.gitlab.project(f"{GROUP}/gitlab-eci-bootstrap")
    assert len(target.gitlab.commits(ops.full_path)) == 1
    assert len(target.gitlab.commits(f"{GROUP}/ci-templates")) == 1
    assert len(ops.schedules) == 1
    [token] = target.gitlab.access_tokens.active(GROUP)
    variables = {v.key: v.value for v in ops.variables}
    assert variables["BOOTSTRAP_LOOP_TOKEN_ID"] == str(token.id)
    assert variables["GITLAB_TOKEN"] == token.token, "GITLAB_TOKEN holds another token"
    assert len(target.gitlab.access_tokens.of_group(GROUP)) == 1, "a second token was made"
    assert len(target.gitlab.runners) == 2  # the group runner and the ops runner, once each
    # The later run showed its plan before any write, and once it held the lock what it
    # does now: the other run had published the templates and made the schedule meanwhile.
    [later] = [err for _, err in outputs if len(re.findall(r"^Plan: ", err, re.M)) == 2]
    again = later[later.index("\nPlan: ") :]
    assert f"Templates: {GROUP}/ci-templates v1.0.0 is up to date" in again
    assert f"Schedule: {GROUP}/gitlab-eci-bootstrap rotation schedule is up to date" in again
    valid = r"^Loop token: group access token #\d+, expires \S+ in .* is valid$"
    assert re.search(valid, again, re.M)


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
