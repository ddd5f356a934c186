"""Sending at the provider's pace: the per-account rate limit in segments per second (shared
through Redis), the pause of a provider whose errors spike and its trial afterwards, and the
periodic jobs run by one worker only."""

import signal
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from crmsms.sms import breaker, dispatch, periodic, ratelimit, states
from crmsms.sms.models import MessageEvent, ProviderPause, SmsMessage, WorkerLease
from crmsms.sms.providers import connector_for
from crmsms.sms.providers.memory import MemoryConnector

from .test_worker_processes import make_contacts, start_worker, stop, wait_for

REDIS_URL = "redis://127.0.0.1:6379/0"


def due_messages(contacts, body="Hello", **fields):
    now = timezone.now()
    return SmsMessage.objects.bulk_create(
        SmsMessage(contact=c, to_number=c.phone_mobile, text=body, segments=1, status=states.TO_SEND,
                   send_at=now, due_at=now, **fields) for c in contacts)


# --- the rate limit ------------------------------------------------------------------------------

@pytest.mark.parametrize("shared", [False, True], ids=["in-process", "redis"])
def test_turns_follow_the_rate_and_a_far_turn_is_not_booked(settings, shared):
    settings.CRMSMS_REDIS_URL = REDIS_URL if shared else ""
    ratelimit.forget()
    account = f"test://{uuid.uuid4().hex}@example"
    assert ratelimit.book(account, rate=2, segments=10, max_wait=5) == (True, 0)  # its turn is now
    booked, wait = ratelimit.book(account, rate=2, segments=4, max_wait=5)  # after the 10 segments: 5 s
    assert booked and wait == pytest.approx(5, abs=0.2)
    booked, wait = ratelimit.book(account, rate=2, segments=1, max_wait=5)  # 7 s away: not booked
    assert not booked and wait == pytest.approx(7, abs=0.2)
    # Not booked means the clock did not move: a small wait is still offered at 7 s.
    booked, wait = ratelimit.book(account, rate=2, segments=1, max_wait=8)
    assert booked and wait == pytest.approx(7, abs=0.2)


def test_rate_option_is_checked():
    assert connector_for("memory://?rate=12.5").rate == 12.5
    assert connector_for("memory://").rate == 0
    for bad in ("abc", "-1", "inf", "nan"):
        with pytest.raises(ValueError, match=f"rate: '{bad}' is not a number of segments per second"):
            connector_for(f"memory://?rate={bad}")


def test_account_names_no_secret():
    assert connector_for("simulator://s3cret@127.0.0.1:9090").account.startswith("simulator://#")
    assert "s3cret" not in connector_for("simulator://s3cret@127.0.0.1:9090").account
    assert connector_for("twilio://AC123:tok@api.twilio.com?from=%2B33600000000").account == \
        "twilio://AC123@api.twilio.com"


@pytest.mark.django_db(transaction=True)
def test_messages_beyond_the_rate_wait_for_their_turn_uncounted(settings):
    """rate=1: the first chunk (10 segments) goes now; the next one's turn is 10 s away, more
    than a thread waits, so those messages go back to wait, each until its own turn, with no
    attempt counted."""
    settings.CRMSMS_SMS_URL = "memory://?rate=1"
    messages = due_messages(make_contacts(15))
    dispatch.dispatch_once()
    assert len(MemoryConnector.outbox) == 10
    waiting = SmsMessage.objects.filter(status=states.TO_SEND).order_by("due_at", "id")
    assert [m.pk for m in waiting] == [m.pk for m in messages[10:]]
    dues = [m.due_at for m in waiting]
    assert dues == sorted(dues) and dues[0] > timezone.now() + timedelta(seconds=9)  # the real turn: 10 s
    assert (dues[-1] - dues[0]).total_seconds() == pytest.approx(4, abs=0.1)  # one second per segment
    assert all(m.attempts == 0 for m in waiting)
    event = MessageEvent.objects.filter(message=waiting[0], kind="waiting").get()
    assert "may take 1 segments per second" in event.detail
    assert dispatch.dispatch_once() == 0  # not claimed again before their turn


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_two_workers_share_one_rate_through_redis(tmp_path, sim):
    """Two real workers, one account limited to 25 segments/s, counted in Redis: 150
    single-segment messages take at least 5 s (alone, each worker would send 25/s, and the
    pair 50/s), and no second of the simulator's log holds much more than the rate."""
    url = f"{sim.url}?rate=25"
    due_messages(make_contacts(150))
    env = {"CRMSMS_REDIS_URL": REDIS_URL, "CRMSMS_BATCH_SIZE": "10"}  # small claims: both workers get some
    workers = [start_worker(tmp_path, url, f"w{i}", **env) for i in range(2)]
    try:
        wait_for(lambda: len(sim.accepted()) == 150, 60, "150 messages accepted")
    finally:
        stop(*workers)
    times = sorted(time_of(entry) for entry in sim.accepted())
    assert times[-1] - times[0] >= 4.5, times[-1] - times[0]
    busiest = max(sum(1 for t in times if start <= t < start + 1) for start in times)
    assert busiest <= 25 + 2 * 10, busiest  # the rate, plus a chunk in flight per worker at most
    assert SmsMessage.objects.filter(status=states.SENT).count() == 150
    assert len({entry["reference"] for entry in sim.accepted()}) == 150


def time_of(entry) -> float:
    from datetime import datetime

    return datetime.fromisoformat(entry["at"]).timestamp()


# --- the pause of a failing provider -------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_errors_spiking_pause_the_provider_then_one_trial_resumes_it(sim, settings, user, client):
    settings.CRMSMS_BATCH_SIZE = 60
    sim.reconfigure({"error_rate": 1.0})  # every call: HTTP 500, ambiguous
    messages = due_messages(make_contacts(60))
    dispatch.dispatch_once()
    # Two chunks of 10 fail (20 calls, all errors): the account is paused. After a call with
    # an error, no chunk begins before the calls out are written (and counted by the
    # breaker): the other 40 wait instead of becoming "unknown" too.
    assert SmsMessage.objects.filter(status=states.UNKNOWN).count() == 20
    pause = ProviderPause.objects.get()
    assert "20 of the last 20 calls failed within 30 s" in pause.reason and "HTTP 500" in pause.reason
    assert pause.until == pytest.approx(timezone.now() + timedelta(seconds=30), abs=timedelta(seconds=3))
    waiting = SmsMessage.objects.filter(status=states.TO_SEND)
    assert waiting.count() == 40 and {m.due_at for m in waiting} == {pause.until}
    assert {m.attempts for m in waiting} == {0}
    assert "is paused until" in waiting[0].events.last().detail

    client.force_login(user)
    page = client.get("/sms/").content.decode()
    assert "is paused until" in page and pause.account in page and "resumes by itself" in page

    # The pause ends; the provider works again: one trial message first, then the rest.
    sim.reconfigure({"error_rate": 0.0})
    ProviderPause.objects.update(until=timezone.now() - timedelta(seconds=1))
    SmsMessage.objects.filter(status=states.TO_SEND).update(due_at=timezone.now())
    breaker.reset()
    dispatch.dispatch_once()
    assert SmsMessage.objects.filter(status=states.SENT).count() == 40
    assert not ProviderPause.objects.exists()
    assert "is paused until" not in client.get("/sms/").content.decode()
    assert len(sim.accepted()) == 40 and len(messages) == 60


@pytest.mark.django_db(transaction=True)
def test_a_failed_trial_pauses_again_twice_as_long(sim, settings):
    sim.reconfigure({"error_rate": 1.0})
    due_messages(make_contacts(5))
    ProviderPause.objects.create(account=connector_for(sim.url).account, until=timezone.now() - timedelta(seconds=1),
                                 reason="earlier errors", times=1)
    dispatch.dispatch_once()
    assert SmsMessage.objects.filter(status=states.UNKNOWN).count() == 1  # only the trial
    pause = ProviderPause.objects.get()
    assert pause.times == 2 and "trial message after the pause failed too" in pause.reason
    assert pause.until == pytest.approx(timezone.now() + timedelta(seconds=60), abs=timedelta(seconds=3))
    assert SmsMessage.objects.filter(status=states.TO_SEND, due_at=pause.until).count() == 4


@pytest.mark.django_db(transaction=True)
def test_refusals_of_recipients_do_not_pause(settings):
    """Invalid numbers are the recipients' fault, not the provider's."""
    settings.CRMSMS_SMS_URL = "memory://"
    account_name = connector_for("memory://").account
    from crmsms.sms.providers.base import Outcome

    for _ in range(3):
        breaker.record(account_name, [Outcome.failed("invalid_number", "no such number")] * 10, trial=False)
    assert not ProviderPause.objects.exists()
    # A refusal of our account (bad credentials) is the provider's side: 30 of 60 calls.
    breaker.record(account_name, [Outcome.failed("auth", "bad credentials", retryable=True)] * 30, trial=False)
    assert ProviderPause.objects.filter(account=account_name).exists()


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_a_worker_pauses_a_failing_provider_and_resumes_by_itself(tmp_path, sim):
    """A real worker, a provider answering 500 to everything, then healthy again: the pause
    stops the damage after MIN_CALLS calls (plus the calls already out: 4 threads, each with
    a chunk out, and another until an error comes back), and sending resumes without anyone."""
    sim.reconfigure({"error_rate": 1.0})
    due_messages(make_contacts(400))
    worker = start_worker(tmp_path, sim.url, "w", CRMSMS_PROVIDER_PAUSE_SECONDS="1")
    try:
        wait_for(lambda: ProviderPause.objects.exists(), 30, "the provider to be paused")
        sim.reconfigure({"error_rate": 0.0})
        wait_for(lambda: not SmsMessage.objects.filter(status__in=[states.TO_SEND, states.SENDING]).exists()
                 and not ProviderPause.objects.exists(), 60, "sending to resume")
    finally:
        stop(worker)
    unknown = SmsMessage.objects.filter(status=states.UNKNOWN).count()
    sent = SmsMessage.objects.filter(status=states.SENT).count()
    assert unknown + sent == 400
    in_flight = 4 * 2 * 10
    assert breaker.MIN_CALLS <= unknown <= breaker.MIN_CALLS + in_flight + 10, unknown  # + a few trials
    assert len(sim.accepted()) == sent


# --- the periodic jobs: one worker -------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_one_holder_of_the_periodic_jobs_and_takeover_when_it_lapses(settings):
    assert periodic.hold("a:1") and periodic.hold("a:1")  # taken, then renewed
    assert not periodic.hold("b:2")
    assert periodic.holder_of().holder == "a:1"
    WorkerLease.objects.update(until=timezone.now() - timedelta(seconds=1))  # a:1 stopped renewing
    assert periodic.hold("b:2") and not periodic.hold("a:1")
    periodic.release("b:2")
    assert periodic.holder_of() is None and periodic.hold("a:1")


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_two_workers_one_runs_the_periodic_jobs_and_the_other_takes_over(tmp_path, sim):
    env = {"CRMSMS_PERIODIC_LEASE_SECONDS": "2", "CRMSMS_LOG_LEVEL": "INFO"}
    first = start_worker(tmp_path, sim.url, "first", **env)
    wait_for(lambda: WorkerLease.objects.filter(holder__endswith=f":{first.pid}").exists(), 30, "first to hold")
    second = start_worker(tmp_path, sim.url, "second", **env)
    try:
        wait_for(lambda: "does not run the periodic jobs" in (tmp_path / "second.log").read_text(), 30,
                 "second to say it does not run them")
        log = (tmp_path / "second.log").read_text()
        assert f":{first.pid} runs them" in log
        assert WorkerLease.objects.get().holder.endswith(f":{first.pid}")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        wait_for(lambda: WorkerLease.objects.get().holder.endswith(f":{second.pid}"), 15, "second to take over")
        assert "runs the periodic jobs" in (tmp_path / "second.log").read_text()
        # The periodic jobs do run there now: one of them forgets pauses long over.
        ProviderPause.objects.create(account="old://", until=timezone.now() - timedelta(hours=1), reason="old")
        wait_for(lambda: not ProviderPause.objects.exists(), 15, "the second worker's periodic jobs")
    finally:
        stop(first, second)
    assert "does not run the periodic jobs" not in (tmp_path / "first.log").read_text()


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_a_worker_told_no_periodic_never_takes_them(tmp_path, sim):
    import subprocess
    import sys

    from .test_worker_processes import database_url

    env = {**__import__("os").environ, "DATABASE_URL": database_url(), "CRMSMS_SMS_URL": sim.url,
           "CRMSMS_DATA_DIR": str(tmp_path / "data"), "CRMSMS_LOG_LEVEL": "INFO"}
    env.pop("HUEY_URL", None)
    with open(tmp_path / "w.log", "w") as out:
        worker = subprocess.Popen([sys.executable, "-m", "crmsms", "worker", "--interval", "0.2", "--no-periodic"],
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        due_messages(make_contacts(3))
        wait_for(lambda: len(sim.accepted()) == 3, 30, "it still sends")
        assert not WorkerLease.objects.exists()
    finally:
        stop(worker)
    assert "never the periodic jobs" in (tmp_path / "w.log").read_text()
