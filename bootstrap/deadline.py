"""The deadline of a whole command (``--timeout``): every wait, retry and HTTP request in it.

A workflow decorated with :func:`whole_run` sets the deadline from its ``timeout`` argument;
:mod:`bootstrap.gitlab` and :mod:`bootstrap.kube` cut each request's own timeout to what is
left of it and turn "no time left" into :class:`~bootstrap.errors.WaitTimeout` (exit 5). So
a server that accepts the connection and never answers costs at most ``--timeout``, not
``request_timeout`` × retries. One deadline per process (threads of a parallel read share
it); without one (library calls outside a workflow) nothing is cut.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from bootstrap.errors import WaitTimeout
from bootstrap.validators import format_timeout

P = ParamSpec("P")
T = TypeVar("T")

#: A request started at the deadline may still take this long: a wait's last poll, sent as
#: its own deadline comes, then reports the wait ("timed out waiting for ...") and not a
#: request cut short.
GRACE = 1.0

_lock = threading.Lock()
_state: dict[str, float] = {}  # "at" (monotonic) and "seconds", when a deadline is set


@contextmanager
def bounded(seconds: float) -> Iterator[None]:
    """Everything inside must end within ``seconds`` (the previous deadline is restored)."""
    with _lock:
        previous = dict(_state)
        _state.update(at=time.monotonic() + seconds, seconds=seconds)
    try:
        yield
    finally:
        with _lock:
            _state.clear()
            _state.update(previous)


def whole_run(func: Callable[P, T]) -> Callable[P, T]:
    """Bound the decorated workflow by its own ``timeout`` keyword argument (None: no bound
    of its own, for a workflow another one calls within its deadline)."""
    default = inspect.signature(func).parameters["timeout"].default

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        timeout = kwargs.get("timeout", default)
        if timeout is None:
            return func(*args, **kwargs)
        if not isinstance(timeout, int | float):
            raise TypeError(f"{func.__name__}: timeout must be seconds, not {timeout!r}")
        with bounded(float(timeout)):
            return func(*args, **kwargs)

    return wrapper


def remaining() -> float | None:
    """Seconds left, or None when no deadline is set."""
    at = _state.get("at")
    return None if at is None else at - time.monotonic()


def passed(grace: float = 0.0) -> bool:
    """Whether the deadline passed (``grace`` seconds ago)."""
    left = remaining()
    return left is not None and left <= -grace


def check(what: str) -> None:
    """Refuse to start ``what`` well past the deadline (WaitTimeout)."""
    if passed(GRACE):
        raise expired(f"{what}: not started", hint="raise --timeout; the next run goes on")


def expired(what: str, *, hint: str) -> WaitTimeout:
    """The error for a deadline that passed while doing ``what``."""
    seconds = _state.get("seconds", 0.0)
    return WaitTimeout(f"{what}: --timeout {format_timeout(seconds)} passed", hint=hint)


def request_timeout(per_request: float) -> float:
    """The timeout for one request: its own, cut to what is left (and the grace)."""
    left = remaining()
    return per_request if left is None else max(0.01, min(per_request, left + GRACE))


def sleep(seconds: float) -> None:
    """Sleep, but never past the deadline."""
    left = remaining()
    time.sleep(seconds if left is None else max(0.0, min(seconds, left)))
