"""The scheduled tasks: find due messages, claim them, send them, record what happened.

The schedule lives in our own table (`due_at`), not in the task engine. A worker's
dispatcher loop (``crmsms worker``) calls `dispatch_once` every second; saving a message
that is due now also wakes it at once through a huey task (`wake`).

Claiming is safe with any number of workers: rows are selected FOR UPDATE SKIP LOCKED on
PostgreSQL (on SQLite the IMMEDIATE transaction holds the only write lock), moved to
"sending" with a lease and a claim token, and only the holder of the token sends them.
"""

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import timedelta
from datetime import timezone as dt_timezone
from functools import partial
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from crmsms.crm import consent
from crmsms.crm.models import ConsentChange

from . import breaker, eligibility, ratelimit, sending_hours, states
from .models import SmsCampaign, SmsMessage
from .providers import connector_at, url_for
from .providers.base import ACCEPTED, AMBIGUOUS, FAILED, RETRY_LATER, UNSUBSCRIBED, Connector, Outcome, OutgoingSms
from .transitions import Each, move, move_each, together

log = logging.getLogger(__name__)
WORKER = "worker"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def wake() -> None:
    """Ask a worker to look for due messages as soon as the current transaction commits."""
    from .tasks import dispatch_now

    transaction.on_commit(dispatch_now)


def claim_due(limit: int | None = None) -> tuple[str, list[int]]:
    """Claim up to `limit` due messages for this process; return (claim token, ids)."""
    limit = limit or settings.CRMSMS_BATCH_SIZE
    now = timezone.now()
    token = uuid.uuid4().hex
    with transaction.atomic():
        due = SmsMessage.objects.select_for_update(skip_locked=True, of=("self",)) \
            .filter(status=states.TO_SEND, due_at__lte=now).order_by("due_at", "id").values_list("id", flat=True)
        # Messages sent from a record first: a salesperson's SMS does not wait behind the
        # hundred thousand of a campaign being sent.
        ids = list(due.filter(campaign__isnull=True)[:limit])
        if len(ids) < limit:
            # A paused or cancelled campaign's messages wait (or are cancelled): not sent.
            ids += due.filter(campaign__status__in=SmsCampaign.SENDABLE)[:limit - len(ids)]
        moved = move(
            ids, states.SENDING, kind="attempt", actor=WORKER, detail=f"picked up by worker {worker_name()}",
            only_from={states.TO_SEND},
            # Until a sending thread picks the batch up (then _begin_calling extends it): a
            # batch lost with the task queue (Redis restarted) comes back this soon.
            claim_token=token, lease_until=now + timedelta(seconds=pickup_seconds()),
            calling_at=None, attempts=F("attempts") + 1,
        )
    return token, moved


def pickup_seconds() -> float:
    """How long a claimed batch may wait for a sending thread: CRMSMS_PICKUP_SECONDS, at most
    the lease. The dispatcher keeps huey's queue short (see dispatch_once), so a batch
    normally starts within a second or two."""
    return min(settings.CRMSMS_PICKUP_SECONDS, settings.CRMSMS_LEASE_SECONDS)


def send_claimed(token: str, ids: list[int]) -> None:
    """Send the messages this claim holds, a few at a time, recording each outcome."""
    pipeline = Pipeline()
    try:
        _send_claimed(token, ids, pipeline)
    finally:
        pipeline.record()


def send_backlog(token: str, ids: list[int]) -> None:
    """What a sending thread does with a batch: send it, then claim the next one and send
    it, for as long as messages are due and the worker is not stopping. Each next batch is
    claimed and read while the previous one's last calls are out, so that a backlog flows
    without a gap between batches (which cost a tenth of the time at 100 ms per call)."""
    global _busy
    with _busy_lock:
        _busy += 1
    pipeline = Pipeline()
    try:
        while ids:
            started = pipeline.started
            through_database_loss(partial(_send_claimed, token, ids, pipeline), f"batch of {len(ids)} messages")
            if pipeline.started == started:
                # This batch started no call (a pause, a rate-limit turn, sending hours, all
                # skipped): the outcomes carried over are written now, not held for as long
                # as such batches follow one another.
                pipeline.record()
            if stopping.is_set():
                break
            # Two chunks at least: a fast provider's larger chunks (_chunk_size) fill up.
            token, ids = claim_due(max(settings.CRMSMS_BATCH_SIZE, 2 * pipeline.chunk_size))
    finally:
        try:
            pipeline.record()
        finally:
            with _busy_lock:
                _busy -= 1


# What sending reads of a claimed message and of its record and campaign: the checks before
# sending (consent, eligibility, sending hours), the call, and the outcome's history. Loading
# only these columns halves the cost of reading a claim (a tenth of the worker's CPU through
# a fast provider). A field read that is not listed costs a query per message:
# test_sending_reads_each_claim_in_a_few_queries catches that (but for `segments`, read only
# for a provider with a rate limit). `str(message)` reads `recipient_name`: not while sending.
SENDING_READS = (
    "id", "contact_id", "account_id", "campaign_id", "reply_to_id", "to_number", "text", "segments", "attempts",
    "lease_until",
    "contact__first_name", "contact__last_name", "contact__phone_mobile", "contact__sms_opt_in",
    "account__name", "account__phone_office", "account__sms_opt_in",
    "campaign__respect_hours", "campaign__hours_start", "campaign__hours_end", "campaign__hours_days",
)


def _send_claimed(token: str, ids: list[int], pipeline: "Pipeline") -> None:
    held = Q(claim_token=token)
    # Picked up: the claim's short pickup lease becomes a full one.
    lease = timezone.now() + timedelta(seconds=settings.CRMSMS_LEASE_SECONDS)
    if not SmsMessage.objects.filter(held, pk__in=ids, status=states.SENDING, calling_at__isnull=True) \
            .update(lease_until=lease):
        return  # the pickup lease ran out first: the messages were queued again
    messages = list(
        SmsMessage.objects.select_related("contact", "account", "campaign").only(*SENDING_READS)
        .filter(held, pk__in=ids, status=states.SENDING, calling_at__isnull=True)
        .order_by("id")
    )
    ready: list[SmsMessage] = []
    # The number it was queued for, and the record's number now (it goes to that one).
    opted_out = consent.opted_out([m.to_number for m in messages] + [m.record.sms_number for m in messages if m.record])
    for message in messages:
        # Checked again now: the opt-in may have been withdrawn since the message was queued.
        # An automatic answer (HELP) goes to the number that asked, whatever its consent.
        refusal = None if message.reply_to_id else (
            _opted_out(message, opted_out) or eligibility.check(message.record) or _campaign_duplicate(message))
        if refusal:
            move([message.pk], states.SKIPPED, kind="skipped", actor=WORKER, detail=refusal.message,
                 where=held, error_code=refusal.code, error_message=refusal.message, lease_until=None)
        elif not _within_sending_hours(message, held):
            continue
        else:
            ready.append(message)
    # Each message through its route's provider (CRMSMS_SMS_ROUTES, by destination prefix).
    by_route: dict[str, list[SmsMessage]] = {}
    for message in ready:
        number = message.record.sms_number if message.record else message.to_number
        by_route.setdefault(url_for(number or message.to_number), []).append(message)
    for url, messages_of_route in by_route.items():
        _send_route(token, connector_at(url), messages_of_route, pipeline)


# Set when this worker stops (SIGTERM, Ctrl-C): its sending threads claim nothing more and
# finish what they hold.
stopping = threading.Event()
# This worker process's sending threads (set by `crmsms worker`; 0 elsewhere), and how many
# of them are sending a backlog now.
sending_threads = 0
_busy = 0
_busy_lock = threading.Lock()

# A chunk whose turn under the provider's rate limit is further away than this goes back to
# wait for it (see _send_route) instead of holding a sending thread.
MAX_RATE_WAIT = 5.0


def _send_route(token: str, connector: Connector, messages: list[SmsMessage], pipeline: "Pipeline") -> None:
    """Send `messages` through `connector` a chunk at a time: within the account's rate
    limit, and not while sending to it is paused (sms/breaker.py).

    The calls flow: a chunk's attempt is committed (DESIGN §4) as soon as fewer than
    `concurrency` calls are out, and its calls join the connector's pool at once, so the
    pool's free threads do not wait for the chunk before's slowest call, nor for a commit.
    A chunk's outcomes are written once all its calls are over, while later calls are out
    (the provider's latency hides that database work), in any order: a slow call holds only
    its own chunk. Never more than two chunks are unwritten (Pipeline.wait_for_room), so a
    worker that dies leaves Unknown at most two chunks per sending thread. The last chunks'
    calls may still be out on return (see Pipeline)."""
    held = Q(claim_token=token)
    queue = list(messages)
    while queue:
        if not connector.rate:
            # The chunk's size then follows the calls just over. A rate-limited provider's
            # chunks are always small, and it waits for its turn while calls are out.
            pipeline.wait_for_room(connector)
        erred = pipeline.take_erred()
        if erred:
            # The provider just answered with an error: the calls out are written first, so
            # that the breaker counts them (and may pause the provider) before more calls
            # go, and the next chunk is small.
            pipeline.record()
        pause = breaker.pause_of(connector.account)
        trial = pause is not None and pause.until <= timezone.now()
        if pause is not None:
            connector.call_seconds = None  # chunks start small again after a pause
        if pause is not None and not trial:
            _send_back(held, {m.pk: pause.until for m in queue},
                       f"Sending through {connector.account} is paused until {_utc(pause.until)} UTC: "
                       f"{pause.reason} It resumes by itself.")
            return
        # After a pause, one message tries the provider before the others follow. Chunks
        # grow at most twofold from one to the next: the next one is begun while calls are
        # out, and one of them may yet fail.
        small = settings.CRMSMS_CALL_CHUNK
        size = 1 if trial else small if erred else max(small, min(_chunk_size(connector), 2 * pipeline.chunk_size))
        pipeline.chunk_size = size
        chunk, queue = queue[:size], queue[size:]
        if connector.rate and not _take_turn(held, connector, chunk, queue):
            return
        pipeline.wait_for_room(connector)
        chunk = _begin_calling(token, chunk, connector.name)
        if chunk:
            pipeline.start(_InFlight.start(token, connector, chunk, trial))
        # Written now, while the calls just started are out.
        pipeline.record_done()
        if trial:  # its outcome decides whether the others follow
            pipeline.record()


# The call time a chunk of CRMSMS_CALL_CHUNK messages stands for: a faster provider gets
# proportionally more messages per chunk (see _chunk_size).
CHUNK_CALL_SECONDS = 0.1


def _chunk_size(connector: Connector) -> int:
    """CRMSMS_CALL_CHUNK, or for a provider whose calls last took less than
    CHUNK_CALL_SECONDS each, proportionally more, up to CRMSMS_MAX_CALL_CHUNK: a chunk's
    calls then last about the same time whatever the provider's speed, and that is what a
    worker dying mid-call leaves unknown. Not for a provider with a rate limit (its turns are
    booked a chunk at a time), nor before its first calls are timed."""
    small, seconds = settings.CRMSMS_CALL_CHUNK, connector.call_seconds
    if connector.rate or seconds is None:
        return small
    return max(small, min(settings.CRMSMS_MAX_CALL_CHUNK, int(small * CHUNK_CALL_SECONDS / max(seconds, 1e-6))))


def _timed_call(chunk: "_InFlight", call, messages: int) -> list[Outcome]:
    """Run one of connector.calls() for `chunk`, noting how long one message's call took (a
    running mean of the last ones, for every thread of the process; a call sending several
    messages counts for its waves of `concurrency`). A call with an error of the provider's
    (sms/breaker.py) marks its chunk (see Pipeline.take_erred) and forgets the measure, so
    chunks are small again: a failing provider answers fast, and its pause must come after
    few calls. Both are noted before the call's future is done, so the sending thread sees
    them as soon as it sees the call over. The trial after a pause is not timed."""
    connector = chunk.connector
    start = time.monotonic()
    try:
        outcomes = call()
    except BaseException:
        chunk.erred, connector.call_seconds = True, None
        raise
    seconds = (time.monotonic() - start) / -(-messages // max(connector.concurrency, 1))
    with _timing:
        if any(breaker.is_provider_error(outcome) for outcome in outcomes):
            chunk.erred, connector.call_seconds = True, None
        elif not chunk.trial:
            last = connector.call_seconds
            connector.call_seconds = seconds if last is None else last + (seconds - last) / 8
    return outcomes


_timing = threading.Lock()  # a call's measure is not lost to another's (_timed_call)


@dataclass(eq=False)  # one chunk is itself only (Pipeline removes it from its deque)
class _InFlight:
    """A chunk whose calls are out, and the outcomes to come: one future per call of
    connector.calls() (with how many messages it sends)."""

    token: str
    connector: Connector
    chunk: list[SmsMessage]
    calls: list[tuple[Future, int]]
    trial: bool
    left: int = 0  # messages whose calls are not over (kept by the Pipeline, under its lock)
    erred: bool = False  # a call over had an error of the provider's (set by _timed_call)

    @classmethod
    def start(cls, token: str, connector: Connector, chunk: list[SmsMessage], trial: bool) -> "_InFlight":
        pool = connector.pool()
        batch = [OutgoingSms(message_id=m.pk, to=m.to_number, body=m.text, reference=f"crmsms-{m.pk}")
                 for m in chunk]
        started = cls(token, connector, chunk, [], trial)
        started.calls = [(pool.submit(_timed_call, started, call, messages), messages)
                         for call, messages in connector.calls(batch)]
        return started

    def record(self) -> None:
        outcomes = [outcome for call, _ in self.calls for outcome in call.result()]
        if len(outcomes) != len(self.chunk):
            raise RuntimeError(f"{self.connector.name} returned {len(outcomes)} outcomes for {len(self.chunk)} messages")
        record_outcomes(self.token, list(zip(self.chunk, outcomes, strict=True)), provider=self.connector.name)
        breaker.record(self.connector.account, outcomes, trial=self.trial)


class Pipeline:
    """A sending thread's chunks whose calls are out, oldest first, carried from one chunk,
    route and claim to the next, so that the thread's database work (outcomes, the next
    attempt, the next claim) overlaps the calls. Whoever creates one records what is left
    in it at the end."""

    def __init__(self) -> None:
        self.in_flight: deque[_InFlight] = deque()
        self.started = 0  # chunks started, ever
        self.written_erred = False  # a chunk written had a provider error, not yet acted upon
        self.chunk_size = settings.CRMSMS_CALL_CHUNK  # the last one chosen (_chunk_size)
        # Told by the calling threads when a chunk's calls are all over, or when fewer than
        # `concurrency` calls of its connector are out: the sending thread waits on it
        # without waking at every call.
        self._changed = threading.Condition()
        self._out: dict[Connector, int] = {}  # messages whose calls are out, per connector

    def start(self, chunk: _InFlight) -> None:
        chunk.left = sum(messages for _, messages in chunk.calls)
        with self._changed:
            self._out[chunk.connector] = self._out.get(chunk.connector, 0) + chunk.left
        self.in_flight.append(chunk)
        self.started += 1
        for call, messages in chunk.calls:
            call.add_done_callback(partial(self._call_over, chunk, messages))

    def _call_over(self, chunk: _InFlight, messages: int, _call: Future) -> None:
        with self._changed:
            chunk.left -= messages
            self._out[chunk.connector] -= messages
            if not chunk.left or self._out[chunk.connector] < chunk.connector.concurrency:
                self._changed.notify_all()

    def _write(self, chunk: _InFlight) -> None:
        chunk.record()  # waits for its calls: then all of them have said if they erred
        self.written_erred |= chunk.erred

    def wait_for_room(self, connector: Connector) -> None:
        """Until one chunk at most is not written, and fewer than `connector.concurrency`
        of its calls are out: a chunk begun now starts calling at once instead of waiting
        for the pool. (A slow call holds the writing of its chunk only: the other chunks
        flow around it, but never more than two unwritten, which a dying worker would
        leave unknown.)"""
        def room() -> bool:
            return len(self.in_flight) <= 1 and self._out.get(connector, 0) < connector.concurrency

        while True:
            self.record_done()
            with self._changed:
                if room():
                    return
                self._changed.wait_for(lambda: room() or any(not c.left for c in self.in_flight))

    def take_erred(self) -> bool:
        """Whether a call had an error of the provider's: a call over of a chunk not written
        yet, or of one written since the last time this was asked."""
        erred, self.written_erred = self.written_erred or any(chunk.erred for chunk in self.in_flight), False
        return erred

    def record_done(self) -> None:
        """Write the outcomes of the chunks whose calls are all over (oldest first)."""
        for chunk in [c for c in self.in_flight if not c.left]:
            self.in_flight.remove(chunk)
            self._write(chunk)

    def record(self) -> None:
        """Wait for every call out, and write the outcomes: each chunk's, even if an earlier
        one failed (its error is raised at the end)."""
        failure = None
        while self.in_flight:
            try:
                self._write(self.in_flight.popleft())
            except Exception as error:  # noqa: BLE001  (raised below, once the others are written)
                if failure is not None:
                    log.error("writing the outcomes of another chunk failed too", exc_info=error)
                failure = failure or error
        if failure is not None:
            raise failure


def _take_turn(held: Q, connector: Connector, chunk: list[SmsMessage], rest: list[SmsMessage]) -> bool:
    """Wait for `chunk`'s turn under the account's rate limit and return True; or, if that
    turn is far, send the chunk and the rest back to wait, each message until its estimated
    turn (so they are not claimed again and again meanwhile), and return False."""
    booked, wait = ratelimit.book(connector.account, connector.rate, sum(m.segments or 1 for m in chunk),
                                  MAX_RATE_WAIT)
    if booked:
        time.sleep(wait)
        return True
    start = timezone.now() + timedelta(seconds=wait)
    due, spent = {}, 0
    for message in chunk + rest:
        due[message.pk] = start + timedelta(seconds=spent / connector.rate)
        spent += message.segments or 1
    _send_back(held, due, f"{connector.account} may take {connector.rate:g} segments per second "
                          "(its URL's rate option), and that many are on their way: waits for its turn.")
    return False


def _send_back(held: Q, due: dict, detail: str) -> None:
    """Messages of this claim that may not leave now wait until their time ({id: due_at});
    the attempt is not counted, since the provider was not called."""
    move_each({pk: Each(fields={"due_at": at}, detail=detail) for pk, at in due.items()}, states.TO_SEND,
              kind="waiting", actor=WORKER, where=held, lease_until=None, claim_token="",
              attempts=F("attempts") - 1)


def _utc(moment) -> str:
    return f"{moment.astimezone(dt_timezone.utc):%Y-%m-%d %H:%M:%S}"


def _within_sending_hours(message: SmsMessage, held: Q) -> bool:
    """True if the message may leave now. If not (a campaign resumed at night, a retry that
    fell in the evening), it goes back to wait for the next allowed time, the attempt not
    counted."""
    hours = message.campaign.sending_hours if message.campaign_id else None
    if hours is None:
        return True
    now = timezone.now()
    zones = sending_hours.zones_for(message.to_number)
    allowed = hours.next_allowed(now, zones)
    if allowed <= now:
        return True
    local = timezone.localtime(allowed, ZoneInfo(zones[0]))
    _send_back(held, {message.pk: allowed},
               f"Outside the campaign's sending hours ({hours}) in {zones[0]}: waits until {local:%Y-%m-%d %H:%M}.")
    return False


def _opted_out(message: SmsMessage, numbers: set[str]) -> eligibility.Refusal | None:
    for number in (message.to_number, message.record.sms_number if message.record else ""):
        if number in numbers:
            return eligibility.Refusal("opted_out", f"{number} asked for no more SMS (it replied STOP).")
    return None


def _campaign_duplicate(message: SmsMessage) -> eligibility.Refusal | None:
    """A campaign gives a number one SMS. If the record's number changed since generation to
    one another message of the campaign already goes to, this one is a duplicate now."""
    number = message.record.sms_number
    if message.campaign_id is None or number == message.to_number:
        return None
    taken = SmsMessage.objects.filter(campaign_id=message.campaign_id, to_number=number).exclude(pk=message.pk) \
        .exclude(status__in=[states.SKIPPED, states.CANCELLED]).exists()
    if not taken:
        return None
    return eligibility.Refusal("duplicate_number", f"{number} already gets this campaign's SMS through another "
                                                   "recipient (the number was changed after generation).")


def _begin_calling(token: str, chunk: list[SmsMessage], provider: str) -> list[SmsMessage]:
    """Record the attempt of `chunk` in one commit before the provider is called (DESIGN §4),
    and keep the claim's lease; return the messages that may be sent.

    A worker that dies after this commit leaves these messages "unknown"; the rest of its
    claim has no `calling_at` yet and is safely queued again when the lease ends. Only
    messages still held by this claim and never called are taken: if the lease ran out and
    the message was queued again, another worker owns it and we must not call. One
    conditional UPDATE both checks and marks them (its RETURNING says which); the ORM has
    no UPDATE ... RETURNING, and this runs for every chunk sent."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.CRMSMS_LEASE_SECONDS)
    ops, table = connection.ops, connection.ops.quote_name(SmsMessage._meta.db_table)
    ids = [m.pk for m in chunk]
    # The messages of this claim still waiting for their turn keep their lease too, renewed
    # once half of it is spent (not at every chunk: a claim usually ends well before).
    renew = any(m.lease_until and m.lease_until - now < timedelta(seconds=settings.CRMSMS_LEASE_SECONDS / 2)
                for m in chunk)
    # The record's number changed since it was queued: it goes to the new one.
    moved = [m for m in chunk if m.record and m.to_number != m.record.sms_number]
    # Usually one statement, committed on its own (a transaction around it would cost two
    # more round trips per chunk); a transaction only when more must change with it.
    with transaction.atomic() if renew or moved else nullcontext():
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET calling_at = %s, lease_until = %s, provider = %s "
                f"WHERE claim_token = %s AND status = %s AND calling_at IS NULL AND id IN ({', '.join(['%s'] * len(ids))}) "
                "RETURNING id",
                [ops.adapt_datetimefield_value(now), ops.adapt_datetimefield_value(lease), provider, token,
                 states.SENDING, *ids])
            mine = {row[0] for row in cursor.fetchall()}
        if renew:
            SmsMessage.objects.filter(claim_token=token, status=states.SENDING, calling_at__isnull=True) \
                .update(lease_until=lease)
        for message in moved:
            if message.pk in mine:
                message.to_number = message.record.sms_number
                SmsMessage.objects.filter(pk=message.pk).update(to_number=message.to_number)
    chunk = [m for m in chunk if m.pk in mine]
    for message in chunk:
        message.lease_until = lease
    return chunk


def retry_delay(attempt: int) -> float:
    """Exponential backoff with jitter: between half and all of base, 2*base, 4*base... seconds."""
    ceiling = settings.CRMSMS_RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


MAX_RETRY_AFTER = 24 * 3600.0


def _field_limit(name: str) -> int:
    return SmsMessage._meta.get_field(name).max_length


def clean_outcome(outcome: Outcome) -> Outcome:
    """What a provider says is not trusted to fit our columns: an absurd Retry-After is
    capped, an over-long code is cut. An over-long provider id cannot be cut (a delivery
    report would not find it), so the message is recorded as unknown, with the reason."""
    code = outcome.code[:_field_limit("error_code")]
    retry_after = outcome.retry_after
    if retry_after is not None and not 0 <= retry_after <= MAX_RETRY_AFTER:
        retry_after = MAX_RETRY_AFTER if retry_after > 0 else None
    if outcome.kind == ACCEPTED and len(outcome.provider_message_id) > _field_limit("provider_message_id"):
        return Outcome.ambiguous("provider_id_too_long", f"The provider accepted it with an id of "
                                 f"{len(outcome.provider_message_id)} characters, too long to store: "
                                 f"{outcome.provider_message_id[:60]}...")
    return replace(outcome, code=code, retry_after=retry_after)


def record_outcomes(token: str, results: list[tuple[SmsMessage, Outcome]], provider: str) -> None:
    """Write what the provider answered, in one transaction (a commit is the costly part on
    PostgreSQL). The provider has spoken: losing its answer to a database restart would turn
    sent messages into "unknown", so the write is retried, on a new connection, for as long
    as the lease lasts. Every move is conditional, so a repeated write changes nothing."""
    results = [(message, clean_outcome(outcome)) for message, outcome in results]
    through_database_loss(lambda: _write_outcomes(token, results, provider), f"recording {len(results)} outcomes")


def through_database_loss(work, what: str) -> None:
    """Run `work()`; if the database went away meanwhile (a restart, a failover), run it again
    on a new connection, backing off from 0.5 s to 10 s, for as long as a lease lasts. Only
    for work that is safe to repeat (every move here is conditional)."""
    deadline = time.monotonic() + settings.CRMSMS_LEASE_SECONDS
    delay = 0.5
    while True:
        try:
            work()
            return
        except (OperationalError, InterfaceError) as error:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("%s interrupted by the database (%s); going on in %.1fs", what, error, delay)
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, 10)


def _write_outcomes(token: str, results: list[tuple[SmsMessage, Outcome]], provider: str) -> None:
    held = Q(claim_token=token)
    now = timezone.now()
    accepted = {
        message.pk: Each(
            # Some providers give no id of their own (Kannel): reports then find the
            # message by our reference, and no id is stored (ids are unique per provider).
            fields={"provider_message_id": outcome.provider_message_id or None},
            detail=f"accepted by {provider}" + (f" as {outcome.provider_message_id}" if outcome.provider_message_id else ""),
            data={"attempt": message.attempts},
        )
        for message, outcome in results if outcome.kind == ACCEPTED
    }
    # Several moves in one transaction lock their messages together first (see together);
    # a chunk the provider took whole is one move, whose own SELECT ... FOR UPDATE locks them
    # in the same order: the extra round trip is spared.
    several = any(outcome.kind != ACCEPTED for _, outcome in results)
    with transaction.atomic(), together(message.pk for message, _ in results) if several else nullcontext():
        # From "sending", or from "unknown" if our lease ran out while the call was slow:
        # the provider's acceptance settles it either way.
        move_each(accepted, states.SENT, kind="sent", actor=WORKER, sent_at=now, lease_until=None,
                  error_code="", error_message="")
        for message, outcome in results:
            if outcome.kind != ACCEPTED:
                _record_refusal(message, held, outcome)
            if outcome.code == UNSUBSCRIBED:
                # The provider says this person unsubscribed (replied STOP to the sender):
                # the same as a STOP to us, for every record with the number.
                consent.opt_out(message.to_number, source=ConsentChange.PROVIDER, actor=provider,
                                detail=outcome.detail)


def _record_refusal(message: SmsMessage, held: Q, outcome: Outcome) -> None:
    data = {"attempt": message.attempts, "code": outcome.code}
    if outcome.kind == RETRY_LATER and message.attempts < settings.CRMSMS_MAX_ATTEMPTS:
        delay = max(retry_delay(message.attempts), outcome.retry_after or 0)
        due = timezone.now() + timedelta(seconds=delay)
        move([message.pk], states.TO_SEND, kind="retry", actor=WORKER, where=held,
             detail=f"{outcome.detail} Next attempt at {due:%Y-%m-%d %H:%M:%S} UTC.", data=data,
             due_at=due, lease_until=None, calling_at=None,
             error_code=outcome.code, error_message=outcome.detail)
    elif outcome.kind in (RETRY_LATER, FAILED):
        detail = outcome.detail
        if outcome.kind == RETRY_LATER:
            attempts = f"{message.attempts} attempt{'s' if message.attempts != 1 else ''}"
            detail = f"Gave up after {attempts}. Last answer: {outcome.detail}"
        move([message.pk], states.FAILED, kind="failed", actor=WORKER, where=held, detail=detail,
             data=data, lease_until=None, error_code=outcome.code, error_message=detail,
             retryable=outcome.kind == RETRY_LATER or outcome.retryable)
    elif outcome.kind == AMBIGUOUS:
        detail = (f"{outcome.detail} The provider may have received it, so it is not resent "
                  "automatically; check with the provider before sending it again.")
        move([message.pk], states.UNKNOWN, kind="unknown", actor=WORKER, where=held, detail=detail,
             data=data, lease_until=None, error_code=outcome.code, error_message=detail)
    else:
        raise ValueError(f"unknown outcome kind {outcome.kind!r}")


def expire_leases() -> tuple[int, int]:
    """Deal with messages whose worker stopped: (queued again, made unknown)."""
    now = timezone.now()
    expired = SmsMessage.objects.filter(status=states.SENDING, lease_until__lt=now).order_by()
    never_called = list(expired.filter(calling_at__isnull=True).values_list("id", flat=True))
    maybe_called = list(expired.filter(calling_at__isnull=False).values_list("id", flat=True))
    requeued = move(never_called, states.TO_SEND, kind="requeued", actor=WORKER, only_from={states.SENDING},
                    where=Q(lease_until__lt=now, calling_at__isnull=True),
                    detail="The worker stopped before calling the provider; queued again.",
                    # The claim counted an attempt, but the provider was never called: not one.
                    lease_until=None, due_at=now, attempts=Greatest(F("attempts") - 1, 0))
    lost = move(maybe_called, states.UNKNOWN, kind="unknown", actor=WORKER, only_from={states.SENDING},
                where=Q(lease_until__lt=now, calling_at__isnull=False),
                detail="The worker stopped while calling the provider: the message may or may not "
                       "have been sent, so it is not resent automatically.",
                lease_until=None, error_code="worker_lost",
                error_message="The worker stopped while calling the provider; the outcome is not known.")
    return len(requeued), len(lost)


def dispatch_once(max_batches: int = 4) -> int:
    """One pass of the dispatcher: expire leases, claim due messages, hand them to huey.

    Claims at most `max_batches` batches per pass, none while huey already has that many
    waiting, and in a worker only as many as it has idle sending threads (a busy one claims
    its own next batch, see send_backlog): a large backlog is then spread over the workers
    instead of being claimed (and leased) by the first one to look, and no lease runs out
    in a queue.
    """
    from huey.contrib.djhuey import HUEY

    from .tasks import send_batch

    expire_leases()
    claimed = 0
    room = max_batches - HUEY.pending_count()
    if sending_threads:
        with _busy_lock:
            room = min(room, sending_threads - _busy)
    for _ in range(max(0, room)):
        token, ids = claim_due()
        if not ids:
            break
        claimed += len(ids)
        send_batch(token, ids)
    return claimed
