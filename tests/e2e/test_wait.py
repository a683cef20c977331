"""The rollout wait says why the runner's pod is not ready, and ticks, off a terminal too."""

from __future__ import annotations

from tests.e2e.conftest import Target

PULL_ERROR = (
    'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": not found'
)


def test_a_pod_stuck_on_an_image_pull_is_explained_while_waiting_and_in_the_error(
    target: Target,
) -> None:
    image = "registry.gitlab.com/gitlab-org/gitlab-runner:alpine-v18.11.4"
    target.kube.image_pull_fails = PULL_ERROR.format(image=image)

    result = target.run("install", "--timeout", "4")

    assert result.exit_code == 5, result.output
    err = result.stderr
    waiting = "Waiting for deployment 'gitlab-runner' rollout to finish"
    assert f"{waiting}: 0 of 1 updated replicas are available... (" in err
    assert "Pending; container gitlab-runner: ErrImagePull: rpc error: code = NotFound" in err
    assert "event Pod/gitlab-runner-" in err
    assert f'Failed: Failed to pull image "{image}"' in err
    assert "\r" not in err  # not a terminal: lines, no carriage returns
    [error] = [line for line in err.splitlines() if line.startswith("error: ")]
    assert error.startswith("error: timed out waiting for the rollout: ")
    assert "ErrImagePull" in error or "ImagePullBackOff" in error  # the pod's state then
    assert "successfully rolled out" not in result.output


def test_a_rollout_that_succeeds_says_so_once(target: Target) -> None:
    result = target.run("install")
    assert result.exit_code == 0, result.output
    assert result.output.count("deployment 'gitlab-runner' successfully rolled out") == 1
