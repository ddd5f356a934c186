"""huey tasks. They only run work that is due now; the schedule is in the database."""

from huey.contrib.djhuey import db_task

from . import dispatch


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

    # The database went away mid-batch: go on with the same claim on a new connection
    # instead of leaving its messages to wait for the lease. Safe to repeat: a new pass only
    # takes the messages this claim still holds and has not called the provider for.
    if HUEY.immediate:  # tasks run inline (tests): one batch, as the dispatcher's pass asked
        dispatch.through_database_loss(lambda: dispatch.send_claimed(token, ids), f"batch of {len(ids)} messages")
        return
    # In a worker: this batch (through a database loss the same way), then the next ones,
    # claimed by this thread itself instead of waiting for the dispatcher's next pass (once a
    # second): a backlog flows at the provider's pace.
    dispatch.send_backlog(token, ids)
