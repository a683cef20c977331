"""One transient failure of a read is retried, not reported; a write that may have happened
is never sent twice. (The fault matrix accepts an exit 3/4 after a fault, so it would not
notice reads that are never retried.)"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Target

GROUP_READ = ("GET", "/api/v4/groups/mygroup$")
NAMESPACE_READ = ("GET", "/api/v1/namespaces/gitlab-runner$")


@pytest.mark.parametrize("fault", ["500", "reset"])
@pytest.mark.parametrize(("side", "read"), [("gitlab", GROUP_READ), ("kube", NAMESPACE_READ)])
def test_a_read_that_fails_once_is_retried(
    target: Target, side: str, read: tuple[str, str], fault: str
) -> None:
    server = target.gitlab if side == "gitlab" else target.kube
    armed = server.inject(fault, match=read)
    result = target.run("install", "--dry-run")
    assert armed.fired
    assert result.exit_code == 0, result.output
    assert len([r for r in server.log if r.method == "GET" and r.path.endswith(read[1][:-1])]) >= 2


def test_a_runner_create_that_failed_is_not_sent_again(target: Target) -> None:
    target.gitlab.inject("500", match=("POST", "/api/v4/user/runners$"))
    result = target.run("install", "--no-wait")
    assert result.exit_code == 3, result.output
    assert len(target.gitlab.requests("POST", "/api/v4/user/runners")) == 1
    rerun = target.run("install", "--no-wait")
    assert rerun.exit_code == 0, rerun.output
    assert len(target.group_runners()) == 1
