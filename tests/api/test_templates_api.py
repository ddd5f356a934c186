import pytest

from crmsms.sms.models import SmsMessage, SmsTemplate

pytestmark = pytest.mark.django_db


def test_variables_of_a_module(api):
    response = api.get("/api/v1/variables", module="contacts")
    names = [v["name"] for v in response.json()]
    assert response.status_code == 200 and "contact.first_name" in names and "account.name" not in names
    assert response.json()[0]["placeholder"] == "{{ contact.first_name }}"
    assert api.get("/api/v1/variables", module="users").status_code == 422


def test_templates_crud(api):
    created = api.post("/api/v1/templates", {"name": "Reminder", "module": "accounts", "body": "See you {{ account.name }}"})
    assert created.status_code == 201, created.json()
    tid = created.json()["id"]
    assert api.get("/api/v1/templates", q="remind").json()["count"] == 1
    patched = api.patch(f"/api/v1/templates/{tid}", {"body": "See you soon, {{ account.name }}"})
    assert patched.json()["body"] == "See you soon, {{ account.name }}"
    assert api.delete(f"/api/v1/templates/{tid}").status_code == 204
    assert not SmsTemplate.objects.exists()


def test_template_validation_lists_each_problem(api):
    response = api.post("/api/v1/templates", {"name": "Bad", "module": "contacts",
                                              "body": "{{ contact.first_name }} {{ contact.salary }} {{ oops"})
    assert response.status_code == 422
    assert [(e["field"], e["rule"]) for e in response.json()["errors"]] == [
        ("body", "unknown_variable"), ("body", "unclosed_placeholder")]
    assert response.json()["errors"][0]["message"] == "Message: Position 26: unknown variable “contact.salary” for Contacts."


def test_preview(api, contact, account):
    tid = api.post("/api/v1/templates", {"name": "Hi", "module": "contacts",
                                         "body": "Hi {{ contact.first_name }} ça va ?"}).json()["id"]
    result = api.post(f"/api/v1/templates/{tid}/preview", {"contact_id": contact.pk})
    assert result.json() == {"text": "Hi Camille ça va ?", "encoding": "UCS-2", "segments": 1, "characters": 18,
                             "empty": []}
    wrong = api.post(f"/api/v1/templates/{tid}/preview", {"account_id": account.pk})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "contact_id"


def test_message_from_a_template(api, contact):
    tid = api.post("/api/v1/templates", {"name": "Hi", "module": "contacts",
                                         "body": "Hi {{ contact.first_name }}"}).json()["id"]
    created = api.post("/api/v1/messages", {"contact_id": contact.pk, "template_id": tid})
    assert created.status_code == 201, created.json()
    assert (created.json()["text"], created.json()["body"], created.json()["template_id"]) == (
        "Hi Camille", "Hi {{ contact.first_name }}", tid)
    own_text = api.post("/api/v1/messages", {"contact_id": contact.pk, "template_id": tid, "body": "Yo {{ contact.last_name }}"})
    assert own_text.json()["text"] == "Yo Bernard"
    missing = api.post("/api/v1/messages", {"contact_id": contact.pk, "template_id": 999})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "template_id"
    assert SmsMessage.objects.count() == 2


def test_module_filter_and_wrong_module(api, account):
    api.post("/api/v1/templates", {"name": "C", "module": "contacts", "body": "Hi {{ contact.first_name }}"})
    aid = api.post("/api/v1/templates", {"name": "A", "module": "accounts", "body": "Hi {{ account.name }}"}).json()["id"]
    assert [t["name"] for t in api.get("/api/v1/templates", module="accounts").json()["items"]] == ["A"]
    cid = api.get("/api/v1/templates", module="contacts").json()["items"][0]["id"]
    wrong = api.post("/api/v1/messages", {"account_id": account.pk, "template_id": cid})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["message"] == (
        f"template_id: template {cid} is based on Contacts; this message goes to one of the Accounts.")
    assert api.post("/api/v1/messages", {"account_id": account.pk, "template_id": aid}).json()["text"] == \
        "Hi Boulangerie Martin"


def test_patch_a_draft_onto_a_template(api, contact):
    tid = api.post("/api/v1/templates", {"name": "T", "module": "contacts", "body": "T {{ contact.last_name }}"}).json()["id"]
    mid = api.post("/api/v1/messages", {"contact_id": contact.pk, "body": "plain"}).json()["id"]
    patched = api.patch(f"/api/v1/messages/{mid}", {"template_id": tid})
    assert patched.status_code == 200
    assert (patched.json()["template_id"], patched.json()["text"]) == (tid, "T Bernard")


def test_a_draft_keeps_its_template_through_unrelated_changes(api, contact):
    tid = api.post("/api/v1/templates", {"name": "T", "module": "contacts", "body": "Hi {{ contact.last_name }}"}).json()["id"]
    mid = api.post("/api/v1/messages", {"contact_id": contact.pk, "template_id": tid}).json()["id"]
    patched = api.patch(f"/api/v1/messages/{mid}", {"body": "Hello {{ contact.last_name }}"})
    assert patched.status_code == 200 and patched.json()["template_id"] == tid


def test_preview_with_a_sending_day(api, contact):
    tid = api.post("/api/v1/templates", {"name": "D", "module": "contacts", "body": "Le {{ today }}"}).json()["id"]
    result = api.post(f"/api/v1/templates/{tid}/preview", {"contact_id": contact.pk, "send_at": "2027-03-02T09:00:00+01:00"})
    assert result.json()["text"] == "Le 02/03/2027"
