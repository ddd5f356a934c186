"""The REST API: token auth, records, messages, and errors that name the field and the rule."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crmsms.crm.models import Contact
from crmsms.sms import states
from crmsms.sms.models import SmsMessage
from crmsms.sms.providers.memory import MemoryConnector

pytestmark = pytest.mark.django_db


def test_token_is_required(client, user):
    assert client.get("/api/v1/contacts").status_code == 401
    assert client.get("/api/v1/contacts", headers={"Authorization": "Bearer nope"}).status_code == 401
    client.force_login(user)  # a browser session is not an API credential
    assert client.get("/api/v1/contacts").status_code == 401


def test_api_token_command_prints_a_working_token(client, user):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("api_token", "alice", stdout=out, stderr=StringIO())
    token = out.getvalue().strip().splitlines()[-1]
    assert client.get("/api/v1/accounts", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_contacts_crud_and_search(api, account):
    created = api.post("/api/v1/contacts", {"first_name": "Lucas", "last_name": "Petit", "phone_mobile": "0698765432",
                                            "sms_opt_in": True, "account_id": account.pk})
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["phone_mobile"] == "+33698765432" and body["account_id"] == account.pk
    cid = body["id"]
    assert api.get("/api/v1/contacts", q="petit").json()["count"] == 1
    assert api.get("/api/v1/contacts", q="nobody").json()["count"] == 0
    patched = api.patch(f"/api/v1/contacts/{cid}", {"title": "Sales"})
    assert patched.status_code == 200 and patched.json()["title"] == "Sales"
    assert patched.json()["phone_mobile"] == "+33698765432"  # untouched fields stay
    assert api.delete(f"/api/v1/contacts/{cid}").status_code == 204
    assert api.get(f"/api/v1/contacts/{cid}").status_code == 404


def test_accounts_crud(api):
    created = api.post("/api/v1/accounts", {"name": "Garage", "phone_office": "+33 1 42 68 53 00"})
    assert created.status_code == 201 and created.json()["phone_office"] == "+33142685300"
    aid = created.json()["id"]
    assert api.patch(f"/api/v1/accounts/{aid}", {"sms_opt_in": True}).json()["sms_opt_in"] is True
    assert api.get("/api/v1/accounts").json()["count"] == 1


@pytest.mark.parametrize("payload, field, rule", [
    ({"last_name": "X", "phone_mobile": "abc"}, "phone_mobile", "invalid_phone"),
    ({"last_name": "X", "phone_mobile": "+999"}, "phone_mobile", "invalid_phone"),
    ({"last_name": "X", "phone_mobile": "0142685300"}, "phone_mobile", "not_mobile"),
    ({"last_name": "X", "email": "not-an-email"}, "email", "invalid"),
    ({"last_name": "X", "account_id": 999999}, "account_id", "invalid_choice"),
    ({"first_name": "no last name"}, "last_name", "missing"),
    ({"last_name": 5}, "last_name", "string_type"),
])
def test_contact_validation_errors_name_field_and_rule(api, payload, field, rule):
    response = api.post("/api/v1/contacts", payload)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert {(e["field"], e["rule"]) for e in errors} == {(field, rule)}, errors
    assert all(e["message"] for e in errors)
    assert not Contact.objects.exists()


def test_create_and_send_a_message(api, contact, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/messages", {"contact_id": contact.pk, "body": "Hi Camille", "status": "to_send"})
    assert response.status_code == 201, response.json()
    mid = response.json()["id"]
    got = api.get(f"/api/v1/messages/{mid}").json()
    assert got["status"] == "sent" and got["provider_message_id"] and got["sent_at"]
    assert got["error_code"] == "" and got["segments"] == 1 and got["encoding"] == "GSM-7"
    assert api.get("/api/v1/messages", status="sent", contact_id=contact.pk).json()["count"] == 1
    assert api.get("/api/v1/messages", status="draft").json()["count"] == 0


def test_message_for_an_account_scheduled_with_an_offset(api, account):
    when = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    response = api.post("/api/v1/messages", {"account_id": account.pk, "body": "Tomorrow", "status": "to_send",
                                             "send_at": when.isoformat()})
    assert response.status_code == 201
    message = SmsMessage.objects.get()
    assert message.status == states.TO_SEND and message.send_at == when and message.due_at == when


def test_send_at_without_zone_is_read_in_the_users_zone(api, contact):
    api.post("/api/v1/messages", {"contact_id": contact.pk, "body": "x", "send_at": "2027-01-15T09:30:00"})
    assert SmsMessage.objects.get().send_at.isoformat() == "2027-01-15T08:30:00+00:00"  # Paris is UTC+1 in winter


@pytest.mark.parametrize("payload, field, rule", [
    ({"body": "x"}, "contact_id", "one_recipient"),
    ({"contact_id": 1, "account_id": 1, "body": "x"}, "contact_id", "one_recipient"),
    ({"contact_id": 999999, "body": "x"}, "contact_id", "not_found"),
    ({"body": "   "}, "body", "blank"),
    ({"body": "x" * 2000}, "body", "too_long"),
    ({"body": "x", "status": "sent"}, "status", "literal_error"),
    ({"body": "x", "send_at": "soon"}, "send_at", "datetime_from_date_parsing"),
    ({"body": "x", "send_at": "2099-01-01T00:00:00Z"}, "send_at", "too_far"),
    ({"body": "x", "send_at": "9999-12-31T23:59:59"}, "send_at", "too_far"),
])
def test_message_validation(api, contact, payload, field, rule):
    if "contact_id" not in payload and "account_id" not in payload and field != "contact_id":
        payload = {**payload, "contact_id": contact.pk}
    response = api.post("/api/v1/messages", payload)
    assert response.status_code == 422, response.json()
    errors = response.json()["errors"]
    assert (errors[0]["field"], errors[0]["rule"]) == (field, rule), errors
    assert not SmsMessage.objects.exists()


def test_send_refused_for_a_contact_without_opt_in(api, contact):
    contact.sms_opt_in = False
    contact.save()
    response = api.post("/api/v1/messages", {"contact_id": contact.pk, "body": "x", "status": "to_send"})
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": "status", "rule": "no_opt_in",
        "message": "Cannot send: Camille Bernard has not opted in to SMS (« SMS opt in » is not ticked).",
    }


def test_idempotency_key_makes_a_retry_safe(api, contact, django_capture_on_commit_callbacks):
    payload = {"contact_id": contact.pk, "body": "once", "status": "to_send"}
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post("/api/v1/messages", payload, headers={"Idempotency-Key": "order-42"})
        second = api.post("/api/v1/messages", payload, headers={"Idempotency-Key": "order-42"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert SmsMessage.objects.count() == 1 and len(MemoryConnector.outbox) == 1
    reused = api.post("/api/v1/messages", {**payload, "body": "another text"}, headers={"Idempotency-Key": "order-42"})
    assert reused.status_code == 409 and reused.json()["errors"][0]["rule"] == "reused"
    assert SmsMessage.objects.count() == 1


def test_a_retry_answers_with_the_first_message_even_when_it_could_not_be_made_again(api, contact):
    payload = {"contact_id": contact.pk, "body": "once", "status": "to_send"}
    first = api.post("/api/v1/messages", payload, headers={"Idempotency-Key": "order-43"})
    contact.sms_opt_in = False  # since the first request: a new message would be refused
    contact.save()
    retry = api.post("/api/v1/messages", payload, headers={"Idempotency-Key": "order-43"})
    assert (first.status_code, retry.status_code) == (201, 200) and retry.json()["id"] == first.json()["id"]
    fresh = api.post("/api/v1/messages", payload, headers={"Idempotency-Key": "order-44"})
    assert fresh.status_code == 422 and SmsMessage.objects.count() == 1


def test_creating_a_queued_message_costs_a_fixed_few_statements(api, contact, django_assert_max_num_queries):
    """Token with its user and profile, the contact, the message, its two history lines."""
    with django_assert_max_num_queries(7):  # + BEGIN/COMMIT or a savepoint, as the database counts them
        response = api.post("/api/v1/messages", {"contact_id": contact.pk, "body": "Hi {first_name}",
                                                 "status": "to_send"}, headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 201 and response.json()["status"] == "to_send"
    message = SmsMessage.objects.get()
    assert message.due_at == message.send_at and message.to_number == contact.phone_mobile
    assert list(message.events.values_list("kind", "from_status", "to_status")) == [
        ("created", "", ""), ("queued", "draft", "to_send")]


def test_update_while_draft_then_conflict_then_not_after_queueing(api, contact):
    mid = api.post("/api/v1/messages", {"contact_id": contact.pk, "body": "v1"}).json()["id"]
    ok = api.patch(f"/api/v1/messages/{mid}", {"body": "v2", "version": 1})
    assert ok.status_code == 200 and ok.json()["body"] == "v2" and ok.json()["version"] == 2
    stale = api.patch(f"/api/v1/messages/{mid}", {"body": "v3", "version": 1})
    assert stale.status_code == 409 and stale.json()["errors"][0]["rule"] == "conflict"
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    assert api.patch(f"/api/v1/messages/{mid}", {"status": "to_send", "send_at": future}).json()["status"] == "to_send"
    refused = api.patch(f"/api/v1/messages/{mid}", {"body": "v4"})
    assert refused.status_code == 409 and refused.json()["errors"][0]["rule"] == "not_draft"


def test_cancel(api, contact):
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    mid = api.post("/api/v1/messages", {"contact_id": contact.pk, "body": "x", "status": "to_send",
                                        "send_at": future}).json()["id"]
    assert api.post(f"/api/v1/messages/{mid}/cancel").json()["status"] == "cancelled"
    again = api.post(f"/api/v1/messages/{mid}/cancel")
    assert again.status_code == 409 and again.json()["errors"][0]["rule"] == "not_cancellable"


def test_search_contacts_by_number_however_typed(api, contact):
    for q in ["06 12 34 56 78", "+33612345678", "camille bernard"]:
        assert api.get("/api/v1/contacts", q=q).json()["count"] == 1, q


def test_year_one_without_zone_is_not_a_server_error(api, contact):
    response = api.post("/api/v1/messages", {"contact_id": contact.pk, "body": "x", "send_at": "0001-01-01T00:00:00"})
    assert response.status_code in (201, 422)
    assert response["Content-Type"].startswith("application/json")


def test_api_docs_are_served_locally(web):
    page = web.get("/api/v1/docs").content.decode()
    assert "cdn." not in page and "/static/ninja/" in page
    assert web.get("/static/ninja/swagger-ui-bundle.js").status_code == 200


def test_openapi_document_needs_a_token(api, client):
    assert client.get("/api/v1/openapi.json").status_code == 401
    assert client.get("/api/v1/docs")["Location"].startswith("/login/?next=/api/v1/docs")
    spec = api.get("/api/v1/openapi.json").json()
    assert "/api/v1/messages" in spec["paths"] and "/api/v1/messages/{message_id}/cancel" in spec["paths"]
    assert spec["components"]["securitySchemes"]


@pytest.mark.parametrize("path, params, field", [
    ("/api/v1/contacts", {"offset": 10**19}, "offset"),
    ("/api/v1/accounts", {"limit": 0}, "limit"),
    ("/api/v1/messages", {"contact_id": 2**63}, "contact_id"),
    ("/api/v1/messages", {"offset": -1}, "offset"),
])
def test_out_of_range_query_parameters(api, path, params, field):
    response = api.get(path, **params)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == field


def test_nul_in_search(api, contact):
    assert api.get("/api/v1/contacts", q="Ber\x00nard").status_code == 200


def test_patch_refuses_null_where_it_means_nothing(api, contact):
    response = api.patch(f"/api/v1/contacts/{contact.pk}", {"sms_opt_in": None})
    assert response.status_code == 422 and response.json()["errors"][0] == {
        "field": "sms_opt_in", "rule": "null",
        "message": "sms_opt_in: null is not a value here; leave the field out to keep it."}
    contact.refresh_from_db()
    assert contact.sms_opt_in
    assert api.patch(f"/api/v1/contacts/{contact.pk}", {"account_id": None}).json()["account_id"] is None


def test_token_use_is_noted(api, user):
    from crmsms.users.models import ApiToken

    api.get("/api/v1/contacts")
    assert ApiToken.objects.get(user=user).last_used_at is not None


def test_a_token_acts_only_as_its_own_user(client, user, token, contact):
    from django.contrib.auth import get_user_model

    from crmsms.users.models import ApiToken

    bob = get_user_model().objects.create_user("bob", password="builder-42-x")
    bob_token = ApiToken.issue(bob)

    def post(raw, key):
        return client.post("/api/v1/messages", {"contact_id": contact.pk, "body": "Hi"}, content_type="application/json",
                           headers={"Authorization": f"Bearer {raw}", "Idempotency-Key": key})

    mine, his = post(token, "order-1").json(), post(bob_token, "order-1").json()
    assert mine["id"] != his["id"]  # the same key from another user is another request, not alice's message
    assert SmsMessage.objects.get(pk=his["id"]).created_by == bob
    assert SmsMessage.objects.get(pk=mine["id"]).created_by == user
    # The change is recorded as bob's, whoever else has a token.
    client.patch(f"/api/v1/contacts/{contact.pk}", {"sms_opt_in": False}, content_type="application/json",
                 headers={"Authorization": f"Bearer {bob_token}"})
    assert contact.consent.order_by("-at", "-id").first().actor == "bob"
    # A deactivated user's token stops working at once.
    bob.is_active = False
    bob.save()
    assert client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {bob_token}"}).status_code == 401
