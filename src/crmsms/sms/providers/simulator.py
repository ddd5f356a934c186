"""simulator://[TOKEN@]host:port talks plain HTTP to `crmsms.sms.simulator` (``crmsms
simulator``), so tests and benchmarks cross a real HTTP hop.

Each answer is mapped to what it proves (DESIGN §4): only answers that prove the simulator
did not take the message (connection refused, 429) are retry_later; anything that may have
reached it without a clear answer (timeouts after sending, 5xx) is ambiguous. Details say
what happened; the dispatcher adds what it means for the message (not resent).
"""

from typing import Any
from urllib.parse import unquote

from django.conf import settings

from . import http
from .base import Outcome, OutgoingSms

DEFAULT_PORT = 9090  # the `crmsms simulator` default


class SimulatorConnector(http.HttpConnector):
    name = "simulator"
    user_is_secret = True  # simulator://TOKEN@host

    def __init__(self, url) -> None:
        super().__init__(url)
        if not url.hostname:
            raise ValueError("simulator:// needs a host, e.g. simulator://TOKEN@127.0.0.1:9090")
        host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname  # IPv6
        self.base_url = f"http://{host}:{url.port or DEFAULT_PORT}"
        self.token = unquote(url.username) if url.username else None
        # Delivery reports come back signed with the token: without one they could not be
        # told from forged ones, so none are asked for.
        self.reports = bool(self.token)
        self.callback_url = f"{settings.CRMSMS_PUBLIC_URL.rstrip('/')}/webhooks/simulator/"
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.client = http.Client(self.base_url, headers=headers)

    def send(self, sms: OutgoingSms) -> Outcome:
        where = f"the simulator at {self.base_url}"
        request = {"to": sms.to, "body": sms.body, "reference": sms.reference}
        if self.reports:
            request["callback_url"] = self.callback_url
        response = http.call(where, lambda: self.client.post("/v1/messages", json=request),
                             hint="Is it running? Start it with `crmsms simulator`, or fix the host and port "
                                  "in CRMSMS_SMS_URL.")
        if isinstance(response, Outcome):
            return response
        return self._outcome(response, where)

    def _outcome(self, response: http.Response, where: str) -> Outcome:
        status = response.status_code
        if 200 <= status < 300:
            provider_id = _json_field(response, "id")
            if isinstance(provider_id, str) and provider_id:
                return Outcome.accepted(provider_id)
            # Taken, but without an id we cannot tie delivery reports or duplicates to it:
            # record it as unknown rather than claim a clean send.
            return Outcome.ambiguous(
                "invalid_response",
                f"HTTP {status} from {where} without a message id.",
            )
        if status == 429:
            return Outcome.retry_later(
                "throttled",
                f"Throttled by {where} (HTTP 429).",
                retry_after=_retry_after(response),
            )
        if status >= 500:
            return Outcome.ambiguous(
                f"provider_error_{status}",
                f"HTTP {status} from {where} after it received the message.",
            )
        if status in (401, 403):
            return Outcome.failed(
                "auth_failed",
                f"Our credentials were refused by {where} (HTTP {status}). Check the token in "
                "CRMSMS_SMS_URL (simulator://TOKEN@host:port) matches the simulator's --token.",
                retryable=True,  # nothing left: once the token is fixed, it can go
            )
        if 400 <= status < 500:
            error = _json_field(response, "error")
            error = error if isinstance(error, dict) else {}
            return Outcome.failed(
                str(error.get("code") or f"http_{status}"),
                str(error.get("message") or f"Refused by {where} (HTTP {status})."),
            )
        # 1xx/3xx: not part of the simulator's protocol; we cannot tell what happened.
        return Outcome.ambiguous(
            f"unexpected_status_{status}",
            f"Unexpected HTTP {status} from {where}: check that CRMSMS_SMS_URL "
            "points at a crmsms simulator.",
        )



def _json_field(response: http.Response, name: str) -> Any:
    """`name` from a JSON object body, or None when the body is not one."""
    try:
        data = response.json()
    except ValueError:  # not JSON (json.JSONDecodeError, UnicodeDecodeError)
        return None
    return data.get(name) if isinstance(data, dict) else None


def _retry_after(response: http.Response) -> float | None:
    """Retry-After in seconds; the HTTP-date form is not used by the simulator."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None
