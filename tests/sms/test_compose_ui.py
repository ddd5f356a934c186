"""Creating an SMS from a contact's or an account's "SMS Messages" sub-panel (the manual's
first two sections), its history, editing a draft, cancelling, and bad input."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crmsms.sms import states
from crmsms.sms.models import SmsMessage
from crmsms.sms.providers.memory import MemoryConnector

pytestmark = pytest.mark.django_db


def local(dt):
    """What a person types in a datetime-local field, in their zone (Europe/Paris)."""
    return timezone.localtime(dt, timezone=__import__("zoneinfo").ZoneInfo("Europe/Paris")).strftime("%Y-%m-%dT%H:%M")


def test_send_sms_from_a_contact_goes_out_and_shows_its_history(web, contact, django_capture_on_commit_callbacks):
    form = web.get(f"/contacts/{contact.pk}/sms/new/").content.decode()
    assert 'name="send_at"' in form and "Send SMS" in form
    with django_capture_on_commit_callbacks(execute=True):
        response = web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "Your order is ready", "status": "to_send"})
    assert response.status_code == 302 and response["Location"] == f"/contacts/{contact.pk}/"
    message = SmsMessage.objects.get()
    assert message.status == states.SENT and message.provider == "memory"
    assert [(m.to, m.body) for m in MemoryConnector.outbox] == [("+33612345678", "Your order is ready")]
    panel = web.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Your order is ready" in panel and "badge-sent" in panel
    history = web.get(f"/sms/{message.pk}/").content.decode()
    for kind in ("Created", "Queued", "Attempt", "Sent"):
        assert kind in history
    assert message.provider_message_id in history


def test_send_sms_from_an_account(web, account, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        web.post(f"/accounts/{account.pk}/sms/new/", {"body": "Hello shop", "status": "to_send"})
    message = SmsMessage.objects.get()
    assert message.account == account and message.status == states.SENT
    assert MemoryConnector.outbox[0].to == "+33611223344"


def test_a_future_date_in_the_users_zone_is_stored_in_utc_and_waits(web, contact, django_capture_on_commit_callbacks):
    when = (timezone.now() + timedelta(days=2)).replace(second=0, microsecond=0)
    with django_capture_on_commit_callbacks(execute=True):
        web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "Later", "status": "to_send", "send_at": local(when)})
    message = SmsMessage.objects.get()
    assert message.send_at == when and message.status == states.TO_SEND
    assert MemoryConnector.outbox == []


@pytest.mark.parametrize("change, code, words", [
    ({"sms_opt_in": False}, "no_opt_in", "has not opted in"),
    ({"phone_mobile": ""}, "no_number", "has no number in the Mobile field"),
    ({"phone_mobile": "+33612"}, "invalid_number", "is not a valid phone number"),
    ({"phone_mobile": "+33142685300"}, "not_mobile", "is a landline"),
])
def test_send_sms_is_refused_with_the_reason(web, contact, change, code, words):
    type(contact).objects.filter(pk=contact.pk).update(**change)
    response = web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "Hi", "status": "to_send"})
    assert response.status_code == 200
    assert words in response.content.decode()
    assert not SmsMessage.objects.exists()
    # A draft can still be written.
    assert web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "Hi", "status": "draft"}).status_code == 302
    assert SmsMessage.objects.get().status == states.DRAFT


@pytest.mark.parametrize("body, words", [
    ("", "Message: the text is empty."),
    ("   \n ", "Message: the text is empty."),
    ("x" * 2000, "Message: at most 1600 characters (2000 given)."),
])
def test_bad_text_is_refused(web, contact, body, words):
    response = web.post(f"/contacts/{contact.pk}/sms/new/", {"body": body, "status": "to_send"})
    assert response.status_code == 200 and words in response.content.decode()
    assert not SmsMessage.objects.exists()


def test_emoji_and_accents_are_counted_in_ucs2(web, contact):
    web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "Merci ! 🎉 à bientôt ça", "status": "draft"})
    message = SmsMessage.objects.get()
    assert (message.encoding, message.segments) == ("UCS-2", 1)


def test_non_breaking_space_is_normalised_so_it_stays_gsm7(web, contact):
    web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "Prix\u00a0: 10 €", "status": "draft"})
    message = SmsMessage.objects.get()
    assert message.body == "Prix : 10 €" and message.encoding == "GSM-7"


def test_past_date_sends_now_and_years_ahead_is_refused(web, contact, django_capture_on_commit_callbacks):
    far = timezone.now() + timedelta(days=3 * 365)
    response = web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "Hi", "status": "to_send", "send_at": local(far)})
    assert "Sending date: at most 366 days ahead." in response.content.decode()
    past = timezone.now() - timedelta(days=30)
    with django_capture_on_commit_callbacks(execute=True):
        web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "Hi", "status": "to_send", "send_at": local(past)})
    message = SmsMessage.objects.get()
    assert message.status == states.SENT
    # Recorded as sent now, not as a month ago: lists sort it where it belongs.
    assert timezone.now() - message.send_at < timedelta(minutes=1)


@pytest.mark.parametrize("typed", ["0001-01-01T00:00", "9999-12-31T23:59"])
def test_dates_at_the_ends_of_the_calendar_are_refused_not_a_crash(web, contact, typed):
    response = web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "Hi", "status": "draft", "send_at": typed})
    assert response.status_code in (200, 302)
    if response.status_code == 200:
        assert "Sending date:" in response.content.decode()
    else:  # year 1 is in the past: sent now
        assert timezone.now() - SmsMessage.objects.get().send_at < timedelta(minutes=1)


def test_line_breaks_count_as_one_character(web, contact):
    body = "a" * 80 + "\r\n" + "b" * 79  # what a browser submits for 80 chars, Enter, 79 chars
    web.post(f"/contacts/{contact.pk}/sms/new/", {"body": body, "status": "draft"})
    message = SmsMessage.objects.get()
    assert message.body == "a" * 80 + "\n" + "b" * 79
    assert (len(message.body), message.segments) == (160, 1)


def test_send_now_on_a_draft(web, contact, django_capture_on_commit_callbacks):
    web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "Draft first", "status": "draft"})
    message = SmsMessage.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        web.post(f"/sms/{message.pk}/send/")
    message.refresh_from_db()
    assert message.status == states.SENT and MemoryConnector.outbox[0].body == "Draft first"


def test_send_now_is_refused_for_a_record_without_opt_in(web, contact):
    web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "Draft first", "status": "draft"})
    type(contact).objects.filter(pk=contact.pk).update(sms_opt_in=False)
    message = SmsMessage.objects.get()
    page = web.post(f"/sms/{message.pk}/send/", follow=True).content.decode()
    assert "has not opted in" in page
    message.refresh_from_db()
    assert message.status == states.DRAFT


def test_garbage_date_names_the_field(web, contact):
    response = web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "Hi", "status": "draft", "send_at": "next tuesday"})
    assert response.status_code == 200 and "Sending date: enter a date and a time." in response.content.decode()


def test_two_tabs_saving_the_same_draft(web, contact):
    web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "v1", "status": "draft"})
    message = SmsMessage.objects.get()
    tab = {"body": "from tab A", "status": "draft", "version": message.version}
    assert web.post(f"/sms/{message.pk}/edit/", tab).status_code == 302
    late = web.post(f"/sms/{message.pk}/edit/", {**tab, "body": "from tab B"})
    assert late.status_code == 200 and "changed or sent since you opened it" in late.content.decode()
    assert "The message as it is now" in late.content.decode() and "from tab A" in late.content.decode()
    assert "from tab B" in late.content.decode()  # what the user typed is not lost
    assert message.events.get(kind="edited").detail.startswith("changed the text")
    message.refresh_from_db()
    assert message.body == "from tab A" and message.version == 2


def test_cancel_a_queued_message_and_not_a_sent_one(web, contact):
    later = (timezone.now() + timedelta(hours=3))
    web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "Later", "status": "to_send", "send_at": local(later)})
    message = SmsMessage.objects.get()
    web.post(f"/sms/{message.pk}/cancel/")
    message.refresh_from_db()
    assert message.status == states.CANCELLED
    again = web.post(f"/sms/{message.pk}/cancel/", follow=True)
    assert "is Cancelled; it cannot become Cancelled" in again.content.decode()


def test_message_list_filters_by_status(web, contact):
    SmsMessage.objects.create(contact=contact, body="sent one", text="sent one", status=states.SENT, recipient_name="Camille")
    SmsMessage.objects.create(contact=contact, body="draft one", text="draft one", status=states.DRAFT, recipient_name="Camille")
    page = web.get("/sms/", {"status": "draft"}).content.decode()
    assert "draft one" in page and "sent one" not in page


def test_the_same_form_submitted_twice_creates_one_message(web, contact, django_capture_on_commit_callbacks):
    form = web.get(f"/contacts/{contact.pk}/sms/new/").content.decode()
    key = form.split('name="submission" value="')[1].split('"')[0]
    data = {"body": "Only once", "status": "to_send", "submission": key}
    with django_capture_on_commit_callbacks(execute=True):
        assert web.post(f"/contacts/{contact.pk}/sms/new/", data).status_code == 302
        assert web.post(f"/contacts/{contact.pk}/sms/new/", data).status_code == 302  # a double click
    assert SmsMessage.objects.count() == 1 and len(MemoryConnector.outbox) == 1


def test_unknown_can_be_resolved_by_a_person(web, contact):
    message = SmsMessage.objects.create(contact=contact, body="hm", status=states.UNKNOWN)
    page = web.get(f"/sms/{message.pk}/").content.decode()
    assert "Mark as sent" in page and "never resent automatically" in page
    web.post(f"/sms/{message.pk}/resolve/", {"outcome": "failed"})
    message.refresh_from_db()
    assert message.status == states.FAILED and message.error_code == "marked_not_sent"
    assert message.events.get(kind="resolved").actor == "alice"
    refused = web.post(f"/sms/{message.pk}/resolve/", {"outcome": "sent"}, follow=True).content.decode()
    assert "is Failed; it cannot become Sent" in refused


def test_copy_to_new_draft(web, contact):
    failed = SmsMessage.objects.create(contact=contact, body="Try me again", status=states.FAILED)
    response = web.post(f"/sms/{failed.pk}/copy/")
    copy = SmsMessage.objects.exclude(pk=failed.pk).get()
    assert response["Location"] == f"/sms/{copy.pk}/edit/"
    assert (copy.status, copy.body, copy.contact) == (states.DRAFT, "Try me again", contact)
