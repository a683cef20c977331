"""Generated bad inputs for the offline ``render`` (see tests/fuzz.py): exit 0 or 2, never a
traceback, nothing written on 2, no planted secret in anything printed or written."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli
from tests.fuzz import environment, flags, leaks, secret, settings_file, snapshot


@st.composite
def render_case(draw: st.DrawFn) -> tuple[str, bytes | None, dict[str, str], list[str], bool]:
    planted = draw(secret())
    config = draw(st.none() | settings_file(planted))
    return planted, config, draw(environment(planted)), draw(flags()), draw(st.booleans())


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(render_case())
def test_render_refuses_bad_input_cleanly_and_never_shows_a_secret(
    case: tuple[str, bytes | None, dict[str, str], list[str], bool],
) -> None:
    planted, config, env, flag_args, to_dir = case
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        args = ["render", *flag_args]
        if config is not None:
            (workdir / "bootstrap.toml").write_bytes(config)
            args += ["--config", str(workdir / "bootstrap.toml")]
        out = workdir / "out"
        args += ["--out", str(out) if to_dir else "-"]
        before = snapshot(workdir)

        result = run_cli(args, env=env, cwd=workdir)

        assert result.exit_code in (0, 2), result.output
        assert "Traceback" not in result.output
        assert not leaks(result.output, planted), result.output
        if result.exit_code == 2:
            assert snapshot(workdir) == before, "a refused run wrote something"
        else:
            for name, content in snapshot(workdir).items():
                assert not leaks(content.decode(errors="replace"), planted), name
