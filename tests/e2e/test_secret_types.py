"""Redaction by construction: the tokens the tool holds are :class:`~bootstrap.secret.Secret`
from where they enter (``GITLAB_TOKEN``, an answer of GitLab) to where python-gitlab sends
them, so a traceback that shows every frame's locals shows none of them.

The CLI's own ``--debug`` traceback is redacted by pattern as well (``verbose.redacted``);
these tests take that away and format the traceback with ``capture_locals=True``: what they
find is what the types alone keep out.
"""

from __future__ import annotations

import base64
import sys
import traceback
from typing import Any

import pytest

from bootstrap.gitlab import GitLab
from bootstrap.kube import Kube
from bootstrap.render.names import CONFIG_SECRET
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


def _fail_storing_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug when the config Secret with a new runner token is written, not before."""
    real = Kube.apply

    def apply(self: Kube, body: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if body.get("kind") == "Secret" and body["metadata"]["name"] == CONFIG_SECRET:
            raise _Bug("a planted bug")
        return real(self, body, *args, **kwargs)

    monkeypatch.setattr(Kube, "apply", apply)


def _seen(text: str, secret: str) -> bool:
    """The secret raw, or base64-encoded on its own (a Secret object's data is the whole
    config.toml encoded: the Kubernetes API takes it so, and it is not searched here)."""
    return secret in text or base64.b64encode(secret.encode()).decode() in text


@pytest.mark.parametrize("command", ["install", "install-again", "rotate"])
def test_a_bug_after_gitlab_issued_a_runner_token_shows_it_in_no_frame(
    target: Target, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    if command != "install":
        assert target.run("install").exit_code == 0
        stored = target.stored_token()
        if command == "install-again":  # the Secret lost: install resets the runner's token
            target.kube_delete("/api/v1/namespaces/gitlab-runner/secrets/" + CONFIG_SECRET)
    shown = _locals_tracebacks(monkeypatch)
    _fail_storing_the_config(monkeypatch)
    extra = ["--force"] if command == "rotate" else []
    result = target.run(command.removesuffix("-again"), "--debug", *extra)
    assert result.exit_code == 1, result.output
    [text] = shown
    assert "a planted bug" in text
    issued = target.gitlab.runner_tokens()
    assert len(issued) == (1 if command == "install" else 2), "a new token was issued"
    assert "token = Secret((secret))" in text
    for secret in [*issued, target.token]:
        assert not _seen(text, secret), f"{secret[:5]}… shows in a frame:\n" + "\n".join(
            line for line in text.splitlines() if secret in line
        )
    if command == "rotate":
        assert stored in issued[:1], "the old token, read from the Secret, is hidden too"


@pytest.mark.parametrize("command", ["status", "install"])
def test_a_bug_while_rendering_with_the_stored_token_shows_it_in_no_frame(
    target: Target, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    assert target.run("install").exit_code == 0
    stored = target.stored_token()
    shown = _locals_tracebacks(monkeypatch)
    # The rendered config.toml (Rendered) and the objects (KubeObject) are in the frames.
    monkeypatch.setattr("bootstrap.workflow.desired_objects", _raise)
    result = target.run(command, "--debug")
    assert result.exit_code == 1, result.output
    [text] = shown
    assert "rendered = Rendered(objects=[KubeObject(" in text
    assert (
        "KubeObject(Secret/gitlab-runner-config in gitlab-runner, wave=1, data not shown)" in text
    )
    assert not _seen(text, stored)
    assert not _seen(text, target.token)
