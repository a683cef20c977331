"""cache-gc: prune archives older than N days from a real runner cache tree."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from .helpers import job_environment, load_config, make_archive, resolve_job, run_job, tree

SHELLS = ["bash", "dash"]


def gc_job(rendered: dict[str, str], cache: Path, **inputs: Any) -> dict[str, Any]:
    config = load_config(rendered, "templates/cache-gc.yml", {"cache_dir": str(cache), **inputs})
    return resolve_job(config, "cache-gc")


def run_gc(job: dict[str, Any], shell: str = "bash", **overrides: str) -> Any:
    env = job_environment(job, {"CI_PROJECT_PATH": "mygroup/web"}, overrides)
    return run_job(job, env, interpreter=shell)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """A cache with old and fresh archives, nested keys, and files that are not archives."""
    root = tmp_path / "cache"
    make_archive(root / "mygroup/web/dist-1-protected", size=3000, age_days=30)
    make_archive(root / "mygroup/web/node-modules-non_protected", size=500, age_days=8)
    make_archive(root / "mygroup/web/node-modules-protected", size=700, age_days=3)
    make_archive(root / "mygroup/api/deps-protected", size=11, age_days=9)
    # key "a" is old, key "a/b" (a key with a slash) inside it is fresh
    make_archive(root / "mygroup/api/a", size=20, age_days=40)
    make_archive(root / "mygroup/api/a/b", size=30, age_days=1)
    make_archive(root / "other/x/k-protected", size=100, age_days=1)
    old_notes = root / "mygroup/web/notes.txt"
    old_notes.write_bytes(b"not an archive")
    os.utime(old_notes, (0, 0))
    outside = tmp_path / "outside.zip"
    outside.write_bytes(b"x" * 10)
    os.utime(outside, (0, 0))
    (root / "other/x/link").mkdir()
    (root / "other/x/link/cache.zip").symlink_to(outside)
    return root


OLD = {  # older than 7 days: path -> size
    "mygroup/web/dist-1-protected/cache.zip": 3000,
    "mygroup/web/node-modules-non_protected/cache.zip": 500,
    "mygroup/api/deps-protected/cache.zip": 11,
    "mygroup/api/a/cache.zip": 20,
}


@pytest.mark.parametrize("shell", SHELLS)
def test_removes_only_archives_older_than_n_days(
    rendered: dict[str, str], cache: Path, shell: str
) -> None:
    before = tree(cache)
    result = run_gc(gc_job(rendered, cache, max_age_days=7), shell)
    assert result.returncode == 0, result.stderr
    gone = before - tree(cache)
    assert {p for p in gone if p.endswith("cache.zip")} == set(OLD)
    # directories left empty go too; the one that still holds key a/b stays
    assert gone - set(OLD) == {
        "mygroup/web/dist-1-protected",
        "mygroup/web/node-modules-non_protected",
        "mygroup/api/deps-protected",
    }
    assert (cache / "mygroup/api/a/b/cache.zip").exists()
    assert (cache / "mygroup/web/notes.txt").exists()
    assert (cache / "other/x/link/cache.zip").is_symlink()
    assert (cache.parent / "outside.zip").exists()
    for path, size in OLD.items():
        assert re.search(
            rf"removed {re.escape(str(cache / path))} \({size} bytes, \d+ days old\)", result.stdout
        ), result.stdout
    assert f"4 archive(s) older than 7 day(s) removed under {cache}; 3531 bytes" in result.stdout


def test_dry_run_only_prints(rendered: dict[str, str], cache: Path) -> None:
    before = tree(cache)
    result = run_gc(gc_job(rendered, cache, max_age_days=7, dry_run="true"))
    assert result.returncode == 0, result.stderr
    assert tree(cache) == before
    assert result.stdout.count("would remove ") == 4
    assert "dry run: 4 archive(s) older than 7 day(s)" in result.stdout
    assert "3531 bytes (0.0 MiB) would be freed" in result.stdout


def test_n_days_decides(rendered: dict[str, str], cache: Path) -> None:
    result = run_gc(gc_job(rendered, cache, max_age_days=35))
    assert result.returncode == 0, result.stderr
    assert not (cache / "mygroup/api/a/cache.zip").exists()
    assert (cache / "mygroup/web/dist-1-protected/cache.zip").exists()
    assert "1 archive(s) older than 35 day(s)" in result.stdout


def test_subdir_limits_the_scan(rendered: dict[str, str], cache: Path) -> None:
    job = gc_job(rendered, cache, max_age_days=7, subdir="$CI_PROJECT_PATH")
    result = run_gc(job, "dash")
    assert result.returncode == 0, result.stderr
    assert not (cache / "mygroup/web/dist-1-protected").exists()
    assert (cache / "mygroup/api/deps-protected/cache.zip").exists()
    assert "2 archive(s)" in result.stdout


def test_the_default_job_runs_only_in_scheduled_pipelines(rendered: dict[str, str]) -> None:
    job = resolve_job(load_config(rendered, "templates/cache-gc.yml"), "cache-gc")
    assert job["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    assert job["variables"]["CACHE_GC_MAX_AGE_DAYS"] == 14
    assert job["variables"]["CACHE_GC_DRY_RUN"] == "false"
    assert job["variables"]["GIT_STRATEGY"] == "none"
    assert job["tags"] == ["eci"]
    assert job["cache"] == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"CACHE_GC_MAX_AGE_DAYS": "0"},
        {"CACHE_GC_MAX_AGE_DAYS": ""},
        {"CACHE_GC_MAX_AGE_DAYS": "7d"},
        {"CACHE_GC_DRY_RUN": "yes"},
        {"CACHE_GC_DIR": ""},
        {"CACHE_GC_DIR": "/"},
        {"CACHE_GC_DIR": "//"},
        {"CACHE_GC_DIR": "cache"},
        {"CACHE_GC_DIR": "{cache}/../cache"},
        {"CACHE_GC_DIR": "{cache}/missing"},
        {"CACHE_GC_SUBDIR": "../cache"},
        {"CACHE_GC_SUBDIR": "/mygroup"},
        {"CACHE_GC_SUBDIR": "mygroup/*"},
    ],
    ids=lambda overrides: ",".join(f"{k}={v}" for k, v in overrides.items()),
)
def test_bad_settings_remove_nothing(
    rendered: dict[str, str], cache: Path, overrides: dict[str, str]
) -> None:
    before = tree(cache)
    job = gc_job(rendered, cache, max_age_days=1)
    result = run_gc(job, **{key: value.format(cache=cache) for key, value in overrides.items()})
    assert result.returncode != 0, result.stdout
    assert "nothing removed" in result.stderr
    assert tree(cache) == before
