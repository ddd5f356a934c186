"""`crmsms webhooks`: what to configure on each provider's side so that SMS people send us
(and, for some, delivery reports) reach crmsms. Delivery report URLs go with each message
and need no configuration; inbound SMS arrive on a URL set once in the provider's console
or configuration, printed here with the token that URL must carry."""

from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand

from crmsms.sms.providers import configured_urls
from crmsms.sms.providers.base import inbound_token


def instructions(url: str, public: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    secret = unquote(parts.password or "")
    where = f"{scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
    if scheme == "twilio":
        return (f"{where}\n  In the Twilio console, your number's Messaging configuration, « A message comes in »:\n"
                f"    Webhook, HTTP POST, {public}/webhooks/twilio/inbound\n"
                "  Status callbacks go with each message (signed with the auth token): nothing to set.")
    if scheme == "vonage":
        return (f"{where}\n  In the Vonage dashboard, API settings, « Inbound SMS webhooks »:\n"
                f"    {public}/webhooks/vonage/inbound?token={inbound_token(secret)}\n"
                "  Delivery receipts go with each message (its callback carries a token): nothing to set.")
    if scheme == "kannel":
        return (f"{where}\n  In Kannel's configuration, a catch-all service for SMS people send you:\n"
                "    group = sms-service\n    keyword = default\n    catch-all = true\n    max-messages = 0\n"
                f'    get-url = "{public}/webhooks/kannel/inbound?token={inbound_token(secret)}'
                '&from=%p&to=%P&text=%a&id=%I"\n'
                "  Delivery reports: each message's dlr-url carries its own token; nothing to set.")
    if scheme == "smpp":
        return (f"{where}\n  Receipts and SMS people send you come over the SMPP session the worker keeps bound: "
                "nothing to set.")
    if scheme == "simulator":
        return (f"{where}\n  The simulator calls {public}/webhooks/simulator/ and /webhooks/simulator/inbound/ "
                "by itself (signed with its token).")
    return f"{where}\n  This provider sends nothing back."


class Command(BaseCommand):
    help = "Print the webhook URLs to configure on each provider, for SMS people send you."

    def handle(self, **options):
        public = settings.CRMSMS_PUBLIC_URL.rstrip("/")
        self.stdout.write(f"crmsms is reached at {public} (CRMSMS_PUBLIC_URL): providers must be able to call it.\n")
        for url in configured_urls():
            self.stdout.write(instructions(url, public) + "\n")
