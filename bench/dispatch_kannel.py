"""Messages/s accepted by a real Kannel (Debian's bearerbox + smsbox, fakesmsc as the
operator) through a real `crmsms worker`, next to a bare concurrent HTTP client sending the
same sendsms requests (same parameters, same dlr-url, same calls in flight) to the same
Kannel. Delivery reports go to a small HTTP server that answers 200 in both runs.

    .venv/bin/python bench/dispatch_kannel.py [--messages 3000] [--database-url postgres://...]

    BENCH dispatch_kannel value=... unit=msg/s limit=... ratio=...
"""

import argparse
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.gateways

from dispatch_worker import THREADS, start_worker, through_worker  # noqa: E402
from report import emit  # noqa: E402
from scratch import django_on  # noqa: E402

from tests.gateways.kannel import KannelGateway  # noqa: E402


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--processes", type=int, default=1, help="`crmsms worker --processes` (the same 4 threads)")
    args = parser.parse_args()
    reports = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    reports.daemon_threads = True
    reports.request_queue_size = 1024
    threading.Thread(target=reports.serve_forever, daemon=True).start()
    os.environ["CRMSMS_PUBLIC_URL"] = f"http://127.0.0.1:{reports.server_address[1]}"
    os.environ["CRMSMS_SENDING_HOURS"] = ""
    kannel = KannelGateway(Path(tempfile.mkdtemp(prefix="crmsms-kannel-"))).start()
    os.environ["CRMSMS_SMS_URL"] = kannel.url()
    try:
        with django_on(args.database_url):
            from django.conf import settings
            from django.db import connection

            concurrency = THREADS * settings.CRMSMS_PROVIDER_CONCURRENCY
            limit = bare_client(kannel, args.messages, concurrency)
            worker = start_worker(args.processes)
            try:
                rate = through_worker(args.messages)
            finally:
                worker.terminate()
                worker.wait(timeout=30)
            suffix = "" if connection.vendor == "sqlite" else "_pg"
            print(f"database: {connection.vendor}, {args.messages:,} messages through Kannel "
                  f"(delivery reports on), {concurrency} calls in flight")
            emit(f"dispatch_kannel{suffix}", rate, "msg/s", limit, note=f"bare http.client, {concurrency} in flight")
    finally:
        kannel.stop()
        reports.shutdown()


def bare_client(kannel: KannelGateway, n: int, concurrency: int) -> float:
    """The same sendsms requests our connector makes (it builds them), sent by a bare client."""
    from urllib.parse import urlencode, urlsplit

    from rawhttp import per_thread

    from crmsms.sms.providers.base import OutgoingSms
    from crmsms.sms.providers.kannel import KannelConnector

    ours = KannelConnector(urlsplit(kannel.url()))
    requests = []
    for i in range(n):
        sms = OutgoingSms(message_id=i, to=f"+336{10000000 + i}", body="Hello", reference=f"raw-{i}")
        requests.append({"username": ours.username, "password": ours.password, "to": sms.to, "text": sms.body,
                         "charset": "UTF-8", "coding": "0", "dlr-mask": ours.dlr_mask,
                         "dlr-url": ours.dlr_url(sms.reference), "from": ours.sender})
    ours.close()
    request = per_thread("127.0.0.1", kannel.sendsms_port)

    def one(params):
        status, text = request("GET", f"/cgi-bin/sendsms?{urlencode(params)}")
        assert status == 202, text

    with ThreadPoolExecutor(concurrency) as pool:
        start = time.perf_counter()
        list(pool.map(one, requests))
        rate = n / (time.perf_counter() - start)
    time.sleep(2)  # let Kannel deliver and report what the bare run sent before ours starts
    return rate


if __name__ == "__main__":
    main()
