"""The ``bootstrap`` command line: parse, call one library function, map errors to exit codes.

Only click is imported at start-up; everything else is imported by the command that needs it,
so ``bootstrap --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from bootstrap import __version__

F = TypeVar("F", bound=Callable[..., Any])

EPILOG_EXIT_CODES = (
    "Exit codes: 0 ok, 1 bug, 2 invalid input, 3 GitLab error, 4 Kubernetes error, "
    "5 timed out waiting."
)


def settings_options(func: F) -> F:
    """The options every command shares; they override bootstrap.toml and the environment."""
    options = [
        click.option(
            "--config",
            "config_file",
            metavar="FILE",
            help="Settings file (TOML). Default: ./bootstrap.toml when present.",
        ),
        click.option(
            "--group", metavar="FULL_PATH", help="GitLab group full path, e.g. mygroup/sub."
        ),
        click.option(
            "--namespace", "-n", metavar="NS", help="Kubernetes namespace. Default: gitlab-runner."
        ),
        click.option("--context", metavar="NAME", help="kubeconfig context to use."),
        click.option("--kubeconfig", metavar="FILE", help="kubeconfig file. Default: $KUBECONFIG."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _load(params: dict[str, Any]) -> Any:
    from bootstrap.config import load_settings

    flags = {
        "gitlab.group": params.get("group"),
        "kubernetes.namespace": params.get("namespace"),
        "kubernetes.context": params.get("context"),
        "kubernetes.kubeconfig": params.get("kubeconfig"),
    }
    return load_settings(params.get("config_file"), flags=flags)


class _Group(click.Group):
    """Maps the library's errors to the contract's exit codes, in this one place."""

    def invoke(self, ctx: click.Context) -> Any:
        from bootstrap.errors import BootstrapError

        try:
            return super().invoke(ctx)
        except BootstrapError as exc:
            click.echo(f"error: {exc}", err=True)
            if exc.hint:
                click.echo(f"hint: {exc.hint}", err=True)
            ctx.exit(exc.exit_code)


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EPILOG_EXIT_CODES,
)
@click.version_option(__version__, "--version", "-V", prog_name="bootstrap")
def cli() -> None:
    """Give a GitLab group its own autoscaling runner on serverless Kubernetes.

    Only the runner manager pod runs all the time; every CI job gets its own pod (on Alibaba
    Cloud ECI: billed per second). Settings come from bootstrap.toml, the environment
    (GITLAB_URL, GITLAB_TOKEN, BOOTSTRAP_<SECTION>__<KEY>) and flags, in rising precedence.

    Shell completion: eval "$(_BOOTSTRAP_COMPLETE=bash_source bootstrap)" (zsh_source and
    fish_source work too).
    """


@cli.command(epilog=EPILOG_EXIT_CODES)
@settings_options
@click.option(
    "--out",
    "-o",
    default="-",
    show_default=True,
    metavar="DIR|-",
    help="Directory to write (one file per object, kustomization.yaml, config.toml, "
    "ci-templates/), or - for multi-document YAML on stdout.",
)
def render(**params: Any) -> None:
    """Render the whole deployment offline: no cluster, no GitLab, no credentials.

    Secrets hold clearly marked placeholders (the runner token included): `bootstrap install`
    fills in real values. With no bootstrap.toml the ECI defaults are used.

    \b
    Examples:
      bootstrap render --group mygroup                  # YAML on stdout
      bootstrap render --group mygroup --out deploy/    # files for GitOps / kustomize
      bootstrap render --config prod.toml --out - | kubectl apply --dry-run=client -f -
    """
    from pathlib import Path

    from bootstrap.config import require_group
    from bootstrap.manifests import (
        check_out_dir,
        manifest_files,
        multi_document,
        render_offline,
        write_tree,
    )

    loaded = _load(params)
    require_group(loaded)
    out = params["out"]
    if out != "-":
        check_out_dir(Path(out))
    rendered, templates = render_offline(loaded.settings)
    if out == "-":
        click.echo(multi_document(rendered.objects), nl=False)
        return
    files = manifest_files(rendered, templates)
    removed = write_tree(Path(out), files)
    objects = len(rendered.objects)
    click.echo(
        f"Wrote {len(files)} files to {out}: {objects} Kubernetes objects, kustomization.yaml, "
        f"config.toml (placeholder token) and {len(templates)} CI template files.",
        err=True,
    )
    for path in removed:
        click.echo(f"Removed {path} (no longer rendered)", err=True)


@cli.command(epilog=EPILOG_EXIT_CODES)
def schema() -> None:
    """Print the JSON Schema of bootstrap.toml.

    Editors use it to complete and check the file: put `#:schema ./bootstrap.schema.json`
    on the first line of bootstrap.toml (Taplo / Even Better TOML).

    \b
    Example:
      bootstrap schema > bootstrap.schema.json
    """
    import json

    from bootstrap.config import json_schema

    click.echo(json.dumps(json_schema(), indent=2, sort_keys=True))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``bootstrap`` console script and ``python -m bootstrap``."""
    cli.main(args=argv, prog_name="bootstrap")
