"""Why the runner's pods are not ready, as the rollout wait tells it (and how it ticks)."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bootstrap.readiness import not_ready_reasons
from bootstrap.report import ConsoleReporter

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
POD = "gitlab-runner-5d4f8-abcde"


def _pod(status: dict[str, Any], name: str = POD) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": status}


def _waiting(reason: str, message: str | None = None) -> dict[str, Any]:
    waiting = {"reason": reason, **({"message": message} if message else {})}
    return {"name": "gitlab-runner", "ready": False, "state": {"waiting": waiting}}


def _event(reason: str, message: str, *, age: float = 60, kind: str = "Warning") -> dict:
    return {
        "type": kind,
        "reason": reason,
        "message": message,
        "involvedObject": {"kind": "Pod", "name": POD},
        "lastTimestamp": (NOW - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def test_an_image_pull_error_is_told_with_the_registrys_answer() -> None:
    pod = _pod(
        {
            "phase": "Pending",
            "containerStatuses": [_waiting("ErrImagePull", 'pull "x:1": not found')],
        }
    )
    assert not_ready_reasons([pod], [], NOW) == [
        f'pod {POD}: Pending; container gitlab-runner: ErrImagePull: pull "x:1": not found'
    ]


def test_an_unschedulable_pod_says_what_the_scheduler_said() -> None:
    condition = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient cpu.",
    }
    pod = _pod({"phase": "Pending", "conditions": [condition]})
    assert not_ready_reasons([pod], [], NOW) == [
        f"pod {POD}: Pending; Unschedulable: 0/3 nodes are available: 3 Insufficient cpu."
    ]


def test_ready_and_terminating_pods_say_nothing() -> None:
    ready = _pod({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]})
    going = {"metadata": {"name": "old", "deletionTimestamp": "x"}, "status": {}}
    assert not_ready_reasons([ready, going], [], NOW) == []


def test_a_crashing_or_unready_container_is_told() -> None:
    crashed = {
        "name": "gitlab-runner",
        "state": {"terminated": {"reason": "Error", "exitCode": 1}},
    }
    running = {"name": "side", "ready": False, "state": {"running": {}}}
    [line] = not_ready_reasons(
        [_pod({"phase": "Running", "containerStatuses": [crashed, running]})], [], NOW
    )
    assert "container gitlab-runner: terminated (Error, exit code 1)" in line
    assert "container side: running, not ready yet (its readiness probe)" in line


def test_recent_warnings_include_ecis_and_leave_out_old_normal_and_repeated_ones() -> None:
    events = [
        _event("ProviderCreateFailed", "QuotaExceed.ElasticQuota: vCPU quota exceeded"),
        _event("ProviderCreateFailed", "RecommendEmpty.InstanceTypeNoStock", age=30),
        _event("ProviderCreateFailed", "RecommendEmpty.InstanceTypeNoStock", age=20),
        _event("Failed", "an hour ago", age=3600),
        _event("Pulling", "Pulling image", kind="Normal"),
        {**_event("Failed", "another pod"), "involvedObject": {"kind": "Pod", "name": "x"}},
    ]
    assert not_ready_reasons([], events, NOW, owners=[POD]) == [
        f"event Pod/{POD}: ProviderCreateFailed: QuotaExceed.ElasticQuota: vCPU quota exceeded",
        f"event Pod/{POD}: ProviderCreateFailed: RecommendEmpty.InstanceTypeNoStock",
    ]


def test_reasons_are_redacted() -> None:
    token = "glrt-t1_0123456789abcdefghij"
    message = f"pull https://deploy:s3cr3t-pass@registry.example.com/x token {token}"
    pod = _pod({"phase": "Pending", "containerStatuses": [_waiting("ErrImagePull", message)]})
    text = "\n".join(not_ready_reasons([pod], [_event("Failed", message)], NOW))
    assert "s3cr3t-pass" not in text
    assert token not in text
    assert "deploy:(redacted)@registry.example.com" in text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_the_wait_repeats_its_line_with_the_time_and_no_carriage_return() -> None:
    stream = io.StringIO()
    reporter = ConsoleReporter(stream, interval=0.0)
    started = time.monotonic() - 42
    reporter.progress("Waiting for deployment", started=started)
    reporter.progress("Waiting for deployment", started=started)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert all(line.startswith("Waiting for deployment (4") for line in lines)
    assert "\r" not in stream.getvalue()


def test_off_a_terminal_an_unchanged_line_is_not_repeated_within_the_interval() -> None:
    stream = io.StringIO()
    reporter = ConsoleReporter(stream, interval=3600.0)
    for _ in range(3):
        reporter.progress("Waiting", started=time.monotonic())
    assert len(stream.getvalue().splitlines()) == 1


def test_on_a_terminal_the_line_is_rewritten_with_the_time_since_the_wait_began(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fixed clock: a loaded machine must not turn 5s into 6s.
    monkeypatch.setattr("bootstrap.report.time.monotonic", lambda: 1000.0)
    stream = _Terminal()
    reporter = ConsoleReporter(stream)
    reporter.progress("Waiting", started=1000.0 - 5)
    reporter.progress("Waiting", started=1000.0 - 65)
    reporter.info("done")
    assert stream.getvalue().startswith("\r\033[KWaiting (5s)\r\033[KWaiting (65s)\r\033[Kdone\n")


def test_a_kubernetes_error_message_is_redacted() -> None:
    # An admission webhook that quotes the request it refused must not print the token.
    from bootstrap.errors import KubeError
    from bootstrap.kube import Kube

    token = "glrt-" + "t0ken" * 5
    body = {"message": f"denied: data config.toml has token = {token!r} and https://u:pw@h/x"}
    with pytest.raises(KubeError) as raised:
        Kube._check(None, 403, body, "patch Secret/gitlab-runner-config")  # type: ignore[arg-type]
    text = str(raised.value)
    assert "denied" in text
    assert token not in text
    assert ":pw@" not in text
