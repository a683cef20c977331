"""Why a connection failed, in words: never a Python class name in front of a user.

requests and urllib3 wrap the operating system's error several layers deep
(``ConnectionError(MaxRetryError(reason=NewConnectionError(...)))``); these helpers walk the
chain to the cause a person can act on: refused, host not found, timed out, reset, or which
TLS check failed (a certificate for another name is not an untrusted certificate: a CA file
does not fix it).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

# OpenSSL's X509_V_ERR_* codes (x509_vfy.h) that SSLCertVerificationError.verify_code holds.
_HOSTNAME_MISMATCH = 62
_IP_MISMATCH = 64
_EXPIRED = 10
_NOT_YET_VALID = 9


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps: causes, contexts, ``reason``, exception args."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked += [arg for arg in current.args if isinstance(arg, BaseException)]
        todo += [e for e in linked if isinstance(e, BaseException)]


def tls_failure(exc: BaseException) -> str | None:
    """``hostname``, ``expired`` or ``untrusted`` when certificate verification failed."""
    for error in _chain(exc):
        if isinstance(error, ssl.SSLCertVerificationError):
            code = error.verify_code
            text = f"{error.verify_message} {error}".lower()
            if code in (_HOSTNAME_MISMATCH, _IP_MISMATCH) or "mismatch" in text:
                return "hostname"
            if code in (_EXPIRED, _NOT_YET_VALID) or "expired" in text:
                return "expired"
            return "untrusted"
        if isinstance(error, ssl.CertificateError):
            return "hostname"
    return None


def cause(exc: BaseException) -> str:
    """What went wrong with a connection, as a few words (``connection refused``...)."""
    chain = list(_chain(exc))
    for error in chain:
        if isinstance(error, socket.gaierror):
            return "the host name does not resolve (DNS)"
        if isinstance(error, ConnectionRefusedError):
            return "connection refused: nothing listens on that port"
        if isinstance(error, ConnectionResetError):
            return "the connection was reset"
        if isinstance(error, TimeoutError):
            return "no answer in time"
        if isinstance(error, ssl.SSLError):
            return "the TLS handshake failed"
    names = " ".join(type(error).__name__ for error in chain)
    if "Timeout" in names:
        return "no answer in time"
    if "RemoteDisconnected" in names or "ProtocolError" in names:
        return "the server closed the connection without answering"
    if "NameResolution" in names:
        return "the host name does not resolve (DNS)"
    return "the connection failed"
