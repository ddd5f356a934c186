"""Provider connectors, chosen by the scheme of CRMSMS_SMS_URL.

Adding a provider = one module with a `Connector` subclass, plus one line in SCHEMES.
Modules are imported only when their scheme is used, so a provider's library is needed
only by those who use it.
"""

import importlib
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .base import Connector

SCHEMES = {
    "console": "crmsms.sms.providers.console.ConsoleConnector",
    "file": "crmsms.sms.providers.file.FileConnector",
    "memory": "crmsms.sms.providers.memory.MemoryConnector",
    "simulator": "crmsms.sms.providers.simulator.SimulatorConnector",
    "twilio": "crmsms.sms.providers.twilio.TwilioConnector",
    "twilio+http": "crmsms.sms.providers.twilio.TwilioConnector",  # plain HTTP to a local test server
    "vonage": "crmsms.sms.providers.vonage.VonageConnector",
    "vonage+http": "crmsms.sms.providers.vonage.VonageConnector",
    "kannel": "crmsms.sms.providers.kannel.KannelConnector",
    "kannel+https": "crmsms.sms.providers.kannel.KannelConnector",  # an smsbox with TLS
    "smpp": "crmsms.sms.providers.smpp.SmppConnector",
    "smpp+tls": "crmsms.sms.providers.smpp.SmppConnector",
}


def connector_for(url: str) -> Connector:
    parts = urlsplit(url)
    path = SCHEMES.get(parts.scheme)
    if path is None:
        raise ImproperlyConfigured(
            f"CRMSMS_SMS_URL: unknown provider {parts.scheme!r} in {url!r}; "
            f"use one of {', '.join(sorted(SCHEMES))}."
        )
    module_name, class_name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), class_name)(parts)


@lru_cache(maxsize=16)
def connector_at(url: str) -> Connector:
    """The connector for `url`, one per process (its connections are reused)."""
    return connector_for(url)


@lru_cache(maxsize=4)
def _parse_routes(text: str) -> tuple[tuple[str, str], ...]:
    routes = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        prefix, _, url = item.partition("=")
        prefix = prefix.strip()
        if not url.strip() or not (prefix.startswith("+") and prefix[1:].isdigit()):
            raise ImproperlyConfigured(
                f"CRMSMS_SMS_ROUTES: {item!r} is not PREFIX=URL with a prefix like +33 "
                "(routes are separated by ';')")
        routes.append((prefix, url.strip()))
    # Longest prefix first: +331 before +33.
    return tuple(sorted(routes, key=lambda route: -len(route[0])))


def routes() -> tuple[tuple[str, str], ...]:
    """(prefix, provider URL) from CRMSMS_SMS_ROUTES, longest prefix first."""
    return _parse_routes(settings.CRMSMS_SMS_ROUTES)


def url_for(number: str) -> str:
    """The provider a number is sent through: the longest matching route, else CRMSMS_SMS_URL."""
    return next((url for prefix, url in routes() if number.startswith(prefix)), settings.CRMSMS_SMS_URL)


def configured_urls() -> list[str]:
    """Every provider URL configured: the default one, then the routes'."""
    return list(dict.fromkeys([settings.CRMSMS_SMS_URL, *(url for _, url in routes())]))


def configured_connectors() -> list[Connector]:
    return [connector_at(url) for url in configured_urls()]
