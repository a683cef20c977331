"""The CLI as a user meets it: help, version, render to stdout and to a directory."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bootstrap import __version__
from bootstrap.render.credentials import PLACEHOLDER_TOKEN
from tests.conftest import REPO, run_cli


def test_help_lists_only_built_commands() -> None:
    result = run_cli(["--help"])
    assert result.exit_code == 0
    assert "render" in result.stdout
    assert "Exit codes:" in result.stdout
    assert "_BOOTSTRAP_COMPLETE" in result.stdout


@pytest.mark.parametrize("command", ["render", "schema", "status", "uninstall", "doctor"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = run_cli([command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.stdout


def test_version() -> None:
    result = run_cli(["--version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_help_imports_neither_kubernetes_nor_gitlab_nor_pydantic() -> None:
    code = (
        "import sys\n"
        "from bootstrap.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('kubernetes', 'gitlab', 'pydantic', 'yaml', 'jinja2') "
        "if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert "HEAVY=\n" in out, out


def test_python_dash_m_works() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bootstrap", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in out.stdout


def test_render_with_no_config_writes_yaml_to_stdout(workdir: Path) -> None:
    result = run_cli(["render", "--group", "mygroup"])
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    kinds = [d["kind"] for d in docs]
    assert kinds[0] == "Namespace"
    assert kinds[-1] == "Deployment"
    assert "ImageCache" in kinds  # the ECI default
    assert list(workdir.iterdir()) == []


def test_render_out_dir_writes_one_file_per_object(workdir: Path) -> None:
    out = workdir / "deploy"
    result = run_cli(["render", "--group", "mygroup", "--out", str(out)])
    assert result.exit_code == 0, result.output
    kustomization = yaml.safe_load((out / "kustomization.yaml").read_text())
    resources = kustomization["resources"]
    assert "deployment-gitlab-runner.yaml" in resources
    assert "secret-gitlab-runner-config.yaml" in resources
    for name in resources:
        doc = yaml.safe_load((out / name).read_text())
        assert name == f"{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"
    config = (out / "config.toml").read_text()
    assert PLACEHOLDER_TOKEN in config
    assert stat.S_IMODE((out / "config.toml").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "secret-gitlab-runner-config.yaml").stat().st_mode) == 0o600
    assert (out / "ci-templates" / "README.md").is_file()
    assert any((out / "ci-templates" / "templates").glob("*.yml"))


def test_render_is_stable_and_prunes_what_it_no_longer_renders(workdir: Path) -> None:
    out = workdir / "deploy"
    config = workdir / "bootstrap.toml"
    config.write_text('[registry]\nserver = "r.example.com"\nusername = "u"\npassword_env = "P"\n')
    assert run_cli(["render", "--group", "g", "--out", str(out)]).exit_code == 0
    first = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert "secret-registry-auth-secret.yaml" in first
    config.write_text("")
    result = run_cli(["render", "--group", "g", "--out", str(out)])
    assert result.exit_code == 0
    assert "Removed secret-registry-auth-secret.yaml" in result.stderr
    assert not (out / "secret-registry-auth-secret.yaml").exists()
    config.write_text('[registry]\nserver = "r.example.com"\nusername = "u"\npassword_env = "P"\n')
    assert run_cli(["render", "--group", "g", "--out", str(out)]).exit_code == 0
    again = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert again == first, "the same settings must render byte-identical files"


def test_real_kubectl_builds_the_kustomization(workdir: Path) -> None:
    out = workdir / "deploy"
    assert run_cli(["render", "--group", "mygroup", "--out", str(out)]).exit_code == 0
    built = subprocess.run(
        ["kubectl", "kustomize", str(out)], capture_output=True, text=True, check=True
    ).stdout
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(built) if d)
    listed = yaml.safe_load((out / "kustomization.yaml").read_text())["resources"]
    assert len(kinds) == len(listed)
    assert "Deployment" in kinds


def test_schema_command_prints_the_json_schema() -> None:
    result = run_cli(["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "bootstrap.toml"
    assert "gitlab" in schema["properties"]
    assert schema["additionalProperties"] is False


def _bug(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom near glpat-leaked-token-0123456789")


def test_an_unexpected_exception_is_one_line_saying_it_is_a_bug(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bootstrap.render

    monkeypatch.setattr(bootstrap.render, "render", _bug)
    result = run_cli(["render", "--group", "g"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "RuntimeError" not in result.output
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "a bug in bootstrap" in line
    assert "--debug" in line


def test_debug_shows_the_traceback_of_a_bug_redacted(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bootstrap.render

    monkeypatch.setattr(bootstrap.render, "render", _bug)
    result = run_cli(["render", "--group", "g", "--debug"])
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert "RuntimeError: boom" in result.stderr
    assert "glpat-leaked-token-0123456789" not in result.output


def test_verbose_says_which_settings_file_and_where_each_value_came_from(workdir: Path) -> None:
    (workdir / "bootstrap.toml").write_text('[kubernetes]\ncontext = "prod"\n')
    result = run_cli(
        ["-v", "render", "--group", "g"], env={"GITLAB_URL": "https://gitlab.example.com"}
    )
    assert result.exit_code == 0, result.output
    assert "settings file: bootstrap.toml (from ./bootstrap.toml" in result.stderr
    assert "GitLab: https://gitlab.example.com (from $GITLAB_URL)" in result.stderr
    assert "context: prod (from kubernetes.context in bootstrap.toml)" in result.stderr
    after = run_cli(["render", "--group", "g", "--verbose", "--config", "bootstrap.toml"])
    assert "settings file: bootstrap.toml (from --config)" in after.stderr
    quiet = run_cli(["render", "--group", "g"])
    assert "settings file:" not in quiet.stderr


@pytest.mark.parametrize(
    ("command", "flags"),
    [
        (["render"], ["--kubeconfig", "kube.yaml"]),
        (["templates", "publish"], ["--kubeconfig", "kube.yaml"]),
        (["templates", "publish"], ["--context", "prod"]),
        (["templates", "publish"], ["--namespace", "ci"]),
    ],
)
def test_commands_refuse_the_cluster_flags_they_would_ignore(
    workdir: Path, command: list[str], flags: list[str]
) -> None:
    result = run_cli([*command, "--group", "g", *flags])
    assert result.exit_code == 2
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert f"does not use {flags[0]}" in error
    assert f"drop {flags[0]}" in result.stderr


def _complete(args: list[str], incomplete: str) -> list[tuple[str, str]]:
    from click.shell_completion import BashComplete

    from bootstrap.cli import cli

    completion = BashComplete(cli, {}, "bootstrap", "_BOOTSTRAP_COMPLETE")
    return [(item.type, item.value) for item in completion.get_completions(args, incomplete)]


def test_context_completes_from_every_kubeconfig_file(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def kubeconfig(name: str, contexts: list[str]) -> Path:
        path = workdir / name
        entries = ", ".join(f"{{name: {c}, context: {{cluster: c, user: u}}}}" for c in contexts)
        path.write_text(f"apiVersion: v1\ncontexts: [{entries}]\n")
        return path

    first, second = kubeconfig("a", ["prod", "dev"]), kubeconfig("b", ["prod", "staging"])
    monkeypatch.setenv("KUBECONFIG", f"{first}:{second}")
    assert _complete(["status", "--context"], "") == [
        ("plain", "prod"),
        ("plain", "dev"),
        ("plain", "staging"),
    ]
    assert _complete(["status", "--kubeconfig", str(second), "--context"], "st") == [
        ("plain", "staging")
    ]
    monkeypatch.setenv("KUBECONFIG", str(workdir / "missing"))
    assert _complete(["status", "--context"], "") == []


def test_paths_complete_as_files_and_the_out_dir_as_directories() -> None:
    assert _complete(["install", "--kubeconfig"], "") == [("file", "")]
    assert _complete(["doctor", "--config"], "") == [("file", "")]
    assert _complete(["render", "--out"], "") == [("dir", "")]


def test_render_takes_context_as_the_cluster_name(workdir: Path) -> None:
    # Offline, the context is only a name: it names the cluster in the runner's system id.
    plain = run_cli(["render", "--group", "g"])
    named = run_cli(["render", "--group", "g", "--context", "prod-hz"])
    assert named.exit_code == 0, named.output
    assert plain.stdout != named.stdout
