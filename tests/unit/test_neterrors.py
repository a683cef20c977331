"""Connection failures in words, found under the layers requests and urllib3 wrap them in."""

from __future__ import annotations

import socket

import pytest
import requests

from bootstrap.gitlab import GitLab
from bootstrap.neterrors import cause
from bootstrap.secret import Secret


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_connection_is_named_as_such() -> None:
    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        requests.get(f"http://127.0.0.1:{_closed_port()}/", timeout=5)
    assert cause(caught.value) == "connection refused: nothing listens on that port"


def test_a_gitlab_error_names_the_cause_and_no_python_class() -> None:
    from bootstrap.errors import GitLabError

    gl = GitLab(
        f"http://127.0.0.1:{_closed_port()}", Secret("glpat-0123456789abcdefghij"), retries=1
    )
    with pytest.raises(GitLabError) as caught:
        gl.version()
    message = str(caught.value)
    assert "connection refused" in message
    assert "Error" not in message
    assert "NewConnection" not in message
