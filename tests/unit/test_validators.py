"""Table tests of the value checks: what each accepts and refuses, the edges included.

Every pattern must take the whole value (``$`` admits a trailing newline), digits are ASCII
(``\\d`` and ``str.isdigit`` admit ``١٨``), and numbers that overflow a float or a timedelta
are refused with a message (never an OverflowError, which would be exit 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bootstrap import validators as v
from tests.conftest import make_settings

ARABIC_18 = "\u0661\u0668"  # ١٨: digits to str.isdigit and \d, not to Kubernetes or GitLab
FULLWIDTH_3 = "\uff13"  # ３

REFUSED: list[tuple[Callable[[str], Any], str]] = [
    (v.check_dns_label, "gitlab-runner\n"),
    (v.check_dns_label, "a" * 64),
    (v.check_volume_name, "cache\n"),
    (v.check_dns_subdomain, "registry-auth\n"),
    (v.check_label_key, "app\n"),
    (v.check_label_value, "eci\n"),
    (v.check_env_name, "REGISTRY_PASSWORD\n"),
    (v.check_semver, "18.11.4\n"),
    (v.check_semver, f"{ARABIC_18}.11.4"),
    (v.check_group_path, "mygroup\n"),
    (v.check_quantity, "2\n"),
    (v.check_quantity, f"{ARABIC_18}Gi"),
    (v.check_quantity, "1e400"),
    (v.check_quantity, "9300000000000000000"),
    (v.check_quantity, "8Ei"),
    (v.check_quantity, "1e99999999999999999999"),
    (v.check_image, "alpine:3.21.3\n"),
    (v.check_image, f"gitlab-runner:v{ARABIC_18}.11.4"),
    (v.check_image, "registry.example.com:５000/app:1"),
    (v.check_image, "r/" + "a" * 255 + ":1"),
    (v.check_image_repository, " x "),
    (v.check_image_repository, "registry.example.com/runner:v1"),
    (v.check_image_repository, "Registry/UPPER"),
    (v.check_image_repository, "runner\n"),
    (v.check_cron, "0 3 * * *\n"),
    (v.check_cron, f"0 {FULLWIDTH_3} * * *"),
    (v.check_cron, f"*/{ARABIC_18} * * * *"),
    (v.check_cron, "0\u00a03 * * *"),  # a no-break space: fugit splits on [ \t] only
    (v.check_cron, " 0 3 * * *"),
    (v.check_cron, "*/100 * * * *"),
    (v.check_cron, "*/60 * * * *"),
    (v.check_timezone, "UTC\n"),
    (v.check_timezone, "Mars/Olympus_Mons"),
    (v.check_timezone, "Beijing"),  # a Rails name: GitLab maps it, we ask for the IANA one
    (v.check_timezone, "Etc/GMT+8"),  # fugit's zone grammar has no '+'
    (v.check_timezone, "posix/UTC"),
    (v.check_timezone, "../../etc/passwd"),
]

ACCEPTED: list[tuple[Callable[[str], Any], str]] = [
    (v.check_dns_label, "a" * 63),
    (v.check_quantity, "1e18"),
    (v.check_quantity, "7Ei"),
    (v.check_quantity, "500m"),
    (v.check_image, "registry.example.com:5000/app:v18.11.4"),
    (v.check_image_repository, "registry.example.com:5000/mirror/gitlab-runner"),
    (v.check_cron, "0 3 * * *"),
    (v.check_cron, "0\t3 * * *"),
    (v.check_cron, "*/59 * * * *"),
    (v.check_timezone, "UTC"),
    (v.check_timezone, "Asia/Shanghai"),
    (v.check_timezone, "America/Argentina/Buenos_Aires"),
]


@pytest.mark.parametrize(("check", "value"), REFUSED, ids=lambda x: getattr(x, "__name__", x))
def test_refused(check: Callable[[str], Any], value: str) -> None:
    with pytest.raises(ValueError, match=r"\S") as caught:
        check(value)
    assert repr(value) in str(caught.value) or "out of range" in str(caught.value)


@pytest.mark.parametrize(("check", "value"), ACCEPTED, ids=lambda x: getattr(x, "__name__", x))
def test_accepted(check: Callable[[str], Any], value: str) -> None:
    assert check(value) == value


@pytest.mark.parametrize("value", ["99999999999999w", "9999999999999999999d", "1" * 30 + "m"])
def test_a_duration_too_long_for_a_timedelta_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="longer than any duration"):
        v.parse_duration(value)


@pytest.mark.parametrize("value", [f"{ARABIC_18}d", f"1{ARABIC_18}h", "7 d"])
def test_a_duration_takes_ascii_digits_only(value: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        v.parse_duration(value)


def test_huge_quantities_compare_without_overflow() -> None:
    assert v.quantity_value("1e-4000") == 0.0
    assert v.quantity_value("7Ei") == 7 * 2.0**60


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("runner", "run_as_user", 2**31, "less than or equal to 2147483647"),
        ("runner", "run_as_user", 2**63, "less than or equal to 2147483647"),
        ("runner", "image_repository", " x ", "not an image repository"),
        ("runner", "helper_image_repository", "mirror/helper:v1", "not an image repository"),
        ("kubernetes", "namespace", "gitlab-runner\n", "DNS-1123 label"),
        ("rotation", "cron", f"0 {FULLWIDTH_3} * * *", "not a valid cron"),
        ("rotation", "timezone", "Mars/Olympus_Mons", "IANA time zone"),
        ("executor", "cpu_limit", "1e400", "larger than any Kubernetes quantity"),
        ("rotation", "rotate_before", "99999999999999w", "longer than any duration"),
    ],
)
def test_settings_refuse(section: str, key: str, value: object, message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        make_settings(**{section: {key: value}})


def test_the_highest_uid_is_accepted() -> None:
    assert make_settings(runner={"run_as_user": 2**31 - 1}).runner.run_as_user == 2**31 - 1


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("eci", "spot_price_limit", float("inf"), "finite number"),
        ("gitlab", "maximum_timeout", 2**31, "less than or equal to 2147483647"),
    ],
)
def test_numbers_past_what_eci_or_gitlab_take(
    section: str, key: str, value: object, message: str
) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        make_settings(**{section: {key: value}})
