"""What an HTTP provider's request proves when it fails on the way, shared by the HTTP
connectors (DESIGN §4): a request that never left (no connection, no free connection) was
provably not taken, so it is retried later; one that left without a clear answer (a
timeout after sending, a connection broken mid-answer) may have been taken, so it is
ambiguous and never resent blindly."""

from collections.abc import Callable

import httpx
from django.conf import settings

from .base import Connector, Outcome


class HttpConnector(Connector):
    """A provider reached over HTTP (the simulator, Twilio, Vonage, Kannel): `self.client`
    keeps its connections alive between messages, and a batch has up to
    CRMSMS_PROVIDER_CONCURRENCY calls in flight."""

    client: httpx.Client | None = None

    def __init__(self, url) -> None:
        super().__init__(url)
        self.concurrency = max(1, settings.CRMSMS_PROVIDER_CONCURRENCY)

    def close(self) -> None:
        super().close()
        if self.client is not None:
            self.client.close()


def client(base_url: str, **options) -> httpx.Client:
    """One client per connector: its pool keeps connections alive between messages (as many
    as calls may be in flight).
    Connecting is quick on a working network, so a short connect timeout fails fast (retry
    later) instead of holding a worker for the whole read timeout."""
    timeout = float(settings.CRMSMS_PROVIDER_TIMEOUT)
    options.setdefault("limits", httpx.Limits(max_connections=max(10, settings.CRMSMS_PROVIDER_CONCURRENCY * 4)))
    return httpx.Client(base_url=base_url, timeout=httpx.Timeout(timeout, connect=min(3.0, timeout)), **options)


def call(where: str, request: Callable[[], httpx.Response], *, hint: str = "") -> httpx.Response | Outcome:
    """`request()`'s response, or the Outcome its failure proves. `hint` says what to check
    when the provider cannot be reached at all."""
    try:
        return request()
    except httpx.ConnectTimeout:
        return Outcome.retry_later("connect_timeout", f"Could not connect to {where} in time. {hint}".strip())
    except httpx.ConnectError as exc:
        return Outcome.retry_later("connection_refused", f"Could not connect to {where} ({exc}). {hint}".strip())
    except httpx.PoolTimeout:
        return Outcome.retry_later("pool_timeout", f"No free connection to {where} in time; nothing was sent.")
    except (httpx.ReadTimeout, httpx.WriteTimeout):
        return Outcome.ambiguous(
            "timeout", f"No answer from {where} within {settings.CRMSMS_PROVIDER_TIMEOUT}s after sending.")
    except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
        return Outcome.ambiguous(
            "connection_lost", f"The connection to {where} broke after sending ({exc.__class__.__name__}: {exc}).")
