"""The lock is a real lock: state is re-read under it, and a lost lease stops the run.

The runs are the CLI against the fakes. A "holder" that created a runner and never stored it
is played by the test (it seeds the runner GitLab would hold while our run waits); a holder
paused past its lease is a real process stopped with SIGSTOP.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bootstrap.errors import KubeError, WaitTimeout
from bootstrap.kube import Kube
from bootstrap.lock import (
    ANNOTATION_PROCESS,
    LEASE,
    Holder,
    Lock,
    _machine,
    holder_of,
    read_holder,
)
from bootstrap.workflow import runner_attributes
from tests.conftest import make_settings
from tests.e2e.conftest import Target
from tests.fakes.fixtures import GROUP, OWNER_API_TOKEN
from tests.fakes.kube import FakeKube

LEASES = "/apis/coordination.k8s.io/v1/namespaces/gitlab-runner/leases"


def _seed_unstored_runner(target: Target, namespace: str = "gitlab-runner") -> int:
    """The runner another run created for this cluster and ``namespace`` but never stored."""
    settings = make_settings(
        gitlab={"group": GROUP}, kubernetes={"cluster_name": "fake", "namespace": namespace}
    )
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


def _plant(
    fake: FakeKube,
    identity: str,
    *,
    namespace: str = "gitlab-runner",
    age: float = 0,
    process: str | None = None,
    transitions: int | None = None,
) -> None:
    """A Lease held by ``identity``, renewed ``age`` seconds ago (60 s lease)."""
    renewed = datetime.now(UTC) - timedelta(seconds=age)
    spec: dict[str, Any] = {
        "holderIdentity": identity,
        "leaseDurationSeconds": 60,
        "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    if transitions is not None:
        spec["leaseTransitions"] = transitions
    meta: dict[str, Any] = {"name": LEASE, "namespace": namespace}
    if process is not None:
        meta["annotations"] = {ANNOTATION_PROCESS: process}
    fake.add_object(
        {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}
    )


def test_a_waiter_adopts_the_runner_its_holder_created_but_never_stored(target: Target) -> None:
    # Another run holds the lock; while ours waits, that run creates the runner and dies
    # before storing it (its create answer timed out), then its lock is released.
    assert target.run("install", "--no-wait").exit_code == 0
    [first] = target.group_runners()
    target.gitlab_delete_runner(first)
    target.kube_delete("/api/v1/namespaces/gitlab-runner/secrets/gitlab-runner-config")
    _plant(target.kube, "other-host/pid-7/feedbeef")
    seeded: list[int] = []

    def holder_acts() -> None:
        seeded.append(_seed_unstored_runner(target))
        target.kube_delete(f"{LEASES}/{LEASE}")

    watcher = _when(lambda: bool(target.kube.requests("GET", f"{LEASES}/{LEASE}")), holder_acts)
    result = target.run("install", "--timeout", "60")
    watcher.join()

    assert result.exit_code == 0, result.output
    assert "Waiting for the lock held by other-host/pid-7/feedbeef" in result.output
    # The plan shown before any write, then the new one once the holder's runner is seen.
    err = result.stderr
    first = err.index("GitLab: create runner — no runner for this cluster and namespace yet")
    waiting = err.index("Waiting for the lock held by")
    again = err.index(f"GitLab: reset the token of runner #{seeded[0]} — no usable token")
    assert first < waiting < again < err.index(f"Reset the token of runner #{seeded[0]}")
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


def _paused_install(target: Target, fault: Any) -> subprocess.Popen[str]:
    """A real install (2 s lease) stopped (SIGSTOP) as soon as ``fault`` (a delay) fired."""
    proc = subprocess.Popen(
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
    for _ in range(6000):
        if fault.fired or proc.poll() is not None:
            break
        time.sleep(0.01)
    assert fault.fired, proc.communicate()
    proc.send_signal(signal.SIGSTOP)
    return proc


def test_a_holder_paused_past_its_lease_does_not_write_after_a_takeover(target: Target) -> None:
    # A real process holding the lock (2 s lease) is stopped right after GitLab created its
    # runner, before it stores the token: a laptop closed mid-run.
    fault = target.gitlab.inject("delay", match=("POST", "/user/runners$"), seconds=0.5)
    paused = _paused_install(target, fault)
    try:
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


def _take_over_after_expiry(target: Target) -> Lock:
    """Another run's lock, taken once the paused holder's lease ran out."""
    kube = Kube(kubeconfig=str(target.kube.kubeconfig_path))
    holder = read_holder(kube, "gitlab-runner")
    assert holder is not None
    while not holder.expired(datetime.now(UTC)):
        time.sleep(0.1)
    other = Lock(kube, "gitlab-runner", me="other-host/pid-9/cafe0000")
    other.acquire(deadline=time.monotonic() + 30)
    return other


def _lose_the_lock(target: Target, fault: Any) -> str:
    """Pause a real install when ``fault`` fires, let another run take its expired lock,
    resume it while that run holds the lock; its output (it exited 4)."""
    paused = _paused_install(target, fault)
    try:
        other = _take_over_after_expiry(target)
    finally:
        paused.send_signal(signal.SIGCONT)
        out, err = paused.communicate(timeout=120)
        target.outputs.append(out + err)
    other.release()
    assert paused.returncode == 4, out + err
    return out + err


def test_a_lost_lease_stops_the_run_before_templates_schedule_and_loop_token(
    target: Target,
) -> None:
    # Paused under the lock after the runners and the cluster are done, as publish reads the
    # templates project again (the first read is the plan's, before the lock).
    target.token, target.publish = OWNER_API_TOKEN, True
    templates = "/projects/mygroup%2Fci-templates$"
    fault = target.gitlab.inject("delay", nth=2, match=("GET", templates), seconds=0.5)
    output = _lose_the_lock(target, fault)

    assert "lost the lock of namespace gitlab-runner to other-host/pid-9/cafe0000" in output
    assert target.gitlab.projects_api.find(f"{GROUP}/ci-templates") is None
    ops = target.gitlab.project(f"{GROUP}/gitlab-eci-bootstrap")  # made before the pause
    assert ops.schedules == {}
    assert ops.variables == []
    assert target.gitlab.access_tokens.of_group(GROUP) == []
    # The next run finishes the job.
    again = target.run("install")
    assert again.exit_code == 0, again.output
    assert len(target.gitlab.project(f"{GROUP}/gitlab-eci-bootstrap").schedules) == 1


def test_a_runner_made_before_the_lease_was_lost_is_left_for_adoption(target: Target) -> None:
    # Paused right after GitLab created the runner; another run holds the lock when this one
    # resumes, so its Secret write is refused. The compensating delete is not sent either
    # (the holder may have adopted that runner): the next install adopts it by its marker.
    fault = target.gitlab.inject("delay", match=("POST", "/user/runners$"), seconds=0.5)
    output = _lose_the_lock(target, fault)

    [made] = target.group_runners()
    assert f"Left runner #{made}: its token could not be stored and the lock was lost" in output
    assert not target.gitlab.requests("DELETE", f"/api/v4/runners/{made}")
    again = target.run("install")
    assert again.exit_code == 0, again.output
    assert target.group_runners() == [made], "a second runner instead of adopting the first"
    assert target.stored_token() == target.gitlab.runner(made).token
    assert len(target.gitlab.requests("POST", "/api/v4/user/runners")) == 1


# --- the lock itself ------------------------------------------------------------------------


@pytest.fixture
def kube(fake_kube: FakeKube) -> Kube:
    return Kube(kubeconfig=str(fake_kube.kubeconfig_path))


def _paused(kube: Kube, me: str) -> Lock:
    """A lock taken (2 s lease) by a holder that then stopped renewing."""
    lock = Lock(kube, "default", duration=2, me=me)
    lock.acquire(deadline=time.monotonic() + 5)
    _pause(lock)
    return lock


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
    lock = _paused(kube, "late")
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
    paused = _paused(kube, "paused")
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
    assert f"run `bootstrap install`: it deletes #{duplicate}" in result.output


def test_install_deletes_a_duplicate_marked_runner_and_keeps_the_recorded_one(
    target: Target,
) -> None:
    # A create sent by a run that lost the lock, reaching GitLab after the new holder's
    # re-read: a second marked runner nobody holds a token for.
    assert target.run("install").exit_code == 0
    [deployed] = target.group_runners()
    duplicate = _seed_unstored_runner(target)
    neighbour = _seed_unstored_runner(target, namespace="other-ns")  # another installation
    target.gitlab.clear_log()

    planned = target.run("install", "--dry-run")

    assert planned.exit_code == 0, planned.output
    assert f"GitLab: delete runner #{duplicate} (" in planned.output
    assert (
        f"a duplicate: it carries the marker of this cluster and namespace too, but "
        f"#{deployed} is the one deployed" in planned.output
    )
    assert f"#{neighbour}" not in planned.output
    assert "1 to delete" in planned.output
    assert target.gitlab_writes() == []
    assert sorted(target.group_runners()) == sorted([deployed, duplicate, neighbour])

    result = target.run("install", "--output", "json")

    assert result.exit_code == 0, result.output
    assert sorted(target.group_runners()) == sorted([deployed, neighbour])
    assert f"Deleted runner #{duplicate} (a duplicate" in result.output
    report = json.loads(result.stdout)
    assert report["runner"]["action"] == "reuse"
    assert report["runner"]["id"] == deployed
    assert [d["id"] for d in report["runner"]["deletes"]] == [duplicate]
    assert report["summary_by_system"]["gitlab"]["delete"] == 1
    assert tomllib.loads(target.stored_config())["runners"][0]["token"] == (
        target.gitlab.runners[deployed].token
    )

    status = target.run("status")
    assert status.exit_code == 0, status.output
    assert "Healthy." in status.output

    target.gitlab.clear_log()
    target.kube.clear_log()
    again = target.run("install")
    assert again.exit_code == 0, again.output
    assert target.gitlab_writes() == []
    assert target.kube_writes() == []


def test_install_adopting_a_marked_runner_deletes_the_other_one(target: Target) -> None:
    # Nothing stored (the Secret's holder never stored its create), two marked runners: one
    # is adopted (its token reset and stored), the other deleted.
    first, second = _seed_unstored_runner(target), _seed_unstored_runner(target)

    result = target.run("install")

    assert result.exit_code == 0, result.output
    [kept] = target.group_runners()
    assert kept in (first, second)
    assert f"Deleted runner #{({first, second} - {kept}).pop()} (a duplicate" in result.output
    assert "1 deleted" in result.output
    assert tomllib.loads(target.stored_config())["runners"][0]["token"] == (
        target.gitlab.runners[kept].token
    )
    assert target.run("status").exit_code == 0


# --- who holds it: the process record ---------------------------------------------------------


def test_the_lease_records_this_machine_and_process(kube: Kube, fake_kube: FakeKube) -> None:
    lock = Lock(kube, "default", me="me")
    lock.acquire(deadline=time.monotonic() + 5)
    holder = read_holder(kube, "default")
    lock.release()
    assert holder is not None
    assert holder.machine == _machine() != ""
    assert holder.pid == os.getpid()
    assert not holder.gone(), "this process runs"


def _exited_child() -> subprocess.Popen[bytes]:
    """A child process that has exited but is not reaped yet (a zombie)."""
    child = subprocess.Popen(["true"])
    stat = Path(f"/proc/{child.pid}/stat")
    while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.01)
    return child


def test_a_holder_is_gone_only_when_its_process_of_this_machine_ended() -> None:
    now = datetime.now(UTC)
    zombie = _exited_child()
    here = _machine()
    assert Holder("h/pid-x/1", now, 60, machine=here, pid=zombie.pid).gone(), "a zombie is gone"
    zombie.wait()
    assert Holder("h/pid-x/1", now, 60, machine=here, pid=zombie.pid).gone()
    assert not Holder("h", now, 60, machine="other-boot/pid:[1]", pid=zombie.pid).gone()
    assert not Holder("h", now, 60, machine=here, pid=None).gone()
    assert not Holder("h", now, 60, machine="", pid=zombie.pid).gone()
    assert not Holder("h", now, 60, machine=here, pid=os.getpid()).gone()


def test_another_users_process_is_not_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(pid: int, sig: int) -> None:
        raise PermissionError(pid)

    monkeypatch.setattr(os, "kill", denied)
    holder = Holder("h", datetime.now(UTC), 60, machine=_machine(), pid=12345)
    assert not holder.gone()


def test_a_lease_without_the_record_names_no_process() -> None:
    lease = {"spec": {"holderIdentity": "old-version/pid-3/abc", "leaseDurationSeconds": 30}}
    holder = holder_of(lease)
    assert holder is not None
    assert (holder.machine, holder.pid, holder.duration) == ("", None, 30)
    assert holder_of({"metadata": None, "spec": {"holderIdentity": "x"}}) is not None
    assert holder_of({"spec": {"holderIdentity": ""}}) is None
    assert holder_of(None) is None


def test_a_lease_expires_at_its_end_exactly() -> None:
    renewed = datetime(2026, 1, 1, tzinfo=UTC)
    holder = Holder("h", renewed, 60)
    assert not holder.expired(renewed + timedelta(seconds=59))
    assert holder.expired(renewed + timedelta(seconds=60))
    assert Holder("h", None, 60).expired(renewed)


def test_a_dead_local_holder_is_taken_over_at_once(kube: Kube, fake_kube: FakeKube) -> None:
    dead = _exited_child()
    dead.wait()
    _plant(
        fake_kube,
        f"here/pid-{dead.pid}/abc",
        namespace="default",
        process=f"{_machine()}/{dead.pid}",
        transitions=4,
    )
    told: list[Holder] = []
    lock = Lock(kube, "default", me="me")
    assert lock.try_acquire(told.append) is None
    lease = fake_kube.get_object("coordination.k8s.io/v1", "Lease", LEASE, "default")
    lock.release()
    assert [h.identity for h in told] == [f"here/pid-{dead.pid}/abc"]
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "me"
    assert lease["spec"]["leaseTransitions"] == 5


# --- the Lease's fields over its life ------------------------------------------------------------


def _lease(fake_kube: FakeKube) -> dict[str, Any]:
    lease = fake_kube.get_object("coordination.k8s.io/v1", "Lease", LEASE, "default")
    assert lease is not None
    return lease


def test_renewals_keep_the_acquire_time_and_the_transitions(
    kube: Kube, fake_kube: FakeKube
) -> None:
    lock = Lock(kube, "default", duration=1, me="worker")
    lock.acquire(deadline=time.monotonic() + 5)
    first = _lease(fake_kube)["spec"]
    assert first["leaseTransitions"] == 0
    assert first["acquireTime"] == first["renewTime"]
    seen = {first["renewTime"]}
    for _ in range(500):  # the renewer keeps renewing: wait for two renewals
        seen.add(_lease(fake_kube)["spec"]["renewTime"])
        if len(seen) >= 3:
            break
        time.sleep(0.02)
    later = _lease(fake_kube)["spec"]
    lock.release()
    assert len(seen) >= 3, "the holder stopped renewing"
    assert later["acquireTime"] == first["acquireTime"]
    assert later["leaseTransitions"] == 0


def test_check_right_after_taking_the_lock_sends_nothing(kube: Kube, fake_kube: FakeKube) -> None:
    lock = Lock(kube, "default", me="me")
    lock.acquire(deadline=time.monotonic() + 5)
    before = len(fake_kube.log)
    lock.check()
    lock.check()
    sent = len(fake_kube.log) - before
    lock.release()
    assert sent == 0, "check renewed a fresh lease"


def test_check_after_release_or_before_acquire_says_not_held(
    kube: Kube, fake_kube: FakeKube
) -> None:
    lock = Lock(kube, "default", me="me")
    with pytest.raises(KubeError, match="is not held by this run"):
        lock.check()
    lock.acquire(deadline=time.monotonic() + 5)
    lock.release()
    before = len(fake_kube.log)
    with pytest.raises(KubeError, match="is not held by this run"):
        lock.check()
    assert len(fake_kube.log) == before


def test_a_deleted_lease_is_a_lost_lock(kube: Kube, fake_kube: FakeKube) -> None:
    lock = _paused(kube, "me")
    Kube(kubeconfig=str(fake_kube.kubeconfig_path)).delete("Lease", LEASE, "default")
    time.sleep(1.1)  # past half the lease: check() must renew, and finds it gone
    with pytest.raises(KubeError, match="lost the lock of namespace default to nobody"):
        lock.check()
    before = len(fake_kube.log)
    with pytest.raises(KubeError, match="lost the lock"):
        lock.check()
    lock.release()
    assert len(fake_kube.log) == before, "a lost lock is not renewed or deleted again"


def test_the_lock_writes_its_lease_unchecked_even_through_a_guarded_client(kube: Kube) -> None:
    def refuse() -> None:
        raise KubeError("guarded")

    kube.write_guard = refuse
    lock = Lock(kube, "default", me="me")
    assert lock.try_acquire() is None
    lock.release()


# --- answers lost or refused ---------------------------------------------------------------------


def test_a_lease_deleted_between_the_conflict_and_the_read_is_created_again(
    kube: Kube, fake_kube: FakeKube
) -> None:
    # The first create's connection is reset (not processed): the Lease is read, found
    # missing, and created again.
    fake_kube.inject("reset", match=("POST", "/leases$"))
    lock = Lock(kube, "default", me="me")
    assert lock.try_acquire() is None
    assert _lease(fake_kube)["spec"]["holderIdentity"] == "me"
    lock.release()


def test_a_takeover_whose_answer_was_lost_is_read_back(fake_kube: FakeKube) -> None:
    _plant(fake_kube, "crashed", namespace="default", age=120)
    impatient = Kube(kubeconfig=str(fake_kube.kubeconfig_path), timeout=0.5, retries=1)
    fake_kube.inject("delay", match=("PUT", f"/leases/{LEASE}$"), seconds=2)
    lock = Lock(impatient, "default", me="me")
    assert lock.try_acquire() is None, "the replace happened: the Lease says so"
    lock.check()  # still ours: raises LockLost otherwise
    lock.release()


def test_a_takeover_refused_by_a_server_error_reports_the_lease_as_it_is(
    fake_kube: FakeKube,
) -> None:
    _plant(fake_kube, "crashed", namespace="default", age=120)
    kube = Kube(kubeconfig=str(fake_kube.kubeconfig_path), retries=1)
    fake_kube.inject("500", match=("PUT", f"/leases/{LEASE}$"))  # not processed
    lock = Lock(kube, "default", me="me")
    holder = lock.try_acquire()
    assert holder is not None
    assert holder.identity == "crashed", "the next try takes it over"
    assert lock.try_acquire() is None
    lock.release()


def test_a_refused_lease_write_is_an_error_not_a_wait(kube: Kube) -> None:
    with pytest.raises(KubeError, match=r"\(404\)"):
        Lock(kube, "no-such-namespace", me="me").try_acquire()


def test_a_server_error_on_create_is_an_unknown_outcome_resolved_by_reading(
    kube: Kube, fake_kube: FakeKube
) -> None:
    other = Lock(kube, "default", me="other")
    assert other.try_acquire() is None
    fake_kube.inject("500", match=("POST", "/leases$"))
    holder = Lock(kube, "default", me="me").try_acquire()
    other.release()
    assert holder is not None
    assert holder.identity == "other"


def test_locked_holds_a_lease_of_the_given_duration_and_tells_whom_it_took_over(
    kube: Kube, fake_kube: FakeKube
) -> None:
    from bootstrap.lock import locked

    dead = _exited_child()
    dead.wait()
    _plant(fake_kube, "killed", namespace="default", process=f"{_machine()}/{dead.pid}")
    told: list[str] = []
    with locked(
        kube, "default", deadline=time.monotonic() + 5, on_wait=lambda h: told.append(h.identity)
    ):
        held = _lease(fake_kube)
    assert told == ["killed"]
    assert held["spec"]["leaseDurationSeconds"] == 60
    with locked(kube, "default", deadline=time.monotonic() + 5, duration=7):
        assert _lease(fake_kube)["spec"]["leaseDurationSeconds"] == 7
    assert read_holder(kube, "default") is None, "the Lease is deleted when the block ends"


def test_a_running_process_named_like_a_zombie_is_not_gone(tmp_path: Path) -> None:
    # /proc/PID/stat is "PID (NAME) STATE ...", and NAME may hold ") Z": read from the right.
    sleeper = tmp_path / "t) Z 1"
    sleeper.write_bytes(Path("/bin/sleep").read_bytes())
    sleeper.chmod(0o755)
    proc = subprocess.Popen([str(sleeper), "30"])
    try:
        while "t) Z 1" not in Path(f"/proc/{proc.pid}/stat").read_text():
            time.sleep(0.01)
        holder = Holder("h", datetime.now(UTC), 60, machine=_machine(), pid=proc.pid)
        assert not holder.gone()
    finally:
        proc.kill()
        proc.wait()


def test_a_renewal_that_fails_stops_the_write_without_calling_the_lock_lost(
    kube: Kube, fake_kube: FakeKube
) -> None:
    # Whether the lock is still ours cannot be known: the write must not go out; a later
    # check may still renew it.
    lock = _paused(kube, "me")
    time.sleep(1.1)
    fake_kube.inject("500", match=("PUT", f"/leases/{LEASE}$"))
    with pytest.raises(KubeError, match=r"\(500\)"):
        lock.check()
    assert lock.lost is None
    lock.check()  # the next renewal goes through
    lock.release()


def test_release_leaves_no_renewer_behind(kube: Kube) -> None:
    lock = Lock(kube, "default", duration=60, me="me")
    lock.acquire(deadline=time.monotonic() + 5)
    assert "lease-renewer" in {t.name for t in threading.enumerate()}
    lock.release()
    assert "lease-renewer" not in {t.name for t in threading.enumerate()}


def test_a_waiter_backs_off_between_tries(kube: Kube, fake_kube: FakeKube) -> None:
    # Not a timing test: a waiter that did not pause would send thousands of requests.
    Lock(kube, "default", me="busy").try_acquire()
    before = len(fake_kube.log)
    with pytest.raises(WaitTimeout):
        Lock(kube, "default", me="me").acquire(deadline=time.monotonic() + 3)
    assert len(fake_kube.log) - before <= 20
