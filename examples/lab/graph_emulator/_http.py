"""A threaded HTTPS/1.1 server (standard library) and the request/response values it passes."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    method: str
    target: str  # path and query as sent
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    via_batch: bool = False

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    def query_params(self) -> list[tuple[str, str]]:
        # parse_qsl decodes %24 -> $ (kiota sends %24filter) and '+' -> space, as Graph does.
        return parse_qsl(self.query, keep_blank_values=True)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def json_response(
    status: int, payload: Any, headers: dict[str, str] | None = None, content_type: str = ""
) -> Response:
    all_headers = {"Content-Type": content_type or "application/json; charset=utf-8"}
    all_headers.update(headers or {})
    return Response(status, json.dumps(payload).encode("utf-8"), all_headers)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every response carries Content-Length
    # Buffered: headers and body leave in one write (handle_one_request flushes after each
    # request), one TLS record instead of two; unbuffered is the standard library's default.
    wbufsize = 64 * 1024
    server: _TlsServer

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        request = Request(
            method=self.command,
            target=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        response = self.server.app(request)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        try:
            return self.rfile.read(int(length)) if length else b""
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return None

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the emulator's request log instead."""


class _TlsServer(ThreadingHTTPServer):
    """One thread per connection; the TLS handshake runs in that thread, not in accept()."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self, address: tuple[str, int], context: ssl.SSLContext, app: Callable[[Request], Response]
    ) -> None:
        self.context = context
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(10)  # a client that never completes the handshake
        # As production HTTP servers do: without it, the body sent after the headers waits
        # for the client's delayed ACK (40 ms on Linux) on every kept-alive request.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return  # a client that does not trust the CA hangs up during the handshake
        tls.settimeout(30)
        with self._connections_lock:
            self._connections.add(tls)
        try:
            _Handler(tls, client_address, self)
        except (OSError, ssl.SSLError):
            pass  # the client went away
        finally:
            with self._connections_lock:
                self._connections.discard(tls)
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connection errors are the client's business; handler bugs surface as 500s."""

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class HttpsServer:
    """Serve `app` on `host` at `port` (0: a free one) in a daemon thread."""

    def __init__(
        self,
        certfile: str,
        keyfile: str,
        app: Callable[[Request], Response],
        host: str,
        port: int = 0,
    ) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certfile, keyfile)
        self._server = _TlsServer((host, port), context, app)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"graph-emulator-{self.port}",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(timeout=5)
