"""The periodic jobs, run by exactly one worker at a time, whatever the number of workers
and machines: start the campaigns whose date came, notice abandoned generations, apply
the delivery reports that waited for their message, expire reports that never came, forget
provider pauses long over.

Every worker claims due messages (claiming is safe with any number of them); only the
holder of the "periodic" lease runs these jobs. The holder renews the lease on each pass;
if it stops (killed, machine down), the lease lapses after CRMSMS_PERIODIC_LEASE_SECONDS
and the next worker to look takes it over. A worker started with `--no-periodic` never
takes it.
"""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import WorkerLease

LEASE = "periodic"


def hold(holder: str, name: str = LEASE) -> bool:
    """Take or renew the lease `name` for `holder`; True if `holder` has it now.

    Conditional UPDATEs decide: renew if it is ours, take it if it lapsed; the database
    lets one transaction at a time update the row, and re-checks the condition for it."""
    now = timezone.now()
    until = now + timedelta(seconds=settings.CRMSMS_PERIODIC_LEASE_SECONDS)
    lease = WorkerLease.objects.filter(name=name)
    with transaction.atomic():
        if lease.filter(holder=holder).update(until=until):
            return True
        if lease.filter(until__lt=now).update(holder=holder, until=until, since=now):
            return True
        if lease.exists():
            return False
    try:
        with transaction.atomic():
            WorkerLease.objects.create(name=name, holder=holder, until=until, since=now)
        return True
    except IntegrityError:  # the lease exists and another worker holds it
        return False


def holder_of(name: str = LEASE) -> WorkerLease | None:
    """The current holder of `name`, or None if nobody holds it (or it lapsed)."""
    return WorkerLease.objects.filter(name=name, until__gte=timezone.now()).first()


def release(holder: str, name: str = LEASE) -> None:
    """Give the lease up at once (a worker stopping), so another takes over without waiting."""
    WorkerLease.objects.filter(name=name, holder=holder).update(until=timezone.now() - timedelta(seconds=1))


def run_jobs() -> None:
    from crmsms.sms import breaker, campaigns, reports
    from crmsms.sms.providers import configured_connectors

    campaigns.tick()
    reports.apply_pending()  # those that waited for their message's outcome
    reports.expire_silent({c.name for c in configured_connectors() if c.reports})
    breaker.forget_stale()
