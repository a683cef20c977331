"""The end-to-end path against a real GitLab and a real cluster (opt-in: ``pytest -m live``).

Needs ``BOOTSTRAP_LIVE_GITLAB_URL``, ``BOOTSTRAP_LIVE_GITLAB_TOKEN`` (an Owner's token with
the api scope) and ``KUBECONFIG``; ``BOOTSTRAP_LIVE_GROUP`` names the group (default
``bootstrap-live``), ``BOOTSTRAP_LIVE_NAMESPACE`` the namespace (default
``bootstrap-live-<random>``, deleted at the end). `.gitlab-ci.yml`'s manual job ``live``
provides all of them with GitLab CE and k3s (scripts/live-setup).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.live

REQUIRED = ("BOOTSTRAP_LIVE_GITLAB_URL", "BOOTSTRAP_LIVE_GITLAB_TOKEN", "KUBECONFIG")


def _bootstrap(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GITLAB_URL": os.environ["BOOTSTRAP_LIVE_GITLAB_URL"],
        "GITLAB_TOKEN": os.environ["BOOTSTRAP_LIVE_GITLAB_TOKEN"],
    }
    return subprocess.run(
        [sys.executable, "-m", "bootstrap", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="module")
def place() -> Iterator[list[str]]:
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if missing:
        pytest.fail(f"the live tests need {', '.join(missing)} (see tests/live/test_live.py)")
    group = os.environ.get("BOOTSTRAP_LIVE_GROUP", "bootstrap-live")
    namespace = os.environ.get("BOOTSTRAP_LIVE_NAMESPACE", f"bootstrap-live-{secrets.token_hex(3)}")
    args = ["--group", group, "--namespace", namespace]
    yield args
    _bootstrap("uninstall", *args, "--yes", "--purge-cache", "--delete-namespace")


def _check(result: subprocess.CompletedProcess[str]) -> str:
    token = os.environ["BOOTSTRAP_LIVE_GITLAB_TOKEN"]
    assert token not in result.stdout + result.stderr, "the token leaked into the output"
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_install_status_rotate_uninstall(place: list[str]) -> None:
    plan = json.loads(_check(_bootstrap("install", *place, "--dry-run", "--output", "json")))
    assert plan["dry_run"] is True

    report = json.loads(
        _check(_bootstrap("install", *place, "--output", "json", "--skip-schedule"))
    )
    assert report["runner"]["action"] == "create"
    assert report["online"] is True

    again = json.loads(_check(_bootstrap("install", *place, "--output", "json", "--skip-schedule")))
    assert again["runner"]["action"] == "reuse"
    assert again["requests"]["kubernetes"]["writes"] == 0

    status = json.loads(_check(_bootstrap("status", *place, "--output", "json")))
    assert status["healthy"] is True

    rotated = json.loads(_check(_bootstrap("rotate", *place, "--force", "--output", "json")))
    assert rotated["decision"] == "rotate"

    _check(_bootstrap("uninstall", *place, "--yes", "--purge-cache"))
    gone = _bootstrap("status", *place, "--output", "json")
    assert gone.returncode == 4
