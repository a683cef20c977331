"""Every Kubernetes call the tool makes, through the ``kubernetes`` client. Nothing else does.

Objects are addressed by a static table of the kinds we manage, so no discovery round trips
are needed; writes are server-side apply with one field manager. Reads and applies are
idempotent and retried on 429/5xx/connection errors; everything else is raised as
:class:`~bootstrap.errors.KubeError` (exit 4) with the verb, the object and the cause.
"""

from __future__ import annotations

import builtins
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from bootstrap import __version__, deadline, neterrors
from bootstrap.calls import Calls
from bootstrap.errors import BootstrapError, InvalidInput, KubeError
from bootstrap.kubeconfig import choose as kubeconfig_choice
from bootstrap.readiness import clean
from bootstrap.render.names import FIELD_MANAGER
from bootstrap.secret import Environ, without_userinfo

IMAGE_CACHE_GROUP_VERSION = "eci.alibabacloud.com/v1"


@dataclass(frozen=True)
class Kind:
    """How to reach one kind over REST."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def path(self, name: str | None = None, namespace: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        scope = f"/namespaces/{namespace}" if self.namespaced else ""
        return f"{base}{scope}/{self.plural}" + (f"/{name}" if name else "")


KINDS: dict[str, Kind] = {
    k.kind: k
    for k in (
        Kind("v1", "Namespace", "namespaces", False),
        Kind("v1", "ServiceAccount", "serviceaccounts", True),
        Kind("v1", "Secret", "secrets", True),
        Kind("v1", "PersistentVolume", "persistentvolumes", False),
        Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims", True),
        Kind("v1", "Pod", "pods", True),
        Kind("apps/v1", "Deployment", "deployments", True),
        Kind("rbac.authorization.k8s.io/v1", "Role", "roles", True),
        Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", True),
        Kind("coordination.k8s.io/v1", "Lease", "leases", True),
        Kind(IMAGE_CACHE_GROUP_VERSION, "ImageCache", "imagecaches", False),
    )
}


def kind_of(kind: str) -> Kind:
    try:
        return KINDS[kind]
    except KeyError:  # pragma: no cover - a programming error
        raise ValueError(f"unmanaged kind {kind}") from None


@dataclass(frozen=True)
class RolloutStatus:
    """kubectl's ``rollout status`` verdict for a Deployment."""

    done: bool
    message: str
    failed: bool = False


_RETRY_STATUSES = {429, 500, 502, 503, 504}


class Kube:
    """A connection to one cluster (a kubeconfig context, or the pod's service account).

    Args:
        kubeconfig: kubeconfig file; default ``$KUBECONFIG`` or ``~/.kube/config``.
        context: context name; default the current context.
        timeout: seconds per request.
        origins: where ``kubeconfig`` and ``context`` came from (``--kubeconfig``, a
            settings key), for messages; see :func:`bootstrap.kubeconfig.choose`.
        environ: where ``KUBECONFIG`` is read; default ``os.environ``.
        retries: attempts for an idempotent request.
    """

    def __init__(
        self,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        origins: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        from kubernetes import client, config

        self.timeout = timeout
        self.retries = max(1, retries)
        self.backoff = backoff
        self.calls = Calls()
        #: Called before every write (not dry runs); raises to stop it (see lock.locked).
        self.write_guard: Callable[[], None] | None = None
        self._rules: dict[str, tuple[builtins.list[dict[str, Any]], bool]] = {}
        configuration = client.Configuration()
        environ = Environ(os.environ) if environ is None else environ
        choice = kubeconfig_choice(
            kubeconfig,
            context,
            environ=environ,
            origins=origins,
        )
        try:
            if choice is not None:
                self.context_name = choice.context
                config.load_kube_config(
                    config_file=choice.config_file,
                    context=choice.context,
                    client_configuration=configuration,
                )
            elif environ.get("KUBERNETES_SERVICE_HOST"):
                config.load_incluster_config(client_configuration=configuration)
                self.context_name = "in-cluster"
            else:
                raise InvalidInput(
                    "no Kubernetes credentials: no KUBECONFIG, no ~/.kube/config and not in a pod",
                    hint="export KUBECONFIG=<file>, or pass --kubeconfig FILE (and --context)",
                )
        except config.ConfigException as exc:
            where = f"{choice.source}: context {choice.context}" if choice else "in-cluster config"
            raise InvalidInput(
                f"{where}: {exc}",
                hint="fix the kubeconfig: kubectl config view shows what kubectl reads",
            ) from None
        except (ValueError, TypeError, KeyError) as exc:
            # Malformed entries (bad base64 in certificate-authority-data, a user that is
            # not a mapping) that the client does not check itself.
            where = f"{choice.source}: context {choice.context}" if choice else "in-cluster config"
            raise InvalidInput(
                f"{where}: the kubeconfig entry is malformed ({exc})",
                hint="fix the kubeconfig: kubectl config view shows what kubectl reads",
            ) from None
        self.host = configuration.host
        self.shown_host = without_userinfo(self.host)  # what messages print
        configuration.retries = False
        self._api = client.ApiClient(configuration)
        self._api.user_agent = f"gitlab-eci-bootstrap/{__version__}"

    # --- plumbing ---------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        what: str = "",
        retry: bool = True,
        read_only: bool = False,
    ) -> tuple[int, dict[str, Any]]:
        """One REST call: (status, JSON body). Retries transient failures when ``retry``.

        ``read_only`` marks a POST that changes nothing (an access review) for the counts.
        """
        from urllib3.exceptions import HTTPError as Urllib3Error

        url_path = path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": "application/json", "Content-Type": content_type}
        # The client JSON-encodes bodies of JSON content types itself; others go as text.
        payload = body if "json" in content_type or body is None else json.dumps(body)
        is_write = method not in ("GET", "HEAD") and not read_only
        # A request that must not be repeated blindly is still repeated after a 429: the
        # server says it did not process it.
        attempts = self.retries
        delay = self.backoff
        writes = is_write and not (query or {}).get("dryRun")
        label = what or method + " " + path
        for attempt in range(1, attempts + 1):
            if writes and self.write_guard is not None:
                self.write_guard()
            deadline.check(label)
            self.calls.record(f"{method} {path}", write=writes)
            try:
                m, url, hdrs, data, _ = self._api.param_serialize(
                    method=method,
                    resource_path=url_path,
                    header_params=headers,
                    body=payload,
                    auth_settings=["BearerToken"],
                )
                response = self._api.call_api(
                    m, url, hdrs, data, _request_timeout=deadline.request_timeout(self.timeout)
                )
                response.read()
                status = int(response.status)
                raw = response.data or b""
            except (Urllib3Error, OSError) as exc:
                if deadline.passed():
                    raise self._expired(label) from None
                tls = neterrors.tls_failure(exc)
                if tls is not None:
                    raise self._tls_error(label, tls) from None
                if retry and attempt < attempts:
                    deadline.sleep(delay)
                    delay *= 2
                    continue
                raise KubeError(
                    f"{label}: cannot reach the Kubernetes API at {self.shown_host}: "
                    f"{neterrors.cause(exc)}",
                    hint="check the kube context, VPN or network, and that the cluster is up",
                ) from None
            if status in _RETRY_STATUSES and attempt < attempts and (retry or status == 429):
                retry_after = _retry_after(response)
                deadline.sleep(retry_after if retry_after is not None else delay)
                delay *= 2
                continue
            try:
                decoded = json.loads(raw) if raw else {}
            except ValueError:
                decoded = {"message": raw[:200].decode("utf-8", "replace")}
            return status, decoded if isinstance(decoded, dict) else {"items": decoded}
        raise AssertionError("unreachable")  # pragma: no cover

    def _expired(self, what: str) -> BootstrapError:
        return deadline.expired(
            f"{what}: the Kubernetes API at {self.shown_host} did not answer",
            hint="the API server accepted the connection but sent nothing back in time: check "
            "the kube context and the network, or raise --timeout",
        )

    def _tls_error(self, what: str, failure: str) -> KubeError:
        detail = {
            "hostname": "its certificate is for another host name (hostname mismatch): use "
            "the server name the certificate names in the kubeconfig's cluster",
            "expired": "its certificate has expired or is not valid yet",
            "untrusted": "its certificate is not trusted by the kubeconfig's certificate-authority",
        }[failure]
        return KubeError(
            f"{what}: TLS verification of the Kubernetes API at {self.shown_host} failed: {detail}",
            hint="check the cluster entry of the kube context (kubectl config view --minify)",
        )

    def _check(
        self, status: int, body: dict[str, Any], what: str, *, ok: tuple[int, ...] = (200, 201)
    ) -> dict[str, Any]:
        if status in ok:
            return body
        # An admission webhook or a proxy may quote the request (a Secret's data included).
        message = clean(str(body.get("message") or body.get("reason") or f"HTTP {status}"))
        hint = None
        if status == 401:
            hint = "the kubeconfig credentials were rejected: log in again or pick another context"
        elif status == 403:
            hint = "ask a cluster admin for this permission, or run `bootstrap doctor`"
        raise KubeError(f"{what}: {message} ({status})", hint=hint, status=status)

    # --- objects ----------------------------------------------------------------------

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The live object, or None when it does not exist."""
        k = kind_of(kind)
        what = f"get {kind}/{name}"
        status, body = self.request(
            "GET", k.path(name, namespace if k.namespaced else None), what=what
        )
        if status == 404:
            return None
        return self._check(status, body, what)

    def list(
        self, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Objects of a kind (in a namespace), filtered by a label selector."""
        k = kind_of(kind)
        query = {"labelSelector": selector} if selector else None
        what = f"list {k.plural}"
        status, body = self.request(
            "GET", k.path(None, namespace if k.namespaced else None), query=query, what=what
        )
        if status == 404:
            return []
        return list(self._check(status, body, what).get("items") or [])

    def apply(
        self,
        body: dict[str, Any],
        *,
        dry_run: bool = False,
        force: bool = True,
        manager: str = FIELD_MANAGER,
    ) -> dict[str, Any]:
        """Server-side apply of one object with a field manager (creates when missing)."""
        k = kind_of(str(body["kind"]))
        meta = body["metadata"]
        query = {"fieldManager": manager, "force": "true" if force else "false"}
        if dry_run:
            query["dryRun"] = "All"
        what = f"apply {k.kind}/{meta['name']}"
        status, result = self.request(
            "PATCH",
            k.path(meta["name"], meta.get("namespace")),
            query=query,
            body=body,
            content_type="application/apply-patch+yaml",
            what=what,
        )
        return self._check(status, result, what)

    def delete(
        self,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        resource_version: str | None = None,
    ) -> bool:
        """Delete an object (background propagation). False when it was already gone.

        ``dry_run`` sends ``dryRun=All``: the API server checks the request (permissions
        included) and deletes nothing. ``resource_version`` deletes only that version of
        the object (False when it changed meanwhile: 409).
        """
        k = kind_of(kind)
        what = f"delete {kind}/{name}"
        query = {"propagationPolicy": "Background"}
        if dry_run:
            query["dryRun"] = "All"
        options = None
        if resource_version:
            options = {
                "apiVersion": "v1",
                "kind": "DeleteOptions",
                "preconditions": {"resourceVersion": resource_version},
            }
        status, body = self.request(
            "DELETE",
            k.path(name, namespace if k.namespaced else None),
            query=query,
            body=options,
            what=what,
        )
        if status in (404, 409):
            return False
        self._check(status, body, what, ok=(200, 202))
        return True

    def create(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """Create an object; None when one of that name already exists (409 AlreadyExists)."""
        k = kind_of(str(body["kind"]))
        meta = body["metadata"]
        what = f"create {k.kind}/{meta['name']}"
        status, result = self.request(
            "POST", k.path(None, meta.get("namespace")), body=body, what=what, retry=False
        )
        if status == 409:
            return None
        return self._check(status, result, what)

    def replace(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """Replace an object guarded by its resourceVersion; None on a conflict (409)."""
        k = kind_of(str(body["kind"]))
        meta = body["metadata"]
        what = f"update {k.kind}/{meta['name']}"
        status, result = self.request(
            "PUT", k.path(meta["name"], meta.get("namespace")), body=body, what=what, retry=False
        )
        if status == 409:
            return None
        return self._check(status, result, what)

    # --- cluster facts ------------------------------------------------------------------

    def version(self) -> str:
        status, body = self.request("GET", "/version", what="read the server version")
        return str(self._check(status, body, "read the server version").get("gitVersion", "?"))

    def serves(self, group_version: str, plural: str) -> bool:
        """Whether the API serves a resource (a discovery read: needs no permission)."""
        status, body = self.request(
            "GET", f"/apis/{group_version}", what=f"discover {group_version}"
        )
        if status == 404:
            return False
        resources = self._check(status, body, f"discover {group_version}").get("resources") or []
        return any(r.get("name") == plural for r in resources)

    def can(self, verb: str, kind: str, namespace: str | None) -> bool:
        """SelfSubjectAccessReview: may the current user ``verb`` objects of ``kind`` here?"""
        k = kind_of(kind)
        attributes: dict[str, Any] = {"verb": verb, "group": k.group, "resource": k.plural}
        if k.namespaced and namespace:
            attributes["namespace"] = namespace
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        what = f"check permission to {verb} {k.plural}"
        status, body = self.request(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body=review,
            what=what,
            read_only=True,
        )
        return bool(self._check(status, body, what).get("status", {}).get("allowed"))

    def rules(self, namespace: str) -> tuple[builtins.list[dict[str, Any]], bool]:
        """SelfSubjectRulesReview: (resource rules, incomplete) for the user in ``namespace``.

        One request answers for every verb and resource; ``incomplete`` means an authorizer
        could not list its rules (ask :meth:`can` for what the rules do not allow).
        """
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": namespace},
        }
        if namespace in self._rules:
            return self._rules[namespace]
        what = "list the permissions of the current user"
        status, body = self.request(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            body=review,
            what=what,
            read_only=True,
        )
        if status == 404:
            return [], True
        result = self._check(status, body, what).get("status") or {}
        # Rules do not change during one run: one review per namespace is enough.
        self._rules[namespace] = (
            list(result.get("resourceRules") or []),
            bool(result.get("incomplete")),
        )
        return self._rules[namespace]

    def granted_by_rules(
        self, pairs: Iterable[tuple[str, str]], namespace: str
    ) -> dict[tuple[str, str], bool]:
        """Which (verb, kind) pairs the user's rules in ``namespace`` grant, in one request.

        False means "not listed", not "denied": rules list only grants and may be
        incomplete, so ask :meth:`can` about those.
        """
        rules, _incomplete = self.rules(namespace)
        verdict: dict[tuple[str, str], bool] = {}
        for verb, kind in pairs:
            k = kind_of(kind)
            verdict[(verb, kind)] = any(_grants(rule, verb, k.group, k.plural) for rule in rules)
        return verdict

    def nodes(self, selector: str | None = None) -> builtins.list[dict[str, Any]]:
        """Nodes (cluster-scoped; needs ``list nodes``), filtered by a label selector."""
        query = {"labelSelector": selector} if selector else None
        status, body = self.request("GET", "/api/v1/nodes", query=query, what="list nodes")
        return list(self._check(status, body, "list nodes").get("items") or [])

    def events(self, namespace: str) -> builtins.list[dict[str, Any]]:
        """The events of a namespace (core/v1; what ``kubectl get events`` shows)."""
        what = f"list events in namespace {namespace}"
        path = f"/api/v1/namespaces/{namespace}/events"
        status, body = self.request("GET", path, what=what)
        if status == 404:
            return []
        return list(self._check(status, body, what).get("items") or [])

    # --- waiting ------------------------------------------------------------------------

    def rollout_status(self, name: str, namespace: str) -> RolloutStatus:
        """kubectl's DeploymentStatusViewer, on one read of the Deployment."""
        deploy = self.get("Deployment", name, namespace)
        if deploy is None:
            return RolloutStatus(False, f"deployment {name!r} not found", failed=True)
        return rollout_verdict(deploy)

    def wait_rollout(
        self,
        name: str,
        namespace: str,
        *,
        deadline: float,
        on_progress: Callable[[RolloutStatus], None] | None = None,
        poll: float = 1.0,
    ) -> RolloutStatus:
        """Poll until the rollout is done, has failed, or ``deadline`` (monotonic) passes.

        ``on_progress`` sees every verdict (each poll: a wait's elapsed time can tick)."""
        while True:
            verdict = self.rollout_status(name, namespace)
            if on_progress:
                on_progress(verdict)
            if verdict.done or verdict.failed or time.monotonic() >= deadline:
                return verdict
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
            poll = min(poll * 1.5, 2.0)


def _grants(rule: dict[str, Any], verb: str, group: str, resource: str) -> bool:
    """Whether one RBAC resource rule (without resourceNames) grants verb on resource."""
    if rule.get("resourceNames"):
        return False
    return (
        bool({"*", verb} & set(rule.get("verbs") or []))
        and bool({"*", group} & set(rule.get("apiGroups") or []))
        and bool({"*", resource} & set(rule.get("resources") or []))
    )


def rollout_verdict(deploy: dict[str, Any]) -> RolloutStatus:
    """kubectl ``rollout status`` semantics (kubectl/pkg/polymorphichelpers/rollout_status.go)."""
    name = deploy["metadata"]["name"]
    spec, status = deploy.get("spec", {}), deploy.get("status", {})
    generation = deploy["metadata"].get("generation", 0)
    if generation > status.get("observedGeneration", 0):
        return RolloutStatus(False, "Waiting for deployment spec update to be observed...")
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "Progressing"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return RolloutStatus(
                False, f"deployment {name!r} exceeded its progress deadline", failed=True
            )
    replicas = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    if updated < replicas:
        return RolloutStatus(
            False,
            f"Waiting for deployment {name!r} rollout to finish: {updated} out of {replicas} "
            "new replicas have been updated...",
        )
    if status.get("replicas", 0) > updated:
        old = status.get("replicas", 0) - updated
        return RolloutStatus(
            False,
            f"Waiting for deployment {name!r} rollout to finish: {old} old replicas are "
            "pending termination...",
        )
    available = status.get("availableReplicas", 0)
    if available < updated:
        return RolloutStatus(
            False,
            f"Waiting for deployment {name!r} rollout to finish: {available} of {updated} "
            "updated replicas are available...",
        )
    return RolloutStatus(True, f"deployment {name!r} successfully rolled out")


def _retry_after(response: Any) -> float | None:
    try:
        value = response.getheader("Retry-After")
    except Exception:  # header access differs between client versions
        return None
    try:
        return min(float(value), 30.0) if value else None
    except ValueError:
        return None
