"""`bootstrap doctor` end to end: every check shown, each failure with its fix and exit code."""

from __future__ import annotations

import json

from tests.e2e.conftest import Target, virtual_node
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
        "job pod cost",
        "virtual nodes",
        "ECI events",
        "egress",
    } <= set(checks)
    # Egress is not visible to the Kubernetes API: doctor says so instead of passing it.
    assert checks.pop("egress")["status"] == "skip"
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


# --- what ECI trips over (issue 11) ----------------------------------------------------


def _event(reason: str, message: str, name: str = "runner-abc-project-1-concurrent-0") -> dict:
    from datetime import UTC, datetime

    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{abs(hash(message)) % 10**8}", "namespace": "gitlab-runner"},
        "involvedObject": {"kind": "Pod", "name": name, "namespace": "gitlab-runner"},
        "reason": reason,
        "message": message,
        "type": "Warning",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def _namespace(target: Target) -> None:
    target.kube.add_object(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gitlab-runner"}}
    )


def test_doctor_shows_the_billed_spec(target: Target) -> None:
    result = target.run("doctor")
    assert "✓ job pod cost" in result.stdout
    assert "each job pod bills as 2 vCPU / 4 GiB" in result.stdout


def test_a_wasteful_job_pod_is_a_warning_with_the_settings_that_fit(target: Target) -> None:
    (target.workdir / "bootstrap.toml").write_text('[executor]\ncpu_limit = "2"\n')
    result = target.run("doctor")
    assert result.exit_code == 0, result.output
    assert "! job pod cost" in result.stdout
    assert "billed as 4 vCPU / 4 GiB" in result.stdout
    assert "executor.cpu_limit = '1500m'" in result.stdout


def test_arm64_without_arm_virtual_nodes_fails_with_the_fix(target: Target) -> None:
    (target.workdir / "bootstrap.toml").write_text('[runner]\nhelper_arch = "arm64"\n')
    result = target.run("doctor")
    assert result.exit_code == 4, result.output
    assert "✗ virtual nodes" in result.stdout
    assert "the virtual nodes are amd64" in result.stdout
    assert "enableLinuxArm64Node: true" in result.stdout

    target.kube.add_object(virtual_node("virtual-kubelet-arm", arch="arm64"))
    again = target.run("doctor", "--output", "json")
    checks = _checks(again.stdout)
    assert checks["virtual nodes"]["status"] == "ok"
    assert "amd64, arm64" in str(checks["virtual nodes"]["detail"])


def test_a_cluster_without_virtual_nodes_is_warned_about(target: Target) -> None:
    target.kube_delete("/api/v1/nodes/virtual-kubelet-cn-hangzhou-k")
    result = target.run("doctor")
    assert "! virtual nodes" in result.stdout
    assert "job pods will not run on ECI" in result.stdout


def test_nodes_that_may_not_be_listed_are_said_to_be_unchecked(target: Target) -> None:
    target.kube.deny("list", "nodes")
    result = target.run("doctor", "--output", "json")
    checks = _checks(result.stdout)
    assert checks["virtual nodes"]["status"] == "skip"
    assert "not checked" in str(checks["virtual nodes"]["detail"])


def test_quota_and_out_of_stock_events_are_reported(target: Target) -> None:
    _namespace(target)
    target.kube.add_object(
        _event(
            "ProviderCreateFailed",
            "CreateInstance failed: QuotaExceed.ElasticQuota: the vCPU quota of ECI is exceeded",
        )
    )
    target.kube.add_object(
        _event(
            "ProviderCreateFailed",
            "RecommendEmpty.InstanceTypeNoStock: the instance type is out of stock",
            name="runner-abc-project-1-concurrent-1",
        )
    )
    result = target.run("doctor", "--output", "json")
    assert result.exit_code == 0, result.output
    ece = _checks(result.stdout)["ECI events"]
    assert ece["status"] == "warn"
    assert "QuotaExceed" in str(ece["detail"])
    assert "out of stock" in str(ece["detail"])
    assert "eci.use_specs" in str(ece["fix"])


def test_image_pull_timeouts_hint_at_missing_egress(target: Target) -> None:
    _namespace(target)
    target.kube.add_object(
        _event(
            "Failed",
            'Failed to pull image "registry.gitlab.com/gitlab-org/gitlab-runner:alpine-v18.11.4":'
            " dial tcp 35.227.35.254:443: i/o timeout",
            name="gitlab-runner-7d9f-abcde",
        )
    )
    result = target.run("doctor", "--output", "json")
    egress = _checks(result.stdout)["egress"]
    assert egress["status"] == "warn"
    assert "i/o timeout" in str(egress["detail"])
    assert "NAT gateway" in str(egress["fix"])
    assert "eci.with_eip = true" in str(egress["fix"])


def test_the_kubernetes_profile_has_no_eci_checks(target: Target) -> None:
    (target.workdir / "bootstrap.toml").write_text('profile = "kubernetes"\n')
    checks = _checks(target.run("doctor", "--output", "json").stdout)
    assert not {"virtual nodes", "ECI events", "egress"} & set(checks)


def test_a_failed_image_cache_is_reported(target: Target) -> None:
    assert target.run("install").exit_code == 0
    target.kube_patch(
        "/apis/eci.alibabacloud.com/v1/imagecaches/gitlab-runner-gitlab-runner/status",
        {"status": {"phase": "Failed", "reason": "pull image failed: i/o timeout"}},
    )
    result = target.run("doctor", "--output", "json")
    check = _checks(result.stdout)["ImageCache"]
    assert check["status"] == "warn"
    assert "i/o timeout" in str(check["detail"])


def test_a_ready_image_cache_is_ok(target: Target) -> None:
    before = _checks(target.run("doctor", "--output", "json").stdout)["ImageCache"]
    assert "does not exist yet" in str(before["detail"])
    assert target.run("install").exit_code == 0
    after = _checks(target.run("doctor", "--output", "json").stdout)["ImageCache"]
    assert after["status"] == "ok"
    assert "5 images" in str(after["detail"])
