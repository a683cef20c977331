"""Settings: precedence, defaults, the JSON Schema, and messages that name the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bootstrap.config import json_schema, load_settings
from bootstrap.errors import ConfigErrors, InvalidInput
from bootstrap.validators import check_cron, check_image, parse_duration
from tests.conftest import REPO, run_cli


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bootstrap.toml"
    path.write_text(text)
    return str(path)


def test_defaults_need_no_file(workdir: Path) -> None:
    loaded = load_settings(environ={})
    assert loaded.config_file is None
    settings = loaded.settings
    assert settings.profile == "eci"
    assert settings.kubernetes.namespace == "gitlab-runner"
    assert settings.runner.image.endswith(":alpine-v18.11.4")  # the smaller flavour
    assert settings.runner.helper_image.endswith(":x86_64-v18.11.4")


def test_precedence_is_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        '[kubernetes]\nnamespace = "from-file"\n[runner]\nconcurrent = 4\ncheck_interval = 7\n',
    )
    env = {"BOOTSTRAP_NAMESPACE": "from-env", "BOOTSTRAP_RUNNER__CONCURRENT": "6"}
    loaded = load_settings(config, environ=env, flags={"kubernetes.namespace": "from-flag"})
    assert loaded.settings.kubernetes.namespace == "from-flag"
    assert loaded.settings.runner.concurrent == 6  # env beats file
    assert loaded.settings.runner.check_interval == 7  # file beats default
    assert loaded.settings.runner.log_level == "info"  # default
    loaded = load_settings(config, environ=env)
    assert loaded.settings.kubernetes.namespace == "from-env"


def test_env_values_parse_as_toml_and_lists_split_on_commas(tmp_path: Path) -> None:
    env = {
        "BOOTSTRAP_GITLAB__TAGS": "eci,build",
        "BOOTSTRAP_GITLAB__RUN_UNTAGGED": "true",
        "BOOTSTRAP_EXECUTOR__NODE_SELECTOR": '{ "kubernetes.io/arch" = "arm64" }',
        "BOOTSTRAP_RUNNER__HELPER_ARCH": "arm64",  # an arm64 selector needs the arm64 helper
        "GITLAB_URL": "https://git.example.com/",
    }
    settings = load_settings(environ=env).settings
    assert settings.gitlab.tags == ["build", "eci"]
    assert settings.gitlab.run_untagged is True
    assert settings.executor.node_selector == {"kubernetes.io/arch": "arm64"}
    assert settings.gitlab.url == "https://git.example.com"  # trailing slash normalised


def test_default_file_is_found_in_the_working_directory(workdir: Path) -> None:
    (workdir / "bootstrap.toml").write_text('[gitlab]\ngroup = "platform/ci"\n')
    loaded = load_settings(environ={})
    assert loaded.settings.gitlab.group == "platform/ci"
    assert loaded.config_file == Path("bootstrap.toml")


def test_all_errors_are_reported_at_once(tmp_path: Path) -> None:
    config = _write(
        tmp_path, '[runner]\nconcurrent = 0\nlog_level = "loud"\n[executor]\ncpu_limit = "x"\n'
    )
    with pytest.raises(ConfigErrors) as info:
        load_settings(config, environ={})
    assert len(info.value.errors) == 3
    assert info.value.exit_code == 2


def test_toml_errors_name_the_line(tmp_path: Path) -> None:
    config = _write(tmp_path, "[runner]\nconcurrent = = 3\n")
    with pytest.raises(InvalidInput, match="line 2"):
        load_settings(config, environ={})


def test_example_file_is_valid_and_complete() -> None:
    example = REPO / "examples" / "bootstrap.toml"
    settings = load_settings(str(example), environ={}).settings
    assert settings.gitlab.group
    text = example.read_text()
    schema = json_schema()
    for section, body in schema["properties"].items():
        ref = body.get("$ref", "")
        if not ref:
            assert f"{section} =" in text or f"# {section} =" in text
            continue
        assert f"[{section}]" in text, f"examples/bootstrap.toml lacks [{section}]"
        keys = schema["$defs"][ref.split("/")[-1]]["properties"]
        for key in keys:
            assert f"{key} =" in text, f"examples/bootstrap.toml lacks {section}.{key}"


def test_docs_list_every_key() -> None:
    doc = (REPO / "docs" / "configuration.md").read_text()
    schema = json_schema()
    for section, body in schema["properties"].items():
        ref = body.get("$ref", "")
        if not ref:
            assert f"`{section}`" in doc
            continue
        for key in schema["$defs"][ref.split("/")[-1]]["properties"]:
            assert f"`{section}.{key}`" in doc, f"docs/configuration.md lacks {section}.{key}"


def test_published_schema_matches_the_model() -> None:
    published = json.loads((REPO / "docs" / "bootstrap.schema.json").read_text())
    assert published == json_schema(), "run: bootstrap schema > docs/bootstrap.schema.json"


@pytest.mark.parametrize(
    ("expr", "ok"),
    [
        ("0 3 * * *", True),
        ("*/15 0-6 1,15 jan-jun mon-fri", True),
        ("0 0 * * 7", True),
        ("60 * * * *", False),
        ("0 0 0 * *", False),
        ("0 0 * 13 *", False),
        ("0 0 * * * *", False),
        ("*/0 * * * *", False),
        ("5-1 * * * *", False),
    ],
)
def test_cron(expr: str, ok: bool) -> None:
    if ok:
        assert check_cron(expr) == expr
    else:
        with pytest.raises(ValueError, match="cron"):
            check_cron(expr)


@pytest.mark.parametrize(
    ("image", "ok"),
    [
        ("alpine:3.21.3", True),
        ("registry.cn-hangzhou.aliyuncs.com/ns/app:1.0", True),
        ("localhost:5000/app:v1", True),
        ("ghcr.io/x/y@sha256:" + "a" * 64, True),
        ("alpine", False),
        ("alpine:latest", False),
        ("Alpine:3", False),
        ("alpine:3 ", False),
    ],
)
def test_images_must_be_pinned(image: str, ok: bool) -> None:
    if ok:
        assert check_image(image) == image
    else:
        with pytest.raises(ValueError, match=r"tag|image reference|latest"):
            check_image(image)


def test_durations() -> None:
    assert parse_duration("7d").days == 7
    assert parse_duration("1w2d").days == 9
    assert parse_duration("36h").total_seconds() == 36 * 3600
    for bad in ("", "7", "d", "7 days", "-1d"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        ("loop", "Too many levels of symbolic links"),
        ("through-a-file", "Not a directory"),
        ("overlong", "File name too long"),
    ],
)
def test_an_unreadable_config_path_is_invalid_input_not_a_crash(
    workdir: Path, make: str, reason: str
) -> None:
    if make == "loop":
        (workdir / "a.toml").symlink_to(workdir / "b.toml")
        (workdir / "b.toml").symlink_to(workdir / "a.toml")
        path = workdir / "a.toml"
    elif make == "through-a-file":
        (workdir / "plain").write_text("")
        path = workdir / "plain" / "bootstrap.toml"
    else:
        path = workdir / ("x" * 300 + ".toml")

    result = run_cli(["render", "--group", "g", "--config", str(path)])

    assert result.exit_code == 2, result.output
    assert f"--config {path}: cannot read it: {reason}" in result.stderr


def test_tilde_in_file_settings_is_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    config = tmp_path / "bootstrap.toml"
    config.write_text(
        '[gitlab]\ngroup = "g"\nca_file = "~/ca.pem"\n'
        '[kubernetes]\nkubeconfig = "~/.kube/ack"\n'
        '[git_ssh]\nprivate_key_file = "~/.ssh/id"\nknown_hosts_file = "~/.ssh/known_hosts"\n'
    )
    settings = load_settings(str(config), environ={}).settings
    assert settings.gitlab.ca_file == f"{tmp_path}/ca.pem"
    assert settings.kubernetes.kubeconfig == f"{tmp_path}/.kube/ack"
    assert settings.git_ssh.known_hosts_file == f"{tmp_path}/.ssh/known_hosts"
