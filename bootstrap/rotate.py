"""``bootstrap rotate``: renew the runner token before it expires, crash-safe.

gitlab-runner's own renewal is off (``FF_DISABLE_AUTOMATIC_TOKEN_ROTATION``): it would write
the new token into a copy of config.toml that the next pod start replaces from the Secret.
This workflow owns rotation instead:

1. Read the config Secret (token, runner id) and the Deployment (the runner's system id).
2. Decide: the stored token is known dead (expired, or GitLab's expiry is not the one
   recorded with it: reset elsewhere) -> repair; ``--force`` or no window -> rotate;
   ``--if-expiring-within D`` -> rotate only when the token expires within D. Otherwise
   nothing is written. The token is judged by reading only (GraphQL
   ``CiRunner.tokenExpiresAt``, else the expiry recorded in the Secret): ``POST
   /runners/verify`` would count as a contact of the runner.
3. Reset: by id (``manage_runner`` and the Owner role), else - no such scope, or GitLab
   refuses the reset by id (403: a Maintainer, a bot without Owner) - with the current
   token, sending our system id (GitLab records a contact for the manager it names), and
   say so. A reset that failed on the wire may have happened: the stored token is verified
   (``POST /runners/verify`` with our system id, the one call that uses it) before
   anything is repeated.
4. Write the new config.toml into the Secret (the same bytes ``install`` would render) and
   the new checksum into the pod template, so the Deployment rolls: the new pod starts
   before the old one drains its jobs (maxUnavailable 0, SIGQUIT).
5. Wait for the rollout and for the runner to come online: our runner manager contacts
   GitLab after the new token was issued (a contact our own calls made before does not
   count).

A crash between 3 and 4 leaves a dead token in the Secret: the next ``rotate`` or
``install`` finds that it no longer verifies and resets by id again.

Only the Secret and the Deployment are read and patched, under a field manager of rotate's
own, so the in-cluster rotator needs nothing more (see the ``gitlab-runner-rotator`` Role).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from bootstrap.config import Settings
from bootstrap.deadline import whole_run
from bootstrap.errors import GitLabError, KubeError
from bootstrap.gitlab import SCOPE_MANAGE, GitLab, NewToken, parse_time
from bootstrap.kube import Kube
from bootstrap.lock import locked, tell_waiting
from bootstrap.looptoken import RenewResult, in_ops_job, renew_own_token
from bootstrap.render import names as n
from bootstrap.render.objects import config_checksum
from bootstrap.render.runner_config import GROUP_ENTRY, OPS_ENTRY, config_problem, replace_token
from bootstrap.report import QuietReporter, Reporter
from bootstrap.secret import Secret
from bootstrap.workflow import (
    ENTRY_ANNOTATIONS,
    Context,
    Stored,
    connect,
    contact_baseline,
    read_stored,
    requests_made,
    secret_text,
    token_state,
    wait_online,
    wait_rollout,
)

Decision = Literal["rotate", "repair", "skip"]


@dataclass
class RotateResult:
    """What rotate decided and did (never a token)."""

    runner_id: int
    decision: Decision
    reason: str
    dry_run: bool
    method: str = ""
    old_expires_at: str | None = None
    new_expires_at: str | None = None
    rollout: str = ""
    online: bool | None = None
    warnings: list[str] = field(default_factory=list)
    requests: dict[str, dict[str, int]] = field(default_factory=dict)
    #: The ops project's rotation runner, handled after this one (None: there is none).
    ops: RotateResult | None = None
    #: The scheduled job's own token (None: not run as the ops project's job).
    loop_token: RenewResult | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ops_runner": self.ops.as_dict() if self.ops else None,
            "loop_token": self.loop_token.as_dict() if self.loop_token else None,
            "runner_id": self.runner_id,
            "decision": self.decision,
            "reason": self.reason,
            "dry_run": self.dry_run,
            "method": self.method,
            "old_expires_at": self.old_expires_at,
            "new_expires_at": self.new_expires_at,
            "rollout": self.rollout,
            "online": self.online,
            "warnings": self.warnings,
            "requests": self.requests,
        }


def decide(
    *,
    token_valid: bool,
    expires_at: datetime | None,
    now: datetime,
    within: timedelta | None,
    force: bool,
) -> tuple[Decision, str]:
    """Whether to rotate, and why (pure)."""
    if not token_valid:
        return "repair", "the stored token is dead"
    if force:
        return "rotate", "--force"
    if within is None:
        return "rotate", "rotation requested"
    if expires_at is None:
        return "skip", "the token never expires"
    left = expires_at - now
    if left <= within:
        return "rotate", f"the token expires in {_human(left)}, within {_human(within)}"
    return "skip", f"the token expires in {_human(left)}, not within {_human(within)}"


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "the past"
    days, rest = divmod(seconds, 86400)
    hours = rest // 3600
    return f"{days}d{hours}h" if days else f"{hours}h{(rest % 3600) // 60}m"


def _system_id(deploy: dict[str, Any] | None, settings: Settings) -> str:
    """The runner's system id as the running Deployment has it (verify records it)."""
    if deploy:
        for container in deploy["spec"]["template"]["spec"].get("containers") or []:
            for env in container.get("env") or []:
                if env.get("name") == "RUNNER_SYSTEM_ID" and env.get("value"):
                    return str(env["value"])
    return n.system_id(settings)


def _reset(
    ctx: Context, runner_id: int, stored: Stored, system_id: str, by_id: bool, result: RotateResult
) -> NewToken:
    """Reset once; when the outcome is unknown, verify before trying again.

    A reset by id that GitLab refuses (403: it needs the Owner role, not only the scope)
    falls back to the reset with the current token, when there is one.
    """
    gl = ctx.gitlab

    def once() -> NewToken:
        if by_id:
            return gl.reset_token(runner_id)
        return gl.reset_token_with_token(runner_id, stored.token, system_id)

    try:
        return once()
    except GitLabError as exc:
        if by_id and exc.status == 403 and stored.token:
            ctx.warn(
                f"GitLab refused the reset of runner #{runner_id} by id (it needs the Owner "
                "role): resetting with the runner's current token "
                "(POST /runners/reset_authentication_token)"
            )
            result.method = "with the current token"
            by_id = False
            return once()
        if exc.status is not None and exc.status < 500:
            raise  # GitLab refused it: nothing happened
        # Unreachable, timed out or 5xx: the reset may have happened. Verify first.
        if stored.token and gl.verify_token(stored.token, system_id):
            ctx.reporter.warn("the reset failed before it happened; trying once more")
            return once()
        if not by_id:
            raise GitLabError(
                "the token was reset but the answer was lost, and the old token is dead",
                hint="rerun with a token that has the manage_runner scope to reset it by id",
            ) from exc
        ctx.reporter.warn("the reset happened but its answer was lost; resetting by id again")
        return gl.reset_token(runner_id)


@whole_run
def rotate(
    settings: Settings,
    *,
    token: Secret,
    environ: Mapping[str, str] | None = None,
    within: timedelta | None = None,
    force: bool = False,
    dry_run: bool = False,
    wait: bool = True,
    timeout: float = 600.0,
    reporter: Reporter | None = None,
    now: datetime | None = None,
    gitlab_factory: Callable[..., GitLab] = GitLab,
    kube_factory: Callable[..., Kube] = Kube,
) -> RotateResult:
    """Rotate the runner token of ``settings.kubernetes.namespace`` when needed.

    Raises:
        KubeError: nothing is installed there, or the cluster refused a read or write.
        GitLabError: the runner is gone, the token is refused, or a reset failed.
        WaitTimeout: the rollout or the runner did not come back in time.
    """
    report = reporter or QuietReporter()
    deadline = time.monotonic() + timeout
    ctx = connect(
        settings,
        token,
        reporter=report,
        need_scopes=(),
        need_role=None,
        gitlab_factory=gitlab_factory,
        kube_factory=kube_factory,
    )
    settings, kube, ns = ctx.settings, ctx.kube, ctx.settings.kubernetes.namespace
    secret = kube.get("Secret", n.CONFIG_SECRET, ns)
    if secret is None or read_stored(secret).runner_id is None:
        raise KubeError(
            f"no runner is installed in namespace {ns} (Secret {n.CONFIG_SECRET} is missing "
            "or has no runner id)",
            hint="run `bootstrap install` first",
        )
    run = _Run(ctx, within, force, dry_run, wait, deadline, now or datetime.now(UTC))
    # The group runner first, then the ops runner: each reset is stored, rolled out and seen
    # online before the next begins, so the two tokens are never in flight at once.
    result = _rotate_entry(run, GROUP_ENTRY, secret)
    fresh = kube.get("Secret", n.CONFIG_SECRET, ns) if result.decision != "skip" else secret
    if read_stored(fresh, OPS_ENTRY).runner_id is not None:
        result.ops = _rotate_entry(run, OPS_ENTRY, fresh)
    if in_ops_job(settings, environ or {}) and ctx.token_info is not None:
        # Last: GitLab revokes the job's token at its renewal.
        result.loop_token = _renew_loop_token(run, ctx.token_info.expires_at)
    result.requests = requests_made(ctx)
    return result


def _renew_loop_token(run: _Run, expires_at: str | None) -> RenewResult:
    """Renew the job's own token when due, its writes under the namespace's lock.

    The decision is made first without writing (a dry run of the renewal is date arithmetic
    only), so a day with nothing due takes no Lease either.
    """
    ctx = run.ctx

    def renew(*, dry_run: bool) -> RenewResult:
        return renew_own_token(
            ctx.settings,
            ctx.gitlab,
            ctx.group_id,
            expires_at,
            within=run.within if not run.force else None,
            now=run.moment,
            dry_run=dry_run,
            reporter=ctx.reporter,
        )

    planned = renew(dry_run=True)
    if run.dry_run or planned.action != "would renew":
        return planned
    with _lock(run):
        return renew(dry_run=False)


def _lock(run: _Run) -> AbstractContextManager[Any]:
    """The namespace's lock; while held, every Kubernetes and GitLab write checks it."""
    ctx = run.ctx
    return locked(
        ctx.kube,
        ctx.settings.kubernetes.namespace,
        deadline=run.deadline,
        on_wait=tell_waiting(ctx.reporter),
        duration=ctx.settings.kubernetes.lock_duration,
        guard=(ctx.gitlab,),
    )


@dataclass(frozen=True)
class _Run:
    """What one ``rotate`` run was asked to do."""

    ctx: Context
    within: timedelta | None
    force: bool
    dry_run: bool
    wait: bool
    deadline: float
    moment: datetime


def _rotate_entry(run: _Run, entry: int, secret: dict[str, Any] | None) -> RotateResult:
    """Rotate (or repair) the token of one config.toml entry when needed."""
    ctx, report = run.ctx, run.ctx.reporter
    settings, kube, ns = ctx.settings, ctx.kube, ctx.settings.kubernetes.namespace
    label = "runner" if entry == GROUP_ENTRY else "ops runner"
    stored = read_stored(secret, entry)
    if secret is None or stored.runner_id is None:
        raise KubeError(f"Secret {n.CONFIG_SECRET} in namespace {ns} records no {label}")
    _check_config(secret, ns, entry)  # before any reset: one we cannot store kills a token
    deploy = kube.get("Deployment", n.DEPLOYMENT, ns)
    system_id = _system_id(deploy, settings)
    runner = ctx.gitlab.runner(stored.runner_id)
    if runner is None:
        raise GitLabError(
            f"{label} #{stored.runner_id} recorded in namespace {ns} is gone from GitLab",
            hint="run `bootstrap install` to create a new one",
        )
    state = token_state(ctx, runner.id, stored, run.moment)
    valid = not state.dead
    old_expiry = state.expires_at
    decision, reason = decide(
        token_valid=valid,
        expires_at=parse_time(old_expiry),
        now=run.moment,
        within=run.within,
        force=run.force,
    )
    if state.dead:
        reason = f"the stored token is dead: {state.dead}"
    result = RotateResult(
        runner_id=runner.id,
        decision=decision,
        reason=reason,
        dry_run=run.dry_run,
        old_expires_at=old_expiry,
        warnings=ctx.warnings,
    )
    by_id = ctx.token_info is not None and ctx.token_info.has(SCOPE_MANAGE)
    if decision != "skip":
        if not by_id and not valid:
            raise GitLabError(
                f"{label} #{runner.id}'s stored token is dead, and resetting it by id needs "
                f"the {SCOPE_MANAGE} scope",
                hint=f"rerun with a token that has the {SCOPE_MANAGE} scope",
            )
        result.method = "by id" if by_id else "with the current token"
        if not by_id:
            ctx.warn(
                f"GITLAB_TOKEN lacks {SCOPE_MANAGE}: resetting with the {label}'s current "
                "token (POST /runners/reset_authentication_token)"
            )
    if decision == "skip" and not run.dry_run and secret and _pod_is_behind(deploy, secret):
        _roll_behind(run, result)
    if decision == "skip" or run.dry_run:
        return result

    with _lock(run):
        fresh = kube.get("Secret", n.CONFIG_SECRET, ns)
        if _version(fresh) != _version(secret) and fresh is not None:
            # Another install or rotate changed the token while we waited: decide again.
            secret, stored = fresh, read_stored(fresh, entry)
            _check_config(secret, ns, entry)
            state = token_state(ctx, runner.id, stored, run.moment)
            valid = not state.dead
            result.decision, result.reason = decide(
                token_valid=valid,
                expires_at=parse_time(state.expires_at),
                now=run.moment,
                within=run.within,
                force=False,
            )
            if result.decision == "skip":
                result.reason += " (another run rotated it meanwhile)"
                return result
        new = _reset(ctx, runner.id, stored, system_id, by_id, result)
        result.new_expires_at = new.expires_at
        report.info(f"Reset the token of {label} #{runner.id} ({result.method})")
        # Before the Secret holds the new token: any later contact is a pod using it.
        baseline = contact_baseline(ctx, runner.id, system_id)
        _store(ctx, secret, new, entry)
        report.info(f"Stored the new token in Secret {n.CONFIG_SECRET}; the runner pod rolls")
    if run.wait:
        result.rollout = wait_rollout(ctx, run.deadline)
        result.online = wait_online(
            ctx, runner.id, run.deadline, system_id=system_id, after=baseline
        )
    return result


def _check_config(secret: dict[str, Any], ns: str, entry: int) -> None:
    """Refuse a config.toml the new token could not be written into (hand-edited, corrupt).

    Checked before the reset: resetting first would revoke the token the running pod uses,
    then fail to store the new one, on every run.
    """
    problem = config_problem(secret_text(secret, "config.toml"), entry)
    if problem is not None:
        raise KubeError(
            f"config.toml in Secret {n.CONFIG_SECRET} (namespace {ns}) cannot be rotated: "
            f"{problem}; nothing was reset",
            hint="run `bootstrap install`: it rewrites config.toml from the settings (and "
            "resets the runner's token only if the stored one is lost), then rotate works",
        )


def _version(obj: dict[str, Any] | None) -> str | None:
    return obj["metadata"].get("resourceVersion") if obj else None


def _store(ctx: Context, secret: dict[str, Any], new: NewToken, entry: int) -> None:
    """Write the new token (Secret) and checksum (Deployment) under rotate's field manager.

    The annotations of both entries are sent, the other one's as they are: server-side
    apply removes a field this manager set before and leaves out now.
    """
    ns = ctx.settings.kubernetes.namespace
    config = replace_token(secret_text(secret, "config.toml"), new.token, entry)
    # config.toml only: sending the other keys too (ca.crt) made rotate their co-owner, and
    # server-side apply then kept a key install stopped sending (a CA no longer set).
    data = {"config.toml": base64.b64encode(config.reveal().encode()).decode()}
    live = secret["metadata"].get("annotations") or {}
    annotations = {
        key: live[key] for keys in ENTRY_ANNOTATIONS.values() for key in keys if key in live
    }
    id_key, expires_key = ENTRY_ANNOTATIONS[entry]
    annotations[id_key] = str(new.runner_id)
    # "" for a token that never expires, not the key left out: install's field manager may
    # own the old expiry, which server-side apply keeps (read_stored reads "" as never).
    annotations[expires_key] = new.expires_at or ""
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": n.CONFIG_SECRET, "namespace": ns, "annotations": annotations},
        "data": data,
    }
    try:
        ctx.kube.apply(body, manager=n.ROTATE_FIELD_MANAGER)
    except KubeError as exc:
        raise KubeError(
            f"the token was reset, but storing it failed: {exc}",
            hint="rerun `bootstrap rotate` (or install): it finds the dead token and resets again",
            status=exc.status,
        ) from exc
    _roll(ctx, config_checksum(config.reveal(), secret_text(secret, "ca.crt")))


def _roll(ctx: Context, checksum: str) -> None:
    """Set the pod template's config checksum: the Deployment rolls to the stored config."""
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": n.DEPLOYMENT, "namespace": ctx.settings.kubernetes.namespace},
        "spec": {"template": {"metadata": {"annotations": {n.ANNOTATION_CHECKSUM: checksum}}}},
    }
    ctx.kube.apply(patch, manager=n.ROTATE_FIELD_MANAGER)


def _roll_behind(run: _Run, result: RotateResult) -> None:
    """An earlier rotation stored the token but did not roll the pod: roll it now, under the
    lock, or the runner keeps a revoked token in memory until it restarts.

    Decided again under the lock from fresh reads: another run may have rolled it meanwhile.
    """
    ctx, ns = run.ctx, run.ctx.settings.kubernetes.namespace
    with _lock(run):
        secret = ctx.kube.get("Secret", n.CONFIG_SECRET, ns)
        deploy = ctx.kube.get("Deployment", n.DEPLOYMENT, ns)
        if secret is None or not _pod_is_behind(deploy, secret):
            return
        config = secret_text(secret, "config.toml")
        _roll(ctx, config_checksum(config, secret_text(secret, "ca.crt")))
    result.reason += "; the runner pod was behind the Secret and was rolled"
    ctx.reporter.info("The runner pod ran an older config than the Secret: rolled it")


def _pod_is_behind(deploy: dict[str, Any] | None, secret: dict[str, Any]) -> bool:
    """Whether the pod template's checksum differs from the Secret's config."""
    if deploy is None:
        return False
    annotations = deploy["spec"]["template"]["metadata"].get("annotations") or {}
    want = config_checksum(secret_text(secret, "config.toml"), secret_text(secret, "ca.crt"))
    return bool(annotations.get(n.ANNOTATION_CHECKSUM) != want)
