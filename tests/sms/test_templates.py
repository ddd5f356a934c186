"""The SMS Templates module and using a template or variables in a message."""

import pytest

from crmsms.sms import states
from crmsms.sms.models import SmsMessage, SmsTemplate
from crmsms.sms.providers.memory import MemoryConnector

pytestmark = pytest.mark.django_db


@pytest.fixture
def template(db, user):
    return SmsTemplate.objects.create(name="Order ready", module="contacts", created_by=user,
                                      body='Hello {{ contact.first_name|default:"there" }}, your order is ready at '
                                           '{{ contact.account.name }}. {{ user.first_name }}')


def test_create_template_and_list_it(web):
    response = web.post("/templates/new/", {"name": "Welcome", "module": "accounts",
                                             "body": "Welcome {{ account.name }}!"})
    template = SmsTemplate.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/templates/{template.pk}/"
    assert template.created_by.username == "alice"
    page = web.get("/templates/", {"q": "welc"}).content.decode()
    assert "Welcome" in page and "Accounts" in page
    detail = web.get(response["Location"]).content.decode()
    assert "account.name" in detail and "Where it is used" in detail


def test_unknown_and_malformed_variables_are_refused_with_positions(web):
    response = web.post("/templates/new/", {"name": "Bad", "module": "contacts",
                                             "body": "Hi {{ contact.nickname }} {% load x %} {{ account.name }}"})
    page = response.content.decode()
    assert response.status_code == 200 and not SmsTemplate.objects.exists()
    assert "Position 4: unknown variable “contact.nickname” for Contacts." in page
    assert "Position 27: “{%” starts a template tag" in page
    assert "Position 40: unknown variable “account.name” for Contacts." in page


def test_html_in_a_template_is_stored_and_shown_escaped(web):
    web.post("/templates/new/", {"name": "<b>x</b>", "module": "contacts", "body": "<script>alert(1)</script>"})
    template = SmsTemplate.objects.get()
    assert template.body == "<script>alert(1)</script>"
    page = web.get(f"/templates/{template.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>x</b>" not in page


def test_changing_the_module_revalidates_the_body(web, template):
    response = web.post(f"/templates/{template.pk}/edit/", {"name": template.name, "module": "accounts",
                                                            "body": template.body})
    assert response.status_code == 200 and "unknown variable “contact.first_name” for Accounts" in response.content.decode()


def test_duplicate_name_is_refused(web, template):
    response = web.post("/templates/new/", {"name": "Order ready", "module": "contacts", "body": "x"})
    assert "Name: another template already has this name." in response.content.decode()


def test_message_from_a_template_renders_for_the_recipient(web, contact, template, django_capture_on_commit_callbacks):
    form = web.get(f"/contacts/{contact.pk}/sms/new/").content.decode()
    assert "Order ready" in form and "Copy the selected field" in form and "contact.first_name" in form
    with django_capture_on_commit_callbacks(execute=True):
        web.post(f"/contacts/{contact.pk}/sms/new/", {"template": template.pk, "body": template.body,
                                                      "status": "to_send"})
    message = SmsMessage.objects.get()
    expected = "Hello Camille, your order is ready at Boulangerie Martin. Alice"
    assert (message.text, message.template, message.status) == (expected, template, states.SENT)
    assert MemoryConnector.outbox[0].body == expected
    used = web.get(f"/templates/{template.pk}/").content.decode()
    assert "1 SMS" in used and "Camille Bernard" in used


def test_the_preview_is_what_is_sent(web, contact, django_capture_on_commit_callbacks):
    contact.first_name = ""
    contact.save()
    body = 'Bonjour {{ contact.first_name|default:"cher client" }}\u00a0! Votre mobile : {{ contact.phone_mobile }}'
    preview = web.post("/sms/preview/", {"module": "contacts", "record": contact.pk, "body": body}).json()
    assert preview["text"] == "Bonjour cher client ! Votre mobile : +33 6 12 34 56 78"
    assert (preview["encoding"], preview["segments"]) == ("GSM-7", 1)
    with django_capture_on_commit_callbacks(execute=True):
        web.post(f"/contacts/{contact.pk}/sms/new/", {"body": body, "status": "to_send"})
    message = SmsMessage.objects.get()
    assert MemoryConnector.outbox[0].body == preview["text"] == message.text
    assert (message.encoding, message.segments) == (preview["encoding"], preview["segments"])


def test_the_text_is_fixed_when_queued(web, contact):
    from datetime import timedelta

    from django.utils import timezone
    later = timezone.localtime(timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "Hi {{ contact.first_name }}", "status": "to_send",
                                                  "send_at": later})
    contact.first_name = "Renamed"
    contact.save()
    assert SmsMessage.objects.get().text == "Hi Camille"  # what the preview showed when it was queued


def test_preview_names_problems(web):
    result = web.post("/sms/preview/", {"module": "contacts", "body": "Hi {{ contact.nope }}"}).json()
    assert result["problems"] == [{"position": 4, "code": "unknown_variable",
                                   "message": "Position 4: unknown variable “contact.nope” for Contacts."}]
    assert web.post("/sms/preview/", {"module": "users", "body": "x"}).status_code == 400


def test_a_message_with_an_unknown_variable_is_refused(web, contact):
    response = web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "Hi {{ contact.password }}", "status": "draft"})
    assert "Message: Position 4: unknown variable “contact.password” for Contacts." in response.content.decode()
    assert not SmsMessage.objects.exists()


def test_rendered_text_over_the_limit_is_refused(web, contact):
    contact.title = "x" * 100
    contact.save()
    body = "{{ contact.title }}" * 17  # 323 characters typed, 1,700 once filled in
    response = web.post(f"/contacts/{contact.pk}/sms/new/", {"body": body, "status": "draft"})
    assert "at most 1600 characters once the variables are filled in (1700 for Camille Bernard)" in response.content.decode()


def test_deleting_a_template_keeps_its_messages(web, contact, template):
    web.post(f"/contacts/{contact.pk}/sms/new/", {"template": template.pk, "body": template.body, "status": "draft"})
    web.post(f"/templates/{template.pk}/delete/")
    message = SmsMessage.objects.get()
    assert not SmsTemplate.objects.exists() and message.template is None and message.text.startswith("Hello Camille")


def test_a_template_of_the_other_module_is_not_offered(web, contact):
    SmsTemplate.objects.create(name="For accounts", module="accounts", body="Hi {{ account.name }}")
    page = web.get(f"/contacts/{contact.pk}/sms/new/").content.decode()
    assert "For accounts" not in page


def test_today_is_the_sending_day_written_as_people_do(web, contact):
    preview = web.post("/sms/preview/", {"module": "contacts", "record": contact.pk, "body": "See you {{ today }}",
                                         "send_at": "2027-01-15T10:00"}).json()
    assert preview["text"] == "See you 15/01/2027"
    web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "See you {{ today }}", "status": "to_send",
                                                  "send_at": "2027-01-15T10:00"})
    assert SmsMessage.objects.get().text == "See you 15/01/2027"


def test_a_drafts_page_shows_its_text_as_it_would_leave_now(web, contact):
    web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "Bonjour {{ contact.first_name }}", "status": "draft"})
    contact.first_name = "Camila"
    contact.save()
    message = SmsMessage.objects.get()
    assert "Bonjour Camila" in web.get(f"/sms/{message.pk}/").content.decode()


def test_two_tabs_editing_one_template(web, template):
    page = web.get(f"/templates/{template.pk}/edit/").content.decode()
    loaded_at = page.split('name="loaded_at" value="')[1].split('"')[0]
    first = {"name": template.name, "module": "contacts", "body": "Tab A's text", "loaded_at": loaded_at}
    assert web.post(f"/templates/{template.pk}/edit/", first).status_code == 302
    late = web.post(f"/templates/{template.pk}/edit/", {**first, "name": "Renamed in tab B", "body": template.body})
    assert late.status_code == 200 and "changed since you opened it" in late.content.decode()
    template.refresh_from_db()
    assert (template.name, template.body) == ("Order ready", "Tab A's text")


def test_template_form_offers_only_the_two_modules_and_names_the_field(web):
    page = web.get("/templates/new/").content.decode()
    assert "---------" not in page
    response = web.post("/templates/new/", {"name": "X", "body": "Hi"})
    assert "Based on: choose Contacts or Accounts." in response.content.decode()


def test_names_are_unique_whatever_the_case(web, template):
    response = web.post("/templates/new/", {"name": "ORDER READY", "module": "contacts", "body": "x"})
    assert "Name: another template already has this name." in response.content.decode()


def test_preview_says_which_variables_are_empty(web, contact):
    contact.account = None
    contact.save()
    result = web.post("/sms/preview/", {"module": "contacts", "record": contact.pk,
                                        "body": 'Hi {{ contact.first_name }} from {{ contact.account.name }}'
                                                '{{ contact.title|default:"" }}'}).json()
    assert result["text"] == "Hi Camille from " and result["empty"] == ["contact.account.name", "contact.title"]


def test_duplicate_a_template(web, template):
    response = web.post(f"/templates/{template.pk}/duplicate/")
    copy = SmsTemplate.objects.get(name="Order ready (copy)")
    assert response["Location"] == f"/templates/{copy.pk}/edit/" and copy.body == template.body
    web.post(f"/templates/{template.pk}/duplicate/")
    assert SmsTemplate.objects.filter(name="Order ready (copy 2)").exists()


def test_template_list_filter_and_usage(web, template, contact):
    SmsTemplate.objects.create(name="Shop hours", module="accounts", body="Open")
    web.post(f"/contacts/{contact.pk}/sms/new/", {"template": template.pk, "body": template.body, "status": "draft"})
    web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "Not from a template", "status": "draft"})
    page = web.get("/templates/", {"module": "accounts"}).content.decode()
    assert "Shop hours" in page and "Order ready" not in page
    used = web.get("/templates/", {"sort": "-used"}).context["page"].object_list
    assert [(t.name, t.used) for t in used] == [("Order ready", 1), ("Shop hours", 0)]
    listed = web.get("/sms/", {"template": template.pk}).content.decode()
    assert "Hello Camille" in listed and "Not from a template" not in listed


def test_a_deleted_template_picked_in_an_open_form(web, contact, template):
    pk = template.pk
    template.delete()
    response = web.post(f"/contacts/{contact.pk}/sms/new/", {"template": pk, "body": "x", "status": "draft"})
    assert "Template: this template no longer exists" in response.content.decode()


def test_a_text_empty_once_filled_in_is_refused(web, contact):
    response = web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "{{ contact.title }}", "status": "to_send"})
    assert "Message: the text is empty for Camille Bernard once the variables are filled in (contact.title is empty)." \
        in response.content.decode()
    assert not SmsMessage.objects.exists()


def test_the_preview_uses_the_sending_day(web, contact):
    result = web.post("/sms/preview/", {"module": "contacts", "record": contact.pk, "body": "Le {{ today }}",
                                        "send_at": "2027-01-15T10:00"}).json()
    assert result["text"] == "Le 15/01/2027"
    web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "Le {{ today }}", "status": "to_send",
                                                  "send_at": "2027-01-15T10:00"})
    assert SmsMessage.objects.get().text == result["text"]


@pytest.mark.parametrize("record", ["²", "99999999999999999999999", "-1", "abc"])
def test_preview_with_a_strange_record_id(web, record):
    response = web.post("/sms/preview/", {"module": "contacts", "record": record, "body": "Hi"})
    assert response.status_code == 200 and response.json()["text"] is None


def test_message_list_with_a_strange_template_id(web):
    for value in ["²", "99999999999999999999999"]:
        assert web.get("/sms/", {"template": value}).status_code == 200


def test_preview_caps_the_problems_it_lists(web):
    result = web.post("/sms/preview/", {"module": "contacts", "body": "{% " * 1500}).json()
    assert len(result["problems"]) == 20


def test_duplicate_a_template_with_a_long_name(web):
    long = SmsTemplate.objects.create(name="N" * 100, module="contacts", body="x")
    web.post(f"/templates/{long.pk}/duplicate/")
    web.post(f"/templates/{long.pk}/duplicate/")
    assert SmsTemplate.objects.filter(name__startswith="N" * 85 + " (copy").count() == 2


def test_blank_template_fields_are_named(web):
    page = web.post("/templates/new/", {"name": "", "module": "contacts", "body": ""}).content.decode()
    assert "Name: enter a name." in page and "Message: the text is empty." in page


def test_a_used_template_cannot_change_module(web, contact, template):
    web.post(f"/contacts/{contact.pk}/sms/new/", {"template": template.pk, "body": template.body, "status": "draft"})
    response = web.post(f"/templates/{template.pk}/edit/", {"name": template.name, "module": "accounts",
                                                            "body": "Hi {{ account.name }}"})
    assert "Based on: drafts or campaigns use this template (1)" in response.content.decode()


def test_the_typed_limit_counts_the_text_not_the_placeholder_syntax(web, contact):
    body = "a" * 1580 + '{{ contact.account.billing_city|default:"x" }}'
    response = web.post(f"/contacts/{contact.pk}/sms/new/", {"body": body, "status": "draft"})
    assert response.status_code == 302 and len(SmsMessage.objects.get().text) == 1581


def test_send_now_sends_the_version_the_user_saw(web, contact):
    web.post(f"/contacts/{contact.pk}/sms/new/", {"body": "Hello", "status": "draft"})
    message = SmsMessage.objects.get()
    seen = message.version
    web.post(f"/sms/{message.pk}/edit/", {"body": "Other text", "status": "draft", "version": seen})  # another tab
    page = web.post(f"/sms/{message.pk}/send/", {"version": seen}, follow=True).content.decode()
    assert "changed or sent since you opened it" in page
    message.refresh_from_db()
    assert message.status == states.DRAFT
