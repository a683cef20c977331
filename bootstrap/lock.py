"""A lock per namespace, so two runs of install or rotate never interleave.

The lock is a ``coordination.k8s.io/v1`` Lease named ``gitlab-eci-bootstrap`` in the
runner's namespace — the mechanism Kubernetes controllers use for leader election. Whoever
holds it renews it while working; a holder that crashed stops renewing, and once
``renewTime + leaseDurationSeconds`` has passed anyone may take it over. All changes go
through resourceVersion-guarded writes, so two contenders can never both win.

Holding it is checked, not assumed: while a run holds the lock, every write its GitLab and
Kubernetes connections send first calls :meth:`Lock.check` (the clients' ``write_guard``).
A holder that was paused past its lease (a laptop that slept, a stopped process) finds at its
next write that another run took the lock over, and stops before writing.

The Lease also records which machine and process holds it (boot id, PID namespace, PID): a
run waiting on the same machine can tell that the holder's process is gone (killed, crashed)
and takes the lock over at once instead of waiting for the lease to expire.
"""

from __future__ import annotations

import copy
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bootstrap.errors import KubeError, LockLost, WaitTimeout
from bootstrap.kube import Kube
from bootstrap.render.names import LABEL_MANAGED_BY, LOCK_LEASE, MANAGED_BY
from bootstrap.report import Reporter

LEASE = LOCK_LEASE
DURATION = 60
#: What taking, renewing and releasing the lock needs on Leases.
LOCK_VERBS = ("create", "get", "update", "delete")
#: The holder's machine and process: ``<boot id>/<pid namespace>/<pid>``.
ANNOTATION_PROCESS = f"{MANAGED_BY}/holder-process"
_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def _machine() -> str:
    """What tells this machine and PID namespace apart from any other ('' when unknown).

    The boot id changes with every boot and differs between machines; containers on one
    host share it, but not their PID namespace. Both are needed before a PID is compared.
    """
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            boot = handle.read().strip()
        pid_ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return f"{boot}/{pid_ns}" if boot and pid_ns else ""


def _process_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs here (a zombie, killed but not reaped, is gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, as another user's process
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


@dataclass(frozen=True)
class Holder:
    """Who holds the lock, and until when it is theirs."""

    identity: str
    renewed: datetime | None
    duration: int
    #: The holder's ``<boot id>/<pid namespace>`` and PID ('' and None when not recorded).
    machine: str = ""
    pid: int | None = None

    @property
    def expires(self) -> datetime | None:
        return self.renewed + timedelta(seconds=self.duration) if self.renewed else None

    def expired(self, now: datetime) -> bool:
        return not self.identity or self.expires is None or self.expires <= now

    def gone(self) -> bool:
        """Whether the holder is a process of this machine that no longer runs.

        Only then is it known dead: on another machine, or without the record, a holder is
        alive until its lease expires.
        """
        here = _machine()
        return (
            bool(here)
            and self.machine == here
            and self.pid is not None
            and (_process_gone(self.pid))
        )


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
    annotations = (lease.get("metadata") or {}).get("annotations") or {}
    machine, _, pid = str(annotations.get(ANNOTATION_PROCESS, "")).rpartition("/")
    return Holder(
        identity,
        _parse(spec.get("renewTime")),
        int(spec.get("leaseDurationSeconds") or DURATION),
        machine=machine,
        pid=int(pid) if pid.isdigit() and machine else None,
    )


def read_holder(kube: Kube, namespace: str) -> Holder | None:
    """The current holder (for ``status``), None when the lock is free."""
    return holder_of(kube.get("Lease", LEASE, namespace))


def identity() -> str:
    """Host, process and a random part: unique per run, readable in ``status``."""
    return f"{socket.gethostname()}/pid-{os.getpid()}/{uuid.uuid4().hex[:8]}"


class Lock:
    """Acquire, renew in the background, check before each write, release.

    Args:
        kube: the connection; the lock writes its Lease through an unguarded copy of it.
        duration: the Lease's ``leaseDurationSeconds``: how long a holder that stopped
            renewing (crashed, paused) keeps others waiting.
    """

    def __init__(
        self, kube: Kube, namespace: str, *, duration: int = DURATION, me: str | None = None
    ) -> None:
        self.kube = copy.copy(kube)
        self.kube.write_guard = None  # the lock's own writes are not checked against itself
        self.namespace = namespace
        self.duration = duration
        self.me = me or identity()
        self._lease: dict[str, Any] | None = None
        self._renewed = 0.0  # time.time() of the last write that made the Lease ours
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.lost: Holder | None = None

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
        machine = _machine()
        if machine:
            body["metadata"]["annotations"] = {ANNOTATION_PROCESS: f"{machine}/{os.getpid()}"}
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

    def _won(self, lease: dict[str, Any]) -> None:
        self._lease = lease
        self._renewed = time.time()

    def try_acquire(self, on_wait: Callable[[Holder], None] | None = None) -> Holder | None:
        """Take the lock if it is free, expired or its holder is known dead; otherwise return
        who holds it. ``on_wait`` hears of a dead holder taken over."""
        # Create first: the lock is usually free, and a taken one answers 409 at once.
        started = time.time()
        won = self._write(self.kube.create, self._body(acquire=True))
        if won is not None:
            self._won(won)
            return None
        lease = self.kube.get("Lease", LEASE, self.namespace)
        if lease is None:
            won = self._write(self.kube.create, self._body(acquire=True))
        else:
            holder = holder_of(lease)
            if holder is not None and holder.identity != self.me and not holder.expired(_now()):
                if not holder.gone():
                    return holder
                if on_wait:
                    on_wait(holder)
            won = self._write(self.kube.replace, self._body(acquire=True, base=lease))
        if won is not None:
            self._won(won)
            return None
        # Lost a race, or the write's answer never came (it may have happened): the Lease
        # itself says who holds it now.
        lease = self.kube.get("Lease", LEASE, self.namespace)
        holder = holder_of(lease)
        if lease is not None and holder is not None and holder.identity == self.me:
            self._lease, self._renewed = lease, started
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
            holder = self.try_acquire(on_wait)
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

    def _renew(self) -> None:
        """Renew the Lease once; marks the lock lost when someone else holds it now."""
        with self._mutex:
            lease = self._lease
            if lease is None or self.lost is not None:
                return
            started = time.time()
            try:
                renewed = self.kube.replace(self._body(acquire=False, base=lease))
            except KubeError as exc:
                if exc.status != 404:
                    raise
                renewed = None  # deleted: its next holder came and went
            if renewed is None:
                self.lost = holder_of(self.kube.get("Lease", LEASE, self.namespace)) or Holder(
                    "nobody (the Lease was deleted)", None, 0
                )
                return
            self._lease, self._renewed = renewed, started

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.duration / 3):
            try:
                self._renew()
            except KubeError:  # retried at the next tick: the lease outlives a few misses
                continue
            if self.lost is not None:
                return

    def check(self) -> None:
        """Raise unless the lock is still ours: called before every write while held.

        The background renewal keeps the Lease ours while the process runs; after a pause
        (the process stopped, the machine slept) the last renewal is old, so the Lease is
        renewed here first: a conflict means another run took it over meanwhile.
        """
        if self.lost is None and time.time() - self._renewed >= self.duration / 2:
            self._renew()
        if self.lost is not None:
            raise LockLost(
                f"lost the lock of namespace {self.namespace} to {self.lost.identity}: this run "
                f"did not renew its Lease {LEASE} for {self.duration}s (paused?) and another "
                "run took it over; stopped before changing anything more",
                hint="rerun: the next run plans again from what GitLab and the cluster hold",
            )
        if self._lease is None:
            raise KubeError(f"the lock of namespace {self.namespace} is not held by this run")

    def release(self) -> None:
        """Give the lock up at once (others need not wait for it to expire).

        The Lease is deleted, guarded by its resourceVersion, so nothing is left behind and
        a lease someone else took over meanwhile is never touched.
        """
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        with self._mutex:
            lease, self._lease = self._lease, None
        if lease is None or self.lost is not None:
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
    """An ``on_wait`` that shows whom we are waiting for (or take over from)."""

    def tell(holder: Holder) -> None:
        if holder.gone():
            reporter.progress(
                f"Taking over the lock held by {holder.identity}: its process "
                f"(pid {holder.pid}) no longer runs on this machine"
            )
        else:
            reporter.progress(f"Waiting for the lock held by {holder.identity}")

    return tell


class Guarded(Protocol):
    """A client whose writes can be checked first (``GitLab``, ``Kube``)."""

    write_guard: Callable[[], None] | None


@contextmanager
def locked(
    kube: Kube,
    namespace: str,
    *,
    deadline: float,
    on_wait: Callable[[Holder], None] | None = None,
    duration: int = DURATION,
    guard: tuple[Guarded, ...] = (),
) -> Iterator[Lock]:
    """Hold the namespace's lock for the duration of a ``with`` block.

    Every write of ``kube`` and of the clients in ``guard`` checks first that the lock is
    still ours (:meth:`Lock.check`).
    """
    lock = Lock(kube, namespace, duration=duration)
    lock.acquire(deadline=deadline, on_wait=on_wait)
    clients: tuple[Guarded, ...] = (kube, *guard)
    for client in clients:
        client.write_guard = lock.check
    try:
        yield lock
    finally:
        for client in clients:
            client.write_guard = None
        lock.release()
