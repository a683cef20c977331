"""Credentials from the environment and local files, checked before any network call."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bootstrap.config import Settings
from bootstrap.errors import ConfigErrors, InvalidInput
from bootstrap.render.credentials import Credentials
from bootstrap.secret import Secret, shown

TOKEN_HINT = (
    "export a personal (or group) access token of a group Owner with the api scope (or, "
    "with --skip-templates --skip-schedule, create_runner, manage_runner and read_api): "
    "export GITLAB_TOKEN=glpat-..."
)

# The shortest GitLab token: a legacy personal access token (20 characters); glpat- tokens
# and the newer routable ones are longer, OAuth tokens are 64 hex digits.
MIN_TOKEN_LENGTH = 20


def gitlab_token(environ: Mapping[str, str]) -> Secret:
    """``GITLAB_TOKEN`` as a :class:`Secret`, refused when missing or malformed (a pasted
    newline, spaces)."""
    token = environ.get("GITLAB_TOKEN")
    if token is None:
        raise InvalidInput("GITLAB_TOKEN is not set", hint=TOKEN_HINT)
    if not token.strip():
        raise InvalidInput("GITLAB_TOKEN is empty", hint=TOKEN_HINT)
    if token != token.strip():
        raise InvalidInput(
            "GITLAB_TOKEN has leading or trailing whitespace (a newline from a file?)",
            hint="strip it: export GITLAB_TOKEN=\"$(tr -d '[:space:]' < token.txt)\"",
        )
    if any(c.isspace() or not c.isprintable() for c in token):
        raise InvalidInput("GITLAB_TOKEN contains spaces or control characters", hint=TOKEN_HINT)
    if not token.isascii():
        # An HTTP header cannot carry it; a typographic dash or quote pasted from a page?
        raise InvalidInput(
            "GITLAB_TOKEN contains non-ASCII characters: GitLab tokens are ASCII letters, "
            "digits, '-', '_' and '.'",
            hint=TOKEN_HINT,
        )
    if len(token) < MIN_TOKEN_LENGTH:
        raise InvalidInput(
            f"GITLAB_TOKEN is {len(token)} character{'s' if len(token) != 1 else ''} long: "
            "shorter than any GitLab token "
            f"(at least {MIN_TOKEN_LENGTH})",
            hint=TOKEN_HINT,
        )
    if len(token) > 1024:
        raise InvalidInput("GITLAB_TOKEN is longer than any GitLab token", hint=TOKEN_HINT)
    return Secret(token)


def _named(key: str, value: str) -> str:
    """``value`` as a message shows it: hidden when it may be a secret in the wrong key."""
    text = shown(key, value)
    return value if text == repr(value) else text


class _Reader:
    """Collects every missing or unreadable input, so all are reported at once."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.errors: list[str] = []

    def file(self, key: str, path: str) -> str:
        if not path:
            return ""
        target = Path(path).expanduser()
        path = _named(key, path)  # in messages: not a password typed into a *_file key
        try:
            text = target.read_text(encoding="utf-8")
        except IsADirectoryError:
            self.errors.append(f"{key}: {path} is a directory, not a file")
            return ""
        except FileNotFoundError:
            self.errors.append(f"{key}: {path}: no such file")
            return ""
        except PermissionError:
            self.errors.append(f"{key}: {path}: permission denied")
            return ""
        except UnicodeDecodeError:
            self.errors.append(f"{key}: {path} is not UTF-8 text")
            return ""
        if not text.strip():
            self.errors.append(f"{key}: {path} is empty")
        return text

    def env(self, key: str, name: str) -> str:
        if not name:
            return ""
        value = self.environ.get(name, "")
        if not value:
            self.errors.append(
                f"{key}: the environment variable {_named(key, name)} is not set or empty"
            )
        return value


def load_credentials(
    settings: Settings, environ: Mapping[str, str], runner_token: str
) -> Credentials:
    """Read every secret input the settings point at.

    Raises:
        ConfigErrors: one line per missing or unreadable input.
    """
    read = _Reader(environ)
    registry = settings.registry
    password = (
        read.env("registry.password_env", registry.password_env)
        or read.file("registry.password_file", registry.password_file).strip()
    )
    ssh = settings.git_ssh
    kube = settings.kubernetes
    cache = settings.cache
    client_cert = kube.runner_auth == "client-certificate"
    creds = Credentials(
        runner_token=Secret(runner_token),
        registry_password=Secret(password),
        ssh_private_key=Secret(read.file("git_ssh.private_key_file", ssh.private_key_file)),
        ssh_public_key=read.file("git_ssh.public_key_file", ssh.public_key_file),
        known_hosts=read.file("git_ssh.known_hosts_file", ssh.known_hosts_file),
        kube_ca=read.file("kubernetes.ca_file", kube.ca_file) if client_cert else "",
        kube_cert=read.file("kubernetes.cert_file", kube.cert_file) if client_cert else "",
        kube_key=Secret(read.file("kubernetes.key_file", kube.key_file) if client_cert else ""),
        gitlab_ca=read.file("gitlab.ca_file", settings.gitlab.ca_file),
        s3_access_key=Secret(read.env("cache.s3_access_key_env", cache.s3_access_key_env)),
        s3_secret_key=Secret(read.env("cache.s3_secret_key_env", cache.s3_secret_key_env)),
    )
    if read.errors:
        raise ConfigErrors(read.errors)
    return creds
