"""`bootstrap install` end to end, through the CLI, against the fake GitLab and cluster."""

from __future__ import annotations

import json

from tests.e2e.conftest import EXPECTED, Target
from tests.fakes.fixtures import READER_TOKEN
from tests.fakes.gitlab import FakeGitLab
from tests.fakes.kube import FakeKube


def _objects(target: Target) -> set[str]:
    return {
        f"{o['kind']}/{o['metadata']['name']}"
        for o in target.kube.objects()
        if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by")
        == "gitlab-eci-bootstrap"
        and o["kind"] not in ("Pod", "ReplicaSet")  # made by the deployment controller
    }


def test_fresh_install_creates_one_runner_and_deploys_it(target: Target) -> None:
    result = target.run("install")
    assert result.exit_code == 0, result.output
    assert len(target.group_runners()) == 1
    runner = next(iter(target.gitlab.runners.values()))
    assert "[managed-by=gitlab-eci-bootstrap cluster=fake namespace=gitlab-runner]" in (
        runner.maintenance_note
    )
    assert runner.tag_list == ["eci"]
    assert _objects(target) == EXPECTED
    assert target.stored_token() == runner.token  # the token the runner will use
    assert "successfully rolled out" in result.output
    assert f"Runner #{runner.id} is online" in result.output


def test_second_run_with_nothing_changed_writes_nothing(target: Target) -> None:
    assert target.run("install").exit_code == 0
    versions = {
        f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
        for o in target.kube.objects()
    }
    target.kube.clear_log()
    target.gitlab.clear_log()

    result = target.run("install", "--output", "json")

    assert result.exit_code == 0, result.output
    assert target.kube_writes() == []
    assert target.gitlab_writes() == []
    assert len(target.group_runners()) == 1
    after = {
        f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
        for o in target.kube.objects()
    }
    assert after == versions
    report = json.loads(result.stdout)
    assert report["runner"]["action"] == "reuse"
    assert report["summary"] == {"create": 0, "update": 0, "unchanged": len(EXPECTED)}
    assert report["requests"]["kubernetes"]["writes"] == 0


def test_a_changed_setting_updates_only_what_it_touches(target: Target) -> None:
    assert target.run("install").exit_code == 0
    (target.workdir / "bootstrap.toml").write_text("[runner]\nconcurrent = 25\n")
    target.kube.clear_log()

    result = target.run("install")

    assert result.exit_code == 0, result.output
    writes = target.kube_writes()
    patched = {w.rsplit("/", 1)[-1] for w in writes if "/leases" not in w}
    # config.toml changed, so the Secret and the Deployment's checksum annotation changed.
    assert patched == {"gitlab-runner-config", "gitlab-runner"}
    assert any("/leases" in w for w in writes), "changes are made under the namespace lock"
    assert "concurrent = 25" in target.stored_config()
    assert len(target.group_runners()) == 1


def test_lost_secret_resets_the_existing_runner_instead_of_creating_another(target: Target) -> None:
    assert target.run("install").exit_code == 0
    runner_id = target.group_runners()[0]
    old_token = target.stored_token()
    target.kube_delete("/api/v1/namespaces/gitlab-runner/secrets/gitlab-runner-config")
    target.kube.clear_log()

    result = target.run("install")

    assert result.exit_code == 0, result.output
    assert target.group_runners() == [runner_id]
    new_token = target.stored_token()
    assert new_token != old_token
    assert target.gitlab.runner(runner_id).token == new_token
    assert "Reset the token of runner" in result.output


def test_dry_run_prints_the_plan_and_writes_nothing(target: Target) -> None:
    result = target.run("install", "--dry-run")

    assert result.exit_code == 0, result.output
    assert target.kube_writes() == []
    assert target.gitlab_writes() == []
    assert target.group_runners() == []
    assert "GitLab: create runner" in result.stdout
    assert "+ Deployment/gitlab-runner" in result.stdout
    assert "Dry run: nothing was changed" in result.stdout


def test_dry_run_after_a_change_shows_a_redacted_diff(target: Target) -> None:
    assert target.run("install").exit_code == 0
    (target.workdir / "bootstrap.toml").write_text('[gitlab]\ntags = ["eci", "big"]\n')
    target.kube.clear_log()
    target.gitlab.clear_log()

    result = target.run("install", "--dry-run")

    assert result.exit_code == 0, result.output
    assert target.kube_writes() == []
    assert target.gitlab_writes() == []
    assert "GitLab: update runner" in result.stdout
    assert "tag_list" in result.stdout
    assert "~ Secret/gitlab-runner-config" not in result.stdout  # tags live in GitLab only


def test_unknown_group_is_invalid_input(target: Target) -> None:
    result = run_with_group(target, "nosuchgroup")
    assert result.exit_code == 2, result.output
    assert "nosuchgroup" in result.stderr
    assert target.group_runners() == []
    assert target.kube_writes() == []


def run_with_group(target: Target, group: str) -> object:
    from tests.conftest import run_cli

    args = ["install", "--group", group, "--kubeconfig", str(target.kube.kubeconfig_path)]
    result = run_cli(args, env=target.env, cwd=target.workdir)
    target.outputs.append(result.output)
    return result


def test_read_only_token_is_refused_naming_the_missing_scopes(target: Target) -> None:
    target.token = READER_TOKEN
    result = target.run("install")
    assert result.exit_code == 3, result.output
    assert "create_runner" in result.stderr
    assert "manage_runner" in result.stderr
    assert target.group_runners() == []
    assert target.kube_writes() == []


def test_gitlab_down_exits_3_and_touches_nothing(target: Target) -> None:
    target.gitlab.stop()
    result = target.run("install")
    assert result.exit_code == 3, result.output
    assert "cannot reach" in result.stderr or "connection" in result.stderr
    assert target.kube_writes() == []


def test_cluster_down_exits_4_and_leaves_no_runner(target: Target) -> None:
    target.kube.stop()
    result = target.run("install")
    assert result.exit_code == 4, result.output
    assert "Kubernetes API" in result.stderr
    assert target.group_runners() == []


def test_secret_write_failure_after_create_deletes_the_new_runner(target: Target) -> None:
    for _ in range(3):  # every retry of the first Secret write fails
        target.kube.inject("500", match=("PATCH", r"/secrets/gitlab-runner-config$"))
    result = target.run("install")
    assert result.exit_code == 4, result.output
    assert target.group_runners() == []
    assert "Deleted runner" in result.stderr
    assert target.run("install").exit_code == 0
    assert len(target.group_runners()) == 1


def test_rollout_that_never_gets_ready_times_out_with_exit_5(target: Target) -> None:
    target.kube.never_ready = True
    result = target.run("install", "--timeout", "3")
    assert result.exit_code == 5, result.output
    assert "rollout" in result.stderr
    assert len(target.group_runners()) == 1  # kept: the next run reuses it


def test_no_wait_returns_before_the_rollout(target: Target) -> None:
    target.kube.never_ready = True
    result = target.run("install", "--no-wait")
    assert result.exit_code == 0, result.output
    assert "rolled out" not in result.output


def test_missing_token_is_invalid_input(target: Target) -> None:
    target.token = ""
    result = target.run("install")
    assert result.exit_code == 2
    assert "GITLAB_TOKEN is empty" in result.stderr
    assert target.gitlab.requests() == []


def test_install_as_a_real_subprocess(target: Target) -> None:
    result = target.run_subprocess("install", "--output", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["runner"]["action"] == "create"
    assert report["summary"]["create"] == len(EXPECTED)


def test_a_rollout_past_its_progress_deadline_fails_at_once_with_exit_5(target: Target) -> None:
    target.kube.never_ready = True
    target.kube.progress_deadline = 0.2  # the controller marks ProgressDeadlineExceeded
    result = target.run("install", "--timeout", "60")
    assert result.exit_code == 5, result.output
    assert "exceeded its progress deadline" in result.stderr
    assert "kubectl -n gitlab-runner describe deployment gitlab-runner" in result.stderr


def test_a_missing_permission_stops_a_fresh_install_before_the_namespace_is_created(
    target: Target,
) -> None:
    # The namespace is created before the lock (the Lease lives in it), but only after
    # every write of the plan (the lock's Lease verbs included) was found allowed.
    target.kube.deny("create", "leases", group="coordination.k8s.io")

    result = target.run("install")

    assert result.exit_code == 4, result.output
    assert "may not: create Lease" in result.stderr
    assert target.kube.writes() == []
    assert target.gitlab.writes() == []


SECRET = "/api/v1/namespaces/gitlab-runner/secrets/gitlab-runner-config"


def _refuse(server: FakeGitLab | FakeKube, method: str, path: str) -> None:
    """Every attempt (retries included) of the next requests to ``path`` fails with 500
    (until ``clear_faults``)."""
    for _ in range(8):
        server.inject("500", match=(method, path + "$"))


def test_a_runner_whose_token_cannot_be_stored_is_deleted_again(target: Target) -> None:
    _refuse(target.kube, "PATCH", SECRET)

    result = target.run("install")

    assert result.exit_code == 4, result.output
    assert "Deleted runner #1 again: its token could not be stored" in result.stderr
    assert target.group_runners() == []


def test_a_runner_that_cannot_be_deleted_again_is_adopted_next_time(target: Target) -> None:
    _refuse(target.kube, "PATCH", SECRET)
    _refuse(target.gitlab, "DELETE", "/api/v4/runners/1")

    result = target.run("install")

    # The Secret's failure is the one reported; the runner is left with its marker.
    assert result.exit_code == 4, result.output
    assert "Could not delete runner #1 again" in result.stderr
    assert "Deleted runner #1 again" not in result.stderr
    assert "the next install adopts it" in result.stderr
    assert target.group_runners() == [1]
    target.kube.clear_faults()
    target.gitlab.clear_faults()
    again = target.run("install")
    assert again.exit_code == 0, again.output
    assert target.group_runners() == [1]
    assert target.stored_token() == target.gitlab.runner(1).token
