"""What a job pod bills as on ECI, over a table of container mixes."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from bootstrap.config import Settings
from bootstrap.cost import ECI_SPECS, Spec, billing_summary, eci_spec, job_pod_billing
from tests.conftest import make_settings

OLD_DEFAULTS = {  # the seed's build container and the earlier service defaults
    "cpu_request": "2",
    "cpu_limit": "2",
    "memory_request": "4Gi",
    "memory_limit": "4Gi",
    "service_cpu_limit": "1",
    "service_memory_limit": "1Gi",
}
SMALL = {
    "cpu_request": "500m",
    "cpu_limit": "500m",
    "memory_request": "1Gi",
    "memory_limit": "1Gi",
    "helper_cpu_request": "250m",
    "helper_cpu_limit": "250m",
    "helper_memory_request": "256Mi",
    "helper_memory_limit": "256Mi",
}
LARGE = {"cpu_request": "7500m", "cpu_limit": "7500m", "memory_limit": "15Gi"}

# (name, executor settings, services) -> (sum of limits, billed spec, warned)
MIXES: list[tuple[str, dict[str, Any], int, str, str, bool]] = [
    ("defaults", {}, 0, "2 vCPU / 4 GiB", "2 vCPU / 4 GiB", False),
    ("defaults, 1 service", {}, 1, "4 vCPU / 8 GiB", "4 vCPU / 8 GiB", False),
    ("defaults, 2 services", {}, 2, "6 vCPU / 12 GiB", "8 vCPU / 16 GiB", False),
    ("seed build 2/4Gi", OLD_DEFAULTS, 0, "2.5 vCPU / 5 GiB", "4 vCPU / 8 GiB", True),
    ("seed build, 1 service", OLD_DEFAULTS, 1, "3.5 vCPU / 6 GiB", "4 vCPU / 8 GiB", False),
    ("small 0.5/1Gi", SMALL, 0, "0.75 vCPU / 1.25 GiB", "1 vCPU / 2 GiB", True),
    ("large 7.5/15Gi", LARGE, 0, "8 vCPU / 16 GiB", "8 vCPU / 16 GiB", False),
]


@pytest.mark.parametrize(
    ("name", "executor", "services", "needed", "billed", "warned"),
    MIXES,
    ids=[m[0] for m in MIXES],
)
def test_job_pod_bills_as_the_next_eci_spec(
    name: str, executor: dict[str, Any], services: int, needed: str, billed: str, warned: bool
) -> None:
    billing = job_pod_billing(make_settings(executor=executor), services)
    assert billing.needed.label == needed
    assert billing.spec is not None
    assert billing.spec.label == billed
    assert billing.wasteful is warned
    assert bool(billing.suggestions) is warned


def test_the_default_job_pod_fills_its_spec_exactly() -> None:
    summary = billing_summary(Settings())
    assert [pod.waste for pod in summary.pods] == [0.0, 0.0]
    assert summary.lines() == [
        "Cost: each job pod bills as 2 vCPU / 4 GiB; a job with one service as 4 vCPU / 8 GiB "
        "(ECI, per second)."
    ]
    assert summary.warnings == []


def test_the_seeds_mix_is_warned_about_with_the_settings_that_fit() -> None:
    summary = billing_summary(make_settings(executor=OLD_DEFAULTS))
    assert summary.warnings == [
        "warning: a job pod with no service needs 2.5 vCPU / 5 GiB and is billed as "
        "4 vCPU / 8 GiB: 38% of it is paid for and unused"
    ]
    suggestions = summary.pods[0].suggestions
    assert suggestions[0] == (
        "to use all of the 4 vCPU / 8 GiB you pay for: executor.cpu_limit = '3500m', "
        "executor.memory_limit = '7Gi'"
    )
    assert suggestions[1] == (
        "or, to pay for 2 vCPU / 4 GiB: executor.cpu_limit = '1500m', "
        "executor.cpu_request = '1500m', executor.memory_limit = '3Gi', "
        "executor.memory_request = '3Gi'"
    )
    # Both suggestions really fit: applying one leaves nothing unused.
    fixed = make_settings(
        executor={
            **OLD_DEFAULTS,
            "cpu_limit": "1500m",
            "cpu_request": "1500m",
            "memory_limit": "3Gi",
            "memory_request": "3Gi",
        }
    )
    assert job_pod_billing(fixed).waste == 0.0
    bigger = make_settings(executor={**OLD_DEFAULTS, "cpu_limit": "3500m", "memory_limit": "7Gi"})
    assert job_pod_billing(bigger).waste == 0.0


def test_a_wasteful_service_is_resized_not_the_build_container() -> None:
    settings = make_settings(executor={"service_cpu_limit": "500m", "service_memory_limit": "1Gi"})
    billing = job_pod_billing(settings, services=1)
    assert (billing.needed.label, billing.spec and billing.spec.label) == (
        "2.5 vCPU / 5 GiB",
        "4 vCPU / 8 GiB",
    )
    assert "executor.service_cpu_limit = '2'" in billing.suggestions[0]
    assert "executor.service_memory_limit = '4Gi'" in billing.suggestions[0]


def test_the_spec_table_is_alibabas_and_rounds_up() -> None:
    assert Spec(2000, 4096) in ECI_SPECS
    assert Spec(4000, 2048) in ECI_SPECS
    assert Spec(2000, 6144) not in ECI_SPECS  # only in some regions: left out on purpose
    assert eci_spec(Spec(2500, 5120)) == Spec(4000, 8192)  # the example
    assert eci_spec(Spec(7000, 13 * 1024)) == Spec(8000, 16 * 1024)
    assert eci_spec(Spec(250, 100)) == Spec(250, 512)
    assert eci_spec(Spec(1000, 9 * 1024)) == Spec(2000, 16 * 1024)
    assert eci_spec(Spec(65000, 1024)) is None


def test_a_pod_above_the_largest_spec_says_so() -> None:
    settings = make_settings(executor={"cpu_request": "64", "cpu_limit": "64"})
    assert "above ECI's largest spec" in billing_summary(settings).lines()[0]


def test_use_specs_decide_instead_of_the_sum() -> None:
    settings = make_settings(eci={"use_specs": ["2-4Gi", "ecs.c6.xlarge"]})
    line = billing_summary(settings).lines()[0]
    assert "the first of eci.use_specs that ECI can create: 2-4Gi, ecs.c6.xlarge" in line


def test_arm64_pods_are_billed_by_instance_type() -> None:
    line = billing_summary(make_settings(runner={"helper_arch": "arm64"})).lines()[0]
    assert "an Arm ECS instance type of at least 2 vCPU / 4 GiB" in line


def test_kubernetes_profile_shows_the_limits_only() -> None:
    lines = billing_summary(make_settings(profile="kubernetes")).lines()
    assert lines == [
        "Job pods: containers' limits add up to 2 vCPU / 4 GiB (profile kubernetes: your nodes "
        "are billed, not each pod)."
    ]


@pytest.mark.parametrize(
    ("use_specs", "message"),
    [
        (["2-4"], "neither a vCPU-memory spec"),
        (["3-6Gi"], "not a vCPU/memory spec ECI offers: the next one ECI offers is '4-8Gi'"),
        (["1-2Gi"], "smaller than a job pod's containers (2 vCPU / 4 GiB"),
        (["2-4Gi", "2-4Gi"], "lists a spec twice"),
        ([f"{n}-{2 * n}Gi" for n in (2, 4, 8, 12, 16, 24)], "at most 5 specs"),
    ],
)
def test_use_specs_are_validated(use_specs: list[str], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        make_settings(eci={"use_specs": use_specs})
    assert message in str(err.value)


def test_valid_use_specs_pass() -> None:
    settings = make_settings(eci={"use_specs": ["2-4Gi", "4-8Gi", "ecs.c6.xlarge", "8-16Gi"]})
    assert settings.eci.use_specs[-1] == "8-16Gi"


def test_summary_as_dict_is_json_ready() -> None:
    data = billing_summary(Settings()).as_dict()
    assert data["job_pods"][0]["spec"] == "2 vCPU / 4 GiB"
    assert data["job_pods"][1]["containers"]["svc-0"] == {
        "cpu_millicores": 2000,
        "memory_mib": 4096,
    }


def test_the_init_container_counts_only_when_it_is_the_largest() -> None:
    from bootstrap.cost import Container, init_container, pod_needs

    executor = make_settings().executor
    init = init_container(executor)
    assert (init.name, init.millicores, init.mib) == ("init-permissions", 500, 1024)
    build = Container("build", "", "", 100, 128)
    assert pod_needs([build], [init]) == Spec(500, 1024)  # alone, it is the larger
    assert pod_needs([build, build], []) == Spec(200, 256)
