"""``bootstrap uninstall``: delete the runner in GitLab and our objects in the cluster.

What is ours: the runner whose id the config Secret records and every runner whose
maintenance note carries our marker (two runs that each created one leave two: one run
deletes them all), the ops project's rotation runners likewise, and every object labelled
``app.kubernetes.io/managed-by=gitlab-eci-bootstrap,gitlab-eci-bootstrap/namespace=<ns>`` —
namespaced kinds in the namespace, the cluster-scoped PersistentVolume and ImageCache by the
same labels. Pods are left to the garbage collector (their ReplicaSet goes with the
Deployment).

Kept unless asked:

* the cache (PersistentVolumeClaim and PersistentVolume: the cached data) — ``purge_cache``;
* the namespace, as ``helm uninstall`` keeps it — ``delete_namespace``, honoured only when
  the namespace carries our label and nobody but this tool ever wrote to it (its
  managedFields), i.e. ``install`` created it. Deleting it deletes the cache claim too, so it
  needs ``purge_cache`` when there is one.

The order makes a crash at any step leave a state the next run finishes:

1. Reads only: the config Secret, the runners in GitLab, every labelled object, the rotation
   loop's leftovers (schedule, ops runners, loop token), and the right to delete each, the
   lock's Lease verbs included (every refusal is reported before anything is deleted).
   Nothing left: done, no lock, no write. Else the confirmation (``confirm``), then the
   namespace lock (the Lease install and rotate take; none when the namespace is gone or
   being deleted): the plan is read again under it, and asked about again if it deletes
   more than was confirmed.
2. The Deployment, then wait until its pods are gone. They drain first (SIGQUIT: no new
   jobs, running ones finish) while the runner still exists in GitLab, so no job is lost.
   Deleting the runner first would fail the running jobs and leave the pod retrying a dead
   token.
3. The runners in GitLab, while the config Secret still records the id: if this fails or
   the run crashes before it, the next run finds the same runner by that id.
4. The other objects; the rotation loop in GitLab (schedule, ops runners, then the loop
   token: a rotation job needs it until the pods are gone); the config Secret last; then
   the namespace when asked — the last write, since the lock's Lease goes with it.

A second run finds nothing and says so. ``dry_run`` takes the same path: deletions are sent
with ``dryRun=All`` (the API server checks them, permissions included) and the GitLab
deletion is only described.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from bootstrap.config import Settings
from bootstrap.deadline import whole_run
from bootstrap.errors import InvalidInput, KubeError, WaitTimeout
from bootstrap.gitlab import OWNER, SCOPE_MANAGE, GitLab, Runner
from bootstrap.kube import KINDS, Kube
from bootstrap.lock import LOCK_VERBS, locked, tell_waiting
from bootstrap.looptoken import remove_loop_token, remove_ops_project
from bootstrap.render import names as n
from bootstrap.render.runner_config import OPS_ENTRY
from bootstrap.report import QuietReporter, Reporter
from bootstrap.schedule import remove_ops_runner, remove_schedule
from bootstrap.secret import Secret
from bootstrap.workflow import (
    Context,
    access_review,
    connect,
    find_marked_runner,
    managed_selector,
    marked_runners,
    parallel,
    read_namespace,
    read_stored,
    requests_made,
)

# Pods belong to the Deployment's ReplicaSet: the garbage collector removes them.
_NOT_LISTED = ("Namespace", "Pod")
_CACHE_KINDS = ("PersistentVolumeClaim", "PersistentVolume")
# Our own writers: anything else in a namespace's managedFields means someone else wrote it.
_OUR_MANAGERS = (n.FIELD_MANAGER, n.ROTATE_FIELD_MANAGER)

DeleteAction = Literal["delete", "keep"]


@dataclass(frozen=True)
class Deletion:
    """What happens to one object."""

    kind: str
    name: str
    namespace: str | None
    action: DeleteAction
    reason: str = ""

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "action": self.action,
            "reason": self.reason,
        }


@dataclass
class RunnerDeletion:
    """What happens to the runner in GitLab."""

    id: int | None = None
    description: str = ""
    found_by: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "description": self.description,
            "found_by": self.found_by,
            "action": "delete" if self.id is not None else "none",
        }


@dataclass
class UninstallResult:
    """The plan (before confirmation, or with dry_run) and what was done."""

    namespace: str
    dry_run: bool
    #: Every runner of this installation in GitLab: the one the Secret records, and each
    #: one carrying its marker (two runs that each created one leave two).
    runners: list[RunnerDeletion]
    objects: list[Deletion]
    done: bool = False
    cancelled: bool = False
    warnings: list[str] = field(default_factory=list)
    requests: dict[str, dict[str, int]] = field(default_factory=dict)
    schedule: str = ""
    #: The ops project's rotation runner: what happened to it ("" none).
    ops_runner: str = ""
    #: The loop's group access token and its variable ("" none).
    loop_token: str = ""
    #: The ops project, with --delete-ops-project ("" kept or none).
    ops_project: str = ""

    @property
    def deletions(self) -> list[Deletion]:
        return [d for d in self.objects if d.action == "delete"]

    @property
    def kept(self) -> list[Deletion]:
        return [d for d in self.objects if d.action == "keep"]

    @property
    def runner(self) -> RunnerDeletion:
        """The first runner to delete (the one the Secret records when it is there)."""
        return self.runners[0] if self.runners else RunnerDeletion()

    @property
    def loop(self) -> list[str]:
        """What happens to the rotation loop in GitLab (the schedule, the ops runner, the
        loop token, the ops project): "would delete …" in the plan, "deleted …" when done."""
        return [m for m in (self.schedule, self.ops_runner, self.loop_token, self.ops_project) if m]

    @property
    def nothing_left(self) -> bool:
        """Nothing of ours in GitLab or the cluster to delete."""
        return not self.runners and not self.deletions and not self.loop

    def targets(self) -> set[str]:
        """Everything the plan deletes, by name (a plan made again is compared with it)."""
        return (
            {f"runner #{r.id}" for r in self.runners}
            | {f"{d.ref} in {d.namespace}" for d in self.deletions}
            | set(self.loop)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "dry_run": self.dry_run,
            "done": self.done,
            "cancelled": self.cancelled,
            "nothing_left": self.nothing_left,
            "runner": self.runner.as_dict(),
            "runners": [r.as_dict() for r in self.runners],
            "objects": [d.as_dict() for d in self.objects],
            "summary": {"delete": len(self.deletions), "keep": len(self.kept)},
            "warnings": self.warnings,
            "requests": self.requests,
            "schedule": self.schedule or None,
            "ops_runner": self.ops_runner or None,
            "loop_token": self.loop_token or None,
            "ops_project": self.ops_project or None,
        }


@whole_run
def uninstall(
    settings: Settings,
    *,
    token: Secret,
    purge_cache: bool = False,
    delete_namespace: bool = False,
    delete_ops_project: bool = False,
    dry_run: bool = False,
    wait: bool = True,
    timeout: float = 600.0,
    confirm: Callable[[UninstallResult], bool] | None = None,
    reporter: Reporter | None = None,
    gitlab_factory: Callable[..., GitLab] = GitLab,
    kube_factory: Callable[..., Kube] = Kube,
) -> UninstallResult:
    """Delete the runner of ``settings.kubernetes.namespace`` in GitLab and in the cluster.

    Args:
        settings: validated settings.
        token: the GitLab token (``GITLAB_TOKEN``): ``manage_runner`` scope, group Owner.
        purge_cache: delete the cache PersistentVolumeClaim and PersistentVolume too.
        delete_namespace: delete the namespace too, when install created it.
        delete_ops_project: delete the ops project too (its history is the loop's record).
        dry_run: read only; deletions are sent with ``dryRun=All``.
        wait: wait until the runner pods have drained and stopped before deleting the runner
            in GitLab (without it, running jobs may fail).
        timeout: seconds for the whole run, the wait included (exit 5 past it).
        confirm: called with the plan before anything is deleted; False cancels.
        reporter: progress output.

    Raises:
        InvalidInput, GitLabError, KubeError, WaitTimeout: mapped to exit codes by the CLI.
    """
    report = reporter or QuietReporter()
    deadline = time.monotonic() + timeout
    ctx = connect(
        settings,
        token,
        reporter=report,
        need_scopes=(SCOPE_MANAGE,),
        need_role=OWNER,
        purpose="deleting a group runner",
        gitlab_factory=gitlab_factory,
        kube_factory=kube_factory,
    )
    settings, kube, ns = ctx.settings, ctx.kube, ctx.settings.kubernetes.namespace

    def plan() -> _Plan:
        return _plan(ctx, purge_cache, delete_namespace, delete_ops_project, dry_run=dry_run)

    planned = plan()
    result = planned.result
    # The lock is the Lease in the namespace: none without one, or in one being deleted
    # (nothing can be created there, by install either).
    locking = planned.lockable and not dry_run and not result.nothing_left
    _check_permissions(ctx, result.deletions, locking=locking)
    if result.nothing_left:
        result.requests = requests_made(ctx)
        return result
    if confirm is not None and not dry_run and not confirm(result):
        result.cancelled = True
        result.requests = requests_made(ctx)
        return result
    if not locking:
        _execute(ctx, planned, wait=wait and not dry_run, deadline=deadline)
    else:
        with locked(
            kube,
            ns,
            deadline=deadline,
            on_wait=tell_waiting(report),
            duration=settings.kubernetes.lock_duration,
            guard=(ctx.gitlab,),
        ):
            # What is there now, with no other install or rotate running: another run may
            # have changed it since the plan was read (or confirmed).
            confirmed = result.targets()
            planned = plan()
            result = planned.result
            if result.nothing_left:
                result.requests = requests_made(ctx)
                return result
            if confirm is not None and not result.targets() <= confirmed and not confirm(result):
                result.cancelled = True  # it changed: asked again, with the new plan
                result.requests = requests_made(ctx)
                return result
            _execute(ctx, planned, wait=wait, deadline=deadline)
    result.done = not dry_run
    result.requests = requests_made(ctx)
    return result


@dataclass
class _Plan:
    """An uninstall plan and what it was read from."""

    result: UninstallResult
    runners: list[Runner]
    #: The config Secret as read (the ops runner's id is in it).
    secret: dict[str, Any] | None
    #: The namespace exists and is not being deleted: it can hold the lock's Lease.
    lockable: bool


def _plan(
    ctx: Context,
    purge_cache: bool,
    delete_namespace: bool,
    delete_ops_project: bool,
    *,
    dry_run: bool,
) -> _Plan:
    """Read what is ours, in GitLab and the cluster, and decide what goes (reads only)."""
    settings, kube, ns = ctx.settings, ctx.kube, ctx.settings.kubernetes.namespace
    gl = ctx.gitlab
    namespace_exists, namespace = read_namespace(kube, ns)
    secret = kube.get("Secret", n.CONFIG_SECRET, ns) if namespace_exists else None
    runners = _find_runners(ctx, read_stored(secret).runner_id)
    objects = [
        _decide(obj, purge_cache)
        for obj in _list_ours(ctx, namespace_exists)
        if obj["kind"] not in _NOT_LISTED
    ]
    objects.sort(key=_order)
    namespace_plan = _namespace_plan(ns, namespace, delete_namespace)
    if namespace_plan is not None:
        objects.append(namespace_plan)
        if namespace_plan.action == "delete" and not purge_cache:
            claims = [d.ref for d in objects if d.kind == "PersistentVolumeClaim"]
            if claims:
                raise InvalidInput(
                    f"--delete-namespace would delete {', '.join(claims)} (the cache) with "
                    f"namespace {ns}",
                    hint="add --purge-cache to delete the cache too, or keep the namespace",
                )
    result = UninstallResult(
        namespace=ns,
        dry_run=dry_run,
        runners=[RunnerDeletion(r.id, r.description, found_by) for r, found_by in runners],
        objects=objects,
        warnings=ctx.warnings,
    )
    # The rotation loop, as its removals would find it (described only: reads).
    result.schedule = remove_schedule(settings, gl, dry_run=True) or ""
    ops_id = read_stored(secret, OPS_ENTRY).runner_id
    result.ops_runner = remove_ops_runner(settings, gl, ops_id, dry_run=True) or ""
    result.loop_token = remove_loop_token(settings, gl, ctx.group_id, dry_run=True) or ""
    if delete_ops_project:
        result.ops_project = remove_ops_project(settings, gl, dry_run=True) or ""
    terminating = bool(namespace and (namespace.get("status") or {}).get("phase") == "Terminating")
    return _Plan(result, [r for r, _ in runners], secret, namespace_exists and not terminating)


# --- reading --------------------------------------------------------------------------------


def _find_runners(ctx: Context, runner_id: int | None) -> list[tuple[Runner, str]]:
    """The runner the config Secret records, and every other one carrying our marker (two
    runs that each created one leave two: all go in one run); each with how it was found."""
    found: list[tuple[Runner, str]] = []
    if runner_id is not None:
        runner = ctx.gitlab.runner(runner_id)
        if runner is not None:
            found.append((runner, f"recorded in Secret {n.CONFIG_SECRET}"))
        else:
            ctx.warn(f"runner #{runner_id} recorded in the cluster is already gone from GitLab")
    marked = marked_runners(ctx, every=True) if ctx.sees_notes else []
    if not ctx.sees_notes:  # no notes to read: the one found by description and system id
        marked = [r for r in [find_marked_runner(ctx)] if r is not None]
    known = {r.id for r, _ in found}
    found += [(r, "by the marker in its maintenance note") for r in marked if r.id not in known]
    return found


def _list_ours(ctx: Context, namespace_exists: bool) -> list[dict[str, Any]]:
    """Every object carrying our labels for this namespace, of every kind we manage."""
    ns = ctx.settings.kubernetes.namespace
    selector = managed_selector(ctx.settings)
    kinds = [k for k in KINDS.values() if k.kind not in _NOT_LISTED]

    def list_kind(kind_name: str) -> list[dict[str, Any]]:
        kind = KINDS[kind_name]
        if kind.namespaced and not namespace_exists:
            return []
        items = ctx.kube.list(kind_name, ns if kind.namespaced else None, selector)
        # List answers may leave out kind and apiVersion on items; put them back. The lock's
        # Lease is never one to delete: it is released (and goes with the namespace).
        return [
            {**item, "kind": kind_name}
            for item in items
            if not (kind_name == "Lease" and item["metadata"]["name"] == n.LOCK_LEASE)
        ]

    found = parallel(list_kind, [k.kind for k in kinds])
    return [obj for items in found for obj in items]


def _decide(obj: dict[str, Any], purge_cache: bool) -> Deletion:
    meta = obj["metadata"]
    kind = str(obj["kind"])
    if kind in _CACHE_KINDS and not purge_cache:
        return Deletion(
            kind, meta["name"], meta.get("namespace"), "keep", "the cache (--purge-cache)"
        )
    return Deletion(kind, meta["name"], meta.get("namespace"), "delete")


_ORDER = {
    # The Deployment first (it stops the runner), the config Secret last (it names the runner).
    "Deployment": 0,
    "RoleBinding": 1,
    "Role": 2,
    "ServiceAccount": 3,
    "Lease": 4,
    "ImageCache": 5,
    "Secret": 6,
    "PersistentVolumeClaim": 7,
    "PersistentVolume": 8,
}


def _order(d: Deletion) -> tuple[int, bool, str]:
    return (_ORDER.get(d.kind, 6), d.ref == f"Secret/{n.CONFIG_SECRET}", d.name)


def _namespace_plan(
    ns: str, namespace: dict[str, Any] | None, delete_namespace: bool
) -> Deletion | None:
    """Keep or delete the namespace; None when it is not ours at all (or absent)."""
    if namespace is None:
        return None
    labels = namespace["metadata"].get("labels") or {}
    if labels.get(n.LABEL_MANAGED_BY) != n.MANAGED_BY or labels.get(n.LABEL_INSTANCE) != ns:
        return None
    if not delete_namespace:
        return Deletion(
            "Namespace", ns, None, "keep", "as helm uninstall does (--delete-namespace)"
        )
    others = sorted(
        {
            entry.get("manager", "")
            for entry in namespace["metadata"].get("managedFields") or []
            if entry.get("manager") not in _OUR_MANAGERS and not entry.get("subresource")
        }
    )
    if others:
        return Deletion(
            "Namespace",
            ns,
            None,
            "keep",
            f"not created by bootstrap (also written by {', '.join(others)}): "
            f"delete it yourself with kubectl delete namespace {ns}",
        )
    return Deletion("Namespace", ns, None, "delete")


def _check_permissions(ctx: Context, deletions: list[Deletion], *, locking: bool) -> None:
    """SelfSubjectAccessReview of every delete (and of the lock's Lease verbs when it is
    taken); all refusals at once, before any write."""
    needed = sorted(
        {("delete", d.kind) for d in deletions}
        | ({(verb, "Lease") for verb in LOCK_VERBS} if locking else set())
    )
    namespace = ctx.settings.kubernetes.namespace
    refused = [
        f"{verb} {kind}" for verb, kind, ok in access_review(ctx.kube, needed, namespace) if not ok
    ]
    if refused:
        raise KubeError(
            f"the current Kubernetes user may not: {', '.join(refused)} (namespace {namespace})",
            hint="ask a cluster admin for these permissions; nothing was deleted",
            status=403,
        )


# --- deleting -------------------------------------------------------------------------------


def _execute(ctx: Context, planned: _Plan, *, wait: bool, deadline: float) -> None:
    """Delete as planned, in an order a crash at any step leaves for the next run to finish.

    The Deployment (its pods drain), the runners in GitLab, the other objects, the rotation
    loop in GitLab (its job pods are gone too), then the config Secret (it names the
    runners, so it goes after them) and the namespace: the last write, since deleting it
    deletes the lock's Lease with it (the lock's release then finds nothing to delete).
    """
    kube, report, result = ctx.kube, ctx.reporter, planned.result
    settings, gl, dry_run = ctx.settings, ctx.gitlab, result.dry_run

    def delete(d: Deletion) -> bool:
        return not kube.delete(d.kind, d.name, d.namespace, dry_run=dry_run)

    def tell(done: list[Deletion], gone: list[bool]) -> None:
        # After each step, in plan order: the same lines on every run, however threads finish.
        for d, was_gone in zip(done, gone, strict=True):
            if not dry_run:
                report.info(f"Deleted {d.ref}" + (" (it was already gone)" if was_gone else ""))

    deletions = result.deletions
    first = [d for d in deletions if d.kind == "Deployment"]
    last = [d for d in deletions if d.ref == f"Secret/{n.CONFIG_SECRET}" or d.kind == "Namespace"]
    middle = [d for d in deletions if d not in first and d not in last]
    for d in first:
        tell([d], [delete(d)])
    if wait:
        _wait_pods_gone(ctx, deadline)
    for runner in planned.runners if not dry_run else []:
        gl.delete_runner(runner.id)
        report.info(f"Deleted runner #{runner.id} in {settings.gitlab.group}")
    tell(middle, parallel(delete, middle))
    if not dry_run:
        # After the pods are gone, as for the group runner: a rotation job running now
        # finishes; the loop token last of these, since such a job needs it until then.
        result.schedule = remove_schedule(settings, gl, reporter=report) or ""
        ops_id = read_stored(planned.secret, OPS_ENTRY).runner_id
        result.ops_runner = remove_ops_runner(settings, gl, ops_id, reporter=report) or ""
        result.loop_token = remove_loop_token(settings, gl, ctx.group_id, reporter=report) or ""
        if result.ops_project:
            result.ops_project = remove_ops_project(settings, gl, reporter=report) or ""
    for d in last:  # the config Secret, then the namespace
        tell([d], [delete(d)])


def _wait_pods_gone(ctx: Context, deadline: float) -> None:
    """Wait until no runner pod is left (each drains its running jobs before it stops)."""
    ns = ctx.settings.kubernetes.namespace
    selector = managed_selector(ctx.settings)
    delay = 0.5
    while True:
        pods = ctx.kube.list("Pod", ns, selector)
        if not pods:
            return
        ctx.reporter.progress(
            f"Waiting for {len(pods)} runner pod{'s' if len(pods) > 1 else ''} to finish "
            "running jobs and stop"
        )
        if time.monotonic() >= deadline:
            raise WaitTimeout(
                f"timed out waiting for the runner pods to stop ({len(pods)} left; they finish "
                "running jobs first); the runner in GitLab was not deleted yet",
                hint=f"raise --timeout and run uninstall again; kubectl -n {ns} get pods",
            )
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 5.0)
