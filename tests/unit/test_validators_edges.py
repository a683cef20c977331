"""The value checks at their edges: the longest value accepted and the shortest refused, the
suffixes' weights, timeouts as the user writes them (each test kills mutants the table tests
of test_validators.py let through)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bootstrap import validators as v

SUBDOMAIN_253 = ".".join(["a" * 63] * 3 + ["a" * 61])


def _refuses(check: Callable[[str], Any], value: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        check(value)


def test_a_quantity_is_read_with_its_suffixs_weight() -> None:
    weights = {"1Ki": 2**10, "1Mi": 2**20, "1Gi": 2**30, "1Ti": 2**40, "1Pi": 2**50}
    weights |= {"3": 3, "1k": 10**3, "1M": 10**6, "1G": 10**9, "1T": 10**12, "1P": 10**15}
    weights |= {"1E": 10**18, "1e3": 1000, "500m": 0.5}
    for text, value in weights.items():
        assert v.quantity_value(text) == value, text
    assert v.quantity_value("1e-99999") == 0


def test_a_quantity_may_reach_2_to_the_63_minus_1_and_no_further() -> None:
    assert v.check_quantity(str(2**63 - 1)) == str(2**63 - 1)
    _refuses(v.check_quantity, str(2**63))
    _refuses(v.check_quantity, "1e99999")
    _refuses(v.check_quantity, "1e10000")
    assert v.check_quantity("1e-10000") == "1e-10000"
    with pytest.raises(ValueError, match=r"examples: 500m, 2, 1\.5, 4Gi"):
        v.check_quantity("two")
    _refuses(v.quantity_value, "two")


def test_names_may_be_as_long_as_kubernetes_allows_and_no_longer() -> None:
    assert v.check_dns_subdomain(SUBDOMAIN_253) == SUBDOMAIN_253
    _refuses(v.check_dns_subdomain, SUBDOMAIN_253 + "a")
    _refuses(v.check_dns_subdomain, "Upper")
    assert v.check_volume_name("a" * 63) == "a" * 63
    _refuses(v.check_volume_name, "a" * 64)
    _refuses(v.check_volume_name, "a.b")
    assert v.check_label_value("a" * 63) == "a" * 63
    assert v.check_label_value("") == ""
    _refuses(v.check_label_value, "a" * 64)
    _refuses(v.check_label_value, "-a")


def test_a_label_key_has_an_optional_subdomain_prefix_and_a_short_name() -> None:
    assert v.check_label_key("a" * 63) == "a" * 63
    assert v.check_label_key(f"{SUBDOMAIN_253}/n") == f"{SUBDOMAIN_253}/n"
    _refuses(v.check_label_key, f"{SUBDOMAIN_253}a/n")
    _refuses(v.check_label_key, "Bad_Prefix/n")
    _refuses(v.check_label_key, "a" * 64)
    _refuses(v.check_label_key, "example.com/")
    _refuses(v.check_label_key, "-a")


def test_an_image_name_may_have_255_characters() -> None:
    name = "a" * 255
    assert v.check_image_repository(name) == name
    _refuses(v.check_image_repository, name + "a")
    assert v.check_image(name + ":v1") == name + ":v1"
    _refuses(v.check_image, name + "a:v1")


def test_hosts_and_registry_servers() -> None:
    host = SUBDOMAIN_253
    assert v.check_host(host) == host
    assert v.check_host("10.0.0.1") == "10.0.0.1"
    for bad in (host + "a", "https://x", "x:443", "a_b", "-x"):
        _refuses(v.check_host, bad)
    for good in ("registry.example.com", "registry.example.com:1", "r:65535", host + ":5000"):
        assert v.check_host_port(good) == good
    for bad in ("r:0", "r:65536", host + "a", host + "a:5000", "r:", "https://r", "r/p"):
        _refuses(v.check_host_port, bad)


def test_a_runner_tag_may_have_255_characters() -> None:
    assert v.check_runner_tag("t" * 255) == "t" * 255
    assert v.check_runner_tag("eci x") == "eci x"
    _refuses(v.check_runner_tag, "t" * 256)
    _refuses(v.check_runner_tag, "a,b")
    _refuses(v.check_runner_tag, " a")


def test_a_group_path_is_refused_with_the_path_it_should_have_been() -> None:
    assert v.check_group_path("g/sub.x") == "g/sub.x"
    assert v.check_group_path("g" * 255) == "g" * 255
    with pytest.raises(ValueError, match="is empty"):
        v.check_group_path("")
    with pytest.raises(ValueError, match=r"is a URL: give the group's full path, e\.g\. g/sub$"):
        v.check_group_path("https://gitlab.example.com/g/sub/")
    with pytest.raises(ValueError, match=r"e\.g\. g/a://b$"):
        v.check_group_path("https://h/g/a://b")
    with pytest.raises(ValueError, match=r"e\.g\. mygroup$"):
        v.check_group_path("https://gitlab.example.com")
    for bad in ("/g", "g/", "g//s"):
        with pytest.raises(ValueError, match="leading, trailing or double"):
            v.check_group_path(bad)
    for bad in ("g" * 256, "g/-x", "g/x.git", "g/x.", "g/x.atom"):
        with pytest.raises(ValueError, match="not a GitLab group path"):
            v.check_group_path(bad)


def test_an_environment_variable_name() -> None:
    assert v.check_env_name("REGISTRY_PASSWORD") == "REGISTRY_PASSWORD"
    _refuses(v.check_env_name, "1X")


def test_a_duration_counts_its_hours() -> None:
    assert v.parse_duration("1d2h30m").total_seconds() == 26 * 3600 + 30 * 60
    assert v.parse_duration("36h").total_seconds() == 36 * 3600
    assert v.parse_duration("7d").total_seconds() == 7 * 24 * 3600


def test_cron_fields_take_their_whole_range_and_no_more() -> None:
    for good in ("0 23 31 12 7", "0 0 1 1 0", "0 0 1 jan sun", "*/59 * * * *", "1-5 * * * *"):
        assert v.check_cron(good) == good
    for bad in ("0 24 * * *", "0 0 32 * *", "0 0 0 * *", "0 0 * 13 *", "0 0 * 0 *"):
        _refuses(v.check_cron, bad)
    for bad in ("0 0 * * 8", "*/0 * * * *", "*/60 * * * *", "5-1 * * * *", "0 0 * *"):
        _refuses(v.check_cron, bad)
    assert v.check_cron("5-5 * * * *") == "5-5 * * * *"
    assert v.check_cron("*/1 * * * *") == "*/1 * * * *"
    assert v.check_cron("0 0 1 dec *") == "0 0 1 dec *"


def test_a_timeout_is_read_and_shown_as_the_user_writes_it() -> None:
    for text, seconds in {"600": 600, "90s": 90, "5m": 300, "1h30m": 5400, "1h1m1s": 3661}.items():
        assert v.parse_timeout(text) == seconds, text
        assert v.parse_timeout(f" {text} ") == seconds
    assert v.parse_timeout("24h") == 24 * 3600
    assert v.parse_timeout("1s") == v.parse_timeout("1") == 1
    for bad in ("", "0", "0s", "1x", "h", "24h1s", "86401", "\u0661"):
        _refuses(v.parse_timeout, bad)
    with pytest.raises(ValueError, match="longer than 24h, the longest"):
        v.parse_timeout("25h")
    with pytest.raises(ValueError, match="shorter than 1s"):
        v.parse_timeout("0m")
    shown = {
        90: "1m30s",
        300: "5m",
        5400: "1h30m",
        3661: "1h1m1s",
        0: "0s",
        3600: "1h",
        59.9: "59s",
    }
    for seconds, text in shown.items():
        assert v.format_timeout(seconds) == text
