"""The fault matrix: a fault at every request position of a clean run, then one clean run.

For `install` (from nothing) and `rotate --force` (on an installed runner), for every
request a clean run makes to GitLab and to the cluster, and for each fault — 500, 429 with
Retry-After, a connection reset, and an answer delayed past the client's timeout — run once
with the fault injected at that position, then once clean. The faulted run must exit with a
contract code and a clear message; the clean run must converge: exactly one runner for the
group, the Secret's token is the runner's current one, the pods carry the Secret's config,
and nothing else of ours is left in the cluster. Each test prints its row of the table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bootstrap.render.objects import config_checksum
from tests.conftest import OUTPUTS, CliResult, run_cli
from tests.e2e.conftest import EXPECTED
from tests.fakes.fixtures import GROUP, OWNER_TOKEN
from tests.fakes.gitlab import OWNER, FakeGitLab
from tests.fakes.kube import FakeKube
from tests.fakes.pods import runner_pods

FAULTS = ("500", "429", "reset", "delay")
TIMEOUT = 1.0  # client request timeout in this test; a "delay" fault answers after 1.5 s


class World:
    """A fresh fake GitLab and cluster, and the CLI pointed at them."""

    def __init__(self, workdir: Path) -> None:
        self.gitlab = FakeGitLab(token_expiry=30 * 86400)
        self.gitlab.add_user("owner", OWNER_TOKEN, ["create_runner", "manage_runner", "read_api"])
        self.gitlab.add_group(GROUP, {"owner": OWNER})
        self.kube = FakeKube()
        # The runner pods in the fake cluster contact the fake GitLab with their token.
        self.gitlab.runner_processes = lambda: runner_pods(self.kube)
        self.workdir = workdir

    def __enter__(self) -> World:
        self.gitlab.start()
        self.kube.start()
        self.kube.kubeconfig(self.workdir / "kubeconfig")
        self.kube.add_crd_imagecache()
        return self

    def __exit__(self, *exc: object) -> None:
        self.gitlab.stop()
        self.kube.stop()

    def run(self, *args: str) -> CliResult:
        env = {
            "GITLAB_URL": self.gitlab.url,
            "GITLAB_TOKEN": OWNER_TOKEN,
            "BOOTSTRAP_GITLAB__REQUEST_TIMEOUT": str(TIMEOUT),
            "BOOTSTRAP_KUBERNETES__REQUEST_TIMEOUT": str(TIMEOUT),
        }
        argv = [
            args[0],
            "--group",
            GROUP,
            "--kubeconfig",
            str(self.kube.kubeconfig_path),
            *args[1:],
            "--timeout",
            "30",
        ]
        if args[0] == "install":
            argv += ["--skip-templates", "--skip-schedule"]
        return run_cli(argv, env=env, cwd=self.workdir)

    def positions(self, *args: str) -> tuple[int, int]:
        self.gitlab.clear_log()
        self.kube.clear_log()
        assert self.run(*args).exit_code == 0
        return len(self.gitlab.requests()), len(self.kube.requests())

    def assert_converged(self) -> None:
        runners = list(self.gitlab.runners.values())
        assert len(runners) == 1, f"{len(runners)} runners"
        secret = self.kube.get_object("v1", "Secret", "gitlab-runner-config", "gitlab-runner")
        assert secret is not None
        import base64
        import tomllib

        config = base64.b64decode(secret["data"]["config.toml"]).decode()
        assert tomllib.loads(config)["runners"][0]["token"] == runners[0].token
        deploy = self.kube.get_object("apps/v1", "Deployment", "gitlab-runner", "gitlab-runner")
        assert deploy is not None
        checksum = deploy["spec"]["template"]["metadata"]["annotations"][
            "gitlab-eci-bootstrap/config-checksum"
        ]
        assert checksum == config_checksum(config)
        ours = {
            f"{o['kind']}/{o['metadata']['name']}"
            for o in self.kube.objects()
            if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by")
            == "gitlab-eci-bootstrap"
            and o["kind"] not in ("Pod", "ReplicaSet")
        }
        assert ours == EXPECTED, f"orphans or missing: {ours ^ EXPECTED}"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Callable[[], World]]:
    made: list[World] = []

    def make() -> World:
        directory = tmp_path / f"w{len(made)}"
        directory.mkdir()
        world = World(directory).__enter__()
        made.append(world)
        return world

    yield make
    tokens = [t for w in made for t in w.gitlab.runner_tokens()] + [OWNER_TOKEN]
    for output in OUTPUTS:
        for token in tokens:
            assert token not in output, "a token leaked into the output"
    for world in made:
        world.__exit__()


def _matrix(
    make: Callable[[], World],
    system: str,
    fault: str,
    prepare: Callable[[World], None],
    command: tuple[str, ...],
    settle: tuple[str, ...],
) -> list[str]:
    probe = make()
    prepare(probe)
    gitlab_count, kube_count = probe.positions(*command)
    count = gitlab_count if system == "gitlab" else kube_count
    row = []
    for position in range(1, count + 1):
        w = make()
        prepare(w)
        server = w.gitlab if system == "gitlab" else w.kube
        server.clear_log()
        server.inject(fault, nth=position, seconds=TIMEOUT + 0.5)
        faulted = w.run(*command)
        server.clear_faults()
        assert faulted.exit_code in (0, 3, 4, 5), faulted.output
        assert "Traceback" not in faulted.output
        if faulted.exit_code:
            assert "\nerror: " in "\n" + faulted.stderr, faulted.stderr
        clean = w.run(*settle)
        assert clean.exit_code == 0, f"{system}#{position} {fault}: {clean.output}"
        w.assert_converged()
        row.append(f"{position}:{faulted.exit_code}")
        w.__exit__()
    print(
        f"\n{' '.join(command)} × {system} × {fault}: {len(row)} positions, "
        f"faulted exit codes {' '.join(row)}; converged 100 %"
    )
    return row


def _nothing(world: World) -> None:
    del world


def _installed(world: World) -> None:
    assert world.run("install").exit_code == 0


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("system", ["gitlab", "kube"])
def test_install_converges_after_a_fault_anywhere(
    world: Callable[[], World], system: str, fault: str
) -> None:
    row = _matrix(world, system, fault, _nothing, ("install",), ("install",))
    assert row


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("system", ["gitlab", "kube"])
def test_rotate_converges_after_a_fault_anywhere(
    world: Callable[[], World], system: str, fault: str
) -> None:
    # The clean run is `rotate` without a window: it rotates (or repairs) once more.
    row = _matrix(world, system, fault, _installed, ("rotate", "--force"), ("rotate",))
    assert row
