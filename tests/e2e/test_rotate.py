"""`bootstrap rotate` end to end: happy path, windows, fallback, repair, and faults everywhere."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from bootstrap.lock import Holder, Lock
from bootstrap.lock import locked as real_locked
from bootstrap.render.objects import config_checksum
from tests.e2e.conftest import Target
from tests.fakes.fixtures import OWNER_API_TOKEN
from tests.fakes.gitlab import OWNER

OPS = "mygroup/gitlab-eci-bootstrap"

DAY = 86400.0


def _checksum_matches(target: Target) -> bool:
    deploy = target.kube.get_object("apps/v1", "Deployment", "gitlab-runner", "gitlab-runner")
    assert deploy is not None
    annotations = deploy["spec"]["template"]["metadata"]["annotations"]
    return bool(
        annotations["gitlab-eci-bootstrap/config-checksum"]
        == config_checksum(target.stored_config())
    )


def _assert_converged(target: Target) -> None:
    """Exactly one runner, whose current token is the one in the Secret; pods carry it."""
    assert len(target.group_runners()) == 1
    runner = next(iter(target.gitlab.runners.values()))
    assert target.stored_token() == runner.token
    assert _checksum_matches(target)


def test_rotate_replaces_the_token_and_rolls_the_pod(target: Target) -> None:
    target.gitlab.set_token_expiry(30 * DAY)
    assert target.run("install").exit_code == 0
    old = target.stored_token()

    result = target.run("rotate", "--force")

    assert result.exit_code == 0, result.output
    new = target.stored_token()
    assert new != old
    _assert_converged(target)
    assert old in target.gitlab.runner_tokens()  # issued once, dead now:
    assert target.gitlab.runner(target.group_runners()[0]).token != old
    assert "-> " in result.stdout  # old -> new expiry
    assert "successfully rolled out" in result.output


def test_install_after_rotate_writes_nothing(target: Target) -> None:
    target.gitlab.set_token_expiry(30 * DAY)
    assert target.run("install").exit_code == 0
    assert target.run("rotate", "--force").exit_code == 0
    target.kube.clear_log()
    target.gitlab.clear_log()

    result = target.run("install")

    assert result.exit_code == 0, result.output
    assert target.kube_writes() == []
    assert target.gitlab_writes() == []


def test_not_expiring_is_a_no_op_with_no_write(target: Target) -> None:
    target.gitlab.set_token_expiry(30 * DAY)
    assert target.run("install").exit_code == 0
    token = target.stored_token()
    target.kube.clear_log()
    target.gitlab.clear_log()

    result = target.run("rotate", "--if-expiring-within", "7d")

    assert result.exit_code == 0, result.output
    assert "no rotation" in result.stdout
    assert target.kube_writes() == []
    assert target.gitlab_writes() == []
    assert target.stored_token() == token


def test_expiring_soon_rotates(target: Target) -> None:
    target.gitlab.set_token_expiry(3 * DAY)
    assert target.run("install").exit_code == 0
    token = target.stored_token()
    result = target.run("rotate", "--if-expiring-within", "7d", "--output", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["decision"] == "rotate"
    assert report["method"] == "by id"
    assert target.stored_token() != token
    _assert_converged(target)


def test_a_token_that_never_expires_is_not_rotated_by_the_schedule(target: Target) -> None:
    target.gitlab.set_token_expiry(None)
    assert target.run("install").exit_code == 0
    result = target.run("rotate", "--if-expiring-within", "7d")
    assert result.exit_code == 0
    assert "never expires" in result.stdout


def test_dry_run_changes_nothing(target: Target) -> None:
    assert target.run("install").exit_code == 0
    token = target.stored_token()
    target.kube.clear_log()
    target.gitlab.clear_log()
    result = target.run("rotate", "--force", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would reset" in result.stdout
    assert target.kube_writes() == []
    assert target.gitlab_writes() == []
    assert target.stored_token() == token


def test_without_manage_runner_it_resets_with_the_current_token_and_says_so(target: Target) -> None:
    assert target.run("install").exit_code == 0
    token = target.stored_token()
    target.gitlab.add_user("rotator", "glpat-rotator-token-0123456789", ["read_api"])
    target.gitlab.add_member("mygroup", "rotator", OWNER)
    target.token = "glpat-rotator-token-0123456789"

    result = target.run("rotate", "--force")

    assert result.exit_code == 0, result.output
    assert "lacks manage_runner" in result.stderr
    assert "with the current token" in result.stdout
    assert target.stored_token() != token
    _assert_converged(target)


def test_an_interrupted_rotation_is_repaired_by_the_next_run(target: Target) -> None:
    assert target.run("install").exit_code == 0
    runner_id = target.group_runners()[0]
    # A reset whose answer never reached the cluster: GitLab has a new token, the Secret not.
    target.gitlab.expire_runner_token(runner_id)

    result = target.run("rotate")

    assert result.exit_code == 0, result.output
    assert "repair" in result.stdout
    _assert_converged(target)


def test_nothing_installed_is_a_clear_error(target: Target) -> None:
    result = target.run("rotate", "--force")
    assert result.exit_code == 4
    assert "run `bootstrap install` first" in result.stderr


def _positions(target: Target) -> tuple[int, int]:
    """Request counts of one clean `rotate --force` (GitLab, Kubernetes)."""
    target.gitlab.clear_log()
    target.kube.clear_log()
    assert target.run("rotate", "--force").exit_code == 0
    return len(target.gitlab.requests()), len(target.kube.requests())


@pytest.mark.parametrize("fault", ["500", "reset"])
def test_a_fault_at_any_request_of_rotate_converges_after_one_clean_run(
    target: Target, fault: str
) -> None:
    target.gitlab.set_token_expiry(30 * DAY)
    assert target.run("install").exit_code == 0
    gitlab_count, kube_count = _positions(target)
    outcomes = []
    for system, count in (("gitlab", gitlab_count), ("kube", kube_count)):
        for position in range(1, count + 1):
            server = target.gitlab if system == "gitlab" else target.kube
            server.clear_faults()
            server.inject(fault, nth=position)
            faulted = target.run("rotate", "--force", "--timeout", "20")
            server.clear_faults()
            assert faulted.exit_code in (0, 3, 4, 5), faulted.output
            assert "Traceback" not in faulted.output
            clean = target.run("rotate", "--timeout", "20")
            assert clean.exit_code == 0, f"{system}#{position}: {clean.output}"
            _assert_converged(target)
            outcomes.append((system, position, faulted.exit_code))
    assert len(outcomes) == gitlab_count + kube_count


def test_the_stored_secret_never_reaches_a_configmap(target: Target) -> None:
    assert target.run("install").exit_code == 0
    assert target.run("rotate", "--force").exit_code == 0
    tokens = target.secrets_issued()
    for obj in target.kube.objects():
        if obj["kind"] == "Secret":
            continue
        text = json.dumps(obj)
        for token in tokens:
            assert token not in text
            assert base64.b64encode(token.encode()).decode() not in text


def test_a_pod_left_behind_the_secret_is_rolled_even_when_no_rotation_is_due(
    target: Target,
) -> None:
    target.gitlab.set_token_expiry(30 * DAY)
    assert target.run("install").exit_code == 0
    # A rotation stored its token, then failed to patch the Deployment.
    target.kube.inject("500", match=("PATCH", r"/deployments/gitlab-runner$"))
    target.kube.inject("500", match=("PATCH", r"/deployments/gitlab-runner$"))
    target.kube.inject("500", match=("PATCH", r"/deployments/gitlab-runner$"))
    assert target.run("rotate", "--force").exit_code == 4
    assert not _checksum_matches(target)

    result = target.run("rotate", "--if-expiring-within", "7d")

    assert result.exit_code == 0, result.output
    assert "rolled" in result.output
    _assert_converged(target)


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ("concurrent = 4\n[[runners]\n", "it is not valid TOML"),
        (3 * '[[runners]]\ntoken = "a"\n', "3 [[runners]] entries, not one or two"),
        ("concurrent = 4\n", "0 [[runners]]"),
    ],
    ids=["corrupt", "three-runners", "no-runner"],
)
def test_rotate_on_a_hand_edited_config_refuses_before_resetting(
    target: Target, config: str, problem: str
) -> None:
    target.gitlab.set_token_expiry(30 * DAY)
    assert target.run("install").exit_code == 0
    [runner_id] = target.group_runners()
    token = target.gitlab.runner(runner_id).token
    target.kube_patch(
        "/api/v1/namespaces/gitlab-runner/secrets/gitlab-runner-config",
        {"data": {"config.toml": base64.b64encode(config.encode()).decode()}},
    )
    target.gitlab.clear_log()

    for _ in range(2):  # and again: each run used to revoke the pod's token anew
        result = target.run("rotate", "--force")
        assert result.exit_code == 4, result.output
        assert "config.toml in Secret gitlab-runner-config" in result.stderr
        assert problem in result.stderr
        assert "nothing was reset" in result.stderr
        assert "bootstrap install" in result.stderr
        assert "Traceback" not in result.output

    assert target.gitlab_writes() == [], "no reset, no verify"
    assert target.gitlab.runner(runner_id).token == token, "the running pod's token lives"
    # The fix the message names works: install rewrites config.toml, then rotate works.
    assert target.run("install").exit_code == 0
    assert target.run("rotate", "--force").exit_code == 0
    _assert_converged(target)


@contextmanager
def _lost_on_entry(*args: Any, **kwargs: Any) -> Iterator[Lock]:
    """The real lock, taken over by another run as soon as it is held (a paused holder)."""
    with real_locked(*args, **kwargs) as lock:
        lock.lost = Holder("other-host/pid-9/cafe0000", datetime.now(UTC), 60)
        yield lock


def test_a_lost_lease_stops_the_roll_of_a_pod_left_behind(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    target.gitlab.set_token_expiry(30 * DAY)
    assert target.run("install").exit_code == 0
    for _ in range(3):  # a rotation stored its token, then failed to patch the Deployment
        target.kube.inject("500", match=("PATCH", r"/deployments/gitlab-runner$"))
    assert target.run("rotate", "--force").exit_code == 4
    monkeypatch.setattr("bootstrap.rotate.locked", _lost_on_entry)
    target.kube.clear_log()

    result = target.run("rotate", "--if-expiring-within", "7d")

    assert result.exit_code == 4, result.output
    assert "lost the lock of namespace gitlab-runner to other-host" in result.output
    assert not _checksum_matches(target)
    assert [w for w in target.kube_writes() if "/deployments/" in w] == []


def test_a_lost_lease_stops_the_renewal_of_the_jobs_own_token(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    target.token, target.publish = OWNER_API_TOKEN, True
    target.gitlab.set_token_expiry(30 * DAY)  # the runner tokens are not due
    assert target.run("install").exit_code == 0
    ops = target.gitlab.project(OPS)
    [variable] = [v for v in ops.variables if v.key == "GITLAB_TOKEN"]
    loop = target.gitlab.tokens[variable.value]
    loop.expires_at = date.today() + timedelta(days=3)  # within the 7d window
    target.token = loop.token
    target.extra_env["CI_PROJECT_PATH"] = OPS  # as the ops project's job runs it
    monkeypatch.setattr("bootstrap.rotate.locked", _lost_on_entry)
    target.gitlab.clear_log()

    result = target.run("rotate", "--if-expiring-within", "7d")

    assert result.exit_code == 4, result.output
    assert "lost the lock of namespace gitlab-runner to other-host" in result.output
    assert target.gitlab_writes() == []
    assert loop.active
    assert target.gitlab.tokens[variable.value] is loop
