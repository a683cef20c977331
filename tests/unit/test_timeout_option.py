"""--timeout takes durations as kubectl and helm do, and plain seconds as before."""

from __future__ import annotations

import pytest

from bootstrap.validators import format_timeout, parse_timeout
from tests.conftest import run_cli


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("90s", 90), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("600", 600), (" 2m5s ", 125)],
)
def test_durations_and_plain_seconds(value: str, seconds: int) -> None:
    assert parse_timeout(value) == seconds


@pytest.mark.parametrize("value", ["", "5x", "1d", "m", "-5", "1.5m", "٣", "0", "0s", "25h"])
def test_what_is_not_a_timeout_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=repr(value).replace("\\", "\\\\")):
        parse_timeout(value)


def test_messages_say_the_timeout_as_it_was_written() -> None:
    assert [format_timeout(s) for s in (4, 90, 300, 5400, 3600)] == [
        "4s",
        "1m30s",
        "5m",
        "1h30m",
        "1h",
    ]


@pytest.mark.parametrize(
    "command", ["install", "rotate", "uninstall", "status", "doctor", "templates publish"]
)
def test_the_commands_take_a_duration_and_refuse_a_bad_one(command: str) -> None:
    bad = run_cli([*command.split(), "--group", "g", "--timeout", "5 minutes"])
    assert bad.exit_code == 2
    assert "'5 minutes' is not a duration (examples: 90s, 5m, 1h" in bad.stderr
    # A good duration passes the flag check: the run then stops at GITLAB_TOKEN (not set).
    good = run_cli([*command.split(), "--group", "g", "--timeout", "5m"])
    assert good.exit_code == 2
    assert "GITLAB_TOKEN is not set" in good.stderr
