"""The sandbox's HTTP side: a real HTTP (or HTTPS) server answering both profiles of the SUMIT
API and the control API (``/_sandbox/...``, see the package docstring).

Why a real server: the sync's hard parts (retries, timeouts, paging guards, protocol errors,
keeping the API key secret) only show up over a socket, so tests and demos talk HTTP to this
instead of mocking the client.

``SandboxHTTPServer`` answers over a ``SandboxState`` (state.py), one thread per connection;
``SandboxServer`` runs it on a daemon thread for in-process use. Every line it writes to
stderr is scrubbed of the API key as a last guard.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from crmsync.sandbox.encoding import JSON_TYPE, encode, parse_json
from crmsync.sandbox.faults import MALFORMED_BODIES, SandboxInputError, failed_answer, rate_limited_answer
from crmsync.sandbox.guide import LIST_PATH, UPDATE_PATH
from crmsync.sandbox.state import API_PATHS, SandboxState

# LIST_PATH and UPDATE_PATH (the guide profile's) and SandboxState stay importable from here.
__all__ = ["LIST_PATH", "UPDATE_PATH", "SandboxHTTPServer", "SandboxServer", "SandboxState", "tls_context"]

CONTROL_PREFIX = "/_sandbox/"
VERBOSE_BODY_CHARS = 2000  # a verbose log line shows this much of a request body


# -- HTTP ---------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """One connection. HTTP/1.1 keep-alive, like the real API behind a load balancer."""

    server: SandboxHTTPServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; with Nagle's algorithm on, the body waits for
        # the client's delayed ACK (40 ms on Linux) and every call would look 40 ms slower.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)  # before the handshake, so stop() also ends a stalled one
        self._secured = self._handshake()

    def _handshake(self) -> bool:
        """Over TLS, the handshake happens here, in this connection's own thread: a client that
        refuses the certificate (or stalls) costs its connection and one log line, never the
        server. False when it failed; then nothing is read or answered."""
        if not isinstance(self.connection, ssl.SSLSocket):
            return True
        try:
            self.connection.do_handshake()
        except OSError as error:  # ssl.SSLError is one; its reason is an OpenSSL code, never a secret
            reason = getattr(error, "reason", None) or type(error).__name__
            self.server.emit(f"TLS handshake with {self.client_address[0]} failed: {reason}")
            return False
        return True

    def handle(self) -> None:
        if self._secured:
            super().handle()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        """Silenced: ``_log`` writes the one line per request, key-free."""

    # -- plumbing ---------------------------------------------------------------------------

    def _log(self, status: int | None, body: Any = None) -> None:
        """One stderr line per request, written before the answer: once a client holds the
        answer, the line exists (tests read it without waiting)."""
        elapsed_ms = 1000 * (time.monotonic() - self._started)
        line = f"{self.command} {self.path} {status if status else 'dropped'} {elapsed_ms:.1f}ms"
        if self.server.verbose and body is not None:
            text = json.dumps(self.server.state.redact(body), ensure_ascii=False)
            line += " " + text[:VERBOSE_BODY_CHARS] + ("..." if len(text) > VERBOSE_BODY_CHARS else "")
        self.server.emit(line)

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, encode(payload), JSON_TYPE)

    def _read_body(self) -> bytes | None:
        """The request body, or None when its length is unknowable (then the connection closes)."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            return None
        return self.rfile.read(length)

    def _handle(self, route: Any) -> None:
        """Run ``route``; a sandbox bug answers 500 (and logs why) rather than a silent hang-up."""
        self._started = time.monotonic()
        try:
            route()
        except (ConnectionError, ssl.SSLError):
            self.close_connection = True  # the client went away (e.g. it timed out on a hang)
        except Exception as error:  # noqa: BLE001 - reported to the client and the log
            self.close_connection = True
            self.server.emit(f"{self.command} {self.path} sandbox error: {type(error).__name__}: {error}")
            try:
                self._send_json(500, {"error": f"sandbox error: {type(error).__name__}"})
            except OSError:
                pass

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self._handle(self._get)

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self._handle(self._post)

    def _get(self) -> None:
        if self.path.startswith(CONTROL_PREFIX):
            self._control(True, None)
            return
        status = 405 if _route(self.path) in API_PATHS else 404
        self._log(status)
        self._send_json(status, self.server.state.failure(f"{self.path} answers POST only" if status == 405
                                                          else f"Unknown endpoint {self.path}"))

    def _post(self) -> None:
        raw = self._read_body()
        if raw is not None and not self.path.startswith(CONTROL_PREFIX):
            self.server.state.record_sent(self.path, raw)
        parsed, body = parse_json(raw)
        if self.path.startswith(CONTROL_PREFIX):
            self._control(parsed, body)
        else:
            self._api(parsed, body)

    # -- the API ----------------------------------------------------------------------------

    def _api(self, parsed: bool, body: Any) -> None:
        state = self.server.state
        path = _route(self.path)
        with state.lock:  # rate_limit first: a refused request takes no counted fault and is not carried out
            limited = not state.faults.admit(time.monotonic())
        fault = None if limited else state.take_fault(path)
        delay = state.latency_seconds()
        if fault and fault[0] == "hang_next":
            delay += fault[1]["seconds"]
            fault = None  # a hang then answers normally
        if delay:
            time.sleep(delay)
        if fault and fault[0] == "drop_next":
            self._drop(body)
            return
        status, content_type, data, headers = (rate_limited_answer() if limited
                                                else self._api_answer(path, parsed, body, fault))
        if fault and fault[0] == "drop_after_next":
            self._drop(body)  # the request was carried out; only its answer is lost
            return
        state.record_request(self.path, status, body)
        self._log(status, body)
        self._send(status, data, content_type, headers)

    def _drop(self, body: Any) -> None:
        """Close the connection without any HTTP answer (logged with status 0)."""
        self.server.state.record_request(self.path, 0, body)
        self._log(None, body)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _api_answer(self, path: str, parsed: bool, body: Any,
                    fault: tuple[str, dict[str, Any]] | None) -> tuple[int, str, bytes, dict[str, str]]:
        state = self.server.state
        if fault and fault[0] == "fail_next":
            return failed_answer(fault[1])
        if fault and fault[0] == "malformed_next":
            kind = fault[1]["kind"]
            if kind == "missing_customers":
                return 200, JSON_TYPE, encode(state.success()), {}
            content_type, data = MALFORMED_BODIES[kind]
            return 200, content_type, data, {}
        if not parsed:
            return 400, JSON_TYPE, encode(state.failure("Request body is not valid JSON")), {}
        if not isinstance(body, dict):
            return 400, JSON_TYPE, encode(state.failure("Request body must be a JSON object")), {}
        status, envelope = state.answer(path, body)
        return status, JSON_TYPE, encode(envelope), {}

    # -- the control API --------------------------------------------------------------------

    def _control(self, parsed: bool, body: Any) -> None:
        """Answer ``/_sandbox/...``: no credentials, JSON in and out, HTTP 400 for bad input."""
        state = self.server.state
        routes = {
            ("GET", "customers"): lambda _: {"customers": state.all_customers(), "archived": state.archived_ids()},
            ("GET", "faults"): lambda _: state.current_knobs(),
            ("GET", "requests"): lambda _: {"requests": state.requests()},
            ("GET", "sent"): lambda _: {"sent": state.sent()},
            ("GET", "stats"): lambda _: state.stats(),
            ("POST", "reset"): lambda b: {"ids": state.reset(_list_field(b, "customers", required=False))},
            ("POST", "customers"): lambda b: {"ids": state.add_customers(_list_field(b, "customers"))},
            ("POST", "customers/delete"): lambda b: {"deleted": state.delete(_list_field(b, "ids"))},
            ("POST", "customers/edit"): lambda b: {"edited": state.edit(_list_field(b, "changes"))},
            ("POST", "customers/archive"): lambda b: {"archived": state.archive(_list_field(b, "ids"))},
            ("GET", "triggers"): lambda _: state.triggers_report(),
            ("POST", "triggers/clear"): lambda _: {"removed": state.clear_triggers()},
            ("POST", "raw"): lambda b: {"raw_records": state.add_raw(_list_field(b, "records"))},
            ("POST", "faults"): lambda b: state.set_knobs(_object(b)),
        }
        name = _route(self.path)[len(CONTROL_PREFIX):].strip("/")
        route = routes.get((self.command, name))
        if not parsed:
            status, payload = 400, {"error": "the request body is not valid JSON"}
        elif route is None:
            known = any(path == name for _, path in routes)
            status, payload = (405, {"error": f"{self.path} does not answer {self.command}"}) if known else (
                404, {"error": f"unknown control endpoint {self.path}"})
        else:
            try:
                status, payload = 200, route(body)
            except SandboxInputError as error:
                status, payload = 400, {"error": str(error)}
        self._log(status, body if self.command == "POST" else None)
        self._send_json(status, payload)


def _route(path: str) -> str:
    """The path a request is routed by: no query string, one trailing slash."""
    return path.split("?", 1)[0].rstrip("/") + "/"


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise SandboxInputError("the request body must be a JSON object")
    return body


def _list_field(body: Any, name: str, *, required: bool = True) -> list[Any]:
    value = _object(body).get(name)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise SandboxInputError(f"{name!r} must be a list")
    return value


def tls_context(cert: str | os.PathLike[str], key: str | os.PathLike[str]) -> ssl.SSLContext:
    """A server-side TLS context holding this certificate (chain) and unencrypted key (PEM);
    ValueError saying why when they cannot be used."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key, password=_no_password)
    except (OSError, ValueError) as error:  # a missing file; ssl.SSLError: not PEM, a key that does not fit
        raise ValueError(f"cannot serve TLS with certificate {cert} and key {key}: "
                         f"{getattr(error, 'strerror', None) or error}") from None
    return context


def _no_password() -> bytes:
    """Called for an encrypted key: without it OpenSSL would prompt on the terminal (and wait)."""
    raise ValueError("the key is encrypted; the sandbox takes an unencrypted one")


class SandboxHTTPServer(ThreadingHTTPServer):
    """The HTTP side: one thread per connection, open connections tracked so stop() ends them;
    HTTPS when given a TLS context."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: SandboxState, verbose: bool = False,
                 tls: ssl.SSLContext | None = None):
        self.state = state
        state.triggers.emit = self.emit  # trigger deliveries log here too, scrubbed like every line
        self.verbose = verbose
        self.tls = tls is not None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._emit_lock = threading.Lock()
        super().__init__(address, _Handler)
        if tls is not None:
            # accept() then only wraps each connection; _Handler.setup does its handshake in
            # that connection's thread, so a slow or refusing client cannot block accept().
            self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """End idle keep-alive connections, whose threads would otherwise outlive the server."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def emit(self, line: str) -> None:
        """Write one log line to stderr, scrubbed of the API key, never interleaved."""
        with self._emit_lock:
            sys.stderr.write(self.state.scrub(line) + "\n")
            sys.stderr.flush()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished mid-request is routine here (timeouts, drops): one line, no traceback."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError):
            self.emit(f"connection from {client_address[0]} failed: {type(error).__name__}: {error}")


class SandboxServer:
    """The sandbox in this process, served from a daemon thread.

    ``with SandboxServer(api_key="k", status_style="numeric") as sandbox: sandbox.url``.
    ``options`` are ``SandboxState`` settings (status_style, list_shape, numeric_ids,
    max_page_size, customers_folder) and start-time knobs (latency_ms, ignore_paging,
    fail_next, ...). ``tls_cert`` and ``tls_key`` (PEM files, both or neither) make it serve
    HTTPS; ``url`` then starts with ``https://``.
    """

    POLL_SECONDS = 0.05  # how fast stop() returns: serve_forever checks for shutdown this often

    def __init__(self, host: str = "127.0.0.1", port: int = 0, company_id: int = 1000, api_key: str = "sandbox-key",
                 *, verbose: bool = False, tls_cert: str | os.PathLike[str] | None = None,
                 tls_key: str | os.PathLike[str] | None = None, **options: Any):
        self.state = SandboxState(company_id=company_id, api_key=api_key, **options)
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both or neither")
        tls = None if tls_cert is None or tls_key is None else tls_context(tls_cert, tls_key)
        self.httpd = SandboxHTTPServer((host, port), self.state, verbose=verbose, tls=tls)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{'https' if self.httpd.tls else 'http'}://{host}:{port}"

    def start(self) -> SandboxServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self.httpd.serve_forever, args=(self.POLL_SECONDS,),
                                            name="sumit-sandbox", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()  # only valid while serve_forever runs: it waits for the loop to end
            self._thread.join()
            self._thread = None
        self.httpd.close_connections()
        self.httpd.server_close()
        self.state.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
