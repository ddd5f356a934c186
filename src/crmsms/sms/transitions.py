"""Moving messages from one status to another: the only code that writes `status`.

`move` updates the rows that may make the move (on PostgreSQL, selected and locked FOR
UPDATE first, in id order; on SQLite, where the IMMEDIATE transaction already holds the
write lock, one UPDATE ... RETURNING per source status) and writes one history event per
moved message, all in one transaction.
"""

from collections import Counter
from collections.abc import Iterable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from . import states
from .models import CampaignActivity, CampaignCount, MessageEvent, SmsMessage


@dataclass
class Each:
    """What differs from one message to the next in a `move_each`."""

    fields: dict = field(default_factory=dict)
    detail: str = ""
    data: dict = field(default_factory=dict)


def move(
    ids: Iterable[int],
    target: str,
    *,
    kind: str,
    actor: str = "",
    detail: str = "",
    data: dict | None = None,
    only_from: Iterable[str] | None = None,
    where: Q | None = None,
    **fields,
) -> list[int]:
    """Move the messages `ids` that are allowed to reach `target`; return the moved ids.

    `only_from` narrows the allowed source statuses, `where` adds a condition (such as
    the claim token of the worker that holds them), `fields` are written with the status.
    """
    return move_each({pk: Each(detail=detail, data=data or {}) for pk in ids}, target, kind=kind, actor=actor,
                     only_from=only_from, where=where, **fields)


def move_each(
    changes: dict[int, Each],
    target: str,
    *,
    kind: str,
    actor: str = "",
    only_from: Iterable[str] | None = None,
    where: Q | None = None,
    **fields,
) -> list[int]:
    """`move`, with some fields and the history detail differing per message (a provider
    id, say): the common fields are written in one UPDATE, the rest one row at a time."""
    sources = states.sources_of(target)
    if only_from is not None:
        sources &= frozenset(only_from)
    if not changes or not sources:
        return []
    now = timezone.now()
    # Inside a caller's transaction, no savepoint: an error aborts the whole transaction anyway.
    with transaction.atomic(savepoint=False):
        if connection.vendor == "sqlite":
            rows = _update_from_each_source(changes, sources, where, status=target, updated_at=now, **fields)
        else:
            # Rows locked in id order: two workers moving overlapping messages cannot deadlock.
            query = (SmsMessage.objects.select_for_update().filter(pk__in=list(changes), status__in=sources)
                     .order_by("id"))
            if where is not None:
                query = query.filter(where)
            rows = list(query.values_list("id", "status", "campaign_id"))
            if rows:
                moved = [pk for pk, _, _ in rows]
                SmsMessage.objects.filter(pk__in=moved).update(status=target, updated_at=now, **fields,
                                                               **_per_row(changes, moved))
        if not rows:
            return []
        moved = [pk for pk, _, _ in rows]
        add_events((pk, now, kind, source, target, changes[pk].detail, changes[pk].data, actor)
                   for pk, source, _ in rows)
        counts: Counter = Counter()
        for _, source, campaign_id in rows:
            if campaign_id is not None:
                counts[campaign_id, source] -= 1
                counts[campaign_id, target] += 1
        pending = _pending_counts.get()
        if pending is not None:
            pending.update(counts)  # written once, at the end of the transaction (see together)
        else:
            add_counts(counts)
    return moved


# The order in which `_update_from_each_source` tries a move's source statuses: a message's
# usual path, so that the first try usually moves them all.
_LIKELY_SOURCES = (states.TO_SEND, states.SENDING, states.SENT, states.UNKNOWN, states.DRAFT, states.FAILED)


def _update_from_each_source(changes: dict[int, Each], sources: frozenset[str], where: Q | None,
                             **values) -> list[tuple[int, str, int | None]]:
    """SQLite: move the messages with one UPDATE ... RETURNING per source status, instead of
    a SELECT then an UPDATE: the same rows move (SQLite's write lock, taken when the
    transaction began, already keeps every other writer out), with one statement less
    inside that lock, which all the worker's threads and processes take turns to hold.
    RETURNING gives the new row only, hence one statement per source (its history line
    names it); return (id, source, campaign id) in id order. The ORM builds each UPDATE; it
    has no RETURNING, so the clause is added to its SQL."""
    rows: list[tuple[int, str, int | None]] = []
    remaining = set(changes)
    per_row = _per_row(changes, sorted(changes))
    for source in sorted(sources, key=lambda s: _LIKELY_SOURCES.index(s) if s in _LIKELY_SOURCES else 99):
        query = SmsMessage.objects.filter(pk__in=remaining, status=source)
        if where is not None:
            query = query.filter(where)
        update = query.query.chain(UpdateQuery)
        update.add_update_values({**values, **per_row})
        sql, params = update.get_compiler(connection.alias).as_sql()
        with connection.cursor() as cursor:
            cursor.execute(f"{sql} RETURNING id, campaign_id", params)
            moved = cursor.fetchall()
        rows += [(pk, source, campaign_id) for pk, campaign_id in moved]
        remaining -= {pk for pk, _ in moved}
        if not remaining:
            break
    return sorted(rows)


# The statuses a campaign's chart shows over time: what happened to its messages when.
CHARTED = (states.SENT, states.DELIVERED, states.UNDELIVERED, states.FAILED, states.UNKNOWN)


_pending_counts: ContextVar[Counter | None] = ContextVar("pending_counts", default=None)


@contextmanager
def together(ids: Iterable[int]):
    """For a transaction that moves several sets of messages (a batch of outcomes, a batch of
    reports): lock all of them first, in id order, and write the campaigns' counts once at
    the end, in one order. Two workers doing this on overlapping messages (the parts of one
    message reported at once; a report and the worker's outcome) then wait for each other
    instead of deadlocking. Call it inside transaction.atomic()."""
    if connection.vendor != "sqlite":  # SQLite's IMMEDIATE transaction holds the only write lock already
        list(SmsMessage.objects.select_for_update().filter(pk__in=list(ids)).order_by("id").values_list("id", flat=True))
    if _pending_counts.get() is not None:  # already inside one
        yield
        return
    token = _pending_counts.set(Counter())
    try:
        yield
        counts = _pending_counts.get()
    finally:
        _pending_counts.reset(token)
    add_counts(counts)


def add_counts(counts: Counter) -> None:
    """Add to campaigns' counts per status ({(campaign id, status): change}), and to this
    minute's activity for the statuses reached, inside the transaction that changed the
    messages. In a fixed order, so that two workers updating the same counts cannot
    deadlock."""
    changes = [(campaign_id, status, change) for (campaign_id, status), change in sorted(counts.items()) if change]
    minute = connection.ops.adapt_datetimefield_value(timezone.now().replace(second=0, microsecond=0))
    reached = [(campaign_id, minute, status, change) for campaign_id, status, change in changes
               if change > 0 and status in CHARTED]
    _add(CampaignCount, ["campaign_id", "status"], changes)
    _add(CampaignActivity, ["campaign_id", "minute", "status"], reached)


def _add(model, key: list[str], rows: list[tuple]) -> None:
    """Add each row's last value to `n` of the row with its key (created at 0 if missing):
    one statement for all, in the rows' order."""
    if not rows:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join([*key, "n"])
    values = ", ".join(["(" + ", ".join(["%s"] * (len(key) + 1)) + ")"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {values} "
                       f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET n = {table}.n + excluded.n",
                       [value for row in rows for value in row])


def _per_row(changes: dict[int, Each], ids: list[int]) -> dict:
    """The per-message fields as one CASE expression per column, so that a batch is one
    UPDATE whatever the number of messages. Written as SQL: built from the ORM's When(pk=...)
    it cost more than the rest of the move."""
    columns = {name for pk in ids for name in changes[pk].fields}
    values = {}
    for name in columns:
        field = SmsMessage._meta.get_field(name)
        column = connection.ops.quote_name(field.column)
        rows = [(pk, field.get_db_prep_value(changes[pk].fields[name], connection))
                for pk in ids if name in changes[pk].fields]
        sql = f"CASE {connection.ops.quote_name('id')} {' '.join(['WHEN %s THEN %s'] * len(rows))} ELSE {column} END"
        values[name] = RawSQL(sql, [value for row in rows for value in row], output_field=field)
    return values


def move_one(message: SmsMessage, target: str, **kwargs) -> None:
    """Move one message or raise TransitionRefused, naming its current status."""
    if not move([message.pk], target, **kwargs):
        current = SmsMessage.objects.filter(pk=message.pk).values_list("status", flat=True).first()
        raise states.TransitionRefused(message.pk, current, target)
    message.refresh_from_db()


_EVENT_COLUMNS = ("message_id", "at", "kind", "from_status", "to_status", "detail", "data", "actor")


def add_events(rows: Iterable[tuple]) -> None:
    """Write history lines, each (message id, at, kind, from status, to status, detail, data,
    actor): one prepared INSERT executed for all rows. (bulk_create builds a model and
    prepares every field of every row: a quarter of the time spent sending.) Only `at` and
    `data` need the database's form; the other values are plain strings and numbers. The rows
    of one call usually share their moment, prepared once; the fields' own preparation cost a
    tenth of a batch's write, inside the write lock."""
    at_field, encoder = MessageEvent._meta.get_field("at"), MessageEvent._meta.get_field("data").encoder
    moments: dict = {}

    def moment(at):
        if at not in moments:
            moments[at] = at_field.get_db_prep_save(at, connection)
        return moments[at]

    adapt_json = connection.ops.adapt_json_value
    prepared = [(pk, moment(at), kind, source, target, detail, None if data is None else adapt_json(data, encoder), actor)
                for pk, at, kind, source, target, detail, data, actor in rows]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(MessageEvent._meta.get_field(name).column) for name in _EVENT_COLUMNS)
    row = f"({', '.join(['%s'] * len(_EVENT_COLUMNS))})"
    with connection.cursor() as cursor:
        # Several rows per statement (one round trip to PostgreSQL), within SQLite's limit
        # on parameters.
        for start in range(0, len(prepared), 500):
            some = prepared[start:start + 500]
            cursor.execute(f"INSERT INTO {quote(MessageEvent._meta.db_table)} ({columns}) "
                           f"VALUES {', '.join([row] * len(some))}", [value for r in some for value in r])


def insert(message: SmsMessage, *, actor: str, detail: str = "", queued: str | None = None) -> None:
    """Save a new message and its "created" history line; when `queued` is given (the
    detail of its queueing line), straight into `to_send`. Two statements, where creating a
    draft and then moving it took six: its history is the same as a draft's queued at once."""
    if queued is not None:
        message.status, message.due_at = states.TO_SEND, message.send_at
    message.save(force_insert=True)
    now = message.created_at
    lines = [(message.pk, now, "created", "", "", detail, {}, actor)]
    if queued is not None:
        lines.append((message.pk, now, "queued", states.DRAFT, states.TO_SEND, queued, {}, actor))
    add_events(lines)


def note(message_id: int, kind: str, detail: str = "", *, actor: str = "", data: dict | None = None) -> None:
    """Add a history line that is not a status change (an edit, an attempt starting)."""
    MessageEvent.objects.create(message_id=message_id, kind=kind, detail=detail, actor=actor, data=data or {})
