"""Contacts and accounts in the web UI: list (search, sort, pages), detail, create, edit, delete."""

import pytest

from crmsms.crm.models import Account, Contact
from crmsms.sms import states
from crmsms.sms.models import SmsMessage

pytestmark = pytest.mark.django_db


def test_create_contact_normalises_the_mobile(web, account):
    response = web.post("/contacts/new/", {
        "first_name": "Lucas", "last_name": "Petit", "phone_mobile": "06 98 76 54 32",
        "sms_opt_in": "on", "account": account.pk, "email": "",
    })
    contact = Contact.objects.get(last_name="Petit")
    assert response.status_code == 302 and response["Location"] == f"/contacts/{contact.pk}/"
    assert contact.phone_mobile == "+33698765432" and contact.sms_opt_in and contact.account == account
    page = web.get(response["Location"]).content.decode()
    assert "+33 6 98 76 54 32" in page and "SMS Messages" in page


@pytest.mark.parametrize("typed, expected", [
    ("+999", "is not a phone number"),
    ("+33 6 12", "is not a valid phone number"),
    ("abc", "is not a phone number"),
    ("01 42 68 53 00", "is a landline, which cannot receive SMS"),
])
def test_bad_mobile_is_refused_with_the_field_named(web, typed, expected):
    response = web.post("/contacts/new/", {"last_name": "Petit", "phone_mobile": typed})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Mobile: " in page and expected in page
    assert not Contact.objects.exists()


def test_empty_mobile_is_allowed_and_empty_last_name_is_not(web):
    response = web.post("/contacts/new/", {"last_name": "  ", "phone_mobile": ""})
    assert response.status_code == 200 and "last name" in response.content.decode().lower()
    assert not Contact.objects.exists()


def test_account_accepts_a_landline_office_phone(web):
    response = web.post("/accounts/new/", {"name": "Garage Dupont", "phone_office": "01 42 68 53 00"})
    assert response.status_code == 302
    assert Account.objects.get().phone_office == "+33142685300"


def test_edit_account(web, account):
    response = web.post(f"/accounts/{account.pk}/edit/", {"name": "Boulangerie Martin & fils",
                                                           "phone_office": "+33611223344", "billing_city": "Lyon"})
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.name == "Boulangerie Martin & fils" and account.billing_city == "Lyon"
    assert not account.sms_opt_in  # an unticked checkbox is a "no"


def test_pasted_number_with_trunk_prefix_is_read_whole(web):
    response = web.post("/contacts/new/", {"last_name": "Petit", "phone_mobile": "+33 (0) 6 12 34 56 78"})
    assert response.status_code == 302
    assert Contact.objects.get().phone_mobile == "+33612345678"


def test_search_by_full_name_and_by_number_however_typed(web):
    Contact.objects.create(first_name="Lucas", last_name="Petit", phone_mobile="+33698765432")
    Contact.objects.create(first_name="Lucas", last_name="Grand", phone_mobile="+33611111111")
    for q in ["Lucas Petit", "petit", "0698765432", "06 98 76 54 32", "+33 6 98 76 54 32", "+33698765432", "98765432"]:
        page = web.get("/contacts/", {"q": q}).content.decode()
        assert "Petit" in page and "Grand" not in page, q


def test_unticking_opt_in_warns_about_waiting_messages(web, contact):
    SmsMessage.objects.create(contact=contact, body="later", status=states.TO_SEND)
    response = web.post(f"/contacts/{contact.pk}/edit/", {"last_name": "Bernard", "phone_mobile": "+33612345678"},
                        follow=True)
    assert "1 SMS waiting to be sent will be skipped" in response.content.decode()


def test_list_search_sort_and_pages(web):
    Contact.objects.bulk_create(Contact(first_name=f"P{i:02}", last_name=f"Name{i:02}") for i in range(30))
    Contact.objects.create(first_name="Zoé", last_name="Zidane", email="zoe@example.com")
    page = web.get("/contacts/", {"q": "zoe@"}).content.decode()
    assert "Zidane" in page and "Name01" not in page
    first = web.get("/contacts/", {"sort": "name"}).content.decode()
    assert "Name00" in first and "Zidane" not in first and "Page 1 of 2" in first
    descending = web.get("/contacts/", {"sort": "-name"}).content.decode()
    assert "Zidane" in descending and "Name00" not in descending
    second = web.get("/contacts/", {"sort": "name", "page": 2}).content.decode()
    assert "Zidane" in second
    assert web.get("/contacts/", {"sort": "password"}).status_code == 200  # unknown sort: default


def test_delete_contact_keeps_its_messages_and_skips_unsent_ones(web, contact):
    sent = SmsMessage.objects.create(contact=contact, body="old", status=states.SENT, recipient_name=str(contact))
    waiting = SmsMessage.objects.create(contact=contact, body="later", status=states.TO_SEND, recipient_name=str(contact))
    page = web.get(f"/contacts/{contact.pk}/delete/").content.decode()
    assert "1 SMS not sent yet will be marked" in page
    response = web.post(f"/contacts/{contact.pk}/delete/")
    assert response.status_code == 302 and not Contact.objects.exists()
    sent.refresh_from_db(), waiting.refresh_from_db()
    assert sent.status == states.SENT and sent.recipient_name == "Camille Bernard"
    assert waiting.status == states.SKIPPED and waiting.error_code == "record_deleted"
    assert waiting.events.filter(kind="skipped").exists()


def test_deleting_a_record_leaves_a_message_being_sent_to_the_worker(web, contact):
    sending = SmsMessage.objects.create(contact=contact, body="in flight", status=states.SENDING)
    web.post(f"/contacts/{contact.pk}/delete/")
    sending.refresh_from_db()
    assert sending.status == states.SENDING  # the worker records what the provider answered


def test_search_with_a_nul_character_is_not_an_error(web, contact):
    for path in ("/contacts/", "/accounts/", "/sms/"):
        assert web.get(path, {"q": "Ber\x00nard"}).status_code == 200


@pytest.mark.parametrize("path", ["/contacts/", "/accounts/", "/sms/", "/templates/", "/campaigns/"])
def test_list_pages_render_their_search_box(web, path):
    page = web.get(path).content.decode()
    assert 'role="search"' in page and "{{" not in page and "{%" not in page
    if path == "/contacts/":
        assert 'placeholder="Search contacts: name, number…"' in page
