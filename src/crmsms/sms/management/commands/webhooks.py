"""`crmsms webhooks`: what to configure on each provider's side so that SMS people send us
(and, for some, delivery reports) reach crmsms. Delivery report URLs go with each message
and need no configuration; inbound SMS arrive on a URL set once in the provider's console
or configuration, printed here with the token that URL must carry."""

from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from crmsms.sms.providers import configured_urls, connector_for
from crmsms.sms.providers.base import inbound_token


def instructions(url: str, public: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    secret = unquote(parts.password or "")
    where = f"{scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
    if scheme == "twilio":
        return (f"{where}\n  In the Twilio console, your number's Messaging configuration, « A message comes in »:\n"
                f"    Webhook, HTTP POST, {public}/webhooks/twilio/inbound\n"
                "  Twilio signs each call with the URL it called: CRMSMS_PUBLIC_URL must be exactly the address\n"
                "  Twilio uses (https, the proxy's host), or every call is refused as forged.\n"
                "  Status callbacks go with each message (signed with the auth token): nothing to set.")
    if scheme == "vonage":
        return (f"{where}\n  In the Vonage dashboard, API settings, « Inbound SMS webhooks » (any HTTP method:\n"
                "  GET, POST or POST-JSON):\n"
                f"    {public}/webhooks/vonage/inbound?token={inbound_token(secret)}\n"
                "  Delivery receipts go with each message (its callback carries a token): nothing to set.")
    if scheme == "kannel":
        user = unquote(parts.username or "")
        return (f"{where}\n  In Kannel's configuration: the user crmsms sends with (long texts go as concatenated parts),\n"
                f"    group = sendsms-user\n    username = {user}\n    password = (the one in CRMSMS_SMS_URL)\n"
                "    max-messages = 10\n    concatenation = true\n"
                "  in the smsbox group, `mo-recode = true` (replies with accents arrive as UTF-8), and a catch-all\n"
                "  service for SMS people send you (the token is made from the password: it changes with it):\n"
                "    group = sms-service\n    keyword = default\n    catch-all = true\n    max-messages = 0\n"
                f'    get-url = "{public}/webhooks/kannel/inbound?token={inbound_token(secret)}'
                '&from=%p&to=%P&text=%a&coding=%c&charset=%C&id=%I"\n'
                "  Delivery reports: each message's dlr-url carries its own token, and Kannel calls it on\n"
                "  CRMSMS_PUBLIC_URL: the smsbox must be able to reach that address.")
    if scheme == "smpp":
        return (f"{where}\n  Receipts and SMS people send you come over the SMPP session each worker keeps bound\n"
                "  (one bind per worker process: ask the operator for as many binds as you run workers, and for\n"
                "  receipts and incoming SMS on transceiver binds).")
    if scheme == "simulator":
        return (f"{where}\n  The simulator calls {public}/webhooks/simulator/ and /webhooks/simulator/inbound/ "
                "by itself (signed with its token).")
    return f"{where}\n  This provider sends nothing back."


class Command(BaseCommand):
    help = "Check the configured providers and print the webhook URLs to configure on each, for SMS people send you."

    def handle(self, **options):
        public = settings.CRMSMS_PUBLIC_URL.rstrip("/")
        try:
            urls = configured_urls()
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from None
        problems = []
        for url in urls:
            try:
                connector_for(url).close()  # each connector checks its URL as it is built
            except (ImproperlyConfigured, ValueError) as error:
                problems.append(f"{url.split('@')[-1]}: {error}")
        if problems:
            raise CommandError("CRMSMS_SMS_URL / CRMSMS_SMS_ROUTES:\n  " + "\n  ".join(problems))
        self.stdout.write(f"crmsms is reached at {public} (CRMSMS_PUBLIC_URL): providers must be able to call it.")
        host = urlsplit(public).hostname or ""
        if host in ("127.0.0.1", "localhost", "::1") or host.endswith(".local"):
            self.stdout.write(self.style.WARNING(
                f"  {host} is this machine: a provider on the internet cannot call it. Set CRMSMS_PUBLIC_URL to "
                "the https:// address crmsms is published at (behind your reverse proxy)."))
        self.stdout.write("")
        for url in urls:
            self.stdout.write(instructions(url, public) + "\n")
