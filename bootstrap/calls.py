"""Request counts of one API connection: what `--output json` and the benchmarks report."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Calls:
    """Requests made so far, by reads and writes, with a short log of what each was.

    Safe to record from the threads that run independent requests in parallel.
    """

    reads: int = 0
    writes: int = 0
    log: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, what: str, *, write: bool) -> None:
        with self._lock:
            if write:
                self.writes += 1
            else:
                self.reads += 1
            self.log.append(what)

    def as_dict(self) -> dict[str, int]:
        return {"reads": self.reads, "writes": self.writes}
