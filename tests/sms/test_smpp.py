"""The SMPP connector against a local SMSC built on smpp34's server (tests/gateways/smsc.py):
texts split into parts without breaking an escape or a surrogate pair, receipts over the
session making messages Delivered, error statuses, throttling paced and retried, an unbind
mid-batch (reconnect, nothing lost, nothing sent twice), the SMSC down then back, and an
SMS someone sends us. Our PDU code is also checked against smpp34's codec."""

import collections
import time

import pytest
import smpp34
from django.utils import timezone

from crmsms.crm.models import Contact
from crmsms.sms import dispatch, reports, states
from crmsms.sms.models import DeliveryReport, InboundSms, SmsMessage
from crmsms.sms.providers import connector_at, smpp, smpp_pdu
from tests.gateways.kannel import free_port
from tests.gateways.smsc import Smsc


@pytest.fixture
def smsc(settings):
    server = Smsc(password="secret")
    settings.CRMSMS_SMS_URL = f"smpp://esme:secret@127.0.0.1:{server.port}?source=MyShop"
    yield server
    connector_at(settings.CRMSMS_SMS_URL).close()
    connector_at.cache_clear()  # a later test may get the same port: it must get a new connector
    server.stop()


def queued(contact, text="Hello"):
    now = timezone.now()
    return SmsMessage.objects.create(contact=contact, body=text, text=text, status=states.TO_SEND, send_at=now,
                                     due_at=now, to_number=contact.phone_mobile)


def wait_until(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.02)
    return check()


def texts_received(smsc) -> list[str]:
    """What phones would show: each message's parts put back together (by destination and
    concatenation reference), in the order their first part arrived."""
    messages: dict[tuple, dict[int, str]] = {}
    for index, part in enumerate(smsc.accepted):
        data = part.short_message
        key, number = (part.destination, "single", index), 1
        if part.esm_class & 0x40:
            header, data = data[:1 + data[0]], data[1 + data[0]:]
            key, number = (part.destination, header[3]), header[5]
        # Strict decoding: a part that ended inside a surrogate pair would raise here.
        text = data.decode("utf-16-be", errors="strict") if part.data_coding == 8 else _gsm(data)
        messages.setdefault(key, {})[number] = text
    return ["".join(parts[n] for n in sorted(parts)) for parts in messages.values()]


def _gsm(data: bytes) -> str:
    import smsutil

    assert not data.endswith(b"\x1b"), "a part ends in the middle of an escape sequence"
    return smsutil.decode(data)


@pytest.mark.django_db(transaction=True)
def test_parts_arrive_whole_and_receipts_make_messages_delivered(smsc, contact):
    texts = ["a" * 152 + "€" + "b" * 10,  # the € (escape + e) would straddle parts 1 and 2
             "é" * 66 + "😀" + " ça va ?",  # UCS-2: the emoji (a surrogate pair) would straddle them
             "Hello Camille, -10% [today]"]
    messages = [queued(contact, text) for text in texts]
    dispatch.dispatch_once()
    for message in messages:
        message.refresh_from_db()
        assert message.status in (states.SENT, states.DELIVERED) and message.provider == "smpp", message.error_message
    assert len(smsc.accepted) == 5  # 2 + 2 + 1 parts
    assert sorted(texts_received(smsc)) == sorted(texts)
    assert {p.source for p in smsc.accepted} == {"MyShop"}
    assert {p.destination for p in smsc.accepted} == {contact.phone_mobile.lstrip("+")}
    # A receipt per part comes back over the session; the message is Delivered by the first.
    assert wait_until(lambda: reports.apply_pending() >= 0 and all(
        SmsMessage.objects.get(pk=m.pk).status == states.DELIVERED for m in messages))
    assert wait_until(lambda: DeliveryReport.objects.filter(provider="smpp").count() == 5)
    # Until every receipt is applied: the session's own thread applies some as they come (the
    # tasks run inline here), and one it holds is skipped by a pass of this thread meanwhile.
    assert wait_until(lambda: reports.apply_pending() >= 0 and not DeliveryReport.objects.filter(
        provider="smpp", processed_at__isnull=True).exists())
    assert set(DeliveryReport.objects.values_list("outcome", flat=True)) <= {
        "-> delivered", "duplicate", "ignored: already Delivered"}  # every part's receipt found its message


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("status, expected", [
    (0x0B, (states.FAILED, "esme_rinvdstadr", False)),  # invalid destination: never resent
    (0x0A, (states.FAILED, "esme_rinvsrcadr", True)),  # our sender refused: fix it, then retry failed
    (0x08, (states.TO_SEND, "esme_rsyserr", False)),  # the SMSC's own error: it took nothing
])
def test_error_statuses_mean_what_they_prove(smsc, contact, status, expected):
    smsc.refuse[contact.phone_mobile.lstrip("+")] = status
    message = queued(contact)
    dispatch.dispatch_once()
    message.refresh_from_db()
    assert (message.status, message.error_code, message.retryable) == expected
    assert smpp_pdu.status_name(status) in message.error_message


@pytest.mark.django_db(transaction=True)
def test_throttling_is_paced_and_retried_without_sending_twice(smsc, contact):
    smsc.throttle_next = 6
    messages = [queued(contact, f"Message {n}") for n in range(12)]
    started = time.monotonic()
    dispatch.dispatch_once()
    assert time.monotonic() - started >= 0.1 + 0.2 + 0.4  # it slowed down
    assert {SmsMessage.objects.get(pk=m.pk).status for m in messages} <= {states.SENT, states.DELIVERED}
    assert sorted(texts_received(smsc)) == sorted(f"Message {n}" for n in range(12))  # each once


@pytest.mark.django_db(transaction=True)
def test_endless_throttling_gives_the_message_back_to_wait(smsc, contact, monkeypatch):
    monkeypatch.setattr(smpp, "THROTTLE_PATIENCE", 0.5)
    smsc.throttle_next = 10**6
    message = queued(contact)
    dispatch.dispatch_once()
    message.refresh_from_db()
    assert (message.status, message.error_code) == (states.TO_SEND, "throttled")
    assert "ESME_RTHROTTLED" in message.error_message and not smsc.accepted


@pytest.mark.django_db(transaction=True)
def test_an_unbind_mid_batch_loses_nothing_and_sends_nothing_twice(smsc, contact, settings):
    settings.CRMSMS_CALL_CHUNK = 50
    smsc.receipts = False
    smsc.unbind_after = 10
    messages = [queued(contact, f"Message {n}") for n in range(40)]
    dispatch.dispatch_once()
    assert wait_until(lambda: smsc.binds >= 2)  # the connector binds again by itself
    for _ in range(5):  # what was given back is sent on the next passes, over the new session
        SmsMessage.objects.filter(status=states.TO_SEND).update(due_at=timezone.now())
        dispatch.dispatch_once()
    statuses = collections.Counter(SmsMessage.objects.filter(pk__in=[m.pk for m in messages])
                                   .values_list("status", flat=True))
    received = texts_received(smsc)
    assert smsc.binds >= 2
    assert len(received) == len(set(received)), "the SMSC got a message twice"
    # Every message the SMSC took is Sent, or Unknown if its answer was lost with the
    # session (never resent); every other one was sent on a later pass.
    taken = {int(text.split()[1]) for text in received}
    for n, message in enumerate(messages):
        message.refresh_from_db()
        if n in taken:
            assert message.status in (states.SENT, states.UNKNOWN), (n, message.status)
        else:
            assert message.status == states.UNKNOWN, (n, message.status, message.error_message)
    assert statuses[states.TO_SEND] == statuses[states.SENDING] == 0
    # Only what was in flight when the SMSC unbound us is Unknown (at most a window's worth).
    assert 0 < statuses[states.UNKNOWN] <= 10 and statuses[states.SENT] >= 30


@pytest.mark.django_db(transaction=True)
def test_a_wrong_password_fails_with_a_configuration_error(smsc, settings, contact):
    settings.CRMSMS_SMS_URL = f"smpp://esme:not-it@127.0.0.1:{smsc.port}?source=MyShop"
    try:
        message = queued(contact)
        dispatch.dispatch_once()
        message.refresh_from_db()
        assert (message.status, message.error_code, message.retryable) == (states.FAILED, "auth_failed", True)
        assert "ESME_RINVPASWD" in message.error_message and "system id and password" in message.error_message
        assert not smsc.accepted
    finally:
        connector_at(settings.CRMSMS_SMS_URL).close()


@pytest.mark.django_db(transaction=True)
def test_smsc_down_is_retried_later_then_sent_once_it_is_up(settings, contact):
    port = free_port()
    settings.CRMSMS_SMS_URL = f"smpp://esme:secret@127.0.0.1:{port}?source=MyShop"
    connector = connector_at(settings.CRMSMS_SMS_URL)
    try:
        message = queued(contact)
        dispatch.dispatch_once()
        message.refresh_from_db()
        assert (message.status, message.error_code) == (states.TO_SEND, "not_bound")
        assert "Not bound to the SMSC" in message.error_message
        server = Smsc(port=port)
        try:
            server.wait_bound(timeout=10)  # the connector binds by itself (backoff from 1 s)
            SmsMessage.objects.filter(pk=message.pk).update(due_at=timezone.now())
            dispatch.dispatch_once()
            message.refresh_from_db()
            assert message.status in (states.SENT, states.DELIVERED) and message.attempts == 2
            assert len(server.accepted) == 1
        finally:
            server.stop()
    finally:
        connector.close()
        connector_at.cache_clear()


@pytest.mark.django_db(transaction=True)
def test_a_stop_sent_over_smpp_opts_the_number_out(smsc, settings, contact):
    connector_at(settings.CRMSMS_SMS_URL).start()  # as the worker does: bound while idle
    waiting = queued(contact)
    smsc.wait_bound()
    smsc.deliver(contact.phone_mobile, "STOP merci")
    assert wait_until(lambda: InboundSms.objects.exists())
    reply = InboundSms.objects.get()
    assert (reply.provider, reply.from_number, reply.text, reply.keyword) == (
        "smpp", contact.phone_mobile, "STOP merci", "stop")
    assert not Contact.objects.get(pk=contact.pk).sms_opt_in
    waiting.refresh_from_db()
    assert (waiting.status, waiting.error_code) == (states.SKIPPED, "opted_out")


def test_our_submit_sm_reads_back_in_smpp34s_codec():
    data = smpp_pdu.submit_sm(7, source="MyShop", destination="+33612345678", short_message=b"\x05\x00\x03\x01\x02\x01hi",
                              data_coding=8, esm_class=smpp_pdu.ESM_UDHI).encode()
    decoded = smpp34.decode(data)
    assert isinstance(decoded, smpp34.SubmitSm)
    assert (decoded.sequence_number, decoded.source_addr, decoded.source_addr_ton, decoded.destination_addr,
            decoded.dest_addr_ton, decoded.dest_addr_npi, decoded.esm_class, decoded.data_coding,
            decoded.registered_delivery, decoded.short_message) == (
        7, "MyShop", 5, "33612345678", 1, 1, 0x40, 8, 1, b"\x05\x00\x03\x01\x02\x01hi")


def test_receipts_read_from_smpp34s_deliver_sm_with_and_without_tlvs():
    def read(pdu_bytes):
        stream = memoryview(pdu_bytes)
        at = [0]

        def recv(size):
            chunk = bytes(stream[at[0]:at[0] + size])
            at[0] += size
            return chunk

        return smpp_pdu.read_pdu(recv)

    text = b"id:ABC123 sub:001 dlvrd:000 submit date:2611261200 done date:2611261201 stat:UNDELIV err:034 text:Hi"
    plain = read(smpp34.DeliverSm("33612345678", "MyShop", text, esm_class=4, source_addr_ton=1,
                                  source_addr_npi=1).encode())
    assert plain.command_id == smpp_pdu.DELIVER_SM and plain.fields["source"] == "+33612345678"
    receipt = smpp.parse_receipt(plain.fields)
    assert (receipt["id"], receipt["stat"], receipt["err"], receipt["error"]["code"]) == (
        "ABC123", "undeliv", "034", "smpp_undeliv")
    with_tlvs = read(smpp34.DeliverSm("33612345678", "MyShop", b"", esm_class=4, tlvs=[
        smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, b"XYZ\0"), smpp34.Tlv(smpp34.TLV_MESSAGE_STATE, b"\x02")]).encode())
    assert (smpp.parse_receipt(with_tlvs.fields)["id"], smpp.parse_receipt(with_tlvs.fields)["stat"]) == (
        "XYZ", "delivrd")


def test_what_the_smsc_delivers_is_read_whatever_it_is():
    # Latin-1 octets with data_coding 0 (some SMSCs): read, not refused forever.
    assert smpp.decode_text({"short_message": b"caf\xe9", "esm_class": 0, "data_coding": 0}) == "café"
    # A deliver_sm cut short: marked unreadable (answered ESME_RX_R_APPN), not a crash of the reader.
    whole = smpp34.DeliverSm("33612345678", "MyShop", b"STOP", source_addr_ton=1, source_addr_npi=1).encode()
    body = whole[16:20]
    truncated = smpp_pdu.HEADER.pack(16 + len(body), smpp_pdu.DELIVER_SM, 0, 9) + body
    stream = iter([truncated[:16], truncated[16:]])
    message = smpp_pdu.read_pdu(lambda size: next(stream))
    assert message.command_id == smpp_pdu.DELIVER_SM and "malformed" in message.fields


def test_urls_beyond_what_smpp_allows_are_refused_up_front():
    from urllib.parse import urlsplit

    for url, words in [("smpp://esme:ninechars@h:2775?source=S", "the password is at most 8"),
                       ("smpp://esme:pw@h:2775?source=S&window=0", "window= is the number of submits in flight"),
                       ("smpp://esme:pw@h:2775?source=Boulangerie-Martin-Paris", "?source= is at most 20")]:
        with pytest.raises(ValueError, match=words.replace("?", "\\?")):
            smpp.SmppConnector(urlsplit(url))
