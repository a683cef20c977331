"""What a user sees when GitLab or the Kubernetes API keeps failing: a read is tried three
times with growing pauses and then reported as a connection problem; a create cut off is
never resent (GitLab's is reported as perhaps done); a 429 is resent after the server's
Retry-After; a TLS handshake that fails names it; the request counts of ``--output json``
are the requests each server got; nothing is written after the lock was lost."""

from __future__ import annotations

import json

import pytest

from bootstrap import deadline
from bootstrap.errors import KubeError, LockLost
from bootstrap.gitlab import GitLab
from bootstrap.kube import Kube
from bootstrap.secret import Secret
from tests.e2e.conftest import Target
from tests.fakes.fixtures import OWNER_TOKEN
from tests.fakes.gitlab import FakeGitLab
from tests.fakes.kube import DEFAULT_TOKEN, FakeKube


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses the run asks for between attempts (not waited: the test needs no time)."""
    asked: list[float] = []
    monkeypatch.setattr(deadline, "sleep", asked.append)
    return asked


# side -> (the read that fails, exit code, what the error says, its hint)
READS = {
    "gitlab": (
        ("GET", "/api/v4/groups/mygroup$"),
        3,
        "the connection to {url} failed",
        "check gitlab.url / GITLAB_URL and your network or proxy",
    ),
    "kube": (
        ("GET", "/api/v1/namespaces/gitlab-runner$"),
        4,
        "cannot reach the Kubernetes API at {url}",
        "check the kube context, VPN or network",
    ),
}


@pytest.mark.parametrize("side", sorted(READS))
@pytest.mark.parametrize("fault", ["500", "reset"])
def test_a_read_failing_every_time_is_tried_three_times_with_doubling_pauses(
    target: Target, pauses: list[float], fault: str, side: str
) -> None:
    server = target.gitlab if side == "gitlab" else target.kube
    read, exit_code, error, hint = READS[side]
    for _ in range(3):  # each fault fires on the next matching request the others let pass
        server.inject(fault, match=read)
    result = target.run("install", "--dry-run")
    assert result.exit_code == exit_code, result.output
    assert len([r for r in server.log if r.method == "GET" and r.path == read[1][:-1]]) == 3
    assert pauses == [0.5, 1.0]
    assert "Traceback" not in result.output
    if fault == "reset":
        assert error.format(url=server.url) in result.output
        assert hint in result.output
    # A read changes nothing: never "GitLab may or may not have done it".
    assert "may or may not" not in result.output


@pytest.mark.parametrize("side", sorted(READS))
def test_a_third_attempt_that_succeeds_is_enough(
    target: Target, pauses: list[float], side: str
) -> None:
    server = target.gitlab if side == "gitlab" else target.kube
    for _ in range(2):
        server.inject("reset", match=READS[side][0])
    result = target.run("install", "--dry-run")
    assert result.exit_code == 0, result.output
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


def test_a_gitlab_write_after_the_lock_was_lost_is_never_sent(fake_gitlab: FakeGitLab) -> None:
    client = GitLab(fake_gitlab.url, Secret(OWNER_TOKEN))

    def lost() -> None:
        raise LockLost("lost the lock of namespace gitlab-runner to other-host")

    client.write_guard = lost
    client.group("mygroup")  # reads go on: nothing is changed by them
    with pytest.raises(LockLost, match="lost the lock"):
        client.delete_runner(1)
    assert fake_gitlab.writes() == []


SECRETS = "/api/v1/namespaces/default/secrets"
SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "x", "namespace": "default"},
}


@pytest.mark.parametrize("fault", ["reset", "500", "429"])
def test_a_create_is_resent_after_a_429_only(
    fake_kube: FakeKube, pauses: list[float], fault: str
) -> None:
    # (install's own creates are the Lease's, whose waiter tries again by itself.)
    kube = Kube(kubeconfig=str(fake_kube.kubeconfig_path))
    fake_kube.inject(fault, match=("POST", SECRETS + "$"))
    if fault == "429":  # not processed, says the server: resent after its Retry-After
        assert kube.create(SECRET) is not None
        assert pauses == [1.0]
    else:  # it may have been done: never resent blindly
        with pytest.raises(KubeError) as raised:
            kube.create(SECRET)
        assert str(raised.value).startswith("create Secret/x: ")
        if fault == "reset":
            assert f"cannot reach the Kubernetes API at {fake_kube.url}" in str(raised.value)
        assert pauses == []
    creates = len(fake_kube.requests("POST", SECRETS))
    assert creates == (2 if fault == "429" else 1)


def test_a_request_without_a_name_of_its_own_is_named_by_method_and_path(
    fake_kube: FakeKube,
) -> None:
    kube = Kube(kubeconfig=str(fake_kube.kubeconfig_path))
    fake_kube.inject("reset", match=("GET", "/api/v1/namespaces/default$"))
    with pytest.raises(KubeError, match=r"^GET /api/v1/namespaces/default: cannot reach"):
        kube.request("GET", "/api/v1/namespaces/default", retry=False)


@pytest.mark.parametrize("dry_run", [True, False])
def test_the_request_counts_in_json_are_the_requests_each_server_got(
    target: Target, dry_run: bool
) -> None:
    extra = ["--dry-run"] if dry_run else ["--no-wait"]
    result = target.run("install", *extra, "--output", "json")
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)["requests"]
    # Dry-run writes and access reviews change nothing: they count as reads, as the fakes say.
    for side, server in (("gitlab", target.gitlab), ("kubernetes", target.kube)):
        writes = len(server.writes())
        assert counts[side] == {"reads": len(server.log) - writes, "writes": writes}, side
        assert (writes == 0) is dry_run, side


def test_the_kubeconfig_token_authenticates_every_request(target: Target) -> None:
    target.kube.require_token(DEFAULT_TOKEN)
    result = target.run("install", "--dry-run")
    assert result.exit_code == 0, result.output


def test_a_kubernetes_write_after_the_lock_was_lost_is_never_sent(fake_kube: FakeKube) -> None:
    kube = Kube(kubeconfig=str(fake_kube.kubeconfig_path))

    def lost() -> None:
        raise LockLost("lost the lock of namespace default to other-host")

    kube.write_guard = lost
    kube.request("GET", "/api/v1/namespaces/default")  # reads go on: they change nothing
    with pytest.raises(LockLost, match="lost the lock"):
        kube.request("DELETE", "/api/v1/namespaces/default/secrets/x", retry=False)
    assert fake_kube.writes() == []
