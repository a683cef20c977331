"""The runner pods of a fake cluster, as the fake GitLab sees them poll.

``FakeGitLab.runner_processes = lambda: runner_pods(fake_kube)`` links the two fakes: each
runner Deployment that runs in the fake cluster contacts the fake GitLab with its token and
system id (see tests/fakes/FIDELITY.md, "How runners come online").
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.kube import FakeKube


def runner_pods(kube: FakeKube) -> list[tuple[str, str]]:
    """``(token, system id)`` of each ``[[runners]]`` entry of each runner Deployment whose
    pods run now: rolled out and ready, with the config.toml the Secret holds (the pod
    template's checksum matches it).
    FakeGitLab lets each contact GitLab, as a polling gitlab-runner would."""
    import tomllib

    # The pod template's checksum is how the tool rolls the pods on a new config.
    from bootstrap.render.objects import config_checksum

    processes = []
    for deploy in kube.objects("Deployment"):
        meta, spec, status = deploy["metadata"], deploy["spec"], deploy.get("status") or {}
        if meta["name"] != "gitlab-runner" or not status.get("readyReplicas"):
            continue
        if status.get("observedGeneration") != meta.get("generation"):
            continue
        secret = kube.get_object("v1", "Secret", "gitlab-runner-config", meta["namespace"])
        if secret is None:
            continue
        config = secret_text(secret, "config.toml")
        template = spec["template"]["metadata"].get("annotations") or {}
        if template.get("gitlab-eci-bootstrap/config-checksum") != config_checksum(
            config, secret_text(secret, "ca.crt")
        ):
            continue
        env = {
            e["name"]: e.get("value", "")
            for c in spec["template"]["spec"]["containers"]
            for e in c.get("env") or []
        }
        try:
            entries = tomllib.loads(config)["runners"]
        except (tomllib.TOMLDecodeError, KeyError):
            continue
        # One process polls for every [[runners]] entry, with the one system id of its
        # config (gitlab-runner keeps it in .runner_system_id, per config file).
        system_id = env.get("RUNNER_SYSTEM_ID", "")
        processes += [(str(e["token"]), system_id) for e in entries if e.get("token")]
    return processes


def secret_text(secret: dict[str, Any], key: str) -> str:
    data = (secret.get("data") or {}).get(key)
    return base64.b64decode(data).decode() if data else ""
