"""A small threaded HTTP server base shared by the GitLab and Kubernetes fakes.

A fake subclasses :class:`FakeServer` and implements :meth:`FakeServer.handle`, which
turns a :class:`Request` into a :class:`Response`. The base provides what every fake
needs for tests:

* a real HTTP/1.1 server on ``127.0.0.1`` and a free port, in a daemon thread;
* a request log (:class:`RecordedRequest`) with filters (:meth:`FakeServer.requests`,
  :meth:`FakeServer.writes`, :meth:`FakeServer.reads`);
* latency injection (``latency_ms``, applied before every request is processed);
* fault injection at the Nth matching request (:meth:`FakeServer.inject`):
  ``"500"``, ``"429"`` (with ``Retry-After: 1``), ``"reset"`` (the connection is
  reset with no response) and ``"delay"`` (the request is processed, the answer
  comes ``seconds`` later);
* one re-entrant lock, :attr:`FakeServer.lock`, that serialises all state changes.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

FaultKind = Literal["500", "429", "reset", "delay"]
FAULT_KINDS: tuple[str, ...] = ("500", "429", "reset", "delay")
Matcher = Callable[["Request"], bool] | tuple[str | None, str]


@dataclass
class Request:
    """An HTTP request as the fake sees it.

    ``path`` is the raw (still percent-encoded) path, without the query string and
    without the server's path prefix, if any.
    """

    method: str
    path: str
    query_lists: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def query(self) -> dict[str, str]:
        """Query parameters, the last value winning when a key repeats."""
        return {k: v[-1] for k, v in self.query_lists.items()}

    @property
    def content_type(self) -> str:
        """The media type of the body, without parameters, lower case."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def header(self, name: str, default: str = "") -> str:
        """A request header, looked up case-insensitively."""
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The body decoded as JSON (``None`` when empty)."""
        if not self.body:
            return None
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        """The body decoded as ``application/x-www-form-urlencoded``."""
        return parse_qs(self.body.decode(), keep_blank_values=True)

    def parsed_body(self) -> Any:
        """The body decoded according to its content type, for the request log."""
        if not self.body:
            return None
        ctype = self.content_type
        try:
            if ctype == "application/x-www-form-urlencoded":
                return {k: v[-1] if len(v) == 1 else v for k, v in self.form().items()}
            if "yaml" in ctype:
                import yaml

                return yaml.safe_load(self.body)
            if "json" in ctype or self.body[:1] in (b"{", b"["):
                return json.loads(self.body)
        except ValueError:
            pass
        return self.body.decode(errors="replace")


@dataclass
class Response:
    """What a handler answers. ``stream`` makes a chunked, streamed body (watches)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterable[bytes] | None = None

    @classmethod
    def json(cls, status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
        """A JSON response."""
        return cls(
            status,
            json.dumps(data).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )

    @classmethod
    def empty(cls, status: int = 204, headers: dict[str, str] | None = None) -> Response:
        """A response with no body (204 by default)."""
        return cls(status, b"", dict(headers or {}))


@dataclass
class RecordedRequest:
    """One entry of the request log."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    timestamp: float
    status: int | None = None
    fault: str | None = None
    duration: float = 0.0
    is_write: bool = False
    raw_body: bytes = b""

    def __repr__(self) -> str:
        fault = f" fault={self.fault}" if self.fault else ""
        return f"<{self.method} {self.path} -> {self.status}{fault}>"


@dataclass
class Fault:
    """A fault armed with :meth:`FakeServer.inject`; fires once, at the ``nth`` match."""

    kind: str
    nth: int
    match: Callable[[Request], bool]
    seconds: float
    seen: int = 0
    fired: bool = False

    def consider(self, request: Request) -> bool:
        """Count ``request`` if it matches; return True when this fault fires now."""
        if self.fired or not self.match(request):
            return False
        self.seen += 1
        if self.seen == self.nth:
            self.fired = True
            return True
        return False


def _matcher(match: Matcher | None) -> Callable[[Request], bool]:
    if match is None:
        return lambda _request: True
    if callable(match):
        return match
    method, path_regex = match
    pattern = re.compile(path_regex)

    def matches(request: Request) -> bool:
        if method not in (None, "*") and request.method != method.upper():
            return False
        return pattern.search(request.path) is not None

    return matches


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm
    # and the client's delayed ACK would add ~40 ms to every answer.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def _serve(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeServer, address: tuple[str, int]) -> None:
        self.fake = fake
        self.reset_sockets: set[socket.socket] = set()
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (it timed out, or a test stopped it) is not a fake bug.

        socketserver prints a traceback for every handler error. Under load a client's
        timeout can close the socket before the answer is written; that traceback would land
        in the output of the in-process CLI run that the test checks for tracebacks.
        """
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
            reset = request in self.reset_sockets
            self.reset_sockets.discard(request)
        if reset:
            # No shutdown(SHUT_WR) (that would send a FIN): SO_LINGER 0 + close = RST.
            request.close()
            return
        super().shutdown_request(request)


class FakeServer:
    """Base of the fakes: a real threaded HTTP server with a request log and faults.

    Args:
        latency_ms: Milliseconds slept before every request is processed.
        path_prefix: A path prefix the server is mounted under (e.g. ``/k8s``);
            requests outside it get 404. The prefix is stripped before routing and
            in the request log.
        host: Interface to bind, ``127.0.0.1`` by default.
        port: Port to bind, 0 (a free port) by default.
    """

    def __init__(
        self,
        *,
        latency_ms: float = 0,
        path_prefix: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.latency_ms = latency_ms
        self.path_prefix = path_prefix.rstrip("/")
        self.lock = threading.RLock()
        self._host = host
        self._port = port
        self._log: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve in a daemon thread. Returns self."""
        if self._httpd is not None:
            return self
        self.stopping.clear()
        self._httpd = _HTTPServer(self, (self._host, self._port))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"{type(self).__name__}-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and end streamed responses."""
        httpd = self._httpd
        if httpd is None:
            return
        self.stopping.set()
        self.on_stop()
        httpd.shutdown()
        httpd.server_close()
        with httpd.sockets_lock:
            sockets = list(httpd.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def on_stop(self) -> None:
        """Hook for subclasses: release waiters and timers before the server stops."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the server must be started)."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` plus the path prefix, without a trailing slash."""
        return f"http://{self._host}:{self.port}{self.path_prefix}"

    # -- request log ---------------------------------------------------------------

    @property
    def log(self) -> list[RecordedRequest]:
        """A copy of the whole request log, oldest first."""
        with self.lock:
            return list(self._log)

    def requests(
        self, method: str | None = None, path_prefix: str | None = None
    ) -> list[RecordedRequest]:
        """Logged requests, filtered by method and/or raw path prefix."""
        with self.lock:
            return [
                r
                for r in self._log
                if (method is None or r.method == method.upper())
                and (path_prefix is None or r.path.startswith(path_prefix))
            ]

    def writes(self) -> list[RecordedRequest]:
        """Requests that may change server state (see :meth:`is_write`)."""
        with self.lock:
            return [r for r in self._log if r.is_write]

    def reads(self) -> list[RecordedRequest]:
        """Requests that cannot change server state and are not watches."""
        with self.lock:
            return [r for r in self._log if not r.is_write and not self.is_watch(r)]

    def clear_log(self) -> None:
        """Forget every logged request."""
        with self.lock:
            self._log.clear()

    def is_write(self, request: Request) -> bool:
        """Whether ``request`` may change state; subclasses refine this."""
        return request.method not in ("GET", "HEAD", "OPTIONS")

    def is_watch(self, record: RecordedRequest) -> bool:
        """Whether a logged request is a long-lived watch (none in the base)."""
        return False

    # -- faults --------------------------------------------------------------------

    def inject(
        self,
        fault: str,
        *,
        nth: int = 1,
        match: Matcher | None = None,
        seconds: float = 5.0,
    ) -> Fault:
        """Arm a fault for the ``nth`` (1-based) request matching ``match``.

        Args:
            fault: ``"500"``, ``"429"`` (answered with ``Retry-After: 1``),
                ``"reset"`` (connection reset, no response) or ``"delay"``.
                500/429/reset requests are not processed (no state change); a
                delayed request is processed at once and answered ``seconds`` later.
            nth: Which matching request gets the fault, counted from now.
            match: ``None`` (every request), a callable taking a :class:`Request`,
                or a tuple ``(method or None, path_regex)``; the regex is searched
                (``re.search``) in the raw path without the query string.
            seconds: Delay of a ``"delay"`` fault.

        Returns:
            The armed :class:`Fault` (``fault.fired`` tells whether it happened).
        """
        if fault not in FAULT_KINDS:
            raise ValueError(f"unknown fault {fault!r}, expected one of {FAULT_KINDS}")
        if nth < 1:
            raise ValueError("nth is 1-based")
        armed = Fault(fault, nth, _matcher(match), seconds)
        with self.lock:
            self._faults.append(armed)
        return armed

    def clear_faults(self) -> None:
        """Disarm every fault not yet fired."""
        with self.lock:
            self._faults.clear()

    def fault_response(self, kind: str) -> Response:
        """The answer for a 500 or 429 fault; subclasses use their API's error shape."""
        if kind == "429":
            return Response.json(429, {"message": "Too Many Requests"}, {"Retry-After": "1"})
        return Response.json(500, {"message": "500 Internal Server Error"})

    # -- request handling ----------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer one request. Called with :attr:`lock` held (except streams)."""
        raise NotImplementedError

    def _read_body(self, handler: _Handler) -> bytes:
        if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    handler.rfile.readline()
                    break
                chunks.append(handler.rfile.read(size))
                handler.rfile.readline()
            return b"".join(chunks)
        length = int(handler.headers.get("Content-Length") or 0)
        return handler.rfile.read(length) if length else b""

    def _serve(self, handler: _Handler) -> None:
        started = time.monotonic()
        split = urlsplit(handler.path)
        body = self._read_body(handler)
        path = split.path
        in_prefix = (
            not self.path_prefix
            or path == self.path_prefix
            or path.startswith(self.path_prefix + "/")
        )
        if in_prefix:
            path = path[len(self.path_prefix) :] or "/"
        request = Request(
            method=handler.command,
            path=path,
            query_lists=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
        )
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=request.query,
            body=request.parsed_body(),
            headers=dict(request.headers),
            timestamp=time.time(),
            is_write=self.is_write(request),
            raw_body=body,
        )
        with self.lock:
            self._log.append(record)
            fault = next((f for f in self._faults if f.consider(request)), None)
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)

        if fault is not None and fault.kind == "reset":
            record.fault = "reset"
            record.duration = time.monotonic() - started
            self._reset(handler)
            return
        if fault is not None and fault.kind in ("500", "429"):
            response = self.fault_response(fault.kind)
            record.fault = fault.kind
        elif not in_prefix:
            response = Response.json(404, {"message": "404 Not Found"})
        else:
            try:
                with self.lock:
                    response = self.handle(request)
            except Exception as exc:  # a bug in the fake: answer 500, keep serving
                response = Response.json(
                    500, {"message": f"fake server error: {type(exc).__name__}: {exc}"}
                )
                record.fault = "bug"
                import traceback

                traceback.print_exc()
            if fault is not None and fault.kind == "delay":
                record.fault = "delay"
                time.sleep(fault.seconds)
        record.status = response.status
        try:
            self._send(handler, request, response)
        except OSError:
            handler.close_connection = True  # the client went away (e.g. timed out)
        record.duration = time.monotonic() - started

    def _reset(self, handler: _Handler) -> None:
        sock = handler.connection
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.close_connection = True
        httpd = self._httpd
        if httpd is not None:
            with httpd.sockets_lock:
                httpd.reset_sockets.add(sock)

    def _send(self, handler: _Handler, request: Request, response: Response) -> None:
        handler.send_response(response.status)
        headers = dict(response.headers)
        if response.stream is not None:
            headers["Transfer-Encoding"] = "chunked"
        else:
            headers["Content-Length"] = str(len(response.body))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if response.stream is not None:
            self._send_stream(handler, response.stream)
            return
        if request.method != "HEAD" and response.body:
            handler.wfile.write(response.body)
        handler.wfile.flush()

    @staticmethod
    def _send_stream(handler: _Handler, stream: Iterable[bytes]) -> None:
        iterator: Iterator[bytes] = iter(stream)
        try:
            for chunk in iterator:
                if chunk:
                    handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
