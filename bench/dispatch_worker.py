"""Messages/s from due to accepted, through a real `crmsms worker` process and the provider
simulator answering after L ms, next to the limit measured in the same run.

    .venv/bin/python bench/dispatch_worker.py --latency-ms 100 [--messages 4000] [--database-url postgres://...]

The worker runs its default 4 sending threads, each with CRMSMS_PROVIDER_CONCURRENCY (10)
calls in flight: C = 40 calls at once. Limits:
- L > 0: C / L, what C calls at a time can do when each takes L ms;
- L = 0: a bare client keeping the same C calls in flight to the same simulator: httpx, as
  the issue defines it (dispatch_L0), and http.client with a kept-alive connection per
  thread (dispatch_L0_vs_http_client), the stricter limit: crmsms itself now calls
  providers through http.client.
The worker is started and idle before the messages are written, due now; the clock runs from
the moment they are written (committed: from then on they are due for the worker) until the
last one is "sent" in the database. The default size is about 30 s of work at the limit,
so that the start and the end weigh little next to the steady pace.

    BENCH dispatch_L100 value=... unit=msg/s limit=400 ratio=...
"""

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from report import emit
from scratch import django_on, free_port, wait_for_simulator

THREADS = 4  # `crmsms worker`'s default, shared among its processes (so C stays the same)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--messages", type=int, default=0,
                        help="default: about 30 s of work at the limit (L100), 20,000 (L0)")
    parser.add_argument("--database-url", default="", help="a PostgreSQL server (a scratch database is made there)")
    parser.add_argument("--processes", type=int, default=1,
                        help="`crmsms worker --processes`: the same 4 sending threads spread over this many processes")
    args = parser.parse_args()
    port = free_port()
    os.environ["CRMSMS_SMS_URL"] = f"simulator://127.0.0.1:{port}"
    os.environ["CRMSMS_SENDING_HOURS"] = ""
    with django_on(args.database_url) as data_dir:
        from django.conf import settings

        concurrency = THREADS * settings.CRMSMS_PROVIDER_CONCURRENCY
        sim = subprocess.Popen([sys.executable, "-m", "crmsms", "simulator", "--port", str(port),
                                "--latency-ms", str(args.latency_ms), "--log", str(data_dir / "sim.jsonl")],
                               stdout=subprocess.DEVNULL)
        worker = None
        try:
            wait_for_simulator(port)
            if args.latency_ms:
                limit, how = concurrency / (args.latency_ms / 1000), f"C/L with C={concurrency}"
                n = args.messages or int(limit * 30)
            else:
                n = args.messages or 20_000
                limit, how = bare_httpx(port, n, concurrency), f"bare httpx, {concurrency} in flight"
                strict = bare_http_client(port, n, concurrency)
            worker = start_worker(args.processes)
            start, end = through_worker(n)
            rate = n / (end - start)
        finally:
            for process in (worker, sim):
                if process:
                    process.terminate()
                    process.wait(timeout=30)
        from django.db import connection

        suffix = "" if connection.vendor == "sqlite" else "_pg"
        print(f"database: {connection.vendor}, {n:,} messages, provider latency {args.latency_ms:g} ms, "
              f"worker with {THREADS} threads in {args.processes} process(es) x {settings.CRMSMS_PROVIDER_CONCURRENCY} calls in flight")
        emit(f"dispatch_L{args.latency_ms:g}{suffix}", rate, "msg/s", limit, note=how)
        if not args.latency_ms:
            emit(f"dispatch_L0_vs_http_client{suffix}", rate, "msg/s", strict,
                 note=f"bare http.client, {concurrency} in flight")


def bare_httpx(port: int, n: int, concurrency: int) -> float:
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{port}",
                      limits=httpx.Limits(max_connections=concurrency)) as client:
        def one(i: int) -> None:
            answer = client.post("/v1/messages", json={"to": f"+336{10000000 + i}", "body": "Hello",
                                                       "reference": f"raw-{i}"})
            answer.raise_for_status()

        return _timed(one, n, concurrency)


def bare_http_client(port: int, n: int, concurrency: int) -> float:
    import json

    from rawhttp import per_thread

    request = per_thread("127.0.0.1", port)

    def one(i: int) -> None:
        body = json.dumps({"to": f"+336{10000000 + i}", "body": "Hello", "reference": f"bare-{i}"}).encode()
        status, _ = request("POST", "/v1/messages", body, {"Content-Type": "application/json"})
        assert status == 201, status

    return _timed(one, n, concurrency)


def _timed(one, n: int, concurrency: int) -> float:
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(min(200, n))))  # warm up the connections
        start = time.perf_counter()
        list(pool.map(one, range(n)))
        return n / (time.perf_counter() - start)


def start_worker(processes: int = 1) -> subprocess.Popen:
    """A `crmsms worker` on this benchmark's database and provider (the environment), up and idle."""
    worker = subprocess.Popen([sys.executable, "-m", "crmsms", "worker", "--processes", str(processes),
                               "--workers", str(THREADS // processes)], stdout=subprocess.PIPE, text=True)
    up = 0
    while up < processes:  # each process says "crmsms worker HOST:PID: N sending threads" once it is up
        up += "sending threads" in worker.stdout.readline()
    return worker


def through_worker(n: int) -> tuple[float, float]:
    """Write n messages due now; return the moments (time.perf_counter()) they were written
    and the last one was sent."""
    from django.utils import timezone

    from crmsms.crm.models import Contact
    from crmsms.sms import dispatch, states
    from crmsms.sms.models import SmsMessage

    # Only this run's messages are counted (an earlier run's are on the same database).
    before = SmsMessage.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    contacts = Contact.objects.bulk_create(
        Contact(last_name=str(i), phone_mobile=f"+336{10000000 + i}", sms_opt_in=True) for i in range(n))
    now = timezone.now()
    SmsMessage.objects.bulk_create(
        (SmsMessage(contact=c, body="Hello", text="Hello", status=states.TO_SEND, send_at=now, due_at=now,
                    to_number=c.phone_mobile) for c in contacts), batch_size=2000)
    start = time.perf_counter()
    dispatch.wake()  # as the web UI does for a message due now
    deadline = time.monotonic() + max(120, n / 50)
    while (sent := SmsMessage.objects.filter(status=states.SENT, pk__gt=before).count()) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {sent} of {n} sent")
        time.sleep(0.1)
    return start, time.perf_counter()


if __name__ == "__main__":
    main()
