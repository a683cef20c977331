"""What keeps the runner pod harmless and a self-signed GitLab reachable, field by field.

Each assertion here killed a mutant that the broader render tests let through (see
docs/mutation.md): flipping one of these booleans or dropping the CA would still render
valid objects.
"""

from __future__ import annotations

import base64
import tomllib
from typing import Any

from bootstrap.render import names as n
from bootstrap.render import render
from tests.unit.test_render import CREDS, _settings


def _by_kind(scenario: str, profile: str = "eci") -> dict[str, dict[str, Any]]:
    rendered = render(_settings(scenario, profile), CREDS)
    return {f"{o.kind}/{o.name}": o.body for o in rendered.objects}


def _pod(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return dict(objects[f"Deployment/{n.DEPLOYMENT}"]["spec"]["template"]["spec"])


def test_the_runner_container_is_never_privileged_nor_root() -> None:
    for profile in ("eci", "kubernetes"):
        pod = _pod(_by_kind("defaults", profile))
        [container] = pod["containers"]
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        }
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_the_service_account_token_is_mounted_only_for_in_cluster_auth() -> None:
    assert _pod(_by_kind("defaults"))["automountServiceAccountToken"] is True
    assert _pod(_by_kind("client-certificate"))["automountServiceAccountToken"] is False


def test_a_self_signed_gitlabs_ca_is_stored_and_used() -> None:
    secret = _by_kind("self-signed-gitlab")[f"Secret/{n.CONFIG_SECRET}"]
    assert base64.b64decode(secret["data"]["ca.crt"]).decode() == CREDS.gitlab_ca
    config = tomllib.loads(base64.b64decode(secret["data"]["config.toml"]).decode())
    assert config["runners"][0]["tls-ca-file"] == "/etc/gitlab-runner/certs/ca.crt"


def test_without_a_ca_file_no_ca_is_stored() -> None:
    secret = _by_kind("defaults")[f"Secret/{n.CONFIG_SECRET}"]
    assert "ca.crt" not in secret["data"]
    config = tomllib.loads(base64.b64decode(secret["data"]["config.toml"]).decode())
    assert "tls-ca-file" not in config["runners"][0]
