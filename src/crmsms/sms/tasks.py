"""huey tasks. They only run work that is due now; the schedule is in the database."""

import logging
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from huey.contrib.djhuey import db_task

from . import dispatch

log = logging.getLogger(__name__)


@db_task()
def dispatch_now() -> None:
    dispatch.dispatch_once()  # returns nothing: huey would keep a result row per wake-up


@db_task()
def generate_campaign(campaign_id: int) -> None:
    from . import generation

    generation.generate(campaign_id)


@db_task()
def apply_reports() -> None:
    from . import reports

    reports.apply_pending()


@db_task()
def send_batch(token: str, ids: list[int]) -> None:
    from huey.contrib.djhuey import HUEY

    _send_claimed_through_database_restarts(token, ids)
    # A thread that finished its batch claims the next one now, instead of waiting for the
    # dispatcher's next pass (once a second): a backlog then flows at the provider's pace.
    # (Not when tasks run inline, in tests: each batch would call the next one recursively.)
    if not HUEY.immediate:
        dispatch.dispatch_once(expire=False)


def _send_claimed_through_database_restarts(token: str, ids: list[int]) -> None:
    """The database went away in the middle of a batch (a restart, a failover): go on with
    the same claim on a new connection, for as long as its lease lasts, instead of leaving
    the messages it still holds to wait for the lease to run out. Safe to repeat: a new pass
    only takes the messages this claim still holds and has not called the provider for;
    the outcomes of calls already made are written by record_outcomes, which retries too."""
    deadline = time.monotonic() + settings.CRMSMS_LEASE_SECONDS
    delay = 0.5
    while True:
        try:
            dispatch.send_claimed(token, ids)
            return
        except (OperationalError, InterfaceError) as error:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("batch of %d messages interrupted by the database (%s); going on in %.1fs",
                        len(ids), error, delay)
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, 10)
