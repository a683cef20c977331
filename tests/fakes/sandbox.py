"""A sandbox: the fake GitLab and the fake cluster on loopback, to try every workflow.

``scripts/sandbox`` starts one and prints the environment to export; ``bootstrap install``,
``status``, ``rotate`` and ``uninstall`` then work against it as against a real GitLab and
cluster (state lives in memory, until the sandbox stops). See docs/sandbox.md.

The same module produces the example outputs in the docs: ``scripts/sandbox --write-docs``
runs :data:`EXAMPLES` in fresh sandboxes and rewrites every block that follows a
``<!-- example: NAME -->`` line; ``tests/e2e/test_sandbox.py`` fails when one differs (after
:func:`normalise` has replaced what changes from run to run: ports, times, ids, hashes).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes.gitlab import OWNER, FakeGitLab
from tests.fakes.kube import FakeKube
from tests.fakes.pods import runner_pods

REPO = Path(__file__).resolve().parents[2]
GROUP = "mygroup"
#: The sandbox user's token: a group Owner's, with every scope install needs.
TOKEN = "glpat-sandbox-owner-0123456789"
#: The registry's answer when the sandbox is started with --image-pull-fails.
PULL_ERROR = (
    'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": not found'
)
RUNNER_IMAGE = "registry.gitlab.com/gitlab-org/gitlab-runner:alpine-v18.11.4"
EXAMPLE = re.compile(r"(<!-- example: ([a-z0-9-]+) -->\n```console\n)(.*?)(```)", re.S)
DOCS = (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))


def virtual_node(
    name: str = "virtual-kubelet-cn-hangzhou-k", arch: str = "amd64"
) -> dict[str, Any]:
    """An ACK virtual node (ECI) as the cluster lists it: labels and taint of the real ones."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "type": "virtual-kubelet",
                "kubernetes.io/arch": arch,
                "kubernetes.io/os": "linux",
                "kubernetes.io/role": "agent",
            },
        },
        "spec": {
            "taints": [
                {
                    "key": "virtual-kubelet.io/provider",
                    "value": "alibabacloud",
                    "effect": "NoSchedule",
                }
            ]
        },
    }


@dataclass
class Sandbox:
    """Both fakes started, linked, and a directory holding their kubeconfig."""

    workdir: Path
    image_pull_fails: str | None = None
    gitlab: FakeGitLab = field(init=False)
    kube: FakeKube = field(init=False)

    def __post_init__(self) -> None:
        self.gitlab = FakeGitLab()
        self.gitlab.add_user(
            "alice", TOKEN, ["api", "create_runner", "manage_runner", "read_api"], name="Alice"
        )
        self.gitlab.add_group(GROUP, {"alice": OWNER})
        self.kube = FakeKube(image_pull_fails=self.image_pull_fails)
        # The runner pods in the fake cluster contact the fake GitLab with their token.
        self.gitlab.runner_processes = lambda: runner_pods(self.kube)

    def start(self) -> Sandbox:
        self.gitlab.start()
        self.kube.start()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.kube.kubeconfig(self.workdir / "kubeconfig", "sandbox")
        self.kube.add_crd_imagecache()
        self.kube.add_object(virtual_node())
        return self

    def stop(self) -> None:
        self.kube.stop()
        self.gitlab.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def env(self) -> dict[str, str]:
        """What a shell exports to use the sandbox."""
        return {
            "GITLAB_URL": self.gitlab.url,
            "GITLAB_TOKEN": TOKEN,
            "KUBECONFIG": str(self.workdir / "kubeconfig"),
        }

    def exports(self) -> str:
        return "".join(f"export {k}={v}\n" for k, v in self.env.items())


# --- the docs' examples ---------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One command run in the sandbox; its output is a docs block of the same name."""

    name: str
    args: tuple[str, ...]
    #: Written to bootstrap.toml before the command (None: left as it is).
    toml: str | None = None
    #: Only the lines from the first one matching this (the rest is shown elsewhere).
    start: str | None = None


#: Run in this order, in one sandbox: the walk install -> status -> rotate -> uninstall.
EXAMPLES = (
    Example("doctor", ("doctor", "--group", GROUP)),
    Example("install-dry-run", ("install", "--group", GROUP, "--dry-run")),
    Example("install", ("install", "--group", GROUP)),
    Example("status", ("status", "--group", GROUP)),
    Example(
        "plan-concurrent",
        ("install", "--group", GROUP, "--dry-run"),
        toml="[runner]\nconcurrent = 20\n",
    ),
    Example("install-concurrent", ("install", "--group", GROUP), start="Done:"),
    Example("rotate", ("rotate", "--group", GROUP, "--force")),
    Example("uninstall", ("uninstall", "--group", GROUP, "--yes")),
    Example("uninstall-again", ("uninstall", "--group", GROUP, "--yes")),
)
#: Run in a sandbox whose kubelet cannot pull the runner image.
PULL_EXAMPLES = (
    Example(
        "wait-image-pull",
        ("install", "--group", GROUP, "--skip-templates", "--skip-schedule", "--timeout", "8"),
    ),
)


def run(sandbox: Sandbox, example: Example) -> str:
    """``$ bootstrap ARGS`` and what it printed (stderr and stdout as a terminal shows them)."""
    if example.toml is not None:
        (sandbox.workdir / "bootstrap.toml").write_text(example.toml)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(sandbox.workdir),
        "PYTHONUNBUFFERED": "1",
        **sandbox.env,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bootstrap", *example.args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=sandbox.workdir,
        check=False,
        timeout=300,
    )
    lines = proc.stdout.splitlines()
    if example.start:
        lines = lines[next(i for i, line in enumerate(lines) if line.startswith(example.start)) :]
    code = f"\n(exit {proc.returncode})" if proc.returncode else ""
    return "\n".join([f"$ bootstrap {' '.join(example.args)}", *lines]) + code + "\n"


_VOLATILE: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"http://127\.0\.0\.1:\d+(/fake-[0-9a-f]+)?", "http://127.0.0.1:PORT"),
        (
            r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d| UTC)?",
            "2026-12-02T08:00:00Z",
        ),
        # Access token expiry dates (days from today).
        (r"(expires )\d{4}-\d\d-\d\d\b", r"\g<1>2027-03-02"),
        (r"sha256:[0-9a-f]{64}", "sha256:…"),
        (r"gitlab-runner-[a-z0-9]{10}-[a-z0-9]{5}\b", "gitlab-runner-7d9f8c6b5b-x2k9q"),
        (r"\((?:\d+)s\)", "(Ns)"),
        (r"\b[0-9a-f]{8}\)", "3f2a9c1e)"),
        (r"\b(glrt|glpat)-…[A-Za-z0-9_-]{4}", r"\1-…XXXX"),
        (r"/tmp/[^\s'\"]+", "/tmp/sandbox"),
        (r"pid-\d+/[0-9a-f]+", "pid-N/RANDOM"),
        # The ops project holds a copy of the package: its file count follows the source.
        (r"(rotation pipeline and tool \S+(?: to \S+ \(|: ))\d+ files", r"\g<1>NN files"),
    )
)


def normalise(text: str) -> str:
    """The output without what changes between runs (ports, times, ids, hashes)."""
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def produce(workdir: Path) -> dict[str, str]:
    """Every example's normalised output, each scenario in a fresh sandbox."""
    outputs: dict[str, str] = {}
    scenarios: tuple[tuple[str | None, tuple[Example, ...]], ...] = (
        (None, EXAMPLES),
        (PULL_ERROR.format(image=RUNNER_IMAGE), PULL_EXAMPLES),
    )
    for index, (pull_error, examples) in enumerate(scenarios):
        with Sandbox(workdir / f"sandbox-{index}", image_pull_fails=pull_error) as sandbox:
            for example in examples:
                outputs[example.name] = normalise(run(sandbox, example))
    return outputs


def doc_blocks(text: str) -> Iterator[tuple[str, str]]:
    """(name, content) of each ``<!-- example: NAME -->`` block."""
    for match in EXAMPLE.finditer(text):
        yield match.group(2), match.group(3)


def rewrite_docs(outputs: dict[str, str], *, write: bool) -> list[str]:
    """Compare (or, with ``write``, replace) each example block; returns what differs."""
    differ: list[str] = []
    for path in DOCS:
        text = path.read_text()

        def replace(match: re.Match[str], path: Path = path) -> str:
            name = match.group(2)
            if name not in outputs:
                differ.append(f"{path.relative_to(REPO)}: no example named {name}")
                return match.group(0)
            if normalise(match.group(3)) != outputs[name]:
                differ.append(f"{path.relative_to(REPO)}: example {name}")
            return match.group(1) + outputs[name] + match.group(4)

        new = EXAMPLE.sub(replace, text)
        if write and new != text:
            path.write_text(new)
    return differ


# --- the command ----------------------------------------------------------------------------


def _serve(sandbox: Sandbox, env_file: Path | None) -> None:
    print(f"Sandbox: a fake GitLab at {sandbox.gitlab.url} (group {GROUP}, you are its Owner)")
    print(f"and a fake ACK cluster (kubeconfig {sandbox.workdir / 'kubeconfig'}).")
    if sandbox.image_pull_fails:
        print("Its kubelet cannot pull images: the rollout wait shows why.")
    print("\nIn another shell:\n")
    print("".join(f"  {line}\n" for line in sandbox.exports().splitlines()), end="")
    bindir = Path(sys.executable).parent
    if (bindir / "bootstrap").exists():
        print(f"  export PATH={bindir}:$PATH   # the bootstrap of this sandbox's Python")
    print()
    print(
        f"  bootstrap doctor --group {GROUP}\n"
        f"  bootstrap install --group {GROUP} --dry-run\n"
        f"  bootstrap install --group {GROUP}\n"
        f"  bootstrap status --group {GROUP}\n"
        f"  bootstrap rotate --group {GROUP} --force\n"
        f"  bootstrap uninstall --group {GROUP} --yes\n"
    )
    print("Everything lives in memory: Ctrl-C stops the sandbox and forgets it.", flush=True)
    if env_file is not None:
        env_file.write_text(sandbox.exports())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/sandbox",
        description="Start a fake GitLab and a fake cluster on 127.0.0.1 to try bootstrap.",
    )
    parser.add_argument("--dir", type=Path, help="where the kubeconfig goes (default: a temp dir)")
    parser.add_argument("--env-file", type=Path, help="also write the exports to this file")
    parser.add_argument(
        "--image-pull-fails",
        action="store_true",
        help="the fake kubelet cannot pull images (see how the rollout wait explains it)",
    )
    parser.add_argument(
        "--write-docs", action="store_true", help="regenerate the docs' example outputs"
    )
    parser.add_argument(
        "--check-docs", action="store_true", help="exit 1 when an example output is stale"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bootstrap-sandbox-") as tmp:
        workdir = args.dir or Path(tmp)
        if args.write_docs or args.check_docs:
            differ = rewrite_docs(produce(workdir), write=args.write_docs)
            for line in differ:
                print(("rewrote " if args.write_docs else "stale: ") + line)
            return 1 if differ and args.check_docs else 0
        pull = PULL_ERROR.format(image=RUNNER_IMAGE) if args.image_pull_fails else None
        with Sandbox(workdir, image_pull_fails=pull) as sandbox:
            _serve(sandbox, args.env_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
