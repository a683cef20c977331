"""The shared server base: request log, latency and fault injection, thread safety."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.fakes.fixtures import GROUP, OWNER_TOKEN
from tests.fakes.gitlab import FakeGitLab

HEADERS = {"PRIVATE-TOKEN": OWNER_TOKEN}


def get_user(fake: FakeGitLab, **kwargs: object) -> requests.Response:
    return requests.get(f"{fake.url}/api/v4/user", headers=HEADERS, timeout=5, **kwargs)  # type: ignore[arg-type]


def create_runner(fake: FakeGitLab, timeout: float = 5) -> requests.Response:
    group_id = fake.find_group(GROUP).id  # type: ignore[union-attr]
    return requests.post(
        f"{fake.url}/api/v4/user/runners",
        headers=HEADERS,
        json={"runner_type": "group_type", "group_id": group_id},
        timeout=timeout,
    )


def test_request_log_records_what_was_sent(fake_gitlab: FakeGitLab) -> None:
    before = time.time()
    get_user(fake_gitlab, params={"a": "1"})
    create_runner(fake_gitlab)
    first, second = fake_gitlab.log
    assert (first.method, first.path, first.query, first.status) == (
        "GET",
        "/api/v4/user",
        {"a": "1"},
        200,
    )
    assert first.headers["private-token"] == OWNER_TOKEN
    assert first.timestamp >= before
    assert first.duration >= 0
    assert second.body == {"runner_type": "group_type", "group_id": 1}
    assert second.status == 201
    assert second.fault is None
    assert fake_gitlab.requests("POST") == [second]
    assert fake_gitlab.requests(path_prefix="/api/v4/user") == [first, second]
    assert fake_gitlab.writes() == [second]
    assert fake_gitlab.reads() == [first]
    fake_gitlab.clear_log()
    assert fake_gitlab.log == []


def test_latency_applies_to_every_request(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.latency_ms = 150
    started = time.monotonic()
    get_user(fake_gitlab)
    get_user(fake_gitlab)
    assert time.monotonic() - started >= 0.3


def test_fault_hits_only_the_nth_matching_request(fake_gitlab: FakeGitLab) -> None:
    fault = fake_gitlab.inject("500", nth=2, match=("GET", r"/user$"))
    statuses = []
    for _ in range(3):
        create_runner(fake_gitlab)  # does not match: not counted
        statuses.append(get_user(fake_gitlab).status_code)
    assert statuses == [200, 500, 200]
    assert fault.fired
    assert [r.fault for r in fake_gitlab.requests("GET")] == [None, "500", None]
    assert len(fake_gitlab.runners) == 3


def test_fault_matcher_can_be_a_callable(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.inject("500", match=lambda request: request.query.get("x") == "1")
    assert get_user(fake_gitlab).status_code == 200
    assert get_user(fake_gitlab, params={"x": "1"}).status_code == 500


def test_429_carries_retry_after(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.inject("429")
    response = get_user(fake_gitlab)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"


def test_faulted_write_is_not_processed(fake_gitlab: FakeGitLab) -> None:
    for kind in ("500", "429"):
        fake_gitlab.inject(kind, match=("POST", "/user/runners"))
        assert create_runner(fake_gitlab).status_code == int(kind)
    assert fake_gitlab.runners == {}
    assert fake_gitlab.runner_tokens() == []


def test_reset_closes_the_connection_without_an_answer(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.inject("reset", match=("POST", "/user/runners"))
    with requests.Session() as session:
        session.headers.update(HEADERS)
        assert session.get(f"{fake_gitlab.url}/api/v4/user", timeout=5).status_code == 200
        with pytest.raises(requests.exceptions.ConnectionError):
            session.post(
                f"{fake_gitlab.url}/api/v4/user/runners",
                json={"runner_type": "group_type", "group_id": 1},
                timeout=5,
            )
    assert fake_gitlab.runners == {}
    assert get_user(fake_gitlab).status_code == 200


def test_delay_answers_late_but_processes_at_once(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.inject("delay", match=("POST", "/user/runners"), seconds=0.8)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        create_runner(fake_gitlab, timeout=0.2)
    assert time.monotonic() - started < 0.7
    assert len(fake_gitlab.runners) == 1  # processed before the answer was delayed


def test_unknown_fault_kind_is_refused(fake_gitlab: FakeGitLab) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        fake_gitlab.inject("503")


def test_concurrent_writes_are_serialised(fake_gitlab: FakeGitLab) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: create_runner(fake_gitlab), range(24)))
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 24
    assert len(set(fake_gitlab.runner_tokens())) == 24
    assert len(fake_gitlab.writes()) == 24


def test_stop_and_restart_frees_the_port() -> None:
    fake = FakeGitLab().start()
    url = fake.url
    fake.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{url}/api/v4/version", timeout=1)
