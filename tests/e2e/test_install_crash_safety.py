"""`bootstrap install`'s crash-safety paths in-process: what a run does when the state it
planned from moved before it took the lock, and what it shows (issue 14, mutation testing).

Each test drives the CLI in this process (``Target.run``), so a mutant of ``execute_runner``,
``_still_current``, ``_execute``, ``_store_tokens`` or ``_undo_creates`` is what runs
(docs/mutation.md). "Another run" is played by the test: it acts while our run is between its
reads and the lock (the Lease create is held back a moment), as a run that finished or
crashed just then would have.
"""

from __future__ import annotations

import base64
import threading
import tomllib
from collections.abc import Callable
from typing import Any

import pytest

from bootstrap.install import RunnerPlan, execute_runner
from bootstrap.report import QuietReporter
from bootstrap.secret import Secret
from bootstrap.workflow import connect, ops_runner_attributes
from tests.conftest import make_settings
from tests.e2e.conftest import Target
from tests.e2e.test_install import _refuse
from tests.e2e.test_lock_real import _seed_unstored_runner, _when
from tests.e2e.test_loop import _loop
from tests.fakes.fixtures import GROUP

NAMESPACE = "gitlab-runner"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases"
SECRET = f"/api/v1/namespaces/{NAMESPACE}/secrets/gitlab-runner-config"
OPS = "mygroup/gitlab-eci-bootstrap"


def _settings() -> Any:
    return make_settings(gitlab={"group": GROUP}, kubernetes={"cluster_name": "fake"})


def _by_type(target: Target) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for runner in target.gitlab.runners.values():
        found.setdefault(runner.runner_type, []).append(runner.id)
    return found


def _annotations(target: Target) -> dict[str, str]:
    secret = target.kube.get_object("v1", "Secret", "gitlab-runner-config", NAMESPACE)
    assert secret is not None, "the config Secret is missing"
    return dict(secret["metadata"].get("annotations") or {})


def _entries(target: Target) -> list[dict[str, Any]]:
    return list(tomllib.loads(target.stored_config())["runners"])


def _plans_shown(output: str) -> int:
    """How many plans the run printed (each ends with its summary line)."""
    return sum(1 for line in output.splitlines() if line.startswith("Plan: "))


def _before_the_lock(target: Target, act: Callable[[], None]) -> threading.Thread:
    """Run ``act`` while our run waits to create its Lease (after its reads, before the lock)."""
    fault = target.kube.inject("delay", match=("POST", f"{LEASES}$"), seconds=1)
    return _when(lambda: fault.fired, act)


# --- the plan is made once when nothing moved ------------------------------------------------


def test_a_fresh_install_shows_its_plan_once(target: Target) -> None:
    result = target.run("install")

    assert result.exit_code == 0, result.output
    assert _plans_shown(result.stderr) == 1, result.stderr
    assert "GitLab: create runner — no runner for this cluster and namespace yet" in result.stderr
    assert len(target.gitlab.requests("POST", "/api/v4/user/runners")) == 1


def test_a_changed_setting_shows_its_plan_once(target: Target) -> None:
    assert target.run("install").exit_code == 0
    (target.workdir / "bootstrap.toml").write_text("[runner]\nconcurrent = 25\n")

    result = target.run("install")

    assert result.exit_code == 0, result.output
    assert _plans_shown(result.stderr) == 1, result.stderr


def test_a_changed_setting_with_the_loop_shows_its_plan_once(target: Target) -> None:
    _loop(target)
    assert target.run("install").exit_code == 0
    (target.workdir / "bootstrap.toml").write_text("[runner]\nconcurrent = 25\n")

    result = target.run("install")

    assert result.exit_code == 0, result.output
    assert _plans_shown(result.stderr) == 1, result.stderr
    assert "concurrent = 25" in target.stored_config()


def test_an_ops_runner_deleted_by_hand_is_created_again_with_one_plan(target: Target) -> None:
    _loop(target)
    target.gitlab.set_token_expiry(30 * 86400)
    assert target.run("install").exit_code == 0
    [gone] = _by_type(target)["project_type"]
    [group_id] = _by_type(target)["group_type"]
    token = target.stored_token()
    expires = _annotations(target)["gitlab-eci-bootstrap/token-expires-at"]
    assert expires
    target.gitlab_delete_runner(gone)

    result = target.run("install")

    assert result.exit_code == 0, result.output
    assert _plans_shown(result.stderr) == 1, result.stderr
    [ops] = _by_type(target)["project_type"]
    assert ops != gone
    group, ops_entry = _entries(target)
    assert ops_entry["token"] == target.gitlab.runner(ops).token
    # The group runner's entry is kept as it was: its token, its id and expiry recorded.
    assert group["token"] == token == target.gitlab.runner(group_id).token
    annotations = _annotations(target)
    assert annotations["gitlab-eci-bootstrap/runner-id"] == str(group_id)
    assert annotations["gitlab-eci-bootstrap/token-expires-at"] == expires


def test_both_runners_deleted_by_hand_are_created_again_with_one_plan(target: Target) -> None:
    # The ops project stays: the plan reads it, and both runners are to be created.
    _loop(target)
    assert target.run("install").exit_code == 0
    for runner_id in target.group_runners():
        target.gitlab_delete_runner(runner_id)
    target.kube_delete(SECRET)

    result = target.run("install")

    assert result.exit_code == 0, result.output
    assert _plans_shown(result.stderr) == 1, result.stderr
    runners = _by_type(target)
    assert [len(runners["group_type"]), len(runners["project_type"])] == [1, 1]
    group, ops = _entries(target)
    assert group["token"] == target.gitlab.runner(runners["group_type"][0]).token
    assert ops["token"] == target.gitlab.runner(runners["project_type"][0]).token


# --- another run acted between our reads and the lock ----------------------------------------


def test_a_rotation_between_plan_and_lock_is_not_undone(target: Target) -> None:
    # While our run (a settings change) waits for the lock, a rotation resets the token and
    # stores the new one. Our run must write its config with that token, not the one it read.
    assert target.run("install").exit_code == 0
    [runner_id] = target.group_runners()
    (target.workdir / "bootstrap.toml").write_text("[runner]\nconcurrent = 25\n")

    def rotation() -> None:
        old = target.stored_token()
        new = target.gitlab.reset_runner_token(runner_id)
        config = target.stored_config().replace(old, new)
        encoded = base64.b64encode(config.encode()).decode()
        target.kube_patch(SECRET, {"data": {"config.toml": encoded}})

    watcher = _before_the_lock(target, rotation)
    result = target.run("install", "--timeout", "60")
    watcher.join()

    assert result.exit_code == 0, result.output
    assert "concurrent = 25" in target.stored_config()
    assert target.stored_token() == target.gitlab.runner(runner_id).token, (
        "install stored the token it had read, which the rotation revoked"
    )
    assert target.group_runners() == [runner_id]


def test_an_ops_runner_created_between_plan_and_lock_is_adopted(target: Target) -> None:
    # The ops runner is gone; another run creates it (and crashes before storing it) while
    # ours waits for the lock. Ours resets that one: never two ops runners.
    _loop(target)
    assert target.run("install").exit_code == 0
    [gone] = _by_type(target)["project_type"]
    target.gitlab_delete_runner(gone)
    seeded: list[int] = []

    def other_run() -> None:
        seeded.append(
            target.gitlab.add_runner(project=OPS, **ops_runner_attributes(_settings())).id
        )

    watcher = _before_the_lock(target, other_run)
    result = target.run("install", "--timeout", "60")
    watcher.join()

    assert result.exit_code == 0, result.output
    assert _by_type(target)["project_type"] == seeded, "install created a second ops runner"
    assert _entries(target)[1]["token"] == target.gitlab.runner(seeded[0]).token
    assert f"Reset the token of ops runner #{seeded[0]}" in result.stderr


def test_a_group_runner_created_between_plan_and_lock_is_adopted_with_the_loop(
    target: Target,
) -> None:
    # Both runners are to be created (the ops project stays); another run creates the group
    # runner meanwhile. Ours adopts it and creates the ops runner only.
    _loop(target)
    assert target.run("install").exit_code == 0
    for runner_id in target.group_runners():
        target.gitlab_delete_runner(runner_id)
    target.kube_delete(SECRET)
    seeded: list[int] = []

    def other_run() -> None:
        seeded.append(_seed_unstored_runner(target))

    watcher = _before_the_lock(target, other_run)
    result = target.run("install", "--timeout", "60")
    watcher.join()

    assert result.exit_code == 0, result.output
    runners = _by_type(target)
    assert runners["group_type"] == seeded, "install created a second group runner"
    assert len(runners["project_type"]) == 1
    assert _entries(target)[0]["token"] == target.gitlab.runner(seeded[0]).token


def _edit_runner(target: Target, runner_id: int, attributes: dict[str, Any]) -> None:
    """PUT /runners/:id, as someone editing the runner in GitLab's UI would."""
    import json
    import urllib.request

    request = urllib.request.Request(
        f"{target.gitlab_url}/api/v4/runners/{runner_id}",
        data=json.dumps(attributes).encode(),
        method="PUT",
    )
    request.add_header("PRIVATE-TOKEN", target.token)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


# --- execute_runner ---------------------------------------------------------------------------


def test_a_runner_changed_in_gitlab_is_updated_back(target: Target) -> None:
    # Someone edits the runner in GitLab's UI (its tags, untagged jobs): install puts back
    # what the settings say, on the same runner, keeping its token.
    assert target.run("install").exit_code == 0
    [runner_id] = target.group_runners()
    token = target.stored_token()
    _edit_runner(target, runner_id, {"tag_list": ["someone-elses"], "run_untagged": True})
    assert target.gitlab.runner(runner_id).tag_list == ["someone-elses"]

    result = target.run("install")

    assert result.exit_code == 0, result.output
    runner = target.gitlab.runner(runner_id)
    assert (runner.tag_list, runner.run_untagged) == (["eci"], False)
    assert f"Updated runner #{runner_id}: run_untagged, tag_list" in result.stderr
    assert target.stored_token() == token == runner.token
    assert target.group_runners() == [runner_id]


def test_a_reset_waits_for_a_contact_with_the_new_token(target: Target) -> None:
    # The runner contacted GitLab with its old token. After a reset, only a contact made
    # after it proves a pod runs with the new token: pods that never poll again time out.
    assert target.run("install").exit_code == 0
    target.kube_delete(SECRET)
    target.gitlab.runner_processes = lambda: []

    result = target.run("install", "--timeout", "8")

    assert result.exit_code == 5, result.output
    assert "Reset the token of runner" in result.stderr
    assert "is online" not in result.output


def test_a_reset_plan_without_its_runner_is_a_bug_never_a_create(target: Target) -> None:
    settings = make_settings(
        gitlab={"group": GROUP, "url": target.gitlab_url},
        kubernetes={"kubeconfig": str(target.kube.kubeconfig_path)},
    )
    ctx = connect(settings, Secret(target.token), reporter=QuietReporter())
    with pytest.raises(ValueError, match="a reset plan always names its runner"):
        execute_runner(ctx, RunnerPlan("reset", "the stored token is dead"))
    assert target.gitlab_writes() == []


# --- _execute and _store_tokens: the token is stored first, once -----------------------------


def test_a_fresh_install_writes_the_config_secret_once(target: Target) -> None:
    result = target.run("install")

    assert result.exit_code == 0, result.output
    writes = [w for w in target.kube_writes() if w.split("?")[0].endswith(SECRET)]
    assert len(writes) == 1, target.kube_writes()


def test_the_token_is_stored_before_any_other_object_is_written(target: Target) -> None:
    # A write after the runner was created fails: its token is in the Secret already, so the
    # next run reuses the runner as it is (no reset, no second runner).
    _refuse(target.kube, "PATCH", f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/gitlab-runner")

    result = target.run("install")

    assert result.exit_code == 4, result.output
    [runner_id] = target.group_runners()
    assert target.stored_token() == target.gitlab.runner(runner_id).token
    target.kube.clear_faults()
    again = target.run("install")
    assert again.exit_code == 0, again.output
    assert "Reset the token" not in again.output
    assert target.group_runners() == [runner_id]


def test_an_ops_runner_create_that_fails_is_reported_after_the_group_token_is_stored(
    target: Target,
) -> None:
    _loop(target)
    assert target.run("install").exit_code == 0
    [gone] = _by_type(target)["project_type"]
    target.gitlab_delete_runner(gone)
    _refuse(target.gitlab, "POST", "/api/v4/user/runners")

    result = target.run("install")

    assert result.exit_code == 3, result.output
    assert "project_type" not in _by_type(target)
    target.gitlab.clear_faults()
    again = target.run("install")
    assert again.exit_code == 0, again.output
    [ops] = _by_type(target)["project_type"]
    assert _entries(target)[1]["token"] == target.gitlab.runner(ops).token


def test_an_expiry_missing_from_the_secret_is_taken_from_gitlab_again(target: Target) -> None:
    # The expiry annotation was removed by hand; the next install that stores a token (here
    # the ops runner's, the group runner reused) records the group token's expiry from
    # GitLab again, which status and rotate go by.
    _loop(target)
    target.gitlab.set_token_expiry(30 * 86400)
    assert target.run("install").exit_code == 0
    expires = _annotations(target)["gitlab-eci-bootstrap/token-expires-at"]
    target.kube_patch(
        SECRET, {"metadata": {"annotations": {"gitlab-eci-bootstrap/token-expires-at": None}}}
    )
    [gone] = _by_type(target)["project_type"]
    target.gitlab_delete_runner(gone)

    result = target.run("install")

    assert result.exit_code == 0, result.output
    # GitLab's GraphQL gives the expiry in whole seconds (the REST create answer in ms).
    restored = _annotations(target)["gitlab-eci-bootstrap/token-expires-at"]
    assert restored[:19] == expires[:19], (restored, expires)
