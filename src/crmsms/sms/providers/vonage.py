"""vonage://API_KEY:API_SECRET@rest.nexmo.com?from=MyShop sends through Vonage's SMS API
(`POST /sms/json`); `vonage+http://` talks plain HTTP to the given host, for a local test
server.

Our reference goes in `client-ref`, and each message's `callback` (its delivery reports,
one per part) carries a token made from our reference and the API secret, so a report
that does not come from someone holding the secret is refused (/webhooks/vonage/dlr).

Vonage answers one entry per part of the message, each with a status: all "0" is accepted
(the first part's id kept); the same refusal for every part is mapped from its status (1
throttled: retry later; 3 invalid parameters, 6 invalid message, 7 number barred, 29 not
whitelisted, 33 deactivated number: failed; 2/4/8/9/11/15/23/32 — missing parameters, bad
credentials, account barred, out of credit, not enabled, bad sender, bad callback: failed,
retryable once the account is fixed; 5 internal error: ambiguous); parts answered
differently mean some part may have left: ambiguous, never resent blindly.
"""

from urllib.parse import parse_qs, unquote

from django.conf import settings

from . import http
from .base import Outcome, OutgoingSms, report_token

_RECIPIENT = {"3": "invalid_params", "6": "invalid_message", "7": "number_barred", "29": "not_whitelisted",
              "33": "number_deactivated"}
_CONFIGURATION = {"2": "missing_params", "4": "auth_failed", "8": "account_barred", "9": "out_of_credit",
                  "11": "http_not_enabled", "15": "invalid_sender", "23": "invalid_callback", "32": "signature_refused"}


class VonageConnector(http.HttpConnector):
    name = "vonage"
    reports = True

    def __init__(self, url) -> None:
        super().__init__(url)
        if not (url.username and url.password):
            raise ValueError("vonage:// needs the API key and secret: vonage://KEY:SECRET@rest.nexmo.com?from=...")
        self.api_key, self.api_secret = unquote(url.username), unquote(url.password)
        self.sender = {k: v[0] for k, v in parse_qs(url.query).items()}.get("from", "")
        if not self.sender:
            raise ValueError("vonage:// needs ?from= (a number or an alphanumeric sender)")
        scheme = "http" if url.scheme.endswith("+http") else "https"
        host = url.hostname or "rest.nexmo.com"
        self.base_url = f"{scheme}://{host}{f':{url.port}' if url.port else ''}"
        self.client = http.Client(self.base_url)
        self.callback_base = f"{settings.CRMSMS_PUBLIC_URL.rstrip('/')}/webhooks/vonage/dlr"

    def send(self, sms: OutgoingSms) -> Outcome:
        where = f"Vonage at {self.base_url}"
        form = {
            "api_key": self.api_key, "api_secret": self.api_secret, "from": self.sender,
            "to": sms.to.removeprefix("+"),  # Vonage wants digits only
            "text": sms.body, "type": "text" if sms.body.isascii() else "unicode",
            "client-ref": sms.reference, "status-report-req": "1",
            "callback": f"{self.callback_base}?token={report_token(self.api_secret, sms.reference)}",
        }
        response = http.call(where, lambda: self.client.post("/sms/json", data=form))
        if isinstance(response, Outcome):
            return response
        return self._outcome(response, where)

    def _outcome(self, response: http.Response, where: str) -> Outcome:
        if response.status_code == 429:
            return Outcome.retry_later("throttled", f"{where} answered HTTP 429.")
        if response.status_code >= 500:
            return Outcome.ambiguous(f"provider_error_{response.status_code}",
                                     f"{where} answered HTTP {response.status_code} after it received the message.")
        try:
            parts = response.json().get("messages")
        except (ValueError, AttributeError):
            parts = None
        if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) for p in parts):
            return Outcome.ambiguous("invalid_response", f"{where} answered HTTP {response.status_code} without "
                                                         "the status of each part.")
        statuses = {str(p.get("status")) for p in parts}
        first = parts[0]
        detail = f"Vonage status {first.get('status')}: {first.get('error-text') or 'no error text'}"
        if statuses == {"0"}:
            return Outcome.accepted(str(first.get("message-id") or ""))
        if len(statuses) > 1:
            return Outcome.ambiguous("partly_accepted", f"Vonage took some parts of the message and not others "
                                                        f"({', '.join(sorted(statuses))}); {detail}.")
        status = statuses.pop()
        if status == "1":
            return Outcome.retry_later("throttled", detail)
        if status in _RECIPIENT:
            return Outcome.failed(_RECIPIENT[status], detail)
        if status in _CONFIGURATION:
            return Outcome.failed(_CONFIGURATION[status], f"{detail}. Check the API key, secret, sender and "
                                                          "account in CRMSMS_SMS_URL.", retryable=True)
        return Outcome.ambiguous(f"vonage_{status}", detail)

