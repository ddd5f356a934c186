"""huey tasks. They only run work that is due now; the schedule is in the database."""

from huey.contrib.djhuey import db_task

from . import dispatch


@db_task()
def dispatch_now() -> int:
    return dispatch.dispatch_once()


@db_task()
def send_batch(token: str, ids: list[int]) -> None:
    dispatch.send_claimed(token, ids)
