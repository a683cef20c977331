"""Projects and their repositories for :class:`~tests.fakes.gitlab.FakeGitLab`.

What the tool's ``templates publish`` and rotation schedule steps use, as GitLab 18
documents and implements it:

* projects: ``GET``/``PUT /projects/:id`` (numeric id or URL-encoded full path) and
  ``POST /projects``;
* the repository, kept as commits that each hold a snapshot of every file (path -> text):
  the tree (a blob's ``id`` is its real git blob id, trees and commits get real git object
  ids too), files and raw files, branches, commits (list, get, create with actions), tags;
* releases (read-only here: seed them with :meth:`ProjectsApi.add_release`);
* pipeline schedules and their variables; project CI/CD variables;
* ``POST /api/graphql`` (outside ``/api/v4``) answering the ``catalogResourcesCreate``
  mutation; any other query gets a GraphQL error.

Permissions follow GitLab's defaults: projects are seen through group membership
(inherited), the default branch is protected (Maintainers push, also the first push into
an empty repository), other branches take Developers, tags take Developers, creating a
project in a group, changing its settings and its CI/CD variables take Maintainers, a
pipeline schedule is changed only by its owner, and the CI/CD Catalog flag takes the
Owner role. Every REST write needs a token with the ``api`` scope.

:class:`~tests.fakes.gitlab.FakeGitLab` creates one :class:`ProjectsApi`, registers its
routes and forwards the seeding and assertion helpers (``add_project``, ``project``,
``commits``, ``tags``, ``add_release``, ``add_schedule``, ``add_variable``,
``catalog_resource``). Handlers run with the fake's lock held, like every route.
"""

from __future__ import annotations

import base64
import binascii
import copy
import difflib
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from tests.fakes.gitlab import (
    API_PREFIX,
    DEVELOPER,
    MAINTAINER,
    NO_AUTH,
    OWNER,
    READ_API,
    REPORTER,
    WRITE_API,
    ApiError,
    Call,
    Handler,
    User,
    bad_request,
    error,
    forbidden,
    iso,
    not_found,
    now,
    param_error,
    to_bool,
    to_int,
)
from tests.fakes.server import Response

if TYPE_CHECKING:
    from tests.fakes.gitlab import FakeGitLab, Group

VISIBILITY_LEVELS = {"private": 0, "internal": 10, "public": 20}
#: ``ci_pipeline_variables_minimum_override_role`` -> the least role (no_one_allowed: none).
PIPELINE_VARIABLE_ROLES = {
    "no_one_allowed": 10**6,
    "developer": DEVELOPER,
    "maintainer": MAINTAINER,
    "owner": OWNER,
}
FILE_MODE, EXECUTABLE_MODE, TREE_MODE = "100644", "100755", "040000"
COMMIT_ACTIONS = ("create", "update", "move", "delete", "chmod")
VARIABLE_TYPES = ("env_var", "file")
VARIABLE_KEY = re.compile(r"\A[a-zA-Z0-9_]{1,255}\Z")
VARIABLE_KEY_MESSAGE = "can contain only letters, digits and '_'."
# Ci::Maskable: what a masked value may look like (any non-blank text when raw).
MASKABLE = re.compile(r"\A[a-zA-Z0-9_+=/@:.~-]{8,}\Z")
MASKABLE_RAW = re.compile(r"\A\S{8,}\Z")
PROJECT_PATH = re.compile(r"\A[a-zA-Z0-9_][a-zA-Z0-9_.-]*\Z")
PROJECT_PATH_MESSAGE = (
    "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-', end in "
    "'.git' or end in '.atom'"
)
PROJECT_NAME = re.compile(r"\A\w[\w .+-]*\Z")
PROJECT_NAME_MESSAGE = (
    "can contain only letters, digits, emoji, '_', '.', '+', dashes, or spaces. It must "
    "start with a letter, digit, emoji, or '_'."
)
# ``catalogResourcesCreate(input: {projectPath: ...}) { errors }``, input inline or a variable.
CATALOG_MUTATION = re.compile(
    r"catalogResourcesCreate\s*\(\s*input\s*:\s*(?P<input>\$\w+|\{[^}]*\})\s*\)"
    r"\s*\{(?P<fields>[^}]*)\}"
)
PROJECT_PATH_ARGUMENT = re.compile(r"projectPath\s*:\s*(\$\w+|\"(?:[^\"\\]|\\.)*\")")
# ``runner(id: "gid://gitlab/Ci::Runner/N") { id tokenExpiresAt ... }``, id inline or a variable.
RUNNER_QUERY = re.compile(
    r"\brunner\s*\(\s*id\s*:\s*(?P<id>\$\w+|\"[^\"]*\")\s*\)\s*\{(?P<fields>[^}]*)\}"
)
# ``project(fullPath: "g/p") { isCatalogResource }``, path inline or a variable.
PROJECT_QUERY = re.compile(
    r"\bproject\s*\(\s*fullPath\s*:\s*(?P<path>\$\w+|\"[^\"]*\")\s*\)\s*\{(?P<fields>[^}]*)\}"
)
RUNNER_GID = re.compile(r"\Agid://gitlab/Ci::Runner/(\d+)\Z")
GRAPHQL_RESOURCE_ERROR = (
    "The resource that you are attempting to access does not exist or you don't have "
    "permission to perform this action"
)
SEED_AUTHOR = ("Administrator", "admin@example.com")


def graphql_time(moment: datetime | None) -> str | None:
    """``Types::TimeType``: ISO 8601 in whole seconds (``value.iso8601``), unlike REST's ms."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


# -- git objects -------------------------------------------------------------------------


def encode(text: str) -> bytes:
    """File content as bytes (binary content survives as surrogate escapes)."""
    return text.encode("utf-8", "surrogateescape")


def git_object_id(kind: str, data: bytes) -> str:
    """The id git gives an object: sha1 of ``b"<kind> <size>\\0" + data``."""
    header = b"%s %d\0" % (kind.encode(), len(data))
    return hashlib.sha1(header + data, usedforsecurity=False).hexdigest()


def blob_id(content: str) -> str:
    """What ``git hash-object`` prints for a file with this content."""
    return git_object_id("blob", encode(content))


@dataclass(frozen=True)
class TreeEntry:
    """One item of ``GET /repository/tree``."""

    id: str
    name: str
    type: str  # "blob" or "tree"
    path: str
    mode: str

    def as_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "path": self.path,
            "mode": self.mode,
        }


def build_trees(
    files: dict[str, str], executables: set[str]
) -> tuple[str, dict[str, list[TreeEntry]]]:
    """The root tree id and every directory's entries ("" is the root), in git order."""
    subdirs: dict[str, set[str]] = {"": set()}
    blobs: dict[str, list[str]] = {}
    for path in files:
        parent, _, name = path.rpartition("/")
        blobs.setdefault(parent, []).append(name)
        directory = parent
        while directory:
            up, _, dirname = directory.rpartition("/")
            subdirs.setdefault(up, set()).add(dirname)
            subdirs.setdefault(directory, set())
            directory = up
    trees: dict[str, list[TreeEntry]] = {}

    def visit(directory: str) -> str:
        def join(name: str) -> str:
            return f"{directory}/{name}" if directory else name

        entries = [
            TreeEntry(visit(join(n)), n, "tree", join(n), TREE_MODE) for n in subdirs[directory]
        ]
        for name in blobs.get(directory, []):
            path = join(name)
            mode = EXECUTABLE_MODE if path in executables else FILE_MODE
            entries.append(TreeEntry(blob_id(files[path]), name, "blob", path, mode))
        # git sorts entries by name, a directory as if its name ended with "/".
        entries.sort(key=lambda e: encode(e.name + ("/" if e.type == "tree" else "")))
        trees[directory] = entries
        data = b"".join(
            e.mode.lstrip("0").encode() + b" " + encode(e.name) + b"\0" + bytes.fromhex(e.id)
            for e in entries
        )
        return git_object_id("tree", data)

    return visit(""), trees


def signature(name: str, email: str, moment: datetime) -> str:
    return f"{name} <{email}> {int(moment.timestamp())} +0000"


# -- state -------------------------------------------------------------------------------


@dataclass
class Commit:
    """A commit with the full snapshot of the repository at that point."""

    id: str
    tree_id: str
    parent_ids: list[str]
    message: str
    author_name: str
    author_email: str
    committer_name: str
    committer_email: str
    created_at: datetime
    files: dict[str, str]
    executables: set[str] = field(default_factory=set)

    @property
    def title(self) -> str:
        """The first line of the message, cut at 100 characters as GitLab does."""
        line = self.message.split("\n", 1)[0]
        return line if len(line) <= 100 else line[:97] + "…"


@dataclass
class Tag:
    name: str
    commit_id: str
    target: str  # the tag object's id when annotated, else the commit id
    message: str | None = None  # None: a lightweight tag
    created_at: datetime | None = None


@dataclass
class Release:
    tag_name: str
    name: str
    description: str = ""
    author_id: int | None = None
    created_at: datetime = field(default_factory=now)
    released_at: datetime = field(default_factory=now)


@dataclass
class ScheduleVariable:
    key: str
    value: str
    variable_type: str = "env_var"


@dataclass
class PipelineSchedule:
    id: int
    description: str
    ref: str
    cron: str
    cron_timezone: str
    active: bool
    #: None: the owner's account is gone (GitLab nullifies ``owner_id`` when a user is deleted).
    owner_id: int | None
    variables: dict[str, ScheduleVariable] = field(default_factory=dict)
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)
    #: The last pipeline the schedule started (``Entities::Ci::PipelineBasic``), None: none.
    last_pipeline: dict[str, Any] | None = None


@dataclass
class CiVariable:
    """A project CI/CD variable."""

    key: str
    value: str
    variable_type: str = "env_var"
    protected: bool = False
    masked: bool = False
    hidden: bool = False
    raw: bool = False
    environment_scope: str = "*"
    description: str | None = None


@dataclass
class Project:
    """A project as the fake stores it. :attr:`files` gives every branch's files."""

    id: int
    name: str
    path: str
    full_path: str
    namespace_id: int
    description: str = ""
    visibility: str = "private"
    topics: list[str] = field(default_factory=list)
    creator_id: int | None = None
    #: The branch HEAD points at; None while the repository is empty.
    default_branch: str | None = None
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit id
    commits: dict[str, Commit] = field(default_factory=dict)  # id -> commit, oldest first
    tags: dict[str, Tag] = field(default_factory=dict)
    releases: list[Release] = field(default_factory=list)
    schedules: dict[int, PipelineSchedule] = field(default_factory=dict)
    variables: list[CiVariable] = field(default_factory=list)
    catalog_resource: bool = False
    #: ``ci_pipeline_variables_minimum_override_role``: who may set pipeline (and schedule)
    #: variables. Self-managed defaults to developer; GitLab.com to no_one_allowed for new
    #: projects. No role bypasses it.
    pipeline_variables_role: str = "developer"
    created_at: datetime = field(default_factory=now)
    last_activity_at: datetime = field(default_factory=now)

    @property
    def empty_repo(self) -> bool:
        return not self.branches

    @property
    def files(self) -> dict[str, dict[str, str]]:
        """Branch -> path -> content."""
        return {name: dict(self.commits[sha].files) for name, sha in self.branches.items()}

    def head(self, branch: str | None) -> Commit | None:
        sha = self.branches.get(branch or "")
        return self.commits[sha] if sha else None

    def resolve(self, ref: str | None) -> Commit | None:
        """A branch, a tag, a full commit id or a unique prefix of one (4+ characters)."""
        if not ref:
            return None
        for prefix in ("refs/heads/", "refs/tags/"):
            if ref.startswith(prefix) and ref[len(prefix) :]:
                ref = ref[len(prefix) :]
        if ref in self.branches:
            return self.commits[self.branches[ref]]
        if ref in self.tags:
            return self.commits[self.tags[ref].commit_id]
        if ref in self.commits:
            return self.commits[ref]
        if re.fullmatch(r"[0-9a-f]{4,39}", ref):
            found = [c for sha, c in self.commits.items() if sha.startswith(ref)]
            if len(found) == 1:
                return found[0]
        return None

    def history(self, commit: Commit | None) -> list[Commit]:
        """``commit`` and its first-parent ancestors, newest first."""
        chain = []
        while commit is not None:
            chain.append(commit)
            commit = self.commits[commit.parent_ids[0]] if commit.parent_ids else None
        return chain

    def last_commit_for(self, commit: Commit, path: str) -> Commit:
        """The newest commit (from ``commit`` back) that changed ``path``."""
        wanted = (commit.files.get(path), path in commit.executables)
        for older in self.history(commit)[1:]:
            if (older.files.get(path), path in older.executables) != wanted:
                break
            commit = older
        return commit


# -- cron --------------------------------------------------------------------------------

CRON_NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTH_NAMES = {m: i + 1 for i, m in enumerate(MONTHS)}
DAY_NAMES = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# A few ActiveSupport::TimeZone names GitLab accepts besides IANA ones.
RAILS_ZONES = {
    "UTC": "UTC",
    "London": "Europe/London",
    "Berlin": "Europe/Berlin",
    "Paris": "Europe/Paris",
    "Amsterdam": "Europe/Amsterdam",
    "Tokyo": "Asia/Tokyo",
    "Beijing": "Asia/Shanghai",
    "Singapore": "Asia/Singapore",
    "Eastern Time (US & Canada)": "America/New_York",
    "Central Time (US & Canada)": "America/Chicago",
    "Mountain Time (US & Canada)": "America/Denver",
    "Pacific Time (US & Canada)": "America/Los_Angeles",
}


@dataclass(frozen=True)
class Cron:
    """A five-field cron expression (names, ranges, steps, lists, ``@daily`` & co)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, expression: str) -> Cron | None:
        text = expression.strip(" \t")
        # fugit splits on ASCII blanks only ([ \t]+): a no-break space is no separator.
        fields = re.split(r"[ \t]+", CRON_NICKNAMES.get(text.lower(), text))
        if len(fields) != 5:
            return None
        limits: list[tuple[int, int, dict[str, int]]] = [
            (0, 59, {}),
            (0, 23, {}),
            (1, 31, {}),
            (1, 12, MONTH_NAMES),
            (0, 7, DAY_NAMES),
        ]
        sets = []
        for text_field, (low, high, names) in zip(fields, limits, strict=True):
            values = cls._field(text_field.lower(), low, high, names)
            if values is None:
                return None
            sets.append(values)
        minutes, hours, days, months, weekdays = sets
        return cls(
            minutes,
            hours,
            days,
            months,
            frozenset(d % 7 for d in weekdays),  # 7 is Sunday too
            days_restricted=fields[2] != "*",
            weekdays_restricted=fields[4] != "*",
        )

    @staticmethod
    def _field(text: str, low: int, high: int, names: dict[str, int]) -> frozenset[int] | None:
        def number(token: str) -> int | None:
            # Ruby's \d is ASCII: '３' or '١٨' are no numbers to fugit.
            ascii_number = re.fullmatch(r"[0-9]+", token) is not None
            value = names.get(token, int(token) if ascii_number else None)
            return value if value is not None and low <= value <= high else None

        values: set[int] = set()
        for part in text.split(","):
            # fugit's step is one or two digits (Fugit::Cron::Parser#slash).
            matched = re.fullmatch(r"(\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/([0-9]{1,2}))?", part)
            if matched is None:
                return None
            span, step_text = matched.groups()
            step = int(step_text or 1)
            start: int | None
            end: int | None
            if span == "*":
                start, end = low, high
            else:
                first, _, last = span.partition("-")
                start = number(first)
                end = number(last) if last else (high if step_text else start)
            if step < 1 or start is None or end is None or start > end:
                return None
            values.update(range(start, end + 1, step))
        return frozenset(values)

    def next_run(self, zone: tzinfo, after: datetime) -> datetime | None:
        """The first time after ``after`` this expression fires in ``zone``, in UTC."""
        local = after.astimezone(zone).replace(second=0, microsecond=0) + timedelta(minutes=1)
        start = local.date()
        for offset in range(366 * 8):  # long enough for 29 February
            day = start + timedelta(days=offset)
            if not self._day_matches(day):
                continue
            for hour in sorted(self.hours):
                for minute in sorted(self.minutes):
                    moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
                    if moment >= local:
                        return moment.astimezone(UTC)
        return None

    def _day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_day = day.day in self.days
        by_weekday = day.isoweekday() % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return by_day or by_weekday  # cron's rule: either matches
        if self.days_restricted:
            return by_day
        if self.weekdays_restricted:
            return by_weekday
        return True


def time_zone(name: str) -> tzinfo | None:
    """An IANA zone or one of the ActiveSupport names GitLab accepts, None if unknown."""
    zone = RAILS_ZONES.get(name, name)
    # fugit's zone grammar (Fugit::Cron::Parser#_tz_name) before the zone database.
    if not re.fullmatch(r"[A-Z][a-zA-Z0-9]+(/[A-Z][a-zA-Z0-9_]+){0,2}", zone):
        return None
    try:
        return ZoneInfo(zone)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return None


# -- the API -----------------------------------------------------------------------------


def validation_error(errors: dict[str, list[str]]) -> ApiError:
    """GitLab's ``render_validation_error!``: 400 with the model's errors."""
    return ApiError(400, {"message": errors})


def check_ref_name(name: str) -> bool:
    """Roughly ``git check-ref-format`` for a branch or tag name."""
    return bool(name) and not (
        name.startswith(("-", "/", "refs/"))
        or name.endswith(("/", ".", ".lock"))
        or ".." in name
        or "//" in name
        or "@{" in name
        or name == "@"
        or re.search(r"[\x00-\x20\x7f~^:?*\[\\]", name)
        or any(part.startswith(".") for part in name.split("/"))
    )


class ProjectsApi:
    """Projects of one :class:`FakeGitLab` (its ``projects_api`` attribute)."""

    def __init__(self, fake: FakeGitLab) -> None:
        self.fake = fake
        self.projects: dict[int, Project] = {}
        #: What an empty project reports as ``default_branch``: GitLab's "initial default
        #: branch name" (instance or group setting), unset by default, hence null.
        self.default_branch_name: str | None = None
        #: GitLab 16.x checked for a README.md and a description before marking a project
        #: as a CI/CD Catalog resource; since 17.0 that check happens at release time only.
        self.catalog_requires_readme = False
        #: The instance's "Restricted visibility levels" (admin setting; GitLab.com restricts
        #: ``internal`` for new projects): non-admins may not create projects at these.
        self.restricted_visibility_levels: set[str] = set()
        #: ``ci_pipeline_variables_minimum_override_role`` of new projects: GitLab.com creates
        #: them with ``no_one_allowed`` (set this to model it); self-managed with developer.
        self.new_project_pipeline_variables_role = "developer"

    # -- routes ----------------------------------------------------------------------

    def routes(self) -> list[tuple[str, str, Handler, tuple[str, ...]]]:
        """``(method, pattern under /api/v4, handler, accepted scopes)``."""
        project = "/projects/:id"
        repo = project + "/repository"
        schedule = project + "/pipeline_schedules/:schedule_id"
        return [
            ("GET", project, self._get_project, READ_API),
            ("POST", "/projects", self._create_project, WRITE_API),
            ("PUT", project, self._update_project, WRITE_API),
            ("DELETE", project, self._delete_project, WRITE_API),
            ("GET", repo + "/tree", self._get_tree, READ_API),
            ("GET", repo + "/files/:file_path", self._get_file, READ_API),
            ("HEAD", repo + "/files/:file_path", self._head_file, READ_API),
            ("GET", repo + "/files/:file_path/raw", self._get_raw_file, READ_API),
            ("GET", repo + "/branches", self._list_branches, READ_API),
            ("GET", repo + "/branches/:branch", self._get_branch, READ_API),
            ("GET", repo + "/commits", self._list_commits, READ_API),
            ("POST", repo + "/commits", self._create_commit, WRITE_API),
            ("GET", repo + "/commits/:sha", self._get_commit, READ_API),
            ("GET", repo + "/tags", self._list_tags, READ_API),
            ("POST", repo + "/tags", self._create_tag, WRITE_API),
            ("GET", repo + "/tags/:tag_name", self._get_tag, READ_API),
            ("GET", project + "/releases", self._list_releases, READ_API),
            ("GET", project + "/releases/:tag_name", self._get_release, READ_API),
            ("GET", project + "/pipeline_schedules", self._list_schedules, READ_API),
            ("POST", project + "/pipeline_schedules", self._create_schedule, WRITE_API),
            ("GET", schedule, self._get_schedule, READ_API),
            ("PUT", schedule, self._update_schedule, WRITE_API),
            ("DELETE", schedule, self._delete_schedule, WRITE_API),
            ("POST", schedule + "/take_ownership", self._take_ownership, WRITE_API),
            ("POST", schedule + "/variables", self._create_schedule_variable, WRITE_API),
            ("PUT", schedule + "/variables/:key", self._update_schedule_variable, WRITE_API),
            ("DELETE", schedule + "/variables/:key", self._delete_schedule_variable, WRITE_API),
            ("GET", project + "/variables", self._list_variables, READ_API),
            ("POST", project + "/variables", self._create_variable, WRITE_API),
            ("GET", project + "/variables/:key", self._get_variable, READ_API),
            ("PUT", project + "/variables/:key", self._update_variable, WRITE_API),
            ("DELETE", project + "/variables/:key", self._delete_variable, WRITE_API),
        ]

    def root_routes(self) -> list[tuple[str, str, Handler, tuple[str, ...]]]:
        """Routes outside ``/api/v4`` (full paths): GraphQL authenticates by itself."""
        return [
            ("POST", "/api/graphql", self._graphql, NO_AUTH),
            ("GET", "/api/graphql", self._graphql, NO_AUTH),
        ]

    # -- seeding ---------------------------------------------------------------------

    def add_project(
        self,
        full_path: str,
        files: dict[str, str] | None = None,
        default_branch: str = "main",
        *,
        visibility: str = "private",
        description: str = "",
        name: str | None = None,
        executables: tuple[str, ...] = (),
    ) -> Project:
        """Create a project in an existing group, with one commit of ``files`` on
        ``default_branch`` (no ``files``: an empty repository)."""
        namespace_path, _, path = full_path.rpartition("/")
        group = self.fake.find_group(namespace_path)
        if group is None:
            raise ValueError(f"group {namespace_path!r} does not exist")
        if self.find(full_path) is not None:
            raise ValueError(f"project {full_path!r} exists")
        if visibility not in VISIBILITY_LEVELS:
            raise ValueError(f"visibility {visibility!r}")
        project = self._new_project(group, name or path, path, description, visibility, None)
        if files:
            self._commit(
                project,
                default_branch,
                None,
                dict(files),
                set(executables),
                "Initial commit",
                SEED_AUTHOR,
                SEED_AUTHOR,
            )
        return project

    def add_release(
        self,
        full_path: str,
        tag_name: str,
        *,
        name: str | None = None,
        description: str = "",
        ref: str | None = None,
    ) -> Release:
        """Seed a release; its tag is created (lightweight) at ``ref`` when missing."""
        project = self.get(full_path)
        if tag_name not in project.tags:
            commit = project.resolve(ref or project.default_branch)
            if commit is None:
                raise ValueError(f"no tag {tag_name!r} and no commit to create it at")
            project.tags[tag_name] = Tag(tag_name, commit.id, commit.id)
        release = Release(tag_name, name or tag_name, description)
        project.releases.append(release)
        return release

    def add_schedule(
        self,
        full_path: str,
        description: str,
        *,
        ref: str = "refs/heads/main",
        cron: str = "0 3 * * *",
        cron_timezone: str = "UTC",
        active: bool = True,
        owner: str | None = "owner",
        variables: dict[str, str] | None = None,
    ) -> PipelineSchedule:
        """Seed a pipeline schedule owned by ``owner`` (None: its owner's account is gone);
        ``ref`` is stored as given (GitLab stores the full ref, ``refs/heads/main``, also
        when it was given ``main``)."""
        project = self.get(full_path)
        schedule = PipelineSchedule(
            self.fake._next_id("pipeline_schedule"),
            description,
            ref,
            cron,
            cron_timezone,
            active,
            self.fake.user(owner).id if owner is not None else None,
            {k: ScheduleVariable(k, v) for k, v in (variables or {}).items()},
        )
        project.schedules[schedule.id] = schedule
        return schedule

    def schedule_ran(self, full_path: str, schedule_id: int, status: str) -> dict[str, Any]:
        """Record that the schedule started a pipeline that ended with ``status``
        (``success``, ``failed``, ``canceled``, ...): its ``last_pipeline``."""
        project = self.get(full_path)
        schedule = project.schedules[schedule_id]
        pipeline_id = self.fake._next_id("pipeline")
        moment = iso(now())
        head = project.head(project.default_branch)
        schedule.last_pipeline = {
            "id": pipeline_id,
            "iid": pipeline_id,
            "project_id": project.id,
            "sha": head.id if head else "0" * 40,
            "ref": schedule.ref.removeprefix("refs/heads/"),
            "status": status,
            "source": "schedule",
            "created_at": moment,
            "updated_at": moment,
            "web_url": f"{self.fake.url}/{project.full_path}/-/pipelines/{pipeline_id}",
        }
        return copy.deepcopy(schedule.last_pipeline)

    def add_variable(self, full_path: str, key: str, value: str, **attrs: Any) -> CiVariable:
        """Seed a project CI/CD variable (``masked``, ``protected``, ... as keywords)."""
        project = self.get(full_path)
        variable = CiVariable(key, value, **attrs)
        project.variables.append(variable)
        return variable

    # -- state for assertions ----------------------------------------------------------

    def find(self, id_or_path: str | int) -> Project | None:
        """A project by numeric id or full path (case-insensitive, as GitLab)."""
        text = str(id_or_path)
        if text.isdigit():
            return self.projects.get(int(text))
        lowered = text.lower()
        return next((p for p in self.projects.values() if p.full_path.lower() == lowered), None)

    def get(self, full_path: str) -> Project:
        project = self.find(full_path)
        if project is None:
            raise KeyError(full_path)
        return project

    def snapshot(self, full_path: str) -> Project:
        """A deep copy of a project (KeyError when it does not exist)."""
        return copy.deepcopy(self.get(full_path))

    def commits(self, full_path: str, ref: str | None = None) -> list[Commit]:
        """Every commit (or the history of ``ref``), newest first, deep-copied."""
        project = self.get(full_path)
        if ref is None:
            found = list(reversed(project.commits.values()))
        else:
            found = project.history(project.resolve(ref))
        return copy.deepcopy(found)

    def tags(self, full_path: str) -> dict[str, Tag]:
        return copy.deepcopy(self.get(full_path).tags)

    # -- helpers -----------------------------------------------------------------------

    def _new_project(
        self,
        group: Group,
        name: str,
        path: str,
        description: str,
        visibility: str,
        creator: User | None,
    ) -> Project:
        project = Project(
            id=self.fake._next_id("project"),
            name=name,
            path=path,
            full_path=f"{group.full_path}/{path}",
            namespace_id=group.id,
            description=description,
            visibility=visibility,
            creator_id=creator.id if creator else None,
            pipeline_variables_role=self.new_project_pipeline_variables_role,
        )
        self.projects[project.id] = project
        return project

    def _commit(
        self,
        project: Project,
        branch: str,
        parent: Commit | None,
        files: dict[str, str],
        executables: set[str],
        message: str,
        author: tuple[str, str],
        committer: tuple[str, str],
    ) -> Commit:
        """Record a commit of ``files`` on ``branch`` (created when new)."""
        moment = now().replace(microsecond=0)
        tree_id, _ = build_trees(files, executables)
        parents = [parent.id] if parent else []
        lines = [f"tree {tree_id}", *(f"parent {p}" for p in parents)]
        lines += [
            f"author {signature(*author, moment)}",
            f"committer {signature(*committer, moment)}",
        ]
        sha = git_object_id("commit", encode("\n".join(lines) + "\n\n" + message))
        commit = Commit(
            sha,
            tree_id,
            parents,
            message,
            *author,
            *committer,
            moment,
            files,
            executables,
        )
        project.commits.setdefault(sha, commit)
        project.branches[branch] = sha
        if project.default_branch is None:
            project.default_branch = branch  # the first branch pushed becomes HEAD
        project.last_activity_at = now()
        return commit

    def _role(self, user: User | None, project: Project) -> int:
        if user is None:
            return 0
        if user.admin:
            return OWNER
        return self.fake.access_level(user, self.fake.groups[project.namespace_id])

    def _visible(self, call: Call) -> Project:
        """The project of ``:id``, or 404 Project Not Found when missing or hidden."""
        project = self.find(call.params["id"])
        user = call.user
        if project is None or not (
            project.visibility == "public"
            or (user is not None and project.visibility == "internal")
            or self._role(user, project) > 0
        ):
            raise not_found("Project")
        return project

    def _project(self, call: Call, role: int = 0) -> Project:
        """The visible project of ``:id`` when the caller has ``role`` (else 403)."""
        project = self._visible(call)
        if role and self._role(call.user, project) < role:
            raise forbidden()
        return project

    def _readable_repo(self, call: Call) -> Project:
        """``read_code``: anyone who sees a public/internal project, Reporters otherwise."""
        project = self._visible(call)
        if project.visibility == "private" and self._role(call.user, project) < REPORTER:
            raise forbidden()
        return project

    def _reported_default_branch(self, project: Project) -> str | None:
        return project.default_branch or self.default_branch_name

    def _can_push(self, user: User | None, project: Project, branch: str) -> bool:
        role = self._role(user, project)
        protected = project.empty_repo or branch == project.default_branch
        return role >= (MAINTAINER if protected else DEVELOPER)

    @staticmethod
    def _web(call: Call) -> str:
        return call.base_url.removesuffix(API_PREFIX)

    def _user_basic(self, user_id: int | None, call: Call) -> dict[str, Any] | None:
        user = self.fake.users.get(user_id or 0)
        if user is None:
            return None
        return {
            "id": user.id,
            "username": user.username,
            "name": user.name,
            "state": user.state,
            "locked": False,
            "avatar_url": None,
            "web_url": f"{self._web(call)}/{user.username}",
        }

    # -- representations ---------------------------------------------------------------

    def _project_json(self, project: Project, call: Call) -> dict[str, Any]:
        web = self._web(call)
        group = self.fake.groups[project.namespace_id]
        names = [g.name for g in reversed(self.fake.ancestors(group))] + [project.name]
        host = call.request.header("host", "127.0.0.1").split(":")[0]
        branch = self._reported_default_branch(project)
        head = project.head(project.default_branch)
        role = self._role(call.user, project)
        return {
            "id": project.id,
            "description": project.description,
            "name": project.name,
            "name_with_namespace": " / ".join(names),
            "path": project.path,
            "path_with_namespace": project.full_path,
            "created_at": iso(project.created_at),
            "default_branch": branch,
            "tag_list": list(project.topics),
            "topics": list(project.topics),
            "ssh_url_to_repo": f"git@{host}:{project.full_path}.git",
            "http_url_to_repo": f"{web}/{project.full_path}.git",
            "web_url": f"{web}/{project.full_path}",
            "readme_url": (
                f"{web}/{project.full_path}/-/blob/{branch}/README.md"
                if head is not None and "README.md" in head.files
                else None
            ),
            "forks_count": 0,
            "avatar_url": None,
            "star_count": 0,
            "last_activity_at": iso(project.last_activity_at),
            "namespace": {
                "id": group.id,
                "name": group.name,
                "path": group.path,
                "kind": "group",
                "full_path": group.full_path,
                "parent_id": group.parent_id,
                "avatar_url": None,
                "web_url": f"{web}/groups/{group.full_path}",
            },
            "visibility": project.visibility,
            "empty_repo": project.empty_repo,
            "archived": False,
            "creator_id": project.creator_id,
            "permissions": {
                "project_access": None,
                "group_access": ({"access_level": role, "notification_level": 3} if role else None),
            },
        }

    def _commit_json(
        self, project: Project, commit: Commit, call: Call, stats: dict[str, int] | None = None
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": commit.id,
            "short_id": commit.id[:8],
            "created_at": iso(commit.created_at),
            "parent_ids": list(commit.parent_ids),
            "title": commit.title,
            "message": commit.message,
            "author_name": commit.author_name,
            "author_email": commit.author_email,
            "authored_date": iso(commit.created_at),
            "committer_name": commit.committer_name,
            "committer_email": commit.committer_email,
            "committed_date": iso(commit.created_at),
            "trailers": {},
            "extended_trailers": {},
            "web_url": f"{self._web(call)}/{project.full_path}/-/commit/{commit.id}",
        }
        if stats is not None:
            data.update(stats=stats, status=None, project_id=project.id, last_pipeline=None)
        return data

    @staticmethod
    def _stats(old: dict[str, str], new: dict[str, str]) -> dict[str, int]:
        additions = deletions = 0
        for path in set(old) | set(new):
            before = old.get(path, "").splitlines()
            after = new.get(path, "").splitlines()
            matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
            for tag, i1, i2, j1, j2 in matcher.get_opcodes():
                if tag != "equal":
                    deletions += i2 - i1
                    additions += j2 - j1
        return {"additions": additions, "deletions": deletions, "total": additions + deletions}

    def _branch_json(self, project: Project, name: str, call: Call) -> dict[str, Any]:
        commit = project.commits[project.branches[name]]
        protected = name == project.default_branch
        return {
            "name": name,
            "commit": self._commit_json(project, commit, call),
            "merged": False,
            "protected": protected,
            "developers_can_push": False,
            "developers_can_merge": False,
            "can_push": self._can_push(call.user, project, name),
            "default": protected,
            "web_url": f"{self._web(call)}/{project.full_path}/-/tree/{name}",
        }

    def _tag_json(self, project: Project, tag: Tag, call: Call) -> dict[str, Any]:
        release = next((r for r in project.releases if r.tag_name == tag.name), None)
        return {
            "name": tag.name,
            "message": tag.message,
            "target": tag.target,
            "commit": self._commit_json(project, project.commits[tag.commit_id], call),
            "release": (
                {"tag_name": release.tag_name, "description": release.description}
                if release
                else None
            ),
            "protected": False,
            "created_at": iso(tag.created_at),
        }

    def _release_json(self, project: Project, release: Release, call: Call) -> dict[str, Any]:
        web = f"{self._web(call)}/{project.full_path}"
        tag = project.tags.get(release.tag_name)
        commit = project.commits[tag.commit_id] if tag else None
        sources = [
            {
                "format": fmt,
                "url": f"{web}/-/archive/{release.tag_name}/"
                f"{project.path}-{release.tag_name}.{fmt}",
            }
            for fmt in ("zip", "tar.gz", "tar.bz2", "tar")
        ]
        return {
            "name": release.name,
            "tag_name": release.tag_name,
            "description": release.description,
            "created_at": iso(release.created_at),
            "released_at": iso(release.released_at),
            "upcoming_release": False,
            "author": self._user_basic(release.author_id, call),
            "commit": self._commit_json(project, commit, call) if commit else None,
            "commit_path": f"/{project.full_path}/-/commit/{commit.id}" if commit else None,
            "tag_path": f"/{project.full_path}/-/tags/{release.tag_name}",
            "assets": {"count": len(sources), "sources": sources, "links": []},
            "evidences": [],
            "_links": {"self": f"{web}/-/releases/{release.tag_name}"},
        }

    def _schedule_json(
        self, project: Project, schedule: PipelineSchedule, call: Call, *, details: bool = False
    ) -> dict[str, Any]:
        cron = Cron.parse(schedule.cron)
        zone = time_zone(schedule.cron_timezone)
        next_run = cron.next_run(zone, now()) if cron and zone and schedule.active else None
        data: dict[str, Any] = {
            "id": schedule.id,
            "description": schedule.description,
            "ref": schedule.ref,
            "cron": schedule.cron,
            "cron_timezone": schedule.cron_timezone,
            "next_run_at": iso(next_run),
            "active": schedule.active,
            "created_at": iso(schedule.created_at),
            "updated_at": iso(schedule.updated_at),
            "owner": self._user_basic(schedule.owner_id, call),
        }
        if details:
            data["last_pipeline"] = copy.deepcopy(schedule.last_pipeline)
            data["inputs"] = []
        return data

    @staticmethod
    def _schedule_variable_json(variable: ScheduleVariable) -> dict[str, Any]:
        return {
            "variable_type": variable.variable_type,
            "key": variable.key,
            "value": variable.value,
            "raw": False,
        }

    @staticmethod
    def _variable_json(variable: CiVariable) -> dict[str, Any]:
        return {
            "variable_type": variable.variable_type,
            "key": variable.key,
            "value": None if variable.hidden else variable.value,
            "hidden": variable.hidden,
            "protected": variable.protected,
            "masked": variable.masked,
            "raw": variable.raw,
            "environment_scope": variable.environment_scope,
            "description": variable.description,
        }

    # -- handlers: projects ------------------------------------------------------------

    def _get_project(self, call: Call) -> Response:
        return self.fake.json(self._project_json(self._visible(call), call))

    def _create_project(self, call: Call) -> Response:
        user = call.user
        assert user is not None
        args = call.args()
        name, path = args.get("name") or None, args.get("path") or None
        if name is None and path is None:
            raise param_error("name, path are missing, at least one parameter must be provided")
        visibility = args.get("visibility", "private")
        if visibility not in VISIBILITY_LEVELS:
            raise param_error("visibility does not have a valid value")
        group = None
        if args.get("namespace_id") not in (None, ""):
            group = self.fake.find_group(to_int(args["namespace_id"], "namespace_id"))
        # No namespace: the user's own, which the fake does not model.
        if group is None or (not user.admin and self.fake.access_level(user, group) < MAINTAINER):
            raise validation_error({"namespace": ["is not valid"]})
        if visibility in self.restricted_visibility_levels and not user.admin:
            # Projects::CreateService -> BaseService#deny_visibility_level.
            denied = f"{visibility} has been restricted by your GitLab administrator"
            raise validation_error({"visibility_level": [denied]})
        if path is None:
            path = re.sub(r"[^a-z0-9_.]+", "-", str(name).lower()).strip("-.")
        name = str(name or path)
        path = str(path)
        errors = self._project_errors(group, name, path, visibility, None)
        if errors:
            raise validation_error(errors)
        project = self._new_project(
            group, name, path, str(args.get("description") or ""), visibility, user
        )
        if "topics" in args:
            project.topics = self._topics(args["topics"])
        if to_bool(args.get("initialize_with_readme", False), "initialize_with_readme"):
            branch = args.get("default_branch") or self.default_branch_name or "main"
            readme = f"# {name}\n" + (f"\n{project.description}\n" if project.description else "")
            identity = (user.name, f"{user.username}@example.com")
            self._commit(
                project,
                branch,
                None,
                {"README.md": readme},
                set(),
                "Initial commit",
                identity,
                identity,
            )
        return self.fake.json(self._project_json(project, call), 201)

    def _project_errors(
        self, group: Group, name: str, path: str, visibility: str, current: Project | None
    ) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        siblings = [
            p for p in self.projects.values() if p.namespace_id == group.id and p is not current
        ]
        if not PROJECT_NAME.match(name):
            errors["name"] = [PROJECT_NAME_MESSAGE]
        elif any(p.name.lower() == name.lower() for p in siblings):
            errors["project_namespace.name"] = ["has already been taken"]
            errors["name"] = ["has already been taken"]
        if not PROJECT_PATH.match(path) or path.endswith((".git", ".atom", ".")):
            errors["path"] = [PROJECT_PATH_MESSAGE]
        elif any(p.path.lower() == path.lower() for p in siblings) or self.fake.find_group(
            f"{group.full_path}/{path}"
        ):
            errors["path"] = ["has already been taken"]
        if VISIBILITY_LEVELS[visibility] > VISIBILITY_LEVELS[group.visibility]:
            errors["visibility_level"] = [
                f"{visibility} is not allowed in a {group.visibility} group."
            ]
        return errors

    @staticmethod
    def _topics(value: Any) -> list[str]:
        items = value if isinstance(value, list) else str(value).split(",")
        return [str(t).strip() for t in items if str(t).strip()]

    def _update_project(self, call: Call) -> Response:
        project = self._project(call, MAINTAINER)
        args = {k: v for k, v in call.args().items() if k != "id"}
        if not args:
            raise param_error("at least one parameter must be provided")
        group = self.fake.groups[project.namespace_id]
        name = str(args.get("name") or project.name)
        path = str(args.get("path") or project.path)
        visibility = args.get("visibility", project.visibility)
        if visibility not in VISIBILITY_LEVELS:
            raise param_error("visibility does not have a valid value")
        errors = self._project_errors(group, name, path, visibility, project)
        if visibility == project.visibility:
            errors.pop("visibility_level", None)  # only a change is validated
        if errors:
            raise validation_error(errors)
        branch = args.get("default_branch")
        if branch and branch != project.default_branch and branch not in project.branches:
            raise error(
                400,
                "Could not set the default branch. Do you have a branch named "
                f"'{branch}' in your repository?",
            )
        project.name, project.path, project.visibility = name, path, visibility
        project.full_path = f"{group.full_path}/{path}"
        if "description" in args:
            project.description = str(args["description"] or "")
        if "topics" in args:
            project.topics = self._topics(args["topics"])
        if branch:
            project.default_branch = branch
        project.last_activity_at = now()
        return self.fake.json(self._project_json(project, call))

    # -- handlers: repository ----------------------------------------------------------

    def _delete_project(self, call: Call) -> Response:
        """``lib/api/projects.rb`` ``delete ":id"``: ``remove_project`` (the Owner); 202."""
        project = self._project(call, OWNER)
        del self.projects[project.id]
        return self.fake.json({"message": "202 Accepted"}, 202)

    def _get_tree(self, call: Call) -> Response:
        project = self._readable_repo(call)
        args = call.args()
        commit = project.resolve(args.get("ref") or project.default_branch)
        if commit is None:
            raise not_found("Tree")
        recursive = to_bool(args.get("recursive", False), "recursive")
        base = str(args.get("path") or "").strip("/")
        _, trees = build_trees(commit.files, commit.executables)
        items: list[dict[str, str]] = []

        def walk(directory: str) -> None:
            for entry in trees.get(directory, []):
                items.append(entry.as_json())
                if recursive and entry.type == "tree":
                    walk(entry.path)

        walk(base)  # an unknown path lists nothing, as GitLab does
        return self.fake.paginate(call, items)

    def _file(self, call: Call, *, ref_required: bool) -> tuple[Project, Commit, str, str]:
        project = self._readable_repo(call)
        args = call.args()
        ref = args.get("ref")
        if ref is None and ref_required:
            raise param_error("ref is missing")
        if ref == "" and ref_required:
            raise param_error("ref is empty")
        ref = ref or project.default_branch
        commit = project.resolve(ref)
        if commit is None:
            raise not_found("Commit")
        path = call.params["file_path"]
        if path not in commit.files:
            raise not_found("File")
        return project, commit, str(ref), path

    def _file_headers(
        self, project: Project, commit: Commit, ref: str, path: str
    ) -> dict[str, str]:
        data = encode(commit.files[path])
        return {
            "X-Gitlab-Blob-Id": blob_id(commit.files[path]),
            "X-Gitlab-Commit-Id": commit.id,
            "X-Gitlab-Content-Sha256": hashlib.sha256(data).hexdigest(),
            "X-Gitlab-Encoding": "base64",
            "X-Gitlab-Execute-Filemode": str(path in commit.executables).lower(),
            "X-Gitlab-File-Name": path.rsplit("/", 1)[-1],
            "X-Gitlab-File-Path": path,
            "X-Gitlab-Last-Commit-Id": project.last_commit_for(commit, path).id,
            "X-Gitlab-Ref": ref,
            "X-Gitlab-Size": str(len(data)),
        }

    def _get_file(self, call: Call) -> Response:
        project, commit, ref, path = self._file(call, ref_required=True)
        data = encode(commit.files[path])
        return self.fake.json(
            {
                "file_name": path.rsplit("/", 1)[-1],
                "file_path": path,
                "size": len(data),
                "encoding": "base64",
                "content_sha256": hashlib.sha256(data).hexdigest(),
                "ref": ref,
                "blob_id": blob_id(commit.files[path]),
                "commit_id": commit.id,
                "last_commit_id": project.last_commit_for(commit, path).id,
                "execute_filemode": path in commit.executables,
                "content": base64.b64encode(data).decode(),
            }
        )

    def _head_file(self, call: Call) -> Response:
        project, commit, ref, path = self._file(call, ref_required=True)
        return Response.empty(200, self._file_headers(project, commit, ref, path))

    def _get_raw_file(self, call: Call) -> Response:
        project, commit, ref, path = self._file(call, ref_required=False)
        headers = self._file_headers(project, commit, ref, path)
        headers["Content-Type"] = "text/plain; charset=utf-8"
        return Response(200, encode(commit.files[path]), headers)

    def _list_branches(self, call: Call) -> Response:
        project = self._readable_repo(call)
        search = str(call.args().get("search") or "")
        names = sorted(n for n in project.branches if search in n)
        return self.fake.paginate(call, [self._branch_json(project, n, call) for n in names])

    def _get_branch(self, call: Call) -> Response:
        project = self._readable_repo(call)
        name = call.params["branch"]
        if name not in project.branches:
            raise not_found("Branch")
        return self.fake.json(self._branch_json(project, name, call))

    def _list_commits(self, call: Call) -> Response:
        project = self._readable_repo(call)
        args = call.args()
        if to_bool(args.get("all", False), "all"):
            commits = list(reversed(project.commits.values()))
        else:
            commits = project.history(
                project.resolve(args.get("ref_name") or project.default_branch)
            )
        if args.get("path"):
            path = str(args["path"])

            def touches(commit: Commit) -> bool:
                parent = project.commits[commit.parent_ids[0]] if commit.parent_ids else None
                return commit.files.get(path) != (parent.files.get(path) if parent else None)

            commits = [c for c in commits if touches(c)]
        return self.fake.paginate(call, [self._commit_json(project, c, call) for c in commits])

    def _get_commit(self, call: Call) -> Response:
        project = self._readable_repo(call)
        commit = project.resolve(call.params["sha"])
        if commit is None:
            raise not_found("Commit")
        parent = project.commits[commit.parent_ids[0]] if commit.parent_ids else None
        stats = self._stats(parent.files if parent else {}, commit.files)
        return self.fake.json(self._commit_json(project, commit, call, stats))

    def _create_commit(self, call: Call) -> Response:
        project = self._readable_repo(call)
        user = call.user
        assert user is not None
        args = call.args()
        branch = args.get("branch")
        if branch and not self._can_push(user, project, str(branch)):
            raise forbidden("You are not allowed to push into this branch")
        actions = self._commit_actions(args)
        branch = str(branch)
        start_branch = args.get("start_branch")
        start_sha = args.get("start_sha")
        if start_branch is None and start_sha is None:
            start_branch = branch
        force = to_bool(args.get("force", False), "force")
        base = self._commit_base(project, branch, start_branch, start_sha, force)
        files = dict(base.files) if base else {}
        executables = set(base.executables) if base else set()
        for action in actions:
            self._check_last_commit(project, base, action)
        for action in actions:
            self._apply(action, files, executables)
        name = str(args.get("author_name") or user.name)
        email = str(args.get("author_email") or f"{user.username}@example.com")
        commit = self._commit(
            project,
            branch,
            base,
            files,
            executables,
            str(args["commit_message"]),
            (name, email),
            (user.name, f"{user.username}@example.com"),
        )
        stats = None
        if to_bool(args.get("stats", True), "stats"):
            stats = self._stats(base.files if base else {}, files)
        return self.fake.json(self._commit_json(project, commit, call, stats), 201)

    @staticmethod
    def _commit_actions(args: dict[str, Any]) -> list[dict[str, Any]]:
        """GitLab's ``validate_commits_attrs!``: 400 ``400 Bad request - ...``."""
        if not args.get("branch"):
            raise bad_request("branch is required")
        if not args.get("commit_message"):
            raise bad_request("commit_message is required")
        actions = args.get("actions")
        if not actions:
            raise bad_request("actions is required")
        if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
            raise bad_request("actions is invalid")
        if "start_sha" in args and "start_branch" in args:
            raise bad_request("start_branch, start_sha are mutually exclusive")
        checked = []
        for index, raw in enumerate(actions):
            action = dict(raw)
            name = f"actions[{index}]"
            if not action.get("action"):
                raise bad_request(f"{name}[action] is required")
            if not action.get("file_path"):
                raise bad_request(f"{name}[file_path] is required")
            if action["action"] not in COMMIT_ACTIONS:
                raise bad_request(f"{name}[action] must be one of: " + ", ".join(COMMIT_ACTIONS))
            encoding = action.setdefault("encoding", "text")
            if encoding not in ("text", "base64"):
                raise bad_request(f"{name}[encoding] must be text or base64")
            if action["action"] == "update" and "content" not in action:
                raise bad_request(f"{name}[content] is required for update action")
            if action["action"] == "move" and not action.get("previous_path"):
                raise bad_request(f"{name}[previous_path] is required for move action")
            if action["action"] == "chmod":
                if "execute_filemode" not in action:
                    raise bad_request(f"{name}[execute_filemode] is required for chmod action")
                if action["execute_filemode"] not in (True, False, "true", "false"):
                    raise bad_request(f"{name}[execute_filemode] must be a boolean")
                action["execute_filemode"] = action["execute_filemode"] in (True, "true")
            checked.append(action)
        return checked

    @staticmethod
    def _commit_base(
        project: Project,
        branch: str,
        start_branch: str | None,
        start_sha: str | None,
        force: bool,
    ) -> Commit | None:
        """Commits::CreateService#validate!: the commit the new one builds on."""
        different = start_branch != branch or start_sha is not None
        if start_sha is not None:
            if not re.fullmatch(r"[0-9a-f]{40}", str(start_sha)):
                raise error(400, f"Invalid start_sha '{start_sha}'")
            if start_sha not in project.commits:
                raise error(400, f"Cannot find start_sha '{start_sha}'")
        if start_branch and not project.empty_repo and start_branch not in project.branches:
            raise error(400, "You can only create or edit files when you are on a branch")
        if not project.empty_repo and different and branch in project.branches and not force:
            raise error(
                400,
                f"A branch called '{branch}' already exists. Switch to that branch in order "
                "to make changes",
            )
        if different and not check_ref_name(branch):
            raise error(
                400,
                f"Something went wrong when we tried to create '{branch}' for you: "
                "Branch name is invalid",
            )
        if start_sha is not None:
            return project.commits[start_sha]
        return project.head(start_branch)

    @staticmethod
    def _check_last_commit(project: Project, base: Commit | None, action: dict[str, Any]) -> None:
        """``last_commit_id`` of update/move/delete must be the path's last commit."""
        wanted = action.get("last_commit_id")
        if not wanted or base is None or action["action"] not in ("update", "move", "delete"):
            return
        path = action.get("previous_path") or action["file_path"]
        if path in base.files and project.last_commit_for(base, path).id != wanted:
            raise error(400, f"The file has changed since you started editing it: {path}")

    @staticmethod
    def _apply(action: dict[str, Any], files: dict[str, str], executables: set[str]) -> None:
        """One action, with Gitaly's messages (400 ``{"message": ...}``) on conflicts."""
        kind, path = action["action"], str(action["file_path"])
        for checked in (path, action.get("previous_path")):
            if checked is None:
                continue
            parts = str(checked).split("/")
            if any(p in (".", "..") for p in parts):
                raise error(400, "Path cannot include directory traversal")
            if "" in parts:
                raise error(400, f"invalid path: '{checked}'")
        content: str | None = None
        if action.get("content") is not None:
            content = str(action["content"])
            if action["encoding"] == "base64":
                try:
                    content = base64.b64decode(content).decode("utf-8", "surrogateescape")
                except (binascii.Error, ValueError):
                    raise error(400, "Invalid base64 content") from None

        def occupied(target: str) -> str | None:
            if target in files:
                return "A file with this name already exists"
            if any(f.startswith(target + "/") for f in files):
                return "A directory with this name already exists"
            parts = target.split("/")
            if any("/".join(parts[:i]) in files for i in range(1, len(parts))):
                return "A file with this name already exists"
            return None

        missing = "A file with this name doesn't exist"
        if kind == "create":
            problem = occupied(path)
            if problem:
                raise error(400, problem)
            files[path] = content or ""
        elif kind == "update":
            if path not in files:
                raise error(400, missing)
            files[path] = content or ""
        elif kind == "delete":
            if path not in files:
                raise error(400, missing)
            del files[path]
            executables.discard(path)
        elif kind == "move":
            previous = str(action["previous_path"])
            if previous not in files:
                raise error(400, missing)
            old = files.pop(previous)
            executable = previous in executables
            executables.discard(previous)
            problem = occupied(path)
            if problem:
                raise error(400, problem)
            files[path] = old if content is None else content
            if executable:
                executables.add(path)
        else:  # chmod
            if path not in files:
                raise error(400, missing)
            if action["execute_filemode"]:
                executables.add(path)
            else:
                executables.discard(path)

    # -- handlers: tags and releases ----------------------------------------------------

    def _list_tags(self, call: Call) -> Response:
        project = self._readable_repo(call)
        args = call.args()
        order = args.get("order_by", "updated")
        sort = args.get("sort", "desc")
        if order not in ("name", "updated", "version"):
            raise param_error("order_by does not have a valid value")
        if sort not in ("asc", "desc"):
            raise param_error("sort does not have a valid value")
        tags = [t for t in project.tags.values() if str(args.get("search") or "") in t.name]
        if order == "updated":  # creation order stands in for the commit date
            ordered = tags
        else:
            ordered = sorted(tags, key=lambda t: self._version_key(t.name, order))
        if sort == "desc":
            ordered = list(reversed(ordered))
        return self.fake.paginate(call, [self._tag_json(project, t, call) for t in ordered])

    @staticmethod
    def _version_key(name: str, order: str) -> tuple[Any, ...]:
        if order == "name":
            return (name,)
        return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.\-]", name))

    def _get_tag(self, call: Call) -> Response:
        project = self._readable_repo(call)
        tag = project.tags.get(call.params["tag_name"])
        if tag is None:
            raise not_found("Tag")
        return self.fake.json(self._tag_json(project, tag, call))

    def _create_tag(self, call: Call) -> Response:
        project = self._project(call, DEVELOPER)
        user = call.user
        assert user is not None
        args = call.args()
        missing = [k for k in ("tag_name", "ref") if args.get(k) is None]
        if missing:
            raise param_error(", ".join(f"{k} is missing" for k in missing))
        name, ref = str(args["tag_name"]), str(args["ref"])
        if not ref:
            raise error(400, "Target is empty")
        if not check_ref_name(name):
            raise error(400, "Tag name invalid")
        if name in project.tags:
            raise error(400, f"Tag {name} already exists")
        commit = project.resolve(ref)
        if commit is None:
            raise error(400, f"Target {ref} is invalid")
        message = args.get("message")
        message = str(message).strip() if message else None
        tag = Tag(name, commit.id, commit.id)
        if message:
            moment = now().replace(microsecond=0)
            tagger = signature(user.name, f"{user.username}@example.com", moment)
            body = f"object {commit.id}\ntype commit\ntag {name}\ntagger {tagger}\n\n{message}\n"
            tag = Tag(name, commit.id, git_object_id("tag", encode(body)), message, moment)
        project.tags[name] = tag
        return self.fake.json(self._tag_json(project, tag, call), 201)

    def _list_releases(self, call: Call) -> Response:
        project = self._readable_repo(call)
        releases = sorted(project.releases, key=lambda r: r.released_at, reverse=True)
        return self.fake.paginate(call, [self._release_json(project, r, call) for r in releases])

    def _get_release(self, call: Call) -> Response:
        project = self._readable_repo(call)
        release = next((r for r in project.releases if r.tag_name == call.params["tag_name"]), None)
        if release is None:
            raise not_found()
        return self.fake.json(self._release_json(project, release, call))

    # -- handlers: pipeline schedules ---------------------------------------------------

    def _schedule(self, call: Call, project: Project) -> PipelineSchedule:
        schedule = project.schedules.get(to_int(call.params["schedule_id"], "pipeline_schedule_id"))
        if schedule is None:
            raise not_found("Pipeline Schedule")
        return schedule

    def _owns(self, call: Call, project: Project, schedule: PipelineSchedule) -> bool:
        """``update_pipeline_schedule``: only the schedule's owner (a Developer+) or an admin."""
        user = call.user
        assert user is not None
        return user.admin or (
            schedule.owner_id == user.id and self._role(user, project) >= DEVELOPER
        )

    def _admin_schedule(self, call: Call, project: Project, schedule: PipelineSchedule) -> bool:
        """``admin_pipeline_schedule``: Maintainers, and the owner."""
        return self._role(call.user, project) >= MAINTAINER or self._owns(call, project, schedule)

    def _list_schedules(self, call: Call) -> Response:
        project = self._project(call, DEVELOPER)
        scope = call.args().get("scope")
        if scope not in (None, "active", "inactive"):
            raise param_error("scope does not have a valid value")
        schedules = [
            s
            for s in project.schedules.values()
            if scope is None or s.active == (scope == "active")
        ]
        return self.fake.paginate(call, [self._schedule_json(project, s, call) for s in schedules])

    def _get_schedule(self, call: Call) -> Response:
        project = self._project(call, DEVELOPER)
        schedule = self._schedule(call, project)
        data = self._schedule_json(project, schedule, call, details=True)
        if self._admin_schedule(call, project, schedule):  # read_pipeline_schedule_variables
            data["variables"] = [
                self._schedule_variable_json(v) for v in schedule.variables.values()
            ]
        return self.fake.json(data)

    def _schedule_attrs(
        self, project: Project, schedule: PipelineSchedule, args: dict[str, Any]
    ) -> None:
        """Apply and validate attributes as Ci::PipelineSchedules::BaseSaveService does."""
        for key in ("description", "ref", "cron", "cron_timezone"):
            if key in args:
                setattr(schedule, key, str(args[key] if args[key] is not None else ""))
        if "active" in args:
            schedule.active = to_bool(args["active"], "active")
        if not re.match(r"refs/(heads|tags)/\S", schedule.ref):
            # Short refs are expanded; an ambiguous or unknown one is refused.
            is_branch = schedule.ref in project.branches
            is_tag = schedule.ref in project.tags
            if is_branch == is_tag:
                raise validation_error({"ref": ["is ambiguous"]})
            schedule.ref = ("refs/heads/" if is_branch else "refs/tags/") + schedule.ref
        errors: dict[str, list[str]] = {}
        if not schedule.cron:
            errors["cron"] = ["can't be blank"]
        elif Cron.parse(schedule.cron) is None:
            errors["cron"] = [" is invalid syntax"]
        if time_zone(schedule.cron_timezone) is None:
            errors["cron_timezone"] = [" is invalid syntax"]
        if not schedule.description:
            errors["description"] = ["can't be blank"]
        if errors:
            raise validation_error(errors)
        schedule.updated_at = now()

    def _create_schedule(self, call: Call) -> Response:
        project = self._project(call, DEVELOPER)
        user = call.user
        assert user is not None
        args = call.args()
        missing = [k for k in ("description", "ref", "cron") if args.get(k) is None]
        if missing:
            raise param_error(", ".join(f"{k} is missing" for k in missing))
        if args["ref"] == "":
            raise param_error("ref is empty")
        schedule = PipelineSchedule(0, "", "", "", "UTC", True, user.id)
        self._schedule_attrs(project, schedule, args)
        schedule.id = self.fake._next_id("pipeline_schedule")
        project.schedules[schedule.id] = schedule
        return self.fake.json(self._schedule_json(project, schedule, call, details=True), 201)

    def _update_schedule(self, call: Call) -> Response:
        project = self._project(call, DEVELOPER)
        schedule = self._schedule(call, project)
        if not self._owns(call, project, schedule):
            raise forbidden()
        args = {k: v for k, v in call.args().items() if k not in ("id", "schedule_id")}
        updated = copy.deepcopy(schedule)
        self._schedule_attrs(project, updated, args)
        project.schedules[schedule.id] = updated
        return self.fake.json(self._schedule_json(project, updated, call, details=True))

    def _delete_schedule(self, call: Call) -> Response:
        project = self._project(call, DEVELOPER)
        schedule = self._schedule(call, project)
        if not self._admin_schedule(call, project, schedule):
            raise forbidden()
        del project.schedules[schedule.id]
        return Response.empty(204)

    def _take_ownership(self, call: Call) -> Response:
        project = self._project(call, DEVELOPER)
        schedule = self._schedule(call, project)
        if not self._admin_schedule(call, project, schedule):
            raise forbidden()
        user = call.user
        assert user is not None
        status = 200 if schedule.owner_id == user.id else 201
        schedule.owner_id = user.id
        return self.fake.json(self._schedule_json(project, schedule, call, details=True), status)

    def _schedule_for_variables(self, call: Call) -> tuple[Project, PipelineSchedule]:
        """``set_pipeline_variables`` (the project's minimum override role) and
        ``update_pipeline_schedule`` (the owner)."""
        project = self._project(call, DEVELOPER)
        schedule = self._schedule(call, project)
        needed = PIPELINE_VARIABLE_ROLES[project.pipeline_variables_role]
        if not self._owns(call, project, schedule) or self._role(call.user, project) < needed:
            raise forbidden()
        return project, schedule

    @staticmethod
    def _variable_type(args: dict[str, Any], default: str) -> str:
        kind = str(args.get("variable_type") or default)
        if kind not in VARIABLE_TYPES:
            raise param_error("variable_type does not have a valid value")
        return kind

    def _create_schedule_variable(self, call: Call) -> Response:
        _, schedule = self._schedule_for_variables(call)
        args = call.args()
        missing = [k for k in ("key", "value") if args.get(k) is None]
        if missing:
            raise param_error(", ".join(f"{k} is missing" for k in missing))
        key = str(args["key"])
        kind = self._variable_type(args, "env_var")
        if not VARIABLE_KEY.match(key):
            raise validation_error({"key": [VARIABLE_KEY_MESSAGE]})
        if key in schedule.variables:
            raise validation_error({"key": ["has already been taken"]})
        variable = ScheduleVariable(key, str(args["value"]), kind)
        schedule.variables[key] = variable
        return self.fake.json(self._schedule_variable_json(variable), 201)

    def _schedule_variable(self, call: Call, schedule: PipelineSchedule) -> ScheduleVariable:
        variable = schedule.variables.get(call.params["key"])
        if variable is None:
            raise not_found("Pipeline Schedule Variable")
        return variable

    def _update_schedule_variable(self, call: Call) -> Response:
        _, schedule = self._schedule_for_variables(call)
        variable = self._schedule_variable(call, schedule)
        args = call.args()
        variable.variable_type = self._variable_type(args, variable.variable_type)
        if args.get("value") is not None:
            variable.value = str(args["value"])
        return self.fake.json(self._schedule_variable_json(variable))

    def _delete_schedule_variable(self, call: Call) -> Response:
        project = self._project(call, DEVELOPER)
        schedule = self._schedule(call, project)
        needed = PIPELINE_VARIABLE_ROLES[project.pipeline_variables_role]
        # set_pipeline_variables on the project, then admin_pipeline_schedule (not the owner).
        if self._role(call.user, project) < needed or not self._admin_schedule(
            call, project, schedule
        ):
            raise forbidden()
        variable = self._schedule_variable(call, schedule)
        del schedule.variables[variable.key]
        return self.fake.json(self._schedule_variable_json(variable), 202)

    # -- handlers: project CI/CD variables ----------------------------------------------

    @staticmethod
    def _scope_filter(args: dict[str, Any]) -> str | None:
        nested = args.get("filter")
        if isinstance(nested, dict) and "environment_scope" in nested:
            return str(nested["environment_scope"])
        value = args.get("filter[environment_scope]")
        return None if value is None else str(value)

    def _variable(self, call: Call, project: Project) -> CiVariable:
        key = call.params["key"]
        scope = self._scope_filter(call.args())
        found = [
            v
            for v in project.variables
            if v.key == key and (scope is None or v.environment_scope == scope)
        ]
        if not found:
            raise not_found("Variable")
        if len(found) > 1:
            raise error(
                409,
                "There are multiple variables with provided parameters. Please use "
                "'filter[environment_scope]'",
            )
        return found[0]

    def _variable_errors(
        self, project: Project, variable: CiVariable, replacing: CiVariable | None = None
    ) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        if not VARIABLE_KEY.match(variable.key):
            errors["key"] = [VARIABLE_KEY_MESSAGE]
        elif any(
            v is not replacing
            and v.key == variable.key
            and v.environment_scope == variable.environment_scope
            for v in project.variables
        ):
            errors["key"] = [f"({variable.key}) has already been taken"]
        pattern = MASKABLE_RAW if variable.raw else MASKABLE
        if variable.masked and not pattern.match(variable.value):
            errors["value"] = ["is invalid"]
        return errors

    def _variable_attrs(self, variable: CiVariable, args: dict[str, Any]) -> None:
        variable.variable_type = self._variable_type(args, variable.variable_type)
        for flag in ("protected", "masked", "raw"):
            if flag in args:
                setattr(variable, flag, to_bool(args[flag], flag))
        if "value" in args and args["value"] is not None:
            variable.value = str(args["value"])
        if "environment_scope" in args:
            variable.environment_scope = str(args["environment_scope"] or "*")
        if "description" in args:
            variable.description = args["description"]

    def _list_variables(self, call: Call) -> Response:
        project = self._project(call, MAINTAINER)
        return self.fake.paginate(call, [self._variable_json(v) for v in project.variables])

    def _get_variable(self, call: Call) -> Response:
        project = self._project(call, MAINTAINER)
        return self.fake.json(self._variable_json(self._variable(call, project)))

    def _create_variable(self, call: Call) -> Response:
        """``post ':id/variables'``: ``masked_and_hidden`` sets both ``masked`` and ``hidden``
        (``Ci::ChangeVariableService#create_variable_params``); ``hidden`` itself is not a
        parameter. The answer, like every read, has no value for a hidden variable
        (``Entities::Ci::Variable`` through ``Ci::VariableValue``)."""
        project = self._project(call, MAINTAINER)
        args = call.args()
        missing = [k for k in ("key", "value") if args.get(k) is None]
        if missing:
            raise param_error(", ".join(f"{k} is missing" for k in missing))
        variable = CiVariable(str(args["key"]), str(args["value"]))
        self._variable_attrs(variable, args)
        if to_bool(args.get("masked_and_hidden", False), "masked_and_hidden"):
            variable.masked = variable.hidden = True
        errors = self._variable_errors(project, variable)
        if errors:
            raise validation_error(errors)
        project.variables.append(variable)
        return self.fake.json(self._variable_json(variable), 201)

    def _update_variable(self, call: Call) -> Response:
        """``put ':id/variables/:key'`` (``lib/api/ci/variables.rb``) declares no ``hidden``
        and no ``masked_and_hidden``: Grape drops them, so no PUT makes a variable hidden.
        ``Ci::HidableVariable#validate_masked_and_hidden_on_update`` refuses a change of
        ``masked`` on a hidden one (400, ``base``)."""
        project = self._project(call, MAINTAINER)
        variable = self._variable(call, project)
        updated = copy.deepcopy(variable)
        self._variable_attrs(updated, {k: v for k, v in call.args().items() if k != "key"})
        errors = self._variable_errors(project, updated, variable)
        if variable.hidden and updated.masked != variable.masked:
            errors.setdefault("base", []).append(
                "Updating masked attribute is not allowed on updates for hidden variables."
            )
        if errors:
            raise validation_error(errors)
        project.variables[project.variables.index(variable)] = updated
        return self.fake.json(self._variable_json(updated))

    def _delete_variable(self, call: Call) -> Response:
        project = self._project(call, MAINTAINER)
        project.variables.remove(self._variable(call, project))
        return Response.empty(204)

    # -- handler: GraphQL ------------------------------------------------------------------

    def _graphql(self, call: Call) -> Response:
        """``/api/graphql``: the ``catalogResourcesCreate`` mutation, GraphQL errors else."""
        request = call.request
        try:
            pat = self.fake.request_token(request)
        except ApiError:
            pat = None
            invalid = True
        else:
            # GraphQL takes tokens with the api or read_api scope; others are invalid there.
            invalid = pat is not None and not {"api", "read_api"} & set(pat.scopes)
        if invalid:
            return Response.json(401, {"errors": [{"message": "Invalid token"}]})
        user = self.fake.users[pat.user_id] if pat else None
        params = request.query if request.method == "GET" else call.args()
        query = str(params.get("query") or "")
        variables = params.get("variables") or {}
        if isinstance(variables, str):
            try:
                variables = json.loads(variables)
            except ValueError:
                return self._graphql_error("Invalid JSON in variables")
        if not isinstance(variables, dict):
            variables = {}
        if not query.strip():
            return self._graphql_error("No query string was present")
        if not query.lstrip().startswith("mutation"):
            return self._graphql_query(query, variables, user)
        matched = CATALOG_MUTATION.search(query)
        if not query.lstrip().startswith("mutation") or matched is None:
            return self._graphql_error(
                "This fake GitLab answers only the catalogResourcesCreate mutation"
            )
        if request.method == "GET":
            return self._graphql_error("Mutations are forbidden in GET requests")
        path = self._graphql_project_path(matched.group("input"), variables)
        if path is None:
            return self._graphql_error(
                "Variable $input of type CatalogResourcesCreateInput! was provided invalid "
                "value for projectPath (Expected value to not be null)"
            )
        fields = matched.group("fields").split()
        unknown = [f for f in fields if f not in ("errors", "clientMutationId")]
        if unknown:
            return self._graphql_error(
                f"Field '{unknown[0]}' doesn't exist on type 'CatalogResourcesCreatePayload'"
            )
        project = self.find(path)
        # authorize :add_catalog_resource (Owner) and mutations need the api scope.
        if (
            pat is None
            or "api" not in pat.scopes
            or project is None
            or self._role(user, project) < OWNER
        ):
            return Response.json(
                200,
                {
                    "data": {"catalogResourcesCreate": None},
                    "errors": [
                        {"message": GRAPHQL_RESOURCE_ERROR, "path": ["catalogResourcesCreate"]}
                    ],
                },
            )
        pat.last_used_at = now()
        errors = self._catalog_errors(project)
        if not errors:
            project.catalog_resource = True
        payload = {"errors": errors, "clientMutationId": None}
        return Response.json(
            200, {"data": {"catalogResourcesCreate": {f: payload[f] for f in fields}}}
        )

    def _graphql_query(self, query: str, variables: dict[str, Any], user: User | None) -> Response:
        """The two queries the tool sends: a runner's ``tokenExpiresAt`` and a project's
        ``isCatalogResource`` (``Types::Ci::RunnerType``, ``Types::ProjectType``)."""
        runner_query = RUNNER_QUERY.search(query)
        project_query = PROJECT_QUERY.search(query)
        if runner_query is not None:
            return self._graphql_runner(runner_query, variables, user)
        if project_query is not None:
            fields = project_query.group("fields").split()
            unknown = [f for f in fields if f not in ("id", "fullPath", "isCatalogResource")]
            if unknown:
                return self._graphql_error(f"Field '{unknown[0]}' doesn't exist on type 'Project'")
            path = self._graphql_value(project_query.group("path"), variables)
            project = self.find(path) if path else None
            if project is None or (
                project.visibility == "private" and not self._role(user, project)
            ):
                return Response.json(200, {"data": {"project": None}})
            values = {
                "id": f"gid://gitlab/Project/{project.id}",
                "fullPath": project.full_path,
                "isCatalogResource": project.catalog_resource,
            }
            return Response.json(200, {"data": {"project": {f: values[f] for f in fields}}})
        return self._graphql_error(
            "This fake GitLab answers only the runner and project queries and the "
            "catalogResourcesCreate mutation"
        )

    def _graphql_runner(
        self, matched: re.Match[str], variables: dict[str, Any], user: User | None
    ) -> Response:
        """``runner(id:)``: null unless the caller may ``read_runner`` (Maintainer of the
        runner's group, inherited memberships count; admins); ``tokenExpiresAt`` needs
        ``read_runner_sensitive_data``, which follows ``read_runner`` for group runners."""
        fields = matched.group("fields").split()
        known = ("id", "tokenExpiresAt", "contactedAt", "status", "description")
        unknown = [f for f in fields if f not in known]
        if unknown:
            return self._graphql_error(f"Field '{unknown[0]}' doesn't exist on type 'CiRunner'")
        gid = self._graphql_value(matched.group("id"), variables) or ""
        found = RUNNER_GID.match(gid)
        if found is None:
            return self._graphql_error(f'"{gid}" does not represent an instance of Ci::Runner')
        runner = self.fake._runners.get(int(found.group(1)))
        if runner is None or user is None or self.fake._runner_access(user, runner) < MAINTAINER:
            return Response.json(200, {"data": {"runner": None}})
        values = {
            "id": gid,
            "tokenExpiresAt": graphql_time(runner.token_expires_at),
            "contactedAt": graphql_time(runner.contacted_at),
            "status": self.fake._status(runner).upper(),
            "description": runner.description,
        }
        return Response.json(200, {"data": {"runner": {f: values[f] for f in fields}}})

    @staticmethod
    def _graphql_value(token: str, variables: dict[str, Any]) -> str | None:
        if token.startswith("$"):
            value = variables.get(token[1:])
            return str(value) if value else None
        return str(json.loads(token))

    def _graphql_project_path(self, argument: str, variables: dict[str, Any]) -> str | None:
        if argument.startswith("$"):
            value = variables.get(argument[1:])
            path = value.get("projectPath") if isinstance(value, dict) else None
            return str(path) if path else None
        found = PROJECT_PATH_ARGUMENT.search(argument)
        if found is None:
            return None
        token = found.group(1)
        if token.startswith("$"):
            value = variables.get(token[1:])
            return str(value) if value else None
        return str(json.loads(token))

    def _catalog_errors(self, project: Project) -> list[str]:
        if not self.catalog_requires_readme:
            return []
        errors = []
        head = project.head(project.default_branch)
        if head is None or "README.md" not in head.files:
            errors.append("Project must have a README")
        if not project.description:
            errors.append("Project must have a description")
        return [" , ".join(errors)] if errors else []

    @staticmethod
    def _graphql_error(message: str) -> Response:
        return Response.json(200, {"errors": [{"message": message}]})
