"""Consent: who may be texted, and the ledger of every change.

Every change of a contact's or account's « SMS opt in » is recorded (`ConsentChange`), with
its source and actor, whatever path saved it: the web UI and the API set who is acting for
the request (`acting`), an inbound STOP or a provider's "unsubscribed" error say so
themselves. A number that asked for no more SMS is kept in `OptOut`: every record with it
loses its opt-in, its queued SMS are skipped, and the opt-in cannot be ticked again for it
without a recorded reason (crm.forms).
"""

from contextlib import contextmanager
from contextvars import ContextVar

from django.db import transaction
from django.db.models.signals import post_save, pre_save

from .models import Account, ConsentChange, Contact, OptOut

# (source, actor, reason) of the changes made now: set per request (UI, API) or per action.
_acting: ContextVar[tuple[str, str, str]] = ContextVar("consent_acting", default=(ConsentChange.SYSTEM, "", ""))


@contextmanager
def acting(source: str, actor: str = "", reason: str = ""):
    token = _acting.set((source, actor, reason))
    try:
        yield
    finally:
        _acting.reset(token)


def current() -> tuple[str, str, str]:
    """(source, actor, reason) of the changes made now."""
    return _acting.get()


def set_acting(source: str, actor: str = "") -> None:
    """For the rest of this request (the API's authentication; the request middleware resets it)."""
    _acting.set((source, actor, ""))


def records_with(number: str) -> list:
    return [*Contact.objects.filter(phone_mobile=number), *Account.objects.filter(phone_office=number)]


def opted_out(numbers) -> set[str]:
    """Which of `numbers` asked for no more SMS."""
    numbers = [n for n in set(numbers) if n]
    found: set[str] = set()
    for i in range(0, len(numbers), 5000):
        found |= set(OptOut.objects.filter(number__in=numbers[i:i + 5000]).values_list("number", flat=True))
    return found


def opt_out(number: str, *, source: str, actor: str, detail: str) -> list:
    """The person at `number` wants no more SMS: remember it, untick the opt-in of every
    record with that number (in the ledger), skip its queued SMS. Returns those records."""
    from crmsms.sms import states
    from crmsms.sms.models import SmsMessage
    from crmsms.sms.transitions import move

    with transaction.atomic():
        OptOut.objects.update_or_create(number=number, defaults={"source": source, "detail": detail[:1000]})
        changed = []
        with acting(source, actor, detail):
            for record in records_with(number):
                if record.sms_opt_in:
                    record.sms_opt_in = False
                    record.save(update_fields=["sms_opt_in", "updated_at"])
                    changed.append(record)
        queued = list(SmsMessage.objects.filter(status=states.TO_SEND, to_number=number).values_list("id", flat=True))
        reason = f"{number} asked for no more SMS ({detail})."
        move(queued, states.SKIPPED, kind="skipped", actor=actor, detail=reason, only_from={states.TO_SEND},
             error_code="opted_out", error_message=reason)
    return changed


def opt_in_again(number: str, *, source: str, actor: str, detail: str) -> list:
    """The person at `number` asked for SMS again (START): forget the opt-out and tick again
    the opt-in of the records that its STOP had unticked (and only those)."""
    with transaction.atomic():
        OptOut.objects.filter(number=number).delete()
        changed = []
        with acting(source, actor, detail):
            for record in records_with(number):
                last = record.consent.order_by("-at", "-id").first()
                if not record.sms_opt_in and last is not None and last.source == ConsentChange.INBOUND_STOP:
                    record.sms_opt_in = True
                    record.save(update_fields=["sms_opt_in", "updated_at"])
                    changed.append(record)
    return changed


# --- the ledger, written on every save that changes an opt-in --------------------------------

def _remember_previous(sender, instance, **kwargs):
    previous = sender.objects.filter(pk=instance.pk).values_list("sms_opt_in", flat=True).first() \
        if instance.pk else None
    instance._opt_in_was = previous


def _record_change(sender, instance, created, **kwargs):
    was = getattr(instance, "_opt_in_was", None)
    if (created and not instance.sms_opt_in) or (not created and was == instance.sms_opt_in):
        return
    source, actor, reason = current()
    ConsentChange.objects.create(
        **{"contact" if sender is Contact else "account": instance}, number=instance.sms_number,
        opt_in=instance.sms_opt_in, source=source, actor=actor, reason=reason)


def connect() -> None:
    for model in (Contact, Account):
        pre_save.connect(_remember_previous, sender=model, dispatch_uid=f"consent-pre-{model.__name__}")
        post_save.connect(_record_change, sender=model, dispatch_uid=f"consent-post-{model.__name__}")
