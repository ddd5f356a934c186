"""The Kannel connector against a real Kannel (Debian's bearerbox and smsbox, with Kannel's
fakesmsc as the operator): messages accepted and delivered by Kannel's own reports,
Kannel down then back, a wrong password, SMS people send through it, and forged reports."""

import time

import pytest
from django.utils import timezone

from crmsms.crm.models import Contact
from crmsms.sms import dispatch, reports, states
from crmsms.sms.models import DeliveryReport, InboundSms, SmsMessage
from crmsms.sms.providers.base import inbound_token, report_token
from tests.gateways.kannel import PASSWORD, KannelGateway


@pytest.fixture(scope="module")
def gateway(live_server, tmp_path_factory):
    inbound = (f"{live_server.url}/webhooks/kannel/inbound?token={inbound_token(PASSWORD)}"
               "&from=%p&to=%P&text=%a&coding=%c&charset=%C&id=%I")
    kannel = KannelGateway(tmp_path_factory.mktemp("kannel"), inbound_url=inbound).start()
    yield kannel
    kannel.stop()


@pytest.fixture
def kannel(gateway, live_server, settings):
    settings.CRMSMS_PUBLIC_URL = live_server.url
    settings.CRMSMS_SMS_URL = gateway.url()
    return gateway


def queued(contact, text="Hello"):
    now = timezone.now()
    return SmsMessage.objects.create(contact=contact, body=text, text=text, status=states.TO_SEND, send_at=now,
                                     due_at=now, to_number=contact.phone_mobile)


def sent_through_kannel(settings, contact) -> tuple[SmsMessage, str]:
    """A message Kannel took (its password s3cret), and our reference for its reports."""
    settings.CRMSMS_SMS_URL = "kannel://crm:s3cret@127.0.0.1:13013"
    message = SmsMessage.objects.create(contact=contact, body="Hi", text="Hi", status=states.SENT,
                                        to_number=contact.phone_mobile, provider="kannel")
    return message, f"crmsms-{message.pk}"


def wait_for_reports(messages, status, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reports.apply_pending()
        if all(SmsMessage.objects.get(pk=m.pk).status == status for m in messages):
            return
        time.sleep(0.1)
    got = [SmsMessage.objects.get(pk=m.pk).status for m in messages]
    raise AssertionError(f"expected every message {status}, got {got}")


@pytest.mark.django_db(transaction=True)
def test_messages_reach_the_operator_and_become_delivered(kannel, contact):
    texts = ["Hello Camille, 10€ off [today]", "Prête à partir ✓ 😀", "x" * 200]  # GSM with escapes, UCS-2, 2 parts
    messages = [queued(contact, text) for text in texts]
    dispatch.dispatch_once()
    for message in messages:
        message.refresh_from_db()
        # Kannel's reports may already have come back and been applied (the webhook wakes the worker).
        assert message.status in (states.SENT, states.DELIVERED) and message.provider == "kannel", message.error_message
    deadline = time.monotonic() + 10
    while len(kannel.received()) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    got = kannel.received()
    assert {(sender, to) for sender, to, _, _ in got} == {("MyShop", contact.phone_mobile)}  # the + kept
    assert ("MyShop", contact.phone_mobile, "text", texts[0]) in got  # the € and brackets intact
    assert [kind for *_, kind, _ in got].count("ucs-2") == 1 and [kind for *_, kind, _ in got].count("udh") == 2
    wait_for_reports(messages, states.DELIVERED)
    # Kannel posts its two reports (8 = the SMSC took it, then 1 = delivered) over separate
    # calls, so "delivered" may be applied before "smsc_accepted" has even arrived.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not DeliveryReport.objects.filter(
            message=messages[0], status="smsc_accepted", processed_at__isnull=False).exists():
        reports.apply_pending()
        time.sleep(0.1)
    history = list(messages[0].events.values_list("detail", flat=True))
    assert any("smsc_accepted" in line for line in history) and any("delivered" in line for line in history)


@pytest.mark.django_db(transaction=True)
def test_kannel_down_is_retried_later_then_sent_when_it_is_back(kannel, contact):
    kannel.stop_process("smsbox")
    try:
        message = queued(contact)
        dispatch.dispatch_once()
        message.refresh_from_db()
        assert (message.status, message.error_code, message.attempts) == (states.TO_SEND, "connection_refused", 1)
        assert "Is Kannel's smsbox running" in message.error_message
    finally:
        kannel.start_smsbox()
    SmsMessage.objects.filter(pk=message.pk).update(due_at=timezone.now())  # skip the back-off wait
    dispatch.dispatch_once()
    message.refresh_from_db()
    assert message.status in (states.SENT, states.DELIVERED) and message.attempts == 2
    wait_for_reports([message], states.DELIVERED)


@pytest.mark.django_db(transaction=True)
def test_a_wrong_password_fails_with_a_configuration_error(kannel, settings, contact):
    settings.CRMSMS_SMS_URL = kannel.url(password="not-the-password")
    message = queued(contact)
    dispatch.dispatch_once()
    message.refresh_from_db()
    assert (message.status, message.error_code, message.retryable) == (states.FAILED, "auth_failed", True)
    assert "Authorization failed for sendsms" in message.error_message
    assert "not a sendsms-user of Kannel's configuration" in message.error_message


@pytest.mark.django_db(transaction=True)
def test_a_stop_sent_through_kannel_opts_the_number_out(kannel, contact):
    waiting = queued(contact)
    kannel.stop_process("fakesmsc")
    kannel.start_fakesmsc(inject=(f"{contact.phone_mobile} 12345 text Arrêt svp",))
    deadline = time.monotonic() + 15
    while not InboundSms.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    reply = InboundSms.objects.get()
    assert (reply.provider, reply.from_number, reply.text, reply.keyword) == (
        "kannel", contact.phone_mobile, "Arrêt svp", "stop")
    time.sleep(1.5)  # Kannel retries a call it thinks failed after 1 s (http-queue-delay): none came
    assert InboundSms.objects.count() == 1
    assert not Contact.objects.get(pk=contact.pk).sms_opt_in
    waiting.refresh_from_db()
    assert (waiting.status, waiting.error_code) == (states.SKIPPED, "opted_out")


@pytest.mark.django_db
def test_reports_and_inbound_sms_without_the_token_are_refused(client, settings, contact):
    message, ref = sent_through_kannel(settings, contact)
    report = {"ref": ref, "status": "1", "at": "1795673953", "smsc_id": "abc", "reply": ""}
    assert client.get("/webhooks/kannel/dlr", report).status_code == 403  # no token
    assert client.get("/webhooks/kannel/dlr", {**report, "token": report_token("other", ref)}).status_code == 403
    # A token is for one message: it cannot be replayed for another.
    other = {**report, "ref": "crmsms-999999", "token": report_token("s3cret", ref)}
    assert client.get("/webhooks/kannel/dlr", other).status_code == 403
    answer = client.get("/webhooks/kannel/dlr", {**report, "status": "7", "token": report_token("s3cret", ref)})
    assert answer.status_code == 400 and "DLR types" in answer.json()["error"]
    assert client.get("/webhooks/kannel/dlr", {**report, "token": report_token("s3cret", ref)}).status_code == 200
    reports.apply_pending()
    message.refresh_from_db()
    assert message.status == states.DELIVERED
    inbound = {"from": contact.phone_mobile, "to": "12345", "text": "STOP"}
    assert client.get("/webhooks/kannel/inbound", {**inbound, "token": report_token("s3cret", ref)}).status_code == 403
    assert not InboundSms.objects.exists() and Contact.objects.get(pk=contact.pk).sms_opt_in
    assert client.get("/webhooks/kannel/inbound", {**inbound, "token": inbound_token("s3cret")}).status_code == 200
    assert not Contact.objects.get(pk=contact.pk).sms_opt_in


@pytest.mark.django_db
def test_an_smsc_rejection_makes_the_message_undelivered_with_the_smsc_answer(client, settings, contact):
    message, ref = sent_through_kannel(settings, contact)
    answer = client.get("/webhooks/kannel/dlr", {"ref": ref, "token": report_token("s3cret", ref), "status": "16",
                                                 "reply": "NACK/0x0000000b/Invalid Destination Address"})
    assert answer.status_code == 200
    reports.apply_pending()
    message.refresh_from_db()
    assert (message.status, message.error_code) == (states.UNDELIVERED, "kannel_16")
    assert "Invalid Destination Address" in message.error_message


@pytest.mark.django_db
def test_the_inbound_url_printed_for_kannel_is_accepted(client, settings, contact):
    import io
    import re

    from django.core.management import call_command

    settings.CRMSMS_SMS_URL = "kannel://crm:s3cret@127.0.0.1:13013?from=MyShop"
    settings.CRMSMS_PUBLIC_URL = "https://crm.example.com"
    out = io.StringIO()
    call_command("webhooks", stdout=out)
    get_url = re.search(r'get-url = "https://crm.example.com(\S+)"', out.getvalue()).group(1)
    # Kannel fills in the escapes (here as it would for a reply from the contact).
    path = get_url.replace("%p", contact.phone_mobile.replace("+", "%2B")).replace("%P", "12345") \
        .replace("%a", "STOP").replace("%I", "kannel-id-1")
    assert client.get(path).status_code == 200
    assert InboundSms.objects.get().keyword == "stop" and not Contact.objects.get(pk=contact.pk).sms_opt_in


@pytest.mark.django_db(transaction=True)
def test_a_flood_of_reports_from_kannel_loses_none(kannel, contact, settings):
    """Kannel gives up on a receiver that is slow or refuses connections (see the notes):
    400 messages sent at once, 800 reports back, every one stored and every message Delivered."""
    settings.CRMSMS_CALL_CHUNK = 50
    now = timezone.now()
    SmsMessage.objects.bulk_create(
        SmsMessage(contact=contact, body=f"Flood {n}", text=f"Flood {n}", status=states.TO_SEND, send_at=now,
                   due_at=now, to_number=contact.phone_mobile) for n in range(400))
    while SmsMessage.objects.filter(status=states.TO_SEND).exists():
        assert dispatch.dispatch_once() > 0
    from collections import Counter
    assert SmsMessage.objects.filter(provider="kannel").count() == 400, Counter(SmsMessage.objects.values_list("status", "error_message"))
    deadline = time.monotonic() + 60
    while DeliveryReport.objects.count() < 800 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert DeliveryReport.objects.count() == 800  # accepted by the SMSC, then delivered, for each
    wait_for_reports(SmsMessage.objects.all(), states.DELIVERED)  # the worker's passes, as it would


@pytest.mark.django_db
def test_a_ucs2_reply_passed_on_as_raw_octets_is_read(client, settings, contact):
    """Without mo-recode, Kannel's %a of a UCS-2 SMS is its UTF-16 octets (coding %c = 2)."""
    settings.CRMSMS_SMS_URL = "kannel://crm:s3cret@127.0.0.1:13013"
    octets = "%00A%00r%00r%00%EA%00t%00+%D8%3D%DE%00"  # "Arrêt 😀" in UTF-16BE, URL-encoded by Kannel
    path = (f"/webhooks/kannel/inbound?token={inbound_token('s3cret')}&from=%2B33612345678&to=12345"
            f"&text={octets}&coding=2&charset=UTF-16BE&id=k-ucs2")
    assert client.get(path).status_code == 200
    reply = InboundSms.objects.get()
    assert (reply.text, reply.keyword) == ("Arrêt 😀", "stop")
    assert not Contact.objects.get(pk=contact.pk).sms_opt_in


@pytest.mark.django_db
def test_kannel_may_post_the_inbound_sms_and_nothing_else(settings, contact):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)  # as a provider calls: no CSRF cookie or token
    settings.CRMSMS_SMS_URL = "kannel://crm:s3cret@127.0.0.1:13013"
    path = f"/webhooks/kannel/inbound?token={inbound_token('s3cret')}"
    form = {"from": contact.phone_mobile, "to": "12345", "text": "Bonjour", "id": "k-post"}
    assert client.post(path, form).status_code == 200  # no CSRF token: a provider's call
    assert client.put(path, form).status_code == 405
    assert InboundSms.objects.get().text == "Bonjour"
