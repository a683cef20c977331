"""A lock per namespace, so two runs of install or rotate never interleave.

The lock is a ``coordination.k8s.io/v1`` Lease named ``gitlab-eci-bootstrap`` in the
runner's namespace — the mechanism Kubernetes controllers use for leader election. Whoever
holds it renews it while working; a holder that crashed stops renewing, and once
``renewTime + leaseDurationSeconds`` has passed anyone may take it over. All changes go
through resourceVersion-guarded writes, so two contenders can never both win.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bootstrap.errors import KubeError, WaitTimeout
from bootstrap.kube import Kube
from bootstrap.render.names import LABEL_MANAGED_BY, LOCK_LEASE, MANAGED_BY
from bootstrap.report import Reporter

LEASE = LOCK_LEASE
DURATION = 60
#: What taking, renewing and releasing the lock needs on Leases.
LOCK_VERBS = ("create", "get", "update", "delete")
_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class Holder:
    """Who holds the lock, and until when it is theirs."""

    identity: str
    renewed: datetime | None
    duration: int

    @property
    def expires(self) -> datetime | None:
        return self.renewed + timedelta(seconds=self.duration) if self.renewed else None

    def expired(self, now: datetime) -> bool:
        return not self.identity or self.expires is None or self.expires <= now


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def holder_of(lease: dict[str, Any] | None) -> Holder | None:
    """The holder recorded in a Lease, None when nobody holds it."""
    if not lease:
        return None
    spec = lease.get("spec") or {}
    identity = spec.get("holderIdentity") or ""
    if not identity:
        return None
    return Holder(
        identity, _parse(spec.get("renewTime")), int(spec.get("leaseDurationSeconds") or DURATION)
    )


def read_holder(kube: Kube, namespace: str) -> Holder | None:
    """The current holder (for ``status``), None when the lock is free."""
    return holder_of(kube.get("Lease", LEASE, namespace))


def identity() -> str:
    """Host, process and a random part: unique per run, readable in ``status``."""
    return f"{socket.gethostname()}/pid-{os.getpid()}/{uuid.uuid4().hex[:8]}"


class Lock:
    """Acquire, renew in the background, release."""

    def __init__(
        self, kube: Kube, namespace: str, *, duration: int = DURATION, me: str | None = None
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.duration = duration
        self.me = me or identity()
        self._lease: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.lost = False

    def _body(self, *, acquire: bool, base: dict[str, Any] | None = None) -> dict[str, Any]:
        stamp = _now().strftime(_TIME)
        body: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": LEASE,
                "namespace": self.namespace,
                "labels": {LABEL_MANAGED_BY: MANAGED_BY},
            },
            "spec": {
                "holderIdentity": self.me,
                "leaseDurationSeconds": self.duration,
                "renewTime": stamp,
            },
        }
        if base is not None:
            body["metadata"]["resourceVersion"] = base["metadata"]["resourceVersion"]
            spec = base.get("spec") or {}
            body["spec"]["acquireTime"] = stamp if acquire else spec.get("acquireTime", stamp)
            transitions = int(spec.get("leaseTransitions") or 0)
            body["spec"]["leaseTransitions"] = transitions + (1 if acquire else 0)
        else:
            body["spec"]["acquireTime"] = stamp
            body["spec"]["leaseTransitions"] = 0
        return body

    def try_acquire(self) -> Holder | None:
        """Take the lock if it is free or expired; otherwise return who holds it."""
        # Create first: the lock is usually free, and a taken one answers 409 at once.
        won = self._write(self.kube.create, self._body(acquire=True))
        if won is not None:
            self._lease = won
            return None
        lease = self.kube.get("Lease", LEASE, self.namespace)
        if lease is None:
            won = self._write(self.kube.create, self._body(acquire=True))
        else:
            holder = holder_of(lease)
            if holder is not None and holder.identity != self.me and not holder.expired(_now()):
                return holder
            won = self._write(self.kube.replace, self._body(acquire=True, base=lease))
        if won is not None:
            self._lease = won
            return None
        # Lost a race, or the write's answer never came (it may have happened): the Lease
        # itself says who holds it now.
        lease = self.kube.get("Lease", LEASE, self.namespace)
        holder = holder_of(lease)
        if lease is not None and holder is not None and holder.identity == self.me:
            self._lease = lease
            return None
        return holder or Holder("someone (the lock just changed hands)", None, 0)

    def _write(
        self, write: Callable[[dict[str, Any]], dict[str, Any] | None], body: dict[str, Any]
    ) -> dict[str, Any] | None:
        """A create or replace: the stored Lease, or None on a conflict or an unknown outcome
        (no answer, or a server error: it may have happened; the caller reads the Lease)."""
        try:
            return write(body)
        except KubeError as exc:
            if exc.status is not None and exc.status < 500:
                raise
            return None

    def acquire(self, *, deadline: float, on_wait: Callable[[Holder], None] | None = None) -> None:
        """Wait for the lock until ``deadline`` (monotonic); then renew it in the background."""
        delay = 1.0
        while True:
            holder = self.try_acquire()
            if holder is None:
                break
            if on_wait:
                on_wait(holder)
            if time.monotonic() >= deadline:
                raise WaitTimeout(
                    f"namespace {self.namespace} is locked by {holder.identity} "
                    f"(Lease {LEASE}, expires {holder.expires:%Y-%m-%d %H:%M:%S} UTC)"
                    if holder.expires
                    else f"namespace {self.namespace} is locked by {holder.identity}",
                    hint="another install or rotate is running; wait for it, or raise --timeout "
                    "(a crashed holder's lock expires by itself)",
                )
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 1.5, 5.0)
        self._renewer = threading.Thread(target=self._renew_loop, name="lease-renewer", daemon=True)
        self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.duration / 3):
            lease = self._lease
            if lease is None:
                return
            try:
                renewed = self.kube.replace(self._body(acquire=False, base=lease))
            except KubeError:  # retried at the next tick: the lease outlives a few misses
                continue
            if renewed is None:
                self.lost = True
                return
            self._lease = renewed

    def release(self) -> None:
        """Give the lock up at once (others need not wait for it to expire).

        The Lease is deleted, guarded by its resourceVersion, so nothing is left behind and
        a lease someone else took over meanwhile is never touched.
        """
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        lease, self._lease = self._lease, None
        if lease is None:
            return
        try:
            self.kube.delete(
                "Lease",
                LEASE,
                self.namespace,
                resource_version=lease["metadata"]["resourceVersion"],
            )
        except KubeError:  # the lease expires by itself; releasing is a courtesy
            return


def tell_waiting(reporter: Reporter) -> Callable[[Holder], None]:
    """An ``on_wait`` that shows whom we are waiting for."""
    return lambda holder: reporter.progress(f"Waiting for the lock held by {holder.identity}")


@contextmanager
def locked(
    kube: Kube,
    namespace: str,
    *,
    deadline: float,
    on_wait: Callable[[Holder], None] | None = None,
) -> Iterator[Lock]:
    """Hold the namespace's lock for the duration of a ``with`` block."""
    lock = Lock(kube, namespace)
    lock.acquire(deadline=deadline, on_wait=on_wait)
    try:
        yield lock
    finally:
        lock.release()
