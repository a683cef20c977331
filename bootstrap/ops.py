"""The ops project: where the scheduled rotation runs, with everything its pipeline needs.

``install`` creates the project (``rotation.project``, default
``<group>/gitlab-eci-bootstrap``, private) or adopts an existing one, and commits into it:

- ``.gitlab-ci.yml``: the rotation job, with the job's settings (group, namespace, cluster
  name, window) in its ``variables:``. Nothing rides on schedule variables: GitLab.com
  creates projects with "minimum role to use pipeline variables: no one allowed", and
  schedule variables then answer 403 even to an Owner.
- ``tool/bootstrap/**``: this package's own source, at the version that runs ``install``, and
  ``tool/requirements.txt``: the package's lock (``bootstrap/requirements.lock``, written
  by ``scripts/lock``): every dependency, transitive ones included, ``==`` one version, with
  the sha256 of each wheel the job image may install. The job installs exactly that set
  (``pip install --require-hashes --only-binary=:all:``; a self-managed GitLab whose runners
  reach only a PyPI mirror works: pip obeys ``PIP_INDEX_URL``) and runs
  ``PYTHONPATH=tool python3 -m bootstrap rotate``. No package registry, no wheel build, no
  network access to this repository is needed.

The files are compared by git blob hash (no download). The same version writes nothing; a
new version makes exactly one commit. Only ``.gitlab-ci.yml`` and ``tool/`` are the tool's:
other files of an adopted project stay as they are.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bootstrap
from bootstrap import __version__
from bootstrap.config import Settings
from bootstrap.gitlab import GitLab, Project
from bootstrap.publish import commit_actions, plan_files
from bootstrap.render.names import OPS_RUNNER_TAG, ROTATOR
from bootstrap.report import QuietReporter, Reporter

DEFAULT_OPS_PROJECT = "gitlab-eci-bootstrap"
PIPELINE_FILE = ".gitlab-ci.yml"
TOOL_DIR = "tool/"
JOB = "rotate-runner-token"
#: The image of the rotation job: the Python the tool is tested with.
JOB_IMAGE = "python:3.11.11-slim-bookworm"
#: The lock of the package's dependencies (scripts/lock), shipped inside the package.
LOCK_FILE = "requirements.lock"
#: How the job installs it: exactly the locked versions and wheels, or nothing.
PIP_INSTALL = (
    "python3 -m pip install --quiet --disable-pip-version-check --require-hashes"
    " --only-binary=:all: -r tool/requirements.txt"
)


@dataclass
class OpsResult:
    """What happened to the ops project's files."""

    project: str
    project_created: bool = False
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    commit: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "project_created": self.project_created,
            "version": __version__,
            "files": {"created": self.created, "updated": self.updated, "deleted": self.deleted},
            "commit": self.commit,
        }


def ops_project(settings: Settings) -> str:
    """The full path of the ops project."""
    return settings.rotation.project or f"{settings.gitlab.group}/{DEFAULT_OPS_PROJECT}"


def job_variables(settings: Settings) -> dict[str, str]:
    """The rotation job's settings, as the environment ``bootstrap`` reads them from."""
    return {
        "GITLAB_URL": "$CI_SERVER_URL",
        "BOOTSTRAP_GROUP": settings.gitlab.group,
        "BOOTSTRAP_NAMESPACE": settings.kubernetes.namespace,
        # In the job's pod the kube context is "in-cluster": name the cluster as install did,
        # so the runner's marker and system id are the same ones.
        "BOOTSTRAP_KUBERNETES__CLUSTER_NAME": settings.cluster_id,
        "BOOTSTRAP_ROTATE_BEFORE": settings.rotation.rotate_before,
    }


def job_script() -> list[str]:
    """The rotation job's script lines (the end-to-end test runs exactly these)."""
    return [
        PIP_INSTALL,
        "PYTHONPATH=tool python3 -m bootstrap rotate"
        ' --if-expiring-within "$BOOTSTRAP_ROTATE_BEFORE"',
    ]


def _q(value: str) -> str:
    """A YAML scalar: a JSON string is a valid YAML 1.2 double-quoted scalar."""
    return json.dumps(value)


def pipeline_file(settings: Settings) -> str:
    """The ops project's ``.gitlab-ci.yml``."""
    variables = "".join(f"    {k}: {_q(v)}\n" for k, v in job_variables(settings).items())
    script = "".join(f"    - {_q(line)}\n" for line in job_script())
    return (
        f"# Managed by gitlab-eci-bootstrap {__version__}: `bootstrap install` rewrites this\n"
        "# file and tool/. The schedule that install creates runs the job below; it renews\n"
        "# the runner tokens when they expire within BOOTSTRAP_ROTATE_BEFORE. GITLAB_TOKEN is a\n"
        "# group access token install stores as a masked, hidden, protected CI/CD variable of\n"
        "# this project; the job renews it itself (see docs/rotation.md).\n"
        "stages: [rotate, maintain]\n"
        "\n"
        "include:\n"
        "  # BOOTSTRAP_TEMPLATES_PROJECT / _VERSION are project CI/CD variables set by install.\n"
        "  - component: $CI_SERVER_FQDN/$BOOTSTRAP_TEMPLATES_PROJECT/cache-gc@"
        "$BOOTSTRAP_TEMPLATES_VERSION\n"
        "    rules:\n"
        "      - if: $BOOTSTRAP_TEMPLATES_PROJECT && $BOOTSTRAP_TEMPLATES_VERSION\n"
        "    inputs:\n"
        "      stage: maintain\n"
        "      rules:\n"
        '        - if: $CI_PIPELINE_SOURCE == "schedule"\n'
        "\n"
        f"{JOB}:\n"
        "  stage: rotate\n"
        f"  image: {JOB_IMAGE}\n"
        "  # The ops project's own runner: locked to this project, protected refs only; its\n"
        f"  # job pods run as the ServiceAccount {ROTATOR}, which no other job can get.\n"
        f"  tags: [{_q(OPS_RUNNER_TAG)}]\n"
        "  variables:\n"
        f"{variables}"
        "  script:\n"
        f"{script}"
        "  rules:\n"
        '    - if: $CI_PIPELINE_SOURCE == "schedule"\n'
        '    - if: $CI_PIPELINE_SOURCE == "web"\n'
    )


def tool_files() -> dict[str, str]:
    """This package's source tree as ``tool/bootstrap/...``, and its lock as
    ``tool/requirements.txt`` (once: not in the tree as well)."""
    root = Path(bootstrap.__file__).parent
    files: dict[str, str] = {}
    # ci_templates is a symlink in a source checkout: follow it, as the wheel build does.
    for directory, subdirs, names in os.walk(root, followlinks=True):
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
        for name in sorted(names):
            path = Path(directory, name)
            relative = path.relative_to(root).as_posix()
            if path.suffix != ".pyc" and relative != LOCK_FILE:
                files[f"{TOOL_DIR}bootstrap/{relative}"] = path.read_text()
    files[f"{TOOL_DIR}requirements.txt"] = (root / LOCK_FILE).read_text()
    return files


def rendered_files(settings: Settings) -> dict[str, str]:
    """Every file the tool owns in the ops project."""
    return {PIPELINE_FILE: pipeline_file(settings), **tool_files()}


def ensure_ops_project(
    settings: Settings,
    gitlab: GitLab,
    group_id: int,
    *,
    dry_run: bool = False,
    reporter: Reporter | None = None,
) -> tuple[Project | None, OpsResult]:
    """Create or adopt the ops project and commit what its pipeline needs (one commit or none).

    Returns the project (None only in a dry run that would create it) and what changed.
    A commit whose answer was lost shows as "nothing to change" on the next run.
    """
    report = reporter or QuietReporter()
    path = ops_project(settings)
    result = OpsResult(path)
    rendered = rendered_files(settings)
    project = gitlab.project(path)
    if project is None:
        result.project_created = True
        if dry_run:
            result.created = sorted(rendered)
            return None, result
        namespace, _, name = path.rpartition("/")
        if namespace != settings.gitlab.group:  # [rotation] project elsewhere
            group_id = gitlab.group(namespace).id
        project = gitlab.create_project(
            group_id,
            {
                "name": name,
                "path": name,
                "visibility": "private",
                "description": f"Token rotation of the {settings.gitlab.group} runner. "
                "Managed by gitlab-eci-bootstrap: `bootstrap install` rewrites "
                ".gitlab-ci.yml and tool/.",
            },
        )
        report.info(f"Created project {path} (private)")
    branch = project.default_branch or "main"
    head = gitlab.branch_head(project.id, branch)
    tree = gitlab.tree(project.id, branch) if head else {}
    result.created, result.updated, result.deleted = plan_files(rendered, tree, (TOOL_DIR,))
    if result.changed and not dry_run:
        actions = commit_actions(rendered, result.created, result.updated, result.deleted)
        count = len(actions)
        message = (
            f"gitlab-eci-bootstrap {__version__}: the rotation pipeline and tool "
            f"({count} file{'s' if count != 1 else ''})\n\nCommitted by `bootstrap install`."
        )
        result.commit = gitlab.commit(project.id, branch, message, actions)
        report.info(
            f"Committed the rotation pipeline and tool {__version__} to {path}@{branch} "
            f"({count} files, {result.commit[:8]})"
        )
    return project, result
