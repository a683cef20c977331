"""`bootstrap doctor` end to end: every check shown, each failure with its fix and exit code."""

from __future__ import annotations

import json

from tests.e2e.conftest import Target
from tests.fakes.fixtures import OWNER_API_TOKEN, READER_TOKEN


def _checks(stdout: str) -> dict[str, dict[str, object]]:
    report = json.loads(stdout)
    return {check["name"]: check for check in report["checks"]}


def _assert_wrote_nothing(target: Target) -> None:
    assert [f"{r.method} {r.path}" for r in target.gitlab.writes()] == []
    assert target.kube_writes() == []  # access reviews are reads


def test_all_green_on_a_fresh_cluster(target: Target) -> None:
    result = target.run("doctor")

    assert result.exit_code == 0, result.output
    assert "✗" not in result.stdout
    assert "✓ GitLab " in result.stdout
    assert "GitLab 18.6.0" in result.stdout
    assert "Kubernetes v1.37.0-fake" in result.stdout
    assert "owner is Owner of mygroup" in result.stdout
    assert "gitlab-runner does not exist yet; install creates it" in result.stdout
    assert "✓ permissions Deployment" in result.stdout
    assert "All checks passed." in result.stdout
    _assert_wrote_nothing(target)


def test_json_lists_every_check(target: Target) -> None:
    target.token = OWNER_API_TOKEN
    result = target.run("doctor", "--output", "json")

    assert result.exit_code == 0, result.output
    checks = _checks(result.stdout)
    assert {
        "GITLAB_TOKEN",
        "GitLab",
        "token scopes",
        "group",
        "role",
        "kubeconfig",
        "cluster",
        "namespace",
        "ImageCache CRD",
        "permissions Namespace",
        "permissions Role",
        "permissions ImageCache",
        "permissions Deployment",
        "permissions Lease",
    } <= set(checks)
    assert all(c["status"] == "ok" for c in checks.values()), checks
    assert json.loads(result.stdout)["exit_code"] == 0


def test_a_denied_verb_fails_with_its_fix_and_exit_4(target: Target) -> None:
    target.kube.deny("patch", "roles", group="rbac.authorization.k8s.io")

    result = target.run("doctor")

    assert result.exit_code == 4, result.output
    assert "✗ permissions Role" in result.stdout
    assert "may not patch roles in namespace gitlab-runner" in result.stdout
    assert 'resources: ["roles"], verbs: ["patch"]' in result.stdout  # the fix
    assert "✓ permissions Deployment" in result.stdout  # the other checks still ran
    assert "1 check failed (exit 4)." in result.stdout
    assert "first: permissions Role" in result.stderr


def test_a_read_only_token_fails_scopes_and_role_with_exit_3(target: Target) -> None:
    target.token = READER_TOKEN

    result = target.run("doctor", "--output", "json")

    assert result.exit_code == 3, result.output
    checks = _checks(result.stdout)
    assert checks["token scopes"]["status"] == "fail"
    assert "create_runner and manage_runner" in str(checks["token scopes"]["detail"])
    assert checks["role"]["status"] == "fail"
    assert "reader is Developer of mygroup" in str(checks["role"]["detail"])
    assert checks["group"]["status"] == "ok"
    assert checks["cluster"]["status"] == "ok"  # Kubernetes is checked all the same
    _assert_wrote_nothing(target)


def test_missing_token_is_exit_2_and_the_cluster_is_still_checked(target: Target) -> None:
    target.token = ""

    result = target.run("doctor", "--output", "json")

    assert result.exit_code == 2, result.output
    checks = _checks(result.stdout)
    assert checks["GITLAB_TOKEN"]["status"] == "fail"
    assert checks["GITLAB_TOKEN"]["fix"]
    assert checks["GitLab"]["status"] == "skip"
    assert checks["permissions Deployment"]["status"] == "ok"
    assert target.gitlab.requests() == []


def test_unreachable_cluster_is_exit_4_after_the_gitlab_checks(target: Target) -> None:
    target.kube.stop()

    result = target.run("doctor")

    assert result.exit_code == 4, result.output
    assert "✓ role" in result.stdout
    assert "✗ cluster" in result.stdout
    assert "- permissions" in result.stdout  # skipped, saying why


def test_missing_image_cache_crd_is_only_a_warning(target: Target) -> None:
    target.kube_delete(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/imagecaches.eci.alibabacloud.com"
    )

    result = target.run("doctor")

    assert result.exit_code == 0, result.output
    assert "! ImageCache CRD" in result.stdout
    assert "fix: install ACK's virtual-node component" in result.stdout
    assert "permissions ImageCache" not in result.stdout  # install will not apply one
    assert "All checks passed." in result.stdout


def test_namespace_that_may_not_be_created_fails(target: Target) -> None:
    (target.workdir / "bootstrap.toml").write_text("[kubernetes]\ncreate_namespace = false\n")

    result = target.run("doctor")

    assert result.exit_code == 4, result.output
    assert "✗ namespace" in result.stdout
    assert "create_namespace is false" in result.stdout


def test_a_token_without_api_is_warned_about(target: Target) -> None:
    result = target.run("doctor")
    assert result.exit_code == 0, result.output
    assert "! api scope" in result.stdout
    assert "--skip-templates --skip-schedule" in result.stdout
