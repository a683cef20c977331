"""`bootstrap status` end to end: healthy, and each way of being unhealthy, with its exit code."""

from __future__ import annotations

import base64
import json

from tests.e2e.conftest import Target
from tests.fakes.fixtures import READER_TOKEN

SECRET = "/api/v1/namespaces/gitlab-runner/secrets/gitlab-runner-config"


def _installed(target: Target, *extra: str) -> None:
    result = target.run("install", *extra)
    assert result.exit_code == 0, result.output
    target.kube.clear_log()
    target.gitlab.clear_log()


def _assert_read_only(target: Target) -> None:
    # Not even POST /runners/verify: it records a contact, so status never calls it.
    assert [f"{r.method} {r.path}" for r in target.gitlab.writes()] == []
    assert target.kube_writes() == []


def test_healthy_runner_exits_0_and_writes_nothing(target: Target) -> None:
    _installed(target)
    runner_id = target.group_runners()[0]

    result = target.run("status")

    assert result.exit_code == 0, result.output
    _assert_read_only(target)
    assert f"runner #{runner_id}" in result.stdout
    assert "online" in result.stdout
    assert "1/1 ready" in result.stdout
    assert "gitlab-runner:alpine-v" in result.stdout  # the image the pod runs
    assert "the pods run the current config.toml" in result.stdout
    assert "Drift: none" in result.stdout
    assert "Healthy." in result.stdout


def test_json_reports_runner_kubernetes_and_drift(target: Target) -> None:
    target.gitlab.set_token_expiry(30 * 86400)
    _installed(target)

    result = target.run("status", "--output", "json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["healthy"] is True
    assert report["exit_code"] == 0
    runner = report["runner"]
    assert runner["status"] == "online"
    assert runner["tags"] == ["eci"]
    assert runner["token_expires_at"]
    assert runner["contacted_at"]
    assert runner["found_by"] == "secret"
    kube = report["kubernetes"]
    assert kube["ready_replicas"] == kube["replicas"] == 1
    assert kube["config_checksum_matches"] is True
    assert [image.rsplit(":", 1)[0] for image in kube["images"]] == [
        "registry.gitlab.com/gitlab-org/gitlab-runner"
    ]
    assert report["drift"] == []
    assert report["problems"] == []


def test_deployment_never_ready_exits_4(target: Target) -> None:
    target.kube.never_ready = True
    _installed(target, "--no-wait")
    # The runner is online (say an older pod still polls), but the Deployment is not ready.
    [runner_id] = target.group_runners()
    target.gitlab.mark_runner_contacted(runner_id, system_id=target.system_id())

    result = target.run("status")

    assert result.exit_code == 4, result.output
    assert "deployment/gitlab-runner is not ready (0/1 ready)" in result.output
    assert "error: unhealthy:" in result.stderr
    _assert_read_only(target)


def test_runner_deleted_in_gitlab_exits_3(target: Target) -> None:
    _installed(target)
    runner_id = target.group_runners()[0]
    target.gitlab_delete_runner(runner_id)

    result = target.run("status", "--output", "json")

    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout)
    assert report["runner"] is None
    assert report["problems"][0]["message"] == (
        f"runner #{runner_id} recorded in Secret gitlab-runner-config is gone from GitLab"
    )
    assert report["problems"][0]["exit_code"] == 3
    assert "bootstrap install" in result.stderr  # the hint


def test_config_secret_changed_by_hand_is_a_checksum_mismatch(target: Target) -> None:
    _installed(target)
    edited = target.stored_config().replace("concurrent = ", "concurrent = 1", 1)
    target.kube_patch(SECRET, {"data": {"config.toml": base64.b64encode(edited.encode()).decode()}})

    result = target.run("status", "--output", "json")

    assert result.exit_code == 4, result.output
    report = json.loads(result.stdout)
    assert report["kubernetes"]["config_checksum_matches"] is False
    messages = [p["message"] for p in report["problems"]]
    assert any("do not run the current config" in m for m in messages), messages
    # install would write the Secret back: that is drift too.
    assert {(d["kind"], d["name"], d["action"]) for d in report["drift"]} == {
        ("Secret", "gitlab-runner-config", "update")
    }


def test_changed_settings_are_drift_and_exit_4(target: Target) -> None:
    _installed(target)
    (target.workdir / "bootstrap.toml").write_text("[runner]\nconcurrent = 25\n")

    result = target.run("status")

    assert result.exit_code == 4, result.output
    assert "~ Secret/gitlab-runner-config" in result.stdout
    assert "~ Deployment/gitlab-runner" in result.stdout
    assert "2 objects differ from the settings" in result.stdout
    _assert_read_only(target)


def test_runner_changed_in_gitlab_exits_3(target: Target) -> None:
    _installed(target)
    (target.workdir / "bootstrap.toml").write_text('[gitlab]\ntags = ["eci", "big"]\n')

    result = target.run("status")

    assert result.exit_code == 3, result.output
    assert "in GitLab differs from the settings: tag_list" in result.stdout


def test_not_installed_exits_4(target: Target) -> None:
    result = target.run("status")

    assert result.exit_code == 4, result.output
    assert "not installed" in result.stderr
    assert "bootstrap install" in result.stderr


def test_a_read_only_token_is_enough(target: Target) -> None:
    _installed(target)
    target.gitlab.add_member("mygroup", "reader", 40)  # Maintainer: may read group runners
    target.token = READER_TOKEN

    result = target.run("status")

    assert result.exit_code == 0, result.output
    _assert_read_only(target)
