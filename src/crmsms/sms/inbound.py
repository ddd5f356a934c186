"""SMS people send us. Every one is kept (`InboundSms`) and shown on the timeline of the
contacts and accounts with its number. Its first word decides the rest, compared without
case, accents or punctuation (« Arrêt ! » is ARRET):

- a STOP word (CRMSMS_STOP_WORDS): the number is opted out of every record that has it, at
  once, and its queued SMS are skipped (crm.consent.opt_out);
- a START word (CRMSMS_START_WORDS): opted in again where its STOP had opted it out, only if
  CRMSMS_START_RESUBSCRIBES allows it (otherwise kept on the timeline for a person);
- a HELP word (CRMSMS_HELP_WORDS): marked, for a person to answer.
"""

import logging
import re
import unicodedata

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from crmsms.crm import consent, phones
from crmsms.crm.models import ConsentChange

from .models import InboundSms

log = logging.getLogger(__name__)
STOP, START, HELP = "stop", "start", "help"


def plain(word: str) -> str:
    """ "Arrêt!" -> "ARRET": what keywords are compared as."""
    decomposed = unicodedata.normalize("NFKD", word)
    return re.sub(r"[^A-Z0-9]", "", "".join(c for c in decomposed if not unicodedata.combining(c)).upper())


def _words(setting: str) -> set[str]:
    return {plain(w) for w in setting.split(",") if plain(w)}


def keyword_of(text: str) -> str:
    first = plain(text.strip().split()[0]) if text.strip() else ""
    for keyword, setting in ((STOP, settings.CRMSMS_STOP_WORDS), (START, settings.CRMSMS_START_WORDS),
                             (HELP, settings.CRMSMS_HELP_WORDS)):
        if first and first in _words(setting):
            return keyword
    return ""


@transaction.atomic  # the SMS and what it did are stored together, or neither is
def receive(provider: str, *, from_number: str, text: str, to_number: str = "", provider_message_id: str = "",
            payload: dict | None = None) -> InboundSms:
    try:
        number = phones.normalise(from_number, field_label="From") or from_number
    except ValidationError:
        number = from_number  # kept as it came: a short code, an alphanumeric sender
    keyword = keyword_of(text)
    message = InboundSms.objects.create(
        provider=provider, provider_message_id=provider_message_id[:100], from_number=number[:20],
        to_number=to_number[:20], text=text, keyword=keyword, payload=payload or {})
    if keyword == STOP:
        changed = consent.opt_out(number, source=ConsentChange.INBOUND_STOP, actor=provider,
                                  detail=f"replied « {text.strip()[:200]} »")
        log.info("%s replied %s: opted out of %d record(s)", number, text.strip()[:20], len(changed))
    elif keyword == START and settings.CRMSMS_START_RESUBSCRIBES:
        consent.opt_in_again(number, source=ConsentChange.INBOUND_START, actor=provider,
                             detail=f"replied « {text.strip()[:200]} »")
    return message
