"""The rotation loop's own GitLab credential: a group access token in the ops project.

``install`` creates a group access token (Owner role, scope ``api``: the job reads the
runners, resets their tokens — the runner routes take ``api`` as well as
``manage_runner`` — and writes this variable back), expiring after ``[rotation]
token_lifetime_days`` (GitLab's maximum is 365 by default), and stores it as the ops
project's masked, hidden, protected CI/CD variable ``GITLAB_TOKEN``, with its id in the
plain variable ``BOOTSTRAP_LOOP_TOKEN_ID``. A re-run whose stored token is still active
writes nothing; a dead one (revoked, expired, rotated without the new value stored) is
replaced by a fresh token, and leftovers of the same name are revoked. A ``GITLAB_TOKEN``
that is not masked, hidden and protected (made by hand, or by an older version) is replaced
too: GitLab's PUT cannot hide a variable (``masked_and_hidden`` exists only at creation,
``lib/api/ci/variables.rb``), so install deletes it and creates it anew, with a new token
(the old value was readable, or given to unprotected refs).

The scheduled job renews the token itself (``POST /groups/:id/access_tokens/self/rotate``)
when it expires within ``[rotation] rotate_before``, and writes the new value back: first
``GITLAB_TOKEN``, then the id, so a crash in between leaves a usable token. GitLab revokes
the old value at the rotation: a lost answer or a crash before the write locks the loop
out until ``install`` runs (``status`` says so).

Where group access tokens are unavailable (GitLab.com Free, or disabled on the instance),
``[rotation] token_env`` names an environment variable holding a token, which install
stores the same way (its fingerprint, not the value, goes into the id variable). GitLab
lists no such token to others, and its value is hidden: install reads its expiry with the
token itself (``GET /personal_access_tokens/self``, ``lib/api/personal_access_tokens/
self_information.rb``) and records it in the plain variable ``BOOTSTRAP_LOOP_TOKEN_EXPIRES_AT``
(``YYYY-MM-DD`` or ``never``), which ``status`` reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from bootstrap.config import Settings
from bootstrap.errors import GitLabError, InvalidInput
from bootstrap.gitlab import OWNER, AccessToken, GitLab, Project
from bootstrap.ops import ops_project
from bootstrap.report import QuietReporter, Reporter
from bootstrap.secret import Secret

TOKEN_VARIABLE = "GITLAB_TOKEN"  # noqa: S105 - a variable name, not a token
TOKEN_ID_VARIABLE = "BOOTSTRAP_LOOP_TOKEN_ID"  # noqa: S105 - a variable name
EXPIRES_VARIABLE = "BOOTSTRAP_LOOP_TOKEN_EXPIRES_AT"  # a user-given token's expiry
#: Every CI/CD variable of the ops project the loop's token owns (uninstall deletes each).
LOOP_VARIABLES = (TOKEN_VARIABLE, TOKEN_ID_VARIABLE, EXPIRES_VARIABLE)
NEVER = "never"
SCOPES = ["api"]
UNAVAILABLE = "does not have permission to create group access token"
REPAIR = "bootstrap install"


def token_name(settings: Settings) -> str:
    """The group access token's name; it also finds leftovers of earlier runs."""
    return f"gitlab-eci-bootstrap rotation ({settings.cluster_id}/{settings.kubernetes.namespace})"


def fingerprint(token: Secret) -> str:
    """A user-given token's stand-in in the id variable: enough to tell it changed."""
    return "user:" + hashlib.sha256(token.reveal().encode()).hexdigest()[:16]


@dataclass
class LoopTokenResult:
    """What happened to the loop's credential."""

    variable: str  # <ops project>/GITLAB_TOKEN
    action: str  # created | replaced | stored | renewed | unchanged | unavailable | skipped
    kind: str = "group access token"
    token_id: int | None = None
    expires_at: str | None = None
    revoked: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Why a stored token is replaced ("" when it is not).
    reason: str = ""
    #: A user-given token's recorded expiry is (or would be) rewritten.
    expiry_changed: bool = False

    @property
    def changed(self) -> bool:
        return self.action in ("created", "replaced", "stored", "renewed")

    def as_dict(self) -> dict[str, Any]:
        return {
            "variable": self.variable,
            "action": self.action,
            "kind": self.kind,
            "token_id": self.token_id,
            "expires_at": self.expires_at,
            "revoked": self.revoked,
            "warnings": self.warnings,
            "reason": self.reason,
        }


def user_token(settings: Settings, environ: Mapping[str, str]) -> Secret | None:
    """The token ``[rotation] token_env`` names (None when unset); exit 2 when it is empty."""
    name = settings.rotation.token_env
    if not name:
        return None
    value = environ.get(name, "").strip()
    if not value:
        raise InvalidInput(
            f"[rotation] token_env names {name}, which is not set",
            hint=f"export {name}=<a token of a group Owner with the api scope>",
        )
    return Secret(value)


def _expired(expires_at: str | None, today: date) -> bool:
    return expires_at is not None and date.fromisoformat(expires_at) <= today


def unsealed(variable: Mapping[str, Any]) -> list[str]:
    """What ``GITLAB_TOKEN`` lacks of masked, hidden and protected ([] when nothing).

    A GitLab older than 17.4 has no hidden variables (no ``hidden`` in its answers): there,
    masked and protected is the most it keeps.
    """
    wanted = ("masked", "hidden", "protected") if "hidden" in variable else ("masked", "protected")
    return [flag for flag in wanted if variable.get(flag) is not True]


def ensure_loop_token(
    settings: Settings,
    gitlab: GitLab,
    group_id: int,
    project: Project | None,
    *,
    environ: Mapping[str, str],
    dry_run: bool = False,
    reporter: Reporter | None = None,
    today: date | None = None,
) -> LoopTokenResult:
    """Create (or keep) the loop's token and store it in the ops project (install)."""
    report = reporter or QuietReporter()
    today = today or date.today()
    path = ops_project(settings)
    result = LoopTokenResult(f"{path}/{TOKEN_VARIABLE}", "unchanged")
    given = user_token(settings, environ)
    if given is not None:
        result.kind = f"the token in {settings.rotation.token_env}"
    if project is None:  # a dry run that creates the ops project
        result.action = "created" if given is None else "stored"
        return result
    try:
        stored = gitlab.project_variable(project.id, TOKEN_VARIABLE)
        id_var = gitlab.project_variable(project.id, TOKEN_ID_VARIABLE)
    except GitLabError as exc:
        if exc.status != 403:
            raise
        result.action = "skipped"
        result.warnings.append(
            f"cannot read the CI/CD variables of {path} (needs the Maintainer role): the "
            f"loop's token {TOKEN_VARIABLE} was not checked"
        )
        _warn(result, report)
        return result
    stored_id = str(id_var.get("value") or "") if id_var else ""
    if given is not None:
        expiry = _given_expiry(settings, gitlab, given)
        result.expires_at = None if expiry == NEVER else expiry
        _store_given(gitlab, project, given, stored, stored_id, result, dry_run, report)
        _record_expiry(gitlab, project.id, expiry, result, dry_run, report)
        return result
    tokens = gitlab.group_access_tokens(group_id)
    name = token_name(settings)
    current = next((t for t in tokens if str(t.id) == stored_id), None)
    alive = current is not None and current.active and not _expired(current.expires_at, today)
    lacks = unsealed(stored) if stored is not None else []
    if stored is not None and current is not None and alive and not lacks:
        result.token_id, result.expires_at = current.id, current.expires_at
        # e.g. left by a lost answer; a dry run lists them (install then takes the lock).
        _revoke_leftovers(
            gitlab, group_id, tokens, name, current.id, result, report, dry_run=dry_run
        )
        return result
    result.action = "created" if stored is None and current is None else "replaced"
    if lacks:
        result.reason = f"{TOKEN_VARIABLE} is not {' and '.join(lacks)}"
    elif result.action == "replaced":
        result.reason = "the stored token is revoked, expired or gone"
    if dry_run:
        return result
    expires = (today + timedelta(days=settings.rotation.token_lifetime_days)).isoformat()
    try:
        issued = gitlab.create_group_access_token(group_id, name, SCOPES, OWNER, expires)
    except GitLabError as exc:
        if exc.status != 400 or UNAVAILABLE not in str(exc):
            raise
        result.action = "unavailable"
        result.warnings.append(
            f"GitLab refused to create a group access token in {settings.gitlab.group} "
            "(GitLab.com Free, or disabled on this instance): the scheduled rotation has no "
            "token. Set [rotation] token_env (or --schedule-token-env VAR) to a variable holding "
            "a token of a group Owner with the api scope, and rerun install"
        )
        _warn(result, report)
        return result
    if lacks:
        _unseal(gitlab, project.id, result, report)
        stored = None
    _write(gitlab, project.id, issued.token, str(issued.info.id), stored, id_var)
    result.token_id, result.expires_at = issued.info.id, issued.info.expires_at
    report.info(
        f"Stored a new group access token #{issued.info.id} (Owner, api, expires "
        f"{issued.info.expires_at}) as {result.variable} (masked, hidden, protected)"
    )
    _revoke_leftovers(gitlab, group_id, tokens, name, issued.info.id, result, report)
    return result


def _revoke_leftovers(
    gitlab: GitLab,
    group_id: int,
    tokens: list[AccessToken],
    name: str,
    keep: int,
    result: LoopTokenResult,
    report: Reporter,
    *,
    dry_run: bool = False,
) -> None:
    """Revoke every other active token of the loop's name: nobody holds its value (a dry
    run only lists them in ``revoked``)."""
    for leftover in tokens:
        if leftover.name == name and leftover.active and leftover.id != keep:
            if not dry_run:
                gitlab.revoke_group_access_token(group_id, leftover.id)
                report.info(f"Revoked the unused group access token #{leftover.id} ({name})")
            result.revoked.append(leftover.id)


def _given_expiry(settings: Settings, gitlab: GitLab, given: Secret) -> str:
    """The user-given token's expiry (``YYYY-MM-DD`` or ``never``), read with the token
    itself; GitLabError naming the variable when GitLab refuses it (before any write)."""
    try:
        info = gitlab.as_token(given).token_info()
    except GitLabError as exc:
        if exc.status != 401:
            raise
        name = settings.rotation.token_env
        raise GitLabError(
            f"GitLab refuses the token in {name} (401: revoked, expired or unknown): the "
            "scheduled rotation could not use it",
            hint=f"create a new token of a group Owner with the api scope, export {name}=<it> "
            f"and run `bootstrap install --schedule-token-env {name}`",
            status=401,
        ) from None
    return info.expires_at or NEVER


def _record_expiry(
    gitlab: GitLab,
    project_id: int,
    expiry: str,
    result: LoopTokenResult,
    dry_run: bool,
    report: Reporter,
) -> None:
    """Write ``BOOTSTRAP_LOOP_TOKEN_EXPIRES_AT`` when it differs from ``expiry`` (after the
    token: a crash in between leaves the old expiry, rewritten by the next run)."""
    current = gitlab.project_variable(project_id, EXPIRES_VARIABLE)
    if current is not None and str(current.get("value") or "") == expiry:
        return
    result.expiry_changed = True
    if dry_run:
        return
    gitlab.set_project_variable(project_id, EXPIRES_VARIABLE, expiry, exists=current is not None)
    report.info(f"Recorded the expiry of {result.kind} ({expiry}) in {EXPIRES_VARIABLE}")


def _store_given(
    gitlab: GitLab,
    project: Project,
    given: Secret,
    stored: dict[str, Any] | None,
    stored_id: str,
    result: LoopTokenResult,
    dry_run: bool,
    report: Reporter,
) -> LoopTokenResult:
    mark = fingerprint(given)
    lacks = unsealed(stored) if stored is not None else []
    if stored is not None and stored_id == mark and not lacks:
        return result
    result.action = "stored"
    if lacks:
        result.reason = f"{TOKEN_VARIABLE} is not {' and '.join(lacks)}"
    if not dry_run:
        id_var = {"value": stored_id} if stored_id else None
        if lacks:
            _unseal(gitlab, project.id, result, report)
            stored = None
        _write(gitlab, project.id, given, mark, stored, id_var)
        report.info(f"Stored {result.kind} as {result.variable} (masked, hidden, protected)")
    return result


def _unseal(gitlab: GitLab, project_id: int, result: LoopTokenResult, report: Reporter) -> None:
    """Delete a ``GITLAB_TOKEN`` that is not masked, hidden and protected, so that it can be
    created as one (no PUT can hide it). From here until the create, the variable is
    missing: the job cannot run and ``status`` says the loop is locked out, and the next
    install, seeing no variable, stores a token again."""
    gitlab.delete_project_variable(project_id, TOKEN_VARIABLE)
    report.info(f"Deleted {result.variable} ({result.reason}), to create it hidden")


def _write(
    gitlab: GitLab,
    project_id: int,
    token: Secret,
    token_id: str,
    stored: dict[str, Any] | None,
    id_var: dict[str, Any] | None,
) -> None:
    """Write the token and its id so that a crash in between is repaired by the next run.

    The next run keeps a stored token only when the variable exists and the id names an
    active token. So over an existing variable the value goes first (a crash leaves the id
    of the replaced, dead token: replaced again); into a missing one the id goes first (a
    crash leaves no variable: stored again). The other order would leave a new value under
    an old, still active id: kept, and the new token revoked as a leftover.
    """
    if stored is None:
        gitlab.set_project_variable(
            project_id, TOKEN_ID_VARIABLE, token_id, exists=id_var is not None
        )
        gitlab.set_secret_variable(project_id, TOKEN_VARIABLE, token, exists=False)
        return
    gitlab.set_secret_variable(project_id, TOKEN_VARIABLE, token, exists=True)
    gitlab.set_project_variable(project_id, TOKEN_ID_VARIABLE, token_id, exists=id_var is not None)


def _warn(result: LoopTokenResult, report: Reporter) -> None:
    for warning in result.warnings:
        report.warn(warning)


@dataclass
class RenewResult:
    """What the scheduled job did with its own token."""

    action: str  # renewed | skip | would renew | not a group access token
    reason: str
    old_expires_at: str | None = None
    new_expires_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "reason": self.reason,
            "old_expires_at": self.old_expires_at,
            "new_expires_at": self.new_expires_at,
        }


def in_ops_job(settings: Settings, environ: Mapping[str, str]) -> bool:
    """True inside a job of the ops project: the token in use is the loop's."""
    return environ.get("CI_PROJECT_PATH") == ops_project(settings)


def renew_own_token(
    settings: Settings,
    gitlab: GitLab,
    group_id: int,
    expires_at: str | None,
    *,
    within: timedelta | None,
    now: datetime,
    dry_run: bool = False,
    reporter: Reporter | None = None,
) -> RenewResult:
    """Self-rotate the job's group access token when it expires within ``within``, and
    store the new value in the ops project (the scheduled job, after the runners)."""
    report = reporter or QuietReporter()
    if expires_at is None:
        return RenewResult("skip", "the loop's token never expires")
    left = date.fromisoformat(expires_at) - now.date()
    window = within if within is not None else timedelta(0)
    if left > window:
        return RenewResult(
            "skip",
            f"the loop's token expires in {left.days}d, not within {window.days}d",
            expires_at,
        )
    reason = f"the loop's token expires in {left.days}d"
    if dry_run:
        return RenewResult("would renew", reason, expires_at)
    project = gitlab.project(ops_project(settings))
    if project is None:
        raise GitLabError(
            f"the ops project {ops_project(settings)} is gone", hint=f"run `{REPAIR}`"
        )
    new_expiry = (now.date() + timedelta(days=settings.rotation.token_lifetime_days)).isoformat()
    try:
        issued = gitlab.rotate_own_group_token(group_id, new_expiry)
    except GitLabError as exc:
        if exc.status != 405:
            raise
        # A person's token: it cannot rotate itself here; say so before it expires.
        message = (
            f"{TOKEN_VARIABLE} of {ops_project(settings)} is not a group access token and "
            f"expires on {expires_at}: replace it (rerun `{REPAIR}`)"
        )
        report.warn(message)
        return RenewResult("not a group access token", message, expires_at)
    # The old value is dead from here on: the writes go with the new one.
    gitlab.switch_token(issued.token)
    gitlab.set_secret_variable(project.id, TOKEN_VARIABLE, issued.token, exists=True)
    gitlab.set_project_variable(project.id, TOKEN_ID_VARIABLE, str(issued.info.id), exists=True)
    report.info(
        f"Renewed the loop's group access token (#{issued.info.id}, expires "
        f"{issued.info.expires_at}) and stored it in {ops_project(settings)}/{TOKEN_VARIABLE}"
    )
    return RenewResult("renewed", reason, expires_at, issued.info.expires_at)


@dataclass
class LoopTokenCheck:
    """What ``status`` found about the loop's token (never its value)."""

    #: What locks the loop out (None: nothing found).
    problem: str | None = None
    #: The group access token's expiry (None: unknown or never).
    expires_at: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: The token is one the user gave (``[rotation] token_env``): it cannot renew itself.
    user_given: bool = False


def check_loop_token(
    settings: Settings,
    gitlab: GitLab,
    group_id: int,
    project_id: int,
    today: date,
    *,
    can_list: bool = True,
) -> LoopTokenCheck:
    """The loop token as ``status`` sees it: missing or dead locks the loop out; a variable
    that is not masked, hidden and protected, or a token this user may not look up, warns.

    ``can_list`` is False when the user is not the group's Owner: GitLab lists a group's
    access tokens only to those who ``admin_group`` (``read_resource_access_tokens`` in
    ``app/policies/group_policy.rb``; others get 401 from ``lib/api/resource_access_tokens.rb``).
    """
    check = LoopTokenCheck()
    stored = gitlab.project_variable(project_id, TOKEN_VARIABLE)
    path = ops_project(settings)
    if stored is None:
        check.problem = (
            f"{path} has no CI/CD variable {TOKEN_VARIABLE}: the scheduled rotation is locked out"
        )
        return check
    lacks = unsealed(stored)
    if lacks:
        check.warnings.append(
            f"{path}/{TOKEN_VARIABLE} is not {' and '.join(lacks)}: its value is readable by "
            "the project's Maintainers or given to unprotected refs; run `bootstrap install`: "
            "it replaces it with a new token in a masked, hidden, protected variable"
        )
    id_var = gitlab.project_variable(project_id, TOKEN_ID_VARIABLE)
    stored_id = str(id_var.get("value") or "") if id_var else ""
    if not stored_id.isdigit():  # a user-given token: GitLab does not list it here
        return _check_given(gitlab, project_id, path, today, check)
    if not can_list:
        check.warnings.append(
            f"the loop's group access token #{stored_id} ({path}/{TOKEN_VARIABLE}) was not "
            f"checked: only Owners of {settings.gitlab.group} may list its access tokens; run "
            "status with an Owner's token to see whether it is active and when it expires"
        )
        return check
    tokens: list[AccessToken] = gitlab.group_access_tokens(group_id)
    current = next((t for t in tokens if t.id == int(stored_id)), None)
    if current is None or not current.active or _expired(current.expires_at, today):
        check.problem = (
            f"the loop's group access token #{stored_id} in {path}/{TOKEN_VARIABLE} is "
            "revoked, expired or gone: the scheduled rotation is locked out"
        )
        return check
    check.expires_at = current.expires_at
    return check


def _check_given(
    gitlab: GitLab, project_id: int, path: str, today: date, check: LoopTokenCheck
) -> LoopTokenCheck:
    """A user-given token, by the expiry install recorded (its value is hidden)."""
    check.user_given = True
    recorded = gitlab.project_variable(project_id, EXPIRES_VARIABLE)
    expiry = str(recorded.get("value") or "") if recorded else ""
    if not expiry:
        check.warnings.append(
            f"the expiry of the token in {path}/{TOKEN_VARIABLE} is not recorded "
            f"({EXPIRES_VARIABLE}): run `bootstrap install` with the same token to record it"
        )
        return check
    if expiry == NEVER:
        return check
    if _expired(expiry, today):
        check.problem = (
            f"the token in {path}/{TOKEN_VARIABLE} (given to install) expired on {expiry}: "
            "the scheduled rotation is locked out"
        )
        return check
    check.expires_at = expiry
    return check


def remove_loop_token(
    settings: Settings,
    gitlab: GitLab,
    group_id: int,
    *,
    dry_run: bool = False,
    reporter: Reporter | None = None,
) -> str | None:
    """Revoke the loop's group access token and delete its variables (uninstall).

    Revokes the token the id variable names and every active one of the loop's name (a
    leftover of a lost answer), and deletes each of the loop's variables that is there —
    also when only some are left (an interrupted uninstall, one deleted by hand). Returns
    what happened, None when there was nothing. A token that may not do it only earns a
    warning naming what is left.
    """
    report = reporter or QuietReporter()
    path = ops_project(settings)
    project = gitlab.project(path)
    if project is None:
        return None
    try:
        found = {key: gitlab.project_variable(project.id, key) for key in LOOP_VARIABLES}
        id_var = found[TOKEN_ID_VARIABLE]
        stored_id = str(id_var.get("value") or "") if id_var else ""
        name = token_name(settings)
        mine = [
            t
            for t in gitlab.group_access_tokens(group_id)
            if t.active and (str(t.id) == stored_id or t.name == name)
        ]
        present = [key for key, variable in found.items() if variable is not None]
        if not present and not mine:
            return None
        ids = ", ".join(f"#{t.id}" for t in mine) or "none active"
        variables = f"{', '.join(present)} of {path}" if present else "no variable (none left)"
        if dry_run:
            return f"would revoke the loop's group access token ({ids}) and delete {variables}"
        for token in mine:
            gitlab.revoke_group_access_token(group_id, token.id)
        for key in present:
            gitlab.delete_project_variable(project.id, key)
    except GitLabError as exc:
        if exc.status not in (401, 403):
            raise
        message = (
            f"could not revoke the loop's group access token or delete {path}/{TOKEN_VARIABLE}: "
            f"{exc}"
        )
        report.warn(message)
        return message
    report.info(f"Revoked the loop's group access token ({ids}); deleted {variables}")
    return f"revoked the loop's group access token ({ids}) and deleted {variables}"


def remove_ops_project(
    settings: Settings, gitlab: GitLab, *, dry_run: bool = False, reporter: Reporter | None = None
) -> str | None:
    """Delete the ops project (``uninstall --delete-ops-project``), after everything in it.

    Returns what happened, None when there is none.
    """
    report = reporter or QuietReporter()
    path = ops_project(settings)
    project = gitlab.project(path)
    if project is None:
        return None
    if dry_run:
        return f"would delete the ops project {path}"
    gitlab.delete_project(project.id)
    report.info(f"Deleted the ops project {path}")
    return f"deleted the ops project {path}"
