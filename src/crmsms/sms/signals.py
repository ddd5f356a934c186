"""A contact or account deleted while it has messages waiting: the messages stay (they are
history), and the ones not sent yet are marked skipped, with the reason."""

from django.db.models.signals import pre_delete
from django.dispatch import receiver

from crmsms.crm.models import Account, Contact

from . import states
from .transitions import move


@receiver(pre_delete, sender=Contact)
@receiver(pre_delete, sender=Account)
def skip_waiting_messages(sender, instance, **kwargs) -> None:
    ids = list(instance.sms_messages.filter(status__in=states.WAITING).values_list("id", flat=True))
    reason = f"{instance} was deleted before the message was sent."
    # only_from: a message a worker claimed meanwhile is left to the worker, which sees the
    # record gone (or the call already made) and records what really happened.
    move(ids, states.SKIPPED, kind="skipped", detail=reason, only_from=states.WAITING,
         error_code="record_deleted", error_message=reason)
