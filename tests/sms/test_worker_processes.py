"""Real `crmsms worker` processes against the test database and the simulator: two workers on
the same due rows never both send one; a message due now reaches the provider within 2 s;
a worker killed mid-call leaves its message "unknown", not queued again."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from crmsms.crm.models import Contact
from crmsms.sms import dispatch, states
from crmsms.sms.models import MessageEvent, SmsMessage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]


def database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER'] or ''}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def start_worker(tmp_path, sim_url, name, interval="0.2", **env):
    environment = {
        **os.environ, "DATABASE_URL": database_url(), "CRMSMS_SMS_URL": sim_url,
        "CRMSMS_DATA_DIR": str(tmp_path / "data"), "CRMSMS_LOG_LEVEL": "WARNING", **env,
    }
    environment.pop("HUEY_URL", None)
    log = open(tmp_path / f"{name}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "crmsms", "worker", "--interval", interval],
                            env=environment, stdout=log, stderr=subprocess.STDOUT)


def stop(*workers):
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    for w in workers:
        try:
            w.wait(timeout=20)
        except subprocess.TimeoutExpired:
            w.kill()


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def make_contacts(n):
    return Contact.objects.bulk_create(
        Contact(first_name="P", last_name=f"{i}", phone_mobile=f"+336{10000000 + i}", sms_opt_in=True) for i in range(n)
    )


def test_two_workers_never_send_one_message_twice(tmp_path, sim):
    # The messages fall due once both workers are up, and one worker alone takes longer to
    # send them (300 at 50 ms, 40 in flight: 0.4 s) than the other's dispatcher takes to look
    # (0.2 s): otherwise the first worker up could send them all before the other starts.
    sim.reconfigure({"latency_ms": 50})
    later = timezone.now() + timedelta(hours=1)
    contacts = make_contacts(300)
    SmsMessage.objects.bulk_create(
        SmsMessage(contact=c, body=f"hi {c.last_name}", text=f"hi {c.last_name}", status=states.TO_SEND,
                   send_at=later, due_at=later, to_number=c.phone_mobile) for c in contacts
    )
    workers = [start_worker(tmp_path, sim.url, f"w{i}", CRMSMS_BATCH_SIZE="10") for i in range(2)]
    try:
        for i in range(2):
            wait_for(lambda: "crmsms worker" in (tmp_path / f"w{i}.log").read_text(), 30, f"worker w{i} to start")
        now = timezone.now()
        SmsMessage.objects.update(send_at=now, due_at=now)
        wait_for(lambda: not SmsMessage.objects.exclude(status=states.SENT).exists(), 90, "every message sent")
    finally:
        stop(*workers)
    references = [entry["reference"] for entry in sim.accepted()]
    assert len(references) == 300 and len(set(references)) == 300
    assert set(SmsMessage.objects.values_list("attempts", flat=True)) == {1}
    # Both processes took part: the claims really competed.
    claimers = {d.split(":")[-1] for d in MessageEvent.objects.filter(kind="attempt").values_list("detail", flat=True)}
    assert len(claimers) == 2, claimers


def test_message_due_now_reaches_the_provider_within_two_seconds(tmp_path, sim, contact, user, settings):
    """The real path: saving wakes the worker through huey's queue (no immediate mode), with
    the worker's default one-second dispatcher interval as the fallback."""
    from huey.contrib.djhuey import HUEY

    from crmsms.sms import compose

    HUEY.immediate = False
    worker = start_worker(tmp_path, sim.url, "w", CRMSMS_DATA_DIR=str(settings.DATA_DIR), interval="1.0")
    try:
        wait_for(lambda: "crmsms worker" in (tmp_path / "w.log").read_text(), 20, "the worker to start")
        time.sleep(1.0)  # let its queue polling back off to the idle rate
        latencies = []
        for i in range(3):
            start = time.monotonic()
            message = compose.create_message(contact, body=f"now {i}", send_at=timezone.now(),
                                             status=states.TO_SEND, user=user)
            wait_for(lambda: any(e["reference"] == f"crmsms-{message.pk}" for e in sim.accepted()), 2.0,
                     "the simulator to receive the message")
            latencies.append(time.monotonic() - start)
            time.sleep(0.7)
        wait_for(lambda: not SmsMessage.objects.exclude(status=states.SENT).exists(), 5, "status sent")
    finally:
        stop(worker)
        HUEY.immediate = True
    print(f"due-now latencies: {[round(x, 3) for x in latencies]}")
    assert max(latencies) < 2.0


def test_worker_killed_during_the_call_leaves_unknown(tmp_path, sim, contact):
    sim.reconfigure({"latency_ms": 10_000})  # the provider call is in flight for 10 s
    now = timezone.now()
    message = SmsMessage.objects.create(contact=contact, body="slow", text="slow", status=states.TO_SEND, send_at=now, due_at=now)
    worker = start_worker(tmp_path, sim.url, "w", CRMSMS_LEASE_SECONDS="2", CRMSMS_PROVIDER_TIMEOUT="30")
    try:
        wait_for(lambda: SmsMessage.objects.filter(pk=message.pk, calling_at__isnull=False).exists(), 20,
                 "the provider call to start")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        stop(worker)
    message.refresh_from_db()
    assert message.status == states.SENDING
    time.sleep(2.1)  # the lease runs out
    assert dispatch.expire_leases() == (0, 1)
    message.refresh_from_db()
    assert message.status == states.UNKNOWN and message.error_code == "worker_lost"


def queue_for(contacts, body="hi"):
    now = timezone.now()
    return SmsMessage.objects.bulk_create(
        SmsMessage(contact=c, body=body, text=body, status=states.TO_SEND, send_at=now, due_at=now, to_number=c.phone_mobile)
        for c in contacts
    )


def test_sigterm_lets_the_sends_in_progress_finish(tmp_path, sim):
    sim.reconfigure({"latency_ms": 600})
    queue_for(make_contacts(5))
    worker = start_worker(tmp_path, sim.url, "w", CRMSMS_PROVIDER_TIMEOUT="30")
    wait_for(lambda: len(sim.accepted()) >= 1, 20, "the first send")
    worker.send_signal(signal.SIGTERM)  # what systemd, Docker and `crmsms run` send
    assert worker.wait(timeout=30) == 0
    assert set(SmsMessage.objects.values_list("status", flat=True)) == {states.SENT}
    assert len(sim.accepted()) == 5


def test_sigterm_during_a_backlog_stops_the_claims_at_once(tmp_path, sim):
    """A sending thread claims its next batch itself while a backlog lasts (send_backlog):
    SIGTERM must end that too, or a stopping worker would send the whole backlog first."""
    sim.reconfigure({"latency_ms": 100})
    queue_for(make_contacts(3000))
    worker = start_worker(tmp_path, sim.url, "w", CRMSMS_BATCH_SIZE="20")
    wait_for(lambda: len(sim.accepted()) >= 100, 30, "the backlog flowing")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    statuses = dict(SmsMessage.objects.values("status").annotate(n=Count("id")).values_list("status", "n"))
    assert set(statuses) == {states.SENT, states.TO_SEND}, statuses  # the sends in progress finished
    assert statuses[states.SENT] == len(sim.accepted()) < 1000, statuses
    assert not MessageEvent.objects.filter(kind="requeued").exists()  # no claim left behind


def test_sigterm_right_after_start_stops_cleanly(tmp_path, sim):
    """A worker stopped while it starts (a deploy that changes its mind) exits 0, not with a
    traceback (it crashed on a signal handler that was not callable)."""
    worker = start_worker(tmp_path, sim.url, "w")
    time.sleep(0.3)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) in (0, -signal.SIGTERM)  # before or after huey took the signal over
    assert "Traceback" not in (tmp_path / "w.log").read_text()


def test_several_processes_share_the_work_and_one_killed_is_replaced(tmp_path, sim):
    """`crmsms worker --processes 2`: both processes send; one killed with SIGKILL is started
    again; SIGTERM stops them all, sends in progress finished."""
    sim.reconfigure({"latency_ms": 100})
    environment = {**os.environ, "DATABASE_URL": database_url(), "CRMSMS_SMS_URL": sim.url,
                   "CRMSMS_DATA_DIR": str(tmp_path / "data"), "CRMSMS_LOG_LEVEL": "WARNING",
                   "CRMSMS_BATCH_SIZE": "10"}
    environment.pop("HUEY_URL", None)
    log = open(tmp_path / "w.log", "w+")
    worker = subprocess.Popen([sys.executable, "-m", "crmsms", "worker", "--processes", "2", "--workers", "2",
                               "--interval", "0.2"], env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: (tmp_path / "w.log").read_text().count("sending threads") == 2, 30, "both processes up")
        children = [int(line.split(":")[1]) for line in (tmp_path / "w.log").read_text().splitlines()
                    if "sending threads" in line]
        os.kill(children[0], signal.SIGKILL)
        wait_for(lambda: (tmp_path / "w.log").read_text().count("sending threads") == 3, 30, "a replacement")
        queue_for(make_contacts(200))
        wait_for(lambda: len(sim.accepted()) == 200, 60, "200 messages sent")
        senders = set(MessageEvent.objects.filter(kind="attempt").values_list("detail", flat=True))
        assert len(senders) >= 2, senders  # "picked up by worker HOST:PID": more than one process
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        stop(worker)
    assert SmsMessage.objects.filter(status=states.SENT).count() == 200
    assert len({entry["reference"] for entry in sim.accepted()}) == 200


def test_a_long_batch_keeps_its_lease(tmp_path, sim):
    """A batch that takes longer than the lease is not taken for dead while it is alive:
    each chunk renews the lease of the claim."""
    sim.reconfigure({"latency_ms": 400})
    queue_for(make_contacts(8))
    worker = start_worker(tmp_path, sim.url, "w", CRMSMS_LEASE_SECONDS="1", CRMSMS_CALL_CHUNK="2",
                          CRMSMS_PROVIDER_TIMEOUT="30")
    try:
        def all_final():
            dispatch.expire_leases()  # what every other worker does each second
            return not SmsMessage.objects.filter(status__in=[states.TO_SEND, states.SENDING]).exists()
        wait_for(all_final, 60, "every message to end")
    finally:
        stop(worker)
    assert set(SmsMessage.objects.values_list("status", flat=True)) == {states.SENT}  # none "unknown"
    assert not MessageEvent.objects.filter(kind__in=["requeued", "unknown"]).exists()  # never taken for dead
    references = [e["reference"] for e in sim.accepted()]
    assert len(references) == len(set(references)) == 8


def test_outcome_survives_a_database_connection_lost_during_the_call(sim, contact):
    """PostgreSQL restarting while the provider is being called: the worker's connection is
    gone when the answer arrives. The answer is written on a new connection, not lost."""
    import threading

    if connection.vendor != "postgresql":
        pytest.skip("kills a PostgreSQL backend")
    sim.reconfigure({"latency_ms": 1500})
    [message] = queue_for([contact])
    token, ids = dispatch.claim_due()
    def send():  # as a huey task does: its own connection, closed at the end
        try:
            dispatch.send_claimed(token, ids)
        finally:
            connection.close()

    sender = threading.Thread(target=send)
    sender.start()
    wait_for(lambda: SmsMessage.objects.filter(pk=message.pk, calling_at__isnull=False).exists(), 10, "the call")
    with connection.cursor() as cursor:  # what a PostgreSQL restart does to the sender's session
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    sender.join(timeout=30)
    message.refresh_from_db()
    assert message.status == states.SENT and message.provider_message_id == sim.accepted()[0]["id"]


def test_absurd_provider_answers_do_not_break_the_batch(contact):
    from crmsms.sms.providers.base import Outcome

    [message] = queue_for([contact])
    token, _ = dispatch.claim_due()
    message.refresh_from_db()
    dispatch.record_outcomes(token, [(message, Outcome.retry_later("x" * 500, "slow down", retry_after=float("inf")))],
                             provider="test")
    message.refresh_from_db()
    assert message.status == states.TO_SEND and len(message.error_code) <= 40
    assert message.due_at < timezone.now() + timedelta(days=2)


def test_generation_killed_halfway_finishes_in_the_next_worker(tmp_path, sim):
    """kill -9 workers at random moments of « Generate all SMS Messages » of a 100,000-recipient
    campaign (CRMSMS_SOAK_GENERATION recipients), 3 times, starting a new worker each time:
    each takes the abandoned generation over from its cursor, and the last one finishes it.
    One message per recipient, none twice, none missing, and the kept counts right."""
    import random

    from crmsms.sms import campaigns
    from crmsms.sms.models import CampaignRecipient, SmsCampaign, SmsTemplate

    n, kills = int(os.environ.get("CRMSMS_SOAK_GENERATION", "100000")), 3
    seed = int(os.environ.get("CRMSMS_SOAK_SEED", random.randrange(10**6)))  # named in every failure
    rng = random.Random(seed)
    started = time.monotonic()
    make_contacts(n)
    template = SmsTemplate.objects.create(name="Promo", module="contacts", body="Hi {{ contact.last_name }}!")
    campaign = SmsCampaign.objects.create(name="Big", module="contacts", template=template, respect_hours=False,
                                          send_at=timezone.now() + timedelta(days=1))
    with connection.cursor() as cursor:  # every contact a recipient, in one statement (not 100,000 objects)
        quote = connection.ops.quote_name
        cursor.execute(f"INSERT INTO {quote(CampaignRecipient._meta.db_table)} (campaign_id, contact_id, added_at) "
                       f"SELECT %s, id, %s FROM {quote(Contact._meta.db_table)} ORDER BY id",
                       [campaign.pk, connection.ops.adapt_datetimefield_value(timezone.now())])
    assert campaign.recipients.count() == n
    set_up = time.monotonic() - started
    assert campaigns.move_campaign(campaign, SmsCampaign.GENERATE)  # what the button does, minus the wake-up

    def done() -> int:
        progress = SmsCampaign.objects.values("generated", "skipped").get(pk=campaign.pk)
        return progress["generated"] + progress["skipped"]

    # Each kill lands at a random point of its own quarter of the work (the last quarter is
    # left to the worker that finishes), whatever the machine's speed: while a batch is read
    # and rendered, or while it is written with the cursor. The next worker takes the
    # periodic jobs over from the killed one after 2 s, and with them the abandoned
    # generation, whose heartbeat is then over a second old.
    targets = [int(n * (k + rng.uniform(0.05, 0.8)) / (kills + 1)) for k in range(kills)]
    takeover = {"CRMSMS_GENERATION_STALE_SECONDS": "1", "CRMSMS_PERIODIC_LEASE_SECONDS": "2"}
    env = {"CRMSMS_GENERATION_BATCH": str(max(10, min(2000, n // 50))), **takeover}
    reached = [0]
    for k, target in enumerate(targets):
        worker = start_worker(tmp_path, sim.url, f"w{k}", **env)
        try:
            wait_for(lambda: done() >= target, 180, f"worker {k} to generate up to {target} (seed {seed})")
            time.sleep(rng.uniform(0, 0.25))  # anywhere in the next batch, not just after a commit
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        finally:
            stop(worker)
        # Progress and messages read in one statement, so in one snapshot: on PostgreSQL the
        # killed worker's last COMMIT, already sent, can still land between two reads.
        campaign = SmsCampaign.objects.annotate(written=Count("messages")).get(pk=campaign.pk)
        now_done = campaign.generated + campaign.skipped
        # Killed while generating, after going further than the worker before it.
        assert campaign.status == SmsCampaign.GENERATING and reached[-1] < now_done < n, (seed, reached, now_done)
        assert campaign.written == now_done, seed  # whole batches only, with the cursor
        reached.append(now_done)
    last = start_worker(tmp_path, sim.url, "last", **takeover)
    try:
        wait_for(lambda: SmsCampaign.objects.get(pk=campaign.pk).status == SmsCampaign.SCHEDULED, 300,
                 f"the last worker to finish the generation (seed {seed}, killed at {reached[1:]})")
    finally:
        stop(last)
    print(f"generation of {n:,} killed at {reached[1:]} (seed {seed}), finished by the next worker; "
          f"set-up {set_up:.1f} s, generation {time.monotonic() - started - set_up:.1f} s")
    campaign.refresh_from_db()
    assert (campaign.generated, campaign.skipped) == (n, 0), seed
    assert campaign.messages.count() == n, seed  # none twice
    assert campaign.messages.values("contact").distinct().count() == n, seed  # none missing
    assert campaigns.stats(campaign)["to_send"] == n and campaigns.recount(campaign)["to_send"] == n, seed
    assert sim.accepted() == []  # dispatch date tomorrow: nothing sent
