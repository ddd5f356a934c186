"""Delivery reports/s through the webhook of a real `crmsms serve` (waitress), and how many
were lost, next to the same client calling a no-op view of the same server (same
middleware, nothing stored): what receiving costs beyond HTTP.

    .venv/bin/python bench/dlr_ingest.py [--reports 5000] [--clients 20] [--server-processes 2]
                                         [--database-url postgres://...]

The reports are Kannel's (GET /webhooks/kannel/dlr with our reference and token), sent by
`--clients` concurrent connections as a gateway would when a campaign's reports come back,
by a client that costs little CPU (bench/rawhttp.py): the figure is the server's.

    BENCH dlr_ingest value=... unit=reports/s limit=... ratio=...
    BENCH dlr_lost value=0 unit=reports ...
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

from report import emit
from scratch import django_on, free_port

BENCH_DIR = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--server-processes", type=int, default=2, help="crmsms serve --processes (one per core)")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    os.environ["CRMSMS_SMS_URL"] = "kannel://crm:bench-secret@127.0.0.1:13013?from=Bench"
    with django_on(args.database_url):
        from django.db import connection
        from django.utils import timezone

        from crmsms.crm.models import Contact
        from crmsms.sms import states
        from crmsms.sms.models import DeliveryReport, SmsMessage
        from crmsms.sms.providers.base import report_token

        contact = Contact.objects.create(last_name="Bench", phone_mobile="+33612345678", sms_opt_in=True)
        messages = SmsMessage.objects.bulk_create(
            (SmsMessage(contact=contact, body="x", text="x", status=states.SENT, provider="kannel",
                        sent_at=timezone.now(), to_number=contact.phone_mobile) for _ in range(args.reports)),
            batch_size=2000)
        requests = [{"ref": f"crmsms-{m.pk}", "token": report_token("bench-secret", f"crmsms-{m.pk}"),
                     "status": "1", "at": "1795673953", "smsc_id": f"smsc-{m.pk}", "reply": ""} for m in messages]
        connection.close()  # the server's workers write to this database
        port = free_port()
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench_settings",
               "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), os.environ.get("PYTHONPATH", "")])}
        server = subprocess.Popen([sys.executable, "-m", "crmsms", "serve", "--port", str(port),
                                   "--processes", str(args.server_processes)],
                                  env=env, stdout=subprocess.PIPE, text=True)
        try:
            server.stdout.readline()  # "Web UI on ...": it is up
            at = ("127.0.0.1", port)
            send(*at, "/webhooks/bench-noop", requests[:500], args.clients)  # warm-up: connections, threads
            limit = send(*at, "/webhooks/bench-noop", requests, args.clients)
            rate = send(*at, "/webhooks/kannel/dlr", requests, args.clients)
        finally:
            server.terminate()
            server.wait(timeout=30)
        stored = DeliveryReport.objects.count()
        print(f"database: {connection.vendor}, {args.reports:,} reports from {args.clients} connections "
              f"to {args.server_processes} server processes, stored {stored:,}")
        suffix = "" if connection.vendor == "sqlite" else "_pg"
        emit(f"dlr_ingest{suffix}", rate, "reports/s", limit, note="no-op view on the same server")
        lost = args.reports - stored
        print(f"BENCH dlr_lost{suffix} value={lost} unit=reports limit=0 ratio={'1.000' if lost == 0 else '0.000'}")


def send(host: str, port: int, path: str, requests: list[dict], clients: int) -> float:
    from urllib.parse import urlencode

    from rawhttp import get_all

    rate, statuses = get_all(host, port, [f"{path}?{urlencode(params)}" for params in requests], clients)
    assert set(statuses) == {200}, statuses
    return rate


if __name__ == "__main__":
    main()
