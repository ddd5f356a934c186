"""Delivery reports: what became of each message after the provider took it.

A provider's webhook (sms/webhooks.py) verifies the report and stores it as it came
(`DeliveryReport`); `apply_pending` then applies stored reports to their messages, in
batches, through the state machine: a status only moves forward, so a late "sent" never
undoes "delivered", and a report sent twice changes nothing the second time. Every report
lands in its message's history with its raw payload, whatever it did. A report for a
message we do not know is kept, answered 200 (the provider must not retry it forever) and
logged.

Messages sent through a provider that sends reports and still without a final one after
CRMSMS_REPORT_EXPIRY_HOURS become "unknown" (`expire_silent`): never "delivered" by default.
"""

import logging
import re
import time
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from . import states
from .models import DeliveryReport, SmsMessage
from .transitions import Each, add_events, move, move_each, together

log = logging.getLogger(__name__)
REFERENCE = re.compile(r"^crmsms-(\d{1,18})$")  # what we send with every message
BATCH = 500


def store(provider: str, *, status: str, reference: str = "", provider_message_id: str = "",
          payload: dict) -> None:
    """Keep a verified report for the worker, and wake it.

    One prepared INSERT: a webhook does nothing else, and the ORM's save() of one row cost
    as much as the rest of the request."""
    given = {"provider": provider, "status": status[:30], "reference": reference[:100],
             "provider_message_id": provider_message_id[:100], "payload": storable(payload),
             "received_at": timezone.now()}
    # Every other column takes the model's default: a field added later cannot be left out.
    fields = [f for f in DeliveryReport._meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(given[f.attname] if f.attname in given else f.get_default(), connection)
              for f in fields]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {quote(DeliveryReport._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
                       f"VALUES ({', '.join(['%s'] * len(fields))})", values)
    transaction.on_commit(_wake_soon)


WAKE_EVERY = 0.2  # seconds
_last_wake = 0.0


def _wake_soon() -> None:
    """Wake a worker to apply reports, at most every WAKE_EVERY seconds per process: a
    flood of reports (a campaign's, all coming back at once) costs one task per 0.2 s, not
    one per report. A report that came just after a wake is applied by that wake's pass or,
    at the latest, by the worker's own pass each second."""
    global _last_wake
    from huey.contrib.djhuey import HUEY

    from .tasks import apply_reports

    now = time.monotonic()
    if HUEY.immediate or now - _last_wake >= WAKE_EVERY:
        _last_wake = now
        apply_reports()


def storable(payload):
    """A provider's payload as it came, minus NUL characters, which PostgreSQL's text and
    JSON refuse (a garbled or binary value must not cost the report)."""
    if isinstance(payload, str):
        return payload.replace("\x00", "\ufffd")
    if isinstance(payload, dict):
        return {storable(key): storable(value) for key, value in payload.items()}
    if isinstance(payload, list):
        return [storable(value) for value in payload]
    return payload


def apply_pending(mapping: dict[str, dict[str, str]] | None = None) -> int:
    """Apply stored reports, oldest first; return how many were handled. `mapping` gives,
    per provider, its status words -> our status (`STATUS_WORDS` by default)."""
    mapping = mapping or STATUS_WORDS
    handled, after = 0, 0
    while True:
        with transaction.atomic():
            reports = list(DeliveryReport.objects.select_for_update(skip_locked=True)
                           .filter(processed_at__isnull=True, id__gt=after).order_by("id")[:BATCH])
            if not reports:
                return handled
            handled += _apply(reports, mapping)
            after = reports[-1].pk


def _apply(reports: list[DeliveryReport], mapping: dict[str, dict[str, str]]) -> int:
    messages = _find_messages(reports)
    # Every message this batch touches, locked first in id order, and the counts written
    # once: another worker's batch may hold reports for the same messages (one per part).
    with together(m.pk for m in messages.values()):
        return _apply_locked(reports, messages, mapping)


def _apply_locked(reports: list[DeliveryReport], messages: dict[int, SmsMessage],
                  mapping: dict[str, dict[str, str]]) -> int:
    # A report can overtake the worker: the provider answered, and reported, before the
    # worker wrote down that answer. Such a report waits for the next pass.
    reports = [r for r in reports if r.pk not in messages or messages[r.pk].status != states.SENDING]
    # Reports for the same target status move together; each message once per batch (a
    # duplicate in the same batch is then noted like any report that moves nothing).
    by_target: dict[str, dict[int, Each]] = defaultdict(dict)
    notes: list[tuple[DeliveryReport, str]] = []
    now = timezone.now()
    for report in reports:
        message = messages.get(report.pk)
        report.message, report.processed_at = message, now
        target = mapping.get(report.provider, {}).get(report.status.lower())
        if message is None:
            report.outcome = "no such message"
            log.warning("%s report %s for an unknown message (reference %r, id %r): kept, not applied",
                        report.provider, report.status, report.reference, report.provider_message_id)
        elif target is None:
            report.outcome = f"status {report.status!r} not understood"
            notes.append((report, f"Report from {report.provider}: {report.status!r}, a status we do not know."))
        elif message.pk in by_target[target]:
            notes.append((report, f"Report from {report.provider}: {report.status} (again)."))
            report.outcome = "duplicate"
        else:
            fields = {}
            error = report.payload.get("error") if isinstance(report.payload, dict) else None
            if target == states.UNDELIVERED and isinstance(error, dict):
                fields = {"error_code": str(error.get("code", ""))[:40], "error_message": str(error.get("message", ""))}
            by_target[target][message.pk] = Each(
                fields=fields, detail=_detail(report, error), data={"report": report.payload})
            report.outcome = f"-> {target}"
    moved: set[tuple[int, str]] = set()
    for target, changes in by_target.items():
        for pk in move_each(changes, target, kind="report", actor=_actor(reports, changes)):
            moved.add((pk, target))
    # The reports the state machine turned down (a late "sent" after "delivered"): noted
    # with the status their message stays in, read in one query.
    refused = [r for r in reports if r.message is not None and r.outcome.startswith("-> ")
               and (r.message.pk, r.outcome.removeprefix("-> ")) not in moved]
    current = dict(SmsMessage.objects.filter(pk__in={r.message.pk for r in refused}).values_list("id", "status"))
    for report in refused:
        label = states.LABELS.get(current.get(report.message.pk), "gone")
        report.outcome = f"ignored: already {label}"
        notes.append((report, f"Report from {report.provider}: {report.status}; the SMS is already {label}, "
                              "so it stays so."))
    noted_at = timezone.now()  # after the moves above: the history stays in order
    add_events((report.message.pk, noted_at, "report", "", "", detail, {"report": report.payload}, report.provider)
               for report, detail in notes)
    DeliveryReport.objects.bulk_update(reports, ["message", "processed_at", "outcome"])
    return len(reports)


def _actor(reports, changes) -> str:
    return next((r.provider for r in reports if r.message is not None and r.message.pk in changes), "provider")


def _detail(report: DeliveryReport, error) -> str:
    text = f"Report from {report.provider}: {report.status}."
    if isinstance(error, dict) and error.get("message"):
        text += f" {error.get('message')}"
    return text


def _find_messages(reports: list[DeliveryReport]) -> dict[int, SmsMessage]:
    """Each report's message: by our own reference first (the provider's ids may change
    between reports), else by the provider's id."""
    by_reference = {r.pk: int(m.group(1)) for r in reports if (m := REFERENCE.match(r.reference))}
    by_provider_id = {r.pk: (r.provider, r.provider_message_id) for r in reports
                      if r.pk not in by_reference and r.provider_message_id}
    found = SmsMessage.objects.in_bulk(set(by_reference.values()))
    if by_provider_id:
        query = Q()
        for provider, provider_id in set(by_provider_id.values()):
            query |= Q(provider=provider, provider_message_id=provider_id)
        for message in SmsMessage.objects.filter(query):
            found[(message.provider, message.provider_message_id)] = message
    result = {}
    for report in reports:
        key = by_reference.get(report.pk) or by_provider_id.get(report.pk)
        if key is not None and key in found:
            result[report.pk] = found[key]
    return result


def expire_silent(reporting_providers: set[str]) -> int:
    """Messages sent through a provider that reports, and with no final report after
    CRMSMS_REPORT_EXPIRY_HOURS: "unknown" (expired); return how many."""
    if not reporting_providers:
        return 0
    limit = timezone.now() - timedelta(hours=settings.CRMSMS_REPORT_EXPIRY_HOURS)
    silent = SmsMessage.objects.filter(status=states.SENT, provider__in=reporting_providers, sent_at__lt=limit)
    expired = 0
    while ids := list(silent.values_list("id", flat=True)[:BATCH]):
        expired += len(move(
            ids, states.UNKNOWN, kind="expired", actor="worker", only_from={states.SENT},
            detail=f"No delivery report within {settings.CRMSMS_REPORT_EXPIRY_HOURS} h: whether it reached the "
                   "phone is not known.",
            error_code="no_report",
            error_message=f"No delivery report within {settings.CRMSMS_REPORT_EXPIRY_HOURS} h."))
    return expired


# Provider status words -> our status. Intermediate words ("sent", "accepted", "buffered")
# mean the network has it: "sent", which also settles an "unknown" message.
STATUS_WORDS: dict[str, dict[str, str]] = {
    "simulator": {"sent": states.SENT, "delivered": states.DELIVERED, "undelivered": states.UNDELIVERED},
    # Twilio: "failed" after it took the message means no carrier would deliver it.
    "twilio": {"accepted": states.SENT, "queued": states.SENT, "sending": states.SENT, "sent": states.SENT,
               "delivered": states.DELIVERED, "undelivered": states.UNDELIVERED, "failed": states.UNDELIVERED},
    # Vonage, per part: "unknown" (the carrier said nothing) is left for the expiry.
    "vonage": {"accepted": states.SENT, "buffered": states.SENT, "delivered": states.DELIVERED,
               "expired": states.UNDELIVERED, "failed": states.UNDELIVERED, "rejected": states.UNDELIVERED},
    # Kannel's DLR types, in the words /webhooks/kannel/dlr gives them (providers/kannel.py).
    "kannel": {"smsc_accepted": states.SENT, "buffered": states.SENT, "intermediate": states.SENT,
               "delivered": states.DELIVERED, "undelivered": states.UNDELIVERED, "smsc_rejected": states.UNDELIVERED},
    # SMPP receipts' stat: words (providers/smpp.py); "unknown" is left for the expiry.
    "smpp": {"enroute": states.SENT, "acceptd": states.SENT, "accepted": states.SENT, "delivrd": states.DELIVERED,
             "delivered": states.DELIVERED, "undeliv": states.UNDELIVERED, "undeliverable": states.UNDELIVERED,
             "expired": states.UNDELIVERED, "rejectd": states.UNDELIVERED, "deleted": states.UNDELIVERED},
}
