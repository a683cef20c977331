"""The fake GitLab's projects, repositories, schedules and variables, through python-gitlab.

Each route is driven the way bootstrap/gitlab.py uses it (``http_get``/``http_post``...)
and through python-gitlab's managers, and must answer as GitLab documents it.
"""

from __future__ import annotations

import base64
import subprocess
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import gitlab
import pytest
import requests

from bootstrap.errors import GitLabError
from bootstrap.gitlab import GitLab, Schedule
from bootstrap.publish import blob_sha
from bootstrap.secret import Secret
from tests.fakes.fixtures import GROUP, OWNER_API_TOKEN, OWNER_TOKEN, READER_TOKEN
from tests.fakes.gitlab import DEVELOPER, MAINTAINER, FakeGitLab

TEMPLATES = f"{GROUP}/ci-templates"
FILES = {
    "README.md": "# CI templates\n",
    "templates/kaniko/template.yml": "spec:\n  inputs:\n    stage:\n      default: build\n",
    "templates/dist-cache.yml": "job:\n  script: [echo]\n",
    "include/prepare-git.yml": ".prepare-git:\n  script: [git fetch]\n",
}
GRAPHQL_MUTATION = (
    "mutation($path: ID!) { catalogResourcesCreate(input: {projectPath: $path}) { errors } }"
)
DEV_TOKEN = "glpat-developer-api-0123456789"
MAINTAINER_TOKEN = "glpat-maintainer-api-012345678"


def client(fake: FakeGitLab, token: str | None = OWNER_API_TOKEN) -> gitlab.Gitlab:
    return gitlab.Gitlab(fake.url, private_token=token)


def git(*args: str, cwd: Path | None = None, stdin: bytes | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, check=True)
    return done.stdout.decode().strip()


def add_member_with_api(fake: FakeGitLab, username: str, token: str, level: int) -> None:
    fake.add_user(username, token, ["api"])
    fake.add_member(GROUP, username, level)


def commit(
    project: object, actions: list[dict[str, object]], branch: str = "main", **extra: object
) -> object:
    return project.commits.create(  # type: ignore[attr-defined]
        {"branch": branch, "commit_message": "change", "actions": actions, **extra}
    )


# -- projects ------------------------------------------------------------------------------


def test_get_project_by_full_path_and_by_id(fake_gitlab: FakeGitLab) -> None:
    seeded = fake_gitlab.add_project(TEMPLATES, FILES, description="CI/CD components")
    gl = client(fake_gitlab)
    project = gl.projects.get(TEMPLATES)
    group = fake_gitlab.find_group(GROUP)
    assert group is not None
    assert (project.id, project.name, project.path, project.path_with_namespace) == (
        seeded.id,
        "ci-templates",
        "ci-templates",
        TEMPLATES,
    )
    assert project.namespace["id"] == group.id
    assert project.namespace["full_path"] == GROUP
    assert (project.default_branch, project.visibility, project.description) == (
        "main",
        "private",
        "CI/CD components",
    )
    assert project.web_url == f"{fake_gitlab.url}/{TEMPLATES}"
    assert project.empty_repo is False
    assert gl.projects.get(seeded.id).path_with_namespace == TEMPLATES
    assert fake_gitlab.requests("GET", "/api/v4/projects/mygroup%2Fci-templates")
    # Read-only tokens read projects too.
    assert client(fake_gitlab, READER_TOKEN).projects.get(TEMPLATES).id == seeded.id


def test_missing_or_hidden_project_is_404(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_group("other")  # private, owner is no member
    fake_gitlab.add_project("other/secret")
    fake_gitlab.add_group("open", visibility="internal")
    fake_gitlab.add_project("open/shared", visibility="internal")
    gl = client(fake_gitlab)
    for path in (f"{GROUP}/nope", "other/secret"):
        with pytest.raises(gitlab.GitlabGetError) as caught:
            gl.projects.get(path)
        assert (caught.value.response_code, caught.value.error_message) == (
            404,
            "404 Project Not Found",
        )
    assert gl.projects.get("open/shared").visibility == "internal"
    response = requests.get(f"{fake_gitlab.url}/api/v4/projects/999", timeout=5)
    assert (response.status_code, response.json()) == (401, {"message": "401 Unauthorized"})


def test_create_project_in_group(fake_gitlab: FakeGitLab) -> None:
    group = fake_gitlab.find_group(GROUP)
    assert group is not None
    gl = client(fake_gitlab)
    created = gl.projects.create(
        {
            "name": "ci-templates",
            "path": "ci-templates",
            "namespace_id": group.id,
            "description": "CI/CD components",
            "visibility": "private",
        }
    )
    assert fake_gitlab.requests("POST", "/api/v4/projects")[0].status == 201
    assert (created.path_with_namespace, created.default_branch, created.empty_repo) == (
        TEMPLATES,
        None,  # an empty repository has no default branch (unless the instance sets one)
        True,
    )
    state = fake_gitlab.project(TEMPLATES)
    assert (state.description, state.visibility, state.files, state.commits) == (
        "CI/CD components",
        "private",
        {},
        {},
    )
    assert state.creator_id == fake_gitlab.user("owner").id
    fake_gitlab.projects_api.default_branch_name = "main"  # an instance-wide setting
    assert gl.projects.get(TEMPLATES).default_branch == "main"

    with pytest.raises(gitlab.GitlabCreateError) as caught:
        gl.projects.create({"name": "ci-templates", "namespace_id": group.id})
    assert caught.value.response_code == 400
    assert caught.value.error_message == {
        "project_namespace.name": ["has already been taken"],
        "name": ["has already been taken"],
        "path": ["has already been taken"],
    }
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        gl.projects.create({"path": "CI-Templates", "namespace_id": group.id})
    assert caught.value.error_message == {
        "project_namespace.name": ["has already been taken"],
        "name": ["has already been taken"],
        "path": ["has already been taken"],
    }
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        gl.projects.create({"namespace_id": group.id})
    assert caught.value.error_message == (
        "name, path are missing, at least one parameter must be provided"
    )


def test_create_project_needs_api_scope_and_maintainer(fake_gitlab: FakeGitLab) -> None:
    group_id = fake_gitlab.find_group(GROUP).id  # type: ignore[union-attr]
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        client(fake_gitlab, OWNER_TOKEN).projects.create({"name": "x", "namespace_id": group_id})
    assert (caught.value.response_code, caught.value.error_message) == (403, "insufficient_scope")
    response = requests.post(
        f"{fake_gitlab.url}/api/v4/projects",
        headers={"PRIVATE-TOKEN": READER_TOKEN},
        json={"name": "x", "namespace_id": group_id},
        timeout=5,
    )
    assert response.status_code == 403
    assert response.json()["scope"] == "api"
    fake_gitlab.add_token("reader", "glpat-reader-write-repo-00000", ["write_repository"])
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        client(fake_gitlab, "glpat-reader-write-repo-00000").projects.create(
            {"name": "x", "namespace_id": group_id}
        )
    assert caught.value.response_code == 403
    add_member_with_api(fake_gitlab, "dev", DEV_TOKEN, DEVELOPER)
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        client(fake_gitlab, DEV_TOKEN).projects.create({"name": "x", "namespace_id": group_id})
    assert (caught.value.response_code, caught.value.error_message) == (
        400,
        {"namespace": ["is not valid"]},
    )
    add_member_with_api(fake_gitlab, "maint", MAINTAINER_TOKEN, MAINTAINER)
    client(fake_gitlab, MAINTAINER_TOKEN).projects.create({"name": "x", "namespace_id": group_id})
    assert fake_gitlab.project(f"{GROUP}/x").name == "x"


def test_project_visibility_cannot_exceed_the_group(fake_gitlab: FakeGitLab) -> None:
    group_id = fake_gitlab.find_group(GROUP).id  # type: ignore[union-attr]
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        client(fake_gitlab).projects.create(
            {"name": "ci-templates", "namespace_id": group_id, "visibility": "internal"}
        )
    assert caught.value.error_message == {
        "visibility_level": ["internal is not allowed in a private group."]
    }
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        client(fake_gitlab).projects.create(
            {"name": "x", "namespace_id": group_id, "visibility": "secret"}
        )
    assert caught.value.error_message == "visibility does not have a valid value"


def test_create_project_with_readme(fake_gitlab: FakeGitLab) -> None:
    group_id = fake_gitlab.find_group(GROUP).id  # type: ignore[union-attr]
    project = client(fake_gitlab).projects.create(
        {"name": "docs", "namespace_id": group_id, "initialize_with_readme": True}
    )
    assert (project.default_branch, project.empty_repo) == ("main", False)
    assert project.readme_url.endswith("/mygroup/docs/-/blob/main/README.md")
    assert list(fake_gitlab.project(f"{GROUP}/docs").files["main"]) == ["README.md"]


def test_update_project(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES)
    gl = client(fake_gitlab)
    project = gl.projects.get(TEMPLATES)
    project.description = "new words"
    project.save()
    assert fake_gitlab.requests("PUT")[0].body == {"description": "new words"}
    updated = gl.http_put(f"/projects/{project.id}", post_data={"topics": ["ci", "catalog"]})
    assert isinstance(updated, dict)
    assert (updated["description"], updated["topics"]) == ("new words", ["ci", "catalog"])
    with pytest.raises(gitlab.GitlabHttpError) as caught:
        gl.http_put(f"/projects/{project.id}", post_data={"default_branch": "nope"})
    assert caught.value.error_message == (
        "Could not set the default branch. Do you have a branch named 'nope' in your repository?"
    )
    with pytest.raises(gitlab.GitlabUpdateError) as caught:
        client(fake_gitlab, READER_TOKEN).projects.update(project.id, {"description": "x"})
    assert caught.value.error_message == "insufficient_scope"
    add_member_with_api(fake_gitlab, "dev", DEV_TOKEN, DEVELOPER)
    with pytest.raises(gitlab.GitlabUpdateError) as caught:
        client(fake_gitlab, DEV_TOKEN).projects.update(project.id, {"description": "x"})
    assert (caught.value.response_code, caught.value.error_message) == (403, "403 Forbidden")
    assert fake_gitlab.project(TEMPLATES).description == "new words"


# -- repository: tree and files -------------------------------------------------------------


def test_tree_ids_are_real_git_object_ids(fake_gitlab: FakeGitLab, tmp_path: Path) -> None:
    fake_gitlab.add_project(
        TEMPLATES, {**FILES, "bin/run.sh": "#!/bin/sh\n"}, executables=("bin/run.sh",)
    )
    tree = client(fake_gitlab).projects.get(TEMPLATES).repository_tree(recursive=True, get_all=True)
    blobs = {item["path"]: item["id"] for item in tree if item["type"] == "blob"}
    assert set(blobs) == {*FILES, "bin/run.sh"}
    for path, content in FILES.items():
        assert blobs[path] == git("hash-object", "--stdin", stdin=content.encode())
        assert blobs[path] == blob_sha(content)  # what bootstrap compares with

    # The same files in a real git index: same entries, ids, modes and order.
    git("init", "-q", str(tmp_path))
    for path, content in {**FILES, "bin/run.sh": "#!/bin/sh\n"}.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(content)
    git("add", ".", cwd=tmp_path)
    git("update-index", "--chmod=+x", "bin/run.sh", cwd=tmp_path)
    root = git("write-tree", cwd=tmp_path)
    listed = []
    for line in git("ls-tree", "-r", "-t", root, cwd=tmp_path).splitlines():
        info, path = line.split("\t")
        listed.append([*info.split(), path])
    assert [[i["mode"], i["type"], i["id"], i["path"]] for i in tree] == listed
    assert fake_gitlab.project(TEMPLATES).commits[fake_gitlab.commits(TEMPLATES)[0].id].tree_id == (
        root
    )


def test_tree_path_recursion_and_pagination(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES)
    project = client(fake_gitlab).projects.get(TEMPLATES)
    top = project.repository_tree(get_all=True)
    assert [(i["name"], i["type"]) for i in top] == [
        ("README.md", "blob"),
        ("include", "tree"),
        ("templates", "tree"),
    ]
    assert [i["path"] for i in project.repository_tree(path="templates", get_all=True)] == [
        "templates/dist-cache.yml",
        "templates/kaniko",
    ]
    fake_gitlab.clear_log()
    everything = project.repository_tree(recursive=True, ref="main", get_all=True, per_page=2)
    assert len(everything) == 7
    pages = fake_gitlab.requests("GET", f"/api/v4/projects/{project.id}/repository/tree")
    assert [r.query.get("page", "1") for r in pages] == ["1", "2", "3", "4"]
    assert project.repository_tree(path="nope", get_all=True) == []


def test_tree_of_empty_project_or_unknown_ref_is_404(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(f"{GROUP}/empty")
    fake_gitlab.add_project(TEMPLATES, FILES)
    gl = client(fake_gitlab)
    for path, ref in ((f"{GROUP}/empty", ""), (TEMPLATES, "nope")):
        with pytest.raises(gitlab.GitlabGetError) as caught:
            gl.projects.get(path).repository_tree(ref=ref, recursive=True, get_all=True)
        assert (caught.value.response_code, caught.value.error_message) == (
            404,
            "404 Tree Not Found",
        )


def test_files_get_and_raw(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES)
    project = client(fake_gitlab).projects.get(TEMPLATES)
    first = fake_gitlab.commits(TEMPLATES)[0].id
    second = commit(project, [{"action": "update", "file_path": "README.md", "content": "# new\n"}])
    path = "templates/kaniko/template.yml"
    got = project.files.get(path, ref="main")
    assert fake_gitlab.requests("GET")[-1].path.endswith("/files/templates%2Fkaniko%2Ftemplate.yml")
    assert got.decode() == FILES[path].encode()
    assert base64.b64decode(got.content) == FILES[path].encode()
    assert (got.file_name, got.file_path, got.ref, got.encoding) == (
        "template.yml",
        path,
        "main",
        "base64",
    )
    assert got.blob_id == blob_sha(FILES[path])
    assert (got.commit_id, got.last_commit_id) == (second.id, first)  # type: ignore[attr-defined]
    assert got.size == len(FILES[path])
    assert project.files.raw(path, ref="main") == FILES[path].encode()
    assert project.files.raw("README.md", ref=first) == FILES["README.md"].encode()
    with pytest.raises(gitlab.GitlabGetError) as caught:
        project.files.get("nope.txt", ref="main")
    assert (caught.value.response_code, caught.value.error_message) == (404, "404 File Not Found")
    with pytest.raises(gitlab.GitlabGetError) as caught:
        project.files.get("README.md", ref="nope")
    assert caught.value.error_message == "404 Commit Not Found"


# -- repository: commits and branches -------------------------------------------------------


def test_empty_project_first_commit_creates_main(fake_gitlab: FakeGitLab) -> None:
    group_id = fake_gitlab.find_group(GROUP).id  # type: ignore[union-attr]
    gl = client(fake_gitlab)
    project = gl.projects.create({"name": "ci-templates", "namespace_id": group_id})
    with pytest.raises(gitlab.GitlabGetError) as caught:
        project.branches.get("main")
    assert (caught.value.response_code, caught.value.error_message) == (
        404,
        "404 Branch Not Found",
    )
    assert project.branches.list(get_all=True) == []
    assert project.commits.list(get_all=True) == []
    assert project.tags.list(get_all=True) == []
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        commit(project, [{"action": "update", "file_path": "README.md", "content": "x"}])
    assert caught.value.error_message == "A file with this name doesn't exist"

    created = commit(
        project, [{"action": "create", "file_path": p, "content": c} for p, c in FILES.items()]
    )
    assert created.parent_ids == []  # type: ignore[attr-defined]
    assert created.stats == {"additions": 9, "deletions": 0, "total": 9}  # type: ignore[attr-defined]
    assert gl.projects.get(TEMPLATES).default_branch == "main"
    branch = project.branches.get("main")
    assert branch.commit["id"] == created.id  # type: ignore[attr-defined]
    assert (branch.default, branch.protected, branch.can_push) == (True, True, True)
    assert fake_gitlab.project(TEMPLATES).files == {"main": FILES}


def test_commit_actions(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES)
    project = client(fake_gitlab).projects.get(TEMPLATES)
    seed = fake_gitlab.commits(TEMPLATES)[0]
    created = commit(
        project,
        [
            {"action": "create", "file_path": "templates/new.yml", "content": "new: 1\n"},
            {"action": "update", "file_path": "README.md", "content": "# Changed\n"},
            {"action": "delete", "file_path": "templates/dist-cache.yml"},
            {
                "action": "move",
                "previous_path": "include/prepare-git.yml",
                "file_path": "include/git.yml",
            },
            {
                "action": "create",
                "file_path": "bin/tool",
                "content": base64.b64encode(b"\x00\x01binary").decode(),
                "encoding": "base64",
            },
            {"action": "chmod", "file_path": "bin/tool", "execute_filemode": True},
        ],
        commit_message="CI templates v1.0.0\n\nPublished by gitlab-eci-bootstrap.",
        author_name="Bot",
        author_email="bot@example.com",
    )
    assert created.parent_ids == [seed.id]  # type: ignore[attr-defined]
    assert (created.title, created.author_name, created.committer_name) == (  # type: ignore[attr-defined]
        "CI templates v1.0.0",
        "Bot",
        "Owner",
    )
    assert len(created.id) == 40  # type: ignore[attr-defined]
    assert created.short_id == created.id[:8]  # type: ignore[attr-defined]
    files = fake_gitlab.project(TEMPLATES).files["main"]
    assert set(files) == {
        "README.md",
        "templates/kaniko/template.yml",
        "templates/new.yml",
        "include/git.yml",
        "bin/tool",
    }
    assert files["include/git.yml"] == FILES["include/prepare-git.yml"]
    tree = {i["path"]: i for i in project.repository_tree(recursive=True, get_all=True)}
    assert tree["bin/tool"]["mode"] == "100755"
    assert tree["bin/tool"]["id"] == git("hash-object", "--stdin", stdin=b"\x00\x01binary")
    assert project.files.raw("bin/tool", ref="main") == b"\x00\x01binary"
    listed = project.commits.list(get_all=True)
    assert [c.id for c in listed] == [created.id, seed.id]  # type: ignore[attr-defined]
    assert [c.id for c in fake_gitlab.commits(TEMPLATES)] == [created.id, seed.id]  # type: ignore[attr-defined]
    assert project.commits.get(created.id).stats["total"] > 0  # type: ignore[attr-defined]
    assert project.commits.get("main").id == created.id  # type: ignore[attr-defined]


def test_commit_errors_change_nothing(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES)
    project = client(fake_gitlab).projects.get(TEMPLATES)
    head = fake_gitlab.commits(TEMPLATES)[0].id
    cases: list[tuple[list[dict[str, object]], dict[str, object], str]] = [
        (
            [{"action": "create", "file_path": "README.md", "content": "x"}],
            {},
            "A file with this name already exists",
        ),
        (
            [{"action": "create", "file_path": "templates", "content": "x"}],
            {},
            "A directory with this name already exists",
        ),
        (
            [{"action": "update", "file_path": "nope.md", "content": "x"}],
            {},
            "A file with this name doesn't exist",
        ),
        ([{"action": "delete", "file_path": "nope.md"}], {}, "A file with this name doesn't exist"),
        ([], {}, "400 Bad request - actions is required"),
        (
            [{"action": "update", "file_path": "README.md"}],
            {},
            "400 Bad request - actions[0][content] is required for update action",
        ),
        (
            [{"action": "rename", "file_path": "README.md"}],
            {},
            "400 Bad request - actions[0][action] must be one of: create, update, move, "
            "delete, chmod",
        ),
        (
            [{"action": "create", "file_path": "../x", "content": "x"}],
            {},
            "Path cannot include directory traversal",
        ),
        (
            [{"action": "create", "file_path": "x", "content": "x"}],
            {"branch": "feature"},
            "You can only create or edit files when you are on a branch",
        ),
        (
            [
                {
                    "action": "update",
                    "file_path": "README.md",
                    "content": "x",
                    "last_commit_id": "0" * 40,
                }
            ],
            {},
            "The file has changed since you started editing it: README.md",
        ),
        (
            [{"action": "create", "file_path": "x", "content": "x"}],
            {"start_sha": "f" * 40},
            "Cannot find start_sha '" + "f" * 40 + "'",
        ),
    ]
    for actions, extra, message in cases:
        with pytest.raises(gitlab.GitlabCreateError) as caught:
            commit(project, actions, **extra)
        assert (caught.value.response_code, caught.value.error_message) == (400, message)
    # Two actions of which the second fails: the first is not applied either.
    with pytest.raises(gitlab.GitlabCreateError):
        commit(
            project,
            [
                {"action": "create", "file_path": "ok.md", "content": "x"},
                {"action": "delete", "file_path": "nope.md"},
            ],
        )
    assert [c.id for c in fake_gitlab.commits(TEMPLATES)] == [head]
    assert fake_gitlab.project(TEMPLATES).files == {"main": FILES}


def test_commit_to_a_new_branch_with_start_branch(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES)
    project = client(fake_gitlab).projects.get(TEMPLATES)
    main = fake_gitlab.commits(TEMPLATES)[0].id
    action = [{"action": "create", "file_path": "x.md", "content": "x\n"}]
    created = commit(project, action, branch="feature", start_branch="main")
    assert created.parent_ids == [main]  # type: ignore[attr-defined]
    state = fake_gitlab.project(TEMPLATES)
    assert set(state.files) == {"main", "feature"}
    assert "x.md" not in state.files["main"]
    assert state.default_branch == "main"
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        commit(project, action, branch="feature", start_branch="main")
    assert caught.value.error_message == (
        "A branch called 'feature' already exists. Switch to that branch in order to make changes"
    )
    assert [b.name for b in project.branches.list(get_all=True)] == ["feature", "main"]
    assert [c.id for c in fake_gitlab.commits(TEMPLATES, "main")] == [main]


def test_commits_need_api_scope_and_push_rights(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES)
    action = [{"action": "create", "file_path": "x.md", "content": "x\n"}]
    fake_gitlab.add_token("owner", "glpat-owner-write-repo-0000", ["read_api", "write_repository"])
    for token in (OWNER_TOKEN, "glpat-owner-write-repo-0000"):
        project = client(fake_gitlab, token).projects.get(TEMPLATES)
        with pytest.raises(gitlab.GitlabCreateError) as caught:
            commit(project, action)
        assert (caught.value.response_code, caught.value.error_message) == (
            403,
            "insufficient_scope",
        )
    add_member_with_api(fake_gitlab, "dev", DEV_TOKEN, DEVELOPER)
    project = client(fake_gitlab, DEV_TOKEN).projects.get(TEMPLATES)
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        commit(project, action)  # main is protected: Maintainers push
    assert (caught.value.response_code, caught.value.error_message) == (
        403,
        "403 Forbidden - You are not allowed to push into this branch",
    )
    commit(project, action, branch="feature", start_branch="main")
    assert len(fake_gitlab.commits(TEMPLATES)) == 2


# -- tags and releases ---------------------------------------------------------------------


def test_tags(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES)
    project = client(fake_gitlab).projects.get(TEMPLATES)
    head = fake_gitlab.commits(TEMPLATES)[0].id
    tag = project.tags.create(
        {"tag_name": "v1.0.0", "ref": "main", "message": "CI templates 1.0.0"}
    )
    assert fake_gitlab.requests("POST")[0].status == 201
    assert (tag.name, tag.message, tag.commit["id"], tag.release) == (
        "v1.0.0",
        "CI templates 1.0.0",
        head,
        None,
    )
    assert len(tag.target) == 40
    assert tag.target != head  # an annotated tag is an object of its own
    light = project.tags.create({"tag_name": "v0.9.0", "ref": head[:10]})
    assert (light.target, light.message) == (head, None)
    assert project.tags.get("v1.0.0").commit["id"] == head
    assert [t.name for t in project.tags.list(get_all=True)] == ["v0.9.0", "v1.0.0"]
    names = [t.name for t in project.tags.list(get_all=True, order_by="version", sort="asc")]
    assert names == ["v0.9.0", "v1.0.0"]
    assert set(fake_gitlab.tags(TEMPLATES)) == {"v1.0.0", "v0.9.0"}

    with pytest.raises(gitlab.GitlabGetError) as caught:
        project.tags.get("v9.9.9")
    assert (caught.value.response_code, caught.value.error_message) == (404, "404 Tag Not Found")
    for data, message in (
        ({"tag_name": "v1.0.0", "ref": "main"}, "Tag v1.0.0 already exists"),
        ({"tag_name": "v2.0.0", "ref": "nope"}, "Target nope is invalid"),
        ({"tag_name": "bad name", "ref": "main"}, "Tag name invalid"),
    ):
        with pytest.raises(gitlab.GitlabCreateError) as caught:
            project.tags.create(data)
        assert (caught.value.response_code, caught.value.error_message) == (400, message)
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        client(fake_gitlab, READER_TOKEN).projects.get(TEMPLATES).tags.create(
            {"tag_name": "v3.0.0", "ref": "main"}
        )
    assert caught.value.error_message == "insufficient_scope"


def test_releases(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES)
    project = client(fake_gitlab).projects.get(TEMPLATES)
    assert project.releases.list(get_all=True) == []
    fake_gitlab.add_release(TEMPLATES, "v1.0.0", description="First")
    releases = project.releases.list(get_all=True)
    assert [(r.tag_name, r.name, r.description) for r in releases] == [
        ("v1.0.0", "v1.0.0", "First")
    ]
    assert releases[0].commit["id"] == fake_gitlab.commits(TEMPLATES)[0].id
    assert project.releases.get("v1.0.0").tag_name == "v1.0.0"
    assert project.tags.get("v1.0.0").release == {"tag_name": "v1.0.0", "description": "First"}


# -- pipeline schedules ----------------------------------------------------------------------


def test_pipeline_schedule_lifecycle(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES)
    project = client(fake_gitlab).projects.get(TEMPLATES)
    created = project.pipelineschedules.create(
        {
            "description": "rotate",
            "ref": "main",
            "cron": "0 3 * * 1",
            "cron_timezone": "Europe/Berlin",
            "active": True,
        }
    )
    assert fake_gitlab.requests("POST")[0].status == 201
    # GitLab expands a short ref to the full one.
    assert (created.ref, created.cron, created.cron_timezone, created.active) == (
        "refs/heads/main",
        "0 3 * * 1",
        "Europe/Berlin",
        True,
    )
    assert created.owner["username"] == "owner"
    next_run = datetime.fromisoformat(created.next_run_at).astimezone(ZoneInfo("Europe/Berlin"))
    assert (next_run.weekday(), next_run.hour, next_run.minute) == (0, 3, 0)  # Monday 03:00
    assert "variables" not in created.attributes  # create answers without them

    schedule = project.pipelineschedules.get(created.id)
    assert schedule.attributes["variables"] == []
    schedule.variables.create({"key": "BOOTSTRAP_TASK", "value": "rotate"})
    schedule.variables.create({"key": "BOOTSTRAP_GROUP", "value": GROUP, "variable_type": "file"})
    schedule.variables.update("BOOTSTRAP_TASK", {"value": "rotate-now"})
    again = project.pipelineschedules.get(created.id)
    assert again.attributes["variables"] == [
        {"variable_type": "env_var", "key": "BOOTSTRAP_TASK", "value": "rotate-now", "raw": False},
        {"variable_type": "file", "key": "BOOTSTRAP_GROUP", "value": GROUP, "raw": False},
    ]
    listed = project.pipelineschedules.list(get_all=True)
    assert [s.id for s in listed] == [created.id]
    assert "variables" not in listed[0].attributes  # the list omits variables, as GitLab
    schedule.variables.delete("BOOTSTRAP_GROUP")
    assert [r.status for r in fake_gitlab.requests("DELETE")] == [202]

    schedule.cron = "0 4 * * *"
    schedule.active = False
    schedule.save()
    stored = fake_gitlab.project(TEMPLATES).schedules[created.id]
    assert (stored.cron, stored.active, list(stored.variables)) == (
        "0 4 * * *",
        False,
        ["BOOTSTRAP_TASK"],
    )
    assert project.pipelineschedules.list(scope="inactive", get_all=True)[0].id == created.id
    project.pipelineschedules.delete(created.id)
    assert fake_gitlab.project(TEMPLATES).schedules == {}
    with pytest.raises(gitlab.GitlabGetError) as caught:
        project.pipelineschedules.get(created.id)
    assert (caught.value.response_code, caught.value.error_message) == (
        404,
        "404 Pipeline Schedule Not Found",
    )


def test_pipeline_schedule_errors(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES)
    project = client(fake_gitlab).projects.get(TEMPLATES)
    base = {"description": "rotate", "ref": "main", "cron": "0 3 * * *"}
    for change, message in (
        ({"cron": "not a cron"}, {"cron": [" is invalid syntax"]}),
        ({"cron": "61 * * * *"}, {"cron": [" is invalid syntax"]}),
        ({"cron_timezone": "Mars/Olympus"}, {"cron_timezone": [" is invalid syntax"]}),
        ({"ref": "nope"}, {"ref": ["is ambiguous"]}),
    ):
        with pytest.raises(gitlab.GitlabCreateError) as caught:
            project.pipelineschedules.create({**base, **change})
        assert (caught.value.response_code, caught.value.error_message) == (400, message)
    with pytest.raises(gitlab.GitlabHttpError) as caught:
        client(fake_gitlab).http_post(f"/projects/{project.id}/pipeline_schedules", post_data={})
    assert caught.value.error_message == "description is missing, ref is missing, cron is missing"
    assert fake_gitlab.project(TEMPLATES).schedules == {}

    schedule = project.pipelineschedules.create({**base, "ref": "refs/heads/main"})
    schedule.variables.create({"key": "A", "value": "1"})
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        schedule.variables.create({"key": "A", "value": "2"})
    assert caught.value.error_message == {"key": ["has already been taken"]}
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        schedule.variables.create({"key": "A-B", "value": "2"})
    assert caught.value.error_message == {"key": ["can contain only letters, digits and '_'."]}
    with pytest.raises(gitlab.GitlabUpdateError) as caught:
        schedule.variables.update("NOPE", {"value": "2"})
    assert (caught.value.response_code, caught.value.error_message) == (
        404,
        "404 Pipeline Schedule Variable Not Found",
    )
    with pytest.raises(gitlab.GitlabDeleteError) as caught:
        schedule.variables.delete("NOPE")
    assert caught.value.response_code == 404


def test_only_the_schedule_owner_changes_it(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES)
    add_member_with_api(fake_gitlab, "maint", MAINTAINER_TOKEN, MAINTAINER)
    seeded = fake_gitlab.add_schedule(
        TEMPLATES, "rotate", ref="refs/heads/main", owner="maint", variables={"A": "1"}
    )
    project = client(fake_gitlab).projects.get(TEMPLATES)
    schedule = project.pipelineschedules.get(seeded.id)
    assert schedule.attributes["variables"][0]["value"] == "1"  # Maintainers read them
    with pytest.raises(gitlab.GitlabUpdateError) as caught:
        project.pipelineschedules.update(seeded.id, {"cron": "0 5 * * *"})
    assert (caught.value.response_code, caught.value.error_message) == (403, "403 Forbidden")
    with pytest.raises(gitlab.GitlabUpdateError):
        schedule.variables.update("A", {"value": "2"})
    schedule.take_ownership()
    assert schedule.owner["username"] == "owner"
    project.pipelineschedules.update(seeded.id, {"cron": "0 5 * * *"})
    schedule.variables.update("A", {"value": "2"})
    stored = fake_gitlab.project(TEMPLATES).schedules[seeded.id]
    assert (stored.cron, stored.variables["A"].value) == ("0 5 * * *", "2")
    add_member_with_api(fake_gitlab, "dev", DEV_TOKEN, DEVELOPER)
    as_dev = client(fake_gitlab, DEV_TOKEN).projects.get(TEMPLATES)
    assert "variables" not in as_dev.pipelineschedules.get(seeded.id).attributes


def test_a_deleted_owner_leaves_the_schedule_ownerless(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES)
    add_member_with_api(fake_gitlab, "maint", MAINTAINER_TOKEN, MAINTAINER)
    seeded = fake_gitlab.add_schedule(TEMPLATES, "rotate", ref="refs/heads/main", owner="maint")
    del fake_gitlab.users[fake_gitlab.user("maint").id]  # the user was deleted
    project = client(fake_gitlab).projects.get(TEMPLATES)
    schedule = project.pipelineschedules.get(seeded.id)
    assert schedule.owner is None
    with pytest.raises(gitlab.GitlabUpdateError):
        project.pipelineschedules.update(seeded.id, {"cron": "0 5 * * *"})
    schedule.take_ownership()
    assert fake_gitlab.requests("POST")[-1].status == 201  # not owned before: created
    project.pipelineschedules.update(seeded.id, {"cron": "0 5 * * *"})


def test_schedule_variables_follow_the_minimum_override_role(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES)
    seeded = fake_gitlab.add_schedule(TEMPLATES, "rotate", ref="refs/heads/main", owner="owner")
    fake_gitlab.projects_api.get(TEMPLATES).pipeline_variables_role = "no_one_allowed"
    schedule = client(fake_gitlab).projects.get(TEMPLATES).pipelineschedules.get(seeded.id)
    # GitLab.com's default for new projects: not even the Owner may set them.
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        schedule.variables.create({"key": "A", "value": "1"})
    assert caught.value.response_code == 403
    fake_gitlab.projects_api.get(TEMPLATES).pipeline_variables_role = "developer"
    schedule.variables.create({"key": "A", "value": "1"})


# -- project CI/CD variables ---------------------------------------------------------------


def test_project_variables(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES)
    project = client(fake_gitlab).projects.get(TEMPLATES)
    created = project.variables.create(
        {
            "key": "GITLAB_TOKEN",
            "value": "glpat-secret-value-123",
            "masked": True,
            "protected": True,
        }
    )
    assert fake_gitlab.requests("POST")[0].status == 201
    assert created.asdict() == {
        "variable_type": "env_var",
        "key": "GITLAB_TOKEN",
        "value": "glpat-secret-value-123",  # masked values are shown to Maintainers
        "hidden": False,
        "protected": True,
        "masked": True,
        "raw": False,
        "environment_scope": "*",
        "description": None,
    }
    project.variables.create({"key": "BOOTSTRAP_TEMPLATES_VERSION", "value": "1.0.0"})
    got = project.variables.get("BOOTSTRAP_TEMPLATES_VERSION")
    got.value = "1.1.0"
    got.save()
    project.variables.update("GITLAB_TOKEN", {"value": "glpat-other-value-456"})
    assert {v.key: v.value for v in project.variables.list(get_all=True)} == {
        "GITLAB_TOKEN": "glpat-other-value-456",
        "BOOTSTRAP_TEMPLATES_VERSION": "1.1.0",
    }
    stored = {v.key: v for v in fake_gitlab.project(TEMPLATES).variables}
    assert (stored["GITLAB_TOKEN"].masked, stored["GITLAB_TOKEN"].protected) == (True, True)
    hidden = project.variables.create(
        {"key": "HIDDEN", "value": "s3cr3t-value-789", "masked_and_hidden": True}
    )
    assert (hidden.value, hidden.hidden, hidden.masked) == (None, True, True)

    with pytest.raises(gitlab.GitlabCreateError) as caught:
        project.variables.create({"key": "GITLAB_TOKEN", "value": "x"})
    assert (caught.value.response_code, caught.value.error_message) == (
        400,
        {"key": ["(GITLAB_TOKEN) has already been taken"]},
    )
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        project.variables.create({"key": "SHORT", "value": "short", "masked": True})
    assert caught.value.error_message == {"value": ["is invalid"]}
    with pytest.raises(gitlab.GitlabGetError) as caught:
        project.variables.get("NOPE")
    assert (caught.value.response_code, caught.value.error_message) == (
        404,
        "404 Variable Not Found",
    )
    project.variables.delete("BOOTSTRAP_TEMPLATES_VERSION")
    assert fake_gitlab.requests("DELETE")[0].status == 204
    assert [v.key for v in fake_gitlab.project(TEMPLATES).variables] == ["GITLAB_TOKEN", "HIDDEN"]


def test_no_update_hides_a_variable_and_a_hidden_one_keeps_its_mask(
    fake_gitlab: FakeGitLab,
) -> None:
    """``lib/api/ci/variables.rb``: the PUT declares neither ``hidden`` nor
    ``masked_and_hidden``; ``Ci::HidableVariable`` refuses a masked change on a hidden one."""
    fake_gitlab.add_project(TEMPLATES, FILES)
    project = client(fake_gitlab).projects.get(TEMPLATES)
    project.variables.create({"key": "PLAIN", "value": "glpat-plain-value-123"})
    # ``value`` sent too: python-gitlab 4.4 (the lowest allowed) requires it; GitLab does not.
    updated = project.variables.update(
        "PLAIN",
        {
            "value": "glpat-plain-value-123",
            "masked_and_hidden": True,
            "hidden": True,
            "masked": True,
            "protected": True,
        },
    )
    # Masked and protected now, but still shown: only a new variable can be hidden.
    assert (updated["hidden"], updated["masked"], updated["protected"]) == (False, True, True)
    assert updated["value"] == "glpat-plain-value-123"

    project.variables.create(
        {"key": "HIDDEN", "value": "glpat-hidden-value-45", "masked_and_hidden": True}
    )
    with pytest.raises(gitlab.GitlabUpdateError) as caught:
        project.variables.update("HIDDEN", {"value": "glpat-hidden-value-45", "masked": False})
    assert (caught.value.response_code, caught.value.error_message) == (
        400,
        {"base": ["Updating masked attribute is not allowed on updates for hidden variables."]},
    )
    renewed = project.variables.update(
        "HIDDEN", {"value": "glpat-hidden-value-67", "masked": True, "protected": True}
    )
    assert (renewed["value"], renewed["hidden"], renewed["protected"]) == (None, True, True)
    [stored] = [v for v in fake_gitlab.project(TEMPLATES).variables if v.key == "HIDDEN"]
    assert stored.value == "glpat-hidden-value-67"  # what the job receives


def test_project_variables_need_maintainer(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES)
    fake_gitlab.add_variable(TEMPLATES, "GITLAB_TOKEN", "glpat-secret-value-123", masked=True)
    with pytest.raises(gitlab.GitlabGetError) as caught:
        client(fake_gitlab, READER_TOKEN).projects.get(TEMPLATES).variables.get("GITLAB_TOKEN")
    assert (caught.value.response_code, caught.value.error_message) == (403, "403 Forbidden")
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        client(fake_gitlab, READER_TOKEN).projects.get(TEMPLATES).variables.create(
            {"key": "X", "value": "y"}
        )
    assert caught.value.error_message == "insufficient_scope"
    assert (
        client(fake_gitlab, OWNER_TOKEN)
        .projects.get(TEMPLATES)
        .variables.get("GITLAB_TOKEN")
        .masked
    )


def test_environment_scoped_variables_need_a_filter(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES)
    gl = client(fake_gitlab)
    project = gl.projects.get(TEMPLATES)
    project.variables.create({"key": "URL", "value": "a"})
    project.variables.create({"key": "URL", "value": "b", "environment_scope": "production"})
    with pytest.raises(gitlab.GitlabGetError) as caught:
        project.variables.get("URL")
    assert caught.value.response_code == 409
    scoped = gl.http_get(
        f"/projects/{project.id}/variables/URL",
        query_data={"filter[environment_scope]": "production"},
    )
    assert isinstance(scoped, dict)
    assert scoped["value"] == "b"


# -- GraphQL: the CI/CD Catalog flag ---------------------------------------------------------


def graphql(fake: FakeGitLab, token: str | None, path: str = TEMPLATES) -> object:
    gl = client(fake, token)
    return gl.http_post(
        gl.url + "/api/graphql", post_data={"query": GRAPHQL_MUTATION, "variables": {"path": path}}
    )


def test_catalog_resources_create(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES, description="CI/CD components")
    assert fake_gitlab.catalog_resource(TEMPLATES) is False
    assert graphql(fake_gitlab, OWNER_API_TOKEN) == {
        "data": {"catalogResourcesCreate": {"errors": []}}
    }
    assert fake_gitlab.catalog_resource(TEMPLATES) is True
    assert fake_gitlab.project(TEMPLATES).catalog_resource is True
    sent = fake_gitlab.requests("POST", "/api/graphql")[0]
    assert sent.headers["content-type"] == "application/json"
    assert sent.body["variables"] == {"path": TEMPLATES}
    # An inline argument works the same.
    inline = client(fake_gitlab).http_post(
        fake_gitlab.url + "/api/graphql",
        post_data={
            "query": 'mutation { catalogResourcesCreate(input: {projectPath: "'
            + TEMPLATES
            + '"}) { errors clientMutationId } }'
        },
    )
    assert inline == {"data": {"catalogResourcesCreate": {"errors": [], "clientMutationId": None}}}


def test_catalog_resources_create_needs_owner_and_api_scope(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES, description="CI/CD components")
    add_member_with_api(fake_gitlab, "maint", MAINTAINER_TOKEN, MAINTAINER)
    for token, path in (
        (MAINTAINER_TOKEN, TEMPLATES),
        (OWNER_TOKEN, TEMPLATES),  # read_api: no mutations
        (None, TEMPLATES),
        (OWNER_API_TOKEN, f"{GROUP}/nope"),
    ):
        answer = graphql(fake_gitlab, token, path)
        assert answer == {
            "data": {"catalogResourcesCreate": None},
            "errors": [
                {
                    "message": "The resource that you are attempting to access does not exist "
                    "or you don't have permission to perform this action",
                    "path": ["catalogResourcesCreate"],
                }
            ],
        }
    assert fake_gitlab.catalog_resource(TEMPLATES) is False
    with pytest.raises(gitlab.GitlabAuthenticationError) as caught:
        graphql(fake_gitlab, "glpat-unknown-token-000000")
    assert caught.value.response_code == 401
    assert all(r.status in (200, 401) for r in fake_gitlab.requests("POST", "/api/graphql"))


def test_catalog_resources_create_legacy_readme_check(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.projects_api.catalog_requires_readme = True  # GitLab 16.x behaviour
    fake_gitlab.add_project(f"{GROUP}/bare")
    answer = graphql(fake_gitlab, OWNER_API_TOKEN, f"{GROUP}/bare")
    assert answer == {
        "data": {
            "catalogResourcesCreate": {
                "errors": ["Project must have a README , Project must have a description"]
            }
        }
    }
    assert fake_gitlab.catalog_resource(f"{GROUP}/bare") is False
    fake_gitlab.add_project(TEMPLATES, FILES, description="CI/CD components")
    assert graphql(fake_gitlab, OWNER_API_TOKEN) == {
        "data": {"catalogResourcesCreate": {"errors": []}}
    }


def test_other_graphql_queries_get_errors(fake_gitlab: FakeGitLab) -> None:
    gl = client(fake_gitlab)
    for body in ({"query": "{ currentUser { username } }"}, {}):
        answer = gl.http_post(gl.url + "/api/graphql", post_data=body)
        assert isinstance(answer, dict)
        assert set(answer) == {"errors"}
        assert answer["errors"][0]["message"]
    response = requests.get(f"{fake_gitlab.url}/api/graphql", params={"query": "{ x }"}, timeout=5)
    assert response.status_code == 200
    assert "errors" in response.json()


# -- the fake's machinery on the new routes --------------------------------------------------


def test_faults_and_log_cover_project_routes(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES)
    project = client(fake_gitlab).projects.get(TEMPLATES)
    fake_gitlab.inject("500", match=("POST", r"/repository/commits$"))
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        commit(project, [{"action": "create", "file_path": "x", "content": "x"}])
    assert caught.value.response_code == 500
    assert len(fake_gitlab.commits(TEMPLATES)) == 1  # a 500 fault is not processed
    assert fake_gitlab.writes()[-1].fault == "500"
    assert fake_gitlab.writes()[-1].body["actions"][0]["file_path"] == "x"


def test_state_helpers_return_copies(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(TEMPLATES, FILES)
    copied = fake_gitlab.project(TEMPLATES)
    copied.description = "changed"
    copied.commits.clear()
    fake_gitlab.commits(TEMPLATES)[0].files.clear()
    state = fake_gitlab.project(TEMPLATES)
    assert (state.description, len(state.commits), state.files["main"]) == ("", 1, FILES)
    with pytest.raises(KeyError):
        fake_gitlab.project(f"{GROUP}/nope")


# -- bootstrap.gitlab.GitLab against the fake ---------------------------------------------


def test_bootstrap_gitlab_methods(fake_gitlab: FakeGitLab) -> None:
    group_id = fake_gitlab.find_group(GROUP).id  # type: ignore[union-attr]
    gl = GitLab(fake_gitlab.url, Secret(OWNER_API_TOKEN), retries=1, backoff=0)
    assert gl.project(TEMPLATES) is None
    created = gl.create_project(
        group_id,
        {"name": "ci-templates", "path": "ci-templates", "description": "components"},
    )
    assert (created.path_with_namespace, created.default_branch, created.visibility) == (
        TEMPLATES,
        None,
        "private",
    )
    assert gl.project(TEMPLATES) == created
    assert gl.branch_head(created.id, "main") is None
    assert gl.tree(created.id, "main") == {}
    actions = [{"action": "create", "file_path": p, "content": c} for p, c in FILES.items()]
    head = gl.commit(created.id, "main", "CI templates v1.0.0", actions)
    assert gl.branch_head(created.id, "main") == head
    assert gl.tree(created.id, "main") == {p: blob_sha(c) for p, c in FILES.items()}
    head = gl.commit(
        created.id,
        "main",
        "CI templates v1.0.1",
        [
            {"action": "update", "file_path": "README.md", "content": "# v1.0.1\n"},
            {"action": "delete", "file_path": "include/prepare-git.yml"},
        ],
    )
    assert gl.tree(created.id, "main")["README.md"] == blob_sha("# v1.0.1\n")
    assert gl.tag_target(created.id, "v1.0.1") is None
    gl.create_tag(created.id, "v1.0.1", head, "CI templates 1.0.1")
    assert gl.tag_target(created.id, "v1.0.1") == head
    assert gl.mark_catalog_resource(TEMPLATES) is True
    assert fake_gitlab.catalog_resource(TEMPLATES) is True

    assert gl.schedules(created.id) == []
    schedule = gl.create_schedule(
        created.id,
        {
            "description": "rotate",
            "ref": "main",
            "cron": "0 3 * * *",
            "cron_timezone": "UTC",
            "active": True,
        },
    )
    client = gitlab.Gitlab(fake_gitlab.url, private_token=OWNER_API_TOKEN)
    client.projects.get(created.id).pipelineschedules.get(schedule.id).variables.create(
        {"key": "BOOTSTRAP_TASK", "value": "rotate"}  # as an earlier version of the tool did
    )
    gl.delete_schedule_variable(created.id, schedule.id, "BOOTSTRAP_TASK")
    gl.delete_schedule_variable(created.id, schedule.id, "BOOTSTRAP_TASK")  # gone: fine
    gl.update_schedule(created.id, schedule.id, {"cron": "0 4 * * *"})
    assert gl.schedules(created.id) == [
        Schedule(
            schedule.id,
            "rotate",
            "refs/heads/main",  # GitLab stores the expanded ref, not the "main" it was given
            "0 4 * * *",
            "UTC",
            True,
            {},
            owner="owner",
        )
    ]

    assert gl.project_variable(created.id, "BOOTSTRAP_TEMPLATES_VERSION") is None
    gl.set_project_variable(created.id, "BOOTSTRAP_TEMPLATES_VERSION", "1.0.1", exists=False)
    gl.set_project_variable(created.id, "BOOTSTRAP_TEMPLATES_VERSION", "1.0.2", exists=True)
    variable = gl.project_variable(created.id, "BOOTSTRAP_TEMPLATES_VERSION")
    assert variable is not None
    assert (variable["value"], variable["masked"], variable["protected"]) == ("1.0.2", False, False)
    assert [r.status for r in fake_gitlab.log if r.status and r.status >= 400] == [
        404,  # project()
        404,  # branch_head() before the first commit
        404,  # tree() of the empty repository
        404,  # tag_target()
        404,  # the second delete_schedule_variable()
        404,  # project_variable()
    ]


def test_bootstrap_publish_visibility_is_refused_in_a_private_group(
    fake_gitlab: FakeGitLab,
) -> None:
    # GitLab refuses an "internal" project in a private group (publish picks "private" there).
    group_id = fake_gitlab.find_group(GROUP).id  # type: ignore[union-attr]
    gl = GitLab(fake_gitlab.url, Secret(OWNER_API_TOKEN), retries=1, backoff=0)
    with pytest.raises(GitLabError) as caught:
        gl.create_project(group_id, {"name": "ci-templates", "visibility": "internal"})
    assert caught.value.status == 400
    assert "internal is not allowed in a private group" in str(caught.value)


def test_delete_project_needs_the_owner_and_answers_202(fake_gitlab: FakeGitLab) -> None:
    fake_gitlab.add_project(f"{GROUP}/ops", {"README.md": "x\n"})
    fake_gitlab.add_token("reader", "glpat-reader-api-0123456789", ["api"])
    reader = gitlab.Gitlab(fake_gitlab.url, private_token="glpat-reader-api-0123456789")
    with pytest.raises(gitlab.GitlabDeleteError) as refused:
        reader.projects.delete(f"{GROUP}/ops")
    assert refused.value.response_code == 403
    owner = gitlab.Gitlab(fake_gitlab.url, private_token=OWNER_API_TOKEN)
    answer = requests.delete(
        f"{fake_gitlab.url}/api/v4/projects/{GROUP}%2Fops",
        headers={"PRIVATE-TOKEN": OWNER_API_TOKEN},
        timeout=10,
    )
    assert answer.status_code == 202
    assert answer.json() == {"message": "202 Accepted"}
    with pytest.raises(gitlab.GitlabGetError) as gone:
        owner.projects.get(f"{GROUP}/ops")
    assert gone.value.response_code == 404
