"""Seconds from a message's sending date to the provider, through a real `crmsms worker`:
messages scheduled a few per second over --seconds, each one's delay = when the simulator
logged it minus its due time. The limit is the issue's 2 s.

    .venv/bin/python bench/due_latency.py [--messages 200] [--seconds 20] [--database-url ...]

    BENCH due_latency_p95 value=... unit=s limit=2 ratio=...
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta

from dispatch_worker import start_worker
from report import emit
from scratch import django_on, free_port, wait_for_simulator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    port = free_port()
    os.environ["CRMSMS_SMS_URL"] = f"simulator://127.0.0.1:{port}"
    os.environ["CRMSMS_SENDING_HOURS"] = ""
    with django_on(args.database_url) as data_dir:
        from django.db import connection
        from django.utils import timezone

        from crmsms.crm.models import Contact
        from crmsms.sms import states
        from crmsms.sms.models import SmsMessage

        log = data_dir / "sim.jsonl"
        sim = subprocess.Popen([sys.executable, "-m", "crmsms", "simulator", "--port", str(port), "--log", str(log)],
                               stdout=subprocess.DEVNULL)
        worker = None
        try:
            wait_for_simulator(port)
            worker = start_worker()
            contacts = Contact.objects.bulk_create(
                Contact(last_name=str(i), phone_mobile=f"+336{10000000 + i}", sms_opt_in=True)
                for i in range(args.messages))
            start = timezone.now() + timedelta(seconds=2)
            step = args.seconds / args.messages
            # Scheduled, as "Send SMS" with a sending date does: nobody wakes the worker.
            SmsMessage.objects.bulk_create(
                SmsMessage(contact=c, body="Hello", text="Hello", status=states.TO_SEND, to_number=c.phone_mobile,
                           send_at=start + timedelta(seconds=i * step), due_at=start + timedelta(seconds=i * step))
                for i, c in enumerate(contacts))
            deadline = time.monotonic() + args.seconds + 60
            while SmsMessage.objects.filter(status=states.SENT).count() < args.messages:
                if time.monotonic() > deadline:
                    raise RuntimeError("not every message was sent in time")
                time.sleep(0.5)
        finally:
            for process in (worker, sim):
                if process:
                    process.terminate()
                    process.wait(timeout=30)
        due = dict(SmsMessage.objects.values_list("id", "due_at"))
        delays = sorted((datetime.fromisoformat(row["at"]) - due[int(row["reference"].removeprefix("crmsms-"))])
                        .total_seconds() for row in map(json.loads, log.read_text().splitlines()))
        p95 = delays[max(0, round(len(delays) * 0.95) - 1)]
        print(f"database: {connection.vendor}, {len(delays)} messages due over {args.seconds:g} s: delay median "
              f"{statistics.median(delays):.2f} s, p95 {p95:.2f} s, max {delays[-1]:.2f} s")
        suffix = "" if connection.vendor == "sqlite" else "_pg"
        emit(f"due_latency_p95{suffix}", p95, "s", 2.0, lower_is_better=True, note="due time -> simulator log")


if __name__ == "__main__":
    main()
