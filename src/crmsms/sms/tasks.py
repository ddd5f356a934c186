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
    dispatch.send_claimed(token, ids)
