"""The rotation loop install builds: the ops project, its sealed runner entry, the schedule."""

from __future__ import annotations

import json
import tomllib
from typing import Any

from bootstrap.workflow import ops_runner_attributes
from tests.conftest import make_settings
from tests.e2e.conftest import Target
from tests.fakes.fixtures import OWNER_API_TOKEN, READER_TOKEN

OPS = "mygroup/gitlab-eci-bootstrap"
ROTATOR = "gitlab-runner-rotator"


def _loop(target: Target) -> None:
    target.token = OWNER_API_TOKEN
    target.publish = True


def _runners(target: Target) -> dict[str, Any]:
    by_type = {r.runner_type: r for r in target.gitlab.runners.values()}
    assert len(by_type) == len(target.gitlab.runners), "one runner of each type"
    return by_type


def test_fresh_install_builds_a_sealed_rotation_runner(target: Target) -> None:
    _loop(target)

    result = target.run("install")

    assert result.exit_code == 0, result.output
    runners = _runners(target)
    assert set(runners) == {"group_type", "project_type"}
    ops = target.gitlab.runners[
        next(r.id for r in runners.values() if r.runner_type == "project_type")
    ]
    project = target.gitlab.project(OPS)
    assert ops.project_id == project.id
    assert (ops.locked, ops.access_level, ops.run_untagged) == (True, "ref_protected", False)
    assert ops.tag_list == ["gitlab-eci-bootstrap-rotation"]
    group_entry, ops_entry = tomllib.loads(target.stored_config())["runners"]
    assert ops_entry["token"] == ops.token
    assert ops_entry["kubernetes"]["service_account"] == ROTATOR
    assert "service_account_overwrite_allowed" not in group_entry["kubernetes"]
    assert "GitLab: create ops runner (the rotation's own)" in result.output  # the plan
    assert f"Created ops runner #{ops.id} in {OPS}" in result.output
    # The one manager pod polls for both entries: both come online.
    assert f"Runner #{ops.id} is online" in result.output


def test_second_install_writes_nothing_for_the_loop(target: Target) -> None:
    _loop(target)
    assert target.run("install").exit_code == 0
    target.gitlab.clear_log()
    target.kube.clear_log()

    result = target.run("install", "--output", "json")

    assert result.exit_code == 0, result.output
    assert target.gitlab_writes() == []
    assert target.kube_writes() == []
    assert json.loads(result.stdout)["ops_runner"]["action"] == "reuse"
    assert len(target.gitlab.runners) == 2


def test_a_job_of_another_project_cannot_reach_the_rotator(target: Target) -> None:
    _loop(target)
    target.gitlab.add_project("mygroup/web", {"README.md": "web\n"})
    assert target.run("install").exit_code == 0
    runners = {r.runner_type: r.id for r in target.gitlab.runners.values()}
    ops, group = runners["project_type"], runners["group_type"]

    # GitLab gives the rotation runner jobs of the ops project's protected refs only ...
    assert not target.gitlab.can_pick(ops, "mygroup/web", protected_ref=True)
    assert not target.gitlab.can_pick(ops, OPS, protected_ref=False)
    assert target.gitlab.can_pick(ops, OPS, protected_ref=True)
    # ... and the group runner, which takes everyone's jobs, never runs one as the rotator:
    # without service_account_overwrite_allowed gitlab-runner ignores
    # KUBERNETES_SERVICE_ACCOUNT_OVERWRITE.
    assert target.gitlab.can_pick(group, "mygroup/web", protected_ref=False)
    [group_entry, _] = tomllib.loads(target.stored_config())["runners"]
    kube = group_entry["kubernetes"]
    assert "service_account_overwrite_allowed" not in kube
    assert kube.get("service_account", "default") != ROTATOR


def test_uninstall_removes_the_ops_runner_and_the_schedule(target: Target) -> None:
    _loop(target)
    assert target.run("install").exit_code == 0
    assert len(target.gitlab.runners) == 2

    result = target.run("uninstall", "--yes")

    assert result.exit_code == 0, result.output
    assert target.gitlab.runners == {}
    assert "deleted ops runner #" in result.stdout
    assert target.gitlab.project(OPS).schedules == {}
    # The ops project itself stays (its history is the loop's record).
    assert target.gitlab.project(OPS).files["main"]


def test_status_names_the_repair_of_a_dead_ops_runner_token(target: Target) -> None:
    _loop(target)
    target.gitlab.set_token_expiry(30 * 86400)
    assert target.run("install").exit_code == 0
    assert target.run("status").exit_code == 0
    ops = _runners(target)["project_type"]
    target.gitlab.set_token_expiry(31 * 86400)
    target.gitlab.reset_runner_token(ops.id)  # reset elsewhere: the stored token is dead

    result = target.run("status")

    assert result.exit_code == 3, result.output
    assert f"the token of ops runner #{ops.id} (the rotation's own) is dead" in result.output
    assert "run `bootstrap install`: it resets the ops runner's token by id" in result.output
    assert target.run("install").exit_code == 0
    assert target.run("status").exit_code == 0


def test_status_fails_when_a_token_expires_soon_and_the_last_rotation_failed(
    target: Target,
) -> None:
    _loop(target)
    target.gitlab.set_token_expiry(3 * 86400)  # within the 7d window
    assert target.run("install").exit_code == 0
    [schedule] = target.gitlab.project(OPS).schedules.values()
    waiting = target.run("status")
    assert waiting.exit_code == 0, "not run yet is not a failure"
    assert "within rotation.rotate_before" in waiting.stderr

    pipeline = target.gitlab.schedule_ran(OPS, schedule.id, "failed")
    result = target.run("status")

    assert result.exit_code == 3, result.output
    assert f"the last scheduled rotation, pipeline #{pipeline['id']}, failed" in result.output
    assert "the token of runner #1 expires at 20" in result.output  # says when
    assert pipeline["web_url"] in result.output
    target.gitlab.schedule_ran(OPS, schedule.id, "success")
    assert target.run("status").exit_code == 0


def test_without_in_cluster_rotation_install_schedules_nothing_and_says_why(
    target: Target,
) -> None:
    _loop(target)
    target.extra_env["BOOTSTRAP_ROTATION__IN_CLUSTER"] = "false"

    result = target.run("install")

    assert result.exit_code == 0, result.output
    # No schedule whose job would wait forever for the ops runner's tag.
    assert "rotation.in_cluster = false: no rotation schedule" in result.stderr
    assert "bootstrap rotate --if-expiring-within" in result.stderr
    assert [r.runner_type for r in target.gitlab.runners.values()] == ["group_type"]
    assert target.gitlab.projects_api.find(OPS) is None


def test_rotate_dry_run_says_nothing_was_changed_once_for_both_runners(target: Target) -> None:
    _loop(target)
    assert target.run("install").exit_code == 0

    result = target.run("rotate", "--force", "--dry-run")

    assert result.exit_code == 0, result.output
    assert result.stdout.count("would reset the token") == 2  # the group and the ops runner
    assert result.stdout.count("Dry run: nothing was changed.") == 1
    assert result.stdout.rstrip().endswith("Dry run: nothing was changed.")


def _ops_variable(target: Target, key: str) -> str:
    return next(v.value for v in target.gitlab.project(OPS).variables if v.key == key)


def test_the_done_count_includes_the_loop_token(target: Target) -> None:
    _loop(target)

    fresh = target.run("install")

    assert fresh.exit_code == 0, fresh.output
    # The group runner, the ops runner, the templates, the ops project, the schedule and
    # the loop's group access token.
    assert "(GitLab: 6 created; Kubernetes: " in fresh.stdout
    target.gitlab.revoke_token(_ops_variable(target, "GITLAB_TOKEN"))  # the loop's token dies

    replaced = target.run("install", "--output", "json")

    assert replaced.exit_code == 0, replaced.output
    report = json.loads(replaced.stdout)
    assert report["schedule"]["token"]["action"] == "replaced"
    assert report["summary_by_system"]["gitlab"] == {"create": 0, "update": 1, "unchanged": 5}


def test_status_with_a_maintainer_token_checks_what_a_maintainer_may_read(
    target: Target,
) -> None:
    _loop(target)
    target.gitlab.set_token_expiry(30 * 86400)
    assert target.run("install").exit_code == 0
    [loop_token] = target.gitlab.access_tokens.active("mygroup")
    target.gitlab.add_member("mygroup", "reader", 40)  # Maintainer
    target.token = READER_TOKEN
    target.gitlab.clear_log()

    result = target.run("status")

    # Healthy: GitLab does not list a group's access tokens to a Maintainer (401), which is
    # no fault of GITLAB_TOKEN; status says what it did not check and does not ask.
    assert result.exit_code == 0, result.output
    assert (
        f"the loop's group access token #{loop_token.id} ({OPS}/GITLAB_TOKEN) was not checked: "
        "only Owners of mygroup may list its access tokens"
    ) in result.stderr
    assert "rejected GITLAB_TOKEN" not in result.output
    assert not [r for r in target.gitlab.requests() if "/access_tokens" in r.path]

    # What a Maintainer may read is still checked: the ops project's variables.
    with target.gitlab.lock:
        project = target.gitlab.projects_api.get(OPS)
        project.variables = [v for v in project.variables if v.key != "GITLAB_TOKEN"]
    locked_out = target.run("status")
    assert locked_out.exit_code == 3, locked_out.output
    assert f"{OPS} has no CI/CD variable GITLAB_TOKEN" in locked_out.output


def test_a_change_only_in_gitlab_is_made_under_the_lock(target: Target) -> None:
    _loop(target)
    assert target.run("install").exit_code == 0
    target.gitlab.revoke_token(_ops_variable(target, "GITLAB_TOKEN"))
    target.kube.clear_log()

    result = target.run("install")

    assert result.exit_code == 0, result.output
    leases = "/apis/coordination.k8s.io/v1/namespaces/gitlab-runner/leases"
    # The cluster is as it was: its only writes are the lock's (taken, then released).
    assert [w.split()[0] for w in target.kube_writes()] == ["POST", "DELETE"]
    assert all(w.split()[1].startswith(leases) for w in target.kube_writes())
    [token] = target.gitlab.access_tokens.active("mygroup")
    assert _ops_variable(target, "GITLAB_TOKEN") == token.token


def test_uninstall_removes_every_marked_ops_runner_at_once(target: Target) -> None:
    _loop(target)
    assert target.run("install").exit_code == 0
    settings = make_settings(gitlab={"group": "mygroup"}, kubernetes={"cluster_name": "fake"})
    extra = target.gitlab.add_runner(project=OPS, **ops_runner_attributes(settings)).id

    result = target.run("uninstall", "--yes")

    assert result.exit_code == 0, result.output
    assert target.gitlab.runners == {}
    assert f"#{extra} (" in result.stdout.split("deleted ops runners ")[1]


def test_a_duplicate_gitlab_refuses_to_delete_is_warned_about_and_install_goes_on(
    target: Target,
) -> None:
    # A project runner assigned to another project too: DELETE /runners/:id is 403 for
    # anyone but an admin (lib/api/ci/runners.rb, authenticate_delete_runner!).
    _loop(target)
    assert target.run("install").exit_code == 0
    settings = make_settings(gitlab={"group": "mygroup"}, kubernetes={"cluster_name": "fake"})
    extra = target.gitlab.add_runner(project=OPS, **ops_runner_attributes(settings)).id
    target.gitlab.add_project("mygroup/app", {"README.md": "x\n"})
    target.gitlab.assign_runner(extra, "mygroup/app")
    target.kube_delete("/apis/apps/v1/namespaces/gitlab-runner/deployments/gitlab-runner")

    result = target.run("install", "--output", "json")

    assert result.exit_code == 0, result.output
    assert extra in target.gitlab.runners
    assert f"could not delete ops runner #{extra} (" in result.stderr
    assert "403 Forbidden - Runner associated with more than one project" in result.stderr
    assert "unassign it there (each project's Settings > CI/CD > Runners)" in result.stderr
    report = json.loads(result.stdout)
    [refused] = report["ops_runner"]["deletes"]
    assert refused["id"] == extra
    assert "Runner associated with more than one project" in refused["refused"]
    assert "delete" not in report["summary_by_system"]["gitlab"]  # not counted as done
    assert any(f"ops runner #{extra}" in w for w in report["warnings"])
    # The rest of the run was done: the Deployment is back.
    assert target.kube.get_object("apps/v1", "Deployment", "gitlab-runner", "gitlab-runner")

    again = target.run("install")
    assert again.exit_code == 0, again.output  # not failing every run from now on
    assert "Done: 0 created, 0 updated, " in again.stdout
    assert f"could not delete ops runner #{extra}" in again.stderr

    status = target.run("status")
    assert status.exit_code == 3, status.output
    assert f"2 ops runners of {OPS} carry the marker" in status.stdout
    assert f"#{extra} is not" in status.stdout
    # GitLab hands jobs only to a runner polling with its token: a duplicate takes none.
    assert "no pod polls with its token, so it takes no jobs" in status.stdout
    assert "a GitLab administrator deletes it in Admin area > CI/CD > Runners" in status.stdout


def test_install_deletes_a_duplicate_ops_runner(target: Target) -> None:
    _loop(target)
    assert target.run("install").exit_code == 0
    recorded = {r.runner_type: r.id for r in target.gitlab.runners.values()}["project_type"]
    settings = make_settings(gitlab={"group": "mygroup"}, kubernetes={"cluster_name": "fake"})
    extra = target.gitlab.add_runner(project=OPS, **ops_runner_attributes(settings)).id

    result = target.run("install")

    assert result.exit_code == 0, result.output
    assert f"GitLab: delete ops runner #{extra} (" in result.output
    assert f"Deleted ops runner #{extra} (a duplicate" in result.output
    assert extra not in target.gitlab.runners
    assert recorded in target.gitlab.runners
    assert len(target.gitlab.runners) == 2  # the group runner and the recorded ops runner
