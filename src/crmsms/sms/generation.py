"""« Generate all SMS Messages »: one message per recipient of a campaign, made by the
worker (never in a web request), and the forecast of what that would do.

Resumable: messages are written in batches together with the campaign's cursor (the last
recipient done), in one transaction, and a unique constraint allows one message per
(campaign, recipient), so a generation interrupted by a crash continues where it stopped
with no duplicates and no holes. The campaign leaves "generating" only when every
recipient has its message.

Fast, because a campaign may have a million recipients: each batch of recipients is read
in one query as plain values (no model instance per recipient), each number's kind is the
one stored on its record (no phone-number parsing), and each batch of messages is written
with one prepared executemany. The forecast uses the same reading and the same decisions,
so what the campaign page announces is what generation does.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from crmsms.crm import phones
from crmsms.crm.models import OptOut

from . import eligibility, placeholders, segments, sending_hours, states, variables
from .campaigns import C, model_of, move_campaign, record_field
from .models import CampaignCount, CampaignRecipient, SmsCampaign, SmsMessage
from .transitions import add_counts

log = logging.getLogger(__name__)

def batch_size() -> int:
    """Recipients per batch: read in one query, written in one transaction with the cursor."""
    return settings.CRMSMS_GENERATION_BATCH


def stale_after() -> timedelta:
    """How long without a heartbeat (written with every batch) before a generation is taken
    as abandoned by its worker and resumed by another."""
    return timedelta(seconds=settings.CRMSMS_GENERATION_STALE_SECONDS)


REASONS = {
    "opted_out": "Opted out (replied STOP)",
    "no_opt_in": "No opt-in",
    "no_number": "No number",
    "invalid_number": "Invalid number",
    "not_mobile": "Landline or not a mobile",
    "duplicate_number": "Duplicate number",
    "record_deleted": "Record deleted",
    "empty_text": "Empty text once filled in",
}

# How a recipient is named on its message (the records' __str__, from plain values).
NAME_FIELDS = {variables.CONTACTS: ("first_name", "last_name"), variables.ACCOUNTS: ("name",)}


# --- reading recipients and deciding --------------------------------------------------------

@dataclass
class _Plan:
    """How to read one campaign's recipients and make their texts. A row is
    (recipient id, record id, *name fields, number, opt-in, number kind, *variable fields)."""

    campaign: SmsCampaign
    compiled: placeholders.Compiled | None
    lookups: list[str] = field(default_factory=list)
    label: str = ""  # the number field's name, for reasons a person reads
    names: slice = field(default_factory=lambda: slice(0))
    number_at: int = 0
    record_values: list[tuple[str, int, object]] = field(default_factory=list)  # (name, row index, shown)
    common_values: dict[str, str] = field(default_factory=dict)
    opted_out: set[str] = field(default_factory=set)  # numbers that asked for no more SMS

    @classmethod
    def of(cls, campaign: SmsCampaign, body: str) -> "_Plan":
        compiled = None
        if body:
            try:
                compiled = placeholders.compile(body, campaign.module)
            except placeholders.PlaceholderError:
                compiled = None  # a draft's text with mistakes: the forecast counts without texts
        model = model_of(campaign.module)
        prefix = record_field(campaign.module) + "__"
        name_fields = NAME_FIELDS[campaign.module]
        plan = cls(campaign, compiled, label=str(model._meta.get_field(model.phone_field).verbose_name),
                   opted_out=set(OptOut.objects.values_list("number", flat=True)))
        plan.lookups = ["pk", prefix + "id", *(prefix + f for f in name_fields),
                        prefix + model.phone_field, prefix + "sms_opt_in", prefix + "number_kind"]
        plan.names = slice(2, 2 + len(name_fields))
        plan.number_at = plan.names.stop
        for name in sorted(compiled.names) if compiled else []:
            variable = variables.BY_NAME[campaign.module][name]
            if variable.common:
                plan.common_values[name] = variable.common(campaign.created_by, campaign.send_at)
            else:
                plan.record_values.append((name, len(plan.lookups), variable.shown))
                plan.lookups.append(prefix + variable.field)
        return plan

    def batches(self, after: int = 0):
        """The campaign's recipients as rows, in recipient id order, a batch at a time."""
        recipients = self.campaign.recipients.order_by("pk").values_list(*self.lookups)
        size = batch_size()
        while batch := list(recipients.filter(pk__gt=after)[:size]):
            yield batch
            after = batch[-1][0]

    def decide(self, row: tuple, seen: set) -> tuple[str, str, str]:
        """(name, reason code, why) for a recipient who gets no message, (name, "", text)
        for one who does. The first recipient with a number gets it: the later ones with
        the same number are duplicates, and `seen` holds the numbers given so far."""
        name = " ".join(row[self.names]).strip()
        number, opt_in, kind = row[self.number_at:self.number_at + 3]
        if number in self.opted_out:
            return name, "opted_out", f"{phones.display(number)} asked for no more SMS (it replied STOP)."
        refusal = eligibility.refusal(name, self.label, number, kind, opt_in)
        if refusal:
            return name, refusal.code, refusal.message
        key = _key(number)
        if key in seen:
            return name, "duplicate_number", \
                f"{phones.display(number)} already gets this campaign's SMS through another recipient."
        text = ""
        if self.compiled is not None:
            values = dict(self.common_values)
            for variable, index, shown in self.record_values:
                values[variable] = shown(row[index])
            text = segments.normalise(self.compiled.render(values))
            if not text.strip():
                return name, "empty_text", f"The text is empty for {name}: its variables have no value."
        seen.add(key)  # only now: a recipient whose text came out empty does not take the number
        return name, "", text


def _key(number: str):
    """A number as a set member: an int takes half the memory of its string, which counts
    with a million recipients."""
    return int(number[1:]) if number[1:].isdigit() else number


# --- forecast -----------------------------------------------------------------------------

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


def forecast(campaign: SmsCampaign) -> Forecast:
    result = Forecast()
    seen: set = set()
    plan = _Plan.of(campaign, campaign.body or (campaign.template.body if campaign.template else ""))
    for batch in plan.batches():
        for row in batch:
            _name, reason, text = plan.decide(row, seen)
            if reason:
                result.skipped[reason] += 1
                continue
            result.messages += 1
            if text:
                result.segments += segments.measure(text).segments
    return result


# --- generation ---------------------------------------------------------------------------

def claim(campaign_id: int) -> SmsCampaign | None:
    """Take the campaign's generation: a new one, or one whose worker stopped beating."""
    now = timezone.now()
    fresh = SmsCampaign.objects.filter(pk=campaign_id, status=C.GENERATE).first()
    if fresh is not None:
        total = fresh.recipients.count()
        body = fresh.template.body if fresh.template else ""
        if move_campaign(fresh, C.GENERATING, heartbeat=now, body=body, recipients_total=total,
                         cursor=0, generated=0, skipped=0):
            # Its counts per status, kept from now on by every change to its messages.
            CampaignCount.objects.bulk_create([CampaignCount(campaign=fresh, status=s) for s, _ in states.CHOICES],
                                              ignore_conflicts=True)
            _refresh_planner_statistics(CampaignRecipient)
            return fresh
        return None
    taken = SmsCampaign.objects.filter(
        pk=campaign_id, status=C.GENERATING
    ).filter(Q(heartbeat__isnull=True) | Q(heartbeat__lt=now - stale_after())).update(heartbeat=now)
    return SmsCampaign.objects.get(pk=campaign_id) if taken else None


def generate(campaign_id: int) -> bool:
    """Generate the campaign's messages (or finish an interrupted generation). Returns
    False when there was nothing to take (another worker has it, or it is done)."""
    campaign = claim(campaign_id)
    if campaign is None:
        return False
    plan = _Plan.of(campaign, campaign.body)
    writer = _Writer(campaign)
    due = _DueDates(campaign)
    # Numbers already given a message by a previous, interrupted run: still taken.
    seen = {_key(n) for n in campaign.messages.exclude(status=states.SKIPPED).values_list("to_number", flat=True)}
    for batch in plan.batches(after=campaign.cursor):
        rows, skipped = [], 0
        for row in batch:
            name, reason, text = plan.decide(row, seen)
            number = row[plan.number_at]
            if reason:
                skipped += 1
                rows.append((row[1], name, number, "", "", 0, states.SKIPPED, reason, text, due.send_at))
            else:
                measure = segments.measure(text)
                rows.append((row[1], name, number, text, measure.encoding, measure.segments, states.TO_SEND, "", "",
                             due.of(number)))
        if not writer.write(rows, cursor=batch[-1][0], generated=len(rows) - skipped, skipped=skipped):
            return True  # cancelled meanwhile, or taken over by another worker
    campaign.refresh_from_db()
    _refresh_planner_statistics(SmsMessage)
    target = C.SENDING if campaign.send_at <= timezone.now() else C.SCHEDULED
    move_campaign(campaign, target, heartbeat=None)
    if target == C.SENDING:
        from .dispatch import wake

        wake()
    return True


def _refresh_planner_statistics(model) -> None:
    """Tell the database's planner the new shape of `model`'s table, which a campaign may
    have just grown by a million rows: before generating, its recipients (PostgreSQL
    without statistics reads the whole campaign and sorts it for each batch of 2,000:
    hours instead of a minute for a million); after, its messages (SQLite without
    statistics reads a contact's in-flight messages through the status index, every
    message to send, instead of the contact's). Both sample the table: well under a
    second. Autovacuum would do it on PostgreSQL too, but later."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA analysis_limit = 1000")
        cursor.execute(f"ANALYZE {table}")


class _DueDates:
    """When each message is due: the campaign's date of dispatch, or with sending hours the
    first allowed moment from then in the recipient's time zone (one computation per set
    of zones, not per recipient)."""

    def __init__(self, campaign: SmsCampaign):
        self.hours = campaign.sending_hours
        self.when = campaign.send_at
        self.send_at = connection.ops.adapt_datetimefield_value(campaign.send_at)
        self.by_zones: dict[tuple[str, ...], object] = {}

    def of(self, number: str):
        if self.hours is None:
            return self.send_at
        zones = sending_hours.zones_for(number)
        due = self.by_zones.get(zones)
        if due is None:
            due = self.by_zones[zones] = connection.ops.adapt_datetimefield_value(
                self.hours.next_allowed(self.when, zones))
        return due


class _Writer:
    """Writes a campaign's messages a batch at a time, with its progress, in one transaction.

    One prepared INSERT, executed for the whole batch: what a bulk_create would do, without
    building a model instance and preparing every field of every message. Only a
    (campaign, recipient) that already has its message is skipped (ON CONFLICT DO NOTHING,
    not SQLite's INSERT OR IGNORE, which would also drop a row that breaks NOT NULL)."""

    # What differs from one message to the next, in a row's order after the record's id.
    PER_MESSAGE = ["recipient_name", "to_number", "text", "encoding", "segments", "status", "error_code",
                   "error_message", "due_at"]

    def __init__(self, campaign: SmsCampaign):
        self.campaign = campaign
        # The heartbeat this generation wrote last: the proof it still owns the generation.
        # Another worker that found it stale (this one too slow, not dead) writes its own.
        self.heartbeat = campaign.heartbeat
        record_column = record_field(campaign.module) + "_id"
        now = timezone.now()
        given = {"campaign_id": campaign.pk, "template_id": campaign.template_id, "body": campaign.body,
                 "created_by_id": campaign.created_by_id, "send_at": campaign.send_at,
                 "created_at": now, "updated_at": now}
        # Every other column takes the model's default: a field added to SmsMessage later
        # cannot be left out of this INSERT.
        fixed = [field for field in SmsMessage._meta.concrete_fields
                 if not field.primary_key and field.attname not in (record_column, *self.PER_MESSAGE)]
        self.constant = tuple(
            field.get_db_prep_save(given[field.attname] if field.attname in given else field.get_default(),
                                   connection)
            for field in fixed)
        quote = connection.ops.quote_name
        columns = ", ".join(quote(c) for c in [record_column, *self.PER_MESSAGE, *(f.column for f in fixed)])
        values = ", ".join(["%s"] * (1 + len(self.PER_MESSAGE) + len(fixed)))
        self.sql = (f"INSERT INTO {quote(SmsMessage._meta.db_table)} ({columns}) VALUES ({values}) "
                    "ON CONFLICT DO NOTHING")

    def write(self, rows: list[tuple], *, cursor: int, generated: int, skipped: int) -> bool:
        """Write one batch and the progress after it; False if the campaign is no longer
        generating (a user cancelled it) or no longer this generation's (another worker took
        it over): then nothing is written, and this generation stops."""
        with transaction.atomic():
            still = SmsCampaign.objects.select_for_update().filter(
                pk=self.campaign.pk, status=C.GENERATING, heartbeat=self.heartbeat).exists()
            if not still:
                return False
            with connection.cursor() as db:
                db.executemany(self.sql, [row + self.constant for row in rows])
            now = timezone.now()
            SmsCampaign.objects.filter(pk=self.campaign.pk).update(
                cursor=cursor, heartbeat=now, updated_at=now,
                generated=F("generated") + generated, skipped=F("skipped") + skipped)
            self.heartbeat = now
            add_counts(Counter({(self.campaign.pk, states.TO_SEND): generated,
                                (self.campaign.pk, states.SKIPPED): skipped}))
        return True
