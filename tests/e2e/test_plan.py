"""The plan install prints: field changes old -> new in both systems, the same words in the
dry run and the real run, creates' content on request, and no secret anywhere."""

from __future__ import annotations

import base64
import json
import re

from tests.e2e.conftest import Target
from tests.fakes.fixtures import OWNER_API_TOKEN


def _installed(target: Target, toml: str) -> None:
    assert target.run("install").exit_code == 0
    (target.workdir / "bootstrap.toml").write_text(toml)
    target.kube.clear_log()
    target.gitlab.clear_log()


def _plan_block(text: str) -> str:
    """From the first ``GitLab:`` line to the ``Plan:`` line."""
    match = re.search(r"^GitLab: .*?^Plan: [^\n]*$", text, re.S | re.M)
    assert match, text
    return match.group(0)


def test_a_changed_concurrent_is_shown_as_one_field_old_to_new(target: Target) -> None:
    _installed(target, "[runner]\nconcurrent = 20\n")

    result = target.run("install", "--dry-run")

    assert result.exit_code == 0, result.output
    assert target.kube_writes() == []
    assert target.gitlab_writes() == []
    out = result.stdout
    assert "~ Secret/gitlab-runner-config" in out
    assert '~ data["config.toml"]:' in out
    assert "~ concurrent: 10 -> 20" in out
    assert "sha256" not in out.split("~ Secret/")[1].split("~ Deployment/")[0]
    assert "Plan: 0 to create, 2 to update, 9 unchanged (GitLab: 1 unchanged; Kubernetes: " in out


def test_runner_attributes_show_old_and_new_values_and_count_in_the_plan(target: Target) -> None:
    _installed(target, '[gitlab]\ntags = ["eci", "big"]\npaused = true\n')

    result = target.run("install", "--dry-run")

    assert result.exit_code == 0, result.output
    assert "GitLab: update runner #1:" in result.stdout
    assert '~ tag_list: ["eci"] -> ["big", "eci"]' in result.stdout
    assert "~ paused: false -> true" in result.stdout
    assert "(GitLab: 1 to update; Kubernetes: " in result.stdout
    report = json.loads(target.run("install", "--dry-run", "--output", "json").stdout)
    assert report["runner"]["changes"]["paused"] == {"old": False, "new": True}
    assert report["summary_by_system"]["gitlab"] == {"create": 0, "update": 1, "unchanged": 0}


def test_creates_show_their_content_only_with_diff(target: Target) -> None:
    plain = target.run("install", "--dry-run")
    full = target.run("install", "--dry-run", "--diff")

    assert plain.exit_code == 0, plain.output
    assert full.exit_code == 0, full.output
    assert "+ concurrent: 10" not in plain.stdout
    assert "    + concurrent: 10" in full.stdout  # config.toml, field by field
    assert "+ runners[0].token: (sensitive)" in full.stdout
    assert '+ tag_list: ["eci"]' in full.stdout  # the runner's attributes in GitLab
    assert "+ spec.replicas: 1" in full.stdout


def test_the_real_run_prints_the_dry_runs_plan_before_it_acts(target: Target) -> None:
    _installed(target, "[runner]\nconcurrent = 20\n")
    dry = target.run("install", "--dry-run")

    real = target.run("install")

    assert real.exit_code == 0, real.output
    assert _plan_block(dry.stdout) == _plan_block(real.stderr)
    assert real.stderr.index("~ concurrent: 10 -> 20") < real.stderr.index(
        "Updated Secret/gitlab-runner-config"
    )


def test_no_secret_value_in_any_plan_even_base64_or_inside_the_config_blob(
    target: Target,
) -> None:
    _installed(target, "[runner]\nconcurrent = 20\n")
    secret = target.kube.get_object("v1", "Secret", "gitlab-runner-config", "gitlab-runner")
    assert secret is not None
    blob = secret["data"]["config.toml"]  # base64 of the whole config.toml, token inside
    token = target.stored_token()

    texts = [
        target.run("install", "--dry-run", "--diff").output,
        target.run("install", "--dry-run", "--output", "json").output,
        target.run("install").output,
    ]

    for text in texts:
        assert token not in text
        assert base64.b64encode(token.encode()).decode() not in text
        assert blob[:24] not in text
        assert base64.b64decode(blob).decode()[:200] not in text
        assert "concurrent" in text  # the diff is there, without the secrets


def test_changed_templates_under_a_released_tag_are_a_plan_line_with_the_fix(
    target: Target,
) -> None:
    target.token = OWNER_API_TOKEN
    target.publish = True
    assert target.run("install").exit_code == 0
    (target.workdir / "bootstrap.toml").write_text('[gitlab]\ntags = ["eci", "big"]\n')
    target.gitlab.clear_log()

    result = target.run("install", "--dry-run")

    assert result.exit_code == 0, result.output
    assert "Templates: mygroup/ci-templates: refused: the templates changed, but v1.0.0" in (
        result.stdout
    )
    assert 'fix: publish a new version: set [templates] version = "1.0.1"' in result.stdout
    assert "BOOTSTRAP_TEMPLATES__VERSION=1.0.1" in result.stdout
    assert "--version" not in result.output  # install has no such flag
    assert "~ tag_list" in result.stdout  # the rest of the plan is there
    assert target.gitlab_writes() == []
    # The fix it names works.
    target.extra_env["BOOTSTRAP_TEMPLATES__VERSION"] = "1.0.1"
    fixed = target.run("install", "--dry-run")
    assert "would tag v1.0.1" in fixed.stdout, fixed.output


def test_after_install_a_final_block_says_how_to_use_the_runner(target: Target) -> None:
    target.token = OWNER_API_TOKEN
    target.publish = True

    result = target.run("install")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"Runner #1 (online): {target.gitlab_url}/groups/mygroup/-/runners/1" in out
    assert "  tags: [eci]" in out
    assert "    - project: mygroup/ci-templates" in out
    assert "bootstrap status --group mygroup" in out
    # The summary does not repeat the steps, and the rollout is said once, before Done.
    assert "+ Deployment/gitlab-runner" not in out
    assert result.output.count("successfully rolled out") == 1
    assert "successfully rolled out" not in out.split("Done:")[1]


def test_a_real_install_refuses_changed_released_templates_before_any_write(
    target: Target,
) -> None:
    target.token = OWNER_API_TOKEN
    target.publish = True
    assert target.run("install").exit_code == 0
    (target.workdir / "bootstrap.toml").write_text('[gitlab]\ntags = ["eci", "big"]\n')
    target.kube.clear_log()
    target.gitlab.clear_log()

    result = target.run("install")

    assert result.exit_code == 2, result.output
    assert "v1.0.0 is already released" in result.stderr
    assert "nothing was changed" in result.stderr
    assert 'hint: publish a new version: set [templates] version = "1.0.1"' in result.stderr
    assert target.kube_writes() == []
    assert target.gitlab_writes() == []  # the runner's tags were not updated either


def _first_write_line(stderr: str) -> int:
    """Where the real run's first step line (``Created …``, ``Committed …``) starts."""
    match = re.search(r"^(Created|Committed|Updated|Stored|Tagged) ", stderr, re.M)
    assert match, stderr
    return match.start()


def test_a_real_runs_plan_lists_every_write_before_the_first_one(target: Target) -> None:
    target.token = OWNER_API_TOKEN
    target.publish = True
    dry = target.run("install", "--dry-run")
    dry_json = json.loads(target.run("install", "--dry-run", "--output", "json").stdout)

    real = target.run("install")

    assert real.exit_code == 0, real.output
    plan = _plan_block(real.stderr)
    # The same plan as the dry run's, word for word: the templates (project, commit, tag),
    # the ops project, the schedule and the loop token included, the namespace as a create.
    assert plan == _plan_block(dry.stdout)
    assert "Templates: mygroup/ci-templates: would create the project, would commit" in plan
    assert "Ops project: mygroup/gitlab-eci-bootstrap: would create the project" in plan
    assert "Schedule: would create the rotation schedule" in plan
    assert "Loop token: would create a group access token" in plan
    assert "+ Namespace/gitlab-runner" in plan
    # Shown before anything is written (the namespace, the ops project).
    assert real.stderr.index(plan) < _first_write_line(real.stderr)
    # Its totals are the dry run's JSON totals, and what the run then did.
    gitlab = dry_json["summary_by_system"]["gitlab"]
    assert f"(GitLab: {gitlab['create']} to create; Kubernetes: 10 to create)" in plan
    assert f"Done: 16 created, 0 updated, 0 unchanged (GitLab: {gitlab['create']} created;" in (
        real.stdout
    )


def test_a_plan_names_the_catalog_mark_it_would_make(target: Target) -> None:
    target.token = OWNER_API_TOKEN
    target.publish = True
    assert target.run("install").exit_code == 0
    with target.gitlab.lock:  # someone turned the Catalog resource off
        target.gitlab.projects_api.get("mygroup/ci-templates").catalog_resource = False

    dry = target.run("install", "--dry-run")
    real = target.run("install")

    assert dry.exit_code == 0, dry.output
    assert (
        "Templates: mygroup/ci-templates: no file changed, would mark it a CI/CD Catalog "
        "resource" in dry.stdout
    )
    assert "(GitLab: 1 to update, 5 unchanged;" in dry.stdout
    assert _plan_block(real.stderr) == _plan_block(dry.stdout)
    assert "Marked mygroup/ci-templates as a CI/CD Catalog resource" in real.stderr
