"""Kubeconfig errors name where the value came from: $KUBECONFIG, --kubeconfig, a variable,
or the key in the settings file — never a flag the user did not type."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

TOKEN = {"GITLAB_TOKEN": "glpat-0123456789abcdefghij", "GITLAB_URL": "http://127.0.0.1:9"}


@pytest.mark.parametrize(
    ("where", "named"),
    [
        ("flag", "--kubeconfig nonexistent: no such file"),
        ("env", "KUBECONFIG=nonexistent: no such file"),
        ("variable", "$BOOTSTRAP_KUBERNETES__KUBECONFIG=nonexistent: no such file"),
        ("file", "kubernetes.kubeconfig in bootstrap.toml = nonexistent: no such file"),
    ],
)
def test_a_missing_kubeconfig_is_named_by_its_source(workdir: Path, where: str, named: str) -> None:
    args = ["status", "--group", "g"]
    env = dict(TOKEN)
    if where == "flag":
        args += ["--kubeconfig", "nonexistent"]
    elif where == "env":
        env["KUBECONFIG"] = "nonexistent"
    elif where == "variable":
        env["BOOTSTRAP_KUBERNETES__KUBECONFIG"] = "nonexistent"
    else:
        (workdir / "bootstrap.toml").write_text('[kubernetes]\nkubeconfig = "nonexistent"\n')
    result = run_cli(args, env=env)
    assert result.exit_code == 2, result.output
    assert f"error: {named}" in result.stderr
    if where != "flag":
        assert "--kubeconfig nonexistent" not in result.stderr


def test_an_unknown_context_from_the_settings_file_names_the_key(workdir: Path) -> None:
    kubeconfig = workdir / "kube"
    kubeconfig.write_text(
        "apiVersion: v1\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: real, context: {cluster: c, user: u}}]\n"
    )
    (workdir / "bootstrap.toml").write_text('[kubernetes]\ncontext = "typo"\n')
    result = run_cli(["status", "--group", "g"], env={**TOKEN, "KUBECONFIG": str(kubeconfig)})
    assert result.exit_code == 2
    assert (
        f"error: kubernetes.context in bootstrap.toml = typo: no such context in "
        f"KUBECONFIG={kubeconfig}" in result.stderr
    )
    assert "hint: contexts there: real" in result.stderr
