"""Checks for the value formats the settings use: quantities, DNS names, images, cron, durations.

Each ``check_*`` function returns the (possibly normalised) value or raises ``ValueError``
with a message that says what is wrong and what would be right. The settings model wraps
them so every message is prefixed with the key it belongs to.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from datetime import timedelta
from decimal import Decimal

# Every pattern is used with ``fullmatch`` (``$`` would admit a trailing newline) and spells
# its classes out in ASCII (``\d`` and ``\w`` admit any Unicode digit or letter).

# Kubernetes resource.Quantity: a signed decimal number with an optional binary (Ki..Ei),
# decimal (m, k, M..E) or exponent suffix.
_QUANTITY = re.compile(
    r"([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?"
)
# resource.Quantity: "no quantity may represent a number greater than 2^63-1".
QUANTITY_MAX = 2**63 - 1
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# Label/annotation keys: optional DNS subdomain prefix, then a name of 1-63 characters.
_QUALIFIED_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
# Docker image reference (distribution/reference grammar, simplified but strict enough).
_REPOSITORY = (
    r"(?:(?:[a-zA-Z0-9-]+\.)*[a-zA-Z0-9-]+(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)
_IMAGE_REPOSITORY = re.compile(_REPOSITORY)
_IMAGE = re.compile(
    rf"(?P<name>{_REPOSITORY})"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?"
)
# distribution/reference: NameTotalLengthMax, the repository part of a reference.
IMAGE_MAX = 255
_SEMVER = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")
_GROUP_SEGMENT = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9_.-]*")
_DURATION = re.compile(
    r"(?:(?P<w>[0-9]+)w)?(?:(?P<d>[0-9]+)d)?(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?"
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOST_NAME = r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?"
HOST = re.compile(_HOST_NAME)
HOST_PORT = re.compile(rf"(?P<host>{_HOST_NAME})(:(?P<port>[0-9]{{1,5}}))?")
# What the CI templates write into YAML and shell as a runner tag. HOST, HOST_PORT and
# RUNNER_TAG are also the CI templates' own checks (render/templates.py).
RUNNER_TAG = re.compile(r"[A-Za-z0-9_.:/@+=-]([A-Za-z0-9_.:/@+= -]*[A-Za-z0-9_.:/@+=-])?")
_ASCII_NUMBER = re.compile(r"[0-9]+")
_CRON_SEPARATOR = re.compile(r"[ \t]+")
_CRON_STEP = re.compile(r"[0-9]{1,2}")
# fugit's zone name grammar (Fugit::Cron::Parser#_tz_name).
_TIMEZONE = re.compile(r"[A-Z][a-zA-Z0-9]+(/[A-Z][a-zA-Z0-9_]+){0,2}")
# The longest duration Python's timedelta holds (999999999 days), well past any token.
_DURATION_MAX = timedelta.max


def check_quantity(value: str) -> str:
    """A non-negative Kubernetes quantity such as ``500m``, ``2`` or ``4Gi``."""
    if not _QUANTITY.fullmatch(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (examples: 500m, 2, 1.5, 4Gi)")
    if _quantity_decimal(value) > QUANTITY_MAX:
        raise ValueError(
            f"{value!r} is larger than any Kubernetes quantity (at most 2^63-1): "
            "give a real size, e.g. 2 or 4Gi"
        )
    return value


_SUFFIXES: dict[str, Decimal] = {
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
    "m": Decimal("0.001"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}


def _quantity_decimal(value: str) -> Decimal:
    match = _QUANTITY.fullmatch(value)
    if not match:
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    number = Decimal(match.group(1))
    suffix = match.group(3) or ""
    if suffix in _SUFFIXES:
        return number * _SUFFIXES[suffix]
    exponent = suffix[1:]
    if len(exponent.lstrip("+-0")) > 4:  # 1e99999 and beyond: far past 2^63-1 (or 0)
        return Decimal(0) if exponent.startswith("-") else Decimal(QUANTITY_MAX + 1)
    # Exact, and never a float overflow (1e400 is just large).
    return number.scaleb(int(exponent))


def quantity_value(value: str) -> float:
    """The numeric value of a quantity (cores or bytes), for comparing requests and limits."""
    return float(_quantity_decimal(value))


def check_dns_label(value: str) -> str:
    """A DNS-1123 label: namespaces and most object names."""
    if len(value) > 63 or not _DNS1123_LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid DNS-1123 label: use at most 63 lower-case letters, "
            "digits and '-', starting and ending with a letter or digit"
        )
    return value


def check_volume_name(value: str) -> str:
    """A name that gitlab-runner also uses as a job pod volume name: a DNS-1123 label."""
    if len(value) > 63 or not _DNS1123_LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid DNS-1123 label, and gitlab-runner uses it as a job pod "
            "volume name, which must be one (the API server would refuse every job pod): use "
            "at most 63 lower-case letters, digits and '-' (no '.'), starting and ending with "
            "a letter or digit"
        )
    return value


def check_dns_subdomain(value: str) -> str:
    """A DNS-1123 subdomain: Secret, PVC and ServiceAccount names."""
    if len(value) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid Kubernetes object name: use lower-case letters, digits, "
            "'-' and '.', starting and ending with a letter or digit"
        )
    return value


def check_label_key(key: str) -> str:
    """A label or annotation key: ``[prefix/]name``."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        raise ValueError(f"{key!r} has an invalid prefix: it must be a DNS subdomain")
    if not name or len(name) > 63 or not _QUALIFIED_NAME.fullmatch(name):
        raise ValueError(
            f"{key!r} is not a valid key: the name part must be 1-63 letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit"
        )
    return key


def check_label_value(value: str) -> str:
    """A label value: at most 63 characters of letters, digits, ``-_.``."""
    if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid label value: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return value


def check_image_repository(value: str) -> str:
    """An image repository without tag or digest, e.g. ``registry.example.com/mirror/runner``."""
    if len(value) > IMAGE_MAX or not _IMAGE_REPOSITORY.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an image repository (expected [registry[:port]/]path in "
            "lower case, no spaces, no tag)"
        )
    return value


def check_image(value: str) -> str:
    """A pinned container image reference: a tag other than ``latest``, or a digest."""
    match = _IMAGE.fullmatch(value)
    if not match or len(match.group("name")) > IMAGE_MAX:
        raise ValueError(
            f"{value!r} is not a valid image reference "
            "(expected [registry/]name:tag or name@sha256:digest)"
        )
    tag, digest = match.group("tag"), match.group("digest")
    if not tag and not digest:
        raise ValueError(f"{value!r} has no tag: pin a version, e.g. {value}:1.2.3")
    if tag == "latest" and not digest:
        raise ValueError(f"{value!r} uses the moving tag 'latest': pin a version instead")
    return value


def check_host(value: str) -> str:
    """A host name or IPv4 address, no port (``gitlab.example.com``)."""
    if len(value) > 253 or not HOST.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a host name: use letters, digits, '.' and '-' (no scheme, "
            "port, path or '_'), e.g. gitlab.example.com"
        )
    return value


def check_host_port(value: str) -> str:
    """``host`` or ``host:port`` (a registry server)."""
    match = HOST_PORT.fullmatch(value)
    if not match or len(match["host"]) > 253 or not 1 <= int(match["port"] or 1) <= 65535:
        raise ValueError(
            f"{value!r} is not host[:port]: use letters, digits, '.' and '-' (no scheme, "
            "path or '_') and a port from 1 to 65535, e.g. registry.example.com:5000"
        )
    return value


def check_runner_tag(value: str) -> str:
    """A runner tag the CI templates can carry: ASCII letters, digits, spaces, ``_.:/@+=-``."""
    if len(value) > 255 or not RUNNER_TAG.fullmatch(value):
        raise ValueError(
            f"tag {value!r}: use at most 255 ASCII letters, digits, spaces and _.:/@+=- "
            "(no comma; not starting or ending with a space): the CI templates write it "
            "into YAML and shell"
        )
    return value


def check_semver(value: str) -> str:
    """``X.Y.Z`` with no leading ``v``."""
    if not _SEMVER.fullmatch(value):
        raise ValueError(f"{value!r} is not a version of the form X.Y.Z (e.g. 18.11.4)")
    return value


def check_group_path(value: str) -> str:
    """A GitLab group full path: ``group`` or ``group/subgroup``."""
    if not value:
        raise ValueError("is empty: give the group's full path, e.g. mygroup or mygroup/sub")
    if "://" in value:
        path = value.split("://", 1)[1].partition("/")[2].strip("/") or "mygroup"
        raise ValueError(f"{value!r} is a URL: give the group's full path, e.g. {path}")
    if value.startswith("/") or value.endswith("/") or "//" in value:
        raise ValueError(
            f"{value!r} has a leading, trailing or double '/': give the full path as "
            f"GitLab shows it, e.g. {value.strip('/').replace('//', '/') or 'mygroup'}"
        )
    for segment in value.split("/"):
        if (
            not _GROUP_SEGMENT.fullmatch(segment)
            or segment.endswith((".git", ".atom", "."))
            or len(segment) > 255
        ):
            raise ValueError(
                f"{value!r} is not a GitLab group path: each part may hold letters, digits, "
                "'_', '-' and '.', and must not end in '.', '.git' or '.atom'"
            )
    return value


def check_env_name(value: str) -> str:
    """The name of an environment variable."""
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not an environment variable name (e.g. REGISTRY_PASSWORD)")
    return value


def parse_duration(value: str) -> timedelta:
    """A duration such as ``7d``, ``36h``, ``1w2d`` or ``90m``."""
    match = _DURATION.fullmatch(value.strip()) if value.strip() else None
    if not match or not any(match.groupdict().values()):
        raise ValueError(f"{value!r} is not a duration (examples: 7d, 36h, 1w, 90m)")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    try:
        return timedelta(
            weeks=parts.get("w", 0),
            days=parts.get("d", 0),
            hours=parts.get("h", 0),
            minutes=parts.get("m", 0),
        )
    except OverflowError:
        raise ValueError(
            f"{value!r} is longer than any duration this tool handles "
            f"(at most {_DURATION_MAX.days} days): give a real one, e.g. 7d"
        ) from None


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {d: i for i, d in enumerate(_WEEKDAYS)}),
)


def _cron_number(token: str, low: int, high: int, names: dict[str, int], field: str) -> int:
    # ASCII digits only: GitLab's parser (fugit) reads Ruby's \d, which is ASCII.
    number = int(token) if _ASCII_NUMBER.fullmatch(token) else names.get(token.lower())
    if number is None or not low <= number <= high:
        raise ValueError(f"{field} {token!r} is out of range {low}-{high}")
    return number


def check_cron(value: str) -> str:
    """A five-field cron expression that GitLab's pipeline schedules accept (``0 3 * * *``).

    GitLab parses ``"<cron> <timezone>"`` with fugit (Gitlab::Ci::CronParser): fields are
    separated by ASCII spaces or tabs, numbers are ASCII digits, a step has one or two
    digits. This check accepts a subset of that (no ``L``, ``#`` or seconds field), so
    whatever passes here GitLab takes too.
    """
    fields = _CRON_SEPARATOR.split(value)
    if len(fields) != 5 or not all(fields):
        raise ValueError(
            f"{value!r} is not a cron expression: it needs 5 fields separated by spaces "
            "(minute hour day-of-month month day-of-week), e.g. '0 3 * * *'"
        )
    for text, (field, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for item in text.split(","):
            base, slash, step = item.partition("/")
            if slash and not (_CRON_STEP.fullmatch(step) and 1 <= int(step) <= high):
                raise ValueError(
                    f"{value!r} is not a valid cron expression: {field} step {step!r} "
                    f"must be a number from 1 to {high}"
                )
            if base == "*":
                continue
            start, _, end = base.partition("-")
            try:
                first = _cron_number(start, low, high, names, field)
                if end and _cron_number(end, low, high, names, field) < first:
                    raise ValueError(f"{field} range {base!r} runs backwards")
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a valid cron expression: {exc}") from None
    return value


def check_timezone(value: str) -> str:
    """An IANA time zone name, as GitLab's schedules take it (``UTC``, ``Asia/Shanghai``).

    GitLab hands ``"<cron> <timezone>"`` to fugit, whose grammar takes a zone name of the
    form ``Area[/Location[/Sub]]`` (letters, digits and ``_``); the name must also be in the
    time zone database. Rails' own names ("Beijing") are left out: write the IANA name.
    """
    if not _TIMEZONE.fullmatch(value) or value not in _zone_names():
        raise ValueError(
            f"{value!r} is not an IANA time zone name GitLab schedules accept: "
            "write one like UTC, Europe/Berlin or Asia/Shanghai"
        )
    return value


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


_TIMEOUT = re.compile(r"(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?")
#: The longest --timeout: a day (a wait longer than that is not a wait).
TIMEOUT_MAX = 24 * 3600


def parse_timeout(value: str) -> int:
    """``--timeout`` in seconds: ``90s``, ``5m``, ``1h``, ``1h30m`` (as kubectl and helm take
    it), or plain seconds (``600``)."""
    text = value.strip()
    if text.isascii() and text.isdigit():
        seconds = int(text)
    else:
        match = _TIMEOUT.fullmatch(text) if text else None
        if not match or not any(match.groupdict().values()):
            raise ValueError(
                f"{value!r} is not a duration (examples: 90s, 5m, 1h, 1h30m; or seconds: 600)"
            )
        parts = {k: int(v) for k, v in match.groupdict().items() if v}
        seconds = parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)
    if seconds < 1:
        raise ValueError(f"{value!r} is shorter than 1s")
    if seconds > TIMEOUT_MAX:
        raise ValueError(f"{value!r} is longer than {format_timeout(TIMEOUT_MAX)}, the longest")
    return seconds


def format_timeout(seconds: float) -> str:
    """``90s``, ``5m``, ``1h30m``: a timeout as the user would have written it."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")
