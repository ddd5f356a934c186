"""kannel://USER:PASSWORD@host:13013?from=MyShop sends through a Kannel gateway's smsbox
(`GET /cgi-bin/sendsms`, a `sendsms-user` of its configuration); `kannel+https://` when
the smsbox listens with TLS. Options in the query: `from` (the sender, else Kannel's
`global-sender`), `smsc` (force one of Kannel's SMSC ids), `dlr-mask` (default 27:
delivered, undelivered, accepted and rejected by the SMSC).

Kannel answers with a status line and no id of its own we could use later (its `%I`
differs between the reports of one message), so each message's `dlr-url` carries our own
reference and a token made from it and the sendsms password: /webhooks/kannel/dlr refuses
a report that does not come from someone holding the password.

What Kannel's answers prove (DESIGN §4; seen against Debian's Kannel 1.4.5):
- 202 "0: Accepted for delivery" or "3: Queued for later delivery": Kannel has it (a queued
  one leaves once its SMSC is connected again);
- 503 "Temporal failure, try again later.": not taken, retry later;
- 403 "Authorization failed for sendsms": the user or password is wrong (a configuration
  error, retryable once fixed); 403 "Not routable. Do not try again.": Kannel has no SMSC
  for this number (same);
- any other 4xx: Kannel refused this message (an empty or invalid number, a text too long
  for `max-messages`);
- 5xx, or no clear answer after the request left: ambiguous.
"""

from urllib.parse import parse_qs, unquote, urlencode

from django.conf import settings

from .. import segments
from . import http
from .base import Outcome, OutgoingSms, report_token

DEFAULT_DLR_MASK = 1 | 2 | 8 | 16
# A report's %d, in words: what /webhooks/kannel/dlr stores and reports.STATUS_WORDS reads.
DLR_WORDS = {"1": "delivered", "2": "undelivered", "4": "buffered", "8": "smsc_accepted", "16": "smsc_rejected",
             "32": "intermediate"}


class KannelConnector(http.HttpConnector):
    name = "kannel"
    reports = True

    def __init__(self, url) -> None:
        super().__init__(url)
        if not (url.username and url.password and url.hostname):
            raise ValueError("kannel:// needs a sendsms user, its password and the smsbox host: "
                             "kannel://USER:PASSWORD@host:13013?from=...")
        self.username, self.password = unquote(url.username), unquote(url.password)
        options = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.sender, self.smsc = options.get("from", ""), options.get("smsc", "")
        mask = options.get("dlr-mask", str(DEFAULT_DLR_MASK))
        if not mask.isdigit() or not 0 < int(mask) < 64:
            raise ValueError(f"kannel://...?dlr-mask={mask}: a sum of Kannel's DLR bits (1 to 63)")
        self.dlr_mask = mask
        scheme = "https" if url.scheme.endswith("+https") else "http"
        self.base_url = f"{scheme}://{url.hostname}:{url.port or 13013}"
        self.client = http.Client(self.base_url)
        self.dlr_base = f"{settings.CRMSMS_PUBLIC_URL.rstrip('/')}/webhooks/kannel/dlr"
        fixed = {"username": self.username, "password": self.password, "charset": "UTF-8", "dlr-mask": self.dlr_mask}
        if self.sender:
            fixed["from"] = self.sender
        if self.smsc:
            fixed["smsc"] = self.smsc
        self._fixed_query = urlencode(fixed)

    def dlr_url(self, reference: str) -> str:
        """Kannel calls it for each report; it fills in the %-escapes (status, time, the
        SMSC's id and answer). Our reference and token are plain query values."""
        ours = urlencode({"ref": reference, "token": report_token(self.password, reference)})
        return f"{self.dlr_base}?{ours}&status=%d&at=%T&smsc_id=%F&reply=%A"

    def sendsms_target(self, sms: OutgoingSms) -> str:
        """The sendsms request's path and query for `sms` (bench/dispatch_kannel.py sends the
        same ones). urlencode escapes every value: a "+" in `to` becomes %2B, not a space.
        What is the same for every message is escaped once (_fixed_query)."""
        query = urlencode({
            "to": sms.to, "text": sms.body,
            "coding": "2" if segments.measure(sms.body).encoding == segments.UCS2 else "0",
            "dlr-url": self.dlr_url(sms.reference),
        })
        return f"/cgi-bin/sendsms?{self._fixed_query}&{query}"

    def send(self, sms: OutgoingSms) -> Outcome:
        target = self.sendsms_target(sms)
        where = f"Kannel at {self.base_url}"
        response = http.call(where, lambda: self.client.get(target),
                             hint="Is Kannel's smsbox running, and is its sendsms-port the one in CRMSMS_SMS_URL?")
        if isinstance(response, Outcome):
            return response
        return self._outcome(response, where)

    def _outcome(self, response: http.Response, where: str) -> Outcome:
        status, text = response.status_code, response.text.strip()[:200]
        said = f"{where} answered HTTP {status} « {text} »"
        if status in (200, 202) and text[:2] in ("0:", "3:"):
            return Outcome.accepted("")
        if status == 503:
            return Outcome.retry_later("kannel_busy", f"{said}: it did not take the message.")
        if status == 403 and "authorization" in text.lower():
            return Outcome.failed("auth_failed", f"{said}. The username or password in CRMSMS_SMS_URL is not a "
                                                 "sendsms-user of Kannel's configuration.", retryable=True)
        if status == 403 and "routable" in text.lower():
            return Outcome.failed("not_routable", f"{said}: none of Kannel's SMSCs takes this number (check its "
                                                  "smsc groups and their allowed prefixes).", retryable=True)
        if 400 <= status < 500:
            return Outcome.failed(f"kannel_{status}", f"{said}.")
        return Outcome.ambiguous(f"provider_error_{status}", f"{said} after it received the message.")

