"""The ``bootstrap`` command line: parse, call one library function, map errors to exit codes.

Only click is imported at start-up; everything else is imported by the command that needs it,
so ``bootstrap --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bootstrap import __version__

if TYPE_CHECKING:
    from bootstrap.secret import Secret

F = TypeVar("F", bound=Callable[..., Any])

EPILOG_EXIT_CODES = (
    "Exit codes: 0 ok, 1 bug, 2 invalid input, 3 GitLab error, 4 Kubernetes error, "
    "5 timed out waiting, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM)."
)
INTERRUPTED_HINT = (
    "hint: rerun the command: the next run reads what GitLab and the cluster hold and "
    "finishes from there"
)


def _complete_context(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """The kubeconfig's contexts (of --kubeconfig when given before, else $KUBECONFIG)."""
    import os

    from click.shell_completion import CompletionItem

    from bootstrap.kubeconfig import context_names

    names = context_names(ctx.params.get("kubeconfig"), os.environ)
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


def _complete_dir(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Directories: the shell completes them itself."""
    from click.shell_completion import CompletionItem

    return [CompletionItem(incomplete, type="dir")]


def settings_options(func: F) -> F:
    """The options every command shares; they override bootstrap.toml and the environment."""
    options = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(),
            metavar="FILE",
            help="Settings file (TOML). Default: ./bootstrap.toml when present.",
        ),
        click.option(
            "--group", metavar="FULL_PATH", help="GitLab group full path, e.g. mygroup/sub."
        ),
        click.option(
            "--namespace", "-n", metavar="NS", help="Kubernetes namespace. Default: gitlab-runner."
        ),
        click.option(
            "--context",
            metavar="NAME",
            shell_complete=_complete_context,
            help="kubeconfig context to use.",
        ),
        click.option(
            "--kubeconfig",
            type=click.Path(),
            metavar="FILE",
            help="kubeconfig file. Default: $KUBECONFIG.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return verbosity_options(func)


def _refuse_unused(params: dict[str, Any], command: str, unused: tuple[str, ...], why: str) -> None:
    """A flag the command would ignore is refused (exit 2), not silently dropped."""
    from bootstrap.errors import InvalidInput

    given = [f"--{name}" for name in unused if params.get(name) is not None]
    if given:
        raise InvalidInput(
            f"{command} does not use {' or '.join(given)}: {why}",
            hint=f"drop {' and '.join(given)} (cluster flags are for install, status, rotate, "
            "uninstall and doctor)",
        )


def _load(params: dict[str, Any]) -> Any:
    from bootstrap.config import load_settings

    flags = {
        "gitlab.group": params.get("group"),
        "kubernetes.namespace": params.get("namespace"),
        "kubernetes.context": params.get("context"),
        "kubernetes.kubeconfig": params.get("kubeconfig"),
        "rotation.token_env": params.get("schedule_token_env"),
    }
    loaded = load_settings(params.get("config_file"), flags=flags)
    if _verbose():
        from bootstrap.verbose import describe_sources

        for line in describe_sources(loaded, params.get("config_file")):
            click.echo(line, err=True)
    return loaded


BUG_REPORT = (
    "this is a bug in bootstrap {version}, not something you did wrong: please report it "
    "with the output of the same command rerun with --debug (tokens are redacted there)"
)


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """``-v``/``--debug`` before or after the command name: both land in the root context."""
    if value:
        root = ctx.find_root()
        root.meta[f"bootstrap.{param.name}"] = True
        if param.name == "debug":
            root.meta["bootstrap.verbose"] = True
            from bootstrap.verbose import log_http

            log_http()


_VERBOSITY = (
    (
        ("--verbose", "-v"),
        "Say which settings file, GitLab and kubeconfig are used, and where each came from.",
    ),
    (("--debug",), "Like -v, plus every HTTP request and, on a bug, the traceback (redacted)."),
)


def verbosity_options(func: F) -> F:
    """``-v/--verbose`` and ``--debug``, taken by the root group and by every command."""
    for names, text in reversed(_VERBOSITY):
        func = click.option(
            *names,
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_set_verbosity,
            help=text,
        )(func)
    return func


def _verbose() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().meta.get("bootstrap.verbose"))


class _Group(click.Group):
    """Maps the library's errors to the contract's exit codes, in this one place."""

    def invoke(self, ctx: click.Context) -> Any:
        from bootstrap.errors import BootstrapError, Terminated

        try:
            return super().invoke(ctx)
        except BootstrapError as exc:
            click.echo(f"error: {exc}", err=True)
            if exc.hint:
                click.echo(f"hint: {exc.hint}", err=True)
            ctx.exit(exc.exit_code)
        except (KeyboardInterrupt, Terminated) as exc:
            # The shell's convention: 128 + the signal's number (SIGINT 2, SIGTERM 15).
            name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
            click.echo(f"\nerror: interrupted ({name}); stopped", err=True)
            click.echo(INTERRUPTED_HINT, err=True)
            ctx.exit(Terminated.exit_code if isinstance(exc, Terminated) else 130)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception:
            # The last resort: anything else is a bug. One line, and the traceback (redacted)
            # only when asked for: it may quote settings, never meant for a terminal log.
            from bootstrap.verbose import redacted_traceback

            if ctx.meta.get("bootstrap.debug"):
                click.echo(redacted_traceback(), err=True, nl=False)
            click.echo("error: " + BUG_REPORT.format(version=__version__), err=True)
            ctx.exit(1)
        finally:
            if ctx.meta.get("bootstrap.debug"):
                from bootstrap.verbose import stop_http_log

                stop_http_log()


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EPILOG_EXIT_CODES,
)
@click.version_option(__version__, "--version", "-V", prog_name="bootstrap")
@verbosity_options
def cli() -> None:
    """Give a GitLab group its own autoscaling runner on serverless Kubernetes.

    Only the runner manager pod runs all the time; every CI job gets its own pod (on Alibaba
    Cloud ECI: billed per second). Settings come from bootstrap.toml, the environment
    (GITLAB_URL, GITLAB_TOKEN, BOOTSTRAP_<SECTION>__<KEY>) and flags, in rising precedence.

    Shell completion: eval "$(_BOOTSTRAP_COMPLETE=bash_source bootstrap)" (zsh_source and
    fish_source work too).
    """


output_option = click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for scripts (no token ever appears in either).",
)


@cli.command(epilog=EPILOG_EXIT_CODES)
@settings_options
@click.option(
    "--out",
    shell_complete=_complete_dir,
    default="-",
    show_default=True,
    metavar="DIR|-",
    help="Directory to write (one file per object, kustomization.yaml, config.toml, "
    "ci-templates/), or - for multi-document YAML on stdout.",
)
@output_option
@click.option(
    "--force",
    is_flag=True,
    help="With --out: also overwrite files render did not write there, or that were changed "
    "since (never through a symlink).",
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
      bootstrap render --group mygroup --output json | jq .cost   # what job pods bill as
    """
    from pathlib import Path

    from bootstrap.config import require_group
    from bootstrap.manifests import check_out_dir, manifest_files, multi_document, write_tree
    from bootstrap.render import Credentials, render, render_ci_templates

    # --context stays: without kubernetes.cluster_name it names the cluster in what renders.
    _refuse_unused(params, "render", ("kubeconfig",), "it renders offline and reads no cluster")
    loaded = _load(params)
    require_group(loaded)
    out = params["out"]
    if out != "-":
        check_out_dir(Path(out))
    # Offline: placeholders stand in for every credential; nothing is read or contacted.
    rendered = render(loaded.settings, Credentials.placeholders())
    as_json = params["output"] == "json"
    _print_cost("text", loaded.settings, err=True)
    if out == "-":
        if as_json:
            _echo_json({"objects": [o.body for o in rendered.objects]}, loaded.settings)
        else:
            click.echo(multi_document(rendered.objects), nl=False)
        return
    templates = render_ci_templates(loaded.settings)
    files = manifest_files(rendered, templates)
    written = write_tree(Path(out), files, force=params["force"])
    objects = len(rendered.objects)
    if as_json:
        _echo_json(
            {"out": out, "files": sorted(files), "removed": written.removed, "kept": written.kept},
            loaded.settings,
        )
    click.echo(
        f"Wrote {len(files)} files to {out}: {objects} Kubernetes objects, kustomization.yaml, "
        f"config.toml (placeholder token) and {len(templates)} CI template files.",
        err=True,
    )
    for path in written.removed:
        click.echo(f"Removed {path} (no longer rendered)", err=True)
    for path in written.kept:
        click.echo(
            f"warning: kept {path}: no longer rendered, but not as render wrote it "
            "(changed, or not recorded): delete it yourself if it is not needed",
            err=True,
        )


def _echo_json(data: dict[str, Any], settings: Any) -> None:
    """render's JSON document, with what each job pod bills as."""
    from bootstrap.cost import billing_summary
    from bootstrap.present import to_json

    click.echo(to_json({**data, "cost": billing_summary(settings).as_dict()}), nl=False)


def _print_cost(output: str, settings: Any, *, err: bool = False) -> None:
    """What each job pod bills as (text output only: JSON stays one document)."""
    from bootstrap.cost import billing_summary

    if output == "text":
        for line in billing_summary(settings).lines():
            click.echo(line, err=err)


def _show(output: str, result: Any, text: Callable[[Any], str]) -> None:
    """Print a workflow's result: JSON for scripts, else its text view."""
    from bootstrap.present import to_json

    click.echo(to_json(result.as_dict()) if output == "json" else text(result), nl=False)


def _environ() -> Mapping[str, str]:
    """The environment for a workflow: its ``repr`` (in a traceback's locals) shows no value."""
    import os

    from bootstrap.secret import Environ

    return Environ(os.environ)


def _gitlab_token() -> Secret:
    from bootstrap.inputs import gitlab_token

    return gitlab_token(_environ())


# click >= 8.3 makes ParamType generic; 8.2 (the lowest allowed) cannot subscript it.
if TYPE_CHECKING:
    _ParamType = click.ParamType[int]
else:
    _ParamType = click.ParamType


class _Timeout(_ParamType):
    """``90s``, ``5m``, ``1h`` or plain seconds, as kubectl's and helm's ``--timeout``."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from bootstrap.validators import parse_timeout

        if isinstance(value, int):
            return value
        try:
            return parse_timeout(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


timeout_option = click.option(
    "--timeout",
    type=_Timeout(),
    default="10m",
    show_default=True,
    metavar="DURATION",
    help="Give up (exit 5) when the whole run takes longer: every request, retry and wait "
    "included. 90s, 5m, 1h, or seconds.",
)


@cli.command(epilog=EPILOG_EXIT_CODES)
@settings_options
@click.option("--dry-run", is_flag=True, help="Read only: print the plan, change nothing.")
@click.option("--no-wait", is_flag=True, help="Do not wait for the rollout and the runner.")
@timeout_option
@click.option(
    "--skip-templates", is_flag=True, help="Do not publish the CI templates into the group."
)
@click.option(
    "--skip-schedule", is_flag=True, help="Do not create or update the rotation schedule."
)
@click.option(
    "--schedule-token-env",
    metavar="VAR",
    help="Where group access tokens are unavailable (GitLab.com Free): store the token in "
    "environment variable VAR as the rotation job's GITLAB_TOKEN ([rotation] token_env).",
)
@click.option(
    "--diff",
    "show_content",
    is_flag=True,
    help="Also show every field of what is created (changes are always shown; secret "
    "values never).",
)
@output_option
def install(**params: Any) -> None:
    """Create the group runner in GitLab and deploy it to Kubernetes (idempotent).

    Needs GITLAB_TOKEN: a token of a group Owner with the api scope (create_runner,
    manage_runner and read_api are enough with --skip-templates --skip-schedule), and a
    kubeconfig that may manage the namespace. A second run with nothing
    changed writes nothing; a run after a lost Secret resets the existing runner's token
    instead of creating a second runner.

    \b
    Examples:
      export GITLAB_URL=https://gitlab.example.com GITLAB_TOKEN=glpat-...
      bootstrap install --group mygroup --dry-run     # the plan, with diffs
      bootstrap install --group mygroup --dry-run --diff   # and what is created
      bootstrap install --group mygroup               # do it, wait for the runner
      bootstrap install --config prod.toml --output json --no-wait
    """
    from bootstrap.config import require_group
    from bootstrap.install import InstallResult
    from bootstrap.install import install as run_install
    from bootstrap.present import install_text, plan_text
    from bootstrap.report import ConsoleReporter

    loaded = _load(params)
    require_group(loaded)
    token = _gitlab_token()
    _print_cost(params["output"], loaded.settings)  # what the plan's job pods will bill as
    reporter = ConsoleReporter()
    show_content = params["show_content"]

    def print_plan(plan: InstallResult) -> None:
        # The real run shows its plan before it acts, in the dry run's words.
        if params["output"] == "text":
            reporter.info(plan_text(plan, show_content=show_content).rstrip("\n"))

    try:
        result = run_install(
            loaded.settings,
            token=token,
            environ=_environ(),
            dry_run=params["dry_run"],
            wait=not params["no_wait"],
            timeout=params["timeout"],
            templates=not params["skip_templates"],
            schedule=not params["skip_schedule"],
            reporter=reporter,
            on_plan=print_plan,
        )
    finally:
        reporter.close()
    args = _naming_args(params)
    _show(
        params["output"],
        result,
        lambda r: install_text(r, show_content=show_content, args=args),
    )


def _naming_args(params: dict[str, Any]) -> str:
    """The flags given that name this installation, repeated in the next commands shown."""
    import shlex

    flags = (
        ("config_file", "--config"),
        ("group", "--group"),
        ("namespace", "--namespace"),
        ("context", "--context"),
        ("kubeconfig", "--kubeconfig"),
    )
    return " ".join(f"{flag} {shlex.quote(params[k])}" for k, flag in flags if params.get(k))


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    from bootstrap.validators import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@cli.command(epilog=EPILOG_EXIT_CODES)
@settings_options
@click.option(
    "--if-expiring-within",
    "within",
    metavar="DURATION",
    callback=_duration,
    help="Rotate only when the token expires within this (7d, 36h, 1w). For a daily schedule.",
)
@click.option("--force", is_flag=True, help="Rotate even when the token is far from expiring.")
@click.option("--dry-run", is_flag=True, help="Read only: say what would happen.")
@click.option("--no-wait", is_flag=True, help="Do not wait for the new pod and the runner.")
@timeout_option
@output_option
def rotate(**params: Any) -> None:
    """Reset the runner token, store it in the cluster and roll the runner pod.

    Resets by id when GITLAB_TOKEN has manage_runner (and an Owner's role), else with the
    runner's current token (and says so). The old pod finishes its running jobs before it
    stops. A stored token known dead (past its expiry, or reset elsewhere) is repaired.
    Output shows the old and new expiry, never a token.

    \b
    Examples:
      bootstrap rotate --group mygroup --if-expiring-within 7d   # daily schedule
      bootstrap rotate --group mygroup --force --dry-run
    """
    from bootstrap.config import require_group
    from bootstrap.present import rotate_text
    from bootstrap.report import ConsoleReporter
    from bootstrap.rotate import rotate as run_rotate

    loaded = _load(params)
    require_group(loaded)
    token = _gitlab_token()
    reporter = ConsoleReporter()
    try:
        result = run_rotate(
            loaded.settings,
            token=token,
            environ=_environ(),
            within=params["within"],
            force=params["force"],
            dry_run=params["dry_run"],
            wait=not params["no_wait"],
            timeout=params["timeout"],
            reporter=reporter,
        )
    finally:
        reporter.close()
    _show(params["output"], result, rotate_text)


@cli.command(
    epilog="Exit codes: 0 healthy; 3 the runner is missing in GitLab, not online, its token "
    "expired or was reset elsewhere, or its GitLab settings changed (checked first); 4 not "
    "installed, the Deployment is missing or not ready, the pods run an older config than the "
    "Secret holds, or objects differ from the settings. 1 bug, 2 invalid input, and 3 or 4 "
    "also when GitLab or the cluster cannot be read; 5 --timeout passed."
)
@settings_options
@timeout_option
@output_option
def status(**params: Any) -> None:
    """Show whether the runner is healthy, in GitLab and in the cluster. Reads only.

    GitLab: the runner's id, description, status, last contact, token expiry and tags (the
    token is judged by its expiry: status never calls POST /runners/verify, which would
    record a contact). Kubernetes: ready replicas, the images the pods run, and whether the
    pods run the config.toml the Secret holds now. Drift: the objects `install` would create
    or update. Needs GITLAB_TOKEN with read_api (Maintainer or Owner of the group) and the
    same settings and credential inputs as install.

    \b
    Examples:
      bootstrap status --group mygroup
      bootstrap status --group mygroup --output json | jq .problems
      bootstrap status --group mygroup || alert "runner unhealthy"
    """
    from bootstrap.config import require_group
    from bootstrap.present import status_text
    from bootstrap.report import ConsoleReporter
    from bootstrap.status import status as run_status

    loaded = _load(params)
    require_group(loaded)
    token = _gitlab_token()
    result = run_status(
        loaded.settings,
        token=token,
        environ=_environ(),
        reporter=ConsoleReporter(),
        timeout=params["timeout"],
    )
    _show(params["output"], result, status_text)
    _print_cost(params["output"], loaded.settings)
    failure = result.failure()
    if failure is not None:
        raise failure


def _stdin_is_terminal() -> bool:
    import sys

    return sys.stdin is not None and sys.stdin.isatty()


@cli.command(epilog=EPILOG_EXIT_CODES)
@settings_options
@click.option(
    "--purge-cache",
    is_flag=True,
    help="Also delete the cache PersistentVolumeClaim and PersistentVolume (the cached data).",
)
@click.option(
    "--delete-namespace",
    is_flag=True,
    help="Also delete the namespace, when install created it (never one made by others).",
)
@click.option(
    "--delete-ops-project",
    is_flag=True,
    help="Also delete the ops project <group>/gitlab-eci-bootstrap (kept by default: its "
    "history is the rotation's record).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Read only: print what would be deleted.")
@click.option(
    "--no-wait",
    is_flag=True,
    help="Delete the runner in GitLab without waiting for its pod to finish running jobs.",
)
@timeout_option
@output_option
def uninstall(**params: Any) -> None:
    """Delete the runner in GitLab and every object install deployed (idempotent).

    Order: the Deployment first, then (after its pod has finished its running jobs) every
    runner of this installation in GitLab, then the other objects labelled for the
    namespace, the config Secret last; under the namespace lock, as install. Kept unless
    asked, like `helm uninstall`: the cache PVC and PV (--purge-cache) and the namespace
    (--delete-namespace; only one that install created). Asks for confirmation on a
    terminal; elsewhere it needs --yes. A second run says nothing is left.
    Needs GITLAB_TOKEN with manage_runner of a group Owner.

    \b
    Examples:
      bootstrap uninstall --group mygroup --dry-run
      bootstrap uninstall --group mygroup
      bootstrap uninstall --group mygroup --yes --purge-cache --delete-namespace
    """
    from bootstrap.config import require_group
    from bootstrap.errors import InvalidInput
    from bootstrap.present import uninstall_text
    from bootstrap.report import ConsoleReporter
    from bootstrap.uninstall import UninstallResult
    from bootstrap.uninstall import uninstall as run_uninstall

    loaded = _load(params)
    require_group(loaded)
    token = _gitlab_token()
    ask = not params["yes"] and not params["dry_run"]
    if ask and not _stdin_is_terminal():
        raise InvalidInput(
            "uninstall deletes the runner and its objects: it needs --yes when stdin is not "
            "a terminal to confirm on",
            hint="review with --dry-run, then run again with --yes",
        )

    def confirm(plan: UninstallResult) -> bool:
        click.echo(uninstall_text(plan), nl=False, err=True)
        return click.confirm("Delete them?", default=False, err=True)

    reporter = ConsoleReporter()
    try:
        result = run_uninstall(
            loaded.settings,
            token=token,
            purge_cache=params["purge_cache"],
            delete_namespace=params["delete_namespace"],
            delete_ops_project=params["delete_ops_project"],
            dry_run=params["dry_run"],
            wait=not params["no_wait"],
            timeout=params["timeout"],
            confirm=confirm if ask else None,
            reporter=reporter,
        )
    finally:
        reporter.close()
    _show(params["output"], result, uninstall_text)


@cli.command(
    epilog="Exit codes: 0 every check passed (warnings allowed); else the code of the first "
    "failed check: 2 invalid input (GITLAB_TOKEN, credential files, group, kubeconfig), 3 "
    "GitLab, 4 Kubernetes; 5 --timeout passed before the checks ended."
)
@settings_options
@timeout_option
@output_option
def doctor(**params: Any) -> None:
    """Check everything install needs, without changing anything; each failure with its fix.

    GITLAB_TOKEN set and well formed; GitLab reachable (and its version); the token's scopes
    (create_runner, manage_runner, read_api); the group; the Owner role; the kubeconfig and
    context; the cluster reachable (and its version); the namespace; the ImageCache CRD (eci
    profile: a warning when missing); and, by SelfSubjectAccessReview, every verb install
    needs on every kind it applies. Also what each job pod bills as on ECI and, in the eci
    profile, the virtual nodes' architecture, quota and out-of-stock events, and image pulls
    that time out (egress itself cannot be seen from the API: it says so). All checks run
    even when one fails.

    \b
    Examples:
      bootstrap doctor --group mygroup
      bootstrap doctor --config prod.toml --output json
    """
    from bootstrap.doctor import doctor as run_doctor
    from bootstrap.present import doctor_text

    loaded = _load(params)
    result = run_doctor(loaded.settings, environ=_environ(), timeout=params["timeout"])
    _show(params["output"], result, doctor_text)
    failure = result.failure()
    if failure is not None:
        raise failure


@cli.group()
def templates() -> None:
    """The CI templates (kaniko, BuildKit, dist-cache, cache-gc, prepare-git)."""


@templates.command(epilog=EPILOG_EXIT_CODES)
@settings_options
@click.option("--project", metavar="NAME", help="Project in the group. Default: ci-templates.")
@click.option("--version", "version", metavar="X.Y.Z", help="Release version (tag vX.Y.Z).")
@click.option("--dry-run", is_flag=True, help="Read only: list what would change.")
@timeout_option
@output_option
def publish(**params: Any) -> None:
    """Publish the CI templates into a project of the group, versioned.

    Creates the project when missing (internal; private in a private group), commits the
    rendered templates in one
    commit (none when nothing changed) and tags vX.Y.Z; the project's own pipeline then
    creates the release with the `release:` keyword, which lists it in the CI/CD Catalog.
    Needs GITLAB_TOKEN with the api scope. Prints the `include:` lines to use.

    \b
    Examples:
      bootstrap templates publish --group mygroup
      bootstrap templates publish --group mygroup --version 1.1.0 --dry-run
    """
    from bootstrap.config import require_group
    from bootstrap.present import publish_text
    from bootstrap.publish import publish as run_publish
    from bootstrap.report import ConsoleReporter
    from bootstrap.validators import check_semver

    _refuse_unused(
        params,
        "templates publish",
        ("context", "kubeconfig", "namespace"),
        "it talks to GitLab only, and the templates do not depend on the cluster",
    )
    if params["version"]:
        try:
            check_semver(params["version"])
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--version") from None
    loaded = _load(params)
    require_group(loaded)
    token = _gitlab_token()
    result = run_publish(
        loaded.settings,
        token=token,
        project_name=params["project"],
        version=params["version"],
        dry_run=params["dry_run"],
        reporter=ConsoleReporter(),
        timeout=params["timeout"],
    )
    _show(params["output"], result, publish_text)


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


def _terminate(signum: int, frame: Any) -> None:
    from bootstrap.errors import Terminated

    raise Terminated()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``bootstrap`` console script and ``python -m bootstrap``.

    SIGTERM (``kill``, a CI job cancelled, a pod stopped) stops the run as Ctrl-C does: the
    namespace lock is released on the way out, and the exit code is 143 (Ctrl-C: 130).
    """
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    cli.main(args=argv, prog_name="bootstrap")
