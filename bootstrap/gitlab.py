"""Every GitLab call the tool makes, through python-gitlab. Nothing else talks to GitLab.

Retries: reads are retried on 5xx, 429 and connection errors. Writes are never retried
blindly — a POST that timed out may have happened on the server — except after a 429 (the
server did not process it) and for calls the workflows mark ``idempotent``. The workflows
verify state instead of repeating a reset or a create.

Errors become :class:`~bootstrap.errors.GitLabError` (exit 3) with a message that names the
cause and the fix; an unknown group becomes :class:`~bootstrap.errors.InvalidInput` (exit 2).
No token ever appears in a message: :func:`redact` guards every message that quotes a
response.

Tokens come and go as :class:`~bootstrap.secret.Secret` (``GITLAB_TOKEN``, the runner tokens
GitLab issues, group access token values): ``str``/``repr`` show ``(secret)``, so no
exception, log record or traceback with locals shows one. This module is the only place the
tool's own tokens are revealed, each time straight into python-gitlab: the ``private_token``
of the connection (``__init__``, ``switch_token``), the body of ``POST /runners/verify`` and
``POST /runners/reset_authentication_token``, and the value of a CI/CD variable
(``set_secret_variable``). New token values are wrapped where the answer is parsed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from bootstrap import __version__, deadline, neterrors
from bootstrap.calls import Calls
from bootstrap.errors import BootstrapError, GitLabError, InvalidInput
from bootstrap.secret import Secret, expect_secret, reveal, without_userinfo

if TYPE_CHECKING:
    import gitlab as gitlab_mod

T = TypeVar("T")

MAINTAINER = 40
OWNER = 50
ACCESS_NAMES = {
    10: "Guest",
    15: "Planner",
    20: "Reporter",
    30: "Developer",
    40: "Maintainer",
    50: "Owner",
}
SCOPE_CREATE = "create_runner"
SCOPE_MANAGE = "manage_runner"
SCOPE_READ = "read_api"
# Scopes that include the runner scopes.
_BROAD_SCOPES = {"api"}
_TOKEN_PATTERN = re.compile(r"(gl[a-z]{2,4}-|glpat-)[A-Za-z0-9_.\-]{8,}")


def redact(text: str, secrets: Sequence[Secret | str] | None = None) -> str:
    """Replace anything that looks like a GitLab token (and the given secrets) with a stub."""
    for secret in secrets or []:
        if value := reveal(secret):
            text = text.replace(value, redact_token(value))
    return _TOKEN_PATTERN.sub(lambda m: redact_token(m.group(0)), text)


def redact_token(token: Secret | str) -> str:
    """``glrt-…WXYZ``: enough to tell tokens apart, never enough to use one."""
    token = reveal(token)
    prefix = token.split("-", 1)[0] + "-" if "-" in token[:8] else ""
    return f"{prefix}…{token[-4:]}" if len(token) > 8 else "…"


@dataclass(frozen=True)
class TokenInfo:
    """The personal (or group/project) access token in use."""

    scopes: frozenset[str]
    expires_at: str | None
    name: str
    id: int | None = None

    def has(self, scope: str) -> bool:
        return scope in self.scopes or bool(self.scopes & _BROAD_SCOPES)


@dataclass(frozen=True)
class Group:
    id: int
    full_path: str
    web_url: str
    visibility: str = "private"


@dataclass(frozen=True)
class Runner:
    """A runner as GitLab reports it (no token: GitLab never returns it after creation)."""

    id: int
    description: str
    status: str = ""
    paused: bool = False
    tag_list: tuple[str, ...] = ()
    run_untagged: bool = True
    locked: bool = False
    access_level: str = "not_protected"
    maximum_timeout: int | None = None
    maintenance_note: str = ""
    contacted_at: str | None = None
    token_expires_at: str | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Runner:
        return cls(
            id=int(data["id"]),
            description=data.get("description") or "",
            status=data.get("status") or "",
            paused=bool(data.get("paused", not data.get("active", True))),
            tag_list=tuple(sorted(data.get("tag_list") or [])),
            run_untagged=bool(data.get("run_untagged", True)),
            locked=bool(data.get("locked", False)),
            access_level=data.get("access_level") or "not_protected",
            maximum_timeout=data.get("maximum_timeout"),
            maintenance_note=data.get("maintenance_note") or "",
            contacted_at=data.get("contacted_at"),
            token_expires_at=data.get("token_expires_at"),
        )


@dataclass(frozen=True)
class Manager:
    """One runner manager: a process (``system_id``) that used the runner's token."""

    system_id: str
    status: str
    contacted_at: str | None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Manager:
        return cls(
            system_id=str(data.get("system_id") or ""),
            status=str(data.get("status") or ""),
            contacted_at=data.get("contacted_at"),
        )


@dataclass(frozen=True)
class Expiry:
    """A runner token's expiry as GitLab's GraphQL API tells it (``CiRunner.tokenExpiresAt``).

    ``known`` is False when GitLab would not say (an older GitLab, or no access): the REST
    API never returns the expiry after the create or reset answer.
    """

    known: bool
    expires_at: str | None = None


@dataclass(frozen=True, repr=False)
class NewToken:
    """A token GitLab just issued: shown once, never readable again."""

    runner_id: int
    token: Secret
    expires_at: str | None

    def __repr__(self) -> str:
        return f"NewToken(runner_id={self.runner_id}, token={redact_token(self.token)})"


@dataclass(frozen=True)
class AccessToken:
    """A group access token as GitLab lists it (never its value)."""

    id: int
    name: str
    active: bool
    expires_at: str | None
    scopes: tuple[str, ...]
    access_level: int

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> AccessToken:
        return cls(
            id=int(data["id"]),
            name=str(data.get("name", "")),
            active=bool(data.get("active")) and not data.get("revoked"),
            expires_at=data.get("expires_at"),
            scopes=tuple(data.get("scopes") or ()),
            access_level=int(data.get("access_level") or 0),
        )


@dataclass(frozen=True, repr=False)
class IssuedToken:
    """A group access token GitLab just created or rotated: its value is shown once."""

    info: AccessToken
    token: Secret

    def __repr__(self) -> str:
        return f"IssuedToken(id={self.info.id}, token={redact_token(self.token)})"


@dataclass(frozen=True)
class Project:
    id: int
    path_with_namespace: str
    default_branch: str | None
    web_url: str
    description: str = ""
    visibility: str = ""

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Project:
        return cls(
            id=int(data["id"]),
            path_with_namespace=str(data["path_with_namespace"]),
            default_branch=data.get("default_branch"),
            web_url=str(data.get("web_url", "")),
            description=data.get("description") or "",
            visibility=data.get("visibility") or "",
        )


@dataclass(frozen=True)
class Schedule:
    id: int
    description: str
    ref: str
    cron: str
    cron_timezone: str
    active: bool
    variables: dict[str, str]
    owner: str = ""
    #: The last pipeline it started: (id, status, web_url); None when it never ran.
    last_pipeline: tuple[int, str, str] | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Schedule:
        return cls(
            id=int(data["id"]),
            description=data.get("description") or "",
            ref=data.get("ref") or "",
            cron=data.get("cron") or "",
            cron_timezone=data.get("cron_timezone") or "UTC",
            active=bool(data.get("active", True)),
            variables={v["key"]: v.get("value", "") for v in data.get("variables") or []},
            owner=str((data.get("owner") or {}).get("username") or ""),
            last_pipeline=_last_pipeline(data.get("last_pipeline")),
        )


def _last_pipeline(data: Any) -> tuple[int, str, str] | None:
    if not isinstance(data, dict) or "id" not in data:
        return None
    return int(data["id"]), str(data.get("status") or ""), str(data.get("web_url") or "")


class GitLab:
    """A GitLab connection for one token.

    Args:
        url: the GitLab base URL.
        token: a personal, group or project access token (from ``GITLAB_TOKEN``).
        ca_file: a PEM bundle to trust instead of the system's.
        timeout: seconds per request.
        retries: attempts for a retriable read.
        backoff: first pause between attempts, doubled each time.
    """

    def __init__(
        self,
        url: str,
        token: Secret,
        *,
        ca_file: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        import gitlab

        self.url = url
        self.shown_url = without_userinfo(url)  # what messages print
        self._token = expect_secret(token, "token")
        self.timeout = timeout
        self._ca_file = ca_file
        self.retries = max(1, retries)
        self.backoff = backoff
        self.calls = Calls()
        #: Called before every write; raises to stop it (see lock.locked).
        self.write_guard: Callable[[], None] | None = None
        self._gl: gitlab_mod.Gitlab = gitlab.Gitlab(
            url,
            private_token=token.reveal(),  # the boundary: python-gitlab sends it
            ssl_verify=ca_file or True,
            timeout=timeout,
            # python-gitlab obeys 429 + Retry-After by itself (the request was not processed,
            # so resending even a POST is safe). Other transient errors are ours (see _call).
            retry_transient_errors=False,
            user_agent=f"gitlab-eci-bootstrap/{__version__}",
        )

    def as_token(self, token: Secret) -> GitLab:
        """A second connection to the same GitLab, authenticated with ``token``."""
        return GitLab(
            self.url,
            token,
            ca_file=self._ca_file,
            timeout=self.timeout,
            retries=self.retries,
            backoff=self.backoff,
        )

    def switch_token(self, token: Secret) -> None:
        """Authenticate the following calls with ``token`` (the old one was just revoked)."""
        self._token = expect_secret(token, "token")
        self._gl.private_token = token.reveal()  # the boundary: python-gitlab sends it
        self._gl._set_auth_info()

    # --- plumbing ---------------------------------------------------------------------

    def _call(
        self, what: str, func: Callable[[], T], *, write: bool, idempotent: bool = False
    ) -> T:
        """Run one API call, retrying reads (and idempotent writes) on transient errors."""
        import gitlab
        import requests

        attempts = self.retries if (not write or idempotent) else 1
        delay = self.backoff
        uncertain = write and not idempotent
        for attempt in range(1, attempts + 1):
            if write and self.write_guard is not None:
                self.write_guard()
            deadline.check(what)
            # Each request waits at most what is left of --timeout (threads share the value).
            self._gl.timeout = deadline.request_timeout(self.timeout)
            self.calls.record(what, write=write)
            try:
                return func()
            except gitlab.exceptions.GitlabHttpError as exc:
                code = exc.response_code or 0
                if code >= 500 and attempt < attempts:
                    deadline.sleep(delay)
                    delay *= 2
                    continue
                raise self._http_error(what, exc) from None
            except gitlab.exceptions.GitlabError as exc:
                raise self._http_error(what, exc) from None
            except requests.exceptions.SSLError as exc:
                raise self._tls_error(exc) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                if deadline.passed():
                    raise self._expired(what, uncertain=uncertain) from None
                if attempt < attempts:
                    deadline.sleep(delay)
                    delay *= 2
                    continue
                raise GitLabError(
                    f"{what}: the connection to {self.shown_url} failed: {neterrors.cause(exc)}"
                    + ("; GitLab may or may not have done it" if uncertain else ""),
                    hint="rerun: the next run checks what GitLab has before it acts"
                    if uncertain
                    else "check gitlab.url / GITLAB_URL and your network or proxy",
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _expired(self, what: str, *, uncertain: bool) -> BootstrapError:
        return deadline.expired(
            f"{what}: GitLab at {self.shown_url} did not answer"
            + ("; GitLab may or may not have done it" if uncertain else ""),
            hint="GitLab accepted the connection but sent nothing back in time: check that "
            "GITLAB_URL points at GitLab itself (not a proxy that holds connections), or raise "
            "--timeout",
        )

    def _tls_error(self, exc: BaseException) -> GitLabError:
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        host = parts.hostname or self.url
        port = parts.port or (443 if parts.scheme == "https" else 80)
        failure = neterrors.tls_failure(exc)
        if failure == "hostname":
            return GitLabError(
                f"TLS verification of {self.shown_url} failed: its certificate is for another host "
                f"name than {host} (hostname mismatch)",
                hint="use in GITLAB_URL / gitlab.url the host name the certificate names "
                f"(openssl s_client -connect {host}:{port} shows it); a CA file does not help here",
            )
        if failure == "expired":
            return GitLabError(
                f"TLS verification of {self.shown_url} failed: its certificate has expired or is "
                "not valid yet",
                hint="renew GitLab's certificate, or check this machine's clock",
            )
        if failure == "untrusted":
            return GitLabError(
                f"TLS verification of {self.shown_url} failed: the certificate is not trusted",
                hint="set [gitlab] ca_file to the PEM bundle of your GitLab's CA",
            )
        return GitLabError(
            f"the TLS handshake with {self.shown_url} failed: {neterrors.cause(exc)}",
            hint="check that GITLAB_URL's scheme and port are GitLab's (https on 443?)",
        )

    def _get_or_none(self, what: str, path: str) -> dict[str, Any] | None:
        """``GET path`` as a JSON object; None when GitLab answers 404."""
        try:
            data = self._call(what, lambda: self._gl.http_get(path), write=False)
        except GitLabError as exc:
            if exc.status == 404:
                return None
            raise
        return _object(data)

    def _http_error(self, what: str, exc: Exception) -> GitLabError:
        code = getattr(exc, "response_code", None) or 0
        body = getattr(exc, "response_body", b"") or b""
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        message = redact(str(getattr(exc, "error_message", "") or text)[:300], [self._token])
        if code == 401:
            return GitLabError(
                f"{what}: GitLab rejected GITLAB_TOKEN (401 Unauthorized)",
                hint="the token is wrong, expired or revoked: create a new one and export it",
                status=code,
            )
        if code == 403 and "insufficient_scope" in text:
            scope = _scope_from(text)
            return GitLabError(
                f"{what}: the token lacks the '{scope}' scope (403 insufficient_scope)",
                hint=f"create a token with the {scope} scope",
                status=code,
            )
        if code == 403:
            return GitLabError(f"{what}: forbidden (403): {message}", status=code)
        if code == 429:
            return GitLabError(
                f"{what}: GitLab is rate limiting requests (429); try again later", status=code
            )
        if code >= 500:
            return GitLabError(
                f"{what}: GitLab answered {code} (a server error)",
                hint="rerun when GitLab is healthy: the next run checks what GitLab has first",
                status=code,
            )
        return GitLabError(f"{what}: GitLab answered {code}: {message}", status=code or None)

    # --- identity and preflight ---------------------------------------------------------

    def version(self) -> str:
        """The GitLab version (``GET /version``)."""
        data = self._call(
            "read the GitLab version", lambda: self._gl.http_get("/version"), write=False
        )
        data = _object(data)
        return str(data.get("version", "?"))

    def token_info(self) -> TokenInfo:
        """Scopes of the token in use (``GET /personal_access_tokens/self``)."""
        data = self._call(
            "read token scopes",
            lambda: self._gl.http_get("/personal_access_tokens/self"),
            write=False,
        )
        data = _object(data)
        return TokenInfo(
            scopes=frozenset(data.get("scopes") or []),
            expires_at=data.get("expires_at"),
            name=str(data.get("name", "")),
            id=int(data["id"]) if data.get("id") is not None else None,
        )

    def current_user(self) -> tuple[int, str, bool]:
        """(id, username, is_admin) of the token's user."""
        data = self._call("read current user", lambda: self._gl.http_get("/user"), write=False)
        data = _object(data)
        return int(data["id"]), str(data["username"]), bool(data.get("is_admin", False))

    def group(self, full_path: str) -> Group:
        """The group, or InvalidInput (exit 2) naming it when it does not exist or is hidden."""
        encoded = quote(full_path, safe="")
        try:
            data = self._call(
                f"read group {full_path}",
                lambda: self._gl.http_get(f"/groups/{encoded}"),
                write=False,
            )
        except GitLabError as exc:
            if exc.status == 404:
                raise self._unknown_group(full_path) from None
            raise
        data = _object(data)
        return Group(
            id=int(data["id"]),
            full_path=str(data["full_path"]),
            web_url=str(data.get("web_url", "")),
            visibility=str(data.get("visibility") or "private"),
        )

    def _unknown_group(self, full_path: str) -> InvalidInput:
        encoded = quote(full_path, safe="")
        try:
            self._call(
                f"read project {full_path}",
                lambda: self._gl.http_get(f"/projects/{encoded}"),
                write=False,
            )
        except GitLabError:
            return InvalidInput(
                f"--group {full_path}: no such group on {self.shown_url}, or the token's user "
                "cannot see it",
                hint="give the group's full path as GitLab shows it, e.g. mygroup/sub",
            )
        return InvalidInput(
            f"--group {full_path}: that is a project, not a group",
            hint="give the path of the group that should own the runner",
        )

    def access_level(self, group_id: int, user_id: int) -> int:
        """The user's effective role in the group (inherited memberships count), 0 if none."""
        data = self._get_or_none(
            "read group membership", f"/groups/{group_id}/members/all/{user_id}"
        )
        return int(data.get("access_level", 0)) if data else 0

    # --- runners --------------------------------------------------------------------------

    def group_runners(self, group_id: int) -> list[Runner]:
        """The group's own runners (not inherited or instance ones), all pages."""
        return self._runners("list group runners", f"/groups/{group_id}/runners", "group_type")

    def _runners(self, what: str, path: str, runner_type: str) -> list[Runner]:
        data = self._call(
            what,
            lambda: self._gl.http_list(
                path, query_data={"type": runner_type}, get_all=True, per_page=100
            ),
            write=False,
        )
        return [Runner.from_api(item) for item in data]

    def runner(self, runner_id: int) -> Runner | None:
        """One runner's details, or None when it no longer exists."""
        data = self._get_or_none(
            f"read runner #{runner_id}",
            f"/runners/{runner_id}",
        )
        if data is None:
            return None
        return Runner.from_api(data)

    def create_runner(self, group_id: int, attributes: dict[str, Any]) -> NewToken:
        """``POST /user/runners`` for a group runner. Never retried: the caller verifies."""
        body = {"runner_type": "group_type", "group_id": group_id, **attributes}
        data = self._call(
            "create runner", lambda: self._gl.http_post("/user/runners", post_data=body), write=True
        )
        data = _object(data)
        return NewToken(int(data["id"]), Secret(str(data["token"])), data.get("token_expires_at"))

    def create_project_runner(self, project_id: int, attributes: dict[str, Any]) -> NewToken:
        """``POST /user/runners`` for a project runner (a Maintainer of the project may).
        Never retried: the caller looks for it by its marker first."""
        body = {"runner_type": "project_type", "project_id": project_id, **attributes}
        data = self._call(
            "create project runner",
            lambda: self._gl.http_post("/user/runners", post_data=body),
            write=True,
        )
        data = _object(data)
        return NewToken(int(data["id"]), Secret(str(data["token"])), data.get("token_expires_at"))

    def project_runners(self, project_id: int) -> list[Runner]:
        """The project's own runners (``GET /projects/:id/runners?type=project_type``)."""
        path = f"/projects/{project_id}/runners"
        return self._runners("list project runners", path, "project_type")

    def update_runner(self, runner_id: int, attributes: dict[str, Any]) -> Runner:
        """``PUT /runners/:id`` (idempotent)."""
        data = self._call(
            f"update runner #{runner_id}",
            lambda: self._gl.http_put(f"/runners/{runner_id}", post_data=attributes),
            write=True,
            idempotent=True,
        )
        data = _object(data)
        return Runner.from_api(data)

    def verify_token(self, token: Secret, system_id: str) -> bool:
        """Whether a runner token is valid (``POST /runners/verify``: 200 yes, 403 no).

        GitLab records a contact for ``system_id``: pass the runner's own stable id so no
        phantom runner manager appears.
        """
        expect_secret(token, "token")
        try:
            self._call(
                "verify runner token",
                lambda: self._gl.http_post(
                    "/runners/verify",
                    # the boundary: python-gitlab sends it
                    post_data={"token": token.reveal(), "system_id": system_id},
                ),
                write=False,
            )
        except GitLabError as exc:
            if exc.status == 403:
                return False
            raise
        return True

    def reset_token(self, runner_id: int) -> NewToken:
        """``POST /runners/:id/reset_authentication_token`` (needs manage_runner). Not retried."""
        data = self._call(
            f"reset token of runner #{runner_id}",
            lambda: self._gl.http_post(f"/runners/{runner_id}/reset_authentication_token"),
            write=True,
        )
        data = _object(data)
        return NewToken(runner_id, Secret(str(data["token"])), data.get("token_expires_at"))

    def reset_token_with_token(self, runner_id: int, current: Secret, system_id: str) -> NewToken:
        """``POST /runners/reset_authentication_token`` with the current token. Not retried.

        GitLab authenticates this call as the runner itself: it records a contact for the
        manager ``system_id`` (``<legacy>`` when none is sent), so pass the runner's own.
        """
        expect_secret(current, "current")
        data = self._call(
            f"reset token of runner #{runner_id} (with its current token)",
            lambda: self._gl.http_post(
                "/runners/reset_authentication_token",
                # the boundary: python-gitlab sends it
                post_data={"token": current.reveal(), "system_id": system_id},
            ),
            write=True,
        )
        data = _object(data)
        return NewToken(runner_id, Secret(str(data["token"])), data.get("token_expires_at"))

    def runner_managers(self, runner_id: int) -> list[Manager] | None:
        """``GET /runners/:id/managers`` (Maintainers may read it); None when GitLab has no
        such route or runner (404)."""
        try:
            data: Any = self._call(
                f"read the managers of runner #{runner_id}",
                lambda: self._gl.http_get(f"/runners/{runner_id}/managers"),
                write=False,
            )
        except GitLabError as exc:
            if exc.status == 404:
                return None
            raise
        if not isinstance(data, list):
            return None
        return [Manager.from_api(item) for item in data if isinstance(item, dict)]

    def token_expiry(self, runner_id: int) -> Expiry:
        """The runner token's expiry (GraphQL ``CiRunner.tokenExpiresAt``; a Maintainer may
        read it). Unknown, never an error, when GitLab does not answer it."""
        query = "query($id: CiRunnerID!) { runner(id: $id) { id tokenExpiresAt } }"
        variables = {"id": f"gid://gitlab/Ci::Runner/{runner_id}"}
        try:
            data = self._graphql(f"read the token expiry of runner #{runner_id}", query, variables)
        except GitLabError as exc:
            if exc.status in (401, 403) or (exc.status or 0) >= 500:
                raise
            return Expiry(known=False)
        runner = (data.get("data") or {}).get("runner") if not data.get("errors") else None
        if not isinstance(runner, dict) or "tokenExpiresAt" not in runner:
            return Expiry(known=False)
        return Expiry(known=True, expires_at=runner.get("tokenExpiresAt"))

    def _graphql(
        self, what: str, query: str, variables: dict[str, Any], *, write: bool = False
    ) -> dict[str, Any]:
        """One GraphQL request (``/api/graphql``; reads are retried like REST reads)."""
        url = self.url.rstrip("/") + "/api/graphql"
        data = self._call(
            what,
            lambda: self._gl.http_post(url, post_data={"query": query, "variables": variables}),
            write=write,
            idempotent=True,
        )
        return _object(data)

    def delete_runner(self, runner_id: int) -> bool:
        """``DELETE /runners/:id``; False when it was already gone (idempotent)."""
        try:
            self._call(
                f"delete runner #{runner_id}",
                lambda: self._gl.http_delete(f"/runners/{runner_id}"),
                write=True,
                idempotent=True,
            )
        except GitLabError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    """Projects, repository content, tags and pipeline schedules (publish and schedule)."""

    def project(self, full_path: str) -> Project | None:
        encoded = quote(full_path, safe="")
        data = self._get_or_none(
            f"read project {full_path}",
            f"/projects/{encoded}",
        )
        if data is None:
            return None
        return Project.from_api(data)

    def create_project(self, group_id: int, attributes: dict[str, Any]) -> Project:
        """``POST /projects`` in the group. Not retried: the caller looks it up again."""
        body = {"namespace_id": group_id, **attributes}
        data = self._call(
            f"create project {attributes.get('path')}",
            lambda: self._gl.http_post("/projects", post_data=body),
            write=True,
        )
        data = _object(data)
        return Project.from_api(data)

    def tree(self, project_id: int, ref: str) -> dict[str, str]:
        """Every file of the repository at ``ref``: path -> blob sha ({} for an empty repo)."""
        try:
            items = self._call(
                "list repository files",
                lambda: self._gl.http_list(
                    f"/projects/{project_id}/repository/tree",
                    query_data={"ref": ref, "recursive": True},
                    get_all=True,
                    per_page=100,
                ),
                write=False,
            )
        except GitLabError as exc:
            if exc.status == 404:
                return {}
            raise
        return {str(i["path"]): str(i["id"]) for i in items if i.get("type") == "blob"}

    def branch_head(self, project_id: int, branch: str) -> str | None:
        """The commit sha a branch points at, None when the branch does not exist."""
        encoded = quote(branch, safe="")
        data = self._get_or_none(
            f"read branch {branch}",
            f"/projects/{project_id}/repository/branches/{encoded}",
        )
        if data is None:
            return None
        return str(data["commit"]["id"])

    def commit(
        self, project_id: int, branch: str, message: str, actions: list[dict[str, Any]]
    ) -> str:
        """One commit with create/update/delete actions. Not retried (check the head)."""
        body = {"branch": branch, "commit_message": message, "actions": actions}
        data = self._call(
            f"commit {len(actions)} files",
            lambda: self._gl.http_post(
                f"/projects/{project_id}/repository/commits", post_data=body
            ),
            write=True,
        )
        data = _object(data)
        return str(data["id"])

    def tag_target(self, project_id: int, tag: str) -> str | None:
        """The commit sha a tag points at, None when there is no such tag."""
        encoded = quote(tag, safe="")
        data = self._get_or_none(
            f"read tag {tag}",
            f"/projects/{project_id}/repository/tags/{encoded}",
        )
        if data is None:
            return None
        return str(data["commit"]["id"])

    def create_tag(self, project_id: int, tag: str, ref: str, message: str) -> None:
        self._call(
            f"create tag {tag}",
            lambda: self._gl.http_post(
                f"/projects/{project_id}/repository/tags",
                post_data={"tag_name": tag, "ref": ref, "message": message},
            ),
            write=True,
        )

    def is_catalog_resource(self, full_path: str) -> bool | None:
        """Whether the project is a CI/CD Catalog resource (``Project.isCatalogResource``);
        None when GitLab does not say."""
        query = "query($path: ID!) { project(fullPath: $path) { isCatalogResource } }"
        try:
            data = self._graphql("read the CI/CD Catalog flag", query, {"path": full_path})
        except GitLabError:
            return None
        project = (data.get("data") or {}).get("project")
        if data.get("errors") or not isinstance(project, dict):
            return None
        flag = project.get("isCatalogResource")
        return flag if isinstance(flag, bool) else None

    def mark_catalog_resource(self, full_path: str) -> bool:
        """Turn on "CI/CD Catalog project" (GraphQL catalogResourcesCreate); False if refused."""
        query = (
            "mutation($path: ID!) { catalogResourcesCreate(input: {projectPath: $path}) "
            "{ errors } }"
        )
        try:
            data = self._graphql(
                "mark the project as a CI/CD Catalog resource",
                query,
                {"path": full_path},
                write=True,
            )
        except GitLabError:
            return False
        if data.get("errors"):
            return False
        payload = (data.get("data") or {}).get("catalogResourcesCreate") or {}
        return not payload.get("errors")

    def schedules(self, project_id: int) -> list[Schedule]:
        """Pipeline schedules of a project, with their variables."""
        items = self._call(
            "list pipeline schedules",
            lambda: self._gl.http_list(
                f"/projects/{project_id}/pipeline_schedules", get_all=True, per_page=100
            ),
            write=False,
        )
        # The list omits variables: one read each (a project has few schedules).
        return [self._schedule(project_id, int(item["id"])) for item in items]

    def _schedule(self, project_id: int, schedule_id: int) -> Schedule:
        detail = self._call(
            f"read pipeline schedule #{schedule_id}",
            lambda: self._gl.http_get(f"/projects/{project_id}/pipeline_schedules/{schedule_id}"),
            write=False,
        )
        detail = _object(detail)
        return Schedule.from_api(detail)

    def create_schedule(self, project_id: int, attributes: dict[str, Any]) -> Schedule:
        data = self._call(
            "create pipeline schedule",
            lambda: self._gl.http_post(
                f"/projects/{project_id}/pipeline_schedules", post_data=attributes
            ),
            write=True,
        )
        data = _object(data)
        return Schedule.from_api(data)

    def delete_schedule(self, project_id: int, schedule_id: int) -> None:
        """``DELETE`` a pipeline schedule (idempotent: a missing one is fine)."""
        try:
            self._call(
                f"delete pipeline schedule #{schedule_id}",
                lambda: self._gl.http_delete(
                    f"/projects/{project_id}/pipeline_schedules/{schedule_id}"
                ),
                write=True,
                idempotent=True,
            )
        except GitLabError as exc:
            if exc.status != 404:
                raise

    def take_schedule_ownership(self, project_id: int, schedule_id: int) -> None:
        """Become the schedule's owner: only the owner may change it (needs Maintainer)."""
        self._call(
            f"take ownership of pipeline schedule #{schedule_id}",
            lambda: self._gl.http_post(
                f"/projects/{project_id}/pipeline_schedules/{schedule_id}/take_ownership"
            ),
            write=True,
            idempotent=True,
        )

    def update_schedule(
        self, project_id: int, schedule_id: int, attributes: dict[str, Any]
    ) -> None:
        self._call(
            f"update pipeline schedule #{schedule_id}",
            lambda: self._gl.http_put(
                f"/projects/{project_id}/pipeline_schedules/{schedule_id}", post_data=attributes
            ),
            write=True,
            idempotent=True,
        )

    def delete_schedule_variable(self, project_id: int, schedule_id: int, key: str) -> None:
        """Delete a variable of a pipeline schedule (``admin_pipeline_schedule``: a
        Maintainer may, also where pipeline variables are not allowed); gone is fine."""
        path = f"/projects/{project_id}/pipeline_schedules/{schedule_id}/variables/{key}"
        try:
            self._call(
                f"delete schedule variable {key}",
                lambda: self._gl.http_delete(path),
                write=True,
                idempotent=True,
            )
        except GitLabError as exc:
            if exc.status != 404:
                raise

    def set_project_variable(self, project_id: int, key: str, value: str, *, exists: bool) -> None:
        """Create or update a plain (not masked, not protected) project CI/CD variable."""
        self._set_variable(
            "CI/CD variable", f"/projects/{project_id}/variables", key, value, exists=exists
        )

    def _set_variable(self, what: str, base: str, key: str, value: str, *, exists: bool) -> None:
        """PUT an existing variable (idempotent), or POST a new one (never repeated blindly)."""
        if exists:
            self._call(
                f"update {what} {key}",
                lambda: self._gl.http_put(f"{base}/{key}", post_data={"value": value}),
                write=True,
                idempotent=True,
            )
        else:
            self._call(
                f"create {what} {key}",
                lambda: self._gl.http_post(base, post_data={"key": key, "value": value}),
                write=True,
            )

    def project_variable(self, project_id: int, key: str) -> dict[str, Any] | None:
        """A project CI/CD variable's settings (masked, protected), None when missing."""
        return self._get_or_none(
            f"read CI/CD variable {key}", f"/projects/{project_id}/variables/{key}"
        )

    def set_secret_variable(
        self, project_id: int, key: str, value: Secret, *, exists: bool
    ) -> None:
        """Create a masked, hidden, protected CI/CD variable, or replace its value.

        ``masked_and_hidden`` can be set only at creation (``lib/api/ci/variables.rb``);
        GitLab never shows a hidden value again. The PUT is idempotent; the POST is not
        repeated blindly (a lost answer shows as an existing variable on the next run).
        """
        base = f"/projects/{project_id}/variables"
        expect_secret(value, f"the value of {key}")
        if exists:
            self._call(
                f"update CI/CD variable {key}",
                lambda: self._gl.http_put(
                    f"{base}/{key}",
                    # the boundary: python-gitlab sends it
                    post_data={"value": value.reveal(), "masked": True, "protected": True},
                ),
                write=True,
                idempotent=True,
            )
            return
        data = {"key": key, "masked_and_hidden": True, "protected": True}
        self._call(
            f"create CI/CD variable {key}",
            # the boundary: python-gitlab sends it
            lambda: self._gl.http_post(base, post_data={**data, "value": value.reveal()}),
            write=True,
        )

    def delete_project(self, project_id: int) -> bool:
        """``DELETE /projects/:id`` (the Owner; GitLab may keep it for a delayed deletion);
        False when it is gone already."""
        return self._delete(f"delete project #{project_id}", f"/projects/{project_id}")

    def delete_project_variable(self, project_id: int, key: str) -> bool:
        """``DELETE`` a project CI/CD variable; False when there was none."""
        return self._delete(
            f"delete CI/CD variable {key}", f"/projects/{project_id}/variables/{key}"
        )

    def _delete(self, what: str, path: str) -> bool:
        """An idempotent ``DELETE``; False when GitLab answers 404 (nothing to delete)."""
        try:
            self._call(what, lambda: self._gl.http_delete(path), write=True, idempotent=True)
        except GitLabError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # --- group access tokens (lib/api/resource_access_tokens.rb) ------------------------

    def group_access_tokens(self, group_id: int) -> list[AccessToken]:
        """The group's access tokens, revoked ones too (needs the group's Owner)."""
        items = self._call(
            "list group access tokens",
            lambda: self._gl.http_list(
                f"/groups/{group_id}/access_tokens", get_all=True, per_page=100
            ),
            write=False,
        )
        return [AccessToken.from_api(_object(item)) for item in items]

    def create_group_access_token(
        self, group_id: int, name: str, scopes: list[str], access_level: int, expires_at: str
    ) -> IssuedToken:
        """``POST /groups/:id/access_tokens``. Not retried: a lost answer leaves a token
        nobody knows, which the caller finds by name and revokes."""
        data = self._call(
            f"create group access token {name}",
            lambda: self._gl.http_post(
                f"/groups/{group_id}/access_tokens",
                post_data={
                    "name": name,
                    "scopes": scopes,
                    "access_level": access_level,
                    "expires_at": expires_at,
                },
            ),
            write=True,
        )
        data = _object(data)
        return IssuedToken(AccessToken.from_api(data), Secret(str(data["token"])))

    def rotate_own_group_token(self, group_id: int, expires_at: str) -> IssuedToken:
        """``POST /groups/:id/access_tokens/self/rotate`` with the token in use: GitLab
        revokes it at once. Not retried (the old value is dead whether or not the answer
        arrives)."""
        data = self._call(
            "rotate the group access token in use",
            lambda: self._gl.http_post(
                f"/groups/{group_id}/access_tokens/self/rotate",
                post_data={"expires_at": expires_at},
            ),
            write=True,
        )
        data = _object(data)
        return IssuedToken(AccessToken.from_api(data), Secret(str(data["token"])))

    def revoke_group_access_token(self, group_id: int, token_id: int) -> bool:
        """``DELETE /groups/:id/access_tokens/:token_id``; False when GitLab has none."""
        return self._delete(
            f"revoke group access token #{token_id}", f"/groups/{group_id}/access_tokens/{token_id}"
        )


def _object(data: Any) -> dict[str, Any]:
    """A JSON object from GitLab, or a GitLabError when the answer is something else."""
    if not isinstance(data, dict):
        # python-gitlab hands back the raw response when the answer is not JSON.
        content_type = str(getattr(data, "headers", {}).get("Content-Type", "")).split(";")[0]
        kind = (
            f"not JSON but {content_type or 'untyped content'}"
            if hasattr(data, "headers")
            else "a JSON list"
            if isinstance(data, list)
            else "a bare JSON value"
        )
        raise GitLabError(
            f"the answer to a GitLab API call was {kind}, where GitLab sends a JSON object",
            hint="check that gitlab.url points at GitLab itself, not a proxy or login page",
        )
    return data


def _scope_from(text: str) -> str:
    match = re.search(r'"scope"\s*:\s*"([^"]+)"', text)
    return match.group(1).split()[0] if match else "api"


def parse_time(value: str | None) -> datetime | None:
    """A GitLab timestamp as an aware datetime."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
