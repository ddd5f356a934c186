"""HTTP for the providers reached over it (the simulator, Twilio, Vonage, Kannel), and what a
request proves when it fails on the way (DESIGN §4): a request that never left (no
connection) was provably not taken, so it is retried later; one that left without a clear
answer (a timeout after sending, a connection broken mid-answer) may have been taken, so it
is ambiguous and never resent blindly.

Built on the standard library's http.client, one kept-alive connection per calling thread:
httpx cost four times the CPU per request (0.9 against 0.22 ms here), and its connection
pool, shared by all the calling threads, was their main point of contention.
"""

import base64
import http.client
import json as jsonlib
import select
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from urllib.parse import unquote, urlencode, urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment

from django.conf import settings

from .base import Connector, Outcome

# A kept-alive connection idle for longer is not used again: a server closing it at its own
# keep-alive timeout (5 s for Apache) could close it just as a request is written to it,
# and that request would be lost without a trace (its message Unknown).
IDLE_SECONDS = 2.0


class NotSent(Exception):
    """The request provably did not leave (no connection could be made)."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code


class MaybeSent(Exception):
    """The request may have reached the provider, without a clear answer."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code


@dataclass
class Response:
    status_code: int
    headers: Message  # case-insensitive .get()
    content: bytes

    def json(self):
        """The body as JSON; ValueError if it is not."""
        return jsonlib.loads(self.content)

    @property
    def text(self) -> str:
        try:
            return self.content.decode(self.headers.get_content_charset() or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", errors="replace")


class Client:
    """Requests to one provider's base URL. Each thread keeps its own connection alive
    between requests: no lock between the threads calling at once. Honours HTTPS_PROXY,
    HTTP_PROXY and NO_PROXY."""

    def __init__(self, base_url: str, *, auth: tuple[str, str] | None = None, headers: dict | None = None,
                 timeout: float | None = None):
        url = urlsplit(base_url)
        self.scheme, self.host = url.scheme, url.hostname or ""
        self.port = url.port or (443 if self.scheme == "https" else 80)
        self.timeout = float(settings.CRMSMS_PROVIDER_TIMEOUT if timeout is None else timeout)
        # Connecting is quick on a working network: a short connect timeout fails fast (retry
        # later) instead of holding a sending thread for the whole answer timeout.
        self.connect_timeout = min(3.0, self.timeout)
        self.headers = {"User-Agent": "crmsms", **(headers or {})}
        if auth:
            self.headers["Authorization"] = _basic(*auth)
        self.proxy, proxy_auth = _proxy_for(self.scheme, self.host)
        self.proxy_headers = {"Proxy-Authorization": proxy_auth} if proxy_auth else {}
        # One context per client: building one loads the system's certificates (SSL_CERT_FILE
        # points elsewhere).
        self.tls = ssl.create_default_context() if self.scheme == "https" else None
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()  # guards _all only: taken once per new connection

    def get(self, path: str, params: dict | None = None) -> Response:
        # urlencode escapes every value: a "+" in a number as %2B (a raw "+" reads as a space).
        return self.request("GET", f"{path}?{urlencode(params)}" if params else path)

    def post(self, path: str, *, json=None, data: dict | None = None) -> Response:
        if json is not None:
            body, kind = jsonlib.dumps(json, separators=(",", ":")).encode(), "application/json"
        else:
            body, kind = urlencode(data or {}).encode(), "application/x-www-form-urlencoded"
        return self.request("POST", path, body, {"Content-Type": kind})

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Response:
        connection = self._connection()
        tunnelled = not self.proxy or self.scheme == "https"
        target = path if tunnelled else f"http://{self.host}:{self.port}{path}"
        headers = {**self.headers, **({} if tunnelled else self.proxy_headers), **(headers or {})}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        try:  # the request line and headers, checked and encoded: nothing is written yet
            connection.putrequest(method, target)
            for name, value in headers.items():
                connection.putheader(name, value)
        except (ValueError, http.client.HTTPException) as exc:  # a character HTTP cannot carry, a bad path
            self._drop(connection)
            raise NotSent("invalid_request", f"the request could not be written ({exc})") from None
        try:
            connection.endheaders(body)
            answer = connection.getresponse()
            content = answer.read()
        except TimeoutError:
            self._drop(connection)
            raise MaybeSent("timeout", f"no answer within {self.timeout:g}s after sending") from None
        except (OSError, http.client.HTTPException) as exc:
            self._drop(connection)
            raise MaybeSent("connection_lost", f"the connection broke after sending "
                                               f"({exc.__class__.__name__}: {exc})") from None
        if answer.will_close:
            self._drop(connection)
        else:
            self._local.idle_since = time.monotonic()
        return Response(answer.status, answer.headers, content)

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is not None and (time.monotonic() - self._local.idle_since > IDLE_SECONDS
                                       or not _still_open(connection)):
            self._drop(connection)  # the server closed it, or may be about to
            connection = None
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
            with self._lock:
                self._all.append(connection)
        return connection

    def _connect(self) -> http.client.HTTPConnection:
        host, port = self.proxy or (self.host, self.port)
        if self.scheme == "https":
            connection = http.client.HTTPSConnection(host, port, timeout=self.connect_timeout, context=self.tls)
            if self.proxy:
                connection.set_tunnel(self.host, self.port, headers=self.proxy_headers)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self.connect_timeout)
        try:
            connection.connect()  # TCP, the proxy's tunnel, TLS: nothing of the request has left
        except TimeoutError:
            connection.close()
            raise NotSent("connect_timeout", f"could not connect in {self.connect_timeout:g}s") from None
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise NotSent("connection_refused", f"could not connect ({exc})") from None
        connection.sock.settimeout(self.timeout)
        return connection

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        if getattr(self._local, "connection", None) is connection:
            self._local.connection = None
        with self._lock:
            if connection in self._all:
                self._all.remove(connection)

    def close(self) -> None:
        """Close every thread's connection (the worker is stopping)."""
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()


def _still_open(connection: http.client.HTTPConnection) -> bool:
    """An idle kept-alive connection has nothing to read: if it has, the server closed it
    (or broke the protocol), and a request written to it could be lost without a trace."""
    if connection.sock is None:
        return False
    poller = select.poll()
    poller.register(connection.sock, select.POLLIN)
    return not poller.poll(0)


def _proxy_for(scheme: str, host: str) -> tuple[tuple[str, int] | None, str]:
    """The proxy the environment names for `scheme` (HTTPS_PROXY, HTTP_PROXY; NO_PROXY
    excepted), and its Proxy-Authorization if it has credentials."""
    if proxy_bypass_environment(host):
        return None, ""
    proxy = getproxies_environment().get(scheme)
    if not proxy:
        return None, ""
    url = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if url.scheme != "http":
        raise ValueError(f"{scheme.upper()}_PROXY={proxy}: only http:// proxies are supported")
    auth = _basic(unquote(url.username), unquote(url.password or "")) if url.username else ""
    return (url.hostname or "", url.port or 80), auth


def _basic(user: str, password: str) -> str:
    """HTTP Basic credentials (UTF-8, as providers take them)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class HttpConnector(Connector):
    """A provider reached over HTTP: `self.client` keeps a connection alive per calling
    thread, and a batch has up to CRMSMS_PROVIDER_CONCURRENCY calls in flight."""

    client: Client | None = None

    def __init__(self, url) -> None:
        super().__init__(url)
        self.concurrency = max(1, settings.CRMSMS_PROVIDER_CONCURRENCY)

    def close(self) -> None:
        super().close()
        if self.client is not None:
            self.client.close()


def call(where: str, request: Callable[[], Response], *, hint: str = "") -> Response | Outcome:
    """`request()`'s response, or the Outcome its failure proves. `hint` says what to check
    when the provider cannot be reached at all."""
    try:
        return request()
    except NotSent as exc:
        return Outcome.retry_later(exc.code, f"Could not connect to {where}: {exc}. {hint}".strip())
    except MaybeSent as exc:
        return Outcome.ambiguous(exc.code, f"{where}: {exc}.")
