"""Importing contacts and accounts from CSV: created or updated (by id, else by number), each
line checked by the UI's form first (one bad line: nothing imported, every bad line named),
opt-ins recorded in the consent ledger with source "Import", the file, the line and where the
consent came from; a number that replied STOP is never opted in again by a file."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from crmsms.crm.models import Account, ConsentChange, Contact, OptOut

pytestmark = pytest.mark.django_db


def upload(web, module, text, reason="", name="people.csv", encoding="utf-8"):
    return web.post(f"/{module}/import/", {"file": SimpleUploadedFile(name, text.encode(encoding), "text/csv"),
                                           "consent_reason": reason})


def test_contacts_are_created_and_updated_with_their_consent_recorded(web, user):
    account = Account.objects.create(name="Boulangerie Martin")
    known = Contact.objects.create(last_name="Bernard", first_name="Camille", phone_mobile="+33612345678")
    text = ("Last name;First name;Mobile;email;account;SMS opt in\n"
            "Petit;Lucas;06 98 76 54 32;lucas@example.com;boulangerie martin;oui\n"
            "Bernard;Camille;+33 6 12 34 56 78;camille@example.com;;yes\n"  # same number: updates Camille
            "Durand;Zoé;0611223344;;;non\n")
    answer = upload(web, "contacts", text, reason="Loyalty card form, 2026")
    assert answer.status_code == 200
    page = answer.content.decode()
    assert "2 created, 1 updated, 0 unchanged" in page
    lucas = Contact.objects.get(last_name="Petit")
    assert (lucas.phone_mobile, lucas.account, lucas.sms_opt_in) == ("+33698765432", account, True)
    known.refresh_from_db()
    assert (known.email, known.sms_opt_in) == ("camille@example.com", True)
    assert Contact.objects.count() == 3 and not Contact.objects.get(last_name="Durand").sms_opt_in
    change = lucas.consent.get()
    assert (change.opt_in, change.source, change.actor, change.reason) == (
        True, ConsentChange.IMPORT, "alice", "Loyalty card form, 2026 (people.csv, line 2)")
    assert known.consent.get().reason == "Loyalty card form, 2026 (people.csv, line 3)"
    # The same file again changes nothing.
    assert "0 created, 0 updated, 3 unchanged" in upload(web, "contacts", text, reason="again").content.decode()
    assert ConsentChange.objects.count() == 2


def test_one_bad_line_and_nothing_is_imported_every_bad_line_named(web):
    text = ("last_name,phone_mobile,sms_opt_in,email\n"
            "Petit,0698765432,1,lucas@example.com\n"
            ",0611111111,0,\n"  # no last name
            "Durand,01 23 45 67 89,0,\n"  # a landline as Mobile
            "Roux,0622222222,maybe,\n"
            "Faure,0633333333,0,not-an-email\n")
    answer = upload(web, "contacts", text, reason="Form")
    assert answer.status_code == 400
    page = answer.content.decode()
    assert "Nothing was imported" in page
    assert "Line 3: Last name" in page and "Line 4: Mobile" in page and "landline" in page
    assert "Line 5: SMS opt in: &#x27;maybe&#x27; is not yes or no" in page and "Line 6: Email" in page
    assert not Contact.objects.exists() and not ConsentChange.objects.exists()


def test_ticking_opt_in_needs_to_say_where_the_consent_came_from(web):
    answer = upload(web, "contacts", "last_name,phone_mobile,sms_opt_in\nPetit,0698765432,yes\n")
    assert answer.status_code == 400
    assert "Where these people gave their consent: required" in answer.content.decode()
    assert not Contact.objects.exists()
    # Without opt-ins, no reason is needed.
    assert upload(web, "contacts", "last_name,phone_mobile\nPetit,0698765432\n").status_code == 200


def test_a_number_that_replied_stop_is_imported_without_opt_in(web):
    OptOut.objects.create(number="+33698765432", source=ConsentChange.INBOUND_STOP)
    answer = upload(web, "contacts", "last_name,phone_mobile,sms_opt_in\nPetit,06 98 76 54 32,yes\n", reason="Form")
    page = answer.content.decode()
    assert answer.status_code == 200 and "replied STOP earlier" in page and "Line 2: +33698765432" in page
    assert not Contact.objects.get().sms_opt_in and OptOut.objects.exists()


def test_accounts_by_id_unknown_columns_and_latin1_files(web):
    account = Account.objects.create(name="Old name", phone_office="+33145454545")
    answer = upload(web, "accounts", f"id;name;billing_city\n{account.pk};Café Zoé;Orléans\n", encoding="latin-1")
    assert answer.status_code == 200
    account.refresh_from_db()
    assert (account.name, account.billing_city) == ("Café Zoé", "Orléans")
    answer = upload(web, "accounts", "name,fax\nX,1\n")
    assert answer.status_code == 400 and "unknown column(s) &#x27;fax&#x27;" in answer.content.decode()
    answer = upload(web, "accounts", "id,name\n99999,X\n")
    assert "Line 2: id: no account with id 99999" in answer.content.decode()


def test_the_import_page_needs_a_login(client):
    assert client.get("/contacts/import/").status_code == 302


def test_an_excel_file_for_windows_keeps_its_characters_and_lines(web):
    """Windows-1252 (’ œ … in 0x80-0x9F: 0x85 is a line end to str.splitlines), French headers."""
    text = ("Nom;Prénom;Titre;Portable;Accepte les SMS\r\n"
            "L’Huillier;Jérôme;Directeur … commercial;06 10 20 30 40;oui\r\n"
            "Cœur;Zoé;;06 10 20 30 41;non\r\n")
    answer = upload(web, "contacts", text, reason="Salon 2026", encoding="cp1252")
    assert answer.status_code == 200 and "2 created" in answer.content.decode()
    jerome = Contact.objects.get(first_name="Jérôme")
    assert (jerome.last_name, jerome.title, jerome.phone_mobile, jerome.sms_opt_in) == (
        "L’Huillier", "Directeur … commercial", "+33610203040", True)
    assert jerome.consent.get().reason == "Salon 2026 (people.csv, line 2)"
    assert Contact.objects.get(first_name="Zoé").last_name == "Cœur"


def test_the_same_number_twice_in_a_file_is_refused(web):
    answer = upload(web, "contacts", "last_name,phone_mobile\nA,06 77 88 99 00\nB,+33677889900\n")
    assert answer.status_code == 400
    assert "Line 3: +33677889900 is also on line 2" in answer.content.decode() and not Contact.objects.exists()


def test_an_empty_opt_in_cell_leaves_the_opt_in_as_it_is(web):
    camille = Contact.objects.create(last_name="Bernard", phone_mobile="+33612345678", sms_opt_in=True)
    answer = upload(web, "contacts", "last_name,phone_mobile,email,sms_opt_in\nBernard,0612345678,c@example.com,\n")
    assert answer.status_code == 200 and "1 updated" in answer.content.decode()
    camille.refresh_from_db()
    assert camille.sms_opt_in and camille.email == "c@example.com"
    assert not camille.consent.filter(source=ConsentChange.IMPORT).exists()


def test_opting_in_existing_records_also_needs_the_consent_reason(web):
    camille = Contact.objects.create(last_name="Bernard", phone_mobile="+33612345678", sms_opt_in=False)
    answer = upload(web, "contacts", f"id,sms_opt_in\n{camille.pk},yes\n")
    assert answer.status_code == 400 and "Where these people gave their consent: required" in answer.content.decode()
    camille.refresh_from_db()
    assert not camille.sms_opt_in
