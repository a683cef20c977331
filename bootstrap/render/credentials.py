"""The secret material a render needs, kept apart from the settings so it is never logged."""

from __future__ import annotations

from dataclasses import dataclass, fields

from bootstrap.secret import Secret

PLACEHOLDER_TOKEN = "glrt-PLACEHOLDER-bootstrap-install-sets-the-real-token"
PLACEHOLDER_OPS_TOKEN = "glrt-PLACEHOLDER-bootstrap-install-sets-the-ops-runner-token"


def _placeholder(what: str) -> str:
    return f"PLACEHOLDER: {what} (bootstrap install fills this in; never commit the real value)"


#: An unset secret (a Secret is immutable: one instance serves every default).
NO_SECRET = Secret("")

#: The fields that hold secret material (a ``Secret``); the others are certificates and keys
#: meant to be public (CA bundles, public keys, known_hosts).
SENSITIVE = (
    "runner_token",
    "ops_runner_token",
    "registry_password",
    "ssh_private_key",
    "kube_key",
    "s3_access_key",
    "s3_secret_key",
)


@dataclass(frozen=True, repr=False)
class Credentials:
    """Secret values that end up in Secrets. ``repr`` never shows them.

    The sensitive fields are :class:`~bootstrap.secret.Secret`: a plain ``str`` given for
    one is wrapped, so no later f-string or traceback can show it.
    """

    runner_token: Secret
    #: The ops project's runner token: the sealed rotation entry of config.toml ("" none).
    ops_runner_token: Secret = NO_SECRET
    registry_password: Secret = NO_SECRET
    ssh_private_key: Secret = NO_SECRET
    ssh_public_key: str = ""
    known_hosts: str = ""
    kube_ca: str = ""
    kube_cert: str = ""
    kube_key: Secret = NO_SECRET
    gitlab_ca: str = ""
    s3_access_key: Secret = NO_SECRET
    s3_secret_key: Secret = NO_SECRET

    def __post_init__(self) -> None:
        for name in SENSITIVE:
            value = getattr(self, name)
            if not isinstance(value, Secret):
                object.__setattr__(self, name, Secret(value))

    def __repr__(self) -> str:
        set_fields = [f.name for f in fields(self) if getattr(self, f.name)]
        return f"Credentials(set={set_fields})"

    @classmethod
    def placeholders(cls) -> Credentials:
        """Clearly marked stand-ins for an offline ``render`` (no credential is read)."""
        return cls(
            runner_token=Secret(PLACEHOLDER_TOKEN),
            ops_runner_token=Secret(PLACEHOLDER_OPS_TOKEN),
            registry_password=Secret(_placeholder("registry password")),
            ssh_private_key=Secret(_placeholder("git ssh private key")),
            ssh_public_key=_placeholder("git ssh public key"),
            known_hosts=_placeholder("known_hosts of the git host"),
            kube_ca=_placeholder("cluster CA"),
            kube_cert=_placeholder("client certificate"),
            kube_key=Secret(_placeholder("client key")),
            gitlab_ca=_placeholder("GitLab CA bundle"),
            s3_access_key=Secret(_placeholder("S3 access key")),
            s3_secret_key=Secret(_placeholder("S3 secret key")),
        )

    def secret_values(self) -> list[str]:
        """Every non-empty secret value (for redaction and leak scans)."""
        values: list[Secret] = [getattr(self, name) for name in SENSITIVE]
        return [value.reveal() for value in values if value]
