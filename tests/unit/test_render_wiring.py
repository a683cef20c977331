"""``render()`` and ``template_defaults()``: which objects install applies, in which wave, and
which organisation defaults the CI templates get from the settings.

Written for the survivors of ``scripts/mutation bootstrap/render/__init__.py``
(docs/mutation.md).
"""

from __future__ import annotations

import base64

from bootstrap.render import Credentials, render, template_defaults
from bootstrap.render.names import ANNOTATION_CHECKSUM
from bootstrap.render.objects import config_checksum
from bootstrap.render.runner_config import render_config_toml
from bootstrap.render.templates import BUILDKIT_IMAGE, KANIKO_IMAGE
from bootstrap.secret import Secret
from tests.conftest import make_settings

CREDS = Credentials(
    runner_token=Secret("glrt-group-token"), ops_runner_token=Secret("glrt-ops-token")
)
NAS = {"type": "nas", "server": "0a1b2c.cn-hangzhou.nas.aliyuncs.com"}
REGISTRY = {"server": "registry.example.com", "username": "ci", "password_env": "PASSWORD"}
GIT_SSH = {"private_key_file": "id_rsa", "known_hosts_file": "known_hosts"}
CLIENT_CERT = {
    "runner_auth": "client-certificate",
    "api_host": "https://10.0.0.1:6443",
    "ca_file": "ca.crt",
    "cert_file": "tls.crt",
    "key_file": "tls.key",
}


def _objects(*args: object, **kwargs: object) -> set[tuple[str, str, int]]:
    """(kind, name, wave): the wave as its rank, 0 first (install applies wave by wave)."""
    rendered = render(*args, **kwargs)  # type: ignore[arg-type]
    waves = sorted({obj.wave for obj in rendered.objects})
    return {(obj.kind, obj.name, waves.index(obj.wave)) for obj in rendered.objects}


def test_the_default_install_applies_these_objects_in_these_waves() -> None:
    assert _objects(make_settings(), CREDS) == {
        ("Namespace", "gitlab-runner", 0),
        ("ServiceAccount", "gitlab-runner", 1),
        ("Role", "gitlab-runner", 1),
        ("Secret", "gitlab-runner-config", 1),
        ("ImageCache", "gitlab-runner-gitlab-runner", 1),
        ("RoleBinding", "gitlab-runner", 2),
        ("ServiceAccount", "gitlab-runner-rotator", 1),
        ("Role", "gitlab-runner-rotator", 1),
        ("RoleBinding", "gitlab-runner-rotator", 2),
        ("Deployment", "gitlab-runner", 3),
    }


def test_each_option_adds_its_own_objects() -> None:
    settings = make_settings(cache=NAS, registry=REGISTRY, git_ssh=GIT_SSH, kubernetes=CLIENT_CERT)
    added = _objects(settings, CREDS) - _objects(make_settings(), CREDS)
    assert added == {
        ("Secret", "registry-auth-secret", 1),
        ("Secret", "gitlab-credentials", 1),
        ("Secret", "gitlab-runner-kube-client", 1),
        ("PersistentVolume", "gitlab-runner-cache-gitlab-runner", 1),
        # The claim binds to the volume: one wave later.
        ("PersistentVolumeClaim", "gitlab-runner-cache-pvc", 2),
    }


def test_the_smallest_install_is_five_objects() -> None:
    settings = make_settings(
        profile="kubernetes",
        kubernetes={"create_namespace": False},
        rotation={"in_cluster": False},
    )
    assert _objects(settings, CREDS) == {
        ("ServiceAccount", "gitlab-runner", 0),
        ("Role", "gitlab-runner", 0),
        ("Secret", "gitlab-runner-config", 0),
        ("RoleBinding", "gitlab-runner", 1),
        ("Deployment", "gitlab-runner", 2),
    }


def test_existing_secrets_are_used_not_rendered() -> None:
    settings = make_settings(
        registry={"existing_secret": "my-registry"}, git_ssh={"existing_secret": "my-ssh"}
    )
    names = {name for kind, name, _ in _objects(settings, CREDS) if kind == "Secret"}
    assert names == {"gitlab-runner-config"}


def test_an_image_cache_only_on_eci_when_enabled_and_served() -> None:
    def caches(settings: object, **kwargs: object) -> int:
        return sum(1 for kind, *_ in _objects(settings, CREDS, **kwargs) if kind == "ImageCache")

    assert caches(make_settings()) == 1
    assert caches(make_settings(), image_cache_supported=False) == 0
    assert caches(make_settings(image_cache={"enabled": False})) == 0
    assert caches(make_settings(profile="kubernetes")) == 0


def test_the_config_secret_holds_the_config_the_checksum_is_of() -> None:
    settings = make_settings()
    rendered = render(settings, CREDS)
    assert rendered.config_toml == render_config_toml(settings, CREDS)
    assert rendered.checksum == config_checksum(rendered.config_toml, CREDS.gitlab_ca)
    refs = rendered.by_ref()
    secret = refs[("Secret", "gitlab-runner", "gitlab-runner-config")].body
    assert base64.b64decode(secret["data"]["config.toml"]).decode() == rendered.config_toml
    deployment = refs[("Deployment", "gitlab-runner", "gitlab-runner")].body
    template = deployment["spec"]["template"]["metadata"]["annotations"]
    assert template[ANNOTATION_CHECKSUM] == rendered.checksum


def test_by_ref_keys_each_object_by_kind_namespace_and_name() -> None:
    rendered = render(make_settings(kubernetes={"namespace": "ci"}), CREDS)
    refs = rendered.by_ref()
    assert len(refs) == len(rendered.objects)
    assert refs[("Namespace", None, "ci")].kind == "Namespace"
    assert refs[("ServiceAccount", "ci", "gitlab-runner-rotator")].name == "gitlab-runner-rotator"


# --- template_defaults ---------------------------------------------------------------------------


def test_the_templates_get_the_organisations_settings() -> None:
    settings = make_settings(
        gitlab={"group": "org/team", "url": "https://gitlab.corp.example", "tags": ["a", "b"]},
        registry=REGISTRY,
        templates={
            "project": "pipelines",
            "version": "2.3.4",
            "git_host": "ssh.corp.example",
            "git_port": 2222,
            "kaniko_image": "mirror.example.com/kaniko:v1-debug",
            "buildkit_image": "mirror.example.com/buildkit:v2-rootless",
            "buildkit_tags": ["buildkit"],
        },
    )
    defaults = template_defaults(settings)
    assert (defaults.group, defaults.project, defaults.version) == (
        "org/team",
        "pipelines",
        "2.3.4",
    )
    assert defaults.runner_tags == ("a", "b")
    assert defaults.buildkit_tags == ("buildkit",)
    assert defaults.registry_host == "registry.example.com"
    assert (defaults.git_host, defaults.git_port) == ("ssh.corp.example", 2222)
    assert defaults.kaniko_image == "mirror.example.com/kaniko:v1-debug"
    assert defaults.buildkit_image == "mirror.example.com/buildkit:v2-rootless"


def test_without_template_settings_the_defaults_are_gitlabs_host_and_pinned_images() -> None:
    defaults = template_defaults(make_settings(gitlab={"url": "https://gitlab.corp.example:8443"}))
    assert defaults.group == "mygroup"
    assert (defaults.git_host, defaults.git_port) == ("gitlab.corp.example", 22)
    assert (defaults.kaniko_image, defaults.buildkit_image) == (KANIKO_IMAGE, BUILDKIT_IMAGE)
    assert defaults.registry_host == ""
    assert defaults.buildkit_tags == ()
    assert (defaults.project, defaults.version) == ("ci-templates", "1.0.0")


def test_without_a_group_the_templates_name_a_placeholder_group() -> None:
    settings = make_settings(gitlab={"group": ""})
    assert template_defaults(settings).group == "mygroup"
