"""The bad-input corpus: each case exits with its code, names the key and fix, writes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import DATA, run_cli

CORPUS = DATA / "bad_inputs"


def _cases(files: str = "[!i]*.yaml") -> list[Any]:
    cases = []
    for source in sorted(CORPUS.glob(files)):
        for case in yaml.safe_load(source.read_text()):
            cases.append(pytest.param(case, id=f"{source.stem}:{case['id']}"))
    return cases


CASES = _cases()


INSTALL_CASES = _cases("install.yaml")


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) + len(INSTALL_CASES) >= 40
    assert len(INSTALL_CASES) >= 25


def config_args(case: dict[str, Any], workdir: Path) -> list[str]:
    """``--config FILE`` for a case that brings a config file (text, raw bytes or a directory)."""
    if not ("config" in case or "config_hex" in case or case.get("config_is_dir")):
        return []
    config = workdir / "bad.toml"
    if case.get("config_is_dir"):
        config.mkdir()
    elif "config_hex" in case:
        config.write_bytes(bytes.fromhex(case["config_hex"]))
    else:
        config.write_text(case["config"])
    return ["--config", str(config)]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_refused_before_anything_is_written(
    case: dict[str, Any], workdir: Path
) -> None:
    args = ["render", *case.get("args", ["--group", "mygroup"])]
    args += config_args(case, workdir)
    if case.get("make_file"):
        (workdir / case["make_file"]).write_text("keep me\n")
    if "--out" not in args:
        args += ["--out", str(workdir / "out")]
    before = _snapshot(workdir)

    result = run_cli(args, env=case.get("env"))

    assert result.exit_code == case["exit"], result.output
    for fragment in case["expect"]:
        assert fragment in result.output, f"{fragment!r} not in {result.output!r}"
    assert "Traceback" not in result.output
    assert _snapshot(workdir) == before, "a refused run must write nothing"
    assert not (workdir / "out").exists()
