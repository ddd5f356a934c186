"""The providers' HTTP client (sms/providers/http.py) against real sockets: a kept-alive
connection the server closed while idle is replaced before a request is written to it (a
request written there could be lost without a trace, and would turn its message Unknown);
each thread keeps its own connection; proxies from the environment are used as curl would."""

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crmsms.sms.providers import http
from crmsms.sms.providers.base import AMBIGUOUS, RETRY_LATER


class Recorder(BaseHTTPRequestHandler):
    """Answers every request with 200 and what it saw; keeps connections alive (HTTP/1.1)
    unless the server's `close_after_answer` says to close them after answering, silently
    (no Connection: close), as a server does with an idle connection it times out."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self._answer()

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        self.server.seen.append({"line": self.requestline, "body": body, "peer": self.client_address,
                                 "authorization": self.headers.get("Authorization"),
                                 "type": self.headers.get("Content-Type"),
                                 "proxy_authorization": self.headers.get("Proxy-Authorization")})
        payload = b'{"id": "ok"}'
        close = self.server.close_after_answer  # read before answering: the test changes it then
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()
        if close:
            self.close_connection = True

    def finish(self):
        super().finish()
        self.server.closed.set()  # this connection is closed on the server's side

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    httpd.seen, httpd.close_after_answer, httpd.closed = [], False, threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def base(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_a_connection_closed_by_the_server_while_idle_is_replaced_before_sending(server):
    client = http.Client(base(server))
    server.close_after_answer = True
    first = client.post("/v1/messages", json={"to": "+33612345678"})
    server.close_after_answer = False
    assert server.closed.wait(5)  # the server closed that connection; the client must notice before writing
    threading.Event().wait(0.05)  # (the FIN reaches the client's socket)
    second = client.post("/v1/messages", json={"to": "+33698765432"})
    assert (first.status_code, second.status_code) == (200, 200) and second.json() == {"id": "ok"}
    assert [s["body"] for s in server.seen] == ['{"to":"+33612345678"}', '{"to":"+33698765432"}']
    assert server.seen[0]["peer"] != server.seen[1]["peer"]  # a new connection
    client.close()


def test_a_connection_idle_for_long_is_not_used_again(server, monkeypatch):
    """A server may close an idle connection at its keep-alive timeout just as a request is
    written to it: past IDLE_SECONDS the client connects anew instead."""
    client = http.Client(base(server))
    client.get("/one")
    client.get("/two")
    monkeypatch.setattr(http, "IDLE_SECONDS", 0.0)
    client.get("/three")
    first, second, third = (s["peer"] for s in server.seen)
    assert first == second != third


def test_a_request_http_cannot_carry_is_not_sent(server):
    """Refused before anything is written: retry later (the message was provably not
    received), not Unknown, and not an exception that would lose the batch's outcomes."""
    client = http.Client(base(server), headers={"Authorization": "Bearer jeton-€"})  # not Latin-1
    outcome = http.call("the provider", lambda: client.post("/x", data={}))
    assert outcome.kind == RETRY_LATER and outcome.code == "invalid_request"
    outcome = http.call("the provider", lambda: http.Client(base(server)).get("/a path with spaces"))
    assert outcome.kind == RETRY_LATER and outcome.code == "invalid_request"
    assert server.seen == []


def test_kept_alive_per_thread_forms_params_and_basic_auth(server):
    client = http.Client(base(server), auth=("AC1", "s3cret"))
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: client.post("/form", data={"To": "+336", "Body": f"n°{i} a b"}), range(40)))
    peers = {s["peer"] for s in server.seen}
    assert len(server.seen) == 40 and len(peers) <= 4  # one connection per thread, kept
    assert server.seen[0]["authorization"] == "Basic QUMxOnMzY3JldA=="
    assert server.seen[0]["type"] == "application/x-www-form-urlencoded"
    assert "To=%2B336" in server.seen[0]["body"] and "+a+b" in server.seen[0]["body"]
    client.get("/cgi-bin/sendsms", params={"to": "+33612345678", "text": "é"})
    assert server.seen[-1]["line"] == "GET /cgi-bin/sendsms?to=%2B33612345678&text=%C3%A9 HTTP/1.1"
    client.close()


def test_no_server_is_not_sent_and_a_silent_one_is_maybe_sent():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    outcome = http.call("nobody", lambda: http.Client(f"http://127.0.0.1:{port}").get("/"))
    assert outcome.kind == RETRY_LATER and outcome.code == "connection_refused"
    with socket.socket() as silent:  # accepts, reads, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        client = http.Client(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.5)
        outcome = http.call("a silent server", lambda: client.post("/", json={}))
    assert outcome.kind == AMBIGUOUS and outcome.code == "timeout"


def clear_proxies(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_http_proxy_from_the_environment(server, monkeypatch):
    """HTTP_PROXY: the request goes to the proxy, naming the whole URL (here the recorder
    plays the proxy); NO_PROXY sends it straight."""
    clear_proxies(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", base(server).replace("http://", "http://squid:p%40ss@"))
    http.Client("http://kannel.example:13013").get("/cgi-bin/sendsms", params={"to": "+33"})
    assert server.seen[-1]["line"] == "GET http://kannel.example:13013/cgi-bin/sendsms?to=%2B33 HTTP/1.1"
    assert server.seen[-1]["proxy_authorization"] == "Basic c3F1aWQ6cEBzcw=="  # squid:p@ss
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    http.Client(base(server)).get("/direct")
    assert server.seen[-1]["line"] == "GET /direct HTTP/1.1"


def test_https_proxy_tunnels_and_a_failed_tunnel_is_not_sent(monkeypatch):
    """HTTPS_PROXY: a CONNECT tunnel to the provider, TLS inside it. A proxy that refuses the
    tunnel means nothing reached the provider: retry later."""
    seen = []

    class Refusing(BaseHTTPRequestHandler):
        def do_CONNECT(self):
            seen.append(self.requestline)
            self.send_error(403)

        def log_message(self, *args):
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        clear_proxies(monkeypatch)
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        client = http.Client("https://api.twilio.example")
        outcome = http.call("Twilio", lambda: client.post("/2010-04-01/Accounts/AC1/Messages.json", data={}))
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert seen == ["CONNECT api.twilio.example:443 HTTP/1.0"]
    assert outcome.kind == RETRY_LATER


def test_a_proxy_of_another_kind_is_refused_by_name(monkeypatch):
    clear_proxies(monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(ValueError, match="HTTPS_PROXY=socks5://127.0.0.1:1080: only http:// proxies"):
        http.Client("https://api.twilio.example")
