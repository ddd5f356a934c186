"""How fast the scheduled tasks send, next to the limit: the same provider called directly.

    .venv/bin/python bench/dispatch_throughput.py [--messages 2000] [--database-url postgres://...] [--campaign]

Both runs send the same N messages, one at a time, to the same `crmsms simulator` process
over loopback HTTP. The raw run is a bare httpx loop (the physical limit of this provider
from one thread); the crmsms run goes through the dispatcher: claim, lease, eligibility
check, attempt committed before the call, outcome and history written after it. The ratio
says what the bookkeeping that makes "nothing lost, nothing sent twice" costs. With
--campaign, the messages belong to a sending campaign, whose counts per status and chart
are kept with every change.
"""

import argparse
import os
import subprocess
import sys
import time

from report import emit
from scratch import django_on, free_port, wait_for_simulator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL server to use; the benchmark creates and drops its own database there")
    parser.add_argument("--campaign", action="store_true", help="the messages are a campaign's")
    args = parser.parse_args()
    port = free_port()
    os.environ["CRMSMS_SMS_URL"] = f"simulator://127.0.0.1:{port}"
    with django_on(args.database_url) as data_dir:
        sim = subprocess.Popen([sys.executable, "-m", "crmsms", "simulator", "--port", str(port),
                                "--log", str(data_dir / "sim.jsonl")], stdout=subprocess.DEVNULL)
        try:
            run(args.messages, port, args.campaign)
        finally:
            sim.terminate()
            sim.wait(timeout=10)


def run(n: int, port: int, in_campaign: bool) -> None:
    import httpx
    from django.db import connection
    from django.utils import timezone
    from huey.contrib.djhuey import HUEY

    from crmsms.crm.models import Contact
    from crmsms.sms import campaigns, dispatch, states
    from crmsms.sms.models import SmsCampaign, SmsMessage

    wait_for_simulator(port)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        start = time.perf_counter()
        for i in range(n):
            client.post("/v1/messages", json={"to": f"+336{10000000 + i}", "body": "Hello", "reference": f"raw-{i}"})
        raw = n / (time.perf_counter() - start)

    contacts = Contact.objects.bulk_create(
        Contact(last_name=str(i), phone_mobile=f"+336{10000000 + i}", sms_opt_in=True) for i in range(n))
    now = timezone.now()
    campaign = SmsCampaign.objects.create(name="Bench", module="contacts", send_at=now, status=SmsCampaign.SENDING,
                                          respect_hours=False) if in_campaign else None
    SmsMessage.objects.bulk_create(
        SmsMessage(contact=c, body="Hello", text="Hello", status=states.TO_SEND, send_at=now, due_at=now,
                   to_number=c.phone_mobile, campaign=campaign) for c in contacts)
    if campaign:
        campaigns.recount(campaign)
    HUEY.immediate = True  # the send tasks run in this thread, as one worker thread would
    start = time.perf_counter()
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        with cProfile.Profile() as profile:
            while dispatch.dispatch_once():
                pass
        pstats.Stats(profile).sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(25)
    else:
        while dispatch.dispatch_once():
            pass
    ours = n / (time.perf_counter() - start)
    sent = SmsMessage.objects.filter(status=states.SENT).count()
    assert sent == n, f"only {sent} of {n} sent"
    if campaign:
        assert campaigns.stats(campaign)["sent"] == n
    print(f"database: {connection.vendor}, messages: {n}{' of a campaign' if campaign else ''}, one sending thread")
    print(f"raw httpx to the simulator: {raw:8.0f} messages/s")
    print(f"crmsms dispatcher:          {ours:8.0f} messages/s")
    print(f"ratio: {ours / raw:.2f}")
    name = f"dispatch_one_thread{'_campaign' if campaign else ''}{'' if connection.vendor == 'sqlite' else '_pg'}"
    emit(name, ours, "msg/s", raw, note="one thread, in process; raw httpx loop, one at a time")


if __name__ == "__main__":
    main()
