"""SMS people send us. Every one is kept (`InboundSms`) and shown on the timeline of the
contacts and accounts with its number. Its first word decides the rest, compared without
case, accents or punctuation (« Arrêt ! » is ARRET):

- a STOP word (CRMSMS_STOP_WORDS): the number is opted out of every record that has it, at
  once, and its queued SMS are skipped (crm.consent.opt_out);
- a START word (CRMSMS_START_WORDS): opted in again where its STOP had opted it out, only if
  CRMSMS_START_RESUBSCRIBES allows it (otherwise kept on the timeline for a person);
- a HELP word (CRMSMS_HELP_WORDS): answered at once with CRMSMS_HELP_REPLY (at most once
  an hour per number), and marked for a person.
"""

import logging
import re
import unicodedata
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from crmsms.crm import consent, phones
from crmsms.crm.models import ConsentChange

from . import segments, states
from .dispatch import wake
from .models import InboundSms, SmsMessage
from .reports import storable
from .transitions import move_one, note

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
    if provider_message_id:
        # A provider that did not get our answer in time sends the same SMS again (Kannel
        # retries): the second one is the first.
        already = InboundSms.objects.filter(provider=provider, provider_message_id=provider_message_id[:100]).first()
        if already:
            log.info("%s SMS %s from %s received again: kept once", provider, provider_message_id, number)
            return already
    keyword = keyword_of(text)
    text = storable(text)
    try:
        with transaction.atomic():  # two calls of one retried SMS at once: the second finds the first
            message = InboundSms.objects.create(
                provider=provider, provider_message_id=provider_message_id[:100], from_number=number[:20],
                to_number=to_number[:20], text=text, keyword=keyword, payload=storable(payload or {}))
    except IntegrityError:
        return InboundSms.objects.get(provider=provider, provider_message_id=provider_message_id[:100])
    if keyword == STOP:
        changed = consent.opt_out(number, source=ConsentChange.INBOUND_STOP, actor=provider,
                                  detail=f"replied « {text.strip()[:200]} »")
        log.info("%s replied %s: opted out of %d record(s)", number, text.strip()[:20], len(changed))
    elif keyword == START and settings.CRMSMS_START_RESUBSCRIBES:
        consent.opt_in_again(number, source=ConsentChange.INBOUND_START, actor=provider,
                             detail=f"replied « {text.strip()[:200]} »")
    elif keyword == HELP:
        answer_help(message)
    return message


HELP_ANSWER_INTERVAL = timedelta(hours=1)
HELP_ANSWERS_PER_MINUTE = 30


def answer_help(asked: InboundSms) -> SmsMessage | None:
    """Queue CRMSMS_HELP_REPLY to the number that asked, unless one was queued for it within
    the hour (two automatic responders would otherwise answer each other forever)."""
    text = segments.normalise(settings.CRMSMS_HELP_REPLY.strip())
    if not text or phones.kind(asked.from_number) not in phones.SMS_KINDS:
        return None
    since = timezone.now() - HELP_ANSWER_INTERVAL
    if SmsMessage.objects.filter(reply_to__from_number=asked.from_number, created_at__gte=since).exists():
        log.info("HELP from %s: answered within the hour already, not again", asked.from_number)
        return None
    # And at most so many a minute in all: whoever got hold of an inbound URL cannot make us
    # text thousands of numbers with forged HELPs.
    last_minute = SmsMessage.objects.filter(reply_to__isnull=False, created_at__gte=timezone.now() - timedelta(minutes=1))
    if last_minute.count() >= HELP_ANSWERS_PER_MINUTE:
        log.warning("HELP from %s: %d automatic answers in the last minute already, not answered",
                    asked.from_number, HELP_ANSWERS_PER_MINUTE)
        return None
    measured = segments.measure(text)
    now = timezone.now()
    # Shown on the record the number belongs to, if any (a contact first); it still goes to
    # the number that asked, whatever that record's opt-in says.
    record = next(iter(consent.records_with(asked.from_number)), None)
    answer = SmsMessage.objects.create(
        reply_to=asked, recipient_name=str(record) if record else asked.from_number, to_number=asked.from_number,
        contact=record if record is not None and record.module == "contacts" else None,
        account=record if record is not None and record.module == "accounts" else None,
        body=text, text=text, encoding=measured.encoding, segments=measured.segments, send_at=now, due_at=now)
    note(answer.pk, "created", f"automatic answer to « {asked.text.strip()[:100]} »", actor=asked.provider)
    move_one(answer, states.TO_SEND, kind="queued", actor="system", detail="the HELP answer, sent at once",
             due_at=now)
    transaction.on_commit(wake)
    return answer
