"""`bootstrap uninstall` end to end: what goes, what stays, in which order, and when it refuses."""

from __future__ import annotations

import json
import threading
import time

import pytest

from bootstrap.kube import Kube
from bootstrap.lock import Lock
from bootstrap.schedule import description
from bootstrap.workflow import runner_attributes
from tests.conftest import make_settings
from tests.e2e.conftest import Target
from tests.fakes.fixtures import GROUP, OWNER_API_TOKEN, READER_TOKEN

OPS = f"{GROUP}/gitlab-eci-bootstrap"

LEASES = "/apis/coordination.k8s.io/v1/namespaces/gitlab-runner/leases"
NAS = '[cache]\ntype = "nas"\nserver = "nas.example.com"\n'
CACHE = {
    "PersistentVolume/gitlab-runner-cache-gitlab-runner",
    "PersistentVolumeClaim/gitlab-runner-cache-pvc",
}


def _ours(target: Target) -> set[str]:
    """Every object labelled as ours for the namespace (the deployment controller's aside)."""
    return {
        f"{o['kind']}/{o['metadata']['name']}"
        for o in target.kube.objects()
        if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by")
        == "gitlab-eci-bootstrap"
        and o["kind"] not in ("Pod", "ReplicaSet")
        and not o["metadata"].get("deletionTimestamp")
    }


def _install(target: Target, config: str = NAS) -> set[str]:
    (target.workdir / "bootstrap.toml").write_text(config)
    result = target.run("install")
    assert result.exit_code == 0, result.output
    assert len(target.group_runners()) == 1
    target.kube.clear_log()
    target.gitlab.clear_log()
    return _ours(target)


def test_removes_the_runner_and_every_object_but_keeps_the_cache(target: Target) -> None:
    before = _install(target)
    assert before >= CACHE

    result = target.run("uninstall", "--yes")

    assert result.exit_code == 0, result.output
    assert target.group_runners() == []
    assert _ours(target) == CACHE | {"Namespace/gitlab-runner"}
    assert target.kube.objects("Pod", "gitlab-runner") == []  # collected with the Deployment
    assert "keep: the cache (--purge-cache)" in result.stdout
    assert "keep: as helm uninstall does (--delete-namespace)" in result.stdout
    assert "Done: deleted runner #1 and" in result.stdout


def test_the_deployment_goes_before_the_runner_and_the_config_secret_last(
    target: Target,
) -> None:
    _install(target)

    assert target.run("uninstall", "--yes").exit_code == 0

    deletes = [r for r in target.kube.writes() if r.method == "DELETE"]
    # The lock's Lease is taken first and released (deleted) after everything else.
    assert target.kube.writes()[0].path == LEASES
    assert deletes[-1].path == f"{LEASES}/gitlab-eci-bootstrap"
    kube_deletes = deletes[:-1]
    gitlab_deletes = [r for r in target.gitlab.writes() if r.method == "DELETE"]
    assert kube_deletes[0].path.endswith("/deployments/gitlab-runner")
    assert kube_deletes[-1].path.endswith("/secrets/gitlab-runner-config")
    assert len(gitlab_deletes) == 1
    assert kube_deletes[0].timestamp < gitlab_deletes[0].timestamp < kube_deletes[1].timestamp


def test_purge_cache_deletes_the_volume_and_its_claim(target: Target) -> None:
    _install(target)

    result = target.run("uninstall", "--yes", "--purge-cache")

    assert result.exit_code == 0, result.output
    assert _ours(target) == {"Namespace/gitlab-runner"}
    assert target.group_runners() == []


def test_a_second_uninstall_succeeds_and_says_nothing_is_left(target: Target) -> None:
    _install(target)
    assert target.run("uninstall", "--yes").exit_code == 0
    target.kube.clear_log()
    target.gitlab.clear_log()

    result = target.run("uninstall", "--yes", "--output", "json")

    assert result.exit_code == 0, result.output
    assert target.kube_writes() == []
    assert target.gitlab.writes() == []
    report = json.loads(result.stdout)
    assert report["nothing_left"] is True
    assert report["runner"]["action"] == "none"
    assert {f"{o['kind']}/{o['name']}" for o in report["objects"]} == CACHE | {
        "Namespace/gitlab-runner"
    }
    text = target.run("uninstall", "--yes")
    assert text.exit_code == 0
    assert "Nothing left to uninstall" in text.stdout


def test_refuses_without_yes_when_stdin_is_not_a_terminal(target: Target) -> None:
    before = _install(target)

    result = target.run("uninstall")

    assert result.exit_code == 2, result.output
    assert "--yes" in result.stderr
    assert target.gitlab.requests() == []  # refused before any network call
    assert target.kube.requests() == []
    assert _ours(target) == before
    assert len(target.group_runners()) == 1


def test_dry_run_deletes_nothing(target: Target) -> None:
    before = _install(target)

    result = target.run("uninstall", "--dry-run")

    assert result.exit_code == 0, result.output
    assert target.kube_writes() == []
    assert target.gitlab.writes() == []
    assert _ours(target) == before
    assert len(target.group_runners()) == 1
    assert "- Deployment/gitlab-runner" in result.stdout
    assert "GitLab: delete runner #1" in result.stdout
    assert "Dry run: nothing was changed." in result.stdout
    # The deletes were checked by the API server (dryRun=All), not only listed.
    dry = [r for r in target.kube.requests("DELETE") if r.query.get("dryRun") == "All"]
    assert len(dry) == len(before - CACHE - {"Namespace/gitlab-runner"})


@pytest.mark.parametrize(("answer", "deleted"), [("n\n", False), ("y\n", True)])
def test_asks_on_a_terminal(
    target: Target, monkeypatch: pytest.MonkeyPatch, answer: str, deleted: bool
) -> None:
    _install(target)
    monkeypatch.setattr("bootstrap.cli._stdin_is_terminal", lambda: True)

    result = target.run("uninstall", input=answer)

    assert result.exit_code == 0, result.output
    assert "Delete them?" in result.stderr
    assert "- Deployment/gitlab-runner" in result.stderr  # the plan, before the question
    assert (target.group_runners() == []) is deleted
    if not deleted:
        assert target.kube_writes() == []
        assert "Cancelled: nothing was changed." in result.stdout


def test_delete_namespace_removes_the_namespace_install_created(target: Target) -> None:
    _install(target)

    result = target.run("uninstall", "--yes", "--purge-cache", "--delete-namespace")

    assert result.exit_code == 0, result.output
    assert _ours(target) == set()
    namespaces = [
        o for o in target.kube.objects("Namespace") if o["metadata"]["name"] == "gitlab-runner"
    ]
    assert all(o["metadata"].get("deletionTimestamp") for o in namespaces)


def test_delete_namespace_keeps_a_namespace_made_by_someone_else(target: Target) -> None:
    target.kube.add_object(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gitlab-runner"}},
        manager="kubectl-create",
    )
    _install(target, "")

    result = target.run("uninstall", "--yes", "--delete-namespace")

    assert result.exit_code == 0, result.output
    assert "not created by bootstrap (also written by kubectl-create)" in result.stdout
    assert _ours(target) == {"Namespace/gitlab-runner"}


def test_delete_namespace_without_purge_cache_is_refused(target: Target) -> None:
    before = _install(target)

    result = target.run("uninstall", "--yes", "--delete-namespace")

    assert result.exit_code == 2, result.output
    assert "--purge-cache" in result.stderr
    assert target.kube_writes() == []
    assert target.gitlab.writes() == []
    assert _ours(target) == before


def test_a_refused_delete_stops_before_anything_is_deleted(target: Target) -> None:
    before = _install(target)
    target.kube.deny("delete", "roles", group="rbac.authorization.k8s.io")

    result = target.run("uninstall", "--yes")

    assert result.exit_code == 4, result.output
    assert "may not: delete Role" in result.stderr
    assert target.kube_writes() == []
    assert target.gitlab.writes() == []
    assert _ours(target) == before


def test_install_works_again_after_uninstall(target: Target) -> None:
    _install(target)
    assert target.run("uninstall", "--yes").exit_code == 0

    result = target.run("install")

    assert result.exit_code == 0, result.output
    assert len(target.group_runners()) == 1
    assert target.run("status").exit_code == 0


def test_a_token_without_manage_runner_is_refused_before_anything_is_deleted(
    target: Target,
) -> None:
    before = _install(target)
    target.token = READER_TOKEN

    result = target.run("uninstall", "--yes")

    assert result.exit_code == 3, result.output
    assert "manage_runner" in result.stderr
    assert target.kube_writes() == []
    assert _ours(target) == before
    assert len(target.group_runners()) == 1


def _seed_marked_runner(target: Target) -> int:
    """A second runner with this installation's marker (what two racing creates left)."""
    settings = make_settings(gitlab={"group": GROUP}, kubernetes={"cluster_name": "fake"})
    return target.gitlab.add_runner(group=GROUP, **runner_attributes(settings)).id


def test_every_runner_with_the_marker_goes_in_one_run(target: Target) -> None:
    _install(target)
    [deployed] = target.group_runners()
    duplicate = _seed_marked_runner(target)

    plan = target.run("uninstall", "--dry-run")
    result = target.run("uninstall", "--yes")

    assert f"GitLab: delete runner #{duplicate} " in plan.stdout
    assert f"GitLab: delete runner #{deployed} " in plan.stdout
    assert result.exit_code == 0, result.output
    assert target.group_runners() == []
    assert f"Done: deleted runners #{deployed}, #{duplicate} and" in result.stdout
    assert "Nothing left to uninstall" in target.run("uninstall", "--yes").stdout


def test_leftovers_in_gitlab_alone_are_deleted_only_once_confirmed(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run that stopped after the cluster and the runner were gone left the schedule.
    target.token, target.publish = OWNER_API_TOKEN, True
    assert target.run("install").exit_code == 0
    assert target.run("uninstall", "--yes").exit_code == 0
    settings = make_settings(gitlab={"group": GROUP}, kubernetes={"cluster_name": "fake"})
    target.gitlab.projects_api.add_schedule(OPS, description(settings))
    monkeypatch.setattr("bootstrap.cli._stdin_is_terminal", lambda: True)
    target.gitlab.clear_log()

    declined = target.run("uninstall", input="n\n")

    assert declined.exit_code == 0, declined.output
    assert "would delete the rotation schedule" in declined.stderr  # the plan, asked about
    assert "Delete them?" in declined.stderr
    assert "Cancelled: nothing was changed." in declined.stdout
    assert target.gitlab.writes() == []
    assert len(target.gitlab.project(OPS).schedules) == 1
    accepted = target.run("uninstall", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert target.gitlab.project(OPS).schedules == {}


def test_uninstall_waits_for_the_lock_and_deletes_nothing_while_another_run_holds_it(
    target: Target,
) -> None:
    before = _install(target)
    other = Lock(Kube(kubeconfig=str(target.kube.kubeconfig_path)), "gitlab-runner", me="busy")
    assert other.try_acquire() is None

    result = target.run("uninstall", "--yes", "--timeout", "3")
    other.release()

    assert result.exit_code == 5, result.output
    assert "namespace gitlab-runner is locked by busy" in result.stderr
    assert target.gitlab.writes() == []
    assert _ours(target) == before
    assert len(target.group_runners()) == 1


def test_a_runner_created_while_uninstall_waited_for_the_lock_goes_too(target: Target) -> None:
    # Another install made a runner (and never stored it) between our plan and our lock:
    # the plan made again under the lock deletes it as well.
    _install(target)
    fault = target.kube.inject("delay", match=("POST", f"{LEASES}$"), seconds=1)
    seeded: list[int] = []

    def seed() -> None:
        for _ in range(3000):
            if fault.fired:
                seeded.append(_seed_marked_runner(target))
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=seed, daemon=True)
    watcher.start()
    result = target.run("uninstall", "--yes")
    watcher.join()

    assert result.exit_code == 0, result.output
    assert seeded, "uninstall took no lock"
    assert target.group_runners() == []
