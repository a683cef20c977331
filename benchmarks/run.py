"""Benchmarks: requests and wall time of bootstrap's workflows against the fakes, next to kubectl.

Run from the repository root (not part of the test suite):

    python -m benchmarks.run                 # latencies 0, 20, 50 ms; median of 5 runs
    python -m benchmarks.run --runs 3 --latencies 50

For each injected latency it measures, as real subprocesses (what a user runs):

- ``bootstrap install`` on an empty cluster and GitLab (fresh install);
- ``bootstrap install`` again with nothing changed (no-op re-run);
- ``bootstrap rotate --force``;
- ``bootstrap uninstall --yes``;
- real ``kubectl`` applying the same rendered manifests to the same kind of fake,
  client-side (``kubectl apply``) and server-side (``kubectl apply --server-side``).

Requests are counted from the fakes' request logs, by system and by read/write (a write
is a request that may change state; dry runs and access reviews are reads). Wall time is
the median of ``--runs`` runs. It also times ``bootstrap --help`` against
``python -c "import click"``. Results print as Markdown tables for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.gitlab import OWNER, FakeGitLab
from tests.fakes.kube import FakeKube
from tests.fakes.pods import runner_pods

TOKEN = "glpat-bench-owner-0123456789"
GROUP = "bench"
REPO = Path(__file__).resolve().parent.parent


@dataclass
class Sample:
    seconds: float
    gitlab_reads: int
    gitlab_writes: int
    kube_reads: int
    kube_writes: int
    ok: bool

    @property
    def total(self) -> int:
        return self.gitlab_reads + self.gitlab_writes + self.kube_reads + self.kube_writes


@dataclass
class Row:
    scenario: str
    latency: int
    samples: list[Sample]

    def median(self, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in self.samples)


class Env:
    """A fresh fake GitLab and cluster at one latency, and how to run commands against them."""

    def __init__(self, latency_ms: int, workdir: Path) -> None:
        self.gitlab = FakeGitLab(latency_ms=latency_ms, token_expiry=30 * 86400)
        self.gitlab.add_user("owner", TOKEN, ["api", "create_runner", "manage_runner", "read_api"])
        self.gitlab.add_group(GROUP, {"owner": OWNER})
        self.kube = FakeKube(latency_ms=latency_ms)
        # The runner pods in the fake cluster contact the fake GitLab with their token.
        self.gitlab.runner_processes = lambda: runner_pods(self.kube)
        self.workdir = workdir

    def __enter__(self) -> Env:
        self.gitlab.start()
        self.kube.start()
        self.kube.kubeconfig(self.workdir / "kubeconfig")
        self.kube.add_crd_imagecache()
        self.kube.clear_log()
        return self

    def __exit__(self, *exc: object) -> None:
        self.gitlab.stop()
        self.kube.stop()

    @property
    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            "GITLAB_URL": self.gitlab.url,
            "GITLAB_TOKEN": TOKEN,
            "KUBECONFIG": str(self.workdir / "kubeconfig"),
        }

    def measure(self, argv: list[str]) -> Sample:
        self.gitlab.clear_log()
        self.kube.clear_log()
        started = time.perf_counter()
        proc = subprocess.run(
            argv, env=self.env, cwd=self.workdir, capture_output=True, text=True, check=False
        )
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            sys.stderr.write(f"{' '.join(argv[:4])}… exited {proc.returncode}:\n{proc.stderr}\n")
        gitlab = list(self.gitlab.log)
        kube = list(self.kube.log)
        return Sample(
            seconds=seconds,
            gitlab_reads=sum(1 for r in gitlab if not r.is_write),
            gitlab_writes=sum(1 for r in gitlab if r.is_write),
            kube_reads=sum(1 for r in kube if not r.is_write),
            kube_writes=sum(1 for r in kube if r.is_write),
            ok=proc.returncode == 0,
        )


def bootstrap(*args: str) -> list[str]:
    return [sys.executable, "-m", "bootstrap", *args, "--group", GROUP]


def kubectl(*args: str, cache: Path) -> list[str]:
    return ["kubectl", *args, "--cache-dir", str(cache)]


@contextmanager
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bootstrap-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_scenarios(latency: int, runs: int) -> list[Row]:
    rows = {name: Row(name, latency, []) for name in SCENARIOS}
    for _ in range(runs):
        with workdir() as tmp, Env(latency, tmp) as env:
            rows["fresh install"].samples.append(
                env.measure(bootstrap("install", "--skip-templates", "--skip-schedule"))
            )
            rows["no-op re-run"].samples.append(
                env.measure(bootstrap("install", "--skip-templates", "--skip-schedule"))
            )
            rows["rotate"].samples.append(env.measure(bootstrap("rotate", "--force")))
            rows["uninstall"].samples.append(env.measure(bootstrap("uninstall", "--yes")))
        with workdir() as tmp:
            manifest = tmp / "manifest.yaml"
            rendered = subprocess.run(
                bootstrap("render"), capture_output=True, text=True, check=True, cwd=tmp
            ).stdout
            manifest.write_text(rendered)
            for name, extra in (
                ("kubectl apply", ()),
                ("kubectl apply --server-side", ("--server-side",)),
            ):
                with Env(latency, tmp) as env:
                    cache = tmp / f"kubectl-cache-{len(extra)}"
                    rows[name].samples.append(
                        env.measure(kubectl("apply", *extra, "-f", str(manifest), cache=cache))
                    )
    return list(rows.values())


SCENARIOS = (
    "fresh install",
    "no-op re-run",
    "rotate",
    "uninstall",
    "kubectl apply",
    "kubectl apply --server-side",
)


def time_command(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def objects_rendered() -> int:
    out = subprocess.run(bootstrap("render"), capture_output=True, text=True, check=True).stdout
    return out.count("\nkind: ")


def table(rows: list[Row]) -> str:
    lines = [
        "| scenario | latency | GitLab reads | GitLab writes | Kubernetes reads "
        "| Kubernetes writes | total requests | wall time (median) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        ok = "" if all(s.ok for s in row.samples) else " (failed)"
        lines.append(
            f"| {row.scenario}{ok} | {row.latency} ms | {row.median('gitlab_reads'):.0f} | "
            f"{row.median('gitlab_writes'):.0f} | {row.median('kube_reads'):.0f} | "
            f"{row.median('kube_writes'):.0f} | {row.median('total'):.0f} | "
            f"{row.median('seconds'):.2f} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latencies", default="0,20,50")
    args = parser.parse_args(argv)
    latencies = [int(x) for x in args.latencies.split(",")]
    machine = f"{platform.platform()} · Python {platform.python_version()}"
    print(f"# {time.strftime('%Y-%m-%d')} · {machine} · {os.cpu_count()} CPUs")
    print(f"Objects rendered by default: {objects_rendered()}\n")
    all_rows: list[Row] = []
    for latency in latencies:
        all_rows += run_scenarios(latency, args.runs)
    print(table(all_rows))
    help_time = time_command([sys.executable, "-m", "bootstrap", "--help"], 10)
    click_time = time_command([sys.executable, "-c", "import click"], 10)
    print(
        f'\n`bootstrap --help`: {help_time * 1000:.0f} ms; `python -c "import click"`: '
        f"{click_time * 1000:.0f} ms; ratio {help_time / click_time:.2f} (median of 10)"
    )


if __name__ == "__main__":
    main()
