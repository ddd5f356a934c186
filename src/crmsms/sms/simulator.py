"""A fake SMS provider that speaks HTTP on loopback, so tests and benchmarks cross a real
HTTP hop (sockets, timeouts, keep-alive) instead of calling a Python object.

Standard library only. Started by ``crmsms simulator`` or, in-process, by `start_in_thread`.

Wire format (JSON in, JSON out; errors are ``{"error": {"code": ..., "message": ...}}``):

``POST /v1/messages``  body ``{"to": "+33612345678", "body": "...", "reference": "...",
    "callback_url": "http://..."}`` (callback_url optional)
    201 ``{"id": "SIM...", "status": "accepted"}``: accepted, logged.
    With a callback_url, delivery reports follow (see "Delivery reports" below).
    400 ``invalid_request`` (bad Content-Length) | ``invalid_json`` |
        ``invalid_number`` (``to`` is not E.164: ``^\\+[1-9]\\d{6,14}$``) | ``empty_body``.
    401 ``unauthorized``: a token is configured and ``Authorization: Bearer <token>`` is
        missing or wrong.
    429 ``throttled`` with ``Retry-After: 1``: not accepted (``throttle_rate``).
    500 ``internal_error``: not accepted (``error_rate``); the client cannot know that.
    ``timeout_rate``: the message IS accepted and logged, then the answer (201) waits
        ``hang_seconds``: the client times out after its request left.
``GET /v1/messages``  ``{"messages": [...]}``: accepted messages, in order, from memory.
``GET /health``  ``{"status": "ok"}`` (never needs the token).
``POST /admin/config``  any `SimulatorConfig` field(s), e.g. ``{"throttle_rate": 1.0}``;
    answers the whole new config. Setting ``seed`` re-seeds the random draws.
``POST /admin/reset``  clears the in-memory lists (not the log file).
``POST /admin/inbound``  ``{"from", "to", "text", "callback_url"}``: a person's SMS to us,
    POSTed (signed, like reports) to callback_url as ``{"id", "from", "to", "text", "at"}``.

When a token is configured, ``/v1/*`` and ``/admin/*`` need it.

Each accepted message is appended to ``log_path`` (JSON lines:
``{"id", "reference", "to", "body", "at"}``): the record of what the "provider" took, to
compare with what crmsms believes was sent. In memory, `SimulatorServer.requests` also lists
every valid ``POST /v1/messages`` with what it was answered (``{"reference", "answer"}``,
answer ``throttled``, ``error``, ``accepted`` or ``hung``), refused ones included: how often
a client sent each message, e.g. to check that it never resent an ambiguous one.

`SimulatorServer.stop` is a provider going down: the port refuses connections and the
connections kept alive are closed (the next request on them fails, none is served after).

Delivery reports: for a message sent with a ``callback_url``, the simulator POSTs
``{"id", "reference", "status", "error", "at"}`` to it: ``sent`` (the network took it)
after ``report_delay_ms``, then ``delivered``, or ``undelivered`` with an ``error``
(``undelivered_rate``), after twice that. Like real providers it may send a report twice
(``duplicate_report_rate``) or the final one before ``sent`` (``out_of_order_rate``), and
it retries a callback that fails (5 times, backing off). Each report is signed:
``X-Simulator-Signature: hex(HMAC-SHA256(secret, body))`` where the secret is the token.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import hmac
import json
import random
import re
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MAX_REQUEST_BYTES = 1024 * 1024  # an SMS request is tiny; refuse anything absurd


@dataclass(frozen=True)
class SimulatorConfig:
    latency_ms: float = 0.0  # added before answering POST /v1/messages
    error_rate: float = 0.0  # share of HTTP 500, message not accepted
    throttle_rate: float = 0.0  # share of HTTP 429 + Retry-After: 1, not accepted
    timeout_rate: float = 0.0  # share accepted and logged, then answered after hang_seconds
    hang_seconds: float = 30.0
    token: str | None = None  # bearer token; None = no authentication
    log_path: Path | None = None  # JSONL of accepted messages; None = memory only
    seed: int | None = None  # for repeatable draws
    report_delay_ms: float = 200.0  # "sent" after this, the final report after twice this
    undelivered_rate: float = 0.0  # share of reports "undelivered" instead of "delivered"
    duplicate_report_rate: float = 0.0  # share of final reports sent twice
    out_of_order_rate: float = 0.0  # share whose final report comes before "sent"

    def __post_init__(self) -> None:
        for name in ("error_rate", "throttle_rate", "timeout_rate", "undelivered_rate",
                     "duplicate_report_rate", "out_of_order_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {getattr(self, name)}")
        if self.latency_ms < 0 or self.hang_seconds < 0 or self.report_delay_ms < 0:
            raise ValueError("latency_ms, hang_seconds and report_delay_ms cannot be negative")

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["log_path"] = str(self.log_path) if self.log_path else None
        return data


# Types accepted by POST /admin/config, per field (JSON has no Path; ints are valid floats).
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "latency_ms": (int, float), "error_rate": (int, float), "throttle_rate": (int, float),
    "timeout_rate": (int, float), "hang_seconds": (int, float),
    "token": (str, type(None)), "log_path": (str, type(None)), "seed": (int, type(None)),
    "report_delay_ms": (int, float), "undelivered_rate": (int, float),
    "duplicate_report_rate": (int, float), "out_of_order_rate": (int, float),
}


def sign(secret: str, body: bytes) -> str:
    """The signature of a delivery report (X-Simulator-Signature)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Reporter:
    """Sends delivery reports at their time, from a few threads, retrying failed callbacks."""

    RETRIES = 5

    def __init__(self, server: "SimulatorServer", threads: int = 4) -> None:
        self.server = server
        self.queue: list[tuple[float, int, str, dict[str, Any], int]] = []  # a heap by due time
        self.counter = 0
        self.ready = threading.Condition()
        for i in range(threads):
            threading.Thread(target=self._run, name=f"simulator-reports-{i}", daemon=True).start()

    def schedule(self, record: dict[str, str], callback_url: str, config: SimulatorConfig) -> None:
        delay = config.report_delay_ms / 1000
        final = "delivered"
        error = None
        if self.server.draw() < config.undelivered_rate:
            final, error = "undelivered", {"code": "absent_subscriber", "message": "The phone was off for 48 h."}
        reports = [(delay, "sent", None), (2 * delay, final, error)]
        if self.server.draw() < config.out_of_order_rate:
            reports = [(delay, final, error), (2 * delay, "sent", None)]
        if self.server.draw() < config.duplicate_report_rate:
            reports.append((3 * delay, final, error))
        for after, status, err in reports:
            payload = {"id": record["id"], "reference": record["reference"], "status": status, "error": err}
            self._push(time.monotonic() + after, callback_url, payload, 0)

    def push_now(self, url: str, payload: dict[str, Any]) -> None:
        self._push(time.monotonic(), url, payload, 0)

    def _push(self, due: float, url: str, payload: dict[str, Any], tries: int) -> None:
        with self.ready:
            self.counter += 1
            heapq.heappush(self.queue, (due, self.counter, url, payload, tries))
            self.ready.notify()

    def _run(self) -> None:
        while not self.server.stopping.is_set():
            with self.ready:
                while not self.queue or self.queue[0][0] > time.monotonic():
                    timeout = self.queue[0][0] - time.monotonic() if self.queue else 0.5
                    self.ready.wait(max(0.001, min(timeout, 0.5)))
                    if self.server.stopping.is_set():
                        return
                due, _, url, payload, tries = heapq.heappop(self.queue)
            self._send(url, payload, tries)

    def _send(self, url: str, payload: dict[str, Any], tries: int) -> None:
        body = json.dumps({**payload, "at": datetime.now(UTC).isoformat()}).encode()
        headers = {"Content-Type": "application/json"}
        secret = self.server.config.token
        if secret:
            headers["X-Simulator-Signature"] = sign(secret, body)
        try:
            with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=10) as answer:
                ok = 200 <= answer.status < 300
        except (urllib.error.URLError, OSError):
            ok = False
        if not ok and tries < self.RETRIES:
            self._push(time.monotonic() + 0.5 * 2 ** tries, url, payload, tries + 1)


class SimulatorServer(ThreadingHTTPServer):
    # Benchmarks open many connections at once; the default backlog (5) would refuse some,
    # which the connector would (rightly) report as retry_later and skew the numbers.
    request_queue_size = 1024
    daemon_threads = True  # a hanging answer must not keep the process alive

    def __init__(self, address: tuple[str, int], config: SimulatorConfig) -> None:
        super().__init__(address, SimulatorHandler)
        self.config = config
        self.rng = random.Random(config.seed)
        self.lock = threading.Lock()  # guards config, rng, messages and the log file
        self.messages: list[dict[str, str]] = []
        self.requests: list[dict[str, str]] = []  # every valid POST /v1/messages and its answer
        self.connections: set[socket.socket] = set()  # open client connections, closed by stop()
        self.connections_lock = threading.Lock()
        self.stopping = threading.Event()  # wakes hanging answers on shutdown
        self.reporter = Reporter(self)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def draw(self) -> float:
        with self.lock:
            return self.rng.random()

    def received(self, reference: str, answer: str) -> None:
        with self.lock:
            self.requests.append({"reference": reference, "answer": answer})

    def accept(self, to: str, body: str, reference: str) -> dict[str, str]:
        record = {
            "id": f"SIM{uuid.uuid4().hex}", "reference": reference, "to": to, "body": body,
            "at": datetime.now(UTC).isoformat(),
        }
        with self.lock:
            if self.config.log_path is not None:
                # Opened per message: cheap next to an HTTP round trip, and the file stays
                # readable (and complete) while the simulator runs. Written first, so a
                # failed write leaves no message in memory that the log lacks.
                with open(self.config.log_path, "a", encoding="utf-8") as log:
                    log.write(json.dumps(record, ensure_ascii=False) + "\n")
                    log.flush()
            self.messages.append(record)
        return record

    def reconfigure(self, changes: dict[str, Any]) -> SimulatorConfig:
        if "log_path" in changes and changes["log_path"] is not None:
            changes = {**changes, "log_path": Path(changes["log_path"])}
            changes["log_path"].parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            self.config = dataclasses.replace(self.config, **changes)  # validates
            if "seed" in changes:
                self.rng.seed(self.config.seed)
            return self.config

    def process_request(self, request, client_address) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def stop(self) -> None:
        """Stop a server started by `start_in_thread` (from another thread), as a provider
        goes down: new connections are refused, and the ones kept alive are closed (their
        handler threads would otherwise go on serving them after the stop)."""
        self.stopping.set()
        self.shutdown()
        with self.connections_lock:
            still_open = list(self.connections)
        for connection in still_open:
            try:
                connection.shutdown(socket.SHUT_RDWR)  # the handler reads EOF and ends
            except OSError:
                pass  # already closed by the client or the handler
        self.server_close()


class SimulatorHandler(BaseHTTPRequestHandler):
    server: SimulatorServer
    # HTTP/1.1 keeps connections alive, like a real provider: the connector's pool reuses
    # them, so benchmarks measure requests, not TCP handshakes.
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle's algorithm on, the body waits for
    # the client's delayed ACK (~40 ms), which would cap a keep-alive client at ~25 req/s.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would drown benchmark output

    # --- plumbing -----------------------------------------------------------------------
    def _answer(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout after a hang): expected, nothing to do.
            self.close_connection = True

    def _error(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self._answer(status, {"error": {"code": code, "message": message}}, headers)

    def _authorized(self) -> bool:
        token = self.server.config.token
        if token is None or self.headers.get("Authorization") == f"Bearer {token}":
            return True
        self._error(
            401, "unauthorized", "missing or wrong token (Authorization: Bearer <token>)"
        )
        return False

    # --- routes -------------------------------------------------------------------------
    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(200, {"status": "ok"})
        elif self.path == "/v1/messages":
            if self._authorized():
                with self.server.lock:
                    messages = list(self.server.messages)
                self._answer(200, {"messages": messages})
        else:
            self._error(404, "not_found", f"no route GET {self.path}")

    def do_POST(self) -> None:
        # Read the whole body before answering anything, so a kept-alive connection stays in
        # step even when we refuse the request.
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_REQUEST_BYTES:
            self.close_connection = True  # the body was not read: the stream is unusable
            self._error(400, "invalid_request", f"Content-Length must be 0..{MAX_REQUEST_BYTES}")
            return
        raw = self.rfile.read(length) if length else b""
        routes = {
            "/v1/messages": self._post_message,
            "/admin/config": self._post_config,
            "/admin/reset": self._post_reset,
            "/admin/inbound": self._post_inbound,
        }
        route = routes.get(self.path)
        if route is None:
            self._error(404, "not_found", f"no route POST {self.path}")
            return
        if not self._authorized():
            return
        try:
            payload = json.loads(raw or b"null")
        except json.JSONDecodeError as exc:
            self._error(400, "invalid_json", f"request body is not JSON: {exc}")
            return
        route(payload)

    def _post_inbound(self, payload: Any) -> None:
        if not isinstance(payload, dict) or not all(isinstance(payload.get(k), str)
                                                    for k in ("from", "text", "callback_url")):
            self._error(400, "invalid_json", 'expected {"from", "to", "text", "callback_url"} strings')
            return
        inbound = {"id": f"SIMMO{uuid.uuid4().hex}", "from": payload["from"], "to": payload.get("to") or "",
                   "text": payload["text"]}
        self.server.reporter.push_now(payload["callback_url"], inbound)
        self._answer(202, inbound)

    def _post_reset(self, payload: Any) -> None:
        with self.server.lock:
            self.server.messages.clear()
            self.server.requests.clear()
        self._answer(200, {"status": "reset"})

    def _post_message(self, payload: Any) -> None:
        config = self.server.config  # one snapshot per request, even if /admin/config runs
        if config.latency_ms:
            time.sleep(config.latency_ms / 1000)
        if not isinstance(payload, dict):
            self._error(400, "invalid_json", 'expected an object {"to", "body", "reference"}')
            return
        to, body, reference = payload.get("to"), payload.get("body"), payload.get("reference", "")
        callback_url = payload.get("callback_url")
        if callback_url is not None and not (isinstance(callback_url, str)
                                             and callback_url.startswith(("http://", "https://"))):
            self._error(400, "invalid_callback_url", "callback_url must be an http(s) URL")
            return
        if not isinstance(to, str) or not E164.match(to):
            self._error(
                400, "invalid_number",
                f"destination {to!r} is not an E.164 number like +33612345678",
            )
            return
        if not isinstance(body, str) or not body:
            self._error(400, "empty_body", "the message body is empty")
            return
        if not isinstance(reference, str):
            self._error(400, "invalid_json", "reference must be a string")
            return
        # One draw per message split into bands, so each rate is the share it names (when
        # they add up to at most 1) and a seeded run makes the same choices again.
        draw = self.server.draw()
        if draw < config.throttle_rate:
            self.server.received(reference, "throttled")
            self._error(429, "throttled", "too many requests, retry later", {"Retry-After": "1"})
            return
        draw -= config.throttle_rate
        if draw < config.error_rate:
            self.server.received(reference, "error")
            self._error(500, "internal_error", "simulated provider failure; message not accepted")
            return
        draw -= config.error_rate
        hang = draw < config.timeout_rate
        self.server.received(reference, "hung" if hang else "accepted")
        record = self.server.accept(to, body, reference)
        if callback_url:
            self.server.reporter.schedule(record, callback_url, config)
        if hang:
            # Accepted and logged, then silence: the client times out after its request
            # left, which is exactly the case crmsms must record as "unknown".
            self.server.stopping.wait(config.hang_seconds)
        self._answer(201, {"id": record["id"], "status": "accepted"})

    def _post_config(self, payload: Any) -> None:
        if not isinstance(payload, dict):
            self._error(400, "invalid_json", "expected an object of SimulatorConfig fields")
            return
        for name, value in payload.items():
            if name not in _FIELD_TYPES:
                known = ", ".join(_FIELD_TYPES)
                self._error(400, "unknown_field", f"{name!r} is not one of {known}")
                return
            if not isinstance(value, _FIELD_TYPES[name]) or isinstance(value, bool):
                self._error(400, "invalid_config", f"{name}: wrong type {type(value).__name__}")
                return
        try:
            config = self.server.reconfigure(payload)
        except ValueError as exc:
            self._error(400, "invalid_config", str(exc))
            return
        self._answer(200, config.to_json())


def make_server(config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0) -> SimulatorServer:
    """Bind (port 0 = a free port) without serving yet."""
    if config.log_path is not None:
        Path(config.log_path).parent.mkdir(parents=True, exist_ok=True)
    return SimulatorServer((host, port), config)


def serve(
    config: SimulatorConfig,
    host: str = "127.0.0.1",
    port: int = 9090,
    on_ready: Callable[[SimulatorServer], None] | None = None,
) -> None:
    """Serve until KeyboardInterrupt/SystemExit (raised in this thread), then close.

    `on_ready` is called once bound, e.g. to print the actual port when `port` is 0."""
    server = make_server(config, host, port)
    try:
        if on_ready is not None:
            on_ready(server)
        server.serve_forever()
    finally:
        server.stopping.set()
        server.server_close()


def start_in_thread(
    config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> tuple[SimulatorServer, threading.Thread, int]:
    """Serve in a daemon thread; returns (server, thread, port). Stop with ``server.stop()``."""
    server = make_server(config or SimulatorConfig(), host, port)
    # A short poll interval makes stop() quick, which keeps test teardowns fast.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05},
        name="crmsms-simulator", daemon=True,
    )
    thread.start()
    return server, thread, server.port
