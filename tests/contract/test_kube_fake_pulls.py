"""The fake kubelet's failing image pulls, read back by the real kubectl as a user would."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.kube import FakeKube

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")

NS = "default"
IMAGE = "registry.example.com/nosuch:1"
ERROR = f'failed to pull and unpack image "{IMAGE}": not found'
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": NS},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": IMAGE}]},
        },
    },
}


def _kubectl(kube: FakeKube, cache: Path, *args: str) -> Any:
    command = ["kubectl", "--kubeconfig", str(kube.kubeconfig_path), "--cache-dir", str(cache)]
    done = subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "-o" in args else done.stdout


def test_a_pod_whose_image_cannot_be_pulled_reads_as_the_kubelet_leaves_it(
    fake_kube: FakeKube, tmp_path: Path
) -> None:
    fake_kube.image_pull_fails = ERROR
    manifest = tmp_path / "web.json"
    manifest.write_text(json.dumps(DEPLOYMENT))
    _kubectl(fake_kube, tmp_path, "apply", "--server-side", "-f", str(manifest))

    [pod] = _kubectl(fake_kube, tmp_path, "-n", NS, "get", "pods", "-l", "app=web", "-o", "json")[
        "items"
    ]
    assert pod["status"]["phase"] == "Pending"
    [state] = [s["state"] for s in pod["status"]["containerStatuses"]]
    assert state == {"waiting": {"reason": "ErrImagePull", "message": ERROR}}
    events = _kubectl(fake_kube, tmp_path, "-n", NS, "get", "events", "-o", "json")["items"]
    about = [(e["type"], e["reason"], e["message"]) for e in events]
    assert ("Warning", "Failed", f'Failed to pull image "{IMAGE}": {ERROR}') in about
    assert ("Warning", "Failed", "Error: ErrImagePull") in about
    assert all(e["involvedObject"]["name"] == pod["metadata"]["name"] for e in events)

    for _ in range(50):  # the kubelet backs off: the next state comes a second later
        [pod] = _kubectl(fake_kube, tmp_path, "-n", NS, "get", "pods", "-o", "json")["items"]
        if "ImagePullBackOff" in json.dumps(pod["status"]):
            break
        time.sleep(0.1)
    [state] = [s["state"] for s in pod["status"]["containerStatuses"]]
    assert state["waiting"] == {
        "reason": "ImagePullBackOff",
        "message": f'Back-off pulling image "{IMAGE}"',
    }
