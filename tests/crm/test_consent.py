"""The consent ledger and STOP: every opt-in change recorded with its source and actor; a
reply STOP (any configured word, any case, accents or not) opts the number out of every
record that has it at once and skips its queued SMS; the opt-in cannot be ticked again for
it without a reason; START re-subscribes only if configured; nothing is ever sent to an
opted-out number, by a message or a campaign."""

import json

import pytest
from django.utils import timezone

from crmsms.crm.models import Account, ConsentChange, Contact, OptOut
from crmsms.sms import campaigns, dispatch, generation, inbound, states
from crmsms.sms.models import InboundSms, SmsCampaign, SmsMessage, SmsTemplate
from crmsms.sms.providers.memory import MemoryConnector
from crmsms.sms.simulator import sign

pytestmark = pytest.mark.django_db
NUMBER = "+33612345678"


@pytest.fixture
def two_records(db):
    # One person, known as a contact and as the phone of their own business.
    return (Contact.objects.create(first_name="Jeanne", last_name="Martin", phone_mobile=NUMBER, sms_opt_in=True),
            Account.objects.create(name="Boulangerie Martin", phone_office=NUMBER, sms_opt_in=True))


def queued(record):
    now = timezone.now()
    return SmsMessage.objects.create(**{record.module[:-1]: record}, body="Promo", text="Promo",
                                     status=states.TO_SEND, send_at=now, due_at=now, to_number=NUMBER)


def test_every_change_is_in_the_ledger_with_its_source(web, api, user):
    created = web.post("/contacts/new/", {"last_name": "Petit", "phone_mobile": "0698765432", "sms_opt_in": "on"})
    contact = Contact.objects.get(last_name="Petit")
    assert created.status_code == 302
    api.patch(f"/api/v1/contacts/{contact.pk}", {"sms_opt_in": False})
    ledger = [(c.opt_in, c.source, c.actor) for c in contact.consent.order_by("at", "id")]
    assert ledger == [(True, "ui", "alice"), (False, "api", "alice")]
    page = web.get(f"/contacts/{contact.pk}/").content.decode()
    assert "SMS consent and replies" in page and "REST API" in page and "Web UI" in page


@pytest.mark.parametrize("reply", ["STOP", "stop please", "Arrêt", "ARRET!", "désabonner", "  Unsubscribe  "])
def test_stop_opts_the_number_out_everywhere_and_skips_its_queued_sms(two_records, reply):
    contact, account = two_records
    waiting = [queued(contact), queued(account)]
    inbound.receive("simulator", from_number=NUMBER, text=reply)
    contact.refresh_from_db()
    account.refresh_from_db()
    assert not contact.sms_opt_in and not account.sms_opt_in
    assert OptOut.objects.filter(number=NUMBER).exists()
    for message in waiting:
        message.refresh_from_db()
        assert (message.status, message.error_code) == (states.SKIPPED, "opted_out")
    change = contact.consent.order_by("-at", "-id").first()  # after the opt-in it was created with
    assert (change.opt_in, change.source, change.actor) == (False, ConsentChange.INBOUND_STOP, "simulator")
    assert InboundSms.objects.get().keyword == "stop"


def test_a_reply_that_is_not_a_keyword_is_only_kept(two_records):
    contact, _ = two_records
    inbound.receive("simulator", from_number="06 12 34 56 78", text="Can I stop by tomorrow?")
    contact.refresh_from_db()
    assert contact.sms_opt_in and not OptOut.objects.exists()
    assert InboundSms.objects.get().from_number == NUMBER  # read as a French number, stored E.164


def test_opt_in_cannot_be_ticked_again_without_a_reason(web, api, two_records):
    contact, _ = two_records
    inbound.receive("simulator", from_number=NUMBER, text="STOP")
    data = {"first_name": "Jeanne", "last_name": "Martin", "phone_mobile": NUMBER, "sms_opt_in": "on"}
    refused = web.post(f"/contacts/{contact.pk}/edit/", data)
    assert refused.status_code == 200
    assert "asked for no more SMS" in refused.content.decode()
    contact.refresh_from_db()
    assert not contact.sms_opt_in
    # A new record with that number is refused too, through the API as well.
    other = api.post("/api/v1/contacts", {"last_name": "Other", "phone_mobile": NUMBER, "sms_opt_in": True})
    assert other.status_code == 422 and other.json()["errors"][0]["rule"] == "opted_out"
    # With the person's new consent, said.
    web.post(f"/contacts/{contact.pk}/edit/", {**data, "consent_reason": "Asked in the shop on 2026-11-26"})
    contact.refresh_from_db()
    assert contact.sms_opt_in and not OptOut.objects.exists()
    latest = contact.consent.order_by("-at", "-id").first()
    assert (latest.opt_in, latest.source, latest.reason) == (True, "ui", "Asked in the shop on 2026-11-26")


def test_start_resubscribes_only_when_configured(two_records, settings):
    contact, account = two_records
    Contact.objects.filter(pk=contact.pk).update(sms_opt_in=True)
    inbound.receive("simulator", from_number=NUMBER, text="STOP")
    settings.CRMSMS_START_RESUBSCRIBES = False
    inbound.receive("simulator", from_number=NUMBER, text="START")
    assert not Contact.objects.get(pk=contact.pk).sms_opt_in and OptOut.objects.exists()
    settings.CRMSMS_START_RESUBSCRIBES = True
    inbound.receive("simulator", from_number=NUMBER, text="start")
    assert Contact.objects.get(pk=contact.pk).sms_opt_in and Account.objects.get(pk=account.pk).sms_opt_in
    assert not OptOut.objects.exists()
    assert contact.consent.order_by("-at", "-id").first().source == ConsentChange.INBOUND_START


def test_nothing_is_sent_to_an_opted_out_number(two_records, user):
    contact, account = two_records
    OptOut.objects.create(number=NUMBER, source=ConsentChange.INBOUND_STOP)
    # Even if an opt-in is still ticked somewhere (a database edited by hand): the worker...
    message = queued(contact)
    dispatch.dispatch_once()
    message.refresh_from_db()
    assert (message.status, message.error_code) == (states.SKIPPED, "opted_out")
    # ...and a campaign's generation say no.
    template = SmsTemplate.objects.create(name="T", module="accounts", body="Hello {{ account.name }}")
    campaign = SmsCampaign.objects.create(name="C", module="accounts", template=template, send_at=timezone.now(),
                                          respect_hours=False)
    campaigns.add_recipients(campaign, [account.pk])
    assert dict(generation.forecast(campaign).skipped) == {"opted_out": 1}
    campaigns.start_generation(campaign)
    generation.generate(campaign.pk)
    assert campaign.messages.get().error_code == "opted_out"
    assert MemoryConnector.outbox == []


def test_the_simulator_inbound_webhook(client, two_records, settings):
    settings.CRMSMS_SMS_URL = "simulator://tok@127.0.0.1:9"
    body = json.dumps({"id": "MO1", "from": NUMBER, "to": "+33700000000", "text": "STOP",
                       "at": timezone.now().isoformat()}).encode()
    forged = client.post("/webhooks/simulator/inbound/", body, content_type="application/json",
                         headers={"X-Simulator-Signature": sign("guess", body)})
    assert forged.status_code == 403 and not InboundSms.objects.exists()
    ok = client.post("/webhooks/simulator/inbound/", body, content_type="application/json",
                     headers={"X-Simulator-Signature": sign("tok", body)})
    assert ok.status_code == 200
    assert OptOut.objects.filter(number=NUMBER).exists()


def test_help_is_answered_at_once_even_after_stop_and_once_an_hour(two_records, web, settings):
    contact, _ = two_records
    settings.CRMSMS_HELP_REPLY = "Boulangerie Martin: reply STOP to receive no more SMS."
    inbound.receive("simulator", from_number=NUMBER, text="STOP")
    inbound.receive("simulator", from_number=NUMBER, text="help")  # answered, though opted out
    inbound.receive("simulator", from_number=NUMBER, text="Aide !")  # within the hour: not again
    dispatch.dispatch_once()
    assert [(sms.to, sms.body) for sms in MemoryConnector.outbox] == [
        (NUMBER, "Boulangerie Martin: reply STOP to receive no more SMS.")]
    answer = SmsMessage.objects.get()
    assert answer.status == states.SENT and answer.reply_to.text == "help" and answer.contact == contact
    page = web.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Answered automatically:" in page and "reply STOP to receive no more SMS." in page
    assert web.get(f"/sms/{answer.pk}/").status_code == 200
    assert f"/sms/{answer.pk}/" in web.get(f"/contacts/{contact.pk}/").content.decode()  # in its SMS panel too


def test_help_from_a_number_not_in_the_crm_is_answered_too(db):
    inbound.receive("simulator", from_number="+33699887766", text="HELP")
    dispatch.dispatch_once()
    answer = SmsMessage.objects.get()
    assert (answer.to_number, answer.status, answer.record) == ("+33699887766", states.SENT, None)


def test_no_help_answer_when_none_is_configured(two_records, settings):
    settings.CRMSMS_HELP_REPLY = ""
    assert inbound.receive("simulator", from_number=NUMBER, text="HELP").keyword == "help"
    assert not SmsMessage.objects.exists()


def test_the_same_sms_received_twice_is_kept_once(two_records):
    first = inbound.receive("kannel", from_number=NUMBER, text="Bonjour", provider_message_id="k-1")
    again = inbound.receive("kannel", from_number=NUMBER, text="Bonjour", provider_message_id="k-1")
    assert first.pk == again.pk and InboundSms.objects.count() == 1


def test_a_nul_character_from_a_provider_does_not_cost_the_sms(two_records):
    """PostgreSQL refuses NUL in text and JSON: it is replaced, the SMS is kept."""
    received = inbound.receive("kannel", from_number=NUMBER, text="STOP\x00", payload={"raw": "a\x00b"})
    received.refresh_from_db()
    assert (received.text, received.payload, received.keyword) == ("STOP\ufffd", {"raw": "a\ufffdb"}, "stop")
