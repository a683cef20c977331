"""Group access tokens of the fake GitLab, driven by python-gitlab as GitLab would answer."""

from __future__ import annotations

from datetime import date, timedelta

import gitlab
import pytest

from tests.fakes.fixtures import GROUP, OWNER_API_TOKEN, READER_TOKEN
from tests.fakes.gitlab import MAINTAINER, OWNER, FakeGitLab


def client(fake: FakeGitLab, token: str) -> gitlab.Gitlab:
    return gitlab.Gitlab(fake.url, private_token=token)


def in_days(days: int) -> str:
    return (date.today() + timedelta(days=days)).isoformat()


def create(fake: FakeGitLab, **attrs: object) -> dict[str, object]:
    group = client(fake, OWNER_API_TOKEN).groups.get(GROUP)
    wanted = {"name": "loop", "scopes": ["api"], "access_level": OWNER, "expires_at": in_days(90)}
    return group.access_tokens.create({**wanted, **attrs}).asdict()  # type: ignore[no-any-return]


def test_create_answers_the_token_once_and_its_bot_is_an_owner(fake_gitlab: FakeGitLab) -> None:
    made = create(fake_gitlab)
    assert made["token"]
    assert made["access_level"] == OWNER
    assert made["scopes"] == ["api"]
    assert made["expires_at"] == in_days(90)
    assert made["active"] is True
    bot = client(fake_gitlab, str(made["token"]))
    bot.auth()
    assert bot.user is not None
    assert bot.user.id == made["user_id"]
    listed = client(fake_gitlab, OWNER_API_TOKEN).groups.get(GROUP).access_tokens.list()
    assert [t.id for t in listed] == [made["id"]]
    assert "token" not in listed[0].asdict()  # the value only on create and rotate
    group = fake_gitlab.find_group(GROUP)
    assert group is not None
    assert group.members[int(str(made["user_id"]))] == OWNER


def test_default_access_level_is_maintainer(fake_gitlab: FakeGitLab) -> None:
    group = client(fake_gitlab, OWNER_API_TOKEN).groups.get(GROUP)
    made = group.access_tokens.create({"name": "x", "scopes": ["read_api"]})
    assert made.access_level == MAINTAINER
    assert made.expires_at == in_days(365)  # expiry is required: GitLab sets the maximum


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"scopes": ["sudo"]}, "scopes does not have a valid value"),
        ({"expires_at": in_days(400)}, "Expires at must be before"),
    ],
)
def test_bad_scopes_and_expiry_beyond_the_maximum_are_400(
    fake_gitlab: FakeGitLab, attrs: dict[str, object], message: str
) -> None:
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        create(fake_gitlab, **attrs)
    assert caught.value.response_code == 400
    assert message in str(caught.value)
    assert fake_gitlab.access_tokens.of_group(GROUP) == []


def test_only_an_owner_may_create_or_list(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_token("reader", "glpat-reader-api-0123456789", ["api"])
    group = client(fake_gitlab, "glpat-reader-api-0123456789").groups.get(GROUP)
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        group.access_tokens.create({"name": "x", "scopes": ["api"]})
    assert caught.value.response_code == 400
    assert "does not have permission" in str(caught.value)
    with pytest.raises(gitlab.GitlabAuthenticationError) as listed:
        group.access_tokens.list()
    assert listed.value.response_code == 401
    hidden = client(fake_gitlab, READER_TOKEN)
    with pytest.raises(gitlab.GitlabAuthenticationError) as scope:
        hidden.groups.get(GROUP).access_tokens.get(1)
    assert scope.value.response_code == 401


def test_an_owner_bot_may_list_its_groups_tokens_but_not_create_one(
    fake_gitlab: FakeGitLab,
) -> None:
    """group_policy.rb: reading needs ``admin_group`` (the bot's Owner role has it);
    ``project_bot_access`` prevents only creating (and managing) access tokens."""
    made = create(fake_gitlab)
    group = client(fake_gitlab, str(made["token"])).groups.get(GROUP, lazy=True)
    assert [t.id for t in group.access_tokens.list()] == [made["id"]]
    assert group.access_tokens.get(made["id"]).active
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        group.access_tokens.create({"name": "another", "scopes": ["api"], "access_level": 50})
    assert caught.value.response_code == 400
    assert "does not have permission" in str(caught.value)


def test_unavailable_group_access_tokens_refuse_creation(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.access_tokens.available = False
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        create(fake_gitlab)
    assert caught.value.response_code == 400
    assert "does not have permission to create group access token" in str(caught.value)


def test_self_rotate_kills_the_old_value_at_once(fake_gitlab: FakeGitLab) -> None:
    made = create(fake_gitlab)
    bot = client(fake_gitlab, str(made["token"]))
    group = bot.groups.get(GROUP, lazy=True)
    new = group.access_tokens.rotate("self", expires_at=in_days(60))
    assert new["token"] != made["token"]
    assert new["expires_at"] == in_days(60)
    assert new["id"] != made["id"]
    with pytest.raises(gitlab.GitlabAuthenticationError):
        bot.auth()
    fresh = client(fake_gitlab, str(new["token"]))
    fresh.auth()
    listed = client(fake_gitlab, OWNER_API_TOKEN).groups.get(GROUP).access_tokens.list()
    assert {(t.id, t.active) for t in listed} == {(made["id"], False), (new["id"], True)}


def test_self_rotate_without_expiry_gives_a_week_and_a_person_may_not(
    fake_gitlab: FakeGitLab,
) -> None:
    made = create(fake_gitlab)
    group = client(fake_gitlab, str(made["token"])).groups.get(GROUP, lazy=True)
    assert group.access_tokens.rotate("self")["expires_at"] == in_days(7)
    person = client(fake_gitlab, OWNER_API_TOKEN).groups.get(GROUP, lazy=True)
    with pytest.raises(gitlab.GitlabError) as caught:
        person.access_tokens.rotate("self")
    assert caught.value.response_code == 405


def test_revoke_then_the_token_is_dead(fake_gitlab: FakeGitLab) -> None:
    made = create(fake_gitlab)
    owner = client(fake_gitlab, OWNER_API_TOKEN).groups.get(GROUP)
    owner.access_tokens.delete(made["id"])
    with pytest.raises(gitlab.GitlabAuthenticationError):
        client(fake_gitlab, str(made["token"])).auth()
    assert owner.access_tokens.get(made["id"]).active is False
    with pytest.raises(gitlab.GitlabDeleteError) as caught:
        owner.access_tokens.delete(9999)
    assert caught.value.response_code == 404
