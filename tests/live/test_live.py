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
from typing import Any

import pytest

pytestmark = pytest.mark.live

REQUIRED = ("BOOTSTRAP_LIVE_GITLAB_URL", "BOOTSTRAP_LIVE_GITLAB_TOKEN", "KUBECONFIG")


def _bootstrap(*args: str) -> subprocess.CompletedProcess[str]:
    return _as(os.environ["BOOTSTRAP_LIVE_GITLAB_TOKEN"], *args)


def _as(token: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``bootstrap ARGS`` with ``token`` as GITLAB_TOKEN."""
    env = {**os.environ, "GITLAB_URL": os.environ["BOOTSTRAP_LIVE_GITLAB_URL"]}
    env["GITLAB_TOKEN"] = token
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


# --- what issue 9 changed, against a real GitLab: online, expiry, roles ------------------------

THREE_DAYS = 3 * 86400


def _admin() -> Any:
    import gitlab

    url, token = os.environ["BOOTSTRAP_LIVE_GITLAB_URL"], os.environ["BOOTSTRAP_LIVE_GITLAB_TOKEN"]
    gl = gitlab.Gitlab(url, private_token=token)
    gl.auth()
    return gl


@pytest.fixture(scope="module")
def expiring() -> Iterator[list[str]]:
    """A second install target, in an instance whose group runner tokens live three days."""
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if missing:
        pytest.fail(f"the live tests need {', '.join(missing)} (see tests/live/test_live.py)")
    gl = _admin()
    settings = gl.settings.get()
    before = settings.attributes.get("group_runner_token_expiration_interval")
    gl.settings.update(new_data={"group_runner_token_expiration_interval": THREE_DAYS})
    group = os.environ.get("BOOTSTRAP_LIVE_GROUP", "bootstrap-live")
    args = ["--group", group, "--namespace", f"bootstrap-live-{secrets.token_hex(3)}"]
    yield args
    _bootstrap("uninstall", *args, "--yes", "--purge-cache", "--delete-namespace")
    gl.settings.update(new_data={"group_runner_token_expiration_interval": before})


def _maintainer_token(group: str) -> str:
    """A new user, Maintainer of the group, with a personal token (read_api, manage_runner)."""
    gl = _admin()
    name = f"live-maint-{secrets.token_hex(3)}"
    user = gl.users.create(
        {
            "username": name,
            "name": name,
            "email": f"{name}@example.com",
            "password": secrets.token_urlsafe(24),
            "skip_confirmation": True,
        }
    )
    gl.groups.get(group).members.create({"user_id": user.id, "access_level": 40})
    pat = user.personal_access_tokens.create(
        {"name": "live", "scopes": ["read_api", "manage_runner"], "expires_at": _tomorrow()}
    )
    return str(pat.token)


def _tomorrow() -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d")


def test_online_expiry_and_roles(expiring: list[str]) -> None:
    install = ("install", *expiring, "--output", "json", "--skip-schedule", "--skip-templates")
    created = json.loads(_check(_bootstrap(*install)))
    runner_id = created["runner"]["id"]
    assert created["online"] is True  # our pods' manager contacted GitLab with the new token

    # A no-op install reads only: no POST /runners/verify, so no "<legacy>" manager and no
    # contact but the pods' own.
    again = json.loads(_check(_bootstrap(*install)))
    assert again["runner"]["action"] == "reuse"
    assert again["requests"]["gitlab"]["writes"] == 0
    managers = _admin().http_get(f"/runners/{runner_id}/managers")
    status = json.loads(_check(_bootstrap("status", *expiring, "--output", "json")))
    assert [m["system_id"] for m in managers] == [status["runner"]["system_id"]]

    # The expiry GitLab set (three days) is known although GET /runners/:id never has it,
    # and status warns: it is within rotation.rotate_before (7d).
    assert status["runner"]["token_expires_at"]
    assert status["runner"]["status"] == "online"
    assert any("within rotation.rotate_before" in w for w in status["warnings"])

    # A Maintainer: status without false drift (GitLab hides the maintenance note), and
    # rotate falls back to the reset with the current token (the reset by id needs Owner).
    maintainer = _maintainer_token(expiring[1])
    seen = _as(maintainer, "status", *expiring, "--output", "json")
    assert seen.returncode == 0, seen.stdout + seen.stderr
    assert "is not compared" in seen.stderr
    rotated = _as(maintainer, "rotate", *expiring, "--force", "--output", "json")
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    for result in (seen, rotated):
        assert maintainer not in result.stdout + result.stderr, "the token leaked"
    report = json.loads(rotated.stdout)
    assert report["method"] == "with the current token"
    assert report["online"] is True
    managers = _admin().http_get(f"/runners/{runner_id}/managers")
    assert "<legacy>" not in [m["system_id"] for m in managers]
