"""A local server speaking Twilio's Messages API wire format, for tests (Twilio itself
cannot be reached from here): form-encoded requests with HTTP Basic auth, JSON answers and
error bodies as Twilio sends them, and StatusCallbacks (sent, then delivered) signed with
the official `twilio` package's RequestValidator."""

import base64
import json
import re
import threading
import time
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from twilio.request_validator import RequestValidator

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class FakeTwilio(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, account_sid: str, auth_token: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.account_sid, self.auth_token = account_sid, auth_token
        self.errors: dict[str, tuple[int, int, str]] = {}  # To -> (HTTP status, Twilio code, message)
        self.throttle_next = 0  # answer 429 to the next N requests
        self.final_status = "delivered"
        self.received: list[dict[str, str]] = []
        self.callbacks: list[tuple[str, int]] = []  # (status, our answer)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def callback(self, url: str, params: dict[str, str]) -> None:
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        request = urllib.request.Request(url, urllib.parse.urlencode(params).encode(),
                                         {"X-Twilio-Signature": signature,
                                          "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                self.callbacks.append((params["MessageStatus"], answer.status))
        except urllib.error.HTTPError as error:
            self.callbacks.append((params["MessageStatus"], error.code))
        except urllib.error.URLError:  # nobody listening (a test without a web server)
            self.callbacks.append((params["MessageStatus"], 0))


class _Handler(BaseHTTPRequestHandler):
    server: FakeTwilio
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 429:
            self.send_header("Retry-After", "1")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: int, message: str) -> None:
        self._json(status, {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                            "status": status})

    def do_POST(self):
        server = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        if self.path != f"/2010-04-01/Accounts/{server.account_sid}/Messages.json":
            return self._error(404, 20404, "The requested resource was not found")
        expected = "Basic " + base64.b64encode(f"{server.account_sid}:{server.auth_token}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            return self._error(401, 20003, "Authenticate")
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
        if server.throttle_next > 0:
            server.throttle_next -= 1
            return self._error(429, 20429, "Too Many Requests")
        to = form.get("To", "")
        if to in server.errors:
            return self._error(*server.errors[to])
        if not E164.match(to):
            return self._error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        sid = "SM" + uuid.uuid4().hex
        server.received.append({**form, "sid": sid})
        self._json(201, {"sid": sid, "status": "queued", "to": to, "from": form.get("From"), "body": form.get("Body"),
                         "account_sid": server.account_sid, "num_segments": "1", "api_version": "2010-04-01"})
        if form.get("StatusCallback"):
            threading.Thread(target=self._report, args=(form, sid), daemon=True).start()

    def _report(self, form: dict, sid: str) -> None:
        for status in ("sent", self.server.final_status):
            time.sleep(0.05)
            params = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
                      "AccountSid": self.server.account_sid, "To": form["To"], "From": form.get("From", ""),
                      "ApiVersion": "2010-04-01"}
            if status == "undelivered":
                params["ErrorCode"] = "30005"
            self.server.callback(form["StatusCallback"], params)
