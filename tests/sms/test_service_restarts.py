"""PostgreSQL restarted mid-send, Redis restarted mid-send: the worker recovers without a
person.

Real processes only: a private PostgreSQL cluster (initdb + pg_ctl on a free port, its
socket and data in a temporary directory) or a private redis-server, the provider
simulator, and one `crmsms worker` that is never touched. While it sends 300 messages, the
server is restarted; afterwards every message is sent or `unknown` (nothing left queued or
held), the simulator received no message twice, every message it received is `sent` in our
database. Then the server is restarted again while the worker is idle, and the same worker
sends the messages queued after it at once.

With PostgreSQL the worker keeps the production lease (2 minutes), so a batch that gave up
when its connection died, and left its messages to wait for the lease, fails the test.

These servers are the tests' own, whatever database the suite runs on, so the tests run in
one pass only: they are skipped in the PostgreSQL pass of `make test`, and never use
pytest-django's database (the database is the private cluster, or SQLite in tmp_path).
"""

import collections
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from crmsms.sms import states
from tests.gateways.services import PrivatePostgres, PrivateRedis
from tests.sms.test_worker_processes import stop

pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(os.environ.get("DATABASE_URL", "").startswith("postgres"),
                       reason="runs its own PostgreSQL and Redis: once, in the SQLite pass"),
]

MESSAGES = 300
LATER = 20
WAITING = {states.DRAFT, states.TO_SEND, states.SENDING}
# Nothing may wait for a lease to run out after a PostgreSQL restart: the production lease
# (2 minutes) is kept, and the test fails long before it ends.
PG_LEASE_SECONDS = 120
# Redis keeps nothing: the batches queued in it when it dies are lost with it. Their claims
# come back when their pickup lease ends (CRMSMS_PICKUP_SECONDS, 30 s; short here), not the
# full lease of a batch being sent (kept at 2 minutes).
REDIS_LEASE_SECONDS = 120
REDIS_PICKUP_SECONDS = "5"
SETTLE_SECONDS = 45  # after the restart, for every message to be sent or unknown


def wait_for(condition, timeout, what, errors=(Exception,)):
    """Like test_worker_processes.wait_for, but a check that fails because the server is
    down (mid-restart) just counts as "not yet"."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except errors:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Database:
    """Reads the worker's database directly (psycopg or sqlite3): this process's Django has
    no connection to it."""

    def __init__(self, url: str, postgres: PrivatePostgres | None = None, database: str = ""):
        self.url, self.postgres, self.database = url, postgres, database

    def rows(self, sql: str) -> list[tuple]:
        if self.postgres:
            with self.postgres.connect(self.database) as conn:
                return conn.execute(sql).fetchall()
        conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=30)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def statuses(self) -> dict[int, str]:
        return dict(self.rows("SELECT id, status FROM sms_smsmessage"))


def crmsms(env: dict, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "crmsms", *args], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"crmsms {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


QUEUE = """
from django.utils import timezone
from crmsms.crm.models import Contact
from crmsms.sms import states
from crmsms.sms.models import SmsMessage
now = timezone.now()
contacts = Contact.objects.bulk_create(
    Contact(first_name="P", last_name=str(i), phone_mobile=f"+336{{10000000 + i}}", sms_opt_in=True)
    for i in range({first}, {first} + {n}))
messages = SmsMessage.objects.bulk_create(
    SmsMessage(contact=c, body="hi " + c.last_name, text="hi " + c.last_name, status=states.TO_SEND, send_at=now,
               due_at=now, to_number=c.phone_mobile) for c in contacts)
print("IDS", *[m.pk for m in messages])
"""


def queue(env: dict, first: int, n: int) -> list[int]:
    """n opted-in contacts and one message each, due now, through the ORM (a subprocess on
    the worker's database); returns the messages' ids."""
    out = crmsms(env, "shell", "-c", QUEUE.format(first=first, n=n))
    [line] = [line for line in out.splitlines() if line.startswith("IDS")]
    return [int(x) for x in line.split()[1:]]


def base_env(tmp_path, database_url: str, sim_url: str, lease: int, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("HUEY_URL", "DATABASE_URL", "CRMSMS_CONN_MAX_AGE")}
    return {
        **env, "DATABASE_URL": database_url, "CRMSMS_SMS_URL": sim_url,
        "CRMSMS_DATA_DIR": str(tmp_path / "data"), "CRMSMS_LOG_LEVEL": "WARNING",
        # Persistent connections (the production default): the restart breaks them under the worker.
        "CRMSMS_CONN_MAX_AGE": "60",
        "CRMSMS_LEASE_SECONDS": str(lease),
        # Small batches, few calls in flight: 300 messages take several seconds at 50 ms
        # per answer, so the restart lands mid-send.
        "CRMSMS_BATCH_SIZE": "10", "CRMSMS_CALL_CHUNK": "5", "CRMSMS_PROVIDER_CONCURRENCY": "2",
        **extra,
    }


def start_worker(tmp_path, env: dict) -> subprocess.Popen:
    log = open(tmp_path / "worker.log", "w")
    return subprocess.Popen([sys.executable, "-m", "crmsms", "worker", "--workers", "2", "--interval", "0.2"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)


def worker_log(tmp_path, lines: int = 60) -> str:
    text = (tmp_path / "worker.log").read_text(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def timed(action) -> float:
    start = time.monotonic()
    action()
    return time.monotonic() - start


def send_through_restarts(tmp_path, sim, env: dict, db: Database, restart, label: str) -> None:
    """What both servers go through, with one worker that is never touched:
    1. 300 messages due now; `restart()` once the simulator has taken a fifth of them (calls
       in flight, batches claimed and queued); every message must then be sent or unknown
       within SETTLE_SECONDS.
    2. `restart()` again while the worker is idle (its connections open and unused), then
       20 new messages due now: sent within 15 s."""
    sim.reconfigure({"latency_ms": 50})
    queue(env, 0, MESSAGES)
    started = time.monotonic()
    worker = start_worker(tmp_path, env)

    def settled(ids, timeout, what):
        try:
            wait_for(lambda: not WAITING & {s for i, s in db.statuses().items() if ids is None or i in ids},
                     timeout, what)
        except AssertionError as error:
            held = db.rows("SELECT status, calling_at IS NOT NULL, count(*) FROM sms_smsmessage "
                           "WHERE status IN ('to_send', 'sending') GROUP BY 1, 2")
            raise AssertionError(f"{error}; still waiting (status, called, count): {held}\n"
                                 f"worker log:\n{worker_log(tmp_path)}") from None
        assert worker.poll() is None, f"the worker exited ({worker.returncode}):\n{worker_log(tmp_path)}"

    try:
        wait_for(lambda: len(sim.accepted()) >= MESSAGES // 5, 60, "the worker to be sending")
        before = collections.Counter(db.statuses().values())
        in_flight = db.rows("SELECT count(*) FROM sms_smsmessage WHERE status = 'sending' "
                            "AND calling_at IS NOT NULL")[0][0]
        restart_seconds = timed(restart)
        restarted = time.monotonic()
        assert before[states.TO_SEND] + before[states.SENDING] > MESSAGES // 4, f"not mid-send: {before}"
        settled(None, SETTLE_SECONDS, "every message to be sent or unknown after the restart mid-send")
        recovered = time.monotonic() - restarted
        # 2. Restarted while idle: the worker's next batches must not trip on the dead connections.
        time.sleep(0.5)
        idle_restart_seconds = timed(restart)
        t = time.monotonic()
        later = queue(env, MESSAGES, LATER)
        settled(set(later), 15, "the messages queued after the restart while idle to be sent")
        later_seconds = time.monotonic() - t
    finally:
        stop(worker)
    statuses = db.statuses()
    counts = collections.Counter(statuses.values())
    references = [entry["reference"] for entry in sim.accepted()]
    log = (tmp_path / "worker.log").read_text(errors="replace")
    events = dict(db.rows("SELECT kind, count(*) FROM sms_messageevent GROUP BY kind ORDER BY kind"))
    print(f"\n{label}: mid-send restart ({restart_seconds:.2f}s) with {before[states.SENT]} sent, "
          f"{before[states.SENDING]} held ({in_flight} being called), {before[states.TO_SEND]} queued; "
          f"all settled {recovered:.1f}s after it; idle restart ({idle_restart_seconds:.2f}s), then {LATER} "
          f"more sent in {later_seconds:.1f}s (the queuing included); {time.monotonic() - started:.1f}s in all. "
          f"Statuses {dict(counts)}, events {events}; worker log: {log.count('Traceback')} tracebacks")
    assert {statuses[i] for i in later} == {states.SENT}
    assert len(statuses) == MESSAGES + LATER
    assert set(counts) <= {states.SENT, states.UNKNOWN}, counts
    assert len(references) == len(set(references)), "the simulator received a message twice"
    sent = {f"crmsms-{pk}" for pk, status in statuses.items() if status == states.SENT}
    # All it took is sent in our database; all we call sent, it took; what is unknown, it never took.
    assert set(references) == sent
    # Unknown only for a message whose call may have reached the provider: never one that
    # was merely queued or claimed when the server went away.
    unknown = db.rows("SELECT count(*) FROM sms_smsmessage WHERE status = 'unknown' AND calling_at IS NULL")[0][0]
    assert unknown == 0


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """A private cluster with a migrated template database; each test gets a copy."""
    server = PrivatePostgres().start()
    try:
        url = server.create_database("crmsms_template")
        data = tmp_path_factory.mktemp("pg-migrate")
        crmsms({**{k: v for k, v in os.environ.items() if k != "HUEY_URL"}, "DATABASE_URL": url,
                "CRMSMS_DATA_DIR": str(data)}, "migrate", "--verbosity", "0")
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(("mode", "down_seconds"), [("fast", 0), ("immediate", 3)])
def test_postgres_restarted_mid_send(tmp_path, sim, postgres, mode, down_seconds):
    """`pg_ctl restart -m fast` (sessions terminated, a clean shutdown), and `-m immediate`
    (the server dies without a checkpoint) staying down 3 s before it comes back through
    crash recovery, with the worker's persistent connections open, calls to the provider in
    flight and batches claimed: the outcomes of the calls in flight are written on new
    connections, a batch that meets a dead connection goes on with a new one (none waits
    for its 2-minute lease to run out), and the worker goes on."""
    name = f"crmsms_{mode}"
    url = postgres.create_database(name, template="crmsms_template")
    env = base_env(tmp_path, url, sim.url, PG_LEASE_SECONDS)
    send_through_restarts(tmp_path, sim, env, Database(url, postgres, name),
                          lambda: postgres.restart(mode, down_seconds), f"PostgreSQL -m {mode}, down {down_seconds}s")


def test_redis_restarted_mid_send(tmp_path, sim):
    """Redis as the task engine, killed and started again on the same port (it keeps nothing
    on disk: the queued batches are lost with it). The claims whose task was lost come back
    when their lease ends; the consumer and the dispatcher reconnect by themselves."""
    redis = PrivateRedis().start()
    try:
        url = f"sqlite:///{tmp_path / 'crmsms.sqlite3'}"
        env = base_env(tmp_path, url, sim.url, REDIS_LEASE_SECONDS, HUEY_URL=redis.url,
                       CRMSMS_PICKUP_SECONDS=REDIS_PICKUP_SECONDS)
        crmsms(env, "migrate", "--verbosity", "0")
        send_through_restarts(tmp_path, sim, env, Database(url), lambda: redis.restart(down_seconds=1.0),
                              "Redis killed and restarted")
    finally:
        redis.stop()
