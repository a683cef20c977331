"""Redaction by construction: a type for secret values, and the helpers every message uses.

A :class:`Secret` holds a token, password or key. Its ``str``, ``repr`` and ``format`` show
``(secret)``, never the value, so a secret that ends up in an f-string, an exception or a
log record by mistake shows nothing; the one way to the value is :meth:`Secret.reveal`,
called where the value is written into a Secret object, config.toml or a request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

MASK: Final = "(secret)"

# A key whose last part says it holds, names or points at secret material: its value is
# never echoed in a message (a password typed into registry.password_env, say).
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|private|credential|(^|_)key(_|$))", re.I)
# Names of other objects, not secrets: shown.
_NOT_SECRET = ("existing_secret",)
# What a *_env or *_file value looks like when it is what the key asks for (a variable
# name, a path); anything else may be the secret itself, typed into the wrong key.
_ENV_LIKE = re.compile(r"[A-Z][A-Z0-9_]*")
_PATH_LIKE = re.compile(r"[~.]?[^\s]*/[^\s]*")
# A bare file name with an extension ("ca.pem"), shown for a key that points at something
# public (a CA bundle, known_hosts); a bare word there may still be a secret in the wrong key.
# (Never a GitLab token: routable GitLab tokens have dots too.)
_FILE_NAME_LIKE = re.compile(r"(?!gl[a-z]{2,4}-)[^\s/]+\.[A-Za-z0-9]{1,8}")


class Secret:
    """A secret string. ``str``/``repr``/``format`` never show it; ``reveal()`` does."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"a Secret holds a str, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The value itself: only for where it is written (Secret data, config.toml, auth)."""
        value: str = object.__getattribute__(self, "_value")
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a Secret cannot be changed")

    def __repr__(self) -> str:
        return f"Secret({MASK})" if self else "Secret('')"

    def __str__(self) -> str:
        return MASK if self else ""

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __bool__(self) -> bool:
        return bool(self.reveal())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.reveal() == self.reveal()

    def __hash__(self) -> int:
        return hash((Secret, self.reveal()))

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is not pickled")


class Environ(Mapping[str, str]):
    """The process environment, read through, whose ``repr`` names no value.

    The workflows take the environment as a mapping; ``os.environ`` itself shows every
    variable in its ``repr``, ``GITLAB_TOKEN`` and registry passwords included, in any
    traceback that shows a frame's locals. The CLI hands them this instead.
    """

    __slots__ = ("_environ",)

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def __getitem__(self, key: str) -> str:
        return self._environ[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)

    def __repr__(self) -> str:
        return f"Environ({len(self)} variables, values not shown)"

    def __reduce__(self) -> Any:
        raise TypeError("the environment is not pickled")


def expect_secret(value: object, what: str) -> Secret:
    """``value`` when it is a :class:`Secret`; TypeError for a plain ``str`` (or anything else).

    For the places a secret enters a connection or a record: mypy refuses a ``str`` there, and
    so does this check for a caller mypy does not see (a script, a test, an untyped library).
    """
    if not isinstance(value, Secret):
        kind = type(value).__name__
        raise TypeError(f"{what} must be a Secret (wrap it: Secret(value)), not {kind}")
    return value


def reveal(value: Secret | str) -> str:
    """The value of a Secret, or the string itself."""
    return value.reveal() if isinstance(value, Secret) else value


def is_secret_key(dotted: str) -> bool:
    """Whether a settings key holds, names or points at a secret (its value is never shown).

    ``registry.password_env``, ``cache.s3_secret_key_env``, ``git_ssh.private_key_file``,
    ``kubernetes.key_file``, ``gitlab.token``: yes. ``gitlab.ca_file``: no.
    """
    last = dotted.rsplit(".", 1)[-1]
    if last in _NOT_SECRET:
        return False
    return any(_SECRET_KEY.search(part) for part in dotted.split("."))


def shown(dotted: str, value: object) -> str:
    """``repr(value)`` for a message about key ``dotted``, unless it may be a secret.

    The value of a secret key is shown only when it looks like what the key asks for: an
    upper-case variable name for ``*_env``, a path with a '/' for ``*_file``; never for any
    other secret key, nor for a table or list (which may hold anything). A ``*_file`` key
    pointing at something public (``gitlab.ca_file``) shows a path or a file name with an
    extension, not a bare word: that may be a token pasted into the wrong key.
    """
    if isinstance(value, dict | list):
        return f"a {'table' if isinstance(value, dict) else 'list'} (not shown)"
    text = value if isinstance(value, str) else ""
    if not is_secret_key(dotted):
        if dotted.endswith("_file") and text and not _looks_like_a_file(text):
            return f"the value (not shown: {dotted} names a file, and this is no path)"
        return repr(value)
    if dotted.endswith("_env") and _ENV_LIKE.fullmatch(text):
        return repr(value)
    if dotted.endswith("_file") and _PATH_LIKE.fullmatch(text):
        return repr(value)
    return f"the value (not shown: {dotted} names a secret)"


def _looks_like_a_file(text: str) -> bool:
    return bool(_PATH_LIKE.fullmatch(text) or _FILE_NAME_LIKE.fullmatch(text))


def without_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` removed, for every message that prints a URL."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.rpartition("@")[2] if "@" in url else url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
