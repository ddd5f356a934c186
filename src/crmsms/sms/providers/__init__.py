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


@lru_cache(maxsize=4)
def _cached(url: str) -> Connector:
    return connector_for(url)


def get_connector() -> Connector:
    """The configured connector, one per process (connections are reused)."""
    return _cached(settings.CRMSMS_SMS_URL)
