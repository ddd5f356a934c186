"""The Vonage connector against a local server speaking Vonage's SMS API wire format
(tests/sms/fake_vonage.py): digits-only numbers, one answer entry per part, each status
mapped to what it proves, and delivery receipts per part (carrying a token only the holder
of the API secret can make) making messages Delivered."""

import time

import pytest
from django.utils import timezone

from crmsms.sms import dispatch, reports, states
from crmsms.sms.models import InboundSms, SmsMessage
from crmsms.sms.providers.base import inbound_token, report_token
from tests.sms.fake_vonage import FakeVonage

KEY, SECRET = "abcd1234", "vonage-secret"


@pytest.fixture
def vonage(settings):
    server = FakeVonage(KEY, SECRET)
    settings.CRMSMS_SMS_URL = f"vonage+http://{KEY}:{SECRET}@127.0.0.1:{server.port}?from=MyShop"
    yield server
    server.shutdown()


def queued(contact, text="Hello"):
    now = timezone.now()
    return SmsMessage.objects.create(contact=contact, body=text, text=text, status=states.TO_SEND, send_at=now,
                                     due_at=now, to_number=contact.phone_mobile)


@pytest.mark.django_db(transaction=True)
def test_a_two_part_message_is_sent_then_delivered_by_its_receipts(vonage, live_server, settings, contact):
    settings.CRMSMS_PUBLIC_URL = live_server.url
    text = "Bonjour Camille, " + "votre commande est prête. " * 8  # 2 parts, UCS-2 for the ê
    message = queued(contact, text)
    dispatch.dispatch_once()
    message.refresh_from_db()
    sent = vonage.received[0]
    assert message.status == states.SENT and message.provider == "vonage"
    assert (sent["to"], sent["from"], sent["type"], sent["client-ref"]) == (
        contact.phone_mobile.removeprefix("+"), "MyShop", "unicode", f"crmsms-{message.pk}")
    deadline = time.monotonic() + 10
    while message.status != states.DELIVERED and time.monotonic() < deadline:
        time.sleep(0.05)
        reports.apply_pending()
        message.refresh_from_db()
    assert message.status == states.DELIVERED
    while len(vonage.receipts) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert vonage.receipts == [("delivered", 200), ("delivered", 200)]  # one per part, both taken


@pytest.mark.django_db
@pytest.mark.parametrize("answers, expected", [
    ([("1", "Throughput Rate Exceeded")], (states.TO_SEND, "throttled", False)),
    ([("3", "Invalid to address")], (states.FAILED, "invalid_params", False)),
    ([("9", "Quota Exceeded - rejected")], (states.FAILED, "out_of_credit", True)),
    ([("5", "Internal Error")], (states.UNKNOWN, "vonage_5", False)),
])
def test_statuses_mean_what_they_prove(vonage, contact, answers, expected):
    vonage.statuses[contact.phone_mobile.removeprefix("+")] = answers
    message = queued(contact)
    dispatch.dispatch_once()
    message.refresh_from_db()
    assert (message.status, message.error_code, message.retryable) == expected


@pytest.mark.django_db
def test_parts_answered_differently_are_never_resent(vonage, contact):
    vonage.statuses[contact.phone_mobile.removeprefix("+")] = [("0", ""), ("1", "Throughput Rate Exceeded")]
    message = queued(contact, "x" * 200)
    dispatch.dispatch_once()
    message.refresh_from_db()
    assert (message.status, message.error_code) == (states.UNKNOWN, "partly_accepted")


@pytest.mark.django_db
def test_bad_credentials_are_a_configuration_error(settings, vonage, contact):
    settings.CRMSMS_SMS_URL = f"vonage+http://{KEY}:wrong@127.0.0.1:{vonage.port}?from=MyShop"
    message = queued(contact)
    dispatch.dispatch_once()
    message.refresh_from_db()
    assert (message.status, message.error_code, message.retryable) == (states.FAILED, "auth_failed", True)
    assert "Check the API key" in message.error_message


@pytest.mark.django_db
def test_receipts_without_the_token_are_refused(client, settings, contact):
    settings.CRMSMS_SMS_URL = f"vonage://{KEY}:{SECRET}@rest.nexmo.com?from=MyShop"
    ref = "crmsms-7"
    params = {"messageId": "0A1", "status": "delivered", "client-ref": ref}
    assert client.get("/webhooks/vonage/dlr", {**params, "token": "guessed"}).status_code == 403
    assert client.get("/webhooks/vonage/dlr", {**params, "token": report_token("other", ref)}).status_code == 403
    assert client.get("/webhooks/vonage/dlr", {**params, "token": report_token(SECRET, ref)}).status_code == 200
    assert client.post(f"/webhooks/vonage/dlr?token={report_token(SECRET, ref)}", params).status_code == 200


@pytest.mark.django_db
def test_an_sms_to_our_vonage_number_is_received_only_with_the_token(client, settings, contact):
    settings.CRMSMS_SMS_URL = f"vonage://{KEY}:{SECRET}@rest.nexmo.com?from=MyShop"
    params = {"msisdn": contact.phone_mobile.removeprefix("+"), "to": "447700900000", "messageId": "0A00001",
              "text": "Arrêt", "type": "unicode"}
    assert client.get("/webhooks/vonage/inbound", params).status_code == 403
    assert client.get("/webhooks/vonage/inbound", {**params, "token": inbound_token("other")}).status_code == 403
    assert not InboundSms.objects.exists()
    assert client.post(f"/webhooks/vonage/inbound?token={inbound_token(SECRET)}", params).status_code == 204
    reply = InboundSms.objects.get()
    assert (reply.provider, reply.from_number, reply.text, reply.keyword) == (
        "vonage", contact.phone_mobile, "Arrêt", "stop")
    contact.refresh_from_db()
    assert not contact.sms_opt_in
