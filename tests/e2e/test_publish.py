"""`bootstrap templates publish`, the rotation schedule, and install doing both."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import Target
from tests.fakes.fixtures import OWNER_API_TOKEN

TEMPLATES = "mygroup/ci-templates"
OPS = "mygroup/gitlab-eci-bootstrap"


def _publish(target: Target, *extra: str) -> dict[str, object]:
    result = target.run("templates publish", "--output", "json", *extra)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_publish_creates_the_project_commits_once_and_tags(target: Target) -> None:
    target.token = OWNER_API_TOKEN
    report = _publish(target)

    project = target.gitlab.project(TEMPLATES)
    assert report["project_created"] is True
    assert project.visibility == "private"  # the group is private: never more visible than it
    assert len(target.gitlab.commits(TEMPLATES)) == 1
    assert list(target.gitlab.tags(TEMPLATES)) == ["v1.0.0"]
    files = project.files["main"]
    assert "templates/kaniko.yml" in files
    assert "README.md" in files
    assert ".gitlab-ci.yml" in files
    assert target.gitlab.catalog_resource(TEMPLATES) is True
    assert "component: $CI_SERVER_FQDN/mygroup/ci-templates/kaniko@v1.0.0" in str(
        report["include_snippet"]
    )


def test_publishing_the_same_content_again_makes_no_commit_and_no_tag(target: Target) -> None:
    target.token = OWNER_API_TOKEN
    _publish(target)
    target.gitlab.clear_log()

    report = _publish(target)

    assert report["commit"] is None
    assert report["tag_created"] is False
    assert len(target.gitlab.commits(TEMPLATES)) == 1
    assert len(target.gitlab.tags(TEMPLATES)) == 1
    assert target.gitlab_writes() == []


def test_a_changed_template_makes_one_new_commit_and_tag(target: Target) -> None:
    target.token = OWNER_API_TOKEN
    _publish(target)
    (target.workdir / "bootstrap.toml").write_text(
        '[registry]\nserver = "registry.cn-hangzhou.aliyuncs.com"\nusername = "ci"\n'
        'password_env = "REG_PASSWORD"\n'
    )

    report = _publish(target, "--version", "1.1.0")

    assert report["tag"] == "v1.1.0"
    assert report["tag_created"] is True
    files = report["files"]
    assert isinstance(files, dict)
    assert files["updated"], "the registry host is baked into the inputs' defaults"
    assert len(target.gitlab.commits(TEMPLATES)) == 2
    assert sorted(target.gitlab.tags(TEMPLATES)) == ["v1.0.0", "v1.1.0"]
    kaniko = target.gitlab.project(TEMPLATES).files["main"]["templates/kaniko.yml"]
    assert "registry.cn-hangzhou.aliyuncs.com" in kaniko


def test_changed_content_under_a_released_version_is_refused_before_any_write(
    target: Target,
) -> None:
    target.token = OWNER_API_TOKEN
    _publish(target)
    (target.workdir / "bootstrap.toml").write_text('[gitlab]\ntags = ["eci", "big"]\n')
    target.gitlab.clear_log()

    result = target.run("templates publish")

    assert result.exit_code == 2
    assert "v1.0.0 is already released" in result.stderr
    assert "--version" in result.stderr
    assert target.gitlab_writes() == []


def test_dry_run_publishes_nothing(target: Target) -> None:
    target.token = OWNER_API_TOKEN
    result = target.run("templates publish", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Would create project mygroup/ci-templates" in result.stdout
    assert target.gitlab_writes() == []


def test_publish_needs_the_api_scope(target: Target) -> None:
    result = target.run("templates publish")
    assert result.exit_code == 3
    assert "api" in result.stderr


def _schedules(target: Target) -> list[Any]:
    return list(target.gitlab.project(OPS).schedules.values())


def test_install_publishes_and_creates_the_schedule_once_then_updates_it_in_place(
    target: Target,
) -> None:
    target.token = OWNER_API_TOKEN
    target.publish = True
    target.gitlab.add_project(OPS, {"README.md": "ops\n"})
    target.gitlab.add_variable(
        OPS, "GITLAB_TOKEN", "glpat-ops-0123456789", masked=True, protected=True
    )

    first = target.run("install")
    assert first.exit_code == 0, first.output
    assert "Schedule: created the rotation schedule" in first.stdout
    schedules = _schedules(target)
    assert len(schedules) == 1
    variables = {k: v.value for k, v in schedules[0].variables.items()}
    assert variables["BOOTSTRAP_TASK"] == "rotate"
    assert variables["BOOTSTRAP_GROUP"] == "mygroup"
    assert variables["BOOTSTRAP_NAMESPACE"] == "gitlab-runner"
    assert target.gitlab.tags(TEMPLATES)
    project_variables = {v.key: v.value for v in target.gitlab.project(OPS).variables}
    assert project_variables["BOOTSTRAP_TEMPLATES_VERSION"] == "v1.0.0"
    assert project_variables["BOOTSTRAP_TEMPLATES_PROJECT"] == "mygroup/ci-templates"

    target.gitlab.clear_log()
    target.kube.clear_log()
    again = target.run("install")
    assert again.exit_code == 0, again.output
    assert "rotation schedule is up to date" in again.stdout
    assert target.gitlab_writes() == []
    assert target.kube_writes() == []

    (target.workdir / "bootstrap.toml").write_text('[rotation]\ncron = "5 4 * * *"\n')
    third = target.run("install")
    assert third.exit_code == 0, third.output
    assert "updated the rotation schedule" in third.stdout
    schedules = _schedules(target)
    assert len(schedules) == 1, "updated in place, never a second schedule"
    assert schedules[0].cron == "5 4 * * *"


def test_a_missing_ops_project_is_a_warning_not_a_failure(target: Target) -> None:
    target.token = OWNER_API_TOKEN
    target.publish = True
    result = target.run("install")
    assert result.exit_code == 0, result.output
    assert "no rotation schedule: project mygroup/gitlab-eci-bootstrap does not exist" in (
        result.stderr
    )


def test_uninstall_removes_the_schedule(target: Target) -> None:
    target.token = OWNER_API_TOKEN
    target.publish = True
    target.gitlab.add_project(OPS, {"README.md": "ops\n"})
    assert target.run("install").exit_code == 0
    assert len(_schedules(target)) == 1

    result = target.run("uninstall", "--yes")

    assert result.exit_code == 0, result.output
    assert "deleted the rotation schedule" in result.stdout
    assert _schedules(target) == []
