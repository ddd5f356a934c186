"""The state machine: every allowed move happens, every forbidden one is refused, in the
database (a conditional UPDATE), whatever the Python object believes."""

import itertools

import pytest

from crmsms.sms import states
from crmsms.sms.models import SmsMessage
from crmsms.sms.transitions import move, move_one

pytestmark = pytest.mark.django_db

ALL = [s for s, _ in states.CHOICES]
PAIRS = list(itertools.product(ALL, ALL))


@pytest.mark.parametrize("source, target", PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_every_transition(contact, source, target):
    message = SmsMessage.objects.create(contact=contact, body="hi", status=source)
    moved = move([message.pk], target, kind="test", actor="pytest")
    message.refresh_from_db()
    if target in states.TRANSITIONS[source]:
        assert moved == [message.pk] and message.status == target
        event = message.events.get()
        assert (event.from_status, event.to_status, event.kind, event.actor) == (source, target, "test", "pytest")
    else:
        assert moved == [] and message.status == source
        assert not message.events.exists()


def test_nothing_moves_backwards_from_a_report():
    assert states.SENT not in states.TRANSITIONS[states.DELIVERED]
    assert states.TO_SEND not in states.TRANSITIONS[states.UNKNOWN]  # never resent blindly
    assert states.FINAL == {states.DELIVERED, states.UNDELIVERED, states.FAILED, states.SKIPPED, states.CANCELLED}


def test_move_one_refuses_naming_the_current_status(contact):
    message = SmsMessage.objects.create(contact=contact, body="hi", status=states.SENT)
    with pytest.raises(states.TransitionRefused) as refused:
        move_one(message, states.CANCELLED, kind="cancelled")
    assert "is Sent; it cannot become Cancelled" in str(refused.value)


def test_a_stale_object_cannot_move_a_message_that_changed(contact):
    message = SmsMessage.objects.create(contact=contact, body="hi", status=states.TO_SEND)
    stale = SmsMessage.objects.get(pk=message.pk)
    assert move([message.pk], states.CANCELLED, kind="cancelled")
    # `stale` still says to_send, but the database decides: cancelled cannot be claimed.
    assert move([stale.pk], states.SENDING, kind="claimed") == []
    assert SmsMessage.objects.get(pk=message.pk).status == states.CANCELLED


def test_move_only_from_and_where_narrow_the_rows(contact):
    a = SmsMessage.objects.create(contact=contact, body="a", status=states.SENDING, claim_token="mine")
    b = SmsMessage.objects.create(contact=contact, body="b", status=states.SENDING, claim_token="theirs")
    from django.db.models import Q
    assert move([a.pk, b.pk], states.TO_SEND, kind="retry", where=Q(claim_token="mine")) == [a.pk]
    assert move([b.pk], states.SKIPPED, kind="x", only_from={states.DRAFT}) == []
