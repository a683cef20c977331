"""Generated bad inputs for ``install --dry-run`` against the fakes (see tests/fuzz.py).

Property: exit 0, 2, 3 or 4 (GitLab or the cluster may refuse what the input asks), never
a traceback, no planted secret (nor the GitLab token) in the output, nothing written
anywhere: not in the working directory, not in GitLab, not in the cluster (dry-run applies
only).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import Target, virtual_node
from tests.fakes.fixtures import DEVELOPER, GROUP, OWNER, OWNER_TOKEN, READER_TOKEN
from tests.fakes.gitlab import FakeGitLab
from tests.fakes.kube import FakeKube
from tests.fuzz import environment, flags, leaks, secret, settings_file, snapshot


@contextmanager
def fakes() -> Iterator[Target]:
    """Both fakes, started once for many examples (read only: dry runs change nothing)."""
    gitlab = FakeGitLab()
    gitlab.add_user("owner", OWNER_TOKEN, ["create_runner", "manage_runner", "read_api"])
    gitlab.add_user("reader", READER_TOKEN, ["read_api"])
    gitlab.add_group(GROUP, {"owner": OWNER, "reader": DEVELOPER})
    kube = FakeKube()
    with gitlab, kube, tempfile.TemporaryDirectory() as tmp:
        kube.kubeconfig(Path(tmp) / "kubeconfig")
        kube.add_crd_imagecache()
        kube.add_object(virtual_node())
        yield Target(gitlab, kube, Path(tmp), gitlab_url=gitlab.url)


@st.composite
def install_case(draw: st.DrawFn) -> tuple[str, bytes | None, dict[str, str], list[str]]:
    planted = draw(secret())
    env = draw(environment(planted))
    # Mostly a GitLab that answers, with a good token, so the run gets past the preflight.
    if draw(st.integers(0, 3)):
        env["GITLAB_URL"] = "{fake}"
        env["GITLAB_TOKEN"] = OWNER_TOKEN
    config = draw(st.none() | settings_file(planted))
    extra = draw(st.none() | flags())
    return planted, config, env, extra or []


def run_install(
    target: Target, case: tuple[str, bytes | None, dict[str, str], list[str]], workdir: Path
) -> tuple[int, str, dict[str, bytes], dict[str, bytes]]:
    """One dry run in ``workdir``: exit code, output, files before and after."""
    from tests.conftest import run_cli

    _, config, env, extra = case
    env = {k: v.replace("{fake}", target.gitlab_url) for k, v in env.items()}
    argv = target.args("install", "--dry-run", "--no-wait", "--timeout", "20", *extra)
    if config is not None:
        (workdir / "bootstrap.toml").write_bytes(config)
        argv += ["--config", str(workdir / "bootstrap.toml")]
    before = snapshot(workdir)
    gitlab_writes, kube_writes = len(target.gitlab.writes()), _applied(target)
    result = run_cli(argv, env=env, cwd=workdir)
    assert len(target.gitlab.writes()) == gitlab_writes, "a dry run wrote to GitLab"
    assert _applied(target) == kube_writes, "a dry run wrote to the cluster"
    output = result.output
    assert OWNER_TOKEN not in output, "the GitLab token leaked"
    return result.exit_code, output, before, snapshot(workdir)


def _applied(target: Target) -> int:
    return sum(1 for r in target.kube.writes() if r.query.get("dryRun") != "All")


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(install_case())
def test_install_dry_run_refuses_bad_input_cleanly_and_never_shows_a_secret(
    case: tuple[str, bytes | None, dict[str, str], list[str]],
) -> None:
    with fakes() as target, tempfile.TemporaryDirectory() as tmp:
        code, output, before, after = run_install(target, case, Path(tmp))
        assert code in (0, 2, 3, 4), output
        assert "Traceback" not in output
        assert not leaks(output, case[0]), output
        if code == 2:
            assert after == before, "a refused run wrote something"


def test_the_fakes_answer_a_good_dry_run() -> None:
    # The property above is only worth something if good input gets through: check one.
    with fakes() as target, tempfile.TemporaryDirectory() as tmp:
        code, output, _, _ = run_install(
            target,
            ("x", None, {"GITLAB_URL": "{fake}", "GITLAB_TOKEN": OWNER_TOKEN}, []),
            Path(tmp),
        )
    assert code == 0, output
    assert "Plan:" in output
