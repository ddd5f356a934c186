"""The scheduled tasks in one process: scheduling, eligibility at send time, leases, and what
each provider answer does to a message (DESIGN §4), through the simulator's real HTTP hop."""

from concurrent.futures import Future
from datetime import timedelta
from itertools import groupby

import pytest
from django.utils import timezone

from crmsms.sms import dispatch, states
from crmsms.sms.models import SmsMessage
from crmsms.sms.providers import connector_at
from crmsms.sms.providers.base import Outcome
from crmsms.sms.providers.memory import MemoryConnector
from tests.sms.test_pacing import due_messages
from tests.sms.test_worker_processes import make_contacts

pytestmark = pytest.mark.django_db


def queued(record, body="Hello", due_in=timedelta(0)):
    due = timezone.now() + due_in
    field = "contact" if record.module == "contacts" else "account"
    return SmsMessage.objects.create(**{field: record}, body=body, text=body, status=states.TO_SEND, send_at=due, due_at=due,
                                     to_number=record.sms_number, recipient_name=str(record))


def test_due_messages_go_and_future_ones_wait(contact):
    now_msg = queued(contact, "now")
    later = queued(contact, "tomorrow", timedelta(days=1))
    assert dispatch.dispatch_once() == 1
    now_msg.refresh_from_db(), later.refresh_from_db()
    assert now_msg.status == states.SENT and now_msg.attempts == 1 and now_msg.sent_at
    assert later.status == states.TO_SEND
    assert [m.body for m in MemoryConnector.outbox] == ["now"]
    SmsMessage.objects.filter(pk=later.pk).update(due_at=timezone.now())  # its date arrives
    assert dispatch.dispatch_once() == 1
    assert [m.body for m in MemoryConnector.outbox] == ["now", "tomorrow"]


def test_a_message_from_a_record_does_not_wait_behind_a_campaign(contact, settings):
    """A campaign has hundreds of messages due since an hour; a salesperson sends one SMS
    now: the next claim takes it first, not after the campaign's backlog."""
    from crmsms.crm.models import Contact
    from crmsms.sms.models import SmsCampaign

    people = Contact.objects.bulk_create(
        Contact(last_name=str(i), phone_mobile=f"+3361{i:07d}", sms_opt_in=True) for i in range(300))
    hour_ago = timezone.now() - timedelta(hours=1)
    campaign = SmsCampaign.objects.create(name="Sale", module="contacts", send_at=hour_ago,
                                          status=SmsCampaign.SENDING, respect_hours=False)
    SmsMessage.objects.bulk_create(
        SmsMessage(contact=p, campaign=campaign, body="Sale", text="Sale", status=states.TO_SEND, send_at=hour_ago,
                   due_at=hour_ago, to_number=p.phone_mobile) for p in people)
    mine = queued(contact, "Your quote is ready")
    token, ids = dispatch.claim_due(limit=50)
    assert mine.pk in ids and len(ids) == 50  # and the rest of the claim is the campaign's
    paused = queued(contact, "later")
    SmsCampaign.objects.filter(pk=campaign.pk).update(status=SmsCampaign.PAUSED)
    token, ids = dispatch.claim_due(limit=50)
    assert ids == [paused.pk]  # a paused campaign's messages are not claimed


def test_each_message_carries_our_reference(contact):
    message = queued(contact)
    dispatch.dispatch_once()
    assert MemoryConnector.outbox[0].reference == f"crmsms-{message.pk}"


def test_opt_in_withdrawn_after_queueing_is_skipped_never_sent(contact):
    message = queued(contact)
    contact.sms_opt_in = False
    contact.save()
    dispatch.dispatch_once()
    message.refresh_from_db()
    assert message.status == states.SKIPPED and message.error_code == "no_opt_in"
    assert MemoryConnector.outbox == []


def test_number_changed_after_queueing_uses_the_current_number(contact):
    message = queued(contact)
    contact.phone_mobile = "+33698765432"
    contact.save()
    dispatch.dispatch_once()
    message.refresh_from_db()
    assert MemoryConnector.outbox[0].to == "+33698765432" == message.to_number


def test_lease_expired_before_the_call_is_queued_again(contact):
    message = queued(contact)
    token, ids = dispatch.claim_due()
    assert ids == [message.pk]
    SmsMessage.objects.filter(pk=message.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert dispatch.expire_leases() == (1, 0)
    message.refresh_from_db()
    assert message.status == states.TO_SEND
    assert message.attempts == 0  # the provider was never called: no attempt counted
    # The first claim's holder wakes up late: it must not send, the message is someone else's now.
    token2, ids2 = dispatch.claim_due()
    dispatch.send_claimed(token, ids)
    assert MemoryConnector.outbox == []
    dispatch.send_claimed(token2, ids2)
    assert len(MemoryConnector.outbox) == 1


def test_lease_expired_during_the_call_becomes_unknown(contact):
    message = queued(contact)
    dispatch.claim_due()
    SmsMessage.objects.filter(pk=message.pk).update(calling_at=timezone.now(),
                                                    lease_until=timezone.now() - timedelta(seconds=1))
    assert dispatch.expire_leases() == (0, 1)
    message.refresh_from_db()
    assert message.status == states.UNKNOWN and message.error_code == "worker_lost"
    assert dispatch.dispatch_once() == 0  # never resent blindly


# --- provider answers, through the simulator ---------------------------------------------

def configure(sim, **changes):
    sim.reconfigure(changes)


def test_accepted_records_the_provider_id(sim, contact):
    message = queued(contact)
    dispatch.dispatch_once()
    message.refresh_from_db()
    log = sim.accepted()
    assert message.status == states.SENT and message.provider == "simulator"
    assert [(e["reference"], e["id"]) for e in log] == [(f"crmsms-{message.pk}", message.provider_message_id)]


def test_429_is_retried_later_then_sent(sim, contact, settings):
    configure(sim, throttle_rate=1.0)
    message = queued(contact)
    before = timezone.now()
    dispatch.dispatch_once()
    message.refresh_from_db()
    assert message.status == states.TO_SEND and message.attempts == 1 and message.error_code == "throttled"
    assert message.due_at >= before + timedelta(seconds=settings.CRMSMS_RETRY_BASE_SECONDS / 2)
    assert dispatch.dispatch_once() == 0  # waits for its backoff
    configure(sim, throttle_rate=0.0)
    SmsMessage.objects.filter(pk=message.pk).update(due_at=timezone.now())
    dispatch.dispatch_once()
    message.refresh_from_db()
    assert message.status == states.SENT and message.attempts == 2 and message.error_code == ""
    assert len(sim.accepted()) == 1
    assert list(message.events.values_list("kind", flat=True)) == ["attempt", "retry", "attempt", "sent"]


def test_retries_stop_after_the_limit(sim, contact, settings):
    settings.CRMSMS_MAX_ATTEMPTS = 2
    configure(sim, throttle_rate=1.0)
    message = queued(contact)
    for _ in range(2):
        SmsMessage.objects.filter(pk=message.pk).update(due_at=timezone.now())
        dispatch.dispatch_once()
    message.refresh_from_db()
    assert message.status == states.FAILED and message.attempts == 2
    assert message.error_message.startswith("Gave up after 2 attempts.")


def test_permanent_refusal_fails_with_a_reason(tmp_path, settings, contact):
    from crmsms.sms.simulator import SimulatorConfig, start_in_thread

    server, thread, port = start_in_thread(SimulatorConfig(token="right"))
    try:
        settings.CRMSMS_SMS_URL = f"simulator://wrong@127.0.0.1:{port}"
        message = queued(contact)
        dispatch.dispatch_once()
        message.refresh_from_db()
        assert message.status == states.FAILED and message.error_code == "auth_failed"
        assert "CRMSMS_SMS_URL" in message.error_message
        assert dispatch.dispatch_once() == 0  # not retried
    finally:
        server.stop()
        thread.join(timeout=5)


def test_timeout_after_sending_is_unknown_not_resent(tmp_path, settings, contact):
    from crmsms.sms.simulator import SimulatorConfig, start_in_thread

    server, thread, port = start_in_thread(SimulatorConfig(timeout_rate=1.0, hang_seconds=3,
                                                           log_path=tmp_path / "sim.jsonl"))
    try:
        settings.CRMSMS_PROVIDER_TIMEOUT = 0.5
        settings.CRMSMS_SMS_URL = f"simulator://127.0.0.1:{port}"
        message = queued(contact)
        dispatch.dispatch_once()
        message.refresh_from_db()
        assert message.status == states.UNKNOWN
        assert "not resent automatically" in message.error_message
        # The provider did take it: this is exactly why it must not be sent again.
        assert f"crmsms-{message.pk}" in (tmp_path / "sim.jsonl").read_text()
        assert dispatch.dispatch_once() == 0
    finally:
        server.stop()
        thread.join(timeout=5)


def test_server_error_is_unknown(sim, contact):
    configure(sim, error_rate=1.0)
    message = queued(contact)
    dispatch.dispatch_once()
    message.refresh_from_db()
    assert message.status == states.UNKNOWN and message.error_code.startswith("provider_error_5")


def test_connection_refused_is_retried(settings, contact):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.CRMSMS_SMS_URL = f"simulator://127.0.0.1:{port}"
    message = queued(contact)
    dispatch.dispatch_once()
    message.refresh_from_db()
    assert message.status == states.TO_SEND and message.error_code == "connection_refused"


# --- chunks: larger for a provider that answers at once ---------------------------------------------

def chunk_sizes() -> list[int]:
    """How many messages each chunk held, in the order they were sent: a chunk's attempt is
    one UPDATE, so its messages share their `calling_at`."""
    moments = SmsMessage.objects.exclude(calling_at=None).order_by("calling_at").values_list("calling_at", flat=True)
    return [len(list(same)) for _, same in groupby(moments)]


def send_all_due() -> None:
    token, ids = dispatch.claim_due()
    dispatch.send_backlog(token, ids)


@pytest.fixture
def chunks(settings):

    settings.CRMSMS_CALL_CHUNK, settings.CRMSMS_MAX_CALL_CHUNK, settings.CRMSMS_BATCH_SIZE = 10, 100, 50
    connector_at.cache_clear()  # a connector remembers how fast its last calls were
    yield
    connector_at.cache_clear()


def test_a_provider_answering_at_once_gets_larger_chunks_once_timed(chunks, settings):

    settings.CRMSMS_SMS_URL = "memory://"
    due_messages(make_contacts(300))
    send_all_due()
    # The first chunk is small: the provider's speed is not known yet. Then chunks double
    # up to CRMSMS_MAX_CALL_CHUNK, the claims growing to two chunks.
    sizes = chunk_sizes()
    assert sizes[0] == 10 and max(sizes) == 100 and sum(sizes) == 300, sizes
    assert SmsMessage.objects.filter(status=states.SENT).count() == 300


def test_a_slow_or_rate_limited_provider_keeps_small_chunks(chunks, settings, sim):

    sim.reconfigure({"latency_ms": 120})  # over dispatch.CHUNK_CALL_SECONDS (0.1 s) per call
    due_messages(make_contacts(30))
    send_all_due()
    assert chunk_sizes() == [10, 10, 10]

    SmsMessage.objects.all().delete()
    settings.CRMSMS_SMS_URL = "memory://?rate=100000"  # fast, but its turns are booked a chunk at a time
    due_messages(make_contacts(40))
    send_all_due()
    assert chunk_sizes() == [10, 10, 10, 10]


def test_chunks_grow_in_proportion_to_the_providers_speed(chunks, settings):

    connector = connector_at("memory://")
    sizes = {}
    for seconds in (None, 0.5, 0.1, 0.05, 0.025, 0.01, 0.0001):
        connector.call_seconds = seconds
        sizes[seconds] = dispatch._chunk_size(connector)
    # 10 at 0.1 s per call or slower (or not timed yet); 10 x 0.1 s / its time; 100 at most.
    assert sizes == {None: 10, 0.5: 10, 0.1: 10, 0.05: 20, 0.025: 40, 0.01: 100, 0.0001: 100}
    settings.CRMSMS_MAX_CALL_CHUNK = 10  # turned off
    assert dispatch._chunk_size(connector) == 10


@pytest.mark.django_db(transaction=True)
def test_a_provider_that_stops_answering_well_gets_small_chunks_at_once(chunks, settings, sim):

    settings.CRMSMS_PROVIDER_PAUSE_SECONDS = 0  # no pause: only the chunks are looked at here
    due_messages(make_contacts(200))
    token, ids = dispatch.claim_due(200)
    pipeline = dispatch.Pipeline()
    dispatch._send_claimed(token, ids[:60], pipeline)  # fast: chunks of 10 then larger
    pipeline.record()
    assert max(chunk_sizes()) > 10
    sim.reconfigure({"error_rate": 1.0})  # from now on, HTTP 500 to every call
    sent_before = len(chunk_sizes())
    dispatch._send_claimed(token, ids[60:], pipeline)
    pipeline.record()
    after = chunk_sizes()[sent_before:]
    # The first chunk after the change was sized while the provider looked fast; the one
    # after it is small again, since its size follows the calls just over.
    assert after[1:] and set(after[1:]) == {10}, after


def send_with_slow_calls(settings, sim, rate: float, hang: float) -> list[int]:
    """Send 200 due messages in chunks of 10 through the simulator, which takes a share
    `rate` of the calls and answers them (201) only after `hang` seconds; check that each
    was called once and is sent, and return the slow ones' ids, in the order called."""
    settings.CRMSMS_PROVIDER_TIMEOUT, settings.CRMSMS_MAX_CALL_CHUNK = 5, 10
    sim.reconfigure({"timeout_rate": rate, "hang_seconds": hang})
    due_messages(make_contacts(200))
    send_all_due()
    assert SmsMessage.objects.filter(status=states.SENT).count() == 200
    called = [r["reference"] for r in sim.requests]
    assert len(called) == len(set(called)) == 200
    return [int(r["reference"].removeprefix("crmsms-")) for r in sim.requests if r["answer"] == "hung"]


def test_the_calls_flow_past_a_chunks_slowest_call(chunks, settings, sim):
    """A chunk's slow call does not hold the others: the next chunk begins while it is out,
    on the pool's free threads. (Chunks used to follow one another: each waited for the
    slowest call of the one before, and a provider with a slow tail, such as Kannel under
    load, was used at half its pace.)"""
    hang = 0.4
    slow = send_with_slow_calls(settings, sim, 0.05, hang)  # one call in twenty
    begun = sorted(set(SmsMessage.objects.values_list("calling_at", flat=True)))
    overtaken = 0
    for calling_at in SmsMessage.objects.filter(pk__in=slow).values_list("calling_at", flat=True):
        if calling_at == begun[-1]:
            continue  # in the last chunk: nothing left to begin
        # Answered `hang` seconds after it began at the earliest; other chunks began meanwhile.
        overtaken += any(calling_at < other < calling_at + timedelta(seconds=hang) for other in begun)
    assert len(slow) >= 10 and overtaken >= len(slow) - 2, (len(slow), overtaken)


def test_a_provider_failing_half_its_calls_keeps_small_chunks(chunks, settings, sim):
    """It answers at once, so its speed alone would make chunks of 100; but a call with an
    error brings the next chunk back to 10, and chunks only double from one to the next:
    a chunk whose calls are out while the next is chosen may still fail."""
    settings.CRMSMS_PROVIDER_PAUSE_SECONDS = 0  # no pause: only the chunks are looked at here
    sim.reconfigure({"error_rate": 0.5})
    due_messages(make_contacts(300))
    send_all_due()
    sizes = chunk_sizes()
    assert sum(sizes) == 300 and max(sizes) <= 20, sizes
    assert SmsMessage.objects.filter(status=states.UNKNOWN).count() == sum(r["answer"] == "error" for r in sim.requests)


def test_a_chunk_whose_outcomes_cannot_be_had_does_not_keep_the_next_unwritten(chunks, settings):
    """A connector that raises (a bug: connectors return outcomes) leaves its chunk "sending",
    for the lease to make it unknown; the chunk after it, answered, is still written."""
    settings.CRMSMS_SMS_URL = "memory://"
    due_messages(make_contacts(2))
    token, ids = dispatch.claim_due(2)
    first, second = (dispatch._begin_calling(token, [m], "memory")
                     for m in SmsMessage.objects.filter(pk__in=ids).order_by("id"))
    broken, answered = Future(), Future()
    broken.set_exception(RuntimeError("a connector bug"))
    answered.set_result([Outcome.accepted("mem-2")])
    connector = connector_at("memory://")
    pipeline = dispatch.Pipeline()
    pipeline.start(dispatch._InFlight(token, connector, first, [(broken, 1)], trial=False))
    pipeline.start(dispatch._InFlight(token, connector, second, [(answered, 1)], trial=False))
    with pytest.raises(RuntimeError, match="a connector bug"):
        pipeline.record()
    assert not pipeline.in_flight
    assert SmsMessage.objects.get(pk=first[0].pk).status == states.SENDING
    assert SmsMessage.objects.get(pk=second[0].pk).status == states.SENT


def test_a_slow_call_holds_only_its_own_chunk(chunks, settings, sim):
    """While one call is out for long (a provider's timeout is seconds), the chunks begun
    after it are called and written: only the slow call's own chunk waits for it."""
    hang = 1.0
    # About one call in 100; with the simulator's seed, the first two are 24 calls apart.
    slow = send_with_slow_calls(settings, sim, 0.01, hang)
    first = SmsMessage.objects.get(pk=slow[0])
    written_meanwhile = SmsMessage.objects.filter(
        calling_at__gt=first.calling_at, sent_at__lt=first.calling_at + timedelta(seconds=hang - 0.2)).count()
    assert written_meanwhile >= 10, written_meanwhile


def test_sending_reads_each_claim_in_a_few_queries(chunks, settings, django_assert_max_num_queries):
    """Sending reads what it needs of a message, its record (contact or account) and its
    campaign with the claim's one read (dispatch.SENDING_READS): a field read that was not
    loaded would cost one query per message, here 20 or more."""
    from datetime import time

    from crmsms.crm.models import Account
    from crmsms.sms.models import SmsCampaign

    settings.CRMSMS_CALL_CHUNK = settings.CRMSMS_MAX_CALL_CHUNK = 60  # one chunk: a fixed number of statements
    now = timezone.now()
    # Allowed all day long: the campaign's sending hours are read, and let its messages go.
    campaign = SmsCampaign.objects.create(name="Sale", module="contacts", send_at=now, status=SmsCampaign.SENDING,
                                          respect_hours=True, hours_start=time(0), hours_end=time.max,
                                          hours_days="0123456")
    people = make_contacts(40)
    firms = Account.objects.bulk_create(
        Account(name=f"Firm {i}", phone_office=f"+3362{i:07d}", sms_opt_in=True) for i in range(20))
    SmsMessage.objects.bulk_create(
        [SmsMessage(contact=p, campaign=campaign if i % 2 else None, body="Hi", text="Hi", status=states.TO_SEND,
                    send_at=now, due_at=now, to_number=p.phone_mobile) for i, p in enumerate(people)]
        + [SmsMessage(account=a, body="Hi", text="Hi", status=states.TO_SEND, send_at=now, due_at=now,
                      to_number=a.phone_office) for a in firms])
    token, ids = dispatch.claim_due(limit=60)
    with django_assert_max_num_queries(15):
        dispatch.send_claimed(token, ids)
    assert SmsMessage.objects.filter(status=states.SENT).count() == 60
    assert len(MemoryConnector.outbox) == 60
