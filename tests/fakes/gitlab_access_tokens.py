"""Group access tokens for :class:`tests.fakes.gitlab.FakeGitLab`.

Follows ``lib/api/resource_access_tokens.rb``, ``lib/api/resource_access_tokens/self_rotation.rb``,
``app/services/resource_access_tokens/create_service.rb`` and
``app/services/personal_access_tokens/rotate_service.rb``. A group access token is a bot
user (``project_bot``), a member of its group at the token's access level, holding one
personal access token. Creating one needs the group's Owner (``create_resource_access_tokens``)
and a level the caller holds; the token may rotate itself (``POST
/groups/:id/access_tokens/self/rotate``), which revokes the old value at once.
``available = False`` is GitLab.com Free or an instance where group access tokens are off:
the policy refuses their creation.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from tests.fakes.gitlab import (
    DEVELOPER,
    GUEST,
    MAINTAINER,
    OWNER,
    READ_API,
    REPORTER,
    ApiError,
    Call,
    Handler,
    PersonalAccessToken,
    bad_request,
    error,
    not_found,
    now,
    param_error,
    to_int,
    token_json,
)
from tests.fakes.server import Response

if TYPE_CHECKING:
    from tests.fakes.gitlab import FakeGitLab, Group

#: ``Gitlab::Auth.resource_bot_scopes`` (the ones this project can meet).
RESOURCE_BOT_SCOPES = (
    "api",
    "read_api",
    "read_repository",
    "write_repository",
    "read_registry",
    "write_registry",
    "create_runner",
    "manage_runner",
    "self_rotate",
)
#: ``Gitlab::Access.options_with_owner``.
ACCESS_LEVELS = (GUEST, REPORTER, DEVELOPER, MAINTAINER, OWNER)
#: ``PersonalAccessToken::MAX_PERSONAL_ACCESS_TOKEN_LIFETIME_IN_DAYS``.
MAX_LIFETIME_DAYS = 365
#: ``PersonalAccessTokens::RotateService::EXPIRATION_PERIOD``.
ROTATION_PERIOD = timedelta(weeks=1)


@dataclass
class GroupToken:
    """Which group a bot's personal access token belongs to, and at what level."""

    group_id: int
    access_level: int


class AccessTokensApi:
    """The routes and state of group access tokens."""

    def __init__(self, fake: FakeGitLab) -> None:
        self.fake = fake
        #: personal access token id -> its group.
        self.tokens: dict[int, GroupToken] = {}
        #: False: group access tokens cannot be created (GitLab.com Free, or disabled).
        self.available = True
        #: ``max_personal_access_token_lifetime`` (an instance setting; 365 by default).
        self.max_lifetime_days = MAX_LIFETIME_DAYS
        #: ``require_personal_access_token_expiry`` (on by default).
        self.require_expiry = True

    def routes(self) -> list[tuple[str, str, Handler, tuple[str, ...]]]:
        base = "/groups/:id/access_tokens"
        return [
            # Before ``:token_id``: "self" is not an id.
            ("POST", base + "/self/rotate", self._self_rotate, ("api", "self_rotate")),
            ("GET", base, self._list, READ_API),
            ("GET", base + "/:token_id", self._get, READ_API),
            ("POST", base, self._create, ("api",)),
            ("DELETE", base + "/:token_id", self._revoke, ("api",)),
        ]

    # -- helpers ---------------------------------------------------------------------

    def find_token(self, group: Group, token_id: int) -> PersonalAccessToken | None:
        """``find_token``: a token (revoked too) of one of the group's bots."""
        entry = self.tokens.get(token_id)
        if entry is None or entry.group_id != group.id:
            return None
        return next((t for t in self.fake.tokens.values() if t.id == token_id), None)

    def of_group(self, full_path: str) -> list[PersonalAccessToken]:
        """Every token (revoked too) of the group's bots, oldest first (test helper)."""
        group = self.fake.find_group(full_path)
        assert group is not None
        return [t for t in self.fake.tokens.values() if self.find_token(group, t.id) is t]

    def active(self, full_path: str) -> list[PersonalAccessToken]:
        """The group's active tokens (test helper)."""
        return [t for t in self.of_group(full_path) if t.active]

    def _owner(self, call: Call, group: Group) -> bool:
        """``create_resource_access_tokens``: an Owner or admin, never a bot (the policy's
        ``project_bot_access`` prevents it)."""
        user = call.user
        assert user is not None
        return not user.bot and self._admin_group(call, group)

    def _admin_group(self, call: Call, group: Group) -> bool:
        """``read_``/``destroy_resource_access_tokens`` (``app/policies/group_policy.rb``):
        whoever may ``admin_group``, an Owner or admin; a bot with the Owner role too."""
        user = call.user
        assert user is not None
        return user.admin or self.fake.access_level(user, group) >= OWNER

    def _json(self, pat: PersonalAccessToken, *, with_token: bool = False) -> dict[str, Any]:
        """``Entities::ResourceAccessToken`` (``…WithToken`` adds ``token``)."""
        entry = self.tokens[pat.id]
        data = {
            **token_json(pat),
            "access_level": entry.access_level,
            "resource_type": "group",
            "resource_id": entry.group_id,
        }
        if with_token:
            data["token"] = pat.token
        return data

    def _expiry(self, value: Any, default: date | None) -> date | None:
        """``expires_at`` (Grape ``type: Date``) checked against the instance's maximum
        (``PersonalAccessToken#expires_at_before_instance_max_expiry_date``)."""
        if value in (None, ""):
            return default
        try:
            expires = date.fromisoformat(str(value))
        except ValueError:
            raise param_error("expires_at is invalid") from None
        latest = now().date() + timedelta(days=self.max_lifetime_days)
        if self.require_expiry and expires > latest:
            raise bad_request(f"Expires at must be before {latest.isoformat()}")
        return expires

    # -- handlers --------------------------------------------------------------------

    def _list(self, call: Call) -> Response:
        group = self.fake.visible_group(call, call.params["id"])
        if not self._admin_group(call, group):
            raise error(401, "401 Unauthorized")
        items = [self._json(t) for t in self.of_group(group.full_path)]
        return self.fake.paginate(call, items)

    def _get(self, call: Call) -> Response:
        group = self.fake.visible_group(call, call.params["id"])
        if not self._admin_group(call, group):
            raise error(401, "401 Unauthorized")
        pat = self.find_token(group, to_int(call.params["token_id"], "token_id"))
        if pat is None:
            raise not_found("Group Access Token")
        return self.fake.json(self._json(pat))

    def _create(self, call: Call) -> Response:
        group = self.fake.visible_group(call, call.params["id"])
        args = call.args()
        missing = [k for k in ("name", "scopes") if not args.get(k)]
        if missing:
            raise param_error(", ".join(f"{k} is missing" for k in missing))
        scopes = args["scopes"] if isinstance(args["scopes"], list) else [args["scopes"]]
        if any(s not in RESOURCE_BOT_SCOPES for s in scopes):
            raise param_error("scopes does not have a valid value")
        level = to_int(args.get("access_level", MAINTAINER), "access_level")
        if level not in ACCESS_LEVELS:
            raise param_error("access_level does not have a valid value")
        default = now().date() + timedelta(days=MAX_LIFETIME_DAYS) if self.require_expiry else None
        expires = self._expiry(args.get("expires_at"), default)
        if not (self.available and self._owner(call, group)):
            raise bad_request("User does not have permission to create group access token")
        user = call.user
        assert user is not None
        if not user.admin and self.fake.access_level(user, group) < level:
            raise bad_request(
                "Access level of the token contains permissions not held by the creating user"
            )
        with self.fake.lock:
            bot = self.fake.add_user(
                f"group_{group.id}_bot_{secrets.token_hex(4)}",
                "glpat-" + secrets.token_urlsafe(15),
                scopes,
                name=str(args["name"]),
                pat_name=str(args["name"]),
                expires_at=expires,
                bot=True,
            )
            group.members[bot.id] = level
            pat = next(t for t in self.fake.tokens.values() if t.user_id == bot.id)
            self.tokens[pat.id] = GroupToken(group.id, level)
        return self.fake.json(self._json(pat, with_token=True), 201)

    def _revoke(self, call: Call) -> Response:
        group = self.fake.visible_group(call, call.params["id"])
        pat = self.find_token(group, to_int(call.params["token_id"], "token_id"))
        if pat is None:
            raise not_found("Group Access Token")
        if not self._admin_group(call, group):
            user = call.user
            assert user is not None
            raise bad_request(f"{user.name} cannot delete {self.fake.users[pat.user_id].name}")
        pat.revoked = True
        return Response.empty(204)

    def _self_rotate(self, call: Call) -> Response:
        user, current = call.user, call.token
        assert user is not None
        assert current is not None
        if not user.bot:
            raise ApiError(405, {"message": "405 Method Not Allowed"})
        group = self.fake.visible_group(call, call.params["id"])
        if self.find_token(group, current.id) is None:
            raise error(401, "401 Unauthorized")
        default = (now().date() + ROTATION_PERIOD) if self.require_expiry else None
        expires = self._expiry(call.args().get("expires_at"), default)
        with self.fake.lock:
            current.revoked = True  # at once: the old value is dead from here on
            new = self.fake.add_token(
                user.username,
                "glpat-" + secrets.token_urlsafe(15),
                current.scopes,
                name=current.name,
                expires_at=expires,
            )
            self.tokens[new.id] = self.tokens[current.id]
        return self.fake.json(self._json(new, with_token=True))
