"""The ops project's rotation job, run as GitLab would run it, end to end.

After one ``install`` on empty fakes, the test checks the job out of the ops project (the
files install committed), builds the environment GitLab gives a scheduled job on the
protected default branch (predefined variables, the project's CI/CD variables, the job's
own ``variables:``) and the credentials of the job pod's ServiceAccount, the one the ops
runner entry of config.toml names, and runs the job's ``script:`` lines exactly, with
``sh``. The fake apiserver authorizes that ServiceAccount's requests by the RBAC objects
install applied. (The fake serves plain HTTP, which the kubernetes client's in-cluster
loader refuses; so the ServiceAccount's token reaches the job through a kubeconfig instead
of the pod's token file: the same token, the same authorization.)
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.conftest import CliResult
from tests.e2e.conftest import Target
from tests.fakes.fixtures import OWNER_API_TOKEN
from tests.fakes.gitlab import PersonalAccessToken
from tests.fakes.gitlab_projects import CiVariable

OPS = "mygroup/gitlab-eci-bootstrap"
JOB = "rotate-runner-token"
NAMESPACE = "gitlab-runner"
DAY = 86400


def _install(target: Target, expiry_days: float) -> dict[str, int]:
    target.token = OWNER_API_TOKEN
    target.publish = True
    target.gitlab.set_token_expiry(expiry_days * DAY)
    result = target.run("install")
    assert result.exit_code == 0, result.output
    assert "GITLAB_TOKEN" not in result.output.replace("/GITLAB_TOKEN (masked", ""), result.output
    return {r.runner_type: r.id for r in target.gitlab.runners.values()}


def _variable(target: Target, key: str) -> CiVariable:
    [variable] = [v for v in target.gitlab.project(OPS).variables if v.key == key]
    return variable


def _loop_token(target: Target) -> PersonalAccessToken:
    """The group access token the ops project's GITLAB_TOKEN holds."""
    value = _variable(target, "GITLAB_TOKEN").value
    return target.gitlab.tokens[value]


def _kubeconfig(target: Target, path: Path, token: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "in-cluster", "cluster": {"server": target.kube.url}}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "in-cluster", "context": {"cluster": "in-cluster", "user": "sa"}}],
        "current-context": "in-cluster",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), ""), value)


class Job:
    """The rotation job of the ops project, as its pipeline defines it."""

    def __init__(self, target: Target, workdir: Path) -> None:
        self.target = target
        files = target.gitlab.project(OPS).files["main"]
        self.checkout = workdir / "checkout"
        for path, content in files.items():
            dest = self.checkout / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(content)
        self.pipeline = yaml.safe_load(files[".gitlab-ci.yml"])
        self.spec: dict[str, Any] = self.pipeline[JOB]
        self.workdir = workdir

    def service_account(self) -> str:
        """The ServiceAccount of the ops runner entry's job pods (config.toml)."""
        _, ops = tomllib.loads(self.target.stored_config())["runners"]
        return str(ops["kubernetes"]["service_account"])

    def env(self, service_account: str) -> dict[str, str]:
        project = self.target.gitlab.project(OPS)
        predefined = {
            "CI": "true",
            "GITLAB_CI": "true",
            "CI_SERVER_URL": self.target.gitlab_url,
            "CI_PIPELINE_SOURCE": "schedule",
            "CI_PROJECT_PATH": OPS,
            "CI_PROJECT_DIR": str(self.checkout),
            "CI_DEFAULT_BRANCH": "main",
            "CI_COMMIT_REF_NAME": "main",
            "CI_COMMIT_REF_PROTECTED": "true",
            "CI_JOB_NAME": JOB,
        }
        # The default branch is protected: protected variables are given too.
        variables = {v.key: v.value for v in project.variables}
        env = {**predefined, **variables}
        for key, value in (self.spec.get("variables") or {}).items():
            env[key] = _expand(str(value), env)
        token = self.target.kube.service_account_token(NAMESPACE, service_account)
        kubeconfig = _kubeconfig(self.target, self.workdir / f"{service_account}.kubeconfig", token)
        venv = str(Path(sys.executable).parent)
        return {
            **env,
            "KUBECONFIG": str(kubeconfig),
            "HOME": str(self.workdir),
            "PATH": f"{venv}:/usr/bin:/bin",
            # No index here: the lock's versions are what this venv holds (scripts/test).
            "PIP_NO_INDEX": "1",
        }

    def runs_on_schedule(self) -> bool:
        return any(
            rule.get("if") == '$CI_PIPELINE_SOURCE == "schedule"' for rule in self.spec["rules"]
        )

    def run(self, service_account: str | None = None) -> CliResult:
        """The job's script lines, one ``sh -c`` each, stopping at the first failure."""
        env = self.env(service_account or self.service_account())
        out, err = [], []
        for line in self.spec["script"]:
            proc = subprocess.run(
                ["sh", "-c", line],
                cwd=self.checkout,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            out.append(proc.stdout)
            err.append(proc.stderr)
            if proc.returncode != 0:
                return CliResult(proc.returncode, "".join(out), "".join(err))
        result = CliResult(0, "".join(out), "".join(err))
        self.target.outputs.append(result.output)
        return result


def _tokens(target: Target) -> tuple[str, str]:
    group, ops = tomllib.loads(target.stored_config())["runners"]
    return str(group["token"]), str(ops["token"])


def test_the_scheduled_job_rotates_both_expiring_tokens_then_writes_nothing(
    target: Target, tmp_path: Path
) -> None:
    ids = _install(target, expiry_days=3)  # within the 7d window
    job = Job(target, tmp_path)
    assert job.runs_on_schedule()
    assert job.spec["tags"] == target.gitlab.runner(ids["project_type"]).tag_list
    assert target.gitlab.can_pick(ids["project_type"], OPS, protected_ref=True)
    assert job.service_account() == "gitlab-runner-rotator"
    old_group, old_ops = _tokens(target)
    target.gitlab.set_token_expiry(90 * DAY)  # what GitLab issues from now on

    result = job.run()

    assert result.exit_code == 0, result.output
    print(result.output)
    new_group, new_ops = _tokens(target)
    assert {new_group, new_ops}.isdisjoint({old_group, old_ops})
    assert target.gitlab.runner(ids["group_type"]).token == new_group
    assert target.gitlab.runner(ids["project_type"]).token == new_ops
    assert f"runner #{ids['group_type']}: reset the token by id" in result.output
    assert f"ops runner #{ids['project_type']}: reset the token by id" in result.output
    assert target.gitlab.runner_status(ids["group_type"]) == "online"
    assert target.gitlab.runner_status(ids["project_type"]) == "online"

    target.gitlab.clear_log()
    target.kube.clear_log()
    again = job.run()

    assert again.exit_code == 0, again.output
    print(again.output)
    assert "no rotation" in again.output
    assert target.gitlab_writes() == []
    assert target.kube_writes() == []
    assert _tokens(target) == (new_group, new_ops)
    # install agrees with what the job stored: both tokens and their annotations.
    converge = target.run("install")
    assert converge.exit_code == 0, converge.output
    assert target.kube_writes() == [], converge.output
    assert target.gitlab_writes() == []


def test_install_gives_the_loop_its_own_group_access_token(target: Target) -> None:
    _install(target, expiry_days=3)
    variable = _variable(target, "GITLAB_TOKEN")
    assert (variable.masked, variable.hidden, variable.protected) == (True, True, True)
    token = _loop_token(target)
    assert token.active
    assert token.scopes == ["api"]
    assert token.expires_at == date.today() + timedelta(days=90)
    assert target.gitlab.users[token.user_id].bot
    assert target.gitlab.access_tokens.tokens[token.id].access_level == 50  # Owner
    assert _variable(target, "BOOTSTRAP_LOOP_TOKEN_ID").value == str(token.id)
    assert "Loop token: group access token" in target.outputs[-1]
    assert token.token not in target.outputs[-1]

    target.gitlab.clear_log()
    again = target.run("install")
    assert again.exit_code == 0, again.output
    assert "is valid" in again.output
    assert target.gitlab_writes() == []

    # A token of the loop's name nobody holds (the loser of two concurrent installs) goes.
    group = target.gitlab.find_group("mygroup")
    assert group is not None
    stray = requests.post(
        f"{target.gitlab_url}/api/v4/groups/{group.id}/access_tokens",
        headers={"PRIVATE-TOKEN": OWNER_API_TOKEN},
        json={"name": token.name, "scopes": ["api"], "access_level": 50},
        timeout=10,
    ).json()
    assert target.run("install").exit_code == 0
    assert [t.id for t in target.gitlab.access_tokens.active("mygroup")] == [token.id]
    assert _loop_token(target).id == token.id
    assert stray["id"] != token.id


def test_the_job_renews_its_expiring_group_access_token_and_stores_it(
    target: Target, tmp_path: Path
) -> None:
    _install(target, expiry_days=30)  # the runner tokens are not due
    old = _loop_token(target)
    old.expires_at = date.today() + timedelta(days=3)  # within rotate_before (7d)
    warned = target.run("status")
    assert warned.exit_code == 0, warned.output
    assert "the rotation job's group access token expires on" in warned.stderr
    job = Job(target, tmp_path)

    result = job.run()

    assert result.exit_code == 0, result.output
    print(result.output)
    assert "loop token: renewed" in result.output
    new = _loop_token(target)
    assert new.id != old.id
    assert new.active
    assert not target.gitlab.tokens[old.token].active  # revoked at the rotation
    assert new.expires_at == date.today() + timedelta(days=90)
    assert _variable(target, "BOOTSTRAP_LOOP_TOKEN_ID").value == str(new.id)
    assert old.token not in result.output
    assert new.token not in result.output

    target.gitlab.clear_log()
    target.kube.clear_log()
    again = job.run()  # the next day's job, with the stored value: nothing is due
    assert again.exit_code == 0, again.output
    print(again.output)
    assert "loop token: skip" in again.output
    assert target.gitlab_writes() == []
    assert target.kube_writes() == []
    converge = target.run("install")
    assert converge.exit_code == 0, converge.output
    assert target.gitlab_writes() == []


def test_a_job_pod_of_the_group_runner_cannot_read_or_change_the_runner(
    target: Target, tmp_path: Path
) -> None:
    _install(target, expiry_days=3)
    job = Job(target, tmp_path)
    group_entry, _ = tomllib.loads(target.stored_config())["runners"]
    account = group_entry["kubernetes"].get("service_account", "default")
    before = _tokens(target)

    result = job.run(service_account=account)

    assert result.exit_code == 4, result.output
    assert "forbidden" in result.output.lower()
    assert _tokens(target) == before


def test_a_lost_renewal_answer_is_reported_and_repaired_by_install(
    target: Target, tmp_path: Path
) -> None:
    _install(target, expiry_days=30)
    old = _loop_token(target)
    group = target.gitlab.find_group("mygroup")
    assert group is not None
    # The job renewed its token, but the answer (the only copy of the new value) was lost
    # before it was stored: GitLab revoked the stored value at the rotation.
    lost = requests.post(
        f"{target.gitlab_url}/api/v4/groups/{group.id}/access_tokens/self/rotate",
        headers={"PRIVATE-TOKEN": old.token},
        timeout=10,
    )
    assert lost.status_code == 200
    orphan = target.gitlab.tokens[lost.json()["token"]]
    job = Job(target, tmp_path)

    locked_out = job.run()
    assert locked_out.exit_code == 3, locked_out.output
    status = target.run("status")
    assert status.exit_code == 3, status.output
    assert "the scheduled rotation is locked out" in status.output
    assert "run `bootstrap install`" in status.output

    repaired = target.run("install")

    assert repaired.exit_code == 0, repaired.output
    new = _loop_token(target)
    assert new.active
    assert new.id not in (old.id, orphan.id)
    assert not orphan.active  # the unknown successor is revoked, not left behind
    assert _variable(target, "BOOTSTRAP_LOOP_TOKEN_ID").value == str(new.id)
    assert job.run().exit_code == 0
    assert target.run("status").exit_code == 0


def test_uninstall_revokes_the_loop_token_and_deletes_its_variables(target: Target) -> None:
    _install(target, expiry_days=30)
    token = _loop_token(target)

    result = target.run("uninstall", "--yes")

    assert result.exit_code == 0, result.output
    assert f"revoked the loop's group access token (#{token.id})" in result.output
    assert not token.active
    assert target.gitlab.access_tokens.active("mygroup") == []
    keys = {v.key for v in target.gitlab.project(OPS).variables}
    assert not keys & {"GITLAB_TOKEN", "BOOTSTRAP_LOOP_TOKEN_ID"}


def test_without_group_access_tokens_install_says_so_and_stores_the_named_token(
    target: Target, tmp_path: Path
) -> None:
    target.gitlab.access_tokens.available = False  # GitLab.com Free, or disabled
    target.token = OWNER_API_TOKEN
    target.publish = True
    target.gitlab.set_token_expiry(3 * DAY)

    bare = target.run("install")

    assert bare.exit_code == 0, bare.output
    assert "GitLab refused to create a group access token" in bare.stderr
    assert "[rotation] token_env" in bare.stderr
    assert not [v for v in target.gitlab.project(OPS).variables if v.key == "GITLAB_TOKEN"]

    target.extra_env["LOOP_TOKEN"] = OWNER_API_TOKEN
    named = target.run("install", "--schedule-token-env", "LOOP_TOKEN")

    assert named.exit_code == 0, named.output
    variable = _variable(target, "GITLAB_TOKEN")
    assert variable.value == OWNER_API_TOKEN
    assert (variable.masked, variable.hidden, variable.protected) == (True, True, True)
    assert OWNER_API_TOKEN not in named.output
    target.gitlab.clear_log()
    target.extra_env["BOOTSTRAP_ROTATION__TOKEN_ENV"] = "LOOP_TOKEN"  # the setting, same token
    assert target.run("install").exit_code == 0
    assert target.gitlab_writes() == []
    target.gitlab.set_token_expiry(90 * DAY)
    assert Job(target, tmp_path).run().exit_code == 0


LOOP_PAT = "glpat-loop-given-token-0123456"


def _install_given(target: Target, expires_in: int) -> PersonalAccessToken:
    """Install where GitLab has no group access tokens, with a token of the owner's that
    expires in ``expires_in`` days given by --schedule-token-env; that token."""
    target.gitlab.access_tokens.available = False
    target.gitlab.set_token_expiry(30 * DAY)
    target.token = OWNER_API_TOKEN
    target.publish = True
    given = target.gitlab.add_token(
        "owner", LOOP_PAT, ["api"], name="loop", expires_at=date.today() + timedelta(expires_in)
    )
    target.extra_env["LOOP_TOKEN"] = LOOP_PAT
    result = target.run("install", "--schedule-token-env", "LOOP_TOKEN")
    assert result.exit_code == 0, result.output
    return given


def test_status_warns_before_a_given_token_expires_and_a_rerun_writes_nothing(
    target: Target,
) -> None:
    given = _install_given(target, expires_in=5)
    assert given.expires_at is not None
    expires = given.expires_at.isoformat()
    assert _variable(target, "BOOTSTRAP_LOOP_TOKEN_EXPIRES_AT").value == expires

    warned = target.run("status")

    assert warned.exit_code == 0, warned.output
    assert f"the rotation job's token (given to install) expires on {expires} (in 5d)" in (
        warned.stderr
    )
    assert "run `bootstrap install --schedule-token-env VAR`" in warned.stderr
    target.gitlab.clear_log()
    rerun = target.run("install", "--schedule-token-env", "LOOP_TOKEN")
    assert rerun.exit_code == 0, rerun.output
    assert target.gitlab_writes() == [], rerun.output
    given.expires_at = date.today() + timedelta(days=60)  # extended in GitLab's settings
    assert target.run("install", "--schedule-token-env", "LOOP_TOKEN").exit_code == 0
    assert _variable(target, "BOOTSTRAP_LOOP_TOKEN_EXPIRES_AT").value == (
        given.expires_at.isoformat()
    )
    assert target.run("status").exit_code == 0
    assert "given to install" not in target.run("status").stderr

    assert target.run("uninstall", "--yes").exit_code == 0
    keys = {v.key for v in target.gitlab.project(OPS).variables}
    assert not keys & {"GITLAB_TOKEN", "BOOTSTRAP_LOOP_TOKEN_ID", "BOOTSTRAP_LOOP_TOKEN_EXPIRES_AT"}


def test_uninstall_deletes_the_recorded_expiry_when_the_other_variables_are_gone(
    target: Target,
) -> None:
    # An uninstall interrupted after deleting GITLAB_TOKEN (or someone deleted it by hand):
    # the next one still finds BOOTSTRAP_LOOP_TOKEN_EXPIRES_AT, and deletes it.
    _install_given(target, expires_in=30)
    with target.gitlab.lock:
        ops = target.gitlab.projects_api.get(OPS)
        ops.variables = [v for v in ops.variables if v.key == "BOOTSTRAP_LOOP_TOKEN_EXPIRES_AT"]

    plan = target.run("uninstall", "--dry-run")
    result = target.run("uninstall", "--yes")

    assert plan.exit_code == 0, plan.output
    assert f"delete BOOTSTRAP_LOOP_TOKEN_EXPIRES_AT of {OPS}" in plan.stdout
    assert result.exit_code == 0, result.output
    assert f"deleted BOOTSTRAP_LOOP_TOKEN_EXPIRES_AT of {OPS}" in result.stdout
    assert [v.key for v in target.gitlab.project(OPS).variables if "LOOP" in v.key] == []


def test_status_says_an_expired_given_token_locks_the_loop_out(target: Target) -> None:
    given = _install_given(target, expires_in=5)
    # Six days on (the CLI's clock cannot move): the token expired yesterday.
    given.expires_at = date.today() - timedelta(days=1)
    with target.gitlab.lock:
        [recorded] = [
            v
            for v in target.gitlab.projects_api.get(OPS).variables
            if v.key == "BOOTSTRAP_LOOP_TOKEN_EXPIRES_AT"
        ]
        recorded.value = given.expires_at.isoformat()

    status = target.run("status")

    assert status.exit_code == 3, status.output
    assert f"(given to install) expired on {given.expires_at.isoformat()}" in status.output
    assert "the scheduled rotation is locked out" in status.output
    assert "create a new token and run `bootstrap install --schedule-token-env VAR`" in (
        status.output
    )
    assert LOOP_PAT not in status.output


def test_install_refuses_a_given_token_gitlab_refuses_before_any_write(target: Target) -> None:
    target.gitlab.access_tokens.available = False
    target.token = OWNER_API_TOKEN
    target.publish = True
    target.gitlab.add_token("owner", LOOP_PAT, ["api"], name="loop")
    target.gitlab.revoke_token(LOOP_PAT)
    target.extra_env["LOOP_TOKEN"] = LOOP_PAT
    assert target.run("install").exit_code == 0  # the rest is in place
    target.gitlab.clear_log()

    result = target.run("install", "--schedule-token-env", "LOOP_TOKEN")

    assert result.exit_code == 3, result.output
    assert "GitLab refuses the token in LOOP_TOKEN (401" in result.stderr
    assert [r.path for r in target.gitlab.writes() if "/variables" in r.path] == []
    assert LOOP_PAT not in result.output


def test_uninstall_deletes_the_ops_project_only_when_asked(target: Target) -> None:
    _install(target, expiry_days=30)
    assert target.run("uninstall", "--yes").exit_code == 0
    assert target.gitlab.projects_api.find(OPS) is not None  # kept by default
    assert target.run("install").exit_code == 0

    result = target.run("uninstall", "--yes", "--delete-ops-project")

    assert result.exit_code == 0, result.output
    assert f"deleted the ops project {OPS}" in result.output
    assert target.gitlab.projects_api.find(OPS) is None
    assert target.gitlab.access_tokens.active("mygroup") == []


def _install_then_drop_the_token_variable(target: Target) -> PersonalAccessToken:
    """Install, then delete GITLAB_TOKEN as someone in the web UI would; the loop's token."""
    _install(target, expiry_days=30)
    token = _loop_token(target)
    with target.gitlab.lock:
        project = target.gitlab.projects_api.get(OPS)
        project.variables = [v for v in project.variables if v.key != "GITLAB_TOKEN"]
    return token


def test_install_replaces_a_loop_token_variable_that_is_not_hidden(target: Target) -> None:
    # As an older version (or a person) left it: the same token, masked, but not hidden nor
    # protected. GitLab's PUT cannot hide it (lib/api/ci/variables.rb).
    old = _install_then_drop_the_token_variable(target)
    target.gitlab.add_variable(OPS, "GITLAB_TOKEN", old.token, masked=True)

    warned = target.run("status")
    assert warned.exit_code == 0, warned.output
    assert f"{OPS}/GITLAB_TOKEN is not hidden and protected" in warned.stderr
    assert "run `bootstrap install`: it replaces it" in warned.stderr
    plan = target.run("install", "--dry-run")
    assert "would replace the loop token" in plan.output
    assert "(GITLAB_TOKEN is not hidden and protected)" in plan.output

    result = target.run("install")

    assert result.exit_code == 0, result.output
    variable = _variable(target, "GITLAB_TOKEN")
    assert (variable.masked, variable.hidden, variable.protected) == (True, True, True)
    new = _loop_token(target)
    assert new.active
    assert new.id != old.id
    assert not old.active  # its value was readable: revoked, not kept
    assert _variable(target, "BOOTSTRAP_LOOP_TOKEN_ID").value == str(new.id)
    assert new.token not in result.output
    assert old.token not in result.output
    target.gitlab.clear_log()
    assert target.run("install").exit_code == 0
    assert target.gitlab_writes() == []
    assert "is not hidden" not in target.run("status").output


def test_a_crash_between_deleting_and_creating_the_variable_is_reported_and_repaired(
    target: Target,
) -> None:
    old = _install_then_drop_the_token_variable(target)
    target.gitlab.add_variable(OPS, "GITLAB_TOKEN", old.token, masked=True, protected=True)
    projects = f"/projects/{target.gitlab.project(OPS).id}/variables$"
    target.gitlab.inject("500", match=("POST", projects))  # the create, after the delete

    crashed = target.run("install")

    assert crashed.exit_code == 3, crashed.output
    assert "GITLAB_TOKEN" not in {v.key for v in target.gitlab.project(OPS).variables}
    status = target.run("status")
    assert status.exit_code == 3, status.output
    assert f"{OPS} has no CI/CD variable GITLAB_TOKEN" in status.output
    assert "run `bootstrap install`" in status.output

    repaired = target.run("install")

    assert repaired.exit_code == 0, repaired.output
    new = _loop_token(target)
    assert _variable(target, "GITLAB_TOKEN").hidden
    assert _variable(target, "BOOTSTRAP_LOOP_TOKEN_ID").value == str(new.id)
    # The exposed token and the one the crash left nobody holding are revoked.
    assert [t.id for t in target.gitlab.access_tokens.active("mygroup")] == [new.id]
    assert target.run("status").exit_code == 0


def test_a_variable_deleted_by_hand_is_restored_and_a_failed_id_write_heals(
    target: Target,
) -> None:
    old = _install_then_drop_the_token_variable(target)
    # The id's write fails on every attempt (an idempotent PUT is retried).
    for _ in range(3):  # each fault fires on the next matching request after the last one's
        target.gitlab.inject("500", match=("PUT", "/variables/BOOTSTRAP_LOOP_TOKEN_ID$"))

    failed = target.run("install")

    assert failed.exit_code == 3, failed.output
    repaired = target.run("install")
    assert repaired.exit_code == 0, repaired.output
    # The stored value is the token the id names, and it is the only active one: a new
    # value under the old (still active) id would have been kept, and itself revoked.
    new = _loop_token(target)
    assert new.active
    assert _variable(target, "BOOTSTRAP_LOOP_TOKEN_ID").value == str(new.id)
    assert [t.id for t in target.gitlab.access_tokens.active("mygroup")] == [new.id]
    assert not old.active
    assert target.run("status").exit_code == 0


def test_the_job_warns_before_a_persons_stored_token_expires(
    target: Target, tmp_path: Path
) -> None:
    """``lib/api/resource_access_tokens/self_rotation.rb``: ``not_allowed!`` (405) unless the
    token is a personal access token of a project bot. A person's token cannot renew itself
    there: the job warns, changes nothing, and succeeds."""
    target.gitlab.access_tokens.available = False
    target.gitlab.set_token_expiry(30 * DAY)
    target.token = OWNER_API_TOKEN
    target.publish = True
    target.extra_env["LOOP_TOKEN"] = OWNER_API_TOKEN
    assert target.run("install", "--schedule-token-env", "LOOP_TOKEN").exit_code == 0
    person = target.gitlab.tokens[OWNER_API_TOKEN]
    person.expires_at = date.today() + timedelta(days=3)  # within rotate_before (7d)
    target.gitlab.clear_log()

    result = Job(target, tmp_path).run()

    assert result.exit_code == 0, result.output
    print(result.output)
    [rotate] = target.gitlab.requests("POST", f"/api/v4/groups/{_group(target)}/access_tokens")
    assert rotate.path.endswith("/self/rotate")
    assert rotate.status == 405
    expires = person.expires_at.isoformat()
    warning = (
        f"GITLAB_TOKEN of {OPS} is not a group access token and expires on {expires}: "
        "replace it (rerun `bootstrap install`)"
    )
    assert warning in result.stderr
    assert "loop token: not a group access token" in result.stdout
    assert person.active
    assert _variable(target, "GITLAB_TOKEN").value == OWNER_API_TOKEN
    assert [r.path for r in target.gitlab.writes() if "/variables" in r.path] == []
    assert OWNER_API_TOKEN not in result.output


def _group(target: Target) -> int:
    group = target.gitlab.find_group("mygroup")
    assert group is not None
    return group.id
