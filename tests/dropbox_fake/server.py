"""The HTTPS server and ``FakeDropbox``, the object tests drive and inspect.

One process-wide port serves all four Dropbox hosts (api, content, notify, www):
the SDK fixes its hosts when ``dropbox.session`` is imported, so the port must be
known first; ``prebound_listener`` and ``sdk_environment`` exist for that.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import socket
import ssl
import sys
import tempfile
import threading
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import urlsplit

import trustme

from .accounts import Directory
from .api import Reply, Request, handle, text_reply
from .faults import Fault, Faults
from .state import Ids, LookupFailure, Namespace

SDK_HOST_VARIABLES = (
    "DROPBOX_API_HOST",
    "DROPBOX_API_CONTENT_HOST",
    "DROPBOX_API_NOTIFY_HOST",
    "DROPBOX_WEB_HOST",
)


@functools.cache
def prebound_listener() -> socket.socket:
    """This process's one listening socket: bound early, served once a fake starts."""
    return socket.create_server(("127.0.0.1", 0), backlog=128)


def sdk_environment(sock: socket.socket) -> dict[str, str]:
    """The variables that point the SDK (and child processes) at the fake on ``sock``."""
    host = f"127.0.0.1:{sock.getsockname()[1]}"
    session = sys.modules.get("dropbox.session")
    if session is not None and getattr(session, "API_HOST", None) != host:
        raise RuntimeError("dropbox was imported before its hosts could point at the fake")
    return dict.fromkeys(SDK_HOST_VARIABLES, host)


T = TypeVar("T")
_QUIET = (ConnectionError, TimeoutError, ssl.SSLError)
_LOOKUP_ERRORS = {
    "not_found": FileNotFoundError,
    "not_folder": NotADirectoryError,
    "not_file": IsADirectoryError,
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections to Dropbox
    server: _TLSServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        route = url.path[3:] if url.path.startswith("/2/") else url.path.lstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            reply = handle(self.server.fake, Request(method, route, url.query, self.headers, body))
        except Exception:
            traceback.print_exc()
            reply = text_reply(500, "the fake Dropbox crashed: see the test's stderr")
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("X-Dropbox-Request-Id", secrets.token_hex(16))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        body = memoryview(reply.body)
        if reply.truncate:
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True  # hang up without TLS close_notify, mid-body
            return
        for start in range(0, len(body), 1 << 16):
            self.wfile.write(body[start : start + (1 << 16)])


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, fake: FakeDropbox) -> None:
        super().__init__(sock.getsockname(), _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        host, port = sock.getsockname()[:2]
        self.server_address = (host, port)
        self.server_name, self.server_port = host, port
        self.context = context
        self.fake = fake
        self.accepted = 0
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """TLS handshakes happen here, in the connection's own thread, not the accept loop."""
        try:
            # Headers and body go out in separate writes: without this, Nagle's
            # algorithm and the client's delayed ACK add ~40 ms to every call.
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request.settimeout(10)
            conn = self.context.wrap_socket(request, server_side=True)
            conn.settimeout(None)
        except OSError:
            request.close()
            return
        with self._open_lock:
            self._open.add(conn)
            self.accepted += 1
        try:
            super().process_request_thread(conn, client_address)
        finally:
            with self._open_lock:
                self._open.discard(conn)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], _QUIET):
            super().handle_error(request, client_address)

    def hang_up_all(self) -> None:
        """Ends idle keep-alive connections so their threads finish."""
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class FakeDropbox:
    """A local Dropbox API v2 that the real, unmodified SDK talks to over HTTPS."""

    page_size: int
    latency: dict[str, float]
    longpoll_backoff: int | None
    longpoll_time_scale: float
    authorize_as: str | None

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._ids = Ids()  # kept across reset(): ids are never reused
        self._tmp = tempfile.TemporaryDirectory(prefix="dropbox-fake-")
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_path = os.path.join(self._tmp.name, "ca.pem")
        ca.cert_pem.write_to_path(self.ca_path)
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.minimum_version = ssl.TLSVersion.TLSv1_2
        cert.configure_cert(self._context)
        self._server: _TLSServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.calls: Counter[str] = Counter()
        self.downloads: list[tuple[str, str, str]] = []
        self.reset()

    # -- lifecycle --------------------------------------------------------------------

    def start(self, sock: socket.socket | None = None) -> FakeDropbox:
        if self._server is not None:
            raise RuntimeError("already started")
        if sock is None:
            sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._stopping = False
        self._server = _TLSServer(sock, self._context, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="dropbox-fake", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Final: closes the socket, ends open long-polls and connections, removes the CA file."""
        server, self._server = self._server, None
        if server is None:
            return
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        server.shutdown()
        server.server_close()
        server.hang_up_all()
        if self._thread is not None:
            self._thread.join(5)
        self._tmp.cleanup()

    @property
    def host(self) -> str:
        if self._server is None:
            raise RuntimeError("not started")
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def connections(self) -> int:
        """TLS connections accepted so far (keep-alive keeps this well below the call count)."""
        return 0 if self._server is None else self._server.accepted

    def reset(self) -> None:
        """Forget everything, so each test starts from an empty Dropbox."""
        with self._changed:
            self._epoch = secrets.token_hex(8)  # cursors from before answer `reset`
            self._dir = Directory(self._ids)
            self._faults = Faults()
            self._hooks: defaultdict[str, list[Callable[[], object]]] = defaultdict(list)
            self.calls.clear()
            self.downloads.clear()
            self.latency = {}
            self.page_size = 500
            self.longpoll_backoff = None
            self.longpoll_time_scale = 1.0
            self.authorize_as = None
            self._changed.notify_all()

    # -- accounts and tokens ------------------------------------------------------------

    def add_app(self, key: str, secret: str) -> None:
        with self._lock:
            self._dir.apps[key] = secret

    def add_account(self, email: str = "a@example.com", display_name: str = "Ann") -> str:
        with self._lock:
            return self._dir.add_account(email, display_name).account_id

    def access_token(self, account_id: str, expires_in: int = 14400) -> str:
        with self._lock:
            return self._dir.issue_access(account_id, expires_in)

    def refresh_token(self, account_id: str, app_key: str, *, pkce: bool = False) -> str:
        """With ``pkce=True`` the token refreshes without a client_secret, like a PKCE grant's."""
        with self._lock:
            return self._dir.issue_refresh(account_id, app_key, pkce=pkce)

    def expire_access_tokens(self, account_id: str | None = None) -> None:
        with self._lock:
            self._dir.expire(account_id)

    def approve(self, authorize_url: str, account_id: str) -> str:
        with self._lock:
            return self._dir.approve(authorize_url, account_id)

    # -- files --------------------------------------------------------------------------

    def _files(self, account_id: str) -> Namespace:
        return self._dir.account(account_id).files

    def _change(self, account_id: str, fn: Callable[[Namespace], T]) -> T:
        with self._changed:
            try:
                result = fn(self._files(account_id))
            except LookupFailure as exc:
                raise _LOOKUP_ERRORS.get(exc.tag, ValueError)(exc.tag) from None
            self._changed.notify_all()
            return result

    def mkdir(self, account_id: str, path: str) -> str:
        return self._change(account_id, lambda ns: ns.mkdir(path).id)

    def put(
        self,
        account_id: str,
        path: str,
        data: bytes,
        client_modified: datetime | str | None = None,
    ) -> dict[str, object]:
        return self._change(account_id, lambda ns: ns.put(path, data, client_modified).metadata())

    def move(self, account_id: str, src: str, dst: str) -> dict[str, object]:
        return self._change(account_id, lambda ns: ns.move(src, dst).metadata())

    def delete(self, account_id: str, path: str) -> None:
        self._change(account_id, lambda ns: ns.delete(path))

    def metadata(self, account_id: str, path_or_id: str) -> dict[str, object] | None:
        with self._lock:
            try:
                node = self._files(account_id).resolve(path_or_id)
            except LookupFailure:
                return None
            return None if node is None else node.metadata()

    def _root(self, root: str) -> str:
        return "" if root in ("", "/") else root.rstrip("/").lower()

    def tree(self, account_id: str, root: str = "") -> dict[str, bytes]:
        with self._lock:
            return self._files(account_id).tree(self._root(root))

    def folders(self, account_id: str, root: str = "") -> set[str]:
        with self._lock:
            return self._files(account_id).folders(self._root(root))

    # -- faults and hooks --------------------------------------------------------------

    def fail(self, route: str, kind: str, times: int = 1, **opts: Any) -> Fault:
        fault = Fault(route, kind, times, **opts)
        with self._lock:
            self._faults.add(fault)
        return fault

    def reset_cursors(self, account_id: str) -> None:
        with self._changed:
            self._dir.account(account_id).cursor_generation += 1
            self._changed.notify_all()

    def on_download(self, path_lower: str, fn: Callable[[], object]) -> None:
        """``fn()`` runs once, in the next download of that path, between capture and send."""
        with self._lock:
            self._hooks[path_lower.lower()].append(fn)
