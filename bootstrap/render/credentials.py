"""The secret material a render needs, kept apart from the settings so it is never logged."""

from __future__ import annotations

from dataclasses import dataclass, fields

PLACEHOLDER_TOKEN = "glrt-PLACEHOLDER-bootstrap-install-sets-the-real-token"
PLACEHOLDER_OPS_TOKEN = "glrt-PLACEHOLDER-bootstrap-install-sets-the-ops-runner-token"


def _placeholder(what: str) -> str:
    return f"PLACEHOLDER: {what} (bootstrap install fills this in; never commit the real value)"


@dataclass(frozen=True, repr=False)
class Credentials:
    """Secret values that end up in Secrets. ``repr`` never shows them."""

    runner_token: str
    #: The ops project's runner token: the sealed rotation entry of config.toml ("" none).
    ops_runner_token: str = ""
    registry_password: str = ""
    ssh_private_key: str = ""
    ssh_public_key: str = ""
    known_hosts: str = ""
    kube_ca: str = ""
    kube_cert: str = ""
    kube_key: str = ""
    gitlab_ca: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""

    def __repr__(self) -> str:
        set_fields = [f.name for f in fields(self) if getattr(self, f.name)]
        return f"Credentials(set={set_fields})"

    @classmethod
    def placeholders(cls) -> Credentials:
        """Clearly marked stand-ins for an offline ``render`` (no credential is read)."""
        return cls(
            runner_token=PLACEHOLDER_TOKEN,
            ops_runner_token=PLACEHOLDER_OPS_TOKEN,
            registry_password=_placeholder("registry password"),
            ssh_private_key=_placeholder("git ssh private key"),
            ssh_public_key=_placeholder("git ssh public key"),
            known_hosts=_placeholder("known_hosts of the git host"),
            kube_ca=_placeholder("cluster CA"),
            kube_cert=_placeholder("client certificate"),
            kube_key=_placeholder("client key"),
            gitlab_ca=_placeholder("GitLab CA bundle"),
            s3_access_key=_placeholder("S3 access key"),
            s3_secret_key=_placeholder("S3 secret key"),
        )

    def secret_values(self) -> list[str]:
        """Every non-empty secret value (for redaction and leak scans)."""
        sensitive = (
            "runner_token",
            "ops_runner_token",
            "registry_password",
            "ssh_private_key",
            "kube_key",
            "s3_access_key",
            "s3_secret_key",
        )
        return [getattr(self, name) for name in sensitive if getattr(self, name)]
