"""What a user sees when GitLab keeps failing: a read is tried three times with growing
pauses and then reported as a connection problem; a create cut off is never resent and is
reported as perhaps done; a TLS handshake that fails names it; the request counts of
``--output json`` are the requests GitLab got."""

from __future__ import annotations

import json

import pytest

from bootstrap import deadline
from bootstrap.errors import LockLost
from bootstrap.gitlab import GitLab
from bootstrap.secret import Secret
from tests.e2e.conftest import Target
from tests.fakes.fixtures import OWNER_TOKEN
from tests.fakes.gitlab import FakeGitLab

GROUP_READ = ("GET", "/api/v4/groups/mygroup$")


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses the run asks for between attempts (not waited: the test needs no time)."""
    asked: list[float] = []
    monkeypatch.setattr(deadline, "sleep", asked.append)
    return asked


@pytest.mark.parametrize("fault", ["500", "reset"])
def test_a_read_failing_every_time_is_tried_three_times_with_doubling_pauses(
    target: Target, pauses: list[float], fault: str
) -> None:
    for _ in range(3):  # each fault fires on the next matching request the others let pass
        target.gitlab.inject(fault, match=GROUP_READ)
    result = target.run("install", "--dry-run")
    assert result.exit_code == 3, result.output
    assert len(target.gitlab.requests("GET", "/api/v4/groups/mygroup")) == 3
    assert pauses == [0.5, 1.0]
    assert "Traceback" not in result.output
    if fault == "reset":
        assert f"the connection to {target.gitlab_url} failed" in result.output
        assert "check gitlab.url / GITLAB_URL and your network or proxy" in result.output
    # A read changes nothing: never "GitLab may or may not have done it".
    assert "may or may not" not in result.output


def test_a_fourth_attempt_is_never_made_a_third_that_succeeds_is_enough(
    target: Target, pauses: list[float]
) -> None:
    for _ in range(2):
        target.gitlab.inject("reset", match=GROUP_READ)
    result = target.run("install", "--dry-run")
    assert result.exit_code == 0, result.output
    assert len(target.gitlab.requests("GET", "/api/v4/groups/mygroup")) == 3
    assert pauses == [0.5, 1.0]


def test_a_runner_create_cut_off_is_reported_as_perhaps_done_and_not_resent(
    target: Target, pauses: list[float]
) -> None:
    target.gitlab.inject("reset", match=("POST", "/api/v4/user/runners$"))
    result = target.run("install", "--no-wait")
    assert result.exit_code == 3, result.output
    assert len(target.gitlab.requests("POST", "/api/v4/user/runners")) == 1
    assert "GitLab may or may not have done it" in result.output
    assert "rerun: the next run checks what GitLab has before it acts" in result.output
    assert pauses == []


def test_a_tls_handshake_with_a_plain_http_gitlab_is_reported_as_such(target: Target) -> None:
    target.gitlab_url = target.gitlab.url.replace("http://", "https://")
    result = target.run("install", "--dry-run")
    assert result.exit_code == 3, result.output
    assert f"the TLS handshake with {target.gitlab_url} failed" in result.output
    assert "Traceback" not in result.output


def test_the_request_counts_in_json_are_the_requests_gitlab_got(target: Target) -> None:
    result = target.run("install", "--dry-run", "--output", "json")
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)["requests"]["gitlab"]
    assert counts == {"reads": len(target.gitlab.reads()), "writes": 0}
    assert counts["reads"] > 0


def test_a_gitlab_write_after_the_lock_was_lost_is_never_sent(fake_gitlab: FakeGitLab) -> None:
    client = GitLab(fake_gitlab.url, Secret(OWNER_TOKEN))

    def lost() -> None:
        raise LockLost("lost the lock of namespace gitlab-runner to other-host")

    client.write_guard = lost
    client.group("mygroup")  # reads go on: nothing is changed by them
    with pytest.raises(LockLost, match="lost the lock"):
        client.delete_runner(1)
    assert fake_gitlab.writes() == []
