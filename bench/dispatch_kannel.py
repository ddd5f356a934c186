"""Messages/s through a real Kannel (Debian's bearerbox + smsbox, fakesmsc as the operator)
sent by a real `crmsms worker`, next to a bare concurrent HTTP client sending the same
sendsms requests (same parameters, same dlr-url, same calls in flight) to the same Kannel.

    .venv/bin/python bench/dispatch_kannel.py [--messages 10000] [--repeat 3] [--database-url postgres://...]

    BENCH dispatch_kannel value=... unit=msg/s limit=... ratio=...
    BENCH dispatch_kannel_accepted value=... unit=msg/s limit=... ratio=...
    (with _pg after the name on PostgreSQL, and _nodelay at the end with --nodelay)

Each message asks for delivery reports, as crmsms's connector does (dlr-mask 27: fakesmsc
gives two per message), and Kannel's smsbox makes both the sendsms answers and the report
calls; they go to a null HTTP server here (rawhttp.null_server), which answers 200.

- `dispatch_kannel`: from the first message due (or the bare client's first request) until
  the last message is accepted AND the last report has reached the null server: what Kannel
  can sustain. This is the figure the target applies to.
- `dispatch_kannel_accepted`: until the last message is accepted, reports not waited for.
  Kannel puts the report calls off while sendsms requests pour in faster than it can report:
  the bare client's messages were all accepted seconds before their reports had all left
  (about twice as fast as it can sustain), while the worker, slower, leaves smsbox room for
  the reports as it goes. This figure therefore compares a burst with a steady pace.

Kannel's answers swing between two speeds from run to run, for the bare client as for the
worker: about 12 ms per sendsms call, or about 40 ms. smsbox writes to bearerbox on a
connection where Nagle's algorithm is on, and acknowledges each delivery report with a
message bearerbox does not answer; bearerbox then delays its TCP acknowledgement by 40 ms,
and smsbox's next messages wait for it. While the traffic is dense, other data carries the
acknowledgements and nothing waits. Which regime a run falls into depends on timing: a bare
client with one more thread holding the GIL 30% of the time fell from 2,442 to 1,083
messages/s. So each side runs `--repeat` times, alternating, and the best runs are compared;
each run starts afresh (a new worker, new connections for the bare client).
With `--nodelay`, Kannel's boxes set TCP_NODELAY (tests/gateways/nodelay.c, preloaded): the
stall is gone (one call at a time: 1,774 calls/s instead of 50), and the figures
(`dispatch_kannel_nodelay`) say what the worker costs next to the bare client, not how each
falls into Kannel's two regimes.

The boxes' console log is at info level (tests/gateways/kannel.py): at Kannel's default,
debug, smsbox wrote about 90 lines per message, and that cost it about half its CPU.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.gateways

from dispatch_worker import THREADS, start_worker, through_worker  # noqa: E402
from rawhttp import null_server  # noqa: E402
from report import emit  # noqa: E402
from scratch import django_on  # noqa: E402

from tests.gateways.kannel import KannelGateway  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each, alternating; the best of each is compared (see the docstring)")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--processes", type=int, default=1, help="`crmsms worker --processes` (the same 4 threads)")
    parser.add_argument("--nodelay", action="store_true",
                        help="Kannel's boxes with TCP_NODELAY (tests/gateways/nodelay.c): without its 40 ms stalls")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat: at least 1")
    n = args.messages
    reports_port, reports, stop_reports = null_server()
    os.environ["CRMSMS_PUBLIC_URL"] = f"http://127.0.0.1:{reports_port}"
    os.environ["CRMSMS_SENDING_HOURS"] = ""
    workdir = Path(tempfile.mkdtemp(prefix="crmsms-kannel-"))
    kannel = KannelGateway(workdir, nodelay=args.nodelay)
    try:
        kannel.start()
        os.environ["CRMSMS_SMS_URL"] = kannel.url()
        with django_on(args.database_url):
            from django.conf import settings
            from django.db import connection

            concurrency = THREADS * settings.CRMSMS_PROVIDER_CONCURRENCY
            bares, ours = [], []
            for _ in range(args.repeat):
                bares.append(measured(reports, n, lambda: bare_client(kannel, n, concurrency)))
                worker = start_worker(args.processes)
                try:
                    ours.append(measured(reports, n, lambda: through_worker(n)))
                finally:
                    worker.terminate()
                    worker.wait(timeout=30)
                print(f"  bare client {bares[-1][1]:,.0f} msg/s, worker {ours[-1][1]:,.0f} msg/s (accepted only: "
                      f"{bares[-1][0]:,.0f}, {ours[-1][0]:,.0f}; report calls {bares[-1][2]:,}, {ours[-1][2]:,})")
            if {r[2] for r in bares + ours} != {bares[0][2]}:
                raise RuntimeError(f"Kannel made {[r[2] for r in bares]} report calls for the bare client's runs "
                                   f"and {[r[2] for r in ours]} for the worker's: not the same work")
            suffix = ("" if connection.vendor == "sqlite" else "_pg") + ("_nodelay" if args.nodelay else "")
            print(f"database: {connection.vendor}, {n:,} messages through Kannel, {bares[0][2]:,} delivery "
                  f"reports, {concurrency} calls in flight, best of {args.repeat} runs each")
            emit(f"dispatch_kannel{suffix}", max(r[1] for r in ours), "msg/s", max(r[1] for r in bares),
                 note=f"accepted and reported; bare http.client, {concurrency} in flight")
            emit(f"dispatch_kannel_accepted{suffix}", max(r[0] for r in ours), "msg/s", max(r[0] for r in bares),
                 note=f"accepted only; bare http.client, {concurrency} in flight")
    except BaseException:
        print(f"Kannel's logs: {workdir}")
        raise
    else:
        shutil.rmtree(workdir, ignore_errors=True)  # Kannel's logs, 40 MB a run
    finally:
        kannel.stop()
        stop_reports.set()


def measured(reports, n: int, send) -> tuple[float, float, int]:
    """One run of `send()`, which returns two moments (time.perf_counter()): when its
    messages could start (the bare client's first request; the worker's messages written,
    due now) and when the last was accepted (its answer; the worker's, seen by polling every
    0.1 s). Returns messages/s accepted, messages/s accepted and reported, and how many
    report calls Kannel made for them."""
    seen = reports.settled().count
    start, accepted = send()
    reports.settled()
    return n / (accepted - start), n / (max(accepted, reports.last_at) - start), reports.count - seen


def bare_client(kannel: KannelGateway, n: int, concurrency: int) -> tuple[float, float]:
    """The same sendsms requests our connector makes (KannelConnector.sendsms_target, built
    before the clock starts), sent by a bare client; returns the moments
    (time.perf_counter()) of the first request and the last answer."""
    from urllib.parse import urlsplit

    from rawhttp import per_thread

    from crmsms.sms.providers.base import OutgoingSms
    from crmsms.sms.providers.kannel import KannelConnector

    ours = KannelConnector(urlsplit(kannel.url()))
    targets = [ours.sendsms_target(OutgoingSms(message_id=i, to=f"+336{10000000 + i}", body="Hello",
                                               reference=f"raw-{i}")) for i in range(n)]
    ours.close()
    request = per_thread("127.0.0.1", kannel.sendsms_port)

    def one(target):
        status, text = request("GET", target)
        assert status == 202, text

    with ThreadPoolExecutor(concurrency) as pool:
        start = time.perf_counter()
        list(pool.map(one, targets))
        return start, time.perf_counter()


if __name__ == "__main__":
    main()
