"""``bootstrap templates publish``: the CI templates, versioned, in a project of the group.

1. Render the templates project with the organisation's defaults.
2. Find the project (``<group>/<templates.project>``) or create it (internal by default;
   private where the instance restricts internal, as GitLab.com does for new projects).
3. Compare the rendered files with the repository by git blob hash — no file is
   downloaded — and make one commit with create/update/delete actions, or none when nothing
   changed. Deletions are limited to the directories the tool owns.
4. Make the project a CI/CD Catalog resource when it is not one yet (an Owner's right; a
   refusal is a warning, and every later run tries again), *before* the tag: the release
   job that the tag starts publishes to the Catalog only if the project is one already.
5. Tag ``vX.Y.Z`` at that commit. The project's own pipeline creates the release with the
   ``release:`` keyword (the CI/CD Catalog lists only releases made that way). Publishing
   the same content again makes no commit and no tag; changed content under a version that
   is already tagged is refused before anything is written.

Every step is safe to repeat: a commit that happened although its answer was lost shows up
as "nothing to change" on the next run, which then only tags.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from bootstrap.config import Settings
from bootstrap.deadline import whole_run
from bootstrap.errors import GitLabError, InvalidInput
from bootstrap.gitlab import GitLab, Project
from bootstrap.render import render_ci_templates
from bootstrap.report import QuietReporter, Reporter
from bootstrap.secret import Secret
from bootstrap.workflow import open_gitlab

# Paths of the templates project the tool owns: files there that it no longer renders go.
OWNED_DIRS = ("templates/", "include/", "tests/")
VISIBILITY = "internal"
_VISIBILITY_ORDER = ["private", "internal", "public"]


@dataclass
class PublishResult:
    """What publish did (or, with dry_run, would do)."""

    project: str
    dry_run: bool
    project_created: bool = False
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    commit: str | None = None
    tag: str = ""
    tag_created: bool = False
    catalog: bool | None = None
    snippet: str = ""
    warnings: list[str] = field(default_factory=list)
    #: Why the plan cannot be carried out, and the fix (an install dry run reports a changed
    #: release this way instead of stopping: the rest of the plan is still shown).
    refused: str = ""
    fix: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "dry_run": self.dry_run,
            "project_created": self.project_created,
            "files": {"created": self.created, "updated": self.updated, "deleted": self.deleted},
            "commit": self.commit,
            "tag": self.tag,
            "tag_created": self.tag_created,
            "catalog": self.catalog,
            "include_snippet": self.snippet,
            "warnings": self.warnings,
            "refused": self.refused or None,
            "fix": self.fix or None,
        }


def blob_sha(text: str) -> str:
    """The git blob id of a file's content (what the repository tree API reports)."""
    data = text.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def plan_files(
    rendered: dict[str, str], tree: dict[str, str], owned: tuple[str, ...] = OWNED_DIRS
) -> tuple[list[str], list[str], list[str]]:
    """(created, updated, deleted) paths between rendered files and a repository tree; only
    files under ``owned`` directories are deleted."""
    created = sorted(p for p in rendered if p not in tree)
    updated = sorted(p for p in rendered if p in tree and tree[p] != blob_sha(rendered[p]))
    deleted = sorted(p for p in tree if p not in rendered and p.startswith(owned))
    return created, updated, deleted


def include_snippet(settings: Settings, project_path: str, version: str) -> str:
    """The ``include:`` lines a project uses, as a component and as a plain include."""
    tags = ", ".join(settings.gitlab.tags)
    return (
        "# As CI/CD components (inputs are optional: defaults are your organisation's):\n"
        "include:\n"
        f"  - component: $CI_SERVER_FQDN/{project_path}/prepare-git@v{version}\n"
        f"  - component: $CI_SERVER_FQDN/{project_path}/dist-cache@v{version}\n"
        f"  - component: $CI_SERVER_FQDN/{project_path}/kaniko@v{version}\n"
        "    inputs:\n"
        "      needs: [build]\n"
        "\n"
        "# Or as plain include files with hidden jobs (extends: / !reference):\n"
        "include:\n"
        f"  - project: {project_path}\n"
        f"    ref: v{version}\n"
        "    file: [/include/prepare-git.yml, /include/dist-cache.yml, /include/kaniko.yml]\n"
        f"# Jobs run on this runner with: tags: [{tags}]\n"
    )


def _new_version_fix(version: str, *, for_install: bool) -> str:
    """How to publish the changed templates as a new version (the next patch release)."""
    major, minor, patch = ([*version.split("-", 1)[0].split("."), "0", "0"])[:3]
    following = f"{major}.{minor}.{int(patch) + 1 if patch.isdigit() else patch}"
    if for_install:
        return (
            f'publish a new version: set [templates] version = "{following}" in bootstrap.toml '
            f"(or BOOTSTRAP_TEMPLATES__VERSION={following}), or pass --skip-templates"
        )
    return f"publish a new version: --version {following} (or [templates] version)"


@whole_run
def publish(
    settings: Settings,
    *,
    token: Secret,
    project_name: str | None = None,
    version: str | None = None,
    dry_run: bool = False,
    reporter: Reporter | None = None,
    gitlab: GitLab | None = None,
    for_install: bool = False,
    timeout: float | None = None,
) -> PublishResult:
    """Publish the rendered CI templates into the group, versioned.

    Args:
        timeout: seconds the whole publish may take (``--timeout``; WaitTimeout, exit 5,
            past it). None (install's call) sets no bound of its own: install's applies.
        for_install: called by ``install``: its fixes name install's settings (it has no
            ``--version``), and a dry run reports a changed release in the result
            (``refused``, ``fix``) rather than raising.

    Raises:
        InvalidInput: the group is unknown, or the content changed under a released version.
        GitLabError: GitLab refused or failed a call (the token needs the ``api`` scope).
    """
    report = reporter or QuietReporter()
    templates = settings.templates.model_copy(
        update={k: v for k, v in (("project", project_name), ("version", version)) if v}
    )
    settings = settings.model_copy(update={"templates": templates})
    gl = gitlab or open_gitlab(settings, token)
    if not gl.token_info().has("api"):
        raise GitLabError(
            "GITLAB_TOKEN lacks the 'api' scope, which committing and tagging through the API "
            "needs",
            hint="use a token with the api scope (a Maintainer of the group, or its Owner)",
        )
    group = gl.group(settings.gitlab.group)
    path = f"{group.full_path}/{templates.project}"
    tag = f"v{templates.version}"
    rendered = render_ci_templates(settings)
    result = PublishResult(project=path, dry_run=dry_run, tag=tag)
    result.snippet = include_snippet(settings, path, templates.version)

    project = gl.project(path)
    if project is None:
        result.project_created = True
        if dry_run:
            result.created = sorted(rendered)
            result.tag_created = True
            return result
        # Internal, unless the group is private: a project may not be more visible than it.
        visibility = min(VISIBILITY, group.visibility, key=_VISIBILITY_ORDER.index)
        project, visibility = _create_project(settings, gl, group.id, visibility, result, report)
        report.info(f"Created project {path} ({visibility})")
    branch = project.default_branch or "main"
    head = gl.branch_head(project.id, branch)
    tree = gl.tree(project.id, branch) if head else {}
    result.created, result.updated, result.deleted = plan_files(rendered, tree)
    target = gl.tag_target(project.id, tag)
    if result.changed and target is not None:
        problem = (
            f"the templates changed, but {tag} is already released at commit {target[:8]} of {path}"
        )
        fix = _new_version_fix(templates.version, for_install=for_install)
        if dry_run and for_install:
            result.refused, result.fix = problem, fix
            result.warnings.append(f"{problem}: {fix}")
            return result
        raise InvalidInput(problem, hint=fix)
    if dry_run:
        result.tag_created = target is None
        # Whether publish would mark it a Catalog resource (install decides by it whether
        # anything writes); None: GitLab does not say, and an existing project is left alone.
        result.catalog = gl.is_catalog_resource(path)
        return result
    if result.changed:
        actions = commit_actions(rendered, result.created, result.updated, result.deleted)
        head = gl.commit(project.id, branch, _message(result, tag), actions)
        result.commit = head
        report.info(f"Committed {_count(result)} to {path}@{branch} ({head[:8]})")
    # After the first commit (older GitLab versions want a README first), before the tag.
    result.catalog = _ensure_catalog(gl, path, result, report)
    if target is None:
        if head is None:  # an empty project always gets a commit first
            raise GitLabError(f"{path} has no commit to tag", hint="rerun the publish")
        gl.create_tag(project.id, tag, head, f"CI templates {templates.version}")
        result.tag_created = True
        report.info(f"Tagged {tag}: the project's pipeline creates the release")
    return result


def _create_project(
    settings: Settings,
    gl: GitLab,
    group_id: int,
    visibility: str,
    result: PublishResult,
    report: Reporter,
) -> tuple[Project, str]:
    """Create the templates project; private when the instance refuses the visibility."""
    attributes = {
        "name": settings.templates.project,
        "path": settings.templates.project,
        "description": _description(settings),
        "visibility": visibility,
    }
    try:
        return gl.create_project(group_id, attributes), visibility
    except GitLabError as exc:
        # GitLab.com (and any instance whose admin restricts it) refuses internal for new
        # projects: 400 {"message": {"visibility_level": ["internal has been restricted ..."]}}.
        if exc.status != 400 or "visibility_level" not in str(exc) or visibility == "private":
            raise
    result.warnings.append(
        f"GitLab does not allow {visibility} projects here: created the templates project "
        "private (give the groups that include the templates access to it, or ask an admin "
        "to allow internal)"
    )
    report.warn(result.warnings[-1])
    return gl.create_project(group_id, {**attributes, "visibility": "private"}), "private"


def _ensure_catalog(gl: GitLab, path: str, result: PublishResult, report: Reporter) -> bool | None:
    """Mark the project a CI/CD Catalog resource unless it is one; None when unknown."""
    flag = gl.is_catalog_resource(path)
    if flag:
        return True
    if flag is None and not result.project_created:
        return None  # GitLab does not say (older version): leave an existing project alone
    if gl.mark_catalog_resource(path):
        report.info(f"Marked {path} as a CI/CD Catalog resource")
        return True
    result.warnings.append(
        "could not mark the project as a CI/CD Catalog resource (it takes the Owner role): an "
        "Owner can turn it on in Settings > General > Visibility, project features, "
        "permissions; the next publish tries again"
    )
    report.warn(result.warnings[-1])
    return False


def _description(settings: Settings) -> str:
    return (
        f"CI/CD components for {settings.gitlab.group}: kaniko, BuildKit, dist-cache, cache-gc "
        "and prepare-git. Managed by gitlab-eci-bootstrap: change them there, not here."
    )


def _count(result: PublishResult) -> str:
    """``16 files (14 added, 2 changed)``."""
    files = len(result.created) + len(result.updated) + len(result.deleted)
    parts = [
        f"{len(items)} {word}"
        for items, word in (
            (result.created, "added"),
            (result.updated, "changed"),
            (result.deleted, "removed"),
        )
        if items
    ]
    return f"{files} file{'s' if files != 1 else ''} ({', '.join(parts)})"


def _message(result: PublishResult, tag: str) -> str:
    return f"CI templates {tag}: {_count(result)}\n\nPublished by gitlab-eci-bootstrap."


def commit_actions(
    rendered: dict[str, str], created: list[str], updated: list[str], deleted: list[str]
) -> list[dict[str, Any]]:
    """The commit API's actions that bring a repository to ``rendered``."""
    actions: list[dict[str, Any]] = []
    for path in created:
        actions.append({"action": "create", "file_path": path, "content": rendered[path]})
    for path in updated:
        actions.append({"action": "update", "file_path": path, "content": rendered[path]})
    for path in deleted:
        actions.append({"action": "delete", "file_path": path})
    return actions
