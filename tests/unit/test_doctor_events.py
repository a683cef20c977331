"""doctor's reading of recent events: quota, out of stock, image pulls that time out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bootstrap.doctor import classify_events

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def _event(message: str, *, reason: str = "ProviderCreateFailed", **kw: Any) -> dict[str, Any]:
    age = kw.pop("age", timedelta(minutes=5))
    return {
        "type": kw.pop("type", "Warning"),
        "reason": reason,
        "message": message,
        "involvedObject": {"kind": "Pod", "name": kw.pop("pod", "runner-x-concurrent-0")},
        "lastTimestamp": (NOW - age).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def test_events_are_sorted_by_what_they_mean() -> None:
    found = classify_events(
        [
            _event("QuotaExceed.ElasticQuota: vCPU quota exceeded"),
            _event("RecommendEmpty.InstanceTypeNoStock"),
            _event(
                'Failed to pull image "alpine:3.21.3": dial tcp 1.2.3.4:443: i/o timeout',
                reason="Failed",
            ),
            _event("Back-off pulling image", reason="BackOff"),  # no timeout: not egress
            _event("Started container", reason="Started", type="Normal"),
        ],
        NOW,
    )
    assert found.quota == [
        "Pod/runner-x-concurrent-0: QuotaExceed.ElasticQuota: vCPU quota exceeded"
    ]
    assert found.stock == ["Pod/runner-x-concurrent-0: RecommendEmpty.InstanceTypeNoStock"]
    assert len(found.pull_timeouts) == 1


def test_old_and_repeated_events_are_left_out() -> None:
    found = classify_events(
        [
            _event("QuotaExceed: old", age=timedelta(hours=2)),
            _event("QuotaExceed: again", pod="a"),
            _event("QuotaExceed: again", pod="b"),
        ],
        NOW,
    )
    assert found.quota == ["Pod/a: QuotaExceed: again"]
