"""`crmsms worker`: the scheduled tasks. A huey consumer runs the sends; a dispatcher loop
in the same process looks for due messages every second, so a message scheduled for
14:00:00 leaves at 14:00:01 at the latest, and one due now leaves at once (the web process
wakes the dispatcher through huey when it saves it).

Stopping: SIGTERM (systemd, Docker, `crmsms run`) and Ctrl-C both stop claiming at once and
let the sends in progress finish, for up to CRMSMS_LEASE_SECONDS; a second signal stops now.
A send cut short is never lost nor repeated: its lease turns it "unknown" (DESIGN §4).
"""

import logging
import os
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from huey.contrib.djhuey import HUEY

from crmsms.sms import campaigns, dispatch, reports
from crmsms.sms.providers import configured_connectors

log = logging.getLogger("crmsms.worker")


def dispatcher_loop(stop: threading.Event, interval: float) -> None:
    while not stop.is_set():
        try:
            close_old_connections()
            campaigns.tick()
            dispatch.dispatch_once()
            reports.apply_pending()  # those that waited for their message's outcome
            reports.expire_silent({c.name for c in configured_connectors() if c.reports})
        except Exception:  # noqa: BLE001  the loop must survive a database restart; logged, retried
            log.exception("dispatcher pass failed; retrying in %.1fs", interval)
        stop.wait(interval)


class Command(BaseCommand):
    help = "Run the scheduled tasks that send SMS messages (huey consumer + dispatcher)."

    def add_arguments(self, parser):
        parser.add_argument("--workers", type=int, default=4, help="sending threads (default 4)")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between dispatcher passes")

    def handle(self, workers, interval, **options):
        stop = threading.Event()
        loop = threading.Thread(target=dispatcher_loop, args=(stop, interval), name="dispatcher", daemon=True)
        # Poll the queue at least twice a second when idle (huey backs off to 10 s by default),
        # so a batch handed over by the dispatcher starts at once. SIGTERM is huey's graceful
        # signal here: it waits for the tasks in hand instead of abandoning them.
        consumer = HUEY.create_consumer(
            workers=workers, worker_type="thread", periodic=False,
            initial_delay=0.05, backoff=1.2, max_delay=0.5,
            graceful_signal="TERM", shutdown_timeout=settings.CRMSMS_LEASE_SECONDS,
        )
        huey_graceful = signal.getsignal(signal.SIGTERM)

        def graceful(signum, frame):
            stop.set()  # no new claims from this worker
            huey_graceful(signal.SIGTERM, frame)

        signal.signal(signal.SIGTERM, graceful)
        signal.signal(signal.SIGINT, lambda signum, frame: os.kill(os.getpid(), signal.SIGTERM))

        self.stdout.write(f"crmsms worker {dispatch.worker_name()}: {workers} sending threads, "
                          f"dispatcher every {interval}s", ending="\n")
        self.stdout.flush()
        for connector in configured_connectors():
            connector.start()  # an SMPP session binds now: receipts and replies come over it
        loop.start()
        try:
            consumer.run()  # returns once the tasks in hand are done (or the timeout passed)
        finally:
            stop.set()
            loop.join(timeout=5)
            for connector in configured_connectors():
                connector.close()
        self.stdout.write("crmsms worker stopped.")
