"""Creating, editing and cancelling messages: what the UI and the API both call once their
form is valid (see forms.MessageForm)."""

from datetime import UTC

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import rendering, states
from .dispatch import wake
from .models import SmsMessage
from .transitions import insert, move_one, note


class EditConflict(Exception):
    """The message changed since the editor loaded it (another tab, another user)."""


def _queued_detail(message: SmsMessage) -> str:
    return f"to be sent at {message.send_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _queue(message: SmsMessage, user) -> None:
    """Queue a draft just saved: the text rendered by that save, in this same transaction,
    is the one that leaves, whatever changes on the record later."""
    move_one(message, states.TO_SEND, kind="queued", actor=user.get_username(), detail=_queued_detail(message),
             to_number=message.record.sms_number, due_at=message.send_at)
    _wake_if_due(message)


def _wake_if_due(message: SmsMessage) -> None:
    if message.send_at <= timezone.now():
        wake()


@transaction.atomic  # a savepoint only inside a caller's transaction: a refused insert leaves it usable
def create_message(record, *, body: str, send_at, status: str, user, template=None,
                   idempotency_key: str | None = None) -> SmsMessage:
    draft = rendering.preview(record, body, user, when=send_at)
    message = SmsMessage(
        contact=record if record.module == "contacts" else None,
        account=record if record.module == "accounts" else None,
        recipient_name=str(record), to_number=record.sms_number,
        body=body, text=draft.text, encoding=draft.encoding, segments=draft.segments, template=template,
        send_at=send_at, due_at=send_at, created_by=user, idempotency_key=idempotency_key,
    )
    queue = status == states.TO_SEND
    insert(message, actor=user.get_username(), detail=f"from template “{template}”" if template else "",
           queued=_queued_detail(message) if queue else None)
    if queue:
        _wake_if_due(message)
    return message


@transaction.atomic
def update_draft(message: SmsMessage, *, version: int | None, body: str, send_at, status: str, user,
                 template=None) -> SmsMessage:
    """Save a draft's new text and date, and queue it if asked. Refuses to overwrite a
    change made since `version` was loaded."""
    draft = rendering.preview(message.record, body, user, when=send_at)
    before = (message.body, message.send_at)
    updated = SmsMessage.objects.filter(
        pk=message.pk, status=states.DRAFT, version=version if version is not None else message.version
    ).update(
        body=body, text=draft.text, encoding=draft.encoding, segments=draft.segments, template=template,
        send_at=send_at, due_at=send_at, version=F("version") + 1, updated_at=timezone.now(),
    )
    if not updated:
        raise EditConflict(
            "This message was changed or sent since you opened it (in another tab or by "
            "someone else). Reload it to see its current state."
        )
    message.refresh_from_db()
    changed = [what for what, old, new in (("text", before[0], message.body), ("sending date", before[1], message.send_at))
               if old != new]
    if changed:
        note(message.pk, "edited", f"changed the {' and the '.join(changed)}", actor=user.get_username())
    if status == states.TO_SEND:
        _queue(message, user)
    return message


def resolve_unknown(message: SmsMessage, outcome: str, user) -> None:
    """A person checked with the provider what became of an "unknown" message."""
    who = user.get_username()
    if outcome == states.SENT:
        move_one(message, states.SENT, kind="resolved", actor=who, only_from={states.UNKNOWN},
                 detail=f"marked as sent by {who} after checking with the provider")
    else:
        reason = f"Marked as not sent by {who} after checking with the provider."
        move_one(message, states.FAILED, kind="resolved", actor=who, only_from={states.UNKNOWN},
                 detail=reason, error_code="marked_not_sent", error_message=reason)


@transaction.atomic
def copy_to_draft(message: SmsMessage, user) -> SmsMessage:
    """A new draft with the same recipient and text, e.g. to send again what failed."""
    record = message.record
    if record is None:
        raise ValueError("The contact or account of this SMS was deleted: there is no one to send a copy to.")
    copy = create_message(record, body=message.body, send_at=timezone.now(), status=states.DRAFT, user=user,
                          template=message.template)
    note(copy.pk, "copied", f"copy of SMS {message.pk}", actor=user.get_username())
    return copy


def cancel(message: SmsMessage, user) -> None:
    move_one(message, states.CANCELLED, kind="cancelled", actor=user.get_username(),
             detail=f"cancelled by {user.get_username()}", lease_until=None)
