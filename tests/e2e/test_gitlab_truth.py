"""What the fakes used to hide: each test fails on the tool as it was before GitLab's real
answers were modelled (issue 9).

GitLab facts behind them (``../shared/reference/GITLAB-FACTS.md``, ``tests/fakes/FIDELITY.md``):
``GET /runners/:id`` has no ``token_expires_at``; ``POST /runners/verify`` and the reset by
token heartbeat the runner; ``maintenance_note`` is shown only to who may update the runner;
the reset by id needs the Owner role; ancestors' runners are listed but may be unreadable;
``internal`` can be restricted; the Catalog flag must precede the tag.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.e2e.conftest import Target
from tests.fakes.fixtures import GROUP, OWNER_API_TOKEN
from tests.fakes.gitlab import MAINTAINER, OWNER, iso, now

DAY = 86400.0
MAINTAINER_TOKEN = "glpat-maintainer-token-012345"
BOT_TOKEN = "glpat-group-bot-token-0123456"
TEMPLATES = f"{GROUP}/ci-templates"


def _install(target: Target, *extra: str) -> None:
    result = target.run("install", *extra)
    assert result.exit_code == 0, result.output
    target.gitlab.clear_log()
    target.kube.clear_log()


def _maintainer(target: Target, scopes: tuple[str, ...] = ("read_api",)) -> None:
    target.gitlab.add_user("maint", MAINTAINER_TOKEN, scopes)
    target.gitlab.add_member(GROUP, "maint", MAINTAINER)
    target.token = MAINTAINER_TOKEN


def _status_json(target: Target) -> dict[str, object]:
    result = target.run("status", "--output", "json")
    return dict(json.loads(result.stdout))


# --- online means our pods contacted GitLab, not that the tool used the token ----------------


def test_a_no_op_install_does_not_make_a_dead_runner_look_online(target: Target) -> None:
    _install(target)
    [runner_id] = target.group_runners()
    # The pods stopped three hours ago (a node died): no process polls any more.
    target.gitlab.runner_processes = list
    target.gitlab.mark_runner_contacted(
        runner_id, at=now() - timedelta(hours=3), system_id=target.system_id()
    )

    install = target.run("install")

    assert install.exit_code == 0, install.output
    assert target.gitlab_writes() == []  # no POST /runners/verify: it would heartbeat
    assert f"runner #{runner_id} is offline" in install.stderr
    assert target.gitlab.runner_status(runner_id) == "offline"
    status = target.run("status")
    assert status.exit_code == 3, status.output
    assert f"runner #{runner_id} is offline" in status.stdout


@pytest.mark.parametrize("role", ["owner", "maintainer"])
def test_rotate_waits_for_the_pods_not_for_its_own_reset(target: Target, role: str) -> None:
    # The runner was online a moment ago; a Maintainer resets with the current token, and
    # GitLab records that call as a contact too. Neither may count as the new pod's.
    _install(target)
    if role == "maintainer":
        _maintainer(target, ("manage_runner", "read_api"))
    target.gitlab.runner_processes = list  # the new pod never gets to poll

    result = target.run("rotate", "--force", "--timeout", "4")

    assert result.exit_code == 5, result.output
    assert "timed out waiting for runner" in result.stderr


def test_rotate_is_online_once_the_new_pod_polls(target: Target) -> None:
    _install(target)
    _maintainer(target, ("manage_runner", "read_api"))

    result = target.run("rotate", "--force", "--output", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["online"] is True


# --- token expiry: GraphQL tokenExpiresAt, recorded expiry, rotation window ---------------


def test_status_warns_when_the_token_expires_within_the_rotation_window(target: Target) -> None:
    target.gitlab.set_token_expiry(3 * DAY)
    _install(target)

    result = target.run("status")

    assert result.exit_code == 0, result.output
    assert "token expires never" not in result.stdout
    assert "within rotation.rotate_before (7d)" in result.stderr


def test_status_and_install_see_a_token_reset_elsewhere(target: Target) -> None:
    target.gitlab.set_token_expiry(30 * DAY)
    _install(target)
    [runner_id] = target.group_runners()
    # Someone resets the token in the UI a second later: the Secret's token is dead.
    target.gitlab.set_token_expiry(30 * DAY + 60)
    target.gitlab.reset_runner_token(runner_id)

    status = target.run("status")

    assert status.exit_code == 3, status.output
    assert "the token was reset elsewhere" in status.stdout
    install = target.run("install")
    assert install.exit_code == 0, install.output
    assert "Reset the token" in install.stderr
    assert target.stored_token() == target.gitlab.runner(runner_id).token


def test_install_reports_the_expiry_after_updating_the_runner(target: Target) -> None:
    target.gitlab.set_token_expiry(30 * DAY)
    _install(target)
    (target.workdir / "bootstrap.toml").write_text('[gitlab]\ntags = ["eci", "big"]\n')

    result = target.run("install", "--output", "json")

    assert result.exit_code == 0, result.output
    runner = json.loads(result.stdout)["runner"]
    assert runner["updates"] == ["tag_list"]
    # PUT /runners/:id answers RunnerDetails, which has no expiry: the known one is kept.
    assert (
        runner["token_expires_at"]
        == target.kube.get_object("v1", "Secret", "gitlab-runner-config", "gitlab-runner")[
            "metadata"
        ]["annotations"]["gitlab-eci-bootstrap/token-expires-at"]
    )


def test_an_expired_token_is_reported_from_the_recorded_expiry(target: Target) -> None:
    target.gitlab.set_token_expiry(30 * DAY)
    _install(target)
    [runner_id] = target.group_runners()
    # Time passes: the token GitLab issued, and the Secret recorded, is past its expiry.
    target.gitlab.expire_runner_token(runner_id)
    expired = iso(target.gitlab.runner(runner_id).token_expires_at)
    target.kube_patch(
        "/api/v1/namespaces/gitlab-runner/secrets/gitlab-runner-config",
        {"metadata": {"annotations": {"gitlab-eci-bootstrap/token-expires-at": expired}}},
    )

    result = target.run("status")

    assert result.exit_code == 3, result.output
    assert f"is dead: the token expired at {expired}" in result.stdout
    assert "reset elsewhere" not in result.stdout


# --- roles: Maintainer, group access token bot, non-member of an ancestor group ---------------


def test_a_maintainers_status_reports_no_false_drift(target: Target) -> None:
    _install(target)
    _maintainer(target)

    result = target.run("status")

    assert result.exit_code == 0, result.output
    assert "maintenance_note" not in result.stdout
    assert "is not compared: GitLab shows it only to Owners" in result.stderr


def test_a_group_bot_finds_the_runner_without_the_secret(target: Target) -> None:
    _install(target)
    target.gitlab.add_user("group_1_bot_abc", BOT_TOKEN, ["read_api"], bot=True)
    target.gitlab.add_member(GROUP, "group_1_bot_abc", MAINTAINER)
    target.token = BOT_TOKEN
    target.kube_delete("/api/v1/namespaces/gitlab-runner/secrets/gitlab-runner-config")

    report = _status_json(target)

    runner = report["runner"]
    assert isinstance(runner, dict)
    assert runner["found_by"] == "marker"
    assert runner["id"] == target.group_runners()[0]
    assert (runner["system_id"], runner["status"]) == (target.system_id(), "online")


def test_install_skips_an_ancestors_runner_it_may_not_read(target: Target, tmp_path: Path) -> None:
    target.gitlab.add_group(f"{GROUP}/team")
    target.gitlab.add_user("lead", "glpat-team-lead-token-0123", ["api"])
    target.gitlab.add_member(f"{GROUP}/team", "lead", OWNER)
    target.gitlab.add_runner(group=GROUP, description="the parent group's own")
    args = ["install", "--group", f"{GROUP}/team", "--kubeconfig", str(target.kube.kubeconfig_path)]
    env = {"GITLAB_URL": target.gitlab_url, "GITLAB_TOKEN": "glpat-team-lead-token-0123"}

    result = run_cli([*args, "--skip-templates", "--skip-schedule"], env=env, cwd=tmp_path)

    target.outputs.append(result.output)
    assert result.exit_code == 0, result.output
    assert len(target.group_runners()) == 2  # its own, created; the parent's untouched


def test_rotate_by_a_maintainer_falls_back_to_the_current_token(target: Target) -> None:
    _install(target)
    old = target.stored_token()
    _maintainer(target, ("manage_runner", "read_api"))

    result = target.run("rotate", "--force")

    assert result.exit_code == 0, result.output
    assert "refused the reset of runner" in result.stderr
    assert "with the current token" in result.stdout
    assert target.stored_token() != old
    [runner_id] = target.group_runners()
    assert target.stored_token() == target.gitlab.runner(runner_id).token
    # The reset by token named our system id: no phantom "<legacy>" runner manager.
    assert target.gitlab.runner(runner_id).system_ids == [target.system_id()]


# --- publish: restricted visibility, the Catalog flag before the tag and repaired later -------


def test_publish_falls_back_to_private_where_internal_is_restricted(target: Target) -> None:
    group = target.gitlab.find_group(GROUP)
    assert group is not None
    group.visibility = "public"
    target.gitlab.projects_api.restricted_visibility_levels = {"internal"}
    target.token = OWNER_API_TOKEN

    result = target.run("templates publish")

    assert result.exit_code == 0, result.output
    assert target.gitlab.project(TEMPLATES).visibility == "private"
    assert "created the templates project private" in result.stderr


def test_the_catalog_flag_is_set_before_the_tag(target: Target) -> None:
    target.token = OWNER_API_TOKEN

    assert target.run("templates publish").exit_code == 0

    writes = [
        "catalog" if r.path == "/api/graphql" else r.path.rsplit("/", 1)[-1]
        for r in target.gitlab.writes()
    ]
    assert writes.index("catalog") < writes.index("tags")


def test_a_refused_catalog_flag_is_repaired_by_a_later_publish(target: Target) -> None:
    _maintainer(target, ("api",))
    first = target.run("templates publish")
    assert first.exit_code == 0, first.output
    assert "the next publish tries again" in first.stderr
    assert target.gitlab.catalog_resource(TEMPLATES) is False
    target.token = OWNER_API_TOKEN

    again = target.run("templates publish")

    assert again.exit_code == 0, again.output
    assert target.gitlab.catalog_resource(TEMPLATES) is True
