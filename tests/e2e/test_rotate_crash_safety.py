"""`bootstrap rotate`'s crash-safety path in-process: what the Secret and GitLab hold after a
reset, a store and a roll, and what the next run then does (issue 14, mutation testing).

Each test drives the CLI in this process (``Target.run``), so a mutant of ``rotate``,
``_store`` or ``_roll`` is what runs (docs/mutation.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bootstrap.config import Settings
from bootstrap.rotate import rotate
from bootstrap.secret import Secret
from tests.e2e.conftest import Target
from tests.e2e.test_rotate import _assert_converged, _checksum_matches
from tests.fakes.fixtures import GROUP, OWNER_API_TOKEN, OWNER_TOKEN

DAY = 86400.0
NAMESPACE = "gitlab-runner"
SECRET_PATH = f"/api/v1/namespaces/{NAMESPACE}/secrets/gitlab-runner-config"
RUNNER_ID = "gitlab-eci-bootstrap/runner-id"
EXPIRES = "gitlab-eci-bootstrap/token-expires-at"
OPS_RUNNER_ID = "gitlab-eci-bootstrap/ops-runner-id"
OPS_EXPIRES = "gitlab-eci-bootstrap/ops-token-expires-at"


def _secret(target: Target) -> dict[str, Any]:
    secret = target.kube.get_object("v1", "Secret", "gitlab-runner-config", NAMESPACE)
    assert secret is not None
    return secret


def _annotations(target: Target) -> dict[str, str]:
    return dict(_secret(target)["metadata"].get("annotations") or {})


def _runner_ids(target: Target) -> dict[str, int]:
    return {r.runner_type: r.id for r in target.gitlab.runners.values()}


def _json(target: Target, *args: str) -> dict[str, Any]:
    result = target.run("rotate", *args, "--output", "json")
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _quiet_rerun(target: Target, says: str = "no rotation") -> None:
    """The next scheduled run finds nothing due: no reset, no write anywhere."""
    target.kube.clear_log()
    target.gitlab.clear_log()
    result = target.run("rotate", "--if-expiring-within", "7d")
    assert result.exit_code == 0, result.output
    assert says in result.stdout, result.output
    assert target.gitlab_writes() == []
    assert target.kube_writes() == []


def test_the_secret_records_the_new_tokens_expiry_so_the_next_run_resets_nothing(
    target: Target,
) -> None:
    target.gitlab.set_token_expiry(30 * DAY)
    assert target.run("install").exit_code == 0
    installed = _annotations(target)[EXPIRES]
    target.gitlab.set_token_expiry(60 * DAY)  # what GitLab issues from now on

    report = _json(target, "--force")

    assert report["new_expires_at"]
    assert report["new_expires_at"] != installed
    assert _annotations(target)[EXPIRES] == report["new_expires_at"]
    # An expiry left as it was would read as "reset elsewhere": a repair, every run.
    _quiet_rerun(target)


def test_a_token_that_no_longer_expires_leaves_no_expiry_behind(target: Target) -> None:
    # The old expiry was written by install (its field manager owns it): a rotation that
    # left the key out kept it, and every later run read "reset elsewhere" and reset again.
    target.gitlab.set_token_expiry(30 * DAY)
    assert target.run("install").exit_code == 0
    target.gitlab.set_token_expiry(None)  # an admin turned runner token expiry off

    report = _json(target, "--force")

    assert report["new_expires_at"] is None
    assert not _annotations(target).get(EXPIRES)
    _quiet_rerun(target, says="the token never expires")
    status = target.run("status")
    assert status.exit_code == 0, status.output
    target.kube.clear_log()
    target.gitlab.clear_log()
    assert target.run("install").exit_code == 0
    assert target.gitlab_writes() == []
    assert target.kube_writes() == []


def test_a_ca_file_no_longer_set_leaves_the_secret_after_a_rotation(
    target: Target, tmp_path: Path
) -> None:
    # A key rotate sent too (ca.crt) had rotate as a co-owner: install could not remove it,
    # and the pods then always looked behind the Secret (status exit 4, a roll every run).
    ca = tmp_path / "gitlab-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    target.extra_env["BOOTSTRAP_GITLAB__CA_FILE"] = str(ca)
    assert target.run("install").exit_code == 0
    assert "ca.crt" in _secret(target)["data"]
    assert target.run("rotate", "--force").exit_code == 0
    del target.extra_env["BOOTSTRAP_GITLAB__CA_FILE"]

    assert target.run("install").exit_code == 0

    assert "ca.crt" not in _secret(target)["data"]
    status = target.run("status")
    assert status.exit_code == 0, status.output
    _quiet_rerun(target)


def test_a_store_that_fails_says_the_token_was_reset_rolls_nothing_and_the_next_run_repairs(
    target: Target,
) -> None:
    target.gitlab.set_token_expiry(30 * DAY)
    assert target.run("install").exit_code == 0
    [runner_id] = target.group_runners()
    old = target.stored_token()
    # Issued later than the stored one (the schedule runs days after install): another expiry.
    target.gitlab.set_token_expiry(60 * DAY)
    for _ in range(3):  # every attempt of the Secret's apply
        target.kube.inject("500", match=("PATCH", r"/secrets/gitlab-runner-config$"))
    target.kube.clear_log()

    result = target.run("rotate", "--force")

    assert result.exit_code == 4, result.output
    assert "the token was reset, but storing it failed" in result.stderr
    assert "rerun `bootstrap rotate`" in result.stderr
    assert target.gitlab.runner(runner_id).token != old  # reset in GitLab ...
    assert target.stored_token() == old  # ... not stored
    assert [w for w in target.kube_writes() if "/deployments/" in w] == []  # nor rolled
    assert _checksum_matches(target)  # the pod still runs the Secret's config

    repaired = target.run("rotate", "--if-expiring-within", "7d")

    assert repaired.exit_code == 0, repaired.output
    assert "repair" in repaired.stdout
    _assert_converged(target)


def test_rotate_waits_for_a_rollout_that_takes_a_moment(target: Target) -> None:
    target.gitlab.set_token_expiry(30 * DAY)
    assert target.run("install").exit_code == 0
    target.kube.rollout_delay = 1.0  # the new pod needs a moment to become ready

    result = target.run("rotate", "--force", "--timeout", "60")

    assert result.exit_code == 0, result.output
    assert "successfully rolled out" in result.output
    _assert_converged(target)


def test_a_secret_that_records_no_runner_is_not_an_installation(target: Target) -> None:
    assert target.run("install").exit_code == 0
    target.kube_patch(SECRET_PATH, {"metadata": {"annotations": {RUNNER_ID: None}}})
    target.gitlab.clear_log()

    result = target.run("rotate", "--force")

    assert result.exit_code == 4, result.output
    assert f"no runner is installed in namespace {NAMESPACE}" in result.stderr
    assert "run `bootstrap install` first" in result.stderr
    assert target.gitlab_writes() == []


def test_a_maintainer_rotates_with_the_current_token(target: Target) -> None:
    target.gitlab.set_token_expiry(30 * DAY)
    assert target.run("install").exit_code == 0
    old = target.stored_token()
    target.gitlab.add_user("keeper", "glpat-keeper-token-0123456789", ["read_api"])
    target.gitlab.add_member(GROUP, "keeper", 40)  # Maintainer: no reset by id
    target.token = "glpat-keeper-token-0123456789"

    result = target.run("rotate", "--force")

    assert result.exit_code == 0, result.output
    assert "with the current token" in result.stdout
    assert target.stored_token() != old
    _assert_converged(target)


def test_both_runners_are_rotated_each_recorded_and_the_counts_are_the_servers(
    target: Target,
) -> None:
    target.token, target.publish = OWNER_API_TOKEN, True
    target.gitlab.set_token_expiry(30 * DAY)
    assert target.run("install").exit_code == 0
    ids = _runner_ids(target)
    before = {r.id: r.token for r in target.gitlab.runners.values()}
    target.gitlab.clear_log()
    target.kube.clear_log()

    report = _json(target, "--force")

    ops = report["ops_runner"]
    assert ops is not None
    assert (ops["runner_id"], ops["decision"], ops["reason"]) == (
        ids["project_type"],
        "rotate",
        "--force",
    )
    assert report["loop_token"] is None  # not run as the ops project's job
    for side, server in (("gitlab", target.gitlab), ("kubernetes", target.kube)):
        writes = len(server.writes())
        assert report["requests"][side] == {"reads": len(server.log) - writes, "writes": writes}
    stored = [str(r["token"]) for r in _config_runners(target)]
    for runner_id, token in zip((ids["group_type"], ids["project_type"]), stored, strict=True):
        assert token != before[runner_id]
        assert target.gitlab.runner(runner_id).token == token
    annotations = _annotations(target)
    assert annotations[OPS_RUNNER_ID] == str(ids["project_type"])
    assert annotations[OPS_EXPIRES] == ops["new_expires_at"]

    # The group runner's token dies; its repair keeps what the Secret records of the ops
    # runner, though rotate alone has written the ops runner's expiry since install.
    target.gitlab.expire_runner_token(ids["group_type"])
    repaired = _json(target, "--if-expiring-within", "7d")

    assert repaired["decision"] == "repair"
    assert repaired["ops_runner"]["decision"] == "skip"
    after = _annotations(target)
    assert after[OPS_RUNNER_ID] == str(ids["project_type"])
    assert after[OPS_EXPIRES] == ops["new_expires_at"]
    target.kube.clear_log()
    target.gitlab.clear_log()
    assert target.run("install").exit_code == 0
    assert target.kube_writes() == []
    assert target.gitlab_writes() == []


def _config_runners(target: Target) -> list[dict[str, Any]]:
    import tomllib

    return list(tomllib.loads(target.stored_config())["runners"])


def test_rotate_called_as_a_library_rotates_stores_and_waits_by_default(target: Target) -> None:
    """``rotate(settings, token=...)`` without options: a real rotation, waited for."""
    target.gitlab.set_token_expiry(30 * DAY)
    assert target.run("install").exit_code == 0
    old = target.stored_token()
    settings = Settings.model_validate(
        {
            "gitlab": {"group": GROUP, "url": target.gitlab_url},
            "kubernetes": {"kubeconfig": str(target.kube.kubeconfig_path)},
        }
    )

    result = rotate(settings, token=Secret(OWNER_TOKEN))

    assert (result.decision, result.reason, result.dry_run) == (
        "rotate",
        "rotation requested",
        False,
    )
    assert target.stored_token() != old
    assert result.rollout
    assert result.online is True
    _assert_converged(target)


def test_rotate_called_as_a_library_uses_the_callers_clients(target: Target) -> None:
    """``gitlab_factory``/``kube_factory``: a caller's own clients (a proxy, a session of its
    own, a recording wrapper) are the ones every request goes through."""
    from bootstrap.gitlab import GitLab
    from bootstrap.kube import Kube

    target.gitlab.set_token_expiry(30 * DAY)
    assert target.run("install").exit_code == 0
    settings = Settings.model_validate(
        {
            "gitlab": {"group": GROUP, "url": target.gitlab_url},
            "kubernetes": {"kubeconfig": str(target.kube.kubeconfig_path)},
        }
    )
    made: list[str] = []

    def gitlab_factory(*args: Any, **kwargs: Any) -> GitLab:
        made.append("gitlab")
        return GitLab(*args, **kwargs)

    def kube_factory(*args: Any, **kwargs: Any) -> Kube:
        made.append("kube")
        return Kube(*args, **kwargs)

    result = rotate(
        settings,
        token=Secret(OWNER_TOKEN),
        gitlab_factory=gitlab_factory,
        kube_factory=kube_factory,
    )

    assert result.decision == "rotate"
    assert sorted(set(made)) == ["gitlab", "kube"], made
