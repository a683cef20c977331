"""The credentials a render needs: offline placeholders for every one, a repr without values."""

from __future__ import annotations

from dataclasses import fields

from bootstrap.render.credentials import Credentials


def test_offline_placeholders_fill_every_credential_clearly_marked() -> None:
    placeholders = Credentials.placeholders()
    for field in fields(Credentials):
        value = getattr(placeholders, field.name)
        text = value.reveal() if hasattr(value, "reveal") else value
        assert "PLACEHOLDER" in text, f"{field.name} has no placeholder"


def test_the_repr_names_the_credentials_set_never_their_values() -> None:
    creds = Credentials(runner_token="glrt-secret-value-1", known_hosts="host-key-line")
    shown = repr(creds)
    assert shown == "Credentials(set=['runner_token', 'known_hosts'])"
    assert sorted(creds.secret_values()) == ["glrt-secret-value-1"]
