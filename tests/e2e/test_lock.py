"""The namespace lock (a Lease) against the fake kube-apiserver."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from bootstrap.errors import WaitTimeout
from bootstrap.kube import Kube
from bootstrap.lock import LEASE, Lock, read_holder
from tests.fakes.kube import FakeKube


@pytest.fixture
def kube(fake_kube: FakeKube) -> Kube:
    return Kube(kubeconfig=str(fake_kube.kubeconfig_path))


def test_one_holder_at_a_time(kube: Kube) -> None:
    first, second = Lock(kube, "default", me="first"), Lock(kube, "default", me="second")
    assert first.try_acquire() is None
    holder = second.try_acquire()
    assert holder is not None
    assert holder.identity == "first"
    assert read_holder(kube, "default").identity == "first"  # type: ignore[union-attr]


def test_release_frees_it_at_once(kube: Kube) -> None:
    first, second = Lock(kube, "default", me="first"), Lock(kube, "default", me="second")
    first.acquire(deadline=time.monotonic() + 5)
    first.release()
    assert read_holder(kube, "default") is None
    assert second.try_acquire() is None


def test_a_crashed_holders_lease_expires(kube: Kube, fake_kube: FakeKube) -> None:
    stale = (datetime.now(UTC) - timedelta(seconds=120)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fake_kube.add_object(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": LEASE, "namespace": "default"},
            "spec": {"holderIdentity": "crashed", "leaseDurationSeconds": 60, "renewTime": stale},
        }
    )
    lock = Lock(kube, "default", me="me")
    assert lock.try_acquire() is None
    lease = fake_kube.get_object("coordination.k8s.io/v1", "Lease", LEASE, "default")
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "me"
    assert lease["spec"]["leaseTransitions"] == 1


def test_waiting_past_the_deadline_names_the_holder(kube: Kube) -> None:
    Lock(kube, "default", me="busy-host/pid-1/abc").try_acquire()
    with pytest.raises(WaitTimeout, match="locked by busy-host/pid-1/abc"):
        Lock(kube, "default", me="me").acquire(deadline=time.monotonic() + 0.2)


def test_the_holder_renews_while_it_works(kube: Kube, fake_kube: FakeKube) -> None:
    lock = Lock(kube, "default", duration=1, me="worker")
    lock.acquire(deadline=time.monotonic() + 5)
    first = fake_kube.get_object("coordination.k8s.io/v1", "Lease", LEASE, "default")
    time.sleep(0.8)
    later = fake_kube.get_object("coordination.k8s.io/v1", "Lease", LEASE, "default")
    lock.release()
    assert first is not None
    assert later is not None
    assert later["spec"]["renewTime"] > first["spec"]["renewTime"]
    assert not lock.lost
