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

    def progress(self, message: str) -> None: ...


class QuietReporter:
    """A reporter that drops everything (library use, tests)."""

    def info(self, message: str) -> None:
        del message

    def warn(self, message: str) -> None:
        del message

    def progress(self, message: str) -> None:
        del message


class ConsoleReporter:
    """Steps as lines on stderr; waits as one rewritten status line on a terminal.

    Off a terminal (CI logs, pipes) each new status message is printed once, as a line, so
    logs stay readable.
    """

    def __init__(self, stream: TextIO | None = None, *, verbose: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.verbose = verbose
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._status = ""
        self._since = time.monotonic()

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

    def progress(self, message: str) -> None:
        if not self.verbose:
            return
        if not self.tty:
            if message != self._status:
                self.stream.write(message + "\n")
                self.stream.flush()
                self._status = message
            return
        if message != self._status:
            self._since = time.monotonic()
        elapsed = int(time.monotonic() - self._since)
        self.stream.write(f"\r\033[K{message} ({elapsed}s)")
        self.stream.flush()
        self._status = message

    def close(self) -> None:
        """End a pending status line."""
        if self.tty and self._status:
            self.stream.write("\n")
            self._status = ""
