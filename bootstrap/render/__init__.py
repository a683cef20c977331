"""Pure rendering: settings (+ credentials) -> Kubernetes objects, config.toml, CI templates.

Nothing here reads files, the environment or the network; the callers pass everything in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bootstrap.config import Settings
from bootstrap.render import names as n
from bootstrap.render import objects as o
from bootstrap.render.credentials import Credentials
from bootstrap.render.objects import KubeObject
from bootstrap.render.runner_config import render_config_toml

if TYPE_CHECKING:
    from bootstrap.render.templates import TemplateDefaults

__all__ = ["Credentials", "KubeObject", "Rendered", "render", "render_ci_templates"]

# Waves: objects of one wave do not depend on each other and may be applied in parallel.
WAVE_NAMESPACE, WAVE_BASE, WAVE_BINDINGS, WAVE_WORKLOAD = 0, 1, 2, 3


@dataclass(frozen=True)
class Rendered:
    """Everything ``install`` applies, in dependency order."""

    objects: list[KubeObject]
    config_toml: str = field(repr=False)  # holds the runner token
    checksum: str

    def by_ref(self) -> dict[tuple[str, str | None, str], KubeObject]:
        """Objects keyed by (kind, namespace, name)."""
        return {(obj.kind, obj.namespace, obj.name): obj for obj in self.objects}


def render(
    settings: Settings,
    credentials: Credentials,
    *,
    image_cache_supported: bool = True,
) -> Rendered:
    """Render every Kubernetes object of the runner.

    Args:
        settings: validated settings.
        credentials: the token and other secret values (``Credentials.placeholders()`` offline).
        image_cache_supported: whether the cluster serves the ImageCache CRD; when it does not,
            the ImageCache is left out (eci profile only).
    """
    config_toml = render_config_toml(settings, credentials)
    checksum = o.config_checksum(config_toml, credentials.gitlab_ca)
    objs: list[KubeObject] = []

    def add(body: dict[str, Any], wave: int) -> None:
        objs.append(KubeObject(body=body, wave=wave))

    if settings.kubernetes.create_namespace:
        add(o.namespace(settings), WAVE_NAMESPACE)
    add(o.service_account(settings), WAVE_BASE)
    add(o.role(settings), WAVE_BASE)
    add(o.config_secret(settings, config_toml, credentials), WAVE_BASE)
    if settings.registry.enabled and not settings.registry.existing_secret:
        add(o.registry_secret(settings, credentials), WAVE_BASE)
    if settings.git_ssh.enabled and not settings.git_ssh.existing_secret:
        add(o.git_ssh_secret(settings, credentials), WAVE_BASE)
    if settings.kubernetes.runner_auth == "client-certificate":
        add(o.kube_client_secret(settings, credentials), WAVE_BASE)
    if settings.cache.type == "nas":
        add(o.cache_volume(settings), WAVE_BASE)
        add(o.cache_claim(settings), WAVE_BINDINGS)
    if settings.profile == "eci" and settings.image_cache.enabled and image_cache_supported:
        add(o.image_cache(settings), WAVE_BASE)
    add(o.role_binding(settings), WAVE_BINDINGS)
    if settings.rotation.in_cluster:
        add(o.rotator_service_account(settings), WAVE_BASE)
        add(o.rotator_role(settings), WAVE_BASE)
        add(o.role_binding(settings, n.ROTATOR), WAVE_BINDINGS)
    add(o.deployment(settings, checksum), WAVE_WORKLOAD)
    return Rendered(objects=objs, config_toml=config_toml, checksum=checksum)


def render_ci_templates(settings: Settings) -> dict[str, str]:
    """The CI templates project with the organisation's defaults baked in (path -> text)."""
    import bootstrap.render.templates as t

    return t.render_templates(template_defaults(settings))


def template_defaults(settings: Settings) -> TemplateDefaults:
    """The organisation's defaults the CI templates are rendered with."""
    import bootstrap.render.templates as t

    defaults = t.default_template_defaults(settings.gitlab.group or "mygroup")
    git_host = settings.templates.git_host or (urlsplit(settings.gitlab.url).hostname or "")
    return t.TemplateDefaults(
        group=settings.gitlab.group or defaults.group,
        project=settings.templates.project,
        version=settings.templates.version,
        runner_tags=tuple(settings.gitlab.tags),
        registry_host=settings.registry.server,
        git_host=git_host,
        git_port=settings.templates.git_port,
        kaniko_image=settings.templates.kaniko_image or defaults.kaniko_image,
        buildkit_image=settings.templates.buildkit_image or defaults.buildkit_image,
        buildkit_tags=tuple(settings.templates.buildkit_tags),
    )
