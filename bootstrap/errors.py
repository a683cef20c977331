"""The exception tree. Library code raises these; only the CLI turns them into exit codes.

Exit codes (the contract in DESIGN.md): 0 ok, 1 bug, 2 invalid input, 3 GitLab error,
4 Kubernetes error, 5 timed out waiting.
"""

from __future__ import annotations

from collections.abc import Sequence


class BootstrapError(Exception):
    """Base of every error the tool reports to the user (never a bug)."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InvalidInput(BootstrapError):
    """A flag, config key, env var or file is wrong (exit 2)."""

    exit_code = 2


class ConfigErrors(InvalidInput):
    """Several invalid inputs found at once; all are reported together (exit 2)."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        count = len(self.errors)
        head = f"{count} invalid setting{'s' if count != 1 else ''}"
        super().__init__(head + ":\n" + "\n".join(f"  {e}" for e in self.errors))


class GitLabError(BootstrapError):
    """GitLab refused, failed or could not be reached (exit 3).

    ``status`` is the HTTP status when GitLab answered, None when it could not be reached.
    """

    exit_code = 3

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class KubeError(BootstrapError):
    """The Kubernetes API refused, failed or could not be reached (exit 4).

    ``status`` is the HTTP status when the API server answered, None when it could not be
    reached.
    """

    exit_code = 4

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class LockLost(KubeError):
    """The namespace lock was taken over while this run held it: it must write nothing more
    (exit 4, as every Kubernetes error)."""


class WaitTimeout(BootstrapError):
    """A wait (rollout, runner online) ran past --timeout (exit 5)."""

    exit_code = 5


class Terminated(BaseException):
    """SIGTERM arrived (exit 143, 128 + 15, as for SIGINT's 130).

    A BaseException, like KeyboardInterrupt: no ``except Exception`` swallows it, and every
    ``finally`` on the way out runs (the namespace lock is released).
    """

    exit_code = 143
