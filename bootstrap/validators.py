"""Checks for the value formats the settings use: quantities, DNS names, images, cron, durations.

Each ``check_*`` function returns the (possibly normalised) value or raises ``ValueError``
with a message that says what is wrong and what would be right. The settings model wraps
them so every message is prefixed with the key it belongs to.
"""

from __future__ import annotations

import re
from datetime import timedelta

# Kubernetes resource.Quantity: a signed decimal number with an optional binary (Ki..Ei),
# decimal (m, k, M..E) or exponent suffix.
_QUANTITY = re.compile(r"^(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
# Label/annotation keys: optional DNS subdomain prefix, then a name of 1-63 characters.
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# Docker image reference (distribution/reference grammar, simplified but strict enough).
_IMAGE = re.compile(
    r"^(?P<name>(?:(?:[a-zA-Z0-9-]+\.)*[a-zA-Z0-9-]+(?::\d+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
_GROUP_SEGMENT = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$")
_DURATION = re.compile(r"^(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_quantity(value: str) -> str:
    """A non-negative Kubernetes quantity such as ``500m``, ``2`` or ``4Gi``."""
    if not _QUANTITY.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (examples: 500m, 2, 1.5, 4Gi)")
    return value


def quantity_value(value: str) -> float:
    """The numeric value of a quantity (cores or bytes), for comparing requests and limits."""
    match = _QUANTITY.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    number = float(match.group(1))
    suffix = match.group(3) or ""
    binary: dict[str, float] = {
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
        "Pi": 2**50,
        "Ei": 2**60,
    }
    decimal: dict[str, float] = {
        "m": 1e-3,
        "": 1.0,
        "k": 1e3,
        "M": 1e6,
        "G": 1e9,
        "T": 1e12,
        "P": 1e15,
        "E": 1e18,
    }
    if suffix in binary:
        return number * binary[suffix]
    if suffix in decimal:
        return number * decimal[suffix]
    return number * 10.0 ** int(suffix[1:])


def check_dns_label(value: str) -> str:
    """A DNS-1123 label: namespaces and most object names."""
    if len(value) > 63 or not _DNS1123_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a valid DNS-1123 label: use at most 63 lower-case letters, "
            "digits and '-', starting and ending with a letter or digit"
        )
    return value


def check_volume_name(value: str) -> str:
    """A name that gitlab-runner also uses as a job pod volume name: a DNS-1123 label."""
    if len(value) > 63 or not _DNS1123_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a valid DNS-1123 label, and gitlab-runner uses it as a job pod "
            "volume name, which must be one (the API server would refuse every job pod): use "
            "at most 63 lower-case letters, digits and '-' (no '.'), starting and ending with "
            "a letter or digit"
        )
    return value


def check_dns_subdomain(value: str) -> str:
    """A DNS-1123 subdomain: Secret, PVC and ServiceAccount names."""
    if len(value) > 253 or not _DNS1123_SUBDOMAIN.match(value):
        raise ValueError(
            f"{value!r} is not a valid Kubernetes object name: use lower-case letters, digits, "
            "'-' and '.', starting and ending with a letter or digit"
        )
    return value


def check_label_key(key: str) -> str:
    """A label or annotation key: ``[prefix/]name``."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        raise ValueError(f"{key!r} has an invalid prefix: it must be a DNS subdomain")
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        raise ValueError(
            f"{key!r} is not a valid key: the name part must be 1-63 letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit"
        )
    return key


def check_label_value(value: str) -> str:
    """A label value: at most 63 characters of letters, digits, ``-_.``."""
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise ValueError(
            f"{value!r} is not a valid label value: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return value


def check_image(value: str) -> str:
    """A pinned container image reference: a tag other than ``latest``, or a digest."""
    match = _IMAGE.match(value)
    if not match:
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


def check_semver(value: str) -> str:
    """``X.Y.Z`` with no leading ``v``."""
    if not _SEMVER.match(value):
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
            not _GROUP_SEGMENT.match(segment)
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
    if not _ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not an environment variable name (e.g. REGISTRY_PASSWORD)")
    return value


def parse_duration(value: str) -> timedelta:
    """A duration such as ``7d``, ``36h``, ``1w2d`` or ``90m``."""
    match = _DURATION.match(value.strip()) if value.strip() else None
    if not match or not any(match.groupdict().values()):
        raise ValueError(f"{value!r} is not a duration (examples: 7d, 36h, 1w, 90m)")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    return timedelta(
        weeks=parts.get("w", 0),
        days=parts.get("d", 0),
        hours=parts.get("h", 0),
        minutes=parts.get("m", 0),
    )


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
    number = names.get(token.lower()) if not token.isdigit() else int(token)
    if number is None or not low <= number <= high:
        raise ValueError(f"{field} {token!r} is out of range {low}-{high}")
    return number


def check_cron(value: str) -> str:
    """A five-field cron expression as GitLab pipeline schedules accept it (e.g. ``0 3 * * *``)."""
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(
            f"{value!r} is not a cron expression: it needs 5 fields "
            "(minute hour day-of-month month day-of-week), e.g. '0 3 * * *'"
        )
    for text, (field, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for item in text.split(","):
            base, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                raise ValueError(
                    f"{value!r} is not a valid cron expression: {field} step {step!r} "
                    "must be a positive number"
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
