"""The REST API under load while a campaign sends: `--clients` concurrent API clients each
create messages (POST /api/v1/messages, to opted-in contacts, each with its own
Idempotency-Key) as fast as they can for `--seconds`, against a real `crmsms serve`
(waitress), while a real `crmsms worker` sends a campaign of `--recipients` through the
provider simulator (answering after `--latency-ms`, delivery reports back to the server).

    .venv/bin/python bench/api_load.py [--clients 50] [--seconds 60] [--recipients 20000]
                                       [--sqlite | --database-url postgres://...] [--redis]
                                       [--server-threads 8] [--server-processes 1]
                                       [--latency-ms 100] [--no-reports]

PostgreSQL by default (a scratch database on BENCH_POSTGRES_URL's server, as a scaled-out
install would use); `--sqlite` for the embedded set-up. The task queue is huey's embedded
SQLite unless `--redis` (a scratch redis-server on a free port) or `--huey-url`.

Each client is a thread with its own connection (httpx). The latencies are the clients'
own (request sent → answer read), queueing in the server included: with C clients in a
closed loop, mean latency = C / throughput. Afterwards, every message a 201 named is in the
database exactly once, under its key, and there is no row for a key beyond those.

    BENCH api_load_p99[_pg] value=<ms> unit=ms limit=1000 ratio=limit/value
    BENCH api_load_5xx[_pg] value=<count> unit=responses limit=0
    BENCH api_load_errors[_pg] value=<count> unit=requests limit=0   (other non-2xx, transport errors)
    BENCH api_load_rps[_pg] value=<req/s> unit=req/s limit=<a no-op view, same server, same clients>
"""

import argparse
import collections
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

from report import emit
from scratch import django_on, free_port, wait_for_simulator

BENCH_DIR = Path(__file__).resolve().parent
TOKEN = "load-token"  # the simulator's: it signs the delivery reports with it
P99_LIMIT_MS = 1000.0
API_CONTACTS = 1000
NOOP_SECONDS = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--recipients", type=int, default=20_000, help="the campaign sent meanwhile")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="the simulator's answer time")
    parser.add_argument("--no-reports", action="store_true",
                        help="no delivery reports (by default the simulator sends them to the same server)")
    parser.add_argument("--server-threads", type=int, default=8, help="crmsms serve --threads (its default: 8)")
    parser.add_argument("--server-processes", type=int, default=1,
                        help="crmsms serve --processes (its default: 1)")
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_POSTGRES_URL",
                                                                  "postgres://postgres@127.0.0.1:5432/test"),
                        help="a PostgreSQL server (a scratch database is made there)")
    parser.add_argument("--redis", action="store_true", help="huey on a scratch redis-server")
    parser.add_argument("--huey-url", default="", help="huey on this Redis instead of SQLite")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    sim_port, web_port = free_port(), free_port()
    # With a token the simulator sends signed delivery reports, to the server under load.
    os.environ["CRMSMS_SMS_URL"] = f"simulator://{'' if args.no_reports else TOKEN + '@'}127.0.0.1:{sim_port}"
    os.environ["CRMSMS_PUBLIC_URL"] = f"http://127.0.0.1:{web_port}"
    os.environ["CRMSMS_SENDING_HOURS"] = ""
    os.environ.pop("HUEY_URL", None)
    redis = None
    if args.redis:
        redis_port = free_port()
        redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no"], stdout=subprocess.DEVNULL)
        args.huey_url = f"redis://127.0.0.1:{redis_port}/0"
        wait_for_redis(redis_port)
    if args.huey_url:
        os.environ["HUEY_URL"] = args.huey_url
    try:
        with django_on("" if args.sqlite else args.database_url) as data_dir:
            run(args, data_dir, sim_port, web_port)
    finally:
        if redis:
            redis.terminate()
            redis.wait(timeout=10)


def run(args, data_dir: Path, sim_port: int, web_port: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from crmsms.crm.models import Contact
    from crmsms.sms import campaigns, states
    from crmsms.sms.models import CampaignRecipient, DeliveryReport, SmsCampaign, SmsMessage, SmsTemplate
    from crmsms.users.models import ApiToken, Profile

    user = get_user_model().objects.create_user("load", password="load-test-42", first_name="Load")
    Profile.objects.create(user=user, time_zone="Europe/Paris")
    token = ApiToken.issue(user, name="api_load")
    people = Contact.objects.bulk_create(
        (Contact(first_name=f"P{i}", last_name="Load", phone_mobile=f"+336{10000000 + i}", sms_opt_in=True,
                 number_kind="mobile") for i in range(args.recipients + API_CONTACTS)), batch_size=5000)
    recipients, api_contacts = people[:args.recipients], [c.pk for c in people[args.recipients:]]
    template = SmsTemplate.objects.create(name="Promo", module="contacts",
                                          body='Hi {{ contact.first_name|default:"there" }}, -20% today!')
    campaign = SmsCampaign.objects.create(name="Sent meanwhile", module="contacts", template=template,
                                          respect_hours=False, send_at=timezone.now(), created_by=user)
    CampaignRecipient.objects.bulk_create((CampaignRecipient(campaign=campaign, contact=c) for c in recipients),
                                          batch_size=5000)
    connection.close()  # the server and the worker write to this database

    logs = {name: open(data_dir / f"{name}.log", "w") for name in ("simulator", "serve", "worker")}
    # The server with the benchmarks' settings: crmsms's, plus a no-op view (the rps limit).
    web_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench_settings",
               "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), os.environ.get("PYTHONPATH", "")])}
    processes = []
    try:
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "crmsms", "simulator", "--port", str(sim_port),
             *([] if args.no_reports else ["--token", TOKEN]),
             "--latency-ms", str(args.latency_ms), "--log", str(data_dir / "simulator.jsonl")],
            stdout=logs["simulator"], stderr=subprocess.STDOUT))
        wait_for_simulator(sim_port)
        web = subprocess.Popen([sys.executable, "-m", "crmsms", "serve", "--port", str(web_port),
                                "--threads", str(args.server_threads), "--processes", str(args.server_processes)],
                               env=web_env, stdout=subprocess.PIPE, stderr=logs["serve"], text=True)
        processes.append(web)
        web.stdout.readline()  # "Web UI on ...": listening
        worker = subprocess.Popen([sys.executable, "-m", "crmsms", "worker"],
                                  stdout=subprocess.PIPE, stderr=logs["worker"], text=True)
        processes.append(worker)
        worker.stdout.readline()  # "crmsms worker ...": up

        base = f"http://127.0.0.1:{web_port}"
        # The limit: the same clients against a view that does nothing, same server, idle.
        noop = Load(base, token, args.clients, api_contacts, args.seed, path="/webhooks/bench-noop", tag="noop")
        noop.run(NOOP_SECONDS)

        alone_rate = 0.0
        if args.recipients:
            campaigns.start_generation(campaign)  # « Generate all SMS Messages »: the worker does it
            started = time.monotonic()
            while sent_by(campaign) == 0:
                if time.monotonic() - started > 300:
                    raise RuntimeError("the campaign did not start sending within 300 s")
                time.sleep(0.2)
            print(f"campaign generated and sending after {time.monotonic() - started:.1f} s", flush=True)
            # The campaign alone for a few seconds: its pace without the API's load.
            before, t0 = sent_by(campaign), time.monotonic()
            time.sleep(5)
            alone_rate = (sent_by(campaign) - before) / (time.monotonic() - t0)

        before, reports = sent_by(campaign), DeliveryReport.objects.count()
        load = Load(base, token, args.clients, api_contacts, args.seed, tag=f"load-{os.getpid()}")
        cpu = {name: cpu_seconds(p) for name, p in (("serve", web), ("worker", worker))}
        load_average = os.getloadavg()[0]
        load.run(args.seconds)
        load_average = max(load_average, os.getloadavg()[0])
        cpu = {name: (cpu_seconds(p) - cpu[name]) / load.seconds for name, p in (("serve", web), ("worker", worker))}
        during = sent_by(campaign) - before
        reports = DeliveryReport.objects.count() - reports
        left = campaigns.stats(campaign)[states.TO_SEND]
        api_sent = SmsMessage.objects.filter(campaign__isnull=True, idempotency_key__startswith=load.tag,
                                             status__in=[states.SENT, states.DELIVERED]).count()
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs.values():
            log.close()

    check = load.check(SmsMessage)
    vendor = connection.vendor
    suffix = "" if vendor == "sqlite" else "_pg"
    huey = "Redis" if os.environ.get("HUEY_URL") else "SQLite"
    print(f"\ndatabase: {vendor}, huey on {huey}; crmsms serve with {args.server_processes} "
          f"process(es) of {args.server_threads} threads; "
          f"{args.clients} clients for {args.seconds:g} s; simulator answering in {args.latency_ms:g} ms; "
          f"campaign of {args.recipients:,} recipients")
    print(f"no-op view:  {noop.summary()}")
    print(f"create:      {load.summary()}")
    print(f"             statuses {dict(sorted(load.statuses.items()))}; transport errors "
          f"{dict(load.exceptions) or 0}")
    print(f"campaign:    {during:,} sent during the load ({during / args.seconds:.0f}/s; "
          f"{alone_rate:.0f}/s alone before it), {left:,} still to send at its end")
    print(f"API messages sent by the worker by the end of the load: {api_sent:,} of {load.created:,}")
    print(f"delivery reports the same server took during the load: {reports:,} ({reports / load.seconds:.0f}/s)")
    print(f"CPU during the load: crmsms serve {cpu['serve']:.0%} of a core, crmsms worker {cpu['worker']:.0%}; "
          f"machine: {os.cpu_count()} cores, load average up to {load_average:.1f}")
    print(f"database check: {check['rows']:,} rows for this run's keys, {load.created:,} answers 201; "
          f"{check['missing']} named by a 201 and missing, {check['duplicates']} keys twice, "
          f"{check['unanswered']} rows without a 201 (their request failed in transport)")
    print(f"logs: {data_dir}")
    if load.server_errors or load.other_errors or load.transport_errors:
        summarize_log(data_dir / "serve.log")

    emit(f"api_load_p99{suffix}", load.percentile(99), "ms", P99_LIMIT_MS, lower_is_better=True,
         note=f"{args.clients} clients creating messages while a campaign sends; p50 {load.percentile(50):.0f} ms")
    emit(f"api_load_5xx{suffix}", load.server_errors, "responses", 0, lower_is_better=True)
    emit(f"api_load_errors{suffix}", load.other_errors + load.transport_errors, "requests", 0,
         lower_is_better=True, note="non-5xx refusals and transport errors")
    emit(f"api_load_rps{suffix}", load.rate, "req/s", noop.rate, note="a no-op view, same server and clients")
    if check["missing"] or check["duplicates"] or check["rows"] - check["unanswered"] != load.created:
        raise SystemExit("the database does not hold exactly the messages the API answered 201 for")


def sent_by(campaign) -> int:
    """The campaign's messages the provider took, from its kept counts (one small query)."""
    from crmsms.sms import campaigns, states

    counts = campaigns.stats(campaign)
    return counts[states.SENT] + counts[states.DELIVERED] + counts[states.UNDELIVERED]


class Load:
    """`clients` threads, each with its own connection, each POSTing as fast as it can."""

    def __init__(self, base: str, token: str, clients: int, contacts: list[int], seed: int, *,
                 path: str = "/api/v1/messages", tag: str):
        self.base, self.token, self.clients, self.contacts, self.seed = base, token, clients, contacts, seed
        self.path, self.tag = path, tag
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.statuses: collections.Counter = collections.Counter()
        self.exceptions: collections.Counter = collections.Counter()
        self.answered: dict[str, int] = {}  # key -> message id, from the 201s
        self.seconds = 0.0

    def run(self, seconds: float) -> None:
        go = threading.Barrier(self.clients + 1)
        threads = [threading.Thread(target=self.client, args=(i, go, seconds), daemon=True)
                   for i in range(self.clients)]
        for thread in threads:
            thread.start()
        go.wait()
        start = time.perf_counter()
        for thread in threads:
            thread.join()
        self.seconds = time.perf_counter() - start

    def client(self, number: int, go: threading.Barrier, seconds: float) -> None:
        import httpx

        rng = random.Random(self.seed * 1000 + number)
        latencies, statuses, exceptions, answered = [], collections.Counter(), collections.Counter(), {}
        with httpx.Client(base_url=self.base, timeout=60,
                          headers={"Authorization": f"Bearer {self.token}"}) as http:
            go.wait()
            deadline = time.perf_counter() + seconds
            i = 0
            while time.perf_counter() < deadline:
                key = f"{self.tag}-{number}-{i}"
                i += 1
                body = {"contact_id": rng.choice(self.contacts), "body": f"Load test {number}-{i}",
                        "status": "to_send"}
                start = time.perf_counter()
                try:
                    answer = http.post(self.path, json=body, headers={"Idempotency-Key": key})
                except httpx.HTTPError as error:
                    exceptions[type(error).__name__] += 1
                    continue
                latencies.append(time.perf_counter() - start)
                statuses[answer.status_code] += 1
                if answer.status_code == 201:
                    answered[key] = answer.json()["id"]
        with self.lock:
            self.latencies += latencies
            self.statuses += statuses
            self.exceptions += exceptions
            self.answered.update(answered)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + self.transport_errors

    @property
    def created(self) -> int:
        return self.statuses[201]

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def other_errors(self) -> int:
        ok = {200} if self.tag == "noop" else {201}
        return sum(n for status, n in self.statuses.items() if status < 500 and status not in ok)

    @property
    def transport_errors(self) -> int:
        return sum(self.exceptions.values())

    @property
    def rate(self) -> float:
        return sum(self.statuses.values()) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """The p-th percentile of the answered requests' latencies, in ms (nearest rank)."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] * 1000

    def summary(self) -> str:
        return (f"{self.requests:,} requests in {self.seconds:.1f} s = {self.rate:,.0f}/s; "
                f"5xx {self.server_errors}, other errors {self.other_errors + self.transport_errors}; latency "
                f"p50 {self.percentile(50):.0f} ms, p95 {self.percentile(95):.0f} ms, "
                f"p99 {self.percentile(99):.0f} ms, max {self.percentile(100):.0f} ms")

    def check(self, SmsMessage) -> dict:
        """Every message a 201 named is in the database once, under its key."""
        from django.db.models import Count

        rows = SmsMessage.objects.filter(idempotency_key__startswith=f"{self.tag}-")
        by_key = dict(rows.values_list("idempotency_key", "id"))
        duplicates = rows.values("idempotency_key").annotate(n=Count("id")).filter(n__gt=1).count()
        missing = sum(1 for key, pk in self.answered.items() if by_key.get(key) != pk)
        return {"rows": rows.count(), "missing": missing, "duplicates": duplicates,
                "unanswered": len(set(by_key) - set(self.answered))}


def summarize_log(path: Path) -> None:
    """The server's errors, counted by their last line (the exception), a few shown."""
    lines = path.read_text(errors="replace").splitlines()
    causes = collections.Counter()
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            j = i + 1
            while j < len(lines) and (lines[j].startswith(" ") or lines[j].startswith("Traceback")
                                      or lines[j].startswith("The above") or lines[j].startswith("During")
                                      or not lines[j].strip()):
                j += 1
            if j < len(lines):
                causes[lines[j][:200]] += 1
    print(f"server log ({path}): {sum(causes.values())} tracebacks")
    for cause, n in causes.most_common(10):
        print(f"  {n:6} x {cause}")


def cpu_seconds(process: subprocess.Popen | int) -> float:
    """CPU time (user + system) the process and its running children have used so far (Linux)."""
    pid = process if isinstance(process, int) else process.pid
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") + sum(cpu_seconds(int(c)) for c in children)


def wait_for_redis(port: int) -> None:
    import socket

    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


if __name__ == "__main__":
    main()
