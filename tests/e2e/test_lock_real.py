"""The lock is a real lock: state is re-read under it, and a lost lease stops the run.

The runs are the CLI against the fakes. A "holder" that created a runner and never stored it
is played by the test (it seeds the runner GitLab would hold while our run waits); a holder
paused past its lease is a real process stopped with SIGSTOP.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from bootstrap.errors import KubeError
from bootstrap.kube import Kube
from bootstrap.lock import LEASE, Lock, read_holder
from bootstrap.workflow import runner_attributes
from tests.conftest import make_settings
from tests.e2e.conftest import Target
from tests.fakes.fixtures import GROUP
from tests.fakes.kube import FakeKube

LEASES = "/apis/coordination.k8s.io/v1/namespaces/gitlab-runner/leases"


def _seed_unstored_runner(target: Target) -> int:
    """The runner another run created for this cluster and namespace but never stored."""
    settings = make_settings(gitlab={"group": GROUP}, kubernetes={"cluster_name": "fake"})
    return target.gitlab.add_runner(group=GROUP, **runner_attributes(settings)).id


def _when(condition: Callable[[], bool], then: Callable[[], None]) -> threading.Thread:
    """Run ``then`` in the background as soon as ``condition`` holds (polled)."""

    def watch() -> None:
        for _ in range(3000):
            if condition():
                then()
                return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _held_by(target: Target, identity: str) -> None:
    target.kube.add_object(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": LEASE, "namespace": "gitlab-runner"},
            "spec": {
                "holderIdentity": identity,
                "leaseDurationSeconds": 60,
                "renewTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            },
        }
    )


def test_a_waiter_adopts_the_runner_its_holder_created_but_never_stored(target: Target) -> None:
    # Another run holds the lock; while ours waits, that run creates the runner and dies
    # before storing it (its create answer timed out), then its lock is released.
    assert target.run("install", "--no-wait").exit_code == 0
    [first] = target.group_runners()
    target.gitlab_delete_runner(first)
    target.kube_delete("/api/v1/namespaces/gitlab-runner/secrets/gitlab-runner-config")
    _held_by(target, "other-host/pid-7/feedbeef")
    seeded: list[int] = []

    def holder_acts() -> None:
        seeded.append(_seed_unstored_runner(target))
        target.kube_delete(f"{LEASES}/{LEASE}")

    watcher = _when(lambda: bool(target.kube.requests("GET", f"{LEASES}/{LEASE}")), holder_acts)
    result = target.run("install", "--timeout", "60")
    watcher.join()

    assert result.exit_code == 0, result.output
    assert "Waiting for the lock held by other-host/pid-7/feedbeef" in result.output
    assert target.group_runners() == seeded, "the waiter created a second runner"
    assert target.stored_token() == target.gitlab.runner(seeded[0]).token
    assert not target.gitlab.requests("POST", "/api/v4/user/runners")[1:]


def test_a_runner_created_between_plan_and_lock_is_adopted(target: Target) -> None:
    # No wait at all: a run that created the runner (and crashed before storing it) finished
    # between our reads and our taking the lock. The Secret did not change; GitLab did.
    fault = target.kube.inject("delay", match=("POST", f"{LEASES}$"), seconds=1)
    seeded: list[int] = []
    watcher = _when(lambda: fault.fired, lambda: seeded.append(_seed_unstored_runner(target)))
    result = target.run("install", "--timeout", "60")
    watcher.join()

    assert result.exit_code == 0, result.output
    assert target.group_runners() == seeded, "install created a second runner"
    assert target.stored_token() == target.gitlab.runner(seeded[0]).token
    assert not target.gitlab.requests("POST", "/api/v4/user/runners")


def test_a_holder_paused_past_its_lease_does_not_write_after_a_takeover(target: Target) -> None:
    # A real process holding the lock (2 s lease) is stopped right after GitLab created its
    # runner, before it stores the token: a laptop closed mid-run.
    fault = target.gitlab.inject("delay", match=("POST", "/user/runners$"), seconds=0.5)
    paused = subprocess.Popen(
        [sys.executable, "-m", "bootstrap", *target.args("install", "--timeout", "120")],
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(target.workdir),
            **target.env,
            "BOOTSTRAP_KUBERNETES__LOCK_DURATION": "2",
        },
        cwd=target.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(3000):
            if fault.fired or paused.poll() is not None:
                break
            time.sleep(0.01)
        assert fault.fired, paused.communicate()
        paused.send_signal(signal.SIGSTOP)
        holder = read_holder(Kube(kubeconfig=str(target.kube.kubeconfig_path)), "gitlab-runner")
        assert holder is not None
        while not holder.expired(datetime.now(UTC)):
            time.sleep(0.1)
        # Another run takes the expired lock over and installs (adopting the runner).
        took_over = target.run("install", "--timeout", "60")
        assert took_over.exit_code == 0, took_over.output
    finally:
        paused.send_signal(signal.SIGCONT)
    out, err = paused.communicate(timeout=120)
    target.outputs.append(out + err)

    assert paused.returncode == 4, out + err
    assert "lost the lock of namespace gitlab-runner" in err
    [runner] = target.group_runners()
    assert target.stored_token() == target.gitlab.runner(runner).token, (
        "the paused run overwrote the stored token after losing the lock"
    )


# --- the lock itself ------------------------------------------------------------------------


@pytest.fixture
def kube(fake_kube: FakeKube) -> Kube:
    return Kube(kubeconfig=str(fake_kube.kubeconfig_path))


def _pause(lock: Lock) -> None:
    """Stop the lock's renewal, as a process stop or a machine's sleep does."""
    lock._stop.set()
    assert lock._renewer is not None
    lock._renewer.join()


def test_the_lease_lasts_60_seconds_by_default(kube: Kube, fake_kube: FakeKube) -> None:
    lock = Lock(kube, "default", me="me")
    lock.acquire(deadline=time.monotonic() + 5)
    lease = fake_kube.get_object("coordination.k8s.io/v1", "Lease", LEASE, "default")
    lock.release()
    assert lease is not None
    assert lease["spec"]["leaseDurationSeconds"] == 60


def test_check_stops_a_holder_whose_lease_was_taken_over(kube: Kube) -> None:
    paused = Lock(kube, "default", duration=2, me="paused")
    paused.acquire(deadline=time.monotonic() + 5)
    paused.check()  # fresh: still ours
    _pause(paused)
    other = Lock(kube, "default", duration=60, me="other")
    other.acquire(deadline=time.monotonic() + 10)
    try:
        with pytest.raises(KubeError, match="lost the lock of namespace default to other"):
            paused.check()
    finally:
        other.release()


def test_check_renews_a_late_but_untaken_lease(kube: Kube, fake_kube: FakeKube) -> None:
    lock = Lock(kube, "default", duration=2, me="late")
    lock.acquire(deadline=time.monotonic() + 5)
    _pause(lock)
    time.sleep(1.1)  # past half the lease: check() renews it itself before saying yes
    before = fake_kube.get_object("coordination.k8s.io/v1", "Lease", LEASE, "default")
    lock.check()
    after = fake_kube.get_object("coordination.k8s.io/v1", "Lease", LEASE, "default")
    lock.release()
    assert before is not None
    assert after is not None
    assert after["spec"]["renewTime"] > before["spec"]["renewTime"]
    assert lock.lost is None


def test_release_never_deletes_a_lease_someone_else_took_over(
    kube: Kube, fake_kube: FakeKube
) -> None:
    paused = Lock(kube, "default", duration=2, me="paused")
    paused.acquire(deadline=time.monotonic() + 5)
    _pause(paused)
    other = Lock(kube, "default", me="other")
    other.acquire(deadline=time.monotonic() + 10)
    paused.release()  # it has not noticed: its delete carries its old resourceVersion
    holder = read_holder(kube, "default")
    other.release()
    assert holder is not None
    assert holder.identity == "other"


def test_writes_while_locked_are_checked_and_unchecked_after(target: Target) -> None:
    from bootstrap.lock import locked

    kube = Kube(kubeconfig=str(target.kube.kubeconfig_path))
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "x", "namespace": "default"},
    }
    with locked(kube, "default", deadline=time.monotonic() + 5) as lock:
        lock.lost = read_holder(kube, "default")  # as if another run had taken it over
        with pytest.raises(KubeError, match="lost the lock"):
            kube.apply(secret)
        lock.lost = None
    kube.apply(secret)  # after the block, writes are not checked any more
    sent = [r for r in target.kube.requests("PATCH") if r.path.endswith("/secrets/x")]
    assert len(sent) == 1, "the refused write was sent anyway"


def test_status_is_unhealthy_with_two_marked_runners(target: Target) -> None:
    # What two runs that each created a runner leave behind (before this was fixed).
    assert target.run("install").exit_code == 0
    [deployed] = target.group_runners()
    duplicate = _seed_unstored_runner(target)

    result = target.run("status")

    assert result.exit_code == 3, result.output
    assert "Healthy." not in result.output
    assert f"#{deployed} is the one deployed, #{duplicate} is not" in result.output
