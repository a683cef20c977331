"""The leak scan itself: it finds a secret inside anything printed in encoded form (a whole
config.toml base64-encoded in a diff, a dockerconfigjson), and it catches the mutant that
turns off the Secret redaction of the plan's diff (``plan.redact_object`` once, now the
Secret branch of ``plan.diff``)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

import bootstrap.install
from bootstrap import plan
from tests.conftest import OUTPUTS, find_leaks
from tests.e2e.conftest import Target

TOKEN = "glrt-t2_ThisIsTheRunnerTokenValue"
CONFIG_TOML = '[[runners]]\n  token = "' + TOKEN + '"\n'


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _old_scan(text: str, secret: str) -> bool:
    """What the scan looked for before: the secret raw, or base64-encoded on its own."""
    return secret in text or _b64(secret) in text


DOCKER_CONFIG = json.dumps({"auths": {"r": {"auth": _b64("u:" + TOKEN)}}})


@pytest.mark.parametrize(
    "printed",
    [
        "data:\n  config.toml: " + _b64(CONFIG_TOML) + "\n",
        json.dumps({"data": {".dockerconfigjson": _b64(DOCKER_CONFIG)}}),
        json.dumps({"config": _b64(json.dumps({"token": TOKEN}))}),
        _b64(CONFIG_TOML).rstrip("="),  # unpadded
        base64.urlsafe_b64encode(CONFIG_TOML.encode()).decode(),
    ],
    ids=[
        "config.toml-in-yaml",
        "dockerconfigjson",
        "json-in-base64-in-json",
        "unpadded",
        "urlsafe",
    ],
)
def test_a_secret_inside_an_encoded_blob_is_found(printed: str) -> None:
    assert not _old_scan(printed, TOKEN), "the old scan would have missed it"
    assert find_leaks(printed, [TOKEN]) == [TOKEN]


def test_text_without_the_secret_is_clean() -> None:
    redacted = CONFIG_TOML.replace(TOKEN, "glrt-...WXYZ")
    printed = "config.toml: " + _b64(redacted) + "\nsha256 0123abcdef"
    assert find_leaks(printed, [TOKEN]) == []


def _config_diff_dry_run(target: Target) -> str:
    assert target.run("install").exit_code == 0
    (target.workdir / "bootstrap.toml").write_text("[runner]\nconcurrent = 3\n")
    result = target.run("install", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Secret/gitlab-runner-config" in result.output
    return result.output


def test_the_scan_catches_a_mutant_that_stops_redacting_secret_diffs(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    def diff_without_the_secret_check(desired: dict[str, Any], live: dict[str, Any] | None) -> str:
        # plan.diff with its `kind == "Secret"` branch removed: the mutant.
        new = plan._unnamed(plan._strip(desired))
        old = plan._unnamed(plan._strip(plan.project(live, desired))) if live else {}
        return "".join(line + "\n" for line in plan.field_changes(old, new))

    monkeypatch.setattr(bootstrap.install, "diff", diff_without_the_secret_check)

    output = _config_diff_dry_run(target)

    token = target.stored_token()
    assert token not in output, "the mutant prints config.toml encoded, never raw"
    assert find_leaks(output, [token]) == [token]
    # The mutant's output is what this test is about: keep it from the autouse scan.
    OUTPUTS.clear()
    target.outputs.clear()


def test_without_the_mutant_the_same_dry_run_is_clean(target: Target) -> None:
    output = _config_diff_dry_run(target)
    assert find_leaks(output, [target.stored_token()]) == []
