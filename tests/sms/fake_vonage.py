"""A local server speaking Vonage's SMS API wire format, for tests (Vonage itself cannot
be reached from here): `POST /sms/json` with form fields, one answer entry per part with
its status and error text, and a delivery receipt per part sent to the `callback` URL
(GET with query parameters, as Vonage does by default)."""

import json
import threading
import time
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import smsutil


class FakeVonage(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api_key: str, api_secret: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api_key, self.api_secret = api_key, api_secret
        self.statuses: dict[str, list[tuple[str, str]]] = {}  # to -> (status, error text) per part
        self.received: list[dict[str, str]] = []
        self.receipts: list[tuple[str, int]] = []  # (status, our answer)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    server: FakeVonage
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _json(self, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)  # Vonage answers 200 even for refusals: the status is per part
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        server = self.server
        form = {k: v[0] for k, v in urllib.parse.parse_qs(
            self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()).items()}
        to = form.get("to", "")
        parts = len(smsutil.split(form.get("text", "")).parts) or 1
        if (form.get("api_key"), form.get("api_secret")) != (server.api_key, server.api_secret):
            answers = [("4", "Bad Credentials")] * parts
        else:
            answers = server.statuses.get(to) or [("0", "")] * parts
        entries = []
        for status, error in answers:
            entry = {"to": to, "status": status}
            if status == "0":
                entry.update({"message-id": uuid.uuid4().hex[:16], "remaining-balance": "3.14",
                              "message-price": "0.0333", "network": "20810"})
            else:
                entry["error-text"] = error
            entries.append(entry)
        server.received.append(form)
        self._json({"message-count": str(len(entries)), "messages": entries})
        accepted = [e for e in entries if e["status"] == "0"]
        if accepted and form.get("callback"):
            threading.Thread(target=self._receipts, args=(form, accepted), daemon=True).start()

    def _receipts(self, form: dict, parts: list[dict]) -> None:
        for part in parts:
            time.sleep(0.05)
            params = {"msisdn": form["to"], "to": form.get("from", ""), "network-code": "20810",
                      "messageId": part["message-id"], "price": "0.0333", "status": "delivered",
                      "scts": "2611261200", "err-code": "0", "client-ref": form.get("client-ref", ""),
                      "message-timestamp": "2026-11-26 12:00:00"}
            url = form["callback"] + "&" + urllib.parse.urlencode(params)
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    self.server.receipts.append((params["status"], answer.status))
            except urllib.error.HTTPError as error:
                self.server.receipts.append((params["status"], error.code))
            except urllib.error.URLError:  # nobody listening (a test without a web server)
                self.server.receipts.append((params["status"], 0))
