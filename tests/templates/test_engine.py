"""The templates, the examples and the docs' snippets as gitlab-ci-local runs them.

``--preview`` expands each pipeline the way GitLab does (includes, component
inputs, ``extends``, ``!reference``) and rejects what GitLab rejects (an
unknown stage, YAML that is not YAML 1.2, a schema error); ``--list-json``
says which jobs a push or a scheduled pipeline creates. The jobs that can run
in a shell then run with ``--force-shell-executor``: the dist-cache round trip
through the engine's cache, kept in a tree laid out as gitlab-runner lays out
its cache volume, the cleanup and cache-gc on that tree, prepare-git against
a real sshd, and kaniko and BuildKit with stand-in executors that record their
command line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .engine import (
    Engine,
    consumer_project,
    engine_command,
    job_results,
    templates_project,
)
from .helpers import make_archive, runner_cache_dir, tree, write_executable
from .test_prepare_git import Sshd, credentials, keygen, sshd  # noqa: F401 - the sshd fixture

REPO = Path(__file__).resolve().parents[2]
FENCE_RE = re.compile(r"^```ya?ml\n(.*?)^```", re.MULTILINE | re.DOTALL)
PIPELINE = 1100  # CI_PIPELINE_ID of the run: gitlab-ci-local's pipelineIid (state.yml) + 1000


def doc_pipelines() -> list[Any]:
    """Every example pipeline: docs/examples/*.yml and the whole pipelines in docs/templates.md."""
    found = [
        pytest.param(path.read_text(encoding="utf-8"), id=f"docs/examples/{path.name}")
        for path in sorted((REPO / "docs" / "examples").glob("*.yml"))
    ]
    page = (REPO / "docs" / "templates.md").read_text(encoding="utf-8")
    for index, block in enumerate(FENCE_RE.findall(page)):
        # the publish snippet shows two alternative include: blocks: not one pipeline
        if "mygroup/ci-templates" in block and block.count("include:") == 1:
            found.append(pytest.param(block, id=f"docs/templates.md#{index}"))
    return found


DOC_PIPELINES = doc_pipelines()
EXAMPLES = [p for p in DOC_PIPELINES if p.id.startswith("docs/examples/")]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return Engine(engine_command(), tmp_path_factory.mktemp("engine-home"))


def _dist_cache(job: dict[str, Any]) -> list[dict[str, Any]]:
    caches = job.get("cache") or []
    return [c for c in caches if c.get("key") == "$DIST_CACHE_KEY"]


def _finished_before(config: dict[str, Any], jobs: dict[str, Any], name: str) -> set[str]:
    """The jobs done when ``name`` starts: its needs (transitively), else the earlier stages."""
    job = jobs[name]
    if "needs" in job:
        before = {n if isinstance(n, str) else n["job"] for n in job["needs"]}
    else:
        stage = config["stages"].index(job.get("stage", "test"))
        before = {
            n for n, j in jobs.items() if config["stages"].index(j.get("stage", "test")) < stage
        }
    for other in list(before):
        before |= _finished_before(config, jobs, other)
    return before


def assert_dist_cache_is_consistent(config: dict[str, Any]) -> None:
    """Every job of the dist cache keeps its cache entry, and pulls after a producer pushed."""
    jobs = {n: j for n, j in config.items() if isinstance(j, dict) and "script" in j}
    producers = {
        n for n, j in jobs.items() if any(c["policy"] == "pull-push" for c in _dist_cache(j))
    }
    for name, job in jobs.items():
        if "DIST_CACHE_KEY" not in (job.get("variables") or {}) or job.get("cache") == []:
            continue  # not a dist-cache job, or the cleanup (no cache of its own)
        assert _dist_cache(job), (
            f"{name} extends a dist-cache job but lost its cache: {job.get('cache')}"
        )
        if name not in producers:
            before = _finished_before(config, jobs, name)
            assert producers & before, (
                f"{name} pulls ./dist, but no producer {producers} runs before it"
            )


def test_the_components_project_expands(
    engine: Engine, rendered: dict[str, str], tmp_path: Path
) -> None:
    config = engine.preview(templates_project(tmp_path / "templates", rendered))
    assert config["stages"] == [".pre", "test", "verify", "release", ".post"]
    for name in (
        "selftest-kaniko",
        "selftest-buildkit",
        "selftest-dist-produce",
        "selftest-dist-consume",
        "selftest-prepare-git",
        "dist-cache-cleanup",
        "cache-gc",
        "lint-scripts",
        "release",
    ):
        assert config[name]["tags"] == ["eci"], name
    assert config["selftest-buildkit"]["allow_failure"] is True
    assert config["selftest-kaniko"]["image"]["name"].startswith(
        "ghcr.io/osscontainertools/kaniko:"
    )
    assert (
        config["dist-cache-cleanup"]["variables"]["DIST_CACHE_KEY"]
        == "selftest-dist-$CI_PIPELINE_ID"
    )
    assert_dist_cache_is_consistent(config)


# the hidden job a project extends, and the jobs a component adds by itself
HIDDEN = {
    "buildkit": (".buildkit-build", {"buildkit-build"}),
    "cache-gc": (".cache-gc", {"cache-gc"}),
    "dist-cache": (".dist-cache-producer", {"dist-cache-cleanup"}),
    "kaniko": (".kaniko-build", {"kaniko-build"}),
    "prepare-git": (".prepare-git", set()),
}


@pytest.mark.parametrize("way", ["component", "include-file"])
@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_each_component_and_include_file_expands_alone(
    engine: Engine, rendered: dict[str, str], tmp_path: Path, name: str, way: str
) -> None:
    hidden, own_jobs = HIDDEN[name]
    if way == "component":
        include = f"  - component: $CI_SERVER_FQDN/mygroup/ci-templates/{name}@v1.0.0\n"
        if name in ("kaniko", "buildkit"):
            include += "    inputs:\n      needs: []\n"
    else:
        include = (
            f"  - project: mygroup/ci-templates\n    ref: v1.0.0\n    file: /include/{name}.yml\n"
        )
        own_jobs = set()
    gitlab_ci = f"include:\n{include}\nmine:\n  extends: {hidden}\n  script: [make]\n"
    config = engine.preview(consumer_project(tmp_path / "web", rendered, gitlab_ci))
    visible = {n for n, j in config.items() if isinstance(j, dict) and "script" in j}
    assert visible == {"mine", *own_jobs}
    assert config["mine"]["script"] == ["make"]
    assert_dist_cache_is_consistent(config)


@pytest.mark.parametrize("gitlab_ci", DOC_PIPELINES)
def test_every_doc_pipeline_expands(
    engine: Engine, rendered: dict[str, str], tmp_path: Path, gitlab_ci: str
) -> None:
    config = engine.preview(consumer_project(tmp_path / "web", rendered, gitlab_ci))
    assert "dist-cache-cleanup" in config
    assert_dist_cache_is_consistent(config)


def test_every_pipeline_of_the_published_readme_expands(
    engine: Engine, rendered: dict[str, str], tmp_path: Path
) -> None:
    # the Catalog page of the templates project: one pipeline per component, and more
    blocks = FENCE_RE.findall(rendered["README.md"])
    assert len(blocks) >= 6
    for index, block in enumerate(blocks):
        project = consumer_project(tmp_path / f"web{index}", rendered, block)
        try:
            assert_dist_cache_is_consistent(engine.preview(project))
        except AssertionError as error:
            raise AssertionError(f"README.md, YAML block {index}: {error}") from None


def test_a_cache_mapping_would_drop_the_dist_cache(
    engine: Engine, rendered: dict[str, str], tmp_path: Path
) -> None:
    # what docs/templates.md warns about, and why its recipe uses the list form
    gitlab_ci = (
        "include:\n"
        "  - component: $CI_SERVER_FQDN/mygroup/ci-templates/dist-cache@v1.0.0\n"
        "build:\n"
        "  stage: build\n"
        "  extends: .dist-cache-producer\n"
        "  cache: {key: deps, paths: [node_modules/]}\n"
        "  script: [npm ci]\n"
    )
    config = engine.preview(consumer_project(tmp_path / "web", rendered, gitlab_ci))
    with pytest.raises(AssertionError, match="lost its cache"):
        assert_dist_cache_is_consistent(config)


@pytest.mark.parametrize("gitlab_ci", EXAMPLES)
def test_only_cache_gc_runs_in_the_schedule(
    engine: Engine, rendered: dict[str, str], tmp_path: Path, gitlab_ci: str
) -> None:
    project = consumer_project(tmp_path / "web", rendered, gitlab_ci)
    pushed = engine.jobs(project, {"CI_PIPELINE_SOURCE": "push"})
    scheduled = engine.jobs(project, {"CI_PIPELINE_SOURCE": "schedule"})
    assert "deploy" in pushed
    assert "cache-gc" not in pushed
    # the .post cleanup runs in every pipeline (when: always) and finds nothing here
    assert scheduled == {"cache-gc": "on_success", "dist-cache-cleanup": "always"}


@pytest.fixture
def cache_root(tmp_path: Path) -> Path:
    root = tmp_path / "cache"
    root.mkdir()
    return root


def _link_engine_cache(project: Path, cache_root: Path, project_path: str) -> None:
    """Keep the engine's cache where gitlab-runner keeps the project's archives."""
    state = project / ".gitlab-ci-local"
    state.mkdir(exist_ok=True)
    (cache_root / project_path).mkdir(parents=True, exist_ok=True)
    (state / "cache").symlink_to(cache_root / project_path)
    (state / "state.yml").write_text(f"pipelineIid: {PIPELINE - 1000}\n", encoding="utf-8")


def _recorder(directory: Path) -> Path:
    directory.mkdir(exist_ok=True)
    return write_executable(
        directory / "builder",
        "#!/bin/sh\n"
        f"printf '%s\\n' \"$@\" > '{directory}/argv-'\"$CI_JOB_NAME\"\n"
        f"cat dist/pipeline-id > '{directory}/dist-'\"$CI_JOB_NAME\" 2>/dev/null || true\n",
    )


def _argv(directory: Path, job: str) -> list[str]:
    return (directory / f"argv-{job}").read_text(encoding="utf-8").splitlines()


def test_the_components_project_pipeline_runs_in_the_shell(
    engine: Engine, rendered: dict[str, str], tmp_path: Path, cache_root: Path
) -> None:
    project = templates_project(tmp_path / "templates", rendered)
    _link_engine_cache(project, cache_root, "mygroup/ci-templates")
    key = f"selftest-dist-{PIPELINE}"
    ours = [
        runner_cache_dir(cache_root, "mygroup/ci-templates", key),
        runner_cache_dir(cache_root, "mygroup/ci-templates", key, protected=False, index=2),
        runner_cache_dir(cache_root, "mygroup/ci-templates", key, git_strategy_empty=True),
    ]
    others = [
        runner_cache_dir(cache_root, "mygroup/ci-templates", f"{key}0"),
        runner_cache_dir(cache_root, "mygroup/ci-templates", f"dist-{PIPELINE}"),
        runner_cache_dir(cache_root, "mygroup/other", key),
    ]
    for directory in ours + others:
        make_archive(directory)
    old = make_archive(runner_cache_dir(cache_root, "mygroup/ci-templates", "deps"), 4096, 30)
    stub = tmp_path / "stub"
    jobs = [
        "selftest-dist-produce",
        "selftest-dist-consume",
        "dist-cache-cleanup",
        "selftest-kaniko",
        "selftest-buildkit",
        "cache-gc",
    ]
    result = engine.run(
        project,
        "--force-shell-executor",
        "--shell-isolation",
        *jobs,
        variables={
            "DIST_CACHE_DIR": str(cache_root),
            "CACHE_GC_DIR": str(cache_root),
            "IMAGE_BUILD_EXECUTOR": str(_recorder(stub)),
            "HOME": str(tmp_path / "home"),
        },
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert job_results(result.stdout) == dict.fromkeys(jobs, "PASS")
    # the round trip: the consumer found ./dist of this pipeline, then cleaned up
    assert f"imported cache '{key}'" in output
    assert f"removed {cache_root}/mygroup/ci-templates/{key} " in output
    remaining = tree(cache_root)
    for directory in ours:
        assert str(directory.relative_to(cache_root)) not in remaining
    for directory in others:
        assert str(directory.relative_to(cache_root) / "cache.zip") in remaining
    # cache-gc is a dry run there: it names the old archive and keeps it
    assert f"would remove {old} " in output
    assert old.exists()
    assert _argv(stub, "selftest-kaniko") == [
        "--context",
        "/builds/mygroup/ci-templates/tests/image",
        "--dockerfile",
        "/builds/mygroup/ci-templates/tests/image/Dockerfile",
        "--destination",
        _argv(stub, "selftest-kaniko")[5],
        "--no-push",
    ]
    assert _argv(stub, "selftest-kaniko")[5].startswith("local-registry.gitlab.example.com/")
    buildkit = _argv(stub, "selftest-buildkit")
    assert buildkit[:3] == ["build", "--frontend", "dockerfile.v0"]
    assert "--export-cache" not in buildkit
    assert any(arg.startswith("type=image,") and arg.endswith(",push=false") for arg in buildkit)


def test_a_project_pipeline_runs_in_the_shell(
    engine: Engine,
    rendered: dict[str, str],
    tmp_path: Path,
    cache_root: Path,
    sshd: Sshd,  # noqa: F811 - the fixture imported above
) -> None:
    creds = credentials(tmp_path / "creds", sshd)
    other_host_key = keygen(tmp_path / "other_host_key").with_suffix(".pub").read_text()
    changed = credentials(tmp_path / "changed", sshd, known_host_key=other_host_key)
    home = tmp_path / "home"
    gitlab_ci = f"""
include:
  - component: $CI_SERVER_FQDN/mygroup/ci-templates/dist-cache@v1.0.0
    inputs:
      cache_dir: {cache_root}
  - component: $CI_SERVER_FQDN/mygroup/ci-templates/kaniko@v1.0.0
    inputs:
      stage: package
      needs: [build]
      push: "false"
      destinations: registry.example.com:5000/mygroup/web:$CI_COMMIT_SHORT_SHA
  - component: $CI_SERVER_FQDN/mygroup/ci-templates/buildkit@v1.0.0
    inputs:
      stage: package
      needs: [build]
      destinations: registry.example.com/mygroup/web:1 registry.example.com/mygroup/web:latest
      platform: linux/amd64,linux/arm64
      build_args: NODE_ENV=production
  - component: $CI_SERVER_FQDN/mygroup/ci-templates/prepare-git@v1.0.0
    inputs:
      credentials_dir: {creds}
      ssh_host: 127.0.0.1
      ssh_port: "{sshd.port}"
      ssh_user: root
  - component: $CI_SERVER_FQDN/mygroup/ci-templates/cache-gc@v1.0.0
    inputs:
      stage: deploy
      rules: [{{when: on_success}}]
      max_age_days: 7
      cache_dir: {cache_root}

stages: [build, package, deploy]

build:
  stage: build
  extends: .dist-cache-producer
  cache:
    - !reference [.dist-cache-producer, cache]
    - key: deps
      paths: [deps/]
  script:
    - mkdir -p dist deps
    - echo "$CI_PIPELINE_ID" > dist/pipeline-id
    - echo dependencies > deps/list

kaniko-build:
  extends: [.kaniko-build, .dist-cache-consumer]

buildkit-build:
  extends: [.buildkit-build, .dist-cache-consumer]

release:
  stage: deploy
  extends: [.prepare-git, .dist-cache-last-consumer]
  needs: [kaniko-build, buildkit-build]
  variables:
    HOME: {home}
  script:
    - test "$(cat dist/pipeline-id)" = "$CI_PIPELINE_ID"
    - eval "$GIT_SSH_COMMAND -T root@127.0.0.1"

# the Secret's known_hosts has another key for the host: the job must fail, and say why
changed-host-key:
  stage: deploy
  extends: .prepare-git
  needs: []
  allow_failure: true
  variables:
    HOME: {tmp_path / "home-changed"}
    PREPARE_GIT_CREDENTIALS_DIR: {changed}
  script:
    - echo "the script ran after a failed check"
"""
    project = consumer_project(tmp_path / "web", rendered, gitlab_ci)
    _link_engine_cache(project, cache_root, "mygroup/web")
    old = make_archive(runner_cache_dir(cache_root, "mygroup/web", "node-modules"), 4096, 30)
    recent = make_archive(runner_cache_dir(cache_root, "mygroup/api", "node-modules"), 4096, 1)
    stub = tmp_path / "stub"
    jobs = ["build", "kaniko-build", "buildkit-build", "release", "cache-gc", "dist-cache-cleanup"]
    result = engine.run(
        project,
        "--force-shell-executor",
        "--shell-isolation",
        *jobs,
        "changed-host-key",
        variables={"IMAGE_BUILD_EXECUTOR": str(_recorder(stub))},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert job_results(result.stdout) == {**dict.fromkeys(jobs, "PASS"), "changed-host-key": "WARN"}
    assert f"the host key of 127.0.0.1:{sshd.port} is not in {changed}/known_hosts" in output
    assert "the script ran after a failed check" not in output
    # both image builds got ./dist of this pipeline
    for job in ("kaniko-build", "buildkit-build"):
        assert (stub / f"dist-{job}").read_text(encoding="utf-8").strip() == str(PIPELINE)
    # kaniko refuses --no-push --cache=true without --cache-repo
    assert _argv(stub, "kaniko-build")[-4:] == [
        "--no-push",
        "--cache=true",
        "--cache-repo=registry.example.com:5000/mygroup/web/cache",
        "--cache-ttl=336h",
    ]
    buildkit = _argv(stub, "buildkit-build")
    assert buildkit[:3] == ["build", "--frontend", "dockerfile.v0"]
    assert "platform=linux/amd64,linux/arm64" in buildkit
    assert "build-arg:NODE_ENV=production" in buildkit
    assert "type=registry,ref=registry.example.com/mygroup/web:buildcache,mode=max" in buildkit
    # prepare-git installed the key and logged in to the real sshd
    assert "Welcome to GitLab, @test!" in output
    assert (home / ".ssh" / "id_rsa").stat().st_mode & 0o777 == 0o400
    # the last consumer removed the pipeline's ./dist; the other cache stayed
    remaining = tree(cache_root)
    assert f"mygroup/web/dist-{PIPELINE}" not in remaining
    assert "mygroup/web/deps/deps/list" in remaining
    # cache-gc deleted the archive older than 7 days, kept the recent one
    assert not old.exists()
    assert recent.exists()


def test_the_docs_recipe_keeps_the_dist_cache_next_to_another_cache(
    engine: Engine, rendered: dict[str, str], tmp_path: Path
) -> None:
    page = (REPO / "docs" / "templates.md").read_text(encoding="utf-8")
    recipes = [
        b for b in FENCE_RE.findall(page) if "- !reference [.dist-cache-producer, cache]" in b
    ]
    assert len(recipes) == 1, "docs/templates.md: the recipe for a cache next to the dist cache"
    config = engine.preview(consumer_project(tmp_path / "web", rendered, recipes[0]))
    for job, policy in (("build", "pull-push"), ("deploy", "pull")):
        caches = config[job]["cache"]
        assert len(caches) == 2, caches
        assert caches[0] == {
            "key": "$DIST_CACHE_KEY",
            "paths": ["dist/"],
            "policy": policy,
            "when": "on_success",
        }
        assert caches[1]["paths"] == ["node_modules/"]
