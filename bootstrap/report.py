"""How workflows talk to a person: plain lines, or a live status line on a terminal.

Workflows take any :class:`Reporter`; the CLI passes a :class:`ConsoleReporter`, library
users and tests a :class:`QuietReporter`.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO


class Reporter(Protocol):
    """Where a workflow tells the user what it does (the CLI decides how to show it)."""

    def info(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def progress(self, message: str, *, started: float | None = None) -> None:
        """A wait's status; ``started``: when the wait began (``time.monotonic()``), so the
        elapsed time shown counts from there."""
        ...


class QuietReporter:
    """A reporter that drops everything (library use, tests)."""

    def info(self, message: str) -> None:
        del message

    def warn(self, message: str) -> None:
        del message

    def progress(self, message: str, *, started: float | None = None) -> None:
        del message, started


class ConsoleReporter:
    """Steps as lines on stderr; waits as one status line with its elapsed time.

    On a terminal the status line is rewritten in place at each poll, so its time ticks. Off
    a terminal (CI logs, pipes) there is no carriage return: a status line is printed when
    it changes, and again every ``interval`` seconds while it does not, with the time.
    """

    def __init__(
        self, stream: TextIO | None = None, *, verbose: bool = True, interval: float = 10.0
    ) -> None:
        self.stream = stream or sys.stderr
        self.verbose = verbose
        self.interval = interval
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._status = ""
        self._since = time.monotonic()
        self._printed = 0.0

    def _clear(self) -> None:
        if self.tty and self._status:
            self.stream.write("\r\033[K")
            self._status = ""

    def info(self, message: str) -> None:
        if not self.verbose:
            return
        self._clear()
        self.stream.write(message + "\n")
        self.stream.flush()

    def warn(self, message: str) -> None:
        self._clear()
        self.stream.write(f"warning: {message}\n")
        self.stream.flush()

    def progress(self, message: str, *, started: float | None = None) -> None:
        if not self.verbose:
            return
        now = time.monotonic()
        changed = message != self._status
        if changed and started is None:
            self._since = now
        elapsed = int(now - (self._since if started is None else started))
        if self.tty:
            self.stream.write(f"\r\033[K{message} ({elapsed}s)")
        elif changed or now - self._printed >= self.interval:
            self.stream.write(f"{message} ({elapsed}s)\n")
            self._printed = now
        self.stream.flush()
        self._status = message

    def close(self) -> None:
        """End a pending status line."""
        if self.tty and self._status:
            self.stream.write("\n")
        self._status = ""
