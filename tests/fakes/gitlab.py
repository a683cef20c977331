"""A stateful fake of the GitLab REST API v4, for python-gitlab and plain HTTP clients.

It follows GitLab's documented routes, status codes and JSON shapes for what this
project uses: the current user and token, groups and their members, and the runner
lifecycle of the "new runner workflow" (``POST /user/runners``, ``glrt-`` tokens,
verify, reset, delete).

Projects, their repositories, tags, releases, pipeline schedules, CI/CD variables and
the GraphQL ``catalogResourcesCreate`` mutation live in :mod:`tests.fakes.gitlab_projects`
(:class:`~tests.fakes.gitlab_projects.ProjectsApi`); FakeGitLab registers its routes and
forwards the seeding and assertion helpers (:meth:`FakeGitLab.add_project`,
:meth:`FakeGitLab.project`, ...).

Routes live in one table (:meth:`FakeGitLab._routes`); more can be registered with
:meth:`FakeGitLab.add_route` (see its docstring) without touching the dispatcher.
"""

from __future__ import annotations

import copy
import math
import re
import secrets
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode

from tests.fakes.server import FakeServer, Request, Response

if TYPE_CHECKING:
    from tests.fakes.gitlab_projects import (
        CiVariable,
        Commit,
        PipelineSchedule,
        Project,
        Release,
        Tag,
    )

API_PREFIX = "/api/v4"

GUEST, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 20, 30, 40, 50

#: Scope sets accepted by the routes (GitLab's ``allow_access_with_scope``).
READ_API = ("api", "read_api")
#: Writes through the REST API (projects, commits, tags, schedules, variables) need ``api``:
#: ``write_repository`` is for Git over HTTP only.
WRITE_API = ("api",)
READ_USER = ("api", "read_api", "read_user")
CREATE_RUNNER = ("create_runner", "api")
MANAGE_RUNNER = ("manage_runner", "api")
READ_RUNNER = ("manage_runner", "api", "read_api")
ANY_SCOPE = ("*",)
#: Routes with ``scopes=NO_AUTH`` take no personal token (runner-token endpoints).
NO_AUTH: tuple[str, ...] = ()

INSUFFICIENT_SCOPE_DESCRIPTION = (
    "The request requires higher privileges than provided by the access token."
)
RUNNER_TYPES = ("instance_type", "group_type", "project_type")
ACCESS_LEVELS = ("not_protected", "ref_protected")
RUNNER_STATUSES = ("online", "offline", "stale", "never_contacted", "active", "paused")
ONLINE_WINDOW = timedelta(hours=2)
#: ``API::Ci::Helpers::Runner::LEGACY_SYSTEM_XID``: the manager of a call without system_id.
LEGACY_SYSTEM_ID = "<legacy>"
#: ``(runner token, system id)`` of each runner process that is running (see FakeGitLab).
RunnerProcesses = Callable[[], list[tuple[str, str]]]
STALE_AFTER = timedelta(days=7)


def iso(moment: datetime | None) -> str | None:
    """GitLab's timestamp format: ``2024-05-01T10:00:00.000Z``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def now() -> datetime:
    return datetime.now(UTC)


class ApiError(Exception):
    """Raised by a handler to answer with an error body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


def error(status: int, message: Any) -> ApiError:
    """``{"message": ...}``: GitLab's ``render_api_error!``."""
    return ApiError(status, {"message": message})


def forbidden(reason: str | None = None) -> ApiError:
    return error(403, "403 Forbidden" + (f" - {reason}" if reason else ""))


def not_found(what: str | None = None) -> ApiError:
    return error(404, f"404 {what} Not Found" if what else "404 Not found")


def bad_request(reason: str) -> ApiError:
    return error(400, f"400 Bad request - {reason}")


def param_error(message: str) -> ApiError:
    """Grape's parameter validation failure: ``{"error": "x is missing"}``."""
    return ApiError(400, {"error": message})


@dataclass
class User:
    id: int
    username: str
    name: str
    admin: bool = False
    state: str = "active"
    created_at: datetime = field(default_factory=now)
    #: A group or project access token's bot user (``User#bot?``): a member like any other.
    bot: bool = False


@dataclass
class PersonalAccessToken:
    id: int
    token: str
    user_id: int
    name: str
    scopes: list[str]
    expires_at: date | None = None
    revoked: bool = False
    created_at: datetime = field(default_factory=now)
    last_used_at: datetime | None = None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= now().date()

    @property
    def active(self) -> bool:
        return not self.revoked and not self.expired


def token_json(pat: PersonalAccessToken) -> dict[str, Any]:
    """``Entities::PersonalAccessToken`` (never the value)."""
    return {
        "id": pat.id,
        "name": pat.name,
        "revoked": pat.revoked,
        "created_at": iso(pat.created_at),
        "description": None,
        "scopes": list(pat.scopes),
        "user_id": pat.user_id,
        "last_used_at": iso(pat.last_used_at),
        "active": pat.active,
        "expires_at": pat.expires_at.isoformat() if pat.expires_at else None,
    }


@dataclass
class Group:
    id: int
    full_path: str
    name: str
    parent_id: int | None = None
    visibility: str = "private"
    description: str = ""
    members: dict[int, int] = field(default_factory=dict)  # user id -> access level
    created_at: datetime = field(default_factory=now)

    @property
    def path(self) -> str:
        return self.full_path.rsplit("/", 1)[-1]


@dataclass
class Runner:
    """A runner as stored by the fake. ``token`` is the current authentication token."""

    id: int
    runner_type: str
    token: str
    token_expires_at: datetime | None
    group_id: int | None = None
    project_id: int | None = None
    #: Further projects a project runner is assigned to (``Ci::RunnerProject`` rows beside
    #: its owner project's): see :meth:`FakeGitLab.assign_runner`.
    other_project_ids: list[int] = field(default_factory=list)
    description: str = ""
    paused: bool = False
    locked: bool = False
    run_untagged: bool = True
    tag_list: list[str] = field(default_factory=list)
    access_level: str = "not_protected"
    maximum_timeout: int | None = None
    maintenance_note: str | None = None
    creator_id: int | None = None
    created_at: datetime = field(default_factory=now)
    contacted_at: datetime | None = None
    token_issued_at: datetime = field(default_factory=now)
    #: Runner managers by system id (``Ci::RunnerManager``), created by the first contact.
    managers: dict[str, RunnerManager] = field(default_factory=dict)

    @property
    def system_ids(self) -> list[str]:
        """The system ids of the runner's managers, oldest first."""
        return list(self.managers)


@dataclass
class RunnerManager:
    """One process (``system_id``) using a runner's token: ``Ci::RunnerManager``."""

    id: int
    system_id: str
    created_at: datetime = field(default_factory=now)
    contacted_at: datetime | None = None
    ip_address: str | None = "127.0.0.1"
    version: str | None = None


@dataclass
class Call:
    """The context a route handler gets."""

    request: Request
    params: dict[str, str]
    user: User | None
    token: PersonalAccessToken | None
    base_url: str

    def args(self) -> dict[str, Any]:
        """Query, form and JSON parameters merged (Grape reads all three)."""
        merged: dict[str, Any] = {}
        for key, values in self.request.query_lists.items():
            merged[key.removesuffix("[]")] = values if key.endswith("[]") else values[-1]
        ctype = self.request.content_type
        if ctype == "application/json" and self.request.body:
            body = self.request.json()
            if isinstance(body, dict):
                merged.update(body)
        elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            for key, values in self.request.form().items():
                merged[key.removesuffix("[]")] = values if key.endswith("[]") else values[-1]
        return merged


Handler = Callable[[Call], Response]


@dataclass(frozen=True)
class Route:
    """One entry of the routing table: ``pattern`` (the full path, e.g. ``/api/v4/user``)
    uses ``:name`` placeholders."""

    method: str
    pattern: str
    handler: Handler
    scopes: tuple[str, ...]
    regex: re.Pattern[str]

    @classmethod
    def make(cls, method: str, pattern: str, handler: Handler, scopes: tuple[str, ...]) -> Route:
        regex = re.compile("^" + re.sub(r":(\w+)", r"(?P<\1>[^/]+)", pattern.rstrip("/")) + "/?$")
        return cls(method.upper(), pattern, handler, scopes, regex)


def to_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "t"):
        return True
    if text in ("false", "0", "no", "f"):
        return False
    raise param_error(f"{name} is invalid")


def to_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise param_error(f"{name} is invalid")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise param_error(f"{name} is invalid") from None


def to_tags(value: Any) -> list[str]:
    """A list or a comma-separated string, like GitLab's ``CommaSeparatedToArray``."""
    items: Iterable[Any] = value if isinstance(value, list) else str(value).split(",")
    tags: list[str] = []
    for item in items:
        for tag in str(item).split(","):
            tag = tag.strip()
            if tag and tag not in tags:
                tags.append(tag)
    return tags


def new_runner_token() -> str:
    alphabet = string.ascii_letters + string.digits + "_-"
    return "glrt-" + "".join(secrets.choice(alphabet) for _ in range(24))


class FakeGitLab(FakeServer):
    """A stateful fake GitLab (API v4 under ``/api/v4``).

    Args:
        version: What ``GET /version`` reports.
        token_expiry: Lifetime in seconds of new runner tokens (``None``: no expiry).
        auto_online: When True, a runner counts as contacted ``auto_online_delay``
            seconds after its current token was issued, as if a runner process
            (system id ``auto_online_system_id``) picked the token up and polled ever
            since; otherwise only calls with the runner's token (verify, reset by token),
            :meth:`mark_runner_contacted` or ``runner_processes`` make it online.
        auto_online_delay: See ``auto_online``.
        auto_online_system_id: The system id of the process ``auto_online`` imagines.
        runner_processes: Called on every read of a runner: the ``(token, system_id)`` of
            each runner process running now (e.g. read from a fake cluster's pods). Each
            one whose token is a runner's current, unexpired token heartbeats that runner
            and its manager, as ``POST /api/v4/jobs/request`` does.
        online_window: Seconds after the last contact during which a runner is
            ``online`` (GitLab: 2 hours).
        **server_args: ``latency_ms`` and friends, see :class:`FakeServer`.
    """

    def __init__(
        self,
        *,
        version: str = "18.6.0",
        token_expiry: float | None = None,
        auto_online: bool = False,
        auto_online_delay: float = 0.0,
        auto_online_system_id: str = "s_fakepod0001",
        runner_processes: RunnerProcesses | None = None,
        online_window: float = ONLINE_WINDOW.total_seconds(),
        **server_args: Any,
    ) -> None:
        super().__init__(**server_args)
        self.version = version
        self.token_expiry = token_expiry
        self.auto_online = auto_online
        self.auto_online_delay = auto_online_delay
        self.auto_online_system_id = auto_online_system_id
        self.runner_processes = runner_processes
        self.online_window = timedelta(seconds=online_window)
        self.users: dict[int, User] = {}
        self.tokens: dict[str, PersonalAccessToken] = {}
        self.groups: dict[int, Group] = {}
        self._runners: dict[int, Runner] = {}
        self._issued_tokens: list[str] = []
        self._ids: dict[str, int] = {}
        # gitlab_projects imports this module, hence the import here.
        from tests.fakes.gitlab_projects import ProjectsApi

        #: Projects, repositories, schedules, variables and GraphQL (gitlab_projects.py).
        self.projects_api = ProjectsApi(self)
        from tests.fakes.gitlab_access_tokens import AccessTokensApi

        #: Group access tokens (gitlab_access_tokens.py).
        self.access_tokens = AccessTokensApi(self)
        self._route_table: list[Route] = [
            Route.make(method, API_PREFIX + pattern, handler, scopes)
            for method, pattern, handler, scopes in self.access_tokens.routes()
            + self._routes()
            + self.projects_api.routes()
        ]
        self._route_table += [Route.make(*r) for r in self.projects_api.root_routes()]

    # -- routing table -------------------------------------------------------------

    def _routes(self) -> list[tuple[str, str, Handler, tuple[str, ...]]]:
        """``(method, pattern under /api/v4, handler, accepted scopes)``."""
        return [
            ("GET", "/version", self._get_version, READ_USER),
            ("GET", "/user", self._get_current_user, READ_USER),
            ("GET", "/personal_access_tokens/self", self._get_token_self, ANY_SCOPE),
            ("GET", "/groups/:id", self._get_group, READ_API),
            ("GET", "/groups/:id/members/all", self._list_all_members, READ_API),
            ("GET", "/groups/:id/members/all/:user_id", self._get_member, READ_API),
            ("GET", "/groups/:id/runners", self._list_group_runners, READ_API),
            ("GET", "/projects/:id/runners", self._list_project_runners, READ_API),
            ("POST", "/user/runners", self._create_user_runner, CREATE_RUNNER),
            ("POST", "/runners", self._register_legacy_runner, NO_AUTH),
            ("DELETE", "/runners", self._delete_runner_by_token, NO_AUTH),
            ("POST", "/runners/verify", self._verify_runner, NO_AUTH),
            (
                "POST",
                "/runners/reset_authentication_token",
                self._reset_token_by_token,
                NO_AUTH,
            ),
            ("GET", "/runners/:id", self._get_runner, READ_RUNNER),
            ("GET", "/runners/:id/managers", self._list_runner_managers, READ_RUNNER),
            ("PUT", "/runners/:id", self._update_runner, MANAGE_RUNNER),
            ("DELETE", "/runners/:id", self._delete_runner, MANAGE_RUNNER),
            (
                "POST",
                "/runners/:id/reset_authentication_token",
                self._reset_token_by_id,
                MANAGE_RUNNER,
            ),
        ]

    def add_route(
        self,
        method: str,
        pattern: str,
        handler: Handler,
        scopes: tuple[str, ...] = READ_API,
        *,
        prefix: str = API_PREFIX,
    ) -> None:
        """Register another route (checked before the built-in ones).

        Args:
            method: HTTP method.
            pattern: Path under ``prefix`` with ``:name`` placeholders, e.g.
                ``/projects/:id/repository/files/:file_path``. Placeholder values
                reach the handler URL-decoded in ``call.params``.
            handler: ``(Call) -> Response``; it runs with :attr:`lock` held, may
                raise :class:`ApiError`, and can use :meth:`find_group`,
                :meth:`access_level`, :meth:`paginate` and :meth:`json`.
            scopes: Token scopes accepted (``READ_API``, ``("api",)``, ...;
                ``NO_AUTH`` for no personal token, ``ANY_SCOPE`` for any token).
            prefix: What ``pattern`` is under: ``/api/v4`` by default, ``""`` for a
                route outside the REST API (``/api/graphql``).
        """
        with self.lock:
            self._route_table.insert(0, Route.make(method, prefix + pattern, handler, scopes))

    # -- seeding -------------------------------------------------------------------

    def _next_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def add_user(
        self,
        username: str,
        token: str,
        scopes: Iterable[str] = ("api",),
        *,
        admin: bool = False,
        name: str | None = None,
        pat_name: str = "bootstrap",
        expires_at: date | None = None,
        bot: bool = False,
    ) -> User:
        """Create a user with one personal access token (more with :meth:`add_token`);
        ``bot``: a group access token's bot user (add it to the group as a member)."""
        with self.lock:
            user = User(self._next_id("user"), username, name or username.title(), admin, bot=bot)
            self.users[user.id] = user
            self.add_token(username, token, scopes, name=pat_name, expires_at=expires_at)
            return user

    def add_token(
        self,
        username: str,
        token: str,
        scopes: Iterable[str],
        *,
        name: str = "token",
        expires_at: date | None = None,
    ) -> PersonalAccessToken:
        """Give an existing user another personal access token."""
        with self.lock:
            user = self.user(username)
            pat = PersonalAccessToken(
                self._next_id("token"), token, user.id, name, list(scopes), expires_at
            )
            self.tokens[token] = pat
            return pat

    def revoke_token(self, token: str) -> None:
        """Revoke a personal access token (it then gets 401 invalid_token)."""
        with self.lock:
            self.tokens[token].revoked = True

    def user(self, username: str) -> User:
        """The user called ``username`` (KeyError if none)."""
        with self.lock:
            for user in self.users.values():
                if user.username == username:
                    return user
        raise KeyError(username)

    def add_group(
        self,
        full_path: str,
        members: dict[str, int] | None = None,
        *,
        visibility: str = "private",
        name: str | None = None,
        description: str = "",
    ) -> Group:
        """Create a group; a subgroup's parent (by full path) must exist already.

        ``members`` maps usernames to access levels (``OWNER`` = 50, ...). Members of
        ancestor groups are inherited, as in GitLab.
        """
        with self.lock:
            parent_path, _, path = full_path.rpartition("/")
            parent = self.find_group(parent_path) if parent_path else None
            if parent_path and parent is None:
                raise ValueError(f"parent group {parent_path!r} does not exist")
            if self.find_group(full_path) is not None:
                raise ValueError(f"group {full_path!r} exists")
            group = Group(
                self._next_id("group"),
                full_path,
                name or path,
                parent.id if parent else None,
                visibility,
                description,
                {self.user(u).id: level for u, level in (members or {}).items()},
            )
            self.groups[group.id] = group
            return group

    def add_member(self, group_path: str, username: str, access_level: int) -> None:
        """Add (or change) a direct member of a group."""
        with self.lock:
            group = self.find_group(group_path)
            if group is None:
                raise KeyError(group_path)
            group.members[self.user(username).id] = access_level

    def add_runner(
        self,
        runner_type: str = "group_type",
        *,
        group: str | None = None,
        project: str | None = None,
        **attrs: Any,
    ) -> Runner:
        """Seed a runner directly (e.g. an instance runner, a leftover group runner, or with
        ``project`` a project runner of that project)."""
        with self.lock:
            group_id = None
            if group is not None:
                found = self.find_group(group)
                if found is None:
                    raise KeyError(group)
                group_id = found.id
            if project is not None:
                runner = self._new_runner("project_type", None, None, attrs)
                runner.project_id = self.projects_api.get(project).id
                return runner
            return self._new_runner(runner_type, group_id, None, attrs)

    def assign_runner(self, runner_id: int, project: str) -> None:
        """Assign a project runner to one more project, as ``POST /projects/:id/runners``
        (``Ci::Runners::AssignRunnerService``) does; that route is not served, its checks
        (``authenticate_enable_runner!``: not locked, ``assign_runner``) not modelled."""
        with self.lock:
            runner = self._runners[runner_id]
            if runner.runner_type != "project_type":
                raise ValueError("only project runners are assigned to projects")
            runner.other_project_ids.append(self.projects_api.get(project).id)

    def set_token_expiry(self, seconds: float | None) -> None:
        """Lifetime of runner tokens issued from now on (``None``: never expire)."""
        with self.lock:
            self.token_expiry = seconds

    def expire_runner_token(self, runner_id: int) -> None:
        """Make a runner's current token expired (verify and reset-by-token get 403)."""
        with self.lock:
            self._runners[runner_id].token_expires_at = now() - timedelta(seconds=1)

    def reset_runner_token(self, runner_id: int) -> str:
        """Reset a runner's token as someone in the web UI would; returns the new token."""
        with self.lock:
            runner = self._runners[runner_id]
            self._issue_token(runner)
            return runner.token

    def mark_runner_contacted(
        self, runner_id: int, at: datetime | None = None, system_id: str | None = None
    ) -> None:
        """Record a heartbeat, as a runner process polling for jobs would (of the manager
        ``system_id`` too, when given)."""
        with self.lock:
            runner = self._runners[runner_id]
            if system_id:
                self._heartbeat(runner, system_id, at)
            runner.contacted_at = at or now()

    # -- state for assertions ------------------------------------------------------

    @property
    def runners(self) -> dict[int, Runner]:
        """A deep copy of the runners, by id."""
        with self.lock:
            return copy.deepcopy(self._runners)

    def runner(self, runner_id: int) -> Runner:
        """A deep copy of one runner (KeyError when it does not exist)."""
        with self.lock:
            return copy.deepcopy(self._runners[runner_id])

    def runner_tokens(self) -> list[str]:
        """Every runner token ever issued (current and dead), for secret-leak scans."""
        with self.lock:
            return list(self._issued_tokens)

    def runner_status(self, runner_id: int) -> str:
        """What ``GET /runners/:id`` reports as ``status``."""
        with self.lock:
            return self._status(self._runners[runner_id])

    # -- projects (tests/fakes/gitlab_projects.py) -----------------------------------

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
        """Create a project in an existing group; ``files`` (path -> content) become its
        first commit on ``default_branch``, none leaves the repository empty."""
        with self.lock:
            return self.projects_api.add_project(
                full_path,
                files,
                default_branch,
                visibility=visibility,
                description=description,
                name=name,
                executables=executables,
            )

    def add_release(
        self,
        full_path: str,
        tag_name: str,
        *,
        name: str | None = None,
        description: str = "",
        ref: str | None = None,
    ) -> Release:
        """Seed a release (its tag is created at ``ref``, default branch by default)."""
        with self.lock:
            return self.projects_api.add_release(
                full_path, tag_name, name=name, description=description, ref=ref
            )

    def add_schedule(self, full_path: str, description: str, **attrs: Any) -> PipelineSchedule:
        """Seed a pipeline schedule (``ref``, ``cron``, ``owner``, ``variables``, ...)."""
        with self.lock:
            return self.projects_api.add_schedule(full_path, description, **attrs)

    def schedule_ran(self, full_path: str, schedule_id: int, status: str) -> dict[str, Any]:
        """The schedule started a pipeline that ended with ``status``: its last pipeline."""
        with self.lock:
            return self.projects_api.schedule_ran(full_path, schedule_id, status)

    def add_variable(self, full_path: str, key: str, value: str, **attrs: Any) -> CiVariable:
        """Seed a project CI/CD variable (``masked``, ``protected``, ... as keywords)."""
        with self.lock:
            return self.projects_api.add_variable(full_path, key, value, **attrs)

    def set_pipeline_variables_role(self, full_path: str | None, role: str) -> None:
        """A project's "minimum role to use pipeline variables" (``no_one_allowed``,
        ``developer``, ``maintainer``, ``owner``); ``None``: that of projects created from now
        on (GitLab.com creates them with ``no_one_allowed``)."""
        with self.lock:
            if full_path is None:
                self.projects_api.new_project_pipeline_variables_role = role
            else:
                self.projects_api.get(full_path).pipeline_variables_role = role

    def project(self, full_path: str) -> Project:
        """A deep copy of a project: ``files`` (branch -> path -> content), ``commits``,
        ``tags``, ``schedules``, ``variables``, ``catalog_resource``... (KeyError if none)."""
        with self.lock:
            return self.projects_api.snapshot(full_path)

    def commits(self, full_path: str, ref: str | None = None) -> list[Commit]:
        """A project's commits (only the history of ``ref`` if given), newest first."""
        with self.lock:
            return self.projects_api.commits(full_path, ref)

    def tags(self, full_path: str) -> dict[str, Tag]:
        """A project's tags by name (copies)."""
        with self.lock:
            return self.projects_api.tags(full_path)

    def catalog_resource(self, full_path: str) -> bool:
        """Whether ``catalogResourcesCreate`` marked the project as a CI/CD Catalog resource."""
        with self.lock:
            return self.projects_api.get(full_path).catalog_resource

    # -- helpers for handlers ------------------------------------------------------

    def find_group(self, id_or_path: str | int) -> Group | None:
        """A group by numeric id or full path (no visibility check)."""
        with self.lock:
            text = str(id_or_path)
            if text.isdigit():
                return self.groups.get(int(text))
            return next((g for g in self.groups.values() if g.full_path == text), None)

    def ancestors(self, group: Group) -> list[Group]:
        """The group and its ancestors, nearest first."""
        chain = [group]
        while chain[-1].parent_id is not None:
            chain.append(self.groups[chain[-1].parent_id])
        return chain

    def access_level(self, user: User, group: Group) -> int:
        """Effective access level (the highest over the group and its ancestors)."""
        return max((g.members.get(user.id, 0) for g in self.ancestors(group)), default=0)

    def visible_group(self, call: Call, id_or_path: str) -> Group:
        """The group, or 404 "Group Not Found" when missing or invisible to the caller."""
        group = self.find_group(id_or_path)
        if group is None:
            raise not_found("Group")
        user = call.user
        if group.visibility == "private" and not (
            user is not None and (user.admin or self.access_level(user, group) > 0)
        ):
            raise not_found("Group")
        return group

    def paginate(self, call: Call, items: list[Any]) -> Response:
        """A JSON list page with GitLab's ``X-*`` and ``Link`` pagination headers."""
        args = call.request.query
        page = max(1, to_int(args.get("page", 1), "page"))
        per_page = min(100, max(1, to_int(args.get("per_page", 20), "per_page")))
        total = len(items)
        total_pages = max(1, math.ceil(total / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]

        def page_url(number: int) -> str:
            query = {**args, "page": str(number), "per_page": str(per_page)}
            origin = call.base_url.removesuffix(API_PREFIX)
            return f"{origin}{call.request.path}?{urlencode(query)}"

        links = []
        if page > 1:
            links.append(f'<{page_url(page - 1)}>; rel="prev"')
        if page < total_pages:
            links.append(f'<{page_url(page + 1)}>; rel="next"')
        links.append(f'<{page_url(1)}>; rel="first"')
        links.append(f'<{page_url(total_pages)}>; rel="last"')
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(total),
            "X-Total-Pages": str(total_pages),
            "X-Next-Page": str(page + 1) if page < total_pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
            "Link": ", ".join(links),
        }
        return Response.json(200, chunk, headers)

    @staticmethod
    def json(data: Any, status: int = 200) -> Response:
        return Response.json(status, data)

    # -- dispatch ------------------------------------------------------------------

    def is_write(self, request: Request) -> bool:
        """Writes: every non-GET request but GraphQL queries (a POST that reads), and the
        runner-token calls that heartbeat (verify counts: it changes what GitLab reports)."""
        if request.path == "/api/graphql":
            return b"mutation" in request.body
        return super().is_write(request)

    def fault_response(self, kind: str) -> Response:
        if kind == "429":
            return Response(
                429, b"Retry later\n", {"Content-Type": "text/plain", "Retry-After": "1"}
            )
        return Response.json(500, {"message": "500 Internal Server Error"})

    def handle(self, request: Request) -> Response:
        with self.lock:
            self._poll()
        host = request.header("host", f"127.0.0.1:{self.port}")
        base_url = f"http://{host}{API_PREFIX}"
        for route in self._route_table:
            if route.method != request.method:
                continue
            matched = route.regex.match(request.path)
            if matched is None:
                continue
            params = {k: unquote(v) for k, v in matched.groupdict().items()}
            try:
                call = Call(request, params, None, None, base_url)
                self._authenticate(call, route)
                return route.handler(call)
            except ApiError as exc:
                headers = {}
                if exc.status == 401:
                    headers["WWW-Authenticate"] = 'Bearer realm="Protected by OAuth 2.0"'
                return Response.json(exc.status, exc.body, headers)
        return Response.json(404, {"error": "404 Not Found"})

    def _authenticate(self, call: Call, route: Route) -> None:
        if route.scopes == NO_AUTH:
            return
        pat = self.request_token(call.request)
        if pat is None:
            raise error(401, "401 Unauthorized")
        if route.scopes != ANY_SCOPE and not set(route.scopes) & set(pat.scopes):
            raise ApiError(
                403,
                {
                    "error": "insufficient_scope",
                    "error_description": INSUFFICIENT_SCOPE_DESCRIPTION,
                    "scope": " ".join(route.scopes),
                },
            )
        pat.last_used_at = now()
        call.token = pat
        call.user = self.users[pat.user_id]

    def request_token(self, request: Request) -> PersonalAccessToken | None:
        """The personal access token a request carries (``PRIVATE-TOKEN``, ``private_token``
        or ``Authorization: Bearer``), None when it has none; 401 when it is unknown,
        revoked or expired."""
        raw = request.header("private-token") or request.query.get("private_token", "")
        bearer = request.header("authorization")
        if not raw and bearer.lower().startswith("bearer "):
            raw = bearer[7:].strip()
        if not raw:
            return None
        pat = self.tokens.get(raw)
        if pat is None:
            raise error(401, "401 Unauthorized")
        if pat.revoked:
            raise ApiError(
                401,
                {
                    "error": "invalid_token",
                    "error_description": "Token was revoked. You have to re-authorize from "
                    "the user.",
                },
            )
        if pat.expired:
            raise ApiError(
                401,
                {
                    "error": "invalid_token",
                    "error_description": "Token is expired. You can either do "
                    "re-authorization or token refresh.",
                },
            )
        return pat

    # -- representations -----------------------------------------------------------

    def _user_json(self, user: User, base_url: str) -> dict[str, Any]:
        web = base_url.removesuffix(API_PREFIX)
        data: dict[str, Any] = {
            "id": user.id,
            "username": user.username,
            "name": user.name,
            "state": user.state,
            "locked": False,
            "avatar_url": None,
            "web_url": f"{web}/{user.username}",
            "created_at": iso(user.created_at),
            "bio": "",
            "public_email": None,
            "email": f"{user.username}@example.com",
            "bot": user.bot,
            "two_factor_enabled": False,
        }
        if user.admin:
            data["is_admin"] = True
        return data

    def _group_json(self, group: Group, base_url: str) -> dict[str, Any]:
        web = base_url.removesuffix(API_PREFIX)
        names = [g.name for g in reversed(self.ancestors(group))]
        return {
            "id": group.id,
            "web_url": f"{web}/groups/{group.full_path}",
            "name": group.name,
            "path": group.path,
            "description": group.description,
            "visibility": group.visibility,
            "full_name": " / ".join(names),
            "full_path": group.full_path,
            "parent_id": group.parent_id,
            "created_at": iso(group.created_at),
            "avatar_url": None,
            "shared_runners_setting": "enabled",
        }

    def _member_json(self, user: User, level: int, base_url: str) -> dict[str, Any]:
        data = self._user_json(user, base_url)
        return {
            **{k: data[k] for k in ("id", "username", "name", "state", "avatar_url", "web_url")},
            "access_level": level,
            "created_at": iso(user.created_at),
            "expires_at": None,
            "membership_state": "active",
        }

    def _heartbeat(self, runner: Runner, system_id: str, at: datetime | None = None) -> None:
        """``Ci::Runner#heartbeat`` and ``ensure_manager(system_id).heartbeat``."""
        moment = at or now()
        runner.contacted_at = moment
        manager = runner.managers.get(system_id)
        if manager is None:
            manager = RunnerManager(self._next_id("runner_manager"), system_id, created_at=moment)
            runner.managers[system_id] = manager
        manager.contacted_at = moment

    def _poll(self) -> None:
        """Let the runner processes that run now contact GitLab (before any runner read)."""
        if self.auto_online:
            for runner in self._runners.values():
                auto = runner.token_issued_at + timedelta(seconds=self.auto_online_delay)
                if (
                    auto <= now()
                    and not _expired(runner)
                    and (runner.contacted_at is None or auto > runner.contacted_at)
                ):
                    self._heartbeat(runner, self.auto_online_system_id, auto)
        if self.runner_processes is None:
            return
        for token, system_id in self.runner_processes():
            for runner in self._runners.values():
                if runner.token == token and not _expired(runner):
                    self._heartbeat(runner, system_id)

    def _contacted_at(self, runner: Runner) -> datetime | None:
        return runner.contacted_at

    def _status(self, runner: Runner) -> str:
        return self._status_of(runner.contacted_at, runner.created_at)

    def _status_of(self, contacted: datetime | None, created: datetime) -> str:
        """``Ci::Runner#status`` / ``Ci::RunnerManager#status``."""
        moment = now()
        if contacted is None:
            return "stale" if moment - created > STALE_AFTER else "never_contacted"
        if moment - contacted <= self.online_window:
            return "online"
        return "stale" if moment - contacted > STALE_AFTER else "offline"

    def _latest_manager(self, runner: Runner) -> RunnerManager | None:
        contacted = [m for m in runner.managers.values() if m.contacted_at is not None]
        return max(contacted, key=lambda m: m.contacted_at or now(), default=None)

    def _runner_json(self, runner: Runner) -> dict[str, Any]:
        status = self._status(runner)
        return {
            "id": runner.id,
            "description": runner.description,
            "ip_address": None,
            "active": not runner.paused,
            "paused": runner.paused,
            "is_shared": runner.runner_type == "instance_type",
            "runner_type": runner.runner_type,
            "name": None,
            "online": status == "online",
            "status": status,
            "created_at": iso(runner.created_at),
            "created_by": (
                {"id": runner.creator_id, "username": self.users[runner.creator_id].username}
                if runner.creator_id in self.users
                else None
            ),
        }

    def _runner_details_json(self, runner: Runner, call: Call) -> dict[str, Any]:
        """``Entities::Ci::RunnerDetails``: no ``token_expires_at`` (only create, verify and
        the resets answer it); ``maintenance_note`` only for who may update the runner;
        ``groups`` only those the caller is authorized for; version fields from the manager
        that contacted last."""
        user = call.user
        assert user is not None
        groups = []
        if runner.group_id in self.groups:
            group = self.groups[runner.group_id]
            if user.admin or self.access_level(user, group) >= REPORTER:
                web = call.base_url.removesuffix(API_PREFIX)
                groups.append(
                    {
                        "id": group.id,
                        "name": group.name,
                        "web_url": f"{web}/groups/{group.full_path}",
                    }
                )
        latest = self._latest_manager(runner)
        can_update = self._can_update(user, runner)
        return {
            **self._runner_json(runner),
            "tag_list": list(runner.tag_list),
            "run_untagged": runner.run_untagged,
            "locked": runner.locked,
            "maximum_timeout": runner.maximum_timeout,
            "access_level": runner.access_level,
            "version": latest.version if latest else None,
            "revision": None,
            "platform": None,
            "architecture": None,
            "contacted_at": iso(self._contacted_at(runner)),
            "maintenance_note": runner.maintenance_note if can_update else None,
            "groups": groups,
        }

    def _manager_json(self, manager: RunnerManager) -> dict[str, Any]:
        """``Entities::Ci::RunnerManager``."""
        return {
            "id": manager.id,
            "system_id": manager.system_id,
            "version": manager.version,
            "revision": None,
            "platform": None,
            "architecture": None,
            "created_at": iso(manager.created_at),
            "contacted_at": iso(manager.contacted_at),
            "ip_address": manager.ip_address,
            "status": self._status_of(manager.contacted_at, manager.created_at),
            "job_execution_status": "idle",
        }

    # -- handlers: user, token, version --------------------------------------------

    def _get_version(self, call: Call) -> Response:
        return self.json(
            {
                "version": self.version,
                "revision": "fake0000",
                "kas": {"enabled": False},
                "enterprise": False,
            }
        )

    def _get_current_user(self, call: Call) -> Response:
        assert call.user is not None
        return self.json(self._user_json(call.user, call.base_url))

    def _get_token_self(self, call: Call) -> Response:
        pat = call.token
        assert pat is not None
        return self.json(token_json(pat))

    # -- handlers: groups ----------------------------------------------------------

    def _get_group(self, call: Call) -> Response:
        group = self.visible_group(call, call.params["id"])
        return self.json(self._group_json(group, call.base_url))

    def _effective_members(self, group: Group) -> dict[int, int]:
        members: dict[int, int] = {}
        for g in self.ancestors(group):
            for user_id, level in g.members.items():
                members[user_id] = max(level, members.get(user_id, 0))
        return members

    def _list_all_members(self, call: Call) -> Response:
        group = self.visible_group(call, call.params["id"])
        items = [
            self._member_json(self.users[uid], level, call.base_url)
            for uid, level in sorted(self._effective_members(group).items())
        ]
        return self.paginate(call, items)

    def _get_member(self, call: Call) -> Response:
        group = self.visible_group(call, call.params["id"])
        user_id = to_int(call.params["user_id"], "user_id")
        level = self._effective_members(group).get(user_id)
        if level is None or user_id not in self.users:
            raise not_found()
        return self.json(self._member_json(self.users[user_id], level, call.base_url))

    def _list_group_runners(self, call: Call) -> Response:
        group = self.visible_group(call, call.params["id"])
        user = call.user
        assert user is not None
        if not user.admin and self.access_level(user, group) < MAINTAINER:
            raise forbidden()
        lineage = {g.id for g in self.ancestors(group)}
        runners = [
            r
            for r in sorted(self._runners.values(), key=lambda r: r.id)
            if r.runner_type == "instance_type"
            or (r.runner_type == "group_type" and r.group_id in lineage)
        ]
        runners = self._filter_runners(runners, call.args())
        return self.paginate(call, [self._runner_json(r) for r in runners])

    def _list_project_runners(self, call: Call) -> Response:
        """``GET /projects/:id/runners``: ``read_project_runners`` (Maintainer); the
        project's own runners, its groups' and the instance's (``owned_or_instance_wide``)."""
        project = self.projects_api._project(call, MAINTAINER)
        group = self.find_group(project.namespace_id)
        lineage = {g.id for g in self.ancestors(group)} if group else set()
        runners = [
            r
            for r in sorted(self._runners.values(), key=lambda r: r.id)
            if r.runner_type == "instance_type"
            or (r.runner_type == "group_type" and r.group_id in lineage)
            or (r.runner_type == "project_type" and project.id in _projects_of(r))
        ]
        runners = self._filter_runners(runners, call.args())
        return self.paginate(call, [self._runner_json(r) for r in runners])

    def can_pick(self, runner_id: int, project_path: str, *, protected_ref: bool) -> bool:
        """Whether a runner may take a job of ``project_path`` (``Ci::Runner#can_pick?``
        without tags: the project is the runner's own, in its group's tree, or any for an
        instance runner; a ``ref_protected`` runner only takes jobs of protected refs)."""
        with self.lock:
            runner = self._runners[runner_id]
            project = self.projects_api.get(project_path)
            if runner.paused or (runner.access_level == "ref_protected" and not protected_ref):
                return False
            if runner.runner_type == "project_type":
                return project.id in _projects_of(runner)
            if runner.runner_type == "group_type":
                group = self.find_group(project.namespace_id)
                return group is not None and runner.group_id in {
                    g.id for g in self.ancestors(group)
                }
            return True

    def _filter_runners(self, runners: list[Runner], args: dict[str, Any]) -> list[Runner]:
        if "type" in args:
            if args["type"] not in RUNNER_TYPES:
                raise param_error("type does not have a valid value")
            runners = [r for r in runners if r.runner_type == args["type"]]
        if "status" in args:
            status = args["status"]
            if status not in RUNNER_STATUSES:
                raise param_error("status does not have a valid value")
            if status in ("active", "paused"):
                runners = [r for r in runners if r.paused == (status == "paused")]
            else:
                runners = [r for r in runners if self._status(r) == status]
        if "paused" in args:
            paused = to_bool(args["paused"], "paused")
            runners = [r for r in runners if r.paused == paused]
        if "tag_list" in args:
            wanted = set(to_tags(args["tag_list"]))
            runners = [r for r in runners if wanted <= set(r.tag_list)]
        return runners

    # -- handlers: runners ---------------------------------------------------------

    def _issue_token(self, runner: Runner) -> None:
        runner.token = new_runner_token()
        runner.token_issued_at = now()
        runner.token_expires_at = (
            now() + timedelta(seconds=self.token_expiry) if self.token_expiry else None
        )
        self._issued_tokens.append(runner.token)

    def _new_runner(
        self, runner_type: str, group_id: int | None, creator_id: int | None, attrs: dict[str, Any]
    ) -> Runner:
        runner = Runner(
            id=self._next_id("runner"),
            runner_type=runner_type,
            token="",
            token_expires_at=None,
            group_id=group_id,
            creator_id=creator_id,
        )
        self._apply_runner_attrs(runner, attrs)
        self._issue_token(runner)
        self._runners[runner.id] = runner
        return runner

    def _apply_runner_attrs(self, runner: Runner, args: dict[str, Any]) -> None:
        if "description" in args:
            runner.description = str(args["description"] or "")
        if "paused" in args:
            runner.paused = to_bool(args["paused"], "paused")
        if "active" in args:
            runner.paused = not to_bool(args["active"], "active")
        if "locked" in args:
            runner.locked = to_bool(args["locked"], "locked")
        if "run_untagged" in args:
            runner.run_untagged = to_bool(args["run_untagged"], "run_untagged")
        if "tag_list" in args:
            runner.tag_list = to_tags(args["tag_list"])
        if "access_level" in args:
            if args["access_level"] not in ACCESS_LEVELS:
                raise param_error("access_level does not have a valid value")
            runner.access_level = args["access_level"]
        if "maximum_timeout" in args:
            value = args["maximum_timeout"]
            runner.maximum_timeout = (
                None if value in (None, "") else to_int(value, "maximum_timeout")
            )
        if "maintenance_note" in args:
            note = args["maintenance_note"]
            if note is not None and len(str(note)) > 1024:
                raise ApiError(
                    400,
                    {"message": {"maintenance_note": ["is too long (maximum is 1024 characters)"]}},
                )
            runner.maintenance_note = None if note is None else str(note)

    def _create_user_runner(self, call: Call) -> Response:
        user = call.user
        assert user is not None
        args = call.args()
        runner_type = args.get("runner_type")
        if runner_type is None:
            raise param_error("runner_type is missing")
        if runner_type not in RUNNER_TYPES:
            raise param_error("runner_type does not have a valid value")
        if "paused" in args and "active" in args:
            raise param_error("active, paused are mutually exclusive")
        group_id = project_id = None
        if runner_type == "group_type":
            if "group_id" not in args:
                raise param_error("group_id is missing")
            group = self.find_group(to_int(args["group_id"], "group_id"))
            if group is None:
                raise bad_request("Missing/invalid scope")
            if not user.admin and self.access_level(user, group) < OWNER:
                raise forbidden("Insufficient permissions")
            group_id = group.id
        elif runner_type == "project_type":
            if "project_id" not in args:
                raise param_error("project_id is missing")
            project = self.projects_api.find(to_int(args["project_id"], "project_id"))
            if project is None:
                raise bad_request("Missing/invalid scope")
            # ProjectPolicy: Maintainers have create_runner.
            if not user.admin and self.projects_api._role(user, project) < MAINTAINER:
                raise forbidden("Insufficient permissions")
            project_id = project.id
        elif not user.admin:
            raise forbidden("Insufficient permissions")
        keep = {k: v for k, v in args.items() if k not in ("runner_type", "group_id", "project_id")}
        probe = Runner(0, runner_type, "", None)
        self._apply_runner_attrs(probe, keep)  # validate before creating anything
        runner = self._new_runner(runner_type, group_id, user.id, keep)
        if runner_type == "project_type":
            runner.project_id = project_id
        return self.json(
            {
                "id": runner.id,
                "token": runner.token,
                "token_expires_at": iso(runner.token_expires_at),
            },
            201,
        )

    def _register_legacy_runner(self, call: Call) -> Response:
        # Registration tokens are off by default since GitLab 17.0.
        return Response.json(410, {"message": "410 Gone - runner registration disallowed"})

    def _runner_by_id(self, call: Call) -> Runner:
        runner = self._runners.get(to_int(call.params["id"], "id"))
        if runner is None:
            raise not_found("Runner")
        return runner

    def _runner_access(self, user: User, runner: Runner) -> int:
        if user.admin:
            return OWNER
        if runner.runner_type == "group_type" and runner.group_id in self.groups:
            return self.access_level(user, self.groups[runner.group_id])
        if runner.runner_type == "project_type" and runner.project_id is not None:
            project = self.projects_api.find(runner.project_id)
            return self.projects_api._role(user, project) if project else 0
        return 0

    def _can_update(self, user: User, runner: Runner) -> bool:
        """``RunnerPolicy`` ``update_runner``: the Owner of a group runner's group; a
        Maintainer of a project runner's owner project (``admin_project_runners``)."""
        needed = MAINTAINER if runner.runner_type == "project_type" else OWNER
        return self._runner_access(user, runner) >= needed

    def _get_runner(self, call: Call) -> Response:
        runner = self._runner_by_id(call)
        assert call.user is not None
        if runner.runner_type != "instance_type" and (
            self._runner_access(call.user, runner) < MAINTAINER
        ):
            raise forbidden("No access granted")
        return self.json(self._runner_details_json(runner, call))

    def _list_runner_managers(self, call: Call) -> Response:
        """``GET /runners/:id/managers``: ``authenticate_show_runner!``, not paginated."""
        runner = self._runner_by_id(call)
        assert call.user is not None
        if runner.runner_type != "instance_type" and (
            self._runner_access(call.user, runner) < MAINTAINER
        ):
            raise forbidden("No access granted")
        return self.json([self._manager_json(m) for m in runner.managers.values()])

    def _require_owner(self, call: Call, runner: Runner) -> None:
        assert call.user is not None
        if not self._can_update(call.user, runner):
            raise forbidden("No access granted")

    def _update_runner(self, call: Call) -> Response:
        runner = self._runner_by_id(call)
        self._require_owner(call, runner)
        args = {k: v for k, v in call.args().items() if k != "id"}
        fields = (
            "description",
            "active",
            "paused",
            "tag_list",
            "run_untagged",
            "locked",
            "access_level",
            "maximum_timeout",
            "maintenance_note",
        )
        if not any(f in args for f in fields):
            raise param_error(
                ", ".join(fields) + " are missing, at least one parameter must be provided"
            )
        if "paused" in args and "active" in args:
            raise param_error("active, paused are mutually exclusive")
        probe = copy.deepcopy(runner)
        self._apply_runner_attrs(probe, args)
        self._apply_runner_attrs(runner, args)
        return self.json(self._runner_details_json(runner, call))

    def _delete_runner(self, call: Call) -> Response:
        """``authenticate_delete_runner!``: an admin may always; anyone else gets 403 for a
        project runner assigned to more than one project (checked first, as GitLab does;
        ``RunnerPolicy`` prevents ``delete_runner`` then too), else needs ``delete_runner``
        (``can_admin_runner``: as for an update)."""
        runner = self._runner_by_id(call)
        assert call.user is not None
        if not call.user.admin and len(_projects_of(runner)) > 1:
            raise forbidden("Runner associated with more than one project")
        self._require_owner(call, runner)
        del self._runners[runner.id]
        return Response.empty(204)

    def _reset_token_by_id(self, call: Call) -> Response:
        runner = self._runner_by_id(call)
        self._require_owner(call, runner)
        self._issue_token(runner)
        return self.json(self._reset_result(runner), 201)

    @staticmethod
    def _reset_result(runner: Runner) -> dict[str, Any]:
        """``Entities::Ci::ResetTokenResult``: ``token_expires_at`` only when it expires."""
        result: dict[str, Any] = {"token": runner.token}
        if runner.token_expires_at is not None:
            result["token_expires_at"] = iso(runner.token_expires_at)
        return result

    def _runner_by_token(self, call: Call) -> Runner:
        token = call.args().get("token")
        if not token:
            raise param_error("token is missing")
        for runner in self._runners.values():
            if runner.token == token:
                if _expired(runner):
                    break
                return runner
        raise forbidden()

    def _authenticate_runner(self, call: Call) -> Runner:
        """``authenticate_runner!`` (ensure_runner_manager: true): the runner and the manager
        of ``system_id`` (``<legacy>`` without one) are heartbeated."""
        runner = self._runner_by_token(call)
        self._heartbeat(runner, str(call.args().get("system_id") or LEGACY_SYSTEM_ID))
        return runner

    def _verify_runner(self, call: Call) -> Response:
        runner = self._authenticate_runner(call)
        return self.json(
            {
                "id": runner.id,
                "token": runner.token,
                "token_expires_at": iso(runner.token_expires_at),
            }
        )

    def _reset_token_by_token(self, call: Call) -> Response:
        runner = self._authenticate_runner(call)
        self._issue_token(runner)
        return self.json(self._reset_result(runner), 201)

    def _delete_runner_by_token(self, call: Call) -> Response:
        # ensure_runner_manager: false: no heartbeat.
        runner = self._runner_by_token(call)
        del self._runners[runner.id]
        return Response.empty(204)


def _projects_of(runner: Runner) -> list[int]:
    """A project runner's projects: its owner project first, then the ones it is assigned to
    (``Ci::Runner#projects``); none for other runner types."""
    if runner.runner_type != "project_type" or runner.project_id is None:
        return []
    return [runner.project_id, *runner.other_project_ids]


def _expired(runner: Runner) -> bool:
    return runner.token_expires_at is not None and runner.token_expires_at <= now()
