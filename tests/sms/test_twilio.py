"""The Twilio connector against a local server speaking Twilio's wire format
(tests/sms/fake_twilio.py): accepted with Twilio's SID, each error code mapped to what it
proves, 21610 opting the number out, and StatusCallbacks signed exactly as the official
`twilio` package computes them making messages Delivered; forged callbacks refused."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from crmsms.crm.models import Account, OptOut
from crmsms.sms import dispatch, reports, states
from crmsms.sms.models import InboundSms, SmsMessage
from crmsms.sms.providers import connector_for
from crmsms.sms.webhooks import twilio_signature
from tests.sms.fake_twilio import FakeTwilio

SID, TOKEN = "AC" + "0" * 32, "twilio-auth-token"


def test_signature_matches_the_test_vector_and_the_official_validator():
    params = {"CallSid": ["CA1234567890ABCDE"], "Caller": ["+12349013030"], "Digits": ["1234"],
              "From": ["+12349013030"], "To": ["+18005551212"]}
    assert twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params) == \
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=12),
                       st.text(st.characters(blacklist_categories=["Cs"]), max_size=30), max_size=8),
       st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20))
def test_signature_is_the_official_one_for_any_parameters(params, token):
    url = "https://crm.example.com/webhooks/twilio/status?ref=crmsms-42"
    official = RequestValidator(token).compute_signature(url, params)
    assert twilio_signature(token, url, {k: [v] for k, v in params.items()}) == official


@pytest.fixture
def twilio(settings):
    server = FakeTwilio(SID, TOKEN)
    settings.CRMSMS_SMS_URL = f"twilio+http://{SID}:{TOKEN}@127.0.0.1:{server.port}?from=%2B15005550006"
    yield server
    server.shutdown()


def queued(contact, to=None):
    now = timezone.now()
    return SmsMessage.objects.create(contact=contact, body="Hello", text="Hello", status=states.TO_SEND, send_at=now,
                                     due_at=now, to_number=to or contact.phone_mobile)


@pytest.mark.django_db(transaction=True)
def test_sent_through_twilio_then_delivered_by_its_status_callback(twilio, live_server, settings, contact):
    settings.CRMSMS_PUBLIC_URL = live_server.url
    message = queued(contact)
    dispatch.dispatch_once()
    message.refresh_from_db()
    assert message.status == states.SENT and message.provider == "twilio"
    assert message.provider_message_id == twilio.received[0]["sid"]
    sent = twilio.received[0]
    assert (sent["To"], sent["From"], sent["Body"]) == (contact.phone_mobile, "+15005550006", "Hello")
    assert sent["StatusCallback"] == f"{live_server.url}/webhooks/twilio/status?ref=crmsms-{message.pk}"
    deadline = time.monotonic() + 10
    # Until delivered, and the fake has noted our answer to its second callback (it does so
    # once our answer reached it, which may be after the report was applied).
    while (message.status != states.DELIVERED or len(twilio.callbacks) < 2) and time.monotonic() < deadline:
        time.sleep(0.05)
        reports.apply_pending()
        message.refresh_from_db()
    assert message.status == states.DELIVERED
    assert [code for _, code in twilio.callbacks] == [200, 200]  # both callbacks accepted


@pytest.mark.django_db
@pytest.mark.parametrize("error, expected", [
    ((400, 21211, "The 'To' number is not a valid phone number."), (states.FAILED, "invalid_number", False)),
    ((400, 21614, "'To' number is not a valid mobile number"), (states.FAILED, "not_mobile", False)),
    ((401, 20003, "Authenticate"), (states.FAILED, "auth_failed", True)),
    ((400, 21606, "The 'From' phone number provided is not a valid message-capable Twilio phone number."),
     (states.FAILED, "invalid_from", True)),
    ((500, 20500, "Internal Server Error"), (states.UNKNOWN, "provider_error_500", False)),
])
def test_errors_mean_what_they_prove(twilio, contact, error, expected):
    twilio.errors[contact.phone_mobile] = error
    message = queued(contact)
    dispatch.dispatch_once()
    message.refresh_from_db()
    assert (message.status, message.error_code, message.retryable) == expected
    assert f"Twilio error {error[1]}" in message.error_message


@pytest.mark.django_db
def test_throttled_is_retried_later(twilio, contact):
    twilio.throttle_next = 1
    message = queued(contact)
    dispatch.dispatch_once()
    message.refresh_from_db()
    assert message.status == states.TO_SEND and message.error_code == "throttled"
    assert message.due_at > timezone.now()


@pytest.mark.django_db
def test_unsubscribed_recipient_is_opted_out_everywhere(twilio, contact):
    other = Account.objects.create(name="Same person's shop", phone_office=contact.phone_mobile, sms_opt_in=True)
    twilio.errors[contact.phone_mobile] = (400, 21610, "Attempt to send to unsubscribed recipient")
    message = queued(contact)
    waiting = queued(contact)
    SmsMessage.objects.filter(pk=waiting.pk).update(due_at=timezone.now() + timedelta(hours=1))
    dispatch.dispatch_once()
    message.refresh_from_db()
    waiting.refresh_from_db()
    other.refresh_from_db()
    contact.refresh_from_db()
    assert (message.status, message.error_code) == (states.FAILED, "recipient_unsubscribed")
    assert OptOut.objects.get(number=contact.phone_mobile).source == "provider"
    assert not contact.sms_opt_in and not other.sms_opt_in
    assert (waiting.status, waiting.error_code) == (states.SKIPPED, "opted_out")
    assert contact.consent.order_by("-at", "-id").first().actor == "twilio"


@pytest.mark.django_db
def test_forged_status_callbacks_are_refused(client, settings, contact):
    settings.CRMSMS_SMS_URL = f"twilio://{SID}:{TOKEN}@api.twilio.com?from=%2B15005550006"
    settings.CRMSMS_PUBLIC_URL = "https://crm.example.com"
    message = queued(contact)
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    url = f"https://crm.example.com/webhooks/twilio/status?ref=crmsms-{message.pk}"
    path = f"/webhooks/twilio/status?ref=crmsms-{message.pk}"
    forged = RequestValidator("not-the-token").compute_signature(url, params)
    assert client.post(path, params, headers={"X-Twilio-Signature": forged}).status_code == 403
    wrong_url = RequestValidator(TOKEN).compute_signature(url.replace("42", "43") + "x", params)
    assert client.post(path, params, headers={"X-Twilio-Signature": wrong_url}).status_code == 403
    good = RequestValidator(TOKEN).compute_signature(url, params)
    assert client.post(path, params, headers={"X-Twilio-Signature": good}).status_code == 200


def test_url_needs_credentials_and_a_sender():
    with pytest.raises(ValueError, match="account SID and auth token"):
        connector_for("twilio://api.twilio.com?from=%2B1555")
    with pytest.raises(ValueError, match="from="):
        connector_for(f"twilio://{SID}:{TOKEN}@api.twilio.com")


@pytest.mark.django_db
def test_routes_by_destination_prefix(twilio, settings, contact):
    """+33 numbers through Twilio here, the rest through the default provider."""
    from crmsms.crm.models import Contact
    from crmsms.sms.providers.memory import MemoryConnector

    settings.CRMSMS_SMS_ROUTES = settings.CRMSMS_SMS_URL.replace("twilio+http://", "+33=twilio+http://")
    settings.CRMSMS_SMS_URL = "memory://"
    british = Contact.objects.create(last_name="Smith", phone_mobile="+447911123456", sms_opt_in=True)
    french, english = queued(contact), queued(british)
    dispatch.dispatch_once()
    french.refresh_from_db()
    english.refresh_from_db()
    assert (french.status, french.provider) == (states.SENT, "twilio")
    assert (english.status, english.provider) == (states.SENT, "memory")
    assert [m.to for m in MemoryConnector.outbox] == ["+447911123456"]
    assert [r["To"] for r in twilio.received] == [contact.phone_mobile]


def test_bad_routes_are_named(settings):
    from django.core.exceptions import ImproperlyConfigured

    from crmsms.sms.providers import routes

    settings.CRMSMS_SMS_ROUTES = "33=memory://"
    with pytest.raises(ImproperlyConfigured, match="CRMSMS_SMS_ROUTES: '33=memory://' is not PREFIX=URL"):
        routes()
    settings.CRMSMS_SMS_ROUTES = "+33=console://;+331=memory://"
    assert [prefix for prefix, _ in routes()] == ["+331", "+33"]


@pytest.mark.django_db
def test_an_sms_to_our_twilio_number_is_received_only_when_signed(client, settings, contact):
    settings.CRMSMS_SMS_URL = f"twilio://{SID}:{TOKEN}@api.twilio.com?from=%2B15005550006"
    settings.CRMSMS_PUBLIC_URL = "https://crm.example.com"
    params = {"MessageSid": "SM9", "From": contact.phone_mobile, "To": "+15005550006", "Body": "STOP please"}
    url = "https://crm.example.com/webhooks/twilio/inbound"
    forged = RequestValidator("not-the-token").compute_signature(url, params)
    assert client.post("/webhooks/twilio/inbound", params, headers={"X-Twilio-Signature": forged}).status_code == 403
    assert not InboundSms.objects.exists()
    good = RequestValidator(TOKEN).compute_signature(url, params)
    answer = client.post("/webhooks/twilio/inbound", params, headers={"X-Twilio-Signature": good})
    assert answer.status_code == 200 and answer.content == b"<Response/>"  # TwiML that sends nothing back
    reply = InboundSms.objects.get()
    assert (reply.provider, reply.from_number, reply.keyword, reply.provider_message_id) == (
        "twilio", contact.phone_mobile, "stop", "SM9")
    contact.refresh_from_db()
    assert not contact.sms_opt_in
