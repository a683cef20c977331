"""What ``-v``/``--debug`` show: where each input came from, HTTP requests, tracebacks.

Everything here is redacted first: the value of ``GITLAB_TOKEN`` and anything shaped like a
GitLab token never reaches the terminal, even in a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Mapping

from bootstrap.config import DEFAULT_CONFIG_FILE, Loaded
from bootstrap.gitlab import redact


def _secrets(environ: Mapping[str, str]) -> list[str]:
    return [environ.get("GITLAB_TOKEN", "")]


def redacted(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with the token (and every token-shaped string) replaced by a stub."""
    return redact(text, _secrets(os.environ if environ is None else environ))


def redacted_traceback() -> str:
    """The traceback of the exception being handled, redacted."""
    return redacted("".join(traceback.format_exc()))


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redacted(record.getMessage())
        record.args = None
        return True


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (a test may swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(self.format(record) + "\n")
        sys.stderr.flush()


_HTTP_LOGGERS = ("urllib3.connectionpool", "urllib3.connection")
_handler = _StderrHandler()
_handler.setFormatter(logging.Formatter("debug: %(message)s"))
_handler.addFilter(_RedactingFilter())


def log_http() -> None:
    """Log every HTTP request (method, URL, status) on stderr, redacted (``--debug``)."""
    for name in _HTTP_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        if _handler not in logger.handlers:
            logger.addHandler(_handler)
        logger.propagate = False


def stop_http_log() -> None:
    """Undo :func:`log_http` (the command ended)."""
    for name in _HTTP_LOGGERS:
        logger = logging.getLogger(name)
        logger.removeHandler(_handler)
        logger.setLevel(logging.NOTSET)
        logger.propagate = True


def describe_sources(
    loaded: Loaded, explicit_config: str | None, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Lines saying which settings file, GitLab and kubeconfig are used, and why (``-v``)."""
    env = os.environ if environ is None else environ
    if loaded.config_file is None:
        lines = [f"settings file: none (no ./{DEFAULT_CONFIG_FILE}): defaults, environment, flags"]
    else:
        origin = (
            "--config"
            if explicit_config
            else "$BOOTSTRAP_CONFIG"
            if env.get("BOOTSTRAP_CONFIG")
            else f"./{DEFAULT_CONFIG_FILE}, found in the working directory"
        )
        lines = [f"settings file: {loaded.config_file} (from {origin})"]
    settings = loaded.settings
    lines.append(f"GitLab: {settings.gitlab.url} ({_origin(loaded, 'gitlab.url')})")
    kube = settings.kubernetes
    if kube.kubeconfig:
        lines.append(f"kubeconfig: {kube.kubeconfig} ({_origin(loaded, 'kubernetes.kubeconfig')})")
    elif env.get("KUBECONFIG"):
        lines.append(f"kubeconfig: {env['KUBECONFIG']} (from $KUBECONFIG)")
    else:
        lines.append("kubeconfig: ~/.kube/config, else the pod's service account (the default)")
    if kube.context:
        lines.append(f"context: {kube.context} ({_origin(loaded, 'kubernetes.context')})")
    for key, origin in sorted(loaded.sources.items()):
        if key not in ("gitlab.url", "kubernetes.kubeconfig", "kubernetes.context"):
            lines.append(f"setting: {key} from {origin}")
    return [redacted(line, env) for line in lines]


def _origin(loaded: Loaded, key: str) -> str:
    origin = loaded.settings.origin(key)
    return "the default" if origin == key else f"from {origin}"
