"""The fake GitLab driven by python-gitlab: it must answer as GitLab documents."""

from __future__ import annotations

import time
import warnings

import gitlab
import pytest
import requests

from tests.fakes.fixtures import GROUP, OWNER_TOKEN, READER_TOKEN
from tests.fakes.gitlab import (
    DEVELOPER,
    MAINTAINER,
    OWNER,
    READ_API,
    Call,
    FakeGitLab,
    not_found,
)
from tests.fakes.server import Response


def client(fake: FakeGitLab, token: str | None = OWNER_TOKEN, **kwargs: object) -> gitlab.Gitlab:
    return gitlab.Gitlab(fake.url, private_token=token, **kwargs)  # type: ignore[arg-type]


def create_runner(gl: gitlab.Gitlab, fake: FakeGitLab, **attrs: object) -> dict[str, object]:
    group_id = fake.find_group(GROUP).id  # type: ignore[union-attr]
    gl.auth()
    runner = gl.user.runners.create(  # type: ignore[union-attr]
        {"runner_type": "group_type", "group_id": group_id, **attrs}
    )
    return runner.asdict()


# -- user, token, version ----------------------------------------------------------------


def test_auth_sets_current_user_without_url_warning(fake_gitlab: FakeGitLab) -> None:
    gl = client(fake_gitlab)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # python-gitlab warns when web_url mismatches the URL
        gl.auth()
    assert gl.user is not None
    assert gl.user.username == "owner"
    assert fake_gitlab.requests("GET", "/api/v4/user")[0].headers["private-token"] == OWNER_TOKEN


def test_bearer_token_is_accepted(fake_gitlab: FakeGitLab) -> None:
    gl = gitlab.Gitlab(fake_gitlab.url, oauth_token=OWNER_TOKEN)
    gl.auth()
    assert gl.user is not None
    assert gl.user.username == "owner"


def test_personal_access_token_self(fake_gitlab: FakeGitLab) -> None:
    token = client(fake_gitlab).personal_access_tokens.get("self")
    assert token.scopes == ["create_runner", "manage_runner", "read_api"]
    assert token.active is True
    assert token.user_id == fake_gitlab.user("owner").id
    assert token.expires_at is None


def test_version(fake_gitlab: FakeGitLab) -> None:
    assert client(fake_gitlab).version() == ("18.6.0", "fake0000")


def test_unknown_token_is_401(fake_gitlab: FakeGitLab) -> None:
    with pytest.raises(gitlab.GitlabAuthenticationError) as caught:
        client(fake_gitlab, token="glpat-nope").auth()
    assert caught.value.response_code == 401
    assert caught.value.error_message == "401 Unauthorized"


def test_revoked_token_is_401_invalid_token(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.revoke_token(READER_TOKEN)
    with pytest.raises(gitlab.GitlabAuthenticationError) as caught:
        client(fake_gitlab, READER_TOKEN).auth()
    assert caught.value.error_message == "invalid_token"


# -- groups ------------------------------------------------------------------------------


def test_group_by_id_and_by_full_path(fake_gitlab: FakeGitLab) -> None:
    sub = fake_gitlab.add_group("mygroup/sub")
    gl = client(fake_gitlab)
    by_path = gl.groups.get("mygroup/sub")
    assert (by_path.id, by_path.full_path, by_path.parent_id) == (
        sub.id,
        "mygroup/sub",
        fake_gitlab.find_group("mygroup").id,  # type: ignore[union-attr]
    )
    assert gl.groups.get(sub.id).full_name == "mygroup / sub"
    assert fake_gitlab.requests("GET", "/api/v4/groups/mygroup%2Fsub")


def test_missing_or_invisible_group_is_404(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_group("secret")  # private, owner is not a member
    gl = client(fake_gitlab)
    for path in ("nope", "secret"):
        with pytest.raises(gitlab.GitlabGetError) as caught:
            gl.groups.get(path)
        assert caught.value.response_code == 404
        assert caught.value.error_message == "404 Group Not Found"


def test_group_members_all_include_inherited_access(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_group("mygroup/sub", {"reader": OWNER})
    gl = client(fake_gitlab)
    sub = gl.groups.get("mygroup/sub")
    owner_id = fake_gitlab.user("owner").id
    assert sub.members_all.get(owner_id).access_level == OWNER  # inherited from mygroup
    levels = {m.username: m.access_level for m in sub.members_all.list(get_all=True)}
    assert levels == {"owner": OWNER, "reader": OWNER}
    with pytest.raises(gitlab.GitlabGetError) as caught:
        gl.groups.get(GROUP).members_all.get(999)
    assert caught.value.response_code == 404


# -- runner creation -----------------------------------------------------------------------


def test_create_group_runner(fake_gitlab: FakeGitLab) -> None:
    created = create_runner(
        client(fake_gitlab),
        fake_gitlab,
        description="eci runner",
        tag_list=["eci", "k8s"],
        run_untagged=False,
        locked=True,
        access_level="ref_protected",
        maximum_timeout=3600,
        paused=False,
        maintenance_note="managed by gitlab-eci-bootstrap",
    )
    assert set(created) == {"id", "token", "token_expires_at"}
    token = str(created["token"])
    assert token.startswith("glrt-")
    assert len(token) >= 25
    assert created["token_expires_at"] is None
    stored = fake_gitlab.runner(int(str(created["id"])))
    assert (stored.description, stored.tag_list, stored.run_untagged, stored.locked) == (
        "eci runner",
        ["eci", "k8s"],
        False,
        True,
    )
    assert (stored.access_level, stored.maximum_timeout, stored.runner_type) == (
        "ref_protected",
        3600,
        "group_type",
    )
    assert fake_gitlab.runner_tokens() == [token]
    sent = fake_gitlab.requests("POST", "/api/v4/user/runners")[0]
    assert sent.status == 201
    assert sent.body["tag_list"] in (["eci", "k8s"], "eci,k8s")


def test_create_runner_accepts_form_encoding(fake_gitlab: FakeGitLab) -> None:
    group_id = fake_gitlab.find_group(GROUP).id  # type: ignore[union-attr]
    response = requests.post(
        f"{fake_gitlab.url}/api/v4/user/runners",
        headers={"PRIVATE-TOKEN": OWNER_TOKEN},
        data={
            "runner_type": "group_type",
            "group_id": group_id,
            "tag_list": "a, b",
            "run_untagged": "false",
        },
        timeout=5,
    )
    assert response.status_code == 201
    stored = fake_gitlab.runner(response.json()["id"])
    assert (stored.tag_list, stored.run_untagged) == (["a", "b"], False)


def test_create_runner_needs_create_runner_scope(fake_gitlab: FakeGitLab) -> None:
    group_id = fake_gitlab.find_group(GROUP).id  # type: ignore[union-attr]
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        create_runner(client(fake_gitlab, READER_TOKEN), fake_gitlab)
    assert caught.value.response_code == 403
    assert caught.value.error_message == "insufficient_scope"
    response = requests.post(
        f"{fake_gitlab.url}/api/v4/user/runners",
        headers={"PRIVATE-TOKEN": READER_TOKEN},
        json={"runner_type": "group_type", "group_id": group_id},
        timeout=5,
    )
    assert response.json() == {
        "error": "insufficient_scope",
        "error_description": "The request requires higher privileges than provided by the "
        "access token.",
        "scope": "create_runner api",
    }
    assert fake_gitlab.runners == {}


def test_create_runner_needs_group_owner(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_user("dev", "glpat-dev-0000000000000000", ["api"])
    fake_gitlab.add_member(GROUP, "dev", DEVELOPER)
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        create_runner(client(fake_gitlab, "glpat-dev-0000000000000000"), fake_gitlab)
    assert caught.value.response_code == 403
    assert caught.value.error_message == "403 Forbidden - Insufficient permissions"
    assert fake_gitlab.runners == {}


def test_create_runner_validates_parameters(fake_gitlab: FakeGitLab) -> None:
    gl = client(fake_gitlab)
    with pytest.raises(gitlab.GitlabHttpError) as caught:
        gl.http_post("/user/runners", post_data={"runner_type": "group_type"})
    assert (caught.value.response_code, caught.value.error_message) == (400, "group_id is missing")
    with pytest.raises(gitlab.GitlabHttpError) as caught:
        gl.http_post("/user/runners", post_data={"runner_type": "group_type", "group_id": 999})
    assert caught.value.response_code == 400


def test_token_expiry_applies_to_new_tokens(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.set_token_expiry(7200)
    created = create_runner(client(fake_gitlab), fake_gitlab)
    assert str(created["token_expires_at"]).endswith("Z")
    fake_gitlab.expire_runner_token(int(str(created["id"])))
    with pytest.raises(gitlab.GitlabVerifyError):
        client(fake_gitlab, None).runners.verify(str(created["token"]))


# -- listing, reading, updating, deleting -------------------------------------------------


def test_group_runners_list_filters_type_and_paginates(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_group("other", {"owner": OWNER})
    fake_gitlab.add_runner("instance_type", description="shared")
    fake_gitlab.add_runner("group_type", group="other", description="elsewhere")
    gl = client(fake_gitlab)
    ids = {int(str(create_runner(gl, fake_gitlab, tag_list=["eci"])["id"])) for _ in range(5)}
    group = gl.groups.get(GROUP)
    fake_gitlab.clear_log()
    listed = group.runners.list(type="group_type", get_all=True, per_page=2)
    assert {r.id for r in listed} == ids
    pages = fake_gitlab.requests("GET", "/api/v4/groups/")
    assert [r.query.get("page", "1") for r in pages] == ["1", "2", "3"]
    assert all(r.query["type"] == "group_type" for r in pages)
    everything = group.runners.list(get_all=True)
    assert {r.description for r in everything} >= {"shared"}
    assert "elsewhere" not in {r.description for r in everything}
    assert len(group.runners.list(get_all=True, tag_list="eci,other")) == 0
    assert len(group.runners.list(get_all=True, type="group_type", status="never_contacted")) == 5


def test_pagination_headers(fake_gitlab: FakeGitLab) -> None:
    gl = client(fake_gitlab)
    for _ in range(3):
        create_runner(gl, fake_gitlab)
    group_id = fake_gitlab.find_group(GROUP).id  # type: ignore[union-attr]
    response = requests.get(
        f"{fake_gitlab.url}/api/v4/groups/{group_id}/runners",
        params={"per_page": 2, "page": 1, "type": "group_type"},
        headers={"PRIVATE-TOKEN": OWNER_TOKEN},
        timeout=5,
    )
    headers = response.headers
    assert (headers["X-Page"], headers["X-Per-Page"], headers["X-Total"]) == ("1", "2", "3")
    assert (headers["X-Total-Pages"], headers["X-Next-Page"]) == ("2", "2")
    assert response.links["next"]["url"].startswith(fake_gitlab.url)
    assert len(response.json()) == 2


def test_group_runners_need_maintainer(fake_gitlab: FakeGitLab) -> None:
    with pytest.raises(gitlab.GitlabListError) as caught:
        client(fake_gitlab, READER_TOKEN).groups.get(GROUP).runners.list()
    assert caught.value.response_code == 403


def test_get_update_delete_runner(fake_gitlab: FakeGitLab) -> None:
    gl = client(fake_gitlab)
    runner_id = int(str(create_runner(gl, fake_gitlab, description="a", tag_list=["x"])["id"]))
    runner = gl.runners.get(runner_id)
    expected = {
        "id",
        "description",
        "active",
        "paused",
        "is_shared",
        "runner_type",
        "online",
        "status",
        "contacted_at",
        "tag_list",
        "run_untagged",
        "locked",
        "access_level",
        "maximum_timeout",
        "maintenance_note",
        "groups",
    }
    assert expected <= set(runner.asdict())
    # RunnerDetails never has the expiry: only create, verify and the resets answer it.
    assert "token_expires_at" not in runner.asdict()
    assert (runner.status, runner.online, runner.is_shared) == ("never_contacted", False, False)
    assert runner.groups[0]["id"] == fake_gitlab.find_group(GROUP).id  # type: ignore[union-attr]
    assert "token" not in runner.asdict()

    runner.description = "b"
    runner.tag_list = ["y", "z"]
    runner.save()
    gl.runners.update(runner_id, {"paused": True})
    again = gl.runners.get(runner_id)
    assert (again.description, again.tag_list, again.paused, again.active) == (
        "b",
        ["y", "z"],
        True,
        False,
    )

    gl.runners.delete(runner_id)
    assert fake_gitlab.requests("DELETE")[0].status == 204
    with pytest.raises(gitlab.GitlabGetError) as caught:
        gl.runners.get(runner_id)
    assert (caught.value.response_code, caught.value.error_message) == (404, "404 Runner Not Found")


def test_runner_writes_need_manage_runner_and_owner(fake_gitlab: FakeGitLab) -> None:
    runner_id = int(str(create_runner(client(fake_gitlab), fake_gitlab)["id"]))
    reader = client(fake_gitlab, READER_TOKEN)
    with pytest.raises(gitlab.GitlabUpdateError) as caught:
        reader.runners.update(runner_id, {"description": "x"})
    assert caught.value.error_message == "insufficient_scope"
    fake_gitlab.add_token("reader", "glpat-reader-manage-000000", ["manage_runner"])
    with pytest.raises(gitlab.GitlabDeleteError) as caught:
        client(fake_gitlab, "glpat-reader-manage-000000").runners.delete(runner_id)
    assert (caught.value.response_code, caught.value.error_message) == (
        403,
        "403 Forbidden - No access granted",
    )
    assert runner_id in fake_gitlab.runners


# -- runner tokens -------------------------------------------------------------------------


def test_verify_records_contact_and_rejects_bad_tokens(fake_gitlab: FakeGitLab) -> None:
    created = create_runner(client(fake_gitlab), fake_gitlab)
    runner_id, token = int(str(created["id"])), str(created["token"])
    anonymous = client(fake_gitlab, None)
    anonymous.runners.verify(token)
    response = anonymous.http_post(
        "/runners/verify", post_data={"token": token, "system_id": "s_abc"}
    )
    assert response == {"id": runner_id, "token": token, "token_expires_at": None}
    assert fake_gitlab.runner_status(runner_id) == "online"
    # authenticate_runner! ensures a manager for system_id, "<legacy>" when none is sent.
    assert fake_gitlab.runner(runner_id).system_ids == ["<legacy>", "s_abc"]
    assert client(fake_gitlab).runners.get(runner_id).online is True
    with pytest.raises(gitlab.GitlabVerifyError) as caught:
        anonymous.runners.verify("glrt-not-a-token")
    assert caught.value.response_code == 403


def test_reset_token_by_id_kills_old_token(fake_gitlab: FakeGitLab) -> None:
    gl = client(fake_gitlab)
    created = create_runner(gl, fake_gitlab)
    runner_id, old = int(str(created["id"])), str(created["token"])
    reset = gl.http_post(f"/runners/{runner_id}/reset_authentication_token")
    assert fake_gitlab.requests("POST", f"/api/v4/runners/{runner_id}/")[0].status == 201
    assert isinstance(reset, dict)
    assert reset["token"].startswith("glrt-")
    assert reset["token"] != old
    # ResetTokenResult has token_expires_at only when the token expires.
    assert set(reset) == {"token"}
    assert fake_gitlab.runner(runner_id).system_ids == []  # a reset by id is no contact
    with pytest.raises(gitlab.GitlabVerifyError):
        gl.runners.verify(old)
    gl.runners.verify(reset["token"])
    assert fake_gitlab.runner_tokens() == [old, reset["token"]]


def test_reset_token_by_current_token(fake_gitlab: FakeGitLab) -> None:
    created = create_runner(client(fake_gitlab), fake_gitlab)
    old, runner_id = str(created["token"]), int(str(created["id"]))
    anonymous = client(fake_gitlab, None)
    reset = anonymous.http_post("/runners/reset_authentication_token", post_data={"token": old})
    assert isinstance(reset, dict)
    # Authenticated as the runner: a contact, and a "<legacy>" manager without system_id.
    assert fake_gitlab.runner(runner_id).system_ids == ["<legacy>"]
    assert fake_gitlab.runner_status(runner_id) == "online"
    with pytest.raises(gitlab.GitlabVerifyError):
        anonymous.runners.verify(old)
    with pytest.raises(gitlab.GitlabHttpError) as caught:
        anonymous.http_post("/runners/reset_authentication_token", post_data={"token": old})
    assert caught.value.response_code == 403
    anonymous.runners.verify(reset["token"])


def test_delete_runner_by_token(fake_gitlab: FakeGitLab) -> None:
    created = create_runner(client(fake_gitlab), fake_gitlab)
    anonymous = client(fake_gitlab, None)
    with pytest.raises(gitlab.GitlabHttpError) as caught:
        anonymous.http_delete("/runners", post_data={"token": "glrt-wrong"})
    assert caught.value.response_code == 403
    response = anonymous.http_delete("/runners", post_data={"token": created["token"]})
    assert response.status_code == 204
    assert fake_gitlab.runners == {}


def test_auto_online_reports_new_runners_online() -> None:
    with FakeGitLab(auto_online=True, auto_online_system_id="s_pod") as fake:
        fake.add_user("owner", OWNER_TOKEN, ["api"])
        fake.add_group(GROUP, {"owner": OWNER})
        created = create_runner(client(fake), fake)
        runner_id = int(str(created["id"]))
        assert client(fake).runners.get(runner_id).status == "online"
        assert fake.runner(runner_id).system_ids == ["s_pod"]


def test_runner_processes_contact_with_the_current_token_only(fake_gitlab: FakeGitLab) -> None:
    gl = client(fake_gitlab)
    created = create_runner(gl, fake_gitlab)
    runner_id, token = int(str(created["id"])), str(created["token"])
    running = [(token, "s_pod")]
    fake_gitlab.runner_processes = lambda: list(running)
    assert gl.runners.get(runner_id).status == "online"
    managers = gl.http_get(f"/runners/{runner_id}/managers")
    assert isinstance(managers, list)
    assert [(m["system_id"], m["status"]) for m in managers] == [("s_pod", "online")]
    gl.http_post(f"/runners/{runner_id}/reset_authentication_token")
    contacted = fake_gitlab.runner(runner_id).managers["s_pod"].contacted_at
    time.sleep(0.01)
    gl.runners.get(runner_id)  # the process still holds the old, dead token: no contact
    assert fake_gitlab.runner(runner_id).managers["s_pod"].contacted_at == contacted


def test_runner_managers_list_each_system_id(fake_gitlab: FakeGitLab) -> None:
    created = create_runner(client(fake_gitlab), fake_gitlab)
    runner_id, token = int(str(created["id"])), str(created["token"])
    anonymous = client(fake_gitlab, None)
    anonymous.http_post("/runners/verify", post_data={"token": token, "system_id": "s_a"})
    anonymous.http_post("/runners/verify", post_data={"token": token, "system_id": "s_a"})
    anonymous.http_post("/runners/verify", post_data={"token": token})
    managers = client(fake_gitlab).http_get(f"/runners/{runner_id}/managers")
    assert isinstance(managers, list)
    assert [m["system_id"] for m in managers] == ["s_a", "<legacy>"]
    assert set(managers[0]) >= {
        "id",
        "system_id",
        "version",
        "created_at",
        "contacted_at",
        "ip_address",
        "status",
    }
    # A Developer may not read them (authenticate_show_runner!: read_runner).
    with pytest.raises(gitlab.GitlabHttpError) as caught:
        client(fake_gitlab, READER_TOKEN).http_get(f"/runners/{runner_id}/managers")
    assert caught.value.response_code == 403


def test_maintenance_note_only_for_who_may_update_the_runner(fake_gitlab: FakeGitLab) -> None:
    runner_id = int(
        str(create_runner(client(fake_gitlab), fake_gitlab, maintenance_note="m")["id"])
    )
    fake_gitlab.add_user("maint", "glpat-maintainer-0000000000", ["read_api"])
    fake_gitlab.add_member(GROUP, "maint", MAINTAINER)
    maintainer = client(fake_gitlab, "glpat-maintainer-0000000000")
    details = maintainer.runners.get(runner_id).asdict()
    # Grape exposes the key, with null, when can?(:update_runner) is false.
    assert details["maintenance_note"] is None
    assert client(fake_gitlab).runners.get(runner_id).maintenance_note == "m"
    listed = maintainer.http_list(f"/groups/{GROUP}/runners", query_data={"type": "group_type"})
    assert "maintenance_note" not in listed[0]
    # Resetting by id is update_runner too: the Owner role, whatever the token's scopes.
    fake_gitlab.add_token("maint", "glpat-maintainer-manage-0000", ["manage_runner"])
    with pytest.raises(gitlab.GitlabHttpError) as caught:
        client(fake_gitlab, "glpat-maintainer-manage-0000").http_post(
            f"/runners/{runner_id}/reset_authentication_token"
        )
    assert (caught.value.response_code, caught.value.error_message) == (
        403,
        "403 Forbidden - No access granted",
    )


def test_ancestor_runners_are_listed_but_not_readable_by_non_members(
    fake_gitlab: FakeGitLab,
) -> None:
    fake_gitlab.add_user("sub", "glpat-sub-owner-00000000000", ["api"])
    fake_gitlab.add_group(f"{GROUP}/sub", {"sub": OWNER})
    ancestor = fake_gitlab.add_runner(group=GROUP, description="parent's")
    sub = client(fake_gitlab, "glpat-sub-owner-00000000000")
    listed = sub.http_list(f"/groups/{GROUP}%2Fsub/runners", query_data={"type": "group_type"})
    assert [r["id"] for r in listed] == [ancestor.id]
    with pytest.raises(gitlab.GitlabGetError) as caught:
        sub.runners.get(ancestor.id)
    assert (caught.value.response_code, caught.value.error_message) == (
        403,
        "403 Forbidden - No access granted",
    )


def graphql(gl: gitlab.Gitlab, query: str, **variables: object) -> dict[str, object]:
    answer = gl.http_post(
        gl.url + "/api/graphql", post_data={"query": query, "variables": variables}
    )
    assert isinstance(answer, dict)
    return answer


def test_graphql_runner_token_expires_at_for_maintainers(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.set_token_expiry(3600)
    created = create_runner(client(fake_gitlab), fake_gitlab)
    gid = f"gid://gitlab/Ci::Runner/{created['id']}"
    query = "query($id: CiRunnerID!) { runner(id: $id) { id tokenExpiresAt } }"
    fake_gitlab.add_user("maint", "glpat-maintainer-0000000000", ["read_api"])
    fake_gitlab.add_member(GROUP, "maint", MAINTAINER)
    for token in (OWNER_TOKEN, "glpat-maintainer-0000000000"):
        answer = graphql(client(fake_gitlab, token), query, id=gid)
        # Types::TimeType renders whole seconds; REST answered milliseconds.
        whole = str(created["token_expires_at"]).split(".")[0] + "Z"
        assert answer == {"data": {"runner": {"id": gid, "tokenExpiresAt": whole}}}
    # read_runner fails for a Developer: the runner is null, not an error.
    assert graphql(client(fake_gitlab, READER_TOKEN), query, id=gid) == {"data": {"runner": None}}


def test_graphql_project_is_catalog_resource(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(f"{GROUP}/tpl", {"README.md": "x"})
    query = "query($path: ID!) { project(fullPath: $path) { isCatalogResource } }"
    gl = client(fake_gitlab, OWNER_TOKEN)
    assert graphql(gl, query, path=f"{GROUP}/tpl") == {
        "data": {"project": {"isCatalogResource": False}}
    }
    assert graphql(gl, query, path=f"{GROUP}/none") == {"data": {"project": None}}


def test_unknown_route_and_legacy_registration(fake_gitlab: FakeGitLab) -> None:
    response = requests.get(f"{fake_gitlab.url}/api/v4/nothing/here", timeout=5)
    assert (response.status_code, response.json()) == (404, {"error": "404 Not Found"})
    legacy = requests.post(f"{fake_gitlab.url}/api/v4/runners", data={"token": "x"}, timeout=5)
    assert legacy.status_code == 410


# -- faults as python-gitlab sees them ------------------------------------------------------


def test_429_is_obeyed_after_retry_after(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.inject("429", match=("GET", r"^/api/v4/user$"))
    started = time.monotonic()
    client(fake_gitlab).auth()
    assert time.monotonic() - started >= 1.0  # Retry-After: 1
    assert [r.status for r in fake_gitlab.requests("GET", "/api/v4/user")] == [429, 200]


def test_500_raises_or_is_retried(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.inject("500", match=("POST", "/user/runners"))
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        create_runner(client(fake_gitlab), fake_gitlab)
    assert caught.value.response_code == 500
    assert fake_gitlab.runners == {}  # a 500 fault is not processed

    fake_gitlab.inject("500", match=("POST", "/user/runners"))
    create_runner(client(fake_gitlab, retry_transient_errors=True), fake_gitlab)
    statuses = [r.status for r in fake_gitlab.requests("POST", "/api/v4/user/runners")]
    assert statuses == [500, 500, 201]
    assert len(fake_gitlab.runners) == 1


def test_connection_reset_raises_connection_error(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.inject("reset", match=("POST", "/user/runners"))
    with pytest.raises(requests.exceptions.ConnectionError):
        create_runner(client(fake_gitlab), fake_gitlab)
    assert fake_gitlab.runners == {}
    assert fake_gitlab.requests("POST")[0].fault == "reset"
    create_runner(client(fake_gitlab), fake_gitlab)  # the server keeps serving
    assert len(fake_gitlab.runners) == 1


def test_delay_past_client_timeout_still_processes(fake_gitlab: FakeGitLab) -> None:
    gl = client(fake_gitlab)
    created = create_runner(gl, fake_gitlab)
    runner_id, old = int(str(created["id"])), str(created["token"])
    fake_gitlab.inject("delay", match=("POST", "reset_authentication_token"), seconds=1.0)
    with pytest.raises(requests.exceptions.Timeout):
        client(fake_gitlab, timeout=0.3).http_post(
            f"/runners/{runner_id}/reset_authentication_token"
        )
    # The reset happened on the server although the client never saw the answer.
    assert fake_gitlab.runner(runner_id).token != old
    assert len(fake_gitlab.runner_tokens()) == 2
    with pytest.raises(gitlab.GitlabVerifyError):
        gl.runners.verify(old)


def test_more_routes_can_be_added(fake_gitlab: FakeGitLab) -> None:
    projects: dict[str, dict[str, object]] = {"mygroup/ci-templates": {"id": 7}}

    def get_project(call: Call) -> Response:
        project = projects.get(call.params["id"])
        if project is None:
            raise not_found("Project")
        return fake_gitlab.json({**project, "path_with_namespace": call.params["id"]})

    fake_gitlab.add_route("GET", "/projects/:id", get_project, READ_API)
    gl = client(fake_gitlab)
    assert gl.projects.get("mygroup/ci-templates").id == 7
    with pytest.raises(gitlab.GitlabGetError) as caught:
        gl.projects.get("mygroup/nope")
    assert caught.value.error_message == "404 Project Not Found"
    with pytest.raises(gitlab.GitlabAuthenticationError):
        client(fake_gitlab, "glpat-unknown").projects.get("mygroup/ci-templates")


# -- project runners (lib/api/user_runners.rb, lib/api/ci/runners.rb, ProjectPolicy) ------


def test_project_runners_belong_to_their_project_and_its_maintainers(
    fake_gitlab: FakeGitLab,
) -> None:
    project = fake_gitlab.add_project(f"{GROUP}/ops", {"README.md": "x\n"})
    body = {"runner_type": "project_type", "project_id": project.id, "locked": True}
    owner = client(fake_gitlab)
    reader = client(fake_gitlab, READER_TOKEN)
    with pytest.raises(gitlab.exceptions.GitlabHttpError) as refused:
        reader.http_post("/user/runners", post_data=body)  # a Developer: no create_runner
    assert refused.value.response_code in (403, 404)
    with pytest.raises(gitlab.exceptions.GitlabHttpError) as unknown:
        owner.http_post("/user/runners", post_data={**body, "project_id": 999999})
    assert unknown.value.response_code == 400

    created = owner.http_post(
        "/user/runners",
        post_data={**body, "access_level": "ref_protected", "maintenance_note": "ours"},
    )
    runner_id = int(created["id"])
    listed = owner.http_list(f"/projects/{project.id}/runners", query_data={"type": "project_type"})
    assert [r["id"] for r in listed] == [runner_id]
    assert owner.http_list(f"/groups/{GROUP}/runners", query_data={"type": "group_type"}) == []
    details = owner.http_get(f"/runners/{runner_id}")
    assert (details["runner_type"], details["locked"], details["access_level"]) == (
        "project_type",
        True,
        "ref_protected",
    )
    assert details["maintenance_note"] == "ours"  # a Maintainer of the project may update it
    old = str(created["token"])
    reset = owner.http_post(f"/runners/{runner_id}/reset_authentication_token")
    assert reset["token"] != old
    with pytest.raises(gitlab.exceptions.GitlabHttpError) as dead:
        owner.http_post("/runners/verify", post_data={"token": old})
    assert dead.value.response_code == 403  # the old token is dead at once
    owner.http_delete(f"/runners/{runner_id}")
    assert fake_gitlab.runners == {}


def test_a_project_runner_assigned_to_two_projects_is_deleted_by_an_admin_only(
    fake_gitlab: FakeGitLab,
) -> None:
    # lib/api/ci/runners.rb authenticate_delete_runner!: belongs_to_more_than_one_project?
    ops = fake_gitlab.add_project(f"{GROUP}/ops", {"README.md": "x\n"})
    other = fake_gitlab.add_project(f"{GROUP}/app", {"README.md": "x\n"})
    runner = fake_gitlab.add_runner(project=ops.full_path, description="shared")
    fake_gitlab.assign_runner(runner.id, other.full_path)
    owner = client(fake_gitlab)

    listed = owner.http_list(f"/projects/{other.id}/runners", query_data={"type": "project_type"})
    assert [r["id"] for r in listed] == [runner.id]  # listed where it is assigned too
    with pytest.raises(gitlab.exceptions.GitlabDeleteError) as refused:
        owner.runners.delete(runner.id)
    assert refused.value.response_code == 403
    assert (
        refused.value.error_message
        == "403 Forbidden - Runner associated with more than one project"
    )
    assert runner.id in fake_gitlab.runners

    fake_gitlab.add_user("root", "glpat-admin-0123456789", admin=True)
    client(fake_gitlab, "glpat-admin-0123456789").runners.delete(runner.id)
    assert runner.id not in fake_gitlab.runners
