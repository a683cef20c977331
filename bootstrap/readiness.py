"""Why a rollout's pods are not ready yet, in words, from what the API shows (pure).

What ``kubectl describe pod`` would tell: the pod's phase; why it is not scheduled (the
``PodScheduled`` condition: ``Unschedulable`` and the scheduler's message); each container
that waits and why (``state.waiting.reason``/``message``: ``ErrImagePull``,
``ImagePullBackOff`` with the registry's answer, ``CrashLoopBackOff``,
``CreateContainerConfigError``…), ended, or runs without passing its readiness probe; and the
recent Warning events about these pods, their ReplicaSet or the Deployment — on ECI the
virtual kubelet reports quota and out-of-stock failures this way (``ProviderCreateFailed``).
Every line is redacted: a token-shaped string or a URL's password never reaches the terminal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from bootstrap.gitlab import redact

#: Events older than this are history, not the reason of the current wait.
EVENT_WINDOW = timedelta(minutes=10)
#: At most this many events are told (the newest).
MAX_EVENTS = 5
_MAX_MESSAGE = 300
_URL_PASSWORD = re.compile(r"(://[^/\s:@]+):[^/\s@]+@")
#: Waiting reasons that only say "starting": told only with a message.
_STARTING = ("ContainerCreating", "PodInitializing")


def clean(text: str) -> str:
    """One line, bounded, redacted (tokens and URL passwords)."""
    line = " ".join(str(text).split())
    line = _URL_PASSWORD.sub(r"\1:(redacted)@", line)
    line = redact(line)
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 1] + "…"


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), {})


def pod_reasons(pod: dict[str, Any]) -> str | None:
    """``pod NAME: PHASE; …why…`` for a pod that is not ready (None when it is ready or
    going away)."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    if meta.get("deletionTimestamp") or _condition(status, "Ready").get("status") == "True":
        return None
    parts = []
    scheduled = _condition(status, "PodScheduled")
    if scheduled.get("status") == "False":
        why = scheduled.get("reason") or "not scheduled"
        parts.append(f"{why}: {scheduled['message']}" if scheduled.get("message") else why)
    statuses = [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]
    for container in statuses:
        name = container.get("name", "?")
        state = container.get("state") or {}
        if "waiting" in state:
            waiting = state["waiting"] or {}
            reason, message = waiting.get("reason", "Waiting"), waiting.get("message")
            if message:
                parts.append(f"container {name}: {reason}: {message}")
            elif reason not in _STARTING or len(statuses) == 1:
                parts.append(f"container {name}: {reason}")
        elif "terminated" in state:
            ended = state["terminated"] or {}
            parts.append(
                f"container {name}: terminated ({ended.get('reason', 'Error')}, exit code "
                f"{ended.get('exitCode', '?')})"
            )
        elif "running" in state and not container.get("ready"):
            parts.append(f"container {name}: running, not ready yet (its readiness probe)")
    line = f"pod {meta.get('name', '?')}: {status.get('phase') or 'Pending'}"
    return clean("; ".join([line, *parts]))


def event_time(event: dict[str, Any]) -> datetime | None:
    """When an event last happened (None when it says nothing readable)."""
    stamp = (
        event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp")
    )
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) if stamp else None
    except ValueError:
        return None


def recent_warnings(events: Iterable[dict[str, Any]], names: set[str], now: datetime) -> list[str]:
    """``event Pod/NAME: REASON: MESSAGE`` for the newest Warning events about ``names``."""
    found: list[tuple[datetime, int, str]] = []
    seen: set[tuple[str, str]] = set()
    for event in events:
        involved = event.get("involvedObject") or {}
        if event.get("type") != "Warning" or involved.get("name") not in names:
            continue
        when = event_time(event) or now
        if now - when > EVENT_WINDOW:
            continue
        reason, message = str(event.get("reason", "")), str(event.get("message", ""))
        if (reason, message) in seen:
            continue
        seen.add((reason, message))
        text = f"event {involved.get('kind', '?')}/{involved['name']}: {reason}: {message}"
        found.append((when, _written(event), clean(text)))
    # In the order they happened: times have whole seconds, so the write order breaks ties.
    found.sort(key=lambda item: item[:2])
    return [text for *_, text in found[-MAX_EVENTS:]]


def _written(event: dict[str, Any]) -> int:
    """The event's resourceVersion as a number (etcd's revision; 0 when not numeric)."""
    version = str((event.get("metadata") or {}).get("resourceVersion", ""))
    return int(version) if version.isdigit() else 0


def not_ready_reasons(
    pods: Iterable[dict[str, Any]],
    events: Iterable[dict[str, Any]],
    now: datetime,
    *,
    owners: Iterable[str] = (),
) -> list[str]:
    """Each pod that is not ready and why, then the recent warnings about the pods and
    ``owners`` (the Deployment, its ReplicaSets)."""
    pods = list(pods)
    lines = [line for line in (pod_reasons(p) for p in pods) if line]
    names = {str((p.get("metadata") or {}).get("name")) for p in pods} | set(owners)
    return lines + recent_warnings(events, names, now)
