"""What each job pod bills as, printed by render, install --dry-run and status."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.e2e.conftest import Target

LINE = (
    "Cost: each job pod bills as 2 vCPU / 4 GiB; a job with one service as 4 vCPU / 8 GiB "
    "(ECI, per second)."
)


def test_render_prints_the_billed_spec_on_stderr(workdir: object) -> None:
    result = run_cli(["render", "--group", "mygroup"])
    assert result.exit_code == 0, result.output
    assert LINE in result.stderr
    assert "Cost:" not in result.stdout  # stdout stays YAML


def test_render_warns_when_rounding_wastes_a_quarter(workdir: object) -> None:
    from pathlib import Path

    Path("bootstrap.toml").write_text('[executor]\ncpu_limit = "2"\ncpu_request = "2"\n')
    result = run_cli(["render", "--group", "mygroup"])
    assert result.exit_code == 0, result.output
    assert "needs 2.5 vCPU / 4 GiB and is billed as 4 vCPU / 4 GiB" in result.stderr
    assert "or, to pay for 2 vCPU / 4 GiB: executor.cpu_limit = '1500m'" in result.stderr


def test_install_dry_run_and_status_print_it(target: Target) -> None:
    plan = target.run("install", "--dry-run")
    assert plan.exit_code == 0, plan.output
    assert LINE in plan.stdout

    assert target.run("install").exit_code == 0
    status = target.run("status")
    assert status.exit_code == 0, status.output
    assert LINE in status.stdout

    as_json = target.run("status", "--output", "json")
    json.loads(as_json.stdout)  # still one JSON document


def _default_pods(cost: dict[str, object]) -> list[tuple[int, object]]:
    pods = cost["job_pods"]
    assert isinstance(pods, list)
    return [(p["services"], p["spec"]) for p in pods]


def test_render_json_carries_the_cost_with_the_objects(workdir: object) -> None:
    result = run_cli(["render", "--group", "mygroup", "--output", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert _default_pods(report["cost"]) == [(0, "2 vCPU / 4 GiB"), (1, "4 vCPU / 8 GiB")]
    assert any(o["kind"] == "Deployment" for o in report["objects"])
    assert report["cost"]["job_pods"][0]["containers"]["build"] == {
        "cpu_millicores": 1500,
        "memory_mib": 3072,
    }


def test_install_dry_run_and_status_json_carry_the_cost(target: Target) -> None:
    plan = json.loads(target.run("install", "--dry-run", "--output", "json").stdout)
    assert _default_pods(plan["cost"]) == [(0, "2 vCPU / 4 GiB"), (1, "4 vCPU / 8 GiB")]
    assert target.run("install").exit_code == 0
    status = json.loads(target.run("status", "--output", "json").stdout)
    assert _default_pods(status["cost"]) == [(0, "2 vCPU / 4 GiB"), (1, "4 vCPU / 8 GiB")]
