"""The connector contract: what every provider module implements (DESIGN §4).

A connector gets outgoing messages and returns one `Outcome` per message, in the same
order. It says what the provider's answer *proves*, nothing more:

- ``accepted``: the provider took it; carries the provider's id.
- ``retry_later``: the provider provably did not take it (connection refused before the
  request left, HTTP 429, a throttling code). Only these are retried.
- ``failed``: a refusal: resending as is would be refused again. `retryable` says the
  fault is on our side of the account (bad credentials, no credit): once an integrator
  fixed it, a person may « Retry failed »; a refusal about the recipient (invalid
  number, unsubscribed) is not retryable.
- ``ambiguous``: the request left and no clear answer came back (timeout, 5xx). The message
  may have been sent: it becomes "unknown" and is never resent blindly.

A connector does not catch errors it does not understand: an unexpected exception leaves
the messages "sending", and their lease turns them "unknown" (the safe side).
"""

import hashlib
import hmac
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from urllib.parse import parse_qs, unquote

# A failure code every connector uses for "the recipient unsubscribed from this sender"
# (Twilio's 21610): the worker then opts the number out, as for a STOP.
UNSUBSCRIBED = "recipient_unsubscribed"



def report_token(secret: str, reference: str) -> str:
    """The token a provider's callback URL carries for `reference` (one of our message
    references, or a fixed word for an inbound URL): only the holder of the provider
    account's secret can make it, so a webhook refuses a report that carries another."""
    return hmac.new(secret.encode(), reference.encode(), hashlib.sha256).hexdigest()[:32]


def inbound_token(secret: str) -> str:
    """The token of the URL a provider calls with SMS people send us (`crmsms webhooks`
    prints these URLs), made from the provider account's secret."""
    return report_token(secret, "inbound")


def _rate_option(url) -> float:
    text = parse_qs(url.query).get("rate", ["0"])[0]
    try:
        rate = float(text)
    except ValueError:
        rate = -1.0
    if not (0 <= rate < float("inf")):
        raise ValueError(f"{url.scheme}:// URL option rate: {text!r} is not a number of segments per "
                                   "second (e.g. rate=30; 0 or no option = no limit).")
    return rate


_pools_lock = threading.Lock()

ACCEPTED = "accepted"
RETRY_LATER = "retry_later"
FAILED = "failed"
AMBIGUOUS = "ambiguous"


@dataclass(frozen=True)
class OutgoingSms:
    message_id: int
    to: str  # E.164
    body: str
    # Our own reference, sent along so that delivery reports find the message even when
    # the provider's ids change.
    reference: str


@dataclass(frozen=True)
class Outcome:
    kind: str
    provider_message_id: str = ""
    code: str = ""
    detail: str = ""
    retry_after: float | None = None  # seconds, when the provider said
    retryable: bool = False  # for `failed`: see above

    @classmethod
    def accepted(cls, provider_message_id: str) -> "Outcome":
        return cls(ACCEPTED, provider_message_id=provider_message_id)

    @classmethod
    def retry_later(cls, code: str, detail: str, retry_after: float | None = None) -> "Outcome":
        return cls(RETRY_LATER, code=code, detail=detail, retry_after=retry_after)

    @classmethod
    def failed(cls, code: str, detail: str, *, retryable: bool = False) -> "Outcome":
        return cls(FAILED, code=code, detail=detail, retryable=retryable)

    @classmethod
    def ambiguous(cls, code: str, detail: str) -> "Outcome":
        return cls(AMBIGUOUS, code=code, detail=detail)


class Connector(ABC):
    #: the name stored on each message (``SmsMessage.provider``)
    name: str = ""
    #: whether delivery reports come back for the messages it sends (then a message with
    #: no final report after CRMSMS_REPORT_EXPIRY_HOURS becomes "unknown")
    reports: bool = False

    #: the URL's user part is a secret (the simulator's token): not shown in `account`
    user_is_secret: bool = False

    def __init__(self, url) -> None:
        """`url` is the parsed CRMSMS_SMS_URL (urllib.parse.SplitResult)."""
        self.url = url
        #: segments per second this account may send (the URL's `rate` option), 0 = no limit;
        #: shared by every worker (sms/ratelimit.py)
        self.rate = _rate_option(url)

    @property
    def account(self) -> str:
        """The provider account, without its secret: what the rate limit and the pauses of
        sending (sms/breaker.py) are kept per, and what the pages show."""
        user = unquote(self.url.username or "")
        if user and self.user_is_secret:
            user = "#" + hashlib.sha256(user.encode()).hexdigest()[:8]
        where = self.url.hostname or ""
        if self.url.port:
            where += f":{self.url.port}"
        return f"{self.url.scheme}://{user + '@' if user else ''}{where}"

    @abstractmethod
    def send(self, sms: OutgoingSms) -> Outcome:
        """Send one message; return what the provider's answer proves."""

    #: calls in flight at once (HTTP providers: CRMSMS_PROVIDER_CONCURRENCY), per sending
    #: thread of a worker
    concurrency: int = 1
    #: how long one call took, as the dispatcher last measured it (None: not yet); a fast
    #: provider is sent larger chunks (CRMSMS_MAX_CALL_CHUNK)
    call_seconds: float | None = None

    #: sends a batch in one call of its own `send_batch` (SMPP pipelines it over its window,
    #: the file provider writes it at once) rather than one call per message
    sends_whole_batches: bool = False

    def calls(self, batch: list[OutgoingSms]) -> list[tuple[Callable[[], list[Outcome]], int]]:
        """The calls that send `batch`, each as (a function returning the outcomes of the
        messages it sends, in order; how many it sends): one per message, `concurrency` of
        them run at once on the caller's pool, or one for the whole batch."""
        if self.sends_whole_batches:
            return [(partial(self.send_batch, batch), len(batch))]
        return [(partial(lambda sms: [self.send(sms)], sms), 1) for sms in batch]

    def send_batch(self, batch: list[OutgoingSms]) -> list[Outcome]:
        """Send several messages, up to `concurrency` at a time: a provider that takes 100 ms
        to answer then costs 100 ms per `concurrency` messages, not per message. (The worker
        does the same through `calls`, keeping calls in flight from one batch to the next.)
        A connector that `sends_whole_batches` overrides this."""
        pool = self.pool()
        running = [pool.submit(call) for call, _ in self.calls(batch)]
        return [outcome for call in running for outcome in call.result()]

    def pool(self) -> ThreadPoolExecutor:
        """The calling thread's own pool of `concurrency` threads: each sending thread of a
        worker has its `concurrency` calls in flight, whatever the other threads are doing."""
        local = self.__dict__.setdefault("_pools", threading.local())
        if not hasattr(local, "pool"):
            local.pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"{self.name}-call")
            with _pools_lock:
                self.__dict__.setdefault("_all_pools", []).append(local.pool)
        return local.pool

    def start(self) -> None:  # noqa: B027  (optional hook, not abstract)
        """Open what must stay open for the provider to reach us (an SMPP session, over which
        receipts and replies arrive). Called by the worker, not by the web process."""

    def close(self) -> None:
        """Release connections. Called when the worker stops."""
        with _pools_lock:
            pools, self.__dict__["_all_pools"] = self.__dict__.get("_all_pools", []), []
        for pool in pools:
            pool.shutdown(wait=True)
