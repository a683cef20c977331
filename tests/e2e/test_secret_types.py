"""Redaction by construction: the tokens the tool holds are :class:`~bootstrap.secret.Secret`
from where they enter (``GITLAB_TOKEN``, an answer of GitLab) to where python-gitlab sends
them, so a traceback that shows every frame's locals shows none of them.

The CLI's own ``--debug`` traceback is redacted by pattern as well (``verbose.redacted``);
these tests take that away and format the traceback with ``capture_locals=True``: what they
find is what the types alone keep out.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import pytest

from bootstrap.gitlab import GitLab
from tests.e2e.conftest import Target


class _Bug(RuntimeError):
    """The fault a test plants: not a BootstrapError, so the CLI treats it as a bug."""


def _locals_tracebacks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``--debug``'s traceback, with every frame's locals and without the redaction."""
    shown: list[str] = []

    def with_locals() -> str:
        exc = sys.exc_info()[1]
        assert exc is not None
        formatted = traceback.TracebackException.from_exception(exc, capture_locals=True)
        shown.append("".join(formatted.format()))
        return ""  # kept out of the CLI output: the base64 data of Secret objects is there

    monkeypatch.setattr("bootstrap.verbose.redacted_traceback", with_locals)
    return shown


def _raise(*args: Any, **kwargs: Any) -> Any:
    raise _Bug("a planted bug")


COMMANDS = ["install", "status", "rotate", "uninstall", "doctor", "templates publish"]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_bug_after_connecting_shows_no_gitlab_token_in_any_frame(
    target: Target, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    if command in ("rotate", "uninstall"):
        assert target.run("install").exit_code == 0
    shown = _locals_tracebacks(monkeypatch)
    # Every workflow reads the token's scopes first, with the connection open.
    monkeypatch.setattr(GitLab, "token_info", _raise)
    result = target.run(command, "--debug", *(["--yes"] if command == "uninstall" else []))
    assert result.exit_code == 1, result.output
    [text] = shown
    assert "a planted bug" in text
    assert "token = Secret((secret))" in text
    assert target.token not in text
