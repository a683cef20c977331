"""pytest fixtures starting the fakes (register with ``pytest_plugins``).

Both fixtures are function-scoped: a fresh server per test, stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.gitlab import DEVELOPER, OWNER, FakeGitLab
from tests.fakes.kube import FakeKube

OWNER_TOKEN = "glpat-owner-token-0123456789"
#: A second token of ``owner`` with the ``api`` scope (projects, commits, tags, schedules).
OWNER_API_TOKEN = "glpat-owner-api-token-0123456"
READER_TOKEN = "glpat-reader-token-0123456789"
GROUP = "mygroup"


@pytest.fixture
def fake_gitlab() -> Iterator[FakeGitLab]:
    """A started :class:`FakeGitLab` with two users and one group.

    * ``owner`` (token :data:`OWNER_TOKEN`, scopes create_runner, manage_runner,
      read_api; token :data:`OWNER_API_TOKEN`, scope api), Owner of ``mygroup``;
    * ``reader`` (token :data:`READER_TOKEN`, scope read_api), Developer of ``mygroup``.

    ``fake_gitlab.url`` is the GitLab base URL (``http://127.0.0.1:PORT``).
    """
    gitlab = FakeGitLab()
    gitlab.add_user("owner", OWNER_TOKEN, ["create_runner", "manage_runner", "read_api"])
    gitlab.add_user("reader", READER_TOKEN, ["read_api"])
    gitlab.add_token("owner", OWNER_API_TOKEN, ["api"], name="api")
    gitlab.add_group(GROUP, {"owner": OWNER, "reader": DEVELOPER})
    with gitlab:
        yield gitlab


@pytest.fixture
def fake_kube(tmp_path: Path) -> Iterator[FakeKube]:
    """A started :class:`FakeKube` with a kubeconfig at ``fake_kube.kubeconfig_path``.

    The kubeconfig (``tmp_path/kubeconfig``, context ``fake``, token ``fake-token``)
    points at the fake; the namespaces default, kube-system, kube-public and
    kube-node-lease exist.
    """
    kube = FakeKube()
    with kube:
        kube.kubeconfig(tmp_path / "kubeconfig")
        yield kube
