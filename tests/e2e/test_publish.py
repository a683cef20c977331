"""`bootstrap templates publish`, the rotation schedule, and install doing both."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from bootstrap import ops
from tests.e2e.conftest import REPO, Target
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


def _loop(target: Target) -> None:
    target.token = OWNER_API_TOKEN
    target.publish = True


def test_install_builds_the_ops_project_and_schedule_once_then_updates_it_in_place(
    target: Target,
) -> None:
    _loop(target)

    first = target.run("install")

    assert first.exit_code == 0, first.output
    project = target.gitlab.project(OPS)
    assert project.visibility == "private"
    assert len(target.gitlab.commits(OPS)) == 1
    files = project.files["main"]
    assert files["tool/requirements.txt"] == (REPO / "bootstrap/requirements.lock").read_text()
    assert "tool/bootstrap/rotate.py" in files
    assert files["tool/bootstrap/__init__.py"] == (REPO / "bootstrap/__init__.py").read_text()
    pipeline = yaml.safe_load(files[".gitlab-ci.yml"])
    job = pipeline["rotate-runner-token"]
    assert job["variables"]["BOOTSTRAP_GROUP"] == "mygroup"
    assert job["variables"]["BOOTSTRAP_NAMESPACE"] == "gitlab-runner"
    assert job["variables"]["BOOTSTRAP_KUBERNETES__CLUSTER_NAME"] == "fake"
    assert job["script"][0].endswith("-r tool/requirements.txt")
    assert (
        "Ops project: mygroup/gitlab-eci-bootstrap: created the project (private), committed "
        "the rotation pipeline and tool"
    ) in first.stdout
    [schedule] = _schedules(target)
    assert schedule.variables == {}, "the settings live in the committed file"
    assert "Schedule: created the rotation schedule" in first.stdout
    project_variables = {v.key: v.value for v in project.variables}
    assert project_variables["BOOTSTRAP_TEMPLATES_VERSION"] == "v1.0.0"

    target.gitlab.clear_log()
    target.kube.clear_log()
    again = target.run("install")
    assert again.exit_code == 0, again.output
    assert "rotation schedule is up to date" in again.stdout
    assert "holds the rotation pipeline and tool" in again.stdout
    assert target.gitlab_writes() == []
    assert target.kube_writes() == []
    assert len(target.gitlab.commits(OPS)) == 1

    (target.workdir / "bootstrap.toml").write_text('[rotation]\ncron = "5 4 * * *"\n')
    third = target.run("install")
    assert third.exit_code == 0, third.output
    assert "updated the rotation schedule" in third.stdout
    schedules = _schedules(target)
    assert len(schedules) == 1, "updated in place, never a second schedule"
    assert schedules[0].cron == "5 4 * * *"


def test_a_new_tool_version_makes_exactly_one_commit(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    _loop(target)
    assert target.run("install").exit_code == 0
    monkeypatch.setattr(ops, "__version__", "9.9.9")

    result = target.run("install", "--output", "json")

    assert result.exit_code == 0, result.output
    commits = target.gitlab.commits(OPS)
    assert len(commits) == 2
    assert "gitlab-eci-bootstrap 9.9.9" in commits[0].message
    report = json.loads(result.stdout)["schedule"]["ops"]
    assert report["files"]["updated"] == [".gitlab-ci.yml"]
    assert target.run("install").exit_code == 0
    assert len(target.gitlab.commits(OPS)) == 2


def test_install_works_where_pipeline_variables_are_not_allowed(target: Target) -> None:
    # GitLab.com creates projects with "minimum role to use pipeline variables: no one
    # allowed"; schedule variables then answer 403 even to an Owner.
    _loop(target)
    target.gitlab.set_pipeline_variables_role(None, "no_one_allowed")
    target.gitlab.add_project(OPS, {"README.md": "ops\n"})

    result = target.run("install")

    assert result.exit_code == 0, result.output
    [schedule] = _schedules(target)
    assert schedule.variables == {}
    assert target.gitlab.project(OPS).files["main"]["README.md"] == "ops\n", "not ours: kept"


@pytest.mark.parametrize("owner", ["reader", None], ids=["another-user", "owner-gone"])
def test_install_takes_over_a_schedule_it_does_not_own(target: Target, owner: str | None) -> None:
    _loop(target)
    target.gitlab.add_project(OPS, {"README.md": "ops\n"})
    target.gitlab.add_schedule(
        OPS,
        "gitlab-eci-bootstrap: rotate the runner token of mygroup in fake/gitlab-runner",
        cron="17 3 * * *",
        owner=owner,
        variables={"BOOTSTRAP_TASK": "rotate", "BOOTSTRAP_ROTATE_BEFORE": "1d"},
    )

    result = target.run("install")

    assert result.exit_code == 0, result.output
    [schedule] = _schedules(target)
    assert schedule.owner_id == target.gitlab.user("owner").id, "pipelines run as the owner"
    assert schedule.variables == {}, "stale variables would override the committed file"
    assert "Took over the rotation schedule" in result.stderr


def test_a_schedule_with_variables_it_may_not_remove_is_replaced(target: Target) -> None:
    _loop(target)
    target.gitlab.add_project(OPS, {"README.md": "ops\n"})
    old = target.gitlab.add_schedule(
        OPS,
        "gitlab-eci-bootstrap: rotate the runner token of mygroup in fake/gitlab-runner",
        cron="17 3 * * *",
        variables={"BOOTSTRAP_ROTATE_BEFORE": "1d"},
    )
    target.gitlab.set_pipeline_variables_role(OPS, "no_one_allowed")

    result = target.run("install")

    assert result.exit_code == 0, result.output
    [schedule] = _schedules(target)
    assert schedule.id != old.id
    assert schedule.variables == {}
    assert target.run("install").exit_code == 0
    assert [s.id for s in _schedules(target)] == [schedule.id]


def test_dry_run_shows_the_loop_and_writes_nothing(target: Target) -> None:
    _loop(target)
    result = target.run("install", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Ops project: mygroup/gitlab-eci-bootstrap: would create the project (private)" in (
        result.stdout
    )
    assert "Schedule: would create the rotation schedule" in result.stdout
    assert target.gitlab_writes() == []


def test_uninstall_removes_the_schedule(target: Target) -> None:
    _loop(target)
    assert target.run("install").exit_code == 0
    assert len(_schedules(target)) == 1

    result = target.run("uninstall", "--yes")

    assert result.exit_code == 0, result.output
    assert "deleted the rotation schedule" in result.stdout
    assert _schedules(target) == []
