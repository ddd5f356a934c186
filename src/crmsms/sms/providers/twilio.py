"""twilio://ACCOUNT_SID:AUTH_TOKEN@api.twilio.com?from=+15551234567 (or
?messaging_service_sid=MG...) sends through Twilio's Messages API; `twilio+http://` talks
plain HTTP to the given host, for a local test server.

Each message carries a StatusCallback with our own reference, so Twilio's delivery reports
(sent, delivered, undelivered, failed) find it (webhook: /webhooks/twilio/status). Answers
are mapped to what they prove (DESIGN §4), from Twilio's error codes:

- 201: accepted, Twilio's SID kept;
- 429 or error 20429 (too many requests), a connection that never opened: retry later;
- 21211 (invalid 'To'), 21614 (not a mobile), 21612/21408 (cannot route there): failed;
- 21610 (the recipient replied STOP to this sender): failed, and the number is opted out
  everywhere, as if they had replied STOP to us;
- 20003 (authentication), 21606/21659 (bad 'From'), 20404 (no such account): failed, but
  retryable once the configuration is fixed;
- 5xx, or no answer after the request left: ambiguous (never resent blindly).
"""

from urllib.parse import parse_qs, unquote

from django.conf import settings

from . import http
from .base import UNSUBSCRIBED, Outcome, OutgoingSms

_RECIPIENT_ERRORS = {21211: "invalid_number", 21614: "not_mobile", 21612: "unreachable", 21408: "region_not_enabled",
                     21610: UNSUBSCRIBED}
_CONFIGURATION_ERRORS = {20003: "auth_failed", 20404: "no_such_account", 21606: "invalid_from",
                         21659: "invalid_from", 21603: "missing_from"}


class TwilioConnector(http.HttpConnector):
    name = "twilio"
    reports = True

    def __init__(self, url) -> None:
        super().__init__(url)
        if not (url.username and url.password):
            raise ValueError("twilio:// needs the account SID and auth token: twilio://SID:TOKEN@api.twilio.com?from=...")
        self.account_sid, self.auth_token = unquote(url.username), unquote(url.password)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.sender = {"From": query["from"]} if "from" in query else \
            {"MessagingServiceSid": query.get("messaging_service_sid", "")}
        if not any(self.sender.values()):
            raise ValueError("twilio:// needs ?from=+1555... or ?messaging_service_sid=MG...")
        scheme = "http" if url.scheme.endswith("+http") else "https"
        host = url.hostname or "api.twilio.com"
        self.base_url = f"{scheme}://{host}{f':{url.port}' if url.port else ''}"
        self.client = http.Client(self.base_url, auth=(self.account_sid, self.auth_token))
        self.callback_base = f"{settings.CRMSMS_PUBLIC_URL.rstrip('/')}/webhooks/twilio/status"

    def send(self, sms: OutgoingSms) -> Outcome:
        where = f"Twilio at {self.base_url}"
        form = {"To": sms.to, "Body": sms.body, **self.sender,
                "StatusCallback": f"{self.callback_base}?ref={sms.reference}"}
        response = http.call(where, lambda: self.client.post(f"/2010-04-01/Accounts/{self.account_sid}/Messages.json", data=form))
        if isinstance(response, Outcome):
            return response
        return self._outcome(response, where)

    def _outcome(self, response: http.Response, where: str) -> Outcome:
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        status = response.status_code
        if status in (200, 201) and isinstance(body.get("sid"), str) and body["sid"]:
            return Outcome.accepted(body["sid"])
        code = body.get("code")
        message = str(body.get("message") or f"HTTP {status}")
        detail = f"Twilio error {code}: {message}" if code else f"{where} answered HTTP {status}: {message}"
        if status == 429 or code == 20429:
            retry_after = response.headers.get("Retry-After")
            return Outcome.retry_later("throttled", detail, retry_after=float(retry_after)
                                       if retry_after and retry_after.isdigit() else None)
        if status >= 500 or status < 400:
            return Outcome.ambiguous(f"provider_error_{status}", detail)
        if code in _RECIPIENT_ERRORS:
            return Outcome.failed(_RECIPIENT_ERRORS[code], detail)
        if code in _CONFIGURATION_ERRORS or status in (401, 403):
            return Outcome.failed(_CONFIGURATION_ERRORS.get(code, "auth_failed"),
                                  f"{detail} Check the account SID, auth token and sender in CRMSMS_SMS_URL.",
                                  retryable=True)
        return Outcome.failed(f"twilio_{code}" if code else f"http_{status}", detail)

