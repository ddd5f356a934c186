"""SMS campaigns: their recipients, and moving a campaign through its statuses (DESIGN §1).
Generating the messages is in `generation`."""

import logging
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from crmsms.crm import phones
from crmsms.crm.models import Account, Contact
from crmsms.web import csvfile

from . import states, variables
from .models import CampaignCount, CampaignRecipient, SmsCampaign
from .providers import configured_connectors
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
    C.COMPLETED: frozenset({C.SENDING}),  # « Retry failed »
    C.CANCELLED: frozenset(),
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
    reader = csv.reader(lines, delimiter=csvfile.delimiter(lines))
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


def retry_failed(campaign: SmsCampaign, user) -> int:
    """Queue again the campaign's failed messages whose failure is retryable (the provider
    proved it did not take them); return how many. They leave now (within the campaign's
    sending hours), each checked again for opt-in, through the normal dispatcher."""
    if campaign.status not in (C.SENDING, C.SCHEDULED, C.PAUSED, C.COMPLETED):
        raise CampaignError(f"A {campaign.get_status_display()} campaign has no SMS to retry.")
    retryable = campaign.messages.filter(status=states.FAILED, retryable=True).values_list("id", flat=True)
    now, queued = timezone.now(), 0
    while ids := list(retryable[:5000]):
        queued += len(move(ids, states.TO_SEND, kind="retry", actor=user.get_username(),
                           detail=f"« Retry failed » by {user.get_username()}", only_from={states.FAILED},
                           where=Q(retryable=True), due_at=now, attempts=0, retryable=False,
                           calling_at=None, lease_until=None, claim_token=""))
    if queued and campaign.status == C.COMPLETED:
        move_campaign(campaign, C.SENDING)
    if queued:
        from .dispatch import wake

        wake()
    return queued


def retryable_count(campaign: SmsCampaign) -> int:
    return campaign.messages.filter(status=states.FAILED, retryable=True).count()


def stats(campaign: SmsCampaign) -> dict[str, int]:
    """Messages per status, from the counts kept with every change: one small query,
    whatever the size of the campaign."""
    counts = dict(CampaignCount.objects.filter(campaign=campaign).values_list("status", "n"))
    return {status: counts.get(status, 0) for status, _ in states.CHOICES}


def recount(campaign: SmsCampaign) -> dict[str, int]:
    """Count the campaign's messages per status afresh and store the counts. The counts are
    kept exactly by every change; this is for a database edited by hand (and the tests'
    check that the kept counts are right)."""
    with transaction.atomic():
        counts = dict(campaign.messages.values_list("status").annotate(n=Count("id")).order_by())
        for status, _ in states.CHOICES:
            CampaignCount.objects.update_or_create(campaign=campaign, status=status,
                                                   defaults={"n": counts.get(status, 0)})
    return stats(campaign)


def tick() -> None:
    """The worker's periodic look at campaigns: start or resume generations, start sending
    scheduled ones whose date has come, and complete those whose messages are all final."""
    now = timezone.now()
    from .generation import stale_after
    from .tasks import generate_campaign

    for pk in SmsCampaign.objects.filter(status=C.GENERATE).values_list("pk", flat=True):
        generate_campaign(pk)
    stale = Q(heartbeat__isnull=True) | Q(heartbeat__lt=now - stale_after())
    for pk in SmsCampaign.objects.filter(stale, status=C.GENERATING).values_list("pk", flat=True):
        log.warning("campaign %s: generation stopped; resuming it", pk)
        generate_campaign(pk)
    for campaign in SmsCampaign.objects.filter(status=C.SCHEDULED, send_at__lte=now):
        move_campaign(campaign, C.SENDING)
    reporting = {c.name for c in configured_connectors() if c.reports}
    for campaign in SmsCampaign.objects.filter(status=C.SENDING):
        # Complete once every message is final: nothing left to send and, with a provider
        # that sends delivery reports, none still waiting for its report (those that never
        # get one become "unknown" after CRMSMS_REPORT_EXPIRY_HOURS). With a provider that
        # sends none, "sent" is as far as a message goes.
        counts = stats(campaign)
        if counts[states.DRAFT] or counts[states.TO_SEND] or counts[states.SENDING]:
            continue
        if reporting and counts[states.SENT] and \
                campaign.messages.filter(status=states.SENT, provider__in=reporting).exists():
            continue
        move_campaign(campaign, C.COMPLETED)
