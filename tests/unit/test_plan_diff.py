"""The plan's field-level diff: terraform-like lines, secrets never shown (not even encoded)."""

from __future__ import annotations

import base64
from typing import Any

from bootstrap.plan import SENSITIVE, diff, field_changes

TOKEN = "glrt-t1_0123456789abcdefghij"
S3_SECRET = "s3-secret-key-0123456789"
SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n"


def _secret(data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "gitlab-runner-config", "namespace": "gitlab-runner"},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def _config(concurrent: int, token: str, cpu: str, *, s3_secret: str = S3_SECRET) -> str:
    return (
        "# Managed by gitlab-eci-bootstrap\n"
        f"concurrent = {concurrent}\n\n"
        "[[runners]]\n"
        f'token = "{token}"\n'
        "[runners.kubernetes]\n"
        f'cpu_limit = "{cpu}"\n'
        "[runners.cache.s3]\n"
        f'SecretKey = "{s3_secret}"\n'
    )


def _leaks(text: str, *secrets: str) -> list[str]:
    """Each secret, raw or base64 (of itself or of any blob holding it), found in text."""
    found = []
    for secret in secrets:
        encoded = base64.b64encode(secret.encode()).decode()
        if secret in text or encoded in text or encoded[:16] in text:
            found.append(secret[:6])
    return found


def test_a_changed_setting_in_config_toml_is_one_line_old_to_new() -> None:
    old = _secret({"config.toml": _config(10, TOKEN, "1")})
    new = _secret({"config.toml": _config(20, TOKEN, "2")})

    lines = diff(new, old).splitlines()

    assert lines == [
        '~ data["config.toml"]:',
        "    ~ concurrent: 10 -> 20",
        '    ~ runners[0].kubernetes.cpu_limit: "1" -> "2"',
    ]


def test_a_secret_diff_shows_keys_and_fields_but_no_secret_value() -> None:
    old_blob = _config(10, TOKEN, "1")
    new_token = "glrt-t1_new9876543210zyxwvuts"
    new_blob = _config(10, new_token, "1", s3_secret="s3-secret-key-rotated-000")
    old = _secret({"config.toml": old_blob, "id_rsa": SSH_KEY})
    new = _secret({"config.toml": new_blob, "known_hosts": "gitlab.example.com ssh-ed25519 AA"})

    text = diff(new, old)

    assert '~ data["config.toml"]:' in text
    assert f"~ runners[0].token: {SENSITIVE} -> {SENSITIVE}" in text
    assert f"~ runners[0].cache.s3.SecretKey: {SENSITIVE} -> {SENSITIVE}" in text
    assert f"- data.id_rsa: {SENSITIVE}" in text
    assert f"+ data.known_hosts: {SENSITIVE}" in text
    secrets = (TOKEN, new_token, S3_SECRET, "s3-secret-key-rotated-000", SSH_KEY, old_blob)
    assert _leaks(text, *secrets, new_blob, "ssh-ed25519 AA") == []


def test_a_created_secret_lists_its_config_fields_with_the_token_sensitive() -> None:
    blob = _config(10, TOKEN, "1")

    text = diff(_secret({"config.toml": blob}), None)

    assert f'+ data["config.toml"]: {SENSITIVE}' in text
    assert "    + concurrent: 10" in text
    assert f"    + runners[0].token: {SENSITIVE}" in text
    assert _leaks(text, TOKEN, S3_SECRET, blob) == []


def test_a_token_is_sensitive_wherever_it_sits_and_whatever_its_key() -> None:
    lines = field_changes(
        {"env": [{"name": "X", "value": "a"}]}, {"env": [{"name": "X", "value": TOKEN}]}
    )
    assert lines == [f'~ env[0].value: "a" -> {SENSITIVE}']


def test_added_and_removed_keys_are_marked_and_unchanged_ones_are_not_listed() -> None:
    old = {"a": 1, "b": {"c": True}, "keep": "same"}
    new = {"a": 1, "d": ["x", "y"], "keep": "same"}
    assert field_changes(old, new) == ["- b.c: true", '+ d: ["x", "y"]']


def test_an_unparsable_config_toml_is_only_said_to_change() -> None:
    old = _secret({"config.toml": "not [ toml"})
    new = _secret({"config.toml": _config(10, TOKEN, "1")})
    assert diff(new, old).splitlines() == [f'~ data["config.toml"]: {SENSITIVE} -> {SENSITIVE}']


def _binary_secret(data: dict[str, bytes]) -> dict[str, Any]:
    body = _secret({})
    body["data"] = {k: base64.b64encode(v).decode() for k, v in data.items()}
    return body


#: Not UTF-8 (a keystore, a DER key): the plan once decoded both to None and saw no change.
OLD_KEYSTORE = b"\xfe\xed\xfe\xed\x00\x00\x00\x02old-keystore-secret\xff"
NEW_KEYSTORE = b"\xfe\xed\xfe\xed\x00\x00\x00\x02new-keystore-secret\xff"


def test_a_binary_value_replaced_by_another_is_a_redacted_change() -> None:
    old = _binary_secret({"keystore.jks": OLD_KEYSTORE, "config.toml": b"\xff\x00"})
    new = _binary_secret({"keystore.jks": NEW_KEYSTORE, "config.toml": b"\xff\x01"})

    text = diff(new, old)

    assert text.splitlines() == [
        f'~ data["config.toml"]: {SENSITIVE} -> {SENSITIVE}',
        f'~ data["keystore.jks"]: {SENSITIVE} -> {SENSITIVE}',
    ]
    assert "keystore-secret" not in text
    assert base64.b64encode(OLD_KEYSTORE).decode()[:16] not in text
    assert base64.b64encode(NEW_KEYSTORE).decode()[:16] not in text


def test_an_unchanged_binary_value_and_text_turned_binary() -> None:
    same = _binary_secret({"keystore.jks": OLD_KEYSTORE})
    assert diff(same, _binary_secret({"keystore.jks": OLD_KEYSTORE})) == ""
    text = _secret({"keystore.jks": "plain text"})
    assert diff(same, text).splitlines() == [f'~ data["keystore.jks"]: {SENSITIVE} -> {SENSITIVE}']
