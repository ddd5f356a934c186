"""SMS campaigns: who gets a message, generating one message per recipient, and moving a
campaign through its statuses (DESIGN §1).

Generation runs in the worker, never in a web request. It is resumable: messages are
written in batches together with the campaign's cursor (the last recipient done), in one
transaction, and a unique constraint allows one message per (campaign, recipient), so a
generation interrupted by a crash continues where it stopped with no duplicates and no
holes. The campaign leaves "generating" only when every recipient has its message.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from crmsms.crm import phones
from crmsms.crm.models import Account, Contact

from . import eligibility, placeholders, segments, states, variables
from .models import CampaignRecipient, SmsCampaign, SmsMessage
from .transitions import move

log = logging.getLogger(__name__)
C = SmsCampaign

TRANSITIONS: dict[str, frozenset[str]] = {
    C.DRAFT: frozenset({C.GENERATE, C.CANCELLED}),
    C.GENERATE: frozenset({C.GENERATING, C.DRAFT, C.CANCELLED}),
    C.GENERATING: frozenset({C.SCHEDULED, C.SENDING, C.CANCELLED}),
    C.SCHEDULED: frozenset({C.SENDING, C.PAUSED, C.CANCELLED}),
    C.SENDING: frozenset({C.COMPLETED, C.PAUSED, C.CANCELLED}),
    C.PAUSED: frozenset({C.SCHEDULED, C.SENDING, C.CANCELLED}),
    C.COMPLETED: frozenset(),
    C.CANCELLED: frozenset(),
}
BATCH = 2000
STALE_AFTER = timedelta(seconds=60)  # a generating worker writes a heartbeat with every batch

REASONS = {
    "no_opt_in": "No opt-in",
    "no_number": "No number",
    "invalid_number": "Invalid number",
    "not_mobile": "Landline or not a mobile",
    "duplicate_number": "Duplicate number",
    "record_deleted": "Record deleted",
    "empty_text": "Empty text once filled in",
}


class CampaignError(Exception):
    pass


def move_campaign(campaign: SmsCampaign, target: str, **fields) -> bool:
    """Move `campaign` to `target` if its current status (in the database) allows it."""
    sources = [s for s, targets in TRANSITIONS.items() if target in targets]
    moved = SmsCampaign.objects.filter(pk=campaign.pk, status__in=sources).update(
        status=target, updated_at=timezone.now(), **fields)
    if moved:
        campaign.refresh_from_db()
    return bool(moved)


def record_field(module: str) -> str:
    return "contact" if module == variables.CONTACTS else "account"


def model_of(module: str):
    return Contact if module == variables.CONTACTS else Account


# --- recipients ---------------------------------------------------------------------------

def add_recipients(campaign: SmsCampaign, ids) -> int:
    """Add records (ids of the campaign's module) while the campaign is a draft; return how
    many were new. Unknown ids are ignored (the caller reports them)."""
    if not campaign.is_editable:
        raise CampaignError("Recipients can only change while the campaign is a Draft.")
    field_name = record_field(campaign.module)
    existing = existing_ids(model_of(campaign.module), ids)
    before = campaign.recipients.count()
    CampaignRecipient.objects.bulk_create(
        # In record order: "the first recipient with a number gets it" then means the one
        # added first, and among those added together, the oldest record.
        [CampaignRecipient(campaign=campaign, **{field_name + "_id": pk}) for pk in sorted(existing)],
        ignore_conflicts=True, batch_size=1000,
    )
    return campaign.recipients.count() - before


@dataclass
class ImportReport:
    added: int = 0
    matched: int = 0
    unmatched: list[tuple[int, str]] = field(default_factory=list)  # (line, value)


MAX_IMPORT_ROWS = 1_000_000


def import_recipients(campaign: SmsCampaign, lines) -> ImportReport:
    """Add recipients from CSV lines whose first column is a record id or a phone number
    (however typed). A value with "+", spaces, dots or 9 digits and more is a number; a
    shorter run of digits is an id; a first line that is neither is a header."""
    import csv

    module = model_of(campaign.module)
    phone_field = module.phone_field
    ids: dict[int, list[int]] = {}
    numbers: dict[str, list[int]] = {}
    report = ImportReport()
    if len(lines) > MAX_IMPORT_ROWS:
        raise CampaignError(f"CSV file: at most {MAX_IMPORT_ROWS:,} lines ({len(lines):,} given).")
    if not any(line.strip() for line in lines):
        raise CampaignError("CSV file: the file is empty.")
    reader = csv.reader(lines, delimiter=_delimiter(lines))
    line_no = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:  # a line too long to be a CSV row of ids or numbers
            raise CampaignError(f"CSV file: line {reader.line_num} cannot be read ({error}).") from None
        line_no = reader.line_num
        # The first column, as the file says; a spreadsheet cell "=""0612345678""" counts too.
        value = (row[0] if row else "").strip().removeprefix("=").strip('"').strip()
        if not value:
            continue
        digits = value.replace(" ", "").replace(".", "").replace("-", "")
        if digits.isdigit() and len(digits) < 9 and value == digits:
            ids.setdefault(int(value), []).append(line_no)
            continue
        try:
            e164 = phones.normalise(value, field_label="Number")
        except ValidationError:  # reported as not matched (or it was the header)
            e164 = ""
        if e164:
            numbers.setdefault(e164, []).append(line_no)
        elif line_no > 1:
            report.unmatched.append((line_no, value[:60]))
    found = existing_ids(module, ids)
    report.unmatched += [(line, str(pk)) for pk in ids if pk not in found for line in ids[pk]]
    number_list = list(numbers)
    for i in range(0, len(number_list), IN_CHUNK):
        rows = module.objects.filter(**{f"{phone_field}__in": number_list[i:i + IN_CHUNK]}).values_list("pk", phone_field)
        seen = set()
        for pk, number in rows:
            found.add(pk)
            seen.add(number)
        report.unmatched += [(line, n) for n in number_list[i:i + IN_CHUNK] if n not in seen for line in numbers[n]]
    report.matched = len(found)
    report.added = add_recipients(campaign, found)
    report.unmatched.sort()
    return report


def _delimiter(lines) -> str:
    first = lines[0] if lines else ""
    return max([",", ";", "\t"], key=first.count)


def remove_recipients(campaign: SmsCampaign, ids) -> int:
    if not campaign.is_editable:
        raise CampaignError("Recipients can only change while the campaign is a Draft.")
    field_name = record_field(campaign.module)
    ids, deleted = list(ids), 0
    for i in range(0, len(ids), IN_CHUNK):
        deleted += campaign.recipients.filter(**{f"{field_name}_id__in": ids[i:i + IN_CHUNK]}).delete()[0]
    return deleted


# SQLite refuses a statement with more parameters than it was built for (32,766 by default,
# 250,000 in Debian's build): long id lists go in chunks.
IN_CHUNK = 5000


def existing_ids(model, ids) -> set[int]:
    """Which of `ids` are records of `model`."""
    ids, found = list(ids), set()
    for i in range(0, len(ids), IN_CHUNK):
        found |= set(model.objects.filter(pk__in=ids[i:i + IN_CHUNK]).values_list("pk", flat=True))
    return found


# --- who gets a message --------------------------------------------------------------------

@dataclass
class Forecast:
    """What generation would do now."""

    messages: int = 0
    skipped: Counter = field(default_factory=Counter)
    segments: int = 0

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def reasons(self) -> list[tuple[str, str, int]]:
        return [(code, REASONS.get(code, code), n) for code, n in self.skipped.most_common()]


def _recipient_batches(campaign: SmsCampaign, after: int = 0):
    """The campaign's recipients with their records, in id order, a batch at a time."""
    field_name = record_field(campaign.module)
    related = [field_name] + (["contact__account"] if field_name == "contact" else [])
    while True:
        batch = list(campaign.recipients.filter(pk__gt=after).select_related(*related).order_by("pk")[:BATCH])
        if not batch:
            return
        yield batch
        after = batch[-1].pk


def classify(record, seen: set[str]) -> str | None:
    """Why `record` gets no message (a reason code), or None. The first recipient with a
    number gets it: the later ones with the same number are duplicates."""
    refusal = eligibility.check(record)
    if refusal:
        return refusal.code
    if record.sms_number in seen:
        return "duplicate_number"
    seen.add(record.sms_number)
    return None


def forecast(campaign: SmsCampaign) -> Forecast:
    result = Forecast()
    seen: set[str] = set()
    compiled = _compiled(campaign)
    for batch in _recipient_batches(campaign):
        for recipient in batch:
            record = recipient.contact or recipient.account
            reason = classify(record, seen)
            if reason:
                result.skipped[reason] += 1
                continue
            if compiled is not None:
                text = _render(compiled, record, campaign)
                if not text.strip():
                    result.skipped["empty_text"] += 1
                    continue
                result.segments += segments.measure(text).segments
            result.messages += 1
    return result


def _compiled(campaign: SmsCampaign):
    body = campaign.body or (campaign.template.body if campaign.template else "")
    if not body:
        return None
    try:
        return placeholders.compile(body, campaign.module)
    except placeholders.PlaceholderError:
        return None


def _render(compiled, record, campaign: SmsCampaign) -> str:
    values = variables.values_for(record, campaign.created_by, compiled.names, campaign.send_at)
    return segments.normalise(compiled.render(values))


# --- generation ----------------------------------------------------------------------------

def start_generation(campaign: SmsCampaign) -> None:
    """The user's « Generate all SMS Messages »: checked here, done by the worker."""
    if campaign.template is None:
        raise CampaignError("Choose the associated template before generating.")
    if campaign.template.module != campaign.module:
        raise CampaignError("The template is based on another module than the campaign's.")
    if not campaign.recipients.exists():
        raise CampaignError("Add recipients before generating.")
    if not move_campaign(campaign, C.GENERATE):
        raise CampaignError(f"This campaign's SMS were already generated (status: {campaign.get_status_display()}).")
    wake_generation(campaign.pk)


def wake_generation(campaign_id: int) -> None:
    from .tasks import generate_campaign

    transaction.on_commit(lambda: generate_campaign(campaign_id))


def _claim(campaign_id: int) -> SmsCampaign | None:
    """Take the campaign's generation: a new one, or one whose worker stopped beating."""
    now = timezone.now()
    fresh = SmsCampaign.objects.filter(pk=campaign_id, status=C.GENERATE).first()
    if fresh is not None:
        total = fresh.recipients.count()
        body = fresh.template.body if fresh.template else ""
        if move_campaign(fresh, C.GENERATING, heartbeat=now, body=body, recipients_total=total,
                         cursor=0, generated=0, skipped=0):
            return fresh
        return None
    taken = SmsCampaign.objects.filter(
        pk=campaign_id, status=C.GENERATING
    ).filter(Q(heartbeat__isnull=True) | Q(heartbeat__lt=now - STALE_AFTER)).update(heartbeat=now)
    return SmsCampaign.objects.get(pk=campaign_id) if taken else None


def generate(campaign_id: int) -> bool:
    """Generate the campaign's messages (or finish an interrupted generation). Returns
    False when there was nothing to take (another worker has it, or it is done)."""
    campaign = _claim(campaign_id)
    if campaign is None:
        return False
    compiled = placeholders.compile(campaign.body, campaign.module)
    field_name = record_field(campaign.module)
    # Numbers already given a message by a previous, interrupted run: still taken.
    seen = set(campaign.messages.filter(status__in=[states.TO_SEND, states.SENDING, states.SENT])
               .values_list("to_number", flat=True))
    for batch in _recipient_batches(campaign, after=campaign.cursor):
        messages, skipped = [], 0
        for recipient in batch:
            record = recipient.contact or recipient.account
            message = SmsMessage(
                campaign=campaign, template_id=campaign.template_id, created_by=campaign.created_by,
                recipient_name=str(record), to_number=record.sms_number, body=campaign.body,
                send_at=campaign.send_at, due_at=campaign.send_at, **{field_name: record},
            )
            reason = classify(record, seen)
            if reason:
                skipped += 1
                message.status, message.error_code = states.SKIPPED, reason
                message.error_message = eligibility.check(record).message if reason != "duplicate_number" else \
                    f"{phones.display(record.sms_number)} already gets this campaign's SMS through another recipient."
            else:
                text = _render(compiled, record, campaign)
                if not text.strip():
                    skipped += 1
                    message.status, message.error_code = states.SKIPPED, "empty_text"
                    message.error_message = f"The text is empty for {record}: its variables have no value."
                    messages.append(message)
                    continue
                measure = segments.measure(text)
                message.status, message.text = states.TO_SEND, text
                message.encoding, message.segments = measure.encoding, measure.segments
            messages.append(message)
        with transaction.atomic():
            # Still ours? A user may have cancelled it; then this batch is not written.
            still = SmsCampaign.objects.select_for_update().filter(pk=campaign.pk, status=C.GENERATING).exists()
            if not still:
                return True
            SmsMessage.objects.bulk_create(messages, ignore_conflicts=True, batch_size=1000)
            SmsCampaign.objects.filter(pk=campaign.pk).update(
                cursor=batch[-1].pk, heartbeat=timezone.now(), updated_at=timezone.now(),
                generated=campaign.generated + len(messages) - skipped, skipped=campaign.skipped + skipped)
        campaign.refresh_from_db()
    target = C.SENDING if campaign.send_at <= timezone.now() else C.SCHEDULED
    move_campaign(campaign, target, heartbeat=None)
    if target == C.SENDING:
        from .dispatch import wake

        wake()
    return True


# --- the rest of a campaign's life ----------------------------------------------------------

def pause(campaign: SmsCampaign) -> None:
    if not move_campaign(campaign, C.PAUSED):
        raise CampaignError(f"A {campaign.get_status_display()} campaign cannot be paused.")


def resume(campaign: SmsCampaign) -> None:
    target = C.SENDING if campaign.send_at <= timezone.now() else C.SCHEDULED
    if campaign.status != C.PAUSED or not move_campaign(campaign, target):
        raise CampaignError(f"A {campaign.get_status_display()} campaign cannot be resumed.")
    from .dispatch import wake

    wake()


def cancel(campaign: SmsCampaign, user) -> int:
    """Cancel the campaign and every message of it not sent yet; return how many."""
    if not move_campaign(campaign, C.CANCELLED):
        raise CampaignError(f"A {campaign.get_status_display()} campaign cannot be cancelled.")
    cancelled = 0
    waiting = campaign.messages.filter(status__in=states.WAITING).values_list("id", flat=True)
    while ids := list(waiting[:5000]):
        cancelled += len(move(ids, states.CANCELLED, kind="cancelled", actor=user.get_username(),
                              detail=f"campaign cancelled by {user.get_username()}", only_from=states.WAITING))
    return cancelled


def stats(campaign: SmsCampaign) -> dict[str, int]:
    """Messages per status: one grouped query, whatever the size of the campaign."""
    counts = dict(campaign.messages.values_list("status").annotate(n=Count("id")).order_by())
    return {status: counts.get(status, 0) for status, _ in states.CHOICES}


def tick() -> None:
    """The worker's periodic look at campaigns: start or resume generations, start sending
    scheduled ones whose date has come, and complete those whose messages are all final."""
    now = timezone.now()
    from .tasks import generate_campaign

    for pk in SmsCampaign.objects.filter(status=C.GENERATE).values_list("pk", flat=True):
        generate_campaign(pk)
    stale = Q(heartbeat__isnull=True) | Q(heartbeat__lt=now - STALE_AFTER)
    for pk in SmsCampaign.objects.filter(stale, status=C.GENERATING).values_list("pk", flat=True):
        log.warning("campaign %s: generation stopped; resuming it", pk)
        generate_campaign(pk)
    for campaign in SmsCampaign.objects.filter(status=C.SCHEDULED, send_at__lte=now):
        move_campaign(campaign, C.SENDING)
    for campaign in SmsCampaign.objects.filter(status=C.SENDING):
        # Nothing left to send. Delivery reports may still turn "sent" into "delivered".
        if not campaign.messages.filter(status__in=[states.DRAFT, states.TO_SEND, states.SENDING]).exists():
            move_campaign(campaign, C.COMPLETED)
