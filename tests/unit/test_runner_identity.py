"""How our runners look in GitLab: the description GitLab shows, the marker in the maintenance
note that install, rotate and uninstall find them by, and the runner page install prints."""

from __future__ import annotations

from bootstrap.render import names
from bootstrap.workflow import ops_runner_attributes, runner_attributes
from tests.conftest import make_settings


def test_the_group_runner_is_described_and_marked_by_cluster_and_namespace() -> None:
    settings = make_settings(kubernetes={"cluster_name": "prod-1", "namespace": "ci"})
    sent = runner_attributes(settings)
    assert sent["description"] == "eci runner prod-1/ci"
    assert sent["maintenance_note"] == (
        "[managed-by=gitlab-eci-bootstrap cluster=prod-1 namespace=ci]"
    )


def test_a_description_and_note_of_ones_own_keep_the_marker_after_the_note() -> None:
    settings = make_settings(
        gitlab={"group": "mygroup", "runner_description": "Team CI", "maintenance_note": "ask ops"},
        profile="kubernetes",
    )
    sent = runner_attributes(settings)
    assert sent["description"] == "Team CI"
    assert sent["maintenance_note"] == (
        "ask ops\n[managed-by=gitlab-eci-bootstrap cluster=default namespace=gitlab-runner]"
    )
    default = runner_attributes(make_settings(profile="kubernetes"))
    assert default["description"] == "kubernetes runner default/gitlab-runner"


def test_the_ops_runner_has_its_own_description_and_a_marker_no_group_runner_matches() -> None:
    settings = make_settings(kubernetes={"cluster_name": "prod-1", "namespace": "ci"})
    sent = ops_runner_attributes(settings)
    assert sent["description"] == "gitlab-eci-bootstrap rotation prod-1/ci"
    assert sent["maintenance_note"] == (
        "[managed-by=gitlab-eci-bootstrap cluster=prod-1 namespace=ci role=rotation]"
    )
    # The group runner is found by its marker in the note: the ops runner's never contains it.
    assert runner_attributes(settings)["maintenance_note"] not in sent["maintenance_note"]


def test_the_runner_page_install_prints_is_the_groups_runner_page() -> None:
    settings = make_settings(gitlab={"group": "team/ci", "url": "https://git.corp.example/"})
    assert names.runner_page(settings, 42) == "https://git.corp.example/groups/team/ci/-/runners/42"
