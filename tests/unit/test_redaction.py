"""The redaction helpers: a token shows its kind and last four characters, never more."""

from __future__ import annotations

from bootstrap.gitlab import redact, redact_token


def test_a_token_keeps_its_prefix_and_last_four_characters() -> None:
    assert redact_token("glrt-t1_abcdefghWXYZ") == "glrt-…WXYZ"
    assert redact_token("glpat-0123456789") == "glpat-…6789"
    assert redact_token("abcdefghijkl") == "…ijkl", "no dash: no prefix"
    assert redact_token("abcdefgh-ijkl") == "…ijkl", "a dash past 8 characters is no prefix"
    assert redact_token("123456789") == "…6789"
    assert redact_token("12345678") == "…", "short values show nothing"
    assert redact_token("a-b-c-d-e-f") == "a-…-e-f"


def test_redact_hides_given_secrets_and_anything_shaped_like_a_gitlab_token() -> None:
    text = "token glpat-abcdefgh1234 and password hunter2-long-value and none"
    shown = redact(text, ["hunter2-long-value", ""])
    assert shown == "token glpat-…1234 and password hunter2-…alue and none"
    assert redact("glrt-abcdefgh5678") == "glrt-…5678"
    assert redact("plain text") == "plain text"
