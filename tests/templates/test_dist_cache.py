"""dist-cache: cache config of the hidden jobs, and the cleanup on a real cache tree.

The tree is laid out as gitlab-runner lays out its local cache (see
``helpers.runner_cache_dir``); the cleanup must delete exactly the target
pipeline's archives, and nothing at all when a variable is empty or odd.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from .helpers import (
    expand,
    job_environment,
    load_config,
    make_archive,
    resolve_job,
    run_job,
    runner_cache_dir,
    tree,
)

SHELLS = ["bash", "dash"]
PROJECT = "mygroup/web"


def component(rendered: dict[str, str], cache: Path, **inputs: Any) -> dict[str, Any]:
    return load_config(rendered, "templates/dist-cache.yml", {"cache_dir": str(cache), **inputs})


def ci_variables(pipeline: str = "100", **extra: str) -> dict[str, str]:
    return {
        "CI_PIPELINE_ID": pipeline,
        "CI_PROJECT_PATH": PROJECT,
        "CI_PROJECT_NAMESPACE": "mygroup",
        "CI_PROJECT_NAME": "web",
        "CI_SERVER_URL": "https://gitlab.example.com",
        **extra,
    }


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    root = tmp_path / "cache"
    root.mkdir()
    return root


def populate(cache: Path, project: str = PROJECT) -> tuple[set[str], set[str]]:
    """Archives of pipeline 100 (to delete) and of everything else (to keep)."""
    ours = [
        runner_cache_dir(cache, project, "dist-100", protected=None),
        runner_cache_dir(cache, project, "dist-100", protected=True),
        runner_cache_dir(cache, project, "dist-100", protected=False),
        runner_cache_dir(cache, project, "dist-100", protected=True, index=3),
        runner_cache_dir(cache, project, "dist-100", protected=None, index=12),
        runner_cache_dir(cache, project, "dist-100", protected=False, git_strategy_empty=True),
    ]
    others = [
        runner_cache_dir(cache, project, "dist-1000", protected=True),  # id starts with ours
        runner_cache_dir(cache, project, "dist-10", protected=True),
        runner_cache_dir(cache, project, "dist-1001", protected=None, index=100),
        runner_cache_dir(cache, project, "dist-100-protected", protected=True),
        runner_cache_dir(cache, project, "dist-100x", protected=False),
        runner_cache_dir(cache, project, "mydist-100", protected=True),
        runner_cache_dir(cache, project, "node-modules", protected=True),
        runner_cache_dir(cache, "mygroup/web-admin", "dist-100", protected=True),
        runner_cache_dir(cache, "mygroup", "dist-100", protected=True),
        runner_cache_dir(cache, "other/web", "dist-100", protected=True),
    ]
    for directory in ours + others:
        make_archive(directory)
    return ({str(p.relative_to(cache)) for p in ours}, {str(p.relative_to(cache)) for p in others})


@pytest.mark.parametrize("shell", SHELLS)
def test_cleanup_job_removes_exactly_this_pipelines_archives(
    rendered: dict[str, str], cache: Path, shell: str
) -> None:
    ours, others = populate(cache)
    before = tree(cache)
    job = resolve_job(component(rendered, cache), "dist-cache-cleanup")
    assert job["stage"] == ".post"
    assert job["when"] == "always"
    assert job["cache"] == []
    result = run_job(job, job_environment(job, ci_variables()), interpreter=shell)
    assert result.returncode == 0, result.stderr
    removed = before - tree(cache)
    assert {path for path in removed if path.count("/") == 2} == ours
    assert all(path.startswith(tuple(ours)) for path in removed)
    for kept in others:
        assert (cache / kept / "cache.zip").is_file(), kept
    assert result.stdout.count("dist-cache cleanup: removed ") == len(ours)


def test_the_cleanup_finds_the_key_the_producer_used(rendered: dict[str, str], cache: Path) -> None:
    config = component(rendered, cache, key_prefix="web.dist", paths=["dist/", "public/"])
    producer = resolve_job(config, ".dist-cache-producer")
    consumer = resolve_job(config, ".dist-cache-consumer")
    assert producer["cache"]["policy"] == "pull-push"
    assert consumer["cache"]["policy"] == "pull"
    assert producer["cache"]["paths"] == consumer["cache"]["paths"] == ["dist/", "public/"]
    assert producer["tags"] == consumer["tags"] == ["eci"]
    # the key the runner gets for the producer (GitLab appends the protection suffix)
    env = job_environment(producer, ci_variables("4242"))
    key = expand(producer["cache"]["key"], env)
    assert key == "web.dist-4242"
    make_archive(runner_cache_dir(cache, PROJECT, key, protected=True))
    make_archive(runner_cache_dir(cache, PROJECT, "web.dist-42", protected=True))
    job = resolve_job(config, "dist-cache-cleanup")
    result = run_job(job, job_environment(job, ci_variables("4242")))
    assert result.returncode == 0, result.stderr
    assert tree(cache) == {
        "mygroup",
        "mygroup/web",
        "mygroup/web/web.dist-42-protected",
        "mygroup/web/web.dist-42-protected/cache.zip",
    }


@pytest.mark.parametrize("shell", SHELLS)
def test_last_consumer_cleans_up_in_after_script(
    rendered: dict[str, str], cache: Path, shell: str
) -> None:
    ours, others = populate(cache)
    job = resolve_job(component(rendered, cache), ".dist-cache-last-consumer")
    assert job["cache"]["policy"] == "pull"
    result = run_job(
        job, job_environment(job, ci_variables()), interpreter=shell, after_script=True
    )
    assert result.returncode == 0, result.stderr
    assert not any((cache / path).exists() for path in ours)
    assert all((cache / path / "cache.zip").exists() for path in others)


def test_relative_url_root_is_part_of_the_runner_path(
    rendered: dict[str, str], cache: Path
) -> None:
    # the runner takes the project directory from the repository URL's path
    ours, others = populate(cache, f"gitlab/{PROJECT}")
    populate(cache)  # same keys without the URL root: another GitLab's projects
    job = resolve_job(component(rendered, cache), "dist-cache-cleanup")
    env = job_environment(job, ci_variables(CI_SERVER_URL="https://example.com/gitlab/"))
    result = run_job(job, env)
    assert result.returncode == 0, result.stderr
    assert not any((cache / path).exists() for path in ours)
    assert all((cache / path / "cache.zip").exists() for path in others)
    assert (cache / PROJECT / "dist-100-protected" / "cache.zip").exists()


def test_hashed_cache_keys(rendered: dict[str, str], cache: Path) -> None:
    ours = [
        runner_cache_dir(cache, PROJECT, "dist-100", protected=p, hashed=True)
        for p in (True, False, None)
    ]
    other = runner_cache_dir(cache, PROJECT, "dist-1000", protected=True, hashed=True)
    for directory in [*ours, other]:
        make_archive(directory)
    assert ours[0].name == hashlib.sha256(b"dist-100-protected").hexdigest()
    job = resolve_job(component(rendered, cache), "dist-cache-cleanup")
    env = job_environment(job, ci_variables(FF_HASH_CACHE_KEYS="true"))
    result = run_job(job, env, interpreter="dash")
    assert result.returncode == 0, result.stderr
    assert not any(directory.exists() for directory in ours)
    assert (other / "cache.zip").exists()


def test_nothing_to_clean_is_not_an_error(rendered: dict[str, str], cache: Path) -> None:
    job = resolve_job(component(rendered, cache), "dist-cache-cleanup")
    result = run_job(job, job_environment(job, ci_variables()))
    assert result.returncode == 0, result.stderr
    assert "no archive for key dist-100" in result.stdout


BAD_ENVIRONMENTS = {
    "empty pipeline id": {"CI_PIPELINE_ID": ""},
    "pipeline id not a number": {"CI_PIPELINE_ID": "1*"},
    "empty cache dir": {"DIST_CACHE_DIR": ""},
    "cache dir is /": {"DIST_CACHE_DIR": "/"},
    "cache dir //": {"DIST_CACHE_DIR": "//"},
    "relative cache dir": {"DIST_CACHE_DIR": "cache"},
    "cache dir with ..": {"DIST_CACHE_DIR": "{cache}/../cache"},
    "cache dir with a glob": {"DIST_CACHE_DIR": "{cache}*"},
    "empty key": {"DIST_CACHE_KEY": ""},
    "key without the pipeline id": {"DIST_CACHE_KEY": "dist"},
    "key is only the pipeline id": {"DIST_CACHE_KEY": "-100"},
    "key with a path": {"DIST_CACHE_KEY": "../web/dist-100"},
    "key with a glob": {"DIST_CACHE_KEY": "*-100"},
    "empty project path": {"CI_PROJECT_PATH": ""},
    "project path with ..": {"CI_PROJECT_PATH": "mygroup/../mygroup/web"},
    "absolute project path": {"CI_PROJECT_PATH": "/mygroup/web"},
    "project path with a glob": {"CI_PROJECT_PATH": "mygroup/*"},
}


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("bad", list(BAD_ENVIRONMENTS), ids=str)
def test_empty_or_odd_variables_remove_nothing(
    rendered: dict[str, str], cache: Path, shell: str, bad: str
) -> None:
    populate(cache)
    populate(cache, "mygroup")
    before = tree(cache)
    job = resolve_job(component(rendered, cache), "dist-cache-cleanup")
    env = job_environment(job, ci_variables())
    env.update({key: value.format(cache=cache) for key, value in BAD_ENVIRONMENTS[bad].items()})
    result = run_job(job, env, interpreter=shell)
    assert result.returncode != 0, result.stdout
    assert "nothing removed" in result.stderr
    assert tree(cache) == before
