"""`crmsms worker`: the scheduled tasks. A huey consumer runs the sends; a dispatcher loop
in the same process looks for due messages every second, so a message scheduled for
14:00:00 leaves at 14:00:01 at the latest, and one due now leaves at once (the web process
wakes the dispatcher through huey when it saves it). Any number of workers may run, on any
number of machines; exactly one of them runs the periodic jobs (sms/periodic.py).

Stopping: SIGTERM (systemd, Docker, `crmsms run`) and Ctrl-C both stop claiming at once and
let the sends in progress finish, for up to CRMSMS_LEASE_SECONDS; a second signal stops now.
A send cut short is never lost nor repeated: its lease turns it "unknown" (DESIGN §4).
"""

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from huey.contrib.djhuey import HUEY

from crmsms.processes import supervise
from crmsms.sms import dispatch, periodic
from crmsms.sms.providers import configured_connectors

log = logging.getLogger("crmsms.worker")


def dispatcher_loop(stop: threading.Event, interval: float, periodic_jobs: bool) -> None:
    me = dispatch.worker_name()
    holding = None
    while not stop.is_set():
        try:
            close_old_connections()
            if periodic_jobs:
                now_holding = periodic.hold(me)
                if now_holding != holding:
                    _say_who_runs_periodic_jobs(me, now_holding)
                holding = now_holding
                if holding:
                    periodic.run_jobs()
            dispatch.dispatch_once()
        except Exception:  # noqa: BLE001  the loop must survive a database restart; logged, retried
            log.exception("dispatcher pass failed; retrying in %.1fs", interval)
        stop.wait(interval)
    if holding:
        try:
            periodic.release(me)  # the next worker takes over now, not when the lease lapses
        except Exception:  # noqa: BLE001  stopping anyway; the lease lapses by itself
            log.warning("could not release the periodic jobs' lease; it lapses in %ss",
                        settings.CRMSMS_PERIODIC_LEASE_SECONDS)


def _say_who_runs_periodic_jobs(me: str, holding: bool) -> None:
    if holding:
        log.info("worker %s runs the periodic jobs (campaign starts, delivery reports)", me)
        return
    holder = periodic.holder_of()
    log.info("worker %s does not run the periodic jobs: %s runs them. This worker sends messages "
                "and takes the periodic jobs over if that one stops for %ss.", me,
                holder.holder if holder else "another worker", settings.CRMSMS_PERIODIC_LEASE_SECONDS)


class Command(BaseCommand):
    help = "Run the scheduled tasks that send SMS messages (huey consumer + dispatcher)."

    def add_arguments(self, parser):
        parser.add_argument("--workers", type=int, default=4, help="sending threads (default 4)")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between dispatcher passes")
        parser.add_argument("--processes", type=int, default=1,
                            help="worker processes on this machine, each with --workers threads (default 1): "
                                 "one process uses one core, since Python runs one thread at a time")
        parser.add_argument("--no-periodic", action="store_true",
                            help="never run the periodic jobs (one worker runs them; by default any worker "
                                 "may take them over when the one running them stops)")

    def handle(self, workers, interval, no_periodic, processes, **options):
        if processes > 1:
            args = ["--workers", str(workers), "--interval", str(interval)] + (["--no-periodic"] if no_periodic else [])
            return supervise(processes, ["worker", *args], self.stdout)
        stop = dispatch.stopping  # also read by the sending threads: no claim once it is set
        dispatch.sending_threads = workers
        loop = threading.Thread(target=dispatcher_loop, args=(stop, interval, not no_periodic), name="dispatcher", daemon=True)
        # Poll the queue at least twice a second when idle (huey backs off to 10 s by default),
        # so a batch handed over by the dispatcher starts at once. SIGTERM is huey's graceful
        # signal here: it waits for the tasks in hand instead of abandoning them.
        consumer = HUEY.create_consumer(
            workers=workers, worker_type="thread", periodic=False,
            initial_delay=0.05, backoff=1.2, max_delay=0.5,
            graceful_signal="TERM", shutdown_timeout=settings.CRMSMS_LEASE_SECONDS,
        )
        # huey installs its own signal handlers when it starts (over any set here), calling
        # this method: wrapped, the first SIGTERM or Ctrl-C also stops this worker's claims at
        # once and is graceful for huey; a second Ctrl-C stops now.
        huey_handle = consumer._handle_signal

        def handle(signum, frame):
            first = not stop.is_set()
            stop.set()  # no new claims from this worker
            huey_handle(signal.SIGTERM if first else signum, frame)

        consumer._handle_signal = handle

        self.stdout.write(f"crmsms worker {dispatch.worker_name()}: {workers} sending threads, "
                          f"dispatcher every {interval}s"
                          + (", never the periodic jobs" if no_periodic else ""), ending="\n")
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
