"""``render --out DIR`` owns only what it wrote: it never overwrites a file it did not
write (or that was changed since) without --force, never writes through a symlink, and
deletes only files whose content it can prove it wrote (the sha256 in its manifest)."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from bootstrap.manifests import INDEX_FILE
from tests.conftest import run_cli

REGISTRY = '[registry]\nserver = "r.example.com"\nusername = "u"\npassword_env = "P"\n'


def render(out: Path, *extra: str) -> tuple[int, str]:
    result = run_cli(["render", "--group", "g", "--out", str(out), *extra])
    return result.exit_code, result.stderr


def test_a_file_it_did_not_write_is_not_overwritten(workdir: Path) -> None:
    out = workdir / "deploy"
    out.mkdir()
    (out / "config.toml").write_text('token = "glrt-my-real-token"\n')

    code, err = render(out)

    assert code == 2, err
    assert "config.toml was not written by bootstrap render" in err
    assert "--force" in err
    assert (out / "config.toml").read_text() == 'token = "glrt-my-real-token"\n'
    assert sorted(p.name for p in out.iterdir()) == ["config.toml"], "nothing else written"


def test_force_overwrites_it_with_the_right_mode(workdir: Path) -> None:
    out = workdir / "deploy"
    out.mkdir()
    (out / "config.toml").write_text("mine\n")
    (out / "config.toml").chmod(0o644)

    code, err = render(out, "--force")

    assert code == 0, err
    assert "PLACEHOLDER" in (out / "config.toml").read_text()
    assert stat.S_IMODE((out / "config.toml").stat().st_mode) == 0o600


def test_a_file_changed_since_it_was_rendered_is_not_overwritten(workdir: Path) -> None:
    out = workdir / "deploy"
    assert render(out)[0] == 0
    (out / "kustomization.yaml").write_text("# my edits\n")

    code, err = render(out)

    assert code == 2
    assert "kustomization.yaml was changed since bootstrap render wrote it" in err
    assert (out / "kustomization.yaml").read_text() == "# my edits\n"


def test_a_second_render_of_its_own_files_needs_no_force(workdir: Path) -> None:
    out = workdir / "deploy"
    assert render(out)[0] == 0
    (workdir / "bootstrap.toml").write_text("[runner]\nconcurrent = 3\n")
    code, err = render(out)
    assert code == 0, err
    assert "concurrent = 3" in (out / "config.toml").read_text()


@pytest.mark.parametrize("name", ["config.toml", "deployment-gitlab-runner.yaml", INDEX_FILE])
def test_a_symlinked_file_is_never_followed(workdir: Path, name: str) -> None:
    out = workdir / "deploy"
    out.mkdir()
    victim = workdir / "victim.txt"
    victim.write_text("precious\n")
    victim.chmod(0o640)
    (out / name).symlink_to(victim)

    for extra in ((), ("--force",)):
        code, err = render(out, *extra)
        assert code == 2, err
        assert f"{name} is a symlink" in err

    assert victim.read_text() == "precious\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o640


def test_a_symlinked_directory_is_never_followed(workdir: Path) -> None:
    out = workdir / "deploy"
    out.mkdir()
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    (out / "ci-templates").symlink_to(elsewhere)

    code, err = render(out, "--force")

    assert code == 2
    assert "ci-templates is a symlink" in err
    assert list(elsewhere.iterdir()) == []


def test_it_deletes_only_what_it_can_prove_it_wrote(workdir: Path) -> None:
    out = workdir / "deploy"
    config = workdir / "bootstrap.toml"
    config.write_text(REGISTRY)
    assert render(out)[0] == 0
    secret = out / "secret-registry-auth-secret.yaml"
    secret.write_text(secret.read_text() + "# a note of mine\n")
    config.write_text("")

    code, err = render(out)

    assert code == 0, err
    assert secret.is_file(), "a file changed since it was rendered is kept"
    assert "kept secret-registry-auth-secret.yaml" in err


def test_a_hand_edited_manifest_cannot_delete_other_files(workdir: Path) -> None:
    out = workdir / "deploy"
    assert render(out)[0] == 0
    outside = workdir / "outside.txt"
    outside.write_text("keep\n")
    inside = out / "notes.md"
    inside.write_text("mine\n")
    digest = hashlib.sha256(b"keep\n").hexdigest()
    index = out / INDEX_FILE
    index.write_text(
        index.read_text()
        + f"{digest}  ../outside.txt\n"
        + f"{digest}  {outside}\n"
        + f"{digest}  ci-templates/../../outside.txt\n"
        + "notes.md\n"  # listed without a hash: its content cannot be proven
        + f"{'0' * 64}  notes.md\n"
    )

    code, err = render(out)

    assert code == 0, err
    assert outside.read_text() == "keep\n"
    assert inside.read_text() == "mine\n"


def test_the_manifest_records_a_sha256_per_file(workdir: Path) -> None:
    out = workdir / "deploy"
    assert render(out)[0] == 0
    lines = (out / INDEX_FILE).read_text().splitlines()
    assert lines, "the manifest lists the files"
    for line in lines:
        digest, rel = line.split("  ", 1)
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest
