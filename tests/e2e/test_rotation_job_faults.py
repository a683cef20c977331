"""The fault-position table of the ops project's rotation job.

For every request the scheduled job makes (after one install, with both tokens expiring
within the window) to GitLab and to the cluster: a fresh install, the job run once with a
fault at that position, then once clean. The faulted run exits with a contract code and a
clear message; the clean run converges: two runners, the Secret holds each one's current
token, the pods carry the Secret's config, and neither token expires within the window.

The job's command runs in-process here (the same argv, environment and ServiceAccount as
``test_rotation_job.py`` gives the script, whose subprocess run that test proves).
"""

from __future__ import annotations

import base64
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bootstrap.render.objects import config_checksum
from tests.conftest import CliResult, run_cli
from tests.e2e.conftest import Target, virtual_node
from tests.e2e.test_rotation_job import DAY, NAMESPACE, Job, _install
from tests.fakes.fixtures import GROUP, OWNER_API_TOKEN, OWNER_TOKEN
from tests.fakes.gitlab import OWNER, FakeGitLab
from tests.fakes.kube import FakeKube
from tests.fakes.pods import runner_pods

TIMEOUT = 1.0  # client request timeout; a "delay" fault would answer after 1.5 s


class World:
    """Fresh fakes, installed, and the rotation job of their ops project."""

    def __init__(self, workdir: Path) -> None:
        self.gitlab = FakeGitLab()
        self.gitlab.add_user("owner", OWNER_TOKEN, ["create_runner", "manage_runner", "read_api"])
        self.gitlab.add_token("owner", OWNER_API_TOKEN, ["api"], name="api")
        self.gitlab.add_group(GROUP, {"owner": OWNER})
        self.kube = FakeKube()
        self.gitlab.runner_processes = lambda: runner_pods(self.kube)
        self.gitlab.start()
        self.kube.start()
        self.kube.kubeconfig(workdir / "kubeconfig")
        self.kube.add_crd_imagecache()
        self.kube.add_object(virtual_node())
        (workdir / "work").mkdir()
        self.target = Target(self.gitlab, self.kube, workdir / "work", gitlab_url=self.gitlab.url)
        self.ids = _install(self.target, expiry_days=3)
        self.gitlab.set_token_expiry(90 * DAY)
        self.job = Job(self.target, workdir)
        self.env = {
            **self.job.env(self.job.service_account()),
            "BOOTSTRAP_GITLAB__REQUEST_TIMEOUT": str(TIMEOUT),
            "BOOTSTRAP_KUBERNETES__REQUEST_TIMEOUT": str(TIMEOUT),
        }

    def close(self) -> None:
        self.gitlab.stop()
        self.kube.stop()

    def run_job(self) -> CliResult:
        """The job's rotate command (its script's last line), in-process."""
        argv = ["rotate", "--if-expiring-within", self.env["BOOTSTRAP_ROTATE_BEFORE"]]
        return run_cli([*argv, "--timeout", "30"], env=self.env, cwd=self.job.checkout)

    def assert_converged(self) -> None:
        runners = self.gitlab.runners
        assert sorted(runners) == sorted(self.ids.values()), f"runners {sorted(runners)}"
        secret = self.kube.get_object("v1", "Secret", "gitlab-runner-config", NAMESPACE)
        assert secret is not None
        config = base64.b64decode(secret["data"]["config.toml"]).decode()
        group, ops = tomllib.loads(config)["runners"]
        assert group["token"] == runners[self.ids["group_type"]].token
        assert ops["token"] == runners[self.ids["project_type"]].token
        deploy = self.kube.get_object("apps/v1", "Deployment", "gitlab-runner", NAMESPACE)
        assert deploy is not None
        annotations = deploy["spec"]["template"]["metadata"]["annotations"]
        assert annotations["gitlab-eci-bootstrap/config-checksum"] == config_checksum(config)
        soon = datetime.now(UTC) + timedelta(days=7)
        for runner in runners.values():
            assert runner.token_expires_at is not None
            assert runner.token_expires_at > soon, f"runner #{runner.id} still expiring"


@pytest.fixture
def worlds(tmp_path: Path) -> Iterator[list[World]]:
    made: list[World] = []
    yield made
    for world in made:
        world.close()


def _new(worlds: list[World], tmp_path: Path) -> World:
    directory = tmp_path / f"w{len(list(tmp_path.iterdir()))}"
    directory.mkdir()
    world = World(directory)
    worlds.append(world)
    return world


@pytest.mark.parametrize(
    ("system", "fault"), [("gitlab", "reset"), ("kube", "500"), ("kube", "reset")]
)
def test_the_job_converges_after_a_fault_at_any_request(
    worlds: list[World], tmp_path: Path, system: str, fault: str
) -> None:
    probe = _new(worlds, tmp_path)
    probe.gitlab.clear_log()
    probe.kube.clear_log()
    assert probe.run_job().exit_code == 0
    count = len(probe.gitlab.requests() if system == "gitlab" else probe.kube.requests())
    probe.close()
    worlds.remove(probe)
    row = []
    for position in range(1, count + 1):
        world = _new(worlds, tmp_path)
        server = world.gitlab if system == "gitlab" else world.kube
        server.clear_log()
        server.inject(fault, nth=position, seconds=TIMEOUT + 0.5)
        faulted = world.run_job()
        server.clear_faults()
        assert faulted.exit_code in (0, 3, 4, 5), faulted.output
        assert "Traceback" not in faulted.output
        if faulted.exit_code:
            assert "\nerror: " in "\n" + faulted.stderr, faulted.stderr
        clean = world.run_job()
        assert clean.exit_code == 0, f"{system}#{position} {fault}: {clean.output}"
        world.assert_converged()
        row.append(f"{position}:{faulted.exit_code}")
        world.close()
        worlds.remove(world)
    print(
        f"\nrotation job × {system} × {fault}: {len(row)} positions, "
        f"faulted exit codes {' '.join(row)}; converged 100 %"
    )
    assert len(row) == count > 0


#: The writes of the loop token's renewal: the self-rotation, then the value, then the id.
RENEWAL_WRITES = [
    ("POST", r"/access_tokens/self/rotate$"),
    ("PUT", r"/variables/GITLAB_TOKEN$"),
    ("PUT", r"/variables/BOOTSTRAP_LOOP_TOKEN_ID$"),
]


@pytest.mark.parametrize("fault", ["reset", "delay", "500"])
@pytest.mark.parametrize("write", range(len(RENEWAL_WRITES)))
def test_a_fault_in_the_loop_token_renewal_is_repaired_by_the_next_run_or_install(
    worlds: list[World], tmp_path: Path, fault: str, write: int
) -> None:
    world = _new(worlds, tmp_path)
    assert world.run_job().exit_code == 0  # the runner tokens are renewed: not in the way
    project = world.gitlab.project("mygroup/gitlab-eci-bootstrap")
    [stored] = [v for v in project.variables if v.key == "GITLAB_TOKEN"]
    world.gitlab.tokens[stored.value].expires_at = (datetime.now(UTC) + timedelta(days=3)).date()
    world.gitlab.inject(fault, match=RENEWAL_WRITES[write], seconds=TIMEOUT + 0.5)

    faulted = world.run_job()

    world.gitlab.clear_faults()
    assert faulted.exit_code in (0, 3), faulted.output
    assert "Traceback" not in faulted.output
    world.env = {**world.env, **world.job.env(world.job.service_account())}  # the stored value
    clean = world.run_job()
    if clean.exit_code != 0:
        # Locked out (the new value was lost with the answer): status says so, install repairs.
        status = world.target.run("status")
        assert status.exit_code == 3, status.output
        assert "the scheduled rotation is locked out" in status.output
        assert world.target.run("install").exit_code == 0
        world.env = {**world.env, **world.job.env(world.job.service_account())}
        clean = world.run_job()
    assert clean.exit_code == 0, f"{RENEWAL_WRITES[write]} {fault}: {clean.output}"
    project = world.gitlab.project("mygroup/gitlab-eci-bootstrap")
    [stored] = [v for v in project.variables if v.key == "GITLAB_TOKEN"]
    active = world.gitlab.access_tokens.active(GROUP)
    assert [t.token for t in active] == [stored.value], "one live loop token: the stored one"
    assert active[0].expires_at is not None
    assert active[0].expires_at > (datetime.now(UTC) + timedelta(days=7)).date()
    world.assert_converged()
